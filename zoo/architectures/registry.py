"""The architecture registry: `register_architecture`, `list_architectures`, `create_architecture`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flax import nnx

from zoo.registry import Registry

ARCHITECTURES: Registry[Callable[..., nnx.Module]] = Registry("architecture")


def register_architecture(name: str) -> Callable:
    """Decorator registering an architecture class (or factory) under `name`.

    The factory is called as `factory(input_size=, hidden_size=, output_size=, rngs=, **options)`
    and must return a module mapping `(batch, time, input_size)` to `(batch, time, output_size)`
    that exposes `state_size` and `transition(h, x)` (subclassing `zoo.RecurrentModel` gives both).
    """
    return ARCHITECTURES.register(name)


def list_architectures(pattern: str = "*") -> list[str]:
    """Registered architecture names matching a shell-style pattern."""
    return ARCHITECTURES.names(pattern)


def create_architecture(
    name: str,
    *,
    input_size: int,
    hidden_size: int,
    output_size: int,
    rngs: nnx.Rngs,
    **options: Any,
) -> nnx.Module:
    """Build the architecture registered as `name`."""
    factory = ARCHITECTURES.get(name)
    for field, value in (("input_size", input_size), ("hidden_size", hidden_size), ("output_size", output_size)):
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            raise ValueError(f"{field} must be a positive integer, got {value!r}")
    return factory(
        input_size=input_size, hidden_size=hidden_size, output_size=output_size, rngs=rngs, **options
    )
