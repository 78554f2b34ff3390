#include "rules.h"

#include <algorithm>
#include <array>
#include <cstring>
#include <string_view>

#include "xsr/records.h"

namespace xsr::rules {
namespace {

using u64 = std::uint64_t;
using u32 = std::uint32_t;
using ull = unsigned long long;

const char* vcpu_kind(u32 type) {
  switch (type) {
    case libxc::X86_PV_VCPU_BASIC: return "basic";
    case libxc::X86_PV_VCPU_EXTENDED: return "extended";
    case libxc::X86_PV_VCPU_XSAVE: return "xsave";
    default: return "msrs";
  }
}

const char* emulator_name(u32 id) {
  switch (id) {
    case libxl::kEmuUnknown: return "Unknown";
    case libxl::kEmuQemuTrad: return "Qemu Traditional";
    case libxl::kEmuQemuUpstream: return "Qemu Upstream";
    default: return nullptr;
  }
}

// ---- the reference's checks (libxc) ------------------------------------------

Error pv_info(const Ctx& c) {
  auto width = c.b.at<std::uint8_t>(0), levels = c.b.at<std::uint8_t>(1);
  auto r1 = c.b.at<std::uint16_t>(2);
  auto r2 = c.b.at<u32>(4);
  if (width != 4 && width != 8) return c.bad(strprintf("Expected width of 4 or 8, got %u", width));
  if (levels != 3 && levels != 4) return c.bad(strprintf("Expected levels of 3 or 4, got %u", levels));
  if (r1 != 0 || r2 != 0) return c.bad(strprintf("Reserved bits set in X86_PV_INFO: 0x%04x 0x%08x", r1, r2));
  c.info(strprintf("  %ubit guest, %u levels of pagetables", width == 4 ? 32u : 64u, levels));
  return {};
}

Error p2m_frames(const Ctx& c) {
  c.info(strprintf("  Start pfn 0x%x, End 0x%x", c.b.at<u32>(0), c.b.at<u32>(4)));
  return {};
}

Error pv_vcpu(const Ctx& c) {
  const char* name = vcpu_kind(c.ev.type);
  if (c.b.len == 8) c.info(strprintf("Warning: X86_PV_VCPU_%s record with zero content", name));
  auto vcpu = c.b.at<u32>(0), r1 = c.b.at<u32>(4);
  if (r1 != 0) return c.bad(strprintf("Reserved bits set in x86_pv_vcpu_%s record 0x%04x", name, r1));
  c.info(strprintf("  vcpu%u %s context, %llu bytes", vcpu, name, static_cast<ull>(c.b.len - 8)));
  return {};
}

Error tsc_info(const Ctx& c) {
  libxc::X86TscInfo t;
  std::memcpy(&t, c.b.data, sizeof t);
  if (t.reserved != 0) return c.bad(strprintf("Reserved bits set in X86_TSC_INFO: 0x%08x", t.reserved));
  c.info(strprintf("  Mode %u, %u kHz, %llu ns, incarnation %u", t.mode, t.khz, static_cast<ull>(t.nsec),
                   t.incarnation));
  return {};
}

Error hvm_params(const Ctx& c) {
  auto count = c.b.at<u32>(0), rsvd = c.b.at<u32>(4);
  if (rsvd != 0) return c.bad(strprintf("Reserved field not zero (0x%04x)", rsvd));
  if (count == 0) c.info("Warning: HVM_PARAMS record with zero content");
  const u64 want = 8 + 16 * u64{count};
  if (c.b.len != want)
    return c.bad(strprintf("Length should be %llu bytes, got %llu", static_cast<ull>(want),
                           static_cast<ull>(c.b.len)));
  return {};
}

Error toolstack(const Ctx& c) {
  // The reference crashes here (exit 2); Xen's restore refuses the record
  // as an unknown mandatory one, so this is a stream error.
  return c.fail(Errc::unknown_record,
                "Found Toolstack record in stream (deprecated; Xen's restore refuses it)");
}

Error dirty_pfn_list(const Ctx& c) {
  return c.bad("Found checkpoint dirty pfn list record in stream (it belongs to COLO's back channel)");
}

// ---- Xen's restore (libxc, --strict; xg_sr_restore*.c) ------------------------
// Messages name their source ("Xen restore: " and Xen's ERROR text, or
// "hypervisor: "); docs/strict.md lists each rule with its Xen function.

// A record the guest type's process_record() does not take: restore()
// refuses it as an unhandled mandatory record.
Error not_handled(const Ctx& c) {
  return c.order(strprintf("Xen restore: Mandatory record %#x (%s) not handled (a %s record in an %s stream)",
                           c.ev.type, std::string(record_info(Layer::libxc, c.ev.type)->spec_name).c_str(),
                           c.s.pv() ? "HVM" : "PV", c.s.pv() ? "x86 PV" : "x86 HVM"));
}

Error strict_static_data_end(const Ctx& c) {
  if (c.s.static_data_end) return c.order("Xen restore: Multiple STATIC_DATA_END records found");
  c.s.static_data_end = true;
  return {};
}

Error strict_pv_info(const Ctx& c) {
  LibxcState& s = c.s;
  if (!s.pv()) return not_handled(c);
  if (s.pv_info_count++) return c.order("Xen restore: Already received X86_PV_INFO record");
  const auto width = c.b.at<std::uint8_t>(0), levels = c.b.at<std::uint8_t>(1);
  if (!(width == 4 && levels == 3) && !(width == 8 && levels == 4))
    return c.order(
        strprintf("Xen restore: Invalid X86_PV_INFO combination: width %u, pt_levels %u", width, levels));
  s.guest_width = s.m.width = width;
  s.m.levels = levels;
  return {};
}

Error strict_p2m_frames(const Ctx& c) {
  LibxcState& s = c.s;
  strict::Model& m = s.m;
  if (!s.pv()) return not_handled(c);
  if (s.version < 3) s.static_data_end = true;  // v2: inferred here
  if (!s.static_data_end) return c.order("Xen restore: No STATIC_DATA_END seen");
  if (!s.pv_info_count) return c.order("Xen restore: Not yet received X86_PV_INFO record");
  const u32 start = c.b.at<u32>(0), end = c.b.at<u32>(4);
  if (start > end)
    return c.order(strprintf("Xen restore: End pfn in stream (%#x) exceeds Start (%#x)", end, start));
  const u32 fpp = kPageSize / m.width;
  const u32 first = start / fpp, last = end / fpp + 1;
  if (c.b.len != 8 + u64{last - first} * 8)
    return c.order(
        strprintf("Xen restore: X86_PV_P2M_FRAMES record wrong size: start_pfn %#x, end_pfn %#x, "
                  "length %llu, expected 8 + (%u - %u) * 8",
                  start, end, static_cast<ull>(c.b.len), last, first));
  if (end > m.max_pfn) {
    m.max_pfn = s.max_pfn = end;
    m.p2m_sized = true;
    m.frames.resize(end / fpp + 1, ~u64{0});
    m.frame_rec.resize(m.frames.size(), ~u32{0});
  } else if (!m.p2m_sized) {
    return c.order(
        "Xen restore: X86_PV_P2M_FRAMES with end pfn 0 never sizes the p2m: handle_x86_pv_p2m_frames() "
        "writes through an unallocated frame list (a crash)");
  }
  m.frame_where.push_back(c.fail(Errc::bad_order, {}));
  const u32 rec = static_cast<u32>(m.frame_where.size() - 1);
  const std::vector<u64>& list = c.frames;
  for (u32 x = 0; x < last - first && x < list.size(); ++x) {
    m.frames[first + x] = list[x];
    m.frame_rec[first + x] = rec;
  }
  s.p2m_frames = true;
  return {};
}

Error strict_pv_vcpu(const Ctx& c) {
  LibxcState& s = c.s;
  if (!s.pv()) return not_handled(c);
  // Empty records are skipped before anything else is looked at.
  const u64 blob = c.b.len - 8;
  if (blob == 0) return {};
  const u32 id = c.b.at<u32>(0);
  const std::string name(record_info(Layer::libxc, c.ev.type)->spec_name);
  if (id >= s.max_vcpus)
    return c.order(strprintf("Xen restore: %s record vcpu_id (%u) exceeds domain max (%u)", name.c_str(), id,
                             s.max_vcpus - 1));
  const ull len = c.b.len;
  switch (c.ev.type) {
    case libxc::X86_PV_VCPU_BASIC: {
      const pv::ContextLayout& l = pv::context_layout(s.m.width);
      if (blob != l.size)
        return c.order(strprintf("Xen restore: %s record wrong size: expected %llu, got %llu", name.c_str(),
                                 static_cast<ull>(8 + l.size), len));
      if (!c.b.whole()) return {};
      auto word = [&](u32 off) { return l.word == 8 ? c.b.at<u64>(8 + off) : u64{c.b.at<u32>(8 + off)}; };
      strict::Vcpu& v = s.m.vcpus[id];
      v.basic = true;
      v.where = c.fail(Errc::bad_order, {});
      v.rdx = word(l.rdx);
      v.cr3 = word(l.ctrlreg + 3 * l.word);
      v.cr1 = word(l.ctrlreg + 1 * l.word);
      v.gdt_ents = static_cast<u32>(word(l.gdt_ents));
      for (u32 i = 0; i < v.gdt.size(); ++i) v.gdt[i] = word(l.gdt_frames + i * l.word);
      return {};
    }
    case libxc::X86_PV_VCPU_EXTENDED:
      if (blob > 128)
        return c.order(strprintf("Xen restore: %s record too long: max 136, got %llu", name.c_str(), len));
      {
        strict::Vcpu& v = s.m.vcpus[id];
        v.ext = true;
        v.ext_where = c.fail(Errc::bad_order, {});
        std::uint8_t raw[4] = {};
        if (c.b.whole()) std::memcpy(raw, c.b.data + 8, blob < 4 ? static_cast<std::size_t>(blob) : 4);
        std::memcpy(&v.ext_vcpu, raw, 4);
      }
      return {};
    case libxc::X86_PV_VCPU_XSAVE:
      if (blob < 16)
        return c.order(strprintf("Xen restore: %s record too short: min 24, got %llu", name.c_str(), len));
      return {};
    default:
      if (blob % 16 != 0)
        return c.order(strprintf("Xen restore: %s record payload size %llu expected to be a multiple of 16",
                                 name.c_str(), static_cast<ull>(blob)));
      return {};
  }
}

Error strict_shared_info(const Ctx& c) {
  if (!c.s.pv()) return not_handled(c);
  if (!c.s.pv_info_count) return c.order("Xen restore: Not yet received X86_PV_INFO record");
  c.s.shared_info = true;
  return {};
}

Error strict_tsc_info(const Ctx& c) {
  const u32 mode = c.b.at<u32>(0);
  if (mode > 2)
    return c.order(
        strprintf("Xen restore: Unable to set TSC information (hypervisor: tsc_set_info refuses TSC mode %u, "
                  "not 0, 1 or 2)",
                  mode));
  return {};
}

Error strict_hvm_params(const Ctx& c) {
  if (c.s.pv()) return not_handled(c);
  if (!c.b.whole()) return {};
  const u32 count = c.b.at<u32>(0);
  for (u32 i = 0; i < count; ++i) {
    const std::string f =
        strict::hvm_param(c.s.m, c.b.at<u64>(8 + 16 * u64{i}), c.b.at<u64>(16 + 16 * u64{i}));
    if (!f.empty()) return c.order(f);
  }
  return {};
}

Error strict_hvm_context(const Ctx& c) {
  if (c.s.pv()) return not_handled(c);
  // update_blob(): the last HVM_CONTEXT is the one loaded, at the end.
  c.s.m.hvm_context = true;
  c.s.m.hvm_fault = {};
  if (!c.hvm_fault.empty()) c.s.m.hvm_fault = c.order(c.hvm_fault);
  return {};
}

Error strict_checkpoint(const Ctx& c) {
  if (!c.ev.nested && !c.opt.checkpointed)
    return c.order(
        "Xen restore: Found checkpoint in non-checkpointed stream (use --checkpointed for Remus/COLO "
        "streams)");
  return {};
}

// Faults Xen's restore finds when the stream completes are reported at
// END, where they are found: a forwarder (relay) has passed the record
// that carried the bad value by then. The message names that record.
Error at_end(const Error& end, Error found) { return moved_to(end, std::move(found), "the value is in"); }

Error stream_complete(const Ctx& c, const Error& end) {
  const LibxcState& s = c.s;
  // Remus: the restore completes from the last checkpoint's state.
  const strict::Model& m = s.committed ? *s.committed : s.m;
  if (s.pv()) {
    if (!m.vcpus.count(0) || !m.vcpus.at(0).basic)
      return c.order("Xen restore: Sender didn't send vcpu0's basic state");
    if (!s.pv_info_count || !m.p2m_sized) {
      Error e = m.vcpus.at(0).where;
      e.detail =
          "Xen restore: no X86_PV_INFO and X86_PV_P2M_FRAMES, so no p2m: vcpu0's Start Info pfn is out of "
          "range (or restore crashes on the missing p2m)";
      return e;
    }
    return strict::pv_stream_complete(m, end);
  }
  if (!m.hvm_context)
    return c.order(
        "hypervisor: HVM restore: no HVM context to load (no HVM_CONTEXT record): hvm_load finds no HEADER");
  return m.hvm_fault;
}

Error strict_end(const Ctx& c) {
  const Error end = c.fail(Errc::bad_order, {});
  return at_end(end, stream_complete(c, end));
}

// ---- libxl ----------------------------------------------------------------------

// The emulator header both emulator records start with; null name: an
// unknown emulator, already refused.
Error emulator(const Ctx& c, const char*& name, u32& index) {
  const u32 id = c.b.at<u32>(0);
  index = c.b.at<u32>(4);
  name = emulator_name(id);
  if (!name) return c.bad(strprintf("Unrecognised emulator id 0x%x", id));
  return {};
}

Error emulator_context(const Ctx& c) {
  const char* name;
  u32 idx;
  if (Error e = emulator(c, name, idx)) return e;
  c.info(strprintf("  Index %u, type %s", idx, name));
  return {};
}

Error xenstore_data(const Ctx& c) {
  const char* name;
  u32 idx;
  if (Error e = emulator(c, name, idx)) return e;
  c.info(strprintf("Emulator Xenstore Data (%s, idx %u)", name, idx));
  if (c.b.len <= 8) return {};
  // The real rule (the reference's Python 3 port rejects all data):
  // NUL-terminated, an even number of NUL-separated strings.
  if (!c.xs.last_nul) return c.bad("Data not NUL terminated");
  if (c.xs.nuls % 2 != 0)
    return c.bad(strprintf("Expected an even number of strings, got %llu", static_cast<ull>(c.xs.nuls)));
  if (!c.b.whole()) return {};
  const char* p = reinterpret_cast<const char*>(c.b.data) + 8;
  const char* end = reinterpret_cast<const char*>(c.b.data) + c.b.len;
  while (p < end) {
    const char* k = p;
    p += std::strlen(p) + 1;
    const char* v = p;
    p += std::strlen(p) + 1;
    c.info(strprintf("  '%s' = '%s'", k, v));
  }
  return {};
}

Error strict_libxc_context(const Ctx& c) {
  if (c.libxc_seen)
    return c.order("Xen restore: a second LIBXC_CONTEXT record (libxl would restore the domain again)");
  return {};
}

Error strict_checkpoint_end(const Ctx& c) {
  if (!c.ev.in_checkpoint) return c.order("Xen restore: Unexpected CHECKPOINT_END record in stream");
  return {};
}

// libxl takes CHECKPOINT_STATE only in COLO's checkpoint-state exchange,
// which runs over the back channel, never in the saved stream.
Error strict_checkpoint_state(const Ctx& c) {
  return c.order("Xen restore: Unexpected CHECKPOINT_STATE record in stream");
}

Error strict_emulator(const Ctx& c) {
  if (c.libxc_seen && c.s.pv())
    return c.order(
        c.ev.type == libxl::EMULATOR_CONTEXT
            ? "Xen restore: Received an emulator context record when none was expected (a PV guest)"
            : "Xen restore: Received a xenstore emulator record when none was expected (a PV guest)");
  return {};
}

// ---- the tables -----------------------------------------------------------------

// The reference's checks in its order: length (and version) first, then
// the fields. Rows are indexed by type.
constexpr std::array<Rule, libxc::kRecordTypeCount> kLibxc{{
    {.type = libxc::END, .length = "End record with non-zero length", .strict = strict_end},
    // Only a body too short to hold an entry comes here whole (walker.h);
    // the entries' checks run as they are read (verify.cc).
    {.type = libxc::PAGE_DATA,
     .length = "PAGE_DATA record must be at least 8 bytes long, got %llu",
     .strict = strict_page_data},
    {.type = libxc::X86_PV_INFO,
     .length = "x86_pv_info: expected length of 8, got %llu",
     .check = pv_info,
     .strict = strict_pv_info},
    {.type = libxc::X86_PV_P2M_FRAMES,
     .length = "x86_pv_p2m_frames: record length must be at least 8 bytes long",
     .multiple = "Length expected to be a multiple of 8, not %llu",
     .check = p2m_frames,
     .strict = strict_p2m_frames},
    {.type = libxc::X86_PV_VCPU_BASIC,
     .length = "X86_PV_VCPU_basic record length must be at least 8 bytes long",
     .check = pv_vcpu,
     .strict = strict_pv_vcpu},
    {.type = libxc::X86_PV_VCPU_EXTENDED,
     .length = "X86_PV_VCPU_extended record length must be at least 8 bytes long",
     .check = pv_vcpu,
     .strict = strict_pv_vcpu},
    {.type = libxc::X86_PV_VCPU_XSAVE,
     .length = "X86_PV_VCPU_xsave record length must be at least 8 bytes long",
     .check = pv_vcpu,
     .strict = strict_pv_vcpu},
    {.type = libxc::SHARED_INFO,
     .length = "Length expected to be 4096 bytes, not %llu",
     .strict = strict_shared_info},
    {.type = libxc::X86_TSC_INFO,
     .length = "Length should be 24 bytes, got %llu",
     .check = tsc_info,
     .strict = strict_tsc_info},
    {.type = libxc::HVM_CONTEXT, .length = "Zero length HVM context", .strict = strict_hvm_context},
    {.type = libxc::HVM_PARAMS,
     .length = "Length should be at least 8 bytes, got %llu",
     .check = hvm_params,
     .strict = strict_hvm_params},
    {.type = libxc::TOOLSTACK, .check = toolstack},
    {.type = libxc::X86_PV_VCPU_MSRS,
     .length = "X86_PV_VCPU_msrs record length must be at least 8 bytes long",
     .check = pv_vcpu,
     .strict = strict_pv_vcpu},
    {.type = libxc::VERIFY, .length = "Verify record with non-zero length"},
    {.type = libxc::CHECKPOINT,
     .length = "Checkpoint record with non-zero length",
     .strict = strict_checkpoint},
    // Refused whatever its length: no length words.
    {.type = libxc::CHECKPOINT_DIRTY_PFN_LIST, .check = dirty_pfn_list},
    {.type = libxc::STATIC_DATA_END,
     .length = "Static data end record with non-zero length",
     .version = "Static data end record found in v2 stream",
     .strict = strict_static_data_end},
    {.type = libxc::X86_CPUID_POLICY,
     .length = "Record length %llu, expected multiple of %u",
     .version = "x86 CPUID policy record found in v2 stream",
     .version_first = true},
    {.type = libxc::X86_MSR_POLICY,
     .length = "Record length %llu, expected multiple of %u",
     .version = "x86 MSR policy record found in v2 stream",
     .version_first = true},
}};

constexpr std::array<Rule, libxl::kRecordTypeCount> kLibxl{{
    {.type = libxl::END, .length = "End record with non-zero length"},
    {.type = libxl::LIBXC_CONTEXT,
     .length = "Libxc context record with non-zero length",
     .strict = strict_libxc_context},
    {.type = libxl::EMULATOR_XENSTORE_DATA,
     .length = "Length must be at least 8 bytes, got %llu",
     .check = xenstore_data,
     .strict = strict_emulator},
    {.type = libxl::EMULATOR_CONTEXT,
     .length = "Length must be at least 8 bytes, got %llu",
     .check = emulator_context,
     .strict = strict_emulator},
    {.type = libxl::CHECKPOINT_END,
     .length = "Checkpoint end record with non-zero length",
     .strict = strict_checkpoint_end},
    {.type = libxl::CHECKPOINT_STATE,
     .length = "Checkpoint state record with zero length",
     .strict = strict_checkpoint_state},
}};

// A message format takes at most the body length (%llu) and then the
// multiple (%u), as check_length passes them.
constexpr bool takes_length_args(const char* f) {
  if (!f) return true;
  int taken = 0;
  for (; *f; ++f) {
    if (*f != '%') continue;
    const std::string_view rest(f + 1);
    if (rest.starts_with("%")) {
      ++f;
    } else if (taken == 0 && rest.starts_with("llu")) {
      taken = 1;
    } else if (taken == 1 && rest.starts_with("u")) {
      taken = 2;
    } else {
      return false;
    }
  }
  return true;
}

template <std::size_t N>
constexpr bool well_formed(const std::array<Rule, N>& t) {
  for (std::size_t i = 0; i < N; ++i) {
    if (t[i].type != i) return false;
    if (!takes_length_args(t[i].length) || !takes_length_args(t[i].multiple) ||
        !takes_length_args(t[i].version))
      return false;
  }
  return true;
}
static_assert(well_formed(kLibxc));
static_assert(well_formed(kLibxl));

}  // namespace

void XenstoreScan::add(Bytes c, u64 off) {
  constexpr u64 kData = sizeof(libxl::EmulatorHeader);
  for (std::size_t i = off < kData ? static_cast<std::size_t>(kData - off) : 0; i < c.size(); ++i)
    if (c[i] == std::byte{0}) ++nuls;
  if (!c.empty()) last_nul = c.back() == std::byte{0};
}

const Rule& libxc_rule(u32 type) { return kLibxc[type]; }
const Rule& libxl_rule(u32 type) { return kLibxl[type]; }

Error check_length(const Ctx& c, const Rule& r, u32 version) {
  const RecordInfo& ri = *record_info(c.ev.layer, c.ev.type);
  const BoundsBreach br = check_bounds(ri, c.ev.length, version);
  const char* words = nullptr;
  if (r.version_first && br.too_new) words = r.version;
  if (!words && (br.too_short || br.too_long)) words = r.length;
  if (!words && br.not_multiple) words = r.multiple ? r.multiple : r.length;
  if (!words && br.too_new) words = r.version;
  if (!words) [[likely]]
    return {};
  return c.bad(strprintf(words, static_cast<ull>(c.ev.length), ri.multiple));
}

Error moved_to(const Error& where, Error found, const char* how) {
  if (!found || found.offset == where.offset || found.record == kNoRecord) return found;
  Error e = where;
  e.detail = strprintf("%s (%s record %llu, %s, at offset 0x%llx)", found.detail.c_str(), how,
                       static_cast<ull>(found.record), record_name(found.layer, found.type).c_str(),
                       static_cast<ull>(found.offset));
  return e;
}

}  // namespace xsr::rules
