"""A tiny suite with [tuning], a depth-2 stack and a param_budget, end to end through the CLI."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
SUITE = ROOT / "tests" / "data" / "protocol.toml"


@pytest.mark.slow
def test_tuned_suite_end_to_end(tmp_path: Path, capsys) -> None:
    out = tmp_path / "out"
    command = [sys.executable, "-m", "zoo.bench", "--suite", str(SUITE), "--out", str(out)]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr

    tuning_runs = pd.read_csv(out / "tuning_runs.csv")
    assert len(tuning_runs) == 2 * 1 * 2 * 1  # archs x tuning horizons x lrs x tuning seeds
    assert set(tuning_runs["seed"]) == {10} and set(tuning_runs["horizon"]) == {2}
    # What the tuning runs imply by hand: per arch the rate that solved, else the better validation metric.
    implied = {}
    for arch, rows in tuning_runs.groupby("arch"):
        best = rows.sort_values(["success", "val_metric"], ascending=False).iloc[0]
        implied[arch] = best["lr"]
    assert implied == {"gru": 3e-2, "rnn": 3e-2}  # 1e-6 leaves the model where it started
    table = pd.read_csv(out / "tuning.csv")
    assert list(table.columns) == ["arch", "task", "flossing", "lr", "score", "chosen"]
    assert table[table["chosen"]].set_index("arch")["lr"].to_dict() == implied

    runs = pd.read_csv(out / "runs.csv")
    assert len(runs) == 2 * 2 * 2  # archs x horizons x seeds
    assert set(runs["seed"]) == {0, 1} and (runs["lr"] == 3e-2).all()
    assert set(runs["eval_split"]) == {"validation"} and runs["val_metric"].notna().all()
    gru, rnn = runs[runs["arch"] == "gru"], runs[runs["arch"] == "rnn"]
    assert (gru["depth"] == 2).all() and (gru["block"] == "glu").all() and (gru["clip"] == 0).all()
    assert (abs(gru["n_params"] - 1000) <= 100).all() and (gru["hidden_size"] != 8).all()
    assert (rnn["hidden_size"] == 8).all() and (rnn["n_params"] == 89).all()  # 8*8 + 8 + 8 + 8 + 1

    board = pd.read_csv(out / "leaderboard.csv")
    assert {"lr", "ci_low", "ci_high", "p_mcnemar"} <= set(board.columns) and (board["lr"] == 3e-2).all()
    assert ((board["ci_low"] <= board["success_rate"]) & (board["success_rate"] <= board["ci_high"])).all()
    page = (out / "leaderboard.html").read_text()
    assert ">lr</th>" in page and ">0.03<" in page  # the chosen rate is on the page
    breaks = pd.read_csv(out / "horizons.csv")
    assert list(breaks.columns)[:7] == ["arch", "task", "flossing", "h50", "h50_low", "h50_high", "bracketed"]
    assert len(breaks) == 2

    # curves.csv: one row per evaluation (every 20 steps and the last), for every run of both phases.
    curves = pd.read_csv(out / "curves.csv")
    every = pd.concat([runs, tuning_runs])
    counts = curves.groupby("run_id").size()
    for run_id, trained in zip(every["run_id"], every["steps_trained"]):
        assert counts[run_id] == math.ceil(trained / 20), run_id
    assert set(counts.index) == set(every["run_id"])

    # A reported run (its rate the tuned one) and a tuning run load back from their checkpoints.
    import zoo.bench as bench

    for row in (runs.iloc[0], tuning_runs.iloc[0]):
        model, task = bench.load_trained_model(out, row["run_id"], suite=str(SUITE))
        batch = task.eval_batch("test")
        assert float(task.metric(model(batch.inputs), batch)) == pytest.approx(row["metric"], abs=1e-5)

    # The rerun through the CLI's main in this process (the command above ran in a process of its own).
    from zoo.bench.cli import main

    capsys.readouterr()
    assert main(command[3:]) == 0
    err = capsys.readouterr().err
    assert "4 runs, 4 already done" in err and "8 runs, 8 already done" in err
    assert pd.read_csv(out / "curves.csv").equals(curves)
