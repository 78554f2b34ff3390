// The relay's engine (hold.h): HoldQueue and the HoldingSource's reader.
#include "xsr/hold.h"

#include <fcntl.h>
#include <liburing.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "io_engine.h"
#include "xsr/sys.h"
#include "xsr/units.h"

namespace xsr {
namespace {

constexpr std::size_t kPipeWant = 1 << 20;
constexpr std::size_t kChunk = 1 << 20;

// An Error whose cause is errno e (the relay names causes in its own words).
[[gnu::cold]] Error cause(int e) { return Error::io(0, "relay", e); }

}  // namespace

// ---- HoldQueue --------------------------------------------------------------

HoldQueue::HoldQueue(std::uint64_t max_hold, int out, int timeout_ms)
    : max_(max_hold), out_(out), timeout_ms_(timeout_ms) {}

HoldQueue::~HoldQueue() {
  for (Pipe& p : active_) close_pipe(p);
  for (Pipe& p : spare_) close_pipe(p);
}

void HoldQueue::close_pipe(Pipe& p) {
  ::close(p.r);
  ::close(p.w);
}

Error HoldQueue::put(const std::byte* p, std::size_t n) {
  if (held() + n > max_) return cause(EMSGSIZE);
  while (n > 0) {
    Pipe* pp = back();
    if (!pp) return cause(err_);
    ssize_t w = sys::write(pp->w, p, n);
    if (w < 0 && errno == EAGAIN) {
      pp->full = true;
      continue;
    }
    if (w <= 0) return cause(w < 0 ? errno : EIO);
    pp->bytes += static_cast<std::size_t>(w);
    total_ += static_cast<std::uint64_t>(w);
    written_ += static_cast<std::uint64_t>(w);
    p += w;
    n -= static_cast<std::size_t>(w);
  }
  return {};
}

HoldQueue::Spliced HoldQueue::splice_in(int in, std::uint64_t n) {
  Spliced s;
  if (held() + n > max_) {
    s.error = cause(EMSGSIZE);
    return s;
  }
  for (;;) {
    Pipe* pp = back();
    if (!pp) {
      s.error = cause(err_);
      return s;
    }
    // Wait for the sender here rather than in the splice (a blocking
    // socket would wait there without a limit), sending meanwhile.
    if (Error e = wait_input(in)) {
      s.error = std::move(e);
      return s;
    }
    std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(n, cap_));
    ssize_t r = sys::splice(in, nullptr, pp->w, nullptr, want, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
    if (r > 0) {
      pp->bytes += static_cast<std::size_t>(r);
      total_ += static_cast<std::uint64_t>(r);
      spliced_ += static_cast<std::uint64_t>(r);
      s.bytes = static_cast<std::uint64_t>(r);
      return s;
    }
    if (r == 0) return s;
    if (errno == EAGAIN) {
      if (sys::wait_fd(pp->w, POLLOUT, 0) == ETIMEDOUT) {
        // This pipe has no free slot: the next one takes the rest.
        pp->full = true;
        if (pp->bytes < cap_ / 2) {
          s.fragmented = true;
          return s;
        }
      }
      // Else the input had nothing after all (a pipe): wait again.
      continue;
    }
    s.error = cause(errno);
    return s;
  }
}

Error HoldQueue::mark() {
  pending_ = total_;
  if (Error e = push(false)) return e;
  while (pending_ > kPendingCap)
    if (Error e = push(true)) return e;
  return {};
}

Error HoldQueue::fail_out(int e) {
  out_err_ = cause(e);
  return out_err_;
}

Error HoldQueue::push(bool block) {
  if (out_err_) return out_err_;
  while (pending_ > 0) {
    Pipe& p = active_.front();
    const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(p.bytes, pending_));
    if (n == 0) {  // a drained pipe: reuse it
      recycle_front();
      continue;
    }
    const bool more = pending_ > n;
    ssize_t r = splice_ok_ ? sys::splice(p.r, nullptr, out_, nullptr, n,
                                         SPLICE_F_MOVE | SPLICE_F_NONBLOCK | (more ? SPLICE_F_MORE : 0))
                           : copy_out(p, n);
    if (r > 0) {
      p.bytes -= static_cast<std::size_t>(r);
      total_ -= static_cast<std::uint64_t>(r);
      pending_ -= static_cast<std::uint64_t>(r);
      sent_ += static_cast<std::uint64_t>(r);
      if (p.bytes == 0) recycle_front();
      continue;
    }
    if (r < 0 && errno == EAGAIN) {
      if (!block) return {};
      if (int e = sys::wait_fd(out_, POLLOUT, timeout_ms_)) return fail_out(e);
      continue;
    }
    if (r < 0 && splice_ok_ && (errno == EINVAL || errno == ENOSYS)) {
      splice_ok_ = false;  // an output splice cannot take (a tty, O_APPEND file)
      continue;
    }
    return fail_out(r < 0 ? errno : EIO);
  }
  return {};
}

Error HoldQueue::wait_input(int in) {
  for (;;) {
    pollfd p[2] = {{in, POLLIN, 0}, {out_, POLLOUT, 0}};
    const nfds_t n = pending_ > 0 && !out_err_ ? 2 : 1;
    int r = sys::poll(p, n, timeout_ms_);
    if (r < 0) return cause(errno);
    if (r == 0) return cause(ETIMEDOUT);
    if (p[0].revents) return {};
    if (push(false)) return cause(ECANCELED);
  }
}

HoldQueue::Pipe* HoldQueue::back() {
  if (!active_.empty() && !active_.back().full) return &active_.back();
  if (!spare_.empty()) {
    active_.push_back(spare_.back());
    spare_.pop_back();
    return &active_.back();
  }
  // Bounded: every pipe but the last holds at least half its size.
  if (active_.size() >= 2 * ((max_ + kPendingCap) / cap_) + 4) {
    err_ = EMSGSIZE;
    return nullptr;
  }
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC | O_NONBLOCK) != 0) {
    err_ = errno;
    return nullptr;
  }
  (void)::fcntl(fds[1], F_SETPIPE_SZ, static_cast<int>(kPipeWant));
  int sz = ::fcntl(fds[1], F_GETPIPE_SZ);
  if (active_.empty() && spare_.empty() && sz > 0) cap_ = static_cast<std::size_t>(sz);
  active_.push_back(Pipe{fds[0], fds[1], 0, false});
  return &active_.back();
}

void HoldQueue::recycle_front() {
  Pipe p = active_.front();
  p.full = false;
  if (active_.size() == 1) {  // also the one being filled: keep it there
    active_.front().full = false;
    return;
  }
  active_.pop_front();
  spare_.push_back(p);
}

// The output takes no splice: through a small buffer.
ssize_t HoldQueue::copy_out(Pipe& p, std::size_t n) {
  std::byte b[65536];
  ssize_t r = sys::read(p.r, b, std::min(sizeof b, n));
  if (r <= 0) return r < 0 ? -1 : (errno = EIO, -1);
  if (int e = sys::write_all(out_, b, static_cast<std::size_t>(r))) {
    errno = e;
    return -1;
  }
  return r;
}

// ---- HoldingSource ----------------------------------------------------------

namespace detail {

class HoldReader final : public BufferedSource {
 public:
  HoldReader(int fd, int timeout_ms) : fd_(fd), timeout_ms_(timeout_ms) {}
  ~HoldReader() override {
    if (ring_ok_) io_uring_queue_exit(&ring_);
  }
  void hold_into(HoldQueue* q) { st_ = q; }

  Error use_uring() {
    int r = io_uring_queue_init(4, &ring_, 0);
    if (r < 0) {
      Error why = Error::at(Errc::io, 0, std::strerror(-r));
      why.cause = -r;
      return why;
    }
    ring_ok_ = true;
    return {};
  }

  std::string_view kind() const override { return ring_ok_ ? "io_uring" : "read"; }

  void consume(std::size_t n) override {
    Bytes b = BufferedSource::peek(0);
    n = std::min(n, b.size());
    if (n && st_ && !failed()) {
      if (Error e = st_->put(b.data(), n)) fail(e.cause);
    }
    BufferedSource::consume(n);
  }

  std::string error_text() const override {
    switch (error_) {
      case ETIMEDOUT: return "no data from the sender for " + format_seconds(timeout_ms_) + " (--timeout)";
      case EMSGSIZE: return "record longer than the relay holds while checking it (--hold)";
      case ECANCELED: return "the output failed";
      default: return Source::error_text();
    }
  }

  bool failed() const { return error_ != 0; }
  void fail(int e) {
    if (!error_) error_ = e;
  }

 protected:
  std::int64_t fill(std::byte* dst, std::size_t need, std::size_t) override;
  std::uint64_t discard(std::uint64_t n) override;
  std::uint64_t move_out(std::uint64_t n, int out, int& out_error, const char*& how) override;

 private:
  std::uint64_t discard_held(std::uint64_t n);
  ssize_t plain_read(std::byte* dst, std::size_t n, int* err);
  ssize_t ring_read(std::byte* dst, std::size_t n, int* err);
  int wait_read();
  int cancel_read();

  int fd_;
  HoldQueue* st_ = nullptr;
  int timeout_ms_;
  bool splice_ok_ = true;
  io_uring ring_{};
  bool ring_ok_ = false;
};

std::int64_t HoldReader::fill(std::byte* dst, std::size_t need, std::size_t) {
  if (failed()) return -1;
  std::size_t got = 0;
  while (got < need) {
    // Released bytes must not wait behind a read: a checkpointing sender
    // (Remus, COLO) sends nothing more until the receiver has them all.
    if (st_ && st_->pending() > 0) {
      if (Error e = st_->wait_input(fd_)) {
        fail(e.cause);
        return -1;
      }
    }
    int e = 0;
    ssize_t r = ring_ok_ ? ring_read(dst + got, need - got, &e) : plain_read(dst + got, need - got, &e);
    if (r < 0) {
      fail(e);
      return -1;
    }
    if (r == 0) break;
    got += static_cast<std::size_t>(r);
  }
  return static_cast<std::int64_t>(got);
}

std::uint64_t HoldReader::discard(std::uint64_t n) {
  if (st_) return discard_held(n);
  // A conversion's input: what the converter skips goes nowhere.
  std::uint64_t done = 0;
  while (done < n && !failed()) {
    std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(n - done, kChunk));
    std::int64_t r = fill(buf(), want, want);
    if (r <= 0) break;
    done += static_cast<std::uint64_t>(r);
  }
  return done;
}

// Bodies the verifier skips: spliced into the queue, or where splice cannot
// serve (an input it cannot take, a sender of tiny segments) read and put.
std::uint64_t HoldReader::discard_held(std::uint64_t n) {
  std::uint64_t done = 0;
  bool fragmented = false;
  while (done < n && !failed()) {
    if (!fragmented && splice_ok_) {
      HoldQueue::Spliced s = st_->splice_in(fd_, n - done);
      if (s.bytes > 0) {
        done += s.bytes;
        continue;
      }
      if (s.fragmented) {
        fragmented = true;
        continue;
      }
      if (!s.error) break;  // the input ended
      if (s.error.cause == EINVAL || s.error.cause == ENOSYS) {
        splice_ok_ = false;  // an input splice cannot take: read it
        continue;
      }
      fail(s.error.cause);
      break;
    }
    // Through user memory, packed into the pipes.
    std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(n - done, kChunk));
    std::int64_t r = fill(buf(), want, want);
    if (r <= 0) break;
    if (Error e = st_->put(buf(), static_cast<std::size_t>(r))) {
      fail(e.cause);
      break;
    }
    done += static_cast<std::uint64_t>(r);
  }
  return done;
}

// The converter's page bodies, on to its output pipe by splice.
std::uint64_t HoldReader::move_out(std::uint64_t n, int out, int& out_error, const char*& how) {
  std::uint64_t done = 0;
  how = "splice";
  while (done < n && splice_ok_) {
    if (int e = sys::wait_fd(fd_, POLLIN, timeout_ms_)) {
      fail(e);
      return done;
    }
    std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(n - done, kChunk));
    ssize_t r = sys::splice(fd_, nullptr, out, nullptr, want, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
    if (r > 0) {
      done += static_cast<std::uint64_t>(r);
      continue;
    }
    if (r == 0) return done;
    if (errno == EAGAIN) {
      // The converter's pipe is full (it is read on: wait for it), or
      // the sender has sent nothing yet (wait for it, within --timeout).
      if (sys::wait_fd(out, POLLOUT, 0) == ETIMEDOUT) (void)sys::wait_fd(out, POLLOUT);
      continue;
    }
    if (done == 0 && (errno == EINVAL || errno == ENOSYS)) {
      splice_ok_ = false;
      break;
    }
    if (errno == EPIPE) out_error = errno;
    else fail(errno);
    return done;
  }
  if (done < n) done += BufferedSource::move_out(n - done, out, out_error, how);
  return done;
}

ssize_t HoldReader::plain_read(std::byte* dst, std::size_t n, int* err) {
  for (;;) {
    if (int e = sys::wait_fd(fd_, POLLIN, timeout_ms_)) {
      *err = e;
      return -1;
    }
    ssize_t r = sys::read(fd_, dst, n);
    if (r >= 0) return r;
    if (errno == EAGAIN) continue;
    *err = errno;
    return -1;
  }
}

ssize_t HoldReader::ring_read(std::byte* dst, std::size_t n, int* err) {
  for (;;) {
    io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
    io_uring_prep_read(sqe, fd_, dst, static_cast<unsigned>(n), static_cast<std::uint64_t>(-1));
    sqe->user_data = 1;
    int r = io_uring_submit(&ring_);
    if (r < 0) {
      *err = -r;
      return -1;
    }
    int res = wait_read();
    if (res == -EINTR || res == -EAGAIN) continue;
    if (res < 0) {
      *err = -res;
      return -1;
    }
    return res;
  }
}

// Waits for the read in flight, at most timeout_ms_; on timeout cancels it
// and returns -ETIMEDOUT (unless it completed meanwhile).
int HoldReader::wait_read() {
  for (;;) {
    io_uring_cqe* cqe = nullptr;
    int r;
    if (timeout_ms_ < 0) {
      r = io_uring_wait_cqe(&ring_, &cqe);
    } else {
      __kernel_timespec ts{timeout_ms_ / 1000, (timeout_ms_ % 1000) * 1000000LL};
      r = io_uring_wait_cqe_timeout(&ring_, &cqe, &ts);
    }
    // A signal must not end the wait: the read is still in flight.
    if (r == -EINTR) continue;
    if (r == -ETIME) return cancel_read();
    if (r < 0) return r;
    const int res = cqe->res;
    const bool mine = cqe->user_data == 1;
    io_uring_cqe_seen(&ring_, cqe);
    if (mine) return res;
  }
}

int HoldReader::cancel_read() {
  io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
  io_uring_prep_cancel64(sqe, 1, 0);
  sqe->user_data = 2;
  io_uring_submit(&ring_);
  int res = -ETIMEDOUT;
  for (int seen = 0; seen < 2;) {
    io_uring_cqe* cqe = nullptr;
    int r = io_uring_wait_cqe(&ring_, &cqe);
    if (r == -EINTR) continue;
    if (r < 0) return r;
    if (cqe->user_data == 1 && cqe->res >= 0) res = cqe->res;  // it won the race
    io_uring_cqe_seen(&ring_, cqe);
    ++seen;
  }
  return res;
}

}  // namespace detail

HoldingSource::HoldingSource(int fd, int timeout_ms)
    : r_(std::make_unique<detail::HoldReader>(fd, timeout_ms)) {}
HoldingSource::~HoldingSource() = default;
Error HoldingSource::use_uring() { return r_->use_uring(); }
void HoldingSource::hold_into(HoldQueue* q) { r_->hold_into(q); }
Source& HoldingSource::source() { return *r_; }
bool HoldingSource::failed() const { return r_->failed(); }
void HoldingSource::fail(int e) { r_->fail(e); }

}  // namespace xsr
