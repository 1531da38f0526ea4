"""The ``EvaluateGrasp`` action of ``predictor_node``: wait for the next decision, feedback by phase.

A goal waits for the next ``GraspDecision`` the node publishes (the grasp in progress or the
next one) and returns it (SUCCEEDED, also for ABORTs); feedback names the session's phase;
when ``timeout_s`` runs out the result is the session's ABORT ``tb_timeout``, on cancel
``cancelled``. Goals block while they wait, so they run on a helper node
(``<name>_evaluate_grasp``) with its own small multi-threaded executor; the node's inputs
stay on their single-threaded executor. Thread-safety: the node's lock guards everything
here; :meth:`EvaluateGraspServer.record` and :meth:`EvaluateGraspServer.wake` are called
with it held.
"""

from __future__ import annotations

import contextlib
import math
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from rclpy.action import ActionServer, CancelResponse, GoalResponse
from rclpy.callback_groups import ReentrantCallbackGroup
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor
from rclpy.node import Node
from tactile_grasp_msgs.action import EvaluateGrasp
from tactile_grasp_msgs.msg import GraspDecision

from tactile_grasp_predictor.gate import Reason

MAX_GOALS = 8  # goals waiting at once; more are rejected


class EvaluateGraspServer:
    """Serves ``<node>/evaluate_grasp`` from the decisions and phases the node reports."""

    def __init__(
        self,
        node: Node,
        cond: threading.Condition,
        phase: Callable[[], str],
        no_decision: Callable[[str], GraspDecision],
        default_timeout_s: Callable[[], float],
    ) -> None:
        self._cond = cond
        self._phase = phase
        self._no_decision = no_decision
        self._default_timeout_s = default_timeout_s
        self._seq = 0
        self._recent: deque[tuple[int, GraspDecision]] = deque(maxlen=32)
        self._active = 0
        self._closing = False
        self._node = Node(f"{node.get_name()}_evaluate_grasp", namespace=node.get_namespace(),
                          context=node.context, start_parameter_services=False)
        self._server = ActionServer(
            self._node, EvaluateGrasp, f"{node.get_fully_qualified_name()}/evaluate_grasp",
            self._execute, goal_callback=self._on_goal, cancel_callback=lambda _goal: CancelResponse.ACCEPT,
            callback_group=ReentrantCallbackGroup(),
        )
        self._executor = MultiThreadedExecutor(num_threads=4, context=node.context)
        self._executor.add_node(self._node)
        self._thread = threading.Thread(target=self._spin, name="tgp-actions", daemon=True)
        self._thread.start()

    # -- called by the node, lock held
    def record(self, msg: GraspDecision) -> None:
        """Hand a published decision to the waiting goals."""
        self._seq += 1
        self._recent.append((self._seq, msg))
        self._cond.notify_all()

    def wake(self) -> None:
        """Wake the waiting goals: the phase changed, they send feedback."""
        self._cond.notify_all()

    # -- the action
    def _on_goal(self, _goal: EvaluateGrasp.Goal) -> GoalResponse:
        with self._cond:
            if self._closing or self._active >= MAX_GOALS:
                return GoalResponse.REJECT
            self._active += 1
        return GoalResponse.ACCEPT

    def _execute(self, goal_handle: Any) -> EvaluateGrasp.Result:
        result = EvaluateGrasp.Result()
        timeout = float(goal_handle.request.timeout_s)
        if not math.isfinite(timeout) or timeout <= 0.0:
            timeout = self._default_timeout_s()
        deadline = time.monotonic() + timeout
        sent_phase = ""
        try:
            with self._cond:
                start = self._seq
                while True:
                    found = next((m for s, m in self._recent if s > start), None)
                    if found is not None:
                        result.decision = found
                        goal_handle.succeed()
                        return result
                    if goal_handle.is_cancel_requested or self._closing:
                        result.decision = self._no_decision(Reason.CANCELLED)
                        if goal_handle.is_cancel_requested:
                            goal_handle.canceled()
                        else:
                            goal_handle.abort()
                        return result
                    if time.monotonic() >= deadline:
                        result.decision = self._no_decision(Reason.TB_TIMEOUT)
                        goal_handle.succeed()
                        return result
                    phase = self._phase()
                    if phase != sent_phase:
                        sent_phase = phase
                        goal_handle.publish_feedback(EvaluateGrasp.Feedback(phase=phase))
                    self._cond.wait(min(0.05, max(0.0, deadline - time.monotonic())))
        finally:
            with self._cond:
                self._active -= 1

    def _spin(self) -> None:
        with contextlib.suppress(ExternalShutdownException):
            self._executor.spin()

    def close(self) -> None:
        """End waiting goals (ABORT ``cancelled``), stop the executor, destroy the helper node."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        self._executor.shutdown(timeout_sec=5.0)
        self._thread.join(5.0)
        self._server.destroy()
        self._node.destroy_node()
