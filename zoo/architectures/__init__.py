"""The architecture zoo; importing it registers the built-in architectures."""

from zoo.architectures import (  # noqa: F401  (registers)
    cornn,
    diagonal,
    gated,
    griffin,
    linear,
    mamba,
    minimal,
    orthogonal,
    rnn,
    s5,
)
from zoo.architectures.base import Readout, RecurrentModel
from zoo.architectures.registry import create_architecture, list_architectures, register_architecture

__all__ = [
    "Readout",
    "RecurrentModel",
    "create_architecture",
    "list_architectures",
    "register_architecture",
]
