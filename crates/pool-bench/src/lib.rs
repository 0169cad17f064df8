//! Benchmark harness for pool: the same workloads side by side with rayon, threads, MPIRE and multiprocessing.
