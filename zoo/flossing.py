"""Lyapunov spectra of any registered recurrence, and gradient flossing (Engelken 2023).

The only thing this module needs from an architecture is the flossing contract of
`zoo.RecurrentModel`: `model.state_size` and `model.transition(h, x)` on one example's
flat real state. Everything here is a small pure function; the two entry points the
harness calls (`floss`, `lyapunov_diagnostics`) compile once per (architecture graph,
shapes, config) and are reused across seeds and model instances.

Pieces:

- `lyapunov_spectrum`: the k leading exponents by the QR (Benettin) method,
  differentiable through the QR.
- `diagonal_spectrum`: the exact exponents when every step Jacobian is diagonal and
  independent of the state (models with `jacobian_diagonal`); flossing and the diagnostics
  use it for those, the QR method for the rest.
- `flossing_loss`: `mean((lambda_i - target)^2)`.
- `DYNAMICS`: the nnx filter of the flossed parameters (everything but the readout).
- `FlossingConfig` / `flossing_schedule`: the dose (k, or k as a fraction of the
  state), target, learning rate and the paper's schedule as data.
- `make_flossing_optimizer` / `floss`: n flossing steps in one compiled call.
- `gradient_lag_norms` / `gradient_decay_rate`: the backpropagated gradient against
  time lag, and its decay per step.
- `DiagnosticsConfig` / `lyapunov_diagnostics` / `initial_state_gradient_norm`: what
  the leaderboard reports.

Timing lives in `benchmarks/flossing_step.py`.
"""

from __future__ import annotations

import collections
import dataclasses
import functools
import inspect
import math
import operator
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

__all__ = [
    "DYNAMICS",
    "FLOSSING_MODES",
    "DiagnosticsConfig",
    "FlossingConfig",
    "FlossingPhase",
    "diagonal_spectrum",
    "floss",
    "flossing_inputs",
    "flossing_loss",
    "flossing_schedule",
    "gradient_decay_rate",
    "gradient_lag_norms",
    "initial_state_gradient_norm",
    "initial_state_gradient_unsupported",
    "lyapunov_diagnostics",
    "lyapunov_spectrum",
    "make_flossing_optimizer",
]

Transition = Callable[[jax.Array, jax.Array], jax.Array]

# How often each compiled entry point has been traced; tests use it to check that a
# second model instance of the same architecture reuses the compiled code.
TRACE_COUNTS: collections.Counter[str] = collections.Counter()


# --------------------------------------------------------------------------- spectrum


def lyapunov_spectrum(
    transition: Transition,
    h0: jax.Array,
    inputs: jax.Array,
    *,
    k: int,
    reortho_every: int = 1,
    warmup: int = 0,
    key: jax.Array | None = None,
    trajectory_gradient: float = 1.0,
) -> jax.Array:
    """The `k` leading Lyapunov exponents (natural log, per time step), descending.

    QR (Benettin) method: an orthonormal `(state_size, k)` basis `Q` is pushed through
    the step Jacobians `D_t = d h_t / d h_{t-1}` alongside the trajectory
    `h_t = transition(h_{t-1}, x_t)`; every `reortho_every` steps `Q R = D Q` is
    re-orthonormalised and, once `warmup` steps have passed, `log|diag R|` is
    accumulated. The sum divided by the number of accumulated steps
    (`time - warmup`) estimates the exponents; the error of the estimate decays like
    `1 / (time - warmup)` (the transient of `Q` aligning with the Lyapunov vectors).

    Args:
      transition: `h -> h'` given one input `x`, on a flat real state `(state_size,)`.
        Jacobian-vector products come from `jax.linearize`, so any JAX-traceable
        recurrence works (LSTM `[h, c]`, complex states stored as `[Re, Im]`, ...).
        Parameters it closes over can be differentiated through this function.
      h0: the initial state `(state_size,)`.
      inputs: `(time, input_size)`, one input per step.
      k: how many exponents, `1 <= k <= state_size`.
      reortho_every: steps between QR re-orthonormalisations (1: every step, as in
        the reference). A last block shorter than this covers the remainder.
      warmup: steps run (state and basis both evolve) before accumulating.
      key: a PRNG key for a random orthonormal initial basis; None starts from the
        first `k` columns of the identity. Prefer a key when `k < state_size` and the
        map may leave coordinate subspaces invariant (diagonal recurrences): the
        identity basis then never sees the other coordinates.
      trajectory_gradient: how much of the parameter gradient flows through the
        state trajectory: 1 (default) is the exact derivative of the estimate; each
        step scales the state's gradient by this factor (values are unchanged); 0
        differentiates only the step Jacobians' explicit parameter dependence along a
        frozen trajectory. In chaotic dynamics the exact gradient is dominated by the
        state's sensitivity, which grows like `exp(lambda_1 t)` (it overflows float32
        for lambda_1 = 0.2 over 300 steps); values below 1 bound it.

    Returns:
      `(k,)` exponents, sorted descending.
    """
    h0 = jnp.asarray(h0)
    inputs = jnp.asarray(inputs)
    if h0.ndim != 1:
        raise ValueError(f"h0 must be one example's flat state (state_size,), got shape {h0.shape}")
    if inputs.ndim != 2:
        raise ValueError(f"inputs must have shape (time, input_size), got {inputs.shape}")
    n, time = h0.shape[0], inputs.shape[0]
    k = _check_int("k", k)
    reortho_every = _check_int("reortho_every", reortho_every)
    warmup = _check_int("warmup", warmup)
    if not 1 <= k <= n:
        raise ValueError(f"k must satisfy 1 <= k <= state_size = {n}, got k={k}")
    if reortho_every < 1:
        raise ValueError(f"reortho_every must be >= 1, got {reortho_every}")
    if not 0.0 <= trajectory_gradient <= 1.0:
        raise ValueError(f"trajectory_gradient must be in [0, 1], got {trajectory_gradient}")
    if not 0 <= warmup < time:
        raise ValueError(
            f"warmup must satisfy 0 <= warmup < time = {time} (at least one accumulated step), "
            f"got warmup={warmup}"
        )

    # The scan carry needs one dtype: use what the transition produces from h0 (float32
    # state and float64 parameters give float64), so states never change type mid-scan.
    out = jax.eval_shape(transition, h0, inputs[0])
    if out.shape != h0.shape:
        raise ValueError(f"transition maps a state of shape {h0.shape} to shape {out.shape}")
    dtype = jnp.result_type(h0.dtype, out.dtype)
    if not jnp.issubdtype(dtype, jnp.floating):
        raise ValueError(f"the state must be real floating point, got {dtype}")
    h = h0.astype(dtype)

    if key is None:
        q = jnp.eye(n, k, dtype=dtype)
    else:
        q = jnp.linalg.qr(jax.random.normal(key, (n, k), dtype))[0]

    log_growth = _accumulate_growth(
        transition, h, q, inputs, reortho_every, warmup, trajectory_gradient
    )
    exponents = log_growth / (time - warmup)
    return -jnp.sort(-exponents)  # descending; sort is differentiable (a permutation)


def diagonal_spectrum(diagonals: jax.Array, k: int, warmup: int = 0) -> jax.Array:
    """The `k` leading exponents, descending, when every step Jacobian is `diag(diagonals[t])`.

    A product of diagonal matrices is diagonal, so its singular values are the products of
    the entries' moduli and the exponents are the time averages of `log|diagonals[t, i]|`
    over the steps after `warmup`: exact for the sequence, with none of the QR estimate's
    transient, at O(time x state) instead of O(time x state x k^2). This is the case of the
    input-gated recurrences (`h_t = a(x_t) h_{t-1} + b(x_t)`: minGRU, minLSTM, RG-LRU, S6),
    which say so through `jacobian_diagonal(inputs)`.
    """
    rates = jnp.mean(jnp.log(jnp.abs(diagonals[warmup:])), axis=0)
    return jax.lax.top_k(rates, k)[0]


def _check_int(name: str, value: Any) -> int:
    # These set array shapes and loop lengths, so they must be concrete integers.
    if isinstance(value, bool):
        raise ValueError(f"{name} must be an int, got {value!r}")
    try:
        return operator.index(value)
    except TypeError:
        raise ValueError(f"{name} must be an int, got {value!r}") from None


def _accumulate_growth(
    transition: Transition,
    h: jax.Array,
    q: jax.Array,
    xs: jax.Array,
    every: int,
    warmup: int,
    trajectory_gradient: float,
) -> jax.Array:
    """`sum log|diag R|` `(k,)` over the steps after `warmup`, with a QR every `every` steps.

    One `lax.scan` over blocks of `every` steps, QR at the end of each block, so the
    step and the QR are each compiled once whatever the length, warm-up or remainder
    (a separate warm-up pass and a remainder block would each compile the step again;
    compilation dominates short runs). To fit everything into equal blocks, masked
    no-op steps pad the front (so that the warm-up ends on a block boundary and is
    re-orthonormalised there but not counted) and the back (the last, shorter block).
    A no-op step leaves `h` and `q` unchanged. With `every=1` there is no padding and
    no masking.
    """
    time, k = xs.shape[0], q.shape[1]
    pad_front = -warmup % every
    pad_back = -(pad_front + time) % every
    padded = pad_front + pad_back > 0
    n_blocks = (pad_front + time + pad_back) // every

    def step(carry, xm):
        h, q = carry
        x, real = xm
        # One linearisation per step, then all k tangent directions through it at once:
        # q' = D_t q without ever forming D_t.
        if trajectory_gradient != 1:  # same value, gradient scaled (0: cut)
            fixed = jax.lax.stop_gradient(h)
            h = fixed if trajectory_gradient == 0 else fixed + trajectory_gradient * (h - fixed)
        h_next, push = jax.linearize(lambda s: transition(s, x), h)
        q_next = jax.vmap(push, in_axes=1, out_axes=1)(q).astype(q.dtype)
        if padded:  # static: only when some steps are padding
            h_next = jnp.where(real, h_next, h)
            q_next = jnp.where(real, q_next, q)
        return (h_next, q_next), None

    def block(carry, block_xs):
        h, q, acc = carry
        x, real, counted = block_xs
        if every == 1:  # the reference setting: no inner loop at all
            (h, q), _ = step((h, q), (x[0], real[0]))
        else:
            (h, q), _ = jax.lax.scan(step, (h, q), (x, real))
        q, growth = qr_log_growth(q)
        return (h, q, acc + jnp.where(counted, growth, 0.0)), None

    def pad(a: jax.Array, value) -> jax.Array:
        widths = [(pad_front, pad_back)] + [(0, 0)] * (a.ndim - 1)
        return jnp.pad(a, widths, constant_values=value)

    x = pad(xs, 0).reshape(n_blocks, every, *xs.shape[1:])
    real = pad(jnp.ones(time, bool), False).reshape(n_blocks, every)
    # Blocks ending after the warm-up are counted: warm-up + front padding fill whole blocks.
    counted = jnp.arange(n_blocks) >= (pad_front + warmup) // every
    acc = jnp.zeros(k, q.dtype)
    (_, _, acc), _ = jax.lax.scan(block, (h, q, acc), (x, real, counted))
    return acc


@jax.custom_vjp
def qr_log_growth(a: jax.Array) -> tuple[jax.Array, jax.Array]:
    """`(Q, log|diag R|)` of the thin QR `a = Q R`, `a` `(n, k)` with `k <= n`, full rank.

    Q's column signs are arbitrary; `|R_ii|` is the growth of the i-th direction. The
    QR is LAPACK's (Householder); the VJP is written out (below) instead of transposing
    JAX's QR JVP rule, which costs about twice as much per step in a flossing step.
    """
    q, r = jnp.linalg.qr(a)
    return q, jnp.log(jnp.abs(jnp.diagonal(r)))


def _qr_log_growth_fwd(a):
    q, r = jnp.linalg.qr(a)
    return (q, jnp.log(jnp.abs(jnp.diagonal(r)))), (q, r)


def _qr_log_growth_bwd(res, cotangents):
    """The reverse-mode QR rule for `a = Q R`, `n >= k` (Walter, Lehmann & Lamour 2012;
    Liao et al. 2019, Eq. 10): `A' = (Q' + Q copyltu(M)) R^-T` with `M = R R'^T - Q'^T Q`
    and `copyltu(M) = tril(M) + tril(M, -1)^T`. Here `R' = diag(g / R_ii)` (`g` the
    cotangent of `log|R_ii|`), so `R R'^T` is upper triangular with diagonal `g` and
    contributes `diag(g)` to `copyltu(M)`."""
    q, r = res
    dq, g = cotangents
    m = -(dq.T @ q)
    s = jnp.tril(m) + jnp.tril(m, -1).T + jnp.diag(g)
    # X R^T = dq + Q s: one triangular solve.
    da = jax.lax.linalg.triangular_solve(r, dq + q @ s, left_side=False, lower=False, transpose_a=True)
    return (da,)


qr_log_growth.defvjp(_qr_log_growth_fwd, _qr_log_growth_bwd)


def flossing_loss(exponents: jax.Array, target: float = 0.0) -> jax.Array:
    """`mean((lambda_i - target)^2)`: pulls every tracked exponent toward `target`."""
    return jnp.mean(jnp.square(exponents - target))


# --------------------------------------------------------------------- what is flossed

# The recurrent dynamics: every nnx.Param except those under a `readout` attribute.
# The readout does not enter `transition`, so its gradient would be zero anyway; the
# filter keeps the flossing optimizer from carrying (and Adam from touching) its state.
DYNAMICS = nnx.All(nnx.Param, nnx.Not(nnx.PathContains("readout")))


# -------------------------------------------------------------------------- schedule

FLOSSING_MODES = ("none", "pre", "pre+during")


@dataclasses.dataclass(frozen=True)
class FlossingConfig:
    """Gradient-flossing hyperparameters; frozen, so it can key compiled code.

    Defaults are the reference's: k = 75 exponents, rollout 55 with 16 warm-up steps,
    QR every step, Adam lr 1e-3, target 0; 500 steps before training, and 500 steps
    after every 100 training steps, twice, during training. `trajectory_gradient` (see
    `lyapunov_spectrum`): 1, the exact gradient as in the reference, works well near
    the edge of chaos; for strongly chaotic networks 0 (frozen trajectory) flosses far
    more reliably.

    The dose is the number of flossed exponents: `k` absolute, or `k_fraction` of the
    state size when set (it then wins over `k`), so that architectures whose flat real
    state is 2N (LSTM `[h, c]`, complex states `[Re, Im]`) get the same share of their
    spectrum as N-state ones. `for_state_size` turns either into a concrete k.
    `target` may be below zero: a linear recurrence with lambda_1 > 0 is unstable, and
    flossing a linear system to exactly 0 overshoots into that region
    (docs/flossing.md measures it). `lr` is the flossing Adam's; a suite may set it (and
    `target`) per architecture.
    """

    k: int = 75
    k_fraction: float | None = None
    rollout: int = 55
    warmup: int = 16
    reortho_every: int = 1
    lr: float = 1e-3
    target: float = 0.0
    trajectory_gradient: float = 1.0
    pre_steps: int = 500
    during_steps: int = 500
    during_every: int = 100
    during_times: int = 2

    def __post_init__(self) -> None:
        for name in ("k", "rollout", "reortho_every", "during_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"FlossingConfig.{name} must be >= 1, got {getattr(self, name)}")
        for name in ("warmup", "pre_steps", "during_steps", "during_times"):
            if getattr(self, name) < 0:
                raise ValueError(f"FlossingConfig.{name} must be >= 0, got {getattr(self, name)}")
        if self.warmup >= self.rollout:
            raise ValueError(
                f"FlossingConfig.warmup ({self.warmup}) must be < rollout ({self.rollout})"
            )
        if not 0.0 <= self.trajectory_gradient <= 1.0:
            raise ValueError(
                "FlossingConfig.trajectory_gradient must be in [0, 1], "
                f"got {self.trajectory_gradient}"
            )
        if not self.lr > 0:
            raise ValueError(f"FlossingConfig.lr must be positive, got {self.lr}")
        if not math.isfinite(self.target):
            raise ValueError(f"FlossingConfig.target must be a finite number, got {self.target}")
        if self.k_fraction is not None and not (
            isinstance(self.k_fraction, (int, float))
            and not isinstance(self.k_fraction, bool)
            and 0 < self.k_fraction <= 1
        ):
            raise ValueError(
                "FlossingConfig.k_fraction must be a number in (0, 1] or None, "
                f"got {self.k_fraction!r}"
            )

    def k_for(self, state_size: int) -> int:
        """How many exponents to floss for this state size (the one place k is clipped).

        `round(k_fraction * state_size)` when `k_fraction` is set, else `k`; clipped to
        `[1, state_size]`.
        """
        k = self.k if self.k_fraction is None else round(self.k_fraction * state_size)
        return min(max(k, 1), state_size)

    def for_state_size(self, state_size: int) -> FlossingConfig:
        """This config with `k` set to `k_for(state_size)`."""
        k = self.k_for(state_size)
        return self if k == self.k else dataclasses.replace(self, k=k)


class FlossingPhase(NamedTuple):
    """Floss for `n_steps` steps once `at_step` training steps are done (0: before training)."""

    at_step: int
    n_steps: int


def flossing_schedule(
    mode: str, train_steps: int, config: FlossingConfig = FlossingConfig()
) -> tuple[FlossingPhase, ...]:
    """When to floss and for how long, in training order.

    - "none": never.
    - "pre": `pre_steps` flossing steps before training.
    - "pre+during": as "pre", plus `during_steps` flossing steps after training steps
      `during_every, 2 * during_every, ...` (`during_times` times); points at or after
      the end of training are dropped, since flossing then would not affect training.
    Phases with zero flossing steps are omitted.
    """
    if mode not in FLOSSING_MODES:
        raise ValueError(
            f"unknown flossing mode {mode!r}; allowed: {', '.join(map(repr, FLOSSING_MODES))}"
        )
    if train_steps < 0:
        raise ValueError(f"train_steps must be >= 0, got {train_steps}")
    phases = []
    if mode in ("pre", "pre+during") and config.pre_steps:
        phases.append(FlossingPhase(0, config.pre_steps))
    if mode == "pre+during" and config.during_steps:
        for i in range(1, config.during_times + 1):
            at = i * config.during_every
            if at < train_steps:
                phases.append(FlossingPhase(at, config.during_steps))
    return tuple(phases)


# -------------------------------------------------------------------------- flossing


@functools.lru_cache(maxsize=None)
def _adam(lr: float) -> optax.GradientTransformation:
    # One transformation object per learning rate: the optimizer's graph definition
    # holds `tx`, and compiled `floss` is keyed on it, so a fresh `optax.adam` per
    # optimizer would recompile for every new model.
    return optax.adam(lr)


def make_flossing_optimizer(
    model: nnx.Module, config: FlossingConfig = FlossingConfig()
) -> nnx.Optimizer:
    """The flossing optimizer: its own Adam(`config.lr`) on the `DYNAMICS` parameters."""
    return nnx.Optimizer(model, _adam(config.lr), wrt=DYNAMICS)


def _initial_state(model: nnx.Module) -> jax.Array:
    if hasattr(model, "initial_state"):
        return model.initial_state()
    return jnp.zeros((model.state_size,), jnp.float32)


class _Spec(NamedTuple):
    """What compiled code depends on: the spectrum settings, k already clipped.

    Static arguments are these rather than the whole config, so configs differing
    only in the schedule or in the (optimizer-held) learning rate share compilations.
    """

    k: int
    reortho_every: int
    warmup: int
    trajectory_gradient: float
    target: float

    @classmethod
    def of(cls, config: FlossingConfig, state_size: int) -> _Spec:
        config = config.for_state_size(state_size)
        return cls(
            config.k, config.reortho_every, config.warmup, config.trajectory_gradient, config.target
        )


def _model_spectrum(model: nnx.Module, inputs: jax.Array, spec: _Spec, key) -> jax.Array:
    """The spectrum flossing and the diagnostics use: exact for a model whose step Jacobian is
    diagonal and independent of the state (`jacobian_diagonal(inputs)` not None), else QR."""
    diagonal = getattr(model, "jacobian_diagonal", None)
    diagonals = diagonal(inputs) if callable(diagonal) else None
    if diagonals is not None:
        return diagonal_spectrum(diagonals, spec.k, spec.warmup)
    return lyapunov_spectrum(
        model.transition,
        _initial_state(model),
        inputs,
        k=spec.k,
        reortho_every=spec.reortho_every,
        warmup=spec.warmup,
        key=key,
        trajectory_gradient=spec.trajectory_gradient,
    )


@functools.partial(jax.jit, static_argnums=(0, 4))
def _floss_compiled(graphdef, state, inputs, keys, spec: _Spec):
    TRACE_COUNTS["floss"] += 1

    def one_step(state, xs):
        x, key = xs
        # merge may reuse the state's Variable objects, which the update mutates: keep
        # a separate copy of the old values to fall back to.
        old = jax.tree.map(lambda a: a, state)
        model, optimizer = nnx.merge(graphdef, state)

        def loss_fn(model):
            return flossing_loss(_model_spectrum(model, x, spec, key), spec.target)

        loss, grads = nnx.value_and_grad(loss_fn, argnums=nnx.DiffState(0, DYNAMICS))(model)
        optimizer.update(model, grads)
        # A chaotic network's exact spectrum gradient can overflow float32 (the state's
        # sensitivity grows like exp(lambda_1 t)): skip such a step (model, Adam state
        # and step count unchanged) instead of turning every parameter into NaN. A
        # select, not a lax.cond: no second copy of the update to compile.
        finite = jnp.isfinite(loss)
        for g in jax.tree.leaves(grads):
            finite &= jnp.all(jnp.isfinite(g))
        new_state = nnx.state((model, optimizer))
        return jax.tree.map(lambda new, prev: jnp.where(finite, new, prev), new_state, old), loss

    return jax.lax.scan(one_step, state, (inputs, keys))


def floss(
    model: nnx.Module,
    optimizer: nnx.Optimizer,
    inputs: jax.Array,
    keys: jax.Array,
    config: FlossingConfig = FlossingConfig(),
) -> jax.Array:
    """Run `n_steps` flossing steps in one compiled call; updates model and optimizer in place.

    Each step estimates the spectrum on one input sequence `inputs[i]` (rollout,
    input_size) from `model.initial_state()`, with a random initial basis from
    `keys[i]` (exactly, without QR, for a model with `jacobian_diagonal`), and takes one
    optimizer step on `flossing_loss` w.r.t. `DYNAMICS`.

    Args:
      model: any architecture with `state_size` and `transition`.
      optimizer: from `make_flossing_optimizer(model, config)`.
      inputs: `(n_steps, rollout, input_size)`, a fresh task input per step.
      keys: `(n_steps,)` PRNG keys (or `(n_steps, 2)` raw keys).
      config: the flossing hyperparameters; `k` is clipped to the state size. The
        learning rate is the optimizer's (`make_flossing_optimizer` takes it from here).

    Returns:
      The flossing loss before each step, `(n_steps,)`. A step whose loss or gradient
      is not finite is skipped (`optimizer.step` does not advance).
    """
    inputs = jnp.asarray(inputs)
    if inputs.ndim != 3:
        raise ValueError(
            f"inputs must have shape (n_steps, rollout, input_size), got {inputs.shape}"
        )
    if keys.shape[0] != inputs.shape[0]:
        raise ValueError(
            f"need one key per flossing step: {keys.shape[0]} keys, {inputs.shape[0]} inputs"
        )
    if inputs.shape[0] == 0:
        return jnp.zeros((0,), jnp.float32)
    graphdef, state = nnx.split((model, optimizer))
    spec = _Spec.of(config, model.state_size)
    state, losses = _floss_compiled(graphdef, state, inputs, keys, spec)
    nnx.update((model, optimizer), state)
    return losses


def flossing_inputs(
    task: Any, arrays: Any, key: jax.Array, n_steps: int, config: FlossingConfig = FlossingConfig()
) -> tuple[jax.Array, jax.Array]:
    """`(inputs, keys)` for `floss`: `n_steps` fresh task sequences of length `config.rollout`.

    Uses the task contract's `sample_inputs(arrays, key, length)`; the second output are
    the keys for the random initial bases.
    """
    k_inputs, k_basis = jax.random.split(key)
    sample = lambda kk: task.sample_inputs(arrays, kk, config.rollout)  # noqa: E731
    inputs = jax.vmap(sample)(jax.random.split(k_inputs, n_steps))
    return inputs, jax.random.split(k_basis, n_steps)


# ----------------------------------------------------------------------- diagnostics


@dataclasses.dataclass(frozen=True)
class DiagnosticsConfig:
    """How the reported diagnostics are estimated, separately from how flossing estimates.

    A flossing step can afford a noisy exponent (55 steps, 16 of them warm-up); a reported
    one cannot: the QR estimate carries a transient of about `c / (steps - warmup)` (the
    basis aligning with the Lyapunov vectors; `c` grows with the non-normality of the
    dynamics), 0.002-0.004 at 200 steps with 16 warm-up, as large as the differences
    between architectures. With 2000 steps, the first 500 warm-up, it is below 5e-4
    (tests/test_flossing.py::test_default_diagnostics_remove_the_short_estimate_bias).

    Fields:
      steps: length of the input sequence to sample for `lyapunov_diagnostics`.
      warmup: steps run before the exponents start accumulating.
      lags: the gradient-vs-lag curve covers lags `0..lags`, ending at the last step.
      fit_from: the decay rate is fitted over lags `fit_from..lags`, past the first
        lags where the fast-decaying directions still count.
    """

    steps: int = 2000
    warmup: int = 500
    lags: int = 100
    fit_from: int = 20

    def __post_init__(self) -> None:
        for name in ("steps", "warmup", "lags", "fit_from"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"DiagnosticsConfig.{name} must be an int >= 0, got {value!r}")
        if not self.warmup < self.steps:
            raise ValueError(
                f"DiagnosticsConfig.warmup ({self.warmup}) must be < steps ({self.steps})"
            )
        if not self.lags <= self.steps:
            raise ValueError(
                f"DiagnosticsConfig.lags ({self.lags}) must be <= steps ({self.steps})"
            )
        if not self.fit_from + 2 <= self.lags:
            raise ValueError(
                f"DiagnosticsConfig.fit_from ({self.fit_from}) must be <= lags - 2 "
                f"({self.lags - 2}): a slope needs at least two points"
            )


def gradient_lag_norms(
    transition: Transition,
    h0: jax.Array,
    inputs: jax.Array,
    *,
    lags: int,
    cotangent: jax.Array | None = None,
) -> jax.Array:
    """How a gradient at the last step shrinks or grows as it is carried back in time.

    Along the trajectory `h_t = transition(h_{t-1}, x_t)`, `t = 1..T`, returns for each
    lag `l = 0..lags` the norm of `c^T d h_T / d h_{T-l}`: the product of the last `l`
    step Jacobians, transposed, applied to the cotangent `c` (backpropagation through
    time). With `c` the gradient of a loss at step T w.r.t. `h_T` this is
    `||d L_T / d h_{T-l}||`; with `cotangent=None` (the identity) it is the Frobenius
    norm of the long-term Jacobian `d h_T / d h_{T-l}`, whose log grows per step like
    lambda_1 at long lags (Engelken 2023, Sec. 3: gradients vanish or explode at the
    rate of the leading Lyapunov exponent).

    Args:
      transition, h0, inputs: as in `lyapunov_spectrum`.
      lags: `0 <= lags <= time`.
      cotangent: `(state_size,)` or `(state_size, m)`; None: the identity.

    Returns:
      `(lags + 1,)` norms, lag 0 first (the norm of the cotangent itself).
    """
    h0, inputs = jnp.asarray(h0), jnp.asarray(inputs)
    if h0.ndim != 1:
        raise ValueError(f"h0 must be one example's flat state (state_size,), got shape {h0.shape}")
    if inputs.ndim != 2:
        raise ValueError(f"inputs must have shape (time, input_size), got {inputs.shape}")
    n, time = h0.shape[0], inputs.shape[0]
    lags = _check_int("lags", lags)
    if not 0 <= lags <= time:
        raise ValueError(f"lags must satisfy 0 <= lags <= time = {time}, got lags={lags}")
    dtype = jnp.result_type(h0.dtype, jax.eval_shape(transition, h0, inputs[0]).dtype)
    g = jnp.eye(n, dtype=dtype) if cotangent is None else jnp.asarray(cotangent, dtype)
    if g.ndim == 1:
        g = g[:, None]
    if g.ndim != 2 or g.shape[0] != n:
        raise ValueError(
            f"cotangent must have shape ({n},) or ({n}, m), got {jnp.shape(cotangent)}"
        )

    def forward(h, x):
        return transition(h, x).astype(dtype), h  # keep h_{t-1}: step t is linearised there

    _, previous = jax.lax.scan(forward, h0.astype(dtype), inputs)

    def back(g, step):
        h_prev, x = step
        _, pull = jax.vjp(lambda s: transition(s, x), h_prev)
        g = jax.vmap(lambda c: pull(c)[0], in_axes=1, out_axes=1)(g).astype(dtype)
        return g, _scaled_norm(g)

    # Reverse scan over the last `lags` steps: output i belongs to step time - lags + i,
    # after which the cotangent has gone back lags - i steps.
    _, norms = jax.lax.scan(back, g, (previous[time - lags :], inputs[time - lags :]), reverse=True)
    return jnp.concatenate([_scaled_norm(g)[None], norms[::-1]])


def _scaled_norm(g: jax.Array) -> jax.Array:
    """Frobenius norm computed as `m * |g / m|` with `m = max |g|`: squaring entries of 1e-20
    underflows in float32, so a gradient that vanishes at a healthy rate would read 0 (and
    its decay rate NaN) long before its entries themselves underflow."""
    m = jnp.max(jnp.abs(g))
    safe = jnp.where(m > 0, m, 1)
    return jnp.where(m > 0, m * jnp.linalg.norm(g / safe), 0)


def gradient_decay_rate(norms: Any, fit_from: int = 0) -> float:
    """Decay per step of `norms[lag]`: minus the least-squares slope of `log norms` vs lag.

    Over lags `fit_from..len(norms) - 1`. Positive: gradients vanish (about `-lambda_1`
    for a gradient carried far enough back); negative: they explode. NaN when a norm
    in the fitted range is zero or not finite.
    """
    with np.errstate(divide="ignore", invalid="ignore"):  # log 0 = -inf: reported as NaN
        y = np.log(np.asarray(norms, np.float64)[fit_from:])
    if y.size < 2:
        raise ValueError(f"need at least two lags from fit_from={fit_from}, got {y.size}")
    if not np.all(np.isfinite(y)):
        return math.nan
    return -float(np.polyfit(np.arange(fit_from, fit_from + y.size), y, 1)[0])


@functools.partial(jax.jit, static_argnums=(0, 4, 5, 6))
def _diagnostics_compiled(graphdef, state, inputs, key, spec: _Spec, warmup: int, lags: int):
    TRACE_COUNTS["diagnostics"] += 1
    model = nnx.merge(graphdef, state)
    lam = _model_spectrum(model, inputs, spec._replace(warmup=warmup), key)
    norms = gradient_lag_norms(model.transition, _initial_state(model), inputs, lags=lags)
    return lam, norms


def lyapunov_diagnostics(
    model: nnx.Module,
    inputs: jax.Array,
    config: FlossingConfig = FlossingConfig(),
    *,
    key: jax.Array | None = None,
    diagnostics: DiagnosticsConfig = DiagnosticsConfig(),
) -> dict[str, float]:
    """Leading exponent, condition-number proxy and gradient decay along one input sequence.

    Keys of the returned dict:
      - `lambda_1`: the leading exponent (> 0: chaotic forward dynamics, exploding
        gradients; < 0: contracting, vanishing).
      - `lambda_k`: the k-th, the last of the tracked (flossed) directions.
      - `lambda_spread`: `lambda_1 - lambda_k`, the log condition number per time step
        of the long-term Jacobian over the k tracked directions (what flossing
        compresses).
      - `k`: how many exponents, `config.k_for(state_size)`.
      - `grad_decay_rate`: `gradient_decay_rate` of the long-term Jacobian's norm over
        the last `diagnostics.lags` steps (`gradient_lag_norms` from the initial state),
        fitted from `diagnostics.fit_from`; about `-lambda_1`.

    The spectrum uses `config`'s k and `reortho_every` with `diagnostics.warmup` (not the
    flossing warm-up); the initial basis is random from `key` (default `jax.random.key(0)`:
    deterministic, and generic so diagonal recurrences are not stuck in coordinate
    subspaces). A model with `jacobian_diagonal` gets the exact `diagonal_spectrum` instead.

    Args:
      inputs: `(time, input_size)`; sample `diagnostics.steps` steps (shorter sequences
        are allowed down to `warmup + 1` and `lags` steps, at the price of the bias).
    """
    inputs = jnp.asarray(inputs)
    time = inputs.shape[0] if inputs.ndim == 2 else None
    if time is not None and not diagnostics.warmup < time:
        raise ValueError(
            f"lyapunov_diagnostics needs more than diagnostics.warmup = {diagnostics.warmup} input "
            f"steps, got {time}: sample DiagnosticsConfig.steps = {diagnostics.steps}"
        )
    if time is not None and not diagnostics.lags <= time:
        raise ValueError(
            f"lyapunov_diagnostics needs at least diagnostics.lags = {diagnostics.lags} input "
            f"steps, got {time}"
        )
    spec = _Spec.of(config, model.state_size)._replace(trajectory_gradient=1.0, target=0.0)
    key = jax.random.key(0) if key is None else key
    lam, norms = _diagnostics_compiled(
        *nnx.split(model), inputs, key, spec, diagnostics.warmup, diagnostics.lags
    )
    lam1, lamk = float(lam[0]), float(lam[-1])
    return {
        "lambda_1": lam1,
        "lambda_k": lamk,
        "lambda_spread": lam1 - lamk,
        "k": spec.k,
        "grad_decay_rate": gradient_decay_rate(norms, diagnostics.fit_from),
    }


def initial_state_gradient_unsupported(model: nnx.Module) -> str | None:
    """Why `initial_state_gradient_norm` cannot measure this model, or None when it can.

    It needs to feed a state: `model(inputs, h0)` as `zoo.RecurrentModel` takes it. A
    plugin whose `__call__` takes only the inputs has no such entry (its `transition`
    alone does not say how the readout turns states into outputs).
    """
    try:
        parameters = inspect.signature(model.__call__).parameters.values()
    except (TypeError, ValueError):
        return f"{type(model).__name__}.__call__ has no inspectable signature"
    positional = [
        p for p in parameters
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.VAR_POSITIONAL)
    ]
    if len(positional) >= 2 or any(p.kind is p.VAR_POSITIONAL for p in positional):
        return None
    return f"{type(model).__name__}.__call__ takes no initial state (model(inputs, h0) is needed)"


@functools.partial(jax.jit, static_argnums=(0, 2))
def _h0_grad_norm_compiled(graphdef, state, loss_fn, batch):
    TRACE_COUNTS["h0_grad"] += 1
    model = nnx.merge(graphdef, state)
    inputs = batch.inputs if hasattr(batch, "inputs") else batch[0]
    h0 = jnp.broadcast_to(_initial_state(model), (inputs.shape[0], model.state_size))
    grad = jax.grad(lambda h: loss_fn(model(inputs, h), batch))(h0)
    return jnp.linalg.norm(grad)


def initial_state_gradient_norm(model: nnx.Module, loss_fn: Callable, batch: Any) -> float | None:
    """Norm of `d loss / d h0` at the initial state: how much the loss still hears the start.

    `loss_fn(outputs, batch) -> scalar` (a task's `loss`); `batch` has `.inputs`
    `(batch, time, input_size)` (or is a tuple whose first entry is the inputs). `h0` is
    `model.initial_state()` (zeros without one) for every example; the norm is over the
    whole `(batch, state_size)` gradient. Returns None for a model that cannot take `h0`
    (`initial_state_gradient_unsupported(model)` says why). `loss_fn` keys the compiled
    code, so pass the same callable (e.g. `task.loss`) rather than a fresh lambda.
    """
    if initial_state_gradient_unsupported(model) is not None:
        return None
    return float(_h0_grad_norm_compiled(*nnx.split(model), loss_fn, batch))
