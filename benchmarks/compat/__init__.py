"""Compatibility harness: CPython's regression suite and an application matrix
in a Debian rootfs under runc, runsc-py and gVisor (see cli.py)."""
