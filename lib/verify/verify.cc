#include "xsr/verify.h"

#include <algorithm>
#include <cstdarg>
#include <cstdio>
#include <cstring>

#include "xsr/reader.h"
#include "xsr/walker.h"

namespace xsr {
namespace {


using u64 = std::uint64_t;
using u32 = std::uint32_t;

// Bodies up to this size are looked at whole; larger ones are walked.
constexpr u64 kWholeBody = kMaxPeek;
// How much of a large body the per-type checks need to see.
constexpr std::size_t kPrefix = 64;
// Xen's restore refuses vcpu ids beyond its limit (legacy MAX_VCPU_ID 4095).
constexpr u32 kMaxVcpuId = 4095;

const char* emulator_name(u32 id) {
  switch (id) {
    case libxl::kEmuUnknown: return "Unknown";
    case libxl::kEmuQemuTrad: return "Qemu Traditional";
    case libxl::kEmuQemuUpstream: return "Qemu Upstream";
    default: return nullptr;
  }
}

const char* vcpu_kind(u32 type) {
  switch (type) {
    case libxc::X86_PV_VCPU_BASIC: return "basic";
    case libxc::X86_PV_VCPU_EXTENDED: return "extended";
    case libxc::X86_PV_VCPU_XSAVE: return "xsave";
    default: return "msrs";
  }
}

// Per-libxc-stream state; it lives across checkpoint hand-backs.
struct LibxcState {
  u32 version = 0;
  u32 domain_type = 0;
  u64 squashed = 0;  // PAGE_DATA records since the last printed line
  // Strict-mode facts.
  bool static_data_end = false;
  u32 pv_info_count = 0;
  u32 guest_width = 0;
  bool p2m_frames = false;
  u64 max_pfn = 0;  // highest pfn a PV P2M_FRAMES record covers
  bool shared_info = false;
  bool hvm_params = false;
  bool hvm_context = false;
  bool vcpu0_basic = false;
  bool nested = false;  // inside a libxl stream
};

// A record's body as the checks see it: whole when small, else its first
// bytes (the rest was walked and counted).
struct Body {
  const std::byte* data = nullptr;
  u64 len = 0;        // body length from the header
  std::size_t have = 0;  // bytes of the body in `data`
  bool whole() const { return have == len; }
  template <typename T>
  T at(std::size_t off) const {
    return load<T>(data + off);
  }
};

enum class LibxcEnd { end, checkpoint };

class Verifier {
 public:
  Verifier(Source& src, const VerifyOptions& opt, StreamStats& st)
      : rd_(src), opt_(opt), st_(st) {}

  Error run();

 private:
  // ---- plumbing -------------------------------------------------------
  u64 pos() const { return rd_.pos(); }
  void info(const std::string& s) {
    if (opt_.info) opt_.info(s);
  }
  void note(const std::string& s) {
    if (opt_.note) opt_.note(s);
  }

  // Errors carry the current record (the reader knows which).
  [[gnu::cold]] Error fail(Errc code, u64 off, std::string detail) const {
    return rd_.fail(code, off, std::move(detail));
  }
  void tick() {
    if (opt_.progress && pos() >= next_progress_) {
      opt_.progress(pos());
      next_progress_ = pos() + (64ull << 20);
    }
  }

  // Reads a record's body and padding. Small bodies stay in the source's
  // window (valid until the next read); large ones are walked, keeping the
  // first kPrefix bytes. Padding is returned separately.
  Error read_body(u64 len, Body& body, bool& padding_ok, bool xenstore_scan);
  // Counts the NULs of xenstore data (after the emulator header) in a chunk
  // of the body starting at body offset `off`.
  void xenstore_scan_chunk(Bytes chunk, u64 off);

  // ---- layers ---------------------------------------------------------
  // Skips a header's optional data, handing it to the observer if any.
  Error config_data(u64 len, const char* what);
  StreamObserver* obs() const { return opt_.observer; }
  Error xl_header(Format& inner);
  Error libvirt_header(Format& inner);
  Error libxl_stream();
  Error libxc_headers(LibxcState& s);
  Error libxc_records(LibxcState& s, LibxcEnd& how);
  Error libxc_record(LibxcState& s, const RecordHeader& h, u64 rec_off);
  Error page_data(LibxcState& s, const RecordHeader& h, u64 rec_off);
  Error check_libxc_body(LibxcState& s, u32 type, const Body& b);
  Error strict_libxc(LibxcState& s, u32 type, const Body& b, u64 rec_off);
  Error check_libxl_body(u32 type, const Body& b);
  Error optional_record(Layer layer, const RecordHeader& h, u64 rec_off);
  void squash_flush(LibxcState& s) {
    if (s.squashed > 0) {
      info(strprintf("Squashed %llu Page Data records together",
               static_cast<unsigned long long>(s.squashed)));
      s.squashed = 0;
    }
  }
  void end_record(Layer layer, u32 type) {
    const u64 total = rd_.end_record();
    TypeCount* tc = nullptr;
    if (layer == Layer::libxc && type < st_.libxc.size()) tc = &st_.libxc[type];
    if (layer == Layer::libxl && type < st_.libxl.size()) tc = &st_.libxl[type];
    if (!tc) tc = &st_.optional[type];
    ++tc->records;
    tc->bytes += total;
    ++st_.records;
    tick();
  }

  RecordReader rd_;
  const VerifyOptions& opt_;
  StreamStats& st_;
  u64 next_progress_ = 64ull << 20;
  // Xenstore scan results of the last read_body(xenstore_scan = true).
  u64 xs_nuls_ = 0;
  bool xs_last_nul_ = false;
  bool libxl_in_checkpoint_ = false;
  LibxcState libxc_;
  bool libxc_seen_ = false;
  std::byte prefix_buf_[kPrefix];
};

Error Verifier::read_body(u64 len, Body& body, bool& padding_ok, bool xenstore_scan) {
  body = Body{};
  body.len = len;
  xs_nuls_ = 0;
  xs_last_nul_ = false;
  if (padded(len) <= kWholeBody) {
    Bytes b;
    if (Error e = rd_.body_whole(len, b, padding_ok)) return e;
    body.data = b.data();
    body.have = static_cast<std::size_t>(len);
    if (xenstore_scan) xenstore_scan_chunk(b, 0);
    return {};
  }
  // Large body: keep a prefix, walk the rest (reading it only when a check
  // needs every byte), then the padding.
  body.data = prefix_buf_;
  body.have = kPrefix;
  if (!xenstore_scan) return rd_.body_prefix(len, prefix_buf_, padding_ok);
  return rd_.body_scan(
      len, prefix_buf_, [this](Bytes c, u64 off) { xenstore_scan_chunk(c, off); }, padding_ok);
}

void Verifier::xenstore_scan_chunk(Bytes c, u64 off) {
  constexpr u64 kData = sizeof(libxl::EmulatorHeader);
  for (std::size_t i = off < kData ? static_cast<std::size_t>(kData - off) : 0; i < c.size(); ++i)
    if (c[i] == std::byte{0}) ++xs_nuls_;
  if (!c.empty()) xs_last_nul_ = c.back() == std::byte{0};
}

Error Verifier::run() {
  Format f = opt_.format;
  if (f == Format::autodetect) {
    const Container d = detect_format(rd_.source());
    if (d == Container::libxc) f = Format::libxc;
    else if (d == Container::libxl) f = Format::libxl;
    else if (d == Container::xl) f = Format::xl;
    else if (d == Container::libvirt) {
      if (Error e = libvirt_header(f)) return e;
    } else {
      return fail(Errc::bad_header, 0,
                  "not a v2/v3 stream: looks like a legacy (Xen <= 4.5) image; "
                  "convert it with 'xsr convert'");
    }
  }
  if (f == Format::xl) {
    if (Error e = xl_header(f)) return e;
  }
  if (st_.container.empty()) st_.container = f == Format::libxl ? "libxl" : "libxc";
  else st_.container += f == Format::libxl ? "+libxl" : "+libxc";

  Error e;
  if (f == Format::libxl) {
    e = libxl_stream();
  } else {
    libxc_seen_ = true;
    e = libxc_headers(libxc_);
    LibxcEnd how = LibxcEnd::end;
    if (!e) e = libxc_records(libxc_, how);
  }
  st_.bytes = pos();
  return e;
}

// ---- headers ------------------------------------------------------------

Error Verifier::xl_header(Format& inner) {
  xl::Header h;
  Bytes b;
  if (Error e = rd_.need(xl::kMagicLen, b, "xl header")) return e;
  if (std::memcmp(b.data(), xl::kMagic, xl::kMagicLen) != 0)
    return fail(Errc::bad_header, pos(), "No xl header");
  if (Error e = rd_.read_struct(h, "xl header")) return e;
  if (opt_.strict && h.byteorder != xl::kByteOrder)
    return fail(Errc::bad_header, 32, strprintf("xl header byte order 0x%08x, expected 0x%08x",
                                          h.byteorder, xl::kByteOrder));
  if (Error e = config_data(h.optional_data_len, "xl header optional data")) return e;
  if (obs()) obs()->header(HeaderKind::xl, 0, pos());
  info("Processed xl header");
  st_.container = "xl";
  inner = (h.mandatory_flags & xl::kFlagStreamV2) ? Format::libxl : Format::libxc;
  return {};
}

Error Verifier::libvirt_header(Format& inner) {
  libvirt::Header h;
  if (Error e = rd_.read_struct(h, "libvirt header")) return e;
  if (std::memcmp(h.magic, libvirt::kMagic, libvirt::kMagicLen) != 0)
    return fail(Errc::bad_header, 0, "No libvirt header");
  if (h.version == 1)
    return fail(Errc::bad_header, 16,
                "libvirt header version 1: a legacy (Xen <= 4.5) stream follows; "
                "convert it with 'xsr convert'");
  if (h.version != 2)
    return fail(Errc::bad_header, 16, strprintf("libvirt header version %u, expected 1 or 2", h.version));
  if (Error e = config_data(h.xml_len, "libvirt domain XML")) return e;
  if (obs()) obs()->header(HeaderKind::libvirt, 0, pos());
  st_.container = "libvirt";
  inner = Format::libxl;
  return {};
}

Error Verifier::config_data(u64 len, const char* what) {
  if (!obs()) return rd_.skip(len, what);
  while (len > 0) {
    const std::size_t n = len < kMaxPeek ? static_cast<std::size_t>(len) : kMaxPeek;
    Bytes b;
    if (Error e = rd_.need(n, b, what)) return e;
    obs()->config(b.first(n));
    rd_.source().consume(n);
    len -= n;
  }
  return {};
}

Error Verifier::libxc_headers(LibxcState& s) {
  const u64 ihdr_off = pos();
  libxc::ImageHeader ih;
  if (Error e = rd_.read_struct(ih, "libxc image header")) return e;
  const u64 marker = bswap64(ih.marker);
  const u32 id = bswap32(ih.id), version = bswap32(ih.version);
  const u32 options = bswap16(ih.options), r1 = bswap16(ih.reserved1), r2 = bswap32(ih.reserved2);
  if (marker != libxc::kMarker)
    return fail(Errc::bad_header, ihdr_off,
                strprintf("Bad image marker: Expected 0x%llx, got 0x%llx",
                    static_cast<unsigned long long>(libxc::kMarker),
                    static_cast<unsigned long long>(marker)));
  if (id != libxc::kIdent)
    return fail(Errc::bad_header, ihdr_off + 8,
                strprintf("Bad image id: Expected 0x%x, got 0x%x", libxc::kIdent, id));
  if (version < 2 || version > 3)
    return fail(Errc::bad_header, ihdr_off + 12,
                strprintf("Unknown image version: Expected 2 <= ver <= 3, got %u", version));
  s.version = version;
  if (options & libxc::kOptReservedMask)
    return fail(Errc::bad_header, ihdr_off + 16,
                strprintf("Reserved bits set in image options field: 0x%x",
                    options & libxc::kOptReservedMask));
  if (r1 != 0 || r2 != 0)
    return fail(Errc::bad_header, ihdr_off + 18,
                strprintf("Reserved bits set in image header: 0x%04x:0x%08x", r1, r2));
  // The reference tests the endianness bit against a mask of 0 and never
  // rejects a big-endian image; strict mode does, as Xen's restore does.
  if (opt_.strict && (options & libxc::kOptBigEndian))
    return fail(Errc::bad_header, ihdr_off + 16,
                "Stream is not native endianness - unable to validate");
  info(strprintf("Libxc Image Header: Version %u, little endian", version));

  const u64 dhdr_off = pos();
  libxc::DomainHeader dh;
  if (Error e = rd_.read_struct(dh, "libxc domain header")) return e;
  if (dh.type != libxc::kX86Pv && dh.type != libxc::kX86Hvm)
    return fail(Errc::bad_header, dhdr_off, strprintf("Unrecognised domain type 0x%x", dh.type));
  if (dh.reserved != 0)
    return fail(Errc::bad_header, dhdr_off + 6,
                strprintf("Reserved bits set in domain header 0x%04x", dh.reserved));
  if (dh.page_shift != kPageShift)
    return fail(Errc::bad_header, dhdr_off + 4,
                strprintf("Page shift expected to be 12.  Got %u", dh.page_shift));
  const char* tname = dh.type == libxc::kX86Pv ? "x86 PV" : "x86 HVM";
  if (dh.xen_major == 0)
    info(strprintf("Domain Header: legacy converted %s", tname));
  else
    info(strprintf("Domain Header: %s from Xen %u.%u", tname, dh.xen_major, dh.xen_minor));
  s.domain_type = dh.type;
  st_.libxc_version = version;
  st_.domain_type = dh.type;
  st_.xen_major = dh.xen_major;
  st_.xen_minor = dh.xen_minor;
  if (dh.xen_major == 0) st_.legacy_converted = true;
  if (obs()) {
    obs()->header(HeaderKind::libxc_image, ihdr_off, sizeof ih);
    obs()->header(HeaderKind::libxc_domain, dhdr_off, sizeof dh);
  }
  return {};
}

// ---- libxc records --------------------------------------------------------

Error Verifier::libxc_records(LibxcState& s, LibxcEnd& how) {
  for (;;) {
    u64 rec_off;
    RecordHeader h;
    if (Error e = rd_.read_header(Layer::libxc, h, rec_off)) return e;
    if (h.type >= libxc::kRecordTypeCount) {
      if (h.type & kOptionalRecordBit) {
        if (Error e = optional_record(Layer::libxc, h, rec_off)) return e;
        continue;
      }
      return fail(Errc::unknown_record, rec_off,
                  strprintf("Unrecognised record type 0x%x", h.type));
    }
    if (opt_.strict && h.length > kMaxRecordBody)
      return fail(Errc::too_large, rec_off,
                  strprintf("body length %u exceeds the 128 MiB limit of Xen's restore", h.length));
    // What follows this record is certainly another record header, unless
    // this is the END.
    rd_.expect_body(h, h.type != libxc::END);
    if (Error e = libxc_record(s, h, rec_off)) return e;
    const u32 type = h.type;
    end_record(Layer::libxc, type);
    if (type == libxc::END) {
      how = LibxcEnd::end;
      return {};
    }
    if (type == libxc::CHECKPOINT) {
      ++st_.checkpoints;
      if (s.nested) {
        // Hand back to libxl: its records run up to CHECKPOINT_END.
        how = LibxcEnd::checkpoint;
        return {};
      }
    }
  }
}

Error Verifier::optional_record(Layer layer, const RecordHeader& h, u64 rec_off) {
  if (opt_.strict && layer == Layer::libxl)
    return fail(Errc::unknown_record, rec_off,
                strprintf("Unrecognised record type 0x%x (libxl's restore refuses unknown records, "
                    "optional or not)", h.type));
  if (opt_.strict && h.length > kMaxRecordBody)
    return fail(Errc::too_large, rec_off,
                strprintf("body length %u exceeds the 128 MiB limit of Xen's restore", h.length));
  rd_.expect_body(h, true);
  Body b;
  bool pad_ok = true;
  if (Error e = read_body(h.length, b, pad_ok, false)) return e;
  if (!pad_ok) return fail(Errc::bad_padding, rec_off, "Padding containing non0 bytes found");
  std::string line = strprintf("%s Record: optional record type 0x%08x, length %u, skipped",
                         layer == Layer::libxc ? "Libxc" : "Libxl", h.type, h.length);
  info(line);
  note(strprintf("offset 0x%llx: %s", static_cast<unsigned long long>(rec_off), line.c_str()));
  if (obs()) obs()->record(layer, h.type, rec_off, h.length, Bytes(b.data, b.have));
  end_record(layer, h.type);
  return {};
}

Error Verifier::libxc_record(LibxcState& s, const RecordHeader& h, u64 rec_off) {
  if (h.type == libxc::PAGE_DATA) return page_data(s, h, rec_off);
  Body b;
  bool pad_ok = true;
  if (Error e = read_body(h.length, b, pad_ok, false)) return e;
  squash_flush(s);
  info(strprintf("Libxc Record: %s, length %u", std::string(record_info(Layer::libxc, h.type)->ref_name).c_str(),
           h.length));
  if (!pad_ok) return fail(Errc::bad_padding, rec_off, "Padding containing non0 bytes found");
  if (Error e = check_libxc_body(s, h.type, b)) {
    e.offset = rec_off;
    return e;
  }
  if (opt_.strict) {
    if (Error e = strict_libxc(s, h.type, b, rec_off)) return e;
  }
  if (obs()) obs()->record(Layer::libxc, h.type, rec_off, h.length, Bytes(b.data, b.have));
  return {};
}

// The reference's per-type rules, in its order of checks.
Error Verifier::check_libxc_body(LibxcState& s, u32 type, const Body& b) {
  const u64 len = b.len;
  auto bad = [&](std::string d) { return fail(Errc::bad_record, 0, std::move(d)); };
  switch (type) {
    case libxc::END:
      if (len != 0) return bad("End record with non-zero length");
      return {};
    case libxc::X86_PV_INFO: {
      if (len != 8)
        return bad(strprintf("x86_pv_info: expected length of 8, got %llu",
                       static_cast<unsigned long long>(len)));
      auto width = b.at<std::uint8_t>(0), levels = b.at<std::uint8_t>(1);
      auto r1 = b.at<std::uint16_t>(2);
      auto r2 = b.at<u32>(4);
      if (width != 4 && width != 8) return bad(strprintf("Expected width of 4 or 8, got %u", width));
      if (levels != 3 && levels != 4) return bad(strprintf("Expected levels of 3 or 4, got %u", levels));
      if (r1 != 0 || r2 != 0)
        return bad(strprintf("Reserved bits set in X86_PV_INFO: 0x%04x 0x%08x", r1, r2));
      info(strprintf("  %ubit guest, %u levels of pagetables", width == 4 ? 32u : 64u, levels));
      return {};
    }
    case libxc::X86_PV_P2M_FRAMES: {
      if (len < 8) return bad("x86_pv_p2m_frames: record length must be at least 8 bytes long");
      if (len % 8 != 0)
        return bad(strprintf("Length expected to be a multiple of 8, not %llu",
                       static_cast<unsigned long long>(len)));
      info(strprintf("  Start pfn 0x%x, End 0x%x", b.at<u32>(0), b.at<u32>(4)));
      return {};
    }
    case libxc::X86_PV_VCPU_BASIC:
    case libxc::X86_PV_VCPU_EXTENDED:
    case libxc::X86_PV_VCPU_XSAVE:
    case libxc::X86_PV_VCPU_MSRS: {
      const char* name = vcpu_kind(type);
      if (len < 8)
        return bad(strprintf("X86_PV_VCPU_%s record length must be at least 8 bytes long", name));
      if (len == 8) info(strprintf("Warning: X86_PV_VCPU_%s record with zero content", name));
      auto vcpu = b.at<u32>(0), r1 = b.at<u32>(4);
      if (r1 != 0) return bad(strprintf("Reserved bits set in x86_pv_vcpu_%s record 0x%04x", name, r1));
      info(strprintf("  vcpu%u %s context, %llu bytes", vcpu, name,
               static_cast<unsigned long long>(len - 8)));
      return {};
    }
    case libxc::SHARED_INFO:
      if (len != 4096)
        return bad(strprintf("Length expected to be 4096 bytes, not %llu",
                       static_cast<unsigned long long>(len)));
      return {};
    case libxc::X86_TSC_INFO: {
      if (len != 24) return bad(strprintf("Length should be 24 bytes, got %llu",
                                    static_cast<unsigned long long>(len)));
      libxc::X86TscInfo t;
      std::memcpy(&t, b.data, sizeof t);
      if (t.reserved != 0) return bad(strprintf("Reserved bits set in X86_TSC_INFO: 0x%08x", t.reserved));
      info(strprintf("  Mode %u, %u kHz, %llu ns, incarnation %u", t.mode, t.khz,
               static_cast<unsigned long long>(t.nsec), t.incarnation));
      return {};
    }
    case libxc::HVM_CONTEXT:
      if (len == 0) return bad("Zero length HVM context");
      return {};
    case libxc::HVM_PARAMS: {
      if (len < 8) return bad(strprintf("Length should be at least 8 bytes, got %llu",
                                  static_cast<unsigned long long>(len)));
      auto count = b.at<u32>(0), rsvd = b.at<u32>(4);
      if (rsvd != 0) return bad(strprintf("Reserved field not zero (0x%04x)", rsvd));
      if (count == 0) info("Warning: HVM_PARAMS record with zero content");
      u64 want = 8 + 16 * u64{count};
      if (len != want)
        return bad(strprintf("Length should be %llu bytes, got %llu", static_cast<unsigned long long>(want),
                       static_cast<unsigned long long>(len)));
      return {};
    }
    case libxc::TOOLSTACK:
      // The reference crashes here (exit 2); Xen's restore refuses the
      // record as an unknown mandatory one, so this is a stream error.
      return fail(Errc::unknown_record, 0,
                  "Found Toolstack record in stream (deprecated; Xen's restore refuses it)");
    case libxc::VERIFY:
      if (len != 0) return bad("Verify record with non-zero length");
      return {};
    case libxc::CHECKPOINT:
      if (len != 0) return bad("Checkpoint record with non-zero length");
      return {};
    case libxc::CHECKPOINT_DIRTY_PFN_LIST:
      return bad("Found checkpoint dirty pfn list record in stream (it belongs to COLO's back channel)");
    case libxc::STATIC_DATA_END:
      if (len != 0) return bad("Static data end record with non-zero length");
      if (s.version < 3) return bad("Static data end record found in v2 stream");
      return {};
    case libxc::X86_CPUID_POLICY:
    case libxc::X86_MSR_POLICY: {
      const bool cpuid = type == libxc::X86_CPUID_POLICY;
      if (s.version < 3)
        return bad(strprintf("%s record found in v2 stream", cpuid ? "x86 CPUID policy" : "x86 MSR policy"));
      const u32 unit = cpuid ? libxc::kCpuidLeafSize : libxc::kMsrEntrySize;
      if (len < unit || len % unit != 0)
        return bad(strprintf("Record length %llu, expected multiple of %u",
                       static_cast<unsigned long long>(len), unit));
      return {};
    }
    default:
      return bad("no rule for this record type");
  }
}

// Xen's restore rules (xg_sr_restore*.c), beyond the reference's.
Error Verifier::strict_libxc(LibxcState& s, u32 type, const Body& b, u64 rec_off) {
  auto bad = [&](std::string d) { return fail(Errc::bad_order, rec_off, std::move(d)); };
  const bool pv = s.domain_type == libxc::kX86Pv;
  switch (type) {
    case libxc::STATIC_DATA_END:
      if (s.static_data_end) return bad("a second STATIC_DATA_END");
      s.static_data_end = true;
      return {};
    case libxc::X86_PV_INFO:
      if (!pv) return bad("X86_PV_INFO in an HVM stream");
      if (s.pv_info_count++) return bad("a second X86_PV_INFO");
      s.guest_width = b.at<std::uint8_t>(0);
      return {};
    case libxc::X86_PV_P2M_FRAMES: {
      if (!pv) return bad("X86_PV_P2M_FRAMES in an HVM stream");
      if (!s.pv_info_count) return bad("X86_PV_P2M_FRAMES before X86_PV_INFO");
      if (s.version >= 3 && !s.static_data_end)
        return bad("X86_PV_P2M_FRAMES before STATIC_DATA_END");
      s.static_data_end = true;  // v2: inferred here
      u32 start = b.at<u32>(0), end = b.at<u32>(4);
      if (start > end) return bad(strprintf("P2M frames start pfn 0x%x is beyond end pfn 0x%x", start, end));
      const u64 fpp = kPageSize / s.guest_width;
      const u64 frames = end / fpp - start / fpp + 1;
      if (b.len != 8 + 8 * frames)
        return bad(strprintf("body length %llu, expected 8 + 8 * %llu frames for pfns 0x%x-0x%x",
                       static_cast<unsigned long long>(b.len),
                       static_cast<unsigned long long>(frames), start, end));
      s.p2m_frames = true;
      s.max_pfn = std::max<u64>(s.max_pfn, end);
      return {};
    }
    case libxc::X86_PV_VCPU_BASIC:
    case libxc::X86_PV_VCPU_EXTENDED:
    case libxc::X86_PV_VCPU_XSAVE:
    case libxc::X86_PV_VCPU_MSRS: {
      if (!pv) return bad(strprintf("X86_PV_VCPU_%s in an HVM stream", vcpu_kind(type)));
      u32 vcpu = b.at<u32>(0);
      if (vcpu > kMaxVcpuId)
        return bad(strprintf("vcpu id %u out of range (max %u)", vcpu, kMaxVcpuId));
      if (type == libxc::X86_PV_VCPU_BASIC && vcpu == 0) s.vcpu0_basic = true;
      return {};
    }
    case libxc::SHARED_INFO:
      if (!pv) return bad("SHARED_INFO in an HVM stream");
      if (!s.pv_info_count) return bad("SHARED_INFO before X86_PV_INFO");
      s.shared_info = true;
      return {};
    case libxc::HVM_PARAMS:
      if (pv) return bad("HVM_PARAMS in a PV stream");
      s.hvm_params = true;
      return {};
    case libxc::HVM_CONTEXT:
      if (pv) return bad("HVM_CONTEXT in a PV stream");
      if (!s.hvm_params) return bad("HVM_CONTEXT before HVM_PARAMS");
      s.hvm_context = true;
      return {};
    case libxc::CHECKPOINT:
      if (!s.nested && !opt_.checkpointed)
        return bad("CHECKPOINT in a stream that is not checkpointed (use --checkpointed for "
                   "Remus/COLO streams)");
      return {};
    case libxc::END:
      if (pv && !s.vcpu0_basic) return bad("END of a PV stream without vcpu0's basic state");
      if (pv && !s.pv_info_count) return bad("END of a PV stream without X86_PV_INFO");
      if (!pv && !s.hvm_context) return bad("END of an HVM stream without HVM_CONTEXT");
      return {};
    case libxc::X86_CPUID_POLICY:
    case libxc::X86_MSR_POLICY:
      if (s.static_data_end) return bad("CPU policy after STATIC_DATA_END");
      return {};
    default:
      return {};
  }
}

Error Verifier::page_data(LibxcState& s, const RecordHeader& h, u64 rec_off) {
  const u64 len = h.length;
  if (len <= 8) {
    Body b;
    bool pad_ok = true;
    if (Error e = read_body(len, b, pad_ok, false)) return e;
    ++s.squashed;
    if (!pad_ok) return fail(Errc::bad_padding, rec_off, "Padding containing non0 bytes found");
    return fail(Errc::bad_record, rec_off,
                strprintf("PAGE_DATA record must be at least 8 bytes long, got %llu",
                    static_cast<unsigned long long>(len)));
  }
  PageDataReader pd(rd_);
  if (Error e = pd.begin(len)) return e;
  const libxc::PageDataHeader& ph = pd.header();
  // The reference reads the whole record before judging it, so a truncated
  // record is reported as truncated whatever else is wrong with it: the
  // first rule broken is remembered and reported once the bytes are there.
  Error deferred;
  const u64 pfn_bytes = 8 * u64{ph.count};
  u64 nr_pages = 0;
  if (ph.reserved != 0) {
    deferred = fail(Errc::bad_record, rec_off,
                    strprintf("Reserved bits set in PAGE_DATA record 0x%04x", ph.reserved));
  } else if (!pd.pfns_fit()) {
    deferred = fail(Errc::bad_record, rec_off,
                    strprintf("PAGE_DATA record must contain a pfn record for each count: count %u "
                        "needs %llu bytes, body has %llu",
                        ph.count, static_cast<unsigned long long>(pfn_bytes),
                        static_cast<unsigned long long>(len - 8)));
  } else {
    const bool pv_limit = opt_.strict && s.domain_type == libxc::kX86Pv;
    u64 idx = 0;
    auto& by_type = st_.pfns_by_type;
    for (;;) {
      Bytes c;
      if (Error e = pd.next_pfns(c)) return e;
      const std::size_t n = c.size() / 8;
      if (n == 0) break;
      u64 bad_bits = 0;
      for (std::size_t i = 0; i < n; ++i) {
        const PfnEntry e = PfnEntry::at(c, i);
        bad_bits |= e.reserved_bits() | e.type_reserved();
        nr_pages += e.has_data();
        ++by_type[e.type()];
        if (pv_limit && e.pfn() > s.max_pfn) bad_bits |= 2;
      }
      if (bad_bits && !deferred) {
        // Out of line: find the first offender, as the reference reports it.
        for (std::size_t i = 0; i < n; ++i) {
          const PfnEntry e = PfnEntry::at(c, i);
          if (e.reserved_bits()) {
            deferred = fail(Errc::bad_record, rec_off,
                            strprintf("Reserved bits set in pfn[%llu]: 0x%016llx",
                                static_cast<unsigned long long>(idx + i),
                                static_cast<unsigned long long>(e.reserved_bits())));
            break;
          }
          if (e.type_reserved()) {
            deferred = fail(Errc::bad_record, rec_off,
                            strprintf("Invalid type value in pfn[%llu]: 0x%016llx",
                                static_cast<unsigned long long>(idx + i),
                                static_cast<unsigned long long>(e.type_bits())));
            break;
          }
          if (pv_limit && e.pfn() > s.max_pfn) {
            deferred = fail(Errc::bad_order, rec_off,
                            strprintf("pfn[%llu] 0x%llx beyond the P2M (max pfn 0x%llx)",
                                static_cast<unsigned long long>(idx + i),
                                static_cast<unsigned long long>(e.pfn()),
                                static_cast<unsigned long long>(s.max_pfn)));
            break;
          }
        }
      }
      if (obs()) obs()->pfns(c);
      idx += n;
    }
    const u64 want = 8 + pfn_bytes + nr_pages * kPageSize;
    if (!deferred && len != want)
      deferred = fail(Errc::bad_record, rec_off,
                      strprintf("Expected %u + %llu + %llu, got %llu", 8u,
                          static_cast<unsigned long long>(pfn_bytes),
                          static_cast<unsigned long long>(nr_pages * kPageSize),
                          static_cast<unsigned long long>(len)));
  }
  // Page bodies: no check needs them, so they are skipped (spliced away on
  // a pipe, jumped over in a file), never copied to user space.
  if (obs() && !deferred && obs()->wants_pages()) {
    if (Error e = obs()->pages(pd)) return e;
  }
  if (Error e = pd.skip_pages()) return e;
  bool pad_ok = true;
  if (Error e = pd.end(pad_ok)) return e;
  ++s.squashed;
  if (!pad_ok) return fail(Errc::bad_padding, rec_off, "Padding containing non0 bytes found");
  if (deferred) return deferred;
  st_.pages += nr_pages;
  if (opt_.strict) {
    if (s.version >= 3 && !s.static_data_end)
      return fail(Errc::bad_order, rec_off, "PAGE_DATA before STATIC_DATA_END");
    s.static_data_end = true;  // v2: inferred here
    if (s.domain_type == libxc::kX86Pv && !s.p2m_frames)
      return fail(Errc::bad_order, rec_off, "PAGE_DATA before X86_PV_P2M_FRAMES");
  }
  if (obs()) obs()->record(Layer::libxc, h.type, rec_off, h.length, {});
  return {};
}

// ---- libxl ----------------------------------------------------------------

Error Verifier::libxl_stream() {
  const u64 hdr_off = pos();
  libxl::Header h;
  if (Error e = rd_.read_struct(h, "libxl header")) return e;
  const u64 ident = bswap64(h.ident);
  const u32 version = bswap32(h.version), options = bswap32(h.options);
  if (ident != libxl::kIdent)
    return fail(Errc::bad_header, hdr_off,
                strprintf("Bad image id: Expected 0x%llx, got 0x%llx",
                    static_cast<unsigned long long>(libxl::kIdent),
                    static_cast<unsigned long long>(ident)));
  if (version != libxl::kVersion)
    return fail(Errc::bad_header, hdr_off + 8,
                strprintf("Unknown image version: Expected 2, got %u", version));
  if (options & 0xfffc)
    return fail(Errc::bad_header, hdr_off + 12,
                strprintf("Reserved bits set in image options field: 0x%x", options & 0xfffc));
  if (opt_.strict && (options & ~0xfffcu & libxl::kOptReservedMask))
    return fail(Errc::bad_header, hdr_off + 12,
                strprintf("Reserved bits set in image options field: 0x%x",
                    options & libxl::kOptReservedMask));
  if (opt_.strict && (options & libxl::kOptBigEndian))
    return fail(Errc::bad_header, hdr_off + 12,
                "Stream is not native endianness - unable to validate");
  if (options & libxl::kOptLegacy) {
    info("Libxl Header: little endian, legacy converted");
    st_.legacy_converted = true;
  } else {
    info("Libxl Header: little endian");
  }
  if (obs()) obs()->header(HeaderKind::libxl, hdr_off, sizeof h);

  for (;;) {
    u64 rec_off;
    RecordHeader rh;
    if (Error e = rd_.read_header(Layer::libxl, rh, rec_off)) return e;
    if (rh.type >= libxl::kRecordTypeCount) {
      if (rh.type & kOptionalRecordBit) {
        if (Error e = optional_record(Layer::libxl, rh, rec_off)) return e;
        continue;
      }
      return fail(Errc::unknown_record, rec_off, strprintf("Unrecognised record type %x", rh.type));
    }
    if (opt_.strict && rh.length > kMaxRecordBody)
      return fail(Errc::too_large, rec_off,
                  strprintf("body length %u exceeds the 128 MiB limit of Xen's restore", rh.length));
    info(strprintf("Libxl Record: %s, length %u",
             std::string(record_info(Layer::libxl, rh.type)->ref_name).c_str(), rh.length));
    rd_.expect_body(rh, rh.type != libxl::END);
    Body b;
    bool pad_ok = true;
    const bool scan = rh.type == libxl::EMULATOR_XENSTORE_DATA;
    if (Error e = read_body(rh.length, b, pad_ok, scan)) return e;
    if (!pad_ok) return fail(Errc::bad_padding, rec_off, "Padding containing non0 bytes found");
    if (Error e = check_libxl_body(rh.type, b)) {
      e.offset = rec_off;
      return e;
    }
    // Strict order rules first: a record the verifier refuses is never
    // handed to the observer (a relay would have forwarded it).
    if (opt_.strict) {
      if (rh.type == libxl::LIBXC_CONTEXT && libxc_seen_)
        return fail(Errc::bad_order, rec_off, "a second LIBXC_CONTEXT record");
      if (rh.type == libxl::CHECKPOINT_END && !libxl_in_checkpoint_)
        return fail(Errc::bad_order, rec_off, "CHECKPOINT_END outside a checkpoint");
      if ((rh.type == libxl::EMULATOR_XENSTORE_DATA || rh.type == libxl::EMULATOR_CONTEXT) && libxc_seen_ &&
          libxc_.domain_type == libxc::kX86Pv)
        return fail(Errc::bad_order, rec_off,
                    strprintf("%s in a PV stream (emulator records are for HVM guests)",
                        record_name(Layer::libxl, rh.type).c_str()));
    }
    if (obs()) obs()->record(Layer::libxl, rh.type, rec_off, rh.length, Bytes(b.data, b.have));
    const u32 type = rh.type;
    end_record(Layer::libxl, type);

    switch (type) {
      case libxl::END:
        return {};
      case libxl::LIBXC_CONTEXT: {
        if (libxc_seen_) libxc_ = LibxcState{};  // the reference verifies each one afresh
        libxc_seen_ = true;
        libxc_.nested = true;
        if (Error e = libxc_headers(libxc_)) return e;
        LibxcEnd how;
        if (Error e = libxc_records(libxc_, how)) return e;
        libxl_in_checkpoint_ = how == LibxcEnd::checkpoint;
        break;
      }
      case libxl::CHECKPOINT_END: {
        if (!libxl_in_checkpoint_) break;
        // libxc carries on with the next checkpoint's records.
        LibxcEnd how;
        if (Error e = libxc_records(libxc_, how)) return e;
        libxl_in_checkpoint_ = how == LibxcEnd::checkpoint;
        break;
      }
      default:
        break;
    }
  }
}

Error Verifier::check_libxl_body(u32 type, const Body& b) {
  const u64 len = b.len;
  auto bad = [&](std::string d) { return fail(Errc::bad_record, 0, std::move(d)); };
  switch (type) {
    case libxl::END:
      if (len != 0) return bad("End record with non-zero length");
      return {};
    case libxl::LIBXC_CONTEXT:
      if (len != 0) return bad("Libxc context record with non-zero length");
      return {};
    case libxl::EMULATOR_XENSTORE_DATA:
    case libxl::EMULATOR_CONTEXT: {
      if (len < 8)
        return bad(strprintf("Length must be at least 8 bytes, got %llu", static_cast<unsigned long long>(len)));
      auto id = b.at<u32>(0), idx = b.at<u32>(4);
      const char* name = emulator_name(id);
      if (!name) return bad(strprintf("Unrecognised emulator id 0x%x", id));
      if (type == libxl::EMULATOR_CONTEXT) {
        info(strprintf("  Index %u, type %s", idx, name));
        return {};
      }
      info(strprintf("Emulator Xenstore Data (%s, idx %u)", name, idx));
      if (len > 8) {
        // The real rule (the reference's Python 3 port rejects all data):
        // NUL-terminated, an even number of NUL-separated strings.
        if (!xs_last_nul_) return bad("Data not NUL terminated");
        if (xs_nuls_ % 2 != 0)
          return bad(strprintf("Expected an even number of strings, got %llu",
                         static_cast<unsigned long long>(xs_nuls_)));
        if (b.whole()) {
          const char* p = reinterpret_cast<const char*>(b.data) + 8;
          const char* end = reinterpret_cast<const char*>(b.data) + len;
          while (p < end) {
            const char* k = p;
            p += std::strlen(p) + 1;
            const char* v = p;
            p += std::strlen(p) + 1;
            info(strprintf("  '%s' = '%s'", k, v));
          }
        }
      }
      return {};
    }
    case libxl::CHECKPOINT_END:
      if (len != 0) return bad("Checkpoint end record with non-zero length");
      return {};
    case libxl::CHECKPOINT_STATE:
      if (len == 0) return bad("Checkpoint state record with zero length");
      return {};
    default:
      return bad("no rule for this record type");
  }
}

}  // namespace

Error verify(Source& src, const VerifyOptions& opt, StreamStats& stats) {
  const std::uint64_t start = src.pos();
  Verifier v(src, opt, stats);
  Error e = v.run();
  // A source can fail after handing out a view (a mapped file that shrank
  // reads as zeros, source.cc): no verdict reached over such bytes stands.
  if (src.error() && e.code != Errc::io) [[unlikely]]
    e = Error::io(src.pos() - start, "read failed: " + src.error_text());
  return e;
}

}  // namespace xsr
