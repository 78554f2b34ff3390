#!/usr/bin/env python3
"""Checks the house rules the compiler cannot (HACKING.md):

  layout    every source file of lib/ is in a layer folder
  length    no function in lib/ or cmd/ is longer than 100 lines
  format    every C++ file is formatted as .clang-format says

The layering itself (which layer may include which) is enforced by the
build: each layer's library sees only the headers of the layers below it.
Prints one line per violation and exits 1 if there was any.

  scripts/check-tree.py [--no-format] [--max-lines N]
"""
import argparse
import os
import re
import shutil
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LAYERS = ["base", "format", "io", "parse", "verify", "convert", "gen", "inspect", "extract", "relay"]
CXX = (".cc", ".h")
KEYWORDS = {"if", "for", "while", "switch", "catch", "return", "sizeof", "decltype", "alignof",
            "static_assert", "noexcept", "requires"}


def cxx_files(*dirs):
    for d in dirs:
        for base, _, names in os.walk(os.path.join(ROOT, d)):
            for n in sorted(names):
                if n.endswith(CXX):
                    yield os.path.join(base, n)


def rel(p):
    return os.path.relpath(p, ROOT)


def check_layout():
    bad = []
    for p in cxx_files("lib"):
        parts = rel(p).split(os.sep)  # lib/<layer>/... or lib/<layer>/include/xsr/x.h
        ok = len(parts) >= 3 and parts[1] in LAYERS and (
            len(parts) == 3 or parts[2:4] == ["include", "xsr"] and len(parts) == 5)
        if not ok:
            bad.append(f"{rel(p)}: not in a layer folder (lib/<layer>/ or lib/<layer>/include/xsr/)")
    for d in os.listdir(os.path.join(ROOT, "lib")):
        if os.path.isdir(os.path.join(ROOT, "lib", d)) and d not in LAYERS:
            bad.append(f"lib/{d}: not a layer (HACKING.md lists them)")
    return bad


def strip(text):
    """Blanks comments, string and char literals, keeping line breaks."""
    out = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i))
            i = j
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        elif c == 'R' and text.startswith('R"', i):
            m = re.match(r'R"([^(]*)\(', text[i:])
            end = text.find(")" + m.group(1) + '"', i) if m else -1
            j = n if end < 0 else end + len(m.group(1)) + 2
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        elif c in "\"'":
            j = i + 1
            while j < n and text[j] != c:
                j += 2 if text[j] == "\\" else 1
            j += 1
            out.append(c + re.sub(r"[^\n]", " ", text[i + 1:j - 1]) + c)
            i = j
        elif c == "#" and (i == 0 or text[i - 1] == "\n"):
            j = i
            while True:  # preprocessor lines, with continuations
                k = text.find("\n", j)
                k = n if k < 0 else k
                if k > 0 and text[k - 1] == "\\":
                    j = k + 1
                    continue
                break
            out.append(re.sub(r"[^\n]", " ", text[i:k]))
            i = k
        else:
            out.append(c)
            i += 1
    return "".join(out)


def functions(text):
    """Yields (name, first line, line count) of every function body."""
    s = strip(text)
    stack = []  # (is_function, name, line) per open brace
    head_start = 0  # where the text before the next brace starts
    line = 1
    for i, c in enumerate(s):
        if c == "\n":
            line += 1
        elif c in ";":
            head_start = i + 1
        elif c == "{":
            head = s[head_start:i]
            inside = any(f for f, _, _ in stack)
            fn = None
            if not inside:
                h = re.sub(r"\s+", " ", head).strip()
                m = re.search(r"([A-Za-z_~][\w:~<>]*(?:operator\S*)?)\s*\([^{}]*\)[^(){}]*$", h)
                if m and not re.search(r"\b(class|struct|union|enum|namespace)\b[^()]*$", h.split("(")[0] + " "):
                    name = m.group(1).split("::")[-1]
                    if name not in KEYWORDS and "=" not in h.split("(")[0]:
                        fn = m.group(1)
            stack.append((fn is not None, fn, line))
            head_start = i + 1
        elif c == "}":
            if stack:
                is_fn, name, start = stack.pop()
                if is_fn:
                    yield name, start, line - start + 1
            head_start = i + 1
    return


def check_length(limit):
    bad = []
    for p in cxx_files("lib", "cmd"):
        with open(p, encoding="utf-8") as f:
            text = f.read()
        for name, start, n in functions(text):
            if n > limit:
                bad.append(f"{rel(p)}:{start}: {name} is {n} lines (at most {limit})")
    return bad


def check_format():
    tool = shutil.which("clang-format") or shutil.which("clang-format-14")
    if not tool:
        return ["clang-format: not installed (apt-get install clang-format)"]
    files = [p for p in cxx_files("lib", "cmd", "tests", "bench")]
    r = subprocess.run([tool, "--dry-run", "-Werror", "--style=file"] + files,
                       cwd=ROOT, capture_output=True, text=True)
    bad = sorted({rel(os.path.join(ROOT, l.split(":")[0])) for l in r.stderr.splitlines()
                  if ": error:" in l})
    return [f"{b}: not formatted (clang-format -i {b})" for b in bad]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--no-format", action="store_true", help="skip the clang-format check")
    ap.add_argument("--max-lines", type=int, default=100)
    a = ap.parse_args()
    bad = check_layout() + check_length(a.max_lines)
    if not a.no_format:
        bad += check_format()
    for b in bad:
        print(b)
    print(f"check-tree: {len(bad)} problem(s)" if bad else "check-tree: layout, function length, format: ok")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
