"""A pick pipeline that pre-shapes the gripper before each grasp, recorded as a bag (issue #15).

``tgp bag record --preshape`` moves the open gripper to a random pre-grasp width (at 20–100
mm/s) before each grasp. Offline (``tgp bag eval``) every grasp is found once, with Ta before
its own closing (not before the pre-shape) and Tb after contact, and no pre-shaping move gets
a decision; played live to ``predictor_node`` (bag_player over DDS) the decisions are the same.
"""

from __future__ import annotations

import csv
import importlib.util
from pathlib import Path

import numpy as np
import pytest

from tactile_grasp_predictor.replay.bag_source import TopicSelection
from tactile_grasp_predictor.replay.evaluate import BagEvaluation
from training.bag_record import (
    PRESHAPE_CLEARANCE_M,
    RecordOptions,
    preshape_trial,
    synthetic_recordings,
    write_bag,
)

N = 6
needs_node = pytest.mark.skipif(
    importlib.util.find_spec("tactile_grasp_predictor.ros.predictor_node") is None,
    reason="the ROS node does not exist here",
)


class Brightness:
    """A deterministic model: p from Tb's mean brightness (no torch needed)."""

    model_id, threshold = "brightness", 0.5

    def predict(self, ta: np.ndarray, tb: np.ndarray) -> float:
        return float(tb.mean() / 255.0)


@pytest.fixture(scope="module")
def bag(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("preshape") / "pick"
    write_bag(path, synthetic_recordings(N, seed=4, no_part=0.25, fps=30.0),
              RecordOptions(preshape=True, status="fork", moving=True, seed=4), progress=False)
    return path


def labels(bag: Path) -> list[dict[str, str]]:
    with Path(str(bag) + ".labels.csv").open() as f:
        return list(csv.DictReader(f))


def check_every_grasp(result: BagEvaluation, rows: list[dict[str, str]]) -> None:
    """One decision per trial: Ta between the trial's start and its closing, Tb after contact."""
    assert len(result.grasps) == len(rows) == N
    for g, row in zip(result.grasps, rows, strict=True):
        d, t_close = g.decision, float(row["t_close"])
        assert d.ta_stamp is not None and float(row["t_start"]) < d.ta_stamp < t_close, (row, d)
        if d.reason == "model":
            assert d.tb_stamp is not None and t_close + 0.1 < d.tb_stamp < float(row["t_end"])
        else:
            assert d.reason == "no_part_found" and d.tb_stamp is None


def test_preshape_trial_moves_the_open_gripper_at_a_finite_speed() -> None:
    rec = synthetic_recordings(1, seed=2, no_part=0.0)[0]
    shaped, shape = preshape_trial(rec, np.random.default_rng(0))
    part = float(rec.gripper_w.min())
    assert part + PRESHAPE_CLEARANCE_M <= shape.width_m <= rec.open_width - 0.003
    assert 0.02 <= shape.speed_mps <= 0.1 and shape.rest_s >= 0.4
    speed = -np.diff(shaped.gripper_w) / np.diff(shaped.gripper_t)
    assert speed.max() <= max(shape.speed_mps, 0.1) * 1.01  # the move, then the trial's own closing
    moved = shaped.gripper_t <= shape.t_moved + shape.rest_s
    assert shaped.gripper_w[moved].min() == pytest.approx(shape.width_m)  # rests at the pre-grasp width
    assert shaped.gripper_w.min() == pytest.approx(part)  # then closes on the part as before
    assert (shaped.label, shaped.t_lift) == (rec.label, pytest.approx(rec.t_lift + shape.duration))
    t_close = rec.gripper_t[np.flatnonzero(rec.gripper_w < rec.open_width - 0.002)[0]]
    at_rest = rec.frames_left[rec.frame_t < t_close]  # the gel before any contact
    early = shaped.frame_t < shape.duration
    assert early.sum() >= 5
    assert all(any(np.array_equal(f, g) for g in at_rest) for f in shaped.frames_left[early])


def test_every_grasp_is_found_and_no_pre_shape_is_decided(bag: Path) -> None:
    from tactile_grasp_predictor.replay.evaluate import evaluate_bag
    from tactile_grasp_predictor.session import SessionConfig

    result = evaluate_bag(bag, Brightness())
    check_every_grasp(result, labels(bag))
    assert {g.decision.reason for g in result.grasps} == {"model", "no_part_found"}
    # JointState and frames alone (no status topic, no moving flag): the same grasps, the same Ta
    widths_only = evaluate_bag(bag, Brightness(), session=SessionConfig(),
                               topics=TopicSelection(moving="", status=""))
    check_every_grasp(widths_only, labels(bag))
    assert [g.decision.ta_stamp for g in widths_only.grasps] == [g.decision.ta_stamp for g in result.grasps]


@needs_node
def test_the_pre_shaping_pick_sequence_played_live_gives_the_same_decisions(bag: Path) -> None:
    from tactile_grasp_predictor.replay.compare import compare_decisions
    from tactile_grasp_predictor.replay.evaluate import evaluate_bag
    from tactile_grasp_predictor.ros.bag_player import live_replay

    offline = evaluate_bag(bag, Brightness(), topics=TopicSelection(status=""))  # no WSG type installed live
    params = {"image_topic": "/gelsight_left/image_raw", "joint_states_topic": "/wsg50/joint_states",
              "moving_topic": "/wsg50/moving", "image_qos": "reliable", "gripper_qos": "reliable"}
    live = live_replay(bag, Brightness(), params, rate=4.0, expected=N)
    cmp = compare_decisions(offline, live.decisions)
    assert cmp.all_identical, f"{len(cmp.mismatches)} grasps differ:\n" + "\n".join(cmp.mismatches)
    assert live.frames_accepted == offline.frames


def test_trials_at_other_open_widths_are_bridged_not_decided(tmp_path: Path) -> None:
    """Simulated trials start at their own open widths: the recorder moves the fingers there, no jump."""
    from dataclasses import replace

    from tactile_grasp_predictor.replay.evaluate import evaluate_bag

    a, b, c = synthetic_recordings(3, seed=6, no_part=0.0, fps=30.0)
    wider = replace(b, gripper_w=np.where(b.gripper_w >= 0.0799, 0.095, b.gripper_w))  # opens to 95 mm
    narrower = replace(c, gripper_w=np.minimum(c.gripper_w, 0.07))  # then starts at 70 mm: a move down
    path = tmp_path / "bridged"
    write_bag(path, [a, wider, narrower], RecordOptions(seed=6), progress=False)
    rows = labels(path)
    result = evaluate_bag(path, Brightness())
    assert len(result.grasps) == 3 and {g.decision.reason for g in result.grasps} == {"model"}
    for g, row in zip(result.grasps, rows, strict=True):  # each trial's own grasp, Ta before its closing
        assert g.decision.ta_stamp is not None
        assert float(row["t_start"]) < g.decision.ta_stamp < float(row["t_close"]) < g.decision.tb_stamp
