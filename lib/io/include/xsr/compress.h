// Compressed images: gzip, zstd, xz and bzip2 through Boost.Iostreams, in
// and out, while streaming.
//
// Input: open_input sniffs the magic bytes and, for a compressed input,
// hands back an ordinary pipe source whose writing end a decompressor
// thread feeds. Everything downstream (record reader, splice of page
// bodies, io_uring) runs unchanged, and decompression overlaps with parsing
// on the second core. Not zero-copy: every byte passes through user space
// twice (out of the decompressor, into the pipe), which open_input says in
// OpenResult::note.
//
// Output: CompressedOutput hands out a pipe's writing end for a Sink or for
// generate() to write into, and a thread compresses what arrives into the
// real descriptor.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>

#include "xsr/error.h"
#include "xsr/source.h"

namespace xsr {

enum class Codec { none, gzip, zstd, xz, bzip2 };

// "none", "gzip", "zstd", "xz", "bzip2".
std::string_view codec_name(Codec c);

// "gzip", "zstd", "xz" or "bzip2" (also "gz", "zst", "bz2"); nullopt otherwise.
std::optional<Codec> parse_codec(std::string_view name);

// The codec whose magic bytes start the input at src's cursor (gzip 1f 8b;
// zstd 28 b5 2f fd; xz fd 37 7a 58 5a 00; bzip2 "BZh1".."BZh9"), or none.
// Only peeks: nothing is consumed. The libxc, libxl, xl and libvirt
// headers start otherwise; a legacy image starts with its p2m size, which
// would have to be 3 TiB or more of guest (or, for gzip, be followed by a
// deflate method byte where its zero high bytes are) to look compressed.
Codec sniff_codec(Source& src);

// Like open_source (FILE, "-" for stdin, or a decimal FD number), but a
// compressed input yields its decompressed bytes, and `note` says so (for
// -v). A decompression failure (corrupt or truncated compressed data) is
// reported through the source's error()/error_text(), so readers say
// "zstd data corrupt before compressed byte ..." rather than "stream truncated".
// Reads of a compressed input are not exact: the decompressor reads ahead.
OpenResult open_input(std::string_view spec, IoMode mode = IoMode::automatic);

// What a source from open_input decompresses: its codec and the compressed
// bytes the decompressor has read so far (all of them once the source was
// read, or finish()ed, to its end; it reads ahead of what was consumed).
struct Compression {
  Codec codec = Codec::none;
  std::uint64_t compressed_bytes = 0;
};
// nullopt for a source that is not a decompressing one.
std::optional<Compression> compression_of(const Source& src);

// The decompressing source over `raw` (positioned at the compressed data);
// `mode` chooses how the pipe of decompressed bytes is read.
OpenResult decompress_source(std::unique_ptr<Source> raw, Codec codec, IoMode mode = IoMode::automatic);

// Compresses what is written into fd() through a thread, into `out` (not
// owned). The writer must ignore SIGPIPE (cli::ignore_sigpipe): when the
// compression or the final write fails, the thread closes the pipe so the
// writer stops at once with EPIPE; finish() then says what really failed.
class CompressedOutput {
 public:
  CompressedOutput() = default;
  ~CompressedOutput();  // finishes if finish() was not called
  CompressedOutput(const CompressedOutput&) = delete;
  CompressedOutput& operator=(const CompressedOutput&) = delete;

  // Starts the thread; level 0 is the codec's default (zstd 3, gzip 6,
  // xz 6, bzip2 9). An error (Errc::usage: a bad level) when it cannot.
  Error start(int out, Codec codec, int level);
  // Where the uncompressed bytes go (a pipe, enlarged to 1 MiB).
  int fd() const { return wfd_; }
  // Closes fd(), waits for the thread; what failed, if anything (detail
  // e.g. "writing the compressed output failed: No space left on device").
  Error finish();
  // Compressed bytes written to `out` (after finish).
  std::uint64_t bytes_out() const { return out_bytes_; }

 private:
  void run(int rfd, int out, Codec codec, int level);
  int wfd_ = -1;
  std::thread th_;
  Error error_;
  std::uint64_t out_bytes_ = 0;
};

}  // namespace xsr
