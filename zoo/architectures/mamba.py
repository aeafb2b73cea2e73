"""The selective state space model S6 of Mamba (Gu & Dao 2023, Algorithm 2 and section 3.5).

Per channel d of the `hidden_size`-wide signal `u_t = Linear(x_t)` and state index n:

    Delta_t = softplus(Linear(u_t) + dt_bias)          (d)   input-dependent step
    B_t, C_t = Linear(u_t)                             (n)   input-dependent, shared over d
    h_t[d, n] = exp(Delta_t[d] A[d, n]) h_{t-1}[d, n] + Delta_t[d] B_t[n] u_t[d]
    y_t[d] = sum_n C_t[n] h_t[d, n] + D[d] u_t[d]

ZOH for `A`, the simplified Euler step `Delta B` for `B`, as in Mamba's code. Initialisation
as the paper: S4D-real `A[d, n] = -(n + 1)` (stored as `A_log`), `Delta` at
`exp(U(log dt_min, log dt_max))` with `dt_min = 1e-3`, `dt_max = 1e-1` through the inverse
softplus of `dt_bias`, a low-rank `Delta` projection of rank `ceil(width / 16)`, `D = 1`.
The state is `h` flattened to `hidden_size * d_state` (`d_state = 16`); the output reads
`C_t` from the input, so `output` is overridden. Mamba's block also has a short convolution
and a SiLU gate around S6; they are left out (this is the SSM itself).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from flax import nnx

from zoo.architectures.base import Readout, cast_parameters
from zoo.architectures.gated_linear import GatedLinearRNN
from zoo.architectures.registry import register_architecture
from zoo.architectures.selective_scan import selective_scan


def inverse_softplus(y: jax.Array) -> jax.Array:
    """`x` with `softplus(x) = y` (y > 0)."""
    return y + jnp.log(-jnp.expm1(-y))


@register_architecture("s6")
class S6(GatedLinearRNN):
    """Mamba's selective SSM; options `d_state` (16), `dt_min` (1e-3), `dt_max` (0.1), `dt_rank` (ceil(width/16))."""

    def __init__(
        self,
        *,
        input_size: int,
        hidden_size: int,
        output_size: int,
        rngs: nnx.Rngs,
        d_state: int = 16,
        dt_min: float = 1e-3,
        dt_max: float = 1e-1,
        dt_rank: int | None = None,
        param_dtype=jnp.float32,
    ) -> None:
        if not 0 < dt_min <= dt_max:
            raise ValueError(f"s6 needs 0 < dt_min <= dt_max, got dt_min={dt_min}, dt_max={dt_max}")
        if not isinstance(d_state, int) or d_state <= 0:
            raise ValueError(f"s6 d_state must be a positive integer, got {d_state!r}")
        d, n = hidden_size, d_state
        rank = math.ceil(d / 16) if dt_rank is None else dt_rank
        self.width, self.d_state, self.dt_rank = d, n, rank
        self.state_size = d * n
        self.encoder = nnx.Linear(input_size, d, rngs=rngs)
        self.x_proj = nnx.Linear(d, rank + 2 * n, use_bias=False, rngs=rngs)  # -> (Delta low rank, B, C)
        bound = rank**-0.5  # Mamba's dt_proj init ("constant" dt_scale = 1)
        self.dt_proj = nnx.Param(jax.random.uniform(rngs.params(), (rank, d), minval=-bound, maxval=bound))
        dt = jnp.exp(jax.random.uniform(rngs.params(), (d,), minval=math.log(dt_min), maxval=math.log(dt_max)))
        self.dt_bias = nnx.Param(inverse_softplus(jnp.maximum(dt, 1e-4)))  # Mamba's dt_init_floor
        self.A_log = nnx.Param(jnp.log(jnp.broadcast_to(jnp.arange(1.0, n + 1), (d, n))))
        self.D = nnx.Param(jnp.ones((d,)))
        self.readout = Readout(d, input_size, output_size, skip=False, rngs=rngs)
        cast_parameters(self, param_dtype)

    def selection(self, u: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
        """`(Delta, B, C)` for the encoded inputs `u` `(..., width)`."""
        low, b, c = jnp.split(self.x_proj(u), [self.dt_rank, self.dt_rank + self.d_state], axis=-1)
        return jax.nn.softplus(low @ self.dt_proj[...] + self.dt_bias[...]), b, c

    def coefficients(self, x):
        u = self.encoder(x)
        delta, b, _ = self.selection(u)
        a = jnp.exp(delta[..., None] * -jnp.exp(self.A_log[...]))  # ZOH: exp(Delta A)
        drive = (delta * u)[..., None] * b[..., None, :]  # Euler: Delta B u
        flat = (*x.shape[:-1], self.state_size)
        return a.reshape(flat), drive.reshape(flat)

    def __call__(self, x: jax.Array, h0: jax.Array | None = None) -> jax.Array:
        """Outputs `(batch, time, output_size)`; on the CPU loop, by `selective_scan`, which
        never forms the `(time, batch, width x d_state)` states (equal to `output(states(x))`)."""
        if self.use_parallel_scan() or not self.loop_vjp:
            return super().__call__(x, h0)
        x = self.cast_inputs(x)
        u = self.encoder(x)
        delta, b, c = self.selection(u)
        h0 = self.initial_states(x.shape[0], h0).reshape(x.shape[0], self.width, self.d_state)
        tm = lambda v: jnp.swapaxes(v, 0, 1)  # noqa: E731  (time-major for the loop)
        y = tm(selective_scan(tm(delta), tm(u), tm(b), tm(c), -jnp.exp(self.A_log[...]), h0))
        return self.readout(y + self.D[...] * u, x)

    def output(self, states, x):
        u = self.encoder(x)
        _, _, c = self.selection(u)
        h = states.reshape(*states.shape[:-1], self.width, self.d_state)
        y = jnp.einsum("...dn,...n->...d", h, c) + self.D[...] * u
        return self.readout(y, x)
