#include "xsr/index.h"

#include <algorithm>
#include <cstring>
#include <iterator>
#include <map>
#include <optional>

#include "internal.h"
#include "xsr/elf_notes.h"
#include "xsr/format.h"
#include "xsr/reader.h"
#include "xsr/sink.h"
#include "xsr/verify.h"

namespace xsr {
namespace {

using u64 = std::uint64_t;

constexpr char kMagic[8] = {'X', 'S', 'R', 'I', 'N', 'D', 'E', 'X'};

// A 64-bit checksum of words (not cryptographic: it tells a stale or
// foreign index from the right one, it does not resist forgery).
class Sum {
 public:
  void word(u64 w) {
    h_ ^= w;
    h_ *= 0xff51afd7ed558ccdULL;
    h_ ^= h_ >> 32;
  }
  void bytes(Bytes b) {
    std::size_t i = 0;
    for (; i + 8 <= b.size(); i += 8) word(load<u64>(b.data() + i));
    u64 tail = 0;
    std::memcpy(&tail, b.data() + i, b.size() - i);
    word(tail ^ (u64{b.size() - i} << 56));
  }
  u64 value() const { return h_ ^ (h_ >> 29); }

 private:
  u64 h_ = 0x9e3779b97f4a7c15ULL;
};

// Inserts r so that it replaces whatever part of older runs it covers (the
// last copy of a page wins).
void insert_last_wins(std::map<u64, IndexRun>& m, const IndexRun& r) {
  const u64 end = r.pfn + r.pages;
  auto cut = [](IndexRun q, u64 at) {
    q.body_off += (at - q.pfn) * kPageSize;
    q.pages = static_cast<std::uint32_t>(q.pfn + q.pages - at);
    q.pfn = at;
    return q;
  };
  auto it = m.lower_bound(r.pfn);
  if (it != m.begin()) {
    IndexRun& p = std::prev(it)->second;
    const u64 pend = p.pfn + p.pages;
    if (pend > r.pfn) {
      if (pend > end) m.emplace(end, cut(p, end));
      p.pages = static_cast<std::uint32_t>(r.pfn - p.pfn);
    }
  }
  it = m.lower_bound(r.pfn);
  while (it != m.end() && it->first < end) {
    const IndexRun q = it->second;
    it = m.erase(it);
    if (q.pfn + q.pages > end) {
      m.emplace(end, cut(q, end));
      break;
    }
  }
  m.emplace(r.pfn, r);
}

// The walk: each PAGE_DATA record's runs, at the source's offset of its
// first page body; the layout checksum of every header, record and entry.
class IndexBuilder final : public detail::BatchObserver {
 public:
  explicit IndexBuilder(Source& src) : src_(src) {}

  void header(HeaderKind k, u64 off, u64 len) override {
    sum_.word(static_cast<u64>(k) | 0x100);
    sum_.word(off);
    sum_.word(len);
  }
  void pfns(std::span<const std::byte> chunk) override {
    BatchObserver::pfns(chunk);
    sum_.bytes(chunk);
  }
  void record(Layer layer, std::uint32_t type, u64 off, u64 len, std::span<const std::byte>) override {
    sum_.word((static_cast<u64>(layer) << 32) | type);
    sum_.word(off);
    sum_.word(len);
    if (layer == Layer::libxc && type == libxc::PAGE_DATA) {
      if (!head_) head_ = off;
      for (IndexRun& r : pending_) {
        r.rec_off = off;
        r.rec_len = static_cast<std::uint32_t>(len);
        add(r);
      }
    }
    pending_.clear();
    batch_.clear();
  }
  Error pages(PageDataReader&) override {
    const u64 first = src_.pos();
    for_each_run([&](std::size_t i, std::size_t n) {
      pending_.push_back({batch_[i], static_cast<std::uint32_t>(n), 0, first + i * kPageSize, 0});
    });
    return {};
  }

  // The runs, sorted and disjoint; the head's length (the image's length
  // when it has no PAGE_DATA).
  std::vector<IndexRun> take_runs() {
    if (!shuffled_) return std::move(sorted_);
    std::vector<IndexRun> v;
    v.reserve(map_.size());
    for (auto& [pfn, r] : map_)
      if (r.pages) v.push_back(r);
    return v;
  }
  std::optional<u64> head() const { return head_; }
  u64 layout_sum() const { return sum_.value(); }

 private:
  // Xen's save sends pfns in ascending order: a run past the last one is
  // appended; the first that is not moves everything into the map.
  void add(const IndexRun& r) {
    if (!shuffled_ && (sorted_.empty() || r.pfn >= sorted_.back().pfn + sorted_.back().pages)) {
      sorted_.push_back(r);
      return;
    }
    if (!shuffled_) {
      for (const IndexRun& s : sorted_) map_.emplace_hint(map_.end(), s.pfn, s);
      sorted_.clear();
      shuffled_ = true;
    }
    insert_last_wins(map_, r);
  }

  Source& src_;
  Sum sum_;
  std::optional<u64> head_;
  std::vector<IndexRun> pending_;
  std::vector<IndexRun> sorted_;
  std::map<u64, IndexRun> map_;
  bool shuffled_ = false;
};

// The checksum of the first len bytes of src (consumed).
Error sum_head(Source& src, u64 len, u64& out) {
  Sum s;
  u64 left = len;
  while (left > 0) {
    const std::size_t n = static_cast<std::size_t>(std::min<u64>(left, kMaxPeek));
    const Bytes b = src.peek(n);
    if (b.size() < n)
      return Error::at(
          Errc::truncated, len - left,
          strprintf("the image ended inside its first %llu bytes", static_cast<unsigned long long>(len)));
    s.bytes(b.first(n));
    src.consume(n);
    left -= n;
  }
  s.word(len);
  out = s.value();
  return {};
}

[[gnu::cold]] Error bad_index(std::string why) { return Error::at(Errc::bad_header, 0, std::move(why)); }

[[gnu::cold]] Error stale(u64 off, std::string why) {
  return Error::at(Errc::bad_header, off, std::move(why));
}

void put64(std::byte* p, u64 v) { std::memcpy(p, &v, 8); }
void put32(std::byte* p, std::uint32_t v) { std::memcpy(p, &v, 4); }

// The index checksum over the file's bytes, its own field counted as zero.
u64 index_sum(Bytes data) {
  Sum s;
  s.bytes(data.first(56));
  s.bytes(data.subspan(PageIndex::kHeaderSize));
  return s.value();
}

// Why entry r (after prev, if any) cannot describe an image of image_size
// bytes; empty when it can.
std::string bad_entry(const IndexRun& r, const IndexRun* prev, u64 image_size) {
  if (r.pages == 0) return "a run of no pages";
  if (r.pfn > libxc::kPfnMask || r.pages > libxc::kPfnMask + 1 - r.pfn) return "a pfn beyond 2^52";
  if (prev && r.pfn < prev->pfn + prev->pages) return "runs out of order or overlapping";
  if (r.rec_off > image_size || image_size - r.rec_off < 8 + u64{r.rec_len}) return "a record past the image";
  const u64 rec_end = r.rec_off + 8 + r.rec_len;
  if (r.body_off < r.rec_off + 16 || r.body_off > rec_end || (rec_end - r.body_off) / kPageSize < r.pages)
    return "page bodies outside their record";
  return {};
}

// Moves src's cursor forward to file offset `off`.
Error seek_to(Source& src, u64 off) {
  if (off < src.pos()) return stale(off, "index runs out of file order");
  const u64 n = off - src.pos();
  if (src.skip(n) != n) return stale(src.pos(), "the image ends before an indexed page");
  return {};
}

// The PAGE_DATA record a run's pages come from, as the image has it now:
// its header must be the one the index names, and the pfn entries of the
// bodies read must be the pfns the index maps there (a re-generated image
// with the same headers but another pfn order is stale too).
class RecordCheck {
 public:
  Error check(Source& src, const IndexRun& r) {
    if (r.rec_off != rec_off_)
      if (Error e = load(src, r)) return e;
    const u64 k = (r.body_off - first_body_) / kPageSize;
    bool same =
        (r.body_off - first_body_) % kPageSize == 0 && k <= data_.size() && data_.size() - k >= r.pages;
    for (u64 i = 0; same && i < r.pages; ++i) same = data_[k + i] == r.pfn + i;
    if (!same)
      return stale(r.rec_off, strprintf("the PAGE_DATA record at offset 0x%llx holds other pfns",
                                        static_cast<unsigned long long>(r.rec_off)));
    return {};
  }

 private:
  Error load(Source& src, const IndexRun& r) {
    rec_off_ = ~u64{0};
    if (Error e = seek_to(src, r.rec_off)) return e;
    struct {
      RecordHeader h;
      libxc::PageDataHeader ph;
    } w{};
    const Bytes b = src.peek(sizeof w);
    if (b.size() < sizeof w) return stale(r.rec_off, "the image ends before an indexed record");
    std::memcpy(&w, b.data(), sizeof w);
    const u64 entries = 8 * u64{w.ph.count};
    if (w.h.type != libxc::PAGE_DATA || w.h.length != r.rec_len || entries > kMaxPeek ||
        sizeof w.ph + entries > r.rec_len)
      return stale(r.rec_off, strprintf("no PAGE_DATA record of %u bytes at offset 0x%llx", r.rec_len,
                                        static_cast<unsigned long long>(r.rec_off)));
    src.consume(sizeof w);
    const Bytes chunk = src.peek(static_cast<std::size_t>(entries));
    if (chunk.size() < entries) return stale(r.rec_off, "the image ends before an indexed record");
    data_.clear();
    for (std::size_t i = 0; i < w.ph.count; ++i)
      if (const PfnEntry e = PfnEntry::at(chunk, i); e.has_data()) data_.push_back(e.pfn());
    src.consume(static_cast<std::size_t>(entries));
    rec_off_ = r.rec_off;
    first_body_ = src.pos();
    return {};
  }

  u64 rec_off_ = ~u64{0};
  u64 first_body_ = 0;
  std::vector<u64> data_;  // the pfns with a body, in body order
};

// The runs of [first, last], cut to it, in file order.
std::vector<IndexRun> select_runs(const PageIndex& idx, u64 first, u64 last) {
  std::vector<IndexRun> sel;
  auto it = std::upper_bound(idx.runs.begin(), idx.runs.end(), first,
                             [](u64 p, const IndexRun& r) { return p < r.pfn; });
  if (it != idx.runs.begin()) --it;
  for (; it != idx.runs.end() && it->pfn <= last; ++it) {
    IndexRun r = *it;
    const u64 end = std::min<u64>(r.pfn + r.pages - 1, last);
    if (end < first) continue;
    const u64 from = std::max(r.pfn, first);
    r.body_off += (from - r.pfn) * kPageSize;
    r.pages = static_cast<std::uint32_t>(end - from + 1);
    r.pfn = from;
    sel.push_back(r);
  }
  std::sort(sel.begin(), sel.end(),
            [](const IndexRun& a, const IndexRun& b) { return a.body_off < b.body_off; });
  return sel;
}

// Moves the pages of the selected runs to out, each run by one kernel call
// where the source can (Source::forward).
Error copy_runs(const std::vector<IndexRun>& sel, Source& src, Sink& out, u64 base, PfnSet& written,
                ExtractResult& res) {
  RecordCheck rc;
  for (const IndexRun& r : sel) {
    if (Error e = rc.check(src, r)) return e;
    if (Error e = seek_to(src, r.body_off)) return e;
    if (Error e = out.seek(base + r.pfn * kPageSize, "seeking the output failed")) return e;
    const u64 bytes = u64{r.pages} * kPageSize;
    int out_error = 0;
    const char* how = nullptr;
    const u64 got = src.forward(bytes, out.fd(), out_error, how);
    if (out_error) return Error::output(r.body_off, "write to the output failed", out_error);
    if (got != bytes) {
      if (src.error()) return Error::io(r.body_off + got, "read failed: " + src.error_text(), src.error());
      return stale(r.body_off + got, "the image ends before an indexed page");
    }
    out.count_path(how ? how : "write", bytes);
    written.insert_range(r.pfn, r.pages);
    res.bodies += r.pages;
  }
  return {};
}

}  // namespace

u64 PageIndex::pages() const {
  u64 n = 0;
  for (const IndexRun& r : runs) n += r.pages;
  return n;
}

const IndexRun* PageIndex::find(u64 pfn) const {
  auto it =
      std::upper_bound(runs.begin(), runs.end(), pfn, [](u64 p, const IndexRun& r) { return p < r.pfn; });
  if (it == runs.begin()) return nullptr;
  --it;
  return pfn - it->pfn < it->pages ? &*it : nullptr;
}

std::vector<std::byte> PageIndex::serialize() const {
  std::vector<std::byte> d(kHeaderSize + kEntrySize * runs.size());
  std::memcpy(d.data(), kMagic, 8);
  put32(&d[8], kVersion);
  put32(&d[12], kEntrySize);
  put64(&d[16], image_size);
  put64(&d[24], head_len);
  put64(&d[32], head_sum);
  put64(&d[40], layout_sum);
  put64(&d[48], runs.size());
  for (std::size_t i = 0; i < runs.size(); ++i) {
    std::byte* e = &d[kHeaderSize + kEntrySize * i];
    put64(e, runs[i].pfn);
    put32(e + 8, runs[i].pages);
    put32(e + 12, runs[i].rec_len);
    put64(e + 16, runs[i].body_off);
    put64(e + 24, runs[i].rec_off);
  }
  put64(&d[56], index_sum(d));
  return d;
}

Result<PageIndex> PageIndex::parse(Bytes d) {
  if (d.size() < kHeaderSize || std::memcmp(d.data(), kMagic, 8) != 0)
    return bad_index("not an xsr index (no XSRINDEX header)");
  if (load<std::uint32_t>(&d[8]) != kVersion || load<std::uint32_t>(&d[12]) != kEntrySize)
    return bad_index(strprintf("index version %u, entry size %u: this xsr reads version %u, entry size %zu",
                               load<std::uint32_t>(&d[8]), load<std::uint32_t>(&d[12]), kVersion,
                               kEntrySize));
  const u64 count = load<u64>(&d[48]);
  if (count > (d.size() - kHeaderSize) / kEntrySize || d.size() != kHeaderSize + count * kEntrySize)
    return bad_index(
        strprintf("index of %zu bytes for %llu entries", d.size(), static_cast<unsigned long long>(count)));
  if (load<u64>(&d[56]) != index_sum(d)) return bad_index("index checksum mismatch (a damaged index)");
  PageIndex idx;
  idx.image_size = load<u64>(&d[16]);
  idx.head_len = load<u64>(&d[24]);
  idx.head_sum = load<u64>(&d[32]);
  idx.layout_sum = load<u64>(&d[40]);
  if (idx.head_len > idx.image_size) return bad_index("index head longer than its image");
  idx.runs.resize(count);
  for (u64 i = 0; i < count; ++i) {
    const std::byte* e = &d[kHeaderSize + kEntrySize * i];
    IndexRun& r = idx.runs[i];
    r = {load<u64>(e), load<std::uint32_t>(e + 8), load<std::uint32_t>(e + 12), load<u64>(e + 16),
         load<u64>(e + 24)};
    if (std::string why = bad_entry(r, i ? &idx.runs[i - 1] : nullptr, idx.image_size); !why.empty())
      return bad_index(strprintf("index entry %llu: %s", static_cast<unsigned long long>(i), why.c_str()));
  }
  return idx;
}

Result<PageIndex> build_index(Source& src, Source& head, u64 image_size,
                              const std::function<void(std::uint64_t)>& progress) {
  IndexBuilder b(src);
  VerifyOptions vo;
  vo.format = Format::autodetect;
  vo.observer = &b;
  vo.progress = progress;
  StreamStats stats;
  if (Error e = verify(src, vo, stats)) return e;
  PageIndex idx;
  idx.image_size = image_size;
  idx.head_len = b.head().value_or(src.pos());
  idx.layout_sum = b.layout_sum();
  idx.runs = b.take_runs();
  if (Error e = sum_head(head, idx.head_len, idx.head_sum)) return e;
  return idx;
}

Result<PageIndex> read_index(const std::string& path) {
  OpenResult o = open_source(path, IoMode::pread);
  if (!o.source) return Error::io(0, "cannot open " + o.error.detail);
  std::vector<std::byte> d;
  for (;;) {
    const Bytes b = o.source->peek(1);
    if (b.empty()) break;
    const std::size_t n = std::min(b.size(), kMaxPeek);
    d.insert(d.end(), b.begin(), b.begin() + static_cast<std::ptrdiff_t>(n));
    o.source->consume(n);
  }
  if (o.source->error()) return Error::io(d.size(), path + ": read failed", o.source->error());
  Result<PageIndex> idx = PageIndex::parse(d);
  if (!idx.ok()) return Error::at(idx.error().code, 0, path + ": " + idx.error().detail);
  return idx;
}

Error check_index_head(const PageIndex& idx, Source& src, u64 image_size) {
  if (image_size != idx.image_size)
    return stale(0, strprintf("it was made for an image of %llu bytes, this one has %llu",
                              static_cast<unsigned long long>(idx.image_size),
                              static_cast<unsigned long long>(image_size)));
  u64 sum = 0;
  if (Error e = sum_head(src, idx.head_len, sum)) return e;
  if (sum != idx.head_sum) return stale(0, "the image's headers differ from the ones it was made for");
  return {};
}

ExtractResult extract_indexed(const PageIndex& idx, Source& src, int out_fd, const ExtractOptions& opt) {
  ExtractResult res;
  Sink out(out_fd);
  if ((res.error = detail::prepare_output(out))) return res;
  const u64 base = opt.elf ? kPageSize : 0;
  PfnSet written;
  res.error = copy_runs(select_runs(idx, opt.first_pfn, opt.last_pfn), src, out, base, written, res);
  res.pfns = written.size();
  res.paths = detail::paths_text(out);
  const std::vector<std::byte> notes =
      opt.elf && opt.core ? core_notes(opt.core->vcpus, opt.core->stats, written) : std::vector<std::byte>{};
  if (!res.error) res.error = detail::finish_output(out, written, base, opt.elf, res, notes);
  return res;
}

bool index_page(const PageIndex& idx, Source& src, u64 pfn, std::array<std::byte, 4096>& page,
                ExtractResult& res) {
  const IndexRun* r = idx.find(pfn);
  if (!r) return false;
  IndexRun one = *r;
  one.body_off += (pfn - r->pfn) * kPageSize;
  one.pfn = pfn;
  one.pages = 1;
  RecordCheck rc;
  if ((res.error = rc.check(src, one))) return false;
  if ((res.error = seek_to(src, r->body_off + (pfn - r->pfn) * kPageSize))) return false;
  const Bytes b = src.peek(kPageSize);
  if (b.size() < kPageSize) {
    res.error = stale(src.pos(), "the image ends before an indexed page");
    return false;
  }
  std::memcpy(page.data(), b.data(), kPageSize);
  src.consume(kPageSize);
  return true;
}

}  // namespace xsr
