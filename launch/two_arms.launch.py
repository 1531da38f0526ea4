"""Two arms, one grasp gate each: ``ros2 launch tactile_grasp_predictor two_arms.launch.py bundle_path:=DIR``.

predictor.launch.py twice, in the namespaces ``left_arm`` and ``right_arm``, both with
config/two_arms.yaml (``/**`` for both, ``/<arm>/predictor_node`` for each). Topics resolve in
each namespace: ``/left_arm/gelsight_left/image_raw``, ``/right_arm/wsg50/joint_states``, ...;
decisions on ``/<arm>/predictor_node/decision``, ``/<arm>/predictor_node/arm`` and
``/<arm>/predictor_node/evaluate_grasp`` for each arm's pick pipeline.
"""

from launch.actions import DeclareLaunchArgument, GroupAction, IncludeLaunchDescription
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.substitutions import FindPackageShare

from launch import LaunchDescription

PACKAGE = "tactile_grasp_predictor"
ARMS = ("left_arm", "right_arm")


def generate_launch_description():
    share = FindPackageShare(PACKAGE)
    arms = [
        GroupAction(
            scoped=True,  # each include's launch arguments stay its own
            actions=[IncludeLaunchDescription(
                PythonLaunchDescriptionSource(PathJoinSubstitution([share, "launch", "predictor.launch.py"])),
                launch_arguments={
                    "namespace": arm,
                    "params_file": PathJoinSubstitution([share, "config", "two_arms.yaml"]),
                    "bundle_path": LaunchConfiguration("bundle_path"),
                    "autostart": LaunchConfiguration("autostart"),
                }.items(),
            )],
        )
        for arm in ARMS
    ]
    return LaunchDescription([
        DeclareLaunchArgument("bundle_path", default_value="",
                              description="model bundle directory for both arms (empty: the params file's)"),
        DeclareLaunchArgument("autostart", default_value="true",
                              description="configure and activate both managed nodes"),
        *arms,
    ])
