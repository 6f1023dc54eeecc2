"""Pieces of the benchmark harness that bench/run.py puts together."""
