// The decompressing source (compress.h): a thread inflates the raw input
// through a Boost.Iostreams filter into a pipe; the caller reads the pipe
// through the ordinary pipe engines.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <boost/iostreams/filter/bzip2.hpp>
#include <boost/iostreams/filter/gzip.hpp>
#include <boost/iostreams/filter/lzma.hpp>
#include <boost/iostreams/filter/zlib.hpp>
#include <boost/iostreams/filter/zstd.hpp>
#include <boost/iostreams/filtering_streambuf.hpp>
#include <cerrno>
#include <cstring>
#include <thread>
#include <vector>

#include "io_engine.h"
#include "xsr/compress.h"
#include "xsr/pipe_worker.h"
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

// The decompressor: runs in a PipeWorker, reading the compressed input and
// writing the decompressed bytes into the worker's pipe.
struct Inflater {
  std::unique_ptr<Source> raw;  // the compressed input (read only by the worker)
  Codec codec;
  std::atomic<u64> raw_bytes{0};  // compressed bytes handed to the filter (read by compression_of)
  bool raw_end = false;
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

  // What went wrong, said at the compressed input's offset.
  Error fail(std::string what) const { return Error::at(Errc::io, raw_bytes, std::move(what)); }

  // The failure the decoder reported while at raw_bytes; `early_end` when
  // its code means the data stopped short (the input must have ended too:
  // the same codes come from a damaged length field).
  Error bad_data(const std::string& detail, bool early_end = false) const {
    const std::string c(codec_name(codec));
    if (early_end && raw_end)
      return fail(c + " data truncated: the compressed input ends after " + std::to_string(raw_bytes) +
                  " bytes (" + detail + ")");
    return fail(c + " data corrupt before compressed byte " + std::to_string(raw_bytes) + ": " + detail);
  }

  // Decompresses everything into wfd. A reader that left (EPIPE) is no
  // error: it is done with the stream.
  Error run(int wfd) {
    std::vector<char> buf(kBuf);
    try {
      io::filtering_streambuf<io::input> f;
      push_filter(f);
      for (;;) {
        const std::streamsize k = f.sgetn(buf.data(), static_cast<std::streamsize>(buf.size()));
        if (k <= 0) break;
        if (int e = sys::write_all(wfd, buf.data(), static_cast<std::size_t>(k))) {
          if (e == EPIPE) return {};
          return fail(std::string("passing on the decompressed bytes failed: ") + std::strerror(e));
        }
      }
      if (raw_end && raw->error())
        return fail("reading the " + std::string(codec_name(codec)) + " input failed after " +
                    std::to_string(raw_bytes) + " compressed bytes: " + raw->error_text());
      if (raw_end && codec == Codec::zstd && !frames.complete())
        return bad_data("the last frame is incomplete", true);
    } catch (const io::gzip_error& e) {
      return bad_data(gzip_text(e),
                      e.error() == io::gzip::bad_footer ||
                          (e.error() == io::gzip::zlib_error && e.zlib_error_code() == io::zlib::buf_error));
    } catch (const io::zlib_error& e) {
      return bad_data(zlib_text(e.error()), e.error() == io::zlib::buf_error);
    } catch (const io::zstd_error& e) {
      return bad_data(zstd_text(e));
    } catch (const io::lzma_error& e) {
      return bad_data(lzma_text(e.error()), e.error() == io::lzma::buf_error);
    } catch (const io::bzip2_error& e) {
      return bad_data(bzip2_text(e.error()), e.error() == io::bzip2::unexpected_eof);
    } catch (const std::exception& e) {
      return bad_data(e.what());
    }
    return {};
  }
};

// The source the caller reads: the worker's pipe, through the pipe engine.
// A short read comes only after the worker's last write (the pipe ends
// when it returns), so then its verdict is final and joined.
class DecompressingSource final : public Source {
 public:
  explicit DecompressingSource(std::unique_ptr<Inflater> st) : st_(std::move(st)) {}
  ~DecompressingSource() override {
    pipe_.reset();  // before the worker's stop() closes the descriptor it reads
    worker_.stop();
  }
  // Starts the worker; the pipe is read as `mode` says.
  OpenResult start(IoMode mode) {
    OpenResult res;
    if (Error e = worker_.start([s = st_.get()](int wfd) { return s->run(wfd); })) {
      res.error = e;
      return res;
    }
    res = source_from_fd(worker_.fd(), false, mode);
    pipe_ = std::move(res.source);
    return res;
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
    return worker_.running() || !worker_.error() ? pipe_->error_text() : worker_.error().detail;
  }
  Compression compression() const { return {st_->codec, st_->raw_bytes.load(std::memory_order_relaxed)}; }

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
    if (worker_.join()) error_ = EBADMSG;
  }

  std::unique_ptr<Inflater> st_;
  PipeWorker worker_;
  std::unique_ptr<Source> pipe_;
};

}  // namespace

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

std::optional<Compression> compression_of(const Source& src) {
  if (const auto* d = dynamic_cast<const DecompressingSource*>(&src)) return d->compression();
  return std::nullopt;
}

OpenResult decompress_source(std::unique_ptr<Source> raw, Codec codec, IoMode mode) {
  auto st = std::make_unique<Inflater>();
  st->raw = std::move(raw);
  st->codec = codec;
  auto src = std::make_unique<DecompressingSource>(std::move(st));
  // The pipe side reads whatever way was asked for, except a file's.
  if (mode == IoMode::pread || mode == IoMode::mmap) mode = IoMode::automatic;
  OpenResult res = src->start(mode);
  if (res.error) return res;
  res.source = std::move(src);
  std::string note = res.note;
  res.note = "compressed input (" + std::string(codec_name(codec)) +
             "): decompressed through Boost.Iostreams in a second thread, not zero-copy";
  if (!note.empty()) res.note += "; " + note;
  return res;
}

OpenResult open_input(std::string_view spec, IoMode mode) {
  struct stat st;
  if (spec != "-" && parse_fd(spec) < 0 && ::stat(std::string(spec).c_str(), &st) == 0 &&
      S_ISDIR(st.st_mode)) {
    OpenResult res;
    res.error = Error::at(Errc::io, 0, std::string(spec) + ": a directory, not a Xen save image");
    return res;
  }
  OpenResult raw = open_source(spec, mode);
  if (!raw.source) return raw;
  const Codec c = sniff_codec(*raw.source);
  if (c == Codec::none) return raw;
  return decompress_source(std::move(raw.source), c, mode);
}

}  // namespace xsr
