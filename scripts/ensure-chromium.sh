#!/usr/bin/env bash
# The browser tests drive Debian's Chromium (test/browser.ts). Installs it when it is missing and this
# is a Debian machine where we are root; otherwise says what to do and lets the other tests run (the
# browser tests then fail, saying the same). Nothing else downloads a browser.
set -euo pipefail
browser="${PAYCODE_CHROMIUM:-/usr/bin/chromium}"
[ -x "$browser" ] && exit 0
if [ -n "${PAYCODE_CHROMIUM:-}" ] || [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
  echo "The browser tests need Chromium at $browser: as root run apt-get install chromium, or set PAYCODE_CHROMIUM." >&2
  exit 0
fi
echo "Installing Debian's chromium for the browser tests" >&2
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null
