#!/usr/bin/env bash
# Runs the shared integration suite (its `mpi` instantiations) and the MPI fault tests under
# mpirun. Needs Open MPI (`apt-get install -y openmpi-bin libopenmpi-dev libclang-dev`).
#
# Ranks: rank 0 runs the pool and the suite's bodies ask for at most 2 workers, so 3 ranks
# suffice (the issue's `mpirun -n 3`); more ranks leave the extra ones idle.
#
# For .ci/run: pool-mpi is a workspace member, so `--workspace` steps compile it and need the MPI
# headers and libclang (bindgen) before clippy:
#   command -v mpirun >/dev/null || need+=(openmpi-bin libopenmpi-dev libclang-dev)
# then, after the workspace tests:
#   step "MPI: the shared suite and fault tests under mpirun"
#   pool-mpi/run-tests.sh
set -euo pipefail
cd "$(dirname "$0")/.."
# Uses the caller's CARGO_TARGET_DIR, or the workspace's target/.
N_RANKS="${N_RANKS:-3}"
MPIRUN=(mpirun --allow-run-as-root --oversubscribe -n "$N_RANKS")

bin_of() {
    cargo test --features mpi "$@" --no-run --message-format=json 2>/dev/null |
        sed -n 's/.*"executable":"\([^"]*\)".*/\1/p' | tail -1
}

integration="$(bin_of --test integration)"
echo "== shared suite under ${MPIRUN[*]}: $integration"
timeout 600 "${MPIRUN[@]}" "$integration" ::mpi --test-threads=1

echo "== pool-mpi tests: faults, rank 0 (each launches mpirun itself)"
timeout 600 cargo test -p pool-mpi --tests -- --test-threads=1
