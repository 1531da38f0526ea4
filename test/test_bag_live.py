"""The same bag, offline (no DDS) and live (bag_player → predictor_node over DDS): the same decisions.

The node runs on the bag's clock (``use_sim_time`` + the player's ``/clock``, as with
``ros2 bag play --clock``), and the bag is recorded so that the trigger's comparisons keep a
margin even where a message's time is off by one clock step:
JointState at 10 Hz (the 0.25 s settle window is 2.5 periods, so it ends half-way between two
samples) and frames at 5 Hz half-way between two joint samples (50 ms either side), so every
Ta/Tb choice is the same whether times come from the bag or from the node's clock.

The same check on any bag (e.g. 200 simulated grasps from ``tgp bag record``)::

    TGP_LIVE_BAG=bags/grasps_mcap [TGP_LIVE_BUNDLE=bundle/] [TGP_LIVE_RATE=1] [TGP_LIVE_CLOCK_LEAD=0.03] \
        .venv/bin/python -m pytest test/test_bag_live.py -k offline
"""

from __future__ import annotations

import importlib.util
import os
import threading
import time
from pathlib import Path

import pytest

# Real-time DDS on a 2-core machine: a stall of a second (first torch use, a busy CI box)
# reads as gripper silence or a late frame. Rerun such a test before calling it failed;
# a deterministic bug still fails every run.
pytestmark = pytest.mark.flaky(reruns=2, reruns_delay=2)

needs_node = pytest.mark.skipif(
    importlib.util.find_spec("tactile_grasp_predictor.ros.predictor_node") is None,
    reason="the ROS node (tactile_grasp_predictor/ros/predictor_node.py) does not exist yet",
)

N = 5


@needs_node
def test_offline_and_live_replay_give_the_same_decisions(tmp_path: Path) -> None:
    import rclpy
    import torch
    from bundles import make_random_bundle
    from rclpy.executors import MultiThreadedExecutor
    from rclpy.node import Node
    from rclpy.parameter import Parameter
    from tactile_grasp_msgs.msg import GraspDecision

    from tactile_grasp_predictor.predictor import Predictor
    from tactile_grasp_predictor.replay.evaluate import evaluate_bag
    from tactile_grasp_predictor.ros.bag_player import BagPlayer
    from tactile_grasp_predictor.ros.predictor_node import PredictorNode
    from training.bag_record import RecordOptions, synthetic_recordings, write_bag

    torch.set_num_threads(1)
    n = N
    if os.environ.get("TGP_LIVE_BAG"):
        bag = Path(os.environ["TGP_LIVE_BAG"])
        n = len(evaluate_bag(bag, None).grasps)
    else:
        recs = synthetic_recordings(N, seed=1, no_part=0.25, fps=5.0, frame_phase_s=0.05)
        assert any(float(r.gripper_w.min()) == 0.0 for r in recs), "a no-part grasp must be among them"
        bag = tmp_path / "live"
        write_bag(bag, recs, RecordOptions(storage="mcap", joint_rate_hz=10.0, gap_s=0.6), progress=False)
    bundle = os.environ.get("TGP_LIVE_BUNDLE") or make_random_bundle(tmp_path / "bundle", size=32)
    predictor = Predictor.from_bundle(bundle)
    rate = float(os.environ.get("TGP_LIVE_RATE", "1.0"))
    lead = float(os.environ.get("TGP_LIVE_CLOCK_LEAD", "0.005"))

    context = rclpy.context.Context()
    rclpy.init(context=context)
    executor = MultiThreadedExecutor(num_threads=4, context=context)
    nodes: list[Node] = []
    received: list[GraspDecision] = []
    try:
        params = [
            Parameter("image_topic", value="/gelsight_left/image_raw"),
            Parameter("joint_states_topic", value="/wsg50/joint_states"),
            # the timing the margins above are designed for (the defaults, pinned)
            Parameter("trigger.settle_window_s", value=0.25),
            Parameter("trigger.tb_delay_s", value=0.1),
        ]
        node = PredictorNode(context=context, parameter_overrides=params, loader=lambda _cfg: predictor)
        sink = Node("decision_sink", context=context)
        sink.create_subscription(GraspDecision, "/predictor_node/decision", received.append, 10)
        player = BagPlayer(bag, context=context, clock=True, rate=rate, clock_lead_s=lead)
        nodes += [node, sink, player]
        for each in (node, sink):
            executor.add_node(each)
        spin = threading.Thread(target=executor.spin, daemon=True)
        spin.start()
        assert node.model_ready.wait(60)
        assert player.wait_for_subscribers(["/gelsight_left/image_raw", "/wsg50/joint_states"], 30.0)
        deadline = time.monotonic() + 30.0
        while sink.count_publishers("/predictor_node/decision") == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)  # let the decision subscription match both ways
        stats = player.play()
        assert stats.published > 0 and not stats.skipped_topics
        deadline = time.monotonic() + 30.0
        while len(received) < n and time.monotonic() < deadline:
            time.sleep(0.05)
        offline = evaluate_bag(bag, predictor, trigger=node.cfg.trigger)
        live_frames = node._gate.stats.frames  # frames the node's gate accepted
    finally:
        for each in reversed(nodes):
            each.destroy_node()
        executor.shutdown(timeout_sec=5.0)
        rclpy.shutdown(context=context)

    def stamp(t) -> float | None:
        return None if t.sec == 0 and t.nanosec == 0 else t.sec + t.nanosec * 1e-9

    assert len(offline.grasps) == n
    if bag.name == "live":  # the synthetic bag covers both a model decision and a no-part abort
        assert {g.decision.reason for g in offline.grasps} >= {"model", "no_part_found"}
    live = {m.grasp_id: m for m in received}
    dropped = offline.frames - live_frames  # the node's image subscription is best effort
    mismatches = []
    for g in offline.grasps:
        m, d = live.get(g.grasp_id), g.decision
        if m is None:
            mismatches.append(f"grasp {g.grasp_id}: no live decision")
            continue
        same = (m.verdict, m.reason) == (int(d.verdict), d.reason)
        for live_t, off_t in ((stamp(m.ta_stamp), d.ta_stamp), (stamp(m.tb_stamp), d.tb_stamp)):
            same &= live_t is None if off_t is None else live_t is not None and abs(live_t - off_t) < 1e-6
        if d.reason == "model":
            same &= abs(m.p_success - d.p_success) < 1e-5
        if not same:
            mismatches.append(
                f"grasp {g.grasp_id}: live {m.verdict}/{m.reason} "
                f"Ta {stamp(m.ta_stamp)} Tb {stamp(m.tb_stamp)} "
                f"p {m.p_success:.4f}; offline {int(d.verdict)}/{d.reason} Ta {d.ta_stamp} Tb {d.tb_stamp} "
                f"p {d.p_success:.4f}"
            )
    print(
        f"{bag.name}: {n} grasps, {n - len(mismatches)} identical live and offline; frames dropped live: "
        f"{dropped}; reasons {sorted({g.decision.reason for g in offline.grasps})}; "
        f"playback late by <= {stats.late_s_max:.3f} s"
    )
    assert not mismatches, f"{len(mismatches)} grasps differ ({dropped} frames dropped live):\n" + "\n".join(
        mismatches[:20]
    )
    assert len(live) == n, f"live decisions for grasps {sorted(live)}"


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
