"""The ROS rig for the node tests (real rclpy, real DDS on loopback).

``Rig`` spins the nodes under test in a SingleThreadedExecutor on a background thread, as
``spin_node_main`` does in production. (A MultiThreadedExecutor rebuilds its wait set in
Python after every callback it hands out; with 30 Hz frames and 50 Hz JointStates that loop
held the GIL enough to starve the publishing test thread for 0.3–1.3 s at a time in full-suite
runs, which read as gripper silence or a settled gripper.) A
``Driver`` node publishes what a WSG-50 + GelSight driver pair publishes (reliable, depth
10) and records the decisions and diagnostics it receives. Every wait has a generous
deadline; nothing asserts on timing. The rig uses only the node's public behaviour: its
topics, parameters, ``PredictorNode(..., loader=...)`` and ``model_ready``.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import rclpy
from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticArray
from lifecycle_msgs.msg import Transition
from lifecycle_msgs.srv import ChangeState, GetState
from rcl_interfaces.msg import Log
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import QoSDurabilityPolicy, QoSHistoryPolicy, QoSProfile, QoSReliabilityPolicy
from sensor_msgs.msg import CompressedImage, Image, JointState
from tactile_grasp_msgs.msg import GraspDecision

from helpers.streams import OPEN
from helpers.waiting import wait_for
from tactile_grasp_predictor.ros.conversions import finger_joint_state, rgb_to_compressed, rgb_to_image
from tactile_grasp_predictor.ros.predictor_node import PredictorNode
from tactile_grasp_predictor.ros.sim_robot_node import DRIVER_QOS, FINGER_JOINTS

HELD = 0.04  # finger opening on the part, metres
IMAGE_TOPIC = "/gelsight_left/image_raw"  # the node's defaults, resolved in the root namespace
RIGHT_TOPIC = "/gelsight_right/image_raw"
JOINT_TOPIC = "/wsg50/joint_states"



class BrightnessPredictor:
    """A deterministic predictor for exact expectations: p = mean(Tb) / 255."""

    model_id = "brightness-test"
    threshold = 0.5

    def __init__(self) -> None:
        self.calls = 0

    def predict(self, ta: np.ndarray, tb: np.ndarray) -> float:
        assert ta.shape == tb.shape and ta.dtype == np.uint8
        self.calls += 1
        return float(tb.mean() / 255.0)


def stamp(k: int) -> Time:
    """A recognisable header stamp for frame ``k``."""
    return Time(sec=1000 + k, nanosec=0)


class Driver(Node):
    """Publishes like the drivers; records decisions and diagnostics.

    ``namespace`` prefixes the topics (a robot's arm); ``compressed`` also publishes each frame as
    a PNG ``CompressedImage`` on ``<image topic>/compressed`` (image_transport's name); ``right``
    also publishes it on the right GelSight's topic.
    """

    def __init__(self, context: rclpy.context.Context, decision_topic: str | None = None, *,
                 namespace: str = "", image_topic: str = IMAGE_TOPIC, joint_topic: str = JOINT_TOPIC,
                 compressed: bool = False, right: bool = False, name: str = "test_driver") -> None:
        super().__init__(name, context=context)
        self.images = self.create_publisher(Image, namespace + image_topic, DRIVER_QOS)
        self.compressed = (self.create_publisher(CompressedImage, namespace + image_topic + "/compressed",
                                                 DRIVER_QOS) if compressed else None)
        self.right = self.create_publisher(Image, namespace + RIGHT_TOPIC, DRIVER_QOS) if right else None
        self.joints = self.create_publisher(JointState, namespace + joint_topic, DRIVER_QOS)
        self.decisions: list[GraspDecision] = []
        self.diagnostics: list[DiagnosticArray] = []
        self.effort: float | None = None  # the fingers' JointState effort (the driver's unit), if sent
        self.create_subscription(GraspDecision, decision_topic or f"{namespace}/predictor_node/decision",
                                 self.decisions.append, 10)
        self.create_subscription(DiagnosticArray, "/diagnostics", self._diag, 10)

    def _diag(self, msg: DiagnosticArray) -> None:
        """Keep the last five diagnostics."""
        self.diagnostics.append(msg)
        del self.diagnostics[:-5]

    def frame(self, k: int, value: int = 120, encoding: str = "rgb8", bad: bool = False,
              hw: tuple[int, int] = (48, 64)) -> None:
        """Publish frame ``k``: uniform ``value``, stamped :func:`stamp` (k); ``bad``: truncated data."""
        rgb = np.full((*hw, 3), value, np.uint8)
        rgb[0, 0] = (k % 256, 0, 0)
        msg = rgb_to_image(rgb, encoding, stamp(k), "gelsight_left")
        if bad:
            msg.data = bytes(msg.data)[:-7]  # truncated: data length disagrees with step x height
        self.images.publish(msg)
        if self.compressed is not None:
            packed = rgb_to_compressed(rgb, "png", stamp(k), "gelsight_left")
            if bad:
                packed.data = bytes(packed.data)[:-7]
            self.compressed.publish(packed)
        if self.right is not None:
            self.right.publish(rgb_to_image(255 - rgb, encoding, stamp(k), "gelsight_right"))

    def joint(self, width: float) -> None:
        """Publish a finger JointState: opening ``width`` (m), an empty stamp, :attr:`effort` if set."""
        msg = finger_joint_state(width, Time(), FINGER_JOINTS)
        if self.effort is not None:
            msg.effort = [-self.effort / 2, self.effort / 2]
        self.joints.publish(msg)

    def matched(self) -> bool:
        """Tell whether a node subscribes to the frames (raw or compressed) and the joint states."""
        images = self.images.get_subscription_count() > 0 or (
            self.compressed is not None and self.compressed.get_subscription_count() > 0)
        return images and self.joints.get_subscription_count() > 0

    def last_diag(self, status: str = "grasp gate") -> dict[str, str]:
        """The newest diagnostic status named ``<node>: <status>`` as a flat dict (level, message, values)."""
        for array in reversed(self.diagnostics):
            for st in array.status:
                if st.name.endswith(f": {status}"):
                    return {"level": str(st.level[0] if isinstance(st.level, bytes) else st.level),
                            "message": st.message, **{kv.key: kv.value for kv in st.values}}
        return {}


class RosoutLog(Node):
    """Collects the log messages every node of the domain publishes on ``/rosout`` (with history)."""

    def __init__(self, context: rclpy.context.Context) -> None:
        super().__init__("test_rosout", context=context)
        self.lines: list[tuple[int, str, str]] = []  # (level, logger name, message)
        qos = QoSProfile(depth=1000, reliability=QoSReliabilityPolicy.RELIABLE,
                         durability=QoSDurabilityPolicy.TRANSIENT_LOCAL, history=QoSHistoryPolicy.KEEP_LAST)
        self.create_subscription(Log, "/rosout", self._on_log, qos)

    def _on_log(self, m: Log) -> None:
        self.lines.append((int(m.level), m.name, m.msg))  # uint8: an int in rclpy

    def find(self, level: int, *needles: str) -> list[str]:
        """Return the messages of ``level`` (``Log.WARN``, ``Log.ERROR``, …) containing every needle."""
        return [m for lv, _name, m in list(self.lines) if lv == level and all(n in m for n in needles)]


class LifecycleClient(Node):
    """Drives a lifecycle node over its services, as ``ros2 lifecycle set`` does."""

    def __init__(self, context: rclpy.context.Context, target: str) -> None:
        super().__init__("test_lifecycle_client", context=context)
        self._change = self.create_client(ChangeState, f"{target}/change_state")
        self._get = self.create_client(GetState, f"{target}/get_state")

    def _call(self, client: Any, request: Any) -> Any:
        assert wait_for(client.service_is_ready), f"{client.srv_name}: no service"
        future = client.call_async(request)
        assert wait_for(future.done), f"{client.srv_name}: no answer"
        return future.result()

    def change(self, label: str) -> bool:
        """Trigger the transition ``label`` (configure, activate, deactivate, cleanup); return success."""
        return bool(self._call(self._change, ChangeState.Request(transition=Transition(label=label))).success)

    def state(self) -> str:
        """Return the node's state label (unconfigured, inactive, active, ...)."""
        return str(self._call(self._get, GetState.Request()).current_state.label)


class Rig:
    """Nodes spinning in the background; the test thread publishes and waits."""

    def __init__(self, context: rclpy.context.Context) -> None:
        self.context = context
        self.executor = SingleThreadedExecutor(context=context)
        self.nodes: list[Node] = []
        self._thread: threading.Thread | None = None

    def add(self, node: Node) -> Node:
        """Spin ``node`` in this rig (destroyed by :meth:`close`)."""
        self.nodes.append(node)
        self.executor.add_node(node)
        return node

    def start(self) -> None:
        """Start spinning on a daemon thread."""
        self._thread = threading.Thread(target=self.executor.spin, daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop spinning and destroy the nodes, newest first."""
        self.executor.shutdown(timeout_sec=5.0)
        if self._thread is not None:
            self._thread.join(10.0)
        for node in reversed(self.nodes):
            node.destroy_node()


def connected(driver: Driver, timeout_s: float = 30.0) -> None:
    """Assert that DDS matched the driver's image and joint publishers to a subscriber."""
    assert wait_for(driver.matched, timeout_s), "no DDS match"


@dataclass
class GraspScript:
    """A scripted grasp in real time: the frames used as Ta / Tb are known by their stamps."""

    k0: int  # first frame number; Ta is frame k0 + n_before - 1, Tb frame k0 + n_before
    n_before: int = 6
    tb_value: int = 200  # Tb brightness: p = value / 255 with BrightnessPredictor
    close_to: float = HELD
    frames_before: bool = True
    frames_after: bool = True
    bad_after: bool = False  # frames after the onset are malformed
    joints_after_onset: bool = True  # False: the gripper goes silent once closing
    never_settle: bool = False  # keep closing slowly (no Tb)
    hold_s: float = 0.6  # held, no frames, before the Tb frame (> settle window + Tb delay)
    frames_during: bool = False  # also publish frames while closing and holding (Tb is then not exact)

    @property
    def ta_k(self) -> int:
        """The frame number the node must use as Ta."""
        return self.k0 + self.n_before - 1

    @property
    def tb_k(self) -> int:
        """The frame number the node must use as Tb."""
        return self.k0 + self.n_before


def run_grasp(d: Driver, g: GraspScript, after_s: float = 0.3) -> None:
    """Open with frames → pause → close → hold (no frames) → Tb frames → open again."""
    period = 1.0 / 30.0
    for i in range(g.n_before):  # open, frames at 30 Hz with a joint state each
        if g.frames_before:
            d.frame(g.k0 + i, value=100)
        d.joint(OPEN)
        time.sleep(period)
    for _ in range(5):  # still open, no frames: Ta is strictly before the onset
        d.joint(OPEN)
        time.sleep(0.02)
    if not g.joints_after_onset:
        d.joint(OPEN - 0.01)  # closing starts, then silence
        d.joint(g.close_to)
        time.sleep(0.3)
        if g.frames_after:
            for i in range(40):
                d.frame(g.tb_k + i, value=g.tb_value, bad=g.bad_after)
                time.sleep(0.05)
        _reopen(d, g.close_to)  # the gripper speaks again, opening: the gate re-arms
        return
    if g.never_settle:
        w = OPEN
        t_end = time.monotonic() + 3.0
        i = 0
        while time.monotonic() < t_end:
            w -= 0.0004
            d.joint(w)
            if g.frames_after and i % 2 == 0:
                d.frame(g.tb_k + i, value=g.tb_value, bad=g.bad_after)
            i += 1
            time.sleep(0.02)
        _reopen(d, w)
        return
    n = 0
    for w in np.linspace(OPEN, g.close_to, 10)[1:]:  # close over ~0.2 s
        d.joint(float(w))
        n += 1
        if g.frames_during and n % 2 == 0:
            d.frame(900 + n, value=g.tb_value, bad=g.bad_after)
        time.sleep(0.02)
    t_end = time.monotonic() + g.hold_s
    while time.monotonic() < t_end:  # settle (no frames unless frames_during)
        d.joint(g.close_to)
        n += 1
        if g.frames_during and n % 2 == 0:
            d.frame(900 + n, value=g.tb_value, bad=g.bad_after)
        time.sleep(0.02)
    for i in range(8):  # Tb and a few more
        if g.frames_after:
            d.frame(g.tb_k + i, value=g.tb_value, bad=g.bad_after)
        d.joint(g.close_to)
        time.sleep(period)
    t_end = time.monotonic() + after_s
    while time.monotonic() < t_end:
        d.joint(g.close_to)
        time.sleep(0.02)
    _reopen(d, g.close_to)


def _reopen(d: Driver, w_from: float) -> None:
    """Open from ``w_from`` over ~0.16 s, then stay open for ~0.1 s."""
    for w in np.linspace(w_from, OPEN, 8):
        d.joint(float(w))
        time.sleep(0.02)
    for _ in range(5):
        d.joint(OPEN)
        time.sleep(0.02)


def overrides(**values: object) -> list[Parameter]:
    """Node parameter overrides; ``__`` in a name stands for ``.`` (``trigger__tb_timeout_s``)."""
    return [Parameter(k.replace("__", "."), value=v) for k, v in values.items()]


def start_predictor(context: rclpy.context.Context, predictor: object | None = None,
                    driver: Driver | None = None, **params: object) -> tuple[Rig, PredictorNode, Driver]:
    """A spinning rig with ``predictor_node`` (``predictor`` instead of a bundle, if given) and a Driver.

    Returns once DDS has matched the driver's publishers and the model is ready; ``params``
    are node parameters (``trigger__tb_timeout_s`` for ``trigger.tb_timeout_s``). The default
    scripted :class:`Driver` stamps frames 1000 + k s (labels, not capture times), so the node then
    times messages by receive time unless ``time_base`` is given.
    """
    rig = Rig(context)
    kwargs = {"loader": (lambda _cfg: predictor)} if predictor is not None else {}
    params.setdefault("time_base", "receive" if driver is None else "header")
    try:
        node = rig.add(PredictorNode(context=context, parameter_overrides=overrides(**params), **kwargs))
        driver = rig.add(driver or Driver(context))
        rig.start()
        connected(driver)
        assert node.model_ready.wait(60), "the predictor never became ready"
    except BaseException:
        rig.close()
        raise
    return rig, node, driver
