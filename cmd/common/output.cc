#include "common/output.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "xsr/source.h"

namespace xsr::cli {

namespace {
char g_signal_path[4096];

void on_fatal_signal(int sig) {
  // Async-signal-safe: unlink, then die of the same signal.
  if (g_signal_path[0]) ::unlink(g_signal_path);
  ::signal(sig, SIG_DFL);
  ::raise(sig);
}
}  // namespace

void remove_on_signal(const std::string& temp_path) {
  if (temp_path.size() >= sizeof g_signal_path) return;
  std::memcpy(g_signal_path, temp_path.c_str(), temp_path.size() + 1);
  struct sigaction sa {};
  sa.sa_handler = on_fatal_signal;
  sigemptyset(&sa.sa_mask);
  for (int s : {SIGTERM, SIGINT, SIGHUP}) sigaction(s, &sa, nullptr);
}

void ignore_sigpipe() { ::signal(SIGPIPE, SIG_IGN); }

Output::~Output() {
  if (!done_) abort();
}

bool Output::open(const std::string& spec, std::string* err) {
  if (spec == "-" || parse_fd(spec) >= 0) {
    fd_ = spec == "-" ? 1 : parse_fd(spec);
    name_ = spec == "-" ? "<stdout>" : "fd " + spec;
    struct stat st;
    if (::fstat(fd_, &st) != 0) {
      *err = name_ + ": " + std::strerror(errno);
      return false;
    }
    regular_ = S_ISREG(st.st_mode);
    if (regular_) start_ = ::lseek(fd_, 0, SEEK_CUR);
    return true;
  }
  name_ = path_ = spec;
  struct stat st;
  // Only a regular file (or a new one) goes through a temporary name; a
  // FIFO or device path is written in place.
  if (::stat(spec.c_str(), &st) == 0 && !S_ISREG(st.st_mode)) {
    fd_ = ::open(spec.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd_ < 0) {
      *err = spec + ": " + std::strerror(errno);
      return false;
    }
    owned_ = true;
    return true;
  }
  tmp_ = spec + ".xsr-tmp." + std::to_string(::getpid());
  fd_ = ::open(tmp_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd_ < 0) {
    *err = tmp_ + ": " + std::strerror(errno);
    tmp_.clear();
    return false;
  }
  owned_ = regular_ = true;
  remove_on_signal(tmp_);
  return true;
}

bool Output::commit(std::string* err) {
  done_ = true;
  if (owned_ && ::close(fd_) != 0) {
    *err = name_ + ": " + std::strerror(errno);
    fd_ = -1;
    if (!tmp_.empty()) ::unlink(tmp_.c_str());
    return false;
  }
  fd_ = -1;
  if (!tmp_.empty() && ::rename(tmp_.c_str(), path_.c_str()) != 0) {
    *err = "rename to " + path_ + ": " + std::strerror(errno);
    ::unlink(tmp_.c_str());
    return false;
  }
  return true;
}

void Output::abort() {
  done_ = true;
  if (!tmp_.empty()) {
    ::unlink(tmp_.c_str());
  } else if (regular_ && fd_ >= 0 && !owned_) {
    // A file handed over as a descriptor: cut back what this run wrote.
    if (::ftruncate(fd_, start_) == 0) ::lseek(fd_, start_, SEEK_SET);
  }
  if (owned_ && fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

}  // namespace xsr::cli
