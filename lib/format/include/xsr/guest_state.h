// Guest state inside the records: the HVM save blob an HVM_CONTEXT record
// carries (the hypervisor's own format, xen/include/public/arch-x86/hvm/
// save.h of Xen 4.17), the PV vcpu context an X86_PV_VCPU_BASIC record
// carries (vcpu_guest_context for 64- and 32-bit guests), the start_info
// fields Xen's PV restore reads, and pagetable entries. Wire layouts and
// constants only, as the rest of lib/format; sizes and offsets below were
// read off Xen 4.17's public headers and are pinned by static_asserts.
#pragma once

#include <cstddef>
#include <cstdint>

namespace xsr {

namespace hvm {

constexpr std::uint32_t kFileMagic = 0x54381286;
constexpr std::uint32_t kFileVersion = 1;

// Each entry of the blob: a descriptor, then `length` bytes of data.
struct SaveDescriptor {
  std::uint16_t typecode;
  std::uint16_t instance;
  std::uint32_t length;
};
static_assert(sizeof(SaveDescriptor) == 8);

// Typecode 1, instance 0, first in the blob.
struct SaveHeader {
  std::uint32_t magic;    // kFileMagic
  std::uint32_t version;  // kFileVersion
  std::uint64_t changeset;
  std::uint32_t cpuid;     // CPUID leaf 1 eax of the saving host
  std::uint32_t gtsc_khz;  // the guest's TSC frequency
};
static_assert(sizeof(SaveHeader) == 24);

enum Code : std::uint16_t {
  END = 0,
  HEADER = 1,
  CPU = 2,
  PIC = 3,
  IOAPIC = 4,
  LAPIC = 5,
  LAPIC_REGS = 6,
  PCI_IRQ = 7,
  ISA_IRQ = 8,
  PCI_LINK = 9,
  PIT = 10,
  RTC = 11,
  HPET = 12,
  PMTIMER = 13,
  MTRR = 14,
  VIRIDIAN_DOMAIN = 15,
  CPU_XSAVE = 16,
  VIRIDIAN_VCPU = 17,
  VMCE_VCPU = 18,
  TSC_ADJUST = 19,
  CPU_MSRS = 20,
};
constexpr std::uint16_t kMaxCode = CPU_MSRS;

// What the hypervisor knows of a typecode.
struct TypeInfo {
  const char* name;           // Xen's name (HEADER, CPU, ...); null: unknown code
  std::uint32_t size;         // the structure's size; variable: its fixed part
  std::uint32_t compat_size;  // an older, shorter layout Xen also loads (0: none)
  bool per_vcpu;              // the instance is a vcpu id
  bool variable;              // CPU_XSAVE, CPU_MSRS: a fixed part then a variable one
};

// The entry for `code` (name null when code > kMaxCode).
const TypeInfo& save_type(std::uint16_t code);

// Xen 4.17's HVM_MAX_VCPUS: the most vcpus an HVM guest may have.
constexpr std::uint32_t kMaxVcpus = 128;

// Typecode 2 (CPU): one per vcpu.
struct HwCpu {
  std::uint8_t fpu_regs[512];
  std::uint64_t rax, rbx, rcx, rdx, rbp, rsi, rdi, rsp;
  std::uint64_t r8, r9, r10, r11, r12, r13, r14, r15;
  std::uint64_t rip, rflags;
  std::uint64_t cr0, cr2, cr3, cr4;
  std::uint64_t dr0, dr1, dr2, dr3, dr6, dr7;
  std::uint32_t cs_sel, ds_sel, es_sel, fs_sel, gs_sel, ss_sel, tr_sel, ldtr_sel;
  std::uint32_t cs_limit, ds_limit, es_limit, fs_limit, gs_limit, ss_limit, tr_limit, ldtr_limit, idtr_limit,
      gdtr_limit;
  std::uint64_t cs_base, ds_base, es_base, fs_base, gs_base, ss_base, tr_base, ldtr_base, idtr_base,
      gdtr_base;
  std::uint32_t cs_arbytes, ds_arbytes, es_arbytes, fs_arbytes, gs_arbytes, ss_arbytes, tr_arbytes,
      ldtr_arbytes;
  std::uint64_t sysenter_cs, sysenter_esp, sysenter_eip;
  std::uint64_t shadow_gs;
  std::uint64_t msr_flags;  // obsolete, ignored
  std::uint64_t msr_lstar, msr_star, msr_cstar, msr_syscall_mask, msr_efer, msr_tsc_aux;
  std::uint64_t tsc;
  std::uint32_t pending_event;  // vector:8 type:3 error_valid:1 reserved:19 valid:1
  std::uint32_t error_code;
  std::uint32_t flags;  // bit 0: the FPU state is initialised
  std::uint32_t pad0;
};
static_assert(sizeof(HwCpu) == 1032);
static_assert(offsetof(HwCpu, rsp) == 568 && offsetof(HwCpu, rip) == 640 && offsetof(HwCpu, cr3) == 672);
// Xen also loads the older layout without the last two members (1016
// bytes, hvm_hw_cpu_compat): save_type(CPU).compat_size.

// Typecode 5 (LAPIC): one per vcpu.
struct HwLapic {
  std::uint64_t apic_base_msr;
  std::uint32_t disabled;  // VLAPIC_xx_DISABLED
  std::uint32_t timer_divisor;
  std::uint64_t tdt_msr;
};
static_assert(sizeof(HwLapic) == 24);

// Typecode 14 (MTRR): one per vcpu.
struct HwMtrr {
  std::uint64_t pat_cr;
  std::uint64_t msr_mtrr_var[16];  // 8 base/mask pairs
  std::uint64_t msr_mtrr_fixed[11];
  std::uint64_t msr_mtrr_cap;
  std::uint64_t msr_mtrr_def_type;
};
static_assert(sizeof(HwMtrr) == 240);

// Typecode 16 (CPU_XSAVE): the fixed part, then the xsave area.
struct HwCpuXsaveHeader {
  std::uint64_t xfeature_mask;
  std::uint64_t xcr0;
  std::uint64_t xcr0_accum;
};

}  // namespace hvm

namespace pv {

// Where the fields Xen's PV restore looks at lie in a vcpu_guest_context
// (the body of X86_PV_VCPU_BASIC after its 8-byte vcpu header).
struct ContextLayout {
  std::uint32_t size;  // sizeof(vcpu_guest_context) for the width
  std::uint32_t word;  // 8 or 4: the size of a register
  std::uint32_t flags;
  std::uint32_t user_regs;
  std::uint32_t rdx;  // start_info's pfn for vcpu 0 (edx for 32-bit guests)
  std::uint32_t rip, rsp, rflags, cs, ss;
  std::uint32_t gdt_frames;  // 16 words
  std::uint32_t gdt_ents;    // one word
  std::uint32_t kernel_ss, kernel_sp;
  std::uint32_t ctrlreg;  // 8 words: cr0..cr7; cr3 names the top-level pagetable
  std::uint32_t fs_base, gs_base_kernel, gs_base_user;  // 64-bit only (0: none)
};

constexpr ContextLayout kContext64{.size = 5168,
                                   .word = 8,
                                   .flags = 512,
                                   .user_regs = 520,
                                   .rdx = 616,
                                   .rip = 648,
                                   .rsp = 672,
                                   .rflags = 664,
                                   .cs = 656,
                                   .ss = 680,
                                   .gdt_frames = 4832,
                                   .gdt_ents = 4960,
                                   .kernel_ss = 4968,
                                   .kernel_sp = 4976,
                                   .ctrlreg = 4984,
                                   .fs_base = 5144,
                                   .gs_base_kernel = 5152,
                                   .gs_base_user = 5160};
constexpr ContextLayout kContext32{.size = 2800,
                                   .word = 4,
                                   .flags = 512,
                                   .user_regs = 516,
                                   .rdx = 524,
                                   .rip = 548,
                                   .rsp = 560,
                                   .rflags = 556,
                                   .cs = 552,
                                   .ss = 564,
                                   .gdt_frames = 2640,
                                   .gdt_ents = 2704,
                                   .kernel_ss = 2708,
                                   .kernel_sp = 2712,
                                   .ctrlreg = 2716,
                                   .fs_base = 0,
                                   .gs_base_kernel = 0,
                                   .gs_base_user = 0};

inline const ContextLayout& context_layout(std::uint32_t width) {
  return width == 4 ? kContext32 : kContext64;
}

// cpu_user_regs (the vcpu_guest_context's user_regs): where each register
// lies from its start, for 64-bit guests (8-byte registers, r15 first as
// Linux's user_regs_struct) and 32-bit ones (4-byte e-registers; no r8-r15).
// Selectors are 16-bit in both.
struct UserRegsLayout {
  std::uint32_t rax, rbx, rcx, rdx, rsi, rdi, rbp, rsp;
  std::uint32_t r8, r9, r10, r11, r12, r13, r14, r15;  // 64-bit only (0: none)
  std::uint32_t rip, rflags;
  std::uint32_t cs, ss, es, ds, fs, gs;
};
constexpr UserRegsLayout kUserRegs64{.rax = 80,
                                     .rbx = 40,
                                     .rcx = 88,
                                     .rdx = 96,
                                     .rsi = 104,
                                     .rdi = 112,
                                     .rbp = 32,
                                     .rsp = 152,
                                     .r8 = 72,
                                     .r9 = 64,
                                     .r10 = 56,
                                     .r11 = 48,
                                     .r12 = 24,
                                     .r13 = 16,
                                     .r14 = 8,
                                     .r15 = 0,
                                     .rip = 128,
                                     .rflags = 144,
                                     .cs = 136,
                                     .ss = 160,
                                     .es = 168,
                                     .ds = 176,
                                     .fs = 184,
                                     .gs = 192};
constexpr UserRegsLayout kUserRegs32{.rax = 24,
                                     .rbx = 0,
                                     .rcx = 4,
                                     .rdx = 8,
                                     .rsi = 12,
                                     .rdi = 16,
                                     .rbp = 20,
                                     .rsp = 44,
                                     .r8 = 0,
                                     .r9 = 0,
                                     .r10 = 0,
                                     .r11 = 0,
                                     .r12 = 0,
                                     .r13 = 0,
                                     .r14 = 0,
                                     .r15 = 0,
                                     .rip = 32,
                                     .rflags = 40,
                                     .cs = 36,
                                     .ss = 48,
                                     .es = 52,
                                     .ds = 56,
                                     .fs = 60,
                                     .gs = 64};
inline const UserRegsLayout& user_regs_layout(std::uint32_t width) {
  return width == 4 ? kUserRegs32 : kUserRegs64;
}
// The two tables agree on the registers both name.
static_assert(kContext64.user_regs + kUserRegs64.rdx == kContext64.rdx &&
              kContext64.user_regs + kUserRegs64.rip == kContext64.rip &&
              kContext64.user_regs + kUserRegs64.rsp == kContext64.rsp &&
              kContext64.user_regs + kUserRegs64.rflags == kContext64.rflags &&
              kContext64.user_regs + kUserRegs64.cs == kContext64.cs &&
              kContext64.user_regs + kUserRegs64.ss == kContext64.ss);
static_assert(kContext32.user_regs + kUserRegs32.rdx == kContext32.rdx &&
              kContext32.user_regs + kUserRegs32.rip == kContext32.rip &&
              kContext32.user_regs + kUserRegs32.rsp == kContext32.rsp &&
              kContext32.user_regs + kUserRegs32.rflags == kContext32.rflags &&
              kContext32.user_regs + kUserRegs32.cs == kContext32.cs &&
              kContext32.user_regs + kUserRegs32.ss == kContext32.ss);
// VGCF_in_kernel in vcpu_guest_context.flags: the vcpu runs its kernel (a
// 64-bit guest's active gs base is then gs_base_kernel).
constexpr std::uint64_t kVgcfInKernel = 1u << 2;

// cr3 <-> pfn: 64-bit guests keep the pfn shifted by the page size; 32-bit
// (PAE) guests fold the high bits into the low ones (xen_pfn_to_cr3_x86_32).
constexpr std::uint64_t cr3_to_pfn(std::uint64_t cr3, std::uint32_t width) {
  if (width == 4) {
    const auto c = static_cast<std::uint32_t>(cr3);
    return static_cast<std::uint32_t>((c >> 12) | (c << 20));
  }
  return cr3 >> 12;
}
constexpr std::uint64_t pfn_to_cr3(std::uint64_t pfn, std::uint32_t width) {
  if (width == 4) {
    const auto p = static_cast<std::uint32_t>(pfn);
    return static_cast<std::uint32_t>((p << 12) | (p >> 20));
  }
  return pfn << 12;
}

// start_info (the page vcpu 0's rdx/edx names): the fields restore reads.
struct StartInfoLayout {
  std::uint32_t nr_pages, shared_info, flags, store_mfn, store_evtchn, console_mfn, console_evtchn, pt_base,
      nr_pt_frames, mfn_list;
  std::uint32_t cmd_line;  // char[1024], after mod_start and mod_len
};
constexpr StartInfoLayout kStartInfo64{32, 40, 48, 56, 64, 72, 80, 88, 96, 104, 128};
constexpr StartInfoLayout kStartInfo32{32, 36, 40, 44, 48, 52, 56, 60, 64, 68, 80};
constexpr std::uint32_t kStartInfoMagicLen = 32;  // char magic[32]: "xen-3.0-x86_64", "xen-3.0-x86_32p"
inline const StartInfoLayout& start_info_layout(std::uint32_t width) {
  return width == 4 ? kStartInfo32 : kStartInfo64;
}

// Pagetable entries (64-bit and PAE guests alike: 8 bytes each).
constexpr std::uint64_t kPtePresent = 1;
constexpr std::uint64_t kPteFrameMask = 0x000ffffffffff000ull;  // bits 12-51
constexpr std::uint64_t pte_pfn(std::uint64_t pte) { return (pte & kPteFrameMask) >> 12; }
constexpr std::uint32_t kPtesPerPage = 512;

}  // namespace pv

}  // namespace xsr
