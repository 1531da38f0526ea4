"""One configuration of ``predictor_node``, from lifecycle configure to cleanup: :class:`GraspRuntime`.

It holds what a configure takes: the :class:`~tactile_grasp_predictor.session.GraspSession`,
the :class:`~tactile_grasp_predictor.inference.InferenceWorker` with the bundle, the sensor
health monitor, the debug image publisher and the resolved inputs. Its callbacks are the
adapter: convert a message, feed the session (:meth:`GraspRuntime.step`, under the node's
lock), publish what comes back (``~/decision``, the action's waiting goals, the log, the debug
image). :meth:`GraspRuntime.subscribe` (activate) starts the inputs and
:meth:`GraspRuntime.unsubscribe` (deactivate) stops them; a re-activation starts a fresh
session so no grasp spans an inactive period, its grasp ids continuing. A decision the worker
finishes after deactivation is dropped, never published.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.node import Node
from rclpy.publisher import Publisher
from sensor_msgs.msg import JointState
from std_msgs.msg import Bool
from tactile_grasp_msgs.msg import GraspDecision

from tactile_grasp_predictor.bundle_trigger import trigger_differences
from tactile_grasp_predictor.decision import Decision, Verdict
from tactile_grasp_predictor.errors import FrameError
from tactile_grasp_predictor.gate import Frame, PhaseChanged, Reason
from tactile_grasp_predictor.gripper import joint_state_effort, joint_state_width
from tactile_grasp_predictor.inference import InferenceWorker, PredictorLike
from tactile_grasp_predictor.node_config import NodeConfig
from tactile_grasp_predictor.recorder import GraspRecorder, RecorderConfig
from tactile_grasp_predictor.ros import inputs
from tactile_grasp_predictor.ros.conversions import decision_to_msg, stamp_to_float
from tactile_grasp_predictor.ros.debug_image import DebugImagePublisher
from tactile_grasp_predictor.sensor_health import SensorHealth, SensorReference
from tactile_grasp_predictor.session import GraspSession, Health, InferenceJob, SessionConfig, SessionOutput
from tactile_grasp_predictor.stage_times import StageTimes, stage_durations
from tactile_grasp_predictor.wsg import decode_status


class Host(Protocol):
    """What the runtime needs of its node besides rclpy's ``Node``: parameters and the action."""

    cfg: NodeConfig

    def record(self, msg: GraspDecision) -> None:
        """Hand a published decision to the action's goals (lock held)."""

    def wake(self) -> None:
        """Wake the action's goals: the phase changed (lock held)."""


def _owned(frame: Frame) -> Frame:
    """Return the frame, with a C-contiguous copy of its image if it is a strided view (BGR)."""
    if frame.image.flags.c_contiguous:
        return frame
    return dataclasses.replace(frame, image=np.ascontiguousarray(frame.image))


class GraspRuntime:
    """Session, model, inputs and outputs of one configuration (see the module docstring)."""

    def __init__(self, node: Node, host: Host, lock: threading.Lock, decision_pub: Publisher,
                 loader: Callable[[NodeConfig], PredictorLike], id_offset: int,
                 own_loader: bool = False) -> None:
        self._node, self._host, self._lock, self._pub = node, host, lock, decision_pub
        cfg = host.cfg
        log = node.get_logger()
        self.status_msg = (inputs.status_type(str(cfg["grasp_state_type"])) if cfg["grasp_state_topic"]
                           else None)
        self.inputs = {k: node.resolve_topic_name(t) for k, t in inputs.topics(cfg).items()}
        self.received = dict.fromkeys(self.inputs.values(), 0)
        self.session = GraspSession(SessionConfig.from_node_config(cfg))
        self.id_offset = id_offset  # grasp ids continue across activations and configurations
        self.frame_id = str(cfg["frame_id"])
        self.health = SensorHealth(None, float(cfg["sensor_drift_warn"]), "no model loaded")
        self.debug = DebugImagePublisher(node, "right_image" in self.inputs) if cfg["debug_image"] else None
        self.recorder = _recorder(cfg)  # record_dir: decided grasps into shards, on its own thread
        self.closing = False
        self._model: tuple[str, float | None] | None = None
        self._jobs: dict[int, GraspSession] = {}  # queued jobs → the session they belong to
        self._snapshots: dict[int, InferenceJob] = {}  # the last few grasps' jobs, for the debug image
        self.stages = StageTimes()  # where each model decision's time went (diagnostics stage_*_ms)
        self._marks: dict[str, float] = {}  # perf_counter marks of the callback now feeding the session
        self._job_marks: dict[int, dict[str, float]] = {}  # queued job -> its marks so far
        self._subs: list[Any] = []
        self._tick: Any = None
        self._activations = 0
        self._group = MutuallyExclusiveCallbackGroup()  # cheap callbacks, one at a time, never blocked
        self.bundle = str(cfg["bundle_path"])
        self.expects_model = bool(self.bundle) or own_loader  # own_loader: a tool's or a test's model
        if not self.expects_model:
            log.warning("bundle_path is not set: every grasp will ABORT model_unavailable")
        self.worker = InferenceWorker(
            lambda: loader(cfg), self._run_job, int(cfg["max_pending"]), cpus=cfg.inference_cpus,
            priority=int(cfg["inference_priority"]), warn=log.warning, on_loaded=self._on_loaded)

    @property
    def cfg(self) -> NodeConfig:
        """The node's parameters now (the dynamic ones may change while running)."""
        return self._host.cfg

    # ---------------------------------------------------------------- lifecycle
    def subscribe(self) -> None:
        """Start the inputs (activate); after the first activation, with a fresh session."""
        with self._lock:
            if self._activations:
                self.id_offset += self.session.grasp_id
                self.session = GraspSession(SessionConfig.from_node_config(self.cfg))
                if self._model is not None:
                    self.session.set_model(*self._model)
            self._activations += 1
        handlers = inputs.Handlers(self._on_image, self._on_right_image, self._on_joint_state,
                                   self._on_moving, self._on_status)
        self._subs = inputs.subscribe(self._node, self.cfg, handlers, self._group, self.status_msg)
        if self.recorder is not None:
            topic = str(self.cfg["record_outcome_topic"])
            self._subs.append(self._node.create_subscription(Bool, topic, self._on_outcome, 10,
                                                             callback_group=self._group))
        self._tick = self._node.create_timer(float(self.cfg["tick_period_s"]), self._on_tick,
                                             callback_group=self._group)

    def unsubscribe(self) -> None:
        """Stop the inputs (deactivate; also safe when not subscribed)."""
        inputs.destroy(self._node, self._subs)
        if self._tick is not None:
            self._node.destroy_timer(self._tick)
            self._tick = None

    @property
    def subscribed(self) -> bool:
        """Tell whether the inputs are on (the node is active)."""
        return self._tick is not None

    def close(self) -> int:
        """Stop the inputs and the worker, destroy the debug publisher; return the next grasp id offset."""
        self.unsubscribe()
        self.worker.stop()
        if self.debug is not None:
            self.debug.destroy()
        if self.recorder is not None:
            self.recorder.close()  # the queued grasps are written, the shards complete
        return self.id_offset + self.session.grasp_id

    def diagnostics(self, now: float) -> tuple[Health, Health]:
        """Return the grasp gate's and the sensor's health (lock held)."""
        gate = self.session.health(now, self.worker.status())
        gate.values["right_frames_received"] = str(self.received.get(self.inputs.get("right_image", ""), 0))
        if self.recorder is not None:
            gate.values.update(self.recorder.values())
        gate.values.update(self.stages.values())
        return gate, self.health.report()

    # ---------------------------------------------------------------- inputs (cheap; never block)
    def now_s(self) -> float:
        """Return the node's clock (ROS time; simulated under use_sim_time) in seconds: the receive clock."""
        return self._node.get_clock().now().nanoseconds * 1e-9

    def _count(self, kind: str) -> None:
        """Count a message of an input topic once its receive time is read (``received``; lockstep replay)."""
        self.received[self.inputs[kind]] += 1

    def step(self, feed: Callable[[GraspSession], Sequence[SessionOutput]],
             marks: dict[str, float] | None = None) -> None:
        """Feed the session under the lock, publish what it says, draw the decisions outside the lock.

        ``marks``: the callback's ``perf_counter`` readings so far (see
        :mod:`~tactile_grasp_predictor.stage_times`).
        """
        marks = marks or {"start": time.perf_counter()}
        with self._lock:
            self._marks = marks
            decided = self._emit(feed(self.session))
        self._draw(decided)

    def touch(self, change: Callable[[GraspSession], None]) -> None:
        """Update the session under the lock (an input that gives no output)."""
        with self._lock:
            change(self.session)

    def _on_image(self, msg: Any) -> None:
        start = time.perf_counter()
        recv = self.now_s()
        self._count("image")
        try:
            rgb = inputs.decode(self.cfg, msg, self.inputs["image"])
        except (FrameError, ValueError) as exc:
            with self._lock:
                self.session.on_bad_frame(recv, str(exc))
                n = self.session.counts.bad_frames
            if n == 1 or n % 100 == 0:
                self._node.get_logger().warning(f"bad frame #{n}: {exc}")
            return
        decoded = time.perf_counter()
        stamp = stamp_to_float(msg.header.stamp)

        def feed(s: GraspSession) -> Sequence[SessionOutput]:
            if not self.cfg["frame_id"]:
                self.frame_id = msg.header.frame_id
            if s.gate.phase == "waiting":  # the gripper is open: no contact
                self.health.add_idle(rgb, recv)
            return s.on_frame(stamp, recv, rgb)

        self.step(feed, {"start": start, "decode": decoded})

    def _on_right_image(self, msg: Any) -> None:
        self._count("right_image")
        if self.debug is None or not self.debug.wanted():
            return
        try:
            rgb = inputs.decode(self.cfg, msg, self.inputs["right_image"])
        except (FrameError, ValueError):
            return  # a missing frame in the debug image; decisions do not use the right finger
        stamp = stamp_to_float(msg.header.stamp)
        self.debug.add_right(stamp if stamp is not None else self.now_s(), rgb)

    def _on_joint_state(self, msg: JointState) -> None:
        recv = self.now_s()
        self._count("joint_states")
        width, why = joint_state_width(msg.name, msg.position, self.cfg.joints)
        if width is None:  # other joints on a shared topic are normal: counted, not fed
            self.touch(lambda s: s.on_ignored_gripper(why))
            return
        effort = joint_state_effort(msg.name, msg.effort, self.cfg.joints)  # contact evidence, as offline
        self.step(lambda s: s.on_gripper_width(stamp_to_float(msg.header.stamp), recv, width, effort))

    def _on_moving(self, msg: Bool) -> None:
        self._count("moving")
        self.touch(lambda s: s.on_moving(bool(msg.data)))

    def _on_status(self, msg: Any) -> None:
        recv = self.now_s()
        self._count("grasp_state")
        try:
            status = decode_status(str(self.cfg["grasp_state_variant"]), msg)
        except ValueError as exc:
            why = f"{self.cfg['grasp_state_topic']}: {exc}"
            self.touch(lambda s: s.on_ignored_gripper(why))
            return
        header = getattr(msg, "header", None)  # the ROS 1 style status has none
        stamp = stamp_to_float(header.stamp) if header is not None else None
        self.step(lambda s: s.on_status(stamp, recv, status.state, status.width_m, status.moving,
                                        has_header=header is not None))

    def _on_outcome(self, msg: Bool) -> None:
        if self.recorder is not None:
            self.recorder.outcome(bool(msg.data))

    def _on_tick(self) -> None:
        recv = self.now_s()
        self.step(lambda s: s.on_tick(recv))

    # ---------------------------------------------------------------- the model (worker thread)
    def _on_loaded(self, predictor: PredictorLike | None, error: str) -> None:
        """Once: the model's id, threshold and sensor statistics go into the session and the monitor."""
        log = self._node.get_logger()
        if predictor is None:
            if self.expects_model:  # unset was a warning at configure
                log.error(f"model unavailable, every grasp will ABORT: {error}")
            return
        manifest = getattr(getattr(predictor, "bundle", None), "manifest", None)
        reference, why = SensorReference.from_manifest(manifest)
        differing = trigger_differences(manifest if isinstance(manifest, dict) else None, self.cfg.trigger)
        if differing:  # once per configuration: the frames the node picks are not the training frames
            log.warning("trigger settings differ from those the bundle's training frames were taken with: "
                        + ", ".join(f"trigger.{k} is {ours!r}, the bundle's {theirs!r}"
                                    for k, (theirs, ours) in differing.items()))
        with self._lock:
            self._model = (str(predictor.model_id), getattr(predictor, "threshold", None))
            self.session.set_model(*self._model)
            self.health = SensorHealth(reference, float(self.cfg["sensor_drift_warn"]), why)
        log.info(f"model {predictor.model_id} loaded from {self.bundle or '(loader)'}")

    def _run_job(self, job: InferenceJob, predictor: PredictorLike | None) -> None:
        """Run the model outside the lock, then stamp and publish the decision under it."""
        taken = time.perf_counter()
        with self._lock:
            session = self._jobs.pop(id(job), None)
            marks = self._job_marks.pop(id(job), None)
        if session is None:
            return
        if predictor is not None:  # frames may be strided views of message buffers: own the two used
            job = dataclasses.replace(job, snapshot=dataclasses.replace(
                job.snapshot, ta=_owned(job.snapshot.ta), tb=_owned(job.snapshot.tb)))
        copied = time.perf_counter()
        decision = session.decide(job, predictor)
        end = self.now_s()
        predicted = time.perf_counter()
        with self._lock:
            outputs = session.complete(job, decision, end)
            if session is not self.session or not self.subscribed:
                self._node.get_logger().info(f"grasp {decision.grasp_id} decided after deactivation: dropped")
                return
            decided = self._emit(outputs)
        if marks is not None and predictor is not None:
            marks.update(queue=taken, copy=copied, predict=predicted, publish=time.perf_counter())
            self.stages.add(stage_durations(marks))
        self._draw(decided)

    # ---------------------------------------------------------------- outputs (lock held)
    def _emit(self, outputs: Sequence[SessionOutput]) -> list[Decision]:
        """Act on the session's outputs; return the decisions published."""
        decided = []
        for out in outputs:
            if isinstance(out, PhaseChanged):
                self._host.wake()
            elif isinstance(out, InferenceJob):
                self._host.wake()
                self.health.add(out.snapshot.ta.pixels())  # Ta is before contact
                self._jobs[id(out)] = self.session
                self._job_marks[id(out)] = {**self._marks, "feed": time.perf_counter()}
                if self.debug is not None or self.recorder is not None:
                    self._snapshots[out.snapshot.grasp_id] = out
                    while len(self._snapshots) > 4:
                        del self._snapshots[min(self._snapshots)]
                if not self.worker.submit(out):
                    del self._jobs[id(out)]
                    self._job_marks.pop(id(out), None)
                    decided += self._emit(self.session.reject(out, Reason.OVERLOADED, self.now_s()))
            else:
                self._publish(out)
                decided.append(out)
        return decided

    def numbered_grasp_id(self) -> int:
        """Return the current or last grasp's id counted since the node started (lock held)."""
        return self.id_offset + self.session.grasp_id

    def numbered(self, decision: Decision) -> Decision:
        """Return the decision with its grasp id counted since the node started."""
        return dataclasses.replace(decision, grasp_id=decision.grasp_id + self.id_offset)

    def _publish(self, decision: Decision) -> None:
        decision = self.numbered(decision)
        msg = decision_to_msg(decision, self.frame_id, self._node.get_clock().now().to_msg())
        if not self.closing:
            self._pub.publish(msg)
        self._host.record(msg)
        text = (f"grasp {msg.grasp_id}: {decision.verdict.name} ({msg.reason}, p={msg.p_success:.3f}, "
                f"{msg.latency_ms:.1f} ms)")
        # rclpy forbids one call site with two severities: two call sites.
        if decision.verdict == Verdict.LIFT or msg.reason in (Reason.MODEL, Reason.NO_PART_FOUND):
            self._node.get_logger().info(text)
        else:
            self._node.get_logger().warning(text)

    def _draw(self, decided: list[Decision]) -> None:
        """Offer each decision, with its grasp's Ta/Tb if known, to the debug image and the recorder."""
        if self.debug is not None:
            for d in decided:
                self.debug.offer(self.numbered(d), self._snapshots.get(d.grasp_id), self.frame_id)
        if self.recorder is not None:
            for d in decided:  # a non-blocking put: the writing happens on the recorder's thread
                job = self._snapshots.get(d.grasp_id)
                snap = job.snapshot if job is not None else None  # an ABORT before Tb: no frames
                same = snap is not None and (snap.ta.stamp, snap.tb.stamp) == (d.ta_stamp, d.tb_stamp)
                self.recorder.add(self.numbered(d), snap if same else None)


def _recorder(cfg: NodeConfig) -> GraspRecorder | None:
    """Return the recorder ``record_dir`` asks for (None: off)."""
    if not cfg["record_dir"]:
        return None
    return GraspRecorder(RecorderConfig(
        Path(str(cfg["record_dir"])), int(cfg["record_queue_size"]), int(cfg["record_shard_trials"]),
        float(cfg["record_outcome_timeout_s"])))
