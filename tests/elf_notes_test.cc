// The ELF core's notes: Linux's x86-64 layouts gdb reads, and ours.
#include "xsr/elf_notes.h"

#include <elf.h>
#include <gtest/gtest.h>
#include <sys/procfs.h>

#include <cstring>
#include <string>
#include <vector>

namespace xsr {
namespace {

struct Note {
  std::string name;
  std::uint32_t type;
  std::vector<std::byte> desc;
};

std::vector<Note> parse(const std::vector<std::byte>& b) {
  std::vector<Note> out;
  std::size_t off = 0;
  while (off + sizeof(Elf64_Nhdr) <= b.size()) {
    Elf64_Nhdr h;
    std::memcpy(&h, b.data() + off, sizeof h);
    off += sizeof h;
    Note n{std::string(reinterpret_cast<const char*>(b.data() + off), h.n_namesz - 1), h.n_type, {}};
    off += (h.n_namesz + 3) & ~3u;
    n.desc.assign(b.begin() + static_cast<std::ptrdiff_t>(off),
                  b.begin() + static_cast<std::ptrdiff_t>(off + h.n_descsz));
    off += (h.n_descsz + 3) & ~3u;
    out.push_back(std::move(n));
  }
  EXPECT_EQ(off, b.size());
  return out;
}

VcpuState vcpu(std::uint32_t id) {
  VcpuState v;
  v.id = id;
  v.rax = 0x1111, v.rbx = 0x2222, v.r15 = 0xf15, v.rip = 0xffffffff81000000ull, v.rflags = 0x246;
  v.rsp = 0x5555, v.cs.selector = 0x10, v.ss.selector = 0x18, v.ds.selector = 0x2b;
  v.fs_base = 0x7f00, v.gs_base = 0x8f00, v.cr3 = 0xabc000, v.pt_root_pfn = 0xabc;
  v.cs.base = 0x42, v.descriptors = true;
  v.has_fpu = true;
  v.fxsave[24] = std::byte{0x80};
  return v;
}

TEST(ElfNotes, EachVcpuGetsPrstatusFpregsAndOurNoteThenTheDomainNote) {
  VcpuStates s;
  s.vcpus[0] = vcpu(0);
  s.vcpus[2] = vcpu(2);
  s.vcpus[2].has_fpu = false;
  s.vcpus[2].xcr0 = 7;
  s.vcpus[2].xsave.assign(832, std::byte{0});
  s.p2m_size = 0x40000;
  s.pv_width = 8;
  const auto notes = core_notes(s, CoreDomain{1, 4, 17, 5});
  ASSERT_EQ(notes.size() % 4, 0u);
  const auto n = parse(notes);
  ASSERT_EQ(n.size(), 7u);
  EXPECT_EQ(n[0].name, "CORE");
  EXPECT_EQ(n[0].type, static_cast<std::uint32_t>(NT_PRSTATUS));
  EXPECT_EQ(n[1].type, static_cast<std::uint32_t>(NT_PRFPREG));
  EXPECT_EQ(n[1].desc.size(), 512u);
  EXPECT_EQ(n[2].name, "XSR");
  EXPECT_EQ(n[2].type, kNtXsrVcpu);
  EXPECT_EQ(n[3].type, static_cast<std::uint32_t>(NT_PRSTATUS));  // vcpu 2: no FPU, XSAVE
  EXPECT_EQ(n[4].name, "LINUX");
  EXPECT_EQ(n[4].type, static_cast<std::uint32_t>(NT_X86_XSTATE));
  ASSERT_EQ(n[4].desc.size(), 832u);
  std::uint64_t xcr0;
  std::memcpy(&xcr0, n[4].desc.data() + 464, 8);
  EXPECT_EQ(xcr0, 7u);  // where Linux puts it and gdb reads it
  EXPECT_EQ(n[6].type, kNtXsrDomain);
  XsrDomainNote d;
  ASSERT_EQ(n[6].desc.size(), sizeof d);
  std::memcpy(&d, n[6].desc.data(), sizeof d);
  EXPECT_EQ(d.guest_type, 1u);
  EXPECT_EQ(d.xen_minor, 17u);
  EXPECT_EQ(d.width_bits, 64u);
  EXPECT_EQ(d.vcpus, 2u);
  EXPECT_EQ(d.p2m_size, 0x40000u);
  EXPECT_EQ(d.pfn_ranges, 5u);
}

TEST(ElfNotes, PrstatusHoldsTheRegistersInUserRegsOrder) {
  VcpuStates s;
  s.vcpus[4] = vcpu(4);
  const auto n = parse(core_notes(s, CoreDomain{}));
  elf_prstatus st;
  ASSERT_EQ(n[0].desc.size(), sizeof st);
  std::memcpy(&st, n[0].desc.data(), sizeof st);
  EXPECT_EQ(st.pr_pid, 5);
  EXPECT_EQ(st.pr_fpvalid, 1);
  user_regs_struct r;
  std::memcpy(&r, &st.pr_reg, sizeof r);
  EXPECT_EQ(r.rax, 0x1111u);
  EXPECT_EQ(r.rbx, 0x2222u);
  EXPECT_EQ(r.r15, 0xf15u);
  EXPECT_EQ(r.rip, 0xffffffff81000000ull);
  EXPECT_EQ(r.eflags, 0x246u);
  EXPECT_EQ(r.rsp, 0x5555u);
  EXPECT_EQ(r.cs, 0x10u);
  EXPECT_EQ(r.ss, 0x18u);
  EXPECT_EQ(r.ds, 0x2bu);
  EXPECT_EQ(r.fs_base, 0x7f00u);
  EXPECT_EQ(r.gs_base, 0x8f00u);
  EXPECT_EQ(r.orig_rax, ~0ull);
  XsrVcpuNote x;
  ASSERT_EQ(n[2].desc.size(), sizeof x);
  std::memcpy(&x, n[2].desc.data(), sizeof x);
  EXPECT_EQ(x.vcpu_id, 4u);
  EXPECT_EQ(x.cr3, 0xabc000u);
  EXPECT_EQ(x.pt_root_pfn, 0xabcu);
  EXPECT_EQ(x.cs.base, 0x42u);
  EXPECT_EQ(x.cs.selector, 0x10u);
  EXPECT_EQ(x.flags, kXsrVcpuDescriptors | kXsrVcpuFpu);
}

}  // namespace
}  // namespace xsr
