"""Lyapunov spectra against known answers, and gradient flossing on every architecture.

Known-answer checks run in float64 (inside `jax.enable_x64(True)`, never flipped
globally); flossing runs in float32 as the harness does. Shapes are small so that the
whole file is dominated by a handful of compilations.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import zoo
from zoo import flossing as F


@pytest.fixture
def x64():
    with jax.enable_x64(True):
        yield


def _model(arch, input_size=1, hidden_size=4, seed=0, **options):
    return zoo.create_architecture(
        arch, input_size=input_size, hidden_size=hidden_size, output_size=1,
        rngs=nnx.Rngs(seed), **options,
    )


def _keys(seed, n):
    return jax.random.split(jax.random.key(seed), n)


def _snapshot(tree):
    return jax.tree.map(np.array, tree)


def _nonnormal(rng, moduli):
    """`S diag(d) S^-1` with a random (non-orthogonal) S: eigenvalues d, far from normal."""
    s = rng.normal(size=(len(moduli), len(moduli)))
    return s @ np.diag(moduli) @ np.linalg.inv(s)


class LinearPlugin(nnx.Module):
    """A user's architecture as the flossing code sees it: `h -> A h + x`, no `h0` in `__call__`."""

    def __init__(self, a):
        self.A = nnx.Param(jnp.asarray(a, jnp.float32))
        self.state_size = a.shape[0]

    def transition(self, h, x):
        return self.A[...] @ h + x[0]

    def __call__(self, x):
        def run(xs):
            step = lambda h, x: (self.transition(h, x),) * 2  # noqa: E731
            return jax.lax.scan(step, jnp.zeros(self.state_size), xs)[1]

        return jax.vmap(run)(x)[..., :1]


def _scaled_rotation(r, n, seed=4):
    return r * np.linalg.qr(np.random.default_rng(seed).normal(size=(n, n)))[0]


# ------------------------------------------------------------------- known answers


def test_linear_map_gives_log_moduli_of_eigenvalues(x64):
    # Real eigenvalues with well separated moduli (and mixed signs) behind a random,
    # ill-conditioned eigenbasis.
    rng = np.random.default_rng(1)
    d = np.array([1.3, -1.1, 0.9, 0.75, -0.6, 0.4])
    w = jnp.asarray(_nonnormal(rng, d))
    expected = np.log(np.abs(d))  # already descending

    def exponents(time, **kw):
        return np.asarray(
            F.lyapunov_spectrum(lambda h, x: w @ h, jnp.zeros(6), jnp.zeros((time, 1)), **kw)
        )

    # Without warm-up the estimate carries the transient of Q aligning with the Schur
    # vectors of W: sum log|R_ii| = t * log|d_i| + c_i + (geometrically small), so the
    # error is exactly c_i / T. Check the 1/T law itself (err * T constant when T
    # doubles) and the size at T = 2000 (|c_i| is ~7 for this cond(S) ~ 1e2 basis).
    err1 = np.abs(exponents(1000, k=6) - expected)
    err2 = np.abs(exponents(2000, k=6) - expected)
    np.testing.assert_allclose(err2 * 2000, err1 * 1000, rtol=1e-6)
    assert err2.max() < 5e-3
    # With a warm-up the basis is aligned before counting: only the geometric
    # remainder (ratio |d_{i+1} / d_i| per step) is left.
    lead = exponents(600, k=3, warmup=200, key=jax.random.key(0))
    np.testing.assert_allclose(lead, expected[:3], atol=1e-8)


def test_diagonal_map_is_exact():
    d = np.array([0.5, -2.0, 1.5, 0.9, -0.1])
    expected = np.sort(np.log(np.abs(d)))[::-1]
    # Identity start: Q stays the identity, R = diag(d) every step, no transient at all;
    # only rounding of log|d_i| remains.
    with jax.enable_x64(True):
        lam = F.lyapunov_spectrum(
            lambda h, x: jnp.asarray(d) * h, jnp.ones(5), jnp.zeros((50, 1)), k=5
        )
        np.testing.assert_allclose(lam, expected, rtol=1e-13)
    d = jnp.asarray(d, jnp.float32)
    # The k leading ones need a generic start (the identity's first columns would
    # stay in their coordinate subspace) and a warm-up.
    lam = F.lyapunov_spectrum(
        lambda h, x: d * h, jnp.ones(5), jnp.zeros((300, 1)), k=2, warmup=100, key=jax.random.key(3)
    )
    np.testing.assert_allclose(lam, expected[:2], atol=1e-5)


def test_diagonal_spectrum_is_the_mean_log_modulus(x64):
    # Steps alternate diag(d1), diag(d2) after a warm-up step that must not count: the
    # product over the counted steps is diag(d1 d2)^(T/2), so each exponent is
    # (log|d1_i| + log|d2_i|) / 2; the k largest, descending.
    d1, d2, skipped = np.array([0.5, -2.0, 0.9]), np.array([4.0, 0.25, -0.3]), np.array([1e-9, 9.0, 1.0])
    diagonals = jnp.asarray(np.vstack([skipped] + [d1, d2] * 50))
    rates = (np.log(np.abs(d1)) + np.log(np.abs(d2))) / 2
    np.testing.assert_allclose(F.diagonal_spectrum(diagonals, k=2, warmup=1), np.sort(rates)[::-1][:2], rtol=1e-13)


GATED = ["mingru", "minlstm", "rglru", "s6"]


@pytest.mark.parametrize("arch", GATED)
def test_jacobian_diagonal_is_the_step_jacobian(x64, arch):
    # Against autodiff: d transition(h, x) / dh is diag(jacobian_diagonal(x)) at any h.
    model = _model(arch, input_size=2, hidden_size=3, param_dtype=jnp.float64)
    x = jax.random.normal(jax.random.key(0), (2,), jnp.float64)
    h = jax.random.normal(jax.random.key(1), (model.state_size,), jnp.float64)
    jac = jax.jacfwd(lambda s: model.transition(s, x))(h)
    np.testing.assert_allclose(jac, np.diag(model.jacobian_diagonal(x)), rtol=1e-12, atol=1e-15)


def test_a_one_layer_stack_passes_the_diagonal_on_and_a_deeper_one_does_not(x64):
    from zoo.architectures.stack import create_model

    kwargs = dict(input_size=2, hidden_size=3, output_size=1, rngs=nnx.Rngs(0), param_dtype=jnp.float64)
    one = create_model("s6", readout="mlp", **kwargs)
    x = jax.random.normal(jax.random.key(0), (2,), jnp.float64)
    h = jax.random.normal(jax.random.key(1), (one.state_size,), jnp.float64)
    jac = jax.jacfwd(lambda s: one.transition(s, x))(h)
    np.testing.assert_allclose(jac, np.diag(one.jacobian_diagonal(x)), rtol=1e-12, atol=1e-15)
    assert create_model("s6", depth=2, block="glu", **kwargs).jacobian_diagonal(x) is None
    assert create_model("gru", readout="mlp", **kwargs).jacobian_diagonal(x) is None


def test_diagnostics_of_a_diagonal_model_match_the_qr_method():
    # The exact path (diagonal_spectrum) and the QR method on the same S6 and input
    # sequence agree to the QR estimate's transient (~c / (steps - warmup)).
    model = _model("s6", input_size=1, hidden_size=2, d_state=4)
    inputs = jax.random.bernoulli(jax.random.key(0), 0.5, (3000, 1)).astype(jnp.float32)
    cfg = F.FlossingConfig(k=6)
    exact = F.lyapunov_diagnostics(model, inputs, cfg)
    qr = F.lyapunov_spectrum(model.transition, model.initial_state(), inputs, k=6, warmup=500,
                             key=jax.random.key(0))
    assert exact["lambda_1"] == pytest.approx(float(qr[0]), abs=2e-3)
    assert exact["lambda_k"] == pytest.approx(float(qr[-1]), abs=2e-3)
    expected = F.diagonal_spectrum(model.jacobian_diagonal(inputs), 6, warmup=500)
    assert exact["lambda_1"] == pytest.approx(float(expected[0]), rel=1e-6)


def test_rotation_times_scalar_gives_log_r_for_every_exponent(x64):
    # A = r Q, Q orthogonal: every direction grows by exactly r per step, from any basis.
    rng = np.random.default_rng(0)
    a = jnp.asarray(_scaled_rotation(0.93, 7))
    lam = F.lyapunov_spectrum(
        lambda h, x: a @ h + x, jnp.ones(7), jnp.asarray(rng.normal(size=(40, 7))), k=4,
        warmup=3, key=jax.random.key(0),
    )
    np.testing.assert_allclose(lam, np.full(4, np.log(0.93)), rtol=1e-12)


def test_tanh_rnn_at_its_fixed_point_has_the_exponents_of_w(x64):
    # h -> W tanh(h) contracts to the fixed point 0, where the step Jacobian is W itself
    # (tanh'(0) = 1): after the warm-up the exponents are log|eig(W)| (W non-normal, so
    # the basis must align first; both the state's decay, 0.6^t, and the alignment,
    # (0.5/0.6)^t, are far below rounding after 200 steps).
    d = np.array([0.6, -0.5, 0.4, 0.3, -0.2, 0.1])
    w = jnp.asarray(_nonnormal(np.random.default_rng(5), d))
    h0 = jnp.asarray(1e-3 * np.random.default_rng(6).normal(size=6))  # inside its basin
    lam = F.lyapunov_spectrum(
        lambda h, x: w @ jnp.tanh(h), h0, jnp.zeros((400, 1)), k=3, warmup=200,
        key=jax.random.key(0),
    )
    np.testing.assert_allclose(lam, np.log(np.abs(d[:3])), atol=1e-10)


def test_chaotic_tanh_rnn_full_spectrum_sums_to_the_mean_log_determinant(x64):
    # h -> W tanh(h), W ~ N(0, 3^2/N): chaotic (lambda_1 > 0). With k = N the QR keeps
    # the whole volume, so sum_i lambda_i = mean over the counted steps t of
    # log|det D_t|, D_t = W diag(1 - tanh(h_{t-1})^2): an identity for any trajectory,
    # checked against a plain NumPy loop (counted steps: warmup + 1 .. T). Short, since
    # rounding differences between the two trajectories grow like exp(lambda_1 t).
    n, time, warmup = 30, 60, 17
    rng = np.random.default_rng(0)
    w = 3.0 * rng.normal(size=(n, n)) / np.sqrt(n)
    h0 = rng.normal(size=n)
    h, log_dets = h0, []
    for _ in range(time):
        log_dets.append(np.linalg.slogdet(w * (1 - np.tanh(h) ** 2))[1])  # W diag(...)
        h = w @ np.tanh(h)
    expected_sum = np.mean(log_dets[warmup:])
    w_j = jnp.asarray(w)
    lam = np.asarray(F.lyapunov_spectrum(
        lambda h, x: w_j @ jnp.tanh(h), jnp.asarray(h0), jnp.zeros((time, 1)), k=n, warmup=warmup,
    ))
    np.testing.assert_allclose(lam.sum(), expected_sum, rtol=1e-10)
    assert lam[0] > 0.1, lam[:3]  # chaotic
    assert lam[-1] < -1.0  # and strongly contracting in the last directions


def _tanh_rnn(w, v):
    return lambda h, x: jnp.tanh(h) @ w.T + x @ v


def test_exponents_do_not_depend_on_reortho_every(x64):
    # D_r...D_1 Q = Q_r R_r...R_1 and the product of triangular factors has the product
    # of their diagonals: re-orthonormalising less often gives the same numbers up to
    # rounding, as long as nothing overflows within a block (mild dynamics, short
    # blocks). 7 divides neither the 301 steps nor the 23 warm-up steps.
    rng = np.random.default_rng(2)
    w = jnp.asarray(1.5 * rng.normal(size=(6, 6)) / np.sqrt(6))
    v = jnp.asarray(rng.normal(size=(2, 6)))
    xs = jnp.asarray(rng.normal(size=(301, 2)))
    spectra = [
        F.lyapunov_spectrum(
            _tanh_rnn(w, v), jnp.ones(6), xs, k=4, warmup=23, reortho_every=r, key=jax.random.key(0)
        )
        for r in (1, 5, 7)
    ]
    np.testing.assert_allclose(spectra[1], spectra[0], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(spectra[2], spectra[0], rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("reortho_every", [1, 3])
def test_gradient_matches_central_differences(x64, reortho_every):
    rng = np.random.default_rng(0)
    w = jnp.asarray(2.0 * rng.normal(size=(5, 5)) / np.sqrt(5))
    v = jnp.asarray(rng.normal(size=(1, 5)))
    xs = jnp.asarray(rng.normal(size=(30, 1)))

    def loss(w):
        lam = F.lyapunov_spectrum(
            _tanh_rnn(w, v), jnp.zeros(5), xs, k=3, warmup=5, reortho_every=reortho_every,
            key=jax.random.key(0),
        )
        return F.flossing_loss(lam, 0.1)

    value_and_grad = jax.jit(jax.value_and_grad(loss))  # one compilation for both
    direction = jnp.asarray(rng.normal(size=(5, 5)))
    analytic = jnp.vdot(value_and_grad(w)[1], direction)
    eps = 1e-6
    plus, minus = value_and_grad(w + eps * direction)[0], value_and_grad(w - eps * direction)[0]
    numeric = (plus - minus) / (2 * eps)
    np.testing.assert_allclose(analytic, numeric, rtol=1e-6)


def test_frozen_trajectory_gradient_differentiates_only_the_jacobians(x64):
    # With trajectory_gradient=0 the bias enters the tanh RNN's Jacobian only through
    # the state, so its gradient vanishes; the exact one does not.
    rng = np.random.default_rng(0)
    w = jnp.asarray(rng.normal(size=(4, 4)))
    xs = jnp.asarray(rng.normal(size=(20, 1)))

    def grad_b(tg):
        def loss(b):
            lam = F.lyapunov_spectrum(
                lambda h, x: jnp.tanh(h) @ w.T + b + x, jnp.zeros(4), xs, k=2,
                trajectory_gradient=tg,
            )
            return F.flossing_loss(lam)

        return jax.jit(jax.grad(loss))(jnp.zeros(4))

    assert np.all(np.asarray(grad_b(0.0)) == 0.0)
    assert np.linalg.norm(grad_b(1.0)) > 1e-3


def test_spectrum_argument_errors():
    f = lambda h, x: h  # noqa: E731
    h0, xs = jnp.zeros(4), jnp.zeros((10, 1))
    with pytest.raises(ValueError, match="k must satisfy"):
        F.lyapunov_spectrum(f, h0, xs, k=0)
    with pytest.raises(ValueError, match="k must satisfy"):
        F.lyapunov_spectrum(f, h0, xs, k=5)
    with pytest.raises(ValueError, match="warmup"):
        F.lyapunov_spectrum(f, h0, xs, k=2, warmup=10)
    with pytest.raises(ValueError, match="reortho_every"):
        F.lyapunov_spectrum(f, h0, xs, k=2, reortho_every=0)
    with pytest.raises(ValueError, match="time, input_size"):
        F.lyapunov_spectrum(f, h0, jnp.zeros(10), k=2)
    with pytest.raises(ValueError, match="flat state"):
        F.lyapunov_spectrum(f, jnp.zeros((2, 4)), xs, k=2)
    with pytest.raises(ValueError, match="trajectory_gradient"):
        F.lyapunov_spectrum(f, h0, xs, k=2, trajectory_gradient=2.0)


def test_flossing_loss():
    assert float(F.flossing_loss(jnp.array([1.0, -1.0, 0.0]))) == pytest.approx(2 / 3)
    assert float(F.flossing_loss(jnp.array([1.0, 3.0]), target=2.0)) == pytest.approx(1.0)


# ------------------------------------------------------------------------ schedule


def test_schedule():
    cfg = F.FlossingConfig()
    assert F.flossing_schedule("none", 1000, cfg) == ()
    assert F.flossing_schedule("pre", 1000, cfg) == ((0, 500),)
    assert F.flossing_schedule("pre+during", 1000, cfg) == ((0, 500), (100, 500), (200, 500))
    # Flossing points at or past the end of training are dropped.
    assert F.flossing_schedule("pre+during", 150, cfg) == ((0, 500), (100, 500))
    assert F.flossing_schedule("pre+during", 100, cfg) == ((0, 500),)
    custom = F.FlossingConfig(pre_steps=0, during_steps=7, during_every=30, during_times=3)
    assert F.flossing_schedule("pre+during", 1000, custom) == ((30, 7), (60, 7), (90, 7))
    assert F.flossing_schedule("pre", 1000, custom) == ()
    with pytest.raises(ValueError, match="'none', 'pre', 'pre\\+during'"):
        F.flossing_schedule("during", 1000, cfg)


def test_config_validation_and_k_clipping():
    cfg = F.FlossingConfig()
    assert (cfg.k, cfg.rollout, cfg.warmup, cfg.lr, cfg.target) == (75, 55, 16, 1e-3, 0.0)
    assert hash(cfg) == hash(F.FlossingConfig())  # usable as a static jit argument
    assert cfg.for_state_size(32).k == 32
    assert cfg.for_state_size(80) is cfg
    with pytest.raises(ValueError, match="warmup"):
        F.FlossingConfig(rollout=10, warmup=10)
    with pytest.raises(ValueError, match="k must be >= 1"):
        F.FlossingConfig(k=0)
    with pytest.raises(ValueError, match="lr"):
        F.FlossingConfig(lr=0.0)
    with pytest.raises(ValueError, match="target must be a finite number"):
        F.FlossingConfig(target=float("nan"))


@pytest.mark.parametrize(
    "k, k_fraction, state_size, expected",
    [
        (75, None, 32, 32),  # absolute k, clipped to the state
        (16, None, 32, 16),
        (16, None, 64, 16),  # the old dose: a quarter of a 2N state ...
        (16, 0.5, 64, 32),  # ... a fraction gives half of any state; it wins over k
        (75, 0.5, 32, 16),
        (75, 0.3, 10, 3),
        (75, 0.3, 32, 10),  # rounded (9.6), not truncated
        (75, 0.01, 10, 1),  # never below one exponent
        (75, 1.0, 7, 7),
    ],
)
def test_k_as_a_fraction_of_the_state(k, k_fraction, state_size, expected):
    cfg = F.FlossingConfig(k=k, k_fraction=k_fraction)
    assert cfg.k_for(state_size) == expected
    assert cfg.for_state_size(state_size).k == expected
    assert cfg.for_state_size(state_size).for_state_size(state_size).k == expected


@pytest.mark.parametrize("bad", [0.0, 1.5, -0.5, "0.5", True])
def test_k_fraction_validation(bad):
    with pytest.raises(ValueError, match=r"k_fraction must be a number in \(0, 1\] or None"):
        F.FlossingConfig(k_fraction=bad)


def test_dynamics_filter_excludes_the_readout():
    model = _model("rnn", input_size=2)
    paths = {path for path, _ in nnx.to_flat_state(nnx.state(model, F.DYNAMICS))}
    assert paths == {("W",), ("V",), ("b",)}


# ------------------------------------------------------------------------ flossing


def _bits(key, shape):
    return jax.random.bernoulli(key, 0.5, shape).astype(jnp.float32)


def test_flossing_edge_of_chaos_rnn_with_default_gradient():
    # The reference regime (g = 1, most of the spectrum): the exact gradient pulls the
    # spectrum toward 0 quickly. Two model instances share one compilation.
    cfg = F.FlossingConfig(k=16, lr=3e-3)
    long_input = _bits(jax.random.key(5), (600, 1))
    traces, diagnostic_traces = F.TRACE_COUNTS["floss"], F.TRACE_COUNTS["diagnostics"]
    for seed in (0, 1):
        model = zoo.create_architecture(
            "rnn", input_size=1, hidden_size=32, output_size=1, rngs=nnx.Rngs(seed), gain=1.0
        )
        before = F.lyapunov_diagnostics(model, long_input, cfg)
        optimizer = F.make_flossing_optimizer(model, cfg)
        inputs = _bits(jax.random.key(10 + seed), (100, cfg.rollout, 1))
        losses = F.floss(model, optimizer, inputs, jax.random.split(jax.random.key(seed), 100), cfg)
        after = F.lyapunov_diagnostics(model, long_input, cfg)
        assert losses.shape == (100,)
        assert float(losses[-10:].mean()) < 0.5 * float(losses[:10].mean())
        assert before["lambda_1"] < -0.25
        assert abs(after["lambda_1"]) < 0.5 * abs(before["lambda_1"])
        assert after["lambda_spread"] < before["lambda_spread"]
        assert int(optimizer.step[...]) == 100
    assert F.TRACE_COUNTS["floss"] == traces + 1, "a second instance must not retrace"
    assert F.TRACE_COUNTS["diagnostics"] == diagnostic_traces + 1
    # A step with a non-finite loss or gradient is skipped, not applied.
    params = _snapshot(nnx.state(model))
    losses = F.floss(model, optimizer, jnp.full_like(inputs, jnp.nan), _keys(0, 100), cfg)
    assert np.all(np.isnan(np.asarray(losses)))
    jax.tree.map(np.testing.assert_array_equal, params, _snapshot(nnx.state(model)))
    assert int(optimizer.step[...]) == 100


def test_flossing_chaotic_rnn_toward_zero():
    # g = 3: lambda_1 ~ +0.2. The exact gradient is swamped by the exp(lambda_1 t)
    # sensitivity of the chaotic trajectory, so floss along a frozen trajectory. Even
    # so single-sequence gradients are noisy (independent ones are nearly orthogonal):
    # lambda_1 falls steadily but slowly (0.21 -> 0.11 and 0.23 -> 0.08 over 400 steps
    # for two seeds), hence the loose bound.
    cfg = F.FlossingConfig(k=1, lr=1e-2, trajectory_gradient=0.0)
    model = zoo.create_architecture(
        "rnn", input_size=1, hidden_size=32, output_size=1, rngs=nnx.Rngs(1), gain=3.0
    )
    long_input = _bits(jax.random.key(5), (1000, 1))
    before = F.lyapunov_diagnostics(model, long_input, cfg)["lambda_1"]
    optimizer = F.make_flossing_optimizer(model, cfg)
    inputs = _bits(jax.random.key(11), (400, cfg.rollout, 1))
    F.floss(model, optimizer, inputs, jax.random.split(jax.random.key(1), 400), cfg)
    after = F.lyapunov_diagnostics(model, long_input, cfg)["lambda_1"]
    assert before > 0.15
    assert abs(after) < 0.7 * before, (before, after)


@pytest.mark.parametrize("arch", ["lstm", "gru", "lru", "complex_diagonal", "linear", "mingru", "s6"])
def test_flossing_runs_on_every_architecture(arch):
    cfg = F.FlossingConfig(k=4, rollout=20, warmup=5, lr=1e-2)
    model = _model(arch, input_size=2, hidden_size=6)
    dynamics_before = _snapshot(nnx.state(model, F.DYNAMICS))
    readout_before = _snapshot(nnx.state(model.readout))
    optimizer = F.make_flossing_optimizer(model, cfg)
    inputs = jax.random.normal(jax.random.key(0), (20, cfg.rollout, 2))
    losses = np.asarray(F.floss(model, optimizer, inputs, _keys(1, 20), cfg))
    assert losses.shape == (20,) and np.all(np.isfinite(losses))
    assert losses[-5:].mean() < losses[:5].mean()
    changed = jax.tree.map(
        lambda a, b: not np.allclose(a, b), dynamics_before, _snapshot(nnx.state(model, F.DYNAMICS))
    )
    assert any(jax.tree.leaves(changed)), "no recurrent parameter moved"
    jax.tree.map(np.testing.assert_array_equal, readout_before, _snapshot(nnx.state(model.readout)))


class DiagonalPlugin(nnx.Module):
    """`h -> a * h + x`: its exponents are log|a_i| exactly, so flossing's end point is known."""

    def __init__(self, a):
        self.a = nnx.Param(jnp.asarray(a, jnp.float32))
        self.state_size = len(a)

    def transition(self, h, x):
        return self.a[...] * h + x[0]


@pytest.mark.parametrize("target", [0.0, -0.1])
def test_flossing_drives_a_linear_recurrence_to_its_target(target):
    # Every exponent is flossed (k_fraction = 1) toward the target: each log|a_i| ends
    # there, from below and above alike.
    model = DiagonalPlugin([0.5, 0.8, 0.95, 1.2])
    cfg = F.FlossingConfig(k_fraction=1.0, rollout=30, warmup=5, lr=1e-2, target=target)
    optimizer = F.make_flossing_optimizer(model, cfg)
    F.floss(model, optimizer, jnp.zeros((300, cfg.rollout, 1)), _keys(0, 300), cfg)
    np.testing.assert_allclose(np.log(np.abs(np.asarray(model.a[...]))), target, atol=0.02)


def test_floss_argument_errors():
    model = _model("rnn")
    optimizer = F.make_flossing_optimizer(model)
    with pytest.raises(ValueError, match="n_steps, rollout, input_size"):
        F.floss(model, optimizer, jnp.zeros((55, 1)), jax.random.split(jax.random.key(0), 1))
    with pytest.raises(ValueError, match="one key per flossing step"):
        F.floss(model, optimizer, jnp.zeros((3, 55, 1)), jax.random.split(jax.random.key(0), 2))
    assert F.floss(model, optimizer, jnp.zeros((0, 55, 1)), _keys(0, 0)).shape == (0,)


def test_flossing_inputs_from_a_task():
    class Task:
        def sample_inputs(self, arrays, key, length):
            return jax.random.normal(key, (length, 3)) + arrays

    cfg = F.FlossingConfig(rollout=12, warmup=2)
    inputs, keys = F.flossing_inputs(Task(), 100.0, jax.random.key(0), 4, cfg)
    assert inputs.shape == (4, 12, 3) and keys.shape == (4,)
    assert float(inputs.mean()) == pytest.approx(100.0, abs=1.0)
    assert not np.allclose(inputs[0], inputs[1])  # a fresh sequence per flossing step


# --------------------------------------------------------------------- diagnostics


def test_diagnostics_of_the_linear_architecture():
    # h -> A h + B x: the spectrum is log|eig(A)| whatever the input.
    model = _model("linear", hidden_size=6)
    moduli = np.sort(np.abs(np.linalg.eigvals(np.asarray(model.A[...], np.float64))))[::-1]
    inputs = jax.random.normal(jax.random.key(0), (800, 1))
    d = F.lyapunov_diagnostics(model, inputs, F.FlossingConfig())
    assert d["k"] == 6
    # Complex pairs share a modulus: the QR estimates of a pair oscillate around it,
    # a bounded error over the ~800 counted steps.
    assert d["lambda_1"] == pytest.approx(np.log(moduli[0]), abs=5e-3)
    assert d["lambda_spread"] == pytest.approx(np.log(moduli[0] / moduli[-1]), abs=1e-2)


def test_diagnostics_of_the_complex_diagonal_architecture():
    # Each channel rotates its (Re, Im) plane by lambda_j: both real directions grow
    # like |lambda_j|, so the spectrum is each log|lambda_j| twice, exactly.
    model = zoo.create_architecture(
        "complex_diagonal", input_size=1, hidden_size=3, output_size=1, rngs=nnx.Rngs(0)
    )
    moduli = np.abs(np.asarray(model.lam_re[...]) + 1j * np.asarray(model.lam_im[...]))
    short = F.DiagnosticsConfig(steps=100, warmup=16, lags=50)
    d = F.lyapunov_diagnostics(model, jnp.ones((100, 1)), F.FlossingConfig(), diagnostics=short)
    assert d["lambda_1"] == pytest.approx(np.log(moduli.max()), abs=1e-4)
    assert d["lambda_spread"] == pytest.approx(np.log(moduli.max() / moduli.min()), abs=1e-4)


def test_default_diagnostics_remove_the_short_estimate_bias():
    # A non-normal linear map whose two leading eigenvalues (0.97, 0.95) are close: the
    # QR basis aligns slowly, so a short estimate keeps a transient bias c / (T - warmup).
    # The old setting (200 steps, 16 warm-up) is off by ~0.0024; the default is not.
    d = np.array([0.97, 0.95, 0.9, -0.8, 0.6, 0.4])
    model = LinearPlugin(_nonnormal(np.random.default_rng(5), d))
    exact = np.log(0.97)

    def bias(diagnostics):
        x = jnp.zeros((diagnostics.steps, 1))
        got = F.lyapunov_diagnostics(model, x, F.FlossingConfig(), diagnostics=diagnostics)
        return got["lambda_1"] - exact

    default = F.DiagnosticsConfig()
    assert (default.steps, default.warmup) == (2000, 500)
    assert 1.5e-3 < abs(bias(F.DiagnosticsConfig(steps=200, warmup=16))) < 5e-3
    # After the warm-up the transient is geometric, (0.95/0.97)^500 ~ 3e-5 of it is
    # left: far below the 5e-4 asked for (the flossing warm-up of 16 would leave 2e-4).
    assert abs(bias(default)) < 5e-5


def test_diagnostics_of_a_scaled_rotation(x64):
    # A = r Q: every exponent is log r, the spread 0, and the long-term Jacobian's norm
    # is r^lag sqrt(n), so gradients decay by exactly -log r per step. k from a fraction.
    r, n = 0.9, 6
    model = LinearPlugin(_scaled_rotation(r, n))
    inputs = jax.random.normal(jax.random.key(0), (300, 1))
    cfg = F.FlossingConfig(k_fraction=0.5)
    diagnostics = F.DiagnosticsConfig(steps=300, warmup=50, lags=60, fit_from=10)
    d = F.lyapunov_diagnostics(model, inputs, cfg, diagnostics=diagnostics)
    assert d["k"] == 3
    assert d["lambda_1"] == pytest.approx(np.log(r), abs=1e-5)
    assert d["lambda_k"] == pytest.approx(np.log(r), abs=1e-5)
    assert d["lambda_spread"] == pytest.approx(0.0, abs=1e-5)
    assert d["grad_decay_rate"] == pytest.approx(-np.log(r), abs=1e-5)
    with pytest.raises(ValueError, match="more than diagnostics.warmup = 500 input steps, got 300"):
        F.lyapunov_diagnostics(model, inputs, cfg)


def test_diagnostics_config_validation():
    with pytest.raises(ValueError, match=r"warmup \(10\) must be < steps \(10\)"):
        F.DiagnosticsConfig(steps=10, warmup=10, lags=5, fit_from=0)
    with pytest.raises(ValueError, match="lags"):
        F.DiagnosticsConfig(steps=10, warmup=0, lags=11)
    with pytest.raises(ValueError, match="fit_from"):
        F.DiagnosticsConfig(lags=10, fit_from=9)
    with pytest.raises(ValueError, match="steps must be an int"):
        F.DiagnosticsConfig(steps=2000.0)


# ------------------------------------------------------------ gradient against lag


def test_gradient_lag_norms_of_a_scaled_rotation(x64):
    # ||(r Q)^l||_F = r^l sqrt(n) exactly; lags may reach back to the first step.
    r, n = 0.8, 5
    a = jnp.asarray(_scaled_rotation(r, n))
    xs = jax.random.normal(jax.random.key(0), (30, n))
    norms = F.gradient_lag_norms(lambda h, x: a @ h + x, jnp.ones(n), xs, lags=30)
    np.testing.assert_allclose(norms, r ** np.arange(31) * np.sqrt(n), rtol=1e-12)
    assert F.gradient_decay_rate(norms) == pytest.approx(-np.log(r), rel=1e-10)


def test_gradient_lag_norms_match_matrix_powers(x64):
    # A non-normal linear map: c^T A^l for a vector and a matrix cotangent.
    rng = np.random.default_rng(1)
    a = _nonnormal(rng, np.array([0.95, -0.7, 0.5, 0.2]))
    c = rng.normal(size=(4, 2))
    f = lambda h, x: jnp.asarray(a) @ h  # noqa: E731
    xs = jnp.zeros((12, 1))
    powers = [np.linalg.matrix_power(a.T, lag) for lag in range(9)]
    got = F.gradient_lag_norms(f, jnp.zeros(4), xs, lags=8, cotangent=jnp.asarray(c))
    np.testing.assert_allclose(got, [np.linalg.norm(p @ c) for p in powers], rtol=1e-12)
    got = F.gradient_lag_norms(f, jnp.zeros(4), xs, lags=8, cotangent=jnp.asarray(c[:, 0]))
    np.testing.assert_allclose(got, [np.linalg.norm(p @ c[:, 0]) for p in powers], rtol=1e-12)
    with pytest.raises(ValueError, match="lags must satisfy 0 <= lags <= time = 12"):
        F.gradient_lag_norms(f, jnp.zeros(4), xs, lags=13)
    with pytest.raises(ValueError, match="cotangent must have shape"):
        F.gradient_lag_norms(f, jnp.zeros(4), xs, lags=3, cotangent=jnp.ones(3))


def test_gradient_lag_norms_of_a_tanh_rnn_match_an_unrolled_loop(x64):
    # Nonlinear and input-driven, so the Jacobians depend on where along the sequence
    # they are taken: the last `lags` steps, ending at T. Reference: jax.jacrev of a
    # plain Python loop from h_{T-l} to h_T.
    rng = np.random.default_rng(2)
    w = jnp.asarray(1.5 * rng.normal(size=(5, 5)) / np.sqrt(5))
    v = jnp.asarray(rng.normal(size=(2, 5)))
    xs = jnp.asarray(rng.normal(size=(10, 2)))
    h0 = jnp.asarray(rng.normal(size=5))
    c = jnp.asarray(rng.normal(size=5))
    f = _tanh_rnn(w, v)
    states = [h0]
    for x in xs:
        states.append(f(states[-1], x))

    def run(h, start):
        for x in xs[start:]:
            h = f(h, x)
        return h

    expected = [
        float(jnp.linalg.norm(c @ jax.jacrev(run)(states[10 - lag], 10 - lag)))
        for lag in range(7)
    ]
    got = F.gradient_lag_norms(f, h0, xs, lags=6, cotangent=c)
    np.testing.assert_allclose(got, expected, rtol=1e-12)


def test_decay_rate_is_the_log_spectral_radius(x64):
    # ||A^l||_F for a non-normal A = S diag(d) S^-1 is |d_1|^l times a constant plus
    # (d_2/d_1)^l corrections: past the first lags the slope is log|d_1| exactly.
    a = jnp.asarray(_nonnormal(np.random.default_rng(3), np.array([0.9, -0.5, 0.3, 0.2])))
    norms = F.gradient_lag_norms(lambda h, x: a @ h, jnp.zeros(4), jnp.zeros((100, 1)), lags=100)
    assert F.gradient_decay_rate(norms, fit_from=40) == pytest.approx(-np.log(0.9), abs=1e-6)


def test_gradient_decay_rate_fit():
    assert F.gradient_decay_rate(3.0 * 0.5 ** np.arange(10)) == pytest.approx(np.log(2))
    growing = np.concatenate([[1e6, 1e3], 2.0 ** np.arange(2, 10)])
    assert F.gradient_decay_rate(growing, fit_from=2) == pytest.approx(-np.log(2))
    assert np.isnan(F.gradient_decay_rate([1.0, 0.5, 0.0]))
    with pytest.raises(ValueError, match="at least two lags"):
        F.gradient_decay_rate([1.0, 0.5], fit_from=1)


# ------------------------------------------------------------ initial-state gradient


def test_initial_state_gradient_norm():
    model = _model("rnn", hidden_size=5)
    x = jax.random.normal(jax.random.key(0), (3, 12, 1))
    batch = (x, jnp.zeros((3, 12, 1)), jnp.ones((3, 12)))

    def loss_fn(outputs, batch):
        return jnp.mean((outputs - batch[1]) ** 2)

    def plain_loss(h0):
        # The model's outputs rebuilt from `transition` in a plain lax.scan (not the
        # architecture's fused path and its hand-written VJP).
        def run(h, xs):
            return jax.lax.scan(lambda h, x: (model.transition(h, x),) * 2, h, xs)[1]

        states = jax.vmap(run)(h0, x)
        return loss_fn(model.readout(model.features(states), x), batch)

    expected = float(jnp.linalg.norm(jax.grad(plain_loss)(jnp.zeros((3, 5)))))
    assert F.initial_state_gradient_unsupported(model) is None
    assert F.initial_state_gradient_norm(model, loss_fn, batch) == pytest.approx(expected, rel=1e-5)
    # A contracting network forgets its start: the gradient through 12 steps shrinks.
    model.W[...] = model.W[...] * 0.1
    assert F.initial_state_gradient_norm(model, loss_fn, batch) < 0.5 * expected


def test_initial_state_gradient_of_a_model_without_h0():
    model = LinearPlugin(np.eye(3) * 0.5)
    reason = F.initial_state_gradient_unsupported(model)
    assert reason == "LinearPlugin.__call__ takes no initial state (model(inputs, h0) is needed)"
    batch = (jnp.zeros((2, 5, 1)), jnp.zeros((2, 5, 1)))
    assert F.initial_state_gradient_norm(model, lambda y, b: jnp.sum(y), batch) is None


def test_gradient_lag_norms_do_not_underflow_before_the_entries_do():
    # |0.5^l| reaches 1e-30 at l = 100: its square underflows in float32, the value does not.
    norms = F.gradient_lag_norms(lambda h, x: 0.5 * h, jnp.zeros(3, jnp.float32),
                                 jnp.zeros((100, 1), jnp.float32), lags=100)
    assert np.all(np.asarray(norms) > 0)
    assert F.gradient_decay_rate(norms) == pytest.approx(np.log(2), rel=1e-4)
