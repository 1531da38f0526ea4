"""Temporary names for atomic writes that cannot collide across processes or machines.

Every atomic write (checkpoints, cache entries, shards, split manifests, the node's recordings)
goes through a hidden sibling that is renamed over the target. On a shared filesystem two
hosts can run processes with the same PID, so the sibling's name carries the host name too.

>>> temp_sibling(Path("/runs/a/checkpoint.pt")).name.startswith(".checkpoint.pt.tmp-")
True
"""

from __future__ import annotations

import os
import re
import socket
from pathlib import Path

__all__ = ["host_name", "temp_sibling"]


def host_name() -> str:
    """Return the short host name, reduced to characters that are safe in a file name."""
    name = socket.gethostname().split(".")[0] or "host"
    return re.sub(r"[^A-Za-z0-9_-]", "_", name)


def temp_sibling(path: str | os.PathLike[str]) -> Path:
    """Return ``path``'s hidden temporary sibling, unique to this host and process."""
    target = Path(path)
    return target.with_name(f".{target.name}.tmp-{host_name()}-{os.getpid()}")
