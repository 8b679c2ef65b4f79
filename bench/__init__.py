"""Benchmarks and load tests of the inference service; they report figures and are not part of the test suite."""
