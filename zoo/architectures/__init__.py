"""The architecture zoo; importing it registers the built-in architectures."""

from zoo.architectures import diagonal, gated, linear, rnn  # noqa: F401  (registers)
from zoo.architectures.base import Readout, RecurrentModel
from zoo.architectures.registry import create_architecture, list_architectures, register_architecture

__all__ = [
    "Readout",
    "RecurrentModel",
    "create_architecture",
    "list_architectures",
    "register_architecture",
]
