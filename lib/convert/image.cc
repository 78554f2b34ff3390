#include "xsr/image.h"

#include <cstring>

#include "xsr/format.h"
#include "xsr/verify.h"

namespace xsr {

ImageInput::~ImageInput() { finish({}); }

bool legacy_image(Source& raw) {
  const Container kind = detect_format(raw);
  if (kind == Container::xl) {
    // An xl header without the v2 flag fronts a legacy stream.
    Bytes b = raw.peek(sizeof(xl::Header));
    if (b.size() < sizeof(xl::Header)) return false;  // the verifier names the truncation
    xl::Header h;
    std::memcpy(&h, b.data(), sizeof h);
    return !(h.mandatory_flags & xl::kFlagStreamV2);
  }
  if (kind == Container::libvirt) {
    Bytes b = raw.peek(sizeof(libvirt::Header));
    if (b.size() < sizeof(libvirt::Header)) return false;
    libvirt::Header h;
    std::memcpy(&h, b.data(), sizeof h);
    return h.version == 1;
  }
  return kind == Container::legacy;
}

Error ImageInput::open(Source& raw) {
  raw_ = &raw;
  if (!legacy_image(raw)) return {};
  guess_ = detect_legacy(raw);
  if (!guess_.ok)
    return Error::at(Errc::bad_header, 0, "neither a v2/v3 stream nor a legacy image: " + guess_.why);
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
