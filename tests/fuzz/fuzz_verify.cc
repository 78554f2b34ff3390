// Fuzz target: the v2/v3 verifier (libxc, libxl, xl, libvirt) over an
// in-memory source. Byte 0: bits 0-1 format (autodetect, libxc, libxl, xl),
// bit 2 strict, bit 3 checkpointed, bit 4 the -v lines and notes built,
// bit 5 detect_format first. The rest is the stream.
#include "fuzz.h"
#include "xsr/verify.h"

XSR_FUZZ_TARGET(verify) {
  using namespace xsr;
  fuzz::Options in(data, size);
  const std::uint8_t flags = in.byte();
  static constexpr Format kFormats[] = {Format::autodetect, Format::libxc, Format::libxl, Format::xl};
  VerifyOptions opt;
  opt.format = kFormats[flags & 3];
  opt.strict = flags & 4;
  opt.checkpointed = flags & 8;
  std::size_t said = 0;
  if (flags & 16) {
    opt.info = [&](const std::string& s) { said += s.size(); };
    opt.note = [&](const std::string& s) { said += s.size(); };
  }
  const Bytes stream = in.rest();
  auto src = memory_source(stream);
  if (flags & 32) {
    const Container f = detect_format(*src);
    XSR_FUZZ_CHECK(!container_name(f).empty());
    XSR_FUZZ_CHECK(src->pos() == 0);  // detection consumes nothing
  }
  StreamStats st;
  const Error e = verify(*src, opt, st);
  XSR_FUZZ_CHECK(src->pos() <= stream.size());
  if (e) {
    XSR_FUZZ_CHECK(!e.message().empty());
    XSR_FUZZ_CHECK(e.code != Errc::io);  // memory cannot fail
  } else {
    // A valid stream ends where the verifier stopped: nothing read past it.
    XSR_FUZZ_CHECK(st.bytes == src->pos());
    XSR_FUZZ_CHECK(st.pages * kPageSize <= stream.size());
  }
  return 0;
}
