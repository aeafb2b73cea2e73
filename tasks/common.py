"""Helpers shared by the built-in tasks: option checks, fixed evaluation keys and splits, losses."""

from __future__ import annotations

import math
import numbers
import zlib
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from tasks.base import Batch, PyTree, Split, Task, TaskConfigError, check_split

# Evaluation sets are drawn from keys derived from this constant, never from a training
# seed, so every seed of a task is scored on the same held-out sequences.
EVAL_SEED = 0x5EED_E7A1


def eval_key(tag: str) -> jax.Array:
    """A fixed key for the evaluation set named `tag` (independent of any training seed)."""
    return jax.random.fold_in(jax.random.key(EVAL_SEED), zlib.crc32(tag.encode()) & 0x7FFFFFFF)


def hold_out(n: int, n_held: int, tag: str) -> tuple[np.ndarray, np.ndarray]:
    """Split `range(n)` into (kept, held): `n_held` indices chosen by a permutation fixed by `tag`.

    Both are sorted and disjoint; the same for every run (data-set tasks carve their
    validation split out of the training split with it).
    """
    perm = np.random.default_rng(zlib.crc32(tag.encode())).permutation(n)
    return np.sort(perm[n_held:]), np.sort(perm[:n_held])


def _interval(
    lo: float | None, hi: float | None, *, lo_open: bool = False, hi_open: bool = False
) -> str:
    left = "(" if lo_open else "["
    right = ")" if hi_open or hi is None else "]"
    return f"{left}{'-inf' if lo is None else lo}, {'inf' if hi is None else hi}{right}"


def check_int(
    task: str,
    name: str,
    value: Any,
    lo: int | None = None,
    hi: int | None = None,
    *,
    bounds: str | None = None,
) -> int:
    """`value` as an int in `[lo, hi]`, else a one-line TaskConfigError.

    `bounds` describes the interval symbolically (e.g. "[1, seq_len-1]"); the numbers follow it.
    Booleans and floats are rejected even when integral: an integer option gets an integer.
    """
    ok = isinstance(value, numbers.Integral) and not isinstance(value, bool)
    if ok:
        value = int(value)
        ok = (lo is None or value >= lo) and (hi is None or value <= hi)
    if not ok:
        where = _interval(lo, hi)
        where = f"{bounds} = {where}" if bounds else where
        raise TaskConfigError(f"{task}: {name} must be an integer in {where}, got {value!r}")
    return value


def check_float(
    task: str,
    name: str,
    value: Any,
    lo: float | None = None,
    hi: float | None = None,
    *,
    lo_open: bool = False,
    hi_open: bool = False,
    what: str = "a number",
) -> float:
    """`value` as a finite float in the given interval, else a one-line TaskConfigError."""
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
    if ok:
        x = float(value)
        ok = math.isfinite(x)
        if ok and lo is not None:
            ok = x > lo if lo_open else x >= lo
        if ok and hi is not None:
            ok = x < hi if hi_open else x <= hi
    if not ok:
        where = _interval(lo, hi, lo_open=lo_open, hi_open=hi_open)
        raise TaskConfigError(f"{task}: {name} must be {what} in {where}, got {value!r}")
    return float(value)


def masked_mean(values: jax.Array, mask: jax.Array) -> jax.Array:
    """Mean of `values` (batch, time) over the steps where `mask` is 1."""
    return jnp.sum(values * mask) / jnp.maximum(jnp.sum(mask), 1.0)


def binary_cross_entropy_with_logits(logits: jax.Array, targets: jax.Array) -> jax.Array:
    """Elementwise, numerically stable BCE of logits against {0, 1} targets."""
    return jnp.maximum(logits, 0.0) - logits * targets + jnp.log1p(jnp.exp(-jnp.abs(logits)))


def softmax_cross_entropy(logits: jax.Array, labels: jax.Array) -> jax.Array:
    """Cross-entropy of logits (..., classes) against integer labels (...)."""
    logp = jax.nn.log_softmax(logits, axis=-1)
    return -jnp.take_along_axis(logp, labels[..., None].astype(jnp.int32), axis=-1)[..., 0]


def bernoulli_bits(key: jax.Array, shape: tuple[int, ...]) -> jax.Array:
    """Bits ~ Bernoulli(0.5) as float32 {0., 1.}."""
    return jax.random.bernoulli(key, 0.5, shape).astype(jnp.float32)


@jax.jit
def masked_cross_entropy(logits: jax.Array, labels: jax.Array, mask: jax.Array) -> jax.Array:
    """Mean softmax cross-entropy of logits (batch, time, classes) over the masked steps."""
    return masked_mean(softmax_cross_entropy(logits, labels), mask)


@jax.jit
def masked_accuracy(logits: jax.Array, labels: jax.Array, mask: jax.Array) -> jax.Array:
    """Fraction of masked steps whose arg-max class is the label."""
    return masked_mean((jnp.argmax(logits, axis=-1) == labels).astype(jnp.float32), mask)


class GeneratedTask(Task):
    """A task whose batches are generated from a key: `_make(arrays, key, batch_size)`.

    Training batches come from the run's keys; each held-out split is one fixed batch from
    a key of its own (`eval_tags[split]`), so validation, test and training never share a
    key. Subclasses set `eval_tags`, `batch_size`, `eval_size`, `self._eval = {}` and `_make`.
    """

    eval_tags: dict[str, str]

    def _make(self, arrays: PyTree, key: jax.Array, batch_size: int) -> Batch:
        raise NotImplementedError

    def sample(self, arrays: PyTree, key: jax.Array) -> Batch:
        return self._make(arrays, key, self.batch_size)

    def eval_batch(self, split: Split = "test") -> Batch:
        split = check_split(type(self).name, split)
        if split not in self._eval:
            key = eval_key(self.eval_tags[split])
            self._eval[split] = self._make(self.arrays(), key, self.eval_size)
        return self._eval[split]
