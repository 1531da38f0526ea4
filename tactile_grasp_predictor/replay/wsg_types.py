"""Message definitions of the WSG-50 ``Status`` variants that drivers publish.

Bags recorded on real robots embed the definition of every type they contain (mcap always,
sqlite3 from Iron on); the reader registers those. These built-in copies are the fallback
for bags without embedded definitions (Humble sqlite3) and what ``tgp bag record`` embeds.
The variant is told apart by its fields, never by the package name, which differs per driver.
"""

from __future__ import annotations

from typing import Final

#: ROS 1 reference driver (also ported to ROS 2 unchanged): text status, width in mm.
ROS1_STATUS_TYPE: Final = "wsg_50_common/msg/Status"
ROS1_STATUS_MSG: Final = """\
string status
float32 width
float32 speed
float32 acc
float32 force
float32 force_finger0
float32 force_finger1
"""

#: A ROS 2 port: the same plus ``object_grasped``; ``status`` holds "Grasp completed" etc.
ROS2_PORT_STATUS_TYPE: Final = "wsg50_msgs/msg/Status"
ROS2_PORT_STATUS_MSG: Final = ROS1_STATUS_MSG + "bool object_grasped\n"

#: A richer fork: firmware grasp state id, width in metres.
FORK_STATUS_TYPE: Final = "wsg50_fork_msgs/msg/GripperStatus"
FORK_STATUS_MSG: Final = """\
int32 IDLE=0
int32 GRASPING=1
int32 NO_PART_FOUND=2
int32 PART_LOST=3
int32 HOLDING=4
int32 RELEASING=5
int32 POSITIONING=6
int32 ERROR=7
std_msgs/Header header
int32 grasping_state_id
float32 width
float32 force
"""

#: variant name → (type name, definition)
STATUS_VARIANTS: Final[dict[str, tuple[str, str]]] = {
    "ros1": (ROS1_STATUS_TYPE, ROS1_STATUS_MSG),
    "ros2_port": (ROS2_PORT_STATUS_TYPE, ROS2_PORT_STATUS_MSG),
    "fork": (FORK_STATUS_TYPE, FORK_STATUS_MSG),
}


def status_variant_of(fields: set[str]) -> str | None:
    """Tell the WSG status variant from a message's field names (``None`` if none fits)."""
    if "grasping_state_id" in fields:
        return "fork"
    if "status" in fields and "width" in fields:
        return "ros2_port" if "object_grasped" in fields else "ros1"
    return None
