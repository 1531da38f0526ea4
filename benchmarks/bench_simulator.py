"""Simulator throughput: trials/s at 160 x 120 (no streams), 1 and 2 worker processes.

Also the parts of one trial (physics + rays vs GelSight rendering) and the renderer's
cost per image at 160 x 120 and 320 x 240. Target (issue 3): >= 25 trials/s at 160 x 120
on the 2-core machine.
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

TARGET = 25.0


def _simulate(trials: int, workers: int, out: Path) -> tuple[float, float]:
    """Run ``tgp simulate``; return (trials/s wall clock, CPU seconds per trial over all processes)."""
    from training.sim import cli

    p = argparse.ArgumentParser()
    cli.add_arguments(p)
    args = p.parse_args(
        [
            "--trials",
            str(trials),
            "--seed",
            "1",
            "--out",
            str(out),
            "--workers",
            str(workers),
            "--shard-size",
            str(max(1, trials // workers)),
            "--no-progress",
        ]
    )
    cpu0 = _cpu()
    t0 = time.perf_counter()
    cli.run(args)
    return trials / (time.perf_counter() - t0), (_cpu() - cpu0) / trials


def _cpu() -> float:
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def main() -> None:
    from training.sim.gelsight import GelSightRenderer
    from training.sim.protocol import SimConfig, TrialSimulator

    torch.set_num_threads(1)
    n = int(os.environ.get("BENCH_SIM_TRIALS", "60"))
    with tempfile.TemporaryDirectory() as tmp:
        one, cpu_one = _simulate(n // 2, 1, Path(tmp) / "w1")
        two, cpu_two = _simulate(n, 2, Path(tmp) / "w2")
    print(f"tgp simulate 160x120, 1 worker : {one:6.1f} trials/s  (CPU {cpu_one * 1e3:.0f} ms/trial)")
    print(
        f"tgp simulate 160x120, 2 workers: {two:6.1f} trials/s  (x{two / one:.2f} vs 1 worker; "
        f"target {TARGET:.0f}: {'met' if two >= TARGET else 'NOT met'}, {two / TARGET:.2f} of it)"
    )
    ideal = 2.0 / cpu_two
    print(
        f"CPU {cpu_two * 1e3:.0f} ms/trial with 2 workers -> {ideal:.1f} trials/s on 2 otherwise idle cores "
        f"({ideal / TARGET:.2f} of the target; load average now {os.getloadavg()[0]:.1f}, "
        f"{os.cpu_count()} cores)"
    )

    sim = TrialSimulator(SimConfig())
    sim.simulate(0, 0)
    render_s = 0.0
    orig = sim.renderer.render_float

    def timed(hm):  # type: ignore[no-untyped-def]
        nonlocal render_s
        t = time.perf_counter()
        out = orig(hm)
        render_s += time.perf_counter() - t
        return out

    sim.renderer.render_float = timed  # type: ignore[method-assign]
    t0 = time.perf_counter()
    k = 10
    for i in range(k):
        sim.simulate(0, i)
    total = (time.perf_counter() - t0) / k
    print(
        f"one trial (1 process): {total * 1e3:.0f} ms = rendering {render_s / k * 1e3:.0f} ms "
        f"({render_s / k / total:.0%}) + physics, rays, gel, noise {(total - render_s / k) * 1e3:.0f} ms"
    )

    for w, h in ((160, 120), (320, 240)):
        r = GelSightRenderer(w, h)
        hm = np.stack([r.sphere_height_map((320, 240), 2.0, 0.8)] * 6)
        r.render_float(hm)
        t0 = time.perf_counter()
        reps = 5
        for _ in range(reps):
            r.render_float(hm)
        ms = (time.perf_counter() - t0) / reps / 6 * 1e3
        print(f"GelSight renderer {w}x{h}: {ms:.2f} ms/image (batch of 6)")


if __name__ == "__main__":
    main()
