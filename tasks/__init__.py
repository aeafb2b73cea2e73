"""Tasks with a horizon knob: `register_task`, `list_tasks`, `create_task`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tasks.base import Batch, Task, TaskConfigError
from zoo.registry import Registry, UnknownNameError

_REGISTRY: Registry[Callable[..., Task]] = Registry("task")


def register_task(name: str) -> Callable:
    """Class decorator that registers a `Task` subclass under `name`."""
    inner = _REGISTRY.register(name)

    def decorator(cls):
        cls.name = name
        return inner(cls)

    return decorator


def list_tasks(pattern: str = "*") -> list[str]:
    """Registered task names matching a shell-style pattern."""
    return _REGISTRY.names(pattern)


def create_task(name: str, *, horizon: int, **options: Any) -> Task:
    """Build the task registered as `name` at the given horizon."""
    return _REGISTRY.get(name)(horizon=horizon, **options)


# Importing the built-in task modules registers them.
from tasks import builtin as _builtin  # noqa: E402,F401

__all__ = [
    "Batch",
    "Task",
    "TaskConfigError",
    "UnknownNameError",
    "create_task",
    "list_tasks",
    "register_task",
]
