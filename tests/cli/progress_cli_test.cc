// The progress bar (cmd/common/progress.h): its text, and what a terminal
// shows when xsr runs on one (script(1) gives the process a terminal): the
// bar, then "\r\033[K" before any other line, so the verdict, the summary
// and the --stats lines start on a clean line.
#include <regex>

#include "cli_util.h"
#include "common/progress.h"

namespace xsr::test {
namespace {

using cli::Progress;
constexpr std::uint64_t kMiB = 1ull << 20, kGiB = 1ull << 30;

TEST(ProgressText, KnownTotalHasPercentBinaryUnitsElapsedAndLeft) {
  EXPECT_EQ(Progress::text(512 * kMiB, 2 * kGiB, 2.0),
            "[######                   ]  25% 0.50/2.00 GiB 256.0 MiB/s 0:02 elapsed, 0:06 left");
  EXPECT_EQ(Progress::text(2 * kGiB, 2 * kGiB, 4.5),
            "[#########################] 100% 2.00/2.00 GiB 455.1 MiB/s 0:04 elapsed, 0:00 left");
  // Nothing done yet: no rate, so no time left.
  EXPECT_EQ(Progress::text(0, 2 * kGiB, 0),
            "[                         ]   0% 0.00/2.00 GiB 0.0 MiB/s 0:00 elapsed");
  // gen's --size is approximate: past the total the bar stays full.
  EXPECT_EQ(Progress::text(3 * kGiB, 2 * kGiB, 1.0),
            "[#########################] 100% 3.00/2.00 GiB 3072.0 MiB/s 0:01 elapsed, 0:00 left");
}

TEST(ProgressText, UnknownTotalHasBytesRateAndElapsed) {
  EXPECT_EQ(Progress::text(0, -1, 0), "0.00 GiB 0.0 MiB/s 0:00 elapsed");
  EXPECT_EQ(Progress::text(3 * kGiB, -1, 3725), "3.00 GiB 0.8 MiB/s 1:02:05 elapsed");
  EXPECT_EQ(Progress::text(kGiB / 4, -1, 61), "0.25 GiB 4.2 MiB/s 1:01 elapsed");
}

// The pipelines below run under a terminal: `script -qec CMD TYPESCRIPT`.
class ProgressCli : public TempDirTest {
 protected:
  ProgressCli() : TempDirTest("progress-cli") {}
  void SetUp() override {
    if (::access("/usr/bin/script", X_OK) != 0) GTEST_SKIP() << "no script(1)";
    TempDirTest::SetUp();
  }
  // What the terminal received from `cmd` (a shell command line).
  std::string on_terminal(const std::string& cmd) {
    Result r = run({"/usr/bin/script", "-qec", cmd, dir_ + "/typescript"});
    EXPECT_EQ(r.exit, 0) << cmd << "\n" << r.out << r.err;
    return r.out;
  }
  // A 300 MiB stream on a pipe (gen's own bar off, its summary in a file):
  // over the 64 MiB at which the readers first report progress.
  std::string gen(const std::string& extra = "") const {
    return xsr_bin() + " gen --no-progress --size 300M " + extra + " 2>" + dir_ + "/gen.err | ";
  }
};

// "\r\033[K" then a bar of unknown total (a pipe has no size).
const std::regex kPipeBar("\r\x1b\\[K\\d+\\.\\d\\d GiB \\d+\\.\\d MiB/s \\d+:\\d\\d elapsed");

TEST_F(ProgressCli, VerifyClearsItsBarBeforeTheVerdict) {
  const std::string t = on_terminal(gen() + xsr_bin() + " verify -");
  EXPECT_TRUE(std::regex_search(t, kPipeBar)) << t;
  // The verdict (stdout, the same terminal) comes right after a clear and
  // is the last line.
  const std::size_t v = t.find("<stdin>: valid libxc stream");
  ASSERT_NE(v, std::string::npos) << t;
  EXPECT_EQ(t.substr(v - 4, 4), "\r\x1b[K") << t;
  EXPECT_EQ(t.find('\n', v), t.size() - 1) << t;
  // gen --no-progress drew nothing: no bar with a percentage.
  EXPECT_EQ(t.find('%'), std::string::npos) << t;
  // Off a terminal there is no bar at all.
  Result r = run({"/bin/sh", "-c", gen() + xsr_bin() + " verify -"});
  EXPECT_EQ(r.exit, 0);
  EXPECT_EQ(r.err, "");
}

TEST_F(ProgressCli, GenOfAKnownSizeShowsPercentAndTimeLeft) {
  const std::string t = on_terminal(xsr_bin() + " gen --size 300M | wc -c");
  const std::regex bar(
      "\r\x1b\\[K\\[#* *\\] +\\d+% \\d+\\.\\d\\d/0\\.29 GiB \\d+\\.\\d MiB/s \\d+:\\d\\d elapsed, "
      "\\d+:\\d\\d left");
  EXPECT_TRUE(std::regex_search(t, bar)) << t;
  EXPECT_NE(t.find("\r\x1b[Kxsr gen: "), std::string::npos) << t;
}

TEST_F(ProgressCli, ConvertClearsItsBarBeforeItsSummary) {
  const std::string t = on_terminal(gen("--legacy") + xsr_bin() + " convert - - | wc -c");
  EXPECT_TRUE(std::regex_search(t, kPipeBar)) << t;
  EXPECT_NE(t.find("\r\x1b[Kxsr convert: <stdin> -> <stdout>: "), std::string::npos) << t;
}

TEST_F(ProgressCli, StatsLinesStartOnACleanLine) {
  const std::string t = on_terminal(gen() + xsr_bin() + " verify --stats --stats-interval 0.01 -");
  EXPECT_TRUE(std::regex_search(t, kPipeBar)) << t;
  std::size_t lines = 0;
  for (std::size_t at = t.find("xsr verify: "); at != std::string::npos;
       at = t.find("xsr verify: ", at + 1)) {
    ++lines;
    EXPECT_TRUE(at == 0 || t[at - 1] == '\n' || (at >= 4 && t.substr(at - 4, 4) == "\r\x1b[K"))
        << t.substr(at >= 80 ? at - 80 : 0, 120);
  }
  EXPECT_GE(lines, 1u) << t;  // the final line at least
  EXPECT_NE(t.find("xsr verify: done: "), std::string::npos) << t;
}

}  // namespace
}  // namespace xsr::test
