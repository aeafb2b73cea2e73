"""Paths of the bench that a plain suite run does not check: pre-flossed starting points
shared across horizons (memory and disk), `--no-checkpoints`, the warning about rows of
another configuration, and suite expansion's errors."""

from __future__ import annotations

import csv
import dataclasses
import io
from pathlib import Path

import pytest

from zoo.bench import runner, train
from zoo.bench.cli import main
from zoo.bench.errors import ConfigError
from zoo.bench.preflossed import PREFLOSSED
from zoo.bench.suite import load_suite, parse_suite

# One compiled shape, a few seconds a run: the shapes and flossing of tests/data/tiny.toml's rnn
# runs (hidden 8, sequences of 16, 20-step chunks), whose compiled programs test_bench.py leaves.
TINY = """
description = "test_bench_paths"
seeds = {seeds}
archs = ["rnn"]
flossing = [{modes}]
[defaults]
hidden_size = 8
steps = 20
eval_every = 20
lr = 1e-2
[flossing_config]
k = 4
rollout = 20
warmup = 4
pre_steps = 5
[[experiments]]
task = "delayed_copy"
horizons = [{horizons}]
options = {{ seq_len = 16, eval_size = 64, success_threshold = 0.99 }}
"""
COMPARED = ("status", "metric", "steps_to_success", "steps_trained", "lambda1_init", "lambda1_before",
            "lambda1_after", "grad_norm_before", "grad_norm_after")


def tiny_suite(folder: Path, *, seeds: int = 1, modes: str = '"none"', horizons: str = "2") -> Path:
    path = folder / "tiny_paths.toml"
    path.write_text(TINY.format(seeds=seeds, modes=modes, horizons=horizons))
    return path


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path) as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def preflossed_suite(tmp_path_factory):
    """Horizons 2 and 3 pre-flossed from a cleared store, counting the flossing phases run."""
    folder = tmp_path_factory.mktemp("preflossed")
    calls = []
    real_floss_phase = train._floss_phase

    def counting(ctx, state, phase, n):
        calls.append((ctx.spec.horizon, phase, n))
        return real_floss_phase(ctx, state, phase, n)

    PREFLOSSED.clear()  # another test may have pre-flossed the same (arch, seed, inputs)
    train._floss_phase = counting
    try:
        runner.run_suite(load_suite(str(tiny_suite(folder, modes='"pre"', horizons="2, 3"))), folder / "out",
                         stream=io.StringIO())
    finally:
        train._floss_phase = real_floss_phase
    yield folder, calls
    PREFLOSSED.clear()


@pytest.mark.slow  # end to end: a suite run (compiles flossing and training, ~10 s)
def test_runs_of_two_horizons_share_one_preflossing_in_memory_then_on_disk(preflossed_suite, monkeypatch):
    folder, calls = preflossed_suite
    out = folder / "out"
    assert calls == [(2, 0, 5)], "the second horizon must reuse the first one's pre-flossing"
    rows = read_csv(out / "runs.csv")
    assert [float(r["horizon"]) for r in rows] == [2, 3]
    assert rows[0]["lambda1_before"] == rows[1]["lambda1_before"] != rows[0]["lambda1_init"]
    assert rows[0]["lambda1_init"] == rows[1]["lambda1_init"]
    stored = list((out / "checkpoints" / "preflossed").iterdir())
    assert len(stored) == 1 and (stored[0] / "diag.json").is_file()

    # A new process (the memory cleared) takes the disk copy: flossing again would fail here.
    PREFLOSSED.clear()

    def refuse(*args):
        raise AssertionError("pre-flossed again instead of reading the disk copy")

    monkeypatch.setattr(train, "_floss_phase", refuse)
    suite = load_suite(str(tiny_suite(folder, modes='"pre"', horizons="2, 3, 4")))
    runner.run_suite(suite, out, stream=io.StringIO())
    rows = read_csv(out / "runs.csv")
    assert [float(r["horizon"]) for r in rows] == [2, 3, 4]
    assert rows[2]["lambda1_before"] == rows[0]["lambda1_before"]
    assert rows[2]["lambda1_init"] == rows[0]["lambda1_init"]


@pytest.mark.slow
def test_no_checkpoints_leaves_no_run_folders_and_the_same_results(preflossed_suite, tmp_path, capsys):
    folder, _ = preflossed_suite
    suite = tiny_suite(tmp_path, modes='"pre"', horizons="2, 3")
    kept, dropped = folder / "out", tmp_path / "dropped"
    ids = {r.run_id for r in load_suite(str(suite)).runs}
    assert ids <= {p.name for p in (kept / "checkpoints").iterdir()}  # the reference kept them
    assert main(["--suite", str(suite), "--out", str(dropped), "--no-checkpoints"]) == 0
    capsys.readouterr()
    # Only the pre-flossed starting points shared by all runs may stay.
    left = {p.name for p in (dropped / "checkpoints").iterdir()} if (dropped / "checkpoints").exists() else set()
    assert left <= {"preflossed"}
    want = {r["run_id"]: r for r in read_csv(kept / "runs.csv")}
    got = read_csv(dropped / "runs.csv")
    assert {r["run_id"] for r in got} == ids
    for row in got:
        assert {c: row[c] for c in COMPARED} == {c: want[row["run_id"]][c] for c in COMPARED}


# --------------------------------------------------------------------------- rows of another configuration


def row_of(spec) -> dict[str, str]:
    return {"run_id": spec.run_id, "arch": spec.arch, "task": spec.task, "horizon": f"{spec.horizon}",
            "flossing": spec.flossing, "seed": str(spec.seed), "status": "solved"}


def edited(spec, steps: int = 30):
    """The same run under an edited recipe (more steps): another run id, the same slot."""
    changed = dataclasses.replace(spec, train=dataclasses.replace(spec.train, steps=steps))
    assert changed.run_id != spec.run_id
    return changed


def test_rows_of_another_configuration_of_the_same_runs_are_warned_about(tmp_path):
    now = load_suite(str(tiny_suite(tmp_path, seeds=2, horizons="2, 3"))).runs  # seeds 0-1
    before = [edited(s) for s in load_suite(str(tiny_suite(tmp_path, seeds=3, horizons="3"))).runs]
    # Horizon 3, seeds 0 and 1 are this suite's slots under another configuration; seed 2 is not.
    finished = {s.run_id: row_of(s) for s in [*before, now[0]]}
    stream = io.StringIO()
    runner._warn_other_configurations(now, finished, stream)
    text = stream.getvalue()
    assert text.startswith("warning: runs.csv holds 2 run(s) of another configuration"), text
    assert before[0].run_id in text and text.count("\n") == 1

    quiet = io.StringIO()  # this suite's own rows, and a row of another slot, are no warning
    runner._warn_other_configurations(now, {s.run_id: row_of(s) for s in [*now, before[2]]}, quiet)
    assert quiet.getvalue() == ""


# --------------------------------------------------------------------------- suite expansion's errors


def raw_suite(**experiments_extra) -> dict:
    return {
        "archs": ["rnn"], "flossing": ["none"], "defaults": {"hidden_size": 8, "steps": 10},
        "experiments": [{"task": "delayed_copy", "horizons": [2, 3], "options": {"seq_len": 12}}],
        **experiments_extra,
    }  # fmt: skip


def test_two_experiments_describing_the_same_run_are_an_error():
    raw = raw_suite()
    raw["experiments"].append({"task": "delayed_copy", "horizons": [3, 4], "options": {"seq_len": 12}})
    with pytest.raises(ConfigError, match=r"^s: two experiments describe the same run"):
        parse_suite(raw, name="s", validate_models=False)
    raw["experiments"][1]["horizons"] = [4, 5]  # no shared run: fine
    assert len(parse_suite(raw, name="s", validate_models=False).runs) == 4


@pytest.mark.parametrize("filters", [{"tasks": ["teacher_student"]}, {"tasks": []}])
def test_filters_that_leave_no_run_are_an_error(filters):
    with pytest.raises(ConfigError, match=r"^s: the filters leave no run to do"):
        parse_suite(raw_suite(), name="s", validate_models=False, **filters)
    assert parse_suite(raw_suite(), name="s", validate_models=False, tasks=["delayed_copy"]).runs
