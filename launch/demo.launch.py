"""The closed-loop demo on a full ROS 2 install: simulated robot + predictor + example client.

  ros2 launch tactile_grasp_predictor demo.launch.py shards:=/data/sim bundle_path:=/models/demo

``shards``: simulated shards with streams (``tgp simulate ... --streams``); ``bundle_path``: a
bundle (``tgp demo`` leaves one in its output directory). Without ROS's launch tools,
``tgp demo`` runs the same loop and scores it.
"""

from launch.actions import DeclareLaunchArgument
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare

from launch import LaunchDescription

PACKAGE = "tactile_grasp_predictor"


def generate_launch_description():
    params = LaunchConfiguration("params_file")
    return LaunchDescription([
        DeclareLaunchArgument(
            "params_file",
            default_value=PathJoinSubstitution([FindPackageShare(PACKAGE), "config", "demo.yaml"]),
            description="YAML with the parameters of all three nodes",
        ),
        DeclareLaunchArgument("shards", description="simulated shard directory (with streams)"),
        DeclareLaunchArgument("bundle_path", description="model bundle directory"),
        Node(
            package=PACKAGE,
            executable="sim_robot_node",
            name="sim_robot_node",
            output="screen",
            parameters=[params, {"shards": LaunchConfiguration("shards")}],
        ),
        Node(
            package=PACKAGE,
            executable="predictor_node",
            name="predictor_node",
            output="screen",
            parameters=[params, {"bundle_path": LaunchConfiguration("bundle_path")}],
        ),
        Node(
            package=PACKAGE,
            executable="pick_gate_example",
            name="pick_gate_example",
            output="screen",
            parameters=[params],
        ),
    ])
