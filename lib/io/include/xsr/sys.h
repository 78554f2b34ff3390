// The thin system-call wrapper every xsr I/O path goes through, so tests can
// inject faults (short reads, EINTR, EAGAIN, ENOSPC, EPIPE) without a real
// broken disk or peer. Each hook returns like the system call: -1 and errno
// on failure. Only calls that move or position data are hooked (not open,
// close, fstat or fcntl): those are where faults happen mid-stream.
#pragma once

#include <poll.h>
#include <sys/types.h>
#include <sys/uio.h>

#include <cstddef>
#include <cstdint>

namespace xsr::sys {

struct Ops {
  ssize_t (*read)(int fd, void* buf, std::size_t n);
  ssize_t (*pread)(int fd, void* buf, std::size_t n, off_t off);
  ssize_t (*write)(int fd, const void* buf, std::size_t n);
  ssize_t (*splice)(int in, loff_t* in_off, int out, loff_t* out_off, std::size_t n, unsigned flags);
  // The zero-copy paths of Source::forward (file to file, file to socket):
  // one indirect call per up-to-1-GiB transfer, never per page.
  ssize_t (*copy_file_range)(int in, loff_t* in_off, int out, loff_t* out_off, std::size_t n, unsigned flags);
  ssize_t (*sendfile)(int out, int in, off_t* in_off, std::size_t n);
  // A Sink's buffered bytes and a prepared page area in one call (gen).
  ssize_t (*writev)(int fd, const iovec* iov, int count);
  // Positioned writes and the file's size and offset (extract's output,
  // the offset a file source leaves behind).
  ssize_t (*pwrite)(int fd, const void* buf, std::size_t n, off_t off);
  off_t (*lseek)(int fd, off_t off, int whence);
  int (*ftruncate)(int fd, off_t len);
  // Waiting for a peer (non-blocking descriptors, --timeout).
  int (*poll)(pollfd* fds, nfds_t n, int timeout_ms);
};

// The hooks in force. Tests swap them with `Override`.
const Ops& ops();

// Replaces the hooks for its lifetime (not thread-safe; tests only). A hook
// left null runs the real call, so a test names only the calls it fails.
class Override {
 public:
  explicit Override(const Ops& o);
  ~Override();
  Override(const Override&) = delete;
  Override& operator=(const Override&) = delete;

 private:
  Ops saved_;
};

// The real system calls.
const Ops& real();

// Wrappers that retry on EINTR (lseek cannot be interrupted).
ssize_t read(int fd, void* buf, std::size_t n);
ssize_t pread(int fd, void* buf, std::size_t n, off_t off);
ssize_t write(int fd, const void* buf, std::size_t n);
ssize_t splice(int in, loff_t* in_off, int out, loff_t* out_off, std::size_t n, unsigned flags);
ssize_t copy_file_range(int in, loff_t* in_off, int out, loff_t* out_off, std::size_t n, unsigned flags);
ssize_t sendfile(int out, int in, off_t* in_off, std::size_t n);
ssize_t writev(int fd, const iovec* iov, int count);
ssize_t pwrite(int fd, const void* buf, std::size_t n, off_t off);
off_t lseek(int fd, off_t off, int whence);
int ftruncate(int fd, off_t len);
// Retries EINTR with what is left of timeout_ms (< 0: no limit), so a
// signal storm cannot stretch a timeout.
int poll(pollfd* fds, nfds_t n, int timeout_ms);

// Writes all of buf; returns 0 or an errno value.
int write_all(int fd, const void* buf, std::size_t n);
// Writes all of buf at offset off; returns 0 or an errno value.
int pwrite_all(int fd, const void* buf, std::size_t n, off_t off);
// Waits until fd is ready for `events` (POLLIN/POLLOUT), at most timeout_ms
// (< 0: for ever). Returns 0, ETIMEDOUT or an errno value.
int wait_fd(int fd, short events, int timeout_ms = -1);

}  // namespace xsr::sys
