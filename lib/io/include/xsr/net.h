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

#include "xsr/error.h"

namespace xsr::net {

struct Address {
  bool is_unix = false;
  std::string host;  // TCP: without the brackets of an IPv6 literal
  std::string port;
  std::string path;  // unix
  std::string text;  // as given
};

// The address, or an error (Errc::usage) when spec is none of the forms
// above. Errors of the calls below are Errc::io, their detail the line to
// print ("127.0.0.1:9: Connection refused"), their cause the errno.
Result<Address> parse_address(std::string_view spec);

// A listening socket and the address actually bound ("127.0.0.1:41234"
// for port 0; a Unix socket's as given).
struct Listener {
  int fd = -1;
  std::string bound;
};

// Listens on `a` (SO_REUSEADDR; a stale Unix socket file is replaced).
Result<Listener> listen_on(const Address& a);

// Accepts one connection on a listening socket, waiting at most timeout_ms
// (< 0: for ever; then "no connection within N s", cause ETIMEDOUT).
Result<int> accept_one(int lfd, int timeout_ms);

// Connects to `a`, trying again every 20 ms while the peer refuses (not yet
// listening) until retry_ms have passed.
Result<int> connect_to(const Address& a, int retry_ms);

// Removes a Unix socket file made by listen_on (no-op for TCP).
void unlink_unix(const Address& a);

}  // namespace xsr::net
