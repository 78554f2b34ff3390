// The one error type of xsr: what went wrong, where in the stream, in which
// record. Built in cold, out-of-line helpers; the hot path only tests
// `ok()`.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

namespace xsr {

// The two stream layers a record can belong to (libxc image, libxl stream).
enum class Layer : std::uint8_t { libxc, libxl };

enum class Errc : std::uint8_t {
  ok = 0,
  truncated,       // the input ended inside the stream
  bad_header,      // image, domain, libxl, xl or libvirt header
  bad_record,      // a record's body breaks its rules
  bad_padding,     // non-zero record padding
  unknown_record,  // a mandatory record type the spec does not define
  bad_order,       // --strict: records out of the order Xen's restore needs
  too_large,       // a length beyond what the format or xsr allows
  io,              // a system call failed (a stream error for the reference too)
  output,          // writing an output or to a peer failed: not the input's fault
  unsupported,     // valid input that xsr cannot handle (exit 2)
  usage,           // bad command line
};

// printf into a std::string (messages are built out of line, cold).
[[gnu::cold, gnu::format(printf, 1, 2)]] std::string strprintf(const char* fmt, ...);

// Exit code of the drop-in tools for an error: 1 for a bad or truncated
// stream, 2 for a limitation of the tool itself (REFERENCE.md).
int exit_code(Errc code);

// The code's name in JSON ("truncated", "bad_record", ...).
std::string_view errc_name(Errc code);

constexpr std::uint64_t kNoRecord = ~std::uint64_t{0};

struct Error {
  Errc code = Errc::ok;
  std::uint64_t offset = 0;          // stream offset of the record (or field)
  std::uint64_t record = kNoRecord;  // record index in the stream, 0-based
  Layer layer = Layer::libxc;
  std::uint32_t type = 0;  // record type, valid when record != kNoRecord
  std::string detail;      // "body length 4104, expected 8 + 8 + 4096"
  int cause = 0;           // errno of the system call that failed (Errc::io), else 0

  // Factories (cold): an error at a stream offset outside any record.
  [[gnu::cold]] static Error at(Errc code, std::uint64_t offset, std::string detail);
  // An I/O failure: `what` ("writing the output failed") and, when
  // err != 0, ": strerror(err)"; the errno is kept as the typed cause.
  [[gnu::cold]] static Error io(std::uint64_t offset, std::string what, int err = 0);
  // The same for a write to an output or a peer (Errc::output).
  [[gnu::cold]] static Error output(std::uint64_t offset, std::string what, int err = 0);
  // Was this error caused by the system call failing with errno `err`?
  bool caused_by(int err) const { return (code == Errc::io || code == Errc::output) && cause == err; }

  bool ok() const { return code == Errc::ok; }
  explicit operator bool() const { return !ok(); }

  // "offset 0x1a2b40, record 17 (PAGE_DATA): body length 4104, expected ..."
  // Defined by the format layer (records.cc), which owns record names.
  std::string message() const;
};

// A value or the Error that stopped it being made. Test ok() before value().
template <typename T>
class Result {
 public:
  Result(T value) : value_(std::move(value)) {}      // NOLINT: implicit by design
  Result(Error error) : error_(std::move(error)) {}  // NOLINT
  bool ok() const { return error_.ok(); }
  const Error& error() const { return error_; }
  T& value() { return value_; }
  const T& value() const { return value_; }

 private:
  T value_{};
  Error error_;
};

}  // namespace xsr
