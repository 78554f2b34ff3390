// verify-stream-v2: drop-in for Xen's tool of that name. Same options
// (unique-prefix long options too), FD-or-FILE input, exit codes and -v
// lines; see docs/reference-behaviour.md.
#include <libgen.h>

#include <boost/program_options.hpp>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <map>
#include <string>

#include "common/exit.h"
#include "common/log.h"
#include "common/optparse.h"
#include "xsr/source.h"
#include "xsr/verify.h"

namespace po = boost::program_options;

namespace {

const char* prog = "verify-stream-v2";

[[noreturn]] void usage_error(const std::string& msg) {
  std::fprintf(stderr, "Usage: %s [options]\n\n%s: error: %s\n", prog, prog, msg.c_str());
  std::exit(2);
}

void help() {
  std::printf(
      "Usage: %s [options]\n"
      "\n"
      "Verify a stream according to the v2 (or later) spec\n"
      "\n"
      "Options:\n"
      "  -h, --help            show this help message and exit\n"
      "  -i <FD or FILE>, --in=<FD or FILE>\n"
      "                        Stream to verify (defaults to stdin)\n"
      "  -v, --verbose         Summarise stream contents\n"
      "  -q, --quiet           Suppress all logging/errors\n"
      "  -f <libxc|libxl|xl>, --format=<libxc|libxl|xl>\n"
      "                        Format of the incoming stream (defaults to libxc)\n"
      "  --syslog              Log to syslog instead of stdout\n",
      prog);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc > 0) prog = basename(argv[0]);
  po::options_description desc;
  // clang-format off
  desc.add_options()
      ("help,h", "")
      ("in,i", po::value<std::string>()->default_value("0"), "")
      ("verbose,v", po::bool_switch(), "")
      ("quiet,q", po::bool_switch(), "")
      ("format,f", po::value<std::string>()->default_value("libxc"), "")
      ("syslog", po::bool_switch(), "");
  // clang-format on
  std::map<std::string, std::string> spelled;
  const po::variables_map vm = xsr::cli::parse_optparse(argc, argv, desc, usage_error, &spelled);
  if (vm.count("help")) {
    help();
    return 0;
  }
  const std::string fmt = vm["format"].as<std::string>();
  xsr::VerifyOptions opt;
  if (fmt == "libxc") opt.format = xsr::Format::libxc;
  else if (fmt == "libxl") opt.format = xsr::Format::libxl;
  else if (fmt == "xl") opt.format = xsr::Format::xl;
  else
    usage_error("option " + (spelled["format"].empty() ? std::string("-f") : spelled["format"]) +
                ": invalid choice: '" + fmt + "' (choose from 'libxc', 'libxl', 'xl')");

  const xsr::cli::Log log(prog, vm["verbose"].as<bool>(), vm["quiet"].as<bool>(), vm["syslog"].as<bool>());
  const std::string in = vm["in"].as<std::string>();
  xsr::OpenResult src = xsr::open_source(in);
  if (!src.source) {
    log.err(std::string(prog) + ": unable to open input: " + src.error.detail);
    return 1;
  }
  if (log.verbose()) opt.info = [&log](const std::string& l) { log.info(l); };

  xsr::StreamStats stats;
  xsr::Error e = xsr::verify(*src.source, opt, stats);
  if (e) {
    log.err("Stream Error: " + (xsr::parse_fd(in) >= 0 ? "fd " + in : in) + ": " + e.message());
    return xsr::exit_code(e.code);
  }
  src.source->finish();
  return 0;
}
