#!/usr/bin/env bash
# Installs Debian's Chromium (and a font, so screenshots show text) for the browser tests (tests/browser/).
#
# Idempotent and quick when Chromium is already there. It never fails the build: when apt is missing,
# we are not root, or the install fails, it says so and exits 0, and the browser tests then report a
# skip with the reason (set MMV_REQUIRE_BROWSER=1 to make that a failure instead).
# `playwright install` is not used: it downloads its own browser build from a CDN, which offline CI cannot reach.
set -uo pipefail

CHROMIUM="${MMV_CHROMIUM:-/usr/bin/chromium}"

if [ -x "$CHROMIUM" ] && "$CHROMIUM" --headless --no-sandbox --version >/dev/null 2>&1; then
  echo "browser: $("$CHROMIUM" --headless --no-sandbox --version 2>/dev/null) already installed at $CHROMIUM"
  exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
  echo "browser: apt-get not found; cannot install chromium, the browser tests will be skipped" >&2
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true >/dev/null 2>&1; then
    SUDO="sudo -n"
  else
    echo "browser: not root and no password-less sudo; cannot install chromium, the browser tests will be skipped" >&2
    exit 0
  fi
fi

echo "browser: installing chromium with apt-get"
export DEBIAN_FRONTEND=noninteractive
if ! $SUDO apt-get update -qq; then
  echo "browser: apt-get update failed; the browser tests will be skipped" >&2
  exit 0
fi
if ! $SUDO apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null; then
  echo "browser: apt-get install chromium failed; the browser tests will be skipped" >&2
  exit 0
fi

if [ -x "$CHROMIUM" ]; then
  echo "browser: installed $("$CHROMIUM" --headless --no-sandbox --version 2>/dev/null)"
else
  echo "browser: chromium was installed but $CHROMIUM is missing; the browser tests will be skipped" >&2
fi
exit 0
