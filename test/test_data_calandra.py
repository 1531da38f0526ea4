"""The Calandra shard reader on fixtures written by flammkuchen (the published format), good and bad."""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest

from tactile_grasp_predictor.data import (
    DEFAULT_KEYS,
    GELSIGHT_A_BEFORE,
    GELSIGHT_A_DURING,
    KINECT_KEYS,
    CalandraShard,
    gelsight_key,
    index_shards,
)
from tactile_grasp_predictor.errors import DatasetError
from training.data.shard_writer import write_shard

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "calandra"
EXPECTED = json.loads((FIXTURES / "expected.json").read_text())
GOOD = ("zlib_small.h5", "fullsize.h5", "blosc.h5", "noncontiguous.h5")


def _sha(a: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()


@pytest.mark.parametrize("name", GOOD)
def test_reads_fixture_exactly(name: str) -> None:
    expected = EXPECTED[name]
    with CalandraShard(FIXTURES / name) as shard:
        assert len(shard) == len(expected)
        assert shard.trial_indices() == [e["index"] for e in expected]
        for e in expected:
            keys = sorted(e["arrays"])
            trial = shard.read(e["index"], keys=keys)
            assert trial.source == f"{name}:i{e['index']}"
            assert trial.index == e["index"]
            assert trial.object_name == e["object_name"] and isinstance(trial.object_name, str)
            assert trial.is_gripping is e["is_gripping"]
            assert trial.label == int(e["is_gripping"])
            assert sorted(trial.images) == keys and trial.extras == {}
            for key, img in trial.images.items():
                assert img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3
                assert list(img.shape) == e["arrays"][key]["shape"]
                assert _sha(img) == e["arrays"][key]["sha256"], key


def test_full_size_gelsight_frames() -> None:
    with CalandraShard(FIXTURES / "fullsize.h5") as shard:
        trial = shard.read(0)
    assert sorted(trial.images) == sorted(DEFAULT_KEYS)
    assert all(img.shape == (960, 1280, 3) for img in trial.images.values())
    # Ta (no contact) and Tb (contact) differ; the images are real content, not zeros
    diff = np.abs(trial.images[GELSIGHT_A_DURING].astype(int) - trial.images[GELSIGHT_A_BEFORE].astype(int))
    assert diff.max() > 20 and trial.images[GELSIGHT_A_BEFORE].std() > 5


def test_default_keys_and_kinect_only_on_request() -> None:
    with CalandraShard(FIXTURES / "zlib_small.h5") as shard:
        default = shard.read(1)
        assert sorted(default.images) == sorted(DEFAULT_KEYS)
        assert not any(k.startswith("kinect") for k in default.images)
        kinect = shard.read(1, keys=KINECT_KEYS)
        assert sorted(kinect.images) == sorted(KINECT_KEYS)
        assert kinect.images["kinectA_rgb_during"].shape == (29, 80, 3)
        assert "kinectA_rgb_before" in shard.keys(1)


def test_read_attrs_is_cheap_and_decoded() -> None:
    with CalandraShard(FIXTURES / "zlib_small.h5") as shard:
        attrs = shard.read_attrs(0)
    assert attrs == {"object_name": "dog_toy_ice_cream_cone", "is_gripping": True}


def test_gelsight_key_names() -> None:
    assert gelsight_key("A", "before") == GELSIGHT_A_BEFORE
    assert gelsight_key("B", "after") == "gelsightB_after"
    with pytest.raises(ValueError, match="finger"):
        gelsight_key("L", "before")
    with pytest.raises(ValueError, match="phase"):
        gelsight_key("A", "lift")


def test_reads_simulated_extras(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    trials = []
    for i in range(2):
        t = {gelsight_key(f, p): rng.integers(0, 256, (12, 16, 3), dtype=np.uint8)
             for f in "AB" for p in ("before", "during", "after")}
        t.update(
            object_name=f"sim_box_{i}".encode(), is_gripping=i, sim_mass=0.25 + i, sim_kind="box",
            sim_slipped=bool(i), sim_seed=np.int64(7 + i), sim_t_during=3.0,
            sim_gripper_time=np.linspace(0, 5, 400), sim_gripper_width=np.linspace(0.1, 0.02, 400),
            sim_gelsightA_stream=np.zeros((0, 12, 16, 3), np.uint8),
        )
        trials.append(t)
    path = write_shard(tmp_path / "sim_000.h5", trials)
    with CalandraShard(path) as shard:
        assert shard.trial_indices() == [0, 1]
        trial = shard.read(1, keys=[*DEFAULT_KEYS, "sim_gripper_width", "sim_gelsightA_stream"])
    assert trial.object_name == "sim_box_1" and trial.is_gripping is True
    assert trial.extras["sim_mass"] == pytest.approx(1.25)
    assert trial.extras["sim_kind"] == "box"
    assert trial.extras["sim_slipped"] is True
    assert trial.extras["sim_seed"] == 8 and trial.extras["sim_t_during"] == 3.0
    np.testing.assert_array_equal(trial.extras["sim_gripper_width"], trials[1]["sim_gripper_width"])
    assert trial.extras["sim_gelsightA_stream"].shape == (0, 12, 16, 3)
    assert trial.extras["sim_gelsightA_stream"].dtype == np.uint8
    assert "sim_gripper_time" not in trial.extras  # datasets only on request
    for key in DEFAULT_KEYS:
        np.testing.assert_array_equal(trial.images[key], trials[1][key])


# --------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    ("name", "pattern"),
    [
        ("bad_missing_key.h5", r"bad_missing_key\.h5:i1: missing key 'gelsightA_during'"),
        ("bad_dtype.h5", r"bad_dtype\.h5:i1: 'gelsightA_before' has dtype float32, expected uint8"),
        ("bad_channels.h5", r"bad_channels\.h5:i1: 'gelsightA_during' has 4 channels, expected 3"),
        ("bad_gray.h5", r"bad_gray\.h5:i1: 'gelsightB_before' has shape \(30, 40\), expected H x W x 3"),
        ("bad_no_label.h5", r"bad_no_label\.h5:i1: missing attribute 'is_gripping'"),
    ],
)
def test_bad_trial_names_file_and_trial(name: str, pattern: str) -> None:
    with CalandraShard(FIXTURES / name) as shard:
        shard.read(0)  # the first trial is fine
        with pytest.raises(DatasetError, match=pattern):
            shard.read(1)
        with pytest.raises(DatasetError, match=pattern):
            shard.check(1)


def test_empty_shard() -> None:
    with pytest.raises(DatasetError, match=r"bad_empty\.h5: empty shard"):
        CalandraShard(FIXTURES / "bad_empty.h5")


def test_not_hdf5_and_missing_file(tmp_path: Path) -> None:
    text = tmp_path / "notes.h5"
    text.write_text("this is not an HDF5 file\n")
    with pytest.raises(DatasetError, match=r"notes\.h5: not a readable HDF5 file"):
        CalandraShard(text)
    with pytest.raises(DatasetError, match=r"absent\.h5: no such shard file"):
        CalandraShard(tmp_path / "absent.h5")


def test_no_data_group(tmp_path: Path) -> None:
    with h5py.File(tmp_path / "other.h5", "w") as f:
        f["images"] = np.zeros((2, 2))
    with pytest.raises(DatasetError, match=r"other\.h5: no /data group"):
        CalandraShard(tmp_path / "other.h5")


def test_truncated_file(tmp_path: Path) -> None:
    path = tmp_path / "truncated.h5"
    data = (FIXTURES / "zlib_small.h5").read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(DatasetError, match=r"truncated\.h5"), CalandraShard(path) as shard:
        for i in shard.trial_indices():
            shard.read(i)


def test_corrupt_image_data_names_trial(tmp_path: Path) -> None:
    path = tmp_path / "corrupt.h5"
    shutil.copy(FIXTURES / "fullsize.h5", path)
    with h5py.File(path, "r") as f:
        offset = f["data/i0/gelsightA_during"].id.get_chunk_info(0).byte_offset
    with path.open("r+b") as fh:  # overwrite the start of the first compressed chunk
        fh.seek(offset)
        fh.write(b"\xff" * 64)
    with CalandraShard(path) as shard:
        shard.read(0, keys=[GELSIGHT_A_BEFORE])  # other data still reads
        with pytest.raises(DatasetError, match=r"corrupt\.h5:i0: cannot read 'gelsightA_during'"):
            shard.read(0)


def test_unknown_trial_and_closed_shard() -> None:
    shard = CalandraShard(FIXTURES / "noncontiguous.h5")
    with pytest.raises(DatasetError, match=r"noncontiguous\.h5:i1: no such trial"):
        shard.read(1)
    shard.close()
    shard.close()
    with pytest.raises(DatasetError, match="closed"):
        shard.read(0)


# --------------------------------------------------------------------------- index
def _mixed_dir(tmp_path: Path) -> Path:
    d = tmp_path / "shards"
    d.mkdir()
    for name in (*GOOD, "bad_missing_key.h5", "bad_dtype.h5", "bad_empty.h5"):
        shutil.copy(FIXTURES / name, d / name)
    (d / "garbage.h5").write_bytes(b"\x89HDF\r\n\x1a\n" + b"\x00" * 10)
    (d / "readme.txt").write_text("not a shard, not indexed")
    return d


def test_index_skips_bad_with_warning_and_count(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    d = _mixed_dir(tmp_path)
    with caplog.at_level(logging.WARNING):
        index = index_shards(d)
    good_trials = sum(len(EXPECTED[n]) for n in GOOD) + 2  # + the good first trial of two bad shards
    assert len(index) == good_trials
    assert sorted(s for s, _ in index.skipped) == [
        "bad_dtype.h5:i1", "bad_empty.h5", "bad_missing_key.h5:i1", "garbage.h5"
    ]
    assert any("skipped 4" in r.message for r in caplog.records)
    assert [r.source for r in index if r.path.name == "noncontiguous.h5"] == [
        "noncontiguous.h5:i0", "noncontiguous.h5:i7", "noncontiguous.h5:i12"
    ]
    zlib = [r for r in index if r.path.name == "zlib_small.h5"]
    assert [(r.object_name, r.is_gripping) for r in zlib] == [
        (e["object_name"], e["is_gripping"]) for e in EXPECTED["zlib_small.h5"]
    ]
    assert index.labels.dtype == np.int64 and set(index.labels.tolist()) == {0, 1}
    assert "plastic_hammer" in index.objects
    assert len(index.files) == len(GOOD) + 2


def test_index_raises_when_not_skipping(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match=r"bad_dtype\.h5:i1"):
        index_shards([FIXTURES / "zlib_small.h5", FIXTURES / "bad_dtype.h5"], skip_bad=False)
    with pytest.raises(DatasetError, match="no such shard file or directory"):
        index_shards(tmp_path / "nowhere")


def test_index_single_file_and_custom_keys() -> None:
    index = index_shards(FIXTURES / "bad_missing_key.h5", keys=[GELSIGHT_A_BEFORE])
    assert len(index) == 2 and index.skipped == []
