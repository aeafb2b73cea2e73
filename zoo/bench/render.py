"""The leaderboard page: a scoreboard of breaking horizons, small-multiple plots with interval
bands (`zoo.bench.plots`), sortable tables and on-demand learning curves, around the template
in page/.

The page has no external dependencies at all (inline CSS, JS and SVG), so it opens from disk
on an offline machine and can be attached to a CI run as one file. Only the learning curves are
drawn by the page's JS, on a click, from compact JSON that the browser parses only then.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from functools import cache
from importlib import resources

import pandas as pd

from zoo.bench.aggregate import (
    NOT_ASKED,
    NOT_BRIDGED,
    NOT_RUN,
    finished,
    longest_table,
    modes_by_task,
    order_archs,
    order_flossing,
    scoreboard,
)
from zoo.bench.aggregate import horizons as horizon_table
from zoo.bench.labels import esc, fmt_num, h50_text, horizon_label, horizon_text
from zoo.bench.plots import arch_colors, legend, mode_colors, task_block
from zoo.bench.record import STATUSES, normalise


@cache
def _asset(name: str) -> str:
    return (resources.files("zoo.bench") / "page" / name).read_text(encoding="utf-8")


# --------------------------------------------------------------------------------------------
# The scoreboard: h50 with its interval per architecture x task, flossing modes side by side
# --------------------------------------------------------------------------------------------


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
        f"h50 {fmt_num(row.h50)}, bootstrap 95% interval {fmt_num(row.h50_low)} to {fmt_num(row.h50_high)}",
        (f"grid: {row.n_horizons} horizons from {fmt_num(row.h_min)} to {fmt_num(row.h_max)}; "
         f"bracketed: {'yes' if row.bracketed else 'no'}"),
    ]
    if not math.isnan(row.p_mcnemar):
        lines.append(f"McNemar against none on the same seeds, pooled over horizons: p = {row.p_mcnemar:.3g}")
    return "\n".join(lines)


def _h50_cell(row) -> str:
    tip = esc(_h50_tip(row))
    key = esc(_h50_sort_key(row))
    if not row.ran:
        return f'<td class="num h50 notrun" data-value="" title="{tip}">{esc(NOT_RUN)}</td>'
    value, interval = h50_text(row.h50, row.h50_low, row.h50_high, row.bracketed, row.h_min, row.h_max)
    kind = ("nofit" if math.isnan(row.h50) else "beyond" if math.isinf(row.h50) else "below" if row.h50 == 0
            else "crossing" if row.bracketed else "unbracketed")
    ci = f'<span class="ci">{esc(interval)}</span>' if interval else ""
    return (f'<td class="num h50 {kind}" data-value="{key}" title="{tip}"><span class="v">{esc(value)}</span>'
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
                   f'<span class="unit">{esc(horizon_label(task))}</span></th>')
        for i, mode in enumerate(modes):
            first = ' class="g0"' if i == 0 else ""
            sub.append(f'<th scope="col" data-col="{col}" tabindex="0"{first} '
                       f'title="{esc(f"h50 of {task} with flossing {mode}; click to sort")}">{esc(mode)}</th>')
            col += 1
    body = []
    for arch in order_archs(table["arch"]):
        row = [f'<td class="arch">{esc(arch)}</td>']
        for task, modes in columns.items():
            for i, mode in enumerate(modes):
                cell = _h50_cell(cells[(arch, task, mode)])
                row.append(cell.replace('<td class="', '<td class="g0 ', 1) if i == 0 else cell)
        body.append("<tr>" + "".join(row) + "</tr>")
    return (
        '<div class="tablewrap"><table class="sortable scoreboard" id="scoreboard">'
        f"<caption>{esc(SCOREBOARD_CAPTION)}</caption>"
        f"<thead><tr>{''.join(top)}</tr><tr>{''.join(sub)}</tr></thead>"
        "<tbody>\n" + "\n".join(body) + "\n</tbody></table></div>"
    )


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
        return f'<td class="num {cls}" data-value="">{esc(value)}</td>'
    if isinstance(value, str):
        return f"<td>{esc(value)}</td>"
    text = fmt_num(value)
    if not text:
        return '<td class="num" data-value="">\u2013</td>'  # en dash for missing
    if col == "success_rate":  # the rate as a bar behind its number (page.css reads --p)
        pct = max(0.0, min(1.0, float(value))) * 100
        return (f'<td class="num rate" data-value="{fmt_num(value, digits=6)}" style="--p:{pct:.1f}%">'
                f"{float(value):.2f}</td>")
    shown = text
    if col == "horizon" or col == "longest_horizon" or col.startswith("flossing: "):
        shown = horizon_text(task, float(value))
    number = fmt_num(value, digits=6) if math.isfinite(value) else f"{float(value)}".replace("inf", "Infinity")
    key = "" if shown == text and math.isfinite(value) else f' data-value="{esc(number)}"'
    return f'<td class="num"{key}>{esc(shown)}</td>'


def _wrap_name(name: str) -> str:
    # Long snake_case headers may break after an underscore, so 14 columns fit a laptop screen.
    return esc(name).replace("_", "_<wbr>")


def _table(df: pd.DataFrame, table_id: str, caption: str, *, compact: bool = False, cfg: bool = False) -> str:
    """A sortable table; with `cfg`, each row carries its board row (data-cfg) for the curves viewer."""
    head = "".join(
        f'<th scope="col" data-col="{i}" tabindex="0" title="{esc(_COLUMN_HELP.get(c, "click to sort"))}">'
        f"{_wrap_name(c)}</th>"
        for i, c in enumerate(df.columns)
    )
    body = "\n".join(
        (f'<tr data-cfg="{i}">' if cfg else "<tr>")
        + "".join(_cell(v, c, getattr(row, "task", "")) for v, c in zip(row, df.columns)) + "</tr>"
        for i, row in enumerate(df.itertuples(index=False))
    )
    return (
        f'<div class="tablewrap{" compact" if compact else ""}"><table class="sortable" id="{esc(table_id)}">'
        f"<caption>{esc(caption)}</caption><thead><tr>{head}</tr></thead>"
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
        f"{fin['arch'].nunique()} architectures \u00b7 {fin['task'].nunique()} tasks \u00b7 {esc(status)}"
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
    notes = "".join(f"<li>{esc(n)}</li>" for n in _skipped_notes(runs))
    payload = curves_payload(board, runs, curves)
    if len(board):
        score = "<h2>Scoreboard: the horizon where each architecture breaks</h2>" + _scoreboard_html(board, breaks)
        blocks = "\n".join(task_block(t, board[board["task"] == t], acolors, mcolors) for t in tasks)
        plots = (
            "<h2>Success rate against horizon</h2>"
            + legend(order_archs(board["arch"]), order_flossing(board["flossing"]), acolors, mcolors)
            + blocks
        )
        tables = (
            "<h2>Longest horizon bridged</h2>"
            + _table(longest_table(board), "longest",
                     f"largest horizon with success rate \u2265 0.5; \u201c{NOT_BRIDGED}\u201d: ran, never bridged; "
                     f"\u201c{NOT_RUN}\u201d: no runs; "
                     f"\u201c{NOT_ASKED}\u201d: the suite did not ask for this flossing mode on this task",
                     compact=True)
            + "<h2>Full leaderboard</h2>"
            + _table(board, "board",
                     "one row per (arch, task, horizon, flossing); click a header to sort, "
                     "a row for its learning curves", cfg=True)
        )
    else:
        score = ""
        plots = '<p class="empty">No finished runs yet \u2014 nothing to plot.</p>'
        tables = "<h2>Full leaderboard</h2>" + _table(board, "board", "no finished runs yet")
    return _asset("page.html").format(
        title=esc(title),
        description=f'<p class="about">{esc(description)}</p>' if description else "",
        summary=_summary(runs, board),
        curves_note=esc(CURVES_NOTE[payload is not None]),
        notes=f'<ul class="notes">{notes}</ul>' if notes else "",
        scoreboard=score,
        plots=plots,
        tables=tables,
        data=_json_script("curves-data", payload),
        css=_asset("page.css"),
        js=_asset("page.js"),
    )
