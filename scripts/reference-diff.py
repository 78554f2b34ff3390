#!/usr/bin/env python3
"""Compares our verify-stream-v2 with Xen's own, stream by stream.

Xen's Python tools ship in Debian's xen-utils package; this script fetches
it with `apt-get download` (no install), unpacks it into a cache folder and
runs both verifiers with -v over: every fixture, streams from `xsr gen` of
every kind, and seeded mutations of them. It checks the exit codes and the
-v stdout byte for byte, except where REFERENCE.md lists a reference defect
we do not copy (those are counted apart). When the package cannot be had,
it says so and exits 0: the GoogleTest suite still runs.

Env: XSR_BUILD (default build), XSR_REF_DIR (default /var/tmp/xsr-xen-ref),
MUTATIONS (default 400).
"""
import glob
import os
import random
import re
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.environ.get("XSR_BUILD", os.path.join(ROOT, "build"))
REF_DIR = os.environ.get("XSR_REF_DIR", "/var/tmp/xsr-xen-ref")
OURS = os.path.join(BUILD, "cmd", "verify-stream-v2")
OURS_CONVERT = os.path.join(BUILD, "cmd", "convert-legacy-stream")
XSR = os.path.join(BUILD, "cmd", "xsr")


def fetch_reference():
    scripts = glob.glob(os.path.join(REF_DIR, "root/usr/lib/xen-*/bin/verify-stream-v2"))
    if scripts:
        return scripts[0]
    os.makedirs(REF_DIR, exist_ok=True)
    debs = []
    for attempt in range(2):
        # The newest xen-utils-4.N the archive has (bookworm: 4.17).
        names = subprocess.run("apt-cache pkgnames xen-utils-4. | grep -E '^xen-utils-4\\.[0-9]+$'"
                               " | sort -t. -k2 -n | tail -1", shell=True, capture_output=True,
                               text=True).stdout.split()
        for name in names or ["xen-utils-4.17"]:
            subprocess.run(["apt-get", "download", name], cwd=REF_DIR, capture_output=True)
        debs = sorted(f for f in glob.glob(os.path.join(REF_DIR, "xen-utils-4.*.deb"))
                      if re.match(r"xen-utils-4\.[0-9]+_", os.path.basename(f)))
        if debs:
            break
        if attempt == 0:
            subprocess.run(["apt-get", "update", "-qq"], capture_output=True)
    if not debs:
        return None
    subprocess.run(["dpkg-deb", "-x", debs[0], os.path.join(REF_DIR, "root")], check=True)
    scripts = glob.glob(os.path.join(REF_DIR, "root/usr/lib/xen-*/bin/verify-stream-v2"))
    return scripts[0] if scripts else None


def run(cmd, env=None):
    """Exit code, stdout, stderr; exit code None when it ran past a minute
    (the reference can spend minutes on a hostile count it allocates)."""
    try:
        p = subprocess.run(cmd, capture_output=True, env=env, timeout=60)
    except subprocess.TimeoutExpired as e:
        return None, e.stdout or b"", e.stderr or b""
    return p.returncode, p.stdout, p.stderr


def mutate(data, rng):
    b = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        if rng.random() < 0.7:
            at = rng.randrange(min(len(b), 4096))  # headers and the first records
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


def known_defect(ref_out, ref_err, ours_out, ours_rc, ref_rc):
    """Names the REFERENCE.md defect behind a difference, or None.

    Every defect makes the reference stop early or go astray at one record,
    so the -v lines before that record must agree: a difference before that
    point is a real one."""
    r_lines = ref_out.decode(errors="replace").splitlines()
    o_lines = ours_out.decode(errors="replace").splitlines()
    n = 0
    while n < len(r_lines) and n < len(o_lines) and r_lines[n] == o_lines[n]:
        n += 1
    # A checkpointed libxl stream: we hand libxc's CHECKPOINT back to libxl
    # (the spec's rule); the reference reads libxl records as libxc ones.
    if (n > 0 and r_lines[n - 1] == "Libxc Record: Checkpoint, length 0" and n < len(o_lines)
            and o_lines[n].startswith("Libxl Record:")):
        return "checkpoint-handback"
    if n != len(r_lines):
        return None
    last = "\n".join(ref_err.decode(errors="replace").strip().splitlines()[-3:])
    if ref_rc == 2 and "Found Toolstack record" in last and ours_rc == 1:
        return "toolstack"
    if "Data not NUL terminated" in last:
        return "xenstore-data"
    if re.search(r"Unrecognised record type (0x)?[89a-f][0-9a-f]{7}\b", last):
        return "optional-record"
    return None


def main():
    ref = fetch_reference()
    if not ref:
        print("reference-diff: skipped: Debian's xen-utils package could not be fetched")
        return 0
    env = dict(os.environ)
    env["PYTHONPATH"] = os.path.join(os.path.dirname(os.path.dirname(ref)), "lib", "python")
    tmp = tempfile.mkdtemp(prefix="xsr-refdiff-")
    corpus = []  # (path, format)
    # Fixtures, with the format the table gives them.
    tsv = os.path.join(ROOT, "fixtures", "expected.tsv")
    if os.path.exists(tsv):
        with open(tsv) as f:
            next(f)
            for line in f:
                c = line.rstrip("\n").split("\t")
                if len(c) >= 3 and c[2] == "0":
                    corpus.append((os.path.join(ROOT, "fixtures", c[0]), c[1]))
    # Generated streams of every kind (checkpointed libxl streams are left
    # out: the reference does not hand checkpoints back to libxl).
    gens = []
    for fmt in ("libxc", "libxl", "xl"):
        for typ in ("hvm", "pv"):
            for ver in ("2", "3"):
                out = os.path.join(tmp, "gen-%s-%s-v%s.bin" % (fmt, typ, ver))
                subprocess.run([XSR, "gen", "-o", out, "--size", "300K", "--format", fmt,
                                "--type", typ, "--stream-version", ver, "--batch", "32",
                                "--seed", ver], check=True, capture_output=True)
                corpus.append((out, fmt))
                gens.append((out, fmt))
    out = os.path.join(tmp, "gen-libxc-checkpoints.bin")
    subprocess.run([XSR, "gen", "-o", out, "--size", "200K", "--checkpoints", "2"],
                   check=True, capture_output=True)
    corpus.append((out, "libxc"))
    # Seeded mutations.
    rng = random.Random(2026)
    for i in range(int(os.environ.get("MUTATIONS", "400"))):
        src, fmt = gens[i % len(gens)]
        with open(src, "rb") as f:
            data = f.read()
        path = os.path.join(tmp, "mut-%04d.bin" % i)
        with open(path, "wb") as f:
            f.write(mutate(data, rng))
        corpus.append((path, fmt))

    passed = failed = defects = 0
    kinds = {}
    for path, fmt in corpus:
        rrc, rout, rerr = run([sys.executable, ref, "-v", "-f", fmt, "-i", path], env)
        orc, oout, oerr = run([OURS, "-v", "-f", fmt, "-i", path])
        if orc is None:
            failed += 1
            print("DIFF %s (-f %s): ours ran past a minute" % (path, fmt))
            continue
        if rrc == orc and rout == oout:
            passed += 1
            continue
        why = known_defect(rout, rerr, oout, orc, rrc)
        if why:
            defects += 1
            kinds[why] = kinds.get(why, 0) + 1
            continue
        failed += 1
        print("DIFF %s (-f %s): reference exit %s, ours %s" % (path, fmt, rrc, orc))
        if rout != oout:
            r_lines, o_lines = rout.decode().splitlines(), oout.decode().splitlines()
            for n, (a, b) in enumerate(zip(r_lines + [""] * 99, o_lines + [""] * 99)):
                if a != b:
                    print("  first differing -v line %d:\n    ref:  %r\n    ours: %r" % (n + 1, a, b))
                    break
        print("  ref:  %s" % rerr.decode(errors="replace").strip().splitlines()[-1:])
        print("  ours: %s" % oerr.decode(errors="replace").strip())
    print("reference-diff: verify: %d streams, %d differences that are reference defects (REFERENCE.md): %s"
          % (len(corpus), defects, ", ".join("%s %d" % kv for kv in sorted(kinds.items()))))
    cpassed, cfailed, cdefects, ckinds, ccount = convert_diff(ref, env, tmp, rng)
    print("reference-diff: convert: %d conversions, %d differences that are reference defects: %s"
          % (ccount, cdefects, ", ".join("%s %d" % kv for kv in sorted(ckinds.items()))))
    for f in glob.glob(os.path.join(tmp, "*")):
        os.unlink(f)
    os.rmdir(tmp)
    print("reference-diff: %d passed, %d failed" % (passed + defects + cpassed + cdefects, failed + cfailed))
    return 1 if failed + cfailed else 0


def convert_defect(ref_rc, rout, rerr, ref_bytes, ours_rc, oout, oerr, ours_bytes):
    """Names the REFERENCE.md converter defect behind a difference, or None."""
    r_lines = rout.decode(errors="replace").splitlines()
    o_lines = oout.decode(errors="replace").splitlines()
    n = 0
    while n < len(r_lines) and n < len(o_lines) and r_lines[n] == o_lines[n]:
        n += 1
    last = rerr.decode(errors="replace")
    oe = oerr.decode(errors="replace")
    if ref_rc is None and ours_rc == 1 and n == len(r_lines):
        return "reference-hang"  # a count it allocates for (REFERENCE.md)
    if ref_rc == 0 and ours_rc == 1 and "reserved page type" in oe:
        return "page-type-5-8"
    if ref_rc == 1 and ours_rc == 0 and "UnicodeDecodeError" in last:
        return "non-utf8-physmap-name"
    if ref_rc == 0 and ours_rc == 0 and rout == oout and ref_bytes != ours_bytes:
        # The reference writes a PAGE_DATA of count 0 for an all-dropped
        # batch; without those records the streams must agree.
        if strip_empty_page_data(ref_bytes) == ours_bytes:
            return "empty-batch"
    # Reference crashes (tracebacks outside its error handling) where we
    # report a stream error: no vcpu block, short xcnt, p2m size 0, xsave
    # size mismatch, p2m size over 2^32.
    if ref_rc == 1 and ours_rc == 1 and "Stream Error:" not in last and "Traceback" in last:
        if n == len(r_lines):
            return "reference-crash"
    return None


def strip_empty_page_data(data):
    """The reference's bytes without its count-0 PAGE_DATA records."""
    import struct
    out = bytearray()
    i = 0
    # Walk only the libxc records that follow the known headers; anything
    # unparseable is returned unchanged.
    try:
        start = data.index(b"\xff" * 8)
    except ValueError:
        return data
    out += data[:start + 24 + 16]
    i = start + 24 + 16
    while i + 8 <= len(data):
        rtype, length = struct.unpack_from("<II", data, i)
        total = 8 + ((length + 7) & ~7)
        if rtype == 1 and length == 8 and struct.unpack_from("<I", data, i + 8)[0] == 0:
            i += total
            continue
        out += data[i:i + total]
        i += total
        if rtype == 0:
            break
    out += data[i:]
    return bytes(out)


def convert_diff(ref_verify, env, tmp, rng):
    ref = os.path.join(os.path.dirname(ref_verify), "convert-legacy-stream")
    if not os.path.exists(ref) or not os.path.exists(OURS_CONVERT):
        print("reference-diff: convert: skipped (no converter)")
        return 0, 0, 0, {}, 0
    cases = []  # (input path, args)
    for typ in ("hvm", "pv"):
        for tw in ("32", "64"):
            path = os.path.join(tmp, "legacy-%s-%s.bin" % (typ, tw))
            subprocess.run([XSR, "gen", "--legacy", "--type", typ, "--toolstack-width", tw,
                            "--size", "200K", "--batch", "40", "--seed", tw, "-o", path],
                           check=True, capture_output=True)
            for fmt in ("libxc", "libxl"):
                args = ["-w", tw, "-g", typ, "-f", fmt]
                cases.append((path, args))
                if typ == "hvm" and fmt == "libxc":
                    cases.append((path, args + ["--skip-qemu"]))
    tsv = os.path.join(ROOT, "fixtures", "legacy", "expected.tsv")
    if os.path.exists(tsv):
        with open(tsv) as f:
            next(f)
            for line in f:
                c = line.rstrip("\n").split("\t")
                if len(c) < 9 or c[5] == "1":  # -x is broken in the Python 3 reference
                    continue
                args = ["-w", c[1], "-g", c[2], "-f", c[3]] + (["--skip-qemu"] if c[4] == "1" else [])
                cases.append((os.path.join(ROOT, "fixtures", c[0]), args))
    base = list(cases[:10])
    for i in range(int(os.environ.get("MUTATIONS", "400")) // 2):
        src, args = base[i % len(base)]
        with open(src, "rb") as f:
            data = f.read()
        path = os.path.join(tmp, "lmut-%04d.bin" % i)
        with open(path, "wb") as f:
            f.write(mutate(data, rng))
        cases.append((path, args))
    passed = failed = defects = 0
    kinds = {}
    ref_out, our_out = os.path.join(tmp, "ref.out"), os.path.join(tmp, "our.out")
    for path, args in cases:
        for f in (ref_out, our_out):
            if os.path.exists(f):
                os.unlink(f)
        rrc, rout, rerr = run([sys.executable, ref, "-v", "-i", path, "-o", ref_out] + args, env)
        orc, oout, oerr = run([OURS_CONVERT, "-v", "-i", path, "-o", our_out] + args)
        if orc is None:
            failed += 1
            print("DIFF convert %s %s: ours ran past a minute" % (path, " ".join(args)))
            continue
        rb = open(ref_out, "rb").read() if os.path.exists(ref_out) else b""
        ob = open(our_out, "rb").read() if os.path.exists(our_out) else b""
        if rrc != 0:
            rb = b""  # a failed run's output is not compared (ours removes it)
        if orc != 0 and ob:
            failed += 1
            print("DIFF convert %s %s: exit %d left an output file" % (path, " ".join(args), orc))
            continue
        if rrc == orc and rout == oout and rb == ob:
            passed += 1
            continue
        why = convert_defect(rrc, rout, rerr, rb, orc, oout, oerr, ob)
        if why:
            defects += 1
            kinds[why] = kinds.get(why, 0) + 1
            continue
        failed += 1
        print("DIFF convert %s %s: reference exit %s, ours %s, output %s" %
              (path, " ".join(args), rrc, orc, "same" if rb == ob else "differs"))
        r_lines, o_lines = rout.decode(errors="replace").splitlines(), oout.decode(errors="replace").splitlines()
        for n, (a, b) in enumerate(zip(r_lines + [""] * 99, o_lines + [""] * 99)):
            if a != b:
                print("  first differing -v line %d:\n    ref:  %r\n    ours: %r" % (n + 1, a, b))
                break
        print("  ref:  %s" % rerr.decode(errors="replace").strip().splitlines()[-1:])
        print("  ours: %s" % oerr.decode(errors="replace").strip())
    return passed, failed, defects, kinds, len(cases)


if __name__ == "__main__":
    sys.exit(main())
