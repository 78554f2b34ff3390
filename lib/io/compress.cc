// Compressed output (compress.h): a thread compresses what arrives on a
// pipe into the real descriptor; and the codec names both directions use.
// GCC 12 inlines Boost's gzip_compressor::write_long (its header into a
// std::string) deep enough here to report a -Wrestrict overlap that cannot
// happen (offsets of -2^62); a known false positive of that release.
#pragma GCC diagnostic ignored "-Wrestrict"

#include "xsr/compress.h"

#include <fcntl.h>
#include <unistd.h>

#include <boost/iostreams/close.hpp>
#include <boost/iostreams/filter/bzip2.hpp>
#include <boost/iostreams/filter/gzip.hpp>
#include <boost/iostreams/filter/lzma.hpp>
#include <boost/iostreams/filter/zstd.hpp>
#include <boost/iostreams/filtering_streambuf.hpp>
#include <cerrno>
#include <cstring>
#include <vector>

#include "io_engine.h"
#include "xsr/sys.h"

namespace xsr {
namespace io = boost::iostreams;

namespace {

using u64 = std::uint64_t;

// Boost's buffers and the pipe: 1 MiB each, as for decompression.
constexpr std::size_t kBuf = 1 << 20;

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

CompressedOutput::~CompressedOutput() {
  if (th_.joinable()) finish();
}

Error CompressedOutput::start(int out, Codec codec, int level) {
  if (codec == Codec::none) return Error::at(Errc::usage, 0, "no codec");
  if (level == 0) level = default_level(codec);
  const int max = codec == Codec::zstd ? 19 : 9;
  if (level < 1 || level > max)
    return Error::at(
        Errc::usage, 0,
        "--level for " + std::string(codec_name(codec)) + " must be 1 to " + std::to_string(max));
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) return Error::io(0, "pipe", errno);
  (void)::fcntl(p[1], F_SETPIPE_SZ, static_cast<int>(kBuf));
  wfd_ = p[1];
  th_ = std::thread([this, rfd = p[0], out, codec, level] { run(rfd, out, codec, level); });
  return {};
}

void CompressedOutput::run(int rfd, int out, Codec codec, int level) {
  detail::block_sigpipe();
  int werr = 0;
  std::vector<char> buf(kBuf);
  try {
    io::filtering_streambuf<io::output> f;
    switch (codec) {
      case Codec::gzip: f.push(io::gzip_compressor(io::gzip_params(level), kBuf), kBuf); break;
      case Codec::zstd:
        f.push(io::zstd_compressor(io::zstd_params(static_cast<std::uint32_t>(level)), kBuf), kBuf);
        break;
      case Codec::xz:
        f.push(io::lzma_compressor(io::lzma_params(static_cast<std::uint32_t>(level)), kBuf), kBuf);
        break;
      case Codec::bzip2: f.push(io::bzip2_compressor(io::bzip2_params(level), kBuf), kBuf); break;
      case Codec::none: break;
    }
    f.push(FdSink{out, &werr, &out_bytes_}, kBuf);
    for (;;) {
      const ssize_t r = sys::read(rfd, buf.data(), buf.size());
      if (r < 0) {
        error_ = Error::io(0, "reading the bytes to compress failed", errno);
        break;
      }
      if (r == 0) {
        io::close(f);
        break;
      }
      if (f.sputn(buf.data(), r) != r) throw std::ios_base::failure("short write");
    }
  } catch (const std::exception& e) {
    error_ = Error::at(Errc::output, 0, std::string(codec_name(codec)) + " compression failed: " + e.what());
  }
  // Checked apart: Boost's close() swallows what the sink throws.
  if (werr) error_ = Error::io(0, "writing the compressed output failed", werr);
  // On failure the writer is stopped at once (EPIPE) rather than left to
  // fill a pipe nobody reads.
  ::close(rfd);
}

Error CompressedOutput::finish() {
  if (wfd_ >= 0) {
    ::close(wfd_);
    wfd_ = -1;
  }
  if (th_.joinable()) th_.join();
  return error_;
}

}  // namespace xsr
