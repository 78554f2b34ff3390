// The output rule (cmd/common/output.h) as users meet it: device nodes,
// FIFOs and symlinks written through, the same file as the input refused,
// concurrent writers, SIGINT/SIGTERM/SIGHUP mid-run, modes kept, terminals
// refused; and gen's refusals. Device nodes are made with mknod(2) in the
// test's own directory, never the system's.
#include <dirent.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <set>

#include "cli_util.h"
#include "common/json.h"
#include "common/output.h"
#include "xsr/gen.h"

namespace xsr::test {
namespace {

using Json = cli::Json;

class OutputCli : public TempDirTest {
 protected:
  OutputCli() : TempDirTest("output-cli") {}
  // The names in the directory, sorted.
  std::set<std::string> listing() const {
    std::set<std::string> names;
    DIR* d = ::opendir(dir_.c_str());
    for (dirent* e; d && (e = ::readdir(d));)
      if (std::strcmp(e->d_name, ".") && std::strcmp(e->d_name, "..")) names.insert(e->d_name);
    if (d) ::closedir(d);
    return names;
  }
  // A small v3 image (xl, HVM, 1 MiB: pfns 0-254) at `name`.
  std::string image(const std::string& name, const std::string& seed = "1") {
    Result r = run({xsr_bin(), "gen", "--size", "1M", "--format", "xl", "--seed", seed, "-o", path(name)});
    EXPECT_EQ(r.exit, 0) << r.err;
    return path(name);
  }
};

// What `xsr gen --size 1M` says when done.
const char kGen1M[] = "xsr gen: 924280 bytes, 8 records, 223 pages (pfns 0-254)\n";

struct stat lstat_of(const std::string& p) {
  struct stat st {};
  EXPECT_EQ(::lstat(p.c_str(), &st), 0) << p;
  return st;
}

// XSR_NAMED_TEMP=1 for the processes started while it lives: temporary
// files get a name the test can see (NAME.xsr-tmp.RANDOM).
class NamedTemp {
 public:
  explicit NamedTemp(bool on) : on_(on) {
    if (on_) ::setenv(cli::Output::kNamedTempEnv, "1", 1);
  }
  ~NamedTemp() {
    if (on_) ::unsetenv(cli::Output::kNamedTempEnv);
  }

 private:
  bool on_;
};

TEST_F(OutputCli, ADeviceNodeIsWrittenInPlaceAndStaysADevice) {
  ASSERT_EQ(::mknod(path("null").c_str(), S_IFCHR | 0666, makedev(1, 3)), 0);
  ASSERT_EQ(::mknod(path("full").c_str(), S_IFCHR | 0666, makedev(1, 7)), 0);
  Result r = run({xsr_bin(), "gen", "--size", "1M", "-o", path("null"), "--stats-json", path("null")});
  EXPECT_EQ(r.exit, 0) << r.err;
  EXPECT_EQ(r.err, kGen1M);
  EXPECT_TRUE(S_ISCHR(lstat_of(path("null")).st_mode));
  r = run({xsr_bin(), "gen", "--size", "1M", "-o", path("full")});
  EXPECT_EQ(r.exit, 2);
  EXPECT_EQ(r.err, "xsr gen: " + path("full") + ": write failed: No space left on device\n");
  EXPECT_TRUE(S_ISCHR(lstat_of(path("full")).st_mode));
  EXPECT_EQ(listing(), (std::set<std::string>{"full", "null"}));
}

TEST_F(OutputCli, AFifoIsWrittenInPlaceForItsReader) {
  ASSERT_EQ(::mkfifo(path("fifo").c_str(), 0600), 0);
  std::size_t got = 0;
  std::thread reader([&] {
    const int fd = ::open(path("fifo").c_str(), O_RDONLY | O_CLOEXEC);
    got = read_all_fd(fd).size();
    ::close(fd);
  });
  Result r = run({xsr_bin(), "gen", "--size", "1M", "-o", path("fifo")});
  reader.join();
  EXPECT_EQ(r.exit, 0) << r.err;
  EXPECT_EQ(got, 924280u);
  EXPECT_TRUE(S_ISFIFO(lstat_of(path("fifo")).st_mode));
  EXPECT_EQ(listing(), std::set<std::string>{"fifo"});
}

TEST_F(OutputCli, ASymlinksTargetIsReplacedAndTheLinkStays) {
  for (bool named : {false, true}) {
    NamedTemp t(named);
    { std::ofstream(path("target")) << "old"; }
    ASSERT_EQ(::symlink("target", path("link").c_str()), 0);
    ASSERT_EQ(::symlink("new", path("dangling").c_str()), 0);
    Result r = run({xsr_bin(), "gen", "--size", "1M", "-o", path("link")});
    EXPECT_EQ(r.exit, 0) << r.err;
    r = run({xsr_bin(), "gen", "--size", "1M", "-o", path("dangling")});
    EXPECT_EQ(r.exit, 0) << r.err;
    EXPECT_TRUE(S_ISLNK(lstat_of(path("link")).st_mode));
    EXPECT_TRUE(S_ISLNK(lstat_of(path("dangling")).st_mode));
    EXPECT_EQ(lstat_of(path("target")).st_size, 924280);
    EXPECT_EQ(lstat_of(path("new")).st_size, 924280);
    EXPECT_EQ(listing(), (std::set<std::string>{"dangling", "link", "new", "target"}));
    for (const char* f : {"target", "link", "dangling", "new"}) ::unlink(path(f).c_str());
  }
}

TEST_F(OutputCli, TheInputIsNeverTheOutputByPathHardLinkSymlinkOrProcFd) {
  ASSERT_EQ(run({"/bin/cp", fixture("legacy/hvm64-full.bin"), path("in.bin")}).exit, 0);
  const std::vector<std::byte> before = read_file(path("in.bin"));
  ASSERT_EQ(::link(path("in.bin").c_str(), path("hard").c_str()), 0);
  ASSERT_EQ(::symlink("in.bin", path("soft").c_str()), 0);
  const std::string in = path("in.bin");
  for (const std::string& out : {in, path("hard"), path("soft")}) {
    Result r = run({xsr_bin(), "convert", in, out});
    EXPECT_EQ(r.exit, 2) << out;
    EXPECT_EQ(r.err, "xsr convert: " + out + " is the same file as the input " + in +
                         ": refusing to overwrite it\n");
  }
  const int fd = ::open(in.c_str(), O_RDONLY | O_CLOEXEC);
  Result r = run({xsr_bin(), "convert", in, "/proc/self/fd/5"}, -1, fd, 5);
  EXPECT_EQ(r.exit, 2);
  EXPECT_EQ(r.err, "xsr convert: /proc/self/fd/5 is the same file as the input " + in +
                       ": refusing to overwrite it\n");
  ::lseek(fd, 0, SEEK_SET);
  r = run({xsr_bin(), "convert", "-", path("hard")}, fd);
  ::close(fd);
  EXPECT_EQ(r.exit, 2);
  EXPECT_EQ(r.err, "xsr convert: " + path("hard") +
                       " is the same file as the input <stdin>: refusing to overwrite it\n");
  EXPECT_EQ(read_file(in), before);
  EXPECT_EQ(lstat_of(in).st_nlink, 2u);
  EXPECT_EQ(listing(), (std::set<std::string>{"hard", "in.bin", "soft"}));

  const std::string img = image("img");
  const std::vector<std::byte> img_before = read_file(img);
  r = run({xsr_bin(), "extract", img, "-o", img});
  EXPECT_EQ(r.exit, 2);
  EXPECT_EQ(r.err,
            "xsr extract: " + img + " is the same file as the input " + img + ": refusing to overwrite it\n");
  r = run({xsr_bin(), "verify", img, "--stats-json", img});
  EXPECT_EQ(r.exit, 2);
  EXPECT_EQ(r.err, "xsr verify: --stats-json: " + img + " is the same file as the input " + img +
                       ": refusing to overwrite it\n");
  EXPECT_EQ(read_file(img), img_before);
}

TEST_F(OutputCli, TwoWritersToOneOutputBothSucceed) {
  for (bool named : {false, true}) {
    NamedTemp t(named);
    for (int round = 0; round < 3; ++round) {
      Child a({xsr_bin(), "gen", "--size", "4M", "--seed", "1", "-o", path("same")});
      Child b({xsr_bin(), "gen", "--size", "4M", "--seed", "2", "-o", path("same")});
      Result ra = a.finish(), rb = b.finish();
      EXPECT_EQ(ra.exit, 0) << ra.err;
      EXPECT_EQ(rb.exit, 0) << rb.err;
      EXPECT_EQ(lstat_of(path("same")).st_size, 4072048);
      EXPECT_EQ(listing(), std::set<std::string>{"same"});
    }
  }
}

// Starts `argv` (with --stats lines every 50 ms, so its first line says it
// is running), sends `sig` and checks the run ends by that signal with
// nothing left behind but a --stats-json summary saying so.
void interrupt_run(std::vector<std::string> argv, const char* tool, int sig, int in,
                   const std::function<std::set<std::string>()>& listing, const std::string& json) {
  for (const char* a : {"--stats", "--stats-interval", "0.05", "--stats-json"}) argv.push_back(a);
  argv.push_back(json);
  Child c(argv, in);
  EXPECT_NE(c.line_after(std::string("xsr ") + tool + ": "), "");
  ::kill(c.pid(), sig);
  Result r = c.finish();
  EXPECT_EQ(r.exit, 128 + sig) << r.err;
  EXPECT_EQ(listing(), std::set<std::string>{"s.json"}) << strsignal(sig);
  const Json d = Json::parse(slurp(json));
  EXPECT_EQ(d["tool"], tool);
  EXPECT_EQ(d["ok"], false);
  EXPECT_EQ(d["error"], std::string("interrupted by ") + cli::signal_name(sig));
}

TEST_F(OutputCli, EachSignalRemovesGensTemporaryFileAndEndsTheRunByIt) {
  for (bool named : {false, true}) {
    NamedTemp t(named);
    for (int sig : {SIGINT, SIGTERM, SIGHUP}) {
      interrupt_run(
          {xsr_bin(), "gen", "--size", "4G", "--rate", "20M", "-o", path("out")}, "gen", sig, -1,
          [this] { return listing(); }, path("s.json"));
      ::unlink(path("s.json").c_str());
    }
  }
}

TEST_F(OutputCli, EachSignalRemovesConvertsTemporaryFileAndEndsTheRunByIt) {
  const std::vector<std::byte> legacy = read_file(fixture("legacy/hvm64-full.bin"));
  for (bool named : {false, true}) {
    NamedTemp t(named);
    for (int sig : {SIGINT, SIGTERM, SIGHUP}) {
      // Half the stream, then the writer holds the pipe open: a stalled
      // migration, which the converter waits on.
      int p[2];
      ASSERT_EQ(::pipe2(p, O_CLOEXEC), 0);
      ASSERT_EQ(::write(p[1], legacy.data(), legacy.size() / 2), static_cast<ssize_t>(legacy.size() / 2));
      interrupt_run(
          {xsr_bin(), "convert", "-", path("out")}, "convert", sig, p[0], [this] { return listing(); },
          path("s.json"));
      ::close(p[0]);
      ::close(p[1]);
      ::unlink(path("s.json").c_str());
    }
  }
}

TEST_F(OutputCli, AReplacedFileKeepsItsModeAndOwnerAndGuestMemoryIsPrivate) {
  for (bool named : {false, true}) {
    NamedTemp t(named);
    { std::ofstream(path("out")) << "old"; }
    ASSERT_EQ(::chmod(path("out").c_str(), 0640), 0);
    ASSERT_EQ(::chown(path("out").c_str(), 1234, 5678), 0);
    Result r = run({xsr_bin(), "gen", "--size", "1M", "-o", path("out")});
    EXPECT_EQ(r.exit, 0) << r.err;
    const struct stat st = lstat_of(path("out"));
    EXPECT_EQ(st.st_mode & 07777, 0640u);
    EXPECT_EQ(st.st_uid, 1234u);
    EXPECT_EQ(st.st_gid, 5678u);
    EXPECT_EQ(st.st_size, 924280);
    ::unlink(path("out").c_str());
  }
  const std::string img = image("img");
  for (const char* elf : {"--pfn=0-1", "--elf"}) {
    Result r = run({xsr_bin(), "extract", elf, img, "-o", path("mem")});
    EXPECT_EQ(r.exit, 0) << r.err;
    EXPECT_EQ(lstat_of(path("mem")).st_mode & 07777, 0600u) << elf;
    ::unlink(path("mem").c_str());
  }
}

// `script` gives the command a terminal as its stdout; -e returns its status.
Result on_a_terminal(const std::string& typescript, const std::string& cmd) {
  return run({"/usr/bin/script", "-qec", cmd, typescript});
}

TEST_F(OutputCli, BinaryToATerminalIsRefusedUnlessForced) {
  const std::string img = image("img");
  const std::string ts = path("typescript");
  const std::string refused = "refusing to write binary data to a terminal (redirect it or add --force)";
  for (const auto& [tool, cmd] : std::vector<std::pair<std::string, std::string>>{
           {"gen", xsr_bin() + " gen --size 64K"},
           {"convert", xsr_bin() + " convert " + fixture("legacy/hvm64-full.bin") + " -"},
           {"relay", xsr_bin() + " relay " + img}}) {
    Result r = on_a_terminal(ts, cmd);
    EXPECT_EQ(r.exit, 2) << cmd;
    EXPECT_EQ(r.out, "xsr " + tool + ": " + refused + "\r\n") << cmd;
    r = on_a_terminal(ts, cmd + " --force");
    EXPECT_EQ(r.exit, 0) << cmd << r.out.substr(0, 200);
  }
}

TEST_F(OutputCli, GenRefusesWhatItCannotWrite) {
  const std::vector<std::pair<std::vector<std::string>, std::string>> usage = {
      {{"--size", "0"}, "xsr gen: --size must be a size above 0 (64K, 512M, 4G), not '0'\n"},
      {{"--vcpus", "0"}, "xsr gen: --vcpus must be 1 to 64\n"},
      {{"--level", "3", "-o", path("x")},
       "xsr gen: --level needs --compress (or an output named .zst, .gz, .xz or .bz2)\n"},
      {{"--compress", "gzip", "-o", path("x.zst")},
       "xsr gen: --compress gzip into " + path("x.zst") +
           ", a name for zstd data (rename it or drop --compress)\n"},
      {{"--type", "pv", "--size", "100T", "-o", path("x")},
       "xsr gen: --size must be at most 16416.00 GiB for this stream (the PV P2M frame list cannot name more "
       "pfns)\n"},
  };
  for (const auto& [args, msg] : usage) {
    std::vector<std::string> argv{xsr_bin(), "gen"};
    argv.insert(argv.end(), args.begin(), args.end());
    Result r = run(argv);
    EXPECT_EQ(r.exit, 2) << msg;
    EXPECT_EQ(r.err, msg);
  }
  Result r = run({xsr_bin(), "convert", "--level", "3", fixture("legacy/hvm64-full.bin"), path("x")});
  EXPECT_EQ(r.exit, 2);
  EXPECT_EQ(r.err, "xsr convert: --level needs --compress (or an output named .zst, .gz, .xz or .bz2)\n");

  // More than the file system holds: refused before a byte is written.
  r = run({xsr_bin(), "gen", "--size", "100000T", "-o", path("big")});
  EXPECT_EQ(r.exit, 2);
  const std::string head =
      "xsr gen: --size 100000T does not fit in " + path("big") + ": its file system has ";
  EXPECT_EQ(r.err.substr(0, head.size()), head) << r.err;
  EXPECT_EQ(r.err.substr(r.err.size() - 6), " free\n") << r.err;
  EXPECT_EQ(lines(r.err), 1);
  EXPECT_TRUE(listing().empty());
}

TEST_F(OutputCli, GenCompressesByTheOutputsNameAndStopsAtOnceWhenItsReaderLeaves) {
  Result r = run({xsr_bin(), "gen", "--size", "1M", "-o", path("x.zst")});
  EXPECT_EQ(r.exit, 0) << r.err;
  const std::vector<std::byte> z = read_file(path("x.zst"));
  ASSERT_GE(z.size(), 4u);
  EXPECT_EQ(std::memcmp(z.data(), "\x28\xb5\x2f\xfd", 4), 0);
  r = run({xsr_bin(), "verify", path("x.zst")});
  EXPECT_EQ(r.exit, 0) << r.err;

  int p[2];
  ASSERT_EQ(::pipe2(p, O_CLOEXEC), 0);
  ::close(p[0]);  // nobody reads
  const auto t0 = std::chrono::steady_clock::now();
  r = run({xsr_bin(), "gen", "--size", "1T", "-o", "5"}, -1, p[1], 5);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  ::close(p[1]);
  EXPECT_EQ(r.exit, 2);
  EXPECT_EQ(r.err, "xsr gen: fd 5: write failed: Broken pipe\n");
  EXPECT_LT(secs, 5.0);
}

TEST_F(OutputCli, GenStampsEveryPageWithItsPfnAndTheSeed) {
  const std::string img = image("img", "77");
  ASSERT_EQ(run({xsr_bin(), "extract", img, "-o", path("raw")}).exit, 0);
  const std::vector<std::byte> raw = read_file(path("raw"));
  ASSERT_EQ(raw.size(), 255u * 4096);
  GenOptions o;
  o.size = 1 << 20;
  ASSERT_EQ(gen_pfn_range(o), 255u);
  for (std::uint64_t pfn = 0; pfn < 255; ++pfn) {
    if (pfn >= 0xa0 && pfn < 0xc0) continue;  // the VGA hole
    if (gen_pfn_special(o, pfn)) continue;    // the guest's rings and tables
    std::uint64_t stamp[3];
    std::memcpy(stamp, raw.data() + pfn * 4096, sizeof stamp);
    EXPECT_EQ(stamp[0], pfn);
    EXPECT_EQ(stamp[1], 77u);
    EXPECT_EQ(stamp[2], 1u);
  }
}

TEST_F(OutputCli, StatsJsonIsWrittenOnEarlyFailures) {
  const std::string missing = path("missing");
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"verify", missing}, "cannot open " + missing + ": No such file or directory"},
      {{"convert", missing, path("out")}, "cannot open " + missing + ": No such file or directory"},
      {{"relay", missing, "-o", path("out")}, "cannot open " + missing + ": No such file or directory"},
      {{"gen", "-o", path("nodir/out")},
       "cannot create " + path("nodir/out") + ": No such file or directory"},
  };
  for (const auto& [args, error] : cases) {
    std::vector<std::string> argv{xsr_bin()};
    argv.insert(argv.end(), args.begin(), args.end());
    argv.push_back("--stats-json");
    argv.push_back(path("s.json"));
    Result r = run(argv);
    EXPECT_NE(r.exit, 0);
    EXPECT_EQ(r.err, "xsr " + args[0] + ": " + error + "\n");
    const Json d = Json::parse(slurp(path("s.json")));
    EXPECT_EQ(d["tool"], args[0]);
    EXPECT_EQ(d["ok"], false);
    EXPECT_EQ(d["error"], error);
    EXPECT_EQ(listing(), std::set<std::string>{"s.json"});
    ::unlink(path("s.json").c_str());
  }
}

// /dev/stdout, /dev/fd/N and /proc/self/fd/N name a descriptor the run was
// given: written through it (a shell's >> appends), never renamed over.
TEST_F(OutputCli, APathNamingOurOwnDescriptorIsThatDescriptor) {
  for (const std::string name : {"/dev/stdout", "/dev/fd/1", "/proc/self/fd/1"}) {
    const std::string f = path("appended");
    write_file(f, {std::byte{'k'}, std::byte{'e'}, std::byte{'e'}, std::byte{'p'}});
    struct stat before {};
    ASSERT_EQ(::stat(f.c_str(), &before), 0);
    const int fd = ::open(f.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
    ASSERT_GE(fd, 0);
    Result r = run({xsr_bin(), "gen", "--size", "64K", "-o", name}, -1, fd, 1);
    ::close(fd);
    EXPECT_EQ(r.exit, 0) << name << r.err;
    struct stat after {};
    ASSERT_EQ(::stat(f.c_str(), &after), 0);
    EXPECT_EQ(after.st_ino, before.st_ino) << name << ": replaced by a rename";
    const std::vector<std::byte> got = read_file(f);
    ASSERT_GT(got.size(), 4u);
    EXPECT_EQ(std::string(reinterpret_cast<const char*>(got.data()), 4), "keep") << name;
    EXPECT_EQ(r.err.rfind("xsr gen: " + std::to_string(got.size() - 4) + " bytes, ", 0), 0u) << name << r.err;
  }
}

}  // namespace
}  // namespace xsr::test
