// --stats for the commands that move a stream (relay, verify, convert, gen):
// live counters, periodic and final lines on stderr, and a JSON summary with
// the throughput samples a plot is drawn from.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/interrupt.h"
#include "common/json.h"
#include "xsr/counters.h"

namespace xsr::cli {

class RunStats final : public RunCounters {
 public:
  // tool: "relay", "verify", "convert", "gen" (the lines start "xsr TOOL:").
  // lines: print periodic lines every interval_s (> 0) and a final line.
  // Samples (t, bytes) are taken every interval_s whether or not lines are
  // printed, for the JSON summary.
  RunStats(std::string tool, bool lines, double interval_s);
  ~RunStats();
  RunStats(const RunStats&) = delete;
  RunStats& operator=(const RunStats&) = delete;

  // Starts the clock (and the sampling thread when interval_s > 0).
  void start();
  // Counters: safe from any thread. The byte count never goes back: a total
  // below the current one (a coarser source reporting late) is ignored.
  void set_bytes(std::uint64_t total) override;
  void add_records(std::uint64_t n) override;
  void add_pages(std::uint64_t n) override;
  // Stops the clock and the thread; prints the final line when lines.
  // The final sample (t at stop, bytes) is always recorded. Idempotent.
  void stop();

  // The run as one compact JSON line (docs/stats-json.md): {"schema":
  // "xsr-stats/1", "tool", "bytes", "records", "pages",
  // "seconds", "mib_per_s", "cpu_seconds", "cpu_s_per_gib", "max_rss_kib",
  // "interval_s", "samples": [{"t", "bytes"}, ...]}, then the members of
  // `extra` ({"ok": true, ...}). interval_s is the spacing of the periodic
  // samples (the requested interval, doubled each time the samples were
  // thinned; 0: no periodic sampling); cpu_s_per_gib is null when no byte
  // moved. Before stop(), the figures are those of the moment.
  std::string json(const Json& extra = Json::object()) const;
  // Writes json(extra) to `path` through a temporary name (cli::Output);
  // false with *err set on failure.
  bool write_json(const std::string& path, const Json& extra, std::string* err) const;

  // The summary (--stats-json FILE): written once, by write_summary(), or
  // else with "ok": false by whichever comes first of an interrupt ("error":
  // "interrupted by SIGINT") and the destructor (the message of the
  // cli::die() that ended the run early, if any).
  void set_summary(std::string path);
  // Writes json(extra) to the summary's file unless it was written already
  // (true then); false with *err set on failure.
  bool write_summary(const Json& extra, std::string* err);

  // At most this many samples are kept: when full, every other one is
  // dropped and the sampling interval doubles (default kMaxSamples; tests).
  static constexpr std::size_t kMaxSamples = 100000;
  void set_max_samples(std::size_t n) { max_samples_ = n < 2 ? 2 : n; }

 private:
  struct Sample {
    double t;
    std::uint64_t bytes;
  };
  struct Cpu {
    double seconds;
    long max_rss_kib;
  };
  static Cpu cpu_now();
  void run();                                      // the sampling thread
  void add_sample(double t, std::uint64_t bytes);  // with mu_ held
  std::string line(double t, std::uint64_t bytes, double now_rate) const;
  std::string final_line() const;
  double elapsed() const;  // seconds since start(), or start() to stop()

  std::string tool_;
  bool lines_;
  double interval_s_;
  std::atomic<std::uint64_t> bytes_{0}, records_{0}, pages_{0};
  std::uint64_t start_ns_ = 0, stop_ns_ = 0;
  bool started_ = false, stopped_ = false;
  Cpu end_cpu_{0, 0};

  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool quit_ = false;
  std::thread thread_;
  std::vector<Sample> samples_;  // with mu_
  std::size_t max_samples_ = kMaxSamples;
  std::uint64_t keep_every_ = 1;  // ticks per kept sample (doubles on thinning)
  std::uint64_t ticks_ = 0;

  std::string summary_path_;
  std::atomic<bool> summary_claimed_{false};
  InterruptHook on_interrupt_;
};

}  // namespace xsr::cli
