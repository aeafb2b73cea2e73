"""What one run is: its training settings, its spec, the suite of specs, and the one place
a run's task and model are built from its spec."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import Any

MAX_INT = 2**31 - 1  # steps are folded into PRNG keys and scanned over as int32


@dataclasses.dataclass(frozen=True)
class TrainSettings:
    """How one run trains (the `[defaults]` table, overridable per experiment).

    The checks below are the schema of those tables: the suite reader derives each key's
    type from the annotation and its allowed range by asking these checks.
    """

    hidden_size: int = 32
    steps: int = 1000
    lr: float = 1e-3
    eval_every: int = 50
    clip: float = 0.03  # per-array gradient-norm clipping, as in the flossing paper; 0 = off
    checkpoint_every: int = 4  # evaluations between checkpoints

    def __post_init__(self) -> None:
        for name in ("hidden_size", "steps", "eval_every", "checkpoint_every"):
            if not 1 <= getattr(self, name) <= MAX_INT:
                raise ValueError(f"TrainSettings.{name} must be in [1, {MAX_INT}], got {getattr(self, name)}")
        if not self.lr > 0:
            raise ValueError(f"TrainSettings.lr must be positive, got {self.lr}")
        if not self.clip >= 0:
            raise ValueError(f"TrainSettings.clip must be >= 0, got {self.clip}")


@dataclasses.dataclass(frozen=True)
class RunSpec:
    """One (architecture, task, horizon, flossing mode, seed) and everything it trains with."""

    suite: str
    arch: str
    task: str
    horizon: float  # as the suite file wrote it (int or float): it names the run
    flossing: str
    seed: int
    train: TrainSettings
    task_options: tuple[tuple[str, Any], ...] = ()
    arch_options: tuple[tuple[str, Any], ...] = ()
    flossing_options: tuple[tuple[str, Any], ...] = ()

    @property
    def run_id(self) -> str:
        """Readable and unique: a config change gives a new id, so stale results are never reused."""
        digest = hashlib.sha1(
            json.dumps(self.config_dict(), sort_keys=True, default=str).encode()
        ).hexdigest()[:8]
        return f"{self.arch}-{self.task}-h{self.horizon:g}-{self.flossing}-s{self.seed}-{digest}"

    @property
    def task_horizon(self) -> int | float:
        """The horizon as the task takes it: a whole number as an int (delays count steps)."""
        return int(self.horizon) if float(self.horizon).is_integer() else float(self.horizon)

    def config_dict(self) -> dict[str, Any]:
        """Everything that determines the run's result (the suite name does not)."""
        d = dataclasses.asdict(self)
        del d["suite"]
        return d


@dataclasses.dataclass(frozen=True)
class Suite:
    """A validated suite: its name, description and the runs it expands to."""

    name: str
    description: str
    runs: tuple[RunSpec, ...]
    plugins: tuple[str, ...] = ()


def build_task(spec: RunSpec):
    """The run's task (raises tasks.DatasetUnavailable when its data is not on this machine)."""
    import tasks
    from zoo.bench.worker import absl_quiet

    with absl_quiet():  # tfds's notes on a data folder it looked into, which the user never set up
        return tasks.create_task(spec.task, horizon=spec.task_horizon, **dict(spec.task_options))


def build_model(spec: RunSpec, task):
    """The run's architecture, initialised from its seed."""
    from flax import nnx

    import zoo

    return zoo.create_architecture(
        spec.arch,
        input_size=task.input_size,
        hidden_size=spec.train.hidden_size,
        output_size=task.output_size,
        rngs=nnx.Rngs(spec.seed),
        **dict(spec.arch_options),
    )
