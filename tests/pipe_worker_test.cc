// PipeWorker: the one "thread writing into a pipe the caller reads" (legacy
// conversion for inspect, extract and relay; decompression). Its verdict
// reaches the reader; a reader that leaves stops it by EPIPE, which the
// worker reports as a cause Error::caused_by recognises, without SIGPIPE
// killing the process.
#include "xsr/pipe_worker.h"

#include <gtest/gtest.h>
#include <signal.h>

#include <atomic>
#include <cstring>
#include <string>

#include "test_util.h"
#include "xsr/sink.h"
#include "xsr/sys.h"

namespace xsr::test {
namespace {

// Everything a source on fd reads, until the input ends.
std::string read_through_source(int fd) {
  OpenResult r = source_from_fd(fd, false);
  EXPECT_TRUE(r.source) << r.error.detail;
  std::string got;
  for (;;) {
    Bytes b = r.source->peek(4096);
    if (b.empty()) break;
    got.append(reinterpret_cast<const char*>(b.data()), b.size());
    r.source->consume(b.size());
  }
  EXPECT_EQ(r.source->error(), 0);
  return got;
}

TEST(PipeWorker, BytesThenTheEndReachTheReader) {
  PipeWorker w;
  ASSERT_FALSE(w.start([](int fd) {
    EXPECT_EQ(sys::write_all(fd, "converted", 9), 0);
    return Error{};
  }));
  EXPECT_EQ(read_through_source(w.fd()), "converted");
  EXPECT_FALSE(w.join());
  EXPECT_FALSE(w.running());
}

TEST(PipeWorker, AnErrorInTheWorkerReachesTheReader) {
  PipeWorker w;
  ASSERT_FALSE(w.start([](int fd) {
    EXPECT_EQ(sys::write_all(fd, "half", 4), 0);
    return Error::at(Errc::bad_record, 4, "the input broke here");
  }));
  // The reader sees the bytes, then the end; the verdict is final by then.
  EXPECT_EQ(read_through_source(w.fd()), "half");
  const Error& e = w.join();
  EXPECT_EQ(e.code, Errc::bad_record);
  EXPECT_EQ(e.offset, 4u);
  EXPECT_EQ(e.detail, "the input broke here");
  EXPECT_EQ(w.error().detail, "the input broke here");
}

TEST(PipeWorker, TheReaderLeavingStopsTheWorkerWithEpipe) {
  // SIGPIPE at its default (death): the worker must not take the process
  // down when its reader leaves.
  struct sigaction old {};
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  sigemptyset(&dfl.sa_mask);
  ::sigaction(SIGPIPE, &dfl, &old);
  std::atomic<std::uint64_t> written{0};
  {
    PipeWorker w;
    ASSERT_FALSE(w.start([&written](int fd) {
      Sink sink(fd);
      std::vector<std::byte> chunk(64 << 10, std::byte{0x42});
      // Far more than any pipe holds: only the reader leaving ends this.
      for (int i = 0; i < 1 << 16 && !sink.error(); ++i) {
        sink.write(chunk.data(), chunk.size());
        written = sink.written();
      }
      sink.flush();
      return sink.error();
    }));
    OpenResult r = source_from_fd(w.fd(), false);
    ASSERT_TRUE(r.source);
    ASSERT_GE(r.source->peek(100).size(), 100u);  // it runs
    r.source.reset();
    const Error& e = w.stop();
    EXPECT_TRUE(e.caused_by(EPIPE)) << e.detail;
    EXPECT_EQ(e.detail, "write failed: Broken pipe");
    EXPECT_EQ(w.fd(), -1);
  }
  EXPECT_LT(written.load(), std::uint64_t{64} << 20);  // stopped, not run to its end
  ::sigaction(SIGPIPE, &old, nullptr);
}

TEST(PipeWorker, StopWithoutStartIsNothing) {
  PipeWorker w;
  EXPECT_FALSE(w.stop());
  EXPECT_EQ(w.fd(), -1);
}

}  // namespace
}  // namespace xsr::test
