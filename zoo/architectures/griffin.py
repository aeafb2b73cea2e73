"""The Real-Gated Linear Recurrent Unit of Griffin (De et al. 2024, section 2.4, eqs. 1-4).

    r_t = sigma(W_a x_t + b_a)                     recurrence gate
    i_t = sigma(W_x x_t + b_x)                     input gate
    a_t = a^(c r_t),  a = sigma(Lambda),  c = 8
    h_t = a_t * h_{t-1} + sqrt(1 - a_t^2) * (i_t * x_t)

computed as `log a_t = -c r_t softplus(-Lambda)` for stability (as the paper advises). The
RG-LRU acts on a `hidden_size`-wide signal, so the inputs first pass a linear encoder (in
Griffin's recurrent block a linear layer and a short convolution precede it; the convolution
is left out here). Initialisation as the reference code (recurrentgemma `rnn_param_init`):
`a` uniform on the ring `[0.9, 0.999]` in `a^2`, gate weights `N(0, 1/width)`, zero biases.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from flax import nnx

from zoo.architectures.base import Readout, cast_parameters
from zoo.architectures.diagonal import ring_init
from zoo.architectures.gated_linear import GatedLinearRNN
from zoo.architectures.registry import register_architecture


@register_architecture("rglru")
class RGLRU(GatedLinearRNN):
    """RG-LRU with options `r_min` (0.9), `r_max` (0.999) for `a` and `c` (8), from the paper."""

    loop_vjp = False  # autodiff of the plain scan is faster on CPU here (see gated_linear)

    def __init__(
        self,
        *,
        input_size: int,
        hidden_size: int,
        output_size: int,
        rngs: nnx.Rngs,
        r_min: float = 0.9,
        r_max: float = 0.999,
        c: float = 8.0,
        param_dtype=jnp.float32,
    ) -> None:
        if c <= 0 or not 0.0 < r_min <= r_max < 1.0:
            raise ValueError(f"rglru needs c > 0 and 0 < r_min <= r_max < 1, got c={c}, r_min={r_min}, r_max={r_max}")
        n = hidden_size
        self.state_size = n
        self.c = float(c)
        self.encoder = nnx.Linear(input_size, n, rngs=rngs)
        gate_init = jax.nn.initializers.normal(1 / math.sqrt(n))
        self.gates = nnx.Linear(n, 2 * n, kernel_init=gate_init, rngs=rngs)  # [W_a | W_x]
        a, _ = ring_init(rngs.params(), n, r_min, r_max, 1.0)
        # softplus(-Lambda) = -log a; stored as a_param = -Lambda (the reference's `a_param`).
        self.a_param = nnx.Param(jnp.log(jnp.expm1(-jnp.log(a))))
        self.readout = Readout(n, input_size, output_size, skip=False, rngs=rngs)
        cast_parameters(self, param_dtype)

    def coefficients(self, x):
        u = self.encoder(x)
        r, i = jnp.split(jax.nn.sigmoid(self.gates(u)), 2, axis=-1)
        log_a = -self.c * r * jax.nn.softplus(self.a_param[...])
        # sqrt(1 - a_t^2) = sqrt(-expm1(2 log a_t)): exact as a_t -> 1.
        return jnp.exp(log_a), jnp.sqrt(-jnp.expm1(2 * log_a)) * (i * u)
