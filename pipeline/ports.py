"""Free ports on the loopback interface: other programs may hold any port, so never assume one."""

from __future__ import annotations

import socket


def free_port() -> int:
    """A port nobody holds right now (the kernel picks it)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
