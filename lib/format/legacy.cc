#include "xsr/legacy.h"

namespace xsr {

namespace legacy {

const char* chunk_name(std::int32_t m) {
  switch (m) {
    case END: return "end";
    case ENABLE_VERIFY_MODE: return "enable_verify_mode";
    case VCPU_INFO: return "vcpu_info";
    case HVM_IDENT_PT: return "hvm_ident_pt";
    case HVM_VM86_TSS: return "hvm_vm86_tss";
    case TMEM: return "tmem";
    case TMEM_EXTRA: return "tmem_extra";
    case TSC_INFO: return "tsc_info";
    case HVM_CONSOLE_PFN: return "hvm_console_pfn";
    case LAST_CHECKPOINT: return "last_checkpoint";
    case HVM_ACPI_IOPORTS_LOCATION: return "hvm_acpi_ioports_location";
    case HVM_VIRIDIAN: return "hvm_viridian";
    case COMPRESSED_DATA: return "compressed_data";
    case ENABLE_COMPRESSION: return "enable_compression";
    case HVM_GENERATION_ID_ADDR: return "hvm_generation_id_addr";
    case HVM_PAGING_RING_PFN: return "hvm_paging_ring_pfn";
    case HVM_MONITOR_RING_PFN: return "hvm_monitor_ring_pfn";
    case HVM_SHARING_RING_PFN: return "hvm_sharing_ring_pfn";
    case TOOLSTACK: return "toolstack";
    case HVM_IOREQ_SERVER_PFN: return "hvm_ioreq_server_pfn";
    case HVM_NR_IOREQ_SERVER_PAGES: return "hvm_nr_ioreq_server_pages";
    default: return "unknown";
  }
}

int hvm_param_of(std::int32_t m) {
  switch (m) {
    case HVM_IDENT_PT: return 12;
    case HVM_VM86_TSS: return 15;
    case HVM_CONSOLE_PFN: return 17;
    case HVM_ACPI_IOPORTS_LOCATION: return 19;
    case HVM_VIRIDIAN: return 9;
    case HVM_GENERATION_ID_ADDR: return 34;
    case HVM_PAGING_RING_PFN: return 27;
    case HVM_MONITOR_RING_PFN: return 28;
    case HVM_SHARING_RING_PFN: return 29;
    case HVM_IOREQ_SERVER_PFN: return 32;
    case HVM_NR_IOREQ_SERVER_PAGES: return 33;
    default: return -1;
  }
}

}  // namespace legacy

}  // namespace xsr
