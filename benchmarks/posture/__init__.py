"""Host-side posture checks of a live sandbox, for any OCI runtime
(`python -m benchmarks.posture --help`; results in RESULTS.md here)."""
