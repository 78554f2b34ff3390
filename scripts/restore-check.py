#!/usr/bin/env python3
"""Compares xsr's `verify --strict` with Xen 4.17's real restore code.

Xen's libxenguest and libxenctrl ship in Debian's libxenmisc4.17; this
script fetches it and the small libraries it needs with `apt-get download`
(no install), unpacks them into a cache folder, builds tests/restore/harness.c
against them (cached by a hash of its source) and runs the harness, which
restores each stream through Xen's own code over a model of the hypervisor
(tests/restore/README.md), next to `xsr verify --strict` over: streams from
`xsr gen` of every kind, legacy ones converted by `xsr convert`, the legacy
fixtures converted, the verifier fixtures' strict rows, seeded mutations, and
two hand-made streams that must restore (they test the oracle itself).
Verdicts: harness ACCEPT against strict exit 0, REFUSE/CRASH against exit 1.
When the packages cannot be had, it says so and exits 0.

Usage: restore-check.py [--report-only]     the comparison (exit 1 on any
                                            disagreement unless --report-only)
       restore-check.py [--remus] FILE...   the harness's verdict per file

Env: XSR_BUILD (default build), XSR_RESTORE_DIR (default
/var/tmp/xsr-xen-restore), MUTATIONS (default 400).
"""
import glob
import hashlib
import os
import random
import struct
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.environ.get("XSR_BUILD", os.path.join(ROOT, "build"))
CACHE = os.environ.get("XSR_RESTORE_DIR", "/var/tmp/xsr-xen-restore")
XSR = os.path.join(BUILD, "cmd", "xsr")
SOURCE = os.path.join(ROOT, "tests", "restore", "harness.c")
PACKAGES = ["libxenmisc4.17", "libxen-dev", "libxencall1", "libxenforeignmemory1",
            "libxendevicemodel1", "libxenevtchn1", "libxengnttab1", "libxenhypfs1",
            "libxenstore4", "libxentoolcore1", "libxentoollog1"]
LIBDIR = "usr/lib/x86_64-linux-gnu"


def fetch_xen():
    """The unpacked root, or None when the packages cannot be had."""
    root = os.path.join(CACHE, "root")
    if (os.path.exists(os.path.join(root, LIBDIR, "libxenguest.so.4.17"))
            and os.path.exists(os.path.join(root, "usr/include/xenguest.h"))):
        return root
    debs_dir = os.path.join(CACHE, "debs")
    os.makedirs(debs_dir, exist_ok=True)
    for attempt in range(2):
        for name in PACKAGES:
            if not glob.glob(os.path.join(debs_dir, name + "_*.deb")):
                subprocess.run(["apt-get", "download", name], cwd=debs_dir, capture_output=True)
        if all(glob.glob(os.path.join(debs_dir, n + "_*.deb")) for n in PACKAGES):
            break
        if attempt == 0:
            subprocess.run(["apt-get", "update", "-qq"], capture_output=True)
    if not all(glob.glob(os.path.join(debs_dir, n + "_*.deb")) for n in PACKAGES):
        return None
    for deb in sorted(glob.glob(os.path.join(debs_dir, "*.deb"))):
        subprocess.run(["dpkg-deb", "-x", deb, root], check=True)
    return root if os.path.exists(os.path.join(root, LIBDIR, "libxenguest.so.4.17")) else None


def build_harness(root):
    with open(SOURCE, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()[:16]
    exe = os.path.join(CACHE, "harness-" + digest)
    if os.path.exists(exe):
        return exe
    lib = os.path.join(root, LIBDIR)
    cmd = ["gcc", "-O1", "-g", "-Wall", "-Wextra", "-std=gnu11", "-I" + os.path.join(root, "usr/include"),
           "-D__XEN_TOOLS__", "-rdynamic", "-o", exe + ".tmp", SOURCE, "-L" + lib,
           "-l:libxenguest.so.4.17", "-l:libxenctrl.so.4.17", "-l:libxentoollog.so.1",
           "-Wl,--disable-new-dtags,-rpath," + lib]
    subprocess.run(cmd, check=True)
    os.rename(exe + ".tmp", exe)
    return exe


def harness(exe, path, remus=False):
    """(verdict line, exit code)."""
    cmd = [exe] + (["--remus"] if remus else []) + [path]
    try:
        p = subprocess.run(cmd, capture_output=True, timeout=120)
    except subprocess.TimeoutExpired:
        return "CRASH: harness timeout", 3
    out = p.stdout.decode(errors="replace").strip() or p.stderr.decode(errors="replace").strip()
    return out, p.returncode


def strict(path, checkpointed=False, plain=False):
    """(exit code, [last stderr line]) of xsr verify --strict (plain: without)."""
    cmd = [XSR, "verify", "--no-progress"]
    if not plain:
        cmd += ["--strict"] + (["--checkpointed"] if checkpointed else [])
    try:
        p = subprocess.run(cmd + [path], capture_output=True, timeout=120)
    except subprocess.TimeoutExpired:
        return None, ["ran past two minutes"]
    return p.returncode, p.stderr.decode(errors="replace").strip().splitlines()[-1:]


# ------------------------------------------------------- hand-made streams

def rec(rtype, body):
    pad = (-len(body)) % 8
    return struct.pack("<II", rtype, len(body)) + body + b"\0" * pad


def image_header(guest_type):
    ihdr = b"\xff" * 8 + struct.pack(">IIHHI", 0x58454E46, 3, 0, 0, 0)
    return ihdr + struct.pack("<IHHII", guest_type, 12, 0, 4, 17)


def page_data(entries, pages):
    body = struct.pack("<II", len(entries), 0)
    body += b"".join(struct.pack("<Q", e) for e in entries)
    return rec(1, body + b"".join(pages))


def hvm_context(cpu_instance=0, cpu_length=1032, magic=0x54381286, end=True):
    blob = struct.pack("<HHI", 1, 0, 24) + struct.pack("<IIQII", magic, 1, 0, 0, 0)
    blob += struct.pack("<HHI", 2, cpu_instance, cpu_length) + b"\0" * cpu_length
    if end:
        blob += struct.pack("<HHI", 0, 0, 0)
    return blob


def handmade_hvm(params=None, context=None, tsc_mode=0):
    """HEADER+CPU+END context, a few pages, store/console/ioreq pfns among
    them: Xen must restore it."""
    pfns = list(range(16))
    out = image_header(2)
    out += rec(0x10, b"")  # STATIC_DATA_END
    out += page_data(pfns, [struct.pack("<Q", p) * 512 for p in pfns])
    out += rec(8, struct.pack("<IIQII", tsc_mode, 0, 0, 0, 0))  # X86_TSC_INFO
    out += rec(9, context if context is not None else hvm_context())
    if params is None:
        params = [(1, 13), (5, 14), (6, 15), (17, 12), (10, 1)]
    out += rec(0xA, struct.pack("<II", len(params), 0)
               + b"".join(struct.pack("<QQ", i, v) for i, v in params))
    return out + rec(0, b"")


def handmade_pv(cr3_pfn=2, pin_top=True, store_pfn=14, console_pfn=15):
    """A 64-bit PV guest: start_info (pfn 0), one p2m frame (pfn 1), an
    L4->L3->L2->L1 chain (pfns 2-5) whose top is vcpu0's cr3, data, store and
    console pages, shared_info: Xen must restore it."""
    L = lambda n: n << 28  # XEN_DOMCTL_PFINFO_LnTAB
    pinned = 1 << 31
    present = 0x67
    pages, types = [], []
    start_info = bytearray(4096)
    struct.pack_into("<Q", start_info, 56, store_pfn)
    struct.pack_into("<Q", start_info, 72, console_pfn)
    pages.append(bytes(start_info)); types.append(0)
    pages.append(b"\0" * 4096); types.append(0)  # p2m frame, rewritten by restore
    for level, child in ((4, 3), (3, 4), (2, 5)):
        t = bytearray(4096)
        struct.pack_into("<Q", t, 0, (child << 12) | present)
        pages.append(bytes(t)); types.append(L(level) | (pinned if level == 4 and pin_top else 0))
    l1 = bytearray(4096)
    for i in range(8):
        struct.pack_into("<Q", l1, 8 * i, ((6 + i) << 12) | present)
    pages.append(bytes(l1)); types.append(L(1))
    for p in range(6, 16):
        pages.append(struct.pack("<Q", p) * 512); types.append(0)
    entries = [p | (t << 32) for p, t in enumerate(types)]
    out = image_header(1)
    out += rec(2, struct.pack("<BB6x", 8, 4))  # X86_PV_INFO
    out += rec(0x10, b"")
    out += rec(3, struct.pack("<IIQ", 0, 15, 1))  # X86_PV_P2M_FRAMES: pfns 0-15 in pfn 1
    out += page_data(entries, pages)
    out += rec(8, struct.pack("<IIQII", 0, 0, 0, 0, 0))
    out += rec(7, b"\0" * 4096)  # SHARED_INFO
    ctxt = bytearray(5168)
    struct.pack_into("<Q", ctxt, 616, 0)  # rdx: start_info pfn
    struct.pack_into("<Q", ctxt, 5008, cr3_pfn << 12)
    out += rec(4, struct.pack("<II", 0, 0) + bytes(ctxt))  # X86_PV_VCPU_BASIC vcpu0
    return out + rec(0, b"")


def handmade_cases():
    """(name, bytes, wanted verdict prefix)."""
    return [
        ("hvm-minimal", handmade_hvm(), "ACCEPT"),
        ("pv-minimal", handmade_pv(), "ACCEPT"),
        ("hvm-cpu-compat-size", handmade_hvm(context=hvm_context(cpu_length=1016)), "ACCEPT"),
        ("hvm-no-end", handmade_hvm(context=hvm_context(end=False)), "REFUSE: hypervisor: sethvmcontext: no END"),
        ("hvm-bad-magic", handmade_hvm(context=hvm_context(magic=1)), "REFUSE: hypervisor: sethvmcontext: bad magic"),
        ("hvm-cpu-vcpu-128", handmade_hvm(context=hvm_context(cpu_instance=128)), "REFUSE: hypervisor: sethvmcontext: entry 2/128"),
        ("hvm-cpu-too-long", handmade_hvm(context=hvm_context(cpu_length=1040)), "REFUSE: hypervisor: sethvmcontext: entry 2/0 length"),
        ("hvm-tsc-mode-3", handmade_hvm(tsc_mode=3), "REFUSE: hypervisor: settscinfo"),
        # Xen stores a STORE_PFN beyond guest memory as it is (restore only clears the page).
        ("hvm-store-pfn-beyond", handmade_hvm(params=[(1, 0x100)]), "ACCEPT"),
        ("hvm-param-39", handmade_hvm(params=[(39, 0)]), "REFUSE: hypervisor: set_param: index 39"),
        ("hvm-viridian-0", handmade_hvm(params=[(9, 0)]), "REFUSE: hypervisor: set_param: VIRIDIAN"),
        ("pv-cr3-not-pinned", handmade_pv(pin_top=False), "REFUSE: hypervisor: setvcpucontext: vcpu0 cr3"),
        ("pv-cr3-is-l3", handmade_pv(cr3_pfn=3), "REFUSE: cr3 (pfn 0x3) has bad type"),
        ("pv-store-pfn-beyond", handmade_pv(store_pfn=99), "REFUSE: XenStore pfn 0x63 out of range"),
    ]


def self_test(exe, tmp):
    """The oracle's own test: hand-made streams restore, their breakages do not."""
    failures = 0
    for name, data, want in handmade_cases():
        path = os.path.join(tmp, "handmade-%s.bin" % name)
        with open(path, "wb") as f:
            f.write(data)
        got, _ = harness(exe, path)
        if not got.startswith(want):
            failures += 1
            print("SELF-TEST %s: harness says %r, want %r" % (name, got, want))
    return failures


# ------------------------------------------------------------- corpus

def gen(out, *args):
    p = subprocess.run([XSR, "gen", "--no-progress", "-o", out] + list(args), capture_output=True)
    return p.returncode == 0


def convert(src, out):
    p = subprocess.run([XSR, "convert", "--no-progress", src, out], capture_output=True)
    return p.returncode == 0


def mutate(data, rng):
    b = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        # The headers and first records; the end of a checkpoint (TSC info,
        # the HVM context and params, the vCPU contexts, start_info's and the
        # pagetables' last copies); anywhere.
        where = rng.random()
        if where < 0.4:
            at = rng.randrange(min(len(b), 4096))
        elif where < 0.8:
            at = max(0, len(b) - 1 - rng.randrange(min(len(b), 65536)))
        else:
            at = rng.randrange(len(b))
        choice = rng.random()
        if choice < 0.5:
            b[at] = rng.randrange(256)
        elif choice < 0.8:
            b[at] ^= 1 << rng.randrange(8)
        else:
            b[at] = 0
    if rng.random() < 0.15:
        del b[rng.randrange(len(b)):]
    return bytes(b)


def build_corpus(tmp):
    """[(group, path, remus)]."""
    corpus = []
    realistic = []
    n = 0
    for fmt in ("libxc", "libxl", "xl"):
        for typ in ("hvm", "pv"):
            for ver in ("2", "3"):
                widths = ("64", "32") if typ == "pv" else ("64",)
                for width in widths:
                    for extra in ([], ["--mixed-pages", "--order", "sequential"]):
                        n += 1
                        out = os.path.join(tmp, "gen-%s-%s-v%s-w%s-%d.bin" % (fmt, typ, ver, width, n))
                        size = ("64K", "300K", "1M")[n % 3]
                        if gen(out, "--size", size, "-f", fmt, "-t", typ, "--stream-version", ver,
                               "--width", width, "--seed", str(n), *extra):
                            corpus.append(("gen", out, False))
                            if extra:
                                realistic.append(out)
            for typ in ("hvm", "pv"):
                out = os.path.join(tmp, "gen-%s-%s-checkpoints.bin" % (fmt, typ))
                if gen(out, "--size", "200K", "-f", fmt, "-t", typ, "--checkpoints", "2"):
                    corpus.append(("gen-remus", out, True))
    for fmt in ("libxc", "xl"):
        for typ in ("hvm", "pv"):
            for tw in ("64", "32"):
                src = os.path.join(tmp, "legacy-%s-%s-%s.bin" % (fmt, typ, tw))
                out = src + ".v3"
                if (gen(src, "--legacy", "--size", "200K", "-f", fmt, "-t", typ, "--toolstack-width", tw)
                        and convert(src, out)):
                    corpus.append(("gen-legacy", out, False))
    for src in sorted(glob.glob(os.path.join(ROOT, "fixtures", "legacy", "*.bin"))):
        out = os.path.join(tmp, "fixture-legacy-" + os.path.basename(src) + ".v3")
        if convert(src, out):
            corpus.append(("legacy-fixtures", out, False))
    tsv = os.path.join(ROOT, "fixtures", "expected.tsv")
    with open(tsv) as f:
        next(f)
        for line in f:
            c = line.rstrip("\n").split("\t")
            if len(c) >= 4 and c[2] == "1":
                path = os.path.join(ROOT, "fixtures", c[0])
                corpus.append(("fixtures", path, "checkpoint" in c[0]))
    rng = random.Random(2026)
    for i in range(int(os.environ.get("MUTATIONS", "400"))):
        src = realistic[i % len(realistic)]
        with open(src, "rb") as f:
            data = f.read()
        path = os.path.join(tmp, "mut-%04d.bin" % i)
        with open(path, "wb") as f:
            f.write(mutate(data, rng))
        corpus.append(("mutations", path, False))
    for name, data, want in handmade_cases():
        path = os.path.join(tmp, "handmade-%s.bin" % name)
        with open(path, "wb") as f:
            f.write(data)
        corpus.append(("handmade", path, False))
    return corpus


def compare(exe, report_only):
    tmp = tempfile.mkdtemp(prefix="xsr-restore-")
    failures = self_test(exe, tmp)
    corpus = build_corpus(tmp)
    groups = {}
    disagreements = resource = 0
    for group, path, remus in corpus:
        verdict, _ = harness(exe, path, remus)
        src, msg = strict(path, remus)
        # --strict refuses when the plain verifier or Xen's restore does.
        plain_ok = strict(path, plain=True)[0] == 0
        xen_ok = verdict.startswith("ACCEPT")
        if verdict.startswith("REFUSE: out of memory"):
            # libxc's bookkeeping for the stream's pfns outgrew the harness's
            # address-space limit: Xen's verdict depends on dom0's memory.
            resource += 1
            print("RESOURCE %s: %s" % (os.path.basename(path), verdict))
            continue
        g = groups.setdefault(group, [0, 0, 0, 0, 0, 0])
        g[0] += 1
        g[1] += xen_ok
        g[5] += xen_ok and not plain_ok
        if (src == 0) == (xen_ok and plain_ok):
            g[2] += 1
            continue
        disagreements += 1
        if src == 0:
            g[3] += 1
        else:
            g[4] += 1
        print("DISAGREE %s%s: Xen %s; strict exit %s %s"
              % (os.path.relpath(path, ROOT) if path.startswith(ROOT) else os.path.basename(path),
                 " (--remus)" if remus else "", verdict, src, msg[0] if msg else ""))
    # agree: strict refuses exactly when Xen or the plain verifier does;
    # plain-ref: Xen accepts, the plain (spec) checks refuse, so does strict.
    print("restore-check: %-16s %8s %9s %9s %13s %13s %10s" % ("group", "streams", "Xen acc.", "agree",
                                                               "strict-acc/", "strict-ref/", "plain-ref/"))
    print("restore-check: %-16s %8s %9s %9s %13s %13s %10s" % ("", "", "", "", "Xen-refuses",
                                                               "both-accept", "Xen-acc."))
    for group in ("gen", "gen-remus", "gen-legacy", "legacy-fixtures", "fixtures", "mutations", "handmade"):
        if group in groups:
            g = groups[group]
            print("restore-check: %-16s %8d %9d %9d %13d %13d %10d" % (group, *g))
    for f in glob.glob(os.path.join(tmp, "*")):
        os.unlink(f)
    os.rmdir(tmp)
    print("restore-check: %d streams, %d disagreements, %d left out (out of memory), self-test %s"
          % (len(corpus), disagreements, resource, "failed (%d)" % failures if failures else "ok"))
    if failures:
        return 1
    return 1 if disagreements and not report_only else 0


def main():
    args = sys.argv[1:]
    report_only = "--report-only" in args
    remus = "--remus" in args
    files = [a for a in args if not a.startswith("--")]
    root = fetch_xen()
    if not root:
        print("restore-check: skipped: Debian's libxenmisc4.17 and friends could not be fetched")
        return 0
    exe = build_harness(root)
    if files:
        worst = 0
        for path in files:
            verdict, code = harness(exe, path, remus)
            print("%s: %s" % (path, verdict))
            worst = max(worst, code)
        return worst
    return compare(exe, report_only)


if __name__ == "__main__":
    sys.exit(main())
