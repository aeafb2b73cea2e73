"""The compiled programs of a run: the task optimiser, a jitted training chunk, evaluation and
the |d loss / d h0| diagnostic, compiled once per shape and shared by every run of that shape."""

from __future__ import annotations

import collections
from collections.abc import Callable, Hashable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax
from flax import nnx

from zoo import flossing

PyTree = Any


def clip_per_array(max_norm: float) -> optax.GradientTransformation:
    """Scale each gradient array to norm at most `max_norm` (the flossing paper's clipping)."""

    def update(updates, state, params=None):
        del params
        scale = lambda g: g * jnp.minimum(1.0, max_norm / (jnp.linalg.norm(g) + 1e-12))  # noqa: E731
        return jax.tree.map(scale, updates), state

    return optax.GradientTransformation(lambda _: optax.EmptyState(), update)


def make_optimizer(clip: float, schedule: str = "constant", steps: int | None = None) -> optax.GradientTransformation:
    """Adam with the learning rate as state, so runs with different rates share one compilation.

    `schedule="cosine"` decays the rate as `optax.cosine_decay_schedule(lr, steps)` (Zucchet &
    Orvieto 2024 train with Adam and cosine decay): that schedule is `lr` times the same
    schedule from 1, so the factor is applied after Adam and `lr` stays injected state.
    """
    adam = optax.inject_hyperparams(optax.adam)(learning_rate=1e-3)
    parts = [clip_per_array(clip)] if clip > 0 else []
    parts.append(adam)
    if schedule == "cosine":
        if not steps or steps < 1:
            raise ValueError(f"schedule 'cosine' needs the number of training steps, got {steps!r}")
        parts.append(optax.scale_by_schedule(optax.cosine_decay_schedule(1.0, steps)))
    elif schedule != "constant":
        raise ValueError(f"schedule must be 'constant' or 'cosine', got {schedule!r}")
    return optax.chain(*parts) if len(parts) > 1 else adam


def set_learning_rate(opt_state: PyTree, lr: float) -> PyTree:
    """Write `lr` into the injected hyperparameter of the optimiser state."""
    # Without clipping or schedule the state is Adam's own (a NamedTuple too, so test for the
    # hyperparameters rather than for a tuple); in a chain, the one part that has them.
    inner = opt_state if hasattr(opt_state, "hyperparams") else next(
        s for s in opt_state if hasattr(s, "hyperparams"))
    inner.hyperparams["learning_rate"] = jnp.asarray(lr, jnp.float32)
    return opt_state


def takes_initial_state(model: nnx.Module) -> bool:
    """Whether `model(x, h0)` is possible: the architecture contract only asks for `model(x)`."""
    return flossing.initial_state_gradient_unsupported(model) is None


NO_H0_NOTE = "grad_norm: the model's __call__ takes no initial state h0"


class Steps(NamedTuple):
    """The jitted functions of one compiled shape.

    `train_group` and `evaluate_group` take a group of runs: every array argument but `start`
    is stacked over the members on axis 0 (`zoo.bench.train.train_group`); `train` and
    `evaluate` are the same for one run, unstacked.
    """

    train: Callable  # (params, opt_state, arrays, key, start, n) -> (params, opt_state, losses)
    evaluate: Callable  # (params, batch) -> (loss, metric)
    grad_h0_norm: Callable | None  # (params, batch) -> |d loss / d h0| at h0 = 0; None: no h0 argument
    train_group: Callable  # (params, opt_state, arrays, keys, start, active, n) -> (params, opt_state, losses[m, n])
    evaluate_group: Callable  # (params, batch) -> (loss[m], metric[m])


def build_steps(graphdef: nnx.GraphDef, task, tx: optax.GradientTransformation, *, with_h0: bool = True) -> Steps:
    """Compile the train chunk, the evaluation and the h0 diagnostic of one model and task."""

    def loss_fn(params, batch):
        return task.loss(nnx.merge(graphdef, params)(batch.inputs), batch)

    def train_one(params, opt_state, arrays, key, start, n):
        def body(carry, i):
            params, opt_state = carry
            batch = task.sample(arrays, jax.random.fold_in(key, start + i))
            loss, grads = jax.value_and_grad(loss_fn)(params, batch)
            updates, opt_state = tx.update(grads, opt_state, params)
            return (optax.apply_updates(params, updates), opt_state), loss

        (params, opt_state), losses = jax.lax.scan(body, (params, opt_state), jnp.arange(n))
        return params, opt_state, losses

    def train(params, opt_state, arrays, keys, start, active, n):  # the group's (named `train` in caches)
        def member(params, opt_state, arrays, key, active):
            new_params, new_opt_state, losses = train_one(params, opt_state, arrays, key, start, n)
            # A member that has finished (solved and stopped, or diverged) keeps its state: the
            # program keeps its size, and the member's result stays what it was.
            keep = lambda new, old: jax.lax.select(active, new, old)  # noqa: E731
            return jax.tree.map(keep, new_params, params), jax.tree.map(keep, new_opt_state, opt_state), losses

        return over_members(member)(params, opt_state, arrays, keys, active)

    def evaluate(params, batch):
        outputs = nnx.merge(graphdef, params)(batch.inputs)
        return task.loss(outputs, batch), task.metric(outputs, batch)

    def grad_h0_norm(params, batch):
        """How much the loss still hears the start: |d loss / d h0| at h0 = 0 (the flossing paper)."""
        model = nnx.merge(graphdef, params)
        h0 = jnp.zeros((batch.inputs.shape[0], model.state_size), jnp.float32)
        return jnp.linalg.norm(jax.grad(lambda h: task.loss(model(batch.inputs, h), batch))(h0))

    return Steps(
        train=jax.jit(train_one, static_argnames="n", donate_argnums=(0, 1)),
        evaluate=jax.jit(evaluate),
        grad_h0_norm=jax.jit(grad_h0_norm) if with_h0 else None,
        train_group=jax.jit(train, static_argnames="n", donate_argnums=(0, 1)),
        evaluate_group=jax.jit(over_members(evaluate)),
    )


def over_members(fn: Callable) -> Callable:
    """`fn` mapped over axis 0 of every argument (a group's members): `jax.vmap`, or for a group
    of one `fn` itself on the squeezed arguments, which XLA compiles to faster unbatched kernels
    (25% faster on a CPU: `benchmarks/groups.py --sizes 1`)."""

    def mapped(*args):
        if jax.tree.leaves(args)[0].shape[0] != 1:
            return jax.vmap(fn)(*args)
        out = fn(*jax.tree.map(lambda x: x[0], args))
        return jax.tree.map(lambda x: x[None], out)

    return mapped


class StepCache:
    """Compiled `Steps` by shape key, the `capacity` most recently used kept (runs of one shape share them).

    Bounded: a suite of hundreds of shapes (13 architectures x 8 tasks, each with its programs)
    held every executable for the life of the process and ran out of memory after hours;
    runs of one shape run together, so a few recent shapes are all that is reused.
    """

    def __init__(self, capacity: int = 16) -> None:
        self.capacity = capacity
        self._steps: collections.OrderedDict[Hashable, Steps] = collections.OrderedDict()

    def get(self, key: Hashable, build: Callable[[], Steps]) -> Steps:
        if key in self._steps:
            self._steps.move_to_end(key)
        else:
            self._steps[key] = build()
            while len(self._steps) > self.capacity:
                self._steps.popitem(last=False)
        return self._steps[key]

    def __len__(self) -> int:
        return len(self._steps)

    def clear(self) -> None:
        self._steps.clear()


STEPS = StepCache()
