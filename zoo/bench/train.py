"""One run, top to bottom: build, (pre-)floss, train in jitted chunks, evaluate, checkpoint.

Everything random derives from the run's seed by `fold_in`, and every chunk starts at
an absolute step, so a run resumed from a checkpoint reproduces the uninterrupted run
exactly.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import time
from collections.abc import Callable, Hashable
from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
import orbax.checkpoint as ocp
from flax import nnx

import tasks as task_registry
import zoo
from zoo import flossing
from zoo.bench.checkpoint import RunCheckpoints
from zoo.bench.suite import RunSpec

PyTree = Any

# Keys derived from the seed, one stream per purpose.
_DATA, _FLOSS, _DIAG = 1, 2, 3


class Interrupted(Exception):
    """The run stopped on request after saving a checkpoint."""


@dataclasses.dataclass
class RunResult:
    """What one finished run reports (one row of runs.csv)."""

    status: str  # solved | unsolved | diverged
    metric: float
    success: bool
    steps_to_success: int | None
    steps_trained: int
    wall_time_s: float
    lambda1_init: float = math.nan
    spread_init: float = math.nan
    lambda1_before: float = math.nan
    spread_before: float = math.nan
    lambda1_after: float = math.nan
    spread_after: float = math.nan
    grad_norm_before: float = math.nan
    grad_norm_after: float = math.nan
    note: str = ""


# --------------------------------------------------------------------------- building blocks


def clip_per_array(max_norm: float) -> optax.GradientTransformation:
    """Scale each gradient array to norm at most `max_norm` (the flossing paper's clipping)."""

    def update(updates, state, params=None):
        del params
        scale = lambda g: g * jnp.minimum(1.0, max_norm / (jnp.linalg.norm(g) + 1e-12))  # noqa: E731
        return jax.tree.map(scale, updates), state

    return optax.GradientTransformation(lambda _: optax.EmptyState(), update)


def make_optimizer(clip: float) -> optax.GradientTransformation:
    """Adam with the learning rate as state, so runs with different rates share one compilation."""
    adam = optax.inject_hyperparams(optax.adam)(learning_rate=1e-3)
    return optax.chain(clip_per_array(clip), adam) if clip > 0 else adam


def set_learning_rate(opt_state: PyTree, lr: float) -> PyTree:
    """Write `lr` into the injected hyperparameter of the optimiser state."""
    # With clipping the state is (clip state, adam state); without, the adam state itself
    # (a NamedTuple too, so test for the hyperparameters rather than for a tuple).
    inner = opt_state if hasattr(opt_state, "hyperparams") else opt_state[-1]
    inner.hyperparams["learning_rate"] = jnp.asarray(lr, jnp.float32)
    return opt_state


def build_model(spec: RunSpec, task: task_registry.Task) -> nnx.Module:
    """The run's architecture, initialised from its seed."""
    return zoo.create_architecture(
        spec.arch,
        input_size=task.input_size,
        hidden_size=spec.train.hidden_size,
        output_size=task.output_size,
        rngs=nnx.Rngs(spec.seed),
        **dict(spec.arch_options),
    )


def flossing_config(spec: RunSpec, model: nnx.Module) -> flossing.FlossingConfig:
    """The suite's flossing settings with k clipped to the state size."""
    return flossing.FlossingConfig(**dict(spec.flossing_options)).for_state_size(model.state_size)


class Schedule(NamedTuple):
    """Flossing steps before training, and the training steps after which to floss again."""

    pre_steps: int
    during_at: tuple[int, ...]
    during_steps: int

    @classmethod
    def of(cls, mode: str, train_steps: int, cfg: flossing.FlossingConfig) -> Schedule:
        phases = flossing.flossing_schedule(mode, train_steps, cfg)
        pre = sum(p.n_steps for p in phases if p.at_step == 0)
        during = tuple(p.at_step for p in phases if p.at_step > 0)
        return cls(pre, during, cfg.during_steps)


class Steps(NamedTuple):
    """The jitted functions of one compiled shape, shared by all runs with the same key."""

    train: Callable  # (params, opt_state, arrays, key, start, n) -> (params, opt_state, losses)
    evaluate: Callable  # (params, batch) -> (loss, metric)
    grad_h0_norm: Callable  # (params, batch) -> |d loss / d h0| at h0 = 0


_STEPS: dict[Hashable, Steps] = {}


def steps_for(spec: RunSpec, task: task_registry.Task, graphdef: nnx.GraphDef) -> Steps:
    """Compile (once per shape) the train and eval steps of this run's model and task."""
    key = (spec.arch, spec.arch_options, spec.train.hidden_size, spec.train.clip, task.static_key())
    if key not in _STEPS:
        _STEPS[key] = _build_steps(graphdef, task, make_optimizer(spec.train.clip))
    return _STEPS[key]


def _build_steps(graphdef, task, tx) -> Steps:
    def loss_fn(params, batch):
        return task.loss(nnx.merge(graphdef, params)(batch.inputs), batch)

    def train(params, opt_state, arrays, key, start, n):
        def body(carry, i):
            params, opt_state = carry
            batch = task.sample(arrays, jax.random.fold_in(key, start + i))
            loss, grads = jax.value_and_grad(loss_fn)(params, batch)
            updates, opt_state = tx.update(grads, opt_state, params)
            return (optax.apply_updates(params, updates), opt_state), loss

        (params, opt_state), losses = jax.lax.scan(body, (params, opt_state), jnp.arange(n))
        return params, opt_state, losses

    def evaluate(params, batch):
        outputs = nnx.merge(graphdef, params)(batch.inputs)
        return task.loss(outputs, batch), task.metric(outputs, batch)

    def grad_h0_norm(params, batch):
        model = nnx.merge(graphdef, params)
        h0 = jnp.zeros((batch.inputs.shape[0], model.state_size), jnp.float32)
        return jnp.linalg.norm(jax.grad(lambda h: task.loss(model(batch.inputs, h), batch))(h0))

    return Steps(
        train=jax.jit(train, static_argnames="n", donate_argnums=(0, 1)),
        evaluate=jax.jit(evaluate),
        grad_h0_norm=jax.jit(grad_h0_norm),
    )


def _commit(tree: PyTree) -> PyTree:
    """Place arrays on the default device explicitly.

    jit keys its cache on whether inputs are committed to a device; fresh arrays are not,
    restored and flossed ones are. Committing everything up front means every run
    reuses the same compiled programs instead of compiling each twice or three times.
    """
    return jax.device_put(tree, jax.devices()[0])


def _all_finite(tree: PyTree) -> bool:
    return all(bool(jnp.isfinite(x).all()) for x in jax.tree.leaves(tree))


def boundaries(total: int, eval_every: int, floss_at: tuple[int, ...]) -> list[int]:
    """The steps at which training pauses: evaluations, flossing phases and the end."""
    points = set(range(eval_every, total, eval_every)) | {s for s in floss_at if 0 < s < total}
    return sorted(points | {total})


# --------------------------------------------------------------------------- the run


def train_run(
    spec: RunSpec,
    run_dir: Path,
    *,
    should_stop: Callable[[], bool] = lambda: False,
    on_progress: Callable[[int, float], None] = lambda step, metric: None,
    preflossed_dir: Path | None = None,
) -> RunResult:
    """Train one run to success, divergence or its step budget; resumable from `run_dir`.

    `preflossed_dir` holds pre-flossed starting points that runs of other horizons share.
    """
    t_start = time.perf_counter()
    horizon = int(spec.horizon) if float(spec.horizon).is_integer() else spec.horizon
    task = task_registry.create_task(spec.task, horizon=horizon, **dict(spec.task_options))
    model = build_model(spec, task)
    floss_cfg = flossing_config(spec, model)
    schedule = Schedule.of(spec.flossing, spec.train.steps, floss_cfg)
    graphdef, params = nnx.split(model)
    steps = steps_for(spec, task, graphdef)
    arrays, eval_batch = _commit(task.arrays()), _commit(task.eval_batch())
    seed_key = _commit(jax.random.key(spec.seed))
    data_key = jax.random.fold_in(seed_key, _DATA)

    tx = make_optimizer(spec.train.clip)
    opt_state = set_learning_rate(tx.init(params), spec.train.lr)
    floss_state = nnx.state(flossing.make_flossing_optimizer(model, floss_cfg))
    state = _commit({"params": params, "opt_state": opt_state, "floss_state": floss_state})
    meta: dict[str, Any] = {"step": 0, "wall_time_s": 0.0, "metric": math.nan, "diag": {}}

    checkpoints = RunCheckpoints(run_dir)
    try:
        restored = checkpoints.restore_latest(state)
        if restored is not None:
            _, state, meta = restored
            state = _commit(state)
        else:
            state, diag = _starting_point(spec, task, arrays, graphdef, state, floss_cfg,
                                          schedule.pre_steps, seed_key, preflossed_dir)
            key = jax.random.fold_in(seed_key, _DIAG)
            diag["grad_norm_before"] = float(steps.grad_h0_norm(state["params"], task.sample(arrays, key)))
            meta["diag"].update(diag)
            checkpoints.save(0, state, meta)

        step, status, evals_since_save = meta["step"], "unsolved", 0
        steps_to_success = meta.get("steps_to_success")
        if steps_to_success is not None:
            status = "solved"
        for stop_at in boundaries(spec.train.steps, spec.train.eval_every, schedule.during_at):
            if status != "unsolved":
                break
            if stop_at <= step:
                continue
            params, opt_state, losses = steps.train(
                state["params"], state["opt_state"], arrays, data_key, step, n=stop_at - step
            )
            state = {**state, "params": params, "opt_state": opt_state}
            step = stop_at
            if not (bool(jnp.isfinite(losses).all()) and _all_finite(params)):
                status = "diverged"
                break
            if step % spec.train.eval_every == 0 or step == spec.train.steps:
                _, metric = steps.evaluate(state["params"], eval_batch)
                meta["metric"] = float(metric)
                on_progress(step, meta["metric"])
                if not math.isfinite(meta["metric"]):
                    status = "diverged"
                    break
                if task.solved(meta["metric"]):
                    status, steps_to_success = "solved", step
                    break
                evals_since_save += 1
            if step in schedule.during_at:
                phase = 1 + schedule.during_at.index(step)
                state = _floss_phase(task, arrays, graphdef, state, seed_key, phase, schedule.during_steps, floss_cfg)
            meta["step"] = step
            if should_stop():
                _save(checkpoints, step, state, meta, t_start)
                raise Interrupted(spec.run_id)
            if evals_since_save >= spec.train.checkpoint_every:
                _save(checkpoints, step, state, meta, t_start)
                evals_since_save = 0

        meta.update(step=step, steps_to_success=steps_to_success)
        if status != "diverged":
            meta["diag"].update(_diagnostics(steps, task, arrays, graphdef, state["params"], floss_cfg, seed_key, "after"))
            _save(checkpoints, step, state, meta, t_start)
    finally:
        checkpoints.close()

    diag = meta["diag"]
    wall = meta["wall_time_s"] + time.perf_counter() - t_start
    return RunResult(
        status=status,
        metric=meta["metric"],
        success=status == "solved",
        steps_to_success=steps_to_success,
        steps_trained=step,
        wall_time_s=round(wall, 3),
        note="loss or parameters became NaN/inf" if status == "diverged" else "",
        **{k: diag.get(k, math.nan) for k in (
            "lambda1_init", "spread_init", "lambda1_before", "spread_before",
            "lambda1_after", "spread_after", "grad_norm_before", "grad_norm_after")},
    )


def _save(checkpoints: RunCheckpoints, step: int, state: PyTree, meta: dict, t_start: float) -> None:
    meta = {**meta, "step": step, "wall_time_s": meta["wall_time_s"] + time.perf_counter() - t_start}
    checkpoints.save(step, state, meta)


def _floss_phase(task, arrays, graphdef, state: PyTree, seed_key, phase: int, n: int,
                 cfg: flossing.FlossingConfig) -> PyTree:
    """`n` flossing steps, each on a fresh input sequence from the task's input distribution."""
    model = nnx.merge(graphdef, state["params"])
    optimizer = flossing.make_flossing_optimizer(model, cfg)
    nnx.update(optimizer, state["floss_state"])
    key = jax.random.fold_in(jax.random.fold_in(seed_key, _FLOSS), phase)
    inputs, keys = flossing.flossing_inputs(task, arrays, key, n, cfg)
    flossing.floss(model, optimizer, inputs, keys, cfg)
    return {**state, "params": nnx.state(model), "floss_state": nnx.state(optimizer)}


# Long enough for the exponents to settle; short enough to cost little per run.
DIAGNOSTIC_STEPS = 200


def _diagnostics(steps: Steps, task, arrays, graphdef, params, cfg, seed_key, when: str) -> dict[str, float]:
    """Leading exponent, spread and initial-state gradient norm of the current model."""
    key = jax.random.fold_in(seed_key, _DIAG)
    out = _lyapunov(task, arrays, graphdef, params, cfg, seed_key, when)
    out[f"grad_norm_{when}"] = float(steps.grad_h0_norm(params, task.sample(arrays, key)))
    return out


def _lyapunov(task, arrays, graphdef, params, cfg, seed_key, when: str) -> dict[str, float]:
    """`lambda1_<when>` and `spread_<when>` on one long input sequence of the task."""
    key = jax.random.fold_in(seed_key, _DIAG)
    inputs = task.sample_inputs(arrays, key, max(DIAGNOSTIC_STEPS, cfg.rollout))
    d = flossing.lyapunov_diagnostics(nnx.merge(graphdef, params), inputs, cfg)
    out = {f"lambda1_{when}": d["lambda_1"], f"spread_{when}": d["lambda_spread"]}
    return {k: (float(v) if np.isfinite(v) else math.nan) for k, v in out.items()}


# ----------------------------------------------------------------- shared starting points

# A pre-flossed model depends on the architecture, its seed and the statistics of the
# inputs, not on the horizon: runs that share those share one pre-flossing, in memory
# and (across processes and restarts) on disk.
_PREFLOSSED: dict[str, tuple[PyTree, dict]] = {}


def _starting_point(spec, task, arrays, graphdef, state, cfg, pre_steps: int, seed_key,
                    preflossed_dir: Path | None) -> tuple[PyTree, dict]:
    """The state training starts from (pre-flossed if asked) and its Lyapunov diagnostics."""
    if not pre_steps:
        diag = _lyapunov(task, arrays, graphdef, state["params"], cfg, seed_key, "init")
        return state, {**diag, "lambda1_before": diag["lambda1_init"], "spread_before": diag["spread_init"]}
    shared = (spec.arch, spec.arch_options, spec.train.hidden_size, task.input_size, task.output_size,
              spec.seed, task.input_key(), pre_steps,
              dataclasses.replace(cfg, pre_steps=0, during_steps=0, during_every=1, during_times=0))
    key = hashlib.sha1(repr(shared).encode()).hexdigest()[:16]
    found = _PREFLOSSED.get(key) or _load_preflossed(preflossed_dir, key, state)
    if found is None:
        diag = _lyapunov(task, arrays, graphdef, state["params"], cfg, seed_key, "init")
        state = _floss_phase(task, arrays, graphdef, state, seed_key, 0, pre_steps, cfg)
        diag.update(_lyapunov(task, arrays, graphdef, state["params"], cfg, seed_key, "before"))
        found = ({"params": state["params"], "floss_state": state["floss_state"]}, diag)
        _save_preflossed(preflossed_dir, key, *found)
    _PREFLOSSED[key] = found
    flossed, diag = found
    # A copy: training donates its inputs' buffers, and the cached entry serves later runs.
    flossed = jax.tree.map(jnp.copy, flossed)
    return _commit({**state, **flossed}), dict(diag)


def _load_preflossed(folder: Path | None, key: str, state: PyTree) -> tuple[PyTree, dict] | None:
    if folder is None or not (folder / key / "diag.json").exists():
        return None
    template = {"params": state["params"], "floss_state": state["floss_state"]}
    try:
        flossed = ocp.StandardCheckpointer().restore((folder / key / "state").resolve(), template)
        return flossed, json.loads((folder / key / "diag.json").read_text())
    except Exception:  # noqa: BLE001  (damaged: floss again)
        return None


def _save_preflossed(folder: Path | None, key: str, flossed: PyTree, diag: dict) -> None:
    if folder is None:
        return
    target = folder / key
    try:
        checkpointer = ocp.StandardCheckpointer()
        checkpointer.save((target / "state").resolve(), flossed, force=True)
        checkpointer.wait_until_finished()
        tmp = target / "diag.json.tmp"
        tmp.write_text(json.dumps(diag))
        os.replace(tmp, target / "diag.json")  # written last: marks the entry complete
    except Exception:  # noqa: BLE001  (another process wrote it first; theirs is identical)
        pass
