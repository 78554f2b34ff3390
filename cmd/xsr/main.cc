// xsr: one command for Xen save images and migration streams.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/program_options.hpp>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "xsr/cli.h"
#include "xsr/compress.h"
#include "xsr/convert.h"
#include "xsr/gen.h"
#include "xsr/source.h"
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

int cmd_verify(int argc, char** argv) {
  po::options_description desc(
      "Usage: xsr verify [options] [FILE|FD|-]\n\n"
      "Verifies a Xen v2/v3 migration stream or save image: every check of Xen's\n"
      "verify-stream-v2, without its defects. The format is detected unless given;\n"
      "gzip, zstd, xz and bzip2 compressed input is decompressed on the fly.\n"
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
  const xsr::IoMode mode = io_mode(vm["io"].as<std::string>(), "verify");

  const std::string in = vm["input"].as<std::string>();
  const std::string name = spec_name(in, "<stdin>");
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
  opt.progress = [&bar](std::uint64_t done) { bar.update(done); };

  xsr::StreamStats st;
  const std::uint64_t t0 = xsr::cli::now_ns();
  xsr::Error e = xsr::verify(*src.source, opt, st);
  const double secs = static_cast<double>(xsr::cli::now_ns() - t0) / 1e9;
  // A failed read (damaged compressed data above all) outranks what the
  // verifier made of the bytes before it; a verdict reads a compressed
  // input on to its end, where its CRC or checksum lies.
  if ((e ? e.code != xsr::Errc::io : src.source->finish() != 0) && src.source->error())
    e = xsr::Error{xsr::Errc::io, src.source->pos(), xsr::kNoRecord, xsr::Layer::libxc, 0,
                   "read failed: " + src.source->error_text()};
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
  opt.progress = [&bar](std::uint64_t done) { bar.update(done); };

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
  // A failed compression stops the converter with EPIPE; say the real cause.
  if (std::string zerr = zout.finish(); !zerr.empty()) {
    out.abort();
    if (!quiet) std::fprintf(stderr, "xsr convert: %s\n", zerr.c_str());
    return 1;
  }
  if (r.error) {
    out.abort();
    if (!quiet) std::fprintf(stderr, "xsr convert: %s: %s\n", in_name.c_str(), r.error.message().c_str());
    return xsr::exit_code(r.error.code);
  }
  if (src.source->finish() != 0 && src.source->error()) {
    // A compressed input whose CRC or checksum (after the stream) is wrong.
    out.abort();
    if (!quiet) std::fprintf(stderr, "xsr convert: %s: read failed: %s\n", in_name.c_str(), src.source->error_text().c_str());
    return 1;
  }
  if (check) {
    xsr::Error e = verr;
    if (!e && st.bytes + r.tail_bytes != r.out_bytes) {
      e.code = xsr::Errc::bad_record;
      e.detail = "verification stopped at byte " + std::to_string(st.bytes) + " of " + std::to_string(r.out_bytes);
    }
    if (e) {
      out.abort();
      if (!quiet) std::fprintf(stderr, "xsr convert: the output fails verification: %s\n", e.message().c_str());
      return 1;
    }
  }
  if (!out.commit(&err)) {
    if (!quiet) std::fprintf(stderr, "xsr convert: %s\n", err.c_str());
    return 1;
  }
  if (verbose) std::fprintf(stderr, "xsr convert: page data moved by %s\n", r.paths.empty() ? "nothing" : r.paths.c_str());
  if (!quiet)
    std::fprintf(stderr, "xsr convert: %s -> %s: %s, %llu records, %llu pages%s\n", in_name.c_str(),
                 out.name().c_str(), human(r.out_bytes).c_str(), static_cast<unsigned long long>(r.records),
                 static_cast<unsigned long long>(r.pages), vm["verify"].as<bool>() ? ", verified" : "");
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
  xsr::cli::ignore_sigpipe();  // a reader that left is an error line (EPIPE), not a silent death
  xsr::CompressedOutput zout;
  std::string zerr;
  if (codec != xsr::Codec::none) {
    xsr::cli::ignore_sigpipe();  // a failed compression stops generate() with EPIPE
    if (!zout.start(fd, codec, vm["level"].as<int>(), &zerr)) die(2, "gen: " + zerr);
  }
  xsr::GenResult r = xsr::generate(codec != xsr::Codec::none ? zout.fd() : fd, g);
  if (codec != xsr::Codec::none && !(zerr = zout.finish()).empty()) r.error = zerr;
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
  if (cmd == "convert") return cmd_convert(argc - 1, argv + 1);
  if (cmd == "inspect") return xsr_cmd::cmd_inspect(argc - 1, argv + 1);
  if (cmd == "extract") return xsr_cmd::cmd_extract(argc - 1, argv + 1);
  std::fprintf(stderr, "xsr: unknown command '%s'\n\n%s", cmd.c_str(), kUsage);
  return 2;
}
