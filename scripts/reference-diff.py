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
    p = subprocess.run(cmd, capture_output=True, env=env, timeout=120)
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
        if rrc == orc and rout == oout:
            passed += 1
            continue
        why = known_defect(rout, rerr, oout, orc, rrc)
        if why:
            defects += 1
            kinds[why] = kinds.get(why, 0) + 1
            continue
        failed += 1
        print("DIFF %s (-f %s): reference exit %d, ours %d" % (path, fmt, rrc, orc))
        if rout != oout:
            r_lines, o_lines = rout.decode().splitlines(), oout.decode().splitlines()
            for n, (a, b) in enumerate(zip(r_lines + [""] * 99, o_lines + [""] * 99)):
                if a != b:
                    print("  first differing -v line %d:\n    ref:  %r\n    ours: %r" % (n + 1, a, b))
                    break
        print("  ref:  %s" % rerr.decode(errors="replace").strip().splitlines()[-1:])
        print("  ours: %s" % oerr.decode(errors="replace").strip())
    for f in glob.glob(os.path.join(tmp, "*")):
        os.unlink(f)
    os.rmdir(tmp)
    print("reference-diff: %d streams, %d differences that are reference defects (REFERENCE.md): %s"
          % (len(corpus), defects, ", ".join("%s %d" % kv for kv in sorted(kinds.items()))))
    print("reference-diff: %d passed, %d failed" % (passed + defects, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
