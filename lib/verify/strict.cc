#include "strict.h"

#include <cstring>

#include "xsr/format.h"

namespace xsr::strict {
namespace {

using ull = unsigned long long;

constexpr u64 kInvalid = ~u64{0};
// XEN_DOMCTL_PFINFO_* type nibbles.
constexpr std::uint8_t kNotab = 0x0;
constexpr std::uint8_t kPin = 0x8;
// FIRST_RESERVED_GDT_ENTRY (xen/include/public/arch-x86/xen.h): 14 pages.
constexpr u32 kFirstReservedGdtEntry = 14 * 512;

// HVM params (xen/include/public/hvm/params.h).
enum : u32 {
  kPaeEnabled = 4,
  kIoreqPfn = 5,
  kBufioreqPfn = 6,
  kViridian = 9,
  kTimerMode = 10,
  kDmDomain = 13,
  kAcpiSState = 14,
  kVm86Tss = 15,
  kAcpiIoportsLocation = 19,
  kBufioreqEvtchn = 26,
  kMemoryEventMsr = 30,
  kTripleFaultReason = 31,
  kIoreqServerPfn = 32,
  kNrIoreqServerPages = 33,
  kAltp2m = 35,
  kX87FipWidth = 36,
  kVm86TssSized = 37,
  kMcaCap = 38,
  kNrParams = 39,
};
constexpr u64 kViridianFeatureMask = 0x1fff;  // HVMPV_feature_mask
constexpr u64 kViridianBaseFreq = 1;          // HVMPV_base_freq

Error at(const Error& where, std::string detail) {
  Error e = where;
  e.detail = std::move(detail);
  return e;
}

// One pfn restore looks up at the end: the three ERRORs it words for it
// (out of range, bad type unless any_type, bad mfn), "" when it passes.
std::string pfn_check(const Model& m, u64 pfn, const char* range, const char* type, const char* mfn,
                      bool any_type) {
  if (pfn > m.max_pfn) return strprintf(range, static_cast<ull>(pfn));
  if (!any_type && m.pfns.type(pfn) != kNotab)
    return strprintf(type, static_cast<ull>(pfn), static_cast<unsigned>(m.pfns.type(pfn)));
  if (!m.pfns.populated(pfn)) return mfn;
  return {};
}

const StartInfo* start_info(const Model& m, u64 pfn) {
  for (const auto& [p, si] : m.start_infos)
    if (p == pfn) return &si;
  return nullptr;
}

// process_start_info(): vCPU 0's rdx names start_info, whose XenStore and
// console pfns must be in the p2m and populated.
std::string start_info_check(const Model& m, const Vcpu& v) {
  std::string f = pfn_check(m, v.rdx, "Xen restore: Start Info pfn %#llx out of range",
                            "Xen restore: Start Info pfn %#llx has bad type %u",
                            "Xen restore: Start Info has bad mfn", false);
  if (!f.empty()) return f;
  const StartInfo* si = start_info(m, v.rdx);
  if (!si && (m.pfns.get(v.rdx) & PfnMap::kStartInfoOk)) return {};
  if (!si)
    return strprintf(
        "Xen restore: XenStore or Console pfn out of range or not populated: start_info page %#llx (no "
        "\"xen-\" magic) named them when it was sent (docs/strict.md)",
        static_cast<ull>(v.rdx));
  f = pfn_check(m, si->store, "Xen restore: XenStore pfn %#llx out of range", "",
                "Xen restore: XenStore pfn has bad mfn", true);
  if (!f.empty()) return f;
  return pfn_check(m, si->console, "Xen restore: Console pfn %#llx out of range", "",
                   "Xen restore: Console pfn has bad mfn", true);
}

// process_vcpu_basic(), then the hypervisor's setvcpucontext (cr3 pinned
// as the top-level table).
std::string vcpu_check(const Model& m, u32 id, const Vcpu& v) {
  if (id == 0) {
    std::string f = start_info_check(m, v);
    if (!f.empty()) return f;
  }
  if (v.gdt_ents > kFirstReservedGdtEntry)
    return strprintf("Xen restore: GDT entry count (%u) out of range (max %u)", v.gdt_ents,
                     kFirstReservedGdtEntry);
  for (u32 i = 0; i < (v.gdt_ents + 511) / 512; ++i) {
    const u64 pfn = v.gdt[i];
    if (pfn > m.max_pfn)
      return strprintf("Xen restore: GDT frame %u (pfn %#llx) out of range", i, static_cast<ull>(pfn));
    if (m.pfns.type(pfn) != kNotab)
      return strprintf("Xen restore: GDT frame %u (pfn %#llx) has bad type %u", i, static_cast<ull>(pfn),
                       static_cast<unsigned>(m.pfns.type(pfn)));
    if (!m.pfns.populated(pfn)) return strprintf("Xen restore: GDT frame %u has bad mfn", i);
  }
  const u64 cr3 = pv::cr3_to_pfn(v.cr3, m.width);
  if (cr3 > m.max_pfn) return strprintf("Xen restore: cr3 (pfn %#llx) out of range", static_cast<ull>(cr3));
  const unsigned t = m.pfns.type(cr3);
  if ((t & 7) != m.levels)
    return strprintf("Xen restore: cr3 (pfn %#llx) has bad type %u, expected %u", static_cast<ull>(cr3), t,
                     m.levels);
  if (!m.pfns.populated(cr3)) return "Xen restore: cr3 has bad mfn";
  if (m.width == 8 && (v.cr1 & 1)) {
    const u64 cr1 = v.cr1 >> 12;
    if (cr1 > m.max_pfn) return strprintf("Xen restore: cr1 (pfn %#llx) out of range", static_cast<ull>(cr1));
    const unsigned t1 = m.pfns.type(cr1);
    if ((t1 & 7) != m.levels)
      return strprintf("Xen restore: cr1 (pfn %#llx) has bad type %u, expected %u", static_cast<ull>(cr1), t1,
                       m.levels);
    if (!m.pfns.populated(cr1)) return "Xen restore: cr1 has bad mfn";
  }
  if (!(t & kPin))
    return strprintf("hypervisor: setvcpucontext: vcpu%u cr3 (pfn %#llx) is not a pinned L%u table", id,
                     static_cast<ull>(cr3), m.levels);
  return {};
}

}  // namespace

PfnMap& PfnMap::operator=(const PfnMap& o) {
  if (this == &o) return *this;
  chunks_.clear();
  chunks_.resize(o.chunks_.size());
  for (std::size_t i = 0; i < o.chunks_.size(); ++i) {
    if (!o.chunks_[i]) continue;
    chunks_[i] = std::make_unique<std::uint8_t[]>(kChunk);
    std::memcpy(chunks_[i].get(), o.chunks_[i].get(), kChunk);
  }
  return *this;
}

Error pv_stream_complete(const Model& m, const Error& end) {
  auto v0 = m.vcpus.find(0);
  if (v0 == m.vcpus.end() || !v0->second.basic)
    return at(end, "Xen restore: Sender didn't send vcpu0's basic state");
  for (const auto& [id, v] : m.vcpus) {
    std::string f = v.basic ? vcpu_check(m, id, v) : std::string();
    if (!f.empty()) return at(v.where, f);
    if (v.ext && v.ext_vcpu >= m.max_vcpus)
      return at(v.ext_where, strprintf("hypervisor: set_ext_vcpucontext: no vcpu%u (the domain has %u) (Xen "
                                       "restore: Failed to set vcpu%u's extended info)",
                                       v.ext_vcpu, m.max_vcpus, id));
  }
  // update_guest_p2m(): every frame of the p2m's frame list.
  const u64 fpp = kPageSize / m.width;
  const u64 nframes = m.p2m_sized ? m.max_pfn / fpp + 1 : 0;
  for (u64 i = 0; i < nframes; ++i) {
    const u64 pfn = i < m.frames.size() ? m.frames[i] : kInvalid;
    const Error& where =
        i < m.frames.size() && m.frame_rec[i] < m.frame_where.size() ? m.frame_where[m.frame_rec[i]] : end;
    if (pfn > m.max_pfn)
      return at(where, strprintf("Xen restore: pfn (%#llx) for p2m_frame_list[%llu] out of range",
                                 static_cast<ull>(pfn), static_cast<ull>(i)));
    if (m.pfns.type(pfn) != kNotab)
      return at(where, strprintf("Xen restore: pfn (%#llx) for p2m_frame_list[%llu] has bad type %u",
                                 static_cast<ull>(pfn), static_cast<ull>(i),
                                 static_cast<unsigned>(m.pfns.type(pfn))));
    if (!m.pfns.populated(pfn))
      return at(where, strprintf("Xen restore: p2m_frame_list[%llu] has bad mfn", static_cast<ull>(i)));
  }
  return {};
}

namespace {

// The number after `key` (a whole word: not preceded by a letter or '_'),
// past spaces, quotes, ':', '=' and '>'; 0 when none follows any match.
u32 number_after(std::string_view text, std::string_view key) {
  for (std::size_t i = text.find(key); i != std::string_view::npos; i = text.find(key, i + 1)) {
    if (i > 0 && (text[i - 1] == '_' || (text[i - 1] >= 'a' && text[i - 1] <= 'z'))) continue;
    std::size_t j = i + key.size();
    while (j < text.size() && std::string_view(" \t\":=>").find(text[j]) != std::string_view::npos) ++j;
    u64 v = 0;
    bool any = false;
    for (; j < text.size() && text[j] >= '0' && text[j] <= '9' && v < (u64{1} << 32); ++j, any = true)
      v = v * 10 + static_cast<u64>(text[j] - '0');
    if (any && v > 0 && v < (u64{1} << 32)) return static_cast<u32>(v);
  }
  return 0;
}

}  // namespace

u32 config_vcpus(std::string_view config) {
  for (const char* key : {"max_vcpus", "maxvcpus", "vcpus", "<vcpu"})
    if (const u32 n = number_after(config, key)) return n;
  return 0;
}

std::string hvm_param(Model& m, u64 index, u64 value) {
  const auto idx = static_cast<unsigned long long>(index);
  const auto val = static_cast<unsigned long long>(value);
  if (index == kPaeEnabled) return {};  // libxc drops it
  const char* why = nullptr;
  if (index >= kNrParams)
    return strprintf(
        "hypervisor: set_param: index %llu >= HVM_NR_PARAMS (%u) (Xen restore: set HVM param %lld = "
        "0x%016llx)",
        idx, kNrParams, static_cast<long long>(index), val);
  switch (index) {
    case kDmDomain:
    case 20:
    case 21:
    case 22:
    case 23:
    case 24:
    case 25:
    case kBufioreqEvtchn:
    case kMemoryEventMsr: why = "deprecated param"; break;
    default: break;
  }
  const u64 old = m.params.count(static_cast<u32>(index)) ? m.params[static_cast<u32>(index)] : 0;
  switch (index) {
    case kViridian:
    case kIoreqPfn:
    case kBufioreqPfn:
    case kIoreqServerPfn:
    case kNrIoreqServerPages:
    case kAltp2m:
    case kMcaCap:
      if (!why && old != 0 && value != old) why = "param already set to another value";
      break;
    default: break;
  }
  if (!why) {
    switch (index) {
      case kTimerMode: why = value > 3 ? "TIMER_MODE above 3" : nullptr; break;
      case kViridian:
        why = (value & ~kViridianFeatureMask) || !(value & kViridianBaseFreq)
                  ? "VIRIDIAN has a bit outside HVMPV_feature_mask or lacks HVMPV_base_freq"
                  : nullptr;
        break;
      case kAcpiSState: why = value != 0 && value != 3 ? "ACPI_S_STATE not 0 or 3" : nullptr; break;
      case kAcpiIoportsLocation:
        why = value > 1 && value != old ? "ACPI_IOPORTS_LOCATION not 0 or 1" : nullptr;
        break;
      case kAltp2m: why = value > 3 ? "ALTP2M above 3" : nullptr; break;
      case kTripleFaultReason: why = value > 5 ? "TRIPLE_FAULT_REASON above 5" : nullptr; break;
      case kNrIoreqServerPages:
        why = value == 0 || value > 64 ? "NR_IOREQ_SERVER_PAGES not 1..64" : nullptr;
        break;
      case kX87FipWidth:
        why = value != 0 && value != 4 && value != 8 ? "X87_FIP_WIDTH not 0, 4 or 8" : nullptr;
        break;
      case kVm86Tss: why = value != static_cast<u32>(value) ? "VM86_TSS beyond 32 bits" : nullptr; break;
      case kVm86TssSized: why = (value >> 32) < 104 ? "VM86_TSS_SIZED size below 104" : nullptr; break;
      case kMcaCap: why = value & ~u64{1} ? "MCA_CAP has a bit other than LMCE" : nullptr; break;
      default: break;
    }
  }
  if (why)
    return strprintf("hypervisor: set_param %llu = 0x%llx: %s (Xen restore: set HVM param %lld = 0x%016llx)",
                     idx, val, why, static_cast<long long>(index), val);
  m.params[static_cast<u32>(index)] = value;
  return {};
}

// ---- HvmScan ------------------------------------------------------------------

void HvmScan::begin(u64 body_len, u32 max_vcpus) {
  *this = HvmScan{};
  len_ = body_len;
  max_vcpus_ = max_vcpus;
}

void HvmScan::add(const std::byte* p, std::size_t n) {
  while (n > 0 && fault_.empty() && !ended_) {
    if (data_left_ > 0) {
      const std::size_t k = data_left_ < n ? static_cast<std::size_t>(data_left_) : n;
      for (std::size_t i = 0; in_header_ && i < k && have_head_ < head_.size(); ++i)
        head_[have_head_++] = static_cast<std::uint8_t>(p[i]);
      p += k;
      n -= k;
      pos_ += k;
      data_left_ -= k;
      if (data_left_ == 0 && in_header_) {
        in_header_ = false;
        header_done_ = true;
        u32 magic, version;
        std::memcpy(&magic, head_.data(), 4);
        std::memcpy(&version, head_.data() + 4, 4);
        if (magic != hvm::kFileMagic)
          fault_ = strprintf("hypervisor: HVM restore: bad magic number %#x", magic);
        else if (version != hvm::kFileVersion)
          fault_ = strprintf("hypervisor: HVM restore: unsupported version %u", version);
      }
      continue;
    }
    desc_[have_desc_++] = static_cast<std::uint8_t>(*p);
    ++p;
    --n;
    ++pos_;
    if (have_desc_ == desc_.size()) {
      have_desc_ = 0;
      descriptor();
    }
  }
}

void HvmScan::descriptor() {
  hvm::SaveDescriptor d;
  std::memcpy(&d, desc_.data(), sizeof d);
  const u64 left = len_ - pos_;
  if (!header_done_) {
    if (d.typecode != hvm::HEADER || d.length != sizeof(hvm::SaveHeader) || d.length > left)
      fault_ = strprintf(
          "hypervisor: HVM restore mismatch: expected strict type 1 length 24, saw type %u length %u (the "
          "blob "
          "must start with a HEADER entry)",
          d.typecode, d.length);
    in_header_ = true;
    data_left_ = d.length;
    return;
  }
  if (d.typecode == hvm::END) {
    ended_ = true;
    return;
  }
  const hvm::TypeInfo& t = hvm::save_type(d.typecode);
  if (!t.name || d.typecode == hvm::HEADER) {
    fault_ = strprintf("hypervisor: HVM restore: unknown entry typecode %u", d.typecode);
    return;
  }
  if (d.length > left) {
    fault_ = strprintf("hypervisor: HVM restore: entry %u/%u length %u runs past the end (%llu bytes left)",
                       d.typecode, d.instance, d.length, static_cast<ull>(left));
    return;
  }
  if (t.per_vcpu && d.instance >= max_vcpus_) {
    fault_ = strprintf("hypervisor: HVM restore: entry %s %u/%u names no vcpu (the domain has %u)", t.name,
                       d.typecode, d.instance, max_vcpus_);
    return;
  }
  // hvm_load_entry_zeroextend takes up to the size (CPU also its compat
  // size); hvm_load_entry the exact size.
  const bool zeroext = d.typecode == hvm::CPU || d.typecode == hvm::LAPIC || d.typecode == hvm::RTC ||
                       d.typecode == hvm::VIRIDIAN_DOMAIN || d.typecode == hvm::VIRIDIAN_VCPU ||
                       d.typecode == hvm::VMCE_VCPU;
  if (!t.variable) {
    const bool ok = zeroext ? d.length <= t.size : d.length == t.size;
    if (!ok && !(t.compat_size && d.length == t.compat_size)) {
      fault_ = strprintf("hypervisor: HVM restore: entry %s %u/%u length %u, %s %u", t.name, d.typecode,
                         d.instance, d.length, zeroext ? "at most" : "expected", t.size);
      return;
    }
  }
  data_left_ = d.length;
}

std::string HvmScan::finish() {
  if (fault_.empty() && !header_done_ && !in_header_)
    fault_ = "hypervisor: HVM restore: no HEADER entry (the blob is shorter than a descriptor)";
  if (fault_.empty() && !ended_) fault_ = "hypervisor: HVM restore: save did not end with a null entry";
  return fault_;
}

}  // namespace xsr::strict
