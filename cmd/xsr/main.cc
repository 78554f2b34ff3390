// xsr: one command for Xen save images and migration streams.
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/program_options.hpp>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "common/json.h"
#include "common/output.h"
#include "common/progress.h"
#include "xsr/compress.h"
#include "xsr/convert.h"
#include "xsr/gen.h"
#include "xsr/net.h"
#include "xsr/source.h"
#include "common/stats.h"
#include "xsr/verify.h"
#include "xsr_cmd.h"

namespace po = boost::program_options;

namespace {

using namespace xsr_cmd;

const char kUsage[] =
    "Usage: xsr <command> [options]\n"
    "\n"
    "Commands:\n"
    "  verify [FILE|FD|-]   check a v2/v3 stream (libxc, libxl, xl or libvirt wrapped)\n"
    "  convert IN OUT       convert a legacy (Xen <= 4.5) image or stream to v3\n"
    "  inspect [IMAGE]      summarise what an image holds (records, pages, vcpus, params)\n"
    "  extract IMAGE -o RAW write guest memory as a sparse raw file or an ELF core\n"
    "  relay [IN] [-o OUT]  verify a stream in flight and forward it (pipes, sockets)\n"
    "  gen [-o OUT]         write a deterministic test stream\n"
    "\n"
    "'xsr <command> --help' describes a command's options.\n";

// --compress CODEC, or none.
xsr::Codec output_codec(const po::variables_map& vm, const char* cmd) {
  if (!vm.count("compress")) return xsr::Codec::none;
  const std::string c = vm["compress"].as<std::string>();
  const std::optional<xsr::Codec> codec = xsr::parse_codec(c);
  if (!codec) die(2, std::string(cmd) + ": --compress must be zstd, gzip, xz or bzip2, not '" + c + "'");
  return *codec;
}

// --stats, --stats-interval, --stats-json: the same three on every command
// that moves a stream.
void add_stats_options(po::options_description& d) {
  d.add_options()
      ("stats", po::bool_switch(), "a line on stderr every --stats-interval (time, bytes, pages, records, "
       "MiB/s average and now, cpu s/GiB) and a final summary line")
      ("stats-interval", po::value<double>()->default_value(1.0), "SECONDS between --stats lines and samples")
      ("stats-json", po::value<std::string>(),
       "write counts, throughput, cpu, peak RSS and the throughput samples as JSON to FILE");
}

// A RunStats when --stats or --stats-json asked for one, else null.
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

// Writes --stats-json when asked; false (with the error line printed) when
// it cannot be written.
bool write_stats_json(const xsr::cli::RunStats* stats, const po::variables_map& vm, const char* cmd,
                      const xsr::cli::Json& extra) {
  if (!stats || !vm.count("stats-json")) return true;
  std::string err;
  if (stats->write_json(vm["stats-json"].as<std::string>(), extra, &err)) return true;
  std::fprintf(stderr, "xsr %s: --stats-json: %s\n", cmd, err.c_str());
  return false;
}

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

int cmd_convert(int argc, char** argv) {
  po::options_description desc(
      "Usage: xsr convert [options] IN OUT\n\n"
      "Converts a legacy (Xen <= 4.5) save image or migration stream to a v3 stream,\n"
      "byte for byte as Xen's convert-legacy-stream does. IN and OUT are FILE, FD or -.\n"
      "The toolstack width, guest type and an xl or libvirt header are detected;\n"
      "options override. A FILE output appears only once complete.\n"
      "Exit status: 0 converted, 1 bad or truncated input (or output failure), 2 unsupported.\n\nOptions");
  desc.add_options()
      ("help,h", "show this help")
      ("input", po::value<std::string>(), "legacy input: FILE, FD or -")
      ("output", po::value<std::string>(), "v3 output: FILE, FD or -")
      ("width,w", po::value<unsigned>(), "legacy toolstack width: 32 or 64")
      ("guest,g", po::value<std::string>(), "guest type: pv or hvm")
      ("format,f", po::value<std::string>(),
       "libxc or libxl (default: libxl behind an xl or libvirt header, else libxc)")
      ("skip-qemu", po::bool_switch(), "libxc output: leave the qemu record out")
      ("stream-version", po::value<unsigned>()->default_value(3), "2 writes a v2 stream (Xen 4.6-4.13)")
      ("verify", po::bool_switch(), "verify the output (--strict rules) before it is put in place")
      ("compress", po::value<std::string>(), "compress the output: zstd, gzip, xz or bzip2")
      ("level", po::value<int>()->default_value(0), "compression level (0: the codec's default)")
      ("verbose,v", po::bool_switch(), "the reference's -v lines on stdout; detection and I/O paths on stderr")
      ("quiet,q", po::bool_switch(), "print nothing; the exit status tells")
      ("no-progress", po::bool_switch(), "no progress bar even on a terminal")
      ("io", po::value<std::string>()->default_value("auto"), "auto, pread, mmap, uring or read");
  add_stats_options(desc);
  po::positional_options_description pos;
  pos.add("input", 1).add("output", 1);
  po::variables_map vm = parse(argc, argv, desc, pos, "convert");
  if (vm.count("help")) {
    std::cout << desc;
    return 0;
  }
  if (!vm.count("input") || !vm.count("output")) die(2, "convert: needs IN and OUT (see 'xsr convert --help')");
  const bool verbose = vm["verbose"].as<bool>(), quiet = vm["quiet"].as<bool>();
  const std::string in = vm["input"].as<std::string>(), outspec = vm["output"].as<std::string>();
  const std::string in_name = spec_name(in, "<stdin>");
  std::unique_ptr<xsr::cli::RunStats> stats = make_stats(vm, "convert");
  xsr::cli::ignore_sigpipe();
  xsr::OpenResult src = xsr::open_input(in, io_mode(vm["io"].as<std::string>(), "convert"));
  if (!src.source) die(1, "convert: cannot open " + src.error);

  xsr::ConvertOptions opt;
  xsr::LegacyGuess g = xsr::detect_legacy(*src.source);
  if (g.xl && g.xl_libxl) die(1, "convert: " + in_name + ": the xl header says a v2 stream follows: nothing to convert");
  opt.xl = g.xl;
  opt.libvirt = g.libvirt;
  opt.width = g.width;
  opt.guest = g.guest;
  if (vm.count("width")) {
    opt.width = vm["width"].as<unsigned>();
    if (opt.width != 32 && opt.width != 64) die(2, "convert: --width must be 32 or 64");
  }
  if (vm.count("guest")) {
    const std::string t = vm["guest"].as<std::string>();
    if (t != "pv" && t != "hvm") die(2, "convert: --guest must be pv or hvm");
    opt.guest = t == "pv" ? xsr::GuestType::pv : xsr::GuestType::hvm;
  }
  if (!g.ok && (opt.width == 0 || opt.guest == xsr::GuestType::unknown))
    die(1, "convert: " + in_name + ": " +
               (src.source->error() ? "read failed: " + src.source->error_text() : g.why));
  opt.libxl = g.xl || g.libvirt;
  if (vm.count("format")) {
    const std::string f = vm["format"].as<std::string>();
    if (f != "libxc" && f != "libxl") die(2, "convert: --format must be libxc or libxl");
    opt.libxl = f == "libxl";
  }
  if (g.libvirt && !opt.libxl) die(2, "convert: a libvirt header can only front a libxl stream (--format libxl)");
  opt.skip_qemu = vm["skip-qemu"].as<bool>();
  opt.stream_version = vm["stream-version"].as<unsigned>();
  if (opt.stream_version != 2 && opt.stream_version != 3) die(2, "convert: --stream-version must be 2 or 3");
  if (verbose) {
    std::fprintf(stderr, "xsr convert: %s: %s%s-bit toolstack, %s guest -> %s v%u stream\n", in_name.c_str(),
                 g.xl ? "xl header, " : (g.libvirt ? "libvirt header, " : ""),
                 std::to_string(opt.width).c_str(), opt.guest == xsr::GuestType::pv ? "PV" : "HVM",
                 opt.libxl ? "libxl" : "libxc", opt.stream_version);
    std::fprintf(stderr, "xsr convert: reading %s through %s\n", in_name.c_str(),
                 std::string(src.source->kind()).c_str());
    if (!src.note.empty()) std::fprintf(stderr, "xsr convert: %s\n", src.note.c_str());
    opt.info = [](const std::string& l) {
      std::fputs(l.c_str(), stdout);
      std::fputc('\n', stdout);
    };
  }
  xsr::cli::Output out;
  std::string err;
  if (!out.open(outspec, &err)) die(1, "convert: cannot open output " + err);
  // --compress: the converter writes into a pipe a compressing thread
  // drains into the output.
  xsr::CompressedOutput zout;
  const xsr::Codec codec = output_codec(vm, "convert");
  if (codec != xsr::Codec::none) {
    if (!zout.start(out.fd(), codec, vm["level"].as<int>(), &err)) die(2, "convert: " + err);
    if (verbose)
      std::fprintf(stderr, "xsr convert: output compressed (%s) through Boost.Iostreams in a second thread, not zero-copy\n",
                   std::string(xsr::codec_name(codec)).c_str());
  }
  const std::int64_t total = src.source->remaining();
  xsr::cli::Progress bar(total, !quiet && !vm["no-progress"].as<bool>());
  // --stats: input bytes as the converter reports them; records, pages
  // and output bytes at the end.
  opt.progress = [&bar, s = stats.get()](std::uint64_t done) {
    bar.update(done);
    if (s) s->set_bytes(done);
  };
  if (stats) stats->start();

  // --verify: the verifier reads what the converter writes, in its own
  // thread, in the same pass (page bodies pass it by as holes), so a pipe
  // or socket output is verified too.
  const bool check = vm["verify"].as<bool>();
  xsr::VerifyTap tap;
  xsr::Error verr;
  xsr::StreamStats st;
  std::thread verifier;
  if (check)
    verifier = std::thread([&] {
      xsr::VerifyOptions vo;
      vo.format = xsr::Format::autodetect;
      vo.strict = true;
      verr = xsr::verify(tap, vo, st);
      tap.reader_done();
    });
  xsr::ConvertResult r;
  {
    xsr::Sink sink(codec != xsr::Codec::none ? zout.fd() : out.fd());
    if (check) sink.set_tap(&tap);
    r = xsr::convert_legacy(*src.source, sink, opt);
  }
  tap.close();
  if (check) verifier.join();
  // A failed compression stops the converter with EPIPE; zerr says the
  // real cause.
  const std::string zerr = zout.finish();
  if (stats) {
    stats->set_bytes(r.in_bytes);
    stats->add_records(r.records);
    stats->add_pages(r.pages);
    stats->stop();
  }
  int code = 0;
  std::string why;  // the error line, after "xsr convert: "
  if (!zerr.empty()) {
    code = 1;
    why = zerr;
  } else if (r.error) {
    code = xsr::exit_code(r.error.code);
    why = in_name + ": " + r.error.message();
  } else if (src.source->finish() != 0 && src.source->error()) {
    // A compressed input whose CRC or checksum (after the stream) is wrong.
    code = 1;
    why = in_name + ": read failed: " + src.source->error_text();
  } else if (check) {
    xsr::Error e = verr;
    if (!e && st.bytes + r.tail_bytes != r.out_bytes) {
      e.code = xsr::Errc::bad_record;
      e.detail = "verification stopped at byte " + std::to_string(st.bytes) + " of " + std::to_string(r.out_bytes);
    }
    if (e) {
      code = 1;
      why = "the output fails verification: " + e.message();
    }
  }
  if (code) out.abort();
  else if (!out.commit(&err)) {
    code = 1;
    why = err;
  }
  if (code && !quiet) std::fprintf(stderr, "xsr convert: %s\n", why.c_str());
  // The output is in place even when the summary cannot be written.
  xsr::cli::Json extra = xsr::cli::verdict_json(why);
  extra["out_bytes"] = r.out_bytes;
  if (!write_stats_json(stats.get(), vm, "convert", extra) && !code) code = 1;
  if (code) return code;
  if (verbose) std::fprintf(stderr, "xsr convert: page data moved by %s\n", r.paths.empty() ? "nothing" : r.paths.c_str());
  if (!quiet)
    std::fprintf(stderr, "xsr convert: %s -> %s: %s, %llu records, %llu pages%s\n", in_name.c_str(),
                 out.name().c_str(), human(r.out_bytes).c_str(), static_cast<unsigned long long>(r.records),
                 static_cast<unsigned long long>(r.pages), vm["verify"].as<bool>() ? ", verified" : "");
  return 0;
}

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
  if (cmd == "convert") return cmd_convert(argc - 1, argv + 1);
  if (cmd == "inspect") return xsr_cmd::cmd_inspect(argc - 1, argv + 1);
  if (cmd == "extract") return xsr_cmd::cmd_extract(argc - 1, argv + 1);
  if (cmd == "relay") return xsr_cmd::cmd_relay(argc - 1, argv + 1);
  std::fprintf(stderr, "xsr: unknown command '%s'\n\n%s", cmd.c_str(), kUsage);
  return 2;
}
