"""``pick_gate_example``: a pick pipeline that asks the predictor before every lift, with regrasps.

The shape of a real pipeline (MoveIt Task Constructor cannot pause mid-execution, so: pre-shape,
arm the gate, "approach + close", ask, then "lift" or "release and regrasp"), through
:func:`~tactile_grasp_predictor.ros.pick_gate.pick`. The robot here only logs its steps: the
gripper is whoever closes it (the simulated robot in the demo, which lifts or releases on the
predictor's decision itself), so each attempt is that robot's next grasp::

    ros2 run tactile_grasp_predictor pick_gate_example --ros-args -p count:=10 -p max_attempts:=3

Replace :class:`LoggingRobot` by your planner's and gripper's calls to make it real.
"""

from __future__ import annotations

from collections.abc import Sequence

import rclpy
from rclpy.node import Node

from tactile_grasp_predictor.node_config import ParamSpec, check_all
from tactile_grasp_predictor.ros.params import declare_all
from tactile_grasp_predictor.ros.pick_gate import DEFAULT_ACTION, PickGate, pick
from tactile_grasp_predictor.ros.spin import spin_node_main

PARAMETERS: tuple[ParamSpec, ...] = (
    ParamSpec("action_name", DEFAULT_ACTION, "the predictor's EvaluateGrasp action (its ~/arm beside it)",
              read_only=True),
    ParamSpec("timeout_s", 10.0, "wait at most this long for each grasp's decision", lo=0.1, hi=3600.0),
    ParamSpec("count", 0, "pick this many objects, then exit (0: until shut down)", lo=0, hi=1_000_000),
    ParamSpec("max_attempts", 3, "grasp attempts per object before giving up", lo=1, hi=100),
    ParamSpec("server_timeout_s", 30.0, "wait this long for the predictor at start", lo=0.0, hi=3600.0),
)


class LoggingRobot:
    """Stands in for the motion planner and the gripper: logs each step of the pipeline."""

    def __init__(self, node: Node) -> None:
        self._log = node.get_logger()

    def pre_shape(self, attempt: int) -> None:
        """Log the pre-grasp step (a real robot varies the pose with ``attempt``)."""
        self._log.info(f"attempt {attempt}: pre-shape, open the gripper")

    def close(self) -> None:
        """Log the approach and close (here the simulated robot closes by itself)."""
        self._log.info("approach + close")

    def lift(self) -> None:
        """Log the lift."""
        self._log.info("lift")

    def release(self) -> None:
        """Log the release."""
        self._log.info("release and retreat")


def run(node: Node) -> int:
    """Pick ``count`` objects with up to ``max_attempts`` grasps each; log what a pipeline would do."""
    values = declare_all(node, PARAMETERS)
    problem = check_all(PARAMETERS, values)
    if problem:
        node.get_logger().error(problem)
        return 2
    gate = PickGate(node, values["action_name"])
    log = node.get_logger()
    robot = LoggingRobot(node)
    try:
        if not gate.wait_for_server(float(values["server_timeout_s"])):
            log.error(f"no EvaluateGrasp server on {values['action_name']}")
            return 1
        n = lifted = 0
        while rclpy.ok(context=node.context) and (values["count"] == 0 or n < values["count"]):
            outcome = pick(gate, robot, int(values["max_attempts"]), float(values["timeout_s"]), log.info)
            n += 1
            lifted += outcome.lifted
        log.info(f"{n} objects, {lifted} lifted")
        return 0
    finally:
        gate.destroy()


def main(args: Sequence[str] | None = None) -> int:
    """``ros2 run tactile_grasp_predictor pick_gate_example``."""
    return spin_node_main("pick_gate_example", lambda: Node("pick_gate_example"), args, spin=run)


if __name__ == "__main__":
    raise SystemExit(main())
