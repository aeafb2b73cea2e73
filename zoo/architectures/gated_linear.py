"""Input-gated diagonal linear recurrences `h_t = a_t * h_{t-1} + b_t`, `(a_t, b_t)` from `x_t` alone.

The common form of minGRU / minLSTM, the RG-LRU and the selective SSM (S6): the state
enters linearly, with elementwise coefficients that depend on the input only. Subclasses
give `coefficients(x) -> (a, b)`; `input_drive` packs them as `[a, b]`, so `step` is the
one line `a * h + b` and `transition` keeps the flossing contract.

Sequence paths, chosen by `RecurrentModel.parallel_scan` (by backend when None): the
parallel associative scan (accelerators), with `h0` injected into the first step, or a
sequential loop on CPU: `gated_recurrence` (a hand-made VJP) where `loop_vjp` is True,
else the plain `lax.scan` of `step` under autodiff. Which loop is faster depends on the
cell (benchmarks/arch_steps.py, 2-core CPU, T = 300, batch 16, hidden 64: the hand-made
VJP wins for s6, whose state is 16x wider, and loses for minGRU/minLSTM/RG-LRU).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from zoo.architectures.base import RecurrentModel
from zoo.architectures.diagonal import linear_recurrence
from zoo.architectures.fused import fetch_step


def _gated_loop(a: jax.Array, b: jax.Array, h0: jax.Array, reverse: bool = False) -> jax.Array:
    """All `h_t = a_t h_{t-1} + b_t`, time-major `(T, B, S)`, one step at a time.

    Each step's coefficients are fetched into the carry one step ahead, so the elementwise
    step reads plain buffers (see `zoo.architectures.fused`). `reverse` runs from the last
    step to the first; outputs stay in time order.
    """
    length = b.shape[0]
    at = (lambda i: length - 1 - i) if reverse else (lambda i: i)

    def body(carry, _):
        i, h, a_i, b_i = carry
        h = a_i * h + b_i
        nxt = at(jnp.minimum(i + 1, length - 1))
        return (i + 1, h, fetch_step(a, nxt), fetch_step(b, nxt)), h

    hs = jax.lax.scan(body, (jnp.int32(0), h0, a[at(0)], b[at(0)]), None, length=length)[1]
    return hs[::-1] if reverse else hs


@jax.custom_vjp
def gated_recurrence(a: jax.Array, b: jax.Array, h0: jax.Array) -> jax.Array:
    """States `(T, B, S)` of `h_t = a_t h_{t-1} + b_t` from `h0` `(B, S)`, time-major.

    Backward: `g_t = dL/dh_t + a_{t+1} g_{t+1}` (the same recurrence, run backwards), then
    `dL/da_t = g_t h_{t-1}`, `dL/db_t = g_t`, `dL/dh0 = a_0 g_0`, with no per-step residuals
    beyond the states.
    """
    return _gated_loop(a, b, h0)


def _gated_fwd(a, b, h0):
    hs = _gated_loop(a, b, h0)
    return hs, (a, h0, hs)


def _gated_bwd(res, d_hs):
    a, h0, hs = res
    a_next = jnp.concatenate([a[1:], jnp.zeros_like(a[:1])], axis=0)
    totals = _gated_loop(a_next, d_hs, jnp.zeros_like(h0), reverse=True)
    h_prev = jnp.concatenate([h0[None], hs[:-1]], axis=0)
    return totals * h_prev, totals, a[0] * totals[0]


gated_recurrence.defvjp(_gated_fwd, _gated_bwd)


def parallel_gated_recurrence(a: jax.Array, b: jax.Array, h0: jax.Array) -> jax.Array:
    """`gated_recurrence` by a parallel associative scan over time (axis 0), `h0` folded into `b_0`."""
    return linear_recurrence(a, b.at[0].add(a[0] * h0), axis=0)


class GatedLinearRNN(RecurrentModel):
    """Base class: `h_t = a_t * h_{t-1} + b_t` with `(a_t, b_t) = coefficients(x_t)`."""

    # The CPU loop: `gated_recurrence` (True) or autodiff of the plain scan (False).
    loop_vjp: bool = True

    def coefficients(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        """`(a, b)`, each `(..., state_size)`, for inputs `(..., input_size)`."""
        raise NotImplementedError

    def input_drive(self, x: jax.Array) -> jax.Array:
        return jnp.concatenate(self.coefficients(x), axis=-1)

    def jacobian_diagonal(self, x: jax.Array) -> jax.Array:
        """`a(x)` `(..., state_size)`: `d transition(h, x) / dh = diag(a(x))` for every `h`, which
        lets `zoo.flossing` compute the exponents exactly instead of by QR (`diagonal_spectrum`)."""
        return self.coefficients(x)[0]

    def step(self, h: jax.Array, u: jax.Array) -> jax.Array:
        a, b = jnp.split(u, 2, axis=-1)
        return a * h + b

    def states(self, x: jax.Array, h0: jax.Array | None = None) -> jax.Array:
        parallel = self.use_parallel_scan()
        if not (parallel or self.loop_vjp):
            return self.scan_states(x, h0)
        x = self.cast_inputs(x)
        a, b = self.coefficients(jnp.swapaxes(x, 0, 1))  # time-major
        h0 = self.initial_states(x.shape[0], h0)
        run = parallel_gated_recurrence if parallel else gated_recurrence
        return jnp.swapaxes(run(a, b, h0), 0, 1)
