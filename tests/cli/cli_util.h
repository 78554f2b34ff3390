// What the command-line tests share: where the binaries and fixtures are,
// running a tool with given descriptors and collecting its exit code,
// stdout and stderr.
#pragma once

#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "../test_util.h"

namespace xsr::test {

inline std::string bin(const char* var, const char* fallback) {
  const char* v = std::getenv(var);
  return v ? v : fallback;
}
inline std::string verify_bin() { return bin("VERIFY_BIN", "build/cmd/verify-stream-v2"); }
inline std::string xsr_bin() { return bin("XSR_BIN", "build/cmd/xsr"); }
inline std::string convert_bin() { return bin("CONVERT_BIN", "build/cmd/convert-legacy-stream"); }
inline std::string fixture(const std::string& f) { return bin("FIXTURES", "fixtures") + "/" + f; }

struct Result {
  int exit = -1;
  std::string out, err;
};

// Runs argv with `stdin_fd` as its stdin (or /dev/null) and `pass_fd`
// duplicated to descriptor `as_fd` in the child.
inline Result run(std::vector<std::string> argv, int stdin_fd = -1, int pass_fd = -1, int as_fd = -1) {
  int out[2], err[2];
  EXPECT_EQ(::pipe2(out, O_CLOEXEC), 0);
  EXPECT_EQ(::pipe2(err, O_CLOEXEC), 0);
  pid_t pid = ::fork();
  if (pid == 0) {
    int in = stdin_fd >= 0 ? stdin_fd : ::open("/dev/null", O_RDONLY);
    ::dup2(in, 0);
    ::dup2(out[1], 1);
    ::dup2(err[1], 2);
    if (pass_fd >= 0) ::dup2(pass_fd, as_fd);  // dup2 clears close-on-exec
    std::vector<char*> a;
    for (auto& s : argv) a.push_back(s.data());
    a.push_back(nullptr);
    ::execv(a[0], a.data());
    ::_exit(127);
  }
  ::close(out[1]);
  ::close(err[1]);
  Result r;
  std::thread t([&] {
    auto e = read_all_fd(err[0]);
    r.err.assign(reinterpret_cast<const char*>(e.data()), e.size());
  });
  auto o = read_all_fd(out[0]);
  r.out.assign(reinterpret_cast<const char*>(o.data()), o.size());
  t.join();
  ::close(out[0]);
  ::close(err[0]);
  int st = 0;
  ::waitpid(pid, &st, 0);
  r.exit = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
  return r;
}

// A tool started without waiting for it: stdin from `in` (or /dev/null),
// stdout to `out` (or captured when -1), stderr captured. Stderr can be
// read a line at a time while it runs (a listening address, say).
class Child {
 public:
  explicit Child(std::vector<std::string> argv, int in = -1, int out = -1) {
    int o[2] = {-1, -1}, e[2];
    if (out < 0) {
      EXPECT_EQ(::pipe2(o, O_CLOEXEC), 0);
    }
    EXPECT_EQ(::pipe2(e, O_CLOEXEC), 0);
    pid_ = ::fork();
    if (pid_ == 0) {
      ::signal(SIGPIPE, SIG_DFL);
      ::dup2(in >= 0 ? in : ::open("/dev/null", O_RDONLY), 0);
      ::dup2(out >= 0 ? out : o[1], 1);
      ::dup2(e[1], 2);
      std::vector<char*> a;
      for (auto& s : argv) a.push_back(s.data());
      a.push_back(nullptr);
      ::execv(a[0], a.data());
      ::_exit(127);
    }
    if (o[1] >= 0) ::close(o[1]);
    ::close(e[1]);
    out_ = o[0];
    err_ = e[0];
  }
  ~Child() {
    if (pid_ > 0) finish();
  }
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;

  // The next stderr line (without its newline); empty after 5 s or at EOF.
  std::string err_line() {
    std::string l;
    for (;;) {
      pollfd p{err_, POLLIN, 0};
      if (::poll(&p, 1, 5000) != 1) return l;
      char c;
      if (::read(err_, &c, 1) != 1) return l;
      if (c == '\n') {
        early_err_.append(l).push_back('\n');
        return l;
      }
      l.push_back(c);
    }
  }

  // Reads stderr lines up to one containing `marker`; returns what follows
  // it on that line, empty when no such line came.
  std::string line_after(const std::string& marker) {
    for (;;) {
      std::string l = err_line();
      if (l.empty()) return l;
      if (std::size_t at = l.find(marker); at != std::string::npos) return l.substr(at + marker.size());
    }
  }

  // Waits for the exit; stdout (when captured) and all of stderr.
  Result finish() {
    Result r;
    std::thread t([&] {
      auto e = read_all_fd(err_);
      r.err.assign(reinterpret_cast<const char*>(e.data()), e.size());
    });
    if (out_ >= 0) {
      auto o = read_all_fd(out_);
      r.out.assign(reinterpret_cast<const char*>(o.data()), o.size());
      ::close(out_);
    }
    t.join();
    r.err.insert(0, early_err_);
    ::close(err_);
    int st = 0;
    struct rusage ru {};
    ::wait4(pid_, &st, 0, &ru);
    pid_ = -1;
    maxrss_kib_ = ru.ru_maxrss;
    r.exit = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    return r;
  }
  pid_t pid() const { return pid_; }
  // Peak RSS of the finished child.
  long maxrss_kib() const { return maxrss_kib_; }

 private:
  pid_t pid_ = -1;
  int out_ = -1, err_ = -1;
  std::string early_err_;
  long maxrss_kib_ = 0;
};

inline std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

inline int lines(const std::string& s) { return static_cast<int>(std::count(s.begin(), s.end(), '\n')); }

// A test with a fresh directory of its own (/tmp/xsr-NAME-XXXXXX),
// removed with what it holds when the test ends.
class TempDirTest : public ::testing::Test {
 protected:
  explicit TempDirTest(std::string name) : name_(std::move(name)) {}
  void SetUp() override {
    std::string d = "/tmp/xsr-" + name_ + "-XXXXXX";
    ASSERT_NE(::mkdtemp(d.data()), nullptr);
    dir_ = d;
  }
  void TearDown() override {
    if (!dir_.empty()) (void)!std::system(("rm -rf '" + dir_ + "'").c_str());
  }
  std::string path(const std::string& f) const { return dir_ + "/" + f; }
  std::string name_, dir_;
};

}  // namespace xsr::test
