// Building blocks of the descriptor-backed sources, private to lib/io (the
// stages see only source.h, sink.h and the named engines' headers): a
// buffered source an engine subclasses, the drain that discards bytes in
// the kernel, the splice loop between stream descriptors, and the
// factories of the engines, one per file:
//   source_pread.cc  source_mmap.cc  source_read.cc  source_uring.cc
//   source_memory.cc  decompress.cc  hold.cc
#pragma once

#include <memory>

#include "xsr/aligned.h"
#include "xsr/error.h"
#include "xsr/source.h"

namespace xsr::detail {

// A source whose bytes pass through one fixed buffer: subclasses say how to
// fill it and how to discard bytes in bulk.
class BufferedSource : public Source {
 public:
  static constexpr std::size_t kCapacity = kMaxPeek + (64 << 10);

  BufferedSource();
  Bytes peek(std::size_t n) override;
  void consume(std::size_t n) override;
  std::uint64_t skip(std::uint64_t n) override;
  std::uint64_t pos() const override { return pos_; }
  std::uint64_t forward(std::uint64_t n, int out, int& out_error, const char*& how) override;

 protected:
  // Reads at least `need` bytes (unless the input ends) and at most `room`
  // into dst. Returns bytes read, or -1 with error_ set.
  virtual std::int64_t fill(std::byte* dst, std::size_t need, std::size_t room) = 0;
  // Discards n bytes past the buffered ones; returns how many went.
  virtual std::uint64_t discard(std::uint64_t n) = 0;
  // Moves n bytes past the buffered ones to `out`; the default reads them
  // through the buffer. Same contract as Source::forward.
  virtual std::uint64_t move_out(std::uint64_t n, int out, int& out_error, const char*& how);
  // Can the k buffered bytes be read again by move_out (a file)? Then the
  // source rewinds by k and returns true.
  virtual bool give_back(std::size_t) { return false; }

  std::byte* buf() { return buf_.get(); }
  std::size_t buffered() const { return end_ - beg_; }

 private:
  AlignedBuf buf_;
  std::size_t beg_ = 0, end_ = 0;
  std::uint64_t pos_ = 0;
};

// Blocks SIGPIPE in the calling thread: a helper thread's write to a pipe
// whose reader left is then a plain EPIPE, and the process lives on.
void block_sigpipe();

// Errors of a transfer that belong to its output rather than its input.
bool output_errno(int e);

// Writes all of n bytes, waiting out a non-blocking output; 0 or an errno.
int write_out(int out, const std::byte* p, std::size_t n);

// Discards bytes of a pipe, socket or other stream descriptor in the
// kernel: spliced to /dev/null (a socket through a private pipe), or read
// into `scratch` where splice cannot take the input.
struct Drain {
  int fd = -1;
  IoCaps caps;  // of fd
  int devnull = -1;
  int pipe_r = -1, pipe_w = -1;
  std::byte* scratch = nullptr;  // for inputs that splice cannot take
  std::size_t scratch_len = 0;

  ~Drain();
  // Discards n bytes; returns how many went (fewer: the input ended, or
  // failed with *err set).
  std::uint64_t run(std::uint64_t n, int* err);
  // Opens /dev/null and the private pipe on first use; 0 or an errno.
  int ensure_devnull();
  int ensure_pipe();
};

// How a splice_stream ended short of n bytes.
struct SpliceEnd {
  int in_err = 0;            // the input failed
  int out_err = 0;           // the output failed
  bool unsupported = false;  // splice cannot serve this pair (nothing moved)
};

// Moves up to n bytes from the pipe or socket `drain.fd` to `out` by
// splice (through the drain's private pipe when neither end is a pipe).
// Returns bytes moved; `end` says why it stopped short.
std::uint64_t splice_stream(Drain& drain, std::uint64_t n, int out, IoCaps out_caps, SpliceEnd& end);

// The engines (one per file). Sources on a descriptor close it when owned.
std::unique_ptr<Source> make_pread_source(int fd, bool owned, std::uint64_t start, std::uint64_t size);
std::unique_ptr<Source> make_mmap_source(int fd, bool owned, std::uint64_t start, std::uint64_t size);
std::unique_ptr<Source> make_read_source(int fd, bool owned, IoCaps caps);
// Null with the reason when io_uring cannot be had (the descriptor then
// stays open for the fallback source).
Result<std::unique_ptr<Source>> make_uring_source(int fd, bool owned, IoCaps caps);

}  // namespace xsr::detail
