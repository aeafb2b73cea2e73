"""coRNN: the coupled oscillatory RNN (Rusch & Mishra 2021, eqs. 1-3).

A network of damped, driven nonlinear oscillators `y'' = tanh(W y + W~ y' + V u + b) - gamma y - eps y'`,
written first order with `z = y'` and discretised by their IMEX scheme (eq. 3):

    z_n = z_{n-1} + dt [tanh(W y_{n-1} + W~ z_{n-1} + V u_n + b) - gamma y_{n-1} - eps z_m]
    y_n = y_{n-1} + dt z_n

with `z_m = z_{n-1}` (explicit damping, as their released code; the default) or `z_m = z_n`
(`implicit_damping=True`, solved in closed form: divide by `1 + dt eps`). The state is
`[y, z]`; the readout sees `y`. Defaults `dt = 0.06`, `gamma = 66`, `eps = 15` are the
paper's for the adding problem (their `adding_task.py`), and the weights follow their one
`nn.Linear` on `[u, z, y]` (PyTorch's `U(-1/sqrt(fan_in), 1/sqrt(fan_in))`).
"""

from __future__ import annotations

import math
from functools import partial

import jax
import jax.numpy as jnp
from flax import nnx

from zoo.architectures.base import Readout, RecurrentModel, cast_parameters
from zoo.architectures.fused import Recurrence
from zoo.architectures.registry import register_architecture


def _cornn_cell(params, state, u, z, *, dt, gamma, eps, implicit):
    """One IMEX step; `u` is `V u_n + b`, `z` is `W y + W~ z` of the previous state."""
    del params
    y, vel = state
    force = jnp.tanh(u[0] + z[0]) - gamma * y
    if implicit:
        vel = (vel + dt * force) / (1 + dt * eps)
    else:
        vel = vel + dt * (force - eps * vel)
    return y + dt * vel, vel


@register_architecture("cornn")
class CoRNN(RecurrentModel):
    """coRNN; options `dt` (0.06), `gamma` (66), `epsilon` (15), `implicit_damping` (False)."""

    def __init__(
        self,
        *,
        input_size: int,
        hidden_size: int,
        output_size: int,
        rngs: nnx.Rngs,
        dt: float = 0.06,
        gamma: float = 66.0,
        epsilon: float = 15.0,
        implicit_damping: bool = False,
        param_dtype=jnp.float32,
    ) -> None:
        if dt <= 0 or gamma < 0 or epsilon < 0:
            raise ValueError("cornn needs dt > 0, gamma >= 0, epsilon >= 0; "
                             f"got dt={dt}, gamma={gamma}, epsilon={epsilon}")
        n = hidden_size
        self.hidden_size = n
        self.state_size = 2 * n
        self.dt, self.gamma, self.epsilon = float(dt), float(gamma), float(epsilon)
        self.implicit_damping = bool(implicit_damping)
        bound = 1 / math.sqrt(input_size + 2 * n)  # fan-in of their i2h on [u, z, y]

        def uniform(shape):
            return jax.random.uniform(rngs.params(), shape, minval=-bound, maxval=bound)

        self.V = nnx.Param(uniform((input_size, n)))
        self.W = nnx.Param(uniform((2 * n, n)))  # rows: [y; z] -> [W; W~]
        self.b = nnx.Param(uniform((n,)))
        self.readout = Readout(n, input_size, output_size, skip=False, rngs=rngs)
        cast_parameters(self, param_dtype)

    def input_drive(self, x: jax.Array) -> jax.Array:
        return x @ self.V[...] + self.b[...]

    def recurrence(self) -> Recurrence:
        n = self.hidden_size
        cell = partial(
            _cornn_cell, dt=self.dt, gamma=self.gamma, eps=self.epsilon, implicit=self.implicit_damping
        )
        return Recurrence(
            kernel=self.W[...], params=(), parts=(n, n), gates=1,
            phi=lambda s: jnp.concatenate(s, axis=-1), cell=cell,
        )

    def features(self, h: jax.Array) -> jax.Array:
        return h[..., : self.hidden_size]
