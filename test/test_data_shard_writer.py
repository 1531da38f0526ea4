"""The shard writer: deepdish/flammkuchen layout with h5py, deterministic, atomic, readable by flammkuchen."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from tactile_grasp_predictor.data import CalandraShard
from training.data.shard_writer import pytables_chunkshape, write_shard

ROOT = Path(__file__).resolve().parents[1]
FIXTURE_PY = ROOT / ".venv-fixtures" / "bin" / "python"
needs_fixture_venv = pytest.mark.skipif(
    not FIXTURE_PY.exists(), reason=".venv-fixtures (numpy<2 + flammkuchen) is missing; see docs/data.md"
)


def _trials() -> list[dict]:
    rng = np.random.default_rng(3)
    trials = []
    for i in range(3):
        t = {
            "object_name": f"object_{i}".encode(),
            "is_gripping": i % 2,
            "sim_mass": 0.1 * (i + 1),
            "sim_kind": "bottle",
            "sim_slipped": bool(i % 2),
            "sim_gripper_time": np.linspace(0.0, 4.0, 41),
            "sim_gripper_width": np.linspace(0.11, 0.03, 41),
        }
        for finger in "AB":
            for phase in ("before", "during", "after"):
                t[f"gelsight{finger}_{phase}"] = rng.integers(0, 256, (24, 32, 3), dtype=np.uint8)
        trials.append(t)
    return trials


def _structure(path: Path) -> dict[str, object]:
    """Everything about the file except the raw bytes: attrs (with HDF5 types), layouts, filters, data."""
    out: dict[str, object] = {}

    def attrs(obj: h5py.HLObject) -> dict[str, object]:
        res = {}
        for k in obj.attrs:
            a = h5py.h5a.open(obj.id, k.encode())
            t = a.get_type()
            info = [t.get_class(), t.get_size(), a.get_space().get_simple_extent_type()]
            if isinstance(t, h5py.h5t.TypeStringID):
                info += [t.get_cset(), t.get_strpad()]
            res[k] = (info, repr(obj.attrs[k]))
        return res

    with h5py.File(path, "r") as f:
        out["/"] = attrs(f)

        def visit(name: str, obj: h5py.HLObject) -> None:
            entry: dict[str, object] = {"attrs": attrs(obj)}
            if isinstance(obj, h5py.Dataset):
                p = obj.id.get_create_plist()
                entry.update(
                    dtype=str(obj.dtype), shape=obj.shape, maxshape=obj.maxshape, chunks=obj.chunks,
                    filters=[p.get_filter(i)[:3] for i in range(p.get_nfilters())],
                    data=obj[()].tobytes(),
                )
            out[name] = entry

        f.visititems(visit)
    return out


def test_layout_and_attribute_types(tmp_path: Path) -> None:
    path = write_shard(tmp_path / "s.h5", _trials())
    with h5py.File(path, "r") as f:
        assert f.attrs["DEEPDISH_IO_VERSION"] == 12
        assert f.attrs["PYTABLES_FORMAT_VERSION"] == b"2.1"
        assert f["data"].attrs["TITLE"] == b"list:3"
        assert sorted(f["data"]) == ["i0", "i1", "i2"]
        g = f["data/i1"]
        assert g.attrs["TITLE"] == b"dict:13"
        assert g.attrs["object_name"] == b"object_1"
        assert g.attrs["is_gripping"] == 1 and g.attrs["is_gripping"].dtype == np.int64
        assert isinstance(h5py.h5a.open(g.id, b"sim_slipped").get_type(), h5py.h5t.TypeBitfieldID)
        img = g["gelsightA_during"]
        assert img.dtype == np.uint8 and img.shape == (24, 32, 3)
        assert img.compression == "gzip" and img.compression_opts == 9 and img.shuffle
        assert img.attrs["CLASS"] == b"CARRAY"
        assert g["sim_gripper_time"].attrs["CLASS"] == b"ARRAY"  # <= 300 items: uncompressed, like PyTables
        # no object timestamps anywhere (determinism)
        for name in ("/", "data", "data/i1", "data/i1/gelsightA_during", "data/i1/sim_gripper_time"):
            assert not f[name].id.get_create_plist().get_obj_track_times(), name


def test_same_input_gives_identical_bytes(tmp_path: Path) -> None:
    trials = _trials()
    a = write_shard(tmp_path / "a.h5", trials)
    time.sleep(1.1)  # HDF5 timestamps have 1 s resolution: a tracked time would now differ
    b = write_shard(tmp_path / "b.h5", trials)
    assert a.read_bytes() == b.read_bytes()
    c = write_shard(tmp_path / "c.h5", [*trials[:2], {**trials[2], "is_gripping": 1}])
    assert c.read_bytes() != a.read_bytes()


def test_atomic_write_leaves_no_partial_file(tmp_path: Path) -> None:
    target = tmp_path / "s.h5"
    with pytest.raises(TypeError, match=r"trial 1, key 'bad'"):
        write_shard(target, [_trials()[0], {"bad": object()}])
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(TypeError, match="trial 0, key 'strings'"):
        write_shard(target, [{"strings": np.array(["a", "b"])}])
    with pytest.raises(ValueError, match="invalid key"):
        write_shard(target, [{"a/b": 1}])
    with pytest.raises(ValueError, match=r"trial 0, key 'name'.*NUL"):
        write_shard(target, [{"name": b"a\x00b"}])
    assert list(tmp_path.iterdir()) == []


def test_chunkshape_matches_pytables_formula() -> None:
    # values observed in files written by flammkuchen 1.0.3 / PyTables 3.11
    assert pytables_chunkshape((960, 1280, 3), 1) == (17, 1280, 3)
    assert pytables_chunkshape((96, 128, 3), 1) == (170, 128, 3)
    assert pytables_chunkshape((500,), 8) == (8192,)
    assert pytables_chunkshape((2000, 10000), 1) == (13, 10000)


@needs_fixture_venv
def test_flammkuchen_reads_written_shard(tmp_path: Path) -> None:
    trials = _trials()
    path = write_shard(tmp_path / "s.h5", trials)
    script = (
        "import json, sys, numpy as np, flammkuchen\n"
        "d = flammkuchen.load(sys.argv[1])\n"
        "def desc(v):\n"
        "    if isinstance(v, np.ndarray):\n"
        "        return [str(v.dtype), list(v.shape), int(v.astype(np.int64).sum())]\n"
        "    if isinstance(v, bytes):\n"
        "        return [type(v).__name__, v.decode()]\n"
        "    return [type(v).__name__, v.item() if hasattr(v, 'item') else v]\n"
        "out = [{k: desc(v) for k, v in t.items()} for t in d]\n"
        "print(json.dumps([type(d).__name__, out]))\n"
    )
    res = subprocess.run(
        [str(FIXTURE_PY), "-c", script, str(path)], capture_output=True, text=True, timeout=120, check=False
    )
    assert res.returncode == 0, res.stderr
    kind, loaded = json.loads(res.stdout)
    assert kind == "list" and len(loaded) == 3
    for t, back in zip(trials, loaded, strict=True):
        assert sorted(back) == sorted(t)
        assert back["object_name"] == ["bytes_", t["object_name"].decode()]
        assert back["is_gripping"] == ["int64", t["is_gripping"]]
        assert back["sim_slipped"] == ["bool_", t["sim_slipped"]]
        assert back["sim_kind"] == ["str_", "bottle"]
        assert back["sim_mass"] == ["float64", pytest.approx(t["sim_mass"])]
        for key in ("gelsightA_before", "gelsightB_after", "gelsightA_during"):
            assert back[key] == ["uint8", [24, 32, 3], int(t[key].astype(np.int64).sum())]
        assert back["sim_gripper_width"][:2] == ["float64", [41]]


@needs_fixture_venv
def test_same_structure_as_flammkuchen_save(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    trials = [
        {
            "object_name": b"dog_toy",
            "is_gripping": 1,
            "gelsightA_before": rng.integers(0, 256, (96, 128, 3), dtype=np.uint8),
            "gelsightA_during": np.zeros((960, 1280, 3), np.uint8),
            "small": np.arange(12, dtype=np.float32).reshape(3, 4),
            "sim_width": np.linspace(0, 1, 500),
            "sim_int": 3, "sim_bool": True, "sim_f32": np.float32(2.5), "sim_text": "unicode ü",
            "sim_i32": np.int32(4), "sim_float": 1.25, "sim_empty_text": "", "sim_empty_bytes": b"",
            "sim_no_frames": np.zeros((0, 4, 3), np.uint8),
        },
        {"object_name": b"cat", "is_gripping": 0, "gelsightA_before": np.ones((40, 50, 3), np.uint8)},
    ]
    # hand the same input to flammkuchen (numpy<2 venv) through an .npz + JSON for the scalars
    arrays = {f"{i}/{k}": v for i, t in enumerate(trials) for k, v in t.items() if isinstance(v, np.ndarray)}
    np.savez(tmp_path / "in.npz", **arrays)
    scalars = [
        {k: [type(v).__name__, v.decode() if isinstance(v, bytes) else v.item() if hasattr(v, "item") else v]
         for k, v in t.items() if not isinstance(v, np.ndarray)}
        for t in trials
    ]
    (tmp_path / "in.json").write_text(json.dumps(scalars))
    script = (
        "import json, sys, numpy as np, flammkuchen\n"
        "d = sys.argv[1]; z = np.load(d + '/in.npz'); sc = json.load(open(d + '/in.json'))\n"
        "conv = {'bytes': lambda v: v.encode(), 'int': int, 'bool': bool, 'float': float, 'str': str,\n"
        "        'float32': np.float32, 'int32': np.int32}\n"
        "trials = [{k: conv[t](v) for k, (t, v) in s.items()} for s in sc]\n"
        "for name in z.files:\n"
        "    i, k = name.split('/'); trials[int(i)][k] = z[name]\n"
        "flammkuchen.save(d + '/ref.h5', trials)\n"
    )
    res = subprocess.run(
        [str(FIXTURE_PY), "-c", script, str(tmp_path)],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert res.returncode == 0, res.stderr
    mine = write_shard(tmp_path / "mine.h5", trials)
    ref, got = _structure(tmp_path / "ref.h5"), _structure(mine)
    assert sorted(ref) == sorted(got)
    for name in ref:
        assert got[name] == ref[name], name


# --------------------------------------------------------------------------- round trip (property)
_names = st.from_regex(r"sim_[a-z][a-z0-9_]{0,12}", fullmatch=True)
_scalars = st.one_of(
    st.booleans(), st.integers(-(2**62), 2**62), st.floats(allow_nan=False, width=64),
    st.text(max_size=12).filter(lambda t: "\x00" not in t),
    st.binary(max_size=12).filter(lambda b: b"\x00" not in b),
)
_arrays = hnp.arrays(
    dtype=st.sampled_from([np.uint8, np.int32, np.int64, np.float32, np.float64]),
    shape=hnp.array_shapes(min_dims=1, max_dims=3, min_side=0, max_side=12),
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(extras=st.dictionaries(_names, st.one_of(_scalars, _arrays), max_size=6), label=st.booleans())
def test_round_trip_through_reader(tmp_path: Path, extras: dict, label: bool) -> None:
    img = np.arange(5 * 7 * 3, dtype=np.uint8).reshape(5, 7, 3)
    trial = {"object_name": b"thing", "is_gripping": int(label), "gelsightA_before": img, **extras}
    path = write_shard(tmp_path / "rt.h5", [trial])
    with CalandraShard(path) as shard:
        arrays = [k for k, v in extras.items() if isinstance(v, np.ndarray)]
        got = shard.read(0, keys=["gelsightA_before", *arrays])
    assert got.object_name == "thing" and got.is_gripping is label
    np.testing.assert_array_equal(got.images["gelsightA_before"], img)
    assert sorted(got.extras) == sorted(extras)
    for key, value in extras.items():
        back = got.extras[key]
        if isinstance(value, np.ndarray):
            assert back.dtype == value.dtype and back.shape == value.shape
            np.testing.assert_array_equal(back, value)
        else:
            assert type(back) is type(value) and back == value, (key, value, back)
