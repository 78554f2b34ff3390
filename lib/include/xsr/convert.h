// Legacy (Xen <= 4.5) stream to v3 (or v2) conversion, byte for byte as
// REFERENCE.md "Converter output" says, without the reference's defects.
// Page bodies go from input to output by the kernel (copy_file_range,
// splice, sendfile) wherever it can; headers and widened pfn arrays come
// from a small arena.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

#include "xsr/error.h"
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

// Buffered output to a descriptor, with a bulk path from a Source.
class Sink {
 public:
  explicit Sink(int fd);
  ~Sink();
  Sink(const Sink&) = delete;
  Sink& operator=(const Sink&) = delete;

  void write(const void* p, std::size_t n);
  template <typename T>
  void put(const T& v) {
    write(&v, sizeof v);
  }
  void zeros(std::size_t n);
  // Writes what is buffered; false on a write error (see error()).
  bool flush();
  // Moves n bytes from src's cursor to the output (flushing first). Returns
  // bytes moved; fewer than n when the input ended or on an error.
  std::uint64_t forward(Source& src, std::uint64_t n);
  // Like forward, for bytes a verifier must see (record bodies it checks):
  // with a tap they pass through user space, else straight through.
  std::uint64_t forward_checked(Source& src, std::uint64_t n);
  // Every byte written from now on also goes to `tap` (not owned).
  void set_tap(VerifyTap* tap) { tap_ = tap; }

  std::uint64_t bytes() const { return bytes_ + buf_.size(); }
  int error() const { return err_; }
  // Bytes moved by each bulk path ("copy_file_range", "splice", ...).
  const std::vector<std::pair<std::string, std::uint64_t>>& paths() const { return paths_; }

 private:
  int fd_;
  int err_ = 0;
  std::uint64_t bytes_ = 0;
  std::vector<std::byte> buf_;
  std::vector<std::pair<std::string, std::uint64_t>> paths_;
  VerifyTap* tap_ = nullptr;
};

enum class GuestType { unknown, pv, hvm };

struct ConvertOptions {
  unsigned width = 0;  // legacy toolstack width, 32 or 64 (0: detect)
  GuestType guest = GuestType::unknown;  // (unknown: detect)
  bool libxl = false;      // output a libxl stream (else a bare libxc one)
  bool xl = false;         // the input starts with an xl header (-x)
  bool libvirt = false;    // the input starts with a libvirt header
  bool skip_qemu = false;  // libxc output: leave the qemu tail out (and unread)
  std::uint32_t stream_version = 3;  // 2: no STATIC_DATA_END (Xen 4.6-4.13)
  // The reference's -v lines, byte for byte; null: not wanted.
  std::function<void(const std::string&)> info;
  // Called with the input bytes consumed so far, every few page batches.
  std::function<void(std::uint64_t)> progress;
};

struct ConvertResult {
  Error error;
  std::uint64_t in_bytes = 0, out_bytes = 0;
  std::uint64_t records = 0, pages = 0, batches = 0;
  std::uint64_t tail_bytes = 0;  // after the stream's END: the raw qemu record (libxc output)
  std::string paths;  // "copy_file_range 4.0 GiB, write 1.2 MiB"
};

// What the first bytes of a legacy stream say (REFERENCE.md, spec
// "Legacy Images"): toolstack width, guest type, and an xl or libvirt
// header before the stream. Peeks; consumes nothing.
struct LegacyGuess {
  bool ok = false;
  unsigned width = 0;
  GuestType guest = GuestType::unknown;
  bool xl = false, libvirt = false;
  bool xl_libxl = false;  // xl header says a libxl v2 stream follows
  std::string why;        // when !ok
};
LegacyGuess detect_legacy(Source& src);

ConvertResult convert_legacy(Source& in, Sink& out, const ConvertOptions& opt);

}  // namespace xsr
