"""Offline replay throughput (grasps/s): lazy image decoding vs decoding every frame (the baseline).

Records synthetic grasps as GelSight-Mini-sized frames (240 x 320, 15 fps) into mcap bags, raw
rgb8 and JPEG-compressed, then evaluates each bag with a tiny random-weight ResNet-18 bundle,
lazily (only Ta/Tb decoded, the default) and eagerly (every frame decoded on arrival, what a
callback that decodes everything costs). Prints grasps/s, frames decoded and the ratio.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

GRASPS = 12
REPEATS = 3


def main() -> None:
    import torch

    torch.set_num_threads(1)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "test"))
    from helpers.bundles import make_random_bundle
    from tactile_grasp_predictor.predictor import Predictor
    from tactile_grasp_predictor.replay.evaluate import evaluate_bag
    from training.bag_record import RecordOptions, synthetic_recordings, write_bag

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        predictor = Predictor.from_bundle(make_random_bundle(root / "bundle", size=64))
        recs = synthetic_recordings(GRASPS, seed=0, size_hw=(240, 320), fps=15.0)
        print(f"{GRASPS} grasps, {sum(len(r.frame_t) for r in recs)} frames of 240x320, torch threads 1")
        for encoding in ("rgb8", "compressed"):
            bag = root / encoding
            write_bag(bag, recs, RecordOptions(encoding=encoding), progress=False)
            size_mb = sum(p.stat().st_size for p in bag.iterdir()) / 1e6
            rates = {}
            for lazy in (True, False):
                times, res = [], None
                for _ in range(REPEATS):
                    t0 = time.perf_counter()
                    res = evaluate_bag(bag, predictor, lazy=lazy)
                    times.append(time.perf_counter() - t0)
                assert res is not None and len(res.grasps) == GRASPS
                med = statistics.median(times)
                rates[lazy] = GRASPS / med
                print(
                    f"  {encoding:10s} {'lazy ' if lazy else 'eager'}: {rates[lazy]:7.1f} grasps/s "
                    f"(median of {REPEATS}: {med:.2f} s, {res.frames_decoded}/{res.frames} frames decoded, "
                    f"bag {size_mb:.0f} MB)"
                )
            print(f"  {encoding:10s} lazy / eager throughput ratio: {rates[True] / rates[False]:.2f}x")


if __name__ == "__main__":
    main()
