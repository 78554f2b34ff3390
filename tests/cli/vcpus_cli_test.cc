// xsr inspect --vcpus: the registers of each vCPU, text and JSON, exactly.
#include <nlohmann/json.hpp>

#include "cli_util.h"

namespace xsr::test {
namespace {

class VcpusCli : public TempDirTest {
 protected:
  VcpusCli() : TempDirTest("vcpus-cli") {}
  std::string make_image(const std::string& name, std::vector<std::string> extra) {
    std::vector<std::string> argv{xsr_bin(), "gen", "--size", "256K", "--vcpus", "1", "-o", path(name)};
    argv.insert(argv.end(), extra.begin(), extra.end());
    Result r = run(argv);
    EXPECT_EQ(r.exit, 0) << r.err;
    return path(name);
  }
  // The report from its "vcpu state:" line on.
  static std::string vcpu_section(const std::string& out) {
    const auto at = out.find("vcpu state:\n");
    return at == std::string::npos ? "" : out.substr(at);
  }
};

TEST_F(VcpusCli, HvmTextShowsRegistersDescriptorsAndThePageTableRoot) {
  Result r = run({xsr_bin(), "inspect", "--vcpus", make_image("h", {"--format", "libxc"})});
  ASSERT_EQ(r.exit, 0) << r.err;
  EXPECT_EQ(vcpu_section(r.out),
            "vcpu state:\n"
            "vcpu 0 (HVM, 64-bit)\n"
            "  rax    0x0000000000000000  rbx    0x0000000000000000  rcx    0x0000000000000000  rdx    "
            "0x0000000000000000\n"
            "  rsi    0x0000000000000000  rdi    0x0000000000000000  rbp    0x0000000000000000  rsp    "
            "0xffffc90000003f98\n"
            "  r8     0x0000000000000000  r9     0x0000000000000000  r10    0x0000000000000000  r11    "
            "0x0000000000000000\n"
            "  r12    0x0000000000000000  r13    0x0000000000000000  r14    0x0000000000000000  r15    "
            "0x0000000000000000\n"
            "  rip    0xffffffff81e2a0f0  rflags 0x0000000000000246\n"
            "  fs_base 0x0000000000000000  gs_base 0xffff88807fc00000  shadow_gs 0x0000000000000000\n"
            "  cr0 0x80050033  cr2 0x0  cr3 0xf000 (page-table root pfn 0xf)  cr4 0x406b0  efer 0xd01\n"
            "  cs     selector 0x0010  base 0x0000000000000000  limit 0xffffffff  arbytes 0x0a9b\n"
            "  ds     selector 0x0000  base 0x0000000000000000  limit 0xffffffff  arbytes 0x0c93\n"
            "  es     selector 0x0000  base 0x0000000000000000  limit 0xffffffff  arbytes 0x0c93\n"
            "  fs     selector 0x0000  base 0x0000000000000000  limit 0xffffffff  arbytes 0x0c93\n"
            "  gs     selector 0x0000  base 0xffff88807fc00000  limit 0xffffffff  arbytes 0x0c93\n"
            "  ss     selector 0x0018  base 0x0000000000000000  limit 0xffffffff  arbytes 0x0c93\n"
            "  tr     selector 0x0040  base 0xfffffe0000003000  limit 0x0000206f  arbytes 0x008b\n"
            "  ldtr   selector 0x0000  base 0x0000000000000000  limit 0x00000000  arbytes 0x0000\n"
            "  idtr   base 0xfffffe0000000000  limit 0x00000fff\n"
            "  gdtr   base 0xfffffe0000001000  limit 0x0000007f\n"
            "  fpu    fcw 0x037f  fsw 0x0000  mxcsr 0x00001f80\n"
            "  xsave  xcr0 0x7, 832 bytes\n");
  Result plain = run({xsr_bin(), "inspect", path("h")});
  EXPECT_EQ(vcpu_section(plain.out), "");  // only with --vcpus
}

TEST_F(VcpusCli, Pv32TextShowsWidthP2mSizeAndZeroExtendedRegisters) {
  Result r = run({xsr_bin(), "inspect", "--vcpus",
                  make_image("p", {"--format", "libxc", "--type", "pv", "--width", "32"})});
  ASSERT_EQ(r.exit, 0) << r.err;
  EXPECT_EQ(vcpu_section(r.out),
            "vcpu state:\n"
            "pv guest 32-bit, p2m size 63 pfns\n"
            "vcpu 0 (PV, 32-bit)\n"
            "  rax    0x0000000000000000  rbx    0x0000000000000000  rcx    0x0000000000000000  rdx    "
            "0x000000000000000b\n"
            "  rsi    0x0000000000000000  rdi    0x0000000000000000  rbp    0x0000000000000000  rsp    "
            "0x00000000c0001f58\n"
            "  r8     0x0000000000000000  r9     0x0000000000000000  r10    0x0000000000000000  r11    "
            "0x0000000000000000\n"
            "  r12    0x0000000000000000  r13    0x0000000000000000  r14    0x0000000000000000  r15    "
            "0x0000000000000000\n"
            "  rip    0x00000000c00013aa  rflags 0x0000000000000246\n"
            "  fs_base 0x0000000000000000  gs_base 0x0000000000000000  shadow_gs 0x0000000000000000\n"
            "  cr0 0x8005003b  cr2 0x0  cr3 0x7000 (page-table root pfn 0x7)  cr4 0x620  efer -\n"
            "  selectors cs 0xe019 ds 0x0000 es 0x0000 fs 0x0000 gs 0x0000 ss 0xe021\n"
            "  fpu    fcw 0x037f  fsw 0x0000  mxcsr 0x00001f80\n"
            "  xsave  xcr0 0x7, 832 bytes\n");
}

TEST_F(VcpusCli, JsonCarriesTheSameStateInSchemaOrder) {
  const std::string img = make_image("p", {"--format", "libxc", "--type", "pv", "--width", "32"});
  Result r = run({xsr_bin(), "inspect", "--json", "--vcpus", img});
  ASSERT_EQ(r.exit, 0) << r.err;
  const auto doc = nlohmann::ordered_json::parse(r.out);
  EXPECT_EQ(doc["schema"], "xsr-inspect/1");
  EXPECT_EQ(
      doc["vcpu_state"].dump(),
      R"({"guest_width_bits":32,"p2m_size":63,"vcpus":[{"id":0,"source":"pv","width_bits":32,"registers":{)"
      R"("rax":0,"rbx":0,"rcx":0,"rdx":11,"rsi":0,"rdi":0,"rbp":0,"rsp":3221233496,"r8":0,"r9":0,"r10":0,)"
      R"("r11":0,"r12":0,"r13":0,"r14":0,"r15":0,"rip":3221230506,"rflags":582},"segments":{)"
      R"("cs":{"selector":57369,"base":null,"limit":null,"arbytes":null},)"
      R"("ds":{"selector":0,"base":null,"limit":null,"arbytes":null},)"
      R"("es":{"selector":0,"base":null,"limit":null,"arbytes":null},)"
      R"("fs":{"selector":0,"base":null,"limit":null,"arbytes":null},)"
      R"("gs":{"selector":0,"base":null,"limit":null,"arbytes":null},)"
      R"("ss":{"selector":57377,"base":null,"limit":null,"arbytes":null},)"
      R"("tr":{"selector":0,"base":null,"limit":null,"arbytes":null},)"
      R"("ldtr":{"selector":0,"base":null,"limit":null,"arbytes":null},"idtr":null,"gdtr":null},)"
      R"("fs_base":0,"gs_base":0,"shadow_gs":0,"cr0":2147811387,"cr2":0,"cr3":28672,"cr4":1568,"efer":null,)"
      R"("pt_root_pfn":7,"fpu":{"fcw":895,"fsw":0,"mxcsr":8064},"xsave":{"xcr0":7,"bytes":832}}]})");
  Result plain = run({xsr_bin(), "inspect", "--json", img});
  EXPECT_EQ(nlohmann::ordered_json::parse(plain.out)["vcpu_state"], nullptr);
}

}  // namespace
}  // namespace xsr::test
