#!/usr/bin/env python3
"""ELF cores from `xsr extract --elf` open in gdb with one thread per vCPU
and the stream's registers, and readelf reads them without a warning.

Images come from `xsr gen` (HVM with a checkpoint, 64- and 32-bit PV); their
vCPU registers are first overwritten with distinct values, then read back
from the records here, with struct, independently of xsr's decoder, and
compared with what gdb prints. Skipped (exit 77) only when gdb is missing.
"""
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile

XSR = os.environ.get("XSR_BIN", "build/cmd/xsr")
GDB = shutil.which("gdb")
READELF = shutil.which("readelf")

# libxc record types and HVM save typecodes used here.
END, PV_INFO, PV_VCPU_BASIC, HVM_CONTEXT = 0x00, 0x02, 0x04, 0x09
HVM_END, HVM_CPU = 0, 2

GPRS = ["rax", "rbx", "rcx", "rdx", "rbp", "rsi", "rdi", "rsp",
        "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15"]
SEGS = ["cs", "ds", "es", "fs", "gs", "ss"]
# hvm_hw_cpu: fpu_regs[512], then rax rbx rcx rdx rbp rsi rdi rsp r8-r15 rip
# rflags; the selectors from 736 (u32 each, cs ds es fs gs ss); fs_base 832,
# gs_base 840.
HVM_GPR, HVM_RIP, HVM_SEL, HVM_FS_BASE, HVM_GS_BASE = 512, 640, 736, 832, 840
# vcpu_guest_context: user_regs at 520 (64-bit) / 516 (32-bit); cpu_user_regs
# offsets by register; flags at 512; 64-bit fs_base, gs_base_kernel, _user.
PV = {
    8: dict(user=520, fmt="<Q", regs=dict(r15=0, r14=8, r13=16, r12=24, rbp=32, rbx=40, r11=48, r10=56,
                                            r9=64, r8=72, rax=80, rcx=88, rdx=96, rsi=104, rdi=112, rip=128,
                                            rflags=144, rsp=152),
            segs=dict(cs=136, ss=160, es=168, ds=176, fs=184, gs=192)),
    4: dict(user=516, fmt="<I", regs=dict(rbx=0, rcx=4, rdx=8, rsi=12, rdi=16, rbp=20, rax=24, rip=32,
                                            rflags=40, rsp=44),
            segs=dict(cs=36, ss=48, es=52, ds=56, fs=60, gs=64)),
}
VGCF_IN_KERNEL = 1 << 2


def records(img):
    """(offset of body, type, length) of each libxc record after the headers."""
    off = 24 + 16  # image header, domain header
    while off + 8 <= len(img):
        rtype, length = struct.unpack_from("<II", img, off)
        yield off + 8, rtype, length
        if rtype == END:
            return
        off += 8 + (length + 7) // 8 * 8


def hvm_cpus(img, body, length):
    """(offset of data, vcpu id) of each CPU entry of a save blob."""
    off, end = body, body + length
    while off + 8 <= end:
        code, inst, n = struct.unpack_from("<HHI", img, off)
        if code == HVM_END:
            return
        if code == HVM_CPU:
            yield off + 8, inst
        off += 8 + n


def fill(img, seen):
    """Distinct general registers in every vCPU context, each copy its own."""
    width = 8
    for body, rtype, length in records(img):
        if rtype == PV_INFO:
            width = img[body]
        elif rtype == HVM_CONTEXT:
            for at, vcpu in hvm_cpus(img, body, length):
                seen[vcpu] = seen.get(vcpu, 0) + 1
                for i in range(16):
                    val = 0xa500000000000000 | seen[vcpu] << 24 | vcpu << 8 | i
                    struct.pack_into("<Q", img, at + HVM_GPR + 8 * i, val)
        elif rtype == PV_VCPU_BASIC:
            vcpu = struct.unpack_from("<I", img, body)[0]
            seen[vcpu] = seen.get(vcpu, 0) + 1
            lay = PV[width]
            for i, reg in enumerate(r for r in GPRS if r in lay["regs"]):
                val = (0xa5000000 if width == 4 else 0xa500000000000000) | seen[vcpu] << 20 | vcpu << 8 | i
                struct.pack_into(lay["fmt"], img, body + 8 + lay["user"] + lay["regs"][reg], val)
    return width


def expected(img):
    """vCPU id -> {register: value} as the stream says, last copy winning."""
    out, width = {}, 8
    for body, rtype, length in records(img):
        if rtype == PV_INFO:
            width = img[body]
        elif rtype == HVM_CONTEXT:
            for at, vcpu in hvm_cpus(img, body, length):
                r = dict(zip(GPRS, struct.unpack_from("<16Q", img, at + HVM_GPR)))
                r["rip"], r["eflags"] = struct.unpack_from("<QQ", img, at + HVM_RIP)
                r.update(zip(SEGS, struct.unpack_from("<6I", img, at + HVM_SEL)))
                r["fs_base"], r["gs_base"] = struct.unpack_from("<QQ", img, at + HVM_FS_BASE)
                r["fctrl"], r["mxcsr"] = struct.unpack_from("<H", img, at)[0], struct.unpack_from("<I", img, at + 24)[0]
                out[vcpu] = r
        elif rtype == PV_VCPU_BASIC:
            vcpu = struct.unpack_from("<I", img, body)[0]
            ctx, lay = body + 8, PV[width]
            r = {k: 0 for k in GPRS}
            for reg, o in lay["regs"].items():
                r["eflags" if reg == "rflags" else reg] = struct.unpack_from(lay["fmt"], img, ctx + lay["user"] + o)[0]
            for seg, o in lay["segs"].items():
                r[seg] = struct.unpack_from("<H", img, ctx + lay["user"] + o)[0]
            r["fs_base"] = r["gs_base"] = 0
            if width == 8:
                flags = struct.unpack_from("<Q", img, ctx + 512)[0]
                fs, gk, gu = struct.unpack_from("<QQQ", img, ctx + 5144)
                r["fs_base"], r["gs_base"] = fs, gk if flags & VGCF_IN_KERNEL else gu
            r["fctrl"], r["mxcsr"] = struct.unpack_from("<H", img, ctx)[0], struct.unpack_from("<I", img, ctx + 24)[0]
            out[vcpu] = r
    return out


def gdb_threads(core):
    """LWP -> {register: value} from gdb's output, and the 'info threads' rows."""
    cmd = [GDB, "-batch", "-nx", "-ex", "info threads", "-ex", "thread apply all info registers",
           "-ex", "thread apply all info registers fs_base gs_base",
           "-ex", "thread apply all p/x $fctrl", "-ex", "thread apply all p/x $mxcsr", "-c", core]
    p = subprocess.run(cmd, capture_output=True, text=True, check=False)
    text = p.stdout + p.stderr
    assert p.returncode == 0, text
    assert "warning" not in text.lower() and "Couldn't" not in text, text
    rows = re.findall(r"^\*?\s+\d+\s+LWP (\d+)\s", text, re.M)
    regs, lwp, prints = {}, None, []
    for line in text.splitlines():
        m = re.match(r"Thread \d+ \(LWP (\d+)\):", line)
        if m:
            lwp = int(m.group(1))
            regs.setdefault(lwp, {})
            continue
        m = re.match(r"(\w+)\s+(0x[0-9a-f]+)\s", line + " ")
        if m and lwp is not None:
            regs[lwp][m.group(1)] = int(m.group(2), 16)
        m = re.match(r"\$\d+ = (0x[0-9a-f]+)$", line)
        if m and lwp is not None:
            prints.append((lwp, int(m.group(1), 16)))
    # The p/x lines: first all threads' $fctrl, then all threads' $mxcsr.
    half = len(prints) // 2
    for (lwp, v) in prints[:half]:
        regs[lwp]["fctrl"] = v
    for (lwp, v) in prints[half:]:
        regs[lwp]["mxcsr"] = v
    return sorted(int(r) for r in rows), regs, text


def check_readelf(core):
    p = subprocess.run([READELF, "-a", "-W", core], capture_output=True, text=True, check=False)
    assert p.returncode == 0 and p.stderr == "", p.stderr
    assert "warning" not in p.stdout.lower(), [l for l in p.stdout.splitlines() if "arning" in l]
    assert p.stdout.count("NT_PRSTATUS") > 0, p.stdout


def run_case(tmp, name, gen_args):
    img_path, core = os.path.join(tmp, name + ".bin"), os.path.join(tmp, name + ".core")
    subprocess.run([XSR, "gen", "-o", img_path, "--format", "libxc", "--size", "2M"] + gen_args,
                   check=True, capture_output=True)
    img = bytearray(open(img_path, "rb").read())
    seen = {}
    fill(img, seen)
    open(img_path, "wb").write(img)
    want = expected(img)
    subprocess.run([XSR, "extract", "-q", "--elf", img_path, "-o", core], check=True)
    check_readelf(core)
    rows, got, text = gdb_threads(core)
    assert rows == [v + 1 for v in sorted(want)], (rows, text)
    for vcpu, regs in want.items():
        for reg, val in regs.items():
            assert got[vcpu + 1].get(reg) == val, (name, vcpu, reg, hex(val), got[vcpu + 1].get(reg), text)
    print(f"{name}: {len(want)} vCPUs, {len(want[0])} registers each match gdb "
          f"(each context sent {max(seen.values())} time(s), the last compared)")


def main():
    if not GDB:
        print("SKIP: gdb is not installed (scripts/setup.sh installs it)")
        return 77
    assert READELF, "readelf (binutils) is missing"
    with tempfile.TemporaryDirectory() as tmp:
        run_case(tmp, "hvm", ["--type", "hvm", "--vcpus", "3", "--checkpoints", "2"])
        run_case(tmp, "pv64", ["--type", "pv", "--vcpus", "2"])
        run_case(tmp, "pv32", ["--type", "pv", "--width", "32", "--vcpus", "2"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
