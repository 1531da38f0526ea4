"""predictor_node with ``record_dir`` over real DDS: its own grasps, labelled by an outcome topic, as shards.

The shards must load with the dataset reader and with flammkuchen, hold one trial per decided
grasp with the frames the node used and the outcome published after it, and feed ``tgp probe``
and ``tgp export`` unchanged. A node killed mid-run (SIGKILL, no clean shutdown) leaves
readable shards holding every grasp written before the kill.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import rclpy
from rclpy.node import Node
from std_msgs.msg import Bool

from helpers.rig import (
    BrightnessPredictor,
    Driver,
    GraspScript,
    Rig,
    connected,
    run_grasp,
    start_predictor,
)
from helpers.shards import read_shard_dir
from helpers.waiting import wait_for
from tactile_grasp_predictor.ros.conversions import stamp_to_float
from training.cli import main as tgp

ROOT = Path(__file__).resolve().parents[1]
FIXTURE_PY = ROOT / ".venv-fixtures" / "bin" / "python"
OUTCOME = "/grasp/outcome"
#: The scripted grasps hold the fingers without frames for a while (see helpers.rig.run_grasp).
SCRIPTED = {"trigger__frame_max_age_s": 5.0, "trigger__tb_timeout_s": 6.0}


def _trials(directory: Path) -> list[tuple[object, ...]]:
    """(label, Ta, Tb, node_* attributes) of every trial in ``directory``'s shards, in file order."""
    return [(t.is_gripping, t.images["gelsightA_before"], t.images["gelsightA_during"], t.extras)
            for t in read_shard_dir(directory)]


def _outcome_publisher(context: rclpy.context.Context) -> tuple[Node, object]:
    node = Node("robot_outcome", context=context)
    return node, node.create_publisher(Bool, OUTCOME, 10)


def test_the_node_records_its_grasps_with_their_outcomes(ros_context: rclpy.context.Context,
                                                         tmp_path: Path) -> None:
    rec = tmp_path / "rec"
    rig, _node, d = start_predictor(ros_context, BrightnessPredictor(), record_dir=str(rec),
                                   record_outcome_topic=OUTCOME, record_outcome_timeout_s=5.0,
                                   record_shard_trials=4, **SCRIPTED)
    pub_node, pub = _outcome_publisher(ros_context)
    # Tb brightness (p = value / 255) and the outcome the robot reports; None: no outcome comes
    plan = [(200, True), (60, False), (220, True), (40, False), (180, True), (90, False), (230, True),
            (70, False), (210, None)]
    try:
        assert wait_for(lambda: pub.get_subscription_count() > 0, 20.0), "outcome topic not matched"
        for i, (value, outcome) in enumerate(plan):
            run_grasp(d, GraspScript(k0=10 + 40 * i, tb_value=value), after_s=0.1)
            assert wait_for(lambda i=i: len(d.decisions) > i, 10.0), f"grasp {i + 1} not decided"
            if outcome is not None:
                pub.publish(Bool(data=outcome))
        labelled = sum(o is not None for _, o in plan)
        assert wait_for(lambda: d.last_diag().get("record_labelled") == str(labelled), 10.0), d.last_diag()
        values = d.last_diag()
        assert values["record_dropped"] == "0" and values["record_errors"] == "0", values
    finally:
        pub_node.destroy_node()
        rig.close()  # the clean shutdown writes the grasp still waiting for its outcome
    decisions = d.decisions
    assert [m.reason for m in decisions] == ["model"] * len(plan)
    trials = _trials(rec)
    assert len(trials) == labelled and len(list(rec.glob("*.h5"))) == 2  # 4 trials per shard
    for (label, ta, tb, extras), m, (value, outcome) in zip(trials, decisions, plan, strict=False):
        assert label == outcome and extras["node_label_source"] == "outcome_topic"
        assert ta.shape == (48, 64, 3) and int(ta[5, 5, 0]) == 100 and int(tb[5, 5, 0]) == value
        assert extras["node_tb_stamp"] == stamp_to_float(m.tb_stamp)
        assert extras["node_ta_stamp"] == stamp_to_float(m.ta_stamp)
        assert extras["node_grasp_id"] == m.grasp_id and extras["node_reason"] == "model"
        assert extras["node_verdict"] == ("LIFT" if m.verdict == 1 else "ABORT")
        assert extras["node_p_success"] == pytest.approx(m.p_success, abs=1e-6)
    unlabelled = _trials(rec / "unlabelled")
    assert len(unlabelled) == 1 and unlabelled[0][3]["node_label_source"] == "none"
    assert unlabelled[0][3]["node_grasp_id"] == decisions[-1].grasp_id

    if FIXTURE_PY.exists():  # flammkuchen (numpy < 2) reads the shards as a list of trial dicts
        script = ("import json, sys, flammkuchen\n"
                  "print(json.dumps([[int(t['is_gripping']), list(t['gelsightA_during'].shape)]\n"
                  "                  for f in sys.argv[1:] for t in flammkuchen.load(f)]))\n")
        files = [str(f) for f in sorted(rec.glob("*.h5"))]
        proc = subprocess.run([str(FIXTURE_PY), "-c", script, *files], capture_output=True, text=True,
                              timeout=120)
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert json.loads(proc.stdout) == [[int(bool(o)), [48, 64, 3]] for _, o in plan if o is not None]

    # tgp probe / export read the recorded shards unchanged
    run, common = tmp_path / "run", ["--config", "tiny", "--cache", str(tmp_path / "cache"), "--no-progress"]
    assert tgp(["train", "--synthetic", "48", "--out", str(run), *common, "--set", "epochs=1"]) == 0
    assert tgp(["probe", "--run", str(run), "--data", str(rec), *common, "--probes", "knn",
                "--fractions", "1"]) == 0
    bundle = tmp_path / "bundle"
    assert tgp(["export", "--run", str(run), "--data", str(rec), "--out", str(bundle), "--probe", "knn",
                *common]) == 0
    assert (bundle / "manifest.json").is_file()


def test_a_killed_node_leaves_readable_shards(ros_context: rclpy.context.Context, tmp_path: Path) -> None:
    rec = tmp_path / "rec"
    cmd = [sys.executable, "-m", "tactile_grasp_predictor.ros.predictor_node", "--ros-args",
           "-p", f"record_dir:={rec}", "-p", f"record_outcome_topic:={OUTCOME}", "-p", "time_base:=receive",
           "-p", "record_shard_trials:=2",
           *[a for k, v in SCRIPTED.items() for a in ("-p", f"{k.replace('__', '.')}:={v}")]]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    rig = Rig(ros_context)
    try:
        d = rig.add(Driver(ros_context))
        pub_node, pub = _outcome_publisher(ros_context)
        rig.start()
        connected(d, 60.0)
        assert wait_for(lambda: pub.get_subscription_count() > 0, 30.0)
        for i in range(3):  # no bundle: every grasp ABORTs (model_unavailable), with its Ta/Tb
            run_grasp(d, GraspScript(k0=10 + 40 * i), after_s=0.1)
            assert wait_for(lambda i=i: len(d.decisions) > i, 10.0), f"grasp {i + 1} not decided"
            pub.publish(Bool(data=i % 2 == 0))
            assert wait_for(lambda i=i: d.last_diag().get("record_labelled") == str(i + 1), 10.0)
        run_grasp(d, GraspScript(k0=200), after_s=0.1)  # decided, still waiting for its outcome: lost
        assert wait_for(lambda: len(d.decisions) == 4, 10.0)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        pub_node.destroy_node()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        rig.close()
    trials = _trials(rec)  # every file a complete shard: 2 + 1 trials
    assert [t[0] for t in trials] == [True, False, True] and len(list(rec.glob("*.h5"))) == 2
    assert [t[3]["node_reason"] for t in trials] == [m.reason for m in d.decisions[:3]]
    assert [t[3]["node_tb_stamp"] for t in trials] == [stamp_to_float(m.tb_stamp) for m in d.decisions[:3]]
    assert not list(rec.glob(".*"))  # no temporary file left behind: the kill came between writes
