"""Start the grasp-gating node on a robot: ``ros2 launch tactile_grasp_predictor predictor.launch.py``.

The node starts managed (a lifecycle node, ``managed: true``): by default this file then
configures it (the bundle is loaded and checked) and, once it is inactive, activates it. With
``autostart:=false`` it stays unconfigured for your lifecycle manager (e.g. nav2's
``lifecycle_manager`` with ``node_names: [predictor_node]``) or ``ros2 lifecycle set``.

Arguments (each optional):
  params_file         YAML with the node's parameters (default: the package's config/predictor.yaml)
  bundle_path         model bundle directory (overrides the params file when not empty)
  image_topic         left GelSight image topic (overrides the params file when not empty)
  joint_states_topic  gripper JointState topic (overrides the params file when not empty)
  time_base           header | receive: what times frames and gripper samples (docs/node.md)
  namespace           namespace of the node (relative topics resolve in it)
  autostart           true | false: configure and activate the node (default true)
  log_level           debug | info | warn | error

Example (WSG-50 driver on /wsg50/joint_states, GelSight Mini wrapper on /gsmini/image_raw):
  ros2 launch tactile_grasp_predictor predictor.launch.py bundle_path:=/models/moco-r18 \
      image_topic:=/gsmini/image_raw joint_states_topic:=/wsg50/joint_states
"""

from launch.actions import DeclareLaunchArgument, EmitEvent, OpaqueFunction, RegisterEventHandler
from launch.events import matches_action
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import LifecycleNode
from launch_ros.event_handlers import OnStateTransition
from launch_ros.events.lifecycle import ChangeState
from launch_ros.substitutions import FindPackageShare
from lifecycle_msgs.msg import Transition

from launch import LaunchDescription

PACKAGE = "tactile_grasp_predictor"
OVERRIDABLE = ("bundle_path", "image_topic", "joint_states_topic", "time_base")


def _predictor(context, *args, **kwargs):
    overrides = {"managed": True}
    for name in OVERRIDABLE:
        value = LaunchConfiguration(name).perform(context)
        if value:
            overrides[name] = value
    node = LifecycleNode(
        package=PACKAGE,
        executable="predictor_node",
        name="predictor_node",
        namespace=LaunchConfiguration("namespace"),  # Humble's LifecycleNode requires it
        output="screen",
        emulate_tty=True,
        parameters=[LaunchConfiguration("params_file"), overrides],
        arguments=["--ros-args", "--log-level", LaunchConfiguration("log_level")],
    )
    if LaunchConfiguration("autostart").perform(context).lower() not in ("true", "1", "yes"):
        return [node]

    def transition(transition_id):
        return EmitEvent(event=ChangeState(lifecycle_node_matcher=matches_action(node),
                                           transition_id=transition_id))

    # activate once configure succeeded (configuring -> inactive), not after a later deactivate
    activate = RegisterEventHandler(OnStateTransition(
        target_lifecycle_node=node, start_state="configuring", goal_state="inactive",
        entities=[transition(Transition.TRANSITION_ACTIVATE)]))
    return [node, activate, transition(Transition.TRANSITION_CONFIGURE)]


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
        DeclareLaunchArgument("autostart", default_value="true",
                              description="configure and activate the managed node (false: unconfigured)"),
        DeclareLaunchArgument("log_level", default_value="info", description="debug | info | warn | error"),
        OpaqueFunction(function=_predictor),
    ])
