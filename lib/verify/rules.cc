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

// Xen's restore refuses vcpu ids beyond its limit (legacy MAX_VCPU_ID 4095).
constexpr u32 kMaxVcpuId = 4095;

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

Error strict_static_data_end(const Ctx& c) {
  if (c.s.static_data_end) return c.order("a second STATIC_DATA_END");
  c.s.static_data_end = true;
  return {};
}

Error strict_pv_info(const Ctx& c) {
  LibxcState& s = c.s;
  if (!s.pv()) return c.order("X86_PV_INFO in an HVM stream");
  if (s.pv_info_count++) return c.order("a second X86_PV_INFO");
  s.guest_width = c.b.at<std::uint8_t>(0);
  return {};
}

Error strict_p2m_frames(const Ctx& c) {
  LibxcState& s = c.s;
  if (!s.pv()) return c.order("X86_PV_P2M_FRAMES in an HVM stream");
  if (!s.pv_info_count) return c.order("X86_PV_P2M_FRAMES before X86_PV_INFO");
  if (s.version >= 3 && !s.static_data_end) return c.order("X86_PV_P2M_FRAMES before STATIC_DATA_END");
  s.static_data_end = true;  // v2: inferred here
  u32 start = c.b.at<u32>(0), end = c.b.at<u32>(4);
  if (start > end) return c.order(strprintf("P2M frames start pfn 0x%x is beyond end pfn 0x%x", start, end));
  const u64 fpp = kPageSize / s.guest_width;
  const u64 frames = end / fpp - start / fpp + 1;
  if (c.b.len != 8 + 8 * frames)
    return c.order(strprintf("body length %llu, expected 8 + 8 * %llu frames for pfns 0x%x-0x%x",
                             static_cast<ull>(c.b.len), static_cast<ull>(frames), start, end));
  s.p2m_frames = true;
  s.max_pfn = std::max<u64>(s.max_pfn, end);
  return {};
}

Error strict_pv_vcpu(const Ctx& c) {
  if (!c.s.pv()) return c.order(strprintf("X86_PV_VCPU_%s in an HVM stream", vcpu_kind(c.ev.type)));
  u32 vcpu = c.b.at<u32>(0);
  if (vcpu > kMaxVcpuId) return c.order(strprintf("vcpu id %u out of range (max %u)", vcpu, kMaxVcpuId));
  if (c.ev.type == libxc::X86_PV_VCPU_BASIC && vcpu == 0) c.s.vcpu0_basic = true;
  return {};
}

Error strict_shared_info(const Ctx& c) {
  if (!c.s.pv()) return c.order("SHARED_INFO in an HVM stream");
  if (!c.s.pv_info_count) return c.order("SHARED_INFO before X86_PV_INFO");
  c.s.shared_info = true;
  return {};
}

Error strict_hvm_params(const Ctx& c) {
  if (c.s.pv()) return c.order("HVM_PARAMS in a PV stream");
  c.s.hvm_params = true;
  return {};
}

Error strict_hvm_context(const Ctx& c) {
  // No order against HVM_PARAMS: Xen's save writes HVM_CONTEXT first
  // (x86_hvm_end_of_checkpoint) and its restore applies the blob only at
  // the end of the stream.
  if (c.s.pv()) return c.order("HVM_CONTEXT in a PV stream");
  c.s.hvm_context = true;
  return {};
}

Error strict_checkpoint(const Ctx& c) {
  if (!c.ev.nested && !c.opt.checkpointed)
    return c.order(
        "CHECKPOINT in a stream that is not checkpointed (use --checkpointed for "
        "Remus/COLO streams)");
  return {};
}

Error strict_end(const Ctx& c) {
  const LibxcState& s = c.s;
  if (s.pv() && !s.vcpu0_basic) return c.order("END of a PV stream without vcpu0's basic state");
  if (s.pv() && !s.pv_info_count) return c.order("END of a PV stream without X86_PV_INFO");
  if (!s.pv() && !s.hvm_context) return c.order("END of an HVM stream without HVM_CONTEXT");
  return {};
}

Error strict_cpu_policy(const Ctx& c) {
  if (c.s.static_data_end) return c.order("CPU policy after STATIC_DATA_END");
  return {};
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
  if (c.libxc_seen) return c.order("a second LIBXC_CONTEXT record");
  return {};
}

Error strict_checkpoint_end(const Ctx& c) {
  if (!c.ev.in_checkpoint) return c.order("CHECKPOINT_END outside a checkpoint");
  return {};
}

Error strict_emulator(const Ctx& c) {
  if (c.libxc_seen && c.s.pv())
    return c.order(strprintf("%s in a PV stream (emulator records are for HVM guests)",
                             record_name(Layer::libxl, c.ev.type).c_str()));
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
    {.type = libxc::X86_TSC_INFO, .length = "Length should be 24 bytes, got %llu", .check = tsc_info},
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
     .version_first = true,
     .strict = strict_cpu_policy},
    {.type = libxc::X86_MSR_POLICY,
     .length = "Record length %llu, expected multiple of %u",
     .version = "x86 MSR policy record found in v2 stream",
     .version_first = true,
     .strict = strict_cpu_policy},
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
    {.type = libxl::CHECKPOINT_STATE, .length = "Checkpoint state record with zero length"},
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

}  // namespace xsr::rules
