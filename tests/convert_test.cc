// The legacy converter: golden outputs, every transport, exact reads,
// truncation and damage.
#include "xsr/convert.h"

#include <gtest/gtest.h>

#include <fstream>
#include <random>
#include <sstream>

#include "test_util.h"
#include "xsr/format.h"
#include "xsr/legacy.h"

namespace xsr::test {
namespace {

struct Conv {
  ConvertResult r;
  std::vector<std::byte> out;
};

// Converts `in` (through `src`) into a memfd and returns what was written.
Conv convert_into_memfd(Source& src, const ConvertOptions& o) {
  int fd = memfd_create("out", MFD_CLOEXEC);
  Conv c;
  {
    Sink sink(fd);
    c.r = convert_legacy(src, sink, o);
  }
  ::lseek(fd, 0, SEEK_SET);
  c.out = read_all_fd(fd);
  ::close(fd);
  return c;
}

Conv convert_bytes(const std::vector<std::byte>& in, const ConvertOptions& o) {
  auto src = memory_source(in);
  return convert_into_memfd(*src, o);
}

struct LegacyKind {
  bool hvm;
  unsigned toolstack;
  bool xl;
};

std::vector<LegacyKind> legacy_kinds() {
  std::vector<LegacyKind> v;
  for (bool hvm : {true, false})
    for (unsigned tw : {32u, 64u})
      for (bool xl : {false, true}) v.push_back({hvm, tw, xl});
  return v;
}

GenOptions legacy_gen(const LegacyKind& k, std::uint64_t size = 300 << 10) {
  GenOptions g;
  g.legacy = true;
  g.hvm = k.hvm;
  g.toolstack_width = k.toolstack;
  g.container = k.xl ? GenOptions::Container::xl : GenOptions::Container::libxc;
  g.size = size;
  g.batch = 50;
  g.seed = 11;
  return g;
}

ConvertOptions opts_for(const LegacyKind& k, bool libxl) {
  ConvertOptions o;
  o.width = k.toolstack;
  o.guest = k.hvm ? GuestType::hvm : GuestType::pv;
  o.xl = k.xl;
  o.libxl = libxl;
  return o;
}

std::string fixtures_dir() {
  const char* d = std::getenv("FIXTURES");
  return d ? d : "fixtures";
}

TEST(LegacyGoldens, EachConvertsToItsGoldenBytesOrItsError) {
  std::ifstream in(fixtures_dir() + "/legacy/expected.tsv");
  ASSERT_TRUE(in) << "fixtures/legacy/expected.tsv missing";
  std::string line;
  std::getline(in, line);  // header
  int rows = 0, compared = 0;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    std::vector<std::string> c;
    std::stringstream ss(line);
    std::string cell;
    while (std::getline(ss, cell, '\t')) c.push_back(cell);
    ASSERT_GE(c.size(), 9u) << line;
    SCOPED_TRACE(line);
    ++rows;
    ConvertOptions o;
    o.width = static_cast<unsigned>(std::stoul(c[1]));
    o.guest = c[2] == "pv" ? GuestType::pv : GuestType::hvm;
    o.libxl = c[3] == "libxl";
    o.skip_qemu = c[4] == "1";
    o.xl = c[5] == "1";
    const int want_exit = std::stoi(c[6]);
    auto input = read_file(fixtures_dir() + "/" + c[0]);
    Conv got = convert_bytes(input, o);
    EXPECT_EQ(exit_code(got.r.error.code), want_exit) << got.r.error.message();
    if (want_exit == 0 && c[7] != "-") {
      auto golden = read_file(fixtures_dir() + "/" + c[7]);
      EXPECT_EQ(got.out.size(), golden.size());
      EXPECT_TRUE(got.out == golden) << "output differs from " << c[7];
      ++compared;
    }
    if (want_exit != 0 && c[8] != "-") {
      EXPECT_NE(got.r.error.message().find(c[8]), std::string::npos)
          << "message: " << got.r.error.message() << "\nwant: " << c[8];
    }
  }
  EXPECT_GT(rows, 30);
  EXPECT_GT(compared, 15);
}

TEST(Detect, NamesWidthGuestAndHeaderOfEveryKind) {
  for (const LegacyKind& k : legacy_kinds()) {
    auto in = gen_bytes(legacy_gen(k));
    auto src = memory_source(in);
    LegacyGuess g = detect_legacy(*src);
    ASSERT_TRUE(g.ok) << g.why;
    EXPECT_EQ(g.width, k.toolstack);
    EXPECT_EQ(g.guest, k.hvm ? GuestType::hvm : GuestType::pv);
    EXPECT_EQ(g.xl, k.xl);
    EXPECT_EQ(src->pos(), 0u);  // nothing consumed
  }
  auto v2 = gen_bytes(GenOptions{});
  auto src = memory_source(v2);
  EXPECT_FALSE(detect_legacy(*src).ok);
}

TEST(Convert, EveryKindGivesAStreamThatVerifiesStrictly) {
  for (const LegacyKind& k : legacy_kinds()) {
    for (bool libxl : {false, true}) {
      SCOPED_TRACE(testing::Message()
                   << "hvm " << k.hvm << " width " << k.toolstack << " xl " << k.xl << " libxl " << libxl);
      GenOptions g = legacy_gen(k);
      auto in = gen_bytes(g);
      Conv c = convert_bytes(in, opts_for(k, libxl));
      ASSERT_FALSE(c.r.error) << c.r.error.message();
      EXPECT_EQ(c.r.in_bytes, in.size());
      EXPECT_EQ(c.r.out_bytes, c.out.size());
      StreamStats st;
      auto vs = memory_source(c.out);
      VerifyOptions vo;
      vo.format = Format::autodetect;
      vo.strict = true;
      Error e = verify(*vs, vo, st);
      ASSERT_FALSE(e) << e.message();
      EXPECT_TRUE(st.legacy_converted);
      EXPECT_EQ(st.bytes + c.r.tail_bytes, c.out.size());
      // Every page the generator wrote arrives (the VGA hole was dropped).
      EXPECT_EQ(st.pages, c.r.pages);
      EXPECT_EQ(st.libxc[libxc::STATIC_DATA_END].records, 1u);
    }
  }
}

TEST(Convert, StreamVersion2HasNoStaticDataEnd) {
  LegacyKind k{true, 64, false};
  auto in = gen_bytes(legacy_gen(k));
  ConvertOptions o = opts_for(k, true);
  o.stream_version = 2;
  Conv c = convert_bytes(in, o);
  ASSERT_FALSE(c.r.error);
  StreamStats st;
  ASSERT_FALSE(verify_bytes(c.out, Format::libxl, true, &st));
  EXPECT_EQ(st.libxc_version, 2u);
  EXPECT_EQ(st.libxc[libxc::STATIC_DATA_END].records, 0u);
}

class ConvertTransport : public ::testing::TestWithParam<std::tuple<Channel, IoMode>> {};

TEST_P(ConvertTransport, PipesAndSocketsGiveTheSameBytesAndLeaveTheRest) {
  auto [channel, mode] = GetParam();
  LegacyKind k{true, 64, false};
  auto in = gen_bytes(legacy_gen(k, 2 << 20));
  const Conv want = convert_bytes(in, opts_for(k, true));
  ASSERT_FALSE(want.r.error);
  auto trailer = bytes_of("xl migrate: ready");
  auto all = in;
  all.insert(all.end(), trailer.begin(), trailer.end());
  int fds[2];
  make_channel(channel, fds);
  {
    Feeder f(fds[1], all, 4099);
    OpenResult r = source_from_fd(fds[0], false, mode);
    // Output into a pipe as libxl runs it, drained by a thread.
    int op[2];
    ASSERT_EQ(::pipe2(op, O_CLOEXEC), 0);
    std::vector<std::byte> got;
    std::thread reader([&] { got = read_all_fd(op[0]); });
    {
      Sink sink(op[1]);
      ConvertResult cr = convert_legacy(*r.source, sink, opts_for(k, true));
      EXPECT_FALSE(cr.error) << cr.error.message();
    }
    ::close(op[1]);
    reader.join();
    ::close(op[0]);
    EXPECT_TRUE(got == want.out);
    r.source.reset();
    EXPECT_TRUE(read_all_fd(fds[0]) == trailer);
  }
  ::close(fds[0]);
}

INSTANTIATE_TEST_SUITE_P(PipesAndSockets, ConvertTransport,
                         ::testing::Combine(::testing::Values(Channel::pipe, Channel::socketpair),
                                            ::testing::Values(IoMode::automatic, IoMode::read)));

TEST(ConvertFiles, FileToFileAtAnOffsetUsesTheKernelAndEndsAfterTheStream) {
  LegacyKind k{false, 64, false};
  auto in = gen_bytes(legacy_gen(k, 1 << 20));
  const Conv want = convert_bytes(in, opts_for(k, false));
  // Both files on one file system: copy_file_range does not cross them.
  char ipath[] = "/tmp/xsr-convert-in-XXXXXX";
  int ifd = ::mkstemp(ipath);
  ASSERT_GE(ifd, 0);
  ::unlink(ipath);
  std::vector<std::byte> pre(777, std::byte{0x5a});
  ASSERT_EQ(::write(ifd, pre.data(), pre.size()), 777);
  ASSERT_EQ(::write(ifd, in.data(), in.size()), static_cast<ssize_t>(in.size()));
  ASSERT_EQ(::write(ifd, "TAIL", 4), 4);
  ::lseek(ifd, 777, SEEK_SET);
  char path[] = "/tmp/xsr-convert-XXXXXX";
  int ofd = ::mkstemp(path);
  ASSERT_GE(ofd, 0);
  ::unlink(path);
  ASSERT_EQ(::write(ofd, "HEAD", 4), 4);  // an output already positioned
  OpenResult r = source_from_fd(ifd, false, IoMode::pread);
  ConvertResult cr;
  std::string paths;
  {
    Sink sink(ofd);
    cr = convert_legacy(*r.source, sink, opts_for(k, false));
    for (auto& [how, n] : sink.paths()) paths += how + " ";
  }
  ASSERT_FALSE(cr.error) << cr.error.message();
  ASSERT_EQ(r.source->finish(), 0);
  EXPECT_EQ(::lseek(ifd, 0, SEEK_CUR), static_cast<off_t>(777 + in.size()));
  EXPECT_NE(paths.find("copy_file_range"), std::string::npos) << paths;
  ::lseek(ofd, 0, SEEK_SET);
  auto got = read_all_fd(ofd);
  ASSERT_EQ(got.size(), 4 + want.out.size());
  EXPECT_TRUE(std::equal(want.out.begin(), want.out.end(), got.begin() + 4));
  ::close(ifd);
  ::close(ofd);
}

TEST(ConvertTruncation, EveryCutIsAStreamErrorNotASuccess) {
  for (const LegacyKind& k : {LegacyKind{true, 64, true}, LegacyKind{false, 32, false}}) {
    GenOptions g = legacy_gen(k, 64 << 10);
    g.batch = 8;
    auto in = gen_bytes(g);
    std::mt19937_64 rng(3);
    for (std::size_t n = 0; n < in.size(); n += 1 + rng() % 61) {
      auto src = memory_source(Bytes(in.data(), n));
      Conv c = convert_into_memfd(*src, opts_for(k, true));
      ASSERT_TRUE(c.r.error) << "prefix " << n << " converted";
      ASSERT_EQ(c.r.error.code, Errc::truncated) << "prefix " << n << ": " << c.r.error.message();
      ASSERT_EQ(exit_code(c.r.error.code), 1);
    }
  }
}

TEST(ConvertMutation, RandomDamageGetsAVerdictNeverACrash) {
  LegacyKind k{false, 64, false};
  GenOptions g = legacy_gen(k, 64 << 10);
  g.batch = 8;
  const auto in = gen_bytes(g);
  std::mt19937_64 rng(99);
  for (int i = 0; i < 3000; ++i) {
    auto m = in;
    for (int f = 0; f < 1 + static_cast<int>(rng() % 3); ++f) {
      std::size_t at = rng() % std::min<std::size_t>(m.size(), 8192);
      m[at] = static_cast<std::byte>(rng());
    }
    Conv c = convert_bytes(m, opts_for(k, rng() % 2));
    if (c.r.error) {
      ASSERT_FALSE(c.r.error.message().empty());
      ASSERT_NE(exit_code(c.r.error.code), 0);
    } else {
      // Whatever converts must be a stream our verifier accepts.
      ASSERT_FALSE(verify_bytes(c.out, Format::autodetect)) << "mutation " << i;
    }
  }
}

// A legacy stream by hand: 64-bit toolstack, HVM, with the given chunks.
std::vector<std::byte> hvm_stream(const std::vector<std::byte>& chunks) {
  std::vector<std::byte> s;
  auto put = [&s](const void* p, std::size_t n) {
    auto* b = static_cast<const std::byte*>(p);
    s.insert(s.end(), b, b + n);
  };
  std::uint64_t p2m = 0x100;
  put(&p2m, 8);
  put(chunks.data(), chunks.size());
  return s;
}

TEST(ConvertDefects, ABatchOfOnlyDroppedEntriesWritesNoRecord) {
  std::vector<std::byte> chunks;
  auto put = [&chunks](const void* p, std::size_t n) {
    auto* b = static_cast<const std::byte*>(p);
    chunks.insert(chunks.end(), b, b + n);
  };
  std::int32_t two = 2, end = 0;
  std::uint64_t dropped = legacy::kDropped;
  put(&two, 4);
  put(&dropped, 8);
  put(&dropped, 8);
  put(&end, 4);
  std::uint64_t magic[3] = {1, 2, 3};
  put(magic, sizeof magic);
  std::uint32_t ctx = 8;
  put(&ctx, 4);
  chunks.insert(chunks.end(), 8, std::byte{0x11});
  ConvertOptions o;
  o.width = 64;
  o.guest = GuestType::hvm;
  o.skip_qemu = true;
  Conv c = convert_bytes(hvm_stream(chunks), o);
  ASSERT_FALSE(c.r.error) << c.r.error.message();
  StreamStats st;
  // The plain rules: the 8-byte HVM context is no blob the hypervisor loads.
  ASSERT_FALSE(verify_bytes(c.out, Format::libxc, false, &st));
  EXPECT_EQ(st.libxc[libxc::PAGE_DATA].records, 0u);
  EXPECT_EQ(c.r.batches, 1u);
}

TEST(ConvertHostile, CountsFromTheStreamNeverAllocateInProportion) {
  // A PV stream claiming a p2m of 2^40 pfns on a few bytes of input.
  std::vector<std::byte> s(8 + 8 + 4 + 8 + 0x1430 + 64, std::byte{0});
  std::uint64_t p2m = std::uint64_t{1} << 40, marker = ~std::uint64_t{0};
  std::memcpy(s.data(), &p2m, 8);
  std::memcpy(s.data() + 8, &marker, 8);
  std::uint32_t total = 8 + 0x1430, size = 0x1430;
  std::memcpy(s.data() + 16, &total, 4);
  std::memcpy(s.data() + 20, "vcpu", 4);
  std::memcpy(s.data() + 24, &size, 4);
  ConvertOptions o;
  o.width = 64;
  o.guest = GuestType::pv;
  Conv c = convert_bytes(s, o);
  ASSERT_TRUE(c.r.error);
  EXPECT_NE(c.r.error.message().find("p2m size"), std::string::npos) << c.r.error.message();
  // A plausible but large p2m on a short input: truncation, not memory.
  p2m = std::uint64_t{1} << 31;
  std::memcpy(s.data(), &p2m, 8);
  c = convert_bytes(s, o);
  ASSERT_TRUE(c.r.error);
  EXPECT_EQ(c.r.error.code, Errc::truncated) << c.r.error.message();
}

}  // namespace
}  // namespace xsr::test
