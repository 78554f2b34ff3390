// xsr inspect and xsr extract as users run them: JSON read back by Python's
// json module, extracted pages compared with the pages xsr gen stamps,
// hex dumps compared with hexdump(1), ELF cores read by readelf(1).
#include <sys/stat.h>

#include <cstdio>

#include "cli_util.h"

namespace xsr::test {
namespace {

class ImageCli : public TempDirTest {
 protected:
  ImageCli() : TempDirTest("image-cli") {}
  // An xl-wrapped libxl HVM image of about 8 MiB with 2 vcpus (seed 7).
  std::string make_image(const std::string& name, std::vector<std::string> extra = {}) {
    std::vector<std::string> argv{xsr_bin(), "gen",    "--size", "8M", "--format",
                                  "xl",      "--seed", "7",      "-o", path(name)};
    argv.insert(argv.end(), extra.begin(), extra.end());
    Result r = run(argv);
    EXPECT_EQ(r.exit, 0) << r.err;
    return path(name);
  }
  // Runs python3 on `code` with the JSON on stdin; returns its stdout.
  std::string python(const std::string& code, const std::string& json) {
    const std::string f = path("doc.json");
    std::FILE* fp = std::fopen(f.c_str(), "w");
    std::fwrite(json.data(), 1, json.size(), fp);
    std::fclose(fp);
    int in = ::open(f.c_str(), O_RDONLY);
    Result r = run({"/usr/bin/python3", "-c", "import json,sys\nd=json.load(sys.stdin)\n" + code}, in);
    ::close(in);
    EXPECT_EQ(r.exit, 0) << r.err;
    return r.out;
  }
};

TEST_F(ImageCli, InspectJsonHoldsTheGeneratedImagesFacts) {
  const std::string img = make_image("g.xl");
  Result r = run({xsr_bin(), "inspect", "--json", img});
  ASSERT_EQ(r.exit, 0) << r.err;
  // xsr gen: HVM, pfns 0-2043 without the VGA hole 0xa0-0xbf, 2 vcpus, the
  // params Xen's builder and hvmloader set, in the order Xen's save writes
  // them; the special pages at 0x7ec-0x7fb (the builder's at 0x7f4-0x7fb).
  EXPECT_EQ(
      python(
          "p=d['pages']\n"
          "print(d['valid'], d['container']['layers'], d['container']['config_kind'], d['guest']['type'])\n"
          "print(p['bodies'], p['distinct_pfns'], p['pfn_min'], p['pfn_max'], p['holes'], "
          "p['entries_by_type'])\n"
          "print([(v['id'], sorted(v['contexts'])) for v in d['vcpus']])\n"
          "print([(h['name'], h['value']) for h in d['hvm_params']])\n"
          "print(d['stream_version'], d['guest']['xen_version'], d['checkpoints'], d['tsc']['khz'])\n",
          r.out),
      "True xl+libxl xl hvm\n"
      "2012 2012 0 2043 [[160, 191]] {'NOTAB': 2012, 'XTAB': 32}\n"
      "[(0, ['HVM CPU', 'HVM CPU_XSAVE', 'HVM LAPIC', 'HVM LAPIC_REGS', 'HVM MTRR', 'HVM TSC_ADJUST', "
      "'HVM VMCE_VCPU']), "
      "(1, ['HVM CPU', 'HVM CPU_XSAVE', 'HVM LAPIC', 'HVM LAPIC_REGS', 'HVM MTRR', 'HVM TSC_ADJUST', "
      "'HVM VMCE_VCPU'])]\n"
      "[('STORE_PFN', 2040), ('IOREQ_PFN', 2041), ('BUFIOREQ_PFN', 2039), ('IDENT_PT', 8364032), "
      "('CONSOLE_PFN', 2043), ('ACPI_IOPORTS_LOCATION', 1), ('PAGING_RING_PFN', 2036), "
      "('MONITOR_RING_PFN', 2037), ('SHARING_RING_PFN', 2038), ('IOREQ_SERVER_PFN', 2028), "
      "('NR_IOREQ_SERVER_PAGES', 8), ('VM86_TSS_SIZED', 549764116480)]\n"
      "3 4.17 0 2000000\n");
}

TEST_F(ImageCli, InspectRecordListMatchesTheRecordCount) {
  const std::string img = make_image("g.xl", {"--checkpoints", "2"});
  Result r = run({xsr_bin(), "inspect", "--json", "--records", img});
  ASSERT_EQ(r.exit, 0) << r.err;
  // Headers: xl, libxl, libxc image + domain; then every record.
  EXPECT_EQ(python("print(len(d['record_list']) - 4 == d['records']['total'], d['checkpoints'],\n"
                   "      d['record_list'][0]['type'], d['record_list'][-1]['type'], "
                   "d['pages']['extra_bodies'] > 0)\n",
                   r.out),
            "True 2 xl header END True\n");
}

TEST_F(ImageCli, InspectOfATruncatedImageDescribesThePrefixAndExitsOne) {
  const std::string img = make_image("g.xl");
  ASSERT_EQ(::truncate(img.c_str(), 5000000), 0);
  Result r = run({xsr_bin(), "inspect", img});
  EXPECT_EQ(r.exit, 1);
  EXPECT_NE(r.out.find("INVALID"), std::string::npos) << r.out;
  EXPECT_EQ(r.err, "xsr inspect: " + img +
                       ": offset 0x3e21e2, record 5 (PAGE_DATA): stream truncated: PAGE_DATA body needs "
                       "4186088 bytes, input ended after 928094\n");
}

TEST_F(ImageCli, InspectReadsALegacyImageAndStdin) {
  Result r = run({xsr_bin(), "inspect", "--json", fixture("sample/legacy-hvm.xl.bin")});
  ASSERT_EQ(r.exit, 0) << r.err;
  EXPECT_EQ(
      python(
          "c=d['container']\nprint(c['legacy'], c['legacy_toolstack_width'], d['guest']['legacy_converted'], "
          "d['guest']['xen_version'])\n",
          r.out),
      "True 64 True None\n");
  int in = ::open(fixture("sample/guest-hvm.xl.bin").c_str(), O_RDONLY);
  int p[2];
  ASSERT_EQ(::pipe(p), 0);
  std::thread feed([&] {
    (void)!std::system(
        ("cat '" + fixture("sample/guest-hvm.xl.bin") + "' > /dev/fd/" + std::to_string(p[1])).c_str());
    ::close(p[1]);
  });
  Result piped = run({xsr_bin(), "inspect"}, p[0]);
  feed.join();
  ::close(p[0]);
  Result file = run({xsr_bin(), "inspect", "-"}, in);
  ::close(in);
  EXPECT_EQ(piped.exit, 0) << piped.err;
  EXPECT_EQ(piped.out, file.out);
}

TEST_F(ImageCli, ExtractWritesEveryPageWhereItsPfnSays) {
  const std::string img = make_image("g.xl");
  Result r = run({xsr_bin(), "extract", img, "-o", path("g.raw")});
  ASSERT_EQ(r.exit, 0) << r.err;
  auto raw = read_file(path("g.raw"));
  ASSERT_EQ(raw.size(), 2044u * 4096);
  std::vector<std::byte> want(4096);
  GenOptions o;
  o.size = 8 << 20;
  for (std::uint64_t pfn = 0; pfn < 2044; ++pfn) {
    if (pfn >= 0xa0 && pfn < 0xc0) continue;
    if (gen_pfn_special(o, pfn)) continue;  // the guest's rings and tables
    gen_page(pfn, 7, want.data());
    ASSERT_EQ(std::memcmp(raw.data() + pfn * 4096, want.data(), 4096), 0) << "pfn " << pfn;
  }
  int fd = ::open(path("g.raw").c_str(), O_RDONLY);
  EXPECT_EQ(::lseek(fd, 0xa0 * 4096, SEEK_HOLE), 0xa0 * 4096);
  EXPECT_EQ(::lseek(fd, 0xa0 * 4096, SEEK_DATA), 0xc0 * 4096);
  ::close(fd);
}

TEST_F(ImageCli, ExtractPageMatchesHexdumpOfTheRawFile) {
  const std::string img = make_image("g.xl");
  ASSERT_EQ(run({xsr_bin(), "extract", img, "-o", path("g.raw")}).exit, 0);
  Result page = run({xsr_bin(), "extract", img, "--page", "0x7f0"});
  ASSERT_EQ(page.exit, 0) << page.err;
  Result hd =
      run({"/usr/bin/hexdump", "-C", "-s", std::to_string(0x7f0 * 4096), "-n", "4096", path("g.raw")});
  ASSERT_EQ(hd.exit, 0) << hd.err;
  EXPECT_EQ(page.out, hd.out);
  Result missing = run({xsr_bin(), "extract", img, "--page", "0xa0"});
  EXPECT_EQ(missing.exit, 1);
  EXPECT_EQ(missing.err, "xsr extract: " + img + ": pfn 0xa0 has no page body in the image\n");
}

TEST_F(ImageCli, ExtractElfIsReadableByReadelf) {
  const std::string img = make_image("g.xl");
  Result r = run({xsr_bin(), "extract", "--elf", img, "-o", path("g.elf")});
  ASSERT_EQ(r.exit, 0) << r.err;
  Result re = run({"/usr/bin/readelf", "-W", "-h", "-l", path("g.elf")});
  ASSERT_EQ(re.exit, 0) << re.err;
  EXPECT_NE(re.out.find("CORE (Core file)"), std::string::npos) << re.out;
  EXPECT_NE(re.out.find("Number of program headers:         3\n"), std::string::npos) << re.out;
  EXPECT_NE(re.out.find("NOTE           0x"), std::string::npos) << re.out;
  EXPECT_NE(re.out.find(
                "LOAD           0x001000 0x0000000000000000 0x0000000000000000 0x0a0000 0x0a0000 RWE 0x1000"),
            std::string::npos)
      << re.out;
  EXPECT_NE(re.out.find(
                "LOAD           0x0c1000 0x00000000000c0000 0x00000000000c0000 0x73c000 0x73c000 RWE 0x1000"),
            std::string::npos)
      << re.out;
}

TEST_F(ImageCli, AFailedExtractLeavesNoOutputAndAPipeOutputIsRefused) {
  const std::string img = make_image("g.xl");
  ASSERT_EQ(::truncate(img.c_str(), 5000000), 0);
  Result r = run({xsr_bin(), "extract", img, "-o", path("g.raw")});
  EXPECT_EQ(r.exit, 1);
  EXPECT_NE(r.err.find("record 5 (PAGE_DATA): stream truncated"), std::string::npos) << r.err;
  struct stat st;
  EXPECT_NE(::stat(path("g.raw").c_str(), &st), 0);
  Result dir = run({"/bin/ls", "-A", dir_});
  EXPECT_EQ(dir.out, "g.xl\n");  // no temporary file left either
  int p[2];
  ASSERT_EQ(::pipe(p), 0);
  Result piped = run({xsr_bin(), "extract", make_image("h.xl"), "-o", "40"}, -1, p[1], 40);
  ::close(p[0]);
  ::close(p[1]);
  EXPECT_EQ(piped.exit, 2);
  EXPECT_NE(piped.err.find("the output must be a regular file"), std::string::npos) << piped.err;
}

TEST_F(ImageCli, ExtractOfALegacyImageEqualsExtractOfItsConversion) {
  ASSERT_EQ(run({xsr_bin(), "extract", fixture("sample/legacy-hvm.xl.bin"), "-o", path("a.raw")}).exit, 0);
  ASSERT_EQ(run({xsr_bin(), "convert", "-q", fixture("sample/legacy-hvm.xl.bin"), path("v3")}).exit, 0);
  ASSERT_EQ(run({xsr_bin(), "extract", path("v3"), "-o", path("b.raw")}).exit, 0);
  EXPECT_EQ(read_file(path("a.raw")), read_file(path("b.raw")));
  EXPECT_GT(read_file(path("a.raw")).size(), 0u);
}

TEST_F(ImageCli, CompressedImagesInspectAndExtractLikeTheirPlainBytes) {
  const std::string img = make_image("g.xl");
  const std::string z = make_image("g.xl.zst", {"--compress", "zstd"});
  Result plain = run({xsr_bin(), "inspect", "--json", img});
  Result packed = run({xsr_bin(), "inspect", "-v", "--json", z});
  ASSERT_EQ(packed.exit, 0) << packed.err;
  EXPECT_NE(packed.err.find("compressed input (zstd)"), std::string::npos) << packed.err;
  // Everything but the image's name and its compression is the same.
  EXPECT_EQ(python("print(d['compression'])\n", plain.out), "None\n");
  EXPECT_EQ(python("print(d['compression'])\n", packed.out),
            "{'codec': 'zstd', 'compressed_bytes': " + std::to_string(read_file(z).size()) + "}\n");
  EXPECT_EQ(python("del d['image'], d['compression']\nprint(json.dumps(d, sort_keys=True))\n", plain.out),
            python("del d['image'], d['compression']\nprint(json.dumps(d, sort_keys=True))\n", packed.out));
  Result text = run({xsr_bin(), "inspect", z});
  EXPECT_NE(text.out.find("\ncompression  zstd, "), std::string::npos) << text.out;
  ASSERT_EQ(run({xsr_bin(), "extract", img, "-o", path("a.raw")}).exit, 0);
  Result ex = run({xsr_bin(), "extract", z, "-o", path("b.raw")});
  ASSERT_EQ(ex.exit, 0) << ex.err;
  EXPECT_EQ(read_file(path("a.raw")), read_file(path("b.raw")));
}

}  // namespace
}  // namespace xsr::test
