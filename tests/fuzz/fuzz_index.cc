// Fuzz target: the page index reader (xsr/index.h). Arbitrary bytes as an
// index of a small generated image must never crash or read out of
// bounds: parse() refuses them with a reason, or the pages they point at
// are read (extract_indexed, index_page) from an image in random windows.
// Byte 0: bit 0 resealed (the rest's index checksum is recomputed, so the
// fuzzer reaches the entry checks and the reads), bit 1 skip the head
// check, bit 2 an ELF core; bytes 1-4 seed the windows; bytes 5-8 and 9-12
// a --pfn range (low bits). The rest is the index file.
#include <cstring>

#include "fuzz.h"
#include "xsr/gen.h"
#include "xsr/index.h"

namespace {

using namespace xsr;

// The image every input indexes: what `xsr gen --size 256K --batch 7
// --seed 3` writes (scripts/fuzz.sh seeds with its real index).
const std::vector<std::byte>& image() {
  static const std::vector<std::byte> img = [] {
    GenOptions o;
    o.size = 256 << 10;
    o.batch = 7;
    o.seed = 3;
    const int fd = fuzz::empty_memfd();
    generate(fd, o);
    std::vector<std::byte> v(static_cast<std::size_t>(::lseek(fd, 0, SEEK_END)));
    (void)!::pread(fd, v.data(), v.size(), 0);
    return v;
  }();
  return img;
}

// The index bytes with their checksum made right: fields read as the file
// lays them out, written back by serialize().
std::vector<std::byte> reseal(Bytes d) {
  PageIndex p;
  auto u64at = [&](std::size_t off) {
    std::uint64_t v = 0;
    if (off + 8 <= d.size()) std::memcpy(&v, d.data() + off, 8);
    return v;
  };
  p.image_size = u64at(16);
  p.head_len = u64at(24);
  p.head_sum = u64at(32);
  p.layout_sum = u64at(40);
  for (std::size_t off = PageIndex::kHeaderSize;
       off + PageIndex::kEntrySize <= d.size() && p.runs.size() < 4096; off += PageIndex::kEntrySize) {
    IndexRun r;
    r.pfn = u64at(off);
    r.pages = static_cast<std::uint32_t>(u64at(off + 8));
    r.rec_len = static_cast<std::uint32_t>(u64at(off + 8) >> 32);
    r.body_off = u64at(off + 16);
    r.rec_off = u64at(off + 24);
    p.runs.push_back(r);
  }
  return p.serialize();
}

}  // namespace

XSR_FUZZ_TARGET(index) {
  fuzz::Options opt(data, size);
  const std::uint8_t flags = opt.byte();
  const std::uint32_t seed = opt.u32();
  ExtractOptions eo;
  eo.first_pfn = opt.u32() & 0xffff;
  eo.last_pfn = eo.first_pfn + (opt.u32() & 0xffff);
  eo.elf = flags & 4;
  const Bytes rest = opt.rest();
  const std::vector<std::byte> resealed = flags & 1 ? reseal(rest) : std::vector<std::byte>{};
  const Result<PageIndex> idx = PageIndex::parse(flags & 1 ? Bytes(resealed) : rest);
  if (!idx.ok()) {
    XSR_FUZZ_CHECK(!idx.error().detail.empty());
    return 0;
  }
  const Bytes img(image());
  {
    fuzz::ChunkySource src(img, seed);
    if (!(flags & 2) && check_index_head(idx.value(), src, img.size())) return 0;
    const ExtractResult r = extract_indexed(idx.value(), src, fuzz::empty_memfd(), eo);
    XSR_FUZZ_CHECK(r.error || r.pfns <= eo.last_pfn - eo.first_pfn + 1);
  }
  for (const IndexRun& run : idx.value().runs) {
    fuzz::ChunkySource src(img, seed + 1);
    std::array<std::byte, 4096> page{};
    ExtractResult r;
    if (!(flags & 2) && check_index_head(idx.value(), src, img.size())) break;
    const bool found = index_page(idx.value(), src, run.pfn + run.pages - 1, page, r);
    XSR_FUZZ_CHECK(found || r.error);
    if (&run - idx.value().runs.data() >= 8) break;
  }
  return 0;
}
