#include "common/interrupt.h"

#include <pthread.h>
#include <signal.h>

#include <mutex>
#include <thread>
#include <vector>

#include "common/progress.h"

namespace xsr::cli {
namespace {

struct Hooks {
  // Recursive: a hook may open an output, which registers a hook of its own.
  std::recursive_mutex mu;
  std::list<std::function<void(int)>> list;
};

// Never destroyed: the waiting thread may still use it while static
// destructors run after main returns.
Hooks& hooks() {
  static Hooks* h = new Hooks;
  return *h;
}

[[noreturn]] void on_interrupt(int sig) {
  Progress::clear_from_signal();
  Hooks& h = hooks();
  h.mu.lock();  // held until the process dies
  const std::vector<std::function<void(int)>> run(h.list.rbegin(), h.list.rend());
  for (const auto& fn : run) {
    try {
      fn(sig);
    } catch (...) {
      // A hook that fails does not stop the others, nor the death.
    }
  }
  ::signal(sig, SIG_DFL);
  sigset_t one;
  sigemptyset(&one);
  sigaddset(&one, sig);
  ::pthread_sigmask(SIG_UNBLOCK, &one, nullptr);
  ::raise(sig);
  ::_exit(128 + sig);  // not reached: the default action of these ends the process
}

}  // namespace

void handle_interrupts() {
  static bool started = false;
  if (started) return;
  started = true;
  sigset_t set;
  sigemptyset(&set);
  for (int s : {SIGINT, SIGTERM, SIGHUP}) {
    struct sigaction old {};
    if (::sigaction(s, nullptr, &old) == 0 && old.sa_handler == SIG_IGN) continue;
    sigaddset(&set, s);
  }
  ::pthread_sigmask(SIG_BLOCK, &set, nullptr);
  std::thread([set] {
    int sig = 0;
    while (::sigwait(&set, &sig) != 0) {
    }
    on_interrupt(sig);
  }).detach();
}

const char* signal_name(int sig) {
  switch (sig) {
    case SIGINT: return "SIGINT";
    case SIGTERM: return "SIGTERM";
    case SIGHUP: return "SIGHUP";
    default: return "a signal";
  }
}

InterruptHook::InterruptHook(std::function<void(int)> fn) { set(std::move(fn)); }

InterruptHook::~InterruptHook() { reset(); }

void InterruptHook::set(std::function<void(int)> fn) {
  std::lock_guard<std::recursive_mutex> lk(hooks().mu);
  if (set_) {
    *it_ = std::move(fn);
    return;
  }
  it_ = hooks().list.insert(hooks().list.end(), std::move(fn));
  set_ = true;
}

void InterruptHook::reset() {
  if (!set_) return;
  std::lock_guard<std::recursive_mutex> lk(hooks().mu);
  hooks().list.erase(it_);
  set_ = false;
}

void interrupts_held_off(const std::function<void()>& fn) {
  std::lock_guard<std::recursive_mutex> lk(hooks().mu);
  fn();
}

}  // namespace xsr::cli
