/*
 * Restore harness: runs Xen 4.17's own restore code (libxenguest's
 * xc_domain_restore and libxenctrl under it) over a stream, with a small
 * model of the hypervisor behind the hypercall line, and prints one verdict:
 *
 *   ACCEPT                     exit 0
 *   REFUSE: <message>          exit 1  (Xen's last ERROR, or the model's)
 *   CRASH: <assert or signal>  exit 3
 *   (usage or setup errors)    exit 2
 *
 * libxenctrl reaches the hypervisor only through libxencall,
 * libxenforeignmemory and libxendevicemodel; this executable defines their
 * entry points (linked -rdynamic, so they take precedence over the real
 * libraries) and answers them from the model below. tests/restore/README.md
 * lists what the model checks and where in Xen each rule comes from.
 *
 * Usage: harness [--remus] [-v] FILE
 */
#define _GNU_SOURCE
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <xenctrl.h>
#include <xenguest.h>
#include <xentoollog.h>
#include <xencall.h>
#include <xenforeignmemory.h>
#include <xendevicemodel.h>
#include <xen/domctl.h>
#include <xen/memory.h>
#include <xen/hvm/hvm_op.h>
#include <xen/hvm/params.h>
#include <xen/hvm/save.h>
#include <xen/foreign/x86_32.h>
#include <xen/foreign/x86_64.h>

#define PAGE 4096UL
#define DOMID 1
/* Frames of the one memfd every mapping comes from (sparse). */
#define MEM_FRAMES (1UL << 22) /* 16 GiB */
#define MAX_MFN (MEM_FRAMES - 1)
#define M2P_MFN0 0x1000UL                          /* 2 MiB aligned chunks */
#define M2P_FRAMES ((MEM_FRAMES * 8) / PAGE)       /* 8 bytes per mfn */
#define COMPAT_M2P_MFN0 (M2P_MFN0 + M2P_FRAMES)     /* never read on restore */
#define GUEST_MFN0 (COMPAT_M2P_MFN0 + M2P_FRAMES)   /* first mfn handed out */
#define HVM_MAX_GFN_BITS 36 /* a 48-bit guest physical address space */
#define TIME_LIMIT 60

static int verbose;

/* ---------------------------------------------------------------- model */

/* Open addressing map from u64 to u64 (gfn -> mfn, mfn -> pin level). */
struct map {
    uint64_t *keys, *vals;
    size_t cap, used;
};
#define MAP_EMPTY UINT64_MAX

static void map_put(struct map *m, uint64_t k, uint64_t v);

static void map_grow(struct map *m)
{
    struct map n = {0};
    n.cap = m->cap ? m->cap * 2 : 1024;
    n.keys = malloc(n.cap * sizeof(uint64_t));
    n.vals = malloc(n.cap * sizeof(uint64_t));
    if (!n.keys || !n.vals)
        abort();
    memset(n.keys, 0xff, n.cap * sizeof(uint64_t));
    for (size_t i = 0; i < m->cap; i++)
        if (m->keys[i] != MAP_EMPTY)
            map_put(&n, m->keys[i], m->vals[i]);
    free(m->keys);
    free(m->vals);
    *m = n;
}

static size_t map_slot(const struct map *m, uint64_t k)
{
    size_t i = (size_t)((k * 0x9e3779b97f4a7c15ULL) >> 7) & (m->cap - 1);
    while (m->keys[i] != MAP_EMPTY && m->keys[i] != k)
        i = (i + 1) & (m->cap - 1);
    return i;
}

static void map_put(struct map *m, uint64_t k, uint64_t v)
{
    if ((m->used + 1) * 2 > m->cap)
        map_grow(m);
    size_t i = map_slot(m, k);
    if (m->keys[i] == MAP_EMPTY)
        m->used++;
    m->keys[i] = k;
    m->vals[i] = v;
}

static bool map_get(const struct map *m, uint64_t k, uint64_t *v)
{
    if (!m->cap)
        return false;
    size_t i = map_slot(m, k);
    if (m->keys[i] == MAP_EMPTY)
        return false;
    *v = m->vals[i];
    return true;
}

struct vcpu_state {
    bool has_ctxt;
    uint64_t cr3_mfn;
};

static struct {
    bool hvm;
    unsigned nvcpus;
    unsigned width; /* PV guest width in bytes */
    int memfd;
    uint8_t *mem;    /* the whole memfd, host view */
    uint64_t *m2p;   /* in mem */
    uint64_t next_mfn;
    uint64_t shinfo_mfn, gnttab_mfn;
    struct map p2m;  /* HVM gfn -> mfn */
    struct map pins; /* mfn -> MMUEXT_PIN_Ln_TABLE + 1 */
    bool populated_any;
    uint64_t max_gfn; /* highest populated gfn */
    uint64_t params[HVM_NR_PARAMS];
    struct vcpu_state *vcpus;
    char refusal[512]; /* the model's last refusal */
} dom;

static int refuse(int err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int refuse(int err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = snprintf(dom.refusal, sizeof(dom.refusal), "hypervisor: ");
    vsnprintf(dom.refusal + n, sizeof(dom.refusal) - n, fmt, ap);
    va_end(ap);
    if (verbose)
        fprintf(stderr, "harness: %s\n", dom.refusal);
    errno = err;
    return -1;
}

static uint64_t alloc_mfn(void)
{
    if (dom.next_mfn > MAX_MFN)
        return MAP_EMPTY;
    return dom.next_mfn++;
}

static void model_init(bool hvm, unsigned nvcpus)
{
    dom.hvm = hvm;
    dom.nvcpus = nvcpus;
    dom.width = 8;
    dom.memfd = memfd_create("xsr-restore-guest", 0);
    if (dom.memfd < 0 || ftruncate(dom.memfd, (off_t)(MEM_FRAMES * PAGE))) {
        perror("harness: memfd");
        exit(2);
    }
    dom.mem = mmap(NULL, MEM_FRAMES * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, dom.memfd, 0);
    if (dom.mem == MAP_FAILED) {
        perror("harness: mmap memfd");
        exit(2);
    }
    dom.m2p = (uint64_t *)(dom.mem + M2P_MFN0 * PAGE);
    dom.next_mfn = GUEST_MFN0;
    dom.shinfo_mfn = alloc_mfn();
    dom.gnttab_mfn = alloc_mfn();
    dom.vcpus = calloc(nvcpus, sizeof(*dom.vcpus));
}

/* Which mfn a foreign mapping of (domid, frame) reaches, or an errno. */
static int resolve(uint32_t domid, uint64_t frame, uint64_t *mfn)
{
    if (domid == DOMID_XEN) {
        if (frame >= M2P_MFN0 && frame < GUEST_MFN0) {
            *mfn = frame;
            return 0;
        }
        return EPERM;
    }
    if (domid != DOMID)
        return ESRCH;
    if (dom.hvm)
        return map_get(&dom.p2m, frame, mfn) ? 0 : ENOENT;
    if (frame >= GUEST_MFN0 && frame < dom.next_mfn) {
        *mfn = frame;
        return 0;
    }
    return EPERM;
}

/* ------------------------------------------------------------ domctl */

static int hvm_entry_size(unsigned type, bool *exact, uint32_t *compat)
{
    *exact = true;
    *compat = 0;
    switch (type) {
    case 1: return sizeof(struct hvm_save_header);
    case 2: *exact = false; *compat = sizeof(struct hvm_hw_cpu_compat); return sizeof(struct hvm_hw_cpu);
    case 3: return sizeof(struct hvm_hw_vpic);
    case 4: return sizeof(struct hvm_hw_vioapic);
    case 5: *exact = false; return sizeof(struct hvm_hw_lapic);
    case 6: return sizeof(struct hvm_hw_lapic_regs);
    case 7: return sizeof(struct hvm_hw_pci_irqs);
    case 8: return sizeof(struct hvm_hw_isa_irqs);
    case 9: return sizeof(struct hvm_hw_pci_link);
    case 10: return sizeof(struct hvm_hw_pit);
    case 11: *exact = false; return sizeof(struct hvm_hw_rtc);
    case 12: return sizeof(struct hvm_hw_hpet);
    case 13: return sizeof(struct hvm_hw_pmtimer);
    case 14: return sizeof(struct hvm_hw_mtrr);
    case 15: *exact = false; return sizeof(struct hvm_viridian_domain_context);
    case 17: *exact = false; return sizeof(struct hvm_viridian_vcpu_context);
    case 18: *exact = false; return sizeof(struct hvm_vmce_vcpu);
    case 19: return sizeof(struct hvm_tsc_adjust);
    default: return -1; /* 16 CPU_XSAVE, 20 CPU_MSRS: variable */
    }
}

static bool per_vcpu_type(unsigned t)
{
    return t == 2 || t == 5 || t == 6 || t == 14 || t == 16 || t == 17 || t == 18 || t == 19 ||
           t == 20;
}

/* xen/arch/x86/hvm/save.c hvm_load() and its per-type loaders. */
static int sethvmcontext(const uint8_t *buf, uint32_t size)
{
    const struct hvm_save_descriptor *d;
    uint32_t cur = 0;

    if (!dom.hvm)
        return refuse(EINVAL, "sethvmcontext: not an HVM domain");
    if (size < sizeof(*d) + sizeof(struct hvm_save_header))
        return refuse(ENODATA, "sethvmcontext: no HEADER first");
    d = (const void *)buf;
    if (d->typecode != 1 || d->length != sizeof(struct hvm_save_header))
        return refuse(ENODATA, "sethvmcontext: no HEADER first (typecode %u, length %u)",
                      d->typecode, d->length);
    const struct hvm_save_header *h = (const void *)(buf + sizeof(*d));
    if (h->magic != HVM_FILE_MAGIC)
        return refuse(EINVAL, "sethvmcontext: bad magic %#" PRIx32, h->magic);
    if (h->version != HVM_FILE_VERSION)
        return refuse(EINVAL, "sethvmcontext: unsupported version %" PRIu32, h->version);
    cur = sizeof(*d) + d->length;
    for (;;) {
        if (size - cur < sizeof(*d))
            return refuse(ENODATA, "sethvmcontext: no END entry");
        d = (const void *)(buf + cur);
        if (d->typecode == 0)
            return 0;
        if (d->typecode > HVM_SAVE_CODE_MAX || d->typecode == 1)
            return refuse(EINVAL, "sethvmcontext: unknown typecode %u", d->typecode);
        if ((uint64_t)d->length + sizeof(*d) > size - cur)
            return refuse(EINVAL, "sethvmcontext: entry %u/%u length %u past the end",
                          d->typecode, d->instance, d->length);
        if (per_vcpu_type(d->typecode) && d->instance >= dom.nvcpus)
            return refuse(EINVAL, "sethvmcontext: entry %u/%u names no vcpu (%u vcpus)",
                          d->typecode, d->instance, dom.nvcpus);
        bool exact;
        uint32_t compat;
        int want = hvm_entry_size(d->typecode, &exact, &compat);
        if (want >= 0) {
            bool ok = exact ? d->length == (uint32_t)want : d->length <= (uint32_t)want;
            if (!ok && compat && d->length == compat)
                ok = true;
            if (!ok)
                return refuse(EINVAL, "sethvmcontext: entry %u/%u length %u, %s %d",
                              d->typecode, d->instance, d->length,
                              exact ? "expected" : "at most", want);
        }
        cur += sizeof(*d) + d->length;
    }
}

/* xen/arch/x86/domain.c arch_set_info_guest(), reduced: remember cr3. */
static int setvcpucontext(uint32_t vcpu, const void *ctxt)
{
    if (vcpu >= dom.nvcpus)
        return refuse(EINVAL, "setvcpucontext: no vcpu%u", vcpu);
    if (!ctxt)
        return refuse(EINVAL, "setvcpucontext: no context");
    if (dom.hvm)
        return refuse(EINVAL, "setvcpucontext: unmodelled for HVM");
    uint64_t mfn;
    if (dom.width == 8) {
        const struct vcpu_guest_context_x86_64 *c = ctxt;
        mfn = c->ctrlreg[3] >> 12;
    } else {
        const struct vcpu_guest_context_x86_32 *c = ctxt;
        uint32_t cr3 = c->ctrlreg[3];
        mfn = (uint32_t)((cr3 >> 12) | (cr3 << 20));
    }
    dom.vcpus[vcpu].has_ctxt = true;
    dom.vcpus[vcpu].cr3_mfn = mfn;
    return 0;
}

static int do_domctl(struct xen_domctl *c)
{
    if (c->interface_version != XEN_DOMCTL_INTERFACE_VERSION)
        return refuse(EACCES, "domctl: interface version %#x", c->interface_version);
    if (c->cmd == XEN_DOMCTL_getdomaininfo) {
        if (c->domain > DOMID) {
            errno = ESRCH;
            return -1;
        }
        struct xen_domctl_getdomaininfo *i = &c->u.getdomaininfo;
        memset(i, 0, sizeof(*i));
        c->domain = i->domain = DOMID;
        i->flags = XEN_DOMINF_paused | (dom.hvm ? XEN_DOMINF_hvm_guest | XEN_DOMINF_hap : 0);
        i->max_vcpu_id = dom.nvcpus - 1;
        i->nr_online_vcpus = dom.nvcpus;
        i->shared_info_frame = dom.shinfo_mfn;
        i->tot_pages = dom.next_mfn - GUEST_MFN0;
        i->max_pages = MEM_FRAMES;
        return 0;
    }
    if (c->domain != DOMID) {
        errno = ESRCH;
        return -1;
    }
    switch (c->cmd) {
    case XEN_DOMCTL_get_address_size:
        c->u.address_size.size = dom.hvm ? 64 : dom.width * 8;
        return 0;
    case XEN_DOMCTL_set_address_size:
        if (dom.hvm)
            return refuse(EINVAL, "set_address_size: HVM domain");
        if (c->u.address_size.size == 32)
            dom.width = 4;
        else if (c->u.address_size.size != 64)
            return refuse(EINVAL, "set_address_size: %u bits", c->u.address_size.size);
        return 0;
    case XEN_DOMCTL_settscinfo:
        /* xen/arch/x86/time.c tsc_set_info() */
        if (c->u.tsc_info.tsc_mode > 2)
            return refuse(EINVAL, "settscinfo: tsc_mode %u not 0, 1 or 2", c->u.tsc_info.tsc_mode);
        return 0;
    case XEN_DOMCTL_set_cpu_policy:
    case XEN_DOMCTL_max_mem:
        return 0;
    case XEN_DOMCTL_sethvmcontext:
        return sethvmcontext(c->u.hvmcontext.buffer.p, c->u.hvmcontext.size);
    case XEN_DOMCTL_setvcpucontext:
        return setvcpucontext(c->u.vcpucontext.vcpu, c->u.vcpucontext.ctxt.p);
    case XEN_DOMCTL_set_ext_vcpucontext:
    case XEN_DOMCTL_setvcpuextstate:
    case XEN_DOMCTL_set_vcpu_msrs: {
        uint32_t v = c->cmd == XEN_DOMCTL_set_ext_vcpucontext ? c->u.ext_vcpucontext.vcpu
                     : c->cmd == XEN_DOMCTL_setvcpuextstate   ? c->u.vcpuextstate.vcpu
                                                              : c->u.vcpu_msrs.vcpu;
        if (v >= dom.nvcpus)
            return refuse(EINVAL, "domctl %u: no vcpu%u", c->cmd, v);
        return 0;
    }
    default:
        return refuse(ENOSYS, "unmodelled domctl %u", c->cmd);
    }
}

/* ---------------------------------------------------------- memory_op */

static int populate(struct xen_memory_reservation *r)
{
    xen_pfn_t *list = r->extent_start.p;
    if (r->domid != DOMID)
        return refuse(ESRCH, "populate_physmap: domain %u", r->domid);
    unsigned long n = 1UL << r->extent_order;
    for (unsigned long i = 0; i < r->nr_extents; i++) {
        uint64_t gfn = list[i];
        if (dom.hvm && (gfn >> HVM_MAX_GFN_BITS)) {
            refuse(EINVAL, "populate_physmap: gfn %#" PRIx64 " beyond 2^%d", gfn, HVM_MAX_GFN_BITS);
            return (int)i;
        }
        for (unsigned long j = 0; j < n; j++) {
            uint64_t mfn = alloc_mfn(), old;
            if (mfn == MAP_EMPTY) {
                refuse(ENOMEM, "populate_physmap: out of memory");
                return (int)i;
            }
            if (dom.hvm && map_get(&dom.p2m, gfn + j, &old)) {
                dom.m2p[old] = 0;
            }
            if (dom.hvm)
                map_put(&dom.p2m, gfn + j, mfn);
            dom.m2p[mfn] = gfn + j;
            if (!dom.populated_any || gfn + j > dom.max_gfn)
                dom.max_gfn = gfn + j;
            dom.populated_any = true;
            if (!dom.hvm && j == 0)
                list[i] = mfn;
        }
    }
    return (int)r->nr_extents;
}

static int memory_op(unsigned cmd, void *arg)
{
    switch (cmd & 0x3f /* MEMOP_CMD_MASK */) {
    case XENMEM_populate_physmap:
        return populate(arg);
    case XENMEM_maximum_ram_page:
        return (int)MAX_MFN;
    case XENMEM_maximum_gpfn:
        if (*(domid_t *)arg != DOMID)
            return refuse(ESRCH, "maximum_gpfn: domain %u", *(domid_t *)arg);
        return (int)dom.max_gfn;
    case XENMEM_machphys_mfn_list:
    case XENMEM_machphys_compat_mfn_list: {
        struct xen_machphys_mfn_list *l = arg;
        uint64_t base = (cmd == XENMEM_machphys_mfn_list) ? M2P_MFN0 : COMPAT_M2P_MFN0;
        unsigned chunks = M2P_FRAMES / 512;
        unsigned n = l->max_extents < chunks ? l->max_extents : chunks;
        for (unsigned i = 0; i < n; i++)
            l->extent_start.p[i] = base + 512UL * i;
        l->nr_extents = n;
        return 0;
    }
    default:
        return refuse(ENOSYS, "unmodelled memory_op %u", cmd);
    }
}

/* ------------------------------------------------------------- hvm_op */

/* xen/arch/x86/hvm/hvm.c hvmop_set_param(), hvm_allow_set_param(),
 * hvm_set_param(): what a toolstack is refused. */
static int set_param(struct xen_hvm_param *a)
{
    uint32_t i = a->index;
    uint64_t v = a->value;

    if (i >= HVM_NR_PARAMS)
        return refuse(EINVAL, "set_param: index %u >= HVM_NR_PARAMS", i);
    if (a->domid != DOMID)
        return refuse(ESRCH, "set_param: domain %u", a->domid);
    if (!dom.hvm)
        return refuse(EINVAL, "set_param: not an HVM domain");
    switch (i) {
    case 4: case 13: case 20: case 21: case 22: case 23: case 24: case 25: case 26: case 30:
        return refuse(EINVAL, "set_param: deprecated param %u", i);
    }
    switch (i) {
    case HVM_PARAM_VIRIDIAN: case HVM_PARAM_IOREQ_PFN: case HVM_PARAM_BUFIOREQ_PFN:
    case HVM_PARAM_IOREQ_SERVER_PFN: case HVM_PARAM_NR_IOREQ_SERVER_PAGES:
    case HVM_PARAM_ALTP2M: case HVM_PARAM_MCA_CAP:
        if (dom.params[i] != 0 && dom.params[i] != v)
            return refuse(EEXIST, "set_param: param %u already set to %#" PRIx64, i, dom.params[i]);
    }
    switch (i) {
    case HVM_PARAM_TIMER_MODE:
        if (v > HVMPTM_one_missed_tick_pending)
            return refuse(EINVAL, "set_param: TIMER_MODE %#" PRIx64, v);
        break;
    case HVM_PARAM_VIRIDIAN:
        if ((v & ~(uint64_t)HVMPV_feature_mask) || !(v & HVMPV_base_freq))
            return refuse(EINVAL, "set_param: VIRIDIAN %#" PRIx64, v);
        break;
    case HVM_PARAM_ACPI_S_STATE:
        if (v != 0 && v != 3)
            return refuse(EINVAL, "set_param: ACPI_S_STATE %#" PRIx64, v);
        break;
    case HVM_PARAM_ACPI_IOPORTS_LOCATION:
        if (v != dom.params[i] && (v ^ dom.params[i]) != 1)
            return refuse(EINVAL, "set_param: ACPI_IOPORTS_LOCATION %#" PRIx64, v);
        break;
    case HVM_PARAM_ALTP2M:
        if (v > XEN_ALTP2M_limited)
            return refuse(EINVAL, "set_param: ALTP2M %#" PRIx64, v);
        break;
    case HVM_PARAM_TRIPLE_FAULT_REASON:
        if (v > 5 /* SHUTDOWN_MAX */)
            return refuse(EINVAL, "set_param: TRIPLE_FAULT_REASON %#" PRIx64, v);
        break;
    case HVM_PARAM_NR_IOREQ_SERVER_PAGES:
        if (v == 0 || v > 64)
            return refuse(EINVAL, "set_param: NR_IOREQ_SERVER_PAGES %#" PRIx64, v);
        break;
    case HVM_PARAM_X87_FIP_WIDTH:
        if (v != 0 && v != 4 && v != 8)
            return refuse(EINVAL, "set_param: X87_FIP_WIDTH %#" PRIx64, v);
        break;
    case HVM_PARAM_VM86_TSS:
        if (v != (uint32_t)v)
            return refuse(EINVAL, "set_param: VM86_TSS %#" PRIx64, v);
        break;
    case HVM_PARAM_VM86_TSS_SIZED:
        if ((v >> 32) < 104 /* sizeof(struct tss32) */)
            return refuse(EINVAL, "set_param: VM86_TSS_SIZED %#" PRIx64, v);
        break;
    case HVM_PARAM_MCA_CAP:
        if (v & ~(uint64_t)XEN_HVM_MCA_CAP_MASK)
            return refuse(EINVAL, "set_param: MCA_CAP %#" PRIx64, v);
        break;
    }
    dom.params[i] = v;
    return 0;
}

static int hvm_op(unsigned cmd, void *arg)
{
    struct xen_hvm_param *a = arg;
    switch (cmd) {
    case HVMOP_set_param:
        return set_param(a);
    case HVMOP_get_param:
        if (a->index >= HVM_NR_PARAMS)
            return refuse(EINVAL, "get_param: index %u", a->index);
        a->value = dom.params[a->index];
        return 0;
    default:
        return refuse(ENOSYS, "unmodelled hvm_op %u", cmd);
    }
}

/* ---------------------------------------------------------- mmuext_op */

static int mmuext_op(struct mmuext_op *ops, unsigned count, unsigned domid)
{
    if (domid != DOMID)
        return refuse(ESRCH, "mmuext_op: domain %u", domid);
    for (unsigned i = 0; i < count; i++) {
        switch (ops[i].cmd) {
        case MMUEXT_PIN_L1_TABLE:
        case MMUEXT_PIN_L2_TABLE:
        case MMUEXT_PIN_L3_TABLE:
        case MMUEXT_PIN_L4_TABLE: {
            uint64_t mfn = ops[i].arg1.mfn, m;
            if (resolve(DOMID, mfn, &m))
                return refuse(EINVAL, "mmuext_op: pin of mfn %#" PRIx64 " the domain does not own", mfn);
            map_put(&dom.pins, mfn, ops[i].cmd + 1);
            break;
        }
        default:
            return refuse(ENOSYS, "unmodelled mmuext_op cmd %u", ops[i].cmd);
        }
    }
    return 0;
}

/* xen/arch/x86/domain.c arch_set_info_guest(): cr3 must be the domain's
 * top-level table (here: pinned as one). Checked when the restore ends,
 * since libxc sets vcpu contexts before it pins. */
static int check_cr3s(void)
{
    unsigned want = dom.width == 8 ? MMUEXT_PIN_L4_TABLE : MMUEXT_PIN_L3_TABLE;
    for (unsigned v = 0; v < dom.nvcpus; v++) {
        uint64_t level;
        if (!dom.vcpus[v].has_ctxt)
            continue;
        if (!map_get(&dom.pins, dom.vcpus[v].cr3_mfn, &level) || level != want + 1)
            return refuse(EINVAL, "setvcpucontext: vcpu%u cr3 mfn %#" PRIx64 " is not a pinned L%u table",
                          v, dom.vcpus[v].cr3_mfn, dom.width == 8 ? 4 : 3);
    }
    return 0;
}

/* ------------------------------------------- libxencall entry points */

struct xencall_handle { int unused; };
static struct xencall_handle the_xcall;

xencall_handle *xencall_open(struct xentoollog_logger *logger, unsigned open_flags)
{
    (void)logger; (void)open_flags;
    return &the_xcall;
}
int xencall_close(xencall_handle *x) { (void)x; return 0; }
int xencall_fd(xencall_handle *x) { (void)x; return -1; }
int xencall_buffers_never_fault(xencall_handle *x) { (void)x; return 0; }
void *xencall_alloc_buffer_pages(xencall_handle *x, size_t nr)
{
    (void)x;
    void *p = mmap(NULL, nr * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}
void xencall_free_buffer_pages(xencall_handle *x, void *p, size_t nr)
{
    (void)x;
    if (p)
        munmap(p, nr * PAGE);
}
void *xencall_alloc_buffer(xencall_handle *x, size_t size)
{
    (void)x;
    return calloc(1, size ? size : 1);
}
void xencall_free_buffer(xencall_handle *x, void *p) { (void)x; free(p); }

static int hypercall(unsigned op, uint64_t a1, uint64_t a2, uint64_t a3, uint64_t a4)
{
    (void)a3;
    switch (op) {
    case __HYPERVISOR_domctl:
        return do_domctl((struct xen_domctl *)(uintptr_t)a1);
    case __HYPERVISOR_memory_op:
        return memory_op((unsigned)a1, (void *)(uintptr_t)a2);
    case __HYPERVISOR_hvm_op:
        return hvm_op((unsigned)a1, (void *)(uintptr_t)a2);
    case __HYPERVISOR_mmuext_op:
        return mmuext_op((struct mmuext_op *)(uintptr_t)a1, (unsigned)a2, (unsigned)a4);
    case __HYPERVISOR_multicall: {
        /* libxenctrl issues every memory_op as a one-entry multicall, to
         * get a long result back. */
        multicall_entry_t *calls = (multicall_entry_t *)(uintptr_t)a1;
        for (uint64_t i = 0; i < a2; i++) {
            multicall_entry_t *c = &calls[i];
            if (c->op == __HYPERVISOR_multicall)
                return refuse(EINVAL, "nested multicall");
            int r = hypercall((unsigned)c->op, c->args[0], c->args[1], c->args[2], c->args[3]);
            c->result = r < 0 ? (xen_ulong_t)(long)-errno : (xen_ulong_t)r;
        }
        return 0;
    }
    case __HYPERVISOR_xen_version:
        if (a1 == XENVER_version)
            return (4 << 16) | 17;
        return refuse(ENOSYS, "unmodelled xen_version %" PRIu64, a1);
    default:
        return refuse(ENOSYS, "unmodelled hypercall %u", op);
    }
}

int xencall0(xencall_handle *x, unsigned op) { (void)x; return hypercall(op, 0, 0, 0, 0); }
int xencall1(xencall_handle *x, unsigned op, uint64_t a1) { (void)x; return hypercall(op, a1, 0, 0, 0); }
int xencall2(xencall_handle *x, unsigned op, uint64_t a1, uint64_t a2)
{
    (void)x;
    return hypercall(op, a1, a2, 0, 0);
}
int xencall3(xencall_handle *x, unsigned op, uint64_t a1, uint64_t a2, uint64_t a3)
{
    (void)x;
    return hypercall(op, a1, a2, a3, 0);
}
int xencall4(xencall_handle *x, unsigned op, uint64_t a1, uint64_t a2, uint64_t a3, uint64_t a4)
{
    (void)x;
    return hypercall(op, a1, a2, a3, a4);
}
int xencall5(xencall_handle *x, unsigned op, uint64_t a1, uint64_t a2, uint64_t a3, uint64_t a4,
             uint64_t a5)
{
    (void)x; (void)a5;
    return hypercall(op, a1, a2, a3, a4);
}

/* ---------------------------------- libxenforeignmemory entry points */

struct xenforeignmemory_handle { int unused; };
struct xenforeignmemory_resource_handle { void *addr; size_t pages; };
static struct xenforeignmemory_handle the_fmem;

xenforeignmemory_handle *xenforeignmemory_open(struct xentoollog_logger *logger, unsigned flags)
{
    (void)logger; (void)flags;
    return &the_fmem;
}
int xenforeignmemory_close(xenforeignmemory_handle *f) { (void)f; return 0; }

void *xenforeignmemory_map2(xenforeignmemory_handle *f, uint32_t domid, void *addr, int prot,
                            int flags, size_t pages, const xen_pfn_t arr[], int err[])
{
    (void)f;
    if (!pages) {
        errno = EINVAL;
        return NULL;
    }
    uint8_t *va = mmap(addr, pages * PAGE, PROT_NONE,
                       MAP_PRIVATE | MAP_ANONYMOUS | (addr ? flags : 0), -1, 0);
    if (va == MAP_FAILED)
        return NULL;
    int failed = 0;
    size_t i = 0;
    while (i < pages) {
        uint64_t mfn, next;
        int e = resolve(domid, arr[i], &mfn);
        if (err)
            err[i] = -e;
        if (e) {
            failed = e;
            i++;
            continue;
        }
        size_t run = 1;
        while (i + run < pages && resolve(domid, arr[i + run], &next) == 0 && next == mfn + run) {
            if (err)
                err[i + run] = 0;
            run++;
        }
        if (mmap(va + i * PAGE, run * PAGE, prot, MAP_SHARED | MAP_FIXED, dom.memfd,
                 (off_t)(mfn * PAGE)) == MAP_FAILED) {
            int saved = errno;
            munmap(va, pages * PAGE);
            errno = saved;
            return NULL;
        }
        i += run;
    }
    if (failed && !err) {
        munmap(va, pages * PAGE);
        errno = failed;
        return NULL;
    }
    return va;
}

void *xenforeignmemory_map(xenforeignmemory_handle *f, uint32_t domid, int prot, size_t pages,
                           const xen_pfn_t arr[], int err[])
{
    return xenforeignmemory_map2(f, domid, NULL, prot, 0, pages, arr, err);
}

int xenforeignmemory_unmap(xenforeignmemory_handle *f, void *addr, size_t pages)
{
    (void)f;
    return munmap(addr, pages * PAGE);
}

int xenforeignmemory_restrict(xenforeignmemory_handle *f, domid_t domid)
{
    (void)f; (void)domid;
    return 0;
}

xenforeignmemory_resource_handle *xenforeignmemory_map_resource(
    xenforeignmemory_handle *f, domid_t domid, unsigned int type, unsigned int id,
    unsigned long frame, unsigned long nr_frames, void **paddr, int prot, int flags)
{
    (void)f; (void)id; (void)flags;
    if (domid != DOMID || type != XENMEM_resource_grant_table || frame != 0 || nr_frames != 1) {
        refuse(EOPNOTSUPP, "unmodelled resource %u frame %lu+%lu", type, frame, nr_frames);
        return NULL;
    }
    xenforeignmemory_resource_handle *h = calloc(1, sizeof(*h));
    void *va = mmap(*paddr, PAGE, prot, MAP_SHARED | (*paddr ? MAP_FIXED : 0), dom.memfd,
                    (off_t)(dom.gnttab_mfn * PAGE));
    if (!h || va == MAP_FAILED) {
        free(h);
        return NULL;
    }
    h->addr = *paddr = va;
    h->pages = 1;
    return h;
}

int xenforeignmemory_unmap_resource(xenforeignmemory_handle *f,
                                    xenforeignmemory_resource_handle *h)
{
    (void)f;
    if (h) {
        munmap(h->addr, h->pages * PAGE);
        free(h);
    }
    return 0;
}

/* ------------------------------------ libxendevicemodel entry points */

struct xendevicemodel_handle { int unused; };
static struct xendevicemodel_handle the_dmod;

xendevicemodel_handle *xendevicemodel_open(struct xentoollog_logger *logger, unsigned flags)
{
    (void)logger; (void)flags;
    return &the_dmod;
}
int xendevicemodel_close(xendevicemodel_handle *d) { (void)d; return 0; }

/* -------------------------------------------------------------- logger */

struct logger {
    xentoollog_logger base;
    char last_error[1024];
    bool out_of_memory; /* restore failed with ENOMEM: the harness's limit */
};

static void log_vmessage(xentoollog_logger *l, xentoollog_level level, int errnoval,
                         const char *context, const char *fmt, va_list al)
{
    struct logger *lg = (struct logger *)l;
    char buf[1024];
    int n;
    (void)errnoval; /* libxenctrl's messages already say their errno */
    vsnprintf(buf, sizeof(buf), fmt, al);
    /* One line: Xen's messages sometimes end in a newline. */
    for (char *p = buf; *p; p++)
        if (*p == '\n')
            *p = ' ';
    for (n = (int)strlen(buf); n > 0 && buf[n - 1] == ' '; n--)
        buf[n - 1] = 0;
    /* restore()'s closing "Restore failed" repeats the errno of the
     * message that said why; keep that one. */
    if (level >= XTL_ERROR && strncmp(buf, "Restore failed", 14))
        snprintf(lg->last_error, sizeof(lg->last_error), "%s", buf);
    if (level >= XTL_ERROR && strstr(buf, "(12 = Cannot allocate memory)"))
        lg->out_of_memory = true;
    if (verbose)
        fprintf(stderr, "xc: %s%s%s: %s\n", xtl_level_to_string(level), context ? " " : "",
                context ? context : "", buf);
}

static void log_progress(xentoollog_logger *l, const char *context, const char *doing_what,
                         int percent, unsigned long done, unsigned long total)
{
    (void)l; (void)context; (void)doing_what; (void)percent; (void)done; (void)total;
}

static void log_destroy(xentoollog_logger *l) { (void)l; }

static struct logger the_logger = {
    .base = {.vmessage = log_vmessage, .progress = log_progress, .destroy = log_destroy}};

/* ---------------------------------------------------------- containers */

struct input {
    int fd;
    bool libxl;     /* a libxl stream wraps the libxc one */
    unsigned vcpus; /* from the xl or libvirt config, 0 when not given */
};

static int read_at(int fd, void *buf, size_t len, off_t at)
{
    size_t got = 0;
    while (got < len) {
        ssize_t r = pread(fd, (char *)buf + got, len - got, at + (off_t)got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        got += (size_t)r;
    }
    return 0;
}

static int read_all(int fd, void *buf, size_t len)
{
    size_t got = 0;
    while (got < len) {
        ssize_t r = read(fd, (char *)buf + got, len - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        got += (size_t)r;
    }
    return 0;
}

static unsigned number_after(const char *text, size_t len, const char *key)
{
    size_t klen = strlen(key);
    for (size_t i = 0; i + klen < len; i++) {
        if (memcmp(text + i, key, klen))
            continue;
        if (i > 0 && (text[i - 1] == '_' || (text[i - 1] >= 'a' && text[i - 1] <= 'z')))
            continue;
        size_t j = i + klen;
        while (j < len && (text[j] == ' ' || text[j] == '"' || text[j] == ':' || text[j] == '=' ||
                           text[j] == '\t' || text[j] == '>'))
            j++;
        unsigned v = 0;
        bool any = false;
        while (j < len && text[j] >= '0' && text[j] <= '9') {
            v = v * 10 + (unsigned)(text[j++] - '0');
            any = true;
        }
        if (any && v > 0)
            return v;
    }
    return 0;
}

static unsigned config_vcpus(const char *cfg, size_t len)
{
    unsigned v = number_after(cfg, len, "max_vcpus");
    if (!v)
        v = number_after(cfg, len, "maxvcpus");
    if (!v)
        v = number_after(cfg, len, "vcpus");
    if (!v)
        v = number_after(cfg, len, "<vcpu");
    return v;
}

static void verdict(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3), noreturn));

/* Positions in->fd at the libxl header or the libxc image header. */
static int open_input(const char *path, struct input *in)
{
    static const char xl_magic[32] = "Xen saved domain, xl format\n \0 \r";
    static const char lv_magic[16] = "libvirt-xml\n \0 \r";
    unsigned char head[64];

    memset(in, 0, sizeof(*in));
    in->fd = open(path, O_RDONLY);
    if (in->fd < 0) {
        fprintf(stderr, "harness: %s: %s\n", path, strerror(errno));
        return -1;
    }
    memset(head, 0, sizeof(head));
    ssize_t got = pread(in->fd, head, sizeof(head), 0);
    if (got < 0)
        got = 0;
    off_t at = 0;
    if (got >= 48 && !memcmp(head, xl_magic, 32)) {
        uint32_t order, mand, opt, optlen;
        memcpy(&order, head + 32, 4);
        memcpy(&mand, head + 36, 4);
        memcpy(&opt, head + 40, 4);
        memcpy(&optlen, head + 44, 4);
        if (order != 0x01020304)
            verdict(1, "REFUSE: xl: file has wrong byte order %#x", order);
        if (!(mand & 2)) {
            fprintf(stderr, "harness: %s: a legacy xl save file: convert it first\n", path);
            return -1;
        }
        if (mand & ~3u)
            verdict(1, "REFUSE: xl: savefile has mandatory flag(s) %#x which are not supported",
                    mand & ~3u);
        char *opt_data = malloc(optlen ? optlen : 1);
        if (!opt_data || read_at(in->fd, opt_data, optlen, 48))
            verdict(1, "REFUSE: xl: truncated optional data");
        /* tools/xl/xl_vmcontrol.c: a u32 config length, then the config. */
        if (optlen) {
            uint32_t clen;
            if (optlen < 4)
                verdict(1, "REFUSE: xl: Savefile truncated.");
            memcpy(&clen, opt_data, 4);
            if (clen > optlen - 4)
                verdict(1, "REFUSE: xl: Savefile truncated.");
            in->vcpus = config_vcpus(opt_data + 4, clen);
        }
        free(opt_data);
        at = 48 + (off_t)optlen;
        in->libxl = true;
    } else if (got >= 64 && !memcmp(head, lv_magic, 16)) {
        uint32_t version, xml_len;
        memcpy(&version, head + 16, 4);
        memcpy(&xml_len, head + 20, 4);
        if (version != 2) {
            fprintf(stderr, "harness: %s: libvirt header version %u: not a v2 stream\n", path, version);
            return -1;
        }
        char *xml = malloc(xml_len ? xml_len : 1);
        if (!xml || read_at(in->fd, xml, xml_len, 64))
            verdict(1, "REFUSE: libvirt: truncated XML");
        in->vcpus = config_vcpus(xml, xml_len);
        free(xml);
        at = 64 + (off_t)xml_len;
        in->libxl = true;
    } else if (got >= 8 && !memcmp(head, "LibxlFmt", 8)) {
        in->libxl = true;
    }
    if (lseek(in->fd, at, SEEK_SET) < 0)
        return -1;
    return 0;
}

/* libxl's records (tools/libs/light/libxl_stream_read.c). */
struct lrec {
    uint32_t type, length;
    uint8_t *body;
};

static int libxl_read(int fd, struct lrec *r)
{
    uint32_t h[2];
    r->body = NULL;
    if (read_all(fd, h, sizeof(h)))
        return -1;
    r->type = h[0];
    r->length = h[1];
    size_t padded = ((size_t)r->length + 7) & ~(size_t)7;
    r->body = malloc(padded ? padded : 1);
    if (!r->body || read_all(fd, r->body, padded)) {
        free(r->body);
        r->body = NULL;
        return -1;
    }
    return 0;
}

static const char *libxl_emulator_record(const struct lrec *r)
{
    if (!dom.hvm)
        return r->type == 2 ? "libxl: Received a xenstore emulator record when none was expected"
                            : "libxl: Received an emulator context record when none was expected";
    if (r->length < 8)
        return r->type == 2 ? "libxl: Emulator xenstore data record too short to contain header"
                            : "libxl: Emulator record too short to contain header";
    if (r->type == 3)
        return NULL;
    const char *p = (const char *)r->body + 8, *end = (const char *)r->body + r->length;
    while (p < end) {
        const char *key = p;
        p = memchr(p, 0, (size_t)(end - p));
        if (!p)
            return "libxl: Key in xenstore data not NUL terminated";
        if (key[0] == 0)
            return "libxl: empty key found in xenstore data";
        if (key[0] == '/')
            return "libxl: Key in xenstore data not relative";
        p++;
        const char *val = p;
        p = val < end ? memchr(val, 0, (size_t)(end - val)) : NULL;
        if (!p)
            return "libxl: Val in xenstore data not NUL terminated";
        p++;
    }
    return NULL;
}

/* Reads libxl records up to (and consuming) the one that ends this part:
 * LIBXC_CONTEXT (before libxc), CHECKPOINT_END (in a checkpoint), END.
 * Returns the ending type, or -1 with *why set. */
static int libxl_walk(int fd, bool in_checkpoint, const char **why)
{
    struct lrec r;
    for (;;) {
        if (libxl_read(fd, &r)) {
            *why = "libxl: stream truncated";
            return -1;
        }
        const char *bad = NULL;
        int done = -2;
        switch (r.type) {
        case 0: done = 0; break;
        case 1: done = 1; break;
        case 2: case 3: bad = libxl_emulator_record(&r); break;
        case 4:
            if (in_checkpoint)
                done = 4;
            else
                bad = "libxl: Unexpected CHECKPOINT_END record in stream";
            break;
        case 5: bad = "libxl: Unexpected CHECKPOINT_STATE record in stream"; break;
        default: {
            static char msg[64];
            snprintf(msg, sizeof(msg), "libxl: Unrecognised record 0x%08x", r.type);
            bad = msg;
        }
        }
        free(r.body);
        if (bad) {
            *why = bad;
            return -1;
        }
        if (done != -2)
            return done;
    }
}

static int libxl_header(int fd, const char **why)
{
    unsigned char h[16];
    if (read_all(fd, h, sizeof(h))) {
        *why = "libxl: stream truncated in its header";
        return -1;
    }
    uint32_t version = (uint32_t)h[8] << 24 | h[9] << 16 | h[10] << 8 | h[11];
    uint32_t options = (uint32_t)h[12] << 24 | h[13] << 16 | h[14] << 8 | h[15];
    if (memcmp(h, "LibxlFmt", 8)) {
        *why = "libxl: Invalid ident";
        return -1;
    }
    if (version != 2) {
        static char msg[80];
        snprintf(msg, sizeof(msg), "libxl: Unexpected Version: expected 2, got %u", version);
        *why = msg;
        return -1;
    }
    if (options & 1) {
        *why = "libxl: Unable to handle big endian streams";
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------- restore */

struct cb_state {
    struct input *in;
    const char *why; /* a libxl refusal inside a checkpoint */
    bool failover;
};

static int checkpoint_cb(void *data)
{
    struct cb_state *s = data;
    if (!s->in->libxl)
        return XGR_CHECKPOINT_SUCCESS;
    const char *why = NULL;
    int end = libxl_walk(s->in->fd, true, &why);
    if (end == 4)
        return XGR_CHECKPOINT_SUCCESS;
    if (end < 0 && !strcmp(why, "libxl: stream truncated")) {
        /* libxl_stream_read.c checkpoint_done(): an error while buffering
         * the checkpoint's records is a failover. */
        s->failover = true;
        return XGR_CHECKPOINT_FAILOVER;
    }
    s->why = end < 0 ? why : "libxl: checkpoint ended without CHECKPOINT_END";
    return XGR_CHECKPOINT_ERROR;
}

static void verdict(int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
    fflush(stdout);
    _exit(code);
}

/* Runs in the child: its stdout is the verdict pipe. */
static void run_restore(struct input *in, bool remus)
{
    const char *why = NULL;
    if (in->libxl) {
        if (libxl_header(in->fd, &why) || libxl_walk(in->fd, false, &why) != 1)
            verdict(1, "REFUSE: %s", why ? why : "libxl: END before LIBXC_CONTEXT");
    }
    xc_interface *xch = xc_interface_open(&the_logger.base, &the_logger.base, 0);
    if (!xch)
        verdict(2, "SETUP: xc_interface_open failed");
    struct cb_state st = {.in = in};
    struct restore_callbacks cb = {.checkpoint = checkpoint_cb, .data = &st};
    unsigned long store_mfn = 0, console_mfn = 0;
    int rc = xc_domain_restore(xch, in->fd, DOMID, 1, &store_mfn, 0, 2, &console_mfn, 0,
                               remus ? XC_STREAM_REMUS : XC_STREAM_PLAIN, &cb, -1);
    if (rc) {
        if (st.why)
            verdict(1, "REFUSE: %s", st.why);
        if (dom.refusal[0])
            verdict(1, "REFUSE: %s [xc: %s]", dom.refusal, the_logger.last_error);
        /* libxc ran out of the address space the child may use: whether
         * Xen refuses depends on dom0's memory, not on the stream's rules. */
        if (the_logger.out_of_memory)
            verdict(1, "REFUSE: out of memory: %s", the_logger.last_error);
        verdict(1, "REFUSE: %s", the_logger.last_error[0] ? the_logger.last_error : "restore failed");
    }
    if (!dom.hvm && check_cr3s())
        verdict(1, "REFUSE: %s", dom.refusal);
    if (in->libxl && !st.failover) {
        int end = libxl_walk(in->fd, false, &why);
        if (end < 0 && !(remus && !strcmp(why, "libxl: stream truncated")))
            verdict(1, "REFUSE: %s", why);
        if (end == 1)
            verdict(1, "REFUSE: libxl: a second LIBXC_CONTEXT record");
    }
    verdict(0, "ACCEPT");
}

static void usage(void)
{
    fprintf(stderr, "usage: harness [--remus] [-v] FILE\n");
    exit(2);
}

int main(int argc, char **argv)
{
    bool remus = false;
    const char *path = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--remus"))
            remus = true;
        else if (!strcmp(argv[i], "-v"))
            verbose = 1;
        else if (argv[i][0] == '-' || path)
            usage();
        else
            path = argv[i];
    }
    if (!path)
        usage();

    struct input in;
    if (open_input(path, &in))
        return 2;
    /* The guest type decides the domain built for it. */
    off_t at = lseek(in.fd, 0, SEEK_CUR);
    unsigned char probe[16];
    uint32_t type = 2;
    if (in.libxl) {
        /* libxl header, then records up to LIBXC_CONTEXT: walk them on a dup. */
        off_t pos = at + 16;
        uint32_t h[2];
        while (read_at(in.fd, h, 8, pos) == 0 && h[0] != 1 && h[0] != 0)
            pos += 8 + (((off_t)h[1] + 7) & ~(off_t)7);
        if (read_at(in.fd, h, 8, pos) == 0 && h[0] == 1 && read_at(in.fd, &type, 4, pos + 8 + 24))
            type = 2;
    } else if (read_at(in.fd, probe, 4, at + 24) == 0) {
        memcpy(&type, probe, 4);
    }
    unsigned vcpus = in.vcpus ? in.vcpus : 128;
    model_init(type != 1, vcpus);
    if (verbose)
        fprintf(stderr, "harness: %s domain, %u vcpus%s\n", type == 1 ? "PV" : "HVM", vcpus,
                type == 1 || type == 2 ? "" : " (stream's type unknown: HVM)");

    int out[2], err[2];
    if (pipe(out) || pipe(err))
        return 2;
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0)
        return 2;
    if (pid == 0) {
        dup2(out[1], 1);
        dup2(err[1], 2);
        close(out[0]);
        close(err[0]);
        struct rlimit as = {(MEM_FRAMES * PAGE) + (3UL << 30), (MEM_FRAMES * PAGE) + (3UL << 30)};
        setrlimit(RLIMIT_AS, &as);
        run_restore(&in, remus);
    }
    close(out[1]);
    close(err[1]);

    char line[2048] = "", errbuf[8192] = "";
    size_t nline = 0, nerr = 0;
    time_t deadline = time(NULL) + TIME_LIMIT;
    bool out_open = true, err_open = true, timed_out = false;
    while (out_open || err_open) {
        struct pollfd p[2] = {{out_open ? out[0] : -1, POLLIN, 0}, {err_open ? err[0] : -1, POLLIN, 0}};
        int left = (int)(deadline - time(NULL));
        if (left <= 0) {
            timed_out = true;
            kill(pid, SIGKILL);
            break;
        }
        if (poll(p, 2, left * 1000) < 0 && errno != EINTR)
            break;
        char buf[4096];
        if (out_open && (p[0].revents & (POLLIN | POLLHUP))) {
            ssize_t r = read(out[0], buf, sizeof(buf));
            if (r <= 0)
                out_open = false;
            else {
                size_t take = (size_t)r < sizeof(line) - 1 - nline ? (size_t)r : sizeof(line) - 1 - nline;
                memcpy(line + nline, buf, take);
                nline += take;
            }
        }
        if (err_open && (p[1].revents & (POLLIN | POLLHUP))) {
            ssize_t r = read(err[0], buf, sizeof(buf));
            if (r <= 0)
                err_open = false;
            else {
                if (verbose)
                    fwrite(buf, 1, (size_t)r, stderr);
                /* Keep the tail: an assert's text comes last. */
                /* buf is smaller than errbuf. */
                if (nerr + (size_t)r > sizeof(errbuf) - 1) {
                    size_t drop = nerr + (size_t)r - (sizeof(errbuf) - 1);
                    memmove(errbuf, errbuf + drop, nerr - drop);
                    nerr -= drop;
                }
                memcpy(errbuf + nerr, buf, (size_t)r);
                nerr += (size_t)r;
                errbuf[nerr] = 0;
            }
        }
    }
    int status = 0;
    waitpid(pid, &status, 0);
    line[nline] = 0;
    if (timed_out) {
        printf("CRASH: timeout after %d s\n", TIME_LIMIT);
        return 3;
    }
    if (WIFSIGNALED(status)) {
        char *a = strstr(errbuf, "Assertion");
        if (a) {
            char *s = a;
            while (s > errbuf && s[-1] != '\n')
                s--;
            char *e = strchr(a, '\n');
            if (e)
                *e = 0;
            printf("CRASH: %s\n", s);
        } else {
            printf("CRASH: signal %d (%s)\n", WTERMSIG(status), strsignal(WTERMSIG(status)));
        }
        return 3;
    }
    char *nl = strchr(line, '\n');
    if (nl)
        *nl = 0;
    int code = WIFEXITED(status) ? WEXITSTATUS(status) : 2;
    if (!line[0] || code == 2) {
        fprintf(stderr, "harness: restore child ended without a verdict (status %d): %s\n", code, line);
        return 2;
    }
    printf("%s\n", line);
    return code;
}
