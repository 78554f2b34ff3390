// A set of guest page frame numbers: a bitmap in 4096-pfn leaves made on
// demand, so a guest costs about (pfn range / 8) bytes and a sparse or
// hostile pfn pattern costs one 512-byte leaf per 4096-pfn block it touches,
// up to a cap (kMaxLeaves) after which the set says it is incomplete instead
// of growing further.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <unordered_map>

namespace xsr {

class PfnSet {
 public:
  static constexpr unsigned kLeafShift = 12;  // 4096 pfns per leaf
  static constexpr std::uint64_t kLeafPfns = std::uint64_t{1} << kLeafShift;
  // 512 Ki leaves: 256 MiB of bitmap, a 2^31-pfn (8 TiB) dense guest.
  static constexpr std::size_t kMaxLeaves = std::size_t{1} << 19;

  // Adds pfn; true when it was not in the set before. When the cap is hit
  // the pfn is not recorded, complete() turns false and insert returns true.
  bool insert(std::uint64_t pfn) {
    const std::uint64_t key = pfn >> kLeafShift;
    if (key != last_key_ || !last_) [[unlikely]] {
      if (!find_leaf(key)) return true;
    }
    std::uint64_t& w = last_[(pfn & (kLeafPfns - 1)) >> 6];
    const std::uint64_t bit = std::uint64_t{1} << (pfn & 63);
    if (w & bit) return false;
    w |= bit;
    ++size_;
    if (pfn < min_) min_ = pfn;
    if (pfn > max_) max_ = pfn;
    return true;
  }
  // Adds [first, first + count); returns how many were not in the set.
  // Word at a time: a dense guest's batches cost a few operations per 64
  // pfns. At the cap, what could not be recorded counts as new.
  // on_present, when given, is called with each pfn already in the set.
  std::uint64_t insert_range(std::uint64_t first, std::uint64_t count,
                             const std::function<void(std::uint64_t)>* on_present = nullptr);
  bool contains(std::uint64_t pfn) const;

  std::uint64_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  bool complete() const { return complete_; }
  std::size_t leaves() const { return leaves_.size(); }
  // Lowest and highest pfn (valid when !empty()).
  std::uint64_t min() const { return min_; }
  std::uint64_t max() const { return max_; }

  // Calls f(first, count) for each run of consecutive pfns, in order.
  void for_each_run(const std::function<void(std::uint64_t, std::uint64_t)>& f) const;

 private:
  bool find_leaf(std::uint64_t key);  // makes last_ the leaf of key; false at the cap

  std::unordered_map<std::uint64_t, std::unique_ptr<std::uint64_t[]>> leaves_;
  std::uint64_t last_key_ = ~std::uint64_t{0};
  std::uint64_t* last_ = nullptr;
  std::uint64_t size_ = 0;
  std::uint64_t min_ = ~std::uint64_t{0}, max_ = 0;
  bool complete_ = true;
};

}  // namespace xsr
