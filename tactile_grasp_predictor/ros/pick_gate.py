"""``PickGate``: ask the predictor node "lift or not?" from a pick pipeline, in one call.

A plain facade over the node's ``~/arm`` service and ``EvaluateGrasp`` action, in the spirit
of nav2_simple_commander::

    gate = PickGate(node)                      # node: your rclpy node
    gate.wait_for_server()
    gate.arm()                                  # before closing: this grasp's decision is kept
    close_gripper()                             # your pipeline: approach + close
    result = gate.evaluate(timeout_s=5.0)       # the armed grasp's decision, even if already out
    lift() if result.lift else release_and_retry()   # or branch on result.code

``evaluate`` blocks. If nobody spins ``node``, it spins it itself while waiting; if the node
already belongs to an executor running on another thread, it only waits. It never raises
for an outcome and never says LIFT on an error: a missing server, a rejected goal or a
client-side timeout all come back as ABORT with their reason and code
(``GraspDecision.REASON_*``). ``start`` / ``done`` / ``result`` / ``cancel`` give the same
without blocking. :func:`pick` is the whole pipeline step with retries (pre-shape → arm →
close → evaluate → lift, or release and regrasp).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from action_msgs.msg import GoalStatus
from rclpy.action import ActionClient
from rclpy.client import Client
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.task import Future
from tactile_grasp_msgs.action import EvaluateGrasp
from tactile_grasp_msgs.msg import GraspDecision
from tactile_grasp_msgs.srv import ArmGrasp

from tactile_grasp_predictor.ros.conversions import reason_code

DEFAULT_ACTION = "/predictor_node/evaluate_grasp"


@dataclass(frozen=True)
class GateResult:
    """The answer for one grasp.

    Attributes:
        lift: True only for a LIFT decision of the model.
        reason: the decision's reason (``model``, ``no_part_found``, ``tb_timeout`` …) or a
            client-side one (``server_unavailable``, ``goal_rejected``, ``client_timeout``,
            ``cancelled``).
        code: ``reason`` as its stable number, ``GraspDecision.REASON_*`` (branch on this).
        error_code: the action result's ``EvaluateGrasp.Result`` code (``NONE`` when the
            decision is a grasp's; ``TIMEOUT``, ``CANCELLED``, ``INACTIVE``, ``ARM_EXPIRED``;
            ``NONE`` too for client-side reasons, whose ``code`` says it).
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
    code: int = GraspDecision.REASON_OTHER
    error_code: int = 0

    @property
    def verdict(self) -> str:
        """``"LIFT"`` or ``"ABORT"``."""
        return "LIFT" if self.lift else "ABORT"

    @staticmethod
    def from_decision(decision: GraspDecision, status: int, error_code: int = 0) -> GateResult:
        """Wrap a decision (LIFT only if the decision is LIFT, the goal succeeded and no error code)."""
        lift = (decision.verdict == GraspDecision.LIFT and status == GoalStatus.STATUS_SUCCEEDED
                and error_code == 0)
        return GateResult(lift, decision.reason, float(decision.p_success), int(decision.grasp_id),
                          float(decision.latency_ms), status, decision, int(decision.reason_code), error_code)

    @staticmethod
    def abort(reason: str, status: int = GoalStatus.STATUS_UNKNOWN) -> GateResult:
        """Build an ABORT decided on the client side."""
        code = reason_code(reason)
        d = GraspDecision(verdict=GraspDecision.ABORT, p_success=math.nan, latency_ms=math.nan, reason=reason,
                          reason_code=code)
        return GateResult(False, reason, math.nan, 0, math.nan, status, d, code)


class PickGate:
    """Blocking (and non-blocking) access to ``EvaluateGrasp`` for a pick pipeline."""

    def __init__(self, node: Node, action_name: str = DEFAULT_ACTION) -> None:
        self.node = node
        self._client: Any = ActionClient(node, EvaluateGrasp, action_name)
        # the node's ~/arm beside its ~/evaluate_grasp
        self._arm_client: Client = node.create_client(ArmGrasp, action_name.rsplit("/", 1)[0] + "/arm")
        self._arm_token = 0  # from arm(), for the next start()
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
            self._spin_or_sleep(0.05)
        return True

    # ---------------------------------------------------------------- arming
    def arm(self, timeout_s: float = 2.0) -> bool:
        """Call ``~/arm`` before closing: the next :meth:`evaluate` returns the first decision after now.

        Returns False (and the next evaluation waits for the next decision after its goal, as
        unarmed) when the service does not answer in ``timeout_s`` or the node is not active.
        """
        self._arm_token = 0
        deadline = time.monotonic() + timeout_s
        while not self._arm_client.service_is_ready():
            if time.monotonic() >= deadline:
                return False
            self._spin_or_sleep(0.05)
        future = self._arm_client.call_async(ArmGrasp.Request())
        if not self._wait(future, max(0.0, deadline - time.monotonic())) or future.result() is None:
            return False
        response: Any = future.result()
        self._arm_token = int(response.arm_token)
        return bool(response.active)

    def _spin_or_sleep(self, seconds: float) -> None:
        if self._own_executor is not None:
            self._own_executor.spin_once(timeout_sec=seconds)
        else:
            time.sleep(seconds)

    # ---------------------------------------------------------------- the non-blocking API
    def start(self, timeout_s: float = 5.0) -> bool:
        """Ask for the armed grasp's decision (:meth:`arm`), else the next one, within ``timeout_s``."""
        self._result = None
        self._result_future = None
        self._goal = None
        if not self._client.server_is_ready() and not self.wait_for_server(min(2.0, timeout_s)):
            self._result = GateResult.abort("server_unavailable")
            return False
        self.phase = ""
        self.phases = []
        goal = EvaluateGrasp.Goal(timeout_s=float(timeout_s), arm_token=self._arm_token)
        self._arm_token = 0  # one evaluation per arming
        send = self._client.send_goal_async(goal, feedback_callback=self._on_feedback)
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
        self._result = GateResult.from_decision(res.result.decision, int(res.status),
                                                int(res.result.error_code))
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
        """Release the action and service clients (and the private executor)."""
        if self._own_executor is not None:
            self._own_executor.remove_node(self.node)
            self._own_executor.shutdown()
        self._client.destroy()
        self.node.destroy_client(self._arm_client)


class Robot(Protocol):
    """The pipeline steps :func:`pick` sequences (your motion planner and gripper driver)."""

    def pre_shape(self, attempt: int) -> None:
        """Move to the pre-grasp pose and open the gripper (``attempt`` counts from 1: vary the pose)."""

    def close(self) -> None:
        """Approach and close the gripper (returns once the close command is under way or done)."""

    def lift(self) -> None:
        """Lift the held object."""

    def release(self) -> None:
        """Open the gripper and retreat (before a regrasp)."""


@dataclass(frozen=True)
class PickOutcome:
    """What :func:`pick` did: whether it lifted, and the gate's answer for every attempt."""

    lifted: bool
    attempts: list[GateResult]


#: Reasons after which another attempt is pointless until someone looks (no model, node inactive,
#: no server): :func:`pick` stops instead of regrasping.
FATAL_CODES = frozenset({GraspDecision.REASON_MODEL_UNAVAILABLE, GraspDecision.REASON_INACTIVE,
                         GraspDecision.REASON_SERVER_UNAVAILABLE, GraspDecision.REASON_GOAL_REJECTED})


def pick(gate: PickGate, robot: Robot, max_attempts: int = 3, timeout_s: float = 5.0,
         log: Callable[[str], object] = print) -> PickOutcome:
    """Pre-shape → arm → close → evaluate → lift, or release and regrasp, up to ``max_attempts`` times.

    Arming before closing means a decision the node publishes while ``robot.close()`` is still
    running is not missed. Stops early on :data:`FATAL_CODES` (retrying cannot help).
    """
    results: list[GateResult] = []
    for attempt in range(1, max_attempts + 1):
        robot.pre_shape(attempt)
        if not gate.arm():
            log(f"attempt {attempt}: the gate did not arm (node not active or not reachable)")
        robot.close()
        result = gate.evaluate(timeout_s)
        results.append(result)
        if result.lift:
            log(f"attempt {attempt}: grasp {result.grasp_id} LIFT (p={result.p_success:.2f}): lifting")
            robot.lift()
            return PickOutcome(True, results)
        log(f"attempt {attempt}: grasp {result.grasp_id} ABORT ({result.reason}, code {result.code}): "
            "releasing")
        robot.release()
        if result.code in FATAL_CODES:
            break
    return PickOutcome(False, results)
