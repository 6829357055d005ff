"""The sentry: the syscall supervisor that stands between the workload and the
host kernel (seccomp user notification by default, ptrace as a fallback)."""
