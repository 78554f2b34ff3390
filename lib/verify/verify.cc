#include "xsr/verify.h"

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <memory>
#include <utility>
#include <vector>

#include "rules.h"
#include "strict.h"
#include "xsr/reader.h"
#include "xsr/walker.h"

namespace xsr {
namespace {

using u64 = std::uint64_t;
using u32 = std::uint32_t;
using ull = unsigned long long;
using rules::LibxcState;

Container container_of(Format f) {
  switch (f) {
    case Format::libxl: return Container::libxl;
    case Format::xl: return Container::xl;
    default: return Container::libxc;
  }
}

// The walker's consumer that judges what it meets: the headers here, each
// record by its type's rules (rules.h), PAGE_DATA entry by entry. What
// passes is counted and handed to the observer.
class Verifier final : public WalkConsumer {
 public:
  Verifier(Source& src, const VerifyOptions& opt, StreamStats& st)
      : walker_(src, *this), opt_(opt), st_(st) {}

  Error run() {
    Error e = opt_.format == Format::autodetect ? walker_.walk() : walker_.walk(container_of(opt_.format));
    // The counts describe what passed: bytes up to the end of the last
    // header or record accepted (the whole stream when it is valid).
    st_.bytes = good_;
    st_.bytes_read = pos();
    return e;
  }

  // ---- walker events (walker.h) ------------------------------------------
  void layout(Container outer, Container inner);
  Error header(const HeaderEvent& ev);
  bool wants_config() const { return obs() != nullptr || opt_.strict; }
  void config(Bytes chunk) {
    if (obs()) obs()->config(chunk);
    // --strict: the domain's vCPU count, which the config gives.
    if (opt_.strict && config_.size() < kMaxConfig)
      config_.append(reinterpret_cast<const char*>(chunk.data()),
                     std::min(chunk.size(), kMaxConfig - config_.size()));
  }
  Error header_end(const HeaderEvent& ev);
  // The per-record path (every PAGE_DATA record takes it) is inlined into
  // the walker's record loop: out of line, a one-entry PAGE_DATA record
  // cost a third more instructions (callgrind), ~15% more time.
  [[gnu::always_inline]] inline Error record_header(const RecordEvent& ev);
  bool scan_body(const RecordEvent& ev) const {
    if (ev.layer == Layer::libxl) return ev.type == libxl::EMULATOR_XENSTORE_DATA;
    return opt_.strict && (ev.type == libxc::HVM_CONTEXT || ev.type == libxc::X86_PV_P2M_FRAMES);
  }
  void body_chunk(Bytes chunk, u64 off) {
    if (scan_ == Layer::libxl) xs_.add(chunk, off);
    else strict_chunk(chunk, off);
  }
  Error record(const RecordEvent& ev, const Body& b, bool padding_ok);
  [[gnu::always_inline]] inline bool page_data(const RecordEvent& ev, const PageDataReader& pd);
  [[gnu::always_inline]] inline void pfns(const RecordEvent& ev, Bytes chunk);
  [[gnu::always_inline]] inline Error pages(const RecordEvent& ev, PageDataReader& pd);
  [[gnu::always_inline]] inline Error page_data_end(const RecordEvent& ev, bool padding_ok);
  // Counts a record that passed.
  [[gnu::always_inline]] inline void record_end(const RecordEvent& ev, u64 size);

 private:
  // ---- plumbing -------------------------------------------------------
  u64 pos() const { return walker_.pos(); }
  StreamObserver* obs() const { return opt_.observer; }
  void info(const std::string& s) {
    if (opt_.info) opt_.info(s);
  }
  void note(const std::string& s) {
    if (opt_.note) opt_.note(s);
  }
  // Errors carry the current record (the reader knows which).
  [[gnu::cold]] Error fail(Errc code, u64 off, std::string detail) const {
    return walker_.reader().fail(code, off, std::move(detail));
  }
  [[gnu::cold]] Error padding_error(const RecordEvent& ev) const {
    return fail(Errc::bad_padding, ev.offset, "Padding containing non0 bytes found");
  }
  void tick() {
    if (opt_.progress && pos() >= next_progress_) {
      opt_.progress(pos());
      next_progress_ = pos() + (64ull << 20);
    }
  }
  static bool known(const RecordEvent& ev) {
    return ev.type < (ev.layer == Layer::libxc ? u32{libxc::kRecordTypeCount} : u32{libxl::kRecordTypeCount});
  }
  rules::Ctx ctx(const RecordEvent& ev, const Body& b) {
    return rules::Ctx{ev, b, libxc_, libxc_seen_, xs_, frames_, hvm_fault_, opt_, walker_.reader()};
  }
  void squash_flush(LibxcState& s) {
    if (s.squashed > 0) {
      info(strprintf("Squashed %llu Page Data records together", static_cast<ull>(s.squashed)));
      s.squashed = 0;
    }
  }

  // ---- headers --------------------------------------------------------
  Error image_header(const HeaderEvent& ev);
  Error domain_header(const HeaderEvent& ev);
  Error libxl_header(const HeaderEvent& ev);

  // ---- records --------------------------------------------------------
  [[gnu::cold]] Error unknown_record(const RecordEvent& ev) const;
  Error optional_record(const RecordEvent& ev, const Body& b, bool padding_ok);
  Error libxc_record(const RecordEvent& ev, const Body& b, bool padding_ok);
  [[gnu::cold]] void first_bad_pfn(const RecordEvent& ev, Bytes chunk);
  // ---- --strict (strict.h) ----------------------------------------------
  void strict_begin(const RecordEvent& ev);
  void strict_chunk(Bytes chunk, u64 off);
  void strict_pfns(const RecordEvent& ev, Bytes chunk);
  Error strict_pages(const RecordEvent& ev, PageDataReader& pd);
  Error strict_page(const RecordEvent& ev, u64 pfn, unsigned type, const std::byte* page);
  // A rule of Xen's restore broken: after a Remus checkpoint the record
  // is only buffered, so the fault waits for the next checkpoint (and is
  // forgotten if END comes first).
  Error strict_fault(Error e) {
    if (!libxc_.buffering || !e) return e;
    if (!pending_) pending_ = std::move(e);
    return {};
  }
  Error strict_record(const RecordEvent& ev, const Body& b, const rules::Rule& r);
  // A record that passed, for the observer (record_end counts it).
  void accept(const RecordEvent& ev, Bytes body) {
    if (obs()) obs()->record(ev.layer, ev.type, ev.offset, ev.length, body);
  }

  StreamWalker<Verifier> walker_;
  const VerifyOptions& opt_;
  StreamStats& st_;
  u64 next_progress_ = 64ull << 20;
  rules::XenstoreScan xs_;     // of the current libxl record
  Layer scan_ = Layer::libxc;  // the layer of the record body_chunk scans
  u32 scan_type_ = 0;          // and its type
  // --strict: the current record's frame list, HVM context check, PV
  // PAGE_DATA entries; a fault held back by Remus buffering.
  std::vector<u64> frames_;
  strict::HvmScan hvm_scan_;
  std::string hvm_fault_;
  // The xl config or libvirt XML (its first kMaxConfig bytes), for the
  // domain's vCPU count (--strict).
  static constexpr std::size_t kMaxConfig = 1 << 20;
  std::string config_;
  bool config_xml_ = false;
  u32 domain_vcpus() const {
    std::string_view text = config_;
    if (!config_xml_) xl::config_in_optional_data(config_, config_.size(), text);
    return strict::config_vcpus(text);
  }
  std::vector<u64> pd_entries_;
  Error pending_;
  LibxcState libxc_;
  bool libxc_seen_ = false;
  u64 image_header_off_ = 0;
  u64 good_ = 0;  // end of the last header or record that passed
  // The PAGE_DATA record being read. The reference reads the whole record
  // before judging it, so a truncated record is reported as truncated
  // whatever else is wrong with it: the first rule broken is remembered
  // (deferred_) and reported once the bytes are there.
  Error deferred_;
  u64 pd_index_ = 0;                  // entries checked so far
  u64 pd_pages_ = 0;                  // entries with a page body
  std::array<u64, 16> pd_by_type_{};  // its entries by page type
  bool pv_limit_ = false;
};

// ---- headers ------------------------------------------------------------

// "libxc", "libxl", "xl+libxl", "xl+libxc", "libvirt+libxl".
void Verifier::layout(Container outer, Container inner) {
  if (outer != inner) st_.container = container_name(outer);
  if (!st_.container.empty()) st_.container += '+';
  st_.container += container_name(inner);
}

Error Verifier::header(const HeaderEvent& ev) {
  switch (ev.kind) {
    case HeaderKind::xl: {
      const auto h = ev.as<xl::Header>();
      if (opt_.strict && h.byteorder != xl::kByteOrder)
        return fail(Errc::bad_header, ev.offset + offsetof(xl::Header, byteorder),
                    strprintf("xl header byte order 0x%08x, expected 0x%08x", h.byteorder, xl::kByteOrder));
      return {};
    }
    case HeaderKind::libvirt: config_xml_ = true; return {};
    case HeaderKind::libxc_image: return image_header(ev);
    case HeaderKind::libxc_domain: return domain_header(ev);
    case HeaderKind::libxl: return libxl_header(ev);
  }
  return {};
}

Error Verifier::header_end(const HeaderEvent& ev) {
  good_ = ev.offset + ev.length;
  switch (ev.kind) {
    case HeaderKind::libxc_image:
      // Told with the domain header, once both are checked.
      image_header_off_ = ev.offset;
      return {};
    case HeaderKind::libxc_domain:
      if (obs()) obs()->header(HeaderKind::libxc_image, image_header_off_, sizeof(libxc::ImageHeader));
      break;
    default: break;
  }
  if (obs()) obs()->header(ev.kind, ev.offset, ev.length);
  if (ev.kind == HeaderKind::xl) info("Processed xl header");
  return {};
}

Error Verifier::image_header(const HeaderEvent& ev) {
  // The reference verifies each libxc stream of a libxl stream afresh.
  if (libxc_seen_) libxc_ = LibxcState{};
  if (const u32 n = domain_vcpus()) libxc_.max_vcpus = libxc_.m.max_vcpus = n;
  pending_ = {};
  libxc_seen_ = true;
  const u64 off = ev.offset;
  const auto ih = ev.as<libxc::ImageHeader>();
  const u64 marker = bswap64(ih.marker);
  const u32 id = bswap32(ih.id), version = bswap32(ih.version);
  const u32 options = bswap16(ih.options), r1 = bswap16(ih.reserved1), r2 = bswap32(ih.reserved2);
  if (marker != libxc::kMarker)
    return fail(Errc::bad_header, off,
                strprintf("Bad image marker: Expected 0x%llx, got 0x%llx", static_cast<ull>(libxc::kMarker),
                          static_cast<ull>(marker)));
  if (id != libxc::kIdent)
    return fail(Errc::bad_header, off + 8,
                strprintf("Bad image id: Expected 0x%x, got 0x%x", libxc::kIdent, id));
  if (version < 2 || version > 3)
    return fail(Errc::bad_header, off + 12,
                strprintf("Unknown image version: Expected 2 <= ver <= 3, got %u", version));
  libxc_.version = version;
  if (options & libxc::kOptReservedMask)
    return fail(
        Errc::bad_header, off + 16,
        strprintf("Reserved bits set in image options field: 0x%x", options & libxc::kOptReservedMask));
  if (r1 != 0 || r2 != 0)
    return fail(Errc::bad_header, off + 18,
                strprintf("Reserved bits set in image header: 0x%04x:0x%08x", r1, r2));
  // The reference tests the endianness bit against a mask of 0 and never
  // rejects a big-endian image; strict mode does, as Xen's restore does.
  if (opt_.strict && (options & libxc::kOptBigEndian))
    return fail(Errc::bad_header, off + 16, "Xen restore: Unable to handle big endian streams");
  info(strprintf("Libxc Image Header: Version %u, little endian", version));
  return {};
}

Error Verifier::domain_header(const HeaderEvent& ev) {
  const u64 off = ev.offset;
  const auto dh = ev.as<libxc::DomainHeader>();
  if (dh.type != libxc::kX86Pv && dh.type != libxc::kX86Hvm)
    return fail(Errc::bad_header, off, strprintf("Unrecognised domain type 0x%x", dh.type));
  if (dh.reserved != 0)
    return fail(Errc::bad_header, off + 6,
                strprintf("Reserved bits set in domain header 0x%04x", dh.reserved));
  if (dh.page_shift != kPageShift)
    return fail(Errc::bad_header, off + 4, strprintf("Page shift expected to be 12.  Got %u", dh.page_shift));
  const char* tname = dh.type == libxc::kX86Pv ? "x86 PV" : "x86 HVM";
  if (dh.xen_major == 0) info(strprintf("Domain Header: legacy converted %s", tname));
  else info(strprintf("Domain Header: %s from Xen %u.%u", tname, dh.xen_major, dh.xen_minor));
  libxc_.domain_type = dh.type;
  st_.libxc_version = libxc_.version;
  st_.domain_type = dh.type;
  st_.xen_major = dh.xen_major;
  st_.xen_minor = dh.xen_minor;
  if (dh.xen_major == 0) st_.legacy_converted = true;
  return {};
}

Error Verifier::libxl_header(const HeaderEvent& ev) {
  const u64 off = ev.offset;
  const auto h = ev.as<libxl::Header>();
  const u64 ident = bswap64(h.ident);
  const u32 version = bswap32(h.version), options = bswap32(h.options);
  if (ident != libxl::kIdent)
    return fail(Errc::bad_header, off,
                strprintf("Bad image id: Expected 0x%llx, got 0x%llx", static_cast<ull>(libxl::kIdent),
                          static_cast<ull>(ident)));
  if (version != libxl::kVersion)
    return fail(Errc::bad_header, off + 8, strprintf("Unknown image version: Expected 2, got %u", version));
  if (options & 0xfffc)
    return fail(Errc::bad_header, off + 12,
                strprintf("Reserved bits set in image options field: 0x%x", options & 0xfffc));
  // Bits 16-31 are reserved too, but libxl's restore (stream_header_done)
  // looks only at the big-endian bit, and so does --strict.
  if (opt_.strict && (options & libxl::kOptBigEndian))
    return fail(Errc::bad_header, off + 12, "Xen restore: Unable to handle big endian streams");
  if (options & libxl::kOptLegacy) {
    info("Libxl Header: little endian, legacy converted");
    st_.legacy_converted = true;
  } else {
    info("Libxl Header: little endian");
  }
  return {};
}

// ---- records --------------------------------------------------------------

Error Verifier::unknown_record(const RecordEvent& ev) const {
  return fail(Errc::unknown_record, ev.offset,
              ev.layer == Layer::libxc ? strprintf("Unrecognised record type 0x%x", ev.type)
                                       : strprintf("Unrecognised record type %x", ev.type));
}

Error Verifier::record_header(const RecordEvent& ev) {
  if (!known(ev)) [[unlikely]] {
    if (!(ev.type & kOptionalRecordBit)) return unknown_record(ev);
    if (opt_.strict && ev.layer == Layer::libxl)
      return fail(Errc::unknown_record, ev.offset,
                  strprintf("Xen restore: Unrecognised record 0x%08x (libxl refuses unknown records, "
                            "optional or not)",
                            ev.type));
  }
  if (opt_.strict && ev.length > kMaxRecordBody)
    return fail(
        Errc::too_large, ev.offset,
        strprintf("Xen restore: Record (0x%08x, %s) length %#x exceeds max (0x%x: 128 MiB)", ev.type,
                  record_name(ev.layer, ev.type).c_str(), ev.length, static_cast<unsigned>(kMaxRecordBody)));
  scan_ = ev.layer;
  if (opt_.strict && ev.layer == Layer::libxc) strict_begin(ev);
  if (ev.layer == Layer::libxl) {
    xs_ = {};
    if (known(ev))
      info(strprintf("Libxl Record: %s, length %u",
                     std::string(record_info(Layer::libxl, ev.type)->ref_name).c_str(), ev.length));
  }
  return {};
}

Error Verifier::record(const RecordEvent& ev, const Body& b, bool padding_ok) {
  if (!known(ev)) [[unlikely]]
    return optional_record(ev, b, padding_ok);
  if (ev.layer == Layer::libxc) return libxc_record(ev, b, padding_ok);
  if (!padding_ok) return padding_error(ev);
  if (Error e = rules::run(ctx(ev, b), rules::libxl_rule(ev.type), 0, opt_.strict)) return e;
  // The strict order rules ran first: a record the verifier refuses is
  // never handed to the observer (a relay would have forwarded it).
  accept(ev, b.bytes());
  return {};
}

Error Verifier::optional_record(const RecordEvent& ev, const Body& b, bool padding_ok) {
  if (!padding_ok) return padding_error(ev);
  std::string line = strprintf("%s Record: optional record type 0x%08x, length %u, skipped",
                               ev.layer == Layer::libxc ? "Libxc" : "Libxl", ev.type, ev.length);
  info(line);
  note(strprintf("offset 0x%llx: %s", static_cast<ull>(ev.offset), line.c_str()));
  accept(ev, b.bytes());
  return {};
}

Error Verifier::libxc_record(const RecordEvent& ev, const Body& b, bool padding_ok) {
  LibxcState& s = libxc_;
  const rules::Rule& r = rules::libxc_rule(ev.type);
  if (ev.type == libxc::PAGE_DATA) {
    // Too short to hold an entry, so not walked (walker.h): squashed as
    // every PAGE_DATA is, then refused by the table's minimum length.
    ++s.squashed;
    if (!padding_ok) return padding_error(ev);
    if (Error e = rules::check_length(ctx(ev, b), r, s.version)) return e;
    accept(ev, b.bytes());
    return {};
  }
  squash_flush(s);
  info(strprintf("Libxc Record: %s, length %u",
                 std::string(record_info(Layer::libxc, ev.type)->ref_name).c_str(), ev.length));
  if (!padding_ok) return padding_error(ev);
  if (Error e = rules::run(ctx(ev, b), r, s.version, false)) return e;
  if (opt_.strict)
    if (Error e = strict_record(ev, b, r)) return e;
  accept(ev, b.bytes());
  return {};
}

// ---- PAGE_DATA, entry by entry ------------------------------------------------

bool Verifier::page_data(const RecordEvent& ev, const PageDataReader& pd) {
  const libxc::PageDataHeader& ph = pd.header();
  if (deferred_) [[unlikely]]
    deferred_ = {};
  pd_index_ = pd_pages_ = 0;
  pd_by_type_ = {};
  pv_limit_ = opt_.strict && libxc_.pv();
  if (opt_.strict) pd_entries_.clear();
  if (ph.reserved != 0) {
    deferred_ = fail(Errc::bad_record, ev.offset,
                     strprintf("Reserved bits set in PAGE_DATA record 0x%04x", ph.reserved));
    return false;
  }
  if (!pd.pfns_fit()) {
    deferred_ =
        fail(Errc::bad_record, ev.offset,
             strprintf("PAGE_DATA record must contain a pfn record for each count: count %u "
                       "needs %llu bytes, body has %llu",
                       ph.count, static_cast<ull>(8 * u64{ph.count}), static_cast<ull>(ev.length - 8)));
    return false;
  }
  return true;
}

// The hot loop: every entry's reserved bits, type and (strict PV) pfn bound
// folded into one word, tested once per chunk.
void Verifier::pfns(const RecordEvent& ev, Bytes chunk) {
  const std::size_t n = chunk.size() / 8;
  const bool pv_limit = pv_limit_;
  const u64 max_pfn = libxc_.max_pfn;
  auto& by_type = pd_by_type_;
  u64 bad_bits = 0, pages = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const PfnEntry e = PfnEntry::at(chunk, i);
    bad_bits |= e.reserved_bits() | e.type_reserved();
    pages += e.has_data();
    ++by_type[e.type()];
    if (pv_limit && e.pfn() > max_pfn) bad_bits |= 2;
  }
  pd_pages_ += pages;
  if (bad_bits && !deferred_) first_bad_pfn(ev, chunk);
  if (opt_.strict) [[unlikely]]
    strict_pfns(ev, chunk);
  if (obs()) obs()->pfns(chunk);
  pd_index_ += n;
}

// Out of line: the first offender of a chunk, as the reference reports it.
void Verifier::first_bad_pfn(const RecordEvent& ev, Bytes chunk) {
  for (std::size_t i = 0; i < chunk.size() / 8; ++i) {
    const PfnEntry e = PfnEntry::at(chunk, i);
    const ull idx = pd_index_ + i;
    if (e.reserved_bits()) {
      deferred_ = fail(
          Errc::bad_record, ev.offset,
          strprintf("Reserved bits set in pfn[%llu]: 0x%016llx", idx, static_cast<ull>(e.reserved_bits())));
      return;
    }
    if (e.type_reserved()) {
      deferred_ =
          fail(Errc::bad_record, ev.offset,
               strprintf("Invalid type value in pfn[%llu]: 0x%016llx", idx, static_cast<ull>(e.type_bits())));
      return;
    }
    if (pv_limit_ && e.pfn() > libxc_.max_pfn) {
      deferred_ = fail(Errc::bad_order, ev.offset,
                       strprintf("Xen restore: pfn %#llx (index %llu) outside domain maximum (max pfn %#llx)",
                                 static_cast<ull>(e.pfn()), idx, static_cast<ull>(libxc_.max_pfn)));
      return;
    }
  }
}

Error Verifier::pages(const RecordEvent& ev, PageDataReader& pd) {
  // Entries were read (and counted) unless a rule was already broken.
  if (!deferred_) {
    const u64 pfn_bytes = 8 * u64{pd.header().count};
    const u64 want = 8 + pfn_bytes + pd_pages_ * kPageSize;
    if (ev.length != want)
      deferred_ = fail(Errc::bad_record, ev.offset,
                       strprintf("Expected %u + %llu + %llu, got %llu", 8u, static_cast<ull>(pfn_bytes),
                                 static_cast<ull>(pd_pages_ * kPageSize), static_cast<ull>(ev.length)));
  }
  // Page bodies: no check needs them, so the walker skips them (spliced
  // away on a pipe, jumped over in a file), never copied to user space.
  if (obs() && !deferred_ && obs()->wants_pages()) return obs()->pages(pd);
  if (opt_.strict && !deferred_ && libxc_.pv()) [[unlikely]]
    return strict_pages(ev, pd);
  return {};
}

Error Verifier::page_data_end(const RecordEvent& ev, bool padding_ok) {
  ++libxc_.squashed;
  if (!padding_ok) return padding_error(ev);
  if (deferred_) return deferred_.code == Errc::bad_order ? strict_fault(std::move(deferred_)) : deferred_;
  if (opt_.strict) {
    const Body none{nullptr, ev.length, 0};
    if (Error e = strict_fault(rules::strict_page_data(ctx(ev, none)))) return e;
  }
  // Pages and entries count once their record passed.
  st_.pages += pd_pages_;
  for (std::size_t t = 0; t < pd_by_type_.size(); ++t) st_.pfns_by_type[t] += pd_by_type_[t];
  accept(ev, {});
  return {};
}

// ---- --strict -------------------------------------------------------------------

void Verifier::strict_begin(const RecordEvent& ev) {
  scan_type_ = ev.type;
  if (ev.type == libxc::HVM_CONTEXT) hvm_scan_.begin(ev.length, libxc_.max_vcpus);
  if (ev.type == libxc::X86_PV_P2M_FRAMES) frames_.clear();
}

// A piece of a body scan_body() asked for: the HVM context, or the frame
// list after P2M_FRAMES' 8-byte header (pieces are multiples of 8 bytes).
void Verifier::strict_chunk(Bytes chunk, u64 off) {
  if (scan_type_ == libxc::HVM_CONTEXT) {
    hvm_scan_.add(chunk.data(), chunk.size());
    return;
  }
  for (std::size_t i = off < 8 ? static_cast<std::size_t>(8 - off) : 0; i + 8 <= chunk.size(); i += 8)
    frames_.push_back(load<u64>(chunk.data() + i));
}

Error Verifier::strict_record(const RecordEvent& ev, const Body& b, const rules::Rule& r) {
  LibxcState& s = libxc_;
  if (ev.type == libxc::HVM_CONTEXT) hvm_fault_ = hvm_scan_.finish();
  if (!r.strict) return {};
  Error e = r.strict(ctx(ev, b));
  if (ev.type == libxc::END) return e;  // processed even while buffering
  if (ev.type != libxc::CHECKPOINT) return strict_fault(std::move(e));
  if (e) return e;
  // The records buffered since the last checkpoint are processed now.
  if (pending_)
    return rules::moved_to(fail(Errc::bad_order, ev.offset, {}), std::exchange(pending_, Error{}),
                           "buffered since the last checkpoint: found in");
  s.committed = std::make_shared<const strict::Model>(s.m);
  s.buffering = true;
  return {};
}

namespace {
// Page types restore gives a frame (page_type_to_populate()).
constexpr bool populates(unsigned t) { return t <= 4 || (t >= 9 && t <= 0xc) || t == 0xe; }
constexpr u64 kMaxGfn = u64{1} << 36;
}  // namespace

// PV: the entries, kept for strict_pages; HVM: gfns the hypervisor's
// populate_physmap refuses.
void Verifier::strict_pfns(const RecordEvent& ev, Bytes chunk) {
  const std::size_t n = chunk.size() / 8;
  if (libxc_.pv()) {
    for (std::size_t i = 0; i < n; ++i) pd_entries_.push_back(PfnEntry::at(chunk, i).raw);
    return;
  }
  for (std::size_t i = 0; i < n; ++i) {
    const PfnEntry e = PfnEntry::at(chunk, i);
    if (!populates(e.type())) continue;
    if (e.pfn() >= kMaxGfn && !deferred_)
      deferred_ = fail(Errc::bad_order, ev.offset,
                       strprintf("Xen restore: Failed to populate physmap (hypervisor: populate_physmap: gfn "
                                 "%#llx beyond 2^36)",
                                 static_cast<ull>(e.pfn())));
  }
}

// PV process_page_data(): every entry populated as its type says and
// typed, then each page with data localised (pagetables) in stream order.
Error Verifier::strict_pages(const RecordEvent& ev, PageDataReader& pd) {
  strict::PfnMap& map = libxc_.m.pfns;
  for (const u64 raw : pd_entries_) {
    const PfnEntry e{raw};
    std::uint8_t& v = map.at(e.pfn());
    v = static_cast<std::uint8_t>((v & strict::PfnMap::kPopulated) |
                                  (populates(e.type()) ? strict::PfnMap::kPopulated : 0) | e.type());
  }
  std::size_t i = 0;
  Error first;
  Error e = pd.for_each_page([&](PageDataReader::Page page) {
    while (i < pd_entries_.size() && !PfnEntry{pd_entries_[i]}.has_data()) ++i;
    if (i >= pd_entries_.size()) return;
    const PfnEntry en{pd_entries_[i++]};
    if (!first) first = strict_page(ev, en.pfn(), en.type(), page.data());
  });
  if (e) return e;
  if (first && !deferred_) deferred_ = std::move(first);
  return {};
}

Error Verifier::strict_page(const RecordEvent& ev, u64 pfn, unsigned type, const std::byte* page) {
  strict::Model& m = libxc_.m;
  const unsigned level = type & 7;
  if (level >= 1 && level <= 4) {
    // x86_pv_localise_page(): a present entry's pfn goes through
    // pfn_to_mfn(), which asserts it is in the p2m, then is populated.
    for (u32 k = 0; k < pv::kPtesPerPage; ++k) {
      const u64 pte = load<u64>(page + 8 * k);
      if (!(pte & pv::kPtePresent)) continue;
      const u64 p = pv::pte_pfn(pte);
      if (p > m.max_pfn)
        return fail(
            Errc::bad_order, ev.offset,
            strprintf("Xen restore: L%u[%u] = %#llx of pfn %#llx names pfn %#llx beyond the p2m (max pfn "
                      "%#llx): assertion 'pfn <= ctx->x86.pv.max_pfn' in pfn_to_mfn() fails (a crash)",
                      level, k, static_cast<ull>(pte), static_cast<ull>(pfn), static_cast<ull>(p),
                      static_cast<ull>(m.max_pfn)));
      m.pfns.at(p) |= strict::PfnMap::kPopulated;
    }
    return {};
  }
  // A start_info page (magic "xen-"): the XenStore and console pfns
  // restore will read from it if vCPU 0 names it; other pages: whether
  // those fields would pass as they stand (docs/strict.md).
  const pv::StartInfoLayout& l = pv::start_info_layout(m.width);
  strict::StartInfo si;
  si.store = m.width == 4 ? load<u32>(page + l.store_mfn) : load<u64>(page + l.store_mfn);
  si.console = m.width == 4 ? load<u32>(page + l.console_mfn) : load<u64>(page + l.console_mfn);
  auto ok = [&](u64 p) { return p <= m.max_pfn && m.pfns.populated(p); };
  std::uint8_t& v = m.pfns.at(pfn);
  v = static_cast<std::uint8_t>((v & ~strict::PfnMap::kStartInfoOk) |
                                (ok(si.store) && ok(si.console) ? strict::PfnMap::kStartInfoOk : 0));
  auto& infos = m.start_infos;
  const bool magic = std::memcmp(page, "xen-", 4) == 0;
  if (!magic && infos.empty()) return {};
  auto it = std::find_if(infos.begin(), infos.end(), [&](const auto& x) { return x.first == pfn; });
  if (!magic) {
    if (it != infos.end()) infos.erase(it);
    return {};
  }
  if (it != infos.end()) it->second = si;
  else infos.emplace_back(pfn, si);
  return {};
}

void Verifier::record_end(const RecordEvent& ev, u64 size) {
  TypeCount* tc = nullptr;
  if (ev.layer == Layer::libxc && ev.type < st_.libxc.size()) tc = &st_.libxc[ev.type];
  if (ev.layer == Layer::libxl && ev.type < st_.libxl.size()) tc = &st_.libxl[ev.type];
  if (!tc) tc = &st_.optional[ev.type];
  ++tc->records;
  tc->bytes += size;
  good_ = ev.offset + size;
  ++st_.records;
  if (ev.layer == Layer::libxc && ev.type == libxc::CHECKPOINT) ++st_.checkpoints;
  tick();
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
