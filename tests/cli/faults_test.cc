// The programs under real faults: an output file system that fills up (a
// small tmpfs, when we may mount one), an output pipe whose reader left,
// hostile lengths on stdin under a capped address space. Each must end with
// one line on stderr, exit 1 and no output file that looks complete.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>

#include "../test_util.h"
#include "cli_util.h"
#include "xsr/format.h"

namespace xsr::test {
namespace {

struct Ran {
  int exit = -1;
  std::string err;
};

// Runs argv with stdin from `in` (or /dev/null), stdout to `out` (or
// /dev/null), stderr captured, the address space capped at `as` bytes when
// non-zero.
Ran run_with(std::vector<std::string> argv, int in = -1, int out = -1, std::uint64_t as = 0) {
  int err[2];
  EXPECT_EQ(::pipe2(err, O_CLOEXEC), 0);
  pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(in >= 0 ? in : ::open("/dev/null", O_RDONLY), 0);
    ::dup2(out >= 0 ? out : ::open("/dev/null", O_WRONLY), 1);
    ::dup2(err[1], 2);
    if (as) {
      struct rlimit rl {
        as, as
      };
      ::setrlimit(RLIMIT_AS, &rl);
    }
    std::vector<char*> a;
    for (auto& s : argv) a.push_back(s.data());
    a.push_back(nullptr);
    ::execv(a[0], a.data());
    ::_exit(127);
  }
  ::close(err[1]);
  auto e = read_all_fd(err[0]);
  ::close(err[0]);
  Ran r;
  r.err.assign(reinterpret_cast<const char*>(e.data()), e.size());
  int st = 0;
  ::waitpid(pid, &st, 0);
  r.exit = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
  return r;
}

std::vector<std::string> listing(const std::string& dir) {
  std::vector<std::string> v;
  for (const auto& e : std::filesystem::directory_iterator(dir)) v.push_back(e.path().filename());
  return v;
}

// A 1 MiB tmpfs, mounted for the test's lifetime (root only).
class SmallDisk : public ::testing::Test {
 protected:
  void SetUp() override {
    char d[] = "/tmp/xsr-enospc-XXXXXX";
    ASSERT_TRUE(::mkdtemp(d));
    dir_ = d;
    if (::mount("xsr-test", d, "tmpfs", MS_NOSUID | MS_NODEV, "size=1m,mode=0755") != 0) {
      const int e = errno;
      ::rmdir(d);
      dir_.clear();
      GTEST_SKIP() << "cannot mount a tmpfs (" << std::strerror(e)
                   << "): ENOSPC is covered by injection in sys_test";
    }
    GenOptions g;
    g.legacy = true;
    g.size = 4 << 20;
    legacy_ = "/tmp/xsr-enospc-in-" + std::to_string(::getpid()) + ".bin";
    write_file(legacy_, gen_bytes(g));
  }
  void TearDown() override {
    if (!legacy_.empty()) ::unlink(legacy_.c_str());
    if (dir_.empty()) return;
    ::umount2(dir_.c_str(), MNT_DETACH);
    ::rmdir(dir_.c_str());
  }
  std::string dir_, legacy_;
};

// The drop-in's status is the reference's (1); xsr's for an output is 2.
void expect_full_disk_error(const Ran& r, int status = 2) {
  EXPECT_EQ(r.exit, status) << r.err;
  EXPECT_EQ(lines(r.err), 1) << r.err;
  EXPECT_NE(r.err.find("No space left on device"), std::string::npos) << r.err;
}

TEST_F(SmallDisk, ConvertLegacyStreamLeavesNoOutput) {
  Ran r = run_with(
      {convert_bin(), "-i", legacy_, "-o", dir_ + "/out.v3", "-w", "64", "-g", "hvm", "-f", "libxl"});
  expect_full_disk_error(r, 1);
  EXPECT_TRUE(listing(dir_).empty());
}

TEST_F(SmallDisk, XsrConvertLeavesNoOutput) {
  Ran r = run_with({xsr_bin(), "convert", legacy_, dir_ + "/out.v3"});
  expect_full_disk_error(r, 2);
  EXPECT_TRUE(listing(dir_).empty());
}

TEST_F(SmallDisk, XsrGenLeavesNoOutput) {
  // Uncompressed, a size the disk cannot hold is refused up front.
  Ran r = run_with({xsr_bin(), "gen", "-o", dir_ + "/img", "--size", "4M"});
  EXPECT_EQ(r.exit, 2);
  EXPECT_EQ(r.err, "xsr gen: --size 4M does not fit in " + dir_ + "/img: its file system has 1.0 MiB free\n");
  EXPECT_TRUE(listing(dir_).empty());
  // Compressed (a guest's mixed pages shrink ~3x), the disk fills up mid-run.
  r = run_with({xsr_bin(), "gen", "-o", dir_ + "/img.gz", "--size", "8M", "--mixed-pages"});
  expect_full_disk_error(r);
  EXPECT_TRUE(listing(dir_).empty());
}

TEST_F(SmallDisk, AnOutputDescriptorIsCutBackToWhereTheRunBegan) {
  const std::string path = dir_ + "/given";
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::write(fd, "keep", 4), 4);
  Ran r = run_with({convert_bin(), "-i", legacy_, "-o", "1", "-w", "64", "-g", "hvm"}, -1, fd);
  expect_full_disk_error(r, 1);
  struct stat st;
  ASSERT_EQ(::fstat(fd, &st), 0);
  EXPECT_EQ(st.st_size, 4);  // only what was there before
  ::close(fd);
}

// A closed output pipe: EPIPE as an error line, not death by SIGPIPE.
TEST(ClosedPipe, EveryWriterSaysBrokenPipe) {
  GenOptions g;
  g.legacy = true;
  g.size = 2 << 20;
  const std::string in = "/tmp/xsr-epipe-" + std::to_string(::getpid()) + ".bin";
  write_file(in, gen_bytes(g));
  const std::vector<std::vector<std::string>> cmds = {
      {xsr_bin(), "convert", in, "-"},
      {convert_bin(), "-i", in, "-o", "1", "-w", "64", "-g", "hvm", "-f", "libxl"},
      {xsr_bin(), "gen", "--size", "4M"},
  };
  for (const auto& c : cmds) {
    int p[2];
    ASSERT_EQ(::pipe2(p, O_CLOEXEC), 0);
    ::close(p[0]);
    Ran r = run_with(c, -1, p[1]);
    ::close(p[1]);
    SCOPED_TRACE(c[1]);
    EXPECT_EQ(r.exit, c[0] == convert_bin() ? 1 : 2) << r.err;  // the drop-in keeps the reference's 1
    EXPECT_EQ(lines(r.err), 1) << r.err;
    EXPECT_NE(r.err.find("Broken pipe"), std::string::npos) << r.err;
  }
  ::unlink(in.c_str());
}

// Hostile lengths on stdin with the address space capped: a stream error,
// never an allocation that follows the declared length.
TEST(HostileStdin, HugeLengthsUnderACappedAddressSpace) {
#ifdef XSR_ASAN
  const std::uint64_t as = 0;  // ASan's shadow reservations defeat RLIMIT_AS
#else
  const std::uint64_t as = 256ull << 20;
#endif
  std::vector<std::byte> s;
  auto put = [&s](const void* p, std::size_t n) {
    // resize + memcpy: GCC 12 warns falsely (-Wstringop-overflow) on insert.
    const std::size_t at = s.size();
    s.resize(at + n);
    std::memcpy(s.data() + at, p, n);
  };
  const libxc::ImageHeader ih{bswap64(libxc::kMarker), bswap32(libxc::kIdent), bswap32(3), 0, 0, 0};
  const libxc::DomainHeader dh{libxc::kX86Hvm, 12, 0, 4, 17};
  const RecordHeader h{libxc::HVM_CONTEXT, 0xfffffff8u};
  put(&ih, sizeof ih);
  put(&dh, sizeof dh);
  put(&h, sizeof h);
  s.resize(s.size() + (1 << 20), std::byte{0x33});
  for (const auto& c : std::vector<std::vector<std::string>>{
           {xsr_bin(), "verify", "-"}, {xsr_bin(), "verify", "--strict", "-"}, {verify_bin()}}) {
    int p[2];
    ASSERT_EQ(::pipe2(p, O_CLOEXEC), 0);
    ::signal(SIGPIPE, SIG_IGN);  // the feeder outlives a reader that stopped early
    Ran r;
    {
      Feeder f(p[1], s, 65536);
      r = run_with(c, p[0], -1, as);
      ::close(p[0]);  // the feeder's writes now fail and it ends
    }
    SCOPED_TRACE(c.back());
    EXPECT_EQ(r.exit, 1) << r.err;
    EXPECT_EQ(lines(r.err), 1) << r.err;
  }
}

}  // namespace
}  // namespace xsr::test
