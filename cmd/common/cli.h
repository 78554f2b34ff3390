// Pieces the command-line tools share: message routing like the reference
// tools' (stdout, stderr or syslog), a progress bar for terminals, JSON.
#pragma once

#include <cstdint>
#include <string>

#include "xsr/verify.h"

namespace xsr::cli {

// Routes messages as the reference tools do: info lines to stdout (or only
// to syslog with --syslog), errors to stderr (and syslog with --syslog).
class Log {
 public:
  Log(const char* ident, bool verbose, bool quiet, bool use_syslog);
  ~Log();
  void info(const std::string& line) const;
  void err(const std::string& line) const;
  bool verbose() const { return verbose_ && !quiet_; }

 private:
  bool verbose_, quiet_, syslog_;
};

// A one-line progress bar on stderr, drawn only when stderr is a terminal
// and the input is large (over kMinBytes) or of unknown size (total < 0):
// small inputs finish before a bar would say anything.
class Progress {
 public:
  static constexpr std::int64_t kMinBytes = 256ll << 20;
  Progress(std::int64_t total, bool enabled);
  ~Progress();
  void update(std::uint64_t done);

 private:
  std::int64_t total_;
  bool on_;
  std::uint64_t start_ns_;
  std::uint64_t last_ns_ = 0;
};

// The verdict and counts of one verification as one JSON document.
std::string stats_json(const std::string& input, const Error& err, const StreamStats& st,
                       double seconds);

std::string json_escape(const std::string& s);

// An output named "FILE", "-" (stdout) or a decimal FD number. A file path
// is written under a temporary name beside it and renamed only by commit(),
// so a failed run never leaves a file that looks complete; abort() removes
// it (or, for a regular file handed over as a descriptor, truncates it back
// to where the run began).
class Output {
 public:
  Output() = default;
  ~Output();
  Output(const Output&) = delete;
  Output& operator=(const Output&) = delete;

  // False with *err set when it cannot be opened.
  bool open(const std::string& spec, std::string* err);
  int fd() const { return fd_; }
  const std::string& name() const { return name_; }
  bool is_regular() const { return regular_; }
  // The temporary file being written (empty unless a FILE was named).
  const std::string& temp_path() const { return tmp_; }
  // Closes and renames into place; false with *err set on failure.
  bool commit(std::string* err);
  void abort();

 private:
  int fd_ = -1;
  bool owned_ = false, regular_ = false, done_ = false;
  long long start_ = 0;
  std::string name_, path_, tmp_;
};

// Set once by the CLIs: SIGTERM/SIGINT/SIGHUP then remove the output being
// written before the process dies (libxl sends SIGTERM on abort).
void remove_on_signal(const std::string& temp_path);

// Ignore SIGPIPE: a closed output is an EPIPE error with a message, not a
// silent death.
void ignore_sigpipe();

std::uint64_t now_ns();

}  // namespace xsr::cli
