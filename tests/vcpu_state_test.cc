// vCPU register state decoded from HVM save blobs and PV vcpu records.
#include "xsr/vcpu_state.h"

#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "xsr/format.h"
#include "xsr/guest_state.h"

namespace xsr {
namespace {

using u64 = std::uint64_t;

// Sized, then copied: gcc 12 misreads insert() into an empty vector as an
// overflow.
void append_bytes(std::vector<std::byte>& b, const void* p, std::size_t n) {
  const std::size_t at = b.size();
  b.resize(at + n);
  if (n) std::memcpy(b.data() + at, p, n);
}
template <class T>
void append(std::vector<std::byte>& b, const T& v) {
  append_bytes(b, &v, sizeof v);
}

void entry(std::vector<std::byte>& b, std::uint16_t code, std::uint16_t inst, const void* data,
           std::uint32_t len) {
  append(b, hvm::SaveDescriptor{code, inst, len});
  append_bytes(b, data, len);
}

hvm::HwCpu distinct_cpu(u64 seed) {
  hvm::HwCpu c{};
  u64 v = seed;
  for (u64* r : {&c.rax, &c.rbx, &c.rcx, &c.rdx, &c.rbp, &c.rsi, &c.rdi, &c.rsp, &c.r8, &c.r9, &c.r10, &c.r11,
                 &c.r12, &c.r13, &c.r14, &c.r15, &c.rip, &c.rflags})
    *r = v++;
  c.cr0 = 0x80050033, c.cr2 = 0x1234, c.cr3 = 0x8000000000abc005ull, c.cr4 = 0x406b0;
  c.cs_sel = 0x10, c.ss_sel = 0x18, c.fs_base = 0x7f00, c.gs_base = 0xffff888000000000ull;
  c.shadow_gs = 0x7e00, c.msr_efer = 0xd01, c.cs_limit = 0xffffffff, c.cs_arbytes = 0xa9b;
  c.gdtr_base = 0xfffffe0000001000ull, c.gdtr_limit = 0x7f;
  c.fpu_regs[0] = 0x7f, c.fpu_regs[1] = 0x03;
  return c;
}

std::vector<std::byte> blob(const hvm::HwCpu& c, std::uint16_t vcpu, std::uint32_t len = sizeof(hvm::HwCpu)) {
  std::vector<std::byte> b;
  const hvm::SaveHeader h{hvm::kFileMagic, hvm::kFileVersion, 0, 0, 0};
  entry(b, hvm::HEADER, 0, &h, sizeof h);
  entry(b, hvm::CPU, vcpu, &c, len);
  std::vector<std::byte> xs(24 + 832);
  const u64 xcr0 = 7;
  std::memcpy(xs.data() + 8, &xcr0, 8);
  entry(b, hvm::CPU_XSAVE, vcpu, xs.data(), static_cast<std::uint32_t>(xs.size()));
  entry(b, hvm::END, 0, nullptr, 0);
  return b;
}

TEST(VcpuState, HvmCpuEntryGivesEveryRegister) {
  VcpuStates s;
  const auto b = blob(distinct_cpu(100), 3);
  s.record(libxc::HVM_CONTEXT, b, true);
  ASSERT_EQ(s.vcpus.size(), 1u);
  const VcpuState& v = s.vcpus.at(3);
  EXPECT_EQ(v.id, 3u);
  EXPECT_EQ(v.source, VcpuState::Source::hvm);
  EXPECT_EQ(v.rax, 100u);
  EXPECT_EQ(v.rsp, 107u);
  EXPECT_EQ(v.r15, 115u);
  EXPECT_EQ(v.rip, 116u);
  EXPECT_EQ(v.rflags, 117u);
  EXPECT_EQ(v.cs.selector, 0x10u);
  EXPECT_EQ(v.cs.arbytes, 0xa9bu);
  EXPECT_EQ(v.gdtr.base, 0xfffffe0000001000ull);
  EXPECT_EQ(v.shadow_gs, 0x7e00u);
  EXPECT_EQ(v.efer, 0xd01u);
  EXPECT_TRUE(v.has_efer && v.descriptors && v.has_fpu);
  // PCID bits and bit 63 (no-flush) are not the root's address.
  EXPECT_EQ(v.pt_root_pfn, 0xabcu);
  EXPECT_EQ(static_cast<unsigned>(v.fxsave[0]), 0x7fu);
  EXPECT_EQ(v.xcr0, 7u);
  EXPECT_EQ(v.xsave.size(), 832u);
}

TEST(VcpuState, LastCopyWinsAcrossCheckpoints) {
  VcpuStates s;
  s.record(libxc::HVM_CONTEXT, blob(distinct_cpu(1), 0), true);
  s.record(libxc::HVM_CONTEXT, blob(distinct_cpu(500), 0), true);
  EXPECT_EQ(s.vcpus.at(0).rax, 500u);
}

TEST(VcpuState, ShortOrCutEntriesAreLeftOut) {
  VcpuStates s;
  s.record(libxc::HVM_CONTEXT, blob(distinct_cpu(1), 0, 1015), true);  // shorter than Xen's older layout
  EXPECT_EQ(s.vcpus.count(0), 1u);                                     // its CPU_XSAVE entry still counts
  EXPECT_FALSE(s.vcpus.at(0).has_fpu);
  VcpuStates t;
  auto b = blob(distinct_cpu(1), 0);
  b.resize(40 + 500);  // the CPU entry overruns the record
  t.record(libxc::HVM_CONTEXT, b, true);
  EXPECT_TRUE(t.vcpus.empty());
  const auto whole = blob(distinct_cpu(1), 0);
  t.record(libxc::HVM_CONTEXT, std::span(whole).first(64), false);
  EXPECT_TRUE(t.vcpus.empty());
  EXPECT_TRUE(t.hvm_blob_skipped);
}

std::vector<std::byte> pv_basic(std::uint32_t width, std::uint32_t id, bool in_kernel) {
  const pv::ContextLayout& L = pv::context_layout(width);
  const pv::UserRegsLayout& R = pv::user_regs_layout(width);
  std::vector<std::byte> b(8 + L.size);
  std::memcpy(b.data(), &id, 4);
  std::byte* c = b.data() + 8;
  auto put = [&](std::uint32_t off, u64 v) { std::memcpy(c + off, &v, width); };
  put(L.user_regs + R.rax, 0xfeedf00du);
  put(L.user_regs + R.rip, 0xc00013aau);
  put(L.user_regs + R.rsp, 0xc0001f58u);
  std::uint16_t cs = 0xe019;
  std::memcpy(c + L.user_regs + R.cs, &cs, 2);
  put(L.flags, in_kernel ? pv::kVgcfInKernel : 0);
  put(L.ctrlreg + 3 * width, pv::pfn_to_cr3(0x123456, width));
  if (width == 8) {
    put(L.user_regs + R.r8, 8);
    put(L.gs_base_kernel, 0xffff888000000000ull);
    put(L.gs_base_user, 0x7fff0000u);
  }
  return b;
}

TEST(VcpuState, Pv32RegistersAreZeroExtended) {
  VcpuStates s;
  const libxc::X86PvInfo info{4, 3, 0, 0};
  std::vector<std::byte> ib;
  append(ib, info);
  s.record(libxc::X86_PV_INFO, ib, true);
  s.record(libxc::X86_PV_VCPU_BASIC, pv_basic(4, 1, true), true);
  const VcpuState& v = s.vcpus.at(1);
  EXPECT_EQ(v.width_bits, 32u);
  EXPECT_EQ(v.rax, 0xfeedf00du);
  EXPECT_EQ(v.rip, 0xc00013aau);
  EXPECT_EQ(v.cs.selector, 0xe019u);
  EXPECT_EQ(v.pt_root_pfn, 0x123456u);  // PAE cr3 folding undone
  EXPECT_FALSE(v.has_efer || v.descriptors);
}

TEST(VcpuState, Pv64ActiveGsBaseFollowsTheKernelFlag) {
  VcpuStates s;
  s.record(libxc::X86_PV_VCPU_BASIC, pv_basic(8, 0, true), true);
  s.record(libxc::X86_PV_VCPU_BASIC, pv_basic(8, 1, false), true);
  EXPECT_EQ(s.vcpus.at(0).gs_base, 0xffff888000000000ull);
  EXPECT_EQ(s.vcpus.at(0).shadow_gs, 0x7fff0000u);
  EXPECT_EQ(s.vcpus.at(1).gs_base, 0x7fff0000u);
  EXPECT_EQ(s.vcpus.at(1).r8, 8u);
  EXPECT_EQ(s.vcpus.at(1).pt_root_pfn, 0x123456u);
  // A body a byte short of the context is not decoded.
  auto shorter = pv_basic(8, 2, true);
  shorter.pop_back();
  s.record(libxc::X86_PV_VCPU_BASIC, shorter, true);
  EXPECT_EQ(s.vcpus.count(2), 0u);
}

}  // namespace
}  // namespace xsr
