// Live counters a long-running stage (relay) updates for whoever watches it
// (the CLI's --stats). The stage knows only this interface; the CLI's
// RunStats implements it.
#pragma once

#include <cstdint>

namespace xsr {

class RunCounters {
 public:
  virtual ~RunCounters() = default;
  // Bytes moved so far (a total; never goes back).
  virtual void set_bytes(std::uint64_t total) = 0;
  virtual void add_records(std::uint64_t n) = 0;
  virtual void add_pages(std::uint64_t n) = 0;
};

}  // namespace xsr
