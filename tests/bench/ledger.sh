#!/usr/bin/env bash
# Ledger benchmarks (not tests): regenerates the figures in README.md.
#
#   tests/bench/ledger.sh [RECORDS]   (default 1000000)
#
# 1. verify-ledger on a RECORDS-record ledger against sha256sum of the same
#    file, in the same run, warm page cache, median of 5 runs each;
# 2. verify of 1,000 new records past a checkpoint on that ledger;
# 3. durable append latency (lock + tail read + write + fdatasync), 1 and 4 writers.
set -euo pipefail
records=${1:-1000000}
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
cargo build --release -q -p vnx-cli -p vnx-ledger --examples --bin vnx
bin="${CARGO_TARGET_DIR:-$root/target}/release"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
ms() { # run a command 5 times, print the median wall time in ms
  for _ in 1 2 3 4 5; do
    local s e
    s=$(date +%s%N); "$@" >/dev/null; e=$(date +%s%N)
    echo $(( (e - s) / 1000000 ))
  done | median
}

echo "generating $records records..." >&2
"$bin/examples/gen_ledger" "$work/ledger" "$records"
seg=$(ls "$work"/ledger/*.ndjson)
size=$(stat -c %s "$seg")
cat "$seg" >/dev/null # warm the page cache for both contenders

sha=$(ms sha256sum "$seg")
vnx=$(ms "$bin/vnx" verify-ledger "$work/ledger")
echo "verify-ledger: records=$records bytes=$size sha256sum_ms=$sha vnx_ms=$vnx ratio=$(awk "BEGIN{printf \"%.2f\", $vnx/$sha}") cores=$(nproc)"

"$bin/vnx" ledger checkpoint --ledger "$work/ledger" --out "$work/cp.json" 2>/dev/null
"$bin/examples/gen_ledger" "$work/ledger" 1000
since=$(ms "$bin/vnx" verify-ledger "$work/ledger" --checkpoint "$work/cp.json" --since-checkpoint)
noop=$(ms "$bin/vnx" --version)
echo "since-checkpoint: new_records=1000 vnx_ms=$since (process start alone: ${noop} ms)"

"$bin/examples/append_latency" "$work/lat1" 1 2000
"$bin/examples/append_latency" "$work/lat4" 4 500
