"""Suites as data: read `bench_configs/NAME.toml`, validate it, expand it into run specs.

A suite file looks like::

    description = "..."
    seeds = 5
    archs = ["rnn", "gru"]           # or [archs.NAME] tables, one recipe per architecture (below)
    flossing = ["none", "pre"]
    plugins = ["my_arch"]            # optional: modules whose decorators register things

    [defaults]                       # zoo.bench.spec.TrainSettings, overridable per experiment
    hidden_size = 32                 # or param_budget = 20000: the hidden size that matches it
    steps = 1000
    lr = 1e-3                        # or a table per architecture: { rnn = 1e-3, lru = 3e-3 }
    depth = 1                        # > 1, block = "glu"/"mlp" or readout = "mlp": a stack
    stop_at_success = true           # false: train the whole budget (equal compute)

    [archs.lstm]                     # a recipe: any [defaults] key, and the architecture's options
    clip = 0.0
    flossing_config = { lr = 1e-2 }  # over [flossing_config], for this architecture's runs
    flossing = ["none", "pre"]       # narrows the modes this architecture runs in

    [archs.lru_exp]                  # a variant: its own leaderboard row, built as `arch`
    arch = "lru"
    gamma = "none"

    [tuning]                         # optional: the learning rate chosen per (arch, task, flossing)
    lrs = [1e-3, 3e-3, 1e-2]
    seeds = [100, 101]               # disjoint from the reported seeds 0 .. seeds-1
    horizons = [20]                  # where to select (or a table per task; default: every horizon)
    flossing = ["none"]              # optional: tune this mode only; the other modes share its rate

    [bracket]                        # optional: extend open grid ends (zoo.bench.bracket)
    rounds = 1                       # at most this many horizons past each end
    factor = 4                       # the next horizon: the end's times (above) or over (below) this
    stretch_seq_len = true           # optional: a horizon up the sequence cannot hold runs on one factor x longer

    [flossing_config]                # overrides of zoo.flossing.FlossingConfig
    pre_steps = 100

    [[experiments]]
    task = "delayed_copy"
    horizons = [5, 10, 20]           # or { from = 5, to = 320, count = 7 } (geometric)
    options = { seq_len = 100 }      # task options

A run's settings are [defaults], then the experiment's keys, then a per-architecture lr
table, then the architecture's [archs.NAME] recipe: the most specific last. A recipe with an
`arch` key is a named variant of that registered architecture (`RunSpec.architecture`): its
runs are rows of their own under the table's name. With [tuning],
runs stop on (and tuning reads) the validation split (`eval_split`), and every tuning run
is an ordinary run on a tuning seed at a tuning horizon for each lr (zoo.bench.tuning).

The tables' keys, types and ranges are those of the dataclasses they fill (`SuiteFile`,
`Experiment`, `TrainSettings`, `FlossingConfig`, `zoo.bench.tuning.Tuning`,
`zoo.bench.bracket.Bracket`): a new field
there is a new key here. Everything is checked before anything runs; a mistake is a
`ConfigError` whose one-line message names the field and what is allowed. Each run is
normalised once, here.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import math
import tomllib
import typing
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any

from zoo.bench.bracket import parse_bracket
from zoo.bench.errors import ConfigError, one_line
from zoo.bench.record import FLOSSING_MODES
from zoo.bench.spec import MAX_INT, RunSpec, Suite, TrainSettings, build_task
from zoo.bench.tuning import parse_tuning, tuning_horizons
from zoo.bench.worker import import_plugins

__all__ = ["CONFIG_DIR", "ConfigError", "RunSpec", "Suite", "TrainSettings", "check_model", "list_suites",
           "load_suite", "parse_suite", "resolve_suite_path"]


def _config_dir() -> Path:
    """bench_configs/ beside the package in a checkout (or editable install), else the installed copy."""
    source = Path(__file__).resolve().parents[2] / "bench_configs"
    if source.is_dir():
        return source
    try:
        return Path(str(resources.files("bench_configs")))
    except ModuleNotFoundError:
        return source


CONFIG_DIR = _config_dir()


@dataclasses.dataclass(frozen=True)
class SuiteFile:
    """The top level of a suite file (its keys; the tables are checked by their own types)."""

    description: str = ""
    seeds: int = 1
    archs: list | dict | None = None  # names, or {name: recipe}; default: every registered architecture
    flossing: list = dataclasses.field(default_factory=lambda: ["none"])
    tuning: dict | None = None  # zoo.bench.tuning.Tuning
    bracket: dict | None = None  # zoo.bench.bracket.Bracket
    plugins: list = dataclasses.field(default_factory=list)
    defaults: dict = dataclasses.field(default_factory=dict)  # TrainSettings
    flossing_config: dict = dataclasses.field(default_factory=dict)  # FlossingConfig
    arch_options: dict = dataclasses.field(default_factory=dict)  # {arch: {option: value}}
    experiments: list = dataclasses.field(default_factory=list)  # Experiment tables


@dataclasses.dataclass(frozen=True)
class Experiment:
    """One [[experiments]] table, beside any TrainSettings key."""

    task: str | None = None
    horizons: list | dict | None = None  # a list, or {from, to, count} (geometric)
    options: dict = dataclasses.field(default_factory=dict)
    archs: list | None = None
    flossing: list | None = None
    arch_options: dict = dataclasses.field(default_factory=dict)


def _field_names(cls) -> list[str]:
    return [f.name for f in dataclasses.fields(cls)]


# --------------------------------------------------------------------------- checks


def _fail(where: str, message: str) -> ConfigError:
    return ConfigError(f"{where}: {message}")


def _check_keys(table: dict, allowed, where: str) -> None:
    allowed = sorted(allowed)
    for key in table:
        if key not in allowed:
            raise _fail(where, f"unknown key {key!r}; allowed: {', '.join(allowed)}")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _positive_int(value: Any, where: str, *, allow_zero: bool = False) -> int:
    ok = isinstance(value, int) and not isinstance(value, bool)
    if not ok or not (0 if allow_zero else 1) <= value <= MAX_INT:
        bound = "a non-negative" if allow_zero else "a positive"
        raise _fail(where, f"must be {bound} integer (at most {MAX_INT}), got {value!r}")
    return value


def _positive_number(value: Any, where: str, *, allow_zero: bool = False) -> float:
    if not _is_number(value) or not math.isfinite(value) or not (value >= 0 if allow_zero else value > 0):
        bound = "a non-negative" if allow_zero else "a positive"
        raise _fail(where, f"must be {bound} number, got {value!r}")
    return float(value)


def _string_list(value: Any, where: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value) or not value:
        raise _fail(where, f"must be a non-empty list of strings, got {value!r}")
    return value


def _table(value: Any, where: str) -> dict:
    if not isinstance(value, dict):
        raise _fail(where, f"must be a table, got {value!r}")
    return value


def _accepts(cls, name: str, value: Any) -> bool:
    """Whether the dataclass `cls` (its own checks) takes `value` for field `name`, others default."""
    try:
        cls(**{name: value})
        return True
    except (TypeError, ValueError):
        return False


def _check_field(cls, name: str, value: Any, where: str) -> Any:
    """`value` checked against field `name` of `cls`: the type from its annotation, the range
    from the dataclass's own checks (does it take 0? a negative?), as a one-line error."""
    kind = typing.get_type_hints(cls)[name]
    if kind is bool:
        if not isinstance(value, bool):
            raise _fail(where, f"must be true or false, got {value!r}")
        return value
    if kind is int:
        if _accepts(cls, name, -1):
            if not (isinstance(value, int) and not isinstance(value, bool)):
                raise _fail(where, f"must be an integer, got {value!r}")
            return value
        return _positive_int(value, where, allow_zero=_accepts(cls, name, 0))
    if kind is float:
        if _accepts(cls, name, -1.0):
            if not _is_number(value) or not math.isfinite(value):
                raise _fail(where, f"must be a finite number, got {value!r}")
            return float(value)
        return _positive_number(value, where, allow_zero=_accepts(cls, name, 0.0))
    return value


def _build(cls, table: dict, where: str, base=None):
    """An instance of dataclass `cls` from `table` (over `base`), each key checked; one-line errors."""
    values = {k: _check_field(cls, k, v, f"{where}.{k}") for k, v in table.items()}
    try:
        return dataclasses.replace(base, **values) if base is not None else cls(**values)
    except (TypeError, ValueError) as e:
        raise _fail(where, str(e)) from None


def resolve_suite_path(name_or_path: str) -> Path:
    """A suite name from bench_configs/ or a path to a TOML file."""
    path = Path(name_or_path)
    if path.is_file():
        return path
    if path.suffix == ".toml" or len(path.parts) > 1:
        what = "is not a file" if path.exists() else "does not exist"
        raise ConfigError(f"--suite: {str(path)!r} {what}; give a suite name ({', '.join(list_suites())}) "
                          "or a path to a .toml file")
    candidate = CONFIG_DIR / f"{name_or_path}.toml"
    if not candidate.is_file():
        raise ConfigError(
            f"unknown suite {name_or_path!r}; available: {', '.join(list_suites())} (or a path to a .toml file)"
        )
    return candidate


def list_suites() -> list[str]:
    """Names of the shipped suites (bench_configs/)."""
    return sorted(p.stem for p in CONFIG_DIR.glob("*.toml"))


def _train_settings(table: dict, base: TrainSettings, where: str) -> tuple[TrainSettings, dict]:
    """TrainSettings keys of `table` over `base`; a per-arch `lr` table is returned separately."""
    values = {k: v for k, v in table.items() if k in _field_names(TrainSettings)}
    lr_per_arch: dict[str, float] = {}
    if isinstance(values.get("lr"), dict):
        lr = values.pop("lr")
        if not lr:
            raise _fail(f"{where}.lr", "must be a number or a table {arch = number, ...}, got {}")
        lr_per_arch = {a: _positive_number(v, f"{where}.lr.{a}") for a, v in lr.items()}
    return _build(TrainSettings, values, where, base), lr_per_arch


# --------------------------------------------------------------------------- loading and expansion


def load_suite(
    name_or_path: str,
    *,
    seeds: int | None = None,
    archs: Sequence[str] | None = None,
    tasks: Sequence[str] | None = None,
    plugins: Sequence[str] = (),
    validate_models: bool = True,
) -> Suite:
    """Read, validate and expand a suite. Command-line overrides narrow or replace its fields."""
    path = resolve_suite_path(name_or_path)
    try:
        raw = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path.name}: malformed TOML: {e}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path.name}: not a text file") from None
    return parse_suite(
        raw, name=path.stem, seeds=seeds, archs=archs, tasks=tasks, plugins=plugins,
        validate_models=validate_models,
    )


class _Names:
    """Checks names against the registries (after the plugins registered theirs)."""

    def __init__(self) -> None:
        import tasks as task_registry  # noqa: PLC0415  (heavy imports only once a suite is loaded)

        import zoo

        self.archs, self.tasks = zoo.list_architectures(), task_registry.list_tasks()
        self.variants: dict[str, str] = {}  # the suite's named variants: name -> registered architecture

    def archs_ok(self, values: list[str], where: str) -> list[str]:
        for a in values:
            if a not in self.archs and a not in self.variants:
                variants = f"; the suite's variants: {', '.join(self.variants)}" if self.variants else ""
                raise _fail(where, f"unknown architecture {a!r}; registered: {', '.join(self.archs)}{variants}")
        return list(values)

    def registered(self, arch: str) -> str:
        """The registered architecture that `arch` (a name or a variant) builds."""
        return self.variants.get(arch, arch)

    def modes_ok(self, values: list[str], where: str) -> list[str]:
        for m in values:
            if m not in FLOSSING_MODES:
                raise _fail(where, f"unknown flossing mode {m!r}; allowed: {', '.join(FLOSSING_MODES)}")
        return list(values)

    def task_ok(self, name: Any, where: str) -> str:
        if name is None:
            raise _fail(where, f"missing; registered tasks: {', '.join(self.tasks)}")
        if not isinstance(name, str) or name not in self.tasks:
            raise _fail(where, f"unknown task {name!r}; registered: {', '.join(self.tasks)}")
        return name


def parse_suite(
    raw: dict,
    *,
    name: str,
    seeds: int | None = None,
    archs: Sequence[str] | None = None,
    tasks: Sequence[str] | None = None,
    plugins: Sequence[str] = (),
    validate_models: bool = True,
) -> Suite:
    """Validate a parsed suite table and expand it into `RunSpec`s."""
    from zoo.flossing import FlossingConfig

    _check_keys(raw, _field_names(SuiteFile), name)
    plugin_list = list(plugins)
    if "plugins" in raw:
        plugin_list = _string_list(raw["plugins"], f"{name}.plugins") + plugin_list
    import_plugins(plugin_list)
    names = _Names()

    description = raw.get("description", "")
    if not isinstance(description, str):
        raise _fail(f"{name}.description", f"must be a string, got {description!r}")
    n_seeds = _positive_int(seeds if seeds is not None else raw.get("seeds", 1),
                            "--seeds" if seeds is not None else f"{name}.seeds")
    recipes_raw = raw.get("archs", names.archs)
    if isinstance(recipes_raw, dict):  # [archs.NAME] tables: the names and each one's recipe
        if not recipes_raw:
            raise _fail(f"{name}.archs", "needs at least one [archs.NAME] table (or a list of names)")
        recipes = {a: _table(v, f"{name}.archs.{a}") for a, v in recipes_raw.items()}
        names.variants = _variants(recipes, names.archs, f"{name}.archs")
        suite_archs = names.archs_ok(list(recipes), f"{name}.archs")
    else:
        recipes = {}
        suite_archs = names.archs_ok(_string_list(recipes_raw, f"{name}.archs"), f"{name}.archs")
    suite_modes = names.modes_ok(_string_list(raw.get("flossing", ["none"]), f"{name}.flossing"),
                                 f"{name}.flossing")
    if archs is not None:
        names.archs_ok(list(archs), "--archs")
    for t in tasks or ():
        if t not in names.tasks:
            raise _fail("--tasks", f"unknown task {t!r}; registered: {', '.join(names.tasks)}")

    experiments = raw.get("experiments")
    if not isinstance(experiments, list) or not experiments:
        raise _fail(f"{name}.experiments", "needs at least one [[experiments]] table with a task and horizons")
    tuning = None
    if "tuning" in raw:
        exp_tasks = sorted({e["task"] for e in experiments if isinstance(e, dict) and isinstance(e.get("task"), str)})
        tuning = parse_tuning(raw["tuning"], f"{name}.tuning", reported_seeds=n_seeds, tasks=exp_tasks,
                              modes=suite_modes)

    bracket = parse_bracket(raw["bracket"], f"{name}.bracket") if "bracket" in raw else None

    defaults = _table(raw.get("defaults", {}), f"{name}.defaults")
    _check_keys(defaults, _field_names(TrainSettings), f"{name}.defaults")
    # The tuned protocol stops on, and tunes on, the validation split.
    start = TrainSettings(eval_split="validation") if tuning else TrainSettings()
    base_train, base_lr = _train_settings(defaults, start, f"{name}.defaults")
    names.archs_ok(list(base_lr), f"{name}.defaults.lr")
    if tuning:
        _no_lr_with_tuning(defaults, f"{name}.defaults")

    floss_table = _table(raw.get("flossing_config", {}), f"{name}.flossing_config")
    _check_keys(floss_table, _field_names(FlossingConfig), f"{name}.flossing_config")
    _build(FlossingConfig, floss_table, f"{name}.flossing_config")

    arch_options_all = _table(raw.get("arch_options", {}), f"{name}.arch_options")
    names.archs_ok(list(arch_options_all), f"{name}.arch_options")
    recipe_train, recipe_options, recipe_floss, recipe_modes = {}, {}, {}, {}
    for arch, recipe in recipes.items():
        where = f"{name}.archs.{arch}"
        recipe = {k: v for k, v in recipe.items() if k != "arch"}
        if "flossing_config" in recipe:  # this architecture's flossing dose, over the suite's
            own = _table(recipe.pop("flossing_config"), f"{where}.flossing_config")
            _check_keys(own, _field_names(FlossingConfig), f"{where}.flossing_config")
            _build(FlossingConfig, {**floss_table, **own}, f"{where}.flossing_config")
            recipe_floss[arch] = own
        if "flossing" in recipe:
            recipe_modes[arch] = names.modes_ok(_string_list(recipe.pop("flossing"), f"{where}.flossing"),
                                                f"{where}.flossing")
        recipe_train[arch], recipe_options[arch] = _split_recipe(names.registered(arch), recipe, where)
        if tuning:
            _no_lr_with_tuning(recipe, f"{name}.archs.{arch}")

    runs: list[RunSpec] = []
    tuning_runs: list[RunSpec] = []
    checked_models: set = set()
    for i, exp in enumerate(experiments):
        where = f"{name}.experiments[{i}]"
        exp = _table(exp, where)
        _check_keys(exp, {*_field_names(TrainSettings), *_field_names(Experiment)}, where)
        task_name = names.task_ok(exp.get("task"), f"{where}.task")
        horizons = _horizons(exp.get("horizons"), f"{where}.horizons")
        options = _table(exp.get("options", {}), f"{where}.options")
        if tuning:
            _no_lr_with_tuning(exp, where)
        train, lr_table = _train_settings(exp, base_train, where)
        names.archs_ok(list(lr_table), f"{where}.lr")
        lr_table = {**base_lr, **lr_table}
        exp_archs = names.archs_ok(_string_list(exp.get("archs", suite_archs), f"{where}.archs"), f"{where}.archs")
        if archs is not None:  # --archs replaces the suite's list, so plugin architectures can join
            exp_archs = list(archs)
        exp_modes = names.modes_ok(_string_list(exp.get("flossing", suite_modes), f"{where}.flossing"),
                                   f"{where}.flossing")
        exp_arch_options = {**arch_options_all, **_table(exp.get("arch_options", {}), f"{where}.arch_options")}
        names.archs_ok(list(exp_arch_options), f"{where}.arch_options")
        if tasks is not None and task_name not in tasks:
            continue

        settings = {}  # arch -> (TrainSettings before any param_budget, architecture options)
        for arch in exp_archs:
            arch_train = dataclasses.replace(train, lr=lr_table.get(arch, train.lr))
            arch_train = _build(TrainSettings, recipe_train.get(arch, {}), f"{name}.archs.{arch}", arch_train)
            if tuning and arch_train.eval_split != "validation":
                raise _fail(f"{where}: {arch}.eval_split", "must be 'validation' in a suite with [tuning] "
                                                           "(tuning and early stopping never read the test split)")
            arch_opts = {**recipe_options.get(arch, {}),
                         **_table(exp_arch_options.get(arch, {}), f"{where}.arch_options.{arch}")}
            settings[arch] = (arch_train, arch_opts)

        def expand(horizon, seeds, lrs=(None,), only_modes=None):
            task = _checked_task(task_name, horizon, options, where)
            out = []
            for arch in exp_archs:
                arch_train, arch_opts = settings[arch]
                if arch_train.param_budget and task is not None:
                    arch_train = _with_budget(names.registered(arch), arch_train, arch_opts, task,
                                              f"{where}: {arch}.param_budget")
                floss_options = tuple(sorted({**floss_table, **recipe_floss.get(arch, {})}.items()))
                for mode in [m for m in exp_modes if m in recipe_modes.get(arch, exp_modes)
                             and (only_modes is None or m in only_modes)]:
                    for lr in lrs:
                        for seed in seeds:
                            out.append(RunSpec(
                                suite=name, arch=arch, task=task_name, horizon=horizon, flossing=mode, seed=seed,
                                train=arch_train if lr is None else dataclasses.replace(arch_train, lr=lr),
                                task_options=tuple(sorted(options.items())),
                                arch_options=tuple(sorted(arch_opts.items())),
                                flossing_options=floss_options if mode != "none" else (),
                                architecture=names.variants.get(arch, ""),
                            ))
            if validate_models and task is not None:
                for spec in out:
                    key = (spec.registered_arch, json.dumps(dict(spec.arch_options), sort_keys=True),
                           spec.train.hidden_size, tuple(spec.train.model_options.items()), task.input_size,
                           task.output_size)
                    if key not in checked_models:
                        check_model(spec.registered_arch, dict(spec.arch_options), spec.train.hidden_size, task,
                                    f"{where}.arch_options.{spec.arch}", model_options=spec.train.model_options)
                        checked_models.add(key)
            return out

        for horizon in horizons:
            runs.extend(expand(horizon, range(n_seeds)))
        if tuning:
            chosen_at = tuning_horizons(tuning, task_name)
            at = horizons if chosen_at is None else _horizons(chosen_at, f"{name}.tuning.horizons")
            for horizon in at:
                tuning_runs.extend(expand(horizon, tuning.seeds, tuning.lrs, tuning.flossing))
    if not runs:
        raise ConfigError(f"{name}: the filters leave no run to do")
    if archs is not None:  # --archs gave experiments that split the architectures the same list: one run each
        seen: set[str] = set()
        runs = [r for r in runs if not (r.run_id in seen or seen.add(r.run_id))]
    ids = [r.run_id for r in runs]
    if len(set(ids)) != len(ids):
        raise ConfigError(f"{name}: two experiments describe the same run; remove the duplicate horizons")
    tuning_runs = list({r.run_id: r for r in tuning_runs}.values())  # experiments may share tuning horizons
    return Suite(name=name, description=description, runs=tuple(runs), plugins=tuple(plugin_list),
                 tuning=tuple(tuning_runs), bracket=bracket)


def _horizons(value: Any, where: str) -> list:
    """An experiment's horizons: a non-empty list of numbers, or {from, to, count} (geometric;
    integers when from and to are, as delays are)."""
    from zoo.bench.stats import horizon_grid

    if isinstance(value, dict):
        integer = all(isinstance(value.get(k), int) and not isinstance(value.get(k), bool) for k in ("from", "to"))
        try:
            return horizon_grid(value, integer=integer)
        except (TypeError, ValueError) as e:
            raise _fail(where, one_line(e)) from None
    if not isinstance(value, list) or not value:
        raise _fail(where, f"must be a non-empty list of numbers or {{from, to, count}}, got {value!r}")
    for h in value:  # the task checks its own range (mnist1d allows 0 blank steps)
        _positive_number(h, where, allow_zero=True)
    return value


def _no_lr_with_tuning(table: dict, where: str) -> None:
    if "lr" in table:
        raise _fail(f"{where}.lr", "with [tuning] the learning rate is chosen from tuning.lrs; remove lr here")


def _architecture_options(arch: str) -> list[str] | None:
    """The keyword options the architecture's factory takes (None: any, it has **options)."""
    from zoo.architectures.registry import ARCHITECTURES

    factory = ARCHITECTURES.get(arch)
    try:  # a class's own __init__ (nnx's metaclass hides it behind *args, **kwargs)
        params = inspect.signature(factory.__init__ if inspect.isclass(factory) else factory).parameters.values()
    except (TypeError, ValueError):
        return None
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return None
    fixed = {"self", "input_size", "hidden_size", "output_size", "rngs"}
    return [p.name for p in params if p.name not in fixed and p.kind is not inspect.Parameter.VAR_POSITIONAL]


def _variants(recipes: dict, registered: list[str], where: str) -> dict[str, str]:
    """The named variants among [archs.NAME] recipes: {name: the registered `arch` it builds}."""
    variants = {}
    for name, recipe in recipes.items():
        if "arch" not in recipe:
            continue
        base = recipe["arch"]
        if not isinstance(base, str) or base not in registered:
            raise _fail(f"{where}.{name}.arch", f"must name a registered architecture "
                                                f"({', '.join(registered)}), got {base!r}")
        if name in registered:
            raise _fail(f"{where}.{name}.arch", f"{name!r} is a registered architecture; "
                                                f"give the variant of {base!r} a name of its own")
        variants[name] = base
    return variants


def _split_recipe(arch: str, recipe: dict, where: str) -> tuple[dict, dict]:
    """An [archs.NAME] table as (TrainSettings keys, architecture options), unknown keys refused."""
    train_keys = _field_names(TrainSettings)
    options = _architecture_options(arch)
    if options is not None:
        _check_keys(recipe, {*train_keys, *options}, where)
    train = {k: v for k, v in recipe.items() if k in train_keys}
    if isinstance(train.get("lr"), dict):
        raise _fail(f"{where}.lr", f"must be a number (the recipe is {arch}'s own), got {train['lr']!r}")
    return train, {k: v for k, v in recipe.items() if k not in train_keys}


def _with_budget(arch: str, train: TrainSettings, options: dict, task, where: str) -> TrainSettings:
    """`train` with the hidden size whose parameter count is within 10% of its param_budget."""
    from zoo.architectures.stack import hidden_size_for_budget

    try:
        size = hidden_size_for_budget(
            arch, train.param_budget, input_size=task.input_size, output_size=task.output_size,
            options=options, **train.model_options,
        )
    except (TypeError, ValueError) as e:
        raise _fail(where, one_line(e)) from None
    return dataclasses.replace(train, hidden_size=size)


def _checked_task(task: str, horizon: Any, options: dict, where: str):
    """The task at `horizon`, built to validate its horizon and options (None: its data is unavailable)."""
    import tasks as task_registry

    probe = RunSpec(suite="", arch="", task=task, horizon=horizon, flossing="none", seed=0, train=TrainSettings(),
                    task_options=tuple(sorted(options.items())))
    try:
        return build_task(probe)
    except task_registry.DatasetUnavailable:
        return None  # its runs are recorded as skipped, with the reason, when the suite runs
    except TypeError as e:  # an unknown keyword
        raise _fail(f"{where}.options", f"{task}: {e}") from None
    except ValueError as e:
        raise _fail(where, str(e)) from None


def check_model(arch: str, options: dict, hidden_size: int, task, where: str, *,
                model_options: dict | None = None) -> None:
    """Build the model once (a stack with `model_options`) and check it keeps the architecture contract.

    The model is built abstractly (`nnx.eval_shape`: shapes only) where its initialisers allow,
    so checking a suite of many (architecture, task) pairs compiles nothing; one that computes on
    the host (the dense linear RNN, S5, a plugin's numpy code) is built for real.
    """
    import jax
    import jax.numpy as jnp
    from flax import nnx

    from zoo.architectures.stack import build_abstractly, create_model

    try:
        model = build_abstractly(lambda: create_model(
            arch, input_size=task.input_size, hidden_size=hidden_size,
            output_size=task.output_size, rngs=nnx.Rngs(0), **(model_options or {}), **options,
        ))
    except (TypeError, ValueError) as e:
        raise _fail(where, f"{arch}: {one_line(e)}") from None
    except Exception as e:  # noqa: BLE001  (a plugin's constructor may raise anything)
        raise _fail(where, f"{arch}: building the model failed: {type(e).__name__}: {one_line(e)}") from None
    size = getattr(model, "state_size", None)
    if isinstance(size, bool) or not isinstance(size, int) or size <= 0:
        raise _fail(where, f"{arch}: model.state_size must be a positive int, got {size!r}")
    # The state enters as an argument (shapes, or arrays of a real build), so an abstract model
    # traces like a real one.
    graphdef, state = nnx.split(model)

    def call(method, *args):
        return jax.eval_shape(lambda st, *a: method(nnx.merge(graphdef, st), *a), state, *args)

    try:
        h = call(lambda m, h, x: m.transition(h, x), jax.ShapeDtypeStruct((size,), jnp.float32),
                 jax.ShapeDtypeStruct((task.input_size,), jnp.float32))
    except Exception as e:  # noqa: BLE001
        raise _fail(where, f"{arch}: transition(h, x) failed on h of shape ({size},): "
                           f"{type(e).__name__}: {one_line(e)}") from None
    if getattr(h, "shape", None) != (size,):
        raise _fail(where, f"{arch}: transition(h, x) must return shape ({size},), "
                           f"got {getattr(h, 'shape', type(h).__name__)}")
    try:
        y = call(lambda m, x: m(x), jax.ShapeDtypeStruct((2, 3, task.input_size), jnp.float32))
    except Exception as e:  # noqa: BLE001
        raise _fail(where, f"{arch}: the model failed on inputs of shape (2, 3, {task.input_size}): "
                           f"{type(e).__name__}: {one_line(e)}") from None
    if getattr(y, "shape", None) != (2, 3, task.output_size):
        raise _fail(where, f"{arch}: model maps (2, 3, {task.input_size}) to {getattr(y, 'shape', None)}, "
                           f"expected (2, 3, {task.output_size})")
