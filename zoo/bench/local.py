"""The local executor: groups of runs in this process one after another, or in a pool of --workers
processes (a group, `zoo.bench.group`, is the unit of work)."""

from __future__ import annotations

import os
import signal
import traceback
from collections.abc import Sequence
from pathlib import Path

from zoo.bench.errors import DiskFullError, one_line
from zoo.bench.group import Group
from zoo.bench.runner import WorkerDied, execute_group, stop_on_signals
from zoo.bench.spec import Suite
from zoo.bench.train import Interrupted
from zoo.bench.worker import setup_worker


def run_local(pending: Sequence[Group], out_dir: Path, record, *, suite: Suite,
               workers: int = 1) -> None:
    """Groups in this process one after another, or in `workers` processes (one per core pays on a CPU)."""
    if workers > 1 and len(pending) > 1:
        return _run_processes(pending, out_dir, record, workers, suite.plugins)
    with stop_on_signals() as should_stop:
        for group in pending:
            if should_stop():
                raise Interrupted("stopped before " + group.label)
            for spec, outcome in execute_group(group, out_dir, should_stop):
                record(spec, outcome)


_WORKER: dict = {}


def _worker_init(plugins: Sequence[str], cache_dir: str | None, stop_event, parent: int) -> None:
    # Workers start fresh (spawn): the CLI's set-up, then stop only when the parent says so.
    # (Ctrl-C and `kill -TERM -PGID` reach the whole group; the parent decides.)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    _die_with_parent(parent)
    setup_worker(plugins, cache_dir)
    # Stop when asked, or when the parent is gone (nobody would record the result).
    _WORKER["should_stop"] = lambda: stop_event.is_set() or os.getppid() != parent


def _die_with_parent(parent: int) -> None:
    """Linux: be SIGKILLed when the parent dies, so that no orphan goes on writing checkpoints
    of a run that the next invocation of the suite is already redoing."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        return  # elsewhere: the stop check below notices a new parent at the next evaluation
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)


def _worker_execute(group: Group, out_dir: Path) -> list:
    try:
        return execute_group(group, out_dir, _WORKER["should_stop"])
    except Interrupted:
        return []


def _run_processes(pending: Sequence[Group], out_dir: Path, record, workers: int,
                   plugins: Sequence[str]) -> None:
    import concurrent.futures as cf
    import multiprocessing as mp

    import jax

    ctx = mp.get_context("spawn")
    stop_event = ctx.Event()
    # Groups of one compiled shape go out together, so each worker mostly reuses its compilations.
    order = sorted(pending, key=lambda g: (g.specs[0].arch, g.specs[0].task, g.specs[0].arch_options,
                                           g.specs[0].task_options))
    init_args = (tuple(plugins), jax.config.jax_compilation_cache_dir, stop_event, os.getpid())
    with stop_on_signals() as should_stop, cf.ProcessPoolExecutor(
        max_workers=workers, mp_context=ctx, initializer=_worker_init, initargs=init_args
    ) as pool:
        futures = {pool.submit(_worker_execute, group, out_dir): group for group in order}
        pending_futures = set(futures)
        broken, running = False, []

        def stop_all() -> None:
            stop_event.set()  # runs in flight checkpoint and return
            for f in pending_futures:
                f.cancel()

        try:
            while pending_futures:
                if not broken:
                    running = [futures[f].label for f in pending_futures if f.running()]
                done, pending_futures = cf.wait(pending_futures, timeout=0.5, return_when=cf.FIRST_COMPLETED)
                if should_stop() and not stop_event.is_set():
                    stop_all()
                for future in done:
                    if future.cancelled():
                        continue
                    try:
                        outcomes = future.result()
                    except cf.process.BrokenProcessPool:
                        broken = True
                        continue
                    except DiskFullError:
                        raise
                    except Exception as e:  # noqa: BLE001  (execute returns errors; this is the pool's)
                        outcomes = [(spec, {"error": f"run {spec.run_id} failed: {type(e).__name__}: "
                                                     f"{one_line(e, '(no message)')}",
                                            "traceback": "".join(traceback.format_exception(e))})
                                    for spec in futures[future].specs]
                    for spec, outcome in outcomes:
                        record(spec, outcome)
                if broken and not stop_event.is_set():
                    stop_all()
        except BaseException:  # a full disk, a second Ctrl-C: no new runs, the ones in flight stop
            stop_all()
            raise
        if broken:
            in_flight = running
            raise WorkerDied(
                "a worker process died (killed, out of memory or crashed) while running "
                f"{', '.join(in_flight[:4]) or 'a run'}{', ...' if len(in_flight) > 4 else ''}; "
                "finished runs are in runs.csv; run the same command to resume"
            )
        if stop_event.is_set():
            raise Interrupted("stopped on request")

