"""The harness end to end, through the CLI's main in this process: a tiny suite writes its three
files, a trained model loads back, and a rerun skips what is done. The same command in processes
of its own (SIGINT, SIGKILL and resume, a second process on one folder) is tests/test_reliability.py."""

from __future__ import annotations

import contextlib
import csv
import io
from pathlib import Path

import pytest

from zoo.bench.cli import main
from zoo.bench.suite import ConfigError, load_suite, parse_suite

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "tests" / "data" / "tiny.toml"


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path) as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    """The tiny suite run once, uninterrupted."""
    out = tmp_path_factory.mktemp("reference")
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        rc = main(["--suite", str(TINY), "--out", str(out)])
    assert rc == 0, err.getvalue()[-3000:]
    assert "Traceback" not in err.getvalue()
    return out


@pytest.mark.slow  # end to end: the suite trains 8 small runs
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


@pytest.mark.slow
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


@pytest.mark.slow
def test_rerun_skips_finished_runs(reference: Path, capsys) -> None:
    before = (reference / "runs.csv").read_text()
    assert main(["--suite", str(TINY), "--out", str(reference)]) == 0
    assert "8 already done" in capsys.readouterr().err
    assert (reference / "runs.csv").read_text() == before


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
