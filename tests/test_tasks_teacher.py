"""The teacher of `teacher_student` against Zucchet & Orvieto (2024)'s construction, and the
choice of teacher by seed."""

from __future__ import annotations

import numpy as np
import pytest

import tasks

SEEDS = range(60)


def _paper_eigenvalues(seed: int, nu0: float, hidden: int = 10) -> np.ndarray:
    """The eigenvalues their code gives A, from the first draw of the teacher's generator:
    G ~ N(0, 1/hidden), each eigenvalue l of G becomes (nu0 + (1 - nu0) tanh|l|) e^{i arg l}."""
    g = np.random.default_rng(seed).standard_normal((hidden, hidden)) / np.sqrt(hidden)
    lam = np.linalg.eigvals(g)
    return (nu0 + (1 - nu0) * np.tanh(np.abs(lam))) * np.exp(1j * np.angle(lam)), lam


def _sorted(z: np.ndarray) -> np.ndarray:
    return z[np.lexsort((np.round(z.imag, 6), np.round(z.real, 6)))]


@pytest.mark.parametrize("nu0", [0.32, 0.9, 0.99])
def test_zucchet_orvieto_teacher_eigenvalues_in_the_papers_range(nu0):
    top = []
    for seed in SEEDS:
        task = tasks.create_task("teacher_student", horizon=1 / (1 - nu0), teacher_seed=seed)
        a = task.teacher["A"]
        assert a.dtype == np.float64 and a.shape == (10, 10)
        eig = np.linalg.eigvals(a)
        expected, g_eig = _paper_eigenvalues(seed, nu0)
        np.testing.assert_allclose(_sorted(eig), _sorted(expected), atol=1e-8)
        mags = np.abs(eig)
        # the paper's range: [nu0, nu0 + tanh(rho(G)) (1 - nu0)], inside [nu0, 1)
        rho = np.abs(g_eig).max()
        assert mags.min() >= nu0 - 1e-9
        assert mags.max() <= nu0 + np.tanh(rho) * (1 - nu0) + 1e-9 < 1.0
        # non-normal: A keeps the Gaussian matrix's non-orthogonal eigenvectors
        assert np.linalg.norm(a @ a.T - a.T @ a) > 1e-2 * np.linalg.norm(a) ** 2
        top.append((mags.max() - nu0) / (1 - nu0))
    # the slowest mode sits about 0.76 of the way from nu0 to 1 (tanh 1 = 0.76)
    assert 0.70 < np.median(top) < 0.85


def test_normal_teacher_is_the_first_construction():
    task = tasks.create_task("teacher_student", horizon=10, construction="normal")
    a = task.teacher["A"]
    np.testing.assert_allclose(a @ a.T, a.T @ a, atol=1e-12)  # a normal matrix
    mags = np.abs(np.linalg.eigvals(a))
    assert mags.min() >= 0.9 - 1e-12 and mags.max() < 1.0
    default = tasks.create_task("teacher_student", horizon=10)
    assert default.construction == "zucchet_orvieto"
    assert not np.allclose(default.teacher["A"], a)


def test_run_seed_chooses_the_teacher():
    by_run = [
        tasks.create_task("teacher_student", horizon=25, teacher_seed="run", run_seed=s)
        for s in (0, 1, 2)
    ]
    for s, task in enumerate(by_run):
        fixed = tasks.create_task("teacher_student", horizon=25, teacher_seed=s)
        for k in "ABCD":
            np.testing.assert_array_equal(task.teacher[k], fixed.teacher[k])
    assert not np.allclose(by_run[0].teacher["A"], by_run[1].teacher["A"])
    # teachers are data: runs with different teachers share one compilation
    assert len({t.static_key() for t in by_run}) == 1
    # without "run", the run's seed leaves the teacher alone
    a0 = tasks.create_task("teacher_student", horizon=25, run_seed=7).teacher["A"]
    np.testing.assert_array_equal(a0, tasks.create_task("teacher_student", horizon=25).teacher["A"])
    # tasks that do not take run_seed ignore it
    assert tasks.create_task("delayed_copy", horizon=5, run_seed=3).horizon == 5


@pytest.mark.parametrize(
    "options, message",
    [
        (
            dict(teacher_seed="run"),
            "teacher_student: teacher_seed='run' needs the run's seed (run_seed)",
        ),
        (dict(teacher_seed="seed"), "teacher_seed must be an integer >= 0 or 'run', got 'seed'"),
        (
            dict(construction="dense"),
            "construction must be one of 'zucchet_orvieto', 'normal', got 'dense'",
        ),
    ],
)
def test_teacher_options_errors(options, message):
    with pytest.raises(tasks.TaskConfigError) as info:
        tasks.create_task("teacher_student", horizon=10, **options)
    assert message in str(info.value) and "\n" not in str(info.value)
