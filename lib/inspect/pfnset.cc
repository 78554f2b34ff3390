#include "xsr/pfnset.h"

#include <algorithm>
#include <vector>

namespace xsr {

bool PfnSet::find_leaf(std::uint64_t key) {
  auto it = leaves_.find(key);
  if (it == leaves_.end()) {
    if (leaves_.size() >= kMaxLeaves) {
      complete_ = false;
      return false;
    }
    it = leaves_.emplace(key, std::make_unique<std::uint64_t[]>(kLeafPfns / 64)).first;
  }
  last_key_ = key;
  last_ = it->second.get();
  return true;
}

std::uint64_t PfnSet::insert_range(std::uint64_t first, std::uint64_t count,
                                   const std::function<void(std::uint64_t)>* on_present) {
  std::uint64_t added = 0;
  while (count > 0) {
    const std::uint64_t key = first >> kLeafShift;
    const std::uint64_t in_leaf = std::min(count, kLeafPfns - (first & (kLeafPfns - 1)));
    if (key != last_key_ || !last_) {
      if (!find_leaf(key)) {
        added += in_leaf;
        first += in_leaf;
        count -= in_leaf;
        continue;
      }
    }
    std::uint64_t bit = first & (kLeafPfns - 1);
    const std::uint64_t end = bit + in_leaf;
    std::uint64_t leaf_added = 0;
    while (bit < end) {
      const unsigned b = static_cast<unsigned>(bit & 63);
      const std::uint64_t n = std::min<std::uint64_t>(64 - b, end - bit);
      const std::uint64_t mask = (n == 64 ? ~std::uint64_t{0} : ((std::uint64_t{1} << n) - 1)) << b;
      std::uint64_t& w = last_[bit >> 6];
      leaf_added += static_cast<std::uint64_t>(__builtin_popcountll(mask & ~w));
      if (on_present) {
        for (std::uint64_t dup = mask & w; dup; dup &= dup - 1)
          (*on_present)((key << kLeafShift) + (bit & ~std::uint64_t{63}) +
                        static_cast<unsigned>(__builtin_ctzll(dup)));
      }
      w |= mask;
      bit += n;
    }
    if (leaf_added) {
      size_ += leaf_added;
      if (first < min_) min_ = first;
      if (first + in_leaf - 1 > max_) max_ = first + in_leaf - 1;
    }
    added += leaf_added;
    first += in_leaf;
    count -= in_leaf;
  }
  return added;
}

bool PfnSet::contains(std::uint64_t pfn) const {
  auto it = leaves_.find(pfn >> kLeafShift);
  if (it == leaves_.end()) return false;
  return (it->second[(pfn & (kLeafPfns - 1)) >> 6] >> (pfn & 63)) & 1;
}

void PfnSet::for_each_run(const std::function<void(std::uint64_t, std::uint64_t)>& f) const {
  std::vector<std::uint64_t> keys;
  keys.reserve(leaves_.size());
  for (const auto& kv : leaves_) keys.push_back(kv.first);
  std::sort(keys.begin(), keys.end());
  std::uint64_t run_start = 0, run_len = 0;
  for (std::uint64_t key : keys) {
    const std::uint64_t* w = leaves_.at(key).get();
    for (std::uint64_t i = 0; i < kLeafPfns / 64; ++i) {
      std::uint64_t bits = w[i];
      const std::uint64_t base = (key << kLeafShift) + i * 64;
      if (bits == ~std::uint64_t{0} && run_len && run_start + run_len == base) {
        run_len += 64;  // the common case: a dense guest
        continue;
      }
      while (bits) {
        const unsigned b = static_cast<unsigned>(__builtin_ctzll(bits));
        const std::uint64_t pfn = base + b;
        if (run_len && run_start + run_len == pfn) {
          ++run_len;
        } else {
          if (run_len) f(run_start, run_len);
          run_start = pfn;
          run_len = 1;
        }
        bits &= bits - 1;
      }
    }
  }
  if (run_len) f(run_start, run_len);
}

}  // namespace xsr
