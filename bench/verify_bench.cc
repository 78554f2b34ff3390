// Verifier benchmarks: the record walk over an in-memory stream, the PAGE_DATA
// pfn checks, and a whole verify of a file through the pread source, with a
// read(2) pass over the same file as the baseline. Inputs come from
// xsr::generate; every benchmark verifies its input once, checks the verdict
// and the page count against what the generator wrote, and only then times.
#include <benchmark/benchmark.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "xsr/gen.h"
#include "xsr/source.h"
#include "xsr/verify.h"

namespace {

constexpr std::uint64_t kMemStream = 64ull << 20;
// Large enough that per-open costs vanish, small enough for /tmp and for a
// run of a few seconds.
constexpr std::uint64_t kFileStream = 512ull << 20;

// The generated file, removed by die() too: an abort skips destructors.
std::string g_temp_path;

[[noreturn, gnu::format(printf, 1, 2)]] void die(const char* f, ...) {
  if (!g_temp_path.empty()) ::unlink(g_temp_path.c_str());
  std::va_list ap;
  va_start(ap, f);
  std::fputs("verify_bench: ", stderr);
  std::vfprintf(stderr, f, ap);
  std::fputc('\n', stderr);
  va_end(ap);
  std::abort();
}

struct Stream {
  std::vector<std::byte> bytes;
  xsr::GenResult gen;
};

// Generates into a memfd and reads it back: generate() wants a descriptor,
// the memory source wants bytes.
Stream generate_in_memory(const xsr::GenOptions& g) {
  int fd = ::memfd_create("xsr-bench", MFD_CLOEXEC);
  if (fd < 0) die("memfd_create: %s", std::strerror(errno));
  Stream s;
  s.gen = xsr::generate(fd, g);
  if (s.gen.error) die("generate: %s", s.gen.error.detail.c_str());
  s.bytes.resize(s.gen.bytes);
  std::size_t got = 0;
  while (got < s.bytes.size()) {
    ssize_t r = ::pread(fd, s.bytes.data() + got, s.bytes.size() - got, static_cast<off_t>(got));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) die("memfd read back: %s", r < 0 ? std::strerror(errno) : "short");
    got += static_cast<std::size_t>(r);
  }
  ::close(fd);
  return s;
}

// The output check every benchmark runs once before timing.
void check(const char* what, const xsr::Error& e, const xsr::StreamStats& st, const xsr::GenResult& gen) {
  if (e) die("%s: verify failed: %s", what, e.message().c_str());
  if (st.pages != gen.pages)
    die("%s: verify counted %llu pages, generate wrote %llu", what, static_cast<unsigned long long>(st.pages),
        static_cast<unsigned long long>(gen.pages));
  if (st.bytes != gen.bytes)
    die("%s: verify walked %llu bytes, generate wrote %llu", what, static_cast<unsigned long long>(st.bytes),
        static_cast<unsigned long long>(gen.bytes));
}

xsr::StreamStats verify_memory(const Stream& s, const xsr::VerifyOptions& opt, xsr::Error& e) {
  auto src = xsr::memory_source(s.bytes);
  xsr::StreamStats st;
  e = xsr::verify(*src, opt, st);
  return st;
}

void run_memory(benchmark::State& state, const char* what, const Stream& s, const xsr::VerifyOptions& opt) {
  xsr::Error e;
  xsr::StreamStats st = verify_memory(s, opt, e);
  check(what, e, st, s.gen);
  std::uint64_t pfns = 0;
  for (std::uint64_t n : st.pfns_by_type) pfns += n;
  for (auto _ : state) {
    xsr::StreamStats t = verify_memory(s, opt, e);
    if (e) die("%s: verify failed while timing: %s", what, e.message().c_str());
    benchmark::DoNotOptimize(t.pages);
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * s.bytes.size()));
  state.counters["records"] =
      benchmark::Counter(static_cast<double>(st.records), benchmark::Counter::kIsIterationInvariantRate);
  state.counters["pfns"] =
      benchmark::Counter(static_cast<double>(pfns), benchmark::Counter::kIsIterationInvariantRate);
}

// The whole libxc walk of a v3 HVM stream: headers, static data, PAGE_DATA
// records of `batch` pfns (page bodies skipped by arithmetic), the tail.
// The argument is the batch: 1024 as Xen's save writes, down to 1 to weigh
// the per-record cost.
void BM_RecordWalk(benchmark::State& state) {
  xsr::GenOptions g;
  g.size = kMemStream;
  g.batch = static_cast<std::uint32_t>(state.range(0));
  static std::vector<std::pair<std::uint32_t, Stream>> cache;
  const Stream* s = nullptr;
  for (auto& [b, st] : cache)
    if (b == g.batch) s = &st;
  if (!s) s = &cache.emplace_back(g.batch, generate_in_memory(g)).second;
  xsr::VerifyOptions opt;
  opt.format = xsr::Format::autodetect;
  run_memory(state, "BM_RecordWalk", *s, opt);
}
BENCHMARK(BM_RecordWalk)->Arg(1024)->Arg(64)->Arg(1)->Unit(benchmark::kMicrosecond);

// PAGE_DATA records of 1024 pfns each, with every per-pfn rule in force: a
// 64-bit PV stream (page-table types mixed in) under --strict, which adds
// the bound against the P2M's last pfn to the reserved-bit and type checks.
void BM_PageDataPfnCheck(benchmark::State& state) {
  xsr::GenOptions g;
  g.size = kMemStream;
  g.batch = 1024;
  g.hvm = false;
  static const Stream s = generate_in_memory(g);
  xsr::VerifyOptions opt;
  opt.format = xsr::Format::libxc;
  opt.strict = true;
  run_memory(state, "BM_PageDataPfnCheck", s, opt);
}
BENCHMARK(BM_PageDataPfnCheck)->Unit(benchmark::kMicrosecond);

// A generated file in /tmp, removed at exit.
class TempStream {
 public:
  TempStream() {
    char tmpl[] = "/tmp/xsr-bench-XXXXXX";
    int fd = ::mkstemp(tmpl);
    if (fd < 0) die("mkstemp: %s", std::strerror(errno));
    path_ = tmpl;
    g_temp_path = path_;
    xsr::GenOptions g;
    g.size = kFileStream;
    gen_ = xsr::generate(fd, g);
    if (::close(fd) != 0 && !gen_.error) gen_.error = xsr::Error::at(xsr::Errc::io, 0, std::strerror(errno));
    if (gen_.error) {
      ::unlink(path_.c_str());
      die("generate %s: %s", path_.c_str(), gen_.error.detail.c_str());
    }
  }
  ~TempStream() {
    ::unlink(path_.c_str());
    g_temp_path.clear();
  }
  const std::string& path() const { return path_; }
  const xsr::GenResult& gen() const { return gen_; }

 private:
  std::string path_;
  xsr::GenResult gen_;
};

const TempStream& temp_stream() {
  static const TempStream t;
  return t;
}

// Reads the file once, so the timed runs find it in the page cache (the host
// evicts page cache left idle for about a minute, MEASUREMENTS.md).
void warm(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) die("open %s: %s", path.c_str(), std::strerror(errno));
  static std::vector<char> buf(1 << 20);
  while (::read(fd, buf.data(), buf.size()) > 0) {
  }
  ::close(fd);
}

xsr::StreamStats verify_file(const std::string& path, xsr::IoMode mode, xsr::Error& e) {
  xsr::OpenResult o = xsr::open_source(path, mode);
  if (!o.source) die("open_source %s: %s", path.c_str(), o.error.detail.c_str());
  xsr::StreamStats st;
  xsr::VerifyOptions opt;
  opt.format = xsr::Format::autodetect;
  e = xsr::verify(*o.source, opt, st);
  return st;
}

void run_file(benchmark::State& state, const char* what, xsr::IoMode mode) {
  const TempStream& t = temp_stream();
  warm(t.path());
  xsr::Error e;
  check(what, e, verify_file(t.path(), mode, e), t.gen());
  for (auto _ : state) {
    xsr::StreamStats st = verify_file(t.path(), mode, e);
    if (e) die("%s: verify failed while timing: %s", what, e.message().c_str());
    benchmark::DoNotOptimize(st.pages);
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * t.gen().bytes));
}

// What `xsr verify FILE` does: open, headers and pfn arrays by pread, page
// bodies skipped by offset.
void BM_VerifyFilePread(benchmark::State& state) {
  run_file(state, "BM_VerifyFilePread", xsr::IoMode::pread);
}
BENCHMARK(BM_VerifyFilePread)->Unit(benchmark::kMillisecond);

// The same through bounded mapped windows (--io mmap).
void BM_VerifyFileMmap(benchmark::State& state) { run_file(state, "BM_VerifyFileMmap", xsr::IoMode::mmap); }
BENCHMARK(BM_VerifyFileMmap)->Unit(benchmark::kMillisecond);

// The baseline in the same run: the file read whole with 128 KiB read(2)s,
// as `cat FILE > /dev/null` does.
void BM_ReadFileBaseline(benchmark::State& state) {
  const TempStream& t = temp_stream();
  warm(t.path());
  std::vector<char> buf(128 << 10);
  std::uint64_t total = 0;
  for (auto _ : state) {
    int fd = ::open(t.path().c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) die("open %s: %s", t.path().c_str(), std::strerror(errno));
    std::uint64_t n = 0;
    for (ssize_t r; (r = ::read(fd, buf.data(), buf.size())) > 0;) n += static_cast<std::uint64_t>(r);
    ::close(fd);
    if (n != t.gen().bytes)
      die("BM_ReadFileBaseline: read %llu bytes, generate wrote %llu", static_cast<unsigned long long>(n),
          static_cast<unsigned long long>(t.gen().bytes));
    total += n;
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(total));
}
BENCHMARK(BM_ReadFileBaseline)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
