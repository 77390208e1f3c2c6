#!/usr/bin/env bash
# Install what tests/tests/serve_browser.rs needs: Debian's Chromium
# (/usr/bin/chromium, apt-get only when missing) and playwright-core from the
# npm registry into tests/browser/node_modules (`npm ci`, only when the lock
# changed). playwright-core drives the system browser; no browser is
# downloaded (--ignore-scripts, and PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD).
#
# Idempotent. Reaches only the npm registry and the Debian mirrors.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cd "$here"

log() { printf 'browser/install.sh: %s\n' "$*" >&2; }

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  log "node and npm are required (playwright-core needs node >= 20); install Node.js 20+ and rerun."
  exit 1
fi

# --- chromium ------------------------------------------------------------------
if [ ! -x /usr/bin/chromium ]; then
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  log "/usr/bin/chromium missing; installing Debian's chromium with apt-get"
  $sudo apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium >&2
fi

# --- npm ci, only when the lock changed ---------------------------------------
stamp=node_modules/.vnx-lock.sha256
want=$(sha256sum package-lock.json | cut -d' ' -f1)
have=$(cat "$stamp" 2>/dev/null || true)
if [ "$want" = "$have" ]; then
  log "node_modules matches package-lock.json; skipping npm ci"
else
  log "running npm ci in $here"
  PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --ignore-scripts --no-audit --no-fund --loglevel=error >&2
  printf '%s\n' "$want" > "$stamp"
fi
