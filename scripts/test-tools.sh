#!/usr/bin/env bash
# Install what the test suite needs besides the servers of scripts/services.sh, when it is
# missing: Debian's Chromium (/usr/bin/chromium, for the browser tests) and Node.js with npm
# (tests/interop's identity server). `make test` runs it; `make serve` never does.
# Idempotent: what is installed is left alone. Needs root (or sudo) only to install.
set -euo pipefail

as_root=()
[ "$(id -u)" = 0 ] || as_root=(sudo -n)

if ! command -v npm >/dev/null; then
  # node and npm run tests/interop's identity server (oidc-provider, installed by npm ci).
  echo "test-tools.sh: installing Debian's nodejs and npm"
  "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    nodejs npm </dev/null >/dev/null
fi

if [ ! -x /usr/bin/chromium ]; then
  # Debian's Chromium, driven by Playwright with executable_path: Playwright's own
  # browser downloads are never used.
  echo "test-tools.sh: installing Debian's chromium"
  "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    chromium </dev/null >/dev/null
  [ -x /usr/bin/chromium ] || { echo "test-tools.sh: chromium install failed" >&2; exit 1; }
fi
