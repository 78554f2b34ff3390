// inspect.h, extract.h, pfnset.h: reports and extracted memory checked
// against streams this file builds record by record from the spec (not with
// xsr gen), so the expected facts are known independently.
#include "xsr/inspect.h"

#include <elf.h>
#include <gtest/gtest.h>

#include <map>
#include <set>

#include "test_util.h"
#include "xsr/elf_notes.h"
#include "xsr/extract.h"
#include "xsr/format.h"
#include "xsr/guest_state.h"
#include "xsr/image.h"
#include "xsr/pfnset.h"

namespace xsr {
namespace {

using u32 = std::uint32_t;
using u64 = std::uint64_t;

// Record-by-record writer of a libxc v3 stream, straight from the spec.
class StreamBuilder {
 public:
  explicit StreamBuilder(u32 domain_type = libxc::kX86Hvm) {
    libxc::ImageHeader ih{bswap64(libxc::kMarker), bswap32(libxc::kIdent), bswap32(3), 0, 0, 0};
    raw(&ih, sizeof ih);
    libxc::DomainHeader dh{domain_type, 12, 0, 4, 17};
    raw(&dh, sizeof dh);
  }
  void raw(const void* p, std::size_t n) { raw_into(out, p, n); }
  void record(u32 type, const std::vector<std::byte>& body) {
    RecordHeader h{type, static_cast<u32>(body.size())};
    raw(&h, sizeof h);
    out.insert(out.end(), body.begin(), body.end());
    out.resize(out.size() + (8 - body.size() % 8) % 8, std::byte{0});
  }
  template <typename... Ts>
  static std::vector<std::byte> pack(const Ts&... vs) {
    std::vector<std::byte> v((sizeof vs + ... + 0));
    std::size_t off = 0;
    ((std::memcpy(v.data() + off, &vs, sizeof vs), off += sizeof vs), ...);
    return v;
  }
  // A page whose bytes say which pfn and which copy it is.
  static std::vector<std::byte> page(u64 pfn, u32 copy) {
    std::vector<std::byte> p(kPageSize);
    for (std::size_t i = 0; i < kPageSize; i += 16) {
      std::memcpy(p.data() + i, &pfn, 8);
      u64 c = copy * 1000003ull + i;
      std::memcpy(p.data() + i + 8, &c, 8);
    }
    return p;
  }
  // PAGE_DATA with entries (pfn | type << 60); pages for the types with data.
  void page_data(const std::vector<u64>& entries, u32 copy = 0) {
    auto body = pack(libxc::PageDataHeader{static_cast<u32>(entries.size()), 0});
    for (u64 e : entries) raw_into(body, &e, 8);
    for (u64 e : entries) {
      if (!libxc::page_type_has_data(static_cast<unsigned>(e >> 60))) continue;
      auto p = page(e & libxc::kPfnMask, copy);
      body.insert(body.end(), p.begin(), p.end());
      last_copy[e & libxc::kPfnMask] = p;
    }
    record(libxc::PAGE_DATA, body);
  }
  static void raw_into(std::vector<std::byte>& v, const void* p, std::size_t n) {
    const std::size_t at = v.size();
    v.resize(at + n);
    std::memcpy(v.data() + at, p, n);
  }
  void end() { record(libxc::END, {}); }

  std::vector<std::byte> out;
  std::map<u64, std::vector<std::byte>> last_copy;
};

std::vector<std::byte> hvm_context(u32 vcpus) {
  std::vector<std::byte> b;
  auto entry = [&](std::uint16_t code, std::uint16_t inst, u32 len) {
    hvm::SaveDescriptor d{code, inst, len};
    StreamBuilder::raw_into(b, &d, sizeof d);
    b.resize(b.size() + len, std::byte{0x11});
  };
  entry(1, 0, 24);
  for (u32 v = 0; v < vcpus; ++v) {
    entry(2, static_cast<std::uint16_t>(v), 100);
    entry(5, static_cast<std::uint16_t>(v), 40);
  }
  entry(16, 1, 64);  // CPU_XSAVE for vcpu 1 only
  entry(4, 0, 24);   // IOAPIC
  entry(0, 0, 0);
  return b;
}

// An HVM stream: pfns 0-9 and 20-24 with bodies, pfn 5 and 21 sent again
// (second copy wins), pfn 30 as XTAB (no body), a checkpoint in between.
StreamBuilder hvm_stream() {
  StreamBuilder s;
  s.record(libxc::STATIC_DATA_END, {});
  std::vector<u64> a;
  for (u64 p = 0; p < 10; ++p) a.push_back(p);
  a.push_back(30 | (u64{libxc::XTAB} << 60));
  s.page_data(a, 0);
  s.page_data({20, 21, 22, 23, 24}, 0);
  s.record(libxc::CHECKPOINT, {});
  s.page_data({5, 21}, 1);
  libxc::X86TscInfo tsc{1, 2400000, 123456789, 7, 0};
  s.record(libxc::X86_TSC_INFO, StreamBuilder::pack(tsc));
  auto params = StreamBuilder::pack(libxc::HvmParamsHeader{3, 0}, libxc::HvmParam{1, 0xfeffe},
                                    libxc::HvmParam{2, 3}, libxc::HvmParam{999, 42});
  s.record(libxc::HVM_PARAMS, params);
  s.record(libxc::HVM_CONTEXT, hvm_context(3));
  s.end();
  return s;
}

TEST(PfnSet, InsertsCountsAndListsRuns) {
  PfnSet s;
  EXPECT_TRUE(s.insert(5));
  EXPECT_FALSE(s.insert(5));
  for (u64 p : {6ull, 7ull, 4095ull, 4096ull, 4097ull, 1ull << 40}) EXPECT_TRUE(s.insert(p));
  EXPECT_EQ(s.size(), 7u);
  EXPECT_EQ(s.min(), 5u);
  EXPECT_EQ(s.max(), 1ull << 40);
  EXPECT_TRUE(s.contains(4096));
  EXPECT_FALSE(s.contains(8));
  std::vector<std::pair<u64, u64>> runs;
  s.for_each_run([&](u64 a, u64 n) { runs.emplace_back(a, n); });
  EXPECT_EQ(runs, (std::vector<std::pair<u64, u64>>{{5, 3}, {4095, 3}, {1ull << 40, 1}}));
}

TEST(PfnSet, DenseRunsCrossWordsAndLeaves) {
  PfnSet s;
  for (u64 p = 100; p < 100000; ++p) s.insert(p);
  std::vector<std::pair<u64, u64>> runs;
  s.for_each_run([&](u64 a, u64 n) { runs.emplace_back(a, n); });
  EXPECT_EQ(runs, (std::vector<std::pair<u64, u64>>{{100, 99900}}));
}

TEST(PfnSet, InsertRangeCountsNewPfnsAndNamesThePresentOnes) {
  PfnSet s;
  s.insert(4090);
  s.insert(4200);
  std::vector<u64> present;
  std::function<void(u64)> f = [&](u64 p) { present.push_back(p); };
  EXPECT_EQ(s.insert_range(4000, 300, &f), 298u);  // across a leaf boundary at 4096
  EXPECT_EQ(present, (std::vector<u64>{4090, 4200}));
  EXPECT_EQ(s.size(), 300u);
  EXPECT_EQ(s.min(), 4000u);
  EXPECT_EQ(s.max(), 4299u);
  EXPECT_EQ(s.insert_range(4000, 300), 0u);
  std::vector<std::pair<u64, u64>> runs;
  s.for_each_run([&](u64 a, u64 n) { runs.emplace_back(a, n); });
  EXPECT_EQ(runs, (std::vector<std::pair<u64, u64>>{{4000, 300}}));
}

TEST(Inspect, ReportsWhatTheStreamHolds) {
  StreamBuilder s = hvm_stream();
  auto src = memory_source(s.out);
  InspectReport rep;
  std::vector<std::string> lines;
  InspectOptions opt;
  opt.record_line = [&](const std::string& l) { lines.push_back(l); };
  inspect(*src, opt, rep);
  ASSERT_FALSE(rep.error) << rep.error.message();
  EXPECT_EQ(rep.stats.container, "libxc");
  EXPECT_EQ(rep.stats.libxc_version, 3u);
  EXPECT_EQ(rep.stats.domain_type, libxc::kX86Hvm);
  EXPECT_EQ(rep.stats.xen_major, 4u);
  EXPECT_EQ(rep.stats.xen_minor, 17u);
  EXPECT_EQ(rep.stats.bytes, s.out.size());
  EXPECT_EQ(rep.stats.libxc[libxc::PAGE_DATA].records, 3u);
  EXPECT_EQ(rep.stats.pages, 17u);
  EXPECT_EQ(rep.entries, 18u);
  EXPECT_EQ(rep.no_data, 1u);
  EXPECT_EQ(rep.stats.pfns_by_type[libxc::XTAB], 1u);
  EXPECT_EQ(rep.pfns.size(), 15u);
  EXPECT_EQ(rep.pfns.min(), 0u);
  EXPECT_EQ(rep.pfns.max(), 24u);
  EXPECT_EQ(rep.hole_count, 1u);
  EXPECT_EQ(rep.hole_pfns, 10u);
  ASSERT_EQ(rep.holes.size(), 1u);
  EXPECT_EQ(rep.holes[0], std::make_pair(u64{10}, u64{19}));
  EXPECT_EQ(rep.resent.size(), 2u);
  EXPECT_TRUE(rep.resent.contains(5));
  EXPECT_TRUE(rep.resent.contains(21));
  EXPECT_EQ(rep.resends, 2u);
  EXPECT_EQ(rep.stats.checkpoints, 1u);
  ASSERT_TRUE(rep.tsc);
  EXPECT_EQ(rep.tsc->mode, 1u);
  EXPECT_EQ(rep.tsc->khz, 2400000u);
  EXPECT_EQ(rep.tsc->nsec, 123456789u);
  EXPECT_EQ(rep.tsc->incarnation, 7u);
  EXPECT_EQ(rep.hvm_params, (std::map<u64, u64>{{1, 0xfeffe}, {2, 3}, {999, 42}}));
  ASSERT_EQ(rep.vcpus.size(), 3u);
  EXPECT_EQ(rep.vcpus[0], (std::set<std::string>{"HVM CPU", "HVM LAPIC"}));
  EXPECT_EQ(rep.vcpus[1], (std::set<std::string>{"HVM CPU", "HVM LAPIC", "HVM CPU_XSAVE"}));
  EXPECT_EQ(rep.hvm_domain_state, (std::set<std::string>{"HEADER", "IOAPIC"}));
  // Two headers and nine records, in stream order, with offsets.
  ASSERT_EQ(lines.size(), 11u);
  EXPECT_NE(lines[0].find("libxc image header"), std::string::npos);
  EXPECT_EQ(lines[2].substr(0, 12), "0x0000000028");  // 24 + 16 bytes of headers
  EXPECT_NE(lines[2].find("STATIC_DATA_END"), std::string::npos);
  EXPECT_NE(lines[3].find("PAGE_DATA"), std::string::npos);
  EXPECT_NE(lines[3].find("(11 pfns, 10 pages)"), std::string::npos);
}

// The report of an HVM stream whose HVM_CONTEXT holds `blob`.
InspectReport inspect_blob(const std::vector<std::byte>& blob) {
  StreamBuilder s;
  s.record(libxc::STATIC_DATA_END, {});
  s.page_data({0, 1});
  s.record(libxc::HVM_CONTEXT, blob);
  s.end();
  auto src = memory_source(s.out);
  InspectReport rep;
  inspect(*src, InspectOptions{}, rep);
  return rep;
}

// A blob entry: descriptor, then `len` bytes (`fill`, or `data`).
void blob_entry(std::vector<std::byte>& b, std::uint16_t code, std::uint16_t inst, u32 len,
                const void* data = nullptr) {
  hvm::SaveDescriptor d{code, inst, len};
  StreamBuilder::raw_into(b, &d, sizeof d);
  const std::size_t at = b.size();
  b.resize(at + len, std::byte{0});
  if (data) std::memcpy(b.data() + at, data, len);
}

TEST(Inspect, DecodesTheHvmSaveBlobByName) {
  std::vector<std::byte> b;
  hvm::SaveHeader h{hvm::kFileMagic, hvm::kFileVersion, 0x1234, 0x306c3, 2400000};
  blob_entry(b, hvm::HEADER, 0, sizeof h, &h);
  for (std::uint16_t v = 0; v < 2; ++v) {
    blob_entry(b, hvm::CPU, v, sizeof(hvm::HwCpu));
    blob_entry(b, hvm::LAPIC, v, sizeof(hvm::HwLapic));
  }
  blob_entry(b, hvm::CPU_MSRS, 1, 8 + 16);
  blob_entry(b, hvm::PIC, 0, 8);
  blob_entry(b, hvm::PIC, 1, 8);
  blob_entry(b, hvm::END, 0, 0);
  InspectReport rep = inspect_blob(b);
  ASSERT_FALSE(rep.error) << rep.error.message();
  ASSERT_TRUE(rep.hvm_context);
  EXPECT_TRUE(rep.hvm_context->header);
  EXPECT_EQ(rep.hvm_context->gtsc_khz, 2400000u);
  EXPECT_EQ(rep.hvm_context->cpuid, 0x306c3u);
  EXPECT_EQ(rep.hvm_context->entries, 9u);
  EXPECT_EQ(rep.hvm_context->warnings, std::vector<std::string>{});
  EXPECT_EQ(rep.vcpus[0], (std::set<std::string>{"HVM CPU", "HVM LAPIC"}));
  EXPECT_EQ(rep.vcpus[1], (std::set<std::string>{"HVM CPU", "HVM LAPIC", "HVM CPU_MSR"}));
  EXPECT_EQ(rep.hvm_domain_state, (std::set<std::string>{"HEADER", "PIC"}));
  const std::string text = inspect_text("x", rep, false);
  EXPECT_NE(text.find("hvm context  9 entries, HEADER version 1, cpuid 0x000306c3, 2400000 kHz\n"),
            std::string::npos)
      << text;
}

TEST(Inspect, WarnsWhereTheHypervisorWouldRefuseTheBlob) {
  std::vector<std::byte> b;
  blob_entry(b, hvm::CPU, 0, sizeof(hvm::HwCpu));  // no HEADER first
  blob_entry(b, 77, 0, 16);                        // unknown typecode, not named
  blob_entry(b, hvm::LAPIC, 200, 24);              // a vcpu Xen cannot have
  blob_entry(b, hvm::PIT, 0, 64);                  // longer than its 56
  InspectReport rep = inspect_blob(b);             // and no END
  ASSERT_TRUE(rep.hvm_context);
  EXPECT_FALSE(rep.hvm_context->header);
  EXPECT_EQ(rep.hvm_context->warnings,
            (std::vector<std::string>{
                "no HEADER first", "unknown typecode 77 at blob offset 1040",
                "LAPIC for vcpu 200 at blob offset 1064: Xen's HVM guests have at most 128",
                "PIT instance 0 at blob offset 1096 is 64 bytes, longer than its 56", "no END entry"}));
  EXPECT_EQ(rep.hvm_domain_state, (std::set<std::string>{"PIT"}));  // never TYPE_77
  const std::string text = inspect_text("x", rep, false);
  EXPECT_NE(text.find("  warning: no HEADER first\n"), std::string::npos) << text;

  std::vector<std::byte> past;
  blob_entry(past, hvm::HEADER, 0, 24);
  hvm::SaveDescriptor d{hvm::HPET, 0, 1048};  // more than the record holds
  StreamBuilder::raw_into(past, &d, sizeof d);
  rep = inspect_blob(past);
  ASSERT_TRUE(rep.hvm_context);
  ASSERT_EQ(rep.hvm_context->warnings.size(), 3u);
  EXPECT_EQ(rep.hvm_context->warnings[0], "HEADER magic 0x00000000 is not Xen's 0x54381286");
  EXPECT_EQ(rep.hvm_context->warnings[2],
            "HPET at blob offset 32 is 1048 bytes, past the record's end (0 left)");
}

TEST(Inspect, DescribesTheValidPrefixOfATruncatedStream) {
  StreamBuilder s = hvm_stream();
  std::vector<std::byte> cut(s.out.begin(), s.out.begin() + 48 + 8 + 8 + 8 * 11 + 4096);
  auto src = memory_source(cut);
  InspectReport rep;
  inspect(*src, {}, rep);
  EXPECT_EQ(rep.error.code, Errc::truncated);
  EXPECT_EQ(rep.error.record, 1u);
  EXPECT_EQ(rep.stats.libxc[libxc::STATIC_DATA_END].records, 1u);
}

TEST(Inspect, PvVcpusAndWidthComeFromTheirRecords) {
  StreamBuilder s(libxc::kX86Pv);
  s.record(libxc::X86_PV_INFO, StreamBuilder::pack(libxc::X86PvInfo{4, 3, 0, 0}));
  s.record(libxc::X86_PV_P2M_FRAMES, StreamBuilder::pack(libxc::X86PvP2mFrames{0, 1023}, u64{77}));
  s.record(libxc::STATIC_DATA_END, {});
  s.page_data({0, 1, 2 | (u64{libxc::L1TAB} << 60)});
  for (u32 v : {0u, 2u}) {
    s.record(libxc::X86_PV_VCPU_BASIC, StreamBuilder::pack(libxc::X86PvVcpuHeader{v, 0}, u64{1}));
    s.record(libxc::X86_PV_VCPU_MSRS, StreamBuilder::pack(libxc::X86PvVcpuHeader{v, 0}, u64{1}, u64{2}));
  }
  s.record(libxc::SHARED_INFO, std::vector<std::byte>(4096));
  s.end();
  auto src = memory_source(s.out);
  InspectReport rep;
  inspect(*src, {}, rep);
  ASSERT_FALSE(rep.error) << rep.error.message();
  EXPECT_EQ(rep.pv_width_bits, 32u);
  EXPECT_EQ(rep.pt_levels, 3u);
  ASSERT_TRUE(rep.p2m);
  EXPECT_EQ(rep.p2m->second, 1023u);
  EXPECT_TRUE(rep.shared_info);
  EXPECT_EQ(rep.stats.pfns_by_type[libxc::L1TAB], 1u);
  ASSERT_EQ(rep.vcpus.size(), 2u);
  EXPECT_EQ(rep.vcpus[2], (std::set<std::string>{"X86_PV_VCPU_BASIC", "X86_PV_VCPU_MSRS"}));
  const std::string text = inspect_text("img", rep, false);
  EXPECT_NE(text.find("x86 PV, 32-bit, 3-level page tables, saved by Xen 4.17"), std::string::npos) << text;
}

// Extracts to a file and checks every page, and that never-sent pfns are
// holes (SEEK_DATA / SEEK_HOLE).
TEST(Extract, RawFileHasEachPfnsLastCopyAndHoles) {
  StreamBuilder s = hvm_stream();
  for (bool pipe : {false, true}) {
    SCOPED_TRACE(pipe ? "pipe" : "file");
    int in = -1;
    std::unique_ptr<test::Feeder> feeder;
    if (pipe) {
      int p[2];
      ASSERT_EQ(::pipe(p), 0);
      feeder = std::make_unique<test::Feeder>(p[1], s.out, 5000);
      in = p[0];
    } else {
      in = test::memfd_with(s.out);
    }
    OpenResult src = source_from_fd(in, true);
    ASSERT_TRUE(src.source);
    char path[] = "/tmp/xsr-extract-XXXXXX";
    int out = ::mkstemp(path);
    ASSERT_GE(out, 0);
    ExtractResult r = extract(*src.source, out, {});
    ASSERT_FALSE(r.error) << r.error.message();
    EXPECT_EQ(r.pfns, 15u);
    EXPECT_EQ(r.bodies, 17u);
    struct stat st;
    ASSERT_EQ(::fstat(out, &st), 0);
    EXPECT_EQ(st.st_size, 25 * 4096);
    for (const auto& [pfn, page] : s.last_copy) {
      std::vector<std::byte> got(kPageSize);
      ASSERT_EQ(::pread(out, got.data(), kPageSize, static_cast<off_t>(pfn * kPageSize)), 4096);
      EXPECT_EQ(got, page) << "pfn " << pfn;
    }
    EXPECT_EQ(::lseek(out, 10 * 4096, SEEK_HOLE), 10 * 4096);
    EXPECT_EQ(::lseek(out, 10 * 4096, SEEK_DATA), 20 * 4096);
    ::close(out);
    ::unlink(path);
  }
}

TEST(Extract, PfnRangeKeepsOnlyThosePages) {
  StreamBuilder s = hvm_stream();
  auto src = memory_source(s.out);
  char path[] = "/tmp/xsr-extract-XXXXXX";
  int out = ::mkstemp(path);
  ExtractOptions opt;
  opt.first_pfn = 4;
  opt.last_pfn = 21;
  ExtractResult r = extract(*src, out, opt);
  ASSERT_FALSE(r.error) << r.error.message();
  EXPECT_EQ(r.pfns, 8u);  // 4-9, 20, 21
  EXPECT_EQ(::lseek(out, 0, SEEK_DATA), 4 * 4096);
  struct stat st;
  ::fstat(out, &st);
  EXPECT_EQ(st.st_size, 22 * 4096);
  ::close(out);
  ::unlink(path);
}

TEST(Extract, ElfCoreHasOneLoadSegmentPerRun) {
  StreamBuilder s = hvm_stream();
  auto src = memory_source(s.out);
  char path[] = "/tmp/xsr-extract-XXXXXX";
  int out = ::mkstemp(path);
  ExtractOptions opt;
  opt.elf = true;
  ExtractResult r = extract(*src, out, opt);
  ASSERT_FALSE(r.error) << r.error.message();
  Elf64_Ehdr eh;
  ASSERT_EQ(::pread(out, &eh, sizeof eh, 0), static_cast<ssize_t>(sizeof eh));
  EXPECT_EQ(std::memcmp(eh.e_ident, ELFMAG, SELFMAG), 0);
  EXPECT_EQ(eh.e_type, ET_CORE);
  EXPECT_EQ(eh.e_machine, EM_X86_64);
  ASSERT_EQ(eh.e_phnum, 3);  // the PT_NOTE first, then the PT_LOADs
  Elf64_Phdr phs[3];
  ASSERT_EQ(::pread(out, phs, sizeof phs, static_cast<off_t>(eh.e_phoff)), static_cast<ssize_t>(sizeof phs));
  EXPECT_EQ(phs[0].p_type, PT_NOTE);
  EXPECT_EQ(phs[0].p_offset, eh.e_phoff + sizeof phs);
  EXPECT_EQ(phs[0].p_align, 4u);
  const Elf64_Phdr* ph = phs + 1;
  EXPECT_EQ(ph[0].p_type, PT_LOAD);
  EXPECT_EQ(ph[0].p_paddr, 0u);
  EXPECT_EQ(ph[0].p_filesz, 10 * 4096u);
  EXPECT_EQ(ph[1].p_paddr, 20 * 4096u);
  EXPECT_EQ(ph[1].p_filesz, 5 * 4096u);
  EXPECT_EQ(r.segments, 2u);
  struct stat st;
  ASSERT_EQ(::fstat(out, &st), 0);
  EXPECT_EQ(static_cast<u64>(st.st_size), phs[0].p_offset + phs[0].p_filesz);
  std::vector<std::byte> got(kPageSize);
  ASSERT_EQ(::pread(out, got.data(), kPageSize, static_cast<off_t>(ph[1].p_offset + 4096)), 4096);
  EXPECT_EQ(got, s.last_copy[21]);
  ::close(out);
  ::unlink(path);
}

TEST(Extract, ElfWithMoreThan65534SegmentsUsesPnXnum) {
  PfnSet pfns;
  for (u64 p = 0; p < 140000; p += 2) pfns.insert(p);  // 70,000 one-page runs
  char path[] = "/tmp/xsr-extract-XXXXXX";
  int out = ::mkstemp(path);
  ASSERT_GE(out, 0);
  ExtractResult r;
  {
    Sink sink(out);
    ASSERT_FALSE(write_elf_headers(sink, pfns, 4096, r));
  }
  EXPECT_EQ(r.segments, 70000u);
  Elf64_Ehdr eh;
  ASSERT_EQ(::pread(out, &eh, sizeof eh, 0), static_cast<ssize_t>(sizeof eh));
  EXPECT_EQ(eh.e_phnum, PN_XNUM);
  ASSERT_NE(eh.e_shoff, 0u);
  Elf64_Shdr sh;
  ASSERT_EQ(::pread(out, &sh, sizeof sh, static_cast<off_t>(eh.e_shoff)), static_cast<ssize_t>(sizeof sh));
  EXPECT_EQ(sh.sh_info, 70000u);
  Elf64_Phdr last;
  ASSERT_EQ(::pread(out, &last, sizeof last, static_cast<off_t>(eh.e_phoff + 69999 * sizeof(Elf64_Phdr))),
            static_cast<ssize_t>(sizeof last));
  EXPECT_EQ(last.p_paddr, 139998u * 4096);
  EXPECT_EQ(last.p_offset, 4096 + 139998u * 4096);
  ::close(out);
  // readelf reads the real count from section header 0.
  const std::string cmd =
      std::string("readelf -h ") + path + " | grep -q 'Number of program headers: *65535 (70000)'";
  EXPECT_EQ(std::system(cmd.c_str()), 0);
  ::unlink(path);
}

TEST(Extract, ElfNotesKeepThePnXnumPath) {
  PfnSet pfns;
  for (u64 p = 0; p < 131070; p += 2) pfns.insert(p);  // 65,535 runs: with the PT_NOTE, 65,536 headers
  const std::vector<std::byte> notes = core_notes(VcpuStates{}, CoreDomain{2, 4, 17, 65535});
  char path[] = "/tmp/xsr-extract-XXXXXX";
  int out = ::mkstemp(path);
  ASSERT_GE(out, 0);
  ExtractResult r;
  {
    Sink sink(out);
    ASSERT_FALSE(write_elf_headers(sink, pfns, 4096, r, notes));
  }
  EXPECT_EQ(r.segments, 65535u);
  Elf64_Ehdr eh;
  ASSERT_EQ(::pread(out, &eh, sizeof eh, 0), static_cast<ssize_t>(sizeof eh));
  EXPECT_EQ(eh.e_phnum, PN_XNUM);
  Elf64_Shdr sh;
  ASSERT_EQ(::pread(out, &sh, sizeof sh, static_cast<off_t>(eh.e_shoff)), static_cast<ssize_t>(sizeof sh));
  EXPECT_EQ(sh.sh_info, 65536u);
  Elf64_Phdr note;
  ASSERT_EQ(::pread(out, &note, sizeof note, static_cast<off_t>(eh.e_phoff)),
            static_cast<ssize_t>(sizeof note));
  EXPECT_EQ(note.p_type, PT_NOTE);
  EXPECT_EQ(note.p_offset, eh.e_phoff + 65536 * sizeof(Elf64_Phdr));
  EXPECT_EQ(eh.e_shoff % 8, 0u);
  EXPECT_GE(eh.e_shoff, note.p_offset + note.p_filesz);
  ::close(out);
  const std::string cmd = std::string("readelf -h -n -W ") + path +
                          " 2>&1 | grep -c -i -e warning -e 'XSR .*0x58535202' | grep -qx 1";
  EXPECT_EQ(std::system(cmd.c_str()), 0);  // the domain note, no warning
  ::unlink(path);
}

TEST(Extract, OnePageAndItsHexDump) {
  StreamBuilder s = hvm_stream();
  std::array<std::byte, 4096> page{};
  ExtractResult r;
  auto src = memory_source(s.out);
  ASSERT_TRUE(extract_page(*src, 21, page, r)) << r.error.message();
  EXPECT_EQ(std::vector<std::byte>(page.begin(), page.end()), s.last_copy[21]);
  auto src2 = memory_source(s.out);
  EXPECT_FALSE(extract_page(*src2, 15, page, r));
  EXPECT_FALSE(r.error);
  std::array<std::byte, 4096> zero{};
  EXPECT_EQ(hexdump_page(1, zero),
            "00001000  00 00 00 00 00 00 00 00  00 00 00 00 00 00 00 00  |................|\n*\n00002000\n");
}

TEST(Extract, RefusesAnOutputThatCannotSeek) {
  StreamBuilder s = hvm_stream();
  auto src = memory_source(s.out);
  int p[2];
  ASSERT_EQ(::pipe(p), 0);
  ExtractResult r = extract(*src, p[1], {});
  EXPECT_EQ(r.error.code, Errc::unsupported);
  ::close(p[0]);
  ::close(p[1]);
}

TEST(ImageInput, ReadsALegacyImageAsItsConversion) {
  GenOptions g;
  g.legacy = true;
  g.size = 1 << 20;
  auto legacy = test::gen_bytes(g);
  auto raw = memory_source(legacy);
  ImageInput img;
  const Error why = img.open(*raw);
  ASSERT_FALSE(why) << why.detail;
  EXPECT_TRUE(img.legacy());
  InspectReport rep;
  inspect(img.stream(), {}, rep);
  Error e = img.finish(rep.error);
  ASSERT_FALSE(e) << e.message();
  EXPECT_TRUE(rep.stats.legacy_converted);
  EXPECT_GT(rep.stats.pages, 0u);
}

TEST(ImageInput, NamesABrokenLegacyImagesOwnError) {
  GenOptions g;
  g.legacy = true;
  g.size = 1 << 20;
  auto legacy = test::gen_bytes(g);
  legacy.resize(legacy.size() / 2);
  auto raw = memory_source(legacy);
  ImageInput img;
  const Error why = img.open(*raw);
  ASSERT_FALSE(why) << why.detail;
  InspectReport rep;
  inspect(img.stream(), {}, rep);
  Error e = img.finish(rep.error);
  EXPECT_EQ(e.code, Errc::truncated);
  EXPECT_NE(e.detail.find("legacy image"), std::string::npos) << e.message();
}

}  // namespace
}  // namespace xsr
