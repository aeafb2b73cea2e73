"""minGRU and minLSTM (Feng et al. 2024, "Were RNNs All We Needed?").

Both drop the state from the gates and the candidate, so the recurrence is linear in the
state with input-only coefficients (section 3, the "minimal" versions with `g` keeping the
candidate positive, as in the paper's log-space code, appendix B):

- minGRU: `z_t = sigma(k_z)`, `h~_t = g(k_h)`, `h_t = (1 - z_t) h_{t-1} + z_t h~_t`;
- minLSTM: `f_t = sigma(k_f)`, `i_t = sigma(k_i)`, normalised `f'_t = f_t / (f_t + i_t)`,
  `i'_t = i_t / (f_t + i_t)`, `h_t = f'_t h_{t-1} + i'_t h~_t`;

with every `k_* = Linear(x_t)` and `g(x) = x + 1/2` for `x >= 0`, `sigmoid(x)` otherwise.
The paper's parallel mode is a scan in log space (`log_space_scan`); it needs a positive
state, so it serves the zero initial state and the plain linear paths serve any `h0`.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from flax import nnx

from zoo.architectures.base import Readout, cast_parameters
from zoo.architectures.gated_linear import GatedLinearRNN
from zoo.architectures.registry import register_architecture


def log_g(x: jax.Array) -> jax.Array:
    """`log g(x)`, `g(x) = x + 1/2` for `x >= 0` and `sigmoid(x)` below (Feng et al., appendix B)."""
    return jnp.where(x >= 0, jnp.log(jax.nn.relu(x) + 0.5), -jax.nn.softplus(-x))


def log_space_scan(log_a: jax.Array, log_b: jax.Array, axis: int = 0) -> jax.Array:
    """All `h_t = a_t h_{t-1} + b_t` from `h_{-1} = 0`, with `a, b > 0` given by their logs.

    Heinsen's sequence (the paper's `parallel_scan_log`): with `a*_t = sum_{s<=t} log a_s`,
    `log h_t = a*_t + logcumsumexp_{s<=t}(log b_s - a*_s)`: two cumulative reductions.
    """
    a_star = jnp.cumsum(log_a, axis=axis)
    return jnp.exp(a_star + jax.lax.cumlogsumexp(log_b - a_star, axis=axis))


def _torch_linear(in_size: int, out_size: int, rngs: nnx.Rngs) -> nnx.Linear:
    """`nn.Linear` of the paper's PyTorch code: kernel and bias `~ U(-1/sqrt(in), 1/sqrt(in))`."""
    bound = 1 / math.sqrt(in_size)

    def bias_init(key, shape, dtype=jnp.float32):
        return jax.random.uniform(key, shape, dtype, -bound, bound)

    kernel_init = jax.nn.initializers.variance_scaling(1 / 3, "fan_in", "uniform")
    return nnx.Linear(in_size, out_size, kernel_init=kernel_init, bias_init=bias_init, rngs=rngs)


class _MinimalRNN(GatedLinearRNN):
    """Shared body: one fused input projection to `n_proj` blocks, readout of `h`."""

    n_proj: int
    loop_vjp = False  # autodiff of the plain scan is faster on CPU here (see gated_linear)

    def __init__(
        self,
        *,
        input_size: int,
        hidden_size: int,
        output_size: int,
        rngs: nnx.Rngs,
        param_dtype=jnp.float32,
    ) -> None:
        self.state_size = hidden_size
        self.proj = _torch_linear(input_size, self.n_proj * hidden_size, rngs)
        self.readout = Readout(hidden_size, input_size, output_size, skip=False, rngs=rngs)
        cast_parameters(self, param_dtype)

    def log_coefficients(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        """`(log a_t, log b_t)` of `h_t = a_t h_{t-1} + b_t`."""
        raise NotImplementedError

    def coefficients(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        log_a, log_b = self.log_coefficients(x)
        return jnp.exp(log_a), jnp.exp(log_b)

    def states(self, x: jax.Array, h0: jax.Array | None = None) -> jax.Array:
        if h0 is None and self.use_parallel_scan():  # the paper's parallel mode
            return log_space_scan(*self.log_coefficients(self.cast_inputs(x)), axis=1)
        return super().states(x, h0)


@register_architecture("mingru")
class MinGRU(_MinimalRNN):
    """minGRU (Feng et al. 2024, eq. for minGRU in section 3.1, log-space form of appendix B)."""

    n_proj = 2

    def log_coefficients(self, x):
        k_z, k_h = jnp.split(self.proj(x), 2, axis=-1)
        log_z = -jax.nn.softplus(-k_z)  # log sigma(k)
        return -jax.nn.softplus(k_z), log_z + log_g(k_h)  # log(1 - z), log(z h~)


@register_architecture("minlstm")
class MinLSTM(_MinimalRNN):
    """minLSTM (Feng et al. 2024, section 3.2, with the normalised gates of its eq. for `f'`, `i'`)."""

    n_proj = 3

    def log_coefficients(self, x):
        k_f, k_i, k_h = jnp.split(self.proj(x), 3, axis=-1)
        # log(i/f) = log sigma(k_i) - log sigma(k_f); log f' = -softplus(log(i/f)), log i' = -softplus(-log(i/f)).
        diff = jax.nn.softplus(-k_f) - jax.nn.softplus(-k_i)
        return -jax.nn.softplus(diff), -jax.nn.softplus(-diff) + log_g(k_h)
