"""The arithmetic of the pool benchmark, bit for bit the same as pool-bench/src/kernels.rs.

All values are u64 with wrap-around: Python ints masked with M = 2**64 - 1 after every operation
that can overflow. numpy (only for the expensive-init table) is imported when present, so the
pure functions can be checked against Rust without the venv (pool-bench/tests/python_parity.rs).
"""

import time
import zlib

try:
    import numpy as np
except ImportError:  # the pure functions work without it; the table needs it
    np = None

M = (1 << 64) - 1
STATE_BINS = 1024
LOOKUPS_PER_TASK = 1024
PAYLOAD_BYTES = 1 << 20
PAYLOAD_TABLE = bytes(((b * 167 + 13) & 0xFF) for b in range(256))


def mix(x):
    z = (x + 0x9E3779B97F4A7C15) & M
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M
    return z ^ (z >> 31)


def mix_np(z):
    """mix() over a uint64 array (numpy array arithmetic wraps modulo 2**64)."""
    z = z + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def spin(x, k):
    s = mix(x) | 1
    for _ in range(k):
        s ^= (s << 13) & M
        s ^= s >> 7
        s ^= (s << 17) & M
    return s


def square(x):
    return (x * x) & M


def spin_task(k, x):
    return spin(x, k)


def spin_packed(x):
    return spin(x, x & 0xFFFFFFFF)


def iterations_for(micros, k_per_ms):
    return micros * k_per_ms // 1000


def build_table(entries):
    return mix_np(np.arange(entries, dtype=np.uint64))


def table_lookup(table, i):
    base = i * LOOKUPS_PER_TASK
    idx = mix_np(np.arange(base, base + LOOKUPS_PER_TASK, dtype=np.uint64)) % np.uint64(len(table))
    return int(table[idx].sum(dtype=np.uint64))


def payload_input(i):
    base = bytes(range(256)) * (PAYLOAD_BYTES // 256)
    r = i % 256
    return base[r:] + base[:r]


def payload_task(data):
    return data.translate(PAYLOAD_TABLE)


def checksum_u64(values):
    return sum((i + 1) * v for i, v in enumerate(values)) & M


def state_checksum(state):
    return sum((b + 1) * v for b, v in enumerate(state)) & M


def payload_checksum(outputs):
    return sum((i + 1) * zlib.crc32(o) for i, o in enumerate(outputs)) & M


def stateful_step(hist, i, k):
    """One stateful task: spin(i, k) added into the bin the result selects."""
    v = spin(i, k)
    b = v % STATE_BINS
    hist[b] = (hist[b] + v) & M


def merge_states(states):
    merged = [0] * STATE_BINS
    for s in states:
        for b, v in enumerate(s):
            merged[b] = (merged[b] + v) & M
    return merged


def calibrate():
    """Iterations of spin() per millisecond in this interpreter: the fastest of 40 probes of
    ~0.5 ms (short probes fit in one time slice, so other load on the machine skews them less)."""
    probe = 1_500
    best = float("inf")
    for i in range(40):
        t = time.perf_counter()
        spin(i, probe)
        best = min(best, time.perf_counter() - t)
    return max(1, int(probe / (best * 1000)))
