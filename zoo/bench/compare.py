"""Compare two result folders cell by cell: which (arch, task, horizon, flossing) success rates
agree within their Wilson 95% intervals and which differ.

    python -m zoo.bench.compare runs/long_horizon leaderboard/long_horizon
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from zoo.bench.aggregate import GROUP_KEYS, aggregate
from zoo.bench.outdir import reference_folder
from zoo.bench.record import read_runs

__all__ = ["compare_folders", "compare_runs", "reference_folder", "summary_lines", "wilson"]

LEVEL = 0.95


def wilson(successes: int, n: int, level: float = LEVEL) -> tuple[float, float]:
    """Wilson score interval of a success rate (scipy's binomtest)."""
    from scipy.stats import binomtest

    ci = binomtest(int(successes), int(n)).proportion_ci(confidence_level=level, method="wilson")
    return float(ci.low), float(ci.high)


def compare_runs(mine: pd.DataFrame, reference: pd.DataFrame) -> pd.DataFrame:
    """One row per cell of either: counts, rates and intervals of both, and a verdict.

    `verdict` is "agree" when the two intervals overlap, "differ" when they do not, "only mine"
    or "only reference" when one side has no finished run of that cell.
    """
    cols = [*GROUP_KEYS, "n_runs", "successes", "success_rate"]
    a, b = aggregate(mine)[cols], aggregate(reference)[cols]
    table = a.merge(b, on=GROUP_KEYS, how="outer", suffixes=("_mine", "_ref"))
    for side in ("mine", "ref"):
        # n is NaN where the cell has no runs on this side; NaN > 0 is False.
        bounds = [wilson(k, n) if n > 0 else (float("nan"),) * 2
                  for k, n in zip(table[f"successes_{side}"], table[f"n_runs_{side}"])]
        table[f"ci_low_{side}"] = [lo for lo, _ in bounds]
        table[f"ci_high_{side}"] = [hi for _, hi in bounds]
    overlap = (table["ci_low_mine"] <= table["ci_high_ref"]) & (table["ci_low_ref"] <= table["ci_high_mine"])
    table["verdict"] = "differ"
    table.loc[overlap, "verdict"] = "agree"
    table.loc[table["n_runs_ref"].isna(), "verdict"] = "only mine"
    table.loc[table["n_runs_mine"].isna(), "verdict"] = "only reference"
    return table.sort_values(["task", "arch", "flossing", "horizon"], kind="stable").reset_index(drop=True)


def compare_folders(mine: Path, reference: Path) -> pd.DataFrame:
    """`compare_runs` of two result folders' runs.csv."""
    for folder in (mine, reference):
        if not (Path(folder) / "runs.csv").is_file():
            raise FileNotFoundError(f"{folder}: no runs.csv there")
    return compare_runs(read_runs(Path(mine) / "runs.csv"), read_runs(Path(reference) / "runs.csv"))


REFERENCE_SUFFIX = " (reference)"


def side_by_side(mine: Path, reference: Path) -> Path:
    """Write MINE/vs_reference.html: this folder's runs and the reference's, on one page.

    The reference's architectures appear as "NAME (reference)", on the tasks this folder ran,
    so a plugin is drawn beside the reference architectures."""
    from zoo.bench.leaderboard import write_page

    runs = read_runs(Path(mine) / "runs.csv")
    ref = read_runs(Path(reference) / "runs.csv")
    ref = ref[ref["task"].isin(set(runs["task"]))].assign(arch=lambda d: d["arch"] + REFERENCE_SUFFIX)
    return write_page(pd.concat([runs, ref], ignore_index=True), Path(mine) / "vs_reference.html",
                      title=f"{Path(mine).name} beside {reference}")


def _rate(row, side: str) -> str:
    return f"{row[f'success_rate_{side}']:.2f} ({int(row[f'successes_{side}'])}/{int(row[f'n_runs_{side}'])})"


def summary_lines(table: pd.DataFrame, mine: Path, reference: Path, *, show: int = 5) -> list[str]:
    """A few lines: how many shared cells agree, the ones that differ, what only one side has."""
    shared = table[table["verdict"].isin(["agree", "differ"])]
    differ = shared[shared["verdict"] == "differ"]
    lines = [f"compared with {reference}: {len(shared) - len(differ)} of {len(shared)} shared "
             f"(arch, task, horizon, flossing) cells agree within their Wilson {LEVEL:.0%} intervals, "
             f"{len(differ)} differ"]
    for _, row in differ.head(show).iterrows():
        lines.append(f"  differs: {row['arch']} {row['task']} horizon {row['horizon']:g} {row['flossing']}: "
                     f"{_rate(row, 'mine')} in {mine} vs {_rate(row, 'ref')}")
    if len(differ) > show:
        lines.append(f"  ... and {len(differ) - show} more (python -m zoo.bench.compare {mine} {reference})")
    only = table["verdict"].value_counts()
    extra = [f"{int(only[v])} {v.replace('mine', 'here')}" for v in ("only mine", "only reference") if v in only]
    if extra:
        lines.append(f"  cells in one folder only: {', '.join(extra)}")
    return lines


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m zoo.bench.compare", description=__doc__.split("\n\n")[0],
                                allow_abbrev=False)
    p.add_argument("mine", type=Path, help="a result folder (holding runs.csv)")
    p.add_argument("reference", type=Path, nargs="?",
                   help="the folder to compare with (default: leaderboard/NAME/ for a folder named NAME)")
    p.add_argument("--csv", type=Path, help="also write the cell-by-cell table here")
    p.add_argument("--page", action="store_true", help="also write MINE/vs_reference.html: both on one page")
    args = p.parse_args(argv)
    reference = args.reference or reference_folder(args.mine.resolve().name)
    if reference is None:
        print(f"error: no committed reference for {args.mine}; give the folder to compare with", file=sys.stderr)
        return 2
    try:
        table = compare_folders(args.mine, reference)
    except FileNotFoundError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.csv:
        table.to_csv(args.csv, index=False)
    print("\n".join(summary_lines(table, args.mine, reference, show=len(table))))
    if args.page:
        print(f"both on one page: {side_by_side(args.mine, reference)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
