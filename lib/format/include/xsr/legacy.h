// The legacy (Xen <= 4.5) save format, as REFERENCE.md "Legacy input"
// describes it: constants and packed chunk layouts only.
#pragma once

#include <cstdint>

namespace xsr::legacy {

// Chunk markers (s32). Positive values are page batches of that many pfns.
enum Chunk : std::int32_t {
  END = 0,
  ENABLE_VERIFY_MODE = -1,
  VCPU_INFO = -2,
  HVM_IDENT_PT = -3,
  HVM_VM86_TSS = -4,
  TMEM = -5,
  TMEM_EXTRA = -6,
  TSC_INFO = -7,
  HVM_CONSOLE_PFN = -8,
  LAST_CHECKPOINT = -9,
  HVM_ACPI_IOPORTS_LOCATION = -10,
  HVM_VIRIDIAN = -11,
  COMPRESSED_DATA = -12,
  ENABLE_COMPRESSION = -13,
  HVM_GENERATION_ID_ADDR = -14,
  HVM_PAGING_RING_PFN = -15,
  HVM_MONITOR_RING_PFN = -16,
  HVM_SHARING_RING_PFN = -17,
  TOOLSTACK = -18,
  HVM_IOREQ_SERVER_PFN = -19,
  HVM_NR_IOREQ_SERVER_PAGES = -20,
};

// The name the reference's -v prints for a chunk marker <= 0 ("unknown"
// outside the table).
const char* chunk_name(std::int32_t marker);

// The HVM param index a param chunk maps to, or -1 when it is not one.
int hvm_param_of(std::int32_t marker);

constexpr std::int32_t kMaxBatch = 1024;
constexpr std::int32_t kMaxVcpuId = 4095;

// Page batch entries: type in bits 31-28, pfn in bits 27-0.
constexpr std::uint64_t kTypeMask = 0xf0000000;
constexpr std::uint64_t kPfnMask = 0x0fffffff;
constexpr std::uint64_t kDropped = 0xf0000000;  // XTAB with no pfn: dropped
constexpr std::uint64_t kFirstPageless = 0xd0000000;

// PV extended-info block ids and the vcpu block sizes that name the guest.
constexpr std::uint32_t kVcpuCtx64 = 0x1430;  // 64-bit guest: width 8, 4 levels
constexpr std::uint32_t kVcpuCtx32 = 0xaf0;   // 32-bit guest: width 4, 3 levels
constexpr std::uint32_t kExtendedCtx = 128;

#pragma pack(push, 1)
// `=IQ`: an HVM param chunk (the u32 is ignored).
struct ParamChunk {
  std::uint32_t unused;
  std::uint64_t value;
};
static_assert(sizeof(ParamChunk) == 12);

// `=IQII`: TSC info.
struct TscChunk {
  std::uint32_t mode;
  std::uint64_t nsec;
  std::uint32_t khz;
  std::uint32_t incarnation;
};
static_assert(sizeof(TscChunk) == 20);

// `=QQQI`: one libxl physmap entry of the toolstack chunk, name follows.
struct PhysmapEntry {
  std::uint64_t phys_offset;
  std::uint64_t start_addr;
  std::uint64_t size;
  std::uint32_t namelen;
};
static_assert(sizeof(PhysmapEntry) == 28);
#pragma pack(pop)

constexpr char kQemuSignature[] = "DeviceModelRecord0002";
constexpr std::size_t kQemuSignatureLen = 21;
static_assert(sizeof(kQemuSignature) == kQemuSignatureLen + 1);

}  // namespace xsr::legacy
