"""The adding problem (Hochreiter & Schmidhuber 1997), in the two-channel form of Arjovsky,
Shah & Bengio (2016, "Unitary evolution recurrent neural networks").

Each step carries a value u_t ~ U[0, 1] and a marker bit; exactly two steps are marked, and
the model must output the sum of the two marked values at the last step.
"""

from __future__ import annotations

import functools
from collections.abc import Hashable

import jax
import jax.numpy as jnp
import numpy as np

from tasks.base import Batch, PyTree
from tasks.common import GeneratedTask, check_float, check_int, masked_mean
from tasks.registry import register_task

EVAL_TAGS = {"validation": "adding/validation", "test": "adding"}


@functools.partial(jax.jit, static_argnames=("batch_size", "seq_len"))
def adding_batch(lag: jax.Array, key: jax.Array, *, batch_size: int, seq_len: int) -> Batch:
    """Values and markers (batch, seq_len, 2); target: the sum of the marked values, at the end.

    The first marker sits `lag` steps before the read-out (the last step), the second uniformly
    after it, up to and including the read-out step. `lag` may be traced.
    """
    k_values, k_second = jax.random.split(key)
    values = jax.random.uniform(k_values, (batch_size, seq_len), jnp.float32)
    t = jnp.arange(seq_len)
    first = seq_len - 1 - lag
    second = first + 1 + jax.random.randint(k_second, (batch_size, 1), 0, lag)
    markers = ((t == first) | (t == second)).astype(jnp.float32)
    total = jnp.sum(values * markers, axis=1)
    readout = (t == seq_len - 1).astype(jnp.float32)
    mask = jnp.broadcast_to(readout, (batch_size, seq_len))
    targets = (total[:, None] * mask)[..., None]
    return Batch(inputs=jnp.stack([values, markers], axis=-1), targets=targets, mask=mask)


@jax.jit
def masked_mse(outputs: jax.Array, targets: jax.Array, mask: jax.Array) -> jax.Array:
    """Mean squared error of outputs (batch, time, 1) over the steps where mask is 1."""
    return masked_mean(jnp.square(outputs[..., 0] - targets[..., 0]), mask)


@register_task("adding")
class Adding(GeneratedTask):
    eval_tags = EVAL_TAGS
    """Adding problem: output u_a + u_b at the last step, where a and b are the marked steps.

    Inputs (2 channels): the value u_t ~ U[0, 1] and a marker bit, 1 at exactly two steps.
    `horizon` is the distance from the first marked value to the read-out: the first marker
    sits at t = seq_len - 1 - horizon, the second uniformly in (that step, seq_len - 1]; steps
    before the first marker carry unmarked values (distractors). The model emits one real
    number per step; the last step is scored.

    Options (defaults): `seq_len=300`, `batch_size=16`, `eval_size=512`,
    `success_threshold=0.01`; horizon in [1, seq_len-1]. Loss and metric: the MSE at the
    read-out (lower is better). Validation and test sets come from fixed keys of their own.

    Chance: predicting the mean, 1, scores Var(u_a + u_b) = 2/12 = 0.167. A model that carries
    only the second value (it arrives later) can do no better than u_b + 0.5, MSE 1/12 =
    0.083; success, MSE <= 0.01, therefore needs the first value carried across `horizon`
    steps, to within about 0.1.
    """

    metric_name = "mse"
    higher_is_better = False
    target_kind = "real"
    chance_level = 1.0 / 6.0
    input_size = 2
    output_size = 1

    def __init__(
        self,
        *,
        horizon: int,
        seq_len: int = 300,
        batch_size: int = 16,
        eval_size: int = 512,
        success_threshold: float = 0.01,
    ) -> None:
        name = type(self).name
        self.seq_len = check_int(name, "seq_len", seq_len, 2)
        self.horizon = check_int(
            name, "horizon", horizon, 1, self.seq_len - 1, bounds="[1, seq_len-1]"
        )
        self.batch_size = check_int(name, "batch_size", batch_size, 1)
        self.eval_size = check_int(name, "eval_size", eval_size, 1)
        self.success_threshold = check_float(
            name, "success_threshold", success_threshold, 0.0, self.chance_level,
            lo_open=True, hi_open=True,
        )
        self._arrays: PyTree | None = None
        self._eval: dict[str, Batch] = {}

    def _make(self, arrays: PyTree, key: jax.Array, batch_size: int) -> Batch:
        return adding_batch(arrays["lag"], key, batch_size=batch_size, seq_len=self.seq_len)

    def arrays(self) -> PyTree:
        if self._arrays is None:
            self._arrays = {"lag": jax.device_put(np.int32(self.horizon))}
        return self._arrays

    def loss(self, outputs: jax.Array, batch: Batch) -> jax.Array:
        return masked_mse(outputs, batch.targets, batch.mask)

    def metric(self, outputs: jax.Array, batch: Batch) -> jax.Array:
        return masked_mse(outputs, batch.targets, batch.mask)

    def static_key(self) -> Hashable:
        return (type(self).__qualname__, self.seq_len, self.batch_size, self.eval_size)
