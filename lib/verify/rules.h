// The verifier's rules per record type, kept beside the record table
// (lib/format/records.cc), which holds the length bounds: for each type of
// either layer, how the reference words a body that breaks a bound, the
// reference's checks of the body, and the rules of Xen's restore that
// --strict adds. verify.cc runs them (run()); PAGE_DATA's entry checks run
// over its entries as the walker hands them over, in verify.cc.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "strict.h"
#include "xsr/error.h"
#include "xsr/reader.h"
#include "xsr/verify.h"
#include "xsr/walker.h"

namespace xsr::rules {

// Per-libxc-stream state; it lives across checkpoint hand-backs.
struct LibxcState {
  std::uint32_t version = 0;
  std::uint32_t domain_type = 0;
  std::uint64_t squashed = 0;  // PAGE_DATA records since the last printed line
  // Strict-mode facts.
  bool static_data_end = false;
  std::uint32_t pv_info_count = 0;
  std::uint32_t guest_width = 0;
  bool p2m_frames = false;
  std::uint64_t max_pfn = 0;  // highest pfn a PV P2M_FRAMES record covers
  bool shared_info = false;
  // The domain's vCPU count: Xen 4.17's HVM_MAX_VCPUS unless the xl
  // config says otherwise.
  std::uint32_t max_vcpus = hvm::kMaxVcpus;
  // A Remus checkpoint was read: records are buffered until the next one
  // (xg_sr_restore.c restore()), and the stream completes from `committed`.
  bool buffering = false;
  strict::Model m;
  std::shared_ptr<const strict::Model> committed;

  bool pv() const { return domain_type == libxc::kX86Pv; }
};

// What EMULATOR_XENSTORE_DATA's rule needs of a body it may not see whole:
// the NULs after the emulator header, and whether the last byte is one.
struct XenstoreScan {
  std::uint64_t nuls = 0;
  bool last_nul = false;
  // Counts a chunk of the body starting at body offset `off`.
  void add(Bytes chunk, std::uint64_t off);
};

// What a rule sees: the record, its body, the stream so far.
struct Ctx {
  const RecordEvent& ev;
  const Body& b;
  // libxc records: their stream's state; libxl records: the last libxc
  // stream's (meaningful when libxc_seen).
  LibxcState& s;
  bool libxc_seen;  // a libxc stream has begun
  const XenstoreScan& xs;
  // --strict: an X86_PV_P2M_FRAMES record's frame list; an HVM_CONTEXT's
  // fault by hvm_load's rules ("" when none).
  const std::vector<std::uint64_t>& frames;
  const std::string& hvm_fault;
  const VerifyOptions& opt;
  const RecordReader& rd;  // for errors that carry the record

  void info(const std::string& line) const {
    if (opt.info) opt.info(line);
  }
  // The record breaks a rule: Errc::bad_record for the reference's,
  // Errc::bad_order for Xen's restore's (--strict).
  [[gnu::cold]] Error fail(Errc code, std::string detail) const {
    return rd.fail(code, ev.offset, std::move(detail));
  }
  [[gnu::cold]] Error bad(std::string detail) const { return fail(Errc::bad_record, std::move(detail)); }
  [[gnu::cold]] Error order(std::string detail) const { return fail(Errc::bad_order, std::move(detail)); }
};

using Fn = Error (*)(const Ctx&);

struct Rule {
  std::uint32_t type;
  // The reference's words for a body that breaks a length bound of the
  // record table: printf formats given the body length (unsigned long long)
  // and then the table's multiple (unsigned), checked at compile time.
  // `length` for any length bound (null: the reference checks none),
  // `multiple` for a length that is not a multiple (null: `length`'s
  // words), `version` for a type newer than the stream.
  const char* length = nullptr;
  const char* multiple = nullptr;
  const char* version = nullptr;
  // The reference looks at the version before the length.
  bool version_first = false;
  // The reference's checks of a body within its bounds (null: none).
  Fn check = nullptr;
  // Xen's restore rules, with --strict (null: none).
  Fn strict = nullptr;
};

// PAGE_DATA's rule of Xen's restore (--strict), here to be inlined into
// the verifier's PAGE_DATA path, the hot one.
inline Error strict_page_data(const Ctx& c) {
  LibxcState& s = c.s;
  if (s.version >= 3 && !s.static_data_end) [[unlikely]]
    return c.order("PAGE_DATA before STATIC_DATA_END");
  s.static_data_end = true;  // v2: inferred here
  if (s.pv() && !s.p2m_frames) [[unlikely]]
    return c.order("PAGE_DATA before X86_PV_P2M_FRAMES");
  return {};
}

// A fault found in an earlier record, reported at `where`: the record at
// which Xen acts on it (END, when the stream completes; a Remus CHECKPOINT,
// where the records buffered since the last one are processed), so that a
// forwarder never has passed the offset of the error it reports. The
// message names the record: "(HOW record N, TYPE, at offset 0x...)".
Error moved_to(const Error& where, Error found, const char* how);

// The rule for a type of the record table.
const Rule& libxc_rule(std::uint32_t type);  // type < libxc::kRecordTypeCount
const Rule& libxl_rule(std::uint32_t type);  // type < libxl::kRecordTypeCount

// The reference's words for the first bound of the record table the body
// breaks, in the reference's order; `version`: the libxc stream's.
Error check_length(const Ctx& c, const Rule& r, std::uint32_t version);

// A record's rules in order: length, the reference's checks, and (strict)
// Xen's restore's.
inline Error run(const Ctx& c, const Rule& r, std::uint32_t version, bool strict) {
  if (Error e = check_length(c, r, version)) return e;
  if (r.check) {
    if (Error e = r.check(c)) return e;
  }
  if (strict && r.strict) return r.strict(c);
  return {};
}

}  // namespace xsr::rules
