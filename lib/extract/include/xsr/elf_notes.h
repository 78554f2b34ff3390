// The notes of the ELF core `xsr extract --elf` writes (docs/elf-core.md):
// per vCPU an NT_PRSTATUS ("CORE", x86-64 struct elf_prstatus, as Linux
// writes it and gdb reads it), an NT_PRFPREG ("CORE", the 512-byte FXSAVE
// image) where the image carries FPU state, an NT_X86_XSTATE ("LINUX", the
// XSAVE area, xcr0 in its software-reserved bytes) where it carries XSAVE
// state, and an "XSR" vcpu note (what a debugger's view leaves out: control
// registers, descriptors, the page-table root); then one "XSR" domain note.
// Notes are 4-byte aligned (Elf64_Nhdr, name and desc each padded to 4).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "xsr/pfnset.h"
#include "xsr/vcpu_state.h"
#include "xsr/verify.h"

namespace xsr {

// Our note types, under the name "XSR" (types are scoped by name; these
// stay clear of every type binutils reads from a core whatever its name).
constexpr std::uint32_t kNtXsrVcpu = 0x58535201;
constexpr std::uint32_t kNtXsrDomain = 0x58535202;
constexpr std::uint32_t kXsrNoteVersion = 1;

// One segment in the vcpu note.
struct XsrSegment {
  std::uint64_t base;
  std::uint32_t limit;
  std::uint32_t arbytes;
  std::uint32_t selector;
  std::uint32_t reserved;
};
static_assert(sizeof(XsrSegment) == 24);

// The desc of an "XSR" kNtXsrVcpu note, little-endian.
struct XsrVcpuNote {
  std::uint32_t version;  // kXsrNoteVersion
  std::uint32_t vcpu_id;
  std::uint32_t source;      // 1: an HVM CPU save entry, 2: a PV vcpu context
  std::uint32_t width_bits;  // 64, or 32 for a 32-bit PV guest
  std::uint32_t flags;       // kXsrVcpu* below
  std::uint32_t reserved;
  std::uint64_t cr0, cr2, cr3, cr4, efer;
  std::uint64_t pt_root_pfn;  // the pfn cr3 names
  std::uint64_t fs_base, gs_base, shadow_gs;
  std::uint64_t xcr0;
  XsrSegment cs, ds, es, fs, gs, ss, tr, ldtr, idtr, gdtr;
};
static_assert(sizeof(XsrVcpuNote) == 104 + 10 * 24);
static_assert(offsetof(XsrVcpuNote, cr0) == 24 && offsetof(XsrVcpuNote, pt_root_pfn) == 64 &&
              offsetof(XsrVcpuNote, xcr0) == 96 && offsetof(XsrVcpuNote, cs) == 104);
constexpr std::uint32_t kXsrVcpuDescriptors = 1;  // segment base, limit, arbytes are the image's
constexpr std::uint32_t kXsrVcpuEfer = 2;         // efer is the image's
constexpr std::uint32_t kXsrVcpuFpu = 4;          // an NT_PRFPREG note follows the NT_PRSTATUS
constexpr std::uint32_t kXsrVcpuXsave = 8;        // an NT_X86_XSTATE note follows it too

// The desc of the "XSR" kNtXsrDomain note.
struct XsrDomainNote {
  std::uint32_t version;     // kXsrNoteVersion
  std::uint32_t guest_type;  // the domain header's: 1 x86 PV, 2 x86 HVM
  std::uint32_t xen_major, xen_minor;
  std::uint32_t width_bits;  // PV: the guest's, from X86_PV_INFO; HVM: 64
  std::uint32_t vcpus;       // vCPUs with a note
  std::uint64_t p2m_size;    // PV: pfns the p2m covers (X86_PV_P2M_FRAMES end_pfn + 1); HVM: 0
  std::uint64_t pfn_ranges;  // PT_LOAD segments (runs of consecutive pfns)
};
static_assert(sizeof(XsrDomainNote) == 40);

// What the domain note says that the vCPU state does not.
struct CoreDomain {
  std::uint32_t guest_type = 0;
  std::uint32_t xen_major = 0, xen_minor = 0;
  std::uint64_t pfn_ranges = 0;
};

// The PT_NOTE segment's bytes: the vCPUs' notes in id order, then the
// domain note. Its size is a multiple of 4.
std::vector<std::byte> core_notes(const VcpuStates& vcpus, const CoreDomain& domain);
// The same for an extracted image: its domain header's facts from `stats`,
// a pfn range per run of consecutive pfns in `pfns`.
std::vector<std::byte> core_notes(const VcpuStates& vcpus, const StreamStats& stats, const PfnSet& pfns);

}  // namespace xsr
