// The vCPUs' register state as an image carries it: the HVM save blob's
// CPU and CPU_XSAVE entries, or a PV guest's X86_PV_VCPU_BASIC and
// X86_PV_VCPU_XSAVE records (their width from X86_PV_INFO). The last copy of
// each wins, as it does when Xen restores a checkpointed stream. What
// `xsr inspect --vcpus` prints and what `xsr extract --elf` writes into the
// core's notes (docs/elf-core.md).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "xsr/verify.h"

namespace xsr {

struct SegmentState {
  std::uint32_t selector = 0;
  std::uint64_t base = 0;
  std::uint32_t limit = 0;
  std::uint32_t arbytes = 0;  // Xen's packed attributes (hvm_hw_cpu *_arbytes)
};

struct VcpuState {
  enum class Source : std::uint8_t { hvm, pv };
  std::uint32_t id = 0;
  Source source = Source::hvm;
  std::uint32_t width_bits = 64;  // 32 for a 32-bit PV guest (registers zero-extended)

  // General registers by their x86-64 names.
  std::uint64_t rax = 0, rbx = 0, rcx = 0, rdx = 0, rsi = 0, rdi = 0, rbp = 0, rsp = 0;
  std::uint64_t r8 = 0, r9 = 0, r10 = 0, r11 = 0, r12 = 0, r13 = 0, r14 = 0, r15 = 0;
  std::uint64_t rip = 0, rflags = 0;
  // Segments; PV contexts carry the selectors only (descriptors false).
  SegmentState cs, ds, es, fs, gs, ss, tr, ldtr;
  SegmentState idtr, gdtr;  // base and limit
  bool descriptors = false;
  // The active fs and gs bases and the other gs base (HVM: shadow_gs, the
  // KERNEL_GS_BASE MSR; 64-bit PV: gs_base_user in the kernel, else
  // gs_base_kernel). 32-bit PV guests: 0.
  std::uint64_t fs_base = 0, gs_base = 0, shadow_gs = 0;
  std::uint64_t cr0 = 0, cr2 = 0, cr3 = 0, cr4 = 0;
  std::uint64_t efer = 0;  // HVM only
  bool has_efer = false;
  std::uint64_t pt_root_pfn = 0;  // the pfn cr3 names (the page-table root)

  bool has_fpu = false;  // the FXSAVE image below is the image's
  std::array<std::byte, 512> fxsave{};
  std::uint64_t xcr0 = 0;        // with an XSAVE area
  std::vector<std::byte> xsave;  // the XSAVE area (uncompacted, FXSAVE first); empty: none
};

// The registers in fixed order: name and member (the text and JSON order).
struct RegisterField {
  const char* name;
  std::uint64_t VcpuState::*value;
};
std::span<const RegisterField> general_registers();  // rax .. r15, rip, rflags
std::span<const RegisterField> control_registers();  // fs_base .. cr4
struct SegmentField {
  const char* name;
  SegmentState VcpuState::*value;
};
std::span<const SegmentField> segment_registers();  // cs ds es fs gs ss tr ldtr idtr gdtr

// An HVM guest's page-table root: cr3 >> 12 within the 52 address bits.
constexpr std::uint64_t hvm_cr3_pfn(std::uint64_t cr3) { return (cr3 & 0x000ffffffffff000ull) >> 12; }

// The vCPU state of a whole image, from its records in stream order.
struct VcpuStates {
  std::map<std::uint32_t, VcpuState> vcpus;
  std::uint32_t pv_width = 0;     // X86_PV_INFO guest width in bytes (0: none seen)
  std::uint64_t p2m_size = 0;     // PV: X86_PV_P2M_FRAMES end_pfn + 1 (pfns); 0: none
  bool hvm_blob_skipped = false;  // an HVM_CONTEXT too large to be handed over whole

  // One checked libxc record; `body` is whole when its size is the record's.
  void record(std::uint32_t type, std::span<const std::byte> body, bool whole);
  // The CPU and CPU_XSAVE entries of an HVM save blob (bounded by the blob:
  // a short or overrunning entry is left out, never read past).
  void hvm_blob(std::span<const std::byte> blob);
  // X86_PV_VCPU_BASIC / X86_PV_VCPU_XSAVE bodies (vcpu header included).
  void pv_basic(std::span<const std::byte> body);
  void pv_xsave(std::span<const std::byte> body);
};

// Hands every call on to `next` and collects the VcpuStates on the way:
// what extract puts in front of its own observer.
class VcpuObserver final : public StreamObserver {
 public:
  explicit VcpuObserver(StreamObserver& next) : next_(next) {}
  void header(HeaderKind kind, std::uint64_t off, std::uint64_t len) override {
    next_.header(kind, off, len);
  }
  void config(std::span<const std::byte> chunk) override { next_.config(chunk); }
  void record(Layer layer, std::uint32_t type, std::uint64_t off, std::uint64_t len,
              std::span<const std::byte> body) override;
  void pfns(std::span<const std::byte> chunk) override { next_.pfns(chunk); }
  Error pages(PageDataReader& pd) override { return next_.pages(pd); }
  bool wants_pages() const override { return next_.wants_pages(); }
  const VcpuStates& states() const { return states_; }

 private:
  StreamObserver& next_;
  VcpuStates states_;
};

// `xsr inspect --vcpus`: the text section and the JSON member (schema in
// docs/inspect-json.md, key `vcpu_state`).
std::string vcpu_states_text(const VcpuStates& s);
nlohmann::ordered_json vcpu_states_json(const VcpuStates& s);

}  // namespace xsr
