// `xsr relay` as a process in a migration path: generator -> relay ->
// verifier over loopback TCP (127.0.0.1 only), Unix sockets and pipes;
// corrupt streams stopped before the bad record; receivers that leave or
// stall; bounded memory with a slow receiver; conversion on the way.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <regex>

#include "../test_util.h"
#include "cli_util.h"
#include "xsr/records.h"
#include "xsr/sys.h"

namespace xsr::test {
namespace {

std::string tmp_path(const std::string& name) {
  return ::testing::TempDir() + "xsr-relay-" + std::to_string(::getpid()) + "-" + name;
}

std::string gen_file(const std::string& name, std::vector<std::string> extra) {
  const std::string p = tmp_path(name);
  std::vector<std::string> argv{xsr_bin(), "gen", "-o", p};
  argv.insert(argv.end(), extra.begin(), extra.end());
  Result r = run(argv);
  EXPECT_EQ(r.exit, 0) << r.err;
  return p;
}

int open_in(const std::string& p) { return ::open(p.c_str(), O_RDONLY | O_CLOEXEC); }
int open_out(const std::string& p) {
  return ::open(p.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
}

const char kPort[] = "listening on 127.0.0.1:";

// gen --connect -> relay --listen/--connect -> verify --listen, all on
// ephemeral loopback ports, and the same through Unix sockets.
TEST(RelayCli, GeneratorRelayVerifierOverLoopbackTcp) {
  Child verifier({xsr_bin(), "verify", "--listen", "127.0.0.1:0", "--timeout", "20"});
  const std::string vport = verifier.line_after(kPort);
  ASSERT_FALSE(vport.empty()) << "verify --listen named no port";
  Child relay(
      {xsr_bin(), "relay", "--listen", "127.0.0.1:0", "--connect", "127.0.0.1:" + vport, "--timeout", "20"});
  const std::string rport = relay.line_after(kPort);
  ASSERT_FALSE(rport.empty()) << "relay --listen named no port";
  Result g = run({xsr_bin(), "gen", "--size", "24M", "-f", "xl", "--connect", "127.0.0.1:" + rport});
  EXPECT_EQ(g.exit, 0) << g.err;
  const Result relay_r = relay.finish();
  EXPECT_EQ(relay_r.exit, 0) << relay_r.err;
  const Result verifier_r = verifier.finish();
  EXPECT_EQ(verifier_r.exit, 0) << verifier_r.err;
  EXPECT_NE(relay_r.err.find("xsr relay: forwarded 23.9 MiB (xl+libxl stream"), std::string::npos)
      << relay_r.err;
}

TEST(RelayCli, UnixSocketsBothSides) {
  const std::string a = tmp_path("a.sock"), b = tmp_path("b.sock"), out = tmp_path("unix.out");
  const std::string img = gen_file("unix.img", {"--size", "6M", "-f", "libxl", "-t", "pv"});
  int ofd = open_out(out);
  Child sink({xsr_bin(), "relay", "--listen", "unix:" + b, "-o", "-"}, -1, ofd);
  ::close(ofd);
  Child relay({xsr_bin(), "relay", "--listen", "unix:" + a, "--connect", "unix:" + b});
  Result g = run({xsr_bin(), "gen", "--size", "6M", "-f", "libxl", "-t", "pv", "--connect", "unix:" + a});
  EXPECT_EQ(g.exit, 0) << g.err;
  const Result relay_r = relay.finish();
  EXPECT_EQ(relay_r.exit, 0) << relay_r.err;
  const Result sink_r = sink.finish();
  EXPECT_EQ(sink_r.exit, 0) << sink_r.err;
  EXPECT_EQ(read_file(out), read_file(img));
  EXPECT_NE(::access(a.c_str(), F_OK), 0) << "socket file left behind";
  ::unlink(out.c_str());
  ::unlink(img.c_str());
}

// A corrupt record in the middle: the receiver gets every byte before it
// and the relay exits 1 naming the record.
TEST(RelayCli, CorruptStreamStopsAtTheBadRecord) {
  const std::string img = gen_file("corrupt.img", {"--size", "8M", "-f", "libxl", "--batch", "64"});
  auto data = read_file(img);
  // The 10th PAGE_DATA record, from the relay's own listing.
  Result ls = run({xsr_bin(), "inspect", "--records", img});
  ASSERT_EQ(ls.exit, 0);
  std::regex pd(R"(^(0x[0-9a-f]+)\s+libxc\s+PAGE_DATA)");
  std::vector<std::uint64_t> offs;
  std::stringstream ss(ls.out);
  for (std::string l; std::getline(ss, l);) {
    std::smatch m;
    if (std::regex_search(l, m, pd)) offs.push_back(std::stoull(m[1].str(), nullptr, 16));
  }
  ASSERT_GT(offs.size(), 10u);
  const std::uint64_t rec = offs[9];
  data[rec + 8 + 4] = std::byte{1};  // PAGE_DATA reserved field
  const std::string bad = tmp_path("bad.img");
  {
    int fd = open_out(bad);
    ASSERT_EQ(sys::write_all(fd, data.data(), data.size()), 0);
    ::close(fd);
  }
  int p[2];
  ASSERT_EQ(::pipe2(p, O_CLOEXEC), 0);
  std::vector<std::byte> got;
  std::thread collect([&] { got = read_all_fd(p[0]); });
  int in = open_in(bad);
  Child relay({xsr_bin(), "relay"}, in, p[1]);
  ::close(in);
  ::close(p[1]);
  const Result relay_r = relay.finish();
  EXPECT_EQ(relay_r.exit, 1);
  collect.join();
  ::close(p[0]);
  char off[32];
  std::snprintf(off, sizeof off, "0x%llx", static_cast<unsigned long long>(rec));
  EXPECT_NE(relay_r.err.find(std::string("xsr relay: <stdin>: offset ") + off), std::string::npos)
      << relay_r.err;
  EXPECT_NE(relay_r.err.find("(PAGE_DATA): Reserved bits set in PAGE_DATA record"), std::string::npos)
      << relay_r.err;
  EXPECT_NE(relay_r.err.find("; forwarded " + std::to_string(rec) + " bytes before it"), std::string::npos)
      << relay_r.err;
  EXPECT_EQ(lines(relay_r.err), 1) << relay_r.err;
  ASSERT_EQ(got.size(), rec);
  EXPECT_TRUE(std::equal(got.begin(), got.end(), data.begin()));
  // A FILE output of a failed relay does not stay behind.
  const std::string out = tmp_path("bad.out");
  Result r = run({xsr_bin(), "relay", bad, "-o", out});
  EXPECT_EQ(r.exit, 1);
  EXPECT_NE(::access(out.c_str(), F_OK), 0);
  ::unlink(bad.c_str());
  ::unlink(img.c_str());
}

TEST(RelayCli, AReceiverThatLeavesGivesExit1NotSigpipe) {
  const std::string img = gen_file("leave.img", {"--size", "32M"});
  int p[2];
  ASSERT_EQ(::pipe2(p, O_CLOEXEC), 0);
  int in = open_in(img);
  Child relay({xsr_bin(), "relay"}, in, p[1]);
  ::close(in);
  ::close(p[1]);
  char b[65536];
  ASSERT_GT(::read(p[0], b, sizeof b), 0);
  ::close(p[0]);
  const Result relay_r = relay.finish();
  EXPECT_EQ(relay_r.exit, 2) << relay_r.err;  // the output failed, not the input
  EXPECT_NE(relay_r.err.find("xsr relay: <stdout>: Broken pipe (the receiver closed the connection) (after "),
            std::string::npos)
      << relay_r.err;
  ::unlink(img.c_str());
}

TEST(RelayCli, TimeoutsForIdlePeers) {
  // Nobody connects.
  auto t0 = std::chrono::steady_clock::now();
  Result r = run({xsr_bin(), "relay", "--listen", "127.0.0.1:0", "--timeout", "0.5"});
  EXPECT_EQ(r.exit, 1);
  EXPECT_NE(r.err.find("xsr relay: 127.0.0.1:0: no connection within 0.5 s"), std::string::npos) << r.err;
  EXPECT_GE(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(450));
  // A sender that stops mid-stream without closing.
  const std::string img = gen_file("idle.img", {"--size", "4M"});
  auto data = read_file(img);
  int s[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, s), 0);
  // (Less than the socket buffer holds: nobody reads until the relay runs.)
  ASSERT_EQ(sys::write_all(s[1], data.data(), 60000), 0);
  Child relay({xsr_bin(), "relay", "--timeout", "0.4"}, s[0]);
  const Result relay_r = relay.finish();
  EXPECT_EQ(relay_r.exit, 1);
  EXPECT_NE(relay_r.err.find("read failed: no data from the sender for 0.4 s (--timeout)"), std::string::npos)
      << relay_r.err;
  ::close(s[0]);
  ::close(s[1]);
  ::unlink(img.c_str());
}

// A slow receiver holds the relay back (the sender waits) and memory
// stays bounded: well under 64 MiB peak RSS for a 256 MiB stream.
TEST(RelayCli, SlowReceiverBackPressureBoundedMemory) {
  int a[2], b[2];
  ASSERT_EQ(::pipe2(a, O_CLOEXEC), 0);
  ASSERT_EQ(::pipe2(b, O_CLOEXEC), 0);
  Child gen({xsr_bin(), "gen", "--size", "256M", "-f", "libxl"}, -1, a[1]);
  ::close(a[1]);
  Child relay({xsr_bin(), "relay"}, a[0], b[1]);
  ::close(a[0]);
  ::close(b[1]);
  // The receiver: 64 KiB reads with pauses at first, then all of it.
  std::uint64_t total = 0;
  char buf[65536];
  for (int i = 0;; ++i) {
    ssize_t n = ::read(b[0], buf, sizeof buf);
    if (n <= 0) break;
    total += static_cast<std::uint64_t>(n);
    if (i < 40) ::usleep(5000);
  }
  ::close(b[0]);
  const Result gen_r = gen.finish();
  EXPECT_EQ(gen_r.exit, 0) << gen_r.err;
  const Result relay_r = relay.finish();
  EXPECT_EQ(relay_r.exit, 0) << relay_r.err;
  EXPECT_GT(total, 250u << 20);
#ifndef XSR_ASAN  // ASan's shadow memory and quarantine are not the relay's
  EXPECT_LT(relay.maxrss_kib(), 64 * 1024) << "peak RSS " << relay.maxrss_kib() << " KiB";
#endif
}

TEST(RelayCli, ThenCopyAfterTheStream) {
  const std::string img = gen_file("then.img", {"--size", "2M", "-f", "xl"});
  auto data = read_file(img);
  // stdin: the stream and a handshake line; --then-copy forwards the line.
  int p[2];
  ASSERT_EQ(::pipe2(p, O_CLOEXEC), 0);
  std::thread feed([&] {
    (void)sys::write_all(p[1], data.data(), data.size());
    (void)sys::write_all(p[1], "go\n", 3);
    ::close(p[1]);
  });
  Result r = run({xsr_bin(), "relay", "--then-copy"}, p[0]);
  feed.join();
  ::close(p[0]);
  EXPECT_EQ(r.exit, 0) << r.err;
  EXPECT_EQ(r.out.size(), data.size() + 3);
  EXPECT_EQ(r.out.substr(data.size()), "go\n");
  EXPECT_NE(r.err.find("; then 3 bytes on, 0 back"), std::string::npos) << r.err;
  // Without it, the line stays unread on the pipe for whoever reads next.
  ASSERT_EQ(::pipe2(p, O_CLOEXEC), 0);
  std::thread feed2([&] {
    (void)sys::write_all(p[1], data.data(), data.size());
    (void)sys::write_all(p[1], "go\n", 3);
    ::close(p[1]);
  });
  Result r2 = run({xsr_bin(), "relay"}, p[0]);
  feed2.join();
  EXPECT_EQ(r2.exit, 0) << r2.err;
  EXPECT_EQ(r2.out.size(), data.size());
  char rest[8] = {};
  EXPECT_EQ(::read(p[0], rest, sizeof rest), 3);
  EXPECT_STREQ(rest, "go\n");
  ::close(p[0]);
  ::unlink(img.c_str());
}

// relay --convert gives what xsr convert gives, over a pipe.
TEST(RelayCli, ConvertOnTheWayEqualsXsrConvert) {
  for (const char* fmt : {"xl", "libxc"}) {
    const std::string img = gen_file(std::string("legacy-") + fmt, {"--legacy", "--size", "6M", "-f", fmt});
    const std::string conv = tmp_path("converted");
    Result c = run({xsr_bin(), "convert", img, conv});
    ASSERT_EQ(c.exit, 0) << c.err;
    int in = open_in(img);
    Result r = run({xsr_bin(), "relay", "--convert"}, in);
    ::close(in);
    EXPECT_EQ(r.exit, 0) << r.err;
    EXPECT_NE(r.err.find("converted from legacy"), std::string::npos) << r.err;
    auto want = read_file(conv);
    EXPECT_EQ(r.out.size(), want.size()) << fmt;
    EXPECT_TRUE(r.out == std::string(reinterpret_cast<const char*>(want.data()), want.size())) << fmt;
    ::unlink(conv.c_str());
    ::unlink(img.c_str());
  }
}

TEST(RelayCli, StatsLinesAndJson) {
  const std::string img = gen_file("stats.img", {"--size", "20M", "-f", "libxl", "--batch", "256"});
  const auto data = read_file(img);
  const std::string json = tmp_path("stats.json");
  int in = open_in(img);
  Result r = run({xsr_bin(), "relay", "--stats", "--stats-interval", "0.05", "--stats-json", json}, in);
  ::close(in);
  ASSERT_EQ(r.exit, 0) << r.err;
  EXPECT_EQ(r.out.size(), data.size());
  // The final line counts every byte, record and page forwarded.
  std::smatch m;
  ASSERT_TRUE(std::regex_search(
      r.err, m, std::regex(R"(xsr relay: done: .*\((\d+) bytes\), (\d+) pages, (\d+) records)")))
      << r.err;
  EXPECT_EQ(std::stoull(m[1].str()), data.size());
  const std::string j = slurp(json);
  EXPECT_NE(j.find("\"tool\":\"relay\""), std::string::npos) << j;
  EXPECT_NE(j.find("\"bytes\":" + std::to_string(data.size()) + ","), std::string::npos) << j;
  EXPECT_NE(j.find("\"in_bytes\":" + std::to_string(data.size())), std::string::npos) << j;
  EXPECT_NE(j.find("\"ok\":true"), std::string::npos) << j;
  EXPECT_NE(j.find("\"error\":null"), std::string::npos) << j;
  EXPECT_NE(j.find("\"samples\":[{"), std::string::npos) << j;
  // Pages: the stream's page bodies, as xsr verify counts them.
  Result vv = run({xsr_bin(), "verify", img});
  std::smatch pm;
  ASSERT_TRUE(std::regex_search(vv.out, pm, std::regex(R"((\d+) records, (\d+) pages)"))) << vv.out;
  EXPECT_EQ(m[2].str(), pm[2].str());
  EXPECT_EQ(m[3].str(), pm[1].str());
  ::unlink(json.c_str());
  ::unlink(img.c_str());
}

TEST(RelayCli, UsageErrorsExit2) {
  for (std::vector<std::string> a : std::vector<std::vector<std::string>>{
           {"--listen", "nonsense"},
           {"--connect", "127.0.0.1:99999"},
           {"--timeout", "-1"},
           {"--hold", "12"},
           {"--width", "64"},
           {"--format", "xml"},
           {"--io", "mmap"},
           {"x.img", "--listen", "127.0.0.1:0"},
       }) {
    std::vector<std::string> argv{xsr_bin(), "relay"};
    argv.insert(argv.end(), a.begin(), a.end());
    Result r = run(argv);
    EXPECT_EQ(r.exit, 2) << a[0] << ": " << r.err;
    EXPECT_EQ(lines(r.err), 1) << r.err;
  }
}

}  // namespace
}  // namespace xsr::test
