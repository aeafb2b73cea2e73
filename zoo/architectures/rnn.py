"""The vanilla tanh RNN in the form of the gradient-flossing paper."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from zoo.architectures.base import Readout, RecurrentModel, cast_parameters
from zoo.architectures.fused import Recurrence, add_drive
from zoo.architectures.registry import register_architecture


@register_architecture("rnn")
class TanhRNN(RecurrentModel):
    """`h_t = W tanh(h_{t-1}) + b + V x_t` with `W ~ N(0, g^2/N)`; the readout sees `h`."""

    def __init__(
        self,
        *,
        input_size: int,
        hidden_size: int,
        output_size: int,
        rngs: nnx.Rngs,
        gain: float = 1.0,
        input_scale: float = 1.0,
        param_dtype=jnp.float32,
    ) -> None:
        n = hidden_size
        self.state_size = n
        self.W = nnx.Param(gain / jnp.sqrt(n) * jax.random.normal(rngs.params(), (n, n)))
        self.V = nnx.Param(input_scale * jax.random.normal(rngs.params(), (input_size, n)))
        self.b = nnx.Param(jnp.zeros((n,)))
        self.readout = Readout(n, input_size, output_size, skip=False, rngs=rngs)
        cast_parameters(self, param_dtype)

    def input_drive(self, x: jax.Array) -> jax.Array:
        return x @ self.V[...] + self.b[...]

    def recurrence(self) -> Recurrence:
        # Row-vector convention: tanh(h) @ W.T == W tanh(h).
        return Recurrence(
            kernel=self.W[...].T, params=(), parts=(self.state_size,), gates=1,
            phi=lambda s: jnp.tanh(s[0]), cell=add_drive, unroll=2,
        )
