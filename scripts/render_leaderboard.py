#!/usr/bin/env python
"""Render OUT_DIR/leaderboard.html to OUT_DIR/leaderboard.png with headless Chromium.

Also dumps the DOM after scripts ran and checks the page's JS marker, so a CI step can tell
both "it looks right" (the PNG, for a human) and "the inline JS executed" (exit status).

    python scripts/render_leaderboard.py leaderboard/long_horizon [--width 1400 --height 1800]

Chromium on Debian: ``apt-get install -y chromium`` (see .ci/install_chromium.sh).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

JS_MARKER = 'data-leaderboard-js="ready"'
_CANDIDATES = ["chromium", "chromium-browser", "google-chrome", "google-chrome-stable"]
_FALLBACK_PATHS = ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
# No network, no first-run UI, no background services: the page must render from disk alone.
_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
]


class ChromiumNotFound(RuntimeError):
    pass


def find_chromium() -> str | None:
    """Path of a Chromium/Chrome binary: $CHROMIUM, then PATH, then /usr/bin; None if absent."""
    env = os.environ.get("CHROMIUM")
    if env and Path(env).is_file():
        return env
    for name in _CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    return next((p for p in _FALLBACK_PATHS if Path(p).is_file()), None)


def _require_chromium() -> str:
    exe = find_chromium()
    if exe is None:
        raise ChromiumNotFound(
            "chromium not found on PATH or at /usr/bin/chromium; install it with "
            "`apt-get update && apt-get install -y chromium` (or run .ci/install_chromium.sh), "
            "or point $CHROMIUM at a Chrome/Chromium binary"
        )
    return exe


def _run_chromium(extra: list[str], url: str, timeout: float) -> subprocess.CompletedProcess:
    # A throwaway profile per call: parallel calls must not fight over one profile lock.
    with tempfile.TemporaryDirectory(prefix="lb-chromium-") as profile:
        cmd = [_require_chromium(), *_FLAGS, f"--user-data-dir={profile}", *extra, url]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)


def screenshot(html: Path, png: Path, *, width: int = 1400, height: int = 1800, timeout: float = 90) -> Path:
    """Write a PNG of the page at the given window size; raises if Chromium produced nothing."""
    png = Path(png).resolve()
    png.unlink(missing_ok=True)
    proc = _run_chromium(
        [f"--screenshot={png}", f"--window-size={width},{height}"], Path(html).resolve().as_uri(), timeout
    )
    if not png.exists() or png.stat().st_size == 0:
        raise RuntimeError(f"chromium wrote no screenshot (rc={proc.returncode}):\n{proc.stderr[-2000:]}")
    return png


def dump_dom(html: Path, *, timeout: float = 90) -> str:
    """The serialised DOM after the page's scripts ran (what the JS left behind)."""
    # The virtual time budget lets load handlers finish before the DOM is dumped.
    proc = _run_chromium(["--dump-dom", "--virtual-time-budget=3000"], Path(html).resolve().as_uri(), timeout)
    if proc.returncode != 0 or not proc.stdout.strip():
        raise RuntimeError(f"chromium --dump-dom failed (rc={proc.returncode}):\n{proc.stderr[-2000:]}")
    return proc.stdout


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out_dir", type=Path, help="folder holding leaderboard.html")
    ap.add_argument("--width", type=int, default=1400)
    ap.add_argument("--height", type=int, default=1800)
    args = ap.parse_args(argv)
    html = args.out_dir / "leaderboard.html"
    if not html.is_file():
        print(f"error: {html} does not exist (run the suite or write_leaderboard first)", file=sys.stderr)
        return 2
    try:
        png = screenshot(html, args.out_dir / "leaderboard.png", width=args.width, height=args.height)
        dom = dump_dom(html)
    except ChromiumNotFound as err:
        print(f"error: {err}", file=sys.stderr)
        return 3
    if JS_MARKER not in dom:
        print(f"error: the page's JS did not run ({JS_MARKER} missing from the DOM dump)", file=sys.stderr)
        return 1
    panels = dom.count('<svg class="panel"')
    print(f"wrote {png} ({png.stat().st_size} bytes); JS ran: yes; svg panels: {panels}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
