// Outputs that never look complete before they are: a FILE is written under
// a temporary name beside it and renamed into place when the run succeeds.
#pragma once

#include <string>

namespace xsr::cli {

// An output named "FILE", "-" (stdout) or a decimal FD number. A regular
// file (or a new one) is written under a temporary name beside it and
// renamed only by commit(), so a failed run never leaves a file that looks
// complete; abort() (and the destructor, when neither was called) removes
// it, and SIGTERM, SIGINT or SIGHUP remove it before the process dies
// (libxl sends SIGTERM on abort). A regular file handed over as a
// descriptor is cut back by abort() to where the run began. A FIFO or
// device path is written in place.
class Output {
 public:
  Output() = default;
  ~Output();
  Output(const Output&) = delete;
  Output& operator=(const Output&) = delete;

  // FILE, "-" or FD; false with *err set ("NAME: strerror") when it cannot
  // be opened.
  bool open(const std::string& spec, std::string* err);
  // A path only: "-" and numbers are file names too (--stats-json FILE).
  bool open_file(const std::string& path, std::string* err);

  int fd() const { return fd_; }
  // "<stdout>", "fd N" or the path.
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
  int signal_slot_ = -1;  // where temp_path() is registered for the signal handler
  long long start_ = 0;
  std::string name_, path_, tmp_;
};

// Ignore SIGPIPE: a closed output is an EPIPE error with a message, not a
// silent death.
void ignore_sigpipe();

}  // namespace xsr::cli
