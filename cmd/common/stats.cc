#include "common/stats.h"

#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <cstring>

#include "common/exit.h"
#include "common/output.h"
#include "common/progress.h"
#include "xsr/sys.h"
#include "xsr/units.h"

namespace xsr::cli {
namespace {

constexpr double kMiB = 1024.0 * 1024.0;
constexpr double kGiB = kMiB * 1024.0;

}  // namespace

RunStats::RunStats(std::string tool, bool lines, double interval_s)
    : tool_(std::move(tool)), lines_(lines), interval_s_(interval_s > 0 ? interval_s : 0) {}

RunStats::~RunStats() {
  // First: an interrupt being handled may be writing the summary.
  on_interrupt_.reset();
  if (!summary_path_.empty()) {
    // A run that ended early (a cli::die, an early return) says so.
    const std::string& why = last_failure();
    std::string err;
    write_summary(verdict_json(why.empty() ? "the run ended early" : why), &err);
  }
  // Without a final line: stop() says what the run did; a destructor runs
  // on paths that did not get that far.
  {
    std::lock_guard<std::mutex> lk(mu_);
    quit_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

RunStats::Cpu RunStats::cpu_now() {
  rusage ru{};
  ::getrusage(RUSAGE_SELF, &ru);
  auto secs = [](const timeval& tv) {
    return static_cast<double>(tv.tv_sec) + static_cast<double>(tv.tv_usec) / 1e6;
  };
  return {secs(ru.ru_utime) + secs(ru.ru_stime), ru.ru_maxrss};
}

void RunStats::start() {
  if (started_) return;
  started_ = true;
  start_ns_ = mono_ns();
  if (interval_s_ > 0) thread_ = std::thread([this] { run(); });
}

void RunStats::set_bytes(std::uint64_t total) {
  std::uint64_t cur = bytes_.load(std::memory_order_relaxed);
  while (total > cur && !bytes_.compare_exchange_weak(cur, total, std::memory_order_relaxed)) {
  }
}

void RunStats::add_records(std::uint64_t n) { records_.fetch_add(n, std::memory_order_relaxed); }
void RunStats::add_pages(std::uint64_t n) { pages_.fetch_add(n, std::memory_order_relaxed); }

double RunStats::elapsed() const {
  if (!started_) return 0;
  const std::uint64_t end = stopped_ ? stop_ns_ : mono_ns();
  return static_cast<double>(end - start_ns_) / 1e9;
}

void RunStats::add_sample(double t, std::uint64_t bytes) {
  if (samples_.size() >= max_samples_) {
    // Keep the odd indexes: with ticks counted from 1, the kept samples
    // stay those of ticks that are multiples of the new keep_every_.
    std::size_t j = 0;
    for (std::size_t i = 1; i < samples_.size(); i += 2) samples_[j++] = samples_[i];
    samples_.resize(j);
    keep_every_ *= 2;
  }
  samples_.push_back({t, bytes});
}

void RunStats::run() {
  using clock = std::chrono::steady_clock;
  const auto step = std::chrono::duration_cast<clock::duration>(std::chrono::duration<double>(interval_s_));
  auto next = clock::now() + step;
  double last_t = 0;
  std::uint64_t last_bytes = 0;
  std::unique_lock<std::mutex> lk(mu_);
  for (;;) {
    if (cv_.wait_until(lk, next, [this] { return quit_; })) return;
    const double t = elapsed();
    const std::uint64_t b = bytes_.load(std::memory_order_relaxed);
    if (++ticks_ % keep_every_ == 0) add_sample(t, b);
    if (lines_) {
      const double now_rate = t > last_t ? static_cast<double>(b - last_bytes) / kMiB / (t - last_t) : 0;
      print(stderr, "%s", line(t, b, now_rate).c_str());
    }
    last_t = t;
    last_bytes = b;
    next += step;
    // A late wake (a stopped process, a loaded machine) skips the missed
    // ticks rather than firing them back to back.
    if (const auto now = clock::now(); next <= now) next = now + step;
  }
}

std::string RunStats::line(double t, std::uint64_t bytes, double now_rate) const {
  std::string l = "xsr ";
  l.append(tool_).append(": ").append(strprintf("%.1f s", t)).append(", ").append(format_bytes(bytes));
  const std::uint64_t pages = pages_.load(std::memory_order_relaxed),
                      records = records_.load(std::memory_order_relaxed);
  // convert and gen learn their counts at the end only: no zeros meanwhile.
  if (pages || records)
    l.append(", ")
        .append(std::to_string(pages))
        .append(" pages, ")
        .append(std::to_string(records))
        .append(" records");
  l.append(", ").append(strprintf("%.1f MiB/s", t > 0 ? static_cast<double>(bytes) / kMiB / t : 0));
  l.append(" (now ").append(strprintf("%.1f MiB/s", now_rate)).append(")");
  const double cpu = cpu_now().seconds;
  if (bytes) l.append(", cpu ").append(strprintf("%.2f s/GiB", cpu / (static_cast<double>(bytes) / kGiB)));
  else l.append(", cpu ").append(strprintf("%.2f s", cpu));
  l.push_back('\n');
  return l;
}

std::string RunStats::final_line() const {
  const double t = elapsed();
  const std::uint64_t bytes = bytes_.load(std::memory_order_relaxed);
  std::string l = "xsr ";
  l.append(tool_).append(": done: ").append(strprintf("%.1f s", t)).append(", ").append(format_bytes(bytes));
  if (bytes >= (1ull << 20)) l.append(" (").append(std::to_string(bytes)).append(" bytes)");
  l.append(", ").append(std::to_string(pages_.load(std::memory_order_relaxed))).append(" pages, ");
  l.append(std::to_string(records_.load(std::memory_order_relaxed))).append(" records, ");
  l.append(strprintf("%.1f MiB/s average", t > 0 ? static_cast<double>(bytes) / kMiB / t : 0));
  l.append(", cpu ").append(strprintf("%.2f s", end_cpu_.seconds));
  if (bytes)
    l.append(" (")
        .append(strprintf("%.2f s/GiB", end_cpu_.seconds / (static_cast<double>(bytes) / kGiB)))
        .append(")");
  l.append(", peak RSS ").append(strprintf("%.1f MiB", static_cast<double>(end_cpu_.max_rss_kib) / 1024.0));
  l.push_back('\n');
  return l;
}

void RunStats::stop() {
  if (stopped_) return;
  if (!started_) start();
  {
    std::lock_guard<std::mutex> lk(mu_);
    quit_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  stop_ns_ = mono_ns();
  stopped_ = true;
  end_cpu_ = cpu_now();
  {
    std::lock_guard<std::mutex> lk(mu_);
    add_sample(elapsed(), bytes_.load(std::memory_order_relaxed));
  }
  if (lines_) {
    print(stderr, "%s", final_line().c_str());
  }
}

std::string RunStats::json(const Json& extra) const {
  const double t = elapsed();
  const std::uint64_t bytes = bytes_.load(std::memory_order_relaxed);
  const Cpu cpu = stopped_ ? end_cpu_ : cpu_now();
  Json doc;
  doc["schema"] = "xsr-stats/1";
  doc["tool"] = tool_;
  doc["bytes"] = bytes;
  doc["records"] = records_.load(std::memory_order_relaxed);
  doc["pages"] = pages_.load(std::memory_order_relaxed);
  doc["seconds"] = rounded(t, 6);
  doc["mib_per_s"] = rounded(t > 0 ? static_cast<double>(bytes) / kMiB / t : 0, 3);
  doc["cpu_seconds"] = rounded(cpu.seconds, 6);
  doc["cpu_s_per_gib"] =
      bytes ? Json(rounded(cpu.seconds / (static_cast<double>(bytes) / kGiB), 6)) : Json(nullptr);
  doc["max_rss_kib"] = cpu.max_rss_kib;
  std::lock_guard<std::mutex> lk(mu_);
  doc["interval_s"] = rounded(interval_s_ * static_cast<double>(keep_every_), 6);
  Json samples = Json::array();
  for (const Sample& s : samples_) samples.push_back({{"t", rounded(s.t, 6)}, {"bytes", s.bytes}});
  doc["samples"] = std::move(samples);
  for (const auto& [key, value] : extra.items()) doc[key] = value;
  return dump(doc);
}

bool RunStats::write_json(const std::string& path, const Json& extra, std::string* err) const {
  const std::string doc = json(extra);
  Output out;
  if (!out.open_file(path, err)) return false;
  if (const int e = sys::write_all(out.fd(), doc.data(), doc.size()); e != 0) {
    *err = "write " + out.name() + ": " + std::strerror(e);
    return false;  // out's destructor removes the temporary file
  }
  return out.commit(err);
}

void RunStats::set_summary(std::string path) {
  summary_path_ = std::move(path);
  on_interrupt_.set([this](int sig) {
    std::string err;
    write_summary(verdict_json(std::string("interrupted by ") + signal_name(sig)), &err);
  });
}

bool RunStats::write_summary(const Json& extra, std::string* err) {
  if (summary_path_.empty() || summary_claimed_.exchange(true)) return true;
  return write_json(summary_path_, extra, err);
}

}  // namespace xsr::cli
