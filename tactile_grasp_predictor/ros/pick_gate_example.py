"""``pick_gate_example``: a pick loop that asks the predictor before every lift.

The shape of a real pipeline (MoveIt Task Constructor cannot pause mid-execution, so:
"approach + close", then ask, then "lift" or "release and retry"); here the robot is
whoever closes the gripper (the simulated robot in the demo), and the example only asks
and reports::

    ros2 run tactile_grasp_predictor pick_gate_example --ros-args -p count:=10
"""

from __future__ import annotations

from collections.abc import Sequence

import rclpy
from rclpy.node import Node

from tactile_grasp_predictor.node_config import ParamSpec, check_all
from tactile_grasp_predictor.ros.params import declare_all
from tactile_grasp_predictor.ros.pick_gate import DEFAULT_ACTION, PickGate
from tactile_grasp_predictor.ros.spin import spin_node_main

PARAMETERS: tuple[ParamSpec, ...] = (
    ParamSpec("action_name", DEFAULT_ACTION, "the predictor's EvaluateGrasp action", read_only=True),
    ParamSpec("timeout_s", 10.0, "wait at most this long for each grasp's decision", lo=0.1, hi=3600.0),
    ParamSpec("count", 0, "evaluate this many grasps, then exit (0: until shut down)", lo=0, hi=1_000_000),
    ParamSpec("server_timeout_s", 30.0, "wait this long for the predictor at start", lo=0.0, hi=3600.0),
)


def run(node: Node) -> int:
    """Ask for a decision per grasp until ``count`` are done; log what a pipeline would do."""
    values = declare_all(node, PARAMETERS)
    problem = check_all(PARAMETERS, values)
    if problem:
        node.get_logger().error(problem)
        return 2
    gate = PickGate(node, values["action_name"])
    log = node.get_logger()
    try:
        if not gate.wait_for_server(float(values["server_timeout_s"])):
            log.error(f"no EvaluateGrasp server on {values['action_name']}")
            return 1
        n = lifts = 0
        while rclpy.ok(context=node.context) and (values["count"] == 0 or n < values["count"]):
            result = gate.evaluate(float(values["timeout_s"]))
            if result.reason == "tb_timeout" and result.grasp_id == 0:
                log.info("no grasp yet; asking again")
                continue
            n += 1
            lifts += result.lift
            if result.lift:
                log.info(f"grasp {result.grasp_id}: LIFT (p={result.p_success:.2f}) -> lifting")
            else:
                log.info(f"grasp {result.grasp_id}: ABORT ({result.reason}) -> releasing, retrying")
        log.info(f"{n} grasps evaluated, {lifts} lifted")
        return 0
    finally:
        gate.destroy()


def main(args: Sequence[str] | None = None) -> int:
    """``ros2 run tactile_grasp_predictor pick_gate_example``."""
    return spin_node_main("pick_gate_example", lambda: Node("pick_gate_example"), args, spin=run)


if __name__ == "__main__":
    raise SystemExit(main())
