#include "common/exit.h"

namespace xsr::cli {

int exit_status(const Error& e) {
  switch (e.code) {
    case Errc::ok: return kOk;
    case Errc::output:
    case Errc::unsupported: return kOutput;
    case Errc::usage: return kUsage;
    default: return kFailed;
  }
}

namespace {
std::string g_last_failure;
}

const std::string& last_failure() { return g_last_failure; }

void die(int status, const std::string& msg) {
  const std::size_t colon = msg.find(": ");
  g_last_failure = colon == std::string::npos ? msg : msg.substr(colon + 2);
  throw Failure(status, "xsr " + msg);
}

void usage_error(const char* cmd, const std::string& msg) { die(kUsage, std::string(cmd) + ": " + msg); }

}  // namespace xsr::cli
