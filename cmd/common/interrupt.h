// SIGINT, SIGTERM and SIGHUP: a run that is told to stop cleans up after
// itself (no temporary file left, the progress bar cleared, the --stats-json
// summary written with ok:false) and then dies of the signal it got, so
// whoever started it sees the signal in its exit status.
//
// No code runs in a signal handler: the signals are blocked in every thread
// and one thread waits for them with sigwait(2), so the cleanup runs in
// normal context and may allocate, lock and write files.
#pragma once

#include <functional>
#include <list>

namespace xsr::cli {

// Blocks SIGINT, SIGTERM and SIGHUP (those not ignored when the program
// started: nohup's SIGHUP stays ignored) and starts the thread that waits
// for them. Call first in main, before any thread is started, so that every
// thread inherits the mask. On a signal the thread clears the progress bar,
// runs the registered hooks (newest first), restores the default action and
// raises the signal again. Idempotent.
void handle_interrupts();

// "SIGINT", "SIGTERM", "SIGHUP" (else "a signal").
const char* signal_name(int sig);

// Registers `fn(sig)` to run on an interrupt for the hook's lifetime. Once
// the hooks have started running they hold a lock until the process dies:
// the destructor of a hook (and interrupts_held_off) then blocks, so
// nothing a hook uses goes away under it and nothing a hook undoes is
// redone after it.
class InterruptHook {
 public:
  InterruptHook() = default;
  explicit InterruptHook(std::function<void(int sig)> fn);
  ~InterruptHook();
  InterruptHook(const InterruptHook&) = delete;
  InterruptHook& operator=(const InterruptHook&) = delete;
  void set(std::function<void(int sig)> fn);
  void reset();

 private:
  bool set_ = false;
  std::list<std::function<void(int)>>::iterator it_;
};

// Runs `fn` with the hooks held off: an interrupt arriving meanwhile runs
// them after `fn` returns (a rename into place is either done or not).
void interrupts_held_off(const std::function<void()>& fn);

}  // namespace xsr::cli
