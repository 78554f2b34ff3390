// Record walking over a byte source, for every tool that reads a stream
// (verify, inspect, extract, relays): record headers, bodies as views into
// the source's window, PAGE_DATA split into pfn entries and 4 KiB pages.
//
// Nothing is copied that a caller does not ask for, and no allocation or
// mapping grows with a declared length: every length is checked against what
// the record has left, in 64-bit arithmetic, before a view is made; bodies
// over kMaxPeek are walked in pieces; page bodies no check needs are skipped
// (jumped over in a file, spliced away on a pipe), never read.
//
// Lifetimes: a view handed out here (Bytes, Page) points into the source's
// window. It stays valid until the next call on the same RecordReader or
// PageDataReader (or on the source) and dies then: a ring buffer refills, a
// mapped window moves. Views into an in-memory source live as long as its
// bytes, but callers should not count on it. Pages are only 8-byte aligned.
//
// Errors come back as xsr::Error with the stream offset and, inside a record,
// its index, layer and type (error.h); a truncated input is Errc::truncated,
// a failed read Errc::io.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <span>
#include <string>

#include "xsr/error.h"
#include "xsr/format.h"
#include "xsr/records.h"
#include "xsr/source.h"

namespace xsr {

// Walks the records of one stream on a Source. Offsets are stream offsets:
// bytes consumed since the reader was made. The source must outlive the
// reader; a reader is one cursor, so it is neither copied nor moved.
class RecordReader {
 public:
  explicit RecordReader(Source& src) : src_(src), start_(src.pos()) {}
  RecordReader(const RecordReader&) = delete;
  RecordReader& operator=(const RecordReader&) = delete;

  Source& source() const { return src_; }
  // Stream offset of the cursor.
  std::uint64_t pos() const { return src_.pos() - start_; }
  // Records ended so far: the 0-based index of the current (or next) record.
  std::uint64_t index() const { return index_; }
  bool in_record() const { return in_record_; }
  // The current record (valid while in_record()).
  Layer layer() const { return layer_; }
  std::uint32_t type() const { return type_; }
  std::uint64_t record_offset() const { return rec_off_; }

  // ---- records ----------------------------------------------------------

  // Reads the record header at the cursor and makes it the current record:
  // errors built from then on carry its index, layer and type. rec_off gets
  // its stream offset. A truncated header is not yet a record.
  Error read_header(Layer layer, RecordHeader& h, std::uint64_t& rec_off) {
    rec_off = pos();
    if (Error e = read_struct(h, "record header")) return e;
    in_record_ = true;
    layer_ = layer;
    type_ = h.type;
    rec_off_ = rec_off;
    return {};
  }

  // Vouches to the source that the stream holds the whole body of h (with
  // its padding) and, when header_follows, another record header after it.
  // The source may read that far early (io_uring links the next header's
  // read behind the body's splice), so a wrong promise can consume bytes
  // past the stream's end that belong to the descriptor's next reader.
  void expect_body(const RecordHeader& h, bool header_follows) {
    src_.hint(padded(h.length) + (header_follows ? sizeof(RecordHeader) : 0));
  }

  // Ends the current record; returns its size (header, body and padding).
  std::uint64_t end_record() {
    ++index_;
    in_record_ = false;
    return pos() - rec_off_;
  }

  // ---- bodies (the cursor at a body's first byte) ------------------------

  // A body of len bytes with padded(len) <= kMaxPeek, read in one view with
  // its padding: `view` holds the len body bytes, padding_ok whether the
  // padding is all zero. Body and padding are consumed.
  Error body_whole(std::uint64_t len, Bytes& view, bool& padding_ok);

  // A body of any length: its first prefix.size() (<= len) bytes copied into
  // `prefix`, the rest skipped unread, then the padding read as above.
  Error body_prefix(std::uint64_t len, std::span<std::byte> prefix, bool& padding_ok);

  // As body_prefix, but every body byte is read and handed to `each` in
  // chunks of at most kMaxPeek bytes with the chunk's offset in the body
  // (for checks that need the whole body of a record too large for
  // body_whole). A chunk dies when `each` returns.
  using ChunkFn = std::function<void(Bytes chunk, std::uint64_t body_off)>;
  Error body_scan(std::uint64_t len, std::span<std::byte> prefix, const ChunkFn& each, bool& padding_ok);

  // Reads the padding after a body of len bytes (already consumed).
  Error padding(std::uint64_t len, bool& padding_ok) {
    padding_ok = true;
    return len % 8 == 0 ? Error{} : read_padding(len, padding_ok);
  }

  // ---- raw access (headers, fields) ---------------------------------------

  // A view of n (<= kMaxPeek) bytes at the cursor, not consumed; `what`
  // names them in a truncation error ("xl header").
  Error need(std::size_t n, Bytes& out, const char* what) {
    out = src_.peek(n);
    if (out.size() >= n) [[likely]]
      return {};
    return short_read(n, out.size(), what);
  }
  // Copies a wire struct out of the stream and consumes it.
  template <typename T>
  Error read_struct(T& v, const char* what) {
    Bytes b;
    if (Error e = need(sizeof(T), b, what)) return e;
    std::memcpy(&v, b.data(), sizeof(T));
    src_.consume(sizeof(T));
    return {};
  }
  // Discards n bytes unread (n may be anything: nothing is allocated).
  Error skip(std::uint64_t n, const char* what);

  // ---- errors (cold), carrying the current record when in one -------------

  [[gnu::cold]] Error fail(Errc code, std::uint64_t off, std::string detail) const;
  // "stream truncated: <what> needs <need> bytes, input ended after <got>"
  [[gnu::cold]] Error truncated(std::uint64_t off, std::uint64_t need, std::uint64_t got,
                                const char* what) const;
  // "read failed: <strerror of the source's error>"
  [[gnu::cold]] Error io_error(std::uint64_t off) const;

 private:
  // Copies the body's first min(prefix.size(), len) bytes, not consumed.
  Error copy_prefix(std::uint64_t len, std::span<std::byte> prefix);
  Error read_padding(std::uint64_t len, bool& padding_ok);
  // The error of a peek that came up short: io, or truncation at the cursor.
  [[gnu::cold]] Error short_read(std::uint64_t need, std::uint64_t got, const char* what) const;

  Source& src_;
  std::uint64_t start_;
  std::uint64_t index_ = 0;
  std::uint64_t rec_off_ = 0;
  bool in_record_ = false;
  Layer layer_ = Layer::libxc;
  std::uint32_t type_ = 0;
};

namespace detail {
// Bit t set when page type t has the property (format.h's rules).
constexpr std::uint16_t page_type_mask(bool (*has)(unsigned)) {
  std::uint16_t m = 0;
  for (unsigned t = 0; t < 16; ++t)
    if (has(t)) m = static_cast<std::uint16_t>(m | (1u << t));
  return m;
}
}  // namespace detail

// One PAGE_DATA pfn entry, decoded: the only place the entry's layout
// (libxc spec, "PAGE_DATA": pfn in bits 0-51, bits 52-59 reserved, the page
// type in bits 60-63) is spelled out. Inline and branch-free, as the
// verifier decodes hundreds of millions of entries a second: the type's
// properties are bits of a 16-bit mask, tested with a shift (comparisons
// made the compiler branch, and the loop's speed hang on code alignment).
struct PfnEntry {
  static constexpr std::uint16_t kReservedTypes = detail::page_type_mask(libxc::page_type_reserved);
  static constexpr std::uint16_t kDataTypes = detail::page_type_mask(libxc::page_type_has_data);

  std::uint64_t raw;

  // Entry i of a chunk from PageDataReader::next_pfns (raw little-endian u64s).
  static PfnEntry at(Bytes chunk, std::size_t i) { return {load<std::uint64_t>(chunk.data() + 8 * i)}; }
  // The entry a writer puts in the stream for pfn with page type `type`.
  static constexpr PfnEntry make(std::uint64_t pfn, std::uint64_t type) {
    return {(type << libxc::kPfnTypeShift) | pfn};
  }

  constexpr std::uint64_t pfn() const { return raw & libxc::kPfnMask; }
  // The type nibble (libxc::PageType, or 5-8: reserved).
  constexpr unsigned type() const { return static_cast<unsigned>(raw >> libxc::kPfnTypeShift); }
  // The type nibble in place (bits 60-63), as the reference prints it.
  constexpr std::uint64_t type_bits() const { return raw & (std::uint64_t{0xf} << libxc::kPfnTypeShift); }
  // Bits 52-59, which must be zero.
  constexpr std::uint64_t reserved_bits() const { return raw & libxc::kPfnReservedMask; }
  constexpr bool type_reserved() const { return (kReservedTypes >> type()) & 1; }
  // Whether a 4 KiB page body follows the entries for this one.
  constexpr bool has_data() const { return (kDataTypes >> type()) & 1; }
};

// Entries of a next_pfns chunk with a page body.
inline std::uint64_t count_data_pages(Bytes chunk) {
  std::uint64_t n = 0;
  for (std::size_t i = 0; i < chunk.size() / 8; ++i) n += PfnEntry::at(chunk, i).has_data();
  return n;
}

// One PAGE_DATA body ("PAGE_DATA" in the libxc spec): an 8-byte header,
// `count` u64 pfn entries, then the page bodies, 4 KiB each, of the entries
// whose type carries data. Use: begin, next_pfns until empty, then either
// next_pages / for_each_page or skip_pages, then end. Reads through a
// RecordReader whose cursor is at the body's start; both must outlive it.
//
// The reader checks lengths, not meaning: whether the pages match the
// entries' types (8 + 8 * count + 4096 * data pages == length) and whether
// the entries are valid is the caller's check (verify.h does both).
class PageDataReader {
 public:
  using Page = std::span<const std::byte, kPageSize>;
  // Entries a next_pfns chunk holds at most, pages a next_pages run.
  static constexpr std::size_t kPfnChunk = kMaxPeek / 8;
  static constexpr std::size_t kPageRun = kMaxPeek / kPageSize;

  explicit PageDataReader(RecordReader& r) : r_(r) {}
  PageDataReader(const PageDataReader&) = delete;
  PageDataReader& operator=(const PageDataReader&) = delete;

  // Reads the header of a body of len (>= 8) bytes.
  Error begin(std::uint64_t len) {
    len_ = len;
    body_off_ = r_.pos();
    done_ = 0;
    pfns_read_ = 0;
    ph_ = {};
    if (len < sizeof ph_) [[unlikely]]
      return short_header();
    if (Error e = r_.read_struct(ph_, "PAGE_DATA header")) return e;
    done_ = sizeof ph_;
    return {};
  }
  const libxc::PageDataHeader& header() const { return ph_; }
  // After begin: whether the body has room for count entries. When it has
  // not, neither entries nor pages are handed out (a hostile count is never
  // trusted), but end() still steps over the body.
  bool pfns_fit() const { return len_ >= sizeof ph_ && len_ - sizeof ph_ >= 8 * std::uint64_t{ph_.count}; }
  std::uint64_t pfns_read() const { return pfns_read_; }

  // The next chunk of up to kPfnChunk entries as raw little-endian bytes
  // (entry i: PfnEntry::at(chunk, i)); empty once all
  // count entries are read. The chunk dies at the next call.
  Error next_pfns(Bytes& chunk) {
    chunk = {};
    const std::uint64_t left = ph_.count - pfns_read_;
    if (left == 0) return {};
    if (!pfns_fit()) [[unlikely]]
      return count_error();
    const std::size_t n = left < kPfnChunk ? static_cast<std::size_t>(left) : kPfnChunk;
    if (Error e = take(n * 8, chunk)) return e;
    pfns_read_ += n;
    return {};
  }

  // The next run of up to max_pages (1..kPageRun) pages, run.size() a
  // multiple of kPageSize; empty once the body is read. Entries not yet read
  // are skipped first. The body after the entries must be whole pages. The
  // run dies at the next call.
  Error next_pages(Bytes& run, std::size_t max_pages = kPageRun);

  // Calls f(Page) for each remaining page, in stream order; a page dies when
  // f returns.
  template <typename F>
  Error for_each_page(F&& f) {
    for (;;) {
      Bytes run;
      if (Error e = next_pages(run)) return e;
      if (run.empty()) return {};
      for (std::size_t off = 0; off < run.size(); off += kPageSize) f(Page(run.data() + off, kPageSize));
    }
  }

  // Moves the next n pages to descriptor `out`, at its file offset, by the
  // kernel where it can (Source::forward). Entries not yet read are skipped
  // first; n must not exceed the pages left. out_error gets an errno of the
  // output; `how` the path the bytes took.
  Error forward_pages(std::uint64_t n, int out, int& out_error, const char*& how);
  // Skips the next n pages unread (entries not yet read first).
  Error skip_page_count(std::uint64_t n);

  // Skips whatever of the body is left (pages, entries not read) unread.
  Error skip_pages() { return skip_body(len_ - done_); }

  // Skips what is left of the body, then reads its padding.
  Error end(bool& padding_ok) {
    if (Error e = skip_pages()) return e;
    return r_.padding(len_, padding_ok);
  }

 private:
  // Skips the entries not yet read; checks the rest of the body is whole pages.
  Error to_pages();
  // Consumes n (<= kMaxPeek) body bytes into a view.
  Error take(std::size_t n, Bytes& out) {
    Source& src = r_.source();
    Bytes c = src.peek(n);
    if (c.size() < n) [[unlikely]]
      return short_take(c.size());
    src.consume(n);
    done_ += n;
    out = c.first(n);
    return {};
  }
  // Skips n body bytes unread.
  Error skip_body(std::uint64_t n) {
    if (n == 0) return {};
    const std::uint64_t at = done_;
    const std::uint64_t got = r_.source().skip(n);
    done_ += got;
    if (got == n) [[likely]]
      return {};
    return short_skip(at, got);
  }
  // Errors, out of line: a peek or skip that came up short, a body too
  // short for its header, a count it cannot hold.
  [[gnu::cold]] Error short_take(std::uint64_t got) const;
  [[gnu::cold]] Error short_skip(std::uint64_t at, std::uint64_t got) const;
  [[gnu::cold]] Error short_body(std::uint64_t got) const;
  [[gnu::cold]] Error short_header() const;
  [[gnu::cold]] Error count_error() const;

  RecordReader& r_;
  libxc::PageDataHeader ph_{};
  std::uint64_t len_ = 0;
  std::uint64_t body_off_ = 0;  // stream offset of the body
  std::uint64_t done_ = 0;      // body bytes consumed
  std::uint64_t pfns_read_ = 0;
};

}  // namespace xsr
