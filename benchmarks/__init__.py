"""Benchmarks comparing runsc-py with runc and gVisor's runsc: see benchmarks/run.py."""
