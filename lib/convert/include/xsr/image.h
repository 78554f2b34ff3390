// Opening an image for the tools that read one whole (inspect, extract):
// a v2/v3 stream is read as it is; a legacy (Xen <= 4.5) one is converted
// to a libxl v3 stream on the way in, by convert_legacy in a PipeWorker
// writing into a pipe, so everything downstream sees one format and page
// bodies still move by splice.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "xsr/convert.h"
#include "xsr/error.h"
#include "xsr/pipe_worker.h"
#include "xsr/source.h"

namespace xsr {

// What an input holds, from its first bytes (peeked, nothing consumed); the
// one answer verify, inspect, extract, convert and relay give.
enum class ImageKind : std::uint8_t {
  stream,   // a v2/v3 stream, bare or behind an xl or libvirt header
  legacy,   // a legacy (Xen <= 4.5) image, bare or behind an xl or libvirt header
  unknown,  // neither: empty, or bytes no Xen stream starts with
};

// An xl header over a bare libxc or a libxl stream is a stream whatever its
// flags say; one without the v2 flag over anything else, and a version 1
// libvirt header, front a legacy image. A header over bytes that start
// nothing is a `stream`: the walker then names the bad field and its
// offset. `why` (may be null) gets the reason for `unknown`.
ImageKind image_kind(Source& raw, std::string* why = nullptr);

// Not a v2/v3 stream (raw's kind is legacy or unknown: detection peeked
// them). legacy: "a legacy (Xen <= 4.5) image, not a v2/v3 stream; " +
// `advice`; unknown: "not a Xen save image: WHY". Offset 0.
Error not_a_v2_stream(ImageKind kind, const std::string& why, const std::string& advice);

// Is raw a legacy image, or (for callers that convert with a width and
// guest given by hand) bytes that are not a v2/v3 stream at all?
bool legacy_image(Source& raw);

class ImageInput {
 public:
  ImageInput() = default;
  ~ImageInput();
  ImageInput(const ImageInput&) = delete;
  ImageInput& operator=(const ImageInput&) = delete;

  // Looks at raw's first bytes (consuming nothing); on a legacy image starts
  // the conversion. raw must outlive this object. An error ("not a Xen save
  // image: ...") when image_kind() says unknown.
  Error open(Source& raw);

  // The v2/v3 stream to read.
  Source& stream() { return legacy_ ? *pipe_src_ : *raw_; }
  bool legacy() const { return legacy_; }
  const LegacyGuess& guess() const { return guess_; }
  // A legacy image's xl header optional data (its domain config), which the
  // conversion consumes: copied first (up to 1 MiB) so it can be shown.
  const std::string& legacy_config() const { return legacy_config_; }

  // Ends the read: stops and joins the converter. Returns the error to
  // report: the conversion's own when it failed (the root cause of whatever
  // the reader saw), else `read_error`. Error offsets then are the legacy
  // input's.
  Error finish(Error read_error);

 private:
  Source* raw_ = nullptr;
  bool legacy_ = false;
  LegacyGuess guess_;
  std::string legacy_config_;
  PipeWorker converter_;
  std::unique_ptr<Source> pipe_src_;  // reads converter_.fd()
};

}  // namespace xsr
