// Sockets for the tools that sit in a migration path (relay, verify, gen):
// one connection accepted on a listening address, or one made to an
// address, TCP (IPv4 or IPv6) or a Unix stream socket.
//
// Addresses: "HOST:PORT" ("127.0.0.1:9000", "localhost:9000"),
// "[V6ADDR]:PORT" ("[::1]:9000"), "unix:PATH" ("unix:/run/x.sock"). Port 0
// on a listening address takes an ephemeral port; `bound` names it.
#pragma once

#include <string>
#include <string_view>

namespace xsr::net {

struct Address {
  bool is_unix = false;
  std::string host;  // TCP: without the brackets of an IPv6 literal
  std::string port;
  std::string path;  // unix
  std::string text;  // as given
};

// False with *err set when spec is none of the forms above.
bool parse_address(std::string_view spec, Address& a, std::string* err);

// A listening socket on `a` (SO_REUSEADDR; a stale Unix socket file is
// replaced). Returns the descriptor, or -1 with *err set. *bound, when
// given, receives the address actually bound ("127.0.0.1:41234").
int listen_on(const Address& a, std::string* err, std::string* bound = nullptr);

// Accepts one connection on a listening socket, waiting at most timeout_ms
// (< 0: for ever). Returns the connected descriptor or -1 with *err set.
int accept_one(int lfd, int timeout_ms, std::string* err);

// Connects to `a`, trying again every 20 ms while the peer refuses (not yet
// listening) until retry_ms have passed. Returns the descriptor or -1 with
// *err set.
int connect_to(const Address& a, int retry_ms, std::string* err);

// Removes a Unix socket file made by listen_on (no-op for TCP).
void unlink_unix(const Address& a);

// Waits until fd is ready for `events` (POLLIN/POLLOUT), retrying EINTR, at
// most timeout_ms (< 0: for ever). Returns 0, ETIMEDOUT or an errno value.
int wait_ready(int fd, short events, int timeout_ms);

}  // namespace xsr::net
