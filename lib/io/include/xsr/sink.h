// Output: the one Sink every writer uses (the converter, gen, extract): a
// buffered writer to a descriptor with bulk paths from a Source
// (copy_file_range, splice, sendfile), a prepared area written without a
// copy (gen's page bodies, one writev with the buffered headers), pacing,
// and positioned writes for outputs laid out by offset (extract).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "xsr/error.h"
#include "xsr/source.h"
#include "xsr/tap.h"

namespace xsr {

class Sink {
 public:
  // A pipe output is enlarged to 1 MiB (a 64 KiB pipe holds each splice to
  // 16 pages and halves the converter's throughput).
  explicit Sink(int fd);
  ~Sink();
  Sink(const Sink&) = delete;
  Sink& operator=(const Sink&) = delete;

  // Buffered; written out once 1 MiB is buffered, or at flush().
  void write(const void* p, std::size_t n);
  template <typename T>
  void put(const T& v) {
    write(&v, sizeof v);
  }
  void zeros(std::size_t n);
  // Writes what is buffered. Returns the sink's error: the first failed
  // write ("write failed: <strerror>", cause its errno); after it nothing
  // more is written.
  const Error& flush();
  // Writes what is buffered and then n bytes at p, in one writev, without
  // copying p (a prepared area of page bodies). A tap sees p as a hole (a
  // verifier skips page bodies).
  const Error& write_area(const std::byte* p, std::size_t n);
  // Moves n bytes from src's cursor to the output (flushing first). Returns
  // bytes moved; fewer than n when the input ended or on an error.
  std::uint64_t forward(Source& src, std::uint64_t n);
  // Like forward, for bytes a verifier must see (record bodies it checks):
  // with a tap they pass through user space, else straight through.
  std::uint64_t forward_checked(Source& src, std::uint64_t n);
  // Every byte written from now on also goes to `tap` (not owned).
  void set_tap(VerifyTap* tap) { tap_ = tap; }

  // Pacing: from now on the average since this call stays within `rate`
  // bytes a second, in writes of at most max(rate/20, 1) bytes; 0: none.
  void set_rate(std::uint64_t rate);
  // Called after each write with the bytes written so far.
  void set_progress(std::function<void(std::uint64_t written)> fn) { progress_ = std::move(fn); }

  // A regular file laid out by offset (flushes first; `what` begins the
  // error's detail, ": <strerror>" follows): where the next bulk bytes go,
  // bytes written at an offset, the file's size.
  Error seek(std::uint64_t off, const char* what);
  Error write_at(std::uint64_t off, const void* p, std::size_t n, const char* what);
  Error truncate(std::uint64_t len, const char* what);
  // Bytes a caller moved to fd() itself by path `how` (extract's pages),
  // counted in paths().
  void count_path(const char* how, std::uint64_t n);

  int fd() const { return fd_; }
  // Written or buffered.
  std::uint64_t bytes() const { return written_ + buf_.size(); }
  // Written (reached the descriptor).
  std::uint64_t written() const { return written_; }
  const Error& error() const { return err_; }
  // Bytes moved by each bulk path ("copy_file_range", "splice", ...).
  const std::vector<std::pair<std::string, std::uint64_t>>& paths() const { return paths_; }

 private:
  const Error& write_out(const std::byte* tail, std::size_t n);
  void pace(std::size_t n);
  void fail(int e);

  int fd_;
  Error err_;
  std::uint64_t written_ = 0;
  std::vector<std::byte> buf_;
  std::vector<std::pair<std::string, std::uint64_t>> paths_;
  VerifyTap* tap_ = nullptr;
  std::uint64_t rate_ = 0, rate_start_ns_ = 0, rate_base_ = 0;
  std::function<void(std::uint64_t)> progress_;
};

}  // namespace xsr
