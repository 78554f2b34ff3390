// One table of record types for both stream layers: spec name, the name the
// reference tools print, body length rules and whether the record is
// mandatory. Verbose output, errors and JSON all take names from here.
#pragma once

#include <cstdint>
#include <string_view>

#include "xsr/error.h"

namespace xsr {

struct RecordInfo {
  std::uint32_t type;
  std::string_view spec_name;  // as in the spec: "PAGE_DATA"
  std::string_view ref_name;   // as the reference verifier prints it: "Page data"
  std::uint64_t min_body;      // smallest valid body length (reference rules)
  std::uint64_t max_body;      // largest valid body length (reference rules)
  std::uint32_t multiple;      // body length must be a multiple of this (1: any)
  std::uint32_t min_version;   // libxc stream version that introduced it
};

constexpr std::uint64_t kAnyLength = ~std::uint64_t{0};

// Which of a type's length rules in the table a body breaks (none: all
// false). The verifier words each breach as the reference does.
struct BoundsBreach {
  bool too_short = false;     // under min_body
  bool too_long = false;      // over max_body
  bool not_multiple = false;  // not a multiple of `multiple`
  bool too_new = false;       // the type is newer than the libxc stream
};

// `version`: the libxc stream's version (for libxl records any: their
// min_version is 0).
constexpr BoundsBreach check_bounds(const RecordInfo& ri, std::uint64_t len, std::uint32_t version) {
  return {len<ri.min_body, len> ri.max_body, len % ri.multiple != 0, version < ri.min_version};
}

// Returns the table entry, or nullptr for a type the spec does not define.
const RecordInfo* record_info(Layer layer, std::uint32_t type);

// "PAGE_DATA", or "OPTIONAL_0x80000005" / "UNKNOWN_0x00000042" for types
// outside the table; never empty. For messages and JSON keys.
std::string record_name(Layer layer, std::uint32_t type);

// Name of a page type nibble ("NOTAB", "L1TAB", ..., "RESERVED_5").
std::string_view page_type_name(unsigned type);

// HVM param index name ("STORE_PFN"), empty when not known.
std::string_view hvm_param_name(std::uint64_t index);

}  // namespace xsr
