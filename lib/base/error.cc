#include "xsr/error.h"

#include <cstdarg>
#include <cstdio>
#include <cstring>

namespace xsr {

std::string strprintf(const char* f, ...) {
  char buf[512];
  va_list ap;
  va_start(ap, f);
  std::vsnprintf(buf, sizeof buf, f, ap);
  va_end(ap);
  return buf;
}

std::string_view errc_name(Errc code) {
  switch (code) {
    case Errc::ok: return "ok";
    case Errc::truncated: return "truncated";
    case Errc::bad_header: return "bad_header";
    case Errc::bad_record: return "bad_record";
    case Errc::bad_padding: return "bad_padding";
    case Errc::unknown_record: return "unknown_record";
    case Errc::bad_order: return "bad_order";
    case Errc::too_large: return "too_large";
    case Errc::io: return "io";
    case Errc::output: return "output";
    case Errc::unsupported: return "unsupported";
    case Errc::usage: return "usage";
  }
  return "other";
}

int exit_code(Errc code) {
  switch (code) {
    case Errc::ok: return 0;
    case Errc::unsupported: return 2;
    default: return 1;
  }
}

Error Error::at(Errc code, std::uint64_t offset, std::string detail) {
  Error e;
  e.code = code;
  e.offset = offset;
  e.detail = std::move(detail);
  return e;
}

Error Error::io(std::uint64_t offset, std::string what, int err) {
  if (err != 0) what += std::string(": ") + std::strerror(err);
  Error e = at(Errc::io, offset, std::move(what));
  e.cause = err;
  return e;
}

Error Error::output(std::uint64_t offset, std::string what, int err) {
  Error e = io(offset, std::move(what), err);
  e.code = Errc::output;
  return e;
}

}  // namespace xsr
