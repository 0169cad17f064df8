#!/usr/bin/env bash
# MPI beside Fork on issue 15's workloads, in interleaved rounds (an MPI run, then a Fork run,
# ROUNDS times), then the median per workload and the MPI/Fork ratio.
# MPI: mpirun -n 3 (rank 0 + 2 worker ranks); Fork: 2 workers. Needs Open MPI.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS="${ROUNDS:-5}"
cargo build --release --features mpi --example mpi_vs_fork >&2
exe=target/release/examples/mpi_vs_fork
out="$(mktemp)"
for _ in $(seq "$ROUNDS"); do
    mpirun --allow-run-as-root --oversubscribe -n 3 "$exe" mpi | tee -a "$out"
    "$exe" fork 2 | tee -a "$out"
done
echo "== medians over $ROUNDS interleaved rounds (each round's value is itself a median of 3)"
for w in chunk1-trivial-10k sleep5ms-300; do
    m=$(awk -v w="$w" '$1=="mpi" && $3==w {sub("median=","",$4); print $4}' "$out" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
    f=$(awk -v w="$w" '$1=="fork" && $3==w {sub("median=","",$4); print $4}' "$out" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
    awk -v w="$w" -v m="$m" -v f="$f" 'BEGIN {printf "%-20s mpi %.3f s  fork %.3f s  mpi/fork %.2fx\n", w, m, f, m/f}'
done
rm -f "$out"
