"""Linear teacher-student regression of Zucchet & Orvieto (2024).

A fixed linear recurrent teacher `h_{t+1} = A h_t + B x_t`, `y_t = C h_t + D x_t` (h_0 = 0)
is driven by Gaussian inputs; a student sees the inputs and must reproduce the outputs.
The eigenvalue magnitudes of A lie in `[nu0, 1)`; the closer nu0 is to 1, the longer the
teacher remembers. The horizon is the memory time scale of the slowest-guaranteed mode,

    horizon = 1 / (1 - nu0)        nu0 = 1 - 1 / horizon

(a mode of magnitude nu0 forgets by a factor e every ~1/(1-nu0) steps). The paper's grid
nu0 in {0.32, 0.68, 0.84, 0.92, 0.96, 0.98, 0.99} is horizons
{1.47, 3.125, 6.25, 12.5, 25, 50, 100} (`PAPER_NU0_GRID`, `PAPER_HORIZONS`).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Hashable

import jax
import jax.numpy as jnp
import numpy as np

from tasks.base import Batch, PyTree, TaskConfigError
from tasks.common import GeneratedTask, check_float, check_int, masked_mean
from tasks.registry import register_task

PAPER_NU0_GRID = (0.32, 0.68, 0.84, 0.92, 0.96, 0.98, 0.99)
# Held-out inputs come from fixed keys of their own (training keys derive from the run's seed).
EVAL_TAGS = {"validation": "teacher_student/validation", "test": "teacher_student"}


def horizon_to_nu0(horizon: float) -> float:
    """The eigenvalue-magnitude floor nu0 = 1 - 1/horizon of a teacher with memory horizon >= 1."""
    h = float(horizon)
    if not (math.isfinite(h) and h >= 1.0):
        raise TaskConfigError(
            f"teacher_student: horizon must be a finite number >= 1, got {horizon!r}"
        )
    return 1.0 - 1.0 / h


def nu0_to_horizon(nu0: float) -> float:
    """The memory time scale 1/(1 - nu0) of a teacher with eigenvalue magnitudes in [nu0, 1)."""
    v = float(nu0)
    if not (0.0 <= v < 1.0):
        raise TaskConfigError(f"teacher_student: nu0 must be in [0, 1), got {nu0!r}")
    return 1.0 / (1.0 - v)


PAPER_HORIZONS = tuple(nu0_to_horizon(v) for v in PAPER_NU0_GRID)

_HIGHEST = jax.lax.Precision.HIGHEST


TEACHER_CONSTRUCTIONS = ("zucchet_orvieto", "normal")


def zucchet_orvieto_a(rng: np.random.Generator, nu0: float, hidden: int) -> np.ndarray:
    """The teacher's A as in Zucchet & Orvieto (2024), their code's "dense" linear system.

    A Gaussian matrix G ~ N(0, 1/hidden) is diagonalised, G = V diag(l) V^-1; each eigenvalue
    keeps its phase and gets the magnitude nu0 + (1 - nu0) tanh(|l|); A = V diag(l') V^-1. A
    keeps G's (non-orthogonal) eigenvectors, so it is non-normal, and since |l| stays close to
    the unit disc (circular law), |eig(A)| lies in [nu0, nu0 + tanh(rho(G)) (1 - nu0)], about
    [nu0, nu0 + 0.76 (1 - nu0)]. Their phase factor max_phase / pi = 3.14 / pi is taken as 1,
    which keeps real eigenvalues real. The map commutes with complex conjugation, so A is real
    up to rounding (the imaginary part is dropped, as in their code).
    """
    g = rng.standard_normal((hidden, hidden)) / math.sqrt(hidden)
    eig, vecs = np.linalg.eig(g)
    mapped = (nu0 + (1.0 - nu0) * np.tanh(np.abs(eig))) * np.exp(1j * np.angle(eig))
    return (vecs @ np.diag(mapped) @ np.linalg.inv(vecs)).real


def normal_a(rng: np.random.Generator, nu0: float, hidden: int) -> np.ndarray:
    """A normal teacher matrix Q M Q^T with eigenvalue magnitudes nu0 + (1 - nu0) U[0, 1).

    Q is Haar-random orthogonal; M is block-diagonal with 2x2 rotation-scalings
    r_k [[cos th_k, -sin th_k], [sin th_k, cos th_k]] (eigenvalues r_k e^{+-i th_k}, th_k ~
    U[0, pi)), plus one real eigenvalue +-r for an odd size; so |eig(A)| lies in [nu0, 1).
    """
    q, r = np.linalg.qr(rng.standard_normal((hidden, hidden)))
    q = q * np.sign(np.diag(r))  # sign fix: Q Haar distributed
    n_pairs = hidden // 2
    u = rng.uniform(0.0, 1.0, size=n_pairs + hidden % 2)
    phases = rng.uniform(0.0, np.pi, size=n_pairs)
    real_sign = rng.choice([-1.0, 1.0])
    mags = np.minimum(nu0 + (1.0 - nu0) * u, np.nextafter(1.0, 0.0))
    m = np.zeros((hidden, hidden))
    for k in range(n_pairs):
        cs, sn = np.cos(phases[k]), np.sin(phases[k])
        m[2 * k : 2 * k + 2, 2 * k : 2 * k + 2] = mags[k] * np.array([[cs, -sn], [sn, cs]])
    if hidden % 2:
        m[-1, -1] = real_sign * mags[-1]
    return q @ m @ q.T


_CONSTRUCT_A = {"zucchet_orvieto": zucchet_orvieto_a, "normal": normal_a}


def make_teacher(
    nu0: float,
    *,
    hidden: int,
    input_size: int,
    output_size: int,
    seq_len: int,
    seed: int,
    construction: str = "zucchet_orvieto",
) -> dict[str, np.ndarray]:
    """The teacher's matrices (float64 numpy): see `TeacherStudent` for the construction."""
    rng = np.random.default_rng(seed)
    a = _CONSTRUCT_A[construction](rng, nu0, hidden)
    b = rng.standard_normal((hidden, input_size)) / math.sqrt(input_size)
    c = rng.standard_normal((output_size, hidden)) / math.sqrt(hidden)
    d = rng.standard_normal((output_size, input_size)) / math.sqrt(input_size)

    # Rescale C and D by one common factor so that the expected mean square output over the
    # sequence (from h_0 = 0, x ~ N(0, I)) is 1 per output channel.
    cov = np.zeros((hidden, hidden))
    power = 0.0
    bbt = b @ b.T
    for _ in range(seq_len):
        power += np.trace(c @ cov @ c.T) + np.trace(d @ d.T)
        cov = a @ cov @ a.T + bbt
    scale = math.sqrt(power / (seq_len * output_size))
    return {"A": a, "B": b, "C": c / scale, "D": d / scale}


def impulse_response(
    a: np.ndarray, b: np.ndarray, c: np.ndarray, d: np.ndarray, length: int
) -> np.ndarray:
    """K (length, out, in) with K_0 = D and K_k = C A^(k-1) B: y_t = sum_k K_k x_{t-k} (h_0 = 0)."""
    kernel = np.empty((length, c.shape[0], b.shape[1]))
    kernel[0] = d
    p = b
    for k in range(1, length):
        kernel[k] = c @ p
        p = a @ p
    return kernel


@jax.jit
def teacher_outputs(arrays: PyTree, x: jax.Array) -> jax.Array:
    """Outputs (batch, time, out) of the teacher for inputs (batch, time, in), from h_0 = 0.

    Computed as y_t = sum_{s <= t} K_{t-s} x_s with the teacher's impulse response
    `arrays["kernel"]` (the recurrence unrolled exactly): one causal Toeplitz matmul, which
    compiles and runs much faster than a 300-step scan on a CPU.
    """
    kernel = arrays["kernel"]  # (T, out, in): K_0 = D, K_k = C A^(k-1) B
    t_len = x.shape[1]
    if t_len * t_len * kernel.shape[1] * kernel.shape[2] > _TOEPLITZ_MAX:
        return _teacher_scan(arrays, x)  # many inputs/outputs: the T x T kernel would be big
    t = np.arange(t_len)
    lag = t[:, None] - t[None, :]
    toeplitz = jnp.where((lag >= 0)[..., None, None], kernel[np.clip(lag, 0, t_len - 1)], 0.0)
    return jnp.einsum("tsoi,bsi->bto", toeplitz, x, precision=_HIGHEST)


_TOEPLITZ_MAX = 1 << 24  # entries of the (T, T, out, in) Toeplitz kernel (64 MiB of float32)


def _teacher_scan(arrays: PyTree, x: jax.Array) -> jax.Array:
    """The same outputs by running the recurrence step by step (used for large sizes)."""
    a, b, c, d = arrays["A"], arrays["B"], arrays["C"], arrays["D"]

    def step(h, x_t):
        y_t = jnp.dot(h, c.T, precision=_HIGHEST) + jnp.dot(x_t, d.T, precision=_HIGHEST)
        h = jnp.dot(h, a.T, precision=_HIGHEST) + jnp.dot(x_t, b.T, precision=_HIGHEST)
        return h, y_t

    h0 = jnp.zeros((x.shape[0], a.shape[0]), x.dtype)
    _, ys = jax.lax.scan(step, h0, jnp.swapaxes(x, 0, 1))
    return jnp.swapaxes(ys, 0, 1)


@jax.jit
def half_mse(outputs: jax.Array, targets: jax.Array, mask: jax.Array) -> jax.Array:
    """0.5 * mean squared error over outputs and the steps where mask is 1."""
    return 0.5 * masked_mean(jnp.mean(jnp.square(outputs - targets), axis=-1), mask)


@jax.jit
def relative_mse(outputs: jax.Array, targets: jax.Array, mask: jax.Array) -> jax.Array:
    """Squared error divided by the zero predictor's (the targets' power), over masked steps."""
    err = jnp.sum(jnp.square(outputs - targets), axis=-1)
    power = jnp.sum(jnp.square(targets), axis=-1)
    return jnp.sum(err * mask) / jnp.maximum(jnp.sum(power * mask), 1e-30)


@functools.partial(jax.jit, static_argnames=("batch_size", "seq_len", "input_size"))
def teacher_batch(
    arrays: PyTree, key: jax.Array, *, batch_size: int, seq_len: int, input_size: int
) -> Batch:
    """Gaussian inputs and the teacher's outputs; every step counts."""
    x = jax.random.normal(key, (batch_size, seq_len, input_size), jnp.float32)
    mask = jnp.ones((batch_size, seq_len), jnp.float32)
    return Batch(inputs=x, targets=teacher_outputs(arrays, x), mask=mask)


def _gaussian_impl(key: jax.Array, shape: tuple[int, ...]) -> jax.Array:
    return jax.random.normal(key, shape, jnp.float32)


_gaussian = jax.jit(_gaussian_impl, static_argnums=1)


@register_task("teacher_student")
class TeacherStudent(GeneratedTask):
    eval_tags = EVAL_TAGS
    """Linear teacher-student regression (Zucchet & Orvieto 2024) with memory `horizon`.

    Teacher: `h_{t+1} = A h_t + B x_t`, `y_t = C h_t + D x_t`, h_0 = 0, x_t ~ N(0, I),
    `teacher_hidden=10` states, nu0 = 1 - 1/horizon (`horizon_to_nu0`). All draws come from
    `numpy.random.default_rng(teacher_seed)`. A follows `construction`:

    - "zucchet_orvieto" (default), the paper's code: the eigenvalues of a Gaussian matrix
      G ~ N(0, 1/teacher_hidden) keep their phases and get magnitudes nu0 + (1 - nu0)
      tanh(|eig G|), on G's eigenvectors (`zucchet_orvieto_a`): A is non-normal and
      |eig(A)| lies in [nu0, nu0 + tanh(rho(G)) (1 - nu0)], about [nu0, nu0 + 0.76 (1 - nu0)];
    - "normal", this project's first teacher: A = Q M Q^T, Q Haar-orthogonal, M 2x2 rotation
      blocks with magnitudes nu0 + (1 - nu0) U[0, 1) (`normal_a`): |eig(A)| in [nu0, 1).

    B ~ N(0, 1/input_size), C ~ N(0, 1/teacher_hidden), D ~ N(0, 1/input_size); then C and D
    are divided by one common factor so the expected mean square output over the sequence is
    1 per channel (keeps the loss scale comparable across horizons; the metric is scale-free
    anyway). The draws depend only on the teacher seed, so changing the horizon moves the
    magnitudes of the same teacher. `teacher_seed` is an integer (one teacher for every run)
    or "run": then the run's seed picks the teacher (`run_seed`, which `create_task` passes
    from the harness), as in the paper's sweeps, where each seed is a new teacher. The teacher
    lives in `arrays()` (A, B, C, D and the impulse response K: K_0 = D, K_k = C A^(k-1) B),
    so runs with different teachers share one compilation. Targets are the causal convolution
    y_t = sum_k K_k x_{t-k}, the recurrence unrolled exactly (a step-by-step scan when
    seq_len^2 * input_size * output_size exceeds 2^24).

    Options (defaults): `seq_len=300`, `batch_size=128`, `input_size=1`, `output_size=1`,
    `teacher_hidden=10`, `teacher_seed=0`, `construction="zucchet_orvieto"`, `eval_size=512`,
    `success_threshold=0.05`. `horizon` is a float >= 1 (1 means nu0 = 0; the paper's grid
    is `PAPER_HORIZONS`). Validation and test inputs come from two fixed keys of their own.

    Loss: 0.5 * MSE over all steps and outputs. Metric: relative MSE, the held-out squared
    error divided by that of the zero predictor (sum of y^2): 1.0 = predicts nothing (chance),
    0 = perfect; lower is better. Success: relative MSE <= 0.05, i.e. the student explains at
    least 95% of the teacher's output power. A student that only learns the instantaneous
    part D x, or only the fast modes, stays well above that at long horizons, where the slow
    modes carry most of the output.
    """

    metric_name = "relative_mse"
    higher_is_better = False
    target_kind = "real"
    chance_level = 1.0

    def __init__(
        self,
        *,
        horizon: float,
        seq_len: int = 300,
        batch_size: int = 128,
        input_size: int = 1,
        output_size: int = 1,
        teacher_hidden: int = 10,
        teacher_seed: int | str = 0,
        construction: str = "zucchet_orvieto",
        run_seed: int | None = None,
        eval_size: int = 512,
        success_threshold: float = 0.05,
    ) -> None:
        name = type(self).name
        self.horizon = check_float(name, "horizon", horizon, 1.0, what="a finite number")
        self.nu0 = horizon_to_nu0(self.horizon)
        self.seq_len = check_int(name, "seq_len", seq_len, 1)
        self.batch_size = check_int(name, "batch_size", batch_size, 1)
        self.input_size = check_int(name, "input_size", input_size, 1)
        self.output_size = check_int(name, "output_size", output_size, 1)
        self.teacher_hidden = check_int(name, "teacher_hidden", teacher_hidden, 1)
        if teacher_seed == "run":
            if run_seed is None:
                raise TaskConfigError(
                    f"{name}: teacher_seed='run' needs the run's seed (run_seed), which "
                    "create_task receives from the harness; got none"
                )
            teacher_seed = check_int(name, "run_seed", run_seed, 0)
        elif isinstance(teacher_seed, str):
            raise TaskConfigError(
                f"{name}: teacher_seed must be an integer >= 0 or 'run', got {teacher_seed!r}"
            )
        self.teacher_seed = check_int(name, "teacher_seed", teacher_seed, 0)
        if construction not in TEACHER_CONSTRUCTIONS:
            raise TaskConfigError(
                f"{name}: construction must be one of "
                f"{', '.join(map(repr, TEACHER_CONSTRUCTIONS))}, got {construction!r}"
            )
        self.construction = construction
        self.eval_size = check_int(name, "eval_size", eval_size, 1)
        self.success_threshold = check_float(
            name, "success_threshold", success_threshold, 0.0, 1.0, lo_open=True, hi_open=True
        )
        self.teacher = make_teacher(
            self.nu0,
            hidden=self.teacher_hidden,
            input_size=self.input_size,
            output_size=self.output_size,
            seq_len=self.seq_len,
            seed=self.teacher_seed,
            construction=self.construction,
        )
        self._arrays: PyTree | None = None
        self._eval: dict[str, Batch] = {}

    def teacher_outputs(self, arrays: PyTree, x: jax.Array) -> jax.Array:
        """The teacher's outputs (batch, time, output_size) for inputs (batch, time, input_size)."""
        return teacher_outputs(arrays, x)

    def _make(self, arrays: PyTree, key: jax.Array, batch_size: int) -> Batch:
        return teacher_batch(
            arrays, key, batch_size=batch_size, seq_len=self.seq_len, input_size=self.input_size
        )

    def arrays(self) -> PyTree:
        if self._arrays is None:
            t = self.teacher
            kernel = impulse_response(t["A"], t["B"], t["C"], t["D"], self.seq_len)
            self._arrays = {
                k: jax.device_put(np.asarray(v, np.float32))
                for k, v in {**t, "kernel": kernel}.items()
            }
        return self._arrays

    def loss(self, outputs: jax.Array, batch: Batch) -> jax.Array:
        return half_mse(outputs, batch.targets, batch.mask)

    def metric(self, outputs: jax.Array, batch: Batch) -> jax.Array:
        return relative_mse(outputs, batch.targets, batch.mask)

    def sample_inputs(self, arrays: PyTree, key: jax.Array, length: int) -> jax.Array:
        return _gaussian(key, (length, self.input_size))

    def input_key(self) -> Hashable:
        return ("gaussian", self.input_size)

    def static_key(self) -> Hashable:
        return (
            type(self).__qualname__,
            self.seq_len,
            self.batch_size,
            self.input_size,
            self.output_size,
            self.teacher_hidden,
            self.eval_size,
        )

    def describe(self) -> str:
        return (
            f"{self.name}(horizon={self.horizon:g} (nu0={self.nu0:.4g}), seq_len={self.seq_len}, "
            f"teacher_seed={self.teacher_seed}, construction={self.construction})"
        )
