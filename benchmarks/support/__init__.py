"""Code the benchmark scripts share (``benchmarks.support``; the tests import it too)."""
