// The JSON documents the programs write, all through nlohmann-json: keys in
// the order they are set (ordered_json), numbers as numbers, null for
// absent facts, and invalid UTF-8 (a file name, a message quoting input)
// replaced by U+FFFD so a document always parses.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "xsr/compress.h"
#include "xsr/verify.h"

namespace xsr::cli {

using Json = nlohmann::ordered_json;

// The text of `doc`: compact on one line (indent < 0) or indented by
// `indent` spaces, with a final newline.
std::string dump(const Json& doc, int indent = -1);

// The members of object `doc` without its braces, one a line indented by
// two spaces, each value compact: for a document whose first member a
// caller streams before them (inspect's record_list).
std::string dump_members(const Json& doc);

// x rounded to `places` decimals: the figures keep the precision they are
// measured to (microseconds, a thousandth of a MiB/s).
double rounded(double x, int places);

// The members a run's --stats-json adds for its outcome: "ok", and "error"
// (the message, or null when `error` is empty).
Json verdict_json(const std::string& error);

// `xsr verify --json`: the verdict and counts of one verification, and the
// input's compression when it had one (docs/verify-json.md, schema
// "xsr-verify/1").
// `after_end`: bytes of a file after a valid stream's END (-1: not known,
// as for a pipe, or not asked, as for an invalid stream).
Json verify_json(const std::string& input, const Error& err, const StreamStats& st, double seconds,
                 const std::optional<Compression>& compression = std::nullopt, std::int64_t after_end = -1);

}  // namespace xsr::cli
