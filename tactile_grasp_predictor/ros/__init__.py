"""Thin rclpy adapters over the runtime core.

- :mod:`.predictor_node`: the grasp-gating node (``ros2 run tactile_grasp_predictor predictor_node``).
- :mod:`.sim_robot_node`: a simulated WSG-50 + GelSight driver pair replaying simulated trials.
- :mod:`.pick_gate`: :class:`~.pick_gate.PickGate`, a blocking facade over the ``EvaluateGrasp`` action.
- :mod:`.conversions`: ROS messages ⇄ core types; :mod:`.params`: declared parameters.

Importing this package imports no rclpy; its modules do.
"""
