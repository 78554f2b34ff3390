// What extract() and the indexed extract share: the batch of pfns of the
// PAGE_DATA record being read (extract's and the index builder's
// observers), and the output's set-up and ending. Private to lib/extract.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "xsr/extract.h"
#include "xsr/pfnset.h"
#include "xsr/reader.h"
#include "xsr/sink.h"
#include "xsr/verify.h"

namespace xsr::detail {

// Collects the pfns with a body of the PAGE_DATA record being read, in
// stream order. Bounded: a record's bodies are bounded by its 32-bit length.
class BatchObserver : public StreamObserver {
 public:
  void pfns(std::span<const std::byte> chunk) override {
    for (std::size_t i = 0; i < chunk.size() / 8; ++i) {
      const PfnEntry e = PfnEntry::at(chunk, i);
      if (e.has_data()) batch_.push_back(e.pfn());
    }
  }
  void record(Layer, std::uint32_t, std::uint64_t, std::uint64_t, std::span<const std::byte>) override {
    batch_.clear();
  }
  bool wants_pages() const override { return true; }

 protected:
  // Calls f(i, n) for each run batch_[i..i+n) of consecutive pfns.
  template <typename F>
  void for_each_run(F&& f) const {
    std::size_t i = 0;
    while (i < batch_.size()) {
      std::size_t j = i + 1;
      while (j < batch_.size() && batch_[j] == batch_[j - 1] + 1) ++j;
      f(i, j - i);
      i = j;
    }
  }

  std::vector<std::uint64_t> batch_;
};

// Checks that out's descriptor is a regular file (pages go at their pfn's
// offset) and empties it.
Error prepare_output(Sink& out);

// Ends an output whose pages in `written` are at base + pfn * 4096: the ELF
// headers (elf) or the raw file's size. Sets res.out_bytes (and segments).
Error finish_output(Sink& out, const PfnSet& written, std::uint64_t base, bool elf, ExtractResult& res,
                    std::span<const std::byte> notes = {});

// "copy_file_range 4.0 MiB, write 1.0 MiB": how out's bulk bytes moved.
std::string paths_text(const Sink& out);

}  // namespace xsr::detail
