#!/usr/bin/env bash
# Install the pinned real agent CLIs (Claude Code, Codex, Gemini CLI) that
# vnx's integration tests run offline against a loopback mock model API,
# plus tmux for the interactive-lane tests and bubblewrap for the worker
# sandbox tests.
#
# Idempotent: `npm ci` runs only when node_modules does not match
# package-lock.json (a sha256 of the lock is kept in node_modules after a
# successful install); tmux and bubblewrap are installed with apt-get only
# when missing.
#
# Prints the three binaries' paths as `NAME=PATH` lines on stdout, last.
# Reaches only the npm registry and the Debian mirrors.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cd "$here"

log() { printf 'install.sh: %s\n' "$*" >&2; }

# --- node / npm --------------------------------------------------------------
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  log "node and npm are required (Gemini CLI 0.61 needs node >= 20); install Node.js 20+ and rerun."
  exit 1
fi
node_major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$node_major" -lt 20 ]; then
  log "node $(node --version) is too old: Gemini CLI 0.61 needs node >= 20."
  exit 1
fi

# --- npm ci, only when the lock changed ---------------------------------------
stamp=node_modules/.vnx-lock.sha256
want=$(sha256sum package-lock.json | cut -d' ' -f1)
have=$(cat "$stamp" 2>/dev/null || true)
if [ "$want" = "$have" ]; then
  log "node_modules matches package-lock.json; skipping npm ci"
else
  log "running npm ci in $here"
  # --ignore-scripts: claude-code's postinstall only swaps its JS launcher
  # for the native binary, which we call directly; nothing else has scripts
  # we need. It also keeps the install from fetching anything off-registry.
  npm ci --ignore-scripts --no-audit --no-fund --loglevel=error >&2
  printf '%s\n' "$want" > "$stamp"
fi

# --- tmux ----------------------------------------------------------------------
if ! command -v tmux >/dev/null 2>&1; then
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  log "tmux missing; installing it with apt-get"
  $sudo apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq tmux >&2
fi

# --- bubblewrap (vnx run --sandbox) ------------------------------------------
if ! command -v bwrap >/dev/null 2>&1; then
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  log "bwrap missing; installing bubblewrap with apt-get"
  $sudo apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq bubblewrap >&2
fi

# --- locate the real binaries ------------------------------------------------
nm="$here/node_modules"
claude="$nm/@anthropic-ai/claude-code-linux-x64/claude"
[ -x "$claude" ] || claude="$nm/.bin/claude"
codex="$nm/@openai/codex-linux-x64/vendor/x86_64-unknown-linux-musl/bin/codex"
[ -x "$codex" ] || codex="$nm/.bin/codex"
gemini="$nm/.bin/gemini"

for bin in "$claude" "$codex" "$gemini"; do
  if [ ! -x "$bin" ]; then
    log "expected binary missing after install: $bin"
    exit 1
  fi
done

printf 'claude=%s\ncodex=%s\ngemini=%s\n' "$claude" "$codex" "$gemini"
