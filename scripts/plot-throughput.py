#!/usr/bin/env python3
"""Draws throughput over time of one or more runs as an SVG line chart.

    plot-throughput.py -o out.svg [--title T] LABEL=FILE [LABEL=FILE ...]
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
seconds, y in MiB/s (2^20 bytes). Python 3 standard library only; the same
input gives the same bytes out (no dates, fixed number formats).
"""
import argparse
import json
import math
import os
import sys
import tempfile
import xml.etree.ElementTree as ET
from xml.sax.saxutils import escape

MIB = 1 << 20

# Okabe-Ito: told apart by colour-blind readers too, and on paper.
COLOURS = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9",
           "#000000", "#F0E442"]

WIDTH, HEIGHT = 880, 480
LEFT, RIGHT, TOP, BOTTOM = 80, 24, 56, 60  # margins around the plot area
FONT = "DejaVu Sans, Helvetica, Arial, sans-serif"


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


def nice_step(span, ticks=6):
    """A 1, 2 or 5 times a power of ten step giving about `ticks` ticks."""
    if span <= 0:
        return 1.0
    raw = span / ticks
    mag = 10 ** math.floor(math.log10(raw))
    for m in (1, 2, 5, 10):
        if raw <= m * mag:
            return m * mag
    return 10 * mag


def tick_label(v, step):
    decimals = max(0, -math.floor(math.log10(step))) if step < 1 else 0
    return f"{v:.{decimals}f}"


def num(v):
    """A coordinate: two decimals, no '-0.00'."""
    s = f"{v:.2f}"
    return "0.00" if s == "-0.00" else s


def render(series, title):
    """The SVG text of series: [(label, [(t, MiB/s)], average MiB/s)]."""
    pw, ph = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    tmax = max(t for _, r, _ in series for t, _ in r)
    ymax = max(y for _, r, _ in series for _, y in r)
    entries = [f"{label} (avg {avg:.0f} MiB/s)" for label, _, avg in series]
    box_w = 44 + 7.2 * max(len(e) for e in entries)  # ~7.2 px a character at 13 px
    box_h = 10 + 20 * len(entries)
    xstep = nice_step(tmax)
    xmax = math.ceil(tmax / xstep - 1e-9) * xstep or xstep
    # Headroom: the highest point stays below the legend in the top right.
    ymax = (ymax or 1.0) / max(0.5, 1 - (box_h + 20) / ph)
    ystep = nice_step(ymax)
    ymax = math.ceil(ymax / ystep - 1e-9) * ystep

    def sx(t):
        return LEFT + t / xmax * pw

    def sy(y):
        return TOP + ph - y / ymax * ph

    o = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
         f'viewBox="0 0 {WIDTH} {HEIGHT}" font-family="{FONT}" font-size="13">',
         f'<rect width="{WIDTH}" height="{HEIGHT}" fill="#ffffff"/>',
         f'<text x="{WIDTH / 2:.0f}" y="30" text-anchor="middle" font-size="17" '
         f'font-weight="bold" fill="#222222">{escape(title)}</text>']

    # Grid and ticks: light lines across the plot, labels outside it.
    o.append('<g stroke="#e4e4e4" stroke-width="1">')
    nx, ny = round(xmax / xstep), round(ymax / ystep)
    for i in range(nx + 1):
        x = num(sx(i * xstep))
        o.append(f'<line x1="{x}" y1="{TOP}" x2="{x}" y2="{TOP + ph}"/>')
    for i in range(ny + 1):
        y = num(sy(i * ystep))
        o.append(f'<line x1="{LEFT}" y1="{y}" x2="{LEFT + pw}" y2="{y}"/>')
    o.append('</g>')
    o.append('<g fill="#444444">')
    for i in range(nx + 1):
        o.append(f'<text x="{num(sx(i * xstep))}" y="{TOP + ph + 20}" text-anchor="middle">'
                 f'{tick_label(i * xstep, xstep)}</text>')
    for i in range(ny + 1):
        o.append(f'<text x="{LEFT - 8}" y="{num(sy(i * ystep) + 4.5)}" text-anchor="end">'
                 f'{tick_label(i * ystep, ystep)}</text>')
    o.append('</g>')
    o.append(f'<rect x="{LEFT}" y="{TOP}" width="{pw}" height="{ph}" fill="none" '
             f'stroke="#888888" stroke-width="1"/>')
    o.append(f'<text x="{LEFT + pw / 2:.0f}" y="{HEIGHT - 16}" text-anchor="middle" '
             f'fill="#222222">time (s)</text>')
    o.append(f'<text transform="translate(20 {TOP + ph / 2:.0f}) rotate(-90)" '
             f'text-anchor="middle" fill="#222222">throughput (MiB/s)</text>')

    # The lines, then the legend over them (top right, on a white box).
    for i, (label, r, _) in enumerate(series):
        pts = " ".join(f"{num(sx(t))},{num(sy(y))}" for t, y in r)
        o.append(f'<polyline fill="none" stroke="{COLOURS[i % len(COLOURS)]}" '
                 f'stroke-width="2" stroke-linejoin="round" points="{pts}">'
                 f'<title>{escape(label)}</title></polyline>')
    bx, by = LEFT + pw - box_w - 10, TOP + 10
    o.append(f'<rect x="{num(bx)}" y="{by}" width="{num(box_w)}" height="{box_h}" '
             f'fill="#ffffff" fill-opacity="0.9" stroke="#cccccc"/>')
    for i, e in enumerate(entries):
        y = by + 15 + 20 * i
        colour = COLOURS[i % len(COLOURS)]
        o.append(f'<line x1="{num(bx + 10)}" y1="{y}" x2="{num(bx + 32)}" y2="{y}" '
                 f'stroke="{colour}" stroke-width="3"/>')
        o.append(f'<text x="{num(bx + 38)}" y="{y + 4.5}" fill="#222222">{escape(e)}</text>')
    o.append('</svg>')
    return "\n".join(o) + "\n"


def build(specs, title):
    series = []
    for spec in specs:
        label, sep, path = spec.partition("=")
        if not sep or not label or not path:
            raise InputError(f"'{spec}': expected LABEL=FILE")
        pts, (total, secs) = read_samples(path)
        avg = total / secs / MIB if secs > 0 else 0.0
        series.append((label, rates(pts, path), avg))
    return render(series, title)


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
        svg = build(specs, "self-test & check")
        assert svg == build(specs, "self-test & check"), "output is not deterministic"
        root = ET.fromstring(svg)
        ns = "{http://www.w3.org/2000/svg}"
        lines = root.findall(f".//{ns}polyline")
        assert len(lines) == len(specs), f"{len(lines)} polylines for {len(specs)} series"
        for p in lines:
            assert len(p.get("points").split()) >= 2, "a polyline of fewer than 2 points"
        texts = [t.text for t in root.iter(f"{ns}text")]
        assert "self-test & check" in texts, "no title"
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
    ap = argparse.ArgumentParser(description="Throughput over time as an SVG line chart.")
    ap.add_argument("-o", "--output", help="the SVG file to write")
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
        svg = build(a.series, a.title)
    except InputError as e:
        print(f"plot-throughput: {e}", file=sys.stderr)
        return 1
    with open(a.output, "w", encoding="utf-8") as f:
        f.write(svg)
    return 0


if __name__ == "__main__":
    sys.exit(main())
