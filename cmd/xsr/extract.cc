// xsr extract: options and wiring (the work is in lib/extract and, for a
// legacy image, lib/convert's ImageInput).
#include <array>
#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "common/output.h"
#include "common/progress.h"
#include "xsr/extract.h"
#include "xsr/format.h"
#include "xsr/units.h"
#include "xsr_cmd.h"

namespace xsr_cmd {
namespace {

po::options_description extract_options() {
  po::options_description desc(
      "Usage: xsr extract [options] IMAGE -o RAW\n"
      "       xsr extract [options] IMAGE --page PFN\n\n"
      "Writes the guest memory in a save image as a sparse raw file where pfn N lives\n"
      "at offset N * 4096 (holes stay holes; the last copy of a page wins across\n"
      "checkpoints and re-sent pages), or as an ELF core (--elf) with one PT_LOAD\n"
      "segment per run of consecutive pfns (p_paddr = pfn * 4096). --page prints one\n"
      "page as a hex dump instead. IMAGE is FILE, FD or -; RAW is FILE or FD and must\n"
      "be a regular file, not IMAGE. A FILE output appears only once complete; a new\n"
      "one is created 0600 (guest memory), a replaced one keeps its mode and owner.\n"
      "A --page the image holds no body for is status 1.\n\nOptions");
  // clang-format off
  desc.add_options()
      ("help,h", "show this help")
      ("image", po::value<std::string>(), "FILE, FD or -")
      ("output,o", po::value<std::string>(), "the raw file or ELF core to write: FILE or FD")
      ("pfn", po::value<std::string>(), "only pfns A-B (or one pfn A); decimal or 0x hex")
      ("elf", po::bool_switch(), "write an ELF core instead of a raw file")
      ("page", po::value<std::string>(), "print the page of this pfn as a hex dump (hexdump -C)")
      ("verbose,v", po::bool_switch(), "say how the image is read and how pages moved (on stderr)")
      ("quiet,q", po::bool_switch(), "print nothing; the exit status tells")
      ("no-progress", po::bool_switch(), "no progress bar even on a terminal")
      ("io", po::value<std::string>()->default_value("auto"), "auto, pread, mmap, uring or read");
  // clang-format on
  return desc;
}

// "0x1000", "4096": a pfn; false on junk.
bool parse_pfn(const std::string& s, std::uint64_t& v) {
  if (s.empty()) return false;
  char* end = nullptr;
  errno = 0;
  v = std::strtoull(s.c_str(), &end, 0);
  return errno == 0 && end && *end == '\0' && s[0] != '-' && v <= xsr::libxc::kPfnMask;
}

// What to extract: --elf and --pfn A-B into ExtractOptions, or --page PFN.
struct ExtractRequest {
  xsr::ExtractOptions opt;
  bool page_mode = false;
  std::uint64_t page_pfn = 0;
};

ExtractRequest extract_request(const po::variables_map& vm) {
  if (!vm.count("image")) cli::usage_error("extract", "needs IMAGE (see 'xsr extract --help')");
  ExtractRequest req;
  req.page_mode = vm.count("page") > 0;
  if (req.page_mode == (vm.count("output") > 0))
    cli::usage_error("extract", "needs exactly one of -o RAW and --page PFN");
  if (req.page_mode && (vm.count("pfn") || vm["elf"].as<bool>()))
    cli::usage_error("extract", "--page takes no --pfn or --elf");
  req.opt.elf = vm["elf"].as<bool>();
  if (vm.count("pfn")) {
    const std::string r = vm["pfn"].as<std::string>();
    const auto dash = r.find('-');
    const std::string a = r.substr(0, dash), b = dash == std::string::npos ? a : r.substr(dash + 1);
    if (!parse_pfn(a, req.opt.first_pfn) || !parse_pfn(b, req.opt.last_pfn) ||
        req.opt.first_pfn > req.opt.last_pfn)
      cli::usage_error("extract", "--pfn must be A-B or A, with A <= B (decimal or 0x hex pfns below 2^52)");
  }
  if (req.page_mode && !parse_pfn(vm["page"].as<std::string>(), req.page_pfn))
    cli::usage_error("extract", "--page needs a pfn (decimal or 0x hex, below 2^52)");
  return req;
}

// --page PFN: the page's last copy as `hexdump -C` prints it.
int print_page(OpenedImage& o, std::uint64_t pfn, const std::string& name, bool quiet) {
  std::array<std::byte, 4096> page{};
  xsr::ExtractResult r;
  const bool found = xsr::extract_page(o.img.stream(), pfn, page, r);
  r.error = o.img.finish(r.error);
  if (r.error) {
    if (!quiet) cli::print(stderr, "xsr extract: %s: %s\n", name.c_str(), r.error.message().c_str());
    return cli::exit_status(r.error);
  }
  if (!found) {
    if (!quiet)
      cli::print(stderr, "xsr extract: %s: pfn 0x%" PRIx64 " has no page body in the image\n", name.c_str(),
                 pfn);
    return cli::kFailed;
  }
  if (!quiet) std::fputs(xsr::hexdump_page(pfn, page).c_str(), stdout);
  if (std::fflush(stdout) != 0 || std::ferror(stdout))
    cli::die(cli::kOutput, "extract: writing the hex dump failed");
  return cli::kOk;
}

// The summary line of a written RAW or ELF core.
void print_summary(const std::string& name, const cli::Output& out, const xsr::ExtractResult& r, bool elf) {
  cli::print(stderr, "xsr extract: %s -> %s: %s (%s) from %s, %s%s\n", name.c_str(), out.name().c_str(),
             xsr::counted(r.pfns, "pfn").c_str(), xsr::format_bytes(r.pfns * 4096).c_str(),
             xsr::counted(r.bodies, "page body", "page bodies").c_str(),
             elf ? (xsr::counted(r.segments, "PT_LOAD segment") + ", ").c_str() : "",
             ("file size " + xsr::format_bytes(r.out_bytes)).c_str());
}

}  // namespace

int cmd_extract(int argc, char** argv) {
  const po::options_description desc = extract_options();
  po::positional_options_description pos;
  pos.add("image", 1);
  const po::variables_map vm = cli::parse(argc, argv, desc, pos, "extract");
  if (vm.count("help")) return print_help(desc);
  ExtractRequest req = extract_request(vm);
  const bool verbose = vm["verbose"].as<bool>(), quiet = vm["quiet"].as<bool>();
  const std::string spec = vm["image"].as<std::string>();
  const std::string name = cli::display_name(spec, "<stdin>");
  cli::ignore_sigpipe();
  OpenedImage o;
  open_image(o, spec, name, cli::io_mode("extract", vm["io"].as<std::string>()), "extract", verbose);
  if (req.page_mode) return print_page(o, req.page_pfn, name, quiet);

  cli::note_input(spec);
  cli::Output out;
  cli::OutputRules rules;  // a terminal is no regular file: the extractor refuses it
  rules.new_mode = 0600;
  out.open_or_die(vm["output"].as<std::string>(), "extract", rules);
  xsr::ExtractResult r;
  {
    // A bar on stderr for large inputs on a terminal, gone before the summary.
    cli::Progress bar(o.src.source->remaining(), !quiet && !vm["no-progress"].as<bool>());
    req.opt.progress = [&bar](std::uint64_t done) { bar.update(done); };
    r = xsr::extract(o.img.stream(), out.fd(), req.opt);
    req.opt.progress = nullptr;
  }
  r.error = o.img.finish(r.error);
  if (r.error) {
    out.abort();
    const bool write_failed = r.error.code == xsr::Errc::output;
    if (!quiet)
      cli::print(stderr, "xsr extract: %s: %s\n", (write_failed ? out.name() : name).c_str(),
                 r.error.message().c_str());
    return cli::exit_status(r.error);
  }
  o.src.source->finish();
  if (std::string err; !out.commit(&err)) {
    if (!quiet) cli::print(stderr, "xsr extract: %s\n", err.c_str());
    return cli::kOutput;
  }
  if (verbose)
    cli::print(stderr, "xsr extract: page data moved by %s\n", r.paths.empty() ? "nothing" : r.paths.c_str());
  if (!quiet) print_summary(name, out, r, req.opt.elf);
  return cli::kOk;
}

}  // namespace xsr_cmd
