// Message routing of the drop-in tools, as the reference tools route them.
#pragma once

#include <string>

namespace xsr::cli {

// Info lines to stdout (or only to syslog with --syslog), errors to stderr
// (and syslog with --syslog); -q silences both.
class Log {
 public:
  Log(const char* ident, bool verbose, bool quiet, bool use_syslog);
  ~Log();
  Log(const Log&) = delete;
  Log& operator=(const Log&) = delete;

  void info(const std::string& line) const;
  void err(const std::string& line) const;
  bool verbose() const { return verbose_ && !quiet_; }

 private:
  bool verbose_, quiet_, syslog_;
};

}  // namespace xsr::cli
