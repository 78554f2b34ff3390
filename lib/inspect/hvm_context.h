// Decodes an HVM_CONTEXT record's save blob into the report (private to
// lib/inspect).
#pragma once

#include <cstdint>
#include <span>

#include "xsr/inspect.h"

namespace xsr {

// The entries of `blob` (the record at stream offset `offset`) by name, into
// rep.vcpus and rep.hvm_domain_state, and rep.hvm_context: the HEADER and
// what the hypervisor's loader would refuse. `whole`: false when the body
// was too large to be handed over in one piece (then only that is said).
void decode_hvm_context(std::span<const std::byte> blob, std::uint64_t offset, std::uint64_t length,
                        bool whole, InspectReport& rep);

}  // namespace xsr
