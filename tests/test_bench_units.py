"""Unit tests of the bench's rooms: suite expansion, the run record, output folders, the CLI's
input handling, the comparison's statistics, colours, checkpoints and the train loop."""

from __future__ import annotations

import dataclasses
import errno
import math
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from zoo.bench import record
from zoo.bench.cli import main
from zoo.bench.compare import compare_runs, wilson
from zoo.bench.errors import ConfigError, DiskFullError
from zoo.bench.outdir import check_out_dir
from zoo.bench.plots import arch_colors
from zoo.bench.spec import RunSpec, TrainSettings
from zoo.bench.suite import _check_field, parse_suite

# The quick suite's delayed-copy experiment as it read before the bench was restructured.
QUICK_V1 = {
    "seeds": 1, "archs": ["rnn", "lru"], "flossing": ["none"],
    "defaults": {"hidden_size": 16, "steps": 100, "eval_every": 50, "lr": 3e-3, "checkpoint_every": 1},
    "flossing_config": {"k": 8, "rollout": 30, "warmup": 5, "pre_steps": 20, "during_steps": 10,
                        "during_every": 50, "during_times": 1},
    "experiments": [{"task": "delayed_copy", "horizons": [2], "options": {"seq_len": 30},
                     "flossing": ["none", "pre", "pre+during"]}],
}  # fmt: skip


# --------------------------------------------------------------------------- suite expansion


def test_run_ids_are_those_the_bench_wrote_before_the_restructuring():
    # Ids measured with the old code (python -m zoo.bench --suite quick --archs rnn,lru ...).
    runs = parse_suite(QUICK_V1, name="quick", validate_models=False).runs
    assert [r.run_id for r in runs] == [
        "rnn-delayed_copy-h2-none-s0-fa700021", "rnn-delayed_copy-h2-pre-s0-219ade17",
        "rnn-delayed_copy-h2-pre+during-s0-b5c8d421", "lru-delayed_copy-h2-none-s0-520b9f8a",
        "lru-delayed_copy-h2-pre-s0-a33c7b1c", "lru-delayed_copy-h2-pre+during-s0-6ee9b5dd",
    ]


def test_expansion_order_overrides_and_normalisation():
    raw = {
        "seeds": 2, "archs": ["rnn", "gru"], "flossing": ["none", "pre"],
        "defaults": {"lr": {"gru": 0.01}, "steps": 7},
        "flossing_config": {"pre_steps": 3},
        "experiments": [{"task": "teacher_student", "horizons": [50.0, 3.125], "steps": 9}],
    }  # fmt: skip
    runs = parse_suite(raw, name="s", validate_models=False).runs
    assert len(runs) == 2 * 2 * 2 * 2  # horizons x archs x modes x seeds
    first = runs[0]
    assert (first.horizon, first.arch, first.flossing, first.seed) == (50.0, "rnn", "none", 0)
    assert [(r.arch, r.flossing, r.seed) for r in runs[:8]] == [
        (a, m, s) for a in ("rnn", "gru") for m in ("none", "pre") for s in (0, 1)
    ]
    assert {r.train.steps for r in runs} == {9}  # the experiment's value over the defaults
    assert {r.train.lr for r in runs if r.arch == "gru"} == {0.01}
    assert {r.train.lr for r in runs if r.arch == "rnn"} == {TrainSettings().lr}
    # Flossing settings name only the runs that floss, so a "none" run's id ignores them.
    assert all(r.flossing_options == (("pre_steps", 3),) for r in runs if r.flossing == "pre")
    assert all(r.flossing_options == () for r in runs if r.flossing == "none")
    # The horizon names the run as written; the task gets it normalised once.
    assert first.run_id.startswith("rnn-teacher_student-h50-none-s0-")
    assert first.task_horizon == 50 and isinstance(first.task_horizon, int)
    assert runs[-1].task_horizon == 3.125


@dataclasses.dataclass(frozen=True)
class _Toy:
    count: int = 1
    offset: int = 0
    rate: float = 0.5
    level: float = 0.0
    shift: float = 0.0
    flag: bool = False

    def __post_init__(self):
        if self.count < 1 or self.offset < 0 or self.rate <= 0 or self.level < 0:
            raise ValueError("out of range")


@pytest.mark.parametrize("name, value, message", [
    ("count", 0, "must be a positive integer"),
    ("count", 2.0, "must be a positive integer"),
    ("offset", -1, "must be a non-negative integer"),
    ("rate", 0.0, "must be a positive number"),
    ("level", -0.1, "must be a non-negative number"),
    ("shift", float("inf"), "must be a finite number"),
    ("flag", 1, "must be true or false"),
])  # fmt: skip
def test_a_fields_type_and_range_come_from_its_dataclass(name, value, message):
    with pytest.raises(ConfigError, match=message):
        _check_field(_Toy, name, value, f"t.{name}")
    assert _check_field(_Toy, "offset", 0, "t") == 0 and _check_field(_Toy, "shift", -2, "t") == -2.0


def test_a_new_flossing_config_field_needs_no_bench_change(monkeypatch):
    from zoo import flossing

    @dataclasses.dataclass(frozen=True)
    class Wider(flossing.FlossingConfig):
        new_steps: int = 5  # as another part of the tree might add, with its own range check

        def __post_init__(self):
            super().__post_init__()
            if self.new_steps < 0:
                raise ValueError("new_steps must be >= 0")

    monkeypatch.setattr(flossing, "FlossingConfig", Wider)
    raw = {**QUICK_V1, "flossing_config": {"new_steps": 0}}
    with pytest.raises(ConfigError, match=r"quick.flossing_config.new_steps: must be a non-negative integer"):
        parse_suite({**raw, "flossing_config": {"new_steps": -1}}, name="quick", validate_models=False)
    assert parse_suite(raw, name="quick", validate_models=False).runs


# --------------------------------------------------------------------------- the run record


def _row(i: int) -> dict:
    return {c: "" for c in record.COLUMNS} | {"run_id": f"rnn-delayed_copy-h2-none-s{i}-abcdef01",
                                               "status": "solved", "seed": i, "steps_trained": 10}


def test_rows_round_trip(tmp_path):
    path = tmp_path / "runs.csv"
    for i in range(3):
        record.append_row(path, _row(i))
    rows = record.read_rows(path)
    assert list(rows) == [_row(i)["run_id"] for i in range(3)]
    assert path.read_text().splitlines()[0] == ",".join(record.COLUMNS)
    runs = record.read_runs(path)
    assert list(runs["seed"]) == [0.0, 1.0, 2.0] and list(runs.columns) == record.COLUMNS


def test_a_full_disk_leaves_the_finished_rows_intact(tmp_path, monkeypatch):
    path = tmp_path / "runs.csv"
    record.append_row(path, _row(0))
    before = path.read_bytes()

    def full(f, data):
        f.write(data[: len(data) // 2])  # part of the line made it to disk, then no space
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(record, "_write_durably", full)
    with pytest.raises(DiskFullError, match="no space left on the device to record a run"):
        record.append_row(path, _row(1))
    assert path.read_bytes() == before
    monkeypatch.undo()
    record.append_row(path, _row(1))  # the same command, once there is space again
    assert len(record.read_rows(path)) == 2


def test_a_full_disk_during_a_checkpoint_is_named(tmp_path, monkeypatch):
    from zoo.bench.checkpoint import RunCheckpoints

    def full(self, step, args):
        raise ValueError("Error writing: No space left on device [tensorstore]")

    monkeypatch.setattr(RunCheckpoints, "_write", full)
    checkpoints = RunCheckpoints(tmp_path / "run")
    with pytest.raises(DiskFullError, match="no space left on the device to checkpoint run at step 3"):
        checkpoints.save(3, {"w": np.zeros(2)}, {"step": 3})
    checkpoints.close()


def test_checkpoints_restore_the_newest_good_one(tmp_path):
    from zoo.bench.checkpoint import RunCheckpoints

    checkpoints = RunCheckpoints(tmp_path / "run")
    for step in (1, 2):
        checkpoints.save(step, {"w": np.full(3, float(step), np.float32)}, {"step": step})
    step, state, meta = checkpoints.restore_latest({"w": np.zeros(3, np.float32)})
    assert step == 2 and meta == {"step": 2} and np.array_equal(state["w"], [2, 2, 2])
    meta_file = tmp_path / "run" / "2" / "meta" / "metadata"
    meta_file.write_text(meta_file.read_text().replace("2", "7"))  # damaged after it was written
    with pytest.warns(UserWarning, match="checkpoint run/2 is damaged .*falling back to step 1"):
        step, state, _ = checkpoints.restore_latest({"w": np.zeros(3, np.float32)})
    assert step == 1 and np.array_equal(state["w"], [1, 1, 1])
    checkpoints.close()


# --------------------------------------------------------------------------- output folders and the CLI


def test_bad_output_folders_are_config_errors(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigError, match=r"--out .*file: is a file, not a folder"):
        check_out_dir(tmp_path / "file")
    with pytest.raises(ConfigError, match=r"--out .*: cannot write there"):
        check_out_dir(tmp_path / "file" / "below")
    with pytest.raises(ConfigError, match=r"--out /proc/zoo: cannot write there"):
        check_out_dir(Path("/proc/zoo"))
    if os.geteuid() != 0:  # root writes anywhere
        (tmp_path / "ro").mkdir(mode=0o500)
        with pytest.raises(ConfigError, match="cannot write there"):
            check_out_dir(tmp_path / "ro" / "out")
    assert check_out_dir(tmp_path / "a" / "b").is_dir()


@pytest.mark.parametrize("args, expected", [
    (["--suite", "quick", "--out", "/proc/zoo"], "error: --out /proc/zoo: cannot write there"),
    (["--suite", "quick", "--out", "{file}"], "is a file, not a folder"),
    (["--suite", "quick", "--out", "{file}/sub"], "cannot write there"),
    (["--suite", "quick", "--seed", "2", "--tasks", "nope"], "unrecognized arguments: --seed 2"),
    (["--suite", "quick", "--executor", "dask"], "error: --executor: unknown executor 'dask'; allowed: local, ray"),
])  # fmt: skip
def test_cli_refuses_bad_input_with_exit_2(args, expected, tmp_path, capsys):
    (tmp_path / "f").write_text("x")
    args = [a.replace("{file}", str(tmp_path / "f")) for a in args]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert expected in err and "Traceback" not in err
    if not expected.startswith("unrecognized"):  # (argparse's own errors print the usage first)
        assert len(err.strip().splitlines()) == 1


def test_help_shows_an_example_and_the_suites_with_their_size(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert "example:" in out and "python -m zoo.bench --suite quick" in out
    # Counted from its TOML: 10 seeds x 468 (arch, task, horizon, mode) cells, plus 1040 tuning runs
    # (13 archs x 8 tasks x 2 horizons x 5 rates, one seed, flossing none only); its bracket rounds
    # depend on the outcomes.
    assert "long_horizon          5720 runs + bracket rounds;" in out  # names padded to the longest
    # 13 archs x 3 tasks x 3 horizons x 10 seeds + 13 x 3 x 2 horizons x 5 rates.
    assert "long_horizon_matched  1560 runs + bracket rounds;" in out


# --------------------------------------------------------------------------- comparison and page


def test_wilson_interval_is_the_textbook_formula():
    z, n, k = 1.959963984540054, 4, 3
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    assert wilson(k, n) == pytest.approx((centre - half, centre + half), abs=1e-9)


def test_compare_tells_agreeing_differing_and_missing_cells():
    def runs(cells):
        return pd.DataFrame([
            {"run_id": f"{h}-{s}", "arch": "rnn", "task": "delayed_copy", "horizon": h, "flossing": "none",
             "seed": s, "status": "solved" if s < k else "unsolved"} for h, k, n in cells for s in range(n)
        ])  # fmt: skip
    mine = runs([(10, 5, 5), (20, 3, 5), (30, 1, 1)])
    ref = runs([(10, 0, 5), (20, 2, 5), (40, 1, 1)])
    table = compare_runs(mine, ref).set_index("horizon")
    assert table.loc[10, "verdict"] == "differ"  # [0.57, 1] against [0, 0.43]
    assert table.loc[20, "verdict"] == "agree"
    assert table.loc[30, "verdict"] == "only mine" and table.loc[40, "verdict"] == "only reference"


def test_colours_are_derived_for_any_architecture():
    ten = [f"plugin_{i}" for i in range(10)]
    colors = arch_colors(ten)
    assert len(set(colors.values())) == 10
    # A name keeps its colour when other architectures join the page (unless they take its slot first).
    alone = arch_colors(["rnn"])["rnn"]
    assert any(arch_colors(["rnn", other])["rnn"] == alone for other in ("lstm", "gru", "my_plugin"))
    eleven = arch_colors([*ten, "x"])
    assert len(set(eleven.values())) == 11 and all(c.startswith("#") and len(c) == 7 for c in eleven.values())


# --------------------------------------------------------------------------- the train loop


@pytest.mark.slow
def test_a_stopped_run_resumes_to_the_uninterrupted_result(tmp_path):
    from zoo.bench.train import Interrupted, train_run

    # tests/data/tiny.toml's rnn pre+during run (the compiled programs test_bench.py leaves).
    spec = RunSpec(suite="u", arch="rnn", task="delayed_copy", horizon=2, flossing="pre+during", seed=0,
                   train=TrainSettings(hidden_size=8, steps=60, eval_every=20, lr=1e-2, checkpoint_every=1),
                   task_options=(("eval_size", 64), ("seq_len", 16), ("success_threshold", 0.99)),
                   flossing_options=(("k", 4), ("rollout", 20), ("warmup", 4), ("pre_steps", 5),
                                     ("during_steps", 5), ("during_every", 20), ("during_times", 1)))
    whole = train_run(spec, tmp_path / "whole")
    calls = []
    with pytest.raises(Interrupted):
        train_run(spec, tmp_path / "parts", should_stop=lambda: calls.append(1) or len(calls) >= 1)
    resumed = train_run(spec, tmp_path / "parts")
    keep = lambda r: {k: v for k, v in dataclasses.asdict(r).items() if k != "wall_time_s"}  # noqa: E731
    # NaN-aware: a diagnostic may be NaN (NaN != NaN in a plain comparison).
    assert repr(keep(resumed)) == repr(keep(whole))
    assert whole.steps_trained in (20, 40, 60) and whole.status in ("solved", "unsolved")
    assert math.isfinite(whole.lambda1_init) and whole.lambda1_before != whole.lambda1_init  # pre-flossed
    assert math.isfinite(whole.grad_norm_before) and whole.note == ""


def test_archs_flag_on_a_suite_whose_experiments_split_the_architectures():
    from zoo.bench.suite import load_suite

    runs = load_suite("quick", archs=["rnn", "gru"], tasks=["delayed_copy"], validate_models=False).runs
    assert len(runs) == len({r.run_id for r in runs}) == 2 * 3 * 3  # archs x horizons x modes, each once


MINI = """
description = "a shipped suite, for this test"
archs = ["rnn"]
[defaults]
hidden_size = 8
steps = 20
eval_every = 20
lr = 1e-2
[[experiments]]
task = "delayed_copy"
horizons = [2, 3]
options = { seq_len = 16, eval_size = 64, success_threshold = 0.99 }
"""  # the shapes of tests/data/tiny.toml's rnn runs (compiled programs shared with test_bench.py)


@pytest.mark.slow
def test_a_shipped_suite_run_ends_with_the_comparison_with_its_reference(tmp_path, monkeypatch, capsys):
    from zoo.bench import outdir, suite

    configs, refs = tmp_path / "configs", tmp_path / "refs"
    configs.mkdir()
    (configs / "mini.toml").write_text(MINI)
    monkeypatch.setattr(suite, "CONFIG_DIR", configs)
    monkeypatch.setattr(outdir, "REFERENCE_ROOT", refs)
    ids = [r.run_id for r in suite.load_suite("mini", validate_models=False).runs]
    (refs / "mini").mkdir(parents=True)
    pd.DataFrame([  # a reference in which horizon 2 was solved and horizon 3 never
        {"run_id": ids[0], "suite": "mini", "arch": "rnn", "task": "delayed_copy", "horizon": 2, "flossing": "none",
         "seed": 0, "status": "solved"},
        {"run_id": ids[1], "suite": "mini", "arch": "rnn", "task": "delayed_copy", "horizon": 3, "flossing": "none",
         "seed": 0, "status": "unsolved"},
    ]).to_csv(refs / "mini" / "runs.csv", index=False)  # fmt: skip
    out = tmp_path / "mine"
    assert main(["--suite", "mini", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    # The wiring: the CLI prints the comparison's verdicts (compare_runs is tested on known answers above).
    from zoo.bench.compare import compare_folders

    agree = int((compare_folders(out, refs / "mini")["verdict"] == "agree").sum())
    assert f"compared with {refs / 'mini'}: {agree} of 2 shared" in printed
    assert "rnn (reference)" in (out / "vs_reference.html").read_text()
    assert (out / "runs.csv").is_file() and not (refs / "mini" / "leaderboard.csv").exists()  # reference untouched


# --------------------------------------------------------------------------- the runner


@pytest.mark.parametrize("raised, status, note", [
    ("data", "skipped", "MNIST is not here"),
    (np.linalg.LinAlgError("Singular matrix"), "diverged", "LinAlgError: Singular matrix"),
    (FloatingPointError("nan in tanh\nmore"), "diverged", "FloatingPointError: nan in tanh"),
    (TypeError("a bug"), None, "failed: TypeError: a bug"),
])  # fmt: skip
def test_execute_classifies_how_a_run_ended(raised, status, note, tmp_path, monkeypatch):
    import tasks
    from zoo.bench import runner

    spec = parse_suite(QUICK_V1, name="quick", validate_models=False).runs[0]

    def fail(*args, **kwargs):
        raise tasks.DatasetUnavailable("MNIST is not here\nlong details") if raised == "data" else raised

    monkeypatch.setattr(runner, "build_task" if raised == "data" else "train_run", fail)
    outcome = runner.execute(spec, tmp_path, lambda: False)
    if status is None:  # a bug: not a result, reported with its traceback
        assert "row" not in outcome and note in outcome["error"] and "Traceback" in outcome["traceback"]
        return
    row = outcome["row"]
    assert row["status"] == status and row["note"] == note and row["success"] == 0
    assert row["run_id"] == spec.run_id and row["metric"] == ""
    assert set(row) == set(record.COLUMNS)


@pytest.mark.parametrize("name", ["quick", "long_horizon", "zucchet_orvieto"])
def test_help_counts_a_suites_runs_as_the_suite_expands(name):
    import tomllib

    from zoo.bench.catalogue import count_runs
    from zoo.bench.suite import CONFIG_DIR, load_suite

    raw = tomllib.loads((CONFIG_DIR / f"{name}.toml").read_text())
    suite = load_suite(name, validate_models=False)
    assert count_runs(raw) == len(suite.runs) + len(suite.tuning)


def test_help_counts_tuning_runs_in_the_tuned_mode_only():
    from zoo.bench.catalogue import count_runs
    from zoo.bench.suite import parse_suite

    raw = {"seeds": 2, "archs": ["rnn", "gru"], "flossing": ["none", "pre"],
           "tuning": {"lrs": [1e-3, 3e-3, 1e-2], "seeds": [100], "flossing": ["none"]},
           "experiments": [{"task": "delayed_copy", "horizons": [5, 20], "options": {"seq_len": 50}}]}
    # reported: 2 horizons x 2 archs x 2 modes x 2 seeds; tuning: 2 horizons x 2 archs x 1 mode x 3 rates x 1 seed
    assert count_runs(raw) == 16 + 12
    suite = parse_suite(raw, name="t")
    assert (len(suite.runs), len(suite.tuning)) == (16, 12)


@pytest.mark.slow
def test_the_python_api_runs_a_suite_and_reads_it_back(tmp_path):
    import zoo.bench as bench

    suite = tmp_path / "mini.toml"
    suite.write_text(MINI)
    out = bench.run_suite(str(suite), out=tmp_path / "out", seeds=2)
    assert out == tmp_path / "out"
    runs, board = bench.read_results(out)
    assert len(runs) == 2 * 2 and set(runs["seed"]) == {0.0, 1.0}  # horizons x seeds (seeds=2 overrides)
    assert list(board["n_runs"]) == [2, 2] and list(board["horizon"]) == [2.0, 3.0]
    assert bench.run_suite(str(suite), out=out, seeds=2) == out  # resumes: nothing left to do
    assert len(bench.read_results(out)[0]) == 4
    with pytest.raises(ConfigError, match="is a file"):
        bench.run_suite(str(suite), out=suite)


def test_step_cache_keeps_the_most_recently_used_shapes():
    from zoo.bench.steps import StepCache

    cache, built = StepCache(capacity=2), []
    build = lambda key: (lambda: built.append(key) or key)  # noqa: E731
    for key in ["a", "b", "a", "c", "a", "b"]:  # "c" evicts "b" (least recent), "b" evicts "c"
        assert cache.get(key, build(key)) == key
    assert built == ["a", "b", "c", "b"] and len(cache) == 2
