#!/usr/bin/env bash
# Install Debian's chromium for the headless leaderboard rendering test
# (tests/test_leaderboard.py::test_renders_in_headless_chromium, scripts/render_leaderboard.py).
# Idempotent: does nothing when a chromium is already present. Never fails the CI job: without
# chromium the browser test is skipped with a reason, so a failed install is only a warning.
set -u

have_chromium() {
    command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 \
        || [ -x /usr/bin/chromium ]
}

if have_chromium; then
    echo "install_chromium: already installed: $(command -v chromium || command -v chromium-browser || echo /usr/bin/chromium)"
    exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then SUDO="sudo -n"; else
        echo "install_chromium: WARNING: not root and no sudo; skipping (browser test will be skipped)" >&2
        exit 0
    fi
fi

if ! command -v apt-get >/dev/null 2>&1; then
    echo "install_chromium: WARNING: apt-get not available; skipping (browser test will be skipped)" >&2
    exit 0
fi

export DEBIAN_FRONTEND=noninteractive
if $SUDO apt-get update -q && $SUDO apt-get install -y -q --no-install-recommends chromium; then
    echo "install_chromium: installed $(command -v chromium || echo chromium)"
elif $SUDO apt-get install -y -q --no-install-recommends chromium-browser; then
    echo "install_chromium: installed chromium-browser"
else
    echo "install_chromium: WARNING: could not install chromium; the browser test will be skipped" >&2
fi
exit 0
