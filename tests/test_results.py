"""The committed reference leaderboards and docs/results.md agree with their runs.

Each reference folder (leaderboard/SUITE/, named below: never whatever else a user's run put
under leaderboard/) is the output of one suite run: its runs.csv must hold exactly the runs
that the suite file it was run from (kept beside it as suite.toml, since the shipped suite in
bench_configs/ moves on between reruns) expands to, leaderboard.csv must be the aggregate of those runs,
and every table in docs/results.md must be what `python -m zoo.bench.report` computes from them.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pandas as pd
import pytest

from zoo.bench import claims, leaderboard, report, tables
from zoo.bench.runner import suite_run_ids
from zoo.bench.suite import load_suite

ROOT = Path(__file__).resolve().parents[1]
BOARDS = ROOT / "leaderboard"
# The committed reference results: suite outputs, and every leaderboard among them.
REFERENCES = [
    "flossing_paper", "long_horizon", "long_horizon_matched", "long_horizon_stacked", "lru_ablation",
    "zucchet_orvieto",
]
FOLDERS = [BOARDS / name for name in REFERENCES]


def test_reference_leaderboards_are_committed():
    for folder in FOLDERS:
        assert (folder / "runs.csv").is_file() and (folder / "leaderboard.csv").is_file(), folder


@pytest.mark.parametrize("folder", FOLDERS, ids=lambda p: p.name)
def test_runs_are_exactly_the_suites_runs(folder):
    suite = load_suite(str(folder / "suite.toml"), validate_models=False)
    runs = leaderboard.read_runs(folder / "runs.csv")
    raw = pd.read_csv(folder / "runs.csv", dtype=str, keep_default_na=False)
    assert len(raw) == len(runs), "damaged or duplicated rows in runs.csv"
    # At the rates its tuning chose, plus the bracket rounds it planned from its own rows.
    assert set(runs["run_id"]) == suite_run_ids(suite, folder)
    assert set(runs["suite"]) == {folder.name}
    assert set(runs["status"]) <= {"solved", "unsolved", "diverged"}
    # A run succeeded exactly when it is recorded as solved.
    assert ((runs["status"] == "solved") == (runs["success"] == 1)).all()


@pytest.mark.parametrize("folder", FOLDERS, ids=lambda p: p.name)
def test_each_slot_ran_once_at_the_chosen_rate(folder):
    """Read without the harness's own expansion: one row per (arch, task, horizon, flossing, seed),
    so the leaderboard counts no run twice, and where the suite tuned, every row at the rate
    tuning.csv marks chosen for its (arch, task, flossing), or for its (arch, task) when only
    one mode was tuned."""
    runs = pd.read_csv(folder / "runs.csv")
    slot = ["arch", "task", "horizon", "flossing", "seed"]
    assert not runs.duplicated(slot).any(), f"{runs.duplicated(slot).sum()} slot(s) ran twice"
    if (folder / "tuning.csv").exists():
        tuning = pd.read_csv(folder / "tuning.csv")
        # Tuned in one mode only: every mode of an (arch, task) trains at that mode's choice.
        key = ["arch", "task"] if tuning["flossing"].nunique() == 1 else ["arch", "task", "flossing"]
        chosen = tuning[tuning["chosen"].astype(bool)].set_index(key)["lr"]
        assert chosen.index.is_unique, f"tuning.csv marks two rates chosen for one {tuple(key)}"
        want = chosen.reindex(pd.MultiIndex.from_frame(runs[key])).to_numpy()
        assert (runs["lr"].to_numpy() == pytest.approx(want)), "a reported run at a rate its tuning did not choose"


@pytest.mark.parametrize("folder", FOLDERS, ids=lambda p: p.name)
def test_leaderboard_is_the_aggregate_of_its_runs(folder):
    board = pd.read_csv(folder / "leaderboard.csv", keep_default_na=False, na_values=[""])
    expected = leaderboard.aggregate(leaderboard.read_runs(folder / "runs.csv"))
    assert list(board.columns) == leaderboard.BOARD_COLUMNS
    pd.testing.assert_frame_equal(
        board.reset_index(drop=True), expected.reset_index(drop=True),
        check_dtype=False, rtol=1e-5, atol=1e-9,
    )
    # success_rate is successes / runs, as a reader of the CSV would recompute it.
    assert (board["success_rate"] - board["successes"] / board["n_runs"]).abs().max() < 1e-9
    page = (folder / "leaderboard.html").read_text()
    for arch in board["arch"].unique():
        assert arch in page


def test_no_checkpoints_committed():
    if not (ROOT / ".git").exists():
        pytest.skip("not a git checkout: nothing is committed here")
    tracked = subprocess.run(
        ["git", "ls-files", "leaderboard"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    assert tracked, "no committed leaderboard files"
    assert not [t for t in tracked if "/checkpoints/" in t]


def test_results_document_matches_the_runs():
    doc = ROOT / "docs" / "results.md"
    text = doc.read_text()
    assert len(report.BLOCK.findall(text)) >= 10
    assert report.render(text, BOARDS) == text, (
        "docs/results.md is stale: run python -m zoo.bench.report docs/results.md")


def _write_runs(folder: Path, cells) -> None:
    rows = []
    for mode, h, successes in cells:
        for seed, ok in enumerate(successes):
            rows.append(dict(
                run_id=f"r{mode}{h}-{seed}", suite=folder.name, arch="rnn", task="delayed_copy", horizon=h,
                flossing=mode, seed=seed, status="solved" if ok else "unsolved", success=ok, metric=0.9,
                metric_name="bit_accuracy", steps_to_success=100 * (seed + 1) if ok else "", max_steps=500,
            ))
    folder.mkdir()
    pd.DataFrame(rows).to_csv(folder / "runs.csv", index=False)


def _run(ok: bool, **fields) -> dict:
    """One runs.csv row of a hand-made run, solved or not; `fields` override the defaults."""
    row = dict(suite="s", task="delayed_copy", horizon=10, flossing="none", seed=0,
               status="solved" if ok else "unsolved", success=int(ok), metric=0.9, metric_name="bit_accuracy",
               steps_to_success=100 if ok else "", max_steps=500)
    return {**row, **fields}


def _save(folder: Path, rows: list[dict]) -> None:
    folder.mkdir()
    pd.DataFrame(rows).to_csv(folder / "runs.csv", index=False)


def test_versus_pairs_two_architectures_by_horizon_and_seed(tmp_path):
    # Horizon 10: both solve seeds 0-2, only "a" seeds 3-5; horizon 20: only "b" seed 0, neither 1.
    # Seed 9 of "a" has no partner and is left out.
    solved = {("a", 10): [1, 1, 1, 1, 1, 1], ("b", 10): [1, 1, 1, 0, 0, 0], ("a", 20): [0, 0], ("b", 20): [1, 0]}
    rows = [_run(ok, run_id=f"{arch}{h}-{seed}", arch=arch, horizon=h, seed=seed)
            for (arch, h), outcomes in solved.items() for seed, ok in enumerate(outcomes)]
    rows.append({**rows[0], "run_id": "a10-9", "seed": 9})
    _save(tmp_path / "v", rows)
    out = report.render("<!-- table: versus v delayed_copy a b -->\n<!-- end table -->", tmp_path)
    assert "| 10 | 6 | 1.00 (6/6) | 0.50 (3/6) | 3 | 0 | 0.25 |" in out  # p = 2 * 0.5^3
    assert "| 20 | 2 | 0.00 (0/2) | 0.50 (1/2) | 0 | 1 | 1 |" in out
    # Pooled: 8 pairs, 3 against 1: +25 points; exact interval of 3 in 4 is [0.1941, 0.9937] (scipy),
    # mapped by (2 theta - 1) * 4 / 8; p = binomtest(3, 4) = 0.625.
    assert ("8 pairs, 3 solved only by `a`, 1 only by `b`; difference in success rate +25.0 points "
            "[-30.6, +49.4] (exact, conditional on the discordant pairs), p = 0.625.") in out
    with pytest.raises(ValueError, match="no 'none' runs of c on 'delayed_copy'"):
        report.render("<!-- table: versus v delayed_copy a c -->\n<!-- end table -->", tmp_path)


def test_versus_pairs_two_schedules_of_one_network(tmp_path):
    # rnn flossed pre+during against its compute-matched control rnn_pre1500 (pre only), and the
    # rnn's own none runs, which must not enter the pairing.
    solved = {("rnn", "pre+during"): [1, 1, 1, 1], ("rnn_pre1500", "pre"): [1, 0, 0, 0], ("rnn", "none"): [0, 0, 0, 0]}
    rows = [_run(ok, run_id=f"{arch}{mode}-{seed}", arch=arch, task="delayed_xor", horizon=32, flossing=mode, seed=seed)
            for (arch, mode), outcomes in solved.items() for seed, ok in enumerate(outcomes)]
    _save(tmp_path / "f", rows)
    out = report.render("<!-- table: versus f delayed_xor rnn:pre+during rnn_pre1500:pre -->\n<!-- end table -->",
                        tmp_path)
    assert "| 32 | 4 | 1.00 (4/4) | 0.25 (1/4) | 3 | 0 | 0.25 |" in out
    assert "`rnn (pre+during)` against `rnn_pre1500 (pre)`" in out
    with pytest.raises(ValueError, match="no 'pre' runs of rnn on 'delayed_xor'"):
        report.render("<!-- table: versus f delayed_xor rnn:pre rnn_pre1500:pre -->\n<!-- end table -->", tmp_path)


def test_shift_pairs_a_quantity_of_flossed_and_unflossed_runs(tmp_path):
    # Seeds 0-5 at one delay: lambda_1 at the start of training, flossed -0.1, unflossed -0.5 - s/100;
    # steps to success where both solved (seeds 0-4; seed 5 unflossed did not solve).
    rows = []
    for seed in range(6):
        for mode, lam, steps in (("pre", -0.1, 100), ("none", -0.5 - seed / 100, 300 + 100 * seed)):
            ok = not (mode == "none" and seed == 5)
            rows.append(_run(ok, run_id=f"{mode}-{seed}", arch="rnn", horizon=40, flossing=mode, seed=seed,
                             steps_to_success=steps if ok else "", max_steps=2000, lambda1_before=lam,
                             grad_norm_before=1e-3))
    _save(tmp_path / "f", rows)
    out = report.render("<!-- table: shift f lambda1_start -->\n<!-- end table -->", tmp_path)
    # |lambda_1| differences 0.1 - (0.5 + s/100): all six negative, median -0.425; at n = 6 the 95%
    # interval is the whole range (x_(1), x_(6)) (coverage 1 - 2 / 2^6); p = 2 / 2^6 = 0.03125.
    assert "| rnn | delayed_copy | pre | 6 | 0.525 | 0.1 | -0.425 [-0.45, -0.4] | 0.0312 | 0.0312 |" in out
    out = report.render("<!-- table: shift f steps -->\n<!-- end table -->", tmp_path)
    # Five pairs solved in both: differences -200, -300, ..., -600; median -400; p = 2 / 2^5.
    assert "| rnn | delayed_copy | pre | 5 | 500 | 100 | -400 [" in out and "| 0.0625 | 0.0625 |" in out
    with pytest.raises(ValueError, match="unknown shift quantity 'speed'; known: steps"):
        report.render("<!-- table: shift f speed -->\n<!-- end table -->", tmp_path)


def test_shift_leaves_out_and_counts_a_gradient_that_underflowed_to_zero(tmp_path):
    # log10 of dL/dh0: flossed 1e-3 (-3) against unflossed 1e-(6+s) for seeds 0-3, and seed 4's
    # unflossed norm exactly 0 (float32 underflow), whose log is -inf: left out, and said so.
    rows = []
    for seed in range(5):
        for mode, norm in (("pre", 1e-3), ("none", 0.0 if seed == 4 else 10.0 ** -(6 + seed))):
            rows.append(_run(True, run_id=f"{mode}-{seed}", arch="rnn", horizon=40, flossing=mode, seed=seed,
                             grad_norm_before=norm))
    _save(tmp_path / "g", rows)
    out = report.render("<!-- table: shift g gradient_start -->\n<!-- end table -->", tmp_path)
    # Differences 3, 4, 5, 6: median 4.5; p = 2 / 2^4 = 0.125.
    assert "| rnn | delayed_copy | pre | 4 | -7.5 | -3 | 4.5 [" in out and "| 0.125 | 0.125 |" in out
    assert "Left out: 1 pair where a run's value is infinite" in out


def test_trend_ranks_the_metric_against_the_horizon_and_the_gap_between_two_architectures(tmp_path):
    # "dense": error 0.01, 0.02, 0.1 then diverged (worst) at memories 1-4, one seed each: perfectly
    # concordant, tau = 1, exact p = 2 / 4! = 0.0833. "lru": error 0.01 everywhere: the ratio
    # dense / lru is 1, 2, 10, inf: the gap grows in every pair, tau = 1 again.
    rows = []
    for h, err in zip([1, 2, 3, 4], [0.01, 0.02, 0.1, None]):
        for arch, value in (("dense", err), ("lru", 0.01)):
            rows.append(_run(False, run_id=f"{arch}{h}", arch=arch, task="teacher_student", horizon=h,
                             status="diverged" if value is None else "unsolved", metric=value,
                             metric_name="relative_mse", higher_is_better=0, max_steps=100))
    _save(tmp_path / "z", rows)
    out = report.render("<!-- table: trend z teacher_student -->\n<!-- end table -->", tmp_path)
    assert "| dense | none | 4 | 0.01 | - | +1.00 | 0.0833 | 0.0833 |" in out
    assert "| lru | none | 4 | 0.01 | 0.01 | - | - | - |" in out  # a constant metric: nothing to test
    assert "adjusted for the table's 1 tests" in out
    out = report.render("<!-- table: trend z teacher_student dense lru -->\n<!-- end table -->", tmp_path)
    assert "| 3 (nu0 0.67) | 1 | 10 | 1 | 0 |" in out and "| 4 (nu0 0.75) | 1 | inf | 1 | 0 |" in out
    assert "| 1 (nu0 0.00) | 1 | 1 | 0 | 0 |" in out  # a tie counts for neither side
    # log-ratios 0, log 2, log 10, inf: median (log 2 + log 10) / 2, so ratio sqrt(20); 3 of 3 nonzero
    # pairs one way: p = 2 / 2**3. Four pairs are too few for a 95% interval (the widest, from the
    # smallest to the largest, covers 1 - 2 / 2**4 = 0.875): none is given.
    assert "Trend over 4 pairs: tau +1.00, p = 0.0833." in out
    assert (f"median ratio {tables.fmt(20 ** 0.5)} [-, -], `dense` worse in 3 pairs and `lru` in 0; "
            "sign test p = 0.25.") in out


def test_tracks_pairs_each_architecture_with_itself_in_another_track(tmp_path):
    # rnn at horizon 10: track "one" solves seeds 0-5, track "two" seeds 0-2; gru agrees in every
    # pair; a flossed run and a horizon only "one" ran have no partner and are left out.
    solved = {("one", "rnn"): [1, 1, 1, 1, 1, 1], ("two", "rnn"): [1, 1, 1, 0, 0, 0],
              ("one", "gru"): [1, 0, 1], ("two", "gru"): [1, 0, 1]}
    for track in ("one", "two"):
        rows = [_run(ok, run_id=f"{arch}-{seed}", suite=track, arch=arch, seed=seed)
                for (t, arch), outcomes in solved.items() if t == track for seed, ok in enumerate(outcomes)]
        if track == "one":
            rows += [{**rows[3], "run_id": "pre", "flossing": "pre", "status": "unsolved", "success": 0},
                     {**rows[3], "run_id": "h80", "horizon": 80}]
        _save(tmp_path / track, rows)
    out = report.render("<!-- table: tracks one two delayed_copy -->\n<!-- end table -->", tmp_path)
    assert "adjusted for all 2 (arch, task) comparisons, of which the 1 where every pair agrees" in out
    # p = binomtest(3, 3) = 0.25; Holm over two: 0.5; Wilson intervals of 6/6 and 3/6.
    assert "| rnn | delayed_copy | 6 | 1.00 [0.61, 1.00] | 0.50 [0.19, 0.81] | 3 | 0 | 0.25 | 0.5 |" in out
    assert "| gru |" not in out
    # Pooled: 9 pairs, 3 against 0: +33.3 points; exact interval of 3 in 3 is [0.025^(1/3), 1],
    # mapped by (2 theta - 1) * 3 / 9.
    assert ("9 pairs, 3 solved only in `one`, 0 only in `two`; difference in success rate +33.3 points [-13.8, +33.3] "
            "(exact, conditional on the discordant pairs), p = 0.25.") in out


def test_params_lists_each_architecture_in_every_track(tmp_path):
    # "one": rnn at 100 parameters on one task and 120 on another, gru at 300; "two": rnn at 400 only.
    _save(tmp_path / "one", [_run(True, run_id="a", arch="rnn", n_params=100),
                             _run(True, run_id="b", arch="rnn", task="mnist1d", n_params=120),
                             _run(False, run_id="c", arch="gru", n_params=300)])
    _save(tmp_path / "two", [_run(True, run_id="a", arch="rnn", n_params=400)])
    out = report.render("<!-- table: params one two -->\n<!-- end table -->", tmp_path)
    assert "| arch | one | two |" in out
    assert "| rnn | 100-120 | 400 |" in out
    assert "| gru | 300 | - |" in out


def test_report_tables_against_a_hand_made_board(tmp_path):
    """The table code itself, on runs whose answers are known."""
    _write_runs(tmp_path / "s", [("none", 10, [1, 1, 0, 1]), ("none", 20, [0, 0, 1, 0]), ("pre", 10, [1, 1])])
    out = report.render("<!-- table: success s delayed_copy -->\n<!-- end table -->\n"
                        "<!-- table: longest s delayed_copy -->\n<!-- end table -->\n"
                        "<!-- table: steps s delayed_copy -->\n<!-- end table -->", tmp_path)
    assert "| rnn | 10 | 0.75 (3/4) | 1.00 (2/2) |" in out
    assert "| rnn | 20 | 0.25 (1/4) | - |" in out
    assert "| rnn | 10 | 10 |\n" in out  # longest horizon with >= half the seeds solved, per mode
    assert "| rnn | 10 | 200 | 150 |" in out  # medians of (100, 200, 400) and (100, 200)
    assert "| rnn | 20 | 300 | - |" in out
    # One flossing mode: one row per architecture, horizons across.
    _write_runs(tmp_path / "one", [("none", 10, [1, 0]), ("none", 20, [0, 0])])
    out = report.render("<!-- table: success one delayed_copy -->\n<!-- end table -->", tmp_path)
    assert "| arch \\ horizon (steps) | 10 | 20 |" in out
    assert "| rnn | 0.50 (1/2) | 0.00 (0/2) |" in out
    with pytest.raises(ValueError, match="unknown table kind"):
        report.render("<!-- table: nonsense s -->\n<!-- end table -->", tmp_path)


def test_summary_metric_and_lyapunov_tables_against_hand_made_runs(tmp_path):
    nan = float("nan")
    cells = [  # arch, horizon, seed, status, metric, max_steps, wall s, lambda1 init/before/after, grad before/after
        ("rnn", 10, 0, "solved", 0.9, 500, 1800, 0.5, 0.4, 0.1, 2.0, 4.0),
        ("rnn", 10, 1, "unsolved", 0.6, 500, 1800, 0.3, 0.2, -0.1, 4.0, 8.0),
        ("rnn", 10, 2, "diverged", nan, 500, 3600, 0.1, 0.0, nan, nan, nan),
        ("rnn", 20, 0, "unsolved", 0.55, 1000, 1800, 0.2, 0.1, -0.3, 6.0, nan),
        ("lru", 10, 0, "solved", 1.0, 500, 1800, -0.2, -0.2, -0.4, 1.0, 1.0),
        ("lru", 20, 1, "skipped", nan, 2000, 0, nan, nan, nan, nan, nan),  # never trained: not a run
    ]  # fmt: skip
    rows = [dict(zip(leaderboard.RUNS_COLUMNS, [None] * len(leaderboard.RUNS_COLUMNS)),
                 run_id=f"r{i}", suite="h", arch=a, task="delayed_copy", horizon=h, flossing="none", seed=seed,
                 status=status, success=int(status == "solved"), metric=m, metric_name="bit_accuracy",
                 max_steps=steps, wall_time_s=wall, lambda1_init=l0, lambda1_before=l1, lambda1_after=l2,
                 grad_norm_before=g1, grad_norm_after=g2)
            for i, (a, h, seed, status, m, steps, wall, l0, l1, l2, g1, g2) in enumerate(cells)]
    (tmp_path / "h").mkdir()
    pd.DataFrame(rows).to_csv(tmp_path / "h" / "runs.csv", index=False)
    src = tables.Source(tmp_path / "h")
    # 5 runs: 2 solved, 2 unsolved, 1 diverged; seeds 0-2; budgets 500 and 1000; 10800 s = 3.00 h.
    assert tables.summary(src).splitlines()[2] == "| 5 | 2 | 2 | 1 | 3 | 500/1000 | 3.00 |"
    metric = tables.metric(src, "delayed_copy")
    assert metric.startswith("Median bit_accuracy.")
    assert "| lru | 1 | - |" in metric  # the skipped horizon-20 run leaves no cell
    assert "| rnn | 0.75 | 0.55 |" in metric  # median of 0.9 and 0.6; the diverged run has no metric
    lyap = tables.lyapunov(src)
    # rnn medians: init (0.5, 0.3, 0.1, 0.2), before (0.4, 0.2, 0, 0.1), after (0.1, -0.1, -0.3),
    # grad before (2, 4, 6), grad after (4, 8).
    assert "| rnn | delayed_copy | none | 4 | 0.25 | 0.15 | -0.1 | 4 | 6 |" in lyap
    assert "| lru | delayed_copy | none | 1 | -0.2 | -0.2 | -0.4 | 1 | 1 |" in lyap


def test_report_horizons_follow_the_one_convention():
    # Teacher-student: the memory time scale in steps, the eigenvalue floor nu0 = 1 - 1/h beside it.
    assert tables.horizon_label("teacher_student", 6.25) == "6.25 (nu0 0.84)"
    assert tables.horizon_label("teacher_student", 100) == "100 (nu0 0.99)"
    assert tables.horizon_label("delayed_copy", 40) == "40"
    assert tables.horizon_header("teacher_student") == "memory 1/(1-nu0) (steps)"


def test_h50_paired_and_tuning_tables_against_hand_made_runs(tmp_path):
    # none: 4/4 solved at 10 and 20, 0/4 at 40 and 80 -> symmetric in log h around sqrt(20*40).
    # pre on the same seeds: 4/4 at every horizon -> "> 80". Pairs pooled over horizons: 16;
    # pre solved 8 that none did not, none solved 0 that pre did not: p = 2 * 0.5**8.
    cells = [("none", h, [1, 1, 1, 1] if h <= 20 else [0, 0, 0, 0]) for h in (10, 20, 40, 80)]
    cells += [("pre", h, [1, 1, 1, 1]) for h in (10, 20, 40, 80)]
    _write_runs(tmp_path / "s", cells)
    src = tables.Source(tmp_path / "s")
    table = tables.h50(src)
    row = next(line for line in table.splitlines() if line.startswith("| rnn |"))
    none_cell, pre_cell = [c.strip() for c in row.strip("|").split("|")][1:]
    assert none_cell.startswith(f"{(20 * 40) ** 0.5:.3g} [")  # 28.3 with its interval
    assert pre_cell.startswith("> 80")
    paired = claims.paired(src)
    from scipy.stats import binomtest
    p = binomtest(8, 8, 0.5).pvalue
    z = 1.959963984540054
    lo = (0.5 + z * z / 32 - z * (0.25 / 16 + z * z / 1024) ** 0.5) / (1 + z * z / 16)  # Wilson, 8 of 16
    assert f"| rnn | delayed_copy | pre | 16 | 0.50 [{lo:.2f}, {1 - lo:.2f}] | 1.00 [" in paired
    assert f"| 8 | 0 | {p:.3g} | {p:.3g} |\n" in paired  # one comparison: Holm leaves p
    # Pooled: 8 of 8 discordant pairs; the exact interval of 8 in 8 is [0.025^(1/8), 1], mapped by
    # (2 theta - 1) * 8 / 16 to [0.131, 0.5].
    assert (f"16 pairs, 8 solved only with flossing, 0 only without; difference in success rate +50.0 points "
            f"[+{100 * (2 * 0.025 ** (1 / 8) - 1) / 2:.1f}, +50.0] (exact, conditional on the discordant pairs), "
            f"p = {p:.3g}.") in paired
    # Tuning: 1e-3 solved one of two validation runs, 3e-3 both (steps 100 and 300, median 200;
    # validation accuracies 0.96 and 0.98, median 0.97), so 3e-3, the grid's top, is chosen.
    tuned = [_run(ok, run_id=f"t{lr}-{seed}", arch="rnn", lr=lr, seed=100 + seed, steps_to_success=steps,
                  val_metric=val, higher_is_better=1)
             for lr, seed, ok, steps, val in [(1e-3, 0, 1, 400, 0.95), (1e-3, 1, 0, "", 0.5),
                                              (3e-3, 0, 1, 100, 0.96), (3e-3, 1, 1, 300, 0.98)]]
    pd.DataFrame(tuned).to_csv(tmp_path / "s" / "tuning_runs.csv", index=False)
    pd.DataFrame([{"arch": "rnn", "task": "delayed_copy", "flossing": "none", "lr": lr, "score": sc, "chosen": ch}
                  for lr, sc, ch in [(1e-3, 2, False), (3e-3, 1, True)]]).to_csv(
        tmp_path / "s" / "tuning.csv", index=False)
    tuned = tables.tuning(src)
    assert "| rnn | delayed_copy | none | 0.003 | 2/2 | 200 | 0.97 | highest |" in tuned
    assert ("at an edge of the grid in 1 of 1: the lowest (0.001) in 0, the highest (0.003) in 1. "
            "No tuning run solved the task at the chosen rate in 0 of 1") in tuned
    # A task that ran without flossing only has no "pre" column (the suite did not ask for one).
    runs = pd.read_csv(tmp_path / "s" / "runs.csv")
    extra = runs[runs.flossing == "none"].assign(task="adding", run_id=lambda r: "a" + r.run_id)
    pd.concat([runs, extra]).to_csv(tmp_path / "s" / "runs.csv", index=False)
    header = tables.h50(tables.Source(tmp_path / "s")).split("\n\n")[1].splitlines()[0]
    assert header == "| arch | adding (none) | delayed_copy (none) | delayed_copy (pre) |"
    # A SUITE with a "/" is a path from the repository root.
    assert report.render_block("summary leaderboard/long_horizon", tmp_path).startswith("| runs |")


def test_lru_ablation_shared_rungs_are_zucchet_orvietos_runs():
    """The ladder's linear, complex_diagonal and lru rungs were copied (`--reuse`) from
    zucchet_orvieto, not rerun: the same run ids with the same results, so the two sections of
    docs/results.md cannot tell two stories about one run."""
    ladder = pd.read_csv(BOARDS / "lru_ablation" / "runs.csv").set_index("run_id")
    paper = pd.read_csv(BOARDS / "zucchet_orvieto" / "runs.csv").set_index("run_id")
    shared = ladder[ladder["arch"] != "lru_exp"]
    assert len(shared) == 60 and shared.index.isin(paper.index).all()
    cols = ["arch", "horizon", "seed", "lr", "status", "metric", "steps_to_success", "wall_time_s"]
    pd.testing.assert_frame_equal(shared[cols], paper.loc[shared.index, cols])
