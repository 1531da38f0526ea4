"""Gripper adapters: JointState width, the three WSG status variants."""

from __future__ import annotations

import math

import pytest

from tactile_grasp_predictor.errors import ConfigError
from tactile_grasp_predictor.gripper import (
    GraspState,
    GripperSample,
    JointWidthConfig,
    joint_state_width,
    width_from_joint_state,
)
from tactile_grasp_predictor.wsg import (
    grasp_state_from_id,
    grasp_state_from_ros1_status,
    grasp_state_from_ros2_status,
    moving_from_ros1_status,
    width_m_from_status_mm,
)

FINGERS = JointWidthConfig(("wsg50_finger_left_joint", "wsg50_finger_right_joint"))


def test_grasp_state_numbering_matches_firmware() -> None:
    assert [s.name for s in sorted(GraspState)] == [
        "IDLE", "GRASPING", "NO_PART_FOUND", "PART_LOST", "HOLDING", "RELEASING", "POSITIONING", "ERROR"]
    assert [int(s) for s in sorted(GraspState)] == list(range(8))


def test_sample_defaults_and_frozen() -> None:
    s = GripperSample(1.0, 0.05)
    assert s.moving is None and s.grasp_state is None
    with pytest.raises(AttributeError):
        s.t = 2.0  # type: ignore[misc]


def test_two_fingers_sum_abs_in_any_order_with_extra_joints() -> None:
    names = ["arm_joint", "wsg50_finger_right_joint", "wsg50_finger_left_joint"]
    assert width_from_joint_state(names, [1.3, 0.021, -0.021], FINGERS) == pytest.approx(0.042)


def test_single_width_joint_in_mm() -> None:
    cfg = JointWidthConfig(("wsg50_width_joint",), scale=0.001, mode="single").validate()
    assert width_from_joint_state(["wsg50_width_joint"], [55.0], cfg) == pytest.approx(0.055)


@pytest.mark.parametrize(
    ("names", "positions", "needle"),
    [
        (["wsg50_finger_left_joint"], [0.01], "wsg50_finger_right_joint"),
        (["wsg50_finger_left_joint", "wsg50_finger_right_joint"], [0.01, math.nan], "nan"),
        (["wsg50_finger_left_joint", "wsg50_finger_right_joint"], [0.01], "1 positions for 2 names"),
        (["wsg50_finger_left_joint", "wsg50_finger_right_joint"], [5.0, 5.0], "implausible"),
    ],
)
def test_missing_or_bad_joints_give_none_and_a_reason(names: list[str], positions: list[float],
                                                      needle: str) -> None:
    width, reason = joint_state_width(names, positions, FINGERS)
    assert width is None and needle in reason
    assert width_from_joint_state(names, positions, FINGERS) is None


def test_negative_single_joint() -> None:
    cfg = JointWidthConfig(("w",), mode="single")
    assert joint_state_width(["w"], [-0.01], cfg)[0] is None  # implausible
    assert joint_state_width(["w"], [-0.002], cfg) == (0.0, "")  # a zero offset: fully closed


@pytest.mark.parametrize(
    ("cfg", "field"),
    [
        (JointWidthConfig(()), "joint_names"),
        (JointWidthConfig(("a", "a")), "joint_names"),
        (JointWidthConfig(("a", "b"), mode="single"), "joint_names"),
        (JointWidthConfig(("a",), scale=0.0), "scale"),
        (JointWidthConfig(("a",), scale=math.inf), "scale"),
        (JointWidthConfig(("a",), mode="bogus"), "mode"),  # type: ignore[arg-type]
    ],
)
def test_config_validation_names_the_field(cfg: JointWidthConfig, field: str) -> None:
    with pytest.raises(ConfigError, match=field):
        cfg.validate()


def test_ros1_status_flags() -> None:
    assert grasp_state_from_ros1_status("SF_REFERENCED SF_MOVING") is None
    assert grasp_state_from_ros1_status("SF_REFERENCED SF_FAST_STOP") == GraspState.ERROR
    assert grasp_state_from_ros1_status("sf_error") == GraspState.ERROR
    assert moving_from_ros1_status("SF_REFERENCED SF_MOVING") is True
    assert moving_from_ros1_status("SF_REFERENCED") is False
    assert moving_from_ros1_status("  ") is None
    assert width_m_from_status_mm(42.5) == pytest.approx(0.0425)
    assert width_m_from_status_mm(math.nan) is None
    assert width_m_from_status_mm(-3.0) == 0.0  # zero offset of a closed gripper
    assert width_m_from_status_mm(-30.0) is None


@pytest.mark.parametrize(
    ("text", "grasped", "state"),
    [
        ("Grasp in progress", None, GraspState.GRASPING),
        ("Grasp completed", True, GraspState.HOLDING),
        ("Grasp completed", False, GraspState.NO_PART_FOUND),
        ("Grasp completed", None, None),
        ("  grasp   COMPLETED ", True, GraspState.HOLDING),
        ("Release in progress", None, GraspState.RELEASING),
        ("Release completed", False, GraspState.IDLE),
        ("Move in progress", None, GraspState.POSITIONING),
        ("Homing in progress", None, GraspState.POSITIONING),
        ("Move completed", None, GraspState.IDLE),
        ("Part lost", None, GraspState.PART_LOST),
        ("Error: fast stop", None, GraspState.ERROR),
        ("", None, None),
        ("something else", True, None),
    ],
)
def test_ros2_port_status_text(text: str, grasped: bool | None, state: GraspState | None) -> None:
    assert grasp_state_from_ros2_status(text, grasped) == state


def test_fork_state_ids() -> None:
    for s in GraspState:
        assert grasp_state_from_id(int(s)) is s
    assert grasp_state_from_id(8) is None
    assert grasp_state_from_id(-1) is None
