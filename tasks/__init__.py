"""Tasks with a horizon knob: `register_task`, `list_tasks`, `create_task`."""

from __future__ import annotations

from tasks.base import SPLITS, Batch, Split, Task, TaskConfigError
from tasks.registry import create_task, list_tasks, register_task
from zoo.registry import UnknownNameError

# Importing the built-in task modules registers them.
from tasks import adding, delayed, digits, sequential, teacher_student, tokens  # noqa: E402,F401
from tasks.sequential import DatasetUnavailable  # noqa: E402
from tasks.teacher_student import horizon_to_nu0, nu0_to_horizon  # noqa: E402

__all__ = [
    "SPLITS",
    "Batch",
    "DatasetUnavailable",
    "Split",
    "Task",
    "TaskConfigError",
    "UnknownNameError",
    "create_task",
    "horizon_to_nu0",
    "list_tasks",
    "nu0_to_horizon",
    "register_task",
]
