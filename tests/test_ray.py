"""`--executor ray`: a tiny suite on a local Ray instance survives a killed worker with the
local executor's results, stops cleanly on SIGINT, and without Ray is a one-line error."""

from __future__ import annotations

import csv
import importlib.util
import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path

import pytest

from runs_csv import assert_same_runs
from zoo.bench.runner import run_suite
from zoo.bench.suite import load_suite

ROOT = Path(__file__).resolve().parents[1]
SUITE = ROOT / "tests" / "data" / "tiny_ray.toml"  # 3 runs of one compiled shape, ~5 s each
COMPARED = ("status", "metric", "steps_to_success", "steps_trained", "lambda1_after")

needs_ray = pytest.mark.skipif(
    importlib.util.find_spec("ray") is None,
    reason="Ray is not installed (pip install -e '.[ray]')",
)


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path) as f:
        return list(csv.DictReader(f))


def running_markers(out: Path) -> list[dict]:
    """The markers of the tasks running now (pid, node, attempt), written by the tasks."""
    found = []
    for path in (out / ".ray-tasks").glob("*.json"):
        try:
            found.append(json.loads(path.read_text()))
        except (OSError, ValueError):
            pass  # finished and removed meanwhile
    return found


def checkpoint_steps(out: Path, run_id: str) -> list[int]:
    try:
        return sorted(int(p.name) for p in (out / "checkpoints" / run_id).iterdir() if p.name.isdigit())
    except OSError:
        return []


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    """The driver's persistent compilation cache, which the Ray workers must share."""
    import jax

    path = tmp_path_factory.mktemp("xla-cache")
    before = jax.config.jax_compilation_cache_dir
    jax.config.update("jax_compilation_cache_dir", str(path))
    yield path
    jax.config.update("jax_compilation_cache_dir", before)


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    """The suite run by the local executor."""
    out = tmp_path_factory.mktemp("local")
    run_suite(load_suite(str(SUITE)), out, stream=io.StringIO())
    return out


@pytest.fixture(scope="module")
def ray_cluster(cache_dir):
    """A light, offline Ray instance on this machine: 2 CPUs, no dashboard, a small object store."""
    import ray

    saved = os.environ.get("RAY_USAGE_STATS_ENABLED")
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"  # offline
    with warnings.catch_warnings():  # jax warns about any fork; Ray's are fork+exec
        warnings.filterwarnings("ignore", message="os.fork", category=RuntimeWarning)
        ray.init(num_cpus=2, include_dashboard=False, object_store_memory=80 * 1024**2,
                 logging_level="WARNING", log_to_driver=False)
    yield ray
    ray.shutdown()
    if saved is None:
        os.environ.pop("RAY_USAGE_STATS_ENABLED", None)
    else:
        os.environ["RAY_USAGE_STATS_ENABLED"] = saved


@pytest.mark.slow  # end to end: a Ray instance and suites on it
@needs_ray
def test_killed_worker_is_retried_from_its_checkpoint_with_the_local_results(
    ray_cluster, reference: Path, cache_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "ray"
    killed: dict = {}
    done = threading.Event()

    def kill_one_worker_part_way() -> None:
        # Wait for a task that has trained past two checkpoints (and is far from done), then
        # SIGKILL its worker.
        deadline = time.time() + 150
        while time.time() < deadline and not done.is_set():
            for m in running_markers(out):
                steps = checkpoint_steps(out, m["run_id"])
                if m["attempt"] == 1 and steps and 40 <= steps[-1] <= 120:
                    os.kill(m["pid"], signal.SIGKILL)
                    killed.update(m, steps_at_kill=steps)
                    return
            time.sleep(0.02)

    # A folder of the Ray run's own for the driver's compilation cache: the reference run filled
    # the module's, and the driver trains nothing, so a training program found here afterwards
    # was compiled and written by a worker that was given the driver's folder.
    import jax

    ray_cache = tmp_path / "xla-ray"
    ray_cache.mkdir()
    jax.config.update("jax_compilation_cache_dir", str(ray_cache))
    watcher = threading.Thread(target=kill_one_worker_part_way, daemon=True)
    watcher.start()
    stream = io.StringIO()
    try:
        n = run_suite(load_suite(str(SUITE)), out, executor="ray", stream=stream)
    finally:
        done.set()
        watcher.join()
        jax.config.update("jax_compilation_cache_dir", str(cache_dir))
    log = stream.getvalue()
    assert n == 3
    assert killed, "no worker was killed part way:\n" + log
    assert killed["steps_at_kill"][-1] < 200  # part way through the run

    rows = read_csv(out / "runs.csv")
    ids = [r["run_id"] for r in rows]
    assert len(ids) == len(set(ids)) == 3, ids  # each run exactly once
    expected = {r["run_id"]: r for r in read_csv(reference / "runs.csv")}
    assert set(ids) == set(expected)
    for row in rows:
        for column in COMPARED:
            assert row[column] == expected[row["run_id"]][column], (row["run_id"], column)

    # The retry resumed from the checkpoint that was there when its worker died (or a later one).
    seed = expected[killed["run_id"]]["seed"]
    line = next(x for x in log.splitlines() if f" s={seed}: " in x)
    assert "(attempt 2, resumed from the checkpoint at step " in line, log
    resumed_at = int(line.rsplit("step ", 1)[1].rstrip(")"))
    assert resumed_at >= killed["steps_at_kill"][-1]
    # The workers wrote their compiled training program into the driver's compilation cache.
    assert list(ray_cache.glob("jit_train-*")), sorted(p.name for p in ray_cache.iterdir())
    # Nothing of the executor's is left in the output folder.
    assert not (out / ".ray-tasks").exists() and not (out / ".ray-stop").exists()
    assert read_csv(out / "leaderboard.csv")


@pytest.mark.slow
@needs_ray
def test_ray_tasks_carry_groups_with_the_local_results(ray_cluster, tmp_path: Path) -> None:
    suite = load_suite(str(SUITE))  # 3 runs of one compiled shape: one group of 3
    run_suite(suite, tmp_path / "local", group=3, stream=io.StringIO())
    assert run_suite(suite, tmp_path / "ray", executor="ray", group=3, stream=io.StringIO()) == 3
    assert_same_runs(tmp_path / "ray" / "runs.csv", tmp_path / "local" / "runs.csv")


@pytest.mark.slow
@needs_ray
def test_sigint_cancels_queued_runs_checkpoints_running_ones_and_exits_130(
    ray_cluster, cache_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "interrupted"
    address = ray_cluster.get_runtime_context().gcs_address
    proc = subprocess.Popen(
        [sys.executable, "-m", "zoo.bench", "--suite", str(SUITE), "--out", str(out),
         "--executor", "ray", "--ray-address", address],
        cwd=ROOT, env={**os.environ, "ZOO_COMPILATION_CACHE": str(cache_dir)},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    running: list[dict] = []
    deadline = time.time() + 150
    while time.time() < deadline and proc.poll() is None and not running:
        running = [m for m in running_markers(out) if checkpoint_steps(out, m["run_id"])[-1:] >= [20]]
        time.sleep(0.05)
    assert running, "no run started: " + (proc.communicate()[1] if proc.poll() is not None else "")
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "resume" in err and "Traceback" not in err
    rows = read_csv(out / "runs.csv") if (out / "runs.csv").exists() else []
    assert len(rows) < 3  # two ran at most when it stopped; the queued one was cancelled
    for m in running:  # the runs in flight saved a checkpoint past the one seen running
        if m["run_id"] not in {r["run_id"] for r in rows}:
            assert checkpoint_steps(out, m["run_id"])[-1] >= 20
    assert not (out / ".ray-tasks").exists() and not (out / ".ray-stop").exists()


def test_without_ray_the_executor_is_a_one_line_error(tmp_path: Path) -> None:
    fake = tmp_path / "no_ray" / "ray"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise ImportError(\"No module named 'ray'\")\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(fake.parent), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run(
        [sys.executable, "-m", "zoo.bench", "--suite", str(SUITE), "--out", str(tmp_path / "o"),
         "--executor", "ray"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("error: --executor ray needs Ray"), done.stderr
    assert "pip install -e '.[ray]'" in done.stderr
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr


def test_gpu_request_rule(monkeypatch) -> None:
    """1 GPU per run when the driver's jax or the cluster has GPUs, else 0; the env var overrides."""
    from zoo.bench.ray_executor import GPUS_ENV, resolve_gpus_per_run
    from zoo.bench.suite import ConfigError

    class FakeRay:
        def __init__(self, gpus: float) -> None:
            self.resources = {"CPU": 8.0, **({"GPU": gpus} if gpus else {})}

        def cluster_resources(self) -> dict:
            return self.resources

    monkeypatch.delenv(GPUS_ENV, raising=False)
    import jax

    on_gpu = jax.default_backend() != "cpu"
    assert resolve_gpus_per_run(FakeRay(0), None) == (1 if on_gpu else 0)  # the driver's backend
    assert resolve_gpus_per_run(FakeRay(4), None) == 1
    assert resolve_gpus_per_run(FakeRay(4), 0.5) == 0.5
    monkeypatch.setenv(GPUS_ENV, "0")
    assert resolve_gpus_per_run(FakeRay(4), None) == 0
    monkeypatch.setenv(GPUS_ENV, "lots")
    with pytest.raises(ConfigError, match=GPUS_ENV):
        resolve_gpus_per_run(FakeRay(4), None)
    with pytest.raises(ConfigError, match="GPUs per run"):
        resolve_gpus_per_run(FakeRay(4), 1.5)
