// Byte counts and time for people and for pacing: the one formatter of
// sizes ("4.00 GiB", "1.5 MiB", "512 bytes") and the one monotonic clock.
#pragma once

#include <cstdint>
#include <string>

namespace xsr {

// "%.2f GiB" from 1 GiB, "%.1f MiB" from 1 MiB, else "N bytes"; with
// `kib`, "%.1f KiB" from 1 KiB too (inspect's reports).
std::string format_bytes(std::uint64_t bytes, bool kib = false);

// A duration given in milliseconds as messages name --timeout: "%g s"
// ("30 s", "0.3 s").
std::string format_seconds(int ms);

// "1 hole", "2 holes": a count and its noun, singular for one. `many`
// defaults to `one` + "s".
std::string counted(std::uint64_t n, const char* one, const char* many = nullptr);

// CLOCK_MONOTONIC in nanoseconds.
std::uint64_t mono_ns();

}  // namespace xsr
