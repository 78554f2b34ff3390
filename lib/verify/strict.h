// What --strict remembers of a libxc stream to judge it as Xen 4.17's
// restore (libxenguest, xg_sr_restore*.c) and the hypervisor (hvm_load,
// tsc_set_info, hvm_set_param, setvcpucontext) would: the PV guest's p2m
// as restore builds it (types and populated pfns), the vCPU fields restore
// reads when the stream completes, the start_info pages' XenStore and
// console pfns, the HVM context's verdict and the HVM params set so far.
// docs/strict.md says which rule comes from where.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "xsr/error.h"
#include "xsr/guest_state.h"

namespace xsr::strict {

using u64 = std::uint64_t;
using u32 = std::uint32_t;

// Per pfn: the type nibble restore recorded (set_page_type) and whether
// the pfn is populated (it got a frame: a PAGE_DATA entry of a type
// restore populates, or a pagetable entry naming it). Chunks of 64 Ki
// pfns are made when first written, so memory follows the pfns sent, not
// the p2m size a record claims.
class PfnMap {
 public:
  static constexpr std::uint8_t kPopulated = 0x10;
  // A NOTAB page whose start_info XenStore and console fields named pfns
  // in the p2m and populated when it was sent (both only grow after).
  static constexpr std::uint8_t kStartInfoOk = 0x20;
  PfnMap() = default;
  PfnMap(const PfnMap& o) { *this = o; }
  PfnMap& operator=(const PfnMap& o);
  PfnMap(PfnMap&&) = default;
  PfnMap& operator=(PfnMap&&) = default;

  std::uint8_t get(u64 pfn) const {
    const u64 c = pfn >> kShift;
    if (c >= chunks_.size() || !chunks_[c]) return 0;
    return chunks_[c][pfn & kMask];
  }
  std::uint8_t& at(u64 pfn) {
    const u64 c = pfn >> kShift;
    if (c >= chunks_.size()) chunks_.resize(c + 1);
    if (!chunks_[c]) chunks_[c] = std::make_unique<std::uint8_t[]>(kChunk);
    return chunks_[c][pfn & kMask];
  }
  std::uint8_t type(u64 pfn) const { return get(pfn) & 0xf; }
  bool populated(u64 pfn) const { return get(pfn) & kPopulated; }

 private:
  static constexpr unsigned kShift = 16;
  static constexpr u64 kChunk = u64{1} << kShift, kMask = kChunk - 1;
  std::vector<std::unique_ptr<std::uint8_t[]>> chunks_;
};

// The X86_PV_VCPU_BASIC fields restore reads, and the record they came in.
struct Vcpu {
  bool basic = false;
  Error where;  // the BASIC record (detail empty)
  u64 rdx = 0, cr3 = 0, cr1 = 0;
  u32 gdt_ents = 0;
  std::array<u64, 16> gdt{};
  // X86_PV_VCPU_EXTENDED: libxc copies the blob over the domctl, so its
  // first u32 is the vcpu the hypervisor sets.
  bool ext = false;
  u32 ext_vcpu = 0;
  Error ext_where;
};

// A page that starts with start_info's magic "xen-": its XenStore and
// console pfns (restore reads them from vCPU 0's start_info page).
struct StartInfo {
  u64 store = 0, console = 0;
};

// The streaming check of an HVM_CONTEXT body against hvm_load's framing
// and loaders (xen/arch/x86/hvm/save.c): fed the body in pieces, it keeps
// the first fault.
class HvmScan {
 public:
  void begin(u64 body_len, u32 max_vcpus);
  void add(const std::byte* p, std::size_t n);
  // The fault, once the whole body was fed ("" when hvm_load takes it).
  std::string finish();

 private:
  void descriptor();
  u64 len_ = 0, pos_ = 0;
  u32 max_vcpus_ = hvm::kMaxVcpus;
  std::array<std::uint8_t, 8> desc_{};
  unsigned have_desc_ = 0;
  u64 data_left_ = 0;
  bool in_header_ = false, header_done_ = false, ended_ = false;
  std::array<std::uint8_t, 8> head_{};  // magic and version of HEADER
  unsigned have_head_ = 0;
  std::string fault_;
};

// The facts of one libxc stream; copied whole at each Remus checkpoint.
struct Model {
  // PV
  u32 width = 8, levels = 4;
  u32 max_vcpus = hvm::kMaxVcpus;
  u64 max_pfn = 0;
  bool p2m_sized = false;
  PfnMap pfns;
  std::vector<u64> frames;         // p2m_pfns, ~0: never set
  std::vector<u32> frame_rec;      // index into frame_where
  std::vector<Error> frame_where;  // the P2M_FRAMES records
  std::map<u32, Vcpu> vcpus;
  std::vector<std::pair<u64, StartInfo>> start_infos;
  // HVM
  bool hvm_context = false;
  Error hvm_fault;  // the last HVM_CONTEXT's verdict (ok: none)
  std::map<u32, u64> params;
};

// Start info pfn, GDT frames, cr3 and cr1 of every vCPU, then the p2m
// frames, in the order x86_pv_stream_complete() checks them.
Error pv_stream_complete(const Model& m, const Error& end);

// The domain's vCPU count an xl config (JSON or xl.cfg text) or libvirt
// XML gives: max_vcpus, maxvcpus, vcpus, <vcpu>, in that order of
// preference; 0 when it names none (the domain then has Xen's maximum,
// hvm::kMaxVcpus, as far as --strict is concerned).
u32 config_vcpus(std::string_view config);

// The first value check of hvm_set_param() (and libxc's) an HVM_PARAMS
// entry fails, or "" (records the value set).
std::string hvm_param(Model& m, u64 index, u64 value);

}  // namespace xsr::strict
