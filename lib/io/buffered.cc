// The building blocks of io_engine.h: BufferedSource, the drain, the
// splice loop between stream descriptors, fd_caps, and the default
// Source::forward (straight from a window).
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "io_engine.h"
#include "xsr/sys.h"

namespace xsr {

IoCaps fd_caps(int fd) {
  struct stat st;
  IoCaps c;
  if (::fstat(fd, &st) != 0) return c;
  if (S_ISREG(st.st_mode)) c.bits = IoCaps::file | IoCaps::seekable | IoCaps::mappable | IoCaps::splice;
  else if (S_ISBLK(st.st_mode)) c.bits = IoCaps::seekable | IoCaps::mappable | IoCaps::splice;
  else if (S_ISFIFO(st.st_mode)) c.bits = IoCaps::pipe | IoCaps::splice;
  else if (S_ISSOCK(st.st_mode)) c.bits = IoCaps::socket | IoCaps::splice;
  return c;
}

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

namespace detail {

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

bool output_errno(int e) {
  return e == EPIPE || e == ENOSPC || e == EDQUOT || e == EFBIG || e == ECONNRESET || e == EBADF;
}

int write_out(int out, const std::byte* p, std::size_t n) {
  while (n > 0) {
    ssize_t w = sys::write(out, p, n);
    if (w < 0 && errno == EAGAIN) {
      if (int e = sys::wait_fd(out, POLLOUT)) return e;
      continue;
    }
    if (w < 0) return errno;
    if (w == 0) return EIO;
    p += w;
    n -= static_cast<std::size_t>(w);
  }
  return 0;
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
  const bool is_pipe = caps.has(IoCaps::pipe);
  bool use_splice =
      (is_pipe || caps.has(IoCaps::socket)) && ensure_devnull() == 0 && (is_pipe || ensure_pipe() == 0);
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
      const int e = sys::wait_fd(fd, POLLIN);
      if (e == 0) continue;
      errno = e;
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

std::uint64_t splice_stream(Drain& d, std::uint64_t n, int out, IoCaps out_caps, SpliceEnd& end) {
  std::uint64_t done = 0;
  const bool direct = d.caps.has(IoCaps::pipe) || out_caps.has(IoCaps::pipe);
  if (!direct && d.ensure_pipe() != 0) {
    end.unsupported = true;
    return 0;
  }
  while (done < n) {
    std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(n - done, 1 << 20));
    ssize_t r = sys::splice(d.fd, nullptr, direct ? out : d.pipe_w, nullptr, want, SPLICE_F_MOVE);
    if (r < 0 && errno == EAGAIN) {
      // Either end may be the one not ready: wait for both.
      pollfd p[2] = {{d.fd, POLLIN, 0}, {direct ? out : d.pipe_w, POLLOUT, 0}};
      (void)sys::poll(p, 2, -1);
      continue;
    }
    if (r < 0) {
      if (done == 0 && (errno == EINVAL || errno == ENOSYS)) {
        end.unsupported = true;
      } else if (output_errno(errno) && direct) {
        end.out_err = errno;
      } else {
        end.in_err = errno;
      }
      return done;
    }
    if (r == 0) return done;
    if (!direct) {
      std::size_t left = static_cast<std::size_t>(r);
      while (left > 0) {
        ssize_t w = sys::splice(d.pipe_r, nullptr, out, nullptr, left, SPLICE_F_MOVE);
        if (w < 0 && errno == EAGAIN) {
          if (int e = sys::wait_fd(out, POLLOUT)) {
            end.out_err = e;
            return done;
          }
          continue;
        }
        if (w <= 0) {
          end.out_err = w < 0 ? errno : EIO;
          return done;
        }
        left -= static_cast<std::size_t>(w);
      }
    }
    done += static_cast<std::uint64_t>(r);
  }
  return done;
}

}  // namespace detail
}  // namespace xsr
