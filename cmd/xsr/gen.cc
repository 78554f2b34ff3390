// xsr gen: options and wiring (the work is in lib/gen).
#include <sys/socket.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>

#include "common/json.h"
#include "common/output.h"
#include "common/progress.h"
#include "xsr/compress.h"
#include "xsr/gen.h"
#include "xsr/net.h"
#include "xsr/units.h"
#include "xsr_cmd.h"

namespace xsr_cmd {
namespace {

po::options_description gen_options() {
  po::options_description desc(
      "Usage: xsr gen [options] [-o OUT]\n"
      "       xsr gen [options] --connect ADDR\n\n"
      "Writes a deterministic v2/v3 stream: the same options and seed give the same\n"
      "bytes. Each page holds its pfn and the seed in its first 16 bytes (then the\n"
      "round: 1, or 3 for a checkpoint's resent pages).\n"
      "OUT follows xsr's output rule (a FILE appears only once complete; a device or\n"
      "FIFO is written in place); a FILE named .zst, .gz, .xz or .bz2 is compressed\n"
      "with that codec. A --size that does not fit in the free space of a file's\n"
      "file system is refused.\n"
      "--connect sends it over one connection (HOST:PORT, [V6ADDR]:PORT or unix:PATH,\n"
      "retried for 10 s while nobody listens) instead. --rate paces it: RATE bytes\n"
      "per second at most on average since the start (K, M, G: binary, so 500M is\n"
      "500 MiB/s), in writes of at most RATE/20 bytes.\n\nOptions");
  // clang-format off
  desc.add_options()
      ("help,h", "show this help")
      ("output,o", po::value<std::string>()->default_value("-"), "file, FD number or - (stdout)")
      ("size", po::value<std::string>()->default_value("16M"), "approximate size: 64K, 512M, 4G, ...")
      ("type,t", po::value<std::string>()->default_value("hvm"), "guest type: hvm or pv")
      ("format,f", po::value<std::string>()->default_value("libxc"), "libxc, libxl or xl")
      ("stream-version", po::value<unsigned>()->default_value(3), "libxc stream version: 2 or 3")
      ("seed", po::value<std::uint64_t>()->default_value(1), "seed for pfn order and contents")
      ("order", po::value<std::string>()->default_value("shuffled"), "pfn order within a batch: shuffled, or sequential as Xen's save sends them")
      ("batch", po::value<unsigned>()->default_value(1024), "pfns per PAGE_DATA record (1-1024)")
      ("checkpoints", po::value<unsigned>()->default_value(0), "checkpoint rounds after the first")
      ("vcpus", po::value<unsigned>()->default_value(2), "vcpus (HVM and PV)")
      ("width", po::value<unsigned>()->default_value(64), "PV guest width: 32 or 64")
      ("legacy", po::bool_switch(), "a legacy (Xen <= 4.5) stream; --format xl adds an xl header")
      ("toolstack-width", po::value<unsigned>()->default_value(64), "legacy toolstack width: 32 or 64")
      ("mixed-pages", po::bool_switch(), "page bodies like a guest's memory (zero, text-like, random)")
      ("compress", po::value<std::string>(), "compress the output: zstd, gzip, xz or bzip2")
      ("level", po::value<int>()->default_value(0), "compression level (0: the codec's default); needs a codec")
      ("force", po::bool_switch(), "write binary data to a terminal anyway")
      ("no-progress", po::bool_switch(), "no progress bar even on a terminal")
      ("connect", po::value<std::string>(), "ADDR: send the stream over a connection to ADDR instead of -o")
      ("rate", po::value<std::string>(), "RATE: at most RATE bytes per second (64K, 16M, 1G, ...)");
  // clang-format on
  cli::add_stats_options(desc);
  return desc;
}

// The stream asked for, and its --compress codec (checked in between, as
// the options always were).
struct GenRequest {
  xsr::GenOptions g;
  xsr::Codec codec = xsr::Codec::none;
};

GenRequest gen_request(const po::variables_map& vm) {
  GenRequest req;
  xsr::GenOptions& g = req.g;
  if (!xsr::parse_size(vm["size"].as<std::string>(), g.size) || g.size == 0)
    cli::usage_error(
        "gen", "--size must be a size above 0 (64K, 512M, 4G), not '" + vm["size"].as<std::string>() + "'");
  g.hvm = cli::choose<bool>("gen", "--type", vm["type"].as<std::string>(), {{"hvm", true}, {"pv", false}});
  using Container = xsr::GenOptions::Container;
  g.container = cli::choose<Container>(
      "gen", "--format", vm["format"].as<std::string>(),
      {{"libxc", Container::libxc}, {"libxl", Container::libxl}, {"xl", Container::xl}});
  g.version = cli::stream_version("gen", vm["stream-version"].as<unsigned>());
  g.seed = vm["seed"].as<std::uint64_t>();
  g.shuffle = cli::choose<bool>("gen", "--order", vm["order"].as<std::string>(),
                                {{"shuffled", true}, {"sequential", false}});
  g.batch = vm["batch"].as<unsigned>();
  if (g.batch < 1 || g.batch > 1024) cli::usage_error("gen", "--batch must be 1 to 1024");
  g.checkpoints = vm["checkpoints"].as<unsigned>();
  g.vcpus = vm["vcpus"].as<unsigned>();
  if (g.vcpus < 1 || g.vcpus > xsr::kGenMaxVcpus)
    cli::usage_error("gen", "--vcpus must be 1 to " + std::to_string(xsr::kGenMaxVcpus));
  g.pv_width = cli::width_bits("gen", "--width", vm["width"].as<unsigned>()) / 8;
  g.legacy = vm["legacy"].as<bool>();
  g.mixed_pages = vm["mixed-pages"].as<bool>();
  req.codec = cli::output_codec(vm, "gen", vm.count("connect") ? "" : vm["output"].as<std::string>());
  g.toolstack_width = cli::width_bits("gen", "--toolstack-width", vm["toolstack-width"].as<unsigned>());
  if (const std::uint64_t max = xsr::gen_max_size(g); g.size > max)
    cli::usage_error("gen", "--size must be at most " + xsr::format_bytes(max) + " for this stream (the " +
                                std::string(g.legacy ? "legacy pfn entries" : "PV P2M frame list") +
                                " cannot name more pfns)");
  if (vm.count("rate")) {
    const std::string rate = vm["rate"].as<std::string>();
    if (!xsr::parse_size(rate, g.rate) || g.rate == 0)
      cli::usage_error(
          "gen", "--rate must be a number of bytes per second above 0 (64K, 16M, 1G), not '" + rate + "'");
  }
  return req;
}

// Where the stream goes: one connection (--connect) or -o OUT (a FILE
// appears only once complete).
class GenOutput {
 public:
  GenOutput() = default;
  GenOutput(const GenOutput&) = delete;
  GenOutput& operator=(const GenOutput&) = delete;
  ~GenOutput() {
    if (sock_ >= 0) ::close(sock_);
  }

  void open(const po::variables_map& vm, const GenRequest& req) {
    const bool to_socket = vm.count("connect") > 0;
    if (to_socket && !vm["output"].defaulted())
      cli::usage_error("gen", "an output and --connect are exclusive");
    if (to_socket) {
      const auto a = xsr::net::parse_address(vm["connect"].as<std::string>());
      if (!a.ok()) cli::usage_error("gen", "--connect " + a.error().detail);
      const auto c = xsr::net::connect_to(a.value(), 10000);
      if (!c.ok()) cli::die(cli::kOutput, "gen: cannot connect to " + c.error().detail);
      sock_ = c.value();
      return;
    }
    cli::OutputRules rules;
    rules.binary = true;
    rules.force = vm["force"].as<bool>();
    file_.open_or_die(vm["output"].as<std::string>(), "gen", rules);
    // Uncompressed, the stream's size is known: a file it cannot fit in is
    // refused now rather than filled up.
    struct statvfs fs;
    if (req.codec != xsr::Codec::none || !file_.is_regular() || ::fstatvfs(file_.fd(), &fs) != 0) return;
    const std::uint64_t free = std::uint64_t{fs.f_bavail} * fs.f_frsize;
    if (req.g.size > free)
      cli::die(cli::kOutput, "gen: --size " + vm["size"].as<std::string>() + " does not fit in " +
                                 file_.name() + ": its file system has " + xsr::format_bytes(free) + " free");
  }

  int fd() const { return sock_ >= 0 ? sock_ : file_.fd(); }

  // Ends the output: a connection is shut down (end of stream for the
  // peer) and closed; a FILE is put in place, or removed when `error` is
  // set. Returns `error` (after the output's name), or else what failed here.
  std::string finish(std::string error) {
    if (sock_ >= 0) {
      if (::shutdown(sock_, SHUT_WR) != 0 && error.empty())
        error = std::string("shutdown: ") + std::strerror(errno);
      if (::close(sock_) != 0 && error.empty()) error = std::string("close: ") + std::strerror(errno);
      sock_ = -1;
      return error;
    }
    std::string err;
    if (!error.empty()) {
      file_.abort();
      return file_.name() + ": " + error;
    }
    if (!file_.commit(&err)) error = err;
    return error;
  }

 private:
  int sock_ = -1;
  cli::Output file_;
};

}  // namespace

int cmd_gen(int argc, char** argv) {
  const po::options_description desc = gen_options();
  po::positional_options_description pos;
  pos.add("output", 1);
  const po::variables_map vm = cli::parse(argc, argv, desc, pos, "gen");
  if (vm.count("help")) return print_help(desc);
  GenRequest req = gen_request(vm);
  std::unique_ptr<cli::RunStats> stats = cli::make_stats(vm, "gen");
  GenOutput out;
  out.open(vm, req);
  cli::ignore_sigpipe();  // a reader that left is an error line (EPIPE), not a silent death
  xsr::CompressedOutput zout;
  const int fd = compressed_output(zout, out.fd(), req.codec, vm["level"].as<int>(), "gen", false);
  // A bar on stderr for a large stream, its size known (--size is close);
  // --stats: bytes as written; records and pages as generated.
  cli::Progress bar(static_cast<std::int64_t>(req.g.size), !vm["no-progress"].as<bool>());
  std::uint64_t counted_records = 0, counted_pages = 0;
  if (stats || bar.enabled())
    req.g.progress = [&, s = stats.get()](std::uint64_t bytes, std::uint64_t records, std::uint64_t pages) {
      bar.update(bytes);
      if (!s) return;
      s->set_bytes(bytes);
      s->add_records(records - counted_records);
      s->add_pages(pages - counted_pages);
      counted_records = records;
      counted_pages = pages;
    };
  if (stats) stats->start();
  xsr::GenResult r = xsr::generate(fd, req.g);
  // A failed compression stops generate() with EPIPE; zout says the real cause.
  if (req.codec != xsr::Codec::none)
    if (xsr::Error e = zout.finish()) r.error = e;
  const std::string error = out.finish(r.error.detail);
  if (stats) {
    // Whatever the hook has not reported yet.
    stats->set_bytes(r.bytes);
    stats->add_records(r.records - std::min(r.records, counted_records));
    stats->add_pages(r.pages - std::min(r.pages, counted_pages));
    stats->stop();
    if (!cli::write_stats_json(stats.get(), vm, "gen", cli::verdict_json(error)) && error.empty())
      return cli::kOutput;
  }
  if (!error.empty()) cli::die(cli::kOutput, "gen: " + error);
  cli::print(stderr, "xsr gen: %llu bytes, %llu records, %llu pages (pfns 0-%llu)\n",
             static_cast<unsigned long long>(r.bytes), static_cast<unsigned long long>(r.records),
             static_cast<unsigned long long>(r.pages), static_cast<unsigned long long>(r.pfn_range - 1));
  return cli::kOk;
}

}  // namespace xsr_cmd
