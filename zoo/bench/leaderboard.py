"""Write a result folder's ``leaderboard.csv``, ``horizons.csv`` and ``leaderboard.html`` from
its ``runs.csv`` (and, for the page's learning curves, its ``curves.csv``).

The numbers come from `aggregate` (pure pandas), the page from `render`; this module does the
file I/O, atomically, because a browser or a CI step may read the files while the harness is
still appending runs and re-writing the board.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from zoo.bench.aggregate import BOARD_COLUMNS, aggregate, horizons, order_flossing
from zoo.bench.curves import CURVES_CSV, read_curves
from zoo.bench.labels import fmt_num
from zoo.bench.record import COLUMNS as RUNS_COLUMNS
from zoo.bench.record import read_runs
from zoo.bench.render import render_html

__all__ = ["BOARD_COLUMNS", "RUNS_COLUMNS", "aggregate", "order_flossing", "read_runs", "render_html",
           "write_leaderboard", "write_page"]


def write_leaderboard(out_dir: Path, *, title: str | None = None, description: str = "") -> tuple[Path, Path]:
    """Read ``out_dir/runs.csv``; write ``leaderboard.csv``, ``horizons.csv`` and ``leaderboard.html``
    atomically. (``tuning.csv`` is the runner's: it chooses from the suite's own tuning runs.)

    The page's scoreboard is the horizons.csv written here; its learning curves are
    ``out_dir/curves.csv``'s rows of the runs in runs.csv (the runner appends them, tuning runs'
    too); without that file the page says the curves are not available."""
    out_dir = Path(out_dir)
    runs = read_runs(out_dir / "runs.csv")
    board = aggregate(runs)
    if title is None:
        suites = sorted({s for s in runs["suite"] if s})
        title = " + ".join(suites) if suites else out_dir.resolve().name
    csv_path = out_dir / "leaderboard.csv"
    html_path = out_dir / "leaderboard.html"
    # Integral horizons/steps print as "100", not "100.0"; others keep full precision (repr).
    text = board.to_csv(index=False, float_format=lambda x: fmt_num(x, precise=True), lineterminator="\n")
    _atomic_write(csv_path, text)
    breaks = horizons(runs)
    _atomic_write(out_dir / "horizons.csv", breaks.to_csv(
        index=False, float_format=lambda x: fmt_num(x, precise=True), lineterminator="\n"))
    curves_path = out_dir / CURVES_CSV
    curves = read_curves(curves_path) if curves_path.exists() else None
    _atomic_write(html_path, render_html(runs, board, title, description, breaks=breaks, curves=curves))
    return csv_path, html_path


def write_page(runs, path: Path, *, title: str, description: str = "") -> Path:
    """Write the page of any runs DataFrame (e.g. two folders' runs side by side) to `path`."""
    _atomic_write(Path(path), render_html(runs, aggregate(runs), title, description))
    return Path(path)


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
