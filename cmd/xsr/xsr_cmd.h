// Helpers shared by the xsr subcommands (cmd/xsr/*.cc, one file each):
// option parsing, fatal errors, names. Wiring only; the work is in lib/.
#pragma once

#include <boost/program_options.hpp>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>

#include "common/stats.h"
#include "xsr/compress.h"
#include "xsr/image.h"
#include "xsr/source.h"
#include "xsr/units.h"

namespace xsr_cmd {

namespace po = boost::program_options;

[[noreturn]] inline void die(int code, const std::string& msg) {
  std::fprintf(stderr, "xsr: %s\n", msg.c_str());
  std::exit(code);
}

inline po::variables_map parse(int argc, char** argv, const po::options_description& desc,
                        const po::positional_options_description& pos, const char* cmd) {
  po::variables_map vm;
  try {
    po::store(po::command_line_parser(argc, argv)
                  .options(desc)
                  .positional(pos)
                  .style(po::command_line_style::unix_style)
                  .run(),
              vm);
    po::notify(vm);
  } catch (const po::error& e) {
    die(2, std::string(cmd) + ": " + e.what() + " (see 'xsr " + cmd + " --help')");
  }
  return vm;
}

inline std::string human(std::uint64_t b) { return xsr::format_bytes(b); }

inline xsr::IoMode io_mode(const std::string& io, const char* cmd) {
  if (io == "pread") return xsr::IoMode::pread;
  if (io == "mmap") return xsr::IoMode::mmap;
  if (io == "uring") return xsr::IoMode::uring;
  if (io == "read") return xsr::IoMode::read;
  if (io != "auto") die(2, std::string(cmd) + ": --io must be auto, pread, mmap, uring or read");
  return xsr::IoMode::automatic;
}

inline std::string spec_name(const std::string& spec, const char* dash) {
  if (spec == "-") return dash;
  if (xsr::parse_fd(spec) >= 0) return "fd " + spec;
  return spec;
}

// --compress CODEC, or none.
xsr::Codec output_codec(const po::variables_map& vm, const char* cmd);

// --stats, --stats-interval, --stats-json: the same three on every command
// that moves a stream.
void add_stats_options(po::options_description& d);

// A RunStats when --stats or --stats-json asked for one, else null.
std::unique_ptr<xsr::cli::RunStats> make_stats(const po::variables_map& vm, const char* cmd);

// Writes --stats-json when asked; false (with the error line printed) when
// it cannot be written.
bool write_stats_json(const xsr::cli::RunStats* stats, const po::variables_map& vm, const char* cmd,
                      const xsr::cli::Json& extra);

// Opens IMAGE and, for a legacy one, starts its conversion; dies on failure.
struct OpenedImage {
  xsr::OpenResult src;
  xsr::ImageInput img;
};
void open_image(OpenedImage& o, const std::string& spec, const std::string& name, const std::string& io,
                const char* cmd, bool verbose);

// The subcommands: argv[0] is the subcommand's name.
int cmd_verify(int argc, char** argv);
int cmd_convert(int argc, char** argv);
int cmd_inspect(int argc, char** argv);
int cmd_extract(int argc, char** argv);
int cmd_relay(int argc, char** argv);
int cmd_gen(int argc, char** argv);

}  // namespace xsr_cmd
