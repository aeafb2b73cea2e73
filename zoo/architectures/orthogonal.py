"""expRNN: an orthogonal RNN by the exponential map (Lezcano-Casado & Martinez-Rubio 2019).

    h_t = modReLU(W h_{t-1} + T x_t, b),   W = expm(A - A^T)

`W` is orthogonal for every `A` (the exponential of a skew-symmetric matrix), so it stays
orthogonal under any optimiser; `modReLU(z, b) = sign(z) relu(|z| + b)` (their eq. for the
real case). Initialisation as the paper (section 4, their `henaff_init_` / `cayley_init_`):
`A - A^T` block-diagonal with 2x2 blocks `[[0, s], [-s, 0]]`, `s ~ U(-pi, pi)` ("henaff",
the default, used for the copy task) or `s = -sqrt((1 - cos t) / (1 + cos t))`,
`t ~ U(0, pi/2)` ("cayley", used for MNIST); `T` Kaiming-normal (ReLU gain), `b ~ U(-0.01, 0.01)`.
`W` is computed once per sequence with `jax.scipy.linalg.expm`, then the fused loop runs.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from flax import nnx

from zoo.architectures.base import Readout, RecurrentModel, cast_parameters
from zoo.architectures.fused import Recurrence
from zoo.architectures.registry import register_architecture

ORTHOGONAL_INITS = ("henaff", "cayley")


def modrelu(z: jax.Array, b: jax.Array) -> jax.Array:
    """`sign(z) relu(|z| + b)`: keeps the sign, shrinks the magnitude by the learned `-b`."""
    return jnp.sign(z) * jax.nn.relu(jnp.abs(z) + b)


def skew_block_init(key: jax.Array, n: int, init: str) -> jax.Array:
    """Upper-triangular `A` whose `A - A^T` has the 2x2 blocks `[[0, s], [-s, 0]]` (odd `n`: one zero row)."""
    if init not in ORTHOGONAL_INITS:
        raise ValueError(f"orthogonal init must be one of {', '.join(ORTHOGONAL_INITS)}; got {init!r}")
    if init == "henaff":
        s = jax.random.uniform(key, (n // 2,), minval=-math.pi, maxval=math.pi)
    else:
        t = jax.random.uniform(key, (n // 2,), minval=0.0, maxval=math.pi / 2)
        s = -jnp.sqrt((1 - jnp.cos(t)) / (1 + jnp.cos(t)))
    upper = jnp.zeros((max(n - 1, 0),)).at[::2].set(s)
    return jnp.diag(upper, k=1)


def _modrelu_cell(b, state, u, z):
    del state
    return (modrelu(u[0] + z[0], b),)


@register_architecture("orthogonal")
class ExpRNN(RecurrentModel):
    """expRNN; option `init` = "henaff" (default) or "cayley"."""

    def __init__(
        self,
        *,
        input_size: int,
        hidden_size: int,
        output_size: int,
        rngs: nnx.Rngs,
        init: str = "henaff",
        param_dtype=jnp.float32,
    ) -> None:
        n = hidden_size
        self.state_size = n
        self.A = nnx.Param(skew_block_init(rngs.params(), n, init))
        kaiming = jax.nn.initializers.variance_scaling(2.0, "fan_in", "normal")
        self.T = nnx.Param(kaiming(rngs.params(), (input_size, n)))
        self.b = nnx.Param(jax.random.uniform(rngs.params(), (n,), minval=-0.01, maxval=0.01))
        self.readout = Readout(n, input_size, output_size, skip=False, rngs=rngs)
        cast_parameters(self, param_dtype)

    def recurrent_matrix(self) -> jax.Array:
        """`W = expm(A - A^T)`, orthogonal."""
        a = self.A[...]
        return jax.scipy.linalg.expm(a - a.T)

    def input_drive(self, x: jax.Array) -> jax.Array:
        return x @ self.T[...]

    def recurrence(self) -> Recurrence:
        # Row-vector convention: h @ W.T == W h.
        return Recurrence(
            kernel=self.recurrent_matrix().T, params=self.b[...], parts=(self.state_size,), gates=1,
            phi=lambda s: s[0], cell=_modrelu_cell,
        )
