#include "xsr/image.h"

#include <fcntl.h>
#include <unistd.h>

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

bool ImageInput::open(Source& raw, std::string& why) {
  raw_ = &raw;
  if (!legacy_image(raw)) return true;
  guess_ = detect_legacy(raw);
  if (!guess_.ok) {
    why = "neither a v2/v3 stream nor a legacy image: " + guess_.why;
    return false;
  }
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
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) {
    why = std::string("pipe: ") + std::strerror(errno);
    return false;
  }
  ::fcntl(p[1], F_SETPIPE_SZ, 1 << 20);
  OpenResult r = source_from_fd(p[0], true);
  if (!r.source) {
    ::close(p[1]);
    why = r.error;
    return false;
  }
  pipe_src_ = std::move(r.source);
  pipe_w_ = p[1];
  legacy_ = true;
  joined_ = false;
  ConvertOptions opt;
  opt.width = guess_.width;
  opt.guest = guess_.guest;
  opt.xl = guess_.xl;
  opt.libvirt = guess_.libvirt;
  opt.libxl = true;  // keeps the qemu record as an EMULATOR_CONTEXT record
  converter_ = std::thread([this, opt] {
    {
      Sink sink(pipe_w_);
      conv_ = convert_legacy(*raw_, sink, opt);
    }
    ::close(pipe_w_);  // the reader sees the end of the converted stream
  });
  return true;
}

Error ImageInput::finish(Error read_error) {
  if (joined_) return read_error;
  // Closing the read end stops a converter the reader left behind (EPIPE).
  pipe_src_.reset();
  converter_.join();
  joined_ = true;
  if (conv_.error) {
    const bool our_close = read_error && conv_.error.code == Errc::io &&
                           conv_.error.caused_by(EPIPE);
    if (!our_close) {
      Error e = conv_.error;
      e.detail = "legacy image: " + e.detail;
      return e;
    }
  }
  return read_error;
}

}  // namespace xsr
