#include "xsr/source.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <mutex>

#include "xsr/io_engine.h"
#include "xsr/sys.h"

namespace xsr {
namespace detail {

AlignedBuf alloc_aligned(std::size_t n) {
  void* p = nullptr;
  if (posix_memalign(&p, 4096, n) != 0) std::abort();
  return AlignedBuf(static_cast<std::byte*>(p));
}

BufferedSource::BufferedSource() : buf_(alloc_aligned(kCapacity)) {}

Bytes BufferedSource::peek(std::size_t n) {
  if (n > kMaxPeek) n = kMaxPeek;
  if (end_ - beg_ >= n) return {buf_.get() + beg_, end_ - beg_};
  if (beg_ + n > kCapacity) {
    std::memmove(buf_.get(), buf_.get() + beg_, end_ - beg_);
    end_ -= beg_;
    beg_ = 0;
  }
  while (end_ - beg_ < n) {
    std::int64_t r = fill(buf_.get() + end_, n - (end_ - beg_), kCapacity - end_);
    if (r < 0) return {};
    if (r == 0) break;
    end_ += static_cast<std::size_t>(r);
  }
  return {buf_.get() + beg_, end_ - beg_};
}

void BufferedSource::consume(std::size_t n) {
  n = std::min(n, end_ - beg_);
  beg_ += n;
  pos_ += n;
  if (beg_ == end_) beg_ = end_ = 0;
}

std::uint64_t BufferedSource::skip(std::uint64_t n) {
  std::uint64_t from_buf = std::min<std::uint64_t>(n, end_ - beg_);
  consume(static_cast<std::size_t>(from_buf));
  if (from_buf == n) return n;
  std::uint64_t d = discard(n - from_buf);
  pos_ += d;
  return from_buf + d;
}

Drain::~Drain() {
  if (devnull >= 0) ::close(devnull);
  if (pipe_r >= 0) ::close(pipe_r);
  if (pipe_w >= 0) ::close(pipe_w);
}

int Drain::ensure_devnull() {
  if (devnull < 0) devnull = ::open("/dev/null", O_WRONLY | O_CLOEXEC);
  return devnull < 0 ? errno : 0;
}

int Drain::ensure_pipe() {
  if (pipe_r >= 0) return 0;
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) return errno;
  pipe_r = p[0];
  pipe_w = p[1];
  (void)::fcntl(pipe_w, F_SETPIPE_SZ, 1 << 20);
  return 0;
}

std::uint64_t Drain::run(std::uint64_t n, int* err) {
  std::uint64_t done = 0;
  bool use_splice = (is_pipe || is_socket) && ensure_devnull() == 0 &&
                    (is_pipe || ensure_pipe() == 0);
  while (done < n) {
    std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(n - done, 1 << 20));
    ssize_t r;
    if (use_splice && is_pipe) {
      r = sys::splice(fd, nullptr, devnull, nullptr, want, SPLICE_F_MOVE);
    } else if (use_splice) {
      r = sys::splice(fd, nullptr, pipe_w, nullptr, want, SPLICE_F_MOVE);
      if (r > 0) {
        // Everything spliced in goes straight out again: the pipe is ours.
        std::size_t left = static_cast<std::size_t>(r);
        while (left > 0) {
          ssize_t w = sys::splice(pipe_r, nullptr, devnull, nullptr, left, SPLICE_F_MOVE);
          if (w <= 0) {
            *err = w < 0 ? errno : EIO;
            return done;
          }
          left -= static_cast<std::size_t>(w);
        }
      }
    } else {
      r = sys::read(fd, scratch, std::min(want, scratch_len));
    }
    if (r < 0 && use_splice && (errno == EINVAL || errno == ENOSYS) && done == 0) {
      use_splice = false;  // an input splice cannot take: read it instead
      continue;
    }
    if (r < 0 && errno == EAGAIN) {
      struct pollfd p {fd, POLLIN, 0};
      if (::poll(&p, 1, -1) >= 0 || errno == EINTR) continue;
    }
    if (r < 0) {
      *err = errno;
      return done;
    }
    if (r == 0) return done;
    done += static_cast<std::uint64_t>(r);
  }
  return done;
}

FdKind fd_kind(int fd) {
  struct stat st;
  if (::fstat(fd, &st) != 0) return FdKind::other;
  if (S_ISREG(st.st_mode)) return FdKind::file;
  if (S_ISFIFO(st.st_mode)) return FdKind::pipe;
  if (S_ISSOCK(st.st_mode)) return FdKind::socket;
  return FdKind::other;
}

int wait_fd(int fd, short events) {
  struct pollfd p {fd, events, 0};
  for (;;) {
    int r = ::poll(&p, 1, -1);
    if (r > 0) return 0;
    if (r < 0 && errno != EINTR) return errno;
  }
}

namespace {

// Errors of a transfer that belong to its output rather than its input.
bool output_errno(int e) {
  return e == EPIPE || e == ENOSPC || e == EDQUOT || e == EFBIG || e == ECONNRESET ||
         e == EBADF;
}

// Writes all of n bytes, waiting out a non-blocking output; 0 or an errno.
int write_out(int out, const std::byte* p, std::size_t n) {
  while (n > 0) {
    ssize_t w = sys::write(out, p, n);
    if (w < 0 && errno == EAGAIN) {
      if (int e = wait_fd(out, POLLOUT)) return e;
      continue;
    }
    if (w < 0) return errno;
    if (w == 0) return EIO;
    p += w;
    n -= static_cast<std::size_t>(w);
  }
  return 0;
}

// After EAGAIN on a splice between two descriptors: wait for either.
void wait_either(int in, int out) {
  struct pollfd p[2] = {{in, POLLIN, 0}, {out, POLLOUT, 0}};
  while (::poll(p, 2, -1) < 0 && errno == EINTR) {
  }
}

}  // namespace

std::uint64_t splice_stream(Drain& d, std::uint64_t n, int out, FdKind out_kind, int* in_err,
                            int* out_err, bool* unsupported) {
  std::uint64_t done = 0;
  const bool direct = d.is_pipe || out_kind == FdKind::pipe;
  if (!direct && d.ensure_pipe() != 0) {
    *unsupported = true;
    return 0;
  }
  while (done < n) {
    std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(n - done, 1 << 20));
    ssize_t r = sys::splice(d.fd, nullptr, direct ? out : d.pipe_w, nullptr, want, SPLICE_F_MOVE);
    if (r < 0 && errno == EAGAIN) {
      wait_either(d.fd, direct ? out : d.pipe_w);
      continue;
    }
    if (r < 0) {
      if (done == 0 && (errno == EINVAL || errno == ENOSYS)) {
        *unsupported = true;
      } else if (output_errno(errno) && direct) {
        *out_err = errno;
      } else {
        *in_err = errno;
      }
      return done;
    }
    if (r == 0) return done;
    if (!direct) {
      std::size_t left = static_cast<std::size_t>(r);
      while (left > 0) {
        ssize_t w = sys::splice(d.pipe_r, nullptr, out, nullptr, left, SPLICE_F_MOVE);
        if (w < 0 && errno == EAGAIN) {
          if (int e = wait_fd(out, POLLOUT)) {
            *out_err = e;
            return done;
          }
          continue;
        }
        if (w <= 0) {
          *out_err = w < 0 ? errno : EIO;
          return done;
        }
        left -= static_cast<std::size_t>(w);
      }
    }
    done += static_cast<std::uint64_t>(r);
  }
  return done;
}

std::uint64_t BufferedSource::forward(std::uint64_t n, int out, int& out_error, const char*& how) {
  std::uint64_t from_buf = std::min<std::uint64_t>(n, end_ - beg_);
  if (from_buf && from_buf < n && give_back(end_ - beg_)) {
    beg_ = end_ = 0;
    from_buf = 0;
  }
  if (from_buf) {
    if (int e = write_out(out, buf_.get() + beg_, static_cast<std::size_t>(from_buf))) {
      out_error = e;
      return 0;
    }
    consume(static_cast<std::size_t>(from_buf));
  }
  if (from_buf == n) {
    if (!how) how = "write";
    return n;
  }
  std::uint64_t m = move_out(n - from_buf, out, out_error, how);
  pos_ += m;
  return from_buf + m;
}

std::uint64_t BufferedSource::move_out(std::uint64_t n, int out, int& out_error, const char*& how) {
  // Through the buffer: read a piece, write it, repeat. The buffer is empty
  // here (forward drained it), so fill may use all of it.
  std::uint64_t done = 0;
  how = "read+write";
  while (done < n) {
    std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(n - done, kMaxPeek));
    std::int64_t r = fill(buf_.get(), want, want);
    if (r <= 0) return done;
    if (int e = write_out(out, buf_.get(), static_cast<std::size_t>(r))) {
      out_error = e;
      return done;
    }
    done += static_cast<std::uint64_t>(r);
  }
  return done;
}

namespace {

// Regular files: reads at computed offsets, bodies skipped by arithmetic.
class PreadSource final : public BufferedSource {
 public:
  PreadSource(int fd, bool owned, std::uint64_t start, std::uint64_t size)
      : fd_(fd), owned_(owned), start_(start), off_(start), size_(size) {}
  ~PreadSource() override {
    if (owned_) ::close(fd_);
  }
  std::string_view kind() const override { return "pread"; }
  std::int64_t remaining() const override {
    return static_cast<std::int64_t>(size_ > off_ ? size_ - off_ : 0) +
           static_cast<std::int64_t>(buffered());
  }
  int finish() override {
    if (::lseek(fd_, static_cast<off_t>(start_ + pos()), SEEK_SET) < 0) return errno;
    return 0;
  }

 protected:
  // Reads ahead just enough for a record header, a PAGE_DATA header and a
  // full batch of 1024 pfns in one call, so page bodies that will be
  // skipped are not pulled in (measured: 16 KiB of read-ahead cost ~30%).
  static constexpr std::size_t kReadAhead = 8 + 8 + 8 * 1024;
  std::int64_t fill(std::byte* dst, std::size_t need, std::size_t room) override {
    std::size_t want = std::min(room, std::max(need, kReadAhead));
    std::size_t got = 0;
    while (got < need) {
      ssize_t r = sys::pread(fd_, dst + got, want - got, static_cast<off_t>(off_));
      if (r < 0) {
        error_ = errno;
        return -1;
      }
      if (r == 0) break;
      got += static_cast<std::size_t>(r);
      off_ += static_cast<std::uint64_t>(r);
    }
    return static_cast<std::int64_t>(got);
  }
  std::uint64_t discard(std::uint64_t n) override {
    if (off_ + n > size_) refresh_size();
    std::uint64_t d = std::min(n, size_ > off_ ? size_ - off_ : 0);
    off_ += d;
    return d;
  }

  bool give_back(std::size_t k) override {
    off_ -= k;
    return true;
  }
  // File to file by copy_file_range (the kernel copies, or shares extents);
  // file to pipe by splice; file to socket by sendfile.
  std::uint64_t move_out(std::uint64_t n, int out, int& out_error, const char*& how) override {
    if (out_kind_ < 0) out_kind_ = static_cast<int>(fd_kind(out));
    const FdKind kind = static_cast<FdKind>(out_kind_);
    std::uint64_t done = 0;
    while (done < n) {
      std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(n - done, 1 << 30));
      loff_t off = static_cast<loff_t>(off_);
      ssize_t r;
      if (kind == FdKind::file && !no_cfr_) {
        how = "copy_file_range";
        r = sys::copy_file_range(fd_, &off, out, nullptr, want, 0);
        if (r < 0 && (errno == EXDEV || errno == EINVAL || errno == ENOSYS ||
                      errno == EOPNOTSUPP)) {
          no_cfr_ = true;  // e.g. across file systems on old kernels
          continue;
        }
      } else if (kind == FdKind::pipe) {
        how = "splice";
        r = sys::splice(fd_, &off, out, nullptr, std::min<std::size_t>(want, 1 << 20), SPLICE_F_MOVE);
      } else {
        how = "sendfile";
        r = sys::sendfile(out, fd_, &off, want);
      }
      if (r < 0 && errno == EAGAIN) {
        if (int e = wait_fd(out, POLLOUT)) {
          out_error = e;
          return done;
        }
        continue;
      }
      if (r < 0 && errno == EINTR) continue;
      if (r < 0) {
        if (output_errno(errno)) out_error = errno;
        else error_ = errno;
        return done;
      }
      if (r == 0) return done;  // input ended
      off_ += static_cast<std::uint64_t>(r);
      done += static_cast<std::uint64_t>(r);
    }
    return done;
  }

 private:
  int out_kind_ = -1;
  bool no_cfr_ = false;
  void refresh_size() {
    struct stat st;
    if (::fstat(fd_, &st) == 0) size_ = static_cast<std::uint64_t>(st.st_size);
  }
  int fd_;
  bool owned_;
  std::uint64_t start_, off_, size_;
};

// Pipes, sockets and character devices through read(2), bodies spliced away.
class ReadSource final : public BufferedSource {
 public:
  ReadSource(int fd, bool owned, bool is_pipe, bool is_socket) : owned_(owned) {
    drain_.fd = fd;
    drain_.is_pipe = is_pipe;
    drain_.is_socket = is_socket;
    drain_.scratch = buf();
    drain_.scratch_len = kCapacity;
  }
  ~ReadSource() override {
    if (owned_) ::close(drain_.fd);
  }
  std::string_view kind() const override { return "read"; }

 protected:
  // Exact: never asks the kernel for more than the caller needs.
  std::int64_t fill(std::byte* dst, std::size_t need, std::size_t) override {
    std::size_t got = 0;
    while (got < need) {
      ssize_t r = sys::read(drain_.fd, dst + got, need - got);
      if (r < 0) {
        if (errno == EAGAIN) {
          if (wait_readable() == 0) continue;
        }
        error_ = errno;
        return -1;
      }
      if (r == 0) break;
      got += static_cast<std::size_t>(r);
    }
    return static_cast<std::int64_t>(got);
  }
  std::uint64_t discard(std::uint64_t n) override {
    int err = 0;
    // The scratch buffer is only used when the buffer is empty, which it is
    // here: BufferedSource::skip drained it first.
    std::uint64_t d = drain_.run(n, &err);
    if (err) error_ = err;
    return d;
  }
  std::uint64_t move_out(std::uint64_t n, int out, int& out_error, const char*& how) override {
    if (drain_.is_pipe || drain_.is_socket) {
      int in_err = 0;
      bool unsupported = false;
      how = "splice";
      std::uint64_t d = splice_stream(drain_, n, out, fd_kind(out), &in_err, &out_error, &unsupported);
      if (in_err) error_ = in_err;
      if (!unsupported) return d;
    }
    return BufferedSource::move_out(n, out, out_error, how);
  }

 private:
  int wait_readable();
  bool owned_;
  Drain drain_;
};

int ReadSource::wait_readable() {
  // A non-blocking descriptor handed to us: wait in poll rather than spin,
  // and leave the caller's descriptor flags alone.
  struct pollfd p {drain_.fd, POLLIN, 0};
  for (;;) {
    int r = ::poll(&p, 1, -1);
    if (r > 0) return 0;
    if (r < 0 && errno != EINTR) return -1;
  }
}

// A file that shrinks under a mapping turns reads of the lost pages into
// SIGBUS. Each MappedSource registers its current window here; the handler
// recognises a fault inside one, maps anonymous zero pages over the window
// (so the faulting read completes) and sets the source's error to EIO: its
// next peek fails, and verify/convert refuse a verdict reached over zeros.
// Faults anywhere else go to the previous disposition (the default: death).
struct MapGuard {
  std::atomic<std::byte*> base{nullptr};
  std::atomic<std::size_t> len{0};
  std::atomic<int*> err{nullptr};
  std::atomic<bool> used{false};
};
constexpr std::size_t kMapGuards = 64;
MapGuard g_map_guards[kMapGuards];
struct sigaction g_old_sigbus;

void on_sigbus(int sig, siginfo_t* si, void* uc) {
  auto* a = static_cast<std::byte*>(si->si_addr);
  for (MapGuard& g : g_map_guards) {
    std::byte* b = g.base.load(std::memory_order_acquire);
    std::size_t n = g.len.load(std::memory_order_acquire);
    int* err = g.err.load(std::memory_order_acquire);
    if (!b || !err || a < b || a >= b + n) continue;
    if (::mmap(b, n, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) == MAP_FAILED)
      break;
    *static_cast<volatile int*>(err) = EIO;
    return;
  }
  if (g_old_sigbus.sa_flags & SA_SIGINFO) {
    g_old_sigbus.sa_sigaction(sig, si, uc);
  } else if (g_old_sigbus.sa_handler != SIG_DFL && g_old_sigbus.sa_handler != SIG_IGN) {
    g_old_sigbus.sa_handler(sig);
  } else {
    // Returning re-runs the faulting access under the default action.
    ::signal(SIGBUS, SIG_DFL);
  }
}

MapGuard* claim_map_guard() {
  static std::once_flag once;
  std::call_once(once, [] {
    struct sigaction sa {};
    sa.sa_sigaction = on_sigbus;
    sa.sa_flags = SA_SIGINFO;
    sigemptyset(&sa.sa_mask);
    ::sigaction(SIGBUS, &sa, &g_old_sigbus);
  });
  for (MapGuard& g : g_map_guards) {
    bool f = false;
    if (g.used.compare_exchange_strong(f, true)) return &g;
  }
  return nullptr;  // more live mapped sources than slots: unguarded
}

// Regular files through bounded mapped windows; windows behind the cursor
// are released as it moves on, so resident memory stays bounded.
class MappedSource final : public Source {
 public:
  static constexpr std::uint64_t kWindow = 64ull << 20;

  MappedSource(int fd, bool owned, std::uint64_t start, std::uint64_t size)
      : fd_(fd), owned_(owned), start_(start), cur_(start), size_(size),
        guard_(claim_map_guard()) {
    if (guard_) guard_->err.store(&error_, std::memory_order_release);
  }
  ~MappedSource() override {
    unmap();
    if (guard_) {
      guard_->err.store(nullptr, std::memory_order_release);
      guard_->used.store(false, std::memory_order_release);
    }
    if (owned_) ::close(fd_);
  }
  std::string_view kind() const override { return "mmap"; }
  std::int64_t remaining() const override {
    return static_cast<std::int64_t>(size_ > cur_ ? size_ - cur_ : 0);
  }

  Bytes peek(std::size_t n) override {
    if (error_) [[unlikely]]
      return {};  // e.g. the file shrank under the window (EIO, above)
    if (n > kMaxPeek) n = kMaxPeek;
    if (cur_ + n > win_off_ + win_len_ || cur_ < win_off_) {
      if (!map_at(cur_)) return {};
    }
    std::uint64_t avail = win_off_ + win_len_ - cur_;
    return {win_ + (cur_ - win_off_), static_cast<std::size_t>(avail)};
  }
  void consume(std::size_t n) override { cur_ += n; }
  std::uint64_t skip(std::uint64_t n) override {
    if (error_) [[unlikely]]
      return 0;
    if (cur_ + n > size_) refresh_size();
    std::uint64_t d = std::min(n, size_ > cur_ ? size_ - cur_ : 0);
    cur_ += d;
    return d;
  }
  std::uint64_t pos() const override { return cur_ - start_; }
  int finish() override {
    if (::lseek(fd_, static_cast<off_t>(cur_), SEEK_SET) < 0) return errno;
    return 0;
  }

 private:
  void refresh_size() {
    struct stat st;
    if (::fstat(fd_, &st) == 0) size_ = static_cast<std::uint64_t>(st.st_size);
  }
  void unmap() {
    if (guard_) guard_->base.store(nullptr, std::memory_order_release);
    if (win_) ::munmap(win_, win_len_);
    win_ = nullptr;
    win_len_ = 0;
  }
  bool map_at(std::uint64_t at) {
    unmap();
    refresh_size();
    std::uint64_t base = at & ~(kPageSize() - 1);
    if (base >= size_) {
      win_off_ = at;
      return true;  // empty window: end of input
    }
    std::uint64_t len = std::min(kWindow, size_ - base);
    void* p = ::mmap(nullptr, len, PROT_READ, MAP_SHARED, fd_, static_cast<off_t>(base));
    if (p == MAP_FAILED) {
      error_ = errno;
      win_off_ = at;
      return false;
    }
    (void)::madvise(p, len, MADV_SEQUENTIAL);
    win_ = static_cast<std::byte*>(p);
    win_off_ = base;
    win_len_ = len;
    if (guard_) {
      guard_->len.store(static_cast<std::size_t>(len), std::memory_order_release);
      guard_->base.store(win_, std::memory_order_release);
    }
    return true;
  }
  static std::uint64_t kPageSize() { return 4096; }

  int fd_;
  bool owned_;
  std::uint64_t start_, cur_, size_;
  std::byte* win_ = nullptr;
  std::uint64_t win_off_ = 0, win_len_ = 0;
  MapGuard* guard_;
};

class MemorySource final : public Source {
 public:
  explicit MemorySource(Bytes data) : data_(data) {}
  Bytes peek(std::size_t) override { return data_.subspan(cur_); }
  void consume(std::size_t n) override { cur_ += std::min(n, data_.size() - cur_); }
  std::uint64_t skip(std::uint64_t n) override {
    std::uint64_t d = std::min<std::uint64_t>(n, data_.size() - cur_);
    cur_ += static_cast<std::size_t>(d);
    return d;
  }
  std::uint64_t pos() const override { return cur_; }
  std::int64_t remaining() const override { return static_cast<std::int64_t>(data_.size() - cur_); }
  std::string_view kind() const override { return "memory"; }

 private:
  Bytes data_;
  std::size_t cur_ = 0;
};

}  // namespace
}  // namespace detail

std::uint64_t Source::forward(std::uint64_t n, int out, int& out_error, const char*& how) {
  // Straight from the window: a mapping or memory, no copy of our own.
  how = "write";
  std::uint64_t done = 0;
  while (done < n) {
    std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(n - done, kMaxPeek));
    Bytes b = peek(want);
    if (b.empty()) return done;
    std::size_t k = std::min(want, b.size());
    if (int e = detail::write_out(out, b.data(), k)) {
      out_error = e;
      return done;
    }
    consume(k);
    done += k;
  }
  return done;
}

int parse_fd(std::string_view spec) {
  if (spec.empty() || spec.size() > 9) return -1;
  int v = 0;
  for (char c : spec) {
    if (c < '0' || c > '9') return -1;
    v = v * 10 + (c - '0');
  }
  return v;
}

std::unique_ptr<Source> memory_source(Bytes data) {
  return std::make_unique<detail::MemorySource>(data);
}

static IoMode env_mode(IoMode mode) {
  if (mode != IoMode::automatic) return mode;
  if (const char* e = std::getenv("XSR_IO")) {
    std::string_view v(e);
    if (v == "pread") return IoMode::pread;
    if (v == "mmap") return IoMode::mmap;
    if (v == "uring") return IoMode::uring;
    if (v == "read") return IoMode::read;
  }
  if (const char* e = std::getenv("XSR_NO_URING"); e && *e && std::string_view(e) != "0")
    return IoMode::read;
  return IoMode::automatic;
}

OpenResult source_from_fd(int fd, bool owned, IoMode mode) {
  OpenResult res;
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    res.error = std::string("fd ") + std::to_string(fd) + ": " + std::strerror(errno);
    if (owned) ::close(fd);
    return res;
  }
  mode = env_mode(mode);
  if (S_ISREG(st.st_mode) || S_ISBLK(st.st_mode)) {
    off_t start = ::lseek(fd, 0, SEEK_CUR);
    if (start < 0) start = 0;
    std::uint64_t size = static_cast<std::uint64_t>(st.st_size);
    if (S_ISBLK(st.st_mode)) {
      off_t end = ::lseek(fd, 0, SEEK_END);
      size = end > 0 ? static_cast<std::uint64_t>(end) : 0;
      ::lseek(fd, start, SEEK_SET);
    }
    if (mode == IoMode::mmap)
      res.source = std::make_unique<detail::MappedSource>(fd, owned, start, size);
    else
      res.source = std::make_unique<detail::PreadSource>(fd, owned, start, size);
    return res;
  }
  bool is_pipe = S_ISFIFO(st.st_mode);
  bool is_socket = S_ISSOCK(st.st_mode);
  if (is_pipe) (void)::fcntl(fd, F_SETPIPE_SZ, 1 << 20);  // fewer, larger splices
  if ((is_pipe || is_socket) && mode != IoMode::read) {
    std::string why;
    if (auto s = detail::make_uring_source(fd, owned, is_socket, &why)) {
      res.source = std::move(s);
      return res;
    }
    res.note = "io_uring unavailable (" + why + "): plain reads";
  } else if (mode == IoMode::read) {
    res.note = "io_uring disabled: plain reads";
  }
  res.source = std::make_unique<detail::ReadSource>(fd, owned, is_pipe, is_socket);
  return res;
}

OpenResult open_source(std::string_view spec, IoMode mode) {
  if (spec == "-") return source_from_fd(0, false, mode);
  if (int fd = parse_fd(spec); fd >= 0) return source_from_fd(fd, false, mode);
  std::string path(spec);
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    OpenResult res;
    res.error = path + ": " + std::strerror(errno);
    return res;
  }
  return source_from_fd(fd, true, mode);
}

}  // namespace xsr
