"""runsc-py: a runc-compatible OCI runtime whose workloads run under a Python
syscall supervisor (the sentry) with file access mediated by a gofer."""

__version__ = "0.1.0"
