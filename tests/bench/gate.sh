#!/usr/bin/env bash
# Benchmark (not a test): the cost of signatures and of the code-bound gate.
#
#   tests/bench/gate.sh [receipts] [runs]      # default 1000 receipts, 20 runs
#
# 1. Signing cost per dispatch: `vnx run` (no-op fake agent, `review` skill)
#    alternately without a signing key and with one (an ed25519 key file,
#    `gpg.format = ssh`), `runs` times each; prints both medians and the
#    difference (target: under 10 ms added).
# 2. Gate time: a branch of `receipts` dispatch-shaped changes — each a code
#    commit and a ledger-only commit adding that dispatch's signed segment
#    whose receipt covers the code commit — so `base..HEAD` holds 2 ×
#    `receipts` commits and `receipts` signed receipts. Times `vnx gate
#    --base` (median of 5) against baselines measured in the same run: `git
#    log --name-only base..HEAD` and `vnx verify-ledger` of the same ledger
#    (target: gate under 2 s).
set -euo pipefail
receipts=${1:-1000}
runs=${2:-20}
# shellcheck source=noop-repo.sh
source "$(dirname "${BASH_SOURCE[0]}")/noop-repo.sh" '"--final"'

now_us() { local ns; ns=$(date +%s%N); echo $((ns / 1000)); }
median_ms() { sort -n | awk '{a[NR]=$1} END {printf "%.1f", a[int((NR+1)/2)]/1000}'; }
export VNX_WRITER=bench@host

ssh-keygen -q -t ed25519 -N '' -C bench -f "$work/key"
"$vnx" ledger append >/dev/null 2>&1 <<<'{"kind":"note","body":{"text":"init"}}'
echo "bench@host namespaces=\"vnx-ledger,vnx-approval,git\" $(cut -d' ' -f1,2 "$work/key.pub")" > ledger/allowed_signers
git add -A && git commit -qm "ledger and allowed_signers"

echo "== $(date -u +%FT%TZ) on $(nproc) cores, $(uname -sr)"
plain=() signed=()
for _ in $(seq "$runs"); do
  git config --unset gpg.format || true; git config --unset user.signingkey || true
  t0=$(now_us); "$vnx" run --skill review "Say nothing" >/dev/null 2>&1; t1=$(now_us)
  plain+=($((t1 - t0)))
  git config gpg.format ssh; git config user.signingkey "$work/key"
  t0=$(now_us); "$vnx" run --skill review "Say nothing" >/dev/null 2>&1; t1=$(now_us)
  signed+=($((t1 - t0)))
done
p=$(printf '%s\n' "${plain[@]}" | median_ms)
s=$(printf '%s\n' "${signed[@]}" | median_ms)
echo "vnx run, unsigned receipts : median $p ms ($runs runs)"
echo "vnx run, signed receipts   : median $s ms ($runs runs)"
awk -v p="$p" -v s="$s" 'BEGIN {printf "signing adds               : %.1f ms per dispatch (%.2fx)\n", s - p, s / p}'

# 2. A branch of covered changes.
git config gpg.format ssh; git config user.signingkey "$work/key"
base=$(git rev-parse HEAD)
git switch -q -c feature
t0=$(now_us)
for i in $(seq "$receipts"); do
  echo "$i" > "file-$i.txt"
  git add "file-$i.txt"
  git commit -qm "change $i" --no-gpg-sign
  head=$(git rev-parse HEAD)
  tree=$(git rev-parse "HEAD^{tree}")
  prev=$(git rev-parse HEAD~1)
  cat <<JSON | "$vnx" ledger append --segment "bench--vnx_d-$i.ndjson" >/dev/null 2>&1
{"kind":"dispatch.receipt","body":{"dispatch_id":"d-$i","status":"passed","provider":"claude","lane":"headless","billing":"subscription","outcome":"success","usage":{"input_tokens":1,"output_tokens":1,"cache_read_tokens":0,"cache_write_tokens":0},"cost_usd_micros":1,"cost_source":"reported","duration_ms":1,"instruction":{"sha256":"$(printf '0%.0s' $(seq 64))","parts":[]},"attempts":[],"report":{"origin":"synthesized","sha256":"$(printf '1%.0s' $(seq 64))","valid":false},"gates":[],"git":{"base":"$prev","head":"$head","head_tree":"$tree","worktree":"."}}}
JSON
  git add ledger
  git commit -qm "receipt $i" --no-gpg-sign
done
t1=$(now_us)
echo "built $receipts covered changes ($((2 * receipts)) commits) in $(( (t1 - t0) / 1000000 )) s"

gate_t=() log_t=() verify_t=()
for _ in 1 2 3 4 5; do
  t0=$(now_us); git log --name-only --format=%H%P "$base..HEAD" >/dev/null; t1=$(now_us); log_t+=($((t1 - t0)))
  t0=$(now_us); "$vnx" verify-ledger >/dev/null; t1=$(now_us); verify_t+=($((t1 - t0)))
  t0=$(now_us); "$vnx" gate --base "$base" >"$work/gate.txt" || { cat "$work/gate.txt"; exit 1; }; t1=$(now_us); gate_t+=($((t1 - t0)))
done
g=$(printf '%s\n' "${gate_t[@]}" | median_ms)
l=$(printf '%s\n' "${log_t[@]}" | median_ms)
v=$(printf '%s\n' "${verify_t[@]}" | median_ms)
tail -2 "$work/gate.txt"
echo "git log of the range       : median $l ms"
echo "vnx verify-ledger          : median $v ms"
echo "vnx gate --base            : median $g ms (target < 2000 ms)"
awk -v g="$g" -v l="$l" -v v="$v" 'BEGIN {printf "gate / git log: %.1fx; gate / verify-ledger: %.1fx\n", g / l, g / v}'
