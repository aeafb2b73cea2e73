"""The task contract: what the harness needs from a task."""

from __future__ import annotations

import abc
from collections.abc import Hashable
from typing import Any, ClassVar, Literal, NamedTuple

import jax
import jax.numpy as jnp

PyTree = Any

# The held-out splits. Training batches (`sample`) come from a third, disjoint part: the
# validation split is for early stopping and learning-rate tuning, the test split for the
# reported metric, so choices made on validation never see the test data.
Split = Literal["validation", "test"]
SPLITS: tuple[Split, ...] = ("validation", "test")


class Batch(NamedTuple):
    """One batch of sequences; `mask` marks the time steps where the loss counts."""

    inputs: jax.Array  # (batch, time, input_size), float32
    targets: jax.Array  # (batch, time, ...) task-specific
    mask: jax.Array  # (batch, time), float32 in {0, 1}


class TaskConfigError(ValueError):
    """An impossible task option (for example a horizon longer than the sequence)."""


def check_split(task: str, split: Any) -> Split:
    """`split` if it names a held-out split, else a one-line TaskConfigError."""
    if split not in SPLITS:
        raise TaskConfigError(
            f"{task}: split must be one of {', '.join(map(repr, SPLITS))}, got {split!r}"
        )
    return split


class Task(abc.ABC):
    """A supervised sequence task with a horizon knob.

    A task is split into static configuration (Python attributes: sizes, sequence
    length, batch size) and `arrays()`, a pytree of everything that may change
    without changing shapes (the delay, a teacher's matrices, a data set). The
    harness compiles one training step per `static_key()` and feeds `arrays()` as
    data, so runs that differ only in horizon or seed share one compilation.
    `sample`, `loss` and `metric` must therefore read horizon-dependent values from
    `arrays`/`batch`, never from `self.horizon`.

    Data come in three disjoint parts: `sample` draws training batches, `eval_batch("validation")`
    and `eval_batch("test")` are fixed held-out sets (the same for every training seed).

    Outputs are what the model emits at every step, `(batch, time, output_size)`; `target_kind`
    says how the task reads them: "binary" (one logit per step, targets in {0, 1}),
    "categorical" (`output_size` logits, integer targets `(batch, time)`, inputs one-hot where
    they are tokens) or "real" (regression). `batch.mask` marks the steps that are scored, so a
    task scored only at the end masks every other step. Loss and metric are the task's own.
    """

    name: ClassVar[str] = ""
    metric_name: ClassVar[str] = "metric"
    higher_is_better: ClassVar[bool] = True
    target_kind: ClassVar[str] = "real"

    horizon: int
    input_size: int
    output_size: int
    seq_len: int
    batch_size: int
    success_threshold: float
    chance_level: float  # the metric of the best input-blind (constant) predictor: chance

    def arrays(self) -> PyTree:
        """Horizon-dependent data that `sample` reads (passed to jitted code as arguments)."""
        return {}

    @abc.abstractmethod
    def sample(self, arrays: PyTree, key: jax.Array) -> Batch:
        """A training batch, a pure jittable function of `arrays` and `key`."""

    @abc.abstractmethod
    def eval_batch(self, split: Split = "test") -> Batch:
        """The fixed held-out set of `split` (same for every training seed of this task).

        "validation" is for early stopping and tuning, "test" (the default) for the reported
        metric; neither overlaps the other or the training batches of `sample`.
        """

    @abc.abstractmethod
    def loss(self, outputs: jax.Array, batch: Batch) -> jax.Array:
        """Scalar training loss of model outputs `(batch, time, output_size)`."""

    @abc.abstractmethod
    def metric(self, outputs: jax.Array, batch: Batch) -> jax.Array:
        """Scalar held-out metric named `metric_name`."""

    def solved(self, metric: float) -> bool:
        """Whether a held-out metric meets the success criterion."""
        if self.higher_is_better:
            return bool(metric >= self.success_threshold)
        return bool(metric <= self.success_threshold)

    def sample_inputs(self, arrays: PyTree, key: jax.Array, length: int) -> jax.Array:
        """One input sequence `(length, input_size)` from the task's input distribution.

        Flossing uses it. The default takes the first sequence of a batch, tiled if
        `length` exceeds the sequence length.
        """
        x = self.sample(arrays, key).inputs[0]
        reps = -(-length // x.shape[0])
        return jnp.tile(x, (reps, 1))[:length]

    def input_key(self) -> Hashable:
        """Identifies the input distribution; equal keys let tasks share a pre-flossed model."""
        return (type(self).__qualname__, id(self))

    def static_key(self) -> Hashable:
        """Identifies everything `sample`/`loss`/`metric` read outside `arrays`.

        Runs whose tasks have equal keys share compiled code. The default is unique
        per instance (always correct); built-in tasks return their shape-relevant
        options so that horizons and seeds share one compilation.
        """
        return (type(self).__qualname__, id(self))

    def describe(self) -> str:
        """A one-line human-readable summary."""
        return f"{self.name}(horizon={self.horizon}, seq_len={self.seq_len})"
