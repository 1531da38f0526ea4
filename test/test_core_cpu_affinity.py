"""inference_cpus and inference_priority: the CPU-list parser, the pinning, the real-time priority.

The pinning and the priority are tried in child processes, never this one.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from tactile_grasp_predictor.cpu_affinity import parse_cpu_list, set_realtime_priority
from tactile_grasp_predictor.errors import ConfigError

N_CPUS = os.cpu_count() or 1


def test_parse_cpu_list_reads_linux_syntax() -> None:
    assert parse_cpu_list("") == frozenset() and parse_cpu_list("  ") == frozenset()
    assert parse_cpu_list("0") == {0}
    if N_CPUS >= 2:
        assert parse_cpu_list("0-1") == {0, 1} and parse_cpu_list(" 1 , 0 ") == {0, 1}


@pytest.mark.parametrize(("text", "why"), [
    ("a", "'a' in 'a' is not a CPU number"), ("1-", "not a CPU number"), ("-1", "not a CPU number"),
    ("0,,1", "'' in"), ("3-1", "range 3-1 runs backwards"), (f"{N_CPUS}", f"CPU {N_CPUS} does not exist"),
])
def test_parse_cpu_list_names_the_parameter_and_the_problem(text: str, why: str) -> None:
    with pytest.raises(ConfigError, match="inference_cpus: .*" + why.replace("(", r"\(")):
        parse_cpu_list(text)


CHILD = textwrap.dedent("""
    import json, os, threading
    from tactile_grasp_predictor.cpu_affinity import isolate_current_thread

    def affinity() -> list[int]:
        return sorted(os.sched_getaffinity(0))

    seen = {}
    stop = threading.Event()
    def sleeper() -> None:
        seen["sleeper_tid"] = threading.get_native_id()
        stop.wait()
    threading.Thread(target=sleeper).start()
    def worker() -> None:
        seen["rest"] = sorted(isolate_current_thread(frozenset({1})))
        seen["worker"] = affinity()
        child = threading.Thread(target=lambda: seen.__setitem__("worker_child", affinity()))
        child.start(); child.join()
    w = threading.Thread(target=worker); w.start(); w.join()
    seen["main"] = affinity()
    seen["sleeper"] = sorted(os.sched_getaffinity(seen.pop("sleeper_tid")))
    late = threading.Thread(target=lambda: seen.__setitem__("main_child", affinity()))
    late.start(); late.join()
    stop.set()
    print(json.dumps(seen))
""")


@pytest.mark.skipif(N_CPUS < 2 or not hasattr(os, "sched_setaffinity"), reason="needs Linux and 2 CPUs")
def test_isolate_pins_the_caller_and_moves_every_other_thread_off_its_cpus() -> None:
    start = sorted(os.sched_getaffinity(0))
    if 1 not in start or len(start) < 2:
        pytest.skip(f"this process may only use CPUs {start}")
    out = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, timeout=60,
                         check=True)
    seen = json.loads(out.stdout)
    rest = [c for c in start if c != 1]
    assert seen["worker"] == [1] and seen["worker_child"] == [1]  # the model's thread pools come later
    assert seen["rest"] == rest and seen["main"] == rest and seen["sleeper"] == rest
    assert seen["main_child"] == rest  # threads started later elsewhere stay off CPU 1


def test_realtime_priority_outside_1_to_99_is_a_config_error() -> None:
    for bad in (0, 100, -3):
        with pytest.raises(ConfigError, match=f"inference_priority: {bad} is outside 1-99"):
            set_realtime_priority(bad)


PRIORITY_CHILD = textwrap.dedent("""
    import json, os, resource, sys, threading
    from tactile_grasp_predictor.cpu_affinity import set_realtime_priority
    from tactile_grasp_predictor.errors import ConfigError

    if sys.argv[1] == "refuse":  # no CAP_SYS_NICE and no rtprio limit: what most users have
        resource.setrlimit(resource.RLIMIT_RTPRIO, (0, 0))
        if os.geteuid() == 0:
            try:
                os.setuid(65534)  # root's capabilities go with it
            except PermissionError:  # a container without CAP_SETUID: cannot drop them here
                print(json.dumps({"cannot_drop": True}))
                sys.exit(0)
    seen = {}
    def worker() -> None:
        try:
            set_realtime_priority(7)
        except ConfigError as exc:
            seen["error"] = str(exc)
        seen["worker"] = os.sched_getscheduler(0)
        child = threading.Thread(target=lambda: seen.__setitem__("worker_child", os.sched_getscheduler(0)))
        child.start(); child.join()
    w = threading.Thread(target=worker); w.start(); w.join()
    seen["main"] = os.sched_getscheduler(0)
    print(json.dumps(seen))
""")


@pytest.mark.skipif(not hasattr(os, "SCHED_FIFO"), reason="needs Linux scheduling")
def test_realtime_priority_applies_to_the_calling_thread_or_says_why_not() -> None:
    def child(mode: str) -> dict:
        out = subprocess.run([sys.executable, "-c", PRIORITY_CHILD, mode], capture_output=True, text=True,
                             timeout=60, check=True)
        return json.loads(out.stdout)

    refused = child("refuse")
    if not refused.get("cannot_drop"):
        assert "SCHED_FIFO 7 refused" in refused["error"] and "rtprio" in refused["error"], refused
        assert refused["worker"] == refused["main"] == os.SCHED_OTHER
    allowed = child("try")
    assert allowed["main"] == os.SCHED_OTHER  # only the calling thread changes
    if "error" in allowed:  # this user may not raise priorities: the same clear refusal
        assert "SCHED_FIFO 7 refused" in allowed["error"], allowed
        assert allowed["worker"] == os.SCHED_OTHER
    else:
        assert allowed["worker"] == allowed["worker_child"] == os.SCHED_FIFO  # the model's pools inherit it
