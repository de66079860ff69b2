#!/usr/bin/env python3
"""Draws learning curves from run folders' TensorBoard event files as one SVG chart.

    scripts/with-env.sh python scripts/curves.py --tag eval/ep_rew_mean --x minutes \
        --out maze.svg "plastic, simple=runs/maze-simple" "plain RNN=runs/maze-rnn"

Each curve is LABEL=RUN_DIR (or a bare RUN_DIR, labelled by its folder name). The x axis is
environment steps or minutes of training (the time between a stop and a resume left out);
`--hline VALUE=LABEL` draws a reference level (an oracle, Thompson sampling). Plain SVG, so the
chart needs nothing beyond the tensorboard package that reads the events, and renders on
GitHub as it is.
"""

import argparse
import math
import os
import sys
from xml.sax.saxutils import escape

# A colour-blind-safe palette (Okabe and Ito).
COLOURS = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#D55E00", "#56B4E9", "#000000"]
# Reference levels are grey; their dash patterns tell them apart.
DASHES = ["6 4", "2 3", "10 3 2 3"]
WIDTH, HEIGHT = 760, 420
LEFT, RIGHT, TOP, BOTTOM = 70, 230, 40, 55


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", metavar="[LABEL=]RUN_DIR")
    parser.add_argument("--tag", required=True, help="scalar tag, e.g. eval/ep_rew_mean")
    parser.add_argument("--x", choices=["steps", "minutes"], default="steps")
    parser.add_argument("--out", required=True, help="SVG file to write")
    parser.add_argument("--title", help="chart title (default: the tag)")
    parser.add_argument("--ylabel", help="y-axis label (default: the tag)")
    parser.add_argument(
        "--smooth",
        type=float,
        default=0.0,
        help="exponential moving average weight in [0, 1), as TensorBoard's slider",
    )
    parser.add_argument("--hline", action="append", default=[], metavar="VALUE=LABEL")
    parser.add_argument("--ylim", metavar="LO:HI", help="y range to show (default: all points); lines are clipped")
    args = parser.parse_args()
    if not 0.0 <= args.smooth < 1.0:
        parser.error(f"--smooth must be in [0, 1), got {args.smooth}")
    if args.ylim is not None:
        try:
            lo, hi = (float(v) for v in args.ylim.split(":"))
        except ValueError:
            parser.error(f"--ylim wants LO:HI with two numbers, got {args.ylim!r}")
        if not lo < hi:
            parser.error(f"--ylim wants LO < HI, got {args.ylim!r}")
        args.ylim = (lo, hi)
    return args


def split_label(spec):
    label, sep, path = spec.partition("=")
    if not sep:
        return os.path.basename(os.path.normpath(spec)), spec
    return label, path


def read_curve(run_dir, tag, x_kind):
    # Imported here so that `--help` works outside the cached environment.
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    if not os.path.isdir(run_dir):
        sys.exit(f"error: {run_dir} is not a folder")
    if x_kind == "steps":
        scalars = load_scalars(run_dir, EventAccumulator)
        tags, points = scalars.keys(), [(e.step, e.value) for e in scalars.get(tag, [])]
    else:
        tags, points = training_minutes(run_dir, tag, EventAccumulator)
    if tag not in tags:
        listed = ", ".join(sorted(tags)) or "none"
        sys.exit(f"error: {run_dir} has no scalar tag {tag!r} (it has: {listed})")
    return points


def load_scalars(path, accumulator):
    """Every scalar event of an event file, or of a run folder's files, by tag."""
    acc = accumulator(path, size_guidance={"scalars": 0})
    acc.Reload()
    return {t: acc.Scalars(t) for t in acc.Tags()["scalars"]}


def training_minutes(run_dir, tag, accumulator):
    """The run's scalar tags, and the tag's events against minutes of training: each process
    that trained the run (the first `plastic train`, then each `plastic resume`) writes its own
    event file, and the time between a stop and the next resume is left out by starting each
    file's clock where the previous one's ended."""
    tags, points, elapsed = set(), [], 0.0
    files = sorted(f for f in os.listdir(run_dir) if f.startswith("events.out.tfevents."))
    for name in files:
        scalars = load_scalars(os.path.join(run_dir, name), accumulator)
        tags |= scalars.keys()
        times = [e.wall_time for events in scalars.values() for e in events]
        if not times:
            continue
        start = min(times)
        points += [(elapsed + (e.wall_time - start) / 60.0, e.value) for e in scalars.get(tag, [])]
        elapsed += (max(times) - start) / 60.0
    return tags, points


def smoothed(points, weight):
    out, last = [], None
    for x, y in points:
        last = y if last is None else weight * last + (1.0 - weight) * y
        out.append((x, last))
    return out


def nice_ticks(lo, hi, count=6):
    """Round tick values covering [lo, hi], about `count` of them."""
    if hi <= lo:
        hi = lo + 1.0
    raw = (hi - lo) / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    first = math.floor(lo / step) * step
    ticks = []
    value = first
    while value <= hi + step * 1e-9:
        ticks.append(value)
        value += step
    if ticks[-1] < hi:
        ticks.append(ticks[-1] + step)
    return ticks


def tick_label(value, x_kind_steps):
    if x_kind_steps and abs(value) >= 1e6:
        return f"{value / 1e6:g} M"
    if x_kind_steps and abs(value) >= 1e3:
        return f"{value / 1e3:g} k"
    return f"{value:.6g}"


def render(curves, hlines, args):
    xs = [x for _, pts in curves for x, _ in pts]
    ys = [y for _, pts in curves for _, y in pts] + [v for v, _ in hlines]
    x_ticks = nice_ticks(0.0, max(xs))
    y_ticks = nice_ticks(*(args.ylim or (min(ys), max(ys))))
    x0, x1, y0, y1 = x_ticks[0], x_ticks[-1], y_ticks[0], y_ticks[-1]
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def px(x):
        return LEFT + (x - x0) / (x1 - x0) * plot_w

    def py(y):
        return TOP + plot_h - (y - y0) / (y1 - y0) * plot_h

    steps = args.x == "steps"
    parts = [
        (
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
            f'viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="12">'
        ),
        f'<rect width="{WIDTH}" height="{HEIGHT}" fill="white"/>',
        f'<clipPath id="plot"><rect x="{LEFT}" y="{TOP}" width="{plot_w}" height="{plot_h}"/></clipPath>',
        f'<text x="{LEFT}" y="{TOP - 15}" font-size="15">{escape(args.title or args.tag)}</text>',
    ]
    for t in x_ticks:
        parts.append(
            f'<line x1="{px(t):.1f}" y1="{TOP}" x2="{px(t):.1f}" y2="{TOP + plot_h}" stroke="#e5e5e5"/>'
            f'<text x="{px(t):.1f}" y="{TOP + plot_h + 18}" text-anchor="middle">'
            f"{tick_label(t, steps)}</text>"
        )
    for t in y_ticks:
        parts.append(
            f'<line x1="{LEFT}" y1="{py(t):.1f}" x2="{LEFT + plot_w}" y2="{py(t):.1f}" stroke="#e5e5e5"/>'
            f'<text x="{LEFT - 8}" y="{py(t) + 4:.1f}" text-anchor="end">{tick_label(t, False)}</text>'
        )
    parts.append(
        f'<rect x="{LEFT}" y="{TOP}" width="{plot_w}" height="{plot_h}" fill="none" stroke="#888"/>'
        f'<text x="{LEFT + plot_w / 2:.1f}" y="{HEIGHT - 12}" text-anchor="middle">'
        f"{'environment steps' if steps else 'minutes of training'}</text>"
        f'<text transform="translate(18 {TOP + plot_h / 2:.1f}) rotate(-90)" text-anchor="middle">'
        f"{escape(args.ylabel or args.tag)}</text>"
    )
    legend_y = TOP + 10
    for i, (value, label) in enumerate(hlines):
        dash = DASHES[i % len(DASHES)]
        parts.append(
            f'<line x1="{LEFT}" y1="{py(value):.1f}" x2="{LEFT + plot_w}" y2="{py(value):.1f}" '
            f'stroke="#555" stroke-dasharray="{dash}" clip-path="url(#plot)"/>'
            f'<line x1="{WIDTH - RIGHT + 15}" y1="{legend_y}" x2="{WIDTH - RIGHT + 40}" '
            f'y2="{legend_y}" stroke="#555" stroke-dasharray="{dash}"/>'
            f'<text x="{WIDTH - RIGHT + 46}" y="{legend_y + 4}">{escape(label)}</text>'
        )
        legend_y += 20
    for i, (label, pts) in enumerate(curves):
        colour = COLOURS[i % len(COLOURS)]
        path = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in pts)
        parts.append(
            f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="1.8" '
            f'clip-path="url(#plot)"/>'
            f'<line x1="{WIDTH - RIGHT + 15}" y1="{legend_y}" x2="{WIDTH - RIGHT + 40}" '
            f'y2="{legend_y}" stroke="{colour}" stroke-width="3"/>'
            f'<text x="{WIDTH - RIGHT + 46}" y="{legend_y + 4}">{escape(label)}</text>'
        )
        legend_y += 20
    parts.append("</svg>\n")
    return "\n".join(parts)


def main():
    args = parse_args()
    hlines = []
    for spec in args.hline:
        value, sep, label = spec.partition("=")
        try:
            hlines.append((float(value), label if sep else value))
        except ValueError:
            sys.exit(f"error: --hline wants VALUE=LABEL with a number, got {spec!r}")
    curves = []
    for spec in args.runs:
        label, run_dir = split_label(spec)
        curves.append((label, smoothed(read_curve(run_dir, args.tag, args.x), args.smooth)))
    svg = render(curves, hlines, args)
    # Written under a temporary name and renamed, like every other output of plastic.
    tmp = f"{args.out}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(svg)
    os.replace(tmp, args.out)
    print(f"wrote {args.out}: {len(curves)} curve(s) of {args.tag}")


if __name__ == "__main__":
    main()
