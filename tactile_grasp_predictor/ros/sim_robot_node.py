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

import math
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
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

from tactile_grasp_predictor.errors import DatasetError, TgpError
from tactile_grasp_predictor.ros.conversions import finger_joint_state, rgb_to_image
from tactile_grasp_predictor.ros.params import ParamSpec, check_all, declare_all
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
    ParamSpec("image_topic", "/gelsight/image_raw", "GelSight-L image topic", read_only=True),
    ParamSpec("right_image_topic", "", "GelSight-R image topic (empty: not published)", read_only=True),
    ParamSpec("image_encoding", "rgb8", "encoding of published frames", choices=("rgb8", "bgr8", "8UC3"),
              read_only=True),
    ParamSpec("frame_id", "gelsight_left", "frame_id of GelSight-L images", read_only=True),
    ParamSpec("empty_stamps", False, "publish images with empty header stamps (like many GelSight wrappers)",
              read_only=True),
    ParamSpec("joint_states_topic", "/joint_states", "gripper JointState topic", read_only=True),
    ParamSpec("outcome_topic", "~/outcome", "std_msgs/Bool: the trial's true outcome after the lift",
              read_only=True),
    ParamSpec("closed_loop", False, "wait for the predictor's decision before lifting", read_only=True),
    ParamSpec("decision_topic", "/predictor_node/decision", "GraspDecision topic (closed loop)",
              read_only=True),
    ParamSpec("decision_timeout_s", 10.0, "closed loop: release if no decision within this (wall) time",
              lo=0.1, hi=3600.0, read_only=True),
    ParamSpec("after_lift_s", -1.0, "trial time played after the lift (< 0: the whole trial)", lo=-1.0,
              hi=600.0, read_only=True),
)


@dataclass
class TrialPlayback:
    """One trial as the drivers would see it (times in seconds from the trial start).

    Attributes:
        source: where the trial came from (``file:i<n>``).
        label: the true outcome (lift succeeded), ``None`` if unknown.
        gripper_t, gripper_w: the finger opening trajectory ``# T``, metres.
        frame_t: frame times ``# F``; frames_left / frames_right: ``# F x H x W x 3`` RGB uint8.
        t_lift: when the robot lifts (closed loop waits for the decision just before).

    """

    source: str
    label: bool | None
    gripper_t: np.ndarray
    gripper_w: np.ndarray
    frame_t: np.ndarray
    frames_left: np.ndarray
    t_lift: float
    frames_right: np.ndarray | None = None
    synthetic_stream: bool = False  # frames made from the before/during/after key images

    def __post_init__(self) -> None:
        assert self.gripper_t.shape == self.gripper_w.shape and self.gripper_t.ndim == 1, self.source
        assert len(self.frame_t) == len(self.frames_left) > 0, self.source
        assert self.frames_left.ndim == 4 and self.frames_left.shape[-1] == 3, self.frames_left.shape
        assert np.all(np.diff(self.gripper_t) >= 0) and np.all(np.diff(self.frame_t) >= 0), self.source

    @property
    def t_end(self) -> float:
        """The last event of the trial."""
        return float(max(self.gripper_t[-1], self.frame_t[-1]))

    @property
    def open_width(self) -> float:
        """The opening at the trial start (the gripper returns to it between trials)."""
        return float(self.gripper_w[0])

    @staticmethod
    def from_trial(trial: Any, camera_rate_hz: float = 30.0) -> TrialPlayback:
        """From a reader ``Trial`` with the simulator's ``sim_*`` extras.

        Uses the recorded GelSight streams when present; otherwise builds a stream from the
        key images (``before`` until the closing starts, ``during`` while closed, ``after``
        from ``sim_t_after``) at ``camera_rate_hz`` and marks it ``synthetic_stream``.
        """
        ex = trial.extras
        src = trial.source
        for key in ("sim_gripper_time", "sim_gripper_width"):
            if key not in ex:
                raise DatasetError(f"{src}: no {key} (simulate with the gripper trajectory)")
        gt = np.asarray(ex["sim_gripper_time"], dtype=np.float64)
        gw = np.maximum(np.asarray(ex["sim_gripper_width"], dtype=np.float64), 0.0)  # a WSG-50 reports >= 0
        t_lift = float(ex.get("sim_t_lift", np.nan))
        if not math.isfinite(t_lift):
            raise DatasetError(f"{src}: no sim_t_lift attribute")
        right = None
        if "sim_gelsightA_stream" in ex and "sim_gelsightA_stream_time" in ex:
            ft = np.asarray(ex["sim_gelsightA_stream_time"], dtype=np.float64)
            left = np.asarray(ex["sim_gelsightA_stream"])
            if "sim_gelsightB_stream" in ex:
                right = np.asarray(ex["sim_gelsightB_stream"])
            return TrialPlayback(src, bool(trial.is_gripping), gt, gw, ft, left, t_lift, right)
        images = trial.images
        keys = ("gelsightA_before", "gelsightA_during", "gelsightA_after")
        if any(k not in images for k in keys):
            raise DatasetError(f"{src}: neither sim_gelsightA_stream nor the key images {keys}")
        t_close = float(ex.get("sim_t_close", gt[0]))
        t_after = float(ex.get("sim_t_after", gt[-1]))
        ft = np.arange(gt[0], max(gt[-1], t_after) + 1e-9, 1.0 / camera_rate_hz)
        which = np.where(ft < t_close, 0, np.where(ft < t_after, 1, 2))
        stack = np.stack([images[k] for k in keys])
        return TrialPlayback(src, bool(trial.is_gripping), gt, gw, ft, stack[which], t_lift,
                             synthetic_stream=True)


def load_trials(paths: Sequence[str | Path], max_trials: int = 0, camera_rate_hz: float = 30.0
                ) -> Iterator[TrialPlayback]:
    """Trials of simulated shards (files or directories of ``*.h5``), one at a time."""
    from tactile_grasp_predictor.data.calandra import CalandraShard

    files: list[Path] = []
    for p in map(Path, paths):
        files.extend(sorted(p.glob("*.h5")) if p.is_dir() else [p])
    if not files:
        raise DatasetError(f"no shards in {', '.join(map(str, paths))}")
    keys = ("gelsightA_before", "gelsightA_during", "gelsightA_after", "sim_gripper_time",
            "sim_gripper_width", "sim_gelsightA_stream", "sim_gelsightA_stream_time")
    n = 0
    for f in files:
        with CalandraShard(f) as shard:
            for i in shard.trial_indices():
                if max_trials and n >= max_trials:
                    return
                yield TrialPlayback.from_trial(_read_available(shard, i, keys), camera_rate_hz)
                n += 1


def _read_available(shard: Any, index: int, keys: Sequence[str]) -> Any:
    """Read the keys a trial has (streams are optional)."""
    try:
        return shard.read(index, keys=tuple(keys))
    except DatasetError:
        return shard.read(index, keys=tuple(k for k in keys if "stream" not in k))


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


def _events(tr: TrialPlayback, t0: float, t1: float, include_end: bool = False) -> list[_Event]:
    """Joint and frame events with ``t0 <= t < t1`` (``<= t1`` if ``include_end``), time ordered."""
    def inside(t: float) -> bool:
        return t0 <= t < t1 or (include_end and t == t1)

    ev = [_Event(float(t), "joint", width=float(w)) for t, w in zip(tr.gripper_t, tr.gripper_w, strict=True)
          if inside(float(t))]
    ev += [_Event(float(t), "frame", index=i) for i, t in enumerate(tr.frame_t) if inside(float(t))]
    ev.sort(key=lambda e: (e.t, e.kind != "joint"))
    return ev


class SimRobotNode(Node):
    """Replays :class:`TrialPlayback` trials as WSG-50 + GelSight drivers (see the module docstring)."""

    def __init__(
        self,
        node_name: str = "sim_robot_node",
        *,
        trials: Iterable[TrialPlayback] | None = None,
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
    def _stamp(self) -> Any:
        if self.values["empty_stamps"]:
            return rclpy.time.Time().to_msg()
        return self.get_clock().now().to_msg()

    def _publish_joint(self, width: float) -> None:
        self._width = width
        self._joint_pub.publish(finger_joint_state(width, self.get_clock().now().to_msg(), FINGER_JOINTS))

    def _publish_frame(self, left: np.ndarray, right: np.ndarray | None) -> None:
        self._last_frame = (left, right)
        stamp = self._stamp()
        enc = self.values["image_encoding"]
        self._img_pub.publish(rgb_to_image(left, enc, stamp, self.values["frame_id"]))
        if self._img_r_pub is not None and right is not None:
            self._img_r_pub.publish(rgb_to_image(right, enc, stamp, "gelsight_right"))

    def _play(self, tr: TrialPlayback, events: list[_Event], t_origin: float, wall_origin: float) -> bool:
        """Publish ``events`` at ``wall_origin + (t - t_origin) / rate``; False if stopped."""
        rate = float(self.values["rate"])
        for e in events:
            delay = wall_origin + (e.t - t_origin) / rate - time.monotonic()
            if delay > 0 and self._stop.wait(delay):
                return False
            if self._stop.is_set():
                return False
            if e.kind == "joint":
                self._publish_joint(e.width)
            else:
                right = tr.frames_right[e.index] if tr.frames_right is not None else None
                self._publish_frame(tr.frames_left[e.index], right)
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
        next_j = next_f = start
        while not self._stop.is_set():
            now = time.monotonic()
            if until is not None and until():
                return True
            if now - start >= duration_s:
                return False
            if now >= next_j:
                frac = min(1.0, (now - start) / duration_s) if duration_s > 0 else 1.0
                self._publish_joint(w0 + (width_to - w0) * frac if width_to is not None else w0)
                next_j += period_j
            if now >= next_f and self._last_frame is not None:
                self._publish_frame(*self._last_frame)
                next_f += period_f
            self._stop.wait(max(0.0, min(next_j, next_f) - time.monotonic()))
        return False

    # ---------------------------------------------------------------- the trial loop
    def _trial_source(self) -> Iterator[TrialPlayback]:
        v = self.values
        while True:
            if self._trials is not None:
                yield from self._trials
            else:
                shards = [s.strip() for s in str(v["shards"]).split(",") if s.strip()]
                yield from load_trials(shards, int(v["max_trials"]), float(v["camera_rate_hz"]))
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

    def _play_trial(self, index: int, tr: TrialPlayback) -> TrialResult | None:
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
