#!/usr/bin/env bash
# The browser test drives Debian's chromium (npx playwright install cannot work offline).
# Installs it when missing and we may (root with apt-get); otherwise says what to do.
set -euo pipefail
if [ -x /usr/bin/chromium ] || [ -n "${REWARDLAB_CHROMIUM:-}" ]; then exit 0; fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null; then
  echo "installing Debian's chromium for the browser test..." >&2
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
else
  echo "the browser test needs chromium at /usr/bin/chromium: sudo apt-get install chromium (or set REWARDLAB_CHROMIUM to a chromium binary)" >&2
  exit 1
fi
