// The stream verifier: every check of Xen's reference verifier for libxc v2
// and v3, libxl (nested libxc, checkpointed streams) and the xl / libvirt
// headers, without the reference's defects (REFERENCE.md), plus a strict
// mode with the semantic rules of Xen's restore.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <span>
#include <string>
#include <string_view>

#include "xsr/error.h"
#include "xsr/format.h"
#include "xsr/records.h"
#include "xsr/source.h"
#include "xsr/walker.h"

namespace xsr {

enum class Format { autodetect, libxc, libxl, xl };

// Sees what the verifier reads, for tools that report on or take from a
// stream (inspect, extract) without a second parser. Calls come in stream
// order, each after the verifier has read (and, unless said otherwise,
// checked) what it reports; views die when the call returns. The verifier
// stops at the first error, so an observer has seen a valid prefix. (The
// walk itself is StreamWalker's, walker.h; this is what passed its checks.)
class StreamObserver {
 public:
  virtual ~StreamObserver() = default;
  // A container header of `len` bytes at stream offset `off`, optional data
  // included (header_name(kind) names it: "xl header", "libxc image
  // header", ...). Both libxc headers come once the domain header is checked.
  virtual void header(HeaderKind /*kind*/, std::uint64_t /*off*/, std::uint64_t /*len*/) {}
  // The xl header's optional data (the domain config) or the libvirt
  // header's domain XML, in chunks, in order.
  virtual void config(std::span<const std::byte> /*chunk*/) {}
  // A record of either layer, checked: `body` holds its body when it is at
  // most 1 MiB, else its first 64 bytes (`len` is the full body length).
  // PAGE_DATA records come here too, after their pages.
  virtual void record(Layer /*layer*/, std::uint32_t /*type*/, std::uint64_t /*off*/, std::uint64_t /*len*/,
                      std::span<const std::byte> /*body*/) {}
  // A PAGE_DATA record's entries, in chunks (raw little-endian u64s), read
  // but not yet checked: a record whose checks fail is not passed to pages().
  virtual void pfns(std::span<const std::byte> /*chunk*/) {}
  // With the reader at the first page of a PAGE_DATA record whose entries
  // were all checked: the observer may read or forward pages; whatever it
  // leaves is skipped. Only called when wants_pages().
  virtual Error pages(PageDataReader& /*pd*/) { return {}; }
  virtual bool wants_pages() const { return false; }
};

struct VerifyOptions {
  Format format = Format::libxc;
  // Adds the rules Xen's restore enforces (REFERENCE.md, last section).
  bool strict = false;
  // With strict: a bare libxc stream may carry CHECKPOINT records (Remus/COLO).
  bool checkpointed = false;
  // The reference verifier's -v lines, byte for byte; null: not wanted.
  std::function<void(const std::string&)> info;
  // xsr's own remarks (an optional record skipped, ...); null: not wanted.
  std::function<void(const std::string&)> note;
  // Called with the bytes consumed so far, about every 64 MiB.
  std::function<void(std::uint64_t)> progress;
  // Sees every header, record and page as it is read (not owned); null: none.
  StreamObserver* observer = nullptr;
};

struct TypeCount {
  std::uint64_t records = 0;
  std::uint64_t bytes = 0;  // header + body + padding
};

struct StreamStats {
  std::string container;  // "libxc", "libxl", "xl+libxl", "xl+libxc", "libvirt+libxl"
  std::uint32_t libxc_version = 0;
  std::uint32_t domain_type = 0;  // libxc::DomainType
  std::uint32_t xen_major = 0, xen_minor = 0;
  bool legacy_converted = false;
  // Bytes of the stream up to the end of the last header or record that
  // passed: the whole stream when it is valid. Every count here describes
  // that valid prefix; a failing header or record is not counted.
  std::uint64_t bytes = 0;
  std::uint64_t bytes_read = 0;  // how far the verifier read before it stopped (>= bytes)
  std::uint64_t records = 0;     // records of both layers
  std::array<TypeCount, libxc::kRecordTypeCount> libxc{};
  std::array<TypeCount, libxl::kRecordTypeCount> libxl{};
  std::map<std::uint32_t, TypeCount> optional;   // skipped optional records by type
  std::array<std::uint64_t, 16> pfns_by_type{};  // PAGE_DATA entries by page type
  std::uint64_t pages = 0;                       // page bodies (4 KiB each)
  std::uint64_t checkpoints = 0;
};

// Verifies one stream from `src`, stopping at its outermost END (bytes after
// it are not read). Returns the first error, or an ok Error.
Error verify(Source& src, const VerifyOptions& opt, StreamStats& stats);

}  // namespace xsr
