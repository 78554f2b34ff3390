// xsr inspect: options and wiring (the work is in lib/inspect and, for a
// legacy image, lib/convert's ImageInput).
#include <cstdio>
#include <string>

#include "common/output.h"
#include "common/progress.h"
#include "xsr/format.h"
#include "xsr/inspect.h"
#include "xsr_cmd.h"

namespace xsr_cmd {
namespace {

po::options_description inspect_options() {
  po::options_description desc(
      "Usage: xsr inspect [options] [IMAGE]\n\n"
      "Summarises what a save image or migration stream holds: its container (xl or\n"
      "libvirt header, libxl, libxc, legacy), guest, records by type, pages (distinct\n"
      "pfns, range, holes, pages sent twice), vcpus and their context records, HVM\n"
      "params, TSC info, checkpoints and emulator records (--vcpus: each vCPU's\n"
      "registers). Page bodies are not read.\n"
      "IMAGE is FILE, FD or - (stdin, the default). A legacy (Xen <= 4.5) image is\n"
      "converted on the way in and described as the v3 stream it converts to. An\n"
      "invalid or truncated image is described up to the error (status 1).\n\nOptions");
  // clang-format off
  desc.add_options()
      ("help,h", "show this help")
      ("image", po::value<std::string>()->default_value("-"), "FILE, FD or -")
      ("json", po::bool_switch(), "one JSON document (schema: docs/inspect-json.md)")
      ("records", po::bool_switch(), "list every header and record with its offset, type and length")
      ("config", po::bool_switch(), "print the xl / libvirt domain config")
      ("vcpus", po::bool_switch(), "print each vCPU's registers (cr3 and its page-table root pfn)")
      ("verbose,v", po::bool_switch(), "say how the image is read (on stderr)")
      ("no-progress", po::bool_switch(), "no progress bar even on a terminal")
      ("io", po::value<std::string>()->default_value("auto"), "auto, pread, mmap, uring or read");
  // clang-format on
  return desc;
}

// --records: a line per header and record, printed as the inspection goes:
// a table under its heading, or (--json) the elements of the document's
// "record_list" array, which print_report() closes. The lines come
// formatted from lib/inspect; the array is streamed, not held.
void list_records(xsr::InspectOptions& opt, bool json, bool& first) {
  opt.records_json = json;
  if (json) {
    std::fputs("{\n  \"record_list\": [", stdout);
    opt.record_line = [&first](const std::string& l) {
      std::fputs(first ? "\n    " : ",\n    ", stdout);
      std::fputs(l.c_str(), stdout);
      first = false;
    };
    return;
  }
  std::printf("%-12s  %-5s  %-28s %s\n", "offset", "layer", "record", "length");
  opt.record_line = [](const std::string& l) {
    std::fputs(l.c_str(), stdout);
    std::fputc('\n', stdout);
  };
}

// The report on stdout: JSON (the members lib/inspect formats, after the
// streamed record list when there is one) or text.
void print_report(const std::string& name, const xsr::InspectReport& rep, bool json, bool records,
                  bool config, bool vcpus) {
  if (json) {
    const std::string members = cli::dump_members(xsr::inspect_json(name, rep, config, vcpus));
    if (records) std::printf("\n  ],\n%s\n}\n", members.c_str());
    else std::printf("{\n%s\n}\n", members.c_str());
  } else {
    if (records) std::fputc('\n', stdout);
    std::fputs(xsr::inspect_text(name, rep, config, vcpus).c_str(), stdout);
  }
  if (std::fflush(stdout) != 0 || std::ferror(stdout))
    cli::die(cli::kOutput, "inspect: writing the report failed");
}

}  // namespace

int cmd_inspect(int argc, char** argv) {
  const po::options_description desc = inspect_options();
  po::positional_options_description pos;
  pos.add("image", 1);
  const po::variables_map vm = cli::parse(argc, argv, desc, pos, "inspect");
  if (vm.count("help")) return print_help(desc);
  const std::string spec = vm["image"].as<std::string>();
  const std::string name = cli::display_name(spec, "<stdin>");
  const bool json = vm["json"].as<bool>(), records = vm["records"].as<bool>(),
             config = vm["config"].as<bool>(), vcpus = vm["vcpus"].as<bool>();
  cli::ignore_sigpipe();
  OpenedImage o;
  // --json prints a document whatever the input: one that cannot be opened
  // or read as an image is invalid, its error said, its counts empty.
  const auto on_fail = [&](const xsr::Error& e) {
    if (!json) return;
    xsr::InspectReport failed;
    failed.error = e;
    if (records) std::fputs("{\n  \"record_list\": [", stdout);
    print_report(name, failed, json, records, config, vcpus);
  };
  open_image(o, spec, name, cli::io_mode("inspect", vm["io"].as<std::string>()), "inspect",
             vm["verbose"].as<bool>(), on_fail);

  xsr::InspectOptions opt;
  bool first = true;
  if (records) list_records(opt, json, first);
  xsr::InspectReport rep;
  rep.legacy = o.img.legacy();
  rep.legacy_width = o.img.guess().width;
  {
    // A bar on stderr for large inputs on a terminal (not beside --records
    // lines), gone before the report is printed.
    cli::Progress bar(o.src.source->remaining(), !records && !vm["no-progress"].as<bool>());
    opt.progress = [&bar](std::uint64_t done) { bar.update(done); };
    xsr::inspect(o.img.stream(), opt, rep);
    opt.progress = nullptr;
  }
  rep.error = o.img.finish(rep.error);
  if (rep.legacy && !o.img.legacy_config().empty()) {
    std::string_view cfg = o.img.legacy_config();
    xsr::xl::config_in_optional_data(cfg, cfg.size(), cfg);
    rep.config_kind = "xl";
    rep.config_bytes = cfg.size();
    rep.config = std::string(cfg);
  }
  o.src.source->finish();
  rep.compression = xsr::compression_of(*o.src.source);
  print_report(name, rep, json, records, config, vcpus);
  if (rep.error) {
    cli::print(stderr, "xsr inspect: %s: %s\n", name.c_str(), rep.error.message().c_str());
    return cli::exit_status(rep.error);
  }
  return cli::kOk;
}

}  // namespace xsr_cmd
