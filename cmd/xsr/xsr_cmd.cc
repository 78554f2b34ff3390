#include "xsr_cmd.h"

#include <cmath>
#include <cstdio>
#include <optional>

namespace xsr_cmd {

xsr::Codec output_codec(const po::variables_map& vm, const char* cmd) {
  if (!vm.count("compress")) return xsr::Codec::none;
  const std::string c = vm["compress"].as<std::string>();
  const std::optional<xsr::Codec> codec = xsr::parse_codec(c);
  if (!codec) die(2, std::string(cmd) + ": --compress must be zstd, gzip, xz or bzip2, not '" + c + "'");
  return *codec;
}

void add_stats_options(po::options_description& d) {
  d.add_options()
      ("stats", po::bool_switch(), "a line on stderr every --stats-interval (time, bytes, pages, records, "
       "MiB/s average and now, cpu s/GiB) and a final summary line")
      ("stats-interval", po::value<double>()->default_value(1.0), "SECONDS between --stats lines and samples")
      ("stats-json", po::value<std::string>(),
       "write counts, throughput, cpu, peak RSS and the throughput samples as JSON to FILE");
}

std::unique_ptr<xsr::cli::RunStats> make_stats(const po::variables_map& vm, const char* cmd) {
  const double iv = vm["stats-interval"].as<double>();
  if (!std::isfinite(iv) || iv <= 0 || iv > 86400)
    die(2, std::string(cmd) + ": --stats-interval must be a number of seconds above 0");
  if (vm.count("stats-json") && vm["stats-json"].as<std::string>().empty())
    die(2, std::string(cmd) + ": --stats-json needs a file name");
  const bool lines = vm["stats"].as<bool>();
  if (!lines && !vm.count("stats-json")) return nullptr;
  return std::make_unique<xsr::cli::RunStats>(cmd, lines, iv);
}

bool write_stats_json(const xsr::cli::RunStats* stats, const po::variables_map& vm, const char* cmd,
                      const xsr::cli::Json& extra) {
  if (!stats || !vm.count("stats-json")) return true;
  std::string err;
  if (stats->write_json(vm["stats-json"].as<std::string>(), extra, &err)) return true;
  std::fprintf(stderr, "xsr %s: --stats-json: %s\n", cmd, err.c_str());
  return false;
}

void open_image(OpenedImage& o, const std::string& spec, const std::string& name, const std::string& io,
                const char* cmd, bool verbose) {
  o.src = xsr::open_input(spec, io_mode(io, cmd));
  if (!o.src.source) die(1, std::string(cmd) + ": cannot open " + o.src.error);
  std::string why;
  if (!o.img.open(*o.src.source, why)) die(1, std::string(cmd) + ": " + name + ": " + why);
  if (verbose) {
    std::fprintf(stderr, "xsr %s: reading %s through %s\n", cmd, name.c_str(),
                 std::string(o.src.source->kind()).c_str());
    if (!o.src.note.empty()) std::fprintf(stderr, "xsr %s: %s\n", cmd, o.src.note.c_str());
    if (o.img.legacy())
      std::fprintf(stderr,
                   "xsr %s: a legacy image (%u-bit toolstack, %s guest): converted to libxl v3 in a second "
                   "thread on the way in\n",
                   cmd, o.img.guess().width, o.img.guess().guest == xsr::GuestType::pv ? "PV" : "HVM");
  }
}

}  // namespace xsr_cmd
