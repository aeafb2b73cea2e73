"""Vectorised run groups: which runs train together as one `jax.vmap`ped program, and how many.

Runs with equal `zoo.bench.train.group_key` (one compiled shape, the same pauses; seeds,
learning rates, flossing `none` and `pre`, and horizons where the task's shape does not change
with them) can share a program. `plan_groups` splits them into groups of at most `size`,
planned over all the runs of a suite's phase, finished ones included, so that a group and the
size of its program stay the same when a suite resumes: a member's numbers depend on the
program's size at float-rounding level (XLA's batched kernels), and a resumed run reproduces
the uninterrupted one exactly. Members finished earlier are padding in the program.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Hashable, Sequence

from zoo.bench.errors import ConfigError
from zoo.bench.spec import RunSpec

# Runs per program by jax backend, measured with `python benchmarks/groups.py` (benchmarks/
# results.md, "Vectorised run groups"). On the 2-core CPU, 8 seeds as one program against one
# at a time, hidden 32, T 100, batch 16: rnn 1.3-1.75x, lstm 1.03x, lru 1.00x, gru 0.73x; at
# hidden 64 and 80 every architecture measured slower grouped (0.5-0.8x). A suite mixes
# architectures, so the CPU default stays one run per program; `--group 8` pays for suites of
# tanh RNNs at small sizes. An accelerator trains many small recurrences in the time of one:
# 64 is the target there, to be confirmed by `python benchmarks/groups.py --gpu`
# (not measured yet: no GPU).
DEFAULT_GROUP = {"cpu": 1, "gpu": 64, "cuda": 64, "rocm": 64, "tpu": 64}


def default_group_size(backend: str | None = None) -> int:
    """Runs per program on `backend` (default: jax's), from the measured table above."""
    if backend is None:
        import jax

        backend = jax.default_backend()
    return DEFAULT_GROUP.get(backend, 1)


def check_group_size(size: int) -> int:
    """`size` if it is a positive integer, else a one-line ConfigError."""
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise ConfigError(f"group must be a positive integer (runs per vectorised program; 1 = one "
                         f"run per program), got {size!r}")
    return size


@dataclasses.dataclass(frozen=True)
class Group:
    """Runs to train as one program now, and the size of that program."""

    specs: tuple[RunSpec, ...]  # the members still to train
    size: int  # the planned group's members (finished ones are padding): the program's size

    @property
    def label(self) -> str:
        first = self.specs[0].run_id
        return first if len(self.specs) == 1 else f"{first} (+{len(self.specs) - 1} in its group)"


def plan_groups(specs: Sequence[RunSpec], size: int) -> list[tuple[RunSpec, ...]]:
    """`specs` split into groups of at most `size` runs of equal `group_key`, as even as possible.

    Deterministic: the same specs and size give the same groups, whatever their order.
    """
    check_group_size(size)
    by_key: dict[Hashable, list[RunSpec]] = {}
    keys = _PlanKeys() if size > 1 else lambda spec: spec.run_id  # one run per program: no tasks to build
    for spec in specs:
        by_key.setdefault(keys(spec), []).append(spec)
    groups = []
    for members in by_key.values():
        members.sort(key=lambda r: (r.horizon, r.flossing, r.train.lr, r.seed, r.run_id))
        n_groups = math.ceil(len(members) / size)
        base, extra = divmod(len(members), n_groups)
        start = 0
        for i in range(n_groups):
            end = start + base + (i < extra)
            groups.append(tuple(members[start:end]))
            start = end
    return sorted(groups, key=lambda g: (g[0].arch, g[0].task, g[0].arch_options, g[0].task_options, g[0].run_id))


def pending_groups(specs: Sequence[RunSpec], pending: set[str], size: int) -> list[Group]:
    """The groups of `plan_groups(specs, size)` that hold runs in `pending` (run ids), with only those."""
    found = []
    for planned in plan_groups(specs, size):
        todo = tuple(r for r in planned if r.run_id in pending)
        if todo:
            found.append(Group(todo, len(planned)))
    return found


class _PlanKeys:
    """`group_key` of a spec, building one task per (task, options, horizon) to ask its shape."""

    def __init__(self) -> None:
        self._tasks: dict[Hashable, object] = {}

    def __call__(self, spec: RunSpec) -> Hashable:
        from zoo.bench.train import group_key

        task = self._task(spec)
        if task is None:  # no data here, or the task cannot be built: its run goes alone
            return ("alone", spec.run_id)
        return group_key(spec, task)

    def _task(self, spec: RunSpec):
        import tasks

        from zoo.bench.spec import build_task

        where = (spec.task, spec.task_options, spec.horizon)
        if where not in self._tasks:
            try:
                task = build_task(spec)
            except Exception:  # noqa: BLE001  (the run reports it when it runs)
                task = None
            # A task that keeps the default static_key (unique per instance) shares no compiled code.
            if task is not None and type(task).static_key is tasks.Task.static_key:
                task = None
            self._tasks[where] = task
        return self._tasks[where]
