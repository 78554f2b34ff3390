// xsr-forward: a plain byte forwarder, the baseline `xsr relay` is measured
// against. It moves bytes from one end to the other and looks at none of
// them, so a relay's cost over it is the cost of verifying.
//
//   xsr-forward --mode splice|rw [--listen ADDR] [--connect ADDR]
//               [--buffer SIZE] [--report]
//
// ADDR is "HOST:PORT" (IPv4 or a name), "[V6ADDR]:PORT" or "unix:PATH", the
// forms `xsr relay` takes. Without --listen the input is stdin, without
// --connect the output is stdout. --listen binds (SO_REUSEADDR), accepts one
// connection and closes the listener; a Unix socket file left by an earlier
// run is replaced, and ours is removed once the listener is closed.
// --connect tries again every 20 ms for 10 s while the peer is not yet
// listening (ECONNREFUSED, or ENOENT for a Unix path; a loopback connection
// to itself counts as refused, see connected_to_self). The listener is set
// up first, then the connection out is made, then the one in accepted: in a
// chain started in any order every hop's peer is already waiting.
//
// Modes:
//   splice  the zero-copy forwarder: splice(2) in -> pipe -> out through a
//           1 MiB pipe of our own, in 1 MiB chunks; when the input or the
//           output is itself a pipe, straight from one to the other (a pipe
//           handed to us keeps its size: its writer or reader sized it).
//   rw      what socat does: read(2) into a buffer, write(2) all of it.
//           socat's 8 KiB buffer costs a system call per 8 KiB, which
//           would make the baseline look slower than any sensible relay;
//           the default here is 128 KiB (--buffer, e.g. 8K, 1M).
//
// Exit 0 when the input reached EOF and every byte was written (a socket
// output is shut down for writing first, so the peer sees EOF); 1 on any
// error, a closed peer included (SIGPIPE is ignored: EPIPE is reported);
// 2 on a bad command line. --report prints one line on stderr at exit,
// success or not:
//   xsr-forward: mode=splice bytes=N wall=S.SSS user=S.SSS sys=S.SSS maxrss_kib=N
// bytes are those written out; wall runs from the moment both ends are open
// (the copy's start, so no waiting for a peer to connect; on an error
// before that, from the start) to the end; user, sys and maxrss are
// getrusage(RUSAGE_SELF) of the whole process. Over loopback TCP the
// receiver's TCP input runs in the sender's system call (softirq), so a
// sender's sys holds much of its peer's cost: compare sums over a chain.
// maxrss carries over exec, so it is that of the parent at fork if larger
// (a python harness: tens of MiB).
//
// Standalone on purpose (no xsr library): the baseline must not share the
// code it is compared with.
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>

namespace {

constexpr std::size_t kPipeSize = 1 << 20;  // F_SETPIPE_SZ of our own pipe
constexpr std::size_t kChunk = 1 << 20;     // bytes asked of one splice
// SPLICE_F_MOVE has been a no-op since Linux 2.6.21 (pages are never moved,
// only referenced); passed as the classic forwarder passes it. SPLICE_F_MORE
// tells a socket output more follows (MSG_MORE: full segments); the tail is
// pushed by the shutdown at EOF.
constexpr unsigned kSpliceFlags = SPLICE_F_MOVE | SPLICE_F_MORE;
constexpr std::size_t kDefaultBuffer = 128 << 10;
constexpr std::size_t kMaxBuffer = 1 << 30;
constexpr int kRetryMs = 20;
constexpr int kConnectMs = 10'000;

using Clock = std::chrono::steady_clock;

// What the exit path needs: the report and the socket file to remove. die()
// runs from anywhere, so these are globals.
struct State {
  const char* mode = "splice";
  bool report = false;
  std::uint64_t bytes = 0;  // written to the output
  Clock::time_point start = Clock::now();
  std::string unix_path;  // our listening socket's file, until removed
  std::string in_name = "stdin";
  std::string out_name = "stdout";
} g;

void remove_socket_file() {
  if (g.unix_path.empty()) return;
  ::unlink(g.unix_path.c_str());
  g.unix_path.clear();
}

double seconds(const timeval& tv) {
  return static_cast<double>(tv.tv_sec) + static_cast<double>(tv.tv_usec) / 1e6;
}

void print_report() {
  rusage ru{};
  ::getrusage(RUSAGE_SELF, &ru);
  double wall = std::chrono::duration<double>(Clock::now() - g.start).count();
  std::fprintf(stderr, "xsr-forward: mode=%s bytes=%llu wall=%.3f user=%.3f sys=%.3f maxrss_kib=%ld\n",
               g.mode, static_cast<unsigned long long>(g.bytes), wall, seconds(ru.ru_utime),
               seconds(ru.ru_stime), ru.ru_maxrss);
}

[[noreturn]] void finish(int rc) {
  remove_socket_file();
  if (g.report) print_report();
  std::exit(rc);
}

[[noreturn, gnu::format(printf, 1, 2)]] void die(const char* f, ...) {
  std::va_list ap;
  va_start(ap, f);
  std::fputs("xsr-forward: ", stderr);
  std::vfprintf(stderr, f, ap);
  std::fputc('\n', stderr);
  va_end(ap);
  finish(1);
}

[[noreturn, gnu::format(printf, 1, 2)]] void usage_error(const char* f, ...) {
  std::va_list ap;
  va_start(ap, f);
  std::fputs("xsr-forward: ", stderr);
  std::vfprintf(stderr, f, ap);
  std::fputs(
      "\nusage: xsr-forward --mode splice|rw [--listen ADDR] [--connect ADDR]"
      " [--buffer SIZE] [--report]\n",
      stderr);
  va_end(ap);
  std::exit(2);
}

// ---- addresses and sockets -------------------------------------------------

struct Address {
  bool is_unix = false;
  std::string host, port;  // TCP (host without the brackets of an IPv6 literal)
  std::string path;        // unix
  std::string text;        // as given, for messages
};

bool parse_address(std::string_view s, Address& a) {
  a = Address{};
  a.text = s;
  if (s.starts_with("unix:")) {
    a.is_unix = true;
    a.path = s.substr(5);
    return !a.path.empty() && a.path.size() < sizeof(sockaddr_un::sun_path);
  }
  std::size_t colon;
  if (s.starts_with('[')) {
    std::size_t close = s.find(']');
    if (close == std::string_view::npos || close + 1 >= s.size() || s[close + 1] != ':') return false;
    a.host = s.substr(1, close - 1);
    colon = close + 1;
  } else {
    colon = s.rfind(':');
    if (colon == std::string_view::npos) return false;
    a.host = s.substr(0, colon);
  }
  a.port = s.substr(colon + 1);
  if (a.host.empty() || a.port.empty()) return false;
  for (char c : a.port)
    if (c < '0' || c > '9') return false;
  return true;
}

sockaddr_un unix_sockaddr(const Address& a) {
  sockaddr_un u{};
  u.sun_family = AF_UNIX;
  std::memcpy(u.sun_path, a.path.c_str(), a.path.size() + 1);  // length checked by parse
  return u;
}

addrinfo* resolve(const Address& a, bool passive) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV | (passive ? AI_PASSIVE : 0);
  addrinfo* res = nullptr;
  int r = ::getaddrinfo(a.host.c_str(), a.port.c_str(), &hints, &res);
  if (r != 0) die("%s: %s", a.text.c_str(), ::gai_strerror(r));
  return res;
}

// A listening socket on `a`.
int listen_on(const Address& a) {
  if (a.is_unix) {
    // Replace a socket file an earlier run left, nothing else.
    struct stat st {};
    if (::lstat(a.path.c_str(), &st) == 0) {
      if (!S_ISSOCK(st.st_mode)) die("%s: exists and is not a socket", a.text.c_str());
      ::unlink(a.path.c_str());
    }
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) die("socket: %s", std::strerror(errno));
    sockaddr_un u = unix_sockaddr(a);
    if (::bind(fd, reinterpret_cast<sockaddr*>(&u), sizeof u) != 0)
      die("bind %s: %s", a.text.c_str(), std::strerror(errno));
    g.unix_path = a.path;
    if (::listen(fd, 1) != 0) die("listen %s: %s", a.text.c_str(), std::strerror(errno));
    return fd;
  }
  addrinfo* res = resolve(a, true);
  int fd = -1, err = 0;
  for (addrinfo* ai = res; ai && fd < 0; ai = ai->ai_next) {
    fd = ::socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0) {
      err = errno;
      continue;
    }
    int one = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (::bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || ::listen(fd, 1) != 0) {
      err = errno;
      ::close(fd);
      fd = -1;
    }
  }
  ::freeaddrinfo(res);
  if (fd < 0) die("listen %s: %s", a.text.c_str(), std::strerror(err));
  return fd;
}

// Accepts one connection and closes the listener (and its socket file).
int accept_one(int lfd, const Address& a) {
  int fd;
  do {
    fd = ::accept4(lfd, nullptr, nullptr, SOCK_CLOEXEC);
  } while (fd < 0 && (errno == EINTR || errno == ECONNABORTED));
  if (fd < 0) die("accept %s: %s", a.text.c_str(), std::strerror(errno));
  ::close(lfd);
  remove_socket_file();
  return fd;
}

// connect(2) that survives EINTR: the connection then goes on in the
// background, and its outcome is read from SO_ERROR once writable.
int connect_fd(int fd, const sockaddr* sa, socklen_t len) {
  if (::connect(fd, sa, len) == 0) return 0;
  if (errno != EINTR) return errno;
  pollfd p{fd, POLLOUT, 0};
  while (::poll(&p, 1, -1) < 0)
    if (errno != EINTR) return errno;
  int err = 0;
  socklen_t n = sizeof err;
  if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &n) != 0) return errno;
  return err;
}

// A loopback TCP connect to a port nobody listens on can be answered by
// itself: when the kernel picks the destination port as the ephemeral
// source port (the port is in ip_local_port_range), the SYN meets its own
// socket and a simultaneous open connects it to itself. Retrying ECONNREFUSED
// in a tight loop hits that within seconds; such a socket is a refusal.
bool connected_to_self(int fd) {
  sockaddr_storage me{}, peer{};
  socklen_t ml = sizeof me, pl = sizeof peer;
  return ::getsockname(fd, reinterpret_cast<sockaddr*>(&me), &ml) == 0 &&
         ::getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &pl) == 0 && ml == pl &&
         std::memcmp(&me, &peer, ml) == 0;
}

int connect_to(const Address& a) {
  auto deadline = Clock::now() + std::chrono::milliseconds(kConnectMs);
  for (;;) {
    int err = 0;
    if (a.is_unix) {
      int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
      if (fd < 0) die("socket: %s", std::strerror(errno));
      sockaddr_un u = unix_sockaddr(a);
      err = connect_fd(fd, reinterpret_cast<sockaddr*>(&u), sizeof u);
      if (err == 0) return fd;
      ::close(fd);
    } else {
      addrinfo* res = resolve(a, false);
      // A failed connect leaves a socket unusable: a fresh one per try.
      for (addrinfo* ai = res; ai; ai = ai->ai_next) {
        int fd = ::socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0) die("socket: %s", std::strerror(errno));
        err = connect_fd(fd, ai->ai_addr, ai->ai_addrlen);
        if (err == 0 && connected_to_self(fd)) err = ECONNREFUSED;
        if (err == 0) {
          ::freeaddrinfo(res);
          return fd;
        }
        ::close(fd);
      }
      ::freeaddrinfo(res);
    }
    if ((err != ECONNREFUSED && err != ENOENT) || Clock::now() >= deadline)
      die("connect %s: %s", a.text.c_str(), std::strerror(err));
    ::usleep(kRetryMs * 1000);
  }
}

// ---- copying ---------------------------------------------------------------

bool is_fifo(int fd) {
  struct stat st {};
  return ::fstat(fd, &st) == 0 && S_ISFIFO(st.st_mode);
}

bool is_socket(int fd) {
  struct stat st {};
  return ::fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode);
}

// Waits until fd is ready for `events`; an error or hang-up also wakes it,
// and the next call on fd reports it.
void wait_fd(int fd, short events) {
  pollfd p{fd, events, 0};
  while (::poll(&p, 1, -1) < 0)
    if (errno != EINTR) die("poll: %s", std::strerror(errno));
}

[[noreturn]] void die_splice(int err) {
  die("splice %s -> %s: %s%s", g.in_name.c_str(), g.out_name.c_str(), std::strerror(err),
      err == EINVAL ? " (these descriptors do not splice; use --mode rw)" : "");
}

// After an EPIPE: has the input ended with nothing left in it? Waits until
// it either ends or has more (then the reader left too early).
bool input_at_eof(int in) {
  pollfd p{in, POLLIN, 0};
  while (::poll(&p, 1, -1) < 0)
    if (errno != EINTR) return false;
  int left = 0;
  return (p.revents & POLLHUP) && ::ioctl(in, FIONREAD, &left) == 0 && left == 0;
}

// One end is a pipe: splice from the input to the output directly. An
// EAGAIN (a non-blocking descriptor we inherited) may be either end's, so
// wait for both.
void splice_direct(int in, int out) {
  for (;;) {
    ssize_t r = ::splice(in, nullptr, out, nullptr, kChunk, kSpliceFlags);
    if (r > 0) {
      g.bytes += static_cast<std::uint64_t>(r);
    } else if (r == 0) {
      return;  // EOF
    } else if (errno == EAGAIN) {
      wait_fd(in, POLLIN);
      wait_fd(out, POLLOUT);
    } else if (errno == EPIPE && input_at_eof(in)) {
      // A pipe-to-pipe splice checks the reader before it looks for input:
      // a reader that left after taking every byte is not an error.
      return;
    } else if (errno != EINTR) {
      die_splice(errno);
    }
  }
}

// Neither end is a pipe: fill a pipe of ours from the input, drain it all to
// the output, again. Draining fully keeps the pipe empty when the input is
// spliced next, so the pipe end never blocks and an EAGAIN is the other
// descriptor's.
void splice_via_pipe(int in, int out) {
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) die("pipe: %s", std::strerror(errno));
  // The default pipe-max-size is 1 MiB, so this succeeds unprivileged; a
  // lower limit leaves a smaller pipe, which only means smaller splices.
  if (::fcntl(p[1], F_SETPIPE_SZ, static_cast<int>(kPipeSize)) < 0)
    std::fprintf(stderr, "xsr-forward: F_SETPIPE_SZ %zu: %s (default pipe size kept)\n", kPipeSize,
                 std::strerror(errno));
  for (;;) {
    ssize_t r = ::splice(in, nullptr, p[1], nullptr, kChunk, kSpliceFlags);
    if (r == 0) break;  // EOF
    if (r < 0) {
      if (errno == EAGAIN) wait_fd(in, POLLIN);
      else if (errno != EINTR) die_splice(errno);
      continue;
    }
    auto pending = static_cast<std::size_t>(r);
    while (pending > 0) {
      ssize_t w = ::splice(p[0], nullptr, out, nullptr, pending, kSpliceFlags);
      if (w > 0) {
        pending -= static_cast<std::size_t>(w);
        g.bytes += static_cast<std::uint64_t>(w);
      } else if (w == 0) {
        die("splice %s -> %s: no progress", g.in_name.c_str(), g.out_name.c_str());
      } else if (errno == EAGAIN) {
        wait_fd(out, POLLOUT);
      } else if (errno != EINTR) {
        die_splice(errno);
      }
    }
  }
  ::close(p[0]);
  ::close(p[1]);
}

void copy_rw(int in, int out, std::size_t size) {
  void* mem = nullptr;
  if (::posix_memalign(&mem, 4096, size) != 0) die("out of memory for a %zu-byte buffer", size);
  auto* buf = static_cast<char*>(mem);
  for (;;) {
    ssize_t r = ::read(in, buf, size);
    if (r == 0) break;  // EOF
    if (r < 0) {
      if (errno == EAGAIN) wait_fd(in, POLLIN);
      else if (errno != EINTR) die("read %s: %s", g.in_name.c_str(), std::strerror(errno));
      continue;
    }
    const char* p = buf;
    auto left = static_cast<std::size_t>(r);
    while (left > 0) {
      ssize_t w = ::write(out, p, left);
      if (w > 0) {
        p += w;
        left -= static_cast<std::size_t>(w);
        g.bytes += static_cast<std::uint64_t>(w);
      } else if (w == 0) {
        die("write %s: no progress", g.out_name.c_str());
      } else if (errno == EAGAIN) {
        wait_fd(out, POLLOUT);
      } else if (errno != EINTR) {
        die("write %s: %s", g.out_name.c_str(), std::strerror(errno));
      }
    }
  }
  std::free(mem);
}

// "128K", "1M", "65536": bytes, with an optional binary K, M or G.
bool parse_size(std::string_view s, std::size_t& out) {
  std::size_t v = 0, i = 0;
  for (; i < s.size() && s[i] >= '0' && s[i] <= '9'; ++i) {
    v = v * 10 + static_cast<std::size_t>(s[i] - '0');
    if (v > kMaxBuffer) return false;
  }
  if (i == 0) return false;
  if (i < s.size()) {
    int shift = 0;
    switch (s[i]) {
      case 'k':
      case 'K': shift = 10; break;
      case 'm':
      case 'M': shift = 20; break;
      case 'g':
      case 'G': shift = 30; break;
      default: return false;
    }
    if (i + 1 != s.size() || v > (kMaxBuffer >> shift)) return false;
    v <<= shift;
  }
  out = v;
  return v > 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::string_view mode;
  std::string_view listen_spec, connect_spec, buffer_spec;
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg == "--report") {
      g.report = true;
      continue;
    }
    if (arg == "-h" || arg == "--help") {
      std::printf(
          "usage: xsr-forward --mode splice|rw [--listen ADDR] [--connect ADDR]"
          " [--buffer SIZE] [--report]\n"
          "ADDR: HOST:PORT, [V6ADDR]:PORT or unix:PATH; stdin/stdout without them.\n"
          "--buffer: the rw mode's read size (default 128K).\n");
      return 0;
    }
    // --opt VALUE or --opt=VALUE
    std::string_view value;
    std::size_t eq = arg.find('=');
    std::string_view name = arg.substr(0, eq);
    if (name != "--mode" && name != "--listen" && name != "--connect" && name != "--buffer")
      usage_error("unknown option '%s'", argv[i]);
    if (eq != std::string_view::npos) {
      value = arg.substr(eq + 1);
    } else {
      if (i + 1 >= argc) usage_error("%s needs a value", argv[i]);
      value = argv[++i];
    }
    if (name == "--mode") mode = value;
    else if (name == "--listen") listen_spec = value;
    else if (name == "--connect") connect_spec = value;
    else buffer_spec = value;
  }

  if (mode != "splice" && mode != "rw") usage_error("--mode must be splice or rw");
  g.mode = mode == "splice" ? "splice" : "rw";
  std::size_t buffer = kDefaultBuffer;
  if (!buffer_spec.empty()) {
    if (mode != "rw") usage_error("--buffer is the rw mode's (splice moves 1 MiB chunks)");
    if (!parse_size(buffer_spec, buffer))
      usage_error("bad --buffer '%.*s' (1 byte to 1G)", static_cast<int>(buffer_spec.size()),
                  buffer_spec.data());
  }
  Address la, ca;
  if (!listen_spec.empty() && !parse_address(listen_spec, la))
    usage_error("bad --listen address '%.*s'", static_cast<int>(listen_spec.size()), listen_spec.data());
  if (!connect_spec.empty() && !parse_address(connect_spec, ca))
    usage_error("bad --connect address '%.*s'", static_cast<int>(connect_spec.size()), connect_spec.data());

  ::signal(SIGPIPE, SIG_IGN);

  int in = STDIN_FILENO, out = STDOUT_FILENO;
  int lfd = listen_spec.empty() ? -1 : listen_on(la);
  if (!connect_spec.empty()) {
    out = connect_to(ca);
    g.out_name = ca.text;
  }
  if (lfd >= 0) {
    in = accept_one(lfd, la);
    g.in_name = la.text;
  }

  g.start = Clock::now();
  if (mode == "rw") copy_rw(in, out, buffer);
  else if (is_fifo(in) || is_fifo(out)) splice_direct(in, out);
  else splice_via_pipe(in, out);

  // EOF and all written: let a socket peer see EOF, then close; a close
  // error (a file on NFS) is a write error too.
  if (is_socket(out) && ::shutdown(out, SHUT_WR) != 0)
    die("shutdown %s: %s", g.out_name.c_str(), std::strerror(errno));
  if (::close(out) != 0) die("close %s: %s", g.out_name.c_str(), std::strerror(errno));
  ::close(in);
  finish(0);
}
