#include "guest.h"

#include <algorithm>
#include <cstring>

#include "xsr/guest_state.h"

namespace xsr::gen_detail {
namespace {

// Pagetable entry flags (x86): present, writable, user, accessed, dirty.
constexpr u64 kP = 0x1, kRw = 0x2, kUser = 0x4, kA = 0x20, kD = 0x40;
constexpr u64 kTableFlags = kP | kRw | kUser | kA | kD;  // Linux's _PAGE_TABLE
constexpr u64 kDataFlags = kP | kRw | kA | kD;           // kernel data, writable
constexpr u64 kRoFlags = kP | kA;                        // Linux maps its pagetables read-only
// The pages the initial L1 tables map at the kernel's base (Linux maps its
// image, pagetables, p2m and start_info there): at most four L1 tables.
constexpr u64 kMappedPfns = 4 * pv::kPtesPerPage;

// Xen's PV selectors: FLAT_RING3_CS64/SS64 for 64-bit kernels (ring 3),
// FLAT_RING1_CS/SS for 32-bit ones (ring 1), FLAT_RING3_CS32 for the
// 32-bit syscall/sysenter callbacks.
constexpr u64 kCs64 = 0xe033, kSs64 = 0xe02b, kCs32 = 0xe019, kSs32 = 0xe021, kCompatCs = 0xe023;
// VGCF_i387_valid | VGCF_in_kernel | failsafe and syscall disable events |
// VGCF_online: what arch_get_info_guest reports for a Linux vcpu in its kernel.
constexpr u64 kVgcfFlags64 = 0x3d, kVgcfFlags32 = 0x2d;
constexpr u64 kCr0 = 0x8005003b;  // PG AM WP NE ET TS MP PE, as Xen reports a PV vcpu's
constexpr u64 kPvCr4 = 0x620;     // PAE OSFXSR OSXMMEXCPT

template <typename T>
void put(std::vector<std::byte>& v, std::size_t off, T x) {
  std::memcpy(v.data() + off, &x, sizeof x);
}
template <typename T>
void put(std::byte* p, std::size_t off, T x) {
  std::memcpy(p + off, &x, sizeof x);
}
// A register or ulong of the guest's width.
void put_word(std::byte* p, std::size_t off, u64 x, u32 width) {
  if (width == 4) put(p, off, static_cast<u32>(x));
  else put(p, off, x);
}

// An FXSAVE image after FNINIT: control word and MXCSR at their reset values.
void fxsave_init(std::byte* p) {
  put(p, 0, std::uint16_t{0x37f});
  put(p, 24, u32{0x1f80});
  put(p, 28, u32{0xffff});  // MXCSR_MASK
}

// Bytes of a table as a record body (sized, then copied: gcc 12 misreads
// insert() into an empty vector as an overflow).
std::vector<std::byte> bytes_of(const void* p, std::size_t n) {
  std::vector<std::byte> v(n);
  std::memcpy(v.data(), p, n);
  return v;
}

// A xenstore ring page (xenstore_domain_interface) at rest: both rings
// drained, the reconnection feature offered, connected.
void fill_xenstore(std::byte* page) {
  static const char kRsp[] = "\x01\x00\x00\x00control/shutdown\0suspend";
  std::memcpy(page + 1024, kRsp, sizeof kRsp);
  for (std::size_t off = 2048; off < 2064; off += 4) put(page, off, u32{0x1c4});
  put(page, 2064, u32{1});
}

// A console ring page (xencons_interface): the boot log out, all read.
void fill_console(std::byte* page) {
  static const char kOut[] =
      "[    0.000000] Linux version 6.1.0-18-amd64 (debian-kernel@lists.debian.org)\n"
      "[    0.000000] Command line: root=/dev/xvda1 ro console=hvc0\n"
      "[    2.104311] xen:grant_table: Grant tables using version 1 layout\n"
      "[   12.871002] Freezing user space processes ... (elapsed 0.001 seconds) done.\n";
  std::memcpy(page + 1024, kOut, sizeof kOut - 1);
  put(page, 3080, u32{sizeof kOut - 1});  // out_cons
  put(page, 3084, u32{sizeof kOut - 1});  // out_prod
}

bool in_vga_hole(u64 pfn) { return pfn >= 0xa0 && pfn < 0xc0; }

}  // namespace

u64 pfn_range(const GenOptions& o) {
  const u64 body = std::max<u64>(o.size, 16 << 10);
  return std::max<u64>(body / (kPageSize + 8), 16);
}

GuestPlan::GuestPlan(const GenOptions& o, u64 range)
    : o_(o), range_(range), vcpus_(std::clamp<u32>(o.vcpus, 1, kGenMaxVcpus)) {
  if (o.hvm) plan_hvm();
  else plan_pv();
}

void GuestPlan::plan_pv() {
  const bool four = o_.pv_width == 8;
  const u64 fpp = kPageSize / o_.pv_width;
  p2m_count_ = (range_ + fpp - 1) / fpp;
  mapped_ = std::min(range_, kMappedPfns);
  l1_count_ = (mapped_ + pv::kPtesPerPage - 1) / pv::kPtesPerPage;
  const u64 base = (four ? 3 : 2) + l1_count_ + p2m_count_ + 3;
  // A GDT frame a vcpu where there is room; gdt_ents 0 otherwise.
  gdt_count_ = base + vcpus_ <= range_ / 2 ? vcpus_ : 0;
  count_ = base + gdt_count_;
  // After a few pages of "kernel image", as Linux's initial tables follow it.
  first_ = std::min(std::clamp<u64>(range_ / 8, 2, 0x400), range_ - count_);
  top_ = first_;
  l2_ = top_ + (four ? 2 : 1);
  l1_ = l2_ + 1;
  p2m_ = l1_ + l1_count_;
  start_info_ = p2m_ + p2m_count_;
  store_ = start_info_ + 1;
  console_ = store_ + 1;
  gdt_ = console_ + 1;
}

void GuestPlan::plan_hvm() {
  // Xen's HVM builder puts 8 special pages and, below them, 8 ioreq server
  // pages under the end of its special region; here under the top of RAM
  // (or under the VGA hole when the top would overlap it).
  hvm_ioreq_server_pages_ = range_ >= 64 ? 8 : 0;
  count_ = 8 + hvm_ioreq_server_pages_;
  u64 end = range_;
  if (end > 0xa0 && end - count_ < 0xc0) end = 0xa0;
  first_ = end - count_;
  hvm_ioreq_server_ = first_;
  hvm_special_ = end - 8;
}

unsigned GuestPlan::type(u64 pfn) const {
  if (o_.hvm || !special(pfn)) return libxc::NOTAB;
  // Pinned as Linux pins them: the top-level table (xen_pgd_pin) and the
  // L1 tables (split pte locks); the L3 and L2 between are only typed.
  if (pfn == top_) return o_.pv_width == 8 ? libxc::L4TAB_PIN : libxc::L3TAB_PIN;
  if (o_.pv_width == 8 && pfn == top_ + 1) return libxc::L3TAB;
  if (pfn == l2_) return libxc::L2TAB;
  if (pfn - l1_ < l1_count_) return libxc::L1TAB_PIN;
  return libxc::NOTAB;
}

u64 GuestPlan::kernel_va(u64 pfn) const {
  return (o_.pv_width == 8 ? 0xffffffff80000000ull : 0xc0000000ull) + pfn * kPageSize;
}

void GuestPlan::fill(u64 pfn, std::byte* page) const {
  std::memset(page, 0, kPageSize);
  if (o_.hvm) {
    if (pfn == hvm_special(kXenstore)) fill_xenstore(page);
    else if (pfn == hvm_special(kConsole)) fill_console(page);
    else if (pfn == hvm_special(kIdentPt))
      // 1024 PSE entries identity-mapping 4 GiB, as the builder writes it.
      for (u32 i = 0; i < 1024; ++i) put(page, 4 * i, u32{(i << 22) | 0xe7});
    return;
  }
  const u32 w = o_.pv_width;
  if (type(pfn) != libxc::NOTAB) {
    fill_pagetable(pfn, page);
  } else if (pfn - p2m_ < p2m_count_) {
    // The p2m as the guest left it: pfn i -> i (restore rewrites it with
    // the new mfns), invalid entries past the last pfn.
    const u64 fpp = kPageSize / w, base = (pfn - p2m_) * fpp;
    for (u64 j = 0; j < fpp; ++j) put_word(page, j * w, base + j < range_ ? base + j : ~u64{0}, w);
  } else if (pfn == start_info_) {
    fill_start_info(page);
  } else if (pfn == store_) {
    fill_xenstore(page);
  } else if (pfn == console_) {
    fill_console(page);
  }
  // GDT frames stay zero: not-present descriptors, which Xen accepts.
}

void GuestPlan::fill_pagetable(u64 pfn, std::byte* page) const {
  auto entry = [&](u64 i, u64 target, u64 flags) { put(page, 8 * i, (target << kPageShift) | flags); };
  const bool four = o_.pv_width == 8;
  if (pfn == top_ && four) {
    entry(511, top_ + 1, kTableFlags);  // 0xffffff8000000000: the kernel's L3
  } else if (pfn == top_) {
    entry(3, l2_, kP);  // PAE: 0xc0000000; Xen refuses other flags in an L3e
  } else if (four && pfn == top_ + 1) {
    entry(510, l2_, kTableFlags);  // 0xffffffff80000000
  } else if (pfn == l2_) {
    for (u64 i = 0; i < l1_count_; ++i) entry(i, l1_ + i, kTableFlags);
  } else {
    const u64 base = (pfn - l1_) * pv::kPtesPerPage;
    for (u64 j = 0; j < pv::kPtesPerPage && base + j < mapped_; ++j)
      entry(j, base + j, special(base + j) ? kRoFlags : kDataFlags);
  }
}

void GuestPlan::fill_start_info(std::byte* page) const {
  const u32 w = o_.pv_width;
  const auto& L = pv::start_info_layout(w);
  const char* magic = w == 8 ? "xen-3.0-x86_64" : "xen-3.0-x86_32p";
  std::memcpy(page, magic, std::strlen(magic));
  put_word(page, L.nr_pages, range_, w);
  // A suspended Linux leaves pfns where Xen put mfns (xen_pre_suspend).
  put_word(page, L.store_mfn, store_, w);
  put(page, L.store_evtchn, u32{1});
  put_word(page, L.console_mfn, console_, w);
  put(page, L.console_evtchn, u32{2});
  put_word(page, L.pt_base, kernel_va(top_), w);
  put_word(page, L.nr_pt_frames, l1_ + l1_count_ - top_, w);
  put_word(page, L.mfn_list, kernel_va(p2m_), w);
  static const char kCmdline[] = "root=/dev/xvda1 ro console=hvc0";
  std::memcpy(page + L.cmd_line, kCmdline, sizeof kCmdline);
}

std::vector<u64> GuestPlan::p2m_frame_pfns() const {
  std::vector<u64> v(p2m_count_);
  for (u64 i = 0; i < p2m_count_; ++i) v[i] = p2m_ + i;
  return v;
}

std::vector<std::byte> GuestPlan::pv_vcpu_basic(u32 v) const {
  const u32 w = o_.pv_width;
  const auto& L = pv::context_layout(w);
  std::vector<std::byte> c(L.size);
  std::byte* p = c.data();
  fxsave_init(p);
  put_word(p, L.flags, w == 8 ? kVgcfFlags64 : kVgcfFlags32, w);
  // Stopped in the suspend hypercall, on a stack among the image's pages.
  const u64 stack_pfn = first_ > 1 ? 1 + v % (first_ - 1) : 0;
  if (v == 0) put_word(p, L.rdx, start_info_, w);
  put_word(p, L.rip, kernel_va(0) + 0x13aa, w);
  put_word(p, L.rflags, 0x246, w);
  put_word(p, L.rsp, kernel_va(stack_pfn) + 0xf58, w);
  put(p, L.cs, static_cast<std::uint16_t>(w == 8 ? kCs64 : kCs32));
  put(p, L.ss, static_cast<std::uint16_t>(w == 8 ? kSs64 : kSs32));
  if (gdt_count_) {
    put_word(p, L.gdt_frames, gdt_ + v, w);
    put_word(p, L.gdt_ents, w == 8 ? 16 : 32, w);  // Linux's GDT_ENTRIES
  }
  put_word(p, L.kernel_ss, w == 8 ? kSs64 : kSs32, w);
  put_word(p, L.kernel_sp, kernel_va(stack_pfn) + kPageSize, w);
  put_word(p, L.ctrlreg + 0 * w, kCr0, w);
  put_word(p, L.ctrlreg + 3 * w, pv::pfn_to_cr3(top_, w), w);
  put_word(p, L.ctrlreg + 4 * w, kPvCr4, w);
  if (w == 8) put(p, L.gs_base_kernel, 0xffff88807fc00000ull + u64{v} * 0x40000);
  return c;
}

std::vector<std::byte> GuestPlan::pv_vcpu_extended(u32 v) const {
  // xen_domctl_ext_vcpucontext: 32 bytes of callbacks, then hvm_vmce_vcpu.
  std::vector<std::byte> c(64);
  put(c, 0, v);
  put(c, 4, u32{64});
  if (o_.pv_width == 8) {
    put(c, 8, kernel_va(0) + 0x1a40);   // syscall32_callback_eip
    put(c, 16, kernel_va(0) + 0x1b00);  // sysenter_callback_eip
    put(c, 24, static_cast<std::uint16_t>(kCompatCs));
    put(c, 26, static_cast<std::uint16_t>(kCompatCs));
  }
  put(c, 32, u64{0x102});  // MCG_CTL_P, 2 banks: what Xen offers on any vendor
  return c;
}

std::vector<std::byte> GuestPlan::pv_vcpu_xsave() const {
  std::vector<std::byte> c(16 + kXsaveArea);
  put(c, 0, kXcr0);
  put(c, 8, kXcr0);  // xcr0_accum
  fxsave_init(c.data() + 16);
  put(c, 16 + 512, u64{0x3});  // xstate_bv: x87 and SSE state in use
  return c;
}

std::vector<std::byte> GuestPlan::shared_info() const {
  std::vector<std::byte> s(kPageSize);
  const bool w8 = o_.pv_width == 8;
  // vcpu_info[32] (64 bytes each): upcalls masked while suspended.
  for (u32 v = 0; v < std::min<u32>(vcpus_, 32); ++v) s[64 * v + 1] = std::byte{1};
  // evtchn_mask after evtchn_pending: every port masked but the first few.
  const std::size_t mask = w8 ? 2560 : 2176, len = w8 ? 512 : 128;
  std::fill_n(s.begin() + static_cast<std::ptrdiff_t>(mask), len, std::byte{0xff});
  s[mask] = std::byte{0xf0};
  // arch_shared_info.max_pfn after the wallclock fields.
  if (w8) put(s, 3088, range_);
  else put(s, 2316, static_cast<u32>(range_));
  return s;
}

std::vector<libxc::HvmParam> GuestPlan::hvm_params() const {
  std::vector<libxc::HvmParam> p = {
      {1, hvm_special(kXenstore)},  // STORE_PFN
      {5, hvm_special(kIoreq)},     // IOREQ_PFN
      {6, hvm_special(kBufioreq)},  // BUFIOREQ_PFN
      {27, hvm_special(kPaging)},   // PAGING_RING_PFN
      {28, hvm_special(kAccess)},   // MONITOR_RING_PFN
      {29, hvm_special(kSharing)},  // SHARING_RING_PFN
  };
  // hvmloader's VM86 TSS: 128 bytes in the page under the reserved region.
  u64 tss = first_ - 1;
  if (in_vga_hole(tss)) tss = 0x9f;
  p.push_back({37, (u64{128} << 32) | (tss << kPageShift)});  // VM86_TSS_SIZED
  p.push_back({17, hvm_special(kConsole)});                   // CONSOLE_PFN
  p.push_back({19, 1});                                       // ACPI_IOPORTS_LOCATION: qemu upstream's
  p.push_back({12, hvm_special(kIdentPt) << kPageShift});     // IDENT_PT
  if (hvm_ioreq_server_pages_) {
    p.push_back({32, hvm_ioreq_server_});        // IOREQ_SERVER_PFN
    p.push_back({33, hvm_ioreq_server_pages_});  // NR_IOREQ_SERVER_PAGES
  }
  return p;
}

std::vector<std::byte> GuestPlan::cpuid_policy() const {
  // xen_cpuid_leaf_t {leaf, subleaf, a, b, c, d}: a modest Intel long-mode
  // CPU with XSAVE/AVX, as xc_get_domain_cpu_policy serialises it.
  constexpr u32 kNoSub = 0xffffffff;
  const u32 leaves[][6] = {
      {0, kNoSub, 0xd, 0x756e6547, 0x6c65746e, 0x49656e69},  // "GenuineIntel"
      {1, kNoSub, 0x000906ea, 0x00020800, 0x96982203, 0x178bfbff},
      {7, 0, 0, 0, 0, 0},
      {0xd, 0, 0x7, kXsaveArea, kXsaveArea, 0},
      {0xd, 1, 0x1, 0, 0, 0},
      {0xd, 2, 256, 576, 0, 0},
      {0x80000000, kNoSub, 0x80000008, 0, 0, 0},
      {0x80000001, kNoSub, 0, 0, 0x21, 0x28100800},  // LAHF ABM; SYSCALL NX RDTSCP LM
      {0x80000008, kNoSub, 0x3027, 0, 0, 0},         // 39 physical, 48 virtual bits
  };
  static_assert(sizeof leaves[0] == libxc::kCpuidLeafSize);
  return bytes_of(leaves, sizeof leaves);
}

std::vector<std::byte> GuestPlan::msr_policy() const {
  // xen_msr_entry_t {idx, flags, val}: the two MSRs Xen 4.17 serialises.
  struct Entry {
    u32 idx, flags;
    u64 val;
  };
  const Entry e[] = {{0xce, 0, 0}, {0x10a, 0, 0}};  // PLATFORM_INFO, ARCH_CAPABILITIES
  static_assert(sizeof e[0] == libxc::kMsrEntrySize);
  return bytes_of(e, sizeof e);
}

}  // namespace xsr::gen_detail
