#include "xsr/vcpu_state.h"

#include <cstring>

#include <nlohmann/json.hpp>

#include "xsr/format.h"
#include "xsr/guest_state.h"
#include "xsr/units.h"

namespace xsr {
namespace {

using u32 = std::uint32_t;
using u64 = std::uint64_t;
using ull = unsigned long long;

// An XSAVE area starts with the FXSAVE image (512 bytes) and the XSAVE
// header (64 bytes): a shorter one is not kept.
constexpr std::size_t kXsaveMin = 576;

constexpr RegisterField kGeneral[] = {
    {"rax", &VcpuState::rax}, {"rbx", &VcpuState::rbx}, {"rcx", &VcpuState::rcx},
    {"rdx", &VcpuState::rdx}, {"rsi", &VcpuState::rsi}, {"rdi", &VcpuState::rdi},
    {"rbp", &VcpuState::rbp}, {"rsp", &VcpuState::rsp}, {"r8", &VcpuState::r8},
    {"r9", &VcpuState::r9},   {"r10", &VcpuState::r10}, {"r11", &VcpuState::r11},
    {"r12", &VcpuState::r12}, {"r13", &VcpuState::r13}, {"r14", &VcpuState::r14},
    {"r15", &VcpuState::r15}, {"rip", &VcpuState::rip}, {"rflags", &VcpuState::rflags},
};
constexpr RegisterField kControl[] = {
    {"fs_base", &VcpuState::fs_base}, {"gs_base", &VcpuState::gs_base}, {"shadow_gs", &VcpuState::shadow_gs},
    {"cr0", &VcpuState::cr0},         {"cr2", &VcpuState::cr2},         {"cr3", &VcpuState::cr3},
    {"cr4", &VcpuState::cr4},
};
constexpr SegmentField kSegments[] = {
    {"cs", &VcpuState::cs},     {"ds", &VcpuState::ds},     {"es", &VcpuState::es},
    {"fs", &VcpuState::fs},     {"gs", &VcpuState::gs},     {"ss", &VcpuState::ss},
    {"tr", &VcpuState::tr},     {"ldtr", &VcpuState::ldtr}, {"idtr", &VcpuState::idtr},
    {"gdtr", &VcpuState::gdtr},
};

// A register or ulong of the guest's width, zero-extended.
u64 word(const std::byte* p, u32 width) { return width == 4 ? load<u32>(p) : load<u64>(p); }

void hvm_cpu(VcpuState& v, const hvm::HwCpu& c) {
  v.source = VcpuState::Source::hvm;
  v.width_bits = 64;
  v.rax = c.rax, v.rbx = c.rbx, v.rcx = c.rcx, v.rdx = c.rdx;
  v.rsi = c.rsi, v.rdi = c.rdi, v.rbp = c.rbp, v.rsp = c.rsp;
  v.r8 = c.r8, v.r9 = c.r9, v.r10 = c.r10, v.r11 = c.r11;
  v.r12 = c.r12, v.r13 = c.r13, v.r14 = c.r14, v.r15 = c.r15;
  v.rip = c.rip, v.rflags = c.rflags;
  v.cs = {c.cs_sel, c.cs_base, c.cs_limit, c.cs_arbytes};
  v.ds = {c.ds_sel, c.ds_base, c.ds_limit, c.ds_arbytes};
  v.es = {c.es_sel, c.es_base, c.es_limit, c.es_arbytes};
  v.fs = {c.fs_sel, c.fs_base, c.fs_limit, c.fs_arbytes};
  v.gs = {c.gs_sel, c.gs_base, c.gs_limit, c.gs_arbytes};
  v.ss = {c.ss_sel, c.ss_base, c.ss_limit, c.ss_arbytes};
  v.tr = {c.tr_sel, c.tr_base, c.tr_limit, c.tr_arbytes};
  v.ldtr = {c.ldtr_sel, c.ldtr_base, c.ldtr_limit, c.ldtr_arbytes};
  v.idtr = {0, c.idtr_base, c.idtr_limit, 0};
  v.gdtr = {0, c.gdtr_base, c.gdtr_limit, 0};
  v.descriptors = true;
  v.fs_base = c.fs_base, v.gs_base = c.gs_base, v.shadow_gs = c.shadow_gs;
  v.cr0 = c.cr0, v.cr2 = c.cr2, v.cr3 = c.cr3, v.cr4 = c.cr4;
  v.efer = c.msr_efer;
  v.has_efer = true;
  v.pt_root_pfn = hvm_cr3_pfn(c.cr3);
  v.has_fpu = true;
  std::memcpy(v.fxsave.data(), c.fpu_regs, sizeof c.fpu_regs);
}

std::string hex(u64 v) { return strprintf("0x%llx", static_cast<ull>(v)); }
std::string hex16(u64 v) { return strprintf("0x%016llx", static_cast<ull>(v)); }

std::string source_name(const VcpuState& v) { return v.source == VcpuState::Source::hvm ? "hvm" : "pv"; }

}  // namespace

std::span<const RegisterField> general_registers() { return kGeneral; }
std::span<const RegisterField> control_registers() { return kControl; }
std::span<const SegmentField> segment_registers() { return kSegments; }

void VcpuStates::record(u32 type, std::span<const std::byte> b, bool whole) {
  switch (type) {
    case libxc::X86_PV_INFO:
      if (b.size() >= sizeof(libxc::X86PvInfo)) pv_width = load<libxc::X86PvInfo>(b.data()).guest_width;
      break;
    case libxc::X86_PV_P2M_FRAMES:
      if (b.size() >= sizeof(libxc::X86PvP2mFrames))
        p2m_size = u64{load<libxc::X86PvP2mFrames>(b.data()).end_pfn} + 1;
      break;
    case libxc::X86_PV_VCPU_BASIC:
      if (whole) pv_basic(b);
      break;
    case libxc::X86_PV_VCPU_XSAVE:
      if (whole) pv_xsave(b);
      break;
    case libxc::HVM_CONTEXT:
      if (whole) hvm_blob(b);
      else hvm_blob_skipped = true;
      break;
    default: break;
  }
}

void VcpuStates::hvm_blob(std::span<const std::byte> b) {
  const std::size_t cpu_min = hvm::save_type(hvm::CPU).compat_size;
  std::size_t off = 0;
  while (b.size() - off >= sizeof(hvm::SaveDescriptor)) {
    const auto d = load<hvm::SaveDescriptor>(b.data() + off);
    off += sizeof d;
    if (d.length > b.size() - off || d.typecode == hvm::END) return;
    const std::byte* p = b.data() + off;
    if (d.typecode == hvm::CPU && d.length >= cpu_min) {
      // The older layout (hvm_hw_cpu_compat) is the newer one's prefix up to
      // msr_efer, the last field read here.
      hvm::HwCpu c{};
      std::memcpy(&c, p, std::min<std::size_t>(d.length, sizeof c));
      VcpuState& v = vcpus[d.instance];
      v.id = d.instance;
      hvm_cpu(v, c);
    } else if (d.typecode == hvm::CPU_XSAVE && d.length >= sizeof(hvm::HwCpuXsaveHeader) + kXsaveMin) {
      VcpuState& v = vcpus[d.instance];
      v.id = d.instance;
      v.xcr0 = load<hvm::HwCpuXsaveHeader>(p).xcr0;
      v.xsave.assign(p + sizeof(hvm::HwCpuXsaveHeader), p + d.length);
    }
    off += d.length;
  }
}

void VcpuStates::pv_basic(std::span<const std::byte> b) {
  const u32 w = pv_width == 4 ? 4 : 8;
  const pv::ContextLayout& L = pv::context_layout(w);
  if (b.size() < sizeof(libxc::X86PvVcpuHeader) + L.size) return;
  const u32 id = load<libxc::X86PvVcpuHeader>(b.data()).vcpu_id;
  const std::byte* c = b.data() + sizeof(libxc::X86PvVcpuHeader);
  VcpuState& v = vcpus[id];
  v.id = id;
  v.source = VcpuState::Source::pv;
  v.width_bits = w * 8;
  const pv::UserRegsLayout& R = pv::user_regs_layout(w);
  const std::byte* u = c + L.user_regs;
  v.rax = word(u + R.rax, w), v.rbx = word(u + R.rbx, w), v.rcx = word(u + R.rcx, w);
  v.rdx = word(u + R.rdx, w), v.rsi = word(u + R.rsi, w), v.rdi = word(u + R.rdi, w);
  v.rbp = word(u + R.rbp, w), v.rsp = word(u + R.rsp, w);
  if (w == 8) {
    v.r8 = word(u + R.r8, w), v.r9 = word(u + R.r9, w), v.r10 = word(u + R.r10, w);
    v.r11 = word(u + R.r11, w), v.r12 = word(u + R.r12, w), v.r13 = word(u + R.r13, w);
    v.r14 = word(u + R.r14, w), v.r15 = word(u + R.r15, w);
  }
  v.rip = word(u + R.rip, w), v.rflags = word(u + R.rflags, w);
  v.cs = {load<std::uint16_t>(u + R.cs)}, v.ss = {load<std::uint16_t>(u + R.ss)};
  v.es = {load<std::uint16_t>(u + R.es)}, v.ds = {load<std::uint16_t>(u + R.ds)};
  v.fs = {load<std::uint16_t>(u + R.fs)}, v.gs = {load<std::uint16_t>(u + R.gs)};
  v.tr = v.ldtr = v.idtr = v.gdtr = {};
  v.descriptors = false;
  if (w == 8) {
    const bool kernel = word(c + L.flags, w) & pv::kVgcfInKernel;
    const u64 gk = load<u64>(c + L.gs_base_kernel), gu = load<u64>(c + L.gs_base_user);
    v.fs_base = load<u64>(c + L.fs_base);
    v.gs_base = kernel ? gk : gu;
    v.shadow_gs = kernel ? gu : gk;
  } else {
    v.fs_base = v.gs_base = v.shadow_gs = 0;
  }
  v.cr0 = word(c + L.ctrlreg, w), v.cr2 = word(c + L.ctrlreg + 2 * w, w);
  v.cr3 = word(c + L.ctrlreg + 3 * w, w), v.cr4 = word(c + L.ctrlreg + 4 * w, w);
  v.efer = 0;
  v.has_efer = false;
  v.pt_root_pfn = pv::cr3_to_pfn(v.cr3, w);
  v.has_fpu = true;  // fpu_ctxt, at offset 0 of both widths' contexts
  std::memcpy(v.fxsave.data(), c, v.fxsave.size());
}

void VcpuStates::pv_xsave(std::span<const std::byte> b) {
  // The vcpu header, xcr0, xcr0_accum, then the area.
  constexpr std::size_t kFixed = sizeof(libxc::X86PvVcpuHeader) + 16;
  if (b.size() < kFixed + kXsaveMin) return;
  const u32 id = load<libxc::X86PvVcpuHeader>(b.data()).vcpu_id;
  VcpuState& v = vcpus[id];
  v.id = id;
  v.source = VcpuState::Source::pv;
  v.xcr0 = load<u64>(b.data() + sizeof(libxc::X86PvVcpuHeader));
  v.xsave.assign(b.data() + kFixed, b.data() + b.size());
}

void VcpuObserver::record(Layer layer, u32 type, u64 off, u64 len, std::span<const std::byte> body) {
  if (layer == Layer::libxc) states_.record(type, body, body.size() == len);
  next_.record(layer, type, off, len, body);
}

std::string vcpu_states_text(const VcpuStates& s) {
  std::string o;
  if (s.pv_width)
    o += strprintf("pv guest %u-bit, p2m size %s\n", s.pv_width * 8,
                   s.p2m_size ? (std::to_string(s.p2m_size) + " pfns").c_str() : "unknown");
  for (const auto& [id, v] : s.vcpus) {
    o += strprintf("vcpu %u (%s, %u-bit)\n", id, v.source == VcpuState::Source::hvm ? "HVM" : "PV",
                   v.width_bits);
    std::string l;
    for (std::size_t i = 0; i < std::size(kGeneral); ++i) {
      l += strprintf("  %-6s %s", kGeneral[i].name, hex16(v.*kGeneral[i].value).c_str());
      if (i % 4 == 3 || i + 1 == std::size(kGeneral)) o += l + "\n", l.clear();
    }
    o += strprintf("  fs_base %s  gs_base %s  shadow_gs %s\n", hex16(v.fs_base).c_str(),
                   hex16(v.gs_base).c_str(), hex16(v.shadow_gs).c_str());
    o += strprintf("  cr0 %s  cr2 %s  cr3 %s (page-table root pfn %s)  cr4 %s  efer %s\n", hex(v.cr0).c_str(),
                   hex(v.cr2).c_str(), hex(v.cr3).c_str(), hex(v.pt_root_pfn).c_str(), hex(v.cr4).c_str(),
                   v.has_efer ? hex(v.efer).c_str() : "-");
    if (v.descriptors) {
      for (const SegmentField& f : kSegments) {
        const SegmentState& g = v.*f.value;
        if (f.value == &VcpuState::idtr || f.value == &VcpuState::gdtr) {
          o += strprintf("  %-4s   base %s  limit 0x%08x\n", f.name, hex16(g.base).c_str(), g.limit);
          continue;
        }
        o += strprintf("  %-4s   selector 0x%04x  base %s  limit 0x%08x  arbytes 0x%04x\n", f.name,
                       g.selector, hex16(g.base).c_str(), g.limit, g.arbytes);
      }
    } else {
      o +=
          strprintf("  selectors cs 0x%04x ds 0x%04x es 0x%04x fs 0x%04x gs 0x%04x ss 0x%04x\n",
                    v.cs.selector, v.ds.selector, v.es.selector, v.fs.selector, v.gs.selector, v.ss.selector);
    }
    if (v.has_fpu)
      o += strprintf("  fpu    fcw 0x%04x  fsw 0x%04x  mxcsr 0x%08x\n", load<std::uint16_t>(v.fxsave.data()),
                     load<std::uint16_t>(v.fxsave.data() + 2), load<u32>(v.fxsave.data() + 24));
    if (!v.xsave.empty())
      o += strprintf("  xsave  xcr0 %s, %zu bytes\n", hex(v.xcr0).c_str(), v.xsave.size());
  }
  return o;
}

namespace {

using Json = nlohmann::ordered_json;

Json vcpu_json(const VcpuState& v) {
  Json j;
  j["id"] = v.id;
  j["source"] = source_name(v);
  j["width_bits"] = v.width_bits;
  Json regs;
  for (const RegisterField& r : kGeneral) regs[r.name] = v.*r.value;
  j["registers"] = std::move(regs);
  Json segs;
  for (const SegmentField& f : kSegments) {
    const SegmentState& g = v.*f.value;
    const bool table = f.value == &VcpuState::idtr || f.value == &VcpuState::gdtr;
    if (!v.descriptors && table) {
      segs[f.name] = nullptr;
      continue;
    }
    Json s;
    s["selector"] = table ? Json(nullptr) : Json(g.selector);
    s["base"] = v.descriptors ? Json(g.base) : Json(nullptr);
    s["limit"] = v.descriptors ? Json(g.limit) : Json(nullptr);
    s["arbytes"] = v.descriptors && !table ? Json(g.arbytes) : Json(nullptr);
    segs[f.name] = std::move(s);
  }
  j["segments"] = std::move(segs);
  for (const RegisterField& r : kControl) j[r.name] = v.*r.value;
  j["efer"] = v.has_efer ? Json(v.efer) : Json(nullptr);
  j["pt_root_pfn"] = v.pt_root_pfn;
  j["fpu"] = v.has_fpu ? Json{{"fcw", load<std::uint16_t>(v.fxsave.data())},
                              {"fsw", load<std::uint16_t>(v.fxsave.data() + 2)},
                              {"mxcsr", load<u32>(v.fxsave.data() + 24)}}
                       : Json(nullptr);
  j["xsave"] = v.xsave.empty() ? Json(nullptr) : Json{{"xcr0", v.xcr0}, {"bytes", v.xsave.size()}};
  return j;
}

}  // namespace

nlohmann::ordered_json vcpu_states_json(const VcpuStates& s) {
  Json o;
  o["guest_width_bits"] = s.pv_width ? Json(s.pv_width * 8) : Json(nullptr);
  o["p2m_size"] = s.p2m_size ? Json(s.p2m_size) : Json(nullptr);
  Json a = Json::array();
  for (const auto& [id, v] : s.vcpus) a.push_back(vcpu_json(v));
  o["vcpus"] = std::move(a);
  return o;
}

}  // namespace xsr
