"""The WSG-50 ``Status`` message variants: their types, how to tell them apart, decode and encode.

Drivers of the WSG-50 disagree on the status message (see ``docs/trigger.md``), so this module
is the one place that knows the three variants, for every caller (the node, the bag replay,
the bag writer):

========== ===================================== ====================================== =========
variant    type (the package differs per driver) grasp state                            width
========== ===================================== ====================================== =========
ros1       ``wsg_50_common/msg/Status``          none (``status`` is system-flag text:  mm
                                                 faults → ERROR; MOVING → ``moving``)
ros2_port  ``wsg50_msgs/msg/Status``             ``status`` text + ``object_grasped``   mm
fork       ``wsg50_fork_msgs/msg/GripperStatus`` ``grasping_state_id`` (firmware ids)   m
========== ===================================== ====================================== =========

A variant is told apart by its fields (:func:`variant_of`), never by the package name.
Everything here is plain Python: :func:`decode_status` reads any object with the variant's
fields (an rclpy message or a ``rosbags`` one); :func:`encode_status` gives the field values a
driver of the variant publishes, as a dict, for either library to fill a message from.

Example:
    >>> from types import SimpleNamespace
    >>> fields = encode_status("ros2_port", GraspState.HOLDING, 0.031, None)
    >>> fields["status"], fields["object_grasped"], round(fields["width"], 6)
    ('Grasp completed', True, 31.0)
    >>> decode_status("ros2_port", SimpleNamespace(**fields))
    WsgStatus(state=<GraspState.HOLDING: 4>, width_m=0.031, moving=None)

"""

from __future__ import annotations

import math
import operator
from dataclasses import dataclass
from typing import Any, Final

import numpy as np

from tactile_grasp_predictor.gripper import GraspState, plausible_width

#: The variant names, in the order of the table above.
VARIANTS: Final[tuple[str, ...]] = ("ros1", "ros2_port", "fork")

#: Widths reported in millimetres (ROS 1 driver, ROS 2 port) times this give metres.
MM_TO_M: Final = 0.001

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

#: variant → (type name ``pkg/msg/Type``, ``.msg`` definition). Bags recorded on real robots
#: embed the definitions of their types (mcap always, sqlite3 from Iron on); these copies are
#: the fallback for bags without them (Humble sqlite3) and what ``tgp bag record`` embeds.
STATUS_TYPES: Final[dict[str, tuple[str, str]]] = {
    "ros1": (ROS1_STATUS_TYPE, ROS1_STATUS_MSG),
    "ros2_port": (ROS2_PORT_STATUS_TYPE, ROS2_PORT_STATUS_MSG),
    "fork": (FORK_STATUS_TYPE, FORK_STATUS_MSG),
}

#: ``frame_id`` of the header :func:`encode_status` writes (the fork's status has a header).
FRAME_ID: Final = "wsg50"


def variant_of(fields: set[str]) -> str | None:
    """Tell the WSG status variant from a message's field names (``None`` if none fits).

    >>> variant_of({"status", "width", "object_grasped"}), variant_of({"data"})
    ('ros2_port', None)
    """
    if "grasping_state_id" in fields:
        return "fork"
    if "status" in fields and "width" in fields:
        return "ros2_port" if "object_grasped" in fields else "ros1"
    return None


# --------------------------------------------------------------------- field parsers
# ROS 1 reference driver: ``status`` holds system flag text, not a grasp state.
_ROS1_ERROR_WORDS = ("ERROR", "FAULT", "FAST_STOP", "FAST STOP", "OVERDRIVE", "TEMP_FAULT")


def grasp_state_from_ros1_status(status: str) -> GraspState | None:
    """Grasp state from the ROS 1 driver's system-flag text.

    The flags say nothing about a grasp, only about faults: error/fault/fast-stop flags
    give :attr:`GraspState.ERROR`, anything else ``None`` (unknown).
    """
    text = status.upper()
    if any(w in text for w in _ROS1_ERROR_WORDS):
        return GraspState.ERROR
    return None


def moving_from_ros1_status(status: str) -> bool | None:
    """Read the moving flag from the ROS 1 driver's system-flag text (``None`` if empty)."""
    text = status.strip().upper()
    if not text:
        return None
    return "MOVING" in text


def width_m_from_status_mm(width_mm: float) -> float | None:
    """Metres from a status width in millimetres; ``None`` if not finite or implausible."""
    return plausible_width(float(width_mm) * MM_TO_M)


def grasp_state_from_ros2_status(status: str, object_grasped: bool | None = None) -> GraspState | None:
    """Grasp state from the ROS 2 port's status text (e.g. ``"Grasp completed"``).

    ``"Grasp completed"`` means HOLDING when ``object_grasped`` is true and NO_PART_FOUND
    when it is false (unknown stays ``None``). Unknown text gives ``None``.

    >>> grasp_state_from_ros2_status("Grasp completed", object_grasped=False)
    <GraspState.NO_PART_FOUND: 2>
    """
    text = " ".join(status.lower().split())
    if not text:
        return None
    if "error" in text or "fault" in text or "fail" in text:
        return GraspState.ERROR
    if "grasp" in text and "progress" in text:
        return GraspState.GRASPING
    if "grasp" in text and ("complete" in text or "done" in text):
        if object_grasped is None:
            return None
        return GraspState.HOLDING if object_grasped else GraspState.NO_PART_FOUND
    if "lost" in text:
        return GraspState.PART_LOST
    if "release" in text and "progress" in text:
        return GraspState.RELEASING
    if "release" in text and ("complete" in text or "done" in text):
        return GraspState.IDLE
    if ("move" in text or "homing" in text) and "progress" in text:
        return GraspState.POSITIONING
    if "idle" in text or (("move" in text or "homing" in text) and "complete" in text):
        return GraspState.IDLE
    return None


def grasp_state_from_id(grasping_state_id: int) -> GraspState | None:
    """Grasp state from the fork's ``grasping_state_id`` (``None`` outside 0..7)."""
    try:
        return GraspState(int(grasping_state_id))
    except ValueError:
        return None


# --------------------------------------------------------------------- decode
@dataclass(frozen=True)
class WsgStatus:
    """What one status message says, whatever its variant.

    Attributes:
        state: the firmware grasp state, ``None`` where unknown (always for ``ros1``, whose
            text holds system flags: only a fault gives ERROR).
        width_m: the finger opening in metres through :func:`~tactile_grasp_predictor.gripper.plausible_width`
            (0 within the negative slack), ``None`` when not finite or implausible.
        moving: the ROS 1 driver's MOVING flag (``None`` for an empty text and for the
            variants that have no such flag).

    """

    state: GraspState | None
    width_m: float | None
    moving: bool | None = None


def _field(msg: Any, name: str) -> Any:
    try:
        return getattr(msg, name)
    except AttributeError as exc:
        raise ValueError(f"{name}: the message has no such field ({type(msg).__name__})") from exc


def _text(msg: Any, name: str) -> str:
    value = _field(msg, name)
    if not isinstance(value, str):
        raise ValueError(f"{name}: expected a string, got {type(value).__name__} {value!r}")
    return value


def _number(msg: Any, name: str) -> float:
    value = _field(msg, name)
    if isinstance(value, (str, bytes)):
        raise ValueError(f"{name}: expected a number, got {type(value).__name__} {value!r}")
    try:
        return float(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name}: expected a number, got {type(value).__name__} {value!r}") from exc


def _integer(msg: Any, name: str) -> int:
    value = _field(msg, name)
    if isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name}: expected an integer, got a bool {value!r}")
    try:
        return operator.index(value)
    except TypeError as exc:
        raise ValueError(f"{name}: expected an integer, got {type(value).__name__} {value!r}") from exc


def _flag(msg: Any, name: str) -> bool:
    value = _field(msg, name)
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    try:
        number = operator.index(value)  # an integer 0 / 1 (a uint8 field of a hand-made type)
    except TypeError:
        number = -1
    if number not in (0, 1):
        raise ValueError(f"{name}: expected a bool, got {type(value).__name__} {value!r}")
    return bool(number)


def decode_status(variant: str, msg: Any) -> WsgStatus:
    """Read a status message of ``variant`` (an rclpy message or a ``rosbags`` one).

    Widths: the fork's in metres, the others' in millimetres, both through
    :func:`~tactile_grasp_predictor.gripper.plausible_width` (an implausible width is ``None``,
    not an error). Raises :class:`ValueError` naming the field on a missing or malformed
    value (a non-string text, a non-number width, a non-integer state id, a non-bool flag),
    and naming the variant when it is not one of :data:`VARIANTS`.
    """
    if variant == "fork":
        state = grasp_state_from_id(_integer(msg, "grasping_state_id"))
        return WsgStatus(state, plausible_width(_number(msg, "width")))
    if variant == "ros2_port":
        text = _text(msg, "status")
        state = grasp_state_from_ros2_status(text, _flag(msg, "object_grasped"))
        return WsgStatus(state, width_m_from_status_mm(_number(msg, "width")))
    if variant == "ros1":
        text = _text(msg, "status")
        return WsgStatus(grasp_state_from_ros1_status(text), width_m_from_status_mm(_number(msg, "width")),
                         moving_from_ros1_status(text))
    raise ValueError(f"variant: {variant!r} is not one of {VARIANTS}")


# --------------------------------------------------------------------- encode
#: The ROS 2 port's status text per grasp state (what its driver publishes).
_ROS2_PORT_TEXT: Final[dict[GraspState, str]] = {
    GraspState.IDLE: "Release completed",
    GraspState.GRASPING: "Grasp in progress",
    GraspState.NO_PART_FOUND: "Grasp completed",
    GraspState.PART_LOST: "Part lost",
    GraspState.HOLDING: "Grasp completed",
    GraspState.RELEASING: "Release in progress",
    GraspState.POSITIONING: "Move in progress",
    GraspState.ERROR: "Error",
}

#: States in which the fingers move (the ROS 1 driver's text says MOVING then).
_MOVING_STATES: Final = frozenset({GraspState.GRASPING, GraspState.RELEASING, GraspState.POSITIONING})


def stamp_fields(seconds: float | None) -> dict[str, int]:
    """``builtin_interfaces/Time`` field values of a time in seconds (``None``: the empty stamp 0)."""
    if seconds is None:
        return {"sec": 0, "nanosec": 0}
    if not math.isfinite(seconds):
        raise ValueError(f"stamp: {seconds!r} is not a finite time")
    ns = round(seconds * 1e9)
    return {"sec": ns // 1_000_000_000, "nanosec": ns % 1_000_000_000}


def encode_status(variant: str, state: GraspState, width_m: float, stamp: float | None) -> dict[str, Any]:
    """Give the field values a driver of ``variant`` publishes for ``state`` at opening ``width_m``.

    Nested messages are nested dicts of plain values: the fork's ``header`` is
    ``{"stamp": {"sec": ..., "nanosec": ...}, "frame_id": "wsg50"}`` (``stamp`` ``None``:
    the empty stamp, as most drivers send); the ROS 1 variant and the port have no header and
    ignore ``stamp``. Widths are in the variant's unit (the fork metres, the others mm);
    speeds and forces are 0. The ROS 1 driver's text is its system flags (``"MOVING"`` while
    grasping, releasing or positioning, ``"ERROR"`` in ERROR, else ``"IDLE"``), so decoding it
    gives back ``moving``, not the state. :func:`decode_status` of the result gives ``state``
    back for the port (given the ``object_grasped`` it writes: true only for HOLDING) and
    the fork.
    """
    state = GraspState(state)
    if variant == "fork":
        return {
            "header": {"stamp": stamp_fields(stamp), "frame_id": FRAME_ID},
            "grasping_state_id": int(state),
            "width": float(width_m),
            "force": 0.0,
        }
    if variant not in ("ros1", "ros2_port"):
        raise ValueError(f"variant: {variant!r} is not one of {VARIANTS}")
    if variant == "ros1":
        text = "ERROR" if state is GraspState.ERROR else "MOVING" if state in _MOVING_STATES else "IDLE"
    else:
        text = _ROS2_PORT_TEXT[state]
    fields: dict[str, Any] = {
        "status": text,
        "width": float(width_m) * 1000.0,
        "speed": 0.0,
        "acc": 0.0,
        "force": 0.0,
        "force_finger0": 0.0,
        "force_finger1": 0.0,
    }
    if variant == "ros2_port":
        fields["object_grasped"] = state is GraspState.HOLDING
    return fields
