"""The node's recorder without ROS: outcomes within the timeout, unlabelled grasps, errors counted."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from helpers.shards import read_shard_dir
from helpers.waiting import wait_for
from tactile_grasp_predictor.decision import Decision, Verdict
from tactile_grasp_predictor.gate import Frame, SnapshotReady
from tactile_grasp_predictor.recorder import GraspRecorder, RecorderConfig


def grasp(k: int) -> tuple[Decision, SnapshotReady]:
    """Grasp ``k``: Ta uniform 100, Tb uniform ``k``, stamps 10k and 10k + 1."""
    ta = Frame(10.0 * k, 10.0 * k, np.full((6, 8, 3), 100, np.uint8))
    tb = Frame(10.0 * k + 1, 10.0 * k + 1, np.full((6, 8, 3), k, np.uint8))
    d = Decision(k, Verdict.LIFT, 0.8, 0.5, ta.stamp, tb.stamp, 3.0, "model", "m", tb.t + 0.01)
    return d, SnapshotReady(k, ta, tb, tb.t)


def labels(directory: Path) -> list[tuple[bool, int, int]]:
    """(label, grasp id, Tb value) of every trial in ``directory``'s shards."""
    return [(t.is_gripping, t.extras["node_grasp_id"], int(t.images["gelsightA_during"][0, 0, 0]))
            for t in read_shard_dir(directory, keys=("gelsightA_during",))]


def test_outcomes_label_the_waiting_grasp_and_the_rest_is_unlabelled(tmp_path: Path) -> None:
    rec = GraspRecorder(RecorderConfig(tmp_path, trials_per_shard=2, outcome_timeout_s=30.0))
    for k, outcome in ((1, True), (2, False), (3, None), (4, True)):
        assert rec.add(*grasp(k))
        if outcome is not None:
            rec.outcome(outcome)
    rec.outcome(True)  # nobody waits for it: grasp 4 had its outcome
    d5, s5 = grasp(5)
    assert not rec.add(d5, None)  # decided before Tb: nothing to record
    rec.add(d5, s5)  # waits for an outcome until the recorder closes
    rec.close()
    assert labels(tmp_path) == [(True, 1, 1), (False, 2, 2), (True, 4, 4)]  # 2 + 1 trials
    assert len(list(tmp_path.glob("*.h5"))) == 2
    assert [g for _, g, _ in labels(tmp_path / "unlabelled")] == [3, 5]
    s = rec.stats
    counts = (s.written, s.labelled, s.unlabelled, s.no_frames, s.stray_outcomes, s.dropped)
    assert counts == (5, 3, 2, 1, 1, 0)
    assert not rec.add(*grasp(6))  # closed


def test_no_outcome_in_time_writes_the_grasp_unlabelled(tmp_path: Path) -> None:
    rec = GraspRecorder(RecorderConfig(tmp_path, outcome_timeout_s=0.2))
    rec.add(*grasp(1))
    assert wait_for(lambda: rec.stats.unlabelled == 1, 10.0)
    time.sleep(0.05)
    rec.outcome(True)  # too late: a stray outcome, not a label
    rec.close()
    assert labels(tmp_path) == [] and rec.stats.stray_outcomes == 1


def test_a_write_error_is_counted_and_the_recorder_goes_on(tmp_path: Path) -> None:
    blocked = tmp_path / "not_a_dir"
    blocked.write_text("")
    rec = GraspRecorder(RecorderConfig(blocked, outcome_timeout_s=0.0))
    rec.add(*grasp(1))
    assert wait_for(lambda: rec.stats.errors == 1, 10.0)
    rec.add(*grasp(2))
    rec.close()
    assert rec.stats.errors == 2 and rec.stats.written == 0 and "grasp 2" in rec.values()["record_last_error"]
