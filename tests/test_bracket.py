"""The [bracket] phase: grids extended past their open ends, against hand-made outcomes."""

from __future__ import annotations

import io
import tomllib
from pathlib import Path

import pytest

from runs_csv import rows_by_run
from zoo.bench.bracket import Bracket, next_round, open_ends, parse_bracket, rounds_from_rows
from zoo.bench.errors import ConfigError
from zoo.bench.runner import run_suite
from zoo.bench.spec import RunSpec, TrainSettings
from zoo.bench.suite import load_suite, parse_suite


def spec(arch, horizon, seed=0, flossing="none", task="delayed_copy", seq_len=100):
    return RunSpec(suite="t", arch=arch, task=task, horizon=horizon, flossing=flossing, seed=seed,
                   train=TrainSettings(), task_options=(("seq_len", seq_len),))


def outcome(specs, solved):
    """runs.csv rows by run_id: `solved(spec)` says which runs solved."""
    return {s.run_id: {"status": "solved" if solved(s) else "unsolved"} for s in specs}


def test_open_ends_read_every_mode_at_the_grid_ends():
    rates = {("a", "t", "none", 5): 1.0, ("a", "t", "none", 20): 0.5,  # bridged at both ends
             ("a", "t", "pre", 5): 0.4, ("a", "t", "pre", 20): 0.0,    # bridged nowhere
             ("b", "t", "none", 5): 0.9, ("b", "t", "none", 20): 0.1}  # a crossing inside
    assert open_ends(rates) == {("a", "t"): (True, True), ("b", "t"): (False, False)}


def test_next_round_moves_the_end_horizons_runs_past_the_open_end():
    grid = [5, 20, 80]
    specs = [spec(a, h, s, m) for a in ("up", "down", "inside") for h in grid for s in range(4)
             for m in ("none", "pre")]
    rows = outcome(specs, lambda s: {"up": True, "down": False, "inside": s.horizon < 20 or
                                     (s.horizon == 20 and s.seed < 2)}[s.arch])
    extra = next_round(specs, rows, Bracket(rounds=1, factor=4), admitted=lambda s: True)
    # "up" bridges 80: its 80 runs again at 320, every seed and mode; "down" bridges nothing:
    # its 5 runs at round(5 / 4) = 1; "inside" crosses between 20 (2 of 4 = 0.5) and 80.
    assert sorted((s.arch, s.horizon, s.seed, s.flossing) for s in extra) == sorted(
        [("up", 320, s, m) for s in range(4) for m in ("none", "pre")]
        + [("down", 1, s, m) for s in range(4) for m in ("none", "pre")])
    assert all(type(s.horizon) is int for s in extra)  # delays stay whole numbers
    moved = {(s.seed, s.flossing): s for s in extra if s.arch == "up"}
    for s in specs:  # everything but the horizon carries over (lr, options, seed, mode)
        if s.arch == "up" and s.horizon == 80:
            assert moved[(s.seed, s.flossing)].train == s.train
            assert moved[(s.seed, s.flossing)].task_options == s.task_options


def test_next_round_leaves_an_end_open_where_it_cannot_decide_or_extend():
    specs = [spec("a", h, s) for h in (12.5, 50.0) for s in range(2)]
    rows = outcome(specs, lambda s: True)
    # Float horizons scale as floats.
    assert [s.horizon for s in next_round(specs, rows, Bracket(1, 4.0), admitted=lambda s: True)] == [200.0, 200.0]
    # The task does not admit the next horizon: nothing.
    assert next_round(specs, rows, Bracket(1, 4.0), admitted=lambda s: False) == []
    # A run not finished yet: no decision for its (arch, task).
    assert next_round(specs, {k: v for k, v in list(rows.items())[1:]}, Bracket(1, 4.0), admitted=lambda s: True) == []
    # Skipped runs (data unavailable) carry no outcome.
    skipped = {k: {"status": "skipped"} for k in rows}
    assert next_round(specs, skipped, Bracket(1, 4.0), admitted=lambda s: True) == []
    # Below 1: round(1 / 4) = 0 is no horizon.
    ones = [spec("b", 1, 0), spec("b", 2, 0)]
    assert next_round(ones, outcome(ones, lambda s: False), Bracket(1, 4.0), admitted=lambda s: True) == []


def test_the_task_decides_what_it_admits():
    # Delayed copy needs its delay shorter than the sequence: 80 -> 320 is refused at seq_len 100.
    specs = [spec("a", h, 0) for h in (20, 80)]
    assert next_round(specs, outcome(specs, lambda s: True), Bracket(1, 4.0)) == []
    longer = [spec("a", h, 0, seq_len=400) for h in (20, 80)]
    assert [s.horizon for s in next_round(longer, outcome(longer, lambda s: True), Bracket(1, 4.0))] == [320]



def test_stretch_seq_len_runs_a_horizon_the_sequence_cannot_hold_on_a_longer_sequence():
    stretch = Bracket(1, 4.0, stretch_seq_len=True)
    specs = [spec("a", h, s, m) for h in (20, 80) for s in range(2) for m in ("none", "pre")]
    extra = next_round(specs, outcome(specs, lambda s: True), stretch)
    # Delay 320 does not fit 100 steps; on 400 it does: every seed and mode, only seq_len changed.
    assert sorted((s.horizon, s.seed, s.flossing, s.task_options) for s in extra) == sorted(
        (320, s, m, (("seq_len", 400),)) for s in range(2) for m in ("none", "pre"))
    assert {s.train for s in extra} == {specs[0].train}
    # The task's default sequence (delayed copy: 300) where the suite sets none: 800 on 1200 steps.
    default = [RunSpec(suite="t", arch="a", task="delayed_copy", horizon=h, flossing="none", seed=0,
                       train=TrainSettings()) for h in (50, 200)]
    [longer] = next_round(default, outcome(default, lambda s: True), stretch)
    assert (longer.horizon, longer.task_options) == (800, (("seq_len", 1200),))
    # Where the sequence holds the next horizon, and downward, it stays as it was.
    roomy = [spec("a", h, 0, seq_len=400) for h in (20, 80)]
    assert [s.task_options for s in next_round(roomy, outcome(roomy, lambda s: True), stretch)] == [(("seq_len", 400),)]
    low = [spec("a", h, 0) for h in (20, 80)]
    assert [(s.horizon, s.task_options) for s in next_round(low, outcome(low, lambda s: False), stretch)] == [
        (5, (("seq_len", 100),))]
    # Without the key the end stays open (test_the_task_decides_what_it_admits).

@pytest.mark.parametrize("table, message", [
    ({}, r"t.bracket.rounds: must be an integer >= 1"),
    ({"rounds": 0}, r"rounds: must be an integer >= 1"),
    ({"rounds": True}, r"rounds: must be an integer >= 1"),
    ({"rounds": 1, "factor": 1}, r"factor: must be a number > 1"),
    ({"rounds": 1, "factor": "4"}, r"factor: must be a number > 1"),
    ({"rounds": 1, "step": 2}, r"unknown key 'step'; allowed: factor, rounds, stretch_seq_len"),
    ({"rounds": 1, "stretch_seq_len": "yes"}, r"stretch_seq_len: must be true or false, got 'yes'"),
    (3, r"must be a table with rounds"),
])
def test_bad_bracket_tables(table, message):
    with pytest.raises(ConfigError, match=message):
        parse_bracket(table, "t.bracket")


SUITE = """
description = "bracket: never solved, so the grid extends downward, 8 -> 4 -> 2 -> 1"
seeds = 2
archs = ["rnn"]

[defaults]
hidden_size = 4
steps = 1
eval_every = 1

[bracket]
rounds = 3
factor = 2

[[experiments]]
task = "delayed_copy"
horizons = [4, 8]
options = { seq_len = 16, eval_size = 16, success_threshold = 1.0 }   # one step never reaches 1.0
"""


def test_the_suite_reader_takes_a_bracket_table():
    raw = tomllib.loads(SUITE)
    assert parse_suite(raw, name="t").bracket == Bracket(rounds=3, factor=2.0)
    assert parse_suite({k: v for k, v in raw.items() if k != "bracket"}, name="t").bracket is None
    with pytest.raises(ConfigError, match=r"t.bracket: unknown key 'round'"):
        parse_suite({**raw, "bracket": {"round": 1}}, name="t")


@pytest.mark.slow  # one suite, three rounds, then its resume
def test_a_suite_extends_its_grid_round_by_round_and_resumes_to_the_same_runs(tmp_path: Path):
    path = tmp_path / "down.toml"
    path.write_text(SUITE)
    suite = load_suite(str(path))
    out = tmp_path / "out"
    assert run_suite(suite, out, keep_checkpoints=False, stream=io.StringIO()) == 8
    rows = rows_by_run(out / "runs.csv")
    # Rounds 1 and 2 (horizons 2 and 1); round 3 would be round(1 / 2) = 0, no horizon.
    assert sorted(int(r["horizon"]) for r in rows.values()) == [1, 1, 2, 2, 4, 4, 8, 8]
    assert {r["status"] for r in rows.values()} == {"unsolved"}
    replayed = rounds_from_rows(suite.runs, rows, suite.bracket)
    assert [[s.horizon for s in r] for r in replayed] == [[2, 2], [1, 1]]
    assert {s.run_id for r in replayed for s in r} | {s.run_id for s in suite.runs} == set(rows)
    assert run_suite(suite, out, keep_checkpoints=False, stream=io.StringIO()) == 0  # planned alike on resume
