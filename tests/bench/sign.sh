#!/usr/bin/env bash
# Benchmark (not a test): the cost of vnx's SSH signatures.
#
#   tests/bench/sign.sh [signs] [verifies] [extra-signers]   # default 20 1000 0
#
# For an ed25519, an ecdsa (P-256) and an rsa (3072-bit) key made by
# `ssh-keygen -N ''` in a temp dir, prints the median wall time of SIGNS
# `SigningKey::sign` calls (each spawns `ssh-keygen -Y sign`, as git does)
# and the mean time of one in-process `verify` (signature + allowed_signers
# lookup) over VERIFIES calls, on a 64 KiB message, release build.
set -euo pipefail
signs=${1:-20}
verifies=${2:-1000}
extra=${3:-0}
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

cd "$root"
cargo build --quiet --release -p vnx-sign --example sign_bench
bin=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/release/examples/sign_bench

for kind in ed25519 ecdsa rsa; do
  ssh-keygen -q -t "$kind" -N '' -f "$work/$kind"
  "$bin" "$work/$kind" "$signs" "$verifies" "$extra"
done
