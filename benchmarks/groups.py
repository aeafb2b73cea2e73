"""Vectorised run groups against one run at a time (issue 19), side by side, as ratios.

    .venv/bin/python benchmarks/groups.py [--sizes 2,4,8] [--archs rnn] [--shapes long_horizon,paper]
    .venv/bin/python benchmarks/groups.py --gpu            # 64 seeds at the flossing paper's sizes
    .venv/bin/python benchmarks/groups.py --gpu --tiny     # the same at tiny sizes (the CPU smoke test)

For each (architecture, shape, N): N seeds of one compiled shape train one chunk of `--chunk`
steps as one `jax.vmap`ped program (`Steps.train_group`, what `--group N` runs), against the
same N runs one after another (`Steps.train`, what `--group 1` runs). Ratio = one at a time /
group (> 1: the group is faster). Compilation is left out (a warm-up call of each side), the
two sides alternate, and the medians over `--reps` are reported, so that other load on a
shared machine affects both alike; the table says the load average at the start.

Shapes: `long_horizon` (hidden 32, T 100, batch 16: the suite's) and `paper` (hidden 80,
T 300, batch 16: the flossing paper's), delayed copy, Adam, per-array clipping 0.03.
`--gpu` measures 64 seeds at the paper's sizes (the issue's target there: >= 20x); it runs
anywhere, on whatever backend jax has.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import warnings  # noqa: E402

warnings.filterwarnings("ignore", category=DeprecationWarning)
warnings.filterwarnings("ignore", category=FutureWarning)

import jax  # noqa: E402
from flax import nnx  # noqa: E402

import tasks  # noqa: E402
from zoo.architectures.stack import create_model  # noqa: E402
from zoo.bench import steps as bench_steps  # noqa: E402
from zoo.bench.train import _stack, commit  # noqa: E402

SHAPES = {  # name: (hidden size, sequence length, batch size)
    "long_horizon": (32, 100, 16),
    "paper": (80, 300, 16),
    "hidden64": (64, 100, 16),
    "tiny": (8, 20, 4),
}


class Side:
    """N runs of one shape: their states, and one chunk trained as a group or one at a time."""

    def __init__(self, arch: str, shape: str, n: int, chunk: int, plain: bool = False) -> None:
        hidden, seq_len, batch = SHAPES[shape]
        self.task = tasks.create_task("delayed_copy", horizon=seq_len // 4, seq_len=seq_len, batch_size=batch)
        models = [create_model(arch, input_size=1, hidden_size=hidden, output_size=1, rngs=nnx.Rngs(s))
                  for s in range(n)]
        for model in models if plain else ():
            model.fused_scan = False  # the plain lax.scan of the step (zoo.architectures.base)
        graphdef = nnx.split(models[0])[0]
        tx = bench_steps.make_optimizer(0.03)
        self.steps = bench_steps.build_steps(graphdef, self.task, tx)
        params = [nnx.split(m)[1] for m in models]
        opt = [bench_steps.set_learning_rate(tx.init(p), 1e-3) for p in params]
        arrays = self.task.arrays()
        keys = [jax.random.key(s) for s in range(n)]
        self.alone = [commit(x) for x in zip(params, opt, [arrays] * n, keys)]
        self.group = commit((_stack(params), _stack(opt), _stack([arrays] * n), _stack(keys)))
        self.active = commit(jax.numpy.ones(n, bool))
        self.n, self.chunk, self.start = n, chunk, 0

    def one_at_a_time(self) -> float:
        clock = time.perf_counter()
        for i, (p, o, a, k) in enumerate(self.alone):
            p, o, losses = self.steps.train(p, o, a, k, self.start, n=self.chunk)
            losses.block_until_ready()
            self.alone[i] = (p, o, a, k)
        self.start += self.chunk
        return time.perf_counter() - clock

    def grouped(self) -> float:
        clock = time.perf_counter()
        p, o, a, k = self.group
        p, o, losses = self.steps.train_group(p, o, a, k, self.start, self.active, n=self.chunk)
        losses.block_until_ready()
        self.group = (p, o, a, k)
        self.start += self.chunk
        return time.perf_counter() - clock


def measure(arch: str, shape: str, n: int, chunk: int, reps: int, plain: bool = False) -> tuple[float, float]:
    """Median seconds per chunk of all N runs: one at a time, and as one group."""
    side = Side(arch, shape, n, chunk, plain)
    side.one_at_a_time(), side.grouped()  # compile both
    alone, grouped = [], []
    for _ in range(reps):
        alone.append(side.one_at_a_time())
        grouped.append(side.grouped())
    return statistics.median(alone), statistics.median(grouped)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", default="2,4,8", help="runs per group, comma-separated")
    p.add_argument("--archs", default="rnn", help="architectures, comma-separated")
    p.add_argument("--shapes", default="long_horizon,paper", help=f"of {', '.join(SHAPES)}")
    p.add_argument("--chunk", type=int, default=50, help="training steps per chunk (an evaluation's worth)")
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--gpu", action="store_true", help="64 seeds at the paper's sizes (the GPU measurement)")
    p.add_argument("--tiny", action="store_true", help="tiny sizes: checks that the benchmark runs")
    p.add_argument("--plain", action="store_true", help="the architectures' plain lax.scan, not their fused path")
    args = p.parse_args(argv)
    sizes, archs, shapes = [int(s) for s in args.sizes.split(",")], args.archs.split(","), args.shapes.split(",")
    chunk, reps = args.chunk, args.reps
    if args.gpu:
        sizes, shapes = [64], ["paper"]
    if args.tiny:
        sizes, shapes, chunk, reps = [4] if args.gpu else [2], ["tiny"], 5, 2
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"backend {jax.default_backend()} ({jax.devices()[0].device_kind}), {os.cpu_count()} CPUs, "
          f"load average (1 min) at start {load:.2f}; chunk {chunk} steps, median of {reps}"
          + ("; plain lax.scan" if args.plain else ""))
    print()
    print("| arch | shape (hidden, T, batch) | N | one at a time s | group s | ratio |")
    print("|---|---|---|---|---|---|")
    for arch in archs:
        for shape in shapes:
            for n in sizes:
                alone, grouped = measure(arch, shape, n, chunk, reps, args.plain)
                print(f"| {arch} | {shape} {SHAPES[shape]} | {n} | {alone:.3f} | {grouped:.3f} | "
                      f"{alone / grouped:.2f}x |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
