// Pipes and sockets through io_uring: reads into registered (fixed) buffers,
// page bodies spliced to /dev/null inside the kernel, and the read of the
// next record header submitted linked behind the body's splice, so one
// io_uring_enter moves a whole record on.
#include <fcntl.h>
#include <liburing.h>
#include <poll.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "io_engine.h"
#include "xsr/sys.h"

namespace xsr::detail {
namespace {

constexpr std::size_t kPrefetchLen = 4096;
constexpr unsigned kSpliceChunk = 1u << 20;

class UringSource final : public BufferedSource {
 public:
  UringSource(int fd, IoCaps caps)
      : fd_(fd), is_socket_(caps.has(IoCaps::socket)), small_(alloc_aligned(kPrefetchLen)) {}
  void set_owned(bool owned) { owned_ = owned; }

  ~UringSource() override {
    if (ring_ok_) io_uring_queue_exit(&ring_);
    if (owned_) ::close(fd_);
  }

  int init() {
    int r = io_uring_queue_init(8, &ring_, 0);
    if (r < 0) return -r;
    ring_ok_ = true;
    iovec iov[2] = {{buf(), kCapacity}, {small_.get(), kPrefetchLen}};
    r = io_uring_register_buffers(&ring_, iov, 2);
    if (r < 0) return -r;
    drain_.fd = fd_;
    drain_.caps.bits = IoCaps::splice | (is_socket_ ? IoCaps::socket : IoCaps::pipe);
    if (int e = drain_.ensure_devnull()) return e;
    if (is_socket_) {
      if (int e = drain_.ensure_pipe()) return e;
    }
    return 0;
  }

  std::string_view kind() const override { return "io_uring"; }

  void hint(std::uint64_t n) override { guaranteed_end_ = std::max(guaranteed_end_, pos() + n); }

 protected:
  std::int64_t fill(std::byte* dst, std::size_t need, std::size_t) override {
    std::size_t got = take_prefetched(dst, need);
    while (got < need) {
      io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
      // Exact: asks for no more than the caller needs.
      io_uring_prep_read_fixed(sqe, fd_, dst + got, static_cast<unsigned>(need - got),
                               static_cast<std::uint64_t>(-1), 0);
      sqe->user_data = 1;
      int r = complete(1);
      if (r == -EINTR || r == -EAGAIN) continue;
      if (r < 0) {
        error_ = -r;
        return -1;
      }
      if (r == 0) break;
      got += static_cast<std::size_t>(r);
    }
    return static_cast<std::int64_t>(got);
  }

  std::uint64_t discard(std::uint64_t n) override {
    std::uint64_t done = 0;
    const std::uint64_t end_pos = pos() + n;  // pos() has not moved yet
    for (;;) {
      // Prefetched bytes are the next bytes of the stream whatever the
      // splice before them moved, so they are used up first.
      done +=
          take_prefetched(nullptr, static_cast<std::size_t>(std::min<std::uint64_t>(n - done, kPrefetchLen)));
      if (done == n) break;
      unsigned len = static_cast<unsigned>(std::min<std::uint64_t>(n - done, kSpliceChunk));
      bool last = done + len == n;
      // The header after this body, when the caller vouched for it.
      std::size_t next = 0;
      if (last && guaranteed_end_ > end_pos)
        next = static_cast<std::size_t>(std::min<std::uint64_t>(guaranteed_end_ - end_pos, 8));
      int moved = is_socket_ ? splice_socket(len, next) : splice_pipe(len, next);
      if (moved < 0) {
        if (moved == -EINTR || moved == -EAGAIN) continue;
        error_ = -moved;
        return done;
      }
      if (moved == 0) return done;
      done += static_cast<std::uint64_t>(moved);
    }
    return done;
  }

  // Page bodies handed on (convert, relay): spliced between descriptors by
  // plain splice(2) calls, after any prefetched bytes.
  std::uint64_t move_out(std::uint64_t n, int out, int& out_error, const char*& how) override {
    std::uint64_t done = 0;
    if (pf_len_ > pf_off_) {
      std::byte tmp[kPrefetchLen];
      std::size_t k =
          take_prefetched(tmp, static_cast<std::size_t>(std::min<std::uint64_t>(n, kPrefetchLen)));
      for (std::size_t w = 0; w < k;) {
        ssize_t r = sys::write(out, tmp + w, k - w);
        if (r < 0 && errno == EAGAIN && sys::wait_fd(out, POLLOUT) == 0) continue;
        if (r <= 0) {
          out_error = r < 0 ? errno : EIO;
          return 0;
        }
        w += static_cast<std::size_t>(r);
      }
      done = k;
    }
    if (done == n) return done;
    SpliceEnd end;
    how = "splice";
    std::uint64_t d = splice_stream(drain_, n - done, out, fd_caps(out), end);
    if (end.in_err) error_ = end.in_err;
    if (end.out_err) out_error = end.out_err;
    if (end.unsupported) return done + BufferedSource::move_out(n - done, out, out_error, how);
    return done + d;
  }

 private:
  // Copies up to `want` prefetched bytes to dst (or drops them when dst is
  // null); returns how many.
  std::size_t take_prefetched(std::byte* dst, std::size_t want) {
    std::size_t k = std::min(want, pf_len_ - pf_off_);
    if (k && dst) std::memcpy(dst, small_.get() + pf_off_, k);
    pf_off_ += k;
    if (pf_off_ == pf_len_) pf_off_ = pf_len_ = 0;
    return k;
  }

  void queue_prefetch(std::size_t next) {
    io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
    io_uring_prep_read_fixed(sqe, fd_, small_.get(), static_cast<unsigned>(next),
                             static_cast<std::uint64_t>(-1), 1);
    sqe->user_data = 2;
  }

  // Records a completed prefetch; a cancelled one (the splice before it came
  // up short) is simply not there.
  void reap_prefetch(int res) {
    if (res > 0) {
      pf_off_ = 0;
      pf_len_ = static_cast<std::size_t>(res);
    }
  }

  int splice_pipe(unsigned len, std::size_t next) {
    io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
    io_uring_prep_splice(sqe, fd_, -1, drain_.devnull, -1, len, SPLICE_F_MOVE);
    sqe->user_data = 1;
    if (next) {
      sqe->flags |= IOSQE_IO_LINK;
      queue_prefetch(next);
    }
    return complete(next ? 2 : 1);
  }

  int splice_socket(unsigned len, std::size_t next) {
    io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
    io_uring_prep_splice(sqe, fd_, -1, drain_.pipe_w, -1, len, SPLICE_F_MOVE);
    sqe->user_data = 1;
    int in = complete(1);
    if (in <= 0) return in;
    // Out of our private pipe again; only then is the next header read.
    unsigned left = static_cast<unsigned>(in);
    while (left > 0) {
      sqe = io_uring_get_sqe(&ring_);
      io_uring_prep_splice(sqe, drain_.pipe_r, -1, drain_.devnull, -1, left, SPLICE_F_MOVE);
      sqe->user_data = 1;
      bool link = next && in == static_cast<int>(len);
      if (link) {
        sqe->flags |= IOSQE_IO_LINK;
        queue_prefetch(next);
      }
      int out = complete(link ? 2 : 1);
      if (out <= 0) return out < 0 ? out : -EIO;
      left -= static_cast<unsigned>(out);
    }
    return in;
  }

  // Submits what is queued and waits for `count` completions; returns the
  // result of the main request (user_data 1).
  int complete(int count) {
    int main_res = -EIO;
    // A signal during the wait (EINTR) must not end it early: the request
    // is still in flight, and issuing it again would read twice. What the
    // interrupted enter did not submit stays queued for the next one.
    int r;
    do {
      r = io_uring_submit_and_wait(&ring_, static_cast<unsigned>(count));
    } while (r == -EINTR);
    if (r < 0) return r;
    for (int i = 0; i < count; ++i) {
      io_uring_cqe* cqe;
      do {
        r = io_uring_wait_cqe(&ring_, &cqe);
      } while (r == -EINTR);
      if (r < 0) return r;
      if (cqe->user_data == 2) reap_prefetch(cqe->res);
      else main_res = cqe->res;
      io_uring_cqe_seen(&ring_, cqe);
    }
    return main_res;
  }

  int fd_;
  bool owned_ = false;
  bool is_socket_;
  bool ring_ok_ = false;
  io_uring ring_{};
  AlignedBuf small_;
  std::size_t pf_off_ = 0, pf_len_ = 0;
  std::uint64_t guaranteed_end_ = 0;
  Drain drain_;
};

}  // namespace

Result<std::unique_ptr<Source>> make_uring_source(int fd, bool owned, IoCaps caps) {
  auto s = std::make_unique<UringSource>(fd, caps);
  if (int e = s->init()) {
    Error why = Error::at(Errc::io, 0, std::strerror(e));
    why.cause = e;
    return why;  // the descriptor stays open for the fallback source
  }
  s->set_owned(owned);
  return std::unique_ptr<Source>(std::move(s));
}

}  // namespace xsr::detail
