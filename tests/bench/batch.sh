#!/usr/bin/env bash
# Benchmark (not a test): scheduling overhead of `vnx batch`.
#
#   tests/bench/batch.sh [dispatches] [cap] [agent-ms]    # default 200 4 1000
#
# Runs N no-op dispatches (the fake agent sleeps AGENT-MS, then prints its
# final event; review skill, gates on, no cross-model review) at a cap of
# CAP, and compares the batch's makespan (first start to last end) with
#   ideal = Σ slot wall time / CAP
# where a dispatch's slot wall time is everything it did itself (setup,
# worktree, worker, gates, receipt, cleanup), as the batch measured it on the
# dispatch's own thread. makespan / ideal − 1 is what scheduling added:
# slots left idle between one dispatch's end and the next one's start, and
# the tail. Also printed: the agent-only bound N × AGENT-MS / CAP, which
# includes vnx's per-dispatch work (target for the scheduler: within 5 % of
# ideal).
set -euo pipefail
n=${1:-200}
cap=${2:-4}
agent_ms=${3:-1000}
# shellcheck source=noop-repo.sh
source "$(dirname "${BASH_SOURCE[0]}")/noop-repo.sh" "\"--sleep-ms\", \"$agent_ms\", \"--final\""
{
  echo '[defaults]'
  echo 'skill = "review"'
  for i in $(seq "$n"); do
    printf '\n[[dispatch]]\nid = "n%03d"\nprompt = "Say nothing (%d)"\n' "$i" "$i"
  done
} > "$work/batch.toml"

t0=$(date +%s%N)
VNX_WRITER=bench@host "$vnx" batch "$work/batch.toml" --max-parallel "$cap" --json > "$work/out.json" 2> "$work/err.txt" \
  || { echo "vnx batch failed:"; tail -20 "$work/err.txt"; exit 1; }
t1=$(date +%s%N)
python3 - "$work/out.json" "$n" "$cap" "$agent_ms" "$(( (t1 - t0) / 1000000 ))" <<'PY'
import json, statistics, sys
out = json.load(open(sys.argv[1]))
n, cap, agent_ms, process_ms = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
slots = [d["wall_ms"] for e in out["entries"] for d in e["dispatches"]]
passed = sum(e["status"] == "passed" for e in out["entries"])
ideal = sum(slots) / cap
agent_only = n * agent_ms / cap
mk = out["makespan_ms"]
print(f"{n} dispatches, cap {cap}, agent sleeps {agent_ms} ms: {passed}/{n} passed, at most {out['max_running']} running")
print(f"slot wall time per dispatch : median {statistics.median(slots):.0f} ms (agent {agent_ms} ms + vnx's own work)")
print(f"makespan                    : {mk/1000:.2f} s  (whole process {process_ms/1000:.2f} s)")
print(f"ideal = Σ slots / cap       : {ideal/1000:.2f} s  → makespan / ideal = {mk/ideal:.3f} ({(mk/ideal-1)*100:+.1f} %)")
print(f"agent-only bound            : {agent_only/1000:.2f} s  → makespan / bound = {mk/agent_only:.3f}")
PY
"$vnx" verify-ledger >/dev/null && echo "ledger verifies: $(grep -c dispatch.receipt ledger/*.ndjson | paste -sd' ') receipts"
