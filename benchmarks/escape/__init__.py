"""Escape-attempt suite: static C probes run inside containers of a runtime.

`python -m benchmarks.escape --runtime runsc-py|runc|runsc|crun [--profile P]
[--probes a,b] [--out DIR]`.  See harness.py and RESULTS.md.
"""
