"""Hostile shards refused by name, before memory is spent on them (#19).

Regression tests for what 300 generated shard mutations found: HDF5 metadata corruption
surfacing as h5py ``RuntimeError`` instead of :class:`DatasetError`, and datasets whose
declared shape is huge (100000 x 100000 x 3) read into memory (MemoryError, 28 GiB–7 TiB
attempted) instead of being refused from their shape.
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest

from tactile_grasp_predictor.data.calandra import (
    GELSIGHT_A_BEFORE,
    GELSIGHT_KEYS,
    CalandraShard,
    index_shards,
)
from tactile_grasp_predictor.errors import DatasetError
from training.data.shard_writer import write_shard

EXTRAS = tuple(f"sim_extra_{i}" for i in range(6))  # 12 keys: the trial's links live in a fractal heap


def _trial(rng: np.random.Generator) -> dict[str, object]:
    t: dict[str, object] = {"object_name": b"cup", "is_gripping": 1}
    t.update({k: rng.integers(0, 256, (6, 8, 3), dtype=np.uint8) for k in GELSIGHT_KEYS})
    t.update({k: rng.random(5) for k in EXTRAS})
    return t


@pytest.fixture
def shard(tmp_path: Path) -> Path:
    path = tmp_path / "s.h5"
    write_shard(path, [_trial(np.random.default_rng(0))], compression_level=1)
    return path


def _replace(path: Path, key: str, make: object) -> None:
    with h5py.File(path, "r+") as f:
        group = f["data/i0"]
        del group[key]
        make(group)  # type: ignore[operator]


def test_huge_declared_image_is_refused_from_its_shape(shard: Path) -> None:
    """Regression (#19): a 100000 x 100000 x 3 dataset (a few KB on disk) was read: 28 GiB."""
    _replace(shard, GELSIGHT_A_BEFORE, lambda g: g.create_dataset(
        GELSIGHT_A_BEFORE, shape=(100_000, 100_000, 3), dtype="u1", chunks=(64, 64, 3), compression="gzip"))
    assert shard.stat().st_size < 100_000
    index = index_shards([shard])
    assert len(index) == 0 and "declares 100000 x 100000 pixels" in index.skipped[0][1]
    with CalandraShard(shard) as s, pytest.raises(DatasetError, match=r"s\.h5:i0: .*refused before reading"):
        s.read_array(0, GELSIGHT_A_BEFORE)


def test_every_read_is_bounded(shard: Path) -> None:
    _replace(shard, EXTRAS[0], lambda g: g.create_dataset(
        EXTRAS[0], shape=(10**9, 1000), dtype="f8", chunks=(1024, 8), compression="gzip"))  # 8 TB declared
    with CalandraShard(shard) as s:
        with pytest.raises(DatasetError, match=r"s\.h5:i0: 'sim_extra_0' declares shape .* refused unread"):
            s.read_array(0, EXTRAS[0])
        assert s.read_array(0, EXTRAS[1]).shape == (5,)
    with CalandraShard(shard, max_read_bytes=100) as s:
        assert s.read_array(0, EXTRAS[1]).shape == (5,)  # 40 bytes
        with pytest.raises(DatasetError, match="more than one read may take"):
            s.read_array(0, GELSIGHT_KEYS[1])  # 144 bytes of pixels
    _replace(shard, EXTRAS[2], lambda g: g.create_dataset(EXTRAS[2], data=[b"x"], dtype=h5py.string_dtype()))
    with CalandraShard(shard) as s, pytest.raises(DatasetError, match="expected numbers or bytes"):
        s.read_array(0, EXTRAS[2])


def test_empty_dataspace_and_bad_empty_records(shard: Path) -> None:
    """Regression (#19): a dataset with an empty dataspace raised TypeError from the reader."""
    _replace(shard, GELSIGHT_A_BEFORE, lambda g: g.create_dataset(GELSIGHT_A_BEFORE, data=h5py.Empty("u1")))
    with CalandraShard(shard) as s, pytest.raises(DatasetError, match=r"s\.h5:i0: 'gelsightA_before'"):
        s.read_array(0, GELSIGHT_A_BEFORE)

    def record(g: h5py.Group) -> None:  # deepdish's record of an empty array, with no empty axis
        d = g.create_dataset(EXTRAS[0], data=np.array([10**9, 10**9, 3]))
        d.attrs["zeroarray_dtype"] = np.bytes_(b"<f8")

    _replace(shard, EXTRAS[0], record)
    with CalandraShard(shard) as s, pytest.raises(DatasetError, match="bad empty-array record"):
        s.read_array(0, EXTRAS[0])



def test_empty_array_record_with_a_number_for_its_dtype_is_refused_unallocated(shard: Path) -> None:
    """Found by make fuzz (#19): ``zeroarray_dtype`` = 2**31 (a number) was read as ``bytes(2**31)``.

    One attribute made the reader allocate 2 GiB (18 GB peak, a hang); a dtype record must be
    short text. tracemalloc sees Python's allocations: the refusal costs kilobytes.
    """
    import tracemalloc

    def record(g: h5py.Group) -> None:
        d = g.create_dataset(EXTRAS[0], data=np.array([0, 3]))
        d.attrs["zeroarray_dtype"] = 2**28

    _replace(shard, EXTRAS[0], record)
    with CalandraShard(shard) as s:
        tracemalloc.start()
        try:
            with pytest.raises(DatasetError, match=r"s\.h5:i0: key 'sim_extra_0': bad empty-array record"):
                s.read_array(0, EXTRAS[0])
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    assert peak < 1 << 20, peak

def test_hdf5_runtime_errors_name_the_file_and_trial(shard: Path) -> None:
    """Regression (#19): corrupt metadata surfaced as h5py RuntimeError outside DatasetError."""
    data = bytearray(shard.read_bytes())
    heap = data.find(b"FRHP")  # the fractal heap holding the trial's links
    assert heap > 0
    data[heap + 4] ^= 0x40  # its version byte: the checksum no longer matches
    shard.write_bytes(bytes(data))
    with CalandraShard(shard) as s:
        with pytest.raises(DatasetError, match=r"s\.h5:i0: .*RuntimeError"):
            s.keys(0)
        with pytest.raises(DatasetError, match=r"s\.h5:i0: "):
            s.read(0)
    index = index_shards([shard])
    assert len(index) == 0 and index.skipped[0][0] == "s.h5:i0"
