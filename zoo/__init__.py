"""A zoo of recurrent architectures, Lyapunov spectra and gradient flossing, and a benchmark harness."""

from zoo.architectures import (
    Readout,
    RecurrentModel,
    create_architecture,
    list_architectures,
    register_architecture,
)
from zoo.registry import UnknownNameError

__all__ = [
    "Readout",
    "RecurrentModel",
    "UnknownNameError",
    "create_architecture",
    "list_architectures",
    "register_architecture",
]
