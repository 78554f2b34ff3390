// Wire formats of Xen save images and migration streams: structs and
// constants only, no logic. Each struct cites the spec section it mirrors
// (specs/libxc-migration-stream.pandoc, specs/libxl-migration-stream.pandoc,
// REFERENCE.md). Records are little-endian; the libxc image header and the
// libxl header are big-endian and are swapped at the edge (see be32/be64).
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>

namespace xsr {

static_assert(std::endian::native == std::endian::little, "xsr reads little-endian records in place");

constexpr std::uint32_t bswap32(std::uint32_t v) {
  return ((v & 0xffu) << 24) | ((v & 0xff00u) << 8) | ((v >> 8) & 0xff00u) | (v >> 24);
}
constexpr std::uint64_t bswap64(std::uint64_t v) {
  return (std::uint64_t{bswap32(static_cast<std::uint32_t>(v))} << 32) |
         bswap32(static_cast<std::uint32_t>(v >> 32));
}
constexpr std::uint16_t bswap16(std::uint16_t v) { return static_cast<std::uint16_t>((v << 8) | (v >> 8)); }

// Loads a trivially copyable T from possibly unaligned bytes. Callers check
// the bounds first.
template <typename T>
inline T load(const std::byte* p) {
  T v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
template <typename T>
inline void store(std::byte* p, const T& v) {
  std::memcpy(p, &v, sizeof v);
}

constexpr std::uint64_t kPageSize = 4096;
constexpr unsigned kPageShift = 12;
// Xen's restore refuses record bodies over this size (xg_sr_common.h).
constexpr std::uint64_t kMaxRecordBody = 128ull << 20;

// Every record of both layers: "Records" / "Record Overview".
struct RecordHeader {
  std::uint32_t type;
  std::uint32_t length;  // body length, padding to 8 bytes not included
};
static_assert(sizeof(RecordHeader) == 8);
static_assert(offsetof(RecordHeader, length) == 4);

constexpr std::uint64_t padded(std::uint64_t len) { return (len + 7) & ~std::uint64_t{7}; }

constexpr std::uint32_t kOptionalRecordBit = 0x80000000u;

namespace libxc {

// "Image Header" (big-endian on the wire).
struct ImageHeader {
  std::uint64_t marker;   // all ones
  std::uint32_t id;       // "XENF"
  std::uint32_t version;  // 2 or 3
  std::uint16_t options;  // bit 0: endianness
  std::uint16_t reserved1;
  std::uint32_t reserved2;
};
static_assert(sizeof(ImageHeader) == 24);
static_assert(offsetof(ImageHeader, id) == 8);
static_assert(offsetof(ImageHeader, version) == 12);
static_assert(offsetof(ImageHeader, options) == 16);
static_assert(offsetof(ImageHeader, reserved1) == 18);
static_assert(offsetof(ImageHeader, reserved2) == 20);

constexpr std::uint64_t kMarker = ~std::uint64_t{0};
constexpr std::uint32_t kIdent = 0x58454E46;  // "XENF"
constexpr std::uint16_t kOptBigEndian = 1;
constexpr std::uint16_t kOptReservedMask = 0xfffe;

// "Domain Header" (record endianness).
struct DomainHeader {
  std::uint32_t type;
  std::uint16_t page_shift;
  std::uint16_t reserved;
  std::uint32_t xen_major;
  std::uint32_t xen_minor;
};
static_assert(sizeof(DomainHeader) == 16);
static_assert(offsetof(DomainHeader, page_shift) == 4);
static_assert(offsetof(DomainHeader, reserved) == 6);
static_assert(offsetof(DomainHeader, xen_major) == 8);
static_assert(offsetof(DomainHeader, xen_minor) == 12);

enum DomainType : std::uint32_t { kX86Pv = 1, kX86Hvm = 2, kX86Pvh = 3, kArm = 4 };

// "Records": type field.
enum RecordType : std::uint32_t {
  END = 0x00,
  PAGE_DATA = 0x01,
  X86_PV_INFO = 0x02,
  X86_PV_P2M_FRAMES = 0x03,
  X86_PV_VCPU_BASIC = 0x04,
  X86_PV_VCPU_EXTENDED = 0x05,
  X86_PV_VCPU_XSAVE = 0x06,
  SHARED_INFO = 0x07,
  X86_TSC_INFO = 0x08,
  HVM_CONTEXT = 0x09,
  HVM_PARAMS = 0x0a,
  TOOLSTACK = 0x0b,
  X86_PV_VCPU_MSRS = 0x0c,
  VERIFY = 0x0d,
  CHECKPOINT = 0x0e,
  CHECKPOINT_DIRTY_PFN_LIST = 0x0f,
  STATIC_DATA_END = 0x10,
  X86_CPUID_POLICY = 0x11,
  X86_MSR_POLICY = 0x12,
  kRecordTypeCount = 0x13,
};

// "PAGE_DATA": body header, then count u64 pfn entries, then pages.
struct PageDataHeader {
  std::uint32_t count;
  std::uint32_t reserved;
};
static_assert(sizeof(PageDataHeader) == 8);

constexpr std::uint64_t kPfnMask = (std::uint64_t{1} << 52) - 1;
constexpr std::uint64_t kPfnReservedMask = ((std::uint64_t{1} << 60) - 1) & ~kPfnMask;
constexpr unsigned kPfnTypeShift = 60;

// XEN_DOMCTL_PFINFO_* values (the top nibble of a pfn entry).
enum PageType : unsigned {
  NOTAB = 0x0,
  L1TAB = 0x1,
  L2TAB = 0x2,
  L3TAB = 0x3,
  L4TAB = 0x4,
  L1TAB_PIN = 0x9,
  L2TAB_PIN = 0xa,
  L3TAB_PIN = 0xb,
  L4TAB_PIN = 0xc,
  BROKEN = 0xd,
  XALLOC = 0xe,
  XTAB = 0xf,
};
constexpr bool page_type_reserved(unsigned t) { return t >= 5 && t <= 8; }
// The low three type bits select page tables; 0x0-0x4 and 0x9-0xc carry data.
constexpr bool page_type_has_data(unsigned t) { return (t & 7) <= 4 && !page_type_reserved(t); }

// "X86_PV_INFO".
struct X86PvInfo {
  std::uint8_t guest_width;
  std::uint8_t pt_levels;
  std::uint16_t reserved1;
  std::uint32_t reserved2;
};
static_assert(sizeof(X86PvInfo) == 8);
static_assert(offsetof(X86PvInfo, pt_levels) == 1);
static_assert(offsetof(X86PvInfo, reserved2) == 4);

// "X86_PV_P2M_FRAMES": then (end - start) / fpp + 1 u64 frames.
struct X86PvP2mFrames {
  std::uint32_t start_pfn;
  std::uint32_t end_pfn;
};
static_assert(sizeof(X86PvP2mFrames) == 8);

// "X86_PV_VCPU_BASIC, EXTENDED, XSAVE, MSRS": then the context blob.
struct X86PvVcpuHeader {
  std::uint32_t vcpu_id;
  std::uint32_t reserved;
};
static_assert(sizeof(X86PvVcpuHeader) == 8);

// "X86_TSC_INFO".
struct X86TscInfo {
  std::uint32_t mode;
  std::uint32_t khz;
  std::uint64_t nsec;
  std::uint32_t incarnation;
  std::uint32_t reserved;
};
static_assert(sizeof(X86TscInfo) == 24);
static_assert(offsetof(X86TscInfo, nsec) == 8);
static_assert(offsetof(X86TscInfo, incarnation) == 16);

// "HVM_PARAMS": header then count entries.
struct HvmParamsHeader {
  std::uint32_t count;
  std::uint32_t reserved;
};
struct HvmParam {
  std::uint64_t index;
  std::uint64_t value;
};
static_assert(sizeof(HvmParamsHeader) == 8);
static_assert(sizeof(HvmParam) == 16);

// "HVM_CONTEXT": the body is Xen's HVM save blob (hvm::SaveDescriptor
// entries, xsr/guest_state.h).

// xen_cpuid_leaf_t and xen_msr_entry_t sizes ("X86_CPUID_POLICY", "X86_MSR_POLICY").
constexpr std::uint32_t kCpuidLeafSize = 24;
constexpr std::uint32_t kMsrEntrySize = 16;

}  // namespace libxc

namespace libxl {

// "Header" (big-endian on the wire).
struct Header {
  std::uint64_t ident;  // "LibxlFmt"
  std::uint32_t version;
  std::uint32_t options;
};
static_assert(sizeof(Header) == 16);
static_assert(offsetof(Header, version) == 8);
static_assert(offsetof(Header, options) == 12);

constexpr std::uint64_t kIdent = 0x4c6962786c466d74;  // "LibxlFmt"
constexpr std::uint32_t kVersion = 2;
constexpr std::uint32_t kOptBigEndian = 1u << 0;
constexpr std::uint32_t kOptLegacy = 1u << 1;
constexpr std::uint32_t kOptReservedMask = ~(kOptBigEndian | kOptLegacy);

// "Record Overview": type field.
enum RecordType : std::uint32_t {
  END = 0,
  LIBXC_CONTEXT = 1,
  EMULATOR_XENSTORE_DATA = 2,
  EMULATOR_CONTEXT = 3,
  CHECKPOINT_END = 4,
  CHECKPOINT_STATE = 5,
  kRecordTypeCount = 6,
};

// "Emulator Records": common sub header.
struct EmulatorHeader {
  std::uint32_t id;
  std::uint32_t index;
};
static_assert(sizeof(EmulatorHeader) == 8);

enum EmulatorId : std::uint32_t { kEmuUnknown = 0, kEmuQemuTrad = 1, kEmuQemuUpstream = 2 };

}  // namespace libxl

namespace xl {

// REFERENCE.md "Legacy input" 1: the xl save-file header.
constexpr char kMagic[] = "Xen saved domain, xl format\n \0 \r";
constexpr std::size_t kMagicLen = 32;
static_assert(sizeof(kMagic) == kMagicLen + 1);

struct Header {
  char magic[32];
  std::uint32_t byteorder;  // 0x01020304
  std::uint32_t mandatory_flags;
  std::uint32_t optional_flags;
  std::uint32_t optional_data_len;
};
static_assert(sizeof(Header) == 48);
static_assert(offsetof(Header, byteorder) == 32);
static_assert(offsetof(Header, optional_data_len) == 44);

constexpr std::uint32_t kByteOrder = 0x01020304;
constexpr std::uint32_t kFlagJson = 1u << 0;
constexpr std::uint32_t kFlagStreamV2 = 1u << 1;  // a libxl v2 stream follows

// The optional data is a u32 config length (host byte order), then the
// config, its NUL included (tools/xl's save_domain_core_writeconfig; xl's
// restore says "Savefile truncated." when it is shorter). The config's
// bytes in `optdata` (the first part, or all, of `total` bytes of optional
// data) without trailing NULs, or false when the data has not that shape.
inline bool config_in_optional_data(std::string_view optdata, std::uint64_t total, std::string_view& config) {
  std::uint32_t n;
  if (optdata.size() < sizeof n || total < sizeof n) return false;
  std::memcpy(&n, optdata.data(), sizeof n);
  if (n > total - sizeof n) return false;
  config = optdata.substr(sizeof n, n);
  while (!config.empty() && config.back() == '\0') config.remove_suffix(1);
  return true;
}

}  // namespace xl

namespace libvirt {

// REFERENCE.md "Other headers seen in the wild".
constexpr char kMagic[] = "libvirt-xml\n \0 \r";
constexpr std::size_t kMagicLen = 16;
static_assert(sizeof(kMagic) == kMagicLen + 1);

struct Header {
  char magic[16];
  std::uint32_t version;  // 1: legacy stream follows, 2: libxl v2 stream follows
  std::uint32_t xml_len;
  std::uint32_t unused[10];
};
static_assert(sizeof(Header) == 64);
static_assert(offsetof(Header, version) == 16);
static_assert(offsetof(Header, xml_len) == 20);

}  // namespace libvirt

}  // namespace xsr
