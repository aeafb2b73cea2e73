"""Side-by-side performance benchmark: ours against references, in one invocation.

    .venv/bin/python benchmarks/run.py [--quick] [--out benchmarks/results.md] [--only SECTIONS] [--archs lstm]

Sections (all by default; `--only train,scan` picks some; `--archs` narrows `train` and `scan`):

- `train`: training steps per second of `rnn`, `lstm`, `gru` as the harness runs them
  (`zoo.bench.steps.build_steps`: data sampled in the jitted chunk, per-array clipping
  at 0.03, Adam) against `torch.nn.RNN/LSTM/GRU` with the same optimiser, clipping, loss
  and batches (skipped with a note if torch is not installed). N = 80 and 256, T = 300,
  batch 16, delayed copy. The LSTM also runs its old path (the generic fused loop of
  `zoo.architectures.fused`, `Recurrence.loop = None`) in the same interleaving: before/after.
- `scan`: the same for `lru`, `complex_diagonal`, `linear` against the same model with
  the recurrence run as a plain `lax.scan` of its `step` (`RecurrentModel.scan_states`).
- `floss`: one flossing step against one training step (`floss_step`), the wall time of
  whole runs (`zoo.bench.train.train_run`) with `pre` and `pre+during` flossing against
  `none` (`floss_runs`), on the long_horizon suite's settings and on the flossing paper's
  schedule, and the wall time of a whole suite with and without `pre` (`floss_suite`).
- `sweep`: runs per hour of an 8-seed sweep with the harness's `--workers 2` process
  pool against one run at a time (`python -m zoo.bench`).
- `quick`: end-to-end wall time of `python -m zoo.bench --suite quick`, with a cold and a
  warm compilation cache (the difference is compile time).

Timings are interleaved (ours, reference, ours, reference, ...) and reported as
medians, so that other load on the machine affects both sides alike; each table records
the load average while it ran. Ratios are reference time / our time (> 1: we are faster).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
# As `python -m zoo.bench` does (zoo/bench/__main__.py): LAPACK's QR in flossing runs
# single-threaded; before numpy/scipy load OpenBLAS.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import warnings  # noqa: E402

warnings.filterwarnings("ignore", category=DeprecationWarning)
warnings.filterwarnings("ignore", category=FutureWarning)

import jax  # noqa: E402
import numpy as np  # noqa: E402
from flax import nnx  # noqa: E402

import tasks  # noqa: E402
import zoo  # noqa: E402
from zoo.bench import steps, train  # noqa: E402
from zoo.bench.preflossed import PREFLOSSED  # noqa: E402
from zoo.bench.spec import RunSpec, TrainSettings  # noqa: E402

try:
    import torch
except ImportError:  # the torch rows are skipped with a note
    torch = None


# ------------------------------------------------------------------------------ helpers


def load() -> float:
    return os.getloadavg()[0]


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def interleave(fns: dict[str, callable], repeats: int) -> dict[str, float]:
    """Median seconds per call of each function, called in turn (A B A B ...)."""
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {k: statistics.median(v) for k, v in times.items()}


@dataclasses.dataclass
class Table:
    title: str
    columns: list[str]
    rows: list[list[str]] = dataclasses.field(default_factory=list)
    notes: list[str] = dataclasses.field(default_factory=list)
    load: tuple[float, float] = (0.0, 0.0)

    def markdown(self) -> str:
        out = [f"### {self.title}", "",
               f"Load average (1 min) at start / end: {self.load[0]:.2f} / {self.load[1]:.2f}", ""]
        out.append("| " + " | ".join(self.columns) + " |")
        out.append("|" + "|".join("---" for _ in self.columns) + "|")
        out += ["| " + " | ".join(r) + " |" for r in self.rows]
        if self.notes:
            out.append("")
            out += [f"- {n}" for n in self.notes]
        return "\n".join(out) + "\n"


@contextlib.contextmanager
def table(title: str, columns: list[str]):
    t = Table(title, columns)
    start = load()
    print(f"\n== {title} (load {start:.2f})", flush=True)
    yield t
    t.load = (start, load())
    print(t.markdown(), flush=True)
    TABLES.append(t)
    write_results()  # after every table: a stopped run still leaves what it measured


def check(target: str, measured: str, met: bool) -> None:
    """Record one of the issue's targets against what was just measured."""
    CHECKS.append([target, measured, "met" if met else "**not met**"])


def targets_table() -> str:
    if not CHECKS:
        return ""
    lines = ["### Targets", "", "| target | measured | |", "|---|---|---|"]
    lines += ["| " + " | ".join(c) + " |" for c in CHECKS]
    return "\n".join(lines) + "\n"


def write_results() -> None:
    text = HEADER + "\n" + "\n".join([targets_table(), *(t.markdown() for t in TABLES)])
    ARGS.out.parent.mkdir(parents=True, exist_ok=True)
    ARGS.out.write_text(text)


TABLES: list[Table] = []
CHECKS: list[list[str]] = []


def fmt_ms(seconds: float) -> str:
    return f"{seconds * 1e3:.2f}"


# ------------------------------------------------------------------- training steps


def bit_task(seq_len: int = 300, batch: int = 16, horizon: int = 10):
    return tasks.create_task("delayed_copy", horizon=horizon, seq_len=seq_len, batch_size=batch)


class HarnessStep:
    """`n` training steps of the harness's jitted chunk for one model (ours)."""

    def __init__(self, model: nnx.Module, task, *, lr: float = 1e-3, clip: float = 0.03, n: int = 10):
        graphdef, params = nnx.split(model)
        tx = steps.make_optimizer(clip)
        self.steps = steps.build_steps(graphdef, task, tx)
        self.params = train.commit(params)
        self.opt_state = train.commit(steps.set_learning_rate(tx.init(params), lr))
        self.arrays = train.commit(task.arrays())
        self.key = train.commit(jax.random.key(0))
        self.n, self.start = n, 0

    def __call__(self) -> None:
        self.params, self.opt_state, losses = self.steps.train(
            self.params, self.opt_state, self.arrays, self.key, self.start, n=self.n
        )
        losses.block_until_ready()
        self.start += self.n


class TorchStep:
    """`n` training steps of torch.nn.{RNN,LSTM,GRU} + linear readout in a worker process.

    Adam, per-array clipping and masked BCE, as ours, on the task's own batches (precomputed:
    torch gets its data for free). The worker is a separate process so that the two
    frameworks' thread pools never compete; calls still alternate with ours.
    """

    def __init__(self, arch: str, hidden: int, task, *, threads: int, passive: bool, lr: float = 1e-3,
                 clip: float = 0.03, n: int = 10):
        import multiprocessing as mp

        arrays = task.arrays()
        batches = []
        for i in range(8):
            b = task.sample(arrays, jax.random.fold_in(jax.random.key(0), i))
            batches.append(tuple(np.asarray(a) for a in (b.inputs, b.targets, b.mask)))
        self.conn, child = mp.get_context("spawn").Pipe()
        # OpenMP reads its wait policy when the worker starts. Its default (spin a while, then
        # sleep) is fastest on a quiet machine and slow on a loaded one (1 s per step instead
        # of 50 ms), PASSIVE the reverse; both are measured and torch's best is the reference.
        # (ACTIVE is not: its threads spin forever, also while our side is being timed.)
        saved = os.environ.pop("OMP_WAIT_POLICY", None)
        if passive:
            os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
        try:
            self.proc = mp.get_context("spawn").Process(
                target=_torch_worker,
                args=(child, arch, hidden, task.input_size, task.output_size, lr, clip, n, batches, threads),
                daemon=True,
            )
            self.proc.start()
        finally:
            os.environ.pop("OMP_WAIT_POLICY", None)
            if saved is not None:
                os.environ["OMP_WAIT_POLICY"] = saved
        self.conn.recv()  # ready

    def __call__(self) -> None:
        self.conn.send("run")
        self.conn.recv()

    def close(self) -> None:
        self.conn.send("stop")
        self.proc.join(10)


def _torch_worker(conn, arch, hidden, input_size, output_size, lr, clip, n, batches, threads) -> None:
    import torch

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    cls = {"rnn": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[arch]
    rnn = cls(input_size, hidden, batch_first=True)
    readout = torch.nn.Linear(hidden, output_size)
    params = list(rnn.parameters()) + list(readout.parameters())
    opt = torch.optim.Adam(params, lr=lr)
    data = [tuple(torch.from_numpy(a) for a in b) for b in batches]
    i = 0

    def step():
        nonlocal i
        x, y, mask = data[i % len(data)]
        i += 1
        opt.zero_grad(set_to_none=True)
        out, _ = rnn(x)
        logits = readout(out)[..., 0]
        bce = torch.nn.functional.binary_cross_entropy_with_logits(logits, y[..., 0], reduction="none")
        loss = (bce * mask).sum() / mask.sum().clamp(min=1.0)
        loss.backward()
        for p in params:  # per-array clipping, as the harness does
            torch.nn.utils.clip_grad_norm_([p], clip)
        opt.step()

    conn.send("ready")
    while conn.recv() == "run":
        for _ in range(n):
            step()
        conn.send("done")


def make_model(arch: str, hidden: int, task, seed: int = 0, plain: bool = False, generic: bool = False) -> nnx.Module:
    model = zoo.create_architecture(
        arch, input_size=task.input_size, hidden_size=hidden, output_size=task.output_size, rngs=nnx.Rngs(seed)
    )
    if generic:  # the same parameters, the recurrence on the generic fused loop instead of its own `loop`
        base = type(model)
        recurrence = lambda self: base.recurrence(self)._replace(loop=None)  # noqa: E731
        model.__class__ = type(base.__name__ + "GenericLoop", (base,), {"recurrence": recurrence})
    if plain:  # the same parameters, the recurrence as a plain lax.scan of `step`
        base = type(model)
        plain_cls = type(base.__name__ + "PlainScan", (base,),
                         {"fused_scan": False, "states": zoo.RecurrentModel.scan_states})
        model.__class__ = plain_cls
    return model


TORCH_SETTINGS = {"1 thread": (1, False), "2 threads": (2, False), "2 threads, passive": (2, True)}


def bench_train(args) -> None:
    sizes = (80,) if args.quick else (80, 256)
    threads = os.cpu_count() or 1
    settings = {k: v for k, v in TORCH_SETTINGS.items() if v[0] <= threads}
    cols = ["arch", "N", "ours ms/step", "torch ms/step (best)", "torch setting", "ours steps/s", "torch steps/s",
            "torch / ours"]
    with table("Training step vs PyTorch (T = 300, batch 16, Adam, per-array clip 0.03)", cols) as t:
        if torch is None:
            t.notes.append("torch is not installed: torch rows skipped (pip install torch==2.13.0 for CPU).")
        else:
            t.notes.append(f"torch {torch.__version__}, each setting in its own worker process, interleaved with ours; "
                           f"the reference is torch's fastest of: {', '.join(settings)} (OpenMP's default wait "
                           "policy unless passive). nn.RNN is tanh(W_ih x + W_hh h + b), ours W tanh(h) + V x + b "
                           "(same cost).")
        t.notes.append("Ours: the harness's jitted training chunk (data sampled inside it); "
                       "torch gets precomputed batches.")
        task = bit_task()
        for n_hidden in sizes:
            n = 10 if n_hidden <= 80 else 3
            for arch in archs(args, ("rnn", "lstm", "gru")):
                fns = {"ours": HarnessStep(make_model(arch, n_hidden, task), task, n=n)}
                if make_model(arch, 2, task).recurrence().loop is not None:  # before/after, side by side
                    fns["ours, generic loop"] = HarnessStep(make_model(arch, n_hidden, task, generic=True), task, n=n)
                if torch is not None:
                    for name, (th, passive) in settings.items():
                        fns[name] = TorchStep(arch, n_hidden, task, threads=th, passive=passive, n=n)
                for f in fns.values():
                    f()  # compile / warm up
                res = interleave(fns, args.repeats)
                ours = res.pop("ours") / n
                generic = res.pop("ours, generic loop", None)
                for name in res:
                    fns[name].close()
                if generic is not None:
                    generic /= n
                    t.notes.append(f"`{arch}` N = {n_hidden}, before (generic fused loop, same interleaving): "
                                   f"{fmt_ms(generic)} ms/step"
                                   + (f", torch / before {res[min(res, key=res.get)] / n / generic:.2f}" if res else "")
                                   + f"; before / after {generic / ours:.2f}.")
                if res:
                    best = min(res, key=res.get)
                    ref = res[best] / n
                    t.rows.append([arch, str(n_hidden), fmt_ms(ours), fmt_ms(ref), best, f"{1 / ours:.1f}",
                                   f"{1 / ref:.1f}", f"**{ref / ours:.2f}**"])
                    goal = 1.5 if n_hidden <= 80 else 1.0
                    check(f"`{arch}` training step at N = {n_hidden} >= {goal}x torch", f"{ref / ours:.2f}x",
                          ref / ours >= goal)
                    print("  all torch settings: " + ", ".join(f"{k} {fmt_ms(v / n)}" for k, v in res.items()),
                          flush=True)
                else:
                    t.rows.append([arch, str(n_hidden), fmt_ms(ours), "-", "-", f"{1 / ours:.1f}", "-", "-"])
                print("  " + " | ".join(t.rows[-1]), flush=True)


def archs(args, default: tuple[str, ...]) -> tuple[str, ...]:
    """The section's architectures, narrowed by `--archs`."""
    return tuple(a for a in default if not args.archs or a in args.archs.split(","))


def bench_scan(args) -> None:
    sizes = (80,) if args.quick else (80, 256)
    cols = ["arch", "N", "ours ms/step", "plain lax.scan ms/step", "scan / ours"]
    with table("Training step vs the same recurrence as a plain lax.scan (T = 300, batch 16)", cols) as t:
        t.notes.append("Both sides are the harness's training chunk on the same model and parameters; "
                       "the reference runs `RecurrentModel.scan_states` (a lax.scan of `step`, vmapped over the "
                       "batch).")
        task = bit_task()
        for n_hidden in sizes:
            n = 10 if n_hidden <= 80 else 3
            for arch in archs(args, ("lru", "complex_diagonal", "linear", "rnn", "lstm", "gru")):
                fns = {
                    "ours": HarnessStep(make_model(arch, n_hidden, task), task, n=n),
                    "scan": HarnessStep(make_model(arch, n_hidden, task, plain=True), task, n=n),
                }
                for f in fns.values():
                    f()
                res = interleave(fns, args.repeats)
                ours, ref = res["ours"] / n, res["scan"] / n
                t.rows.append([arch, str(n_hidden), fmt_ms(ours), fmt_ms(ref), f"**{ref / ours:.2f}**"])
                print("  " + " | ".join(t.rows[-1]), flush=True)


# ------------------------------------------------------------------------ flossing


LONG_HORIZON_FLOSS = dict(k=16, rollout=55, warmup=16, pre_steps=100, during_steps=50, during_every=200, during_times=2)
PAPER_FLOSS = dict(k=75, rollout=55, warmup=16, pre_steps=500, during_steps=500, during_every=100, during_times=2)


def run_spec(arch: str, mode: str, floss: dict, *, hidden: int, steps: int, seq_len: int, seed: int = 0) -> RunSpec:
    return RunSpec(
        suite="bench", arch=arch, task="delayed_copy", horizon=40, flossing=mode, seed=seed,
        train=TrainSettings(hidden_size=hidden, steps=steps, lr=3e-3, eval_every=100, clip=0.03, checkpoint_every=2),
        # success_threshold 1.0: no run stops early, so every mode trains the same number of steps.
        task_options=(("seq_len", seq_len), ("success_threshold", 1.0)),
        flossing_options=tuple(sorted(floss.items())),
    )


def timed_run(spec: RunSpec) -> float:
    PREFLOSSED.clear()  # no shared pre-flossed starting point: every run flosses
    with tempfile.TemporaryDirectory() as d:
        start = time.perf_counter()
        result = train.train_run(spec, Path(d) / "run")
        wall = time.perf_counter() - start
    assert result.steps_trained == spec.train.steps, result
    return wall


def bench_floss(args) -> None:
    bench_floss_step(args)
    bench_floss_runs(args)
    bench_floss_suite(args)


def bench_floss_step(args) -> None:
    from zoo import flossing

    cols = ["setting", "one training step ms", "one flossing step ms", "flossing / training step"]
    with table("One flossing step vs one training step", cols) as t:
        for label, hidden, seq_len, floss in (
            ("long_horizon (N = 32, T = 100, k = 16, rollout 55)", 32, 100, LONG_HORIZON_FLOSS),
            ("paper (N = 80, T = 300, k = 75, rollout 55)", 80, 300, PAPER_FLOSS),
        ):
            task = bit_task(seq_len=seq_len)
            model = make_model("rnn", hidden, task)
            n = 20
            step = HarnessStep(model, task, lr=3e-3, n=n)
            cfg = flossing.FlossingConfig(**floss).for_state_size(model.state_size)
            fmodel = make_model("rnn", hidden, task)
            opt = flossing.make_flossing_optimizer(fmodel, cfg)
            inputs, keys = flossing.flossing_inputs(task, task.arrays(), jax.random.key(1), n, cfg)

            def floss_n():
                flossing.floss(fmodel, opt, inputs, keys, cfg).block_until_ready()

            fns = {"train": step, "floss": floss_n}
            for f in fns.values():
                f()
            res = interleave(fns, args.repeats)
            tr, fl = res["train"] / n, res["floss"] / n
            t.rows.append([label, fmt_ms(tr), fmt_ms(fl), f"{fl / tr:.2f}"])
            print("  " + " | ".join(t.rows[-1]), flush=True)


def bench_floss_runs(args) -> None:
    cols = ["arch", "schedule", "steps", "none s", "pre s", "pre+during s", "pre overhead", "pre+during overhead"]
    with table("Whole-run overhead of flossing (train_run wall time, checkpoints included)", cols) as t:
        t.notes.append("delayed_copy h = 40, success threshold 1.0 so that no run stops early; "
                       "each run flosses from scratch (no shared pre-flossed cache). Medians of interleaved runs.")
        settings = [("long_horizon", LONG_HORIZON_FLOSS, 32, 600, 100, ("rnn",) if args.quick else ("rnn", "gru"))]
        if not args.quick:  # minutes per run: rnn only, one timed repeat
            settings.append(("paper (N=80, T=300, k=75, 500 pre, 2x500 during)", PAPER_FLOSS, 80, 300, 300, ("rnn",)))
        for label, floss, hidden, steps, seq_len, archs in settings:
            repeats = 1 if floss is PAPER_FLOSS else max(1, args.repeats // 2)
            for arch in archs:
                specs = {m: run_spec(arch, m, floss, hidden=hidden, steps=steps, seq_len=seq_len)
                         for m in ("none", "pre", "pre+during")}
                for s in specs.values():
                    timed_run(s)  # compile
                walls: dict[str, list[float]] = {m: [] for m in specs}
                for _ in range(repeats):
                    for m, s in specs.items():
                        walls[m].append(timed_run(s))
                w = {m: statistics.median(v) for m, v in walls.items()}
                t.rows.append([arch, label, str(steps), f"{w['none']:.2f}", f"{w['pre']:.2f}", f"{w['pre+during']:.2f}",
                               f"**{100 * (w['pre'] / w['none'] - 1):+.0f}%**",
                               f"{100 * (w['pre+during'] / w['none'] - 1):+.0f}%"])
                print("  " + " | ".join(t.rows[-1]), flush=True)


def bench_floss_suite(args) -> None:
    cols = ["schedule", "runs", "none s", "pre s", "pre overhead"]
    with table("Suite-level overhead of `pre` (python -m zoo.bench; pre-flossed starting points shared)", cols) as t:
        t.notes.append("long_horizon's bit tasks at its sizes: rnn, N = 32, T = 100, 600 steps, delayed_copy h in "
                       "{10, 40} and delayed_xor h in {8, 32}, 2 seeds; success threshold 1.0 so that no run stops "
                       "early. A seed's pre-flossed starting point serves its 4 runs (same architecture and input "
                       "statistics). Wall time of the whole command with a warm compilation cache.")
        for label, floss in (("long_horizon (k = 16, 100 pre steps)", LONG_HORIZON_FLOSS),
                             ("paper (k = 75 -> 32, 500 pre steps)", PAPER_FLOSS)):
            with tempfile.TemporaryDirectory() as d:
                d = Path(d)
                commands = {}
                for mode in ("none", "pre"):
                    suite = d / f"{mode}.toml"
                    suite.write_text(SUITE_FLOSS_TOML.format(
                        mode=mode, floss="\n".join(f"{k} = {v}" for k, v in floss.items())))
                    cli(["--suite", str(suite), "--seeds", "1"], d / "cache", d / f"warm-{mode}")
                    commands[mode] = ["--suite", str(suite)]
                walls = cli_walls(commands, d / "cache", d, max(1, args.repeats // 3))
                over = walls["pre"] / walls["none"] - 1
                t.rows.append([label, "8", f"{walls['none']:.1f}", f"{walls['pre']:.1f}", f"**{100 * over:+.0f}%**"])
                check(f"`pre` adds <= 25% to a long_horizon suite, {label} schedule", f"{100 * over:+.0f}%",
                      over <= 0.25)
                print("  " + " | ".join(t.rows[-1]), flush=True)


SUITE_FLOSS_TOML = """
description = "benchmark: flossing overhead in a suite"
seeds = 2
archs = ["rnn"]
flossing = ["{mode}"]

[defaults]
hidden_size = 32
steps = 600
eval_every = 100
lr = 3e-3
clip = 0.03
checkpoint_every = 2

[flossing_config]
{floss}

[[experiments]]
task = "delayed_copy"
horizons = [10, 40]
options = {{ seq_len = 100, success_threshold = 1.0 }}

[[experiments]]
task = "delayed_xor"
horizons = [8, 32]
options = {{ seq_len = 100, success_threshold = 1.0 }}
"""


# --------------------------------------------------------------------------- sweeps


SWEEP_TOML = """
description = "benchmark sweep"
seeds = {seeds}
archs = ["{arch}"]
flossing = ["none"]

[defaults]
hidden_size = {hidden}
steps = {steps}
eval_every = 100
lr = 3e-3
clip = 0.03
checkpoint_every = 2

[[experiments]]
task = "delayed_copy"
horizons = [40]
options = {{ seq_len = {seq_len}, success_threshold = 1.0 }}
"""


def cli(args: list[str], cache: Path, out: Path) -> float:
    env = {**os.environ, "ZOO_COMPILATION_CACHE": str(cache)}
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "zoo.bench", *args, "--out", str(out)], cwd=ROOT, env=env,
                          capture_output=True, text=True)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"zoo.bench {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    return wall


def cli_walls(commands: dict[str, list[str]], cache: Path, tmp: Path, repeats: int) -> dict[str, float]:
    """Median wall time of each command, run in turn (A B A B ...), each into a fresh --out."""
    walls: dict[str, list[float]] = {name: [] for name in commands}
    for r in range(repeats):
        for name, args in commands.items():
            out = tmp / f"{name}{r}"
            walls[name].append(cli([*args, "--no-checkpoints"], cache, out))
            shutil.rmtree(out, ignore_errors=True)
    return {name: statistics.median(v) for name, v in walls.items()}


SWEEPS = {  # label: (hidden, seq_len, steps)
    "long_horizon sizes (N = 32, T = 100, 600 steps)": (32, 100, 600),
    "paper sizes (N = 80, T = 300, 500 steps)": (80, 300, 500),
}


def bench_sweep(args) -> None:
    seeds = 8
    sweeps = dict(list(SWEEPS.items())[:1]) if args.quick else SWEEPS
    cols = ["runs", "one at a time s", "--workers 2 s", "runs/h one at a time", "runs/h --workers 2", "speed-up"]
    with table(f"Sweep of {seeds} seeds (python -m zoo.bench, warm compilation cache)", cols) as t:
        t.notes.append("rnn, delayed_copy h = 40, success threshold 1.0 (no early stop); wall time of the whole "
                       "command, process start-up and worker start-up included.")
        t.notes.append("Strategy on CPU: one process per core (`--workers`). jax.vmap over seeds is not used: "
                       "DESIGN.md measured it at 0.67x a loop on this CPU.")
        for label, (hidden, seq_len, steps) in sweeps.items():
            with tempfile.TemporaryDirectory() as d:
                d = Path(d)
                suite = d / "sweep.toml"
                suite.write_text(SWEEP_TOML.format(seeds=seeds, arch="rnn", steps=steps, hidden=hidden,
                                                   seq_len=seq_len))
                cli(["--suite", str(suite), "--seeds", "1"], d / "cache", d / "warm")  # fill the compilation cache
                walls = cli_walls({"seq": ["--suite", str(suite)], "par": ["--suite", str(suite), "--workers", "2"]},
                                  d / "cache", d, max(1, args.repeats // 3))
                seq, par = walls["seq"], walls["par"]
                t.rows.append([f"{seeds} runs, {label}", f"{seq:.1f}", f"{par:.1f}", f"{3600 * seeds / seq:.0f}",
                               f"{3600 * seeds / par:.0f}", f"**{seq / par:.2f}**"])
                check(f"8-seed sweep >= 1.8x one run at a time, {label}", f"{seq / par:.2f}x", seq / par >= 1.8)
                print("  " + " | ".join(t.rows[-1]), flush=True)
        if jax.default_backend() == "cpu":
            CHECKS.append(["64-seed sweep on a GPU >= 20x one at a time", "not measured: no GPU on this machine", "-"])


def bench_quick_suite(args) -> None:
    cols = ["run", "wall s"]
    with table("End-to-end: python -m zoo.bench --suite quick", cols) as t:
        with tempfile.TemporaryDirectory() as d:
            d = Path(d)
            cold = cli(["--suite", "quick"], d / "cache", d / "out1")
            warm = cli(["--suite", "quick"], d / "cache", d / "out2")
            t.rows.append(["cold compilation cache (first run of every shape)", f"{cold:.1f}"])
            t.rows.append(["warm compilation cache (same command again, new --out)", f"{warm:.1f}"])
            t.rows.append(["difference: compilation", f"{cold - warm:.1f}"])
            check("quick suite (3 horizons per task) with a cold compilation cache < 3 min", f"{cold:.0f} s",
                  cold < 180)
            t.notes.append("Cold: ZOO_COMPILATION_CACHE pointed at an empty folder. "
                           "sMNIST/psMNIST rows are skipped without the data.")


# ------------------------------------------------------------------------------ main


SECTIONS = {"train": bench_train, "scan": bench_scan, "floss": bench_floss, "sweep": bench_sweep,
            "quick": bench_quick_suite}
# Narrower parts of `floss`, for `--only`.
PARTS = {"floss_step": bench_floss_step, "floss_runs": bench_floss_runs, "floss_suite": bench_floss_suite}


def header() -> str:
    versions = (f"jax {jax.__version__}, jaxlib {jax.lib.__version__ if hasattr(jax.lib, '__version__') else '?'}, "
                f"flax {nnx.__name__ and __import__('flax').__version__}")
    versions += f", torch {torch.__version__}" if torch is not None else ", torch not installed"
    return "\n".join([
        "# Performance: ours against references, side by side",
        "",
        (f"Generated by `benchmarks/run.py{' --quick' if ARGS.quick else ''}` on "
         f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}."),
        "",
        (f"- Machine: {cpu_model()}, {os.cpu_count()} cores, {platform.system()} {platform.release()}, "
         f"Python {platform.python_version()}"),
        f"- Versions: {versions}; JAX backend {jax.default_backend()}",
        f"- Load average at start (1/5/15 min): {' / '.join(f'{x:.2f}' for x in os.getloadavg())}",
        (f"- Repeats per measurement: {ARGS.repeats} (interleaved; medians). "
         "Ratios: reference time / our time, > 1 means we are faster."),
        "",
    ])


def main(argv=None) -> int:
    global ARGS
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="fewer sizes and repeats (a few minutes)")
    p.add_argument("--repeats", type=int, help="interleaved repeats per measurement (default 7, --quick 3)")
    p.add_argument("--only", help=f"comma-separated sections: {', '.join(SECTIONS)} (or parts: {', '.join(PARTS)})")
    p.add_argument("--archs", help="comma-separated architectures for `train` and `scan` (default: all of theirs)")
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results.md")
    ARGS = p.parse_args(argv)
    if ARGS.repeats is None:
        ARGS.repeats = 3 if ARGS.quick else 7
    chosen = ARGS.only.split(",") if ARGS.only else list(SECTIONS)
    unknown = [c for c in chosen if c not in SECTIONS and c not in PARTS]
    if unknown:
        p.error(f"unknown section(s) {', '.join(unknown)}; allowed: {', '.join([*SECTIONS, *PARTS])}")
    global HEADER
    HEADER = header()
    print(HEADER, flush=True)
    for name in chosen:
        {**SECTIONS, **PARTS}[name](ARGS)
    write_results()
    print(f"written: {ARGS.out}")
    return 0


ARGS: argparse.Namespace
HEADER = ""


if __name__ == "__main__":
    sys.exit(main())
