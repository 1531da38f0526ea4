"""The foundation: interfaces over real DDS, package metadata, the colcon install layout."""

from __future__ import annotations

import math
import os
import shutil
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path

import pytest
import rclpy
from action_msgs.msg import GoalStatus
from rclpy.action import ActionClient, ActionServer, CancelResponse
from rclpy.executors import MultiThreadedExecutor, SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import QoSDurabilityPolicy, QoSProfile, QoSReliabilityPolicy
from tactile_grasp_msgs.action import EvaluateGrasp
from tactile_grasp_msgs.msg import GraspDecision

from helpers.package import console_scripts
from helpers.waiting import spin_until

ROOT = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent


def make_decision(grasp_id: int) -> GraspDecision:
    msg = GraspDecision()
    msg.header.frame_id = "gelsight_left"
    msg.header.stamp.sec = 1_700_000_000
    msg.grasp_id = grasp_id
    msg.verdict = GraspDecision.LIFT
    msg.p_success = 0.875
    msg.threshold = 0.5
    msg.ta_stamp.sec, msg.ta_stamp.nanosec = 12, 345
    msg.tb_stamp.sec, msg.tb_stamp.nanosec = 14, 678
    msg.latency_ms = 7.25
    msg.reason = "model"
    msg.model_id = "moco-r18-test"
    return msg


def test_grasp_decision_constants_and_defaults() -> None:
    assert (GraspDecision.ABORT, GraspDecision.LIFT) == (0, 1)
    msg = GraspDecision()
    assert msg.verdict == GraspDecision.ABORT  # the default verdict is the safe one
    msg.p_success = float("nan")  # "no model ran" must be representable
    assert math.isnan(msg.p_success)


def test_grasp_decision_over_dds(ros_context: rclpy.context.Context) -> None:
    qos = QoSProfile(depth=10, reliability=QoSReliabilityPolicy.RELIABLE,
                     durability=QoSDurabilityPolicy.VOLATILE)
    pub_node = Node("decision_pub", context=ros_context)
    sub_node = Node("decision_sub", context=ros_context)
    received: list[GraspDecision] = []
    pub = pub_node.create_publisher(GraspDecision, "decision", qos)
    sub_node.create_subscription(GraspDecision, "decision", received.append, qos)
    executor = SingleThreadedExecutor(context=ros_context)
    executor.add_node(pub_node)
    executor.add_node(sub_node)
    try:
        assert spin_until(executor, lambda: pub.get_subscription_count() > 0), "no DDS match"
        sent = [make_decision(i) for i in range(3)]
        for msg in sent:
            pub.publish(msg)
        assert spin_until(executor, lambda: len(received) == len(sent))
        assert received == sent  # every field survives the DDS round trip
    finally:
        executor.shutdown()
        pub_node.destroy_node()
        sub_node.destroy_node()


class _GraspActionServer(Node):
    """A minimal EvaluateGrasp server: feedback through the phases, then a LIFT result."""

    def __init__(self, context: rclpy.context.Context) -> None:
        super().__init__("evaluate_grasp_server", context=context)
        self.release = threading.Event()
        self.client_has_goal = threading.Event()
        self._server = ActionServer(
            self, EvaluateGrasp, "evaluate_grasp", self._execute,
            cancel_callback=lambda _goal: CancelResponse.ACCEPT,
        )

    def _execute(self, goal_handle):  # type: ignore[no-untyped-def]
        result = EvaluateGrasp.Result()
        deadline = time.monotonic() + goal_handle.request.timeout_s
        # Feedback only once the client has seen the goal accepted: clients drop (Kilted:
        # content-filter) feedback of goals they do not know yet.
        if self.client_has_goal.wait(goal_handle.request.timeout_s):
            for phase in ("waiting", "closing", "settling", "predicting"):
                feedback = EvaluateGrasp.Feedback()
                feedback.phase = phase
                goal_handle.publish_feedback(feedback)
        while not self.release.wait(0.01):
            if goal_handle.is_cancel_requested:
                goal_handle.canceled()
                result.decision.reason = "cancelled"
                return result
            if time.monotonic() > deadline:
                break
        result.decision = make_decision(7)
        goal_handle.succeed()
        return result


def test_evaluate_grasp_action_round_trip_and_cancel(ros_context: rclpy.context.Context) -> None:
    server = _GraspActionServer(ros_context)
    client_node = Node("evaluate_grasp_client", context=ros_context)
    client = ActionClient(client_node, EvaluateGrasp, "evaluate_grasp")
    executor = MultiThreadedExecutor(num_threads=3, context=ros_context)
    executor.add_node(server)
    executor.add_node(client_node)
    try:
        assert spin_until(executor, client.server_is_ready), "action server not discovered"

        # Goal → feedback by phase → result.
        phases: list[str] = []
        goal = EvaluateGrasp.Goal(timeout_s=5.0)
        send = client.send_goal_async(goal, feedback_callback=lambda fb: phases.append(fb.feedback.phase))
        assert spin_until(executor, send.done)
        handle = send.result()
        assert handle.accepted
        server.client_has_goal.set()
        assert spin_until(executor, lambda: len(phases) == 4)
        assert phases == ["waiting", "closing", "settling", "predicting"]
        server.release.set()
        result_future = handle.get_result_async()
        assert spin_until(executor, result_future.done)
        assert result_future.result().status == GoalStatus.STATUS_SUCCEEDED
        assert result_future.result().result.decision == make_decision(7)

        # A second goal, cancelled while it waits.
        server.release.clear()
        send = client.send_goal_async(EvaluateGrasp.Goal(timeout_s=30.0))
        assert spin_until(executor, send.done)
        handle = send.result()
        cancel = handle.cancel_goal_async()
        assert spin_until(executor, cancel.done)
        result_future = handle.get_result_async()
        assert spin_until(executor, result_future.done)
        assert result_future.result().status == GoalStatus.STATUS_CANCELED
        assert result_future.result().result.decision.reason == "cancelled"
    finally:
        server.release.set()
        executor.shutdown()
        client.destroy()
        server.destroy_node()
        client_node.destroy_node()


@pytest.mark.parametrize("package_xml", ["package.xml", "ros2_ws/src/tactile_grasp_msgs/package.xml"])
def test_package_xml_is_valid(package_xml: str) -> None:
    from catkin_pkg.package import parse_package

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        package = parse_package(ROOT / package_xml, warnings=(collected := []))
    assert collected == [], collected
    assert [str(w.message) for w in caught if "catkin" in str(w.filename)] == []
    assert package.package_format == 3
    assert [str(lic) for lic in package.licenses] == ["Apache-2.0"]
    package.validate()  # raises on an invalid maintainer e-mail, name, version ...
    build_type = package.get_build_type()
    assert build_type == ("ament_python" if package_xml == "package.xml" else "ament_cmake")


@pytest.mark.slow
def test_colcon_workspace_build_installs_where_ros_looks(tmp_path: Path) -> None:
    """`colcon build` of ros2_ws (as a ROS user runs it) puts executables in lib/<pkg>."""
    if shutil.which("colcon", path=str(VENV_BIN)) is None:
        pytest.skip("colcon is not installed in this interpreter's environment (run make setup)")
    # What `source /opt/ros/<distro>/setup.bash` provides on a ROS install: the underlay.
    env = dict(os.environ, PATH=f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
               AMENT_PREFIX_PATH=sys.prefix, CMAKE_PREFIX_PATH=sys.prefix)
    cmd = [str(VENV_BIN / "colcon"), "--log-base", str(tmp_path / "log"), "build",
           "--base-paths", str(ROOT / "ros2_ws" / "src"),
           "--build-base", str(tmp_path / "build"), "--install-base", str(tmp_path / "install"),
           "--event-handlers", "console_direct-"]
    proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    prefix = tmp_path / "install" / "tactile_grasp_predictor"
    for script in console_scripts():
        assert (prefix / "lib" / "tactile_grasp_predictor" / script).is_file(), script
    share = prefix / "share" / "tactile_grasp_predictor"
    assert (share / "package.xml").is_file()
    index = prefix / "share" / "ament_index" / "resource_index" / "packages"
    assert (index / "tactile_grasp_predictor").is_file()
    for launch_file in (ROOT / "launch").glob("*.launch.py"):
        assert (share / "launch" / launch_file.name).is_file(), launch_file.name
    for config_file in (ROOT / "config").glob("*.yaml"):
        assert (share / "config" / config_file.name).is_file(), config_file.name
    msgs = tmp_path / "install" / "tactile_grasp_msgs"
    assert list(msgs.rglob("GraspDecision.msg")) and list(msgs.rglob("EvaluateGrasp.action"))
    assert list(msgs.rglob("_grasp_decision.py")), "Python bindings were not generated"


def test_tgp_entry_point_runs() -> None:
    tgp = VENV_BIN / "tgp"
    if not tgp.exists():
        pytest.skip("tgp is not installed in this interpreter's environment (run make setup)")
    proc = subprocess.run([str(tgp), "--help"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "doctor" in proc.stdout and "simulate" in proc.stdout
    proc = subprocess.run([str(tgp), "doctor"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "tactile_grasp_msgs     ok" in proc.stdout
    proc = subprocess.run([str(tgp), "no-such-command"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "invalid choice" in proc.stderr
