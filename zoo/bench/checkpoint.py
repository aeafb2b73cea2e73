"""Per-run orbax checkpoints: save at intervals, restore the newest good one."""

from __future__ import annotations

import errno
import hashlib
import json
import shutil
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from zoo.bench.errors import DiskFullError, is_disk_full
from zoo.bench.worker import absl_quiet

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
        try:
            self._write(step, args)
        except Exception as e:
            if not is_disk_full(e):
                raise
            raise DiskFullError(errno.ENOSPC, f"no space left on the device to checkpoint "
                                              f"{self.run_dir.name} at step {step}") from None

    def _write(self, step: int, args) -> None:
        """The orbax save itself (the crash tests wrap it to die half-way)."""
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


def load_trained_model(run_dir: Path, model: Any) -> Any:
    """Load the newest checkpointed parameters of a run into `model` (an NNX module of the same config)."""
    from flax import nnx

    ocp = _ocp()
    if not Path(run_dir).is_dir():
        raise FileNotFoundError(f"no checkpoint in {run_dir}: the folder does not exist")
    # orbax and tfds log warnings about choices the reader made on purpose (read-only, no metadata).
    with absl_quiet():
        manager = ocp.CheckpointManager(
            Path(run_dir).resolve(), options=ocp.CheckpointManagerOptions(read_only=True, create=False)
        )
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
