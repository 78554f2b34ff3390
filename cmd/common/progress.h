// The progress bar of the commands that read a large input.
#pragma once

#include <cstdint>

namespace xsr::cli {

// A one-line progress bar on stderr, drawn only when stderr is a terminal
// and the input is large (over kMinBytes) or of unknown size (total < 0):
// small inputs finish before a bar would say anything. The destructor
// clears the line, so what follows starts on a clean one.
class Progress {
 public:
  static constexpr std::int64_t kMinBytes = 256ll << 20;
  Progress(std::int64_t total, bool enabled);
  ~Progress();
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;

  // Bytes done so far; redraws at most 5 times a second.
  void update(std::uint64_t done);

  // Clears a bar that is on the screen. Async-signal-safe (a write(2) of a
  // constant): for the fatal-signal path, so a dying run leaves a clean line.
  static void clear_from_signal() noexcept;

 private:
  std::int64_t total_;
  bool on_;
  std::uint64_t start_ns_;
  std::uint64_t last_ns_ = 0;
};

}  // namespace xsr::cli
