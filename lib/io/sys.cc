#include "xsr/sys.h"

#include <fcntl.h>
#include <sys/sendfile.h>
#include <unistd.h>

#include <cerrno>

namespace xsr::sys {
namespace {

ssize_t real_read(int fd, void* buf, std::size_t n) { return ::read(fd, buf, n); }
ssize_t real_pread(int fd, void* buf, std::size_t n, off_t off) { return ::pread(fd, buf, n, off); }
ssize_t real_write(int fd, const void* buf, std::size_t n) { return ::write(fd, buf, n); }
ssize_t real_splice(int in, loff_t* in_off, int out, loff_t* out_off, std::size_t n,
                    unsigned flags) {
  return ::splice(in, in_off, out, out_off, n, flags);
}

ssize_t real_copy_file_range(int in, loff_t* in_off, int out, loff_t* out_off, std::size_t n,
                             unsigned flags) {
  return ::copy_file_range(in, in_off, out, out_off, n, flags);
}
ssize_t real_sendfile(int out, int in, off_t* in_off, std::size_t n) {
  return ::sendfile(out, in, in_off, n);
}

constexpr Ops kReal{real_read, real_pread, real_write, real_splice, real_copy_file_range,
                    real_sendfile};
Ops g_ops = kReal;

}  // namespace

const Ops& ops() { return g_ops; }
const Ops& real() { return kReal; }

Override::Override(const Ops& o) : saved_(g_ops) { g_ops = o; }
Override::~Override() { g_ops = saved_; }

ssize_t read(int fd, void* buf, std::size_t n) {
  for (;;) {
    ssize_t r = g_ops.read(fd, buf, n);
    if (r >= 0 || errno != EINTR) return r;
  }
}

ssize_t pread(int fd, void* buf, std::size_t n, off_t off) {
  for (;;) {
    ssize_t r = g_ops.pread(fd, buf, n, off);
    if (r >= 0 || errno != EINTR) return r;
  }
}

ssize_t write(int fd, const void* buf, std::size_t n) {
  for (;;) {
    ssize_t r = g_ops.write(fd, buf, n);
    if (r >= 0 || errno != EINTR) return r;
  }
}

ssize_t splice(int in, loff_t* in_off, int out, loff_t* out_off, std::size_t n, unsigned flags) {
  for (;;) {
    ssize_t r = g_ops.splice(in, in_off, out, out_off, n, flags);
    if (r >= 0 || errno != EINTR) return r;
  }
}

ssize_t copy_file_range(int in, loff_t* in_off, int out, loff_t* out_off, std::size_t n,
                        unsigned flags) {
  for (;;) {
    ssize_t r = g_ops.copy_file_range(in, in_off, out, out_off, n, flags);
    if (r >= 0 || errno != EINTR) return r;
  }
}

ssize_t sendfile(int out, int in, off_t* in_off, std::size_t n) {
  for (;;) {
    ssize_t r = g_ops.sendfile(out, in, in_off, n);
    if (r >= 0 || errno != EINTR) return r;
  }
}

int write_all(int fd, const void* buf, std::size_t n) {
  auto* p = static_cast<const char*>(buf);
  while (n > 0) {
    ssize_t r = write(fd, p, n);
    if (r < 0) return errno;
    if (r == 0) return EIO;
    p += r;
    n -= static_cast<std::size_t>(r);
  }
  return 0;
}

}  // namespace xsr::sys
