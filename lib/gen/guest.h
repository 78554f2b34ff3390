// The guest a generated stream describes: where its special pages lie (PV
// pagetables, p2m frames, start_info, xenstore and console rings, GDT
// frames; HVM's special pages under the top of RAM) and what they hold, and
// the records and chunks that describe its state (vcpu contexts, the HVM
// save blob, HVM params, CPU policy, shared info), shaped as Xen 4.17's save
// writes them and its restore and hypervisor check them. Private to
// lib/gen: both generators (v2/v3 and legacy) read one plan.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "xsr/format.h"
#include "xsr/gen.h"

namespace xsr::gen_detail {

using u64 = std::uint64_t;
using u32 = std::uint32_t;

// The guest's xsave state: x87, SSE and AVX enabled, the standard-format
// area those need (legacy 512 + header 64 + AVX 256).
constexpr u64 kXcr0 = 0x7;
constexpr u32 kXsaveArea = 832;

// The pfns 0 .. range-1 a stream for `o` sends.
u64 pfn_range(const GenOptions& o);

class GuestPlan {
 public:
  GuestPlan(const GenOptions& o, u64 pfn_range);

  // The special pages are one run of pfns: [first, first + count).
  bool special(u64 pfn) const { return pfn - first_ < count_; }
  // The PFINFO type of a pfn the stream sends with data (pin bit included);
  // NOTAB for data pages.
  unsigned type(u64 pfn) const;
  // The contents of a special page.
  void fill(u64 pfn, std::byte* page) const;

  // PV: the P2M_FRAMES frame list (pfns of the frames holding the p2m).
  std::vector<u64> p2m_frame_pfns() const;
  // PV: the vcpu_guest_context of vcpu v (pfns where Xen's save puts pfns).
  std::vector<std::byte> pv_vcpu_basic(u32 v) const;
  // PV: xen_domctl_ext_vcpucontext as XEN_DOMCTL_get_ext_vcpucontext fills it.
  std::vector<std::byte> pv_vcpu_extended(u32 v) const;
  // PV: XEN_DOMCTL_getvcpuextstate's buffer: xcr0, xcr0_accum, xsave area.
  std::vector<std::byte> pv_vcpu_xsave() const;
  std::vector<std::byte> shared_info() const;
  // HVM: the hypervisor's save blob (hvm_save): HEADER, then every type in
  // typecode order, per-vcpu types once per vcpu, END. `viridian` adds the
  // VIRIDIAN_DOMAIN and VIRIDIAN_VCPU entries a viridian guest has.
  std::vector<std::byte> hvm_context(bool viridian) const;
  // HVM: the params Xen's save writes, in its order, those set nonzero.
  std::vector<libxc::HvmParam> hvm_params() const;
  // X86_CPUID_POLICY and X86_MSR_POLICY bodies.
  std::vector<std::byte> cpuid_policy() const;
  std::vector<std::byte> msr_policy() const;

  u32 vcpus() const { return vcpus_; }
  // HVM special pages (Xen's SPECIALPAGE_* order) and ioreq server pages.
  u64 hvm_special(u32 which) const { return hvm_special_ + which; }
  u64 hvm_ioreq_server() const { return hvm_ioreq_server_; }
  u32 hvm_ioreq_server_pages() const { return hvm_ioreq_server_pages_; }

  enum HvmSpecial : u32 { kPaging, kAccess, kSharing, kBufioreq, kXenstore, kIoreq, kIdentPt, kConsole };

 private:
  void plan_pv();
  void plan_hvm();
  void fill_pagetable(u64 pfn, std::byte* page) const;
  void fill_start_info(std::byte* page) const;
  u64 kernel_va(u64 pfn) const;

  const GenOptions& o_;
  u64 range_;
  u32 vcpus_;
  u64 first_ = 0, count_ = 0;
  // PV, in pfn order from first_: the top-level table, (L3 for 64-bit), L2,
  // L1s, p2m frames, start_info, xenstore, console, one GDT frame a vcpu.
  u64 top_ = 0, l2_ = 0, l1_ = 0, l1_count_ = 0, mapped_ = 0;
  u64 p2m_ = 0, p2m_count_ = 0, start_info_ = 0, store_ = 0, console_ = 0, gdt_ = 0, gdt_count_ = 0;
  // HVM.
  u64 hvm_special_ = 0, hvm_ioreq_server_ = 0;
  u32 hvm_ioreq_server_pages_ = 0;
};

}  // namespace xsr::gen_detail
