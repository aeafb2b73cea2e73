"""One run, or a group of runs of one compiled shape, top to bottom: build, (pre-)floss, train
in jitted chunks, evaluate, checkpoint.

Everything random derives from the run's seed by `fold_in`, and every chunk starts at
an absolute step, so a run resumed from a checkpoint reproduces the uninterrupted run
exactly. A group trains its members as one `jax.vmap`ped program (`train_group`); one run
is a group of one (`train_run`), so there is one training loop.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
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


# --------------------------------------------------------------------------- a group of runs


def shape_key(spec: RunSpec, task) -> tuple:
    """What the compiled programs depend on: runs with equal keys share them."""
    return (spec.registered_arch, spec.arch_options, tuple(spec.train.model_options.items()),
            spec.train.hidden_size, optimizer_args(spec), task.static_key())


def group_key(spec: RunSpec, task) -> tuple:
    """Runs with equal keys can train as one group: one compiled shape and the same pauses
    (evaluations, flossing phases during training, the fixed diagnostics' step). Seed, learning
    rate, horizon (where the task's shape does not change with it) and flossing `none` against
    `pre` may differ: pre-flossing happens before the group trains."""
    t = spec.train
    during = Schedule.of(spec.flossing, t.steps, flossing.FlossingConfig(**dict(spec.flossing_options)))
    return (shape_key(spec, task), t.steps, t.eval_every, t.fixed_diag_step, t.eval_split,
            during.during_at, during.during_steps, spec.flossing_options)


@dataclasses.dataclass
class Member:
    """One run of a group: its own context, checkpoints and progress."""

    ctx: RunContext
    checkpoints: RunCheckpoints
    n_params: int
    progress: Progress = dataclasses.field(default_factory=Progress)
    status: str = "training"  # then "stopped" (solved with stop_at_success) or "diverged"
    evals_since_save: int = 0
    spent_s: float = 0.0  # this process's share of the group's wall time

    def save(self, step: int, state: PyTree) -> None:
        saved = dataclasses.replace(self.progress, step=step, wall_time_s=self.progress.wall_time_s + self.spent_s)
        self.checkpoints.save(step, state, dataclasses.asdict(saved))


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

    A group of one (`train_group`). `task` is the run's task if the caller built it already;
    `preflossed_dir` holds pre-flossed starting points that runs of other horizons share.
    """
    return train_group([spec], [run_dir], tasks=[task], should_stop=should_stop,
                       on_progress=lambda i, step, metric: on_progress(step, metric),
                       preflossed_dir=preflossed_dir)[0]


def train_group(
    specs: Sequence[RunSpec],
    run_dirs: Sequence[Path],
    *,
    tasks: Sequence[Any] | None = None,
    should_stop: Callable[[], bool] = lambda: False,
    on_progress: Callable[[int, int, float], None] = lambda member, step, metric: None,
    preflossed_dir: Path | None = None,
    size: int | None = None,
) -> list[RunResult]:
    """Train runs of one `group_key` as one `jax.vmap`ped program; each is resumable from its `run_dir`.

    Every member keeps its own parameters, data stream, optimiser state (the learning rate is
    optimiser state), early stop, checkpoints and result: a member that finished is masked
    out of the program, which keeps its size (one compilation per group size). Pre-flossing,
    flossing phases and the Lyapunov diagnostics run per member. Members resumed from
    checkpoints at different steps catch up one chunk at a time, the ones furthest behind
    first, each chunk starting at its absolute step, so a member's numbers never depend on
    the others. `size` (default: the number of runs) is the program's: slots beyond the runs
    are padding, so that a group that lost finished members on a resume keeps its numbers
    (`zoo.bench.group`). `on_progress(member index, step, metric)` follows every evaluation.
    """
    tasks = [t if t is not None else build_task(s) for s, t in zip(specs, tasks or [None] * len(specs))]
    size = len(specs) if size is None else size
    if size < len(specs):
        raise ValueError(f"a group of {len(specs)} runs cannot train in a program of size {size}")
    if len({group_key(s, t) for s, t in zip(specs, tasks)}) > 1:
        raise ValueError("the runs of a group must share group_key (architecture, sizes, optimiser, task "
                         f"shape, steps and pauses): {', '.join(s.run_id for s in specs)}")
    members: list[Member] = []
    try:
        states = []
        for spec, task, run_dir in zip(specs, tasks, run_dirs):
            member, state = _open_member(spec, task, run_dir, preflossed_dir, members)
            states.append(state)
        results = _train_members(members, states, size, should_stop, on_progress)
    finally:
        for member in members:
            member.checkpoints.close()
    return results


def _open_member(spec: RunSpec, task, run_dir: Path, preflossed_dir: Path | None,
                 members: list[Member]) -> tuple[Member, PyTree]:
    """Build one member (appended to `members`) and its state: restored, or its starting point."""
    clock = time.perf_counter()
    model = build_model(spec, task)
    floss_cfg = flossing_config(spec, model)
    graphdef, params = nnx.split(model)
    tx = make_optimizer(*optimizer_args(spec))
    steps = STEPS.get(shape_key(spec, task),
                      lambda: build_steps(graphdef, task, tx, with_h0=takes_initial_state(model)))
    ctx = RunContext(spec=spec, task=task, graphdef=graphdef, steps=steps, arrays=commit(task.arrays()),
                     seed_key=commit(jax.random.key(spec.seed)), floss_cfg=floss_cfg)
    opt_state = set_learning_rate(tx.init(params), spec.train.lr)
    floss_state = nnx.state(flossing.make_flossing_optimizer(model, floss_cfg))
    state = commit({"params": params, "opt_state": opt_state, "floss_state": floss_state})
    member = Member(ctx=ctx, checkpoints=RunCheckpoints(run_dir), n_params=count_params(model))
    members.append(member)  # the caller closes its checkpoints, whatever happens next

    restored = member.checkpoints.restore_latest(state)
    if restored is not None:
        _, state, meta = restored
        state, member.progress = commit(state), Progress(**meta)
    else:
        pre_steps = Schedule.of(spec.flossing, spec.train.steps, floss_cfg).pre_steps
        state, diag = _starting_point(ctx, state, pre_steps, preflossed_dir)
        diag.update(_grad_norm(ctx, state["params"], "before"))
        member.progress.diag.update(diag)
        member.save(0, state)
    if spec.train.stop_at_success and member.progress.steps_to_success is not None:
        member.status = "stopped"
    member.spent_s += time.perf_counter() - clock
    return member, state


def _train_members(members: list[Member], states: list[PyTree], size: int, should_stop: Callable[[], bool],
                   on_progress: Callable[[int, int, float], None]) -> list[RunResult]:
    """The training loop over the members' `states` stacked into a program of `size`, then each
    member's result. Padding slots copy the first member and never train."""

    def stacked(per_member: list[PyTree]) -> PyTree:
        return commit(_stack(per_member + per_member[:1] * (size - len(per_member))))

    first = members[0].ctx
    t, steps = first.spec.train, first.steps
    schedule = Schedule.of(first.spec.flossing, t.steps, first.floss_cfg)  # during_at: the group's
    fixed_step = t.fixed_diag_step
    state = stacked(states)
    arrays = stacked([m.ctx.arrays for m in members])
    data_keys = stacked([m.ctx.key(_DATA) for m in members])
    # Every evaluation reads validation (curves, tuning); `eval_split` says which split decides
    # success and early stopping. The reported metric is the test split's at the end.
    batches = {split: stacked([m.ctx.task.eval_batch(split) for m in members])
               for split in ("validation", "test")}
    # Training pauses at the fixed diagnostics' step too (chunks start at absolute steps,
    # so an extra pause changes nothing in the training itself).
    pauses = boundaries(t.steps, t.eval_every, (*schedule.during_at, fixed_step))

    while True:
        live = [m for m in members if m.status == "training" and m.progress.step < t.steps]
        if not live:
            break
        clock = time.perf_counter()
        at = min(m.progress.step for m in live)  # resumed members further behind catch up first
        stop_at = next(b for b in pauses if b > at)
        moving = [m.status == "training" and m.progress.step == at for m in members]
        active = commit(jnp.asarray(moving + [False] * (size - len(members))))
        params, opt_state, losses = steps.train_group(state["params"], state["opt_state"], arrays, data_keys, at,
                                                      active, n=stop_at - at)
        state = {**state, "params": params, "opt_state": opt_state}
        finite = _finite_members(losses, params)
        loss_sums = np.asarray(jnp.sum(losses, axis=1))
        evaluated = stop_at % t.eval_every == 0 or stop_at == t.steps
        if evaluated:
            val = np.asarray(steps.evaluate_group(state["params"], batches["validation"])[1])
            metric = (val if t.eval_split == "validation" else
                      np.asarray(steps.evaluate_group(state["params"], batches[t.eval_split])[1]))
        for i, member in enumerate(members):
            if not moving[i]:
                continue
            progress = member.progress
            progress.step = stop_at
            if not finite[i]:
                member.status = "diverged"
                continue
            if stop_at == fixed_step:  # after the training steps, before a flossing phase at this step
                progress.diag.update(_lyapunov(member.ctx, _take(state, i)["params"], "fixed"))
            progress.loss_sum += float(loss_sums[i])
            progress.loss_count += int(losses.shape[1])
            if evaluated:
                _evaluated(member, stop_at, float(val[i]), float(metric[i]))
                on_progress(i, stop_at, progress.metric)
            if member.status == "training" and stop_at in schedule.during_at:
                phase = 1 + schedule.during_at.index(stop_at)
                state = _put(state, i, _floss_phase(member.ctx, _take(state, i), phase, schedule.during_steps))
        _share([m for m, on in zip(members, moving) if on], time.perf_counter() - clock)

        if should_stop():
            for i, member in enumerate(members):  # a stopped member's result is kept too
                if member.status != "diverged":
                    member.save(member.progress.step, _take(state, i))
            raise Interrupted(", ".join(m.ctx.spec.run_id for m in members))
        for i, member in enumerate(members):
            if moving[i] and member.status == "training" and member.evals_since_save >= t.checkpoint_every:
                member.save(stop_at, _take(state, i))
                member.evals_since_save = 0

    # The reported metric: test, of the final parameters (a finished member's were kept).
    test = np.asarray(steps.evaluate_group(state["params"], batches["test"])[1]) if t.eval_split != "test" else None
    return [_finish(m, _take(state, i), None if test is None else float(test[i])) for i, m in enumerate(members)]


def _evaluated(member: Member, step: int, val_metric: float, metric: float) -> None:
    """Record an evaluation at `step`: the curve, success, early stop, divergence."""
    progress, spec = member.progress, member.ctx.spec
    progress.val_metric, progress.metric = val_metric, metric
    progress.curve.append([step, progress.loss_sum / progress.loss_count, progress.val_metric])
    progress.loss_sum, progress.loss_count = 0.0, 0
    if not math.isfinite(progress.metric):
        member.status = "diverged"
        return
    if progress.steps_to_success is None and member.ctx.task.solved(progress.metric):
        progress.steps_to_success = step
        if spec.train.stop_at_success:
            member.status = "stopped"
            return
    member.evals_since_save += 1


def _finish(member: Member, state: PyTree, test_metric: float | None) -> RunResult:
    """A member's result: its status and final diagnostics, saved with its last checkpoint."""
    clock = time.perf_counter()
    ctx, progress = member.ctx, member.progress
    spec, step, fixed_step = ctx.spec, progress.step, ctx.spec.train.fixed_diag_step
    status = member.status
    if status != "diverged":
        if test_metric is not None:
            progress.metric = test_metric
        status = "solved" if math.isfinite(progress.metric) and ctx.task.solved(progress.metric) else "unsolved"
        progress.diag.update(_lyapunov(ctx, state["params"], "after"))
        progress.diag.update(_grad_norm(ctx, state["params"], "after"))
        member.spent_s += time.perf_counter() - clock
        member.save(step, state)

    notes = ["loss or parameters became NaN/inf"] if status == "diverged" else []
    if status == "unsolved" and progress.steps_to_success is not None:
        notes.append(f"the {spec.train.eval_split} metric met the criterion at step {progress.steps_to_success}, "
                     "the final test metric does not")
    if ctx.steps.grad_h0_norm is None:
        notes.append(NO_H0_NOTE)
    measured_fixed = "lambda1_fixed" in progress.diag
    if not measured_fixed:
        notes.append(f"*_fixed: the run ended at step {step}, before diag_at_step {fixed_step}")
    diag_fields = [f.name for f in dataclasses.fields(RunResult) if f.name.startswith(("lambda1", "spread", "grad"))]
    diag_fields = [f for f in diag_fields if f not in DIAGNOSTIC_COLUMNS]
    return RunResult(
        status=status,
        metric=progress.metric,
        success=status == "solved",
        steps_to_success=progress.steps_to_success,
        steps_trained=step,
        wall_time_s=round(progress.wall_time_s + member.spent_s, 3),
        note="; ".join(notes),
        val_metric=progress.val_metric,
        n_params=member.n_params,
        curve=progress.curve,
        **{k: progress.diag.get(k, math.nan) for k in diag_fields},
        diagnostics={k: progress.diag.get(k, math.nan) for k in DIAGNOSTIC_COLUMNS},
        diag_step=fixed_step if measured_fixed else None,
    )


def _stack(trees: Sequence[PyTree]) -> PyTree:
    """Members' pytrees stacked on a new leading axis (the group's)."""
    return jax.tree.map(lambda *xs: jnp.stack(xs), *trees)


def _take(state: PyTree, i: int) -> PyTree:
    """Member `i`'s slice of the group's state."""
    return jax.tree.map(lambda x: x[i], state)


def _put(state: PyTree, i: int, member_state: PyTree) -> PyTree:
    """The group's state with member `i`'s slice replaced (where its keys are)."""
    return {**state, **{k: jax.tree.map(lambda s, x: s.at[i].set(x), state[k], v) for k, v in member_state.items()}}


def _finite_members(losses: jax.Array, params: PyTree) -> np.ndarray:
    """Per member: whether its chunk's losses and its parameters are all finite."""
    per_leaf = [jnp.isfinite(x).reshape(x.shape[0], -1).all(axis=1) for x in jax.tree.leaves(params)]
    return np.asarray(jnp.stack([jnp.isfinite(losses).all(axis=1), *per_leaf]).all(axis=0))


def _share(members: Sequence[Member], seconds: float) -> None:
    """Split a chunk's wall time equally among the members it trained."""
    for member in members:
        member.spent_s += seconds / max(len(members), 1)


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
