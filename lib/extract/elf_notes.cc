#include "xsr/elf_notes.h"

#include <elf.h>
#include <sys/procfs.h>
#include <sys/user.h>

#include <cstring>
#include <string_view>

namespace xsr {
namespace {

using u32 = std::uint32_t;
using u64 = std::uint64_t;

// Linux's x86-64 layouts, as gdb and binutils read them (BFD's
// elf_x86_64_grok_prstatus: 336 bytes, pr_pid at 32, pr_reg at 112).
static_assert(sizeof(elf_prstatus) == 336);
static_assert(offsetof(elf_prstatus, pr_pid) == 32 && offsetof(elf_prstatus, pr_reg) == 112);
static_assert(sizeof(user_regs_struct) == sizeof(elf_gregset_t));
static_assert(sizeof(user_fpregs_struct) == 512);

// Where Linux keeps xcr0 in an NT_X86_XSTATE note: the first word of the
// FXSAVE image's software-reserved bytes (gdb's I386_LINUX_XSAVE_XCR0_OFFSET).
constexpr std::size_t kXstateXcr0 = 464;

constexpr std::size_t pad4(std::size_t n) { return (n + 3) & ~std::size_t{3}; }

// Appends one note: Elf64_Nhdr, the NUL-terminated name and the desc, each
// padded to 4 bytes.
void note(std::vector<std::byte>& out, std::string_view name, u32 type, const void* desc, std::size_t size) {
  Elf64_Nhdr h{};
  h.n_namesz = static_cast<u32>(name.size() + 1);
  h.n_descsz = static_cast<u32>(size);
  h.n_type = type;
  const std::size_t at = out.size();
  out.resize(at + sizeof h + pad4(name.size() + 1) + pad4(size));
  std::byte* p = out.data() + at;
  std::memcpy(p, &h, sizeof h);
  std::memcpy(p + sizeof h, name.data(), name.size());
  if (size) std::memcpy(p + sizeof h + pad4(name.size() + 1), desc, size);
}

elf_prstatus prstatus(const VcpuState& v) {
  user_regs_struct r{};
  r.r15 = v.r15, r.r14 = v.r14, r.r13 = v.r13, r.r12 = v.r12;
  r.rbp = v.rbp, r.rbx = v.rbx, r.r11 = v.r11, r.r10 = v.r10;
  r.r9 = v.r9, r.r8 = v.r8, r.rax = v.rax, r.rcx = v.rcx;
  r.rdx = v.rdx, r.rsi = v.rsi, r.rdi = v.rdi;
  r.orig_rax = ~0ull;  // not in a system call, as Linux says it
  r.rip = v.rip, r.cs = v.cs.selector, r.eflags = v.rflags;
  r.rsp = v.rsp, r.ss = v.ss.selector;
  r.fs_base = v.fs_base, r.gs_base = v.gs_base;
  r.ds = v.ds.selector, r.es = v.es.selector, r.fs = v.fs.selector, r.gs = v.gs.selector;
  elf_prstatus st{};
  st.pr_pid = static_cast<pid_t>(v.id + 1);  // gdb's thread ids: pid 0 is no thread
  std::memcpy(&st.pr_reg, &r, sizeof r);
  st.pr_fpvalid = v.has_fpu ? 1 : 0;
  return st;
}

XsrSegment segment(const SegmentState& s) { return {s.base, s.limit, s.arbytes, s.selector, 0}; }

XsrVcpuNote xsr_vcpu(const VcpuState& v, bool xstate) {
  XsrVcpuNote n{};
  n.version = kXsrNoteVersion;
  n.vcpu_id = v.id;
  n.source = v.source == VcpuState::Source::hvm ? 1 : 2;
  n.width_bits = v.width_bits;
  n.flags = (v.descriptors ? kXsrVcpuDescriptors : 0) | (v.has_efer ? kXsrVcpuEfer : 0) |
            (v.has_fpu ? kXsrVcpuFpu : 0) | (xstate ? kXsrVcpuXsave : 0);
  n.cr0 = v.cr0, n.cr2 = v.cr2, n.cr3 = v.cr3, n.cr4 = v.cr4, n.efer = v.efer;
  n.pt_root_pfn = v.pt_root_pfn;
  n.fs_base = v.fs_base, n.gs_base = v.gs_base, n.shadow_gs = v.shadow_gs;
  n.xcr0 = v.xcr0;
  n.cs = segment(v.cs), n.ds = segment(v.ds), n.es = segment(v.es), n.fs = segment(v.fs);
  n.gs = segment(v.gs), n.ss = segment(v.ss), n.tr = segment(v.tr), n.ldtr = segment(v.ldtr);
  n.idtr = segment(v.idtr), n.gdtr = segment(v.gdtr);
  return n;
}

void vcpu_notes(std::vector<std::byte>& out, const VcpuState& v) {
  const elf_prstatus st = prstatus(v);
  note(out, "CORE", NT_PRSTATUS, &st, sizeof st);
  if (v.has_fpu) note(out, "CORE", NT_PRFPREG, v.fxsave.data(), v.fxsave.size());
  // An area the note can describe: the FXSAVE image and the XSAVE header at
  // least (VcpuStates keeps no shorter one), at most what a desc can size.
  const bool xstate = v.xsave.size() > kXstateXcr0 + 8 && v.xsave.size() <= UINT32_MAX - 3;
  if (xstate) {
    std::vector<std::byte> area(v.xsave);
    std::memcpy(area.data() + kXstateXcr0, &v.xcr0, sizeof v.xcr0);
    note(out, "LINUX", NT_X86_XSTATE, area.data(), area.size());
  }
  const XsrVcpuNote x = xsr_vcpu(v, xstate);
  note(out, "XSR", kNtXsrVcpu, &x, sizeof x);
}

}  // namespace

std::vector<std::byte> core_notes(const VcpuStates& vcpus, const CoreDomain& domain) {
  std::vector<std::byte> out;
  for (const auto& [id, v] : vcpus.vcpus) vcpu_notes(out, v);
  XsrDomainNote d{};
  d.version = kXsrNoteVersion;
  d.guest_type = domain.guest_type;
  d.xen_major = domain.xen_major;
  d.xen_minor = domain.xen_minor;
  d.width_bits = vcpus.pv_width == 4 ? 32 : 64;
  d.vcpus = static_cast<u32>(vcpus.vcpus.size());
  d.p2m_size = vcpus.p2m_size;
  d.pfn_ranges = domain.pfn_ranges;
  note(out, "XSR", kNtXsrDomain, &d, sizeof d);
  return out;
}

std::vector<std::byte> core_notes(const VcpuStates& vcpus, const StreamStats& stats, const PfnSet& pfns) {
  CoreDomain d;
  d.guest_type = stats.domain_type;
  d.xen_major = stats.xen_major;
  d.xen_minor = stats.xen_minor;
  pfns.for_each_run([&](u64, u64) { ++d.pfn_ranges; });
  return core_notes(vcpus, d);
}

}  // namespace xsr
