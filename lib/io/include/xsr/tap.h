// VerifyTap: what a Sink writes, handed to a verifier in another thread.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <vector>

#include "xsr/source.h"

namespace xsr {

// The bytes a Sink writes, handed to a verifier running in another thread
// as a Source, so an output is verified in the same pass whatever it is (a
// pipe cannot be read back). Bulk bytes the verifier never reads (page
// bodies) arrive as holes it skips; everything else as data. Holds at most
// 16 MiB of data: the writer waits for the verifier beyond that.
class VerifyTap final : public Source {
 public:
  VerifyTap();
  ~VerifyTap() override;
  // Writer side.
  void data(const std::byte* p, std::size_t n);
  void hole(std::uint64_t n);
  void close();  // no more bytes: the reader sees the end of input
  // Reader side (the verifier's thread).
  Bytes peek(std::size_t n) override;
  void consume(std::size_t n) override;
  std::uint64_t skip(std::uint64_t n) override;
  std::uint64_t pos() const override { return pos_; }
  std::string_view kind() const override { return "tap"; }
  // The reader is done (verdict reached): the writer stops queueing.
  void reader_done();

 private:
  void drop_consumed();  // with mu_ held
  struct Seg {
    std::vector<std::byte> bytes;  // data, or empty for a hole
    std::uint64_t hole = 0;
    std::size_t off = 0;  // consumed part of bytes
  };
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Seg> q_;
  std::uint64_t queued_ = 0;
  bool closed_ = false, reader_done_ = false;
  std::uint64_t pos_ = 0;
  std::vector<std::byte> joined_;  // a peek across segments
};

}  // namespace xsr
