// Pipes, sockets and character devices through read(2), bodies spliced
// away: only where io_uring is unavailable or disabled (XSR_NO_URING=1,
// --io read).
#include <unistd.h>

#include <cerrno>

#include "io_engine.h"
#include "xsr/sys.h"

namespace xsr::detail {
namespace {

class ReadSource final : public BufferedSource {
 public:
  ReadSource(int fd, bool owned, IoCaps caps) : owned_(owned) {
    drain_.fd = fd;
    drain_.caps = caps;
    drain_.scratch = buf();
    drain_.scratch_len = kCapacity;
  }
  ~ReadSource() override {
    if (owned_) ::close(drain_.fd);
  }
  std::string_view kind() const override { return "read"; }

 protected:
  // Exact: never asks the kernel for more than the caller needs.
  std::int64_t fill(std::byte* dst, std::size_t need, std::size_t) override {
    std::size_t got = 0;
    while (got < need) {
      ssize_t r = sys::read(drain_.fd, dst + got, need - got);
      if (r < 0) {
        // A non-blocking descriptor handed to us: wait in poll rather than
        // spin, and leave the caller's descriptor flags alone.
        if (errno == EAGAIN) {
          const int e = sys::wait_fd(drain_.fd, POLLIN);
          if (e == 0) continue;
          errno = e;
        }
        error_ = errno;
        return -1;
      }
      if (r == 0) break;
      got += static_cast<std::size_t>(r);
    }
    return static_cast<std::int64_t>(got);
  }
  std::uint64_t discard(std::uint64_t n) override {
    int err = 0;
    // The scratch buffer is only used when the buffer is empty, which it is
    // here: BufferedSource::skip drained it first.
    std::uint64_t d = drain_.run(n, &err);
    if (err) error_ = err;
    return d;
  }
  std::uint64_t move_out(std::uint64_t n, int out, int& out_error, const char*& how) override {
    if (drain_.caps.has(IoCaps::pipe) || drain_.caps.has(IoCaps::socket)) {
      SpliceEnd end;
      how = "splice";
      std::uint64_t d = splice_stream(drain_, n, out, fd_caps(out), end);
      if (end.in_err) error_ = end.in_err;
      if (end.out_err) out_error = end.out_err;
      if (!end.unsupported) return d;
    }
    return BufferedSource::move_out(n, out, out_error, how);
  }

 private:
  bool owned_;
  Drain drain_;
};

}  // namespace

std::unique_ptr<Source> make_read_source(int fd, bool owned, IoCaps caps) {
  return std::make_unique<ReadSource>(fd, owned, caps);
}

}  // namespace xsr::detail
