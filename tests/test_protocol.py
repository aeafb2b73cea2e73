"""The tuned protocol of issue 15 in the suite reader and the tables: [tuning], [archs.NAME]
recipes, depth/block/readout/param_budget, horizon grids, the choice of rates, intervals,
McNemar p-values, horizons.csv and curves.csv. Known answers throughout; nothing trains here."""

from __future__ import annotations

import math
from pathlib import Path

import jax
import numpy as np
import pandas as pd
import pytest
from flax import nnx

from zoo.architectures.stack import count_params, create_model
from zoo.bench import curves, tuning
from zoo.bench.aggregate import HORIZON_COLUMNS, aggregate, horizons
from zoo.bench.spec import BLOCKS, READOUTS, SPLITS
from zoo.bench.suite import ConfigError, load_suite, parse_suite

ROOT = Path(__file__).resolve().parents[1]
TASK = {"task": "delayed_copy", "horizons": [2, 4], "options": {"seq_len": 16, "eval_size": 64}}


def suite(**top) -> dict:
    raw = {"seeds": 2, "archs": ["rnn"], "defaults": {"hidden_size": 8, "steps": 40, "eval_every": 20},
           "experiments": [dict(TASK)]}
    raw.update(top)
    return raw


def parse(raw: dict, **kw):
    return parse_suite(raw, name="t", **kw)


# --------------------------------------------------------------------------- run identity


def test_suites_without_the_new_keys_keep_their_run_ids():
    # Ids computed by the harness before issue 15 (commit b911af0): results recorded then stay valid.
    ids = {r.run_id for r in load_suite(str(ROOT / "tests" / "data" / "tiny.toml")).runs}
    assert {"rnn-delayed_copy-h2-none-s0-2de85f4b", "rnn-delayed_copy-h4-pre+during-s0-e9beb747"} <= ids


def test_new_settings_are_part_of_the_run_id():
    plain = parse(suite()).runs[0]
    stacked = parse(suite(defaults={"hidden_size": 8, "steps": 40, "eval_every": 20, "depth": 2})).runs[0]
    defaults = {"hidden_size": 8, "steps": 40, "eval_every": 20}
    full = parse(suite(defaults={**defaults, "stop_at_success": False})).runs[0]
    assert len({plain.run_id, stacked.run_id, full.run_id}) == 3


def test_choices_match_the_modules_that_own_them():
    import tasks.base
    from zoo.architectures import stack

    assert (BLOCKS, READOUTS, SPLITS) == (stack.BLOCKS, stack.READOUTS, tasks.base.SPLITS)


# --------------------------------------------------------------------------- horizons


def test_geometric_horizon_grid():
    exp = {**TASK, "horizons": {"from": 2, "to": 16, "count": 4}, "options": {"seq_len": 30}}
    assert sorted({r.horizon for r in parse(suite(experiments=[exp])).runs}) == [2, 4, 8, 16]
    exp = {**TASK, "task": "teacher_student", "horizons": {"from": 1.5, "to": 6.0, "count": 3}, "options": {}}
    assert sorted({r.horizon for r in parse(suite(experiments=[exp])).runs}) == [1.5, 3.0, 6.0]


# --------------------------------------------------------------------------- recipes


def test_arch_recipes_override_defaults_and_experiments():
    raw = suite(archs={"lstm": {"steps": 7, "forget_bias": 2.0}, "rnn": {"clip": 0.0, "gain": 0.5}},
                experiments=[{**TASK, "steps": 6}])
    runs = parse(raw, validate_models=True).runs
    by = {r.arch: r for r in runs}
    assert [r.arch for r in runs[:4]] == ["lstm", "lstm", "rnn", "rnn"]  # the tables' order, then seeds
    assert (by["lstm"].train.steps, by["lstm"].train.clip) == (7, 0.03)
    assert (by["rnn"].train.steps, by["rnn"].train.clip) == (6, 0.0)
    assert dict(by["lstm"].arch_options) == {"forget_bias": 2.0}
    assert dict(by["rnn"].arch_options) == {"gain": 0.5}


def test_depth_block_readout_build_a_stack():
    raw = suite(archs={"gru": {"depth": 2, "block": "glu", "readout": "mlp"}})
    spec = parse(raw).runs[0]
    from zoo.bench.spec import build_model, build_task

    model = build_model(spec, build_task(spec))
    assert type(model).__name__ == "Stack" and len(model.layers) == 2 and len(model.mixers) == 2


def test_param_budget_picks_the_closest_hidden_size_within_ten_percent():
    budget = 1000
    raw = suite(archs={"gru": {"depth": 2, "block": "glu", "param_budget": budget}})
    spec = parse(raw).runs[0]

    def count(n: int) -> int:
        model = create_model("gru", input_size=1, hidden_size=n, output_size=1, rngs=nnx.Rngs(0),
                             depth=2, block="glu")
        return count_params(model)

    n = spec.train.hidden_size
    assert abs(count(n) - budget) <= 0.1 * budget
    assert abs(count(n) - budget) <= min(abs(count(n - 1) - budget), abs(count(n + 1) - budget))


def _probe_class(extra: int, host: bool):
    """A plain nnx.Module architecture with 11 n + 1 + extra parameters, initialised on the host
    (numpy on a random draw, as S5's HiPPO or a plugin's numpy code) or not; every class this
    makes has the same qualified name, as a plugin module reloaded after an edit would."""
    from zoo import RecurrentModel

    class Probe(RecurrentModel):
        def __init__(self, *, input_size, hidden_size, output_size, rngs):
            self.hidden_size = hidden_size
            draw = jax.random.normal(rngs.params(), (10 * hidden_size + 1 + extra,))
            self.w = nnx.Param(np.asarray(draw) if host else draw)
            self.out = nnx.Linear(hidden_size, output_size, use_bias=False, rngs=rngs)

        @property
        def state_size(self):
            return self.hidden_size

        def transition(self, h, x):
            return h

    return Probe


@pytest.mark.parametrize("host", [False, True], ids=["abstract", "host-initialised"])
def test_param_budget_matches_again_when_a_name_is_registered_again(monkeypatch, host):
    # The matched hidden size, and a host-initialised layer's count polynomial, are remembered for
    # the process (a suite file is loaded several times); a plugin reloaded with other weights
    # must not get its old size. Budget 1101: 11 n + 1 = 1101 at n = 100; with 550 more
    # parameters 11 n + 551 = 1101 at n = 50.
    from zoo.architectures.registry import ARCHITECTURES, register_architecture

    monkeypatch.setattr(ARCHITECTURES, "_entries", dict(ARCHITECTURES._entries))
    raw = suite(archs={"probe": {"param_budget": 1101}})
    register_architecture("probe")(_probe_class(0, host))
    assert parse(raw, validate_models=False).runs[0].train.hidden_size == 100
    register_architecture("probe")(_probe_class(550, host))
    assert parse(raw, validate_models=False).runs[0].train.hidden_size == 50


BAD = [
    (suite(archs={"rnn": {"bogus": 1}}), "t.archs.rnn: unknown key 'bogus'; allowed: block, checkpoint_every, clip"),
    (suite(archs={"rnn": {"bogus": 1}}), "gain, hidden_size, input_scale"),
    (suite(defaults={"block": "transformer"}), "block must be one of 'glu', 'mlp', 'none', got 'transformer'"),
    (suite(defaults={"readout": "conv"}), "readout must be one of 'linear', 'mlp'"),
    (suite(defaults={"depth": 0}), "depth"),
    (suite(defaults={"stop_at_success": 1}), "stop_at_success: must be true or false"),
    (suite(defaults={"eval_split": "train"}), "eval_split must be one of 'validation', 'test'"),
    (suite(archs={"gru": {"param_budget": 5, "depth": 2}}), "no hidden_size gives a parameter count within 10%"),
    (suite(experiments=[{**TASK, "horizons": {"from": 2, "to": 16}}]), "exactly the keys from, to, count"),
    (suite(experiments=[{**TASK, "horizons": {"from": 16, "to": 2, "count": 3}}]), "need from < to"),
    (suite(tuning={"lrs": [1e-3], "seeds": [1, 5]}), "t.tuning.seeds: [1] are also reported seeds (0 .. 1)"),
    (suite(tuning={"lrs": [1e-3], "seeds": [5], "lr": 1}),
     "t.tuning: unknown key 'lr'; allowed: flossing, horizons, lrs"),
    (suite(tuning={"lrs": [1e-3], "seeds": [5], "flossing": ["pre"]}),
     "t.tuning.flossing: must list one of the suite's flossing modes ('none'), got ['pre']"),
    (suite(flossing=["none", "pre"], tuning={"lrs": [1e-3], "seeds": [5], "flossing": ["none", "pre"]}),
     "t.tuning.flossing: must list one of"),
    (suite(tuning={"lrs": [], "seeds": [5]}), "t.tuning.lrs: must be a non-empty list of positive numbers"),
    (suite(tuning={"lrs": [1e-3], "seeds": 3}), "t.tuning.seeds: must be a non-empty list of non-negative integers"),
    (suite(tuning={"lrs": [1e-3], "seeds": [5], "horizons": {"adding": [2]}}), "'adding' is no experiment's task"),
    (suite(tuning={"lrs": [1e-3], "seeds": [5]}, defaults={"lr": 1e-3}), "t.defaults.lr: with [tuning] the"),
    (suite(tuning={"lrs": [1e-3], "seeds": [5]}, archs={"rnn": {"lr": 1e-3}}), "t.archs.rnn.lr: with [tuning]"),
    (suite(tuning={"lrs": [1e-3], "seeds": [5]}, defaults={"eval_split": "test"}), "must be 'validation' in a"),
]


@pytest.mark.parametrize(("raw", "message"), BAD)
def test_config_errors_are_one_line(raw, message):
    with pytest.raises(ConfigError) as e:
        parse(raw)
    assert "\n" not in str(e.value)
    assert message in str(e.value)


# --------------------------------------------------------------------------- tuning


def test_tuning_runs_are_ordinary_runs_on_their_own_seeds_and_horizons():
    raw = suite(flossing=["none", "pre"], tuning={"lrs": [1e-3, 1e-2], "seeds": [10, 11], "horizons": [2]})
    s = parse(raw)
    assert len(s.tuning) == 1 * 1 * 2 * 2 * 2  # horizons x archs x modes x lrs x seeds
    assert {r.seed for r in s.tuning} == {10, 11} and {r.horizon for r in s.tuning} == {2}
    assert {r.train.lr for r in s.tuning} == {1e-3, 1e-2}
    assert {r.seed for r in s.runs} == {0, 1} and {r.horizon for r in s.runs} == {2, 4}
    assert {r.train.eval_split for r in (*s.runs, *s.tuning)} == {"validation"}
    # Per task, and by default the experiment's own horizons.
    assert {r.horizon for r in parse(suite(tuning={"lrs": [1e-3], "seeds": [9]})).tuning} == {2, 4}
    per_task = parse(suite(tuning={"lrs": [1e-3], "seeds": [9], "horizons": {"delayed_copy": [4]}}))
    assert {r.horizon for r in per_task.tuning} == {4}


def _tuning_row(arch, flossing, lr, seed, status, steps, val):
    return {"run_id": f"{arch}-delayed_copy-h2-{flossing}-s{seed}-lr{lr}", "suite": "t", "arch": arch,
            "task": "delayed_copy", "horizon": 2, "flossing": flossing, "seed": seed, "lr": lr, "status": status,
            "success": int(status == "solved"), "steps_to_success": steps, "val_metric": val,
            "metric_name": "bit_accuracy", "higher_is_better": 1}


def test_the_chosen_rate_is_the_one_the_tuning_runs_imply(tmp_path):
    # rnn/none: 1e-3 solves 1 of 2; 1e-2 and 3e-2 solve both, 3e-2 sooner (median 30 < 50) -> 3e-2.
    # rnn/pre: 3e-2 diverges once (1 of 2); 1e-3 and 1e-2 tie on all three criteria (both
    # solved at steps 40, validation 1.0): the smaller rate wins -> 1e-3.
    # (flossing, lr, seed, status, steps to success, validation metric)
    runs = [
        ("none", 1e-3, 10, "solved", 40, 1.0), ("none", 1e-3, 11, "unsolved", "", 0.7),
        ("none", 1e-2, 10, "solved", 40, 1.0), ("none", 1e-2, 11, "solved", 60, 1.0),
        ("none", 3e-2, 10, "solved", 20, 1.0), ("none", 3e-2, 11, "solved", 40, 1.0),
        ("pre", 1e-3, 10, "solved", 40, 1.0), ("pre", 1e-3, 11, "solved", 40, 1.0),
        ("pre", 1e-2, 10, "solved", 40, 1.0), ("pre", 1e-2, 11, "solved", 40, 1.0),
        ("pre", 3e-2, 10, "solved", 20, 1.0), ("pre", 3e-2, 11, "diverged", "", ""),
    ]
    rows = [_tuning_row("rnn", *run) for run in runs]
    pd.DataFrame(rows).to_csv(tmp_path / tuning.TUNING_RUNS_CSV, index=False)
    table = tuning.write_tuning_csv(tmp_path)
    written = pd.read_csv(tmp_path / tuning.TUNING_CSV)
    assert list(written.columns) == ["arch", "task", "flossing", "lr", "score", "chosen"]
    chosen = written[written["chosen"]].set_index("flossing")["lr"].to_dict()
    assert chosen == {"none": 3e-2, "pre": 1e-3}
    s = parse(suite(flossing=["none", "pre"], tuning={"lrs": [1e-3, 1e-2, 3e-2], "seeds": [10, 11]}))
    tuned = tuning.apply_choice(s, table)
    assert {(r.flossing, r.train.lr) for r in tuned.runs} == {("none", 3e-2), ("pre", 1e-3)}
    none_ids = lambda suite_: {r.run_id for r in suite_.runs if r.flossing == "none"}  # noqa: E731
    assert none_ids(tuned).isdisjoint(none_ids(s))  # the rate is part of a run's id
    # Rows of another version of the suite (a rate 0.1 no longer tuned) never win the choice.
    stale = _tuning_row("rnn", "none", 0.1, 10, "solved", 1, 1.0)
    pd.DataFrame([*rows, stale, {**stale, "seed": 11, "run_id": "x-y-z-w-v-u"}]).to_csv(
        tmp_path / tuning.TUNING_RUNS_CSV, index=False)
    assert 0.1 in set(tuning.write_tuning_csv(tmp_path).query("chosen")["lr"])
    again = tuning.write_tuning_csv(tmp_path, [r["run_id"] for r in rows])
    assert again.query("chosen").set_index("flossing")["lr"].to_dict() == {"none": 3e-2, "pre": 1e-3}


def test_tuning_one_mode_gives_its_rate_to_every_mode(tmp_path):
    # [tuning] flossing = ["none"]: tuning runs without flossing only; `pre` trains at none's choice.
    raw = suite(flossing=["none", "pre"], tuning={"lrs": [1e-3, 3e-2], "seeds": [10], "flossing": ["none"]})
    s = parse(raw)
    assert {r.flossing for r in s.tuning} == {"none"} and len(s.tuning) == 2 * 2  # horizons x lrs
    rows = [_tuning_row("rnn", "none", lr, 10, status, steps, val)
            for lr, status, steps, val in [(1e-3, "unsolved", "", 0.6), (3e-2, "solved", 20, 1.0)]]
    pd.DataFrame(rows).to_csv(tmp_path / tuning.TUNING_RUNS_CSV, index=False)
    tuned = tuning.apply_choice(s, tuning.write_tuning_csv(tmp_path))
    assert {(r.flossing, r.train.lr) for r in tuned.runs} == {("none", 3e-2), ("pre", 3e-2)}


# --------------------------------------------------------------------------- tables


def _runs(cells) -> pd.DataFrame:
    """Runs of rnn on delayed_copy from {(flossing, horizon): [solved per seed]}."""
    rows = []
    for (mode, h), solved in cells.items():
        for seed, ok in enumerate(solved):
            rows.append({"run_id": f"rnn-delayed_copy-h{h}-{mode}-s{seed}-x", "suite": "t", "arch": "rnn",
                         "task": "delayed_copy", "horizon": h, "flossing": mode, "seed": seed, "lr": 1e-3,
                         "status": "solved" if ok else "unsolved", "success": ok, "metric": 0.9,
                         "metric_name": "bit_accuracy", "steps_to_success": 100 if ok else math.nan})
    return pd.DataFrame(rows)


def wilson(k: int, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    """Wilson (1927) score interval in closed form."""
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return centre - half, centre + half


def test_leaderboard_intervals_and_paired_p_values():
    runs = _runs({("none", 10): [1, 0, 0, 0, 0, 0], ("pre", 10): [1] * 6,
                  ("none", 20): [0] * 6, ("pre", 20): [1, 1, 1, 0, 0, 0]})
    board = aggregate(runs).set_index(["flossing", "horizon"])
    for key, k in ((("none", 10), 1), (("pre", 10), 6), (("none", 20), 0), (("pre", 20), 3)):
        low, high = wilson(k, 6)
        assert board.loc[key, "ci_low"] == pytest.approx(max(low, 0), abs=1e-12)
        assert board.loc[key, "ci_high"] == pytest.approx(min(high, 1), abs=1e-12)
    # Exact McNemar: all discordant pairs one way, p = 2 * 0.5^d.
    assert board.loc[("pre", 10), "p_mcnemar"] == pytest.approx(2 * 0.5**5)
    assert board.loc[("pre", 20), "p_mcnemar"] == pytest.approx(2 * 0.5**3)
    assert np.isnan(board.loc[("none", 10), "p_mcnemar"])
    assert (board["lr"] == 1e-3).all()
    table = horizons(runs, n_resamples=50).set_index("flossing")
    assert list(horizons(runs, n_resamples=50).columns) == HORIZON_COLUMNS
    assert table.loc["pre", "p_mcnemar"] == pytest.approx(2 * 0.5**8)  # pooled: 5 + 3 pairs
    assert np.isnan(table.loc["none", "p_mcnemar"])


def test_horizons_csv_h50_of_a_symmetric_break_and_horizon_zero_left_out():
    # Rates 1, 1, 0, 0 at 2, 4, 8, 16: symmetric in log-horizon about sqrt(4 * 8).
    cells = {("none", h): [int(h <= 4)] * 4 for h in (2, 4, 8, 16)}
    cells[("none", 0)] = [0] * 4  # no logarithm: not part of the fit
    row = horizons(_runs(cells), n_resamples=50).iloc[0]
    assert row["h50"] == pytest.approx(math.sqrt(32), rel=1e-6)
    assert bool(row["bracketed"])


def test_curves_keep_only_finished_runs(tmp_path):
    path = tmp_path / curves.CURVES_CSV
    curves.append_curve(path, "a-b-c-d-e-f", [(20, 0.5, 0.75), (40, 0.25, float("nan"))])
    curves.append_curve(path, "g-h-i-j-k-l", [(20, 0.7, 0.5)])
    df = curves.read_curves(path)
    assert list(df.columns) == curves.CURVE_COLUMNS and len(df) == 3
    assert df["step"].tolist() == [20, 40, 20] and np.isnan(df["val_metric"][1])
    curves.keep_runs(path, {"g-h-i-j-k-l"})  # the first run's row never made it to runs.csv
    assert curves.read_curves(path)["run_id"].tolist() == ["g-h-i-j-k-l"]


def test_the_catalogue_counts_grids_recipes_and_tuning_runs():
    import tomllib

    from zoo.bench.catalogue import count_runs

    raw = suite(archs={"rnn": {}, "gru": {}}, experiments=[{**TASK, "horizons": {"from": 2, "to": 8, "count": 3}}],
                tuning={"lrs": [1e-3, 1e-2], "seeds": [7], "horizons": [2]})
    s = parse(raw)
    assert count_runs(raw) == len(s.runs) + len(s.tuning) == 2 * 3 * 2 + 2 * 1 * 2
    path = ROOT / "tests" / "data" / "protocol.toml"
    s = load_suite(str(path), validate_models=False)
    assert count_runs(tomllib.loads(path.read_text())) == len(s.runs) + len(s.tuning)


def test_the_lstm_examples_differ_only_in_the_recipe():
    shared = load_suite(str(ROOT / "docs" / "examples" / "lstm_shared_recipe.toml"), validate_models=False)
    tuned = load_suite(str(ROOT / "docs" / "examples" / "lstm_tuned_recipe.toml"), validate_models=False)
    assert not shared.tuning and len(tuned.tuning) == 3 * 2  # lrs x tuning seeds at one horizon
    slots = lambda s: [(r.arch, r.task, r.horizon, r.seed, r.task_options) for r in s.runs]  # noqa: E731
    assert slots(shared) == slots(tuned)
    assert {(r.train.clip, r.train.eval_split) for r in shared.runs} == {(0.03, "test")}
    assert {(r.train.clip, r.train.eval_split) for r in tuned.runs} == {(0.0, "validation")}


@pytest.mark.slow
def test_the_long_horizon_full_design_validates():
    # Each (architecture, task inputs and outputs) pair costs a param_budget search and a model
    # check (the design has 13 x 5 of them, two minutes on a 2-core CPU), so the design is checked in
    # two crossing halves: every recipe on associative_recall (the widest input, 17), and every
    # task, horizon and option with one architecture.
    import tomllib

    from zoo.bench.catalogue import count_runs

    path = ROOT / "docs" / "examples" / "long_horizon_protocol.toml"
    raw = tomllib.loads(path.read_text())
    recipes = load_suite(str(path), tasks=["associative_recall"])
    assert len(recipes.runs) == 10 * 2 * 13 * 4  # seeds x modes x archs x horizons
    assert {r.seed for r in recipes.tuning}.isdisjoint({r.seed for r in recipes.runs})
    assert {r.arch for r in recipes.runs} == set(raw["archs"])
    every_task = parse_suite({**raw, "archs": {"rnn": raw["archs"]["rnn"]}}, name="full")
    horizons = 5 + 5 + 6 + 6 + 5 + 4 + 4 + 6
    assert len(every_task.runs) == 10 * 2 * horizons
    assert {r.task for r in every_task.runs} == {e["task"] for e in raw["experiments"]}
    # The whole design's size, as the catalogue counts it (equal to the expansion: test_bench_units).
    assert count_runs(raw) == 10 * 2 * 13 * horizons + 4 * 2 * 2 * 13 * len(raw["experiments"])
