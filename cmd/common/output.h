// Outputs that never look complete before they are: a FILE is written under
// a temporary name beside it and renamed into place when the run succeeds.
#pragma once

#include <string>

namespace xsr::cli {

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

}  // namespace xsr::cli
