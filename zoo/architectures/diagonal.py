"""Diagonal complex linear recurrences: the LRU and its plain complex-diagonal ancestor.

Both run `h_t = lambda * h_{t-1} + B x_t` with complex diagonal `lambda`; they differ
only in how `lambda` is stored and whether `B` is normalised. The state is flat real
`[Re h, Im h]`, and the shared real readout on it is exactly `Re(C h)` for a complex
`C = C_re + i C_im` (it equals `C_re Re h - C_im Im h`).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from flax import nnx

from zoo.architectures.base import Readout, RecurrentModel, cast_parameters
from zoo.architectures.fused import fetch_step
from zoo.architectures.registry import register_architecture


def ring_init(
    key: jax.Array, n: int, r_min: float, r_max: float, max_phase: float
) -> tuple[jax.Array, jax.Array]:
    """Magnitudes and phases of `n` eigenvalues, uniform on the ring `r_min <= |z| <= r_max`.

    Uniform in area, i.e. `|z|^2 ~ U(r_min^2, r_max^2)`, phases `~ U(0, max_phase)`.
    """
    if not 0.0 <= r_min <= r_max <= 1.0:
        raise ValueError(f"ring needs 0 <= r_min <= r_max <= 1, got r_min={r_min}, r_max={r_max}")
    if max_phase <= 0:
        raise ValueError(f"max_phase must be positive, got {max_phase}")
    k_mag, k_phase = jax.random.split(key)
    # Bounded away from 0 so that log-parametrisations (the LRU's) stay finite.
    u1 = jax.random.uniform(k_mag, (n,), minval=1e-6)
    u2 = jax.random.uniform(k_phase, (n,), minval=1e-6)
    magnitude = jnp.sqrt(u1 * (r_max**2 - r_min**2) + r_min**2)
    return magnitude, max_phase * u2


def linear_recurrence(lam: jax.Array, u: jax.Array, axis: int = 1) -> jax.Array:
    """All `h_t = lam * h_{t-1} + u_t` from `h_{-1} = 0`, by a parallel associative scan."""

    def combine(a, b):
        lam_a, u_a = a
        lam_b, u_b = b
        return lam_a * lam_b, lam_b * u_a + u_b

    lams = jnp.broadcast_to(lam, u.shape)
    return jax.lax.associative_scan(combine, (lams, u), axis=axis)[1]


def _rotate(lam_re: jax.Array, lam_im: jax.Array, h: jax.Array) -> jax.Array:
    """`lambda * h` on the flat real state `[Re h, Im h]`."""
    n = lam_re.shape[-1]
    re, im = h[..., :n], h[..., n:]
    return jnp.concatenate([lam_re * re - lam_im * im, lam_re * im + lam_im * re], axis=-1)


def _diagonal_loop(lam_re, lam_im, u: jax.Array, h0: jax.Array, reverse: bool = False) -> jax.Array:
    """All `h_t = lambda h_{t-1} + u_t` on flat real states, time-major `u` `(T, B, 2n)`, one step at a time.

    The next step's input is fetched into the loop carry ahead of use, so the elementwise
    step reads a plain buffer (see `zoo.architectures.fused`). `reverse` runs from the last
    step to the first (outputs stay in time order).
    """
    length = u.shape[0]
    at = (lambda i: length - 1 - i) if reverse else (lambda i: i)

    def body(carry, _):
        i, h, u_i = carry
        h = _rotate(lam_re, lam_im, h) + u_i
        nxt = fetch_step(u, at(jnp.minimum(i + 1, length - 1)))
        return (i + 1, h, nxt), h

    hs = jax.lax.scan(body, (jnp.int32(0), h0, u[at(0)]), None, length=length)[1]
    return hs[::-1] if reverse else hs


@jax.custom_vjp
def diagonal_recurrence(lam_re, lam_im, u: jax.Array, h0: jax.Array) -> jax.Array:
    """States `(T, B, 2n)` of `h_t = lambda h_{t-1} + u_t` from `h0` `(B, 2n)`, time-major, flat real.

    A sequential loop with a hand-made VJP: on a CPU it beats the parallel associative
    scan (which does log T passes over the whole sequence) by about 2x. The backward pass
    is the same recurrence run backwards with `conj(lambda)`.
    """
    return _diagonal_loop(lam_re, lam_im, u, h0)


def _diagonal_fwd(lam_re, lam_im, u, h0):
    hs = _diagonal_loop(lam_re, lam_im, u, h0)
    return hs, (lam_re, lam_im, h0, hs)


def _diagonal_bwd(res, d_hs):
    lam_re, lam_im, h0, hs = res
    n = lam_re.shape[-1]
    # d loss / d h_t = d_hs_t + conj(lambda) * (d loss / d h_{t+1}): the transposed recurrence.
    totals = _diagonal_loop(lam_re, -lam_im, d_hs, jnp.zeros_like(h0), reverse=True)
    h_prev = jnp.concatenate([h0[None], hs[:-1]], axis=0)
    t_re, t_im, p_re, p_im = totals[..., :n], totals[..., n:], h_prev[..., :n], h_prev[..., n:]
    d_lam_re = jnp.sum(t_re * p_re + t_im * p_im, axis=(0, 1))
    d_lam_im = jnp.sum(t_im * p_re - t_re * p_im, axis=(0, 1))
    d_h0 = _rotate(lam_re, -lam_im, totals[0])
    return d_lam_re, d_lam_im, totals, d_h0


diagonal_recurrence.defvjp(_diagonal_fwd, _diagonal_bwd)


def _complex_normal(key: jax.Array, shape: tuple[int, ...], std: float) -> tuple[jax.Array, jax.Array]:
    k_re, k_im = jax.random.split(key)
    return std * jax.random.normal(k_re, shape), std * jax.random.normal(k_im, shape)


class DiagonalComplexRNN(RecurrentModel):
    """Shared body, eigenvalues initialised on a ring (`r_min`, `r_max`, `max_phase` options).

    Subclasses choose the parametrisation (`store_eigenvalues`, `eigenvalues`) and
    optionally an input normalisation (`input_gain`); one with another initialisation
    (`s5`) sets the same attributes in its own `__init__`.
    """

    def __init__(
        self,
        *,
        input_size: int,
        hidden_size: int,
        output_size: int,
        rngs: nnx.Rngs,
        r_min: float = 0.4,
        r_max: float = 0.99,
        max_phase: float = 2 * math.pi,
        param_dtype=jnp.float32,
    ) -> None:
        self.hidden_size = hidden_size
        self.state_size = 2 * hidden_size
        # Complex B with unit-variance entries overall (real and imaginary halves).
        b_re, b_im = _complex_normal(rngs.params(), (input_size, hidden_size), 1 / math.sqrt(2 * input_size))
        self.B_re, self.B_im = nnx.Param(b_re), nnx.Param(b_im)
        self.readout = Readout(2 * hidden_size, input_size, output_size, skip=True, rngs=rngs)
        self.store_eigenvalues(*ring_init(rngs.params(), hidden_size, r_min, r_max, max_phase))
        cast_parameters(self, param_dtype)

    def store_eigenvalues(self, magnitude: jax.Array, phase: jax.Array) -> None:
        """Create the parameters holding `lambda = magnitude * exp(i phase)`."""
        raise NotImplementedError

    def eigenvalues(self) -> jax.Array:
        """The complex diagonal `lambda`, `(hidden_size,)`."""
        raise NotImplementedError

    def input_gain(self) -> jax.Array | float:
        """Per-channel factor applied to `B` (1: no normalisation)."""
        return 1.0

    def _split(self, h: jax.Array) -> jax.Array:
        n = self.hidden_size
        return jax.lax.complex(h[..., :n], h[..., n:])

    @staticmethod
    def _join(h: jax.Array) -> jax.Array:
        return jnp.concatenate([h.real, h.imag], axis=-1)

    def input_drive(self, x: jax.Array) -> jax.Array:
        b = jax.lax.complex(self.B_re[...], self.B_im[...]) * self.input_gain()
        return x.astype(b.dtype) @ b

    def step(self, h: jax.Array, u: jax.Array) -> jax.Array:
        return self._join(self.eigenvalues() * self._split(h) + u)

    def states(self, x: jax.Array, h0: jax.Array | None = None) -> jax.Array:
        x = self.cast_inputs(x)
        if not self.use_parallel_scan():  # a plain loop is faster on CPU (see diagonal_recurrence)
            lam = self.eigenvalues()
            u = self._join(self.input_drive(jnp.swapaxes(x, 0, 1)))  # time-major, flat real
            h = diagonal_recurrence(lam.real, lam.imag, u, self.initial_states(x.shape[0], h0))
            return jnp.swapaxes(h, 0, 1)
        # On accelerators a diagonal linear recurrence needs no sequential loop.
        lam, u = self.eigenvalues(), self.input_drive(x)
        if h0 is not None:  # h_0 = lam * h_{-1} + u_0
            u = u.at[:, 0].add(lam * self._split(self.initial_states(x.shape[0], h0)))
        return self._join(linear_recurrence(lam, u, axis=1))


LRU_GAMMAS = ("learned", "tied", "tied_stopgrad", "none")


@register_architecture("lru")
class LRU(DiagonalComplexRNN):
    """Linear Recurrent Unit (Orvieto et al. 2023, eq. 7 and section 3.3).

    `lambda = exp(-exp(nu_log) + i exp(theta_log))`, and `B` scaled per channel by `gamma`:

    - `gamma="learned"` (default, as in the paper's code and Zucchet & Orvieto's): a
      parameter `gamma_log` initialised to `log sqrt(1 - |lambda|^2)`, then trained freely;
    - `"tied"`: `gamma = sqrt(1 - |lambda|^2)` recomputed from `lambda` (gradients flow
      through it; Zucchet & Orvieto's `"L2"`);
    - `"tied_stopgrad"`: the same value, with no gradient through it;
    - `"none"`: `gamma = 1` (the exponential parametrisation alone: a rung of the ladder
      `linear` -> `complex_diagonal` -> `lru(gamma="none")` -> `lru`).
    """

    def __init__(self, *, gamma: str = "learned", **kwargs) -> None:
        if gamma not in LRU_GAMMAS:
            raise ValueError(f"lru gamma must be one of {', '.join(LRU_GAMMAS)}; got {gamma!r}")
        self.gamma = gamma
        super().__init__(**kwargs)
        if gamma == "learned":
            self.gamma_log = nnx.Param(jnp.log(self._tied_gamma()))
            cast_parameters(self, self.param_dtype)

    def store_eigenvalues(self, magnitude: jax.Array, phase: jax.Array) -> None:
        self.nu_log = nnx.Param(jnp.log(-jnp.log(magnitude)))
        self.theta_log = nnx.Param(jnp.log(phase))

    def eigenvalues(self) -> jax.Array:
        return jnp.exp(jax.lax.complex(-jnp.exp(self.nu_log[...]), jnp.exp(self.theta_log[...])))

    def _tied_gamma(self) -> jax.Array:
        # |lambda|^2 = exp(-2 exp(nu_log)); keeps the state variance O(1) as |lambda| -> 1.
        return jnp.sqrt(-jnp.expm1(-2.0 * jnp.exp(self.nu_log[...])))

    def input_gain(self) -> jax.Array | float:
        if self.gamma == "learned":
            return jnp.exp(self.gamma_log[...])
        if self.gamma == "tied":
            return self._tied_gamma()
        if self.gamma == "tied_stopgrad":
            return jax.lax.stop_gradient(self._tied_gamma())
        return 1.0


@register_architecture("complex_diagonal")
class ComplexDiagonalRNN(DiagonalComplexRNN):
    """`lambda` stored directly as `(Re, Im)`; no reparametrisation and no input normalisation."""

    def store_eigenvalues(self, magnitude: jax.Array, phase: jax.Array) -> None:
        self.lam_re = nnx.Param(magnitude * jnp.cos(phase))
        self.lam_im = nnx.Param(magnitude * jnp.sin(phase))

    def eigenvalues(self) -> jax.Array:
        return jax.lax.complex(self.lam_re[...], self.lam_im[...])
