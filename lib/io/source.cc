// Opening a source: the engine for what the descriptor is (source.h).
#include "xsr/source.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "io_engine.h"
#include "xsr/sys.h"

namespace xsr {

int parse_fd(std::string_view spec) {
  if (spec.empty() || spec.size() > 9) return -1;
  int v = 0;
  for (char c : spec) {
    if (c < '0' || c > '9') return -1;
    v = v * 10 + (c - '0');
  }
  return v;
}

static IoMode env_mode(IoMode mode) {
  if (mode != IoMode::automatic) return mode;
  if (const char* e = std::getenv("XSR_IO")) {
    std::string_view v(e);
    if (v == "pread") return IoMode::pread;
    if (v == "mmap") return IoMode::mmap;
    if (v == "uring") return IoMode::uring;
    if (v == "read") return IoMode::read;
  }
  if (const char* e = std::getenv("XSR_NO_URING"); e && *e && std::string_view(e) != "0") return IoMode::read;
  return IoMode::automatic;
}

OpenResult source_from_fd(int fd, bool owned, IoMode mode) {
  OpenResult res;
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    res.error = Error::io(0, "fd " + std::to_string(fd), errno);
    if (owned) ::close(fd);
    return res;
  }
  mode = env_mode(mode);
  const IoCaps caps = fd_caps(fd);
  if (caps.has(IoCaps::seekable)) {
    off_t start = sys::lseek(fd, 0, SEEK_CUR);
    if (start < 0) start = 0;
    std::uint64_t size = static_cast<std::uint64_t>(st.st_size);
    if (!caps.has(IoCaps::file)) {  // a block device: its size is where it ends
      off_t end = sys::lseek(fd, 0, SEEK_END);
      size = end > 0 ? static_cast<std::uint64_t>(end) : 0;
      sys::lseek(fd, start, SEEK_SET);
    }
    if (mode == IoMode::mmap) res.source = detail::make_mmap_source(fd, owned, start, size);
    else res.source = detail::make_pread_source(fd, owned, start, size);
    return res;
  }
  if (mode == IoMode::pread || mode == IoMode::mmap) {
    // A forced path the input cannot take is refused, not swapped silently.
    res.error = Error::at(
        Errc::usage, 0,
        strprintf("--io %s reads a file or block device, not a %s", mode == IoMode::pread ? "pread" : "mmap",
                  caps.has(IoCaps::socket) ? "socket" : "pipe"));
    if (owned) ::close(fd);
    return res;
  }
  const bool stream = caps.has(IoCaps::pipe) || caps.has(IoCaps::socket);
  if (caps.has(IoCaps::pipe)) (void)::fcntl(fd, F_SETPIPE_SZ, 1 << 20);  // fewer, larger splices
  if (stream && mode != IoMode::read) {
    Result<std::unique_ptr<Source>> u = detail::make_uring_source(fd, owned, caps);
    if (u.ok()) {
      res.source = std::move(u.value());
      return res;
    }
    res.note = "io_uring unavailable (" + u.error().detail + "): plain reads";
  } else if (mode == IoMode::read) {
    res.note = "io_uring disabled: plain reads";
  }
  res.source = detail::make_read_source(fd, owned, caps);
  return res;
}

OpenResult open_source(std::string_view spec, IoMode mode) {
  if (spec == "-") return source_from_fd(0, false, mode);
  if (int fd = parse_fd(spec); fd >= 0) return source_from_fd(fd, false, mode);
  std::string path(spec);
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    OpenResult res;
    res.error = Error::io(0, path, errno);
    return res;
  }
  return source_from_fd(fd, true, mode);
}

}  // namespace xsr
