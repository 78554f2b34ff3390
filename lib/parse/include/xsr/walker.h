// The walk over one v2/v3 stream, for every tool that reads one: which
// container is in front (detect_format), the xl or libvirt header, the libxl
// stream and the libxc stream nested in it (or a bare libxc stream), and the
// checkpoint hand-back between the two. The walker says what it meets, in
// stream order, to one consumer (the verifier; tests); judging it is the
// consumer's business. The walker itself checks only what it needs to find
// its way: the xl and libvirt magic, the libvirt header's version, and the
// lengths the reader checks (reader.h).
//
// Events, for a consumer C (derive from WalkConsumer, whose members do
// nothing, and hide the ones wanted):
//   layout(outer, inner)       once the stream's layers are known, before
//                              the header of the inner stream is read
//   header(ev)                 a header's fixed part was read; for xl and
//                              libvirt the optional data follows:
//   config(chunk)...           only when wants_config(), else it is skipped
//   header_end(ev)             the whole header was read
//   record_header(ev)          a record header; the body is not read yet
//   record(ev, body, pad_ok)   a record read whole (body and padding), or
//   page_data(ev, pd)          a libxc PAGE_DATA with room for entries: its
//                              8-byte header was read; returns whether to
//                              read the entries, which then come as
//   pfns(ev, chunk)...         chunks of raw entries (PfnEntry::at), then
//   pages(ev, pd)              the reader at the first page: the consumer
//                              may read or forward pages; the rest is
//                              skipped, then the padding read, then
//   page_data_end(ev, pad_ok)
//   record_end(ev, size)       after each record whose events all returned
//                              ok: its size (header, body and padding)
// Each event returning Error stops the walk with that error. Structure
// follows the records the consumer accepted: a libxc END ends the libxc
// stream (and a bare stream); in a libxl stream, a libxc CHECKPOINT hands
// back to libxl until its CHECKPOINT_END, LIBXC_CONTEXT starts a libxc
// stream, and the libxl END ends the stream. Nothing after the outermost END
// is read.
//
// StreamWalker is a template over its consumer so that events are direct,
// inlinable calls, not indirect ones: the verifier spends ~37 ns on a
// PAGE_DATA record of one entry (bench/verify_bench, BM_RecordWalk/1), and a
// record is five events.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "xsr/error.h"
#include "xsr/format.h"
#include "xsr/reader.h"
#include "xsr/source.h"

namespace xsr {

// What a stream starts with. `legacy` is anything else (a Xen <= 4.5
// image, or not a save image at all).
enum class Container : std::uint8_t { libxc, libxl, xl, libvirt, legacy };

// "libxc", "libxl", "xl", "libvirt", "legacy": for messages and JSON.
std::string_view container_name(Container c);

// Names the container from the first 8 bytes at the source's cursor,
// consuming nothing. Fewer than 8 bytes: legacy.
Container detect_format(Source& src);

enum class HeaderKind : std::uint8_t { xl, libvirt, libxc_image, libxc_domain, libxl };

// "xl header", "libvirt header", "libxc image header", "libxc domain
// header", "libxl header".
std::string_view header_name(HeaderKind k);

struct HeaderEvent {
  HeaderKind kind;
  std::uint64_t offset;  // stream offset of its first byte
  // The whole header, optional data (xl config, libvirt XML) included.
  std::uint64_t length;
  // The wire struct as read (xl::Header, libvirt::Header, libxc::ImageHeader,
  // libxc::DomainHeader, libxl::Header); dies when the event returns.
  Bytes fixed;

  // A copy of the wire struct; T is the struct of `kind`.
  template <typename T>
  T as() const {
    return load<T>(fixed.data());
  }
};

struct RecordEvent {
  Layer layer;
  std::uint32_t type;
  std::uint32_t length;  // body length, padding not included
  std::uint64_t offset;  // stream offset of the record header
  bool nested;           // a libxc record inside a libxl stream
  // A libxl record after a libxc CHECKPOINT handed back, up to and
  // including the CHECKPOINT_END that hands on to libxc.
  bool in_checkpoint;
};

// Bodies whose padded length is at most this are handed over whole, as a
// view into the source's window; larger ones are walked.
constexpr std::uint64_t kWholeBody = kMaxPeek;
// How much of a larger body is kept for its consumer (the per-type checks
// look at fixed fields at the start).
constexpr std::size_t kBodyPrefix = 64;

// A record body as a consumer sees it: whole when small, else its first
// kBodyPrefix bytes (the rest was skipped, or passed to body_chunk).
struct Body {
  const std::byte* data = nullptr;
  std::uint64_t len = 0;  // body length from the header
  std::size_t have = 0;   // bytes of the body at `data`
  bool whole() const { return have == len; }
  Bytes bytes() const { return Bytes(data, have); }
  // A field at `off`; the caller checks off + sizeof(T) <= have.
  template <typename T>
  T at(std::size_t off) const {
    return load<T>(data + off);
  }
};

// A consumer's base: an event the consumer does not declare itself does
// nothing and lets the walk go on (config skipped, large bodies not
// scanned, PAGE_DATA entries read when the body has room for them). The
// walker calls the consumer's own members directly, none is virtual.
class WalkConsumer {
 public:
  void layout(Container /*outer*/, Container /*inner*/) {}
  Error header(const HeaderEvent&) { return {}; }
  bool wants_config() const { return false; }
  void config(Bytes) {}
  Error header_end(const HeaderEvent&) { return {}; }
  Error record_header(const RecordEvent&) { return {}; }
  // Whether every byte of this body goes to body_chunk (in pieces of at
  // most kMaxPeek bytes, with their offset in the body), before record().
  bool scan_body(const RecordEvent&) { return false; }
  void body_chunk(Bytes, std::uint64_t /*body_off*/) {}
  Error record(const RecordEvent&, const Body&, bool /*padding_ok*/) { return {}; }
  bool page_data(const RecordEvent&, const PageDataReader& pd) { return pd.pfns_fit(); }
  void pfns(const RecordEvent&, Bytes) {}
  Error pages(const RecordEvent&, PageDataReader&) { return {}; }
  Error page_data_end(const RecordEvent&, bool /*padding_ok*/) { return {}; }
  void record_end(const RecordEvent&, std::uint64_t /*size*/) {}
};

namespace detail {

// The walker's parts that do not depend on the consumer (walker.cc).
class WalkerBase {
 public:
  explicit WalkerBase(Source& src) : rd_(src) {}

  // The reader, for consumers' errors (RecordReader::fail carries the
  // current record) and offsets.
  const RecordReader& reader() const { return rd_; }
  std::uint64_t pos() const { return rd_.pos(); }

 protected:
  // Reads an xl header, checking its magic.
  Error read_xl(xl::Header& h);
  // Reads a libvirt header, checking its magic and that a v2 stream follows.
  Error read_libvirt(libvirt::Header& h);
  [[gnu::cold]] Error not_a_stream() const;
  // A wire struct's bytes, for a HeaderEvent.
  template <typename T>
  static Bytes raw(const T& v) {
    return Bytes(reinterpret_cast<const std::byte*>(&v), sizeof v);
  }
  // Reads a body too large for one view: its prefix kept, the rest skipped
  // or, when `scan`, handed to it in chunks.
  Error large_body(std::uint64_t len, Body& b, bool& padding_ok, const RecordReader::ChunkFn* scan);

  RecordReader rd_;
  std::byte prefix_[kBodyPrefix];
};

}  // namespace detail

// Walks one stream from the source's cursor (offsets are stream offsets:
// bytes consumed since the walker was made), telling `c` what it meets. The
// source and the consumer must outlive the walker.
template <typename Consumer>
class StreamWalker : public detail::WalkerBase {
 public:
  StreamWalker(Source& src, Consumer& c) : WalkerBase(src), c_(c) {}
  StreamWalker(const StreamWalker&) = delete;
  StreamWalker& operator=(const StreamWalker&) = delete;

  // Walks the stream whose container detect_format names.
  Error walk() { return walk(detect_format(rd_.source())); }
  // Walks a stream known to start with `c` (legacy: an error).
  Error walk(Container c);

 private:
  enum class LibxcEnd { end, checkpoint };

  Error xl_header(Container& inner);
  Error libvirt_header();
  Error config(std::uint64_t len, const char* what);
  Error inner_stream(Container outer, Container inner);
  Error header(HeaderKind kind, std::uint64_t off, Bytes fixed, std::uint64_t length);
  Error libxc_stream(bool nested, LibxcEnd& how);
  Error libxc_records(bool nested, LibxcEnd& how);
  Error libxl_stream();
  // The per-record path, inlined into the record loops (as one function
  // the compiler keeps the stream's state in registers across a record).
  [[gnu::always_inline]] inline Error next_record(Layer layer, bool nested, bool in_checkpoint,
                                                  RecordEvent& ev);
  [[gnu::always_inline]] inline Error record_body(const RecordEvent& ev);
  [[gnu::always_inline]] inline Error page_data(const RecordEvent& ev);

  Consumer& c_;
};

template <typename C>
Error StreamWalker<C>::walk(Container c) {
  switch (c) {
    case Container::libxc:
    case Container::libxl: return inner_stream(c, c);
    case Container::xl: {
      Container inner = Container::libxc;
      if (Error e = xl_header(inner)) return e;
      return inner_stream(Container::xl, inner);
    }
    case Container::libvirt:
      if (Error e = libvirt_header()) return e;
      return inner_stream(Container::libvirt, Container::libxl);
    case Container::legacy: break;
  }
  return not_a_stream();
}

template <typename C>
Error StreamWalker<C>::inner_stream(Container outer, Container inner) {
  c_.layout(outer, inner);
  if (inner == Container::libxl) return libxl_stream();
  LibxcEnd how;
  return libxc_stream(false, how);
}

template <typename C>
Error StreamWalker<C>::header(HeaderKind kind, std::uint64_t off, Bytes fixed, std::uint64_t length) {
  const HeaderEvent ev{kind, off, length, fixed};
  if (Error e = c_.header(ev)) return e;
  return c_.header_end(ev);
}

template <typename C>
Error StreamWalker<C>::xl_header(Container& inner) {
  const std::uint64_t off = pos();
  xl::Header h;
  if (Error e = read_xl(h)) return e;
  const HeaderEvent ev{HeaderKind::xl, off, sizeof h + std::uint64_t{h.optional_data_len}, raw(h)};
  if (Error e = c_.header(ev)) return e;
  if (Error e = config(h.optional_data_len, "xl header optional data")) return e;
  if (Error e = c_.header_end(ev)) return e;
  inner = (h.mandatory_flags & xl::kFlagStreamV2) ? Container::libxl : Container::libxc;
  return {};
}

template <typename C>
Error StreamWalker<C>::libvirt_header() {
  const std::uint64_t off = pos();
  libvirt::Header h;
  if (Error e = read_libvirt(h)) return e;
  const HeaderEvent ev{HeaderKind::libvirt, off, sizeof h + std::uint64_t{h.xml_len}, raw(h)};
  if (Error e = c_.header(ev)) return e;
  if (Error e = config(h.xml_len, "libvirt domain XML")) return e;
  return c_.header_end(ev);
}

// A header's optional data: skipped, or read in views for the consumer.
// (The two fail differently on a short input: a skip knows how far it got.)
template <typename C>
Error StreamWalker<C>::config(std::uint64_t len, const char* what) {
  if (!c_.wants_config()) return rd_.skip(len, what);
  while (len > 0) {
    const std::size_t n = len < kMaxPeek ? static_cast<std::size_t>(len) : kMaxPeek;
    Bytes b;
    if (Error e = rd_.need(n, b, what)) return e;
    c_.config(b.first(n));
    rd_.source().consume(n);
    len -= n;
  }
  return {};
}

template <typename C>
Error StreamWalker<C>::libxc_stream(bool nested, LibxcEnd& how) {
  const std::uint64_t ihdr_off = pos();
  libxc::ImageHeader ih;
  if (Error e = rd_.read_struct(ih, "libxc image header")) return e;
  if (Error e = header(HeaderKind::libxc_image, ihdr_off, raw(ih), sizeof ih)) return e;
  const std::uint64_t dhdr_off = pos();
  libxc::DomainHeader dh;
  if (Error e = rd_.read_struct(dh, "libxc domain header")) return e;
  if (Error e = header(HeaderKind::libxc_domain, dhdr_off, raw(dh), sizeof dh)) return e;
  return libxc_records(nested, how);
}

template <typename C>
Error StreamWalker<C>::libxc_records(bool nested, LibxcEnd& how) {
  for (;;) {
    RecordEvent ev;
    if (Error e = next_record(Layer::libxc, nested, false, ev)) return e;
    if (Error e = record_body(ev)) return e;
    c_.record_end(ev, rd_.end_record());
    if (ev.type == libxc::END) {
      how = LibxcEnd::end;
      return {};
    }
    if (ev.type == libxc::CHECKPOINT && nested) {
      // Hand back to libxl: its records run up to CHECKPOINT_END.
      how = LibxcEnd::checkpoint;
      return {};
    }
  }
}

template <typename C>
Error StreamWalker<C>::libxl_stream() {
  const std::uint64_t off = pos();
  libxl::Header h;
  if (Error e = rd_.read_struct(h, "libxl header")) return e;
  if (Error e = header(HeaderKind::libxl, off, raw(h), sizeof h)) return e;
  bool in_checkpoint = false;
  for (;;) {
    RecordEvent ev;
    if (Error e = next_record(Layer::libxl, false, in_checkpoint, ev)) return e;
    if (Error e = record_body(ev)) return e;
    c_.record_end(ev, rd_.end_record());
    LibxcEnd how = LibxcEnd::end;
    switch (ev.type) {
      case libxl::END: return {};
      case libxl::LIBXC_CONTEXT:
        if (Error e = libxc_stream(true, how)) return e;
        in_checkpoint = how == LibxcEnd::checkpoint;
        break;
      case libxl::CHECKPOINT_END:
        if (!in_checkpoint) break;
        // libxc carries on with the next checkpoint's records.
        if (Error e = libxc_records(true, how)) return e;
        in_checkpoint = how == LibxcEnd::checkpoint;
        break;
      default: break;
    }
  }
}

template <typename C>
Error StreamWalker<C>::next_record(Layer layer, bool nested, bool in_checkpoint, RecordEvent& ev) {
  RecordHeader h;
  std::uint64_t off;
  if (Error e = rd_.read_header(layer, h, off)) return e;
  ev = RecordEvent{layer, h.type, h.length, off, nested, in_checkpoint};
  if (Error e = c_.record_header(ev)) return e;
  // Another record header follows every record but an END (after a nested
  // libxc END one does too, but the promise is not needed there).
  const bool end = layer == Layer::libxc ? h.type == libxc::END : h.type == libxl::END;
  rd_.expect_body(h, !end);
  return {};
}

template <typename C>
Error StreamWalker<C>::record_body(const RecordEvent& ev) {
  // A PAGE_DATA body no longer than its 8-byte header holds neither entries
  // nor pages: it is handed over whole, for the consumer to judge.
  const bool walked =
      ev.layer == Layer::libxc && ev.type == libxc::PAGE_DATA && ev.length > sizeof(libxc::PageDataHeader);
  if (walked) [[likely]]
    return page_data(ev);
  Body b;
  b.len = ev.length;
  bool padding_ok = true;
  const bool scan = c_.scan_body(ev);
  if (padded(ev.length) <= kWholeBody) {
    Bytes v;
    if (Error e = rd_.body_whole(ev.length, v, padding_ok)) return e;
    b.data = v.data();
    b.have = v.size();
    if (scan) c_.body_chunk(v, 0);
  } else {
    const RecordReader::ChunkFn each = [this](Bytes chunk, std::uint64_t off) { c_.body_chunk(chunk, off); };
    if (Error e = large_body(ev.length, b, padding_ok, scan ? &each : nullptr)) return e;
  }
  return c_.record(ev, b, padding_ok);
}

template <typename C>
Error StreamWalker<C>::page_data(const RecordEvent& ev) {
  PageDataReader pd(rd_);
  if (Error e = pd.begin(ev.length)) return e;
  if (c_.page_data(ev, pd)) {
    for (;;) {
      Bytes chunk;
      if (Error e = pd.next_pfns(chunk)) return e;
      if (chunk.empty()) break;
      c_.pfns(ev, chunk);
    }
  }
  if (Error e = c_.pages(ev, pd)) return e;
  bool padding_ok = true;
  if (Error e = pd.end(padding_ok)) return e;
  return c_.page_data_end(ev, padding_ok);
}

}  // namespace xsr
