// xsr: one command for Xen save images and migration streams.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/program_options.hpp>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <string>
#include <vector>

#include "xsr/cli.h"
#include "xsr/gen.h"
#include "xsr/source.h"
#include "xsr/verify.h"

namespace po = boost::program_options;

namespace {

const char kUsage[] =
    "Usage: xsr <command> [options]\n"
    "\n"
    "Commands:\n"
    "  verify [FILE|FD|-]   check a v2/v3 stream (libxc, libxl, xl or libvirt wrapped)\n"
    "  gen [-o OUT]         write a deterministic test stream\n"
    "\n"
    "'xsr <command> --help' describes a command's options.\n";

[[noreturn]] void die(int code, const std::string& msg) {
  std::fprintf(stderr, "xsr: %s\n", msg.c_str());
  std::exit(code);
}

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
    die(2, std::string(cmd) + ": " + e.what() + " (see 'xsr " + cmd + " --help')");
  }
  return vm;
}

std::string human(std::uint64_t b) {
  char buf[32];
  if (b >= (1ull << 30)) std::snprintf(buf, sizeof buf, "%.2f GiB", static_cast<double>(b) / (1ull << 30));
  else if (b >= (1ull << 20)) std::snprintf(buf, sizeof buf, "%.1f MiB", static_cast<double>(b) / (1ull << 20));
  else std::snprintf(buf, sizeof buf, "%llu bytes", static_cast<unsigned long long>(b));
  return buf;
}

int cmd_verify(int argc, char** argv) {
  po::options_description desc(
      "Usage: xsr verify [options] [FILE|FD|-]\n\n"
      "Verifies a Xen v2/v3 migration stream or save image: every check of Xen's\n"
      "verify-stream-v2, without its defects. The format is detected unless given.\n"
      "Exit status: 0 valid, 1 invalid or truncated, 2 tool error.\n\nOptions");
  desc.add_options()
      ("help,h", "show this help")
      ("input", po::value<std::string>()->default_value("-"), "FILE, FD number or - (stdin)")
      ("format,f", po::value<std::string>()->default_value("auto"), "auto, libxc, libxl or xl")
      ("strict,s", po::bool_switch(), "also apply the rules Xen's restore enforces")
      ("checkpointed", po::bool_switch(), "with --strict: a bare libxc stream may hold CHECKPOINTs")
      ("json,j", po::bool_switch(), "print the verdict and counts as JSON on stdout")
      ("verbose,v", po::bool_switch(), "print every record as the reference's -v does, and the I/O path")
      ("quiet,q", po::bool_switch(), "print nothing; the exit status tells")
      ("no-progress", po::bool_switch(), "no progress bar even on a terminal")
      ("io", po::value<std::string>()->default_value("auto"), "auto, pread, mmap, uring or read");
  po::positional_options_description pos;
  pos.add("input", 1);
  po::variables_map vm = parse(argc, argv, desc, pos, "verify");
  if (vm.count("help")) {
    std::cout << desc;
    return 0;
  }
  xsr::VerifyOptions opt;
  const std::string f = vm["format"].as<std::string>();
  if (f == "auto") opt.format = xsr::Format::autodetect;
  else if (f == "libxc") opt.format = xsr::Format::libxc;
  else if (f == "libxl") opt.format = xsr::Format::libxl;
  else if (f == "xl") opt.format = xsr::Format::xl;
  else die(2, "verify: --format must be auto, libxc, libxl or xl, not '" + f + "'");
  opt.strict = vm["strict"].as<bool>();
  opt.checkpointed = vm["checkpointed"].as<bool>();
  const bool json = vm["json"].as<bool>(), verbose = vm["verbose"].as<bool>(),
             quiet = vm["quiet"].as<bool>();
  xsr::IoMode mode = xsr::IoMode::automatic;
  const std::string io = vm["io"].as<std::string>();
  if (io == "pread") mode = xsr::IoMode::pread;
  else if (io == "mmap") mode = xsr::IoMode::mmap;
  else if (io == "uring") mode = xsr::IoMode::uring;
  else if (io == "read") mode = xsr::IoMode::read;
  else if (io != "auto") die(2, "verify: --io must be auto, pread, mmap, uring or read");

  const std::string in = vm["input"].as<std::string>();
  const std::string name = in == "-" ? "<stdin>" : (xsr::parse_fd(in) >= 0 ? "fd " + in : in);
  xsr::OpenResult src = xsr::open_source(in, mode);
  if (!src.source) die(2, "verify: cannot open " + src.error);
  if (verbose) {
    std::fprintf(stderr, "xsr: reading %s through %s\n", name.c_str(),
                 std::string(src.source->kind()).c_str());
    if (!src.note.empty()) std::fprintf(stderr, "xsr: %s\n", src.note.c_str());
  }
  if (verbose && !json)
    opt.info = [](const std::string& l) {
      std::fputs(l.c_str(), stdout);
      std::fputc('\n', stdout);
    };
  if (!quiet) opt.note = [](const std::string& l) { std::fprintf(stderr, "xsr: note: %s\n", l.c_str()); };
  // A bar only for large inputs on a terminal: small ones finish first.
  const std::int64_t total = src.source->remaining();
  xsr::cli::Progress bar(total, !quiet && !vm["no-progress"].as<bool>() &&
                                    (total < 0 || total > (256ll << 20)));
  opt.progress = [&bar](std::uint64_t done) { bar.update(done); };

  xsr::StreamStats st;
  const std::uint64_t t0 = xsr::cli::now_ns();
  xsr::Error e = xsr::verify(*src.source, opt, st);
  const double secs = static_cast<double>(xsr::cli::now_ns() - t0) / 1e9;
  if (!e) src.source->finish();
  if (json) std::fputs(xsr::cli::stats_json(name, e, st, secs).c_str(), stdout);
  if (e) {
    if (!quiet) std::fprintf(stderr, "xsr verify: %s: %s\n", name.c_str(), e.message().c_str());
    return xsr::exit_code(e.code);
  }
  if (!quiet && !json) {
    std::printf("%s: valid %s stream (libxc v%u, %s%s), %s, %llu records, %llu pages%s\n",
                name.c_str(), st.container.c_str(), st.libxc_version,
                st.domain_type == 1 ? "x86 PV" : "x86 HVM",
                st.legacy_converted ? ", legacy converted"
                                    : (" from Xen " + std::to_string(st.xen_major) + "." +
                                       std::to_string(st.xen_minor)).c_str(),
                human(st.bytes).c_str(), static_cast<unsigned long long>(st.records),
                static_cast<unsigned long long>(st.pages),
                st.checkpoints ? (", " + std::to_string(st.checkpoints) + " checkpoints").c_str() : "");
  }
  return 0;
}

int cmd_gen(int argc, char** argv) {
  po::options_description desc(
      "Usage: xsr gen [options] [-o OUT]\n\n"
      "Writes a deterministic v2/v3 stream: the same options and seed give the same\n"
      "bytes. Each page holds its pfn and the seed in its first 16 bytes.\n\nOptions");
  desc.add_options()
      ("help,h", "show this help")
      ("output,o", po::value<std::string>()->default_value("-"), "file, FD number or - (stdout)")
      ("size", po::value<std::string>()->default_value("16M"), "approximate size: 64K, 512M, 4G, ...")
      ("type,t", po::value<std::string>()->default_value("hvm"), "guest type: hvm or pv")
      ("format,f", po::value<std::string>()->default_value("libxc"), "libxc, libxl or xl")
      ("stream-version", po::value<unsigned>()->default_value(3), "libxc stream version: 2 or 3")
      ("seed", po::value<std::uint64_t>()->default_value(1), "seed for pfn order and contents")
      ("batch", po::value<unsigned>()->default_value(1024), "pfns per PAGE_DATA record (1-1024)")
      ("checkpoints", po::value<unsigned>()->default_value(0), "checkpoint rounds after the first")
      ("vcpus", po::value<unsigned>()->default_value(2), "PV vcpus")
      ("width", po::value<unsigned>()->default_value(64), "PV guest width: 32 or 64")
      ("force", po::bool_switch(), "write to a terminal anyway");
  po::positional_options_description pos;
  pos.add("output", 1);
  po::variables_map vm = parse(argc, argv, desc, pos, "gen");
  if (vm.count("help")) {
    std::cout << desc;
    return 0;
  }
  xsr::GenOptions g;
  if (!xsr::parse_size(vm["size"].as<std::string>(), g.size))
    die(2, "gen: bad --size '" + vm["size"].as<std::string>() + "'");
  const std::string t = vm["type"].as<std::string>(), f = vm["format"].as<std::string>();
  if (t != "hvm" && t != "pv") die(2, "gen: --type must be hvm or pv");
  g.hvm = t == "hvm";
  if (f == "libxc") g.container = xsr::GenOptions::Container::libxc;
  else if (f == "libxl") g.container = xsr::GenOptions::Container::libxl;
  else if (f == "xl") g.container = xsr::GenOptions::Container::xl;
  else die(2, "gen: --format must be libxc, libxl or xl");
  g.version = vm["stream-version"].as<unsigned>();
  if (g.version != 2 && g.version != 3) die(2, "gen: --stream-version must be 2 or 3");
  g.seed = vm["seed"].as<std::uint64_t>();
  g.batch = vm["batch"].as<unsigned>();
  if (g.batch < 1 || g.batch > 1024) die(2, "gen: --batch must be 1 to 1024");
  g.checkpoints = vm["checkpoints"].as<unsigned>();
  g.vcpus = vm["vcpus"].as<unsigned>();
  const unsigned width = vm["width"].as<unsigned>();
  if (width != 32 && width != 64) die(2, "gen: --width must be 32 or 64");
  g.pv_width = width / 8;

  const std::string out = vm["output"].as<std::string>();
  int fd;
  bool owned = false;
  std::string tmp;
  if (out == "-") fd = 1;
  else if (int n = xsr::parse_fd(out); n >= 0) fd = n;
  else {
    // Written under a temporary name and renamed at the end, so a failed
    // run never leaves a file that looks complete.
    tmp = out + ".xsr-tmp";
    fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) die(2, "gen: cannot create " + tmp + ": " + std::strerror(errno));
    owned = true;
  }
  if (isatty(fd) && !vm["force"].as<bool>())
    die(2, "gen: refusing to write a binary stream to a terminal (use -o FILE or --force)");
  xsr::GenResult r = xsr::generate(fd, g);
  if (owned && ::close(fd) != 0 && r.error.empty()) r.error = std::string("close: ") + std::strerror(errno);
  if (!r.error.empty()) {
    if (owned) ::unlink(tmp.c_str());
    die(1, "gen: " + r.error);
  }
  if (owned && ::rename(tmp.c_str(), out.c_str()) != 0) {
    ::unlink(tmp.c_str());
    die(1, "gen: rename to " + out + ": " + std::strerror(errno));
  }
  std::fprintf(stderr, "xsr gen: %llu bytes, %llu records, %llu pages (pfns 0-%llu)\n",
               static_cast<unsigned long long>(r.bytes), static_cast<unsigned long long>(r.records),
               static_cast<unsigned long long>(r.pages),
               static_cast<unsigned long long>(r.pfn_range - 1));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fputs(kUsage, stderr);
    return 2;
  }
  const std::string cmd = argv[1];
  if (cmd == "-h" || cmd == "--help" || cmd == "help") {
    std::fputs(kUsage, stdout);
    return 0;
  }
  if (cmd == "verify") return cmd_verify(argc - 1, argv + 1);
  if (cmd == "gen") return cmd_gen(argc - 1, argv + 1);
  std::fprintf(stderr, "xsr: unknown command '%s'\n\n%s", cmd.c_str(), kUsage);
  return 2;
}
