"""Where runs execute: one explicit table, each entry imported only when chosen.

An executor is `run(pending, out_dir, record, *, suite, **options)`: it trains every group of
`pending` (`zoo.bench.group.Group`, each one program; in any order, anywhere) and calls
`record(spec, outcome)` in the calling process for each run of a group as the group finishes
(outcomes as `runner.execute_group` returns them). `prepare(options)`, if given,
runs first in the driver, before jax starts a backend.
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable

from zoo.bench.errors import ConfigError


@dataclasses.dataclass(frozen=True)
class Executor:
    run: str  # "module:function"
    prepare: str | None = None  # "module:function", called with the options dict
    help: str = ""

    def load(self, attr: str = "run") -> Callable:
        module, _, name = getattr(self, attr).partition(":")
        return getattr(importlib.import_module(module), name)


EXECUTORS: dict[str, Executor] = {
    "local": Executor("zoo.bench.local:run_local",
                      help="runs in this process, or in --workers processes (default)"),
    "ray": Executor("zoo.bench.ray_executor:run_ray", prepare="zoo.bench.ray_executor:prepare",
                    help="each group of runs a Ray task, on this machine or a cluster "
                         "(pip install -e '.[ray]'; docs/ray.md)"),
}


def get_executor(name: str) -> Executor:
    """The table's entry for `name`, or a one-line error listing the executors."""
    if name not in EXECUTORS:
        raise ConfigError(f"--executor: unknown executor {name!r}; allowed: {', '.join(sorted(EXECUTORS))}")
    return EXECUTORS[name]
