"""The shipped suites at a glance, for --help: size from the TOML alone, time from the reference."""

from __future__ import annotations

import csv
import tomllib

from zoo.bench.outdir import reference_folder
from zoo.bench.suite import CONFIG_DIR, list_suites
from zoo.bench.tuning import TUNING_RUNS_CSV


def _n_horizons(horizons) -> int:
    if isinstance(horizons, dict):  # {from, to, count}: the grid after rounding
        from zoo.bench.stats import horizon_grid

        try:
            integer = all(isinstance(horizons.get(k), int) for k in ("from", "to"))
            return len(horizon_grid(horizons, integer=integer))
        except (TypeError, ValueError):
            return 0
    return len(horizons)


def count_runs(raw: dict) -> int | None:
    """Runs a parsed suite expands to, tuning runs included (None when it runs every registered
    architecture)."""
    seeds = raw.get("seeds", 1)
    tuning = raw.get("tuning") if isinstance(raw.get("tuning"), dict) else None
    total = 0
    for exp in raw.get("experiments", []):
        archs = exp.get("archs", raw.get("archs"))  # a list, or the [archs.NAME] tables
        if archs is None:
            return None
        modes = exp.get("flossing", raw.get("flossing", ["none"]))
        recipes = raw.get("archs") if isinstance(raw.get("archs"), dict) else {}
        # each architecture's modes: the experiment's, narrowed by its recipe's `flossing`
        arch_modes = [[m for m in modes if m in (recipes.get(a) or {}).get("flossing", modes)] for a in archs]
        total += _n_horizons(exp.get("horizons", [])) * sum(map(len, arch_modes)) * seeds
        if tuning:
            at = tuning.get("horizons")
            if isinstance(at, dict) and not {"from", "to", "count"} & set(at):
                at = at.get(exp.get("task"))
            n = _n_horizons(exp.get("horizons", []) if at is None else at)
            tuned = tuning.get("flossing")  # one mode tuned, the others take its rate
            cells = sum(len([m for m in ms if tuned is None or m in tuned]) for ms in arch_modes)
            total += n * cells * len(tuning.get("lrs", [])) * len(tuning.get("seeds", []))
    return total


def _reference_hours(name: str) -> float | None:
    folder = reference_folder(name)
    if folder is None:
        return None
    tuning = folder / TUNING_RUNS_CSV  # the tuning runs are part of the suite's cost
    try:
        seconds = _summed_seconds(folder / "runs.csv") + (_summed_seconds(tuning) if tuning.exists() else 0.0)
    except (OSError, ValueError):
        return None
    return seconds / 3600


def _summed_seconds(path) -> float:
    with open(path, newline="") as f:
        return sum(float(r.get("wall_time_s") or 0) for r in csv.DictReader(f))


def describe_suites() -> list[str]:
    """One line per shipped suite: name, runs, the reference's summed run time, description."""
    names = list_suites()
    lines, width = [], max(map(len, names), default=0)
    for name in names:
        try:
            raw = tomllib.loads((CONFIG_DIR / f"{name}.toml").read_text())
        except (OSError, tomllib.TOMLDecodeError):
            continue
        runs = count_runs(raw)
        hours = _reference_hours(name)
        time = f"{hours:.1f} h of run time (divide by --workers)" if hours is not None else "no reference"
        about = raw.get("description", "").split(".")[0][:72]
        extra = " + bracket rounds" if "bracket" in raw else ""  # their number depends on the outcomes
        lines.append(f"{name:<{width}} {runs if runs is not None else '?':>5} runs{extra}; {time}. {about}")
    return lines
