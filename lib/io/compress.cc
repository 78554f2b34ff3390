#include "xsr/compress.h"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <boost/iostreams/close.hpp>
#include <boost/iostreams/filter/bzip2.hpp>
#include <boost/iostreams/filter/gzip.hpp>
#include <boost/iostreams/filter/lzma.hpp>
#include <boost/iostreams/filter/zlib.hpp>
#include <boost/iostreams/filter/zstd.hpp>
#include <boost/iostreams/filtering_streambuf.hpp>
#include <cerrno>
#include <cstring>
#include <vector>

#include "xsr/sys.h"

namespace xsr {
namespace io = boost::iostreams;

namespace {

using u64 = std::uint64_t;

// Boost's buffers and the pipe: 1 MiB each. Smaller buffers cost a filter
// round and a pipe wake-up per 4-64 KiB (bench/compress-throughput.sh).
constexpr std::size_t kBuf = 1 << 20;
// The decoder's input buffer: an error is found at most this far (plus
// what the codec itself holds, a zstd block) past the damage, so messages
// give a tight "before compressed byte N".
constexpr std::size_t kRawPiece = 64 << 10;

// SIGPIPE from a helper thread's write is directed at that thread: blocked
// there, a vanished reader is a plain EPIPE and the process lives on.
void block_sigpipe() {
  sigset_t s;
  sigemptyset(&s);
  sigaddset(&s, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &s, nullptr);
}

// Boost's zstd filter (1.74) reports a stream cut short as a clean end, so
// the frames are walked here as their bytes go by (RFC 8878 section 3.1):
// the input must end between frames.
class ZstdFrames {
 public:
  // Feeds the next compressed bytes.
  void feed(const unsigned char* p, std::size_t n) {
    while (n && !lost_) {
      if (skip_) {
        const std::size_t k = static_cast<std::size_t>(std::min<u64>(skip_, n));
        skip_ -= k, p += k, n -= k;
        if (!skip_ && st_ == State::block_body) after_block();
        continue;
      }
      acc_[have_++] = *p++, --n;
      if (have_ == want_) field();
    }
  }
  // True when the input so far ends at a frame boundary (or the walk lost
  // track, then the decoder's verdict stands alone).
  bool complete() const { return lost_ || (st_ == State::magic && have_ == 0); }

 private:
  enum class State { magic, descriptor, header_rest, block_header, block_body, checksum, skippable_size };
  void next(State s) {
    st_ = s;
    have_ = 0;
    want_ = s == State::descriptor ? 1 : s == State::block_header ? 3 : 4;
  }
  u64 le(std::size_t n) const {
    u64 v = 0;
    for (std::size_t i = n; i-- > 0;) v = (v << 8) | acc_[i];
    return v;
  }
  void field() {
    switch (st_) {
      case State::magic: {
        const u64 m = le(4);
        if (m == 0xFD2FB528) next(State::descriptor);
        else if ((m & 0xFFFFFFF0) == 0x184D2A50) next(State::skippable_size);
        else lost_ = true;
        break;
      }
      case State::descriptor: {
        const unsigned d = acc_[0], fcs = d >> 6, single = (d >> 5) & 1, dict = d & 3;
        checksum_ = (d >> 2) & 1;
        static constexpr unsigned kFcs[4] = {0, 2, 4, 8}, kDict[4] = {0, 1, 2, 4};
        const unsigned rest = (single ? 0 : 1) + kDict[dict] + (fcs == 0 && single ? 1 : kFcs[fcs]);
        next(State::header_rest);
        want_ = rest;
        if (!rest) next(State::block_header);
        break;
      }
      case State::header_rest: next(State::block_header); break;
      case State::block_header: {
        const u64 h = le(3);
        last_ = h & 1;
        const unsigned type = (h >> 1) & 3;
        if (type == 3) {
          lost_ = true;
          break;
        }
        skip_ = type == 1 ? 1 : h >> 3;
        next(State::block_body);
        if (!skip_) after_block();
        break;
      }
      case State::block_body: break;
      case State::checksum: next(State::magic); break;
      case State::skippable_size:
        skip_ = le(4);
        next(State::magic);
        break;
    }
  }
  void after_block() { next(!last_ ? State::block_header : checksum_ ? State::checksum : State::magic); }

  State st_ = State::magic;
  unsigned char acc_[8];
  std::size_t have_ = 0, want_ = 4;
  u64 skip_ = 0;
  bool last_ = false, checksum_ = false, lost_ = false;
};

// The library's words for an error code (Boost's what() only says
// "iostream error").
std::string zlib_text(int code) {
  if (code == io::zlib::data_error) return "invalid deflate data";
  if (code == io::zlib::buf_error) return "deflate data ends early";
  if (code == io::zlib::mem_error) return "out of memory";
  if (code == io::zlib::stream_error) return "inconsistent deflate stream";
  return "zlib error " + std::to_string(code);
}

std::string gzip_text(const io::gzip_error& e) {
  switch (e.error()) {
    case io::gzip::zlib_error: return zlib_text(e.zlib_error_code());
    case io::gzip::bad_crc: return "CRC-32 of the data does not match the gzip trailer";
    case io::gzip::bad_length: return "length of the data does not match the gzip trailer";
    case io::gzip::bad_header: return "malformed gzip header";
    case io::gzip::bad_footer: return "malformed or missing gzip trailer";
    case io::gzip::bad_method: return "unsupported gzip compression method";
  }
  return "gzip error " + std::to_string(e.error());
}

std::string bzip2_text(int code) {
  if (code == io::bzip2::data_error) return "invalid bzip2 data (block CRC or structure)";
  if (code == io::bzip2::data_error_magic) return "bad bzip2 stream magic";
  if (code == io::bzip2::unexpected_eof) return "bzip2 data ends early";
  if (code == io::bzip2::mem_error) return "out of memory";
  return "bzip2 error " + std::to_string(code);
}

std::string lzma_text(int code) {
  if (code == io::lzma::data_error) return "invalid xz data";
  if (code == io::lzma::buf_error) return "xz data ends early";
  if (code == io::lzma::mem_error) return "out of memory";
  if (code == io::lzma::options_error) return "unsupported xz options";
  if (code == io::lzma::unsupported_check) return "unsupported xz integrity check";
  // liblzma's LZMA_FORMAT_ERROR (7) has no Boost name.
  if (code == 7) return "not in the xz format";
  return "xz error " + std::to_string(code);
}

// Boost's zstd_error::what() is ZSTD_getErrorName() plus ": iostream error".
std::string zstd_text(const io::zstd_error& e) {
  std::string s = e.what();
  if (auto k = s.find(": iostream error"); k != std::string::npos) s.resize(k);
  return s;
}

// ---- decompression ------------------------------------------------------------

// What the decompressor thread shares with the source the caller reads.
struct Inflater {
  std::unique_ptr<Source> raw;  // the compressed input (read only by the thread)
  Codec codec;
  int wfd;                      // writing end of the pipe (closed by the thread)
  u64 raw_bytes = 0;            // compressed bytes handed to the filter
  bool raw_end = false;
  std::string error;            // set by the thread before it closes wfd
  ZstdFrames frames;

  // A Boost.Iostreams source over `raw`: peek, copy, consume, so the bytes
  // already peeked for sniffing are not lost on a pipe.
  struct Device {
    using char_type = char;
    using category = io::source_tag;
    Inflater* in;
    std::streamsize read(char* p, std::streamsize n) { return in->read(p, n); }
  };

  std::streamsize read(char* p, std::streamsize n) {
    const std::size_t want = std::min<std::size_t>(static_cast<std::size_t>(n), kRawPiece);
    Bytes b = raw->peek(want);
    const std::size_t k = std::min(b.size(), want);
    if (!k) {
      raw_end = true;
      return -1;
    }
    std::memcpy(p, b.data(), k);
    raw->consume(k);
    if (codec == Codec::zstd) frames.feed(reinterpret_cast<const unsigned char*>(p), k);
    raw_bytes += k;
    return static_cast<std::streamsize>(k);
  }

  void push_filter(io::filtering_streambuf<io::input>& f) {
    switch (codec) {
      case Codec::gzip: f.push(io::gzip_decompressor(io::zlib::default_window_bits, kRawPiece), kBuf); break;
      case Codec::zstd: f.push(io::zstd_decompressor(kRawPiece), kBuf); break;
      case Codec::xz: f.push(io::lzma_decompressor(io::lzma_params(), kRawPiece), kBuf); break;
      case Codec::bzip2: f.push(io::bzip2_decompressor(false, kRawPiece), kBuf); break;
      case Codec::none: break;
    }
    f.push(Device{this}, kBuf);
  }

  // The message for a failure the decoder reported while at raw_bytes;
  // `early_end` when its code means the data stopped short (the input must
  // have ended too: the same codes come from a damaged length field).
  std::string bad_data(const std::string& detail, bool early_end = false) const {
    const std::string c(codec_name(codec));
    if (early_end && raw_end)
      return c + " data truncated: the compressed input ends after " + std::to_string(raw_bytes) +
             " bytes (" + detail + ")";
    return c + " data corrupt before compressed byte " + std::to_string(raw_bytes) + ": " + detail;
  }

  void run() {
    block_sigpipe();
    std::vector<char> buf(kBuf);
    try {
      io::filtering_streambuf<io::input> f;
      push_filter(f);
      for (;;) {
        const std::streamsize k = f.sgetn(buf.data(), static_cast<std::streamsize>(buf.size()));
        if (k <= 0) break;
        if (int e = sys::write_all(wfd, buf.data(), static_cast<std::size_t>(k))) {
          // EPIPE: the reader is done with the stream; nothing to report.
          if (e != EPIPE) error = std::string("passing on the decompressed bytes failed: ") + std::strerror(e);
          break;
        }
      }
      if (error.empty() && raw_end) {
        if (raw->error())
          error = "reading the " + std::string(codec_name(codec)) + " input failed after " +
                  std::to_string(raw_bytes) + " compressed bytes: " + raw->error_text();
        else if (codec == Codec::zstd && !frames.complete())
          error = bad_data("the last frame is incomplete", true);
      }
    } catch (const io::gzip_error& e) {
      error = bad_data(gzip_text(e), e.error() == io::gzip::bad_footer ||
                                         (e.error() == io::gzip::zlib_error &&
                                          e.zlib_error_code() == io::zlib::buf_error));
    } catch (const io::zlib_error& e) {
      error = bad_data(zlib_text(e.error()), e.error() == io::zlib::buf_error);
    } catch (const io::zstd_error& e) {
      error = bad_data(zstd_text(e));
    } catch (const io::lzma_error& e) {
      error = bad_data(lzma_text(e.error()), e.error() == io::lzma::buf_error);
    } catch (const io::bzip2_error& e) {
      error = bad_data(bzip2_text(e.error()), e.error() == io::bzip2::unexpected_eof);
    } catch (const std::exception& e) {
      error = bad_data(e.what());
    }
    // The reader sees the end of the pipe only after `error` is final.
    ::close(wfd);
    wfd = -1;
  }
};

// The source the caller reads: the pipe's reading end, owning the thread.
// A short read ends with the thread (the pipe's end comes only after the
// thread's last write), so then its verdict is known and joined.
class DecompressingSource final : public Source {
 public:
  DecompressingSource(std::unique_ptr<Source> pipe, std::unique_ptr<Inflater> st)
      : pipe_(std::move(pipe)), st_(std::move(st)) {
    th_ = std::thread([s = st_.get()] { s->run(); });
  }
  ~DecompressingSource() override {
    pipe_.reset();  // closes the reading end: a thread still writing gets EPIPE
    if (th_.joinable()) th_.join();
  }
  Bytes peek(std::size_t n) override {
    Bytes b = pipe_->peek(n);
    if (b.size() < n) settle();
    return b;
  }
  void consume(std::size_t n) override { pipe_->consume(n); }
  std::uint64_t skip(std::uint64_t n) override { return short_is_settled(n, pipe_->skip(n)); }
  void hint(std::uint64_t n) override { pipe_->hint(n); }
  std::uint64_t pos() const override { return pipe_->pos(); }
  std::string_view kind() const override { return pipe_->kind(); }
  std::uint64_t forward(std::uint64_t n, int out, int& out_error, const char*& how) override {
    return short_is_settled(n, pipe_->forward(n, out, out_error, how));
  }
  // The compressed input's own check (gzip and bzip2 CRCs, the xz check,
  // a zstd checksum) comes after the stream's END: read on to the end of
  // the compressed input, so a damaged image never passes for a good one.
  int finish() override {
    while (pipe_->skip(kMaxPeek) == kMaxPeek) {
    }
    settle();
    return error_;
  }
  std::string error_text() const override {
    return st_->error.empty() || th_.joinable() ? pipe_->error_text() : st_->error;
  }

 private:
  std::uint64_t short_is_settled(std::uint64_t n, std::uint64_t got) {
    if (got < n) settle();
    return got;
  }
  void settle() {
    if (pipe_->error()) {
      error_ = pipe_->error();
      return;
    }
    if (th_.joinable()) th_.join();
    if (!st_->error.empty()) error_ = EBADMSG;
  }

  std::unique_ptr<Source> pipe_;
  std::unique_ptr<Inflater> st_;
  std::thread th_;
};

// ---- compression ---------------------------------------------------------------

// The real output under the compressor: counts, and keeps the errno of a
// failed write (Boost turns it into a bare exception).
struct FdSink {
  using char_type = char;
  using category = io::sink_tag;
  int fd;
  int* err;
  u64* bytes;
  std::streamsize write(const char* p, std::streamsize n) {
    if (int e = sys::write_all(fd, p, static_cast<std::size_t>(n))) {
      *err = e;
      throw std::ios_base::failure("write");
    }
    *bytes += static_cast<u64>(n);
    return n;
  }
};

int default_level(Codec c) {
  switch (c) {
    case Codec::zstd: return 3;
    case Codec::gzip: return 6;
    case Codec::xz: return 6;
    case Codec::bzip2: return 9;
    case Codec::none: break;
  }
  return 0;
}

}  // namespace

std::string_view codec_name(Codec c) {
  switch (c) {
    case Codec::gzip: return "gzip";
    case Codec::zstd: return "zstd";
    case Codec::xz: return "xz";
    case Codec::bzip2: return "bzip2";
    case Codec::none: break;
  }
  return "none";
}

std::optional<Codec> parse_codec(std::string_view s) {
  if (s == "gzip" || s == "gz") return Codec::gzip;
  if (s == "zstd" || s == "zst") return Codec::zstd;
  if (s == "xz") return Codec::xz;
  if (s == "bzip2" || s == "bz2") return Codec::bzip2;
  return std::nullopt;
}

Codec sniff_codec(Source& src) {
  Bytes b = src.peek(6);
  auto at = [&](std::size_t i) { return i < b.size() ? std::to_integer<unsigned>(b[i]) : 0x100u; };
  // gzip's third byte is its method, and deflate (8) is the only one.
  if (at(0) == 0x1f && at(1) == 0x8b && at(2) == 8) return Codec::gzip;
  if (at(0) == 0x28 && at(1) == 0xb5 && at(2) == 0x2f && at(3) == 0xfd) return Codec::zstd;
  if (at(0) == 0xfd && at(1) == '7' && at(2) == 'z' && at(3) == 'X' && at(4) == 'Z' && at(5) == 0)
    return Codec::xz;
  if (at(0) == 'B' && at(1) == 'Z' && at(2) == 'h' && at(3) >= '1' && at(3) <= '9') return Codec::bzip2;
  return Codec::none;
}

OpenResult decompress_source(std::unique_ptr<Source> raw, Codec codec, IoMode mode) {
  OpenResult res;
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) {
    res.error = std::string("pipe: ") + std::strerror(errno);
    return res;
  }
  // Fewer, larger hand-overs between the threads (MEASUREMENTS.md: a 1 MiB
  // pipe more than doubles a read/write relay).
  (void)::fcntl(p[1], F_SETPIPE_SZ, static_cast<int>(kBuf));
  // The pipe side reads whatever way was asked for, except a file's.
  if (mode == IoMode::pread || mode == IoMode::mmap) mode = IoMode::automatic;
  OpenResult pipe = source_from_fd(p[0], true, mode);
  if (!pipe.source) {
    ::close(p[1]);
    return pipe;
  }
  auto st = std::make_unique<Inflater>();
  st->raw = std::move(raw);
  st->codec = codec;
  st->wfd = p[1];
  res.source = std::make_unique<DecompressingSource>(std::move(pipe.source), std::move(st));
  res.note = "compressed input (" + std::string(codec_name(codec)) +
             "): decompressed through Boost.Iostreams in a second thread, not zero-copy";
  if (!pipe.note.empty()) res.note += "; " + pipe.note;
  return res;
}

OpenResult open_input(std::string_view spec, IoMode mode) {
  OpenResult raw = open_source(spec, mode);
  if (!raw.source) return raw;
  const Codec c = sniff_codec(*raw.source);
  if (c == Codec::none) return raw;
  return decompress_source(std::move(raw.source), c, mode);
}

// ---- CompressedOutput ------------------------------------------------------------

CompressedOutput::~CompressedOutput() {
  if (th_.joinable()) finish();
}

bool CompressedOutput::start(int out, Codec codec, int level, std::string* err) {
  if (codec == Codec::none) {
    *err = "no codec";
    return false;
  }
  if (level == 0) level = default_level(codec);
  const int max = codec == Codec::zstd ? 19 : 9;
  if (level < 1 || level > max) {
    *err = "--level for " + std::string(codec_name(codec)) + " must be 1 to " + std::to_string(max);
    return false;
  }
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) {
    *err = std::string("pipe: ") + std::strerror(errno);
    return false;
  }
  (void)::fcntl(p[1], F_SETPIPE_SZ, static_cast<int>(kBuf));
  wfd_ = p[1];
  th_ = std::thread([this, rfd = p[0], out, codec, level] { run(rfd, out, codec, level); });
  return true;
}

void CompressedOutput::run(int rfd, int out, Codec codec, int level) {
  block_sigpipe();
  int werr = 0;
  std::vector<char> buf(kBuf);
  try {
    io::filtering_streambuf<io::output> f;
    switch (codec) {
      case Codec::gzip: f.push(io::gzip_compressor(io::gzip_params(level), kBuf), kBuf); break;
      case Codec::zstd: f.push(io::zstd_compressor(io::zstd_params(static_cast<std::uint32_t>(level)), kBuf), kBuf); break;
      case Codec::xz: f.push(io::lzma_compressor(io::lzma_params(static_cast<std::uint32_t>(level)), kBuf), kBuf); break;
      case Codec::bzip2: f.push(io::bzip2_compressor(io::bzip2_params(level), kBuf), kBuf); break;
      case Codec::none: break;
    }
    f.push(FdSink{out, &werr, &out_bytes_}, kBuf);
    for (;;) {
      const ssize_t r = sys::read(rfd, buf.data(), buf.size());
      if (r < 0) {
        error_ = std::string("reading the bytes to compress failed: ") + std::strerror(errno);
        break;
      }
      if (r == 0) {
        io::close(f);
        break;
      }
      if (f.sputn(buf.data(), r) != r) throw std::ios_base::failure("short write");
    }
  } catch (const std::exception& e) {
    error_ = std::string(codec_name(codec)) + " compression failed: " + e.what();
  }
  // Checked apart: Boost's close() swallows what the sink throws.
  if (werr) error_ = std::string("writing the compressed output failed: ") + std::strerror(werr);
  // On failure the writer is stopped at once (EPIPE) rather than left to
  // fill a pipe nobody reads.
  ::close(rfd);
}

std::string CompressedOutput::finish() {
  if (wfd_ >= 0) {
    ::close(wfd_);
    wfd_ = -1;
  }
  if (th_.joinable()) th_.join();
  return error_;
}

}  // namespace xsr
