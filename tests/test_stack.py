"""Tests for zoo.architectures.stack: stacks of any recurrence, and parameter budgets.

Known answers: the sequence-parallel forward pass against stepping `transition` one time step
at a time; Lyapunov exponents of a stack of two diagonal linear layers (a block-triangular
system, whose exponents are the logs of the diagonal entries); parameter counts by hand.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import zoo
from zoo.architectures.registry import ARCHITECTURES
from zoo.architectures.stack import Stack, count_params, create_model, hidden_size_for_budget
from zoo.flossing import FlossingConfig, floss, lyapunov_spectrum, make_flossing_optimizer

IN, HID, OUT = 3, 4, 2


class LeakyPlugin(zoo.RecurrentModel):
    """A user's recurrence, defining only `step` (no fused path): `h + a (tanh(h U + u) - h)`."""

    def __init__(self, *, input_size, hidden_size, output_size, rngs):
        self.state_size = hidden_size
        self.U = nnx.Param(jax.random.normal(rngs.params(), (hidden_size, hidden_size)) / 2)
        self.V = nnx.Param(jax.random.normal(rngs.params(), (input_size, hidden_size)))
        self.readout = zoo.Readout(hidden_size, input_size, output_size, skip=False, rngs=rngs)

    def input_drive(self, x):
        return x @ self.V[...]

    def step(self, h, u):
        return h + 0.5 * (jnp.tanh(h @ self.U[...] + u) - h)


class OpaquePlugin(nnx.Module):
    """Only the minimal contract (`__call__`, `state_size`, `transition`): no per-step readout."""

    def __init__(self, *, input_size, hidden_size, output_size, rngs):
        self.state_size = hidden_size
        self.W = nnx.Param(jax.random.normal(rngs.params(), (input_size, output_size)))

    def transition(self, h, x):
        return h

    def __call__(self, x):
        return x @ self.W[...]


@pytest.fixture
def plugins(monkeypatch):
    """The test plugins, registered with the public decorator for one test only.

    The registry is restored afterwards, so tests elsewhere that loop over every registered
    architecture never see these deliberately limited ones.
    """
    monkeypatch.setattr(ARCHITECTURES, "_entries", dict(ARCHITECTURES._entries))
    for name, cls in (
        ("stack_test_leaky", LeakyPlugin),
        ("stack_test_opaque", OpaquePlugin),
        ("stack_test_dtype", DtypePlugin),
    ):
        zoo.register_architecture(name)(cls)


def stepped_outputs(model: Stack, x: jax.Array, h0: jax.Array) -> jax.Array:
    """Outputs from `transition` one time step at a time, read out with `output`."""

    def one(x_seq, h_init):
        def body(h, x_t):
            h = model.transition(h, x_t)
            return h, model.output(h, x_t)

        return jax.lax.scan(body, h_init, x_seq)[1]

    return jax.vmap(one)(x, h0)


@pytest.mark.parametrize(
    "name,block,readout",
    [("rnn", "glu", "linear"), ("lstm", "mlp", "mlp"), ("lru", "none", "mlp"),
     ("s6", "glu", "linear"),  # its output reads C(x_t), not only its state
     ("stack_test_leaky", "glu", "linear")],
)  # fmt: skip
def test_forward_pass_equals_stepping_the_transition(plugins, name, block, readout):
    model = create_model(
        name, input_size=IN, hidden_size=HID, output_size=OUT, rngs=nnx.Rngs(0),
        depth=2, block=block, readout=readout,
    )
    assert isinstance(model, Stack)
    assert model.state_size == 2 * create_model(
        name, input_size=HID, hidden_size=HID, output_size=HID, rngs=nnx.Rngs(0)
    ).state_size
    x = jax.random.normal(jax.random.key(1), (2, 6, IN))
    h0 = 0.3 * jax.random.normal(jax.random.key(2), (2, model.state_size))
    forward = jax.jit(lambda x, h0: (model(x), model(x, h0)))
    stepped = jax.jit(stepped_outputs, static_argnums=0)
    y, y_h0 = forward(x, h0)
    assert y.shape == (2, 6, OUT)
    zeros = jnp.broadcast_to(model.initial_state(), h0.shape)
    np.testing.assert_allclose(y, stepped(model, x, zeros), atol=2e-5)
    np.testing.assert_allclose(y_h0, stepped(model, x, h0), atol=2e-5)


def test_the_default_setting_is_the_plain_registered_model():
    plain = create_model("gru", input_size=IN, hidden_size=HID, output_size=OUT, rngs=nnx.Rngs(5))
    reference = zoo.create_architecture(
        "gru", input_size=IN, hidden_size=HID, output_size=OUT, rngs=nnx.Rngs(5)
    )
    assert type(plain) is type(reference)
    for a, b in zip(jax.tree.leaves(nnx.state(plain)), jax.tree.leaves(nnx.state(reference))):
        np.testing.assert_array_equal(a, b)


def test_a_module_without_a_per_step_readout_cannot_be_stacked(plugins):
    plain = create_model(
        "stack_test_opaque", input_size=IN, hidden_size=HID, output_size=OUT, rngs=nnx.Rngs(0)
    )
    assert isinstance(plain, OpaquePlugin)
    with pytest.raises(ValueError, match="'stack_test_opaque' .* cannot be stacked: it has no o"):
        create_model(
            "stack_test_opaque", input_size=IN, hidden_size=HID, output_size=OUT,
            rngs=nnx.Rngs(0), depth=2,
        )


class _Readout(nnx.Module):
    """A readout `features -> outputs` that ignores the inputs (not zoo.Readout: duck typing)."""

    def __init__(self, n, o, *, rngs, param_dtype):
        self.proj = nnx.Linear(n, o, rngs=rngs, param_dtype=param_dtype)

    def __call__(self, features, inputs):
        return self.proj(features)


class DtypePlugin(nnx.Module):
    """A plugin with `param_dtype` and its own readout: `h_t = tanh(h W + x V)`."""

    def __init__(self, *, input_size, hidden_size, output_size, rngs, param_dtype=jnp.float32):
        self.state_size = hidden_size
        n = hidden_size
        self.W = nnx.Param(jax.random.normal(rngs.params(), (n, n), param_dtype) / 2)
        self.V = nnx.Param(jax.random.normal(rngs.params(), (input_size, n), param_dtype))
        self.readout = _Readout(hidden_size, output_size, rngs=rngs, param_dtype=param_dtype)

    def features(self, h):
        return h

    def transition(self, h, x):
        return jnp.tanh(h @ self.W[...] + x @ self.V[...])

    def __call__(self, x, h0=None):
        h0 = jnp.zeros((x.shape[0], self.state_size), x.dtype) if h0 is None else h0
        step = lambda h, x_t: (self.transition(h, x_t),) * 2  # noqa: E731
        hs = jnp.swapaxes(jax.lax.scan(step, h0, jnp.swapaxes(x, 0, 1))[1], 0, 1)
        return self.readout(self.features(hs), x)


def test_param_dtype_reaches_the_whole_stack_under_x64(plugins):
    with jax.enable_x64(True):
        model = create_model(
            "stack_test_dtype", input_size=IN, hidden_size=HID, output_size=OUT, rngs=nnx.Rngs(0),
            depth=2, block="glu", readout="mlp", param_dtype=jnp.float64,
        )
        dtypes = {leaf.dtype for leaf in jax.tree.leaves(nnx.state(model, nnx.Param))}
        assert dtypes == {jnp.dtype("float64")}
        x = jax.random.normal(jax.random.key(1), (2, 5, IN), jnp.float64)
        y = jax.jit(lambda x: model(x))(x)
        assert y.dtype == jnp.float64
        zeros = jnp.zeros((2, model.state_size), jnp.float64)
        stepped = jax.jit(stepped_outputs, static_argnums=0)(model, x, zeros)
        np.testing.assert_allclose(y, stepped, atol=1e-12)


@pytest.mark.parametrize(
    "kwargs,match",
    [({"block": "gru"}, "unknown block 'gru'; allowed: 'glu', 'mlp', 'none'"),
     ({"readout": "conv"}, "unknown readout 'conv'"),
     ({"depth": 0}, "depth must be a positive integer"),
     ({"depth": 1.5}, "depth must be a positive integer")],
)  # fmt: skip
def test_bad_stack_options(kwargs, match):
    with pytest.raises(ValueError, match=match):
        create_model(
            "rnn", input_size=IN, hidden_size=HID, output_size=OUT, rngs=nnx.Rngs(0), **kwargs
        )


def test_the_first_recurrence_sees_the_input_magnitude():
    # A scalar input must reach the first recurrence as a number, not as its sign: a
    # LayerNorm of the encoded input (pre-norm) maps 1, 2 and 3 to the same vector. One
    # step of the linear layer from the zero state is affine in the input, so the state's
    # increments from x = 1 -> 2 -> 3 are equal and not zero.
    model = create_model(
        "linear", input_size=1, hidden_size=3, output_size=1, rngs=nnx.Rngs(0), readout="mlp"
    )
    h0 = jnp.zeros(model.state_size)
    states = [model.transition(h0, jnp.array([x])) for x in (1.0, 2.0, 3.0)]
    step = np.asarray(states[1] - states[0])
    assert np.abs(step).max() > 1e-3
    np.testing.assert_allclose(states[2] - states[1], step, rtol=1e-5, atol=1e-6)


def test_lyapunov_spectrum_of_two_diagonal_linear_layers():
    # Layer 1 never sees layer 2, so the step Jacobian is block lower-triangular with
    # constant diagonal blocks A1, A2 (the LayerNorm only enters the off-diagonal block):
    # the exponents are log|diag A1| and log|diag A2|, and their sum is exactly
    # log|det A1 A2| per step, whatever the number of steps.
    model = create_model(
        "linear", input_size=1, hidden_size=3, output_size=1, rngs=nnx.Rngs(0), depth=2
    )
    a1, a2 = np.array([0.9, 0.5, 0.3]), np.array([-0.8, 0.6, 0.2])
    model.layers[0].A[...] = jnp.diag(jnp.asarray(a1))
    model.layers[1].A[...] = jnp.diag(jnp.asarray(a2))
    x = jax.random.normal(jax.random.key(2), (400, 1))
    spectrum = jax.jit(
        lambda xs: lyapunov_spectrum(
            model.transition, model.initial_state(), xs, k=6, warmup=50, key=jax.random.key(3)
        )
    )(x)
    expected = np.sort(np.log(np.abs(np.concatenate([a1, a2]))))[::-1]
    np.testing.assert_allclose(spectrum, expected, atol=3e-3)
    assert float(jnp.sum(spectrum)) == pytest.approx(expected.sum(), abs=1e-5)


# ------------------------------------------------------------------------------ budgets


def rnn_count(n, i, o):
    """Tanh RNN: W n^2, V i n, b n, readout n o + o."""
    return n * n + i * n + n + n * o + o


def abstract(name, **kwargs):
    """A model built with shapes only (no random draws, no compilation): fast to count."""
    return nnx.eval_shape(lambda: create_model(name, rngs=nnx.Rngs(0), **kwargs))


def test_count_params_by_hand():
    for n in (1, 4, 7):
        model = abstract("rnn", input_size=IN, hidden_size=n, output_size=OUT)
        assert count_params(model) == rnn_count(n, IN, OUT)
    # LRU, n = 4: nu_log, theta_log, gamma_log (learned by default) n each; B_re, B_im i n
    # each; readout 2n o + o; skip i o.
    lru = abstract("lru", input_size=IN, hidden_size=4, output_size=OUT)
    assert count_params(lru) == 3 * 4 + 2 * IN * 4 + (2 * 4 * OUT + OUT) + IN * OUT
    # Stack of two rnn layers, width w: encoder i w + w; per block LayerNorm 2w, rnn(w, w, w),
    # GLU 2 (w^2 + w); linear readout w o + o.
    w = 5
    stack = abstract("rnn", input_size=IN, hidden_size=w, output_size=OUT, depth=2, block="glu")
    per_block = 2 * w + rnn_count(w, w, w) + 2 * (w * w + w)
    assert count_params(stack) == IN * w + w + 2 * per_block + w * OUT + OUT
    # MLP block (4w hidden) and MLP readout (one hidden layer of width w).
    mlp = abstract(
        "rnn", input_size=IN, hidden_size=w, output_size=OUT, depth=1, block="mlp", readout="mlp"
    )
    mlp_block = (w * 4 * w + 4 * w) + (4 * w * w + w)
    readout = (w * w + w) + (w * OUT + OUT)
    assert count_params(mlp) == IN * w + w + 2 * w + rnn_count(w, w, w) + mlp_block + readout
    # A real model counts the same as its abstract build.
    real = create_model(
        "rnn", input_size=IN, hidden_size=w, output_size=OUT, rngs=nnx.Rngs(0), depth=2, block="glu"
    )
    assert count_params(real) == count_params(stack)


def test_count_params_counts_complex_entries_twice():
    class Complex(nnx.Module):
        def __init__(self):
            self.z = nnx.Param(jnp.zeros((3, 2), jnp.complex64))
            self.r = nnx.Param(jnp.zeros((4,)))
            self.not_a_param = nnx.BatchStat(jnp.zeros((100,)))

    assert count_params(Complex()) == 2 * 6 + 4


def test_hidden_size_for_budget_picks_the_closest_count():
    # rnn with one input and output: n^2 + 3n + 1; 69 -> 4969, 70 -> 5111 for a budget of 5000.
    assert hidden_size_for_budget("rnn", 5000, input_size=1, output_size=1) == 69
    assert hidden_size_for_budget("rnn", 5060, input_size=1, output_size=1) == 70
    kwargs = dict(input_size=1, output_size=1, depth=2, block="glu")
    n = hidden_size_for_budget("lstm", 20000, **kwargs)
    error = {
        m: abs(count_params(abstract("lstm", hidden_size=m, **kwargs)) - 20000)
        for m in (n - 1, n, n + 1)
    }
    assert error[n] <= 2000
    assert error[n] <= min(error[n - 1], error[n + 1])  # no neighbour is closer


def test_hidden_size_for_budget_reports_unreachable_budgets():
    # rnn 1 -> 1: hidden 1 has 5 parameters, hidden 2 has 11; 8 is 37.5% from both.
    nearest = r"nearest: 5 \(hidden_size 1\), 11 \(hidden_size 2\)"
    with pytest.raises(ValueError, match=r"within 10% of param_budget 8; " + nearest):
        hidden_size_for_budget("rnn", 8, input_size=1, output_size=1)
    with pytest.raises(ValueError, match="param_budget must be a positive integer"):
        hidden_size_for_budget("rnn", 0, input_size=1, output_size=1)


@pytest.mark.slow
def test_flossing_runs_on_a_stack():
    # zoo.flossing needs only state_size and transition: flossing moves the recurrences, the
    # encoder and the norms, and leaves the top readout alone.
    model = create_model(
        "rnn", input_size=1, hidden_size=4, output_size=1, rngs=nnx.Rngs(0), depth=2, block="glu"
    )
    config = FlossingConfig(k=4, rollout=20, warmup=5)
    optimizer = make_flossing_optimizer(model, config)
    before = jax.tree.map(jnp.copy, nnx.state(model, nnx.Param))
    bits = jax.random.bernoulli(jax.random.key(0), 0.5, (3, 20, 1)).astype(jnp.float32)
    losses = floss(model, optimizer, bits, jax.random.split(jax.random.key(1), 3), config)
    assert np.isfinite(np.asarray(losses)).all()
    after = nnx.state(model, nnx.Param)

    def moved(*path):
        old, new = before, after
        for key in path:
            old, new = old[key], new[key]
        return not np.array_equal(old, new)

    assert moved("encoder", "kernel") and moved("layers", 1, "W") and moved("norms", 0, "scale")
    assert not moved("readout", "kernel")


def test_budget_for_an_architecture_initialised_on_the_host():
    # `linear` draws A through a numpy eigendecomposition, which eval_shape cannot trace.
    n = hidden_size_for_budget("linear", 400, input_size=IN, output_size=OUT)
    model = create_model("linear", input_size=IN, hidden_size=n, output_size=OUT, rngs=nnx.Rngs(0))
    assert abs(count_params(model) - 400) <= 40


@pytest.mark.parametrize("arch", ["linear", "s5"])
def test_host_initialised_counts_match_real_builds(arch):
    # linear and s5 initialise on the host (no eval_shape): their counts come from a verified
    # quadratic in the hidden size; every size must give the real build's count.
    from zoo.architectures.stack import _abstract_count, _real_count

    kwargs = dict(input_size=3, output_size=5, readout="mlp", depth=2, block="glu")
    for n in (1, 5, 9, 16):
        assert _abstract_count(arch, n, kwargs) == _real_count(arch, n, kwargs)


@pytest.mark.parametrize("kind", ["quadratic", "linear", "piecewise"])
def test_the_quadratic_guess_brackets_the_budget_exactly_or_declines(kind):
    # The budget search's shortcut against a scan of every size: (n, n + 1) must be the pair around
    # the smallest size that reaches the budget. A count with S6's ceil(n / 16) rank is no
    # quadratic past n = 16, so there the guess must decline (None) and the caller bisects.
    from zoo.architectures.stack import _guess_bracket

    count = {
        "quadratic": lambda n: n * n + 3 * n + 1,
        "linear": lambda n: 7 * n + 2,
        "piecewise": lambda n: 4 * n * n + 16 * -(-n // 16) * n + 5,
    }[kind]
    declined = 0
    for budget in range(40, 20000, 53):
        smallest = next(n for n in range(1, 10**4) if count(n) >= budget)
        got = _guess_bracket(count, budget, 1 << 16)
        assert got in (None, (smallest - 1, smallest)), budget
        declined += got is None
    assert declined == 0 if kind != "piecewise" else declined > 0
