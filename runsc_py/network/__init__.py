"""Network modes, the kernel backstop of the network policy, and standalone
bridge networking (`runsc-py --network=...`).

Modes, as gVisor names them (runsc_py/network/modes.py):
- sandbox (default): the workload uses the spec's network namespace, as
  containerd/CNI, podman and Docker set it up (new, or joined by path);
- none: the workload gets a namespace of its own with only a loopback that
  is up; the sandbox process stays in the spec's, so an engine that
  configures `/proc/<state pid>/ns/net` (a prestart hook, or Docker 28+
  after `create`) puts its interfaces where the workload never sees them;
- host: the runtime's (the host's) namespace; the spec's network namespace
  is ignored; the same socket policy applies;
- bridge: for `runsc-py run` without an engine: a new namespace with a veth
  into a bridge with NAT, and `-p HOSTPORT:CTRPORT` publishing (bridge.py).

pyroute2 costs 130-440 ms to import: only the set-up helper process
(setup.py) imports it, in parallel with the rest of `create`; no other
subcommand does (delete removes bridge state with `ip`/`nft`, bridge.py).
"""

MODES = ("sandbox", "none", "host", "bridge")
