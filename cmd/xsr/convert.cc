// xsr convert: options and wiring (the work is in lib/convert).
#include <cstdio>
#include <iostream>
#include <thread>

#include "common/json.h"
#include "common/output.h"
#include "common/progress.h"
#include "xsr/compress.h"
#include "xsr/convert.h"
#include "xsr/sink.h"
#include "xsr/verify.h"
#include "xsr_cmd.h"

namespace xsr_cmd {

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

}  // namespace xsr_cmd
