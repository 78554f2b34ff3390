// The xsr program's frame: the subcommand table (dispatch and the general
// help), --version, and the options every subcommand parses alike
// (cmd/common/options.h): a bad value is one line naming the subcommand
// and the rule, status 2, nothing on stdout, no file left behind.
#include <sys/stat.h>

#include <cstdio>
#include <regex>

#include "cli_util.h"

namespace xsr::test {
namespace {

class XsrCli : public TempDirTest {
 protected:
  XsrCli() : TempDirTest("xsr-cli") {}
  // The names in the test's directory, one a line (what a run left).
  std::string listing() { return run({"/bin/ls", "-A", dir_}).out; }
  // `xsr ARGS` must be a usage error saying exactly `line`.
  void expect_usage_error(std::vector<std::string> args, const std::string& line) {
    args.insert(args.begin(), xsr_bin());
    Result r = run(args);
    std::string cmd;
    for (const auto& a : args) cmd.append(a).push_back(' ');
    EXPECT_EQ(r.exit, 2) << cmd << r.err;
    EXPECT_EQ(r.err, line + "\n") << cmd;
    EXPECT_EQ(r.out, "") << cmd;
    EXPECT_EQ(listing(), "") << cmd << "left files behind";
  }
};

const char* const kCommands[] = {"verify", "convert", "inspect", "extract", "relay", "gen"};

TEST_F(XsrCli, EachSubcommandNameReachesItsCommand) {
  for (const char* c : kCommands) {
    Result r = run({xsr_bin(), c, "--help"});
    EXPECT_EQ(r.exit, 0) << c << r.err;
    EXPECT_EQ(r.out.rfind("Usage: xsr " + std::string(c) + " [options]", 0), 0u) << c << r.out;
    // One exit-status table, the README's, at the end of every help.
    const std::string table =
        "\nExit status: 0 done; 1 the input is invalid, truncated, unreadable, missing or\n"
        "not a Xen save image; 2 a bad command line, or an output, a peer or xsr itself\n"
        "failed (a full disk, a closed pipe, an unwritable file).\n";
    EXPECT_EQ(r.out.substr(r.out.size() - std::min(r.out.size(), table.size())), table) << c;
    EXPECT_EQ(r.err, "") << c;
    // A parse error names the subcommand it went to.
    r = run({xsr_bin(), c, "--no-such-option"});
    EXPECT_EQ(r.exit, 2) << c;
    EXPECT_EQ(r.err, "xsr " + std::string(c) + ": unrecognised option '--no-such-option' (see 'xsr " + c +
                         " --help')\n")
        << c;
  }
}

TEST_F(XsrCli, TheGeneralHelpListsTheTableAndAnUnknownCommandGetsIt) {
  Result help = run({xsr_bin(), "--help"});
  EXPECT_EQ(help.exit, 0);
  EXPECT_EQ(help.err, "");
  EXPECT_EQ(help.out,
            "Usage: xsr <command> [options]\n"
            "\n"
            "Commands:\n"
            "  verify [FILE|FD|-]   check a v2/v3 stream (libxc, libxl, xl or libvirt wrapped)\n"
            "  convert IN OUT       convert a legacy (Xen <= 4.5) image or stream to v3\n"
            "  inspect [IMAGE]      summarise what an image holds (records, pages, vcpus, params)\n"
            "  extract IMAGE -o RAW write guest memory as a sparse raw file or an ELF core\n"
            "  index IMAGE          write IMAGE.xsrindex: where each page's body is, for extract\n"
            "  relay [IN] [-o OUT]  verify a stream in flight and forward it (pipes, sockets)\n"
            "  gen [-o OUT]         write a deterministic test stream\n"
            "  version              print xsr's version (also 'xsr --version')\n"
            "\n"
            "'xsr <command> --help' (or 'xsr help <command>') describes a command's options.\n");
  for (const char* h : {"-h", "help"}) EXPECT_EQ(run({xsr_bin(), h}).out, help.out) << h;
  for (const char* c : kCommands) {
    Result r = run({xsr_bin(), "help", c});
    EXPECT_EQ(r.exit, 0) << c;
    EXPECT_EQ(r.out, run({xsr_bin(), c, "--help"}).out) << c;
  }
  Result unknown = run({xsr_bin(), "help", "bogus"});
  EXPECT_EQ(unknown.exit, 2);
  EXPECT_EQ(unknown.err, "xsr: unknown command 'bogus'\n\n" + help.out);
  for (const char* bad : {"bogus", "--bogus", "", "Verify", "verify2"}) {
    Result r = run({xsr_bin(), bad});
    EXPECT_EQ(r.exit, 2) << bad;
    EXPECT_EQ(r.out, "") << bad;
    EXPECT_EQ(r.err, "xsr: unknown command '" + std::string(bad) + "'\n\n" + help.out) << bad;
  }
  Result none = run({xsr_bin()});
  EXPECT_EQ(none.exit, 2);
  EXPECT_EQ(none.out, "");
  EXPECT_EQ(none.err, help.out);
}

TEST_F(XsrCli, VersionPrintsTheMesonVersion) {
  const char* want = std::getenv("XSR_VERSION");
  ASSERT_NE(want, nullptr) << "XSR_VERSION (meson's project version) not in the environment";
  // "xsr 0.1.0", and " (git describe)" when built from a checkout.
  const std::regex line("xsr " + std::regex_replace(want, std::regex(R"([.^$|()\[\]{}*+?\\])"), R"(\$&)") +
                        R"(( \([0-9A-Za-z._+-]+\))?\n)");
  for (const char* v : {"--version", "version"}) {
    Result r = run({xsr_bin(), v});
    EXPECT_EQ(r.exit, 0) << v;
    EXPECT_EQ(r.err, "") << v;
    EXPECT_TRUE(std::regex_match(r.out, line)) << v << ": " << r.out;
  }
  EXPECT_EQ(run({xsr_bin(), "version"}).out, run({xsr_bin(), "--version"}).out);
}

TEST_F(XsrCli, ABadFormatIsTheSameUsageErrorInEverySubcommand) {
  const std::string legacy = fixture("legacy/hvm64-full.bin"), v3 = fixture("valid/libxc-v3-hvm.bin");
  expect_usage_error({"verify", "--format", "xml", v3},
                     "xsr verify: --format must be auto, libxc, libxl or xl, not 'xml'");
  expect_usage_error({"relay", "-f", "xml", v3, "-o", path("o")},
                     "xsr relay: --format must be auto, libxc, libxl or xl, not 'xml'");
  expect_usage_error({"convert", "--format", "xml", legacy, path("o")},
                     "xsr convert: --format must be libxc or libxl");
  expect_usage_error({"relay", "--convert", "--convert-format", "xml", legacy, "-o", path("o")},
                     "xsr relay: --convert-format must be libxc or libxl");
  expect_usage_error({"gen", "--format", "xml", "-o", path("g")},
                     "xsr gen: --format must be libxc, libxl or xl");
}

TEST_F(XsrCli, ABadGuestOrWidthIsTheSameUsageErrorInEverySubcommand) {
  const std::string legacy = fixture("legacy/hvm64-full.bin");
  expect_usage_error({"convert", "--guest", "arm", legacy, path("o")},
                     "xsr convert: --guest must be pv or hvm");
  expect_usage_error({"relay", "--convert", "-g", "arm", legacy, "-o", path("o")},
                     "xsr relay: --guest must be pv or hvm");
  expect_usage_error({"gen", "--type", "arm", "-o", path("g")}, "xsr gen: --type must be hvm or pv");
  expect_usage_error({"convert", "--width", "16", legacy, path("o")},
                     "xsr convert: --width must be 32 or 64");
  expect_usage_error({"relay", "--convert", "-w", "16", legacy, "-o", path("o")},
                     "xsr relay: --width must be 32 or 64");
  expect_usage_error({"gen", "--width", "16", "-o", path("g")}, "xsr gen: --width must be 32 or 64");
  expect_usage_error({"gen", "--toolstack-width", "16", "-o", path("g")},
                     "xsr gen: --toolstack-width must be 32 or 64");
  for (const char* c : {"convert", "gen"}) {
    std::vector<std::string> a{c, "--stream-version", "4"};
    if (std::string(c) == "convert") a.insert(a.end(), {legacy, path("o")});
    else a.insert(a.end(), {"-o", path("g")});
    expect_usage_error(a, "xsr " + std::string(c) + ": --stream-version must be 2 or 3");
  }
  expect_usage_error({"relay", "--convert", "--stream-version", "4", legacy, "-o", path("o")},
                     "xsr relay: --stream-version must be 2 or 3");
}

TEST_F(XsrCli, ABadIoCompressOrStatsValueIsTheSameUsageErrorInEverySubcommand) {
  const std::string legacy = fixture("legacy/hvm64-full.bin"), v3 = fixture("valid/libxc-v3-hvm.bin");
  const std::string all = "--io must be auto, pread, mmap, uring or read";
  expect_usage_error({"verify", "--io", "fast", v3}, "xsr verify: " + all);
  expect_usage_error({"convert", "--io", "fast", legacy, path("o")}, "xsr convert: " + all);
  expect_usage_error({"inspect", "--io", "fast", v3}, "xsr inspect: " + all);
  expect_usage_error({"extract", "--io", "fast", v3, "-o", path("r")}, "xsr extract: " + all);
  expect_usage_error({"relay", "--io", "mmap", v3, "-o", path("o")},
                     "xsr relay: --io must be auto, uring or read");
  // Found once the output is open: it is removed on the way out.
  expect_usage_error({"convert", "--compress", "lz4", legacy, path("o")},
                     "xsr convert: --compress must be zstd, gzip, xz or bzip2, not 'lz4'");
  expect_usage_error({"gen", "--compress", "lz4", "-o", path("g")},
                     "xsr gen: --compress must be zstd, gzip, xz or bzip2, not 'lz4'");
  for (const char* c : {"verify", "convert", "gen", "relay"}) {
    std::vector<std::string> tail;
    if (std::string(c) == "convert") tail = {legacy, path("o")};
    else if (std::string(c) == "gen") tail = {"-o", path("g")};
    else tail = {v3, "-o", path("o")};
    if (std::string(c) == "verify") tail = {v3};
    std::vector<std::string> a{c, "--stats-interval", "0"};
    a.insert(a.end(), tail.begin(), tail.end());
    expect_usage_error(a, "xsr " + std::string(c) + ": --stats-interval " +
                              (std::string(c) == "relay" ? "must be a positive number of seconds"
                                                         : "must be a number of seconds above 0"));
    a = {c, "--stats-json", ""};
    a.insert(a.end(), tail.begin(), tail.end());
    expect_usage_error(a, "xsr " + std::string(c) + ": --stats-json needs a file name");
  }
}

// A failure after the output was opened removes it: no temporary file stays.
TEST_F(XsrCli, ACompressorThatCannotStartLeavesNoFile) {
  Result r =
      run({xsr_bin(), "gen", "--size", "256K", "--compress", "zstd", "--level", "99", "-o", path("g")});
  EXPECT_EQ(r.exit, 2);
  EXPECT_EQ(lines(r.err), 1) << r.err;
  EXPECT_EQ(listing(), "");
}

// A FIFO named as the output is written in place, not replaced by a file.
TEST_F(XsrCli, GenIntoAFifoWritesThroughIt) {
  ASSERT_EQ(::mkfifo(path("fifo").c_str(), 0600), 0);
  std::vector<std::byte> got;
  std::thread reader([&] {
    int fd = ::open(path("fifo").c_str(), O_RDONLY | O_CLOEXEC);
    got = read_all_fd(fd);
    ::close(fd);
  });
  Result r = run({xsr_bin(), "gen", "--size", "256K", "-o", path("fifo")});
  reader.join();
  EXPECT_EQ(r.exit, 0) << r.err;
  // All of it went through the FIFO.
  EXPECT_EQ(r.err.rfind("xsr gen: " + std::to_string(got.size()) + " bytes, ", 0), 0u) << r.err;
  EXPECT_GT(got.size(), 256u << 10);
  struct stat st {};
  ASSERT_EQ(::stat(path("fifo").c_str(), &st), 0);
  EXPECT_TRUE(S_ISFIFO(st.st_mode));
  EXPECT_EQ(listing(), "fifo\n");
}

}  // namespace
}  // namespace xsr::test
