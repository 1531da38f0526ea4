"""Keep the model's thread on CPUs of its own (Linux): the one knob that tamed the latency tail.

On a small computer the inference thread shares its cores with the DDS receive threads that
reassemble 0.9 MB camera frames, the executor that turns them into Python objects, and the
camera driver. On this 2-core machine (640 x 480 at 60 Hz) that made the model call inside
the node ~1.5x slower at the median and ~5x at p99 than alone; giving the inference thread a
core of its own brings it back close to the bare figure (numbers: docs/node.md, ``make bench``).

``parse_cpu_list`` reads the usual Linux CPU-list syntax (``"1"``, ``"2-3"``, ``"1,3"``), and
``isolate_current_thread`` pins the calling thread to those CPUs and every other thread of
the process to the rest. Threads inherit the affinity of the thread that creates them, so
the model's own thread pools (created later, on the pinned thread) stay on its CPUs and
threads started later elsewhere stay off them.
"""

from __future__ import annotations

import contextlib
import os
import re
import threading
from pathlib import Path

from tactile_grasp_predictor.errors import ConfigError

_ITEM = re.compile(r"^(\d+)(?:-(\d+))?$")


def parse_cpu_list(text: str, name: str = "inference_cpus") -> frozenset[int]:
    """Parse a Linux CPU list (``"1"``, ``"0-1"``, ``"1,3-4"``; empty: no CPUs) into CPU numbers.

    Raises:
        ConfigError: naming ``name``, for malformed text, a descending range or a CPU this
            machine does not have.

    """
    cpus: set[int] = set()
    if not text.strip():
        return frozenset()
    n = os.cpu_count() or 1
    for part in text.split(","):
        m = _ITEM.match(part.strip())
        if m is None:
            raise ConfigError(f"{name}: {part.strip()!r} in {text!r} is not a CPU number or range like 2-3")
        lo = int(m.group(1))
        hi = int(m.group(2)) if m.group(2) is not None else lo
        if hi < lo:
            raise ConfigError(f"{name}: range {lo}-{hi} runs backwards")
        if hi >= n:
            raise ConfigError(f"{name}: CPU {hi} does not exist here (CPUs 0-{n - 1})")
        cpus.update(range(lo, hi + 1))
    return frozenset(cpus)


def isolate_current_thread(cpus: frozenset[int]) -> frozenset[int]:
    """Pin the calling thread to ``cpus`` and every other thread of this process to the rest.

    "The rest" is the process's current CPU set minus ``cpus``; when that is empty the other
    threads are left alone. Returns the CPUs the other threads now use.

    Raises:
        ConfigError: affinity is not supported here (not Linux) or the kernel refuses the
            set (e.g. none of ``cpus`` is in this container's cpuset).

    """
    if not hasattr(os, "sched_setaffinity"):
        raise ConfigError("inference_cpus: CPU affinity is not supported on this platform")
    rest = frozenset(os.sched_getaffinity(0)) - cpus
    try:
        os.sched_setaffinity(0, cpus)  # 0: the calling thread
    except OSError as exc:
        raise ConfigError(f"inference_cpus: cannot pin the inference thread to {sorted(cpus)}: {exc}") \
            from exc
    if not rest:
        return frozenset()
    pin_process_threads(rest, skip=threading.get_native_id())
    return rest


def pin_process_threads(cpus: frozenset[int] | set[int], skip: int | None = None) -> None:
    """Move every thread of this process (except thread id ``skip``) to ``cpus``.

    Threads started later inherit the affinity of the thread that starts them.
    """
    for task in Path("/proc/self/task").iterdir():
        tid = int(task.name)
        if tid != skip:
            with contextlib.suppress(OSError):  # the thread ended meanwhile
                os.sched_setaffinity(tid, cpus)
