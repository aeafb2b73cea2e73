"""Any registered recurrence as a stack of residual blocks, and parameter-matched hidden sizes.

`create_model(name, ..., depth=L, block=..., readout=...)` wraps L layers of the architecture
registered as `name` (plugins included, with no extra code) into

    x -> encoder -> L x [ z <- norm(z + block(recurrence(z))) ] -> readout -> y

the residual block of the LRU and S5 papers (Orvieto et al. 2023; Smith et al. 2023): the
recurrence, a position-wise GELU + GLU (or an MLP), a residual connection, then a LayerNorm.
The norm comes after the residual sum (post-norm, the default of the LRU authors' reference
code, minimal-LRU's `prenorm=False`), not before the recurrence: a LayerNorm of the encoded
input keeps only its direction, so with a scalar input (MNIST-1D, sdigits, teacher-student)
a pre-norm first block would hand the recurrence nothing but the input's sign.
Each layer is the registered model itself, created with `input_size = output_size = width`,
so its own readout maps its state to the model width. The stack keeps the flossing contract:
`state_size` is the layers' summed state, and `transition(h, x)` runs all layers within one
time step on the concatenated state, so `zoo.flossing` works on stacks unchanged.

`hidden_size_for_budget` picks the hidden size whose parameter count is within 10% of a budget
(the Long Range Arena's like-for-like rule, Tay et al. 2021).
"""

from __future__ import annotations

import functools
import json
import math
import operator
from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx

from zoo.architectures.registry import ARCHITECTURES, create_architecture

__all__ = [
    "BLOCKS",
    "READOUTS",
    "Stack",
    "count_params",
    "create_model",
    "hidden_size_for_budget",
]

BLOCKS = ("glu", "mlp", "none")
READOUTS = ("linear", "mlp")
MLP_EXPANSION = 4  # the position-wise MLP's hidden width / width, as in Vaswani et al. 2017
BUDGET_TOLERANCE = 0.1  # Long Range Arena (Tay et al. 2021): counts within 10% of the budget


class GLU(nnx.Module):
    """`W1 g * sigmoid(W2 g)`, `g = gelu(y)`: the LRU and S5 blocks' GLU (Dauphin et al. 2017)."""

    def __init__(self, width: int, *, rngs: nnx.Rngs, param_dtype: Any) -> None:
        self.value = nnx.Linear(width, width, rngs=rngs, param_dtype=param_dtype)
        self.gate = nnx.Linear(width, width, rngs=rngs, param_dtype=param_dtype)

    def __call__(self, y: jax.Array) -> jax.Array:
        g = jax.nn.gelu(y)
        return self.value(g) * jax.nn.sigmoid(self.gate(g))


class MLP(nnx.Module):
    """`W2 gelu(W1 y)`, position-wise, hidden width `expansion * width`."""

    def __init__(
        self, width: int, out: int, expansion: int, *, rngs: nnx.Rngs, param_dtype: Any
    ) -> None:
        self.up = nnx.Linear(width, expansion * width, rngs=rngs, param_dtype=param_dtype)
        self.down = nnx.Linear(expansion * width, out, rngs=rngs, param_dtype=param_dtype)

    def __call__(self, y: jax.Array) -> jax.Array:
        return self.down(jax.nn.gelu(self.up(y)))


def _mixer(block: str, width: int, rngs: nnx.Rngs, param_dtype: Any) -> nnx.Module | None:
    if block == "glu":
        return GLU(width, rngs=rngs, param_dtype=param_dtype)
    if block == "mlp":
        return MLP(width, width, MLP_EXPANSION, rngs=rngs, param_dtype=param_dtype)
    return None


def _readout(
    kind: str, width: int, output_size: int, rngs: nnx.Rngs, param_dtype: Any
) -> nnx.Module:
    if kind == "mlp":  # one hidden layer of the model width
        return MLP(width, output_size, 1, rngs=rngs, param_dtype=param_dtype)
    return nnx.Linear(width, output_size, rngs=rngs, param_dtype=param_dtype)


def _output_of(layer: nnx.Module):
    """The layer's per-step output from its state and input: `output(h, x)` (zoo.RecurrentModel,
    which may read more than the state, as Mamba's C(x_t)), else `readout(features(h), x)`."""
    if callable(getattr(layer, "output", None)):
        return layer.output
    if callable(getattr(layer, "features", None)) and callable(getattr(layer, "readout", None)):
        return lambda h, x: layer.readout(layer.features(h), x)
    return None


def _check_stackable(name: str, layer: nnx.Module) -> None:
    # transition() must produce each layer's per-step output from its state and input alone.
    missing = [a for a in ("transition",) if not callable(getattr(layer, a, None))]
    if _output_of(layer) is None:
        missing.insert(0, "output")
    if missing:
        raise ValueError(
            f"architecture {name!r} ({type(layer).__name__}) cannot be stacked: it has no "
            f"{missing[0]}(); stacking needs transition(h, x) and output(h, x) (or features(h) "
            "and readout(features, x)), as zoo.RecurrentModel has"
        )


class Stack(nnx.Module):
    """`depth` residual blocks around layers of one recurrence; see the module docstring.

    Attributes: `encoder` (input_size -> width), `layers` (the registered models), `norms`
    (a LayerNorm closing each block), `mixers` (GLU/MLP per block, empty for block "none"),
    `readout` (width -> output_size). The top `readout` is left out of flossing by
    `zoo.flossing.DYNAMICS`; so are the layers' own readouts, although they feed the next block.
    """

    def __init__(
        self,
        layers: list[nnx.Module],
        *,
        input_size: int,
        width: int,
        output_size: int,
        block: str,
        readout: str,
        rngs: nnx.Rngs,
        param_dtype: Any = jnp.float32,
    ) -> None:
        self.layers = nnx.List(layers)
        self.state_sizes = tuple(int(layer.state_size) for layer in layers)
        self.state_size = sum(self.state_sizes)
        self.encoder = nnx.Linear(input_size, width, rngs=rngs, param_dtype=param_dtype)
        self.norms = nnx.List(
            [nnx.LayerNorm(width, rngs=rngs, param_dtype=param_dtype) for _ in layers]
        )
        mixers = [_mixer(block, width, rngs, param_dtype) for _ in layers]
        self.mixers = nnx.List([m for m in mixers if m is not None])
        self.readout = _readout(readout, width, output_size, rngs, param_dtype)

    def _mix(self, i: int, y: jax.Array) -> jax.Array:
        return self.mixers[i](y) if len(self.mixers) else y

    def _split(self, h: jax.Array) -> list[jax.Array]:
        """Per-layer states from the concatenated state `(..., state_size)`."""
        bounds = [sum(self.state_sizes[:i]) for i in range(1, len(self.state_sizes))]
        return jnp.split(h, bounds, axis=-1)

    def initial_state(self) -> jax.Array:
        """The layers' initial states, concatenated `(state_size,)`."""
        parts = [
            layer.initial_state() if hasattr(layer, "initial_state") else jnp.zeros((n,))
            for layer, n in zip(self.layers, self.state_sizes)
        ]
        return jnp.concatenate(parts)

    def _step(self, h: jax.Array, x: jax.Array, advance: bool) -> tuple[jax.Array, jax.Array]:
        """`(state, residual stream at the top)` at one time step.

        `advance=True`: `h` is the previous state and each layer steps it; False: `h` already
        is this step's state (used to read outputs back from states).
        """
        z = self.encoder(x)
        states = []
        for i, (layer, h_i) in enumerate(zip(self.layers, self._split(h))):
            if advance:
                h_i = layer.transition(h_i, z)
            z = self.norms[i](z + self._mix(i, _output_of(layer)(h_i, z)))
            states.append(h_i)
        return jnp.concatenate(states, axis=-1), z

    def transition(self, h: jax.Array, x: jax.Array) -> jax.Array:
        """All layers advanced one time step; layer l's input is block l-1's output at this step."""
        return self._step(h, x, advance=True)[0]

    def jacobian_diagonal(self, x: jax.Array) -> jax.Array | None:
        """The layer's `jacobian_diagonal` of the encoded input when the stack has one layer that
        has one, else None: a second layer's input depends on the first layer's state."""
        diagonal = getattr(self.layers[0], "jacobian_diagonal", None)
        if len(self.layers) > 1 or not callable(diagonal):
            return None
        return diagonal(self.encoder(x))

    def output(self, h: jax.Array, x: jax.Array) -> jax.Array:
        """The output at a time step from that step's state `h` and input `x`."""
        return self.readout(self._step(h, x, advance=False)[1])

    def __call__(self, x: jax.Array, h0: jax.Array | None = None) -> jax.Array:
        """Outputs `(batch, time, output_size)`; each layer runs over the whole sequence at once."""
        z = self.encoder(x)
        h0s = self._split(h0) if h0 is not None else [None] * len(self.layers)
        for i, (layer, h0_i) in enumerate(zip(self.layers, h0s)):
            y = layer(z) if h0_i is None else layer(z, h0_i)
            z = self.norms[i](z + self._mix(i, y))
        return self.readout(z)


def _check_choice(field: str, value: Any, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValueError(f"unknown {field} {value!r}; allowed: {', '.join(map(repr, allowed))}")


def _check_positive_int(field: str, value: Any) -> int:
    try:
        if isinstance(value, bool):
            raise TypeError
        value = operator.index(value)
    except TypeError:
        raise ValueError(f"{field} must be a positive integer, got {value!r}") from None
    if value <= 0:
        raise ValueError(f"{field} must be a positive integer, got {value!r}")
    return value


def create_model(
    name: str,
    *,
    input_size: int,
    hidden_size: int,
    output_size: int,
    rngs: nnx.Rngs,
    depth: int = 1,
    block: str = "none",
    readout: str = "linear",
    **options: Any,
) -> nnx.Module:
    """The architecture `name` as the suite asks for it: plain, or as a `Stack`.

    `depth=1, block="none", readout="linear"` (the paper suites' setting) returns exactly
    `zoo.create_architecture(name, ...)`. Anything else builds a `Stack` of `depth` layers of
    width `hidden_size`, each created by `create_architecture(name, input_size=hidden_size,
    hidden_size=hidden_size, output_size=hidden_size, **options)`. `options` go to the layers;
    `param_dtype`, when given, also sets the stack's own parameters.
    """
    depth = _check_positive_int("depth", depth)
    _check_choice("block", block, BLOCKS)
    _check_choice("readout", readout, READOUTS)
    if depth == 1 and block == "none" and readout == "linear":
        return create_architecture(
            name, input_size=input_size, hidden_size=hidden_size, output_size=output_size,
            rngs=rngs, **options,
        )
    width = _check_positive_int("hidden_size", hidden_size)
    layers = []
    for _ in range(depth):
        layer = create_architecture(
            name, input_size=width, hidden_size=width, output_size=width, rngs=rngs, **options
        )
        _check_stackable(name, layer)
        layers.append(layer)
    return Stack(
        layers, input_size=input_size, width=width, output_size=output_size, block=block,
        readout=readout, rngs=rngs, param_dtype=options.get("param_dtype", jnp.float32),
    )


# ------------------------------------------------------------------------------ budgets


def count_params(model: nnx.Module) -> int:
    """Number of real parameters: the sizes of all `nnx.Param` leaves (a complex entry counts 2).

    Works on abstract models from `nnx.eval_shape` too (leaves are shape structs).
    """
    total = 0
    for leaf in jax.tree.leaves(nnx.state(model, nnx.Param)):
        size = math.prod(leaf.shape)
        total += 2 * size if jnp.issubdtype(leaf.dtype, jnp.complexfloating) else size
    return total


def _real_count(arch: str, hidden_size: int, kwargs: Mapping[str, Any]) -> int:
    return count_params(create_model(arch, hidden_size=hidden_size, rngs=nnx.Rngs(0), **kwargs))


# What `nnx.eval_shape` raises on an initialiser that computes on the host (the dense linear
# RNN's eigendecomposition, S5's HiPPO, a plugin's numpy code): such a model is built for real.
HOST_INITIALISER_ERRORS = (jax.errors.TracerArrayConversionError, jax.errors.ConcretizationTypeError)


def build_abstractly(build: Callable[[], nnx.Module]) -> nnx.Module:
    """`build()` traced abstractly (`nnx.eval_shape`: shapes only, nothing computed or compiled),
    or built for real when its initialisers compute on the host."""
    try:
        return nnx.eval_shape(build)
    except HOST_INITIALISER_ERRORS:
        return build()


def _abstract_count(arch: str, hidden_size: int, kwargs: Mapping[str, Any]) -> int:
    try:
        return count_params(nnx.eval_shape(
            lambda: create_model(arch, hidden_size=hidden_size, rngs=nnx.Rngs(0), **kwargs)))
    except HOST_INITIALISER_ERRORS:
        # A real build compiles its initialisers anew for every size (a bisection's dozen sizes
        # took minutes), so count through the quadratic such layers' counts follow in the size.
        return _host_count(arch, kwargs)(hidden_size)


def _identity(arch: str, kwargs: Mapping[str, Any]) -> tuple:
    """What a parameter count depends on besides the size: the name, the factory registered under
    it now (a plugin reloaded after an edit is counted anew) and the options."""
    return arch, ARCHITECTURES.get(arch), json.dumps(kwargs, sort_keys=True, default=str)


# Counts and matches already made, for the process: each costs model builds (a second or more),
# and a suite file is loaded more than once (the run, the report, a resume).
_HOST_COUNTS: dict[tuple, Any] = {}
_BUDGET_SIZES: dict[tuple, int] = {}


def _quadratic(c2: int, c3: int, c4: int) -> tuple[int, int, int] | None:
    """`(a, b, c0)` of the integer quadratic `a n^2 + b n + c0` through the counts at n = 2, 3, 4,
    or None when no integer quadratic passes through them."""
    a2 = c4 - 2 * c3 + c2  # the second difference, 2a
    if a2 % 2:
        return None
    a = a2 // 2
    b = c3 - c2 - 5 * a  # c3 - c2 = 5a + b
    return a, b, c2 - 4 * a - 2 * b


def _guess_bracket(count: Callable[[int], int], budget: int, max_hidden_size: int) -> tuple[int, int] | None:
    """`(n, n + 1)` with `count(n) < budget <= count(n + 1)`, found by solving the quadratic through
    three counts and confirmed by exact counts at the answer; None when the guess misses (a count
    that is no quadratic in n, such as S6's ceil(n / 16) rank), and the caller bisects."""
    coefficients = _quadratic(*(count(n) for n in (2, 3, 4)))
    if coefficients is None:
        return None
    a, b, c0 = coefficients
    discriminant = b * b - 4 * a * (c0 - budget)
    if a > 0 and discriminant >= 0:
        root = (-b + math.sqrt(discriminant)) / (2 * a)
    elif a == 0 and b > 0:
        root = (budget - c0) / b
    else:
        return None
    guess = math.floor(root)
    for n in (guess, guess - 1, guess + 1):  # float rounding near an integer root
        if 1 <= n < max_hidden_size and count(n) < budget <= count(n + 1):
            return n, n + 1
    return None


def _host_count(arch: str, kwargs: Mapping[str, Any]):
    """n -> the parameter count of a host-initialised `arch`: the quadratic through real builds at
    n = 2, 3, 4 when it also matches real builds at n = 7 and 12 (dense, diagonal, readout and
    MLP weights are all polynomials of degree <= 2 in n); otherwise a real build per size."""
    key = _identity(arch, kwargs)
    if key not in _HOST_COUNTS:
        coefficients = _quadratic(*(_real_count(arch, n, kwargs) for n in (2, 3, 4)))
        if coefficients is not None:
            a, b, c0 = coefficients

            def poly(n: int) -> int:
                return a * n * n + b * n + c0
            if all(poly(n) == _real_count(arch, n, kwargs) for n in (7, 12)):
                _HOST_COUNTS[key] = poly
                return poly
        _HOST_COUNTS[key] = lambda n: _real_count(arch, n, kwargs)
    return _HOST_COUNTS[key]


def hidden_size_for_budget(
    arch: str,
    budget: int,
    *,
    input_size: int,
    output_size: int,
    depth: int = 1,
    block: str = "none",
    readout: str = "linear",
    options: Mapping[str, Any] | None = None,
    tolerance: float = BUDGET_TOLERANCE,
    max_hidden_size: int = 1 << 16,
) -> int:
    """The hidden size whose parameter count is closest to `budget`, within `tolerance` of it.

    The Long Range Arena's like-for-like rule (Tay et al. 2021): compared models have parameter
    counts within 10% of each other. Counts come from `count_params` on abstractly built
    models (`nnx.eval_shape`). Assumes the count grows with the hidden size (true of every
    layer whose weights scale with it): the quadratic through three counts, confirmed by exact
    counts, or else a bisection, finds the two sizes around the budget.
    Raises a one-line error naming the nearest reachable counts when neither is close enough.
    """
    budget = _check_positive_int("param_budget", budget)
    kwargs = dict(
        input_size=input_size, output_size=output_size, depth=depth, block=block,
        readout=readout, **(options or {}),
    )
    key = (*_identity(arch, kwargs), budget, tolerance, max_hidden_size)
    if key not in _BUDGET_SIZES:
        _BUDGET_SIZES[key] = _match_budget(arch, budget, kwargs, tolerance, max_hidden_size)
    return _BUDGET_SIZES[key]


def _match_budget(arch: str, budget: int, kwargs: Mapping[str, Any], tolerance: float, max_hidden_size: int) -> int:
    count = functools.cache(lambda n: _abstract_count(arch, n, kwargs))
    # Smallest n with count(n) >= budget: the quadratic's answer when exact counts confirm it
    # (5 counts instead of a bisection's dozen), else double to bracket it, then bisect.
    low, high = _guess_bracket(count, budget, max_hidden_size) or (0, 1)
    while count(high) < budget:
        if high >= max_hidden_size:
            raise ValueError(
                f"{arch}: even hidden_size {high} has only {count(high)} parameters, "
                f"below param_budget {budget}"
            )
        low, high = high, min(2 * high, max_hidden_size)
    while high - low > 1:
        mid = (low + high) // 2
        low, high = (mid, high) if count(mid) < budget else (low, mid)
    candidates = [(abs(count(n) - budget), n) for n in (low, high) if n >= 1]
    error, best = min(candidates)
    if error > tolerance * budget:
        near = ", ".join(f"{count(n)} (hidden_size {n})" for n in sorted(n for _, n in candidates))
        raise ValueError(
            f"{arch}: no hidden_size gives a parameter count within {tolerance:.0%} of "
            f"param_budget {budget}; nearest: {near}"
        )
    return best
