#!/usr/bin/env bash
# `pool run` against GNU parallel on the issue-#18 workloads, interleaved rounds, medians, ratios.
#
#   bench/cli/gnu-ratio.sh [ROUNDS]      (default 3; needs GNU parallel; release build)
#
# Workloads, each with -j2, inputs on stdin:
#   true-5k   5,000 `true` jobs                       (per-job overhead)
#   echo-2k   2,000 `echo {}` jobs with -k            (output collected, in order)
# pool run is measured as it runs by default (plain commands are executed without a shell)
# and with --shell (every job through /bin/sh, as GNU parallel always does).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROUNDS=${1:-3}
cargo build --release -q -p pool-cli
POOL=$(realpath target/release/pool)
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
seq 5000 >"$TMP/in5k"
seq 2000 >"$TMP/in2k"
export PARALLEL_HOME="$TMP/parallel-home"
mkdir -p "$PARALLEL_HOME" && touch "$PARALLEL_HOME/will-cite"

declare -A CMD=(
  [true-5k/pool]="$POOL run -j2 true < $TMP/in5k"
  [true-5k/pool-shell]="$POOL run -j2 --shell true < $TMP/in5k"
  [true-5k/gnu]="parallel -j2 true < $TMP/in5k"
  [echo-2k/pool]="$POOL run -j2 -k echo {} < $TMP/in2k"
  [echo-2k/pool-shell]="$POOL run -j2 -k --shell echo {} < $TMP/in2k"
  [echo-2k/gnu]="parallel -j2 -k echo {} < $TMP/in2k"
)
ORDER=(true-5k/pool true-5k/gnu true-5k/pool-shell echo-2k/pool echo-2k/gnu echo-2k/pool-shell)

echo "# $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg); $("$POOL" --version); $(parallel --version | head -1); rounds=$ROUNDS"
for r in $(seq "$ROUNDS"); do
  for k in "${ORDER[@]}"; do
    t0=$(date +%s.%N)
    bash -c "${CMD[$k]}" >/dev/null
    t1=$(date +%s.%N)
    echo "$k $(echo "$t1 - $t0" | bc)" | tee -a "$TMP/times"
  done
done
median() { grep "^$1 " "$TMP/times" | awk '{print $2}' | sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
echo
echo "| workload | pool run [s] | pool run --shell [s] | GNU parallel [s] | pool/GNU | pool --shell/GNU |"
echo "|---|---:|---:|---:|---:|---:|"
for w in true-5k echo-2k; do
  p=$(median "$w/pool"); s=$(median "$w/pool-shell"); g=$(median "$w/gnu")
  printf '| %s | %.2f | %.2f | %.2f | %.2f× | %.2f× |\n' "$w" "$p" "$s" "$g" "$(echo "$p / $g" | bc -l)" "$(echo "$s / $g" | bc -l)"
done
