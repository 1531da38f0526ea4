"""The in-memory data sets of the offline commands: :class:`TactileSet` and where its trials come from.

- :func:`load_splits`: a directory of shards → indexed, split (``cfg.split``, seeded) and
  cached → (train, test, info);
- :func:`synthetic_set`: random trials with a learnable label, for tests and benchmarks;
- :func:`synthetic_split`: those split 2/3 train, 1/3 test, as ``--synthetic N`` gives them.

>>> train_set, test_set, info = synthetic_split(30, (16, 20), seed=0)
>>> len(train_set), len(test_set), info["kind"]
(20, 10, 'synthetic')
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from tactile_grasp_predictor.errors import DatasetError

if TYPE_CHECKING:
    from training.config import TrainConfig


@dataclass
class TactileSet:
    """Resized left-finger frames of N trials: ``before``/``during`` ``N x h x w x 3`` uint8, labels ``N``."""

    before: np.ndarray
    during: np.ndarray
    labels: np.ndarray
    objects: list[str] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        n = len(self.labels)
        if self.before.shape != self.during.shape or self.before.shape[0] != n:
            raise DatasetError(
                f"arrays disagree: before {self.before.shape}, during {self.during.shape}, labels {n}"
            )
        if self.before.dtype != np.uint8 or self.before.ndim != 4 or self.before.shape[3] != 3:
            raise DatasetError(
                f"frames must be uint8 N x h x w x 3, got {self.before.dtype} {self.before.shape}"
            )

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, idx: Sequence[int] | np.ndarray) -> TactileSet:
        """Return the trials at ``idx`` (loaded into memory)."""
        idx = np.asarray(idx, dtype=np.int64)
        return TactileSet(
            np.ascontiguousarray(self.before[idx]), np.ascontiguousarray(self.during[idx]),
            np.asarray(self.labels)[idx].astype(np.int64),
            [self.objects[i] for i in idx] if self.objects else [],
            [self.sources[i] for i in idx] if self.sources else [],
        )


def synthetic_set(n: int, hw: tuple[int, int], seed: int = 0) -> TactileSet:
    """Random trials with a learnable label (contact blob area at Tb) for tests and benchmarks.

    Ta is a noisy background; Tb adds a bright blob whose radius is larger for successes
    (label 1), at a random position, plus per-trial colour noise.
    """
    rng = np.random.default_rng(seed)
    h, w = hw
    base = rng.integers(90, 140, size=(n, 1, 1, 3)).astype(np.float32)
    before = np.clip(base + rng.normal(0, 4, size=(n, h, w, 3)), 0, 255).astype(np.uint8)
    labels = rng.integers(0, 2, size=n).astype(np.int64)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    during = before.astype(np.float32).copy()
    for i in range(n):
        r = (0.18 if labels[i] else 0.10) * min(h, w) * rng.uniform(0.8, 1.25)
        cy, cx = rng.uniform(0.3, 0.7) * h, rng.uniform(0.3, 0.7) * w
        blob = np.exp(-(((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * r * r)))[..., None]
        during[i] += blob * rng.uniform(40, 80, size=3)
    during = np.clip(during + rng.normal(0, 3, size=during.shape), 0, 255).astype(np.uint8)
    objs = [f"obj{i % 7}" for i in range(n)]
    return TactileSet(before, during, labels, objs, [f"synthetic:i{i}" for i in range(n)])


def synthetic_split(n: int, hw: tuple[int, int],
                    seed: int = 0) -> tuple[TactileSet, TactileSet, dict[str, Any]]:
    """``n`` synthetic trials split in order: the first 2/3 train, the rest test; (train, test, info).

    ``info`` has the shape :func:`load_splits` gives (``kind``, ``seed``, ``n_train``, ``n_test``).
    """
    full = synthetic_set(n, hw, seed=seed)
    cut = (2 * len(full)) // 3
    info = {"kind": "synthetic", "seed": seed, "n_train": cut, "n_test": len(full) - cut}
    return full.subset(range(cut)), full.subset(range(cut, len(full))), info


def load_splits(data_dir: Path, cfg: TrainConfig, cache_dir: Path | None = None,
                progress: bool = True) -> tuple[TactileSet, TactileSet, dict[str, Any]]:
    """Index the shards of ``data_dir``, split (``cfg.split``, seeded) and cache them: (train, test, info).

    ``info`` holds the split kind, seed, counts, the split itself (trial sources, for the
    manifest), the cache fingerprints of both sides (the bundle's data fingerprint) and
    whether this call built each side's cache entry (``cache_built``) or found it.
    """
    from tactile_grasp_predictor.data.calandra import gelsight_key, index_shards
    from training.data.cache import build_cache
    from training.data.splits import make_split

    # the two frames training reads: shards of the node's own grasps hold only those (recorder.py)
    keys = tuple(gelsight_key(cfg.finger, when) for when in ("before", "during"))
    index = index_shards(data_dir, keys=keys)
    if len(index) == 0:
        raise DatasetError(f"{data_dir}: no usable trials")
    split = make_split(index, kind=cfg.split, seed=cfg.seed)
    cache_dir = cache_dir or Path(data_dir) / ".cache"
    sets, prints, built = [], [], []
    for part in (split.train, split.test):
        arr = build_cache(part, cache_dir, size_hw=cfg.resize_hw, finger=cfg.finger, progress=progress)
        sets.append(TactileSet(arr.before, arr.during, np.asarray(arr.labels), list(arr.objects),
                               list(arr.sources)))
        prints.append(arr.fingerprint)
        built.append(arr.built)
    info = {"kind": cfg.split, "seed": cfg.seed, "n_train": len(sets[0]), "n_test": len(sets[1]),
            "fingerprint": {"train": prints[0], "test": prints[1]}, "split": split.to_dict(),
            "cache_built": built}
    return sets[0], sets[1], info
