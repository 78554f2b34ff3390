// Opening an image for the tools that read one whole (inspect, extract):
// a v2/v3 stream is read as it is; a legacy (Xen <= 4.5) one is converted
// to a libxl v3 stream on the way in, by convert_legacy in a PipeWorker
// writing into a pipe, so everything downstream sees one format and page
// bodies still move by splice.
#pragma once

#include <memory>
#include <string>

#include "xsr/convert.h"
#include "xsr/error.h"
#include "xsr/pipe_worker.h"
#include "xsr/source.h"

namespace xsr {

// Is raw (peeked, nothing consumed) a legacy image: a bare legacy stream, or
// one behind an xl header without the v2 flag or a version 1 libvirt header?
bool legacy_image(Source& raw);

class ImageInput {
 public:
  ImageInput() = default;
  ~ImageInput();
  ImageInput(const ImageInput&) = delete;
  ImageInput& operator=(const ImageInput&) = delete;

  // Looks at raw's first bytes (consuming nothing); on a legacy image starts
  // the conversion. raw must outlive this object. An error (its detail the
  // reason) when the input is neither a v2/v3 stream nor a legacy image
  // xsr can read.
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
