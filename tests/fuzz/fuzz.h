// Shared pieces of the fuzz targets (one file per target, tests/fuzz/*.cc).
//
// A target is written once with XSR_FUZZ_TARGET(name) { ... } and built two
// ways: with -DXSR_FUZZ_LIBFUZZER it is a libFuzzer program (meson
// -Dfuzz=true, clang); without, it registers itself in `targets()` so the
// default test suite (fuzz_regression_test) replays every file of
// fixtures/invalid/ through every target. Adding a target: a new
// fuzz_<name>.cc here, its name in tests/fuzz/meson.build, seeds in
// scripts/fuzz.sh.
//
// Inputs: the first bytes choose options (Options below), the rest is the
// stream, so a seed is a generated image with a byte or few in front.
#pragma once

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <vector>

#include "xsr/source.h"

namespace xsr::fuzz {

using Fn = int (*)(const std::uint8_t* data, std::size_t size);

struct Target {
  const char* name;
  Fn fn;
};

inline std::vector<Target>& targets() {
  static std::vector<Target> t;
  return t;
}

struct Register {
  Register(const char* name, Fn fn) { targets().push_back({name, fn}); }
};

// Takes option bytes off the front of an input; past the end they read 0.
class Options {
 public:
  Options(const std::uint8_t* data, std::size_t size) : p_(data), n_(size) {}
  std::uint8_t byte() {
    if (n_ == 0) return 0;
    --n_;
    return *p_++;
  }
  std::uint32_t u32() {
    std::uint32_t v = 0;
    for (int i = 0; i < 4; ++i) v |= std::uint32_t{byte()} << (8 * i);
    return v;
  }
  // What is left: the stream.
  Bytes rest() const { return {reinterpret_cast<const std::byte*>(p_), n_}; }

 private:
  const std::uint8_t* p_;
  std::size_t n_;
};

// A small deterministic generator (xorshift32) for choices a target makes
// as it runs, seeded from the input so a crash replays.
class Rng {
 public:
  explicit Rng(std::uint32_t seed) : s_(seed ? seed : 0x9e3779b9u) {}
  std::uint32_t next() {
    s_ ^= s_ << 13;
    s_ ^= s_ >> 17;
    s_ ^= s_ << 5;
    return s_;
  }
  std::uint32_t below(std::uint32_t n) { return n ? next() % n : 0; }

 private:
  std::uint32_t s_;
};

// Crashes on a broken invariant, so libFuzzer (and the regression test)
// report it like a sanitizer finding.
[[noreturn]] inline void fail(const char* what) {
  (void)!::write(2, "xsr fuzz invariant: ", 20);
  (void)!::write(2, what, std::strlen(what));
  (void)!::write(2, "\n", 1);
  std::abort();
}
#define XSR_FUZZ_CHECK(cond)               \
  do {                                     \
    if (!(cond)) ::xsr::fuzz::fail(#cond); \
  } while (0)

// Output descriptors that cost nothing per run.
inline int dev_null() {
  static int fd = ::open("/dev/null", O_WRONLY | O_CLOEXEC);
  return fd;
}
// A memfd emptied on every call (a regular-file output: other Sink paths).
inline int empty_memfd() {
  static int fd = ::memfd_create("xsr-fuzz-out", MFD_CLOEXEC);
  if (fd >= 0) {
    (void)!::ftruncate(fd, 0);
    ::lseek(fd, 0, SEEK_SET);
  }
  return fd;
}

// A Source over bytes in memory that behaves like a descriptor-backed one
// at its worst: every peek hands out a window of at least n bytes (the
// contract) but otherwise of random size, in a fresh heap copy that dies at
// the next peek, skip or forward (so a reader keeping a view too long is a
// use-after-free that AddressSanitizer reports), consume is checked against
// the last window, and an I/O error can be injected after a number of calls.
// Stands for io_uring and read(2) sources fed by a peer in random pieces.
class ChunkySource final : public Source {
 public:
  ChunkySource(Bytes data, std::uint32_t seed, int fail_after = -1)
      : data_(data), rng_(seed), fail_after_(fail_after) {}

  Bytes peek(std::size_t n) override {
    drop_window();
    if (failing()) return {};
    if (n > kMaxPeek) n = kMaxPeek;
    const std::size_t avail = data_.size() - cur_;
    std::size_t extra = 0;
    const std::uint32_t pick = rng_.below(20);
    if (pick < 10) extra = 0;                      // exactly what was asked
    else if (pick < 15) extra = rng_.below(16);    // a few bytes more
    else if (pick < 19) extra = rng_.below(4096);  // a page or so
    else extra = rng_.below(64 << 10);             // a pipe's worth
    const std::size_t len = std::min(avail, std::min(n + extra, kMaxPeek + (64 << 10)));
    win_ = std::make_unique<std::byte[]>(len ? len : 1);
    if (len) std::memcpy(win_.get(), data_.data() + cur_, len);
    win_len_ = len;
    return {win_.get(), len};
  }
  void consume(std::size_t n) override {
    XSR_FUZZ_CHECK(n <= win_len_);  // only bytes of the last window
    win_len_ -= n;
    cur_ += n;
  }
  std::uint64_t skip(std::uint64_t n) override {
    drop_window();
    if (failing()) return 0;
    const std::uint64_t avail = data_.size() - cur_;
    // A transport may fail part-way through a long skip.
    std::uint64_t d = std::min(n, avail);
    cur_ += static_cast<std::size_t>(d);
    return d;
  }
  void hint(std::uint64_t n) override { hinted_ = std::max(hinted_, cur_ + n); }
  std::uint64_t pos() const override { return cur_; }
  std::string_view kind() const override { return "chunky"; }

  bool injected() const { return injected_; }

 private:
  void drop_window() {
    win_.reset();
    win_len_ = 0;
  }
  bool failing() {
    if (fail_after_ < 0) return false;
    if (fail_after_ > 0) {
      --fail_after_;
      return false;
    }
    error_ = EIO;
    injected_ = true;
    return true;
  }

  Bytes data_;
  Rng rng_;
  int fail_after_;
  bool injected_ = false;
  std::size_t cur_ = 0;
  std::uint64_t hinted_ = 0;
  std::unique_ptr<std::byte[]> win_;
  std::size_t win_len_ = 0;
};

}  // namespace xsr::fuzz

#ifdef XSR_FUZZ_LIBFUZZER
#define XSR_FUZZ_ENTRY(name)                                                          \
  extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) { \
    return xsr_fuzz_##name(data, size);                                               \
  }
#else
#define XSR_FUZZ_ENTRY(name) \
  static const ::xsr::fuzz::Register xsr_fuzz_register_##name(#name, xsr_fuzz_##name);
#endif

// Defines target `name`: XSR_FUZZ_TARGET(verify) { ...data, size...; return 0; }
#define XSR_FUZZ_TARGET(name)                                             \
  static int xsr_fuzz_##name(const std::uint8_t* data, std::size_t size); \
  XSR_FUZZ_ENTRY(name)                                                    \
  static int xsr_fuzz_##name(const std::uint8_t* data, std::size_t size)
