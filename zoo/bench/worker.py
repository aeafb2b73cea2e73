"""Setting up a process that runs runs: the CLI's, a --workers process, a Ray worker.

One function, `setup_worker`, so every executor's processes run with the same warnings
filters, the same compilation cache and the same plugins as the command that started them.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import sys
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path

from zoo.bench.errors import ConfigError, one_line

CACHE_ENV = "ZOO_COMPILATION_CACHE"  # a folder, or "" to turn the on-disk compilation cache off


def quiet_libraries() -> None:
    """Library warnings (orbax, absl) would bury the progress lines; ours are UserWarnings."""
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.formatwarning = lambda msg, cat, *a, **k: f"warning: {msg}\n"
    logging.getLogger("absl").setLevel(logging.ERROR)


@contextlib.contextmanager
def absl_quiet() -> Iterator[None]:
    """Silence absl's WARNING lines (orbax, tfds) about things the user did not ask for, for a moment."""
    logger = logging.getLogger("absl")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def compilation_cache_dir() -> str:
    """$ZOO_COMPILATION_CACHE, else ~/.cache/rnn-zoo/xla; "" means off."""
    default = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "rnn-zoo" / "xla"
    return os.environ.get(CACHE_ENV, str(default))


def use_compilation_cache(path: str | None) -> None:
    """Keep compiled XLA programs in `path`, so reruns, resumes and worker processes skip compiling."""
    if path:
        import jax

        jax.config.update("jax_compilation_cache_dir", path)
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.1)


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
            raise ConfigError(f"plugin {module!r} cannot be imported: {one_line(e)}") from None
        except Exception as e:  # noqa: BLE001  (the plugin's own code failed while importing)
            raise ConfigError(
                f"plugin {module!r} failed while importing: {type(e).__name__}: {one_line(e)}"
            ) from None


def setup_worker(plugins: Sequence[str], cache_dir: str | None) -> None:
    """Everything a process needs before it runs runs: quiet libraries, the cache, the plugins."""
    quiet_libraries()
    use_compilation_cache(cache_dir)
    import_plugins(plugins)
