#!/usr/bin/env python3
"""Cost curves from fwdbench JSON: out pps per core and memory per participant
against room size and against room count, as SVG line charts and Markdown
tables.

    scripts/fwdbench-curves.py OUT_DIR RUN.json [RUN.json ...]

Each JSON file is an array of fwdbench scenario reports; a scenario found in
several files is averaged (and its spread shown as min-max whiskers).
Room size: fanout-N (one publisher, N subscribers). Room count: rooms-Rx2
(R one-to-one calls). Writes OUT_DIR/curves-room-size.svg,
OUT_DIR/curves-room-count.svg and prints the tables on stdout.

Standard library only, so it runs wherever the benchmark does.
"""

import json
import re
import sys
from pathlib import Path

SIZE = re.compile(r"^fanout-(\d+)$")
COUNT = re.compile(r"^rooms-(\d+)x2$")


def load(paths):
    runs = {}
    for p in paths:
        for r in json.loads(Path(p).read_text()):
            runs.setdefault(r["scenario"], []).append(r)
    return runs


def series(runs, pattern):
    """[(x, [reports])] for scenarios matching pattern, by x."""
    out = []
    for name, reports in runs.items():
        m = pattern.match(name)
        if m:
            out.append((int(m.group(1)), reports))
    return sorted(out)


def stats(values):
    values = [v for v in values if v is not None]
    if not values:
        return None
    return (sum(values) / len(values), min(values), max(values))


def mib(b):
    return None if b is None else b / (1024 * 1024)


PANELS = [
    # (title, y label, [(legend, colour, value of a report)])
    (
        "SRTP packets out per core",
        "k packets/s per core",
        [
            ("SFU", "#1f77b4", lambda r: r["out_pps_per_core"] / 1e3),
            (
                "baseline forwarder",
                "#aaaaaa",
                lambda r: r["baseline_out_pps_per_core"] / 1e3
                if r["baseline_out_pps_per_core"] > 0
                else None,
            ),
        ],
    ),
    (
        "memory per participant (anonymous RSS)",
        "MiB per participant",
        [
            ("at full load", "#d62728", lambda r: mib(r.get("anon_bytes_per_participant"))),
            (
                "connected, silent",
                "#2ca02c",
                lambda r: mib(r.get("idle_anon_bytes_per_participant")),
            ),
        ],
    ),
]


def esc(s):
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def panel_svg(x0, y0, w, h, title, ylabel, xs, xlabel, lines):
    """One chart: xs equally spaced (they grow geometrically), y from 0."""
    top = max((s[2] for _, _, pts in lines for s in pts if s), default=1.0) * 1.1 or 1.0
    parts = []
    px = lambda i: x0 + 60 + (w - 90) * (i / max(1, len(xs) - 1))
    py = lambda v: y0 + h - 40 - (h - 70) * (v / top)
    parts.append(
        f'<text x="{x0 + w / 2}" y="{y0 + 16}" text-anchor="middle" '
        f'font-weight="bold">{esc(title)}</text>'
    )
    # axes and grid
    for k in range(5):
        v = top * k / 4
        y = py(v)
        parts.append(
            f'<line x1="{x0 + 60}" y1="{y:.1f}" x2="{x0 + w - 30}" y2="{y:.1f}" stroke="#eee"/>'
        )
        parts.append(
            f'<text x="{x0 + 55}" y="{y + 4:.1f}" text-anchor="end" font-size="11">{v:.3g}</text>'
        )
    parts.append(
        f'<line x1="{x0 + 60}" y1="{py(0):.1f}" x2="{x0 + w - 30}" y2="{py(0):.1f}" stroke="#444"/>'
    )
    for i, x in enumerate(xs):
        parts.append(
            f'<text x="{px(i):.1f}" y="{y0 + h - 22}" text-anchor="middle" font-size="11">{x}</text>'
        )
    parts.append(
        f'<text x="{x0 + w / 2}" y="{y0 + h - 5}" text-anchor="middle" font-size="12">{esc(xlabel)}</text>'
    )
    parts.append(
        f'<text x="{x0 + 14}" y="{y0 + h / 2}" text-anchor="middle" font-size="12" '
        f'transform="rotate(-90 {x0 + 14} {y0 + h / 2})">{esc(ylabel)}</text>'
    )
    for li, (legend, colour, pts) in enumerate(lines):
        coords = [(px(i), py(s[0])) for i, s in enumerate(pts) if s]
        if len(coords) > 1:
            d = " ".join(f"{x:.1f},{y:.1f}" for x, y in coords)
            parts.append(
                f'<polyline points="{d}" fill="none" stroke="{colour}" stroke-width="2"/>'
            )
        for i, s in enumerate(pts):
            if not s:
                continue
            parts.append(
                f'<line x1="{px(i):.1f}" y1="{py(s[1]):.1f}" x2="{px(i):.1f}" '
                f'y2="{py(s[2]):.1f}" stroke="{colour}"/>'
            )
            parts.append(
                f'<circle cx="{px(i):.1f}" cy="{py(s[0]):.1f}" r="3" fill="{colour}"/>'
            )
        ly = y0 + 32 + 15 * li
        parts.append(
            f'<line x1="{x0 + w - 190}" y1="{ly - 4}" x2="{x0 + w - 170}" y2="{ly - 4}" '
            f'stroke="{colour}" stroke-width="2"/>'
        )
        parts.append(
            f'<text x="{x0 + w - 165}" y="{ly}" font-size="11">{esc(legend)}</text>'
        )
    return parts


def chart(path, points, xlabel):
    xs = [x for x, _ in points]
    w, h = 520, 300
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{2 * w}" height="{h}" '
        f'font-family="sans-serif" font-size="13">',
        f'<rect width="{2 * w}" height="{h}" fill="white"/>',
    ]
    for k, (title, ylabel, defs) in enumerate(PANELS):
        lines = [
            (legend, colour, [stats([f(r) for r in reports]) for _, reports in points])
            for legend, colour, f in defs
        ]
        parts += panel_svg(k * w, 0, w, h, title, ylabel, xs, xlabel, lines)
    parts.append("</svg>")
    Path(path).write_text("\n".join(parts) + "\n")


def table(points, xname):
    head = (
        f"| {xname} | scenario | runs | SFU out pps / core | baseline / core | ratio "
        "| limited by | MiB / participant (load) | MiB / participant (idle) "
        "| idle CPU µs / participant / s |"
    )
    rows = [head, "|" + "---|" * 10]
    for x, reports in points:
        def mean(f):
            s = stats([f(r) for r in reports])
            return s[0] if s else None

        def fmt(v, spec):
            return "–" if v is None else format(v, spec)

        limited = ", ".join(sorted({str(r["limited_by"]) for r in reports}))
        rows.append(
            f"| {x} | `{reports[0]['scenario']}` | {len(reports)} "
            f"| {fmt(mean(lambda r: r['out_pps_per_core'] / 1e3), '.0f')}k "
            f"| {fmt(mean(lambda r: r['baseline_out_pps_per_core'] / 1e3 or None), '.0f')}k "
            f"| {fmt(mean(lambda r: r['ratio'] or None), '.2f')} "
            f"| {limited} "
            f"| {fmt(mean(lambda r: mib(r.get('anon_bytes_per_participant'))), '.2f')} "
            f"| {fmt(mean(lambda r: mib(r.get('idle_anon_bytes_per_participant'))), '.2f')} "
            f"| {fmt(mean(lambda r: r.get('idle_cpu_us_per_participant_s') or None), '.0f')} |"
        )
    return "\n".join(rows)


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    runs = load(sys.argv[2:])
    size = series(runs, SIZE)
    count = series(runs, COUNT)
    if size:
        chart(out / "curves-room-size.svg", size, "subscribers in the room (one publisher)")
        print("Room size\n\n" + table(size, "subscribers") + "\n")
    if count:
        chart(out / "curves-room-count.svg", count, "rooms of two (one-to-one calls)")
        print("Room count\n\n" + table(count, "rooms") + "\n")
    if not size and not count:
        sys.exit("no fanout-N or rooms-Rx2 scenario in the input")


if __name__ == "__main__":
    main()
