#include "xsr/image.h"

#include <cstring>

#include "xsr/format.h"
#include "xsr/verify.h"

namespace xsr {

ImageInput::~ImageInput() { finish({}); }

namespace {

// After an xl header without the v2 flag: does a v2/v3 stream follow (the
// libxc image marker or the libxl ident)? A header cut short, or optional
// data too long to look past, counts as yes: the walker names the problem.
bool stream_after_xl(Source& raw) {
  Bytes b = raw.peek(sizeof(xl::Header));
  if (b.size() < sizeof(xl::Header)) return true;
  xl::Header h;
  std::memcpy(&h, b.data(), sizeof h);
  if (h.mandatory_flags & xl::kFlagStreamV2) return true;
  const std::uint64_t at = sizeof h + std::uint64_t{h.optional_data_len};
  if (at + 8 > kMaxPeek) return true;
  b = raw.peek(at + 8);
  if (b.size() < at + 8) return true;
  return load<std::uint64_t>(b.data() + at) == ~std::uint64_t{0} ||
         std::memcmp(b.data() + at, "LibxlFmt", 8) == 0;
}

}  // namespace

ImageKind image_kind(Source& raw, std::string* why) {
  switch (detect_format(raw)) {
    case Container::libxc:
    case Container::libxl: return ImageKind::stream;
    case Container::xl:
      if (stream_after_xl(raw)) return ImageKind::stream;
      return detect_legacy(raw).ok ? ImageKind::legacy : ImageKind::stream;
    case Container::libvirt: {
      Bytes b = raw.peek(sizeof(libvirt::Header));
      if (b.size() < sizeof(libvirt::Header)) return ImageKind::stream;
      libvirt::Header h;
      std::memcpy(&h, b.data(), sizeof h);
      return h.version == 1 && detect_legacy(raw).ok ? ImageKind::legacy : ImageKind::stream;
    }
    case Container::legacy: break;
  }
  const std::size_t have = raw.peek(16).size();
  if (detect_legacy(raw).ok) return ImageKind::legacy;
  if (why)
    *why = have == 0   ? "the input is empty"
           : have < 16 ? strprintf("%zu bytes, shorter than any stream's first header", have)
                       : "its first bytes start neither a v2/v3 stream nor a legacy (Xen <= 4.5) one";
  return ImageKind::unknown;
}

Error not_a_v2_stream(ImageKind kind, const std::string& why, const std::string& advice) {
  if (kind == ImageKind::legacy)
    return Error::at(Errc::bad_header, 0, "a legacy (Xen <= 4.5) image, not a v2/v3 stream; " + advice);
  return Error::at(Errc::bad_header, 0, "not a Xen save image: " + why);
}

bool legacy_image(Source& raw) { return image_kind(raw) != ImageKind::stream; }

Error ImageInput::open(Source& raw) {
  raw_ = &raw;
  std::string why;
  const ImageKind kind = image_kind(raw, &why);
  if (kind == ImageKind::stream) return {};
  if (kind == ImageKind::unknown) return not_a_v2_stream(kind, why, "");
  guess_ = detect_legacy(raw);
  if (guess_.xl) {
    Bytes b = raw.peek(sizeof(xl::Header));
    xl::Header h;
    std::memcpy(&h, b.data(), sizeof h);
    if (h.optional_data_len <= kMaxPeek - sizeof h) {
      b = raw.peek(sizeof h + h.optional_data_len);
      if (b.size() >= sizeof h + h.optional_data_len)
        legacy_config_.assign(reinterpret_cast<const char*>(b.data()) + sizeof h, h.optional_data_len);
    }
  }
  ConvertOptions opt;
  opt.width = guess_.width;
  opt.guest = guess_.guest;
  opt.xl = guess_.xl;
  opt.libvirt = guess_.libvirt;
  opt.libxl = true;  // keeps the qemu record as an EMULATOR_CONTEXT record
  opt.python_bytes = false;
  if (Error e = converter_.start([this, opt](int w) {
        Sink sink(w);
        return convert_legacy(*raw_, sink, opt).error;
      }))
    return e;
  OpenResult r = source_from_fd(converter_.fd(), false);
  if (!r.source) {
    converter_.stop();
    return r.error;
  }
  pipe_src_ = std::move(r.source);
  legacy_ = true;
  return {};
}

Error ImageInput::finish(Error read_error) {
  if (!converter_.running()) return read_error;
  // Closing the read end stops a converter the reader left behind (EPIPE).
  pipe_src_.reset();
  const Error& conv = converter_.stop();
  if (conv) {
    const bool our_close = read_error && conv.caused_by(EPIPE);
    if (!our_close) {
      Error e = conv;
      e.detail = "legacy image: " + e.detail;
      return e;
    }
  }
  return read_error;
}

}  // namespace xsr
