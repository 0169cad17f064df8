#!/usr/bin/env bash
# Side-by-side benchmark of `pool run` against GNU parallel, xargs -P and rust-parallel.
#
#   bench/cli/run.sh [JOBS] [RUNS]     (defaults: number of CPUs, 3 runs)
#
# Workloads (every tool gets the same inputs on stdin and appends the input to the command):
#   1. 10,000 `true` jobs                        (pure per-job overhead)
#   2. 1,000 short `sh -c 'echo job $0'` jobs     (a shell per job, output collected)
# (pool run and GNU parallel get -q: without it both compose the line `sh -c echo job $0 N` for a shell)
#
# Needs hyperfine; GNU parallel and rust-parallel are benchmarked when installed
#   apt-get install -y hyperfine parallel ; cargo install rust-parallel
# Writes bench/cli/results-*.md (hyperfine's markdown tables) and prints them.
set -euo pipefail

cd "$(dirname "$0")/../.."
JOBS=${1:-$(nproc)}
RUNS=${2:-3}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-target}
cargo build --release -q -p pool-cli
POOL=$(realpath "$CARGO_TARGET_DIR/release/pool")
OUT=bench/cli
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
seq 10000 >"$TMP/in10k"
seq 1000 >"$TMP/in1k"

command -v hyperfine >/dev/null || { echo "hyperfine is needed: apt-get install -y hyperfine" >&2; exit 1; }
RUST_PARALLEL=$(command -v rust-parallel || echo "$HOME/.cargo/bin/rust-parallel")
have_parallel=$(command -v parallel >/dev/null && echo 1 || echo 0)
have_rp=$([ -x "$RUST_PARALLEL" ] && echo 1 || echo 0)

echo "# machine: $(nproc) CPUs, $(uname -sr); jobs=$JOBS runs=$RUNS"
echo "# versions: $("$POOL" --version); $( [ $have_parallel = 1 ] && parallel --version | head -1 ); $(xargs --version | head -1); $( [ $have_rp = 1 ] && "$RUST_PARALLEL" --version )"

bench() { # name input command-suffix-for-each-tool...
    local name=$1 input=$2 cmd_pool=$3 cmd_xargs=$4 cmd_parallel=$5 cmd_rp=$6
    local args=(--runs "$RUNS" --warmup 1 --export-markdown "$OUT/results-$name.md" --export-json "$TMP/$name.json"
        -n "pool run" "$POOL run -j$JOBS $cmd_pool < $input"
        -n "xargs -P" "xargs -P$JOBS -n1 $cmd_xargs < $input")
    [ $have_parallel = 1 ] && args+=(-n "GNU parallel" "parallel -j$JOBS $cmd_parallel < $input")
    [ $have_rp = 1 ] && args+=(-n "rust-parallel" "$RUST_PARALLEL -j$JOBS $cmd_rp < $input")
    hyperfine "${args[@]}"
    cat "$OUT/results-$name.md"
}

bench true-10k "$TMP/in10k" "true" "true" "true" "true"
bench sh-1k "$TMP/in1k" "-q sh -c 'echo job \$0'" "sh -c 'echo job \$0'" "-q sh -c 'echo job \$0'" "sh -c 'echo job \$0'"
