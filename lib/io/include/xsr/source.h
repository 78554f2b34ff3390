// Byte sources: the one small interface every reader sits on.
//
// A source hands out windows at its cursor (`peek`), is told how far to
// advance (`consume`), and discards bulk bytes without handing them out
// (`skip`: page bodies that no check needs). Implementations:
//   PreadSource  - regular files, read at computed offsets (the fastest
//                  header scan on this machine, MEASUREMENTS.md)
//   MappedSource - regular files, mapped in bounded windows
//   UringSource  - pipes and sockets through io_uring, fixed buffers
//   ReadSource   - pipes, sockets, ttys through read(2)/splice(2): only where
//                  io_uring is unavailable or disabled (XSR_NO_URING=1)
//   MemorySource - bytes in memory (tests, the null engine)
// and, built on the same pieces, the decompressing source (compress.h) and
// the relay's HoldingSource (hold.h). One engine per file in lib/io; their
// shared building blocks (io_engine.h) are private to lib/io.
//
// Exact reads: a source on a descriptor never consumes a byte the caller has
// not asked for, so whatever follows the stream on a pipe or socket stays
// readable by the caller, and `finish` leaves a seekable descriptor's offset
// just after the last consumed byte.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "xsr/error.h"

namespace xsr {

using Bytes = std::span<const std::byte>;

// Largest window `peek` hands out. Record bodies are walked in pieces of at
// most this size, so no hostile length makes a source allocate or map more.
constexpr std::size_t kMaxPeek = 1 << 20;

class Source {
 public:
  virtual ~Source() = default;

  // Returns a view of at least n bytes at the cursor (n <= kMaxPeek), or
  // fewer when the input ends first. The caller asserts the n bytes belong to
  // the stream. The view dies at the next peek, skip or forward. On an I/O error
  // returns an empty view and sets `error()`.
  virtual Bytes peek(std::size_t n) = 0;

  // Advances the cursor by n bytes of the last peek.
  virtual void consume(std::size_t n) = 0;

  // Discards n bytes at the cursor without handing them out. Returns how many
  // were discarded: fewer than n only when the input ended (or on an I/O
  // error, then `error()` is set).
  virtual std::uint64_t skip(std::uint64_t n) = 0;

  // The caller guarantees that the stream holds at least n more bytes after
  // the cursor. Sources may start reading them early; never past them.
  virtual void hint(std::uint64_t /*n*/) {}

  // Bytes consumed since the source was opened.
  virtual std::uint64_t pos() const = 0;

  // Leaves the descriptor's file offset just after the consumed bytes
  // (seekable inputs); returns 0 or an errno value.
  virtual int finish() { return 0; }

  // "pread", "mmap", "io_uring", "read", "memory": said under -v.
  virtual std::string_view kind() const = 0;

  // Moves n bytes at the cursor to descriptor `out` without passing them
  // through user space where the kernel allows it (copy_file_range between
  // files, splice into or out of pipes, sendfile to sockets), else by
  // write(2) from the source's window. Returns how many moved: fewer than n
  // when the input ended, or on an error (then `error()` or `out_error` is
  // set). `how` names the path the bulk of the bytes took.
  virtual std::uint64_t forward(std::uint64_t n, int out, int& out_error, const char*& how);

  // errno of the last failed system call, 0 when none.
  int error() const { return error_; }

  // What went wrong, in words, when error() is set: strerror by default; a
  // decompressing source says what was wrong with the compressed data
  // ("zstd data corrupt before compressed byte ...").
  virtual std::string error_text() const { return std::strerror(error_); }

  // Bytes left in the input when known (regular files), else -1.
  virtual std::int64_t remaining() const { return -1; }

 protected:
  int error_ = 0;
};

enum class IoMode { automatic, pread, mmap, uring, read };

// What a descriptor can do, for choosing how bytes move to or from it. The
// engines' and paths' text names ("pread", "splice", ...) are for -v only;
// decisions test these bits.
struct IoCaps {
  enum Bit : unsigned {
    file = 1u << 0,      // a regular file: copy_file_range, positioned writes
    seekable = 1u << 1,  // a regular file or block device: pread, lseek
    mappable = 1u << 2,  // mmap works
    pipe = 1u << 3,      // a pipe: splice needs no pipe of ours
    socket = 1u << 4,    // a stream socket: sendfile target; splice through a pipe of ours
    splice = 1u << 5,    // splice(2) takes it at all
  };
  unsigned bits = 0;
  bool has(Bit b) const { return (bits & b) != 0; }
};

// The capabilities of an open descriptor (none when fstat fails).
IoCaps fd_caps(int fd);

struct OpenResult {
  std::unique_ptr<Source> source;
  Error error;       // set when source is null (detail: "PATH: <strerror>")
  std::string note;  // e.g. "io_uring unavailable (Operation not permitted): plain reads"
};

// Opens "FILE", "-" (stdin) or a decimal FD number, as the reference tools
// do. The source does not own a descriptor it was handed as a number.
OpenResult open_source(std::string_view spec, IoMode mode = IoMode::automatic);

// Wraps an already-open descriptor (owned or not).
OpenResult source_from_fd(int fd, bool owned, IoMode mode = IoMode::automatic);

std::unique_ptr<Source> memory_source(Bytes data);

// Parses "123" as a descriptor number; -1 when spec is not a decimal number.
int parse_fd(std::string_view spec);

}  // namespace xsr
