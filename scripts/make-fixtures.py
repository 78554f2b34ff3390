#!/usr/bin/env python3
"""Write the golden stream fixtures of the verifier into fixtures/.

The streams are built here, byte by byte, from the specs
(libxc-migration-stream.pandoc revision 3, libxl-migration-stream.pandoc
revision 2) and REFERENCE.md, independently of xsr's C++ code and of
`xsr gen`. Standard library only; the output is deterministic.

    scripts/make-fixtures.py [--out DIR] [--reference CMD]

writes fixtures/valid/*.bin, fixtures/invalid/*.bin and fixtures/expected.tsv.
With --reference (a command line for Xen's verify-stream-v2, e.g.
/tmp/refverify), every non-strict row is also run through the reference: its
exit code must be the expected one unless the row is a documented reference
defect, its error text must contain the row's message, and for every valid
fixture the reference accepts, its `-v` stdout is saved as
fixtures/valid/NAME.verbose (the golden -v output of the drop-in).
"""

import argparse
import os
import shlex
import struct
import subprocess
import sys

PAGE = 4096

# --- wire constants (libxc spec "Image Header", "Domain Header", "Records") --

IHDR_MARKER = 0xFFFFFFFFFFFFFFFF
IHDR_ID = 0x58454E46  # "XENF"
DHDR_PV, DHDR_HVM = 1, 2

LIBXC_NAMES = {
    0x00: "END", 0x01: "PAGE_DATA", 0x02: "X86_PV_INFO", 0x03: "X86_PV_P2M_FRAMES",
    0x04: "X86_PV_VCPU_BASIC", 0x05: "X86_PV_VCPU_EXTENDED", 0x06: "X86_PV_VCPU_XSAVE",
    0x07: "SHARED_INFO", 0x08: "X86_TSC_INFO", 0x09: "HVM_CONTEXT", 0x0A: "HVM_PARAMS",
    0x0B: "TOOLSTACK", 0x0C: "X86_PV_VCPU_MSRS", 0x0D: "VERIFY", 0x0E: "CHECKPOINT",
    0x0F: "CHECKPOINT_DIRTY_PFN_LIST", 0x10: "STATIC_DATA_END", 0x11: "X86_CPUID_POLICY",
    0x12: "X86_MSR_POLICY",
}
LIBXC = {v: k for k, v in LIBXC_NAMES.items()}

# libxl spec "Record Overview"
LIBXL_IDENT = 0x4C6962786C466D74  # "LibxlFmt"
LIBXL_OPT_LEGACY = 1 << 1
LIBXL_NAMES = {
    0: "END", 1: "LIBXC_CONTEXT", 2: "EMULATOR_XENSTORE_DATA", 3: "EMULATOR_CONTEXT",
    4: "CHECKPOINT_END", 5: "CHECKPOINT_STATE",
}
LIBXL = {v: k for k, v in LIBXL_NAMES.items()}
EMU_UNKNOWN, EMU_QEMU_TRAD, EMU_QEMU_UPSTREAM = 0, 1, 2

# xl header (REFERENCE.md "Legacy input" 1.)
XL_MAGIC = b"Xen saved domain, xl format\n \0 \r"
assert len(XL_MAGIC) == 32
XL_FLAG_JSON, XL_FLAG_STREAMV2 = 1 << 0, 1 << 1

# PAGE_DATA pfn types (XEN_DOMCTL_PFINFO_*)
NOTAB, L1TAB, L2TAB, L3TAB, L4TAB = 0x0, 0x1, 0x2, 0x3, 0x4
L1PIN, L2PIN, L3PIN, L4PIN = 0x9, 0xA, 0xB, 0xC
BROKEN, XALLOC, XTAB = 0xD, 0xE, 0xF

REC_LENGTH_MAX = 128 << 20  # Xen's restore refuses longer bodies


def type_name(layer, rtype):
    names = LIBXC_NAMES if layer == "libxc" else LIBXL_NAMES
    # Types outside the spec: OPTIONAL_ when bit 31 (optional) is set.
    return names.get(rtype, ("OPTIONAL_0x%08x" if rtype & 0x80000000 else "UNKNOWN_0x%08x") % rtype)


# --- headers ------------------------------------------------------------------

def ihdr(version=3, options=0, marker=IHDR_MARKER, ident=IHDR_ID, res1=0, res2=0):
    """libxc image header: big-endian marker, id, version, options, reserved."""
    return struct.pack("!QIIHHI", marker, ident, version, options, res1, res2)


def dhdr(gtype, page_shift=12, res=0, major=4, minor=17):
    """libxc domain header (little-endian)."""
    return struct.pack("<IHHII", gtype, page_shift, res, major, minor)


def libxl_hdr(ident=LIBXL_IDENT, version=2, options=0):
    """libxl header: big-endian ident, version, options."""
    return struct.pack("!QII", ident, version, options)


def xl_hdr(mflags, config=b"", magic=XL_MAGIC):
    """xl's header; its optional data is the config as xl writes it
    (save_domain_core_writeconfig): a u32 length, then the config and a NUL."""
    optdata = struct.pack("<I", len(config) + 1) + config + b"\0" if config else struct.pack("<I", 0)
    return magic + struct.pack("<IIII", 0x01020304, mflags, 0, len(optdata)) + optdata


XL_CONFIG = b'{"c_info": {"type": "hvm", "name": "fixture"}}\n'

# --- record bodies ---------------------------------------------------------------


def page(pfn):
    """A deterministic 4 KiB page, different per pfn."""
    return (b"xsr-pg%02x" % (pfn & 0xFF)) * (PAGE // 8)


def pfn_entry(ptype, pfn):
    return (ptype << 60) | pfn


def has_page(ptype):
    """Types 0x0-0x4 and 0x9-0xc carry a page (the low 3 type bits <= 4)."""
    return (ptype & 0x7) <= 4


def page_data(entries, pages=None, count=None, res=0):
    """entries: (type, pfn) pairs or raw u64 values; pages default to one page per
    entry whose type carries one."""
    raw = [e if isinstance(e, int) else pfn_entry(*e) for e in entries]
    if pages is None:
        pages = [page(e & ((1 << 52) - 1)) for e in raw if has_page(e >> 60)]
    if count is None:
        count = len(raw)
    return (struct.pack("<II", count, res) + struct.pack("<%dQ" % len(raw), *raw)
            + b"".join(pages))


def pv_info(width=8, levels=4, res1=0, res2=0):
    return struct.pack("<BBHI", width, levels, res1, res2)


def p2m_frames(start, end, frames):
    return struct.pack("<II", start, end) + struct.pack("<%dQ" % len(frames), *frames)


def vcpu(vcpu_id, ctx=b"", res=0):
    return struct.pack("<II", vcpu_id, res) + ctx


def ctx_bytes(n, seed):
    return bytes((seed + i * 13) & 0xFF for i in range(n))


def tsc_info(mode=0, khz=2000000, nsec=5, incarnation=1, res=0):
    return struct.pack("<IIQII", mode, khz, nsec, incarnation, res)


def hvm_params(params, count=None, res=0):
    if count is None:
        count = len(params)
    return struct.pack("<II", count, res) + b"".join(struct.pack("<QQ", i, v) for i, v in params)


def cpuid_policy(n):
    """n xen_cpuid_leaf_t: leaf, subleaf, a, b, c, d (24 bytes each)."""
    return b"".join(struct.pack("<IIIIII", leaf, 0xFFFFFFFF, 0xD, 0x756E6547, 0x6C65746E,
                                0x49656E69) for leaf in range(n))


def msr_policy(n):
    """n xen_msr_entry_t: idx, flags, val (16 bytes each)."""
    return b"".join(struct.pack("<IIQ", 0xCE + i, 0, 0x80000000) for i in range(n))


# --- guest state Xen's restore and the hypervisor look into (--strict) -----------

HVM_MAGIC, HVM_VERSION = 0x54381286, 1


def hvm_entry(code, instance, data, length=None):
    """An HVM save entry: u16 typecode, u16 instance, u32 length, data."""
    return struct.pack("<HHI", code, instance, len(data) if length is None else length) + data


def hvm_blob(entries=None, magic=HVM_MAGIC, version=HVM_VERSION, end=True):
    """An HVM context as hvm_load reads it: a HEADER entry (magic, version,
    changeset, cpuid, gtsc_khz), the entries (default: vCPU 0's CPU
    state, 1032 bytes), an END entry."""
    if entries is None:
        entries = [hvm_entry(2, 0, ctx_bytes(1032, 1))]
    blob = hvm_entry(1, 0, struct.pack("<IIQII", magic, version, 0, 0x806EC, 2000000))
    blob += b"".join(entries)
    return blob + (hvm_entry(0, 0, b"") if end else b"")


# PV vcpu_guest_context offsets (64-bit, 32-bit): rdx/edx, gdt_ents, ctrlreg[0]
PV_CTX = {8: (5168, 616, 4960, 4984), 4: (2800, 524, 2704, 2716)}
# start_info: store_mfn, console.domU.mfn
PV_START_INFO = {8: (56, 72), 4: (44, 52)}


def pv_basic(width=8, start_info=0, cr3_pfn=2):
    """vCPU state restore accepts: rdx names start_info, cr3 the top-level
    pagetable, no GDT frames."""
    size, rdx, _, ctrl = PV_CTX[width]
    ctx = bytearray(size)
    word = "<Q" if width == 8 else "<I"
    struct.pack_into(word, ctx, rdx, start_info)
    cr3 = cr3_pfn << 12 if width == 8 else ((cr3_pfn << 12) | (cr3_pfn >> 20)) & 0xFFFFFFFF
    struct.pack_into(word, ctx, ctrl + 3 * width, cr3)
    return bytes(ctx)


def start_info_page(width=8, store=1, console=1):
    pg = bytearray(PAGE)
    magic = b"xen-3.0-x86_64" if width == 8 else b"xen-3.0-x86_32p"
    pg[:len(magic)] = magic
    st, con = PV_START_INFO[width]
    word = "<Q" if width == 8 else "<I"
    struct.pack_into(word, pg, st, store)
    struct.pack_into(word, pg, con, console)
    return bytes(pg)


def pagetable_page(entries=()):
    """A pagetable page: (index, pfn) present entries, the rest empty."""
    pg = bytearray(PAGE)
    for i, pfn in entries:
        struct.pack_into("<Q", pg, 8 * i, (pfn << 12) | 0x67)
    return bytes(pg)


def emulator(emu_id, index=0, data=b""):
    return struct.pack("<II", emu_id, index) + data


# --- a stream under construction -------------------------------------------------


class R:
    """One record: layer 'libxc' or 'libxl', type, body; `length` overrides the
    header's body_length, `pad` the padding bytes; `fail` marks the record the
    verifier must blame."""

    def __init__(self, layer, rtype, body=b"", length=None, pad=None, fail=False):
        self.layer, self.rtype, self.body = layer, rtype, body
        self.length, self.pad, self.fail = length, pad, fail


def xc(name, body=b"", **kw):
    return R("libxc", LIBXC[name] if isinstance(name, str) else name, body, **kw)


def xl(name, body=b"", **kw):
    return R("libxl", LIBXL[name] if isinstance(name, str) else name, body, **kw)


class Stream:
    def __init__(self):
        self.buf = bytearray()
        self.nrec = 0
        self.err = None  # (offset, record, type) of the expected error

    def raw(self, data, fail_at=None):
        """Appends header bytes; fail_at: offset of the offending field in them."""
        if fail_at is not None:
            self.err = (len(self.buf) + fail_at, "-", "-")
        self.buf += data
        return self

    def rec(self, r):
        off, idx = len(self.buf), self.nrec
        self.nrec += 1
        length = len(r.body) if r.length is None else r.length
        pad = bytes(-len(r.body) % 8) if r.pad is None else r.pad
        self.buf += struct.pack("<II", r.rtype, length) + r.body + pad
        if r.fail:
            self.err = (off, idx, type_name(r.layer, r.rtype))
        return self

    def here(self):
        return len(self.buf)

    def recs(self, records):
        for r in records:
            self.rec(r)
        return self

    def bytes(self):
        return bytes(self.buf)


# --- standard record sequences ------------------------------------------------------


def hvm_records(version=3, with_policy=True):
    """A small HVM guest: policies + STATIC_DATA_END (v3), 3 pfns in two
    PAGE_DATA records (one XTAB), TSC, HVM_PARAMS, HVM_CONTEXT; END not
    included."""
    r = []
    if version >= 3:
        if with_policy:
            r += [xc("X86_CPUID_POLICY", cpuid_policy(2)), xc("X86_MSR_POLICY", msr_policy(1))]
        r += [xc("STATIC_DATA_END")]
    # Xen's save order: TSC, HVM context, then the params (whose pfns
    # are populated: the hypervisor refuses params naming others).
    r += [
        xc("PAGE_DATA", page_data([(NOTAB, 0), (NOTAB, 1), (XTAB, 2)])),
        xc("PAGE_DATA", page_data([(NOTAB, 0xFEFF0), (NOTAB, 0xFEFF1), (NOTAB, 0xFEFF2)])),
        xc("X86_TSC_INFO", tsc_info()),
        xc("HVM_CONTEXT", hvm_blob()),
        xc("HVM_PARAMS", hvm_params([(1, 0xFEFF2), (5, 0xFEFF0), (6, 0xFEFF1)])),
    ]
    return r


def pv_records(version=3, width=8, levels=4, vcpu0_basic=True, frame=1, start_info=0, cr3=2,
               store=1, console=1, top=None, top_entries=()):
    """A small PV guest restore accepts: pfns 0-4 in its p2m (one frame list
    page, pfn `frame`), start_info at pfn 0, the frame list page at 1, the
    pinned top-level pagetable at 2, pfn 3 invalid, pfn 4 never sent; END
    not included."""
    if top is None:
        top = L4PIN if levels == 4 else L3PIN
    pages = [start_info_page(width, store, console), page(1), pagetable_page(top_entries)]
    r = [xc("X86_PV_INFO", pv_info(width, levels))]
    if version >= 3:
        r += [xc("X86_CPUID_POLICY", cpuid_policy(1)), xc("X86_MSR_POLICY", msr_policy(2)),
              xc("STATIC_DATA_END")]
    r += [
        xc("X86_PV_P2M_FRAMES", p2m_frames(0, 4, [frame])),
        xc("PAGE_DATA", page_data([(NOTAB, 0), (NOTAB, 1), (top, 2), (XTAB, 3)], pages)),
        xc("X86_TSC_INFO", tsc_info(mode=1, khz=2400000, nsec=123456789, incarnation=2)),
        xc("SHARED_INFO", ctx_bytes(PAGE, 7)),
    ]
    if vcpu0_basic:
        r += [xc("X86_PV_VCPU_BASIC", vcpu(0, pv_basic(width, start_info, cr3)))]
    r += [
        # The extended context starts with the vcpu the hypervisor sets.
        xc("X86_PV_VCPU_EXTENDED", vcpu(0, struct.pack("<I", 0) + ctx_bytes(124, 4))),
        xc("X86_PV_VCPU_XSAVE", vcpu(0, ctx_bytes(80, 5))),
        xc("X86_PV_VCPU_MSRS", vcpu(0, ctx_bytes(32, 6))),
        xc("X86_PV_VCPU_BASIC", vcpu(1, pv_basic(width, 0x3FF, 2))),
    ]
    return r


def libxc_stream(s, gtype, records, version=3, end=True, major=4, minor=17):
    s.raw(ihdr(version)).raw(dhdr(gtype, major=major, minor=minor)).recs(records)
    if end:
        s.rec(xc("END"))
    return s


def insert(records, rec, before="HVM_PARAMS"):
    """A copy of records with rec inserted before the first record named
    `before` (or at the end when None)."""
    out = list(records)
    if before is None:
        return out + [rec]
    for i, r in enumerate(out):
        if r.layer == "libxc" and LIBXC_NAMES.get(r.rtype) == before:
            return out[:i] + [rec] + out[i:]
    raise ValueError(before)


def hvm_with(rec, before="HVM_PARAMS", version=3):
    s = Stream()
    return libxc_stream(s, DHDR_HVM, insert(hvm_records(version), rec, before), version)


def pv_with(rec, before="SHARED_INFO", version=3):
    s = Stream()
    return libxc_stream(s, DHDR_PV, insert(pv_records(version), rec, before), version)


def libxl_stream(s, gtype=DHDR_HVM, libxc_records=None, after=None, options=0, version=3,
                 major=4, minor=17):
    """libxl header, LIBXC_CONTEXT, a libxc stream, `after` libxl records, END."""
    if libxc_records is None:
        libxc_records = hvm_records(version) if gtype == DHDR_HVM else pv_records(version)
    if after is None:
        after = ([xl("EMULATOR_XENSTORE_DATA", emulator(EMU_QEMU_UPSTREAM)),
                  xl("EMULATOR_CONTEXT", emulator(EMU_QEMU_UPSTREAM, 0, ctx_bytes(29, 9)))]
                 if gtype == DHDR_HVM else [])
    s.raw(libxl_hdr(options=options)).rec(xl("LIBXC_CONTEXT"))
    libxc_stream(s, gtype, libxc_records, version, major=major, minor=minor)
    s.recs(after).rec(xl("END"))
    return s


def libxl_with(rec, gtype=DHDR_HVM):
    s = Stream()
    after = [xl("EMULATOR_CONTEXT", emulator(EMU_QEMU_UPSTREAM, 0, ctx_bytes(16, 2))), rec]
    return libxl_stream(s, gtype, after=after)


# --- the fixture table --------------------------------------------------------------

TRUNC = "stream truncated"


class Fixtures:
    def __init__(self):
        self.files = {}     # rel path -> bytes
        self.rows = []      # dicts, one per expected.tsv line
        self.defects = {}   # (file, strict) -> (reference exit, why)

    def add(self, rel, s, fmt, exit, message="-", strict=0, ref_exit=None, why=None,
            ref_message=True, trunc_record=True):
        """rel: path under fixtures/; s: Stream or bytes. For errors the
        offset/record/type come from the Stream's marked failure; a truncation
        (message TRUNC) has offset '-' and, if the cut is inside a record body,
        that record. ref_exit/why: a documented reference defect.
        ref_message: substring the reference's error text must contain (True:
        the same as message; None: not checked)."""
        data = s.bytes() if isinstance(s, Stream) else s
        assert len(data) < 64 * 1024, (rel, len(data))
        if rel in self.files:
            assert self.files[rel] == data, rel
        self.files[rel] = data
        off = rec = typ = "-"
        if exit != 0:
            err = s.err if isinstance(s, Stream) else None
            if message == TRUNC:
                if err is not None and trunc_record:
                    rec, typ = err[1], err[2]
            else:
                assert err is not None, rel
                off, rec, typ = err
        self.rows.append(dict(file=rel, format=fmt, strict=strict, exit=exit, offset=off,
                              record=rec, type=typ, message=message,
                              ref_message=(message if ref_message is True else ref_message)))
        if ref_exit is not None:
            self.defects[(rel, strict)] = (ref_exit, why)

    def row(self, rel, fmt, exit, strict, err=None, message="-"):
        """Another row (another format or strict mode) for an existing file."""
        assert rel in self.files, rel
        off, rec, typ = err if err else ("-", "-", "-")
        self.rows.append(dict(file=rel, format=fmt, strict=strict, exit=exit, offset=off,
                              record=rec, type=typ, message=message, ref_message=None))


def build():
    F = Fixtures()
    V, I = "valid/", "invalid/"

    # ---------------- valid libxc streams ----------------
    F.add(V + "libxc-v3-hvm.bin", libxc_stream(Stream(), DHDR_HVM, hvm_records(3)), "libxc", 0)
    F.add(V + "libxc-v3-pv.bin", libxc_stream(Stream(), DHDR_PV, pv_records(3)), "libxc", 0)
    F.add(V + "libxc-v2-hvm.bin", libxc_stream(Stream(), DHDR_HVM, hvm_records(2), 2), "libxc", 0)
    F.add(V + "libxc-v2-pv.bin", libxc_stream(Stream(), DHDR_PV, pv_records(2), 2), "libxc", 0)
    F.add(V + "libxc-v3-pv-32bit.bin",
          libxc_stream(Stream(), DHDR_PV, pv_records(3, width=4, levels=3)), "libxc", 0)
    F.add(V + "libxc-v3-hvm-no-policy.bin",
          libxc_stream(Stream(), DHDR_HVM, hvm_records(3, with_policy=False)), "libxc", 0)
    F.add(V + "libxc-legacy-converted-hvm.bin",
          libxc_stream(Stream(), DHDR_HVM, hvm_records(3), major=0, minor=1), "libxc", 0)
    F.add(V + "libxc-end-only.bin", libxc_stream(Stream(), DHDR_HVM, []), "libxc", 0)

    # PAGE_DATA: every page type that carries a page, and the three that do not.
    F.add(V + "pagedata-pagetable-types.bin", pv_with(xc("PAGE_DATA", page_data(
        [(NOTAB, 2), (L1TAB, 4), (L2TAB, 5), (L3TAB, 6), (L4TAB, 7)])), before="X86_TSC_INFO"),
        "libxc", 0)
    F.add(V + "pagedata-pinned-types.bin", pv_with(xc("PAGE_DATA", page_data(
        [(L1PIN, 8), (L2PIN, 9), (L3PIN, 10), (L4PIN, 11)])), before="X86_TSC_INFO"),
        "libxc", 0)
    F.add(V + "pagedata-broken-xalloc-xtab.bin", hvm_with(xc("PAGE_DATA", page_data(
        [(BROKEN, 3), (XALLOC, 4), (XTAB, 5)]))), "libxc", 0)
    F.add(V + "pagedata-max-pfn.bin", hvm_with(xc("PAGE_DATA", page_data(
        [(NOTAB, (1 << 52) - 1), (XTAB, (1 << 52) - 2)]))), "libxc", 0)
    F.add(V + "pagedata-mixed-types.bin", pv_with(xc("PAGE_DATA", page_data(
        [(XTAB, 12), (L1TAB, 13), (BROKEN, 14), (L2PIN, 15), (XALLOC, 16), (NOTAB, 17)])),
        before="X86_TSC_INFO"), "libxc", 0)

    # Variable-length records with no content (errata 1), a P2M record without frames.
    s = libxc_stream(Stream(), DHDR_PV, pv_records(3) + [
        xc("X86_PV_VCPU_EXTENDED", vcpu(1)), xc("X86_PV_VCPU_XSAVE", vcpu(1)),
        xc("X86_PV_VCPU_MSRS", vcpu(1))])
    F.add(V + "pv-vcpu-zero-content.bin", s, "libxc", 0)
    F.add(V + "p2m-frames-header-only.bin",
          pv_with(xc("X86_PV_P2M_FRAMES", p2m_frames(0, 0, [])), before="PAGE_DATA"), "libxc", 0)
    F.add(V + "hvm-params-zero-count.bin", hvm_with(xc("HVM_PARAMS", hvm_params([]))),
          "libxc", 0)
    F.add(V + "hvm-context-odd-lengths.bin", libxc_stream(Stream(), DHDR_HVM, hvm_records(3) + [
        xc("HVM_CONTEXT", ctx_bytes(1, 2)), xc("HVM_CONTEXT", ctx_bytes(7, 3)),
        xc("HVM_CONTEXT", ctx_bytes(8, 4)), xc("HVM_CONTEXT", ctx_bytes(9, 5))]), "libxc", 0)
    F.add(V + "verify-record.bin", libxc_stream(Stream(), DHDR_HVM, hvm_records(3) + [
        xc("VERIFY"), xc("PAGE_DATA", page_data([(NOTAB, 0), (NOTAB, 1)]))]), "libxc", 0)
    def libxc_checkpoint(mark=False):
        return libxc_stream(Stream(), DHDR_HVM, hvm_records(3) + [
            xc("CHECKPOINT", fail=mark), xc("PAGE_DATA", page_data([(NOTAB, 1)])),
            xc("HVM_PARAMS", hvm_params([(1, 0xFEFF2)])), xc("HVM_CONTEXT", ctx_bytes(21, 6)),
            xc("CHECKPOINT")])

    F.add(V + "libxc-checkpoint.bin", libxc_checkpoint(), "libxc", 0)
    s = libxc_stream(Stream(), DHDR_HVM, hvm_records(3))
    F.add(V + "trailing-bytes-after-end.bin", s.raw(b"\xde\xad\xbe\xef trailing garbage"),
          "libxc", 0)
    F.add(V + "optional-record.bin", hvm_with(xc(0x80000042, b"optional payload")), "libxc", 0,
          ref_exit=1, why="the reference rejects unknown types with bit 31 (optional) set")
    F.add(V + "optional-record-empty.bin", hvm_with(xc(0xFFFFFFFF)), "libxc", 0,
          ref_exit=1, why="the reference rejects unknown types with bit 31 (optional) set")

    # ---------------- valid libxl / xl streams ----------------
    F.add(V + "libxl-hvm.bin", libxl_stream(Stream()), "libxl", 0)
    F.add(V + "libxl-pv.bin", libxl_stream(Stream(), DHDR_PV), "libxl", 0)
    F.add(V + "libxl-legacy-converted.bin",
          libxl_stream(Stream(), options=LIBXL_OPT_LEGACY, major=0, minor=1, after=[
              xl("EMULATOR_CONTEXT", emulator(EMU_UNKNOWN, 0, ctx_bytes(40, 1)))]), "libxl", 0)
    F.add(V + "libxl-emulator-ids.bin", libxl_stream(Stream(), after=[
        xl("EMULATOR_CONTEXT", emulator(EMU_UNKNOWN, 0, ctx_bytes(3, 1))),
        xl("EMULATOR_CONTEXT", emulator(EMU_QEMU_TRAD, 1, ctx_bytes(11, 2))),
        xl("EMULATOR_CONTEXT", emulator(EMU_QEMU_UPSTREAM, 2, ctx_bytes(16, 3))),
        xl("EMULATOR_XENSTORE_DATA", emulator(EMU_UNKNOWN, 0)),
        xl("EMULATOR_XENSTORE_DATA", emulator(EMU_QEMU_TRAD, 1))]), "libxl", 0)
    F.add(V + "libxl-checkpoint-records.bin", libxl_stream(Stream(), after=[
        xl("EMULATOR_CONTEXT", emulator(EMU_QEMU_UPSTREAM, 0, ctx_bytes(12, 4))),
        xl("CHECKPOINT_STATE", struct.pack("<II", 2, 0)), xl("CHECKPOINT_END"),
        xl("CHECKPOINT_STATE", b"\x03")]), "libxl", 0)
    F.add(V + "libxl-xenstore-data.bin", libxl_stream(Stream(), after=[
        xl("EMULATOR_XENSTORE_DATA", emulator(EMU_QEMU_UPSTREAM, 0, b"key\0value\0")),
        xl("EMULATOR_XENSTORE_DATA", emulator(EMU_QEMU_TRAD, 0,
                                              b"physmap/f0000000/name\0vga\0empty\0\0")),
        xl("EMULATOR_CONTEXT", emulator(EMU_QEMU_UPSTREAM, 0, ctx_bytes(16, 5)))]), "libxl", 0,
        ref_exit=1, why="the Python 3 reference rejects every non-empty EMULATOR_XENSTORE_DATA")
    def libxl_optional(mark=False):
        return libxl_with(xl(0x80000042, b"optional libxl payload", fail=mark))

    F.add(V + "libxl-optional-record.bin", libxl_optional(), "libxl", 0,
          ref_exit=1, why="the reference rejects unknown types with bit 31 (optional) set")

    # A checkpointed (Remus/COLO) libxl stream: libxc CHECKPOINT hands back to
    # libxl, whose records run up to CHECKPOINT_END, then libxc continues.
    def checkpointed(bad_emulator=False):
        s = Stream()
        s.raw(libxl_hdr()).rec(xl("LIBXC_CONTEXT"))
        s.raw(ihdr(3)).raw(dhdr(DHDR_HVM))
        s.recs(hvm_records(3) + [xc("CHECKPOINT")])
        s.recs([xl("EMULATOR_XENSTORE_DATA", emulator(EMU_QEMU_UPSTREAM)),
                xl("EMULATOR_CONTEXT", emulator(EMU_QEMU_UPSTREAM, 0, ctx_bytes(20, 1))),
                xl("CHECKPOINT_END")])
        s.recs([xc("PAGE_DATA", page_data([(NOTAB, 1)])),
                xc("HVM_PARAMS", hvm_params([(1, 0xFEFF2)])),
                xc("HVM_CONTEXT", hvm_blob()), xc("CHECKPOINT")])
        s.recs([xl("EMULATOR_CONTEXT", emulator(3 if bad_emulator else EMU_QEMU_UPSTREAM, 0,
                                                ctx_bytes(20, 3)), fail=bad_emulator),
                xl("CHECKPOINT_END")])
        s.recs([xc("PAGE_DATA", page_data([(NOTAB, 0), (XTAB, 2)])),
                xc("HVM_PARAMS", hvm_params([(1, 0xFEFF2)])),
                xc("HVM_CONTEXT", hvm_blob()), xc("END")])
        s.rec(xl("END"))
        return s

    F.add(V + "libxl-checkpointed.bin", checkpointed(), "libxl", 0, ref_exit=1,
          why="the reference has no checkpoint hand-over: it reads the libxl records after a "
              "libxc CHECKPOINT as libxc records")
    F.add(I + "libxl-checkpointed-emulator-id-3.bin", checkpointed(True), "libxl", 1,
          "Unrecognised emulator id 0x3", ref_message=None)

    xl_libxl = Stream().raw(xl_hdr(XL_FLAG_JSON | XL_FLAG_STREAMV2, XL_CONFIG))
    F.add(V + "xl-libxl-hvm.bin", libxl_stream(xl_libxl), "xl", 0)
    xl_libxc = Stream().raw(xl_hdr(XL_FLAG_JSON, XL_CONFIG))
    F.add(V + "xl-libxc-pv.bin", libxc_stream(xl_libxc, DHDR_PV, pv_records(3)), "xl", 0)
    F.add(V + "xl-libxc-hvm-no-config.bin",
          libxc_stream(Stream().raw(xl_hdr(0)), DHDR_HVM, hvm_records(3)), "xl", 0)

    # ---------------- libxc image header ----------------
    def bad_ihdr(name, field_off, message, **kw):
        s = Stream().raw(ihdr(**kw), fail_at=field_off).raw(dhdr(DHDR_HVM))
        F.add(I + name, s.recs(hvm_records(3) + [xc("END")]), "libxc", 1, message)

    bad_ihdr("ihdr-bad-marker.bin", 0, "Bad image marker", marker=0xFFFFFFFF00000000)
    bad_ihdr("ihdr-bad-id.bin", 8, "Bad image id", ident=0x58454E47)
    bad_ihdr("ihdr-version-1.bin", 12, "Unknown image version: Expected 2 <= ver <= 3, got 1",
             version=1)
    bad_ihdr("ihdr-version-4.bin", 12, "Unknown image version: Expected 2 <= ver <= 3, got 4",
             version=4)
    bad_ihdr("ihdr-options-reserved-bit.bin", 16,
             "Reserved bits set in image options field: 0x2", options=0x0002)
    bad_ihdr("ihdr-options-reserved-bit15.bin", 16,
             "Reserved bits set in image options field: 0x8000", options=0x8000)
    bad_ihdr("ihdr-reserved-16bit.bin", 18,
             "Reserved bits set in image header: 0x0001:0x00000000", res1=1)
    bad_ihdr("ihdr-reserved-32bit.bin", 18,
             "Reserved bits set in image header: 0x0000:0x80000000", res2=0x80000000)

    # ---------------- libxc domain header ----------------
    def bad_dhdr(name, field_off, message, **kw):
        s = Stream().raw(ihdr(3)).raw(dhdr(**kw), fail_at=field_off)
        F.add(I + name, s.recs(hvm_records(3) + [xc("END")]), "libxc", 1, message)

    bad_dhdr("dhdr-type-0.bin", 0, "Unrecognised domain type 0x0", gtype=0)
    bad_dhdr("dhdr-type-3.bin", 0, "Unrecognised domain type 0x3", gtype=3)
    bad_dhdr("dhdr-reserved.bin", 6, "Reserved bits set in domain header 0x0001",
             gtype=DHDR_HVM, res=1)
    bad_dhdr("dhdr-page-shift-16.bin", 4, "Page shift expected to be 12.  Got 16",
             gtype=DHDR_HVM, page_shift=16)

    # ---------------- libxc records ----------------
    def bad(name, rec, message, pv=False, before=None, version=3, ref_message=True, **kw):
        if pv:
            s = pv_with(rec, before or "SHARED_INFO", version)
        else:
            s = hvm_with(rec, before or "HVM_PARAMS", version)
        F.add(I + name, s, "libxc", 1, message, ref_message=ref_message, **kw)

    bad("end-nonzero-length.bin", xc("END", b"\0" * 8, fail=True),
        "End record with non-zero length", before="HVM_PARAMS")

    # PAGE_DATA
    bad("pagedata-zero-count.bin", xc("PAGE_DATA", page_data([]), fail=True),
        "PAGE_DATA record must be at least 8 bytes long")
    bad("pagedata-empty-body.bin", xc("PAGE_DATA", b"", fail=True),
        "PAGE_DATA record must be at least 8 bytes long")
    bad("pagedata-zero-count-trailing.bin",
        xc("PAGE_DATA", page_data([(NOTAB, 5)], count=0), fail=True),
        "Expected 8 + 0 + 0, got 4112")
    bad("pagedata-reserved-header.bin",
        xc("PAGE_DATA", page_data([(NOTAB, 5)], res=1), fail=True),
        "Reserved bits set in PAGE_DATA record 0x0001")
    bad("pagedata-count-exceeds-pfns.bin",
        xc("PAGE_DATA", page_data([(XTAB, 5), (XTAB, 6)], count=4), fail=True),
        "PAGE_DATA record must contain a pfn record for each count")
    bad("pagedata-reserved-pfn-bits.bin", xc("PAGE_DATA", page_data(
        [(NOTAB, 5), pfn_entry(NOTAB, 6) | (1 << 52)], pages=[page(5), page(6)]), fail=True),
        "Reserved bits set in pfn[1]: 0x0010000000000000")
    bad("pagedata-reserved-pfn-bit59.bin", xc("PAGE_DATA", page_data(
        [pfn_entry(XTAB, 6) | (1 << 59)], pages=[]), fail=True),
        "Reserved bits set in pfn[0]: 0x0800000000000000")
    for t in (5, 6, 7, 8):
        bad("pagedata-type-%d.bin" % t, xc("PAGE_DATA", page_data(
            [(NOTAB, 5), (t, 6)], pages=[page(5), page(6)]), fail=True),
            "Invalid type value in pfn[1]: 0x%x000000000000000" % t)
    for t, tn in ((BROKEN, "broken"), (XALLOC, "xalloc"), (XTAB, "xtab")):
        bad("pagedata-%s-with-page.bin" % tn,
            xc("PAGE_DATA", page_data([(t, 5)], pages=[page(5)]), fail=True),
            "Expected 8 + 8 + 0, got 4112")
    for t, tn in ((NOTAB, "notab"), (L1TAB, "l1tab"), (L4TAB, "l4tab"), (L1PIN, "l1tab-pin"),
                  (L4PIN, "l4tab-pin")):
        bad("pagedata-%s-without-page.bin" % tn,
            xc("PAGE_DATA", page_data([(t, 5)], pages=[]), fail=True),
            "Expected 8 + 8 + 4096, got 16", pv=True, before="X86_TSC_INFO")
    bad("pagedata-missing-second-page.bin", xc("PAGE_DATA", page_data(
        [(NOTAB, 5), (L2PIN, 6)], pages=[page(5)]), fail=True),
        "Expected 8 + 16 + 8192, got 4120", pv=True, before="X86_TSC_INFO")
    bad("pagedata-extra-bytes.bin", xc("PAGE_DATA", page_data(
        [(NOTAB, 5)], pages=[page(5) + b"\0" * 8]), fail=True),
        "Expected 8 + 8 + 4096, got 4120")

    # X86_PV_INFO
    bad("pv-info-length-16.bin", xc("X86_PV_INFO", pv_info() + b"\0" * 8, fail=True),
        "x86_pv_info: expected length of 8, got 16", pv=True, before="X86_PV_INFO")
    bad("pv-info-length-4.bin", xc("X86_PV_INFO", pv_info()[:4], fail=True),
        "x86_pv_info: expected length of 8, got 4", pv=True, before="X86_PV_INFO")
    bad("pv-info-width-2.bin", xc("X86_PV_INFO", pv_info(width=2), fail=True),
        "Expected width of 4 or 8, got 2", pv=True, before="X86_PV_INFO")
    bad("pv-info-levels-2.bin", xc("X86_PV_INFO", pv_info(levels=2), fail=True),
        "Expected levels of 3 or 4, got 2", pv=True, before="X86_PV_INFO")
    bad("pv-info-reserved-16bit.bin", xc("X86_PV_INFO", pv_info(res1=1), fail=True),
        "Reserved bits set in X86_PV_INFO: 0x0001 0x00000000", pv=True, before="X86_PV_INFO")
    bad("pv-info-reserved-32bit.bin", xc("X86_PV_INFO", pv_info(res2=0x100), fail=True),
        "Reserved bits set in X86_PV_INFO: 0x0000 0x00000100", pv=True, before="X86_PV_INFO")

    # X86_PV_P2M_FRAMES
    bad("p2m-frames-length-4.bin", xc("X86_PV_P2M_FRAMES", b"\0" * 4, fail=True),
        "x86_pv_p2m_frames: record length must be at least 8 bytes long", pv=True,
        before="X86_PV_P2M_FRAMES")
    bad("p2m-frames-length-12.bin",
        xc("X86_PV_P2M_FRAMES", p2m_frames(0, 3, []) + b"\x34\x12\0\0", fail=True),
        "Length expected to be a multiple of 8, not 12", pv=True, before="X86_PV_P2M_FRAMES")

    # X86_PV_VCPU_{BASIC,EXTENDED,XSAVE,MSRS}
    for rname, lname in (("X86_PV_VCPU_BASIC", "basic"), ("X86_PV_VCPU_EXTENDED", "extended"),
                         ("X86_PV_VCPU_XSAVE", "xsave"), ("X86_PV_VCPU_MSRS", "msrs")):
        bad("pv-vcpu-%s-length-4.bin" % lname, xc(rname, b"\0" * 4, fail=True),
            "X86_PV_VCPU_%s record length must be at least 8 bytes long" % lname, pv=True)
        bad("pv-vcpu-%s-reserved.bin" % lname, xc(rname, vcpu(0, ctx_bytes(16, 1), res=1),
                                                  fail=True),
            "Reserved bits set in x86_pv_vcpu_%s record 0x0001" % lname, pv=True)

    # SHARED_INFO (the reference's message says "4906": match what both say)
    bad("shared-info-length-4095.bin", xc("SHARED_INFO", ctx_bytes(4095, 1), fail=True),
        "Length expected to be", pv=True)
    bad("shared-info-length-8192.bin", xc("SHARED_INFO", ctx_bytes(8192, 1), fail=True),
        "Length expected to be", pv=True)

    # X86_TSC_INFO
    bad("tsc-info-length-16.bin", xc("X86_TSC_INFO", tsc_info()[:16], fail=True),
        "Length should be 24 bytes")
    bad("tsc-info-length-32.bin", xc("X86_TSC_INFO", tsc_info() + b"\0" * 8, fail=True),
        "Length should be 24 bytes")
    bad("tsc-info-reserved.bin", xc("X86_TSC_INFO", tsc_info(res=1), fail=True),
        "Reserved bits set in X86_TSC_INFO: 0x00000001")

    # HVM_CONTEXT, HVM_PARAMS
    bad("hvm-context-empty.bin", xc("HVM_CONTEXT", b"", fail=True), "Zero length HVM context")
    bad("hvm-params-length-4.bin", xc("HVM_PARAMS", b"\0" * 4, fail=True),
        "Length should be at least 8 bytes")
    bad("hvm-params-reserved.bin", xc("HVM_PARAMS", hvm_params([(1, 2)], res=1), fail=True),
        "Reserved field not zero (0x0001)")
    bad("hvm-params-count-exceeds-entries.bin",
        xc("HVM_PARAMS", hvm_params([(1, 2)], count=2), fail=True), "Length should be 40 bytes")
    bad("hvm-params-extra-bytes.bin",
        xc("HVM_PARAMS", hvm_params([(1, 2)]) + b"\0" * 8, fail=True),
        "Length should be 24 bytes")

    # TOOLSTACK (deprecated): a stream error here; the reference crashes (exit 2).
    bad("toolstack-record.bin", xc("TOOLSTACK", b"\x01\0\0\0\0\0\0\0", fail=True),
        "Found Toolstack record in stream", ref_exit=2,
        why="the reference raises DeprecationWarning: a script error, exit 2")

    # VERIFY, CHECKPOINT, CHECKPOINT_DIRTY_PFN_LIST
    bad("verify-nonzero-length.bin", xc("VERIFY", b"\0" * 8, fail=True),
        "Verify record with non-zero length")
    bad("checkpoint-nonzero-length.bin", xc("CHECKPOINT", b"\0" * 4, fail=True),
        "Checkpoint record with non-zero length")
    bad("checkpoint-dirty-pfn-list.bin",
        xc("CHECKPOINT_DIRTY_PFN_LIST", struct.pack("<2Q", 1, 2), fail=True),
        "Found checkpoint dirty pfn list record in stream")
    bad("checkpoint-dirty-pfn-list-empty.bin", xc("CHECKPOINT_DIRTY_PFN_LIST", fail=True),
        "Found checkpoint dirty pfn list record in stream")

    # STATIC_DATA_END and the CPU policies: v3 only
    bad("static-data-end-in-v2.bin", xc("STATIC_DATA_END", fail=True),
        "Static data end record found in v2 stream", version=2, before="PAGE_DATA")
    bad("static-data-end-nonzero-length.bin", xc("STATIC_DATA_END", b"\0" * 8, fail=True),
        "record with non-zero length", before="STATIC_DATA_END")
    bad("cpuid-policy-in-v2.bin", xc("X86_CPUID_POLICY", cpuid_policy(1), fail=True),
        "x86 CPUID policy record found in v2 stream", version=2, before="PAGE_DATA")
    bad("msr-policy-in-v2.bin", xc("X86_MSR_POLICY", msr_policy(1), fail=True),
        "x86 MSR policy record found in v2 stream", version=2, before="PAGE_DATA")
    bad("cpuid-policy-empty.bin", xc("X86_CPUID_POLICY", fail=True),
        "Record length 0, expected multiple of 24", before="STATIC_DATA_END")
    bad("cpuid-policy-length-30.bin", xc("X86_CPUID_POLICY", cpuid_policy(1) + b"\0" * 6,
                                         fail=True),
        "Record length 30, expected multiple of 24", before="STATIC_DATA_END")
    bad("msr-policy-empty.bin", xc("X86_MSR_POLICY", fail=True),
        "Record length 0, expected multiple of 16", before="STATIC_DATA_END")
    bad("msr-policy-length-24.bin", xc("X86_MSR_POLICY", msr_policy(1) + b"\0" * 8, fail=True),
        "Record length 24, expected multiple of 16", before="STATIC_DATA_END")

    # Padding, unknown types
    bad("padding-nonzero.bin", xc("HVM_CONTEXT", ctx_bytes(5, 1), pad=b"\0\0\x01", fail=True),
        "Padding containing non0 bytes found")
    bad("padding-nonzero-last-byte.bin", xc("HVM_CONTEXT", ctx_bytes(15, 2), pad=b"\x80",
                                            fail=True),
        "Padding containing non0 bytes found")
    bad("unknown-type-0x42.bin", xc(0x42, b"\0" * 8, fail=True), "Unrecognised record type 0x42")
    bad("unknown-type-0x13.bin", xc(0x13, b"\0" * 8, fail=True), "Unrecognised record type 0x13")
    bad("unknown-type-0x7fffffff.bin", xc(0x7FFFFFFF, fail=True),
        "Unrecognised record type 0x7fffffff")
    bad("optional-record-nonzero-padding.bin",
        xc(0x80000042, b"abc", pad=b"\0\0\0\0\x01", fail=True),
        "Padding containing non0 bytes found", ref_message="Unrecognised record type 0x80000042")

    # ---------------- libxl ----------------
    def libxl_bad_hdr(field_off, **kw):
        s = Stream().raw(libxl_hdr(**kw), fail_at=field_off).rec(xl("LIBXC_CONTEXT"))
        return libxc_stream(s, DHDR_HVM, hvm_records(3)).rec(xl("END"))

    def bad_libxl_hdr(name, field_off, message, **kw):
        F.add(I + name, libxl_bad_hdr(field_off, **kw), "libxl", 1, message)

    bad_libxl_hdr("libxl-hdr-bad-ident.bin", 0, "Bad image id: Expected 0x4c6962786c466d74",
                  ident=0x4C6962786C466D75)
    bad_libxl_hdr("libxl-hdr-version-1.bin", 8, "Unknown image version: Expected 2, got 1",
                  version=1)
    bad_libxl_hdr("libxl-hdr-version-3.bin", 8, "Unknown image version: Expected 2, got 3",
                  version=3)
    bad_libxl_hdr("libxl-hdr-options-reserved-bit.bin", 12,
                  "Reserved bits set in image options field: 0x4", options=0x4)
    bad_libxl_hdr("libxl-hdr-options-reserved-bit15.bin", 12,
                  "Reserved bits set in image options field: 0x8000",
                  options=0x8000 | LIBXL_OPT_LEGACY)
    # A libxc stream given as libxl: the libxl ident check fails at offset 0.
    s = Stream().raw(ihdr(3), fail_at=0).raw(dhdr(DHDR_HVM)).recs(hvm_records(3) + [xc("END")])
    F.add(I + "libxl-given-libxc-stream.bin", s, "libxl", 1, "Bad image id")

    def bad_libxl(name, rec, message, ref_message=True, **kw):
        F.add(I + name, libxl_with(rec), "libxl", 1, message, ref_message=ref_message, **kw)

    bad_libxl("libxl-end-nonzero-length.bin", xl("END", b"\0" * 8, fail=True),
              "End record with non-zero length")
    s = Stream().raw(libxl_hdr()).rec(xl("LIBXC_CONTEXT", b"\0" * 8, fail=True))
    libxc_stream(s, DHDR_HVM, hvm_records(3)).rec(xl("END"))
    F.add(I + "libxl-libxc-context-nonzero-length.bin", s, "libxl", 1,
          "Libxc context record with non-zero length")
    bad_libxl("libxl-unknown-type-0x42.bin", xl(0x42, b"\0" * 8, fail=True),
              "Unrecognised record type 42")
    bad_libxl("libxl-unknown-type-0x6.bin", xl(0x6, fail=True), "Unrecognised record type 6")
    bad_libxl("libxl-padding-nonzero.bin",
              xl("EMULATOR_CONTEXT", emulator(EMU_QEMU_UPSTREAM, 0, b"ab"), pad=b"\0\0\0\0\0\xff",
                 fail=True), "Padding containing non0 bytes found")
    bad_libxl("libxl-xenstore-short.bin",
              xl("EMULATOR_XENSTORE_DATA", b"\0" * 4, fail=True),
              "Length must be at least 8 bytes, got 4")
    bad_libxl("libxl-xenstore-emulator-id-3.bin",
              xl("EMULATOR_XENSTORE_DATA", emulator(3), fail=True),
              "Unrecognised emulator id 0x3")
    bad_libxl("libxl-xenstore-not-nul-terminated.bin",
              xl("EMULATOR_XENSTORE_DATA", emulator(EMU_QEMU_UPSTREAM, 0, b"key\0value"),
                 fail=True), "Data not NUL terminated")
    bad_libxl("libxl-xenstore-odd-strings.bin",
              xl("EMULATOR_XENSTORE_DATA", emulator(EMU_QEMU_UPSTREAM, 0, b"key\0value\0orphan\0"),
                 fail=True), "Expected an even number of strings, got 3",
              ref_message="Data not NUL terminated")
    bad_libxl("libxl-xenstore-single-nul.bin",
              xl("EMULATOR_XENSTORE_DATA", emulator(EMU_QEMU_UPSTREAM, 0, b"\0"), fail=True),
              "Expected an even number of strings, got 1", ref_message="Data not NUL terminated")
    bad_libxl("libxl-emulator-context-short.bin",
              xl("EMULATOR_CONTEXT", b"\0" * 4, fail=True), "Length must be at least 8 bytes, got 4")
    bad_libxl("libxl-emulator-context-id-3.bin",
              xl("EMULATOR_CONTEXT", emulator(3, 0, ctx_bytes(16, 1)), fail=True),
              "Unrecognised emulator id 0x3")
    bad_libxl("libxl-checkpoint-end-nonzero-length.bin",
              xl("CHECKPOINT_END", b"\0" * 8, fail=True),
              "Checkpoint end record with non-zero length")
    bad_libxl("libxl-checkpoint-state-empty.bin", xl("CHECKPOINT_STATE", fail=True),
              "Checkpoint state record with zero length")

    # Errors inside the nested libxc stream: offsets from the start of the file,
    # records counted over both layers.
    s = Stream().raw(libxl_hdr()).rec(xl("LIBXC_CONTEXT"))
    s.raw(ihdr(ident=0x58454E00), fail_at=8).raw(dhdr(DHDR_HVM)).recs(hvm_records(3))
    s.rec(xc("END"))
    s.rec(xl("END"))
    F.add(I + "libxl-nested-bad-image-id.bin", s, "libxl", 1,
          "Bad image id")
    s = Stream().raw(libxl_hdr()).rec(xl("LIBXC_CONTEXT"))
    libxc_stream(s, DHDR_HVM, insert(hvm_records(3), xc("PAGE_DATA", page_data(
        [(NOTAB, 5), (6, 6)], pages=[page(5), page(6)]), fail=True)))
    s.rec(xl("END"))
    F.add(I + "libxl-nested-pagedata-type-6.bin", s, "libxl", 1,
          "Invalid type value in pfn[1]: 0x6000000000000000")

    # ---------------- xl header ----------------
    s = Stream().raw(xl_hdr(XL_FLAG_JSON | XL_FLAG_STREAMV2, XL_CONFIG,
                            magic=b"Xen saved domain, xl format\n \0 \n"), fail_at=0)
    libxl_stream(s)
    F.add(I + "xl-bad-magic.bin", s, "xl", 1, "No xl header")
    s = Stream().raw(libxl_stream(Stream()).bytes(), fail_at=0)
    F.add(I + "xl-libxl-without-xl-header.bin", s, "xl", 1, "No xl header")
    # Bit 1 decides: libxl announced, libxc found (and the other way round).
    s = Stream().raw(xl_hdr(XL_FLAG_JSON | XL_FLAG_STREAMV2, XL_CONFIG))
    s.raw(ihdr(3), fail_at=0).raw(dhdr(DHDR_HVM)).recs(hvm_records(3) + [xc("END")])
    F.add(I + "xl-flag-libxl-but-libxc-stream.bin", s, "xl", 1, "Bad image id")
    s = Stream().raw(xl_hdr(XL_FLAG_JSON, XL_CONFIG))
    s.raw(libxl_hdr(), fail_at=0).rec(xl("LIBXC_CONTEXT"))
    libxc_stream(s, DHDR_HVM, hvm_records(3)).rec(xl("END"))
    F.add(I + "xl-flag-libxc-but-libxl-stream.bin", s, "xl", 1, "Bad image marker")
    # Errors after the xl header: its bytes count in the offset.
    s = Stream().raw(xl_hdr(XL_FLAG_JSON, XL_CONFIG))
    s.raw(ihdr(version=4), fail_at=12).raw(dhdr(DHDR_PV)).recs(pv_records(3) + [xc("END")])
    F.add(I + "xl-libxc-version-4.bin", s, "xl", 1,
          "Unknown image version: Expected 2 <= ver <= 3, got 4")
    s = Stream().raw(xl_hdr(XL_FLAG_JSON, XL_CONFIG))
    libxc_stream(s, DHDR_PV, insert(pv_records(3), xc("PAGE_DATA", page_data(
        [(XTAB, 1), pfn_entry(NOTAB, 2) | (0xFF << 52)], pages=[page(2)]), fail=True),
        "X86_TSC_INFO"))
    F.add(I + "xl-libxc-pagedata-reserved-pfn-bits.bin", s, "xl", 1,
          "Reserved bits set in pfn[1]: 0x0ff0000000000000")
    s = Stream().raw(xl_hdr(XL_FLAG_JSON | XL_FLAG_STREAMV2, XL_CONFIG))
    libxl_stream(s, after=[xl("EMULATOR_XENSTORE_DATA", emulator(EMU_QEMU_UPSTREAM)),
                           xl("EMULATOR_CONTEXT", emulator(3, 0, b"x"), fail=True)])
    F.add(I + "xl-libxl-emulator-id-3.bin", s, "xl", 1, "Unrecognised emulator id 0x3")

    # ---------------- truncation ----------------
    def trunc(name, s, cut, fmt="libxc", record=True):
        data = s.bytes()[:cut]
        t = Stream()
        t.buf, t.err = bytearray(data), s.err
        F.add(I + name, t, fmt, 1, TRUNC, trunc_record=record,
              ref_message="Stream truncated")

    F.add(I + "truncated-empty.bin", b"", "libxc", 1, TRUNC, ref_message="Stream truncated")
    full = libxc_stream(Stream(), DHDR_HVM, hvm_records(3))
    trunc("truncated-image-header.bin", full, 12, record=False)
    trunc("truncated-domain-header.bin", full, 24 + 10, record=False)
    trunc("truncated-record-header.bin", full, 40 + 4, record=False)
    trunc("truncated-before-end.bin", full, len(full.bytes()) - 8, record=False)
    s = Stream().raw(ihdr(3)).raw(dhdr(DHDR_HVM)).recs(hvm_records(3)[:3])
    off = s.here()
    s.rec(xc("HVM_CONTEXT", ctx_bytes(37, 1), fail=True))
    s.rec(xc("END"))
    trunc("truncated-record-body.bin", s, off + 8 + 20)
    trunc("truncated-record-padding.bin", s, off + 8 + 37 + 1)
    s = Stream().raw(ihdr(3)).raw(dhdr(DHDR_HVM)).recs(hvm_records(3)[:3])
    off = s.here()
    s.rec(xc("PAGE_DATA", page_data([(NOTAB, 7), (NOTAB, 8)]), fail=True))
    s.rec(xc("END"))
    trunc("truncated-pagedata-pfns.bin", s, off + 8 + 8 + 4)
    trunc("truncated-pagedata-page.bin", s, off + 8 + 8 + 16 + PAGE + 100)
    s = libxl_stream(Stream())
    trunc("libxl-truncated-header.bin", s, 10, "libxl", record=False)
    trunc("libxl-truncated-missing-end.bin", s, len(s.bytes()) - 8, "libxl", record=False)
    trunc("libxl-truncated-nested-domain-header.bin", s, 16 + 8 + 24 + 8, "libxl", record=False)
    s = Stream().raw(libxl_hdr()).rec(xl("LIBXC_CONTEXT"))
    libxc_stream(s, DHDR_HVM, hvm_records(3))
    off = s.here()
    s.rec(xl("EMULATOR_CONTEXT", emulator(EMU_QEMU_UPSTREAM, 0, ctx_bytes(100, 1)),
                   fail=True))
    s.rec(xl("END"))
    trunc("libxl-truncated-record-body.bin", s, off + 8 + 50, "libxl")
    s = Stream().raw(xl_hdr(XL_FLAG_JSON | XL_FLAG_STREAMV2, XL_CONFIG))
    libxl_stream(s)
    trunc("xl-truncated-magic.bin", s, 20, "xl", record=False)
    trunc("xl-truncated-config.bin", s, 48 + 10, "xl", record=False)

    # ---------------- strict mode (xsr verify --strict) ----------------
    F.row(V + "libxc-v3-pv.bin", "libxc", 0, 1)
    F.row(V + "libxc-v3-hvm.bin", "libxc", 0, 1)
    F.row(V + "libxc-v2-pv.bin", "libxc", 0, 1)
    F.row(V + "libxc-v2-hvm.bin", "libxc", 0, 1)
    F.row(V + "libxc-v3-pv-32bit.bin", "libxc", 0, 1)
    F.row(V + "libxl-hvm.bin", "libxl", 0, 1)
    F.row(V + "libxl-pv.bin", "libxl", 0, 1)
    F.row(V + "libxl-checkpointed.bin", "libxl", 0, 1)
    F.row(V + "optional-record.bin", "libxc", 0, 1)
    # Xen's restore: a CHECKPOINT outside a checkpointed stream is an error, and
    # libxl refuses unknown records, optional or not.
    F.row(V + "libxc-checkpoint.bin", "libxc", 1, 1, libxc_checkpoint(True).err, "checkpointed")
    F.row(V + "libxl-optional-record.bin", "libxl", 1, 1, libxl_optional(True).err,
          "Unrecognised record 0x80000042")

    def strict(name, s, message, fmt="libxc", plain_exit=0, plain_message="-"):
        """A stream the reference's checks accept but Xen's restore refuses."""
        F.add(I + name, s, fmt, 1, message, strict=1)
        if plain_exit == 0:
            F.row(I + name, fmt, 0, 0)
        else:
            # Without the 128 MiB limit the huge body is a truncation.
            assert plain_message == TRUNC
            F.rows.append(dict(file=I + name, format=fmt, strict=0, exit=plain_exit,
                               offset="-", record=s.err[1], type=s.err[2],
                               message=plain_message, ref_message="Stream truncated"))

    recs = hvm_records(3)
    sde = [r for r in recs if r.rtype == LIBXC["STATIC_DATA_END"]][0]
    recs = [r for r in recs if r is not sde]
    recs[2] = xc("PAGE_DATA", recs[2].body, fail=True)  # first PAGE_DATA
    recs.insert(4, sde)
    strict("strict-v3-pagedata-before-static-data-end.bin",
           libxc_stream(Stream(), DHDR_HVM, recs), "before STATIC_DATA_END")
    s = Stream().raw(ihdr(3)).raw(dhdr(DHDR_HVM)).recs(hvm_records(3)[:4])
    s.rec(xc("HVM_CONTEXT", ctx_bytes(64, 1), length=REC_LENGTH_MAX + 8, fail=True))
    strict("strict-body-over-128mib.bin", s, "128 MiB", plain_exit=1, plain_message=TRUNC)
    s = Stream().raw(libxl_hdr()).rec(xl("LIBXC_CONTEXT"))
    s.raw(ihdr(3)).raw(dhdr(DHDR_HVM)).recs(hvm_records(3)[:4])
    s.rec(xc("HVM_CONTEXT", ctx_bytes(64, 1), length=REC_LENGTH_MAX + 1, fail=True))
    strict("strict-libxl-body-over-128mib.bin", s, "128 MiB", fmt="libxl", plain_exit=1,
           plain_message=TRUNC)
    s = Stream().raw(ihdr(3)).raw(dhdr(DHDR_PV)).recs(pv_records(3, vcpu0_basic=False))
    s.rec(xc("END", fail=True))
    strict("strict-pv-missing-vcpu0-basic.bin", s, "vcpu0")

    # Xen's restore (libxenguest) and the hypervisor: one fixture per rule.
    def blame(records, name, nth=0):
        k = 0
        for r in records:
            if r.layer == "libxc" and LIBXC_NAMES.get(r.rtype) == name:
                if k == nth:
                    r.fail = True
                    return records
                k += 1
        raise ValueError(name)

    # What Xen's restore checks when the stream completes (vCPU state,
    # start_info, the p2m frames, the HVM context) is reported at END, the
    # record it is found at; the message names the record with the value.
    def at_end(records):
        s = libxc_stream(Stream(), DHDR_PV, records, end=False)
        return s.rec(xc("END", fail=True))

    def pv_strict(name, message, rec, nth=0, **kw):
        if rec in ("X86_PV_VCPU_BASIC", "X86_PV_P2M_FRAMES"):
            strict(name, at_end(pv_records(3, **kw)), message)
            return
        recs = blame(pv_records(3, **kw), rec, nth)
        strict(name, libxc_stream(Stream(), DHDR_PV, recs), message)

    pv_strict("strict-pv-cr3-not-pinned.bin", "is not a pinned L4 table", "X86_PV_VCPU_BASIC", top=L4TAB)
    pv_strict("strict-pv-32bit-cr3-not-pinned.bin", "is not a pinned L3 table", "X86_PV_VCPU_BASIC",
              width=4, levels=3, top=L3TAB)
    pv_strict("strict-pv-cr3-not-pagetable.bin", "cr3 (pfn 0x1) has bad type 0, expected 4",
              "X86_PV_VCPU_BASIC", cr3=1)
    pv_strict("strict-pv-cr3-beyond-p2m.bin", "cr3 (pfn 0x10) out of range", "X86_PV_VCPU_BASIC",
              cr3=0x10)
    pv_strict("strict-pv-cr3-unsent.bin", "cr3 (pfn 0x4) has bad type 0, expected 4",
              "X86_PV_VCPU_BASIC", cr3=4)
    pv_strict("strict-pv-start-info-beyond-p2m.bin", "Start Info pfn 0x10 out of range",
              "X86_PV_VCPU_BASIC", start_info=0x10)
    pv_strict("strict-pv-start-info-pagetable.bin", "Start Info pfn 0x2 has bad type 12",
              "X86_PV_VCPU_BASIC", start_info=2)
    pv_strict("strict-pv-start-info-unsent.bin", "Start Info has bad mfn", "X86_PV_VCPU_BASIC",
              start_info=4)
    pv_strict("strict-pv-store-beyond-p2m.bin", "XenStore pfn 0x10 out of range", "X86_PV_VCPU_BASIC",
              store=0x10)
    pv_strict("strict-pv-store-unsent.bin", "XenStore pfn has bad mfn", "X86_PV_VCPU_BASIC", store=4)
    pv_strict("strict-pv-console-unsent.bin", "Console pfn has bad mfn", "X86_PV_VCPU_BASIC", console=4)
    pv_strict("strict-pv-p2m-frame-beyond-p2m.bin", "pfn (0x1234) for p2m_frame_list[0] out of range",
              "X86_PV_P2M_FRAMES", frame=0x1234)
    pv_strict("strict-pv-p2m-frame-pagetable.bin", "pfn (0x2) for p2m_frame_list[0] has bad type 12",
              "X86_PV_P2M_FRAMES", frame=2)
    pv_strict("strict-pv-p2m-frame-unsent.bin", "p2m_frame_list[0] has bad mfn", "X86_PV_P2M_FRAMES",
              frame=4)
    pv_strict("strict-pv-pte-beyond-p2m.bin", "L4[3] = 0x100067 of pfn 0x2 names pfn 0x100 beyond the p2m",
              "PAGE_DATA", top_entries=[(3, 0x100)])
    pv_strict("strict-pv-info-combination.bin", "Invalid X86_PV_INFO combination: width 4, pt_levels 4",
              "X86_PV_INFO", width=4, levels=4, top=L4PIN)
    strict("strict-pv-pagedata-beyond-p2m.bin",
           pv_with(xc("PAGE_DATA", page_data([(NOTAB, 0x10)]), fail=True)),
           "pfn 0x10 (index 0) outside domain maximum")
    strict("strict-pv-vcpu-basic-wrong-size.bin",
           pv_with(xc("X86_PV_VCPU_BASIC", vcpu(1, ctx_bytes(100, 1)), fail=True)),
           "X86_PV_VCPU_BASIC record wrong size: expected 5176, got 108")
    strict("strict-pv-vcpu-extended-names-no-vcpu.bin",
           at_end(insert(pv_records(3), xc("X86_PV_VCPU_EXTENDED",
                                           vcpu(1, struct.pack("<I", 128) + ctx_bytes(124, 1))),
                         "SHARED_INFO")),
           "set_ext_vcpucontext: no vcpu128")
    strict("strict-pv-vcpu-id-beyond.bin",
           pv_with(xc("X86_PV_VCPU_EXTENDED", vcpu(128, ctx_bytes(128, 1)), fail=True)),
           "X86_PV_VCPU_EXTENDED record vcpu_id (128) exceeds domain max (127)")

    def hvm_strict(name, message, replace=None, blame_end=False):
        recs = hvm_records(3)
        if replace:
            recs = [(replace if r.rtype == replace.rtype else r) for r in recs]
        s = libxc_stream(Stream(), DHDR_HVM, recs, end=not blame_end)
        if blame_end:
            s.rec(xc("END", fail=True))
        strict(name, s, message)

    hvm_strict("strict-tsc-mode-3.bin", "tsc_set_info refuses TSC mode 3",
               xc("X86_TSC_INFO", tsc_info(mode=3), fail=True))
    cpu = hvm_entry(2, 0, ctx_bytes(1032, 1))
    for name, blob, message in [
            ("no-header", cpu + hvm_entry(0, 0, b""), "expected strict type 1 length 24, saw type 2"),
            ("bad-magic", hvm_blob(magic=0x12345678), "bad magic number 0x12345678"),
            ("bad-version", hvm_blob(version=2), "unsupported version 2"),
            ("unknown-typecode", hvm_blob([hvm_entry(21, 0, ctx_bytes(8, 1))]),
             "unknown entry typecode 21"),
            ("entry-past-end", hvm_blob([hvm_entry(2, 0, ctx_bytes(16, 1), length=1032)], end=False),
             "length 1032 runs past the end"),
            ("vcpu-beyond", hvm_blob([hvm_entry(2, 128, ctx_bytes(1032, 1))]), "names no vcpu"),
            ("cpu-too-long", hvm_blob([hvm_entry(2, 0, ctx_bytes(1040, 1))]), "length 1040, at most 1032"),
            ("pic-short", hvm_blob([hvm_entry(3, 0, ctx_bytes(4, 1))]), "length 4, expected 8"),
            ("no-end", hvm_blob(end=False), "save did not end with a null entry")]:
        hvm_strict("strict-hvm-context-%s.bin" % name, message, xc("HVM_CONTEXT", blob), blame_end=True)
    for name, params, message in [
            ("index-39", [(39, 1)], "index 39 >= HVM_NR_PARAMS"),
            ("viridian-0", [(9, 0)], "VIRIDIAN"),
            ("deprecated-26", [(26, 1)], "deprecated param")]:
        hvm_strict("strict-hvm-param-%s.bin" % name, message,
                   xc("HVM_PARAMS", hvm_params(params), fail=True))
    s = libxc_stream(Stream(), DHDR_HVM, [r for r in hvm_records(3)
                                          if r.rtype != LIBXC["HVM_CONTEXT"]], end=False)
    strict("strict-hvm-no-context.bin", s.rec(xc("END", fail=True)), "no HVM context")
    # The domain has the vCPUs its config gives (b_info.max_vcpus): an HVM
    # context entry for a vCPU beyond them names none.
    cfg = b'{"c_info": {"type": "hvm", "name": "fixture"}, "b_info": {"max_vcpus": 1}}\n'
    s = Stream().raw(xl_hdr(XL_FLAG_JSON | XL_FLAG_STREAMV2, cfg)).raw(libxl_hdr()).rec(xl("LIBXC_CONTEXT"))
    two = hvm_blob([hvm_entry(2, 0, ctx_bytes(1032, 1)), hvm_entry(2, 1, ctx_bytes(1032, 2))])
    recs = [(xc("HVM_CONTEXT", two) if r.rtype == LIBXC["HVM_CONTEXT"] else r) for r in hvm_records(3)]
    libxc_stream(s, DHDR_HVM, recs, end=False).rec(xc("END", fail=True))
    s.recs([xl("EMULATOR_XENSTORE_DATA", emulator(EMU_QEMU_UPSTREAM)),
            xl("EMULATOR_CONTEXT", emulator(EMU_QEMU_UPSTREAM, 0, ctx_bytes(29, 9)))]).rec(xl("END"))
    strict("strict-xl-hvm-vcpu-beyond-config.bin", s, "entry CPU 2/1 names no vcpu (the domain has 1)", fmt="xl")
    # libxl takes CHECKPOINT_STATE only in COLO's back-channel exchange.
    strict("strict-libxl-checkpoint-state.bin",
           libxl_stream(Stream(), after=[xl("CHECKPOINT_STATE", struct.pack("<II", 2, 0), fail=True)]),
           "Unexpected CHECKPOINT_STATE record in stream", fmt="libxl")

    # Header checks the reference means to make but does not (its endianness
    # test masks with 0): the drop-in accepts like the reference, Xen's
    # restore refuses.
    s = Stream().raw(ihdr(options=1), fail_at=16).raw(dhdr(DHDR_HVM))
    strict("strict-ihdr-big-endian.bin", s.recs(hvm_records(3) + [xc("END")]),
           "Unable to handle big endian streams")
    strict("strict-libxl-hdr-big-endian.bin", libxl_bad_hdr(12, options=1),
           "Unable to handle big endian streams", fmt="libxl")
    # Its libxl options mask 0xfffc misses bits 16-31, which the spec
    # reserves; libxl's restore looks only at the big-endian bit, so both
    # the drop-in and --strict take them.
    F.add(V + "libxl-hdr-options-bit31.bin",
          libxl_bad_hdr(12, options=0x80000000 | LIBXL_OPT_LEGACY), "libxl", 0)
    F.row(V + "libxl-hdr-options-bit31.bin", "libxl", 0, 1)

    F.rows.sort(key=lambda r: (r["file"], r["strict"]))
    return F


# --- output -------------------------------------------------------------------------

COLUMNS = ["file", "format", "strict", "exit", "offset", "record", "type", "message"]

README = """\
# Verifier fixtures

Golden streams for the stream verifier (`verify-stream-v2`, `xsr verify`),
written by `scripts/make-fixtures.py` (Python 3, standard library only,
deterministic). The script builds every stream byte by byte from the specs
(`libxc-migration-stream.pandoc` rev. 3, `libxl-migration-stream.pandoc`
rev. 2) and REFERENCE.md; it does not use xsr's C++ code or `xsr gen`.
Regenerate with

    scripts/make-fixtures.py --reference /path/to/verify-stream-v2-wrapper

- `valid/*.bin`: streams the plain checks accept (two of them,
  `libxc-checkpoint` and `libxl-optional-record`, also have a strict row that
  rejects them); `invalid/*.bin`: streams they reject, except `strict-*`, which
  only `xsr verify --strict` rejects. Each file is named after what it
  contains or triggers.
- `valid/NAME.verbose`: the exact `-v` stdout of Xen 4.17's
  `verify-stream-v2` (Debian's xen-utils-4.17, run under Python 3) for
  `valid/NAME.bin`; the drop-in must reproduce it byte for byte. Valid
  fixtures that the reference wrongly rejects (see below) have none.

## expected.tsv

Tab-separated, one header line, one row per (file, format, strict):

| column | meaning |
| --- | --- |
| file | path relative to `fixtures/` |
| format | what to pass as `verify-stream-v2 -f` / `xsr verify -f`: libxc, libxl or xl |
| strict | 1: the row is for `xsr verify --strict`; 0: plain checks (the drop-in) |
| exit | expected exit code: 0 valid, 1 stream error |
| offset | decimal byte offset the error is reported at: the failing record's 8-byte header, or the offending header field (libxc image header: marker +0, id +8, version +12, options +16, reserved +18; domain header: type +0, page_shift +4, reserved +6; libxl header: ident +0, version +8, options +12; xl magic +0), counted from the start of the file (xl header included); `-` for valid rows and truncation |
| record | 0-based index of the failing record over both layers (libxl records and nested libxc records in one sequence; headers are not records); `-` for header errors, truncation outside a record body, and valid rows |
| type | spec name of the failing record's type (`UNKNOWN_0x%08x` for unknown mandatory types, `OPTIONAL_0x%08x` for unknown types with bit 31 set); `-` otherwise |
| message | a substring of the error message (the reference's exception text where both agree); `-` for valid rows |

## Where the reference differs on purpose

Rows for which Xen's reference verifier gives another exit code, because of
a defect REFERENCE.md tells us not to copy: optional (bit 31) record types
(the reference rejects them), TOOLSTACK (the reference crashes, exit 2),
non-empty EMULATOR_XENSTORE_DATA (the reference's Python 3 bytes/str bug),
checkpointed libxl streams (the reference has no hand-over at libxc
CHECKPOINT). `strict` rows have no reference equivalent; the non-strict rows
of the `invalid/strict-*` files are checked against the reference too.
"""


def write(F, out):
    for sub in ("valid", "invalid"):
        d = os.path.join(out, sub)
        os.makedirs(d, exist_ok=True)
        for name in os.listdir(d):
            if name.endswith(".bin"):
                os.unlink(os.path.join(d, name))
    for rel, data in sorted(F.files.items()):
        with open(os.path.join(out, rel), "wb") as f:
            f.write(data)
    with open(os.path.join(out, "expected.tsv"), "w", newline="\n") as f:
        f.write("\t".join(COLUMNS) + "\n")
        for r in F.rows:
            f.write("\t".join(str(r[c]) for c in COLUMNS) + "\n")
    with open(os.path.join(out, "README.md"), "w") as f:
        f.write(README)


def run_reference(cmd, fmt, path, verbose):
    argv = shlex.split(cmd) + ["-f", fmt, "-i", path] + (["-v"] if verbose else [])
    p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    return p.returncode, p.stdout, p.stderr.decode("utf-8", "replace")


def check_reference(F, out, cmd):
    """Runs the reference on every non-strict row; writes the .verbose goldens."""
    problems = []
    for name in os.listdir(os.path.join(out, "valid")):
        if name.endswith(".verbose"):
            os.unlink(os.path.join(out, "valid", name))
    for r in F.rows:
        if r["strict"]:
            continue
        # Non-strict rows of invalid/strict-* files are checked too: the
        # reference must accept those (or report the truncation).
        path = os.path.join(out, r["file"])
        rc, _, err = run_reference(cmd, r["format"], path, False)
        want = r["exit"]
        defect = F.defects.get((r["file"], 0))
        if defect:
            want = defect[0]
        if rc != want:
            problems.append("%s: reference exit %d, expected %d" % (r["file"], rc, want))
            continue
        if rc == 1 and not defect and r["ref_message"] and r["ref_message"] not in err:
            last = err.strip().splitlines()[-1] if err.strip() else ""
            problems.append("%s: reference message %r lacks %r" % (r["file"], last,
                                                                     r["ref_message"]))
        if rc == 0 and r["file"].startswith("valid/"):
            rc2, stdout, _ = run_reference(cmd, r["format"], path, True)
            assert rc2 == 0
            with open(path[:-len(".bin")] + ".verbose", "wb") as f:
                f.write(stdout)
    return problems


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--out", default=os.path.join(here, os.pardir, "fixtures"))
    ap.add_argument("--reference", metavar="CMD",
                    help="Xen's verify-stream-v2 command: check every row against it "
                         "and write the valid/*.verbose goldens")
    opts = ap.parse_args()
    out = os.path.normpath(opts.out)
    F = build()
    write(F, out)
    if not opts.reference:
        # Goldens of fixtures that no longer exist are stale.
        d = os.path.join(out, "valid")
        for name in os.listdir(d):
            if name.endswith(".verbose") and ("valid/" + name[:-8] + ".bin") not in F.files:
                os.unlink(os.path.join(d, name))
    print("%d files, %d rows written to %s" % (len(F.files), len(F.rows), out))
    if opts.reference:
        problems = check_reference(F, out, opts.reference)
        nverbose = len([n for n in os.listdir(os.path.join(out, "valid"))
                        if n.endswith(".verbose")])
        print("reference: %d .verbose goldens written" % nverbose)
        print("reference defects (expected exit differs from the reference's on purpose):")
        for (rel, _), (ref_exit, why) in sorted(F.defects.items()):
            print("  %s: reference exits %d: %s" % (rel, ref_exit, why))
        if problems:
            print("DISAGREEMENTS WITH THE REFERENCE:")
            for p in problems:
                print("  " + p)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
