#!/usr/bin/env python3
"""Write the legacy-conversion fixtures into fixtures/legacy/.

Builds small legacy (Xen <= 4.5) save streams byte by byte from
REFERENCE.md "Legacy input", and their expected v3 conversions, for the
drop-in `convert-legacy-stream` / `xsr convert`. Standard library only,
deterministic, independent of xsr's C++ code.

    scripts/make-legacy-fixtures.py [--out DIR] [--reference SCRIPT | --no-reference]

Every row is converted twice:
  - by this script's own writer (`convert` below), written from REFERENCE.md
    "Converter output" and "Reference defects not to copy";
  - by Xen's own convert-legacy-stream (Debian xen-utils-4.17, Python 3), the
    oracle. Its output is the golden file wherever it is right, and the script
    stops unless the writer produced the very same bytes and exit code. Where
    the reference has a documented defect, the golden comes from the writer,
    and the script checks the reference misbehaves exactly as documented (and,
    where possible, that the writer with the defect switched back on matches
    it byte for byte).
With --no-reference every golden comes from the writer (the same bytes, as
proven by a run with the reference).

Writes fixtures/legacy/*.bin (inputs), *.v3 (golden outputs), expected.tsv.
"""

import argparse
import glob
import os
import struct
import subprocess
import sys
import tempfile

PAGE = 4096
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REF_DIR = os.environ.get("XSR_REF_DIR", "/var/tmp/xsr-xen-ref")
MAX_INPUT = 64 << 10

# --- legacy wire constants (REFERENCE.md "Legacy input") --------------------

XL_MAGIC = b"Xen saved domain, xl format\n \0 \r"
assert len(XL_MAGIC) == 32
XL_BYTEORDER = 0x01020304
XL_FLAG_JSON, XL_FLAG_STREAMV2 = 1 << 0, 1 << 1

EXT_MARKER = {32: 0xFFFFFFFF, 64: 0xFFFFFFFFFFFFFFFF}
VCPU_CTX_64, VCPU_CTX_32 = 0x1430, 0xAF0
EXTD_CTX = 128
MAX_BATCH = 1024
MAX_VCPU_ID = 4095
XTAB_DROPPED = 0xF0000000

# page type nibbles (bits 31-28 of a legacy pfn entry)
NOTAB, L1TAB, L2TAB, L3TAB, L4TAB = 0x0, 0x1, 0x2, 0x3, 0x4
L1PIN, L2PIN, L3PIN, L4PIN = 0x9, 0xA, 0xB, 0xC
BROKEN, XALLOC, XTAB = 0xD, 0xE, 0xF

CHUNK_END, CHUNK_VERIFY, CHUNK_VCPU_INFO = 0, -1, -2
CHUNK_TMEM, CHUNK_TMEM_EXTRA, CHUNK_TSC = -5, -6, -7
CHUNK_LAST_CHECKPOINT = -9
CHUNK_COMPRESSED, CHUNK_ENABLE_COMPRESSION = -12, -13
CHUNK_TOOLSTACK = -18
# HVM param chunks -> HVM param index
PARAM_CHUNKS = {-3: 12, -4: 15, -8: 17, -10: 19, -11: 9, -14: 34, -15: 27,
                -16: 28, -17: 29, -19: 32, -20: 33}
HVM_PARAM_STORE_PFN, HVM_PARAM_IOREQ_PFN, HVM_PARAM_BUFIOREQ_PFN = 1, 5, 6

QEMU_SIG = b"DeviceModelRecord0002"
assert len(QEMU_SIG) == 21

# --- v3 wire constants (libxc / libxl specs) -----------------------------------

IHDR_MARKER, IHDR_ID = 0xFFFFFFFFFFFFFFFF, 0x58454E46  # "XENF"
DHDR_PV, DHDR_HVM = 1, 2
XC_END, XC_PAGE_DATA, XC_PV_INFO, XC_P2M_FRAMES = 0x00, 0x01, 0x02, 0x03
XC_VCPU_BASIC, XC_VCPU_EXTENDED, XC_VCPU_XSAVE = 0x04, 0x05, 0x06
XC_SHARED_INFO, XC_TSC_INFO, XC_HVM_CONTEXT, XC_HVM_PARAMS = 0x07, 0x08, 0x09, 0x0A
XC_STATIC_DATA_END = 0x10
LIBXL_IDENT, LIBXL_OPT_LEGACY = 0x4C6962786C466D74, 1 << 1  # "LibxlFmt"
XL_END, XL_LIBXC_CONTEXT, XL_EMU_XENSTORE, XL_EMU_CONTEXT = 0, 1, 2, 3
EMU_UNKNOWN = 0
CONVERTER_MAJOR, CONVERTER_MINOR = 0, 1


# =============================================================================
# The independent writer: legacy bytes in, v3 bytes out (or exit code + text)
# =============================================================================

class Fail(Exception):
    """A conversion failure: exit code (1 stream error, 2 unsupported), text."""

    def __init__(self, code, message):
        super().__init__(message)
        self.code, self.message = code, message


class Reader:
    def __init__(self, data, width):
        self.data, self.pos, self.ulong_size = data, 0, width // 8

    def take(self, n):
        if n > len(self.data) - self.pos:
            raise Fail(1, "stream truncated at offset %d (wanted %d bytes)" % (self.pos, n))
        b = self.data[self.pos:self.pos + n]
        self.pos += n
        return b

    def unpack(self, fmt):
        return struct.unpack("<" + fmt, self.take(struct.calcsize("<" + fmt)))

    def u32(self):
        return self.unpack("I")[0]

    def s32(self):
        return self.unpack("i")[0]

    def ulongs(self, n):
        code = "I" if self.ulong_size == 4 else "Q"
        return list(struct.unpack("<%d%s" % (n, code), self.take(n * self.ulong_size)))

    def skip(self, n):
        self.take(n)


def record(rtype, body=b""):
    """Every v3 record: u32 type, u32 length, body, zero padding to 8."""
    return struct.pack("<II", rtype, len(body)) + body + b"\0" * (-len(body) % 8)


def widen(entry):
    """Legacy pfn entry (type in bits 31-28) -> v3 entry (type in bits 63-60)."""
    return ((entry & 0xF0000000) << 32) | (entry & 0x0FFFFFFF)


def physmap_pairs(data, width):
    """libxl toolstack data (version 1 physmap) -> NUL-terminated xenstore pairs."""
    if len(data) < 8:
        raise Fail(1, "Overly short libxl toolstack data")
    version, count = struct.unpack_from("<II", data, 0)
    if version != 1:
        raise Fail(1, "Cannot decode libxl toolstack version %u" % version)
    pos, out = 8, bytearray()
    for _ in range(count):
        if len(data) - pos < 28:
            raise Fail(1, "Remaining data too short for physmap header")
        phys, start, size, namelen = struct.unpack_from("<QQQI", data, pos)
        pos += 28
        if namelen == 0:
            raise Fail(1, "No physmap info name")
        # A 64-bit toolstack leaked 4 bytes of struct padding after the name.
        span = namelen + (4 if width == 64 else 0)
        if len(data) - pos < span:
            raise Fail(1, "Remaining data too short for physmap name")
        name = data[pos:pos + namelen]
        pos += span
        if name[-1] != 0:
            raise Fail(1, "physmap name not NUL terminated")
        root = b"physmap/%x" % phys
        for key, val in ((root + b"/start_addr", b"%x" % start),
                         (root + b"/size", b"%x" % size),
                         (root + b"/name", name[:-1])):
            out += key + b"\0" + val + b"\0"
    return bytes(out)


def convert(data, width, guest, fmt, skip_qemu=False, xl=False, quirks=()):
    """Convert one legacy stream as REFERENCE.md says.

    Returns (output bytes, number of input bytes consumed) or raises Fail.
    `quirks` switches documented reference defects back on, to prove that the
    writer otherwise matches the reference byte for byte: "empty-batch" (a
    PAGE_DATA of count 0 for an all-dropped batch), "bad-types" (type 5-8
    entries copied).
    """
    r = Reader(data, width)
    pv, libxl = guest == "pv", fmt == "libxl"
    out = bytearray()

    if xl:
        if r.take(32) != XL_MAGIC:
            raise Fail(1, "No xl header")
        byteorder, mflags, oflags, optlen = r.unpack("IIII")
        if libxl:
            mflags |= XL_FLAG_STREAMV2
        out += XL_MAGIC + struct.pack("<IIII", byteorder, mflags, oflags, optlen)
        out += r.take(optlen)

    p2m_size, = r.ulongs(1)
    if libxl:
        out += struct.pack(">QII", LIBXL_IDENT, 2, LIBXL_OPT_LEGACY)
        out += record(XL_LIBXC_CONTEXT)
    out += struct.pack(">QIIHHI", IHDR_MARKER, IHDR_ID, 3, 0, 0, 0)
    out += struct.pack("<IHHII", DHDR_PV if pv else DHDR_HVM, 12, 0,
                       CONVERTER_MAJOR, CONVERTER_MINOR)

    guest_width = basic_len = xsave_len = 0
    extd = False
    if pv:
        marker, = r.ulongs(1)
        if marker != EXT_MARKER[width]:
            raise Fail(1, "Unexpected extended info marker 0x%x" % marker)
        total = r.u32()
        seen = 0
        while seen < total:
            blkid = r.take(4)
            size = r.u32()
            body = r.take(size)
            seen += 8 + size
            if blkid == b"vcpu":
                if size == VCPU_CTX_64:
                    guest_width, levels = 8, 4
                elif size == VCPU_CTX_32:
                    guest_width, levels = 4, 3
                else:
                    raise Fail(1, "Unable to determine guest width/level")
                basic_len = size
                out += record(XC_PV_INFO, struct.pack("<BBHI", guest_width, levels, 0, 0))
            elif blkid == b"extv":
                extd = True
            elif blkid == b"xcnt":
                if size < 4:
                    raise Fail(1, "xcnt block of %d bytes, expected at least 4" % size)
                xsave_len, = struct.unpack_from("<I", body, 0)
            else:
                raise Fail(1, "Unrecognised extended block")
        if seen != total:
            raise Fail(1, "Overshot Extended Info size by %d bytes" % (seen - total))
        if not guest_width:
            raise Fail(1, "no vcpu block in the extended info")
        if p2m_size == 0:
            raise Fail(1, "p2m size 0 in a PV stream")

    out += record(XC_STATIC_DATA_END)

    if pv:
        per_frame = PAGE // guest_width
        frames = r.ulongs((p2m_size - 1) // per_frame + 1)
        out += record(XC_P2M_FRAMES, struct.pack("<II", 0, p2m_size - 1)
                      + struct.pack("<%dQ" % len(frames), *frames))

    params, online, pairs = [], [], bytearray()
    while True:
        marker = r.s32()
        if marker == CHUNK_END:
            if params:
                if pv:
                    raise Fail(1, "HVM-only param in PV stream")
                out += record(XC_HVM_PARAMS, struct.pack("<II", len(params), 0)
                              + b"".join(struct.pack("<QQ", i, v) for i, v in params))
            break
        if marker > 0:
            if marker > MAX_BATCH:
                raise Fail(1, "Page batch (%d) exceeded MAX_BATCH (%d)" % (marker, MAX_BATCH))
            entries = [e for e in r.ulongs(marker) if e != XTAB_DROPPED]
            if len(set(entries)) != len(entries):
                raise Fail(1, "Duplicate pfns in batch")
            bad = [e for e in entries if 5 <= (e >> 28) & 0xF <= 8]
            if bad and "bad-types" not in quirks:
                raise Fail(1, "pfn entry 0x%x has invalid page type %d"
                           % (bad[0], (bad[0] >> 28) & 0xF))
            pages = r.take(PAGE * sum(1 for e in entries if (e >> 28) & 0xF < BROKEN))
            if entries or "empty-batch" in quirks:
                out += record(XC_PAGE_DATA, struct.pack("<II", len(entries), 0)
                              + struct.pack("<%dQ" % len(entries), *map(widen, entries))
                              + pages)
        elif marker in (CHUNK_VERIFY, CHUNK_LAST_CHECKPOINT):
            pass
        elif marker == CHUNK_VCPU_INFO:
            max_id = r.s32()
            if max_id > MAX_VCPU_ID:
                raise Fail(1, "Vcpu max_id out of range: %d > %d" % (max_id, MAX_VCPU_ID))
            nwords = max_id // 64 + 1 if max_id >= 0 else 0
            for idx, word in enumerate(r.unpack("%dQ" % nwords)):
                online += [idx * 64 + bit for bit in range(64) if word >> bit & 1]
        elif marker == CHUNK_TSC:
            mode, nsec, khz, incarnation = r.unpack("IQII")
            out += record(XC_TSC_INFO, struct.pack("<IIQII", mode, khz, nsec, incarnation, 0))
        elif marker in PARAM_CHUNKS:
            _, value = r.unpack("IQ")
            params.append((PARAM_CHUNKS[marker], value))
        elif marker == CHUNK_TOOLSTACK:
            blob = r.take(r.u32())
            if blob and libxl:
                pairs += physmap_pairs(blob, width)
        elif marker == CHUNK_COMPRESSED:
            r.skip(r.u32())
            raise Fail(2, "unsupported legacy chunk %d (compressed data)" % marker)
        elif marker in (CHUNK_TMEM, CHUNK_TMEM_EXTRA, CHUNK_ENABLE_COMPRESSION):
            raise Fail(2, "unsupported legacy chunk %d" % marker)
        else:
            raise Fail(1, "Unrecognised chunk %d" % marker)

    if pv:
        r.skip(r.u32() * r.ulong_size)  # "unmapped pfns": meaningless, dropped
        for vcpu_id in online:
            hdr = struct.pack("<II", vcpu_id, 0)
            out += record(XC_VCPU_BASIC, hdr + r.take(basic_len))
            if extd:
                out += record(XC_VCPU_EXTENDED, hdr + r.take(EXTD_CTX))
            if xsave_len:
                _mask, size = r.unpack("QQ")
                if size != xsave_len - 16:
                    raise Fail(1, "vcpu %d xsave size 0x%x, expected 0x%x (xcnt - 16)"
                               % (vcpu_id, size, xsave_len - 16))
                out += record(XC_VCPU_XSAVE, hdr + r.take(size))
        out += record(XC_SHARED_INFO, r.take(PAGE))
        out += record(XC_END)
    else:
        ioreq, bufioreq, store = r.unpack("QQQ")
        out += record(XC_HVM_PARAMS, struct.pack("<II", 3, 0) + struct.pack(
            "<6Q", HVM_PARAM_IOREQ_PFN, ioreq, HVM_PARAM_BUFIOREQ_PFN, bufioreq,
            HVM_PARAM_STORE_PFN, store))
        out += record(XC_HVM_CONTEXT, r.take(r.u32()))
        out += record(XC_END)

    if libxl and pairs:
        out += record(XL_EMU_XENSTORE, struct.pack("<II", EMU_UNKNOWN, 0) + pairs)

    if not pv and (libxl or not skip_qemu):
        sig = r.take(len(QEMU_SIG))
        if sig != QEMU_SIG:
            raise Fail(2, "Unrecognised Qemu sig %r" % sig)
        rawlen = r.take(4)
        qemu = r.take(struct.unpack("<I", rawlen)[0])
        if libxl:
            out += record(XL_EMU_CONTEXT, struct.pack("<II", EMU_UNKNOWN, 0) + qemu)
        else:
            out += sig + rawlen + qemu  # raw, after the libxc END, unpadded

    if libxl:
        out += record(XL_END)
    return bytes(out), r.pos


# =============================================================================
# Legacy stream builder
# =============================================================================

def u32(v):
    return struct.pack("<I", v)


def s32(v):
    return struct.pack("<i", v)


def ul(width, *vals):
    return struct.pack("<%d%s" % (len(vals), "I" if width == 32 else "Q"), *vals)


def blob(n, tag):
    """n deterministic bytes, distinct per tag."""
    seed = ("<%s>" % tag).encode()
    return (seed * (n // len(seed) + 1))[:n]


def entry(ptype, pfn):
    return (ptype << 28) | pfn


def page(e):
    return blob(PAGE, "page %08x" % e)


def batch(width, entries, pages=None):
    """A page batch: count, ulong entries, one page per kept entry of type < 0xd."""
    if pages is None:
        pages = b"".join(page(e) for e in entries
                         if e != XTAB_DROPPED and (e >> 28) & 0xF < BROKEN)
    return s32(len(entries)) + ul(width, *entries) + pages


def vcpu_info(max_id, words):
    return s32(CHUNK_VCPU_INFO) + s32(max_id) + struct.pack("<%dQ" % len(words), *words)


def tsc(mode=1, nsec=123456789012, khz=2400000, incarnation=3):
    return s32(CHUNK_TSC) + struct.pack("<IQII", mode, nsec, khz, incarnation)


def param(marker, value, ignored=0):
    return s32(marker) + struct.pack("<IQ", ignored, value)


def toolstack(data):
    return s32(CHUNK_TOOLSTACK) + u32(len(data)) + data


DEFAULT_PAD = b"\xa5\x5a\xc3\x3c"


def physmap(width, entries, version=1, count=None, pad=None):
    """libxl toolstack data: entries of (phys, start, size, name[, namelen])."""
    if pad is None:
        pad = DEFAULT_PAD if width == 64 else b""
    out = u32(version) + u32(len(entries) if count is None else count)
    for e in entries:
        phys, start, size, name = e[:4]
        namelen = e[4] if len(e) > 4 else len(name)
        out += struct.pack("<QQQI", phys, start, size, namelen) + name + pad
    return out


def ext_info(width, blocks, total=None, marker=None):
    body = b"".join(bid + u32(len(d)) + d for bid, d in blocks)
    return (ul(width, EXT_MARKER[width] if marker is None else marker)
            + u32(len(body) if total is None else total) + body)


def qemu_record(data, sig=QEMU_SIG):
    return sig + u32(len(data)) + data


def xl_header(mflags, config):
    """xl's header; its optional data is the config as xl writes it
    (save_domain_core_writeconfig): a u32 length, then the config and a NUL."""
    optdata = struct.pack("<I", len(config) + 1) + config + b"\0" if config else struct.pack("<I", 0)
    return XL_MAGIC + struct.pack("<IIII", XL_BYTEORDER, mflags, 0, len(optdata)) + optdata


XL_CONFIG = b'{"c_info": {"type": "%s", "name": "legacy-guest"}, "b_info": {"max_vcpus": 2}}\0'


class Stream:
    """Concatenated parts with named offsets (for truncations)."""

    def __init__(self):
        self.parts, self.marks, self.size = [], {}, 0

    def add(self, data, mark=None):
        if mark:
            self.marks[mark] = self.size
        self.parts.append(data)
        self.size += len(data)
        return self

    def at(self, mark, delta=0):
        return self.marks[mark] + delta

    def bytes(self):
        return b"".join(self.parts)


def pv_stream(width, guest_bits=64, p2m_size=None, blocks=None, extv=True, xcnt=None,
              ext_total=None, ext_marker=None, chunks=None, online=(0, 2), unmapped=(),
              xsave_size=None, xsave_mask=0x7, end=True, trailer=b""):
    """A legacy PV stream. xcnt: (xsave_len, block size) or None. `chunks`:
    list of bytes or (mark, bytes); `online`: vcpus whose state the tail holds."""
    basic_len = VCPU_CTX_64 if guest_bits == 64 else VCPU_CTX_32
    per_frame = PAGE // (guest_bits // 8)
    if p2m_size is None:
        p2m_size = 2 * per_frame + 1  # three p2m frames
    if blocks is None:
        blocks = [(b"vcpu", blob(basic_len, "vcpu block"))]
        if extv:
            blocks.append((b"extv", b""))
        if xcnt:
            xlen, bsize = xcnt
            blocks.append((b"xcnt", (u32(xlen) + b"\0" * 8)[:bsize]))
    xsave_len = xcnt[0] if xcnt else 0
    if chunks is None:
        chunks = default_pv_chunks(width, guest_bits)
    s = Stream()
    s.add(ul(width, p2m_size), "p2m_size")
    s.add(ext_info(width, blocks, ext_total, ext_marker), "ext")
    nframes = (p2m_size - 1) // per_frame + 1 if p2m_size else 0
    s.add(ul(width, *[0x1a000 + i for i in range(nframes)]), "frames")
    s.marks["chunks"] = s.size
    for c in chunks:
        if isinstance(c, tuple):
            s.add(c[1], c[0])
        else:
            s.add(c)
    if not end:
        return s
    s.add(s32(CHUNK_END), "end")
    s.add(u32(len(unmapped)) + ul(width, *unmapped), "tail")
    for v in online:
        s.add(blob(basic_len, "vcpu%d basic" % v), "vcpu%d" % v)
        if extv:
            s.add(blob(EXTD_CTX, "vcpu%d extd" % v))
        if xsave_len:
            size = xsave_len - 16 if xsave_size is None else xsave_size
            s.add(struct.pack("<QQ", xsave_mask, size), "xsave%d" % v)
            s.add(blob(size, "vcpu%d xsave" % v))
    s.add(blob(PAGE, "shared info"), "shinfo")
    if trailer:
        s.add(trailer, "trailer")
    return s


def default_pv_chunks(width, guest_bits=64):
    b1 = [entry(L1TAB, 0x10), entry(L2TAB, 0x11), XTAB_DROPPED, entry(L3TAB, 0x12)]
    if guest_bits == 64:
        b1.append(entry(L4TAB, 0x13))
    b2 = [entry(L1PIN, 0x20), entry(BROKEN, 0x21), entry(L2PIN, 0x22), XTAB_DROPPED,
          entry(XALLOC, 0x23), entry(L3PIN, 0x24), entry(XTAB, 0x25), entry(NOTAB, 0x26)]
    if guest_bits == 64:
        b2.append(entry(L4PIN, 0x27))
    return [("verify", s32(CHUNK_VERIFY)),
            ("batch1", batch(width, b1)),
            ("vcpu_info", vcpu_info(2, [0b101])),
            ("tsc", tsc()),
            ("batch2", batch(width, b2)),
            ("checkpoint", s32(CHUNK_LAST_CHECKPOINT))]


VGA = (0xf0000000, 0xf0000000, 0x800000, b"vga\0")
ROM = (0xf1000000, 0xfc000000, 0x10000, b"rom.pxe\0")

ALL_PARAMS_1 = [(-11, 0x1ff), (-3, 0xfeffc000), (-4, 0xfeffd000), (-8, 0xfefff),
                (-10, 1), (-14, 0xfc009000)]
ALL_PARAMS_2 = [(-15, 0xfeff8), (-16, 0xfeff9), (-17, 0xfeffa), (-19, 0xfeff3),
                (-20, 2)]


def params(pairs):
    # a non-zero ignored u32 on every other one: it must not matter
    return b"".join(param(m, v, 0xdead0000 + i if i % 2 else 0)
                    for i, (m, v) in enumerate(pairs))


def default_hvm_chunks(width):
    return [("batch1", batch(width, [0x0, 0x1, XTAB_DROPPED, 0x2, entry(XTAB, 0x20), 0xfeff0])),
            ("verify", s32(CHUNK_VERIFY)),
            ("vcpu_info", vcpu_info(1, [0b11])),
            ("params1", params(ALL_PARAMS_1)),
            ("tsc", tsc(mode=0, nsec=5, khz=2000000, incarnation=1)),
            ("toolstack", toolstack(physmap(width, [VGA, ROM]))),
            ("params2", params(ALL_PARAMS_2)),
            ("checkpoint", s32(CHUNK_LAST_CHECKPOINT)),
            ("batch2", batch(width, [0xfeff1, entry(XALLOC, 0x30), 0xfeff2]))]


def hvm_stream(width, p2m_size=0x100, chunks=None, magic=(0xfeff0, 0xfeff1, 0xfeff2),
               ctx=None, qemu=True, end=True, trailer=b""):
    s = Stream()
    s.add(ul(width, p2m_size), "p2m_size")
    s.marks["chunks"] = s.size
    for c in default_hvm_chunks(width) if chunks is None else chunks:
        if isinstance(c, tuple):
            s.add(c[1], c[0])
        else:
            s.add(c)
    if not end:
        return s
    s.add(s32(CHUNK_END), "end")
    s.add(struct.pack("<QQQ", *magic), "tail")
    ctx = blob(0x123, "hvm context") if ctx is None else ctx
    s.add(u32(len(ctx)) + ctx, "context")
    if qemu is True:
        qemu = qemu_record(blob(0x55, "qemu save state"))
    if qemu:
        s.add(qemu, "qemu")
    if trailer:
        s.add(trailer, "trailer")
    return s


# (width, guest bits) -> extv, xcnt (xsave_len, block size), online vcpus,
# vcpu_info (max_id, words), unmapped pfns
PV_FULL = {
    (64, 64): (True, (0x50, 8), (0, 2), (2, [0b101]), (0x7ffff, 0x12345)),
    (64, 32): (True, None, (0, 1), (1, [0b11]), ()),
    (32, 32): (True, (0x40, 4), (0, 1, 2), (2, [0b111]), (0x7ffff,)),
    (32, 64): (False, None, (0,), (0, [0b1]), ()),
}


def pv_full(width, gbits):
    extv, xcnt, online, vinfo, unmapped = PV_FULL[width, gbits]
    chunks = default_pv_chunks(width, gbits)
    chunks[2] = ("vcpu_info", vcpu_info(*vinfo))
    return pv_stream(width, gbits, extv=extv, xcnt=xcnt, chunks=chunks, online=online,
                     unmapped=unmapped)


def hvm_full(width):
    if width == 64:
        return hvm_stream(64)
    # 32-bit: one physmap entry (no leaked padding), at the end of the chunks
    return hvm_stream(32, chunks=[c for c in default_hvm_chunks(32) if c[0] != "toolstack"]
                      + [("toolstack", toolstack(physmap(32, [VGA])))])


# =============================================================================
# The fixture table
# =============================================================================

class Row:
    def __init__(self, name, fmt, skip_qemu, xl, exit, message, unread, defect,
                 ref_exit, quirks, ref_variant):
        self.name, self.fmt, self.skip_qemu, self.xl = name, fmt, skip_qemu, xl
        self.exit, self.message, self.unread, self.defect = exit, message, unread, defect
        self.ref_exit, self.quirks, self.ref_variant = ref_exit, quirks, ref_variant
        self.output, self.source, self.ref_note = "-", "-", ""

    @property
    def out_name(self):
        return "%s.%s%s.v3" % (self.name, self.fmt, "-skip-qemu" if self.skip_qemu else "")


class Table:
    def __init__(self):
        self.inputs = {}   # name -> (bytes, width, guest)
        self.rows = []

    def add(self, name, data, width, guest, formats=("libxc",), skip_qemu=0, xl=0, exit=0,
            message="-", unread=0, defect=None, ref_exit=None, quirks=(), ref_variant=None):
        """One input, one row per output format.

        unread: bytes at the end the converter must not read (trailers).
        defect: why the reference is wrong here (the golden then comes from
        the writer); ref_exit: the reference's exit code in that case;
        quirks: writer quirks under which it matches the reference exactly;
        ref_variant: (input map, output map) giving an input the reference
        handles right, and what the writer's golden becomes for it.
        """
        if isinstance(data, Stream):
            data = data.bytes()
        assert len(data) < MAX_INPUT, (name, len(data))
        if name in self.inputs:
            assert self.inputs[name] == (data, width, guest), name
        self.inputs[name] = (data, width, guest)
        for fmt in formats:
            self.rows.append(Row(name, fmt, skip_qemu, xl, exit, message, unread, defect,
                                 ref_exit, quirks, ref_variant))


def build_table():
    t = Table()
    TRUNC = "stream truncated"

    # --- PV successes --------------------------------------------------------
    for width, gbits in ((64, 64), (64, 32), (32, 32), (32, 64)):
        t.add("pv%d-guest%d" % (width, gbits), pv_full(width, gbits), width, "pv",
              ("libxc", "libxl"))

    t.add("pv64-vcpu-max-id-minus-1",
          pv_stream(64, chunks=[vcpu_info(-1, []), batch(64, [entry(L1TAB, 1)])], online=()),
          64, "pv")
    t.add("pv32-vcpu-max-id-minus-200",
          pv_stream(32, 32, chunks=[vcpu_info(-200, []), batch(32, [entry(L1TAB, 1)])],
                    online=()), 32, "pv")
    t.add("pv64-vcpu-bit-above-max-id",
          pv_stream(64, chunks=[vcpu_info(1, [0b101])], online=(0, 2)), 64, "pv")
    t.add("pv64-vcpu-second-word",
          pv_stream(64, extv=False, chunks=[vcpu_info(65, [0b1, 0b10])], online=(0, 65)),
          64, "pv")
    t.add("pv64-xcnt-zero",
          pv_stream(64, xcnt=(0, 4), chunks=[vcpu_info(0, [1])], online=(0,)), 64, "pv")
    t.add("pv64-toolstack",
          pv_stream(64, chunks=[vcpu_info(0, [1]), toolstack(physmap(64, [VGA])),
                                batch(64, [entry(L1TAB, 3)])], online=(0,)),
          64, "pv", ("libxc", "libxl"))
    t.add("pv64-trailer",
          pv_stream(64, chunks=[vcpu_info(0, [1]), batch(64, [entry(L4PIN, 3)])], online=(0,),
                    trailer=b"TRAILER"), 64, "pv", ("libxc", "libxl"), unread=7)

    # --- PV, goldens from the writer (reference defects) -----------------------
    for width in (64, 32):
        t.add("pv%d-batch-all-xtab" % width,
              pv_stream(width, chunks=[vcpu_info(0, [1]), batch(width, [XTAB_DROPPED] * 3),
                                       batch(width, [entry(L1TAB, 4), XTAB_DROPPED])],
                        online=(0,)),
              width, "pv", ("libxc", "libxl"), quirks=("empty-batch",), ref_exit=0,
              defect="all-dropped batch: the reference writes a PAGE_DATA with count 0")
    pv_xl_body = pv_stream(64, chunks=[vcpu_info(1, [0b11]), batch(64, [entry(L2TAB, 9)])],
                           online=(0, 1)).bytes()
    t.add("pv64-xl-header", xl_header(XL_FLAG_JSON, XL_CONFIG % b"pv") + pv_xl_body, 64, "pv",
          ("libxc", "libxl"), xl=1, ref_exit=1,
          defect="-x: the Python 3 reference always fails \"No xl header\"")
    # --- PV errors --------------------------------------------------------------
    one = [vcpu_info(0, [1])]
    t.add("pv64-hvm-param", pv_stream(64, chunks=one + [param(-3, 0xfeffc000)], online=(0,)),
          64, "pv", exit=1, message="HVM-only param in PV stream")
    t.add("pv32-hvm-param", pv_stream(32, 32, chunks=one + [param(-20, 2)], online=(0,)),
          32, "pv", ("libxc", "libxl"), exit=1, message="HVM-only param in PV stream")
    t.add("pv64-duplicate-pfns",
          pv_stream(64, chunks=one + [batch(64, [entry(L1TAB, 5), 6, entry(L1TAB, 5)])],
                    online=(0,)), 64, "pv", exit=1, message="Duplicate pfns in batch")
    t.add("pv32-duplicate-xtab-pfns",
          pv_stream(32, 32, chunks=one + [batch(32, [entry(XTAB, 5), XTAB_DROPPED,
                                                     entry(XTAB, 5)])], online=(0,)),
          32, "pv", exit=1, message="Duplicate pfns in batch")
    for width in (64, 32):
        t.add("pv%d-batch-1025" % width,
              pv_stream(width, chunks=one + [s32(1025) + ul(width, *range(1025))], end=False),
              width, "pv", exit=1, message="Page batch (1025) exceeded MAX_BATCH")
    t.add("pv64-unknown-chunk",
          pv_stream(64, chunks=one + [s32(-99)], online=(0,)),
          64, "pv", exit=1, message="Unrecognised chunk -99")
    t.add("pv64-vcpu-max-id-4096",
          pv_stream(64, chunks=[vcpu_info(4096, [1] + [0] * 64)], online=(0,)),
          64, "pv", exit=1, message="Vcpu max_id out of range")
    t.add("pv64-ext-unknown-block",
          pv_stream(64, blocks=[(b"vcpu", blob(VCPU_CTX_64, "v")), (b"xtra", b"1234")]),
          64, "pv", exit=1, message="Unrecognised extended block")
    t.add("pv64-ext-overshot",
          pv_stream(64, ext_total=VCPU_CTX_64 + 8 + 4), 64, "pv", exit=1,
          message="Overshot Extended Info size")
    t.add("pv64-ext-bad-marker", pv_stream(64, ext_marker=0xFFFFFFFF), 64, "pv", exit=1,
          message="Unexpected extended info marker")
    t.add("pv32-ext-bad-marker", pv_stream(32, 32, ext_marker=0), 32, "pv", exit=1,
          message="Unexpected extended info marker")
    t.add("pv64-ext-vcpu-size",
          pv_stream(64, blocks=[(b"vcpu", blob(0x1000, "v"))]), 64, "pv", exit=1,
          message="Unable to determine guest width/level")
    t.add("pv64-ext-no-vcpu-block",
          pv_stream(64, blocks=[(b"extv", b"")], chunks=one, online=(0,)),
          64, "pv", exit=1, message="vcpu", ref_exit=1,
          defect="no `vcpu` block: the reference crashes (ZeroDivisionError)")
    t.add("pv64-ext-xcnt-short", pv_stream(64, xcnt=(0x50, 2)), 64, "pv", exit=1,
          message="xcnt", ref_exit=1,
          defect="xcnt block under 4 bytes: the reference crashes (struct.error)")
    t.add("pv64-p2m-size-0", pv_stream(64, p2m_size=0), 64, "pv", exit=1, message="p2m",
          ref_exit=1, defect="p2m_size 0: the reference crashes (struct.error)")
    t.add("pv64-xsave-size-mismatch",
          pv_stream(64, xcnt=(0x50, 4), xsave_size=0x48), 64, "pv", exit=1, message="xsave",
          ref_exit=1, defect="xsave size mismatch: the reference crashes (AssertionError)")
    for width, ptype in ((64, 5), (64, 6), (64, 7), (64, 8), (32, 7)):
        t.add("pv%d-page-type-%d" % (width, ptype),
              pv_stream(width, chunks=one + [batch(width, [entry(L1TAB, 1), entry(ptype, 2)])],
                        online=(0,)),
              width, "pv", exit=1, message="page type", ref_exit=0, quirks=("bad-types",),
              defect="type 5-8 entries: the reference copies them into the v3 stream")
    t.add("pv32-tmem", pv_stream(32, 32, chunks=one + [s32(CHUNK_TMEM)], online=(0,)),
          32, "pv", exit=2)
    t.add("pv64-tmem-extra", pv_stream(64, chunks=one + [s32(CHUNK_TMEM_EXTRA)], online=(0,)),
          64, "pv", exit=2)

    # --- PV truncations (prefixes of a 2-page variant of pv64-guest64 / pv32-guest32)
    for width, gbits in ((64, 64), (32, 32)):
        extv, xcnt, online, vinfo, unmapped = PV_FULL[width, gbits]
        full = pv_stream(width, gbits, extv=extv, xcnt=xcnt, online=online, unmapped=unmapped,
                         chunks=[("verify", s32(CHUNK_VERIFY)),
                                 ("vcpu_info", vcpu_info(*vinfo)),
                                 ("tsc", tsc()),
                                 ("batch1", batch(width, [entry(L1TAB, 0x10), XTAB_DROPPED,
                                                          entry(BROKEN, 0x11),
                                                          entry(L2PIN, 0x12)])),
                                 ("checkpoint", s32(CHUNK_LAST_CHECKPOINT))])
        data = full.bytes()
        cuts = [("empty", 0), ("p2m-size", width // 8 - 1),
                ("ext-marker", full.at("ext", 3)),
                ("ext-vcpu-block", full.at("ext", 100)),
                ("p2m-frames", full.at("frames", width // 8 + 1)),
                ("batch-entries", full.at("batch1", 6)),
                ("batch-pages", full.at("checkpoint", -PAGE + 17)),
                ("vcpu-bitmap", full.at("vcpu_info", 10)),
                ("tsc", full.at("tsc", 9)),
                ("before-end", full.at("end")),
                ("unmapped-pfns", full.at("tail", 5)),
                ("vcpu-basic", full.at("vcpu%d" % online[-1], 100)),
                ("xsave", full.at("xsave0", 20)),
                ("shared-info", len(data) - 1)]
        for what, off in cuts:
            t.add("pv%d-truncated-%s" % (width, what), data[:off], width, "pv", exit=1,
                  message=TRUNC)

    # --- HVM successes -----------------------------------------------------------
    for width in (64, 32):
        s = hvm_full(width)
        name = "hvm%d-full" % width
        qemu_len = len(s.bytes()) - s.at("qemu")
        t.add(name, s, width, "hvm", ("libxc", "libxl"))
        t.add(name, s, width, "hvm", ("libxc",), skip_qemu=1, unread=qemu_len)
        t.add(name, s, width, "hvm", ("libxl",), skip_qemu=1)
    s = hvm_stream(64, qemu=False)
    t.add("hvm64-no-qemu-record", s, 64, "hvm", ("libxc",), skip_qemu=1)
    t.add("hvm64-no-qemu-record", s, 64, "hvm", ("libxc", "libxl"), exit=1, message=TRUNC)
    t.add("hvm64-no-chunks", hvm_stream(64, chunks=[]), 64, "hvm", ("libxc", "libxl"))
    t.add("hvm64-trailer", hvm_stream(64, trailer=b"TRAILER"), 64, "hvm",
          ("libxc", "libxl"), unread=7)
    t.add("hvm64-param-repeated",
          hvm_stream(64, chunks=[params([(-3, 0xfeffc000), (-20, 1), (-3, 0xfeffb000)])]),
          64, "hvm")
    t.add("hvm64-p2m-size-0", hvm_stream(64, p2m_size=0, chunks=[batch(64, [7])]), 64, "hvm")
    t.add("hvm64-toolstack-empty",
          hvm_stream(64, chunks=[toolstack(b""), toolstack(physmap(64, []))]),
          64, "hvm", ("libxc", "libxl"))
    t.add("hvm64-toolstack-two-chunks",
          hvm_stream(64, chunks=[toolstack(physmap(64, [VGA])), batch(64, [1]),
                                 toolstack(physmap(64, [ROM]))]),
          64, "hvm", ("libxc", "libxl"))
    t.add("hvm64-physmap-trailing-bytes",  # bytes after the last entry are ignored
          hvm_stream(64, chunks=[toolstack(physmap(64, [VGA]) + b"\0junk")]), 64, "hvm",
          ("libxc", "libxl"))
    t.add("pv64-ext-blocks-reordered",
          pv_stream(64, blocks=[(b"xcnt", u32(0x50)), (b"extv", b""),
                                (b"vcpu", blob(VCPU_CTX_64, "vcpu block"))],
                    xcnt=(0x50, 4), chunks=[vcpu_info(0, [1])], online=(0,)),
          64, "pv", ("libxc", "libxl"))
    t.add("hvm32-physmap-no-padding",  # a 32-bit toolstack leaks no padding: fine
          hvm_stream(32, chunks=[toolstack(physmap(32, [VGA]))]), 32, "hvm", ("libxl",))
    t.add("hvm64-qemu-bad-signature",
          hvm_stream(64, qemu=qemu_record(b"state", sig=b"DeviceModelRecord0001")),
          64, "hvm", ("libxc",), skip_qemu=1, unread=len(QEMU_SIG) + 4 + 5)
    t.add("hvm64-qemu-bad-signature",
          hvm_stream(64, qemu=qemu_record(b"state", sig=b"DeviceModelRecord0001")),
          64, "hvm", ("libxc", "libxl"), exit=2)

    # --- HVM, goldens from the writer (reference defects) --------------------------
    odd = (0xf2000000, 0xf2000000, 0x1000, b"caf\xe9-\xff\xfe\0")
    for width in (64, 32):
        s = hvm_stream(width, chunks=[toolstack(physmap(width, [VGA, odd]))])
        t.add("hvm%d-physmap-non-utf8-name" % width, s, width, "hvm", ("libxc",))
        t.add("hvm%d-physmap-non-utf8-name" % width, s, width, "hvm", ("libxl",), ref_exit=1,
              defect="a physmap name that is not UTF-8: the reference crashes "
                     "(UnicodeDecodeError)",
              ref_variant=(lambda b: b.replace(b"\xe9-\xff\xfe", b"e-ZZ"),
                           lambda b: b.replace(b"\xe9-\xff\xfe", b"e-ZZ")))
    t.add("hvm64-batch-all-xtab",
          hvm_stream(64, chunks=[batch(64, [XTAB_DROPPED]), batch(64, [3, XTAB_DROPPED])]),
          64, "hvm", ("libxc", "libxl"), quirks=("empty-batch",), ref_exit=0,
          defect="all-dropped batch: the reference writes a PAGE_DATA with count 0")
    t.add("hvm64-page-type-6", hvm_stream(64, chunks=[batch(64, [1, entry(6, 2)])]),
          64, "hvm", exit=1, message="page type", ref_exit=0, quirks=("bad-types",),
          defect="type 5-8 entries: the reference copies them into the v3 stream")
    for width in (64, 32):
        body = hvm_stream(width, chunks=[params([(-3, 0xfeffc000)]),
                                         toolstack(physmap(width, [VGA]))]).bytes()
        cfg = XL_CONFIG % b"hvm"
        t.add("hvm%d-xl-header" % width, xl_header(XL_FLAG_JSON, cfg) + body, width, "hvm",
              ("libxc", "libxl"), xl=1, ref_exit=1,
              defect="-x: the Python 3 reference always fails \"No xl header\"")
    body = hvm_stream(64, chunks=[]).bytes()
    t.add("hvm64-xl-header-no-config", xl_header(0, b"") + body, 64, "hvm",
          ("libxc", "libxl"), xl=1, ref_exit=1,
          defect="-x: the Python 3 reference always fails \"No xl header\"")
    t.add("hvm64-xl-header-libxc-skip-qemu", xl_header(XL_FLAG_JSON, cfg) + body, 64, "hvm",
          ("libxc",), xl=1, skip_qemu=1, unread=len(QEMU_SIG) + 4 + 0x55, ref_exit=1,
          defect="-x: the Python 3 reference always fails \"No xl header\"")
    t.add("hvm64-xl-header-truncated", (xl_header(XL_FLAG_JSON, cfg) + body)[:48 + 10], 64,
          "hvm", ("libxc", "libxl"), xl=1, exit=1, message=TRUNC, ref_exit=1,
          defect="-x: the Python 3 reference always fails \"No xl header\"")
    t.add("hvm64-xl-header-bad-magic", xl_header(XL_FLAG_JSON, cfg).replace(b"xl", b"xm")
          + body, 64, "hvm", ("libxc",), xl=1, exit=1, message="No xl header")

    # --- HVM errors --------------------------------------------------------------------
    bad_ts = [
        ("physmap-not-nul-terminated", physmap(64, [(1, 2, 3, b"vga!")]),
         "physmap name not NUL terminated"),
        ("toolstack-version-2", physmap(64, [VGA], version=2),
         "Cannot decode libxl toolstack version 2"),
        ("toolstack-short", b"\1\0\0\0", "Overly short libxl toolstack data"),
        ("physmap-header-short", physmap(64, [VGA])[:8 + 27],
         "Remaining data too short for physmap header"),
        ("physmap-count-too-big", physmap(64, [VGA], count=2),
         "Remaining data too short for physmap header"),
        ("physmap-no-name", physmap(64, [(1, 2, 3, b"", 0)]), "No physmap info name"),
        ("physmap-no-padding", physmap(64, [VGA], pad=b""),
         "Remaining data too short for physmap name"),
    ]
    for what, data, msg in bad_ts:
        s = hvm_stream(64, chunks=[toolstack(data)])
        t.add("hvm64-" + what, s, 64, "hvm", ("libxc",))   # libxc discards the data
        t.add("hvm64-" + what, s, 64, "hvm", ("libxl",), exit=1, message=msg)
    t.add("hvm64-duplicate-pfns", hvm_stream(64, chunks=[batch(64, [1, 2, 3, 2])]), 64, "hvm",
          ("libxc", "libxl"), exit=1, message="Duplicate pfns in batch")
    t.add("hvm32-batch-1025", hvm_stream(32, chunks=[s32(1025)], end=False), 32, "hvm",
          exit=1, message="Page batch (1025) exceeded MAX_BATCH")
    t.add("hvm64-unknown-chunk", hvm_stream(64, chunks=[s32(-99)]), 64, "hvm", exit=1,
          message="Unrecognised chunk -99")
    t.add("hvm32-unknown-chunk-21", hvm_stream(32, chunks=[s32(-21)]), 32, "hvm", exit=1,
          message="Unrecognised chunk -21")
    t.add("hvm64-tmem", hvm_stream(64, chunks=[s32(CHUNK_TMEM)]), 64, "hvm", exit=2)
    t.add("hvm64-compressed-data",
          hvm_stream(64, chunks=[s32(CHUNK_COMPRESSED) + u32(6) + b"zzzzzz"]), 64, "hvm",
          ("libxc", "libxl"), exit=2)
    t.add("hvm64-enable-compression", hvm_stream(64, chunks=[s32(CHUNK_ENABLE_COMPRESSION)]),
          64, "hvm", exit=2)

    # --- HVM truncations (prefixes of hvm64-full / hvm32-full) ------------------------
    for width in (64, 32):
        full = hvm_full(width)
        data = full.bytes()
        cuts = [("p2m-size", width // 8 - 1),
                ("batch-entries", full.at("batch1", 4 + width // 8)),
                ("batch-pages", full.at("batch2", 4 + 3 * width // 8 + 4095)),
                ("param", full.at("params1", 12)),
                ("tsc", full.at("tsc", 23)),
                ("toolstack", full.at("toolstack", 8 + 30)),
                ("magic-pfns", full.at("tail", 20)),
                ("hvm-context", full.at("context", 4 + 0x100))]
        for what, off in cuts:
            t.add("hvm%d-truncated-%s" % (width, what), data[:off], width, "hvm",
                  ("libxc", "libxl") if what == "toolstack" else ("libxc",),
                  exit=1, message=TRUNC)
        for what, off in (("qemu-signature", full.at("qemu", 10)),
                          ("qemu-length", full.at("qemu", 23)),
                          ("qemu-data", len(data) - 1)):
            t.add("hvm%d-truncated-%s" % (width, what), data[:off], width, "hvm",
                  ("libxc", "libxl"), exit=1, message=TRUNC)
    return t


# =============================================================================
# Running the reference, checking, writing
# =============================================================================

def find_reference(path):
    if path is None:
        found = sorted(glob.glob(os.path.join(REF_DIR, "root/usr/lib/xen-*/bin/"
                                              "convert-legacy-stream")))
        if not found:
            return None
        path = found[-1]
    pythonpath = os.path.join(os.path.dirname(os.path.dirname(path)), "lib", "python")
    return path, pythonpath


def run_reference(ref, data, width, guest, fmt, skip_qemu, xl):
    script, pythonpath = ref
    with tempfile.TemporaryDirectory() as tmp:
        fin, fout = os.path.join(tmp, "in"), os.path.join(tmp, "out")
        with open(fin, "wb") as f:
            f.write(data)
        cmd = [sys.executable, script, "-i", fin, "-o", fout, "-w", str(width),
               "-g", guest, "-f", fmt]
        if skip_qemu:
            cmd.append("--skip-qemu")
        if xl:
            cmd.append("-x")
        env = dict(os.environ, PYTHONPATH=pythonpath)
        p = subprocess.run(cmd, capture_output=True, env=env, timeout=120)
        out = b""
        if os.path.exists(fout):
            with open(fout, "rb") as f:
                out = f.read()
    return p.returncode, out, p.stderr.decode(errors="replace")


def last_line(text):
    lines = [l for l in text.splitlines() if l.strip()]
    return lines[-1].strip() if lines else ""


def first_difference(a, b):
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return i
    return min(len(a), len(b))


def writer(data, width, guest, row, quirks=()):
    try:
        out, used = convert(data, width, guest, row.fmt, row.skip_qemu, row.xl, quirks)
        return 0, out, used, ""
    except Fail as e:
        return e.code, None, None, e.message


def check_row(t, row, ref, problems):
    data, width, guest = t.inputs[row.name]
    code, out, used, msg = writer(data, width, guest, row)
    where = "%s (%s%s%s)" % (row.name, row.fmt, " --skip-qemu" if row.skip_qemu else "",
                             " -x" if row.xl else "")
    if code != row.exit:
        problems.append("%s: writer exit %d, expected %d (%s)" % (where, code, row.exit, msg))
        return None
    if code == 0 and used != len(data) - row.unread:
        problems.append("%s: writer read %d of %d bytes, expected %d" %
                        (where, used, len(data), len(data) - row.unread))
    if code and row.message != "-" and row.message.lower() not in msg.lower():
        problems.append("%s: writer message %r lacks %r" % (where, msg, row.message))
    golden, row.source = out, "writer"
    if ref is None:
        return golden

    rc, rout, rerr = run_reference(ref, data, width, guest, row.fmt, row.skip_qemu, row.xl)
    row.ref_note = "exit %d%s" % (rc, (": " + last_line(rerr)) if rc else "")
    if row.defect is None:
        if rc != row.exit:
            problems.append("%s: reference exit %d, expected %d: %s" %
                            (where, rc, row.exit, last_line(rerr)))
        elif rc == 0:
            if rout != out:
                problems.append("%s: writer and reference differ at byte %d (%d vs %d bytes)"
                                % (where, first_difference(out, rout), len(out), len(rout)))
            golden, row.source = rout, "reference"
        elif rc == 1 and row.message != "-" and row.message.lower() not in rerr.lower():
            problems.append("%s: reference error lacks %r: %s" %
                            (where, row.message, last_line(rerr)))
        elif rc == 2 and "Script Error" not in rerr:
            problems.append("%s: reference exit 2 without 'Script Error'" % where)
        return golden

    # A documented reference defect: the reference must fail the way REFERENCE.md says.
    if rc != row.ref_exit:
        problems.append("%s: reference exit %d, documented %d: %s" %
                        (where, rc, row.ref_exit, last_line(rerr)))
    if row.quirks:
        qcode, qout, _, qmsg = writer(data, width, guest, row, row.quirks)
        if qcode != rc or qout != rout:
            problems.append("%s: writer with quirks %s does not match the reference" %
                            (where, ",".join(row.quirks)))
        else:
            row.ref_note += "; = writer with quirk %s" % ",".join(row.quirks)
    if row.ref_variant and code == 0:
        fin, fout = row.ref_variant
        vrc, vout, verr = run_reference(ref, fin(data), width, guest, row.fmt, row.skip_qemu,
                                        row.xl)
        if vrc != 0 or vout != fout(out):
            problems.append("%s: reference on the mapped input differs: exit %d %s" %
                            (where, vrc, last_line(verr)))
        else:
            row.ref_note += "; same bytes as the reference on a UTF-8 name"
    if row.xl and code == 0:
        # The same stream without the xl header: the reference handles that,
        # and its output must be ours without the copied header.
        hdrlen = 48 + struct.unpack_from("<I", data, 44)[0]
        vrc, vout, verr = run_reference(ref, data[hdrlen:], width, guest, row.fmt,
                                        row.skip_qemu, 0)
        mflags = struct.unpack_from("<I", data, 36)[0] | (XL_FLAG_STREAMV2 if row.fmt == "libxl"
                                                          else 0)
        want_hdr = data[:36] + struct.pack("<I", mflags) + data[40:hdrlen]
        if vrc != 0 or vout != out[hdrlen:] or out[:hdrlen] != want_hdr:
            problems.append("%s: reference without the xl header differs: exit %d %s" %
                            (where, vrc, last_line(verr)))
        else:
            row.ref_note += "; = reference output on the header-less input, after the header"
    return golden


README = """\
# Legacy conversion fixtures

Inputs and golden outputs for the drop-in `convert-legacy-stream` (legacy
Xen <= 4.5 save stream -> v3 stream), written by
`scripts/make-legacy-fixtures.py` (Python 3, standard library only,
deterministic; it does not use xsr's C++ code). Regenerate with

    scripts/make-legacy-fixtures.py            # needs the reference, see below
    scripts/make-legacy-fixtures.py --no-reference   # writer only, same bytes

- `NAME.bin`: a small legacy stream (< 64 KiB), built byte by byte from
  REFERENCE.md "Legacy input"; `NAME` says what it contains or triggers
  (`pv64-` / `hvm32-` ...: guest type and toolstack width `-w`; `pvW-guestG`:
  toolstack width W, guest width G).
- `NAME.FORMAT[-skip-qemu].v3`: the exact output our converter must write
  for that input, format and options.

Each row is converted by the script's own writer (from REFERENCE.md
"Converter output") and by Xen 4.17's `convert-legacy-stream` (Debian
xen-utils-4.17, Python 3; fetched by `scripts/reference-diff.py` into
/var/tmp/xsr-xen-ref). The script stops unless both agree on the exit code
and, for successes, on every byte; the golden is then the reference's output.

## expected.tsv

Tab-separated, one header line, one row per conversion:

| column | meaning |
| --- | --- |
| input | path relative to `fixtures/` |
| width | `-w`: 32 or 64 (legacy toolstack bitness) |
| guest | `-g`: pv or hvm |
| format | `-f`: libxc or libxl |
| skip_qemu | 1: pass `--skip-qemu` |
| xl | 1: the input starts with an xl header, pass `-x` |
| exit | expected exit code: 0 success, 1 bad or truncated stream, 2 unsupported (tmem, compression, unknown qemu signature) |
| output | for exit 0 the golden output (path relative to `fixtures/`), else `-` |
| message | for exit 1, a substring the one-line error must contain (the reference's StreamError text where it has one; `stream truncated` in lower case for every truncation); `-` for exit 0 and 2 |

Successful rows with trailing input (`*-trailer`, and libxc `--skip-qemu`
rows whose input still holds a qemu record) must read only the stream: the
golden output does not contain the trailing bytes, and for a file or FD input
the converter must leave the offset just after the last byte it needs.

## Goldens from the writer (reference defects, REFERENCE.md)

For these rows the reference is wrong, so the expected result comes from the
independent writer. The script still runs the reference on them and checks
it fails exactly as documented, and where possible that it gives the same
bytes once the defect is taken away (the writer with the defect switched
back on, or the reference run on a variant of the input it handles).

| input (formats) | exit | what the reference does | check |
| --- | --- | --- | --- |
%s

Messages we chose where the reference only crashes: `vcpu` (no vcpu block),
`xcnt` (xcnt block under 4 bytes), `p2m` (p2m_size 0 in a PV stream),
`xsave` (xsave size mismatch), `page type` (type 5-8 entries).
"""


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=os.path.join(ROOT, "fixtures"),
                    help="fixtures directory (writes OUT/legacy/)")
    ap.add_argument("--reference", help="path of Xen's convert-legacy-stream "
                    "(default: under $XSR_REF_DIR or /var/tmp/xsr-xen-ref)")
    ap.add_argument("--no-reference", action="store_true",
                    help="write every golden from the writer, without the oracle")
    ap.add_argument("-v", "--verbose", action="store_true", help="list every row")
    args = ap.parse_args()

    ref = None
    if not args.no_reference:
        ref = find_reference(args.reference)
        if ref is None:
            sys.exit("no reference convert-legacy-stream: run scripts/reference-diff.py once "
                     "(it fetches Xen's tools), pass --reference, or --no-reference")

    t = build_table()
    problems, goldens = [], {}
    for row in t.rows:
        golden = check_row(t, row, ref, problems)
        if row.exit == 0 and golden is not None:
            row.output = "legacy/" + row.out_name
            goldens[row.out_name] = golden
        if row.defect and row.exit == 0:
            row.source = "writer"
    if problems:
        for p in problems:
            print("FAIL " + p, file=sys.stderr)
        sys.exit("%d problem(s); nothing written" % len(problems))

    outdir = os.path.join(args.out, "legacy")
    os.makedirs(outdir, exist_ok=True)
    for f in os.listdir(outdir):
        if f.endswith((".bin", ".v3")):
            os.unlink(os.path.join(outdir, f))
    for name, (data, _, _) in t.inputs.items():
        with open(os.path.join(outdir, name + ".bin"), "wb") as f:
            f.write(data)
    for name, data in goldens.items():
        with open(os.path.join(outdir, name), "wb") as f:
            f.write(data)
    with open(os.path.join(outdir, "expected.tsv"), "w") as f:
        f.write("input\twidth\tguest\tformat\tskip_qemu\txl\texit\toutput\tmessage\n")
        for row in t.rows:
            _, width, guest = t.inputs[row.name]
            f.write("\t".join(map(str, ("legacy/%s.bin" % row.name, width, guest, row.fmt,
                                        row.skip_qemu, row.xl, row.exit, row.output,
                                        row.message))) + "\n")
    defects, seen = [], {}
    for row in t.rows:
        if row.defect:
            opts = row.fmt + (" --skip-qemu" if row.skip_qemu else "")
            check = ("reference exit %d" % row.ref_exit) + (
                "; same bytes with the defect put back" if row.quirks else "") + (
                "; same bytes on a UTF-8 name" if row.ref_variant and row.exit == 0 else "") + (
                "; same bytes after the header when run without it" if row.xl and row.exit == 0
                else "")
            key = (row.name, row.exit)
            if key in seen:
                defects[seen[key]][1].append(opts)
                continue
            seen[key] = len(defects)
            defects.append([row.name, [opts], row.exit, row.defect, check])
    defects = ["| `%s` (%s) | %d | %s | %s |" % (n, ", ".join(o), e, d, c)
               for n, o, e, d, c in defects]
    with open(os.path.join(outdir, "README.md"), "w") as f:
        f.write(README % "\n".join(defects))

    nref = sum(1 for r in t.rows if r.exit == 0 and r.source == "reference")
    nwriter = sum(1 for r in t.rows if r.exit == 0 and r.source == "writer")
    for row in t.rows if args.verbose else ():
        print("%-40s %-6s skip=%d xl=%d exit=%d golden=%-9s ref: %s" %
              (row.name, row.fmt, row.skip_qemu, row.xl, row.exit,
               row.source if row.exit == 0 else "-", row.ref_note or "not run"))
    print("%d inputs, %d rows: %d goldens from the reference, %d from the writer%s" %
          (len(t.inputs), len(t.rows), nref, nwriter,
           "" if ref else " (no reference run)"))


if __name__ == "__main__":
    main()
