"""The fast sequence path: `h_t = cell(h_{t-1}, u_t, phi(h_{t-1}) @ W)` with a hand-made VJP.

Why not just `lax.scan(step)` under `jax.grad`? On XLA's CPU backend three things make
the autodiffed scan of a small recurrent cell several times slower than the arithmetic
needs (measured in benchmarks/, see benchmarks/results.md):

1. An elementwise kernel that reads the step's input through the scan's dynamic slice
   (or writes a per-step residual through a dynamic-update-slice) is compiled to scalar
   code: the slice offset is reloaded for every element, so LLVM cannot vectorise the
   loop. Sigmoid/tanh gates of a (16, 240) block then cost ~10x what they should.
   Here every step input is fetched one step ahead into the loop carry (a plain buffer),
   and the only per-step output is a state, written after it is computed.
2. The transpose of slicing the fused gate pre-activations `z[:, a:b]` is a pad; autodiff
   sums one pad per gate, and XLA fuses the whole gate backward into each element of
   those pads (scalar, with every gate's transcendental recomputed per element). Here the
   cell is differentiated with respect to the already-split gates, and the gate
   cotangents are concatenated explicitly.
3. Autodiff accumulates the weight gradient inside the loop (a small outer product per
   step) and stores a dozen residuals per step. Here the backward loop carries only the
   state cotangent; the weight, bias and input gradients of all steps come after the
   loop, as one large matrix product and vectorised elementwise work (as cuDNN/PyTorch do).

An architecture opts in by returning a `Recurrence` from `RecurrentModel.recurrence()`;
the built-in `rnn`, `lstm`, `gru` and `linear` do. The LSTM goes one step further with its
own loop (`Recurrence.loop`, `zoo.architectures.lstm_loop`): a hand-written cell backward
whose coefficients the forward step stores, so that no gate is evaluated again. Results equal the plain scan's up to
float32 rounding (the tests compare values and gradients).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

PyTree = Any
Parts = tuple[jax.Array, ...]


class Recurrence(NamedTuple):
    """The structured form of a recurrence step, `h' = cell(params, h, u, phi(h) @ kernel)`.

    The flat state `(..., state_size)` is the concatenation of `parts` (widths); the drive
    `u` and the recurrent pre-activation `z = phi(h) @ kernel` are both `(..., gates * width)`
    and are handed to `cell` split into `gates` equal blocks.

    - `kernel`: `(K, gates * width)` recurrent weights.
    - `params`: a pytree of any other arrays `cell` uses (differentiated too).
    - `phi(parts) -> (..., K)`: what multiplies the kernel (e.g. `tanh(h)`, or `h` of `[h, c]`).
    - `cell(params, parts, u_gates, z_gates) -> parts`: the rest of the step, elementwise.
    - `unroll`: time steps per loop iteration. Two pay for the tanh RNN on CPU (10 -> 7 ms
      per training step at N = 80); gated cells get slower, so 1 is the default.
    - `loop`: optional, a whole-sequence function `(kernel, params, h0, u) -> states` with
      its own VJP, equal to the generic loop up to float rounding, that `fused_states`
      runs instead (the LSTM's, `zoo.architectures.lstm_loop`).
    """

    kernel: jax.Array
    params: PyTree
    parts: tuple[int, ...]
    gates: int
    phi: Callable[[Parts], jax.Array]
    cell: Callable[[PyTree, Parts, Parts, Parts], Parts]
    unroll: int = 1
    loop: Callable[[jax.Array, PyTree, jax.Array, jax.Array], jax.Array] | None = None

    def split(self, h: jax.Array) -> Parts:
        """A flat state `(..., state_size)` as its parts."""
        out, start = [], 0
        for width in self.parts:
            out.append(h[..., start : start + width])
            start += width
        return tuple(out)

    @staticmethod
    def join(parts: Parts) -> jax.Array:
        return parts[0] if len(parts) == 1 else jnp.concatenate(parts, axis=-1)

    def gate_blocks(self, a: jax.Array) -> Parts:
        """`(..., gates * width)` as `gates` blocks."""
        if self.gates == 1:
            return (a,)
        return tuple(jnp.split(a, self.gates, axis=-1))

    def step(self, h: jax.Array, u: jax.Array) -> jax.Array:
        """One step on a flat state (any leading batch dimensions)."""
        return self.advance(h, u)[0]

    def advance(self, h: jax.Array, u: jax.Array) -> tuple[jax.Array, jax.Array]:
        """One step, and the recurrent pre-activation `z = phi(h) @ kernel` it used."""
        parts = self.split(h)
        z = self.phi(parts) @ self.kernel
        return self.join(self.cell(self.params, parts, self.gate_blocks(u), self.gate_blocks(z))), z


def add_drive(params, state, u, z):
    """`h' = z + u`: the cell of the tanh RNN and of the linear RNN."""
    del params, state
    return (z[0] + u[0],)


def fetch_step(a: jax.Array, i: jax.Array) -> jax.Array:
    """Time step `i` of a time-major array (for fetching a loop's next input into its carry)."""
    return jax.lax.dynamic_index_in_dim(a, i, axis=0, keepdims=False)


def fused_states(rec: Recurrence, h0: jax.Array, u: jax.Array) -> jax.Array:
    """All states `(time, batch, state_size)` from `h0` `(batch, state_size)` and the drive `u` `(time, batch, G*W)`.

    Time-major in and out: the loops slice whole time steps, and the callers apply
    `input_drive` and the readout per position, so nothing large is transposed.
    """
    if rec.loop is not None:
        return rec.loop(rec.kernel, rec.params, h0, u)
    # Only arrays cross the custom_vjp boundary; the functions are closed over.
    spec = rec._replace(kernel=None, params=None)

    def with_arrays(kernel, params):
        return spec._replace(kernel=kernel, params=params)

    return _make_run(spec, with_arrays)(rec.kernel, rec.params, h0, u)


def _make_run(spec: Recurrence, with_arrays: Callable) -> Callable:
    def forward(kernel, params, h0, u, keep_z: bool):
        rec = with_arrays(kernel, params)
        length = u.shape[0]

        def body(carry, _):
            i, h, u_i = carry
            h, z = rec.advance(h, u_i)
            # Fetch the next input now, into the carry: the next step reads a plain buffer.
            nxt = fetch_step(u, jnp.minimum(i + 1, length - 1))
            return (i + 1, h, nxt), ((h, z) if keep_z else h)

        return jax.lax.scan(body, (jnp.int32(0), h0, u[0]), None, length=length, unroll=rec.unroll)[1]

    @jax.custom_vjp
    def run(kernel, params, h0, u):
        return forward(kernel, params, h0, u, keep_z=False)

    def run_fwd(kernel, params, h0, u):
        hs, zs = forward(kernel, params, h0, u, keep_z=True)
        return hs, (kernel, params, h0, u, hs, zs)

    def run_bwd(res, d_hs):
        kernel, params, h0, u, hs, zs = res
        rec = with_arrays(kernel, params)
        length = u.shape[0]
        h_prev = jnp.concatenate([h0[None], hs[:-1]], axis=0)
        kernel_t = kernel.T

        def body(carry, _):
            i, g, hp, d_h, u_i, z = carry
            nxt = jnp.maximum(i - 1, 0)
            fetched = tuple(fetch_step(a, nxt) for a in (h_prev, d_hs, u, zs))
            total = g + d_h  # d loss / d h_i
            parts = rec.split(hp)
            _, phi_vjp = jax.vjp(rec.phi, parts)
            u_gates = rec.gate_blocks(u_i)
            _, cell_vjp = jax.vjp(
                lambda s, zg: rec.cell(params, s, u_gates, zg), parts, rec.gate_blocks(z)
            )
            d_parts, d_z = cell_vjp(rec.split(total))
            d_a = rec.join(d_z) @ kernel_t
            g = rec.join(d_parts) + rec.join(phi_vjp(d_a)[0])
            return (nxt, g, *fetched), total

        last = length - 1
        init = (jnp.int32(last), jnp.zeros_like(h0), h_prev[last], d_hs[last], u[last], zs[last])
        (_, d_h0, *_), totals = jax.lax.scan(body, init, None, length=length, unroll=rec.unroll)
        totals = totals[::-1]  # d loss / d h_t for every t, in time order

        # Parameter and input gradients of all steps at once.
        parts = rec.split(h_prev)
        _, cell_vjp = jax.vjp(
            lambda p, ug, zg: rec.cell(p, parts, ug, zg),
            params, rec.gate_blocks(u), rec.gate_blocks(zs),
        )
        d_params, d_u, d_z = cell_vjp(rec.split(totals))
        d_z = rec.join(d_z)
        a = rec.phi(parts)
        # (d_z^T a)^T: the orientation XLA's CPU GEMM takes without transposing the large operand.
        d_kernel = (d_z.reshape(-1, d_z.shape[-1]).T @ a.reshape(-1, a.shape[-1])).T
        return d_kernel, d_params, d_h0, rec.join(d_u)

    run.defvjp(run_fwd, run_bwd)
    return run
