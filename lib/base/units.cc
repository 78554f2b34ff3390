#include "xsr/units.h"

#include <time.h>

#include "xsr/error.h"

namespace xsr {

std::string format_bytes(std::uint64_t b, bool kib) {
  if (b >= (1ull << 30)) return strprintf("%.2f GiB", static_cast<double>(b) / (1ull << 30));
  if (b >= (1ull << 20)) return strprintf("%.1f MiB", static_cast<double>(b) / (1ull << 20));
  if (kib && b >= (1ull << 10)) return strprintf("%.1f KiB", static_cast<double>(b) / (1ull << 10));
  return std::to_string(b) + " bytes";
}

std::string format_seconds(int ms) { return strprintf("%g s", ms / 1000.0); }

std::string counted(std::uint64_t n, const char* one, const char* many) {
  std::string s = std::to_string(n) + " ";
  if (n == 1) return s + one;
  return many ? s + many : s + one + "s";
}

std::uint64_t mono_ns() {
  timespec ts;
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<std::uint64_t>(ts.tv_nsec);
}

}  // namespace xsr
