"""Train/test splits of indexed trials, saved as small JSON manifests so a run can be reproduced.

Two protocols:

- :func:`paper_split` (the seed paper): ``n_train`` / ``n_test`` trials drawn at random
  without overlap from all trials (default 6,000 / 3,000; objects may appear in both).
  When fewer than ``n_train + n_test`` trials exist, both counts shrink in the same
  ratio: ``train = floor(N * n_train / (n_train + n_test))``, ``test = N - train``
  (e.g. 300 trials -> 200 / 100). Otherwise the trials beyond 9,000 stay unused.
- :func:`object_split` (the dataset's authors): the distinct objects are shuffled and
  ``round(75 %)`` of them (at least one on each side) go to training; every trial of an
  object lands on that object's side.

Both are seeded and independent of the order the trials were indexed in (trials are
sorted by source first). A :class:`Split` lists trial sources (``"<file>:i<n>"``);
:meth:`Split.select` maps them back onto a :class:`ShardIndex`.

>>> split = paper_split(index, seed=0)           # doctest: +SKIP
>>> split.save("runs/split.json")                # doctest: +SKIP
>>> train = Split.load("runs/split.json").select(index, "train")   # doctest: +SKIP
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from tactile_grasp_predictor.data.calandra import ShardIndex, TrialRef
from tactile_grasp_predictor.errors import DatasetError

__all__ = ["MANIFEST_VERSION", "Split", "make_split", "object_split", "paper_split"]

MANIFEST_VERSION = 1
SplitKind = Literal["paper", "object"]


@dataclass(frozen=True)
class Split:
    """A train/test split: trial sources per side, and what produced it."""

    kind: str  # "paper" | "object"
    seed: int
    train: list[str]
    test: list[str]
    params: dict[str, Any] = field(default_factory=dict)
    stats: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        overlap = set(self.train) & set(self.test)
        if overlap:
            raise DatasetError(f"split {self.kind}: train and test overlap, e.g. {sorted(overlap)[:3]}")

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON manifest as a dict."""
        return {
            "format_version": MANIFEST_VERSION,
            "kind": self.kind,
            "seed": self.seed,
            "params": self.params,
            "counts": {"train": len(self.train), "test": len(self.test)},
            "stats": self.stats,
            "train": self.train,
            "test": self.test,
        }

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the manifest as JSON (atomically); return its path."""
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
        tmp.write_text(json.dumps(self.to_dict(), indent=1) + "\n")
        tmp.replace(target)
        return target

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Split:
        """Read a manifest written by :meth:`save`; a malformed one raises :class:`DatasetError`."""
        p = Path(path)
        try:
            d = json.loads(p.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise DatasetError(f"{p}: cannot read split manifest: {exc}") from exc
        if not isinstance(d, dict) or d.get("format_version") != MANIFEST_VERSION:
            raise DatasetError(f"{p}: not a split manifest of format version {MANIFEST_VERSION}")
        try:
            split = cls(
                kind=str(d["kind"]), seed=int(d["seed"]),
                train=[str(s) for s in d["train"]], test=[str(s) for s in d["test"]],
                params=dict(d.get("params", {})), stats=dict(d.get("stats", {})),
            )
        except DatasetError as exc:
            raise DatasetError(f"{p}: {exc}") from exc
        except (KeyError, TypeError, ValueError) as exc:
            raise DatasetError(f"{p}: malformed split manifest: {exc}") from exc
        counts = d.get("counts", {})
        if counts and (counts.get("train") != len(split.train) or counts.get("test") != len(split.test)):
            raise DatasetError(f"{p}: counts {counts} do not match the listed trials")
        return split

    def select(self, refs: ShardIndex | Sequence[TrialRef], side: str) -> list[TrialRef]:
        """Return the trials of ``side`` (``"train"`` or ``"test"``) in manifest order.

        Raises :class:`DatasetError` listing the sources missing from ``refs`` (e.g. a shard
        that was not indexed or a trial skipped as bad).
        """
        if side not in ("train", "test"):
            raise ValueError(f"side must be 'train' or 'test', got {side!r}")
        by_source = {r.source: r for r in refs}
        wanted = self.train if side == "train" else self.test
        missing = [s for s in wanted if s not in by_source]
        if missing:
            raise DatasetError(
                f"split {self.kind}/{side}: {len(missing)} trial(s) not in the index, e.g. {missing[:3]}"
            )
        return [by_source[s] for s in wanted]


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
        kind="paper", seed=seed,
        train=[r.source for r in train], test=[r.source for r in test],
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
        kind="object", seed=seed,
        train=[r.source for r in train], test=[r.source for r in test],
        params={"train_fraction": train_fraction, "objects": len(objects),
                "train_objects": sorted(train_objects)},
        stats={"train": _stats(train), "test": _stats(test)},
    )


def make_split(
    refs: ShardIndex | Sequence[TrialRef], kind: str = "paper", seed: int = 0, **params: Any
) -> Split:
    """Make a split by name: ``"paper"`` (:func:`paper_split`) or ``"object"`` (:func:`object_split`).

    ``params`` go to that function (``n_train``/``n_test`` or ``train_fraction``). The
    sides are trial sources; get the trials with ``split.select(refs, "train")``.
    """
    if kind == "paper":
        return paper_split(refs, seed=seed, **params)
    if kind == "object":
        return object_split(refs, seed=seed, **params)
    raise ValueError(f"unknown split kind {kind!r}; known: 'paper', 'object'")
