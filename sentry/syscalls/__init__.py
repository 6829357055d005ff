"""Syscall handlers, one module per family.

Every handler has the signature `handler(call: Call) -> int | None`: >= 0 is
the return value, < 0 is -errno, None means the handler answered itself
(ADDFD|SEND or CONTINUE).  The policy table (sentry/policy.py) names them as
"module.function".
"""
