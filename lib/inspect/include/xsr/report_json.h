// The members the JSON documents of verify and inspect share, built one
// way: the error object and the compression object. (lib/inspect holds
// them because it already speaks nlohmann-json; cmd/common builds verify's
// document with them.)
#pragma once

#include <nlohmann/json.hpp>
#include <optional>

#include "xsr/compress.h"
#include "xsr/error.h"

namespace xsr {

// The first error: {"code", "offset", "record", "layer", "type", "message"}
// (record, layer and type only when the error is in a record), or null for
// none. docs/verify-json.md and docs/inspect-json.md describe it.
nlohmann::ordered_json error_json(const Error& err);

// {"codec", "compressed_bytes"} for a compressed input, or null.
nlohmann::ordered_json compression_json(const std::optional<Compression>& c);

}  // namespace xsr
