// Fuzz target: xsr::relay, the verifying forwarder, over real descriptors.
// A sender thread writes the stream into a pipe or socketpair in random
// pieces (1 byte .. 64 KiB) and closes it; a collector thread reads what
// the relay forwards from another pipe or socketpair; relay() runs here
// with a 5 s --timeout, a guard against hangs only (no sleeps anywhere).
//
// Byte 0: bits 0-1 format (autodetect, libxc, libxl, xl), bit 2 strict,
// bit 3 checkpointed, bit 4 plain reads (else io_uring where available),
// bit 5 input a socketpair (else a pipe), bit 6 output a socketpair, bit 7
// convert a legacy stream on the way. Byte 1: bit 3 a small hold, bits 0-2
// which (kHolds); bits 4-5 the converter's output (detect, libxc, libxl),
// bit 6 skip qemu, bit 7 stream version 2. Bytes 2-5 seed the sender's
// piece sizes. The rest is the stream. --then-copy stays off (what follows
// the stream is left on the input, checked below).
//
// The oracle is the verifier over the same bytes in memory (same
// VerifyOptions), with an observer noting the stream offset after every
// header and record it passes: the boundaries B1 <= B2 <= ... (B0 = 0; the
// two libxc headers are reported together, so a boundary can repeat). The
// relay releases what it holds at exactly those points. With E the expected
// bytes (the input; when the relay converts, convert_legacy's output of the
// same input into a memfd, with the ConvertOptions relay() derives) and M
// the in-memory verdict over E:
//   1. Always: out_error is empty (the collector reads everything),
//      out_bytes is what arrived, `converted` says whether the input was a
//      legacy image, and the output is a byte prefix of E. A legacy input
//      whose width or guest type cannot be guessed: bad_header at 0 and no
//      output.
//   2. A hold refusal ("(--hold)" in the message, Errc::io) ends the output
//      on a boundary Bk, and the next boundary, when M passed one, is more
//      than max_hold further on: a unit that fits is never refused. Nothing
//      else is required of a refused stream.
//   3. M ok (and the memory conversion ok): the relay succeeds. Not
//      converting: output = E[0, in_bytes), in_bytes = M's stats.bytes (the
//      bytes of the stream up to its outermost END, headers included), and
//      what the relay left unread on the input is exactly E[in_bytes, end).
//      Converting: output = all of E (the stream and the converter's raw
//      tail after its END); in_bytes, out_bytes and tail_bytes are the
//      memory converter's.
//   4. Otherwise the relay fails: with M's code and offset, the output
//      ending on M's last boundary and at or before M's error offset (all
//      of the records before the bad one, none of it). Converting with the
//      memory conversion failed, the relay may report the converter's error
//      instead ("legacy stream: " + its detail, same code and offset), as
//      the converter or the verifier stops first; that error also hides a
//      hold refusal, so the output is then either M's last boundary (all
//      of E when M is ok) or shaped as in 2.
//   5. The output, verified in memory on its own: ok exactly when M is ok
//      (stats.bytes = M's: a tail after END is not read); else Errc::
//      truncated at offset = the output's length, the output ending on a
//      record boundary; but an empty output under autodetect is
//      bad_header at 0 (detect_format calls nothing "legacy"). A prefix of
//      a failing stream is never ok: the verifier stops at the outermost
//      END, so a whole stream in the output would have made M ok. (Found
//      by running this target over the fixtures; exact, no slack.)
//   6. The relay's StreamStats (bytes, records, pages) equal M's, unless
//      the converter's error hid the relay's verdict.
// Its three findings (fixtures/invalid/fuzz-relay-*.input) are fixed: a
// strict libxl order rule checked after the record was handed on, the
// converter's tail asking for more than a small hold, and a hold refusal
// reported as a bare strerror.
#include <signal.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "../test_util.h"
#include "fuzz.h"
#include "xsr/convert.h"
#include "xsr/image.h"
#include "xsr/relay.h"
#include "xsr/verify.h"

namespace {

using namespace xsr;

// Stream offsets after each header and record the verifier passed.
class Boundaries final : public StreamObserver {
 public:
  Boundaries(const Source& src, std::vector<std::uint64_t>& at) : src_(src), at_(at) {}
  void header(HeaderKind, std::uint64_t, std::uint64_t) override { at_.push_back(src_.pos()); }
  void record(Layer, std::uint32_t, std::uint64_t, std::uint64_t, Bytes) override {
    at_.push_back(src_.pos());
  }

 private:
  const Source& src_;
  std::vector<std::uint64_t>& at_;
};

struct Verdict {
  Error e;
  StreamStats st;
  std::vector<std::uint64_t> bounds;  // B1, B2, ... (B0 = 0 implied)
  std::uint64_t last() const { return bounds.empty() ? 0 : bounds.back(); }
};

Verdict verify_memory(Bytes b, const VerifyOptions& base) {
  auto src = memory_source(b);
  Verdict v;
  Boundaries obs(*src, v.bounds);
  VerifyOptions vo = base;
  vo.observer = &obs;
  v.e = verify(*src, vo, v.st);
  return v;
}

bool same_place(const Error& a, const Error& b) { return a.code == b.code && a.offset == b.offset; }

bool is_prefix(const std::vector<std::byte>& p, Bytes of) {
  return p.size() <= of.size() && std::equal(p.begin(), p.end(), of.begin());
}

void say(const std::string& s) { (void)!::write(2, s.data(), s.size()); }

void make_channel(bool sock, int fds[2]) {
  const int r = sock ? ::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) : ::pipe2(fds, O_CLOEXEC);
  XSR_FUZZ_CHECK(r == 0);
}

// A thread kept for the whole run, given one job at a time: a new thread
// per execution costs more than the relay itself under AddressSanitizer.
// Never destroyed (the process exits with it waiting).
class Worker {
 public:
  Worker() : th_([this] { loop(); }) {}
  void start(std::function<void()> job) {
    std::lock_guard<std::mutex> l(mu_);
    job_ = std::move(job);
    busy_ = true;
    cv_.notify_all();
  }
  void wait() {
    std::unique_lock<std::mutex> l(mu_);
    cv_.wait(l, [&] { return !busy_; });
  }

 private:
  void loop() {
    std::unique_lock<std::mutex> l(mu_);
    for (;;) {
      cv_.wait(l, [&] { return job_ != nullptr; });
      std::function<void()> job = std::move(job_);
      job_ = nullptr;
      l.unlock();
      job();
      l.lock();
      busy_ = false;
      cv_.notify_all();
    }
  }
  std::mutex mu_;
  std::condition_variable cv_;
  std::function<void()> job_;
  bool busy_ = false;
  std::thread th_;
};

// Piece sizes of the sender: mostly small, some a page or two, some large.
std::size_t piece(fuzz::Rng& rng) {
  const std::uint32_t pick = rng.below(16);
  if (pick < 4) return 1 + rng.below(16);
  if (pick < 10) return 1 + rng.below(4096);
  if (pick < 14) return 1 + rng.below(16 << 10);
  return 1 + rng.below(64 << 10);
}

// Small holds: what --hold allows (1 MiB and up) and, for the library,
// smaller ones that records of a fuzz input can exceed.
constexpr std::uint64_t kHolds[] = {4 << 10, 16 << 10, 40 << 10, 100 << 10,
                                    1 << 20, 2 << 20,  5 << 20,  8 << 20};

}  // namespace

XSR_FUZZ_TARGET(relay) {
  static const bool sigpipe_ignored = [] { return ::signal(SIGPIPE, SIG_IGN) != SIG_ERR; }();
  (void)sigpipe_ignored;

  fuzz::Options in(data, size);
  const std::uint8_t a = in.byte(), b = in.byte();
  const std::uint32_t seed = in.u32();
  const Bytes stream = in.rest();

  static constexpr Format kFormats[] = {Format::autodetect, Format::libxc, Format::libxl, Format::xl};
  RelayOptions opt;
  opt.verify.format = kFormats[a & 3];
  opt.verify.strict = a & 4;
  opt.verify.checkpointed = a & 8;
  opt.io = (a & 16) ? IoMode::read : IoMode::automatic;
  opt.convert = a & 128;
  if (b & 8) opt.max_hold = kHolds[b & 7];
  static constexpr RelayOptions::OutFormat kOut[] = {
      RelayOptions::OutFormat::detect, RelayOptions::OutFormat::libxc, RelayOptions::OutFormat::libxl,
      RelayOptions::OutFormat::detect};
  opt.conv_format = kOut[(b >> 4) & 3];
  opt.conv.skip_qemu = b & 64;
  opt.conv.stream_version = (b & 128) ? 2 : 3;
  opt.timeout_ms = 5000;  // a hang guard: every peer here is quick
  opt.then_copy = false;

  // ---- the relay, between two threads ----
  int fin[2], fout[2];
  make_channel(a & 32, fin);
  make_channel(a & 64, fout);
  std::vector<std::byte> out, left;
  RelayResult r;
  {
    static Worker& sender = *new Worker;
    static Worker& collector = *new Worker;
    sender.start([&, wfd = fin[1]] {
      fuzz::Rng rng(seed);
      std::size_t off = 0;
      while (off < stream.size()) {
        const std::size_t n = std::min(piece(rng), stream.size() - off);
        ssize_t w = ::write(wfd, stream.data() + off, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) break;  // the relay is gone (EPIPE): not for us to judge here
        off += static_cast<std::size_t>(w);
      }
      ::close(wfd);
    });
    collector.start([&, rfd = fout[0]] { out = test::read_all_fd(rfd); });
    r = relay(fin[0], fout[1], opt);
    ::close(fout[1]);
    collector.wait();
    left = test::read_all_fd(fin[0]);  // what the relay left unread; lets the sender finish
    sender.wait();
  }
  ::close(fin[0]);
  ::close(fout[0]);

  // ---- the reference: the same bytes in memory ----
  const VerifyOptions& vo = opt.verify;
  bool legacy = false;
  std::vector<std::byte> conv_out;
  ConvertResult cr;
  bool detect_failed = false;
  if (opt.convert) {
    auto mem = memory_source(stream);
    legacy = legacy_image(*mem);
    if (legacy) {
      // The ConvertOptions relay() derives from the detection.
      const LegacyGuess g = detect_legacy(*mem);
      const ConvertOptions co = relay_convert_options(opt, g);
      if (!g.ok && (co.width == 0 || co.guest == GuestType::unknown)) {
        detect_failed = true;
      } else {
        const int mfd = fuzz::empty_memfd();
        XSR_FUZZ_CHECK(mfd >= 0);
        {
          Sink sink(mfd);
          cr = convert_legacy(*mem, sink, co);
        }
        ::lseek(mfd, 0, SEEK_SET);
        conv_out = test::read_all_fd(mfd);
      }
    }
  }
  const bool converting = legacy && !detect_failed;
  const Bytes expect = converting ? Bytes(conv_out) : stream;
  const Verdict m = verify_memory(expect, vo);
  const std::vector<std::uint64_t>& bounds = m.bounds;
  const std::uint64_t last_bound = m.last();

  auto explain = [&] {
    std::string s = "relay: " + (r.error ? r.error.message() : std::string("ok")) +
                    (!r.out_error ? "" : " / out: " + r.out_error.detail) +
                    "\nmemory: " + (m.e ? m.e.message() : std::string("ok")) + "\nconverting " +
                    std::to_string(converting) + " (relay " + std::to_string(r.converted) +
                    "), conversion: " + (cr.error ? cr.error.message() : std::string("ok")) + "\nout " +
                    std::to_string(out.size()) + " bytes (out_bytes " + std::to_string(r.out_bytes) +
                    "), in_bytes " + std::to_string(r.in_bytes) + ", left " + std::to_string(left.size()) +
                    ", input " + std::to_string(stream.size()) + ", expected " +
                    std::to_string(expect.size()) + ", last boundary " + std::to_string(last_bound) +
                    ", stats.bytes " + std::to_string(m.st.bytes) + " / relay " +
                    std::to_string(r.stats.bytes) + "\n";
    say(s);
  };
#define RELAY_CHECK(cond)   \
  do {                      \
    if (!(cond)) {          \
      explain();            \
      XSR_FUZZ_CHECK(cond); \
    }                       \
  } while (0)

  // 1. Whatever happened: nothing but a prefix of what was expected.
  RELAY_CHECK(!r.out_error);
  RELAY_CHECK(r.out_bytes == out.size());
  RELAY_CHECK(r.converted == converting);
  if (opt.io == IoMode::read) RELAY_CHECK(r.reader == "read");
  if (!converting) RELAY_CHECK(r.in_bytes + left.size() <= stream.size());
  if (detect_failed) {
    // The legacy guess left the width or guest type open: nothing relayed.
    RELAY_CHECK(r.error.code == Errc::bad_header && r.error.offset == 0);
    RELAY_CHECK(out.empty());
    return 0;
  }
  RELAY_CHECK(is_prefix(out, expect));

  // 2. A hold refusal: on a boundary, and only of a unit longer than the
  // hold (boundaries repeat: both libxc headers are reported at once).
  auto refused_shape = [&](std::uint64_t n) {
    if (n != 0 && !std::binary_search(bounds.begin(), bounds.end(), n)) return false;
    const auto next = std::upper_bound(bounds.begin(), bounds.end(), n);
    return next == bounds.end() || *next - n > opt.max_hold;
  };
  if (r.error && r.error.message().find("(--hold)") != std::string::npos) {
    RELAY_CHECK(r.error.code == Errc::io);
    RELAY_CHECK(refused_shape(out.size()));
    return 0;
  }

  // 3. and 4. The verdict and the output. Converting, the converter can
  // fail after a stream that verifies (a cut qemu tail after its END): the
  // relay forwards that stream and the tail it got, then fails.
  const bool conv_failed = converting && cr.error;
  bool hidden = false;  // the relay's own verdict is hidden by the converter's error
  if (!m.e && !conv_failed) {
    RELAY_CHECK(!r.error);
    if (converting) {
      RELAY_CHECK(out.size() == conv_out.size());
      RELAY_CHECK(r.in_bytes == cr.in_bytes);
      RELAY_CHECK(!r.conv.error && r.conv.out_bytes == cr.out_bytes && r.conv.tail_bytes == cr.tail_bytes);
    } else {
      RELAY_CHECK(r.in_bytes == m.st.bytes);
      RELAY_CHECK(out.size() == m.st.bytes);
      RELAY_CHECK(r.in_bytes + left.size() == stream.size());
      RELAY_CHECK(
          std::equal(left.begin(), left.end(), stream.begin() + static_cast<std::ptrdiff_t>(r.in_bytes)));
    }
  } else {
    RELAY_CHECK(r.error);
    // The verified prefix; all of it and the tail when the stream verified.
    const std::uint64_t want = m.e ? last_bound : conv_out.size();
    if (conv_failed && r.error.detail.rfind("legacy stream: ", 0) == 0) {
      RELAY_CHECK(same_place(r.error, cr.error));
      RELAY_CHECK(r.error.detail == "legacy stream: " + cr.error.detail);
      // The converter's error wins over the relay's own verdict, which may
      // have been a hold refusal (then the output ends as a refused one
      // does) or an early stop: its counts are not M's.
      hidden = true;
      if (out.size() != want) {
        RELAY_CHECK(refused_shape(out.size()));
        return 0;
      }
    } else {
      RELAY_CHECK(m.e && same_place(r.error, m.e));
    }
    RELAY_CHECK(out.size() == want);
    // Nothing of the failing record (or header field) went.
    if (m.e) RELAY_CHECK(out.size() <= m.e.offset);
  }

  // 5. The output, verified on its own: a whole stream exactly when M is
  // ok, else cut exactly at its own end.
  {
    const Verdict o = verify_memory(Bytes(out.data(), out.size()), vo);
    if (!m.e) {
      RELAY_CHECK(!o.e);
      RELAY_CHECK(o.st.bytes == m.st.bytes);
    } else if (out.empty() && vo.format == Format::autodetect) {
      // Nothing to detect: detect_format calls it legacy.
      RELAY_CHECK(o.e.code == Errc::bad_header && o.e.offset == 0);
    } else {
      if (!(o.e.code == Errc::truncated && o.e.offset == out.size())) say("output: " + o.e.message() + "\n");
      RELAY_CHECK(o.e.code == Errc::truncated && o.e.offset == out.size());
    }
  }

  // 6. The same counts as the verifier in memory.
  if (!hidden) {
    RELAY_CHECK(r.stats.bytes == m.st.bytes);
    RELAY_CHECK(r.stats.records == m.st.records && r.stats.pages == m.st.pages);
  }
#undef RELAY_CHECK
  return 0;
}
