#include "xsr/net.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>

#include "xsr/sys.h"
#include "xsr/units.h"

namespace xsr::net {
namespace {

std::uint64_t mono_ms() { return mono_ns() / 1000000; }

// A failure at address `a`: "TEXT: why".
[[gnu::cold]] Error at_address(const Address& a, std::string why, int e = 0) {
  Error out = Error::at(Errc::io, 0, a.text + ": " + std::move(why));
  out.cause = e;
  return out;
}

Error unix_addr(const Address& a, sockaddr_un& sa) {
  std::memset(&sa, 0, sizeof sa);
  sa.sun_family = AF_UNIX;
  if (a.path.size() >= sizeof sa.sun_path)
    return at_address(a, "socket path too long (" + std::to_string(a.path.size()) + " bytes, at most " +
                             std::to_string(sizeof sa.sun_path - 1) + ")");
  std::memcpy(sa.sun_path, a.path.data(), a.path.size());
  return {};
}

// getaddrinfo for a TCP stream address (freed by the caller).
Result<addrinfo*> resolve(const Address& a, bool passive) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV | (passive ? AI_PASSIVE : 0);
  addrinfo* res = nullptr;
  int r = ::getaddrinfo(a.host.empty() ? nullptr : a.host.c_str(), a.port.c_str(), &hints, &res);
  if (r != 0) return at_address(a, ::gai_strerror(r));
  return res;
}

void tune_tcp(int fd) {
  int one = 1;
  // Records go out whole, header and body together; no Nagle delay on the
  // small header writes between spliced bodies.
  (void)::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

std::string name_of(const sockaddr* sa) {
  char host[NI_MAXHOST], serv[NI_MAXSERV];
  socklen_t len = sa->sa_family == AF_INET6 ? sizeof(sockaddr_in6) : sizeof(sockaddr_in);
  if (::getnameinfo(sa, len, host, sizeof host, serv, sizeof serv, NI_NUMERICHOST | NI_NUMERICSERV) != 0)
    return "?";
  if (sa->sa_family == AF_INET6) return std::string("[") + host + "]:" + serv;
  return std::string(host) + ":" + serv;
}

// The outcome of connect(2) that returned `e`. A connect interrupted by a
// signal goes on in the background: wait for it rather than call connect
// again (that gives EALREADY). A loopback connect to a port in the
// ephemeral range can meet itself (the kernel picks the very port as the
// source while nobody listens yet) and "succeed": that is a refusal too.
int finish_connect(int fd, int e) {
  if (e == EINTR || e == EINPROGRESS) {
    if (int w = sys::wait_fd(fd, POLLOUT)) return w;
    socklen_t len = sizeof e;
    if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &len) != 0) return errno;
  }
  if (e != 0) return e;
  sockaddr_storage a{}, b{};
  socklen_t la = sizeof a, lb = sizeof b;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &la) == 0 &&
      ::getpeername(fd, reinterpret_cast<sockaddr*>(&b), &lb) == 0 && la == lb && a.ss_family != AF_UNIX &&
      std::memcmp(&a, &b, la) == 0)
    return ECONNREFUSED;
  return 0;
}

}  // namespace

Result<Address> parse_address(std::string_view spec) {
  Address a;
  a.text = std::string(spec);
  auto bad = [&](const std::string& why) { return Error::at(Errc::usage, 0, "'" + a.text + "': " + why); };
  if (spec.starts_with("unix:")) {
    a.is_unix = true;
    a.path = std::string(spec.substr(5));
    if (a.path.empty()) return bad("no socket path after 'unix:'");
    return a;
  }
  std::string_view host, port;
  if (spec.starts_with("[")) {
    std::size_t close = spec.find(']');
    if (close == std::string_view::npos || close + 1 >= spec.size() || spec[close + 1] != ':')
      return bad("expected [IPV6]:PORT");
    host = spec.substr(1, close - 1);
    port = spec.substr(close + 2);
  } else {
    std::size_t colon = spec.rfind(':');
    if (colon == std::string_view::npos || spec.find(':') != colon)
      return bad("expected HOST:PORT, [IPV6]:PORT or unix:PATH");
    host = spec.substr(0, colon);
    port = spec.substr(colon + 1);
  }
  bool digits = !port.empty() && port.size() <= 5;
  unsigned long v = 0;
  for (char c : port) {
    if (c < '0' || c > '9') digits = false;
    else v = v * 10 + static_cast<unsigned long>(c - '0');
  }
  if (!digits || v > 65535) return bad("bad port '" + std::string(port) + "'");
  a.host = std::string(host);
  a.port = std::string(port);
  return a;
}

namespace {

Result<Listener> listen_unix(const Address& a) {
  sockaddr_un sa;
  if (Error e = unix_addr(a, sa)) return e;
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return at_address(a, std::string("socket: ") + std::strerror(errno), errno);
  // A socket file left by an earlier run would make bind fail; anything
  // else at the path is not ours to remove.
  struct stat st;
  if (::lstat(a.path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode)) ::unlink(a.path.c_str());
  if (::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0 || ::listen(fd, 4) != 0) {
    const int e = errno;
    ::close(fd);
    return at_address(a, std::strerror(e), e);
  }
  return Listener{fd, a.text};
}

}  // namespace

Result<Listener> listen_on(const Address& a) {
  if (a.is_unix) return listen_unix(a);
  Result<addrinfo*> res = resolve(a, true);
  if (!res.ok()) return res.error();
  int fd = -1, last = 0;
  for (addrinfo* ai = res.value(); ai; ai = ai->ai_next) {
    fd = ::socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0) {
      last = errno;
      continue;
    }
    int one = 1;
    (void)::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (::bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && ::listen(fd, 4) == 0) break;
    last = errno;
    ::close(fd);
    fd = -1;
  }
  ::freeaddrinfo(res.value());
  if (fd < 0) return at_address(a, last ? std::strerror(last) : "no address", last);
  Listener l{fd, a.text};
  sockaddr_storage ss;
  socklen_t len = sizeof ss;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) == 0)
    l.bound = name_of(reinterpret_cast<sockaddr*>(&ss));
  return l;
}

Result<int> accept_one(int lfd, int timeout_ms) {
  for (;;) {
    if (int e = sys::wait_fd(lfd, POLLIN, timeout_ms)) {
      if (e == ETIMEDOUT) {
        Error out = Error::at(Errc::io, 0, "no connection within " + format_seconds(timeout_ms));
        out.cause = e;
        return out;
      }
      return Error::io(0, "accept", e);
    }
    int fd = ::accept4(lfd, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd >= 0) {
      sockaddr_storage ss;
      socklen_t len = sizeof ss;
      if (::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) == 0 && ss.ss_family != AF_UNIX)
        tune_tcp(fd);
      return fd;
    }
    if (errno == EINTR || errno == EAGAIN || errno == ECONNABORTED) continue;
    return Error::io(0, "accept", errno);
  }
}

namespace {

// One attempt to connect: the descriptor, or the errno that stopped it.
Result<int> try_connect(const Address& a) {
  int fd = -1, e = 0;
  if (a.is_unix) {
    sockaddr_un sa;
    if (Error bad = unix_addr(a, sa)) return bad;
    fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) e = errno;
    else e = finish_connect(fd, ::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0 ? 0 : errno);
  } else {
    Result<addrinfo*> res = resolve(a, false);
    if (!res.ok()) return res.error();
    e = ECONNREFUSED;
    for (addrinfo* ai = res.value(); ai; ai = ai->ai_next) {
      fd = ::socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
      if (fd < 0) {
        e = errno;
        continue;
      }
      e = finish_connect(fd, ::connect(fd, ai->ai_addr, ai->ai_addrlen) == 0 ? 0 : errno);
      if (e == 0) break;
      ::close(fd);
      fd = -1;
    }
    ::freeaddrinfo(res.value());
    if (fd >= 0) tune_tcp(fd);
  }
  if (e == 0) return fd;
  if (fd >= 0) ::close(fd);
  return at_address(a, std::strerror(e), e);
}

}  // namespace

Result<int> connect_to(const Address& a, int retry_ms) {
  const std::uint64_t deadline = mono_ms() + static_cast<std::uint64_t>(retry_ms < 0 ? 0 : retry_ms);
  for (;;) {
    Result<int> fd = try_connect(a);
    if (fd.ok()) return fd;
    // Refused (not listening yet) or no socket file yet: try again.
    const int e = fd.error().cause;
    if ((e != ECONNREFUSED && e != ENOENT) || mono_ms() >= deadline) return fd;
    timespec ts{0, 20 * 1000 * 1000};
    ::nanosleep(&ts, nullptr);
  }
}

void unlink_unix(const Address& a) {
  if (a.is_unix) ::unlink(a.path.c_str());
}

}  // namespace xsr::net
