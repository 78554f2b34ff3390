// The guest a generated stream describes, checked against what Xen 4.17's
// restore and hypervisor look at: record order, the HVM save blob's entries,
// HVM params, PV pagetables, p2m frames, vcpu contexts and start_info.
#include <gtest/gtest.h>

#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "test_util.h"
#include "xsr/format.h"
#include "xsr/gen.h"
#include "xsr/guest_state.h"

namespace xsr::test {
namespace {

using u64 = std::uint64_t;
using u32 = std::uint32_t;

// A bare libxc stream split into records, and the pages it sends by pfn.
struct Parsed {
  std::vector<std::pair<u32, std::vector<std::byte>>> records;
  std::map<u64, unsigned> types;                  // pfn -> PFINFO type
  std::map<u64, std::vector<std::byte>> special;  // special pfn -> its page
  std::vector<const std::vector<std::byte>*> of(u32 type) const {
    std::vector<const std::vector<std::byte>*> v;
    for (const auto& [t, body] : records)
      if (t == type) v.push_back(&body);
    return v;
  }
  std::vector<u32> order() const {
    std::vector<u32> v;
    for (const auto& r : records)
      if (r.first != libxc::PAGE_DATA) v.push_back(r.first);
    return v;
  }
};

Parsed parse(const GenOptions& o) {
  const std::vector<std::byte> s = gen_bytes(o);
  Parsed p;
  for (std::size_t off = 40; off < s.size();) {
    const auto h = load<RecordHeader>(s.data() + off);
    std::vector<std::byte> body(s.begin() + static_cast<std::ptrdiff_t>(off + 8),
                                s.begin() + static_cast<std::ptrdiff_t>(off + 8 + h.length));
    off += 8 + padded(h.length);
    if (h.type == libxc::PAGE_DATA) {
      const u32 n = load<u32>(body.data());
      std::size_t page = 8 + 8 * std::size_t{n};
      for (u32 i = 0; i < n; ++i) {
        const u64 e = load<u64>(body.data() + 8 + 8 * i);
        const u64 pfn = e & libxc::kPfnMask;
        const auto type = static_cast<unsigned>(e >> libxc::kPfnTypeShift);
        p.types[pfn] = type;
        if (!libxc::page_type_has_data(type)) continue;
        if (gen_pfn_special(o, pfn))
          p.special[pfn].assign(body.begin() + static_cast<std::ptrdiff_t>(page),
                                body.begin() + static_cast<std::ptrdiff_t>(page + kPageSize));
        page += kPageSize;
      }
    }
    p.records.emplace_back(h.type, std::move(body));
    if (h.type == libxc::END) break;
  }
  return p;
}

TEST(GenHvm, RecordsFollowXensSaveOrder) {
  GenOptions o;
  o.size = 2 << 20;
  o.checkpoints = 1;
  const std::vector<u32> want = {libxc::X86_CPUID_POLICY,
                                 libxc::X86_MSR_POLICY,
                                 libxc::STATIC_DATA_END,
                                 libxc::X86_TSC_INFO,
                                 libxc::HVM_CONTEXT,
                                 libxc::HVM_PARAMS,
                                 libxc::CHECKPOINT,
                                 libxc::X86_TSC_INFO,
                                 libxc::HVM_CONTEXT,
                                 libxc::HVM_PARAMS,
                                 libxc::END};
  EXPECT_EQ(parse(o).order(), want);
}

TEST(GenHvm, SaveBlobHasEveryEntryAtItsSizeInTypecodeOrder) {
  GenOptions o;
  o.size = 1 << 20;
  o.vcpus = 3;
  const Parsed p = parse(o);
  const std::vector<std::byte>& blob = *p.of(libxc::HVM_CONTEXT).at(0);
  std::map<std::uint16_t, u32> count;
  std::uint16_t last = 0;
  std::size_t off = 0;
  for (;;) {
    ASSERT_LE(off + 8, blob.size());
    const auto d = load<hvm::SaveDescriptor>(blob.data() + off);
    const hvm::TypeInfo& t = hvm::save_type(d.typecode);
    ASSERT_NE(t.name, nullptr) << d.typecode;
    if (off == 0) {
      ASSERT_EQ(d.typecode, hvm::HEADER);
      const auto h = load<hvm::SaveHeader>(blob.data() + 8);
      EXPECT_EQ(h.magic, hvm::kFileMagic);
      EXPECT_EQ(h.version, hvm::kFileVersion);
    } else if (d.typecode != hvm::END) {
      EXPECT_GE(d.typecode, last);
    }
    const u32 want = t.variable ? t.size + 832 : t.size;  // CPU_XSAVE: x87, SSE, AVX
    EXPECT_EQ(d.length, want) << t.name;
    EXPECT_EQ(d.instance, t.per_vcpu ? count[d.typecode] : d.typecode == hvm::PIC ? count[d.typecode] : 0);
    ++count[d.typecode];
    last = d.typecode;
    off += 8 + d.length;
    if (d.typecode == hvm::END) break;
  }
  EXPECT_EQ(off, blob.size());
  for (auto code : {hvm::CPU, hvm::LAPIC, hvm::LAPIC_REGS, hvm::MTRR, hvm::CPU_XSAVE, hvm::VMCE_VCPU})
    EXPECT_EQ(count[code], 3u) << hvm::save_type(code).name;
  EXPECT_EQ(count[hvm::PIC], 2u);
  for (auto code :
       {hvm::IOAPIC, hvm::PCI_IRQ, hvm::ISA_IRQ, hvm::PCI_LINK, hvm::PIT, hvm::RTC, hvm::HPET, hvm::PMTIMER})
    EXPECT_EQ(count[code], 1u) << hvm::save_type(code).name;
}

TEST(GenHvm, PfnParamsNameSpecialPagesTheStreamSends) {
  GenOptions o;
  o.size = 4 << 20;
  const Parsed p = parse(o);
  const std::vector<std::byte>& body = *p.of(libxc::HVM_PARAMS).at(0);
  const u32 n = load<u32>(body.data());
  ASSERT_EQ(body.size(), 8 + 16u * n);
  for (u32 i = 0; i < n; ++i) {
    const auto prm = load<libxc::HvmParam>(body.data() + 8 + 16 * i);
    EXPECT_NE(prm.value, 0u);
    if (prm.index == 1 || prm.index == 5 || prm.index == 6 || prm.index == 17 || prm.index == 32) {
      EXPECT_TRUE(gen_pfn_special(o, prm.value)) << prm.index;
      EXPECT_EQ(p.types.at(prm.value), libxc::NOTAB) << prm.index;
    }
    if (prm.index == 12) {
      EXPECT_TRUE(gen_pfn_special(o, prm.value >> 12));
    }
  }
}

class GenPv : public testing::TestWithParam<u32> {};

TEST_P(GenPv, PagetablesP2mAndVcpusPointAtPagesTheStreamSends) {
  GenOptions o;
  o.hvm = false;
  o.pv_width = GetParam();
  o.size = 12 << 20;
  o.vcpus = 3;
  const Parsed p = parse(o);
  const u64 range = gen_pfn_range(o);
  // Pagetables: present entries inside the p2m, the top one pinned.
  unsigned pinned_top = 0;
  for (const auto& [pfn, page] : p.special) {
    const unsigned t = p.types.at(pfn) & 7;
    if (t == libxc::NOTAB) continue;
    if (t == (GetParam() == 8 ? 4u : 3u)) pinned_top += (p.types.at(pfn) & 8) != 0;
    for (u32 i = 0; i < pv::kPtesPerPage; ++i) {
      const u64 pte = load<u64>(page.data() + 8 * i);
      if (pte & pv::kPtePresent) {
        EXPECT_LT(pv::pte_pfn(pte), range);
      }
    }
  }
  EXPECT_EQ(pinned_top, 1u);
  // P2M frames: sent NOTAB pages holding pfn i at entry i.
  const std::vector<std::byte>& fr = *p.of(libxc::X86_PV_P2M_FRAMES).at(0);
  EXPECT_EQ(load<u32>(fr.data() + 4), range - 1);
  for (std::size_t off = 8; off < fr.size(); off += 8) {
    const u64 pfn = load<u64>(fr.data() + off);
    ASSERT_EQ(p.types.at(pfn), libxc::NOTAB);
    const u64 first = (off - 8) / 8 * (kPageSize / GetParam());
    EXPECT_EQ(GetParam() == 8 ? load<u64>(p.special.at(pfn).data()) : load<u32>(p.special.at(pfn).data()),
              first);
  }
  // vCPUs: cr3 names the top-level table, vcpu 0's rdx start_info.
  const auto& L = pv::context_layout(GetParam());
  auto word = [&](const std::vector<std::byte>& b, u32 off) {
    return GetParam() == 8 ? load<u64>(b.data() + 8 + off) : u64{load<u32>(b.data() + 8 + off)};
  };
  const auto basics = p.of(libxc::X86_PV_VCPU_BASIC);
  ASSERT_EQ(basics.size(), 3u);
  for (const auto* b : basics) {
    ASSERT_EQ(b->size(), 8 + L.size);
    const u64 top = pv::cr3_to_pfn(word(*b, L.ctrlreg + 3 * L.word), GetParam());
    EXPECT_EQ(p.types.at(top), GetParam() == 8 ? libxc::L4TAB_PIN : libxc::L3TAB_PIN);
    EXPECT_EQ(word(*b, L.flags) & 0x24, 0x24u);  // VGCF_online, VGCF_in_kernel
  }
  const u64 si = word(*basics[0], L.rdx);
  ASSERT_EQ(p.types.at(si), libxc::NOTAB);
  const std::vector<std::byte>& page = p.special.at(si);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(page.data())),
            GetParam() == 8 ? "xen-3.0-x86_64" : "xen-3.0-x86_32p");
  const auto& S = pv::start_info_layout(GetParam());
  for (u32 field : {S.store_mfn, S.console_mfn}) {
    const u64 pfn = GetParam() == 8 ? load<u64>(page.data() + field) : load<u32>(page.data() + field);
    EXPECT_EQ(p.types.at(pfn), libxc::NOTAB);
    EXPECT_TRUE(gen_pfn_special(o, pfn));
  }
}

INSTANTIATE_TEST_SUITE_P(Widths, GenPv, testing::Values(8u, 4u));

TEST(GenSpecialPages, AreAFewDozenAtMost) {
  for (bool hvm : {true, false}) {
    GenOptions o;
    o.hvm = hvm;
    o.size = 64 << 20;
    u64 special = 0;
    for (u64 pfn = 0; pfn < gen_pfn_range(o); ++pfn) special += gen_pfn_special(o, pfn);
    EXPECT_GT(special, 0u);
    EXPECT_LT(special, 64u) << hvm;
  }
}

}  // namespace
}  // namespace xsr::test
