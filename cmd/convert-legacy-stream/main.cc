// convert-legacy-stream: drop-in for Xen's tool of that name, as libxl runs
// it through LIBXL_CONVERT_HELPER:
//   convert-legacy-stream --in FD --out FD --width 64 --guest hvm --format libxl
// Same options (unique prefixes too), FD-or-FILE arguments, exit codes and
// -v lines; see docs/reference-behaviour.md.
#include <libgen.h>

#include <boost/program_options.hpp>
#include <cstdio>
#include <map>
#include <string>

#include "common/exit.h"
#include "common/interrupt.h"
#include "common/log.h"
#include "common/optparse.h"
#include "common/output.h"
#include "xsr/convert.h"
#include "xsr/source.h"

namespace po = boost::program_options;

namespace {

const char* prog = "convert-legacy-stream";

const char kUsage[] = "Usage: %s [options] -i INPUT -o OUTPUT -w WIDTH -g GUEST\n";

void help(FILE* f) {
  std::fprintf(f, kUsage, prog);
  std::fputs(
      "\n"
      "Convert a legacy stream to a v2 (or later) stream\n"
      "\n"
      "Options:\n"
      "  --version             show program's version number and exit\n"
      "  -h, --help            show this help message and exit\n"
      "  -i <FD or FILE>, --in=<FD or FILE>\n"
      "                        Legacy input to convert\n"
      "  -o <FD or FILE>, --out=<FD or FILE>\n"
      "                        v2 (or later) format output\n"
      "  -w <32/64>, --width=<32/64>\n"
      "                        Legacy toolstack bitness\n"
      "  -g <pv/hvm>, --guest-type=<pv/hvm>\n"
      "                        Type of guest in stream\n"
      "  -f <libxc|libxl>, --format=<libxc|libxl>\n"
      "                        Desired format of the outgoing stream (defaults to\n"
      "                        libxc)\n"
      "  -v, --verbose         Summarise stream contents\n"
      "  -x, --xl              Is an `xl` header present in the stream? (default no)\n"
      "  --skip-qemu           Skip processing of the qemu tail? (default no)\n"
      "  --syslog              Log to syslog instead of stdout\n",
      f);
}

[[noreturn]] void usage_error(const std::string& msg) {
  std::fprintf(stderr, kUsage, prog);
  std::fprintf(stderr, "\n%s: error: %s\n", prog, msg.c_str());
  std::exit(2);
}

std::string choice(const po::variables_map& vm, const char* key, const char* shortopt,
                   std::initializer_list<const char*> allowed, const std::string& token) {
  std::string v = vm[key].as<std::string>();
  for (const char* a : allowed)
    if (v == a) return v;
  std::string list;
  for (const char* a : allowed) list += std::string(list.empty() ? "" : ", ") + "'" + a + "'";
  usage_error("option " + (token.empty() ? std::string(shortopt) : token) + ": invalid choice: '" + v +
              "' (choose from " + list + ")");
}

}  // namespace

int main(int argc, char** argv) {
  xsr::cli::handle_interrupts();  // a temporary output is removed on SIGTERM (libxl's abort)
  if (argc > 0) prog = basename(argv[0]);
  po::options_description desc;
  // clang-format off
  desc.add_options()
      ("version", "")
      ("help,h", "")
      ("in,i", po::value<std::string>(), "")
      ("out,o", po::value<std::string>(), "")
      ("width,w", po::value<std::string>(), "")
      ("guest-type,g", po::value<std::string>(), "")
      ("format,f", po::value<std::string>()->default_value("libxc"), "")
      ("verbose,v", po::bool_switch(), "")
      ("xl,x", po::bool_switch(), "")
      ("skip-qemu", po::bool_switch(), "")
      ("syslog", po::bool_switch(), "")
      // Not in the reference: v2 output for Xen 4.6 - 4.13 receivers.
      ("stream-version", po::value<unsigned>()->default_value(3), "");
  // clang-format on
  std::map<std::string, std::string> tokens;  // how each option was spelled
  const po::variables_map vm = xsr::cli::parse_optparse(argc, argv, desc, usage_error, &tokens);
  if (vm.count("help")) {
    help(stdout);
    return 0;
  }
  if (vm.count("version")) {
    std::puts("1");
    return 0;
  }
  if (!vm.count("in") || !vm.count("out") || !vm.count("width") || !vm.count("guest-type")) {
    help(stderr);
    return 1;
  }
  xsr::ConvertOptions opt;
  opt.width = choice(vm, "width", "-w", {"32", "64"}, tokens["width"]) == "32" ? 32 : 64;
  opt.guest = choice(vm, "guest-type", "-g", {"pv", "hvm"}, tokens["guest-type"]) == "pv"
                  ? xsr::GuestType::pv
                  : xsr::GuestType::hvm;
  opt.libxl = choice(vm, "format", "-f", {"libxc", "libxl"}, tokens["format"]) == "libxl";
  opt.xl = vm["xl"].as<bool>();
  opt.skip_qemu = vm["skip-qemu"].as<bool>();
  opt.stream_version = vm["stream-version"].as<unsigned>();
  if (opt.stream_version != 2 && opt.stream_version != 3)
    usage_error("option --stream-version: must be 2 or 3");

  xsr::cli::ignore_sigpipe();
  const xsr::cli::Log log(prog, vm["verbose"].as<bool>(), false, vm["syslog"].as<bool>());
  const std::string in = vm["in"].as<std::string>();
  xsr::OpenResult src = xsr::open_source(in);
  if (!src.source) {
    log.err(std::string(prog) + ": unable to open input: " + src.error.detail);
    return 1;
  }
  xsr::cli::Output out;
  std::string err;
  if (!out.open(vm["out"].as<std::string>(), &err)) {
    log.err(std::string(prog) + ": unable to open output: " + err);
    return 1;
  }
  if (log.verbose()) opt.info = [&log](const std::string& l) { log.info(l); };

  xsr::ConvertResult r;
  {
    xsr::Sink sink(out.fd());
    r = xsr::convert_legacy(*src.source, sink, opt);
  }
  if (r.error) {
    out.abort();
    const std::string name = xsr::parse_fd(in) >= 0 ? "fd " + in : in;
    const int status = xsr::exit_code(r.error.code);
    log.err((status == xsr::cli::kUsage ? "Script Error: " : "Stream Error: ") + name + ": " +
            r.error.message());
    return status;
  }
  src.source->finish();
  if (!out.commit(&err)) {
    log.err("Stream Error: " + err);
    return 1;
  }
  return 0;
}
