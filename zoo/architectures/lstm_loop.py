"""The LSTM's own sequence loop: one fused gate matmul per step and a hand-written backward.

The generic fused loop (`zoo.architectures.fused`) differentiates the cell with
`jax.vjp` inside its backward loop and again, for all steps at once, after it: every
gate's sigmoid or tanh is evaluated three times per step and the gate cotangents come
from several small kernels. For the LSTM the backward of one step is a handful of
products of quantities the forward step already has, so the forward step stores them
(Hochreiter & Schmidhuber 1997; the standard LSTM with a forget gate, Gers et al. 2000):

    z = h_{t-1} W + u_t                    u_t = x_t W_in + b (computed for all t at once)
    i, f, o = sigmoid(z_i, z_f, z_o)       g = tanh(z_g)
    c_t = f c_{t-1} + i g                  h_t = o tanh(c_t)

Backward, with `dh`, `dc` the total cotangents of `h_t`, `c_t` (loss terms of step t plus
what step t+1 sent back):

    dc    += dh * o (1 - tanh(c_t)^2)
    dz_i   = dc * g i (1 - i)              dz_f = dc * c_{t-1} f (1 - f)
    dz_g   = dc * i (1 - g^2)              dz_o = dh * tanh(c_t) o (1 - o)
    dh_{t-1} = dz W^T                      dc_{t-1} = dc * f

The six coefficients multiplying `dc` and `dh` are the per-step residual, so the backward
loop holds no transcendental function: two fetches, one fused multiply, one matmul. The
weight gradient `sum_t h_{t-1}^T dz_t` is one matrix product after the loop, and `dz` is
the input drive's cotangent (as cuDNN and PyTorch do). The loops prefetch the next step's
inputs into the carry, for the reason given in `fused.py` (point 1).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from zoo.architectures.fused import fetch_step


def _forward(kernel: jax.Array, h0: jax.Array, u: jax.Array, keep: bool):
    """States `(time, batch, 2N)`; with `keep`, also `h_{t-1}` and the backward coefficients."""
    n, length = kernel.shape[0], u.shape[0]

    def body(carry, _):
        i, h, c, u_i = carry
        z = h @ kernel + u_i
        in_gate = jax.nn.sigmoid(z[:, :n])
        forget = jax.nn.sigmoid(z[:, n : 2 * n])
        cand = jnp.tanh(z[:, 2 * n : 3 * n])
        out_gate = jax.nn.sigmoid(z[:, 3 * n :])
        c_new = forget * c + in_gate * cand
        tanh_c = jnp.tanh(c_new)
        h_new = out_gate * tanh_c
        nxt = fetch_step(u, jnp.minimum(i + 1, length - 1))
        state = jnp.concatenate([h_new, c_new], axis=-1)
        if not keep:
            return (i + 1, h_new, c_new, nxt), state
        # Laid out as the backward uses them: [i, f, g, o] gate factors, then dh -> dc, dc -> dc_prev.
        coef = jnp.concatenate([
            cand * in_gate * (1 - in_gate),
            c * forget * (1 - forget),
            in_gate * (1 - cand * cand),
            tanh_c * out_gate * (1 - out_gate),
            out_gate * (1 - tanh_c * tanh_c),
            forget,
        ], axis=-1)
        return (i + 1, h_new, c_new, nxt), (state, h, coef)

    init = (jnp.int32(0), h0[:, :n], h0[:, n:], u[0])
    return jax.lax.scan(body, init, None, length=length)[1]


@jax.custom_vjp
def lstm_states(kernel: jax.Array, h0: jax.Array, u: jax.Array) -> jax.Array:
    """All states `[h_t, c_t]` `(time, batch, 2N)` from `h0 = [h, c]` `(batch, 2N)` and the drive
    `u` `(time, batch, 4N)`.

    `kernel` is the recurrent weight `(N, 4N)`, gates in the order i, f, g, o; `u` already
    holds the input projection and the bias. Equal to a `lax.scan` of
    `zoo.architectures.gated._lstm_cell` up to float rounding, gradients included.
    """
    return _forward(kernel, h0, u, keep=False)


def _lstm_fwd(kernel, h0, u):
    states, h_prev, coef = _forward(kernel, h0, u, keep=True)
    return states, (kernel, h_prev, coef)


def _lstm_bwd(res, d_states):
    kernel, h_prev, coef = res
    n, length = kernel.shape[0], coef.shape[0]
    kernel_t = kernel.T

    def body(carry, _):
        i, dh, dc, k, d = carry
        nxt = jnp.maximum(i - 1, 0)
        fetched = (fetch_step(coef, nxt), fetch_step(d_states, nxt))
        dh = dh + d[:, :n]
        dc = dc + d[:, n:] + dh * k[:, 4 * n : 5 * n]
        dz = jnp.concatenate([dc, dc, dc, dh], axis=-1) * k[:, : 4 * n]
        return (nxt, dz @ kernel_t, dc * k[:, 5 * n :], *fetched), dz

    last = length - 1
    zero = jnp.zeros(d_states.shape[1:2] + (n,), d_states.dtype)
    init = (jnp.int32(last), zero, zero, coef[last], d_states[last])
    # reverse=True stores step t's dz at index t: time order without a reversed copy.
    (_, dh0, dc0, *_), dz = jax.lax.scan(body, init, None, length=length, reverse=True)
    d_kernel = h_prev.reshape(-1, n).T @ dz.reshape(-1, 4 * n)
    return d_kernel, jnp.concatenate([dh0, dc0], axis=-1), dz


lstm_states.defvjp(_lstm_fwd, _lstm_bwd)
