"""Architectures and a task for the reliability tests (tests/test_reliability.py), loaded with --plugin.

Put tests/data on PYTHONPATH and pass `--plugin zoo_test_plugin`.

- `wrong_shape`: its `transition` returns a state of the wrong shape; the suite's
  validation must refuse it before anything trains.
- `fragile`: a tanh RNN that raises inside a run (never during validation, which calls
  the model on sequences of length 3): `fail = "linalg"` raises numpy's LinAlgError,
  `"nan"` a FloatingPointError (what jax raises under jax_debug_nans), `"bug"` a
  TypeError, i.e. a programming error; `""` trains normally.
- task `needs_data`: the delayed copy, but its data "is there" only when ZOO_TEST_DATA=1.
"""

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

import zoo


class _Tanh(zoo.RecurrentModel):
    def __init__(self, *, input_size, hidden_size, output_size, rngs):
        self.state_size = hidden_size
        self.W = nnx.Param(jax.random.normal(rngs.params(), (hidden_size, hidden_size)) / hidden_size**0.5)
        self.U = nnx.Param(jax.random.normal(rngs.params(), (input_size, hidden_size)))
        self.readout = zoo.Readout(hidden_size, input_size, output_size, skip=False, rngs=rngs)

    def input_drive(self, x):
        return x @ self.U[...]

    def step(self, h, u):
        return jnp.tanh(h @ self.W[...].T + u)


@zoo.register_architecture("wrong_shape")
class WrongShape(_Tanh):
    def transition(self, h, x):
        return jnp.concatenate([h, h])


@zoo.register_architecture("fragile")
class Fragile(_Tanh):
    def __init__(self, *, fail: str = "", **kwargs):
        super().__init__(**kwargs)
        self.fail = fail

    def __call__(self, x, h0=None):
        if x.shape[1] != 3:  # a real run, not the validation's shape check
            if self.fail == "linalg":
                raise np.linalg.LinAlgError("Singular matrix")
            if self.fail == "nan":
                raise FloatingPointError("invalid value (nan) encountered in tanh")
            if self.fail == "bug":
                raise TypeError("unsupported operand type(s) for +: 'NoneType' and 'int'")
        return super().__call__(x, h0)


import os  # noqa: E402

import tasks  # noqa: E402
from tasks.delayed import DelayedCopy  # noqa: E402


@tasks.register_task("needs_data")
class NeedsData(DelayedCopy):
    """The delayed copy, pretending to need a data set that is there only when
    ZOO_TEST_DATA=1: otherwise its runs are recorded as skipped."""

    def __init__(self, **options):
        if os.environ.get("ZOO_TEST_DATA") != "1":
            raise tasks.DatasetUnavailable("needs_data: no data here; set ZOO_TEST_DATA=1")
        super().__init__(**options)
