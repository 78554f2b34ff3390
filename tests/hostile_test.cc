// Hostile inputs: lengths, counts and optional-data sizes that promise far
// more than the input holds (on pipes, in a child whose address space is
// capped), thousands of checkpoints, a million tiny records, and a file cut
// short while it is mapped.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>

#include <fstream>

#include "test_util.h"
#include "xsr/convert.h"
#include "xsr/format.h"
#include "xsr/legacy.h"

namespace xsr::test {
namespace {

struct Builder {
  std::vector<std::byte> s;
  template <typename T>
  Builder& put(const T& v) {
    auto* b = reinterpret_cast<const std::byte*>(&v);
    s.insert(s.end(), b, b + sizeof v);
    return *this;
  }
  Builder& bytes(std::size_t n, std::uint8_t v = 0) {
    s.resize(s.size() + n, std::byte{v});
    return *this;
  }
  Builder& libxc_headers() {
    put(libxc::ImageHeader{bswap64(libxc::kMarker), bswap32(libxc::kIdent), bswap32(3), 0, 0, 0});
    return put(libxc::DomainHeader{libxc::kX86Hvm, 12, 0, 4, 17});
  }
  Builder& record(std::uint32_t type, std::uint32_t len) { return put(RecordHeader{type, len}); }
  Builder& libxl_header() { return put(libxl::Header{bswap64(libxl::kIdent), bswap32(libxl::kVersion), 0}); }
  Builder& xl_header(std::uint32_t flags, std::uint32_t optional_len) {
    s.insert(s.end(), reinterpret_cast<const std::byte*>(xl::kMagic),
             reinterpret_cast<const std::byte*>(xl::kMagic) + xl::kMagicLen);
    return put(xl::kByteOrder).put(flags).put(std::uint32_t{0}).put(optional_len);
  }
};

#ifndef XSR_ASAN
// Virtual memory of this process now, in bytes.
std::uint64_t vm_bytes() {
  std::ifstream in("/proc/self/statm");
  std::uint64_t pages = 0;
  in >> pages;
  return pages * 4096;
}
#endif

// Starts f in a child whose address space may grow by at most `cap` bytes
// (under AddressSanitizer, whose shadow reservations defeat RLIMIT_AS,
// uncapped); an allocation beyond the cap aborts the child.
pid_t spawn_capped(std::uint64_t cap, const std::function<int()>& f) {
  pid_t pid = ::fork();
  if (pid == 0) {
#ifndef XSR_ASAN
    const rlim_t lim = static_cast<rlim_t>(vm_bytes() + cap);
    struct rlimit rl {
      lim, lim
    };
    if (::setrlimit(RLIMIT_AS, &rl) != 0) ::_exit(100);
#else
    (void)cap;
#endif
    ::_exit(f());
  }
  return pid;
}

// f's result, or -1 if the child died.
int wait_child(pid_t pid) {
  int st = 0;
  ::waitpid(pid, &st, 0);
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

constexpr std::uint64_t kCap = 128ull << 20;  // the record limit

// The stream goes down a pipe (the writer closes it after the last byte);
// the child verifies it from the read end and reports the error code.
int verify_over_pipe(const std::vector<std::byte>& data, Format f, bool strict, IoMode mode) {
  ::signal(SIGPIPE, SIG_IGN);  // the child may stop reading before the end
  int p[2];
  make_channel(Channel::pipe, p);
  pid_t pid = spawn_capped(kCap, [&] {
    ::close(p[1]);
    OpenResult r = source_from_fd(p[0], false, mode);
    if (!r.source) return 99;
    VerifyOptions opt;
    opt.format = f;
    opt.strict = strict;
    StreamStats st;
    Error e = verify(*r.source, opt, st);
    if (e && e.offset > data.size()) return 98;  // an offset past the input
    return static_cast<int>(e.code);
  });
  ::close(p[0]);
  {
    Feeder feed(p[1], data, 4096);  // the writer ends when the child stops reading
  }
  return wait_child(pid);
}

int code(Errc c) { return static_cast<int>(c); }

class HostilePipe : public ::testing::TestWithParam<IoMode> {};

TEST_P(HostilePipe, HugeRecordLengthIsTruncationWithoutAllocating) {
  Builder b;
  b.libxc_headers().record(libxc::HVM_CONTEXT, 0xfffffff8u).bytes(4096, 0x41);
  // The feeder runs after the fork, in the parent.
  EXPECT_EQ(verify_over_pipe(b.s, Format::libxc, false, GetParam()), code(Errc::truncated));
  EXPECT_EQ(verify_over_pipe(b.s, Format::libxc, true, GetParam()), code(Errc::too_large));
}

TEST_P(HostilePipe, HugePageDataCountIsRefused) {
  Builder b;
  b.libxc_headers().record(libxc::PAGE_DATA, 16).put(libxc::PageDataHeader{0xffffffffu, 0}).bytes(8);
  EXPECT_EQ(verify_over_pipe(b.s, Format::libxc, false, GetParam()), code(Errc::bad_record));
  Builder c;  // a count the length agrees with, on a short input
  c.libxc_headers().record(libxc::PAGE_DATA, 8 + 8 * 0x1fffffffu).put(libxc::PageDataHeader{0x1fffffffu, 0});
  c.bytes(8192, 0);
  const int got = verify_over_pipe(c.s, Format::libxc, false, GetParam());
  EXPECT_TRUE(got == code(Errc::truncated) || got == code(Errc::too_large) || got == code(Errc::bad_record))
      << got;
}

TEST_P(HostilePipe, HugeOptionalRecordIsSkippedNotHeld) {
  Builder b;
  b.libxc_headers().record(kOptionalRecordBit | 0x42, 0xfffffff0u).bytes(65536, 0x5a);
  EXPECT_EQ(verify_over_pipe(b.s, Format::libxc, false, GetParam()), code(Errc::truncated));
}

TEST_P(HostilePipe, HugeXlOptionalDataIsTruncation) {
  Builder b;
  b.xl_header(xl::kFlagStreamV2, 0xffffffffu).bytes(100000, '{');
  EXPECT_EQ(verify_over_pipe(b.s, Format::xl, false, GetParam()), code(Errc::truncated));
  EXPECT_EQ(verify_over_pipe(b.s, Format::autodetect, false, GetParam()), code(Errc::truncated));
}

TEST_P(HostilePipe, HugeLibvirtXmlIsTruncation) {
  Builder b;
  b.s.insert(b.s.end(), reinterpret_cast<const std::byte*>(libvirt::kMagic),
             reinterpret_cast<const std::byte*>(libvirt::kMagic) + libvirt::kMagicLen);
  b.put(std::uint32_t{2}).put(std::uint32_t{0xffffffffu}).bytes(56).bytes(100000, '<');
  const int got = verify_over_pipe(b.s, Format::autodetect, false, GetParam());
  EXPECT_TRUE(got == code(Errc::truncated) || got == code(Errc::bad_header)) << got;
}

TEST_P(HostilePipe, HugeLibxlRecordIsTruncation) {
  Builder b;
  b.libxl_header().record(libxl::EMULATOR_CONTEXT, 0xfffffff8u).put(libxl::EmulatorHeader{2, 0});
  b.bytes(70000, 1);
  EXPECT_EQ(verify_over_pipe(b.s, Format::libxl, false, GetParam()), code(Errc::truncated));
}

INSTANTIATE_TEST_SUITE_P(Modes, HostilePipe, ::testing::Values(IoMode::automatic, IoMode::read),
                         [](const auto& i) { return i.param == IoMode::read ? "Read" : "Uring"; });

// Legacy inputs whose counts promise more than they carry: the converter,
// reading a pipe, gives a stream error in a capped child.
TEST(HostileLegacy, HugeCountsAreStreamErrorsWithoutAllocating) {
  std::vector<std::vector<std::byte>> inputs;
  {
    Builder b;  // HVM: p2m size 2^63, toolstack chunk of 4 GiB - 1
    b.put(std::uint64_t{1} << 63).put(std::int32_t{legacy::TOOLSTACK}).put(std::uint32_t{0xffffffffu});
    b.bytes(50000, 7);
    inputs.push_back(b.s);
  }
  {
    Builder b;  // HVM tail: a 4 GiB - 1 HVM context, then nothing
    b.put(std::uint64_t{4096}).put(std::int32_t{0}).put(std::uint64_t{0}).put(std::uint64_t{0});
    b.put(std::uint64_t{0}).put(std::uint32_t{0xffffffffu}).bytes(30000, 9);
    inputs.push_back(b.s);
  }
  {
    Builder b;  // HVM: max vcpu id 2^31 - 1, a batch of 2^31 - 1 pfns
    b.put(std::uint64_t{4096}).put(std::int32_t{legacy::VCPU_INFO}).put(std::int32_t{0x7fffffff});
    b.bytes(1000);
    inputs.push_back(b.s);
    Builder c;
    c.put(std::uint64_t{4096}).put(std::int32_t{0x7fffffff}).bytes(1000);
    inputs.push_back(c.s);
  }
  {
    Builder b;  // PV: extended info of 4 GiB - 1 bytes, then a huge vcpu block
    b.put(std::uint64_t{4096}).put(~std::uint64_t{0}).put(std::uint32_t{0xffffffffu});
    b.s.insert(b.s.end(), {std::byte{'v'}, std::byte{'c'}, std::byte{'p'}, std::byte{'u'}});
    b.put(std::uint32_t{0xfffffff0u}).bytes(40000, 3);
    inputs.push_back(b.s);
  }
  ::signal(SIGPIPE, SIG_IGN);  // the child may stop reading before the end
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    SCOPED_TRACE(i);
    for (GuestType g : {GuestType::hvm, GuestType::pv}) {
      int p[2];
      make_channel(Channel::pipe, p);
      const auto& data = inputs[i];
      pid_t pid = spawn_capped(kCap, [&] {
        ::close(p[1]);
        OpenResult r = source_from_fd(p[0], false);
        int out = ::open("/dev/null", O_WRONLY | O_CLOEXEC);
        Sink sink(out);
        ConvertOptions o;
        o.width = 64;
        o.guest = g;
        o.libxl = true;
        ConvertResult res = convert_legacy(*r.source, sink, o);
        return res.error ? static_cast<int>(res.error.code) : 0;
      });
      ::close(p[0]);
      { Feeder feed(p[1], data, 4096); }
      const int got = wait_child(pid);
      EXPECT_GT(got, 0) << "accepted, or died (-1): " << got;
      EXPECT_NE(got, code(Errc::io));
    }
  }
}

// Counts the calls a reader makes on its source: linear work shows as a
// bounded number of calls per record, whatever the machine's speed.
class CountingSource final : public Source {
 public:
  explicit CountingSource(Source& in) : in_(in) {}
  Bytes peek(std::size_t n) override {
    ++calls;
    return in_.peek(n);
  }
  void consume(std::size_t n) override { in_.consume(n); }
  std::uint64_t skip(std::uint64_t n) override {
    ++calls;
    return in_.skip(n);
  }
  std::uint64_t pos() const override { return in_.pos(); }
  std::string_view kind() const override { return "counting"; }
  std::uint64_t calls = 0;

 private:
  Source& in_;
};

TEST(ManyRecords, AMillionTinyRecordsCostAFewCallsEach) {
  constexpr std::uint32_t kRecords = 1000000;
  Builder b;
  b.libxc_headers();
  b.s.reserve(b.s.size() + 8 * (kRecords + 1));
  for (std::uint32_t i = 0; i < kRecords; ++i) b.record(kOptionalRecordBit | 0x42, 0);
  b.record(libxc::END, 0);
  auto mem = memory_source(b.s);
  CountingSource src(*mem);
  StreamStats st;
  VerifyOptions opt;
  opt.format = Format::libxc;
  Error e = verify(src, opt, st);
  ASSERT_FALSE(e) << e.message();
  EXPECT_EQ(st.records, kRecords + 1);
  EXPECT_LE(src.calls, 4ull * kRecords + 16);
  // And through a pipe, one syscall-sized piece at a time.
  for (IoMode m : {IoMode::automatic, IoMode::read}) {
    int p[2];
    make_channel(Channel::pipe, p);
    Feeder feed(p[1], b.s, 65536);
    OpenResult r = source_from_fd(p[0], false, m);
    StreamStats st2;
    e = verify(*r.source, opt, st2);
    EXPECT_FALSE(e) << e.message();
    EXPECT_EQ(st2.records, kRecords + 1);
    ::close(p[0]);
  }
}

TEST(ManyRecords, AMillionLegacyMarkersConvertLikeNone) {
  GenOptions g;
  g.legacy = true;
  g.size = 256 << 10;
  const auto plain = gen_bytes(g);
  // p2m size (8 bytes), then a million "verify mode" markers: no output.
  std::vector<std::byte> many(plain.begin(), plain.begin() + 8);
  const std::int32_t m = legacy::ENABLE_VERIFY_MODE;
  for (int i = 0; i < 1000000; ++i)
    many.insert(many.end(), reinterpret_cast<const std::byte*>(&m),
                reinterpret_cast<const std::byte*>(&m) + 4);
  many.insert(many.end(), plain.begin() + 8, plain.end());
  auto convert = [](const std::vector<std::byte>& in, std::uint64_t* calls) {
    int out = ::memfd_create("xsr-out", MFD_CLOEXEC);
    auto mem = memory_source(in);
    CountingSource src(*mem);
    ConvertOptions o;
    o.width = 64;
    o.guest = GuestType::hvm;
    o.libxl = true;
    ConvertResult r;
    {
      Sink sink(out);
      r = convert_legacy(src, sink, o);
    }
    EXPECT_FALSE(r.error) << r.error.message();
    *calls = src.calls;
    ::lseek(out, 0, SEEK_SET);
    auto bytes = read_all_fd(out);
    ::close(out);
    return bytes;
  };
  std::uint64_t c1 = 0, c2 = 0;
  const auto a = convert(plain, &c1);
  const auto b = convert(many, &c2);
  EXPECT_TRUE(a == b);
  EXPECT_LE(c2 - c1, 3ull * 1000000);
}

TEST(ManyCheckpoints, ThousandsOfRoundsVerify) {
  for (auto c : {GenOptions::Container::libxl, GenOptions::Container::libxc}) {
    GenOptions g;
    g.container = c;
    g.size = 64 << 10;
    g.batch = 1;
    g.checkpoints = 3000;
    const auto s = gen_bytes(g);
    StreamStats st;
    VerifyOptions opt;
    opt.format = Format::autodetect;
    opt.strict = true;
    opt.checkpointed = true;
    auto src = memory_source(s);
    Error e = verify(*src, opt, st);
    EXPECT_FALSE(e) << e.message();
    EXPECT_EQ(st.checkpoints, 3000u);
  }
}

TEST(MappedSource, AFileTruncatedWhileMappedIsAnIoErrorNotSigbus) {
  GenOptions g;
  g.size = 4 << 20;
  g.batch = 16;
  const auto s = gen_bytes(g);
  char path[] = "/tmp/xsr-trunc-XXXXXX";
  int fd = ::mkstemp(path);
  ASSERT_GE(fd, 0);
  ::unlink(path);
  ASSERT_EQ(::write(fd, s.data(), s.size()), static_cast<ssize_t>(s.size()));
  for (int after : {2, 5, 9}) {
    ASSERT_EQ(::ftruncate(fd, 0), 0);
    ASSERT_EQ(::pwrite(fd, s.data(), s.size(), 0), static_cast<ssize_t>(s.size()));
    ::lseek(fd, 0, SEEK_SET);
    OpenResult r = source_from_fd(fd, false, IoMode::mmap);
    ASSERT_EQ(r.source->kind(), "mmap");
    // The verifier says a -v line per record: after the n-th, the file is
    // cut to 8 KiB under the mapped window it is reading, as if another
    // process truncated it.
    VerifyOptions opt;
    opt.format = Format::libxc;
    int lines = 0;
    bool cut = false;
    opt.info = [&](const std::string&) {
      if (++lines == after) {
        EXPECT_EQ(::ftruncate(fd, 8192), 0);
        cut = true;
      }
    };
    StreamStats st;
    Error e = verify(*r.source, opt, st);
    ASSERT_TRUE(cut) << "only " << lines << " lines";
    EXPECT_EQ(e.code, Errc::io) << after << ": " << e.message();
    EXPECT_NE(e.message().find("Input/output error"), std::string::npos) << e.message();
  }
  ::close(fd);
}

}  // namespace
}  // namespace xsr::test
