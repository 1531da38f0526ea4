"""Reader of the Calandra "Feeling of Success" shards (deepdish layout), one trial at a time.

A shard is an HDF5 file written by ``deepdish`` / ``flammkuchen`` from a Python list of
per-trial dicts: the group ``/data`` holds one group ``i<n>`` per trial; images are
compressed datasets inside it (zlib + shuffle by default, blosc possible: ``hdf5plugin``
is imported so its filters are registered), scalars and strings are attributes of the
trial group (``object_name`` as bytes, ``is_gripping`` as an integer or bool).

>>> with CalandraShard("calandra_corl2017_000.h5") as shard:   # doctest: +SKIP
...     trial = shard.read(shard.trial_indices()[0])
...     ta, tb = trial.images[GELSIGHT_A_BEFORE], trial.images[GELSIGHT_A_DURING]

Simulated shards use the same layout plus ``sim_*`` extras (arrays as datasets, hidden
parameters as attributes); they are read the same way (``extras``).

A shard is untrusted input: every HDF5 / h5py failure becomes a :class:`DatasetError` naming
the file and trial; declared shapes, dtypes and chunk sizes are checked against the layout's
limits (:data:`MAX_IMAGE_SIDE`, numeric dtypes, ``max_read_bytes`` per read) before any data
is read, so a corrupt header can neither crash the reader nor make it allocate gigabytes.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Generator, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import h5py
import hdf5plugin  # noqa: F401  (registers blosc, lz4, ... filters with HDF5)
import numpy as np

from tactile_grasp_predictor.errors import DatasetError

__all__ = [
    "DEFAULT_KEYS",
    "GELSIGHT_A_AFTER",
    "GELSIGHT_A_BEFORE",
    "GELSIGHT_A_DURING",
    "GELSIGHT_B_AFTER",
    "GELSIGHT_B_BEFORE",
    "GELSIGHT_B_DURING",
    "GELSIGHT_KEYS",
    "IMAGE_KEYS",
    "KINECT_KEYS",
    "KINECT_RGB_AFTER",
    "KINECT_RGB_BEFORE",
    "KINECT_RGB_DURING",
    "LEFT_FINGER",
    "MAX_ATTR_BYTES",
    "MAX_IMAGE_SIDE",
    "MAX_READ_BYTES",
    "RIGHT_FINGER",
    "CalandraShard",
    "ShardIndex",
    "Trial",
    "TrialRef",
    "gelsight_key",
    "index_shards",
]

log = logging.getLogger(__name__)

# The dataset's exact key spelling. GelSight A is the left finger, B the right.
GELSIGHT_A_BEFORE = "gelsightA_before"  # Ta: above the object, no contact
GELSIGHT_A_DURING = "gelsightA_during"  # Tb: closed, waited, just before lift
GELSIGHT_A_AFTER = "gelsightA_after"  # Tc: seconds after the lift
GELSIGHT_B_BEFORE = "gelsightB_before"
GELSIGHT_B_DURING = "gelsightB_during"
GELSIGHT_B_AFTER = "gelsightB_after"
KINECT_RGB_BEFORE = "kinectA_rgb_before"
KINECT_RGB_DURING = "kinectA_rgb_during"
KINECT_RGB_AFTER = "kinectA_rgb_after"
LEFT_FINGER = "A"
RIGHT_FINGER = "B"

GELSIGHT_KEYS: tuple[str, ...] = (
    GELSIGHT_A_BEFORE, GELSIGHT_A_DURING, GELSIGHT_A_AFTER,
    GELSIGHT_B_BEFORE, GELSIGHT_B_DURING, GELSIGHT_B_AFTER,
)
KINECT_KEYS: tuple[str, ...] = (KINECT_RGB_BEFORE, KINECT_RGB_DURING, KINECT_RGB_AFTER)
IMAGE_KEYS: frozenset[str] = frozenset(GELSIGHT_KEYS + KINECT_KEYS)
DEFAULT_KEYS: tuple[str, ...] = GELSIGHT_KEYS  # Kinect images are read only on request

#: Largest image side the layout allows (GelSight frames are 960 x 1280, Kinect crops ~293 x 807).
MAX_IMAGE_SIDE = 8192
#: Default bound on the bytes one read may allocate (a dataset, a chunk); ``CalandraShard(max_read_bytes=)``.
MAX_READ_BYTES = 1 << 30
#: Bound on one attribute's bytes (labels, names and simulator parameters are small).
MAX_ATTR_BYTES = 1 << 20
_NUMERIC_KINDS = "biufS"  # bool, ints, floats, fixed-length bytes: what the layout stores

OBJECT_NAME = "object_name"
IS_GRIPPING = "is_gripping"
_PYTABLES_ATTRS = frozenset({"CLASS", "TITLE", "VERSION", "FLAVOR"})
_TRIAL_NAME = re.compile(r"^i(\d+)$")
_PHASES = ("before", "during", "after")


def gelsight_key(finger: str, phase: str) -> str:
    """Return the key of a GelSight frame: finger ``"A"`` (left) or ``"B"``, phase ``before|during|after``.

    >>> gelsight_key("A", "during")
    'gelsightA_during'
    """
    if finger not in (LEFT_FINGER, RIGHT_FINGER):
        raise ValueError(f"finger must be 'A' (left) or 'B' (right), got {finger!r}")
    if phase not in _PHASES:
        raise ValueError(f"phase must be one of {_PHASES}, got {phase!r}")
    return f"gelsight{finger}_{phase}"


@dataclass(frozen=True)
class Trial:
    """One grasp trial as read from a shard.

    ``images`` maps the requested image keys to uint8 ``H x W x 3`` arrays (validated);
    ``extras`` holds any other requested dataset (e.g. ``sim_gripper_width``) and every
    non-standard attribute of the trial (e.g. ``sim_*`` hidden parameters).
    """

    source: str  # "<file name>:i<n>"
    index: int
    object_name: str
    is_gripping: bool
    images: dict[str, np.ndarray] = field(repr=False)
    extras: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def label(self) -> int:
        """The label as an integer: 1 = the lift succeeded, 0 = it failed."""
        return int(self.is_gripping)


@dataclass(frozen=True)
class TrialRef:
    """Where a trial lives, with its label and object (enough to split and cache without images)."""

    path: Path
    index: int
    object_name: str
    is_gripping: bool

    @property
    def source(self) -> str:
        """``"<file name>:i<n>"``, the trial's name in manifests and error messages."""
        return f"{self.path.name}:i{self.index}"

    @property
    def label(self) -> int:
        """1 = the lift succeeded, 0 = it failed."""
        return int(self.is_gripping)


@dataclass
class ShardIndex:
    """The readable trials of a set of shards, and what was skipped (source, reason)."""

    refs: list[TrialRef] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.refs)

    def __iter__(self) -> Iterator[TrialRef]:
        return iter(self.refs)

    def __getitem__(self, i: int) -> TrialRef:
        return self.refs[i]

    @property
    def labels(self) -> np.ndarray:
        """Labels of every indexed trial, ``(N,)`` int64."""
        return np.array([r.label for r in self.refs], dtype=np.int64)

    @property
    def objects(self) -> list[str]:
        """Sorted distinct object names."""
        return sorted({r.object_name for r in self.refs})


# --------------------------------------------------------------------------- attributes
@contextmanager
def _hdf5_errors(where: str, what: str) -> Iterator[None]:
    """Turn any failure of h5py / HDF5 inside the block into a :class:`DatasetError` naming ``where``."""
    try:
        yield
    except DatasetError:
        raise
    except Exception as exc:  # HDF5 errors surface as OSError, RuntimeError, KeyError, ValueError, ...
        raise DatasetError(f"{where}: {what} ({type(exc).__name__}: {str(exc)[:300]})") from exc


def _decode_attr(obj: h5py.Group, name: str) -> Any:
    """Read one attribute the way deepdish would: bitfield -> bool, bytes kept, UTF-8 strings -> str."""
    attr = h5py.h5a.open(obj.id, name.encode("utf-8"))
    tid = attr.get_type()
    declared = float(np.prod(attr.shape or (), dtype=np.float64)) * max(1, tid.get_size())
    if declared > MAX_ATTR_BYTES:
        raise ValueError(f"attribute {name!r} declares {declared:.3g} bytes (more than {MAX_ATTR_BYTES})")
    value = obj.attrs[name]
    if isinstance(tid, h5py.h5t.TypeBitfieldID) and np.ndim(value) == 0 and tid.get_size() == 1:
        return bool(value)
    if isinstance(value, h5py.Empty):
        return "" if isinstance(tid, h5py.h5t.TypeStringID) else None
    if isinstance(tid, h5py.h5t.TypeStringID) and isinstance(value, (bytes, np.bytes_)):
        if tid.get_cset() == h5py.h5t.CSET_UTF8:
            return bytes(value).decode("utf-8", errors="replace")
        return bytes(value)
    if isinstance(value, np.generic):
        return value.item()
    return value


def _as_text(value: Any) -> str:
    if isinstance(value, (bytes, np.bytes_)):
        return bytes(value).decode("utf-8", errors="replace")
    if isinstance(value, str):
        return value
    raise TypeError(f"expected bytes or str, got {type(value).__name__}")


def _as_label(value: Any) -> bool:
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)) and int(value) in (0, 1):
        return bool(value)
    if isinstance(value, (float, np.floating)) and float(value) in (0.0, 1.0):
        return bool(value)
    raise TypeError(f"expected 0/1 or a bool, got {value!r}")


# --------------------------------------------------------------------------- shard
class CalandraShard:
    """An open Calandra shard: a context manager reading one trial at a time.

    Raises :class:`DatasetError` naming the file for a missing, non-HDF5, truncated or
    empty shard, and naming the file and trial (``file.h5:i7``) for a bad trial.
    """

    def __init__(self, path: str | os.PathLike[str], max_read_bytes: int = MAX_READ_BYTES) -> None:
        self.path = Path(path)
        self.name = self.path.name
        self.max_read_bytes = int(max_read_bytes)
        if not self.path.is_file():
            raise DatasetError(f"{self.path}: no such shard file")
        with _hdf5_errors(str(self.path), "not a readable HDF5 file (truncated or not HDF5)"):
            self._file = h5py.File(self.path, "r")
        try:
            self._indices = self._list_trials()
        except BaseException:
            self._file.close()
            raise

    def _list_trials(self) -> list[int]:
        with _hdf5_errors(str(self.path), "cannot list trials (truncated or corrupt)"):
            data = self._file.get("data")
            if not isinstance(data, h5py.Group):
                raise DatasetError(f"{self.path}: no /data group (not a deepdish list of trials)")
            indices = []
            for name in data:
                m = _TRIAL_NAME.match(name)
                if m is not None and isinstance(data.get(name), h5py.Group):
                    indices.append(int(m.group(1)))
        if not indices:
            raise DatasetError(f"{self.path}: empty shard (no i<n> trial groups under /data)")
        return sorted(indices)

    # -- context manager ---------------------------------------------------------------
    def __enter__(self) -> CalandraShard:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the file (idempotent)."""
        with _hdf5_errors(str(self.path), "cannot close"):
            if self._file.id.valid:
                self._file.close()

    def __len__(self) -> int:
        return len(self._indices)

    def __repr__(self) -> str:
        return f"CalandraShard({str(self.path)!r}, trials={len(self)})"

    def trial_indices(self) -> list[int]:
        """Return the numbers ``n`` of the ``i<n>`` trial groups, sorted (maybe not contiguous)."""
        return list(self._indices)

    def source(self, index: int) -> str:
        """``"<file name>:i<n>"`` of trial ``index``."""
        return f"{self.name}:i{index}"

    def _group(self, index: int) -> h5py.Group:
        if not self._file.id.valid:
            raise DatasetError(f"{self.path}: shard is closed")
        with _hdf5_errors(self.source(index), "unreadable trial group"):
            group = self._file.get(f"data/i{index}")
        if not isinstance(group, h5py.Group):
            raise DatasetError(f"{self.source(index)}: no such trial in {self.path}")
        return group

    # -- reading -----------------------------------------------------------------------
    def read_attrs(self, index: int) -> dict[str, Any]:
        """Return the attributes (no image read): ``object_name`` str, ``is_gripping`` bool, extras."""
        group = self._group(index)
        where = self.source(index)
        with _hdf5_errors(where, "unreadable attributes"):
            names = [n for n in group.attrs if n not in _PYTABLES_ATTRS]
            attrs = {n: _decode_attr(group, n) for n in names}
        for key, conv in ((OBJECT_NAME, _as_text), (IS_GRIPPING, _as_label)):
            if key not in attrs:
                raise DatasetError(f"{where}: missing attribute {key!r}")
            try:
                attrs[key] = conv(attrs[key])
            except TypeError as exc:
                raise DatasetError(f"{where}: attribute {key!r}: {exc}") from exc
        return attrs

    def check(self, index: int, keys: Sequence[str] = DEFAULT_KEYS) -> dict[str, Any]:
        """Validate a trial from metadata (attributes, keys, image dtypes and shapes); return its attributes.

        Nothing is decompressed, so corrupt chunk data is only found by :meth:`read`.
        """
        attrs = self.read_attrs(index)
        group = self._group(index)
        for key in keys:
            self._checked_dataset(group, index, key)
        return attrs

    def _checked_dataset(self, group: h5py.Group, index: int, key: str) -> h5py.Dataset:
        """Return the dataset ``key`` once its declared dtype, shape and chunks fit the layout's limits."""
        where = self.source(index)
        with _hdf5_errors(where, f"unreadable key {key!r}"):
            dset = group.get(key)
            if dset is None:
                raise DatasetError(f"{where}: missing key {key!r}")
            if not isinstance(dset, h5py.Dataset):
                raise DatasetError(f"{where}: key {key!r} is a group, expected an array")
            dtype, shape, chunks = dset.dtype, tuple(dset.shape or ()), dset.chunks
        if key in IMAGE_KEYS:
            _check_image_meta(where, key, dtype, shape)
        elif dtype.kind not in _NUMERIC_KINDS or dtype.subdtype is not None or dtype.fields is not None:
            raise DatasetError(f"{where}: {key!r} has dtype {dtype}, expected numbers or bytes")
        for what, dims in (("shape", shape), ("chunks", chunks or ())):
            size = float(np.prod(dims, dtype=np.float64)) * dtype.itemsize  # float: no overflow
            if size > self.max_read_bytes:
                raise DatasetError(f"{where}: {key!r} declares {what} {dims} of {dtype} = {size:.3g} bytes, "
                                   f"more than one read may take ({self.max_read_bytes}); refused unread")
        return dset

    def read_array(self, index: int, key: str) -> np.ndarray:
        """Read one dataset of trial ``index`` (decompressed); image keys are validated as uint8 H x W x 3.

        The declared dtype and size are checked before anything is read (:data:`MAX_IMAGE_SIDE`,
        ``max_read_bytes``); a corrupt or truncated dataset raises :class:`DatasetError`.
        """
        group = self._group(index)
        dset = self._checked_dataset(group, index, key)
        where = self.source(index)
        with _hdf5_errors(where, f"cannot read {key!r} (truncated or corrupt data)"):
            zero_dtype = _decode_attr(dset, "zeroarray_dtype") if "zeroarray_dtype" in dset.attrs else None
            array = np.asarray(dset[()])
        if zero_dtype is not None:  # deepdish stores an array with a 0-length axis as its shape
            return self._empty_array(where, key, array, zero_dtype)
        if key in IMAGE_KEYS:
            _check_image_meta(where, key, array.dtype, array.shape)
        return array

    def _empty_array(self, where: str, key: str, shape: np.ndarray, dtype_text: Any) -> np.ndarray:
        """Rebuild deepdish's record of an array with a 0-length axis (its shape, stored as data)."""
        try:  # text only (bytes(n) of an int attribute would allocate n bytes), and short
            text = _as_text(dtype_text)
            if len(text) > 32:
                raise ValueError(f"dtype text of {len(text)} characters")
            dtype = np.dtype(text)
            dims = tuple(int(s) for s in np.asarray(shape).reshape(-1))
        except (TypeError, ValueError, OverflowError, UnicodeDecodeError) as exc:
            raise DatasetError(f"{where}: key {key!r}: bad empty-array record: {exc}") from exc
        if dtype.kind not in _NUMERIC_KINDS or len(dims) > 32 or any(d < 0 for d in dims) or 0 not in dims:
            raise DatasetError(f"{where}: key {key!r}: bad empty-array record: shape {dims} dtype {dtype}")
        return np.zeros(dims, dtype=dtype)

    def read(self, index: int, keys: Iterable[str] = DEFAULT_KEYS) -> Trial:
        """Read trial ``index`` with the datasets named in ``keys`` (images and/or extras).

        Image keys (GelSight, Kinect RGB) land in ``Trial.images``, validated as uint8
        ``H x W x 3``; any other key (e.g. ``sim_gripper_width``) lands in ``Trial.extras``,
        together with every attribute besides ``object_name`` and ``is_gripping``.
        """
        attrs = self.read_attrs(index)
        object_name = attrs.pop(OBJECT_NAME)
        is_gripping = attrs.pop(IS_GRIPPING)
        images: dict[str, np.ndarray] = {}
        extras: dict[str, Any] = attrs
        for key in keys:
            array = self.read_array(index, key)
            if key in IMAGE_KEYS:
                images[key] = array
            else:
                extras[key] = array
        return Trial(
            source=self.source(index), index=index, object_name=object_name,
            is_gripping=is_gripping, images=images, extras=extras,
        )

    def keys(self, index: int) -> list[str]:
        """Names of the datasets stored in trial ``index`` (sorted)."""
        group = self._group(index)
        with _hdf5_errors(self.source(index), "cannot list keys"):
            return sorted(group)

    def __iter__(self) -> Iterator[Trial]:
        """Iterate over every trial (default keys), one at a time."""
        for index in self._indices:
            yield self.read(index)


def read_trials(refs: Iterable[TrialRef], keys: Iterable[str] = DEFAULT_KEYS) -> Generator[Trial, None, None]:
    """Read the trials of ``refs`` in order, keeping one shard open while consecutive trials share a file.

    Close the generator (``contextlib.closing``) when stopping early, to close the last shard.
    """
    keys = tuple(keys)
    shard: CalandraShard | None = None
    try:
        for ref in refs:
            if shard is None or shard.path != ref.path:
                if shard is not None:
                    shard.close()
                shard = CalandraShard(ref.path)
            yield shard.read(ref.index, keys=keys)
    finally:
        if shard is not None:
            shard.close()


def _check_image_meta(where: str, key: str, dtype: np.dtype, shape: tuple[int, ...]) -> None:
    if dtype != np.uint8:
        raise DatasetError(f"{where}: {key!r} has dtype {dtype}, expected uint8")
    if len(shape) != 3:
        raise DatasetError(f"{where}: {key!r} has shape {shape}, expected H x W x 3")
    if shape[2] != 3:
        raise DatasetError(f"{where}: {key!r} has {shape[2]} channels, expected 3")
    if min(shape) == 0:
        raise DatasetError(f"{where}: {key!r} is empty, shape {shape}")
    if max(shape[:2]) > MAX_IMAGE_SIDE:
        raise DatasetError(f"{where}: {key!r} declares {shape[0]} x {shape[1]} pixels, more than "
                           f"{MAX_IMAGE_SIDE} a side (refused before reading)")


# --------------------------------------------------------------------------- index
def _shard_files(directory_or_files: str | os.PathLike[str] | Iterable[str | os.PathLike[str]]) -> list[Path]:
    if isinstance(directory_or_files, (str, os.PathLike)):
        root = Path(directory_or_files)
        if root.is_dir():
            return sorted(p for p in root.glob("*.h5") if p.is_file())
        if not root.exists():
            raise DatasetError(f"{root}: no such shard file or directory")
        return [root]
    return [Path(p) for p in directory_or_files]


def index_shards(
    directory_or_files: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
    skip_bad: bool = True,
    keys: Sequence[str] = DEFAULT_KEYS,
) -> ShardIndex:
    """Index the trials of a directory of ``*.h5`` shards (or of the given files).

    Each trial is checked from metadata only (label, object name, the ``keys`` present as
    uint8 ``H x W x 3``), without decoding images. With ``skip_bad`` a bad file or trial
    is logged as a warning and recorded in ``ShardIndex.skipped`` (source, reason);
    otherwise the first one raises :class:`DatasetError`.
    """
    index = ShardIndex()
    for path in _shard_files(directory_or_files):
        try:
            shard = CalandraShard(path)
        except DatasetError as exc:
            if not skip_bad:
                raise
            log.warning("skipping shard %s: %s", path, exc)
            index.skipped.append((path.name, str(exc)))
            continue
        index.files.append(path)
        with shard:
            for i in shard.trial_indices():
                try:
                    attrs = shard.check(i, keys)
                except DatasetError as exc:
                    if not skip_bad:
                        raise
                    log.warning("skipping trial %s: %s", shard.source(i), exc)
                    index.skipped.append((shard.source(i), str(exc)))
                    continue
                index.refs.append(TrialRef(path, i, attrs[OBJECT_NAME], attrs[IS_GRIPPING]))
    if index.skipped:
        log.warning("indexed %d trials, skipped %d bad file(s)/trial(s)", len(index.refs), len(index.skipped))
    return index
