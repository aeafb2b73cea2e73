"""What one run is: its training settings, its spec, the suite of specs, and the one place
a run's task and model are built from its spec."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import Any

MAX_INT = 2**31 - 1  # steps are folded into PRNG keys and scanned over as int32
# The choices of create_model and of the tasks' held-out splits (kept here as data so that
# reading a suite imports neither jax nor the tasks).
BLOCKS = ("glu", "mlp", "none")
READOUTS = ("linear", "mlp")
SPLITS = ("validation", "test")
SCHEDULES = ("constant", "cosine")


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
    # The model (zoo.architectures.stack.create_model): depth 1, no block, a linear readout is
    # the registered architecture itself, the setting of the paper suites.
    depth: int = 1
    block: str = "none"  # "glu" | "mlp" | "none"
    readout: str = "linear"  # "linear" | "mlp"
    param_budget: int = 0  # > 0: hidden_size chosen for this many parameters (LRA 10% rule)
    # False: train the whole budget (equal compute); steps_to_success is still recorded.
    stop_at_success: bool = True
    # The held-out split whose metric decides steps_to_success and early stopping. The
    # reported metric is always the test split's; "validation" is the tuned protocol
    # (a suite with [tuning] defaults to it), "test" what suites did before it.
    eval_split: str = "test"
    # The learning rate over training: "constant", or "cosine" (Zucchet & Orvieto 2024: Adam with
    # cosine decay), lr * optax.cosine_decay_schedule(1, steps) (zoo.bench.steps.make_optimizer).
    schedule: str = "constant"
    # The training step at which lambda1_fixed, grad_decay_fixed, ... are measured, the same for
    # every run so runs that stop at different steps compare; 0: the first evaluation
    # (eval_every, at most steps), the earliest any run can stop early. A run that stops or
    # diverges before this step records NaN with a note (zoo.bench.train).
    diag_at_step: int = 0

    def __post_init__(self) -> None:
        if not 0 <= self.diag_at_step <= self.steps:
            raise ValueError(f"TrainSettings.diag_at_step must be in [0, steps = {self.steps}] "
                             f"(0 = the first evaluation), got {self.diag_at_step}")
        for name in ("hidden_size", "steps", "eval_every", "checkpoint_every", "depth"):
            if not 1 <= getattr(self, name) <= MAX_INT:
                raise ValueError(f"TrainSettings.{name} must be in [1, {MAX_INT}], got {getattr(self, name)}")
        if not self.lr > 0:
            raise ValueError(f"TrainSettings.lr must be positive, got {self.lr}")
        if not self.clip >= 0:
            raise ValueError(f"TrainSettings.clip must be >= 0, got {self.clip}")
        if not 0 <= self.param_budget <= MAX_INT:
            raise ValueError(f"TrainSettings.param_budget must be in [0, {MAX_INT}] (0 = off), "
                             f"got {self.param_budget}")
        for name, allowed in (("block", BLOCKS), ("readout", READOUTS), ("eval_split", SPLITS),
                              ("schedule", SCHEDULES)):
            if getattr(self, name) not in allowed:
                raise ValueError(f"TrainSettings.{name} must be one of {', '.join(map(repr, allowed))}, "
                                 f"got {getattr(self, name)!r}")

    @property
    def model_options(self) -> dict[str, Any]:
        """What `create_model` takes beside the architecture's own options."""
        return {"depth": self.depth, "block": self.block, "readout": self.readout}

    @property
    def fixed_diag_step(self) -> int:
        """The step `diag_at_step` names (0: the first evaluation)."""
        return self.diag_at_step or min(self.eval_every, self.steps)


# Settings added after reference runs were recorded: at these values they are left out of a
# run's identity, so the runs of suites that do not use them keep their ids (and results).
_LATER_DEFAULTS = {f.name: f.default for f in dataclasses.fields(TrainSettings)
                   if f.name in ("depth", "block", "readout", "param_budget", "stop_at_success", "eval_split",
                                 "schedule", "diag_at_step")}


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
    # The registered architecture when `arch` names a variant of it declared in the suite
    # (`[archs.lru_exp] arch = "lru"`); empty: `arch` is the registered name itself.
    architecture: str = ""

    @property
    def registered_arch(self) -> str:
        """The architecture to build (`arch` names the leaderboard row)."""
        return self.architecture or self.arch

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
        if not d["architecture"]:  # added later: runs without a variant keep their ids
            del d["architecture"]
        for name, default in _LATER_DEFAULTS.items():
            if d["train"][name] == default:
                del d["train"][name]
        return d


@dataclasses.dataclass(frozen=True)
class Suite:
    """A validated suite: its name, description and the runs it expands to."""

    name: str
    description: str
    runs: tuple[RunSpec, ...]
    plugins: tuple[str, ...] = ()
    # With [tuning]: its runs, done first; `runs` then train with the rate they choose per
    # (arch, task, flossing) (zoo.bench.tuning.apply_choice), their lr until then is the default's.
    tuning: tuple[RunSpec, ...] = ()
    # With [bracket]: how the reported runs' grids are extended after them (zoo.bench.bracket).
    bracket: Any = None


def build_task(spec: RunSpec):
    """The run's task (raises tasks.DatasetUnavailable when its data is not on this machine).

    The run's seed goes along (`run_seed`): tasks that take it use it (teacher_student with
    `teacher_seed = "run"` draws its teacher from it), the others ignore it."""
    import tasks
    from zoo.bench.worker import absl_quiet

    with absl_quiet():  # tfds's notes on a data folder it looked into, which the user never set up
        return tasks.create_task(spec.task, horizon=spec.task_horizon, run_seed=spec.seed,
                                 **dict(spec.task_options))


def build_model(spec: RunSpec, task):
    """The run's model, initialised from its seed: the architecture, or a stack of it."""
    from flax import nnx

    from zoo.architectures.stack import create_model

    return create_model(
        spec.registered_arch,
        input_size=task.input_size,
        hidden_size=spec.train.hidden_size,
        output_size=task.output_size,
        rngs=nnx.Rngs(spec.seed),
        **spec.train.model_options,
        **dict(spec.arch_options),
    )
