"""What every architecture shares: the recurrence contract, the sequence scan, the readout."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from zoo.architectures.fused import Recurrence, fused_states


class Readout(nnx.Module):
    """Linear map from the features of one time step to the outputs, with an optional skip `D x`."""

    def __init__(
        self, feature_size: int, input_size: int, output_size: int, *, skip: bool, rngs: nnx.Rngs
    ) -> None:
        self.proj = nnx.Linear(feature_size, output_size, rngs=rngs)
        # The linear teacher-student family reads out y = C h + D x, hence the skip.
        self.skip = nnx.Linear(input_size, output_size, use_bias=False, rngs=rngs) if skip else None

    def __call__(self, features: jax.Array, inputs: jax.Array) -> jax.Array:
        y = self.proj(features)
        if self.skip is not None:
            y = y + self.skip(inputs)
        return y


def cast_parameters(model: nnx.Module, param_dtype: Any) -> np.dtype:
    """Cast every `nnx.Param` of `model` to the floating dtype `param_dtype` and record it.

    Built-in architectures draw their initial values first and cast last, so one line
    serves every module (the readout's `nnx.Linear` included). States follow this dtype.
    """
    try:
        dtype = np.dtype(param_dtype)
    except TypeError:
        dtype = None
    if dtype is None or not np.issubdtype(dtype, np.floating):
        raise ValueError(f"param_dtype must be a real floating dtype (float32, float64, ...), got {param_dtype!r}")
    if dtype.itemsize > 4 and not jax.config.jax_enable_x64:
        raise ValueError(f"param_dtype {dtype} needs jax_enable_x64 (jax.config.update('jax_enable_x64', True))")
    nnx.update(model, jax.tree.map(lambda a: a.astype(dtype), nnx.state(model, nnx.Param)))
    model.param_dtype = dtype
    return dtype


class RecurrentModel(nnx.Module):
    """Base class: a recurrence `step` on a flat real state plus a shared `Readout`.

    Subclasses set `state_size` and `readout`, and implement `step(h, u)` on one
    example's flat real state `h` of shape `(state_size,)`. `input_drive(x)` maps
    inputs to what `step` consumes; it is applied to the whole sequence at once, so
    input projections run as one matmul outside the time loop. `features(h)` picks
    the part of the state the readout sees (the whole state by default).
    """

    state_size: int
    readout: Readout
    # Whether `states` may take the fused path when `recurrence()` is given (False: plain scan).
    fused_scan: bool = True
    # The parameters' dtype, set by `cast_parameters`; None: read it off the parameters.
    param_dtype: Any = None
    # Linear recurrences: True runs the parallel associative scan, False a sequential loop,
    # None chooses by backend (the loop on CPU, the parallel scan on accelerators).
    parallel_scan: bool | None = None

    def state_dtype(self) -> np.dtype:
        """The dtype of states and of the inputs the recurrence consumes: the parameters'."""
        if self.param_dtype is not None:
            return np.dtype(self.param_dtype)
        leaves = jax.tree.leaves(nnx.state(self, nnx.Param))
        return np.dtype(jnp.result_type(*leaves)) if leaves else np.dtype(jnp.float32)

    def use_parallel_scan(self) -> bool:
        """Whether a linear recurrence runs as an associative scan (see `parallel_scan`)."""
        if self.parallel_scan is None:
            return jax.default_backend() != "cpu"
        return self.parallel_scan

    def input_drive(self, x: jax.Array) -> jax.Array:
        """Map inputs `(..., input_size)` to the per-step drive `step` consumes (identity here)."""
        return x

    def step(self, h: jax.Array, u: jax.Array) -> jax.Array:
        """One step of the recurrence on a flat real state, given the input drive `u`.

        Defaults to the step that `recurrence()` describes; an architecture without one
        defines `step` itself.
        """
        rec = self.recurrence()
        if rec is None:
            raise NotImplementedError(f"{type(self).__name__} must define step() or recurrence()")
        return rec.step(h, u)

    def recurrence(self) -> Recurrence | None:
        """`step` in the structured form `cell(h, u, phi(h) @ kernel)`, or None (the default).

        Optional. When given, `states` runs the fused path (`zoo.architectures.fused`),
        several times faster to train on a CPU than autodiff of the plain scan. It must
        describe the same function as `step`.
        """
        return None

    def features(self, h: jax.Array) -> jax.Array:
        """What the readout sees of the state `(..., state_size)`."""
        return h

    def initial_state(self) -> jax.Array:
        """The zero state of one example, `(state_size,)`."""
        return jnp.zeros((self.state_size,), self.state_dtype())

    def transition(self, h: jax.Array, x: jax.Array) -> jax.Array:
        """`h_t = f(h_{t-1}, x_t)` on one example's flat real state (the flossing contract)."""
        dtype = self.state_dtype()
        return self.step(h.astype(dtype), self.input_drive(x.astype(dtype)))

    def initial_states(self, batch_size: int, h0: jax.Array | None = None) -> jax.Array:
        """`h0` `(batch, state_size)` in the state dtype, or zero states when it is None."""
        if h0 is None:
            return jnp.zeros((batch_size, self.state_size), self.state_dtype())
        return h0.astype(self.state_dtype())

    def states(self, x: jax.Array, h0: jax.Array | None = None) -> jax.Array:
        """All states `(batch, time, state_size)` for inputs `(batch, time, input_size)`, from `h0`."""
        if self._fused():
            return jnp.swapaxes(self._fused_states_time_major(x, h0), 0, 1)
        return self.scan_states(x, h0)

    def cast_inputs(self, x: jax.Array) -> jax.Array:
        """Inputs in the state dtype, so that a scan's carry keeps one dtype (float64 runs too)."""
        return x.astype(self.state_dtype())

    def _fused(self) -> bool:
        return self.fused_scan and self.recurrence() is not None

    def _fused_states_time_major(self, x: jax.Array, h0: jax.Array | None) -> jax.Array:
        # input_drive acts per position, so it may run on time-major inputs directly.
        u = self.input_drive(self.cast_inputs(jnp.swapaxes(x, 0, 1)))
        return fused_states(self.recurrence(), self.initial_states(x.shape[0], h0), u)

    def scan_states(self, x: jax.Array, h0: jax.Array | None = None) -> jax.Array:
        """`states` as a plain `lax.scan` of `step` (the default path; the reference of the fused one)."""
        u = self.input_drive(self.cast_inputs(x))

        def run(h_init: jax.Array, u_seq: jax.Array) -> jax.Array:
            def body(h, u_t):
                h = self.step(h, u_t)
                return h, h

            return jax.lax.scan(body, h_init, u_seq)[1]

        return jax.vmap(run)(self.initial_states(x.shape[0], h0), u)

    def __call__(self, x: jax.Array, h0: jax.Array | None = None) -> jax.Array:
        """Outputs `(batch, time, output_size)` for inputs `(batch, time, input_size)`."""
        x = self.cast_inputs(x)
        if self._fused():  # time-major throughout; transpose only the outputs
            x_tm = jnp.swapaxes(x, 0, 1)
            return jnp.swapaxes(self.output(self._fused_states_time_major(x, h0), x_tm), 0, 1)
        return self.output(self.states(x, h0), x)

    def output(self, states: jax.Array, x: jax.Array) -> jax.Array:
        """Outputs from states `(..., state_size)` and the inputs at the same positions.

        The readout of `features(states)`; a model whose output also reads the current
        input through something other than the readout's skip (e.g. Mamba's `C(x_t)`)
        overrides this.
        """
        return self.readout(self.features(states), x)
