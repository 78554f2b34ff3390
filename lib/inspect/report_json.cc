#include "xsr/report_json.h"

#include "xsr/records.h"

namespace xsr {

nlohmann::ordered_json error_json(const Error& err) {
  if (!err) return nullptr;
  nlohmann::ordered_json e;
  e["code"] = errc_name(err.code);
  e["offset"] = err.offset;
  if (err.record != kNoRecord) {
    e["record"] = err.record;
    e["layer"] = err.layer == Layer::libxc ? "libxc" : "libxl";
    e["type"] = record_name(err.layer, err.type);
  }
  e["message"] = err.message();
  return e;
}

nlohmann::ordered_json compression_json(const std::optional<Compression>& c) {
  if (!c) return nullptr;
  return {{"codec", std::string(codec_name(c->codec))}, {"compressed_bytes", c->compressed_bytes}};
}

}  // namespace xsr
