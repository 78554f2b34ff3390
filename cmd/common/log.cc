#include "common/log.h"

#include <syslog.h>

#include <cstdio>

namespace xsr::cli {

Log::Log(const char* ident, bool verbose, bool quiet, bool use_syslog)
    : verbose_(verbose), quiet_(quiet), syslog_(use_syslog) {
  if (syslog_) openlog(ident, LOG_PID, LOG_USER);
}

Log::~Log() {
  if (syslog_) closelog();
}

void Log::info(const std::string& line) const {
  if (quiet_ || !verbose_) return;
  if (syslog_) {
    syslog(LOG_INFO, "%s", line.c_str());
    return;
  }
  // Line-buffered like the reference, so interleaving with stderr is sane.
  std::fputs(line.c_str(), stdout);
  std::fputc('\n', stdout);
  std::fflush(stdout);
}

void Log::err(const std::string& line) const {
  if (quiet_) return;
  if (syslog_) syslog(LOG_ERR, "%s", line.c_str());
  std::fputs(line.c_str(), stderr);
  std::fputc('\n', stderr);
}

}  // namespace xsr::cli
