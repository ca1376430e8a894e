#!/usr/bin/env bash
# Headless Chromium and ChromeDriver (Debian's packages) for the web page's browser test, when missing.
# Without root or sudo it says so and leaves it: the browser test then skips, except in CI (.ci/run), where
# IMCAPTION_REQUIRE_BROWSER=1 makes a missing browser a failure.
set -uo pipefail
if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then
    exit 0
fi
if [ "$(id -u)" = 0 ]; then
    run=()
elif sudo -n true 2>/dev/null; then
    run=(sudo -n)
else
    echo "note: chromium/chromedriver missing and no root to install them; the browser test will skip" >&2
    exit 0
fi
echo "installing chromium and chromium-driver (apt) for the browser test"
"${run[@]}" apt-get update -qq && DEBIAN_FRONTEND=noninteractive "${run[@]}" apt-get install -y -qq chromium chromium-driver >/dev/null \
    || echo "note: could not install chromium; the browser test will skip" >&2
exit 0
