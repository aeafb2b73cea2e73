"""Leaderboard statistics: intervals, the breaking horizon h50, paired flossing tests, lr choice.

Pure functions of pandas DataFrames; the harness writes their results (leaderboard.csv's
``ci_low``/``ci_high``, horizons.csv, tuning.csv). scipy does the statistics wherever it has
them (Wilson intervals, exact binomial tests); what is written here by hand is only what no
installed library offers (Firth's logistic fit, a bootstrap with infinite values), and each
such place says why.

- `wilson_interval` / `add_wilson_intervals`: Wilson 95% score interval of a success rate.
- `h50_table`: per (arch, task, flossing), the horizon where the success rate crosses 0.5, from
  a logistic fit in log-horizon, with a stratified bootstrap interval and `bracketed`.
- `paired_outcomes` / `discordance`: two sets of runs paired on shared keys, and their 2x2 cells;
  `median_shift`: the median paired difference of a quantity, with the sign test.
- `horizon_trend`: Kendall's tau of a metric against the horizon (do runs get worse?).
- `mcnemar_table`: exact McNemar test of a flossing mode against ``none`` on paired seeds.
- `tuning_table`: learning-rate choice from tuning runs (tuning.csv).
- `geometric_horizons` / `horizon_grid`: ``{from, to, count}`` grids.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import scipy.special
import scipy.stats

__all__ = [
    "CURVE_KEYS",
    "H50_COLUMNS",
    "MCNEMAR_COLUMNS",
    "TUNING_COLUMNS",
    "add_wilson_intervals",
    "bootstrap_log_h50",
    "firth_fit",
    "firth_log_likelihood",
    "geometric_horizons",
    "h50_table",
    "holm_adjust",
    "horizon_trend",
    "horizon_grid",
    "log_h50_batch",
    "discordance",
    "mcnemar_p_value",
    "mcnemar_table",
    "median_shift",
    "paired_difference",
    "paired_outcomes",
    "success_counts",
    "tuning_summary",
    "tuning_table",
    "wilson_interval",
]

CONFIDENCE = 0.95
CURVE_KEYS = ["arch", "task", "flossing"]  # one success-vs-horizon curve
H50_COLUMNS = ["arch", "task", "flossing", "h50", "h50_low", "h50_high", "bracketed"]
TUNING_COLUMNS = ["arch", "task", "flossing", "lr", "score", "chosen"]
MCNEMAR_COLUMNS = [
    "flossing", "n_pairs", "both", "neither", "flossing_only", "none_only", "p_value",
]  # fmt: skip
BASELINE = "none"


def _check_columns(df: pd.DataFrame, needed: Sequence[str], what: str) -> None:
    missing = [c for c in needed if c not in df.columns]
    if missing:
        raise ValueError(
            f"{what} needs the columns {', '.join(needed)}; missing: {', '.join(missing)}"
        )


def _solved(runs: pd.DataFrame) -> pd.Series:
    """Per run, 1 if solved, else 0 (unsolved and diverged runs both fail)."""
    return (runs["status"] == "solved").astype(int)


def _finished(runs: pd.DataFrame) -> pd.DataFrame:
    """Skipped runs (data unavailable) never trained, so they are not trials."""
    return runs[runs["status"] != "skipped"]


# ------------------------------------------------------------------------------ Wilson


def wilson_interval(successes: int, n: int, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Wilson score interval (Wilson 1927) for `successes` of `n` Bernoulli trials.

    Unlike the normal (Wald) interval it stays inside [0, 1] and is not degenerate at 0 or n
    successes, which matters with 5 seeds. `(nan, nan)` when `n == 0`.
    """
    if n == 0:
        return (math.nan, math.nan)
    ci = scipy.stats.binomtest(int(successes), int(n)).proportion_ci(confidence, method="wilson")
    return (float(ci.low), float(ci.high))


def add_wilson_intervals(board: pd.DataFrame, confidence: float = CONFIDENCE) -> pd.DataFrame:
    """`board` with `ci_low`, `ci_high`: the Wilson interval of `successes` / `n_runs` per row."""
    _check_columns(board, ["successes", "n_runs"], "add_wilson_intervals")
    ci = [wilson_interval(k, n, confidence) for k, n in zip(board["successes"], board["n_runs"])]
    low, high = zip(*ci) if ci else ((), ())
    return board.assign(ci_low=np.array(low, float), ci_high=np.array(high, float))


# ------------------------------------------------------------------------------ h50


def success_counts(runs: pd.DataFrame) -> pd.DataFrame:
    """Per (arch, task, flossing, horizon): `successes` and `n_runs` over the finished runs.

    The Bernoulli likelihood of the runs equals the binomial likelihood of these counts (up to
    a constant), so `h50_table` fits the counts; the leaderboard already has these columns.
    """
    _check_columns(runs, ["arch", "task", "flossing", "horizon", "status"], "success_counts")
    df = _finished(runs)
    df = df.assign(_solved=_solved(df))
    counts = df.groupby(CURVE_KEYS + ["horizon"], sort=True)["_solved"].agg(["sum", "size"])
    return counts.rename(columns={"sum": "successes", "size": "n_runs"}).reset_index()


def _design(z: np.ndarray) -> np.ndarray:
    return np.stack([np.ones_like(z), z], axis=1)


def firth_log_likelihood(
    beta: np.ndarray, z: np.ndarray, successes: np.ndarray, n_runs: np.ndarray
) -> np.ndarray:
    """Firth-penalised log-likelihood of `P(success) = expit(a + b z)`, batched over fits.

    `beta` `(..., 2)` holds `(a, b)`, `successes` `(..., H)` the counts of `n_runs` `(H,)` at
    the covariates `z` `(H,)`. Penalty: Jeffreys' prior, `0.5 log det I(beta)`, with the Fisher
    information `I = X' W X`, `W = n p (1 - p)` (Firth 1993). `-inf` where `I` is singular.
    """
    eta = beta[..., :1] + beta[..., 1:] * z
    log_p, log_q = scipy.special.log_expit(eta), scipy.special.log_expit(-eta)  # log p, log 1-p
    loglik = np.sum(successes * log_p + (n_runs - successes) * log_q, axis=-1)
    p = scipy.special.expit(eta)
    x = _design(z)
    info = np.einsum("...h,hi,hj->...ij", n_runs * p * (1 - p), x, x)
    sign, logdet = np.linalg.slogdet(info)
    return np.where(sign > 0, loglik + 0.5 * logdet, -np.inf)


def firth_fit(
    z: np.ndarray,
    successes: np.ndarray,
    n_runs: np.ndarray,
    *,
    max_iter: int = 100,
    tol: float = 1e-8,
) -> np.ndarray:
    """Maximise `firth_log_likelihood` for a batch of count vectors `successes` `(R, H)`: `(R, 2)`.

    Firth's modified-score iteration `beta += I^{-1} U*`, `U* = X' (k - n p + h (1/2 - p))`
    with `h` the leverages of the weighted fit, steps capped at 5 and halved until the
    penalised likelihood does not fall (Heinze & Schemper 2002, as in R's logistf); a fit
    whose score is below `tol`, or that cannot move within rounding, is converged. Written
    here because neither scipy nor scikit-learn has Firth's logistic regression, and a
    bootstrap needs thousands of these 2-parameter fits per curve: one batched iteration
    does them all at once, where scipy.optimize.minimize takes milliseconds per fit (the
    tests check both agree).
    """
    x = _design(z)
    beta = np.zeros((successes.shape[0], 2))
    value = firth_log_likelihood(beta, z, successes, n_runs)
    active = np.ones(len(beta), bool)  # fits not yet converged
    for _ in range(max_iter):
        k, b = successes[active], beta[active]
        p = scipy.special.expit(b[:, :1] + b[:, 1:] * z)
        w = n_runs * p * (1 - p)
        inv = np.linalg.inv(np.einsum("rh,hi,hj->rij", w, x, x))
        leverage = w * np.einsum("hi,rij,hj->rh", x, inv, x)
        score = np.einsum("rh,hi->ri", k - n_runs * p + leverage * (0.5 - p), x)
        done = np.max(np.abs(score), axis=1) < tol
        active[np.flatnonzero(active)[done]] = False
        if not active.any():
            break
        k, b, v = k[~done], b[~done], value[active]
        step = np.einsum("rij,rj->ri", inv[~done], score[~done])
        step *= np.minimum(1.0, 5.0 / np.max(np.abs(step), axis=1, keepdims=True))
        for _ in range(30):  # step halving, per fit; a fall within rounding is no fall
            new = firth_log_likelihood(b + step, z, k, n_runs)
            worse = new < v - 1e-10 * (1 + np.abs(v))
            if not worse.any():
                break
            step[worse] /= 2
        beta[active] = np.where(worse[:, None], b, b + step)
        value[active] = np.where(worse, v, new)
        # Converged within rounding: no improving step, or a negligible one.
        stalled = worse | (np.max(np.abs(step), axis=1) < 1e-10)
        active[np.flatnonzero(active)[stalled]] = False
    return beta


# A fitted slope (per standard deviation of log-horizon) this close to 0 is flat, not falling:
# symmetric data fit b = 0 up to rounding, and -a/b would be noise.
FLAT_SLOPE = 1e-6


def log_h50_batch(horizons: np.ndarray, successes: np.ndarray, n_runs: np.ndarray) -> np.ndarray:
    """log h50 per row of `successes` `(R, H)`, with the conventions of `h50_table`.

    +inf: rate >= 0.5 at every horizon; -inf: < 0.5 at every horizon; nan: the fitted rate
    does not fall with horizon (slope >= -FLAT_SLOPE); otherwise the crossing
    `a + b log h = 0` of the Firth fit.
    """
    x = np.log(horizons)
    # Standardised log-horizon: a well-conditioned fit whatever the horizons' scale.
    centre, scale = x.mean(), x.std()
    rate = successes / n_runs
    out = np.full(len(rate), np.nan)
    out[np.all(rate >= 0.5, axis=1)] = np.inf
    out[np.all(rate < 0.5, axis=1)] = -np.inf
    mixed = ~np.isinf(out)
    if mixed.any():
        a, b = firth_fit((x - centre) / scale, successes[mixed], n_runs).T
        with np.errstate(divide="ignore", invalid="ignore"):
            out[mixed] = np.where(b < -FLAT_SLOPE, centre - scale * a / b, np.nan)
    return out


def fitted_rates(horizons: np.ndarray, successes: np.ndarray, n_runs: np.ndarray) -> np.ndarray:
    """The Firth fit's success probability at each horizon `(H,)`, for the fitted bootstrap."""
    x = np.log(horizons)
    z = (x - x.mean()) / x.std()
    a, b = firth_fit(z, successes[None], n_runs)[0]
    return scipy.special.expit(a + b * z)


RESAMPLING = ("fitted", "runs")


def _check_resample(resample: str) -> None:
    if resample not in RESAMPLING:
        allowed = ", ".join(map(repr, RESAMPLING))
        raise ValueError(f"unknown resample {resample!r}; allowed: {allowed}")


def bootstrap_log_h50(
    horizons: np.ndarray,
    successes: np.ndarray,
    n_runs: np.ndarray,
    *,
    n_resamples: int,
    seed: int,
    resample: str = "fitted",
) -> np.ndarray:
    """`log_h50_batch` of `n_resamples` bootstrap resamples of one curve, stratified by horizon.

    Each horizon keeps its number of runs; its count of successes is redrawn from
    Binomial(n, p): `resample="runs"` takes `p = k / n`, which is exactly resampling the
    horizon's runs with replacement; `"fitted"` (the default) takes `p` from the logistic fit,
    a parametric bootstrap (Efron & Tibshirani 1993, ch. 6). Resampling runs cannot vary a
    horizon whose runs all agree, so with few seeds and a sharp break (all solved, then none)
    it gives a zero-width interval; the fitted rates are never exactly 0 or 1 near the break.

    A plain numpy bootstrap rather than scipy.stats.bootstrap: the statistic takes the values
    +-inf and nan by convention, which scipy's interpolated percentiles turn into nan, and the
    resamples are fitted in one batch (distinct count vectors once each).
    """
    _check_resample(resample)
    p = successes / n_runs if resample == "runs" else fitted_rates(horizons, successes, n_runs)
    rng = np.random.default_rng(seed)
    draws = rng.binomial(n_runs.astype(np.int64), p, size=(n_resamples, len(n_runs)))
    distinct, inverse = np.unique(draws, axis=0, return_inverse=True)
    return log_h50_batch(horizons, distinct.astype(float), n_runs)[inverse.reshape(-1)]


def _curve_h50(
    curve: pd.DataFrame, confidence: float, n_resamples: int, seed: int, resample: str
) -> tuple[float, float, float, bool]:
    curve = curve.sort_values("horizon")
    h = curve["horizon"].to_numpy(float)
    k = curve["successes"].to_numpy(float)
    n = curve["n_runs"].to_numpy(float)
    if len(h) < 2:
        return math.nan, math.nan, math.nan, False
    point = float(log_h50_batch(h, k[None], n)[0])
    boot = bootstrap_log_h50(h, k, n, n_resamples=n_resamples, seed=seed, resample=resample)
    alpha = (1 - confidence) / 2
    # A resample without a falling crossing (nan) could sit anywhere: it widens both ends.
    # No interpolation between order statistics, so +-inf stay +-inf (conservative).
    low = np.quantile(np.where(np.isnan(boot), -np.inf, boot), alpha, method="lower")
    high = np.quantile(np.where(np.isnan(boot), np.inf, boot), 1 - alpha, method="higher")
    rate = k / n
    bracketed = bool(
        np.isfinite(point)
        and np.any((h <= math.exp(point)) & (rate >= 0.5))
        and np.any((h >= math.exp(point)) & (rate < 0.5))
    )
    return math.exp(point), math.exp(low), math.exp(high), bracketed  # exp(nan) is nan


def h50_table(
    counts: pd.DataFrame,
    *,
    confidence: float = CONFIDENCE,
    n_resamples: int = 2000,
    seed: int = 0,
    resample: str = "fitted",
) -> pd.DataFrame:
    """horizons.csv: per (arch, task, flossing), `h50` with its bootstrap interval and `bracketed`.

    `h50` is the horizon where the success rate crosses 0.5, from a logistic fit of success
    against log-horizon, `P(success) = expit(a + b log h)`, by Firth-penalised maximum
    likelihood (`firth_fit`): plain maximum likelihood has no finite optimum under complete
    separation (every run solved up to some horizon and none beyond, the usual picture with
    few seeds), while Firth's estimate always exists, agrees with it as runs grow, and puts a
    separated crossing inside the gap. The interval `[h50_low, h50_high]` is the percentile
    interval of `n_resamples` stratified bootstrap resamples (`bootstrap_log_h50`, `resample`
    says how), from a numpy generator seeded with `seed` afresh for every curve, so each row
    is deterministic and independent of the others.

    `bracketed` is True when the grid has a horizon `<= h50` whose observed rate is `>= 0.5`
    and a horizon `>= h50` whose observed rate is `< 0.5`: the break lies between measured
    points, not extrapolated beyond them.

    Conventions where no crossing can be fitted (never bracketed):
    - every horizon has rate >= 0.5: `h50 = inf` (the break lies beyond the grid);
    - every horizon has rate < 0.5: `h50 = 0` (it lies below the grid);
    - the fitted rate does not fall with horizon, or the curve has one horizon: `h50 = nan`.
    Each bootstrap resample follows the same conventions, so an end of the interval is
    `inf` or `0` when enough resamples never break or never reach 0.5, and resamples without
    a falling crossing widen both ends: the interval is conservative, not silently narrow.

    Args:
      counts: columns `arch, task, flossing, horizon, successes, n_runs` (the leaderboard, or
        `success_counts(runs)`); rows with `n_runs == 0` are ignored.
    """
    _check_columns(counts, CURVE_KEYS + ["horizon", "successes", "n_runs"], "h50_table")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    _check_resample(resample)
    counts = counts[counts["n_runs"] > 0]
    if (counts["horizon"] <= 0).any():
        raise ValueError("h50_table fits in log-horizon: every horizon must be > 0")
    rows = [
        (*key, *_curve_h50(curve, confidence, n_resamples, seed, resample))
        for key, curve in counts.groupby(CURVE_KEYS, sort=True)
    ]
    table = pd.DataFrame(rows, columns=H50_COLUMNS)
    return table.astype({"h50": float, "h50_low": float, "h50_high": float, "bracketed": bool})


# ------------------------------------------------------------------------------ McNemar


def mcnemar_p_value(flossing_only: int, none_only: int) -> float:
    """Exact two-sided McNemar p-value from the discordant pair counts (McNemar 1947).

    Under the null, each discordant pair is equally likely either way: the p-value is the
    two-sided binomial test of `flossing_only` of `flossing_only + none_only` at 1/2. With no
    discordant pairs there is no evidence either way: 1.
    """
    discordant = int(flossing_only) + int(none_only)
    if discordant == 0:
        return 1.0
    return float(scipy.stats.binomtest(int(flossing_only), discordant, 0.5).pvalue)


PER_HORIZON = ("arch", "task", "horizon")
POOLED = ("arch", "task")


def holm_adjust(p_values: Sequence[float]) -> np.ndarray:
    """Holm's (1979) step-down adjusted p-values, in the input's order: the family-wise error
    rate of rejecting every hypothesis whose adjusted p is below alpha is at most alpha.

    With the m p-values sorted, `p_(1) <= ... <= p_(m)`, the adjusted `p~_(i) =
    max_{j <= i} min(1, (m - j + 1) p_(j))`. By hand since scipy has no Holm (only
    Benjamini-Hochberg) and statsmodels would be a dependency for these three lines.
    """
    p = np.asarray(p_values, dtype=float)
    order = np.argsort(p, kind="stable")
    m = len(p)
    stepped = np.minimum(1.0, (m - np.arange(m)) * p[order])
    adjusted = np.empty(m)
    adjusted[order] = np.maximum.accumulate(stepped)
    return adjusted


def paired_difference(only_a: int, only_b: int, n_pairs: int,
                      confidence: float = 0.95) -> tuple[float, float, float, float]:
    """The difference in success rate of A over B on `n_pairs` paired runs, of which `only_a`
    were solved by A alone and `only_b` by B alone: `(difference, low, high, p)`.

    p is `mcnemar_p_value`, the exact test on the discordant pairs. The interval is conditional on
    their number `d = only_a + only_b`: the Clopper-Pearson interval of `theta = only_a / d`
    (scipy's `binomtest(...).proportion_ci`) mapped through `difference = (2 theta - 1) d / n`.
    Pooled over cells it tests the global null that A and B do equally well in every pair.
    """
    d = only_a + only_b
    if n_pairs <= 0 or d > n_pairs:
        raise ValueError(f"need 0 <= only_a + only_b <= n_pairs and n_pairs > 0, got {only_a}, {only_b}, {n_pairs}")
    if d == 0:
        return 0.0, 0.0, 0.0, 1.0
    ci = scipy.stats.binomtest(only_a, d).proportion_ci(confidence_level=confidence, method="exact")
    scale = d / n_pairs
    return ((only_a - only_b) / n_pairs, (2 * ci.low - 1) * scale, (2 * ci.high - 1) * scale,
            mcnemar_p_value(only_a, only_b))


def paired_outcomes(runs: pd.DataFrame, column: str, a: str, b: str, keys: Sequence[str],
                    value: str | None = None) -> pd.DataFrame:
    """Runs with `column` == `a` paired with runs with `column` == `b` that share `keys` (e.g. a
    flossing mode against ``none`` on the same arch, task, horizon and seed; or two architectures
    on the same task, horizon and seed): one row per pair, `keys` then boolean `a` and `b`
    (solved or not), and with `value` (a column of runs) its two values `value_a`, `value_b`.
    Skipped runs are not trials; runs without a partner are left out.
    """
    keys = list(keys)
    _check_columns(runs, keys + [column, "status"] + ([value] if value else []), "paired_outcomes")
    df = _finished(runs)
    sides = []
    for name in (a, b):
        side = df[df[column] == name]
        dup = side.duplicated(keys)
        if dup.any():
            first = side.loc[dup, keys + [column]].iloc[0].to_dict()
            raise ValueError(f"pairing needs one run per ({', '.join(keys + [column])}); repeated: {first}")
        picked = side[keys].assign(_solved=_solved(side).astype(bool))
        sides.append(picked.assign(value=side[value]) if value else picked)
    pairs = sides[0].merge(sides[1], on=keys, suffixes=("_a", "_b"))
    return pairs.rename(columns={"_solved_a": "a", "_solved_b": "b"}).sort_values(keys, ignore_index=True)


def median_shift(differences: Sequence[float], confidence: float = CONFIDENCE) -> tuple[float, float, float, float]:
    """The median of paired differences, its distribution-free interval and the sign test's p:
    `(median, low, high, p)`. The interval is scipy's `quantile_test` interval of the median
    (order statistics of the differences; no assumption on their shape). p is the sign test on
    the nonzero differences (ties dropped, as Dixon & Mood 1946 do): whether one side is larger
    more often than the other. That is `mcnemar_p_value`'s binomial test again, on the signs; with
    many ties the interval can touch 0 while p is small (scipy's own p counts ties against)."""
    x = np.asarray(differences, dtype=float)
    if len(x) == 0:
        raise ValueError("median_shift needs at least one paired difference")
    ci = scipy.stats.quantile_test(x, q=0.0, p=0.5).confidence_interval(confidence)
    return float(np.median(x)), float(ci.low), float(ci.high), mcnemar_p_value(int((x > 0).sum()), int((x < 0).sum()))


def discordance(pairs: pd.DataFrame) -> dict[str, int]:
    """The four cells of a paired 2x2 table from `paired_outcomes`' rows."""
    a, b = pairs["a"].astype(bool), pairs["b"].astype(bool)
    return {"n_pairs": len(pairs), "both": int((a & b).sum()), "neither": int((~a & ~b).sum()),
            "only_a": int((a & ~b).sum()), "only_b": int((~a & b).sum())}


def horizon_trend(horizons: Sequence[float], metric: Sequence[float], higher_is_better: bool) -> tuple[float, float]:
    """Whether runs do worse at longer horizons: Kendall's tau-b between the horizon and the
    metric oriented so that larger is worse, and its two-sided p (scipy's `kendalltau`, which
    handles the ties of a grid of horizons). A diverged run (metric NaN) counts as the worst."""
    worse = -np.asarray(metric, dtype=float) if higher_is_better else np.asarray(metric, dtype=float)
    worse = np.where(np.isnan(worse), np.inf, worse)  # ranks only: inf is simply the largest
    result = scipy.stats.kendalltau(np.asarray(horizons, dtype=float), worse)
    return float(result.statistic), float(result.pvalue)


def mcnemar_table(runs: pd.DataFrame, *, by: Sequence[str] = PER_HORIZON) -> pd.DataFrame:
    """Each flossing mode against ``none`` on paired runs, per group `by`.

    Two runs pair when they share arch, task, horizon and seed (same initialisation and data)
    and one is ``none`` (`paired_outcomes`). `by=POOLED` pools the pairs over horizons. Columns:
    `by`, then `flossing, n_pairs, both, neither, flossing_only, none_only, p_value`
    (`flossing_only`: pairs solved only with flossing). Unsolved and diverged runs fail.
    """
    pair_keys = ["arch", "task", "horizon", "seed"]
    _check_columns(runs, pair_keys + ["flossing", "status"], "mcnemar_table")
    by = list(by)
    if not set(by) <= set(pair_keys):
        raise ValueError(f"mcnemar_table groups by a subset of {pair_keys}, got by={by}")
    rows = []
    for mode in sorted(set(runs["flossing"]) - {BASELINE}):
        pairs = paired_outcomes(runs, "flossing", mode, BASELINE, pair_keys)
        for group, cell in (pairs.groupby(by, sort=True) if by else [((), pairs)]):
            counts = discordance(cell)
            rows.append([*group, mode, counts["n_pairs"], counts["both"], counts["neither"],
                         counts["only_a"], counts["only_b"], mcnemar_p_value(counts["only_a"], counts["only_b"])])
    table = pd.DataFrame(rows, columns=by + MCNEMAR_COLUMNS)
    return table.sort_values(by + ["flossing"], ignore_index=True).astype({"p_value": float})


# ------------------------------------------------------------------------- lr tuning


def _worst_last(values: pd.Series, higher_is_better: pd.Series) -> pd.Series:
    """Validation metrics with nan (a diverged run) replaced by the worst possible value."""
    worst = np.where(higher_is_better.astype(bool), -np.inf, np.inf)
    return values.where(values.notna(), pd.Series(worst, index=values.index))


def tuning_summary(runs: pd.DataFrame, *, metric: str = "val_metric") -> pd.DataFrame:
    """Per (arch, task, flossing, lr), pooled over tuning seeds and horizons, the ranking criteria.

    Columns: `n_runs` (finished runs), `n_solved` (those whose validation metric met the task's
    criterion), `success_rate` (their share), `median_steps` (median steps to that over those
    runs; inf when none met it), `median_metric` (median validation metric over all finished
    runs, a run without one counting as the worst), and `higher_is_better`.

    Success here is the validation split's (`steps_to_success`, recorded at the first
    validation evaluation that met the criterion), not `status`, which the final test metric
    decides: the choice must not read the test data (MNIST-1D's test split, for one, is the
    reported runs' too).
    """
    keys = CURVE_KEYS + ["lr"]
    needed = keys + ["status", "steps_to_success", metric, "higher_is_better"]
    _check_columns(runs, needed, "tuning_summary")
    df = _finished(runs)
    directions = df.groupby("task")["higher_is_better"].nunique()
    if (directions > 1).any():
        mixed = ", ".join(directions[directions > 1].index)
        raise ValueError(f"higher_is_better must be constant per task; mixed for: {mixed}")
    steps = pd.to_numeric(df["steps_to_success"], errors="coerce")
    solved = (steps.notna() & (df["status"] != "diverged")).astype(int)
    df = df.assign(
        _solved=solved,
        _steps=steps.where(solved == 1),
        _metric=_worst_last(pd.to_numeric(df[metric], errors="coerce"), df["higher_is_better"]),
    )
    summary = df.groupby(keys, sort=True).agg(
        n_runs=("_solved", "size"),
        n_solved=("_solved", "sum"),
        success_rate=("_solved", "mean"),
        median_steps=("_steps", "median"),
        median_metric=("_metric", "median"),
        higher_is_better=("higher_is_better", "first"),
    )
    summary["median_steps"] = summary["median_steps"].fillna(np.inf)
    return summary.reset_index()


def tuning_table(runs: pd.DataFrame, *, metric: str = "val_metric") -> pd.DataFrame:
    """tuning.csv: every tuned lr per (arch, task, flossing), its `score` and whether `chosen`.

    Ranking (issue 15; valid when runs stop at success): success rate (higher first), then
    median steps to success (fewer first), then median validation metric (better first, by
    the task's `higher_is_better`). `score` is the lr's rank in that order within its
    (arch, task, flossing), 1 = best; lrs equal on all three share a rank. Exactly one lr is
    `chosen` per (arch, task, flossing): the best, and among equals the smallest lr.

    Args:
      runs: tuning runs with `arch, task, flossing, lr, status, steps_to_success,
        higher_is_better` and the validation metric column `metric`.
    """
    summary = tuning_summary(runs, metric=metric)
    # One ascending sort key per criterion; the metric's sign makes "better" sort first.
    sign = np.where(summary["higher_is_better"].astype(bool), -1.0, 1.0)
    criteria = ["_k1", "_k2", "_k3"]
    summary = summary.assign(
        _k1=-summary["success_rate"],
        _k2=summary["median_steps"],
        _k3=sign * summary["median_metric"],
    )
    summary = summary.sort_values(CURVE_KEYS + criteria + ["lr"], kind="stable")
    summary = summary.reset_index(drop=True)
    position = summary.groupby(CURVE_KEYS, sort=False).cumcount()
    # Sorted rows: an lr equal to the previous one on every key shares its rank.
    keys = summary[CURVE_KEYS + criteria]
    tied = (keys == keys.shift()).all(axis=1)
    summary["score"] = position.where(~tied).ffill().astype(int) + 1
    summary["chosen"] = position == 0
    return summary[TUNING_COLUMNS].reset_index(drop=True)


# ------------------------------------------------------------------------ horizon grid


def geometric_horizons(start: float, stop: float, count: int, *, integer: bool = True) -> list:
    """`count` horizons spaced geometrically from `start` to `stop`, both included.

    `integer=True` rounds to the nearest integer and drops repeats (so a dense grid over a
    short range may have fewer than `count` points); otherwise floats rounded to 12
    significant digits, so that e.g. 10.000000000000002 reads 10.0.
    """
    if isinstance(count, bool):
        raise ValueError(f"horizon grid: count must be an int, got {count!r}")
    try:
        count = operator.index(count)
    except TypeError:
        raise ValueError(f"horizon grid: count must be an int, got {count!r}") from None
    if not (start > 0 and stop > 0 and math.isfinite(start) and math.isfinite(stop)):
        raise ValueError(
            f"horizon grid: from and to must be finite and > 0, got from={start}, to={stop}"
        )
    if count < 1 or (count == 1) != (start == stop) or stop < start:
        raise ValueError(
            f"horizon grid: need from < to with count >= 2 (or from == to with count == 1), "
            f"got from={start}, to={stop}, count={count}"
        )
    grid = np.geomspace(start, stop, count)
    if integer:
        return sorted({int(v) for v in np.rint(grid)})
    return [float(f"{v:.12g}") for v in grid]


def horizon_grid(spec: Sequence[float] | Mapping[str, Any], *, integer: bool = True) -> list:
    """An experiment's `horizons`: an explicit list, or `{from, to, count}` (geometric)."""
    if isinstance(spec, Mapping):
        if set(spec) != {"from", "to", "count"}:
            got = ", ".join(sorted(map(str, spec)))
            raise ValueError(
                f"horizons as a table needs exactly the keys from, to, count; got {got}"
            )
        return geometric_horizons(spec["from"], spec["to"], spec["count"], integer=integer)
    if isinstance(spec, (str, bytes)) or not isinstance(spec, Sequence) or len(spec) == 0:
        raise ValueError(
            f"horizons must be a non-empty list or a table {{from, to, count}}, got {spec!r}"
        )
    return list(spec)
