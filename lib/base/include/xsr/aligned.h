// Page-aligned heap buffers: the fixed buffers of the I/O engines (io_uring
// registers them) and gen's page area, written with writev as it is.
#pragma once

#include <cstddef>
#include <cstdlib>
#include <memory>

namespace xsr {

struct FreeDeleter {
  void operator()(std::byte* p) const { std::free(p); }
};
using AlignedBuf = std::unique_ptr<std::byte, FreeDeleter>;

// n bytes aligned to 4096; aborts when memory is exhausted (buffers are
// allocated once, at start-up, and sized by xsr, never by the input).
AlignedBuf alloc_aligned(std::size_t n);

}  // namespace xsr
