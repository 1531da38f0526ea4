"""Write shards in the Calandra layout (deepdish / flammkuchen on-disk format) with h5py.

The published "Feeling of Success" shards were written by ``deepdish`` (PyTables under
the hood); ``flammkuchen`` is its maintained fork with the same format. Both need
NumPy < 2, so this module writes the identical layout with plain h5py:

```
/                      attrs CLASS=GROUP, VERSION=1.0, TITLE=<empty>, PYTABLES_FORMAT_VERSION=2.1,
                             DEEPDISH_IO_VERSION=12, DEEPDISH_IO_DEEPDISH_IO_UNPACK=True
/data                  group, TITLE=b'list:N'
/data/i<n>             group, TITLE=b'dict:K', scalars and strings as attributes
/data/i<n>/<key>       array: CARRAY (chunked, shuffle + gzip 9) when it has > 300 items,
                       else a contiguous ARRAY (PyTables' own rule); CLASS/VERSION/TITLE attrs
```

Attribute types follow PyTables: ``bytes`` -> fixed ASCII string, ``str`` -> fixed UTF-8
string (flammkuchen returns ``numpy.str_``), ``bool`` -> 8-bit bitfield, ``int`` -> int64,
``float`` -> float64, NumPy scalars keep their dtype. Chunk shapes use PyTables' formula,
so ``flammkuchen.load`` / ``deepdish.io.load`` read the file back as a list of dicts.

Determinism: object modification times are switched off on the root, every group and
every dataset, and items are written in sorted key order, so the same input gives a
byte-identical file. The file is written next to the target and renamed into place.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from tactile_grasp_predictor.tempfiles import temp_sibling

__all__ = ["DEEPDISH_IO_VERSION", "pytables_chunkshape", "write_shard"]

DEEPDISH_IO_VERSION = 12  # what flammkuchen 1.0.x writes
_SMALL_ARRAY_ITEMS = 300  # flammkuchen stores arrays up to this size uncompressed (ARRAY)


def pytables_chunkshape(shape: Sequence[int], itemsize: int) -> tuple[int, ...]:
    """Return the chunk shape PyTables picks for a CARRAY of ``shape`` and ``itemsize``.

    This mirrors ``tables.Leaf._calc_chunkshape`` for non-extendable arrays (main
    dimension 0): the chunk size in bytes depends on the array's size in MB, and the
    leading dimension is trimmed first (it may exceed the array's extent, as in PyTables).

    >>> pytables_chunkshape((960, 1280, 3), 1)
    (17, 1280, 3)
    """
    assert len(shape) >= 1 and min(shape) > 0, shape
    expected_mb = (int(np.prod(shape, dtype=np.int64)) * itemsize) // (1024 * 1024)
    expected_mb = min(max(expected_mb, 1), 10**7)
    zone = int(math.log10(expected_mb))
    chunksize = 8 * 1024 * int(2 ** math.log10(10**zone)) * 8
    chunknitems = max(chunksize // itemsize, 1)
    chunk = list(shape)
    chunk[0] = 1
    if int(np.prod(chunk)) <= chunknitems:
        chunk[0] = chunknitems // int(np.prod(chunk))
    else:
        for j in range(len(chunk)):
            chunk[j] = 1
            n = int(np.prod(chunk))
            if n <= chunknitems:
                chunk[j] = chunknitems // n
                break
        else:
            chunk[-1] = chunknitems
    return tuple(int(c) for c in chunk)


# --------------------------------------------------------------------------- attributes
def _string_type(size: int, utf8: bool) -> h5py.h5t.TypeStringID:
    tid = h5py.h5t.C_S1.copy()
    tid.set_size(max(size, 1))
    tid.set_strpad(h5py.h5t.STR_NULLTERM)
    tid.set_cset(h5py.h5t.CSET_UTF8 if utf8 else h5py.h5t.CSET_ASCII)
    return tid


def _write_attr(obj: h5py.Group | h5py.Dataset, name: str, value: Any, utf8_bytes: bool = False) -> None:
    """Write one scalar attribute with the HDF5 type PyTables would give it.

    ``str`` is stored as a UTF-8 string and ``bytes`` as an ASCII one, except PyTables'
    own group attributes (CLASS, TITLE, VERSION) which are UTF-8 (``utf8_bytes``).
    """
    bname = name.encode("utf-8")
    scalar = h5py.h5s.create(h5py.h5s.SCALAR)
    if isinstance(value, (bool, np.bool_)):
        tid: Any = h5py.h5t.NATIVE_B8.copy()
        data = np.array(1 if value else 0, dtype=np.uint8)
    elif isinstance(value, (bytes, np.bytes_, str, np.str_)):
        is_text = isinstance(value, (str, np.str_))
        raw = value.encode("utf-8") if isinstance(value, str) else bytes(value)
        if b"\x00" in raw:
            raise ValueError(f"attribute {name!r}: NUL bytes cannot be stored in an HDF5 fixed-length string")
        tid = _string_type(len(raw), utf8=is_text or utf8_bytes)
        if is_text and not raw:  # PyTables stores '' as an empty (NULL dataspace) string
            h5py.h5a.create(obj.id, bname, tid, h5py.h5s.create(h5py.h5s.NULL))
            return
        data = np.array(raw, dtype=f"S{max(len(raw), 1)}")
    elif isinstance(value, (int, np.integer)):
        data = np.array(value, dtype=value.dtype if isinstance(value, np.integer) else np.int64)
        tid = h5py.h5t.py_create(data.dtype)
    elif isinstance(value, (float, np.floating)):
        data = np.array(value, dtype=value.dtype if isinstance(value, np.floating) else np.float64)
        tid = h5py.h5t.py_create(data.dtype)
    else:
        raise TypeError(f"attribute {name!r}: unsupported type {type(value).__name__}")
    attr = h5py.h5a.create(obj.id, bname, tid, scalar)
    attr.write(data, mtype=tid)


def _write_empty_title(obj: h5py.Group | h5py.Dataset, utf8: bool) -> None:
    """PyTables writes an empty TITLE as a NULL-dataspace 1-byte string."""
    space = h5py.h5s.create(h5py.h5s.NULL)
    h5py.h5a.create(obj.id, b"TITLE", _string_type(1, utf8=utf8), space)


def _group_attrs(group: h5py.Group, title: str | None) -> None:
    _write_attr(group, "CLASS", b"GROUP", utf8_bytes=True)
    if title is None:
        _write_empty_title(group, utf8=True)
    else:
        _write_attr(group, "TITLE", title.encode("ascii"), utf8_bytes=True)
    _write_attr(group, "VERSION", b"1.0", utf8_bytes=True)


# --------------------------------------------------------------------------- objects
def _new_group(parent: h5py.Group, name: str, title: str) -> h5py.Group:
    gcpl = h5py.h5p.create(h5py.h5p.GROUP_CREATE)
    gcpl.set_obj_track_times(False)
    gid = h5py.h5g.create(parent.id, name.encode("utf-8"), gcpl=gcpl)
    group = h5py.Group(gid)
    _group_attrs(group, title)
    return group


def _write_array(group: h5py.Group, name: str, array: np.ndarray, level: int) -> None:
    """Write an array as PyTables' ARRAY (small) or CARRAY (shuffle + gzip)."""
    x = np.ascontiguousarray(array)
    if x.dtype.kind not in "iuf":
        raise TypeError(f"array {name!r}: dtype {x.dtype} not supported (integers and floats only)")
    x = x.astype(x.dtype.newbyteorder("<"), copy=False)
    tid = h5py.h5t.py_create(x.dtype)
    dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
    dcpl.set_obj_track_times(False)
    dcpl.set_fill_time(h5py.h5d.FILL_TIME_ALLOC)
    zero = np.zeros((), dtype=x.dtype)
    dcpl.set_fill_value(zero)
    if x.ndim == 0 or min(x.shape) == 0:
        raise AssertionError("scalars and empty arrays are handled by the caller")
    compressed = x.size > _SMALL_ARRAY_ITEMS and level > 0
    maxshape: tuple[int, ...] = x.shape
    if compressed:
        chunk = pytables_chunkshape(x.shape, x.dtype.itemsize)
        maxshape = tuple(max(s, c) for s, c in zip(x.shape, chunk, strict=True))  # as PyTables does
        dcpl.set_chunk(chunk)
        dcpl.set_shuffle()
        dcpl.set_deflate(level)
        dcpl.set_alloc_time(h5py.h5d.ALLOC_TIME_INCR)
    else:
        dcpl.set_layout(h5py.h5d.CONTIGUOUS)
    space = h5py.h5s.create_simple(x.shape, maxshape)
    did = h5py.h5d.create(group.id, name.encode("utf-8"), tid, space, dcpl=dcpl)
    did.write(h5py.h5s.ALL, h5py.h5s.ALL, x)
    dset = h5py.Dataset(did)
    if compressed:
        _write_attr(dset, "CLASS", b"CARRAY")
        _write_attr(dset, "VERSION", b"1.1")
    else:
        _write_attr(dset, "CLASS", b"ARRAY", utf8_bytes=True)  # PyTables: UTF-8 here, ASCII for CARRAY
        _write_attr(dset, "FLAVOR", b"numpy", utf8_bytes=True)
        _write_attr(dset, "VERSION", b"2.4", utf8_bytes=True)
    _write_empty_title(dset, utf8=not compressed)


def _write_zero_size(group: h5py.Group, name: str, array: np.ndarray) -> None:
    """Store an array with a zero dimension as its shape (int64) + its dtype."""
    _write_array(group, name, np.asarray(array.shape, dtype=np.int64), level=0)
    dset = group[name]
    assert isinstance(dset, h5py.Dataset)
    _write_attr(dset, "zeroarray_dtype", np.dtype(array.dtype).str.encode("ascii"))


def _write_trial(data: h5py.Group, index: int, trial: Mapping[str, Any], level: int) -> None:
    where = f"trial {index}"
    for key in trial:
        if not isinstance(key, str) or not key or "/" in key or key in ("CLASS", "TITLE", "VERSION"):
            raise ValueError(f"{where}: invalid key {key!r}")
    group = _new_group(data, f"i{index}", f"dict:{len(trial)}")
    for key in sorted(trial):
        value = trial[key]
        try:
            if isinstance(value, np.ndarray) and value.ndim > 0:
                if min(value.shape) == 0:
                    _write_zero_size(group, key, value)
                else:
                    _write_array(group, key, value, level)
            else:
                scalar = value[()] if isinstance(value, np.ndarray) else value
                _write_attr(group, key, scalar)
        except (TypeError, ValueError) as exc:
            raise type(exc)(f"{where}, key {key!r}: {exc}") from exc


def write_shard(
    path: str | os.PathLike[str], trials: Sequence[Mapping[str, Any]], compression_level: int = 9
) -> Path:
    """Write ``trials`` (one dict per trial) as a Calandra-layout shard at ``path``.

    Values may be NumPy arrays of integers or floats (images: uint8 ``H x W x 3``),
    Python / NumPy scalars, ``bytes`` or ``str``. Arrays become datasets, everything
    else becomes an attribute of the trial group, exactly as deepdish / flammkuchen do.
    ``compression_level`` is the gzip level (flammkuchen's default 9; 0 = no compression).
    The write is atomic (temporary file + rename) and deterministic. Returns the path.

    >>> import numpy as np, tempfile, pathlib
    >>> img = np.zeros((4, 4, 3), np.uint8)
    >>> p = write_shard(pathlib.Path(tempfile.mkdtemp()) / "s.h5",
    ...                 [{"object_name": b"cup", "is_gripping": 1, "gelsightA_before": img}])
    >>> p.name
    's.h5'
    """
    target = Path(path)
    assert 0 <= compression_level <= 9, compression_level
    if not isinstance(trials, Sequence) or isinstance(trials, (str, bytes)):
        raise TypeError("trials must be a list of dicts")
    tmp = temp_sibling(target)
    fcpl = h5py.h5p.create(h5py.h5p.FILE_CREATE)
    fcpl.set_obj_track_times(False)  # the root group
    try:
        fid = h5py.h5f.create(str(tmp).encode(), h5py.h5f.ACC_TRUNC, fcpl=fcpl)
        with h5py.File(fid) as f:
            root = f["/"]
            assert isinstance(root, h5py.Group)
            _group_attrs(root, None)
            _write_attr(root, "PYTABLES_FORMAT_VERSION", b"2.1", utf8_bytes=True)
            _write_attr(root, "DEEPDISH_IO_VERSION", np.int64(DEEPDISH_IO_VERSION))
            _write_attr(root, "DEEPDISH_IO_DEEPDISH_IO_UNPACK", True)
            data = _new_group(root, "data", f"list:{len(trials)}")
            for i, trial in enumerate(trials):
                if not isinstance(trial, Mapping):
                    raise TypeError(f"trial {i}: expected a dict, got {type(trial).__name__}")
                _write_trial(data, i, trial, compression_level)
        tmp.replace(target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return target
