#include "xsr/cli.h"

#include <syslog.h>
#include <unistd.h>

#include <cstdio>
#include <ctime>

namespace xsr::cli {

Log::Log(const char* ident, bool verbose, bool quiet, bool use_syslog)
    : verbose_(verbose), quiet_(quiet), syslog_(use_syslog) {
  if (syslog_) openlog(ident, LOG_PID, LOG_USER);
}

Log::~Log() {
  if (syslog_) closelog();
}

void Log::info(const std::string& line) const {
  if (quiet_ || !verbose_) return;
  if (syslog_) {
    syslog(LOG_INFO, "%s", line.c_str());
    return;
  }
  // Line-buffered like the reference, so interleaving with stderr is sane.
  std::fputs(line.c_str(), stdout);
  std::fputc('\n', stdout);
  std::fflush(stdout);
}

void Log::err(const std::string& line) const {
  if (quiet_) return;
  if (syslog_) syslog(LOG_ERR, "%s", line.c_str());
  std::fputs(line.c_str(), stderr);
  std::fputc('\n', stderr);
}

std::uint64_t now_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<std::uint64_t>(ts.tv_nsec);
}

Progress::Progress(std::int64_t total, bool enabled)
    : total_(total), on_(enabled && isatty(2)), start_ns_(now_ns()) {}

Progress::~Progress() {
  if (on_ && last_ns_) std::fputs("\r\033[K", stderr);
}

void Progress::update(std::uint64_t done) {
  if (!on_) return;
  std::uint64_t t = now_ns();
  if (t - last_ns_ < 200000000ull) return;  // 5 redraws a second at most
  last_ns_ = t;
  double secs = static_cast<double>(t - start_ns_) / 1e9;
  double mbs = secs > 0 ? static_cast<double>(done) / 1e6 / secs : 0;
  if (total_ > 0) {
    int pct = static_cast<int>(100.0 * static_cast<double>(done) / static_cast<double>(total_));
    int fill = pct / 4;
    std::fprintf(stderr, "\r[%-25.*s] %3d%% %.1f/%.1f GiB %.0f MB/s", fill,
                 "#########################", pct, static_cast<double>(done) / (1 << 30),
                 static_cast<double>(total_) / (1 << 30), mbs);
  } else {
    std::fprintf(stderr, "\r%.2f GiB %.0f MB/s", static_cast<double>(done) / (1 << 30), mbs);
  }
  std::fflush(stderr);
}

std::string json_escape(const std::string& s) {
  std::string o;
  o.reserve(s.size() + 2);
  for (unsigned char c : s) {
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
    o += "  \"error\": {\"code\": \"";
    switch (err.code) {
      case Errc::truncated: o += "truncated"; break;
      case Errc::bad_header: o += "bad_header"; break;
      case Errc::bad_record: o += "bad_record"; break;
      case Errc::bad_padding: o += "bad_padding"; break;
      case Errc::unknown_record: o += "unknown_record"; break;
      case Errc::bad_order: o += "bad_order"; break;
      case Errc::too_large: o += "too_large"; break;
      case Errc::io: o += "io"; break;
      default: o += "other"; break;
    }
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
