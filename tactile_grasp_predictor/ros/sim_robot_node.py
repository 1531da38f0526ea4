"""``sim_robot_node``: a simulated WSG-50 + GelSight driver pair replaying simulated grasp trials.

For each trial it publishes what real drivers publish: the gripper as
``sensor_msgs/JointState`` (``wsg50_finger_left_joint`` / ``wsg50_finger_right_joint`` at
∓width/2 m) and the GelSight-L (optionally -R) frame stream as ``sensor_msgs/Image``
(reliable QoS, depth 10, optionally with empty stamps, as community GelSight wrappers do),
at the trial's own timing scaled by ``rate``. After the lift it publishes the trial's true
outcome on ``~/outcome`` (``std_msgs/Bool``).

Closed loop (``closed_loop: true``): before the lift it holds the grasp and waits for the
predictor's ``GraspDecision``; on LIFT it lifts (plays the rest of the trial), on ABORT it
releases (opens the gripper). Either way the simulator then reports the outcome the lift
has (or would have had), so a demo can score every decision.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import rclpy
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import QoSDurabilityPolicy, QoSHistoryPolicy, QoSProfile, QoSReliabilityPolicy
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import Bool
from tactile_grasp_msgs.msg import GraspDecision

from tactile_grasp_predictor.data.trial_streams import TrialStreams, load_trial_streams
from tactile_grasp_predictor.errors import TgpError
from tactile_grasp_predictor.node_config import ParamSpec, check_all
from tactile_grasp_predictor.ros.conversions import finger_joint_state, rgb_to_image
from tactile_grasp_predictor.ros.params import declare_all
from tactile_grasp_predictor.ros.spin import spin_node_main

FINGER_JOINTS = ("wsg50_finger_left_joint", "wsg50_finger_right_joint")

#: What real drivers use: reliable, keep last 10.
DRIVER_QOS = QoSProfile(depth=10, reliability=QoSReliabilityPolicy.RELIABLE,
                        durability=QoSDurabilityPolicy.VOLATILE, history=QoSHistoryPolicy.KEEP_LAST)

PARAMETERS: tuple[ParamSpec, ...] = (
    ParamSpec("shards", "", "simulated shard files or directories to replay, comma-separated "
              "(tgp simulate --streams)", read_only=True),
    ParamSpec("max_trials", 0, "replay at most this many trials (0: all)", lo=0, hi=10_000_000,
              read_only=True),
    ParamSpec("loop", False, "start again after the last trial", read_only=True),
    ParamSpec("rate", 1.0, "playback speed factor (1 = real time)", lo=0.01, hi=100.0, read_only=True),
    ParamSpec("start_delay_s", 1.0, "wait before the first trial (lets subscribers connect)", lo=0.0,
              hi=600.0, read_only=True),
    ParamSpec("gap_s", 0.5, "open, idle gripper between trials (trial time)", lo=0.0, hi=60.0,
              read_only=True),
    ParamSpec("camera_rate_hz", 30.0, "frame rate of streams made from key images, and while holding",
              lo=1.0, hi=1000.0, read_only=True),
    ParamSpec("gripper_rate_hz", 50.0, "JointState rate while holding and opening", lo=1.0, hi=1000.0,
              read_only=True),
    ParamSpec("image_topic", "gelsight_left/image_raw", "GelSight-L image topic (predictor_node's default)",
              read_only=True),
    ParamSpec("right_image_topic", "", "GelSight-R image topic (empty: not published), e.g. "
              "gelsight_right/image_raw", read_only=True),
    ParamSpec("image_encoding", "rgb8", "encoding of published frames", choices=("rgb8", "bgr8", "8UC3"),
              read_only=True),
    ParamSpec("frame_id", "gelsight_left", "frame_id of GelSight-L images", read_only=True),
    ParamSpec("empty_stamps", False, "publish images with empty header stamps (like many GelSight wrappers)",
              read_only=True),
    ParamSpec("joint_states_topic", "wsg50/joint_states",
              "gripper JointState topic (predictor_node's default)", read_only=True),
    ParamSpec("outcome_topic", "~/outcome", "std_msgs/Bool: the trial's true outcome after the lift",
              read_only=True),
    ParamSpec("closed_loop", False, "wait for the predictor's decision before lifting", read_only=True),
    ParamSpec("decision_topic", "predictor_node/decision", "GraspDecision topic (closed loop)",
              read_only=True),
    ParamSpec("decision_timeout_s", 10.0, "closed loop: release if no decision within this (wall) time",
              lo=0.1, hi=3600.0, read_only=True),
    ParamSpec("after_lift_s", -1.0, "trial time played after the lift (< 0: the whole trial)", lo=-1.0,
              hi=600.0, read_only=True),
)


@dataclass
class TrialResult:
    """What happened to one replayed trial."""

    index: int
    source: str
    label: bool | None
    decision: GraspDecision | None  # the predictor's decision (closed loop), None if none came
    lifted: bool
    t_start: float  # wall clock (monotonic) at the trial start
    wall_s: float


@dataclass
class _Event:
    t: float  # trial time
    kind: str  # "joint" | "frame"
    index: int = 0
    width: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)


def _events(tr: TrialStreams, t0: float, t1: float, include_end: bool = False) -> list[_Event]:
    """Joint and frame events with ``t0 <= t < t1`` (``<= t1`` if ``include_end``), time ordered."""
    def inside(t: float) -> bool:
        return t0 <= t < t1 or (include_end and t == t1)

    ev = [_Event(float(t), "joint", width=float(w))
          for t, w in zip(tr.gripper_t, tr.reported_width, strict=True) if inside(float(t))]
    ev += [_Event(float(t), "frame", index=i) for i, t in enumerate(tr.frame_t) if inside(float(t))]
    ev.sort(key=lambda e: (e.t, e.kind != "joint"))
    return ev


class SimRobotNode(Node):
    """Replays :class:`TrialStreams` trials as WSG-50 + GelSight drivers (see the module docstring)."""

    def __init__(
        self,
        node_name: str = "sim_robot_node",
        *,
        trials: Iterable[TrialStreams] | None = None,
        on_result: Callable[[TrialResult], None] | None = None,
        autostart: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(node_name, **kwargs)
        self.values = declare_all(self, PARAMETERS)
        problem = check_all(PARAMETERS, self.values)
        if problem:
            raise TgpError(problem)
        v = self.values
        self._trials = trials
        self._on_result = on_result
        self.results: list[TrialResult] = []
        self.done = threading.Event()
        self._stop = threading.Event()
        self._decision_lock = threading.Lock()
        self._decisions: deque[tuple[int, GraspDecision]] = deque(maxlen=64)  # (sequence number, msg)
        self._n_decisions = 0
        self._clock_lock = threading.Lock()
        self._last_frame: tuple[np.ndarray, np.ndarray | None] | None = None
        self._width = 0.0

        self._img_pub = self.create_publisher(Image, v["image_topic"], DRIVER_QOS)
        self._img_r_pub = (self.create_publisher(Image, v["right_image_topic"], DRIVER_QOS)
                           if v["right_image_topic"] else None)
        self._joint_pub = self.create_publisher(JointState, v["joint_states_topic"], DRIVER_QOS)
        self._outcome_pub = self.create_publisher(Bool, v["outcome_topic"], DRIVER_QOS)
        if v["closed_loop"]:
            self.create_subscription(GraspDecision, v["decision_topic"], self._on_decision,
                                     QoSProfile(depth=10, reliability=QoSReliabilityPolicy.RELIABLE),
                                     callback_group=MutuallyExclusiveCallbackGroup())
        self._thread = threading.Thread(target=self._play_all, name="sim-robot", daemon=True)
        if autostart:
            self.start()

    def start(self) -> None:
        """Start the playback thread."""
        if not self._thread.is_alive() and not self.done.is_set():
            self._thread.start()

    # ---------------------------------------------------------------- decisions
    def _on_decision(self, msg: GraspDecision) -> None:
        with self._decision_lock:
            self._n_decisions += 1
            self._decisions.append((self._n_decisions, msg))

    def _decision_count(self) -> int:
        with self._decision_lock:
            return self._n_decisions

    def _first_decision_after(self, seen: int) -> GraspDecision | None:
        with self._decision_lock:
            return next((m for n, m in self._decisions if n > seen), None)

    # ---------------------------------------------------------------- publishing
    def _now_s(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def _time(self, t_s: float | None) -> Any:
        """Return a stamp at ``t_s`` (ROS seconds; None: now)."""
        return rclpy.time.Time(nanoseconds=round((self._now_s() if t_s is None else t_s) * 1e9)).to_msg()

    def _stamp(self, t_s: float | None = None) -> Any:
        if self.values["empty_stamps"]:
            return rclpy.time.Time().to_msg()
        return self._time(t_s)

    def _publish_joint(self, width: float, t_s: float | None = None) -> None:
        self._width = width
        self._joint_pub.publish(finger_joint_state(width, self._time(t_s), FINGER_JOINTS))

    def _publish_frame(self, left: np.ndarray, right: np.ndarray | None, t_s: float | None = None) -> None:
        """Publish a frame stamped ``t_s`` (its capture time on the trial's clock; None: now)."""
        self._last_frame = (left, right)
        stamp = self._stamp(t_s)
        enc = self.values["image_encoding"]
        self._img_pub.publish(rgb_to_image(left, enc, stamp, self.values["frame_id"]))
        if self._img_r_pub is not None and right is not None:
            self._img_r_pub.publish(rgb_to_image(right, enc, stamp, "gelsight_right"))

    def _play(self, tr: TrialStreams, events: list[_Event], t_origin: float, wall_origin: float) -> bool:
        """Publish ``events`` at ``wall_origin + (t - t_origin) / rate``; False if stopped.

        Each message is stamped with its time on the trial's clock (scaled by ``rate``), not with
        the moment it left: a late publish on a busy machine keeps its capture time, so the node
        picks the same Ta/Tb on every run, and offline from the same streams (``tgp harvest``).
        """
        rate = float(self.values["rate"])
        ros_origin = self._now_s() + (wall_origin - time.monotonic())  # ROS time at wall_origin
        for e in events:
            delay = wall_origin + (e.t - t_origin) / rate - time.monotonic()
            if delay > 0 and self._stop.wait(delay):
                return False
            if self._stop.is_set():
                return False
            t_s = ros_origin + (e.t - t_origin) / rate
            if e.kind == "joint":
                self._publish_joint(e.width, t_s)
            else:
                right = tr.frames_right[e.index] if tr.frames_right is not None else None
                self._publish_frame(tr.frames_left[e.index], right, t_s)
        return not self._stop.is_set()

    def _hold(self, duration_s: float, width_to: float | None = None, until: Callable[[], bool] | None = None
              ) -> bool:
        """Keep publishing the last frame and a (possibly opening) width for ``duration_s`` wall time.

        Returns True when ``until()`` became true, False on timeout or stop.
        """
        v = self.values
        rate = float(v["rate"])
        period_j = 1.0 / (float(v["gripper_rate_hz"]) * rate)
        period_f = 1.0 / (float(v["camera_rate_hz"]) * rate)
        start, w0 = time.monotonic(), self._width
        ros_start = self._now_s()  # messages stamped at their scheduled times (see _play)
        next_j = next_f = start
        while not self._stop.is_set():
            now = time.monotonic()
            if until is not None and until():
                return True
            if now - start >= duration_s:
                return False
            if now >= next_j:
                frac = min(1.0, (next_j - start) / duration_s) if duration_s > 0 else 1.0
                self._publish_joint(w0 + (width_to - w0) * frac if width_to is not None else w0,
                                    ros_start + (next_j - start))
                next_j += period_j
            if now >= next_f and self._last_frame is not None:
                self._publish_frame(*self._last_frame, ros_start + (next_f - start))
                next_f += period_f
            self._stop.wait(max(0.0, min(next_j, next_f) - time.monotonic()))
        return False

    # ---------------------------------------------------------------- the trial loop
    def _trial_source(self) -> Iterator[TrialStreams]:
        v = self.values
        while True:
            if self._trials is not None:
                yield from self._trials
            else:
                shards = [s.strip() for s in str(v["shards"]).split(",") if s.strip()]
                yield from load_trial_streams(shards, int(v["max_trials"]) or None,
                                              right=bool(v["right_image_topic"]),
                                              camera_rate_hz=float(v["camera_rate_hz"]))
            if not v["loop"]:
                return

    def _play_all(self) -> None:
        v = self.values
        try:
            if self._stop.wait(float(v["start_delay_s"])):
                return
            for i, tr in enumerate(self._trial_source()):
                if self._stop.is_set() or (v["max_trials"] and i >= int(v["max_trials"])):
                    break
                result = self._play_trial(i, tr)
                if result is None:
                    break
                self.results.append(result)
                if self._on_result is not None:
                    self._on_result(result)
        except TgpError as exc:
            self.get_logger().error(str(exc))
        finally:
            self.done.set()

    def _play_trial(self, index: int, tr: TrialStreams) -> TrialResult | None:
        v = self.values
        rate = float(v["rate"])
        wall0 = time.monotonic()
        t0 = float(min(tr.gripper_t[0], tr.frame_t[0]))
        # Open and idle before the grasp, showing the trial's first frame.
        right0 = tr.frames_right[0] if tr.frames_right is not None else None
        self._last_frame = (tr.frames_left[0], right0)
        self._width = tr.open_width
        if not self._hold(float(v["gap_s"]) / rate) and self._stop.is_set():
            return None
        seen = self._decision_count()
        origin = time.monotonic()
        if not self._play(tr, _events(tr, t0, tr.t_lift), t0, origin):
            return None
        decision: GraspDecision | None = None
        lifted = True
        if v["closed_loop"]:
            self._hold(float(v["decision_timeout_s"]), until=lambda: self._decision_count() > seen)
            if self._stop.is_set():
                return None
            decision = self._first_decision_after(seen)
            lifted = decision is not None and decision.verdict == GraspDecision.LIFT
        if lifted:
            after = float(v["after_lift_s"])
            t1 = tr.t_end if after < 0 else min(tr.t_end, tr.t_lift + after)
            if not self._play(tr, _events(tr, tr.t_lift, t1, include_end=True), tr.t_lift, time.monotonic()):
                return None
        if tr.label is not None:
            self._outcome_pub.publish(Bool(data=bool(tr.label)))
        # Release: open the gripper back to its start width.
        self._hold(0.3 / rate, width_to=tr.open_width)
        return TrialResult(index, tr.source, tr.label, decision, lifted, wall0, time.monotonic() - wall0)

    def destroy_node(self) -> None:
        """Stop the playback thread, then destroy the node."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(5.0)
        super().destroy_node()


def spin_until_done(node: SimRobotNode) -> int:
    """Spin the robot until it has replayed every trial (or rclpy shuts down); exit code 0."""
    executor = SingleThreadedExecutor()  # the callbacks never block; the replay has its own thread
    executor.add_node(node)
    while rclpy.ok() and not node.done.is_set():
        executor.spin_once(timeout_sec=0.1)
    node.get_logger().info(f"replayed {len(node.results)} trials")
    return 0


def main(args: Sequence[str] | None = None) -> int:
    """``ros2 run tactile_grasp_predictor sim_robot_node --ros-args -p shards:=[DIR]``."""
    return spin_node_main("sim_robot_node", SimRobotNode, args, spin=spin_until_done)


if __name__ == "__main__":
    raise SystemExit(main())
