#include "hvm_context.h"

#include <cstring>

#include "xsr/guest_state.h"
#include "xsr/units.h"

namespace xsr {
namespace {

using u64 = std::uint64_t;
using ull = unsigned long long;

template <class T>
T take(const std::byte* p) {
  T v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

// At most this many warnings per blob: a random blob would give one per
// 8 bytes otherwise.
constexpr std::size_t kMaxWarnings = 8;

struct Walk {
  InspectReport::HvmContext& hc;
  InspectReport& rep;

  void warn(std::string w) const {
    if (hc.warnings.size() < kMaxWarnings) hc.warnings.push_back(std::move(w));
  }

  void header(const std::byte* data, std::uint32_t length, u64 at) const {
    if (length < sizeof(hvm::SaveHeader)) {
      warn(strprintf("HEADER at blob offset %llu is %u bytes, shorter than its 24", static_cast<ull>(at),
                     length));
      return;
    }
    const auto h = take<hvm::SaveHeader>(data);
    hc.header = true;
    hc.magic = h.magic;
    hc.version = h.version;
    hc.changeset = h.changeset;
    hc.cpuid = h.cpuid;
    hc.gtsc_khz = h.gtsc_khz;
    if (h.magic != hvm::kFileMagic)
      warn(strprintf("HEADER magic 0x%08x is not Xen's 0x%08x", h.magic, hvm::kFileMagic));
    if (h.version != hvm::kFileVersion)
      warn(strprintf("HEADER version %u, Xen loads version %u", h.version, hvm::kFileVersion));
  }

  // One entry's descriptor is sound: named, sized, for a vCPU Xen can have.
  void entry(const hvm::SaveDescriptor& d, u64 at) const {
    const hvm::TypeInfo& t = hvm::save_type(d.typecode);
    if (!t.name) {
      warn(strprintf("unknown typecode %u at blob offset %llu", d.typecode, static_cast<ull>(at)));
      return;
    }
    if (!t.variable && d.length > t.size && d.length != t.compat_size)
      warn(strprintf("%s instance %u at blob offset %llu is %u bytes, longer than its %u", t.name, d.instance,
                     static_cast<ull>(at), d.length, t.size));
    if (t.per_vcpu) {
      if (d.instance >= hvm::kMaxVcpus)
        warn(strprintf("%s for vcpu %u at blob offset %llu: Xen's HVM guests have at most %u", t.name,
                       d.instance, static_cast<ull>(at), hvm::kMaxVcpus));
      rep.vcpus[d.instance].insert(std::string("HVM ") + t.name);
    } else {
      rep.hvm_domain_state.insert(t.name);
    }
  }
};

}  // namespace

void decode_hvm_context(std::span<const std::byte> b, u64 offset, u64 length, bool whole,
                        InspectReport& rep) {
  rep.hvm_context.emplace(InspectReport::HvmContext{});
  InspectReport::HvmContext& hc = *rep.hvm_context;
  hc.offset = offset;
  const Walk w{hc, rep};
  if (!whole) {
    w.warn(strprintf("not decoded: a blob of %llu bytes", static_cast<ull>(length)));
    return;
  }
  std::size_t off = 0;
  bool end = false;
  while (!end && b.size() - off >= sizeof(hvm::SaveDescriptor)) {
    const auto d = take<hvm::SaveDescriptor>(b.data() + off);
    const u64 at = off;
    ++hc.entries;
    off += sizeof d;
    if (at == 0 && d.typecode != hvm::HEADER) w.warn("no HEADER first");
    if (d.length > b.size() - off) {
      const hvm::TypeInfo& t = hvm::save_type(d.typecode);
      w.warn(strprintf("%s at blob offset %llu is %u bytes, past the record's end (%llu left)",
                       t.name ? t.name : strprintf("typecode %u", d.typecode).c_str(), static_cast<ull>(at),
                       d.length, static_cast<ull>(b.size() - off)));
      return;
    }
    if (d.typecode == hvm::HEADER && at == 0) w.header(b.data() + off, d.length, at);
    if (d.typecode == hvm::END) end = true;
    else w.entry(d, at);
    off += d.length;
  }
  if (hc.entries == 0) w.warn("empty blob");
  else if (!end) w.warn("no END entry");
  else if (off < b.size())
    w.warn(strprintf("%llu bytes after the END entry", static_cast<ull>(b.size() - off)));
}

}  // namespace xsr
