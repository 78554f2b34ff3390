#include "xsr/records.h"

#include <array>
#include <cstdarg>
#include <cstdio>
#include <string>

#include "xsr/error.h"
#include "xsr/format.h"

namespace xsr {
namespace {

constexpr std::uint64_t A = kAnyLength;

// Length rules are those of the reference verifier (REFERENCE.md, "Checks of
// the reference verifier"), which lib/verify/rules.cc words as it does;
// --strict adds Xen's restore rules on top. CHECKPOINT_DIRTY_PFN_LIST's are
// the spec's: the reference refuses the record whatever its length.
constexpr std::array<RecordInfo, libxc::kRecordTypeCount> kLibxc{{
    {libxc::END, "END", "End", 0, 0, 1, 2},
    {libxc::PAGE_DATA, "PAGE_DATA", "Page data", 9, A, 1, 2},
    {libxc::X86_PV_INFO, "X86_PV_INFO", "x86 PV info", 8, 8, 1, 2},
    {libxc::X86_PV_P2M_FRAMES, "X86_PV_P2M_FRAMES", "x86 PV P2M frames", 8, A, 8, 2},
    {libxc::X86_PV_VCPU_BASIC, "X86_PV_VCPU_BASIC", "x86 PV vcpu basic", 8, A, 1, 2},
    {libxc::X86_PV_VCPU_EXTENDED, "X86_PV_VCPU_EXTENDED", "x86 PV vcpu extended", 8, A, 1, 2},
    {libxc::X86_PV_VCPU_XSAVE, "X86_PV_VCPU_XSAVE", "x86 PV vcpu xsave", 8, A, 1, 2},
    {libxc::SHARED_INFO, "SHARED_INFO", "Shared info", 4096, 4096, 1, 2},
    {libxc::X86_TSC_INFO, "X86_TSC_INFO", "TSC info", 24, 24, 1, 2},
    {libxc::HVM_CONTEXT, "HVM_CONTEXT", "HVM context", 1, A, 1, 2},
    {libxc::HVM_PARAMS, "HVM_PARAMS", "HVM params", 8, A, 1, 2},
    {libxc::TOOLSTACK, "TOOLSTACK", "Toolstack", 0, A, 1, 2},
    {libxc::X86_PV_VCPU_MSRS, "X86_PV_VCPU_MSRS", "x86 PV vcpu msrs", 8, A, 1, 2},
    {libxc::VERIFY, "VERIFY", "Verify", 0, 0, 1, 2},
    {libxc::CHECKPOINT, "CHECKPOINT", "Checkpoint", 0, 0, 1, 2},
    {libxc::CHECKPOINT_DIRTY_PFN_LIST, "CHECKPOINT_DIRTY_PFN_LIST", "Checkpoint dirty pfn list", 0, A, 8, 2},
    {libxc::STATIC_DATA_END, "STATIC_DATA_END", "Static data end", 0, 0, 1, 3},
    {libxc::X86_CPUID_POLICY, "X86_CPUID_POLICY", "x86 CPUID policy", libxc::kCpuidLeafSize, A,
     libxc::kCpuidLeafSize, 3},
    {libxc::X86_MSR_POLICY, "X86_MSR_POLICY", "x86 MSR policy", libxc::kMsrEntrySize, A, libxc::kMsrEntrySize,
     3},
}};

constexpr std::array<RecordInfo, libxl::kRecordTypeCount> kLibxl{{
    {libxl::END, "END", "End", 0, 0, 1, 0},
    {libxl::LIBXC_CONTEXT, "LIBXC_CONTEXT", "Libxc context", 0, 0, 1, 0},
    {libxl::EMULATOR_XENSTORE_DATA, "EMULATOR_XENSTORE_DATA", "Emulator xenstore data", 8, A, 1, 0},
    {libxl::EMULATOR_CONTEXT, "EMULATOR_CONTEXT", "Emulator context", 8, A, 1, 0},
    {libxl::CHECKPOINT_END, "CHECKPOINT_END", "Checkpoint end", 0, 0, 1, 0},
    {libxl::CHECKPOINT_STATE, "CHECKPOINT_STATE", "Checkpoint state", 1, A, 1, 0},
}};

// Compile-time check that each table is indexed by its type.
template <std::size_t N>
constexpr bool indexed_by_type(const std::array<RecordInfo, N>& t) {
  for (std::size_t i = 0; i < N; ++i)
    if (t[i].type != i) return false;
  return true;
}
static_assert(indexed_by_type(kLibxc));
static_assert(indexed_by_type(kLibxl));

}  // namespace

const RecordInfo* record_info(Layer layer, std::uint32_t type) {
  if (layer == Layer::libxc) return type < kLibxc.size() ? &kLibxc[type] : nullptr;
  return type < kLibxl.size() ? &kLibxl[type] : nullptr;
}

std::string record_name(Layer layer, std::uint32_t type) {
  if (const RecordInfo* ri = record_info(layer, type)) return std::string(ri->spec_name);
  char buf[40];
  std::snprintf(buf, sizeof buf, "%s_0x%08x", (type & kOptionalRecordBit) ? "OPTIONAL" : "UNKNOWN", type);
  return buf;
}

std::string_view page_type_name(unsigned type) {
  static constexpr std::array<std::string_view, 16> kNames{
      "NOTAB",      "L1TAB",      "L2TAB",      "L3TAB",     "L4TAB",     "RESERVED_5",
      "RESERVED_6", "RESERVED_7", "RESERVED_8", "L1TAB_PIN", "L2TAB_PIN", "L3TAB_PIN",
      "L4TAB_PIN",  "BROKEN",     "XALLOC",     "XTAB"};
  return kNames[type & 0xf];
}

std::string_view hvm_param_name(std::uint64_t index) {
  // xen/include/public/hvm/params.h indices, as the legacy stream uses them.
  switch (index) {
    case 0: return "CALLBACK_IRQ";
    case 1: return "STORE_PFN";
    case 2: return "STORE_EVTCHN";
    case 4: return "PAE_ENABLED";
    case 5: return "IOREQ_PFN";
    case 6: return "BUFIOREQ_PFN";
    case 9: return "VIRIDIAN";
    case 10: return "TIMER_MODE";
    case 11: return "HPET_ENABLED";
    case 12: return "IDENT_PT";
    case 13: return "DM_DOMAIN";
    case 14: return "ACPI_S_STATE";
    case 15: return "VM86_TSS";
    case 16: return "VPT_ALIGN";
    case 17: return "CONSOLE_PFN";
    case 18: return "CONSOLE_EVTCHN";
    case 19: return "ACPI_IOPORTS_LOCATION";
    case 24: return "NESTEDHVM";
    case 26: return "BUFIOREQ_EVTCHN";
    case 27: return "PAGING_RING_PFN";
    case 28: return "MONITOR_RING_PFN";
    case 29: return "SHARING_RING_PFN";
    case 31: return "TRIPLE_FAULT_REASON";
    case 32: return "IOREQ_SERVER_PFN";
    case 33: return "NR_IOREQ_SERVER_PAGES";
    case 34: return "VM_GENERATION_ID_ADDR";
    case 35: return "ALTP2M";
    case 36: return "X87_FIP_WIDTH";
    case 37: return "VM86_TSS_SIZED";
    case 38: return "MCA_CAP";
    default: return {};
  }
}

// Error::message() lives here, not in base: record names are the format
// layer's.
std::string Error::message() const {
  char head[128];
  if (record == kNoRecord) {
    std::snprintf(head, sizeof head, "offset 0x%llx: ", static_cast<unsigned long long>(offset));
  } else {
    std::snprintf(head, sizeof head,
                  "offset 0x%llx, %srecord %llu (%s): ", static_cast<unsigned long long>(offset),
                  layer == Layer::libxl ? "libxl " : "", static_cast<unsigned long long>(record),
                  record_name(layer, type).c_str());
  }
  return head + detail;
}

}  // namespace xsr
