// `xsr relay`: a stream checked in flight. Bytes come in on one descriptor
// (pipe, socket or file), pass the verifier, and go out on another
// unchanged, a record at a time: each record (or container header) is held
// until the verifier has checked it whole, then sent. On the first invalid
// record nothing more is sent, so a corrupt stream never completes on the
// receiver; it sees the stream end after the last good record.
//
// Held bytes never pass through user space when they need not: page bodies
// are spliced from the input into a set of private pipes, and from there to
// the output; only headers and pfn arrays are read (the verifier reads
// them) and written back into the pipes. Memory stays bounded: at most one
// record is held (--hold), in pipe buffers, not in the process.
#pragma once

#include <cstdint>
#include <string>

#include "xsr/convert.h"
#include "xsr/counters.h"
#include "xsr/error.h"
#include "xsr/source.h"
#include "xsr/verify.h"

namespace xsr {

struct RelayOptions {
  // How the stream is checked: format, strict, checkpointed, info, note,
  // progress. The observer is the relay's own (left null here).
  VerifyOptions verify;

  // Convert a legacy (Xen <= 4.5) stream to v3 on the way; v2/v3 input
  // passes unchanged. Width, guest type and headers are detected where
  // `conv` leaves them open (0 / unknown).
  bool convert = false;
  // Without convert: refuse a legacy image or a non-Xen input at offset 0,
  // saying what it is (image_kind), before anything is forwarded. Off, the
  // relay forwards what the walker accepts of it (an xl header) first, so
  // the output is always the verified prefix.
  bool refuse_non_streams = false;
  ConvertOptions conv;
  enum class OutFormat { detect, libxc, libxl } conv_format = OutFormat::detect;

  // Longest wait for the input to send or the output to take a byte, in
  // milliseconds (< 0: no limit).
  int timeout_ms = -1;
  // Most bytes held while a record is checked; a longer record is refused.
  std::uint64_t max_hold = 64ull << 20;
  // After the stream, copy whatever follows in -> out (and out -> in when
  // both are sockets) until both directions end.
  bool then_copy = false;
  // Header reads through io_uring (automatic, uring) or read(2) (read).
  IoMode io = IoMode::automatic;
  // Live counters (bytes forwarded, records, pages); not owned, may be null.
  RunCounters* stats = nullptr;
};

struct RelayResult {
  // The stream's first error, an input error or timeout (`error`), or the
  // output's failure (`out_error`, its detail the line to print, its cause
  // the errno; `error` left ok). Either means the receiver did not get a
  // complete stream.
  Error error;
  Error out_error;
  StreamStats stats;
  std::uint64_t in_bytes = 0;   // consumed from the input (the legacy input's when converting)
  std::uint64_t out_bytes = 0;  // forwarded, stream and tail
  bool converted = false;
  ConvertResult conv;
  std::uint64_t copied_forward = 0, copied_back = 0;  // --then-copy
  std::string reader;                                 // "io_uring" or "read" (header reads)
  std::string note;                                   // why io_uring was not used, when it was not
  std::string paths;  // "splice 4.0 GiB, write 1.2 MiB": how held bytes came in
};

// The conversion options relay() uses for a legacy stream: opt.conv, with
// what it leaves open (width, guest type, headers, output format) taken
// from the detection `g`.
ConvertOptions relay_convert_options(const RelayOptions& opt, const LegacyGuess& g);

// Relays one stream from in_fd to out_fd (neither is closed). On failure the
// caller closes out_fd so the receiver sees the stream end.
RelayResult relay(int in_fd, int out_fd, const RelayOptions& opt);

}  // namespace xsr
