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

// A one-line progress bar on stderr, drawn only when stderr is a terminal.
class Progress {
 public:
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

std::uint64_t now_ns();

}  // namespace xsr::cli
