#include "xsr/reader.h"

#include <algorithm>
#include <cstring>

namespace xsr {
namespace {

using u64 = std::uint64_t;

bool all_zero(Bytes b) {
  for (std::byte x : b)
    if (x != std::byte{0}) return false;
  return true;
}

}  // namespace

// ---- RecordReader -----------------------------------------------------------

Error RecordReader::fail(Errc code, u64 off, std::string detail) const {
  Error e;
  e.code = code;
  e.offset = off;
  e.detail = std::move(detail);
  if (in_record_) {
    e.record = index_;
    e.layer = layer_;
    e.type = type_;
  }
  return e;
}

Error RecordReader::truncated(u64 off, u64 need, u64 got, const char* what) const {
  return fail(Errc::truncated, off,
              "stream truncated: " + std::string(what) + " needs " + std::to_string(need) +
                  " bytes, input ended after " + std::to_string(got));
}

Error RecordReader::io_error(u64 off) const {
  return fail(Errc::io, off, "read failed: " + src_.error_text());
}

Error RecordReader::short_read(u64 need, u64 got, const char* what) const {
  if (src_.error()) return io_error(pos());
  return truncated(pos(), need, got, what);
}

Error RecordReader::skip(u64 n, const char* what) {
  const u64 at = pos();
  const u64 got = src_.skip(n);
  if (got == n) return {};
  if (src_.error()) return io_error(at + got);
  return truncated(at, n, got, what);
}

Error RecordReader::read_padding(u64 len, bool& padding_ok) {
  const std::size_t pad = static_cast<std::size_t>(padded(len) - len);
  Bytes p;
  if (Error e = need(pad, p, "record padding")) return e;
  padding_ok = all_zero(p.first(pad));
  src_.consume(pad);
  return {};
}

Error RecordReader::body_whole(u64 len, Bytes& view, bool& padding_ok) {
  const u64 padded_len = padded(len);
  if (len > kMaxPeek || padded_len > kMaxPeek)
    return fail(Errc::too_large, pos(),
                "body length " + std::to_string(len) + " is over the " + std::to_string(kMaxPeek) +
                    " bytes a body view may hold");
  const std::size_t n = static_cast<std::size_t>(len), whole = static_cast<std::size_t>(padded_len);
  Bytes b;
  if (Error e = need(whole, b, "record body")) return e;
  view = b.first(n);
  padding_ok = all_zero(b.subspan(n, whole - n));
  src_.consume(whole);
  return {};
}

Error RecordReader::copy_prefix(u64 len, std::span<std::byte> prefix) {
  const std::size_t k = static_cast<std::size_t>(std::min<u64>(prefix.size(), len));
  if (!k) return {};
  Bytes b;
  if (Error e = need(k, b, "record body")) return e;
  std::memcpy(prefix.data(), b.data(), k);
  return {};
}

Error RecordReader::body_prefix(u64 len, std::span<std::byte> prefix, bool& padding_ok) {
  const u64 body_off = pos();
  if (Error e = copy_prefix(len, prefix)) return e;
  // The prefix was only looked at: the skip starts at the body's first byte.
  const u64 got = src_.skip(len);
  if (got != len) {
    if (src_.error()) return io_error(body_off + got);
    return truncated(body_off, padded(len), got, "record body");
  }
  return padding(len, padding_ok);
}

Error RecordReader::body_scan(u64 len, std::span<std::byte> prefix, const ChunkFn& each, bool& padding_ok) {
  const u64 body_off = pos();
  if (Error e = copy_prefix(len, prefix)) return e;
  for (u64 off = 0; off < len;) {
    const std::size_t n = static_cast<std::size_t>(std::min<u64>(len - off, kMaxPeek));
    Bytes c = src_.peek(n);
    if (c.size() < n) {
      // Reported at the body's offset, as the verifier has always reported
      // it; a failed read keeps its code (io) under the same wording.
      Error e = truncated(body_off, padded(len), off + c.size(), "record body");
      if (src_.error()) e.code = Errc::io;
      return e;
    }
    each(c.first(n), off);
    src_.consume(n);
    off += n;
  }
  return padding(len, padding_ok);
}

// ---- PageDataReader -----------------------------------------------------------

Error PageDataReader::short_body(u64 got) const {
  return r_.truncated(body_off_, padded(len_), got, "PAGE_DATA body");
}

Error PageDataReader::count_error() const {
  return r_.fail(Errc::bad_record, r_.record_offset(),
                 "PAGE_DATA count " + std::to_string(ph_.count) + " needs " +
                     std::to_string(8 * u64{ph_.count}) + " bytes of pfn entries, body has " +
                     std::to_string(len_ - sizeof ph_));
}

Error PageDataReader::short_header() const {
  return r_.fail(Errc::bad_record, r_.record_offset(),
                 "PAGE_DATA body length " + std::to_string(len_) + ", shorter than its 8-byte header");
}

Error PageDataReader::short_take(u64 got) const {
  if (r_.source().error()) return r_.io_error(r_.pos());
  return short_body(done_ + got);
}

Error PageDataReader::short_skip(u64 at, u64 got) const {
  if (r_.source().error()) return r_.io_error(body_off_ + at + got);
  return short_body(at + got);
}

Error PageDataReader::to_pages() {
  if (pfns_read_ < ph_.count) {
    if (!pfns_fit()) return count_error();
    if (Error e = skip_body(8 * (ph_.count - pfns_read_))) return e;
    pfns_read_ = ph_.count;
  }
  if ((len_ - done_) % kPageSize != 0)
    return r_.fail(Errc::bad_record, r_.record_offset(),
                   "PAGE_DATA body has " + std::to_string(len_ - sizeof ph_ - 8 * u64{ph_.count}) +
                       " bytes after its " + std::to_string(ph_.count) +
                       " pfn entries, not whole 4096-byte pages");
  return {};
}

Error PageDataReader::forward_pages(u64 n, int out, int& out_error, const char*& how) {
  if (Error e = to_pages()) return e;
  if (n > (len_ - done_) / kPageSize)
    return r_.fail(Errc::bad_record, r_.record_offset(), "PAGE_DATA has fewer pages than asked for");
  const u64 bytes = n * kPageSize;
  const u64 at = done_;
  out_error = 0;
  const u64 got = r_.source().forward(bytes, out, out_error, how);
  done_ += got;
  if (got == bytes) return {};
  if (out_error)
    return r_.fail(Errc::io, body_off_ + at + got,
                   std::string("write to the output failed: ") + std::strerror(out_error));
  return short_skip(at, got);
}

Error PageDataReader::skip_page_count(u64 n) {
  if (Error e = to_pages()) return e;
  if (n > (len_ - done_) / kPageSize)
    return r_.fail(Errc::bad_record, r_.record_offset(), "PAGE_DATA has fewer pages than asked for");
  return skip_body(n * kPageSize);
}

Error PageDataReader::next_pages(Bytes& run, std::size_t max_pages) {
  run = {};
  if (Error e = to_pages()) return e;
  const u64 rest = len_ - done_;
  if (rest == 0) return {};
  const u64 n = std::min<u64>(rest / kPageSize, std::clamp<std::size_t>(max_pages, 1, kPageRun));
  return take(static_cast<std::size_t>(n * kPageSize), run);
}

}  // namespace xsr
