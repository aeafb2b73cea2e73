"""The hand-written fast paths of issue 19 against independent references.

- `zoo.architectures.lstm_loop.lstm_states` (the LSTM's loop with its own backward):
  values and gradients against `jax.grad` of a plain `lax.scan` of the textbook cell
  written out here, and against central finite differences in float64, in the recurrent
  kernel, the drive (inputs and bias) and both halves of `h0 = [h, c]`; and the whole
  `lstm` model (every parameter, the inputs, `h0`) against its own plain-scan reference.
- `zoo.architectures.selective_scan.selective_scan` (S6's loop that never forms the expanded
  states, with its own backward): values and gradients in every input against `jax.grad` of
  S6's recurrence written out here as a plain `lax.scan`, and against float64 finite
  differences; the `s6` model's own path against its states-then-output reference.
- `zoo.flossing.qr_log_growth` (the per-step QR of a flossing step with a hand-written
  VJP): against `jax.grad` through `jnp.linalg.qr` and float64 finite differences, alone
  and inside the gradient of a Lyapunov spectrum.

float64 is switched on for this module only (a fixture restores the flag afterwards).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from jax.flatten_util import ravel_pytree

import zoo
from zoo import flossing
from zoo.architectures.lstm_loop import lstm_states
from zoo.architectures.selective_scan import selective_scan

N, BATCH, TIME = 5, 3, 9


@pytest.fixture(autouse=True, scope="module")
def x64():
    before = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", True)
    yield
    jax.config.update("jax_enable_x64", before)


def textbook_states(kernel, h0, u):
    """`[h_t, c_t]` by a plain lax.scan of the LSTM cell (gates i, f, g, o), autodiffed by JAX."""
    n = kernel.shape[0]

    def cell(carry, u_t):
        h, c = carry
        z = h @ kernel + u_t
        i, f, o = (1 / (1 + jnp.exp(-z[:, k * n : (k + 1) * n])) for k in (0, 1, 3))
        g = jnp.tanh(z[:, 2 * n : 3 * n])
        c = f * c + i * g
        h = o * jnp.tanh(c)
        return (h, c), jnp.concatenate([h, c], axis=-1)

    return jax.lax.scan(cell, (h0[:, :n], h0[:, n:]), u)[1]


def point(dtype, seed=0):
    rng = np.random.default_rng(seed)
    kernel = jnp.asarray(rng.normal(size=(N, 4 * N)) / np.sqrt(N), dtype)
    h0 = jnp.asarray(0.5 * rng.normal(size=(BATCH, 2 * N)), dtype)
    u = jnp.asarray(rng.normal(size=(TIME, BATCH, 4 * N)), dtype)
    # A loss that weighs every h_t and c_t differently, so every cotangent path counts.
    w = jnp.asarray(rng.normal(size=(TIME, BATCH, 2 * N)), dtype)
    return (kernel, h0, u), w


def loss_of(states_fn, w):
    return lambda kernel, h0, u: jnp.sum(w * jnp.sin(states_fn(kernel, h0, u)))


@pytest.mark.parametrize("dtype, rtol", [(jnp.float64, 1e-12), (jnp.float32, 2e-5)])
def test_lstm_loop_matches_grad_of_plain_scan(dtype, rtol):
    args, w = point(dtype)
    np.testing.assert_allclose(lstm_states(*args), textbook_states(*args), rtol=rtol, atol=rtol)
    ours = jax.jit(jax.grad(loss_of(lstm_states, w), argnums=(0, 1, 2)))(*args)
    ref = jax.jit(jax.grad(loss_of(textbook_states, w), argnums=(0, 1, 2)))(*args)
    for name, a, b in zip(("kernel", "h0", "u"), ours, ref):
        assert a.dtype == dtype, name
        scale = float(jnp.max(jnp.abs(b)))
        np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol * scale, err_msg=name)


def assert_directional_derivatives(loss, args, grads, directions, eps=1e-6):
    """Central finite differences of `loss` along each `(argument index, direction)` against
    the gradient's projection on it (float64)."""
    for which, d in directions:
        d = jnp.asarray(d / np.linalg.norm(d))
        plus, minus = list(args), list(args)
        plus[which] = args[which] + eps * d
        minus[which] = args[which] - eps * d
        fd = (float(loss(*plus)) - float(loss(*minus))) / (2 * eps)
        analytic = float(jnp.vdot(grads[which], d))
        assert abs(fd - analytic) <= 1e-7 * max(abs(analytic), 1e-3), (which, fd, analytic)


def test_lstm_loop_gradient_matches_finite_differences_float64():
    (kernel, h0, u), w = point(jnp.float64, seed=1)
    loss = jax.jit(loss_of(lstm_states, w))
    grads = jax.jit(jax.grad(loss_of(lstm_states, w), argnums=(0, 1, 2)))(kernel, h0, u)
    rng = np.random.default_rng(3)
    # The cell state gets its own direction: a wrong dc_0 could hide in a joint one.
    c_only = np.zeros(h0.shape)
    c_only[:, N:] = rng.normal(size=(BATCH, N))
    directions = [(0, rng.normal(size=kernel.shape)), (1, rng.normal(size=h0.shape)), (1, c_only),
                  (2, rng.normal(size=u.shape))]
    assert_directional_derivatives(loss, [kernel, h0, u], grads, directions)


def test_lstm_loop_of_one_step():
    args, w = point(jnp.float64, seed=2)
    args = (args[0], args[1], args[2][:1])
    ours = jax.jit(jax.grad(loss_of(lstm_states, w[:1]), argnums=(0, 1, 2)))(*args)
    ref = jax.jit(jax.grad(loss_of(textbook_states, w[:1]), argnums=(0, 1, 2)))(*args)
    for a, b in zip(ours, ref):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


def assert_model_matches_its_plain_scan(model, seed):
    """`model(x, h0)` (its fast path) against `output(scan_states(x, h0))` in float64: the loss,
    and the gradient in every parameter, the inputs and `h0`."""
    rng = np.random.default_rng(seed)
    x = jnp.asarray(rng.normal(size=(BATCH, TIME, 2)))
    h0 = jnp.asarray(0.5 * rng.normal(size=(BATCH, model.state_size)))
    w = jnp.asarray(rng.normal(size=(BATCH, TIME, 3)))
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)

    def loss(params, x, h0, plain):
        m = nnx.merge(graphdef, params, rest)
        y = m.output(m.scan_states(x, h0), x) if plain else m(x, h0)
        return jnp.sum(w * jnp.sin(y))

    assert abs(float(loss(params, x, h0, False)) - float(loss(params, x, h0, True))) < 1e-12
    grad = jax.jit(jax.grad(loss, argnums=(0, 1, 2)), static_argnums=3)
    ours, ref = grad(params, x, h0, False), grad(params, x, h0, True)
    np.testing.assert_allclose(ravel_pytree(ours)[0], ravel_pytree(ref)[0], rtol=1e-11, atol=1e-12)
    # Every parameter array gets a gradient (none is silently cut off by the custom VJP).
    for path, g in jax.tree_util.tree_leaves_with_path(ours[0]):
        assert float(jnp.max(jnp.abs(g))) > 0, path


def test_lstm_model_takes_the_loop_and_matches_its_plain_scan_float64():
    model = zoo.create_architecture("lstm", input_size=2, hidden_size=N, output_size=3,
                                    rngs=nnx.Rngs(0), param_dtype=jnp.float64)
    assert model.recurrence().loop is not None
    assert_model_matches_its_plain_scan(model, seed=4)


# ------------------------------------------------------------- S6's selective scan


def textbook_selective_outputs(delta, u, b, c, a, h0):
    """S6 written out (Gu & Dao 2023, Algorithm 2): `h_t = exp(Delta_t A) h_{t-1} + Delta_t u_t B_t`,
    `y_t = h_t C_t`, a plain lax.scan autodiffed by JAX."""
    def step(h, inputs):
        delta_t, u_t, b_t, c_t = inputs
        h = jnp.exp(delta_t[:, :, None] * a[None]) * h + (delta_t * u_t)[:, :, None] * b_t[:, None, :]
        return h, jnp.einsum("bdn,bn->bd", h, c_t)

    return jax.lax.scan(step, h0, (delta, u, b, c))[1]


def selective_point(dtype, seed=0, width=4, d_state=3):
    rng = np.random.default_rng(seed)
    normal = lambda *shape: jnp.asarray(rng.normal(size=shape), dtype)  # noqa: E731
    delta = jax.nn.softplus(normal(TIME, BATCH, width))
    a = -jnp.asarray(rng.uniform(0.5, 3.0, size=(width, d_state)), dtype)
    args = (delta, normal(TIME, BATCH, width), normal(TIME, BATCH, d_state), normal(TIME, BATCH, d_state),
            a, 0.5 * normal(BATCH, width, d_state))
    return args, normal(TIME, BATCH, width)


def selective_loss(fn, w):
    return lambda *args: jnp.sum(w * jnp.sin(fn(*args)))


@pytest.mark.parametrize("dtype, rtol", [(jnp.float64, 1e-12), (jnp.float32, 2e-5)])
def test_selective_scan_matches_grad_of_plain_scan(dtype, rtol):
    args, w = selective_point(dtype)
    np.testing.assert_allclose(selective_scan(*args), textbook_selective_outputs(*args), rtol=rtol, atol=rtol)
    which = tuple(range(6))
    ours = jax.jit(jax.grad(selective_loss(selective_scan, w), argnums=which))(*args)
    ref = jax.jit(jax.grad(selective_loss(textbook_selective_outputs, w), argnums=which))(*args)
    for name, g, r in zip(("delta", "u", "B", "C", "A", "h0"), ours, ref):
        assert g.dtype == dtype and g.shape == r.shape, name
        np.testing.assert_allclose(g, r, rtol=rtol, atol=rtol * float(jnp.max(jnp.abs(r))), err_msg=name)


def test_selective_scan_gradient_matches_finite_differences_float64():
    args, w = selective_point(jnp.float64, seed=1)
    loss = jax.jit(selective_loss(selective_scan, w))
    grads = jax.jit(jax.grad(selective_loss(selective_scan, w), argnums=tuple(range(6))))(*args)
    rng = np.random.default_rng(5)
    directions = [(which, rng.normal(size=a.shape)) for which, a in enumerate(args)]  # one per input
    assert_directional_derivatives(loss, list(args), grads, directions)


def test_s6_model_takes_the_selective_scan_and_matches_states_then_output_float64():
    model = zoo.create_architecture("s6", input_size=2, hidden_size=N, output_size=3, d_state=4,
                                    rngs=nnx.Rngs(0), param_dtype=jnp.float64)
    assert not model.use_parallel_scan() and model.loop_vjp  # the CPU path under test
    assert_model_matches_its_plain_scan(model, seed=6)


# ----------------------------------------------------------------- flossing's QR


def autodiff_qr_log_growth(a):
    """The reference: JAX's own QR and its differentiation rule."""
    q, r = jnp.linalg.qr(a)
    return q, jnp.log(jnp.abs(jnp.diagonal(r)))


def qr_loss(qr, wq, wg):
    # Uses both outputs nonlinearly; sin(Q) is not invariant to Q's column signs, but the
    # signs are the same function of `a` on both sides (LAPACK's Householder QR).
    return lambda a: jnp.sum(wq * jnp.sin(qr(a)[0])) + jnp.sum(wg * qr(a)[1] ** 2)


@pytest.mark.parametrize("n, k", [(6, 6), (7, 3), (5, 1)])
def test_qr_log_growth_gradient_matches_autodiff_and_finite_differences(n, k):
    rng = np.random.default_rng(n * 10 + k)
    a = jnp.asarray(rng.normal(size=(n, k)))
    wq, wg = jnp.asarray(rng.normal(size=(n, k))), jnp.asarray(rng.normal(size=k))
    q, growth = flossing.qr_log_growth(a)
    q_ref, growth_ref = autodiff_qr_log_growth(a)
    np.testing.assert_allclose(q, q_ref, rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(growth, growth_ref, rtol=1e-13, atol=1e-13)
    ours = jax.grad(qr_loss(flossing.qr_log_growth, wq, wg))(a)
    ref = jax.grad(qr_loss(autodiff_qr_log_growth, wq, wg))(a)
    np.testing.assert_allclose(ours, ref, rtol=1e-11, atol=1e-12)
    loss = qr_loss(flossing.qr_log_growth, wq, wg)
    eps = 1e-6
    for _ in range(2):
        d = jnp.asarray(rng.normal(size=a.shape))
        d = d / jnp.linalg.norm(d)
        fd = (float(loss(a + eps * d)) - float(loss(a - eps * d))) / (2 * eps)
        analytic = float(jnp.vdot(ours, d))
        assert abs(fd - analytic) <= 1e-7 * max(abs(analytic), 1e-3), (fd, analytic)


@pytest.mark.parametrize("k", [4, 2])
def test_spectrum_gradient_with_the_written_qr_rule_matches_autodiff(monkeypatch, k):
    # The whole flossing objective of a tanh RNN (4 units, QR every step, warm-up), in the
    # recurrent weights: hand-written QR VJP against JAX's QR rule, float64.
    rng = np.random.default_rng(5)
    w0 = jnp.asarray(1.5 * rng.normal(size=(4, 4)) / 2)
    xs = jnp.asarray(rng.normal(size=(30, 4)))

    def loss(w):
        lam = flossing.lyapunov_spectrum(lambda h, x: jnp.tanh(w @ h + x), jnp.full(4, 0.1), xs,
                                          k=k, warmup=5, key=jax.random.key(0))
        return flossing.flossing_loss(lam)

    ours = jax.grad(loss)(w0)
    monkeypatch.setattr(flossing, "qr_log_growth", autodiff_qr_log_growth)
    ref = jax.grad(loss)(w0)
    assert float(jnp.max(jnp.abs(ref))) > 1e-3
    np.testing.assert_allclose(ours, ref, rtol=1e-10, atol=1e-12)


def test_lstm_loop_and_qr_rule_under_vmap():
    # Vectorised run groups (issue 19 item 1) vmap training and flossing over seeds: each
    # member's gradient must equal its own, unvmapped one.
    (kernel, h0, u), w = point(jnp.float64, seed=6)
    kernels = jnp.stack([kernel, 0.5 * kernel])
    grad = jax.jit(jax.grad(loss_of(lstm_states, w), argnums=(0, 1, 2)))
    batched = jax.jit(jax.vmap(grad, in_axes=(0, None, None)))(kernels, h0, u)
    for i in range(2):
        for a, b in zip(batched, grad(kernels[i], h0, u)):
            np.testing.assert_allclose(a[i], b, rtol=1e-12, atol=1e-12)
    rng = np.random.default_rng(7)
    a = jnp.asarray(rng.normal(size=(2, 5, 3)))
    wq, wg = jnp.asarray(rng.normal(size=(5, 3))), jnp.asarray(rng.normal(size=3))
    qr_grad = jax.grad(qr_loss(flossing.qr_log_growth, wq, wg))
    ref_grad = jax.grad(qr_loss(autodiff_qr_log_growth, wq, wg))
    np.testing.assert_allclose(jax.vmap(qr_grad)(a), jnp.stack([ref_grad(a[0]), ref_grad(a[1])]),
                               rtol=1e-11, atol=1e-12)
