"""Where and when the model's thread runs (Linux): its own CPUs, and optionally real-time priority.

On a small computer the inference thread shares its cores with the DDS threads that receive
and reassemble 0.9 MB camera frames, the executor that turns them into Python objects, and
the camera driver. Each burst of theirs that lands on the model's core stretches the forward
pass and shows in the decision latency's tail (numbers: docs/node.md, ``make bench``).

``parse_cpu_list`` reads the usual Linux CPU-list syntax (``"1"``, ``"2-3"``, ``"1,3"``), and
``isolate_current_thread`` pins the calling thread to those CPUs and every other thread of
the process to the rest. Threads inherit the affinity of the thread that creates them, so
the model's own thread pools (created later, on the pinned thread) stay on its CPUs and
threads started later elsewhere stay off them.

``set_realtime_priority`` puts the calling thread under ``SCHED_FIFO``, the way
ros2_control's controller manager raises its loop: the model then preempts every
normal-priority thread on its core. It needs ``CAP_SYS_NICE`` or an ``rtprio`` limit
(``/etc/security/limits.conf``); where the kernel refuses, the caller runs on at normal
priority and says why.
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


MAX_RT_PRIORITY = 99  # SCHED_FIFO priorities on Linux: 1 (lowest) to 99


def set_realtime_priority(priority: int) -> None:
    """Run the calling thread under ``SCHED_FIFO`` at ``priority`` (1–99).

    Threads it creates later inherit the policy (the model's thread pools, if any).

    Raises:
        ConfigError: naming ``inference_priority``, for a priority outside 1–99, a platform
            without ``SCHED_FIFO``, or a kernel refusal (no ``CAP_SYS_NICE`` / ``rtprio`` limit).

    """
    if not 1 <= priority <= MAX_RT_PRIORITY:
        raise ConfigError(f"inference_priority: {priority} is outside 1-{MAX_RT_PRIORITY}")
    if not hasattr(os, "sched_setscheduler") or not hasattr(os, "SCHED_FIFO"):
        raise ConfigError("inference_priority: real-time scheduling is not supported on this platform")
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(priority))  # 0: the calling thread
    except OSError as exc:
        raise ConfigError(
            f"inference_priority: SCHED_FIFO {priority} refused ({exc.strerror}); it needs "
            f"CAP_SYS_NICE or an rtprio limit >= {priority} for this user"
        ) from exc
