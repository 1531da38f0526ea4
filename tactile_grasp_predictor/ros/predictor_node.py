"""``predictor_node``: LIFT / ABORT for each grasp from GelSight frames and the gripper state.

Inputs (:mod:`~tactile_grasp_predictor.ros.inputs`, relative names in the node's namespace):
the left GelSight stream (``Image``, or ``CompressedImage`` with ``image_transport:
compressed``), optionally the right one, the gripper's ``JointState``, optionally a moving
flag and a WSG status, each with a selectable QoS. Outputs: ``~/decision``
(``GraspDecision``), ``~/arm`` and the ``EvaluateGrasp`` action on ``~/evaluate_grasp``
(:mod:`~tactile_grasp_predictor.ros.evaluate_grasp`), ``/diagnostics`` (grasp gate and sensor
health) and, with ``debug_image``, ``~/debug_image`` while someone watches.

A lifecycle node (:class:`~tactile_grasp_predictor.ros.lifecycle.ManagedNode`): ``configure``
builds a :class:`~tactile_grasp_predictor.ros.grasp_runtime.GraspRuntime` and loads the bundle
(managed: a bundle that fails to load fails the transition), ``activate`` subscribes,
``deactivate`` stops deciding, ``cleanup`` unloads; so a bundle is swapped by cleanup, set
``bundle_path``, configure, activate, without a restart. ``managed: false`` (the default)
configures and activates at start-up, as a plain node.

An adapter: each callback converts its message, feeds the
:class:`~tactile_grasp_predictor.session.GraspSession` (the policy ``tgp bag eval`` runs too)
and publishes what comes back; the model runs on an inference thread. Every failure (no or
corrupt bundle, no frames, malformed frames, gripper silence, Tb timeout) is an ABORT with a
reason, never a crash and never a LIFT.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Sequence
from typing import Any

from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.qos import QoSDurabilityPolicy, QoSHistoryPolicy, QoSProfile, QoSReliabilityPolicy
from tactile_grasp_msgs.msg import GraspDecision

from tactile_grasp_predictor.errors import BundleError, ConfigError
from tactile_grasp_predictor.inference import InferenceWorker, PredictorLike, load_predictor
from tactile_grasp_predictor.node_config import PARAMETERS, NodeConfig
from tactile_grasp_predictor.ros.conversions import decision_to_msg
from tactile_grasp_predictor.ros.debug_image import DebugImagePublisher
from tactile_grasp_predictor.ros.diagnostics import DiagnosticsPublisher
from tactile_grasp_predictor.ros.evaluate_grasp import EvaluateGraspServer
from tactile_grasp_predictor.ros.grasp_runtime import GraspRuntime
from tactile_grasp_predictor.ros.lifecycle import ManagedNode
from tactile_grasp_predictor.ros.params import declare_all, make_set_callback, unknown_parameters
from tactile_grasp_predictor.ros.spin import spin_node_main
from tactile_grasp_predictor.session import GraspSession, SessionConfig

DECISION_QOS = QoSProfile(depth=10, reliability=QoSReliabilityPolicy.RELIABLE,
                          durability=QoSDurabilityPolicy.VOLATILE, history=QoSHistoryPolicy.KEEP_LAST)
LOAD_WAIT_S = 600.0  # a managed configure waits this long for the bundle to load


def load_bundle(cfg: NodeConfig) -> PredictorLike:
    """Load the bundle the parameters name (``bundle_path``, ``backend``, ``device``, ``num_threads``)."""
    return load_predictor(str(cfg["bundle_path"]), backend=str(cfg["backend"]), device=str(cfg["device"]),
                          num_threads=int(cfg["num_threads"]))


class PredictorNode(ManagedNode):
    """The grasp-gating node (see the module docstring)."""

    def __init__(self, node_name: str = "predictor_node", *,
                 loader: Callable[[NodeConfig], PredictorLike] = load_bundle, **kwargs: Any) -> None:
        super().__init__(node_name, **kwargs)
        self.cfg = NodeConfig.from_values(declare_all(self, PARAMETERS, configure_time=True))
        for text in unknown_parameters(self, PARAMETERS):
            self.get_logger().warning(text)
        self._loader = loader
        self._lock = threading.Lock()  # guards the runtime's session and the action's state
        self._cond = threading.Condition(self._lock)
        self._run: GraspRuntime | None = None
        self._id_offset = 0  # grasp ids continue across configurations
        self._closing = False
        self._decision_pub = self.create_publisher(GraspDecision, "~/decision", DECISION_QOS)
        self._diagnostics = DiagnosticsPublisher(self)
        self._diag_timer: Any = None
        # rclpy's multi-threaded executor costs ~5x the CPU per message (measured: 640x480 frames
        # at 60 Hz + JointStates at 200 Hz took 85 % of a core vs 17 %): the action's blocking
        # goals get an executor of their own, the inputs stay single-threaded.
        self._action = EvaluateGraspServer(
            self, self._cond, lambda: self.phase_locked, self._no_decision,
            lambda: float(self.cfg["evaluate_timeout_s"]), lambda: self.lifecycle_state,
            lambda: self._run.numbered_grasp_id() if self._run else self._id_offset)
        self.add_on_set_parameters_callback(make_set_callback(
            PARAMETERS, lambda: dict(self.cfg.values), self._cross_check, self._apply,
            lambda: self.lifecycle_state))
        try:
            self.start(managed=bool(self.cfg["managed"]))
        except BaseException:
            self.destroy_node()
            raise

    # ---------------------------------------------------------------- lifecycle
    def configure(self) -> None:
        """Check the inputs, start loading ``bundle_path`` (managed: wait; a failed load refuses)."""
        run = GraspRuntime(self, self, self._lock, self._decision_pub, self._loader, self._id_offset,
                           own_loader=self._loader is not load_bundle)
        self._run = run
        self._diag_timer = self.create_timer(float(self.cfg["diagnostics_period_s"]),
                                             self._publish_diagnostics,
                                             callback_group=MutuallyExclusiveCallbackGroup())
        if self.cfg["managed"] and run.expects_model:
            run.worker.loaded.wait(LOAD_WAIT_S)
            if run.worker.predictor is None:
                raise BundleError(f"bundle_path {run.bundle}: {run.worker.error or 'still loading'}")
        self.get_logger().info(f"configured: inputs {', '.join(run.inputs.values())}; "
                               f"bundle {run.bundle or '(none)'}")

    def activate(self) -> None:
        """Subscribe to the inputs and decide."""
        assert self._run is not None
        self._run.subscribe()

    def deactivate(self) -> None:
        """Stop deciding: unsubscribe; waiting goals end ``INACTIVE``; a decision in progress is dropped."""
        if self._run is not None:
            self._run.unsubscribe()
        with self._cond:
            self._action.wake()

    def cleanup(self) -> None:
        """Unload the model and free what :meth:`configure` took."""
        if self._diag_timer is not None:
            self.destroy_timer(self._diag_timer)
            self._diag_timer = None
        run, self._run = self._run, None
        if run is not None:
            self._id_offset = run.close()

    # ---------------------------------------------------------------- the runtime's host
    def record(self, msg: GraspDecision) -> None:
        """Hand a published decision to the action (lock held)."""
        self._action.record(msg)

    def wake(self) -> None:
        """Wake the action's goals (lock held)."""
        self._action.wake()

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
            if self._run is not None:
                self._run.session.reconfigure(SessionConfig.from_node_config(cfg))
                self._run.health.warn = float(cfg["sensor_drift_warn"])
                self._run.frame_id = str(cfg["frame_id"]) or self._run.frame_id
            self.cfg = cfg

    # ---------------------------------------------------------------- action and diagnostics
    @property
    def phase_locked(self) -> str:
        """The session's phase; call with the lock held."""
        return self._run.session.phase if self._run is not None else "waiting"

    def _no_decision(self, reason: str) -> GraspDecision:
        """Build the action's ABORT for a goal that saw no decision (lock held)."""
        run, now = self._run, self.get_clock().now()
        t = now.nanoseconds * 1e-9
        if run is None:
            return decision_to_msg(GraspSession().no_decision(reason, t), "", now.to_msg())
        return decision_to_msg(run.numbered(run.session.no_decision(reason, t)), run.frame_id, now.to_msg())

    def _publish_diagnostics(self) -> None:
        with self._lock:
            run = self._run
            if run is None:
                return
            gate, sensor = run.diagnostics(run.now_s())
            frame_id = run.frame_id
        self._diagnostics.publish(gate, sensor, self.lifecycle_state, frame_id or "gelsight",
                                  {"bundle_path": run.bundle})

    # ---------------------------------------------------------------- state for tests and tools
    @property
    def model_ready(self) -> threading.Event:
        """Set once the model finished loading (or failed to); never set while unconfigured."""
        return self._run.worker.loaded if self._run is not None else threading.Event()

    @property
    def phase(self) -> str:
        """The session's phase (waiting · closing · settling · predicting)."""
        with self._lock:
            return self.phase_locked

    @property
    def received(self) -> dict[str, int]:
        """Messages received so far per input topic (resolved name); for tools such as a lockstep replay."""
        return self._run.received if self._run is not None else {}

    @property
    def input_topics(self) -> dict[str, str]:
        """The resolved topic of each configured input kind (``image``, ``joint_states``, …)."""
        return dict(self._run.inputs) if self._run is not None else {}

    @property
    def session(self) -> GraspSession | None:
        """The decision session (``None`` while unconfigured; no consistency guarantee while spinning)."""
        return self._run.session if self._run is not None else None

    @property
    def worker(self) -> InferenceWorker | None:
        """The inference worker (its status, its thread); ``None`` while unconfigured."""
        return self._run.worker if self._run is not None else None

    @property
    def debug_image(self) -> DebugImagePublisher | None:
        """The debug image publisher (``debug_image: true`` and configured), for its counters."""
        return self._run.debug if self._run is not None else None

    def destroy_node(self) -> None:
        """Stop the inference thread, end waiting goals, then destroy the node."""
        # Each step only if __init__ got that far (it raises on bad parameters).
        if hasattr(self, "_cond"):
            with self._cond:
                self._closing = True
                if self._run is not None:
                    self._run.closing = True
        if hasattr(self, "_run"):
            self.deactivate()
            self.cleanup()
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
