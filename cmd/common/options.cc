#include "common/options.h"

#include <cmath>
#include <cstdio>
#include <optional>

#include "common/progress.h"

namespace xsr::cli {

po::variables_map parse(int argc, char** argv, const po::options_description& desc,
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
    usage_error(cmd, std::string(e.what()) + " (see 'xsr " + cmd + " --help')");
  }
  return vm;
}

void bad_choice(const char* cmd, const char* option, const std::string& value,
                const std::vector<std::string_view>& names, bool quote) {
  std::string msg = std::string(option) + " must be ";
  for (std::size_t i = 0; i < names.size(); ++i) {
    if (i) msg += i + 1 == names.size() ? " or " : ", ";
    msg += names[i];
  }
  if (quote) msg += ", not '" + value + "'";
  usage_error(cmd, msg);
}

Format read_format(const char* cmd, const std::string& value) {
  return choose<Format>(
      cmd, "--format", value,
      {{"auto", Format::autodetect}, {"libxc", Format::libxc}, {"libxl", Format::libxl}, {"xl", Format::xl}},
      true);
}

bool libxl_output(const char* cmd, const char* option, const std::string& value) {
  return choose<bool>(cmd, option, value, {{"libxc", false}, {"libxl", true}});
}

GuestType guest_type(const char* cmd, const std::string& value) {
  return choose<GuestType>(cmd, "--guest", value, {{"pv", GuestType::pv}, {"hvm", GuestType::hvm}});
}

unsigned width_bits(const char* cmd, const char* option, unsigned value) {
  return choose<unsigned>(cmd, option, std::to_string(value), {{"32", 32u}, {"64", 64u}});
}

unsigned stream_version(const char* cmd, unsigned value) {
  return choose<unsigned>(cmd, "--stream-version", std::to_string(value), {{"2", 2u}, {"3", 3u}});
}

IoMode io_mode(const char* cmd, const std::string& value, IoModes offered) {
  if (offered == IoModes::streams)
    return choose<IoMode>(cmd, "--io", value,
                          {{"auto", IoMode::automatic}, {"uring", IoMode::uring}, {"read", IoMode::read}});
  return choose<IoMode>(cmd, "--io", value,
                        {{"auto", IoMode::automatic},
                         {"pread", IoMode::pread},
                         {"mmap", IoMode::mmap},
                         {"uring", IoMode::uring},
                         {"read", IoMode::read}});
}

Codec output_codec(const po::variables_map& vm, const char* cmd, const std::string& out) {
  std::optional<Codec> named;
  if (out != "-" && parse_fd(out) < 0)
    for (const auto& [ext, codec] : {std::pair<std::string_view, Codec>{".zst", Codec::zstd},
                                     {".gz", Codec::gzip},
                                     {".xz", Codec::xz},
                                     {".bz2", Codec::bzip2}})
      if (out.size() > ext.size() && out.ends_with(ext)) named = codec;
  Codec codec = named.value_or(Codec::none);
  if (vm.count("compress")) {
    const std::string c = vm["compress"].as<std::string>();
    const std::optional<Codec> given = parse_codec(c);
    if (!given) usage_error(cmd, "--compress must be zstd, gzip, xz or bzip2, not '" + c + "'");
    if (named && *named != *given)
      usage_error(cmd, "--compress " + c + " into " + out + ", a name for " +
                           std::string(codec_name(*named)) + " data (rename it or drop --compress)");
    codec = *given;
  }
  if (codec == Codec::none && !vm["level"].defaulted())
    usage_error(cmd, "--level needs --compress (or an output named .zst, .gz, .xz or .bz2)");
  return codec;
}

const StatsHelp kStatsHelp{
    "a line on stderr every --stats-interval (time, bytes, pages, records, MiB/s average and now, cpu s/GiB) "
    "and a final summary line",
    "SECONDS between --stats lines and samples",
    "write counts, throughput, cpu, peak RSS and the throughput samples as JSON to FILE",
    "must be a number of seconds above 0",
};
const StatsHelp kRelayStatsHelp{
    "print throughput lines every --stats-interval and at the end",
    "seconds between --stats lines and samples",
    "write a JSON summary with throughput samples to FILE",
    "must be a positive number of seconds",
};

void add_stats_options(po::options_description& desc, const StatsHelp& help) {
  // clang-format off
  desc.add_options()
      ("stats", po::bool_switch(), help.stats)
      ("stats-interval", po::value<double>()->default_value(1.0), help.interval)
      ("stats-json", po::value<std::string>(), help.json);
  // clang-format on
}

std::unique_ptr<RunStats> make_stats(const po::variables_map& vm, const char* cmd, const StatsHelp& help,
                                     bool quiet) {
  const double iv = vm["stats-interval"].as<double>();
  if (!std::isfinite(iv) || iv <= 0 || iv > 86400)
    usage_error(cmd, std::string("--stats-interval ") + help.interval_rule);
  if (vm.count("stats-json") && vm["stats-json"].as<std::string>().empty())
    usage_error(cmd, "--stats-json needs a file name");
  // -q silences the lines too: --stats-json still records the run.
  quiet = quiet || (vm.count("quiet") && vm["quiet"].as<bool>());
  const bool lines = vm["stats"].as<bool>() && !quiet;
  if (!lines && !vm.count("stats-json")) return nullptr;
  auto stats = std::make_unique<RunStats>(cmd, lines, iv);
  if (vm.count("stats-json")) stats->set_summary(vm["stats-json"].as<std::string>());
  return stats;
}

bool write_stats_json(RunStats* stats, const po::variables_map& vm, const char* cmd, const Json& extra,
                      bool quiet) {
  if (!stats || !vm.count("stats-json")) return true;
  std::string err;
  if (stats->write_summary(extra, &err)) return true;
  if (!quiet) print(stderr, "xsr %s: --stats-json: %s\n", cmd, err.c_str());
  return false;
}

std::string display_name(const std::string& spec, const char* dash) {
  if (spec == "-") return dash;
  if (parse_fd(spec) >= 0) return "fd " + spec;
  return spec;
}

}  // namespace xsr::cli
