"""``PickGate``: ask the predictor node "lift or not?" from a pick pipeline, in one call.

A plain facade over the ``EvaluateGrasp`` action client, in the spirit of
nav2_simple_commander::

    gate = PickGate(node)                      # node: your rclpy node
    gate.wait_for_server()
    close_gripper()                             # your pipeline: approach + close
    result = gate.evaluate(timeout_s=5.0)       # waits for this grasp's Tb decision
    lift() if result.lift else release_and_retry()

``evaluate`` blocks. If nobody spins ``node``, it spins it itself while waiting; if the node
already belongs to an executor running on another thread, it only waits. It never raises
for an outcome and never says LIFT on an error: a missing server, a rejected goal or a
client-side timeout all come back as ABORT with their reason. ``start`` / ``done`` /
``result`` / ``cancel`` give the same without blocking.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass
from typing import Any

from action_msgs.msg import GoalStatus
from rclpy.action import ActionClient
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.task import Future
from tactile_grasp_msgs.action import EvaluateGrasp
from tactile_grasp_msgs.msg import GraspDecision

DEFAULT_ACTION = "/predictor_node/evaluate_grasp"


@dataclass(frozen=True)
class GateResult:
    """The answer for one grasp.

    Attributes:
        lift: True only for a LIFT decision of the model.
        reason: the decision's reason (``model``, ``no_part_found``, ``tb_timeout`` …) or a
            client-side one (``server_unavailable``, ``goal_rejected``, ``client_timeout``,
            ``cancelled``).
        p_success: the model's probability (NaN where no model ran).
        grasp_id, latency_ms: as in the decision.
        status: the action's ``GoalStatus`` (``STATUS_UNKNOWN`` where no goal ran).
        decision: the full ``GraspDecision`` (a synthetic ABORT for client-side reasons).

    """

    lift: bool
    reason: str
    p_success: float
    grasp_id: int
    latency_ms: float
    status: int
    decision: GraspDecision

    @property
    def verdict(self) -> str:
        """``"LIFT"`` or ``"ABORT"``."""
        return "LIFT" if self.lift else "ABORT"

    @staticmethod
    def from_decision(decision: GraspDecision, status: int) -> GateResult:
        """Wrap a decision (LIFT only if the decision is LIFT and the goal succeeded)."""
        lift = decision.verdict == GraspDecision.LIFT and status == GoalStatus.STATUS_SUCCEEDED
        return GateResult(lift, decision.reason, float(decision.p_success), int(decision.grasp_id),
                          float(decision.latency_ms), status, decision)

    @staticmethod
    def abort(reason: str, status: int = GoalStatus.STATUS_UNKNOWN) -> GateResult:
        """Build an ABORT decided on the client side."""
        d = GraspDecision(verdict=GraspDecision.ABORT, p_success=math.nan, latency_ms=math.nan, reason=reason)
        return GateResult(False, reason, math.nan, 0, math.nan, status, d)


class PickGate:
    """Blocking (and non-blocking) access to ``EvaluateGrasp`` for a pick pipeline."""

    def __init__(self, node: Node, action_name: str = DEFAULT_ACTION) -> None:
        self.node = node
        self._client: Any = ActionClient(node, EvaluateGrasp, action_name)
        self._own_executor: SingleThreadedExecutor | None = None
        if node.executor is None:  # nobody spins this node: we spin it while waiting
            self._own_executor = SingleThreadedExecutor(context=node.context)
            self._own_executor.add_node(node)
        self._goal: Any = None  # ClientGoalHandle
        self._result_future: Future | None = None
        self._result: GateResult | None = None
        self._deadline = math.inf
        self.phase = ""  # the last feedback phase
        self.phases: list[str] = []  # this evaluation's feedback phases, in order (bounded)

    # ---------------------------------------------------------------- waiting helpers
    def _wait(self, future: Future, timeout_s: float) -> bool:
        if self._own_executor is not None:
            self._own_executor.spin_until_future_complete(future, timeout_sec=max(0.0, timeout_s))
            return future.done()
        done = threading.Event()
        future.add_done_callback(lambda _f: done.set())
        return done.wait(max(0.0, timeout_s)) or future.done()

    def wait_for_server(self, timeout_s: float = 10.0) -> bool:
        """Wait until the predictor's action server is discovered."""
        deadline = time.monotonic() + timeout_s
        while not self._client.server_is_ready():
            if time.monotonic() >= deadline:
                return False
            if self._own_executor is not None:
                self._own_executor.spin_once(timeout_sec=0.05)
            else:
                time.sleep(0.05)
        return True

    # ---------------------------------------------------------------- the non-blocking API
    def start(self, timeout_s: float = 5.0) -> bool:
        """Send a goal: decide the next grasp within ``timeout_s``; False if not accepted."""
        self._result = None
        self._result_future = None
        self._goal = None
        if not self._client.server_is_ready() and not self.wait_for_server(min(2.0, timeout_s)):
            self._result = GateResult.abort("server_unavailable")
            return False
        self.phase = ""
        self.phases = []
        send = self._client.send_goal_async(EvaluateGrasp.Goal(timeout_s=float(timeout_s)),
                                            feedback_callback=self._on_feedback)
        if not self._wait(send, 5.0) or send.result() is None:
            self._result = GateResult.abort("server_unavailable")
            return False
        handle: Any = send.result()
        if not handle.accepted:
            self._result = GateResult.abort("goal_rejected", GoalStatus.STATUS_ABORTED)
            return False
        self._goal = handle
        self._result_future = handle.get_result_async()
        self._deadline = time.monotonic() + timeout_s + 2.0  # the server answers by timeout_s
        return True

    def _on_feedback(self, msg: Any) -> None:
        self.phase = str(msg.feedback.phase)
        if len(self.phases) < 64:
            self.phases.append(self.phase)

    def done(self) -> bool:
        """Tell whether the current evaluation has its result (or none is running)."""
        if self._result is not None or self._result_future is None:
            return True
        if self._own_executor is not None:
            self._own_executor.spin_once(timeout_sec=0.0)
        return self._result_future.done()

    def result(self, wait_s: float | None = None) -> GateResult:
        """Return the result, waiting at most ``wait_s`` (default: until the goal's deadline + 2 s)."""
        if self._result is not None:
            return self._result
        fut = self._result_future
        if fut is None:
            return GateResult.abort("no_goal")
        budget = (self._deadline - time.monotonic()) if wait_s is None else wait_s
        if not self._wait(fut, budget):
            self.cancel()
            self._result = GateResult.abort("client_timeout")
            return self._result
        res: Any = fut.result()
        self._result = GateResult.from_decision(res.result.decision, int(res.status))
        return self._result

    def cancel(self) -> None:
        """Cancel the running evaluation (its result becomes ABORT ``cancelled``)."""
        if self._goal is not None and self._result_future is not None and not self._result_future.done():
            self._wait(self._goal.cancel_goal_async(), 2.0)

    # ---------------------------------------------------------------- the blocking call
    def evaluate(self, timeout_s: float = 5.0) -> GateResult:
        """Wait for the next grasp's decision (at most about ``timeout_s``); never raises."""
        if not self.start(timeout_s):
            assert self._result is not None
            return self._result
        return self.result()

    def destroy(self) -> None:
        """Release the action client (and the private executor)."""
        if self._own_executor is not None:
            self._own_executor.remove_node(self.node)
            self._own_executor.shutdown()
        self._client.destroy()
