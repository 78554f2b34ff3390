// Regular files through bounded mapped windows (--io mmap): kept for paths
// that hand spans on untouched; touching mapped pages is this VM's slow
// path (MEASUREMENTS.md), so pread is the default.
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <mutex>

#include "io_engine.h"
#include "xsr/sys.h"

namespace xsr::detail {
namespace {

// A file that shrinks under a mapping turns reads of the lost pages into
// SIGBUS. Each MappedSource registers its current window here; the handler
// recognises a fault inside one, maps anonymous zero pages over the window
// (so the faulting read completes) and sets the source's error to EIO: its
// next peek fails, and verify/convert refuse a verdict reached over zeros.
// Faults anywhere else go to the previous disposition (the default: death).
struct MapGuard {
  std::atomic<std::byte*> base{nullptr};
  std::atomic<std::size_t> len{0};
  std::atomic<int*> err{nullptr};
  std::atomic<bool> used{false};
};
constexpr std::size_t kMapGuards = 64;
MapGuard g_map_guards[kMapGuards];
struct sigaction g_old_sigbus;

void on_sigbus(int sig, siginfo_t* si, void* uc) {
  auto* a = static_cast<std::byte*>(si->si_addr);
  for (MapGuard& g : g_map_guards) {
    std::byte* b = g.base.load(std::memory_order_acquire);
    std::size_t n = g.len.load(std::memory_order_acquire);
    int* err = g.err.load(std::memory_order_acquire);
    if (!b || !err || a < b || a >= b + n) continue;
    if (::mmap(b, n, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) == MAP_FAILED) break;
    *static_cast<volatile int*>(err) = EIO;
    return;
  }
  if (g_old_sigbus.sa_flags & SA_SIGINFO) {
    g_old_sigbus.sa_sigaction(sig, si, uc);
  } else if (g_old_sigbus.sa_handler != SIG_DFL && g_old_sigbus.sa_handler != SIG_IGN) {
    g_old_sigbus.sa_handler(sig);
  } else {
    // Returning re-runs the faulting access under the default action.
    ::signal(SIGBUS, SIG_DFL);
  }
}

MapGuard* claim_map_guard() {
  static std::once_flag once;
  std::call_once(once, [] {
    struct sigaction sa {};
    sa.sa_sigaction = on_sigbus;
    sa.sa_flags = SA_SIGINFO;
    sigemptyset(&sa.sa_mask);
    ::sigaction(SIGBUS, &sa, &g_old_sigbus);
  });
  for (MapGuard& g : g_map_guards) {
    bool f = false;
    if (g.used.compare_exchange_strong(f, true)) return &g;
  }
  return nullptr;  // more live mapped sources than slots: unguarded
}

// Regular files through bounded mapped windows; windows behind the cursor
// are released as it moves on, so resident memory stays bounded.
class MappedSource final : public Source {
 public:
  static constexpr std::uint64_t kWindow = 64ull << 20;

  MappedSource(int fd, bool owned, std::uint64_t start, std::uint64_t size)
      : fd_(fd), owned_(owned), start_(start), cur_(start), size_(size), guard_(claim_map_guard()) {
    if (guard_) guard_->err.store(&error_, std::memory_order_release);
  }
  ~MappedSource() override {
    unmap();
    if (guard_) {
      guard_->err.store(nullptr, std::memory_order_release);
      guard_->used.store(false, std::memory_order_release);
    }
    if (owned_) ::close(fd_);
  }
  std::string_view kind() const override { return "mmap"; }
  std::int64_t remaining() const override {
    return static_cast<std::int64_t>(size_ > cur_ ? size_ - cur_ : 0);
  }

  Bytes peek(std::size_t n) override {
    if (error_) [[unlikely]]
      return {};  // e.g. the file shrank under the window (EIO, above)
    if (n > kMaxPeek) n = kMaxPeek;
    if (cur_ + n > win_off_ + win_len_ || cur_ < win_off_) {
      if (!map_at(cur_)) return {};
    }
    std::uint64_t avail = win_off_ + win_len_ - cur_;
    return {win_ + (cur_ - win_off_), static_cast<std::size_t>(avail)};
  }
  void consume(std::size_t n) override { cur_ += n; }
  std::uint64_t skip(std::uint64_t n) override {
    if (error_) [[unlikely]]
      return 0;
    if (cur_ + n > size_) refresh_size();
    std::uint64_t d = std::min(n, size_ > cur_ ? size_ - cur_ : 0);
    cur_ += d;
    return d;
  }
  std::uint64_t pos() const override { return cur_ - start_; }
  int finish() override {
    if (sys::lseek(fd_, static_cast<off_t>(cur_), SEEK_SET) < 0) return errno;
    return 0;
  }

 private:
  void refresh_size() {
    struct stat st;
    if (::fstat(fd_, &st) == 0) size_ = static_cast<std::uint64_t>(st.st_size);
  }
  void unmap() {
    if (guard_) guard_->base.store(nullptr, std::memory_order_release);
    if (win_) ::munmap(win_, win_len_);
    win_ = nullptr;
    win_len_ = 0;
  }
  bool map_at(std::uint64_t at) {
    unmap();
    refresh_size();
    std::uint64_t base = at & ~(kPageSize() - 1);
    if (base >= size_) {
      win_off_ = at;
      return true;  // empty window: end of input
    }
    std::uint64_t len = std::min(kWindow, size_ - base);
    void* p = ::mmap(nullptr, len, PROT_READ, MAP_SHARED, fd_, static_cast<off_t>(base));
    if (p == MAP_FAILED) {
      error_ = errno;
      win_off_ = at;
      return false;
    }
    (void)::madvise(p, len, MADV_SEQUENTIAL);
    win_ = static_cast<std::byte*>(p);
    win_off_ = base;
    win_len_ = len;
    if (guard_) {
      guard_->len.store(static_cast<std::size_t>(len), std::memory_order_release);
      guard_->base.store(win_, std::memory_order_release);
    }
    return true;
  }
  static std::uint64_t kPageSize() { return 4096; }

  int fd_;
  bool owned_;
  std::uint64_t start_, cur_, size_;
  std::byte* win_ = nullptr;
  std::uint64_t win_off_ = 0, win_len_ = 0;
  MapGuard* guard_;
};

}  // namespace

std::unique_ptr<Source> make_mmap_source(int fd, bool owned, std::uint64_t start, std::uint64_t size) {
  return std::make_unique<MappedSource>(fd, owned, start, size);
}

}  // namespace xsr::detail
