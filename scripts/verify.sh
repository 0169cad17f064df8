#!/usr/bin/env bash
# Proof for the unsafe and concurrent core (issue 16), stable Rust only:
#   loom      model-check the shared-memory ring and the listening duty (pool-ipc/tests/loom_ring.rs),
#             and the shared heap's free lists, last reference drop and ledgers
#             (pool-core/src/shared_bytes/loom_models.rs)
#   props     property tests of every decoder of a worker's bytes (ring, wire, codec, outputs)
#   valgrind  pool-core's unit tests (slab, task_inputs, indexed, borrowed, input_wire, codec, the task loop through
#             the job and pool tests, the decoder properties) and a small Fork map, memcheck
#   soak      random faults over many rounds under Fork and Spawn (tests/soak.rs)
#   all       the four, in that order (the default)
# Each job fails the script on the first failure. Sizes are chosen to fit CI on 2 cores; override
# with LOOM_MAX_PREEMPTIONS, PROPTEST_CASES, SOAK_ROUNDS, SOAK_SEED.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n=== verify: %s (%s) ===\n' "$1" "$(date -u +%H:%M:%S)"; }

loom() {
    step "loom models of the ring, the listening duty and the shared heap"
    # A separate target dir: --cfg loom rebuilds every dependency, and must not invalidate the
    # normal build.
    LOOM_MAX_PREEMPTIONS="${LOOM_MAX_PREEMPTIONS:-3}" RUSTFLAGS="--cfg loom" \
        CARGO_TARGET_DIR=target/loom \
        cargo test -p pool-ipc --release --test loom_ring
    LOOM_MAX_PREEMPTIONS="${LOOM_MAX_PREEMPTIONS:-3}" RUSTFLAGS="--cfg loom" \
        CARGO_TARGET_DIR=target/loom \
        cargo test -p pool-core --release --lib loom_models
}

props() {
    step "property tests of the decoders"
    PROPTEST_CASES="${PROPTEST_CASES:-512}" cargo test -p pool-core --lib decode_props
    PROPTEST_CASES="${PROPTEST_CASES:-512}" cargo test -p pool-ipc --test decode_props
}

VALGRIND=(valgrind --quiet --error-exitcode=1 --leak-check=full
    --errors-for-leak-kinds=definite --show-leak-kinds=definite
    --suppressions=scripts/valgrind.supp)

valgrind_job() {
    step "valgrind: pool-core unit tests and a small Fork map"
    if ! command -v valgrind >/dev/null; then
        if [ -n "${CI:-}" ]; then
            echo "valgrind is missing: apt-get install valgrind" >&2
            return 1
        fi
        echo "!!! SKIPPED: valgrind is not installed (apt-get install valgrind) !!!" >&2
        return 0
    fi
    local tests
    tests=$(cargo test -p pool-core --lib --no-run --message-format=json 2>/dev/null |
        sed -n 's/.*"executable":"\([^"]*\)".*/\1/p' | tail -1)
    # One test thread: Valgrind runs threads one at a time anyway; fewer cases: 50x slower.
    PROPTEST_CASES="${VALGRIND_PROPTEST_CASES:-8}" "${VALGRIND[@]}" "$tests" --test-threads=1 \
        slab task_inputs indexed codec decode_props borrowed input_wire --skip spare_buffers
    cargo build --example valgrind_fork_map
    # Valgrind 3.19 (Debian 12) fails `pidfd_open` (ENOSYS), which process workers need; from
    # 3.20 on the Fork map runs too.
    local mode=threads
    if valgrind --version | grep -qE 'valgrind-3\.(2[0-9]|[3-9][0-9])'; then mode=fork; fi
    "${VALGRIND[@]}" target/debug/examples/valgrind_fork_map "$mode"
}

soak() {
    step "soak: random faults under Fork and Spawn"
    SOAK_ROUNDS="${SOAK_ROUNDS:-240}" cargo test --test soak -- --nocapture
}

case "${1:-all}" in
loom) loom ;;
props) props ;;
valgrind) valgrind_job ;;
soak) soak ;;
all)
    loom
    props
    valgrind_job
    soak
    ;;
*)
    echo "usage: $0 [loom|props|valgrind|soak|all]" >&2
    exit 2
    ;;
esac
