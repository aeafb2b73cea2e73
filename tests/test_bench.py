"""The harness end to end: a tiny suite runs, survives a kill, resumes, and reports each run once."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from zoo.bench.outdir import OutputLock
from zoo.bench.suite import ConfigError, load_suite, parse_suite

pytestmark = pytest.mark.slow  # end to end: each test runs the CLI on a tiny suite

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "tests" / "data" / "tiny.toml"


def bench(*args: str, env_extra: dict | None = None, **kwargs) -> subprocess.Popen:
    env = {**os.environ, **(env_extra or {})}
    return subprocess.Popen(
        [sys.executable, "-m", "zoo.bench", *args], cwd=ROOT, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs,
    )


def run_bench(*args: str, timeout: float = 400) -> subprocess.CompletedProcess:
    proc = bench(*args)
    out, err = proc.communicate(timeout=timeout)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path) as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    """The tiny suite run once, uninterrupted."""
    out = tmp_path_factory.mktemp("reference")
    done = run_bench("--suite", str(TINY), "--out", str(out))
    assert done.returncode == 0, done.stderr
    return out


def test_tiny_suite_writes_the_three_files(reference: Path) -> None:
    rows = read_csv(reference / "runs.csv")
    suite = load_suite(str(TINY))
    assert sorted(r["run_id"] for r in rows) == sorted(s.run_id for s in suite.runs)
    assert len(rows) == 2 * 2 * 2  # archs x horizons x flossing modes (one seed)
    assert {r["status"] for r in rows} <= {"solved", "unsolved", "diverged"}
    board = read_csv(reference / "leaderboard.csv")
    assert len(board) == 2 * 2 * 2
    assert sum(int(b["n_runs"]) for b in board) == len(rows)
    html = (reference / "leaderboard.html").read_text()
    assert "<svg" in html and "delayed_copy" in html
    # Flossing is applied: lambda_1 changes between init and the start of training (that it
    # moves toward 0 is tested on known dynamics in test_flossing.py).
    flossed = [r for r in rows if r["flossing"] == "pre+during"]
    assert all(r["lambda1_init"] != r["lambda1_before"] for r in flossed)
    plain = [r for r in rows if r["flossing"] == "none"]
    assert all(r["lambda1_init"] == r["lambda1_before"] for r in plain)


def test_a_trained_model_loads_back_from_its_checkpoint(reference: Path) -> None:
    import tasks
    from zoo.bench.checkpoint import load_trained_model
    from zoo.bench.train import build_model

    rows = {r["run_id"]: r for r in read_csv(reference / "runs.csv")}
    spec = next(s for s in load_suite(str(TINY)).runs if s.arch == "gru" and s.flossing == "none")
    task = tasks.create_task(spec.task, horizon=spec.horizon, **dict(spec.task_options))
    model = load_trained_model(reference / "checkpoints" / spec.run_id, build_model(spec, task))
    batch = task.eval_batch()
    metric = float(task.metric(model(batch.inputs), batch))
    assert metric == pytest.approx(float(rows[spec.run_id]["metric"]), abs=1e-5)


def test_rerun_skips_finished_runs(reference: Path) -> None:
    before = (reference / "runs.csv").read_text()
    done = run_bench("--suite", str(TINY), "--out", str(reference))
    assert done.returncode == 0, done.stderr
    assert "8 already done" in done.stderr
    assert (reference / "runs.csv").read_text() == before


def test_killed_suite_resumes_with_each_run_once_and_identical_results(reference: Path, tmp_path: Path) -> None:
    out = tmp_path / "killed"
    proc = bench("--suite", str(TINY), "--out", str(out))
    runs_csv = out / "runs.csv"
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        if runs_csv.exists() and len(runs_csv.read_text().splitlines()) >= 4:  # header + 3 rows
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the suite finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    partial = read_csv(runs_csv)
    assert 3 <= len(partial) < 8

    done = run_bench("--suite", str(TINY), "--out", str(out))
    assert done.returncode == 0, done.stderr
    rows = read_csv(runs_csv)
    ids = [r["run_id"] for r in rows]
    assert len(ids) == len(set(ids)) == 8
    expected = {r["run_id"]: r for r in read_csv(reference / "runs.csv")}
    for row in rows:
        for column in ("status", "metric", "steps_to_success", "steps_trained", "lambda1_after"):
            assert row[column] == expected[row["run_id"]][column], (row["run_id"], column)


def test_sigint_checkpoints_and_exits_130(tmp_path: Path) -> None:
    out = tmp_path / "interrupted"
    proc = bench("--suite", str(TINY), "--out", str(out))
    runs_csv = out / "runs.csv"
    deadline = time.time() + 300
    while time.time() < deadline and not (runs_csv.exists() and runs_csv.stat().st_size > 0):
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "resume" in err
    assert "Traceback" not in err


def test_second_process_on_the_same_folder_refuses(tmp_path: Path) -> None:
    out = tmp_path / "locked"
    with OutputLock(out):
        done = run_bench("--suite", str(TINY), "--out", str(out), timeout=120)
    assert done.returncode == 2
    assert "in use" in done.stderr and "Traceback" not in done.stderr


@pytest.mark.parametrize(
    "raw, message",
    [
        ({"experiments": [{"task": "delayed_copy", "horizons": [2]}], "bogus": 1}, "unknown key 'bogus'"),
        ({"experiments": [{"task": "nope", "horizons": [2]}]}, "unknown task 'nope'"),
        ({"archs": ["nope"], "experiments": [{"task": "delayed_copy", "horizons": [2]}]},
         "unknown architecture 'nope'"),
        ({"seeds": 0, "experiments": [{"task": "delayed_copy", "horizons": [2]}]}, "seeds: must be a positive integer"),
        ({"experiments": [{"task": "delayed_copy", "horizons": [-3]}]}, "horizons: must be a non-negative number"),
        ({"experiments": [{"task": "delayed_copy", "horizons": [500]}]}, "horizon"),
        ({"defaults": {"steps": "many"}, "experiments": [{"task": "delayed_copy", "horizons": [2]}]},
         "steps: must be a positive integer"),
        ({"flossing": ["sometimes"], "experiments": [{"task": "delayed_copy", "horizons": [2]}]},
         "unknown flossing mode 'sometimes'"),
        ({"experiments": []}, "needs at least one"),
    ],
)
def test_bad_suites_are_one_line_errors(raw: dict, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_suite(raw, name="bad", archs=["rnn"])
    assert message in str(info.value)
    assert "\n" not in str(info.value)
