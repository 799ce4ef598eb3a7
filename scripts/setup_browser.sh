#!/usr/bin/env bash
# Install Debian's chromium (+ chromium-driver) for the console's headless browser tests.
# Idempotent: does nothing when /usr/bin/chromium is already there. Never downloads a browser
# build of its own (Playwright drives this system binary through executable_path).
set -euo pipefail

# a CJK font too, or the Chinese page renders as boxes in the screenshots
if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1 \
    && [ -e /usr/share/fonts/truetype/wqy/wqy-microhei.ttc ]; then
    echo "setup_browser: chromium present: $(command -v chromium)"
    exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO="sudo -n"
    else
        echo "setup_browser: not root and no sudo; install chromium chromium-driver by hand" >&2
        exit 1
    fi
fi

export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends chromium chromium-driver fonts-wqy-microhei >/dev/null
echo "setup_browser: installed $(command -v chromium)"
