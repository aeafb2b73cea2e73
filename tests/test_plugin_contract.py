"""The plugin contract, exactly: a plain nnx.Module (not a zoo.RecurrentModel) with `__call__(x)`,
`state_size` and `transition(h, x)` trains, flosses, checkpoints and appears on the leaderboard,
from the command line run in this process; and a missing data set is said once per suite."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

import zoo.bench as bench
from zoo.bench.cli import main
from zoo.bench.steps import NO_H0_NOTE

DATA = Path(__file__).resolve().parent / "data"
ROOT = DATA.parents[1]

SUITE = """
description = "plain plugin"
seeds = 2
archs = ["plain_tanh"]
flossing = ["none", "pre+during"]
plugins = ["zoo_test_plain_plugin"]

[defaults]
hidden_size = 8
steps = 20
eval_every = 10

[flossing_config]
k = 4
rollout = 12
warmup = 2
pre_steps = 3
during_steps = 2
during_every = 10
during_times = 1

[[experiments]]
task = "delayed_copy"
horizons = [2]
options = { seq_len = 10 }

[[experiments]]
task = "smnist"
horizons = [49]
flossing = ["none"]
"""


@pytest.mark.slow
def test_a_plain_module_trains_flosses_checkpoints_and_ranks(tmp_path, monkeypatch, capsys):
    import zoo

    monkeypatch.syspath_prepend(str(DATA))
    suite = tmp_path / "plain.toml"
    suite.write_text(SUITE)
    out = tmp_path / "out"
    assert main(["--suite", str(suite), "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert "Traceback" not in err

    import zoo_test_plain_plugin

    assert not issubclass(zoo_test_plain_plugin.PlainTanh, zoo.RecurrentModel)
    runs, board = bench.read_results(out)
    trained = runs[runs["task"] == "delayed_copy"]
    assert len(trained) == 4 and set(trained["status"]) <= {"solved", "unsolved"}
    assert (trained["steps_trained"] > 0).all()
    # Flossed: the exponent moved between initialisation and the start of training.
    flossed = trained[trained["flossing"] == "pre+during"]
    assert (flossed["lambda1_before"] != flossed["lambda1_init"]).all()
    assert trained["lambda1_after"].map(math.isfinite).all()
    # The h0 diagnostic needs model(x, h0): left empty, with the reason in the row.
    assert trained["grad_norm_before"].isna().all() and trained["grad_norm_after"].isna().all()
    assert (trained["note"] == NO_H0_NOTE).all()
    # On the leaderboard, and its checkpoints load back into a model with the recorded metric.
    assert set(board["arch"]) == {"plain_tanh"}
    assert "plain_tanh" in (out / "leaderboard.html").read_text()
    row = trained.iloc[0]
    model, task = bench.load_trained_model(out, row["run_id"], suite=str(suite))
    # From a fresh notebook-like process: no library warnings about what the user did not do
    # (orbax's read-only notices), which the CLI's set-up would have hidden in this process.
    probe = ("import sys, zoo.bench as b; "
             f"m, t = b.load_trained_model({str(out)!r}, {row['run_id']!r}, suite={str(suite)!r}); print('ok')")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(DATA), str(ROOT)])}
    fresh = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, env=env, capture_output=True, text=True,
                           timeout=300)
    assert fresh.returncode == 0 and fresh.stdout.strip() == "ok", fresh.stderr[-2000:]
    assert "WARNING" not in fresh.stderr, fresh.stderr
    batch = task.eval_batch()
    assert float(task.metric(model(batch.inputs), batch)) == pytest.approx(row["metric"], abs=1e-5)

    # Two smnist runs skipped for want of data: the long reason is printed once.
    skipped = runs[runs["status"] == "skipped"]
    if len(skipped) == 2:  # (where MNIST is on disk they train instead)
        note = skipped["note"].iloc[0]
        assert err.count(note) == 1 and "data unavailable, as above" in err
