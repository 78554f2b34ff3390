// The relay's engine: a stream read exactly, each record held in the
// kernel while a verifier checks it, then sent on.
//
// HoldQueue holds bytes in a queue of private pipes, filled at the back
// (write(2) for bytes the verifier read, splice(2) for bodies it skips) and
// sent from the front to the output. Pipes hold page references, not
// copies, so a spliced body reaches the output without entering user space.
//
// HoldingSource is what the verifier reads: exact reads of what it asks for
// (through io_uring where available), every consumed byte put in the queue
// and skipped bodies spliced into it. Without a queue it is the input of a
// conversion: nothing is held, and the converter's bulk bytes are spliced
// straight on.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <vector>

#include "xsr/error.h"
#include "xsr/source.h"

namespace xsr {

namespace detail {
class HoldReader;
}

// Bytes are "held" until mark() says the verifier has passed them; then
// they are "pending" and go out whenever the output takes them: between
// reads, and while the relay waits for the sender, so receiving the next
// record overlaps sending the last one. Pending bytes past kPendingCap
// make the relay wait for the output (back-pressure on the sender).
//
// Errors carry the errno that ended the relay as their cause: EMSGSIZE
// over the hold limit, ETIMEDOUT after timeout_ms without progress,
// ECANCELED when the output failed (out_error() says how).
class HoldQueue {
 public:
  static constexpr std::uint64_t kPendingCap = 16 << 20;

  HoldQueue(std::uint64_t max_hold, int out, int timeout_ms);
  ~HoldQueue();
  HoldQueue(const HoldQueue&) = delete;
  HoldQueue& operator=(const HoldQueue&) = delete;

  std::uint64_t held() const { return total_ - pending_; }  // not yet passed
  std::uint64_t pending() const { return pending_; }        // passed, not yet sent
  std::uint64_t sent() const { return sent_; }
  std::uint64_t spliced() const { return spliced_; }
  std::uint64_t written() const { return written_; }
  // The output's failure (cause: its errno, ETIMEDOUT for --timeout).
  const Error& out_error() const { return out_err_; }

  // Holds n bytes from user memory.
  Error put(const std::byte* p, std::size_t n);

  // What splice_in did.
  struct Spliced {
    std::uint64_t bytes = 0;  // moved; 0 without error or fragmented: the input ended
    // A pipe filled up less than half full (a sender of tiny segments):
    // the caller then reads the rest of the record and put()s it, which
    // packs the pipes, so the number of pipes stays bounded by the hold.
    bool fragmented = false;
    Error error;
  };
  // Splices up to n bytes from `in` into the pipes, sending pending bytes
  // while the sender has nothing.
  Spliced splice_in(int in, std::uint64_t n);

  // The verifier has passed everything held: it may go. Sends what the
  // output takes now, and waits for it while more than kPendingCap is
  // pending.
  Error mark();

  // Sends pending bytes: all of them (block), or what the output takes
  // without waiting. A failure is also kept in out_error().
  Error push(bool block);

  // Waits until `in` is readable, sending pending bytes whenever the
  // output takes them meanwhile.
  Error wait_input(int in);

 private:
  struct Pipe {
    int r = -1, w = -1;
    std::size_t bytes = 0;
    bool full = false;
  };
  static void close_pipe(Pipe& p);
  Pipe* back();
  void recycle_front();
  ssize_t copy_out(Pipe& p, std::size_t n);
  Error fail_out(int e);

  std::uint64_t max_;
  int out_;
  int timeout_ms_;
  std::deque<Pipe> active_;
  std::vector<Pipe> spare_;
  std::size_t cap_ = 65536;
  std::uint64_t total_ = 0, pending_ = 0, sent_ = 0, spliced_ = 0, written_ = 0;
  int err_ = 0;  // why back() found no pipe
  Error out_err_;
  bool splice_ok_ = true;
};

class HoldingSource {
 public:
  // Reads fd (not owned); timeout_ms bounds each wait for the sender
  // (< 0: none).
  HoldingSource(int fd, int timeout_ms);
  ~HoldingSource();
  HoldingSource(const HoldingSource&) = delete;
  HoldingSource& operator=(const HoldingSource&) = delete;

  // Header reads through io_uring; the reason when it cannot be had (plain
  // reads then).
  Error use_uring();
  // Holds what is read in q (not owned) from now on.
  void hold_into(HoldQueue* q);

  // What the verifier (or a converter) reads. Its kind() is "io_uring" or
  // "read"; its error_text() names the relay's own causes (--timeout,
  // --hold, a failed output).
  Source& source();
  bool failed() const;
  // Fails the source (the first cause stays): the verifier stops at its
  // next read.
  void fail(int e);

 private:
  std::unique_ptr<detail::HoldReader> r_;
};

}  // namespace xsr
