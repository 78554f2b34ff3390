#!/usr/bin/env python3
"""Every option each program's --help prints (long and short forms) is in its
man page, every subcommand `xsr --help` lists has a page, and every page has
the sections a man page needs. Usage: man_options.py DOCS_MAN_DIR, with
XSR_BIN, VERIFY_BIN and CONVERT_BIN in the environment."""
import os
import re
import subprocess
import sys

SECTIONS = ["NAME", "SYNOPSIS", "DESCRIPTION", "OPTIONS", "EXIT STATUS", "EXAMPLES", "SEE ALSO"]
OPTION = re.compile(r"(?<![\w-])--?[A-Za-z][\w-]*")


def help_text(argv):
    r = subprocess.run(argv, capture_output=True, text=True, check=False)
    if r.returncode != 0:
        sys.exit(f"{' '.join(argv)} exited {r.returncode}: {r.stderr}")
    return r.stdout


def help_options(text):
    """The options of the help's option lines (the part before the description)."""
    opts = []
    for line in text.splitlines():
        spec = re.split(r"\s{2,}", line.strip())[0]
        if line.startswith(" ") and spec.startswith("-"):
            opts += [o for o in OPTION.findall(spec) if o not in opts]
    return opts


def subcommands(text):
    """The commands `xsr --help` lists, after its 'Commands:' line."""
    body = text.split("Commands:\n", 1)[1].split("\n\n", 1)[0]
    return [line.split()[0] for line in body.splitlines() if line.strip()]


def check(page_dir, page, argv, problems, extra=()):
    path = os.path.join(page_dir, page + ".scd")
    if not os.path.exists(path):
        problems.append(f"{page}: no page {path}")
        return
    with open(path, encoding="utf-8") as f:
        src = f.read()
    for section in SECTIONS:
        if not re.search(rf"^# {section}$", src, re.M):
            problems.append(f"{page}: no {section} section")
    opts = help_options(help_text(argv)) if argv else []
    if argv and not opts:
        problems.append(f"{page}: no option found in {' '.join(argv)}")
    for opt in [*opts, *extra]:
        if not re.search(rf"(?<![\w-]){re.escape(opt)}(?![\w-])", src):
            problems.append(f"{page}: '{opt}' (from {' '.join(argv or []) or 'the command list'}) is not in the page")


def main():
    page_dir = sys.argv[1]
    xsr, verify, convert = os.environ["XSR_BIN"], os.environ["VERIFY_BIN"], os.environ["CONVERT_BIN"]
    problems = []
    top = help_text([xsr, "--help"])
    cmds = subcommands(top)
    check(page_dir, "xsr.1", None, problems, extra=["-h", "--help", "--version", *cmds])
    for cmd in cmds:
        # `xsr version` takes no option: its page is checked for its sections.
        check(page_dir, f"xsr-{cmd}.1", None if cmd == "version" else [xsr, cmd, "--help"], problems)
    check(page_dir, "verify-stream-v2.1", [verify, "--help"], problems)
    check(page_dir, "convert-legacy-stream.1", [convert, "--help"], problems)
    for p in problems:
        print(p)
    print(f"man pages: {len(cmds) + 3} checked, {len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
