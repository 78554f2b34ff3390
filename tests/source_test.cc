// Byte sources: exact reads on shared descriptors, every source kind.
#include "xsr/source.h"

#include <gtest/gtest.h>

#include "test_util.h"

namespace xsr::test {
namespace {

std::vector<std::byte> pattern(std::size_t n) {
  std::vector<std::byte> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = static_cast<std::byte>((i * 7 + i / 4096) & 0xff);
  return v;
}

// Reads n bytes through peek/consume and checks them against want[at...].
void expect_read(Source& s, const std::vector<std::byte>& want, std::size_t at, std::size_t n) {
  while (n > 0) {
    std::size_t k = std::min<std::size_t>(n, 3000);
    Bytes b = s.peek(k);
    ASSERT_GE(b.size(), k);
    ASSERT_EQ(0, std::memcmp(b.data(), want.data() + at, k));
    s.consume(k);
    at += k;
    n -= k;
  }
}

void walk(Source& s, const std::vector<std::byte>& data) {
  // peek, skip a body, peek again: the shape of a record walk.
  expect_read(s, data, 0, 100);
  EXPECT_EQ(s.skip(5000), 5000u);
  expect_read(s, data, 5100, 8);
  EXPECT_EQ(s.skip(2 << 20), std::uint64_t{2 << 20});
  expect_read(s, data, 5108 + (2 << 20), 1000);
  EXPECT_EQ(s.pos(), 6108u + (2 << 20));
}

TEST(PreadSource, StartsAtTheDescriptorsOffsetAndLeavesItAfterTheLastByte) {
  auto data = pattern(3 << 20);
  int fd = memfd_with(data, 777, 0);
  OpenResult r = source_from_fd(fd, false, IoMode::pread);
  ASSERT_TRUE(r.source);
  EXPECT_EQ(r.source->kind(), "pread");
  walk(*r.source, data);
  ASSERT_EQ(r.source->finish(), 0);
  EXPECT_EQ(::lseek(fd, 0, SEEK_CUR), 777 + 6108 + (2 << 20));
  ::close(fd);
}

TEST(MappedSource, WalksWindowsAndLeavesTheOffsetAfterTheLastByte) {
  auto data = pattern(3 << 20);
  int fd = memfd_with(data, 4096 + 13, 0);
  OpenResult r = source_from_fd(fd, false, IoMode::mmap);
  ASSERT_TRUE(r.source);
  EXPECT_EQ(r.source->kind(), "mmap");
  walk(*r.source, data);
  ASSERT_EQ(r.source->finish(), 0);
  EXPECT_EQ(::lseek(fd, 0, SEEK_CUR), 4096 + 13 + 6108 + (2 << 20));
  ::close(fd);
}

TEST(FileSource, SkipPastTheEndReportsWhatWasThere) {
  auto data = pattern(10000);
  int fd = memfd_with(data);
  for (IoMode m : {IoMode::pread, IoMode::mmap}) {
    ::lseek(fd, 0, SEEK_SET);
    OpenResult r = source_from_fd(fd, false, m);
    EXPECT_EQ(r.source->skip(20000), 10000u);
    EXPECT_EQ(r.source->peek(8).size(), 0u);
  }
  ::close(fd);
}

class StreamSourceTest : public ::testing::TestWithParam<std::tuple<Channel, IoMode>> {};

TEST_P(StreamSourceTest, ReadsExactlyWhatIsAskedAndLeavesTheRestToTheCaller) {
  auto [channel, mode] = GetParam();
  auto data = pattern((3 << 20) + 6108);
  auto trailer = bytes_of("HANDSHAKE-AFTER-STREAM");
  std::vector<std::byte> all = data;
  all.insert(all.end(), trailer.begin(), trailer.end());
  int fds[2];
  make_channel(channel, fds);
  {
    // 4093-byte writes: every read meets short reads.
    Feeder f(fds[1], all, 4093);
    OpenResult r = source_from_fd(fds[0], false, mode);
    ASSERT_TRUE(r.source);
    if (mode == IoMode::read) {
      EXPECT_EQ(r.source->kind(), "read");
    }
    walk(*r.source, data);
    r.source.reset();
    // Whatever the stream did not need is still there for the caller.
    auto rest = read_all_fd(fds[0]);
    std::vector<std::byte> want(data.begin() + 6108 + (2 << 20), data.end());
    want.insert(want.end(), trailer.begin(), trailer.end());
    EXPECT_EQ(rest.size(), want.size());
    EXPECT_TRUE(rest == want);
  }
  ::close(fds[0]);
}

INSTANTIATE_TEST_SUITE_P(AllStreams, StreamSourceTest,
                         ::testing::Combine(::testing::Values(Channel::pipe, Channel::socketpair),
                                            ::testing::Values(IoMode::automatic, IoMode::read)));

TEST(UringSource, IsChosenForPipesWhereTheKernelHasIoUring) {
  int fds[2];
  make_channel(Channel::pipe, fds);
  OpenResult r = source_from_fd(fds[0], false, IoMode::automatic);
  ASSERT_TRUE(r.source);
  // Either io_uring, or plain reads with a note saying why.
  if (r.source->kind() != "io_uring") {
    EXPECT_NE(r.note.find("io_uring"), std::string::npos);
  }
  ::close(fds[0]);
  ::close(fds[1]);
}

TEST(OpenSource, TakesDecimalDescriptorsAndNamesMissingFiles) {
  EXPECT_EQ(parse_fd("0"), 0);
  EXPECT_EQ(parse_fd("17"), 17);
  EXPECT_EQ(parse_fd("1a"), -1);
  EXPECT_EQ(parse_fd(""), -1);
  OpenResult r = open_source("/nonexistent/xsr-image");
  EXPECT_FALSE(r.source);
  EXPECT_NE(r.error.detail.find("No such file"), std::string::npos);
}

TEST(MemorySource, IsTheNullEngine) {
  auto data = pattern(3 << 20);
  auto s = memory_source(data);
  walk(*s, data);
}

}  // namespace
}  // namespace xsr::test
