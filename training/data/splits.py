"""Train/test splits of indexed trials, saved as small JSON manifests so a run can be reproduced.

Three protocols:

- :func:`paper_split` (the seed paper): ``n_train`` / ``n_test`` trials drawn at random
  without overlap from all trials (default 6,000 / 3,000; objects may appear in both).
  When fewer than ``n_train + n_test`` trials exist, both counts shrink in the same
  ratio: ``train = floor(N * n_train / (n_train + n_test))``, ``test = N - train``
  (e.g. 300 trials -> 200 / 100). Otherwise the trials beyond 9,000 stay unused.
- :func:`object_split` (the dataset's authors): the distinct objects are shuffled and
  ``round(75 %)`` of them (at least one on each side) go to training; every trial of an
  object lands on that object's side.
- :func:`sensor_split` (simulated shards): the same by robot, so the test trials come from
  sensors the training never saw.

Both are seeded and independent of the order the trials were indexed in (trials are
sorted by source first). A :class:`Split` holds the :class:`TrialRef` of each side; its
manifest lists their sources (``"<file>:i<n>"``) and :meth:`Split.load` maps them back
onto a fresh index.

>>> split = paper_split(index, seed=0)           # doctest: +SKIP
>>> split.save("runs/split.json")                # doctest: +SKIP
>>> again = Split.load("runs/split.json", index_shards(data_dir))   # doctest: +SKIP
>>> arrays = build_cache(again.train, cache_dir)  # doctest: +SKIP

Inside the training side, :func:`split_fit_val` sets the labelled validation slice aside
(stratified, seeded) that ``tgp export`` chooses its threshold on and the kNN monitor scores.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tactile_grasp_predictor.data.calandra import ShardIndex, TrialRef
from tactile_grasp_predictor.errors import DatasetError
from training.tempfiles import temp_sibling

__all__ = ["MANIFEST_VERSION", "Split", "make_split", "object_split", "paper_split", "split_fit_val"]

MANIFEST_VERSION = 1


@dataclass(frozen=True)
class Split:
    """A train/test split: the trials of each side, and what produced it.

    ``train`` / ``test`` are :class:`TrialRef` lists (pass them to
    :func:`training.data.cache.build_cache`); the manifest stores their sources.
    """

    kind: str  # "paper" | "object"
    seed: int
    train: list[TrialRef]
    test: list[TrialRef]
    params: dict[str, Any] = field(default_factory=dict)
    stats: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        overlap = set(self.train_sources) & set(self.test_sources)
        if overlap:
            raise DatasetError(f"split {self.kind}: train and test overlap, e.g. {sorted(overlap)[:3]}")

    @property
    def train_sources(self) -> list[str]:
        """``"<file>:i<n>"`` of the training trials, in split order."""
        return [r.source for r in self.train]

    @property
    def test_sources(self) -> list[str]:
        """``"<file>:i<n>"`` of the test trials, in split order."""
        return [r.source for r in self.test]

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON manifest as a dict."""
        return {
            "format_version": MANIFEST_VERSION,
            "kind": self.kind,
            "seed": self.seed,
            "params": self.params,
            "counts": {"train": len(self.train), "test": len(self.test)},
            "stats": self.stats,
            "train": self.train_sources,
            "test": self.test_sources,
        }

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the manifest as JSON (atomically); return its path."""
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = temp_sibling(target)
        tmp.write_text(json.dumps(self.to_dict(), indent=1) + "\n")
        tmp.replace(target)
        return target

    @staticmethod
    def read_manifest(path: str | os.PathLike[str]) -> dict[str, Any]:
        """Read and check a manifest written by :meth:`save` (sources only, no index needed)."""
        p = Path(path)
        try:
            d = json.loads(p.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise DatasetError(f"{p}: cannot read split manifest: {exc}") from exc
        if not isinstance(d, dict) or d.get("format_version") != MANIFEST_VERSION:
            raise DatasetError(f"{p}: not a split manifest of format version {MANIFEST_VERSION}")
        try:
            train, test = [str(s) for s in d["train"]], [str(s) for s in d["test"]]
            int(d["seed"]), str(d["kind"])
        except (KeyError, TypeError, ValueError) as exc:
            raise DatasetError(f"{p}: malformed split manifest: {exc!r}") from exc
        counts = d.get("counts", {})
        if counts and (counts.get("train") != len(train) or counts.get("test") != len(test)):
            raise DatasetError(f"{p}: counts {counts} do not match the listed trials")
        overlap = set(train) & set(test)
        if overlap:
            raise DatasetError(f"{p}: train and test overlap, e.g. {sorted(overlap)[:3]}")
        return d

    @classmethod
    def load(cls, path: str | os.PathLike[str], refs: ShardIndex | Sequence[TrialRef]) -> Split:
        """Read a manifest and resolve its sources against ``refs`` (e.g. a fresh :func:`index_shards`).

        Raises :class:`DatasetError` for a malformed manifest or when listed trials are
        missing from ``refs`` (a shard not indexed, or a trial now skipped as bad).
        """
        d = cls.read_manifest(path)
        by_source = {r.source: r for r in refs}
        sides = []
        for side in ("train", "test"):
            missing = [s for s in d[side] if s not in by_source]
            if missing:
                raise DatasetError(
                    f"{path}: split {d['kind']}/{side}: {len(missing)} trial(s) not in the index, "
                    f"e.g. {missing[:3]}"
                )
            sides.append([by_source[s] for s in d[side]])
        return cls(
            kind=str(d["kind"]), seed=int(d["seed"]), train=sides[0], test=sides[1],
            params=dict(d.get("params", {})), stats=dict(d.get("stats", {})),
        )


def _sorted_refs(refs: ShardIndex | Sequence[TrialRef]) -> list[TrialRef]:
    out = sorted(refs, key=lambda r: (r.path.name, r.index))
    sources = [r.source for r in out]
    if len(set(sources)) != len(sources):
        raise DatasetError("trial sources are not unique (two shards with the same file name?)")
    return out


def _stats(refs: Sequence[TrialRef]) -> dict[str, Any]:
    labels = [r.label for r in refs]
    return {
        "trials": len(refs),
        "success": int(sum(labels)),
        "success_rate": round(sum(labels) / len(labels), 4) if labels else None,
        "objects": len({r.object_name for r in refs}),
        "shards": sorted({r.path.name for r in refs}),
    }


def paper_split(
    refs: ShardIndex | Sequence[TrialRef], n_train: int = 6000, n_test: int = 3000, seed: int = 0
) -> Split:
    """Draw ``n_train`` / ``n_test`` non-overlapping trials at random (scaled down 2:1 when too few)."""
    assert n_train > 0 and n_test > 0, (n_train, n_test)
    ordered = _sorted_refs(refs)
    n = len(ordered)
    if n < 2:
        raise DatasetError(f"paper split needs at least 2 trials, got {n}")
    if n >= n_train + n_test:
        k_train, k_test = n_train, n_test
    else:  # keep the train:test ratio
        k_train = min(max(math.floor(n * n_train / (n_train + n_test)), 1), n - 1)
        k_test = n - k_train
    perm = np.random.default_rng(seed).permutation(n)
    train = [ordered[i] for i in perm[:k_train]]
    test = [ordered[i] for i in perm[k_train : k_train + k_test]]
    return Split(
        kind="paper", seed=seed, train=train, test=test,
        params={"n_train": n_train, "n_test": n_test, "available": n, "scaled": n < n_train + n_test},
        stats={"train": _stats(train), "test": _stats(test)},
    )


def object_split(refs: ShardIndex | Sequence[TrialRef], train_fraction: float = 0.75, seed: int = 0) -> Split:
    """Split by object: ``round(train_fraction * objects)`` objects train, the rest test (seeded)."""
    assert 0.0 < train_fraction < 1.0, train_fraction
    ordered = _sorted_refs(refs)
    objects = sorted({r.object_name for r in ordered})
    if len(objects) < 2:
        raise DatasetError(f"object split needs at least 2 distinct objects, got {len(objects)}")
    k = min(max(round(train_fraction * len(objects)), 1), len(objects) - 1)
    perm = np.random.default_rng(seed).permutation(len(objects))
    train_objects = {objects[i] for i in perm[:k]}
    train = [r for r in ordered if r.object_name in train_objects]
    test = [r for r in ordered if r.object_name not in train_objects]
    return Split(
        kind="object", seed=seed, train=train, test=test,
        params={"train_fraction": train_fraction, "objects": len(objects),
                "train_objects": sorted(train_objects)},
        stats={"train": _stats(train), "test": _stats(test)},
    )


def sensor_split(refs: ShardIndex | Sequence[TrialRef], train_fraction: float = 0.75, seed: int = 0) -> Split:
    """Split by robot, i.e. by sensor: ``round(train_fraction * robots)`` robots train, the rest test.

    Simulated shards only: each trial's ``sim_robot`` attribute names the robot whose two
    GelSight sensors recorded it (``training/sim/sensors.py``), so the test side is seen
    only through sensors the training side never saw (a new robot of a fleet).
    """
    from tactile_grasp_predictor.data.calandra import CalandraShard

    assert 0.0 < train_fraction < 1.0, train_fraction
    ordered = _sorted_refs(refs)
    robot: dict[str, int] = {}
    by_file: dict[Path, list[TrialRef]] = {}
    for r in ordered:
        by_file.setdefault(r.path, []).append(r)
    for path, rs in by_file.items():
        with CalandraShard(path) as shard:
            for r in rs:
                value = shard.read_attrs(r.index).get("sim_robot")
                if value is None:
                    raise DatasetError(f"{r.source}: no sim_robot attribute; the sensor split needs "
                                       "shards of tgp simulate")
                robot[r.source] = int(value)
    robots = sorted(set(robot.values()))
    if len(robots) < 2:
        raise DatasetError(f"sensor split needs at least 2 robots, got {len(robots)}")
    k = min(max(round(train_fraction * len(robots)), 1), len(robots) - 1)
    perm = np.random.default_rng(seed).permutation(len(robots))
    train_robots = {robots[i] for i in perm[:k]}
    train = [r for r in ordered if robot[r.source] in train_robots]
    test = [r for r in ordered if robot[r.source] not in train_robots]
    return Split(
        kind="sensor", seed=seed, train=train, test=test,
        params={"train_fraction": train_fraction, "robots": len(robots),
                "train_robots": sorted(train_robots)},
        stats={"train": _stats(train), "test": _stats(test)},
    )


def make_split(
    refs: ShardIndex | Sequence[TrialRef], kind: str = "paper", seed: int = 0, **params: Any
) -> Split:
    """Make a split by name: ``"paper"``, ``"object"`` or ``"sensor"``.

    :func:`paper_split`, :func:`object_split` or :func:`sensor_split` (seeded).

    ``params`` go to that function (``n_train``/``n_test`` or ``train_fraction``).
    """
    if kind == "paper":
        return paper_split(refs, seed=seed, **params)
    if kind == "object":
        return object_split(refs, seed=seed, **params)
    if kind == "sensor":
        return sensor_split(refs, seed=seed, **params)
    raise ValueError(f"unknown split kind {kind!r}; known: 'paper', 'object', 'sensor'")


def split_fit_val(labels: np.ndarray, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Split the training labels into stratified (fit, val) indices (the export's and the kNN monitor's).

    The probe of ``tgp export`` is fitted on ``fit`` and its threshold chosen on ``val``; the
    kNN monitor of ``tgp train`` scores ``val`` against a bank of ``fit``.
    """
    rng = np.random.default_rng(seed + 17)
    fit, val = [], []
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        k = max(1, round(val_fraction * len(idx))) if len(idx) > 1 else 0
        val.append(idx[:k])
        fit.append(idx[k:])
    return np.sort(np.concatenate(fit)), np.sort(np.concatenate(val))
