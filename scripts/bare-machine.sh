#!/usr/bin/env bash
# The README's two commands as a newcomer runs them on a bare machine: a fresh clone of HEAD, in
# a mount namespace where the optional tools are not visible (Open MPI, Chromium and
# chromedriver, tmux, Valgrind, GNU parallel, Python), with CI and RUST_BACKTRACE unset.
# Linux, as root (unshare, mount).
#
#   scripts/bare-machine.sh                the demo, then `./test` exactly as the README says
#   scripts/bare-machine.sh --no-install   the demo, then `./test --no-install`
#
# Passes when both commands exit 0; `./test` must then list the hidden parts as NOT TESTED.
# Logs go to a temporary directory, named at the end; the clone is removed.
#
# How the tools are hidden: in the namespace only, /usr/bin is replaced by a hard-linked copy
# without them (hard links: no space taken; /tmp and /usr must share a file system). Binding
# /dev/null over a binary does not do: bash's `command -v` still names a match it cannot run,
# so `./test` would take the tool for installed. As root `./test` runs apt-get, which finds the
# packages installed and changes nothing, unless one has an upgrade pending: then its files in
# /usr/bin land in the copy, not in the system's /usr/bin (check `dpkg -l` afterwards).
set -euo pipefail
cd "$(dirname "$0")/.."

test_args=()
case "${1:-}" in
    "") ;;
    --no-install) test_args=(--no-install) ;;
    *)
        echo "usage: $0 [--no-install]" >&2
        exit 2
        ;;
esac
[ "$(id -u)" = 0 ] || {
    echo "$0: needs root (unshare and mount)" >&2
    exit 2
}

hidden=(mpirun mpiexec mpicc mpicxx mpic++ mpifort mpif77 mpif90 orterun oshrun oshcc
    chromium chromedriver tmux valgrind parallel python3 python3.11 python)
work=$(mktemp -d /tmp/pool-bare.XXXXXX)
trap 'rm -rf "$work/clone" "$work/bin" "$work/empty"' EXIT
git clone -q . "$work/clone"
cp -al /usr/bin "$work/bin"
for b in "${hidden[@]}"; do rm -f "$work/bin/$b"; done
mkdir "$work/empty"

# Runs inside the namespace: hide, check nothing is left visible, run the two commands.
inside() {
    mount --bind "$work/bin" /usr/bin
    if [ -d "$HOME/.pyenv/shims" ]; then mount --bind "$work/empty" "$HOME/.pyenv/shims"; fi
    hash -r
    local seen
    seen=$(command -v mpirun tmux valgrind parallel python3 chromium chromedriver || true)
    if [ -n "$seen" ]; then
        echo "still visible: $seen" >&2
        return 1
    fi
    unset CI RUST_BACKTRACE
    cd "$work/clone"
    echo "demo: cargo run --release --example quickstart ($(date -u +%T))"
    cargo run --release --example quickstart >"$work/demo.log" 2>&1
    echo "tests: ./test ${test_args[*]} ($(date -u +%T))"
    ./test "${test_args[@]}" >"$work/test.log" 2>&1
    grep -A8 'NOT INSTALLED, so NOT TESTED' "$work/test.log" | sed -n '1,8p'
    echo "both exited 0 ($(date -u +%T))"
}
export -f inside
export work
export test_args_text="${test_args[*]}"
status=0
unshare -m --propagation private bash -c \
    "test_args=(\$test_args_text); set -euo pipefail; inside" || status=$?
echo "logs: $work/demo.log $work/test.log"
exit "$status"
