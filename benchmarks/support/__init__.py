"""Code the benchmark scripts share (imported as ``support`` by the scripts, as
``benchmarks.support`` by the tests)."""
