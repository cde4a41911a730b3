"""Benchmarks as library code: the scale benchmark (memory and time at real scale)."""
