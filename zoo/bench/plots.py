"""The leaderboard page's plots, written as SVG here so that they show without JS: per task a
grid of small panels, one per architecture, success rate against horizon with Wilson bands, a
line per flossing mode; colours and dashes that tell architectures and modes apart for any name,
plugins included; the legend whose chips hide and show them."""

from __future__ import annotations

import colorsys
import hashlib
import math
from collections.abc import Iterable, Sequence

import pandas as pd

from zoo.bench.aggregate import BRIDGED_RATE, order_archs, order_flossing
from zoo.bench.labels import esc, fmt_num, horizon_label, horizon_text, nu0

# SVG stroke-dasharray per flossing mode: solid / dashed / dash-dot; other modes dotted.
DASHES = {"none": "", "pre": "7 4", "pre+during": "9 3 2 3"}
_UNKNOWN_DASH = "2 3"
# A second, colour-independent cue for flossing: marker shape.
MARKERS = {"none": "circle", "pre": "square", "pre+during": "diamond"}
# Within a panel (one architecture) colour tells the flossing modes apart (Paul Tol's bright
# scheme, colour-blind safe); other modes take the rest of it in name order.
MODE_COLORS = {"none": "#4477aa", "pre": "#ee6677", "pre+during": "#228833"}
_MORE_MODE_COLORS = ["#aa3377", "#66ccee", "#ccbb44", "#bbbbbb"]
# Ten well-separated colours (matplotlib's tab10); an architecture's colour depends on its name only.
PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
           "#bcbd22", "#17becf"]


def arch_colors(archs: Iterable[str]) -> dict[str, str]:
    """A colour per architecture, from a hash of its name: the same on every page, for any name.

    Names whose palette slot is taken on this page move to the next free slot; beyond ten
    architectures, further hues are spread by the golden ratio.
    """
    colors: dict[str, str] = {}
    taken: set[int] = set()
    for a in sorted(set(archs)):
        slot = int(hashlib.sha1(a.encode()).hexdigest(), 16) % len(PALETTE)
        for i in range(len(PALETTE)):
            if (slot + i) % len(PALETTE) not in taken:
                slot = (slot + i) % len(PALETTE)
                taken.add(slot)
                colors[a] = PALETTE[slot]
                break
        else:
            hue = (len(colors) * 0.618034) % 1.0
            r, g, b = colorsys.hls_to_rgb(hue, 0.45, 0.65)
            colors[a] = f"#{int(r * 255):02x}{int(g * 255):02x}{int(b * 255):02x}"
    return colors


def mode_colors(modes: Iterable[str]) -> dict[str, str]:
    """A colour per flossing mode: the known modes fixed, others from the rest in their order."""
    ordered = order_flossing(modes)
    extra = iter(_MORE_MODE_COLORS * (1 + len(ordered) // len(_MORE_MODE_COLORS)))
    return {m: MODE_COLORS[m] if m in MODE_COLORS else next(extra) for m in ordered}



# Panel geometry in SVG user units; the SVG scales to its grid cell through the viewBox.
# A panel is drawn about 190 px wide: 220 units keep 10-unit tick labels legible (about 8.5 px).
_W, _H = 220, 150
_ML, _MR, _MT, _MB = 26, 8, 22, 19
_GLYPH = 5.6  # units per glyph of a 10-unit tick label


class _XScale:
    """Horizon -> pixel. Log when the horizons span more than 10x (delays 10..1000), else linear."""

    def __init__(self, horizons: Sequence[float]):
        hs = sorted({float(h) for h in horizons if not math.isnan(h)}) or [1.0]
        lo, hi = hs[0], hs[-1]
        self.log = lo > 0 and hi / lo > 10
        self.horizons = hs
        if self.log:
            pad = (math.log10(hi) - math.log10(lo)) * 0.05
            self.lo, self.hi = math.log10(lo) - pad, math.log10(hi) + pad
        else:
            pad = (hi - lo) * 0.06 if hi > lo else max(abs(lo) * 0.1, 0.5)
            self.lo, self.hi = lo - pad, hi + pad

    def __call__(self, h: float) -> float:
        v = math.log10(h) if self.log else h
        return _ML + (v - self.lo) / (self.hi - self.lo) * (_W - _ML - _MR)

    def ticks(self) -> list[float]:
        """The horizons themselves when their labels fit; otherwise round numbers."""
        if len(self.horizons) <= 12 and self._labels_fit(self.horizons):
            return self.horizons
        return self._log_ticks() if self.log else self._linear_ticks()

    def _labels_fit(self, ticks: Sequence[float]) -> bool:
        xs = [self(t) for t in ticks]
        widths = [len(fmt_num(t)) * _GLYPH + 4 for t in ticks]
        return all(
            xs[i + 1] - xs[i] >= (widths[i] + widths[i + 1]) / 2 for i in range(len(xs) - 1)
        )

    def _log_ticks(self) -> list[float]:
        lo, hi = 10**self.lo, 10**self.hi
        for mantissas in ([1, 2, 5], [1, 3], [1]):
            ticks = [
                m * 10.0**k
                for k in range(math.floor(self.lo), math.ceil(self.hi) + 1)
                for m in mantissas
                if lo <= m * 10.0**k <= hi
            ]
            if self._labels_fit(ticks):
                return ticks
        return ticks

    def _linear_ticks(self) -> list[float]:
        for target in (6, 4, 3):
            ticks = _nice_ticks(self.lo, self.hi, target)
            if self._labels_fit(ticks):
                return ticks
        return ticks


def _nice_ticks(lo: float, hi: float, target: int) -> list[float]:
    """Round-number ticks (1, 2, 2.5, 5 x 10^k steps) covering [lo, hi]."""
    raw = (hi - lo) / max(target - 1, 1)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    start = math.ceil(lo / step) * step
    n = math.floor((hi - start) / step + 1e-9) + 1
    return [round(start + i * step, 12) for i in range(n)]


def rate_to_y(rate: float) -> float:
    """Success rate -> pixel row of a panel (0 at the bottom of the plot area, 1 at its top)."""
    return _MT + (1.0 - rate) * (_H - _MT - _MB)


def _marker(shape: str, x: float, y: float, color: str) -> str:
    common = f'fill="{color}" stroke="#fff" stroke-width="1"'
    if shape == "square":
        return f'<rect x="{x - 3:.1f}" y="{y - 3:.1f}" width="6" height="6" {common}/>'
    if shape == "diamond":
        pts = f"{x:.1f},{y - 4:.1f} {x + 4:.1f},{y:.1f} {x:.1f},{y + 4:.1f} {x - 4:.1f},{y:.1f}"
        return f'<polygon points="{pts}" {common}/>'
    return f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3.4" {common}/>'


def task_block(task: str, rows: pd.DataFrame, acolors: dict[str, str], mcolors: dict[str, str]) -> str:
    """One task: its axes' meaning once, then a panel per architecture on shared axes."""
    xs = _XScale(rows["horizon"].tolist())
    xlabel = "horizon: " + horizon_label(task) + (" \u2014 log scale" if xs.log else "")
    if task == "teacher_student":  # the teacher's eigenvalue floor of each time scale on the grid
        xlabel += "; \u03bd\u2080 at the grid: " + ", ".join(
            f"{fmt_num(h)} \u2192 {nu0(h):.2f}" for h in xs.horizons if h > 0)
    axes = _svg_axes(xs)
    panels = "\n".join(
        _svg_panel(task, arch, rows[rows["arch"] == arch], xs, axes, acolors[arch], mcolors)
        for arch in order_archs(rows["arch"])
    )
    return (
        f'<section class="task-block" data-task="{esc(task)}"><h3>{esc(task)} '
        f'<span class="axisnote">x: {esc(xlabel)} \u00b7 y: success rate over seeds, band: Wilson 95% interval'
        f"</span></h3>\n"
        f'<div class="panels">\n{panels}\n</div></section>'
    )


def _svg_panel(task: str, arch: str, rows: pd.DataFrame, xs: _XScale, axes: str, color: str,
               mcolors: dict[str, str]) -> str:
    """One architecture on one task: success rate vs horizon, a band and a line per flossing mode."""
    parts = [
        (f'<svg class="panel" data-task="{esc(task)}" data-arch="{esc(arch)}" viewBox="0 0 {_W} {_H}" role="img" '
         f'aria-label="{esc(f"success rate against horizon, {arch} on {task}")}">'),
        (f'<rect class="swatch" x="{_ML}" y="6" width="9" height="9" fill="{color}"/>'
         f'<text class="ptitle" x="{_ML + 13}" y="14.5">{esc(arch)}</text>'),
        axes,
    ]
    modes = [m for m in order_flossing(rows["flossing"])]
    # Series often sit on exactly 0 or 1: a 1.4 px vertical dodge of the lines keeps each visible
    # (the bands are not dodged: they are the intervals).
    for i, mode in enumerate(modes):
        sel = rows[rows["flossing"] == mode].dropna(subset=["horizon"]).sort_values("horizon")
        dodge = (i - (len(modes) - 1) / 2) * 1.4
        parts.append(_svg_series(arch, mode, sel, xs, mcolors[mode], dodge))
    parts.append("</svg>")
    return "\n".join(parts)


def _svg_axes(xs: _XScale) -> str:
    """The axes every panel of a task shares (the same text in each)."""
    x0, x1, y0, y1 = _ML, _W - _MR, rate_to_y(0.0), rate_to_y(1.0)
    out = [f'<rect class="plotbg" x="{x0}" y="{y1:.1f}" width="{x1 - x0}" height="{y0 - y1:.1f}"/>']
    for r in (0.0, 0.25, 0.5, 0.75, 1.0):
        cls = "grid thresh" if r == BRIDGED_RATE else "grid"
        out.append(f'<line class="{cls}" x1="{x0}" x2="{x1}" y1="{rate_to_y(r):.1f}" y2="{rate_to_y(r):.1f}"/>')
        if r in (0.0, 0.5, 1.0):
            out.append(f'<text class="tick" x="{x0 - 4}" y="{rate_to_y(r) + 3.5:.1f}" text-anchor="end">{r:g}</text>')
    for t in xs.ticks():
        x = xs(t)
        out.append(f'<line class="grid" x1="{x:.1f}" x2="{x:.1f}" y1="{y1:.1f}" y2="{y0:.1f}"/>'
                   f'<text class="tick" x="{x:.1f}" y="{y0 + 13:.1f}" text-anchor="middle">{esc(fmt_num(t))}</text>')
    out.append(f'<path class="axis" d="M{x0} {y1:.1f}V{y0:.1f}H{x1}"/>')
    return "\n".join(out)


def _svg_series(arch: str, mode: str, sel: pd.DataFrame, xs: _XScale, color: str, dodge: float) -> str:
    dash = DASHES.get(mode, _UNKNOWN_DASH)
    dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
    out = [f'<g class="series" data-flossing="{esc(mode)}">', _svg_band(sel, xs, color)]
    pts = [(xs(h), rate_to_y(r) + dodge) for h, r in zip(sel["horizon"], sel["success_rate"])]
    if len(pts) > 1:
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y in pts)
        out.append(f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="1.8"{dash_attr}/>')
    shape = MARKERS.get(mode, "circle")
    for (x, y), row in zip(pts, sel.itertuples()):
        diverged = f", {row.diverged} diverged" if row.diverged else ""
        tip = (
            f"{arch} \u00b7 flossing {mode} \u00b7 horizon {horizon_text(row.task, row.horizon)}\n"
            f"{row.successes} of {row.n_runs} runs solved{diverged}: success rate {row.success_rate:.2f}, "
            f"Wilson 95% {row.ci_low:.2f}\u2013{row.ci_high:.2f}\nclick: learning curves"
        )
        out.append(f'<g class="pt" data-cfg="{row.Index}"><title>{esc(tip)}</title>{_marker(shape, x, y, color)}</g>')
    out.append("</g>")
    return "\n".join(out)


# A band of a single horizon is this many px wide (an interval bar).
_BAR_HALF_WIDTH = 3.0


def _svg_band(sel: pd.DataFrame, xs: _XScale, color: str) -> str:
    """The Wilson interval of every horizon as one polygon: ci_high left to right, ci_low back."""
    xs_px = [xs(h) for h in sel["horizon"]]
    if not xs_px:
        return ""
    if len(xs_px) == 1:
        xs_px = [xs_px[0] - _BAR_HALF_WIDTH, xs_px[0] + _BAR_HALF_WIDTH]
        lows, highs = [sel["ci_low"].iloc[0]] * 2, [sel["ci_high"].iloc[0]] * 2
    else:
        lows, highs = sel["ci_low"].tolist(), sel["ci_high"].tolist()
    upper = [f"{x:.2f},{rate_to_y(h):.2f}" for x, h in zip(xs_px, highs)]
    lower = [f"{x:.2f},{rate_to_y(lo):.2f}" for x, lo in zip(reversed(xs_px), reversed(lows))]
    return f'<polygon class="band" points="{" ".join(upper + lower)}" fill="{color}"/>'


def legend(archs: Sequence[str], modes: Sequence[str], acolors: dict[str, str], mcolors: dict[str, str]) -> str:
    """Filters: architecture chips hide/show its panels, flossing chips hide/show a mode's series."""
    items = []
    for a in archs:
        swatch = ('<svg width="10" height="10" aria-hidden="true">'
                  f'<rect width="10" height="10" fill="{acolors[a]}"/></svg>')
        items.append(f'<button type="button" class="lg-arch" data-arch="{esc(a)}" '
                     f'title="click to hide/show its panels">{swatch}{esc(a)}</button>')
    styles = []
    for m in modes:
        dash = DASHES.get(m, _UNKNOWN_DASH)
        dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
        sample = (
            f'<svg width="46" height="14" aria-hidden="true"><rect x="1" y="1" width="44" height="12" '
            f'fill="{mcolors[m]}" class="band"/><line x1="1" x2="45" y1="7" y2="7" stroke="{mcolors[m]}" '
            f'stroke-width="2"{dash_attr}/>{_marker(MARKERS.get(m, "circle"), 23, 7, mcolors[m])}</svg>'
        )
        styles.append(f'<button type="button" class="lg-mode" data-flossing="{esc(m)}" '
                      f'title="click to hide/show this mode">{sample}flossing: {esc(m)}</button>')
    return (
        '<div class="legend"><div class="lg-row"><span class="lg-head">architecture</span>'
        + "".join(items)
        + '</div><div class="lg-row"><span class="lg-head">flossing</span>'
        + "".join(styles)
        + '<span class="lg-style"><svg width="30" height="12" aria-hidden="true">'
          '<line x1="1" x2="29" y1="6" y2="6" class="thresh-sample"/></svg>0.5 = "bridged" threshold</span>'
        + "</div></div>"
    )  # fmt: skip
