"""Gradients through every built-in architecture against central finite differences in float64.

Every architecture's sequence pass may use its own gradient: the hand-made VJPs of
`zoo.architectures.fused` (rnn, lstm, gru, linear) and of the diagonal loop
(`lru`, `complex_diagonal`), the parallel associative scan that accelerators take (forced
here on the CPU with `parallel_scan = True`), or autodiff of a scan. Each is checked in
float64 against `(L(z + eps v) - L(z - eps v)) / (2 eps)` along random directions `v`,
separately in the parameters, the inputs and the initial state, to a relative error
below 1e-6. In float32, the gradients of the default path equal `jax.grad` of the plain
`scan_states` reference.

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
from zoo.architectures.registry import ARCHITECTURES

# The architectures the package itself registers (a test module may register its own).
BUILTIN = [
    name
    for name in zoo.list_architectures()
    if getattr(ARCHITECTURES.get(name), "__module__", "").startswith("zoo.architectures")
]
# Linear recurrences with a parallel associative scan (the accelerator path).
PARALLEL = [name for name in BUILTIN if name in {"lru", "complex_diagonal", "mingru", "minlstm", "rglru", "s6", "s5"}]

IN, HID, OUT, BATCH, TIME = 2, 4, 2, 2, 12
EPS = 1e-5
REL_TOL = 1e-6


@pytest.fixture(autouse=True, scope="module")
def x64():
    before = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", True)
    yield
    jax.config.update("jax_enable_x64", before)


def make(name, dtype, seed=0, **attrs):
    model = zoo.create_architecture(
        name, input_size=IN, hidden_size=HID, output_size=OUT, rngs=nnx.Rngs(seed), param_dtype=dtype
    )
    for key, value in attrs.items():
        setattr(model, key, value)
    return model


def problem(model, dtype, seed=1):
    """A scalar loss `L(params, x, h0)` (nonlinear in the outputs), and a point to evaluate it at."""
    rng = np.random.default_rng(seed)
    x = jnp.asarray(rng.normal(size=(BATCH, TIME, IN)), dtype)
    h0 = jnp.asarray(0.5 * rng.normal(size=(BATCH, model.state_size)), dtype)
    w = jnp.asarray(rng.normal(size=(BATCH, TIME, OUT)), dtype)
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)

    def loss(params, x, h0, plain=False):
        m = nnx.merge(graphdef, params, rest)
        if plain:  # the reference: autodiff of a plain lax.scan of `step`
            y = m.output(m.scan_states(x, h0), x)
        else:
            y = m(x, h0)
        return jnp.sum(w * jnp.sin(y))

    return loss, params, x, h0


def assert_matches_finite_differences(model, with_h0=True):
    loss, params, x, h0 = problem(model, jnp.float64)
    theta, unravel = ravel_pytree(params)
    point = {"params": theta, "x": x, "h0": h0}

    def f(p):
        return loss(unravel(p["params"]), p["x"], p["h0"] if with_h0 else None)

    # One compilation serves the gradient and every evaluation of L (XLA compile time dominates).
    value_and_grad = jax.jit(jax.value_and_grad(f))
    grad = value_and_grad(point)[1]
    rng = np.random.default_rng(2)
    for part in ("params", "x", "h0") if with_h0 else ("params", "x"):
        for _ in range(2):
            v = {k: jnp.zeros_like(a) for k, a in point.items()}
            d = rng.normal(size=point[part].shape)
            v[part] = jnp.asarray(d / np.linalg.norm(d))
            plus = jax.tree.map(lambda a, b: a + EPS * b, point, v)
            minus = jax.tree.map(lambda a, b: a - EPS * b, point, v)
            fd = (float(value_and_grad(plus)[0]) - float(value_and_grad(minus)[0])) / (2 * EPS)
            analytic = float(jnp.vdot(grad[part], v[part]))
            assert abs(fd - analytic) <= REL_TOL * abs(analytic), (part, fd, analytic)


@pytest.mark.parametrize("name", BUILTIN)
def test_gradient_matches_finite_differences_float64(name):
    model = make(name, jnp.float64)
    assert model.state_dtype() == np.float64
    assert_matches_finite_differences(model)


@pytest.mark.parametrize("name", PARALLEL)
def test_parallel_scan_gradient_matches_finite_differences_float64(name):
    # The accelerator path (associative scan, h0 injected into the first step), forced on CPU.
    assert_matches_finite_differences(make(name, jnp.float64, parallel_scan=True))


@pytest.mark.parametrize("name", [n for n in ("mingru", "minlstm") if n in BUILTIN])
def test_log_space_scan_gradient_matches_finite_differences_float64(name):
    # From the zero state the parallel path is Feng et al.'s log-space scan.
    assert_matches_finite_differences(make(name, jnp.float64, parallel_scan=True), with_h0=False)


@pytest.mark.parametrize("name", BUILTIN)
def test_gradient_equals_autodiff_of_plain_scan_float32(name):
    model = make(name, jnp.float32, seed=3)
    loss, params, x, h0 = problem(model, jnp.float32, seed=4)
    grads = jax.jit(jax.grad(loss, argnums=(0, 1, 2)))(params, x, h0)
    plain = jax.jit(jax.grad(lambda *a: loss(*a, plain=True), argnums=(0, 1, 2)))(params, x, h0)
    got, _ = ravel_pytree(grads)
    want, _ = ravel_pytree(plain)
    assert got.dtype == jnp.float32
    np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-4, atol=1e-5 * float(jnp.abs(want).max()))


@pytest.mark.parametrize("name", BUILTIN)
def test_float64_parameters_states_and_outputs(name):
    model = make(name, jnp.float64)
    dtypes = {a.dtype for a in jax.tree.leaves(nnx.state(model, nnx.Param))}
    assert dtypes == {jnp.dtype(jnp.float64)}
    x = jnp.ones((BATCH, TIME, IN), jnp.float32)  # float32 inputs are cast to the model's dtype
    # Traced, not run: the dtypes are those of the computation, without compiling it.
    assert jax.eval_shape(model, x).dtype == jnp.float64
    assert jax.eval_shape(model.states, x).dtype == jnp.float64
    assert model.initial_state().dtype == jnp.float64
    assert jax.eval_shape(model.transition, model.initial_state(), x[0, 0]).dtype == jnp.float64


@pytest.mark.parametrize("bad", ["int32", "complex64", "nonsense"])
def test_bad_param_dtype_is_refused(bad):
    with pytest.raises(ValueError, match="param_dtype"):
        make("rnn", bad)
