"""inference_cpus: the CPU-list parser, and the pinning itself (in a child process, never this one)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from tactile_grasp_predictor.cpu_affinity import parse_cpu_list
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
