"""The closed-loop demo on a full ROS 2 install: simulated robot + predictor + example client.

  ros2 launch tactile_grasp_predictor demo.launch.py shards:=/data/sim bundle_path:=/models/demo

``shards``: simulated shards with streams (``tgp simulate ... --streams``); ``bundle_path``: a
bundle (``tgp demo`` leaves one in its output directory). The predictor starts as
predictor.launch.py starts it: managed, configured, then activated. Without ROS's launch
tools, ``tgp demo`` runs the same loop and scores it.
"""

from launch.actions import DeclareLaunchArgument, GroupAction, IncludeLaunchDescription
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare

from launch import LaunchDescription

PACKAGE = "tactile_grasp_predictor"


def generate_launch_description():
    share = FindPackageShare(PACKAGE)
    params = LaunchConfiguration("params_file")
    return LaunchDescription([
        DeclareLaunchArgument(
            "params_file",
            default_value=PathJoinSubstitution([share, "config", "demo.yaml"]),
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
        GroupAction(scoped=True, actions=[IncludeLaunchDescription(
            PythonLaunchDescriptionSource(PathJoinSubstitution([share, "launch", "predictor.launch.py"])),
            launch_arguments={"params_file": params,
                              "bundle_path": LaunchConfiguration("bundle_path")}.items(),
        )]),
        Node(
            package=PACKAGE,
            executable="pick_gate_example",
            name="pick_gate_example",
            output="screen",
            parameters=[params],
        ),
    ])
