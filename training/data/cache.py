"""A decoded, resized cache of the (Ta, Tb) GelSight frames, so training never decodes HDF5 per epoch.

:func:`build_cache` reads each trial once (one shard open at a time), resizes its
``gelsight<finger>_before`` / ``_during`` frames with the project's one resize function
(:func:`tactile_grasp_predictor.preprocess.resize_frame`, ``cv2.INTER_AREA``) and stores
them as uint8 ``.npy`` files that are then memory-mapped:

```
<cache_dir>/tactile-A-96x128-<fingerprint[:16]>/
    before.npy   N x H x W x 3 uint8     Ta (no contact)
    during.npy   N x H x W x 3 uint8     Tb (closed, before lift)
    labels.npy   N int64                 1 = lift succeeded
    meta.json    fingerprint, sources, objects, size, finger (written last)
```

The fingerprint hashes the cache format, the resize parameters, the finger, the ordered
trial list and, per source file, its name, size, modification time and the sha256 of its
first and last 64 KiB (where HDF5 keeps its metadata). A second call with the same inputs
finds the directory and maps it without reading any shard; any change builds a new entry.
Entries are built in a temporary directory and renamed into place, so a crash never
leaves a half-written cache that looks complete.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from tactile_grasp_predictor.data.calandra import CalandraShard, ShardIndex, TrialRef, gelsight_key
from tactile_grasp_predictor.errors import DatasetError
from tactile_grasp_predictor.preprocess import PreprocessConfig, resize_frame
from training.tempfiles import temp_sibling

__all__ = ["CACHE_VERSION", "TactileArrays", "build_cache", "cache_fingerprint", "file_fingerprint"]

CACHE_VERSION = 1
RESIZE_METHOD = "tactile_grasp_predictor.preprocess.resize_frame:cv2.INTER_AREA"
_EDGE = 64 * 1024


@dataclass(frozen=True)
class TactileArrays:
    """Cached (Ta, Tb) frames of N trials, memory-mapped read-only."""

    before: np.ndarray  # N x H x W x 3 uint8
    during: np.ndarray  # N x H x W x 3 uint8
    labels: np.ndarray  # N int64
    objects: list[str]
    sources: list[str]
    path: Path
    fingerprint: str
    size_hw: tuple[int, int]
    finger: str
    built: bool = False  # this call decoded the frames (False: an existing entry was mapped)

    def __post_init__(self) -> None:
        n = len(self.labels)
        h, w = self.size_hw
        assert self.before.shape == self.during.shape == (n, h, w, 3), (self.before.shape, self.during.shape)
        assert self.before.dtype == self.during.dtype == np.uint8
        assert len(self.objects) == len(self.sources) == n

    def __len__(self) -> int:
        return len(self.labels)

    def rows(self, sources: Sequence[str]) -> np.ndarray:
        """Row numbers of the given trial sources (e.g. one side of a split), ``(K,)`` int64."""
        where = {s: i for i, s in enumerate(self.sources)}
        missing = [s for s in sources if s not in where]
        if missing:
            raise DatasetError(f"{self.path}: {len(missing)} trial(s) not in the cache, e.g. {missing[:3]}")
        return np.array([where[s] for s in sources], dtype=np.int64)


def file_fingerprint(path: Path) -> list[Any]:
    """Return ``[name, size, mtime_ns, sha256(first + last 64 KiB)]`` of a shard file."""
    st = path.stat()
    h = hashlib.sha256()
    with path.open("rb") as f:
        h.update(f.read(_EDGE))
        if st.st_size > _EDGE:
            f.seek(max(st.st_size - _EDGE, _EDGE))
            h.update(f.read(_EDGE))
    return [path.name, st.st_size, st.st_mtime_ns, h.hexdigest()]


def cache_fingerprint(refs: Sequence[TrialRef], size_hw: tuple[int, int], finger: str) -> str:
    """Return the key of a cache entry: format, resize parameters, finger, trial list, source files."""
    files = sorted({r.path for r in refs})
    payload = {
        "version": CACHE_VERSION,
        "resize": RESIZE_METHOD,
        "size_hw": list(size_hw),
        "finger": finger,
        "files": [file_fingerprint(p) for p in files],
        "trials": [[r.path.name, r.index] for r in refs],
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def _open(entry: Path, meta: dict[str, Any], built: bool = False) -> TactileArrays:
    before = np.load(entry / "before.npy", mmap_mode="r")
    during = np.load(entry / "during.npy", mmap_mode="r")
    labels = np.load(entry / "labels.npy")
    return TactileArrays(
        before=before, during=during, labels=labels, objects=list(meta["objects"]),
        sources=list(meta["sources"]), path=entry, fingerprint=str(meta["fingerprint"]),
        size_hw=(int(meta["size_hw"][0]), int(meta["size_hw"][1])), finger=str(meta["finger"]), built=built,
    )


def _read_meta(entry: Path) -> dict[str, Any] | None:
    try:
        meta = json.loads((entry / "meta.json").read_text())
    except (OSError, json.JSONDecodeError):
        return None
    return meta if isinstance(meta, dict) else None


_CHUNK = 25  # trials per job when building with several processes


@dataclass(frozen=True)
class _Job:
    """Rows of one shard file for one worker: ``(row, trial index, object, label)`` each."""

    directory: str
    path: str
    rows: list[tuple[int, int, str, bool]]
    n: int
    size_hw: tuple[int, int]
    finger: str


def _jobs(
    refs: Sequence[TrialRef], tmp: Path, size_hw: tuple[int, int], finger: str, chunk: int
) -> list[_Job]:
    by_file: dict[str, list[tuple[int, int, str, bool]]] = {}
    for row, ref in enumerate(refs):
        by_file.setdefault(str(ref.path), []).append((row, ref.index, ref.object_name, ref.is_gripping))
    jobs = []
    for path in sorted(by_file):
        rows = sorted(by_file[path], key=lambda r: r[1])  # file order inside a shard
        for start in range(0, len(rows), max(chunk, 1)):
            jobs.append(_Job(str(tmp), path, rows[start : start + chunk], len(refs), size_hw, finger))
    return jobs


def _fill_rows(job: _Job) -> int:
    """Decode, resize and store the rows of one job (runs in the caller or in a worker process)."""
    h, w = job.size_hw
    cfg = PreprocessConfig(resize_hw=(h, w), crop=min(h, w))  # only resize_hw is used here
    key_before, key_during = gelsight_key(job.finger, "before"), gelsight_key(job.finger, "during")
    before = np.load(Path(job.directory) / "before.npy", mmap_mode="r+")
    during = np.load(Path(job.directory) / "during.npy", mmap_mode="r+")
    assert before.shape == during.shape == (job.n, h, w, 3)
    with CalandraShard(job.path) as shard:
        for row, index, object_name, is_gripping in job.rows:
            trial = shard.read(index, keys=(key_before, key_during))
            if trial.is_gripping != is_gripping or trial.object_name != object_name:
                raise DatasetError(f"{trial.source}: label/object changed since the index was built")
            before[row] = resize_frame(trial.images[key_before], cfg, f"{trial.source}:{key_before}")
            during[row] = resize_frame(trial.images[key_during], cfg, f"{trial.source}:{key_during}")
    before.flush()
    during.flush()
    return len(job.rows)


def build_cache(
    refs: ShardIndex | Sequence[TrialRef],
    cache_dir: str | os.PathLike[str],
    size_hw: tuple[int, int] = (96, 128),
    finger: str = "A",
    progress: bool = True,
    workers: int = 1,
) -> TactileArrays:
    """Return the cached, resized Ta/Tb frames of ``refs`` (in that order), building them if needed.

    ``finger`` is ``"A"`` (left GelSight, the paper's input) or ``"B"``. A trial whose
    images cannot be read raises :class:`DatasetError` naming it (index the shards first:
    :func:`~tactile_grasp_predictor.data.index_shards` skips trials with bad metadata).
    ``workers > 1`` decodes with that many processes (worth it for full-size real frames);
    the result is identical.
    """
    refs = list(refs)
    if not refs:
        raise DatasetError("build_cache: no trials to cache")
    h, w = (int(size_hw[0]), int(size_hw[1]))
    gelsight_key(finger, "before")  # validates finger
    fingerprint = cache_fingerprint(refs, (h, w), finger)
    root = Path(cache_dir)
    entry = root / f"tactile-{finger}-{h}x{w}-{fingerprint[:16]}"
    meta = _read_meta(entry)
    if meta is not None and meta.get("fingerprint") == fingerprint:
        return _open(entry, meta)

    root.mkdir(parents=True, exist_ok=True)
    tmp = temp_sibling(entry)
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        n = len(refs)
        for name in ("before", "during"):  # allocate; workers fill rows in place
            shape = (n, h, w, 3)
            del_me = np.lib.format.open_memmap(tmp / f"{name}.npy", mode="w+", dtype=np.uint8, shape=shape)
            del del_me
        jobs = _jobs(refs, tmp, (h, w), finger, chunk=_CHUNK if workers > 1 else n)
        with tqdm(total=n, desc="caching tactile frames", unit="trial", disable=not progress) as bar:
            if workers <= 1:
                for job in jobs:
                    bar.update(_fill_rows(job))
            else:
                ctx = multiprocessing.get_context("spawn")  # no fork: the caller may hold threads (torch)
                with ctx.Pool(min(workers, len(jobs))) as pool:
                    for count in pool.imap_unordered(_fill_rows, jobs):
                        bar.update(count)
        np.save(tmp / "labels.npy", np.array([r.label for r in refs], dtype=np.int64))
        meta = {
            "version": CACHE_VERSION, "fingerprint": fingerprint, "resize": RESIZE_METHOD,
            "size_hw": [h, w], "finger": finger, "count": n,
            "sources": [r.source for r in refs], "objects": [r.object_name for r in refs],
            "files": sorted({str(r.path) for r in refs}),
        }
        (tmp / "meta.json").write_text(json.dumps(meta) + "\n")  # written last: marks the entry complete
        try:
            tmp.rename(entry)
        except OSError:  # another process finished the same entry first, or a stale one is in the way
            other = _read_meta(entry)
            if other is not None and other.get("fingerprint") == fingerprint:
                shutil.rmtree(tmp, ignore_errors=True)
            else:
                shutil.rmtree(entry, ignore_errors=True)
                tmp.rename(entry)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    final = _read_meta(entry)
    assert final is not None and final["fingerprint"] == fingerprint
    return _open(entry, final, built=True)
