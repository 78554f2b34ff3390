// Fuzz target: xsr inspect and xsr extract over an in-memory image.
// Byte 0: bit 0 read through ImageInput (a legacy image is converted in a
// second thread), bit 1 extract to a memfd instead of inspecting, bit 2 an
// ELF core, bit 3 the --records lines built, bit 4 extract one page (the pfn
// from the next 4 bytes). The rest is the image.
#include <sys/mman.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "fuzz.h"
#include "xsr/extract.h"
#include "xsr/image.h"
#include "xsr/inspect.h"

XSR_FUZZ_TARGET(inspect) {
  using namespace xsr;
  fuzz::Options in(data, size);
  const std::uint8_t flags = in.byte();
  const std::uint32_t page_pfn = in.u32();
  const Bytes image = in.rest();
  auto raw = memory_source(image);
  ImageInput img;
  Source* src = raw.get();
  if (flags & 1) {
    if (Error e = img.open(*raw)) {
      XSR_FUZZ_CHECK(!e.detail.empty());
      return 0;
    }
    src = &img.stream();
  }
  if (flags & 16) {
    std::array<std::byte, 4096> page{};
    ExtractResult r;
    const bool found = extract_page(*src, page_pfn, page, r);
    XSR_FUZZ_CHECK(!found || !r.error);
    if (found) XSR_FUZZ_CHECK(hexdump_page(page_pfn, page).size() > 0);
    img.finish(r.error);
    return 0;
  }
  if (flags & 2) {
    const int out = ::memfd_create("xsr-fuzz-extract", MFD_CLOEXEC);
    XSR_FUZZ_CHECK(out >= 0);
    ExtractOptions opt;
    opt.elf = flags & 4;
    ExtractResult r = extract(*src, out, opt);
    const Error e = img.finish(r.error);
    if (!e && !(flags & 1)) {
      // Every body went out: distinct pfns plus re-sends.
      XSR_FUZZ_CHECK(r.bodies == r.stats.pages);
      XSR_FUZZ_CHECK(r.pfns <= r.bodies);
    }
    ::close(out);
    return 0;
  }
  InspectOptions opt;
  std::size_t said = 0;
  if (flags & 8) opt.record_line = [&](const std::string& l) { said += l.size(); };
  opt.records_json = flags & 16;
  InspectReport rep;
  inspect(*src, opt, rep);
  const Error e = img.finish(rep.error);
  XSR_FUZZ_CHECK(!inspect_text("fuzz", rep, true).empty());
  // The document is valid JSON whatever the input (invalid UTF-8 replaced).
  const std::string doc =
      inspect_json("fuzz", rep, true).dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
  XSR_FUZZ_CHECK(nlohmann::json::accept(doc));
  if (!e && rep.pfns.complete() && rep.resent.complete()) {
    XSR_FUZZ_CHECK(rep.pfns.size() + rep.resends == rep.stats.pages);
    if (!rep.pfns.empty())
      XSR_FUZZ_CHECK(rep.pfns.size() + rep.hole_pfns == rep.pfns.max() - rep.pfns.min() + 1);
  }
  return 0;
}
