#include "xsr/guest_state.h"

namespace xsr::hvm {

namespace {

// Xen 4.17's save types (xen/include/public/arch-x86/hvm/save.h): name,
// size, compat size, per vcpu, variable.
constexpr TypeInfo kTypes[kMaxCode + 1] = {
    {"END", 0, 0, false, false},          {"HEADER", 24, 0, false, false},
    {"CPU", 1032, 1016, true, false},     {"PIC", 8, 0, false, false},
    {"IOAPIC", 400, 0, false, false},     {"LAPIC", 24, 0, true, false},
    {"LAPIC_REGS", 1024, 0, true, false}, {"PCI_IRQ", 16, 0, false, false},
    {"ISA_IRQ", 8, 0, false, false},      {"PCI_LINK", 8, 0, false, false},
    {"PIT", 56, 0, false, false},         {"RTC", 24, 0, false, false},
    {"HPET", 1048, 0, false, false},      {"PMTIMER", 8, 0, false, false},
    {"MTRR", 240, 0, true, false},        {"VIRIDIAN_DOMAIN", 32, 0, false, false},
    {"CPU_XSAVE", 24, 0, true, true},     {"VIRIDIAN_VCPU", 216, 0, true, false},
    {"VMCE_VCPU", 32, 0, true, false},    {"TSC_ADJUST", 8, 0, true, false},
    {"CPU_MSR", 8, 0, true, true},
};

constexpr TypeInfo kUnknown{nullptr, 0, 0, false, false};

}  // namespace

const TypeInfo& save_type(std::uint16_t code) { return code <= kMaxCode ? kTypes[code] : kUnknown; }

}  // namespace xsr::hvm
