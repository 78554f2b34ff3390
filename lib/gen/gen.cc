#include "xsr/gen.h"

#include "guest.h"
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
using gen_detail::GuestPlan;

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

// Opaque bytes: the device model's state, which Xen never reads.
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

// xl's save-file header and its optional data as xl writes it
// (xl_saverestore.c): the config's length (u32), then the config, NUL
// included.
void write_xl_header(Sink& out, std::string cfg, u32 flags) {
  cfg.push_back('\0');
  const auto len = static_cast<u32>(cfg.size());
  xl::Header h{};
  std::memcpy(h.magic, xl::kMagic, xl::kMagicLen);
  h.byteorder = xl::kByteOrder;
  h.mandatory_flags = flags;
  h.optional_data_len = 4 + len;
  out.put(h);
  out.put(len);
  out.write(cfg.data(), cfg.size());
}

// HVM guests have no RAM behind the VGA hole.
bool hvm_hole(u64 pfn) { return pfn >= 0xa0 && pfn < 0xc0; }

class Generator {
 public:
  Generator(int fd, const GenOptions& o)
      : w_(fd, o), o_(o), rng_{o.seed}, pfn_range_(gen_detail::pfn_range(o)), plan_(o, pfn_range_) {
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
    write_xl_header(w_.out,
                    "{\"c_info\":{\"type\":\"" + std::string(o_.hvm ? "hvm" : "pv") +
                        "\",\"name\":\"xsr-gen-" + std::to_string(o_.seed) +
                        "\"},\"b_info\":{\"max_vcpus\":" + std::to_string(plan_.vcpus()) + "}}",
                    xl::kFlagJson | xl::kFlagStreamV2);
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
      w_.record(libxc::X86_CPUID_POLICY, plan_.cpuid_policy());
      w_.record(libxc::X86_MSR_POLICY, plan_.msr_policy());
      w_.record(libxc::STATIC_DATA_END, nullptr, 0);
    }
    if (!o_.hvm) {
      // The P2M frame list, as Xen's save writes it for pfns 0..range-1:
      // the pfns of the frames that hold the p2m, sent as NOTAB pages.
      std::vector<std::byte> body = pack(libxc::X86PvP2mFrames{0, static_cast<u32>(pfn_range_ - 1)});
      const std::vector<u64> frames = plan_.p2m_frame_pfns();
      append(body, frames.data(), 8 * frames.size());
      w_.record(libxc::X86_PV_P2M_FRAMES, body);
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
        std::byte* page = area_.get() + std::size_t{data_pages} * kPageSize;
        if (o_.hvm && hvm_hole(pfn)) {
          entries[i] = PfnEntry::make(pfn, libxc::XTAB).raw;
          continue;
        }
        ++data_pages;
        if (plan_.special(pfn)) {
          entries[i] = PfnEntry::make(pfn, plan_.type(pfn)).raw;
          plan_.fill(pfn, page);
          if (!o_.mixed_pages) overwritten_.push_back(page);
          continue;
        }
        entries[i] = PfnEntry::make(pfn, libxc::NOTAB).raw;
        if (o_.mixed_pages) gen_mixed_page(pfn, o_.seed, round, page);
        const u64 stamp[3] = {pfn, o_.seed, round};
        std::memcpy(page, stamp, sizeof stamp);
      }
      const u64 len = 8 + 8 * u64{n} + u64{data_pages} * kPageSize;
      RecordHeader h{libxc::PAGE_DATA, static_cast<u32>(len)};
      w_.out.put(h);
      w_.out.put(libxc::PageDataHeader{n, 0});
      w_.out.write(entries.data(), 8 * std::size_t{n});
      ++w_.records;
      w_.pages += data_pages;
      w_.out.write_area(area_.get(), std::size_t{data_pages} * kPageSize);
      // Special pages filled slots the stamped pages reuse.
      for (std::byte* page : overwritten_) gen_page(0, o_.seed, page);
      overwritten_.clear();
      done += n;
    }
  }

  // The end of a checkpoint, as x86_hvm_end_of_checkpoint and
  // x86_pv_end_of_checkpoint write it.
  void tail() {
    libxc::X86TscInfo tsc{0, 2000000, 1000000000ull + rng_.next() % 1000, 1, 0};
    w_.record(libxc::X86_TSC_INFO, &tsc, sizeof tsc);
    if (o_.hvm) {
      w_.record(libxc::HVM_CONTEXT, plan_.hvm_context(false));
      const std::vector<libxc::HvmParam> p = plan_.hvm_params();
      std::vector<std::byte> params = pack(libxc::HvmParamsHeader{static_cast<u32>(p.size()), 0});
      append(params, p.data(), p.size() * sizeof p[0]);
      w_.record(libxc::HVM_PARAMS, params);
      return;
    }
    w_.record(libxc::SHARED_INFO, plan_.shared_info());
    // Every vcpu online; no MSRS record: Xen writes one only for MSRs a
    // guest set non-zero, which a Linux guest on this CPU policy has none of.
    for (u32 v = 0; v < plan_.vcpus(); ++v) {
      vcpu(libxc::X86_PV_VCPU_BASIC, v, plan_.pv_vcpu_basic(v));
      vcpu(libxc::X86_PV_VCPU_EXTENDED, v, plan_.pv_vcpu_extended(v));
      vcpu(libxc::X86_PV_VCPU_XSAVE, v, plan_.pv_vcpu_xsave());
    }
  }

  void vcpu(u32 type, u32 id, const std::vector<std::byte>& ctx) {
    std::vector<std::byte> body = pack(libxc::X86PvVcpuHeader{id, 0});
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
  GuestPlan plan_;
  u32 batch_;
  AlignedBuf area_;
  std::vector<std::byte*> overwritten_;  // area pages a special page filled
};

// A legacy stream (REFERENCE.md "Legacy input"), as Xen 4.5's save wrote it.
class LegacyGenerator {
 public:
  LegacyGenerator(int fd, const GenOptions& o)
      : w_(fd, o), o_(o), rng_{o.seed}, pfn_range_(gen_detail::pfn_range(o)), plan_(o, pfn_range_) {
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
  // The xcnt block's size: the xsave record body (xcr0, xcr0_accum, area)
  // and the 16 bytes of mask and size before it in each vcpu's state.
  static constexpr u32 kXsaveLen = 16 + 16 + gen_detail::kXsaveArea;
  u32 vcpu_ctx() const { return o_.pv_width == 8 ? 0x1430 : 0xaf0; }
  u32 vcpus() const { return plan_.vcpus(); }

  void xl_header() {
    // No v2 flag: a legacy stream follows.
    write_xl_header(w_.out,
                    "{\"c_info\":{\"name\":\"xsr-legacy-" + std::to_string(o_.seed) +
                        "\"},\"b_info\":{\"max_vcpus\":" + std::to_string(vcpus()) + "}}",
                    xl::kFlagJson);
  }

  // Extended info, the p2m frame list and the vcpu info chunk.
  void pv_head() {
    ulong(~u64{0});
    w_.out.put(u32{8 + vcpu_ctx() + 8 + 8 + 4});
    w_.out.write("vcpu", 4);
    w_.out.put(vcpu_ctx());
    const std::vector<std::byte> ctx = plan_.pv_vcpu_basic(0);
    w_.out.write(ctx.data(), ctx.size());
    w_.out.write("extv", 4);
    w_.out.put(u32{0});
    w_.out.write("xcnt", 4);
    w_.out.put(u32{4});
    w_.out.put(kXsaveLen);
    for (u64 f : plan_.p2m_frame_pfns()) ulong(f);
    // vcpu info: vcpus 0..n-1 online.
    w_.out.put(std::int32_t{-2});
    const u32 n = vcpus();
    w_.out.put(std::int32_t(n - 1));
    w_.out.put(n == 64 ? ~u64{0} : (u64{1} << n) - 1);
  }

  // HVM param chunks and libxl's physmap toolstack data (one VGA entry).
  // The guest is a viridian (Windows) one, so that every param chunk kind
  // appears: its HVM context carries the viridian entries to match.
  void hvm_head() {
    std::vector<std::pair<std::int32_t, u64>> chunks;
    for (const libxc::HvmParam& p : plan_.hvm_params()) {
      if (p.index == 12) chunks.push_back({legacy::HVM_IDENT_PT, p.value});
      if (p.index == 37) chunks.push_back({legacy::HVM_VM86_TSS, p.value & 0xffffffff});
      if (p.index == 17) chunks.push_back({legacy::HVM_CONSOLE_PFN, p.value});
      if (p.index == 19) chunks.push_back({legacy::HVM_ACPI_IOPORTS_LOCATION, p.value});
      if (p.index == 32) chunks.push_back({legacy::HVM_IOREQ_SERVER_PFN, p.value});
      if (p.index == 33) chunks.push_back({legacy::HVM_NR_IOREQ_SERVER_PAGES, p.value});
    }
    chunks.insert(chunks.begin() + 4, {legacy::HVM_VIRIDIAN, 1});  // HVMPV_base_freq
    for (auto [m, v] : chunks) {
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

  // Unmapped pfns (none: every pfn is sent), every vcpu's contexts (the
  // extended one in its 128-byte domctl buffer), the shared info page.
  void pv_tail() {
    w_.out.put(u32{0});
    for (u32 v = 0; v < vcpus(); ++v) {
      const std::vector<std::byte> basic = plan_.pv_vcpu_basic(v);
      w_.out.write(basic.data(), basic.size());
      std::vector<std::byte> ext = plan_.pv_vcpu_extended(v);
      ext.resize(legacy::kExtendedCtx);
      w_.out.write(ext.data(), ext.size());
      const std::vector<std::byte> xs = plan_.pv_vcpu_xsave();
      w_.out.put(gen_detail::kXcr0);
      w_.out.put(u64{xs.size()});
      w_.out.write(xs.data(), xs.size());
    }
    const std::vector<std::byte> shinfo = plan_.shared_info();
    w_.out.write(shinfo.data(), shinfo.size());
  }

  // Magic pfns, the HVM context and the qemu record.
  void hvm_tail() {
    w_.out.put(plan_.hvm_special(GuestPlan::kIoreq));
    w_.out.put(plan_.hvm_special(GuestPlan::kBufioreq));
    w_.out.put(plan_.hvm_special(GuestPlan::kXenstore));
    const std::vector<std::byte> ctx = plan_.hvm_context(true);
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
          e = (u64{plan_.type(pfn)} << 28) | pfn;
          std::byte* page = area_.get() + std::size_t{data_pages} * kPageSize;
          if (plan_.special(pfn)) {
            plan_.fill(pfn, page);
            overwritten_.push_back(page);
          } else {
            const u64 stamp[3] = {pfn, o_.seed, 1};
            std::memcpy(page, stamp, sizeof stamp);
          }
          ++data_pages;
        }
        if (ul_ == 4) store(entries.data() + 4 * i, static_cast<u32>(e));
        else store(entries.data() + 8 * i, e);
      }
      w_.out.put(std::int32_t(n));
      w_.out.write(entries.data(), std::size_t{n} * ul_);
      w_.pages += data_pages;
      w_.out.write_area(area_.get(), std::size_t{data_pages} * kPageSize);
      for (std::byte* page : overwritten_) gen_page(0, o_.seed, page);
      overwritten_.clear();
      first += n;
    }
  }

  Emit w_;
  const GenOptions& o_;
  Rng rng_;
  u64 pfn_range_;
  GuestPlan plan_;
  u32 batch_;
  std::size_t ul_;
  AlignedBuf area_;
  std::vector<std::byte*> overwritten_;  // area pages a special page filled
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

std::uint64_t gen_pfn_range(const GenOptions& opt) { return gen_detail::pfn_range(opt); }

bool gen_pfn_special(const GenOptions& opt, std::uint64_t pfn) {
  return GuestPlan(opt, gen_detail::pfn_range(opt)).special(pfn);
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
