"""Issue 16 in the suite format: the run's seed reaches the task, the cosine schedule, named
variants of one architecture, per-architecture flossing doses, and the shipped suites."""

from __future__ import annotations


import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import tasks
from zoo.bench.errors import ConfigError
from zoo.bench.record import COLUMNS, DIAGNOSTIC_COLUMNS, RunResult, make_row
from zoo.bench.spec import RunSpec, TrainSettings, build_model, build_task
from zoo.bench.steps import clip_per_array, make_optimizer, set_learning_rate
from zoo.bench.suite import load_suite, parse_suite
from zoo.bench.train import flossing_config

# --------------------------------------------------------------------------- the run's seed


def _paper_eigenvalues(seed: int, nu0: float, hidden: int = 10) -> np.ndarray:
    """Zucchet & Orvieto's teacher from seed `seed`: G ~ N(0, 1/hidden) from the seed's first
    draw, each eigenvalue l of G moved to (nu0 + (1 - nu0) tanh|l|) e^{i arg l}."""
    g = np.random.default_rng(seed).standard_normal((hidden, hidden)) / np.sqrt(hidden)
    lam = np.linalg.eigvals(g)
    return (nu0 + (1 - nu0) * np.tanh(np.abs(lam))) * np.exp(1j * np.angle(lam))


def _sorted(z):
    return z[np.lexsort((np.round(z.imag, 6), np.round(z.real, 6)))]


TEACHER_SUITE = {
    "seeds": 3, "archs": ["linear"], "defaults": {"hidden_size": 4, "steps": 10, "eval_every": 5},
    "experiments": [{"task": "teacher_student", "horizons": [10.0],
                     "options": {"teacher_seed": "run", "seq_len": 20, "batch_size": 4}}],
}


def test_the_run_seed_picks_the_teacher():
    runs = parse_suite(TEACHER_SUITE, name="t").runs  # validation builds the task with a placeholder seed
    assert [r.seed for r in runs] == [0, 1, 2]
    for spec in runs:
        a = build_task(spec).teacher["A"]
        np.testing.assert_allclose(_sorted(np.linalg.eigvals(a)), _sorted(_paper_eigenvalues(spec.seed, 0.9)),
                                   atol=1e-8)
    # Tasks that take no run_seed ignore it.
    copy = RunSpec(suite="t", arch="rnn", task="delayed_copy", horizon=3, flossing="none", seed=5,
                   train=TrainSettings(), task_options=(("seq_len", 10),))
    assert build_task(copy).horizon == 3


def test_teacher_seed_run_is_refused_without_a_seed_by_the_task_not_the_suite():
    with pytest.raises(tasks.TaskConfigError, match="run_seed"):
        tasks.create_task("teacher_student", horizon=10.0, teacher_seed="run")


# --------------------------------------------------------------------------- the cosine schedule


def _updates(tx, lr, grads, n, set_lr=True):
    params = {"w": jnp.zeros(3)}
    state = tx.init(params)
    if set_lr:
        state = set_learning_rate(state, lr)
    out = []
    for g in grads[:n]:
        u, state = tx.update({"w": g}, state, params)
        out.append(np.asarray(u["w"]))
    return np.array(out)


@pytest.mark.parametrize("clip", [0.0, 0.5])
def test_cosine_schedule_is_optax_cosine_decay_with_the_injected_rate(clip):
    steps, lr = 10, 3e-2
    grads = np.random.default_rng(0).standard_normal((steps, 3)).astype(np.float32)
    ours = _updates(make_optimizer(clip, "cosine", steps), lr, grads, steps)
    schedule = optax.cosine_decay_schedule(lr, steps)
    for ref_tx, rtol in ((optax.inject_hyperparams(optax.adam)(learning_rate=schedule), 1e-6),
                         (optax.adam(schedule), 1e-4)):  # float32 bias corrections round differently
        if clip:
            ref_tx = optax.chain(clip_per_array(clip), ref_tx)
        ref = _updates(ref_tx, lr, grads, steps, set_lr=False)
        np.testing.assert_allclose(ours, ref, rtol=rtol, atol=1e-9)
    # The textbook values: a constant gradient gives Adam a unit step, scaled by
    # lr (1 + cos(pi t / T)) / 2 at step t.
    const = np.ones((steps, 3), np.float32)
    u = _updates(make_optimizer(0.0, "cosine", steps), lr, const, steps)[:, 0]
    t = np.arange(steps)
    np.testing.assert_allclose(-u, lr * 0.5 * (1 + np.cos(np.pi * t / steps)), rtol=1e-5)


def test_rates_share_one_compilation_under_the_cosine_schedule():
    tx = make_optimizer(0.0, "cosine", 8)
    traces = []

    @jax.jit
    def step(state, g):
        traces.append(1)
        return tx.update({"w": g}, state, {"w": jnp.zeros(2)})

    outs = []
    for lr in (1e-3, 1e-1):
        state = set_learning_rate(tx.init({"w": jnp.zeros(2)}), lr)
        outs.append(float(step(state, jnp.ones(2))[0]["w"][0]))
    assert len(traces) == 1
    assert outs[1] / outs[0] == pytest.approx(100, rel=1e-4)


def test_schedule_and_diag_at_step_are_checked():
    with pytest.raises(ConfigError, match=r"t.defaults: TrainSettings.schedule must be one of 'constant', 'cosine'"):
        parse_suite({**TEACHER_SUITE, "defaults": {"schedule": "linear"}}, name="t", validate_models=False)
    with pytest.raises(ConfigError, match=r"diag_at_step must be in \[0, steps = 10\]"):
        parse_suite({**TEACHER_SUITE, "defaults": {"steps": 10, "diag_at_step": 11}}, name="t",
                    validate_models=False)


# --------------------------------------------------------------------------- named variants


LADDER = {
    "seeds": 1, "flossing": ["none"],
    "archs": {"linear": {}, "complex_diagonal": {}, "lru_exp": {"arch": "lru", "gamma": "none"}, "lru": {}},
    "defaults": {"hidden_size": 4, "steps": 10, "eval_every": 5},
    "experiments": [{"task": "teacher_student", "horizons": [10.0], "options": {"seq_len": 20}}],
}


def test_a_variant_is_its_own_row_built_as_its_architecture():
    runs = parse_suite(LADDER, name="ladder").runs
    assert [r.arch for r in runs] == ["linear", "complex_diagonal", "lru_exp", "lru"]
    exp, lru = runs[2], runs[3]
    assert (exp.architecture, exp.registered_arch, dict(exp.arch_options)) == ("lru", "lru", {"gamma": "none"})
    assert (lru.architecture, lru.registered_arch, lru.arch_options) == ("", "lru", ())
    assert exp.run_id.startswith("lru_exp-teacher_student-h10-none-s0-")
    task = build_task(exp)
    model_exp, model_lru = build_model(exp, task), build_model(lru, task)
    assert type(model_exp) is type(model_lru)
    assert (model_exp.gamma, model_lru.gamma) == ("none", "learned")
    row = make_row(exp, RunResult("unsolved", 0.5, False, None, 10, 1.0), "relative_mse", False)
    assert row["arch"] == "lru_exp"
    # A suite without variants keeps its ids: the recipe tables and the list give the same runs.
    plain = parse_suite({**LADDER, "archs": ["linear", "complex_diagonal", "lru"]}, name="ladder").runs
    assert [r.run_id for r in plain] == [r.run_id for r in (runs[0], runs[1], runs[3])]
    # --archs (and load_trained_model, which filters by a row's arch) accept the variant's name.
    only = parse_suite(LADDER, name="ladder", archs=["lru_exp"]).runs
    assert [r.run_id for r in only] == [exp.run_id]


@pytest.mark.parametrize("archs, message", [
    ({"x": {"arch": "nope"}}, r"ladder.archs.x.arch: must name a registered architecture \(.*\), got 'nope'"),
    ({"lru": {"arch": "gru"}}, r"ladder.archs.lru.arch: 'lru' is a registered architecture; give the variant"),
    ({"x": {"arch": 3}}, r"ladder.archs.x.arch: must name a registered architecture"),
    ({"x": {"arch": "rnn", "gamma": "none"}}, r"ladder.archs.x: unknown key 'gamma'; allowed: .*gain"),
])
def test_bad_variants_are_one_line_errors(archs, message):
    with pytest.raises(ConfigError, match=message) as e:
        parse_suite({**LADDER, "archs": archs}, name="ladder", validate_models=False)
    assert "\n" not in str(e.value)


def test_an_experiment_may_name_a_variant_and_unknown_names_list_the_variants():
    raw = {**LADDER, "experiments": [{**LADDER["experiments"][0], "archs": ["lru_exp"]}]}
    assert [r.arch for r in parse_suite(raw, name="ladder", validate_models=False).runs] == ["lru_exp"]
    raw = {**LADDER, "experiments": [{**LADDER["experiments"][0], "archs": ["lru_ex"]}]}
    with pytest.raises(ConfigError,
                       match=r"unknown architecture 'lru_ex'; registered: .*; the suite's variants: lru_exp"):
        parse_suite(raw, name="ladder", validate_models=False)


# --------------------------------------------------------------------------- per-architecture flossing


FLOSS = {
    "seeds": 1, "flossing": ["none", "pre"],
    "archs": {"rnn": {}, "lru": {"flossing_config": {"lr": 1e-2, "target": -0.02, "k_fraction": 0.5}},
              "gru": {"flossing": ["pre"]}},
    "flossing_config": {"k": 6, "pre_steps": 3},
    "defaults": {"hidden_size": 8, "steps": 10, "eval_every": 5},
    "experiments": [{"task": "delayed_copy", "horizons": [2], "options": {"seq_len": 12}}],
}


def test_an_architectures_flossing_config_reaches_its_runs():
    runs = {(r.arch, r.flossing): r for r in parse_suite(FLOSS, name="f").runs}
    assert sorted(runs) == [("gru", "pre"), ("lru", "none"), ("lru", "pre"), ("rnn", "none"), ("rnn", "pre")]
    lru, rnn = runs["lru", "pre"], runs["rnn", "pre"]
    task = build_task(lru)
    cfg = flossing_config(lru, build_model(lru, task))
    assert (cfg.lr, cfg.target, cfg.pre_steps) == (1e-2, -0.02, 3)
    assert cfg.k == 8  # half the LRU's flat real state, 2 x 8 (k_fraction wins over the suite's k = 6)
    cfg = flossing_config(rnn, build_model(rnn, task))
    assert (cfg.lr, cfg.target, cfg.k, cfg.pre_steps) == (1e-3, 0.0, 6, 3)
    assert runs["lru", "none"].flossing_options == ()
    # The suite's own runs keep their ids: the rnn's options are the suite's alone.
    assert rnn.flossing_options == (("k", 6), ("pre_steps", 3))


@pytest.mark.parametrize("recipe, message", [
    ({"flossing_config": {"k_fraction": 2}}, r"f.archs.lru.flossing_config: FlossingConfig.k_fraction must be"),
    ({"flossing_config": {"lrr": 1}}, r"f.archs.lru.flossing_config: unknown key 'lrr'; allowed: "),
    ({"flossing_config": {"lr": -1.0}}, r"f.archs.lru.flossing_config.lr: must be a positive number, got -1.0"),
    ({"flossing_config": 3}, r"f.archs.lru.flossing_config: must be a table, got 3"),
    ({"flossing": ["during"]}, r"f.archs.lru.flossing: unknown flossing mode 'during'; allowed: none, pre"),
])
def test_bad_flossing_recipes_are_one_line_errors(recipe, message):
    with pytest.raises(ConfigError, match=message):
        parse_suite({**FLOSS, "archs": {"lru": recipe}}, name="f", validate_models=False)


# --------------------------------------------------------------------------- the columns and the shipped suites


def test_the_diagnostic_columns_follow_the_older_ones():
    assert DIAGNOSTIC_COLUMNS == ["lambdak_init", "grad_decay_init", "lambdak_before", "grad_decay_before",
                                  "lambdak_after", "grad_decay_after", "lambda1_fixed", "lambdak_fixed",
                                  "spread_fixed", "grad_decay_fixed"]
    assert COLUMNS[-12:] == ["schedule", "diag_step", *DIAGNOSTIC_COLUMNS]
    with pytest.raises(ValueError, match="unknown columns"):
        RunResult("unsolved", 0.5, False, None, 10, 1.0, diagnostics={"lambda1_later": 0.0})


def test_the_shipped_suites_read_as_issue_16_asks():
    zo = load_suite("zucchet_orvieto", validate_models=False)
    assert {r.train.schedule for r in zo.runs} == {"cosine"}
    assert not any(r.train.stop_at_success for r in (*zo.runs, *zo.tuning))
    assert {dict(r.task_options)["teacher_seed"] for r in zo.runs} == {"run"}
    lrs = sorted({r.train.lr for r in zo.tuning})
    assert lrs[0] <= 1e-3 and lrs[-1] >= 1e-1 and any(1e-2 < lr < 1e-1 for lr in lrs)
    assert not {r.seed for r in zo.tuning} & {r.seed for r in zo.runs}

    ladder = load_suite("lru_ablation", validate_models=False)
    rows = list(dict.fromkeys(r.arch for r in ladder.runs))
    assert rows == ["linear", "complex_diagonal", "lru_exp", "lru"]
    exp = next(r for r in ladder.runs if r.arch == "lru_exp")
    assert (exp.registered_arch, dict(exp.arch_options)["gamma"]) == ("lru", "none")

    paper = load_suite("flossing_paper", validate_models=False)
    xor = {r.horizon for r in paper.runs if r.task == "delayed_xor"}
    assert max(xor) >= 64
    matched = [r for r in paper.runs if r.arch != "rnn"]
    assert matched and {r.flossing for r in matched} == {"pre"} and {r.registered_arch for r in matched} == {"rnn"}
    during = next(r for r in paper.runs if r.flossing == "pre+during")
    from zoo.flossing import FlossingConfig, flossing_schedule
    total = sum(p.n_steps for p in flossing_schedule("pre+during", during.train.steps,
                                                     FlossingConfig(**dict(during.flossing_options))))
    assert FlossingConfig(**dict(matched[0].flossing_options)).pre_steps == total == 1500


@pytest.mark.parametrize("name", ["flossing_paper", "lru_ablation", "zucchet_orvieto"])
def test_help_counts_variants_and_narrowed_modes(name):
    import tomllib

    from zoo.bench.catalogue import count_runs
    from zoo.bench.suite import CONFIG_DIR

    suite = load_suite(name, validate_models=False)
    assert count_runs(tomllib.loads((CONFIG_DIR / f"{name}.toml").read_text())) == len(suite.runs) + len(suite.tuning)
