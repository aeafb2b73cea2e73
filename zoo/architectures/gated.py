"""LSTM and GRU cells with fused gate matmuls: one input matmul per sequence, one recurrent per step."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from zoo.architectures.base import Readout, RecurrentModel
from zoo.architectures.registry import register_architecture


class _GatedRNN(RecurrentModel):
    """Shared parameters: input kernel `(I, G*N)` + bias, recurrent kernel `(N, G*N)`."""

    n_gates: int

    def __init__(
        self, *, input_size: int, hidden_size: int, output_size: int, rngs: nnx.Rngs
    ) -> None:
        n, g = hidden_size, self.n_gates
        self.hidden_size = n
        self.W_in = nnx.Param(
            jax.nn.initializers.lecun_normal()(rngs.params(), (input_size, g * n))
        )
        # One orthogonal block per gate, as a stacked cell would have.
        blocks = [jax.nn.initializers.orthogonal()(rngs.params(), (n, n)) for _ in range(g)]
        self.W_rec = nnx.Param(jnp.concatenate(blocks, axis=1))
        self.b = nnx.Param(jnp.zeros((g * n,)))
        self.readout = Readout(n, input_size, output_size, skip=False, rngs=rngs)

    def input_drive(self, x: jax.Array) -> jax.Array:
        return x @ self.W_in[...] + self.b[...]


@register_architecture("lstm")
class LSTM(_GatedRNN):
    """Standard LSTM; the state is `[h, c]`, the readout sees `h`."""

    n_gates = 4

    def __init__(
        self,
        *,
        input_size: int,
        hidden_size: int,
        output_size: int,
        rngs: nnx.Rngs,
        forget_bias: float = 1.0,
    ) -> None:
        super().__init__(
            input_size=input_size, hidden_size=hidden_size, output_size=output_size, rngs=rngs
        )
        n = hidden_size
        self.state_size = 2 * n
        # Gate order i, f, g, o; a positive forget bias keeps memory at initialisation.
        self.b[...] = self.b[...].at[n : 2 * n].set(forget_bias)

    def step(self, state: jax.Array, u: jax.Array) -> jax.Array:
        n = self.hidden_size
        h, c = state[..., :n], state[..., n:]
        z = u + h @ self.W_rec[...]
        i, f, g, o = jnp.split(z, 4, axis=-1)
        c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
        h = jax.nn.sigmoid(o) * jnp.tanh(c)
        return jnp.concatenate([h, c], axis=-1)

    def features(self, state: jax.Array) -> jax.Array:
        return state[..., : self.hidden_size]


@register_architecture("gru")
class GRU(_GatedRNN):
    """Standard GRU (PyTorch convention: the reset gate multiplies `W_hn h + b_hn`)."""

    n_gates = 3

    def __init__(
        self, *, input_size: int, hidden_size: int, output_size: int, rngs: nnx.Rngs
    ) -> None:
        super().__init__(
            input_size=input_size, hidden_size=hidden_size, output_size=output_size, rngs=rngs
        )
        self.state_size = hidden_size
        self.b_rec = nnx.Param(jnp.zeros((3 * hidden_size,)))

    def step(self, h: jax.Array, u: jax.Array) -> jax.Array:
        n = self.hidden_size
        hh = h @ self.W_rec[...] + self.b_rec[...]
        r = jax.nn.sigmoid(u[..., :n] + hh[..., :n])
        z = jax.nn.sigmoid(u[..., n : 2 * n] + hh[..., n : 2 * n])
        cand = jnp.tanh(u[..., 2 * n :] + r * hh[..., 2 * n :])
        return (1.0 - z) * cand + z * h
