// `xsr extract`: guest memory out of an image, as a sparse raw file where
// pfn N lives at offset N * 4096 (the raw physical memory layer forensics
// tools open), or as an ELF core with one PT_LOAD segment per run of
// consecutive pfns. Page bodies go from the image to the output by the
// kernel (copy_file_range from a file, splice from a pipe) at the page's
// offset: a run of consecutive pfns in a batch is one call. The last copy
// of a page wins (checkpoints, re-sent pages); an entry without a body
// (XTAB, BROKEN, XALLOC) leaves what was there. Never-sent pfns stay holes.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <span>
#include <string>

#include "xsr/error.h"
#include "xsr/inspect.h"
#include "xsr/pfnset.h"
#include "xsr/sink.h"
#include "xsr/source.h"
#include "xsr/vcpu_state.h"

namespace xsr {

// What an ELF core's notes need beyond the pages: the vCPU states and the
// domain header's facts, from the image's records.
struct CoreState {
  VcpuStates vcpus;
  StreamStats stats;
};

// One pass over src's headers and records (page bodies skipped, as verify
// skips them): the state for an ELF core's notes. What extract_indexed's
// --elf needs, since the vCPU records come after the pages it reads.
Error read_core_state(Source& src, CoreState& core);

struct ExtractOptions {
  std::uint64_t first_pfn = 0;  // --pfn A-B: only these pfns
  std::uint64_t last_pfn = libxc::kPfnMask;
  bool elf = false;  // an ELF core instead of raw
  // On a stream error, still end the output (raw size or ELF headers) with
  // the pages before the damage; the error stays in the result.
  bool salvage = false;
  // --elf through an index: the state for the notes (read_core_state);
  // null: a core without notes.
  const CoreState* core = nullptr;
  // Called with the bytes read so far, about every 64 MiB; null: none.
  std::function<void(std::uint64_t)> progress;
};

struct ExtractResult {
  Error error;                  // a stream error (offset, record) or an output error
  std::uint64_t bodies = 0;     // page bodies written (re-sent pages count each time)
  std::uint64_t pfns = 0;       // distinct pfns written
  std::uint64_t segments = 0;   // ELF PT_LOAD segments
  std::uint64_t out_bytes = 0;  // the output file's size
  std::string paths;            // "copy_file_range 4.0 GiB"
  bool salvaged = false;        // salvage: error set, the output ended with what came before it
  StreamStats stats;
};

// Reads the stream on src and writes the memory to out, a seekable regular
// file (truncated first). With opt.salvage, a stream error still ends the
// output with the whole pages read before it (res.salvaged).
ExtractResult extract(Source& src, int out, const ExtractOptions& opt);

// The ELF core's headers for the pages in `pfns`, whose bodies sit at
// base + pfn * 4096: the file header at offset 0, the program headers after
// the last page (a PT_NOTE first when `notes` is not empty, its bytes right
// after the program headers; then one PT_LOAD per run of consecutive pfns).
// With 0xffff headers or more, e_phnum is PN_XNUM and section header 0
// carries the count (the ELF gABI rule). No headers at all: the file header
// alone, e_phoff 0. Sets res.segments (the PT_LOADs) and res.out_bytes.
Error write_elf_headers(Sink& out, const PfnSet& pfns, std::uint64_t base, ExtractResult& res,
                        std::span<const std::byte> notes = {});

// The last copy of one page in the image; false when the image has no body
// for it (res.error tells a stream error apart).
bool extract_page(Source& src, std::uint64_t pfn, std::array<std::byte, 4096>& page, ExtractResult& res);

// `hexdump -C` lines of a page, addresses counted from pfn * 4096.
std::string hexdump_page(std::uint64_t pfn, const std::array<std::byte, 4096>& page);

}  // namespace xsr
