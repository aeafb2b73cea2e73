"""`--executor ray`: each group of runs (`zoo.bench.group`) is a Ray task, on this machine or on a Ray cluster.

The executors table (`zoo.bench.executors`) imports this module only when ``--executor ray``
is chosen; Ray itself is imported only when a suite runs (``pip install -e '.[ray]'``).

- Each pending group is one task calling `runner.execute_group` on a worker, writing each
  run's checkpoints under ``OUT/checkpoints/RUN_ID`` (OUT as an absolute path, so on a
  cluster it must be a folder every node sees at the same path). The driver records
  each run's row (`runs.csv`) as its task completes; workers never write runs.csv.
- A worker that dies mid-run (killed, OOM, node lost) has its task retried by Ray
  (`max_retries`, default 3). The retry resumes from the run's last checkpoint, and
  since a resumed run reproduces the uninterrupted one exactly, the suite's results
  are those of the local executor. A run whose workers die more than `max_retries`
  times is reported like a run that raised an error (errors.log, exit 1); the other
  runs go on.
- SIGINT/SIGTERM on the driver: queued tasks are cancelled and running ones are asked
  to checkpoint and stop through a stop file in OUT that their `should_stop` polls;
  the driver then raises `Interrupted` (the CLI exits 130). A second signal stops at once.
- Resources: every task (a group of runs) asks Ray for one CPU (``num_cpus=1``). It also asks for
  ``gpus_per_run`` GPUs: by default 1 when the driver's jax backend is a GPU or the
  cluster reports GPUs, else 0. Override it with ``run_suite(..., gpus_per_run=X)`` or
  the environment variable ``ZOO_RAY_GPUS_PER_RUN`` (0 forces CPU runs; a fraction
  shares a GPU between runs, which then allocate GPU memory as they go).
- Workers import the suite's plugins before running (the driver's working directory
  is on their `sys.path` when it exists on their node) and use the driver's
  persistent compilation cache folder (``jax_compilation_cache_dir``), if any.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import sys
import time
import warnings
from collections.abc import Sequence
from pathlib import Path

from zoo.bench import runner
from zoo.bench.errors import ConfigError, one_line
from zoo.bench.group import Group
from zoo.bench.spec import Suite
from zoo.bench.train import Interrupted
from zoo.bench.worker import setup_worker

INSTALL_HINT = "pip install -e '.[ray]'"
STOP_FILE = ".ray-stop"  # in the output folder: running tasks checkpoint and stop when it exists
TASKS_DIR = ".ray-tasks"  # in the output folder: RUN_ID.json per run of a running task (pid, node, attempt)
GPUS_ENV = "ZOO_RAY_GPUS_PER_RUN"


def import_ray():
    """The `ray` module, or a one-line `ConfigError` saying how to install it."""
    try:
        import ray
    except ImportError as e:
        raise ConfigError(
            f"--executor ray needs Ray, an optional extra: {INSTALL_HINT} "
            f"(from the repository root; {type(e).__name__}: {e})"
        ) from None
    return ray


def prepare_driver(address: str | None = None) -> None:
    """Call before jax starts a backend in the driver: check that Ray imports and that a
    cluster answers at `address` (or $RAY_ADDRESS) if one is given, and keep the driver from
    preallocating most of a GPU that its own Ray tasks will need."""
    import_ray()
    _check_reachable(address)
    os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")


def prepare(options: dict) -> None:
    """The executors table's hook: `prepare_driver` with the command line's --ray-address."""
    prepare_driver(options.get("ray_address"))


# --------------------------------------------------------------------------- the worker side


def _setup_worker(plugins: Sequence[str], cache_dir: str | None, driver_cwd: str, gpus: float) -> None:
    if 0 < gpus < 1:  # runs share a GPU: none may take most of its memory up front
        os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
    if driver_cwd and os.path.isdir(driver_cwd) and driver_cwd not in sys.path:
        sys.path.append(driver_cwd)  # plugins next to the driver, on a shared file system
    try:
        setup_worker(plugins, cache_dir)
    except ConfigError as e:
        raise ConfigError(f"on Ray node {socket.gethostname()}: {e}") from None


def _latest_checkpoint(run_dir: Path) -> int | None:
    try:
        steps = [int(p.name) for p in run_dir.iterdir() if p.name.isdigit()]
    except OSError:
        return None
    return max(steps, default=None)


def run_task(group: Group, out_dir: str, plugins: Sequence[str], cache_dir: str | None,
             driver_cwd: str, gpus: float) -> list:
    """The body of one Ray task: `runner.execute_group` with a stop file; [] when stopped.

    Each run of the group has its marker (the same pid and attempt)."""
    _setup_worker(plugins, cache_dir, driver_cwd, gpus)
    out = Path(out_dir)
    stop_file = out / STOP_FILE
    markers = [out / TASKS_DIR / f"{spec.run_id}.json" for spec in group.specs]
    attempt = 1
    for marker in markers:  # a marker left behind is that of an attempt whose worker died
        try:
            attempt = max(attempt, json.loads(marker.read_text())["attempt"] + 1)
        except (OSError, ValueError, KeyError, TypeError):
            pass
    resumed_from = {spec.run_id: _latest_checkpoint(out / "checkpoints" / spec.run_id) for spec in group.specs}
    for spec, marker in zip(group.specs, markers):
        marker.parent.mkdir(parents=True, exist_ok=True)
        tmp = marker.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps({
            "run_id": spec.run_id, "pid": os.getpid(), "node": socket.gethostname(),
            "attempt": attempt, "resumed_from": resumed_from[spec.run_id], "started": time.time(),
        }))
        os.replace(tmp, marker)
    try:
        if stop_file.exists():  # stopped while this task was queued
            return []
        outcomes = runner.execute_group(group, out, stop_file.exists)
    except (Interrupted, KeyboardInterrupt):  # KeyboardInterrupt: ray.cancel caught it starting
        return []
    finally:
        for marker in markers:
            marker.unlink(missing_ok=True)
    if attempt > 1:
        for i, (spec, outcome) in enumerate(outcomes):
            step = resumed_from[spec.run_id]
            where = f"the checkpoint at step {step}" if step is not None else "the start"
            summary = f"{outcome['summary']} (attempt {attempt}, resumed from {where})"
            outcomes[i] = (spec, {**outcome, "summary": summary})
    return outcomes


# --------------------------------------------------------------------------- the driver side


def _connect(ray, address: str | None) -> bool:
    """Connect to (or start) Ray; True when this call did, so the executor disconnects after."""
    if ray.is_initialized():
        return False
    import logging

    kwargs: dict = {"logging_level": logging.WARNING}
    if not address and not os.environ.get("RAY_ADDRESS"):
        kwargs["include_dashboard"] = False  # a local instance for this suite only
    _check_reachable(address)
    try:
        with warnings.catch_warnings():  # Ray starts its processes by fork+exec, which is safe
            warnings.filterwarnings("ignore", message="os.fork", category=RuntimeWarning)
            ray.init(address=address or None, **kwargs)
    except (ConnectionError, ValueError, RuntimeError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ConfigError(f"--ray-address {address or os.environ.get('RAY_ADDRESS', '')}: "
                          f"cannot connect to Ray: {first}") from None
    return True


def _check_reachable(address: str | None) -> None:
    """Fail in one line on a HOST:PORT nobody listens on (ray.init would retry forever)."""
    where = "--ray-address" if address else "RAY_ADDRESS"
    address = address or os.environ.get("RAY_ADDRESS", "")
    host, sep, port = address.strip().rpartition(":")
    if not sep or not port.isdigit() or "://" in address:
        return  # auto, local, ray://... : Ray's own handling
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=10).close()
    except OSError as e:
        raise ConfigError(f"{where} {address}: no Ray cluster answers there "
                          f"({e.strerror or type(e).__name__}); start one with `ray start --head` "
                          "or check the address") from None


def resolve_gpus_per_run(ray, requested: float | None) -> float:
    """GPUs each run asks Ray for: `requested`, else $ZOO_RAY_GPUS_PER_RUN, else 1 when the
    driver's jax backend or the cluster has GPUs, else 0."""
    if requested is None and os.environ.get(GPUS_ENV, "").strip():
        try:
            requested = float(os.environ[GPUS_ENV])
        except ValueError:
            raise ConfigError(f"{GPUS_ENV} must be a number, got {os.environ[GPUS_ENV]!r}") from None
    if requested is not None:
        if not requested >= 0 or (requested > 1 and not float(requested).is_integer()):
            raise ConfigError("GPUs per run must be 0, a fraction below 1 or a whole number, "
                              f"got {requested!r}")
        return float(requested)
    import jax

    driver_gpu = jax.default_backend() in ("gpu", "cuda", "rocm")
    cluster_gpu = ray.cluster_resources().get("GPU", 0) > 0
    return 1.0 if driver_gpu or cluster_gpu else 0.0


def run_ray(pending: Sequence[Group], out_dir: Path, record, *, suite: Suite,
            ray_address: str | None = None, max_retries: int = 3, gpus_per_run: float | None = None,
            workers: int = 1) -> None:
    """Run `pending` as Ray tasks and `record` each outcome in the driver as it completes."""
    import jax

    ray = import_ray()
    if workers > 1:
        print("warning: --workers is for the local executor; Ray runs as many runs at once as "
              "the cluster has CPUs (or GPUs) for", file=sys.stderr)
    out = Path(out_dir).resolve()
    started_here = _connect(ray, ray_address)
    try:
        gpus = resolve_gpus_per_run(ray, gpus_per_run)
        resources = ray.cluster_resources()
        print(f"ray: {int(resources.get('CPU', 0))} CPUs and {resources.get('GPU', 0):g} GPUs in the "
              f"cluster; each group of runs asks for 1 CPU" + (f" and {gpus:g} GPU" if gpus else ""),
              file=sys.stderr, flush=True)
        if gpus and not resources.get("GPU", 0):
            print("warning: no GPU in the Ray cluster yet; runs wait for a node with one "
                  f"(set {GPUS_ENV}=0 to run them on CPUs)", file=sys.stderr, flush=True)
        _drive(ray, pending, out, record, suite=suite, max_retries=max_retries, gpus=gpus,
               cache_dir=jax.config.jax_compilation_cache_dir)
    finally:
        if started_here:
            ray.shutdown()


def _drive(ray, pending, out: Path, record, *, suite: Suite, max_retries: int, gpus: float,
           cache_dir: str | None) -> None:
    stop_file, tasks_dir = out / STOP_FILE, out / TASKS_DIR
    stop_file.unlink(missing_ok=True)  # left by a driver that died; this one holds the lock
    shutil.rmtree(tasks_dir, ignore_errors=True)
    tasks_dir.mkdir(parents=True)
    options = {"num_cpus": 1, "max_retries": max_retries, "retry_exceptions": False}
    if gpus:
        options["num_gpus"] = gpus
    task = ray.remote(run_task).options(**options)
    # Groups of one compiled shape go out together, so a worker mostly reuses its compilations.
    order = sorted(pending, key=lambda g: (g.specs[0].arch, g.specs[0].task, g.specs[0].arch_options,
                                           g.specs[0].task_options))
    args = (str(out), tuple(suite.plugins), cache_dir, os.getcwd(), gpus)
    groups = {task.remote(group, *args): group for group in order}
    remaining = list(groups)
    stopping, error = False, None

    def stop_all() -> None:
        stop_file.touch()  # running tasks checkpoint at their next evaluation and return {}
        for ref in remaining:  # queued tasks (no marker yet) are dropped
            if not (tasks_dir / f"{groups[ref].specs[0].run_id}.json").exists():
                ray.cancel(ref)

    try:
        with runner.stop_on_signals() as should_stop:
            while remaining:
                done, remaining = ray.wait(remaining, num_returns=1, timeout=0.5)
                if should_stop() and not stopping:
                    stopping = True
                    stop_all()
                for ref in done:
                    try:
                        outcomes = ray.get(ref)
                    except ray.exceptions.TaskCancelledError:
                        continue
                    except ray.exceptions.RayError as e:
                        cause = getattr(e, "cause", None)
                        if isinstance(cause, ConfigError):  # a plugin missing on a node: stop, one line
                            error = error or cause
                            if not stopping:
                                stopping = True
                                stop_all()
                            continue
                        # Its workers died more than max_retries times (or the task wrapper failed):
                        # an error for this run, as runner.execute reports one; the others go on.
                        outcomes = [(spec, {"error": f"run {spec.run_id} failed on Ray: "
                                                     f"{type(e).__name__}: {one_line(e, '(no message)')}",
                                            "traceback": str(e)}) for spec in groups[ref].specs]
                    for spec, outcome in outcomes:
                        record(spec, outcome)
    except BaseException:  # a second Ctrl-C: stop at once
        for ref in remaining:
            try:
                ray.cancel(ref, force=True)
            except Exception:  # noqa: BLE001  (already finished or gone)
                pass
        raise
    finally:
        stop_file.unlink(missing_ok=True)
        shutil.rmtree(tasks_dir, ignore_errors=True)
    if error is not None:
        raise error
    if stopping:
        raise Interrupted("stopped on request")

