"""Shared pre-flossed starting points.

A pre-flossed model depends on the architecture, its seed and the statistics of the
inputs, not on the horizon: runs that share those share one pre-flossing, in memory and
(across processes and restarts) on disk, under OUT/checkpoints/preflossed/KEY/.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

PyTree = Any


class PreflossedStore:
    """Pre-flossed `{"params", "floss_state"}` and their diagnostics, by key."""

    def __init__(self) -> None:
        self._memory: dict[str, tuple[PyTree, dict]] = {}

    def get(self, key: str, folder: Path | None, template: PyTree) -> tuple[PyTree, dict] | None:
        found = self._memory.get(key) or _load(folder, key, template)
        if found is not None:
            self._memory[key] = found
        return found

    def put(self, key: str, folder: Path | None, flossed: PyTree, diag: dict) -> None:
        self._memory[key] = (flossed, diag)
        _save(folder, key, flossed, diag)

    def clear(self) -> None:
        """Forget the in-memory entries (a benchmark that wants every run to floss)."""
        self._memory.clear()


PREFLOSSED = PreflossedStore()


def _load(folder: Path | None, key: str, template: PyTree) -> tuple[PyTree, dict] | None:
    if folder is None or not (folder / key / "diag.json").exists():
        return None
    import orbax.checkpoint as ocp

    try:
        flossed = ocp.StandardCheckpointer().restore((folder / key / "state").resolve(), template)
        return flossed, json.loads((folder / key / "diag.json").read_text())
    except Exception:  # noqa: BLE001  (damaged: floss again)
        return None


def _save(folder: Path | None, key: str, flossed: PyTree, diag: dict) -> None:
    if folder is None:
        return
    import orbax.checkpoint as ocp

    target = folder / key
    try:
        checkpointer = ocp.StandardCheckpointer()
        checkpointer.save((target / "state").resolve(), flossed, force=True)
        checkpointer.wait_until_finished()
        tmp = target / "diag.json.tmp"
        tmp.write_text(json.dumps(diag))
        os.replace(tmp, target / "diag.json")  # written last: marks the entry complete
    except Exception:  # noqa: BLE001  (another process wrote it first; theirs is identical)
        pass
