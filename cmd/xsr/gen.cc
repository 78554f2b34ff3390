// xsr gen: options and wiring (the work is in lib/gen).
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <iostream>

#include "common/json.h"
#include "common/output.h"
#include "xsr/compress.h"
#include "xsr/gen.h"
#include "xsr/net.h"
#include "xsr_cmd.h"

namespace xsr_cmd {

int cmd_gen(int argc, char** argv) {
  po::options_description desc(
      "Usage: xsr gen [options] [-o OUT]\n"
      "       xsr gen [options] --connect ADDR\n\n"
      "Writes a deterministic v2/v3 stream: the same options and seed give the same\n"
      "bytes. Each page holds its pfn and the seed in its first 16 bytes.\n"
      "--connect sends it over one connection (HOST:PORT, [V6ADDR]:PORT or unix:PATH,\n"
      "retried for 10 s while nobody listens) instead. --rate paces it: RATE bytes\n"
      "per second at most on average since the start (K, M, G: binary, so 500M is\n"
      "500 MiB/s), in writes of at most RATE/20 bytes.\n\nOptions");
  desc.add_options()
      ("help,h", "show this help")
      ("output,o", po::value<std::string>()->default_value("-"), "file, FD number or - (stdout)")
      ("size", po::value<std::string>()->default_value("16M"), "approximate size: 64K, 512M, 4G, ...")
      ("type,t", po::value<std::string>()->default_value("hvm"), "guest type: hvm or pv")
      ("format,f", po::value<std::string>()->default_value("libxc"), "libxc, libxl or xl")
      ("stream-version", po::value<unsigned>()->default_value(3), "libxc stream version: 2 or 3")
      ("seed", po::value<std::uint64_t>()->default_value(1), "seed for pfn order and contents")
      ("order", po::value<std::string>()->default_value("shuffled"),
       "pfn order within a batch: shuffled, or sequential as Xen's save sends them")
      ("batch", po::value<unsigned>()->default_value(1024), "pfns per PAGE_DATA record (1-1024)")
      ("checkpoints", po::value<unsigned>()->default_value(0), "checkpoint rounds after the first")
      ("vcpus", po::value<unsigned>()->default_value(2), "PV vcpus")
      ("width", po::value<unsigned>()->default_value(64), "PV guest width: 32 or 64")
      ("legacy", po::bool_switch(), "a legacy (Xen <= 4.5) stream; --format xl adds an xl header")
      ("toolstack-width", po::value<unsigned>()->default_value(64), "legacy toolstack width: 32 or 64")
      ("mixed-pages", po::bool_switch(), "page bodies like a guest's memory (zero, text-like, random)")
      ("compress", po::value<std::string>(), "compress the output: zstd, gzip, xz or bzip2")
      ("level", po::value<int>()->default_value(0), "compression level (0: the codec's default)")
      ("force", po::bool_switch(), "write to a terminal anyway")
      ("connect", po::value<std::string>(), "ADDR: send the stream over a connection to ADDR instead of -o")
      ("rate", po::value<std::string>(), "RATE: at most RATE bytes per second (64K, 16M, 1G, ...)");
  add_stats_options(desc);
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
  const std::string order = vm["order"].as<std::string>();
  if (order != "shuffled" && order != "sequential") die(2, "gen: --order must be shuffled or sequential");
  g.shuffle = order == "shuffled";
  g.batch = vm["batch"].as<unsigned>();
  if (g.batch < 1 || g.batch > 1024) die(2, "gen: --batch must be 1 to 1024");
  g.checkpoints = vm["checkpoints"].as<unsigned>();
  g.vcpus = vm["vcpus"].as<unsigned>();
  const unsigned width = vm["width"].as<unsigned>();
  if (width != 32 && width != 64) die(2, "gen: --width must be 32 or 64");
  g.pv_width = width / 8;
  g.legacy = vm["legacy"].as<bool>();
  g.mixed_pages = vm["mixed-pages"].as<bool>();
  const xsr::Codec codec = output_codec(vm, "gen");
  g.toolstack_width = vm["toolstack-width"].as<unsigned>();
  if (g.toolstack_width != 32 && g.toolstack_width != 64) die(2, "gen: --toolstack-width must be 32 or 64");
  if (vm.count("rate")) {
    const std::string rate = vm["rate"].as<std::string>();
    if (!xsr::parse_size(rate, g.rate) || g.rate == 0)
      die(2, "gen: --rate must be a number of bytes per second above 0 (64K, 16M, 1G), not '" + rate + "'");
  }
  std::unique_ptr<xsr::cli::RunStats> stats = make_stats(vm, "gen");
  const bool to_socket = vm.count("connect") > 0;
  if (to_socket && !vm["output"].defaulted()) die(2, "gen: an output and --connect are exclusive");
  xsr::net::Address addr;
  if (std::string err; to_socket && !xsr::net::parse_address(vm["connect"].as<std::string>(), addr, &err))
    die(2, "gen: --connect " + err);

  const std::string out = vm["output"].as<std::string>();
  int fd;
  bool owned = false;
  std::string tmp;
  if (to_socket) {
    std::string err;
    fd = xsr::net::connect_to(addr, 10000, &err);
    if (fd < 0) die(1, "gen: cannot connect to " + err);
    owned = true;
  } else if (out == "-") fd = 1;
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
  xsr::cli::ignore_sigpipe();  // a reader that left is an error line (EPIPE), not a silent death
  xsr::CompressedOutput zout;
  std::string zerr;
  if (codec != xsr::Codec::none) {
    xsr::cli::ignore_sigpipe();  // a failed compression stops generate() with EPIPE
    if (!zout.start(fd, codec, vm["level"].as<int>(), &zerr)) die(2, "gen: " + zerr);
  }
  // --stats: bytes as written; records and pages as generated.
  std::uint64_t counted_records = 0, counted_pages = 0;
  if (stats) {
    g.progress = [&, s = stats.get()](std::uint64_t bytes, std::uint64_t records, std::uint64_t pages) {
      s->set_bytes(bytes);
      s->add_records(records - counted_records);
      s->add_pages(pages - counted_pages);
      counted_records = records;
      counted_pages = pages;
    };
    stats->start();
  }
  xsr::GenResult r = xsr::generate(codec != xsr::Codec::none ? zout.fd() : fd, g);
  if (codec != xsr::Codec::none && !(zerr = zout.finish()).empty()) r.error = zerr;
  // A socket: end of stream for the peer, then closed.
  if (to_socket && ::shutdown(fd, SHUT_WR) != 0 && r.error.empty())
    r.error = std::string("shutdown: ") + std::strerror(errno);
  if (owned && ::close(fd) != 0 && r.error.empty()) r.error = std::string("close: ") + std::strerror(errno);
  if (!r.error.empty() && !tmp.empty()) ::unlink(tmp.c_str());
  if (r.error.empty() && !tmp.empty() && ::rename(tmp.c_str(), out.c_str()) != 0) {
    r.error = "rename to " + out + ": " + std::strerror(errno);
    ::unlink(tmp.c_str());
  }
  if (stats) {
    // Whatever the hook has not reported yet.
    stats->set_bytes(r.bytes);
    stats->add_records(r.records - std::min(r.records, counted_records));
    stats->add_pages(r.pages - std::min(r.pages, counted_pages));
    stats->stop();
  }
  if (stats && !write_stats_json(stats.get(), vm, "gen", xsr::cli::verdict_json(r.error)) && r.error.empty()) return 1;
  if (!r.error.empty()) die(1, "gen: " + r.error);
  std::fprintf(stderr, "xsr gen: %llu bytes, %llu records, %llu pages (pfns 0-%llu)\n",
               static_cast<unsigned long long>(r.bytes), static_cast<unsigned long long>(r.records),
               static_cast<unsigned long long>(r.pages),
               static_cast<unsigned long long>(r.pfn_range - 1));
  return 0;
}

}  // namespace xsr_cmd
