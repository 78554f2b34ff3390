#include "xsr/sys.h"

#include <fcntl.h>
#include <sys/sendfile.h>
#include <unistd.h>

#include <cerrno>

#include "xsr/units.h"

namespace xsr::sys {
namespace {

ssize_t real_read(int fd, void* buf, std::size_t n) { return ::read(fd, buf, n); }
ssize_t real_pread(int fd, void* buf, std::size_t n, off_t off) { return ::pread(fd, buf, n, off); }
ssize_t real_write(int fd, const void* buf, std::size_t n) { return ::write(fd, buf, n); }
ssize_t real_splice(int in, loff_t* in_off, int out, loff_t* out_off, std::size_t n, unsigned flags) {
  return ::splice(in, in_off, out, out_off, n, flags);
}

ssize_t real_copy_file_range(int in, loff_t* in_off, int out, loff_t* out_off, std::size_t n,
                             unsigned flags) {
  return ::copy_file_range(in, in_off, out, out_off, n, flags);
}
ssize_t real_sendfile(int out, int in, off_t* in_off, std::size_t n) {
  return ::sendfile(out, in, in_off, n);
}
ssize_t real_writev(int fd, const iovec* iov, int count) { return ::writev(fd, iov, count); }
ssize_t real_pwrite(int fd, const void* buf, std::size_t n, off_t off) { return ::pwrite(fd, buf, n, off); }
off_t real_lseek(int fd, off_t off, int whence) { return ::lseek(fd, off, whence); }
int real_ftruncate(int fd, off_t len) { return ::ftruncate(fd, len); }
int real_poll(pollfd* fds, nfds_t n, int timeout_ms) { return ::poll(fds, n, timeout_ms); }

constexpr Ops kReal{real_read,     real_pread,  real_write,  real_splice, real_copy_file_range,
                    real_sendfile, real_writev, real_pwrite, real_lseek,  real_ftruncate,
                    real_poll};
Ops g_ops = kReal;

// A null hook in an override is the real call.
template <typename F>
void fill(F& hook, F real) {
  if (!hook) hook = real;
}

template <typename F>
auto retry(F call) {
  for (;;) {
    auto r = call();
    if (r >= 0 || errno != EINTR) return r;
  }
}

}  // namespace

const Ops& ops() { return g_ops; }
const Ops& real() { return kReal; }

Override::Override(const Ops& o) : saved_(g_ops) {
  g_ops = o;
  fill(g_ops.read, kReal.read);
  fill(g_ops.pread, kReal.pread);
  fill(g_ops.write, kReal.write);
  fill(g_ops.splice, kReal.splice);
  fill(g_ops.copy_file_range, kReal.copy_file_range);
  fill(g_ops.sendfile, kReal.sendfile);
  fill(g_ops.writev, kReal.writev);
  fill(g_ops.pwrite, kReal.pwrite);
  fill(g_ops.lseek, kReal.lseek);
  fill(g_ops.ftruncate, kReal.ftruncate);
  fill(g_ops.poll, kReal.poll);
}
Override::~Override() { g_ops = saved_; }

ssize_t read(int fd, void* buf, std::size_t n) {
  return retry([&] { return g_ops.read(fd, buf, n); });
}

ssize_t pread(int fd, void* buf, std::size_t n, off_t off) {
  return retry([&] { return g_ops.pread(fd, buf, n, off); });
}

ssize_t write(int fd, const void* buf, std::size_t n) {
  return retry([&] { return g_ops.write(fd, buf, n); });
}

ssize_t splice(int in, loff_t* in_off, int out, loff_t* out_off, std::size_t n, unsigned flags) {
  return retry([&] { return g_ops.splice(in, in_off, out, out_off, n, flags); });
}

ssize_t copy_file_range(int in, loff_t* in_off, int out, loff_t* out_off, std::size_t n, unsigned flags) {
  return retry([&] { return g_ops.copy_file_range(in, in_off, out, out_off, n, flags); });
}

ssize_t sendfile(int out, int in, off_t* in_off, std::size_t n) {
  return retry([&] { return g_ops.sendfile(out, in, in_off, n); });
}

ssize_t writev(int fd, const iovec* iov, int count) {
  return retry([&] { return g_ops.writev(fd, iov, count); });
}

ssize_t pwrite(int fd, const void* buf, std::size_t n, off_t off) {
  return retry([&] { return g_ops.pwrite(fd, buf, n, off); });
}

off_t lseek(int fd, off_t off, int whence) { return g_ops.lseek(fd, off, whence); }

int ftruncate(int fd, off_t len) {
  return retry([&] { return g_ops.ftruncate(fd, len); });
}

int poll(pollfd* fds, nfds_t n, int timeout_ms) {
  const std::uint64_t start = timeout_ms > 0 ? mono_ns() : 0;
  int left = timeout_ms;
  for (;;) {
    const int r = g_ops.poll(fds, n, left);
    if (r >= 0 || errno != EINTR) return r;
    if (timeout_ms > 0) {
      const std::uint64_t spent_ms = (mono_ns() - start) / 1000000;
      left = spent_ms >= static_cast<std::uint64_t>(timeout_ms) ? 0 : timeout_ms - static_cast<int>(spent_ms);
    }
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

int pwrite_all(int fd, const void* buf, std::size_t n, off_t off) {
  auto* p = static_cast<const char*>(buf);
  while (n > 0) {
    ssize_t r = pwrite(fd, p, n, off);
    if (r < 0) return errno;
    if (r == 0) return EIO;
    p += r;
    off += r;
    n -= static_cast<std::size_t>(r);
  }
  return 0;
}

int wait_fd(int fd, short events, int timeout_ms) {
  pollfd p{fd, events, 0};
  const int r = sys::poll(&p, 1, timeout_ms);
  if (r > 0) return 0;
  if (r == 0) return ETIMEDOUT;
  return errno;
}

}  // namespace xsr::sys
