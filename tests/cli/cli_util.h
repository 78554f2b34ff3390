// What the command-line tests share: where the binaries and fixtures are,
// running a tool with given descriptors and collecting its exit code,
// stdout and stderr.
#pragma once

#include <fcntl.h>
#include <gtest/gtest.h>
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
inline std::string fixture(const std::string& f) {
  return bin("FIXTURES", "fixtures") + "/" + f;
}

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

inline std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

inline int lines(const std::string& s) { return static_cast<int>(std::count(s.begin(), s.end(), '\n')); }

}  // namespace xsr::test
