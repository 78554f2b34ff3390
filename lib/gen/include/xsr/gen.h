// `xsr gen`: deterministic (seeded) v2/v3 streams for tests and benchmarks,
// libxc, libxl or xl-wrapped, PV or HVM, from kilobytes to tens of GiB,
// with optional checkpoints, or legacy (Xen 4.5) ones.
//
// The streams describe a guest Xen 4.17's restore accepts, in the record
// order and shape of Xen's own save (xg_sr_save*.c; xc_domain_save for
// legacy): CPU policy, TSC info, real HVM save blobs (HEADER, per-vcpu
// CPU/LAPIC/LAPIC_REGS/MTRR/CPU_XSAVE/VMCE/TSC_ADJUST, the emulated
// devices, END) and HVM params, PV vcpu contexts, shared info.
//
// Data pages are stamped with their pfn and the seed (their first 16
// bytes) and the round (the next 8: 1, or 3 for the pages a checkpoint
// resends), so a reader can check any page it extracts. Special pages
// (gen_pfn_special) hold what the guest keeps there instead:
//   PV: one run of pfns a little above 0 (after a few "kernel image" pages)
//     holding the top-level pagetable (L4, or the PAE L3; pinned), for
//     64-bit an L3, an L2, up to four L1 tables (pinned) mapping the first
//     2048 pfns at the kernel's base (special ones read-only), the p2m
//     frames (entry i = i), start_info (vcpu 0's rdx), the xenstore and
//     console rings, and a GDT frame per vcpu (zero) when there is room;
//   HVM: Xen's builder's special pages (paging, access, sharing, bufioreq,
//     xenstore, ioreq, the identity pagetable, console) and 8 ioreq server
//     pages under them, at the top of the pfn range (under the VGA hole
//     when the top would overlap it; no ioreq server pages under 64 pfns).
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

// The pfns a stream for `opt` sends: 0 .. gen_pfn_range(opt) - 1 (HVM
// streams send the VGA hole, 0xa0-0xbf, as XTAB).
std::uint64_t gen_pfn_range(const GenOptions& opt);

// Whether the page at pfn is a special page (see above) rather than a
// stamped data page.
bool gen_pfn_special(const GenOptions& opt, std::uint64_t pfn);

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
