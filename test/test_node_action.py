"""EvaluateGrasp and ~/arm over real DDS through PickGate: round trip with feedback, cancel, timeout, codes,
an armed goal that gets the decision published before it, the pick loop with a regrasp, no server."""

from __future__ import annotations

import math
import threading
import time

import rclpy
from action_msgs.msg import GoalStatus
from rclpy.action import ActionClient
from rclpy.node import Node
from tactile_grasp_msgs.action import EvaluateGrasp
from tactile_grasp_msgs.msg import GraspDecision

from helpers.rig import (
    BrightnessPredictor,
    Driver,
    GraspScript,
    run_grasp,
    stamp,
    start_predictor,
)
from helpers.waiting import spin_until, wait_for
from tactile_grasp_predictor.ros.pick_gate import PickGate, pick

Result = EvaluateGrasp.Result
SCRIPTED = {"trigger__frame_max_age_s": 5.0, "trigger__tb_timeout_s": 6.0}



def test_action_round_trip_cancel_and_timeout(ros_context: rclpy.context.Context) -> None:
    rig, node, driver = start_predictor(ros_context, BrightnessPredictor(), trigger__frame_max_age_s=5.0,
                                        trigger__tb_timeout_s=6.0)
    client = Node("pick_pipeline", context=ros_context)  # spun by PickGate itself
    gate = PickGate(client)
    try:
        assert gate.wait_for_server(30.0)

        # 1. Round trip: the goal waits for the next grasp, feedback follows its phases.
        grasp = threading.Thread(target=lambda: (time.sleep(0.5), run_grasp(driver, GraspScript(k0=0))))
        grasp.start()
        result = gate.evaluate(timeout_s=30.0)
        grasp.join()
        assert result.status == GoalStatus.STATUS_SUCCEEDED
        assert result.lift and result.verdict == "LIFT" and result.reason == "model"
        assert (result.code, result.error_code) == (GraspDecision.REASON_MODEL, Result.NONE)
        assert result.decision.tb_stamp == stamp(GraspScript(k0=0).tb_k)
        assert wait_for(lambda: len(driver.decisions) == 1)
        assert result.decision == driver.decisions[0], "the action returns the published decision"
        assert "closing" in gate.phases and "settling" in gate.phases, gate.phases
        assert gate.phases.index("closing") < gate.phases.index("settling")

        # 2. Cancel while waiting.
        assert gate.start(timeout_s=60.0)
        time.sleep(0.3)
        gate.cancel()
        cancelled = gate.result(wait_s=30.0)
        assert cancelled.status == GoalStatus.STATUS_CANCELED
        assert not cancelled.lift and cancelled.reason == "cancelled"
        assert (cancelled.code, cancelled.error_code) == (GraspDecision.REASON_CANCELLED, Result.CANCELLED)

        # 3. Timeout: no grasp happens → ABORT tb_timeout.
        timed_out = gate.evaluate(timeout_s=0.5)
        assert timed_out.status == GoalStatus.STATUS_SUCCEEDED
        assert not timed_out.lift and timed_out.reason == "tb_timeout"
        assert (timed_out.code, timed_out.error_code) == (GraspDecision.REASON_TB_TIMEOUT, Result.TIMEOUT)
        assert timed_out.decision.verdict == GraspDecision.ABORT and math.isnan(timed_out.p_success)

        # 4. The node still decides grasps afterwards, and the gate reports ABORTs as such.
        grasp = threading.Thread(target=lambda: (time.sleep(0.5),
                                                 run_grasp(driver, GraspScript(k0=100, tb_value=20))))
        grasp.start()
        low = gate.evaluate(timeout_s=30.0)
        grasp.join()
        assert not low.lift and low.reason == "model" and low.p_success < 0.5 and low.grasp_id == 2
        assert node.phase in ("waiting", "closing", "settling", "predicting")
    finally:
        gate.destroy()
        client.destroy_node()
        rig.close()


def test_no_server_is_an_abort_not_an_exception(ros_context: rclpy.context.Context) -> None:
    client = Node("lonely_pipeline", context=ros_context)
    gate = PickGate(client, "/nobody/evaluate_grasp")
    try:
        result = gate.evaluate(timeout_s=0.5)
        assert not result.lift and result.reason == "server_unavailable"
    finally:
        gate.destroy()
        client.destroy_node()


class ScriptedRobot:
    """The pick pipeline's robot: each close runs one scripted grasp to its decision (Tb brightness given)."""

    def __init__(self, driver: Driver, tb_values: list[int]) -> None:
        self.driver = driver
        self.tb_values = tb_values
        self.steps: list[str] = []
        self.published_before_goal: list[int] = []  # decisions already out when each close returned

    def pre_shape(self, attempt: int) -> None:
        self.steps.append(f"pre_shape {attempt}")

    def close(self) -> None:
        n = len(self.driver.decisions)
        run_grasp(self.driver, GraspScript(k0=100 * n, tb_value=self.tb_values[n]))
        assert wait_for(lambda: len(self.driver.decisions) == n + 1), "the grasp was not decided"
        self.published_before_goal.append(len(self.driver.decisions))
        self.steps.append("close")

    def lift(self) -> None:
        self.steps.append("lift")

    def release(self) -> None:
        self.steps.append("release")


def test_armed_pick_gets_the_decision_published_before_the_goal_and_regrasps(
        ros_context: rclpy.context.Context) -> None:
    """pre-shape → arm → close (decided before the goal is sent) → evaluate → release → regrasp → lift."""
    rig, _node, driver = start_predictor(ros_context, BrightnessPredictor(), **SCRIPTED)
    client = Node("pick_pipeline", context=ros_context)
    gate = PickGate(client)
    robot = ScriptedRobot(driver, [40, 220, 220])  # p = 0.16 (ABORT), then 0.86 (LIFT)
    try:
        assert gate.wait_for_server(30.0)
        outcome = pick(gate, robot, max_attempts=3, timeout_s=2.0, log=lambda _m: None)
        assert outcome.lifted and len(outcome.attempts) == 2
        assert robot.steps == ["pre_shape 1", "close", "release", "pre_shape 2", "close", "lift"]
        assert robot.published_before_goal == [1, 2]  # each decision was out before its goal
        first, second = outcome.attempts
        assert first.decision == driver.decisions[0] and second.decision == driver.decisions[1]
        assert (first.code, first.error_code, first.lift) == (GraspDecision.REASON_MODEL, Result.NONE, False)
        assert second.lift and second.grasp_id == 2
        # Without arming, the same order (close, then ask) misses the decision and times out.
        robot.close()
        missed = gate.evaluate(timeout_s=0.5)
        assert not missed.lift and missed.error_code == Result.TIMEOUT
        # A token this node never issued is refused, not waited on.
        raw = ActionClient(client, EvaluateGrasp, "/predictor_node/evaluate_grasp")
        executor = rclpy.executors.SingleThreadedExecutor(context=ros_context)
        executor.add_node(client)
        sent = raw.send_goal_async(EvaluateGrasp.Goal(timeout_s=1.0, arm_token=999))
        assert spin_until(executor, sent.done)
        got = sent.result().get_result_async()
        assert spin_until(executor, got.done)
        res = got.result().result
        assert res.error_code == Result.ARM_EXPIRED
        assert res.decision.reason_code == GraspDecision.REASON_ARM_EXPIRED
        assert "999" in res.error_msg
        executor.remove_node(client)
        raw.destroy()
    finally:
        gate.destroy()
        client.destroy_node()
        rig.close()
