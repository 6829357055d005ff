"""The gofer: the only process that opens the container's root and mount
sources; it serves file operations to the sentry over a unix socket."""
