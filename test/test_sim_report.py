"""``tgp simulate --report`` and the new-sensor split, on a few simulated trials."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from tactile_grasp_predictor.data.calandra import CalandraShard, index_shards
from tactile_grasp_predictor.errors import DatasetError
from training.data.splits import make_split
from training.sim import cli
from training.sim.report import METHODS

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def reported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("simrep") / "sim"
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    args = parser.parse_args(
        [
            "--trials",
            "40",
            "--seed",
            "5",
            "--out",
            str(out),
            "--width",
            "32",
            "--height",
            "24",
            "--workers",
            "1",
            "--report",
            "--report-epochs",
            "1",
            "--no-progress",
        ]
    )
    assert cli.run(args) == 0
    return out


def test_sensor_split_keeps_each_robot_on_one_side(reported: Path) -> None:
    index = index_shards(reported)
    split = make_split(index, kind="sensor", seed=0)
    robot = {}
    with CalandraShard(next(reported.glob("*.h5"))) as shard:
        for i in shard.trial_indices():
            robot[shard.source(i)] = shard.read_attrs(i)["sim_robot"]
    train_robots = {robot[s] for s in split.train_sources}
    test_robots = {robot[s] for s in split.test_sources}
    assert train_robots and test_robots and not train_robots & test_robots
    assert set(split.params["train_robots"]) == train_robots
    assert len(split.train) + len(split.test) == len(index)


def test_sensor_split_needs_simulated_shards(tmp_path: Path) -> None:
    from helpers.shards import write_synthetic_shards

    write_synthetic_shards(tmp_path, 6)
    with pytest.raises(DatasetError, match="sim_robot"):
        make_split(index_shards(tmp_path), kind="sensor")


def test_report_has_every_method_on_both_splits(reported: Path) -> None:
    res = json.loads((reported / "report" / "report.json").read_text())
    assert set(res["splits"]) == {"paper", "sensor"}
    for split in res["splits"].values():
        assert set(split["accuracy"]) == set(METHODS)
        assert all(0.0 <= a <= 1.0 for a in split["accuracy"].values())
        assert sum(v["n"] for v in split["family"].values()) == split["n_test"]
        assert sum(v["n"] for v in split["robot"].values()) == split["n_test"]
    md = (reported / "report" / "report.md").read_text()
    assert "hand features: gradient boosting" in md and "per family" in md and "per robot" in md
    assert (reported / "report" / "report.png").stat().st_size > 10_000
