"""Horizon grids that bracket each architecture's h50: the `[bracket]` phase of a suite.

A grid fixed in advance can end before an architecture stops bridging (every horizon bridged:
its h50 reads "> H") or start after it (none bridged: "< H"); its h50 is then a bound, not an
estimate. A suite's ``[bracket]`` table extends, after the reported runs, the grid of every
(arch, task) whose success curve is open at an end, one horizon `factor` beyond that end, for
at most `rounds` rounds:

- open above: some flossing mode still bridges (success rate >= 0.5) the largest horizon run;
- open below: some mode does not bridge the smallest.

The new horizon's runs are the end horizon's runs (every seed, flossing mode and tuned rate:
paired comparisons stay paired) at the new horizon, recorded in runs.csv like any other, so the
scoreboard's fit sees one grid. Integer horizons (delays) stay integers. An end is left open
when the task does not admit the next horizon (a delay no shorter than the sequence, a horizon
<= 0) or when some of its runs have not finished. Each round is computed from the rows of the
runs before it, so a resumed suite plans the same rounds.

With `stretch_seq_len = true`, a horizon up that the sequence cannot hold is run on a sequence
`factor` times longer (the task option `seq_len`, the task's default where the suite sets none):
delay and sequence grow together, so the end's task keeps its proportions (the share of steps
that are targets, for instance) at the cost of longer runs.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from zoo.bench.errors import ConfigError
from zoo.bench.spec import RunSpec, build_task

__all__ = ["Bracket", "next_round", "open_ends", "parse_bracket", "plan_rounds", "rounds_from_rows"]


@dataclasses.dataclass(frozen=True)
class Bracket:
    """A validated [bracket] table."""

    rounds: int
    factor: float = 4.0
    stretch_seq_len: bool = False  # a horizon up that the sequence cannot hold: the sequence grows too


def parse_bracket(table: Any, where: str) -> Bracket:
    """The [bracket] table checked: one-line errors naming the key and what is allowed."""
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: must be a table with rounds and optionally factor and stretch_seq_len, "
                          f"got {table!r}")
    for key in table:
        if key not in ("factor", "rounds", "stretch_seq_len"):
            raise ConfigError(f"{where}: unknown key {key!r}; allowed: factor, rounds, stretch_seq_len")
    rounds = table.get("rounds")
    if isinstance(rounds, bool) or not isinstance(rounds, int) or rounds < 1:
        raise ConfigError(f"{where}.rounds: must be an integer >= 1 (extensions per grid end), got {rounds!r}")
    factor = table.get("factor", 4.0)
    if isinstance(factor, bool) or not isinstance(factor, (int, float)) or not math.isfinite(factor) or factor <= 1:
        raise ConfigError(f"{where}.factor: must be a number > 1 (the next horizon is the end's times or over "
                          f"it), got {factor!r}")
    stretch = table.get("stretch_seq_len", False)
    if not isinstance(stretch, bool):
        raise ConfigError(f"{where}.stretch_seq_len: must be true or false, got {stretch!r}")
    return Bracket(rounds=rounds, factor=float(factor), stretch_seq_len=stretch)


def open_ends(rates: Mapping[tuple[str, str, str, float], float]) -> dict[tuple[str, str], tuple[bool, bool]]:
    """Per (arch, task): whether its curve is open (below, above), from the success rate of every
    (arch, task, flossing, horizon). Every mode is read at the (arch, task)'s own grid ends."""
    from zoo.bench.aggregate import BRIDGED_RATE  # here: the suite reader imports this module, not scipy

    grids: dict[tuple[str, str], set[float]] = {}
    for arch, task, _, horizon in rates:
        grids.setdefault((arch, task), set()).add(horizon)
    ends = {}
    for (arch, task), grid in grids.items():
        low, high = min(grid), max(grid)
        at = lambda h: [r for (a, t, _, g), r in rates.items() if (a, t, g) == (arch, task, h)]  # noqa: E731
        ends[(arch, task)] = (any(r < BRIDGED_RATE for r in at(low)), any(r >= BRIDGED_RATE for r in at(high)))
    return ends


def _beyond(edge: float, factor: float, up: bool) -> float | None:
    """The next horizon past `edge`; integers stay integers. None when there is none (<= 0, or
    rounding gives the edge back)."""
    value = edge * factor if up else edge / factor
    if isinstance(edge, int):
        value = round(value)
    return value if value > 0 and value != edge else None


def _admitted(spec: RunSpec) -> bool:
    """Whether the task takes the spec's horizon and options (data availability aside)."""
    import tasks

    try:
        build_task(spec)
    except tasks.DatasetUnavailable:
        return True  # recorded as skipped, with the reason, like the suite's other runs
    except (ValueError, TypeError):
        return False
    return True


def _longer_sequence(spec: RunSpec, factor: float) -> RunSpec | None:
    """`spec` (a run the task admits) on a sequence `factor` times longer; None for a task
    without a whole-number `seq_len`, or whose data is not here to ask."""
    import tasks

    options = dict(spec.task_options)
    if "seq_len" not in options:
        try:
            options["seq_len"] = getattr(build_task(spec), "seq_len", None)
        except tasks.DatasetUnavailable:
            return None
    if isinstance(options["seq_len"], bool) or not isinstance(options["seq_len"], int):
        return None
    options["seq_len"] = round(options["seq_len"] * factor)
    return dataclasses.replace(spec, task_options=tuple(sorted(options.items())))


def next_round(specs: Sequence[RunSpec], rows: Mapping[str, Mapping[str, str]], bracket: Bracket,
               admitted: Callable[[RunSpec], bool] = _admitted) -> list[RunSpec]:
    """The runs of the next round: for every (arch, task) of `specs` whose runs have all finished
    in `rows` (runs.csv by run_id) and whose curve is open at an end, its runs at that end moved to
    the horizon `factor` beyond it, when the task admits it (upward with `stretch_seq_len`: on a
    sequence `factor` times longer where the task's own does not hold it)."""
    by_pair: dict[tuple[str, str], list[RunSpec]] = {}
    for spec in specs:
        by_pair.setdefault((spec.arch, spec.task), []).append(spec)
    out: list[RunSpec] = []
    for pair, pair_specs in by_pair.items():
        finished = [(s, rows[s.run_id]) for s in pair_specs if s.run_id in rows]
        if len(finished) < len(pair_specs):
            continue  # not every run has finished: no decision on partial data
        outcomes: dict[tuple[str, str, str, float], list[bool]] = {}
        for spec, row in finished:
            if row["status"] != "skipped":
                outcomes.setdefault((*pair, spec.flossing, spec.horizon), []).append(row["status"] == "solved")
        if not outcomes:
            continue
        below, above = open_ends({k: sum(v) / len(v) for k, v in outcomes.items()})[pair]
        horizons = [s.horizon for s in pair_specs]
        for is_open, up, edge in ((below, False, min(horizons)), (above, True, max(horizons))):
            new = _beyond(edge, bracket.factor, up) if is_open else None
            if new is None:
                continue
            at_edge = [s for s in pair_specs if s.horizon == edge]
            moved = [dataclasses.replace(s, horizon=new) for s in at_edge]
            if up and bracket.stretch_seq_len and not admitted(moved[0]):
                longer = _longer_sequence(at_edge[0], bracket.factor)  # the task is built once per edge
                moved = ([] if longer is None
                         else [dataclasses.replace(s, task_options=longer.task_options) for s in moved])
            if moved and admitted(moved[0]):
                out.extend(moved)
    return out


def plan_rounds(specs: Sequence[RunSpec], rows: Callable[[], Mapping[str, Mapping[str, str]]], bracket: Bracket,
                admitted: Callable[[RunSpec], bool] = _admitted) -> Iterator[list[RunSpec]]:
    """Each round's runs, planned when the caller asks for it from `rows()` (runs.csv by run_id)
    as it is then, from the reported `specs` and the rounds before it. `zoo.bench.runner` runs each
    round before asking for the next; `rounds_from_rows` replays finished rows: the same rounds."""
    current = list(specs)
    for _ in range(bracket.rounds):
        extra = next_round(current, rows(), bracket, admitted)
        if not extra:
            return
        yield extra
        current += extra


def rounds_from_rows(specs: Sequence[RunSpec], rows: Mapping[str, Mapping[str, str]], bracket: Bracket,
                     admitted: Callable[[RunSpec], bool] = _admitted) -> list[list[RunSpec]]:
    """The rounds a suite with these reported `specs` planned, replayed from its finished `rows`."""
    return list(plan_rounds(specs, lambda: rows, bracket, admitted))
