"""``tgp bag eval`` throughput (grasps/s) on 200 simulated grasps, rgb8 640 x 480 at 30 Hz (issue #17).

The bag: ``tgp simulate --streams --width 640 --height 480 --fps 30`` trials recorded by
``tgp bag record``'s writer (``write_bag``) into one mcap file, 200 grasps: the simulator takes
over a minute per 640 x 480 trial on two cores, so ``TRIALS`` simulated trials are recorded
round-robin until the bag has 200 grasps (each grasp is a whole simulated trial: same frames,
gripper stream and message counts per grasp as a 200-trial run; ~26 GB). Set
``TGP_BENCH_REPLAY_BAG`` to replay a bag of your own instead (e.g. made with
``tgp simulate --trials 200 ... && tgp bag record``).

Replayed with a cpu-size ResNet-18 bundle (random weights, ONNX, as ``bench_node``):

- in place (:mod:`tactile_grasp_predictor.replay.mcap_direct`, the default), model on 1
  thread (the node's ``num_threads``) — twice: the first pass reads the bag's headers from
  disk, the second finds them in the page cache; then on 2 threads (``--num-threads 2``);
  then without a model (every grasp ABORTs ``model_unavailable``: the reading and the
  session alone);
- the baseline, in the same run: the rosbags reader (every message copied out of its
  chunk, what ``tgp bag eval`` did before), on a bag of ``BASELINE_GRASPS`` grasps of the
  same trials (the full 200 take minutes), beside the in-place reader on the same grasps,
  each timed on its second pass (from the page cache); their decisions (verdict, reason,
  p, Ta/Tb stamps) are compared grasp by grasp.

Each line says the 1-minute load average after it. ``python -m benchmarks replay``.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

GRASPS = 200
TRIALS = 2  # simulated trials, recorded round-robin into the GRASPS-grasp bag
BASELINE_GRASPS = 20
ROOT = Path(__file__).resolve().parents[1]


def _load() -> str:
    return f"load {os.getloadavg()[0]:.2f}"


def make_bags(root: Path, grasps: int = GRASPS) -> tuple[Path, Path]:
    """Simulate ``TRIALS`` 640 x 480 30 Hz trials; record a ``grasps``-grasp bag and a baseline bag."""
    from tactile_grasp_predictor.data.trial_streams import load_trial_streams
    from training.bag_record import RecordOptions, write_bag
    from training.cli import main as tgp

    sim = root / "sim"
    t0 = time.perf_counter()
    tgp(["simulate", "--trials", str(TRIALS), "--streams", "--width", "640", "--height", "480", "--fps", "30",
         "--out", str(sim), "--no-progress"])
    recs = list(load_trial_streams([sim], require_streams=True))
    frames = [len(r.frame_t) for r in recs]
    print(f"simulated {TRIALS} trials of {frames} frames in {time.perf_counter() - t0:.0f} s", flush=True)
    need = grasps * sum(frames) / len(frames) * 640 * 480 * 3 * 1.1
    free = shutil.disk_usage(root).free
    if need > free * 0.8:
        grasps = max(BASELINE_GRASPS, int(grasps * free * 0.8 / need))
        print(f"only {free / 1e9:.0f} GB free in {root}: a bag of {grasps} grasps, not {GRASPS}")
    big, small = root / f"bag{grasps}", root / f"bag{BASELINE_GRASPS}"
    t0 = time.perf_counter()
    write_bag(big, [recs[i % len(recs)] for i in range(grasps)], RecordOptions(), progress=True)
    write_bag(small, [recs[i % len(recs)] for i in range(BASELINE_GRASPS)], RecordOptions(), progress=False)
    size = sum(p.stat().st_size for p in big.iterdir()) / 1e9
    print(f"recorded {big.name} ({size:.1f} GB) and {small.name} in {time.perf_counter() - t0:.0f} s",
          flush=True)
    return big, small


def replay(bag: Path, predictor: Any, in_place: bool = True) -> tuple[float, Any]:
    """Evaluate ``bag`` once; return (seconds, result)."""
    from tactile_grasp_predictor.replay.evaluate import evaluate_bag

    t0 = time.perf_counter()
    result = evaluate_bag(bag, predictor, in_place=in_place)
    return time.perf_counter() - t0, result


def _row(g: Any) -> tuple[Any, ...]:
    d = g.decision
    return (g.grasp_id, d.verdict, d.reason, d.ta_stamp, d.tb_stamp, round(float(d.p_success), 6))


def main() -> None:
    sys.path.insert(0, str(ROOT / "test"))
    from helpers.bundles import make_random_bundle
    from tactile_grasp_predictor.metrics import percentiles
    from tactile_grasp_predictor.predictor import Predictor
    from tactile_grasp_predictor.preprocess import preprocess_pair

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        given = os.environ.get("TGP_BENCH_REPLAY_BAG")
        if given:  # the baseline on TGP_BENCH_REPLAY_BASELINE_BAG (a short bag) or the same
            big = Path(given)
            small = Path(os.environ.get("TGP_BENCH_REPLAY_BASELINE_BAG", given))
            print(f"bag {big} (TGP_BENCH_REPLAY_BAG); the baseline on {small}")
        else:
            big, small = make_bags(root)
        bundle = make_random_bundle(root / "bundle", arch="resnet18", size=96, onnx=True)
        one = Predictor.from_bundle(bundle, backend="auto", num_threads=1)
        one.warm_up()
        runs: dict[str, float] = {}
        result = None
        for name in ("in place, 1 thread, first pass", "in place, 1 thread, second pass"):
            dt, result = replay(big, one)
            n = len(result.grasps)
            runs[name] = n / dt
            print(f"  {name:36s}: {n / dt:6.1f} grasps/s ({n} grasps in {dt:.1f} s, {result.frames_decoded}/"
                  f"{result.frames} frames decoded; {_load()})", flush=True)
        assert result is not None
        reasons: dict[str, int] = {}
        for g in result.grasps:
            reasons[g.decision.reason] = reasons.get(g.decision.reason, 0) + 1
        print(f"  decisions: {reasons}")
        two = Predictor.from_bundle(bundle, backend="auto", num_threads=2)
        two.warm_up()
        dt, res2 = replay(big, two)
        runs["2 threads"] = len(res2.grasps) / dt
        print(f"  {'in place, 2 threads':36s}: {runs['2 threads']:6.1f} grasps/s ({_load()})", flush=True)
        dt, res0 = replay(big, None)
        print(f"  {'in place, no model (reading + session)':36s}: {len(res0.grasps) / dt:6.1f} grasps/s "
              f"({_load()})", flush=True)
        rng = np.random.default_rng(0)  # the model alone, on frames of the bag's size
        a, b = (rng.integers(0, 256, (480, 640, 3), dtype=np.uint8) for _ in range(2))
        x = preprocess_pair(a, b, one.preprocess)
        times = []
        for _ in range(50):
            t0 = time.perf_counter()
            one.predict_tensor(x)
            times.append((time.perf_counter() - t0) * 1e3)
        fwd = percentiles(times, (50,))["p50"]
        print(f"  the model alone (forward, 1 thread): p50 {fwd:.2f} ms per grasp; at 100 grasps/s a grasp "
              f"has 10 ms")
        # Baseline in the same run: the rosbags reader on the first BASELINE_GRASPS grasps.
        replay(small, one, in_place=False)  # both from the page cache: the second pass of each
        dt_base, base = replay(small, one, in_place=False)
        dt_new, new = replay(small, one)
        same = sum(_row(x) == _row(y) for x, y in zip(base.grasps, new.grasps, strict=False))
        print(f"  baseline, rosbags reader, {small.name}: {len(base.grasps) / dt_base:6.1f} grasps/s; "
              f"in place {len(new.grasps) / dt_new:6.1f} grasps/s (ratio {dt_base / dt_new:.1f}x; {_load()});"
              " "
              f"decisions identical on {same} of {len(base.grasps)} grasps")
        best = max(runs.values())
        print(f"AIM tgp bag eval >= 100 grasps/s on {len(result.grasps)} grasps of 640x480 rgb8 at 30 Hz: "
              f"{runs['in place, 1 thread, second pass']:.1f} grasps/s (1 thread), best {best:.1f} "
              f"({'met' if best >= 100 else 'NOT met'}); ratio to the rosbags reader "
              f"{runs['in place, 1 thread, second pass'] / (len(base.grasps) / dt_base):.1f}x; {_load()}")


if __name__ == "__main__":
    main()
