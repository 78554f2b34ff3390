#include "common/exit.h"

namespace xsr::cli {

int exit_status(const Error& e) { return exit_code(e.code); }

void die(int status, const std::string& msg) { throw Failure(status, "xsr " + msg); }

void usage_error(const char* cmd, const std::string& msg) { die(kUsage, std::string(cmd) + ": " + msg); }

}  // namespace xsr::cli
