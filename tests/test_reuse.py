"""`--reuse FOLDER`: runs another suite's folder holds under the same id are copied, not trained,
and the copies are what training them would have written."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from runs_csv import WALL_TIME, assert_same_runs, rows_by_run
from zoo.bench.cli import main
from zoo.bench.curves import read_curves
from zoo.bench.runner import run_suite
from zoo.bench.suite import load_suite

SUITE = """
description = "reuse: one delay, tuned over two rates"
seeds = 2
archs = {archs}

[defaults]
hidden_size = 4
steps = 2
eval_every = 1

[tuning]
lrs = [1e-3, 1e-2]
seeds = [9]

[[experiments]]
task = "delayed_copy"
horizons = [4]
options = {{ seq_len = 16, eval_size = 16 }}
"""


def _suite(tmp_path: Path, name: str, archs: list[str]):
    path = tmp_path / f"{name}.toml"
    path.write_text(SUITE.format(archs=str(archs).replace("'", '"')))
    return load_suite(str(path))


@pytest.mark.slow  # three small suites
def test_a_suite_copies_the_runs_another_folder_holds_and_trains_the_rest(tmp_path: Path):
    first = tmp_path / "first"
    assert run_suite(_suite(tmp_path, "first", ["rnn"]), first, keep_checkpoints=False, stream=io.StringIO()) == 4
    wider = _suite(tmp_path, "wider", ["rnn", "gru"])
    log = io.StringIO()
    reused = tmp_path / "reused"
    # rnn's 2 tuning and 2 reported runs are first's; only gru's 2 + 2 train.
    assert run_suite(wider, reused, keep_checkpoints=False, stream=log, reuse=[first]) == 4
    assert f"wider tuning: 4 runs, 2 already done (2 copied from {first})" in log.getvalue()
    assert f"wider: 4 runs, 2 already done (2 copied from {first})" in log.getvalue()
    copied = {i: r for i, r in rows_by_run(reused / "runs.csv").items() if r["arch"] == "rnn"}
    original = rows_by_run(first / "runs.csv")
    assert sorted(copied) == sorted(original)
    for run_id, row in copied.items():  # the same row under this suite's name, its wall time included
        assert row == {**original[run_id], "suite": "wider"}
    def curves_of(folder):
        return read_curves(folder / "curves.csv").sort_values(["run_id", "step"]).reset_index(drop=True)
    mine = curves_of(reused)
    assert mine[mine.run_id.isin(copied)].reset_index(drop=True).equals(
        curves_of(first)[lambda c: c.run_id.isin(copied)].reset_index(drop=True))
    # What training every run gives, the copies included (all but the wall time and suite name).
    fresh = tmp_path / "fresh"
    assert run_suite(wider, fresh, keep_checkpoints=False, stream=io.StringIO()) == 8
    for name in ("runs.csv", "tuning_runs.csv"):
        assert_same_runs(reused / name, fresh / name)
        assert {r["suite"] for r in rows_by_run(reused / name).values()} == {"wider"}
    assert WALL_TIME in next(iter(copied.values()))
    # Nothing left to copy or train on a resume.
    assert run_suite(wider, reused, keep_checkpoints=False, stream=io.StringIO(), reuse=[first]) == 0


def test_reuse_of_a_folder_without_runs_is_a_usage_error(tmp_path: Path, capsys):
    (tmp_path / "empty").mkdir()
    assert main(["--suite", "quick", "--out", str(tmp_path / "out"), "--reuse", str(tmp_path / "empty")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.splitlines() == [err] and err.startswith(f"error: --reuse {tmp_path / 'empty'}: no runs.csv")
    assert not (tmp_path / "out").exists()


def test_lru_ablation_shares_its_three_rungs_with_zucchet_orvieto():
    # Its linear, complex_diagonal and lru runs are zucchet_orvieto's (reruns/run.sh reuses
    # them): the same tuning runs, and with the same choice the same reported runs.
    import pandas as pd

    from zoo.bench.tuning import apply_choice

    ladder, paper = load_suite("lru_ablation"), load_suite("zucchet_orvieto")
    shared = {"linear", "complex_diagonal", "lru"}
    def tuning(suite):
        return {r.run_id for r in suite.tuning if r.arch in shared}
    assert tuning(ladder) == tuning(paper) and len(tuning(ladder)) == 60
    choice = pd.DataFrame([{"arch": a, "task": "teacher_student", "flossing": "none", "lr": 3e-3, "score": 1,
                            "chosen": True} for a in (*shared, "lru_exp")])
    def reported(suite):
        return {r.run_id for r in apply_choice(suite, choice).runs if r.arch in shared}
    assert reported(ladder) < reported(paper) and len(reported(ladder)) == 3 * 4 * 5  # 4 of 7 nu0, 5 seeds
