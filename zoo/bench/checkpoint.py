"""Per-run orbax checkpoints: save at intervals, restore the newest good one."""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path
from typing import Any

import orbax.checkpoint as ocp

PyTree = Any


class RunCheckpoints:
    """The checkpoints of one run: `<run_dir>/<step>/{state,meta}`, the newest two kept.

    Orbax writes each checkpoint to a temporary folder and renames it when complete,
    so a process killed mid-save leaves no half-written checkpoint behind. A committed
    checkpoint that fails to load (truncated or damaged files) is skipped with a
    warning, and the next older one is tried.
    """

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = Path(run_dir)
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
        if step in self._manager.all_steps():
            self._delete(step)  # the same position saved again after a restart from scratch
        self._manager.save(
            step,
            args=ocp.args.Composite(state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(meta)),
            force=True,
        )
        self._manager.wait_until_finished()

    def restore_latest(self, template: PyTree) -> tuple[int, PyTree, dict] | None:
        """The newest checkpoint that loads, shaped like `template`; None if there is none."""
        for step in sorted(self._manager.all_steps(), reverse=True):
            try:
                restored = self._manager.restore(
                    step,
                    args=ocp.args.Composite(
                        state=ocp.args.StandardRestore(template), meta=ocp.args.JsonRestore()
                    ),
                )
                return step, restored["state"], dict(restored["meta"])
            except Exception as e:  # noqa: BLE001  (any damage means: try the previous one)
                warnings.warn(
                    f"checkpoint {self.run_dir.name}/{step} is damaged ({type(e).__name__}); "
                    "falling back to an older one",
                    stacklevel=2,
                )
                self._delete(step)
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


def load_trained_model(run_dir: Path, model: Any) -> Any:
    """Load the newest checkpointed parameters of a run into `model` (an NNX module of the same config)."""
    from flax import nnx

    checkpoints = RunCheckpoints(run_dir)
    try:
        template = {"params": nnx.state(model, nnx.Param)}
        found = checkpoints.restore_latest({**template, "opt_state": None})
    finally:
        checkpoints.close()
    if found is None:
        raise FileNotFoundError(f"no loadable checkpoint in {run_dir}")
    nnx.update(model, found[1]["params"])
    return model
