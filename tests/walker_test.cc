// The stream walker: container detection, and the exact events (kinds,
// offsets, lengths, nesting) it emits for each container and for the
// checkpoint hand-back, over streams written here byte by byte; then the
// same walk over generated streams against what the verifier sees.
#include "xsr/walker.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "test_util.h"
#include "xsr/format.h"
#include "xsr/records.h"

namespace xsr::test {
namespace {

// A stream written field by field.
struct Builder {
  std::vector<std::byte> s;
  template <typename T>
  Builder& put(const T& v) {
    auto* b = reinterpret_cast<const std::byte*>(&v);
    s.insert(s.end(), b, b + sizeof v);
    return *this;
  }
  Builder& text(const std::string& t) {
    auto* b = reinterpret_cast<const std::byte*>(t.data());
    s.insert(s.end(), b, b + t.size());
    return *this;
  }
  Builder& libxc_headers() {
    put(libxc::ImageHeader{bswap64(libxc::kMarker), bswap32(libxc::kIdent), bswap32(3), 0, 0, 0});
    return put(libxc::DomainHeader{libxc::kX86Hvm, 12, 0, 4, 17});
  }
  Builder& libxl_header() { return put(libxl::Header{bswap64(libxl::kIdent), bswap32(libxl::kVersion), 0}); }
  Builder& xl_header(std::uint32_t flags, const std::string& config) {
    s.insert(s.end(), reinterpret_cast<const std::byte*>(xl::kMagic),
             reinterpret_cast<const std::byte*>(xl::kMagic) + xl::kMagicLen);
    put(xl::kByteOrder).put(flags).put(std::uint32_t{0}).put(static_cast<std::uint32_t>(config.size()));
    return text(config);
  }
  Builder& libvirt_header(const std::string& xml) {
    libvirt::Header h{};
    std::memcpy(h.magic, libvirt::kMagic, libvirt::kMagicLen);
    h.version = 2;
    h.xml_len = static_cast<std::uint32_t>(xml.size());
    return put(h).text(xml);
  }
  // A record with a body of `len` bytes of `fill`, zero-padded.
  Builder& record(std::uint32_t type, std::uint32_t len, std::uint8_t fill = 0) {
    put(RecordHeader{type, len});
    s.resize(s.size() + len, std::byte{fill});
    s.resize(s.size() + (padded(len) - len), std::byte{0});
    return *this;
  }
  // A PAGE_DATA record of these entries and a page per entry with data.
  Builder& page_data(const std::vector<PfnEntry>& entries) {
    std::uint32_t pages = 0;
    for (PfnEntry e : entries) pages += e.has_data();
    const auto len = static_cast<std::uint32_t>(8 + 8 * entries.size() + kPageSize * pages);
    put(RecordHeader{libxc::PAGE_DATA, len});
    put(libxc::PageDataHeader{static_cast<std::uint32_t>(entries.size()), 0});
    for (PfnEntry e : entries) put(e.raw);
    s.resize(s.size() + kPageSize * pages, std::byte{0x5a});
    return *this;
  }
};

std::string layer_name(Layer l) { return l == Layer::libxc ? "libxc" : "libxl"; }

std::string describe(const RecordEvent& ev) {
  std::string s = layer_name(ev.layer) + " " + record_name(ev.layer, ev.type) + " @" +
                  std::to_string(ev.offset) + " len " + std::to_string(ev.length);
  if (ev.nested) s += " nested";
  if (ev.in_checkpoint) s += " in-checkpoint";
  return s;
}

// Writes down every event as one line.
class Recorder final : public WalkConsumer {
 public:
  std::vector<std::string> log;
  bool want_config = true;
  bool want_entries = true;
  bool scan = false;
  std::uint64_t scanned = 0;
  // Fails this event (a line's first word) with bad_record when it comes.
  std::string fail_at;

  void layout(Container outer, Container inner) {
    log.push_back("layout " + std::string(container_name(outer)) + " " + std::string(container_name(inner)));
  }
  Error header(const HeaderEvent& ev) {
    return said("header " + std::string(header_name(ev.kind)) + " @" + std::to_string(ev.offset) + " len " +
                std::to_string(ev.length) + " fixed " + std::to_string(ev.fixed.size()));
  }
  bool wants_config() const { return want_config; }
  void config(Bytes chunk) {
    log.push_back("config " + std::string(reinterpret_cast<const char*>(chunk.data()), chunk.size()));
  }
  Error header_end(const HeaderEvent& ev) {
    return said("header_end " + std::string(header_name(ev.kind)) + " @" + std::to_string(ev.offset));
  }
  Error record_header(const RecordEvent& ev) { return said("record_header " + describe(ev)); }
  bool scan_body(const RecordEvent&) const { return scan; }
  void body_chunk(Bytes chunk, std::uint64_t) { scanned += chunk.size(); }
  Error record(const RecordEvent& ev, const Body& b, bool padding_ok) {
    return said("record " + describe(ev) + " have " + std::to_string(b.have) +
                (padding_ok ? "" : " bad-padding"));
  }
  bool page_data(const RecordEvent& ev, const PageDataReader& pd) {
    log.push_back("page_data @" + std::to_string(ev.offset) + " count " + std::to_string(pd.header().count));
    return want_entries && pd.pfns_fit();
  }
  void pfns(const RecordEvent&, Bytes chunk) {
    std::string l = "pfns";
    for (std::size_t i = 0; i < chunk.size() / 8; ++i)
      l.append(" ").append(std::to_string(PfnEntry::at(chunk, i).pfn()));
    log.push_back(l);
  }
  Error pages(const RecordEvent&, PageDataReader& pd) {
    // Reads one page, leaves the rest to be skipped.
    Bytes run;
    if (Error e = pd.next_pages(run, 1)) return e;
    return said("pages " + std::to_string(run.size()));
  }
  Error page_data_end(const RecordEvent& ev, bool padding_ok) {
    return said("page_data_end @" + std::to_string(ev.offset) + (padding_ok ? "" : " bad-padding"));
  }
  // Not written down (it follows every record): summed.
  void record_end(const RecordEvent&, std::uint64_t size) { ended += size; }
  std::uint64_t ended = 0;

 private:
  Error said(std::string line) {
    const bool stop = !fail_at.empty() && line.starts_with(fail_at);
    log.push_back(std::move(line));
    return stop ? Error::at(Errc::bad_record, 0, "stopped by the consumer") : Error{};
  }
};

struct Walked {
  Error e;
  std::vector<std::string> log;
  std::uint64_t pos = 0;    // bytes consumed
  std::uint64_t ended = 0;  // record_end's sizes, summed
};

Walked walk(const std::vector<std::byte>& data, Recorder r = {}) {
  auto src = memory_source(data);
  StreamWalker<Recorder> w(*src, r);
  Walked out;
  out.e = w.walk();
  out.log = r.log;
  out.pos = src->pos();
  out.ended = r.ended;
  return out;
}

using Lines = std::vector<std::string>;

TEST(StreamWalker, DetectsEachContainer) {
  struct Case {
    std::vector<std::byte> bytes;
    Container want;
  };
  GenOptions legacy;
  legacy.legacy = true;
  legacy.size = 64 << 10;
  const std::vector<Case> cases{
      {Builder().libxc_headers().s, Container::libxc},
      {Builder().libxl_header().s, Container::libxl},
      {Builder().xl_header(xl::kFlagStreamV2, "").s, Container::xl},
      {Builder().libvirt_header("").s, Container::libvirt},
      {gen_bytes(legacy), Container::legacy},
      {bytes_of("Xen save"), Container::xl},  // the first 8 bytes decide
      {bytes_of("Xen_saved domain, xl format"), Container::legacy},
      {bytes_of("LibxlFm"), Container::legacy},  // shorter than 8 bytes
      {{}, Container::legacy},
  };
  for (const Case& c : cases) {
    auto src = memory_source(c.bytes);
    EXPECT_EQ(detect_format(*src), c.want) << container_name(c.want);
    EXPECT_EQ(src->pos(), 0u) << "detection consumes nothing";
  }
  EXPECT_EQ(container_name(Container::libvirt), "libvirt");
  EXPECT_EQ(container_name(Container::legacy), "legacy");
  EXPECT_EQ(header_name(HeaderKind::libxc_domain), "libxc domain header");
}

TEST(StreamWalker, RefusesALegacyStreamBeforeReadingIt) {
  const Walked w = walk(bytes_of("not a stream at all"));
  EXPECT_EQ(w.e.code, Errc::bad_header);
  EXPECT_EQ(w.e.offset, 0u);
  EXPECT_EQ(w.e.record, kNoRecord);
  EXPECT_NE(w.e.detail.find("legacy"), std::string::npos);
  EXPECT_TRUE(w.log.empty());
  EXPECT_EQ(w.pos, 0u);
}

// Headers 0-40, STATIC_DATA_END @40, PAGE_DATA @48 (two entries, one
// page: 8 + 16 + 4096), HVM_PARAMS @4176, HVM_CONTEXT @4208 (5 bytes,
// padded), END @4224, then bytes that are not the stream's.
Builder bare_libxc() {
  Builder b;
  b.libxc_headers().record(libxc::STATIC_DATA_END, 0);
  b.page_data({PfnEntry::make(1, libxc::NOTAB), PfnEntry::make(2, libxc::XTAB)});
  b.record(libxc::HVM_PARAMS, 24).record(libxc::HVM_CONTEXT, 5).record(libxc::END, 0);
  return b;
}

TEST(StreamWalker, WalksABareLibxcStream) {
  Builder b = bare_libxc();
  b.text("trailing bytes");
  const Walked w = walk(b.s);
  ASSERT_FALSE(w.e) << w.e.message();
  const Lines want{
      "layout libxc libxc",
      "header libxc image header @0 len 24 fixed 24",
      "header_end libxc image header @0",
      "header libxc domain header @24 len 16 fixed 16",
      "header_end libxc domain header @24",
      "record_header libxc STATIC_DATA_END @40 len 0",
      "record libxc STATIC_DATA_END @40 len 0 have 0",
      "record_header libxc PAGE_DATA @48 len 4120",
      "page_data @48 count 2",
      "pfns 1 2",
      "pages 4096",
      "page_data_end @48",
      "record_header libxc HVM_PARAMS @4176 len 24",
      "record libxc HVM_PARAMS @4176 len 24 have 24",
      "record_header libxc HVM_CONTEXT @4208 len 5",
      "record libxc HVM_CONTEXT @4208 len 5 have 5",
      "record_header libxc END @4224 len 0",
      "record libxc END @4224 len 0 have 0",
  };
  EXPECT_EQ(w.log, want);
  EXPECT_EQ(w.pos, 4232u) << "nothing after END is read";
  EXPECT_EQ(w.ended, 4232u - 40u) << "every record, header and padding included";
}

// libxl header @0, LIBXC_CONTEXT @16, the libxc stream from @24 (headers,
// HVM_CONTEXT @64, END @80), EMULATOR_CONTEXT @88 (12 bytes), END @112.
Builder libxl_stream() {
  Builder b;
  b.libxl_header().record(libxl::LIBXC_CONTEXT, 0);
  b.libxc_headers().record(libxc::HVM_CONTEXT, 8).record(libxc::END, 0);
  b.record(libxl::EMULATOR_CONTEXT, 12).record(libxl::END, 0);
  return b;
}

// The events of libxl_stream() at stream offset `at`.
Lines libxl_events(std::uint64_t at) {
  auto o = [at](std::uint64_t off) { return std::string("@").append(std::to_string(at + off)); };
  return {
      "header libxl header " + o(0) + " len 16 fixed 16",
      "header_end libxl header " + o(0),
      "record_header libxl LIBXC_CONTEXT " + o(16) + " len 0",
      "record libxl LIBXC_CONTEXT " + o(16) + " len 0 have 0",
      "header libxc image header " + o(24) + " len 24 fixed 24",
      "header_end libxc image header " + o(24),
      "header libxc domain header " + o(48) + " len 16 fixed 16",
      "header_end libxc domain header " + o(48),
      "record_header libxc HVM_CONTEXT " + o(64) + " len 8 nested",
      "record libxc HVM_CONTEXT " + o(64) + " len 8 nested have 8",
      "record_header libxc END " + o(80) + " len 0 nested",
      "record libxc END " + o(80) + " len 0 nested have 0",
      "record_header libxl EMULATOR_CONTEXT " + o(88) + " len 12",
      "record libxl EMULATOR_CONTEXT " + o(88) + " len 12 have 12",
      "record_header libxl END " + o(112) + " len 0",
      "record libxl END " + o(112) + " len 0 have 0",
  };
}

Lines concat(Lines a, const Lines& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

TEST(StreamWalker, WalksALibxlStreamWithItsNestedLibxcStream) {
  Builder b = libxl_stream();
  b.text("after");
  const Walked w = walk(b.s);
  ASSERT_FALSE(w.e) << w.e.message();
  EXPECT_EQ(w.log, concat({"layout libxl libxl"}, libxl_events(0)));
  EXPECT_EQ(w.pos, 120u);
}

TEST(StreamWalker, WalksAnXlHeaderInFrontOfLibxl) {
  Builder b;
  b.xl_header(xl::kFlagStreamV2 | xl::kFlagJson, "{\"a\":1}");  // 48 + 7 bytes: what follows is unaligned
  const Builder inner = libxl_stream();
  b.s.insert(b.s.end(), inner.s.begin(), inner.s.end());
  const Walked w = walk(b.s);
  ASSERT_FALSE(w.e) << w.e.message();
  EXPECT_EQ(w.log, concat({"header xl header @0 len 55 fixed 48", "config {\"a\":1}",
                           "header_end xl header @0", "layout xl libxl"},
                          libxl_events(55)));
  EXPECT_EQ(w.pos, 55u + 120u);
}

TEST(StreamWalker, WalksAnXlHeaderInFrontOfLibxc) {
  Builder b;
  b.xl_header(xl::kFlagJson, "{}");  // no v2 flag: a libxc stream follows
  b.libxc_headers().record(libxc::END, 0);
  Recorder r;
  r.want_config = false;  // skipped, not shown
  const Walked w = walk(b.s, r);
  ASSERT_FALSE(w.e) << w.e.message();
  const Lines want{
      "header xl header @0 len 50 fixed 48",
      "header_end xl header @0",
      "layout xl libxc",
      "header libxc image header @50 len 24 fixed 24",
      "header_end libxc image header @50",
      "header libxc domain header @74 len 16 fixed 16",
      "header_end libxc domain header @74",
      "record_header libxc END @90 len 0",
      "record libxc END @90 len 0 have 0",
  };
  EXPECT_EQ(w.log, want);
  EXPECT_EQ(w.pos, 98u);
}

TEST(StreamWalker, WalksALibvirtHeaderInFrontOfLibxl) {
  Builder b;
  b.libvirt_header(std::string("<domain/>") + '\0');  // 64 + 10 bytes
  const Builder inner = libxl_stream();
  b.s.insert(b.s.end(), inner.s.begin(), inner.s.end());
  const Walked w = walk(b.s);
  ASSERT_FALSE(w.e) << w.e.message();
  EXPECT_EQ(w.log, concat({"header libvirt header @0 len 74 fixed 64", std::string("config <domain/>") + '\0',
                           "header_end libvirt header @0", "layout libvirt libxl"},
                          libxl_events(74)));
  EXPECT_EQ(w.pos, 74u + 120u);
}

TEST(StreamWalker, RefusesALibvirtHeaderInFrontOfALegacyStream) {
  Builder b;
  b.libvirt_header("");
  b.s[16] = std::byte{1};  // version 1
  const Walked w = walk(b.s);
  EXPECT_EQ(w.e.code, Errc::bad_header);
  EXPECT_EQ(w.e.offset, 16u);
  EXPECT_TRUE(w.log.empty());
}

// libxl header @0, LIBXC_CONTEXT @16, libxc headers @24, STATIC_DATA_END
// @64, CHECKPOINT @72: back to libxl, CHECKPOINT_STATE @80 (4 bytes),
// CHECKPOINT_END @96: on to libxc, HVM_CONTEXT @104, CHECKPOINT @120: back
// to libxl, CHECKPOINT_END @128: on to libxc, END @136; libxl
// EMULATOR_CONTEXT @144, END @160.
TEST(StreamWalker, HandsBackAtCheckpoint) {
  Builder b;
  b.libxl_header().record(libxl::LIBXC_CONTEXT, 0);
  b.libxc_headers().record(libxc::STATIC_DATA_END, 0).record(libxc::CHECKPOINT, 0);
  b.record(libxl::CHECKPOINT_STATE, 4).record(libxl::CHECKPOINT_END, 0);
  b.record(libxc::HVM_CONTEXT, 8).record(libxc::CHECKPOINT, 0);
  b.record(libxl::CHECKPOINT_END, 0);
  b.record(libxc::END, 0);
  b.record(libxl::EMULATOR_CONTEXT, 8).record(libxl::END, 0);
  const Walked w = walk(b.s);
  ASSERT_FALSE(w.e) << w.e.message();
  const Lines want{
      "layout libxl libxl",
      "header libxl header @0 len 16 fixed 16",
      "header_end libxl header @0",
      "record_header libxl LIBXC_CONTEXT @16 len 0",
      "record libxl LIBXC_CONTEXT @16 len 0 have 0",
      "header libxc image header @24 len 24 fixed 24",
      "header_end libxc image header @24",
      "header libxc domain header @48 len 16 fixed 16",
      "header_end libxc domain header @48",
      "record_header libxc STATIC_DATA_END @64 len 0 nested",
      "record libxc STATIC_DATA_END @64 len 0 nested have 0",
      "record_header libxc CHECKPOINT @72 len 0 nested",
      "record libxc CHECKPOINT @72 len 0 nested have 0",
      "record_header libxl CHECKPOINT_STATE @80 len 4 in-checkpoint",
      "record libxl CHECKPOINT_STATE @80 len 4 in-checkpoint have 4",
      "record_header libxl CHECKPOINT_END @96 len 0 in-checkpoint",
      "record libxl CHECKPOINT_END @96 len 0 in-checkpoint have 0",
      "record_header libxc HVM_CONTEXT @104 len 8 nested",
      "record libxc HVM_CONTEXT @104 len 8 nested have 8",
      "record_header libxc CHECKPOINT @120 len 0 nested",
      "record libxc CHECKPOINT @120 len 0 nested have 0",
      "record_header libxl CHECKPOINT_END @128 len 0 in-checkpoint",
      "record libxl CHECKPOINT_END @128 len 0 in-checkpoint have 0",
      "record_header libxc END @136 len 0 nested",
      "record libxc END @136 len 0 nested have 0",
      "record_header libxl EMULATOR_CONTEXT @144 len 8",
      "record libxl EMULATOR_CONTEXT @144 len 8 have 8",
      "record_header libxl END @160 len 0",
      "record libxl END @160 len 0 have 0",
  };
  EXPECT_EQ(w.log, want);
  EXPECT_EQ(w.pos, 168u);
}

TEST(StreamWalker, KeepsABareLibxcCheckpointInLibxc) {
  Builder b;
  b.libxc_headers().record(libxc::CHECKPOINT, 0).record(libxc::HVM_CONTEXT, 8).record(libxc::END, 0);
  const Walked w = walk(b.s);
  ASSERT_FALSE(w.e) << w.e.message();
  ASSERT_EQ(w.log.size(), 11u);
  EXPECT_EQ(w.log[5], "record_header libxc CHECKPOINT @40 len 0");
  EXPECT_EQ(w.log[7], "record_header libxc HVM_CONTEXT @48 len 8");
  EXPECT_EQ(w.log[9], "record_header libxc END @64 len 0");
}

TEST(StreamWalker, StaysInLibxlAtACheckpointEndOutsideACheckpoint) {
  Builder b;
  b.libxl_header().record(libxl::CHECKPOINT_END, 0).record(libxl::END, 0);
  const Walked w = walk(b.s);
  ASSERT_FALSE(w.e) << w.e.message();
  const Lines want{
      "layout libxl libxl",
      "header libxl header @0 len 16 fixed 16",
      "header_end libxl header @0",
      "record_header libxl CHECKPOINT_END @16 len 0",
      "record libxl CHECKPOINT_END @16 len 0 have 0",
      "record_header libxl END @24 len 0",
      "record libxl END @24 len 0 have 0",
  };
  EXPECT_EQ(w.log, want);
}

TEST(StreamWalker, HandsOverAPageDataTooShortForAnEntryWhole) {
  Builder b;
  b.libxc_headers();
  b.put(RecordHeader{libxc::PAGE_DATA, 8}).put(libxc::PageDataHeader{0, 0});
  b.record(libxc::END, 0);
  const Walked w = walk(b.s);
  ASSERT_FALSE(w.e) << w.e.message();
  ASSERT_EQ(w.log.size(), 9u);
  EXPECT_EQ(w.log[6], "record libxc PAGE_DATA @40 len 8 have 8");
}

TEST(StreamWalker, SkipsTheEntriesAConsumerDoesNotWant) {
  Builder b;
  b.libxc_headers();
  b.page_data({PfnEntry::make(7, libxc::NOTAB), PfnEntry::make(8, libxc::NOTAB)});
  b.record(libxc::END, 0);
  Recorder r;
  r.want_entries = false;
  const Walked w = walk(b.s, r);
  ASSERT_FALSE(w.e) << w.e.message();
  ASSERT_EQ(w.log.size(), 11u);
  EXPECT_EQ(w.log[6], "page_data @40 count 2");
  EXPECT_EQ(w.log[7], "pages 4096");  // the entries were skipped on the way to the pages
  EXPECT_EQ(w.log[8], "page_data_end @40");
  EXPECT_EQ(w.pos, b.s.size());
}

TEST(StreamWalker, ScansALargeBodyOnRequest) {
  Builder b;
  b.libxl_header().record(libxl::EMULATOR_CONTEXT, 3 << 20, 0x11).record(libxl::END, 0);
  Recorder r;
  r.scan = true;
  auto src = memory_source(b.s);
  StreamWalker<Recorder> w(*src, r);
  ASSERT_FALSE(w.walk());
  EXPECT_EQ(r.scanned, 3u << 20);
  EXPECT_EQ(r.log[4], "record libxl EMULATOR_CONTEXT @16 len 3145728 have 64");
}

TEST(StreamWalker, StopsAtAConsumerError) {
  Recorder r;
  r.fail_at = "record libxc HVM_PARAMS";
  const Walked w = walk(bare_libxc().s, r);
  EXPECT_EQ(w.e.code, Errc::bad_record);
  EXPECT_EQ(w.log.back(), "record libxc HVM_PARAMS @4176 len 24 have 24");
  EXPECT_EQ(w.pos, 4208u);
  EXPECT_EQ(w.ended, 4176u - 40u) << "the refused record has no record_end";
}

TEST(StreamWalker, ReportsATruncatedRecordWithItsIndex) {
  std::vector<std::byte> s = bare_libxc().s;
  s.resize(4176 + 8 + 4);  // into HVM_PARAMS's body
  const Walked w = walk(s);
  EXPECT_EQ(w.e.code, Errc::truncated);
  EXPECT_EQ(w.e.record, 2u);
  EXPECT_EQ(w.e.type, libxc::HVM_PARAMS);
}

// Over every generated kind, the walker's records are the verifier's, and
// every libxc CHECKPOINT of a libxl stream hands back once.
TEST(StreamWalker, MeetsTheRecordsTheVerifierSees) {
  struct Lister : StreamObserver {
    std::vector<std::string> recs;
    void record(Layer l, std::uint32_t t, std::uint64_t off, std::uint64_t len, Bytes) override {
      recs.push_back(layer_name(l) + " " + record_name(l, t) + " @" + std::to_string(off) + " len " +
                     std::to_string(len));
    }
  };
  struct Records : WalkConsumer {
    std::vector<std::string> recs;
    std::uint64_t hand_backs = 0;
    void note(const RecordEvent& ev) {
      recs.push_back(layer_name(ev.layer) + " " + record_name(ev.layer, ev.type) + " @" +
                     std::to_string(ev.offset) + " len " + std::to_string(ev.length));
      if (ev.layer == Layer::libxl && ev.in_checkpoint && ev.type == libxl::CHECKPOINT_END) ++hand_backs;
    }
    Error record(const RecordEvent& ev, const Body&, bool) {
      note(ev);
      return {};
    }
    Error page_data_end(const RecordEvent& ev, bool) {
      note(ev);
      return {};
    }
  };
  for (auto c : {GenOptions::Container::libxc, GenOptions::Container::libxl, GenOptions::Container::xl}) {
    for (std::uint32_t cp : {0u, 3u}) {
      SCOPED_TRACE(testing::Message() << "container " << int(c) << " checkpoints " << cp);
      GenOptions o;
      o.container = c;
      o.checkpoints = cp;
      o.size = 256 << 10;
      o.batch = 16;
      const auto data = gen_bytes(o);

      Lister lister;
      auto vsrc = memory_source(data);
      VerifyOptions vo;
      vo.format = Format::autodetect;
      vo.observer = &lister;
      StreamStats st;
      ASSERT_FALSE(verify(*vsrc, vo, st));

      Records rec;
      auto src = memory_source(data);
      StreamWalker<Records> w(*src, rec);
      ASSERT_FALSE(w.walk());
      EXPECT_EQ(rec.recs, lister.recs);
      EXPECT_EQ(src->pos(), st.bytes);
      EXPECT_EQ(rec.hand_backs, c == GenOptions::Container::libxc ? 0u : st.checkpoints);
    }
  }
}

TEST(PfnEntry, DecodesEachField) {
  const PfnEntry e{0xa012'3456'789a'bcdeull};
  EXPECT_EQ(e.pfn(), 0x2'3456'789a'bcdeull);
  EXPECT_EQ(e.type(), 0xau);
  EXPECT_EQ(e.type_bits(), 0xa000'0000'0000'0000ull);
  EXPECT_EQ(e.reserved_bits(), 0x0010'0000'0000'0000ull);
  EXPECT_FALSE(e.type_reserved());
  EXPECT_TRUE(e.has_data());  // L2TAB_PIN
  EXPECT_TRUE(PfnEntry::make(5, 6).type_reserved());
  EXPECT_FALSE(PfnEntry::make(5, libxc::XTAB).has_data());
  EXPECT_EQ(PfnEntry::make(0x1234, libxc::L1TAB).raw, 0x1000'0000'0000'1234ull);
  std::vector<std::byte> chunk(24);
  store(chunk.data(), PfnEntry::make(1, libxc::NOTAB).raw);
  store(chunk.data() + 8, PfnEntry::make(2, libxc::XALLOC).raw);
  store(chunk.data() + 16, PfnEntry::make(3, libxc::L4TAB).raw);
  EXPECT_EQ(PfnEntry::at(chunk, 2).pfn(), 3u);
  EXPECT_EQ(count_data_pages(chunk), 2u);
}

}  // namespace
}  // namespace xsr::test
