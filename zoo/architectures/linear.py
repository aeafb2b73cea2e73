"""The dense linear RNN of the Zucchet & Orvieto comparison."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from zoo.architectures.base import Readout, RecurrentModel, cast_parameters
from zoo.architectures.fused import Recurrence, add_drive
from zoo.architectures.registry import register_architecture


def dense_eigen_init(
    key: jax.Array, n: int, r_min: float, r_max: float, max_phase: float
) -> np.ndarray:
    """A real `n x n` matrix with eigenvalue magnitudes in `[r_min, r_max)`.

    Zucchet & Orvieto 2024, `recurrent_matrix_init` in their code: draw `A ~ N(0, 1/n)`,
    eigendecompose `A = V diag(l) V^-1`, map each magnitude to
    `r_min + (r_max - r_min) tanh(|l|)` and each phase `arg l` to `arg l * max_phase / pi`,
    and keep the real part of `V diag(l') V^-1`. The eigenvalues of a real matrix come in
    conjugate pairs and the map respects them, so the real part is the matrix itself
    (up to rounding), and its spectral radius is below `r_max`: a linear RNN that starts stable.
    """
    if not 0.0 <= r_min <= r_max <= 1.0:
        raise ValueError(f"linear needs 0 <= r_min <= r_max <= 1, got r_min={r_min}, r_max={r_max}")
    if not 0.0 < max_phase <= math.pi:
        raise ValueError(f"linear needs 0 < max_phase <= pi, got {max_phase}")
    a = np.asarray(jax.random.normal(key, (n, n)), np.float64) / math.sqrt(n)
    lam, v = np.linalg.eig(a)  # on the host: eig has no accelerator kernel
    lam = (r_min + (r_max - r_min) * np.tanh(np.abs(lam))) * np.exp(1j * np.angle(lam) * max_phase / math.pi)
    return (v @ np.diag(lam) @ np.linalg.inv(v)).real


@register_architecture("linear")
class LinearRNN(RecurrentModel):
    """`h_t = A h_{t-1} + B x_t`, output `C h + D x`; `A` from `dense_eigen_init`.

    Options `r_min` (0), `r_max` (1) and `max_phase` (pi) are Zucchet & Orvieto's defaults
    (`min_nu`, `max_nu`, `max_phase` of their RNN); they share the names of the ring options
    of `complex_diagonal` and `lru`, so one setting serves the whole ablation ladder
    `linear` -> `complex_diagonal` -> `lru(gamma="none")` -> `lru`.
    """

    def __init__(
        self,
        *,
        input_size: int,
        hidden_size: int,
        output_size: int,
        rngs: nnx.Rngs,
        r_min: float = 0.0,
        r_max: float = 1.0,
        max_phase: float = math.pi,
        param_dtype=jnp.float32,
    ) -> None:
        n = hidden_size
        self.state_size = n
        self.A = nnx.Param(jnp.asarray(dense_eigen_init(rngs.params(), n, r_min, r_max, max_phase)))
        self.B = nnx.Param(jax.random.normal(rngs.params(), (input_size, n)) / math.sqrt(input_size))
        self.readout = Readout(n, input_size, output_size, skip=True, rngs=rngs)
        cast_parameters(self, param_dtype)

    def input_drive(self, x: jax.Array) -> jax.Array:
        return x @ self.B[...]

    def recurrence(self) -> Recurrence:
        return Recurrence(
            kernel=self.A[...].T, params=(), parts=(self.state_size,), gates=1,
            phi=lambda s: s[0], cell=add_drive,
        )
