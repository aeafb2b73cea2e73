"""One run, top to bottom: build, (pre-)floss, train in jitted chunks, evaluate, checkpoint.

Everything random derives from the run's seed by `fold_in`, and every chunk starts at
an absolute step, so a run resumed from a checkpoint reproduces the uninterrupted run
exactly.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx

from zoo import flossing
from zoo.architectures.stack import count_params
from zoo.bench.checkpoint import RunCheckpoints
from zoo.bench.preflossed import PREFLOSSED
from zoo.bench.record import DIAGNOSTIC_COLUMNS, RunResult, diagnostic_columns
from zoo.bench.spec import RunSpec, build_model, build_task
from zoo.bench.steps import (
    NO_H0_NOTE, STEPS, Steps, build_steps, make_optimizer, set_learning_rate, takes_initial_state,
)

PyTree = Any

# Keys derived from the seed, one stream per purpose.
_DATA, _FLOSS, _DIAG = 1, 2, 3


class Interrupted(Exception):
    """The run stopped on request after saving a checkpoint."""


@dataclasses.dataclass(frozen=True)
class RunContext:
    """What every stage of one run shares, built once from its spec."""

    spec: RunSpec
    task: Any  # tasks.Task
    graphdef: nnx.GraphDef
    steps: Steps
    arrays: PyTree  # the task's data, on the device
    seed_key: jax.Array
    floss_cfg: flossing.FlossingConfig

    def key(self, purpose: int) -> jax.Array:
        return jax.random.fold_in(self.seed_key, purpose)

    def model(self, params: PyTree) -> nnx.Module:
        return nnx.merge(self.graphdef, params)


@dataclasses.dataclass
class Progress:
    """Where a run stands; saved as JSON with each checkpoint."""

    step: int = 0
    wall_time_s: float = 0.0
    metric: float = math.nan
    diag: dict[str, float] = dataclasses.field(default_factory=dict)  # RunResult's diagnostic fields
    steps_to_success: int | None = None
    val_metric: float = math.nan
    curve: list = dataclasses.field(default_factory=list)  # [step, train_loss, val_metric] per evaluation
    loss_sum: float = 0.0  # training losses since the last evaluation, for the curve's mean
    loss_count: int = 0


def optimizer_args(spec: RunSpec) -> tuple:
    """`make_optimizer`'s arguments: what the compiled optimiser depends on (not the lr)."""
    t = spec.train
    return (t.clip,) if t.schedule == "constant" else (t.clip, t.schedule, t.steps)


def flossing_config(spec: RunSpec, model: nnx.Module) -> flossing.FlossingConfig:
    """The suite's flossing settings with k clipped to the state size."""
    return flossing.FlossingConfig(**dict(spec.flossing_options)).for_state_size(model.state_size)


@dataclasses.dataclass(frozen=True)
class Schedule:
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


def boundaries(total: int, eval_every: int, floss_at: tuple[int, ...]) -> list[int]:
    """The steps at which training pauses: evaluations, flossing phases and the end."""
    points = set(range(eval_every, total, eval_every)) | {s for s in floss_at if 0 < s < total}
    return sorted(points | {total})


def commit(tree: PyTree) -> PyTree:
    """Place arrays on the default device explicitly.

    jit keys its cache on whether inputs are committed to a device; fresh arrays are not,
    restored and flossed ones are. Committing everything up front means every run
    reuses the same compiled programs instead of compiling each twice or three times.
    """
    return jax.device_put(tree, jax.devices()[0])


def _all_finite(tree: PyTree) -> bool:
    return all(bool(jnp.isfinite(x).all()) for x in jax.tree.leaves(tree))


# --------------------------------------------------------------------------- the run


def train_run(
    spec: RunSpec,
    run_dir: Path,
    *,
    task=None,
    should_stop: Callable[[], bool] = lambda: False,
    on_progress: Callable[[int, float], None] = lambda step, metric: None,
    preflossed_dir: Path | None = None,
) -> RunResult:
    """Train one run to success, divergence or its step budget; resumable from `run_dir`.

    `task` is the run's task if the caller built it already; `preflossed_dir` holds
    pre-flossed starting points that runs of other horizons share.
    """
    t_start = time.perf_counter()
    task = task if task is not None else build_task(spec)
    model = build_model(spec, task)
    n_params = count_params(model)
    floss_cfg = flossing_config(spec, model)
    schedule = Schedule.of(spec.flossing, spec.train.steps, floss_cfg)
    graphdef, params = nnx.split(model)
    tx = make_optimizer(*optimizer_args(spec))
    shape_key = (spec.registered_arch, spec.arch_options, tuple(spec.train.model_options.items()),
                 spec.train.hidden_size, optimizer_args(spec), task.static_key())
    steps = STEPS.get(shape_key, lambda: build_steps(graphdef, task, tx, with_h0=takes_initial_state(model)))
    ctx = RunContext(spec=spec, task=task, graphdef=graphdef, steps=steps, arrays=commit(task.arrays()),
                     seed_key=commit(jax.random.key(spec.seed)), floss_cfg=floss_cfg)
    # Every evaluation reads validation (curves, tuning); `eval_split` says which split decides
    # success and early stopping. The reported metric is the test split's at the end.
    batches = {split: commit(task.eval_batch(split)) for split in ("validation", "test")}
    data_key = ctx.key(_DATA)

    opt_state = set_learning_rate(tx.init(params), spec.train.lr)
    floss_state = nnx.state(flossing.make_flossing_optimizer(model, floss_cfg))
    state = commit({"params": params, "opt_state": opt_state, "floss_state": floss_state})
    progress = Progress()

    checkpoints = RunCheckpoints(run_dir)
    try:
        restored = checkpoints.restore_latest(state)
        if restored is not None:
            _, state, meta = restored
            state, progress = commit(state), Progress(**meta)
        else:
            state, diag = _starting_point(ctx, state, schedule.pre_steps, preflossed_dir)
            diag.update(_grad_norm(ctx, state["params"], "before"))
            progress.diag.update(diag)
            checkpoints.save(0, state, dataclasses.asdict(progress))

        step, evals_since_save = progress.step, 0
        stop_early = spec.train.stop_at_success
        status = "stopped" if stop_early and progress.steps_to_success is not None else "training"
        fixed_step = spec.train.fixed_diag_step
        # Training pauses at the fixed diagnostics' step too (chunks start at absolute steps,
        # so an extra pause changes nothing in the training itself).
        for stop_at in boundaries(spec.train.steps, spec.train.eval_every, (*schedule.during_at, fixed_step)):
            if status != "training":
                break
            if stop_at <= step:
                continue
            params, opt_state, losses = steps.train(
                state["params"], state["opt_state"], ctx.arrays, data_key, step, n=stop_at - step
            )
            state = {**state, "params": params, "opt_state": opt_state}
            step = stop_at
            if not (bool(jnp.isfinite(losses).all()) and _all_finite(params)):
                status = "diverged"
                break
            if step == fixed_step:  # after the training steps, before a flossing phase at this step
                progress.diag.update(_lyapunov(ctx, state["params"], "fixed"))
            progress.loss_sum += float(jnp.sum(losses))
            progress.loss_count += int(losses.shape[0])
            if step % spec.train.eval_every == 0 or step == spec.train.steps:
                progress.val_metric = float(steps.evaluate(state["params"], batches["validation"])[1])
                progress.metric = (progress.val_metric if spec.train.eval_split == "validation" else
                                   float(steps.evaluate(state["params"], batches[spec.train.eval_split])[1]))
                progress.curve.append([step, progress.loss_sum / progress.loss_count, progress.val_metric])
                progress.loss_sum, progress.loss_count = 0.0, 0
                on_progress(step, progress.metric)
                if not math.isfinite(progress.metric):
                    status = "diverged"
                    break
                if progress.steps_to_success is None and task.solved(progress.metric):
                    progress.steps_to_success = step
                    if stop_early:
                        status = "stopped"
                        break
                evals_since_save += 1
            if step in schedule.during_at:
                phase = 1 + schedule.during_at.index(step)
                state = _floss_phase(ctx, state, phase, schedule.during_steps)
            progress.step = step
            if should_stop():
                _save(checkpoints, step, state, progress, t_start)
                raise Interrupted(spec.run_id)
            if evals_since_save >= spec.train.checkpoint_every:
                _save(checkpoints, step, state, progress, t_start)
                evals_since_save = 0

        progress.step = step
        if status != "diverged":
            if spec.train.eval_split != "test":  # the reported metric: test, of the final parameters
                progress.metric = float(steps.evaluate(state["params"], batches["test"])[1])
            status = "solved" if math.isfinite(progress.metric) and task.solved(progress.metric) else "unsolved"
            progress.diag.update(_lyapunov(ctx, state["params"], "after"))
            progress.diag.update(_grad_norm(ctx, state["params"], "after"))
            _save(checkpoints, step, state, progress, t_start)
    finally:
        checkpoints.close()

    notes = ["loss or parameters became NaN/inf"] if status == "diverged" else []
    if status == "unsolved" and progress.steps_to_success is not None:
        notes.append(f"the {spec.train.eval_split} metric met the criterion at step {progress.steps_to_success}, "
                     "the final test metric does not")
    if steps.grad_h0_norm is None:
        notes.append(NO_H0_NOTE)
    measured_fixed = "lambda1_fixed" in progress.diag
    if not measured_fixed:
        notes.append(f"*_fixed: the run ended at step {step}, before diag_at_step {fixed_step}")
    wall = progress.wall_time_s + time.perf_counter() - t_start
    diag_fields = [f.name for f in dataclasses.fields(RunResult) if f.name.startswith(("lambda1", "spread", "grad"))]
    diag_fields = [f for f in diag_fields if f not in DIAGNOSTIC_COLUMNS]
    return RunResult(
        status=status,
        metric=progress.metric,
        success=status == "solved",
        steps_to_success=progress.steps_to_success,
        steps_trained=step,
        wall_time_s=round(wall, 3),
        note="; ".join(notes),
        val_metric=progress.val_metric,
        n_params=n_params,
        curve=progress.curve,
        **{k: progress.diag.get(k, math.nan) for k in diag_fields},
        diagnostics={k: progress.diag.get(k, math.nan) for k in DIAGNOSTIC_COLUMNS},
        diag_step=fixed_step if measured_fixed else None,
    )


def _save(checkpoints: RunCheckpoints, step: int, state: PyTree, progress: Progress, t_start: float) -> None:
    saved = dataclasses.replace(progress, step=step,
                                wall_time_s=progress.wall_time_s + time.perf_counter() - t_start)
    checkpoints.save(step, state, dataclasses.asdict(saved))


def _floss_phase(ctx: RunContext, state: PyTree, phase: int, n: int) -> PyTree:
    """`n` flossing steps, each on a fresh input sequence from the task's input distribution."""
    model = ctx.model(state["params"])
    optimizer = flossing.make_flossing_optimizer(model, ctx.floss_cfg)
    nnx.update(optimizer, state["floss_state"])
    key = jax.random.fold_in(ctx.key(_FLOSS), phase)
    inputs, keys = flossing.flossing_inputs(ctx.task, ctx.arrays, key, n, ctx.floss_cfg)
    flossing.floss(model, optimizer, inputs, keys, ctx.floss_cfg)
    return {**state, "params": nnx.state(model), "floss_state": nnx.state(optimizer)}


def _grad_norm(ctx: RunContext, params: PyTree, when: str) -> dict[str, float]:
    """`grad_norm_<when>`: |d loss / d h0| on one batch (NaN when the model takes no h0)."""
    if ctx.steps.grad_h0_norm is None:
        return {f"grad_norm_{when}": math.nan}
    batch = ctx.task.sample(ctx.arrays, ctx.key(_DIAG))
    return {f"grad_norm_{when}": float(ctx.steps.grad_h0_norm(params, batch))}


def _lyapunov(ctx: RunContext, params: PyTree, when: str) -> dict[str, float]:
    """The diagnostic columns `<name>_<when>` (zoo.bench.record.DIAGNOSTICS) on one long input
    sequence of the task, the same sequence at every `when`."""
    inputs = ctx.task.sample_inputs(ctx.arrays, ctx.key(_DIAG), flossing.DiagnosticsConfig().steps)
    return diagnostic_columns(when, flossing.lyapunov_diagnostics(ctx.model(params), inputs, ctx.floss_cfg))


def _starting_point(ctx: RunContext, state: PyTree, pre_steps: int,
                    preflossed_dir: Path | None) -> tuple[PyTree, dict]:
    """The state training starts from (pre-flossed if asked) and its Lyapunov diagnostics."""
    if not pre_steps:
        diag = _lyapunov(ctx, state["params"], "init")
        return state, {**diag, **{k.replace("_init", "_before"): v for k, v in diag.items()}}
    spec, task, cfg = ctx.spec, ctx.task, ctx.floss_cfg
    shared = (spec.registered_arch, spec.arch_options, *spec.train.model_options.items(), spec.train.hidden_size,
              task.input_size, task.output_size,
              spec.seed, task.input_key(), pre_steps,
              dataclasses.replace(cfg, pre_steps=0, during_steps=0, during_every=1, during_times=0))
    key = hashlib.sha1(repr(shared).encode()).hexdigest()[:16]
    template = {"params": state["params"], "floss_state": state["floss_state"]}
    found = PREFLOSSED.get(key, preflossed_dir, template)
    if found is None:
        diag = _lyapunov(ctx, state["params"], "init")
        state = _floss_phase(ctx, state, 0, pre_steps)
        diag.update(_lyapunov(ctx, state["params"], "before"))
        found = ({"params": state["params"], "floss_state": state["floss_state"]}, diag)
        PREFLOSSED.put(key, preflossed_dir, *found)
    flossed, diag = found
    # A copy: training donates its inputs' buffers, and the cached entry serves later runs.
    flossed = jax.tree.map(jnp.copy, flossed)
    return commit({**state, **flossed}), dict(diag)
