// The thin system-call wrapper every xsr I/O path goes through, so tests can
// inject faults (short reads, EINTR, EAGAIN, ENOSPC, EPIPE) without a real
// broken disk or peer. Each hook returns like the system call: -1 and errno
// on failure.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>

namespace xsr::sys {

struct Ops {
  ssize_t (*read)(int fd, void* buf, std::size_t n);
  ssize_t (*pread)(int fd, void* buf, std::size_t n, off_t off);
  ssize_t (*write)(int fd, const void* buf, std::size_t n);
  ssize_t (*splice)(int in, loff_t* in_off, int out, loff_t* out_off, std::size_t n,
                    unsigned flags);
  // The zero-copy paths of Source::forward (file to file, file to socket):
  // one indirect call per up-to-1-GiB transfer, never per page.
  ssize_t (*copy_file_range)(int in, loff_t* in_off, int out, loff_t* out_off, std::size_t n,
                             unsigned flags);
  ssize_t (*sendfile)(int out, int in, off_t* in_off, std::size_t n);
};

// The hooks in force. Tests swap them with `Override`.
const Ops& ops();

// Replaces the hooks for its lifetime (not thread-safe; tests only).
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

// Wrappers that retry on EINTR.
ssize_t read(int fd, void* buf, std::size_t n);
ssize_t pread(int fd, void* buf, std::size_t n, off_t off);
ssize_t write(int fd, const void* buf, std::size_t n);
ssize_t splice(int in, loff_t* in_off, int out, loff_t* out_off, std::size_t n, unsigned flags);
ssize_t copy_file_range(int in, loff_t* in_off, int out, loff_t* out_off, std::size_t n,
                        unsigned flags);
ssize_t sendfile(int out, int in, off_t* in_off, std::size_t n);

// Writes all of buf; returns 0 or an errno value.
int write_all(int fd, const void* buf, std::size_t n);

}  // namespace xsr::sys
