// xsr verify: options and wiring (the work is in lib/verify).
#include <sys/socket.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <optional>
#include <span>

#include "common/json.h"
#include "common/progress.h"
#include "xsr/compress.h"
#include "xsr/net.h"
#include "xsr/verify.h"
#include "xsr_cmd.h"

namespace xsr_cmd {
namespace {

// Counts for --stats from what the verifier reads: records as they pass,
// page bodies from the PAGE_DATA entries' types, and the bytes up to the
// end of each record (finer than the verifier's progress calls).
class StatsObserver final : public xsr::StreamObserver {
 public:
  explicit StatsObserver(xsr::cli::RunStats& s) : s_(s) {}
  void header(std::string_view, std::uint64_t off, std::uint64_t len) override { s_.set_bytes(off + len); }
  void pfns(std::span<const std::byte> chunk) override {
    for (std::size_t i = 0; i + 8 <= chunk.size(); i += 8) {
      std::uint64_t pfn;
      std::memcpy(&pfn, chunk.data() + i, 8);
      pending_ += xsr::libxc::page_type_has_data(static_cast<unsigned>(pfn >> xsr::libxc::kPfnTypeShift));
    }
  }
  void record(xsr::Layer layer, std::uint32_t type, std::uint64_t off, std::uint64_t len,
              std::span<const std::byte>) override {
    s_.add_records(1);
    if (layer == xsr::Layer::libxc && type == xsr::libxc::PAGE_DATA) s_.add_pages(pending_);
    pending_ = 0;
    s_.set_bytes(off + sizeof(xsr::RecordHeader) + xsr::padded(len));
  }

 private:
  xsr::cli::RunStats& s_;
  std::uint64_t pending_ = 0;  // page bodies of the PAGE_DATA being read
};

}  // namespace

int cmd_verify(int argc, char** argv) {
  po::options_description desc(
      "Usage: xsr verify [options] [FILE|FD|-]\n"
      "       xsr verify [options] --listen ADDR\n\n"
      "Verifies a Xen v2/v3 migration stream or save image: every check of Xen's\n"
      "verify-stream-v2, without its defects. The format is detected unless given;\n"
      "gzip, zstd, xz and bzip2 compressed input is decompressed on the fly.\n"
      "--listen accepts one connection (HOST:PORT, [V6ADDR]:PORT or unix:PATH) and\n"
      "verifies what arrives; with port 0 the port taken is said on stderr\n"
      "('xsr verify: listening on 127.0.0.1:PORT').\n"
      "Exit status: 0 valid, 1 invalid or truncated (or no connection), 2 tool error.\n\nOptions");
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
      ("io", po::value<std::string>()->default_value("auto"), "auto, pread, mmap, uring or read")
      ("listen", po::value<std::string>(), "ADDR: accept one connection and verify what arrives on it")
      ("timeout", po::value<double>(), "with --listen: SECONDS to wait for the connection (default: no limit)");
  add_stats_options(desc);
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
  const xsr::IoMode mode = io_mode(vm["io"].as<std::string>(), "verify");

  std::unique_ptr<xsr::cli::RunStats> stats = make_stats(vm, "verify");

  std::string in = vm["input"].as<std::string>();
  std::string name = spec_name(in, "<stdin>");
  // --listen: the input is the one connection accepted. It is shut down
  // once the verdict is in (a sender still writing learns at once) and
  // closed on return, after the source that reads it is gone.
  struct Conn {
    int fd = -1;
    ~Conn() {
      if (fd >= 0) ::close(fd);
    }
  } conn;
  if (vm.count("timeout") && !vm.count("listen")) die(2, "verify: --timeout goes with --listen");
  if (vm.count("listen")) {
    if (!vm["input"].defaulted()) die(2, "verify: an input and --listen are exclusive");
    int timeout_ms = -1;
    if (vm.count("timeout")) {
      const double t = vm["timeout"].as<double>();
      if (!std::isfinite(t) || t <= 0 || t > 2e6) die(2, "verify: --timeout must be a number of seconds above 0");
      timeout_ms = std::max(1, static_cast<int>(t * 1000));
    }
    xsr::net::Address addr;
    std::string err, bound;
    if (!xsr::net::parse_address(vm["listen"].as<std::string>(), addr, &err)) die(2, "verify: --listen " + err);
    const int lfd = xsr::net::listen_on(addr, &err, &bound);
    if (lfd < 0) {
      if (!quiet) std::fprintf(stderr, "xsr verify: cannot listen on %s\n", err.c_str());
      return 1;
    }
    // Port 0: whoever started us learns the port from this line.
    if (verbose || (!addr.is_unix && addr.port == "0")) {
      std::fprintf(stderr, "xsr verify: listening on %s\n", bound.c_str());
      std::fflush(stderr);
    }
    conn.fd = xsr::net::accept_one(lfd, timeout_ms, &err);
    ::close(lfd);
    xsr::net::unlink_unix(addr);
    if (conn.fd < 0) {
      if (!quiet) std::fprintf(stderr, "xsr verify: %s\n", err.c_str());
      return 1;
    }
    if (verbose) std::fprintf(stderr, "xsr verify: connection on %s\n", bound.c_str());
    in = std::to_string(conn.fd);
    name = bound;
  }
  xsr::OpenResult src = xsr::open_input(in, mode);
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
  xsr::cli::Progress bar(total, !quiet && !vm["no-progress"].as<bool>());
  opt.progress = [&bar, s = stats.get()](std::uint64_t done) {
    bar.update(done);
    if (s) s->set_bytes(done);
  };
  std::optional<StatsObserver> counter;
  if (stats) {
    counter.emplace(*stats);
    opt.observer = &*counter;
    stats->start();
  }

  xsr::StreamStats st;
  const std::uint64_t t0 = xsr::mono_ns();
  xsr::Error e = xsr::verify(*src.source, opt, st);
  const double secs = static_cast<double>(xsr::mono_ns() - t0) / 1e9;
  // A failed read (damaged compressed data above all) outranks what the
  // verifier made of the bytes before it; a verdict reads a compressed
  // input on to its end, where its CRC or checksum lies.
  if ((e ? e.code != xsr::Errc::io : src.source->finish() != 0) && src.source->error())
    e = xsr::Error{xsr::Errc::io, src.source->pos(), xsr::kNoRecord, xsr::Layer::libxc, 0,
                   "read failed: " + src.source->error_text()};
  if (conn.fd >= 0) ::shutdown(conn.fd, SHUT_RDWR);
  bool stats_ok = true;
  if (stats) {
    stats->set_bytes(st.bytes);
    stats->stop();
    stats_ok = write_stats_json(stats.get(), vm, "verify", xsr::cli::verdict_json(e ? e.message() : std::string()));
  }
  if (json) std::fputs(xsr::cli::dump(xsr::cli::verify_json(name, e, st, secs), 2).c_str(), stdout);
  if (e) {
    if (!quiet) std::fprintf(stderr, "xsr verify: %s: %s\n", name.c_str(), e.message().c_str());
    return xsr::exit_code(e.code);
  }
  if (!stats_ok) return 1;
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

}  // namespace xsr_cmd
