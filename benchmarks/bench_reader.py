"""Reader throughput: (Ta, Tb) pairs per second from compressed HDF5 shards vs from the training cache.

Everything is measured in this run on shards written here with ``write_shard`` (the
Calandra layout, gzip 9 + shuffle, like the published files):

- ``write``: trials/s written (six 120 x 160 GelSight frames per trial, the simulator's default);
- ``hdf5``: trials/s reading the left Ta + Tb from the shards and resizing to 96 x 128, as a
  training epoch would without a cache;
- ``cache build``: trials/s of the one-off cache build;
- ``cache``: trials/s reading the same pairs from the memory-mapped cache (random order);
- ``hdf5 full-size``: the same as ``hdf5`` on real-size 960 x 1280 frames (the published data).

Run: ``.venv/bin/python -m benchmarks reader``.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from tactile_grasp_predictor.data import GELSIGHT_A_BEFORE, GELSIGHT_A_DURING, index_shards, read_trials
from tactile_grasp_predictor.preprocess import PreprocessConfig, resize_frame
from training.data.cache import build_cache
from training.data.shard_writer import write_shard

SIZE_HW = (96, 128)
N_SHARDS, PER_SHARD = 2, 60
REPEATS = 3


def _frame(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A GelSight-like frame: smooth shading plus sensor noise (compresses like real frames)."""
    yy, xx = np.mgrid[0:h, 0:w]
    base = 120 + 30 * np.sin(xx / w * 3.0 + rng.uniform(0, 6))[..., None] * np.array([0.6, 0.8, 1.0])
    base = base + 20 * np.cos(yy / h * 2.0)[..., None]
    noisy = base + rng.normal(0, 3, (h, w, 3))
    return np.clip(noisy, 0, 255).astype(np.uint8)


def _trials(rng: np.random.Generator, n: int, h: int, w: int, keys: tuple[str, ...]) -> list[dict]:
    return [
        {"object_name": f"object_{i % 7}".encode(), "is_gripping": int(rng.random() < 0.6),
         **{k: _frame(rng, h, w) for k in keys}}
        for i in range(n)
    ]


def _read_hdf5(refs: list, cfg: PreprocessConfig) -> float:
    start = time.perf_counter()
    for t in read_trials(refs, keys=(GELSIGHT_A_BEFORE, GELSIGHT_A_DURING)):
        resize_frame(t.images[GELSIGHT_A_BEFORE], cfg)
        resize_frame(t.images[GELSIGHT_A_DURING], cfg)
    return len(refs) / (time.perf_counter() - start)


def _read_cache(before: np.ndarray, during: np.ndarray, order: np.ndarray) -> float:
    start = time.perf_counter()
    total = 0
    for i in order:
        ta, tb = np.array(before[i]), np.array(during[i])
        total += int(ta[0, 0, 0]) + int(tb[0, 0, 0])
    return len(order) / (time.perf_counter() - start)


def main() -> None:
    rng = np.random.default_rng(0)
    keys = tuple(f"gelsight{f}_{p}" for f in "AB" for p in ("before", "during", "after"))
    cfg = PreprocessConfig(resize_hw=SIZE_HW, crop=min(SIZE_HW))
    with tempfile.TemporaryDirectory(prefix="bench_reader_") as tmp:
        root = Path(tmp)
        shards = root / "shards"
        shards.mkdir()
        write_rates = []
        for s in range(N_SHARDS):
            trials = _trials(rng, PER_SHARD, 120, 160, keys)
            start = time.perf_counter()
            write_shard(shards / f"sim_{s:03d}.h5", trials)
            write_rates.append(PER_SHARD / (time.perf_counter() - start))
        index = index_shards(shards)
        refs = list(index)
        n = len(refs)

        hdf5 = statistics.median(_read_hdf5(refs, cfg) for _ in range(REPEATS))
        start = time.perf_counter()
        arrays = build_cache(refs, root / "cache", size_hw=SIZE_HW, progress=False)
        build = n / (time.perf_counter() - start)
        order = np.random.default_rng(1).permutation(n)
        cache = statistics.median(_read_cache(arrays.before, arrays.during, order) for _ in range(REPEATS))

        full_dir = root / "full"
        full_dir.mkdir()
        write_shard(full_dir / "full_000.h5",
                    _trials(rng, 4, 960, 1280, (GELSIGHT_A_BEFORE, GELSIGHT_A_DURING)))
        full_refs = list(index_shards(full_dir, keys=(GELSIGHT_A_BEFORE, GELSIGHT_A_DURING)))
        full = statistics.median(_read_hdf5(full_refs, cfg) for _ in range(REPEATS))

    size = f"{SIZE_HW[0]}x{SIZE_HW[1]}"
    print(f"trials: {n} in {N_SHARDS} shards, 6 GelSight frames of 120x160 each; pairs resized to {size}")
    print(f"write (gzip 9 + shuffle)  : {statistics.median(write_rates):8.1f} trials/s")
    print(f"hdf5  read Ta+Tb + resize : {hdf5:8.1f} trials/s")
    print(f"cache build (one-off)     : {build:8.1f} trials/s")
    print(f"cache read Ta+Tb          : {cache:8.1f} trials/s   ratio cache/hdf5 = {cache / hdf5:.1f}x")
    print(f"hdf5  read full-size 960x1280 Ta+Tb + resize: {full:6.1f} trials/s"
          f"   ratio cache/hdf5 = {cache / full:.0f}x")


if __name__ == "__main__":
    main()
