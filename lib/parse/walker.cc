#include "xsr/walker.h"

#include <cstring>

namespace xsr {

std::string_view container_name(Container c) {
  switch (c) {
    case Container::libxc: return "libxc";
    case Container::libxl: return "libxl";
    case Container::xl: return "xl";
    case Container::libvirt: return "libvirt";
    case Container::legacy: break;
  }
  return "legacy";
}

Container detect_format(Source& src) {
  Bytes b = src.peek(8);
  if (b.size() < 8) return Container::legacy;
  const char* p = reinterpret_cast<const char*>(b.data());
  if (load<std::uint64_t>(b.data()) == ~std::uint64_t{0}) return Container::libxc;  // image marker
  if (std::memcmp(p, "LibxlFmt", 8) == 0) return Container::libxl;
  if (std::memcmp(p, xl::kMagic, 8) == 0) return Container::xl;
  if (std::memcmp(p, libvirt::kMagic, 8) == 0) return Container::libvirt;
  return Container::legacy;
}

std::string_view header_name(HeaderKind k) {
  switch (k) {
    case HeaderKind::xl: return "xl header";
    case HeaderKind::libvirt: return "libvirt header";
    case HeaderKind::libxc_image: return "libxc image header";
    case HeaderKind::libxc_domain: return "libxc domain header";
    case HeaderKind::libxl: break;
  }
  return "libxl header";
}

namespace detail {

Error WalkerBase::read_xl(xl::Header& h) {
  Bytes b;
  if (Error e = rd_.need(xl::kMagicLen, b, "xl header")) return e;
  if (std::memcmp(b.data(), xl::kMagic, xl::kMagicLen) != 0)
    return rd_.fail(Errc::bad_header, pos(), "No xl header");
  return rd_.read_struct(h, "xl header");
}

Error WalkerBase::read_libvirt(libvirt::Header& h) {
  const std::uint64_t off = pos();
  if (Error e = rd_.read_struct(h, "libvirt header")) return e;
  if (std::memcmp(h.magic, libvirt::kMagic, libvirt::kMagicLen) != 0)
    return rd_.fail(Errc::bad_header, off, "No libvirt header");
  // Version 1 fronts a legacy stream, which this walker cannot read.
  if (h.version == 1)
    return rd_.fail(Errc::bad_header, off + offsetof(libvirt::Header, version),
                    "libvirt header version 1: a legacy (Xen <= 4.5) stream follows; "
                    "convert it with 'xsr convert'");
  if (h.version != 2)
    return rd_.fail(Errc::bad_header, off + offsetof(libvirt::Header, version),
                    strprintf("libvirt header version %u, expected 1 or 2", h.version));
  return {};
}

Error WalkerBase::not_a_stream() const {
  return rd_.fail(Errc::bad_header, 0,
                  "not a v2/v3 stream: looks like a legacy (Xen <= 4.5) image; "
                  "convert it with 'xsr convert'");
}

Error WalkerBase::large_body(std::uint64_t len, Body& b, bool& padding_ok,
                             const RecordReader::ChunkFn* scan) {
  b.data = prefix_;
  b.have = kBodyPrefix;
  if (!scan) return rd_.body_prefix(len, prefix_, padding_ok);
  return rd_.body_scan(len, prefix_, *scan, padding_ok);
}

}  // namespace detail
}  // namespace xsr
