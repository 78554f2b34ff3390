// How an xsr subcommand ends: the exit statuses the README documents, the
// one mapping from an Error to a status, and Failure, the early end that
// carries the line to print.
#pragma once

#include <stdexcept>
#include <string>

#include "xsr/error.h"

namespace xsr::cli {

// The exit statuses of every xsr subcommand (README, "Exit status"; the
// drop-ins keep the reference's own).
enum Status : int {
  kOk = 0,      // valid, done
  kFailed = 1,  // the input is invalid, truncated, unreadable or missing
  kUsage = 2,   // a bad command line
  kOutput = 2,  // an output, a peer or the tool failed (not the input's fault)
};

// The status of an xsr subcommand for an error: kOk for none; kOutput for
// an output or peer that failed (Errc::output) or a limitation of the tool
// (Errc::unsupported); kUsage for a bad command line; kFailed for the
// input's faults. (The drop-ins keep the reference's: lib/base exit_code.)
int exit_status(const Error& e);

// An early end of an xsr subcommand. Thrown, not exit()ed, so destructors
// run on the way out: a temporary output is removed, a converter thread is
// stopped. Never thrown while a std::thread of the thrower's is joinable.
// xsr's main prints what() (the whole line, without its newline) on stderr
// and exits with status().
class Failure : public std::runtime_error {
 public:
  Failure(int status, const std::string& line) : std::runtime_error(line), status_(status) {}
  int status() const { return status_; }

 private:
  int status_;
};

// Ends the subcommand with "xsr MSG" (MSG starts with the subcommand's
// name: "xsr verify: --io must be ...", the prefix of every line xsr
// prints).
[[noreturn]] void die(int status, const std::string& msg);

// The message of the last die() without its "xsr CMD: " (empty when none):
// what a summary written on the way out (--stats-json) gives as the error.
const std::string& last_failure();

// A bad command line: die(kUsage, "CMD: MSG").
[[noreturn]] void usage_error(const char* cmd, const std::string& msg);

}  // namespace xsr::cli
