#include "xsr/sink.h"

#include <fcntl.h>
#include <sys/uio.h>
#include <time.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "xsr/sys.h"
#include "xsr/units.h"

namespace xsr {

Sink::Sink(int fd) : fd_(fd) {
  buf_.reserve(1 << 20);
  if (fd_caps(fd).has(IoCaps::pipe)) (void)::fcntl(fd, F_SETPIPE_SZ, 1 << 20);
}
Sink::~Sink() = default;

void Sink::write(const void* p, std::size_t n) {
  auto* b = static_cast<const std::byte*>(p);
  buf_.insert(buf_.end(), b, b + n);
  if (tap_) tap_->data(b, n);
  if (buf_.size() >= (1 << 20)) flush();
}

void Sink::zeros(std::size_t n) {
  static const std::byte kZeros[4096] = {};
  while (n > 0) {
    const std::size_t k = std::min<std::size_t>(n, sizeof kZeros);
    write(kZeros, k);
    n -= k;
  }
}

void Sink::fail(int e) {
  if (!err_) err_ = Error::output(written_, "write failed", e);
}

void Sink::set_rate(std::uint64_t rate) {
  rate_ = rate;
  rate_start_ns_ = rate ? mono_ns() : 0;
  rate_base_ = written_;
}

// Sleeps until writing n more bytes keeps the average since set_rate
// within the rate.
void Sink::pace(std::size_t n) {
  const long double due_s =
      static_cast<long double>(written_ - rate_base_ + n) / static_cast<long double>(rate_);
  const std::uint64_t due = rate_start_ns_ + static_cast<std::uint64_t>(due_s * 1e9L);
  for (std::uint64_t now = mono_ns(); now < due; now = mono_ns()) {
    const std::uint64_t d = due - now;
    timespec ts{static_cast<time_t>(d / 1000000000ull), static_cast<long>(d % 1000000000ull)};
    ::nanosleep(&ts, nullptr);
  }
}

const Error& Sink::flush() { return write_out(nullptr, 0); }

const Error& Sink::write_area(const std::byte* p, std::size_t n) {
  write_out(p, n);
  if (tap_ && !err_) tap_->hole(n);
  return err_;
}

// Writes the buffer, then n bytes at tail: one writev while both are left
// (one write for one piece), pieces of at most rate/20 bytes when paced.
const Error& Sink::write_out(const std::byte* tail, std::size_t n) {
  if (err_) return err_;
  iovec iov[2] = {{buf_.data(), buf_.size()}, {const_cast<std::byte*>(tail), n}};
  iovec* v = iov;
  int cnt = 2;
  std::size_t from_buf = 0;  // buffered bytes written
  while (cnt > 0) {
    if (v[0].iov_len == 0) {
      ++v;
      --cnt;
      continue;
    }
    iovec paced[2];
    const iovec* w = v;
    int wc = cnt;
    if (rate_) {
      const std::size_t lim = static_cast<std::size_t>(std::max<std::uint64_t>(rate_ / 20, 1));
      std::size_t k = 0;
      for (wc = 0; wc < cnt && k < lim; ++wc) {
        paced[wc] = v[wc];
        paced[wc].iov_len = std::min(paced[wc].iov_len, lim - k);
        k += paced[wc].iov_len;
      }
      pace(k);
      w = paced;
    }
    ssize_t r = wc == 1 ? sys::write(fd_, w[0].iov_base, w[0].iov_len) : sys::writev(fd_, w, wc);
    if (r < 0 && errno == EAGAIN) {
      // A non-blocking descriptor handed to us: wait until it drains.
      const int e = sys::wait_fd(fd_, POLLOUT);
      if (e == 0) continue;
      errno = e;
    }
    if (r <= 0) {
      fail(r < 0 ? errno : EIO);
      // What was written of the buffer is gone from it: bytes() stays
      // what was handed to the sink.
      buf_.erase(buf_.begin(), buf_.begin() + static_cast<std::ptrdiff_t>(from_buf));
      return err_;
    }
    written_ += static_cast<std::uint64_t>(r);
    if (progress_) progress_(written_);
    for (std::size_t left = static_cast<std::size_t>(r); left > 0;) {
      const std::size_t k = std::min(left, v[0].iov_len);
      if (v == iov) from_buf += k;
      v[0].iov_base = static_cast<char*>(v[0].iov_base) + k;
      v[0].iov_len -= k;
      left -= k;
      if (v[0].iov_len == 0) {
        ++v;
        --cnt;
      }
    }
  }
  buf_.clear();
  return err_;
}

std::uint64_t Sink::forward_checked(Source& src, std::uint64_t n) {
  if (!tap_) return forward(src, n);
  std::uint64_t done = 0;
  while (done < n) {
    const std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(n - done, kMaxPeek));
    Bytes b = src.peek(want);
    const std::size_t k = std::min(want, b.size());
    if (k == 0) break;
    write(b.data(), k);  // buffered, and to the tap
    src.consume(k);
    done += k;
  }
  return done;
}

std::uint64_t Sink::forward(Source& src, std::uint64_t n) {
  if (n == 0) return 0;
  if (flush()) return 0;
  const char* how = nullptr;
  int out_err = 0;
  std::uint64_t moved = src.forward(n, fd_, out_err, how);
  written_ += moved;
  if (out_err) fail(out_err);
  if (tap_) tap_->hole(moved);
  count_path(how ? how : "write", moved);
  return moved;
}

void Sink::count_path(const char* how, std::uint64_t n) {
  auto it = std::find_if(paths_.begin(), paths_.end(), [&](const auto& p) { return p.first == how; });
  if (it == paths_.end()) paths_.emplace_back(how, n);
  else it->second += n;
}

Error Sink::seek(std::uint64_t off, const char* what) {
  if (flush()) return err_;
  if (sys::lseek(fd_, static_cast<off_t>(off), SEEK_SET) < 0) return Error::output(0, what, errno);
  return {};
}

Error Sink::write_at(std::uint64_t off, const void* p, std::size_t n, const char* what) {
  if (flush()) return err_;
  if (int e = sys::pwrite_all(fd_, p, n, static_cast<off_t>(off))) return Error::output(0, what, e);
  return {};
}

Error Sink::truncate(std::uint64_t len, const char* what) {
  if (flush()) return err_;
  if (sys::ftruncate(fd_, static_cast<off_t>(len)) != 0) return Error::output(0, what, errno);
  return {};
}

}  // namespace xsr
