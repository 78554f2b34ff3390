// Fuzz target: RecordReader and PageDataReader (what verify, inspect,
// extract and the relay sit on) fed through ChunkySource, which hands the
// bytes out in random-sized windows that die at the next call.
// Byte 0: bits 0-1 format, bit 2 strict, bit 3 a raw record walk instead of
// the verifier; bytes 1-4 seed the window sizes; byte 5: when bit 7 is set,
// the source fails with EIO after (bits 0-6) calls. The rest is the stream.
//
// Verifier mode is differential: the verdict (code, offset, record, type,
// message) and counts over ChunkySource must equal those over a plain
// memory source, whatever the windows; with a failure injected the verdict
// must be an I/O error, never valid.
#include "fuzz.h"
#include "xsr/reader.h"
#include "xsr/verify.h"

namespace {

using namespace xsr;

// Walks records as a relay would: headers, bodies by every access path,
// PAGE_DATA entries and pages; stops at END or the first error.
void walk(Source& src, fuzz::Rng& rng) {
  {
    // A bare libxc image: step over its two headers.
    Bytes b = src.peek(8);
    if (b.size() >= 8 && load<std::uint64_t>(b.data()) == libxc::kMarker)
      if (src.skip(sizeof(libxc::ImageHeader) + sizeof(libxc::DomainHeader)) == 0) return;
  }
  RecordReader rd(src);
  std::uint64_t sum = 0;
  for (;;) {
    RecordHeader h;
    std::uint64_t off;
    if (rd.read_header(Layer::libxc, h, off)) return;
    rd.expect_body(h, h.type != libxc::END);
    bool pad_ok = true;
    if (h.type == libxc::PAGE_DATA && h.length >= 8) {
      PageDataReader pd(rd);
      if (pd.begin(h.length)) return;
      if (rng.below(4)) {
        for (;;) {
          Bytes c;
          if (pd.next_pfns(c)) return;
          if (c.empty()) break;
          XSR_FUZZ_CHECK(c.size() % 8 == 0);
          sum += load<std::uint64_t>(c.data() + c.size() - 8);
        }
      }
      switch (rng.below(3)) {
        case 0:
          if (pd.for_each_page([&](PageDataReader::Page p) { sum += static_cast<unsigned>(p[4095]); }))
            return;
          break;
        case 1:
          for (;;) {
            Bytes run;
            const std::size_t max = 1 + rng.below(PageDataReader::kPageRun);
            if (pd.next_pages(run, max)) return;
            if (run.empty()) break;
            XSR_FUZZ_CHECK(run.size() % kPageSize == 0 && run.size() <= max * kPageSize);
            sum += static_cast<unsigned>(run[run.size() - 1]);
          }
          break;
        default: break;  // skipped by end()
      }
      if (pd.end(pad_ok)) return;
    } else if (padded(h.length) <= kMaxPeek && rng.below(2)) {
      Bytes body;
      if (rd.body_whole(h.length, body, pad_ok)) return;
      XSR_FUZZ_CHECK(body.size() == h.length);
      if (!body.empty()) sum += static_cast<unsigned>(body[body.size() - 1]);
    } else {
      std::byte prefix[64];
      const std::size_t k = rng.below(sizeof prefix + 1);
      if (rng.below(2)) {
        std::uint64_t seen = 0;
        if (rd.body_scan(
                h.length, std::span<std::byte>(prefix, k),
                [&](Bytes c, std::uint64_t at) {
                  XSR_FUZZ_CHECK(at == seen);
                  seen += c.size();
                  sum += static_cast<unsigned>(c[c.size() - 1]);
                },
                pad_ok))
          return;
        XSR_FUZZ_CHECK(seen == h.length);
      } else if (rd.body_prefix(h.length, std::span<std::byte>(prefix, k), pad_ok)) {
        return;
      }
    }
    const std::uint64_t n = rd.end_record();
    XSR_FUZZ_CHECK(n == 8 + padded(h.length));
    if (h.type == libxc::END) break;
  }
  (void)sum;
}

bool same(const Error& a, const Error& b) {
  return a.code == b.code && a.offset == b.offset && a.record == b.record && a.layer == b.layer &&
         a.type == b.type && a.detail == b.detail;
}

}  // namespace

XSR_FUZZ_TARGET(reader) {
  fuzz::Options in(data, size);
  const std::uint8_t flags = in.byte();
  const std::uint32_t seed = in.u32();
  const std::uint8_t inject = in.byte();
  const int fail_after = (inject & 0x80) ? (inject & 0x7f) : -1;
  const Bytes stream = in.rest();
  fuzz::ChunkySource chunky(stream, seed, fail_after);
  fuzz::Rng rng(seed ^ 0x5bd1e995u);

  if (flags & 8) {
    walk(chunky, rng);
    XSR_FUZZ_CHECK(chunky.pos() <= stream.size());
    return 0;
  }
  static constexpr Format kFormats[] = {Format::autodetect, Format::libxc, Format::libxl, Format::xl};
  VerifyOptions opt;
  opt.format = kFormats[flags & 3];
  opt.strict = flags & 4;
  StreamStats got, want;
  const Error e = verify(chunky, opt, got);
  XSR_FUZZ_CHECK(chunky.pos() <= stream.size());
  if (chunky.injected()) {
    XSR_FUZZ_CHECK(e.code == Errc::io);
    return 0;
  }
  auto mem = memory_source(stream);
  const Error m = verify(*mem, opt, want);
  if (!same(e, m)) {
    const std::string s = "chunky: " + e.message() + "\nmemory: " + m.message() + "\n";
    (void)!::write(2, s.data(), s.size());
  }
  XSR_FUZZ_CHECK(same(e, m));
  XSR_FUZZ_CHECK(chunky.pos() == mem->pos());
  XSR_FUZZ_CHECK(got.bytes == want.bytes && got.records == want.records && got.pages == want.pages);
  return 0;
}
