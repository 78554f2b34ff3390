// xsr extract: options and wiring (the work is in lib/extract and, for a
// legacy image, lib/convert's ImageInput).
#include <array>
#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <string>

#include <unistd.h>

#include "common/output.h"
#include "common/progress.h"
#include "xsr/extract.h"
#include "xsr/format.h"
#include "xsr/index.h"
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
      "A --page the image holds no body for is status 1, as is a --pfn range that\n"
      "selects no page (no output is written).\n\n"
      "With IMAGE.xsrindex beside a plain IMAGE FILE (xsr index), or --index FILE,\n"
      "the pages asked for are read at the offsets it gives, not found by a scan: an\n"
      "index whose image size or headers differ from IMAGE's is refused (status 1).\n"
      "--salvage: on a truncated or damaged image, the pages before the damage are\n"
      "written anyway (the output is put in place; the status is still 1).\n\nOptions");
  // clang-format off
  desc.add_options()
      ("help,h", "show this help")
      ("image", po::value<std::string>(), "FILE, FD or -")
      ("output,o", po::value<std::string>(), "the raw file or ELF core to write: FILE or FD")
      ("pfn", po::value<std::string>(), "only pfns A-B (or one pfn A); decimal or 0x hex")
      ("elf", po::bool_switch(), "write an ELF core instead of a raw file")
      ("page", po::value<std::string>(), "print the page of this pfn as a hex dump (hexdump -C)")
      ("index", po::value<std::string>(), "read pages through this index (default IMAGE.xsrindex when present)")
      ("no-index", po::bool_switch(), "scan the image even when an index is present")
      ("salvage", po::bool_switch(), "on a damaged image, still write the pages before the damage")
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
  bool ranged = false;  // --pfn given
};

// "--pfn 0x100000-0x100010" (or one pfn) as a message names it.
std::string range_text(const xsr::ExtractOptions& o) {
  if (o.first_pfn == o.last_pfn) return xsr::strprintf("--pfn 0x%" PRIx64, o.first_pfn);
  return xsr::strprintf("--pfn 0x%" PRIx64 "-0x%" PRIx64, o.first_pfn, o.last_pfn);
}

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
  req.ranged = vm.count("pfn") > 0;
  req.opt.salvage = vm["salvage"].as<bool>();
  if (req.page_mode && req.opt.salvage) cli::usage_error("extract", "--page takes no --salvage");
  if (vm.count("index") && (vm["no-index"].as<bool>() || req.opt.salvage))
    cli::usage_error("extract", "--index takes no --no-index or --salvage (both scan the image)");
  if (req.page_mode && !parse_pfn(vm["page"].as<std::string>(), req.page_pfn))
    cli::usage_error("extract", "--page needs a pfn (decimal or 0x hex, below 2^52)");
  return req;
}

// --page PFN: the page's last copy as `hexdump -C` prints it, once looked
// up (found, r.error).
int print_page(bool found, const std::array<std::byte, 4096>& page, const xsr::ExtractResult& r,
               std::uint64_t pfn, const std::string& name, bool quiet) {
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

// The index to read pages through: --index FILE, else IMAGE.xsrindex when
// IMAGE is a FILE and it exists; empty: scan (--no-index, --salvage).
std::string index_path(const po::variables_map& vm, const std::string& spec, const ExtractRequest& req) {
  if (vm["no-index"].as<bool>() || req.opt.salvage) return {};
  if (vm.count("index")) return vm["index"].as<std::string>();
  if (spec == "-" || xsr::parse_fd(spec) >= 0) return {};
  const std::string side = spec + ".xsrindex";
  return ::access(side.c_str(), F_OK) == 0 ? side : std::string{};
}

// The line of an index that does not describe IMAGE any more; status 1.
[[noreturn]] void stale_index(const std::string& spec, const std::string& path, const std::string& why) {
  cli::die(cli::kFailed, "extract: " + spec + ": the index " + path + " is stale: " + why +
                             " (rebuild it with 'xsr index', or pass --no-index)");
}

// IMAGE and the index its pages are read through.
struct Indexed {
  PlainImage img;
  xsr::PageIndex idx;
};

// Opens IMAGE and the index at `path`, and checks the index is IMAGE's (its
// size and headers); anything else ends the run with one line, status 1.
void open_indexed(Indexed& ix, const std::string& spec, const std::string& path, bool verbose) {
  ix.img = open_plain_image(spec, "extract");
  xsr::Result<xsr::PageIndex> r = xsr::read_index(path);
  if (!r.ok()) cli::die(cli::kFailed, "extract: " + r.error().detail);
  ix.idx = std::move(r.value());
  if (xsr::Error e = xsr::check_index_head(ix.idx, *ix.img.src, ix.img.size))
    stale_index(spec, path, e.detail);
  if (verbose)
    cli::print(stderr, "xsr extract: pages read through the index %s (%s), not a scan\n", path.c_str(),
               xsr::counted(ix.idx.runs.size(), "run").c_str());
}

// The summary line of a written RAW or ELF core.
void print_summary(const std::string& name, const cli::Output& out, const xsr::ExtractResult& r, bool elf) {
  cli::print(stderr, "xsr extract: %s -> %s: %s (%s) from %s, %s%s\n", name.c_str(), out.name().c_str(),
             xsr::counted(r.pfns, "pfn").c_str(), xsr::format_bytes(r.pfns * 4096).c_str(),
             xsr::counted(r.bodies, "page body", "page bodies").c_str(),
             elf ? (xsr::counted(r.segments, "PT_LOAD segment") + ", ").c_str() : "",
             ("file size " + xsr::format_bytes(r.out_bytes)).c_str());
}

// Ends a written RAW or ELF core: puts it in place (also a salvaged one,
// beside the error), or removes it; the summary or error lines; the status.
int end_output(cli::Output& out, const xsr::ExtractResult& r, const ExtractRequest& req,
               const std::string& name, bool verbose, bool quiet) {
  if (r.error && !r.salvaged) {
    out.abort();
    const bool write_failed = r.error.code == xsr::Errc::output;
    if (!quiet)
      cli::print(stderr, "xsr extract: %s: %s\n", (write_failed ? out.name() : name).c_str(),
                 r.error.message().c_str());
    return cli::exit_status(r.error);
  }
  if (!r.error && req.ranged && r.pfns == 0) {
    out.abort();
    if (!quiet)
      cli::print(stderr, "xsr extract: %s: %s selects no page the image holds\n", name.c_str(),
                 range_text(req.opt).c_str());
    return cli::kFailed;
  }
  if (std::string err; !out.commit(&err)) {
    if (!quiet) cli::print(stderr, "xsr extract: %s\n", err.c_str());
    return cli::kOutput;
  }
  if (verbose)
    cli::print(stderr, "xsr extract: page data moved by %s\n", r.paths.empty() ? "nothing" : r.paths.c_str());
  if (r.error) {
    if (!quiet)
      cli::print(stderr, "xsr extract: %s: %s\nxsr extract: %s: salvaged %s (%s) before the damage\n",
                 name.c_str(), r.error.message().c_str(), name.c_str(), xsr::counted(r.pfns, "page").c_str(),
                 xsr::format_bytes(r.pfns * 4096).c_str());
    return cli::exit_status(r.error);
  }
  if (!quiet) print_summary(name, out, r, req.opt.elf);
  return cli::kOk;
}

// The scan: every record read (and checked) to find the pages.
xsr::ExtractResult scan(OpenedImage& o, int out, xsr::ExtractOptions& opt, bool bar_on) {
  xsr::ExtractResult r;
  {
    // A bar on stderr for large inputs on a terminal, gone before the summary.
    cli::Progress bar(o.src.source->remaining(), bar_on);
    opt.progress = [&bar](std::uint64_t done) { bar.update(done); };
    r = xsr::extract(o.img.stream(), out, opt);
    opt.progress = nullptr;
  }
  r.error = o.img.finish(r.error);
  o.src.source->finish();
  return r;
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
  const std::string idx_path = index_path(vm, spec, req);
  Indexed ix;
  OpenedImage o;
  if (!idx_path.empty()) {
    open_indexed(ix, spec, idx_path, verbose);
  } else {
    open_image(o, spec, name, cli::io_mode("extract", vm["io"].as<std::string>()), "extract", verbose);
    if (verbose) cli::print(stderr, "xsr extract: no page index used: scanning the image\n");
  }
  if (req.page_mode) {
    std::array<std::byte, 4096> page{};
    xsr::ExtractResult r;
    bool found = false;
    if (!idx_path.empty()) {
      found = xsr::index_page(ix.idx, *ix.img.src, req.page_pfn, page, r);
      if (r.error.code == xsr::Errc::bad_header) stale_index(spec, idx_path, r.error.detail);
    } else {
      found = xsr::extract_page(o.img.stream(), req.page_pfn, page, r);
      r.error = o.img.finish(r.error);
    }
    return print_page(found, page, r, req.page_pfn, name, quiet);
  }

  cli::note_input(spec);
  cli::Output out;
  cli::OutputRules rules;  // a terminal is no regular file: the extractor refuses it
  rules.new_mode = 0600;
  out.open_or_die(vm["output"].as<std::string>(), "extract", rules);
  // An ELF core's notes need the vCPU records, which follow the pages: a
  // walk of the record headers (page bodies skipped) reads them first.
  xsr::CoreState core;
  xsr::ExtractResult r;
  if (!idx_path.empty() && req.opt.elf) {
    PlainImage again = open_plain_image(spec, "extract");
    r.error = xsr::read_core_state(*again.src, core);
    req.opt.core = &core;
  }
  if (!r.error)
    r = idx_path.empty() ? scan(o, out.fd(), req.opt, !quiet && !vm["no-progress"].as<bool>())
                         : xsr::extract_indexed(ix.idx, *ix.img.src, out.fd(), req.opt);
  if (!idx_path.empty() && r.error.code == xsr::Errc::bad_header) stale_index(spec, idx_path, r.error.detail);
  return end_output(out, r, req, name, verbose, quiet);
}

}  // namespace xsr_cmd
