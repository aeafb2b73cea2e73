"""The bench's user-facing errors and the one-line form of any exception."""

from __future__ import annotations


class ConfigError(ValueError):
    """Input that cannot run (a suite, a flag, an output folder); the message is one line for the user."""


def one_line(error: BaseException, empty: str | None = None) -> str:
    """The first non-blank line of an error's message (`empty`, else the type's name, if none)."""
    lines = [line.strip() for line in str(error).strip().splitlines() if line.strip()]
    return lines[0] if lines else (empty if empty is not None else type(error).__name__)


class DiskFullError(OSError):
    """Writing a result or a checkpoint failed for lack of space; what was written before is intact."""


def is_disk_full(error: BaseException) -> bool:
    """ENOSPC/EDQUOT, also as orbax and tensorstore report them (in the message of another type)."""
    import errno

    if isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    text = str(error)
    return "No space left on device" in text or "Disk quota exceeded" in text
