// xsr::relay over pipes and socketpairs: byte-exact forwarding of valid
// streams, exactly the verified prefix of invalid ones, exact reads,
// --then-copy, conversion, peers that fail, stall or dribble.
#include "xsr/relay.h"

#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>

#include <chrono>
#include <condition_variable>
#include <fstream>
#include <mutex>
#include <sstream>

#include "test_util.h"
#include "xsr/convert.h"
#include "xsr/records.h"
#include "xsr/sys.h"

namespace xsr::test {
namespace {

struct Relayed {
  RelayResult r;
  std::vector<std::byte> out;   // what the receiver got
  std::vector<std::byte> left;  // what the relay left unread on its input
};

struct Wiring {
  Channel in = Channel::pipe, out = Channel::pipe;
  std::size_t chunk = 1 << 20;  // the sender's write size
  std::string trailer;          // bytes after the stream
};

class IgnorePipe : public ::testing::Environment {
  void SetUp() override { ::signal(SIGPIPE, SIG_IGN); }
};
const auto* const kEnv = ::testing::AddGlobalTestEnvironment(new IgnorePipe);

Relayed relay_bytes(const std::vector<std::byte>& data, const RelayOptions& opt, const Wiring& s = {}) {
  int in[2], out[2];
  make_channel(s.in, in);
  make_channel(s.out, out);
  std::vector<std::byte> all = data;
  auto t = bytes_of(s.trailer);
  all.insert(all.end(), t.begin(), t.end());
  Relayed res;
  {
    Feeder feed(in[1], all, s.chunk);
    std::thread collect([&] { res.out = read_all_fd(out[0]); });
    res.r = relay(in[0], out[1], opt);
    ::close(out[1]);
    collect.join();
    // The feeder may still be writing the trailer into a full pipe: drain.
    res.left = read_all_fd(in[0]);
  }
  ::close(in[0]);
  ::close(out[0]);
  return res;
}

bool is_prefix(const std::vector<std::byte>& p, const std::vector<std::byte>& of) {
  return p.size() <= of.size() && std::equal(p.begin(), p.end(), of.begin());
}

// The records of a valid stream, in order, as the verifier reports them.
struct Rec {
  Layer layer;
  std::uint32_t type;
  std::uint64_t off, len;
  std::uint64_t end() const { return off + 8 + ((len + 7) & ~std::uint64_t{7}); }
};
std::vector<Rec> records_of(const std::vector<std::byte>& data) {
  struct Lister : StreamObserver {
    std::vector<Rec> recs;
    void record(Layer l, std::uint32_t t, std::uint64_t off, std::uint64_t len, Bytes) override {
      recs.push_back({l, t, off, len});
    }
  } lister;
  auto src = memory_source(data);
  VerifyOptions vo;
  vo.format = Format::autodetect;
  vo.observer = &lister;
  StreamStats st;
  EXPECT_FALSE(verify(*src, vo, st));
  return lister.recs;
}

std::string fixtures_dir() { return std::getenv("FIXTURES") ? std::getenv("FIXTURES") : "fixtures"; }

// The rows of a fixtures TSV file, its header line dropped.
std::vector<std::vector<std::string>> tsv_rows(const std::string& path) {
  std::vector<std::vector<std::string>> rows;
  std::ifstream tsv(path);
  EXPECT_TRUE(tsv) << path;
  std::string line;
  std::getline(tsv, line);
  while (std::getline(tsv, line)) {
    std::vector<std::string> f;
    std::stringstream ls(line);
    for (std::string c; std::getline(ls, c, '\t');) f.push_back(c);
    rows.push_back(std::move(f));
  }
  return rows;
}

RelayOptions auto_opts() {
  RelayOptions o;
  o.verify.format = Format::autodetect;
  return o;
}

GenOptions small(GenOptions::Container c, bool hvm, std::uint32_t version = 3) {
  GenOptions g;
  g.container = c;
  g.hvm = hvm;
  g.version = version;
  g.size = 3 << 20;
  g.batch = 100;
  return g;
}

TEST(Relay, ForwardsEveryKindOfStreamByteForByte) {
  using C = GenOptions::Container;
  int n = 0;
  for (C c : {C::libxc, C::libxl, C::xl})
    for (bool hvm : {true, false})
      for (std::uint32_t v : {2u, 3u})
        for (std::uint32_t cps : {0u, 2u}) {
          if (cps && c == C::libxc) continue;  // bare libxc checkpoints: see below
          GenOptions g = small(c, hvm, v);
          g.checkpoints = cps;
          auto data = gen_bytes(g);
          for (Channel ch : {Channel::pipe, Channel::socketpair}) {
            Wiring s;
            s.in = s.out = ch;
            Relayed r = relay_bytes(data, auto_opts(), s);
            ASSERT_FALSE(r.r.error) << r.r.error.message();
            ASSERT_FALSE(r.r.out_error) << r.r.out_error.detail;
            ASSERT_EQ(r.out, data) << "container " << int(c) << " hvm " << hvm << " v" << v;
            EXPECT_EQ(r.r.out_bytes, data.size());
            EXPECT_EQ(r.r.in_bytes, data.size());
            ++n;
          }
        }
  EXPECT_EQ(n, 40);
}

TEST(Relay, PageBodiesAreSplicedNotCopied) {
  GenOptions g = small(GenOptions::Container::libxl, true);
  g.size = 16 << 20;
  auto data = gen_bytes(g);
  Wiring s;
  s.in = Channel::socketpair;
  Relayed r = relay_bytes(data, auto_opts(), s);
  ASSERT_FALSE(r.r.error) << r.r.error.message();
  ASSERT_EQ(r.out, data);
  // Only headers and pfn arrays are written into the held pipes.
  EXPECT_NE(r.r.paths.find("splice 15."), std::string::npos) << r.r.paths;
  // ... under 1 MiB of them ("write N bytes") for 16 MiB of stream.
  const std::size_t w = r.r.paths.find("write ");
  ASSERT_NE(w, std::string::npos) << r.r.paths;
  EXPECT_NE(r.r.paths.find(" bytes", w), std::string::npos) << r.r.paths;
}

// Every fixture checked against Xen's verifier: a valid one comes out
// whole; an invalid one comes out cut exactly before the record (or
// header) that fails, and the relay says why.
TEST(Relay, FixturesGiveTheVerifiedPrefix) {
  int valid = 0, invalid = 0;
  for (const auto& f : tsv_rows(fixtures_dir() + "/expected.tsv")) {
    ASSERT_GE(f.size(), 7u);
    auto data = read_file(fixtures_dir() + "/" + f[0]);
    RelayOptions o;
    o.verify.format = f[1] == "libxl" ? Format::libxl : f[1] == "xl" ? Format::xl : Format::libxc;
    o.verify.strict = f[2] == "1";
    Wiring s;
    s.in = Channel::socketpair;
    Relayed r = relay_bytes(data, o, s);
    SCOPED_TRACE(f[0]);
    if (f[3] == "0") {
      ASSERT_FALSE(r.r.error) << r.r.error.message();
      // The stream goes; bytes after its END stay unread on the input.
      ASSERT_EQ(r.r.in_bytes + r.left.size(), data.size());
      EXPECT_EQ(r.out.size(), r.r.in_bytes);
      EXPECT_TRUE(is_prefix(r.out, data));
      if (f[0].find("trailing") == std::string::npos) {
        EXPECT_TRUE(r.left.empty());
      }
      ++valid;
      continue;
    }
    ++invalid;
    ASSERT_TRUE(r.r.error);
    EXPECT_FALSE(r.r.out_error) << r.r.out_error.detail;
    ASSERT_TRUE(is_prefix(r.out, data));
    if (r.r.error.message().find("(--hold)") != std::string::npos) {
      // A body declared longer than the hold is refused at its record
      // (the reference reads on and finds the input cut short).
      EXPECT_EQ(r.r.error.code, Errc::io);
      EXPECT_LE(r.out.size(), r.r.error.offset);
      EXPECT_NE(f[0].find("over-128mib"), std::string::npos);
      continue;
    }
    if (f[4] == "-") {
      // Truncated: everything up to the cut record went.
      EXPECT_EQ(r.r.error.code, Errc::truncated) << r.r.error.message();
      EXPECT_LE(r.out.size(), r.r.error.offset);
      continue;
    }
    const std::uint64_t off = std::stoull(f[4]);
    if (f[5] != "-") {
      // The failing record's own offset: everything before it went.
      EXPECT_EQ(r.out.size(), off) << r.r.error.message();
    } else {
      EXPECT_LE(r.out.size(), off) << r.r.error.message();
    }
    EXPECT_EQ(r.r.error.offset, off) << r.r.error.message();
  }
  EXPECT_GT(valid, 20);
  EXPECT_GT(invalid, 100);
}

// A mid-stream corruption of a generated stream: the receiver gets every
// record before the corrupt one, and not one byte of it.
TEST(Relay, CorruptPageDataStopsBeforeTheRecord) {
  GenOptions g = small(GenOptions::Container::xl, true);
  auto data = gen_bytes(g);
  // The 6th PAGE_DATA record.
  std::vector<std::uint64_t> offs;
  for (const Rec& r : records_of(data))
    if (r.layer == Layer::libxc && r.type == libxc::PAGE_DATA) offs.push_back(r.off);
  ASSERT_GT(offs.size(), 6u);
  const std::uint64_t rec = offs[5];
  auto bad = data;
  bad[rec + 8 + 8 + 8 * 3 + 7] = std::byte{0x70};  // pfn[3]: a reserved page type
  for (Channel ch : {Channel::pipe, Channel::socketpair}) {
    Wiring s;
    s.in = s.out = ch;
    Relayed r = relay_bytes(bad, auto_opts(), s);
    ASSERT_TRUE(r.r.error);
    EXPECT_EQ(r.r.error.code, Errc::bad_record) << r.r.error.message();
    EXPECT_EQ(r.r.error.offset, rec);
    ASSERT_EQ(r.out.size(), rec);
    EXPECT_TRUE(is_prefix(r.out, data));
  }
  // Cut inside the bodies of that record: the same prefix.
  std::vector<std::byte> cut(data.begin(), data.begin() + static_cast<std::ptrdiff_t>(rec + 5000));
  Relayed r = relay_bytes(cut, auto_opts());
  ASSERT_TRUE(r.r.error);
  EXPECT_EQ(r.r.error.code, Errc::truncated);
  EXPECT_EQ(r.out.size(), rec);
}

TEST(Relay, ReadsNothingPastTheStream) {
  auto data = gen_bytes(small(GenOptions::Container::libxl, false));
  for (Channel ch : {Channel::pipe, Channel::socketpair}) {
    Wiring s;
    s.in = ch;
    s.trailer = "migration-receiver-ready\n";
    Relayed r = relay_bytes(data, auto_opts(), s);
    ASSERT_FALSE(r.r.error) << r.r.error.message();
    EXPECT_EQ(r.out, data);
    EXPECT_EQ(r.left, bytes_of(s.trailer));
  }
  // From a file: its offset is left at the stream's end.
  int fd = memfd_with(data, 0, 100);
  int out[2];
  make_channel(Channel::pipe, out);
  std::vector<std::byte> got;
  std::thread collect([&] { got = read_all_fd(out[0]); });
  RelayResult r = relay(fd, out[1], auto_opts());
  ::close(out[1]);
  collect.join();
  EXPECT_FALSE(r.error);
  EXPECT_EQ(got, data);
  EXPECT_EQ(::lseek(fd, 0, SEEK_CUR), static_cast<off_t>(data.size()));
  ::close(fd);
  ::close(out[0]);
}

// xl migrate's handshake after the stream: the receiver answers, the
// sender says go. --then-copy carries both ways between two sockets.
TEST(Relay, ThenCopyCarriesTheHandshakeBothWays) {
  auto data = gen_bytes(small(GenOptions::Container::xl, true));
  int in[2], out[2];
  make_channel(Channel::socketpair, in);
  make_channel(Channel::socketpair, out);
  std::string sender_heard, receiver_heard;
  std::thread sender([&] {
    ASSERT_EQ(sys::write_all(in[1], data.data(), data.size()), 0);
    char b[64];
    ssize_t n = ::read(in[1], b, sizeof b);  // "ready to unpause"
    if (n > 0) sender_heard.assign(b, static_cast<std::size_t>(n));
    ASSERT_EQ(sys::write_all(in[1], "go\n", 3), 0);
    ::shutdown(in[1], SHUT_WR);
    auto rest = read_all_fd(in[1]);
    sender_heard.append(reinterpret_cast<const char*>(rest.data()), rest.size());
  });
  std::vector<std::byte> got;
  std::thread receiver([&] {
    std::vector<std::byte> buf(data.size());
    std::size_t have = 0;
    while (have < data.size()) {
      ssize_t n = ::read(out[0], buf.data() + have, data.size() - have);
      if (n <= 0) break;
      have += static_cast<std::size_t>(n);
    }
    buf.resize(have);
    got = buf;
    ASSERT_EQ(sys::write_all(out[0], "domain received\n", 16), 0);
    auto rest = read_all_fd(out[0]);  // "go", then the end
    receiver_heard.assign(reinterpret_cast<const char*>(rest.data()), rest.size());
    ::shutdown(out[0], SHUT_WR);
  });
  RelayOptions o = auto_opts();
  o.then_copy = true;
  o.timeout_ms = 10000;
  RelayResult r = relay(in[0], out[1], o);
  ::close(in[0]);
  ::close(out[1]);
  sender.join();
  receiver.join();
  ASSERT_FALSE(r.error) << r.error.message();
  EXPECT_FALSE(r.out_error) << r.out_error.detail;
  EXPECT_EQ(got, data);
  EXPECT_EQ(receiver_heard, "go\n");
  EXPECT_EQ(sender_heard, "domain received\n");
  EXPECT_EQ(r.copied_forward, 3u);
  EXPECT_EQ(r.copied_back, 16u);
  ::close(in[1]);
  ::close(out[0]);
}

TEST(Relay, ThenCopyFromAPipeCopiesOneWay) {
  auto data = gen_bytes(small(GenOptions::Container::libxc, true));
  Wiring s;
  s.trailer = "after the stream";
  RelayOptions o = auto_opts();
  o.then_copy = true;
  Relayed r = relay_bytes(data, o, s);
  ASSERT_FALSE(r.r.error) << r.r.error.message();
  auto want = data;
  auto t = bytes_of(s.trailer);
  want.insert(want.end(), t.begin(), t.end());
  EXPECT_EQ(r.out, want);
  EXPECT_TRUE(r.left.empty());
  EXPECT_EQ(r.r.copied_forward, t.size());
}

// A sender of one byte per write: each becomes its own socket buffer, so a
// held pipe fills with tiny pieces; the relay packs them instead.
TEST(Relay, OneByteWritesFromTheSender) {
  GenOptions g = small(GenOptions::Container::libxl, true);
  g.size = 400 << 10;
  g.batch = 64;
  auto data = gen_bytes(g);
  for (Channel ch : {Channel::pipe, Channel::socketpair}) {
    Wiring s;
    s.in = ch;
    s.chunk = 1;
    Relayed r = relay_bytes(data, auto_opts(), s);
    ASSERT_FALSE(r.r.error) << r.r.error.message();
    EXPECT_EQ(r.out, data);
  }
}

TEST(Relay, PlainReadsGiveTheSameBytes) {
  auto data = gen_bytes(small(GenOptions::Container::xl, false));
  RelayOptions o = auto_opts();
  o.io = IoMode::read;
  Wiring s;
  s.in = Channel::socketpair;
  s.chunk = 777;
  Relayed r = relay_bytes(data, o, s);
  ASSERT_FALSE(r.r.error) << r.r.error.message();
  EXPECT_EQ(r.out, data);
  EXPECT_EQ(r.r.reader, "read");
}

TEST(Relay, ARecordLongerThanTheHoldIsRefused) {
  GenOptions g = small(GenOptions::Container::libxc, true);
  g.batch = 1024;  // 4 MiB records
  g.size = 12 << 20;
  auto data = gen_bytes(g);
  RelayOptions o = auto_opts();
  o.max_hold = 2 << 20;
  Relayed r = relay_bytes(data, o);
  ASSERT_TRUE(r.r.error);
  EXPECT_EQ(r.r.error.code, Errc::io);
  EXPECT_NE(r.r.error.message().find("record longer than the relay holds while checking it (--hold)"),
            std::string::npos)
      << r.r.error.message();
  EXPECT_TRUE(is_prefix(r.out, data));
  EXPECT_LT(r.out.size(), data.size());
}

TEST(Relay, ASilentSenderTimesOut) {
  auto data = gen_bytes(small(GenOptions::Container::libxl, true));
  for (IoMode io : {IoMode::automatic, IoMode::read}) {
    int in[2], out[2];
    make_channel(Channel::socketpair, in);
    make_channel(Channel::pipe, out);
    // Half the stream, then silence (the socket stays open).
    ASSERT_EQ(sys::write_all(in[1], data.data(), 200000), 0);
    std::vector<std::byte> got;
    std::thread collect([&] { got = read_all_fd(out[0]); });
    RelayOptions o = auto_opts();
    o.timeout_ms = 300;
    o.io = io;
    auto t0 = std::chrono::steady_clock::now();
    RelayResult r = relay(in[0], out[1], o);
    auto dt = std::chrono::steady_clock::now() - t0;
    ::close(out[1]);
    collect.join();
    ASSERT_TRUE(r.error);
    EXPECT_NE(r.error.message().find("no data from the sender for 0.3 s (--timeout)"), std::string::npos)
        << r.error.message();
    EXPECT_GE(dt, std::chrono::milliseconds(250));
    EXPECT_TRUE(is_prefix(got, data));
    for (int fd : {in[0], in[1], out[0]}) ::close(fd);
  }
}

TEST(Relay, AStalledReceiverTimesOut) {
  GenOptions g = small(GenOptions::Container::libxl, true);
  g.size = 24 << 20;
  auto data = gen_bytes(g);
  int in[2], out[2];
  make_channel(Channel::pipe, in);
  make_channel(Channel::socketpair, out);  // nobody reads out[0]
  Feeder feed(in[1], data);
  RelayOptions o = auto_opts();
  o.timeout_ms = 300;
  RelayResult r = relay(in[0], out[1], o);
  EXPECT_FALSE(r.error) << r.error.message();
  EXPECT_NE(r.out_error.detail.find("the receiver took nothing for 0.3 s (--timeout)"), std::string::npos)
      << r.out_error.detail;
  ::close(in[0]);  // the feeder's writes fail now
  for (int fd : {out[0], out[1]}) ::close(fd);
}

TEST(Relay, AReceiverThatLeavesIsAnErrorNotADeath) {
  GenOptions g = small(GenOptions::Container::xl, true);
  g.size = 24 << 20;
  auto data = gen_bytes(g);
  for (Channel ch : {Channel::pipe, Channel::socketpair}) {
    int in[2], out[2];
    make_channel(Channel::pipe, in);
    make_channel(ch, out);
    Feeder feed(in[1], data);
    std::thread leaver([&] {
      std::byte b[100000];
      std::size_t n = 0;
      while (n < sizeof b) {
        ssize_t r = ::read(out[0], b + n, sizeof b - n);
        if (r <= 0) break;
        n += static_cast<std::size_t>(r);
      }
      ::close(out[0]);
    });
    RelayResult r = relay(in[0], out[1], auto_opts());
    leaver.join();
    EXPECT_FALSE(r.error) << r.error.message();
    EXPECT_NE(r.out_error.detail.find(ch == Channel::pipe ? "Broken pipe (the receiver closed the connection)"
                                                          : "(the receiver closed the connection)"),
              std::string::npos)
        << r.out_error.detail;
    ::close(in[0]);
    ::close(out[1]);
  }
}

// A checkpointing sender (Remus, COLO) sends nothing more until the
// receiver has everything so far: released records must not wait behind
// the relay's read of the next header, even when the receiver was slow to
// take them at first.
TEST(Relay, ReleasedRecordsDoNotWaitForTheNextRead) {
  GenOptions g = small(GenOptions::Container::libxl, true);
  g.size = 6 << 20;
  auto data = gen_bytes(g);
  // A record boundary well past what the socket buffers hold.
  std::uint64_t k = 0;
  for (const Rec& r : records_of(data))
    if (r.end() > 3u << 20) {
      k = r.end();
      break;
    }
  ASSERT_GT(k, 0u);
  int in[2], out[2];
  make_channel(Channel::socketpair, in);
  make_channel(Channel::socketpair, out);
  std::mutex mu;
  std::condition_variable cv;
  std::uint64_t received = 0;
  std::thread sender([&] {
    ASSERT_EQ(sys::write_all(in[1], data.data(), k), 0);
    std::unique_lock<std::mutex> l(mu);
    // Waits for the receiver, as a checkpointing sender waits for its ack.
    bool got = cv.wait_for(l, std::chrono::seconds(10), [&] { return received >= k; });
    l.unlock();
    if (got) (void)sys::write_all(in[1], data.data() + k, data.size() - k);
    ::close(in[1]);
  });
  std::vector<std::byte> got;
  std::thread receiver([&] {
    ::usleep(200000);  // slow at first: the relay's output fills up
    std::byte b[65536];
    for (;;) {
      ssize_t n = ::read(out[0], b, sizeof b);
      if (n <= 0) break;
      got.insert(got.end(), b, b + n);
      std::lock_guard<std::mutex> l(mu);
      received = got.size();
      cv.notify_all();
    }
  });
  RelayOptions o = auto_opts();
  o.timeout_ms = 5000;
  RelayResult r = relay(in[0], out[1], o);
  ::close(out[1]);
  sender.join();
  receiver.join();
  ASSERT_FALSE(r.error) << r.error.message();
  EXPECT_FALSE(r.out_error) << r.out_error.detail;
  EXPECT_EQ(got, data);
  ::close(in[0]);
  ::close(out[0]);
}

// EINTR and short transfers on every read, splice and write the relay makes.
TEST(Relay, ShortTransfersAndInterruptions) {
  static int calls = 0;
  sys::Ops o = sys::real();
  o.read = [](int fd, void* b, std::size_t n) -> ssize_t {
    if (++calls % 2) {
      errno = EINTR;
      return -1;
    }
    return ::read(fd, b, std::min<std::size_t>(n, 5));
  };
  o.splice = [](int in, loff_t* io, int out, loff_t* oo, std::size_t n, unsigned f) -> ssize_t {
    if (++calls % 3 == 0) {
      errno = EINTR;
      return -1;
    }
    return ::splice(in, io, out, oo, std::min<std::size_t>(n, 3000), f);
  };
  sys::Override ov(o);
  auto data = gen_bytes(small(GenOptions::Container::libxl, true));
  RelayOptions ro = auto_opts();
  ro.io = IoMode::read;
  for (Channel ch : {Channel::pipe, Channel::socketpair}) {
    Wiring s;
    s.in = s.out = ch;
    Relayed r = relay_bytes(data, ro, s);
    ASSERT_FALSE(r.r.error) << r.r.error.message();
    EXPECT_EQ(r.out, data);
  }
  EXPECT_GT(calls, 100);
}

// Conversion in the relay gives what `xsr convert` gives: the golden
// outputs checked against Xen's converter.
TEST(Relay, ConvertMatchesTheGoldenOutputs) {
  const std::string fx = fixtures_dir();
  int n = 0, refused = 0;
  for (const auto& f : tsv_rows(fx + "/legacy/expected.tsv")) {
    if (f.size() < 8 || f[6] != "0" || f[7] == "-") continue;
    SCOPED_TRACE(f[0] + " " + f[3]);
    auto in = read_file(fx + "/" + f[0]);
    auto golden = read_file(fx + "/" + f[7]);
    RelayOptions o = auto_opts();
    o.convert = true;
    o.conv.width = static_cast<unsigned>(std::stoul(f[1]));
    o.conv.guest = f[2] == "pv" ? GuestType::pv : GuestType::hvm;
    o.conv_format = f[3] == "libxl" ? RelayOptions::OutFormat::libxl : RelayOptions::OutFormat::libxc;
    o.conv.skip_qemu = f[4] == "1";
    Wiring s;
    s.in = Channel::socketpair;
    Relayed r = relay_bytes(in, o, s);
    EXPECT_TRUE(r.r.converted);
    // The relay forwards only what verifies: a golden output the verifier
    // refuses (the reference writes some) comes out cut before the record.
    Error ge = verify_bytes(golden);
    if (ge && ge.code != Errc::truncated) {
      ASSERT_TRUE(r.r.error);
      EXPECT_TRUE(is_prefix(r.out, golden));
      ++refused;
      continue;
    }
    ASSERT_FALSE(r.r.error) << r.r.error.message();
    EXPECT_EQ(r.out, golden);
    ++n;
  }
  EXPECT_GT(n, 30);
  std::printf("%d golden conversions equal, %d refused by the verifier\n", n, refused);
}

TEST(Relay, ConvertPassesAV3StreamUnchanged) {
  auto data = gen_bytes(small(GenOptions::Container::xl, true));
  RelayOptions o = auto_opts();
  o.convert = true;
  Relayed r = relay_bytes(data, o);
  ASSERT_FALSE(r.r.error) << r.r.error.message();
  EXPECT_FALSE(r.r.converted);
  EXPECT_EQ(r.out, data);
}

TEST(Relay, ConvertOfACutLegacyStreamNamesTheLegacyOffset) {
  GenOptions g = small(GenOptions::Container::xl, true);
  g.legacy = true;
  auto data = gen_bytes(g);
  std::vector<std::byte> cut(data.begin(), data.begin() + static_cast<std::ptrdiff_t>(data.size() / 2));
  RelayOptions o = auto_opts();
  o.convert = true;
  Relayed r = relay_bytes(cut, o);
  ASSERT_TRUE(r.r.error);
  EXPECT_EQ(r.r.error.code, Errc::truncated) << r.r.error.message();
  EXPECT_NE(r.r.error.message().find("legacy stream: "), std::string::npos) << r.r.error.message();
  // And the whole one converts like convert_legacy does.
  Relayed whole = relay_bytes(data, o);
  ASSERT_FALSE(whole.r.error) << whole.r.error.message();
  int mfd = memfd_create("conv", MFD_CLOEXEC);
  {
    auto src = memory_source(data);
    LegacyGuess lg = detect_legacy(*src);
    ConvertOptions co;
    co.width = lg.width;
    co.guest = lg.guest;
    co.xl = lg.xl;
    co.libxl = true;
    Sink sink(mfd);
    ASSERT_FALSE(convert_legacy(*src, sink, co).error);
  }
  ::lseek(mfd, 0, SEEK_SET);
  EXPECT_EQ(whole.out, read_all_fd(mfd));
  ::close(mfd);
}

}  // namespace
}  // namespace xsr::test
