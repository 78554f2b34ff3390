// Bytes in memory (tests, fuzz targets, the converter's reference runs).
#include <algorithm>

#include "io_engine.h"

namespace xsr {
namespace {

class MemorySource final : public Source {
 public:
  explicit MemorySource(Bytes data) : data_(data) {}
  Bytes peek(std::size_t) override { return data_.subspan(cur_); }
  void consume(std::size_t n) override { cur_ += std::min(n, data_.size() - cur_); }
  std::uint64_t skip(std::uint64_t n) override {
    std::uint64_t d = std::min<std::uint64_t>(n, data_.size() - cur_);
    cur_ += static_cast<std::size_t>(d);
    return d;
  }
  std::uint64_t pos() const override { return cur_; }
  std::int64_t remaining() const override { return static_cast<std::int64_t>(data_.size() - cur_); }
  std::string_view kind() const override { return "memory"; }

 private:
  Bytes data_;
  std::size_t cur_ = 0;
};

}  // namespace

std::unique_ptr<Source> memory_source(Bytes data) { return std::make_unique<MemorySource>(data); }

}  // namespace xsr
