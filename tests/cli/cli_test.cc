// The command-line tools as users and libxl run them: exit codes, stderr,
// stdout, descriptors handed over.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include "cli_util.h"
#include "common/output.h"

namespace xsr::test {
namespace {

TEST(VerifyStreamV2, ValidStreamExitsZeroSilently) {
  Result r = run({verify_bin(), "-i", fixture("valid/libxc-v3-hvm.bin")});
  EXPECT_EQ(r.exit, 0) << r.err;
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(r.err, "");
}

TEST(VerifyStreamV2, VerboseOutputIsXensByteForByte) {
  Result r = run({verify_bin(), "-v", "--in", fixture("valid/libxc-v3-hvm.bin")});
  EXPECT_EQ(r.exit, 0);
  EXPECT_EQ(r.out, slurp(fixture("valid/libxc-v3-hvm.verbose")));
}

TEST(VerifyStreamV2, UniquePrefixesOfLongOptionsWork) {
  Result r = run({verify_bin(), "--verb", "--form=xl", "--i", fixture("valid/xl-libxl-hvm.bin")});
  EXPECT_EQ(r.exit, 0) << r.err;
  EXPECT_EQ(r.out.rfind("Processed xl header\n", 0), 0u) << r.out;
}

TEST(VerifyStreamV2, StreamErrorIsOneLineOnStderrAndExitOne) {
  Result r = run({verify_bin(), "-i", fixture("invalid/pagedata-reserved-pfn-bits.bin")});
  EXPECT_EQ(r.exit, 1);
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(lines(r.err), 1) << r.err;
  EXPECT_EQ(r.err.rfind("Stream Error: ", 0), 0u) << r.err;
  EXPECT_NE(r.err.find("(PAGE_DATA): Reserved bits set in pfn["), std::string::npos) << r.err;
}

TEST(VerifyStreamV2, QuietPrintsNothingButKeepsTheExitCode) {
  Result r = run({verify_bin(), "-q", "-v", "-i", fixture("invalid/pagedata-reserved-pfn-bits.bin")});
  EXPECT_EQ(r.exit, 1);
  EXPECT_EQ(r.out + r.err, "");
}

TEST(VerifyStreamV2, BadOptionsAreUsageErrorsWithExitTwo) {
  Result r = run({verify_bin(), "-x"});
  EXPECT_EQ(r.exit, 2);
  EXPECT_EQ(r.err, "Usage: verify-stream-v2 [options]\n\nverify-stream-v2: error: no such option: -x\n");
  r = run({verify_bin(), "--format", "bogus"});
  EXPECT_EQ(r.exit, 2);
  EXPECT_EQ(r.err,
            "Usage: verify-stream-v2 [options]\n\nverify-stream-v2: error: option --format: "
            "invalid choice: 'bogus' (choose from 'libxc', 'libxl', 'xl')\n");
}

TEST(VerifyStreamV2, HelpMatchesTheReference) {
  Result r = run({verify_bin(), "--help"});
  EXPECT_EQ(r.exit, 0);
  EXPECT_EQ(
      r.out.rfind(
          "Usage: verify-stream-v2 [options]\n\nVerify a stream according to the v2 (or later) spec\n", 0),
      0u);
  EXPECT_NE(r.out.find("  -f <libxc|libxl|xl>, --format=<libxc|libxl|xl>\n"), std::string::npos);
}

TEST(VerifyStreamV2, MissingInputFileIsExitOneWithAMessage) {
  Result r = run({verify_bin(), "-i", "/nonexistent/image"});
  EXPECT_EQ(r.exit, 1);
  EXPECT_EQ(lines(r.err), 1);
  EXPECT_NE(r.err.find("/nonexistent/image"), std::string::npos);
}

TEST(VerifyStreamV2, FdInputIsLeftJustAfterTheStream) {
  auto data = read_file(fixture("valid/libxl-hvm.bin"));
  int fd = memfd_with(data, 4096 + 48, 512);
  Result r = run({verify_bin(), "-f", "libxl", "-i", "40"}, -1, fd, 40);
  EXPECT_EQ(r.exit, 0) << r.err;
  // The child shared our open file description: its offset moved.
  EXPECT_EQ(::lseek(fd, 0, SEEK_CUR), static_cast<off_t>(4096 + 48 + data.size()));
  ::close(fd);
}

TEST(VerifyStreamV2, StdinPipeKeepsTheBytesAfterEnd) {
  auto data = read_file(fixture("valid/libxc-v3-hvm.bin"));
  auto trailer = bytes_of("after the stream");
  auto all = data;
  all.insert(all.end(), trailer.begin(), trailer.end());
  int p[2];
  ASSERT_EQ(::pipe2(p, O_CLOEXEC), 0);
  {
    Feeder f(p[1], all, 7);  // 7-byte writes: short reads everywhere
    Result r = run({verify_bin()}, p[0]);
    EXPECT_EQ(r.exit, 0) << r.err;
    EXPECT_TRUE(read_all_fd(p[0]) == trailer);
  }
  ::close(p[0]);
}

TEST(XsrVerify, SaysWhatItFoundAndCountsItAsJson) {
  Result r = run({xsr_bin(), "verify", fixture("valid/xl-libxl-hvm.bin")});
  EXPECT_EQ(r.exit, 0) << r.err;
  EXPECT_NE(r.out.find("valid xl+libxl stream"), std::string::npos) << r.out;
  r = run({xsr_bin(), "verify", "--json", fixture("valid/xl-libxl-hvm.bin")});
  EXPECT_EQ(r.exit, 0);
  EXPECT_NE(r.out.find("\"verdict\": \"valid\""), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("\"container\": \"xl+libxl\""), std::string::npos) << r.out;
}

TEST(XsrVerify, InvalidStreamNamesInputOffsetAndRecord) {
  Result r = run({xsr_bin(), "verify", fixture("invalid/pagedata-reserved-pfn-bits.bin")});
  EXPECT_EQ(r.exit, 1);
  EXPECT_EQ(lines(r.err), 1) << r.err;
  EXPECT_EQ(
      r.err.rfind("xsr verify: " + fixture("invalid/pagedata-reserved-pfn-bits.bin") + ": offset 0x", 0), 0u)
      << r.err;
  r = run({xsr_bin(), "verify", "--json", fixture("invalid/pagedata-reserved-pfn-bits.bin")});
  EXPECT_EQ(r.exit, 1);
  EXPECT_NE(r.out.find("\"verdict\": \"invalid\""), std::string::npos);
  EXPECT_NE(r.out.find("\"type\": \"PAGE_DATA\""), std::string::npos) << r.out;
}

TEST(XsrGen, IsDeterministicPerSeedAndVerifies) {
  char dir[] = "/tmp/xsr-cli-XXXXXX";
  ASSERT_TRUE(::mkdtemp(dir));
  std::string a = std::string(dir) + "/a", b = std::string(dir) + "/b", c = std::string(dir) + "/c";
  for (auto& [out, seed] : std::vector<std::pair<std::string, std::string>>{{a, "5"}, {b, "5"}, {c, "6"}}) {
    Result r =
        run({xsr_bin(), "gen", "-o", out, "--size", "1M", "--format", "xl", "--type", "pv", "--seed", seed});
    ASSERT_EQ(r.exit, 0) << r.err;
  }
  EXPECT_EQ(slurp(a), slurp(b));
  EXPECT_NE(slurp(a), slurp(c));
  Result r = run({xsr_bin(), "verify", "--strict", a});
  EXPECT_EQ(r.exit, 0) << r.err;
  r = run({xsr_bin(), "gen", "-o", std::string(dir) + "/no/such/dir/x"});
  EXPECT_EQ(r.exit, 2);
  for (auto& f : {a, b, c}) ::unlink(f.c_str());
  ::rmdir(dir);
}

TEST(ConvertLegacyStream, RunsAsLibxlRunsItFdToPipe) {
  auto in = read_file(fixture("legacy/hvm64-full.bin"));
  int ip[2], op[2];
  ASSERT_EQ(::pipe2(ip, O_CLOEXEC), 0);
  ASSERT_EQ(::pipe2(op, O_CLOEXEC), 0);
  std::vector<std::byte> got;
  Result r;
  {
    Feeder f(ip[1], in, 4096);
    std::thread reader([&] { got = read_all_fd(op[0]); });
    // libxl: --in FD --out FD --width 64 --guest hvm --format libxl
    pid_t pid = ::fork();
    if (pid == 0) {
      ::dup2(ip[0], 40);  // numbers no pipe of ours can have
      ::dup2(op[1], 41);
      execl(convert_bin().c_str(), "convert-legacy-stream", "--in", "40", "--out", "41", "--width", "64",
            "--guest", "hvm", "--format", "libxl", static_cast<char*>(nullptr));
      ::_exit(127);
    }
    ::close(op[1]);
    int st = 0;
    ::waitpid(pid, &st, 0);
    r.exit = WEXITSTATUS(st);
    reader.join();
  }
  ::close(ip[0]);
  ::close(op[0]);
  EXPECT_EQ(r.exit, 0);
  EXPECT_TRUE(got == read_file(fixture("legacy/hvm64-full.libxl.v3")));
}

TEST(ConvertLegacyStream, MissingRequiredOptionsPrintHelpAndExitOne) {
  Result r = run({convert_bin(), "-i", fixture("legacy/hvm64-full.bin"), "-w", "64"});
  EXPECT_EQ(r.exit, 1);
  EXPECT_EQ(r.err.rfind("Usage: convert-legacy-stream [options] -i INPUT -o OUTPUT -w WIDTH -g GUEST\n", 0),
            0u);
  EXPECT_NE(r.err.find("  --skip-qemu           Skip processing of the qemu tail? (default no)\n"),
            std::string::npos);
}

TEST(ConvertLegacyStream, BadChoiceIsAUsageErrorExitTwo) {
  Result r = run({convert_bin(), "-i", "0", "-o", "1", "-w", "16", "-g", "hvm"});
  EXPECT_EQ(r.exit, 2);
  EXPECT_NE(
      r.err.find("convert-legacy-stream: error: option -w: invalid choice: '16' (choose from '32', '64')\n"),
      std::string::npos)
      << r.err;
}

TEST(ConvertLegacyStream, AFailedConversionLeavesNoOutputFile) {
  char dir[] = "/tmp/xsr-cli-XXXXXX";
  ASSERT_TRUE(::mkdtemp(dir));
  auto in = read_file(fixture("legacy/hvm64-full.bin"));
  const std::string cut = std::string(dir) + "/cut.bin", out = std::string(dir) + "/out.v3";
  {
    std::ofstream f(cut, std::ios::binary);
    f.write(reinterpret_cast<const char*>(in.data()), static_cast<std::streamsize>(in.size() / 2));
  }
  Result r = run({convert_bin(), "-i", cut, "-o", out, "-w", "64", "-g", "hvm", "-f", "libxl"});
  EXPECT_EQ(r.exit, 1);
  EXPECT_EQ(lines(r.err), 1) << r.err;
  EXPECT_EQ(r.err.rfind("Stream Error: " + cut + ": offset 0x", 0), 0u) << r.err;
  EXPECT_NE(r.err.find("stream truncated"), std::string::npos);
  EXPECT_NE(::access(out.c_str(), F_OK), 0) << "a failed run left " << out;
  Result ls = run({"/bin/ls", "-A", dir});
  EXPECT_EQ(ls.out, "cut.bin\n");  // no temporary file either
  ::unlink(cut.c_str());
  ::rmdir(dir);
}

TEST(XsrConvert, DetectsConvertsVerifiesAndMatchesTheDropIn) {
  char dir[] = "/tmp/xsr-cli-XXXXXX";
  ASSERT_TRUE(::mkdtemp(dir));
  const std::string out = std::string(dir) + "/out.v3";
  Result r = run(
      {xsr_bin(), "convert", "-v", "--verify", "--format", "libxl", fixture("legacy/hvm64-full.bin"), out});
  EXPECT_EQ(r.exit, 0) << r.err;
  EXPECT_NE(r.err.find("64-bit toolstack, HVM guest -> libxl v3 stream"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("page data moved by"), std::string::npos) << r.err;
  EXPECT_NE(r.out.find("Qemu signature: b'DeviceModelRecord0002'\n"), std::string::npos) << r.out;
  EXPECT_EQ(slurp(out), slurp(fixture("legacy/hvm64-full.libxl.v3")));
  ::unlink(out.c_str());
  ::rmdir(dir);
}

TEST(XsrConvert, VerifiesAPipeOutputInTheSamePass) {
  Result r =
      run({xsr_bin(), "convert", "--verify", "--format", "libxl", fixture("legacy/hvm32-full.bin"), "-"});
  EXPECT_EQ(r.exit, 0) << r.err;
  EXPECT_NE(r.err.find(", verified\n"), std::string::npos) << r.err;
  EXPECT_EQ(r.out, slurp(fixture("legacy/hvm32-full.libxl.v3")));
  // Emulator data in a PV stream: the reference writes it and the plain
  // rules take it; Xen's restore refuses it (for its random pagetables
  // first), which verify --strict says.
  r = run({xsr_bin(), "convert", "--verify", "--format", "libxl", fixture("legacy/pv64-toolstack.bin"), "-"});
  EXPECT_EQ(r.exit, 0) << r.err;
  const std::string out = "/tmp/xsr-cli-pv-" + std::to_string(::getpid()) + ".v3";
  std::FILE* f = std::fopen(out.c_str(), "wb");
  ASSERT_NE(f, nullptr);
  std::fwrite(r.out.data(), 1, r.out.size(), f);
  std::fclose(f);
  r = run({xsr_bin(), "verify", "--strict", out});
  ::unlink(out.c_str());
  EXPECT_EQ(r.exit, 1);
  EXPECT_NE(r.err.find(": Xen restore: "), std::string::npos) << r.err;  // its pagetables, first
}

TEST(ConvertLegacyStream, SigtermMidConversionRemovesTheTemporaryOutput) {
  char dir[] = "/tmp/xsr-cli-XXXXXX";
  ASSERT_TRUE(::mkdtemp(dir));
  auto in = read_file(fixture("legacy/hvm64-full.bin"));
  int ip[2];
  ASSERT_EQ(::pipe2(ip, O_CLOEXEC), 0);
  // Half the stream, then the writer holds the pipe open: the converter
  // waits for more, as it would on a stalled migration.
  ASSERT_EQ(::write(ip[1], in.data(), in.size() / 2), static_cast<ssize_t>(in.size() / 2));
  const std::string out = std::string(dir) + "/out.v3";
  pid_t pid = ::fork();
  if (pid == 0) {
    ::setenv(xsr::cli::Output::kNamedTempEnv, "1", 1);  // a temporary file the test can see
    ::dup2(ip[0], 0);
    execl(convert_bin().c_str(), "convert-legacy-stream", "-i", "0", "-o", out.c_str(), "-w", "64", "-g",
          "hvm", static_cast<char*>(nullptr));
    ::_exit(127);
  }
  // Wait until the temporary output exists, then abort as libxl does.
  bool started = false;
  for (int i = 0; i < 500 && !started; ++i) {
    Result ls = run({"/bin/ls", "-A", dir});
    started = !ls.out.empty();
    if (!started) ::usleep(10000);
  }
  EXPECT_TRUE(started);
  ::kill(pid, SIGTERM);
  int st = 0;
  ::waitpid(pid, &st, 0);
  EXPECT_TRUE(WIFSIGNALED(st) && WTERMSIG(st) == SIGTERM);
  Result ls = run({"/bin/ls", "-A", dir});
  EXPECT_EQ(ls.out, "") << "left behind: " << ls.out;
  ::close(ip[0]);
  ::close(ip[1]);
  ::rmdir(dir);
}

TEST(ConvertLegacyStream, AReaderThatGoesAwayIsAnErrorNotASignalDeath) {
  int op[2];
  ASSERT_EQ(::pipe2(op, O_CLOEXEC), 0);
  ::close(op[0]);  // nobody will read the output
  Result r = run({convert_bin(), "-i", fixture("legacy/hvm64-full.bin"), "-o", "40", "-w", "64", "-g", "hvm"},
                 -1, op[1], 40);
  ::close(op[1]);
  EXPECT_EQ(r.exit, 1);
  EXPECT_EQ(lines(r.err), 1) << r.err;
  EXPECT_NE(r.err.find("Broken pipe"), std::string::npos) << r.err;
}

// ---- compressed images ------------------------------------------------------

bool have_tool(const char* t) {
  return std::system((std::string("command -v ") + t + " > /dev/null").c_str()) == 0;
}

TEST(XsrCompressed, GenCompressesAndVerifyReadsItBack) {
  char dir[] = "/tmp/xsr-cli-z-XXXXXX";
  ASSERT_TRUE(::mkdtemp(dir));
  const std::string img = std::string(dir) + "/img.zst";
  Result r = run({xsr_bin(), "gen", "--size", "4M", "--mixed-pages", "--compress", "zstd", "-o", img});
  ASSERT_EQ(r.exit, 0) << r.err;
  r = run({xsr_bin(), "verify", img});
  EXPECT_EQ(r.exit, 0) << r.err;
  EXPECT_NE(r.out.find(": valid libxc stream"), std::string::npos) << r.out;
  r = run({xsr_bin(), "verify", "-v", img});
  EXPECT_EQ(r.exit, 0) << r.err;
  EXPECT_NE(
      r.err.find("xsr verify: compressed input (zstd): decompressed through Boost.Iostreams in a second "
                 "thread, not zero-copy\n"),
      std::string::npos)
      << r.err;
  if (have_tool("zstd")) {
    // The zstd tool reads what gen wrote: an ordinary .zst file.
    EXPECT_EQ(std::system(("zstd -q -t " + img).c_str()), 0);
  }
  // Through stdin, a pipe.
  int p[2];
  ASSERT_EQ(::pipe2(p, O_CLOEXEC), 0);
  {
    Feeder feed(p[1], read_file(img));
    r = run({xsr_bin(), "verify", "-"}, p[0]);
  }
  ::close(p[0]);
  EXPECT_EQ(r.exit, 0) << r.err;
  EXPECT_NE(r.out.find("<stdin>: valid libxc stream"), std::string::npos) << r.out;
  ::unlink(img.c_str());
  ::rmdir(dir);
}

TEST(XsrCompressed, DamagedCompressedInputIsNamed) {
  char dir[] = "/tmp/xsr-cli-z-XXXXXX";
  ASSERT_TRUE(::mkdtemp(dir));
  const std::string img = std::string(dir) + "/img.zst", cut = std::string(dir) + "/cut.zst";
  ASSERT_EQ(run({xsr_bin(), "gen", "--size", "4M", "--mixed-pages", "--compress", "zstd", "-o", img}).exit,
            0);
  auto bytes = read_file(img);
  bytes.resize(bytes.size() / 2);
  {
    std::ofstream o(cut, std::ios::binary);
    o.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  }
  Result r = run({xsr_bin(), "verify", cut});
  EXPECT_EQ(r.exit, 1);
  EXPECT_EQ(lines(r.err), 1) << r.err;
  EXPECT_NE(r.err.find("read failed: zstd data truncated: the compressed input ends after " +
                       std::to_string(bytes.size()) + " bytes"),
            std::string::npos)
      << r.err;
  ::unlink(img.c_str());
  ::unlink(cut.c_str());
  ::rmdir(dir);
}

TEST(XsrCompressed, ConvertCompressesItsOutputAndReadsCompressedInput) {
  if (!have_tool("xz") || !have_tool("gzip")) GTEST_SKIP() << "xz and gzip tools needed as oracles";
  char dir[] = "/tmp/xsr-cli-z-XXXXXX";
  ASSERT_TRUE(::mkdtemp(dir));
  const std::string d(dir), in = fixture("legacy/hvm64-full.bin");
  Result r = run({xsr_bin(), "convert", "--format", "libxl", in, d + "/plain.bin"});
  ASSERT_EQ(r.exit, 0) << r.err;
  r = run(
      {xsr_bin(), "convert", "-v", "--verify", "--compress", "xz", "--format", "libxl", in, d + "/out.xz"});
  ASSERT_EQ(r.exit, 0) << r.err;
  EXPECT_NE(r.err.find("xsr convert: output compressed (xz) through Boost.Iostreams"), std::string::npos)
      << r.err;
  EXPECT_EQ(std::system(("xz -dc " + d + "/out.xz | cmp -s - " + d + "/plain.bin").c_str()), 0);
  // A gzip-compressed legacy image: detection sees the decompressed bytes.
  ASSERT_EQ(std::system(("gzip -c " + in + " > " + d + "/in.gz").c_str()), 0);
  r = run({xsr_bin(), "convert", "-v", "--format", "libxl", d + "/in.gz", d + "/from-gz.bin"});
  ASSERT_EQ(r.exit, 0) << r.err;
  EXPECT_NE(r.err.find("compressed input (gzip)"), std::string::npos) << r.err;
  EXPECT_EQ(slurp(d + "/from-gz.bin"), slurp(d + "/plain.bin"));
  r = run({xsr_bin(), "convert", "--compress", "lz4", in, d + "/x"});
  EXPECT_EQ(r.exit, 2);
  EXPECT_NE(r.err.find("--compress must be zstd, gzip, xz or bzip2, not 'lz4'"), std::string::npos) << r.err;
  for (const char* f : {"/plain.bin", "/out.xz", "/in.gz", "/from-gz.bin"}) ::unlink((d + f).c_str());
  ::rmdir(dir);
}

// A full disk under the compressor: exit 2 (an output failed), the real
// cause, no file left.
TEST(XsrCompressed, CompressedOutputFailureIsReported) {
  int full = ::open("/dev/full", O_WRONLY | O_CLOEXEC);
  if (full < 0) GTEST_SKIP() << "no /dev/full";
  Result r = run({xsr_bin(), "gen", "--size", "8M", "--compress", "gzip", "-o", "40"}, -1, full, 40);
  ::close(full);
  EXPECT_EQ(r.exit, 2);
  EXPECT_NE(r.err.find("writing the compressed output failed: No space left on device"), std::string::npos)
      << r.err;
}

}  // namespace
}  // namespace xsr::test
