"""Helpers shared by the test suite and the benchmarks (importable without pytest)."""
