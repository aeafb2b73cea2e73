"""A non-editable `pip install .` finds the shipped suites and the page template (package data)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SKIP = {"runs", "leaderboard", ".venv", "build", ".git", "__pycache__", ".pytest_cache"}


@pytest.mark.slow
def test_an_installed_copy_finds_its_suites_and_page(tmp_path):
    source, target, elsewhere = tmp_path / "src", tmp_path / "site", tmp_path / "cwd"
    shutil.copytree(ROOT, source, ignore=lambda d, names: [n for n in names if n in SKIP or n.endswith(".egg-info")])
    done = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target),
                           str(source)], capture_output=True, text=True, timeout=600)
    if done.returncode != 0 and ("No matching distribution" in done.stderr or "bdist_wheel" in done.stderr):
        pytest.skip("no build backend available offline here: " + done.stderr.strip().splitlines()[-1])
    assert done.returncode == 0, done.stderr[-2000:]
    elsewhere.mkdir()
    probe = ("import zoo.bench as b, zoo.bench.suite as s; from zoo.bench.render import _asset; "
             "print(s.CONFIG_DIR); print(','.join(b.list_suites())); print(len(_asset('page.js')))")
    env = {**os.environ, "PYTHONPATH": str(target)}
    out = subprocess.run([sys.executable, "-c", probe], cwd=elsewhere, env=env, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    config_dir, suites, js = out.stdout.split()
    assert Path(config_dir).is_relative_to(target)
    assert set(suites.split(",")) == {p.stem for p in (ROOT / "bench_configs").glob("*.toml")}
    assert int(js) == len((ROOT / "zoo" / "bench" / "page" / "page.js").read_text())
