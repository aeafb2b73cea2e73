"""Bit-memory tasks of the gradient-flossing paper (Engelken 2023): delayed copy and delayed XOR.

Inputs are bits x_t ~ Bernoulli(0.5) on one channel; the model emits one logit per step and
is trained with binary cross-entropy on the steps where the target is defined (t >= delay).
Both tasks share one input distribution (`input_key`), so a model flossed on one is a valid
pre-flossed model for the other.
"""

from __future__ import annotations

import functools
from collections.abc import Hashable

import jax
import jax.numpy as jnp
import numpy as np

from tasks.base import Batch, PyTree, TaskConfigError
from tasks.common import (
    GeneratedTask,
    bernoulli_bits,
    binary_cross_entropy_with_logits,
    check_float,
    check_int,
    masked_mean,
)
from tasks.registry import register_task

# The input distribution both tasks share: Bernoulli(0.5) bits on one channel.
BITS_INPUT_KEY = ("bernoulli_bits", 0.5, 1)
# Held-out sets come from fixed keys of their own (training keys derive from the run's seed).
EVAL_TAGS = {"validation": "bits/validation", "test": "bits"}


def delayed(x: jax.Array, lag: jax.Array) -> jax.Array:
    """`x` (batch, time, channels) delayed by `lag` steps: out_t = x_{t-lag}, 0 for t < lag.

    `lag` may be a traced integer, so one compiled function serves every delay.
    """
    t = jnp.arange(x.shape[1])
    rolled = jnp.roll(x, lag, axis=1)
    return jnp.where((t >= lag)[None, :, None], rolled, 0.0)


@functools.partial(jax.jit, static_argnames=("batch_size", "seq_len", "n_taps"))
def parity_batch(
    delay: jax.Array, key: jax.Array, *, batch_size: int, seq_len: int, n_taps: int
) -> Batch:
    """Bits x; targets y_t = parity of x at lags delay*k/n_taps, k = 1..n_taps, for t >= delay.

    n_taps = 1 is the delayed copy, n_taps = 2 the delayed XOR. `delay` may be traced.
    """
    x = bernoulli_bits(key, (batch_size, seq_len, 1))
    mask = (jnp.arange(seq_len) >= delay).astype(jnp.float32)
    mask = jnp.broadcast_to(mask, (batch_size, seq_len))
    total = sum(delayed(x, delay * k // n_taps) for k in range(1, n_taps + 1))
    y = jnp.mod(total, 2.0) * mask[..., None]
    return Batch(inputs=x, targets=y, mask=mask)


_jit_bits = jax.jit(bernoulli_bits, static_argnums=1)


@jax.jit
def masked_bce(logits: jax.Array, targets: jax.Array, mask: jax.Array) -> jax.Array:
    """Mean binary cross-entropy of logits (batch, time, 1) over the steps where mask is 1."""
    return masked_mean(binary_cross_entropy_with_logits(logits[..., 0], targets[..., 0]), mask)


@jax.jit
def masked_bit_accuracy(logits: jax.Array, targets: jax.Array, mask: jax.Array) -> jax.Array:
    """Fraction of masked steps where the logit's sign matches the target bit."""
    correct = ((logits[..., 0] > 0) == (targets[..., 0] > 0.5)).astype(jnp.float32)
    return masked_mean(correct, mask)


class _DelayedBits(GeneratedTask):
    eval_tags = EVAL_TAGS
    """Shared body of the bit tasks: sizes, options, sampling, BCE loss and bit accuracy."""

    metric_name = "bit_accuracy"
    higher_is_better = True
    target_kind = "binary"
    chance_level = 0.5
    input_size = 1
    output_size = 1
    n_taps = 1  # how many delayed bits the target is the parity of (1: a copy)

    def __init__(
        self,
        *,
        horizon: int,
        seq_len: int = 300,
        batch_size: int = 16,
        eval_size: int = 256,
        success_threshold: float = 0.95,
    ) -> None:
        name = type(self).name
        self.seq_len = check_int(name, "seq_len", seq_len, 2)
        self.horizon = check_int(
            name, "horizon", horizon, 1, self.seq_len - 1, bounds="[1, seq_len-1]"
        )
        self.batch_size = check_int(name, "batch_size", batch_size, 1)
        self.eval_size = check_int(name, "eval_size", eval_size, 1)
        self.success_threshold = check_float(
            name, "success_threshold", success_threshold, 0.5, 1.0, lo_open=True
        )
        self._arrays: PyTree | None = None
        self._eval: dict[str, Batch] = {}

    def _make(self, arrays: PyTree, key: jax.Array, batch_size: int) -> Batch:
        return parity_batch(
            arrays["delay"], key, batch_size=batch_size, seq_len=self.seq_len, n_taps=self.n_taps
        )

    # -- the Task contract ---------------------------------------------------------
    def arrays(self) -> PyTree:
        if self._arrays is None:
            self._arrays = {"delay": jax.device_put(np.int32(self.horizon))}
        return self._arrays

    def loss(self, outputs: jax.Array, batch: Batch) -> jax.Array:
        return masked_bce(outputs, batch.targets, batch.mask)

    def metric(self, outputs: jax.Array, batch: Batch) -> jax.Array:
        return masked_bit_accuracy(outputs, batch.targets, batch.mask)

    def sample_inputs(self, arrays: PyTree, key: jax.Array, length: int) -> jax.Array:
        return _jit_bits(key, (length, 1))

    def input_key(self) -> Hashable:
        return BITS_INPUT_KEY

    def static_key(self) -> Hashable:
        return (type(self).__qualname__, self.seq_len, self.batch_size, self.eval_size)


@register_task("delayed_copy")
class DelayedCopy(_DelayedBits):
    """Delayed copy: reproduce the input bit from `horizon` steps ago, `y_t = x_{t-d}`, d = horizon.

    Options (defaults): `seq_len=300`, `batch_size=16` (the paper's), `eval_size=256`,
    `success_threshold=0.95`. Input and output size 1 (bits in, one logit out). Loss: BCE on the
    logit over the steps t >= d (the only ones with a target). Metric: bit accuracy on those
    steps of a fixed held-out set of `eval_size` sequences (same for every seed); the
    validation and test sets are drawn from two fixed keys of their own, training batches
    from keys derived from the run's seed.

    Success: held-out bit accuracy >= 0.95. A network that does not carry the bit across the
    delay cannot beat chance (0.5): x_{t-d} is independent of everything it saw since. 0.95
    therefore means the delay has been bridged, while tolerating a few percent of errors that
    a model still sharpening its memory makes; it is far above the sampling noise of chance
    (with >= 256 scored bits, chance exceeds 0.6 with probability < 1e-3).

    (Delayed copy is the one-tap member of the `delayed_xor` parity family.)
    """


@register_task("delayed_xor")
class DelayedXOR(_DelayedBits):
    """Delayed XOR / parity: `y_t = x_{t-d/2} XOR x_{t-d}`, d = horizon (must be even).

    Generalisation (`order=h`, "temporal complexity"): the target is the parity of n = 2**h
    input bits at the lags d*k/n for k = 1..n,

        y_t = x_{t - d/n} XOR x_{t - 2d/n} XOR ... XOR x_{t - d},

    so the answer always reaches exactly `horizon` steps back, the taps are evenly spaced
    d/n apart, and `horizon` must be a multiple of n. `order=1` is exactly the plain delayed
    XOR above (taps at d/2 and d). The paper's phrasing, "the parity of 2**h inputs spaced s
    apart", is the same family with the taps at s, 2s, ..., n*s: choose `horizon = n*s`
    (the paper's order-1 task with spacing s is therefore this task at horizon 2s).

    Options (defaults): `order=1`, `seq_len=300`, `batch_size=16`, `eval_size=256`,
    `success_threshold=0.95`. Sizes: 1 in, 1 logit out. Loss: BCE on steps t >= d; metric:
    bit accuracy there. Success: held-out bit accuracy >= 0.95, for the same reason as
    delayed copy (without the bits from the taps the parity is at chance, 0.5).
    """

    def __init__(self, *, horizon: int, order: int = 1, **options) -> None:
        name = type(self).name
        self.order = check_int(name, "order", order, 1, 16)
        super().__init__(horizon=horizon, **options)
        n = 2**self.order
        if self.horizon % n:
            if self.order == 1:
                rule = "be even (y_t = x_{t-horizon/2} XOR x_{t-horizon})"
            else:
                rule = f"be a multiple of 2**order = {n} (taps at lags horizon*k/{n}, k=1..{n})"
            raise TaskConfigError(f"{name}: horizon must {rule}, got {self.horizon}")
        self.n_taps = n

    def tap_lags(self, horizon: int | None = None) -> list[int]:
        """The lags whose input bits enter the parity (for documentation and tests)."""
        d = self.horizon if horizon is None else horizon
        return [d * k // self.n_taps for k in range(1, self.n_taps + 1)]

    def static_key(self) -> Hashable:
        return (*super().static_key(), self.order)

    def describe(self) -> str:
        return f"{self.name}(horizon={self.horizon}, order={self.order}, seq_len={self.seq_len})"
