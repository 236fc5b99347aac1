"""One module per section of the benchmark harness (bench/run_benchmarks.py runs them)."""
