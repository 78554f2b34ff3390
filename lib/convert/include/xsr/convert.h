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
#include "xsr/sink.h"
#include "xsr/source.h"

namespace xsr {

enum class GuestType { unknown, pv, hvm };

struct ConvertOptions {
  unsigned width = 0;                    // legacy toolstack width, 32 or 64 (0: detect)
  GuestType guest = GuestType::unknown;  // (unknown: detect)
  bool libxl = false;                    // output a libxl stream (else a bare libxc one)
  bool xl = false;                       // the input starts with an xl header (-x)
  bool libvirt = false;                  // the input starts with a libvirt header
  bool skip_qemu = false;                // libxc output: leave the qemu tail out (and unread)
  std::uint32_t stream_version = 3;      // 2: no STATIC_DATA_END (Xen 4.6-4.13)
  // Bytes quoted in error messages as the reference prints them (Python's
  // b'\x00...'); false: 'text' when printable, else hex (xsr's own tools).
  bool python_bytes = true;
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
  std::string paths;             // "copy_file_range 4.0 GiB, write 1.2 MiB"
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
