// xsr extract: options and wiring (the work is in lib/extract).
#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <string>

#include "common/output.h"
#include "common/progress.h"
#include "xsr/extract.h"
#include "xsr/format.h"
#include "xsr_cmd.h"

namespace xsr_cmd {
namespace {

// "0x1000", "4096": a pfn; false on junk.
bool parse_pfn(const std::string& s, std::uint64_t& v) {
  if (s.empty()) return false;
  char* end = nullptr;
  errno = 0;
  v = std::strtoull(s.c_str(), &end, 0);
  return errno == 0 && end && *end == '\0' && s[0] != '-' && v <= xsr::libxc::kPfnMask;
}

}  // namespace

int cmd_extract(int argc, char** argv) {
  po::options_description desc(
      "Usage: xsr extract [options] IMAGE -o RAW\n"
      "       xsr extract [options] IMAGE --page PFN\n\n"
      "Writes the guest memory in a save image as a sparse raw file where pfn N lives\n"
      "at offset N * 4096 (holes stay holes; the last copy of a page wins across\n"
      "checkpoints and re-sent pages), or as an ELF core (--elf) with one PT_LOAD\n"
      "segment per run of consecutive pfns (p_paddr = pfn * 4096). --page prints one\n"
      "page as a hex dump instead. IMAGE is FILE, FD or -; RAW is FILE or FD and must\n"
      "be a regular file. A FILE output appears only once complete.\n"
      "Exit status: 0 done, 1 bad or truncated image, output failure or page not in\n"
      "the image, 2 usage.\n\nOptions");
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
  po::positional_options_description pos;
  pos.add("image", 1);
  po::variables_map vm = parse(argc, argv, desc, pos, "extract");
  if (vm.count("help")) {
    std::cout << desc;
    return 0;
  }
  if (!vm.count("image")) die(2, "extract: needs IMAGE (see 'xsr extract --help')");
  const bool page_mode = vm.count("page") > 0;
  if (page_mode == (vm.count("output") > 0)) die(2, "extract: needs exactly one of -o RAW and --page PFN");
  if (page_mode && (vm.count("pfn") || vm["elf"].as<bool>())) die(2, "extract: --page takes no --pfn or --elf");
  const bool verbose = vm["verbose"].as<bool>(), quiet = vm["quiet"].as<bool>();
  const std::string spec = vm["image"].as<std::string>();
  const std::string name = spec_name(spec, "<stdin>");

  xsr::ExtractOptions opt;
  opt.elf = vm["elf"].as<bool>();
  if (vm.count("pfn")) {
    const std::string r = vm["pfn"].as<std::string>();
    const auto dash = r.find('-');
    std::string a = r.substr(0, dash), b = dash == std::string::npos ? a : r.substr(dash + 1);
    if (!parse_pfn(a, opt.first_pfn) || !parse_pfn(b, opt.last_pfn) || opt.first_pfn > opt.last_pfn)
      die(2, "extract: --pfn must be A-B or A, with A <= B (decimal or 0x hex pfns below 2^52)");
  }
  std::uint64_t page_pfn = 0;
  if (page_mode && !parse_pfn(vm["page"].as<std::string>(), page_pfn))
    die(2, "extract: --page needs a pfn (decimal or 0x hex, below 2^52)");
  xsr::cli::ignore_sigpipe();
  OpenedImage o;
  open_image(o, spec, name, vm["io"].as<std::string>(), "extract", verbose);

  if (page_mode) {
    std::array<std::byte, 4096> page{};
    xsr::ExtractResult r;
    const bool found = xsr::extract_page(o.img.stream(), page_pfn, page, r);
    r.error = o.img.finish(r.error);
    if (r.error) {
      if (!quiet) std::fprintf(stderr, "xsr extract: %s: %s\n", name.c_str(), r.error.message().c_str());
      return r.error.code == xsr::Errc::unsupported ? 2 : 1;
    }
    if (!found) {
      if (!quiet)
        std::fprintf(stderr, "xsr extract: %s: pfn 0x%" PRIx64 " has no page body in the image\n", name.c_str(),
                     page_pfn);
      return 1;
    }
    if (!quiet) std::fputs(xsr::hexdump_page(page_pfn, page).c_str(), stdout);
    if (std::fflush(stdout) != 0 || std::ferror(stdout)) die(1, "extract: writing the hex dump failed");
    return 0;
  }

  xsr::cli::Output out;
  std::string err;
  if (!out.open(vm["output"].as<std::string>(), &err)) die(1, "extract: cannot open output " + err);
  xsr::ExtractResult r;
  {
    // A bar on stderr for large inputs on a terminal, gone before the summary.
    const std::int64_t total = o.src.source->remaining();
    xsr::cli::Progress bar(total, !quiet && !vm["no-progress"].as<bool>());
    opt.progress = [&bar](std::uint64_t done) { bar.update(done); };
    r = xsr::extract(o.img.stream(), out.fd(), opt);
    opt.progress = nullptr;
  }
  r.error = o.img.finish(r.error);
  if (r.error) {
    out.abort();
    if (!quiet) std::fprintf(stderr, "xsr extract: %s: %s\n", name.c_str(), r.error.message().c_str());
    return r.error.code == xsr::Errc::unsupported ? 2 : 1;
  }
  o.src.source->finish();
  if (!out.commit(&err)) {
    if (!quiet) std::fprintf(stderr, "xsr extract: %s\n", err.c_str());
    return 1;
  }
  if (verbose) std::fprintf(stderr, "xsr extract: page data moved by %s\n", r.paths.empty() ? "nothing" : r.paths.c_str());
  if (!quiet)
    std::fprintf(stderr, "xsr extract: %s -> %s: %" PRIu64 " pfns (%s) from %" PRIu64 " page bodies, %s%s\n",
                 name.c_str(), out.name().c_str(), r.pfns, human(r.pfns * 4096).c_str(), r.bodies,
                 opt.elf ? (std::to_string(r.segments) + " PT_LOAD segments, ").c_str() : "",
                 ("file size " + human(r.out_bytes)).c_str());
  return 0;
}

}  // namespace xsr_cmd
