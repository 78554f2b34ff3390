// Legacy (Xen <= 4.5) stream to v3 (or v2) conversion, byte for byte as
// REFERENCE.md "Converter output" says, without the reference's defects.
// Page bodies go from input to output by the kernel (copy_file_range,
// splice, sendfile) wherever it can; headers and widened pfn arrays come
// from a small arena.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "xsr/error.h"
#include "xsr/source.h"

namespace xsr {

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
