"""The train loop under the protocol of issue 15: equal-compute runs, learning curves (resumed
exactly), the validation split for stopping with the test split reported, n_params."""

from __future__ import annotations

import dataclasses

import pytest

from zoo.architectures.stack import count_params
from zoo.bench.checkpoint import load_trained_model
from zoo.bench.spec import build_model, build_task
from zoo.bench.suite import parse_suite
from zoo.bench.train import Interrupted, train_run

# rnn on delayed copy at delay 2 solves at step 40 of 60 with these settings (lr 1e-2, clip 0.03).
RAW = {
    "seeds": 1, "archs": ["rnn"],
    "defaults": {"hidden_size": 8, "steps": 60, "eval_every": 20, "lr": 1e-2, "checkpoint_every": 1},
    "experiments": [{"task": "delayed_copy", "horizons": [2],
                     "options": {"seq_len": 16, "eval_size": 64, "success_threshold": 0.99}}],
}


def spec_with(**train):
    spec = parse_suite(RAW, name="t").runs[0]
    return dataclasses.replace(spec, train=dataclasses.replace(spec.train, **train))


def test_stop_at_success_false_trains_every_step_and_records_steps_to_success(tmp_path):
    early = train_run(spec_with(), tmp_path / "early")
    full = train_run(spec_with(stop_at_success=False), tmp_path / "full")
    assert early.status == "solved" and early.steps_trained == early.steps_to_success < 60
    assert full.steps_trained == 60
    assert full.steps_to_success == early.steps_to_success  # the same trajectory up to there
    # One curve row per evaluation, the early run's a prefix of the full one's.
    assert [row[0] for row in full.curve] == [20, 40, 60]
    assert full.curve[: len(early.curve)] == early.curve
    assert len(early.curve) == early.steps_trained // 20


def test_a_resumed_run_has_the_uninterrupted_curve(tmp_path):
    spec = spec_with(stop_at_success=False)
    whole = train_run(spec, tmp_path / "whole")
    calls = {"n": 0}

    def stop_once() -> bool:
        calls["n"] += 1
        return calls["n"] == 1  # after the first evaluation

    with pytest.raises(Interrupted):
        train_run(spec, tmp_path / "cut", should_stop=stop_once)
    resumed = train_run(spec, tmp_path / "cut")
    assert resumed.curve == whole.curve
    assert (resumed.metric, resumed.val_metric, resumed.steps_to_success) == (
        whole.metric, whole.val_metric, whole.steps_to_success)


def test_validation_decides_and_test_is_reported(tmp_path):
    spec = spec_with(eval_split="validation", steps=20)  # unsolved: the two splits' metrics differ
    result = train_run(spec, tmp_path / "run")
    assert result.metric != result.val_metric
    task = build_task(spec)
    model = load_trained_model(tmp_path / "run", build_model(spec, task))
    test, validation = task.eval_batch("test"), task.eval_batch("validation")
    assert result.metric == pytest.approx(float(task.metric(model(test.inputs), test)), abs=1e-6)
    assert result.val_metric == pytest.approx(float(task.metric(model(validation.inputs), validation)), abs=1e-6)
    assert result.curve[-1][2] == result.val_metric
    assert result.success == task.solved(result.metric)


@pytest.mark.parametrize("stack", [{}, pytest.param({"depth": 2, "block": "mlp"}, marks=pytest.mark.slow)])
def test_n_params_is_the_models_count(tmp_path, stack):
    spec = spec_with(steps=20, **stack)
    result = train_run(spec, tmp_path / "run")
    assert result.n_params == count_params(build_model(spec, build_task(spec)))
    if not stack:  # tanh RNN, N = 8, one input, one output: W, V, b, then the readout's C, d
        assert result.n_params == 8 * 8 + 1 * 8 + 8 + 8 * 1 + 1


def test_curve_train_loss_is_the_mean_over_each_span_between_evaluations(tmp_path):
    import jax
    import numpy as np
    from flax import nnx

    from zoo.bench.steps import build_steps, make_optimizer, set_learning_rate
    from zoo.bench.train import _DATA

    spec = spec_with(stop_at_success=False)
    result = train_run(spec, tmp_path / "run")
    # The same 60 steps as one chunk: per-step losses, then their means over 1-20, 21-40, 41-60.
    task = build_task(spec)
    graphdef, params = nnx.split(build_model(spec, task))
    tx = make_optimizer(spec.train.clip)
    steps = build_steps(graphdef, task, tx)
    key = jax.random.fold_in(jax.random.key(spec.seed), _DATA)
    opt_state = set_learning_rate(tx.init(params), spec.train.lr)
    _, _, losses = steps.train(params, opt_state, task.arrays(), key, 0, n=60)
    expected = np.asarray(losses).reshape(3, 20).mean(axis=1)
    np.testing.assert_allclose([row[1] for row in result.curve], expected, rtol=1e-5)
