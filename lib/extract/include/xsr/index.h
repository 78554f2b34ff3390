// The page index (`xsr index`): a small sidecar that says where in a plain
// image file the last copy of each page's body sits, so `xsr extract
// --page`, `--pfn` and `--elf` read only the pages they are asked for
// instead of walking a 16 GiB image.
//
// File format (little-endian; docs in README, "xsr index"):
//   header, 64 bytes:
//     0  magic "XSRINDEX"
//     8  u32 version (1), u32 entry size (32)
//    16  u64 image size in bytes
//    24  u64 head length: bytes before the first PAGE_DATA record
//    32  u64 head checksum: of those bytes (container headers, early records)
//    40  u64 layout checksum: of every header's and record's (layer, type,
//        offset, length) and every PAGE_DATA pfn entry, in stream order
//    48  u64 entry count
//    56  u64 index checksum: of the header (this field zero) and entries
//   entries, 32 bytes each, sorted by pfn, never overlapping:
//     0  u64 first pfn of the run
//     8  u32 pages in the run (consecutive pfns, consecutive bodies)
//    12  u32 body length of the PAGE_DATA record holding them
//    16  u64 file offset of the first page body
//    24  u64 file offset of that PAGE_DATA record's header
// A run is consecutive pfns whose bodies follow each other in one PAGE_DATA
// record; a page sent again later replaces its earlier entry (the last copy
// wins, as in extract).
//
// Staleness: a reader checks the image size and the head checksum in full
// (one read of the head) and, for every record it takes pages from, that
// the record header at the entry's offset is a PAGE_DATA of the same length:
// O(pages asked), never a walk of the image. The layout checksum is checked
// by `xsr index --check`, which walks.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "xsr/error.h"
#include "xsr/extract.h"
#include "xsr/source.h"

namespace xsr {

struct IndexRun {
  std::uint64_t pfn = 0;
  std::uint32_t pages = 0;
  std::uint32_t rec_len = 0;
  std::uint64_t body_off = 0;
  std::uint64_t rec_off = 0;
};

struct PageIndex {
  static constexpr std::uint32_t kVersion = 1;
  static constexpr std::size_t kHeaderSize = 64;
  static constexpr std::size_t kEntrySize = 32;

  std::uint64_t image_size = 0;
  std::uint64_t head_len = 0;
  std::uint64_t head_sum = 0;
  std::uint64_t layout_sum = 0;
  std::vector<IndexRun> runs;  // sorted by pfn, disjoint

  std::uint64_t pages() const;
  // The run holding pfn, or null.
  const IndexRun* find(std::uint64_t pfn) const;
  // The file's bytes.
  std::vector<std::byte> serialize() const;
  // Parses and checks an index file's bytes (any bytes: a malformed index is
  // an error naming what is wrong, never a crash): magic, version, sizes,
  // checksum, every entry inside the image and its record, sorted, disjoint.
  static Result<PageIndex> parse(Bytes data);
};

// Builds the index in one pass over src, a plain v2/v3 image file read
// from its first byte (not decompressed, not a legacy image converted on
// the way in: offsets must be the file's). Page bodies are skipped, never
// read. `head`: a second source on the same file at its first byte (the
// head is hashed once its length is known). `image_size` is the file's
// size. progress: as ExtractOptions's.
Result<PageIndex> build_index(Source& src, Source& head, std::uint64_t image_size,
                              const std::function<void(std::uint64_t)>& progress = nullptr);

// Reads and parses an index file (FILE); errors name what is wrong.
Result<PageIndex> read_index(const std::string& path);

// Whether idx describes the image src reads (from its first byte, a file
// of `image_size` bytes): its size and head. Consumes src's head.
Error check_index_head(const PageIndex& idx, Source& src, std::uint64_t image_size);

// extract() through an index: the pages of opt's range are moved from src
// (a plain image file, head already checked, cursor anywhere before the
// first page body) to out, in file order, checking each record header they
// come from. Same output as extract() on a valid image.
ExtractResult extract_indexed(const PageIndex& idx, Source& src, int out, const ExtractOptions& opt);

// extract_page() through an index: false when the index has no body for pfn.
bool index_page(const PageIndex& idx, Source& src, std::uint64_t pfn, std::array<std::byte, 4096>& page,
                ExtractResult& res);

}  // namespace xsr
