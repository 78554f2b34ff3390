// `xsr inspect`: what an image holds, from one pass of the verifier
// (StreamObserver hooks), reading headers and pfn arrays only: page bodies
// are skipped unread. Memory: one PfnSet of the pfns seen (pfn range / 8
// bytes for a guest), one for the pfns sent twice, and small tables.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "xsr/compress.h"
#include "xsr/error.h"
#include "xsr/pfnset.h"
#include "xsr/source.h"
#include "xsr/vcpu_state.h"
#include "xsr/verify.h"

namespace xsr {

struct InspectOptions {
  // Each header and record as it is read (for --records); null: not wanted.
  std::function<void(const std::string& line)> record_line;
  bool records_json = false;           // record_line gets JSON objects instead of text
  std::size_t max_config = 16u << 20;  // domain config bytes kept
  std::size_t max_holes = 1024;        // hole ranges listed
  // Called with the bytes read so far, about every 64 MiB; null: none.
  std::function<void(std::uint64_t)> progress;
};

struct InspectReport {
  StreamStats stats;  // record counts and bytes by type, pages, checkpoints
  Error error;        // the first error; what is below describes the prefix before it

  // Container.
  std::string config_kind;                 // "xl", "libvirt" or empty
  std::uint64_t config_bytes = 0;          // length of the xl optional data / libvirt XML
  std::string config;                      // its first max_config bytes
  bool legacy = false;                     // a legacy image, read through conversion
  unsigned legacy_width = 0;               // its toolstack width (32 / 64)
  std::optional<Compression> compression;  // the input's codec and compressed size, when compressed

  // Guest.
  unsigned pv_width_bits = 0;                                  // X86_PV_INFO: 32 or 64 (0: not a PV stream)
  unsigned pt_levels = 0;                                      // X86_PV_INFO: 3 or 4
  std::optional<std::pair<std::uint32_t, std::uint32_t>> p2m;  // X86_PV_P2M_FRAMES start, end pfn

  // Memory.
  PfnSet pfns;                                  // pfns with a page body
  PfnSet resent;                                // pfns whose body came more than once
  std::uint64_t resends = 0;                    // page bodies beyond the first per pfn
  std::uint64_t entries = 0;                    // PAGE_DATA entries of every type
  std::uint64_t no_data = 0;                    // entries without a body (XTAB, BROKEN, XALLOC)
  std::uint64_t hole_count = 0, hole_pfns = 0;  // gaps between pfn_min and pfn_max
  std::vector<std::pair<std::uint64_t, std::uint64_t>> holes;  // first max_holes: first, last

  // vCPUs: id -> context records (PV records, HVM save entries).
  std::map<std::uint32_t, std::set<std::string>> vcpus;
  std::set<std::string> hvm_domain_state;  // HVM save entries not per vCPU
  // The last HVM_CONTEXT record's save blob: its HEADER, its entry count,
  // and what the hypervisor's loader would refuse in it (no HEADER first,
  // a bad magic or version, an unknown typecode, an entry longer than its
  // structure or than what is left of the record, a vCPU id beyond Xen's
  // limit, no END).
  struct HvmContext {
    std::uint64_t offset = 0;  // the record's offset in the stream
    bool header = false;       // HEADER came first; the fields below are its
    std::uint32_t magic = 0, version = 0, cpuid = 0, gtsc_khz = 0;
    std::uint64_t changeset = 0;
    std::uint64_t entries = 0;  // END included
    std::vector<std::string> warnings;
  };
  std::optional<HvmContext> hvm_context;
  std::map<std::uint64_t, std::uint64_t> hvm_params;  // index -> value (last wins)
  struct Tsc {
    std::uint32_t mode = 0, khz = 0, incarnation = 0;
    std::uint64_t nsec = 0;
  };
  std::optional<Tsc> tsc;
  std::uint64_t cpuid_leaves = 0, msr_entries = 0;  // X86_CPUID_POLICY / X86_MSR_POLICY
  bool shared_info = false;
  struct Emulator {
    std::string record;    // "EMULATOR_CONTEXT", "EMULATOR_XENSTORE_DATA"
    std::string emulator;  // "qemu-xen", "qemu-traditional", "unknown"
    std::uint32_t index = 0;
    std::uint64_t bytes = 0;  // body bytes after the 8-byte emulator header
  };
  std::vector<Emulator> emulators;
  std::uint64_t checkpoint_states = 0;  // libxl CHECKPOINT_STATE records
  VcpuStates vcpu_state;                // registers by vCPU (last copy wins)
};

// Reads the stream on src to its end (or first error), filling the report.
void inspect(Source& src, const InspectOptions& opt, InspectReport& rep);

// The report for people (`--config` adds the domain config, `--vcpus` the
// registers of each vCPU).
std::string inspect_text(const std::string& image, const InspectReport& rep, bool with_config,
                         bool with_vcpus = false);

// The report as one JSON object, keys in schema order (docs/inspect-json.md);
// a caller streaming --records puts its "record_list" array before them.
// `vcpu_state` is null unless with_vcpus.
nlohmann::ordered_json inspect_json(const std::string& image, const InspectReport& rep, bool with_config,
                                    bool with_vcpus = false);

}  // namespace xsr
