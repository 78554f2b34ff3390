#!/usr/bin/python3
"""Draws throughput over time of one or more runs as a line chart (SVG, PNG).

    plot-throughput.py -o out.svg [-o out.png] [--title T] LABEL=FILE [LABEL=FILE ...]
    plot-throughput.py --self-test

Each FILE is either the stats document an xsr command writes with
--stats-json FILE:

    {"tool": "verify", "bytes": 123, "seconds": 1.5,
     "samples": [{"t": 0.25, "bytes": 1000}, {"t": 0.5, "bytes": 5000}, ...]}

or a plain text file of "T BYTES" lines (a baseline's samples; blank lines
and '#' comments are skipped). T is seconds since the start, BYTES the
cumulative count at T. A sample's throughput is the bytes since the sample
before (the first: since t=0, when nothing had moved) over the time since
it, drawn at the sample's T. A JSON document without samples is drawn as
its average, bytes / seconds, flat from 0 to `seconds`.

One line per series, coloured, with its average in the legend; x in
seconds, y in MiB/s (2^20 bytes). Drawn with matplotlib: Debian's
python3-matplotlib, hence /usr/bin/python3. Each -o is written in the format
its name ends with (.svg, .png, .pdf). The same input gives the same bytes
(no dates or versions in the files, a fixed SVG hash salt).
"""
import argparse
import json
import math
import os
import sys
import tempfile
import xml.etree.ElementTree as ET

MIB = 1 << 20

# Okabe-Ito: told apart by colour-blind readers too, and on paper.
COLOURS = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9",
           "#000000", "#F0E442"]

WIDTH, HEIGHT, DPI = 880, 480, 100  # pixels of the PNG; the SVG's size


class InputError(Exception):
    pass


def read_samples(path):
    """[(t, cumulative bytes)] of FILE, and its (bytes, seconds) total: the
    document's own, else its last sample's."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as e:
        raise InputError(f"{path}: {e.strerror}") from None
    if text.lstrip().startswith("{"):
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as e:
            raise InputError(f"{path}: bad JSON: {e}") from None
        if not isinstance(doc, dict):
            raise InputError(f"{path}: not a stats document (a JSON object)")
        try:
            totals = (float(doc["bytes"]), float(doc["seconds"]))
        except (KeyError, TypeError, ValueError):
            totals = None
        samples = doc.get("samples")
        if not samples:
            # A summary without samples: its average over the whole run.
            if totals is None:
                raise InputError(f"{path}: neither samples nor bytes and seconds")
            samples = [{"t": totals[1], "bytes": totals[0]}]
        try:
            pts = [(float(s["t"]), float(s["bytes"])) for s in samples]
        except (KeyError, TypeError, ValueError):
            raise InputError(f"{path}: a sample without a numeric t and bytes") from None
    else:
        totals = None
        pts = []
        for n, line in enumerate(text.splitlines(), 1):
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            fields = line.split()
            try:
                if len(fields) != 2:
                    raise ValueError
                pts.append((float(fields[0]), float(fields[1])))
            except ValueError:
                raise InputError(f"{path}:{n}: expected 'T BYTES', got '{line}'") from None
    if not pts:
        raise InputError(f"{path}: no samples")
    if any(not (math.isfinite(t) and math.isfinite(b)) for t, b in pts):
        raise InputError(f"{path}: a sample that is not a finite number")
    if totals is None or not all(map(math.isfinite, totals)):
        totals = (pts[-1][1], pts[-1][0])
    return pts, totals


def rates(pts, path):
    """[(t, MiB/s)]: each sample's throughput since the one before."""
    spans = []  # (start, end, bytes) of each interval
    pt, pb = 0.0, 0.0
    for t, b in pts:
        if t < pt:
            raise InputError(f"{path}: time goes back at t={t:g}")
        if b < pb:
            raise InputError(f"{path}: bytes go down at t={t:g} (they are cumulative)")
        if t == pt:
            continue  # no time, no rate: the next sample takes these bytes
        spans.append((pt, t, b - pb))
        pt, pb = t, b
    if not spans:
        raise InputError(f"{path}: no sample after t=0")
    # A run's last sample is taken when it ends, often just after the last
    # periodic one: a sliver of time whose rate is mostly noise. Fold it
    # into the interval before.
    if len(spans) >= 3 and spans[-1][1] - spans[-1][0] < 0.5 * (spans[-2][1] - spans[-2][0]):
        (s0, _, b0), (_, e1, b1) = spans[-2], spans[-1]
        spans[-2:] = [(s0, e1, b0 + b1)]
    out = [(e, n / (e - s) / MIB) for s, e, n in spans]
    if len(out) == 1:
        # One interval: a flat segment over it rather than a lone point.
        out.insert(0, (spans[0][0], out[0][1]))
    return out


def figure(series, title):
    """A matplotlib figure of series: [(label, [(t, MiB/s)], average MiB/s)]."""
    import matplotlib

    matplotlib.use("Agg")  # no display: files only
    from matplotlib import pyplot as plt

    # Text stays text in the SVG (searchable, small); a fixed salt keeps its
    # element ids the same from run to run.
    plt.rcParams.update({"svg.fonttype": "none", "svg.hashsalt": "xsr-plot-throughput",
                         "font.family": "DejaVu Sans", "font.size": 10})
    fig, ax = plt.subplots(figsize=(WIDTH / DPI, HEIGHT / DPI), dpi=DPI)
    for i, (label, r, avg) in enumerate(series):
        ax.plot([t for t, _ in r], [y for _, y in r], color=COLOURS[i % len(COLOURS)], linewidth=1.8,
                solid_joinstyle="round", label=f"{label} (avg {avg:.0f} MiB/s)")
    ax.set_title(title, fontsize=12, fontweight="bold")
    ax.set_xlabel("time (s)")
    ax.set_ylabel("throughput (MiB/s)")
    ax.set_xlim(left=0)
    # Headroom above the highest point for the legend in the top right.
    ymax = max(y for _, r, _ in series for _, y in r) or 1.0
    ax.set_ylim(0, ymax * (1.1 + 0.08 * len(series)))
    ax.grid(True, color="#e4e4e4", linewidth=0.8)
    ax.set_axisbelow(True)
    ax.legend(loc="upper right", framealpha=0.9)
    fig.tight_layout()
    return fig


def save(fig, path):
    """Writes fig to path in the format its name ends with."""
    fmt = os.path.splitext(path)[1].lstrip(".").lower()
    if fmt not in ("svg", "png", "pdf"):
        raise InputError(f"{path}: the name must end with .svg, .png or .pdf")
    meta = {"svg": {"Date": None, "Creator": None}, "png": {"Software": None},
            "pdf": {"CreationDate": None, "Creator": None, "Producer": None}}[fmt]
    fig.savefig(path, format=fmt, metadata=meta)


def build(specs, title):
    """The figure of LABEL=FILE specs."""
    series = []
    for spec in specs:
        label, sep, path = spec.partition("=")
        if not sep or not label or not path:
            raise InputError(f"'{spec}': expected LABEL=FILE")
        pts, (total, secs) = read_samples(path)
        avg = total / secs / MIB if secs > 0 else 0.0
        series.append((label, rates(pts, path), avg))
    return figure(series, title)


def self_test():
    with tempfile.TemporaryDirectory() as d:
        js = os.path.join(d, "relay.json")
        with open(js, "w") as f:
            samples, total = [], 0
            for i in range(1, 21):  # 300 MB/s, give or take 20 %
                total += int(300e6 * 0.25 * (0.8 + 0.2 * (i % 3)))
                samples.append({"t": 0.25 * i, "bytes": total})
            json.dump({"tool": "relay", "bytes": samples[-1]["bytes"], "seconds": 5.0,
                       "samples": samples}, f)
        txt = os.path.join(d, "base.txt")
        with open(txt, "w") as f:
            f.write("# t bytes\n" + "".join(f"{0.5 * i} {i * 200_000_000}\n" for i in range(1, 11)))
        flat = os.path.join(d, "flat.json")
        with open(flat, "w") as f:
            json.dump({"tool": "verify", "bytes": 1 << 30, "seconds": 2.0}, f)
        specs = [f"relay <&>={js}", f"splice={txt}", f"verify={flat}"]
        outs = {}
        for n in (1, 2):
            for ext in ("svg", "png"):
                path = os.path.join(d, f"chart{n}.{ext}")
                save(build(specs, "self-test & check"), path)
                with open(path, "rb") as f:
                    outs[n, ext] = f.read()
        assert outs[1, "svg"] == outs[2, "svg"], "the SVG is not deterministic"
        assert outs[1, "png"] == outs[2, "png"], "the PNG is not deterministic"
        assert outs[1, "png"].startswith(b"\x89PNG\r\n"), "not a PNG"
        root = ET.fromstring(outs[1, "svg"])
        ns = "{http://www.w3.org/2000/svg}"
        # Each series is a path in its colour, and again in the legend.
        for i in range(len(specs)):
            stroke = f"stroke: {COLOURS[i].lower()};"
            n = sum(stroke in p.get("style", "") for p in root.iter(f"{ns}path"))
            assert n == 2, f"series {i}: {n} paths in {COLOURS[i]}, not 2 (the line and its legend)"
        texts = [t.text for t in root.iter(f"{ns}text")]
        assert "self-test & check" in texts, f"no title in {texts}"
        assert any(t and t.startswith("relay <&>") for t in texts), "no legend entry"
        # Bad input is an error, not a chart.
        bad = os.path.join(d, "bad.txt")
        with open(bad, "w") as f:
            f.write("1 100\n2 50\n")
        try:
            build([f"bad={bad}"], "x")
            raise AssertionError("decreasing bytes accepted")
        except InputError:
            pass
    print("plot-throughput: self-test ok")


def main():
    ap = argparse.ArgumentParser(description="Throughput over time as a line chart (SVG, PNG).")
    ap.add_argument("-o", "--output", action="append", default=[],
                    help="a file to write, .svg, .png or .pdf (repeat for several)")
    ap.add_argument("--title", default="Throughput", help="the chart's title")
    ap.add_argument("--self-test", action="store_true", help="check the script on synthetic data")
    ap.add_argument("series", nargs="*", metavar="LABEL=FILE")
    a = ap.parse_args()
    if a.self_test:
        self_test()
        return 0
    if not a.output or not a.series:
        ap.error("need -o FILE and at least one LABEL=FILE")
    try:
        fig = build(a.series, a.title)
        for path in a.output:
            save(fig, path)
    except InputError as e:
        print(f"plot-throughput: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
