"""Turn the harness's ``runs.csv`` into ``leaderboard.csv`` and a self-contained ``leaderboard.html``.

The question the suite answers is "how long a horizon can gradient descent bridge, per
architecture, with and without flossing?", so the leaderboard is success rate against horizon
per (arch, task, flossing), plus the longest horizon still solved by at least half the seeds.

Everything here is a pure function of a runs DataFrame except :func:`write_leaderboard`, which
does the file I/O. The HTML page has no external dependencies at all (inline CSS, JS and SVG),
so it opens from disk on an offline machine and can be attached to a CI run as one file.
"""

from __future__ import annotations

import html
import math
import os
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = [
    "BOARD_COLUMNS",
    "RUNS_COLUMNS",
    "aggregate",
    "order_flossing",
    "read_runs",
    "render_html",
    "write_leaderboard",
]

# The schema the harness writes, one row per finished run (DESIGN.md section 3).
RUNS_COLUMNS = [
    "run_id", "suite", "arch", "task", "horizon", "flossing", "seed", "hidden_size", "lr",
    "max_steps", "status", "metric_name", "metric", "higher_is_better", "success",
    "steps_to_success", "steps_trained", "wall_time_s", "lambda1_before", "spread_before",
    "lambda1_after", "spread_after", "grad_norm_before", "grad_norm_after", "note",
]  # fmt: skip
_NUMERIC_RUN_COLUMNS = [
    "horizon", "seed", "hidden_size", "lr", "max_steps", "metric", "higher_is_better",
    "success", "steps_to_success", "steps_trained", "wall_time_s", "lambda1_before",
    "spread_before", "lambda1_after", "spread_after", "grad_norm_before", "grad_norm_after",
]  # fmt: skip
_TEXT_RUN_COLUMNS = [c for c in RUNS_COLUMNS if c not in _NUMERIC_RUN_COLUMNS]

STATUSES = ("solved", "unsolved", "diverged", "skipped")
GROUP_KEYS = ["arch", "task", "horizon", "flossing"]
# The first seven columns are a contract with users and outside checks; the rest may grow.
BOARD_COLUMNS = [
    "arch", "task", "horizon", "flossing", "n_runs", "successes", "success_rate",
    "diverged", "median_metric", "metric_name", "median_steps_to_success",
    "median_lambda1_before", "median_lambda1_after", "longest_horizon",
]  # fmt: skip
_INT_BOARD_COLUMNS = ["n_runs", "successes", "diverged"]

# A run solved by at least this fraction of seeds counts as "bridged" for longest_horizon.
BRIDGED_RATE = 0.5

FLOSSING_MODES = ["none", "pre", "pre+during"]
# Known names get fixed colours so a given arch looks the same on every suite's page;
# user-registered architectures draw from the extra palette in sorted-name order.
ARCH_COLORS = {
    "rnn": "#1f77b4",
    "lstm": "#d62728",
    "gru": "#2ca02c",
    "lru": "#9467bd",
    "complex_diagonal": "#ff7f0e",
    "linear": "#8c564b",
}
_EXTRA_COLORS = ["#e377c2", "#17becf", "#7f7f7f", "#bcbd22", "#393b79", "#637939", "#843c39"]
# SVG stroke-dasharray per flossing mode: solid / dashed / dash-dot; unknown modes dotted.
DASHES = {"none": "", "pre": "7 4", "pre+during": "9 3 2 3"}
_UNKNOWN_DASH = "2 3"
# A second, colour-independent cue for flossing: marker shape.
MARKERS = {"none": "circle", "pre": "square", "pre+during": "diamond"}
TASK_ORDER = ["delayed_copy", "delayed_xor", "teacher_student", "mnist1d", "smnist", "psmnist"]
_X_LABELS = {
    "delayed_copy": "horizon: delay d (steps)",
    "delayed_xor": "horizon: delay d (steps)",
    "teacher_student": "horizon: teacher eigenvalue floor \u03bd\u2080",
}


# --------------------------------------------------------------------------------------------
# Reading and aggregation
# --------------------------------------------------------------------------------------------


def read_runs(path: Path) -> pd.DataFrame:
    """Read runs.csv; a missing or zero-byte file reads as zero runs.

    Everything is read as text first and numbers are parsed afterwards, because pandas'
    default NA list would otherwise turn legitimate text (a flossing mode or an arch called
    "none"/"NA"/"null") into NaN.
    """
    path = Path(path)
    if not path.exists() or path.stat().st_size == 0:
        return _normalise(pd.DataFrame(columns=RUNS_COLUMNS))
    raw = pd.read_csv(path, dtype=str, keep_default_na=False, na_filter=False, on_bad_lines="skip")
    runs = _normalise(raw)
    # A line cut off by a crash mid-append has a truncated status; the harness redoes that
    # run, so it is not a result. A re-recorded run keeps its last row, as the harness does.
    runs = runs[runs["status"].isin(STATUSES)]
    if runs["run_id"].ne("").all():
        runs = runs.drop_duplicates("run_id", keep="last")
    return runs.reset_index(drop=True)


def _normalise(runs: pd.DataFrame) -> pd.DataFrame:
    """Return a copy with every schema column present and typed (numbers float, text str)."""
    df = runs.copy()
    for col in _TEXT_RUN_COLUMNS:
        if col not in df.columns:
            df[col] = ""
        df[col] = df[col].map(lambda v: "" if _is_missing(v) else str(v).strip()).astype(object)
    for col in _NUMERIC_RUN_COLUMNS:
        if col not in df.columns:
            df[col] = np.nan
        df[col] = _to_float(df[col])
    # `success` is the harness's verdict; fall back to the status where it is missing.
    df["success"] = df["success"].fillna((df["status"] == "solved").astype(float))
    return df


def _is_missing(v: object) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NA


def _to_float(col: pd.Series) -> pd.Series:
    """Parse numbers leniently: blanks -> NaN, 'True'/'False' -> 1/0 (a bool column round-trip)."""
    if pd.api.types.is_bool_dtype(col):
        return col.astype(float)
    text = col.map(lambda v: v.strip().lower() if isinstance(v, str) else v)
    text = text.replace({"true": 1.0, "false": 0.0, "": np.nan})
    return pd.to_numeric(text, errors="coerce").astype(float)


def _finished(runs: pd.DataFrame) -> pd.DataFrame:
    """Skipped rows (data unavailable) never trained, so they are not runs."""
    return runs[runs["status"] != "skipped"]


def aggregate(runs: pd.DataFrame) -> pd.DataFrame:
    """Per (arch, task, horizon, flossing): counts, success rate, medians; plus longest_horizon.

    ``median_metric`` is over all finished runs of the cell (the typical outcome), while
    ``median_steps_to_success`` only looks at successful runs (steps are undefined otherwise).
    ``longest_horizon`` is per (arch, task, flossing): the largest horizon with
    success_rate >= 0.5, NaN if none. It is the largest such horizon, not the end of an
    unbroken run from the shortest, so one unlucky short horizon does not hide a long success.
    """
    df = _finished(_normalise(runs))
    if df.empty:
        return _empty_board()
    df = df.assign(
        _diverged=(df["status"] == "diverged").astype(int),
        _steps_ok=df["steps_to_success"].where(df["success"] > 0),
    )
    grouped = df.groupby(GROUP_KEYS, dropna=False, sort=False)
    board = grouped.agg(
        n_runs=("run_id", "size"),
        successes=("success", "sum"),
        diverged=("_diverged", "sum"),
        median_metric=("metric", "median"),
        metric_name=("metric_name", _first_nonblank),
        median_steps_to_success=("_steps_ok", "median"),
        median_lambda1_before=("lambda1_before", "median"),
        median_lambda1_after=("lambda1_after", "median"),
    ).reset_index()
    board["success_rate"] = board["successes"] / board["n_runs"]
    board["longest_horizon"] = _longest_horizon(board)
    board[_INT_BOARD_COLUMNS] = board[_INT_BOARD_COLUMNS].astype(int)
    board = board.sort_values(["task", "arch", "flossing", "horizon"], kind="stable")
    return board[BOARD_COLUMNS].reset_index(drop=True)


def _first_nonblank(values: pd.Series) -> str:
    # A task has one metric; taking the first non-blank name keeps a partial row from blanking it.
    names = [v for v in values if v]
    return names[0] if names else ""


def _longest_horizon(board: pd.DataFrame) -> pd.Series:
    bridged = board["horizon"].where(board["success_rate"] >= BRIDGED_RATE)
    # transform("max") broadcasts the group's value onto every row; all-NaN groups give NaN.
    return bridged.groupby([board["arch"], board["task"], board["flossing"]]).transform("max")


def _empty_board() -> pd.DataFrame:
    board = pd.DataFrame({c: pd.Series(dtype=float) for c in BOARD_COLUMNS})
    for col in ["arch", "task", "flossing", "metric_name"]:
        board[col] = board[col].astype(object)
    board[_INT_BOARD_COLUMNS] = board[_INT_BOARD_COLUMNS].astype(int)
    return board


# --------------------------------------------------------------------------------------------
# Files
# --------------------------------------------------------------------------------------------


def write_leaderboard(out_dir: Path, *, title: str | None = None) -> tuple[Path, Path]:
    """Read ``out_dir/runs.csv``; write ``leaderboard.csv`` and ``leaderboard.html`` atomically.

    Atomic (temp file + os.replace) because a browser or a CI step may read the files while
    the harness is still appending runs and re-writing the board.
    """
    out_dir = Path(out_dir)
    runs = read_runs(out_dir / "runs.csv")
    board = aggregate(runs)
    if title is None:
        suites = sorted({s for s in runs["suite"] if s})
        title = " + ".join(suites) if suites else out_dir.resolve().name
    csv_path = out_dir / "leaderboard.csv"
    html_path = out_dir / "leaderboard.html"
    _atomic_write(csv_path, board.to_csv(index=False, float_format=_csv_float, lineterminator="\n"))
    _atomic_write(html_path, render_html(runs, board, title))
    return csv_path, html_path


def _csv_float(x: float) -> str:
    # Integral horizons/steps print as "100", not "100.0"; others keep full precision (repr).
    return _fmt_num(x, precise=True)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _atomic_write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            fh.write(text)
        # mkstemp makes 0600 files; give the page the permissions a plain open() would.
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


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


def _e(text: object) -> str:
    """Escape for both element text and quoted attribute values."""
    return html.escape("" if _is_missing(text) else str(text), quote=True)


def _order_tasks(tasks: Iterable[str]) -> list[str]:
    # Known tasks in the order the design lists them (easy to hard), then the rest by name.
    tasks = set(tasks)
    known = [t for t in TASK_ORDER if t in tasks]
    return known + sorted(tasks - set(known))


def order_flossing(modes: Iterable[str]) -> list[str]:
    """The known flossing modes in their order (none, pre, pre+during), then the others by name."""
    modes = set(modes)
    known = [m for m in FLOSSING_MODES if m in modes]
    return known + sorted(modes - set(known))


def arch_colors(archs: Iterable[str]) -> dict[str, str]:
    """Fixed colour for known architectures; extra palette (then grey) for the others."""
    colors = {a: ARCH_COLORS[a] for a in archs if a in ARCH_COLORS}
    others = sorted(set(archs) - set(colors))
    for i, a in enumerate(others):
        colors[a] = _EXTRA_COLORS[i] if i < len(_EXTRA_COLORS) else "#555555"
    return colors


def _ordered_archs(archs: Iterable[str]) -> list[str]:
    archs = set(archs)
    known = [a for a in ARCH_COLORS if a in archs]
    return known + sorted(archs - set(known))


# --------------------------------------------------------------------------------------------
# SVG plots
# --------------------------------------------------------------------------------------------

# Panel geometry in SVG user units; the SVG scales to its grid cell through the viewBox.
_W, _H = 640, 390
_ML, _MR, _MT, _MB = 52, 16, 34, 46


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
        for arch in _ordered_archs(rows["arch"])
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
    out.append(f'<line class="axis" x1="{x0}" x2="{x1}" y1="{y0:.1f}" y2="{y0:.1f}"/>')
    out.append(f'<line class="axis" x1="{x0}" x2="{x0}" y1="{y1:.1f}" y2="{y0:.1f}"/>')
    xlabel = _X_LABELS.get(task, "horizon") + (" \u2014 log scale" if xs.log else "")
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
            f"{arch} \u00b7 flossing {mode} \u00b7 horizon {_fmt_num(row.horizon)}\n"
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


def _cell(value: object, col: str) -> str:
    """A table cell; numbers carry their raw value in data-value so sorting is numeric."""
    if isinstance(value, str):
        return f"<td>{_e(value)}</td>"
    text = _fmt_num(value)
    if col == "success_rate" and text:
        pct = max(0.0, min(1.0, float(value))) * 100
        bar = f' style="background:linear-gradient(90deg,var(--bar) {pct:.1f}%,transparent {pct:.1f}%)"'
        return f'<td class="num rate" data-value="{_e(repr(float(value)))}"{bar}>{float(value):.2f}</td>'
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
        "<tr>" + "".join(_cell(v, c) for v, c in zip(row, df.columns)) + "</tr>"
        for row in df.itertuples(index=False)
    )
    return (
        f'<div class="tablewrap{" compact" if compact else ""}"><table class="sortable" id="{_e(table_id)}">'
        f"<caption>{_e(caption)}</caption><thead><tr>{head}</tr></thead>"
        f"<tbody>\n{body}\n</tbody></table></div>"
    )


def _longest_table(board: pd.DataFrame) -> pd.DataFrame:
    """Pivot: one row per (task, arch), one column per flossing mode, cell = longest horizon."""
    modes = order_flossing(board["flossing"])
    keys = board[["task", "arch", "flossing", "longest_horizon"]].drop_duplicates(["task", "arch", "flossing"])
    rows = []
    for task in _order_tasks(keys["task"]):
        sub = keys[keys["task"] == task]
        for arch in _ordered_archs(sub["arch"]):
            cell = sub[sub["arch"] == arch].set_index("flossing")["longest_horizon"]
            rows.append({"task": task, "arch": arch, **{f"flossing: {m}": cell.get(m, np.nan) for m in modes}})
    return pd.DataFrame(rows, columns=["task", "arch", *[f"flossing: {m}" for m in modes]])


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
    fin = _finished(runs)
    counts = fin["status"].value_counts()
    status = ", ".join(f"{int(counts.get(s, 0))} {s}" for s in ("solved", "unsolved", "diverged"))
    return (
        f"<strong>{len(fin)}</strong> runs \u00b7 {len(board)} configurations \u00b7 "
        f"{fin['arch'].nunique()} architectures \u00b7 {fin['task'].nunique()} tasks \u00b7 {_e(status)}"
    )


def render_html(runs: pd.DataFrame, board: pd.DataFrame, title: str) -> str:
    """The whole page as one string: header, plots (inline SVG), sortable tables, inline JS."""
    runs = _normalise(runs)
    fin = _finished(runs)
    colors = arch_colors(fin["arch"].unique())
    tasks = _order_tasks(board["task"]) if len(board) else []
    panels = "\n".join(_svg_panel(t, board[board["task"] == t], colors) for t in tasks)
    notes = "".join(f"<li>{_e(n)}</li>" for n in _skipped_notes(runs))
    if len(board):
        plots = (
            _legend(_ordered_archs(board["arch"]), order_flossing(board["flossing"]), colors)
            + f'<div class="panels">{panels}</div>'
        )
        tables = (
            "<h2>Longest horizon bridged</h2>"
            + _table(_longest_table(board), "longest", "largest horizon with success rate \u2265 0.5; \u2013 = none", compact=True)
            + "<h2>Full leaderboard</h2>"
            + _table(board, "board", "one row per (arch, task, horizon, flossing); click a header to sort")
        )
    else:
        plots = '<p class="empty">No finished runs yet \u2014 nothing to plot.</p>'
        tables = "<h2>Full leaderboard</h2>" + _table(board, "board", "no finished runs yet")
    return _PAGE.format(
        title=_e(title),
        summary=_summary(runs, board),
        notes=f'<ul class="notes">{notes}</ul>' if notes else "",
        plots=plots,
        tables=tables,
        css=_CSS,
        js=_JS,
    )


_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} \u2014 recurrent zoo leaderboard</title>
<style>{css}</style>
</head>
<body>
<header>
<h1>{title} <span class="sub">recurrent zoo leaderboard</span></h1>
<p class="summary">{summary}</p>
<p class="howto"><b>How to read:</b> each panel is one task; x is the horizon (longer = harder),
y the fraction of seeds that solved it. Colour = architecture, line style and marker = flossing mode.
Hover a marker for its counts, click a legend entry to hide an architecture, click a table header to sort.</p>
{notes}
</header>
<main>
<section class="plots">{plots}</section>
<section class="tables">{tables}</section>
</main>
<script>{js}</script>
</body>
</html>
"""

_CSS = """
:root { --fg:#1d2330; --muted:#5b6475; --line:#dde1e8; --bg:#f6f7f9; --card:#fff; --bar:#cfe3f7; --accent:#1f5fa8; }
* { box-sizing: border-box; }
body { margin:0; padding:24px 32px 48px; font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;
       color:var(--fg); background:var(--bg); }
header, main { max-width:1400px; margin:0 auto; }
h1 { font-size:26px; margin:0 0 4px; }
h1 .sub { font-size:15px; font-weight:normal; color:var(--muted); margin-left:8px; }
h2 { font-size:18px; margin:28px 0 8px; }
.summary { margin:4px 0; font-size:15px; }
.howto { margin:6px 0 0; color:var(--muted); max-width:980px; }
.notes { margin:10px 0 0; padding:8px 12px 8px 28px; background:#fff6e0; border:1px solid #f0d9a0; border-radius:6px; color:#6b4e00; }
.empty { padding:24px; background:var(--card); border:1px solid var(--line); border-radius:8px; color:var(--muted); }
.legend { margin:18px 0 10px; padding:10px 14px; background:var(--card); border:1px solid var(--line); border-radius:8px; }
.lg-row { display:flex; flex-wrap:wrap; align-items:center; gap:6px 16px; margin:3px 0; }
.lg-head { font-weight:600; color:var(--muted); min-width:90px; font-size:12px; text-transform:uppercase; letter-spacing:.04em; }
.lg-arch, .lg-style { display:inline-flex; align-items:center; gap:6px; font:inherit; }
.lg-arch { background:none; border:1px solid transparent; border-radius:4px; padding:1px 6px; cursor:pointer; color:inherit; }
.lg-arch:hover { border-color:var(--line); background:var(--bg); }
.lg-arch.off { opacity:.35; text-decoration:line-through; }
.thresh-sample { stroke:#888; stroke-width:1.2; stroke-dasharray:3 3; }
.panels { display:grid; grid-template-columns:repeat(auto-fill,minmax(520px,1fr)); gap:14px; }
svg.panel { width:100%; height:auto; background:var(--card); border:1px solid var(--line); border-radius:8px; }
svg.panel .ptitle { font-size:15px; font-weight:600; fill:var(--fg); }
svg.panel .plotbg { fill:#fbfcfd; }
svg.panel .grid { stroke:#e7eaef; stroke-width:1; }
svg.panel .thresh { stroke:#999; stroke-dasharray:3 3; }
svg.panel .axis { stroke:#8a93a3; stroke-width:1; }
svg.panel .tick { font-size:11px; fill:var(--muted); }
svg.panel .alabel { font-size:12px; fill:var(--muted); }
svg.panel .series.off { display:none; }
svg.panel .pt { cursor:help; }
svg.panel .pt:hover > * { stroke:#000; stroke-width:1.5; }
.tablewrap { overflow-x:auto; background:var(--card); border:1px solid var(--line); border-radius:8px; }
table { border-collapse:collapse; width:100%; font-size:13px; }
.tablewrap.compact { display:inline-block; max-width:100%; }
.tablewrap.compact table { width:auto; }
.tablewrap.compact td.num { min-width:9em; }
caption { caption-side:top; text-align:left; padding:8px 12px; color:var(--muted); }
th, td { padding:5px 10px; border-bottom:1px solid #eef0f3; white-space:nowrap; text-align:left; }
th { position:sticky; top:0; background:#eef2f7; cursor:pointer; user-select:none; font-weight:600;
     white-space:normal; vertical-align:bottom; min-width:4em; }
th:hover, th:focus { background:#dfe7f1; outline:none; }
th[aria-sort="ascending"]::after { content:" \\25B2"; font-size:10px; color:var(--accent); }
th[aria-sort="descending"]::after { content:" \\25BC"; font-size:10px; color:var(--accent); }
td.num { text-align:right; font-variant-numeric:tabular-nums; }
tbody tr:nth-child(even) { background:#fafbfc; }
tbody tr:hover { background:#eef5fd; }
"""

# Vanilla JS: numeric-aware sorting (raw numbers live in data-value; blanks sort last in both
# directions), legend toggles, and a marker attribute so a headless check can tell the JS ran.
_JS = """
(function () {
  "use strict";
  function key(td) {
    var v = td.getAttribute("data-value");
    return v === null ? td.textContent.trim() : v;
  }
  function sortBy(table, col, asc) {
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    var numeric = rows.every(function (r) {
      var v = key(r.cells[col]); return v === "" || !isNaN(Number(v));
    });
    rows.sort(function (a, b) {
      var x = key(a.cells[col]), y = key(b.cells[col]);
      if (x === "" || y === "") { return (x === "") - (y === ""); }
      var c = numeric ? Number(x) - Number(y) : x.localeCompare(y, undefined, {numeric: true});
      return asc ? c : -c;
    });
    rows.forEach(function (r) { body.appendChild(r); });
  }
  function wireTable(table) {
    var ths = table.tHead ? table.tHead.rows[0].cells : [];
    Array.prototype.forEach.call(ths, function (th, col) {
      function go() {
        var asc = th.getAttribute("aria-sort") !== "ascending";
        Array.prototype.forEach.call(ths, function (o) { o.removeAttribute("aria-sort"); });
        th.setAttribute("aria-sort", asc ? "ascending" : "descending");
        sortBy(table, col, asc);
      }
      th.addEventListener("click", go);
      th.addEventListener("keydown", function (ev) {
        if (ev.key === "Enter" || ev.key === " ") { ev.preventDefault(); go(); }
      });
    });
  }
  function wireLegend() {
    var buttons = document.querySelectorAll(".lg-arch");
    Array.prototype.forEach.call(buttons, function (btn) {
      btn.addEventListener("click", function () {
        var arch = btn.getAttribute("data-arch");
        var off = btn.classList.toggle("off");
        var series = document.querySelectorAll("svg.panel .series");
        Array.prototype.forEach.call(series, function (g) {
          if (g.getAttribute("data-arch") === arch) { g.classList.toggle("off", off); }
        });
      });
    });
  }
  function init() {
    var tables = document.querySelectorAll("table.sortable");
    Array.prototype.forEach.call(tables, wireTable);
    wireLegend();
    var board = document.getElementById("board");
    var root = document.documentElement;
    root.setAttribute("data-board-rows", board ? String(board.tBodies[0].rows.length) : "0");
    root.setAttribute("data-leaderboard-js", "ready");
  }
  // The script sits at the end of <body>, so the DOM it wires is already parsed: run now,
  // not at DOMContentLoaded, so the page is sortable as soon as it paints.
  init();
})();
"""
