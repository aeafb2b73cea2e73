"""The harness under abuse: divergence, failing runs, signals, kills at any moment, damaged
state, two processes on one folder, bad input. Every finished result is kept, none is
reported twice, and a resumed suite ends with exactly the results of an uninterrupted one.

Crashes in the middle of a checkpoint save or a runs.csv append use the test plugin
tests/data/zoo_test_faults.py (`ZOO_TEST_CRASH_AT`), which SIGKILLs the process (and, from a
worker, the whole suite) at that moment; the library itself knows nothing of it.
"""

from __future__ import annotations

import concurrent.futures as cf
import csv
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from runs_csv import assert_same_runs
from zoo.bench import suite as suite_module
from zoo.bench.suite import ConfigError, load_suite, parse_suite

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data"
SUITE = DATA / "reliability.toml"
FAULTS = DATA / "faults.toml"
RUN_IDS = [r.run_id for r in load_suite(str(SUITE), validate_models=False).runs]
# Everything but the wall time must match an uninterrupted run.


# --------------------------------------------------------------------------- helpers


def bench(*args: str, env_extra: dict | None = None) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k != "ZOO_TEST_CRASH_AT"}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(DATA), env.get("PYTHONPATH", "")) if p)
    env.update(env_extra or {})
    if "ZOO_TEST_CRASH_AT" in env:
        args = (*args, "--plugin", "zoo_test_faults")
    return subprocess.Popen(
        [sys.executable, "-m", "zoo.bench", *args], cwd=ROOT, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def finish(proc: subprocess.Popen, timeout: float = 300) -> tuple[int, str]:
    _, err = proc.communicate(timeout=timeout)
    return proc.returncode, err


def run_bench(*args: str, env_extra: dict | None = None, timeout: float = 300) -> tuple[int, str]:
    return finish(bench(*args, env_extra=env_extra), timeout)


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def complete_rows(path: Path) -> list[str]:
    """run_ids of the complete lines of runs.csv as a crash left it (no repair)."""
    if not path.exists():
        return []
    lines = path.read_text().splitlines(keepends=True)[1:]
    return [line.split(",", 1)[0] for line in lines if line.endswith("\n")]


def processes_tagged(tag: str) -> list[int]:
    """Live processes whose environment holds ZOO_TEST_TAG=tag (Linux /proc)."""
    found = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            if f"ZOO_TEST_TAG={tag}".encode() in (proc / "environ").read_bytes().split(b"\0"):
                state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
                if state != "Z":
                    found.append(int(proc.name))
        except OSError:
            continue
    return found


def checkpoint_steps(out: Path, run_id: str) -> list[int]:
    folder = out / "checkpoints" / run_id
    if not folder.is_dir():
        return []
    return sorted(int(p.name) for p in folder.iterdir() if p.name.isdigit())


def assert_same_results(out: Path, reference: Path) -> None:
    """Every run exactly once, each identical to the uninterrupted reference."""
    assert (out / "runs.csv").read_text().endswith("\n")
    assert sorted(r["run_id"] for r in read_csv(out / "runs.csv")) == sorted(RUN_IDS), "each run exactly once"
    assert_same_runs(out / "runs.csv", reference / "runs.csv")


def wait_for(condition, proc: subprocess.Popen, timeout: float = 240, what: str = "") -> None:
    deadline = time.time() + timeout
    while not condition():
        assert proc.poll() is None, f"the suite ended before {what}: {proc.communicate()[1][-2000:]}"
        assert time.time() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def no_traceback(err: str) -> None:
    assert "Traceback" not in err, err[-3000:]


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    """The reliability suite run once, uninterrupted, into a fresh folder."""
    # In this process: the reference is what the tests compare against, not what they test.
    import io

    from zoo.bench.runner import run_suite

    out = tmp_path_factory.mktemp("reference")
    run_suite(load_suite(str(SUITE)), out, stream=io.StringIO())
    rows = read_csv(out / "runs.csv")
    assert sorted(r["run_id"] for r in rows) == sorted(RUN_IDS)
    # The interruption tests need every run to train all its chunks.
    assert all(r["status"] == "unsolved" and r["steps_trained"] == "40" for r in rows), rows
    return out


# --------------------------------------------------------------------------- divergence and failing runs


@pytest.mark.slow  # end to end: suites in processes of their own
def test_divergence_and_failing_runs_do_not_stop_the_suite(tmp_path: Path) -> None:
    out = tmp_path / "faults"
    rc, err = run_bench("--suite", str(FAULTS), "--out", str(out))
    # (Not loaded here: the plugin's architectures would join this process's registry.)
    by_config = {r["arch"] + r["horizon"]: r for r in read_csv(out / "runs.csv") if r["task"] == "delayed_copy"}
    rows = {r["run_id"]: r for r in read_csv(out / "runs.csv")}
    faults = {key: r["run_id"] for key, r in by_config.items()}
    failed = re.findall(r"run (\S+) failed: TypeError", err)
    assert len(failed) == 1 and failed[0].startswith("fragile-delayed_copy-h4-")
    faults["fragile4"] = failed[0]

    # A run whose loss and parameters blow up is recorded as diverged.
    diverged = rows[faults["rnn2"]]
    assert diverged["status"] == "diverged" and diverged["success"] == "0"
    assert "NaN" in diverged["note"]
    # Numerical failures raised as exceptions inside a run are divergence too.
    assert rows[faults["fragile3"]]["status"] == "diverged"
    assert rows[faults["fragile3"]]["note"].startswith("LinAlgError")
    assert rows[faults["fragile5"]]["status"] == "diverged"
    assert rows[faults["fragile5"]]["note"].startswith("FloatingPointError")
    # The healthy run after all of them trained to the end.
    healthy = rows[faults["rnn6"]]
    assert healthy["status"] in ("solved", "unsolved") and healthy["steps_trained"] != "0"

    # A programming error: not a result, one line naming the run, exit status 1.
    bug = faults["fragile4"]
    assert bug not in rows
    assert rc == 1, err
    no_traceback(err)
    error_lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert any(bug in line and "TypeError" in line for line in error_lines), err
    assert error_lines[-1].startswith("error: 1 run(s) failed") and bug in error_lines[-1]
    assert "Traceback" in (out / "errors.log").read_text()
    # A run whose data set is missing is recorded as skipped, with the reason.
    skipped = next(r for r in rows.values() if r["task"] == "needs_data")
    assert skipped["status"] == "skipped" and "ZOO_TEST_DATA" in skipped["note"]
    assert (out / "leaderboard.csv").exists()

    # Rerun with the data there: the skipped run is tried again and now trains, the failed
    # run is tried again (and fails the same way), the rest is kept; each run once.
    rc, err = run_bench("--suite", str(FAULTS), "--out", str(out), env_extra={"ZOO_TEST_DATA": "1"})
    assert rc == 1 and "4 already done" in err, err
    again = read_csv(out / "runs.csv")
    assert sorted(r["run_id"] for r in again) == sorted(rows)
    assert next(r for r in again if r["task"] == "needs_data")["status"] in ("solved", "unsolved")


# --------------------------------------------------------------------------- interruption and kills


@pytest.mark.slow
def test_signals_and_kills_at_random_moments_lose_nothing(reference: Path, tmp_path: Path) -> None:
    """SIGINT, then crashes mid-checkpoint, mid-row and at a random moment; resume after each."""
    rng = random.Random(1234)
    out = tmp_path / "chain"
    runs_csv = out / "runs.csv"
    first = RUN_IDS[0]

    # 1. SIGINT while the first run trains: it checkpoints, and the suite exits 130.
    proc = bench("--suite", str(SUITE), "--out", str(out))
    wait_for(lambda: 10 in checkpoint_steps(out, first), proc, what="the first run's step-10 checkpoint")
    proc.send_signal(signal.SIGINT)
    rc, err = finish(proc)
    assert rc == 130, err
    no_traceback(err)
    assert "resume" in err
    assert first not in complete_rows(runs_csv)
    saved = max(checkpoint_steps(out, first))
    assert saved > 10  # saved at the evaluation after the signal, not only the periodic ones

    # 2. Resume: the interrupted run continues from its checkpoint; die mid-checkpoint-save.
    n = rng.randint(2, 8)
    rc, err = run_bench("--suite", str(SUITE), "--out", str(out), env_extra={"ZOO_TEST_CRASH_AT": f"checkpoint:{n}"})
    assert rc == -signal.SIGKILL, err
    assert f"resuming {first} from step {saved}" in err

    # 3. Die in the middle of appending the next result row.
    done = complete_rows(runs_csv)
    rc, err = run_bench("--suite", str(SUITE), "--out", str(out), env_extra={"ZOO_TEST_CRASH_AT": "row:1"})
    assert rc == -signal.SIGKILL, err
    text = runs_csv.read_text()
    assert not text.endswith("\n")  # half a line
    cut = text.rsplit("\n", 1)[1].split(",", 1)[0]
    assert cut not in done

    # 4. SIGKILL at a random moment once training is under way.
    proc = bench("--suite", str(SUITE), "--out", str(out))
    wait_for(lambda: runs_csv.read_text().endswith("\n"), proc, what="runs.csv repaired")
    time.sleep(rng.uniform(0.5, 3.0))
    proc.kill()
    _, err = finish(proc)
    assert f"(run {cut}) cut off" in err  # the half row was noticed, named, and dropped

    # 5. The last resume finishes with exactly the uninterrupted results.
    rc, err = run_bench("--suite", str(SUITE), "--out", str(out))
    assert rc == 0, err
    no_traceback(err)
    assert_same_results(out, reference)


@pytest.mark.slow
def test_workers_crash_and_sigterm_resume_identically(reference: Path, tmp_path: Path) -> None:
    """--workers 2: a worker dies mid-checkpoint (taking the suite down), then SIGTERM, then resume."""
    rng = random.Random(99)
    out = tmp_path / "workers"
    runs_csv = out / "runs.csv"
    workers = ("--workers", "2")

    n = rng.randint(3, 7)
    tag = f"zoo-reliability-{os.getpid()}-{time.time()}"
    rc, err = run_bench("--suite", str(SUITE), "--out", str(out), *workers,
                        env_extra={"ZOO_TEST_CRASH_AT": f"checkpoint:{n}", "ZOO_TEST_TAG": tag})
    assert rc == -signal.SIGKILL, err
    # No worker outlives the suite (they would go on writing checkpoints of runs in flight).
    deadline = time.time() + 10
    while (left := processes_tagged(tag)) and time.time() < deadline:
        time.sleep(0.1)
    assert not left, "orphaned worker processes"

    # SIGTERM once a run without a result has a checkpoint past step 0.
    done_before = set(complete_rows(runs_csv))
    proc = bench("--suite", str(SUITE), "--out", str(out), *workers)
    started = time.time()

    def in_flight_progress() -> bool:
        for run_id in set(RUN_IDS) - set(complete_rows(runs_csv)):
            folder = out / "checkpoints" / run_id
            for step in checkpoint_steps(out, run_id):
                if step > 0 and (folder / str(step)).stat().st_mtime > started:
                    return True
        return False

    wait_for(in_flight_progress, proc, what="a run in flight to checkpoint")
    proc.send_signal(signal.SIGTERM)
    rc, err = finish(proc)
    assert rc == 130, err
    no_traceback(err)
    interrupted = {r: max(checkpoint_steps(out, r)) for r in RUN_IDS
                   if r not in complete_rows(runs_csv) and checkpoint_steps(out, r)}
    interrupted = {r: step for r, step in interrupted.items() if step > 0}
    assert interrupted
    assert set(complete_rows(runs_csv)) >= done_before

    rc, err = run_bench("--suite", str(SUITE), "--out", str(out), *workers)
    assert rc == 0, err
    no_traceback(err)
    for run_id, step in interrupted.items():
        assert f"resuming {run_id} from step {step}" in err
    assert_same_results(out, reference)


# --------------------------------------------------------------------------- damaged state


def _damage(path: Path, how: str) -> None:
    data = path.read_bytes()
    if how == "truncate":
        path.write_bytes(data[: len(data) // 2])
    else:  # garble bytes in the middle
        b = bytearray(data)
        for i in range(len(b) // 2, min(len(b) // 2 + 16, len(b))):
            b[i] ^= 0x5A
        path.write_bytes(bytes(b))


@pytest.mark.slow
def test_damaged_checkpoints_and_runs_csv_are_detected_and_redone(reference: Path, tmp_path: Path) -> None:
    out = tmp_path / "damaged"
    shutil.copytree(reference, out)
    r0, r1, r2, r3 = RUN_IDS
    rows = {line.split(",", 1)[0]: line for line in (reference / "runs.csv").read_text().splitlines(keepends=True)}
    header = (reference / "runs.csv").read_text().splitlines(keepends=True)[0]
    # runs.csv: r0's row replaced by garbage, r2's row twice, r1's row cut off at the end.
    (out / "runs.csv").write_text(
        header + "\x00\x13garbage,,,not a row\n" + rows[r2] + rows[r3] + rows[r2] + rows[r1][: len(rows[r1]) // 2]
    )
    # r0: its newest checkpoint's array data truncated -> falls back to the older one.
    newest, older = checkpoint_steps(out, r0)[-1], checkpoint_steps(out, r0)[-2]
    for f in (out / "checkpoints" / r0 / str(newest) / "state").rglob("*"):
        if f.is_file() and f.parent.name == "d":
            _damage(f, "truncate")
    # r1: the newest checkpoint's metadata edited (still valid JSON: only the checksum can
    # tell), the older one's array metadata garbled -> starts from scratch.
    steps1 = checkpoint_steps(out, r1)
    meta = out / "checkpoints" / r1 / str(steps1[-1]) / "meta" / "metadata"
    meta.write_text(meta.read_text().replace('"step": 40', '"step": 30'))
    _damage(out / "checkpoints" / r1 / str(steps1[-2]) / "state" / "_METADATA", "garble")

    rc, err = run_bench("--suite", str(SUITE), "--out", str(out))
    assert rc == 0, err
    no_traceback(err)
    warnings = [line for line in err.splitlines() if line.startswith("warning:")]
    joined = "\n".join(warnings)
    assert f"(run {r1}) cut off" in joined and f"run {r2} recorded twice" in joined and "damaged" in joined
    assert f"checkpoint {r0}/{newest} is damaged" in joined and f"falling back to step {older}" in joined
    assert f"checkpoint {r1}/{steps1[-1]} is damaged (ValueError: checksum mismatch)" in joined
    assert f"checkpoint {r1}/{steps1[-2]} is damaged" in joined and "restarting the run from scratch" in joined
    assert f"resuming {r0} from step {older}" in err
    assert "2 already done" in err  # r2 and r3 kept
    assert (out / "runs.csv.damaged").exists()
    assert_same_results(out, reference)


# --------------------------------------------------------------------------- two processes, determinism


@pytest.fixture(scope="module")
def two_processes(tmp_path_factory) -> tuple[Path, list[tuple[int, str]]]:
    """Two suite processes started together on one fresh folder."""
    out = tmp_path_factory.mktemp("contended")
    procs = [bench("--suite", str(SUITE), "--out", str(out)) for _ in range(2)]
    return out, [finish(p) for p in procs]


@pytest.mark.slow
def test_second_process_on_the_same_folder_refuses(two_processes) -> None:
    _out, outcomes = two_processes
    codes = sorted(rc for rc, _ in outcomes)
    assert codes == [0, 2], outcomes
    refused = next(err for rc, err in outcomes if rc == 2)
    no_traceback(refused)
    assert refused.startswith("error: ") and "is in use by pid" in refused and "--out" in refused
    assert len(refused.strip().splitlines()) == 1


@pytest.mark.slow
def test_same_seeds_give_identical_results_in_fresh_folders(two_processes, reference: Path) -> None:
    out, _ = two_processes
    assert_same_results(out, reference)  # also: the refused process changed nothing


# --------------------------------------------------------------------------- bad input


def _suite_file(tmp: Path, name: str, text: str) -> str:
    path = tmp / f"{name}.toml"
    path.write_text(text)
    return str(path)


GOOD = """
archs = ["rnn"]
[defaults]
steps = 10
[[experiments]]
task = "delayed_copy"
horizons = [2]
options = { seq_len = 8 }
"""


def _bad_input_cases(tmp: Path) -> list[tuple[list[str], str]]:
    quick_copy = tmp / "my_quick.toml"
    shutil.copy(suite_module.CONFIG_DIR / "quick.toml", quick_copy)
    good = _suite_file(tmp, "good", GOOD)
    s = lambda name, text: ["--suite", _suite_file(tmp, name, text)]  # noqa: E731
    return [
        (s("malformed", "seeds = [\n"), "malformed.toml: malformed TOML"),
        (s("unknown_key", "bogus = 1\n" + GOOD), "unknown_key: unknown key 'bogus'; allowed: "),
        (s("wrong_type", GOOD.replace("steps = 10", 'steps = "many"')),
         "wrong_type.defaults.steps: must be a positive integer"),
        (s("neg_horizon", GOOD.replace("[2]", "[-3]")), "horizons: must be a non-negative number, got -3"),
        (s("zero_horizon", GOOD.replace("[2]", "[0]")), "delayed_copy: horizon must be an integer in [1, "),
        (s("zero_seeds", "seeds = 0\n" + GOOD.replace("steps = 10", "steps = 0")),
         "zero_seeds.seeds: must be a positive integer"),
        (s("option_range", GOOD.replace("seq_len = 8", "seq_len = 8, success_threshold = 2.0")),
         "success_threshold must be a number in (0.5, 1.0]"),
        (["--suite", good, "--plugin", "zoo_test_plugin", "--archs", "wrong_shape"],
         "wrong_shape: transition(h, x) must return shape (32,), got (64,)"),
        (["--suite", good, "--archs", "rnn,nope"], "--archs: unknown architecture 'nope'; registered: "),
        (["--suite", str(quick_copy), "--tasks", "nope"], "--tasks: unknown task 'nope'; registered: "),
        (["--suite", good, "--plugin", "zoo_test_broken_plugin"],
         "plugin 'zoo_test_broken_plugin' failed while importing: RuntimeError: this plugin is broken"),
        (["--suite", good, "--workers", "0"], "--workers must be a positive integer, got 0"),
        # --suite by name and by path: the same validation.
        (["--suite", "quick", "--seeds", "0"], "--seeds: must be a positive integer"),
        (["--suite", str(quick_copy), "--seeds", "0"], "--seeds: must be a positive integer"),
        (["--suite", "no_such_suite"], "unknown suite 'no_such_suite'; available: "),
    ]


# Cases that run in a process of their own: the plugins (importing them here would register
# their architectures in this process) and one that checks the real exit status and stderr.
IN_A_PROCESS = ("zoo_test_plugin", "zoo_test_broken_plugin", "malformed.toml")


def test_bad_input_is_a_one_line_error_with_exit_status_2(tmp_path: Path, capsys) -> None:
    from zoo.bench.cli import main

    cases = _bad_input_cases(tmp_path)
    out = str(tmp_path / "out")
    alone = [c for c in cases if any(a.endswith(IN_A_PROCESS) for a in c[0])]
    assert len(alone) == 3

    def one(case):
        args, expected = case
        rc, err = run_bench(*args, "--out", out, timeout=120)
        return args, expected, rc, err

    with cf.ThreadPoolExecutor(2) as pool:
        pending = pool.map(one, alone)
        outcomes = []
        for args, expected in (c for c in cases if c not in alone):  # the CLI's main, in this process
            capsys.readouterr()
            rc = main([*args, "--out", out])
            outcomes.append((args, expected, rc, capsys.readouterr().err))
        outcomes += list(pending)
    for args, expected, rc, err in outcomes:
        assert rc == 2, (args, err)
        assert "Traceback" not in err, (args, err)
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), (args, err)
        assert expected in lines[0], (args, lines[0])
    assert len(outcomes) == len(cases)
    assert not (tmp_path / "out" / "runs.csv").exists()


@pytest.mark.parametrize(
    "edit, message",
    [
        ({"defaults": {"lr": float("inf")}}, "defaults.lr: must be a positive number, got inf"),
        ({"defaults": {"lr": {"rnnn": 1e-3}}}, "defaults.lr: unknown architecture 'rnnn'"),
        ({"defaults": {"clip": -1}}, "defaults.clip: must be a non-negative number"),
        ({"defaults": {"hidden_size": 2.5}}, "defaults.hidden_size: must be a positive integer"),
        ({"defaults": {"steps": 0}}, "defaults.steps: must be a positive integer"),
        ({"defaults": {"steps": 10**30}}, "defaults.steps: must be a positive integer (at most"),
        ({"plugins": ["no_such_module_xyz"]}, "plugin 'no_such_module_xyz' cannot be imported: No module named"),
        ({"flossing_config": {"target": "x"}}, "flossing_config.target: must be a finite number"),
        ({"flossing_config": {"k": 0}}, "flossing_config.k: must be a positive integer"),
        ({"flossing_config": {"bogus": 1}}, "flossing_config: unknown key 'bogus'"),
        ({"arch_options": {"rnn": {"gainz": 2}}}, "arch_options.rnn: rnn: "),
        ({"arch_options": {"rnn": {"gain": "big"}}}, "arch_options.rnn: rnn: "),
        ({"experiments": [{"horizons": [2]}]}, "experiments[0].task: missing; registered tasks: "),
        ({"experiments": [{"task": "delayed_copy", "horizons": [float("nan")]}]}, "horizons: must be a non-negative"),
        ({"experiments": [{"task": "delayed_copy", "horizons": [2], "options": {"bogus": 1}}]},
         "unknown option 'bogus'; allowed: "),
        ({"experiments": [{"task": "delayed_copy", "horizons": [2], "options": {"seq_len": "x"}}]}, "seq_len"),
        ({"plugins": "zoo_test_plugin"}, "plugins: must be a non-empty list of strings"),
        ({"description": 3}, "description: must be a string"),
    ],
)
def test_more_bad_fields_are_one_line_config_errors(edit: dict, message: str) -> None:
    raw = {"archs": ["rnn"], "experiments": [{"task": "delayed_copy", "horizons": [2]}], **edit}
    with pytest.raises(ConfigError) as info:
        parse_suite(raw, name="bad")
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_zero_means_none_where_it_should() -> None:
    raw = {"archs": ["rnn"], "flossing": ["pre"], "experiments": [{"task": "delayed_copy", "horizons": [2]}],
           "flossing_config": {"warmup": 0, "pre_steps": 0, "during_times": 0}, "defaults": {"clip": 0}}
    assert len(parse_suite(raw, name="ok", validate_models=False).runs) == 1


def test_suite_by_name_or_path_is_the_same_suite(tmp_path: Path, monkeypatch) -> None:
    fast = {"tasks": ["delayed_copy"], "validate_models": False}  # (building every task takes long)
    by_name = load_suite("quick", **fast)
    by_path = load_suite(str(suite_module.CONFIG_DIR / "quick.toml"), **fast)
    # horizons x (rnn, lru flossed 3 ways; 11 more architectures)
    assert by_name == by_path and len(by_name.runs) == 3 * (2 * 3 + 11)
    # A broken suite gets the same error by name as by path.
    (tmp_path / "broken.toml").write_text("seeds = -1\n" + GOOD)
    monkeypatch.setattr(suite_module, "CONFIG_DIR", tmp_path)
    errors = []
    for ref in ("broken", str(tmp_path / "broken.toml")):
        with pytest.raises(ConfigError) as info:
            load_suite(ref)
        errors.append(str(info.value))
    assert errors[0] == errors[1] == "broken.seeds: must be a positive integer (at most 2147483647), got -1"
    with pytest.raises(ConfigError, match="missing.toml' does not exist"):
        load_suite(str(tmp_path / "missing.toml"))
    # A folder named like a suite in the working directory does not shadow it.
    monkeypatch.chdir(tmp_path)
    (tmp_path / "quick").mkdir()
    monkeypatch.setattr(suite_module, "CONFIG_DIR", ROOT / "bench_configs")
    assert load_suite("quick", **fast) == by_name
