"""The seven architectures of issue 17 against known answers: numpy recurrences written from the
papers' equations, scipy's matrix exponential, and properties the papers state (orthogonality,
a frozen state when the selective step vanishes). The shared per-architecture checks
(transition == forward pass, one Adam step, float64 gradients) run in test_architectures.py
and test_gradients.py over every registered name.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import scipy.linalg
from flax import nnx

import zoo

IN, HID, OUT, BATCH, TIME = 2, 6, 2, 3, 16


def make(name, seed=0, **options):
    sizes = dict(input_size=IN, hidden_size=HID, output_size=OUT)
    sizes.update({k: options.pop(k) for k in list(options) if k in sizes})
    return zoo.create_architecture(name, rngs=nnx.Rngs(seed), **sizes, **options)


def np_(a) -> np.ndarray:
    a = np.asarray(a[...] if isinstance(a, nnx.Variable) else a)
    return a.astype(np.complex128 if np.iscomplexobj(a) else np.float64)


def inputs(seed, batch=BATCH, time=TIME, size=IN):
    return np.random.default_rng(seed).normal(size=(batch, time, size))


@nnx.jit
def states_of(model, x, h0):
    return model.states(x, h0)


def run_states(model, x, h0=None):
    return np_(states_of(model, jnp.asarray(x, jnp.float32), None if h0 is None else jnp.asarray(h0, jnp.float32)))


def sigmoid(z):
    return 1 / (1 + np.exp(-z))


def softplus(z):
    return np.log1p(np.exp(z))


def linear_np(layer, x):
    y = x @ np_(layer.kernel)
    return y if layer.bias is None else y + np_(layer.bias)


# ------------------------------------------------------------------------ minGRU / minLSTM


def minimal_reference(model, name, x, h0):
    """Feng et al.'s sequential mode in numpy: `h_t = (1 - z) h + z g(k_h)` / `f' h + i' g(k_h)`."""
    def g(k):
        return np.where(k >= 0, k + 0.5, sigmoid(k))

    k = linear_np(model.proj, x)
    n = HID
    if name == "mingru":
        z, cand = sigmoid(k[..., :n]), g(k[..., n:])
        a, b = 1 - z, z * cand
    else:
        f, i, cand = sigmoid(k[..., :n]), sigmoid(k[..., n : 2 * n]), g(k[..., 2 * n :])
        a, b = f / (f + i), i / (f + i) * cand
    h, out = h0.copy(), []
    for t in range(x.shape[1]):
        h = a[:, t] * h + b[:, t]
        out.append(h)
    return np.stack(out, axis=1)


@pytest.mark.parametrize("name", ["mingru", "minlstm"])
def test_minimal_log_space_scan_equals_sequential_recurrence(name):
    model = make(name, seed=1)
    x = inputs(2)
    ref = minimal_reference(model, name, x, np.zeros((BATCH, HID)))
    assert (ref > 0).all()  # g keeps the candidate, hence the state, positive (what log space needs)
    sequential = run_states(model, x)
    model.parallel_scan = True  # h0 = None: the paper's log-space parallel scan
    log_space = run_states(model, x)
    np.testing.assert_allclose(sequential, ref, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(log_space, ref, rtol=1e-4, atol=1e-6)
    # With an initial state of any sign the recurrence is the same; log space cannot hold it.
    h0 = np.random.default_rng(3).normal(size=(BATCH, HID))
    np.testing.assert_allclose(run_states(model, x, h0), minimal_reference(model, name, x, h0), rtol=1e-5, atol=1e-5)


def test_minlstm_gates_are_normalised():
    # f' + i' = 1: with a constant candidate c, every state stays c once it starts at c.
    model = make("minlstm", seed=4)
    model.proj.kernel[...] = model.proj.kernel[...].at[:, 2 * HID :].set(0.0)
    model.proj.bias[...] = model.proj.bias[...].at[2 * HID :].set(0.7)  # g(0.7) = 1.2
    h = run_states(model, inputs(5), np.full((BATCH, HID), 1.2))
    np.testing.assert_allclose(h, 1.2, rtol=1e-6)


# ------------------------------------------------------------------------ RG-LRU


def test_rglru_step_matches_griffin_equations():
    model = make("rglru", seed=6)
    rng = np.random.default_rng(7)
    model.gates.bias[...] = jnp.asarray(rng.normal(size=2 * HID), jnp.float32)
    x = inputs(8)
    h0 = rng.normal(size=(BATCH, HID))
    u = linear_np(model.encoder, x)
    gates = sigmoid(linear_np(model.gates, u))
    r, i = gates[..., :HID], gates[..., HID:]
    a = sigmoid(-np_(model.a_param))  # a = sigma(Lambda), Lambda = -a_param
    h, ref = h0, []
    for t in range(TIME):
        a_t = a ** (8 * r[:, t])  # c = 8
        h = a_t * h + np.sqrt(1 - a_t**2) * (i[:, t] * u[:, t])
        ref.append(h)
    np.testing.assert_allclose(run_states(model, x, h0), np.stack(ref, axis=1), rtol=1e-5, atol=1e-5)


def test_rglru_init_puts_a_on_the_ring():
    model = make("rglru", hidden_size=4096, seed=9)
    a = sigmoid(-np_(model.a_param))
    assert a.min() >= 0.9 - 1e-6 and a.max() <= 0.999 + 1e-6
    # Uniform in a^2 on [0.81, 0.998001] (the reference's ring): mean (0.81 + 0.998001)/2.
    assert abs((a**2).mean() - (0.81 + 0.998001) / 2) < 5 * 0.188 / math.sqrt(12 * 4096)


# ------------------------------------------------------------------------ S6 (Mamba)


def test_s6_init_is_s4d_real_and_dt_in_range():
    model = make("s6", hidden_size=64, seed=10)
    a = -np.exp(np_(model.A_log))
    np.testing.assert_allclose(a, -np.broadcast_to(np.arange(1, 17), (64, 16)), rtol=1e-6)
    dt = softplus(np_(model.dt_bias))
    assert dt.min() >= 1e-3 * (1 - 1e-4) and dt.max() <= 1e-1 * (1 + 1e-4)
    assert model.state_size == 64 * 16


def test_s6_zero_step_keeps_the_state():
    model = make("s6", seed=11)
    model.dt_bias[...] = jnp.full_like(model.dt_bias[...], -60.0)  # Delta = softplus(-60) ~ 1e-26
    h0 = np.random.default_rng(12).normal(size=(BATCH, model.state_size))
    h = run_states(model, inputs(13), h0)
    np.testing.assert_allclose(h, np.broadcast_to(h0[:, None], h.shape), rtol=0, atol=1e-6)


def test_s6_matches_selective_scan_in_numpy():
    model = make("s6", seed=14, d_state=3)
    x = inputs(15)
    h0 = np.random.default_rng(16).normal(size=(BATCH, HID * 3))
    u = linear_np(model.encoder, x)
    proj = u @ np_(model.x_proj.kernel)
    r = model.dt_rank
    delta = softplus(proj[..., :r] @ np_(model.dt_proj) + np_(model.dt_bias))
    b, c = proj[..., r : r + 3], proj[..., r + 3 :]
    a = -np.exp(np_(model.A_log))
    h, hs, ys = h0.reshape(BATCH, HID, 3), [], []
    for t in range(TIME):
        d = delta[:, t, :, None]
        h = np.exp(d * a) * h + d * b[:, t, None, :] * u[:, t, :, None]
        hs.append(h.reshape(BATCH, -1))
        ys.append((h * c[:, t, None, :]).sum(-1) + np_(model.D) * u[:, t])
    np.testing.assert_allclose(run_states(model, x, h0), np.stack(hs, 1), rtol=1e-5, atol=1e-5)
    y = np.stack(ys, 1) @ np_(model.readout.proj.kernel) + np_(model.readout.proj.bias)
    got = np_(nnx.jit(lambda m, x, h0: m(x, h0))(model, jnp.asarray(x, jnp.float32), jnp.asarray(h0, jnp.float32)))
    np.testing.assert_allclose(got, y, rtol=1e-4, atol=1e-5)


# ------------------------------------------------------------------------ S5


def test_s5_hippo_n_eigenvalues():
    p = 8
    model = make("s5", hidden_size=p, seed=17)
    lam = np_(model.Lambda_re) + 1j * np_(model.Lambda_im)
    # HiPPO-LegS written out, plus P P^T with P_n = sqrt(n + 1/2): the normal part.
    legs = np.zeros((p, p))
    for i in range(p):
        for j in range(i):
            legs[i, j] = -math.sqrt((2 * i + 1) * (2 * j + 1))
        legs[i, i] = -(i + 1)
    s = legs + np.outer(np.sqrt(np.arange(p) + 0.5), np.sqrt(np.arange(p) + 0.5))
    want = np.linalg.eigvals(s)
    np.testing.assert_allclose(np.sort(lam.imag), np.sort(want.imag), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(want.real, -0.5, atol=1e-9)
    np.testing.assert_allclose(lam.real, -0.5, atol=1e-6)


def test_s5_discretisation_matches_scipy_expm():
    p, h = 4, 2
    model = make("s5", hidden_size=p, input_size=h, seed=18)
    lam = np_(model.Lambda_re) + 1j * np_(model.Lambda_im)
    step = np.exp(np_(model.log_step))
    assert (step >= 1e-3 * (1 - 1e-5)).all() and (step <= 1e-1 * (1 + 1e-5)).all()
    b = (np_(model.B_re) + 1j * np_(model.B_im)).T  # (P, H): x' = diag(lam) x + B u
    # Zero-order hold: expm([[A dt, B dt], [0, 0]]) = [[A_bar, B_bar], [0, I]] (per-state dt as rows).
    m = np.zeros((p + h, p + h), np.complex128)
    m[:p, :p] = np.diag(lam * step)
    m[:p, p:] = step[:, None] * b
    e = scipy.linalg.expm(m)
    np.testing.assert_allclose(np_(model.eigenvalues()), np.diag(e[:p, :p]), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.abs(e[:p, :p] - np.diag(np.diag(e[:p, :p]))).max(), 0, atol=1e-12)
    b_bar = np_(model.input_gain())[:, None] * b
    np.testing.assert_allclose(b_bar, e[:p, p:], rtol=1e-4, atol=1e-6)


# ------------------------------------------------------------------------ expRNN


def test_orthogonal_stays_orthogonal_under_adam():
    model = make("orthogonal", seed=19, hidden_size=8)
    optimizer = nnx.Optimizer(model, optax.adam(3e-2), wrt=nnx.Param)
    x, y = jnp.asarray(inputs(20), jnp.float32), jnp.asarray(inputs(21, size=OUT), jnp.float32)

    @nnx.jit
    def train_step(model, optimizer):
        loss, grads = nnx.value_and_grad(lambda m: jnp.mean((m(x) - y) ** 2))(model)
        optimizer.update(model, grads)
        return loss

    a0 = np_(model.A)
    for _ in range(6):
        train_step(model, optimizer)
    assert np.abs(np_(model.A) - a0).max() > 0.05  # the steps moved A...
    w = np_(nnx.jit(lambda m: m.recurrent_matrix())(model))
    np.testing.assert_allclose(w.T @ w, np.eye(8), atol=1e-5)  # ...and W is still orthogonal


@pytest.mark.parametrize("init", ["henaff", "cayley"])
def test_orthogonal_init_blocks(init):
    model = make("orthogonal", seed=22, hidden_size=64, init=init)
    a = np_(model.A)
    skew = a - a.T
    s = np.array([skew[2 * k, 2 * k + 1] for k in range(32)])
    expected_zero = skew.copy()
    for k in range(32):
        expected_zero[2 * k, 2 * k + 1] = expected_zero[2 * k + 1, 2 * k] = 0
    assert np.abs(expected_zero).max() == 0  # 2x2 blocks [[0, s], [-s, 0]] only
    if init == "henaff":
        assert s.min() >= -math.pi and s.max() <= math.pi and np.ptp(s) > math.pi
    else:  # s = -sqrt((1 - cos t)/(1 + cos t)) = -tan(t/2), t in [0, pi/2]: s in [-1, 0]
        assert s.min() >= -1 - 1e-6 and s.max() <= 1e-6


def test_orthogonal_step_is_modrelu_of_W_h_plus_T_x():
    model = make("orthogonal", seed=23)
    rng = np.random.default_rng(24)
    h, x = rng.normal(size=HID), rng.normal(size=IN)
    a = np_(model.A)
    w = scipy.linalg.expm(a - a.T)
    z = w @ h + x @ np_(model.T)
    expected = np.sign(z) * np.maximum(np.abs(z) + np_(model.b), 0)
    got = np_(nnx.jit(lambda m, h, x: m.transition(h, x))(
        model, jnp.asarray(h, jnp.float32), jnp.asarray(x, jnp.float32)))
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


# ------------------------------------------------------------------------ coRNN


@pytest.mark.parametrize("implicit", [False, True])
def test_cornn_matches_imex_discretisation_in_numpy(implicit):
    dt, gamma, eps = 0.05, 3.0, 2.0
    model = make("cornn", seed=25, dt=dt, gamma=gamma, epsilon=eps, implicit_damping=implicit)
    x = inputs(26)
    rng = np.random.default_rng(27)
    y0, z0 = rng.normal(size=(BATCH, HID)), rng.normal(size=(BATCH, HID))
    w = np_(model.W)
    w_y, w_z, v, b = w[:HID], w[HID:], np_(model.V), np_(model.b)
    y, z, ref = y0, z0, []
    for t in range(TIME):
        # y'' = tanh(W y + W~ y' + V u + b) - gamma y - eps y', first order in (y, z = y').
        sigma = np.tanh(y @ w_y + z @ w_z + x[:, t] @ v + b)
        if implicit:  # z_n = z_{n-1} + dt (sigma - gamma y_{n-1} - eps z_n)
            z = (z + dt * (sigma - gamma * y)) / (1 + dt * eps)
        else:  # z_n = z_{n-1} + dt (sigma - gamma y_{n-1} - eps z_{n-1})
            z = z + dt * (sigma - gamma * y - eps * z)
        y = y + dt * z
        ref.append(np.concatenate([y, z], axis=-1))
    h0 = np.concatenate([y0, z0], axis=-1)
    np.testing.assert_allclose(run_states(model, x, h0), np.stack(ref, axis=1), rtol=1e-5, atol=1e-5)


def test_cornn_defaults_are_the_papers_adding_task_values():
    model = make("cornn")
    assert (model.dt, model.gamma, model.epsilon, model.implicit_damping) == (0.06, 66.0, 15.0, False)


@pytest.mark.parametrize(
    "name,options",
    [
        ("rglru", dict(r_max=1.0)),
        ("rglru", dict(c=0.0)),
        ("s6", dict(dt_min=0.2, dt_max=0.1)),
        ("s6", dict(d_state=0)),
        ("s5", dict(dt_min=0.0)),
        ("orthogonal", dict(init="identity")),
        ("cornn", dict(dt=-1.0)),
    ],
)
def test_bad_options_raise_naming_the_architecture(name, options):
    with pytest.raises(ValueError, match=name if name != "orthogonal" else "init"):
        make(name, **options)


# ------------------------------------------------------------------------ flossing, unchanged


@pytest.mark.parametrize("name", ["mingru", "minlstm", "rglru", "s6", "s5", "orthogonal", "cornn"])
def test_flossing_runs_on_the_new_architectures(name):
    from zoo import flossing as F

    cfg = F.FlossingConfig(k=4, rollout=12, warmup=3, lr=1e-2)
    model = make(name, seed=28, hidden_size=4)
    before = jax.tree.map(np.array, nnx.state(model, F.DYNAMICS))
    optimizer = F.make_flossing_optimizer(model, cfg)
    x = jax.random.normal(jax.random.key(0), (5, cfg.rollout, IN))
    losses = np.asarray(F.floss(model, optimizer, x, jax.random.split(jax.random.key(1), 5), cfg))
    assert losses.shape == (5,) and np.isfinite(losses).all()
    if name == "orthogonal":
        # Known answer: while every modReLU unit is active the step Jacobian is the orthogonal
        # W, so all exponents are 0, the flossing target: loss 0, nothing to move.
        assert losses.max() < 1e-10
        return
    moved = jax.tree.map(lambda a, b: not np.allclose(a, b), before, nnx.state(model, F.DYNAMICS))
    assert any(jax.tree.leaves(moved))


def test_s5_lyapunov_spectrum_is_log_of_discrete_eigenvalue_moduli():
    # The transition is x -> Lambda_bar x + B_bar u on [Re x, Im x]: every channel rotates its
    # plane and scales it by |Lambda_bar_j|, so the spectrum is each log|Lambda_bar_j| twice.
    from zoo import flossing as F

    model = make("s5", hidden_size=3, seed=29)
    model.log_step[...] = jnp.log(jnp.asarray([0.05, 0.3, 1.0], jnp.float32))  # distinct moduli
    moduli = np.abs(np_(model.eigenvalues()))
    d = F.lyapunov_spectrum(model.transition, model.initial_state(), jnp.zeros((200, IN)), k=6)
    expected = np.sort(np.repeat(np.log(moduli), 2))[::-1]
    np.testing.assert_allclose(np.asarray(d), expected, rtol=1e-4, atol=1e-5)
