// xsr verify: options and wiring (the work is in lib/verify).
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <optional>
#include <span>

#include "common/json.h"
#include "common/output.h"
#include "common/progress.h"
#include "xsr/compress.h"
#include "xsr/net.h"
#include "xsr/units.h"
#include "xsr/verify.h"
#include "xsr_cmd.h"

namespace xsr_cmd {
namespace {

po::options_description verify_options() {
  po::options_description desc(
      "Usage: xsr verify [options] [FILE|FD|-]\n"
      "       xsr verify [options] --listen ADDR\n\n"
      "Verifies a Xen v2/v3 migration stream or save image: every check of Xen's\n"
      "verify-stream-v2, without its defects. The format is detected unless given;\n"
      "--strict refuses exactly what Xen 4.17's restore (libxenguest and the\n"
      "hypervisor's checks) would refuse or crash on, so a stream it accepts is one\n"
      "Xen can restore (docs/strict.md lists every rule and its Xen source).\n"
      "gzip, zstd, xz and bzip2 compressed input is decompressed on the fly.\n"
      "--listen accepts one connection (HOST:PORT, [V6ADDR]:PORT or unix:PATH) and\n"
      "verifies what arrives; with port 0 the port taken is said on stderr\n"
      "('xsr verify: listening on 127.0.0.1:PORT'); no connection in time is status 1.\n\nOptions");
  // clang-format off
  desc.add_options()
      ("help,h", "show this help")
      ("input", po::value<std::string>()->default_value("-"), "FILE, FD number or - (stdin)")
      ("format,f", po::value<std::string>()->default_value("auto"), "auto, libxc, libxl or xl")
      ("strict,s", po::bool_switch(), "refuse what Xen 4.17's restore refuses (docs/strict.md)")
      ("checkpointed", po::bool_switch(), "with --strict: a Remus stream: CHECKPOINTs allowed, judged per checkpoint")
      ("json,j", po::bool_switch(), "print the verdict and counts as JSON on stdout")
      ("verbose,v", po::bool_switch(), "print every record as the reference's -v does, and the I/O path")
      ("quiet,q", po::bool_switch(), "print nothing; the exit status tells")
      ("no-progress", po::bool_switch(), "no progress bar even on a terminal")
      ("io", po::value<std::string>()->default_value("auto"), "auto, pread, mmap, uring or read")
      ("listen", po::value<std::string>(), "ADDR: accept one connection and verify what arrives on it")
      ("timeout", po::value<double>(), "with --listen: SECONDS to wait for the connection (default: no limit)");
  // clang-format on
  cli::add_stats_options(desc);
  return desc;
}

// Counts for --stats from what the verifier reads: records as they pass,
// page bodies from the PAGE_DATA entries' types, and the bytes up to the
// end of each record (finer than the verifier's progress calls).
class StatsObserver final : public xsr::StreamObserver {
 public:
  explicit StatsObserver(cli::RunStats& s) : s_(s) {}
  void header(xsr::HeaderKind, std::uint64_t off, std::uint64_t len) override { s_.set_bytes(off + len); }
  void pfns(std::span<const std::byte> chunk) override { pending_ += xsr::count_data_pages(chunk); }
  void record(xsr::Layer layer, std::uint32_t type, std::uint64_t off, std::uint64_t len,
              std::span<const std::byte>) override {
    s_.add_records(1);
    if (layer == xsr::Layer::libxc && type == xsr::libxc::PAGE_DATA) s_.add_pages(pending_);
    pending_ = 0;
    s_.set_bytes(off + sizeof(xsr::RecordHeader) + xsr::padded(len));
  }

 private:
  cli::RunStats& s_;
  std::uint64_t pending_ = 0;  // page bodies of the PAGE_DATA being read
};

// The input of one run: a spec for open_input and its name in messages.
// With --listen it is the one connection accepted, shut down once the
// verdict is in (a sender still writing learns at once) and closed by the
// destructor, after the source that reads it is gone.
struct Input {
  std::string spec, name;
  int conn = -1;
  Input() = default;
  Input(const Input&) = delete;
  Input& operator=(const Input&) = delete;
  ~Input() {
    if (conn >= 0) ::close(conn);
  }
};

// --listen ADDR [--timeout SECONDS]: waits for one connection and makes it
// the input. False, with the reason said on stderr unless `quiet`, when no
// connection came.
bool accept_input(const po::variables_map& vm, bool verbose, bool quiet, Input& in) {
  if (!vm["input"].defaulted()) cli::usage_error("verify", "an input and --listen are exclusive");
  int timeout_ms = -1;
  if (vm.count("timeout")) {
    const double t = vm["timeout"].as<double>();
    if (!std::isfinite(t) || t <= 0 || t > 2e6)
      cli::usage_error("verify", "--timeout must be a number of seconds above 0");
    timeout_ms = std::max(1, static_cast<int>(t * 1000));
  }
  const auto a = xsr::net::parse_address(vm["listen"].as<std::string>());
  if (!a.ok()) cli::usage_error("verify", "--listen " + a.error().detail);
  const xsr::net::Address& addr = a.value();
  std::string err, bound;
  const int lfd = listen_announced(addr, "verify", verbose, &err, &bound);
  if (lfd < 0) {
    if (!quiet) cli::print(stderr, "xsr verify: cannot listen on %s\n", err.c_str());
    return false;
  }
  const auto c = xsr::net::accept_one(lfd, timeout_ms);
  in.conn = c.ok() ? c.value() : -1;
  if (!c.ok()) err = c.error().detail;
  ::close(lfd);
  xsr::net::unlink_unix(addr);
  if (in.conn < 0) {
    if (!quiet) cli::print(stderr, "xsr verify: %s\n", err.c_str());
    return false;
  }
  if (verbose) cli::print(stderr, "xsr verify: connection on %s\n", bound.c_str());
  in.spec = std::to_string(in.conn);
  in.name = bound;
  return true;
}

// The line a valid stream gets on stdout.
void print_valid(const std::string& name, const xsr::StreamStats& st) {
  const std::string from =
      st.legacy_converted ? ", legacy converted"
                          : " from Xen " + std::to_string(st.xen_major) + "." + std::to_string(st.xen_minor);
  const std::string checkpoints = st.checkpoints ? ", " + xsr::counted(st.checkpoints, "checkpoint") : "";
  cli::print(stdout, "%s: valid %s stream (libxc v%u, %s%s), %s, %s, %s%s\n", name.c_str(),
             st.container.c_str(), st.libxc_version, st.domain_type == 1 ? "x86 PV" : "x86 HVM", from.c_str(),
             xsr::format_bytes(st.bytes).c_str(), xsr::counted(st.records, "record").c_str(),
             xsr::counted(st.pages, "page").c_str(), checkpoints.c_str());
}

// A failed read (damaged compressed data above all) outranks what the
// verifier made of the bytes before it; a verdict reads a compressed input
// on to its end, where its CRC or checksum lies.
// A decompressor may hand out garbage before it sees the damage (a bzip2
// block's CRC comes at the block's end, up to 900 kB on): after a verdict
// on such bytes, read on up to 16 MiB to hear of it before blaming them.
xsr::Error read_error_first(xsr::Error e, xsr::Source& src) {
  const std::uint64_t at = src.pos();
  if (e && e.code != xsr::Errc::io && xsr::compression_of(src))
    for (std::uint64_t left = 16u << 20; left > 0 && !src.error();) {
      const std::uint64_t n = src.skip(std::min<std::uint64_t>(left, 1u << 20));
      if (n == 0) break;
      left -= n;
    }
  if ((e ? e.code != xsr::Errc::io : src.finish() != 0) && src.error())
    return xsr::Error::io(e ? e.offset : at, "read failed: " + src.error_text());
  return e;
}

// Hooks the verifier calls: -v lines, notes, the progress bar, --stats.
void wire_callbacks(xsr::VerifyOptions& opt, bool verbose, bool json, bool quiet, cli::Progress& bar,
                    cli::RunStats* stats) {
  if (verbose && !json) opt.info = [](const std::string& l) { cli::print_line(stdout, l); };
  if (!quiet)
    opt.note = [](const std::string& l) { cli::print(stderr, "xsr verify: note: %s\n", l.c_str()); };
  opt.progress = [&bar, stats](std::uint64_t done) {
    bar.update(done);
    if (stats) stats->set_bytes(done);
  };
}

}  // namespace

int cmd_verify(int argc, char** argv) {
  const po::options_description desc = verify_options();
  po::positional_options_description pos;
  pos.add("input", 1);
  const po::variables_map vm = cli::parse(argc, argv, desc, pos, "verify");
  if (vm.count("help")) return print_help(desc);
  xsr::VerifyOptions opt;
  opt.format = cli::read_format("verify", vm["format"].as<std::string>());
  opt.strict = vm["strict"].as<bool>();
  opt.checkpointed = vm["checkpointed"].as<bool>();
  const bool json = vm["json"].as<bool>(), verbose = vm["verbose"].as<bool>(), quiet = vm["quiet"].as<bool>();
  const xsr::IoMode mode = cli::io_mode("verify", vm["io"].as<std::string>());
  std::unique_ptr<cli::RunStats> stats = cli::make_stats(vm, "verify");

  Input in;
  in.spec = vm["input"].as<std::string>();
  in.name = cli::display_name(in.spec, "<stdin>");
  if (vm.count("timeout") && !vm.count("listen")) cli::usage_error("verify", "--timeout goes with --listen");
  if (vm.count("listen") && !accept_input(vm, verbose, quiet, in)) return cli::kFailed;
  cli::note_input(in.spec);  // --stats-json may not overwrite it
  xsr::OpenResult src = xsr::open_input(in.spec, mode);
  if (!src.source) cannot_open("verify", src.error);
  if (verbose) {
    cli::print(stderr, "xsr verify: reading %s through %s\n", in.name.c_str(),
               std::string(src.source->kind()).c_str());
    if (!src.note.empty()) cli::print(stderr, "xsr verify: %s\n", src.note.c_str());
  }
  // A bar only for large inputs on a terminal: small ones finish first.
  cli::Progress bar(src.source->remaining(), !quiet && !vm["no-progress"].as<bool>());
  wire_callbacks(opt, verbose, json, quiet, bar, stats.get());
  std::optional<StatsObserver> counter;
  if (stats) {
    opt.observer = &counter.emplace(*stats);
    stats->start();
  }

  xsr::StreamStats st;
  const std::uint64_t t0 = xsr::mono_ns();
  xsr::Error e =
      opt.format == xsr::Format::autodetect
          ? stream_or_error(*src.source, "convert it with 'xsr convert' (inspect and extract read it)")
          : xsr::Error{};
  if (!e) e = xsr::verify(*src.source, opt, st);
  const double secs = static_cast<double>(xsr::mono_ns() - t0) / 1e9;
  e = read_error_first(e, *src.source);
  if (in.conn >= 0) ::shutdown(in.conn, SHUT_RDWR);
  bool stats_ok = true;
  if (stats) {
    stats->set_bytes(st.bytes);
    stats->stop();
    stats_ok =
        cli::write_stats_json(stats.get(), vm, "verify", cli::verdict_json(e ? e.message() : std::string()));
  }
  // Bytes after END in a file: Xen's restore stops at END and never reads them.
  const std::int64_t after = e ? -1 : src.source->remaining();
  if (json)
    cli::print(stdout, "%s",
               cli::dump(cli::verify_json(in.name, e, st, secs, xsr::compression_of(*src.source), after), 2)
                   .c_str());
  if (e) {
    if (!quiet) cli::print(stderr, "xsr verify: %s: %s\n", in.name.c_str(), e.message().c_str());
    return cli::exit_status(e);
  }
  if (!stats_ok) return cli::kOutput;
  if (!quiet && !json) print_valid(in.name, st);
  if (after > 0 && !quiet)
    cli::print(stderr, "xsr verify: note: %s: %lld bytes after the stream's END (not part of the image)\n",
               in.name.c_str(), static_cast<long long>(after));
  return cli::kOk;
}

}  // namespace xsr_cmd
