#!/usr/bin/env bash
# System programs the tests need, from Debian's packages: chromium (the browser
# test drives it; `npx playwright install` cannot work offline) and
# redis-server (the sweep tests start their own on a loopback port).
# Installs what is missing when we may (root with apt-get); otherwise says what to do.
# REWARDLAB_CHROMIUM names another Chromium binary (the browser tests read the same variable).
set -euo pipefail
missing=()
chromium="${REWARDLAB_CHROMIUM:-/usr/bin/chromium}"
if [ -n "${REWARDLAB_CHROMIUM:-}" ] && [ ! -x "$chromium" ]; then
  echo "REWARDLAB_CHROMIUM=$chromium is not an executable file; point it at a Chromium binary, or unset it to use /usr/bin/chromium" >&2
  exit 1
fi
[ -x "$chromium" ] || missing+=(chromium)
command -v redis-server >/dev/null || missing+=(redis-server)
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null; then
  echo "installing Debian packages for the tests: ${missing[*]}" >&2
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
else
  echo "the tests need: ${missing[*]} (sudo apt-get install ${missing[*]})" >&2
  exit 1
fi
