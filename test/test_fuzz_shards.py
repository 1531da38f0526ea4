"""Fuzzing the shard reader: mutated Calandra-layout shards through the index and the trial reads (#19).

Each case copies a real shard (two trials written in the deepdish layout, GelSight frames and
simulator extras, one trial with enough keys to keep its links in a fractal heap) and spoils
it: bytes flipped or garbled, the file cut, a dataset replaced by one of another dtype
(strings, compounds, complex, bool), shape (empty, scalar, 4-D, declared in the billions with
nothing written), chunking or compression, attributes retyped, keys turned into soft,
external or hard links, trials renamed, things deleted, deepdish empty-array records forged.
Then ``index_shards`` and every read of every trial (``check``, ``read``, ``keys``,
``read_attrs``, ``read_array`` of each key).

A refusal is a :class:`DatasetError` (naming file and trial); anything else is a crash.
Memory stays bounded: a declared shape is refused before a byte is read.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from helpers.fuzz import ACCEPTED, REFUSED, SEEDS, Tally, fuzz_settings, pick, rng_number, rng_text
from tactile_grasp_predictor.data.calandra import GELSIGHT_KEYS, CalandraShard, index_shards
from tactile_grasp_predictor.errors import DatasetError
from training.data.shard_writer import write_shard

EXTRAS = ("sim_gripper_time", "sim_gripper_width", "sim_a", "sim_b", "sim_c", "sim_d")
KEYS = list(GELSIGHT_KEYS) + list(EXTRAS)
DTYPES = ["u1", "i2", "<f4", ">f8", "S5", "?", "c8", "vlen", "compound", "O-ref"]
MAX_READ = 64 << 20  # the per-read bound for these reads: what is allowed is read, and fast
DIMS = [0, 1, 3, 6, 8, 1000, 100_000, 2**31]


def _trial(rng: np.random.Generator, extras: int) -> dict[str, Any]:
    t: dict[str, Any] = {"object_name": b"cup", "is_gripping": 1, "sim_mass": 0.2}
    t.update({k: rng.integers(0, 256, (6, 8, 3), dtype=np.uint8) for k in GELSIGHT_KEYS})
    t.update({k: rng.random(20) for k in EXTRAS[:extras]})
    return t


SHARD_KINDS = ["bytes"] * 3 + [
    "truncate",
    "dataset",
    "dataset",
    "attr",
    "link",
    "delete",
    "rename",
    "zeroarray",
]
ATTRS = ["object_name", "is_gripping", "sim_mass", "CLASS", "zeroarray_dtype"]
LINKS = ["soft", "soft_self", "external", "external_dev", "hard", "hard_group"]
RENAMES = ["i-1", "ix", "i007", "i99999999999999999999", "j0", "i1"]
RECORD_DTYPES = [b"<f8", b"|u1", b"O", b"<U99999999999", b"xx", b"[('a','<i4')]"]


@st.composite
def mutations(draw: st.DrawFn) -> tuple[str, tuple[Any, ...]]:
    """Return the mutation kind (drawn) and its parameters (from a drawn seed), for :func:`_apply`."""
    kind = draw(st.sampled_from(SHARD_KINDS))
    rng = np.random.default_rng(draw(SEEDS))
    trial, key = pick(rng, ["i0", "i1"]), pick(rng, KEYS)
    if kind == "bytes":
        spots = [
            (int(rng.integers(0, 10**6)), rng.bytes(int(rng.integers(1, 9))))
            for _ in range(rng.integers(1, 7))
        ]
        return kind, (spots,)
    if kind == "truncate":
        return kind, (int(rng.integers(0, 10**6)),)
    if kind == "dataset":
        shape = tuple(pick(rng, DIMS) for _ in range(rng.integers(0, 5)))
        return kind, (
            trial,
            key,
            pick(rng, DTYPES),
            shape,
            bool(rng.integers(2)),
            pick(rng, [None, "gzip", "lzf"]),
            bool(rng.integers(2)),
        )
    if kind == "attr":
        value = pick(
            rng,
            [
                rng_number(rng),
                rng.bytes(int(rng.integers(0, 21))),
                rng_text(rng, 10),
                "empty",
                "array",
                "ref",
            ],
        )
        return kind, (trial, key, pick(rng, ATTRS), value, bool(rng.integers(2)))
    if kind == "link":
        return kind, (trial, key, pick(rng, LINKS))
    if kind == "delete":
        return kind, (trial, pick(rng, [key, "@object_name", "@is_gripping", "/data", "trial"]))
    if kind == "rename":
        return kind, (trial, pick(rng, RENAMES))
    return kind, (
        trial,
        key,
        [int(v) for v in rng.integers(-5, 2**40, rng.integers(0, 5))],
        pick(rng, RECORD_DTYPES),
    )


def _dataset(
    group: h5py.Group,
    key: str,
    dtype: str,
    shape: tuple[int, ...],
    chunked: bool,
    compression: str | None,
    fill: bool,
) -> None:
    if key in group:
        del group[key]
    dt: Any = {
        "vlen": h5py.string_dtype(),
        "compound": np.dtype([("a", "<i4"), ("b", "<f8")]),
        "O-ref": h5py.ref_dtype,
    }.get(dtype, dtype)
    size = int(np.prod(shape, dtype=np.float64)) if shape else 1
    if fill and size <= 4096 and dtype not in ("O-ref",):
        data = np.zeros(shape, dtype=dt if not isinstance(dt, str) or dt != "vlen" else object)
        group.create_dataset(key, data=data)
        return
    kwargs: dict[str, Any] = {}
    if (chunked or compression) and shape and min(shape) > 0:
        kwargs["chunks"] = tuple(min(d, 64) for d in shape)
        kwargs["compression"] = compression
    elif size > 10**7:  # a contiguous dataset that large would be written out: declare it chunked
        kwargs["chunks"] = tuple(max(1, min(d, 64)) for d in shape) if shape and min(shape) > 0 else None
    if kwargs.get("chunks") is None:
        kwargs.pop("chunks", None)
    group.create_dataset(key, shape=shape, dtype=dt, **kwargs)


def _apply(path: Path, kind: str, args: tuple[Any, ...]) -> None:
    if kind in ("bytes", "truncate"):
        data = bytearray(path.read_bytes())
        if kind == "truncate":
            data = data[: args[0] % (len(data) + 1)]
        else:
            for where, chunk in args[0]:
                i = where % len(data)
                data[i : i + len(chunk)] = chunk
        path.write_bytes(bytes(data))
        return
    with h5py.File(path, "r+") as f:
        group = f[f"data/{args[0]}"]
        if kind == "dataset":
            _dataset(group, *args[1:])
        elif kind == "attr":
            _, key, name, value, on_dataset = args
            obj = group[key] if on_dataset and key in group else group
            if name in obj.attrs:
                del obj.attrs[name]
            value = (
                {"empty": h5py.Empty("f8"), "array": np.arange(70_000, dtype=np.int8), "ref": obj.ref}.get(
                    value, value
                )
                if isinstance(value, str)
                else value
            )
            obj.attrs[name] = value
        elif kind == "link":
            _, key, how = args
            if key in group:
                del group[key]
            group[key] = {
                "soft": h5py.SoftLink("/nowhere"),
                "soft_self": h5py.SoftLink(f"/data/{args[0]}/{key}"),
                "external": h5py.ExternalLink("/nonexistent.h5", "/x"),
                "external_dev": h5py.ExternalLink("/dev/zero", "/x"),
                "hard": f["data/i1/gelsightA_during"],
                "hard_group": f["data"],
            }[how]
        elif kind == "delete":
            _, what = args
            if what.startswith("@"):
                if what[1:] in group.attrs:
                    del group.attrs[what[1:]]
            elif what == "/data":
                del f["data"]
            elif what == "trial":
                del f[f"data/{args[0]}"]
            elif what in group:
                del group[what]
        elif kind == "rename":
            if args[1] not in f["data"]:
                f["data"].move(args[0], args[1])
        else:  # deepdish's record of an empty array: its shape, stored as data
            _, key, dims, dtype = args
            if key in group:
                del group[key]
            group.create_dataset(key, data=np.array(dims, dtype=np.int64))
            group[key].attrs["zeroarray_dtype"] = np.bytes_(dtype)


def _read_everything(path: Path) -> str:
    """Index the shard and read every trial every way; REFUSED if any read was refused (by name)."""
    index = index_shards([path])  # bad trials are skipped and named
    refused = len(index.skipped)
    with CalandraShard(path, max_read_bytes=MAX_READ) as shard:
        for ref in index:
            shard.read(ref.index, keys=KEYS[:6])  # indexed: the default keys must read
        for i in shard.trial_indices():
            reads: list[Callable[[], Any]] = [partial(shard.keys, i), partial(shard.read_attrs, i)]
            reads += [partial(shard.read_array, i, k) for k in KEYS]
            for read in reads:
                try:
                    out = read()
                except DatasetError:
                    refused += 1
                    continue
                if isinstance(out, np.ndarray):
                    assert out.nbytes <= shard.max_read_bytes, out.shape
    return REFUSED if refused else ACCEPTED


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("shard") / "base.h5"
    rng = np.random.default_rng(0)
    write_shard(path, [_trial(rng, 2), _trial(rng, 6)], compression_level=1)
    return path


@pytest.fixture
def quiet_index() -> Iterator[None]:
    """Silence the index's warning per skipped trial for one test (restoring the level after it)."""
    logger = logging.getLogger("tactile_grasp_predictor.data.calandra")
    level = logger.level
    logger.setLevel(logging.ERROR)
    yield
    logger.setLevel(level)


@pytest.mark.usefixtures("quiet_index")
def test_fuzz_mutated_shards_are_refused_by_name(base: Path, tmp_path: Path) -> None:
    tally = Tally("shard", expected=(DatasetError,))

    @fuzz_settings(default_cases=60)
    @given(mutations())
    def case(mutation: tuple[str, tuple[Any, ...]]) -> None:
        kind, args = mutation
        work = tmp_path / "case.h5"
        shutil.copyfile(base, work)
        try:
            _apply(work, kind, args)
        except (ValueError, TypeError, KeyError, OSError, RuntimeError):  # h5py would not write all of it
            kind += " (partly applied)"  # still a case: the file as far as it was changed
        tally.run(lambda: _read_everything(work), lambda: f"{kind} {args!r}"[:600], kind)

    case()
    tally.finish(min_cases=40)
