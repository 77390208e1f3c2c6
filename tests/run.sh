#!/usr/bin/env bash
# The one test command (named in README.md; CI runs it through .ci/run).
#
# Installs what the tests need — the pinned agent CLIs from the npm registry,
# tmux and bubblewrap from Debian, and a Python venv with the pinned lxml from
# PyPI — then checks formatting and lints and runs every test in the
# workspace: unit, property, conformance-vector, end-to-end and real-CLI tests.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

echo "== installing the pinned agent CLIs, tmux and bubblewrap"
bash tests/agent-clis/install.sh

echo "== installing Chromium (Debian) and playwright-core for the dashboard's browser test"
bash tests/browser/install.sh

echo "== making tests/.venv with the pinned lxml that validates JUnit reports against tests/xsd/"
bash tests/xsd/install.sh

# Test scratch directories live outside /tmp: codex (0.169) sandboxes its
# file edits with bubblewrap when it is installed, and its sandbox gives the
# worker a private /tmp, so a project under /tmp cannot be written. Nor
# inside this checkout: some tests need a directory outside any git repository.
export TMPDIR=/var/tmp/vnx-tests
mkdir -p "$TMPDIR"

echo "== cargo fmt --check"
cargo fmt --all -- --check

echo "== cargo clippy -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings

echo "== cargo test"
cargo test --workspace --locked
