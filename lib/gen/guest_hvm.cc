// The HVM save blob of a generated guest: a Linux guest in long mode with
// the devices Xen emulates for every HVM domain, entry by entry as hvm_save
// writes them and the per-type load handlers accept them.
#include <algorithm>
#include <cstring>

#include "guest.h"
#include "xsr/guest_state.h"

namespace xsr::gen_detail {
namespace {

template <typename T>
void put(std::byte* p, std::size_t off, T x) {
  std::memcpy(p + off, &x, sizeof x);
}

// Appends one entry: its descriptor and `len` bytes that fill() writes.
template <typename Fill>
void entry(std::vector<std::byte>& out, std::uint16_t code, std::uint16_t instance, u32 len, Fill fill) {
  const hvm::SaveDescriptor d{code, instance, len};
  const std::size_t at = out.size();
  out.resize(at + sizeof d + len);
  std::memcpy(out.data() + at, &d, sizeof d);
  fill(out.data() + at + sizeof d);
}

void cpu(std::byte* p, u32 v, u64 cr3_pfn) {
  hvm::HwCpu c{};
  auto* fpu = reinterpret_cast<std::byte*>(c.fpu_regs);
  put(fpu, 0, std::uint16_t{0x37f});
  put(fpu, 24, u32{0x1f80});
  put(fpu, 28, u32{0xffff});
  c.rip = 0xffffffff81e2a0f0ull;  // the idle loop
  c.rsp = 0xffffc90000000000ull + 0x4000ull * (v + 1) - 0x68;
  c.rflags = 0x246;
  c.cr0 = 0x80050033;  // PG AM WP NE ET MP PE
  c.cr3 = cr3_pfn << kPageShift;
  c.cr4 = 0x406b0;  // OSXSAVE OSXMMEXCPT OSFXSR PGE PAE PSE
  c.dr6 = 0xffff0ff0;
  c.dr7 = 0x400;
  c.cs_sel = 0x10;  // __KERNEL_CS
  c.ss_sel = 0x18;  // __KERNEL_DS
  c.tr_sel = 0x40;
  c.cs_limit = c.ds_limit = c.es_limit = c.fs_limit = c.gs_limit = c.ss_limit = 0xffffffff;
  c.tr_limit = 0x206f;
  c.idtr_limit = 0xfff;
  c.gdtr_limit = 0x7f;
  c.gs_base = 0xffff88807fc00000ull + 0x40000ull * v;  // this cpu's per-cpu area
  c.tr_base = 0xfffffe0000003000ull + 0x10000ull * v;
  c.idtr_base = 0xfffffe0000000000ull;
  c.gdtr_base = 0xfffffe0000001000ull + 0x10000ull * v;
  c.cs_arbytes = 0xa9b;  // code, present, DPL 0, L, G
  c.ds_arbytes = c.es_arbytes = c.fs_arbytes = c.gs_arbytes = c.ss_arbytes = 0xc93;
  c.tr_arbytes = 0x8b;  // busy 64-bit TSS
  c.sysenter_cs = 0x10;
  c.sysenter_esp = c.tr_base + 0x1000;
  c.sysenter_eip = 0xffffffff81a01a40ull;
  c.msr_lstar = 0xffffffff81a00010ull;
  c.msr_star = 0x0023001000000000ull;
  c.msr_cstar = 0xffffffff81a01870ull;
  c.msr_syscall_mask = 0x47700;
  c.msr_efer = 0xd01;  // NX LMA LME SCE
  c.msr_tsc_aux = v;
  c.tsc = 0x2a5c1b8e47ull;
  c.flags = 1;  // FPU initialised
  std::memcpy(p, &c, sizeof c);
}

// The first 1 KiB of an xAPIC page in Linux's flat logical mode.
void lapic_regs(std::byte* p, u32 v) {
  put(p, 0x20, u32{(2 * v) << 24});               // ID: Xen's vcpu_id * 2
  put(p, 0x30, u32{0x50014});                     // version, 6 LVTs
  put(p, 0xd0, v < 8 ? u32{1} << (24 + v) : 0u);  // LDR
  put(p, 0xe0, u32{0xffffffff});                  // DFR: flat
  put(p, 0xf0, u32{0x1ff});                       // SVR: enabled, spurious 0xff
  put(p, 0x2f0, u32{0x10000});                    // LVT CMCI masked
  put(p, 0x320, u32{0xec});                       // LVT timer: one-shot, vector 0xec
  put(p, 0x330, u32{0x10000});
  put(p, 0x340, u32{0x10000});
  put(p, 0x350, v == 0 ? u32{0x700} : u32{0x10700});  // LINT0: ExtINT on the BSP
  put(p, 0x360, v == 0 ? u32{0x400} : u32{0x10400});  // LINT1: NMI on the BSP
  put(p, 0x370, u32{0xfe});                           // LVT error
  put(p, 0x3e0, u32{0xb});                            // divide by 1
}

void mtrr(std::byte* p) {
  hvm::HwMtrr m{};
  m.pat_cr = 0x0007040600070406ull;
  for (auto& f : m.msr_mtrr_fixed) f = 0x0606060606060606ull;  // write-back
  m.msr_mtrr_cap = 0x508;                                      // WC, fixed, 8 variable
  m.msr_mtrr_def_type = 0xc06;                                 // enabled, fixed enabled, WB
  std::memcpy(p, &m, sizeof m);
}

void pit(std::byte* p) {
  // Channel 0 at 100 Hz (mode 2), 1 (refresh) and 2 (speaker) in mode 3;
  // lobyte/hibyte access throughout.
  const std::uint16_t counts[3] = {0x2e9c, 0x12, 0};
  for (int i = 0; i < 3; ++i) {
    std::byte* c = p + 16 * i;
    put(c, 0, u32{counts[i]});
    c[9] = std::byte{3};                // read_state
    c[10] = std::byte{3};               // write_state
    c[12] = std::byte{3};               // rw_mode
    c[13] = std::byte(i == 0 ? 2 : 3);  // mode
    c[15] = std::byte(i == 2 ? 0 : 1);  // gate
  }
}

// PIC (master, slave) and IOAPIC: typecodes 3 and 4.
void interrupt_controllers(std::vector<std::byte>& out) {
  using namespace hvm;
  for (std::uint16_t i = 0; i < 2; ++i)
    entry(out, PIC, i, save_type(PIC).size, [i](std::byte* p) {
      p[1] = std::byte(i == 0 ? 0xb8 : 0xff);  // imr
      p[3] = std::byte(i == 0 ? 0x30 : 0x38);  // irq_base, Linux's vectors
      p[5] = std::byte(i == 0 ? 0x40 : 0);     // is_master
      p[6] = std::byte(i == 0 ? 0x20 : 0x0c);  // elcr: IRQ 5, 10, 11 level
    });
  entry(out, IOAPIC, 0, save_type(IOAPIC).size, [](std::byte* p) {
    put(p, 0, u64{0xfec00000});
    put(p, 12, u32{1});  // id
    for (u32 pin = 0; pin < 48; ++pin) put(p, 16 + 8 * pin, pin == 2 ? u64{0x30} : u64{0x10000});
  });
}

// Typecodes 7 to 13: interrupt wiring and the platform timers.
void platform(std::vector<std::byte>& out) {
  using namespace hvm;
  entry(out, PCI_IRQ, 0, save_type(PCI_IRQ).size, [](std::byte*) {});
  entry(out, ISA_IRQ, 0, save_type(ISA_IRQ).size, [](std::byte*) {});
  entry(out, PCI_LINK, 0, save_type(PCI_LINK).size, [](std::byte* p) {
    const std::uint8_t route[4] = {5, 10, 11, 5};
    std::memcpy(p, route, 4);
  });
  entry(out, PIT, 0, save_type(PIT).size, pit);
  entry(out, RTC, 0, save_type(RTC).size, [](std::byte* p) {
    const std::uint8_t cmos[14] = {0x30, 0, 0x15, 0, 0x12, 0, 0x03, 0x07, 0x12, 0x23, 0x26, 0x02, 0, 0x80};
    std::memcpy(p, cmos, sizeof cmos);
  });
  entry(out, HPET, 0, save_type(HPET).size, [](std::byte* p) {
    put(p, 0, u64{0x00f424008086a201ull});  // 16 ns period, 3 timers, 64-bit, legacy
    for (int t = 0; t < 3; ++t) {
      put(p, 0x100 + 0x20 * t, u64{0x00f0000000000030ull});  // route cap, 64-bit, periodic cap
      put(p, 0x108 + 0x20 * t, ~u64{0});
    }
  });
  entry(out, PMTIMER, 0, save_type(PMTIMER).size, [](std::byte* p) { put(p, 0, u32{0x5a3c21}); });
}

}  // namespace

std::vector<std::byte> GuestPlan::hvm_context(bool viridian) const {
  using namespace hvm;
  std::vector<std::byte> out;
  const auto n = static_cast<std::uint16_t>(vcpus_);
  // Per-vcpu types once per vcpu, everything in typecode order (hvm_save).
  auto per_vcpu = [&](std::uint16_t code, u32 len, auto fill) {
    for (std::uint16_t v = 0; v < n; ++v) entry(out, code, v, len, [&](std::byte* p) { fill(p, v); });
  };
  entry(out, HEADER, 0, sizeof(SaveHeader), [](std::byte* p) {
    const SaveHeader h{kFileMagic, kFileVersion, 0x7ad6a2eull, 0x000906ea, 2000000};
    std::memcpy(p, &h, sizeof h);
  });
  // The page Linux's pagetable root is in: RAM, not special, not the hole.
  u64 cr3 = std::min<u64>(range_ / 4, 0x2a0a);
  if (cr3 >= 0xa0 && cr3 < 0xc0) cr3 = 0x9f;
  per_vcpu(CPU, save_type(CPU).size, [cr3](std::byte* p, u32 v) { cpu(p, v, cr3); });
  interrupt_controllers(out);
  per_vcpu(LAPIC, save_type(LAPIC).size, [](std::byte* p, u32 v) {
    put(p, 0, u64{0xfee00800u | (v == 0 ? 0x100u : 0u)});  // enabled; BSP on vcpu 0
    put(p, 12, u32{1});                                    // timer_divisor
  });
  per_vcpu(LAPIC_REGS, save_type(LAPIC_REGS).size, lapic_regs);
  platform(out);
  per_vcpu(MTRR, save_type(MTRR).size, [](std::byte* p, u32) { mtrr(p); });
  if (viridian) entry(out, VIRIDIAN_DOMAIN, 0, save_type(VIRIDIAN_DOMAIN).size, [](std::byte*) {});
  // hvm_hw_cpu_xsave: xfeature_mask, xcr0, xcr0_accum, then the area.
  per_vcpu(CPU_XSAVE, 24 + kXsaveArea, [](std::byte* p, u32) {
    for (int i = 0; i < 3; ++i) put(p, 8 * i, kXcr0);
    put(p + 24, 0, std::uint16_t{0x37f});
    put(p + 24, 24, u32{0x1f80});
    put(p + 24, 28, u32{0xffff});
    put(p + 24, 512, u64{0x3});  // xstate_bv
  });
  if (viridian) per_vcpu(VIRIDIAN_VCPU, save_type(VIRIDIAN_VCPU).size, [](std::byte*, u32) {});
  per_vcpu(VMCE_VCPU, save_type(VMCE_VCPU).size, [](std::byte* p, u32) { put(p, 0, u64{0x102}); });
  per_vcpu(TSC_ADJUST, save_type(TSC_ADJUST).size, [](std::byte*, u32) {});
  entry(out, END, 0, 0, [](std::byte*) {});
  return out;
}

}  // namespace xsr::gen_detail
