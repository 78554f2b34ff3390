// xsr index and the extracts that read through it, as users run them: the
// indexed output equals the scan's byte for byte; a stale, foreign or
// compressed input is refused with one line; --salvage and a --pfn range
// that selects nothing.
#include <sys/stat.h>

#include "cli_util.h"

namespace xsr::test {
namespace {

class IndexCli : public TempDirTest {
 protected:
  IndexCli() : TempDirTest("index-cli") {}
  // A bare libxc HVM image of about 8 MiB (pfns 0-2043, hole 0xa0-0xbf).
  std::string make_image(const std::string& name, std::vector<std::string> extra = {},
                         const char* seed = "7") {
    std::vector<std::string> argv{xsr_bin(), "gen", "--size", "8M", "--seed", seed, "-o", path(name)};
    argv.insert(argv.end(), extra.begin(), extra.end());
    Result r = run(argv);
    EXPECT_EQ(r.exit, 0) << r.err;
    return path(name);
  }
  bool exists(const std::string& name) {
    struct stat st;
    return ::stat(path(name).c_str(), &st) == 0;
  }
};

TEST_F(IndexCli, IndexThenPageEqualsTheScan) {
  const std::string img = make_image("g.bin");
  Result ix = run({xsr_bin(), "index", img});
  ASSERT_EQ(ix.exit, 0) << ix.err;
  EXPECT_EQ(ix.err,
            "xsr index: " + img + " -> " + img + ".xsrindex: 2012 pages in 2012 runs, index 64448 bytes\n");
  for (const char* pfn : {"0", "0x9f", "0xc0", "0x100", "0x7f0", "2043"}) {
    Result a = run({xsr_bin(), "extract", "-v", img, "--page", pfn});
    Result b = run({xsr_bin(), "extract", "-v", "--no-index", img, "--page", pfn});
    ASSERT_EQ(a.exit, 0) << a.err;
    ASSERT_EQ(b.exit, 0) << b.err;
    EXPECT_EQ(a.out, b.out) << pfn;
    EXPECT_NE(a.err.find("pages read through the index " + img + ".xsrindex"), std::string::npos) << a.err;
    EXPECT_NE(b.err.find("no page index used: scanning the image"), std::string::npos) << b.err;
  }
  Result missing = run({xsr_bin(), "extract", img, "--page", "0xa0"});
  EXPECT_EQ(missing.exit, 1);
  EXPECT_EQ(missing.err, "xsr extract: " + img + ": pfn 0xa0 has no page body in the image\n");
  Result check = run({xsr_bin(), "index", "--check", img});
  EXPECT_EQ(check.exit, 0);
  EXPECT_EQ(check.err, "xsr index: " + img + ".xsrindex: up to date\n");
}

TEST_F(IndexCli, PfnRangeAndElfThroughTheIndexEqualTheScan) {
  const std::string img = make_image("g.bin", {"--checkpoints", "2"});
  ASSERT_EQ(run({xsr_bin(), "index", "-q", img, "-o", path("other.idx")}).exit, 0);
  for (std::vector<std::string> what :
       {std::vector<std::string>{"--pfn", "0x50-0x600"}, {"--elf"}, {"--elf", "--pfn", "0x90-0x1ff"}, {}}) {
    std::vector<std::string> a{xsr_bin(), "extract", img, "--index", path("other.idx"), "-o", path("a")};
    std::vector<std::string> b{xsr_bin(), "extract", img, "--no-index", "-o", path("b")};
    a.insert(a.end(), what.begin(), what.end());
    b.insert(b.end(), what.begin(), what.end());
    Result ra = run(a), rb = run(b);
    ASSERT_EQ(ra.exit, 0) << ra.err;
    ASSERT_EQ(rb.exit, 0) << rb.err;
    EXPECT_EQ(read_file(path("a")), read_file(path("b")));
    EXPECT_GT(read_file(path("a")).size(), 4096u);
  }
}

TEST_F(IndexCli, AStaleOrForeignIndexIsRefused) {
  const std::string img = make_image("g.bin");
  ASSERT_EQ(run({xsr_bin(), "index", "-q", img}).exit, 0);
  // Same headers, same record lengths, another pfn order.
  const std::string other = make_image("h.bin", {}, "8");
  Result r = run({xsr_bin(), "extract", other, "--index", img + ".xsrindex", "--page", "0x100"});
  EXPECT_EQ(r.exit, 1);
  EXPECT_EQ(r.err,
            "xsr extract: " + other + ": the index " + img +
                ".xsrindex is stale: the PAGE_DATA record at offset 0x138 holds other pfns (rebuild it "
                "with 'xsr index', or pass --no-index)\n");
  ASSERT_EQ(::truncate(img.c_str(), 5000000), 0);
  r = run({xsr_bin(), "extract", img, "-o", path("x.raw")});
  EXPECT_EQ(r.exit, 1);
  EXPECT_EQ(r.err, "xsr extract: " + img + ": the index " + img +
                       ".xsrindex is stale: it was made for an image of 8266352 bytes, this one has 5000000 "
                       "(rebuild it with 'xsr index', or pass --no-index)\n");
  EXPECT_FALSE(exists("x.raw"));
  r = run({xsr_bin(), "extract", img, "--index", path("g.bin"), "--page", "0"});
  EXPECT_EQ(r.exit, 1);
  EXPECT_EQ(r.err, "xsr extract: " + img + ": not an xsr index (no XSRINDEX header)\n");
}

TEST_F(IndexCli, CompressedImagesPipesAndLegacyImagesAreRefused) {
  const std::string z = make_image("g.bin.zst", {"--compress", "zstd"});
  Result r = run({xsr_bin(), "index", z});
  EXPECT_EQ(r.exit, 1);
  EXPECT_EQ(r.err,
            "xsr index: " + z +
                ": a zstd-compressed image: the page index needs a plain image file (decompress it first)\n");
  EXPECT_FALSE(exists("g.bin.zst.xsrindex"));
  r = run({xsr_bin(), "index", "-"});
  EXPECT_EQ(r.exit, 1);
  EXPECT_EQ(r.err,
            "xsr index: -: the page index needs a plain image file, not standard input or a descriptor\n");
  r = run({xsr_bin(), "index", "/dev/null"});
  EXPECT_EQ(r.exit, 1);
  EXPECT_EQ(r.err,
            "xsr index: /dev/null: the page index needs a plain image file, not a pipe, socket or device\n");
  const std::string legacy = fixture("sample/legacy-hvm.xl.bin");
  r = run({xsr_bin(), "index", legacy, "-o", path("l.idx")});
  EXPECT_EQ(r.exit, 1);
  EXPECT_NE(r.err.find("a legacy (Xen <= 4.5) image, not a v2/v3 stream; convert it first"),
            std::string::npos)
      << r.err;
}

TEST_F(IndexCli, SalvageWritesExactlyThePagesBeforeTheCut) {
  const std::string img = make_image("g.bin", {"--order", "sequential"});
  ASSERT_EQ(run({xsr_bin(), "extract", img, "-o", path("full.raw")}).exit, 0);
  ASSERT_EQ(::truncate(img.c_str(), 5000000), 0);
  // The cut is 224 pages into the second PAGE_DATA (992 + 224 = 1216 pages).
  Result r = run({xsr_bin(), "extract", "--salvage", img, "-o", path("s.raw")});
  EXPECT_EQ(r.exit, 1);
  EXPECT_EQ(r.err,
            "xsr extract: " + img +
                ": offset 0x3e2150, record 4 (PAGE_DATA): stream truncated: PAGE_DATA body needs 4186088 "
                "bytes, input ended after 928240\n"
                "xsr extract: " +
                img + ": salvaged 1216 pages (4.8 MiB) before the damage\n");
  const auto full = read_file(path("full.raw")), part = read_file(path("s.raw"));
  ASSERT_EQ(part.size(), 1248u * 4096);  // up to the last salvaged pfn
  const std::vector<std::byte> zero(4096);
  std::size_t kept = 0;
  for (std::size_t pfn = 0; pfn < 1248; ++pfn) {
    const bool same = std::memcmp(part.data() + pfn * 4096, full.data() + pfn * 4096, 4096) == 0;
    const bool hole = std::memcmp(part.data() + pfn * 4096, zero.data(), 4096) == 0;
    EXPECT_TRUE(same || hole) << pfn;
    kept += same && !hole;
  }
  EXPECT_EQ(kept, 1216u);
  // From a pipe too: pages one at a time, the same bytes.
  const int in = ::open(img.c_str(), O_RDONLY);
  Result p = run({xsr_bin(), "extract", "--salvage", "-", "-o", path("p.raw")}, in);
  ::close(in);
  EXPECT_EQ(p.exit, 1);
  EXPECT_EQ(read_file(path("p.raw")), part);
  // Without --salvage: no output.
  r = run({xsr_bin(), "extract", "--no-index", img, "-o", path("n.raw")});
  EXPECT_EQ(r.exit, 1);
  EXPECT_FALSE(exists("n.raw"));
}

TEST_F(IndexCli, APfnRangeThatSelectsNothingWritesNothing) {
  const std::string img = make_image("g.bin");
  for (bool indexed : {false, true}) {
    if (indexed) {
      ASSERT_EQ(run({xsr_bin(), "index", "-q", img}).exit, 0);
    }
    for (const char* fmt : {"--elf", "-v"}) {
      Result r = run({xsr_bin(), "extract", img, fmt, "--pfn", "0x100000-0x100010", "-o", path("x")});
      EXPECT_EQ(r.exit, 1);
      EXPECT_NE(
          r.err.find("xsr extract: " + img + ": --pfn 0x100000-0x100010 selects no page the image holds\n"),
          std::string::npos)
          << r.err;
      EXPECT_FALSE(exists("x"));
      r = run({xsr_bin(), "extract", img, fmt, "--pfn", "0xa5", "-o", path("x")});
      EXPECT_EQ(r.exit, 1);
      EXPECT_NE(r.err.find(": --pfn 0xa5 selects no page the image holds\n"), std::string::npos) << r.err;
    }
  }
}

}  // namespace
}  // namespace xsr::test
