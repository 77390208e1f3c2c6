#!/usr/bin/env bash
# Benchmark (not a test): `vnx serve` with 10 SSE clients — the latency from
# a file write (a dispatch's live.json rewritten, a receipt appended to the
# ledger) to the `card` event arriving at the clients, and the server's
# memory (VmRSS) idle, with the clients connected, after the changes, and
# after the clients left.
#
#   tests/bench/serve.sh [clients] [changes] [ledger dispatches]
#                                    # defaults: 10 clients, 400 changes, 2000
#
# The server polls for changes (default every 200 ms), so the latency's
# baseline is the poll interval measured in the same run: each run is
# repeated with --poll-ms 200 and --poll-ms 50, and the p50/p99 are printed
# as fractions of the interval (a change waits on average half an interval
# for the next poll). The ledger is pre-filled with the given number of
# dispatches (started + receipt) so that the board and its snapshot are not
# empty. Each change waits for the previous one's event (which arrives
# just after a poll), then a random pause of up to one poll interval, so that
# writes fall anywhere in the interval. The client is
# crates/vnx-serve/examples/sse_bench.rs (raw HTTP/1.1, one tokio task per
# client).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"
clients=${1:-10}
changes=${2:-400}
prefill=${3:-2000}
target=${CARGO_TARGET_DIR:-$root/target}
cargo build --quiet --release -p vnx-cli --bin vnx
cargo build --quiet --release -p vnx-serve --example sse_bench
vnx="$target/release/vnx"
bench="$target/release/examples/sse_bench"

work=$(mktemp -d)
server=""
cleanup() {
  if [ -n "$server" ]; then kill -INT "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

echo "== $(date -u +%FT%TZ) on $(nproc) cores, $(uname -sr): $clients clients, $changes changes, ledger of $prefill dispatches"
for poll in 200 50; do
  rm -rf "$work/root"; mkdir -p "$work/root"
  "$bench" populate "$work/root" "$prefill"
  (cd "$work/root" && exec "$vnx" serve --port 0 --poll-ms "$poll" --ledger "$work/root/ledger") > "$work/serve.out" 2> "$work/serve.err" &
  server=$!
  for _ in $(seq 100); do grep -q http:// "$work/serve.out" 2>/dev/null && break; sleep 0.1; done
  url=$(grep -o 'http://[^ ]*' "$work/serve.out") || { cat "$work/serve.err"; exit 1; }
  echo "-- --poll-ms $poll ($url, pid $server)"
  "$bench" measure "$url" "$work/root" "$server" "$clients" "$changes" "$poll" | tee "$work/m.out" | grep -v '^[A-Z_]*='
  p50=$(sed -n 's/^LAT_P50=//p' "$work/m.out"); p99=$(sed -n 's/^LAT_P99=//p' "$work/m.out")
  idle=$(sed -n 's/^RSS_IDLE_KIB=//p' "$work/m.out"); conn=$(sed -n 's/^RSS_CLIENTS_KIB=//p' "$work/m.out")
  awk -v a="$p50" -v b="$p99" -v p="$poll" 'BEGIN {printf "latency vs poll interval %d ms: p50 %.2f×, p99 %.2f×\n", p, a / p, b / p}'
  awk -v i="$idle" -v c="$conn" -v n="$clients" 'BEGIN {printf "RSS with %d clients vs idle: %.2f× (+%.0f KiB, %.0f KiB per client)\n", n, c / i, c - i, (c - i) / n}'
  kill -INT "$server"; wait "$server" || { echo "vnx serve did not exit cleanly on SIGINT"; exit 1; }
  server=""
  if grep -q . "$work/serve.err"; then echo "serve stderr:"; cat "$work/serve.err"; fi
done
