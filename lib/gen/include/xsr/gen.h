// `xsr gen`: deterministic (seeded) v2/v3 streams for tests and benchmarks,
// libxc, libxl or xl-wrapped, PV or HVM, from kilobytes to tens of GiB,
// with optional checkpoints. Each page is stamped with its pfn and the seed
// (its first 16 bytes) and the round (the next 8: 1, or 3 for the pages a
// checkpoint resends), so a reader can check any page it extracts.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "xsr/error.h"

namespace xsr {

struct GenOptions {
  enum class Container { libxc, libxl, xl } container = Container::libxc;
  bool hvm = true;
  std::uint32_t version = 3;         // libxc stream version: 2 or 3
  std::uint64_t size = 16ull << 20;  // approximate stream size in bytes
  std::uint64_t seed = 1;
  std::uint32_t batch = 1024;     // pfns per PAGE_DATA record (1..1024)
  std::uint32_t checkpoints = 0;  // extra checkpoint rounds after the first
  std::uint32_t vcpus = 2;
  std::uint32_t pv_width = 8;  // PV guest width in bytes: 4 or 8
  // Page bodies shaped like a guest's memory (gen_mixed_page) instead of
  // one repeated random page: compression benchmarks need the former, as
  // any compressor squeezes the latter to almost nothing.
  bool mixed_pages = false;
  // Within a PAGE_DATA batch, pfns in a seeded shuffle; false: ascending,
  // as Xen's save sends them (it walks its dirty bitmap in pfn order).
  bool shuffle = true;
  // A legacy (Xen <= 4.5) stream instead: `container` xl puts an xl header
  // (without the v2 flag) in front; libxl and libxc write the bare stream.
  bool legacy = false;
  std::uint32_t toolstack_width = 64;  // legacy ulong size in bits: 32 or 64
  // Pace in bytes per second (0: as fast as the output takes it): writes
  // of at most max(rate/20, 1) bytes, each started only once the average
  // since the start, that write included, stays within the rate.
  std::uint64_t rate = 0;
  // Called after each write with the bytes written, and the records and
  // page bodies put out (or buffered) so far.
  std::function<void(std::uint64_t bytes, std::uint64_t records, std::uint64_t pages)> progress;
};

struct GenResult {
  std::uint64_t bytes = 0;
  std::uint64_t records = 0;
  std::uint64_t pages = 0;      // page bodies written
  std::uint64_t pfn_range = 0;  // pfns 0 .. pfn_range-1 are covered
  Error error;                  // a bad option (Errc::usage) or the output's failure
};

// Writes the stream to fd (a file, pipe or socket) with large writes. It
// stops at the first failed write (EPIPE, ENOSPC), which is the error.
GenResult generate(int fd, const GenOptions& opt);

// The largest `size` the stream `opt` describes can have: a PV stream's
// P2M frame list names its last pfn in 32 bits, a legacy stream's pfn
// entries keep 28 bits for the pfn; an HVM stream has no such bound.
std::uint64_t gen_max_size(const GenOptions& opt);

// Vcpus a generated stream may have (a legacy stream's vcpu map is 64 bits).
constexpr std::uint32_t kGenMaxVcpus = 64;

// The 4 KiB page the generator writes for pfn under seed in the first
// round (for checks): {pfn, seed, 1} in its first 24 bytes.
void gen_page(std::uint64_t pfn, std::uint64_t seed, std::byte* out);

// A page of `mixed_pages` content, stamped like gen_page: about a third
// zero, two fifths text-like (skewed 8-byte words from a small vocabulary,
// ~3x compressible), the rest random; chosen and filled from pfn, seed and
// round; its first 24 bytes are {pfn, seed, round}.
void gen_mixed_page(std::uint64_t pfn, std::uint64_t seed, std::uint64_t round, std::byte* out);

// Parses "16G", "512M", "4096", "1.5G"; false on junk.
bool parse_size(const std::string& s, std::uint64_t& out);

}  // namespace xsr
