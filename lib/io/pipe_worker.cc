#include "xsr/pipe_worker.h"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>

#include "io_engine.h"

namespace xsr {

namespace detail {

void block_sigpipe() {
  sigset_t s;
  sigemptyset(&s);
  sigaddset(&s, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &s, nullptr);
}

}  // namespace detail

PipeWorker::~PipeWorker() { stop(); }

Error PipeWorker::start(Work work) {
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) return Error::io(0, "pipe", errno);
  (void)::fcntl(p[1], F_SETPIPE_SZ, 1 << 20);
  rfd_ = p[0];
  err_ = {};
  th_ = std::thread([this, w = p[1], work = std::move(work)] {
    detail::block_sigpipe();
    err_ = work(w);
    ::close(w);  // the reader sees the end of input, after err_ is final
  });
  return {};
}

const Error& PipeWorker::join() {
  if (th_.joinable()) th_.join();
  return err_;
}

const Error& PipeWorker::stop() {
  if (rfd_ >= 0) {
    ::close(rfd_);
    rfd_ = -1;
  }
  return join();
}

}  // namespace xsr
