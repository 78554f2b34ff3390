#include "common/progress.h"

#include <signal.h>
#include <unistd.h>

#include <cstdarg>
#include <mutex>

#include "xsr/error.h"
#include "xsr/units.h"

namespace xsr::cli {
namespace {

// Set while a bar is drawn on stderr, for clear_from_signal().
volatile sig_atomic_t g_shown = 0;
// Held while the bar or a line is written: --stats lines come from their
// own thread.
std::mutex g_mu;

constexpr double kMiB = 1024.0 * 1024.0;
constexpr double kGiB = kMiB * 1024.0;

// With g_mu held: clears a bar that is shown.
void clear_locked() {
  if (!g_shown) return;
  std::fputs("\r\033[K", stderr);
  std::fflush(stderr);
  g_shown = 0;
}

// "M:SS", or "H:MM:SS" from an hour.
std::string clock_time(double secs) {
  const auto s = static_cast<unsigned long long>(secs > 0 ? secs : 0);
  if (s >= 3600) return strprintf("%llu:%02llu:%02llu", s / 3600, s / 60 % 60, s % 60);
  return strprintf("%llu:%02llu", s / 60, s % 60);
}

}  // namespace

void Progress::clear_from_signal() noexcept {
  if (g_shown && ::write(2, "\r\033[K", 4) == 4) g_shown = 0;
}

std::string Progress::text(std::uint64_t done, std::int64_t total, double secs) {
  const double d = static_cast<double>(done);
  const double rate = secs > 0 ? d / secs : 0;  // bytes a second
  const std::string speed = strprintf("%.1f MiB/s", rate / kMiB) + " " + clock_time(secs) + " elapsed";
  if (total <= 0) return strprintf("%.2f GiB ", d / kGiB) + speed;
  const double t = static_cast<double>(total);
  const int pct = static_cast<int>(100.0 * (d < t ? d : t) / t);
  std::string s = strprintf("[%-25.*s] %3d%% %.2f/%.2f GiB ", pct / 4, "#########################", pct,
                            d / kGiB, t / kGiB) +
                  speed;
  if (rate > 0) s += ", " + clock_time(d < t ? (t - d) / rate : 0) + " left";
  return s;
}

Progress::Progress(std::int64_t total, bool enabled)
    : total_(total), on_(enabled && isatty(2) && (total < 0 || total > kMinBytes)), start_ns_(mono_ns()) {}

Progress::~Progress() {
  if (!on_) return;
  std::lock_guard<std::mutex> lk(g_mu);
  clear_locked();
}

void Progress::update(std::uint64_t done) {
  if (!on_) return;
  const std::uint64_t t = mono_ns();
  if (t - last_ns_ < 200000000ull) return;  // 5 redraws a second at most
  last_ns_ = t;
  const std::string s = text(done, total_, static_cast<double>(t - start_ns_) / 1e9);
  std::lock_guard<std::mutex> lk(g_mu);
  std::fputs("\r\033[K", stderr);
  std::fputs(s.c_str(), stderr);
  std::fflush(stderr);
  g_shown = 1;
}

void print(std::FILE* f, const char* fmt, ...) {
  std::lock_guard<std::mutex> lk(g_mu);
  clear_locked();
  va_list ap;
  va_start(ap, fmt);
  std::vfprintf(f, fmt, ap);
  va_end(ap);
  // stdout on a terminal is line-buffered: whole lines reach the screen.
  if (f == stderr) std::fflush(f);
}

void print_line(std::FILE* f, const std::string& line) { print(f, "%s\n", line.c_str()); }

}  // namespace xsr::cli
