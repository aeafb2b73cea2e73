"""The leaderboard page: inline SVG plots and sortable tables around the template in page/.

The page has no external dependencies at all (inline CSS, JS and SVG), so it opens from disk
on an offline machine and can be attached to a CI run as one file. Colours, orders and axis
labels are derived for any architecture and task, plugins included.
"""

from __future__ import annotations

import colorsys
import hashlib
import html
import math
from collections.abc import Iterable, Sequence
from functools import cache
from importlib import resources

import pandas as pd

from zoo.bench.aggregate import (
    BRIDGED_RATE, NOT_BRIDGED, NOT_RUN, finished, longest_table, order_archs, order_flossing,
)
from zoo.bench.record import normalise

# SVG stroke-dasharray per flossing mode: solid / dashed / dash-dot; other modes dotted.
DASHES = {"none": "", "pre": "7 4", "pre+during": "9 3 2 3"}
_UNKNOWN_DASH = "2 3"
# A second, colour-independent cue for flossing: marker shape.
MARKERS = {"none": "circle", "pre": "square", "pre+during": "diamond"}
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


# What the horizon means, per built-in task (units in parentheses).
HORIZON_LABELS = {
    "delayed_copy": "delay d (steps)",
    "delayed_xor": "delay d (steps)",
    "teacher_student": "memory time scale 1/(1−ν₀) (steps)",
    "mnist1d": "blank steps appended (steps)",
    "smnist": "sequence length (steps)",
    "psmnist": "sequence length (steps)",
}


def horizon_label(task: str) -> str:
    """The x-axis label of a task's panel, with its unit (a plugin task's: "horizon (steps)")."""
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
# SVG plots
# --------------------------------------------------------------------------------------------

# Panel geometry in SVG user units; the SVG scales to its grid cell through the viewBox.
_W, _H = 640, 390
_ML, _MR, _MT, _MB = 52, 16, 34, 58


class _XScale:
    """Horizon -> pixel. Log when the horizons span more than 10x (delays 10..1000), else linear."""

    def __init__(self, horizons: Sequence[float]):
        hs = sorted({float(h) for h in horizons if not math.isnan(h)}) or [1.0]
        lo, hi = hs[0], hs[-1]
        self.log = lo > 0 and hi / lo > 10
        self.horizons = hs
        if self.log:
            pad = (math.log10(hi) - math.log10(lo)) * 0.04
            self.lo, self.hi = math.log10(lo) - pad, math.log10(hi) + pad
        else:
            pad = (hi - lo) * 0.05 if hi > lo else max(abs(lo) * 0.1, 0.5)
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
        widths = [len(_fmt_num(t)) * 6.5 + 6 for t in ticks]  # ~6.5 px per glyph at 11px font
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
        return _nice_ticks(self.lo, self.hi, 6)


def _nice_ticks(lo: float, hi: float, target: int) -> list[float]:
    """Round-number ticks (1, 2, 2.5, 5 x 10^k steps) covering [lo, hi]."""
    raw = (hi - lo) / max(target - 1, 1)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    start = math.ceil(lo / step) * step
    n = int(math.floor((hi - start) / step + 1e-9)) + 1
    return [round(start + i * step, 12) for i in range(n)]


def _y(rate: float) -> float:
    return _MT + (1.0 - rate) * (_H - _MT - _MB)


def _marker(shape: str, x: float, y: float, color: str) -> str:
    common = f'fill="{color}" stroke="#fff" stroke-width="1.2"'
    if shape == "square":
        return f'<rect x="{x - 3.6:.1f}" y="{y - 3.6:.1f}" width="7.2" height="7.2" {common}/>'
    if shape == "diamond":
        pts = f"{x:.1f},{y - 5:.1f} {x + 5:.1f},{y:.1f} {x:.1f},{y + 5:.1f} {x - 5:.1f},{y:.1f}"
        return f'<polygon points="{pts}" {common}/>'
    return f'<circle cx="{x:.1f}" cy="{y:.1f}" r="4.2" {common}/>'


def _svg_panel(task: str, rows: pd.DataFrame, colors: dict[str, str]) -> str:
    """One task: success rate vs horizon, a line per (arch, flossing)."""
    xs = _XScale(rows["horizon"].tolist())
    parts = [
        f'<svg class="panel" data-task="{_e(task)}" viewBox="0 0 {_W} {_H}" role="img" '
        f'aria-label="{_e(f"success rate against horizon for {task}")}">',
        f'<text class="ptitle" x="{_ML}" y="20">{_e(task)}</text>',
        _svg_axes(task, xs),
    ]
    series = [
        (arch, mode)
        for arch in order_archs(rows["arch"])
        for mode in order_flossing(rows["flossing"])
        if ((rows["arch"] == arch) & (rows["flossing"] == mode)).any()
    ]
    # Many series sit on exactly 0 or 1; a small vertical dodge (a few px) keeps each visible.
    step = min(1.6, 9.0 / max(len(series), 1))
    for i, (arch, mode) in enumerate(series):
        dodge = (i - (len(series) - 1) / 2) * step
        sel = rows[(rows["arch"] == arch) & (rows["flossing"] == mode)].dropna(subset=["horizon"])
        sel = sel.sort_values("horizon")  # a run without a horizon has no place on this axis
        parts.append(_svg_series(arch, mode, sel, xs, colors[arch], dodge))
    parts.append("</svg>")
    return "\n".join(parts)


def _svg_axes(task: str, xs: _XScale) -> str:
    x0, x1, y0, y1 = _ML, _W - _MR, _y(0.0), _y(1.0)
    out = [f'<rect class="plotbg" x="{x0}" y="{y1:.1f}" width="{x1 - x0}" height="{y0 - y1:.1f}"/>']
    for r in (0.0, 0.25, 0.5, 0.75, 1.0):
        cls = "grid thresh" if r == BRIDGED_RATE else "grid"
        out.append(f'<line class="{cls}" x1="{x0}" x2="{x1}" y1="{_y(r):.1f}" y2="{_y(r):.1f}"/>')
        out.append(f'<text class="tick" x="{x0 - 6}" y="{_y(r) + 4:.1f}" text-anchor="end">{r:g}</text>')
    for t in xs.ticks():
        x = xs(t)
        out.append(f'<line class="grid vgrid" x1="{x:.1f}" x2="{x:.1f}" y1="{y1:.1f}" y2="{y0:.1f}"/>')
        out.append(f'<text class="tick" x="{x:.1f}" y="{y0 + 15:.1f}" text-anchor="middle">{_e(_fmt_num(t))}</text>')
        if task == "teacher_student" and t > 0:  # the teacher's eigenvalue floor beside its time scale
            out.append(f'<text class="tick nu0" x="{x:.1f}" y="{y0 + 28:.1f}" text-anchor="middle">'
                       f'\u03bd\u2080 {nu0(t):.2f}</text>')
    out.append(f'<line class="axis" x1="{x0}" x2="{x1}" y1="{y0:.1f}" y2="{y0:.1f}"/>')
    out.append(f'<line class="axis" x1="{x0}" x2="{x0}" y1="{y1:.1f}" y2="{y0:.1f}"/>')
    xlabel = "horizon: " + horizon_label(task) + (" \u2014 log scale" if xs.log else "")
    out.append(f'<text class="alabel" x="{(x0 + x1) / 2:.1f}" y="{_H - 8}" text-anchor="middle">{_e(xlabel)}</text>')
    out.append(
        f'<text class="alabel" transform="translate(14 {(y0 + y1) / 2:.1f}) rotate(-90)" '
        f'text-anchor="middle">success rate</text>'
    )
    return "\n".join(out)  # fmt: skip


def _svg_series(arch: str, mode: str, sel: pd.DataFrame, xs: _XScale, color: str, dodge: float) -> str:
    pts = [(xs(h), _y(r) + dodge, row) for h, r, row in zip(sel["horizon"], sel["success_rate"], sel.itertuples())]
    dash = DASHES.get(mode, _UNKNOWN_DASH)
    dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
    out = [f'<g class="series" data-arch="{_e(arch)}" data-flossing="{_e(mode)}">']
    if len(pts) > 1:
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y, _ in pts)
        out.append(f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="2.2"{dash_attr}/>')
    for x, y, row in pts:
        tip = (
            f"{arch} \u00b7 flossing {mode} \u00b7 horizon {horizon_text(row.task, row.horizon)}\n"
            f"success rate {row.success_rate:.2f}: {row.successes} of {row.n_runs} runs solved"
            f" (n_runs={row.n_runs}, successes={row.successes}, diverged={row.diverged})"
        )
        out.append(f"<g class=\"pt\"><title>{_e(tip)}</title>{_marker(MARKERS.get(mode, 'circle'), x, y, color)}</g>")
    out.append("</g>")
    return "\n".join(out)  # fmt: skip


def _legend(archs: Sequence[str], modes: Sequence[str], colors: dict[str, str]) -> str:
    """One shared legend: colour = architecture (click to mute), line style + marker = flossing."""
    items = []
    for a in archs:
        swatch = f'<svg width="26" height="12" aria-hidden="true"><line x1="1" x2="25" y1="6" y2="6" stroke="{colors[a]}" stroke-width="3"/></svg>'
        items.append(f'<button type="button" class="lg-arch" data-arch="{_e(a)}" title="click to hide/show">{swatch}{_e(a)}</button>')
    styles = []
    for m in modes:
        dash = DASHES.get(m, _UNKNOWN_DASH)
        dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
        sample = (
            f'<svg width="46" height="12" aria-hidden="true"><line x1="1" x2="45" y1="6" y2="6" stroke="#333" '
            f'stroke-width="2.2"{dash_attr}/>{_marker(MARKERS.get(m, "circle"), 23, 6, "#333")}</svg>'
        )
        styles.append(f'<span class="lg-style">{sample}flossing: {_e(m)}</span>')
    return (
        '<div class="legend"><div class="lg-row"><span class="lg-head">architecture</span>'
        + "".join(items)
        + '</div><div class="lg-row"><span class="lg-head">line style</span>'
        + "".join(styles)
        + '<span class="lg-style"><svg width="30" height="12" aria-hidden="true"><line x1="1" x2="29" y1="6" y2="6" class="thresh-sample"/></svg>0.5 = "bridged" threshold</span>'
        + "</div></div>"
    )  # fmt: skip


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
}


def _cell(value: object, col: str, task: str = "") -> str:
    """A table cell; numbers carry their raw value in data-value so sorting is numeric."""
    if value == NOT_RUN or value == NOT_BRIDGED:  # two kinds of "no horizon", told apart by look and word
        cls = "notrun" if value == NOT_RUN else "notbridged"
        return f'<td class="num {cls}" data-value="">{_e(value)}</td>'
    if isinstance(value, str):
        return f"<td>{_e(value)}</td>"
    text = _fmt_num(value)
    if col == "success_rate" and text:
        pct = max(0.0, min(1.0, float(value))) * 100
        bar = f' style="background:linear-gradient(90deg,var(--bar) {pct:.1f}%,transparent {pct:.1f}%)"'
        return f'<td class="num rate" data-value="{_e(repr(float(value)))}"{bar}>{float(value):.2f}</td>'
    if text and (col == "horizon" or col == "longest_horizon" or col.startswith("flossing: ")):
        text = horizon_text(task, float(value))
    raw = "" if not text else _e(repr(float(value)))
    shown = _e(text) or "\u2013"  # en dash for missing; blanks sort last via data-value=""
    return f'<td class="num" data-value="{raw}">{shown}</td>'


def _wrap_name(name: str) -> str:
    # Long snake_case headers may break after an underscore, so 14 columns fit a laptop screen.
    return _e(name).replace("_", "_<wbr>")


def _table(df: pd.DataFrame, table_id: str, caption: str, *, compact: bool = False) -> str:
    head = "".join(
        f'<th scope="col" tabindex="0" title="{_e(_COLUMN_HELP.get(c, "click to sort"))}">{_wrap_name(c)}</th>'
        for c in df.columns
    )
    body = "\n".join(
        "<tr>" + "".join(_cell(v, c, getattr(row, "task", "")) for v, c in zip(row, df.columns)) + "</tr>"
        for row in df.itertuples(index=False)
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


def render_html(runs: pd.DataFrame, board: pd.DataFrame, title: str, description: str = "") -> str:
    """The whole page as one string: header, plots (inline SVG), sortable tables, inline JS.

    `description` (the suite's) is shown under the title: quick's says it is a smoke test."""
    runs = normalise(runs)
    fin = finished(runs)
    colors = arch_colors(fin["arch"].unique())
    tasks = sorted(set(board["task"]))
    panels = "\n".join(_svg_panel(t, board[board["task"] == t], colors) for t in tasks)
    notes = "".join(f"<li>{_e(n)}</li>" for n in _skipped_notes(runs))
    if len(board):
        plots = (
            _legend(order_archs(board["arch"]), order_flossing(board["flossing"]), colors)
            + f'<div class="panels">{panels}</div>'
        )
        tables = (
            "<h2>Longest horizon bridged</h2>"
            + _table(longest_table(board), "longest", f"largest horizon with success rate \u2265 0.5; \u201c{NOT_BRIDGED}\u201d: ran, never bridged; \u201c{NOT_RUN}\u201d: no runs", compact=True)
            + "<h2>Full leaderboard</h2>"
            + _table(board, "board", "one row per (arch, task, horizon, flossing); click a header to sort")
        )
    else:
        plots = '<p class="empty">No finished runs yet \u2014 nothing to plot.</p>'
        tables = "<h2>Full leaderboard</h2>" + _table(board, "board", "no finished runs yet")
    return _asset("page.html").format(
        title=_e(title),
        description=f'<p class="about">{_e(description)}</p>' if description else "",
        summary=_summary(runs, board),
        notes=f'<ul class="notes">{notes}</ul>' if notes else "",
        plots=plots,
        tables=tables,
        css=_asset("page.css"),
        js=_asset("page.js"),
    )


