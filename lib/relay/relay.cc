#include "xsr/relay.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>

#include "xsr/format.h"
#include "xsr/hold.h"
#include "xsr/image.h"
#include "xsr/pipe_worker.h"
#include "xsr/sys.h"
#include "xsr/units.h"

namespace xsr {
namespace {

constexpr std::size_t kPipeWant = 1 << 20;
constexpr std::size_t kChunk = 1 << 20;

// Lets held bytes go each time the verifier has checked a header or a
// record; counts records and pages for --stats.
class Forwarder final : public StreamObserver {
 public:
  Forwarder(HoldQueue& st, HoldingSource& src, RunCounters* stats) : st_(st), src_(src), stats_(stats) {}

  void header(HeaderKind, std::uint64_t, std::uint64_t) override { commit(); }
  void record(Layer layer, std::uint32_t type, std::uint64_t, std::uint64_t, Bytes) override {
    if (layer == Layer::libxc && type == libxc::PAGE_DATA) {
      if (stats_) stats_->add_pages(pending_pages_);
      pending_pages_ = 0;
    }
    if (stats_) stats_->add_records(1);
    commit();
  }
  void pfns(Bytes chunk) override { pending_pages_ += count_data_pages(chunk); }

  // Releases what is held; false once the output has failed (the
  // verifier then stops at its next read).
  bool commit() {
    if (st_.out_error() || src_.failed()) return false;
    const Error e = st_.mark();
    if (stats_) stats_->set_bytes(st_.sent());
    if (e) src_.fail(ECANCELED);
    return !e;
  }

  // Sends everything released (the stream's end).
  bool drain() {
    const Error e = st_.push(true);
    if (stats_) stats_->set_bytes(st_.sent());
    return !e;
  }

 private:
  HoldQueue& st_;
  HoldingSource& src_;
  RunCounters* stats_;
  std::uint64_t pending_pages_ = 0;
};

// The relay waits for its output in poll(2), never in a send: a socket
// output is non-blocking while it runs (splice(2) follows the socket's
// own flag), and gets its flags back after.
class NonBlocking {
 public:
  explicit NonBlocking(int fd) : fd_(fd) {
    if (!fd_caps(fd).has(IoCaps::socket)) return;
    flags_ = ::fcntl(fd, F_GETFL);
    if (flags_ >= 0 && !(flags_ & O_NONBLOCK)) ::fcntl(fd, F_SETFL, flags_ | O_NONBLOCK);
    else flags_ = -1;
  }
  ~NonBlocking() { restore(); }
  void restore() {
    if (flags_ >= 0) ::fcntl(fd_, F_SETFL, flags_);
    flags_ = -1;
  }

 private:
  int fd_;
  int flags_ = -1;
};

// The receiver's failure (cause: its errno), in the relay's words.
Error output_error(int e, int timeout_ms) {
  std::string s = e == ETIMEDOUT
                      ? "the receiver took nothing for " + format_seconds(timeout_ms) + " (--timeout)"
                      : std::strerror(e);
  if (e == EPIPE || e == ECONNRESET) s += " (the receiver closed the connection)";
  Error out = Error::at(Errc::output, 0, std::move(s));
  out.cause = e;
  return out;
}

// Moves bytes one way between two descriptors through a private pipe.
struct Pump {
  int from, to;
  int pr = -1, pw = -1;
  std::size_t in_pipe = 0;
  bool eof = false, done = false;
  std::uint64_t moved = 0;
  ~Pump() {
    if (pr >= 0) ::close(pr);
    if (pw >= 0) ::close(pw);
  }
  Error open() {
    int p[2];
    if (::pipe2(p, O_CLOEXEC | O_NONBLOCK) != 0) return Error::io(0, "pipe", errno);
    pr = p[0];
    pw = p[1];
    return {};
  }
  // One step without blocking; 0, EAGAIN (nothing to do now) or an errno
  // (*out_side: the failure was the receiving side's).
  int step(bool* out_side) {
    if (in_pipe > 0) {
      ssize_t r = sys::splice(pr, nullptr, to, nullptr, in_pipe, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
      if (r > 0) {
        in_pipe -= static_cast<std::size_t>(r);
        moved += static_cast<std::uint64_t>(r);
        return 0;
      }
      *out_side = true;
      return r < 0 ? errno : EIO;
    }
    if (eof) {
      if (!done) {
        done = true;
        if (fd_caps(to).has(IoCaps::socket)) ::shutdown(to, SHUT_WR);
      }
      return EAGAIN;
    }
    ssize_t r = sys::splice(from, nullptr, pw, nullptr, kChunk, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
    if (r > 0) {
      in_pipe = static_cast<std::size_t>(r);
      return 0;
    }
    if (r == 0) {
      eof = true;
      return 0;
    }
    *out_side = false;
    return errno;
  }
};

// A failure after the stream, with the errno that caused it.
Error after_stream(std::string what, int e) {
  Error out = Error::at(Errc::io, 0, "after the stream, " + std::move(what));
  out.cause = e;
  return out;
}

// One round of both pumps; an error when a peer failed, else whether
// anything moved.
Result<bool> pump_round(Pump& f, Pump& b) {
  bool progress = false;
  for (Pump* p : {&f, &b}) {
    if (p->done) continue;
    bool out_side = false;
    const int e = p->step(&out_side);
    if (e == 0) {
      progress = true;
      continue;
    }
    if (e == EAGAIN || e == EINTR) continue;
    // Which peer failed: the forward pump reads the sender and writes
    // the receiver; the backward one the other way round.
    const char* peer = p == &f ? (out_side ? "to the receiver" : "from the sender")
                               : (out_side ? "back to the sender" : "from the receiver");
    return after_stream(std::string("copying ") + peer + ": " + std::strerror(e), e);
  }
  return progress;
}

// --then-copy: in -> out, and out -> in when both are sockets, until both
// directions have ended.
Error copy_both(int in, int out, int timeout_ms, std::uint64_t* fwd, std::uint64_t* back) {
  Pump f{in, out};
  Pump b{out, in};
  const bool both = fd_caps(in).has(IoCaps::socket) && fd_caps(out).has(IoCaps::socket);
  if (Error e = f.open()) return e;
  if (both) {
    if (Error e = b.open()) return e;
  } else {
    b.done = true;
  }
  Error why;
  while (!(f.done && b.done)) {
    Result<bool> moved = pump_round(f, b);
    if (!moved.ok()) {
      why = moved.error();
      break;
    }
    if (moved.value()) continue;
    pollfd pf[4];
    int n = 0;
    for (Pump* p : {&f, &b}) {
      if (p->done) continue;
      if (p->in_pipe) pf[n++] = {p->to, POLLOUT, 0};
      else if (!p->eof) pf[n++] = {p->from, POLLIN, 0};
    }
    if (n == 0) continue;
    if (sys::poll(pf, static_cast<nfds_t>(n), timeout_ms) == 0) {
      why = after_stream("nothing moved either way for " + format_seconds(timeout_ms) + " (--timeout)",
                         ETIMEDOUT);
      break;
    }
  }
  *fwd = f.moved;
  *back = b.moved;
  return why;
}

std::string paths_text(const HoldQueue& st) {
  return "splice " + format_bytes(st.spliced()) + ", write " + format_bytes(st.written());
}

// --convert of a legacy stream: convert_legacy in a PipeWorker writing
// into a pipe, which the relay reads like any input (a HoldingSource, held
// in the queue). Detection only peeks, so a v2/v3 stream under --convert
// is relayed from the input unchanged.
class Conversion {
 public:
  // Starts the conversion of `in` when it is a legacy stream and the
  // options ask for it; an error when it cannot be converted.
  Error start(HoldingSource& in, const RelayOptions& opt, RelayResult& res) {
    Source& raw = in.source();
    if (!opt.convert) {
      // Without --convert only a v2/v3 stream goes on: say what else it is.
      if (!opt.refuse_non_streams || opt.verify.format != Format::autodetect) return {};
      std::string why;
      const ImageKind kind = image_kind(raw, &why);
      if (kind == ImageKind::stream) return {};
      return not_a_v2_stream(kind, why, "relay it with --convert");
    }
    if (!legacy_image(raw)) return {};
    const LegacyGuess g = detect_legacy(raw);
    const ConvertOptions co = relay_convert_options(opt, g);
    if (!g.ok && (co.width == 0 || co.guest == GuestType::unknown))
      return Error{raw.error() ? Errc::io : Errc::bad_header,
                   raw.pos(),
                   kNoRecord,
                   Layer::libxc,
                   0,
                   raw.error() ? "read failed: " + raw.error_text() : g.why};
    if (Error e = worker_.start([&res, &raw, co](int w) {
          Sink sink(w);
          res.conv = convert_legacy(raw, sink, co);
          return res.conv.error;
        }))
      return e;
    res.converted = true;
    out_ = std::make_unique<HoldingSource>(worker_.fd(), -1);
    return {};
  }
  // The converted stream, or null when not converting.
  HoldingSource* output() { return out_.get(); }

  // After the verdict: sends the converter's tail after the stream's END
  // (a libxc output's raw qemu record goes on unchecked, as `xsr convert`
  // writes it), stops the converter and returns the error to report: the
  // conversion's own failure unless the relay's stop (EPIPE) caused it.
  Error finish(Error e, HoldQueue& st, Forwarder& fw, std::uint64_t max_hold) {
    while (!e && !st.out_error()) {
      // Unchecked, so not held: any piece size the hold allows will do.
      HoldQueue::Spliced s = st.splice_in(worker_.fd(), std::min<std::uint64_t>(kChunk, max_hold));
      if (s.fragmented) continue;
      if (s.error && s.error.cause != ECANCELED)
        e = Error::io(out_->source().pos(), "read failed", s.error.cause);
      if (s.bytes == 0) break;
      st.mark();
    }
    if (!e) fw.drain();
    out_.reset();                        // before the worker's stop() closes what it reads
    const Error& conv = worker_.stop();  // a converter left behind stops (EPIPE)
    if (conv) {
      const bool our_close = (e || st.out_error()) && conv.caused_by(EPIPE);
      if (!our_close) {
        e = conv;
        e.detail = "legacy stream: " + e.detail;
      }
    }
    return e;
  }

 private:
  PipeWorker worker_;
  std::unique_ptr<HoldingSource> out_;
};

// Verifies what `src` reads, releasing each record through `fw` as it
// passes; then sends everything released. The verdict.
Error verify_held(HoldingSource& src, Forwarder& fw, const HoldQueue& st, const RelayOptions& opt,
                  RelayResult& res) {
  VerifyOptions vo = opt.verify;
  vo.observer = &fw;
  Error e = verify(src.source(), vo, res.stats);
  if (!e && (src.failed() || st.held() > 0)) {
    // A verdict reached over a failed hold (the last record was refused)
    // or with bytes left unchecked is no verdict.
    e = Error::io(src.source().pos(), "read failed: " + src.source().error_text());
  }
  // What passed goes out even when a later record failed: the receiver
  // gets the whole verified prefix.
  fw.drain();
  return e;
}

}  // namespace

ConvertOptions relay_convert_options(const RelayOptions& opt, const LegacyGuess& g) {
  ConvertOptions co = opt.conv;
  co.python_bytes = false;
  if (co.width == 0) co.width = g.width;
  if (co.guest == GuestType::unknown) co.guest = g.guest;
  co.xl = co.xl || g.xl;
  co.libvirt = co.libvirt || g.libvirt;
  co.libxl = opt.conv_format == RelayOptions::OutFormat::detect
                 ? (co.xl || co.libvirt)
                 : opt.conv_format == RelayOptions::OutFormat::libxl;
  if (g.xl && g.xl_libxl) co.xl = false;
  return co;
}

RelayResult relay(int in_fd, int out_fd, const RelayOptions& opt) {
  RelayResult res;
  // Larger pipes on either side: fewer, larger splices and far fewer
  // wake-ups of the processes at each end (a 64 KiB pipe fills in 16 pages).
  for (int fd : {in_fd, out_fd})
    if (fd_caps(fd).has(IoCaps::pipe)) (void)::fcntl(fd, F_SETPIPE_SZ, static_cast<int>(kPipeWant));
  NonBlocking nb(out_fd);
  HoldQueue st(opt.max_hold, out_fd, opt.timeout_ms);
  HoldingSource in(in_fd, opt.timeout_ms);
  if (opt.io != IoMode::read) {
    if (Error why = in.use_uring()) res.note = "io_uring unavailable (" + why.detail + "): plain reads";
  }
  res.reader = std::string(in.source().kind());

  Conversion conv;
  if (Error e = conv.start(in, opt, res)) {
    res.error = e;
    return res;
  }
  HoldingSource& src = conv.output() ? *conv.output() : in;
  src.hold_into(&st);
  Forwarder fw(st, src, opt.stats);
  Error e = verify_held(src, fw, st, opt, res);
  const int src_err = src.source().error();
  if (res.converted) e = conv.finish(std::move(e), st, fw, opt.max_hold);
  res.in_bytes = in.source().pos();
  res.out_bytes = st.sent();
  res.paths = paths_text(st);
  if (st.out_error()) {
    // The output's failure is the cause; what the verifier made of the
    // input after it was cut short does not matter.
    res.out_error = output_error(st.out_error().cause, opt.timeout_ms);
    if (e.code == Errc::io && src_err == ECANCELED) e = Error{};
    res.error = e;
    return res;
  }
  res.error = e;
  if (e || !opt.then_copy) return res;
  NonBlocking nb_in(in_fd);  // out_fd still is
  res.out_error = copy_both(in_fd, out_fd, opt.timeout_ms, &res.copied_forward, &res.copied_back);
  return res;
}

}  // namespace xsr
