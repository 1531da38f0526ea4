"""Thin rclpy adapters over the runtime core.

- :mod:`.predictor_node`: the grasp-gating lifecycle node (``ros2 run tactile_grasp_predictor
  predictor_node``); :mod:`.grasp_runtime` what one configuration holds; :mod:`.lifecycle` the
  managed-node base; :mod:`.inputs` its subscriptions; :mod:`.evaluate_grasp` ``~/arm`` and the
  action; :mod:`.debug_image` and :mod:`.diagnostics` what it shows.
- :mod:`.sim_robot_node`: a simulated WSG-50 + GelSight driver pair replaying simulated trials.
- :mod:`.pick_gate`: :class:`~.pick_gate.PickGate` and :func:`~.pick_gate.pick`, a pipeline's
  facade over ``~/arm`` and ``EvaluateGrasp``.
- :mod:`.conversions`: ROS messages ⇄ core types; :mod:`.params`: declared parameters.

Importing this package imports no rclpy; its modules do.
"""
