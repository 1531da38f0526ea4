"""The few collective operations training needs, as no-ops on a single process.

``torchrun --nproc_per_node=P -m training.cli train ...`` sets ``RANK``/``WORLD_SIZE``;
:func:`init_from_env` then joins the process group (NCCL on GPU, gloo on CPU). On several
machines (``--nnodes``), :func:`builders_first` lets one process build what all of them read
(the frame cache) while the others wait, and :func:`broadcast_file` hands rank 0's checkpoint
to every process, so a node without a shared filesystem resumes from the same state.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import torch
import torch.distributed as dist

from training.tempfiles import host_name

#: How long a collective may wait (a cache built by one rank while the others wait at a barrier).
TIMEOUT = timedelta(minutes=60)


@dataclass(frozen=True)
class DistContext:
    """Where this process sits: ``rank`` of ``world_size`` (``local_rank`` on its node), and its device."""

    rank: int = 0
    world_size: int = 1
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        """Whether this process writes checkpoints, logs and reports."""
        return self.rank == 0

    def describe(self) -> str:
        """Name this process in messages: ``rank 1/4 (local 1) on host``."""
        return f"rank {self.rank}/{self.world_size} (local {self.local_rank}) on {host_name()}"


def init_from_env(device: str = "auto") -> DistContext:
    """Join the process group if launched by ``torchrun`` (``WORLD_SIZE`` > 1), else single process.

    Calling it again returns the same context (the group is joined once per process).
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    want_cuda = device == "cuda" or (device == "auto" and torch.cuda.is_available())
    if world <= 1:
        return DistContext(0, 1, torch.device("cuda" if want_cuda else "cpu"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if want_cuda:
        torch.cuda.set_device(local_rank)
        dev = torch.device("cuda", local_rank)
    else:
        dev = torch.device("cpu")
    if not dist.is_initialized():
        backend = "nccl" if want_cuda else "gloo"
        if os.environ.get("TORCHELASTIC_USE_AGENT_STORE") == "True":
            # torchrun's agent keeps one store across worker restarts; without a prefix per attempt,
            # restarted workers read the dead workers' addresses (pytorch/pytorch#135712)
            base = dist.TCPStore(os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"]), world,
                                 is_master=False, timeout=TIMEOUT)
            store = dist.PrefixStore(f"tgp/attempt{restart_count()}/world{world}", base)
            dist.init_process_group(backend=backend, store=store, rank=int(os.environ["RANK"]),
                                    world_size=world, timeout=TIMEOUT)
        else:
            dist.init_process_group(backend=backend, timeout=TIMEOUT)
    return DistContext(dist.get_rank(), dist.get_world_size(), dev, local_rank)


def restart_count() -> int:
    """How often ``torchrun`` has restarted this job's workers (``--max-restarts``); 0 otherwise."""
    return int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0") or 0)


def barrier() -> None:
    """Wait for every process (no-op on one process)."""
    if world_size() > 1:
        dist.barrier()


@contextmanager
def builders_first(ctx: DistContext, directory: Path) -> Iterator[bool]:
    """Run the body on the builders first, then on the others: yields whether this process builds.

    The builder is rank 0 when every node sees ``directory`` (a shared filesystem), else the
    first process (local rank 0) of each node. Rank 0 leaves a probe file in ``directory``;
    a node that cannot see it builds its own copy. The others wait at a barrier until the
    builders are done, then run the body and find the result in place. If a node misses the
    probe on a shared filesystem (attribute caching), it builds too: the cache's unique
    temporary names and atomic rename keep that correct, only slower.
    """
    if ctx.world_size <= 1:
        yield True
        return
    token = torch.zeros(1, dtype=torch.int64, device=ctx.device)
    if ctx.is_main:
        directory.mkdir(parents=True, exist_ok=True)
        token[0] = secrets.randbits(62)
    broadcast_(token)
    probe = directory / f".tgp-shared-probe-{int(token.item()):x}"
    if ctx.is_main:
        probe.write_text(host_name() + "\n")
    barrier()
    builder = ctx.is_main or (ctx.local_rank == 0 and not probe.exists())
    barrier()  # every process has looked before the probe goes
    if ctx.is_main:
        probe.unlink(missing_ok=True)
    if not builder:
        barrier()  # the builders' barrier below
    try:
        yield builder
    finally:
        if builder:
            barrier()


def broadcast_file(ctx: DistContext, path: Path) -> bytes | None:
    """Rank 0's bytes of ``path`` on every process (``None`` everywhere if rank 0 has no such file)."""
    if ctx.world_size <= 1:
        return path.read_bytes() if path.is_file() else None
    data = path.read_bytes() if ctx.is_main and path.is_file() else b""
    size = torch.tensor([len(data) if ctx.is_main and path.is_file() else -1], dtype=torch.int64,
                        device=ctx.device)
    broadcast_(size)
    n = int(size.item())
    if n <= 0:
        return None if n < 0 else b""
    buf = torch.empty(n, dtype=torch.uint8, device=ctx.device)
    if ctx.is_main:
        buf.copy_(torch.frombuffer(bytearray(data), dtype=torch.uint8))
    broadcast_(buf)
    return data if ctx.is_main else bytes(buf.cpu().numpy().tobytes())


def world_size() -> int:
    """Count the processes in the group (1 when not distributed)."""
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def rank() -> int:
    """Return this process's rank (0 when not distributed)."""
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


@torch.no_grad()
def concat_all_gather(x: torch.Tensor) -> torch.Tensor:
    """Concatenate ``x`` of every process along dim 0 (no gradient): ``B x ...`` → ``(P B) x ...``."""
    if world_size() == 1:
        return x
    parts = [torch.empty_like(x) for _ in range(world_size())]
    dist.all_gather(parts, x.contiguous())
    return torch.cat(parts, dim=0)


@torch.no_grad()
def broadcast_(x: torch.Tensor, src: int = 0) -> torch.Tensor:
    """Overwrite ``x`` in place with rank ``src``'s value (no-op on one process)."""
    if world_size() > 1:
        dist.broadcast(x, src=src)
    return x


def all_reduce_mean(value: float) -> float:
    """Mean of a Python float over processes (for logging)."""
    if world_size() == 1:
        return value
    t = torch.tensor([value], dtype=torch.float64)
    dist.all_reduce(t)
    return float(t.item()) / world_size()
