"""The leaderboard page: a scoreboard of breaking horizons, small-multiple plots with interval
bands, sortable tables and on-demand learning curves, around the template in page/.

The page has no external dependencies at all (inline CSS, JS and SVG), so it opens from disk
on an offline machine and can be attached to a CI run as one file. Colours, orders and axis
labels are derived for any architecture and task, plugins included. The plots are SVG written
here (they show without JS); only the learning curves are drawn by the page's JS, on a click,
from compact JSON that the browser parses only then.
"""

from __future__ import annotations

import colorsys
import hashlib
import html
import json
import math
from collections.abc import Iterable, Sequence
from functools import cache
from importlib import resources

import pandas as pd

from zoo.bench.aggregate import (
    BRIDGED_RATE, NOT_ASKED, NOT_BRIDGED, NOT_RUN, finished, longest_table, modes_by_task, order_archs, order_flossing, scoreboard,
)
from zoo.bench.aggregate import horizons as horizon_table
from zoo.bench.record import STATUSES, normalise

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


# What the horizon means, per built-in task (units in parentheses); read from each task's docstring.
HORIZON_LABELS = {
    "delayed_copy": "delay d (steps)",
    "delayed_xor": "delay d (steps)",
    "teacher_student": "memory time scale 1/(1−ν₀) (steps)",
    "mnist1d": "blank steps appended (steps)",
    "smnist": "sequence length (steps)",
    "psmnist": "sequence length (steps)",
    "adding": "lag from the first marked value to the read-out (steps)",
    "selective_copy": "stretch the tokens are scattered over (steps)",
    "associative_recall": "gap from the last pair to the first query (steps)",
    "sdigits": "blank steps after the 64 pixels (steps)",
}


def horizon_label(task: str) -> str:
    """The x-axis label of a task's panels, with its unit (a plugin task's: "horizon (steps)")."""
    return HORIZON_LABELS.get(task, "horizon (steps)")


def nu0(horizon: float) -> float:
    """The teacher's eigenvalue floor of a teacher-student memory time scale: nu0 = 1 - 1/horizon."""
    return 1 - 1 / horizon


def horizon_text(task: str, h: float) -> str:
    """A horizon as the page shows it; teacher-student's with nu0 beside it."""
    if task == "teacher_student" and h > 0:
        return f"{_fmt_num(h)} (ν₀ {nu0(h):.2f})"
    return _fmt_num(h)


@cache
def _asset(name: str) -> str:
    return (resources.files("zoo.bench") / "page" / name).read_text(encoding="utf-8")


# --------------------------------------------------------------------------------------------
# Formatting helpers
# --------------------------------------------------------------------------------------------


def _fmt_num(x: object, *, precise: bool = False, digits: int = 4) -> str:
    """Short, human number text; '' for missing. ``precise`` keeps all digits (for CSV)."""
    if x is None or x is pd.NA:
        return ""
    x = float(x)
    if math.isnan(x):
        return ""
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    if x.is_integer() and abs(x) < 1e15:
        return str(int(x))
    return repr(x) if precise else f"{x:.{digits}g}"


def _is_missing(v: object) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NA


def _e(text: object) -> str:
    """Escape for both element text and quoted attribute values."""
    return html.escape("" if _is_missing(text) else str(text), quote=True)


# --------------------------------------------------------------------------------------------
# The scoreboard: h50 with its interval per architecture x task, flossing modes side by side
# --------------------------------------------------------------------------------------------


def _fmt_h(x: float) -> str:
    """A fitted horizon to 3 significant digits, without exponents (137, 42.4, 6.25)."""
    if math.isinf(x):
        return "\u221e"
    return f"{x:.0f}" if x >= 99.5 else f"{x:.3g}"


def h50_text(h50: float, h50_low: float, h50_high: float, bracketed: bool, h_min: float,
             h_max: float) -> tuple[str, str]:
    """(value, interval) as the scoreboard shows an h50 (conventions of stats.h50_table).

    inf -> "> h_max" (every horizon of the grid bridged), 0 -> "< h_min" (none bridged),
    nan -> "no fit"; a finite crossing the grid does not bracket gets a "*". The interval is
    "low–high" (ends 0 or ∞ where resamples fell off the grid); it is left out when it says no
    more than the value (an off-grid value whose every resample fell off the same side).
    """
    if math.isnan(h50):
        return "no fit", ""
    if math.isinf(h50):
        value = f"> {_fmt_num(h_max)}"
    elif h50 == 0:
        value = f"< {_fmt_num(h_min)}"
    else:
        value = _fmt_h(h50) + ("" if bracketed else "*")
    if (math.isinf(h50) or h50 == 0) and h50_low == h50_high == h50:
        return value, ""
    if math.isnan(h50_low) or math.isnan(h50_high):
        return value, ""
    return value, f"{_fmt_h(h50_low)}\u2013{_fmt_h(h50_high)}"


def _h50_sort_key(row) -> str:
    """Numeric sort key: off-grid values sit just beyond the grid end they passed; no fit: blank."""
    if not row.ran or math.isnan(row.h50):
        return ""
    if math.isinf(row.h50):
        return repr(math.nextafter(row.h_max, math.inf))
    if row.h50 == 0:
        return repr(math.nextafter(row.h_min, 0.0))
    return repr(float(row.h50))


def _h50_tip(row) -> str:
    where = f"{row.arch} \u00b7 {row.task} \u00b7 flossing {row.flossing}"
    if not row.ran:
        return f"{where}: not run"
    if math.isnan(row.h50):
        why = ("no horizon > 0 (the fit is in log-horizon)" if row.n_horizons == 0 else
               "one horizon > 0 only" if row.n_horizons == 1 else "success does not fall with horizon")
        return f"{where}: no crossing fitted ({why})"
    lines = [
        where,
        f"h50 {_fmt_num(row.h50)}, bootstrap 95% interval {_fmt_num(row.h50_low)} to {_fmt_num(row.h50_high)}",
        f"grid: {row.n_horizons} horizons from {_fmt_num(row.h_min)} to {_fmt_num(row.h_max)}; "
        f"bracketed: {'yes' if row.bracketed else 'no'}",
    ]
    if not math.isnan(row.p_mcnemar):
        lines.append(f"McNemar against none on the same seeds, pooled over horizons: p = {row.p_mcnemar:.3g}")
    return "\n".join(lines)


def _h50_cell(row) -> str:
    tip = _e(_h50_tip(row))
    key = _e(_h50_sort_key(row))
    if not row.ran:
        return f'<td class="num h50 notrun" data-value="" title="{tip}">{_e(NOT_RUN)}</td>'
    value, interval = h50_text(row.h50, row.h50_low, row.h50_high, row.bracketed, row.h_min, row.h_max)
    kind = ("nofit" if math.isnan(row.h50) else "beyond" if math.isinf(row.h50) else "below" if row.h50 == 0
            else "crossing" if row.bracketed else "unbracketed")
    ci = f'<span class="ci">{_e(interval)}</span>' if interval else ""
    return (f'<td class="num h50 {kind}" data-value="{key}" title="{tip}"><span class="v">{_e(value)}</span>'
            f"{ci}</td>")


SCOREBOARD_CAPTION = (
    "h50: the horizon at which the success rate crosses 0.5, in each task's horizon unit, from a logistic "
    "fit of success against log-horizon (Firth); under it, its bootstrap 95% interval. "
    "\u201c> H\u201d: every horizon of the grid, up to H, was bridged by at least half the seeds, so the "
    "break lies beyond the grid; \u201c< H\u201d: none was, the break lies below the shortest horizon H; "
    "\u201c*\u201d: a crossing the grid does not bracket (extrapolated, read with care); \u201cno fit\u201d: "
    "one horizon only, or success does not fall with horizon. An interval end 0 or \u221e: enough "
    "resamples fell below or beyond the grid. Hover a cell for details, click a header to sort."
)


def _scoreboard_html(board: pd.DataFrame, breaks: pd.DataFrame) -> str:
    table = scoreboard(board, breaks)
    columns = modes_by_task(table)
    cells = {(r.arch, r.task, r.flossing): r for r in table.itertuples(index=False)}
    top = ['<th rowspan="2" scope="col" data-col="0" tabindex="0" title="click to sort">architecture</th>']
    sub = []
    col = 1
    for task, modes in columns.items():
        top.append(f'<th colspan="{len(modes)}" scope="colgroup" class="tgroup">{_wrap_name(task)}'
                   f'<span class="unit">{_e(horizon_label(task))}</span></th>')
        for i, mode in enumerate(modes):
            first = ' class="g0"' if i == 0 else ""
            sub.append(f'<th scope="col" data-col="{col}" tabindex="0"{first} '
                       f'title="{_e(f"h50 of {task} with flossing {mode}; click to sort")}">{_e(mode)}</th>')
            col += 1
    body = []
    for arch in order_archs(table["arch"]):
        row = [f'<td class="arch">{_e(arch)}</td>']
        for task, modes in columns.items():
            for i, mode in enumerate(modes):
                cell = _h50_cell(cells[(arch, task, mode)])
                row.append(cell.replace('<td class="', '<td class="g0 ', 1) if i == 0 else cell)
        body.append("<tr>" + "".join(row) + "</tr>")
    return (
        '<div class="tablewrap"><table class="sortable scoreboard" id="scoreboard">'
        f"<caption>{_e(SCOREBOARD_CAPTION)}</caption>"
        f"<thead><tr>{''.join(top)}</tr><tr>{''.join(sub)}</tr></thead>"
        "<tbody>\n" + "\n".join(body) + "\n</tbody></table></div>"
    )


# --------------------------------------------------------------------------------------------
# SVG plots: per task a grid of small panels, one per architecture, flossing modes overlaid
# --------------------------------------------------------------------------------------------

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
        widths = [len(_fmt_num(t)) * _GLYPH + 4 for t in ticks]
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
    n = int(math.floor((hi - start) / step + 1e-9)) + 1
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


def _task_block(task: str, rows: pd.DataFrame, acolors: dict[str, str], mcolors: dict[str, str]) -> str:
    """One task: its axes' meaning once, then a panel per architecture on shared axes."""
    xs = _XScale(rows["horizon"].tolist())
    xlabel = "horizon: " + horizon_label(task) + (" \u2014 log scale" if xs.log else "")
    if task == "teacher_student":  # the teacher's eigenvalue floor of each time scale on the grid
        xlabel += "; \u03bd\u2080 at the grid: " + ", ".join(
            f"{_fmt_num(h)} \u2192 {nu0(h):.2f}" for h in xs.horizons if h > 0)
    axes = _svg_axes(xs)
    panels = "\n".join(
        _svg_panel(task, arch, rows[rows["arch"] == arch], xs, axes, acolors[arch], mcolors)
        for arch in order_archs(rows["arch"])
    )
    return (
        f'<section class="task-block" data-task="{_e(task)}"><h3>{_e(task)} '
        f'<span class="axisnote">x: {_e(xlabel)} \u00b7 y: success rate over seeds, band: Wilson 95% interval'
        f"</span></h3>\n"
        f'<div class="panels">\n{panels}\n</div></section>'
    )


def _svg_panel(task: str, arch: str, rows: pd.DataFrame, xs: _XScale, axes: str, color: str,
               mcolors: dict[str, str]) -> str:
    """One architecture on one task: success rate vs horizon, a band and a line per flossing mode."""
    parts = [
        f'<svg class="panel" data-task="{_e(task)}" data-arch="{_e(arch)}" viewBox="0 0 {_W} {_H}" role="img" '
        f'aria-label="{_e(f"success rate against horizon, {arch} on {task}")}">',
        f'<rect class="swatch" x="{_ML}" y="6" width="9" height="9" fill="{color}"/>'
        f'<text class="ptitle" x="{_ML + 13}" y="14.5">{_e(arch)}</text>',
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
                   f'<text class="tick" x="{x:.1f}" y="{y0 + 13:.1f}" text-anchor="middle">{_e(_fmt_num(t))}</text>')
    out.append(f'<path class="axis" d="M{x0} {y1:.1f}V{y0:.1f}H{x1}"/>')
    return "\n".join(out)


def _svg_series(arch: str, mode: str, sel: pd.DataFrame, xs: _XScale, color: str, dodge: float) -> str:
    dash = DASHES.get(mode, _UNKNOWN_DASH)
    dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
    out = [f'<g class="series" data-flossing="{_e(mode)}">', _svg_band(sel, xs, color)]
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
        out.append(f'<g class="pt" data-cfg="{row.Index}"><title>{_e(tip)}</title>{_marker(shape, x, y, color)}</g>')
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


def _legend(archs: Sequence[str], modes: Sequence[str], acolors: dict[str, str], mcolors: dict[str, str]) -> str:
    """Filters: architecture chips hide/show its panels, flossing chips hide/show a mode's series."""
    items = []
    for a in archs:
        swatch = f'<svg width="10" height="10" aria-hidden="true"><rect width="10" height="10" fill="{acolors[a]}"/></svg>'
        items.append(f'<button type="button" class="lg-arch" data-arch="{_e(a)}" title="click to hide/show its panels">'
                     f'{swatch}{_e(a)}</button>')
    styles = []
    for m in modes:
        dash = DASHES.get(m, _UNKNOWN_DASH)
        dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
        sample = (
            f'<svg width="46" height="14" aria-hidden="true"><rect x="1" y="1" width="44" height="12" '
            f'fill="{mcolors[m]}" class="band"/><line x1="1" x2="45" y1="7" y2="7" stroke="{mcolors[m]}" '
            f'stroke-width="2"{dash_attr}/>{_marker(MARKERS.get(m, "circle"), 23, 7, mcolors[m])}</svg>'
        )
        styles.append(f'<button type="button" class="lg-mode" data-flossing="{_e(m)}" '
                      f'title="click to hide/show this mode">{sample}flossing: {_e(m)}</button>')
    return (
        '<div class="legend"><div class="lg-row"><span class="lg-head">architecture</span>'
        + "".join(items)
        + '</div><div class="lg-row"><span class="lg-head">flossing</span>'
        + "".join(styles)
        + '<span class="lg-style"><svg width="30" height="12" aria-hidden="true"><line x1="1" x2="29" y1="6" y2="6" class="thresh-sample"/></svg>0.5 = "bridged" threshold</span>'
        + "</div></div>"
    )  # fmt: skip


# --------------------------------------------------------------------------------------------
# Learning curves: compact JSON, drawn by page.js on a click
# --------------------------------------------------------------------------------------------


def _round(v: float, digits: int) -> float | None:
    return float(f"{v:.{digits}g}") if math.isfinite(v) else None


def _steps(steps: Sequence[int]) -> list[int]:
    """Evaluation steps; an evenly spaced run of 3 or more as [first, stride] (page.js expands it)."""
    steps = [int(s) for s in steps]
    if len(steps) >= 3 and all(b - a == steps[1] - steps[0] for a, b in zip(steps, steps[1:])):
        return [steps[0], steps[1] - steps[0]]
    return steps


def curves_payload(board: pd.DataFrame, runs: pd.DataFrame, curves: pd.DataFrame | None) -> dict | None:
    """The learning curves of every board row's runs, for the page: None without curves.csv.

    `{"status": STATUSES, "cfg": {row: {"label": [arch, task, horizon text, flossing],
    "metric": name, "runs": [[seed, status index, steps, val_metric, train_loss], ...]}}}`,
    keyed by the board row (the leaderboard's order, as the full table's `data-cfg`); runs by
    seed; metrics and losses to 3 significant digits, finer than a chart's pixel (blank: null);
    steps as `_steps`.
    Only finished runs of `runs` count, so a folder's tuning runs stay off its page.
    """
    if curves is None:
        return None
    fin = finished(normalise(runs))[["run_id", "arch", "task", "horizon", "flossing", "seed", "status"]]
    rows = {(r.arch, r.task, r.horizon, r.flossing): i for i, r in enumerate(board.itertuples(index=False))}
    merged = curves.merge(fin, on="run_id", how="inner").sort_values(["run_id", "step"], kind="stable")
    # Plain lists and one slice per run: a pandas groupby of thousands of small runs is seconds.
    col = {c: merged[c].tolist() for c in merged.columns}
    starts = [k for k in range(len(merged)) if k == 0 or col["run_id"][k] != col["run_id"][k - 1]]
    cfg: dict[str, dict] = {}
    for a, b in zip(starts, [*starts[1:], len(merged)]):
        arch, task, horizon, mode = col["arch"][a], col["task"][a], col["horizon"][a], col["flossing"][a]
        i = rows.get((arch, task, horizon, mode))
        if i is None:
            continue
        entry = cfg.setdefault(str(i), {"label": [arch, task, horizon_text(task, horizon), mode],
                                        "metric": board["metric_name"].iloc[i], "runs": []})
        seed, status = col["seed"][a], col["status"][a]
        entry["runs"].append([
            int(seed) if math.isfinite(seed) else None,
            STATUSES.index(status) if status in STATUSES else None,
            _steps(col["step"][a:b]),
            [_round(v, 3) for v in col["val_metric"][a:b]],
            [_round(v, 3) for v in col["train_loss"][a:b]],
        ])
    for entry in cfg.values():
        entry["runs"].sort(key=lambda r: (r[0] is None, r[0]))
    return {"status": list(STATUSES), "cfg": cfg}


def _json_script(element_id: str, payload: object) -> str:
    """Inline JSON that no browser executes and no "</script>" in a name can end early."""
    text = json.dumps(payload, separators=(",", ":"), allow_nan=False).replace("<", "\\u003c")
    return f'<script type="application/json" id="{element_id}">{text}</script>'


# --------------------------------------------------------------------------------------------
# Tables
# --------------------------------------------------------------------------------------------

_COLUMN_HELP = {
    "horizon": "in steps: the delay, or for teacher_student the memory time scale 1/(1-nu0), nu0 beside it",
    "n_runs": "finished runs (seeds); skipped runs excluded",
    "successes": "runs that met the task's success criterion",
    "success_rate": "successes / n_runs",
    "diverged": "runs that diverged (NaN / blow-up)",
    "median_metric": "median final metric over all runs of the cell",
    "median_steps_to_success": "median training steps to success, successful runs only",
    "median_lambda1_before": "median largest Lyapunov exponent before training",
    "median_lambda1_after": "median largest Lyapunov exponent after training",
    "longest_horizon": "largest horizon with success_rate >= 0.5 for this (arch, task, flossing)",
    "lr": "learning rate of the cell's runs (tuned or set)",
    "ci_low": "Wilson 95% interval of the success rate, lower end",
    "ci_high": "Wilson 95% interval of the success rate, upper end",
    "p_mcnemar": "exact McNemar p-value of this flossing mode against none on the same seeds",
}


def _cell(value: object, col: str, task: str = "") -> str:
    """A table cell. Sorting reads a number's text, or its data-value where the text is not the
    number (a horizon with nu0 beside it, a rounded rate) or is missing (data-value="" sorts last)."""
    if value == NOT_RUN or value == NOT_BRIDGED:  # two kinds of "no horizon", told apart by look and word
        cls = "notrun" if value == NOT_RUN else "notbridged"
        return f'<td class="num {cls}" data-value="">{_e(value)}</td>'
    if isinstance(value, str):
        return f"<td>{_e(value)}</td>"
    text = _fmt_num(value)
    if not text:
        return '<td class="num" data-value="">\u2013</td>'  # en dash for missing
    if col == "success_rate":  # the rate as a bar behind its number (page.css reads --p)
        pct = max(0.0, min(1.0, float(value))) * 100
        return (f'<td class="num rate" data-value="{_fmt_num(value, digits=6)}" style="--p:{pct:.1f}%">'
                f"{float(value):.2f}</td>")
    shown = text
    if col == "horizon" or col == "longest_horizon" or col.startswith("flossing: "):
        shown = horizon_text(task, float(value))
    number = _fmt_num(value, digits=6) if math.isfinite(value) else f"{float(value)}".replace("inf", "Infinity")
    key = "" if shown == text and math.isfinite(value) else f' data-value="{_e(number)}"'
    return f'<td class="num"{key}>{_e(shown)}</td>'


def _wrap_name(name: str) -> str:
    # Long snake_case headers may break after an underscore, so 14 columns fit a laptop screen.
    return _e(name).replace("_", "_<wbr>")


def _table(df: pd.DataFrame, table_id: str, caption: str, *, compact: bool = False, cfg: bool = False) -> str:
    """A sortable table; with `cfg`, each row carries its board row (data-cfg) for the curves viewer."""
    head = "".join(
        f'<th scope="col" data-col="{i}" tabindex="0" title="{_e(_COLUMN_HELP.get(c, "click to sort"))}">'
        f"{_wrap_name(c)}</th>"
        for i, c in enumerate(df.columns)
    )
    body = "\n".join(
        (f'<tr data-cfg="{i}">' if cfg else "<tr>")
        + "".join(_cell(v, c, getattr(row, "task", "")) for v, c in zip(row, df.columns)) + "</tr>"
        for i, row in enumerate(df.itertuples(index=False))
    )
    return (
        f'<div class="tablewrap{" compact" if compact else ""}"><table class="sortable" id="{_e(table_id)}">'
        f"<caption>{_e(caption)}</caption><thead><tr>{head}</tr></thead>"
        f"<tbody>\n{body}\n</tbody></table></div>"
    )


# --------------------------------------------------------------------------------------------
# The page
# --------------------------------------------------------------------------------------------


def _skipped_notes(runs: pd.DataFrame) -> list[str]:
    skipped = runs[runs["status"] == "skipped"]
    notes = []
    for (task, note), grp in skipped.groupby(["task", "note"], sort=True):
        why = f" ({note})" if note else ""
        notes.append(f"{task or 'unknown task'} skipped: data not available{why} \u2014 {len(grp)} run(s) not counted")
    return notes


def _summary(runs: pd.DataFrame, board: pd.DataFrame) -> str:
    fin = finished(runs)
    counts = fin["status"].value_counts()
    status = ", ".join(f"{int(counts.get(s, 0))} {s}" for s in ("solved", "unsolved", "diverged"))
    return (
        f"<strong>{len(fin)}</strong> runs \u00b7 {len(board)} configurations \u00b7 "
        f"{fin['arch'].nunique()} architectures \u00b7 {fin['task'].nunique()} tasks \u00b7 {_e(status)}"
    )


CURVES_NOTE = {
    True: "Click a marker of a plot, or a row of the full leaderboard, to see that configuration's "
          "learning curves (validation metric and training loss against step, one line per seed).",
    False: "Learning curves are not available on this page: no curves.csv was read for it.",
}


def render_html(runs: pd.DataFrame, board: pd.DataFrame, title: str, description: str = "", *,
                breaks: pd.DataFrame | None = None, curves: pd.DataFrame | None = None) -> str:
    """The whole page as one string: header, scoreboard, plots (inline SVG), sortable tables,
    the learning curves' data and the inline JS.

    `breaks` is horizons.csv's table (aggregate.horizons of `runs` when not given); `curves`
    is curves.csv's (None: the page says the curves are not available). `description` (the
    suite's) is shown under the title: quick's says it is a smoke test."""
    runs = normalise(runs)
    board = board.reset_index(drop=True)  # a row's position is its data-cfg everywhere
    if breaks is None:
        breaks = horizon_table(runs)
    fin = finished(runs)
    acolors = arch_colors(fin["arch"].unique())
    mcolors = mode_colors(board["flossing"])
    tasks = sorted(set(board["task"]))
    notes = "".join(f"<li>{_e(n)}</li>" for n in _skipped_notes(runs))
    payload = curves_payload(board, runs, curves)
    if len(board):
        score = "<h2>Scoreboard: the horizon where each architecture breaks</h2>" + _scoreboard_html(board, breaks)
        blocks = "\n".join(_task_block(t, board[board["task"] == t], acolors, mcolors) for t in tasks)
        plots = (
            "<h2>Success rate against horizon</h2>"
            + _legend(order_archs(board["arch"]), order_flossing(board["flossing"]), acolors, mcolors)
            + blocks
        )
        tables = (
            "<h2>Longest horizon bridged</h2>"
            + _table(longest_table(board), "longest", f"largest horizon with success rate \u2265 0.5; \u201c{NOT_BRIDGED}\u201d: ran, never bridged; \u201c{NOT_RUN}\u201d: no runs; \u201c{NOT_ASKED}\u201d: the suite did not ask for this flossing mode on this task", compact=True)
            + "<h2>Full leaderboard</h2>"
            + _table(board, "board", "one row per (arch, task, horizon, flossing); click a header to sort, a row for its learning curves", cfg=True)
        )
    else:
        score = ""
        plots = '<p class="empty">No finished runs yet \u2014 nothing to plot.</p>'
        tables = "<h2>Full leaderboard</h2>" + _table(board, "board", "no finished runs yet")
    return _asset("page.html").format(
        title=_e(title),
        description=f'<p class="about">{_e(description)}</p>' if description else "",
        summary=_summary(runs, board),
        curves_note=_e(CURVES_NOTE[payload is not None]),
        notes=f'<ul class="notes">{notes}</ul>' if notes else "",
        scoreboard=score,
        plots=plots,
        tables=tables,
        data=_json_script("curves-data", payload),
        css=_asset("page.css"),
        js=_asset("page.js"),
    )
