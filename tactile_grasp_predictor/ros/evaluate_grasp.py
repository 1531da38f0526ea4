"""``~/evaluate_grasp`` and ``~/arm`` of ``predictor_node``: a grasp's decision for a pick pipeline.

The contract (docs/node.md, "Integration contract"):

1. ``~/arm`` (``tactile_grasp_msgs/srv/ArmGrasp``), called before the gripper closes, returns
   an ``arm_token``: the number the next published decision will carry.
2. An ``EvaluateGrasp`` goal with that ``arm_token`` returns the first decision published
   after arming, *even one published before the goal arrived* (a pipeline that closes, then
   asks, cannot miss a fast decision). With ``arm_token`` 0 the goal waits for the next
   decision published after it arrives.
3. The result carries the ``GraspDecision`` (``reason`` and its stable ``reason_code``) and
   an ``error_code``: ``NONE`` when the decision is a grasp's, else ``TIMEOUT`` (ABORT
   ``tb_timeout`` after ``timeout_s``), ``CANCELLED``, ``INACTIVE`` (the lifecycle node is
   not active: it decides nothing) or ``ARM_EXPIRED`` (the armed decision is no longer
   held: the node keeps the last :data:`KEPT` decisions). A goal always SUCCEEDS except when
   cancelled (CANCELED) or when the node shuts down (ABORTED); feedback names the phase.

Goals block while they wait, so they (and ``~/arm``) run on a helper node
(``<name>_evaluate_grasp``) with its own small multi-threaded executor; the node's inputs
stay on their single-threaded executor. Thread-safety: the node's lock guards everything
here; :meth:`EvaluateGraspServer.record`, :meth:`EvaluateGraspServer.wake` and
:meth:`EvaluateGraspServer.set_active` are called with it held.
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
from tactile_grasp_msgs.srv import ArmGrasp

from tactile_grasp_predictor.gate import Reason

MAX_GOALS = 8  # goals waiting at once; more are rejected
KEPT = 32  # decisions kept for armed goals
#: Reasons of decisions the action makes itself (besides ``tb_timeout`` and ``cancelled``).
INACTIVE = "inactive"
ARM_EXPIRED = "arm_expired"
Result = EvaluateGrasp.Result


class EvaluateGraspServer:
    """Serves ``<node>/evaluate_grasp`` and ``<node>/arm`` from the decisions and phases the node reports."""

    def __init__(
        self,
        node: Node,
        cond: threading.Condition,
        phase: Callable[[], str],
        no_decision: Callable[[str], GraspDecision],
        default_timeout_s: Callable[[], float],
        state: Callable[[], str],
        grasp_id: Callable[[], int],
    ) -> None:
        self._cond = cond
        self._phase = phase
        self._no_decision = no_decision
        self._default_timeout_s = default_timeout_s
        self._state = state  # the lifecycle state's label: goals are served while "active"
        self._grasp_id = grasp_id
        self._seq = 0  # decisions recorded so far; the next one gets seq + 1
        self._recent: deque[tuple[int, GraspDecision]] = deque(maxlen=KEPT)
        self._waiting = 0
        self._closing = False
        self._node = Node(f"{node.get_name()}_evaluate_grasp", namespace=node.get_namespace(),
                          context=node.context, start_parameter_services=False)
        group = ReentrantCallbackGroup()
        fqn = node.get_fully_qualified_name()
        self._server = ActionServer(
            self._node, EvaluateGrasp, f"{fqn}/evaluate_grasp", self._execute, goal_callback=self._on_goal,
            cancel_callback=lambda _goal: CancelResponse.ACCEPT, callback_group=group,
        )
        self._arm = self._node.create_service(ArmGrasp, f"{fqn}/arm", self._on_arm, callback_group=group)
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
        """Wake the waiting goals: the phase or the lifecycle state changed."""
        self._cond.notify_all()

    # -- the service and the action
    def _on_arm(self, _request: ArmGrasp.Request, response: ArmGrasp.Response) -> ArmGrasp.Response:
        with self._cond:
            response.arm_token = self._seq + 1
            response.active = self._state() == "active"
            response.phase = self._phase() if response.active else self._state()
            response.grasp_id = self._grasp_id()
        return response

    def _on_goal(self, _goal: EvaluateGrasp.Goal) -> GoalResponse:
        with self._cond:
            if self._closing or self._waiting >= MAX_GOALS:
                return GoalResponse.REJECT
            self._waiting += 1
        return GoalResponse.ACCEPT

    def _end(self, result: Any, code: int, reason: str, text: str) -> Any:
        result.decision = self._no_decision(reason)
        result.error_code = code
        result.error_msg = text
        return result

    def _execute(self, goal_handle: Any) -> Any:
        result = Result()
        request = goal_handle.request
        timeout = float(request.timeout_s)
        if not math.isfinite(timeout) or timeout <= 0.0:
            timeout = self._default_timeout_s()
        deadline = time.monotonic() + timeout
        sent_phase = ""
        try:
            with self._cond:
                token = int(request.arm_token) or self._seq + 1  # the first decision this goal may take
                if token > self._seq + 1:
                    goal_handle.succeed()
                    return self._end(result, Result.ARM_EXPIRED, ARM_EXPIRED,
                                     f"arm_token {token} was not issued by this node (next: {self._seq + 1})")
                while True:
                    if token <= self._seq and (not self._recent or self._recent[0][0] > token):
                        goal_handle.succeed()
                        return self._end(result, Result.ARM_EXPIRED, ARM_EXPIRED,
                                         f"armed {self._seq - token + 1} decisions ago; {KEPT} are kept")
                    found = next((m for s, m in self._recent if s >= token), None)
                    if found is not None:
                        result.decision = found
                        goal_handle.succeed()
                        return result
                    if goal_handle.is_cancel_requested or self._closing:
                        self._end(result, Result.CANCELLED, Reason.CANCELLED, "cancelled before a decision")
                        if goal_handle.is_cancel_requested:
                            goal_handle.canceled()
                        else:
                            goal_handle.abort()
                        return result
                    state = self._state()
                    if state != "active":
                        goal_handle.succeed()
                        return self._end(result, Result.INACTIVE, INACTIVE, f"the node is {state}")
                    if time.monotonic() >= deadline:
                        goal_handle.succeed()
                        return self._end(result, Result.TIMEOUT, Reason.TB_TIMEOUT,
                                         f"no decision within {timeout:g} s")
                    phase = self._phase()
                    if phase != sent_phase:
                        sent_phase = phase
                        goal_handle.publish_feedback(EvaluateGrasp.Feedback(phase=phase))
                    self._cond.wait(min(0.05, max(0.0, deadline - time.monotonic())))
        finally:
            with self._cond:
                self._waiting -= 1

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
        self._node.destroy_service(self._arm)
        self._node.destroy_node()
