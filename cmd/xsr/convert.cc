// xsr convert: options and wiring (the work is in lib/convert; --verify
// runs lib/verify on the output in the same pass).
#include <cstdio>
#include <string>
#include <thread>

#include "common/json.h"
#include "common/output.h"
#include "common/progress.h"
#include "xsr/compress.h"
#include "xsr/convert.h"
#include "xsr/image.h"
#include "xsr/sink.h"
#include "xsr/units.h"
#include "xsr/verify.h"
#include "xsr_cmd.h"

namespace xsr_cmd {
namespace {

po::options_description convert_options() {
  po::options_description desc(
      "Usage: xsr convert [options] IN OUT\n\n"
      "Converts a legacy (Xen <= 4.5) save image or migration stream to a v3 stream,\n"
      "byte for byte as Xen's convert-legacy-stream does. IN and OUT are FILE, FD or -.\n"
      "The toolstack width, guest type and an xl or libvirt header are detected;\n"
      "options override. OUT follows xsr's output rule (a FILE appears only once\n"
      "complete; a device or FIFO is written in place; OUT may not be IN); a FILE\n"
      "named .zst, .gz, .xz or .bz2 is compressed with that codec.\n\nOptions");
  // clang-format off
  desc.add_options()
      ("help,h", "show this help")
      ("input", po::value<std::string>(), "legacy input: FILE, FD or -")
      ("output", po::value<std::string>(), "v3 output: FILE, FD or -")
      ("width,w", po::value<unsigned>(), "legacy toolstack width: 32 or 64")
      ("guest,g", po::value<std::string>(), "guest type: pv or hvm")
      ("format,f", po::value<std::string>(), "libxc or libxl (default: libxl behind an xl or libvirt header, else libxc)")
      ("skip-qemu", po::bool_switch(), "libxc output: leave the qemu record out")
      ("stream-version", po::value<unsigned>()->default_value(3), "2 writes a v2 stream (Xen 4.6-4.13)")
      ("verify", po::bool_switch(), "verify the output (the verifier's plain rules) before it is put in place")
      ("compress", po::value<std::string>(), "compress the output: zstd, gzip, xz or bzip2")
      ("level", po::value<int>()->default_value(0), "compression level (0: the codec's default); needs a codec")
      ("force", po::bool_switch(), "write binary data to a terminal anyway")
      ("verbose,v", po::bool_switch(), "the reference's -v lines on stdout; detection and I/O paths on stderr")
      ("quiet,q", po::bool_switch(), "print nothing; the exit status tells")
      ("no-progress", po::bool_switch(), "no progress bar even on a terminal")
      ("io", po::value<std::string>()->default_value("auto"), "auto, pread, mmap, uring or read");
  // clang-format on
  cli::add_stats_options(desc);
  return desc;
}

// The conversion asked for: what detection found in the input, with the
// options' overrides. Dies when there is nothing to convert or too little
// is known.
xsr::ConvertOptions conversion_options(const po::variables_map& vm, const xsr::LegacyGuess& g,
                                       xsr::Source& src, const std::string& in_name) {
  if (g.xl && g.xl_libxl)
    cli::die(cli::kFailed,
             "convert: " + in_name + ": the xl header says a v2 stream follows: nothing to convert");
  xsr::ConvertOptions opt;
  opt.xl = g.xl;
  opt.libvirt = g.libvirt;
  opt.width = g.width;
  opt.guest = g.guest;
  if (vm.count("width")) opt.width = cli::width_bits("convert", "--width", vm["width"].as<unsigned>());
  if (vm.count("guest")) opt.guest = cli::guest_type("convert", vm["guest"].as<std::string>());
  if (!g.ok && (opt.width == 0 || opt.guest == xsr::GuestType::unknown)) {
    if (src.error()) cli::die(cli::kFailed, "convert: " + in_name + ": read failed: " + src.error_text());
    std::string why;
    const xsr::ImageKind kind = xsr::image_kind(src, &why);
    cli::die(cli::kFailed,
             "convert: " + in_name + ": " +
                 (kind == xsr::ImageKind::unknown
                      ? xsr::not_a_v2_stream(kind, why, "").message()
                      : "offset 0x0: a v2/v3 stream already: nothing to convert (verify, inspect, extract "
                        "and relay read it as it is)"));
  }
  opt.libxl = g.xl || g.libvirt;
  if (vm.count("format"))
    opt.libxl = cli::libxl_output("convert", "--format", vm["format"].as<std::string>());
  if (g.libvirt && !opt.libxl)
    cli::usage_error("convert", "a libvirt header can only front a libxl stream (--format libxl)");
  opt.skip_qemu = vm["skip-qemu"].as<bool>();
  opt.python_bytes = false;
  opt.stream_version = cli::stream_version("convert", vm["stream-version"].as<unsigned>());
  return opt;
}

// -v: what was detected and how the input is read, on stderr; the
// reference's lines on stdout.
void say_plan(xsr::ConvertOptions& opt, const xsr::LegacyGuess& g, const xsr::OpenResult& src,
              const std::string& in_name) {
  cli::print(stderr, "xsr convert: %s: %s%s-bit toolstack, %s guest -> %s v%u stream\n", in_name.c_str(),
             g.xl ? "xl header, " : (g.libvirt ? "libvirt header, " : ""), std::to_string(opt.width).c_str(),
             opt.guest == xsr::GuestType::pv ? "PV" : "HVM", opt.libxl ? "libxl" : "libxc",
             opt.stream_version);
  cli::print(stderr, "xsr convert: reading %s through %s\n", in_name.c_str(),
             std::string(src.source->kind()).c_str());
  if (!src.note.empty()) cli::print(stderr, "xsr convert: %s\n", src.note.c_str());
  opt.info = [](const std::string& l) { cli::print_line(stdout, l); };
}

// What the converter wrote and, with --verify, what the verifier made of it.
struct Converted {
  xsr::ConvertResult r;
  xsr::Error verr;
  xsr::StreamStats st;
};

// Converts `in` into `fd`. With `check` the verifier reads what the
// converter writes, in its own thread, in the same pass (page bodies pass
// it by as holes), so a pipe or socket output is verified too.
Converted convert_to(xsr::Source& in, int fd, const xsr::ConvertOptions& opt, bool check) {
  Converted c;
  xsr::VerifyTap tap;
  std::thread verifier;
  if (check)
    verifier = std::thread([&] {
      xsr::VerifyOptions vo;
      vo.format = xsr::Format::autodetect;
      // The plain rules: the tap hands page bodies over as holes, and
      // --strict reads PV pagetables and start_info (xsr verify --strict
      // OUT judges the result as Xen's restore would).
      c.verr = xsr::verify(tap, vo, c.st);
      tap.reader_done();
    });
  {
    xsr::Sink sink(fd);
    if (check) sink.set_tap(&tap);
    c.r = xsr::convert_legacy(in, sink, opt);
  }
  tap.close();
  if (check) verifier.join();
  return c;
}

// When --width or --guest contradicts what detection found: the words a
// failure adds, since the override is the likely cause. Else empty.
std::string override_hint(const xsr::LegacyGuess& g, const xsr::ConvertOptions& opt) {
  if (!g.ok || (opt.width == g.width && opt.guest == g.guest)) return "";
  return xsr::strprintf(" (detection says a %u-bit toolstack and a%s guest; --width/--guest overrode it)",
                        g.width, g.guest == xsr::GuestType::pv ? " PV" : "n HVM");
}

// The run's status and, when it failed, the error line after "xsr convert: ".
struct Outcome {
  int status = cli::kOk;
  std::string why;
};

// A failed compression (zerr: it stops the converter with EPIPE, zerr says
// the real cause) outranks the converter's error, which outranks a failed
// read of a compressed input's trailer, which outranks --verify's verdict.
Outcome outcome(const Converted& c, const std::string& zerr, xsr::Source& in, const std::string& in_name,
                const std::string& out_name, bool check, const std::string& hint) {
  if (!zerr.empty()) return {cli::kOutput, out_name + ": " + zerr};
  if (c.r.error && c.r.error.code == xsr::Errc::output)
    return {cli::kOutput, out_name + ": " + c.r.error.message()};
  if (c.r.error) return {cli::exit_status(c.r.error), in_name + ": " + c.r.error.message() + hint};
  // A compressed input whose CRC or checksum (after the stream) is wrong.
  if (in.finish() != 0 && in.error()) return {cli::kFailed, in_name + ": read failed: " + in.error_text()};
  if (!check) return {};
  xsr::Error e = c.verr;
  if (!e && c.st.bytes + c.r.tail_bytes != c.r.out_bytes) {
    e.code = xsr::Errc::bad_record;
    e.detail =
        "verification stopped at byte " + std::to_string(c.st.bytes) + " of " + std::to_string(c.r.out_bytes);
  }
  if (e) return {cli::kFailed, "the output fails verification: " + e.message()};
  return {};
}

}  // namespace

int cmd_convert(int argc, char** argv) {
  const po::options_description desc = convert_options();
  po::positional_options_description pos;
  pos.add("input", 1).add("output", 1);
  const po::variables_map vm = cli::parse(argc, argv, desc, pos, "convert");
  if (vm.count("help")) return print_help(desc);
  if (!vm.count("input") || !vm.count("output"))
    cli::usage_error("convert", "needs IN and OUT (see 'xsr convert --help')");
  const bool verbose = vm["verbose"].as<bool>(), quiet = vm["quiet"].as<bool>(),
             check = vm["verify"].as<bool>();
  const std::string in_name = cli::display_name(vm["input"].as<std::string>(), "<stdin>");
  std::unique_ptr<cli::RunStats> stats = cli::make_stats(vm, "convert");
  const xsr::Codec codec = cli::output_codec(vm, "convert", vm["output"].as<std::string>());
  cli::ignore_sigpipe();
  xsr::OpenResult src =
      xsr::open_input(vm["input"].as<std::string>(), cli::io_mode("convert", vm["io"].as<std::string>()));
  if (!src.source) cannot_open("convert", src.error);
  const xsr::LegacyGuess g = xsr::detect_legacy(*src.source);
  xsr::ConvertOptions opt = conversion_options(vm, g, *src.source, in_name);
  if (verbose) say_plan(opt, g, src, in_name);
  cli::note_input(vm["input"].as<std::string>());
  cli::Output out;
  cli::OutputRules rules;
  rules.binary = true;
  rules.force = vm["force"].as<bool>();
  out.open_or_die(vm["output"].as<std::string>(), "convert", rules);
  xsr::CompressedOutput zout;
  const int fd = compressed_output(zout, out.fd(), codec, vm["level"].as<int>(), "convert", verbose);
  cli::Progress bar(src.source->remaining(), !quiet && !vm["no-progress"].as<bool>());
  // --stats: input bytes as the converter reports them; records, pages
  // and output bytes at the end.
  opt.progress = [&bar, s = stats.get()](std::uint64_t done) {
    bar.update(done);
    if (s) s->set_bytes(done);
  };
  if (stats) stats->start();
  const Converted c = convert_to(*src.source, fd, opt, check);
  const std::string zerr = zout.finish().detail;
  if (stats) {
    stats->set_bytes(c.r.in_bytes);
    stats->add_records(c.r.records);
    stats->add_pages(c.r.pages);
    stats->stop();
  }
  Outcome o = outcome(c, zerr, *src.source, in_name, out.name(), check, override_hint(g, opt));
  std::string err;
  if (o.status) out.abort();
  else if (!out.commit(&err)) o = {cli::kOutput, err};
  if (o.status && !quiet) cli::print(stderr, "xsr convert: %s\n", o.why.c_str());
  // The output is in place even when the summary cannot be written.
  cli::Json extra = cli::verdict_json(o.why);
  extra["out_bytes"] = c.r.out_bytes;
  if (!cli::write_stats_json(stats.get(), vm, "convert", extra) && !o.status) o.status = cli::kOutput;
  if (o.status) return o.status;
  if (verbose)
    cli::print(stderr, "xsr convert: page data moved by %s\n",
               c.r.paths.empty() ? "nothing" : c.r.paths.c_str());
  if (!quiet)
    cli::print(stderr, "xsr convert: %s -> %s: %s, %llu records, %llu pages%s\n", in_name.c_str(),
               out.name().c_str(), xsr::format_bytes(c.r.out_bytes).c_str(),
               static_cast<unsigned long long>(c.r.records), static_cast<unsigned long long>(c.r.pages),
               check ? ", verified" : "");
  return cli::kOk;
}

}  // namespace xsr_cmd
