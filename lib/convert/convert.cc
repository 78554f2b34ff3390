#include "xsr/convert.h"

#include <algorithm>
#include <cstdarg>
#include <cstdio>
#include <cstring>

#include "xsr/format.h"
#include "xsr/legacy.h"

namespace xsr {

namespace {

using u64 = std::uint64_t;
using u32 = std::uint32_t;

// Python's repr() of a bytes object, as the reference prints block ids and
// the qemu signature: b'vcpu'.
std::string py_bytes_repr(const std::byte* p, std::size_t n) {
  bool sq = false, dq = false;
  for (std::size_t i = 0; i < n; ++i) {
    if (p[i] == std::byte{'\''}) sq = true;
    if (p[i] == std::byte{'"'}) dq = true;
  }
  const char quote = (sq && !dq) ? '"' : '\'';
  std::string o = "b";
  o += quote;
  for (std::size_t i = 0; i < n; ++i) {
    unsigned char c = static_cast<unsigned char>(p[i]);
    if (c == static_cast<unsigned char>(quote) || c == '\\') {
      o += '\\';
      o += static_cast<char>(c);
    } else if (c == '\t') {
      o += "\\t";
    } else if (c == '\n') {
      o += "\\n";
    } else if (c == '\r') {
      o += "\\r";
    } else if (c < 0x20 || c >= 0x7f) {
      char b[5];
      std::snprintf(b, sizeof b, "\\x%02x", c);
      o += b;
    } else {
      o += static_cast<char>(c);
    }
  }
  o += quote;
  return o;
}

// Physmap xenstore data is held whole until the end of the stream; real
// streams carry a few hundred bytes.
constexpr std::size_t kMaxXenstoreData = 4 << 20;
constexpr std::size_t kMaxHvmParams = 1 << 16;

// Bytes quoted in an error: as Python's repr (the reference's words), or
// 'text' when all printable, else 0x and hex digits.
std::string quoted_bytes(const std::byte* p, std::size_t n, bool python) {
  if (python) return py_bytes_repr(p, n);
  bool text = true;
  for (std::size_t i = 0; i < n; ++i)
    text = text && static_cast<unsigned char>(p[i]) >= 0x20 && static_cast<unsigned char>(p[i]) < 0x7f;
  if (text) return "'" + std::string(reinterpret_cast<const char*>(p), n) + "'";
  std::string o = "0x";
  for (std::size_t i = 0; i < n; ++i) o += strprintf("%02x", static_cast<unsigned>(p[i]));
  return o;
}

class Converter {
 public:
  Converter(Source& in, Sink& out, const ConvertOptions& o)
      : in_(in), out_(out), o_(o), start_(in.pos()), pv_(o.guest == GuestType::pv) {}

  ConvertResult run() {
    ConvertResult r;
    r.error = body();
    if (!r.error && out_.flush()) r.error = out_error();
    r.in_bytes = pos();
    r.out_bytes = out_.bytes();
    r.records = records_;
    r.pages = pages_;
    r.batches = batches_;
    r.tail_bytes = tail_bytes_;
    for (const auto& [how, n] : out_.paths()) {
      if (!r.paths.empty()) r.paths += ", ";
      r.paths += how + " " + std::to_string(n) + " bytes";
    }
    return r;
  }

 private:
  u64 pos() const { return in_.pos() - start_; }
  void info(const std::string& s) {
    if (o_.info) o_.info(s);
  }

  [[gnu::cold]] Error fail(Errc code, std::string detail, u64 at = ~u64{0}) {
    Error e;
    e.code = code;
    e.offset = at == ~u64{0} ? where_ : at;
    e.detail = context_.empty() ? std::move(detail) : context_ + ": " + detail;
    return e;
  }
  [[gnu::cold]] Error out_error() {
    const int cause = out_.error().cause;
    Error e = fail(Errc::output, strprintf("writing the output failed: %s", std::strerror(cause)), pos());
    e.cause = cause;  // EPIPE: the reader left (a caller that closed it knows why)
    return e;
  }
  [[gnu::cold]] Error in_short(u64 need, u64 got, const char* what) {
    if (in_.error())
      return fail(Errc::io, strprintf("reading %s failed: %s", what, in_.error_text().c_str()), pos());
    return fail(Errc::truncated,
                strprintf("stream truncated: %s needs %llu bytes, input ended after %llu", what,
                          static_cast<unsigned long long>(need), static_cast<unsigned long long>(got)),
                pos());
  }

  // Reads exactly n (<= kMaxPeek) bytes into dst.
  Error read(void* dst, std::size_t n, const char* what) {
    Bytes b = in_.peek(n);
    if (b.size() < n) return in_short(n, b.size(), what);
    std::memcpy(dst, b.data(), n);
    in_.consume(n);
    return {};
  }
  template <typename T>
  Error read(T& v, const char* what) {
    return read(&v, sizeof v, what);
  }
  Error read_ulong(u64& v, const char* what) {
    if (o_.width == 32) {
      u32 x = 0;
      if (Error e = read(x, what)) return e;
      v = x;
      return {};
    }
    return read(v, what);
  }
  Error skip(u64 n, const char* what) {
    u64 got = in_.skip(n);
    if (got != n) return in_short(n, got, what);
    return {};
  }
  // Copies n input bytes to the output, through the kernel where it can.
  Error forward(u64 n, const char* what) {
    u64 got = out_.forward(in_, n);
    if (out_.error()) return out_error();
    if (got != n) return in_short(n, got, what);
    return {};
  }

  void record_header(u32 type, u64 len) {
    out_.put(RecordHeader{type, static_cast<u32>(len)});
    ++records_;
  }
  void pad(u64 len) { out_.zeros(static_cast<std::size_t>(padded(len) - len)); }
  void record(u32 type, const void* body, std::size_t len) {
    record_header(type, len);
    if (len) out_.write(body, len);
    pad(len);
  }
  // A record whose body is a small header of ours, then n input bytes.
  Error record_forward(u32 type, const void* head, std::size_t head_len, u64 n, const char* what) {
    const u64 len = head_len + n;
    if (len > 0xffffffffull)
      return fail(Errc::too_large, strprintf("%s of %llu bytes does not fit a record", what,
                                             static_cast<unsigned long long>(n)));
    record_header(type, len);
    if (head_len) out_.write(head, head_len);
    // Record bodies other than pages are what a verifier reads.
    u64 got = out_.forward_checked(in_, n);
    if (out_.error()) return out_error();
    if (got != n) return in_short(n, got, what);
    pad(len);
    return {};
  }

  Error body();
  Error xl_header();
  Error libvirt_header();
  Error pv_extended_info();
  Error pv_p2m_frames();
  Error chunks();
  Error hvm_param(std::int32_t marker, u64 idx, std::vector<u64>& params);
  Error chunk(std::int32_t marker);
  Error vcpu_info();
  Error page_batch(std::int32_t count);
  Error toolstack(u32 size);
  Error pv_tail();
  Error hvm_tail();
  Error qemu();
  void write_hvm_params(const std::vector<u64>& kv) {
    libxc::HvmParamsHeader h{static_cast<u32>(kv.size() / 2), 0};
    record_header(libxc::HVM_PARAMS, 8 + 8 * kv.size());
    out_.put(h);
    out_.write(kv.data(), 8 * kv.size());
  }

  Source& in_;
  Sink& out_;
  const ConvertOptions& o_;
  u64 start_;
  bool pv_;
  u64 where_ = 0;        // start of the chunk or part being read
  std::string context_;  // "chunk 12 (page batch)", "PV tail", ...
  u64 records_ = 0, pages_ = 0, batches_ = 0, tail_bytes_ = 0;
  // State the stream builds up.
  u64 p2m_size_ = 0;
  u32 guest_width_ = 0, levels_ = 0, basic_len_ = 0, xsave_len_ = 0;
  bool vcpu_block_ = false, extd_ = false;
  std::vector<u32> online_;  // vcpu ids in the order the reference keeps
  std::int32_t max_vcpu_id_ = 0;
  std::vector<std::byte> xenstore_;
  std::vector<u64> batch_;  // reused: one batch's entries
};

Error Converter::body() {
  if (o_.libvirt) {
    if (Error e = libvirt_header()) return e;
  }
  if (o_.xl) {
    if (Error e = xl_header()) return e;
  }
  context_ = "p2m size";
  where_ = pos();
  if (Error e = read_ulong(p2m_size_, "p2m size")) return e;
  info(strprintf("P2M Size: 0x%llx", static_cast<unsigned long long>(p2m_size_)));
  if (o_.libxl) {
    libxl::Header h{bswap64(libxl::kIdent), bswap32(libxl::kVersion), bswap32(libxl::kOptLegacy)};
    out_.put(h);
    record(libxl::LIBXC_CONTEXT, nullptr, 0);
  }
  libxc::ImageHeader ih{bswap64(libxc::kMarker), bswap32(libxc::kIdent), bswap32(o_.stream_version), 0, 0, 0};
  out_.put(ih);
  // Xen major 0 marks a converted stream; minor 1 is the converter version.
  libxc::DomainHeader dh{pv_ ? u32{libxc::kX86Pv} : u32{libxc::kX86Hvm}, 12, 0, 0, 1};
  out_.put(dh);
  if (pv_) {
    if (Error e = pv_extended_info()) return e;
  }
  if (o_.stream_version >= 3) record(libxc::STATIC_DATA_END, nullptr, 0);
  if (pv_) {
    if (Error e = pv_p2m_frames()) return e;
  }
  if (Error e = chunks()) return e;
  if (Error e = pv_ ? pv_tail() : hvm_tail()) return e;
  if (o_.libxl && !xenstore_.empty()) {
    libxl::EmulatorHeader eh{libxl::kEmuUnknown, 0};
    record_header(libxl::EMULATOR_XENSTORE_DATA, sizeof eh + xenstore_.size());
    out_.put(eh);
    out_.write(xenstore_.data(), xenstore_.size());
    pad(sizeof eh + xenstore_.size());
  }
  if (!pv_ && (o_.libxl || !o_.skip_qemu)) {
    if (Error e = qemu()) return e;
  }
  if (o_.libxl) record(libxl::END, nullptr, 0);
  return {};
}

Error Converter::xl_header() {
  context_ = "xl header";
  where_ = pos();
  xl::Header h;
  if (Error e = read(h, "xl header")) return e;
  if (std::memcmp(h.magic, xl::kMagic, xl::kMagicLen) != 0) return fail(Errc::bad_header, "No xl header");
  // The header says what follows: a libxl stream once converted.
  if (o_.libxl) h.mandatory_flags |= xl::kFlagStreamV2;
  out_.put(h);
  info("Processed xl header");
  return forward(h.optional_data_len, "xl header optional data");
}

Error Converter::libvirt_header() {
  context_ = "libvirt header";
  where_ = pos();
  libvirt::Header h;
  if (Error e = read(h, "libvirt header")) return e;
  if (std::memcmp(h.magic, libvirt::kMagic, libvirt::kMagicLen) != 0)
    return fail(Errc::bad_header, "No libvirt header");
  if (h.version != 1)
    return fail(Errc::bad_header,
                strprintf("libvirt header version %u: no legacy stream follows", h.version));
  h.version = 2;  // a libxl v2 stream follows once converted
  out_.put(h);
  return forward(h.xml_len, "libvirt domain XML");
}

Error Converter::pv_extended_info() {
  context_ = "PV extended info";
  where_ = pos();
  u64 marker = 0;
  if (Error e = read_ulong(marker, "extended info marker")) return e;
  const u64 expect = o_.width == 32 ? 0xffffffffull : ~u64{0};
  if (marker != expect)
    return fail(Errc::bad_record,
                strprintf("Unexpected extended info marker 0x%llx", static_cast<unsigned long long>(marker)));
  u32 total = 0;
  if (Error e = read(total, "extended info length")) return e;
  info(strprintf("Extended Info: length 0x%x", total));
  u64 so_far = 0;
  while (so_far < total) {
    where_ = pos();
    struct {
      char id[4];
      u32 size = 0;
    } blk;
    static_assert(sizeof blk == 8);
    if (Error e = read(&blk, 8, "extended info block header")) return e;
    so_far += 8;
    info(strprintf("  Record type: %s, size 0x%x",
                   py_bytes_repr(reinterpret_cast<const std::byte*>(blk.id), 4).c_str(), blk.size));
    if (std::memcmp(blk.id, "vcpu", 4) == 0) {
      if (Error e = skip(blk.size, "vcpu block")) return e;
      basic_len_ = blk.size;
      if (blk.size == legacy::kVcpuCtx64) {
        guest_width_ = 8;
        levels_ = 4;
        info("    64bit domain, 4 levels");
      } else if (blk.size == legacy::kVcpuCtx32) {
        guest_width_ = 4;
        levels_ = 3;
        info("    32bit domain, 3 levels");
      } else {
        return fail(Errc::bad_record,
                    strprintf("Unable to determine guest width/level: vcpu block size 0x%x, expected "
                              "0x1430 or 0xaf0",
                              blk.size));
      }
      vcpu_block_ = true;
      libxc::X86PvInfo pi{static_cast<std::uint8_t>(guest_width_), static_cast<std::uint8_t>(levels_), 0, 0};
      record(libxc::X86_PV_INFO, &pi, sizeof pi);
    } else if (std::memcmp(blk.id, "extv", 4) == 0) {
      if (Error e = skip(blk.size, "extv block")) return e;
      extd_ = true;
    } else if (std::memcmp(blk.id, "xcnt", 4) == 0) {
      if (blk.size < 4)
        return fail(Errc::bad_record, strprintf("xcnt block of %u bytes, expected at least 4", blk.size));
      if (Error e = read(xsave_len_, "xcnt block")) return e;
      if (Error e = skip(blk.size - 4, "xcnt block")) return e;
      info(strprintf("xcnt sz 0x%x", xsave_len_));
    } else {
      return fail(Errc::bad_record,
                  "Unrecognised extended block " +
                      quoted_bytes(reinterpret_cast<const std::byte*>(blk.id), 4, o_.python_bytes));
    }
    so_far += blk.size;
  }
  if (so_far != total)
    return fail(Errc::bad_record, strprintf("Overshot Extended Info size by %llu bytes",
                                            static_cast<unsigned long long>(so_far - total)));
  if (!vcpu_block_)
    return fail(Errc::bad_record, "no vcpu block: the guest's width and page-table levels are unknown");
  return {};
}

Error Converter::pv_p2m_frames() {
  context_ = "PV p2m frame list";
  where_ = pos();
  const u64 fpp = 4096 / guest_width_;
  // The reference's floor division gives 0 frames for a p2m size of 0.
  const u64 frames = p2m_size_ == 0 ? 0 : (p2m_size_ - 1) / fpp + 1;
  info(strprintf("P2M frames: fpp %llu, p2m_frame_len %llu", static_cast<unsigned long long>(fpp),
                 static_cast<unsigned long long>(frames)));
  if (p2m_size_ == 0) return fail(Errc::bad_record, "p2m size 0: a PV guest has at least one pfn");
  if (p2m_size_ > (u64{1} << 32))
    return fail(Errc::bad_record, strprintf("p2m size 0x%llx does not fit the v2 P2M_FRAMES record",
                                            static_cast<unsigned long long>(p2m_size_)));
  const u64 len = 8 + 8 * frames;
  record_header(libxc::X86_PV_P2M_FRAMES, len);
  out_.put(libxc::X86PvP2mFrames{0, static_cast<u32>(p2m_size_ - 1)});
  // The frame list streams through in pieces: a hostile p2m size never
  // makes this allocate in proportion.
  const std::size_t ul = o_.width / 8;
  u64 left = frames;
  u64 wide[4096];
  while (left > 0) {
    const std::size_t n = static_cast<std::size_t>(std::min<u64>(left, 4096));
    Bytes b = in_.peek(n * ul);
    if (b.size() < n * ul)
      return in_short((frames - left + n) * ul, (frames - left) * ul + b.size(), "p2m frame list");
    for (std::size_t i = 0; i < n; ++i)
      wide[i] = ul == 4 ? load<u32>(b.data() + 4 * i) : load<u64>(b.data() + 8 * i);
    out_.write(wide, 8 * n);
    in_.consume(n * ul);
    left -= n;
  }
  return {};
}

Error Converter::chunks() {
  std::vector<u64> params;  // index, value pairs in stream order
  for (u64 index = 0;; ++index) {
    where_ = pos();
    context_ = strprintf("chunk %llu", static_cast<unsigned long long>(index));
    std::int32_t marker = 0;
    if (Error e = read(marker, "chunk marker")) return e;
    if (marker <= 0) {
      info(strprintf("Chunk: %d - %s", marker, legacy::chunk_name(marker)));
      context_ += strprintf(" (%s)", legacy::chunk_name(marker));
    } else {
      context_ += " (page batch)";
    }
    if (marker > 0) {
      if (Error e = page_batch(marker)) return e;
      continue;
    }
    if (int idx = legacy::hvm_param_of(marker); idx >= 0) {
      if (Error e = hvm_param(marker, static_cast<u64>(idx), params)) return e;
      continue;
    }
    if (marker == legacy::END) {
      info("  End");
      if (!params.empty()) {
        if (pv_) return fail(Errc::bad_record, "HVM-only param in PV stream");
        write_hvm_params(params);
      }
      return {};
    }
    if (Error e = chunk(marker)) return e;
  }
}

Error Converter::hvm_param(std::int32_t marker, u64 idx, std::vector<u64>& params) {
  legacy::ParamChunk c;
  if (Error e = read(c, "HVM param chunk")) return e;
  const unsigned long long v = c.value;
  switch (marker) {
    case legacy::HVM_IDENT_PT: info(strprintf("  EPT Identity Pagetable: 0x%llx", v)); break;
    case legacy::HVM_VM86_TSS: info(strprintf("  VM86 TSS: 0x%llx", v)); break;
    case legacy::HVM_CONSOLE_PFN: info(strprintf("  Console pfn: 0x%llx", v)); break;
    case legacy::HVM_ACPI_IOPORTS_LOCATION: info(strprintf("  ACPI ioport location: 0x%llx", v)); break;
    case legacy::HVM_VIRIDIAN: info(strprintf("  Viridian location: 0x%llx", v)); break;
    case legacy::HVM_GENERATION_ID_ADDR: info(strprintf("  Generation ID Address: 0x%llx", v)); break;
    case legacy::HVM_PAGING_RING_PFN: info(strprintf("  Paging ring pfn: 0x%llx", v)); break;
    case legacy::HVM_MONITOR_RING_PFN: info(strprintf("  Monitor ring pfn: 0x%llx", v)); break;
    case legacy::HVM_SHARING_RING_PFN: info(strprintf("  Sharing ring pfn: 0x%llx", v)); break;
    case legacy::HVM_IOREQ_SERVER_PFN: info(strprintf("  IOREQ server pfn: 0x%llx", v)); break;
    default: info(strprintf("  IOREQ server pages: %llu", v)); break;
  }
  if (params.size() / 2 >= kMaxHvmParams)
    return fail(Errc::too_large, strprintf("more than %zu HVM param chunks", kMaxHvmParams));
  params.push_back(idx);
  params.push_back(static_cast<u64>(v));  // not c.value: packed, misaligned
  return {};
}

// A chunk other than a page batch, an HVM param or the END.
Error Converter::chunk(std::int32_t marker) {
  switch (marker) {
    case legacy::ENABLE_VERIFY_MODE: info("This is a debug stream"); return {};
    case legacy::LAST_CHECKPOINT: info("  Last Checkpoint"); return {};
    case legacy::VCPU_INFO: return vcpu_info();
    case legacy::TSC_INFO: {
      legacy::TscChunk t;
      if (Error e = read(t, "TSC info")) return e;
      info(strprintf("  X86_TSC_INFO: mode %u, %llu ns, %u khz, %u incarn", t.mode,
                     static_cast<unsigned long long>(t.nsec), t.khz, t.incarnation));
      libxc::X86TscInfo r{t.mode, t.khz, t.nsec, t.incarnation, 0};
      record(libxc::X86_TSC_INFO, &r, sizeof r);
      return {};
    }
    case legacy::TOOLSTACK: {
      u32 size = 0;
      if (Error e = read(size, "toolstack size")) return e;
      return size ? toolstack(size) : Error{};
    }
    case legacy::COMPRESSED_DATA: {
      u32 size = 0;
      if (Error e = read(size, "compressed data size")) return e;
      if (Error e = skip(size, "compressed data")) return e;
      info(strprintf("  Compressed Data: sz 0x%x", size));
      return fail(Errc::unsupported, "compressed page data is not supported (nor by Xen's converter)");
    }
    case legacy::TMEM:
    case legacy::TMEM_EXTRA:
    case legacy::ENABLE_COMPRESSION:
      return fail(Errc::unsupported, strprintf("%s chunks are not supported (nor by Xen's converter)",
                                               legacy::chunk_name(marker)));
    default: return fail(Errc::bad_record, strprintf("Unrecognised chunk %d", marker));
  }
}

Error Converter::vcpu_info() {
  std::int32_t max_id = 0;
  if (Error e = read(max_id, "vcpu info")) return e;
  if (max_id > legacy::kMaxVcpuId)
    return fail(Errc::bad_record, strprintf("Vcpu max_id out of range: %d > %d", max_id, legacy::kMaxVcpuId));
  max_vcpu_id_ = max_id;
  // A negative id has no bitmap words at all (floor division).
  const int words = max_id < 0 ? 0 : max_id / 64 + 1;
  for (int w = 0; w < words; ++w) {
    u64 word = 0;
    if (Error e = read(word, "vcpu info bitmap")) return e;
    for (unsigned bit = 0; bit < 64; ++bit)
      if (word & (u64{1} << bit)) {
        if (online_.size() >= 65536)
          return fail(Errc::too_large, "more than 65536 online vcpus across vcpu info chunks");
        online_.push_back(static_cast<u32>(w * 64 + static_cast<int>(bit)));
      }
  }
  std::string map = "[";
  for (std::size_t i = 0; i < online_.size(); ++i) map += (i ? ", " : "") + std::to_string(online_[i]);
  map += "]";
  info(strprintf("  Vcpu info: max_id %d, online map ", max_vcpu_id_) + map);
  return {};
}

Error Converter::page_batch(std::int32_t count) {
  if (count > legacy::kMaxBatch)
    return fail(Errc::bad_record,
                strprintf("Page batch (%d) exceeded MAX_BATCH (%d)", count, legacy::kMaxBatch));
  ++batches_;
  const std::size_t ul = o_.width / 8;
  const std::size_t n = static_cast<std::size_t>(count);
  Bytes b = in_.peek(n * ul);
  if (b.size() < n * ul) return in_short(n * ul, b.size(), "page batch pfns");
  batch_.clear();
  u64 nr_pages = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const u64 x = ul == 4 ? load<u32>(b.data() + 4 * i) : load<u64>(b.data() + 8 * i);
    // xc_domain_save() leaves XTAB entries for pfns it could not map.
    if (x == legacy::kDropped) continue;
    const unsigned type = static_cast<unsigned>((x & legacy::kTypeMask) >> 28);
    if (libxc::page_type_reserved(type))
      return fail(Errc::bad_record,
                  strprintf("pfn entry %zu 0x%llx has reserved page type %u (no restore accepts it)", i,
                            static_cast<unsigned long long>(x), type));
    if ((x & legacy::kTypeMask) < legacy::kFirstPageless) ++nr_pages;
    batch_.push_back(x);
  }
  in_.consume(n * ul);
  {
    std::vector<u64> sorted = batch_;
    std::sort(sorted.begin(), sorted.end());
    if (std::adjacent_find(sorted.begin(), sorted.end()) != sorted.end())
      return fail(Errc::bad_record, "Duplicate pfns in batch");
  }
  const u64 page_bytes = nr_pages * kPageSize;
  if (batch_.empty()) return {};  // every entry dropped: no record (not a count-0 one)
  for (u64& x : batch_) x = ((x & legacy::kTypeMask) << 32) | (x & legacy::kPfnMask);
  record_header(libxc::PAGE_DATA, 8 + 8 * batch_.size() + page_bytes);
  out_.put(libxc::PageDataHeader{static_cast<u32>(batch_.size()), 0});
  out_.write(batch_.data(), 8 * batch_.size());
  pages_ += nr_pages;
  if (o_.progress && (batches_ & 15) == 0) o_.progress(pos());
  return forward(page_bytes, "page batch pages");
}

Error Converter::toolstack(u32 size) {
  if (!o_.libxl) {
    if (Error e = skip(size, "toolstack data")) return e;
    info(strprintf("  Toolstack Data: sz 0x%x", size));
    info("    Discarding");
    return {};
  }
  if (size > kMaxPeek)
    return fail(Errc::too_large,
                strprintf("toolstack data of %u bytes (xsr reads at most %zu)", size, kMaxPeek));
  std::vector<std::byte> data(size);
  if (Error e = read(data.data(), size, "toolstack data")) return e;
  info(strprintf("  Toolstack Data: sz 0x%x", size));
  if (size < 8) return fail(Errc::bad_record, "Overly short libxl toolstack data");
  const u32 ver = load<u32>(data.data()), count = load<u32>(data.data() + 4);
  if (ver != 1) return fail(Errc::bad_record, strprintf("Cannot decode libxl toolstack version %u", ver));
  info(strprintf("    Version %u, count %u", ver, count));
  std::size_t at = 8;
  for (u32 i = 0; i < count; ++i) {
    if (size - at < sizeof(legacy::PhysmapEntry))
      return fail(Errc::bad_record, "Remaining data too short for physmap header");
    legacy::PhysmapEntry pe;
    std::memcpy(&pe, data.data() + at, sizeof pe);
    at += sizeof pe;
    if (pe.namelen == 0) return fail(Errc::bad_record, "No physmap info name");
    // A 64-bit toolstack leaked 4 bytes of padding after each name.
    const u64 take = u64{pe.namelen} + (o_.width == 64 ? 4 : 0);
    if (size - at < take) return fail(Errc::bad_record, "Remaining data too short for physmap name");
    const std::byte* name = data.data() + at;
    at += static_cast<std::size_t>(take);
    if (name[pe.namelen - 1] != std::byte{0})
      return fail(Errc::bad_record, "physmap name not NUL terminated");
    char root[64];
    std::snprintf(root, sizeof root, "physmap/%llx", static_cast<unsigned long long>(pe.phys_offset));
    const std::string start = strprintf("%llx", static_cast<unsigned long long>(pe.start_addr));
    const std::string sz = strprintf("%llx", static_cast<unsigned long long>(pe.size));
    const std::string nm(reinterpret_cast<const char*>(name), pe.namelen - 1);  // bytes, copied
    const std::pair<std::string, std::string> kv[3] = {{std::string(root) + "/start_addr", start},
                                                       {std::string(root) + "/size", sz},
                                                       {std::string(root) + "/name", nm}};
    for (const auto& [k, v] : kv) {
      info("    '" + k + "' = '" + v + "'");
      if (xenstore_.size() + k.size() + v.size() + 2 > kMaxXenstoreData)
        return fail(Errc::too_large, "physmap xenstore data over 4 MiB");
      xenstore_.insert(xenstore_.end(), reinterpret_cast<const std::byte*>(k.data()),
                       reinterpret_cast<const std::byte*>(k.data()) + k.size() + 1);
      xenstore_.insert(xenstore_.end(), reinterpret_cast<const std::byte*>(v.c_str()),
                       reinterpret_cast<const std::byte*>(v.c_str()) + v.size() + 1);
    }
  }
  return {};
}

Error Converter::pv_tail() {
  context_ = "PV tail";
  where_ = pos();
  u32 unmapped = 0;
  if (Error e = read(unmapped, "unmapped pfn count")) return e;
  if (unmapped) {
    // Discarded: skipped, never held, whatever the count says.
    if (Error e = skip(u64{unmapped} * (o_.width / 8), "unmapped pfns")) return e;
    info(strprintf("discarding %u bogus 'unmapped pfns'", unmapped));
  }
  for (u32 vcpu : online_) {
    where_ = pos();
    context_ = strprintf("PV tail, vcpu %u", vcpu);
    libxc::X86PvVcpuHeader vh{vcpu, 0};
    if (Error e = record_forward(libxc::X86_PV_VCPU_BASIC, &vh, sizeof vh, basic_len_, "vcpu basic context"))
      return e;
    info(strprintf("Got VCPU basic (size 0x%x)", basic_len_));
    if (extd_) {
      if (Error e = record_forward(libxc::X86_PV_VCPU_EXTENDED, &vh, sizeof vh, legacy::kExtendedCtx,
                                   "vcpu extended context"))
        return e;
      info("Got VCPU extd (size 0x80)");
    }
    if (xsave_len_) {
      u64 mq[2];
      if (Error e = read(mq, "vcpu xsave header")) return e;
      if (xsave_len_ < 16 || mq[1] != u64{xsave_len_} - 16)
        return fail(Errc::bad_record, strprintf("xsave size 0x%llx, expected xcnt length 0x%x - 16",
                                                static_cast<unsigned long long>(mq[1]), xsave_len_));
      if (Error e = record_forward(libxc::X86_PV_VCPU_XSAVE, &vh, sizeof vh, mq[1], "vcpu xsave context"))
        return e;
      info(strprintf("Got VCPU xsave (mask 0x%llx, size 0x%llx)", static_cast<unsigned long long>(mq[0]),
                     static_cast<unsigned long long>(mq[1])));
    }
  }
  context_ = "PV tail, shared info";
  where_ = pos();
  if (Error e = record_forward(libxc::SHARED_INFO, nullptr, 0, kPageSize, "shared info page")) return e;
  info("Got shinfo");
  record(libxc::END, nullptr, 0);
  return {};
}

Error Converter::hvm_tail() {
  context_ = "HVM tail";
  where_ = pos();
  u64 magic[3];
  if (Error e = read(magic, "HVM magic pfns")) return e;
  info(strprintf("Magic pfns: 0x%llx 0x%llx 0x%llx", static_cast<unsigned long long>(magic[0]),
                 static_cast<unsigned long long>(magic[1]), static_cast<unsigned long long>(magic[2])));
  write_hvm_params({5, magic[0], 6, magic[1], 1, magic[2]});
  u32 size = 0;
  if (Error e = read(size, "HVM context size")) return e;
  info(strprintf("Got HVM Context (0x%x bytes)", size));
  if (Error e = record_forward(libxc::HVM_CONTEXT, nullptr, 0, size, "HVM context")) return e;
  record(libxc::END, nullptr, 0);
  return {};
}

Error Converter::qemu() {
  context_ = "qemu record";
  where_ = pos();
  char sig[legacy::kQemuSignatureLen];
  if (Error e = read(sig, sizeof sig, "qemu signature")) return e;
  info("Qemu signature: " + py_bytes_repr(reinterpret_cast<const std::byte*>(sig), sizeof sig));
  if (std::memcmp(sig, legacy::kQemuSignature, sizeof sig) != 0)
    return fail(Errc::unsupported,
                "Unrecognised Qemu sig " +
                    quoted_bytes(reinterpret_cast<const std::byte*>(sig), sizeof sig, o_.python_bytes));
  u32 size = 0;
  if (Error e = read(size, "qemu record size")) return e;
  if (o_.libxl) {
    libxl::EmulatorHeader eh{libxl::kEmuUnknown, 0};
    return record_forward(libxl::EMULATOR_CONTEXT, &eh, sizeof eh, size, "qemu record");
  }
  // libxc output: the raw qemu record follows the libxc END, as libxl's
  // legacy restore expects it.
  out_.write(sig, sizeof sig);
  out_.put(size);
  tail_bytes_ = sizeof sig + sizeof size + u64{size};
  return forward(size, "qemu record");
}

}  // namespace

LegacyGuess detect_legacy(Source& src) {
  LegacyGuess g;
  Bytes b = src.peek(64);
  std::size_t at = 0;
  if (b.size() >= 48 && std::memcmp(b.data(), xl::kMagic, xl::kMagicLen) == 0) {
    g.xl = true;
    xl::Header h;
    std::memcpy(&h, b.data(), sizeof h);
    g.xl_libxl = h.mandatory_flags & xl::kFlagStreamV2;
    at = 48 + u64{h.optional_data_len};
  } else if (b.size() >= 64 && std::memcmp(b.data(), libvirt::kMagic, libvirt::kMagicLen) == 0) {
    g.libvirt = true;
    libvirt::Header h;
    std::memcpy(&h, b.data(), sizeof h);
    at = 64 + u64{h.xml_len};
    if (h.version != 1) {
      g.why = "the libvirt header says a v2 stream follows, not a legacy one";
      return g;
    }
  }
  if (at + 16 > kMaxPeek) {
    g.why = "the header before the stream is too long to look past; give --width and --guest";
    return g;
  }
  b = src.peek(at + 16);
  if (b.size() < at + 16) {
    g.why = "too short to be a legacy stream";
    return g;
  }
  const std::byte* p = b.data() + at;
  if (load<u64>(p) == ~u64{0} || (std::memcmp(p, "LibxlFmt", 8) == 0)) {
    g.why = "this is a v2/v3 stream, not a legacy one";
    return g;
  }
  auto plausible_marker = [](std::int32_t m) { return (m >= -20 && m <= 0) || (m > 0 && m <= 1024); };
  if (load<u32>(p + 4) == 0) {
    g.width = 64;
    if (load<u64>(p + 8) == ~u64{0}) g.guest = GuestType::pv;
    else if (plausible_marker(load<std::int32_t>(p + 8))) g.guest = GuestType::hvm;
  } else {
    g.width = 32;
    if (load<u32>(p + 4) == 0xffffffffu) g.guest = GuestType::pv;
    else if (plausible_marker(load<std::int32_t>(p + 4))) g.guest = GuestType::hvm;
  }
  if (g.guest == GuestType::unknown) {
    g.why = "the first bytes fit no legacy PV or HVM stream";
    return g;
  }
  g.ok = true;
  return g;
}

ConvertResult convert_legacy(Source& in, Sink& out, const ConvertOptions& opt) {
  if ((opt.width != 32 && opt.width != 64) || opt.guest == GuestType::unknown) {
    ConvertResult r;
    r.error.code = Errc::usage;
    r.error.detail = "toolstack width and guest type must be known";
    return r;
  }
  const std::uint64_t start = in.pos();
  Converter c(in, out, opt);
  ConvertResult r = c.run();
  // As verify(): an input that failed after handing out a view (a mapped
  // file that shrank reads as zeros) makes the whole output worthless.
  if (in.error() && r.error.code != Errc::io) [[unlikely]]
    r.error = Error::io(in.pos() - start, "reading the input failed", in.error());
  return r;
}

}  // namespace xsr
