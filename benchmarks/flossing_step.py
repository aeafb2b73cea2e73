"""Time one flossing step of the reference setting: tanh RNN N = 80, k = 75, QR every step.

    OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/flossing_step.py [--rollouts 55,300]
    OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/flossing_step.py --qr-rules 32x32,80x75

Prints, per rollout length, the first call (compilation + `--steps` flossing steps) and
the best of `--repeats` timed calls per flossing step, wall and CPU time. LAPACK's QR
dominates; on a small shared machine OpenBLAS's own threads fight other processes, so
the line records `OPENBLAS_NUM_THREADS` and the load average.

`--qr-rules NxK,...` instead times what one flossing step differentiates (the loss of one
55-step rollout of the tanh RNN of N units, k exponents, and its gradient) with the QR's
hand-written VJP (`zoo.flossing.qr_log_growth`) against JAX's own QR rule, interleaved,
median CPU time per step (CPU time: the machine is shared), and what the QR alone costs
per rollout step: a scan of 55 steps `q <- qr(W q)` against the same scan with `tanh(W q)`.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
from flax import nnx  # noqa: E402

from zoo import create_architecture  # noqa: E402
from zoo import flossing  # noqa: E402
from zoo.flossing import FlossingConfig, floss, make_flossing_optimizer  # noqa: E402


def time_flossing_step(rollout: int, n_steps: int = 20, repeats: int = 3) -> str:
    """One line: the reference setting's flossing step at this rollout length."""
    config = FlossingConfig(rollout=rollout)
    model = create_architecture(
        "rnn", input_size=1, hidden_size=80, output_size=1, rngs=nnx.Rngs(0)
    )
    optimizer = make_flossing_optimizer(model, config)
    bits = jax.random.bernoulli(jax.random.key(0), 0.5, (n_steps, rollout, 1)).astype(jnp.float32)
    keys = jax.random.split(jax.random.key(1), n_steps)
    start = time.perf_counter()
    floss(model, optimizer, bits, keys, config).block_until_ready()
    first = time.perf_counter() - start
    wall, cpu = [], []
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        floss(model, optimizer, bits, keys, config).block_until_ready()
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return (
        f"rnn N=80 k=75 rollout={rollout} (warm-up {config.warmup}): first call (compile + "
        f"{n_steps} steps) {first:.1f} s; per flossing step "
        f"{1e3 * min(wall) / n_steps:.1f} ms wall, {1e3 * min(cpu) / n_steps:.1f} ms CPU  "
        f"[OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS', 'unset')}, "
        f"load {os.getloadavg()[0]:.1f}]"
    )


def _autodiff_qr_log_growth(a):
    q, r = jnp.linalg.qr(a)
    return q, jnp.log(jnp.abs(jnp.diagonal(r)))


def compare_qr_rules(n: int, k: int, repeats: int = 7, calls: int = 20) -> str:
    """One line: the gradient of one flossing rollout with each QR rule, interleaved."""
    model = create_architecture("rnn", input_size=1, hidden_size=n, output_size=1, rngs=nnx.Rngs(0))
    graphdef, state = nnx.split(model)
    x = jax.random.bernoulli(jax.random.key(0), 0.5, (55, 1)).astype(jnp.float32)
    written = flossing.qr_log_growth

    def step_with(rule):
        def loss(state, x, key):
            m = nnx.merge(graphdef, state)
            flossing.qr_log_growth = rule  # read when the spectrum is traced (once, below)
            try:
                lam = flossing.lyapunov_spectrum(m.transition, m.initial_state(), x, k=k, warmup=16, key=key)
            finally:
                flossing.qr_log_growth = written
            return flossing.flossing_loss(lam)

        return jax.jit(jax.value_and_grad(loss))

    steps = {"written VJP": step_with(written), "JAX's QR rule": step_with(_autodiff_qr_log_growth)}
    for f in steps.values():
        jax.block_until_ready(f(state, x, jax.random.key(1)))
    cpu = {name: [] for name in steps}
    for _ in range(repeats):
        for name, f in steps.items():
            start = time.process_time()
            for i in range(calls):
                jax.block_until_ready(f(state, x, jax.random.key(i)))
            cpu[name].append((time.process_time() - start) / calls)
    ms = {name: 1e3 * statistics.median(v) for name, v in cpu.items()}
    qr_us = _qr_cost_us(n, k, repeats, calls)
    ratio = ms["JAX's QR rule"] / ms["written VJP"]
    return (f"rnn N={n} k={k} rollout 55: value and gradient per flossing step, CPU ms: "
            + ", ".join(f"{name} {v:.2f}" for name, v in ms.items())
            + f"; JAX's rule / written {ratio:.2f}; per rollout step, CPU us: "
            + ", ".join(f"{name} {v:.1f}" for name, v in qr_us.items())
            + f"  [load {os.getloadavg()[0]:.1f}]")


def _qr_cost_us(n: int, k: int, repeats: int, calls: int) -> dict[str, float]:
    w = jax.random.normal(jax.random.key(0), (n, n)) / jnp.sqrt(n)
    q0 = jnp.linalg.qr(jax.random.normal(jax.random.key(1), (n, k)))[0]
    loops = {
        "matmul + tanh": lambda q: jax.lax.scan(lambda q, _: (jnp.tanh(w @ q), None), q, None, length=55)[0],
        "matmul + QR": lambda q: jax.lax.scan(lambda q, _: (jnp.linalg.qr(w @ q)[0], None), q, None, length=55)[0],
    }
    loops = {name: jax.jit(f) for name, f in loops.items()}
    for f in loops.values():
        jax.block_until_ready(f(q0))
    cpu = {name: [] for name in loops}
    for _ in range(repeats):
        for name, f in loops.items():
            start = time.process_time()
            for _ in range(calls):
                jax.block_until_ready(f(q0))
            cpu[name].append((time.process_time() - start) / calls / 55)
    return {name: 1e6 * statistics.median(v) for name, v in cpu.items()}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rollouts", default="55,300", help="comma-separated rollout lengths")
    parser.add_argument("--steps", type=int, default=20, help="flossing steps per timed call")
    parser.add_argument("--repeats", type=int, default=3, help="timed calls; the best is kept")
    parser.add_argument("--qr-rules", help="NxK,... : compare the two QR differentiation rules instead")
    args = parser.parse_args(argv)
    if args.qr_rules:
        for size in args.qr_rules.split(","):
            n, k = (int(v) for v in size.lower().split("x"))
            print(compare_qr_rules(n, k, args.repeats), flush=True)
        return
    for rollout in (int(r) for r in args.rollouts.split(",")):
        print(time_flossing_step(rollout, args.steps, args.repeats), flush=True)


if __name__ == "__main__":
    main()
