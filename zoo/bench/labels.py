"""How numbers, horizons and h50s are written, one convention for the leaderboard page, its plots
and docs/results.md's tables: short numbers, each task's horizon unit (teacher-student's with its
eigenvalue floor nu0 beside it), and an h50 with its interval or the side of the grid it fell off."""

from __future__ import annotations

import html
import math
from collections.abc import Callable

import pandas as pd


def fmt_num(x: object, *, precise: bool = False, digits: int = 4) -> str:
    """Short, human number text; '' for missing. ``precise`` keeps all digits (for CSV)."""
    if x is None or x is pd.NA:
        return ""
    x = float(x)
    if math.isnan(x):
        return ""
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    if x.is_integer() and abs(x) < 1e15:
        return str(int(x))
    return repr(x) if precise else f"{x:.{digits}g}"


def is_missing(v: object) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NA


def esc(text: object) -> str:
    """Escape for both element text and quoted attribute values."""
    return html.escape("" if is_missing(text) else str(text), quote=True)


# What the horizon means, per built-in task (units in parentheses); read from each task's docstring.
HORIZON_LABELS = {
    "delayed_copy": "delay d (steps)",
    "delayed_xor": "delay d (steps)",
    "teacher_student": "memory time scale 1/(1−ν₀) (steps)",
    "mnist1d": "blank steps appended (steps)",
    "smnist": "sequence length (steps)",
    "psmnist": "sequence length (steps)",
    "adding": "lag from the first marked value to the read-out (steps)",
    "selective_copy": "stretch the tokens are scattered over (steps)",
    "associative_recall": "gap from the last pair to the first query (steps)",
    "sdigits": "blank steps after the 64 pixels (steps)",
}


def horizon_label(task: str) -> str:
    """The x-axis label of a task's panels, with its unit (a plugin task's: "horizon (steps)")."""
    return HORIZON_LABELS.get(task, "horizon (steps)")


def nu0(horizon: float) -> float:
    """The teacher's eigenvalue floor of a teacher-student memory time scale: nu0 = 1 - 1/horizon."""
    return 1 - 1 / horizon


def horizon_text(task: str, h: float, number: Callable[[float], str] = fmt_num, nu: str = "ν₀") -> str:
    """A horizon as the page shows it (docs/results.md: its own `number` format and ASCII `nu`);
    teacher-student's with nu0 beside it."""
    if task == "teacher_student" and h > 0:
        return f"{number(h)} ({nu} {nu0(h):.2f})"
    return number(h)


def fmt_h(x: float) -> str:
    """A fitted horizon to 3 significant digits, without exponents (137, 42.4, 6.25)."""
    if math.isinf(x):
        return "\u221e"
    return f"{x:.0f}" if x >= 99.5 else f"{x:.3g}"


def h50_text(h50: float, h50_low: float, h50_high: float, bracketed: bool, h_min: float,
             h_max: float) -> tuple[str, str]:
    """(value, interval) as the scoreboard shows an h50 (conventions of stats.h50_table).

    inf -> "> h_max" (every horizon of the grid bridged), 0 -> "< h_min" (none bridged),
    nan -> "no fit"; a finite crossing the grid does not bracket gets a "*". The interval is
    "low–high" (ends 0 or ∞ where resamples fell off the grid); it is left out when it says no
    more than the value (an off-grid value whose every resample fell off the same side).
    """
    if math.isnan(h50):
        return "no fit", ""
    if math.isinf(h50):
        value = f"> {fmt_num(h_max)}"
    elif h50 == 0:
        value = f"< {fmt_num(h_min)}"
    else:
        value = fmt_h(h50) + ("" if bracketed else "*")
    if (math.isinf(h50) or h50 == 0) and h50_low == h50_high == h50:
        return value, ""
    if math.isnan(h50_low) or math.isnan(h50_high):
        return value, ""
    return value, f"{fmt_h(h50_low)}\u2013{fmt_h(h50_high)}"
