#include "xsr/relay.h"
#include "xsr/units.h"

#include <fcntl.h>
#include <liburing.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <deque>
#include <thread>
#include <vector>

#include "xsr/io_engine.h"
#include "xsr/format.h"
#include "xsr/image.h"
#include "xsr/net.h"
#include "xsr/sys.h"

namespace xsr {
namespace {

constexpr std::size_t kPipeWant = 1 << 20;
constexpr std::size_t kChunk = 1 << 20;

std::string timeout_text(int ms) {
  char b[32];
  std::snprintf(b, sizeof b, "%g s", ms / 1000.0);
  return b;
}

// Bytes held while the verifier checks the record they belong to, then
// sent: a queue of private pipes, filled at the back (write(2) for bytes
// the verifier read, splice(2) for bodies it skips) and sent from the front
// to the output. Pipes hold page references, not copies, so a spliced body
// reaches the output without entering user space.
//
// Bytes are "held" until mark() says the verifier has passed them; then
// they are "pending" and go out whenever the output takes them: between
// reads, and while the relay waits for the sender, so receiving the next
// record overlaps sending the last one. Pending bytes past kPendingCap
// make the relay wait for the output (back-pressure on the sender).
class Stager {
 public:
  static constexpr std::uint64_t kPendingCap = 16 << 20;

  Stager(std::uint64_t max_hold, int out, int timeout_ms) : max_(max_hold), out_(out), timeout_ms_(timeout_ms) {}
  ~Stager() {
    for (Pipe& p : active_) close_pipe(p);
    for (Pipe& p : spare_) close_pipe(p);
  }

  std::uint64_t held() const { return total_ - pending_; }  // not yet passed
  std::uint64_t pending() const { return pending_; }        // passed, not yet sent
  std::uint64_t sent() const { return sent_; }
  std::uint64_t spliced() const { return spliced_; }
  std::uint64_t written() const { return written_; }
  int out_error() const { return out_err_; }

  // Holds n bytes from user memory; 0 or an errno (EMSGSIZE: over the limit).
  int put(const std::byte* p, std::size_t n) {
    if (held() + n > max_) return EMSGSIZE;
    while (n > 0) {
      Pipe* pp = back();
      if (!pp) return err_;
      ssize_t w = ::write(pp->w, p, n);
      if (w < 0 && errno == EINTR) continue;
      if (w < 0 && errno == EAGAIN) {
        pp->full = true;
        continue;
      }
      if (w <= 0) return w < 0 ? errno : EIO;
      pp->bytes += static_cast<std::size_t>(w);
      total_ += static_cast<std::uint64_t>(w);
      written_ += static_cast<std::uint64_t>(w);
      p += w;
      n -= static_cast<std::size_t>(w);
    }
    return 0;
  }

  // Splices up to n bytes from `in` into the pipes, sending pending bytes
  // while the sender has nothing. Returns bytes moved (0: end of input);
  // on failure -1 with *err set (ECANCELED: the output failed, see
  // out_error()). *fragmented is set when a pipe filled up less than half
  // full (a sender of tiny segments): the caller then reads the rest of
  // the record and put()s it, which packs the pipes, so the number of
  // pipes stays bounded by the hold limit.
  std::int64_t splice_in(int in, std::uint64_t n, int* err, bool* fragmented) {
    if (held() + n > max_) {
      *err = EMSGSIZE;
      return -1;
    }
    for (;;) {
      Pipe* pp = back();
      if (!pp) {
        *err = err_;
        return -1;
      }
      // Wait for the sender here rather than in the splice (a blocking
      // socket would wait there without a limit), sending meanwhile.
      if (int e = wait_input(in)) {
        *err = e;
        return -1;
      }
      std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(n, cap_));
      ssize_t r = sys::splice(in, nullptr, pp->w, nullptr, want, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
      if (r > 0) {
        pp->bytes += static_cast<std::size_t>(r);
        total_ += static_cast<std::uint64_t>(r);
        spliced_ += static_cast<std::uint64_t>(r);
        return r;
      }
      if (r == 0) return 0;
      if (errno == EAGAIN) {
        pollfd p{pp->w, POLLOUT, 0};
        if (::poll(&p, 1, 0) == 0) {
          // This pipe has no free slot: the next one takes the rest.
          pp->full = true;
          if (pp->bytes < cap_ / 2) {
            *fragmented = true;
            return -1;
          }
        }
        // Else the input had nothing after all (a pipe): wait again.
        continue;
      }
      *err = errno;
      return -1;
    }
  }

  // The verifier has passed everything held: it may go. Sends what the
  // output takes now, and waits for it while more than kPendingCap is
  // pending. 0 or the output's errno.
  int mark() {
    pending_ = total_;
    if (int e = push(false)) return e;
    while (pending_ > kPendingCap)
      if (int e = push(true)) return e;
    return 0;
  }

  // Sends pending bytes: all of them (block), or what the output takes
  // without waiting. 0 or an errno (ETIMEDOUT: the output took nothing for
  // timeout_ms), kept in out_error().
  int push(bool block) {
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
        if (!block) return 0;
        if (int e = net::wait_ready(out_, POLLOUT, timeout_ms_)) return out_err_ = e;
        continue;
      }
      if (r < 0 && splice_ok_ && (errno == EINVAL || errno == ENOSYS)) {
        splice_ok_ = false;  // an output splice cannot take (a tty, O_APPEND file)
        continue;
      }
      return out_err_ = r < 0 ? errno : EIO;
    }
    return 0;
  }

  // Waits until `in` is readable, sending pending bytes whenever the
  // output takes them meanwhile. 0, ETIMEDOUT (neither moved for
  // timeout_ms) or ECANCELED (the output failed).
  int wait_input(int in) {
    for (;;) {
      pollfd p[2] = {{in, POLLIN, 0}, {out_, POLLOUT, 0}};
      const nfds_t n = pending_ > 0 && !out_err_ ? 2 : 1;
      int r = ::poll(p, n, timeout_ms_);
      if (r < 0 && errno == EINTR) continue;
      if (r < 0) return errno;
      if (r == 0) return ETIMEDOUT;
      if (p[0].revents) return 0;
      if (push(false)) return ECANCELED;
    }
  }

 private:
  struct Pipe {
    int r = -1, w = -1;
    std::size_t bytes = 0;
    bool full = false;
  };

  static void close_pipe(Pipe& p) {
    ::close(p.r);
    ::close(p.w);
  }

  // The pipe being filled: the last one, or a new one when it is full.
  Pipe* back() {
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

  void recycle_front() {
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
  ssize_t copy_out(Pipe& p, std::size_t n) {
    std::byte b[65536];
    ssize_t r = ::read(p.r, b, std::min(sizeof b, n));
    if (r <= 0) return r < 0 ? -1 : (errno = EIO, -1);
    if (int e = sys::write_all(out_, b, static_cast<std::size_t>(r))) {
      errno = e;
      return -1;
    }
    return r;
  }

  std::uint64_t max_;
  int out_;
  int timeout_ms_;
  std::deque<Pipe> active_;
  std::vector<Pipe> spare_;
  std::size_t cap_ = 65536;
  std::uint64_t total_ = 0, pending_ = 0, sent_ = 0, spliced_ = 0, written_ = 0;
  int err_ = 0, out_err_ = 0;
  bool splice_ok_ = true;
};

// The verifier's source in a relay: exact reads of what it asks for
// (through io_uring where available), each consumed byte held in the
// stager, and skipped bodies spliced into it.
//
// Without a stager it is the input of a conversion: nothing is held, and
// the converter's bulk bytes are spliced straight on (move_out).
class RelaySource final : public detail::BufferedSource {
 public:
  RelaySource(int fd, int timeout_ms) : fd_(fd), timeout_ms_(timeout_ms) {}
  void set_stager(Stager* st) { st_ = st; }
  ~RelaySource() override {
    if (ring_ok_) io_uring_queue_exit(&ring_);
  }

  // io_uring for the reads; false (plain reads) with *why set when it
  // cannot be had.
  bool use_uring(std::string* why) {
    int r = io_uring_queue_init(4, &ring_, 0);
    if (r < 0) {
      *why = std::strerror(-r);
      return false;
    }
    ring_ok_ = true;
    return true;
  }

  std::string_view kind() const override { return ring_ok_ ? "io_uring" : "read"; }

  void consume(std::size_t n) override {
    Bytes b = BufferedSource::peek(0);
    n = std::min(n, b.size());
    if (n && st_ && !failed()) {
      if (int e = st_->put(b.data(), n)) fail(e);
    }
    BufferedSource::consume(n);
  }

  std::string error_text() const override {
    switch (error_) {
      case ETIMEDOUT:
        return "no data from the sender for " + timeout_text(timeout_ms_) + " (--timeout)";
      case EMSGSIZE:
        return "record longer than the relay holds while checking it (--hold)";
      case ECANCELED:
        return "the output failed";
      default:
        return Source::error_text();
    }
  }

  bool failed() const { return error_ != 0; }
  void fail(int e) {
    if (!error_) error_ = e;
  }

 protected:
  std::int64_t fill(std::byte* dst, std::size_t need, std::size_t) override {
    if (failed()) return -1;
    std::size_t got = 0;
    while (got < need) {
      // Released bytes must not wait behind a read: a checkpointing sender
      // (Remus, COLO) sends nothing more until the receiver has them all.
      if (st_ && st_->pending() > 0) {
        if (int e = st_->wait_input(fd_)) {
          fail(e);
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

  std::uint64_t discard(std::uint64_t n) override {
    std::uint64_t done = 0;
    bool fragmented = false;
    while (done < n && !failed()) {
      if (!st_) {
        // A conversion's input: what the converter skips goes nowhere.
        std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(n - done, kChunk));
        std::int64_t r = fill(buf(), want, want);
        if (r <= 0) break;
        done += static_cast<std::uint64_t>(r);
        continue;
      }
      if (!fragmented && splice_ok_) {
        int e = 0;
        std::int64_t r = st_->splice_in(fd_, n - done, &e, &fragmented);
        if (r > 0) {
          done += static_cast<std::uint64_t>(r);
          continue;
        }
        if (r == 0) break;
        if (fragmented) continue;
        if (e == EINVAL || e == ENOSYS) {
          splice_ok_ = false;  // an input splice cannot take: read it
          continue;
        }
        fail(e);
        break;
      }
      // Through user memory, packed into the pipes.
      std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(n - done, kChunk));
      std::int64_t r = fill(buf(), want, want);
      if (r <= 0) break;
      if (int e = st_->put(buf(), static_cast<std::size_t>(r))) {
        fail(e);
        break;
      }
      done += static_cast<std::uint64_t>(r);
    }
    return done;
  }

  // The converter's page bodies, on to its output pipe by splice.
  std::uint64_t move_out(std::uint64_t n, int out, int& out_error, const char*& how) override {
    std::uint64_t done = 0;
    how = "splice";
    while (done < n && splice_ok_) {
      if (int e = net::wait_ready(fd_, POLLIN, timeout_ms_)) {
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
        pollfd p{out, POLLOUT, 0};
        if (::poll(&p, 1, 0) == 0) (void)net::wait_ready(out, POLLOUT, -1);
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

 private:
  ssize_t plain_read(std::byte* dst, std::size_t n, int* err) {
    for (;;) {
      if (int e = net::wait_ready(fd_, POLLIN, timeout_ms_)) {
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

  ssize_t ring_read(std::byte* dst, std::size_t n, int* err) {
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

  // Waits for the read in flight, at most timeout_ms_; on timeout cancels
  // it and returns -ETIMEDOUT (unless it completed meanwhile).
  int wait_read() {
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

  int cancel_read() {
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

  int fd_;
  Stager* st_ = nullptr;
  int timeout_ms_;
  bool splice_ok_ = true;
  io_uring ring_{};
  bool ring_ok_ = false;
};

// Lets held bytes go each time the verifier has checked a header or a
// record; counts records and pages for --stats.
class Forwarder final : public StreamObserver {
 public:
  Forwarder(Stager& st, RelaySource& src, RunCounters* stats) : st_(st), src_(src), stats_(stats) {}

  void header(HeaderKind, std::uint64_t, std::uint64_t) override { commit(); }
  void record(Layer layer, std::uint32_t type, std::uint64_t, std::uint64_t, Bytes) override {
    if (layer == Layer::libxc && type == libxc::PAGE_DATA) {
      if (stats_) stats_->add_pages(pending_pages_);
      pending_pages_ = 0;
    }
    if (stats_) stats_->add_records(1);
    commit();
  }
  void pfns(Bytes chunk) override { pending_pages_ += count_data_pages(chunk); }

  // Releases what is held; false once the output has failed (the
  // verifier then stops at its next read).
  bool commit() {
    if (st_.out_error() || src_.failed()) return false;
    const int e = st_.mark();
    if (stats_) stats_->set_bytes(st_.sent());
    if (e) src_.fail(ECANCELED);
    return e == 0;
  }

  // Sends everything released (the stream's end).
  bool drain() {
    const int e = st_.push(true);
    if (stats_) stats_->set_bytes(st_.sent());
    return e == 0;
  }

 private:
  Stager& st_;
  RelaySource& src_;
  RunCounters* stats_;
  std::uint64_t pending_pages_ = 0;
};

// The relay waits for its output in poll(2), never in a send: a socket
// output is non-blocking while it runs (splice(2) follows the socket's
// own flag), and gets its flags back after.
class NonBlocking {
 public:
  explicit NonBlocking(int fd) : fd_(fd) {
    if (detail::fd_kind(fd) != detail::FdKind::socket) return;
    flags_ = ::fcntl(fd, F_GETFL);
    if (flags_ >= 0 && !(flags_ & O_NONBLOCK)) ::fcntl(fd, F_SETFL, flags_ | O_NONBLOCK);
    else flags_ = -1;
  }
  ~NonBlocking() { restore(); }
  void restore() {
    if (flags_ >= 0) ::fcntl(fd_, F_SETFL, flags_);
    flags_ = -1;
  }

 private:
  int fd_;
  int flags_ = -1;
};

std::string output_error_text(int e, int timeout_ms) {
  if (e == ETIMEDOUT) return "the receiver took nothing for " + timeout_text(timeout_ms) + " (--timeout)";
  std::string s = std::strerror(e);
  if (e == EPIPE || e == ECONNRESET) s += " (the receiver closed the connection)";
  return s;
}

// Moves bytes one way between two descriptors through a private pipe.
struct Pump {
  int from, to;
  int pr = -1, pw = -1;
  std::size_t in_pipe = 0;
  bool eof = false, done = false;
  std::uint64_t moved = 0;
  ~Pump() {
    if (pr >= 0) ::close(pr);
    if (pw >= 0) ::close(pw);
  }
  int open() {
    int p[2];
    if (::pipe2(p, O_CLOEXEC | O_NONBLOCK) != 0) return errno;
    pr = p[0];
    pw = p[1];
    return 0;
  }
  // One step without blocking; 0, EAGAIN (nothing to do now) or an errno
  // (*out_side: the failure was the receiving side's).
  int step(bool* out_side) {
    if (in_pipe > 0) {
      ssize_t r = sys::splice(pr, nullptr, to, nullptr, in_pipe, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
      if (r > 0) {
        in_pipe -= static_cast<std::size_t>(r);
        moved += static_cast<std::uint64_t>(r);
        return 0;
      }
      *out_side = true;
      return r < 0 ? errno : EIO;
    }
    if (eof) {
      if (!done) {
        done = true;
        if (detail::fd_kind(to) == detail::FdKind::socket) ::shutdown(to, SHUT_WR);
      }
      return EAGAIN;
    }
    ssize_t r = sys::splice(from, nullptr, pw, nullptr, kChunk, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
    if (r > 0) {
      in_pipe = static_cast<std::size_t>(r);
      return 0;
    }
    if (r == 0) {
      eof = true;
      return 0;
    }
    *out_side = false;
    return errno;
  }
};

// --then-copy: in -> out, and out -> in when both are sockets, until both
// directions have ended. Returns "" or what went wrong.
std::string copy_both(int in, int out, int timeout_ms, std::uint64_t* fwd, std::uint64_t* back) {
  Pump f{in, out};
  Pump b{out, in};
  const bool both = detail::fd_kind(in) == detail::FdKind::socket &&
                    detail::fd_kind(out) == detail::FdKind::socket;
  if (int e = f.open()) return std::string("pipe: ") + std::strerror(e);
  if (both) {
    if (int e = b.open()) return std::string("pipe: ") + std::strerror(e);
  } else {
    b.done = true;
  }
  std::string why;
  while (!(f.done && b.done)) {
    bool progress = false;
    for (Pump* p : {&f, &b}) {
      if (p->done) continue;
      bool out_side = false;
      int e = p->step(&out_side);
      if (e == 0) {
        progress = true;
        continue;
      }
      if (e == EAGAIN) continue;
      if (e == EINTR) continue;
      // Which peer failed: the forward pump reads the sender and writes
      // the receiver; the backward one the other way round.
      const bool fwd_dir = p == &f;
      const char* peer = fwd_dir ? (out_side ? "to the receiver" : "from the sender")
                                 : (out_side ? "back to the sender" : "from the receiver");
      why = std::string(peer) + ": " + std::strerror(e);
      *fwd = f.moved;
      *back = b.moved;
      return "after the stream, copying " + why;
    }
    if (progress) continue;
    pollfd pf[4];
    int n = 0;
    for (Pump* p : {&f, &b}) {
      if (p->done) continue;
      if (p->in_pipe) pf[n++] = {p->to, POLLOUT, 0};
      else if (!p->eof) pf[n++] = {p->from, POLLIN, 0};
    }
    if (n == 0) continue;
    int r = ::poll(pf, static_cast<nfds_t>(n), timeout_ms);
    if (r == 0) {
      *fwd = f.moved;
      *back = b.moved;
      return "after the stream, nothing moved either way for " + timeout_text(timeout_ms) + " (--timeout)";
    }
  }
  *fwd = f.moved;
  *back = b.moved;
  return why;
}

std::string paths_text(const Stager& st) {
  return "splice " + format_bytes(st.spliced()) + ", write " + format_bytes(st.written());
}

}  // namespace

ConvertOptions relay_convert_options(const RelayOptions& opt, const LegacyGuess& g) {
  ConvertOptions co = opt.conv;
  if (co.width == 0) co.width = g.width;
  if (co.guest == GuestType::unknown) co.guest = g.guest;
  co.xl = co.xl || g.xl;
  co.libvirt = co.libvirt || g.libvirt;
  co.libxl = opt.conv_format == RelayOptions::OutFormat::detect
                 ? (co.xl || co.libvirt)
                 : opt.conv_format == RelayOptions::OutFormat::libxl;
  if (g.xl && g.xl_libxl) co.xl = false;
  return co;
}

RelayResult relay(int in_fd, int out_fd, const RelayOptions& opt) {
  RelayResult res;
  // Larger pipes on either side: fewer, larger splices and far fewer
  // wake-ups of the processes at each end (a 64 KiB pipe fills in 16 pages).
  for (int fd : {in_fd, out_fd})
    if (detail::fd_kind(fd) == detail::FdKind::pipe) (void)::fcntl(fd, F_SETPIPE_SZ, static_cast<int>(kPipeWant));
  NonBlocking nb(out_fd);
  Stager st(opt.max_hold, out_fd, opt.timeout_ms);
  RelaySource in(in_fd, opt.timeout_ms);
  if (opt.io != IoMode::read) {
    std::string why;
    if (!in.use_uring(&why)) res.note = "io_uring unavailable (" + why + "): plain reads";
  }
  res.reader = std::string(in.kind());

  // Conversion: the legacy input is converted in a second thread into a
  // pipe, which the relay reads like any input. Detection only peeks, so a
  // v2/v3 stream under --convert is relayed from `in` unchanged.
  int conv_r = -1;
  std::thread converter;
  std::unique_ptr<RelaySource> conv_src;
  if (opt.convert && legacy_image(in)) {
    const LegacyGuess g = detect_legacy(in);
    const ConvertOptions co = relay_convert_options(opt, g);
    if (!g.ok && (co.width == 0 || co.guest == GuestType::unknown)) {
      res.error = Error{in.error() ? Errc::io : Errc::bad_header, in.pos(), kNoRecord, Layer::libxc, 0,
                        in.error() ? "read failed: " + in.error_text() : g.why};
      return res;
    }
    int p[2];
    if (::pipe2(p, O_CLOEXEC) != 0) {
      res.error = Error::io(0, "pipe", errno);
      return res;
    }
    (void)::fcntl(p[1], F_SETPIPE_SZ, 1 << 20);
    conv_r = p[0];
    const int conv_w = p[1];
    res.converted = true;
    converter = std::thread([&res, &in, co, conv_w] {
      {
        Sink sink(conv_w);
        res.conv = convert_legacy(in, sink, co);
      }
      ::close(conv_w);  // the relay sees the end of the converted stream
    });
    conv_src = std::make_unique<RelaySource>(conv_r, -1);
    conv_src->set_stager(&st);
  } else {
    in.set_stager(&st);
  }
  RelaySource& src = conv_src ? *conv_src : in;

  Forwarder fw(st, src, opt.stats);
  VerifyOptions vo = opt.verify;
  vo.observer = &fw;
  Error e = verify(src, vo, res.stats);
  if (!e && (src.failed() || st.held() > 0)) {
    // A verdict reached over a failed hold (the last record was refused)
    // or with bytes left unchecked is no verdict.
    e = Error::io(src.pos(), "read failed: " + src.error_text());
  }
  // What passed goes out even when a later record failed: the receiver
  // gets the whole verified prefix.
  fw.drain();
  const int src_err = src.error();

  if (res.converted) {
    // The converter's tail after the stream's END (a libxc output's raw
    // qemu record) goes on unchecked, as `xsr convert` writes it.
    while (!e && !st.out_error()) {
      int err = 0;
      bool frag = false;
      // Unchecked, so not held: any piece size the hold allows will do.
      std::int64_t r = st.splice_in(conv_r, std::min<std::uint64_t>(kChunk, opt.max_hold), &err, &frag);
      if (r < 0 && frag) continue;
      if (r < 0 && err != ECANCELED)
        e = Error::io(src.pos(), "read failed", err);
      if (r <= 0) break;
      st.mark();
    }
    if (!e) fw.drain();
    // Closing the read end stops a converter the relay left behind (EPIPE).
    conv_src.reset();
    ::close(conv_r);
    converter.join();
    if (res.conv.error) {
      const bool our_close = (e || st.out_error()) &&
                             res.conv.error.caused_by(EPIPE);
      if (!our_close) {
        e = res.conv.error;
        e.detail = "legacy stream: " + e.detail;
      }
    }
  }
  res.in_bytes = in.pos();
  res.out_bytes = st.sent();
  res.paths = paths_text(st);
  if (st.out_error()) {
    // The output's failure is the cause; what the verifier made of the
    // input after it was cut short does not matter.
    res.out_error = output_error_text(st.out_error(), opt.timeout_ms);
    if (e.code == Errc::io && src_err == ECANCELED) e = Error{};
    res.error = e;
    return res;
  }
  res.error = e;
  if (e || !opt.then_copy) return res;
  NonBlocking nb_in(in_fd);  // out_fd still is
  std::string why = copy_both(in_fd, out_fd, opt.timeout_ms, &res.copied_forward, &res.copied_back);
  if (!why.empty()) res.out_error = why;
  return res;
}

}  // namespace xsr
