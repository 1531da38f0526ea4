"""Gripper input for the trigger: samples, firmware grasp states, and the JointState adapter.

Drivers of the WSG-50 disagree (see ``docs/trigger.md``), so the trigger reads the
common denominator: the finger opening from a ``sensor_msgs/JointState``, optionally
sharpened by a "moving" flag and a grasp state from one of the three status variants
(decoded in :mod:`tactile_grasp_predictor.wsg`). Everything here takes plain values
(strings, floats, sequences), never ROS messages, so the node and the bag replay call the
same code.

Example:
    >>> cfg = JointWidthConfig(("left", "right"))
    >>> width_from_joint_state(["left", "right"], [-0.02, 0.02], cfg)
    0.04

"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import Literal

from tactile_grasp_predictor.errors import ConfigError

#: Upper bound of a plausible finger opening in metres (WSG-50 stroke 0.110 m, with margin).
MAX_PLAUSIBLE_WIDTH_M = 1.0

#: Widths down to minus this (a driver's zero offset, fingers pressed together) read as 0.
NEGATIVE_WIDTH_SLACK_M = 0.005


def plausible_width(width_m: float) -> float | None:
    """Clamp a width at 0 within :data:`NEGATIVE_WIDTH_SLACK_M`; ``None`` if not finite or implausible."""
    if not math.isfinite(width_m) or width_m < -NEGATIVE_WIDTH_SLACK_M or width_m > MAX_PLAUSIBLE_WIDTH_M:
        return None
    return max(0.0, width_m)


class GraspState(IntEnum):
    """WSG-50 firmware grasp states (the ``grasping_state_id`` numbering)."""

    IDLE = 0
    GRASPING = 1
    NO_PART_FOUND = 2
    PART_LOST = 3
    HOLDING = 4
    RELEASING = 5
    POSITIONING = 6
    ERROR = 7


@dataclass(frozen=True)
class GripperSample:
    """One gripper observation on the core's clock.

    Attributes:
        t: receive time in seconds (live: node clock; replay: the bag's receive time).
        width_m: finger opening in metres (0 = fully closed), ``None`` when this message
            carried no width (e.g. a status-only message).
        moving: the driver's "moving" flag, ``None`` where unknown.
        grasp_state: the firmware grasp state, ``None`` where unknown.
        effort: the fingers' effort from ``JointState.effort`` (:func:`joint_state_effort`,
            the driver's unit), ``None`` where the driver gives none.

    """

    t: float
    width_m: float | None
    moving: bool | None = None
    grasp_state: GraspState | None = None
    effort: float | None = None


WidthMode = Literal["sum_abs", "single"]


@dataclass(frozen=True)
class JointWidthConfig:
    """How to read the finger opening from a JointState.

    Attributes:
        joint_names: ``mode="sum_abs"``: the finger joints (usually two, each at ∓width/2),
            whose absolute positions are summed; ``mode="single"``: exactly one joint whose
            position is the opening.
        scale: factor to metres applied to the result (``0.001`` for millimetres).
        mode: ``"sum_abs"`` or ``"single"``.

    """

    joint_names: tuple[str, ...]
    scale: float = 1.0
    mode: WidthMode = "sum_abs"

    def validate(self) -> JointWidthConfig:
        """Check the fields; raise :class:`ConfigError` naming the bad one; return ``self``."""
        if self.mode not in ("sum_abs", "single"):
            raise ConfigError(f"JointWidthConfig.mode: {self.mode!r} is not 'sum_abs' or 'single'")
        if not self.joint_names or any(not isinstance(n, str) or not n for n in self.joint_names):
            raise ConfigError(
                f"JointWidthConfig.joint_names: need non-empty joint names, got {self.joint_names!r}"
            )
        if len(set(self.joint_names)) != len(self.joint_names):
            raise ConfigError(f"JointWidthConfig.joint_names: duplicate names in {self.joint_names!r}")
        if self.mode == "single" and len(self.joint_names) != 1:
            raise ConfigError(
                f"JointWidthConfig.joint_names: mode 'single' needs exactly one joint, "
                f"got {len(self.joint_names)}"
            )
        if not math.isfinite(self.scale) or self.scale <= 0.0:
            raise ConfigError(f"JointWidthConfig.scale: must be finite and > 0, got {self.scale!r}")
        return self


def joint_state_width(
    names: Sequence[str], positions: Sequence[float], cfg: JointWidthConfig
) -> tuple[float | None, str]:
    """Finger opening in metres from JointState fields, with the reason when there is none.

    Returns:
        ``(width_m, "")`` on success, else ``(None, reason)`` where the reason names the
        joint or field (missing joint, NaN position, length mismatch, implausible width).

    """
    if len(names) != len(positions):
        return None, f"JointState.position: {len(positions)} positions for {len(names)} names"
    index = {n: i for i, n in enumerate(names)}
    total = 0.0
    for joint in cfg.joint_names:
        i = index.get(joint)
        if i is None:
            return None, f"JointState.name: joint {joint!r} missing"
        p = float(positions[i])
        if not math.isfinite(p):
            return None, f"JointState.position: joint {joint!r} is {p}"
        total += abs(p) if cfg.mode == "sum_abs" else p
    width = plausible_width(total * cfg.scale)
    if width is None:
        return None, (
            f"JointState.position: width {total * cfg.scale:.6g} m from {cfg.joint_names!r} is implausible"
        )
    return width, ""


def joint_state_effort(
    names: Sequence[str], efforts: Sequence[float], cfg: JointWidthConfig
) -> float | None:
    """Return the fingers' effort from ``JointState.effort``: ``|effort|`` summed over the configured joints.

    ``None`` when the driver publishes no efforts (an empty array, as most do), the array does
    not match the names, or a configured joint's effort is missing or not finite.

    Example:
        >>> joint_state_effort(["left", "right"], [-6.0, 6.5], JointWidthConfig(("left", "right")))
        12.5
        >>> joint_state_effort(["left", "right"], [], JointWidthConfig(("left", "right"))) is None
        True

    """
    if len(efforts) == 0 or len(efforts) != len(names):
        return None
    index = {n: i for i, n in enumerate(names)}
    total = 0.0
    for joint in cfg.joint_names:
        i = index.get(joint)
        if i is None:
            return None
        e = float(efforts[i])
        if not math.isfinite(e):
            return None
        total += abs(e)
    return total


def width_from_joint_state(
    names: Sequence[str], positions: Sequence[float], cfg: JointWidthConfig
) -> float | None:
    """Finger opening in metres, or ``None`` (see :func:`joint_state_width` for the reason)."""
    return joint_state_width(names, positions, cfg)[0]
