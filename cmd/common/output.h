// The one output rule of every program and every side file (extract -o,
// convert OUT, gen -o, relay -o, --stats-json):
// - a regular file (or a new path) is written under a unique temporary
//   name in its directory (O_TMPFILE, linked at commit, where the file
//   system allows; else NAME.xsr-tmp.RANDOM) and renamed into place only
//   when the run succeeded, keeping an existing file's mode and owner;
// - a symlink is followed: its target is replaced that way and the link
//   stays a link;
// - a device, FIFO or socket is written in place, never replaced;
// - an output that is the same file as an input (note_input: same device
//   and inode, hard links and symlinks included) is refused before
//   anything is written;
// - a binary output on a terminal is refused unless forced;
// - the temporary file is removed on failure and on SIGINT, SIGTERM and
//   SIGHUP (cli::handle_interrupts).
// Messages name the output as the user gave it, never the temporary file.
#pragma once

#include <sys/stat.h>
#include <sys/types.h>

#include <string>

#include "common/interrupt.h"

namespace xsr::cli {

// Remembers an input (FILE, "-" for stdin or an FD number) that no output
// may be: a regular file or block device; anything else is not noted.
void note_input(const std::string& spec);

// How an output may be opened.
struct OutputRules {
  // Binary data: a terminal is refused unless `force`.
  bool binary = false;
  bool force = false;
  // The mode of a new file (umask applies): 0600 for guest memory.
  mode_t new_mode = 0666;
};

// An output named "FILE", "-" (stdout) or a decimal FD number. commit()
// puts a file written under a temporary name in place; abort() (and the
// destructor, when neither was called) removes it. A regular file handed
// over as a descriptor is cut back by abort() to where the run began.
class Output {
 public:
  Output() = default;
  ~Output();
  Output(const Output&) = delete;
  Output& operator=(const Output&) = delete;

  // FILE, "-" or FD; false with *err set when it cannot be opened ("cannot
  // create NAME: strerror", or why it is refused).
  bool open(const std::string& spec, std::string* err, const OutputRules& rules = {});
  // A path only: "-" and numbers are file names too (--stats-json FILE).
  bool open_file(const std::string& path, std::string* err, const OutputRules& rules = {});
  // open(), or cli::die(kOutput, "CMD: WHY").
  void open_or_die(const std::string& spec, const char* cmd, const OutputRules& rules = {});

  int fd() const { return fd_; }
  // "<stdout>", "fd N" or the path as given.
  const std::string& name() const { return name_; }
  bool is_regular() const { return regular_; }
  // True when written under a temporary name (a FILE that is a regular
  // file or a new one): a failure leaves nothing behind.
  bool replaces() const { return temp_; }
  // Closes and puts the file in place; false with *err set ("NAME: WHY").
  bool commit(std::string* err);
  void abort();

  // Tests: set XSR_NAMED_TEMP=1 in the environment to skip O_TMPFILE, so
  // the temporary file has a name a test can see.
  static constexpr const char* kNamedTempEnv = "XSR_NAMED_TEMP";

 private:
  bool refuse(const std::string& why, std::string* err);
  bool open_in_place(const std::string& path, std::string* err);
  bool open_temp(const std::string& target, const struct stat* old, mode_t mode, std::string* err);
  // A descriptor the run was given, shown as `name`: written in place.
  bool open_fd(int fd, const std::string& name, std::string* err, const OutputRules& rules);
  bool link_into_place(std::string* err);

  int fd_ = -1;
  bool owned_ = false, regular_ = false, done_ = false;
  bool temp_ = false;      // written under a temporary name
  bool anon_ = false;      // O_TMPFILE: no name until commit
  long long start_ = 0;    // an FD output's offset at the start
  std::string name_;       // as the user gave it
  std::string target_;     // the file replaced (a symlink's target)
  std::string tmp_;        // the temporary name (once it has one)
  InterruptHook cleanup_;  // removes tmp_ on SIGINT, SIGTERM, SIGHUP
};

// Ignore SIGPIPE: a closed output is an EPIPE error with a message, not a
// silent death.
void ignore_sigpipe();

}  // namespace xsr::cli
