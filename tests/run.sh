#!/usr/bin/env bash
# The one test command (named in README.md; CI runs it through .ci/run).
#
# Installs what the tests need — the pinned agent CLIs from the npm registry
# tmux and bubblewrap from Debian — then checks formatting and lints and runs every
# test in the workspace: unit, property, conformance-vector, end-to-end and
# real-CLI tests.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

echo "== installing the pinned agent CLIs, tmux and bubblewrap"
bash tests/agent-clis/install.sh

echo "== installing Chromium (Debian) and playwright-core for the dashboard's browser test"
bash tests/browser/install.sh

echo "== cargo fmt --check"
cargo fmt --all -- --check

echo "== cargo clippy -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings

echo "== cargo test"
cargo test --workspace --locked
