"""Token-recall tasks: selective copying (Gu & Dao 2023, Mamba) and multi-query associative
recall (Arora et al. 2023, "Zoology", MQAR).

Tokens enter one-hot (token 0 is the blank / noise token); the model emits logits at every
step and is scored, by cross-entropy and accuracy, at the steps where an answer is due.
Every layout position is computed from the horizon inside jitted code, so one compilation
serves every horizon of a sequence length.
"""

from __future__ import annotations

import abc
import functools
from collections.abc import Hashable

import jax
import jax.numpy as jnp
import numpy as np

from tasks.base import SPLITS, Batch, PyTree, TaskConfigError
from tasks.common import (
    GeneratedTask,
    check_float,
    check_int,
    masked_accuracy,
    masked_cross_entropy,
)
from tasks.registry import register_task


def _scatter_rows(tokens: jax.Array, positions: jax.Array, values: jax.Array) -> jax.Array:
    """tokens (batch, T) with tokens[b, positions[b, i]] = values[b, i]."""
    rows = jnp.arange(tokens.shape[0])[:, None]
    return tokens.at[rows, positions].set(values)


@functools.partial(jax.jit, static_argnames=("batch_size", "seq_len", "n_copy", "vocab_size"))
def selective_copy_batch(
    stretch: jax.Array, key: jax.Array, *, batch_size: int, seq_len: int, n_copy: int,
    vocab_size: int,
) -> Batch:
    """Tokens scattered over the `stretch` steps before the last `n_copy`, to recall in order.

    Layout of one sequence (T = seq_len, n = n_copy): blanks, then the stretch
    [T - n - stretch, T - n) holding n data tokens (1..vocab_size, uniform) at uniformly
    chosen distinct positions among blanks, then n "go" tokens (vocab_size + 1); at the j-th
    go step the target is the j-th data token of the stretch (as a class 0..vocab_size-1).
    """
    k_pos, k_tok = jax.random.split(key)
    t = jnp.arange(seq_len)
    in_stretch = (t >= seq_len - n_copy - stretch) & (t < seq_len - n_copy)
    scores = jnp.where(in_stretch, jax.random.uniform(k_pos, (batch_size, seq_len)), -1.0)
    positions = jnp.sort(jax.lax.top_k(scores, n_copy)[1], axis=1)
    data = jax.random.randint(k_tok, (batch_size, n_copy), 1, vocab_size + 1)
    tokens = jnp.where(t >= seq_len - n_copy, vocab_size + 1, 0)
    tokens = _scatter_rows(jnp.broadcast_to(tokens, (batch_size, seq_len)), positions, data)
    answer = (t >= seq_len - n_copy).astype(jnp.float32)
    targets = jnp.zeros((batch_size, seq_len), jnp.int32).at[:, seq_len - n_copy :].set(data - 1)
    mask = jnp.broadcast_to(answer, (batch_size, seq_len))
    inputs = jax.nn.one_hot(tokens, vocab_size + 2, dtype=jnp.float32)
    return Batch(inputs=inputs, targets=targets, mask=mask)


@functools.partial(jax.jit, static_argnames=("batch_size", "seq_len", "n_pairs", "vocab_size"))
def associative_recall_batch(
    gap: jax.Array, key: jax.Array, *, batch_size: int, seq_len: int, n_pairs: int,
    vocab_size: int,
) -> Batch:
    """Key-value pairs, `gap` steps of blanks, then every key once more as a query.

    Tokens: 0 blank, keys 1..K, values K+1..2K (K = vocab_size // 2). Layout (T = seq_len,
    n = n_pairs): blanks; the pairs k_1 v_1 ... k_n v_n (distinct keys, distinct values), the
    last value at T - n - gap; blanks; the n queries, the keys in a
    random order, at [T - n, T). At a query the target is its pair's value (class 0..K-1).
    """
    n_keys = vocab_size // 2
    k_keys, k_values, k_order = jax.random.split(key, 3)
    keys = jnp.argsort(jax.random.uniform(k_keys, (batch_size, n_keys)), axis=1)[:, :n_pairs]
    values = jnp.argsort(jax.random.uniform(k_values, (batch_size, n_keys)), axis=1)[:, :n_pairs]
    order = jnp.argsort(jax.random.uniform(k_order, (batch_size, n_pairs)), axis=1)
    first = seq_len - n_pairs - gap - 2 * n_pairs + 1  # where the first key sits
    i = jnp.arange(n_pairs)
    tokens = jnp.zeros((batch_size, seq_len), jnp.int32)
    pair_pos = jnp.broadcast_to(first + 2 * i, (batch_size, n_pairs))
    tokens = _scatter_rows(tokens, pair_pos, keys + 1)
    tokens = _scatter_rows(tokens, pair_pos + 1, values + 1 + n_keys)
    query_pos = jnp.broadcast_to(seq_len - n_pairs + i, (batch_size, n_pairs))
    tokens = _scatter_rows(tokens, query_pos, jnp.take_along_axis(keys, order, axis=1) + 1)
    targets = jnp.zeros((batch_size, seq_len), jnp.int32)
    targets = _scatter_rows(targets, query_pos, jnp.take_along_axis(values, order, axis=1))
    answer = (jnp.arange(seq_len) >= seq_len - n_pairs).astype(jnp.float32)
    mask = jnp.broadcast_to(answer, (batch_size, seq_len))
    inputs = jax.nn.one_hot(tokens, vocab_size + 1, dtype=jnp.float32)
    return Batch(inputs=inputs, targets=targets, mask=mask)


class _TokenRecall(GeneratedTask):
    """Shared body: options, a horizon passed as data, fixed held-out keys, CE + accuracy."""

    metric_name = "accuracy"
    higher_is_better = True
    target_kind = "categorical"

    def __init__(
        self,
        *,
        horizon: int,
        seq_len: int,
        batch_size: int,
        eval_size: int,
        success_threshold: float,
    ) -> None:
        name = type(self).name
        self.seq_len = check_int(name, "seq_len", seq_len, 2)
        lo, hi = self._horizon_range()
        self.horizon = check_int(name, "horizon", horizon, lo, hi, bounds=self._horizon_bounds)
        self.batch_size = check_int(name, "batch_size", batch_size, 1)
        self.eval_size = check_int(name, "eval_size", eval_size, 1)
        self.success_threshold = check_float(
            name, "success_threshold", success_threshold, self.chance_level, 1.0, lo_open=True
        )
        self._arrays: PyTree | None = None
        self._eval: dict[str, Batch] = {}

    _horizon_bounds = ""  # the horizon's interval in words, for error messages

    @abc.abstractmethod
    def _horizon_range(self) -> tuple[int, int]:
        """The horizons this configuration allows (after the shape options are set)."""

    @abc.abstractmethod
    def _make(self, arrays: PyTree, key: jax.Array, batch_size: int) -> Batch:
        """A batch of `batch_size` sequences from `key`."""

    def arrays(self) -> PyTree:
        if self._arrays is None:
            self._arrays = {"horizon": jax.device_put(np.int32(self.horizon))}
        return self._arrays

    @property
    def eval_tags(self) -> dict[str, str]:
        return {split: f"{type(self).name}/{split}" for split in SPLITS}

    def loss(self, outputs: jax.Array, batch: Batch) -> jax.Array:
        return masked_cross_entropy(outputs, batch.targets, batch.mask)

    def metric(self, outputs: jax.Array, batch: Batch) -> jax.Array:
        return masked_accuracy(outputs, batch.targets, batch.mask)

    def _shape_options(self) -> tuple:
        return ()

    def static_key(self) -> Hashable:
        return (type(self).__qualname__, self.seq_len, self.batch_size, self.eval_size,
                *self._shape_options())


@register_task("selective_copy")
class SelectiveCopy(_TokenRecall):
    """Selective copying (Gu & Dao 2023, Mamba, section 3.1 / figure 2).

    `n_copy` data tokens (drawn uniformly, with repetition, from `vocab_size` tokens) are
    scattered at random distinct positions over a stretch of `horizon` steps, among blank
    (noise) tokens; then come `n_copy` "go" tokens, and at the j-th go step the model must
    emit the j-th data token. Unlike a plain copy, the positions vary, so a time-invariant
    delay line cannot solve it: the model must select what to keep by content.

    Inputs one-hot, size vocab_size + 2 (blank, the data tokens, go); outputs: vocab_size
    logits per step. `horizon` is the length of the stretch over which the tokens are
    scattered (the first token can be up to horizon + n_copy - 1 steps before its go step);
    the stretch ends where the go tokens begin, and steps before it are blank.

    Options (defaults): `vocab_size=8`, `n_copy=4`, `seq_len=300`, `batch_size=16`,
    `eval_size=256`, `success_threshold=0.95`; horizon in [n_copy, seq_len - n_copy]. Loss:
    cross-entropy at the go steps; metric: per-token accuracy there. Chance 1/vocab_size.
    Success: per-token accuracy >= 0.95, i.e. nearly every token of nearly every sequence;
    a model that remembers only the last k < horizon steps loses the tokens placed before
    them and guesses those at chance.
    """

    _horizon_bounds = "[n_copy, seq_len-n_copy]"

    def __init__(
        self,
        *,
        horizon: int,
        vocab_size: int = 8,
        n_copy: int = 4,
        seq_len: int = 300,
        batch_size: int = 16,
        eval_size: int = 256,
        success_threshold: float = 0.95,
    ) -> None:
        name = type(self).name
        self.vocab_size = check_int(name, "vocab_size", vocab_size, 2)
        self.n_copy = check_int(name, "n_copy", n_copy, 1)
        self.input_size = self.vocab_size + 2
        self.output_size = self.vocab_size
        self.chance_level = 1.0 / self.vocab_size
        super().__init__(
            horizon=horizon, seq_len=seq_len, batch_size=batch_size, eval_size=eval_size,
            success_threshold=success_threshold,
        )

    def _horizon_range(self) -> tuple[int, int]:
        if self.seq_len < 2 * self.n_copy:
            raise TaskConfigError(
                f"{self.name}: seq_len must be at least 2 * n_copy = {2 * self.n_copy} "
                f"(the stretch and the go steps), got {self.seq_len}"
            )
        return self.n_copy, self.seq_len - self.n_copy

    def _make(self, arrays: PyTree, key: jax.Array, batch_size: int) -> Batch:
        return selective_copy_batch(
            arrays["horizon"], key, batch_size=batch_size, seq_len=self.seq_len,
            n_copy=self.n_copy, vocab_size=self.vocab_size,
        )

    def _shape_options(self) -> tuple:
        return (self.vocab_size, self.n_copy)

    def describe(self) -> str:
        return (
            f"{self.name}(horizon={self.horizon}, n_copy={self.n_copy}, "
            f"vocab_size={self.vocab_size}, seq_len={self.seq_len})"
        )


@register_task("associative_recall")
class AssociativeRecall(_TokenRecall):
    """Multi-query associative recall (MQAR; Arora et al. 2023, "Zoology").

    A sequence shows `n_pairs` key-value pairs k_1 v_1 ... k_n v_n (distinct keys and
    distinct values, drawn without replacement as in zoology), then blank steps, then every
    key once more, in a random order, as a query; at each query the model must emit the
    value that followed that key. Half the `vocab_size` tokens are keys, half values (zoology
    too draws keys and values from separate halves of its vocabulary); token 0 is blank.

    `horizon` is the gap between the pairs and the queries: the first query comes `horizon`
    steps after the last value, so every pair waits at least `horizon` steps for its query
    (at most horizon + 3 n_pairs - 3). The queries come in a random order, so a delay line
    does not solve it; the state must hold a key -> value map.

    Inputs one-hot, size vocab_size + 1; outputs: vocab_size // 2 logits (the values).
    Options (defaults): `vocab_size=16`, `n_pairs=4` (at most vocab_size // 2),
    `seq_len=300`, `batch_size=16`, `eval_size=256`, `success_threshold=0.95`; horizon in
    [1, seq_len - 3 n_pairs + 1]. Loss: cross-entropy at the query steps; metric: accuracy on
    the queried values. Chance 1 / (vocab_size // 2): values are independent of keys, and a
    model whose memory is shorter than `horizon` sees no value at any query. Success: accuracy
    on the queried values >= 0.95, i.e. nearly every binding recalled.
    """

    _horizon_bounds = "[1, seq_len-3*n_pairs+1]"

    def __init__(
        self,
        *,
        horizon: int,
        vocab_size: int = 16,
        n_pairs: int = 4,
        seq_len: int = 300,
        batch_size: int = 16,
        eval_size: int = 256,
        success_threshold: float = 0.95,
    ) -> None:
        name = type(self).name
        self.vocab_size = check_int(name, "vocab_size", vocab_size, 4)
        if self.vocab_size % 2:
            raise TaskConfigError(
                f"{name}: vocab_size must be even (half keys, half values), got {vocab_size!r}"
            )
        n_keys = self.vocab_size // 2
        self.n_pairs = check_int(name, "n_pairs", n_pairs, 1, n_keys, bounds="[1, vocab_size/2]")
        self.input_size = self.vocab_size + 1
        self.output_size = n_keys
        self.chance_level = 1.0 / n_keys
        super().__init__(
            horizon=horizon, seq_len=seq_len, batch_size=batch_size, eval_size=eval_size,
            success_threshold=success_threshold,
        )

    def _horizon_range(self) -> tuple[int, int]:
        if self.seq_len < 3 * self.n_pairs:
            raise TaskConfigError(
                f"{self.name}: seq_len must be at least 3 * n_pairs = {3 * self.n_pairs} "
                f"(pairs and queries), got {self.seq_len}"
            )
        return 1, self.seq_len - 3 * self.n_pairs + 1

    def _make(self, arrays: PyTree, key: jax.Array, batch_size: int) -> Batch:
        return associative_recall_batch(
            arrays["horizon"], key, batch_size=batch_size, seq_len=self.seq_len,
            n_pairs=self.n_pairs, vocab_size=self.vocab_size,
        )

    def _shape_options(self) -> tuple:
        return (self.vocab_size, self.n_pairs)

    def describe(self) -> str:
        return (
            f"{self.name}(horizon={self.horizon}, n_pairs={self.n_pairs}, "
            f"vocab_size={self.vocab_size}, seq_len={self.seq_len})"
        )
