// xsr: one command for Xen save images and migration streams. This file
// dispatches to the subcommands (one file each in cmd/xsr/) and prints the
// general help, both from one table.
#include <cstdio>
#include <string>
#include <string_view>

#include "common/interrupt.h"
#include "version.h"
#include "xsr_cmd.h"

namespace xsr_cmd {

int cmd_version(int, char**) {
  std::string v = "xsr " XSR_VERSION;
  if (const std::string_view git = XSR_GIT_DESCRIBE; !git.empty()) v.append(" (").append(git).append(")");
  std::puts(v.c_str());
  return cli::kOk;
}

namespace {

struct Command {
  const char* name;
  const char* args;  // what follows the name in the help's synopsis
  int (*run)(int argc, char** argv);
  const char* summary;
};

// The subcommands, in the order the help lists them.
constexpr Command kCommands[] = {
    {"verify", "[FILE|FD|-]", cmd_verify, "check a v2/v3 stream (libxc, libxl, xl or libvirt wrapped)"},
    {"convert", "IN OUT", cmd_convert, "convert a legacy (Xen <= 4.5) image or stream to v3"},
    {"inspect", "[IMAGE]", cmd_inspect, "summarise what an image holds (records, pages, vcpus, params)"},
    {"extract", "IMAGE -o RAW", cmd_extract, "write guest memory as a sparse raw file or an ELF core"},
    {"index", "IMAGE", cmd_index, "write IMAGE.xsrindex: where each page's body is, for extract"},
    {"relay", "[IN] [-o OUT]", cmd_relay, "verify a stream in flight and forward it (pipes, sockets)"},
    {"gen", "[-o OUT]", cmd_gen, "write a deterministic test stream"},
    {"version", "", cmd_version, "print xsr's version (also 'xsr --version')"},
};

std::string usage() {
  std::string u = "Usage: xsr <command> [options]\n\nCommands:\n";
  for (const Command& c : kCommands) {
    const std::string synopsis = *c.args ? std::string(c.name) + " " + c.args : c.name;
    char line[160];
    std::snprintf(line, sizeof line, "  %-20s %s\n", synopsis.c_str(), c.summary);
    u += line;
  }
  u += "\n'xsr <command> --help' (or 'xsr help <command>') describes a command's options.\n";
  return u;
}

}  // namespace
}  // namespace xsr_cmd

int main(int argc, char** argv) {
  using namespace xsr_cmd;
  cli::handle_interrupts();  // first: every thread started later inherits the mask
  if (argc < 2) {
    std::fputs(usage().c_str(), stderr);
    return cli::kUsage;
  }
  const std::string_view cmd = argv[1];
  if (cmd == "help" && argc > 2) {
    // `xsr help CMD` is `xsr CMD --help`.
    for (const Command& c : kCommands) {
      if (std::string_view(argv[2]) != c.name) continue;
      char flag[] = "--help";
      char* args[] = {argv[2], flag, nullptr};
      return c.run(2, args);
    }
    std::fprintf(stderr, "xsr: unknown command '%s'\n\n%s", argv[2], usage().c_str());
    return cli::kUsage;
  }
  if (cmd == "-h" || cmd == "--help" || cmd == "help") {
    std::fputs(usage().c_str(), stdout);
    return cli::kOk;
  }
  if (cmd == "--version") return cmd_version(argc - 1, argv + 1);
  for (const Command& c : kCommands) {
    if (cmd != c.name) continue;
    try {
      return c.run(argc - 1, argv + 1);
    } catch (const cli::Failure& f) {
      std::fprintf(stderr, "%s\n", f.what());
      return f.status();
    }
  }
  std::fprintf(stderr, "xsr: unknown command '%s'\n\n%s", argv[1], usage().c_str());
  return cli::kUsage;
}
