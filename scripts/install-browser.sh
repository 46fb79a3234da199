#!/usr/bin/env bash
# Headless Chromium for the UI test (tests/e2e/test_ui.py), from Debian's packages.
# Idempotent: does nothing when the browser is already there. Installs only as root
# (CI and the project machines); otherwise it says what to run.
set -euo pipefail

BROWSER=${CHROMIUM:-/usr/bin/chromium}

if [ -x "$BROWSER" ]; then
    echo "install-browser: $BROWSER already present ($("$BROWSER" --version 2>/dev/null || echo 'version unknown'))"
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "install-browser: $BROWSER is missing and this is not root; run: sudo apt-get install chromium" >&2
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-browser: $BROWSER is missing and apt-get is not available; install Chromium by hand" >&2
    exit 0
fi
echo "install-browser: installing chromium with apt-get"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null
echo "install-browser: installed $("$BROWSER" --version 2>/dev/null || echo "$BROWSER")"
