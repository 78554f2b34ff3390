// The stream verifier: every check of Xen's reference verifier for libxc v2
// and v3, libxl (nested libxc, checkpointed streams) and the xl / libvirt
// headers, without the reference's defects (REFERENCE.md), plus a strict
// mode with the semantic rules of Xen's restore.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <string>

#include "xsr/error.h"
#include "xsr/format.h"
#include "xsr/source.h"

namespace xsr {

enum class Format { autodetect, libxc, libxl, xl };

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
  std::uint64_t bytes = 0;    // bytes of the stream, headers included
  std::uint64_t records = 0;  // records of both layers
  std::array<TypeCount, libxc::kRecordTypeCount> libxc{};
  std::array<TypeCount, libxl::kRecordTypeCount> libxl{};
  std::map<std::uint32_t, TypeCount> optional;  // skipped optional records by type
  std::array<std::uint64_t, 16> pfns_by_type{};  // PAGE_DATA entries by page type
  std::uint64_t pages = 0;                       // page bodies (4 KiB each)
  std::uint64_t checkpoints = 0;
};

// Verifies one stream from `src`, stopping at its outermost END (bytes after
// it are not read). Returns the first error, or an ok Error.
Error verify(Source& src, const VerifyOptions& opt, StreamStats& stats);

// Reads the first bytes (without consuming past a valid stream's start) and
// names the container: "libxc", "libxl", "xl", "libvirt", or "legacy".
std::string_view detect_format(Source& src);

}  // namespace xsr
