#include "common/cli.h"
#include "xsr/units.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

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

std::uint64_t now_ns() { return mono_ns(); }

Progress::Progress(std::int64_t total, bool enabled)
    : total_(total), on_(enabled && isatty(2) && (total < 0 || total > kMinBytes)), start_ns_(now_ns()) {}

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

namespace {
char g_signal_path[4096];

void on_fatal_signal(int sig) {
  // Async-signal-safe: unlink, then die of the same signal.
  if (g_signal_path[0]) ::unlink(g_signal_path);
  ::signal(sig, SIG_DFL);
  ::raise(sig);
}
}  // namespace

void remove_on_signal(const std::string& temp_path) {
  if (temp_path.size() >= sizeof g_signal_path) return;
  std::memcpy(g_signal_path, temp_path.c_str(), temp_path.size() + 1);
  struct sigaction sa {};
  sa.sa_handler = on_fatal_signal;
  sigemptyset(&sa.sa_mask);
  for (int s : {SIGTERM, SIGINT, SIGHUP}) sigaction(s, &sa, nullptr);
}

void ignore_sigpipe() { ::signal(SIGPIPE, SIG_IGN); }

Output::~Output() {
  if (!done_) abort();
}

bool Output::open(const std::string& spec, std::string* err) {
  if (spec == "-" || parse_fd(spec) >= 0) {
    fd_ = spec == "-" ? 1 : parse_fd(spec);
    name_ = spec == "-" ? "<stdout>" : "fd " + spec;
    struct stat st;
    if (::fstat(fd_, &st) != 0) {
      *err = name_ + ": " + std::strerror(errno);
      return false;
    }
    regular_ = S_ISREG(st.st_mode);
    if (regular_) start_ = ::lseek(fd_, 0, SEEK_CUR);
    return true;
  }
  name_ = path_ = spec;
  struct stat st;
  // Only a regular file (or a new one) goes through a temporary name; a
  // FIFO or device path is written in place.
  if (::stat(spec.c_str(), &st) == 0 && !S_ISREG(st.st_mode)) {
    fd_ = ::open(spec.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd_ < 0) {
      *err = spec + ": " + std::strerror(errno);
      return false;
    }
    owned_ = true;
    return true;
  }
  tmp_ = spec + ".xsr-tmp." + std::to_string(::getpid());
  fd_ = ::open(tmp_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd_ < 0) {
    *err = tmp_ + ": " + std::strerror(errno);
    tmp_.clear();
    return false;
  }
  owned_ = regular_ = true;
  remove_on_signal(tmp_);
  return true;
}

bool Output::commit(std::string* err) {
  done_ = true;
  if (owned_ && ::close(fd_) != 0) {
    *err = name_ + ": " + std::strerror(errno);
    fd_ = -1;
    if (!tmp_.empty()) ::unlink(tmp_.c_str());
    return false;
  }
  fd_ = -1;
  if (!tmp_.empty() && ::rename(tmp_.c_str(), path_.c_str()) != 0) {
    *err = "rename to " + path_ + ": " + std::strerror(errno);
    ::unlink(tmp_.c_str());
    return false;
  }
  return true;
}

void Output::abort() {
  done_ = true;
  if (!tmp_.empty()) {
    ::unlink(tmp_.c_str());
  } else if (regular_ && fd_ >= 0 && !owned_) {
    // A file handed over as a descriptor: cut back what this run wrote.
    if (::ftruncate(fd_, start_) == 0) ::lseek(fd_, start_, SEEK_SET);
  }
  if (owned_ && fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

}  // namespace xsr::cli
