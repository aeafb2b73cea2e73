"""Suites as data: parse and validate `bench_configs/NAME.toml`, expand it into runs.

A suite file looks like::

    description = "..."
    seeds = 5
    archs = ["rnn", "gru"]
    flossing = ["none", "pre"]
    plugins = ["my_arch"]            # optional: modules whose decorators register things

    [defaults]                       # training settings, overridable per experiment
    hidden_size = 32
    steps = 1000
    lr = 1e-3                        # or a table per architecture: { rnn = 1e-3, lru = 3e-3 }

    [flossing_config]                # overrides of zoo.flossing.FlossingConfig
    pre_steps = 100

    [[experiments]]
    task = "delayed_copy"
    horizons = [5, 10, 20]
    options = { seq_len = 100 }      # task options

Everything is checked before anything runs; a mistake is a `ConfigError` whose
one-line message names the field and what is allowed.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
import json
import math
import sys
import tomllib
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

CONFIG_DIR = Path(__file__).resolve().parents[2] / "bench_configs"
FLOSSING_MODES = ("none", "pre", "pre+during")
_FLOSS_ZERO_OK = {"warmup", "pre_steps", "during_steps", "during_times"}  # 0 means none


class ConfigError(ValueError):
    """A suite that cannot run; the message is one line for the user."""


@dataclasses.dataclass(frozen=True)
class TrainSettings:
    """How one run trains (the `[defaults]` table, overridable per experiment)."""

    hidden_size: int = 32
    steps: int = 1000
    lr: float = 1e-3
    eval_every: int = 50
    clip: float = 0.03  # per-array gradient-norm clipping, as in the flossing paper; 0 = off
    checkpoint_every: int = 4  # evaluations between checkpoints


_TRAIN_FIELDS = {f.name: f for f in dataclasses.fields(TrainSettings)}


@dataclasses.dataclass(frozen=True)
class RunSpec:
    """One (architecture, task, horizon, flossing mode, seed) and everything it trains with."""

    suite: str
    arch: str
    task: str
    horizon: float
    flossing: str
    seed: int
    train: TrainSettings
    task_options: tuple[tuple[str, Any], ...] = ()
    arch_options: tuple[tuple[str, Any], ...] = ()
    flossing_options: tuple[tuple[str, Any], ...] = ()

    @property
    def run_id(self) -> str:
        """Readable and unique: a config change gives a new id, so stale results are never reused."""
        digest = hashlib.sha1(
            json.dumps(self.config_dict(), sort_keys=True, default=str).encode()
        ).hexdigest()[:8]
        return f"{self.arch}-{self.task}-h{self.horizon:g}-{self.flossing}-s{self.seed}-{digest}"

    def config_dict(self) -> dict[str, Any]:
        """Everything that determines the run's result (the suite name does not)."""
        d = dataclasses.asdict(self)
        del d["suite"]
        return d


@dataclasses.dataclass(frozen=True)
class Suite:
    """A validated suite: its name, description and the runs it expands to."""

    name: str
    description: str
    runs: tuple[RunSpec, ...]
    plugins: tuple[str, ...] = ()


# --------------------------------------------------------------------------- helpers


def _fail(where: str, message: str) -> ConfigError:
    return ConfigError(f"{where}: {message}")


def _check_keys(table: dict, allowed: Iterable[str], where: str) -> None:
    allowed = sorted(allowed)
    for key in table:
        if key not in allowed:
            raise _fail(where, f"unknown key {key!r}; allowed: {', '.join(allowed)}")


MAX_INT = 2**31 - 1  # steps are folded into PRNG keys and scanned over as int32


def _positive_int(value: Any, where: str, *, allow_zero: bool = False) -> int:
    ok = isinstance(value, int) and not isinstance(value, bool)
    if not ok or not (0 if allow_zero else 1) <= value <= MAX_INT:
        bound = "a non-negative" if allow_zero else "a positive"
        raise _fail(where, f"must be {bound} integer (at most {MAX_INT}), got {value!r}")
    return value


def _positive_number(value: Any, where: str, *, allow_zero: bool = False) -> float:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not ok or not math.isfinite(value) or not (value >= 0 if allow_zero else value > 0):
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


def import_plugins(modules: Sequence[str]) -> None:
    """Import user modules (from the current directory or sys.path) so their decorators register."""
    if "" not in sys.path and "." not in sys.path:
        sys.path.insert(0, "")  # `python -m` already does this; keep it for library callers
    for module in modules:
        if not isinstance(module, str) or not module:
            raise ConfigError(f"plugin {module!r}: must be a module name such as my_arch or pkg.my_arch")
        try:
            importlib.import_module(module)
        except ImportError as e:
            raise ConfigError(f"plugin {module!r} cannot be imported: {_one_line(e)}") from None
        except Exception as e:  # noqa: BLE001  (the plugin's own code failed while importing)
            raise ConfigError(
                f"plugin {module!r} failed while importing: {type(e).__name__}: {_one_line(e)}"
            ) from None


def _one_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


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
    """Names of the suites shipped in bench_configs/."""
    return sorted(p.stem for p in CONFIG_DIR.glob("*.toml"))


# --------------------------------------------------------------------------- parsing


def _train_settings(table: dict, base: TrainSettings, where: str) -> tuple[TrainSettings, dict]:
    """Train fields from `table` over `base`; per-arch `lr` tables are returned separately."""
    values: dict[str, Any] = {}
    lr_per_arch: dict[str, float] = {}
    for key, value in table.items():
        if key not in _TRAIN_FIELDS:
            continue
        field_where = f"{where}.{key}"
        if key == "lr" and isinstance(value, dict):
            if not value:
                raise _fail(field_where, "must be a number or a table {arch = number, ...}, got {}")
            lr_per_arch = {a: _positive_number(v, f"{field_where}.{a}") for a, v in value.items()}
        elif key == "clip":
            values[key] = _positive_number(value, field_where, allow_zero=True)
        elif key == "lr":
            values[key] = _positive_number(value, field_where)
        else:
            values[key] = _positive_int(value, field_where)
    return dataclasses.replace(base, **values), lr_per_arch


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
    import tasks as task_registry  # noqa: PLC0415  (heavy imports only once a suite is loaded)
    import zoo
    from zoo.flossing import FlossingConfig

    top_keys = {"description", "seeds", "archs", "flossing", "plugins", "defaults",
                "flossing_config", "experiments", "arch_options"}
    _check_keys(raw, top_keys, name)

    plugin_list = list(plugins)
    if "plugins" in raw:
        plugin_list = _string_list(raw["plugins"], f"{name}.plugins") + plugin_list
    import_plugins(plugin_list)

    description = raw.get("description", "")
    if not isinstance(description, str):
        raise _fail(f"{name}.description", f"must be a string, got {description!r}")
    n_seeds = _positive_int(seeds if seeds is not None else raw.get("seeds", 1),
                            "--seeds" if seeds is not None else f"{name}.seeds")

    known_archs = zoo.list_architectures()
    known_tasks = task_registry.list_tasks()

    def check_archs(values: list[str], where: str) -> list[str]:
        for a in values:
            if a not in known_archs:
                raise _fail(where, f"unknown architecture {a!r}; registered: {', '.join(known_archs)}")
        return values

    def check_modes(values: list[str], where: str) -> list[str]:
        for m in values:
            if m not in FLOSSING_MODES:
                raise _fail(where, f"unknown flossing mode {m!r}; allowed: {', '.join(FLOSSING_MODES)}")
        return values

    suite_archs = check_archs(_string_list(raw.get("archs", known_archs), f"{name}.archs"), f"{name}.archs")
    suite_modes = check_modes(_string_list(raw.get("flossing", ["none"]), f"{name}.flossing"), f"{name}.flossing")
    if archs is not None:
        check_archs(list(archs), "--archs")
    if tasks is not None:
        for t in tasks:
            if t not in known_tasks:
                raise _fail("--tasks", f"unknown task {t!r}; registered: {', '.join(known_tasks)}")

    defaults_table = _table(raw.get("defaults", {}), f"{name}.defaults")
    _check_keys(defaults_table, _TRAIN_FIELDS, f"{name}.defaults")
    base_train, base_lr = _train_settings(defaults_table, TrainSettings(), f"{name}.defaults")
    check_archs(list(base_lr), f"{name}.defaults.lr")

    floss_table = _table(raw.get("flossing_config", {}), f"{name}.flossing_config")
    floss_fields = {f.name: f for f in dataclasses.fields(FlossingConfig)}
    _check_keys(floss_table, floss_fields, f"{name}.flossing_config")
    for key, value in floss_table.items():
        default = getattr(FlossingConfig(), key)
        where = f"{name}.flossing_config.{key}"
        if isinstance(default, bool):
            if not isinstance(value, bool):
                raise _fail(where, f"must be true or false, got {value!r}")
        elif isinstance(default, int):
            _positive_int(value, where, allow_zero=key in _FLOSS_ZERO_OK)
        elif key == "target":
            ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
            if not ok:
                raise _fail(where, f"must be a finite number, got {value!r}")
        elif isinstance(default, float):  # FlossingConfig checks the ranges below
            _positive_number(value, where, allow_zero=key == "trajectory_gradient")
    try:
        FlossingConfig(**floss_table)
    except (TypeError, ValueError) as e:
        raise _fail(f"{name}.flossing_config", str(e)) from None
    floss_options = tuple(sorted(floss_table.items()))

    arch_options_all = _table(raw.get("arch_options", {}), f"{name}.arch_options")
    check_archs(list(arch_options_all), f"{name}.arch_options")

    experiments = raw.get("experiments")
    if not isinstance(experiments, list) or not experiments:
        raise _fail(f"{name}.experiments", "needs at least one [[experiments]] table with a task and horizons")

    exp_keys = set(_TRAIN_FIELDS) | {"task", "horizons", "options", "archs", "flossing", "arch_options"}
    runs: list[RunSpec] = []
    checked_models: set = set()
    for i, exp in enumerate(experiments):
        where = f"{name}.experiments[{i}]"
        exp = _table(exp, where)
        _check_keys(exp, exp_keys, where)
        task_name = exp.get("task")
        if task_name is None:
            raise _fail(f"{where}.task", f"missing; registered tasks: {', '.join(known_tasks)}")
        if not isinstance(task_name, str) or task_name not in known_tasks:
            raise _fail(f"{where}.task", f"unknown task {task_name!r}; registered: {', '.join(known_tasks)}")
        horizons = exp.get("horizons")
        if not isinstance(horizons, list) or not horizons:
            raise _fail(f"{where}.horizons", f"must be a non-empty list of numbers, got {horizons!r}")
        for h in horizons:  # the task checks its own range (mnist1d allows 0 blank steps)
            _positive_number(h, f"{where}.horizons", allow_zero=True)
        options = _table(exp.get("options", {}), f"{where}.options")
        train, lr_table = _train_settings(exp, base_train, where)
        check_archs(list(lr_table), f"{where}.lr")
        lr_table = {**base_lr, **lr_table}
        exp_archs = check_archs(_string_list(exp.get("archs", suite_archs), f"{where}.archs"), f"{where}.archs")
        if archs is not None:  # --archs replaces the suite's list, so plugin architectures can join
            exp_archs = list(archs)
        exp_modes = check_modes(_string_list(exp.get("flossing", suite_modes), f"{where}.flossing"), f"{where}.flossing")
        exp_arch_options = {**arch_options_all, **_table(exp.get("arch_options", {}), f"{where}.arch_options")}
        check_archs(list(exp_arch_options), f"{where}.arch_options")
        if tasks is not None and task_name not in tasks:
            continue

        for horizon in horizons:
            task = _build_task(task_registry, task_name, horizon, options, where)
            for arch in exp_archs:
                arch_opts = _table(exp_arch_options.get(arch, {}), f"{where}.arch_options.{arch}")
                arch_train = dataclasses.replace(train, lr=lr_table.get(arch, train.lr))
                model_key = (arch, json.dumps(arch_opts, sort_keys=True), arch_train.hidden_size,
                             getattr(task, "input_size", None), getattr(task, "output_size", None))
                if validate_models and task is not None and model_key not in checked_models:
                    check_model(arch, arch_opts, arch_train.hidden_size, task, f"{where}.arch_options.{arch}")
                    checked_models.add(model_key)
                for mode in exp_modes:
                    for seed in range(n_seeds):
                        runs.append(RunSpec(
                            suite=name, arch=arch, task=task_name, horizon=horizon, flossing=mode,
                            seed=seed, train=arch_train,
                            task_options=tuple(sorted(options.items())),
                            arch_options=tuple(sorted(arch_opts.items())),
                            flossing_options=floss_options if mode != "none" else (),
                        ))
    if not runs:
        raise ConfigError(f"{name}: the filters leave no run to do")
    ids = [r.run_id for r in runs]
    if len(set(ids)) != len(ids):
        raise ConfigError(f"{name}: two experiments describe the same run; remove the duplicate horizons")
    return Suite(name=name, description=description, runs=tuple(runs), plugins=tuple(plugin_list))


def _build_task(task_registry, task_name: str, horizon: float, options: dict, where: str):
    """Instantiate a task to validate its horizon and options (None: its data is unavailable)."""
    if float(horizon).is_integer():
        horizon = int(horizon)
    try:
        return task_registry.create_task(task_name, horizon=horizon, **options)
    except task_registry.DatasetUnavailable:
        return None  # its runs are recorded as skipped, with the reason, when the suite runs
    except TypeError as e:  # an unknown keyword
        raise _fail(f"{where}.options", f"{task_name}: {e}") from None
    except ValueError as e:
        raise _fail(where, str(e)) from None


def check_model(arch: str, options: dict, hidden_size: int, task, where: str) -> None:
    """Build the model once and check it keeps the architecture contract."""
    import jax
    import jax.numpy as jnp
    from flax import nnx

    import zoo

    try:
        model = zoo.create_architecture(
            arch, input_size=task.input_size, hidden_size=hidden_size,
            output_size=task.output_size, rngs=nnx.Rngs(0), **options,
        )
    except (TypeError, ValueError) as e:
        raise _fail(where, f"{arch}: {_one_line(e)}") from None
    except Exception as e:  # noqa: BLE001  (a plugin's constructor may raise anything)
        raise _fail(where, f"{arch}: building the model failed: {type(e).__name__}: {_one_line(e)}") from None
    size = getattr(model, "state_size", None)
    if isinstance(size, bool) or not isinstance(size, int) or size <= 0:
        raise _fail(where, f"{arch}: model.state_size must be a positive int, got {size!r}")
    try:
        h = jax.eval_shape(model.transition, jax.ShapeDtypeStruct((size,), jnp.float32),
                           jax.ShapeDtypeStruct((task.input_size,), jnp.float32))
    except Exception as e:  # noqa: BLE001
        raise _fail(where, f"{arch}: transition(h, x) failed on h of shape ({size},): "
                           f"{type(e).__name__}: {_one_line(e)}") from None
    if getattr(h, "shape", None) != (size,):
        raise _fail(where, f"{arch}: transition(h, x) must return shape ({size},), "
                           f"got {getattr(h, 'shape', type(h).__name__)}")
    try:
        y = jax.eval_shape(model, jax.ShapeDtypeStruct((2, 3, task.input_size), jnp.float32))
    except Exception as e:  # noqa: BLE001
        raise _fail(where, f"{arch}: the model failed on inputs of shape (2, 3, {task.input_size}): "
                           f"{type(e).__name__}: {_one_line(e)}") from None
    if getattr(y, "shape", None) != (2, 3, task.output_size):
        raise _fail(where, f"{arch}: model maps (2, 3, {task.input_size}) to {getattr(y, 'shape', None)}, "
                           f"expected (2, 3, {task.output_size})")
