// Building blocks of the descriptor-backed sources: a buffered source an
// engine subclasses, draining and splicing helpers, descriptor kinds.
// For I/O engines (lib/io and the relay's holding reader), not for stages.
#pragma once

#include <cstdlib>
#include <memory>

#include "xsr/source.h"

namespace xsr::detail {

// Page-aligned heap memory, freed with free().
struct FreeDeleter {
  void operator()(std::byte* p) const { std::free(p); }
};
using AlignedBuf = std::unique_ptr<std::byte, FreeDeleter>;
AlignedBuf alloc_aligned(std::size_t n);

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

 protected:
  // Reads at least `need` bytes (unless the input ends) and at most `room`
  // into dst. Returns bytes read, or -1 with error_ set.
  virtual std::int64_t fill(std::byte* dst, std::size_t need, std::size_t room) = 0;
  // Discards n bytes past the buffered ones; returns how many went.
  virtual std::uint64_t discard(std::uint64_t n) = 0;
  // Moves n bytes past the buffered ones to `out`; the default reads them
  // through the buffer.
  virtual std::uint64_t move_out(std::uint64_t n, int out, int& out_error, const char*& how);
  // Can the k buffered bytes be read again by move_out (a file)? Then the
  // source rewinds by k and returns true.
  virtual bool give_back(std::size_t) { return false; }

 public:
  std::uint64_t forward(std::uint64_t n, int out, int& out_error, const char*& how) override;

 protected:

  std::byte* buf() { return buf_.get(); }
  std::size_t buffered() const { return end_ - beg_; }

 private:
  AlignedBuf buf_;
  std::size_t beg_ = 0, end_ = 0;
  std::uint64_t pos_ = 0;
};

// Splices or reads n bytes from a pipe, socket or other stream fd into
// nowhere. `devnull` and `pipe_fds` are lazily opened by the caller's
// helper. Returns bytes discarded; sets *err on failure.
struct Drain {
  int fd = -1;
  bool is_pipe = false;
  bool is_socket = false;
  int devnull = -1;
  int pipe_r = -1, pipe_w = -1;
  std::byte* scratch = nullptr;  // for inputs that splice cannot take
  std::size_t scratch_len = 0;

  ~Drain();
  std::uint64_t run(std::uint64_t n, int* err);
  int ensure_devnull();
  int ensure_pipe();
};

// Kind of an output descriptor, for choosing how bytes reach it.
enum class FdKind { file, pipe, socket, other };
FdKind fd_kind(int fd);

// Waits until fd is ready for `events` (POLLIN/POLLOUT); 0 or an errno.
int wait_fd(int fd, short events);

// Moves up to n bytes from a pipe or socket `in` to `out` by splice (through
// `drain`'s private pipe when neither end is a pipe). Returns bytes moved;
// sets *in_err / *out_err on failure, and *unsupported when splice cannot
// serve this pair of descriptors (nothing moved then).
std::uint64_t splice_stream(Drain& drain, std::uint64_t n, int out, FdKind out_kind,
                            int* in_err, int* out_err, bool* unsupported);

std::unique_ptr<Source> make_uring_source(int fd, bool owned, bool is_socket, std::string* why);

}  // namespace xsr::detail
