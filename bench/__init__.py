"""Benchmarks: `./run.sh bench [--quick]` runs `bench.run`; docs/benchmarks.md has the tables."""
