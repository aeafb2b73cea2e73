"""Issue 16 in the train loop: diagnostics at one fixed training step for every run, the
lambda_k and gradient-decay columns, and the cosine schedule in a run."""

from __future__ import annotations

import dataclasses
import math

import jax
import numpy as np
import pytest

from zoo import flossing
from zoo.bench.checkpoint import load_trained_model
from zoo.bench.record import DIAGNOSTIC_COLUMNS, make_row
from zoo.bench.spec import build_model, build_task
from zoo.bench.suite import parse_suite
from zoo.bench.train import _DIAG, flossing_config, train_run

# rnn on delayed copy at delay 2 solves at step 40 of 60 with these settings (tests/test_protocol_train.py).
RAW = {
    "seeds": 1, "archs": ["rnn"],
    "defaults": {"hidden_size": 8, "steps": 60, "eval_every": 20, "lr": 1e-2, "checkpoint_every": 1},
    "experiments": [{"task": "delayed_copy", "horizons": [2],
                     "options": {"seq_len": 16, "eval_size": 64, "success_threshold": 0.99}}],
}


def spec_with(**train):
    spec = parse_suite(RAW, name="t").runs[0]
    return dataclasses.replace(spec, train=dataclasses.replace(spec.train, **train))


def _diagnostics_of(spec, params_dir):
    """lyapunov_diagnostics of a run's final parameters, computed here from its checkpoint."""
    task = build_task(spec)
    model = load_trained_model(params_dir, build_model(spec, task))
    key = jax.random.fold_in(jax.random.key(spec.seed), _DIAG)
    inputs = task.sample_inputs(task.arrays(), key, flossing.DiagnosticsConfig().steps)
    return flossing.lyapunov_diagnostics(model, inputs, flossing_config(spec, model))


@pytest.mark.slow  # three short runs with their diagnostics: about 20 s on a loaded 2-core CPU
def test_fixed_diagnostics_are_those_of_the_parameters_at_the_declared_step(tmp_path):
    # Step 30 is no evaluation step (20, 40, 60): training pauses there for the diagnostics only.
    full = train_run(spec_with(stop_at_success=False, diag_at_step=30), tmp_path / "full")
    short_spec = spec_with(stop_at_success=False, steps=30)
    short = train_run(short_spec, tmp_path / "short")  # the same trajectory, ended at step 30
    at30 = _diagnostics_of(short_spec, tmp_path / "short")
    assert full.diag_step == 30
    d = full.diagnostics
    assert d["lambda1_fixed"] == pytest.approx(float(at30["lambda_1"]), abs=1e-5)
    assert d["lambdak_fixed"] == pytest.approx(float(at30["lambda_k"]), abs=1e-5)
    assert d["spread_fixed"] == pytest.approx(float(at30["lambda_spread"]), abs=1e-5)
    # NaN where the Jacobian's norm underflows within DiagnosticsConfig.lags (a contracting rnn)
    assert d["grad_decay_fixed"] == pytest.approx(float(at30["grad_decay_rate"]), abs=1e-4, nan_ok=True)
    assert short.lambda1_after == pytest.approx(d["lambda1_fixed"], abs=1e-6)
    # the pause changes nothing in training
    plain = train_run(spec_with(stop_at_success=False), tmp_path / "plain")
    assert plain.diag_step == 20  # the default: the first evaluation
    np.testing.assert_allclose(np.array(full.curve), np.array(plain.curve), rtol=1e-5)
    assert full.metric == pytest.approx(plain.metric, rel=1e-5)
    # lambdak_after and grad_decay_after of the full run, against the same computation
    end = _diagnostics_of(spec_with(stop_at_success=False, diag_at_step=30), tmp_path / "full")
    assert d["lambdak_after"] == pytest.approx(float(end["lambda_k"]), abs=1e-5)
    assert d["grad_decay_after"] == pytest.approx(float(end["grad_decay_rate"]), abs=1e-4, nan_ok=True)
    assert full.lambda1_after == pytest.approx(float(end["lambda_1"]), abs=1e-5)
    row = make_row(spec_with(stop_at_success=False, diag_at_step=30), full, "accuracy", True)
    assert row["diag_step"] == 30
    assert all(row[c] == ("" if math.isnan(d[c]) else d[c]) for c in DIAGNOSTIC_COLUMNS)


def test_a_run_that_stops_before_the_fixed_step_records_nan_and_says_so(tmp_path):
    result = train_run(spec_with(diag_at_step=60), tmp_path / "run")  # solves, and stops, at step 40
    assert result.steps_trained == 40
    assert result.diag_step is None and math.isnan(result.diagnostics["lambda1_fixed"])
    assert "*_fixed: the run ended at step 40, before diag_at_step 60" in result.note
    # Without pre-flossing, "before" is "init".
    assert result.diagnostics["lambdak_before"] == result.diagnostics["lambdak_init"]
    assert (math.isfinite(result.diagnostics["lambdak_init"])
            and math.isfinite(result.diagnostics["spread_fixed"]) is False)


@pytest.mark.slow  # two short runs: about 15 s on a loaded 2-core CPU
def test_a_cosine_run_is_optax_adam_with_cosine_decay(tmp_path):
    """The run's parameters after T steps against a plain optax loop over the same batches."""
    import optax
    from flax import nnx

    from zoo.bench.steps import clip_per_array
    from zoo.bench.train import _DATA

    # 20 steps in one chunk: the constant-rate run below is then the program test_protocol_train.py compiled.
    spec = spec_with(stop_at_success=False, steps=20, eval_every=20, schedule="cosine")
    train_run(spec, tmp_path / "run")
    task = build_task(spec)
    ran = nnx.state(load_trained_model(tmp_path / "run", build_model(spec, task)), nnx.Param)

    graphdef, params = nnx.split(build_model(spec, task))
    tx = optax.chain(clip_per_array(spec.train.clip), optax.inject_hyperparams(optax.adam)(
        learning_rate=optax.cosine_decay_schedule(spec.train.lr, spec.train.steps)))
    state, arrays = tx.init(params), task.arrays()
    key = jax.random.fold_in(jax.random.key(spec.seed), _DATA)
    loss = lambda p, b: task.loss(nnx.merge(graphdef, p)(b.inputs), b)  # noqa: E731

    @jax.jit  # one plain optax step, compiled once for the loop
    def optax_step(params, state, batch):
        updates, state = tx.update(jax.grad(loss)(params, batch), state, params)
        return optax.apply_updates(params, updates), state

    for step in range(spec.train.steps):
        params, state = optax_step(params, state, task.sample(arrays, jax.random.fold_in(key, step)))
    constant = spec_with(stop_at_success=False, steps=20, eval_every=20)
    train_run(constant, tmp_path / "constant")
    other = nnx.state(load_trained_model(tmp_path / "constant", build_model(constant, task)), nnx.Param)
    ours, ref, const = (jax.tree.leaves(t) for t in (ran, nnx.state(nnx.merge(graphdef, params), nnx.Param), other))
    for a, b in zip(ours, ref, strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-4, atol=1e-6)
    assert max(float(np.abs(np.asarray(a) - np.asarray(c)).max()) for a, c in zip(ours, const, strict=True)) > 1e-3
