"""The decoded, resized, memory-mapped training cache."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import cv2
import h5py
import numpy as np
import pytest

from tactile_grasp_predictor.data import CalandraShard, index_shards
from tactile_grasp_predictor.errors import DatasetError
from training.data.cache import build_cache
from training.data.splits import paper_split

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "calandra"


@pytest.fixture
def shards(tmp_path: Path) -> Path:
    d = tmp_path / "shards"
    d.mkdir()
    for name in ("zlib_small.h5", "blosc.h5", "noncontiguous.h5", "fullsize.h5"):
        shutil.copy(FIXTURES / name, d / name)
    return d


def _expected(ref_path: Path, index: int, key: str, hw: tuple[int, int]) -> np.ndarray:
    with CalandraShard(ref_path) as shard:
        img = shard.read(index, keys=[key]).images[key]
    return cv2.resize(img, (hw[1], hw[0]), interpolation=cv2.INTER_AREA)


def test_build_contents(shards: Path, tmp_path: Path) -> None:
    index = index_shards(shards)
    arrays = build_cache(index, tmp_path / "cache", size_hw=(24, 32), progress=False)
    n = len(index)
    assert n == 10 and len(arrays) == n
    assert arrays.before.shape == arrays.during.shape == (n, 24, 32, 3)
    assert arrays.before.dtype == np.uint8 and isinstance(arrays.before, np.memmap)
    assert arrays.labels.dtype == np.int64 and arrays.labels.tolist() == [r.label for r in index]
    assert arrays.sources == [r.source for r in index]
    assert arrays.objects == [r.object_name for r in index]
    for row in (0, 3, n - 1):
        ref = index[row]
        for key, got in (("gelsightA_before", arrays.before), ("gelsightA_during", arrays.during)):
            np.testing.assert_array_equal(got[row], _expected(ref.path, ref.index, key, (24, 32)))
    full = arrays.sources.index("fullsize.h5:i0")  # 960 x 1280 -> 24 x 32
    assert arrays.during[full].std() > 1
    with pytest.raises(ValueError, match="read-only"):
        arrays.before[0, 0, 0, 0] = 1


def test_second_call_reuses_files(shards: Path, tmp_path: Path) -> None:
    index = index_shards(shards)
    a = build_cache(index, tmp_path / "cache", size_hw=(24, 32), progress=False)
    stamp = (a.path / "before.npy").stat().st_mtime_ns
    b = build_cache(index, tmp_path / "cache", size_hw=(24, 32), progress=False)
    assert b.path == a.path and b.fingerprint == a.fingerprint
    assert (b.path / "before.npy").stat().st_mtime_ns == stamp
    np.testing.assert_array_equal(a.during, b.during)
    entries = sorted(p.name for p in (tmp_path / "cache").iterdir())
    assert entries == [a.path.name]  # no temporary directories left behind


def test_key_changes_with_resize_finger_order_and_files(shards: Path, tmp_path: Path) -> None:
    index = index_shards(shards)
    cache = tmp_path / "cache"
    base = build_cache(index, cache, size_hw=(24, 32), progress=False)
    other_size = build_cache(index, cache, size_hw=(12, 16), progress=False)
    right = build_cache(index, cache, size_hw=(24, 32), finger="B", progress=False)
    reversed_ = build_cache(list(reversed(index.refs)), cache, size_hw=(24, 32), progress=False)
    assert len({base.path, other_size.path, right.path, reversed_.path}) == 4
    assert other_size.before.shape[1:3] == (12, 16)
    assert not np.array_equal(right.before, base.before)  # the right finger's frames
    np.testing.assert_array_equal(reversed_.during[::-1], base.during)
    assert reversed_.sources == base.sources[::-1]
    # a modified source file (new mtime) is a new entry
    target = shards / "blosc.h5"
    st = target.stat()
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    touched = build_cache(index, cache, size_hw=(24, 32), progress=False)
    assert touched.path != base.path
    np.testing.assert_array_equal(touched.before, base.before)


def test_rows_for_a_split(shards: Path, tmp_path: Path) -> None:
    index = index_shards(shards)
    arrays = build_cache(index, tmp_path / "cache", size_hw=(24, 32), progress=False)
    split = paper_split(index, seed=0)
    rows = arrays.rows(split.test_sources)
    assert [arrays.sources[i] for i in rows] == split.test_sources
    assert arrays.labels[rows].tolist() == [r.label for r in split.test]
    part = build_cache(split.test, tmp_path / "cache", size_hw=(24, 32), progress=False)
    np.testing.assert_array_equal(part.during, arrays.during[rows])
    with pytest.raises(DatasetError, match="not in the cache"):
        arrays.rows(["elsewhere.h5:i3"])


def test_corrupt_trial_fails_cleanly(shards: Path, tmp_path: Path) -> None:
    index = index_shards(shards)  # metadata is fine; the image bytes are broken afterwards
    path = shards / "fullsize.h5"
    with h5py.File(path, "r") as f:
        offset = f["data/i0/gelsightA_during"].id.get_chunk_info(0).byte_offset
    with path.open("r+b") as fh:
        fh.seek(offset)
        fh.write(b"\xff" * 64)
    cache = tmp_path / "cache"
    with pytest.raises(DatasetError, match=r"fullsize\.h5:i0: cannot read 'gelsightA_during'"):
        build_cache(index, cache, size_hw=(24, 32), progress=False)
    assert list(cache.iterdir()) == []


def test_no_trials(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="no trials"):
        build_cache([], tmp_path / "cache", progress=False)


def test_parallel_build_is_identical(shards: Path, tmp_path: Path) -> None:
    index = index_shards(shards)
    one = build_cache(index, tmp_path / "one", size_hw=(24, 32), progress=False)
    two = build_cache(index, tmp_path / "two", size_hw=(24, 32), progress=False, workers=2)
    assert two.fingerprint == one.fingerprint
    np.testing.assert_array_equal(two.before, one.before)
    np.testing.assert_array_equal(two.during, one.during)
    assert two.sources == one.sources and two.labels.tolist() == one.labels.tolist()
