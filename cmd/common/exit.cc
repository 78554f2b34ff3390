#include "common/exit.h"

namespace xsr::cli {

int exit_status(const Error& e) { return exit_code(e.code); }

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
