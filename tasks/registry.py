"""The task registry: `register_task`, `list_tasks`, `create_task` (and their option checks)."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from tasks.base import Task, TaskConfigError
from zoo.registry import Registry

TASKS: Registry[Callable[..., Task]] = Registry("task")


def register_task(name: str) -> Callable:
    """Class decorator that registers a `Task` subclass under `name`."""
    inner = TASKS.register(name)

    def decorator(cls):
        cls.name = name
        return inner(cls)

    return decorator


def list_tasks(pattern: str = "*") -> list[str]:
    """Registered task names matching a shell-style pattern."""
    return TASKS.names(pattern)


def create_task(name: str, *, horizon: int, run_seed: int | None = None, **options: Any) -> Task:
    """Build the task registered as `name` at the given horizon.

    `run_seed` is the seed of the run the task is built for; it reaches only tasks whose
    constructor takes a `run_seed` keyword (e.g. `teacher_student` with `teacher_seed="run"`)
    and is ignored by the others, so a harness may always pass it.

    Unknown names raise `UnknownNameError` (listing the registered ones); an option the task
    does not take, or an impossible value, raises `TaskConfigError` (a ValueError).
    """
    factory = TASKS.get(name)
    _check_option_names(name, factory, options)
    if run_seed is not None and "run_seed" in _option_names(factory):
        options = {**options, "run_seed": run_seed}
    return factory(horizon=horizon, **options)


def _option_names(factory: Callable) -> set[str]:
    """The keyword options `factory` names explicitly (along a `**options` chain)."""
    try:
        params = inspect.signature(factory).parameters
    except (TypeError, ValueError):
        return set()
    return set(params) | set(_accepted_options(factory))


def _check_option_names(name: str, factory: Callable, options: dict[str, Any]) -> None:
    """A one-line TaskConfigError for options `factory` does not take (listing the allowed)."""
    try:
        params = inspect.signature(factory).parameters
    except (TypeError, ValueError):  # no introspectable signature: let the call decide
        return
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        allowed = set(_accepted_options(factory))
        if not allowed:
            return
    else:
        allowed = set(params)
    allowed.discard("horizon")
    unknown = sorted(set(options) - allowed)
    if unknown:
        raise TaskConfigError(
            f"{name}: unknown option{'s' if len(unknown) > 1 else ''} "
            f"{', '.join(map(repr, unknown))}; "
            f"allowed: {', '.join(sorted(allowed)) or '(none)'}"
        )


def _accepted_options(factory: Callable) -> list[str]:
    """Keyword names accepted along a class's `__init__` chain that forwards `**options` upward."""
    names: list[str] = []
    for klass in getattr(factory, "__mro__", ()):
        init = klass.__dict__.get("__init__")
        if init is None or klass is object:
            continue
        params = inspect.signature(init).parameters
        keyword_only = inspect.Parameter.KEYWORD_ONLY
        names += [n for n, p in params.items() if n != "self" and p.kind is keyword_only]
        if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
            return names
    return []  # the chain ends in **kwargs: anything may be accepted
