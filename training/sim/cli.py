"""``tgp simulate``: simulate grasp trials and write shards in the Calandra layout.

Trial ``i`` of a run depends only on ``(seed, i)`` and the image options, so shards are
the same bytes whatever ``--workers`` is, and an interrupted run resumes by skipping the
shards already written (each is written atomically). Worker processes simulate a few
trials at a time; the main process collects them in order and writes each shard.

Example:
    tgp simulate --trials 300 --seed 7 --out data/sim

"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from tactile_grasp_predictor.errors import ConfigError

MANIFEST = "sim_manifest.json"
STREAM_SHARD_SIZE = 25  # frame streams are large: smaller shards by default
CHUNK = 4  # trials per work item sent to a worker process

_SIM: Any = None  # per-process TrialSimulator


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``tgp simulate`` options to ``parser``."""
    parser.add_argument("--trials", type=int, required=True, help="number of trials to simulate")
    parser.add_argument("--seed", type=int, default=0, help="run seed (trial i depends on seed and i only)")
    parser.add_argument("--out", type=Path, required=True, help="output directory for the shards")
    parser.add_argument(
        "--workers", type=int, default=0, help="processes (default: CPU count, at most the shards)"
    )
    parser.add_argument(
        "--shard-size",
        type=int,
        default=0,
        help=f"trials per shard (default 250; {STREAM_SHARD_SIZE} with --streams)",
    )
    parser.add_argument("--width", type=int, default=160, help="GelSight image width (<= 640)")
    parser.add_argument("--height", type=int, default=120, help="GelSight image height (<= 480)")
    parser.add_argument(
        "--streams",
        action="store_true",
        help="also store per-finger camera streams (sim_gelsight{A,B}_stream + _time)",
    )
    parser.add_argument("--fps", type=float, default=15.0, help="camera rate of the streams (Hz)")
    parser.add_argument(
        "--noise", type=float, default=1.0, help="camera noise scale: 1 = each sensor's own, 0 = none"
    )
    parser.add_argument(
        "--sensors",
        choices=("fleet", "ideal"),
        default="fleet",
        help="fleet: the robots' sensors with their nuisances; ideal: one clean sensor",
    )
    parser.add_argument(
        "--compression",
        type=int,
        default=0,
        help="gzip level of the image datasets (0-9; 0: none: camera noise compresses by 15 %% at 9, "
        "for 9 ms per trial)",
    )
    parser.add_argument(
        "--report",
        action="store_true",
        help="then write the difficulty report into OUT/report (training/sim/report.py)",
    )
    parser.add_argument("--report-epochs", type=int, default=12, help="epochs of the report's small CNNs")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def _config(args: argparse.Namespace) -> Any:
    from training.sim.protocol import SimConfig

    if args.trials < 1:
        raise ConfigError(f"--trials must be >= 1, got {args.trials}")
    if not (8 <= args.width <= 640 and 6 <= args.height <= 480):
        raise ConfigError(f"--width/--height {args.width}x{args.height} outside 8x6 .. 640x480")
    if not (1.0 <= args.fps <= 120.0):
        raise ConfigError(f"--fps must be in [1, 120], got {args.fps}")
    if not (0 <= args.compression <= 9):
        raise ConfigError(f"--compression must be 0..9, got {args.compression}")
    if args.noise < 0:
        raise ConfigError(f"--noise must be >= 0, got {args.noise}")
    return SimConfig(
        width=args.width,
        height=args.height,
        fps=args.fps,
        streams=args.streams,
        noise=args.noise,
        sensors=args.sensors,
    )


def _init_worker(config: Any) -> None:
    import cv2
    import torch

    from training.sim.protocol import TrialSimulator

    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    global _SIM
    _SIM = TrialSimulator(config)


def _simulate_chunk(item: tuple[int, int, int]) -> list[dict[str, Any]]:
    seed, start, stop = item
    return [_SIM.simulate(seed, i) for i in range(start, stop)]


def shard_jobs(
    trials: int, seed: int, shard_size: int, out: Path, level: int
) -> list[tuple[int, int, int, str, int]]:
    """Return (seed, first trial, end trial, path, gzip level) for every shard of a run."""
    jobs = []
    for k, start in enumerate(range(0, trials, shard_size)):
        stop = min(start + shard_size, trials)
        jobs.append((seed, start, stop, str(out / f"sim_seed{seed}_{k:03d}.h5"), level))
    return jobs


def _check_manifest(out: Path, manifest: dict[str, Any]) -> None:
    path = out / MANIFEST
    if path.is_file():
        old = json.loads(path.read_text())
        if old != manifest:
            raise ConfigError(
                f"{path}: an earlier run with other options wrote this directory "
                f"({old}); use another --out or delete it"
            )
    else:
        path.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")


def run(args: argparse.Namespace) -> int:
    """Simulate ``args.trials`` trials into ``args.out``; returns 0 on success."""
    from tqdm import tqdm

    from training.data.shard_writer import write_shard

    config = _config(args)
    shard_size = args.shard_size or (STREAM_SHARD_SIZE if args.streams else 250)
    if shard_size < 1:
        raise ConfigError(f"--shard-size must be >= 1, got {shard_size}")
    out: Path = args.out
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out}: exists and is not a directory")
    out.mkdir(parents=True, exist_ok=True)
    cfg = asdict(config)
    cfg["ray_grid"] = list(cfg["ray_grid"])
    _check_manifest(
        out,
        {
            "format": 2,
            "seed": args.seed,
            "shard_size": shard_size,
            "config": cfg,
            "compression": args.compression,
        },
    )
    jobs = shard_jobs(args.trials, args.seed, shard_size, out, args.compression)
    todo = [j for j in jobs if not Path(j[3]).is_file()]
    done = sum(j[2] - j[1] for j in jobs if Path(j[3]).is_file())
    if done:
        print(f"resuming: {len(jobs) - len(todo)} shard(s) with {done} trials already in {out}")
    # work items: a few trials each, never across a shard boundary; shards are written in order
    items = [
        (args.seed, a, min(a + CHUNK, stop))
        for (_, start, stop, _, _) in todo
        for a in range(start, stop, CHUNK)
    ]
    workers = args.workers or (os.cpu_count() or 1)
    workers = max(1, min(workers, len(items))) if items else 1
    t0 = time.perf_counter()
    bar = tqdm(total=args.trials, initial=done, unit="trial", desc="simulate", disable=args.no_progress)
    pending: list[dict[str, Any]] = []
    remaining = list(todo)

    def collect(chunk: list[dict[str, Any]]) -> None:
        pending.extend(chunk)
        bar.update(len(chunk))
        while remaining and len(pending) >= remaining[0][2] - remaining[0][1]:
            _seed, start, stop, path, level = remaining.pop(0)
            write_shard(path, pending[: stop - start], compression_level=level)
            del pending[: stop - start]

    if workers == 1:
        _init_worker(config)
        for item in items:
            collect(_simulate_chunk(item))
    else:
        ctx = mp.get_context("fork")
        with ctx.Pool(workers, initializer=_init_worker, initargs=(config,)) as pool:
            for chunk in pool.imap(_simulate_chunk, items):
                collect(chunk)
    assert not remaining and not pending
    bar.close()
    dt = time.perf_counter() - t0
    made = args.trials - done
    if made:
        print(
            f"simulated {made} trials in {dt:.1f} s ({made / dt:.1f} trials/s, {workers} worker(s)) -> {out}"
        )
    if args.report:
        import sys

        from training.sim import report

        command = "tgp " + " ".join(sys.argv[1:]) if sys.argv[0].endswith("tgp") else ""
        path = report.run(out, epochs=args.report_epochs, progress=not args.no_progress, command=command)
        print(path.read_text())
    return 0
