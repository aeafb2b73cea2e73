"""The dense linear RNN of the Zucchet & Orvieto comparison."""

from __future__ import annotations

import math

import jax
from flax import nnx

from zoo.architectures.base import Readout, RecurrentModel
from zoo.architectures.fused import Recurrence, add_drive
from zoo.architectures.registry import register_architecture


@register_architecture("linear")
class LinearRNN(RecurrentModel):
    """`h_t = A h_{t-1} + B x_t`, `A ~ N(0, g^2/N)`, output `C h + D x`."""

    def __init__(
        self,
        *,
        input_size: int,
        hidden_size: int,
        output_size: int,
        rngs: nnx.Rngs,
        gain: float = 0.9,
    ) -> None:
        n = hidden_size
        self.state_size = n
        self.A = nnx.Param(gain / math.sqrt(n) * jax.random.normal(rngs.params(), (n, n)))
        self.B = nnx.Param(jax.random.normal(rngs.params(), (input_size, n)) / math.sqrt(input_size))
        self.readout = Readout(n, input_size, output_size, skip=True, rngs=rngs)

    def input_drive(self, x: jax.Array) -> jax.Array:
        return x @ self.B[...]

    def recurrence(self) -> Recurrence:
        return Recurrence(
            kernel=self.A[...].T, params=(), parts=(self.state_size,), gates=1,
            phi=lambda s: s[0], cell=add_drive,
        )
