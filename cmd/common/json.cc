#include "common/json.h"

#include <cstdio>

#include "xsr/records.h"

namespace xsr::cli {

std::string json_escape(const std::string& s) {
  std::string o;
  o.reserve(s.size() + 2);
  for (std::size_t i = 0; i < s.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c >= 0x80) {
      // Valid UTF-8 passes; any other byte (a config is untrusted input)
      // becomes U+FFFD, so the document always parses.
      const std::size_t n = c >= 0xf0 && c < 0xf5 ? 4 : c >= 0xe0 ? 3 : c >= 0xc2 && c < 0xe0 ? 2 : 0;
      bool ok = n > 0 && i + n <= s.size();
      for (std::size_t k = 1; ok && k < n; ++k) ok = (static_cast<unsigned char>(s[i + k]) & 0xc0) == 0x80;
      if (ok) {
        o.append(s, i, n);
        i += n - 1;
      } else {
        o += "\\ufffd";
      }
      continue;
    }
    switch (c) {
      case '"': o += "\\\""; break;
      case '\\': o += "\\\\"; break;
      case '\n': o += "\\n"; break;
      case '\t': o += "\\t"; break;
      default:
        if (c < 0x20) {
          char b[8];
          std::snprintf(b, sizeof b, "\\u%04x", c);
          o += b;
        } else {
          o += static_cast<char>(c);
        }
    }
  }
  return o;
}

namespace {
std::string num(std::uint64_t v) { return std::to_string(v); }
}  // namespace

std::string stats_json(const std::string& input, const Error& err, const StreamStats& st,
                       double seconds) {
  std::string o = "{\n";
  o += "  \"input\": \"" + json_escape(input) + "\",\n";
  o += "  \"verdict\": \"" + std::string(err ? "invalid" : "valid") + "\",\n";
  if (err) {
    o += "  \"error\": {\"code\": \"" + std::string(errc_name(err.code));
    o += "\", \"offset\": " + num(err.offset);
    if (err.record != kNoRecord) {
      o += ", \"record\": " + num(err.record) + ", \"layer\": \"" +
           (err.layer == Layer::libxc ? "libxc" : "libxl") + "\", \"type\": \"" +
           record_name(err.layer, err.type) + "\"";
    }
    o += ", \"message\": \"" + json_escape(err.message()) + "\"},\n";
  } else {
    o += "  \"error\": null,\n";
  }
  o += "  \"container\": \"" + st.container + "\",\n";
  o += "  \"libxc_version\": " + num(st.libxc_version) + ",\n";
  o += "  \"guest_type\": \"" +
       std::string(st.domain_type == libxc::kX86Pv    ? "pv"
                   : st.domain_type == libxc::kX86Hvm ? "hvm"
                                                      : "unknown") +
       "\",\n";
  o += "  \"xen_version\": \"" + num(st.xen_major) + "." + num(st.xen_minor) + "\",\n";
  o += "  \"legacy_converted\": " + std::string(st.legacy_converted ? "true" : "false") + ",\n";
  o += "  \"bytes\": " + num(st.bytes) + ",\n";
  o += "  \"records\": " + num(st.records) + ",\n";
  o += "  \"pages\": " + num(st.pages) + ",\n";
  o += "  \"checkpoints\": " + num(st.checkpoints) + ",\n";
  o += "  \"seconds\": " + std::to_string(seconds) + ",\n";
  auto types = [&](Layer layer, const auto& arr) {
    std::string t;
    bool first = true;
    for (std::uint32_t i = 0; i < arr.size(); ++i) {
      if (!arr[i].records) continue;
      t += std::string(first ? "" : ", ") + "\"" + record_name(layer, i) + "\": {\"records\": " +
           num(arr[i].records) + ", \"bytes\": " + num(arr[i].bytes) + "}";
      first = false;
    }
    return "{" + t + "}";
  };
  o += "  \"libxc_records\": " + types(Layer::libxc, st.libxc) + ",\n";
  o += "  \"libxl_records\": " + types(Layer::libxl, st.libxl) + ",\n";
  std::string opt;
  for (const auto& [type, tc] : st.optional)
    opt += std::string(opt.empty() ? "" : ", ") + "\"" + record_name(Layer::libxc, type) +
           "\": {\"records\": " + num(tc.records) + ", \"bytes\": " + num(tc.bytes) + "}";
  o += "  \"optional_records\": {" + opt + "},\n";
  std::string pt;
  for (unsigned t = 0; t < 16; ++t) {
    if (!st.pfns_by_type[t]) continue;
    pt += std::string(pt.empty() ? "" : ", ") + "\"" + std::string(page_type_name(t)) +
          "\": " + num(st.pfns_by_type[t]);
  }
  o += "  \"pfns_by_type\": {" + pt + "}\n";
  o += "}\n";
  return o;
}

}  // namespace xsr::cli
