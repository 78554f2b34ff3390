#include "xsr/tap.h"

#include <algorithm>

namespace xsr {

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
  while (!q_.empty() && !q_.front().bytes.empty() && q_.front().off == q_.front().bytes.size())
    q_.pop_front();
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
      const std::size_t k =
          static_cast<std::size_t>(std::min<std::uint64_t>(n - done, f.bytes.size() - f.off));
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

}  // namespace xsr
