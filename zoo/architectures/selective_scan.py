"""S6's sequence loop on a CPU: the outputs `y_t` without the `(time, batch, width x d_state)` tensors.

Mamba (Gu & Dao 2023, section 3.3.2) never writes the expanded coefficients and states of
its selective scan to slow memory: each step forms them from the step's small inputs and
contracts the state with `C_t` at once. On a CPU the same holds for XLA's loop: the generic
path (`GatedLinearRNN.states` then `S6.output`) builds `exp(Delta A)`, `Delta B u`, all
states and their cotangents as `(T, B, width, d_state)` tensors (16 times the width), and its
time goes to those. Per step, for channel d and state index n:

    a_t = exp(Delta_t[d] A[d, n])          b_t = Delta_t[d] u_t[d] B_t[n]
    h_t = a_t h_{t-1} + b_t                y_t[d] = sum_n C_t[n] h_t[d, n]

Backward, with `g_t = dL/dh_t` (what y_t sends plus `a_{t+1} g_{t+1}`):

    dC_t[n]     = sum_d dy_t[d] h_t[d, n]
    dDelta_t[d] = sum_n g_t h_{t-1} a_t A[d, n] + u_t[d] sum_n g_t B_t[n]
    du_t[d]     = Delta_t[d] sum_n g_t B_t[n]        dB_t[n] = sum_d g_t Delta_t[d] u_t[d]
    dA[d, n]    = sum_{t, batch} g_t h_{t-1} a_t Delta_t[d]          dh_0 = a_1 g_1

The forward keeps the states entering each step, `h_{t-1}` (one `(T, B, width, d_state)`
tensor), for the backward, which recomputes `a_t` and `h_t` (one step) rather than storing them.
`A` enters as its negative values.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def _decay(delta_t: jax.Array, a: jax.Array) -> jax.Array:
    """`exp(Delta_t A)` `(batch, width, d_state)` (zero-order hold)."""
    return jnp.exp(delta_t[..., None] * a)


def _forward(delta, u, b, c, a, h0, keep: bool):
    def body(h_prev, inputs):
        delta_t, u_t, b_t, c_t = inputs
        h = _decay(delta_t, a) * h_prev + (delta_t * u_t)[..., None] * b_t[:, None, :]
        y = jnp.sum(h * c_t[:, None, :], axis=-1)
        return h, ((y, h_prev) if keep else y)

    return jax.lax.scan(body, h0, (delta, u, b, c))[1]


@jax.custom_vjp
def selective_scan(delta: jax.Array, u: jax.Array, b: jax.Array, c: jax.Array, a: jax.Array,
                   h0: jax.Array) -> jax.Array:
    """The outputs `y` `(time, batch, width)` of S6's recurrence, time-major.

    `delta`, `u`: `(time, batch, width)`; `b`, `c`: `(time, batch, d_state)`; `a`: `(width,
    d_state)`, negative; `h0`: `(batch, width, d_state)`. Equal to contracting the states of
    `zoo.architectures.gated_linear.gated_recurrence` with `C_t`, gradients included, up to
    float rounding.
    """
    return _forward(delta, u, b, c, a, h0, keep=False)


def _scan_fwd(delta, u, b, c, a, h0):
    y, h_prevs = _forward(delta, u, b, c, a, h0, keep=True)
    return y, (delta, u, b, c, a, h_prevs)


def _scan_bwd(res, dy):
    delta, u, b, c, a, h_prevs = res

    def body(carry, inputs):
        g_next, d_a = carry  # g_next = a_{t+1} g_{t+1}
        delta_t, u_t, b_t, c_t, dy_t, h_prev_t = inputs
        g = g_next + dy_t[..., None] * c_t[:, None, :]
        decay = _decay(delta_t, a)
        h_t = decay * h_prev_t + (delta_t * u_t)[..., None] * b_t[:, None, :]  # one step again
        g_log_a = g * h_prev_t * decay  # the cotangent of Delta_t A
        g_du = jnp.sum(g * b_t[:, None, :], axis=-1)  # of Delta_t u_t
        d_delta = jnp.sum(g_log_a * a, axis=-1) + g_du * u_t
        d_b = jnp.sum(g * (delta_t * u_t)[..., None], axis=1)
        d_c = jnp.sum(h_t * dy_t[..., None], axis=1)
        d_a = d_a + jnp.sum(g_log_a * delta_t[..., None], axis=0)
        return (g * decay, d_a), (d_delta, g_du * delta_t, d_b, d_c)

    init = (jnp.zeros_like(h_prevs[0]), jnp.zeros_like(a))
    (d_h0, d_a), (d_delta, d_u, d_b, d_c) = jax.lax.scan(
        body, init, (delta, u, b, c, dy, h_prevs), reverse=True)
    return d_delta, d_u, d_b, d_c, d_a, d_h0


selective_scan.defvjp(_scan_fwd, _scan_bwd)
