#include "xsr/aligned.h"

namespace xsr {

AlignedBuf alloc_aligned(std::size_t n) {
  void* p = nullptr;
  if (posix_memalign(&p, 4096, n) != 0) std::abort();
  return AlignedBuf(static_cast<std::byte*>(p));
}

}  // namespace xsr
