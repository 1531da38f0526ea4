"""MoCo v2 training throughput on the ``cpu`` config: fp32 vs bf16 autocast, and peak memory.

Full MoCo steps (two augmented views, query + momentum key encoder with split-BN,
InfoNCE against the queue, SGD step) on synthetic 96 x 128 differences. The machine is
shared, so fp32 and bf16 are timed in alternating rounds (after one warm-up step each)
and the best round of each is reported, with the bf16 / fp32 ratio measured in this run
and the process's peak RSS. One image = one trial (two views). Then the cost of the run log
(one ``RunLog.step``: a ``metrics.csv`` row and ten TensorBoard scalars) against that step.
``TGP_BENCH_ROUNDS``
(default 3) and ``TGP_BENCH_STEPS`` (steps per round, default 2) set the length;
``TGP_BENCH_THREADS`` the torch threads (default: the config's).
"""

from __future__ import annotations

import os
import resource
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch

from tactile_grasp_predictor.preprocess import difference
from training.config import load_config
from training.data.sets import synthetic_set
from training.methods import build_method
from training.runlog import RunLog
from training.train import preprocess_for


def _make_step(bf16: bool) -> Callable[[], int]:
    cfg = load_config("cpu", ["moco_k=256", f"bf16={'true' if bf16 else 'false'}"])
    data = synthetic_set(cfg.batch_size * 2, cfg.resize_hw, seed=0)
    torch.manual_seed(0)
    method = build_method(cfg, preprocess_for(cfg, data), 10_000)
    opt = torch.optim.SGD([p for p in method.parameters() if p.requires_grad], lr=cfg.lr, momentum=0.9)
    diff = difference(data.before[: cfg.batch_size], data.during[: cfg.batch_size])
    idx = torch.arange(cfg.batch_size)
    labels = torch.as_tensor(data.labels[: cfg.batch_size])

    def step() -> int:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = method(diff, idx, labels)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return cfg.batch_size

    step()  # warm-up
    return step


def main() -> None:
    cfg = load_config("cpu")
    threads = int(os.environ.get("TGP_BENCH_THREADS", "0")) or cfg.num_threads or torch.get_num_threads()
    torch.set_num_threads(threads)
    rounds = int(os.environ.get("TGP_BENCH_ROUNDS", "3"))
    steps = int(os.environ.get("TGP_BENCH_STEPS", "2"))
    print(f"MoCo step, cpu config: {cfg.arch}, {cfg.crop}px crops, batch {cfg.batch_size}, "
          f"split_bn {cfg.split_bn}, {threads} thread(s); {rounds} alternating rounds of {steps} steps; "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    runs = {"fp32": _make_step(False), "bf16": _make_step(True)}
    best = {k: 0.0 for k in runs}
    for _ in range(rounds):
        for name, step in runs.items():
            t0 = time.perf_counter()
            n = sum(step() for _ in range(steps))
            best[name] = max(best[name], n / (time.perf_counter() - t0))
    print(f"  fp32 : {best['fp32']:7.1f} images/s (best round)")
    print(f"  bf16 : {best['bf16']:7.1f} images/s (best round)  ({best['bf16'] / best['fp32']:.2f}x fp32)")
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"  peak resident memory of this training process (both models): {peak_mb:.0f} MiB")
    per_step = _runlog_seconds_per_step()
    step_s = cfg.batch_size / best["bf16"]
    print(f"  run log: {1e6 * per_step:.0f} us per step (metrics.csv + TensorBoard), "
          f"{100 * per_step / step_s:.3f} % of a bf16 step")


def _runlog_seconds_per_step(steps: int = 2000) -> float:
    """Median over 3 rounds of one ``RunLog.step`` with ten scalars, flushed at the end of a round."""
    scalars = {k: 0.5 for k in ("loss", "lr", "images_per_s", "top1", "pos_sim", "neg_sim",
                                "feature_std", "queue_std", "a", "b")}
    times = []
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(3):
            run = RunLog(Path(tmp) / f"r{r}")
            t0 = time.perf_counter()
            for i in range(steps):
                run.step(i + 1, 1, scalars)
            run.flush()
            times.append((time.perf_counter() - t0) / steps)
            run.close()
    return sorted(times)[1]


if __name__ == "__main__":
    main()
