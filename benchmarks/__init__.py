"""Benchmarks run from a source checkout (``python -m benchmarks.<name>``)."""
