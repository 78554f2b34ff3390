// The progress bar of the commands that read or write a large stream
// (verify, convert, inspect, extract, gen), and print(), the one way those
// commands print a line while a bar may be on the screen.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>

namespace xsr::cli {

// A one-line progress bar on stderr, drawn only when stderr is a terminal
// and the stream is large (over kMinBytes) or of unknown size (total < 0):
// small ones finish before a bar would say anything. Units are binary, as
// --stats has them (GiB, MiB/s). Every other line goes out through print(),
// which clears the bar first; the destructor clears it too, so what
// follows starts on a clean line. One bar at a time.
class Progress {
 public:
  static constexpr std::int64_t kMinBytes = 256ll << 20;
  Progress(std::int64_t total, bool enabled);
  ~Progress();
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;

  // Bytes done so far; redraws at most 5 times a second.
  void update(std::uint64_t done);
  // Whether a bar is drawn at all (a terminal, a large stream, wanted).
  bool enabled() const { return on_; }

  // Clears a bar that is on the screen. Async-signal-safe (a write(2) of a
  // constant): for the fatal-signal path, so a dying run leaves a clean line.
  static void clear_from_signal() noexcept;

  // The bar's text after `secs` seconds with `done` bytes of `total` (< 0:
  // unknown) done, without the leading "\r\033[K":
  //   "[#########                ]  36% 0.7/2.0 GiB 812.3 MiB/s 0:01 elapsed, 0:02 left"
  //   "0.70 GiB 812.3 MiB/s 0:01 elapsed" (total unknown)
  // "left" only once a rate is known. Times are M:SS, or H:MM:SS from an hour.
  static std::string text(std::uint64_t done, std::int64_t total, double secs);

 private:
  std::int64_t total_;
  bool on_;
  std::uint64_t start_ns_;
  std::uint64_t last_ns_ = 0;
};

// Prints on `f` (stdout or stderr) what printf would, first clearing a
// progress bar that is shown on stderr (the two are often one terminal).
// Callers print whole lines. Safe from any thread (--stats lines come from one).
[[gnu::format(printf, 2, 3)]] void print(std::FILE* f, const char* fmt, ...);

// print(f, "%s\n", line).
void print_line(std::FILE* f, const std::string& line);

}  // namespace xsr::cli
