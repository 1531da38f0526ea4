"""MoCo v2 training throughput on the ``cpu`` config: fp32 vs bf16 autocast, and peak memory.

Runs a few full MoCo steps (two augmented views, query + momentum key encoder with
split-BN, InfoNCE against the queue, SGD step) on synthetic 96 x 128 differences, after
one warm-up step, for each precision. Prints images/s (one image = one trial = two
views), the bf16 / fp32 ratio measured in this run, and the process's peak RSS.
``TGP_BENCH_STEPS`` sets the timed steps (default 4).
"""

from __future__ import annotations

import os
import resource
import time

import torch

from tactile_grasp_predictor.preprocess import difference
from training.config import load_config
from training.methods import build_method
from training.train import preprocess_for, synthetic_set


def _steps(bf16: bool, steps: int) -> float:
    cfg = load_config("cpu", ["moco_k=256", f"bf16={'true' if bf16 else 'false'}"])
    data = synthetic_set(cfg.batch_size * 2, cfg.resize_hw, seed=0)
    torch.manual_seed(0)
    method = build_method(cfg, preprocess_for(cfg, data), 10_000)
    opt = torch.optim.SGD([p for p in method.parameters() if p.requires_grad], lr=cfg.lr, momentum=0.9)
    diff = difference(data.before[: cfg.batch_size], data.during[: cfg.batch_size])
    idx = torch.arange(cfg.batch_size)
    labels = torch.as_tensor(data.labels[: cfg.batch_size])

    def step() -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = method(diff, idx, labels)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    step()  # warm-up
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    return steps * cfg.batch_size / (time.perf_counter() - t0)


def main() -> None:
    cfg = load_config("cpu")
    threads = cfg.num_threads or torch.get_num_threads()
    torch.set_num_threads(threads)
    steps = int(os.environ.get("TGP_BENCH_STEPS", "4"))
    print(f"MoCo step, cpu config: {cfg.arch}, {cfg.crop}px crops, batch {cfg.batch_size}, "
          f"split_bn {cfg.split_bn}, {threads} thread(s), {steps} timed steps (load average "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")
    fp32 = _steps(False, steps)
    print(f"  fp32 : {fp32:7.1f} images/s")
    bf16 = _steps(True, steps)
    print(f"  bf16 : {bf16:7.1f} images/s  ({bf16 / fp32:.2f}x fp32)")
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"  peak resident memory of this training process: {peak_mb:.0f} MiB")


if __name__ == "__main__":
    main()
