// What the xsr subcommands (cmd/xsr/*.cc) share beyond cmd/common: their
// entry points, the help they print, and opening an image for inspect and
// extract. Wiring only; the work is in lib/.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "common/exit.h"
#include "common/options.h"
#include "xsr/compress.h"
#include "xsr/image.h"
#include "xsr/net.h"
#include "xsr/source.h"

namespace xsr_cmd {

namespace cli = xsr::cli;
namespace po = boost::program_options;

// The subcommands: argv[0] is the subcommand's name; the exit status is
// returned, or a cli::Failure thrown.
int cmd_verify(int argc, char** argv);
int cmd_convert(int argc, char** argv);
int cmd_inspect(int argc, char** argv);
int cmd_extract(int argc, char** argv);
int cmd_relay(int argc, char** argv);
int cmd_gen(int argc, char** argv);
int cmd_index(int argc, char** argv);
int cmd_version(int argc, char** argv);

// `xsr CMD --help`: the options' description on stdout; kOk.
int print_help(const po::options_description& desc);

// An image opened for inspect or extract: a legacy one is converted on the
// way in (ImageInput's thread), which the destructor stops.
struct OpenedImage {
  xsr::OpenResult src;
  xsr::ImageInput img;
};

// An input that open_input() refused: "xsr CMD: cannot open SPEC: WHY",
// status 1; an --io path the input cannot take is a usage error.
[[noreturn]] void cannot_open(const char* cmd, const xsr::Error& e);

// Empty when src (peeked, nothing consumed) holds a v2/v3 stream, else the
// error that says what it holds (xsr::not_a_v2_stream; `advice` for a
// legacy image).
xsr::Error stream_or_error(xsr::Source& src, const std::string& advice);

// Opens IMAGE (`spec`, named `name` in messages) through the --io path
// `io`; failing that, "xsr CMD: ..." and status 1, after `on_fail` (when
// given) was called with the error (inspect --json prints its document).
// `verbose`: says on stderr how it is read.
void open_image(OpenedImage& o, const std::string& spec, const std::string& name, xsr::IoMode io,
                const char* cmd, bool verbose,
                const std::function<void(const xsr::Error&)>& on_fail = nullptr);

// A plain image file, as the page index needs one (xsr/index.h): a regular
// FILE (not "-", an FD, a pipe or a device), not compressed, a v2/v3
// stream; read by pread from its first byte. Anything else ends the run:
// "xsr CMD: SPEC: WHY", status 1.
struct PlainImage {
  std::unique_ptr<xsr::Source> src;
  std::uint64_t size = 0;
};
PlainImage open_plain_image(const std::string& spec, const char* cmd);

// Where a writer of the output writes: `fd` itself, or with a `codec` the
// pipe into zout's compressing thread, started here (failing that, "xsr:
// CMD: WHY", status 2). `verbose` says so on stderr.
int compressed_output(xsr::CompressedOutput& zout, int fd, xsr::Codec codec, int level, const char* cmd,
                      bool verbose);

// A listening socket on `addr` (verify --listen, relay --listen), or -1
// with *err set. The address taken is said on stderr ("xsr CMD: listening
// on 127.0.0.1:PORT") under `verbose` and always for TCP port 0: whoever
// started us learns the port from that line.
int listen_announced(const xsr::net::Address& addr, const char* cmd, bool verbose, std::string* err,
                     std::string* bound);

}  // namespace xsr_cmd
