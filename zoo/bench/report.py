"""The tables of docs/results.md, generated from committed leaderboard folders.

Every figure in docs/results.md sits in a block between ``<!-- table: KIND SUITE [TASK] -->``
and ``<!-- end table -->``, and is computed here from ``leaderboard/SUITE/runs.csv``; nothing
in a block is typed by hand. ``python -m zoo.bench.report docs/results.md`` rewrites the
blocks from the runs; ``--check`` exits 1 when the file and the runs disagree (a test does).

Kinds:

- ``summary SUITE``: runs per status, seeds, training steps, summed run time.
- ``success SUITE TASK``: success rate (successes / runs) per horizon and flossing mode,
  one row per (arch, horizon); one row per arch when the suite has one flossing mode.
- ``longest SUITE TASK``: the longest horizon solved by at least half the seeds, per arch
  and flossing mode (the leaderboard's ``longest_horizon``).
- ``steps SUITE TASK``: median training steps to success over the successful runs.
- ``metric SUITE TASK``: median final metric per arch (rows) and horizon (columns).
- ``trend SUITE TASK [ARCH_A ARCH_B]``: per arch and flossing mode, Kendall's tau between the
  horizon and the final metric (does it worsen as the horizon grows?), with Holm's adjustment;
  with two architectures, the same for the ratio of their metrics on the same seed (does the
  gap widen?).
- ``lyapunov SUITE``: medians of lambda_1 at initialisation, after pre-flossing (the start
  of training) and after training, and of the norm of d loss / d h0 before and after training.
- ``h50 SUITE [TASK ...]``: the scoreboard: h50 (the horizon where the success rate crosses
  0.5) with its bootstrap 95% interval, per arch (rows) and task x flossing mode (columns).
- ``paired SUITE``: each flossing mode against none on paired seeds, pooled over horizons per
  (arch, task): both success rates with their Wilson 95% intervals, the discordant pairs and
  the exact McNemar p-value with Holm's adjustment; then every pair pooled per mode.
- ``shift SUITE QUANTITY [TASK ...]``: each flossing mode against none on paired runs, per (arch,
  task): the median paired difference of a quantity (``steps`` to success where both solved,
  ``lambda1_start``/``lambda1_end`` as |lambda_1|, ``gradient_start`` as log10 of dL/dh0) with
  its distribution-free interval and the sign test, Holm-adjusted.
- ``versus SUITE TASK ARCH_A ARCH_B [MODE]``: two architectures on the same seeds, per horizon
  and pooled: discordant pairs, the exact McNemar p-value, the difference in success rate; a side
  ``ARCH:MODE`` takes that arch in another flossing mode (a schedule against its compute-matched
  control: ``rnn:pre+during rnn_pre1500:pre``).
- ``tracks SUITE OTHER [TASK ...]``: each architecture in SUITE against itself in OTHER (a track
  of the same tasks: parameter-matched, stacked), paired by task, horizon and seed (same data),
  pooled over horizons per (arch, task): both success rates, the discordant pairs, the exact
  McNemar p-value with Holm's adjustment over the table; flossing ``none`` only.
- ``tuning SUITE``: the learning rate chosen per (arch, task, flossing) from ``tuning.csv``, what its
  tuning runs showed on the validation split, and whether it sits at an edge of the grid.
- ``params SUITE [OTHER ...]``: trainable parameters per architecture (the range over its runs)
  in SUITE and in each OTHER track, side by side.

SUITE is a folder under ``--leaderboards`` (default ``leaderboard/``),
else a path from the repository root (``reruns/anchors``).
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable
from pathlib import Path

from zoo.bench.claims import paired, shift, tracks, trend, versus
from zoo.bench.tables import (
    ROOT,
    Source,
    h50,
    longest,
    lyapunov,
    metric,
    params,
    steps,
    success,
    summary,
    tuning,
)

BLOCK = re.compile(r"(<!-- table: (?P<spec>[^>]*?) -->\n)(?P<body>.*?)(<!-- end table -->)", re.DOTALL)


KINDS: dict[str, Callable[..., str]] = {
    "summary": summary, "success": success, "longest": longest,
    "steps": steps, "metric": metric, "lyapunov": lyapunov,
    "h50": h50, "paired": paired, "shift": shift, "trend": trend, "versus": versus, "tracks": tracks, "tuning": tuning,
    "params": params,
}  # fmt: skip


def render_block(spec: str, root: Path) -> str:
    """The markdown of one block, e.g. ``success flossing_paper delayed_copy``."""
    kind, suite, *rest = spec.split()
    if kind not in KINDS:
        raise ValueError(f"unknown table kind {kind!r} in {spec!r}; known: {', '.join(KINDS)}")
    return KINDS[kind](Source.named(suite, root), *rest)


def render(text: str, root: Path) -> str:
    """`text` with every table block recomputed from the leaderboard folders under `root`."""
    return BLOCK.sub(lambda m: m.group(1) + render_block(m.group("spec"), root) + m.group(4), text)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m zoo.bench.report", description=__doc__.split("\n\n")[0])
    p.add_argument("document", type=Path, help="markdown file with table blocks (docs/results.md)")
    p.add_argument("--leaderboards", type=Path, default=ROOT / "leaderboard", help="folder of suite folders")
    p.add_argument("--check", action="store_true", help="exit 1 if the document is not up to date")
    args = p.parse_args(argv)
    try:
        text = args.document.read_text()
        new = render(text, args.leaderboards)
    except (OSError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.check:
        if new != text:
            print(f"{args.document} is out of date with {args.leaderboards}: "
                  f"run python -m zoo.bench.report {args.document}",
                  file=sys.stderr)
            return 1
        return 0
    args.document.write_text(new)
    print(f"updated {len(BLOCK.findall(text))} tables in {args.document}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
