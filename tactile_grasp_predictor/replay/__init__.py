"""Rosbag2 replay: read recorded grasps, run them offline through the node's gate and predictor, report.

- :mod:`.bag_source`: a bag (mcap or sqlite3, via ``rosbags``) → time-ordered core inputs
  (frames with lazily decoded images, gripper samples, outcome labels).
- :mod:`.evaluate`: offline replay through the same :class:`~tactile_grasp_predictor.gate.GraspGate`,
  predictor and ``decide`` the node uses.
- :mod:`.report`: metrics, Markdown + PNG + JSON.

No rclpy here: the live player is :mod:`tactile_grasp_predictor.ros.bag_player`.
"""
