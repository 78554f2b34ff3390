// I/O faults injected through the system-call wrapper (sys.h) and real
// ones: EINTR on every path (injected, and real signals without
// SA_RESTART), ENOSPC and EPIPE on the buffered and the zero-copy paths
// (copy_file_range, splice, sendfile), and peers that send one byte at a
// time, for io_uring and plain reads.
#include "xsr/sys.h"

#include <gtest/gtest.h>
#include <pthread.h>
#include <signal.h>

#include <atomic>

#include "test_util.h"
#include "xsr/convert.h"
#include "xsr/extract.h"
#include "xsr/relay.h"

namespace xsr::test {
namespace {

// ---- injection hooks: each fails when its rule says, else runs the real call.

std::atomic<std::uint64_t> g_calls{0}, g_injected{0};
int g_errno = EINTR;

// EINTR on every other call of every hook.
bool inject() {
  if (++g_calls % 2 == 0) return false;
  ++g_injected;
  errno = EINTR;
  return true;
}

ssize_t f_read(int fd, void* b, std::size_t n) { return inject() ? -1 : sys::real().read(fd, b, n); }
ssize_t f_pread(int fd, void* b, std::size_t n, off_t o) {
  return inject() ? -1 : sys::real().pread(fd, b, n, o);
}
ssize_t f_write(int fd, const void* b, std::size_t n) { return inject() ? -1 : sys::real().write(fd, b, n); }
ssize_t f_splice(int in, loff_t* io, int out, loff_t* oo, std::size_t n, unsigned fl) {
  return inject() ? -1 : sys::real().splice(in, io, out, oo, n, fl);
}
ssize_t f_cfr(int in, loff_t* io, int out, loff_t* oo, std::size_t n, unsigned fl) {
  return inject() ? -1 : sys::real().copy_file_range(in, io, out, oo, n, fl);
}
ssize_t f_sendfile(int out, int in, off_t* io, std::size_t n) {
  return inject() ? -1 : sys::real().sendfile(out, in, io, n);
}

ssize_t f_writev(int fd, const iovec* v, int n) { return inject() ? -1 : sys::real().writev(fd, v, n); }
ssize_t f_pwrite(int fd, const void* b, std::size_t n, off_t o) {
  return inject() ? -1 : sys::real().pwrite(fd, b, n, o);
}
int f_ftruncate(int fd, off_t len) { return inject() ? -1 : sys::real().ftruncate(fd, len); }
int f_poll(pollfd* p, nfds_t n, int ms) { return inject() ? -1 : sys::real().poll(p, n, ms); }

// lseek cannot be interrupted: it runs as it is.
sys::Ops interrupting() {
  g_calls = 0;
  g_injected = 0;
  return sys::Ops{f_read,   f_pread,  f_write,           f_splice,    f_cfr, f_sendfile,
                  f_writev, f_pwrite, sys::real().lseek, f_ftruncate, f_poll};
}

std::vector<std::byte> legacy_image() {
  GenOptions g;
  g.legacy = true;
  g.size = 1 << 20;
  return gen_bytes(g);
}

ConvertOptions libxl_hvm64() {
  ConvertOptions o;
  o.width = 64;
  o.guest = GuestType::hvm;
  o.libxl = true;
  return o;
}

// The converter's output for `in`, from memory to a memfd (no fault).
std::vector<std::byte> converted(const std::vector<std::byte>& in) {
  int out = ::memfd_create("xsr-ref", MFD_CLOEXEC);
  auto src = memory_source(in);
  {
    Sink sink(out);
    ConvertResult r = convert_legacy(*src, sink, libxl_hvm64());
    EXPECT_FALSE(r.error) << r.error.message();
  }
  ::lseek(out, 0, SEEK_SET);
  auto v = read_all_fd(out);
  ::close(out);
  return v;
}

enum class Out { file, pipe, socket };

// Converts `in` (a memfd, so page bodies go by the kernel) to an output of
// kind `out`; returns the result and, in got, the bytes that arrived.
ConvertResult convert_to(const std::vector<std::byte>& in, Out out, std::vector<std::byte>& got,
                         int* out_fd = nullptr) {
  int ifd = memfd_with(in);
  OpenResult src = source_from_fd(ifd, true, IoMode::pread);
  ConvertResult r;
  if (out == Out::file) {
    int ofd = ::memfd_create("xsr-out", MFD_CLOEXEC);
    if (out_fd) *out_fd = ofd;
    {
      Sink sink(ofd);
      r = convert_legacy(*src.source, sink, libxl_hvm64());
    }
    ::lseek(ofd, 0, SEEK_SET);
    got = read_all_fd(ofd);
    ::close(ofd);
    return r;
  }
  int fds[2];
  make_channel(out == Out::pipe ? Channel::pipe : Channel::socketpair, fds);
  if (out_fd) *out_fd = fds[1];
  std::thread reader([&] { got = read_all_fd(fds[0]); });
  {
    Sink sink(fds[1]);
    r = convert_legacy(*src.source, sink, libxl_hvm64());
  }
  ::close(fds[1]);
  reader.join();
  ::close(fds[0]);
  return r;
}

TEST(Eintr, EveryOtherCallInterruptedChangesNothing) {
  const auto in = legacy_image();
  const auto want = converted(in);
  GenOptions g;
  g.container = GenOptions::Container::libxl;
  g.size = 2 << 20;
  const auto stream = gen_bytes(g);

  sys::Override o(interrupting());
  for (Out out : {Out::file, Out::pipe, Out::socket}) {
    std::vector<std::byte> got;
    ConvertResult r = convert_to(in, out, got);
    EXPECT_FALSE(r.error) << r.error.message();
    EXPECT_TRUE(got == want) << static_cast<int>(out);
  }
  // Verifying: a file (pread), a pipe and a socket through plain reads
  // (io_uring's reads are the kernel's, below the wrapper).
  {
    int fd = memfd_with(stream);
    OpenResult r = source_from_fd(fd, true, IoMode::pread);
    StreamStats st;
    VerifyOptions vo;
    vo.format = Format::libxl;
    EXPECT_FALSE(verify(*r.source, vo, st));
  }
  for (Channel c : {Channel::pipe, Channel::socketpair}) {
    int p[2];
    make_channel(c, p);
    Feeder f(p[1], stream, 100000);
    OpenResult r = source_from_fd(p[0], true, IoMode::read);
    StreamStats st;
    VerifyOptions vo;
    vo.format = Format::libxl;
    Error e = verify(*r.source, vo, st);
    EXPECT_FALSE(e) << e.message();
  }
  // How many calls there were depends on how the pipes happened to fill
  // (it was 99 once on a loaded machine); that EINTRs were injected is what
  // makes the test mean something.
  EXPECT_GE(g_injected.load(), 10u);
}

// Every write-side call to an output (descriptors above 2) fails.
sys::Ops failing_outputs(int err) {
  g_injected = 0;
  g_errno = err;
  sys::Ops ops = sys::real();
  ops.write = [](int fd, const void* b, std::size_t n) -> ssize_t {
    if (fd <= 2) return sys::real().write(fd, b, n);
    ++g_injected;
    errno = g_errno;
    return -1;
  };
  ops.splice = [](int, loff_t*, int, loff_t*, std::size_t, unsigned) -> ssize_t {
    ++g_injected;
    errno = g_errno;
    return -1;
  };
  ops.copy_file_range = [](int, loff_t*, int, loff_t*, std::size_t, unsigned) -> ssize_t {
    ++g_injected;
    errno = g_errno;
    return -1;
  };
  ops.sendfile = [](int, int, off_t*, std::size_t) -> ssize_t {
    ++g_injected;
    errno = g_errno;
    return -1;
  };
  return ops;
}

TEST(NoSpace, OnEveryOutputIsAnOutputErrorNamingTheCause) {
  const auto in = legacy_image();
  for (Out out : {Out::file, Out::pipe, Out::socket}) {
    for (int err : {ENOSPC, EPIPE, EIO}) {
      SCOPED_TRACE(std::to_string(static_cast<int>(out)) + " " + std::strerror(err));
      std::vector<std::byte> got;
      ConvertResult r;
      {
        sys::Override o(failing_outputs(err));
        r = convert_to(in, out, got);
      }
      EXPECT_GT(g_injected.load(), 0u);
      // A splice that fails with EIO reads as a failed read of the input
      // (EIO is the disk's word); ENOSPC and EPIPE can only be the output's.
      EXPECT_EQ(r.error.code, err == EIO ? Errc::io : Errc::output) << r.error.message();
      EXPECT_EQ(exit_code(r.error.code), 1);
      EXPECT_NE(r.error.message().find(std::strerror(err)), std::string::npos) << r.error.message();
      EXPECT_EQ(r.error.message().find('\n'), std::string::npos);
      EXPECT_LT(got.size(), in.size() / 2);  // nothing like a whole stream arrived
    }
  }
}

// Only the page bodies' path fails (headers are written by write(2)): the
// error must surface from copy_file_range, splice and sendfile too.
TEST(NoSpace, OnTheZeroCopyPathAlone) {
  const auto in = legacy_image();
  struct Case {
    Out out;
    const char* path;
  };
  for (Case c :
       {Case{Out::file, "copy_file_range"}, Case{Out::pipe, "splice"}, Case{Out::socket, "sendfile"}}) {
    sys::Ops ops = sys::real();
    g_injected = 0;
    ops.copy_file_range = [](int, loff_t*, int, loff_t*, std::size_t, unsigned) -> ssize_t {
      ++g_injected;
      errno = ENOSPC;
      return -1;
    };
    ops.splice = [](int i, loff_t* io, int o, loff_t* oo, std::size_t n, unsigned fl) -> ssize_t {
      if (io) {  // from the input file: the page path (drains use no offset)
        ++g_injected;
        errno = ENOSPC;
        return -1;
      }
      return sys::real().splice(i, io, o, oo, n, fl);
    };
    ops.sendfile = [](int, int, off_t*, std::size_t) -> ssize_t {
      ++g_injected;
      errno = ENOSPC;
      return -1;
    };
    sys::Override o(ops);
    std::vector<std::byte> got;
    ConvertResult r = convert_to(in, c.out, got);
    SCOPED_TRACE(c.path);
    EXPECT_GT(g_injected.load(), 0u) << "the page path was not taken";
    EXPECT_EQ(r.error.code, Errc::output) << r.error.message();
    EXPECT_NE(r.error.message().find("No space left on device"), std::string::npos) << r.error.message();
  }
}

// ---- the hooks of writev, pwrite, lseek, ftruncate and poll, through the
// code paths that use them ---------------------------------------------------

int g_target_fd = -1;  // the descriptor a hook fails; others run for real

std::vector<std::byte> small_image() {
  GenOptions g;
  g.container = GenOptions::Container::libxl;
  g.size = 1 << 20;
  g.shuffle = false;
  return gen_bytes(g);
}

TEST(NewHooks, NoSpaceOnGensWritevIsTheErrorLine) {
  sys::Ops ops{};  // null hooks run the real calls
  ops.writev = [](int fd, const iovec* v, int n) -> ssize_t {
    if (fd != g_target_fd) return sys::real().writev(fd, v, n);
    ++g_injected;
    errno = ENOSPC;
    return -1;
  };
  g_injected = 0;
  int fd = ::memfd_create("xsr-gen", MFD_CLOEXEC);
  g_target_fd = fd;
  GenOptions g;
  g.size = 4 << 20;
  GenResult r;
  {
    sys::Override o(ops);
    r = generate(fd, g);
  }
  ::close(fd);
  EXPECT_GT(g_injected.load(), 0u) << "gen did not write through writev";
  EXPECT_EQ(r.error.detail, "write failed: No space left on device");
  EXPECT_TRUE(r.error.caused_by(ENOSPC));
  EXPECT_LT(r.bytes, g.size);
}

// Extract's output: every positioned call fails in turn, and each failure
// is the run's error (named, with its errno), not a crash or a wrong file.
TEST(NewHooks, ExtractOutputFailuresAreNamed) {
  const auto img = small_image();
  struct Case {
    const char* what;
    bool elf;
    sys::Ops ops;
    const char* message;
  };
  sys::Ops seek{}, pwrite{}, trunc{};
  seek.lseek = [](int fd, off_t off, int whence) -> off_t {
    if (fd != g_target_fd) return sys::real().lseek(fd, off, whence);
    ++g_injected;
    errno = EBADF;
    return -1;
  };
  pwrite.pwrite = [](int fd, const void* b, std::size_t n, off_t off) -> ssize_t {
    if (fd != g_target_fd) return sys::real().pwrite(fd, b, n, off);
    ++g_injected;
    errno = ENOSPC;
    return -1;
  };
  trunc.ftruncate = [](int fd, off_t len) -> int {
    if (fd != g_target_fd) return sys::real().ftruncate(fd, len);
    ++g_injected;
    errno = EFBIG;
    return -1;
  };
  for (const Case& c :
       {Case{"lseek", false, seek, "seeking the output failed: Bad file descriptor"},
        Case{"pwrite", true, pwrite, "writing the ELF headers failed: No space left on device"},
        Case{"ftruncate", false, trunc, "sizing the output failed: File too large"}}) {
    SCOPED_TRACE(c.what);
    int in = memfd_with(img);
    OpenResult src = source_from_fd(in, true, IoMode::pread);
    int out = ::memfd_create("xsr-raw", MFD_CLOEXEC);
    g_target_fd = out;
    g_injected = 0;
    ExtractOptions opt;
    opt.elf = c.elf;
    ExtractResult r;
    {
      sys::Override o(c.ops);
      r = extract(*src.source, out, opt);
    }
    ::close(out);
    EXPECT_GT(g_injected.load(), 0u);
    EXPECT_EQ(r.error.code, Errc::output);
    EXPECT_EQ(r.error.detail, c.message);
  }
}

// EINTR on every other poll while a relay with a timeout waits for both
// peers: the waits go on (within what is left of the timeout), and the
// same bytes arrive.
TEST(NewHooks, RelayWaitsThroughInterruptedPolls) {
  const auto data = small_image();
  int in[2], out[2];
  make_channel(Channel::pipe, in);
  make_channel(Channel::pipe, out);
  std::vector<std::byte> got;
  RelayResult r;
  sys::Ops ops{};
  ops.poll = [](pollfd* p, nfds_t n, int ms) -> int {
    if (++g_calls % 2 == 0) return sys::real().poll(p, n, ms);
    ++g_injected;
    errno = EINTR;
    return -1;
  };
  g_calls = 0;
  g_injected = 0;
  {
    sys::Override o(ops);
    Feeder f(in[1], data, 4000);
    std::thread reader([&] { got = read_all_fd(out[0]); });
    RelayOptions ro;
    ro.verify.format = Format::autodetect;
    ro.timeout_ms = 20000;
    ro.io = IoMode::read;
    r = relay(in[0], out[1], ro);
    ::close(out[1]);
    reader.join();
  }
  EXPECT_GT(g_injected.load(), 10u);
  ::close(in[0]);
  ::close(out[0]);
  EXPECT_FALSE(r.error) << r.error.message();
  EXPECT_FALSE(r.out_error) << r.out_error.detail;
  EXPECT_TRUE(got == data);
}

// ---- peers that send one byte at a time ----------------------------------

class OneByte : public ::testing::TestWithParam<std::tuple<Channel, IoMode>> {};

TEST_P(OneByte, VerifiesAndLeavesTheRestUnread) {
  auto [channel, mode] = GetParam();
  GenOptions g;
  g.container = GenOptions::Container::xl;
  g.size = 96 << 10;
  g.batch = 3;
  auto data = gen_bytes(g);
  const auto trailer = bytes_of("the caller's bytes");
  auto all = data;
  all.insert(all.end(), trailer.begin(), trailer.end());
  int p[2];
  make_channel(channel, p);
  {
    Feeder f(p[1], all, 1);
    OpenResult r = source_from_fd(p[0], false, mode);
    VerifyOptions vo;
    vo.format = Format::autodetect;
    StreamStats st;
    Error e = verify(*r.source, vo, st);
    EXPECT_FALSE(e) << e.message();
    EXPECT_EQ(st.bytes, data.size());
    EXPECT_TRUE(read_all_fd(p[0]) == trailer);
  }
  ::close(p[0]);
}

TEST_P(OneByte, ConvertsToTheSameBytes) {
  auto [channel, mode] = GetParam();
  GenOptions g;
  g.legacy = true;
  g.size = 64 << 10;
  const auto in = gen_bytes(g);
  const auto want = converted(in);
  int p[2];
  make_channel(channel, p);
  Feeder f(p[1], in, 1);
  OpenResult r = source_from_fd(p[0], true, mode);
  int out = ::memfd_create("xsr-out", MFD_CLOEXEC);
  {
    Sink sink(out);
    ConvertResult cr = convert_legacy(*r.source, sink, libxl_hvm64());
    EXPECT_FALSE(cr.error) << cr.error.message();
  }
  ::lseek(out, 0, SEEK_SET);
  EXPECT_TRUE(read_all_fd(out) == want);
  ::close(out);
}

INSTANTIATE_TEST_SUITE_P(Transports, OneByte,
                         ::testing::Combine(::testing::Values(Channel::pipe, Channel::socketpair),
                                            ::testing::Values(IoMode::automatic, IoMode::read)),
                         [](const auto& i) {
                           return std::string(std::get<0>(i.param) == Channel::pipe ? "Pipe" : "Socket") +
                                  (std::get<1>(i.param) == IoMode::read ? "Read" : "Uring");
                         });

// ---- real signals ---------------------------------------------------------

void on_usr1(int) {}

// Signals a thread again and again while it reads, with a handler installed
// without SA_RESTART, so blocking calls (read, poll, io_uring_enter) return
// EINTR for real.
class SignalStorm {
 public:
  explicit SignalStorm(pthread_t target) {
    struct sigaction sa {};
    sa.sa_handler = on_usr1;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0;  // no SA_RESTART
    ::sigaction(SIGUSR1, &sa, &old_);
    th_ = std::thread([this, target] {
      while (!stop_) {
        ::pthread_kill(target, SIGUSR1);
        ++sent;
        ::usleep(50);
      }
    });
  }
  ~SignalStorm() {
    stop_ = true;
    th_.join();
    ::sigaction(SIGUSR1, &old_, nullptr);
  }
  std::atomic<std::uint64_t> sent{0};

 private:
  std::atomic<bool> stop_{false};
  struct sigaction old_ {};
  std::thread th_;
};

class RealSignals : public ::testing::TestWithParam<IoMode> {};

// Writes data in `chunk`-byte pieces with a pause after each, so the reader
// spends its time blocked, where the signals land; closes fd at the end.
std::thread slow_feed(int fd, const std::vector<std::byte>& data, std::size_t chunk) {
  return std::thread([fd, &data, chunk] {
    for (std::size_t off = 0; off < data.size();) {
      const std::size_t n = std::min(chunk, data.size() - off);
      const ssize_t w = ::write(fd, data.data() + off, n);
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) break;
      off += static_cast<std::size_t>(w);
      ::usleep(20);
    }
    ::close(fd);
  });
}

TEST_P(RealSignals, ReadingASlowPipeThroughASignalStormVerifies) {
  GenOptions g;
  g.container = GenOptions::Container::libxl;
  g.size = 1 << 20;
  g.batch = 5;
  const auto data = gen_bytes(g);
  int p[2];
  make_channel(Channel::pipe, p);
  SignalStorm storm(::pthread_self());
  std::thread feed = slow_feed(p[1], data, 4000);
  OpenResult r = source_from_fd(p[0], true, GetParam());
  VerifyOptions vo;
  vo.format = Format::libxl;
  StreamStats st;
  Error e = verify(*r.source, vo, st);
  EXPECT_FALSE(e) << e.message();
  EXPECT_EQ(st.bytes, data.size());
  feed.join();
  EXPECT_GT(storm.sent.load(), 20u);
}

TEST_P(RealSignals, ConvertingThroughASignalStormGivesTheSameBytes) {
  const auto in = legacy_image();
  const auto want = converted(in);
  int p[2];
  make_channel(Channel::pipe, p);
  SignalStorm storm(::pthread_self());
  std::thread feed = slow_feed(p[1], in, 4000);
  OpenResult r = source_from_fd(p[0], true, GetParam());
  int o[2];
  make_channel(Channel::pipe, o);
  std::vector<std::byte> got;
  std::thread reader([&] { got = read_all_fd(o[0]); });
  {
    Sink sink(o[1]);
    ConvertResult cr = convert_legacy(*r.source, sink, libxl_hvm64());
    EXPECT_FALSE(cr.error) << cr.error.message();
  }
  ::close(o[1]);
  reader.join();
  ::close(o[0]);
  feed.join();
  EXPECT_TRUE(got == want);
  EXPECT_GT(storm.sent.load(), 20u);
}

INSTANTIATE_TEST_SUITE_P(Modes, RealSignals, ::testing::Values(IoMode::automatic, IoMode::read),
                         [](const auto& i) { return i.param == IoMode::read ? "Read" : "Uring"; });

}  // namespace
}  // namespace xsr::test
