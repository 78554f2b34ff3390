// Helpers shared by the test files: streams in memory, descriptors of every
// kind (file, pipe, socketpair) carrying them.
#pragma once

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "xsr/gen.h"
#include "xsr/source.h"
#include "xsr/verify.h"

// Built with AddressSanitizer (whose shadow reservations defeat RLIMIT_AS).
#if defined(__SANITIZE_ADDRESS__)
#define XSR_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define XSR_ASAN 1
#endif
#endif

namespace xsr::test {

inline std::vector<std::byte> read_all_fd(int fd) {
  std::vector<std::byte> out;
  std::byte buf[65536];
  for (;;) {
    ssize_t r = ::read(fd, buf, sizeof buf);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    out.insert(out.end(), buf, buf + r);
  }
  return out;
}

inline std::vector<std::byte> gen_bytes(const GenOptions& o) {
  int fd = memfd_create("xsr-gen", MFD_CLOEXEC);
  if (fd < 0) throw std::runtime_error("memfd_create");
  GenResult r = generate(fd, o);
  if (r.error) throw std::runtime_error(r.error.detail);
  ::lseek(fd, 0, SEEK_SET);
  auto v = read_all_fd(fd);
  ::close(fd);
  return v;
}

inline std::vector<std::byte> read_file(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw std::runtime_error("open " + path);
  auto v = read_all_fd(fd);
  ::close(fd);
  return v;
}

inline void write_file(const std::string& path, const std::vector<std::byte>& data) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) throw std::runtime_error("open " + path);
  const bool ok = ::write(fd, data.data(), data.size()) == static_cast<ssize_t>(data.size());
  ::close(fd);
  if (!ok) throw std::runtime_error("write " + path);
}

// A memfd holding `prefix`, `data` and `suffix`, positioned at data's start.
inline int memfd_with(const std::vector<std::byte>& data, std::size_t prefix = 0, std::size_t suffix = 0) {
  int fd = memfd_create("xsr-test", MFD_CLOEXEC);
  std::vector<std::byte> pre(prefix, std::byte{0x5a}), post(suffix, std::byte{0xa5});
  if (prefix) (void)!::write(fd, pre.data(), pre.size());
  (void)!::write(fd, data.data(), data.size());
  if (suffix) (void)!::write(fd, post.data(), post.size());
  ::lseek(fd, static_cast<off_t>(prefix), SEEK_SET);
  return fd;
}

// Feeds `data` into the write end of a pipe or socket from a thread, in
// pieces of `chunk` bytes (short writes exercise the readers' loops).
class Feeder {
 public:
  Feeder(int wfd, std::vector<std::byte> data, std::size_t chunk = 1 << 20, bool close_after = true)
      : data_(std::move(data)) {
    th_ = std::thread([this, wfd, chunk, close_after] {
      std::size_t off = 0;
      while (off < data_.size()) {
        std::size_t n = std::min(chunk, data_.size() - off);
        ssize_t r = ::write(wfd, data_.data() + off, n);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        off += static_cast<std::size_t>(r);
      }
      if (close_after) ::close(wfd);
    });
  }
  ~Feeder() { th_.join(); }

 private:
  std::vector<std::byte> data_;
  std::thread th_;
};

enum class Channel { pipe, socketpair };

inline void make_channel(Channel c, int fds[2]) {
  if (c == Channel::pipe) {
    if (::pipe2(fds, O_CLOEXEC) != 0) throw std::runtime_error("pipe");
  } else {
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0)
      throw std::runtime_error("socketpair");
  }
}

inline Error verify_bytes(const std::vector<std::byte>& data, Format f = Format::autodetect,
                          bool strict = false, StreamStats* out = nullptr) {
  auto src = memory_source(data);
  VerifyOptions opt;
  opt.format = f;
  opt.strict = strict;
  StreamStats st;
  Error e = verify(*src, opt, st);
  if (out) *out = st;
  return e;
}

inline std::vector<std::byte> bytes_of(const std::string& s) {
  std::vector<std::byte> v(s.size());
  if (!s.empty()) std::memcpy(v.data(), s.data(), s.size());  // data() of empty may be null
  return v;
}

}  // namespace xsr::test
