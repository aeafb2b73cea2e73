"""LSTM and GRU cells with fused gate matmuls: one input matmul per sequence, one recurrent per step."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from zoo.architectures.base import Readout, RecurrentModel, cast_parameters
from zoo.architectures.fused import Recurrence
from zoo.architectures.lstm_loop import lstm_states
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
        param_dtype=jnp.float32,
    ) -> None:
        super().__init__(
            input_size=input_size, hidden_size=hidden_size, output_size=output_size, rngs=rngs
        )
        n = hidden_size
        self.state_size = 2 * n
        # Gate order i, f, g, o; a positive forget bias keeps memory at initialisation.
        self.b[...] = self.b[...].at[n : 2 * n].set(forget_bias)
        cast_parameters(self, param_dtype)

    def recurrence(self) -> Recurrence:
        n = self.hidden_size
        return Recurrence(
            kernel=self.W_rec[...], params=(), parts=(n, n), gates=4,
            phi=lambda s: s[0], cell=_lstm_cell, loop=_lstm_loop,
        )

    def features(self, state: jax.Array) -> jax.Array:
        return state[..., : self.hidden_size]


@register_architecture("gru")
class GRU(_GatedRNN):
    """Standard GRU (PyTorch convention: the reset gate multiplies `W_hn h + b_hn`)."""

    n_gates = 3

    def __init__(
        self,
        *,
        input_size: int,
        hidden_size: int,
        output_size: int,
        rngs: nnx.Rngs,
        param_dtype=jnp.float32,
    ) -> None:
        super().__init__(
            input_size=input_size, hidden_size=hidden_size, output_size=output_size, rngs=rngs
        )
        self.state_size = hidden_size
        self.b_rec = nnx.Param(jnp.zeros((3 * hidden_size,)))
        cast_parameters(self, param_dtype)

    def recurrence(self) -> Recurrence:
        return Recurrence(
            kernel=self.W_rec[...], params=self.b_rec[...], parts=(self.hidden_size,), gates=3,
            phi=lambda s: s[0], cell=_gru_cell,
        )


def _lstm_cell(params, state, u, z):
    """Gates in the order i, f, g, o; `z` is `h @ W_rec`, `u` the input drive (with the bias)."""
    del params
    _, c = state
    i, f, g, o = (a + b for a, b in zip(u, z))
    c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
    h = jax.nn.sigmoid(o) * jnp.tanh(c)
    return h, c


def _lstm_loop(kernel, params, h0, u):
    """The LSTM's sequence loop with its hand-written backward (`params` is empty)."""
    del params
    return lstm_states(kernel, h0, u)


def _gru_cell(b_rec, state, u, z):
    """Gates r, z, n; `z` is `h @ W_rec` (without `b_rec`), `u` the input drive."""
    (h,) = state
    b_r, b_z, b_n = jnp.split(b_rec, 3)
    r = jax.nn.sigmoid(u[0] + (z[0] + b_r))
    update = jax.nn.sigmoid(u[1] + (z[1] + b_z))
    cand = jnp.tanh(u[2] + r * (z[2] + b_n))
    return ((1.0 - update) * cand + update * h,)
