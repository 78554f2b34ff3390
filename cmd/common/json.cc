#include "common/json.h"

#include <cmath>

#include "xsr/records.h"
#include "xsr/report_json.h"

namespace xsr::cli {

std::string dump(const Json& doc, int indent) {
  return doc.dump(indent, ' ', false, Json::error_handler_t::replace) + "\n";
}

std::string dump_members(const Json& doc) {
  std::string o;
  for (const auto& [key, value] : doc.items())
    o += (o.empty() ? "  " : ",\n  ") + Json(key).dump(-1, ' ', false, Json::error_handler_t::replace) +
         ": " + value.dump(-1, ' ', false, Json::error_handler_t::replace);
  return o;
}

double rounded(double x, int places) {
  const double scale = std::pow(10.0, places);
  return std::round(x * scale) / scale;
}

Json verdict_json(const std::string& error) {
  Json j;
  j["ok"] = error.empty();
  j["error"] = error.empty() ? Json(nullptr) : Json(error);
  return j;
}

namespace {

// {"TYPE": {"records": N, "bytes": N}} for the types seen.
template <typename Counts>
Json type_counts(Layer layer, const Counts& counts) {
  Json j = Json::object();
  for (std::uint32_t i = 0; i < counts.size(); ++i)
    if (counts[i].records)
      j[record_name(layer, i)] = {{"records", counts[i].records}, {"bytes", counts[i].bytes}};
  return j;
}

}  // namespace

Json verify_json(const std::string& input, const Error& err, const StreamStats& st, double seconds,
                 const std::optional<Compression>& compression, std::int64_t after_end) {
  Json j;
  j["schema"] = "xsr-verify/1";
  j["input"] = input;
  j["verdict"] = err ? "invalid" : "valid";
  j["error"] = error_json(err);
  j["container"] = st.container.empty() ? Json(nullptr) : Json(st.container);
  j["libxc_version"] = st.libxc_version ? Json(st.libxc_version) : Json(nullptr);
  j["guest_type"] = st.domain_type == libxc::kX86Pv    ? "pv"
                    : st.domain_type == libxc::kX86Hvm ? "hvm"
                                                       : "unknown";
  // Xen 0.0 is what a converted legacy stream says: no version known.
  j["xen_version"] =
      st.xen_major ? Json(std::to_string(st.xen_major) + "." + std::to_string(st.xen_minor)) : Json(nullptr);
  j["legacy_converted"] = st.legacy_converted;
  j["bytes"] = st.bytes;
  j["bytes_read"] = st.bytes_read;
  j["bytes_after_end"] = after_end >= 0 ? Json(after_end) : Json(nullptr);
  j["compression"] = compression_json(compression);
  j["records"] = st.records;
  j["pages"] = st.pages;
  j["checkpoints"] = st.checkpoints;
  j["seconds"] = rounded(seconds, 6);
  j["libxc_records"] = type_counts(Layer::libxc, st.libxc);
  j["libxl_records"] = type_counts(Layer::libxl, st.libxl);
  Json opt = Json::object();
  for (const auto& [type, tc] : st.optional)
    opt[record_name(Layer::libxc, type)] = {{"records", tc.records}, {"bytes", tc.bytes}};
  j["optional_records"] = opt;
  Json pt = Json::object();
  for (unsigned t = 0; t < st.pfns_by_type.size(); ++t)
    if (st.pfns_by_type[t]) pt[std::string(page_type_name(t))] = st.pfns_by_type[t];
  j["pfns_by_type"] = pt;
  return j;
}

}  // namespace xsr::cli
