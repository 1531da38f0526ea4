"""Paper and object-disjoint splits: sizes, no overlap, seeding, manifests."""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import pytest

from tactile_grasp_predictor.data import TrialRef, index_shards
from tactile_grasp_predictor.errors import DatasetError
from training.data.splits import Split, make_split, object_split, paper_split

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "calandra"


def _refs(n: int, n_objects: int = 105, shard_size: int = 250) -> list[TrialRef]:
    """Trial references laid out like the real dataset (38 shards of 250, ~105 objects)."""
    rng = random.Random(1)
    return [
        TrialRef(Path(f"/data/calandra_corl2017_{i // shard_size:03d}.h5"), i % shard_size,
                 f"object_{rng.randrange(n_objects):03d}", rng.random() < 0.642)
        for i in range(n)
    ]


def test_paper_split_full_size() -> None:
    refs = _refs(9296)
    split = paper_split(refs, seed=0)
    assert (len(split.train), len(split.test)) == (6000, 3000)
    assert not set(split.train) & set(split.test)
    assert not set(split.train_sources) & set(split.test_sources)
    assert len(set(split.train_sources)) == 6000
    assert split.params["scaled"] is False and split.params["available"] == 9296
    assert split.stats["train"]["trials"] == 6000
    assert 0.55 < split.stats["train"]["success_rate"] < 0.75


def test_paper_split_seeded_and_order_independent() -> None:
    refs = _refs(1000)
    a = paper_split(refs, seed=3)
    shuffled = list(refs)
    random.Random(0).shuffle(shuffled)
    b = paper_split(shuffled, seed=3)
    assert a.train == b.train and a.test == b.test
    c = paper_split(refs, seed=4)
    assert c.train != a.train


@pytest.mark.parametrize(("n", "train", "test"), [(300, 200, 100), (10, 6, 4), (2, 1, 1), (8999, 5999, 3000)])
def test_paper_split_scales_down_two_to_one(n: int, train: int, test: int) -> None:
    split = paper_split(_refs(n), seed=0)
    assert (len(split.train), len(split.test)) == (train, test)
    assert split.params["scaled"] is True


def test_paper_split_too_few() -> None:
    with pytest.raises(DatasetError, match="at least 2 trials"):
        paper_split(_refs(1))


def test_object_split_is_disjoint_by_object() -> None:
    refs = _refs(2000)
    split = object_split(refs, seed=0)
    train_objects = {r.object_name for r in split.train}
    test_objects = {r.object_name for r in split.test}
    assert not train_objects & test_objects
    assert len(train_objects) == round(0.75 * 105) == 79
    assert len(split.train) + len(split.test) == 2000  # every trial on one side
    assert split.params["train_objects"] == sorted(train_objects)
    assert object_split(refs, seed=0).train == split.train
    assert object_split(refs, seed=1).params["train_objects"] != split.params["train_objects"]


def test_object_split_needs_two_objects() -> None:
    with pytest.raises(DatasetError, match="2 distinct objects"):
        object_split(_refs(20, n_objects=1))
    split = object_split(_refs(50, n_objects=2), seed=0)
    assert split.stats["train"]["objects"] == 1 and split.stats["test"]["objects"] == 1


def test_manifest_round_trip_and_select(tmp_path: Path) -> None:
    d = tmp_path / "shards"
    d.mkdir()
    for name in ("zlib_small.h5", "blosc.h5", "noncontiguous.h5"):
        shutil.copy(FIXTURES / name, d / name)
    index = index_shards(d)
    split = paper_split(index, seed=5)
    assert (len(split.train), len(split.test)) == (6, 3)
    path = split.save(tmp_path / "runs" / "split.json")
    manifest = json.loads(path.read_text())
    assert manifest["kind"] == "paper" and manifest["seed"] == 5
    assert manifest["counts"] == {"train": 6, "test": 3}
    assert manifest["train"] == split.train_sources
    loaded = Split.load(path, index_shards(d))
    assert loaded == split
    assert all(isinstance(r, TrialRef) and r.path.parent == d for r in loaded.train)
    # a trial that is no longer indexed is reported, not silently dropped
    (d / "blosc.h5").unlink()
    side = "train" if any(s.startswith("blosc") for s in split.train_sources) else "test"
    with pytest.raises(DatasetError, match=f"split paper/{side}: .* not in the index"):
        Split.load(path, index_shards(d))


def test_bad_manifests(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(DatasetError, match=r"bad\.json: cannot read"):
        Split.load(bad, [])
    bad.write_text(json.dumps({"format_version": 99}))
    with pytest.raises(DatasetError, match="format version"):
        Split.read_manifest(bad)
    good = paper_split(_refs(30)).to_dict()
    good["counts"]["train"] += 1
    bad.write_text(json.dumps(good))
    with pytest.raises(DatasetError, match="do not match"):
        Split.read_manifest(bad)
    overlap = paper_split(_refs(30)).to_dict()
    overlap["test"].append(overlap["train"][0])
    overlap["counts"]["test"] += 1
    bad.write_text(json.dumps(overlap))
    with pytest.raises(DatasetError, match="overlap"):
        Split.read_manifest(bad)
    with pytest.raises(DatasetError, match="overlap"):
        Split("paper", 0, [_refs(2)[0]], [_refs(2)[0]])


def test_duplicate_sources_rejected() -> None:
    refs = _refs(10)
    with pytest.raises(DatasetError, match="not unique"):
        paper_split([*refs, refs[0]])


def test_make_split_by_name() -> None:
    refs = _refs(300)
    assert make_split(refs, "paper", seed=2) == paper_split(refs, seed=2)
    assert make_split(refs, "object", seed=2, train_fraction=0.5) == object_split(refs, 0.5, seed=2)
    with pytest.raises(ValueError, match="unknown split kind"):
        make_split(refs, "random")
