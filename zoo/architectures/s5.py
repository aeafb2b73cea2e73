"""S5: a MIMO diagonal state space layer (Smith, Warrington & Linderman 2023, sections 3-4).

Continuous `x'(t) = Lambda x(t) + B~ u(t)`, `y = Re(C~ x) + D u`, with the diagonal
`Lambda` and the eigenvector matrix `V` of the normal part of HiPPO-LegS (HiPPO-N, their
section 4.1 and `make_DPLR_HiPPO`): `B~ = V^H B`, `C~ = C V`. Zero-order hold with a learned
per-state step `Delta = exp(log_step)` (eq. 6):

    Lambda_bar = exp(Lambda Delta),   B_bar = Lambda^-1 (Lambda_bar - 1) B~.

The discrete recurrence is the complex-diagonal one of `zoo.architectures.diagonal` (flat
real state `[Re x, Im x]`, its CPU loop and its parallel scan); `features` is `Re(C~ x)` and
the readout's skip plays `D u`. Defaults from the paper's code: `log_step ~
U(log 1e-3, log 1e-1)`, lecun-normal `B` and `C`; one HiPPO block (`blocks = 1`), no
conjugate symmetry (every eigenvalue kept).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from zoo.architectures.base import Readout, cast_parameters
from zoo.architectures.diagonal import DiagonalComplexRNN
from zoo.architectures.registry import register_architecture


def hippo_legs(p: int) -> np.ndarray:
    """HiPPO-LegS: `A[n, k] = -sqrt(2n+1) sqrt(2k+1)` below the diagonal, `-(n+1)` on it, 0 above."""
    q = np.sqrt(1 + 2 * np.arange(p))
    return -(np.tril(np.outer(q, q)) - np.diag(np.arange(p)))


def hippo_n(p: int) -> tuple[np.ndarray, np.ndarray]:
    """Eigenvalues `Lambda` and unitary eigenvectors `V` of HiPPO-N, the normal part of HiPPO-LegS.

    `S = A + P P^T` with `P[n] = sqrt(n + 1/2)` is normal: its diagonal is -1/2 throughout and
    `S + 1/2` is skew-symmetric, so `Lambda = -1/2 + i eigh(-i S)` (as `make_DPLR_HiPPO`).
    """
    pvec = np.sqrt(np.arange(p) + 0.5)
    s = hippo_legs(p) + np.outer(pvec, pvec)
    lam_im, v = np.linalg.eigh(s * -1j)
    return np.mean(np.diag(s)) + 1j * lam_im, v


def zoh(lam: jax.Array, b: jax.Array, step: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Zero-order hold of `x' = diag(lam) x + B u`: `(exp(lam step), (exp(lam step) - 1) / lam * B)`.

    `b` is `(..., P)` with the state along the last axis (rows of `B^T`).
    """
    lam_bar = jnp.exp(lam * step)
    return lam_bar, (lam_bar - 1) / lam * b


@register_architecture("s5")
class S5(DiagonalComplexRNN):
    """S5 with `hidden_size` complex states and a `hidden_size`-wide `Re(C~ x)`; options `dt_min`, `dt_max`."""

    def __init__(
        self,
        *,
        input_size: int,
        hidden_size: int,
        output_size: int,
        rngs: nnx.Rngs,
        dt_min: float = 1e-3,
        dt_max: float = 1e-1,
        param_dtype=jnp.float32,
    ) -> None:
        if not 0 < dt_min <= dt_max:
            raise ValueError(f"s5 needs 0 < dt_min <= dt_max, got dt_min={dt_min}, dt_max={dt_max}")
        p = hidden_size
        self.hidden_size = p
        self.state_size = 2 * p
        lam, v = hippo_n(p)
        self.Lambda_re = nnx.Param(jnp.asarray(lam.real))
        self.Lambda_im = nnx.Param(jnp.asarray(lam.imag))
        lecun = jax.nn.initializers.lecun_normal()
        b = np.asarray(lecun(rngs.params(), (p, input_size)), np.float64)
        b_tilde = (v.conj().T @ b).T  # (input, P): the drive is u @ B~^T
        self.B_re, self.B_im = nnx.Param(jnp.asarray(b_tilde.real)), nnx.Param(jnp.asarray(b_tilde.imag))
        c = np.asarray(lecun(rngs.params(), (p, p, 2)), np.float64)  # (out, P, re/im)
        c_tilde = ((c[..., 0] + 1j * c[..., 1]) @ v).T  # (P, out): features = Re(x @ C~^T)
        self.C_re, self.C_im = nnx.Param(jnp.asarray(c_tilde.real)), nnx.Param(jnp.asarray(c_tilde.imag))
        self.log_step = nnx.Param(
            jax.random.uniform(rngs.params(), (p,), minval=math.log(dt_min), maxval=math.log(dt_max))
        )
        self.readout = Readout(p, input_size, output_size, skip=True, rngs=rngs)
        cast_parameters(self, param_dtype)

    def continuous_eigenvalues(self) -> jax.Array:
        return jax.lax.complex(self.Lambda_re[...], self.Lambda_im[...])

    def eigenvalues(self) -> jax.Array:
        return zoh(self.continuous_eigenvalues(), 1.0, jnp.exp(self.log_step[...]))[0]

    def input_gain(self) -> jax.Array:
        # B_bar = (Lambda_bar - 1) / Lambda * B~, a per-state complex factor on B~.
        return zoh(self.continuous_eigenvalues(), 1.0, jnp.exp(self.log_step[...]))[1]

    def features(self, h: jax.Array) -> jax.Array:
        p = self.hidden_size
        return h[..., :p] @ self.C_re[...] - h[..., p:] @ self.C_im[...]
