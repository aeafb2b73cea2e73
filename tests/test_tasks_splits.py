"""Training, validation and test data of every task: disjoint, fixed, deterministic from the seed.

Sequences are compared by a hash of their inputs (rounded to 5 decimals, so that equal data
standardized by two code paths hash alike); a fault that let two splits share data would put
the same hash in both sets.
"""

from __future__ import annotations

import hashlib

import jax
import numpy as np
import pytest

import tasks
from tasks.base import Batch

# Small shapes: every task compiles its sampler once here.
GENERATED = [
    ("delayed_copy", 20, dict(seq_len=40, batch_size=32, eval_size=64)),
    ("delayed_xor", 20, dict(seq_len=40, batch_size=32, eval_size=64)),
    ("teacher_student", 10.0, dict(seq_len=40, batch_size=32, eval_size=64)),
    ("adding", 20, dict(seq_len=40, batch_size=32, eval_size=64)),
    ("selective_copy", 20, dict(seq_len=40, batch_size=32, eval_size=64)),
    ("associative_recall", 20, dict(seq_len=40, batch_size=32, eval_size=64)),
]
DATASETS = [
    ("mnist1d", 5, dict(batch_size=256)),
    ("sdigits", 5, dict(batch_size=256)),
    ("sdigits", 0, dict(batch_size=256, permute=True)),
]


def _hashes(batch: Batch) -> list[str]:
    x = np.round(np.asarray(batch.inputs, np.float64), 5)
    return [hashlib.sha1(row.tobytes()).hexdigest() for row in x]


def _training(task, seeds=(0, 1, 2), steps=4) -> list[Batch]:
    """Training batches as the harness draws them: keys folded from the run's seed and step."""
    arrays = task.arrays()
    return [
        task.sample(arrays, jax.random.fold_in(jax.random.key(seed), step))
        for seed in seeds
        for step in range(steps)
    ]


def _same(a: Batch, b: Batch) -> bool:
    return all(np.array_equal(np.asarray(x), np.asarray(y)) for x, y in zip(a, b, strict=True))


def _check_disjoint(val: Batch, test: Batch, train: list[str]) -> None:
    hv, ht = _hashes(val), _hashes(test)
    assert len(set(hv)) == len(hv) and len(set(ht)) == len(ht)
    assert not set(hv) & set(ht), "validation and test share sequences"
    assert not set(train) & set(hv), "training batches contain validation sequences"
    assert not set(train) & set(ht), "training batches contain test sequences"


@pytest.mark.parametrize("name, horizon, options", GENERATED, ids=[g[0] for g in GENERATED])
def test_generated_task_splits_disjoint_and_deterministic(name, horizon, options):
    task = tasks.create_task(name, horizon=horizon, **options)
    again = tasks.create_task(name, horizon=horizon, **options)
    val, test = task.eval_batch("validation"), task.eval_batch("test")
    assert task.eval_batch() is test  # test is the default split
    assert val.inputs.shape == test.inputs.shape == (64, 40, task.input_size)
    # fixed: another instance (another run) gets the same held-out sets
    assert _same(val, again.eval_batch("validation")) and _same(test, again.eval_batch("test"))
    train = _training(task)
    _check_disjoint(val, test, [h for b in train for h in _hashes(b)])
    # training data are deterministic from the seed and differ between seeds
    assert all(_same(a, b) for a, b in zip(train, _training(again), strict=True))
    assert not np.array_equal(np.asarray(train[0].inputs), np.asarray(train[4].inputs))


@pytest.mark.parametrize("name, horizon, options", DATASETS)
def test_dataset_task_splits_disjoint_and_deterministic(name, horizon, options):
    task = tasks.create_task(name, horizon=horizon, **options)
    val, test = task.eval_batch("validation"), task.eval_batch("test")
    # The whole training pool, standardized and padded as the batches are.
    arrays = task.arrays()
    pool = Batch(
        inputs=_pool_inputs(task, arrays), targets=np.zeros(1), mask=np.zeros(1)
    )
    train = _hashes(pool)
    _check_disjoint(val, test, train)
    # every training batch comes from the pool
    sampled = [h for b in _training(task, seeds=(0,), steps=2) for h in _hashes(b)]
    assert set(sampled) <= set(train)
    again = tasks.create_task(name, horizon=horizon, **options)
    assert _same(val, again.eval_batch("validation")) and _same(test, again.eval_batch("test"))
    assert all(_same(a, b) for a, b in zip(_training(task, (3,), 2), _training(again, (3,), 2)))


def _pool_inputs(task, arrays) -> np.ndarray:
    """All training sequences of a data-set task, as inputs (n, seq_len, 1)."""
    x = (np.asarray(arrays["x"], np.float32) - arrays["mean"]) / arrays["std"]
    x = np.asarray(x, np.float32)
    if "permutation" in arrays:
        x = x[:, np.asarray(arrays["permutation"])]
    pad = task.seq_len - x.shape[1]
    return np.pad(x, ((0, 0), (0, pad)))[..., None]


def test_unknown_split_is_a_one_line_error():
    task = tasks.create_task("delayed_copy", horizon=5, **GENERATED[0][2])
    with pytest.raises(tasks.TaskConfigError) as info:
        task.eval_batch("train")
    assert str(info.value) == (
        "delayed_copy: split must be one of 'validation', 'test', got 'train'"
    )


OFFLINE = [
    "delayed_copy", "delayed_xor", "teacher_student", "mnist1d",
    "adding", "selective_copy", "associative_recall", "sdigits",
]


@pytest.mark.parametrize("name", OFFLINE)
def test_every_task_states_chance_threshold_and_target_kind(name):
    task = tasks.create_task(name, horizon=_horizon(name))
    assert task.target_kind in ("binary", "categorical", "real")
    assert isinstance(task.chance_level, float) and isinstance(task.success_threshold, float)
    # chance never counts as success
    assert not task.solved(task.chance_level)


def _horizon(name: str):
    return {"delayed_xor": 8, "teacher_student": 10.0, "selective_copy": 16}.get(name, 8)
