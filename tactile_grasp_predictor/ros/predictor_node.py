"""``predictor_node``: LIFT / ABORT for each grasp from GelSight frames and the gripper state.

Inputs: the left GelSight ``sensor_msgs/Image`` stream (sensor-data QoS: best effort,
which also matches reliable drivers), the gripper's ``sensor_msgs/JointState``, and
optionally a ``std_msgs/Bool`` moving flag and a WSG status message. The callbacks only
convert messages and feed :class:`~tactile_grasp_predictor.gate.GraspGate`, the same
trigger logic the bag replay uses; the model runs on a worker thread, so frames and
gripper samples are never held up by inference.

Outputs: ``tactile_grasp_msgs/GraspDecision`` on ``~/decision`` (reliable), the
``EvaluateGrasp`` action on ``~/evaluate_grasp`` (waits for the next decision, feedback by
phase, cancellable), and ``/diagnostics``. Every failure (no or corrupt bundle, no frames,
stale or malformed frames, gripper silence, Tb timeout) is an ABORT with a reason and a
diagnostic, never a crash and never a LIFT.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import math
import queue
import re
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rclpy.action import ActionServer, CancelResponse, GoalResponse
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup, ReentrantCallbackGroup
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor
from rclpy.node import Node
from rclpy.qos import (
    QoSDurabilityPolicy,
    QoSHistoryPolicy,
    QoSProfile,
    QoSReliabilityPolicy,
    qos_profile_sensor_data,
)
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import Bool
from tactile_grasp_msgs.action import EvaluateGrasp
from tactile_grasp_msgs.msg import GraspDecision

from tactile_grasp_predictor.cpu_affinity import isolate_current_thread, parse_cpu_list, set_realtime_priority
from tactile_grasp_predictor.decision import Decision, Verdict, abort_decision, decide
from tactile_grasp_predictor.errors import ConfigError, FrameError
from tactile_grasp_predictor.gate import Frame, GraspAborted, GraspGate, PhaseChanged, SnapshotReady
from tactile_grasp_predictor.gripper import (
    GraspState,
    GripperSample,
    JointWidthConfig,
    grasp_state_from_id,
    grasp_state_from_ros1_status,
    grasp_state_from_ros2_status,
    joint_state_width,
    width_m_from_status_mm,
)
from tactile_grasp_predictor.ros.conversions import decision_to_msg, image_to_rgb, stamp_to_float
from tactile_grasp_predictor.ros.params import ParamSpec, check_all, declare_all, make_set_callback
from tactile_grasp_predictor.ros.spin import spin_node_main
from tactile_grasp_predictor.timebase import TIME_BASES, TimeBase
from tactile_grasp_predictor.tracker import TriggerConfig

ENCODINGS = ("rgb8", "bgr8", "8UC3", "mono8", "rgba8", "bgra8")
GRASP_STATE_VARIANTS = ("ros1", "ros2_port", "fork")
#: Reasons the gate gives when the image stream failed; become ``bad_frame`` if frames were malformed.
_FRAME_STARVED = ("no_pre_contact_frame", "stale_frame", "tb_timeout")
#: Gate phases as the action's feedback names them (a decided grasp waits for the next one).
_FEEDBACK_PHASE = {"decided": "waiting"}


def _trigger_docs() -> dict[str, str]:
    """Field descriptions from the ``Attributes:`` section of ``TriggerConfig``'s docstring."""
    docs: dict[str, str] = {}
    for m in re.finditer(r"^[ \t]+(\w+):[ \t]+(.+(?:\n[ \t]{12,}.+)*)", TriggerConfig.__doc__ or "", re.M):
        docs[m.group(1)] = " ".join(m.group(2).split())
    return docs


def _trigger_specs() -> tuple[ParamSpec, ...]:
    """``trigger.<field>`` for every :class:`TriggerConfig` field, defaults from the core."""
    docs = _trigger_docs()
    default = TriggerConfig()
    specs = []
    for f in dataclasses.fields(TriggerConfig):
        value = getattr(default, f.name)
        name, doc = f"trigger.{f.name}", docs.get(f.name, f.name)
        if isinstance(value, bool):
            specs.append(ParamSpec(name, value, doc))
        elif isinstance(value, int):
            specs.append(ParamSpec(name, value, doc, lo=1, hi=100_000))
        elif isinstance(value, float):
            specs.append(ParamSpec(name, value, doc, lo=0.0, hi=600.0))
        elif value is None:  # optional number: declared as a double, < 0 means "off"
            specs.append(ParamSpec(name, -1.0, doc + " (< 0: off)", lo=-1.0, hi=600.0))
    return tuple(specs)


PARAMETERS: tuple[ParamSpec, ...] = (
    # Inputs.
    ParamSpec("image_topic", "/gelsight/image_raw", "left GelSight sensor_msgs/Image topic", read_only=True),
    ParamSpec("image_qos", "sensor_data",
              "image subscription QoS: sensor_data (best effort; matches any driver) or reliable "
              "(needs a reliable driver; FastDDS drops large best-effort frames over UDP)",
              choices=("sensor_data", "reliable"), read_only=True),
    ParamSpec("image_encodings", ["rgb8", "bgr8", "8UC3", "mono8"],
              "accepted image encodings (8UC3 = BGR passthrough); others count as bad frames",
              choices=ENCODINGS),
    ParamSpec("frame_id", "", "frame_id of decisions (empty: the image's frame_id)"),
    ParamSpec("joint_states_topic", "/joint_states", "gripper sensor_msgs/JointState topic", read_only=True),
    ParamSpec("gripper_qos", "sensor_data",
              "JointState / status subscription QoS: sensor_data (best effort, depth 5; matches any "
              "driver) or reliable (depth 50: no sample lost to a stalled callback; needs a reliable driver)",
              choices=("sensor_data", "reliable"), read_only=True),
    ParamSpec("joint_names", ["wsg50_finger_left_joint", "wsg50_finger_right_joint"],
              "finger joints (sum_abs: widths |a|+|b|) or the one width joint (single)", read_only=True),
    ParamSpec("width_mode", "sum_abs", "how joints give the opening", choices=("sum_abs", "single"),
              read_only=True),
    ParamSpec("width_scale", 1.0, "factor to metres (0.001 for joints in millimetres)", lo=1e-6, hi=1e3,
              read_only=True),
    ParamSpec("moving_topic", "", "optional std_msgs/Bool 'moving' topic (empty: none)", read_only=True),
    ParamSpec("grasp_state_topic", "", "optional WSG status topic (empty: none)", read_only=True),
    ParamSpec("grasp_state_type", "", "its message type, 'pkg/msg/Type' (the driver's Status message)",
              read_only=True),
    ParamSpec("grasp_state_variant", "fork",
              "status layout: ros1 (status text + width mm), ros2_port (+ object_grasped), "
              "fork (grasping_state_id)", choices=GRASP_STATE_VARIANTS, read_only=True),
    # Time base of frames and gripper samples (docs/node.md, "Time base").
    ParamSpec("time_base", "header",
              "header: the message's header stamp (capture time; an empty stamp falls back to the "
              "receive time, counted in diagnostics); receive: the node clock when the callback runs",
              choices=TIME_BASES, read_only=True),
    ParamSpec("time_offset_warn_s", 1.0,
              "header stamps further than this from the node clock (or from each other across "
              "topics) are reported in diagnostics and the log", lo=0.001, hi=1e6, read_only=True),
    ParamSpec("time_watchdog_slack_s", 0.1,
              "time_base header: timeouts fire this long after the largest recent transport delay, "
              "so a message still in flight is not overtaken by a tick", lo=0.0, hi=10.0, read_only=True),
    # Model.
    ParamSpec("bundle_path", "", "model bundle directory (empty or unreadable: every grasp ABORTs "
              "with model_unavailable)", read_only=True),
    ParamSpec("threshold", -1.0, "LIFT iff p_success >= threshold; < 0: the bundle's threshold",
              lo=-1.0, hi=1.0),
    ParamSpec("backend", "auto", "inference backend (auto: onnx when the bundle has model.onnx, else torch)",
              choices=("auto", "torch", "onnx"), read_only=True),
    ParamSpec("device", "cpu", "inference device", choices=("cpu", "cuda", "auto"), read_only=True),
    ParamSpec("num_threads", 1, "CPU threads for inference", lo=1, hi=64, read_only=True),
    ParamSpec("inference_cpus", "", "Linux CPU list (e.g. '1' or '2-3') for the inference thread alone; "
              "the node's other threads move to the remaining CPUs. Empty: no pinning", read_only=True,
              numbers_as_text=True),
    ParamSpec("inference_priority", 0, "SCHED_FIFO priority (1-99) for the inference thread; needs "
              "CAP_SYS_NICE or an rtprio limit, else a warning and normal priority. 0: normal",
              lo=0, hi=99, read_only=True),
    # Service.
    ParamSpec("evaluate_timeout_s", 10.0, "EvaluateGrasp wait when the goal's timeout_s <= 0",
              lo=0.01, hi=3600.0),
    ParamSpec("diagnostics_period_s", 1.0, "period of /diagnostics", lo=0.05, hi=60.0, read_only=True),
    ParamSpec("tick_period_s", 0.05, "period of timeout checks (Tb timeout, gripper silence)",
              lo=0.005, hi=1.0, read_only=True),
    ParamSpec("max_pending", 4, "snapshots queued for inference before further ones ABORT (overloaded)",
              lo=1, hi=64, read_only=True),
    *_trigger_specs(),
)


class PredictorLike(Protocol):
    """What the node needs of :class:`~tactile_grasp_predictor.predictor.Predictor`."""

    model_id: str
    threshold: float

    def predict(self, ta: np.ndarray, tb: np.ndarray) -> float:
        """p(success) of the pair."""
        ...


@dataclass(frozen=True)
class NodeConfig:
    """The node's parameters, typed and cross-checked."""

    values: dict[str, Any]
    trigger: TriggerConfig
    joints: JointWidthConfig
    inference_cpus: frozenset[int] = frozenset()  # parsed ``inference_cpus``; empty: no pinning

    @staticmethod
    def from_values(values: dict[str, Any]) -> NodeConfig:
        """Build and validate; raise :class:`ConfigError` naming the parameter."""
        problem = check_all(PARAMETERS, values)
        if problem:
            raise ConfigError(problem)
        fields = {s.name.split(".", 1)[1]: values[s.name]
                  for s in PARAMETERS if s.name.startswith("trigger.")}
        default = TriggerConfig()
        for name, v in fields.items():
            if getattr(default, name) is None and isinstance(v, float) and v < 0.0:
                fields[name] = None
        try:
            trigger = TriggerConfig(**fields)
            trigger.validate()
        except (ConfigError, TypeError, ValueError) as exc:
            raise ConfigError(f"trigger.*: {exc}") from exc
        try:
            joints = JointWidthConfig(
                tuple(values["joint_names"]), float(values["width_scale"]), values["width_mode"]
            ).validate()
        except ConfigError as exc:
            raise ConfigError(f"joint_names/width_mode/width_scale: {exc}") from exc
        cpus = parse_cpu_list(str(values["inference_cpus"]))  # raises naming inference_cpus
        if values["grasp_state_topic"] and not re.fullmatch(r"\w+/msg/\w+", values["grasp_state_type"]):
            raise ConfigError(
                f"grasp_state_type: {values['grasp_state_type']!r} must be 'pkg/msg/Type' "
                f"when grasp_state_topic is set"
            )
        return NodeConfig(dict(values), trigger, joints, cpus)

    def __getitem__(self, name: str) -> Any:
        return self.values[name]


def load_predictor(cfg: NodeConfig) -> PredictorLike:
    """Load the bundle named by ``bundle_path`` (imports torch / onnxruntime only here)."""
    from tactile_grasp_predictor.errors import BundleError
    from tactile_grasp_predictor.predictor import Predictor

    path = cfg["bundle_path"]
    if not path:
        raise BundleError("bundle_path: not set")
    predictor = Predictor.from_bundle(path, backend=cfg["backend"], device=cfg["device"],
                                      num_threads=int(cfg["num_threads"]))
    warm_up = getattr(predictor, "warm_up", None)
    if callable(warm_up):
        warm_up()
    return predictor


def _cpu_text(cpus: frozenset[int]) -> str:
    return "CPU " + ",".join(str(c) for c in sorted(cpus))


def _owned(frame: Frame) -> Frame:
    """Return the frame, with a C-contiguous copy of its image if it is strided (BGR view)."""
    img = frame.image
    if img.flags.c_contiguous:
        return frame
    return dataclasses.replace(frame, image=np.ascontiguousarray(img))


class _RateMeter:
    """Message rate and age from the last receive times (bounded)."""

    def __init__(self, window: int = 120) -> None:
        self.times: deque[float] = deque(maxlen=window)
        self.count = 0

    def tick(self, t: float) -> None:
        self.times.append(t)
        self.count += 1

    def rate_hz(self, now: float, horizon_s: float = 2.0) -> float:
        recent = [t for t in self.times if now - t <= horizon_s]
        if len(recent) < 2 or recent[-1] <= recent[0]:
            return 0.0
        return (len(recent) - 1) / (recent[-1] - recent[0])

    def age_s(self, now: float) -> float:
        return now - self.times[-1] if self.times else math.inf


def freeze_long_lived_objects() -> None:
    """Collect once, then exempt every object alive now (imports, model) from later collections.

    With torch and rclpy loaded a process holds ~0.5 M objects, and a full (generation-2)
    collection walks them all: 200–300 ms with every thread stopped, measured in a full test
    run, where two in a row starved a live test's gripper stream past its silence limit.
    After ``gc.freeze()`` full collections walk only objects made since, so the input and
    inference threads are not stopped for long. Called once, when the model has loaded.
    """
    gc.collect()
    gc.freeze()


class _InferenceWorker:
    """A thread that loads the model once, then turns queued snapshots into decisions."""

    def __init__(
        self,
        load: Callable[[], PredictorLike],
        run: Callable[[SnapshotReady, float, PredictorLike | None, str], None],
        max_pending: int,
        cpus: frozenset[int] = frozenset(),
        warn: Callable[[str], object] = print,
        priority: int = 0,
    ) -> None:
        self._load = load
        self._run = run
        self._cpus = cpus
        self._priority = priority
        self._warn = warn
        self.pinning = "off"  # diagnostics: "off", the CPU split, or why the kernel refused it
        self.scheduling = "normal"  # diagnostics: "normal", "SCHED_FIFO N", or why it was refused
        # (snapshot, node-clock time of its trigger)
        self.queue: queue.Queue[tuple[SnapshotReady, float] | None] = queue.Queue(maxsize=max_pending)
        self.predictor: PredictorLike | None = None
        self.error = ""
        self.failures = 0
        self.loaded = threading.Event()  # set once loading ended (success or not)
        self._thread = threading.Thread(target=self._main, name="tgp-inference", daemon=True)
        self._thread.start()

    def _main(self) -> None:
        # Before loading: the model's thread pools inherit this thread's CPUs and policy.
        if self._cpus:
            self.pinning = self._place(self._pin, "unpinned")
        if self._priority:
            self.scheduling = self._place(self._raise_priority, "at normal priority")
        try:
            self.predictor = self._load()
        except Exception as exc:  # any failure: the node runs on and ABORTs model_unavailable
            self.error = f"{type(exc).__name__}: {exc}"
        freeze_long_lived_objects()
        self.loaded.set()
        while True:
            item = self.queue.get()
            if item is None:
                return
            try:
                self._run(item[0], item[1], self.predictor, self.error)
            except Exception as exc:  # keep serving later grasps whatever happened to this one
                self.failures += 1
                self.error = self.error or f"worker: {type(exc).__name__}: {exc}"

    def _place(self, apply: Callable[[], str], otherwise: str) -> str:
        """Run a placement step; on refusal warn and report it (slower tail, same decisions)."""
        try:
            return apply()
        except ConfigError as exc:
            self._warn(f"{exc}; inference runs {otherwise}")
            return f"refused: {exc}"

    def _pin(self) -> str:
        rest = isolate_current_thread(self._cpus)
        return f"inference on {_cpu_text(self._cpus)}, other threads on {_cpu_text(rest) if rest else 'all'}"

    def _raise_priority(self) -> str:
        set_realtime_priority(self._priority)
        return f"SCHED_FIFO {self._priority}"

    def submit(self, snapshot: SnapshotReady, t_trigger_node: float) -> bool:
        try:
            self.queue.put_nowait((snapshot, t_trigger_node))
            return True
        except queue.Full:
            return False

    def stop(self, timeout_s: float = 5.0) -> None:
        while True:
            try:
                self.queue.put(None, timeout=0.1)
                break
            except queue.Full:
                with contextlib.suppress(queue.Empty):  # drop a pending snapshot so the stop token fits
                    self.queue.get_nowait()
        self._thread.join(timeout_s)


class PredictorNode(Node):
    """The grasp-gating node (see the module docstring)."""

    def __init__(
        self,
        node_name: str = "predictor_node",
        *,
        loader: Callable[[NodeConfig], PredictorLike] = load_predictor,
        **kwargs: Any,
    ) -> None:
        super().__init__(node_name, **kwargs)
        self.cfg = NodeConfig.from_values(declare_all(self, PARAMETERS))
        self._lock = threading.Lock()  # guards the gate and the counters below
        self._cond = threading.Condition(self._lock)  # decisions / phase changes wake action goals
        self._gate = GraspGate(self.cfg.trigger)
        self._timebase = TimeBase(str(self.cfg["time_base"]),
                                  warn_offset_s=float(self.cfg["time_offset_warn_s"]),
                                  watchdog_slack_s=float(self.cfg["time_watchdog_slack_s"]))
        self._recv_now = 0.0  # node-clock time of the callback being handled (lock held)
        self._clock_problem = ("", "")
        self._phase = "waiting"
        self._frame_id = str(self.cfg["frame_id"])
        self._frames = _RateMeter()
        self._gripper = _RateMeter()
        self._bad_frames = 0
        self._bad_since_good = False
        self._last_bad = ""
        self._gripper_bad = 0
        self._last_gripper_bad = ""
        self._last_grasp_state: GraspState | None = None
        self._moving: bool | None = None
        self._decision_seq = 0
        self._recent: deque[tuple[int, GraspDecision]] = deque(maxlen=32)
        self._counts = {"lift": 0, "abort": 0}
        self._last_decision: GraspDecision | None = None
        self._active_goals = 0
        self._closing = False

        self._worker = _InferenceWorker(lambda: loader(self.cfg), self._run_snapshot,
                                        int(self.cfg["max_pending"]),
                                        cpus=self.cfg.inference_cpus,
                                        warn=self.get_logger().warning,
                                        priority=int(self.cfg["inference_priority"]))

        inputs = MutuallyExclusiveCallbackGroup()  # cheap callbacks, one at a time, never blocked
        self._decision_pub = self.create_publisher(
            GraspDecision, "~/decision",
            QoSProfile(depth=10, reliability=QoSReliabilityPolicy.RELIABLE,
                       durability=QoSDurabilityPolicy.VOLATILE, history=QoSHistoryPolicy.KEEP_LAST),
        )
        self._diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        # reliable: depth 10 (a third of a second at 30 Hz) rides out a stalled callback without
        # losing frames; with time_base header a late frame keeps its capture time.
        image_qos = qos_profile_sensor_data if self.cfg["image_qos"] == "sensor_data" else QoSProfile(
            depth=10, reliability=QoSReliabilityPolicy.RELIABLE, history=QoSHistoryPolicy.KEEP_LAST)
        self.create_subscription(Image, self.cfg["image_topic"], self._on_image, image_qos,
                                 callback_group=inputs)
        gripper_qos = qos_profile_sensor_data if self.cfg["gripper_qos"] == "sensor_data" else QoSProfile(
            depth=50, reliability=QoSReliabilityPolicy.RELIABLE, history=QoSHistoryPolicy.KEEP_LAST)
        self.create_subscription(JointState, self.cfg["joint_states_topic"], self._on_joint_state,
                                 gripper_qos, callback_group=inputs)
        if self.cfg["moving_topic"]:
            self.create_subscription(Bool, self.cfg["moving_topic"], self._on_moving, 10,
                                     callback_group=inputs)
        if self.cfg["grasp_state_topic"]:
            self.create_subscription(self._status_type(), self.cfg["grasp_state_topic"], self._on_status,
                                     gripper_qos, callback_group=inputs)
        self.create_timer(float(self.cfg["tick_period_s"]), self._on_tick, callback_group=inputs)
        self.create_timer(float(self.cfg["diagnostics_period_s"]), self._publish_diagnostics,
                          callback_group=MutuallyExclusiveCallbackGroup())
        # The action's goals block while they wait for a decision, so they run on a helper node
        # with its own small multi-threaded executor; the inputs stay on a single-threaded
        # executor (rclpy's multi-threaded one costs ~5x the CPU per message: measured here,
        # 640x480 frames at 60 Hz + JointStates at 200 Hz took 85 % of a core vs 17 %).
        self._action_node = Node(f"{self.get_name()}_evaluate_grasp", namespace=self.get_namespace(),
                                 context=self.context, start_parameter_services=False)
        self._action = ActionServer(
            self._action_node, EvaluateGrasp, f"{self.get_fully_qualified_name()}/evaluate_grasp",
            self._execute, goal_callback=self._on_goal, cancel_callback=lambda _goal: CancelResponse.ACCEPT,
            callback_group=ReentrantCallbackGroup(),
        )
        self._action_executor = MultiThreadedExecutor(num_threads=4, context=self.context)
        self._action_executor.add_node(self._action_node)
        self._action_thread = threading.Thread(target=self._spin_actions, name="tgp-actions", daemon=True)
        self._action_thread.start()
        self.add_on_set_parameters_callback(
            make_set_callback(PARAMETERS, lambda: dict(self.cfg.values), self._cross_check, self._apply)
        )
        self.get_logger().info(
            f"listening to {self.cfg['image_topic']} and {self.cfg['joint_states_topic']}; "
            f"bundle {self.cfg['bundle_path'] or '(none)'}"
        )

    # ---------------------------------------------------------------- parameters
    @staticmethod
    def _cross_check(values: dict[str, Any]) -> str | None:
        try:
            NodeConfig.from_values(values)
        except ConfigError as exc:
            return str(exc)
        return None

    def _apply(self, values: dict[str, Any]) -> None:
        cfg = NodeConfig.from_values(values)
        with self._lock:
            if cfg.trigger != self.cfg.trigger:
                self._gate = GraspGate(cfg.trigger)  # re-arms: a grasp in progress is dropped
                self._phase = "waiting"
            self._frame_id = str(cfg["frame_id"])
            self.cfg = cfg

    def _status_type(self) -> Any:
        import importlib

        pkg, _, name = str(self.cfg["grasp_state_type"]).split("/")
        try:
            return getattr(importlib.import_module(f"{pkg}.msg"), name)
        except (ImportError, AttributeError) as exc:
            raise ConfigError(
                f"grasp_state_type: cannot import {self.cfg['grasp_state_type']!r}: {exc}"
            ) from exc

    # ---------------------------------------------------------------- time
    def now_s(self) -> float:
        """Return the core's clock: this node's clock (ROS time; simulated under use_sim_time) in seconds."""
        return self.get_clock().now().nanoseconds * 1e-9

    # ---------------------------------------------------------------- inputs (cheap; never block)
    def _on_image(self, msg: Image) -> None:
        recv = self.now_s()
        try:
            rgb = image_to_rgb(msg, tuple(self.cfg["image_encodings"]), self.cfg["image_topic"])
        except (FrameError, ValueError) as exc:
            with self._lock:
                self._bad_frames += 1
                self._bad_since_good = True
                self._last_bad = str(exc)
            if self._bad_frames == 1 or self._bad_frames % 100 == 0:
                self.get_logger().warning(f"bad frame #{self._bad_frames}: {exc}")
            return
        stamp = stamp_to_float(msg.header.stamp)
        with self._lock:
            self._recv_now = recv
            frame = Frame(t=self._timebase.resolve(stamp, recv, "image"), stamp=stamp, image=rgb)
            self._frames.tick(recv)
            self._bad_since_good = False
            if not self.cfg["frame_id"]:
                self._frame_id = msg.header.frame_id
            events = self._gate.on_frame(frame)
            self._handle(events)

    def _on_joint_state(self, msg: JointState) -> None:
        recv = self.now_s()
        width, why = joint_state_width(msg.name, msg.position, self.cfg.joints)
        with self._lock:
            if width is None:
                # JointStates of other joints on a shared topic are normal; count, do not feed.
                self._gripper_bad += 1
                self._last_gripper_bad = why
                return
            self._recv_now = recv
            t = self._timebase.resolve(stamp_to_float(msg.header.stamp), recv, "joint_states")
            self._gripper.tick(recv)
            sample = GripperSample(t=t, width_m=width, moving=self._moving,
                                   grasp_state=self._last_grasp_state)
            self._handle(self._gate.on_gripper(sample))

    def _on_moving(self, msg: Bool) -> None:
        with self._lock:
            self._moving = bool(msg.data)

    def _on_status(self, msg: Any) -> None:
        recv = self.now_s()
        variant = self.cfg["grasp_state_variant"]
        try:
            if variant == "fork":
                state = grasp_state_from_id(int(msg.grasping_state_id))
                width: float | None = float(msg.width)
            elif variant == "ros2_port":
                state = grasp_state_from_ros2_status(str(msg.status), bool(msg.object_grasped))
                width = width_m_from_status_mm(float(msg.width))
            else:
                state = grasp_state_from_ros1_status(str(msg.status))
                width = width_m_from_status_mm(float(msg.width))
        except (AttributeError, TypeError, ValueError) as exc:
            with self._lock:
                self._gripper_bad += 1
                self._last_gripper_bad = f"{self.cfg['grasp_state_topic']}: {exc}"
            return
        header = getattr(msg, "header", None)  # the ROS 1 style status has none
        with self._lock:
            self._recv_now = recv
            t = (self._timebase.resolve(stamp_to_float(header.stamp), recv, "status") if header is not None
                 else self._timebase.from_receive(recv))
            self._last_grasp_state = state
            if state is not None:
                sample = GripperSample(t=t, width_m=None, moving=self._moving, grasp_state=state)
                self._handle(self._gate.on_gripper(sample))
            del width  # the JointState gives the width; the status only its grasp state

    def _on_tick(self) -> None:
        recv = self.now_s()
        with self._lock:
            self._recv_now = recv
            t = self._timebase.watchdog_time(recv)
            if self._timebase.mode == "header":
                # only forward: the watchdog clock trails the stamps (never a clock reset by a tick)
                now = self._gate.now
                if now is None or t <= now:
                    return
            self._handle(self._gate.on_tick(t))

    # ---------------------------------------------------------------- gate events (lock held)
    def _handle(self, events: Sequence[object]) -> None:
        for event in events:
            if isinstance(event, PhaseChanged):
                self._phase = _FEEDBACK_PHASE.get(event.phase, event.phase)
                self._cond.notify_all()
            elif isinstance(event, SnapshotReady):
                self._phase = "predicting"
                self._cond.notify_all()
                if not self._worker.submit(event, self._recv_now):
                    aborted = GraspAborted(grasp_id=event.grasp_id, t=event.t_trigger, reason="overloaded",
                                           ta=event.ta, tb=event.tb)
                    self._publish(self._abort(aborted))
            elif isinstance(event, GraspAborted):
                if event.reason in _FRAME_STARVED and self._bad_since_good:
                    event = dataclasses.replace(event, reason="bad_frame")
                self._publish(self._abort(event))

    def _threshold(self, predictor: PredictorLike | None) -> float:
        th = float(self.cfg["threshold"])
        if th >= 0.0:
            return th
        return float(predictor.threshold) if predictor is not None else math.nan

    def _abort(self, event: GraspAborted) -> Decision:
        predictor = self._worker.predictor
        now = max(event.t, self._timebase.from_receive(self.now_s()))  # on the core's clock
        return abort_decision(event, threshold=self._threshold(predictor), now=now,
                              model_id=predictor.model_id if predictor else "")

    # ---------------------------------------------------------------- inference (worker thread)
    def _run_snapshot(self, snapshot: SnapshotReady, t_trigger_node: float, predictor: PredictorLike | None,
                      error: str) -> None:
        if predictor is None:
            aborted = GraspAborted(grasp_id=snapshot.grasp_id, t=snapshot.t_trigger,
                                   reason="model_unavailable", ta=snapshot.ta, tb=snapshot.tb)
            decision = abort_decision(aborted, threshold=math.nan, now=snapshot.t_trigger)
        else:
            snapshot = dataclasses.replace(  # frames may be views of message buffers: own the two used
                snapshot, ta=_owned(snapshot.ta), tb=_owned(snapshot.tb))
            decision = decide(snapshot, predictor, self._threshold(predictor), now=snapshot.t_trigger)
        # latency on the node clock (Tb trigger -> decision, inference included): the trigger's
        # core time may be a header stamp from another clock
        end = self.now_s()
        with self._lock:
            t_decision = max(snapshot.t_trigger, self._timebase.from_receive(end))
        decision = dataclasses.replace(decision, latency_ms=max(0.0, end - t_trigger_node) * 1000.0,
                                       t_decision=t_decision)
        with self._lock:
            self._handle(self._gate.mark_decided(snapshot.grasp_id, decision.t_decision))
            self._publish(decision)

    # ---------------------------------------------------------------- outputs (lock held)
    def _publish(self, decision: Decision) -> None:
        assert decision.verdict == Verdict.ABORT or decision.reason == "model", decision
        msg = decision_to_msg(decision, self._frame_id, self.get_clock().now().to_msg())
        if not self._closing:
            self._decision_pub.publish(msg)
        self._decision_seq += 1
        self._recent.append((self._decision_seq, msg))
        self._last_decision = msg
        self._counts["lift" if msg.verdict == GraspDecision.LIFT else "abort"] += 1
        if self._phase == "predicting":
            self._phase = "waiting"
        self._cond.notify_all()
        text = (
            f"grasp {msg.grasp_id}: {'LIFT' if msg.verdict == GraspDecision.LIFT else 'ABORT'} "
            f"({msg.reason}, p={msg.p_success:.3f}, {msg.latency_ms:.1f} ms)"
        )
        # rclpy forbids one call site with two severities: two call sites.
        if msg.reason in ("model", "no_part_found"):
            self.get_logger().info(text)
        else:
            self.get_logger().warning(text)

    def _publish_diagnostics(self) -> None:
        now = self.now_s()
        with self._lock:
            w = self._worker
            frame_age = self._frames.age_s(now)
            max_age = float(getattr(self.cfg.trigger, "frame_max_age_s", 0.5))
            kv = {
                "model_loaded": str(w.predictor is not None),
                "model_id": w.predictor.model_id if w.predictor else "",
                "backend": str(getattr(w.predictor, "backend", "")),
                "inference_cpus": w.pinning,
                "inference_priority": w.scheduling,
                "model_error": w.error,
                "bundle_path": str(self.cfg["bundle_path"]),
                "frames_received": str(self._frames.count),
                "frame_rate_hz": f"{self._frames.rate_hz(now):.1f}",
                "last_frame_age_s": f"{frame_age:.3f}",
                "bad_frames": str(self._bad_frames),
                "last_bad_frame": self._last_bad,
                "gripper_samples": str(self._gripper.count),
                "gripper_rate_hz": f"{self._gripper.rate_hz(now):.1f}",
                "last_gripper_age_s": f"{self._gripper.age_s(now):.3f}",
                "ignored_joint_states": str(self._gripper_bad),
                "phase": self._phase,
                "grasps": str(getattr(self._gate, "grasp_id", "")),
                "lift": str(self._counts["lift"]),
                "abort": str(self._counts["abort"]),
                "last_reason": self._last_decision.reason if self._last_decision else "",
                "last_decision_latency_ms": (
                    f"{self._last_decision.latency_ms:.2f}" if self._last_decision else ""
                ),
                "pending_inference": str(w.queue.qsize()),
                "time_base": self._timebase.mode,
                "stamp_fallbacks": str(self._timebase.fallbacks),
                "stamp_offsets_s": " ".join(f"{k}={v:+.4f}" for k, v in self._timebase.offsets().items()),
            }
            bad_recent = self._bad_since_good
            clock = self._timebase.problem()
            kv["clock_problem"] = clock[1]
        if clock[0] != self._clock_problem[0]:  # log a clock problem once, when its kind changes
            self._clock_problem = clock
            if clock[0] == "warn":
                self.get_logger().warning(clock[1])
            elif clock[0] == "info":
                self.get_logger().info(clock[1])
        level, message = DiagnosticStatus.OK, "ok"
        if not w.loaded.is_set():
            level, message = DiagnosticStatus.WARN, "loading model"
        elif w.predictor is None:
            level, message = DiagnosticStatus.ERROR, f"model unavailable: {w.error}"
        elif self._frames.count == 0:
            level, message = DiagnosticStatus.WARN, "no frames received"
        elif bad_recent:
            level, message = DiagnosticStatus.WARN, "malformed frames"
        elif frame_age > max_age:
            level, message = DiagnosticStatus.WARN, f"frames stale ({frame_age:.2f} s)"
        elif clock[0] == "warn":
            level, message = DiagnosticStatus.WARN, "header stamps on different clocks"
        elif self._gripper.count == 0:
            level, message = DiagnosticStatus.WARN, "no gripper state received"
        status = DiagnosticStatus(level=level, name=f"{self.get_name()}: grasp gate", message=message,
                                  hardware_id=self._frame_id or "gelsight")
        status.values = [KeyValue(key=k, value=v) for k, v in kv.items()]
        array = DiagnosticArray(status=[status])
        array.header.stamp = self.get_clock().now().to_msg()
        self._diag_pub.publish(array)

    # ---------------------------------------------------------------- action
    def _on_goal(self, _goal: EvaluateGrasp.Goal) -> GoalResponse:
        with self._lock:
            if self._closing or self._active_goals >= 8:
                return GoalResponse.REJECT
            self._active_goals += 1
        return GoalResponse.ACCEPT

    def _execute(self, goal_handle: Any) -> EvaluateGrasp.Result:
        result = EvaluateGrasp.Result()
        timeout = float(goal_handle.request.timeout_s)
        if not math.isfinite(timeout) or timeout <= 0.0:
            timeout = float(self.cfg["evaluate_timeout_s"])
        deadline = time.monotonic() + timeout
        sent_phase = ""
        try:
            with self._cond:
                start = self._decision_seq
                while True:
                    found = next((m for s, m in self._recent if s > start), None)
                    if found is not None:
                        result.decision = found
                        goal_handle.succeed()
                        return result
                    if goal_handle.is_cancel_requested or self._closing:
                        result.decision = self._synthetic("cancelled")
                        if goal_handle.is_cancel_requested:
                            goal_handle.canceled()
                        else:
                            goal_handle.abort()
                        return result
                    if time.monotonic() >= deadline:
                        result.decision = self._synthetic("tb_timeout")
                        goal_handle.succeed()
                        return result
                    if self._phase != sent_phase:
                        sent_phase = self._phase
                        goal_handle.publish_feedback(EvaluateGrasp.Feedback(phase=sent_phase))
                    self._cond.wait(min(0.05, max(0.0, deadline - time.monotonic())))
        finally:
            with self._lock:
                self._active_goals -= 1

    def _synthetic(self, reason: str) -> GraspDecision:
        """Build an ABORT for a goal that ended without a grasp decision (lock held)."""
        predictor = self._worker.predictor
        msg = GraspDecision()
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.header.frame_id = self._frame_id
        msg.grasp_id = int(getattr(self._gate, "grasp_id", 0)) & 0xFFFFFFFF
        msg.verdict = GraspDecision.ABORT
        msg.p_success = math.nan
        msg.threshold = self._threshold(predictor)
        msg.latency_ms = math.nan
        msg.reason = reason
        msg.model_id = predictor.model_id if predictor else ""
        return msg

    # ---------------------------------------------------------------- state for tests and tools
    @property
    def model_ready(self) -> threading.Event:
        """Set once the model finished loading (or failed to)."""
        return self._worker.loaded

    @property
    def phase(self) -> str:
        """The gate's current phase (waiting · closing · settling · predicting)."""
        return self._phase

    def _spin_actions(self) -> None:
        with contextlib.suppress(ExternalShutdownException):
            self._action_executor.spin()

    def destroy_node(self) -> None:
        """Stop the inference thread, end waiting goals, then destroy the node."""
        # Each step only if __init__ got that far (it raises on bad parameters).
        if hasattr(self, "_cond"):
            with self._cond:
                self._closing = True
                self._cond.notify_all()
        if hasattr(self, "_worker"):
            self._worker.stop()
        if hasattr(self, "_action_thread"):
            self._action_executor.shutdown(timeout_sec=5.0)
            self._action_thread.join(5.0)
            self._action.destroy()
            self._action_node.destroy_node()
        super().destroy_node()


def main(args: Sequence[str] | None = None) -> int:
    """``ros2 run tactile_grasp_predictor predictor_node``: spin until Ctrl-C, shut down cleanly."""
    # The inference thread re-takes the GIL after every torch op; with the input thread busy
    # the default 5 ms switch interval can stall each re-take. 0.5 ms keeps inference moving.
    sys.setswitchinterval(0.0005)
    return spin_node_main("predictor_node", PredictorNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
