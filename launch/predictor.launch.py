"""Start the grasp-gating node on a robot: ``ros2 launch tactile_grasp_predictor predictor.launch.py``.

Arguments (each optional):
  params_file         YAML with the node's parameters (default: the package's config/predictor.yaml)
  bundle_path         model bundle directory (overrides the params file when not empty)
  image_topic         left GelSight image topic (overrides the params file when not empty)
  joint_states_topic  gripper JointState topic (overrides the params file when not empty)
  time_base           header | receive: what times frames and gripper samples (docs/node.md)
  namespace           namespace of the node
  log_level           debug | info | warn | error

Example (WSG-50 driver on /wsg50/joint_states, GelSight Mini wrapper on /gsmini/image_raw):
  ros2 launch tactile_grasp_predictor predictor.launch.py bundle_path:=/models/moco-r18 \
      image_topic:=/gsmini/image_raw joint_states_topic:=/wsg50/joint_states
"""

from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare

from launch import LaunchDescription

PACKAGE = "tactile_grasp_predictor"
OVERRIDABLE = ("bundle_path", "image_topic", "joint_states_topic", "time_base")


def _predictor(context, *args, **kwargs):
    overrides = {}
    for name in OVERRIDABLE:
        value = LaunchConfiguration(name).perform(context)
        if value:
            overrides[name] = value
    parameters = [LaunchConfiguration("params_file")]
    if overrides:
        parameters.append(overrides)
    return [
        Node(
            package=PACKAGE,
            executable="predictor_node",
            name="predictor_node",
            namespace=LaunchConfiguration("namespace"),
            output="screen",
            emulate_tty=True,
            parameters=parameters,
            arguments=["--ros-args", "--log-level", LaunchConfiguration("log_level")],
        )
    ]


def generate_launch_description():
    return LaunchDescription([
        DeclareLaunchArgument(
            "params_file",
            default_value=PathJoinSubstitution([FindPackageShare(PACKAGE), "config", "predictor.yaml"]),
            description="YAML file with the predictor_node parameters",
        ),
        DeclareLaunchArgument("bundle_path", default_value="",
                              description="model bundle directory (empty: the params file's)"),
        DeclareLaunchArgument("image_topic", default_value="",
                              description="left GelSight image topic (empty: the params file's)"),
        DeclareLaunchArgument("joint_states_topic", default_value="",
                              description="gripper JointState topic (empty: the params file's)"),
        DeclareLaunchArgument("time_base", default_value="",
                              description="header | receive (empty: the params file's, default header)"),
        DeclareLaunchArgument("namespace", default_value="", description="namespace of the node"),
        DeclareLaunchArgument("log_level", default_value="info", description="debug | info | warn | error"),
        OpaqueFunction(function=_predictor),
    ])
