// What an input is, and how a run ends, the same in every subcommand:
// empty, short, random and directory inputs are "not a Xen save image";
// a legacy image is named legacy by verify and relay and read directly by
// inspect, extract and convert; an xl header over a bare libxc stream is a
// stream everywhere; a missing input is status 1 everywhere. Exact lines.
#include <sys/stat.h>

#include <cstring>

#include "cli_util.h"
#include "xsr/format.h"

namespace xsr::test {
namespace {

class DetectCli : public TempDirTest {
 protected:
  DetectCli() : TempDirTest("detect-cli") {}
  std::string make(const std::string& name, const std::vector<std::byte>& bytes) {
    write_file(path(name), bytes);
    return path(name);
  }
  // `xsr CMD IN` with an output where the command writes one.
  Result run_cmd(const std::string& cmd, const std::string& in) {
    if (cmd == "convert") return run({xsr_bin(), cmd, in, path("out.conv")});
    if (cmd == "extract") return run({xsr_bin(), cmd, in, "-o", path("out.raw")});
    if (cmd == "relay") return run({xsr_bin(), cmd, in, "-o", path("out.relay")});
    return run({xsr_bin(), cmd, in});
  }
};

const char* const kReaders[] = {"verify", "inspect", "extract", "convert", "relay"};

// The line each command prints for an input that is not a v2/v3 stream.
std::string expected_line(const std::string& cmd, const std::string& in, const std::string& what) {
  const std::string tail = cmd == "relay" ? "; forwarded 0 bytes before it" : "";
  return "xsr " + cmd + ": " + in + ": offset 0x0: " + what + tail + "\n";
}

TEST_F(DetectCli, EmptyShortAndRandomInputsAreNotXenSaveImagesInEveryCommand) {
  std::vector<std::byte> noise(4096);
  std::uint32_t x = 12345;
  for (auto& b : noise) {
    x = x * 1103515245u + 12345u;
    b = std::byte(x >> 24);
  }
  const std::string hello = "hello";
  const std::vector<std::pair<std::string, std::string>> cases = {
      {make("empty", {}), "not a Xen save image: the input is empty"},
      {make("short", std::vector<std::byte>(reinterpret_cast<const std::byte*>(hello.data()),
                                            reinterpret_cast<const std::byte*>(hello.data()) + 5)),
       "not a Xen save image: 5 bytes, shorter than any stream's first header"},
      {make("noise", noise),
       "not a Xen save image: its first bytes start neither a v2/v3 stream nor a legacy (Xen <= 4.5) one"},
  };
  for (const auto& [in, what] : cases) {
    for (const char* c : kReaders) {
      Result r = run_cmd(c, in);
      EXPECT_EQ(r.exit, 1) << c << " " << in;
      EXPECT_EQ(r.err, expected_line(c, in, what)) << c;
      EXPECT_EQ(r.out, "") << c;
    }
  }
}

TEST_F(DetectCli, ADirectoryIsNotASaveImageAndAMissingInputIsStatusOne) {
  ASSERT_EQ(::mkdir(path("d").c_str(), 0755), 0);
  for (const char* c : kReaders) {
    Result r = run_cmd(c, path("d"));
    EXPECT_EQ(r.exit, 1) << c;
    EXPECT_EQ(r.err, "xsr " + std::string(c) + ": cannot open " + path("d") +
                         ": a directory, not a Xen save image\n");
    r = run_cmd(c, path("missing"));
    EXPECT_EQ(r.exit, 1) << c;
    EXPECT_EQ(r.err,
              "xsr " + std::string(c) + ": cannot open " + path("missing") + ": No such file or directory\n");
  }
}

TEST_F(DetectCli, TheBundledXen45SampleIsCalledLegacyAndReadWhereItCanBe) {
  const std::string legacy = fixture("sample/legacy-hvm.xl.bin");
  Result r = run_cmd("verify", legacy);
  EXPECT_EQ(r.exit, 1);
  EXPECT_EQ(r.err, expected_line("verify", legacy,
                                 "a legacy (Xen <= 4.5) image, not a v2/v3 stream; convert it with 'xsr "
                                 "convert' (inspect and extract read it)"));
  r = run_cmd("relay", legacy);
  EXPECT_EQ(r.exit, 1);
  EXPECT_EQ(r.err, expected_line("relay", legacy,
                                 "a legacy (Xen <= 4.5) image, not a v2/v3 stream; relay it with --convert"));
  for (const char* c : {"inspect", "extract", "convert"}) EXPECT_EQ(run_cmd(c, legacy).exit, 0) << c;
  r = run({xsr_bin(), "relay", "--convert", legacy, "-o", path("relayed")});
  EXPECT_EQ(r.exit, 0) << r.err;
}

TEST_F(DetectCli, AnXlHeaderOverABareLibxcStreamIsAStreamEverywhere) {
  GenOptions g;
  g.size = 256 << 10;
  const std::vector<std::byte> libxc = gen_bytes(g);
  for (std::uint32_t flags : {0u, xl::kFlagStreamV2}) {
    if (flags) continue;  // v2 flag: xl says libxl follows; the walker holds it to that
    xl::Header h{};
    std::memcpy(h.magic, xl::kMagic, xl::kMagicLen);
    h.byteorder = xl::kByteOrder;
    h.mandatory_flags = flags;
    std::vector<std::byte> img(sizeof h);
    std::memcpy(img.data(), &h, sizeof h);
    img.insert(img.end(), libxc.begin(), libxc.end());
    const std::string in = make("xl-libxc", img);
    for (const char* c : {"verify", "inspect", "extract", "relay"}) {
      Result r = run_cmd(c, in);
      EXPECT_EQ(r.exit, 0) << c << ": " << r.err;
    }
    Result r = run_cmd("convert", in);
    EXPECT_EQ(r.exit, 1);
    EXPECT_EQ(r.err, expected_line("convert", in,
                                   "a v2/v3 stream already: nothing to convert (verify, inspect, extract and "
                                   "relay read it as it is)"));
  }
}

TEST_F(DetectCli, AWidthThatContradictsDetectionIsNamedWhenTheConversionFails) {
  // Read with 32-bit longs, the sample's chunks end early and its HVM tail
  // gives a qemu signature the converter does not know: unsupported (2).
  Result r = run({xsr_bin(), "convert", "--width", "32", fixture("sample/legacy-hvm.xl.bin"), path("o")});
  EXPECT_EQ(r.exit, 2);
  EXPECT_NE(r.err.find("qemu record: Unrecognised Qemu sig"), std::string::npos) << r.err;
  EXPECT_EQ(lines(r.err), 1) << r.err;
  const std::string hint =
      " (detection says a 64-bit toolstack and an HVM guest; --width/--guest overrode it)\n";
  ASSERT_GE(r.err.size(), hint.size());
  EXPECT_EQ(r.err.substr(r.err.size() - hint.size()), hint) << r.err;
  EXPECT_EQ(r.err.rfind("xsr convert: " + fixture("sample/legacy-hvm.xl.bin") + ": offset 0x", 0), 0u);
}

TEST_F(DetectCli, BytesAfterEndInAFileGetANote) {
  GenOptions g;
  g.size = 256 << 10;
  std::vector<std::byte> img = gen_bytes(g);
  const std::string clean = make("clean", img);
  img.resize(img.size() + 4, std::byte{'j'});
  const std::string junk = make("junk", img);
  Result r = run({xsr_bin(), "verify", clean});
  EXPECT_EQ(r.exit, 0);
  EXPECT_EQ(r.err, "");
  r = run({xsr_bin(), "verify", junk});
  EXPECT_EQ(r.exit, 0);
  EXPECT_EQ(r.err,
            "xsr verify: note: " + junk + ": 4 bytes after the stream's END (not part of the image)\n");
  r = run({xsr_bin(), "verify", "-q", junk});
  EXPECT_EQ(r.err, "");
  // --json: the count; 0 for a clean file; null for a pipe (not known).
  r = run({xsr_bin(), "verify", "--json", junk});
  EXPECT_NE(r.out.find("\"bytes_after_end\": 4,"), std::string::npos) << r.out;
  r = run({xsr_bin(), "verify", "--json", clean});
  EXPECT_NE(r.out.find("\"bytes_after_end\": 0,"), std::string::npos) << r.out;
  const int fd = ::open(junk.c_str(), O_RDONLY | O_CLOEXEC);
  int p[2];
  ASSERT_EQ(::pipe2(p, O_CLOEXEC), 0);
  std::thread feed([&] {
    const std::vector<std::byte> all = read_all_fd(fd);
    (void)!::write(p[1], all.data(), all.size());
    ::close(p[1]);
  });
  r = run({xsr_bin(), "verify", "--json", "-"}, p[0]);
  feed.join();
  ::close(p[0]);
  ::close(fd);
  EXPECT_NE(r.out.find("\"bytes_after_end\": null,"), std::string::npos) << r.out;
}

TEST_F(DetectCli, CountsOfOneAreSingular) {
  Result r = run({xsr_bin(), "inspect", fixture("sample/guest-hvm.xl.bin")});
  EXPECT_EQ(r.exit, 0);
  EXPECT_NE(
      r.out.find("224 bodies (896.0 KiB), 224 distinct pfns 0x0-0xff, 1 hole (32 pfns), 0 pfns sent more "
                 "than once (0 extra bodies)\n"),
      std::string::npos)
      << r.out;
  GenOptions g;
  g.size = 64 << 10;
  g.checkpoints = 1;
  g.container = GenOptions::Container::libxl;
  const std::string in = make("one-checkpoint", gen_bytes(g));
  r = run({xsr_bin(), "verify", in});
  EXPECT_EQ(r.exit, 0) << r.err;
  EXPECT_NE(r.out.find(", 1 checkpoint\n"), std::string::npos) << r.out;
}

TEST_F(DetectCli, AForcedIoPathAPipeCannotTakeIsRefused) {
  int p[2];
  ASSERT_EQ(::pipe2(p, O_CLOEXEC), 0);
  ::close(p[1]);  // an empty pipe: the refusal comes before any read
  for (const char* io : {"pread", "mmap"}) {
    for (const char* c : {"verify", "inspect"}) {
      Result r = run({xsr_bin(), c, "--io", io, "-"}, p[0]);
      EXPECT_EQ(r.exit, 2) << c << io;
      EXPECT_EQ(r.err,
                "xsr " + std::string(c) + ": --io " + io + " reads a file or block device, not a pipe\n");
    }
  }
  ::close(p[0]);
}

TEST_F(DetectCli, BytesInAConversionErrorAreHexNotPythonLiterals) {
  std::vector<std::byte> img = read_file(fixture("legacy/pv64-ext-unknown-block.bin"));
  const std::string id = "xtra";
  auto at = std::search(img.begin(), img.end(), reinterpret_cast<const std::byte*>(id.data()),
                        reinterpret_cast<const std::byte*>(id.data()) + 4);
  ASSERT_NE(at, img.end());
  Result r = run({xsr_bin(), "convert", fixture("legacy/pv64-ext-unknown-block.bin"), path("o")});
  EXPECT_EQ(r.exit, 1);
  EXPECT_EQ(r.err, "xsr convert: " + fixture("legacy/pv64-ext-unknown-block.bin") +
                       ": offset 0x144c: PV extended info: Unrecognised extended block 'xtra'\n");
  const std::byte odd[4] = {std::byte{0x00}, std::byte{0x01}, std::byte{0xfe}, std::byte{0x7f}};
  std::copy(odd, odd + 4, at);
  const std::string in = make("odd-block.bin", img);
  r = run({xsr_bin(), "convert", in, path("o")});
  EXPECT_EQ(r.exit, 1);
  EXPECT_EQ(r.err, "xsr convert: " + in +
                       ": offset 0x144c: PV extended info: Unrecognised extended block 0x0001fe7f\n");
  // The drop-in keeps the reference's words.
  r = run({convert_bin(), "-i", in, "-o", path("o2"), "-w", "64", "-g", "pv"});
  EXPECT_EQ(r.exit, 1);
  EXPECT_NE(r.err.find("Unrecognised extended block b'\\x00\\x01\\xfe\\x7f'\n"), std::string::npos) << r.err;
}

TEST_F(DetectCli, DamagedCompressedDataIsNamedNotTheGarbageItDecodedTo) {
  GenOptions g;
  g.size = 4 << 20;
  g.mixed_pages = true;
  const std::string img = make("img", gen_bytes(g));
  ASSERT_EQ(run({"/bin/bzip2", "-k", img}).exit, 0);
  std::vector<std::byte> z = read_file(img + ".bz2");
  ASSERT_GT(z.size(), 5000u);
  z[5000] ^= std::byte{0x10};  // inside the first block: garbage comes out before its CRC is checked
  const std::string bad = make("bad.bz2", z);
  Result r = run({xsr_bin(), "verify", bad});
  EXPECT_EQ(r.exit, 1);
  EXPECT_EQ(lines(r.err), 1) << r.err;
  EXPECT_NE(r.err.find(": read failed: bzip2 data corrupt before compressed byte "), std::string::npos)
      << r.err;
}

}  // namespace
}  // namespace xsr::test
