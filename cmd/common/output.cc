#include "common/output.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>

#include "xsr/source.h"

namespace xsr::cli {
namespace {

// Temporary outputs the fatal-signal handler removes. Slots, not one path:
// a --stats-json summary is written while the run's own output may still be
// pending. A slot is published by its flag after its path is written.
constexpr int kSlots = 4;
char g_paths[kSlots][4096];
volatile sig_atomic_t g_used[kSlots];

void on_fatal_signal(int sig) {
  // Async-signal-safe: unlink, then die of the same signal.
  for (int i = 0; i < kSlots; ++i)
    if (g_used[i]) ::unlink(g_paths[i]);
  ::signal(sig, SIG_DFL);
  ::raise(sig);
}

// The slot now holding `path`, or -1 when none is free or it is too long
// (the file is then left behind by a signal, as before the slots).
int remove_on_signal(const std::string& path) {
  if (path.size() >= sizeof g_paths[0]) return -1;
  for (int i = 0; i < kSlots; ++i) {
    if (g_used[i]) continue;
    std::memcpy(g_paths[i], path.c_str(), path.size() + 1);
    std::atomic_signal_fence(std::memory_order_seq_cst);
    g_used[i] = 1;
    struct sigaction sa {};
    sa.sa_handler = on_fatal_signal;
    sigemptyset(&sa.sa_mask);
    for (int s : {SIGTERM, SIGINT, SIGHUP}) sigaction(s, &sa, nullptr);
    return i;
  }
  return -1;
}

void forget_on_signal(int& slot) {
  if (slot >= 0) g_used[slot] = 0;
  slot = -1;
}

}  // namespace

void ignore_sigpipe() { ::signal(SIGPIPE, SIG_IGN); }

Output::~Output() {
  if (!done_) abort();
}

bool Output::open(const std::string& spec, std::string* err) {
  if (spec != "-" && parse_fd(spec) < 0) return open_file(spec, err);
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

bool Output::open_file(const std::string& path, std::string* err) {
  name_ = path_ = path;
  struct stat st;
  // Only a regular file (or a new one) goes through a temporary name; a
  // FIFO or device path is written in place.
  if (::stat(path.c_str(), &st) == 0 && !S_ISREG(st.st_mode)) {
    fd_ = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd_ < 0) {
      *err = path + ": " + std::strerror(errno);
      return false;
    }
    owned_ = true;
    return true;
  }
  tmp_ = path + ".xsr-tmp." + std::to_string(::getpid());
  fd_ = ::open(tmp_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd_ < 0) {
    *err = tmp_ + ": " + std::strerror(errno);
    tmp_.clear();
    return false;
  }
  owned_ = regular_ = true;
  signal_slot_ = remove_on_signal(tmp_);
  return true;
}

bool Output::commit(std::string* err) {
  done_ = true;
  bool ok = true;
  if (owned_ && ::close(fd_) != 0) {
    *err = name_ + ": " + std::strerror(errno);
    if (!tmp_.empty()) ::unlink(tmp_.c_str());
    ok = false;
  } else if (!tmp_.empty() && ::rename(tmp_.c_str(), path_.c_str()) != 0) {
    *err = "rename to " + path_ + ": " + std::strerror(errno);
    ::unlink(tmp_.c_str());
    ok = false;
  }
  fd_ = -1;
  forget_on_signal(signal_slot_);
  return ok;
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
  forget_on_signal(signal_slot_);
}

}  // namespace xsr::cli
