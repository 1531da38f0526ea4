"""The same bag, offline (no DDS) and live (bag_player → predictor_node over DDS): the same decisions.

A dense simulated bag as a robot records it (JointState 50 Hz, GelSight frames 30 Hz, a few ms
of receive jitter): frames and joint samples a few ms apart, so any scheduling delay of the
node would move Ta/Tb if it timed messages by its own clock. With the default time base
(``header``: the capture stamps) every grasp must get the same verdict, reason, Ta/Tb stamps
and p live as offline, with no ``/clock`` and no ``use_sim_time``.

The same check on any bag (e.g. 200 simulated grasps): ``tgp bag compare BAG --bundle B``.
"""

from __future__ import annotations

import importlib.util
import threading
import time
from pathlib import Path

import pytest

needs_node = pytest.mark.skipif(
    importlib.util.find_spec("tactile_grasp_predictor.ros.predictor_node") is None,
    reason="the ROS node (tactile_grasp_predictor/ros/predictor_node.py) does not exist yet",
)

N = 12


@needs_node
def test_offline_and_live_replay_give_the_same_decisions_on_every_grasp(tmp_path: Path) -> None:
    import torch

    from helpers.bundles import make_random_bundle
    from tactile_grasp_predictor.predictor import Predictor
    from tactile_grasp_predictor.replay.bag_source import BagSource
    from tactile_grasp_predictor.replay.compare import compare_decisions
    from tactile_grasp_predictor.replay.evaluate import evaluate_bag
    from tactile_grasp_predictor.ros.bag_player import live_replay
    from tactile_grasp_predictor.session import SessionConfig
    from tactile_grasp_predictor.tracker import TriggerConfig
    from training.bag_record import RecordOptions, synthetic_recordings, write_bag

    torch.set_num_threads(1)
    recs = synthetic_recordings(N, seed=1, no_part=0.25, fps=30.0)
    bag = tmp_path / "dense"
    write_bag(bag, recs, RecordOptions(storage="mcap", joint_rate_hz=50.0, jitter_s=0.002, seed=1),
              progress=False)
    predictor = Predictor.from_bundle(make_random_bundle(tmp_path / "bundle", size=32))
    offline = evaluate_bag(bag, predictor, session=SessionConfig(trigger=TriggerConfig()))
    assert len(offline.grasps) == N
    assert {g.decision.reason for g in offline.grasps} >= {"model", "no_part_found"}
    params = {"image_topic": "/gelsight_left/image_raw", "joint_states_topic": "/wsg50/joint_states",
              "image_qos": "reliable", "gripper_qos": "reliable"}  # the player is reliable: nothing lost
    live = live_replay(bag, predictor, params, rate=2.0, expected=N)
    cmp = compare_decisions(offline, live.decisions)
    print(f"{cmp.summary()}; frames offline {offline.frames}, live {live.frames_accepted}; "
          f"playback late by <= {live.stats.late_s_max:.3f} s")
    assert live.diagnostics["time_base"] == "header" and live.diagnostics["stamp_fallbacks"] == "0"
    assert cmp.all_identical, f"{len(cmp.mismatches)} grasps differ:\n" + "\n".join(cmp.mismatches[:20])
    assert live.frames_accepted == offline.frames
    with BagSource(bag) as src:
        assert live.gripper_accepted == src.counts["/wsg50/joint_states"]  # no JointState lost either


@needs_node
@pytest.mark.parametrize("model", [True, False], ids=["model", "no-model"])
def test_bad_frames_and_empty_stamps_get_the_same_decisions_live_and_offline(tmp_path: Path,
                                                                              model: bool) -> None:
    """Malformed frames (93 % refused encodings), no image stamps, with and without a model.

    Frame-starved grasps become ``bad_frame`` by the session's reason rule, offline as live;
    without a model every grasp that reaches Tb is ``model_unavailable``. The node runs on
    the bag's ``/clock`` (empty stamps: the receive time is the only time), as ``tgp bag
    compare --clock`` does.
    """
    import torch

    from helpers.bundles import make_random_bundle
    from tactile_grasp_predictor.predictor import Predictor
    from tactile_grasp_predictor.replay.compare import compare_decisions
    from tactile_grasp_predictor.replay.evaluate import evaluate_bag
    from tactile_grasp_predictor.ros.bag_player import live_replay
    from training.bag_record import RecordOptions, synthetic_recordings, write_bag

    torch.set_num_threads(1)
    n = 8
    bag = tmp_path / "faulty"
    write_bag(bag, synthetic_recordings(n, seed=5, no_part=0.1, fps=30.0),
              RecordOptions(bad_encoding=0.93, empty_stamps=True, seed=5), progress=False)
    predictor = Predictor.from_bundle(make_random_bundle(tmp_path / "bundle", size=32)) if model else None
    offline = evaluate_bag(bag, predictor)
    reasons = {g.decision.reason for g in offline.grasps}
    assert len(offline.grasps) == n and "bad_frame" in reasons, reasons
    assert ("model" if model else "model_unavailable") in reasons, reasons
    params = {"image_topic": "/gelsight_left/image_raw", "joint_states_topic": "/wsg50/joint_states",
              "image_qos": "reliable", "gripper_qos": "reliable"}
    live = live_replay(bag, predictor, params, rate=4.0, clock=True, expected=n)
    cmp = compare_decisions(offline, live.decisions)
    assert cmp.all_identical, f"{len(cmp.mismatches)} grasps differ:\n" + "\n".join(cmp.mismatches)
    assert int(live.diagnostics["stamp_fallbacks"]) > 0 and offline.stamp_fallbacks > 0


@needs_node
def test_tgp_bag_compare_reports_identical_grasps(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from helpers.bundles import make_random_bundle
    from training.cli import main

    assert main(["bag", "record", "--synthetic", "3", "--seed", "1", "--out", str(tmp_path / "b")]) == 0
    bundle = make_random_bundle(tmp_path / "bundle", size=32)
    out = tmp_path / "cmp"
    code = main(["bag", "compare", str(tmp_path / "b"), "--bundle", str(bundle), "--rate", "2",
                 "--out", str(out)])
    text = capsys.readouterr().out
    assert code == 0, text
    assert "b: 3/3 grasps identical live and offline" in text
    doc = json.loads((out / "compare.json").read_text())
    assert doc["all_identical"] and doc["grasps"] == 3 and doc["notes"]["time_base"] == "header"
    assert "**3/3 grasps identical**" in (out / "compare.md").read_text()


def test_player_republishes_raw_messages_and_skips_unknown_types(tmp_path: Path) -> None:
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.node import Node
    from rclpy.qos import QoSProfile, QoSReliabilityPolicy
    from rclpy.serialization import serialize_message
    from rosgraph_msgs.msg import Clock
    from sensor_msgs.msg import JointState

    from tactile_grasp_predictor.replay.bag_source import BagSource, GripperItem
    from tactile_grasp_predictor.ros.bag_player import BagPlayer
    from training.bag_record import RecordOptions, synthetic_recordings, write_bag

    bag = tmp_path / "b"
    write_bag(
        bag, synthetic_recordings(1, seed=0), RecordOptions(status="fork", storage="sqlite3"), progress=False
    )
    with BagSource(bag) as src:
        widths = [i.width_m for i in src.items() if isinstance(i, GripperItem) and i.kind == "joint"]
    context = rclpy.context.Context()
    rclpy.init(context=context)
    got: list[JointState] = []
    clocks: list[Clock] = []
    try:
        sink = Node("sink", context=context)
        keep_all = QoSProfile(depth=10_000, reliability=QoSReliabilityPolicy.RELIABLE)
        sink.create_subscription(JointState, "/wsg50/joint_states", got.append, keep_all)
        sink.create_subscription(Clock, "/clock", clocks.append, 100)
        player = BagPlayer(bag, rate=5.0, clock=True, clock_lead_s=0.0, context=context)
        assert "/wsg50/status" in player.stats.skipped_topics  # the driver's type is not installed here
        assert "not installed" in player.stats.skipped_topics["/wsg50/status"]
        executor = SingleThreadedExecutor(context=context)
        executor.add_node(sink)
        assert player.wait_for_subscribers(["/wsg50/joint_states"], 30.0)
        thread = threading.Thread(target=player.play, daemon=True)
        thread.start()
        deadline = time.monotonic() + 60.0
        while (thread.is_alive() or len(got) < len(widths)) and time.monotonic() < deadline:
            executor.spin_once(timeout_sec=0.05)
        thread.join(5.0)
        assert len(got) == len(widths), "every JointState arrived (reliable publisher, local DDS)"
        assert [abs(m.position[0]) + abs(m.position[1]) for m in got] == pytest.approx(widths)
        assert clocks and clocks[-1].clock.sec >= 1_700_000_000  # the bag's clock
        assert len(serialize_message(got[0])) > 0
        player.destroy_node()
        sink.destroy_node()
    finally:
        rclpy.shutdown(context=context)
