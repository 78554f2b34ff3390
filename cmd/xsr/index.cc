// xsr index: options and wiring (the work is in lib/extract/index.cc).
#include <cstdio>
#include <cstring>
#include <string>

#include "common/output.h"
#include "common/progress.h"
#include "xsr/index.h"
#include "xsr/sys.h"
#include "xsr/units.h"
#include "xsr_cmd.h"

namespace xsr_cmd {
namespace {

po::options_description index_options() {
  po::options_description desc(
      "Usage: xsr index [options] IMAGE [-o FILE]\n\n"
      "Writes IMAGE's page index (IMAGE.xsrindex unless -o says otherwise): for each\n"
      "run of consecutive pfns whose bodies follow each other in one PAGE_DATA record,\n"
      "the file offset of the last copy of their bodies, with IMAGE's size and a\n"
      "checksum of its headers. xsr extract --page, --pfn and --elf then read only the\n"
      "pages asked for. One pass over the image; page bodies are skipped, never read.\n"
      "IMAGE must be a plain v2/v3 image FILE: not compressed, not a pipe, not a\n"
      "legacy image (convert it first). --check rebuilds the index in memory and\n"
      "compares it with FILE instead of writing it (status 1 when it differs).\n\nOptions");
  // clang-format off
  desc.add_options()
      ("help,h", "show this help")
      ("image", po::value<std::string>(), "the image FILE")
      ("output,o", po::value<std::string>(), "the index to write (default IMAGE.xsrindex)")
      ("check", po::bool_switch(), "compare the index with the image instead of writing it")
      ("verbose,v", po::bool_switch(), "say how the image is read (on stderr)")
      ("quiet,q", po::bool_switch(), "print nothing; the exit status tells")
      ("no-progress", po::bool_switch(), "no progress bar even on a terminal");
  // clang-format on
  return desc;
}

// --check: the index at `path` against the one just built.
int check_index(const std::string& path, const xsr::PageIndex& built, bool quiet) {
  const xsr::Result<xsr::PageIndex> old = xsr::read_index(path);
  if (!old.ok()) {
    if (!quiet) cli::print(stderr, "xsr index: %s: %s\n", path.c_str(), old.error().detail.c_str());
    return cli::kFailed;
  }
  const bool same = old.value().serialize() == built.serialize();
  if (!quiet)
    cli::print(stderr, "xsr index: %s: %s\n", path.c_str(),
               same ? "up to date" : "stale (it differs from the image's pages); rebuild it");
  return same ? cli::kOk : cli::kFailed;
}

}  // namespace

int cmd_index(int argc, char** argv) {
  const po::options_description desc = index_options();
  po::positional_options_description pos;
  pos.add("image", 1);
  const po::variables_map vm = cli::parse(argc, argv, desc, pos, "index");
  if (vm.count("help")) return print_help(desc);
  if (!vm.count("image")) cli::usage_error("index", "needs IMAGE (see 'xsr index --help')");
  const bool quiet = vm["quiet"].as<bool>();
  const std::string spec = vm["image"].as<std::string>();
  const std::string path = vm.count("output") ? vm["output"].as<std::string>() : spec + ".xsrindex";
  cli::ignore_sigpipe();
  PlainImage img = open_plain_image(spec, "index");
  PlainImage head = open_plain_image(spec, "index");
  if (vm["verbose"].as<bool>())
    cli::print(stderr, "xsr index: reading %s through %s, page bodies skipped\n", spec.c_str(),
               std::string(img.src->kind()).c_str());
  xsr::Result<xsr::PageIndex> idx = xsr::Error{};
  {
    cli::Progress bar(img.src->remaining(), !quiet && !vm["no-progress"].as<bool>());
    idx = xsr::build_index(*img.src, *head.src, img.size, [&bar](std::uint64_t done) { bar.update(done); });
  }
  if (!idx.ok()) {
    if (!quiet) cli::print(stderr, "xsr index: %s: %s\n", spec.c_str(), idx.error().message().c_str());
    return cli::exit_status(idx.error());
  }
  if (vm["check"].as<bool>()) return check_index(path, idx.value(), quiet);
  const std::vector<std::byte> bytes = idx.value().serialize();
  cli::note_input(spec);
  cli::Output out;
  cli::OutputRules rules;
  rules.binary = true;
  out.open_or_die(path, "index", rules);
  std::string err;
  if (int e = xsr::sys::write_all(out.fd(), bytes.data(), bytes.size()))
    err = out.name() + ": " + std::strerror(e);
  if (!err.empty() || !out.commit(&err)) {
    out.abort();
    if (!quiet) cli::print(stderr, "xsr index: %s\n", err.c_str());
    return cli::kOutput;
  }
  if (!quiet)
    cli::print(stderr, "xsr index: %s -> %s: %s in %s, index %s\n", spec.c_str(), out.name().c_str(),
               xsr::counted(idx.value().pages(), "page").c_str(),
               xsr::counted(idx.value().runs.size(), "run").c_str(), xsr::format_bytes(bytes.size()).c_str());
  return cli::kOk;
}

}  // namespace xsr_cmd
