"""The tasks of issue 18: adding, selective_copy, associative_recall, sdigits.

Targets are checked against independent numpy readings of the inputs, losses against
hand-computed values, and each task against a predictor whose memory is too short: it must
stay below the success threshold, so no task leaks its answer to a short memory.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import tasks
import zoo
from tasks.base import Batch


def _np(batch: Batch):
    return tuple(np.asarray(a) for a in batch)


def _one_compilation(task_a, task_b, key=0):
    """Sample both tasks (other horizons) through one jitted function; return the batches."""
    assert task_a.static_key() == task_b.static_key()
    sample = jax.jit(task_a.sample)
    batches = [_np(sample(t.arrays(), jax.random.key(key))) for t in (task_a, task_b)]
    assert sample._cache_size() == 1
    return batches


# --------------------------------------------------------------------------------------
# adding
# --------------------------------------------------------------------------------------
def test_adding_targets_from_the_marked_values():
    a = tasks.create_task("adding", horizon=7, seq_len=30, batch_size=64)
    b = tasks.create_task("adding", horizon=29, seq_len=30, batch_size=64)
    assert a.input_size == 2 and a.output_size == 1 and a.target_kind == "real"
    for (x, y, mask), h in zip(_one_compilation(a, b), (7, 29), strict=True):
        assert x.shape == (64, 30, 2) and y.shape == (64, 30, 1) and mask.shape == (64, 30)
        np.testing.assert_array_equal(mask, np.eye(30)[[-1] * 64])  # read out at the end
        for i in range(64):
            marked = np.flatnonzero(x[i, :, 1])
            assert set(np.unique(x[i, :, 1])) == {0.0, 1.0} and len(marked) == 2
            assert marked[0] == 29 - h  # the first marked value is `horizon` steps back
            assert 29 - h < marked[1] <= 29
            assert y[i, -1, 0] == pytest.approx(x[i, marked[0], 0] + x[i, marked[1], 0])
            assert (y[i, :-1] == 0).all()
        assert (0 <= x[..., 0]).all() and (x[..., 0] < 1).all()


def test_adding_loss_by_hand_and_chance():
    task = tasks.create_task("adding", horizon=3, seq_len=4)
    targets = np.zeros((2, 4, 1), np.float32)
    targets[:, -1, 0] = [0.5, 1.5]
    mask = np.tile(np.array([0, 0, 0, 1], np.float32), (2, 1))
    batch = Batch(inputs=np.zeros((2, 4, 2), np.float32), targets=targets, mask=mask)
    ones = jnp.ones((2, 4, 1))  # errors 0.5 and 0.5 at the read-out; other steps don't count
    assert float(task.loss(ones, batch)) == pytest.approx(0.25)
    assert float(task.metric(ones + 100 * (1 - mask[..., None]), batch)) == pytest.approx(0.25)
    assert task.chance_level == pytest.approx(1 / 6) and task.success_threshold == 0.01
    assert not task.higher_is_better and task.solved(0.0) and not task.solved(1 / 12)


def test_adding_short_memory_stays_above_the_threshold():
    """The best predictor from the last k <= horizon inputs misses the first value:
    E[u_a + u_b | window] is u_b + 0.5 (or 1), so its MSE is at least Var(u_a) = 1/12."""
    h = 40
    task = tasks.create_task("adding", horizon=h, seq_len=60, eval_size=2048)
    x, y, _mask = _np(task.eval_batch())
    target = y[:, -1, 0]
    for k in (1, h // 2, h):
        window = x[:, -k:]
        seen = np.sum(window[..., 0] * window[..., 1], axis=1)
        n_seen = window[..., 1].sum(axis=1)
        assert (n_seen <= 1).all()  # the first marker is never inside the window
        best = seen + 0.5 * (2 - n_seen)
        mse = float(np.mean((best - target) ** 2))
        assert mse > 0.07 and not task.solved(mse)
    constant = float(task.metric(jnp.ones_like(y), task.eval_batch()))
    assert constant == pytest.approx(task.chance_level, abs=0.02)
    # with both values remembered the answer is exact
    assert float(task.metric(jnp.asarray(y), task.eval_batch())) == 0.0


# --------------------------------------------------------------------------------------
# selective copy
# --------------------------------------------------------------------------------------
def _selective_reference(tokens: np.ndarray, seq_len: int, n: int, h: int, vocab: int):
    """Targets by reading the token sequence: the data tokens of the stretch, in order."""
    out = []
    for row in tokens:
        stretch = row[seq_len - n - h : seq_len - n]
        assert (row[: seq_len - n - h] == 0).all() and (row[seq_len - n :] == vocab + 1).all()
        data = stretch[stretch > 0]
        assert len(data) == n and (data <= vocab).all()
        out.append(data - 1)
    return np.array(out)


def test_selective_copy_targets_are_the_scattered_tokens_in_order():
    a = tasks.create_task("selective_copy", horizon=10, seq_len=40, vocab_size=5, n_copy=3)
    b = tasks.create_task("selective_copy", horizon=37, seq_len=40, vocab_size=5, n_copy=3)
    assert a.input_size == 7 and a.output_size == 5 and a.target_kind == "categorical"
    for (x, y, mask), h in zip(_one_compilation(a, b), (10, 37), strict=True):
        assert x.shape == (16, 40, 7) and (x.sum(-1) == 1).all()  # one-hot
        tokens = x.argmax(-1)
        expected = _selective_reference(tokens, 40, 3, h, 5)
        np.testing.assert_array_equal(y[:, -3:], expected)
        np.testing.assert_array_equal(mask, np.tile((np.arange(40) >= 37) * 1.0, (16, 1)))
    # the tokens range over the whole stretch
    ev = np.asarray(tasks.create_task("selective_copy", horizon=20, seq_len=40).eval_batch().inputs)
    positions = np.argwhere((ev.argmax(-1) >= 1) & (ev.argmax(-1) <= 8))[:, 1]
    assert positions.min() == 40 - 4 - 20 and positions.max() == 40 - 4 - 1


def test_selective_copy_short_memory_stays_below_the_threshold():
    """Upper bound for any predictor of the last k inputs: right on the tokens inside its
    window, chance on the others. For k < horizon it is far below 0.95."""
    h, n, vocab = 60, 4, 8
    task = tasks.create_task("selective_copy", horizon=h, seq_len=80, eval_size=512)
    tokens = np.asarray(task.eval_batch().inputs).argmax(-1)
    t_len = tokens.shape[1]
    for k, below in ((h // 4, True), (h // 2, True), (h + n, False)):
        scores = []
        for row in tokens:
            pos = np.flatnonzero((row >= 1) & (row <= vocab))
            for j, p in enumerate(pos):  # the j-th token is due at step t_len - n + j
                seen = p >= t_len - n + j - k + 1
                scores.append(1.0 if seen else 1.0 / vocab)
        bound = float(np.mean(scores))
        assert (bound < task.success_threshold) == below, (k, bound)
    assert task.chance_level == 1 / 8


def test_selective_copy_loss_and_perfect_predictor():
    task = tasks.create_task("selective_copy", horizon=12, seq_len=20, vocab_size=6, n_copy=2)
    ev = task.eval_batch()
    uniform = jnp.zeros(ev.targets.shape + (6,))
    assert float(task.loss(uniform, ev)) == pytest.approx(np.log(6.0), rel=1e-6)
    perfect = 10.0 * jax.nn.one_hot(ev.targets, 6)
    assert float(task.metric(perfect, ev)) == 1.0 and task.solved(1.0)
    assert float(task.loss(perfect, ev)) < 1e-3


# --------------------------------------------------------------------------------------
# associative recall
# --------------------------------------------------------------------------------------
def _recall_reference(tokens: np.ndarray, n: int, k: int, h: int):
    """Read each sequence: the key -> value map of the pairs, then look up every query."""
    t_len = tokens.shape[1]
    out = []
    for row in tokens:
        body = row[: t_len - n]
        pairs = np.flatnonzero(body)
        assert len(pairs) == 2 * n and (np.diff(pairs) == 1).all()
        assert pairs[-1] == t_len - n - h  # the last value, `horizon` steps before a query
        keys, values = body[pairs[0::2]], body[pairs[1::2]]
        assert ((1 <= keys) & (keys <= k)).all() and ((k < values) & (values <= 2 * k)).all()
        assert len(set(keys)) == n and len(set(values)) == n
        table = dict(zip(keys.tolist(), values.tolist(), strict=True))
        queries = row[t_len - n :]
        assert sorted(queries.tolist()) == sorted(keys.tolist())  # each key queried once
        out.append([table[q] - k - 1 for q in queries])
    return np.array(out)


def test_associative_recall_targets_by_lookup():
    a = tasks.create_task("associative_recall", horizon=1, seq_len=30, vocab_size=10, n_pairs=3)
    b = tasks.create_task("associative_recall", horizon=22, seq_len=30, vocab_size=10, n_pairs=3)
    assert a.input_size == 11 and a.output_size == 5 and a.chance_level == 0.2
    orders = set()
    for (x, y, mask), h in zip(_one_compilation(a, b), (1, 22), strict=True):
        assert (x.sum(-1) == 1).all()
        tokens = x.argmax(-1)
        np.testing.assert_array_equal(y[:, -3:], _recall_reference(tokens, 3, 5, h))
        np.testing.assert_array_equal(mask, np.tile((np.arange(30) >= 27) * 1.0, (16, 1)))
        first_keys = tokens[:, np.flatnonzero(tokens[0])[0]]
        orders |= {tuple(tokens[i, -3:] == first_keys[i]) for i in range(16)}
    assert len(orders) > 1  # the queries come in varying orders: no delay line answers them


def test_associative_recall_short_memory_sees_no_value():
    """At every query, the last `horizon` inputs hold no value token: a model remembering
    fewer steps has nothing to go on (values are independent of keys), so it is at chance."""
    h = 25
    task = tasks.create_task("associative_recall", horizon=h, seq_len=60, eval_size=256)
    tokens = np.asarray(task.eval_batch().inputs).argmax(-1)
    n_keys = task.vocab_size // 2
    for t in range(60 - task.n_pairs, 60):
        window = tokens[:, t - h + 1 : t + 1]
        assert not (window > n_keys).any()
    # and `horizon` is exactly the reach needed: one step further back, the first query sees
    # the last value
    assert (tokens[:, 60 - task.n_pairs - h] > n_keys).all()


def test_associative_recall_loss_and_perfect_predictor():
    task = tasks.create_task("associative_recall", horizon=5, seq_len=24)
    ev = task.eval_batch()
    uniform = jnp.zeros(ev.targets.shape + (8,))
    assert float(task.loss(uniform, ev)) == pytest.approx(np.log(8.0), rel=1e-6)
    perfect = 10.0 * jax.nn.one_hot(ev.targets, 8)
    assert float(task.metric(perfect, ev)) == 1.0
    assert not task.solved(task.chance_level)


# --------------------------------------------------------------------------------------
# sequential digits
# --------------------------------------------------------------------------------------
def test_sdigits_splits_pixels_and_blank_steps():
    from sklearn.datasets import load_digits

    raw = load_digits()
    plain = tasks.create_task("sdigits", horizon=6)
    assert plain.seq_len == 70 and plain.input_size == 1 and plain.output_size == 10
    mean, std = float(plain.arrays()["mean"]), float(plain.arrays()["std"])
    rows = {r.tobytes(): i for i, r in enumerate(raw.data.astype(np.int64))}

    def indices(x: np.ndarray) -> list[int]:
        pixels = np.rint((x[:, :64, 0] * std + mean) * 16).astype(np.int64)
        return [rows[p.tobytes()] for p in pixels]

    found = {}
    for split in ("validation", "test"):
        x, y, mask = _np(plain.eval_batch(split))
        assert x.shape == (360, 70, 1) and (x[:, 64:] == 0).all() and (mask[:, -1] == 1).all()
        found[split] = indices(x)
        np.testing.assert_array_equal(y[:, -1], raw.target[found[split]])
    pool = np.asarray(plain.arrays()["x"])[..., None]
    found["train"] = indices((pool - mean) / std)
    assert len(found["train"]) == 1077
    assert sorted(sum(found.values(), [])) == list(range(1797))  # disjoint, and all of them
    train_pixels = raw.data[found["train"]] / 16
    assert mean == pytest.approx(train_pixels.mean(), rel=1e-5)
    assert std == pytest.approx(train_pixels.std(), rel=1e-5)

    permuted = tasks.create_task("sdigits", horizon=6, permute=True)
    perm = np.asarray(permuted.arrays()["permutation"])
    assert sorted(perm.tolist()) == list(range(64)) and (perm != np.arange(64)).any()
    np.testing.assert_array_equal(
        np.asarray(permuted.eval_batch().inputs)[:, :64],
        np.asarray(plain.eval_batch().inputs)[:, perm],
    )
    assert permuted.input_key() != plain.input_key()
    assert permuted.static_key() == plain.static_key()


def test_sdigits_short_memory_guesses_a_constant():
    task = tasks.create_task("sdigits", horizon=10)
    x, y, _ = _np(task.eval_batch())
    assert (x[:, -10:] == 0).all()  # k <= horizon last inputs: the same for every digit
    best_constant = np.bincount(y[:, -1], minlength=10).max() / len(y)
    assert best_constant < 0.15 and not task.solved(best_constant)
    assert task.chance_level == 0.1 and task.success_threshold == 0.8
    assert tasks.create_task("sdigits", horizon=10, permute=True).success_threshold == 0.7
    uniform = jnp.zeros(y.shape + (10,))
    assert float(task.loss(uniform, task.eval_batch())) == pytest.approx(np.log(10.0), rel=1e-6)


# --------------------------------------------------------------------------------------
# options and the architecture contract
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "name, options, message",
    [
        ("adding", dict(horizon=300), "adding: horizon must be an integer in [1, seq_len-1]"),
        ("adding", dict(horizon=5, success_threshold=0.2), "success_threshold must be"),
        ("selective_copy", dict(horizon=3), "horizon must be an integer in [n_copy, seq_len-n_c"),
        ("selective_copy", dict(horizon=4, seq_len=6), "seq_len must be at least 2 * n_copy = 8"),
        ("associative_recall", dict(horizon=5, vocab_size=9), "vocab_size must be even"),
        ("associative_recall", dict(horizon=5, n_pairs=9), "n_pairs must be an integer in [1, voc"),
        ("associative_recall", dict(horizon=290), "[1, seq_len-3*n_pairs+1] = [1, 289]"),
        ("sdigits", dict(horizon=0, permute="yes"), "sdigits: permute must be true or false"),
        ("sdigits", dict(horizon=-1), "sdigits: horizon must be an integer in [0,"),
    ],
)
def test_bad_options(name, options, message):
    with pytest.raises(tasks.TaskConfigError) as info:
        tasks.create_task(name, **options)
    assert message in str(info.value) and "\n" not in str(info.value)


@pytest.mark.slow  # builds and runs a model per task (seconds each on a loaded CPU)
@pytest.mark.parametrize(
    "name, horizon, options",
    [
        ("adding", 5, dict(seq_len=12, batch_size=2)),
        ("selective_copy", 6, dict(seq_len=12, batch_size=2)),
        ("associative_recall", 3, dict(seq_len=16, batch_size=2)),
        ("sdigits", 0, dict(batch_size=2)),
    ],
)
def test_an_architecture_runs_the_task_unchanged(name, horizon, options):
    """One-hot in, logits (or a value) out: a registered model needs only the task's sizes."""
    task = tasks.create_task(name, horizon=horizon, **options)
    model = zoo.create_architecture(
        "gru", input_size=task.input_size, hidden_size=8, output_size=task.output_size,
        rngs=nnx.Rngs(0),
    )
    batch = task.sample(task.arrays(), jax.random.key(0))
    outputs = model(batch.inputs)
    assert outputs.shape == (*batch.inputs.shape[:2], task.output_size)
    assert np.isfinite(float(task.loss(outputs, batch)))
    assert np.isfinite(float(task.metric(outputs, batch)))
