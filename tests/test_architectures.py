"""Tests for the architecture zoo against known answers (numpy recomputations, not the code itself).

Every reference value here is recomputed from the model's parameters with plain numpy in
float64 (explicit loops, matrix powers, textbook cell equations), so a test fails when the
model's mathematics is wrong, not merely when it changes.
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

import zoo
from zoo.architectures.registry import ARCHITECTURES

BUILTIN = ("rnn", "lstm", "gru", "lru", "complex_diagonal", "linear")
NEW = ("mingru", "minlstm", "rglru", "s6", "s5", "orthogonal", "cornn")  # issue 17
# The real dimension of one example's state, per architecture, for hidden size n.
STATE_SIZE = {
    **dict.fromkeys(("lstm", "lru", "complex_diagonal", "s5", "cornn"), lambda n: 2 * n),
    "s6": lambda n: 16 * n,  # d_state = 16 per channel
}

# Eager JAX compiles every op once per shape, and on a 2-core CPU that compile time dominates this
# file. Most tests therefore share one model size and one input shape (cached kernels).
IN, HID, OUT = 2, 6, 2
BATCH, TIME = 3, 20
LARGE = (1, 128, 1)  # a second size (input, hidden, output), also used for the weight-scale test


# ---------------------------------------------------------------------------------------------
# A user architecture registered from this module (exercises the decorator end to end).
# ---------------------------------------------------------------------------------------------


@zoo.register_architecture("my_test_arch")
class LeakyTanh(zoo.RecurrentModel):
    """`h_t = (1 - a) h_{t-1} + a tanh(U h_{t-1} + V x_t)`: a small user-defined recurrence."""

    def __init__(self, *, input_size, hidden_size, output_size, rngs, leak: float = 0.5):
        self.state_size = hidden_size
        self.leak = leak
        scale = 1 / math.sqrt(hidden_size)
        self.U = nnx.Param(scale * jax.random.normal(rngs.params(), (hidden_size, hidden_size)))
        self.V = nnx.Param(jax.random.normal(rngs.params(), (input_size, hidden_size)))
        self.readout = zoo.Readout(hidden_size, input_size, output_size, skip=False, rngs=rngs)

    def input_drive(self, x):
        return x @ self.V[...]

    def step(self, h, u):
        return (1 - self.leak) * h + self.leak * jnp.tanh(h @ self.U[...] + u)


# Evaluated at collection time, after the registration above: every registered architecture.
REGISTERED = zoo.list_architectures()


def make(name, *, input_size=IN, hidden_size=HID, output_size=OUT, seed=0, **options):
    return zoo.create_architecture(
        name,
        input_size=input_size,
        hidden_size=hidden_size,
        output_size=output_size,
        rngs=nnx.Rngs(seed),
        **options,
    )


@functools.partial(jax.jit, static_argnums=(0, 2))
def _apply(graphdef, state, fn, *args):
    return fn(nnx.merge(graphdef, state), *args)


def jitted(fn, model, *args):
    """`fn(model, *args)` under `jax.jit`, cached by the model's structure and the input shapes.

    Eager calls retrace and recompile the `lax.scan` inside `states` on every call (its body is
    a fresh closure each time), and XLA compilation dominates this file on a 2-core CPU; a jit
    keyed on the graphdef compiles once per architecture and shape for the whole file.
    """
    graphdef, state = nnx.split(model)
    return _apply(graphdef, state, fn, *args)


def _sequence(model, x, h0):
    return model.states(x, h0), model(x, h0)


def run_sequence(model, x, h0=None):
    """`(model.states(x, h0), model(x, h0))` as float64 numpy, jitted."""
    states, outputs = jitted(_sequence, model, x, h0)
    return np_(states), np_(outputs)


def _output(model, states, x):
    return model.output(states, x)


def _transition(model, h, x):
    return model.transition(h, x)


def stepper(model):
    """`model.transition` jitted, for Python loops over time (the model is split once)."""
    graphdef, state = nnx.split(model)
    return lambda h, x: _apply(
        graphdef, state, _transition, jnp.asarray(h, jnp.float32), jnp.asarray(x, jnp.float32)
    )


def step(model, h, x):
    return np_(stepper(model)(h, x))


def np_(a) -> np.ndarray:
    """A parameter / array as float64 (or complex128) numpy."""
    a = np.asarray(a[...] if isinstance(a, nnx.Variable) else a)
    return a.astype(np.complex128 if np.iscomplexobj(a) else np.float64)


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def readout_np(model, features, x):
    """`C f + c (+ D x)` from the readout's parameters, in numpy."""
    r = model.readout
    y = features @ np_(r.proj.kernel) + np_(r.proj.bias)
    if r.skip is not None:
        y = y + x @ np_(r.skip.kernel)
    return y


def random_inputs(seed, batch=BATCH, time=TIME, input_size=IN):
    """Gaussian inputs made with numpy (no per-shape JAX compilation)."""
    x = np.random.default_rng(seed).normal(size=(batch, time, input_size))
    return jnp.asarray(x, jnp.float32)


def randn(seed, *shape, scale=1.0):
    return jnp.asarray(scale * np.random.default_rng(seed).normal(size=shape), jnp.float32)


# ---------------------------------------------------------------------------------------------
# Diagonal complex recurrences: LRU and complex_diagonal against an explicit complex loop.
# ---------------------------------------------------------------------------------------------


def diagonal_reference(model, name, x, h0=None):
    """Explicit step-by-step complex loop `h_t = lam h_{t-1} + gamma * (B^T x_t)` in complex128.

    `lam` and `B` are rebuilt from the raw parameters: for the LRU
    `lam = exp(-exp(nu_log) + i exp(theta_log))` and `gamma = sqrt(1 - |lam|^2)`;
    for complex_diagonal `lam = lam_re + i lam_im` and no normalisation.
    """
    if name == "lru":
        lam = np.exp(-np.exp(np_(model.nu_log)) + 1j * np.exp(np_(model.theta_log)))
        gamma = np.sqrt(1.0 - np.abs(lam) ** 2)
    else:
        lam = np_(model.lam_re) + 1j * np_(model.lam_im)
        gamma = np.ones_like(np.abs(lam))
    b = np_(model.B_re) + 1j * np_(model.B_im)  # (input, hidden): drive is x @ B
    x = np_(x)
    batch, time, _ = x.shape
    n = lam.shape[0]
    out = np.zeros((batch, time, n), np.complex128)
    for i in range(batch):
        h = np.zeros(n, np.complex128) if h0 is None else np_(h0)[i, :n] + 1j * np_(h0)[i, n:]
        for t in range(time):
            h = lam * h + gamma * (x[i, t] @ b)
            out[i, t] = h
    return lam, out


@pytest.mark.parametrize("name", ["lru", "complex_diagonal"])
@pytest.mark.parametrize("with_h0", [False, True])
def test_diagonal_scan_equals_explicit_complex_loop(name, with_h0):
    # Long memory (|lambda| up to 0.999) so errors in the scan would accumulate visibly.
    model = make(name, r_min=0.9, r_max=0.999)
    x = random_inputs(1)
    h0 = randn(2, BATCH, model.state_size, scale=0.7) if with_h0 else None
    lam, ref = diagonal_reference(model, name, x, h0)

    np.testing.assert_allclose(np_(model.eigenvalues()), lam, rtol=1e-5, atol=1e-6)
    got, outputs = run_sequence(model, x, h0)
    ref_flat = np.concatenate([ref.real, ref.imag], axis=-1)
    scale = np.abs(ref_flat).max()
    # float32 scan vs complex128 loop over TIME steps: relative error ~1e-6 per step.
    np.testing.assert_allclose(got, ref_flat, rtol=0, atol=2e-5 * scale)

    # The readout is Re(C h) + D x: a real linear map of [Re h, Im h] plus the skip.
    np.testing.assert_allclose(
        outputs, readout_np(model, ref_flat, np_(x)), rtol=0, atol=5e-5 * scale
    )

    # ...and a loop over model.transition gives the same states.
    h = np.zeros(model.state_size) if h0 is None else np_(h0)[0]
    loop, f = [], stepper(model)
    for t in range(x.shape[1]):
        h = f(h, x[0, t])
        loop.append(np_(h))
    np.testing.assert_allclose(np.stack(loop), ref_flat[0], rtol=0, atol=2e-5 * scale)


def test_lru_gamma_normalisation_is_present_and_complex_diagonal_has_none():
    # With a unit impulse on one input channel, h_0 = gamma * B[j] exactly.
    for name in ("lru", "complex_diagonal"):
        model = make(name, r_min=0.5, r_max=0.99)
        x = np.zeros((BATCH, TIME, IN), np.float32)
        x[0, 0, 1] = 1.0
        h = run_sequence(model, jnp.asarray(x))[0][0, 0]
        h = h[:HID] + 1j * h[HID:]
        b = np_(model.B_re)[1] + 1j * np_(model.B_im)[1]
        lam = np_(model.eigenvalues())
        gamma = np.sqrt(1 - np.abs(lam) ** 2) if name == "lru" else np.ones(HID)
        np.testing.assert_allclose(h, gamma * b, rtol=1e-5, atol=1e-7)
        if name == "lru":  # gamma genuinely differs from 1 here, so the check is not vacuous
            assert gamma.max() < 0.9


@pytest.mark.parametrize("name", ["lru", "complex_diagonal"])
@pytest.mark.parametrize(
    "options", [dict(r_min=0.9, r_max=0.5), dict(r_min=-0.1), dict(r_max=1.5), dict(max_phase=0.0)]
)
def test_ring_options_are_validated(name, options):
    with pytest.raises(ValueError):
        make(name, **options)


RING_SIZES = dict(input_size=1, hidden_size=8192, output_size=1)  # many eigenvalues per model
RING_SETTINGS = [
    (0.4, 0.99, 2 * math.pi),
    (0.9, 0.999, math.pi / 10),
    (0.0, 0.5, 1.0),
    (0.5, 0.5, 0.1),
]


@pytest.mark.parametrize("name", ["lru", "complex_diagonal"])
@pytest.mark.parametrize("r_min,r_max,max_phase", RING_SETTINGS)
def test_eigenvalues_on_ring_and_phase_range(name, r_min, r_max, max_phase):
    model = make(name, **RING_SIZES, r_min=r_min, r_max=r_max, max_phase=max_phase, seed=3)
    lam = np_(model.eigenvalues())
    mag = np.abs(lam)
    assert mag.min() >= r_min - 1e-5 and mag.max() <= r_max + 1e-5
    phase = np.mod(np.angle(lam), 2 * math.pi)
    if max_phase < 2 * math.pi - 1e-3:
        assert phase.min() >= -1e-6 and phase.max() <= max_phase + 1e-5
    if name == "lru":  # the stored phase itself, before wrapping
        theta = np.exp(np_(model.theta_log))
        assert theta.min() >= 0 and theta.max() <= max_phase * (1 + 1e-6)
    # The phases fill their range rather than sitting at one point.
    assert np.ptp(np.exp(np_(model.theta_log)) if name == "lru" else phase) > 0.8 * max_phase


@pytest.mark.parametrize("name", ["lru", "complex_diagonal"])
@pytest.mark.parametrize("r_min,r_max", [(0.4, 0.99), (0.0, 1.0 - 1e-6)])
def test_ring_is_uniform_in_squared_magnitude(name, r_min, r_max):
    n = RING_SIZES["hidden_size"]
    model = make(name, **RING_SIZES, r_min=r_min, r_max=r_max, seed=7)
    s = np.abs(np_(model.eigenvalues())) ** 2
    a, b = r_min**2, r_max**2
    # |lambda|^2 ~ U(a, b): mean (a+b)/2, standard error (b-a)/sqrt(12 n). Allow 5 SE.
    se = (b - a) / math.sqrt(12 * n)
    assert abs(s.mean() - (a + b) / 2) < 5 * se
    # The tolerance separates the alternative "|lambda| uniform on [r_min, r_max]", whose
    # E|lambda|^2 = (r_min^2 + r_min r_max + r_max^2)/3 lies (r_max - r_min)^2/6 lower.
    assert (r_max - r_min) ** 2 / 6 > 10 * se
    # Kolmogorov-Smirnov distance to U(a, b); 1.63/sqrt(n) is the 1% critical value.
    u = np.sort((s - a) / (b - a))
    ecdf_gap = np.maximum(np.arange(1, n + 1) / n - u, u - np.arange(n) / n).max()
    assert ecdf_gap < 1.63 / math.sqrt(n)


# ---------------------------------------------------------------------------------------------
# Dense linear RNN: impulse response is powers of A.
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("channel", [0, 1])
def test_linear_impulse_response_is_powers_of_A(channel):
    T = TIME
    model = make("linear", seed=4)
    x = np.zeros((BATCH, T, IN))
    x[0, 0, channel] = 1.0
    A = np_(model.A)
    Be = np_(model.B).T @ x[0, 0]  # column convention: B e (B stored as (input, hidden))
    C = np_(model.readout.proj.kernel).T
    c = np_(model.readout.proj.bias)
    D = np_(model.readout.skip.kernel).T

    states, y = run_sequence(model, jnp.asarray(x, jnp.float32))
    states, y = states[0], y[0]
    for t in range(T):
        h_t = np.linalg.matrix_power(A, t) @ Be
        np.testing.assert_allclose(states[t], h_t, rtol=1e-4, atol=1e-5 * np.abs(h_t).max())
        y_t = C @ h_t + c + D @ x[0, t]
        np.testing.assert_allclose(y[t], y_t, rtol=1e-4, atol=1e-5 * max(1.0, np.abs(y_t).max()))


def test_linear_response_superposes_impulses():
    # Linearity + time invariance: the response to a random input is the convolution of the input
    # with the impulse responses A^k B.
    model = make("linear", seed=5)
    xs = random_inputs(6)
    x = np_(xs)[1]
    A, B = np_(model.A), np_(model.B).T
    expected = np.stack(
        [
            sum(np.linalg.matrix_power(A, t - k) @ B @ x[k] for k in range(t + 1))
            for t in range(TIME)
        ]
    )
    got = run_sequence(model, xs)[0][1]
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)


# ---------------------------------------------------------------------------------------------
# transition agrees with the sequence forward pass, for every registered architecture.
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", REGISTERED)
@pytest.mark.parametrize("with_h0", [False, True])
def test_transition_agrees_with_sequence_forward(name, with_h0):
    batch, T = BATCH, TIME
    model = make(name, seed=8)
    x = random_inputs(9)
    h0 = randn(10, batch, model.state_size, scale=0.5) if with_h0 else None

    states, outputs = run_sequence(model, x, h0)
    assert states.shape == (batch, T, model.state_size)
    f, xs = stepper(model), np_(x)
    for i in range(batch):
        h = np.zeros(model.state_size) if h0 is None else np_(h0)[i]
        loop = []
        for t in range(T):
            h = f(h, xs[i, t])
            loop.append(np_(h))
        loop = np.stack(loop)
        np.testing.assert_allclose(loop[-1], states[i, -1], rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(loop, states[i], rtol=1e-5, atol=1e-5)
    # The outputs are the readout of those states (or, where a model reads its output off the
    # input too, as s6 does with C(x_t), its `output` of them).
    if type(model).output is zoo.RecurrentModel.output:
        features = np_(model.features(jnp.asarray(states, jnp.float32)))
        expected = readout_np(model, features, np_(x))
    else:
        expected = np_(jitted(_output, model, jnp.asarray(states, jnp.float32), x))
    np.testing.assert_allclose(outputs, expected, rtol=1e-5, atol=1e-5)


# ---------------------------------------------------------------------------------------------
# Cells against their textbook equations, recomputed in numpy.
# ---------------------------------------------------------------------------------------------


def _randomise_biases(model, *names, seed=11):
    rng = np.random.default_rng(seed)
    for attr in names:
        p = getattr(model, attr)
        p[...] = jnp.asarray(rng.normal(size=p[...].shape), jnp.float32)


def test_tanh_rnn_step_by_hand():
    n, m = HID, IN
    model = make("rnn", seed=12)
    _randomise_biases(model, "b")  # b starts at zero; make the "+ b" term observable
    rng = np.random.default_rng(13)
    h, x = rng.normal(size=n), rng.normal(size=m)
    W, V, b = np_(model.W), np_(model.V), np_(model.b)
    # h_t = W tanh(h_{t-1}) + b + V x_t  (V stored as (input, hidden): V x == x @ V)
    expected = W @ np.tanh(h) + b + V.T @ x
    got = step(model, h, x)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("gain", [0.5, 1.0, 2.0])
def test_tanh_rnn_weight_scale(gain):
    n = LARGE[1]
    model = make(
        "rnn", input_size=LARGE[0], hidden_size=n, output_size=LARGE[2], gain=gain, seed=15
    )
    W = np_(model.W)
    # n^2 = 16384 Gaussian entries: the sample std has relative SE 1/sqrt(2 n^2) ~ 0.55%.
    assert abs(W.std() / (gain / math.sqrt(n)) - 1) < 0.03
    assert abs(W.mean()) < 5 * gain / math.sqrt(n) / n
    np.testing.assert_allclose(np.diag(W).std(), gain / math.sqrt(n), rtol=0.3)


@pytest.mark.parametrize("forget_bias", [1.0, 2.5])
def test_lstm_step_matches_textbook(forget_bias):
    n, m = HID, IN
    model = make("lstm", forget_bias=forget_bias, seed=16)
    W_in, W_rec, b = np_(model.W_in), np_(model.W_rec), np_(model.b)
    # Fused layout (input, 4n), gate order i, f, g, o; forget bias on the f block only.
    expected_b = np.zeros(4 * n)
    expected_b[n : 2 * n] = forget_bias
    np.testing.assert_array_equal(b, expected_b)

    rng = np.random.default_rng(17)
    h, c, x = rng.normal(size=n), rng.normal(size=n), rng.normal(size=m)

    def gate(k):  # W_k x + U_k h (biases added separately below)
        sl = slice(k * n, (k + 1) * n)
        return x @ W_in[:, sl] + h @ W_rec[:, sl]

    i = sigmoid(gate(0))
    f = sigmoid(gate(1) + forget_bias)
    g = np.tanh(gate(2))
    o = sigmoid(gate(3))
    c_new = f * c + i * g
    h_new = o * np.tanh(c_new)
    state = jnp.asarray(np.concatenate([h, c]), jnp.float32)
    got = step(model, state, x)
    np.testing.assert_allclose(got, np.concatenate([h_new, c_new]), rtol=1e-5, atol=1e-5)

    # The readout sees h only.
    np.testing.assert_allclose(np_(model.features(jnp.asarray(got, jnp.float32))), got[:n])


def test_lstm_step_with_random_biases():
    n, m = HID, IN
    model = make("lstm", seed=18)
    _randomise_biases(model, "b")
    W_in, W_rec, b = np_(model.W_in), np_(model.W_rec), np_(model.b)
    rng = np.random.default_rng(19)
    h, c, x = rng.normal(size=n), rng.normal(size=n), rng.normal(size=m)
    z = x @ W_in + h @ W_rec + b
    i, f = sigmoid(z[:n]), sigmoid(z[n : 2 * n])
    g, o = np.tanh(z[2 * n : 3 * n]), sigmoid(z[3 * n :])
    c_new = f * c + i * g
    expected = np.concatenate([o * np.tanh(c_new), c_new])
    got = step(model, np.concatenate([h, c]), x)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


def test_gru_step_matches_pytorch_equations():
    n, m = HID, IN
    model = make("gru", seed=20)
    _randomise_biases(model, "b", "b_rec")  # both bias vectors matter in the PyTorch GRU
    W_in, W_rec = np_(model.W_in), np_(model.W_rec)
    b_i, b_h = np_(model.b), np_(model.b_rec)
    rng = np.random.default_rng(21)
    h, x = rng.normal(size=n), rng.normal(size=m)
    sl = [slice(k * n, (k + 1) * n) for k in range(3)]  # gate order r, z, n (as torch.nn.GRU)
    # torch.nn.GRUCell:
    #   r = sigma(W_ir x + b_ir + W_hr h + b_hr)
    #   z = sigma(W_iz x + b_iz + W_hz h + b_hz)
    #   n = tanh(W_in x + b_in + r * (W_hn h + b_hn))
    #   h' = (1 - z) * n + z * h
    r = sigmoid(x @ W_in[:, sl[0]] + b_i[sl[0]] + h @ W_rec[:, sl[0]] + b_h[sl[0]])
    z = sigmoid(x @ W_in[:, sl[1]] + b_i[sl[1]] + h @ W_rec[:, sl[1]] + b_h[sl[1]])
    cand = np.tanh(x @ W_in[:, sl[2]] + b_i[sl[2]] + r * (h @ W_rec[:, sl[2]] + b_h[sl[2]]))
    expected = (1 - z) * cand + z * h
    got = step(model, h, x)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


# ---------------------------------------------------------------------------------------------
# Shapes, state sizes, finiteness.
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", BUILTIN + NEW)
@pytest.mark.parametrize("sizes", [(IN, HID, OUT, BATCH, TIME), (*LARGE, 4, 7)])
def test_shapes_and_finiteness(name, sizes):
    m, n, p, batch, T = sizes
    model = make(name, input_size=m, hidden_size=n, output_size=p)
    y = run_sequence(model, random_inputs(22, batch, T, m))[1]
    assert y.shape == (batch, T, p)
    assert np.isfinite(np_(y)).all()
    expected_state = STATE_SIZE.get(name, lambda n: n)(n)
    assert model.state_size == expected_state
    h = step(model, np.zeros(model.state_size), np.ones(m))
    assert h.shape == (expected_state,) and np.isfinite(np_(h)).all()


# ---------------------------------------------------------------------------------------------
# Registry.
# ---------------------------------------------------------------------------------------------


def test_registry_user_architecture():
    names = zoo.list_architectures()
    assert names == sorted(names)
    assert set(BUILTIN + NEW) <= set(names) and "my_test_arch" in names
    model = make("my_test_arch", leak=0.25)
    assert isinstance(model, LeakyTanh) and model.leak == 0.25
    assert run_sequence(model, random_inputs(23))[1].shape == (BATCH, TIME, OUT)
    # Re-registering the same class (e.g. a module reload) is harmless.
    assert zoo.register_architecture("my_test_arch")(LeakyTanh) is LeakyTanh


def test_list_architectures_pattern():
    assert zoo.list_architectures("l*") == ["linear", "lru", "lstm"]
    assert zoo.list_architectures("my_*") == ["my_test_arch"]
    assert zoo.list_architectures("*gru*") == ["gru", "mingru"]
    assert zoo.list_architectures("nothing*") == []


def test_unknown_architecture_lists_registered_names():
    with pytest.raises(zoo.UnknownNameError) as err:
        make("no_such_arch")
    message = str(err.value)
    assert "no_such_arch" in message
    for name in (*BUILTIN, *NEW, "my_test_arch"):
        assert name in message


@pytest.mark.parametrize(
    "field,value",
    [
        ("input_size", 0),
        ("hidden_size", -3),
        ("output_size", 2.5),
        ("hidden_size", True),
        ("input_size", "4"),
    ],
)
def test_bad_sizes_raise_value_error_naming_field(field, value):
    sizes = {"input_size": 2, "hidden_size": 4, "output_size": 1, field: value}
    with pytest.raises(ValueError, match=field):
        zoo.create_architecture("rnn", rngs=nnx.Rngs(0), **sizes)


def test_registering_a_different_class_under_existing_name_raises():
    before = ARCHITECTURES.get("rnn")

    class Impostor(LeakyTanh):
        pass

    with pytest.raises(ValueError, match="rnn"):
        zoo.register_architecture("rnn")(Impostor)
    with pytest.raises(ValueError, match="my_test_arch"):
        zoo.register_architecture("my_test_arch")(Impostor)
    assert ARCHITECTURES.get("rnn") is before
    model = make("my_test_arch")
    assert isinstance(model, LeakyTanh) and not isinstance(model, Impostor)
    with pytest.raises(ValueError):
        zoo.register_architecture("")


# ---------------------------------------------------------------------------------------------
# Training and jit.
# ---------------------------------------------------------------------------------------------


def mse(model, x, y):
    return jnp.mean((model(x) - y) ** 2)


@nnx.jit
def adam_step(model, optimizer, x, y):
    loss, grads = nnx.value_and_grad(mse)(model, x, y)
    optimizer.update(model, grads)
    return loss, grads


@pytest.mark.parametrize("name", BUILTIN + NEW)
def test_one_adam_step_changes_loss_with_finite_gradients(name):
    model = make(name, seed=24)
    x = random_inputs(25)
    y = randn(26, BATCH, TIME, OUT)
    before = jax.tree.map(np.array, nnx.state(model, nnx.Param))
    expected_loss0 = np.mean((run_sequence(model, x)[1] - np_(y)) ** 2)
    optimizer = nnx.Optimizer(model, optax.adam(1e-2), wrt=nnx.Param)
    loss0, grads = adam_step(model, optimizer, x, y)

    assert np.isclose(float(loss0), expected_loss0, rtol=1e-4)
    grad_leaves = jax.tree_util.tree_leaves_with_path(nnx.state(grads))
    assert len(grad_leaves) == len(jax.tree.leaves(before))
    for path, g in grad_leaves:
        g = np_(g)
        assert np.isfinite(g).all(), path
        assert np.abs(g).max() > 0, f"zero gradient for {jax.tree_util.keystr(path)}"
    after = nnx.state(model, nnx.Param)
    for b, a in zip(jax.tree.leaves(before), jax.tree.leaves(after)):
        assert not np.allclose(b, np_(a))  # adam moves every parameter with a nonzero gradient
    loss1 = np.mean((run_sequence(model, x)[1] - np_(y)) ** 2)
    assert np.isfinite(loss1) and abs(loss1 - float(loss0)) > 1e-4 * float(loss0)


@pytest.mark.parametrize("name", REGISTERED)
def test_jit_forward_equals_eager(name):
    model = make(name, seed=27)
    x = random_inputs(28)
    eager = np_(model(x))
    # jax.jit of the forward pass (split / merge; the cached helper used across this file).
    _states, outputs = run_sequence(model, x)
    np.testing.assert_allclose(outputs, eager, rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------------------------------------
# Initialisation and options of the Zucchet & Orvieto ablation ladder.
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("r_min,r_max", [(0.0, 1.0), (0.5, 0.9)])
def test_linear_starts_stable_with_the_papers_eigenvalue_map(r_min, r_max):
    n = 32
    for seed in range(20):
        model = make("linear", hidden_size=n, seed=seed, r_min=r_min, r_max=r_max)
        mags = np.sort(np.abs(np.linalg.eigvals(np_(model.A))))
        # Known answer: the magnitudes of a N(0, 1/n) draw (the model's first key) mapped by
        # r_min + (r_max - r_min) tanh(|l|) (Zucchet & Orvieto's recurrent_matrix_init).
        draw = np.asarray(jax.random.normal(nnx.Rngs(seed).params(), (n, n)), np.float64) / math.sqrt(n)
        want = np.sort(r_min + (r_max - r_min) * np.tanh(np.abs(np.linalg.eigvals(draw))))
        np.testing.assert_allclose(mags, want, rtol=1e-4, atol=1e-5)
        # Stable: the largest Lyapunov exponent of h -> A h is log(spectral radius) < 0.
        assert mags.max() < r_max and math.log(mags.max()) < 0
        assert mags.min() >= r_min - 1e-5


@pytest.mark.parametrize("options", [dict(r_min=0.5, r_max=0.4), dict(r_max=1.2), dict(max_phase=4.0)])
def test_linear_options_are_validated(options):
    with pytest.raises(ValueError, match="linear"):
        make("linear", **options)


def impulse_state(model):
    """The first state after a unit impulse on input channel 1, as a complex vector."""
    x = np.zeros((BATCH, TIME, IN), np.float32)
    x[0, 0, 1] = 1.0
    h = run_sequence(model, jnp.asarray(x))[0][0, 0]
    return h[:HID] + 1j * h[HID:]


def test_lru_gamma_options_scale_B_as_documented():
    b = None
    for gamma in ("learned", "tied", "tied_stopgrad", "none"):
        model = make("lru", gamma=gamma, r_min=0.5, r_max=0.99)
        b = np_(model.B_re)[1] + 1j * np_(model.B_im)[1]
        tied = np.sqrt(1 - np.abs(np_(model.eigenvalues())) ** 2)
        if gamma == "learned":  # Orvieto et al.: gamma_log initialised to log sqrt(1 - |lambda|^2)
            np.testing.assert_allclose(np.exp(np_(model.gamma_log)), tied, rtol=1e-5)
            # ...then a free parameter: moving it moves the input scale, lambda unchanged.
            model.gamma_log[...] = model.gamma_log[...] + jnp.log(2.0)
            np.testing.assert_allclose(impulse_state(model), 2 * tied * b, rtol=1e-4, atol=1e-7)
        else:
            assert not hasattr(model, "gamma_log")
            expected = b if gamma == "none" else tied * b
            np.testing.assert_allclose(impulse_state(model), expected, rtol=1e-5, atol=1e-7)
    with pytest.raises(ValueError, match="gamma"):
        make("lru", gamma="L2")


def _nu_log_gradient(model, x, y):
    return np_(nnx.grad(mse)(model, x, y).nu_log)


def test_lru_tied_stopgrad_drops_only_the_gradient_through_gamma():
    x, y = random_inputs(30), randn(31, BATCH, TIME, OUT)
    grads = {g: _nu_log_gradient(make("lru", gamma=g, seed=32), x, y) for g in ("learned", "tied", "tied_stopgrad")}
    # At initialisation the three compute the same function; with gamma held fixed (learned
    # gamma_log, or the stopped gradient) d/d nu_log is the same, and tying adds the path
    # through sqrt(1 - |lambda|^2).
    np.testing.assert_allclose(grads["tied_stopgrad"], grads["learned"], rtol=1e-4, atol=1e-7)
    assert np.abs(grads["tied"] - grads["tied_stopgrad"]).max() > 1e-3 * np.abs(grads["tied"]).max()


def test_exponential_parametrisation_alone_keeps_the_complex_diagonal_function():
    # Ladder rungs 2 and 3: the same eigenvalues (same seed) stored as (Re, Im) or as
    # exp(-exp(nu_log) + i exp(theta_log)) give the same map from inputs to outputs.
    x = random_inputs(33)
    cd = make("complex_diagonal", seed=34, r_min=0.8, r_max=0.99)
    lru = make("lru", seed=34, r_min=0.8, r_max=0.99, gamma="none")
    np.testing.assert_allclose(np_(lru.eigenvalues()), np_(cd.eigenvalues()), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(run_sequence(lru, x)[1], run_sequence(cd, x)[1], rtol=1e-4, atol=1e-5)


PARALLEL = [name for name in REGISTERED
            if name in {"lru", "complex_diagonal", "mingru", "minlstm", "rglru", "s6", "s5"}]


def _parallel_states(model, x, h0):
    model.parallel_scan = True
    return model.states(x, h0)


@pytest.mark.parametrize("name", PARALLEL)
def test_parallel_scan_equals_sequential_loop(name):
    # The accelerator path (associative scan, h0 injected at the first step) on this CPU.
    model = make(name, seed=35)
    x = random_inputs(36)
    h0 = randn(37, BATCH, model.state_size, scale=0.5)
    loop = run_sequence(model, x, h0)[0]
    np.testing.assert_allclose(np_(jitted(_parallel_states, model, x, h0)), loop, rtol=1e-5, atol=1e-5)
