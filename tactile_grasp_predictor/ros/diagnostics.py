"""``/diagnostics`` of ``predictor_node``: the grasp gate's status and the sensor's, once a period.

Two ``DiagnosticStatus`` entries: ``<node>: grasp gate`` (the session's
:meth:`~tactile_grasp_predictor.session.GraspSession.health`: model, inputs, counters, clock;
WARN while the lifecycle node is not active) and ``<node>: sensor`` (the no-contact frames
against the bundle's statistics, :mod:`tactile_grasp_predictor.sensor_health`). A clock
problem the session reports is also logged, once each time its kind changes.
"""

from __future__ import annotations

import dataclasses

from diagnostic_msgs.msg import DiagnosticArray
from rclpy.node import Node

from tactile_grasp_predictor.ros.conversions import health_to_msg
from tactile_grasp_predictor.session import Health


class DiagnosticsPublisher:
    """Publishes the node's statuses on ``/diagnostics`` and logs clock problems when they change."""

    def __init__(self, node: Node) -> None:
        self._node = node
        self._pub = node.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self._clock_problem = ("", "")

    def publish(self, gate: Health, sensor: Health | None, state: str, hardware_id: str,
                values: dict[str, str]) -> None:
        """Publish ``gate`` (with ``values`` and the lifecycle ``state`` added) and ``sensor`` if given."""
        log = self._node.get_logger()
        if gate.clock_problem[0] != self._clock_problem[0]:
            self._clock_problem = gate.clock_problem
            if gate.clock_problem[0] == "warn":
                log.warning(gate.clock_problem[1])
            elif gate.clock_problem[0] == "info":
                log.info(gate.clock_problem[1])
        gate = dataclasses.replace(gate, values={**gate.values, **values, "lifecycle_state": state})
        if state != "active" and gate.level == "ok":
            gate = dataclasses.replace(gate, level="warn", message=f"{state}: no grasps are decided")
        name = self._node.get_name()
        statuses = [(f"{name}: grasp gate", gate)] + ([(f"{name}: sensor", sensor)] if sensor else [])
        self._pub.publish(health_to_msg(statuses, hardware_id, self._node.get_clock().now().to_msg()))
