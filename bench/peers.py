#!/usr/bin/env python3
"""Python peers of the pool benchmark: MPIRE and multiprocessing.Pool on the same workloads.

Run by `pool-bench` (pool-bench) inside bench/.venv; not meant to be run by hand, though
`python peers.py --params params.json` works. The arithmetic lives in kernels.py, which mirrors
pool-bench/src/kernels.rs bit for bit, so the Rust harness can check every checksum
printed here against its own serial reference before any timing counts.

Output (stdout): one JSON object
  {"python": ..., "mpire": ..., "numpy": ..., "k_per_ms": K,
   "results": {workload: {contender: {"times_s": [...], "checksums": [...], "error": str|null,
                                      "note": str|null}}}}
where checksums[0] is the untimed warm-up run and checksums[1:] belong to times_s.
Progress goes to stderr.
"""

import argparse
import functools
import json
import multiprocessing as mp
import sys
import time
from importlib.metadata import version

from mpire import WorkerPool

from kernels import (STATE_BINS, M, build_table, calibrate, checksum_u64, iterations_for,
                     merge_states, payload_checksum, payload_input, payload_task, spin,
                     spin_packed, spin_task, square, state_checksum, stateful_step, table_lookup)

# Same rule as pool-bench/src/runner.rs: a row whose warm-up takes longer than
# SLOW_ROW_S seconds gets only SLOW_ROW_RUNS timed runs.
SLOW_ROW_S = 20.0
SLOW_ROW_RUNS = 3


# ---- per-worker functions (module level, so both pools can pickle them) --------------------

def mpire_state_init(worker_state):
    worker_state["hist"] = [0] * STATE_BINS


def mpire_state_task(k, worker_state, i):
    stateful_step(worker_state["hist"], i, k)


def mpire_state_exit(worker_state):
    return worker_state["hist"]


def mp_state_task(k, i):
    # multiprocessing.Pool has no per-worker state that comes back at exit: the idiomatic
    # equivalent returns each task's contribution and the parent merges.
    v = spin(i, k)
    return (v % STATE_BINS, v)


def mpire_table_init(entries, worker_state):
    worker_state["table"] = build_table(entries)


def mpire_table_task(worker_state, i):
    return table_lookup(worker_state["table"], i)


_TABLE = None


def mp_table_init(entries):
    global _TABLE
    _TABLE = build_table(entries)


def mp_table_task(i):
    return table_lookup(_TABLE, i)


# ---- workloads ------------------------------------------------------------------------------

class Workload:
    """What to map, over what, and how to checksum it, for one workload."""

    def __init__(self, name, sizes, skewed_us, k_per_ms):
        self.name = name
        self.kind = "map"
        self.mpire_kwargs, self.pool_kwargs, self.map_kwargs = {}, {}, {}
        self.mp_init = None
        if name == "trivial":
            self.inputs = range(sizes["trivial_n"])
            self.func = self.mp_func = square
        elif name == "cpu-1ms":
            self.inputs = range(sizes["cpu_tasks"])
            self.func = self.mp_func = functools.partial(
                spin_task, iterations_for(sizes["cpu_task_us"], k_per_ms))
        elif name == "skewed":
            self.inputs = [(i << 32) | iterations_for(us, k_per_ms) for i, us in enumerate(skewed_us)]
            self.func = self.mp_func = spin_packed
        elif name == "stateful":
            k = iterations_for(sizes["stateful_task_us"], k_per_ms)
            self.kind = "stateful"
            self.inputs = range(sizes["stateful_tasks"])
            self.func = functools.partial(mpire_state_task, k)
            self.mp_func = functools.partial(mp_state_task, k)
            self.pool_kwargs = {"use_worker_state": True}
            self.map_kwargs = {"worker_init": mpire_state_init, "worker_exit": mpire_state_exit}
        elif name == "expensive-init":
            entries = sizes["table_entries"]
            self.inputs = range(sizes["table_tasks"])
            self.func = mpire_table_task
            self.mp_func = mp_table_task
            self.mp_init = (mp_table_init, (entries,))
            self.pool_kwargs = {"use_worker_state": True}
            self.map_kwargs = {"worker_init": functools.partial(mpire_table_init, entries)}
        elif name == "payload":
            self.kind = "payload"
            self.inputs = [payload_input(i) for i in range(sizes["payload_tasks"])]
            self.func = self.mp_func = payload_task
        elif name == "startup":
            self.inputs = [7]
            self.func = self.mp_func = square
        else:
            raise ValueError(f"unknown workload {name!r}")
        if not isinstance(self.inputs, list):
            self.inputs = list(self.inputs)

    def run_mpire(self, n_jobs, start_method):
        t = time.perf_counter()
        with WorkerPool(n_jobs=n_jobs, start_method=start_method, **self.pool_kwargs) as pool:
            out = pool.map(self.func, self.inputs, **self.map_kwargs)
            exits = pool.get_exit_results() if self.kind == "stateful" else None
        elapsed = time.perf_counter() - t
        if self.kind == "stateful":
            return elapsed, state_checksum(merge_states(exits))
        return elapsed, self.checksum(out)

    def run_mp(self, n_jobs, start_method):
        ctx = mp.get_context(start_method)
        t = time.perf_counter()
        initializer, initargs = self.mp_init if self.mp_init else (None, ())
        pool = ctx.Pool(n_jobs, initializer=initializer, initargs=initargs)
        try:
            out = pool.map(self.mp_func, self.inputs)
            pool.close()
            pool.join()
        finally:
            pool.terminate()
        elapsed = time.perf_counter() - t
        if self.kind == "stateful":
            merged = [0] * STATE_BINS
            for b, v in out:
                merged[b] = (merged[b] + v) & M
            return elapsed, state_checksum(merged)
        return elapsed, self.checksum(out)

    def run_serial(self, n_jobs, start_method):
        """One interpreter, no pool: the Python work itself, for scale. Its ratio to Rust's
        `serial` row shows how well the two calibrations agree."""
        t = time.perf_counter()
        if self.kind == "stateful":
            state = {}
            mpire_state_init(state)
            for i in self.inputs:
                self.func(state, i)
            elapsed = time.perf_counter() - t
            return elapsed, state_checksum(state["hist"])
        if self.name == "expensive-init":
            state = {}
            self.map_kwargs["worker_init"](state)
            out = [self.func(state, i) for i in self.inputs]
        else:
            out = [self.func(x) for x in self.inputs]
        elapsed = time.perf_counter() - t
        return elapsed, self.checksum(out)

    def checksum(self, out):
        return payload_checksum(out) if self.kind == "payload" else checksum_u64(out)


NOTES = {
    ("multiprocessing", "stateful"): "no worker state: tasks return (bin, value), parent merges",
    ("mpire", "expensive-init"): "table built in worker_init, kept in worker_state",
    ("multiprocessing", "expensive-init"): "table built in Pool(initializer=...)",
}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--params", required=True, help="JSON written by pool-bench")
    args = ap.parse_args()
    with open(args.params) as f:
        params = json.load(f)
    n_jobs, runs = params["n_jobs"], params["runs"]
    start_method = params.get("start_method", "fork")
    k_per_ms = params.get("k_per_ms") or calibrate()
    print(f"peers: spin k_per_ms={k_per_ms}", file=sys.stderr)

    results = {}
    for name in params["workloads"]:
        w = Workload(name, params["sizes"], params["skewed_us"], k_per_ms)
        runners = {"mpire": w.run_mpire, "multiprocessing": w.run_mp,
                   "python-serial": w.run_serial}
        entries = {c: {"times_s": [], "checksums": [], "error": None, "note": NOTES.get((c, name))}
                   for c in params["contenders"] if (c, name) != ("python-serial", "startup")}
        # Round 0 is the untimed warm-up, checked by the harness. Rounds interleave the
        # contenders so that load from elsewhere on the machine is spread over both.
        budget = {c: runs for c in entries}
        for i in range(runs + 1):
            for contender, entry in entries.items():
                if entry["error"] or i > budget[contender]:
                    continue
                try:
                    elapsed, checksum = runners[contender](n_jobs, start_method)
                except Exception as e:  # reported as a failed row, the others go on
                    entry["error"] = f"{type(e).__name__}: {e}"
                    continue
                entry["checksums"].append(checksum)
                if i > 0:
                    entry["times_s"].append(elapsed)
                elif elapsed > SLOW_ROW_S and runs > SLOW_ROW_RUNS:
                    budget[contender] = SLOW_ROW_RUNS
                    cut = f"{SLOW_ROW_RUNS} runs: warm-up took {elapsed:.0f} s"
                    entry["note"] = f"{entry['note']}; {cut}" if entry["note"] else cut
        for contender, entry in entries.items():
            times = ", ".join(f"{t:.4f}" for t in entry["times_s"])
            print(f"peers: {name:<15} {contender:<16} [{times}] {entry['error'] or ''}",
                  file=sys.stderr)
        results[name] = entries

    json.dump({
        "python": sys.version.split()[0],
        "mpire": version("mpire"),
        "numpy": version("numpy"),
        "k_per_ms": k_per_ms,
        "results": results,
    }, sys.stdout)
    print()


if __name__ == "__main__":
    main()
