// --stats, --stats-json, gen --rate, gen --connect and verify --listen as
// users run them: real processes, real pipes and sockets; JSON read back by
// Python's json module. Timing assertions are lower bounds only.
#include <poll.h>
#include <sys/stat.h>

#include <chrono>
#include <cstdio>
#include <regex>

#include "cli_util.h"
#include "common/stats.h"

namespace xsr::test {
namespace {

// A process left running while the test does something else: stderr is
// readable line by line (to learn a port), then everything is collected.
std::vector<std::string> split_lines(const std::string& s) {
  std::vector<std::string> v;
  std::istringstream in(s);
  for (std::string l; std::getline(in, l);) v.push_back(l);
  return v;
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

class StatsCli : public TempDirTest {
 protected:
  StatsCli() : TempDirTest("stats-cli") {}
  std::uint64_t size_of(const std::string& f) const {
    struct stat st {};
    EXPECT_EQ(::stat(f.c_str(), &st), 0) << f;
    return static_cast<std::uint64_t>(st.st_size);
  }
  // Runs python3 on `code` with the JSON file as d; returns its stdout.
  std::string python(const std::string& code, const std::string& json_file) {
    Result r = run(
        {"/usr/bin/python3", "-c", "import json,sys\nd=json.load(open(sys.argv[1]))\n" + code, json_file});
    EXPECT_EQ(r.exit, 0) << r.err;
    return r.out;
  }
  // The members every --stats-json has, and its samples' invariants: t and
  // bytes never go back, and the last sample is the total.
  std::string check_common(const std::string& json_file, const std::string& tool) {
    return python(
        "keys = {'tool','bytes','records','pages','seconds','mib_per_s','cpu_seconds',\n"
        "        'cpu_s_per_gib','max_rss_kib','interval_s','samples','ok','error'}\n"
        "s = d['samples']\n"
        "print(keys <= set(d), d['tool'] == '" +
            tool +
            "', len(s) >= 1,\n"
            "      all(a['t'] <= b['t'] and a['bytes'] <= b['bytes'] for a, b in zip(s, s[1:])),\n"
            "      s[-1]['bytes'] == d['bytes'], d['max_rss_kib'] > 0, d['cpu_seconds'] >= 0)\n",
        json_file);
  }
};

const char kAllTrue[] = "True True True True True True True\n";

TEST_F(StatsCli, GenPrintsALineEachIntervalAndAFinalLineWithTheExactSize) {
  const std::string f = path("g.bin");
  // 4 MiB at 16 MiB/s: about a quarter of a second, several 50 ms lines.
  Result r = run(
      {xsr_bin(), "gen", "--size", "4M", "--rate", "16M", "--stats", "--stats-interval", "0.05", "-o", f});
  ASSERT_EQ(r.exit, 0) << r.err;
  const std::regex periodic(
      R"(xsr gen: \d+\.\d s, [0-9.]+ (bytes|MiB)(, \d+ pages, \d+ records)?, [0-9.]+ MiB/s \(now [0-9.]+ MiB/s\), cpu [0-9.]+ s(/GiB)?)");
  int n = 0;
  std::string done;
  for (const std::string& l : split_lines(r.err)) {
    if (std::regex_match(l, periodic)) ++n;
    if (l.rfind("xsr gen: done: ", 0) == 0) done = l;
  }
  EXPECT_GE(n, 2) << r.err;
  const std::string size = std::to_string(size_of(f));
  EXPECT_TRUE(std::regex_match(done, std::regex(R"(xsr gen: done: \d+\.\d s, [0-9.]+ MiB \()" + size +
                                                R"( bytes\), \d+ pages, \d+ records, [0-9.]+ MiB/s average, )"
                                                R"(cpu [0-9.]+ s \([0-9.]+ s/GiB\), peak RSS [0-9.]+ MiB)")))
      << r.err;
}

TEST_F(StatsCli, VerifyFromASlowPipeCountsAsItGoesAndEndsAtTheStreamSize) {
  const std::string f = path("g.xl");
  Result g = run({xsr_bin(), "gen", "--size", "4M", "--format", "xl", "-o", f});
  ASSERT_EQ(g.exit, 0) << g.err;
  std::smatch m;
  ASSERT_TRUE(std::regex_search(g.err, m, std::regex(R"(xsr gen: (\d+) bytes, (\d+) records, (\d+) pages)")))
      << g.err;
  const std::string bytes = m[1], records = m[2], pages = m[3];
  // 16 pieces with 15 ms between them: however late verify starts, it
  // reads for 0.2 s at the least, long enough for several 20 ms lines.
  const auto data = read_file(f);
  int p[2];
  ASSERT_EQ(::pipe2(p, O_CLOEXEC), 0);
  std::thread writer([&] {
    const std::size_t piece = data.size() / 16 + 1;
    for (std::size_t off = 0; off < data.size(); off += piece) {
      const std::size_t n = std::min(piece, data.size() - off);
      for (std::size_t done = 0; done < n;) {
        ssize_t w = ::write(p[1], data.data() + off + done, n - done);
        if (w <= 0) break;
        done += static_cast<std::size_t>(w);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(15));
    }
    ::close(p[1]);
  });
  Result r = run({xsr_bin(), "verify", "--stats", "--stats-interval", "0.02"}, p[0]);
  writer.join();
  ::close(p[0]);
  ASSERT_EQ(r.exit, 0) << r.err;
  int n = 0;
  for (const std::string& l : split_lines(r.err))
    if (std::regex_match(l, std::regex(R"(xsr verify: \d+\.\d s, .*MiB/s \(now .*)"))) ++n;
  EXPECT_GE(n, 2) << r.err;
  EXPECT_TRUE(
      std::regex_search(r.err, std::regex("xsr verify: done: [0-9.]+ s, [0-9.]+ MiB \\(" + bytes +
                                          " bytes\\), " + pages + " pages, " + records + " records, ")))
      << r.err;
  EXPECT_NE(r.out.find("valid xl+libxl stream"), std::string::npos) << r.out;
}

TEST_F(StatsCli, VerifyStatsJsonAgreesWithVerifyJson) {
  const std::string f = path("g.xl"), j = path("v.json");
  ASSERT_EQ(run({xsr_bin(), "gen", "--size", "6M", "--format", "xl", "--checkpoints", "2", "-o", f}).exit, 0);
  Result r = run({xsr_bin(), "verify", "--stats-json", j, "--stats-interval", "0.01", f});
  ASSERT_EQ(r.exit, 0) << r.err;
  EXPECT_EQ(r.err, "");  // --stats-json alone prints nothing more
  EXPECT_EQ(check_common(j, "verify"), kAllTrue);
  Result js = run({xsr_bin(), "verify", "--json", f});
  ASSERT_EQ(js.exit, 0);
  const std::string vj = path("verdict.json");
  {
    std::ofstream o(vj);
    o << js.out;
  }
  const std::string size = std::to_string(size_of(f));
  Result p = run({"/usr/bin/python3", "-c",
                  "import json,sys\nd=json.load(open(sys.argv[1]))\nv=json.load(open(sys.argv[2]))\n"
                  "print(d['bytes'], d['bytes'] == v['bytes'], d['records'] == v['records'],\n"
                  "      d['pages'] == v['pages'], d['ok'], d['error'])\n",
                  j, vj});
  EXPECT_EQ(p.out, size + " True True True True None\n") << p.err;
}

TEST_F(StatsCli, QuietSilencesTheLinesButKeepsTheJson) {
  const std::string f = path("g"), j = path("q.json");
  ASSERT_EQ(run({xsr_bin(), "gen", "--size", "1M", "-o", f}).exit, 0);
  for (const char* cmd : {"verify", "convert"}) {
    std::vector<std::string> a = {xsr_bin(), cmd, "-q", "--stats", "--stats-json", j};
    if (std::string(cmd) == "convert") a.insert(a.end(), {"--width", "64", "--guest", "hvm"});
    a.push_back(std::string(cmd) == "convert" ? fixture("sample/legacy-hvm.xl.bin") : f);
    if (std::string(cmd) == "convert") a.push_back(path("out"));
    Result r = run(a);
    EXPECT_EQ(r.exit, 0) << cmd << r.err;
    EXPECT_EQ(r.err, "") << cmd;
    EXPECT_EQ(r.out, "") << cmd;
    EXPECT_EQ(check_common(j, cmd), kAllTrue) << cmd;
  }
}

TEST_F(StatsCli, AnInvalidStreamsStatsJsonSaysWhy) {
  const std::string j = path("v.json");
  Result r = run({xsr_bin(), "verify", "--stats-json", j, fixture("invalid/pagedata-reserved-pfn-bits.bin")});
  EXPECT_EQ(r.exit, 1);
  EXPECT_EQ(lines(r.err), 1) << r.err;
  EXPECT_EQ(check_common(j, "verify"), kAllTrue);
  EXPECT_EQ(python("print(d['ok'], 'Reserved bits set in pfn' in d['error'])\n", j), "False True\n");
}

TEST_F(StatsCli, ConvertStatsCountInputBytesAndOutputBytes) {
  const std::string in = fixture("legacy/hvm64-full.bin"), out = path("o.v3"), j = path("c.json");
  Result r = run({xsr_bin(), "convert", "--stats", "--stats-json", j, "--format", "libxl", in, out});
  ASSERT_EQ(r.exit, 0) << r.err;
  std::smatch m;
  ASSERT_TRUE(std::regex_search(r.err, m, std::regex(R"(bytes, (\d+) records, (\d+) pages\n)"))) << r.err;
  EXPECT_NE(r.err.find("xsr convert: done: "), std::string::npos) << r.err;
  EXPECT_EQ(check_common(j, "convert"), kAllTrue);
  EXPECT_EQ(python("print(d['bytes'], d['out_bytes'], d['records'], d['pages'], d['ok'])\n", j),
            std::to_string(size_of(in)) + " " + std::to_string(size_of(out)) + " " + std::string(m[1]) + " " +
                std::string(m[2]) + " True\n");
}

TEST_F(StatsCli, GenStatsJsonMatchesWhatWasWritten) {
  const std::string f = path("g.bin"), j = path("g.json");
  Result r = run({xsr_bin(), "gen", "--size", "3M", "--type", "pv", "--stats-json", j, "-o", f});
  ASSERT_EQ(r.exit, 0) << r.err;
  std::smatch m;
  ASSERT_TRUE(std::regex_search(r.err, m, std::regex(R"(xsr gen: (\d+) bytes, (\d+) records, (\d+) pages)")))
      << r.err;
  EXPECT_EQ(check_common(j, "gen"), kAllTrue);
  EXPECT_EQ(python("print(d['bytes'], d['records'], d['pages'])\n", j),
            std::to_string(size_of(f)) + " " + std::string(m[2]) + " " + std::string(m[3]) + "\n");
}

TEST_F(StatsCli, GenRateHoldsTheAverageDown) {
  // 8 MiB at 16 MiB/s: half a second at the least (upper bound: none).
  const auto t0 = std::chrono::steady_clock::now();
  Result r = run({xsr_bin(), "gen", "--size", "8M", "--rate", "16M", "-o", path("g.bin")});
  const double secs = seconds_since(t0);
  ASSERT_EQ(r.exit, 0) << r.err;
  EXPECT_GE(secs, 0.4);
  EXPECT_GE(secs, static_cast<double>(size_of(path("g.bin"))) / (16 << 20) - 0.01);
  // Unpaced, the same stream verifies the same.
  EXPECT_EQ(run({xsr_bin(), "verify", "-q", path("g.bin")}).exit, 0);
}

TEST_F(StatsCli, GenOverTcpToVerifyListeningOnAnEphemeralPortGivesTheFileVerdict) {
  Child v({xsr_bin(), "verify", "--listen", "127.0.0.1:0", "--stats-json", path("v.json")});
  const std::string l = v.err_line();
  std::smatch m;
  ASSERT_TRUE(std::regex_match(l, m, std::regex(R"(xsr verify: listening on 127\.0\.0\.1:(\d+))"))) << l;
  const std::string addr = "127.0.0.1:" + std::string(m[1]);
  const std::vector<std::string> gen{"--size", "3M", "--format", "xl", "--seed", "9", "--checkpoints", "1"};
  std::vector<std::string> argv{xsr_bin(), "gen", "--connect", addr, "--stats-json", path("g.json")};
  argv.insert(argv.end(), gen.begin(), gen.end());
  Result g = run(argv);
  EXPECT_EQ(g.exit, 0) << g.err;
  Result r = v.finish();
  EXPECT_EQ(r.exit, 0) << r.err;
  // The same stream from a file: the same verdict line but for the name.
  argv = {xsr_bin(), "gen", "-o", path("g.xl")};
  argv.insert(argv.end(), gen.begin(), gen.end());
  ASSERT_EQ(run(argv).exit, 0);
  Result f = run({xsr_bin(), "verify", path("g.xl")});
  ASSERT_EQ(f.exit, 0) << f.err;
  EXPECT_EQ(r.out, addr + f.out.substr(path("g.xl").size())) << r.out << f.out;
  const std::string size = std::to_string(size_of(path("g.xl")));
  EXPECT_EQ(python("print(d['bytes'], d['ok'])\n", path("v.json")), size + " True\n");
  EXPECT_EQ(python("print(d['bytes'], d['ok'])\n", path("g.json")), size + " True\n");
}

TEST_F(StatsCli, GenAndVerifyMeetOnAUnixSocket) {
  const std::string sock = "unix:" + path("s");
  // No port to learn: gen retries until verify listens.
  Child v({xsr_bin(), "verify", "--json", "--listen", sock});
  Result g = run({xsr_bin(), "gen", "--connect", sock, "--size", "2M", "--type", "pv"});
  EXPECT_EQ(g.exit, 0) << g.err;
  Result r = v.finish();
  EXPECT_EQ(r.exit, 0) << r.err;
  EXPECT_NE(r.out.find("\"verdict\": \"valid\""), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("\"input\": \"" + sock + "\""), std::string::npos) << r.out;
  struct stat st {};
  EXPECT_NE(::stat(path("s").c_str(), &st), 0);  // the socket file is gone
}

TEST_F(StatsCli, AnInvalidStreamOverASocketIsExitOne) {
  const std::string sock = "unix:" + path("s");
  Child v({xsr_bin(), "verify", "--listen", sock});
  // A legacy stream: the verifier names it and hangs up; gen may or may
  // not have finished writing by then.
  (void)run({xsr_bin(), "gen", "--connect", sock, "--legacy", "--size", "1M"});
  Result r = v.finish();
  EXPECT_EQ(r.exit, 1);
  EXPECT_EQ(lines(r.err), 1) << r.err;
  EXPECT_NE(r.err.find("xsr verify: " + sock + ": "), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("legacy"), std::string::npos) << r.err;
}

TEST_F(StatsCli, VerifyListenWithNobodyConnectingTimesOut) {
  const auto t0 = std::chrono::steady_clock::now();
  Result r = run({xsr_bin(), "verify", "--listen", "127.0.0.1:0", "--timeout", "1"});
  EXPECT_GE(seconds_since(t0), 0.9);
  EXPECT_EQ(r.exit, 1);
  const auto l = split_lines(r.err);
  ASSERT_EQ(l.size(), 2u) << r.err;
  EXPECT_TRUE(std::regex_match(l[0], std::regex(R"(xsr verify: listening on 127\.0\.0\.1:\d+)"))) << r.err;
  EXPECT_EQ(l[1], "xsr verify: no connection within 1 s");
}

TEST_F(StatsCli, BadOptionValuesAreUsageErrors) {
  const std::string f = fixture("valid/libxc-v3-hvm.bin");
  const std::vector<std::vector<std::string>> bad{
      {"verify", "--stats", "--stats-interval", "0", f},
      {"verify", "--stats", "--stats-interval", "-1", f},
      {"verify", "--stats-interval", "soon", f},
      {"verify", "--stats-json", "", f},
      {"verify", "--listen", "127.0.0.1", "--timeout", "1"},
      {"verify", "--listen", "127.0.0.1:99999", "--timeout", "1"},
      {"verify", "--listen", "unix:", "--timeout", "1"},
      {"verify", "--listen", "127.0.0.1:0", f},
      {"verify", "--listen", "127.0.0.1:0", "--timeout", "0"},
      {"verify", "--timeout", "1", f},
      {"convert", "--stats-interval", "nan", fixture("legacy/hvm64-full.bin"), path("o")},
      {"gen", "--rate", "0", "-o", path("g")},
      {"gen", "--rate", "fast", "-o", path("g")},
      {"gen", "--connect", "nowhere", "--size", "64K"},
      {"gen", "--connect", "127.0.0.1:1", "-o", path("g")},
      {"gen", "--stats-interval", "0", "-o", path("g")},
  };
  for (const auto& args : bad) {
    std::vector<std::string> argv{xsr_bin()};
    argv.insert(argv.end(), args.begin(), args.end());
    Result r = run(argv);
    std::string cmd;
    for (const auto& a : args) cmd.append(a).push_back(' ');
    EXPECT_EQ(r.exit, 2) << cmd << r.err;
    EXPECT_EQ(lines(r.err), 1) << cmd << r.err;
  }
  struct stat st {};
  EXPECT_NE(::stat(path("g").c_str(), &st), 0);
  EXPECT_NE(::stat(path("o").c_str(), &st), 0);
}

TEST_F(StatsCli, GenConnectThatCannotBeMadeIsExitTwo) {
  // A Unix socket path longer than sockaddr_un holds: no retrying that.
  // The peer, not the input, failed: status 2.
  Result r = run({xsr_bin(), "gen", "--connect", "unix:/" + std::string(200, 'x'), "--size", "64K"});
  EXPECT_EQ(r.exit, 2);  // a peer that cannot be reached is an output failure
  EXPECT_EQ(lines(r.err), 1) << r.err;
  EXPECT_NE(r.err.find("too long"), std::string::npos) << r.err;
}

// The library side: samples thinned by halves (the interval doubling) so a
// long run stays bounded, and a stop that does not wait out an interval.
TEST(RunStats, ThinsSamplesAndKeepsThemInOrder) {
  cli::RunStats s("test", false, 0.002);
  s.set_max_samples(8);
  // The interval as asked, before any sampling (so the loop below cannot
  // pass by a change of number format).
  std::string doc = s.json();
  EXPECT_NE(doc.find("\"interval_s\":0.002,"), std::string::npos) << doc;
  s.start();
  std::uint64_t b = 0;
  const auto t0 = std::chrono::steady_clock::now();
  // 8 ticks of 2 ms fill it; a loaded machine gets 1.5 s.
  while (seconds_since(t0) < 1.5) {
    s.set_bytes(b += 4096);
    s.add_records(1);
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
    doc = s.json();
    if (doc.find("\"interval_s\":0.002,") == std::string::npos) break;
  }
  EXPECT_EQ(doc.find("\"interval_s\":0.002,"), std::string::npos) << doc;
  s.set_bytes(b - 1);  // never goes back
  s.stop();
  doc = s.json(cli::Json{{"x", 1}});
  EXPECT_NE(doc.find("\"bytes\":" + std::to_string(b) + ","), std::string::npos) << doc;
  EXPECT_EQ(doc.substr(doc.size() - 8), ",\"x\":1}\n");
  const std::regex sample(R"(\{"t":([0-9.e+-]+),"bytes":(\d+)\})");
  std::vector<std::pair<double, std::uint64_t>> v;
  for (std::sregex_iterator it(doc.begin(), doc.end(), sample), end; it != end; ++it)
    v.emplace_back(std::stod((*it)[1]), std::stoull((*it)[2]));
  ASSERT_GE(v.size(), 2u);
  EXPECT_LE(v.size(), 9u);  // 8 kept at most, and the final one
  for (std::size_t i = 1; i < v.size(); ++i) {
    EXPECT_LE(v[i - 1].first, v[i].first);
    EXPECT_LE(v[i - 1].second, v[i].second);
  }
  EXPECT_EQ(v.back().second, b);
}

TEST(RunStats, StopDoesNotWaitOutTheInterval) {
  cli::RunStats s("test", false, 30);
  s.start();
  const auto t0 = std::chrono::steady_clock::now();
  s.stop();
  EXPECT_LT(seconds_since(t0), 10.0);  // far from the 30 s interval
  const std::string doc = s.json();
  EXPECT_NE(doc.find("\"samples\":[{\"t\":"), std::string::npos) << doc;  // the final one
  EXPECT_NE(doc.find("\"cpu_s_per_gib\":null"), std::string::npos) << doc;
}

}  // namespace
}  // namespace xsr::test
