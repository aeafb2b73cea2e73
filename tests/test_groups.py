"""Vectorised run groups (zoo.bench.group, zoo.bench.train.train_group): a run's numbers do not
depend on its group beyond float rounding, a finished member is masked out and not rerun, an
interrupted group resumes to the uninterrupted results exactly (members resumed from different
steps included), and groups are planned deterministically over all the runs of a phase."""

from __future__ import annotations

import dataclasses
import math
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from runs_csv import assert_same_runs, rows_by_run
from zoo.bench.errors import ConfigError
from zoo.bench.group import Group, check_group_size, pending_groups, plan_groups
from zoo.bench.spec import RunSpec, TrainSettings

ROOT = Path(__file__).resolve().parents[1]


def spec(seed: int, lr: float, flossing: str = "none", arch: str = "linear", horizon: int = 2,
         seq_len: int = 16, **train) -> RunSpec:
    settings = {"hidden_size": 6, "steps": 40, "eval_every": 10, "checkpoint_every": 1, "lr": lr, **train}
    return RunSpec(suite="groups", arch=arch, task="delayed_copy", horizon=horizon, flossing=flossing, seed=seed,
                   train=TrainSettings(**settings), task_options=(("seq_len", seq_len), ("eval_size", 64)),
                   flossing_options=(("k", 3), ("rollout", 10), ("warmup", 2), ("pre_steps", 3),
                                     ("during_steps", 2), ("during_every", 20), ("during_times", 1)))


# A linear RNN on delayed copy: one that learns slowly, one pre-flossed, one whose learning rate
# makes it diverge, one that solves and stops early, one that solves and trains on.
MEMBERS = [spec(0, 1e-2), spec(1, 3e-3, "pre"), spec(2, 1e3), spec(3, 5e-2), spec(4, 5e-2, stop_at_success=False)]


def train(specs, folder: Path, **kwargs):
    from zoo.bench.train import train_group

    return train_group(specs, [folder / s.run_id for s in specs], **kwargs)


def without_wall_time(result) -> str:
    # repr: NaN-aware exact comparison
    return repr({k: v for k, v in dataclasses.asdict(result).items() if k != "wall_time_s"})


@pytest.fixture(scope="module")
def grouped(tmp_path_factory):
    """MEMBERS trained as one group of five."""
    return train(MEMBERS, tmp_path_factory.mktemp("grouped"))


# --------------------------------------------------------------------------- numbers


@pytest.mark.slow  # trains the five runs twice
def test_a_runs_numbers_do_not_depend_on_its_group(grouped, tmp_path: Path) -> None:
    from zoo.bench.train import train_run

    alone = [train_run(s, tmp_path / s.run_id) for s in MEMBERS]
    statuses = [r.status for r in alone]
    # The group holds what the test is about: an early stop, a divergence, full-length runs.
    assert statuses[2] == "diverged" and alone[2].steps_trained < 40
    assert statuses[3] == "solved" and alone[3].steps_trained == alone[3].steps_to_success < 40
    assert alone[4].steps_trained == 40 and alone[4].steps_to_success is not None
    assert alone[1].lambda1_before != alone[1].lambda1_init  # pre-flossed
    for one, member in zip(alone, grouped):
        assert (member.status, member.steps_to_success, member.steps_trained, member.note) == \
               (one.status, one.steps_to_success, one.steps_trained, one.note)
        np.testing.assert_allclose([member.metric, member.val_metric], [one.metric, one.val_metric], rtol=1e-5)
        assert [c[0] for c in member.curve] == [c[0] for c in one.curve]
        np.testing.assert_allclose(np.array(member.curve, float), np.array(one.curve, float), rtol=1e-4)
        diag = lambda r: {k: v for k, v in dataclasses.asdict(r).items()  # noqa: E731
                          if k.startswith(("lambda1", "spread", "grad_norm"))} | r.diagnostics
        ours, theirs = diag(member), diag(one)
        assert ours.keys() == theirs.keys()
        np.testing.assert_allclose([ours[k] for k in ours], [theirs[k] for k in ours], rtol=1e-3, atol=1e-5)


@pytest.mark.slow
def test_padding_and_order_leave_a_members_numbers_exactly_as_they_were(grouped, tmp_path: Path) -> None:
    # Two of the five, in the other order, in a program of five (three padding slots): what a
    # resumed suite does when the group's other members were recorded already.
    again = train([MEMBERS[3], MEMBERS[0]], tmp_path, size=5)
    assert [without_wall_time(r) for r in again] == [without_wall_time(grouped[3]), without_wall_time(grouped[0])]


@pytest.mark.slow
def test_an_interrupted_group_resumes_to_the_uninterrupted_results(grouped, tmp_path: Path) -> None:
    from zoo.bench.train import Interrupted

    calls = []

    def stop_after_two_chunks() -> bool:
        calls.append(1)
        return len(calls) == 2

    with pytest.raises(Interrupted):
        train(MEMBERS, tmp_path, should_stop=stop_after_two_chunks)
    # The early stopper's result was kept at its step; member 0 is put back a chunk (as if its
    # newest checkpoint were lost), so it catches up alone before the group goes on together.
    steps = lambda run: sorted(int(p.name) for p in (tmp_path / run.run_id).iterdir() if p.name.isdigit())  # noqa: E731
    assert steps(MEMBERS[0]) == [10, 20] and steps(MEMBERS[3])[-1] == grouped[3].steps_trained < 20
    shutil.rmtree(tmp_path / MEMBERS[0].run_id / "20")
    resumed = train(MEMBERS, tmp_path)
    assert [without_wall_time(r) for r in resumed] == [without_wall_time(r) for r in grouped]


@pytest.mark.slow
def test_flossing_during_training_floss_each_member_in_the_group(tmp_path: Path) -> None:
    from zoo.bench.train import train_run

    specs = [spec(0, 1e-2, "pre+during", arch="rnn", steps=30), spec(1, 3e-2, "pre+during", arch="rnn", steps=30)]
    grouped = train(specs, tmp_path / "group")
    for s, member in zip(specs, grouped):
        one = train_run(s, tmp_path / "alone" / s.run_id)
        assert member.status == one.status and member.steps_trained == one.steps_trained
        np.testing.assert_allclose(np.array(member.curve, float), np.array(one.curve, float), rtol=1e-4)
        np.testing.assert_allclose(member.lambda1_after, one.lambda1_after, rtol=1e-3)


def test_runs_of_different_shapes_cannot_share_a_group(tmp_path: Path) -> None:
    from zoo.bench.train import train_group

    with pytest.raises(ValueError, match="must share group_key"):
        train_group([spec(0, 1e-2), spec(1, 1e-2, seq_len=20)], [tmp_path / "a", tmp_path / "b"])
    with pytest.raises(ValueError, match="program of size 1"):
        train_group([spec(0, 1e-2), spec(1, 1e-2)], [tmp_path / "a", tmp_path / "b"], size=1)


# --------------------------------------------------------------------------- planning


def test_groups_are_even_capped_and_independent_of_order() -> None:
    seeds = [spec(s, 1e-2) for s in range(10)]
    groups = plan_groups(seeds, 4)
    assert sorted(len(g) for g in groups) == [3, 3, 4]  # ten in three groups, not 4 + 4 + 2
    assert sorted(r.run_id for g in groups for r in g) == sorted(r.run_id for r in seeds)
    assert plan_groups(seeds[::-1], 4) == groups
    assert [len(g) for g in plan_groups(seeds, 1)] == [1] * 10
    assert [len(g) for g in plan_groups(seeds, 64)] == [10]


def test_what_may_share_a_group() -> None:
    together = [spec(0, 1e-2), spec(1, 3e-3, "pre"), spec(2, 1e-2, horizon=5)]  # seed, lr, pre, horizon
    assert [len(g) for g in plan_groups(together, 8)] == [3]
    apart = [spec(0, 1e-2), spec(0, 1e-2, "pre+during"),  # flossing phases during training: other pauses
             spec(0, 1e-2, arch="rnn"), spec(0, 1e-2, seq_len=20),  # another model, another task shape
             spec(0, 1e-2, hidden_size=8), spec(0, 1e-2, steps=50), spec(0, 1e-2, clip=0.0)]
    assert [len(g) for g in plan_groups(apart, 8)] == [1] * len(apart)


def test_a_resumed_phase_keeps_its_groups_and_their_program_size() -> None:
    seeds = [spec(s, 1e-2) for s in range(6)]
    full = plan_groups(seeds, 3)
    done = {full[0][0].run_id, full[0][1].run_id, *(r.run_id for r in full[1])}
    left = pending_groups(seeds, {r.run_id for r in seeds} - done, 3)
    assert left == [Group((full[0][2],), 3)]  # one member left, in a program of three as before


def test_group_size_is_checked() -> None:
    assert check_group_size(3) == 3
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ConfigError, match="group must be a positive integer"):
            check_group_size(bad)
    out = subprocess.run([sys.executable, "-m", "zoo.bench", "--suite", "quick", "--group", "0"],
                         cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 2 and out.stderr.strip().splitlines() == [
        "error: --group must be a positive integer (1 = one run per program), got 0"]


def test_an_error_in_a_group_is_recorded_against_its_own_run(tmp_path: Path, monkeypatch) -> None:
    from zoo.bench import runner
    from zoo.bench.record import RunResult

    specs = (spec(0, 1e-2), spec(1, 1e-2), spec(2, 1e-2))

    def group_fails(*args, **kwargs):
        raise TypeError("one member's bug")

    def alone(s, run_dir, **kwargs):
        if s.seed == 1:
            raise TypeError("one member's bug")
        return RunResult(status="unsolved", metric=0.5, success=False, steps_to_success=None, steps_trained=40,
                         wall_time_s=1.0)

    monkeypatch.setattr(runner, "train_group", group_fails)
    monkeypatch.setattr(runner, "train_run", alone)
    outcomes = runner.execute_group(Group(specs, 3), tmp_path, lambda: False)
    assert [s.seed for s, _ in outcomes] == [0, 1, 2]
    assert "error" in outcomes[1][1] and "one member's bug" in outcomes[1][1]["error"]
    assert [o["row"]["status"] for i, (_, o) in enumerate(outcomes) if i != 1] == ["unsolved", "unsolved"]


# --------------------------------------------------------------------------- the benchmark


def test_the_groups_benchmark_runs_its_gpu_mode_on_a_cpu(capsys) -> None:
    import importlib.util

    found = importlib.util.spec_from_file_location("groups_benchmark", ROOT / "benchmarks" / "groups.py")
    benchmark = importlib.util.module_from_spec(found)
    found.loader.exec_module(benchmark)
    assert benchmark.main(["--gpu", "--tiny"]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| rnn |")]
    assert len(rows) == 1 and rows[0].split("|")[3].strip() == "4", rows  # 4 seeds: --gpu's 64, made tiny
    ratio = float(rows[0].split("|")[-2].strip().rstrip("x"))
    assert math.isfinite(ratio) and ratio > 0


# --------------------------------------------------------------------------- end to end


@pytest.mark.slow  # two suites in processes of their own
def test_a_suite_of_groups_stopped_by_sigint_resumes_with_the_uninterrupted_rows(tmp_path: Path) -> None:
    import os
    import signal
    import time

    suite = ROOT / "tests" / "data" / "reliability.toml"  # 2 groups of 2: flossing none, pre+during
    args = ["--suite", str(suite), "--group", "2"]

    def bench(out: Path, *extra: str) -> subprocess.Popen:
        return subprocess.Popen([sys.executable, "-m", "zoo.bench", *args, "--out", str(out), *extra], cwd=ROOT,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=os.environ.copy())

    import io

    from zoo.bench.runner import run_suite
    from zoo.bench.suite import load_suite

    reference = tmp_path / "reference"  # in this process: compared against, not tested
    run_suite(load_suite(str(suite)), reference, group=2, stream=io.StringIO())

    out = tmp_path / "stopped"
    proc = bench(out, "--workers", "2")
    deadline = time.time() + 300
    while not any((out / "checkpoints").glob("*/10")) and time.time() < deadline and proc.poll() is None:
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 130, err[-2000:]
    assert "Traceback" not in err
    rows = rows_by_run(out / "runs.csv") if (out / "runs.csv").exists() else {}
    assert len(rows) < 4
    proc = bench(out)  # the resume in one process: its groups are the interrupted run's
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err[-2000:]
    assert "resuming " in err
    assert_same_runs(out / "runs.csv", reference / "runs.csv")


def test_a_member_whose_data_are_missing_is_skipped_alone(tmp_path: Path, monkeypatch) -> None:
    import tasks

    from zoo.bench import runner
    from zoo.bench.record import RunResult

    specs = (spec(0, 1e-2), spec(1, 1e-2))
    real_build = runner.build_task

    def build(s):
        if s.seed == 0:
            raise tasks.DatasetUnavailable("no data for seed 0\ndetails")
        return real_build(s)

    trained = []

    def group(members, run_dirs, **kwargs):
        trained.append(([m.seed for m in members], kwargs["size"]))
        return [RunResult(status="unsolved", metric=0.5, success=False, steps_to_success=None, steps_trained=40,
                          wall_time_s=1.0) for _ in members]

    monkeypatch.setattr(runner, "build_task", build)
    monkeypatch.setattr(runner, "train_group", group)
    outcomes = runner.execute_group(Group(specs, 2), tmp_path, lambda: False)
    assert trained == [([1], 2)]  # in a program of the planned size, whoever is missing
    assert [o["row"]["status"] for _, o in outcomes] == ["skipped", "unsolved"]
    assert outcomes[0][1]["row"]["note"] == "no data for seed 0"
