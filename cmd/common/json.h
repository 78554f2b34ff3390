// The JSON documents the programs write.
#pragma once

#include <string>

#include "xsr/verify.h"

namespace xsr::cli {

// The verdict and counts of one verification as one JSON document.
std::string stats_json(const std::string& input, const Error& err, const StreamStats& st,
                       double seconds);

std::string json_escape(const std::string& s);

}  // namespace xsr::cli
