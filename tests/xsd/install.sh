#!/usr/bin/env bash
# Make the Python virtual environment in which tests/tests/gate_output.rs
# validates `vnx gate --format junit` against the vendored XML Schemas
# (tests/xsd/validate.py): tests/.venv with the pinned requirements.txt.
#
# Idempotent: pip runs only when requirements.txt changed since the last
# successful install (its sha256 is kept in the venv). Reaches only PyPI
# (and the Debian mirrors when python3-venv is missing).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
venv="$(cd "$here/.." && pwd)/.venv"
log() { printf 'xsd/install.sh: %s\n' "$*" >&2; }

if ! command -v python3 >/dev/null 2>&1; then
  log "python3 is required to validate JUnit reports; install Python 3.9+ and rerun."
  exit 1
fi

if [ ! -x "$venv/bin/python" ]; then
  if ! python3 -m venv "$venv" >&2; then
    rm -rf "$venv"
    log "python3 -m venv failed; installing Debian's python3-venv with apt-get"
    sudo=""
    if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
    $sudo apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq python3-venv >&2
    python3 -m venv "$venv" >&2
  fi
fi

stamp="$venv/.vnx-requirements.sha256"
want=$(sha256sum "$here/requirements.txt" | cut -d' ' -f1)
have=$(cat "$stamp" 2>/dev/null || true)
if [ "$want" = "$have" ]; then
  log "tests/.venv matches requirements.txt; skipping pip"
else
  log "installing $(grep -v '^#' "$here/requirements.txt" | tr '\n' ' ')into tests/.venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
    --only-binary=:all: -r "$here/requirements.txt" >&2
  echo "$want" > "$stamp"
fi
echo "PYTHON=$venv/bin/python"
