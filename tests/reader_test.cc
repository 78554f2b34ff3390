// The record reader: generated streams walked on every source kind, every
// page checked against the generator, hostile lengths that must not allocate.
#include "xsr/reader.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <new>

#include "test_util.h"

// Counts what operator new hands out, so a test can assert that a hostile
// length allocated nothing in proportion to it. Out of line, so that the
// compiler does not pair an inlined free() with the standard operator new.
namespace {
std::atomic<std::uint64_t> g_allocated{0};
}  // namespace

[[gnu::noinline]] void* operator new(std::size_t n) {
  g_allocated.fetch_add(n, std::memory_order_relaxed);
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
[[gnu::noinline]] void* operator new[](std::size_t n) { return operator new(n); }
[[gnu::noinline]] void operator delete(void* p) noexcept { std::free(p); }
[[gnu::noinline]] void operator delete[](void* p) noexcept { std::free(p); }
[[gnu::noinline]] void operator delete(void* p, std::size_t) noexcept { std::free(p); }
[[gnu::noinline]] void operator delete[](void* p, std::size_t) noexcept { std::free(p); }

namespace xsr::test {
namespace {

using u64 = std::uint64_t;

constexpr u64 kSeed = 0x5eed;
constexpr std::size_t kStreamHeaders = sizeof(libxc::ImageHeader) + sizeof(libxc::DomainHeader);

struct Generated {
  std::vector<std::byte> bytes;
  GenResult gen;
};

// A bare libxc HVM stream without checkpoints, so every page is sent once
// and every data page carries {pfn, seed, 1}. 300 pfns a record: page runs end mid-record.
const Generated& stream() {
  static const Generated g = [] {
    GenOptions o;
    o.size = 6 << 20;  // as expect_page's
    o.seed = kSeed;
    o.batch = 300;
    int fd = memfd_create("xsr-reader", MFD_CLOEXEC);
    Generated r;
    r.gen = generate(fd, o);
    ::lseek(fd, 0, SEEK_SET);
    r.bytes = read_all_fd(fd);
    ::close(fd);
    return r;
  }();
  return g;
}

struct RecordAt {
  u64 offset;
  std::uint32_t type;
  bool operator==(const RecordAt&) const = default;
};

// The records of a libxc stream, found without the reader.
std::vector<RecordAt> records_of(const std::vector<std::byte>& d) {
  std::vector<RecordAt> out;
  for (u64 off = kStreamHeaders; off + sizeof(RecordHeader) <= d.size();) {
    auto h = load<RecordHeader>(d.data() + off);
    out.push_back({off, h.type});
    if (h.type == libxc::END) break;
    off += sizeof h + padded(h.length);
  }
  return out;
}

enum class PageMode { each_page, runs_of_7, skip };

struct Walked {
  std::vector<RecordAt> records;
  u64 pages = 0;
  u64 pfns = 0;
  u64 bytes = 0;
};

// Checks one page against what the generator wrote for pfn (its special
// pages, the HVM guest's rings and identity pagetable, hold their own).
void expect_page(PageDataReader::Page p, u64 pfn) {
  GenOptions o;
  o.size = 6 << 20;
  o.seed = kSeed;
  if (gen_pfn_special(o, pfn)) return;
  const u64 stamp[3] = {pfn, kSeed, 1};
  ASSERT_EQ(std::memcmp(p.data(), stamp, sizeof stamp), 0) << "pfn " << pfn;
  std::byte want[kPageSize];
  gen_page(pfn, kSeed, want);
  ASSERT_EQ(std::memcmp(p.data(), want, kPageSize), 0) << "pfn " << pfn;
}

// Walks a bare libxc stream with the reader, reading or skipping the pages.
void walk(Source& src, PageMode mode, Walked& w) {
  RecordReader rd(src);
  libxc::ImageHeader ih;
  libxc::DomainHeader dh;
  ASSERT_FALSE(rd.read_struct(ih, "image header"));
  ASSERT_FALSE(rd.read_struct(dh, "domain header"));
  std::vector<u64> data_pfns;
  for (;;) {
    RecordHeader h;
    u64 off = 0;
    Error e = rd.read_header(Layer::libxc, h, off);
    ASSERT_FALSE(e) << e.message();
    ASSERT_EQ(rd.index(), w.records.size());
    ASSERT_TRUE(rd.in_record());
    w.records.push_back({off, h.type});
    rd.expect_body(h, h.type != libxc::END);
    bool pad_ok = false;
    if (h.type == libxc::PAGE_DATA) {
      PageDataReader pd(rd);
      ASSERT_FALSE(pd.begin(h.length));
      ASSERT_TRUE(pd.pfns_fit());
      data_pfns.clear();
      for (;;) {
        Bytes c;
        ASSERT_FALSE(pd.next_pfns(c));
        if (c.empty()) break;
        ASSERT_EQ(c.size() % 8, 0u);
        for (std::size_t i = 0; i < c.size(); i += 8) {
          const u64 pfn = load<u64>(c.data() + i);
          if (libxc::page_type_has_data(static_cast<unsigned>(pfn >> libxc::kPfnTypeShift)))
            data_pfns.push_back(pfn & libxc::kPfnMask);
        }
      }
      ASSERT_EQ(pd.pfns_read(), pd.header().count);
      w.pfns += pd.pfns_read();
      std::size_t i = 0;
      if (mode == PageMode::each_page) {
        e = pd.for_each_page([&](PageDataReader::Page p) {
          ASSERT_LT(i, data_pfns.size());
          expect_page(p, data_pfns[i++]);
        });
        ASSERT_FALSE(e) << e.message();
      } else if (mode == PageMode::runs_of_7) {
        for (;;) {
          Bytes run;
          e = pd.next_pages(run, 7);
          ASSERT_FALSE(e) << e.message();
          if (run.empty()) break;
          ASSERT_EQ(run.size() % kPageSize, 0u);
          ASSERT_LE(run.size(), 7 * kPageSize);
          for (std::size_t p = 0; p < run.size(); p += kPageSize) {
            ASSERT_LT(i, data_pfns.size());
            expect_page(PageDataReader::Page(run.data() + p, kPageSize), data_pfns[i++]);
          }
        }
      } else {
        ASSERT_FALSE(pd.skip_pages());
        i = data_pfns.size();
      }
      ASSERT_EQ(i, data_pfns.size());
      w.pages += i;
      ASSERT_FALSE(pd.end(pad_ok));
    } else {
      ASSERT_FALSE(rd.body_prefix(h.length, {}, pad_ok));
    }
    EXPECT_TRUE(pad_ok);
    EXPECT_EQ(rd.end_record(), sizeof h + padded(h.length));
    EXPECT_FALSE(rd.in_record());
    if (h.type == libxc::END) break;
  }
  w.bytes = rd.pos();
}

enum class Kind { memory, pread, mmap, uring_pipe, read_pipe };

class GeneratedStream : public ::testing::TestWithParam<std::tuple<Kind, PageMode>> {};

TEST_P(GeneratedStream, RecordsOffsetsAndEveryPageMatchTheGenerator) {
  auto [kind, mode] = GetParam();
  const Generated& g = stream();
  ASSERT_FALSE(g.gen.error) << g.gen.error.detail;
  ASSERT_EQ(g.bytes.size(), g.gen.bytes);
  const auto want = records_of(g.bytes);
  ASSERT_EQ(want.size(), g.gen.records);
  auto trailer = bytes_of("bytes after END belong to the caller");
  Walked w;

  if (kind == Kind::memory) {
    auto src = memory_source(g.bytes);
    walk(*src, mode, w);
  } else if (kind == Kind::pread || kind == Kind::mmap) {
    // A stream starting at an odd file offset: offsets count from there.
    int fd = memfd_with(g.bytes, 4097, trailer.size());
    OpenResult r = source_from_fd(fd, false, kind == Kind::pread ? IoMode::pread : IoMode::mmap);
    ASSERT_TRUE(r.source) << r.error.detail;
    EXPECT_EQ(r.source->kind(), kind == Kind::pread ? "pread" : "mmap");
    walk(*r.source, mode, w);
    ASSERT_EQ(r.source->finish(), 0);
    EXPECT_EQ(::lseek(fd, 0, SEEK_CUR), static_cast<off_t>(4097 + g.bytes.size()));
    ::close(fd);
  } else {
    auto all = g.bytes;
    all.insert(all.end(), trailer.begin(), trailer.end());
    int fds[2];
    make_channel(Channel::pipe, fds);
    {
      // Writes of 1021 bytes: headers, pfn arrays and pages all straddle.
      Feeder f(fds[1], all, 1021);
      OpenResult r =
          source_from_fd(fds[0], false, kind == Kind::uring_pipe ? IoMode::automatic : IoMode::read);
      ASSERT_TRUE(r.source) << r.error.detail;
      if (kind == Kind::uring_pipe && r.source->kind() != "io_uring") {
        r.source.reset();
        (void)read_all_fd(fds[0]);
        ::close(fds[0]);
        GTEST_SKIP() << r.note;
      }
      walk(*r.source, mode, w);
      r.source.reset();
      EXPECT_TRUE(read_all_fd(fds[0]) == trailer);
    }
    ::close(fds[0]);
  }
  if (HasFatalFailure()) return;
  EXPECT_TRUE(w.records == want);
  EXPECT_EQ(w.bytes, g.gen.bytes);
  EXPECT_EQ(w.pages, g.gen.pages);
  EXPECT_EQ(w.pfns, g.gen.pfn_range);
}

std::string case_name(const ::testing::TestParamInfo<GeneratedStream::ParamType>& info) {
  static const char* const kinds[] = {"Memory", "Pread", "Mmap", "UringPipe", "ReadPipe"};
  static const char* const modes[] = {"EachPage", "RunsOf7", "SkipPages"};
  return std::string(kinds[static_cast<int>(std::get<0>(info.param))]) +
         modes[static_cast<int>(std::get<1>(info.param))];
}

INSTANTIATE_TEST_SUITE_P(EverySource, GeneratedStream,
                         ::testing::Combine(::testing::Values(Kind::memory, Kind::pread, Kind::mmap,
                                                              Kind::uring_pipe, Kind::read_pipe),
                                            ::testing::Values(PageMode::each_page, PageMode::runs_of_7,
                                                              PageMode::skip)),
                         case_name);

// ---- hand-made records ------------------------------------------------------

// Zeroed stream headers, then one record: header h, body_len bytes of body,
// then `after` bytes of 0x11.
std::vector<std::byte> one_record(RecordHeader h, const void* body, std::size_t body_len, std::size_t after) {
  std::vector<std::byte> s(kStreamHeaders + sizeof h + body_len + after, std::byte{0x11});
  std::memset(s.data(), 0, kStreamHeaders);
  std::memcpy(s.data() + kStreamHeaders, &h, sizeof h);
  if (body_len) std::memcpy(s.data() + kStreamHeaders + sizeof h, body, body_len);
  return s;
}

// A reader on a one_record() stream, at its record's body; `ok` says the
// headers were there.
struct AtBody {
  explicit AtBody(Source& src) : rd(src) {
    ok = !rd.skip(kStreamHeaders, "stream headers") && !rd.read_header(Layer::libxc, h, off);
  }
  RecordReader rd;
  RecordHeader h{};
  u64 off = 0;
  bool ok = false;
};

// The hostile record on every kind of source: memory, a file, a pipe.
template <typename F>
void on_each_source(const std::vector<std::byte>& data, F&& f) {
  {
    auto src = memory_source(data);
    f(*src);
  }
  {
    int fd = memfd_with(data);
    OpenResult r = source_from_fd(fd, false, IoMode::pread);
    f(*r.source);
    ::close(fd);
  }
  int fds[2];
  make_channel(Channel::pipe, fds);
  {
    Feeder feed(fds[1], data);
    {
      OpenResult r = source_from_fd(fds[0], false, IoMode::automatic);
      f(*r.source);
    }
    (void)read_all_fd(fds[0]);  // whatever a failed check left, so the feeder ends
  }
  ::close(fds[0]);
}

TEST(PageDataReader, AHugeLengthOnAShortInputIsTruncationNotAllocation) {
  enum Step { pfns, read_pages, skip_pages };
  struct Case {
    std::uint32_t len, count;
    std::size_t after;  // body bytes the input holds after the header
    Step step;
  };
  const std::uint32_t pages_4g = 8 + kPageSize * ((1u << 20) - 1);
  const Case cases[] = {
      // 4 GiB - 8 of body whose count fits it exactly: the pfn array alone
      // claims 4 GiB - 16 bytes, and the input ends after 64 of them.
      {0xfffffff8u, (0xfffffff8u - 8) / 8, 64, pfns},
      // No pfns, then (1 Mi - 1) pages: about 4 GiB of page bodies.
      {pages_4g, 0, 3 * kPageSize, read_pages},
      {pages_4g, 0, 3 * kPageSize, skip_pages},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(testing::Message() << "length " << c.len << ", step " << c.step);
    libxc::PageDataHeader ph{c.count, 0};
    auto data = one_record({libxc::PAGE_DATA, c.len}, &ph, sizeof ph, c.after);
    on_each_source(data, [&](Source& src) {
      AtBody at(src);
      ASSERT_TRUE(at.ok);
      const u64 before = g_allocated.load();
      PageDataReader pd(at.rd);
      ASSERT_FALSE(pd.begin(at.h.length));
      EXPECT_TRUE(pd.pfns_fit());
      Bytes chunk;
      Error e = c.step == pfns         ? pd.next_pfns(chunk)
                : c.step == read_pages ? pd.for_each_page([](PageDataReader::Page) {})
                                       : pd.skip_pages();
      EXPECT_LT(g_allocated.load() - before, 4096u) << "allocated for a hostile length";
      EXPECT_TRUE(chunk.empty());
      EXPECT_EQ(e.code, Errc::truncated) << e.message();
      EXPECT_EQ(e.offset, at.off + sizeof at.h);
      EXPECT_EQ(e.record, 0u);
      EXPECT_EQ(e.type, libxc::PAGE_DATA);
      EXPECT_EQ(e.detail, "stream truncated: PAGE_DATA body needs " + std::to_string(c.len) +
                              " bytes, input ended after " + std::to_string(8 + c.after));
    });
  }
}

TEST(PageDataReader, ACountTheBodyCannotHoldIsNeverTrusted) {
  libxc::PageDataHeader ph[2] = {{0xffffffffu, 0}, {0, 0}};
  auto data = one_record({libxc::PAGE_DATA, 16}, ph, sizeof ph, 0);
  auto src = memory_source(data);
  AtBody at(*src);
  ASSERT_TRUE(at.ok);
  PageDataReader pd(at.rd);
  ASSERT_FALSE(pd.begin(at.h.length));
  EXPECT_FALSE(pd.pfns_fit());
  const u64 before = g_allocated.load();
  Bytes c;
  Error e = pd.next_pfns(c);
  EXPECT_EQ(e.code, Errc::bad_record);
  EXPECT_EQ(e.offset, at.off);
  EXPECT_NE(e.detail.find("count 4294967295 needs 34359738360 bytes"), std::string::npos) << e.detail;
  Bytes run;
  EXPECT_EQ(pd.next_pages(run).code, Errc::bad_record);
  EXPECT_LT(g_allocated.load() - before, 4096u);
  // The record can still be stepped over whole.
  bool pad_ok = false;
  ASSERT_FALSE(pd.end(pad_ok));
  EXPECT_TRUE(pad_ok);
  EXPECT_EQ(at.rd.end_record(), 24u);
}

TEST(PageDataReader, RefusesPagesThatAreNotWholePages) {
  libxc::PageDataHeader ph{0, 0};
  auto data = one_record({libxc::PAGE_DATA, 8 + 100}, &ph, sizeof ph, 104);
  auto src = memory_source(data);
  AtBody at(*src);
  ASSERT_TRUE(at.ok);
  PageDataReader pd(at.rd);
  ASSERT_FALSE(pd.begin(at.h.length));
  Bytes run;
  Error e = pd.next_pages(run);
  EXPECT_EQ(e.code, Errc::bad_record);
  EXPECT_NE(e.detail.find("100 bytes after its 0 pfn entries"), std::string::npos) << e.detail;
}

TEST(RecordReader, ErrorsNameTheRecordTheyHappenIn) {
  auto data = one_record({libxc::X86_TSC_INFO, 24}, nullptr, 0, 10);
  auto src = memory_source(data);
  AtBody at(*src);
  ASSERT_TRUE(at.ok);
  EXPECT_EQ(at.off, kStreamHeaders);
  Bytes view;
  bool pad_ok;
  Error e = at.rd.body_whole(at.h.length, view, pad_ok);
  EXPECT_EQ(e.code, Errc::truncated);
  EXPECT_EQ(e.offset, kStreamHeaders + 8);
  EXPECT_EQ(e.record, 0u);
  EXPECT_EQ(e.layer, Layer::libxc);
  EXPECT_EQ(e.type, libxc::X86_TSC_INFO);
  EXPECT_EQ(e.detail, "stream truncated: record body needs 24 bytes, input ended after 10");

  // Outside a record (a truncated header is not a record yet), no record.
  auto src2 = memory_source(Bytes(data.data(), kStreamHeaders + 5));
  RecordReader rd2(*src2);
  ASSERT_FALSE(rd2.skip(kStreamHeaders, "stream headers"));
  RecordHeader h;
  u64 off;
  e = rd2.read_header(Layer::libxl, h, off);
  EXPECT_EQ(e.code, Errc::truncated);
  EXPECT_EQ(e.record, kNoRecord);
  EXPECT_EQ(e.detail, "stream truncated: record header needs 8 bytes, input ended after 5");
}

TEST(RecordReader, AHugeBodyIsSkippedOrScannedWithoutAllocation) {
  auto data = one_record({0x80000001u, 0xfffffff0u}, nullptr, 0, 4096);
  for (bool scan : {false, true}) {
    on_each_source(data, [&](Source& src) {
      AtBody at(src);
      ASSERT_TRUE(at.ok);
      const u64 before = g_allocated.load();
      std::byte prefix[64];
      bool pad_ok;
      Bytes view;
      EXPECT_EQ(at.rd.body_whole(at.h.length, view, pad_ok).code, Errc::too_large);
      u64 seen = 0;
      auto each = [&](Bytes c, u64 body_off) {
        EXPECT_EQ(body_off, seen);
        seen += c.size();
      };
      Error e = scan ? at.rd.body_scan(at.h.length, prefix, each, pad_ok)
                     : at.rd.body_prefix(at.h.length, prefix, pad_ok);
      EXPECT_LT(g_allocated.load() - before, 4096u);
      EXPECT_EQ(e.code, Errc::truncated) << e.message();
      EXPECT_EQ(e.offset, at.off + 8);
      EXPECT_EQ(e.detail, "stream truncated: record body needs 4294967280 bytes, input ended after 4096");
      EXPECT_EQ(prefix[63], std::byte{0x11});
      EXPECT_EQ(seen, 0u);  // chunks are whole: the 1 MiB one never came
    });
  }
}

TEST(RecordReader, ScansALargeBodyInOrderWithItsPrefixAndPadding) {
  const std::uint32_t len = (3u << 20) + 3;
  std::vector<std::byte> body(len + 5);
  for (std::size_t i = 0; i < body.size(); ++i) body[i] = static_cast<std::byte>(i * 131 + 7);
  auto data = one_record({0x80000007u, len}, body.data(), body.size(), 0);
  auto src = memory_source(data);
  AtBody at(*src);
  ASSERT_TRUE(at.ok);
  std::byte prefix[16];
  u64 seen = 0;
  bool pad_ok = true;
  Error e = at.rd.body_scan(
      len, prefix,
      [&](Bytes c, u64 body_off) {
        EXPECT_EQ(body_off, seen);
        EXPECT_LE(c.size(), kMaxPeek);
        EXPECT_EQ(std::memcmp(c.data(), body.data() + body_off, c.size()), 0);
        seen += c.size();
      },
      pad_ok);
  ASSERT_FALSE(e) << e.message();
  EXPECT_EQ(seen, len);
  EXPECT_EQ(std::memcmp(prefix, body.data(), sizeof prefix), 0);
  EXPECT_FALSE(pad_ok);  // the padding holds non-zero bytes of the pattern
  EXPECT_EQ(at.rd.end_record(), 8 + padded(len));
}

}  // namespace
}  // namespace xsr::test
