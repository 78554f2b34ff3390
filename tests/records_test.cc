// The record-type table and error formatting.
#include "xsr/records.h"

#include <gtest/gtest.h>

#include "xsr/error.h"
#include "xsr/format.h"

namespace xsr {
namespace {

TEST(RecordTable, NamesEveryTypeOfBothSpecs) {
  EXPECT_EQ(record_name(Layer::libxc, libxc::PAGE_DATA), "PAGE_DATA");
  EXPECT_EQ(record_name(Layer::libxc, libxc::X86_MSR_POLICY), "X86_MSR_POLICY");
  EXPECT_EQ(record_name(Layer::libxl, libxl::CHECKPOINT_STATE), "CHECKPOINT_STATE");
  EXPECT_EQ(record_info(Layer::libxc, libxc::X86_TSC_INFO)->ref_name, "TSC info");
  EXPECT_EQ(record_info(Layer::libxl, libxl::EMULATOR_XENSTORE_DATA)->ref_name, "Emulator xenstore data");
  EXPECT_EQ(record_info(Layer::libxc, 0x13), nullptr);
}

TEST(RecordTable, NamesUnknownTypesByTheirOptionalBit) {
  EXPECT_EQ(record_name(Layer::libxc, 0x42), "UNKNOWN_0x00000042");
  EXPECT_EQ(record_name(Layer::libxc, 0x80000005), "OPTIONAL_0x80000005");
}

TEST(RecordTable, SaysWhichLengthBoundsABodyBreaks) {
  const RecordInfo& p2m = *record_info(Layer::libxc, libxc::X86_PV_P2M_FRAMES);
  EXPECT_TRUE(check_bounds(p2m, 4, 3).too_short);
  EXPECT_TRUE(check_bounds(p2m, 4, 3).not_multiple);
  const BoundsBreach ok = check_bounds(p2m, 24, 3);
  EXPECT_FALSE(ok.too_short || ok.too_long || ok.not_multiple || ok.too_new);
  EXPECT_TRUE(check_bounds(*record_info(Layer::libxc, libxc::END), 8, 3).too_long);
  const RecordInfo& cpuid = *record_info(Layer::libxc, libxc::X86_CPUID_POLICY);
  EXPECT_TRUE(check_bounds(cpuid, 48, 2).too_new);
  EXPECT_FALSE(check_bounds(cpuid, 48, 3).too_new);
  EXPECT_TRUE(check_bounds(cpuid, 30, 3).not_multiple);
  EXPECT_FALSE(check_bounds(*record_info(Layer::libxl, libxl::CHECKPOINT_STATE), 1, 0).too_new);
}

TEST(PageTypes, OnlyTablesAndNormalPagesCarryData) {
  for (unsigned t = 0; t < 16; ++t) {
    bool data = t <= 4 || (t >= 9 && t <= 0xc);
    EXPECT_EQ(libxc::page_type_has_data(t), data) << t;
    EXPECT_EQ(libxc::page_type_reserved(t), t >= 5 && t <= 8) << t;
  }
}

TEST(ErrorMessage, NamesOffsetRecordAndType) {
  Error e;
  e.code = Errc::bad_record;
  e.offset = 0x1a2b40;
  e.record = 17;
  e.type = libxc::PAGE_DATA;
  e.detail = "Expected 8 + 8 + 4096, got 4104";
  EXPECT_EQ(e.message(), "offset 0x1a2b40, record 17 (PAGE_DATA): Expected 8 + 8 + 4096, got 4104");
  e.layer = Layer::libxl;
  e.type = libxl::EMULATOR_CONTEXT;
  EXPECT_EQ(e.message(),
            "offset 0x1a2b40, libxl record 17 (EMULATOR_CONTEXT): Expected 8 + 8 + 4096, got 4104");
  Error h;
  h.code = Errc::bad_header;
  h.offset = 12;
  h.detail = "Unknown image version";
  EXPECT_EQ(h.message(), "offset 0xc: Unknown image version");
}

TEST(ExitCodes, StreamErrorsAreOneToolLimitsTwo) {
  EXPECT_EQ(exit_code(Errc::ok), 0);
  EXPECT_EQ(exit_code(Errc::truncated), 1);
  EXPECT_EQ(exit_code(Errc::unknown_record), 1);
  EXPECT_EQ(exit_code(Errc::io), 1);
  EXPECT_EQ(exit_code(Errc::unsupported), 2);
}

}  // namespace
}  // namespace xsr

TEST(XlHeader, TheConfigFollowsItsLengthInTheOptionalData) {
  using namespace std::string_literals;
  std::string_view cfg;
  const std::string data = "\x0c\0\0\0"s + "{\"a\":\"b\"}\n\0"s + "\0\0"s;  // 12 bytes, NUL, padding
  ASSERT_TRUE(xsr::xl::config_in_optional_data(data, data.size(), cfg));
  EXPECT_EQ(cfg, "{\"a\":\"b\"}\n");
  // Only the first part of the data at hand: the config is cut there.
  ASSERT_TRUE(xsr::xl::config_in_optional_data(std::string_view(data).substr(0, 8), data.size(), cfg));
  EXPECT_EQ(cfg, "{\"a\"");
  // A length past the data, or data too short for one: not xl's shape.
  EXPECT_FALSE(xsr::xl::config_in_optional_data("\x20\0\0\0{}"s, 6, cfg));
  EXPECT_FALSE(xsr::xl::config_in_optional_data("{}", 2, cfg));
}
