#!/usr/bin/env bash
# Worker benchmarks (not tests): headless-lane overhead over a direct spawn of
# the same fake agent, and peak RSS while parsing a generated claude
# stream-json event stream through lane + parser.
#
#   tests/bench/worker.sh [runs] [stream-MiB]      # defaults: 300 runs, 1024 MiB
#
# Builds the release fake agent and the `bench_worker` example of vnx-core,
# then prints the figures. Needs ~2x stream-MiB of free space in $TMPDIR
# (the stream and its saved event log).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"
runs=${1:-300}
mib=${2:-1024}
target=${CARGO_TARGET_DIR:-$root/target}
cargo build --quiet --release -p vnx-tests --bin fake-agent
cargo build --quiet --release -p vnx-core --example bench_worker
bench="$target/release/examples/bench_worker"
fake="$target/release/fake-agent"
echo "== $(date -u +%FT%TZ) on $(nproc) cores, $(uname -sr)"
"$bench" overhead "$fake" "$runs"
"$bench" rss "$mib" "${TMPDIR:-/tmp}"
