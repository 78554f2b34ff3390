#include "common/progress.h"

#include <signal.h>
#include <unistd.h>

#include <cstdio>

#include "xsr/units.h"

namespace xsr::cli {
namespace {

// Set while a bar is drawn on stderr, for clear_from_signal().
volatile sig_atomic_t g_shown = 0;

}  // namespace

void Progress::clear_from_signal() noexcept {
  if (g_shown && ::write(2, "\r\033[K", 4) == 4) g_shown = 0;
}

Progress::Progress(std::int64_t total, bool enabled)
    : total_(total), on_(enabled && isatty(2) && (total < 0 || total > kMinBytes)), start_ns_(mono_ns()) {}

Progress::~Progress() {
  if (on_ && last_ns_) std::fputs("\r\033[K", stderr);
  std::fflush(stderr);
  g_shown = 0;
}

void Progress::update(std::uint64_t done) {
  if (!on_) return;
  std::uint64_t t = mono_ns();
  if (t - last_ns_ < 200000000ull) return;  // 5 redraws a second at most
  last_ns_ = t;
  double secs = static_cast<double>(t - start_ns_) / 1e9;
  double mbs = secs > 0 ? static_cast<double>(done) / 1e6 / secs : 0;
  if (total_ > 0) {
    int pct = static_cast<int>(100.0 * static_cast<double>(done) / static_cast<double>(total_));
    int fill = pct / 4;
    std::fprintf(stderr, "\r[%-25.*s] %3d%% %.1f/%.1f GiB %.0f MB/s", fill, "#########################", pct,
                 static_cast<double>(done) / (1 << 30), static_cast<double>(total_) / (1 << 30), mbs);
  } else {
    std::fprintf(stderr, "\r%.2f GiB %.0f MB/s", static_cast<double>(done) / (1 << 30), mbs);
  }
  std::fflush(stderr);
  g_shown = 1;
}

}  // namespace xsr::cli
