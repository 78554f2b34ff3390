// A worker thread writing into a pipe whose other end the caller reads: a
// legacy conversion (inspect, extract, relay --convert) or a decompressor
// feeding a reader that sees an ordinary pipe, so splice and io_uring work
// on it unchanged and the work overlaps the reading on the second core.
#pragma once

#include <functional>
#include <thread>

#include "xsr/error.h"

namespace xsr {

class PipeWorker {
 public:
  // What the thread runs: writes into write_fd, returns how it ended.
  using Work = std::function<Error(int write_fd)>;

  PipeWorker() = default;
  ~PipeWorker();  // stop()
  PipeWorker(const PipeWorker&) = delete;
  PipeWorker& operator=(const PipeWorker&) = delete;

  // Makes the pipe (enlarged to 1 MiB: fewer, larger hand-overs) and runs
  // work in a thread with SIGPIPE blocked. The write end is closed when
  // work returns, after its Error is kept, so a reader that sees the end
  // of input can join() and find the verdict final.
  Error start(Work work);

  // The reading end (-1 before start and after stop). It stays owned here:
  // a source reading it must not own it, and must be gone before stop().
  int fd() const { return rfd_; }

  // Waits for the worker (the reader saw the end of input); its Error.
  const Error& join();

  // Closes the reading end, so a worker still writing fails with EPIPE
  // (Error::caused_by(EPIPE) when it reports the errno), joins and returns
  // the worker's Error.
  const Error& stop();

  bool running() const { return th_.joinable(); }
  // The worker's Error once joined (ok before).
  const Error& error() const { return err_; }

 private:
  int rfd_ = -1;
  std::thread th_;
  Error err_;
};

}  // namespace xsr
