"""One training step of every built-in architecture against a plain `lax.scan` of its `step`.

    .venv/bin/python benchmarks/arch_steps.py [--reps 10] [--only rnn,s6]

T = 300, batch 16, hidden size 64, one input and one output channel, mean squared error,
Adam, the whole step jitted. Per architecture:

- `default`: the model as `zoo.create_architecture` builds it (`model(x)`: the fused loop,
  the diagonal/gated loops with their hand-made VJPs, ... as the backend chooses);
- `plain`: the same parameters with the states from `RecurrentModel.scan_states`, i.e.
  `lax.scan(step)` differentiated by JAX;
- `parallel` (linear recurrences only): `parallel_scan = True`, the associative scan that
  accelerators take by default.

Timings are interleaved (default, plain, parallel, default, ...) and reported as medians in
milliseconds; ratio = plain / default (> 1: the default path is faster).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402
from flax import nnx  # noqa: E402

import zoo  # noqa: E402
from zoo.architectures.registry import ARCHITECTURES  # noqa: E402

T, BATCH, HIDDEN = 300, 16, 64
PARALLEL = {"lru", "complex_diagonal", "mingru", "minlstm", "rglru", "s6", "s5"}


def builtin() -> list[str]:
    return [n for n in zoo.list_architectures() if ARCHITECTURES.get(n).__module__.startswith("zoo.architectures")]


def make_step(name: str, variant: str):
    model = zoo.create_architecture(name, input_size=1, hidden_size=HIDDEN, output_size=1, rngs=nnx.Rngs(0))
    if variant == "parallel":
        model.parallel_scan = True
    optimizer = nnx.Optimizer(model, optax.adam(1e-3), wrt=nnx.Param)

    def forward(m, x):
        if variant == "plain":
            return m.output(m.scan_states(x), x)
        return m(x)

    @nnx.jit
    def step(model, optimizer, x, y):
        loss, grads = nnx.value_and_grad(lambda m: jnp.mean((forward(m, x) - y) ** 2))(model)
        optimizer.update(model, grads)
        return loss

    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.normal(size=(BATCH, T, 1)), jnp.float32)
    y = jnp.asarray(rng.normal(size=(BATCH, T, 1)), jnp.float32)

    def run() -> float:
        start = time.perf_counter()
        step(model, optimizer, x, y).block_until_ready()
        return time.perf_counter() - start

    run()  # compile
    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=10)
    parser.add_argument("--only", default="", help="comma-separated architecture names")
    args = parser.parse_args()
    names = args.only.split(",") if args.only else builtin()
    print(f"backend {jax.default_backend()}, T={T}, batch {BATCH}, hidden {HIDDEN}, "
          f"median of {args.reps}, load {os.getloadavg()[0]:.1f}")
    print("| arch | default ms | plain lax.scan ms | plain / default | parallel scan ms |")
    print("|---|---|---|---|---|")
    for name in names:
        variants = ["default", "plain"] + (["parallel"] if name in PARALLEL else [])
        runs = {v: make_step(name, v) for v in variants}
        times = {v: [] for v in variants}
        for _ in range(args.reps):
            for v in variants:
                times[v].append(runs[v]())
        ms = {v: 1e3 * statistics.median(t) for v, t in times.items()}
        parallel = f"{ms['parallel']:.1f}" if "parallel" in ms else "-"
        print(f"| {name} | {ms['default']:.1f} | {ms['plain']:.1f} | {ms['plain'] / ms['default']:.2f} | {parallel} |",
              flush=True)


if __name__ == "__main__":
    main()
