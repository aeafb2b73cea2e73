"""A plugin architecture that is NOT a zoo.RecurrentModel: the bare contract of the README.

A plain `nnx.Module` with `__call__(x)` (no initial-state argument), `state_size` and
`transition(h, x)`; tests/test_plugin_contract.py trains, flosses, checkpoints and ranks it.
"""

import jax
import jax.numpy as jnp
from flax import nnx

import zoo


@zoo.register_architecture("plain_tanh")
class PlainTanh(nnx.Module):
    """h_t = tanh(W h_{t-1} + U x_t), y_t = readout(h_t)."""

    def __init__(self, *, input_size, hidden_size, output_size, rngs):
        self.state_size = hidden_size
        self.W = nnx.Param(jax.random.normal(rngs.params(), (hidden_size, hidden_size)) / hidden_size**0.5)
        self.U = nnx.Param(jax.random.normal(rngs.params(), (input_size, hidden_size)))
        self.readout = nnx.Linear(hidden_size, output_size, rngs=rngs)  # not flossed: the name says readout

    def transition(self, h, x):
        return jnp.tanh(self.W[...] @ h + x @ self.U[...])

    def __call__(self, x):
        def step(h, x_t):
            h = jax.vmap(self.transition)(h, x_t)
            return h, h

        h0 = jnp.zeros((x.shape[0], self.state_size), x.dtype)
        _, hs = jax.lax.scan(step, h0, jnp.swapaxes(x, 0, 1))
        return self.readout(jnp.swapaxes(hs, 0, 1))
