"""Tests of the `tasks` package: targets against independent computations, determinism,
one compilation across horizons, clear errors, and the tensorflow-datasets loaders
(through `tfds.testing.mock_data` and through real array_record files written by tfds)."""

from __future__ import annotations

import io
import random
import socket

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import tensorflow_datasets as tfds

import tasks
from tasks import sequential, teacher_student
from tasks.base import Batch


# --------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------
def _no_network(mp: pytest.MonkeyPatch) -> None:
    def refuse(*args, **kwargs):
        raise AssertionError(f"network access attempted: {args!r}")

    mp.setattr(socket.socket, "connect", refuse)
    mp.setattr(socket.socket, "connect_ex", refuse)
    mp.setattr(socket, "create_connection", refuse)
    mp.setattr(socket, "getaddrinfo", refuse)


@pytest.fixture
def no_network(monkeypatch):
    _no_network(monkeypatch)


def _no_download(mp: pytest.MonkeyPatch) -> None:
    """Missing data must fail at once: any attempt to download or prepare MNIST is an error."""
    from tensorflow_datasets.core import dataset_builder

    def refuse(*args, **kwargs):
        raise AssertionError("tried to download or prepare a data set")

    mp.setattr(dataset_builder.DatasetBuilder, "download_and_prepare", refuse)
    mp.setattr(tfds, "load", refuse)


def _np(batch: Batch):
    return tuple(np.asarray(a) for a in batch)


def _same(a: Batch, b: Batch) -> bool:
    return all(np.array_equal(x, y) for x, y in zip(_np(a), _np(b), strict=True))


def _perfect_logits(task, batch: Batch) -> jax.Array:
    """Logits that a perfect predictor would emit, built from the true targets."""
    if task.output_size == 10:
        return 10.0 * jax.nn.one_hot(batch.targets, 10)
    return 10.0 * (2.0 * batch.targets - 1.0)


# --------------------------------------------------------------------------------------
# registry and errors
# --------------------------------------------------------------------------------------
def test_registry_lists_builtin_tasks():
    names = tasks.list_tasks()
    for name in ["delayed_copy", "delayed_xor", "teacher_student", "mnist1d", "smnist", "psmnist",
                 "adding", "selective_copy", "associative_recall", "sdigits"]:
        assert name in names
    assert tasks.list_tasks("delayed_*") == ["delayed_copy", "delayed_xor"]


def test_unknown_task_name():
    with pytest.raises(tasks.UnknownNameError, match="unknown task 'copy'.*delayed_copy"):
        tasks.create_task("copy", horizon=5)


@pytest.mark.parametrize(
    "name, options, fragments",
    [
        (
            "delayed_copy",
            dict(horizon=400),
            ["delayed_copy: horizon", "[1, seq_len-1] = [1, 299]", "got 400"],
        ),
        ("delayed_copy", dict(horizon=0), ["horizon must be an integer", "got 0"]),
        ("delayed_copy", dict(horizon=-3), ["horizon must be an integer", "got -3"]),
        ("delayed_copy", dict(horizon=2.5), ["horizon must be an integer", "got 2.5"]),
        ("delayed_copy", dict(horizon="5"), ["horizon must be an integer", "got '5'"]),
        ("delayed_copy", dict(horizon=True), ["horizon must be an integer", "got True"]),
        ("delayed_copy", dict(horizon=50, seq_len=40), ["[1, seq_len-1] = [1, 39]", "got 50"]),
        ("delayed_copy", dict(horizon=5, batch_size=0), ["batch_size must be an integer", "got 0"]),
        (
            "delayed_copy",
            dict(horizon=5, success_threshold=1.5),
            ["success_threshold", "(0.5, 1.0]"],
        ),
        (
            "delayed_copy",
            dict(horizon=5, delay=3),
            ["unknown option 'delay'", "allowed:", "seq_len"],
        ),
        ("delayed_xor", dict(horizon=5), ["delayed_xor: horizon must be even", "got 5"]),
        ("delayed_xor", dict(horizon=6, order=2), ["multiple of 2**order = 4", "got 6"]),
        ("delayed_xor", dict(horizon=8, order=0), ["order must be an integer", "got 0"]),
        ("delayed_xor", dict(horizon=8, order="2"), ["order must be an integer"]),
        (
            "teacher_student",
            dict(horizon=0.5),
            ["teacher_student: horizon", "[1.0, inf)", "got 0.5"],
        ),
        ("teacher_student", dict(horizon=float("inf")), ["horizon must be a finite number"]),
        ("teacher_student", dict(horizon=10, input_size=0), ["input_size must be an integer"]),
        (
            "teacher_student",
            dict(horizon=10, teacher_seed=1.5),
            ["teacher_seed must be an integer"],
        ),
        ("teacher_student", dict(horizon=10, nu0=0.9), ["unknown option 'nu0'", "teacher_seed"]),
        ("mnist1d", dict(horizon=-1), ["mnist1d: horizon must be an integer in [0,", "got -1"]),
        (
            "smnist",
            dict(horizon=100),
            ["smnist: horizon must be one of 49 (7x7), 196 (14x14), 784 (28x28)", "got 100"],
        ),
        ("psmnist", dict(horizon=28), ["psmnist: horizon must be one of 49", "got 28"]),
        ("psmnist", dict(horizon=49, permutation_seed=-1), ["permutation_seed must be an integer"]),
        ("smnist", dict(horizon=49, permutation_seed=1), ["unknown option 'permutation_seed'"]),
    ],
)
def test_bad_options_raise_one_line_task_config_error(name, options, fragments):
    with pytest.raises(tasks.TaskConfigError) as info:
        tasks.create_task(name, **options)
    message = str(info.value)
    assert isinstance(info.value, ValueError)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message, message


# --------------------------------------------------------------------------------------
# delayed copy / XOR
# --------------------------------------------------------------------------------------
def _copy_reference(x: np.ndarray, d: int):
    b, t_len = x.shape[:2]
    y = np.zeros((b, t_len))
    mask = np.zeros((b, t_len))
    for i in range(b):
        for t in range(t_len):
            if t >= d:
                y[i, t] = x[i, t - d, 0]
                mask[i, t] = 1.0
    return y, mask


def _parity_reference(x: np.ndarray, d: int, order: int):
    n = 2**order
    b, t_len = x.shape[:2]
    y = np.zeros((b, t_len))
    mask = np.zeros((b, t_len))
    for i in range(b):
        for t in range(d, t_len):
            bits = [int(x[i, t - d * k // n, 0]) for k in range(1, n + 1)]
            acc = 0
            for bit in bits:
                acc ^= bit
            y[i, t] = acc
            mask[i, t] = 1.0
    return y, mask


# Small shapes shared by several tests, so each sampling function compiles once.
SMALL = dict(seq_len=60, batch_size=8)


def test_delayed_copy_targets_one_compilation_across_horizons():
    """Targets vs a numpy loop, two horizons through ONE jitted function (as the harness does)."""
    t5 = tasks.create_task("delayed_copy", horizon=5, **SMALL)
    t23 = tasks.create_task("delayed_copy", horizon=23, **SMALL)
    assert t5.static_key() == t23.static_key()
    assert t5.input_size == 1 and t5.output_size == 1
    traces = []

    @jax.jit
    def sample(arrays, key):
        traces.append(1)
        return t5.sample(arrays, key)

    for task, d in [(t5, 5), (t23, 23)]:
        x, y, mask = _np(sample(task.arrays(), jax.random.key(d)))
        assert x.shape == (8, 60, 1) and y.shape == (8, 60, 1) and mask.shape == (8, 60)
        assert x.dtype == np.float32 and set(np.unique(x)) <= {0.0, 1.0}
        y_ref, mask_ref = _copy_reference(x, d)
        np.testing.assert_array_equal(mask, mask_ref)
        np.testing.assert_array_equal(y[..., 0], y_ref)
    assert len(traces) == 1
    assert sample._cache_size() == 1
    # determinism from the key
    k = jax.random.key(11)
    assert _same(sample(t5.arrays(), k), sample(t5.arrays(), k))
    assert not np.array_equal(
        sample(t5.arrays(), k).inputs, sample(t5.arrays(), jax.random.key(12)).inputs
    )


def test_delayed_xor_targets_match_parity_of_the_inputs():
    # order 1 is the plain XOR y_t = x_{t-d/2} XOR x_{t-d}
    xor = tasks.create_task("delayed_xor", horizon=10, **SMALL)
    x, y, mask = _np(xor.sample(xor.arrays(), jax.random.key(0)))
    plain = np.zeros((8, 60))
    for i in range(8):
        for t in range(10, 60):
            plain[i, t] = int(x[i, t - 5, 0]) ^ int(x[i, t - 10, 0])
    np.testing.assert_array_equal(y[..., 0], plain)
    np.testing.assert_array_equal(mask, _parity_reference(x, 10, 1)[1])
    assert xor.tap_lags() == [5, 10]
    assert _same(
        xor.sample(xor.arrays(), jax.random.key(0)), xor.sample(xor.arrays(), jax.random.key(0))
    )

    # order 2: parity of 4 bits at lags d/4, d/2, 3d/4, d; two horizons, one compilation
    x8 = tasks.create_task("delayed_xor", horizon=8, order=2, **SMALL)
    x20 = tasks.create_task("delayed_xor", horizon=20, order=2, **SMALL)
    assert x8.static_key() == x20.static_key() != xor.static_key()
    assert x20.tap_lags() == [5, 10, 15, 20]
    sample = jax.jit(x8.sample)
    for task, d in [(x8, 8), (x20, 20)]:
        x, y, mask = _np(sample(task.arrays(), jax.random.key(d)))
        y_ref, mask_ref = _parity_reference(x, d, 2)
        np.testing.assert_array_equal(y[..., 0], y_ref)
        np.testing.assert_array_equal(mask, mask_ref)
        assert 0.3 < y[mask > 0].mean() < 0.7  # parity bits are balanced
    assert sample._cache_size() == 1


def test_bit_tasks_share_inputs():
    copy = tasks.create_task("delayed_copy", horizon=20)
    xor = tasks.create_task("delayed_xor", horizon=20)
    assert copy.input_key() == xor.input_key()
    k = jax.random.key(11)
    s1 = copy.sample_inputs(copy.arrays(), k, 1000)
    s2 = xor.sample_inputs(xor.arrays(), k, 1000)
    assert s1.shape == (1000, 1)
    np.testing.assert_array_equal(s1, s2)
    assert set(np.unique(np.asarray(s1))) <= {0.0, 1.0} and 0.4 < float(s1.mean()) < 0.6


def test_eval_set_fixed_across_instances_and_cached():
    t1 = tasks.create_task("delayed_copy", horizon=30)
    t2 = tasks.create_task("delayed_copy", horizon=30)
    e1, e2 = t1.eval_batch(), t2.eval_batch()
    assert e1.inputs.shape == (256, 300, 1)
    assert _same(e1, e2)
    assert t1.eval_batch() is e1
    x, y, _mask = _np(e1)
    np.testing.assert_array_equal(y[..., 0], _copy_reference(x, 30)[0])
    # the eval set is not what a training seed draws
    for seed in (0, 1):
        batch = tasks.create_task("delayed_copy", horizon=30, batch_size=256).sample(
            t1.arrays(), jax.random.key(seed)
        )
        assert not np.array_equal(x, batch.inputs)


@pytest.mark.parametrize("name, horizon", [("delayed_copy", 30), ("delayed_xor", 30)])
def test_bit_task_loss_and_perfect_predictor(name, horizon):
    task = tasks.create_task(name, horizon=horizon)
    batch = task.eval_batch()
    chance = jnp.zeros(batch.targets.shape)
    assert float(task.loss(chance, batch)) == pytest.approx(np.log(2.0), rel=1e-5)
    perfect = _perfect_logits(task, batch)
    assert np.isfinite(float(task.loss(perfect, batch)))
    assert float(task.loss(perfect, batch)) < 1e-3
    metric = float(task.metric(perfect, batch))
    assert metric == 1.0 and task.solved(metric)
    assert not task.solved(float(task.metric(-perfect, batch)))
    assert task.success_threshold == 0.95 and task.higher_is_better


# --------------------------------------------------------------------------------------
# teacher-student
# --------------------------------------------------------------------------------------
def test_horizon_nu0_mapping_both_ways():
    grid = [0.32, 0.68, 0.84, 0.92, 0.96, 0.98, 0.99]
    expected = [1 / (1 - v) for v in grid]
    for v, h in zip(grid, expected, strict=True):
        assert tasks.nu0_to_horizon(v) == pytest.approx(h)
        assert tasks.horizon_to_nu0(h) == pytest.approx(v)
    assert teacher_student.PAPER_HORIZONS == pytest.approx(expected)
    assert tasks.nu0_to_horizon(0.99) == pytest.approx(100.0)
    assert tasks.horizon_to_nu0(100) == pytest.approx(0.99)
    assert tasks.horizon_to_nu0(1) == 0.0 and tasks.nu0_to_horizon(0.0) == 1.0
    for bad in (1.0, -0.1):
        with pytest.raises(tasks.TaskConfigError, match="nu0 must be in"):
            tasks.nu0_to_horizon(bad)
    with pytest.raises(tasks.TaskConfigError, match="horizon must be a finite number >= 1"):
        tasks.horizon_to_nu0(0.9)


@pytest.mark.parametrize("horizon", [1.0, 1 / (1 - 0.32), 12.5, 100.0, 1000.0])
def test_teacher_eigenvalue_magnitudes_in_range(horizon):
    task = tasks.create_task("teacher_student", horizon=horizon)
    nu0 = 1 - 1 / horizon
    assert task.nu0 == pytest.approx(nu0)
    for a in (task.teacher["A"], np.asarray(task.arrays()["A"], np.float64)):
        mags = np.abs(np.linalg.eigvals(a))
        assert a.shape == (10, 10)
        assert mags.min() >= nu0 - 1e-5 and mags.max() < 1.0


def _teacher_reference(task, x: np.ndarray) -> np.ndarray:
    """The teacher's outputs by an explicit step-by-step loop over its matrices (float64)."""
    a, b, c, d = (np.asarray(task.arrays()[k], np.float64) for k in "ABCD")
    y = np.zeros((x.shape[0], x.shape[1], c.shape[0]))
    for i in range(x.shape[0]):
        h = np.zeros(a.shape[0])
        for t in range(x.shape[1]):
            y[i, t] = c @ h + d @ x[i, t]
            h = a @ h + b @ x[i, t]
    return y


def test_teacher_outputs_match_numpy_loop():
    task = tasks.create_task(
        "teacher_student", horizon=25, seq_len=40, batch_size=3, input_size=2, output_size=3
    )
    batch = task.sample(task.arrays(), jax.random.key(0))
    x, y, mask = _np(batch)
    assert x.shape == (3, 40, 2) and y.shape == (3, 40, 3) and mask.shape == (3, 40)
    assert (mask == 1).all()
    y_ref = _teacher_reference(task, x)
    np.testing.assert_allclose(y, y_ref, rtol=1e-4, atol=1e-4)
    # the step-by-step path used for large input/output sizes agrees too
    scanned = jax.jit(teacher_student._teacher_scan)(task.arrays(), batch.inputs)
    np.testing.assert_allclose(scanned, y_ref, rtol=1e-4, atol=1e-4)
    assert task.input_size == 2 and task.output_size == 3


def test_teacher_fixed_by_teacher_seed_not_training_seed():
    t1 = tasks.create_task("teacher_student", horizon=10)
    t2 = tasks.create_task("teacher_student", horizon=10)
    t3 = tasks.create_task("teacher_student", horizon=10, teacher_seed=1)
    for k in "ABCD":
        np.testing.assert_array_equal(t1.teacher[k], t2.teacher[k])
    assert not np.allclose(t1.teacher["A"], t3.teacher["A"])
    assert _same(t1.eval_batch(), t2.eval_batch())
    assert t1.eval_batch().inputs.shape == (512, 300, 1)
    assert t1.input_key() == ("gaussian", 1)


def test_teacher_one_compilation_across_horizons_and_determinism():
    t_short = tasks.create_task("teacher_student", horizon=2.0, **SMALL)
    t_long = tasks.create_task("teacher_student", horizon=50.0, **SMALL)
    assert t_short.static_key() == t_long.static_key()
    sample = jax.jit(t_short.sample)
    for task in (t_short, t_long):
        batch = sample(task.arrays(), jax.random.key(4))
        y_ref = _teacher_reference(task, np.asarray(batch.inputs))
        np.testing.assert_allclose(batch.targets, y_ref, rtol=1e-4, atol=1e-4)
    assert sample._cache_size() == 1
    k = jax.random.key(0)
    b0 = sample(t_long.arrays(), k)
    assert _same(b0, sample(t_long.arrays(), k))
    assert not np.array_equal(b0.inputs, sample(t_long.arrays(), jax.random.key(1)).inputs)
    assert abs(float(b0.inputs.mean())) < 0.1 and abs(float(b0.inputs.std()) - 1) < 0.1


def test_teacher_metric_and_loss():
    task = tasks.create_task("teacher_student", horizon=10)  # shares the eval compilation above
    ev = task.eval_batch()
    zero = jnp.zeros_like(ev.targets)
    assert float(task.metric(zero, ev)) == pytest.approx(1.0)
    assert float(task.metric(ev.targets, ev)) == 0.0
    loss = float(task.loss(zero, ev))
    assert np.isfinite(loss) and loss == pytest.approx(
        0.5 * float(jnp.mean(ev.targets**2)), rel=1e-5
    )
    # Output normalised to unit power: for x ~ N(0, I), E[y_t^2] = sum_{k<=t} |K_k|^2 with
    # K_0 = D, K_k = C A^(k-1) B, so its mean over the sequence is exactly 1 (float64 here).
    a, b, c, d = (task.teacher[k] for k in "ABCD")
    energy, p = [float(np.sum(d**2))], b
    for _ in range(1, task.seq_len):
        energy.append(float(np.sum((c @ p) ** 2)))
        p = a @ p
    assert np.mean(np.cumsum(energy)) == pytest.approx(1.0, rel=1e-9)
    assert not task.higher_is_better
    assert task.solved(0.01) and not task.solved(1.0) and task.success_threshold == 0.05
    assert task.sample_inputs(task.arrays(), jax.random.key(0), 700).shape == (700, 1)


# --------------------------------------------------------------------------------------
# MNIST-1D
# --------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def mnist1d_offline():
    """Generate MNIST-1D once with every network call refused; the global RNGs must survive."""
    sequential._MNIST1D_CACHE.clear()
    np.random.seed(123)
    random.seed(123)
    np_before, py_before = np.random.get_state()[1].copy(), random.getstate()
    with pytest.MonkeyPatch.context() as mp:
        _no_network(mp)
        data = sequential.mnist1d_data()
    np.testing.assert_array_equal(np.random.get_state()[1], np_before)
    assert random.getstate() == py_before
    return data


def test_mnist1d_generated_offline_and_cached(mnist1d_offline, monkeypatch):
    data = mnist1d_offline
    assert data["x"].shape == (4000, 40) and data["x_test"].shape == (1000, 40)
    assert set(np.unique(data["y"])) == set(range(10))
    import mnist1d.data

    def regenerate(*args, **kwargs):
        raise AssertionError("MNIST-1D generated a second time")

    monkeypatch.setattr(mnist1d.data, "make_dataset", regenerate)
    assert sequential.mnist1d_data() is data  # cached in-process: the generator is not called


def test_mnist1d_shapes_blank_steps_and_readout(mnist1d_offline):
    data = mnist1d_offline
    task = tasks.create_task("mnist1d", horizon=25)
    assert task.seq_len == 65 and task.input_size == 1 and task.output_size == 10
    batch = task.sample(task.arrays(), jax.random.key(0))
    x, y, mask = _np(batch)
    assert x.shape == (64, 65, 1) and y.shape == (64, 65) and mask.shape == (64, 65)
    assert (x[:, 40:, 0] == 0).all()  # the blank steps
    assert (np.abs(x[:, :40, 0]) > 0).mean() > 0.99
    np.testing.assert_array_equal(mask.sum(1), 1)
    assert (mask[:, -1] == 1).all()
    assert ((y >= 0) & (y < 10)).all() and (y == y[:, :1]).all()
    # training draws from 3500 of the 4000 training sequences; the other 500 are validation
    pool = np.asarray(task.arrays()["x"])
    rows = {r.tobytes(): i for i, r in enumerate(data["x"])}
    train_rows = np.array([rows[r.tobytes()] for r in pool])
    assert len(set(train_rows)) == 3500
    np.testing.assert_array_equal(np.asarray(task.arrays()["y"]), data["y"][train_rows])
    # each sequence is a standardized training sequence with its label
    mean, std = data["x"][train_rows].mean(), data["x"][train_rows].std()
    for i in range(3):
        row = np.flatnonzero(
            np.all(np.isclose((data["x"] - mean) / std, x[i, :40, 0], atol=1e-5), axis=1)
        )
        assert row.size >= 1 and row[0] in train_rows and data["y"][row[0]] == y[i, 0]
    train_inputs = (data["x"][train_rows] - mean) / std
    assert abs(train_inputs.mean()) < 1e-4 and abs(train_inputs.std() - 1) < 1e-4
    val = task.eval_batch("validation")
    assert val.inputs.shape == (500, 65, 1)
    standardized = (data["x"].astype(np.float64) - mean) / std
    v = np.asarray(val.inputs[:, :40, 0], np.float64)
    dist = ((v**2).sum(1)[:, None] - 2 * v @ standardized.T + (standardized**2).sum(1)[None]).T
    val_rows = dist.argmin(0)
    assert dist.min(0).max() < 1e-6  # every validation sequence is a training-split sequence
    assert sorted(set(val_rows) | set(train_rows)) == list(range(4000))
    np.testing.assert_array_equal(np.asarray(val.targets[:, -1]), data["y"][val_rows])

    ev = task.eval_batch()
    assert ev.inputs.shape == (1000, 65, 1)
    np.testing.assert_array_equal(np.asarray(ev.targets[:, -1]), data["y_test"])
    assert _same(ev, tasks.create_task("mnist1d", horizon=25).eval_batch())
    assert task.sample_inputs(task.arrays(), jax.random.key(0), 100).shape == (100, 1)

    plain = tasks.create_task("mnist1d", horizon=0)
    assert plain.seq_len == 40 and plain.static_key() != task.static_key()
    assert _same(
        task.sample(task.arrays(), jax.random.key(5)), task.sample(task.arrays(), jax.random.key(5))
    )


def test_mnist1d_loss_and_perfect_predictor(mnist1d_offline):
    task = tasks.create_task("mnist1d", horizon=3)
    ev = task.eval_batch()
    uniform = jnp.zeros(ev.targets.shape + (10,))
    assert float(task.loss(uniform, ev)) == pytest.approx(np.log(10.0), rel=1e-5)
    perfect = _perfect_logits(task, ev)
    assert float(task.metric(perfect, ev)) == 1.0 and task.solved(1.0)
    assert float(task.loss(perfect, ev)) < 1e-3
    assert not task.solved(0.1) and task.success_threshold == 0.6


# --------------------------------------------------------------------------------------
# sMNIST / psMNIST through tensorflow-datasets
# --------------------------------------------------------------------------------------


@pytest.fixture
def mocked_mnist(no_network):
    sequential.clear_mnist_cache()
    with tfds.testing.mock_data(num_examples=40):
        yield
    sequential.clear_mnist_cache()


def _pool_reference(image: np.ndarray, side: int) -> np.ndarray:
    f = 28 // side
    out = np.zeros((side, side))
    for r in range(side):
        for c in range(side):
            out[r, c] = np.round(
                image[r * f : (r + 1) * f, c * f : (c + 1) * f].astype(np.float64).mean()
            )
    return out.reshape(-1)


@pytest.mark.parametrize("horizon, side", [(49, 7), (196, 14), (784, 28)])
def test_smnist_through_tfds_mock_resolution_by_horizon(mocked_mnist, horizon, side):
    task = tasks.create_task("smnist", horizon=horizon, batch_size=6, eval_size=10)
    assert task.seq_len == horizon and task.input_size == 1 and task.output_size == 10
    # the raw images, read independently through tfds' own API
    raw = tfds.data_source("mnist", split="test", download=False)
    images = np.stack([np.asarray(raw[i]["image"])[..., 0] for i in range(10)])
    labels = np.array([int(raw[i]["label"]) for i in range(10)])

    ev = task.eval_batch()
    x, y, mask = _np(ev)
    assert x.shape == (10, horizon, 1) and y.shape == (10, horizon) and mask.shape == (10, horizon)
    np.testing.assert_array_equal(y[:, -1], labels)
    np.testing.assert_array_equal(mask.sum(1), 1)
    mean, std = float(task.arrays()["mean"]), float(task.arrays()["std"])
    for i in range(10):
        expected = (_pool_reference(images[i], side) / 255.0 - mean) / std
        np.testing.assert_allclose(x[i, :, 0], expected, rtol=1e-5, atol=1e-5)

    batch = task.sample(task.arrays(), jax.random.key(0))
    assert batch.inputs.shape == (6, horizon, 1)
    assert _same(batch, task.sample(task.arrays(), jax.random.key(0)))
    assert float(task.metric(_perfect_logits(task, batch), batch)) == 1.0
    uniform = jnp.zeros(batch.targets.shape + (10,))
    assert float(task.loss(uniform, batch)) == pytest.approx(np.log(10.0), rel=1e-6)


def test_psmnist_fixed_permutation(mocked_mnist):
    s = tasks.create_task("smnist", horizon=196, batch_size=6, eval_size=8)
    p = tasks.create_task("psmnist", horizon=196, batch_size=6, eval_size=8)
    perm = np.asarray(p.arrays()["permutation"])
    assert sorted(perm.tolist()) == list(range(196)) and not (perm == np.arange(196)).all()
    np.testing.assert_array_equal(
        perm, np.asarray(tasks.create_task("psmnist", horizon=196).arrays()["permutation"])
    )
    other = np.asarray(
        tasks.create_task("psmnist", horizon=196, permutation_seed=1).arrays()["permutation"]
    )
    assert not np.array_equal(perm, other)
    np.testing.assert_array_equal(np.asarray(s.arrays()["permutation"]), np.arange(196))
    # the permuted inputs are the plain inputs in the permuted order, for training and eval
    key = jax.random.key(9)
    bs, bp = s.sample(s.arrays(), key), p.sample(p.arrays(), key)
    np.testing.assert_array_equal(np.asarray(bp.inputs), np.asarray(bs.inputs)[:, perm])
    np.testing.assert_array_equal(np.asarray(bp.targets), np.asarray(bs.targets))
    np.testing.assert_array_equal(
        np.asarray(p.eval_batch().inputs), np.asarray(s.eval_batch().inputs)[:, perm]
    )
    assert p.success_threshold == 0.85 and s.success_threshold == 0.9
    assert p.input_key() != s.input_key()


def test_smnist_missing_data_fails_fast_with_instructions(tmp_path, monkeypatch, no_network):
    sequential.clear_mnist_cache()
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path))
    _no_download(monkeypatch)
    for name in ("smnist", "psmnist"):
        with pytest.raises(tasks.DatasetUnavailable) as info:
            tasks.create_task(name, horizon=784)
        message = str(info.value)
        assert "\n" not in message
        assert str(tmp_path) in message and "TFDS_DATA_DIR" in message and "array_record" in message
    # an explicit data_dir wins over the environment
    with pytest.raises(tasks.DatasetUnavailable, match="elsewhere"):
        tasks.create_task("smnist", horizon=49, data_dir=str(tmp_path / "elsewhere"))


@pytest.fixture
def prepared_mnist(tmp_path, no_network):
    """A small MNIST written by tfds itself as array_record files (PNG-encoded with PIL,
    since tfds' own encoder needs tensorflow), read back through the real, unmocked path."""
    from unittest import mock

    from PIL import Image
    from tensorflow_datasets.core import dataset_builder
    from tensorflow_datasets.image_classification import mnist as tfds_mnist

    rng = np.random.default_rng(0)
    data = {
        split: (rng.integers(0, 256, (n, 28, 28), dtype=np.uint8), rng.integers(0, 10, n))
        for split, n in (("train", 24), ("test", 12))
    }

    def png(image):
        buffer = io.BytesIO()
        Image.fromarray(image).save(buffer, format="PNG")
        return buffer.getvalue()

    def split_generators(self, dl_manager):
        return {split: self._generate_examples(split) for split in data}

    def generate_examples(self, split):
        images, labels = data[split]
        for i in range(len(labels)):
            yield i, {"image": png(images[i]), "label": int(labels[i])}

    with (
        mock.patch.object(tfds_mnist.MNIST, "_split_generators", split_generators),
        mock.patch.object(tfds_mnist.MNIST, "_generate_examples", generate_examples),
        mock.patch.object(
            dataset_builder.DatasetBuilder,
            "_make_download_manager",
            lambda self, **kw: mock.MagicMock(),
        ),
    ):
        tfds.builder("mnist", data_dir=str(tmp_path)).download_and_prepare(
            file_format="array_record"
        )
    sequential.clear_mnist_cache()
    yield tmp_path, data
    sequential.clear_mnist_cache()


def test_smnist_reads_real_array_record_files_without_tensorflow(prepared_mnist):
    data_dir, data = prepared_mnist
    task = tasks.create_task("smnist", horizon=784, data_dir=str(data_dir), eval_size=12)
    images, labels = (np.asarray(a) for a in (task.arrays()["images"], task.arrays()["labels"]))
    assert images.shape == (22, 784) and labels.shape == (22,)  # 24 less a twelfth (validation)

    # tfds shuffles on write: compare as sets of (label, image)
    def rows(imgs, labs):
        return sorted(
            (int(label), img.reshape(-1).tobytes()) for img, label in zip(imgs, labs, strict=True)
        )

    def raw(batch):
        x = np.asarray(batch.inputs[..., 0]) * float(task.arrays()["std"]) * 255
        return np.rint(x + float(task.arrays()["mean"]) * 255).astype(np.uint8)

    val = task.eval_batch("validation")
    assert val.inputs.shape == (2, 784, 1)
    # training and validation images together are the training split, with no overlap
    both = rows(images, labels) + rows(raw(val), np.asarray(val.targets[:, -1]))
    assert sorted(both) == rows(*data["train"])
    ev = task.eval_batch()
    assert ev.inputs.shape == (12, 784, 1)
    assert rows(raw(ev), np.asarray(ev.targets[:, -1])) == rows(*data["test"])


def test_smnist_tfrecord_files_without_tensorflow_say_what_to_do(prepared_mnist, monkeypatch):
    """Data prepared as tfrecord (tfds' default) need tensorflow; without it, a clear skip."""
    import importlib.util

    if importlib.util.find_spec("tensorflow") is not None:
        pytest.skip("tensorflow is installed: tfrecord files are read through it")
    data_dir, _ = prepared_mnist
    info = next(data_dir.glob("mnist/*/dataset_info.json"))
    info.write_text(info.read_text().replace('"array_record"', '"tfrecord"'))
    _no_download(monkeypatch)
    with pytest.raises(tasks.DatasetUnavailable) as err:
        tasks.create_task("smnist", horizon=49, data_dir=str(data_dir))
    message = str(err.value)
    assert "\n" not in message
    assert "tfrecord" in message and "tensorflow" in message and "array_record" in message
