// Fuzz target: the vCPU state decoder (lib/inspect/vcpu_state) and the ELF
// core's note writer (lib/extract/elf_notes) fed arbitrary records.
// Byte 0: bits 0-1 pick the guest width X86_PV_INFO would have said (none,
// 4, 8, 3), bit 2 marks every record whole or (clear) some of them cut.
// Then records, each a kind byte (its value mod 5: X86_PV_INFO,
// X86_PV_P2M_FRAMES, X86_PV_VCPU_BASIC, X86_PV_VCPU_XSAVE, HVM_CONTEXT), a
// little-endian u32 length (cut to what is left) and the body. Whatever the
// bytes, the notes must parse back note by note, each within its declared
// size, with the counts and sizes the vCPU state implies.
#include <elf.h>

#include <nlohmann/json.hpp>

#include "fuzz.h"
#include "xsr/elf_notes.h"
#include "xsr/format.h"
#include "xsr/vcpu_state.h"

namespace {

using namespace xsr;

constexpr std::uint32_t kKinds[] = {libxc::X86_PV_INFO, libxc::X86_PV_P2M_FRAMES, libxc::X86_PV_VCPU_BASIC,
                                    libxc::X86_PV_VCPU_XSAVE, libxc::HVM_CONTEXT};

std::size_t pad4(std::size_t n) { return (n + 3) & ~std::size_t{3}; }

struct Seen {
  std::size_t prstatus = 0, fpreg = 0, xstate = 0, xsr_vcpu = 0, domain = 0;
};

// Walks the notes as a reader would, checking each against its header.
Seen walk_notes(const std::vector<std::byte>& notes, const VcpuStates& st) {
  Seen s;
  XSR_FUZZ_CHECK(notes.size() % 4 == 0);
  std::size_t off = 0;
  const VcpuState* cur = nullptr;
  auto it = st.vcpus.begin();
  while (off < notes.size()) {
    XSR_FUZZ_CHECK(notes.size() - off >= sizeof(Elf64_Nhdr));
    Elf64_Nhdr h;
    std::memcpy(&h, notes.data() + off, sizeof h);
    off += sizeof h;
    XSR_FUZZ_CHECK(h.n_namesz > 0 && pad4(h.n_namesz) <= notes.size() - off);
    const std::string name(reinterpret_cast<const char*>(notes.data() + off), h.n_namesz - 1);
    XSR_FUZZ_CHECK(static_cast<char>(notes[off + h.n_namesz - 1]) == '\0');
    off += pad4(h.n_namesz);
    XSR_FUZZ_CHECK(pad4(h.n_descsz) <= notes.size() - off);
    XSR_FUZZ_CHECK(s.domain == 0);  // the domain note comes last
    if (name == "CORE" && h.n_type == NT_PRSTATUS) {
      XSR_FUZZ_CHECK(h.n_descsz == 336 && it != st.vcpus.end());
      cur = &(it++)->second;
      std::int32_t pid;
      std::memcpy(&pid, notes.data() + off + 32, 4);
      XSR_FUZZ_CHECK(static_cast<std::uint32_t>(pid) == cur->id + 1);
      ++s.prstatus;
    } else if (name == "CORE" && h.n_type == NT_PRFPREG) {
      XSR_FUZZ_CHECK(h.n_descsz == 512 && cur && cur->has_fpu);
      ++s.fpreg;
    } else if (name == "LINUX" && h.n_type == NT_X86_XSTATE) {
      XSR_FUZZ_CHECK(cur && h.n_descsz == cur->xsave.size());
      ++s.xstate;
    } else if (name == "XSR" && h.n_type == kNtXsrVcpu) {
      XSR_FUZZ_CHECK(h.n_descsz == sizeof(XsrVcpuNote) && cur);
      ++s.xsr_vcpu;
    } else {
      XSR_FUZZ_CHECK(name == "XSR" && h.n_type == kNtXsrDomain && h.n_descsz == sizeof(XsrDomainNote));
      ++s.domain;
    }
    off += pad4(h.n_descsz);
  }
  XSR_FUZZ_CHECK(off == notes.size());
  return s;
}

}  // namespace

XSR_FUZZ_TARGET(notes) {
  fuzz::Options in(data, size);
  const std::uint8_t flags = in.byte();
  static constexpr std::uint32_t kWidths[] = {0, 4, 8, 3};
  VcpuStates st;
  st.pv_width = kWidths[flags & 3];
  Bytes rest = in.rest();
  fuzz::Rng rng(static_cast<std::uint32_t>(size) * 2654435761u + flags);
  while (rest.size() >= 5) {
    const std::uint32_t type = kKinds[static_cast<std::uint8_t>(rest[0]) % 5];
    std::uint32_t len;
    std::memcpy(&len, rest.data() + 1, 4);
    rest = rest.subspan(5);
    const std::size_t n = std::min<std::size_t>(len, rest.size());
    // A body over 1 MiB reaches an observer cut to its first 64 bytes.
    const bool whole = (flags & 4) || rng.below(4) != 0;
    st.record(type, rest.first(whole ? n : std::min<std::size_t>(n, 64)), whole);
    rest = rest.subspan(n);
  }
  const std::vector<std::byte> notes = core_notes(st, CoreDomain{2, 4, 17, 3});
  const Seen s = walk_notes(notes, st);
  XSR_FUZZ_CHECK(s.prstatus == st.vcpus.size() && s.xsr_vcpu == st.vcpus.size() && s.domain == 1);
  std::size_t fpu = 0;
  for (const auto& [id, v] : st.vcpus) fpu += v.has_fpu;
  XSR_FUZZ_CHECK(s.fpreg == fpu);
  XSR_FUZZ_CHECK(!vcpu_states_text(st).empty() || st.vcpus.empty());
  XSR_FUZZ_CHECK(nlohmann::json::accept(vcpu_states_json(st).dump()));
  return 0;
}
