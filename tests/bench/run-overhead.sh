#!/usr/bin/env bash
# Benchmark (not a test): wall time `vnx run` adds over the agent it runs.
#
#   tests/bench/run-overhead.sh [runs]        # default 30 runs each
#
# The agent is the no-op fake agent (`tests/fake-agent`, prints one final
# event) as a `command` provider; the skill is the read-only built-in
# `review` (so an empty change passes), with no command gates and no
# cross-model review. Each `vnx run` includes config and skill loading,
# PREPARE, worktree creation, both ledger appends (fsync), the dispatch
# commit check, git facts, the deterministic gates, the receipt committed on
# the dispatch branch and the worktree removal. Prints median and p90 of
# both, and their difference (target: at most 50 ms added).
#
# 2026-11-21, 2-core machine, `tests/bench/run-overhead.sh 40` three times in
# a row, added ms over the agent alone (same run): +34.8, +37.4, +43.2 (agent
# 3.3-3.6 ms); +46, +55, +52 while other builds loaded the machine. Before
# (12 git processes per dispatch): +53.5, +58.9, +60.8. Now 8: rev-parse;
# worktree add (+ its branch and reset --hard) alongside the main tree's
# status and one config read; status after the worker; fast-import (+ its
# unpack-objects) for the receipt commit while the worktree is deleted
# without git.
set -euo pipefail
runs=${1:-30}
# shellcheck source=noop-repo.sh
source "$(dirname "${BASH_SOURCE[0]}")/noop-repo.sh" '"--final"'

# Microseconds since the epoch.
now_us() { local ns; ns=$(date +%s%N); echo $((ns / 1000)); }
stats() { sort -n | awk '{a[NR]=$1} END {printf "median %.1f ms  p90 %.1f ms", a[int((NR+1)/2)]/1000, a[int(NR*0.9+0.5)]/1000}'; }

agent=()
vnxt=()
for _ in $(seq "$runs"); do
  t0=$(now_us); "$fake" --final >/dev/null; t1=$(now_us)
  agent+=($((t1 - t0)))
  t0=$(now_us)
  VNX_WRITER=bench@host "$vnx" run --skill review "Say nothing" >/dev/null 2>&1 || { echo "vnx run failed:"; VNX_WRITER=bench@host "$vnx" run --skill review "Say nothing"; exit 1; }
  t1=$(now_us)
  vnxt+=($((t1 - t0)))
done
a=$(printf '%s\n' "${agent[@]}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
v=$(printf '%s\n' "${vnxt[@]}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
echo "== $(date -u +%FT%TZ) on $(nproc) cores, $(uname -sr), $runs runs each"
echo "fake agent alone : $(printf '%s\n' "${agent[@]}" | stats)"
echo "vnx run          : $(printf '%s\n' "${vnxt[@]}" | stats)"
awk -v a="$a" -v v="$v" 'BEGIN {printf "added by vnx run : %.1f ms (median)\n", (v - a) / 1000}'
"$vnx" verify-ledger .vnx/ledger >/dev/null && echo "journal verifies: $(grep -c dispatch.receipt .vnx/ledger/*.ndjson | paste -sd' ') receipts"
