"""Per-run orbax checkpoints: save at intervals, restore the newest good one."""

from __future__ import annotations

import collections
import hashlib
import json
import multiprocessing
import os
import shutil
import signal
import sys
import threading
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

PyTree = Any


def _ocp():
    """orbax, imported on first use: the CLI reports bad input without paying for it."""
    import orbax.checkpoint as ocp

    return ocp

_CHECKSUM = "_checksum"  # in the saved meta: sha256 of the state's arrays and the rest of the meta


class RunCheckpoints:
    """The checkpoints of one run: `<run_dir>/<step>/{state,meta}`, the newest two kept.

    Orbax writes each checkpoint to a temporary folder and renames it when complete,
    so a process killed mid-save leaves no half-written checkpoint behind (the temporary
    folder is removed the next time). Each checkpoint also carries a checksum of its
    arrays and metadata, so a committed checkpoint that was damaged later (truncated or
    garbled files) is never loaded silently: one that fails to load or to verify is
    skipped with a warning naming it, and the next older one is tried.
    """

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = Path(run_dir)
        ocp = _ocp()
        self._manager = ocp.CheckpointManager(
            self.run_dir.resolve(),
            options=ocp.CheckpointManagerOptions(
                max_to_keep=2,
                create=True,
                cleanup_tmp_directories=True,
                enable_async_checkpointing=False,
            ),
        )

    def save(self, step: int, state: PyTree, meta: dict) -> None:
        """Save `state` (a pytree of arrays) and `meta` (JSON) as checkpoint `step`."""
        meta = {k: v for k, v in meta.items() if k != _CHECKSUM}
        meta[_CHECKSUM] = checksum(state, meta)
        if step in self._manager.all_steps():
            self._delete(step)  # the same position saved again after a restart from scratch
        ocp = _ocp()
        args = ocp.args.Composite(state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(meta))
        if crash_point("checkpoint"):
            _crash_during(lambda: self._manager.save(step, args=args, force=True), self.run_dir)
        self._manager.save(step, args=args, force=True)
        self._manager.wait_until_finished()

    def restore_latest(self, template: PyTree, *, partial: bool = False) -> tuple[int, PyTree, dict] | None:
        """The newest checkpoint that loads and verifies, shaped like `template`; None if none.

        A damaged checkpoint is deleted, so it is not tried again. `partial=True` (a template
        of part of the state) skips the checksum and deletes nothing.
        """
        _quiet_orbax_read_errors()
        ocp = _ocp()
        steps = sorted(self._manager.all_steps(), reverse=True)
        for i, step in enumerate(steps):
            try:
                restored = self._manager.restore(
                    step,
                    args=ocp.args.Composite(
                        state=ocp.args.StandardRestore(template), meta=ocp.args.JsonRestore()
                    ),
                )
                state, meta = restored["state"], dict(restored["meta"])
                expected = meta.pop(_CHECKSUM, None)  # None: written before checksums existed
                if not partial and expected is not None and expected != checksum(state, meta):
                    raise ValueError("checksum mismatch")
            except Exception as e:  # noqa: BLE001  (any damage means: try the previous one)
                if partial:
                    continue
                older = steps[i + 1] if i + 1 < len(steps) else None
                then = f"falling back to step {older}" if older is not None else "restarting the run from scratch"
                reason = str(e).strip().splitlines()[0][:120] if str(e).strip() else ""
                warnings.warn(
                    f"checkpoint {self.run_dir.name}/{step} is damaged "
                    f"({type(e).__name__}{': ' + reason if reason else ''}); {then}",
                    stacklevel=2,
                )
                self._delete(step)
                continue
            if step > 0 and not partial:
                print(f"resuming {self.run_dir.name} from step {step}", file=sys.stderr, flush=True)
            return step, state, meta
        return None

    def _delete(self, step: int) -> None:
        try:
            self._manager.delete(step)
        except Exception:  # noqa: BLE001
            shutil.rmtree(self.run_dir / str(step), ignore_errors=True)
        self._manager.reload()

    def close(self) -> None:
        """Release orbax's resources."""
        self._manager.close()


def checksum(state: PyTree, meta: dict) -> str:
    """sha256 over the state's arrays (dtype, shape, bytes, in tree order) and the meta as JSON."""
    import jax

    digest = hashlib.sha256()
    for leaf in jax.tree.leaves(state):
        if hasattr(leaf, "dtype") and jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key):
            leaf = jax.random.key_data(leaf)
        array = np.asarray(leaf)
        digest.update(f"{array.dtype.str}{array.shape}".encode())
        digest.update(np.ascontiguousarray(array).tobytes())
    digest.update(json.dumps(meta, sort_keys=True, default=str).encode())
    return digest.hexdigest()


_QUIET = {"installed": False}


def _quiet_orbax_read_errors() -> None:
    """A damaged checkpoint makes orbax/tensorstore leave reads behind that fail later, after
    the restore has already raised ("Event loop is closed", "Task exception was never
    retrieved", coroutines never awaited) and print pages of tracebacks; the warning naming
    the checkpoint says it all. Errors that matter surface as exceptions of the restore."""
    if _QUIET["installed"]:
        return
    _QUIET["installed"] = True
    import logging

    previous = sys.unraisablehook

    def hook(unraisable) -> None:
        error = unraisable.exc_value
        if (isinstance(error, RuntimeError) and "Event loop is closed" in str(error)) or _from_orbax(
            unraisable.exc_traceback
        ) or "orbax" in repr(getattr(unraisable, "object", "")):
            return
        previous(unraisable)

    sys.unraisablehook = hook

    def keep(record: logging.LogRecord) -> bool:
        exc = record.exc_info[2] if record.exc_info else None
        return not (_from_orbax(exc) or "Event loop is closed" in str(record.exc_info and record.exc_info[1]))

    logging.getLogger("asyncio").addFilter(keep)


def _from_orbax(tb) -> bool:
    while tb is not None:
        name = tb.tb_frame.f_code.co_filename
        if "/orbax/" in name or "/tensorstore/" in name:
            return True
        tb = tb.tb_next
    return False


# --------------------------------------------------------------------------- test-only fault injection

CRASH_ENV = "ZOO_TEST_CRASH_AT"
_crash_counts: collections.Counter = collections.Counter()


def crash_point(kind: str) -> bool:
    """TEST ONLY. True when this is the moment `ZOO_TEST_CRASH_AT` asks this process to die at.

    `ZOO_TEST_CRASH_AT="checkpoint:3"` kills the process in the middle of its 3rd checkpoint
    save, `"row:2"` in the middle of its 2nd runs.csv append (half the line written);
    several points may be given, comma-separated. The death is a SIGKILL, as from the OOM
    killer or a power cut; in a `--workers` process it takes the whole suite down with it.
    The tests use this to check that no moment of a crash loses a finished result or
    reports one twice. Never set it otherwise.
    """
    spec = os.environ.get(CRASH_ENV)
    if not spec:
        return False
    _crash_counts[kind] += 1
    for item in spec.split(","):
        name, _, n = item.strip().partition(":")
        if name == kind and n.strip().isdigit() and int(n) == _crash_counts[kind]:
            return True
    return False


def die_now() -> None:
    """TEST ONLY: SIGKILL this process, and the suite's main process if this is a worker."""
    parent = multiprocessing.parent_process()
    if parent is not None and parent.pid:
        try:
            os.kill(parent.pid, signal.SIGKILL)
        except OSError:
            pass
    os.kill(os.getpid(), signal.SIGKILL)
    time.sleep(60)  # the signal is on its way


def _crash_during(save, run_dir: Path) -> None:
    """TEST ONLY: start `save` and die once its temporary folder holds some files."""
    worker = threading.Thread(target=save, daemon=True)
    worker.start()
    deadline = time.monotonic() + 30
    while worker.is_alive() and time.monotonic() < deadline:
        for tmp in run_dir.glob("*.orbax-checkpoint-tmp*"):
            if any(p.is_file() for p in tmp.rglob("*")):
                die_now()
        time.sleep(0.001)
    die_now()  # the save finished first: die right after it, before anything else happens


def load_trained_model(run_dir: Path, model: Any) -> Any:
    """Load the newest checkpointed parameters of a run into `model` (an NNX module of the same config)."""
    from flax import nnx

    ocp = _ocp()
    manager = ocp.CheckpointManager(Path(run_dir).resolve(), options=ocp.CheckpointManagerOptions(read_only=True))
    try:
        steps = manager.all_steps()
        if not steps:
            raise FileNotFoundError(f"no checkpoint in {run_dir}")
        # Restored without a template: nested dicts as saved, each variable as {"value": array}.
        saved = manager.restore(max(steps), args=ocp.args.Composite(state=ocp.args.StandardRestore()))
    finally:
        manager.close()
    pure = _strip_value_level(saved["state"]["params"])
    state = nnx.state(model)
    nnx.replace_by_pure_dict(state, pure)
    nnx.update(model, state)
    return model


def _strip_value_level(tree: Any) -> Any:
    # nnx.State saves each variable as {"value": array}; replace_by_pure_dict wants the array.
    if isinstance(tree, dict):
        if set(tree) == {"value"}:
            return tree["value"]
        return {k: _strip_value_level(v) for k, v in tree.items()}
    return tree
