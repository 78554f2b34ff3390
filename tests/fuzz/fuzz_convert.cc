// Fuzz target: the legacy (Xen <= 4.5) converter and its detection. Byte 0
// chooses the options: bit 0 width 32/64, bit 1 guest PV/HVM, bit 2 libxl
// output, bit 3 xl header, bit 4 skip qemu, bit 5 stream version 2/3, bit 6
// libvirt header, bit 7 take width, guest and headers from detect_legacy
// instead (as `xsr convert` does). Byte 1: bit 0 output to a memfd (the
// file paths of Sink) rather than /dev/null, bit 1 the -v lines built, bit 2
// read through ChunkySource (seeded by bytes 2-5) rather than memory. The
// rest is the legacy stream. A successful conversion into a memfd must
// verify (the libxc or libxl stream it claims to be), but for the one
// invalid output Xen's converter makes too (an empty HVM context).
#include <sys/stat.h>

#include "fuzz.h"
#include "xsr/convert.h"
#include "xsr/verify.h"

XSR_FUZZ_TARGET(convert) {
  using namespace xsr;
  fuzz::Options in(data, size);
  const std::uint8_t a = in.byte(), b = in.byte();
  const std::uint32_t seed = in.u32();
  const Bytes stream = in.rest();

  ConvertOptions opt;
  opt.width = (a & 1) ? 64 : 32;
  opt.guest = (a & 2) ? GuestType::hvm : GuestType::pv;
  opt.libxl = a & 4;
  opt.xl = a & 8;
  opt.skip_qemu = a & 16;
  opt.stream_version = (a & 32) ? 2 : 3;
  opt.libvirt = a & 64;
  {
    auto probe = memory_source(stream);
    const LegacyGuess g = detect_legacy(*probe);
    XSR_FUZZ_CHECK(probe->pos() == 0);  // detection consumes nothing
    XSR_FUZZ_CHECK(g.ok || !g.why.empty());
    if (a & 128) {
      if (!g.ok) return 0;
      XSR_FUZZ_CHECK(g.width == 32 || g.width == 64);
      XSR_FUZZ_CHECK(g.guest != GuestType::unknown);
      opt.width = g.width;
      opt.guest = g.guest;
      opt.xl = g.xl;
      opt.libvirt = g.libvirt;
      opt.libxl = opt.libxl || g.xl || g.libvirt;
    }
  }
  std::size_t said = 0;
  if (b & 2) opt.info = [&](const std::string& s) { said += s.size(); };

  const bool to_file = b & 1;
  const int out = to_file ? fuzz::empty_memfd() : fuzz::dev_null();
  std::unique_ptr<Source> src;
  if (b & 4) src = std::make_unique<fuzz::ChunkySource>(stream, seed);
  else src = memory_source(stream);
  ConvertResult r;
  {
    Sink sink(out);
    r = convert_legacy(*src, sink, opt);
  }
  XSR_FUZZ_CHECK(src->pos() <= stream.size());
  XSR_FUZZ_CHECK(r.in_bytes <= stream.size());
  if (r.error) {
    XSR_FUZZ_CHECK(!r.error.message().empty());
    XSR_FUZZ_CHECK(r.error.code != Errc::io);  // memory and memfds do not fail
    return 0;
  }
  if (to_file) {
    struct stat st;
    XSR_FUZZ_CHECK(::fstat(out, &st) == 0);
    XSR_FUZZ_CHECK(static_cast<std::uint64_t>(st.st_size) == r.out_bytes);
    // The output is the stream it says it is (the raw qemu tail of a libxc
    // output follows the stream's END, unread by the verifier).
    ::lseek(out, 0, SEEK_SET);
    auto check = source_from_fd(out, false, IoMode::pread);
    XSR_FUZZ_CHECK(check.source != nullptr);
    VerifyOptions vo;
    vo.format = (opt.xl || opt.libvirt) ? Format::autodetect : opt.libxl ? Format::libxl : Format::libxc;
    StreamStats vs;
    const Error ve = verify(*check.source, vo, vs);
    if (ve && ve.code != Errc::bad_record) {
      (void)!::write(2, ve.message().data(), ve.message().size());
      (void)!::write(2, "\n", 1);
    }
    // As the reference, the converter copies some bodies its verifier
    // refuses (this target found a zero-length HVM context: Xen's converter
    // writes the same bytes; page types 5-8 and empty batches are others;
    // `xsr convert --verify` names them): only the framing must hold.
    XSR_FUZZ_CHECK(!ve || ve.code == Errc::bad_record);
    if (!ve) XSR_FUZZ_CHECK(vs.bytes + r.tail_bytes == r.out_bytes);
  }
  return 0;
}
