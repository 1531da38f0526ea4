"""``predictor_node``: LIFT / ABORT for each grasp from GelSight frames and the gripper state.

Inputs: the left GelSight ``sensor_msgs/Image`` stream (sensor-data QoS: best effort,
which also matches reliable drivers), the gripper's ``sensor_msgs/JointState``, and
optionally a ``std_msgs/Bool`` moving flag and a WSG status message. Outputs:
``tactile_grasp_msgs/GraspDecision`` on ``~/decision`` (reliable), the ``EvaluateGrasp``
action on ``~/evaluate_grasp`` (:mod:`~tactile_grasp_predictor.ros.evaluate_grasp`) and
``/diagnostics``.

This node is an adapter: each callback converts its message into plain values, hands them to
the :class:`~tactile_grasp_predictor.session.GraspSession` (the decision policy ``tgp bag
eval`` runs too) and publishes what comes back. The model runs on an
:class:`~tactile_grasp_predictor.inference.InferenceWorker` thread, so frames and gripper
samples are never held up by inference. Every failure (no or corrupt bundle, no frames,
malformed frames, gripper silence, Tb timeout) is an ABORT with a reason, never a crash and
never a LIFT.
"""

from __future__ import annotations

import dataclasses
import importlib
import sys
import threading
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
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
from tactile_grasp_msgs.msg import GraspDecision

from tactile_grasp_predictor.decision import Decision, Verdict
from tactile_grasp_predictor.errors import ConfigError, FrameError
from tactile_grasp_predictor.gate import Frame, PhaseChanged, Reason
from tactile_grasp_predictor.gripper import joint_state_width
from tactile_grasp_predictor.inference import InferenceWorker, PredictorLike, load_predictor
from tactile_grasp_predictor.node_config import PARAMETERS, NodeConfig
from tactile_grasp_predictor.ros.conversions import (
    decision_to_msg,
    health_to_msg,
    image_to_rgb,
    stamp_to_float,
)
from tactile_grasp_predictor.ros.evaluate_grasp import EvaluateGraspServer
from tactile_grasp_predictor.ros.params import declare_all, make_set_callback
from tactile_grasp_predictor.ros.spin import spin_node_main
from tactile_grasp_predictor.session import GraspSession, InferenceJob, SessionConfig, SessionOutput
from tactile_grasp_predictor.wsg import decode_status


def load_bundle(cfg: NodeConfig) -> PredictorLike:
    """Load the bundle the parameters name (``bundle_path``, ``backend``, ``device``, ``num_threads``)."""
    return load_predictor(str(cfg["bundle_path"]), backend=str(cfg["backend"]), device=str(cfg["device"]),
                          num_threads=int(cfg["num_threads"]))


def _owned(frame: Frame) -> Frame:
    """Return the frame, with a C-contiguous copy of its image if it is a strided view (BGR)."""
    if frame.image.flags.c_contiguous:
        return frame
    return dataclasses.replace(frame, image=np.ascontiguousarray(frame.image))


class PredictorNode(Node):
    """The grasp-gating node (see the module docstring)."""

    def __init__(
        self,
        node_name: str = "predictor_node",
        *,
        loader: Callable[[NodeConfig], PredictorLike] = load_bundle,
        **kwargs: Any,
    ) -> None:
        super().__init__(node_name, **kwargs)
        self.cfg = NodeConfig.from_values(declare_all(self, PARAMETERS))
        self._lock = threading.Lock()  # guards the session and the action's state
        self._cond = threading.Condition(self._lock)
        self._session = GraspSession(SessionConfig.from_node_config(self.cfg))
        self._frame_id = str(self.cfg["frame_id"])
        self._clock_problem = ("", "")
        self._closing = False
        self._worker = InferenceWorker(
            lambda: loader(self.cfg), self._run_job, int(self.cfg["max_pending"]),
            cpus=self.cfg.inference_cpus, priority=int(self.cfg["inference_priority"]),
            warn=self.get_logger().warning, on_loaded=self._on_loaded)

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
        self._inputs = {kind: self.resolve_topic_name(str(self.cfg[f"{kind}_topic"])) for kind in (
            "image", "joint_states", "moving", "grasp_state") if self.cfg[f"{kind}_topic"]}
        self._received = dict.fromkeys(self._inputs.values(), 0)
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
        # rclpy's multi-threaded executor costs ~5x the CPU per message (measured: 640x480 frames
        # at 60 Hz + JointStates at 200 Hz took 85 % of a core vs 17 %): the action's blocking
        # goals get an executor of their own, the inputs stay single-threaded.
        self._action = EvaluateGraspServer(
            self, self._cond, lambda: self._session.phase, self._no_decision,
            lambda: float(self.cfg["evaluate_timeout_s"]))
        self.add_on_set_parameters_callback(
            make_set_callback(PARAMETERS, lambda: dict(self.cfg.values), self._cross_check, self._apply))
        self.get_logger().info(
            f"listening to {self.cfg['image_topic']} and {self.cfg['joint_states_topic']}; "
            f"bundle {self.cfg['bundle_path'] or '(none)'}")

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
            self._session.reconfigure(SessionConfig.from_node_config(cfg))
            self._frame_id = str(cfg["frame_id"])
            self.cfg = cfg

    def _status_type(self) -> Any:
        pkg, _, name = str(self.cfg["grasp_state_type"]).split("/")
        try:
            return getattr(importlib.import_module(f"{pkg}.msg"), name)
        except (ImportError, AttributeError) as exc:
            raise ConfigError(
                f"grasp_state_type: cannot import {self.cfg['grasp_state_type']!r}: {exc}") from exc

    # ---------------------------------------------------------------- inputs (cheap; never block)
    def now_s(self) -> float:
        """Return this node's clock (ROS time; simulated under use_sim_time) in seconds: the receive clock."""
        return self.get_clock().now().nanoseconds * 1e-9

    def _count(self, kind: str) -> None:
        """Count a message of an input topic once its receive time is read (``received``; lockstep replay)."""
        self._received[self._inputs[kind]] += 1

    def _on_image(self, msg: Image) -> None:
        recv = self.now_s()
        self._count("image")
        try:
            rgb = image_to_rgb(msg, tuple(self.cfg["image_encodings"]), self.cfg["image_topic"])
        except (FrameError, ValueError) as exc:
            with self._lock:
                self._session.on_bad_frame(recv, str(exc))
                n = self._session.counts.bad_frames
            if n == 1 or n % 100 == 0:
                self.get_logger().warning(f"bad frame #{n}: {exc}")
            return
        with self._lock:
            if not self.cfg["frame_id"]:
                self._frame_id = msg.header.frame_id
            self._emit(self._session.on_frame(stamp_to_float(msg.header.stamp), recv, rgb))

    def _on_joint_state(self, msg: JointState) -> None:
        recv = self.now_s()
        self._count("joint_states")
        width, why = joint_state_width(msg.name, msg.position, self.cfg.joints)
        with self._lock:
            if width is None:  # other joints on a shared topic are normal: counted, not fed
                self._session.on_ignored_gripper(why)
                return
            self._emit(self._session.on_gripper_width(stamp_to_float(msg.header.stamp), recv, width))

    def _on_moving(self, msg: Bool) -> None:
        self._count("moving")
        with self._lock:
            self._session.on_moving(bool(msg.data))

    def _on_status(self, msg: Any) -> None:
        recv = self.now_s()
        self._count("grasp_state")
        try:
            status = decode_status(str(self.cfg["grasp_state_variant"]), msg)
        except ValueError as exc:
            with self._lock:
                self._session.on_ignored_gripper(f"{self.cfg['grasp_state_topic']}: {exc}")
            return
        header = getattr(msg, "header", None)  # the ROS 1 style status has none
        stamp = stamp_to_float(header.stamp) if header is not None else None
        with self._lock:
            self._emit(self._session.on_status(stamp, recv, status.state, status.width_m, status.moving,
                                               has_header=header is not None))

    def _on_tick(self) -> None:
        recv = self.now_s()
        with self._lock:
            self._emit(self._session.on_tick(recv))

    # ---------------------------------------------------------------- session outputs (lock held)
    def _emit(self, outputs: Sequence[SessionOutput]) -> None:
        for out in outputs:
            if isinstance(out, PhaseChanged):
                self._action.wake()
            elif isinstance(out, InferenceJob):
                self._action.wake()
                if not self._worker.submit(out):
                    self._emit(self._session.reject(out, Reason.OVERLOADED, self.now_s()))
            else:
                self._publish(out)

    def _on_loaded(self, predictor: PredictorLike | None, error: str) -> None:
        """Worker thread, once: the model's id and threshold go into the session."""
        if predictor is None:
            self.get_logger().error(f"model unavailable ({error}): every grasp will ABORT model_unavailable")
            return
        with self._lock:
            self._session.set_model(str(predictor.model_id), getattr(predictor, "threshold", None))

    def _run_job(self, job: InferenceJob, predictor: PredictorLike | None) -> None:
        """Worker thread: the model outside the lock, then the stamped decision under it."""
        if predictor is not None:  # frames may be strided views of message buffers: own the two used
            job = dataclasses.replace(job, snapshot=dataclasses.replace(
                job.snapshot, ta=_owned(job.snapshot.ta), tb=_owned(job.snapshot.tb)))
        decision = self._session.decide(job, predictor)
        end = self.now_s()
        with self._lock:
            self._emit(self._session.complete(job, decision, end))

    def _publish(self, decision: Decision) -> None:
        msg = decision_to_msg(decision, self._frame_id, self.get_clock().now().to_msg())
        if not self._closing:
            self._decision_pub.publish(msg)
        self._action.record(msg)
        text = (f"grasp {msg.grasp_id}: {decision.verdict.name} ({msg.reason}, p={msg.p_success:.3f}, "
                f"{msg.latency_ms:.1f} ms)")
        # rclpy forbids one call site with two severities: two call sites.
        if decision.verdict == Verdict.LIFT or msg.reason in (Reason.MODEL, Reason.NO_PART_FOUND):
            self.get_logger().info(text)
        else:
            self.get_logger().warning(text)

    def _no_decision(self, reason: str) -> GraspDecision:
        """Build the action's ABORT for a goal that saw no decision (lock held)."""
        decision = self._session.no_decision(reason, self.now_s())
        return decision_to_msg(decision, self._frame_id, self.get_clock().now().to_msg())

    def _publish_diagnostics(self) -> None:
        now = self.now_s()
        with self._lock:
            health = self._session.health(now, self._worker.status())
        health.values["bundle_path"] = str(self.cfg["bundle_path"])
        if health.clock_problem[0] != self._clock_problem[0]:  # log a clock problem when its kind changes
            self._clock_problem = health.clock_problem
            if health.clock_problem[0] == "warn":
                self.get_logger().warning(health.clock_problem[1])
            elif health.clock_problem[0] == "info":
                self.get_logger().info(health.clock_problem[1])
        self._diag_pub.publish(health_to_msg(health, f"{self.get_name()}: grasp gate",
                                             self._frame_id or "gelsight", self.get_clock().now().to_msg()))

    # ---------------------------------------------------------------- state for tests and tools
    @property
    def model_ready(self) -> threading.Event:
        """Set once the model finished loading (or failed to)."""
        return self._worker.loaded

    @property
    def phase(self) -> str:
        """The session's phase (waiting · closing · settling · predicting)."""
        with self._lock:
            return self._session.phase

    @property
    def received(self) -> dict[str, int]:
        """Messages received so far per input topic (resolved name); for tools such as a lockstep replay."""
        return self._received

    @property
    def session(self) -> GraspSession:
        """The decision session (read it under no assumption of consistency while the node spins)."""
        return self._session

    @property
    def worker(self) -> InferenceWorker:
        """The inference worker (its status, its thread)."""
        return self._worker

    def destroy_node(self) -> None:
        """Stop the inference thread, end waiting goals, then destroy the node."""
        # Each step only if __init__ got that far (it raises on bad parameters).
        if hasattr(self, "_cond"):
            with self._cond:
                self._closing = True
        if hasattr(self, "_worker"):
            self._worker.stop()
        if hasattr(self, "_action"):
            self._action.close()
        super().destroy_node()


def main(args: Sequence[str] | None = None) -> int:
    """``ros2 run tactile_grasp_predictor predictor_node``: spin until Ctrl-C, shut down cleanly."""
    # The inference thread re-takes the GIL after every torch op; with the input thread busy
    # the default 5 ms switch interval can stall each re-take. 0.5 ms keeps inference moving.
    sys.setswitchinterval(0.0005)
    return spin_node_main("predictor_node", PredictorNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
