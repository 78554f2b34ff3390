#include "xsr/gen.h"
#include "xsr/units.h"

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <functional>
#include <vector>

#include "xsr/aligned.h"
#include "xsr/format.h"
#include "xsr/legacy.h"
#include "xsr/reader.h"
#include "xsr/sink.h"
#include "xsr/sys.h"

namespace xsr {
namespace {

using u64 = std::uint64_t;
using u32 = std::uint32_t;

// splitmix64: a tiny, well-mixed deterministic generator.
struct Rng {
  u64 s;
  u64 next() {
    u64 z = (s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
};

// What both generators share: the Sink the stream goes through and the
// counts gen reports (with the bytes written, to the progress hook).
struct Emit {
  Emit(int fd, const GenOptions& o) : out(fd) {
    out.set_rate(o.rate);
    if (o.progress) out.set_progress([this, &o](u64 written) { o.progress(written, records, pages); });
  }

  // A record: header, body, zero padding.
  void record(u32 type, const void* body, std::size_t len) {
    RecordHeader h{type, static_cast<u32>(len)};
    out.put(h);
    if (len) out.write(body, len);
    out.zeros(static_cast<std::size_t>(padded(len) - len));
    ++records;
  }
  void record(u32 type, const std::vector<std::byte>& body) { record(type, body.data(), body.size()); }

  GenResult result(u64 pfn_range) {
    out.flush();
    GenResult r;
    r.bytes = out.written();
    r.records = records;
    r.pages = pages;
    r.pfn_range = pfn_range;
    r.error = out.error();
    return r;
  }

  Sink out;
  u64 records = 0;
  u64 pages = 0;  // page bodies put out
};

std::vector<std::byte> blob(std::size_t n, Rng& rng) {
  std::vector<std::byte> v(n);
  for (std::size_t i = 0; i < n; i += 8) {
    u64 x = rng.next();
    std::memcpy(v.data() + i, &x, std::min<std::size_t>(8, n - i));
  }
  return v;
}

template <typename... Ts>
std::vector<std::byte> pack(const Ts&... vs) {
  // Sized first, then copied: gcc 12 misreads insert() into an empty vector
  // as an overflow (-Wstringop-overflow) once enough of it is inlined.
  std::vector<std::byte> v((sizeof vs + ... + 0));
  std::size_t off = 0;
  ((std::memcpy(v.data() + off, &vs, sizeof vs), off += sizeof vs), ...);
  return v;
}

void append(std::vector<std::byte>& v, const void* p, std::size_t n) {
  auto* b = static_cast<const std::byte*>(p);
  v.insert(v.end(), b, b + n);
}

// HVM guests have no RAM behind the VGA hole.
bool hvm_hole(u64 pfn) { return pfn >= 0xa0 && pfn < 0xc0; }

class Generator {
 public:
  Generator(int fd, const GenOptions& o) : w_(fd, o), o_(o), rng_{o.seed} {
    const u64 body = std::max<u64>(o.size, 16 << 10);
    pfn_range_ = std::max<u64>(body / (kPageSize + 8), 16);
    batch_ = std::clamp<u32>(o.batch, 1, 1024);
    area_ = alloc_aligned(std::size_t{batch_} * kPageSize);
    for (u32 i = 0; i < batch_; ++i) gen_page(0, o.seed, area_.get() + std::size_t{i} * kPageSize);
  }

  GenResult run() {
    if (o_.container == GenOptions::Container::xl) xl_header();
    if (o_.container != GenOptions::Container::libxc) {
      libxl::Header h{bswap64(libxl::kIdent), bswap32(libxl::kVersion), 0};
      w_.out.put(h);
      w_.record(libxl::LIBXC_CONTEXT, nullptr, 0);
    }
    libxc_headers();
    static_data();
    // The first round sends every page; later rounds (checkpoints) resend
    // a seeded subset, as Remus sends dirty pages.
    memory(0, pfn_range_, 1);
    for (u32 c = 0; c < o_.checkpoints; ++c) {
      tail();
      w_.record(libxc::CHECKPOINT, nullptr, 0);
      if (o_.container != GenOptions::Container::libxc) {
        emulator_records();
        w_.record(libxl::CHECKPOINT_END, nullptr, 0);
      }
      memory(rng_.next() % pfn_range_, std::max<u64>(pfn_range_ / 16, 1), 3);
    }
    tail();
    w_.record(libxc::END, nullptr, 0);
    if (o_.container != GenOptions::Container::libxc) {
      emulator_records();
      w_.record(libxl::END, nullptr, 0);
    }
    return w_.result(pfn_range_);
  }

 private:
  void xl_header() {
    std::string cfg = "{\"c_info\":{\"type\":\"" + std::string(o_.hvm ? "hvm" : "pv") +
                      "\",\"name\":\"xsr-gen-" + std::to_string(o_.seed) + "\"}}";
    cfg.push_back('\0');
    xl::Header h{};
    std::memcpy(h.magic, xl::kMagic, xl::kMagicLen);
    h.byteorder = xl::kByteOrder;
    h.mandatory_flags = xl::kFlagJson | xl::kFlagStreamV2;
    h.optional_data_len = static_cast<u32>(cfg.size());
    w_.out.put(h);
    w_.out.write(cfg.data(), cfg.size());
  }

  void libxc_headers() {
    libxc::ImageHeader ih{bswap64(libxc::kMarker), bswap32(libxc::kIdent), bswap32(o_.version), 0, 0, 0};
    w_.out.put(ih);
    libxc::DomainHeader dh{o_.hvm ? u32{libxc::kX86Hvm} : u32{libxc::kX86Pv}, 12, 0, 4, 17};
    w_.out.put(dh);
  }

  void static_data() {
    if (!o_.hvm) {
      libxc::X86PvInfo pi{static_cast<std::uint8_t>(o_.pv_width),
                          o_.pv_width == 8 ? std::uint8_t{4} : std::uint8_t{3}, 0, 0};
      w_.record(libxc::X86_PV_INFO, &pi, sizeof pi);
    }
    if (o_.version >= 3) {
      w_.record(libxc::X86_CPUID_POLICY, blob(4 * libxc::kCpuidLeafSize, rng_));
      w_.record(libxc::X86_MSR_POLICY, blob(2 * libxc::kMsrEntrySize, rng_));
      w_.record(libxc::STATIC_DATA_END, nullptr, 0);
    }
    if (!o_.hvm) {
      // The P2M frame list, as Xen's save writes it for pfns 0..range-1.
      const u64 fpp = kPageSize / o_.pv_width;
      const u64 end = pfn_range_ - 1;
      std::vector<std::byte> body = pack(libxc::X86PvP2mFrames{0, static_cast<u32>(end)});
      for (u64 f = 0; f <= end / fpp; ++f) {
        u64 mfn = 0x100000 + f;
        append(body, &mfn, 8);
      }
      w_.record(libxc::X86_PV_P2M_FRAMES, body);
    }
  }

  // PV page types: mostly ordinary pages, a sprinkling of page tables.
  u64 pv_type(u64 pfn) const {
    switch (pfn % 97) {
      case 1: return libxc::L1TAB;
      case 2: return libxc::L2TAB;
      case 3: return libxc::L1TAB_PIN;
      case 4: return o_.pv_width == 8 ? libxc::L4TAB_PIN : libxc::L3TAB_PIN;
      default: return libxc::NOTAB;
    }
  }

  // Sends pfns [first, first + count) (wrapping), in batches; within a batch
  // the order is a seeded shuffle, as a live save's dirty-bitmap walk is
  // not sequential either.
  void memory(u64 first, u64 count, u32 round) {
    std::vector<u64> entries(batch_);
    std::vector<u32> order(batch_);
    // A failed write (the reader left, the disk is full) ends the stream.
    for (u64 done = 0; done < count && !w_.out.error();) {
      const u32 n = static_cast<u32>(std::min<u64>(batch_, count - done));
      for (u32 i = 0; i < n; ++i) order[i] = i;
      if (o_.shuffle)
        for (u32 i = n; i > 1; --i) std::swap(order[i - 1], order[rng_.next() % i]);
      u32 data_pages = 0;
      for (u32 i = 0; i < n; ++i) {
        const u64 pfn = (first + done + order[i]) % pfn_range_;
        u64 type = libxc::NOTAB;
        if (o_.hvm && hvm_hole(pfn)) type = libxc::XTAB;
        else if (!o_.hvm) type = pv_type(pfn);
        entries[i] = PfnEntry::make(pfn, type).raw;
        if (libxc::page_type_has_data(static_cast<unsigned>(type))) {
          std::byte* page = area_.get() + std::size_t{data_pages} * kPageSize;
          if (o_.mixed_pages) gen_mixed_page(pfn, o_.seed, round, page);
          const u64 stamp[3] = {pfn, o_.seed, round};
          std::memcpy(page, stamp, sizeof stamp);
          ++data_pages;
        }
      }
      const u64 len = 8 + 8 * u64{n} + u64{data_pages} * kPageSize;
      RecordHeader h{libxc::PAGE_DATA, static_cast<u32>(len)};
      w_.out.put(h);
      w_.out.put(libxc::PageDataHeader{n, 0});
      w_.out.write(entries.data(), 8 * std::size_t{n});
      ++w_.records;
      w_.pages += data_pages;
      w_.out.write_area(area_.get(), std::size_t{data_pages} * kPageSize);
      done += n;
    }
  }

  void tail() {
    libxc::X86TscInfo tsc{0, 2000000, 1000000000ull + rng_.next() % 1000, 1, 0};
    w_.record(libxc::X86_TSC_INFO, &tsc, sizeof tsc);
    if (o_.hvm) {
      std::vector<std::byte> params = pack(libxc::HvmParamsHeader{4, 0});
      const libxc::HvmParam p[4] = {{1, pfn_range_ - 1},  // STORE_PFN
                                    {5, pfn_range_ - 2},  // IOREQ_PFN
                                    {6, pfn_range_ - 3},  // BUFIOREQ_PFN
                                    {12, 0xfeffc000}};    // IDENT_PT
      append(params, p, sizeof p);
      w_.record(libxc::HVM_PARAMS, params);
      w_.record(libxc::HVM_CONTEXT, hvm_context());
      return;
    }
    w_.record(libxc::SHARED_INFO, blob(kPageSize, rng_));
    const std::size_t basic = o_.pv_width == 8 ? 0x1430 : 0xaf0;
    for (u32 v = 0; v < std::max<u32>(o_.vcpus, 1); ++v) {
      vcpu(libxc::X86_PV_VCPU_BASIC, v, basic);
      vcpu(libxc::X86_PV_VCPU_EXTENDED, v, 128);
      vcpu(libxc::X86_PV_VCPU_XSAVE, v, 16 + 832);
      vcpu(libxc::X86_PV_VCPU_MSRS, v, 2 * 16);
    }
  }

  // Xen's HVM save blob shape (public/hvm/save.h): a HEADER entry, per-vCPU
  // CPU, LAPIC, LAPIC_REGS and MTRR entries, the domain's devices, END.
  // Contents are random; the descriptors are what readers look at.
  std::vector<std::byte> hvm_context() {
    std::vector<std::byte> out;
    auto entry = [&](std::uint16_t code, std::uint16_t instance, std::uint32_t len) {
      append(out, &code, 2);
      append(out, &instance, 2);
      append(out, &len, 4);
      auto b = blob(len, rng_);
      out.insert(out.end(), b.begin(), b.end());
    };
    entry(1, 0, 24);  // HEADER
    for (u32 v = 0; v < std::max<u32>(o_.vcpus, 1); ++v) {
      const auto id = static_cast<std::uint16_t>(v);
      entry(2, id, 1024);  // CPU
      entry(5, id, 40);    // LAPIC
      entry(6, id, 1024);  // LAPIC_REGS
      entry(14, id, 784);  // MTRR
    }
    entry(3, 0, 8);     // PIC (master)
    entry(3, 1, 8);     // PIC (slave)
    entry(4, 0, 392);   // IOAPIC
    entry(10, 0, 72);   // PIT
    entry(11, 0, 16);   // RTC
    entry(12, 0, 360);  // HPET
    entry(13, 0, 8);    // PMTIMER
    entry(0, 0, 0);     // END
    return out;
  }

  void vcpu(u32 type, u32 id, std::size_t len) {
    std::vector<std::byte> body = pack(libxc::X86PvVcpuHeader{id, 0});
    auto ctx = blob(len, rng_);
    body.insert(body.end(), ctx.begin(), ctx.end());
    w_.record(type, body);
  }

  void emulator_records() {
    if (!o_.hvm) return;
    std::vector<std::byte> xs = pack(libxl::EmulatorHeader{libxl::kEmuQemuUpstream, 0});
    static const char kPairs[] =
        "physmap/f0000000/start_addr\0f0000000\0physmap/f0000000/size\0"
        "800000\0physmap/f0000000/name\0vga";
    append(xs, kPairs, sizeof kPairs);  // sizeof keeps the final NUL
    w_.record(libxl::EMULATOR_XENSTORE_DATA, xs);
    std::vector<std::byte> ctx = pack(libxl::EmulatorHeader{libxl::kEmuQemuUpstream, 0});
    auto qemu = blob(4096 + rng_.next() % 4096, rng_);
    ctx.insert(ctx.end(), qemu.begin(), qemu.end());
    w_.record(libxl::EMULATOR_CONTEXT, ctx);
  }

  Emit w_;
  const GenOptions& o_;
  Rng rng_;
  u64 pfn_range_;
  u32 batch_;
  AlignedBuf area_;
};

// A legacy stream (REFERENCE.md "Legacy input"), as Xen 4.5's save wrote it.
class LegacyGenerator {
 public:
  LegacyGenerator(int fd, const GenOptions& o) : w_(fd, o), o_(o), rng_{o.seed} {
    const u64 body = std::max<u64>(o.size, 16 << 10);
    pfn_range_ = std::max<u64>(body / (kPageSize + 8), 16);
    batch_ = std::clamp<u32>(o.batch, 1, 1024);
    ul_ = o.toolstack_width / 8;
    area_ = alloc_aligned(std::size_t{batch_} * kPageSize);
    for (u32 i = 0; i < batch_; ++i) gen_page(0, o.seed, area_.get() + std::size_t{i} * kPageSize);
  }

  GenResult run() {
    if (o_.container == GenOptions::Container::xl) xl_header();
    ulong(pfn_range_);
    if (o_.hvm) hvm_head();
    else pv_head();
    w_.out.put(std::int32_t{-7});
    w_.out.put(legacy_tsc());
    memory();
    w_.out.put(std::int32_t{-9});  // last checkpoint
    w_.out.put(std::int32_t{0});
    if (o_.hvm) hvm_tail();
    else pv_tail();
    return w_.result(pfn_range_);
  }

 private:
  static constexpr u32 kXsaveLen = 16 + 832;
  u32 vcpu_ctx() const { return o_.pv_width == 8 ? 0x1430 : 0xaf0; }
  u32 vcpus() const { return std::clamp<u32>(o_.vcpus, 1, 64); }

  void xl_header() {
    std::string cfg = "{\"c_info\":{\"name\":\"xsr-legacy-" + std::to_string(o_.seed) + "\"}}";
    cfg.push_back('\0');
    xl::Header h{};
    std::memcpy(h.magic, xl::kMagic, xl::kMagicLen);
    h.byteorder = xl::kByteOrder;
    h.mandatory_flags = xl::kFlagJson;  // no v2 flag: a legacy stream follows
    h.optional_data_len = static_cast<u32>(cfg.size());
    w_.out.put(h);
    w_.out.write(cfg.data(), cfg.size());
  }

  // Extended info, the p2m frame list and the vcpu info chunk.
  void pv_head() {
    ulong(~u64{0});
    w_.out.put(u32{8 + vcpu_ctx() + 8 + 8 + 4});
    w_.out.write("vcpu", 4);
    w_.out.put(vcpu_ctx());
    w_.out.zeros(vcpu_ctx());
    w_.out.write("extv", 4);
    w_.out.put(u32{0});
    w_.out.write("xcnt", 4);
    w_.out.put(u32{4});
    w_.out.put(kXsaveLen);
    const u64 fpp = kPageSize / o_.pv_width;
    for (u64 f = 0; f <= (pfn_range_ - 1) / fpp; ++f) ulong(0x200000 + f);
    // vcpu info: vcpus 0..n-1 online.
    w_.out.put(std::int32_t{-2});
    const u32 n = vcpus();
    w_.out.put(std::int32_t(n - 1));
    w_.out.put(n == 64 ? ~u64{0} : (u64{1} << n) - 1);
  }

  // HVM param chunks and libxl's physmap toolstack data (one VGA entry).
  void hvm_head() {
    for (auto [m, v] : {std::pair<std::int32_t, u64>{-3, 0xfeffc000},
                        {-4, 0xfeffd000},
                        {-8, pfn_range_ - 4},
                        {-10, 0},
                        {-11, 1},
                        {-19, pfn_range_ - 8},
                        {-20, 2}}) {
      w_.out.put(m);
      w_.out.put(u32{0});
      w_.out.put(v);
    }
    const char name[] = "vga";
    const u32 ver = 1, count = 1, namelen = sizeof name;
    const u64 phys = 0xf0000000, start = 0xf0000000, size = 0x800000;
    std::vector<std::byte> ts = pack(ver, count, phys, start, size, namelen);
    append(ts, name, sizeof name);
    if (ul_ == 8) ts.insert(ts.end(), 4, std::byte{0});  // the 64-bit padding leak
    w_.out.put(std::int32_t{-18});
    w_.out.put(static_cast<u32>(ts.size()));
    w_.out.write(ts.data(), ts.size());
  }

  // Unmapped pfns, every vcpu's contexts, the shared info page.
  void pv_tail() {
    w_.out.put(u32{2});  // unmapped pfns, discarded by the converter
    ulong(pfn_range_ + 1);
    ulong(pfn_range_ + 2);
    for (u32 v = 0; v < vcpus(); ++v) {
      auto basic = blob(vcpu_ctx(), rng_);
      w_.out.write(basic.data(), basic.size());
      auto ext = blob(128, rng_);
      w_.out.write(ext.data(), ext.size());
      w_.out.put(u64{7});
      w_.out.put(u64{kXsaveLen - 16});
      auto xs = blob(kXsaveLen - 16, rng_);
      w_.out.write(xs.data(), xs.size());
    }
    auto shinfo = blob(kPageSize, rng_);
    w_.out.write(shinfo.data(), shinfo.size());
  }

  // Magic pfns, the HVM context and the qemu record.
  void hvm_tail() {
    w_.out.put(pfn_range_ - 1);
    w_.out.put(pfn_range_ - 2);
    w_.out.put(pfn_range_ - 3);
    auto ctx = blob(2000 + rng_.next() % 2000, rng_);
    w_.out.put(static_cast<u32>(ctx.size()));
    w_.out.write(ctx.data(), ctx.size());
    w_.out.write(legacy::kQemuSignature, legacy::kQemuSignatureLen);
    auto q = blob(8192 + rng_.next() % 4096, rng_);
    w_.out.put(static_cast<u32>(q.size()));
    w_.out.write(q.data(), q.size());
  }

  void ulong(u64 v) {
    if (ul_ == 4) w_.out.put(static_cast<u32>(v));
    else w_.out.put(v);
  }
  legacy::TscChunk legacy_tsc() { return {0, 1000000000ull + rng_.next() % 1000, 2000000, 1}; }

  // Batches of up to `batch` entries; HVM's VGA hole goes as dropped
  // (0xf0000000) entries, as xc_domain_save left them.
  void memory() {
    std::vector<std::byte> entries(std::size_t{batch_} * ul_);
    for (u64 first = 0; first < pfn_range_ && !w_.out.error();) {
      const u32 n = static_cast<u32>(std::min<u64>(batch_, pfn_range_ - first));
      u32 data_pages = 0;
      for (u32 i = 0; i < n; ++i) {
        const u64 pfn = first + i;
        u64 e;
        if (o_.hvm && hvm_hole(pfn)) {
          e = legacy::kDropped;
        } else {
          u64 type = o_.hvm ? 0 : (pfn % 97 == 1 ? 1 : pfn % 97 == 3 ? 9 : 0);
          e = (type << 28) | pfn;
          std::byte* page = area_.get() + std::size_t{data_pages} * kPageSize;
          const u64 stamp[3] = {pfn, o_.seed, 1};
          std::memcpy(page, stamp, sizeof stamp);
          ++data_pages;
        }
        if (ul_ == 4) store(entries.data() + 4 * i, static_cast<u32>(e));
        else store(entries.data() + 8 * i, e);
      }
      w_.out.put(std::int32_t(n));
      w_.out.write(entries.data(), std::size_t{n} * ul_);
      w_.pages += data_pages;
      w_.out.write_area(area_.get(), std::size_t{data_pages} * kPageSize);
      first += n;
    }
  }

  Emit w_;
  const GenOptions& o_;
  Rng rng_;
  u64 pfn_range_;
  u32 batch_;
  std::size_t ul_;
  AlignedBuf area_;
};

}  // namespace

void gen_page(std::uint64_t pfn, std::uint64_t seed, std::byte* out) {
  Rng r{seed * 0x100000001b3ull};
  for (std::size_t i = 24; i < kPageSize; i += 8) {
    u64 x = r.next();
    std::memcpy(out + i, &x, 8);
  }
  const u64 stamp[3] = {pfn, seed, 1};
  std::memcpy(out, stamp, sizeof stamp);
}

void gen_mixed_page(std::uint64_t pfn, std::uint64_t seed, std::uint64_t round, std::byte* out) {
  // Each page starts at a well-mixed point of the generator's sequence:
  // seeds a step apart would give the same words a word apart.
  Rng r{Rng{pfn ^ (seed << 20) ^ (round << 58)}.next()};
  const u64 kind = r.next() % 100;
  if (kind < 33) {
    std::memset(out, 0, kPageSize);
  } else if (kind < 73) {
    // A fixed vocabulary of 256 words; and-ing two random bytes favours
    // the low indices, as real text and code favour a few values.
    static const auto vocab = [] {
      std::array<u64, 256> v{};
      Rng w{0x5eed};
      for (u64& x : v) x = w.next() & 0x7f7f7f7f7f7f7f7full;
      return v;
    }();
    for (std::size_t i = 0; i < kPageSize; i += 8) {
      const u64 x = r.next();
      std::memcpy(out + i, &vocab[(x & 0xff) & ((x >> 8) & 0xff)], 8);
    }
  } else {
    for (std::size_t i = 0; i < kPageSize; i += 8) {
      const u64 x = r.next();
      std::memcpy(out + i, &x, 8);
    }
  }
  const u64 stamp[3] = {pfn, seed, round};
  std::memcpy(out, stamp, sizeof stamp);
}

std::uint64_t gen_max_size(const GenOptions& opt) {
  // Inverse of the pfn range the generators derive: size / (page + entry).
  u64 pfns = ~u64{0};
  if (opt.legacy) pfns = u64{1} << 28;
  else if (!opt.hvm) pfns = u64{1} << 32;
  if (pfns == ~u64{0}) return pfns;
  return pfns * (kPageSize + 8) + (kPageSize + 7);
}

GenResult generate(int fd, const GenOptions& opt) {
  auto bad = [](const char* why) {
    GenResult r;
    r.error = Error::at(Errc::usage, 0, why);
    return r;
  };
  if (opt.version != 2 && opt.version != 3) return bad("version must be 2 or 3");
  if (!opt.hvm && opt.pv_width != 4 && opt.pv_width != 8) return bad("PV width must be 4 or 8");
  if (opt.legacy) {
    if (opt.toolstack_width != 32 && opt.toolstack_width != 64)
      return bad("toolstack width must be 32 or 64");
    LegacyGenerator g(fd, opt);
    return g.run();
  }
  Generator g(fd, opt);
  return g.run();
}

bool parse_size(const std::string& s, std::uint64_t& out) {
  if (s.empty()) return false;
  std::size_t i = 0;
  double v = 0;
  bool digits = false, dot = false;
  double scale = 1;
  for (; i < s.size(); ++i) {
    char c = s[i];
    if (c >= '0' && c <= '9') {
      digits = true;
      if (dot) {
        scale /= 10;
        v += (c - '0') * scale;
      } else {
        v = v * 10 + (c - '0');
      }
    } else if (c == '.' && !dot) {
      dot = true;
    } else {
      break;
    }
  }
  if (!digits) return false;
  u64 mult = 1;
  std::string suf = s.substr(i);
  if (suf == "" || suf == "B") mult = 1;
  else if (suf == "K" || suf == "k" || suf == "KiB") mult = 1ull << 10;
  else if (suf == "M" || suf == "MiB") mult = 1ull << 20;
  else if (suf == "G" || suf == "GiB") mult = 1ull << 30;
  else if (suf == "T" || suf == "TiB") mult = 1ull << 40;
  else return false;
  out = static_cast<u64>(v * static_cast<double>(mult));
  return true;
}

}  // namespace xsr
