#include "xsr/sink.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstring>

#include "xsr/sys.h"

namespace xsr {

// ---- Sink -----------------------------------------------------------------

Sink::Sink(int fd) : fd_(fd) {
  buf_.reserve(1 << 20);
  struct stat st;
  if (::fstat(fd, &st) == 0 && S_ISFIFO(st.st_mode)) (void)::fcntl(fd, F_SETPIPE_SZ, 1 << 20);
}
Sink::~Sink() = default;

void Sink::write(const void* p, std::size_t n) {
  auto* b = static_cast<const std::byte*>(p);
  buf_.insert(buf_.end(), b, b + n);
  if (tap_) tap_->data(b, n);
  if (buf_.size() >= (1 << 20)) flush();
}

void Sink::zeros(std::size_t n) {
  static const std::byte kZeros[8] = {};
  while (n > 0) {
    const std::size_t k = std::min<std::size_t>(n, sizeof kZeros);
    write(kZeros, k);
    n -= k;
  }
}

// ---- VerifyTap ------------------------------------------------------------

constexpr std::uint64_t kTapLimit = 16 << 20;

VerifyTap::VerifyTap() = default;
VerifyTap::~VerifyTap() = default;

void VerifyTap::data(const std::byte* p, std::size_t n) {
  if (n == 0) return;
  std::unique_lock lk(mu_);
  cv_.wait(lk, [&] { return reader_done_ || queued_ < kTapLimit; });
  if (reader_done_) return;
  // Always a new segment: the reader may hold a view into the last one
  // (a deque keeps references to its elements across push_back).
  q_.push_back(Seg{std::vector<std::byte>(p, p + n), 0, 0});
  queued_ += n;
  cv_.notify_all();
}

void VerifyTap::hole(std::uint64_t n) {
  if (n == 0) return;
  std::lock_guard lk(mu_);
  if (reader_done_) return;
  if (!q_.empty() && q_.back().bytes.empty()) q_.back().hole += n;
  else q_.push_back(Seg{{}, n, 0});
  cv_.notify_all();
}

void VerifyTap::close() {
  std::lock_guard lk(mu_);
  closed_ = true;
  cv_.notify_all();
}

void VerifyTap::reader_done() {
  std::lock_guard lk(mu_);
  reader_done_ = true;
  q_.clear();
  queued_ = 0;
  cv_.notify_all();
}

Bytes VerifyTap::peek(std::size_t n) {
  std::unique_lock lk(mu_);
  drop_consumed();
  for (;;) {
    // The data at the head, up to the first hole: more cannot arrive in
    // front of a hole, so a short view is then final (as at the end).
    std::size_t avail = 0;
    bool hole_after = false;
    for (const Seg& sg : q_) {
      if (sg.bytes.empty()) {
        hole_after = true;
        break;
      }
      avail += sg.bytes.size() - sg.off;
      if (avail >= n) break;
    }
    if (avail >= n || hole_after || closed_) {
      const Seg* f = q_.empty() ? nullptr : &q_.front();
      if (f && !f->bytes.empty() && f->bytes.size() - f->off >= std::min(n, avail))
        return {f->bytes.data() + f->off, f->bytes.size() - f->off};
      joined_.clear();
      for (const Seg& sg : q_) {
        if (sg.bytes.empty() || joined_.size() >= n) break;
        joined_.insert(joined_.end(), sg.bytes.begin() + static_cast<std::ptrdiff_t>(sg.off), sg.bytes.end());
      }
      return {joined_.data(), joined_.size()};
    }
    cv_.wait(lk);
  }
}

void VerifyTap::drop_consumed() {
  while (!q_.empty() && !q_.front().bytes.empty() && q_.front().off == q_.front().bytes.size()) q_.pop_front();
}

void VerifyTap::consume(std::size_t n) {
  // Offsets only: the last view stays valid until the next peek or skip,
  // which drop the used segments.
  std::lock_guard lk(mu_);
  pos_ += n;
  for (Seg& f : q_) {
    if (n == 0 || f.bytes.empty()) break;
    const std::size_t k = std::min(n, f.bytes.size() - f.off);
    f.off += k;
    n -= k;
    queued_ -= k;
  }
  cv_.notify_all();
}

std::uint64_t VerifyTap::skip(std::uint64_t n) {
  std::unique_lock lk(mu_);
  std::uint64_t done = 0;
  while (done < n) {
    drop_consumed();
    cv_.wait(lk, [&] {
      drop_consumed();
      return !q_.empty() || closed_;
    });
    if (q_.empty()) break;
    Seg& f = q_.front();
    if (f.bytes.empty()) {
      const std::uint64_t k = std::min(n - done, f.hole);
      f.hole -= k;
      done += k;
      if (f.hole == 0) q_.pop_front();
    } else {
      const std::size_t k = static_cast<std::size_t>(std::min<std::uint64_t>(n - done, f.bytes.size() - f.off));
      f.off += k;
      done += k;
      queued_ -= k;
      if (f.off == f.bytes.size()) q_.pop_front();
    }
  }
  pos_ += done;
  cv_.notify_all();
  return done;
}

bool Sink::flush() {
  if (err_) return false;
  std::size_t off = 0;
  while (off < buf_.size()) {
    ssize_t w = sys::write(fd_, buf_.data() + off, buf_.size() - off);
    if (w < 0 && errno == EAGAIN) {
      // A non-blocking descriptor handed to us: wait until it drains.
      struct pollfd p {fd_, POLLOUT, 0};
      if (::poll(&p, 1, -1) >= 0 || errno == EINTR) continue;
    }
    if (w <= 0) {
      err_ = w < 0 ? errno : EIO;
      return false;
    }
    off += static_cast<std::size_t>(w);
  }
  bytes_ += buf_.size();
  buf_.clear();
  return true;
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
  if (!flush()) return 0;
  const char* how = nullptr;
  int out_err = 0;
  std::uint64_t moved = src.forward(n, fd_, out_err, how);
  if (out_err) err_ = out_err;
  bytes_ += moved;
  if (tap_) tap_->hole(moved);
  std::string h = how ? how : "write";
  auto it = std::find_if(paths_.begin(), paths_.end(), [&](const auto& p) { return p.first == h; });
  if (it == paths_.end()) paths_.emplace_back(h, moved);
  else it->second += moved;
  return moved;
}

}  // namespace xsr
