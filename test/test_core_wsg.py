"""The WSG-50 status variants: tell them apart, decode, encode (through real rosbags CDR)."""

from __future__ import annotations

import math
from typing import Any

import pytest
from rosbags.typesys import Stores, get_types_from_msg, get_typestore

from tactile_grasp_predictor.gripper import GraspState
from tactile_grasp_predictor.wsg import (
    STATUS_TYPES,
    VARIANTS,
    WsgStatus,
    decode_status,
    encode_status,
    stamp_fields,
    variant_of,
)
from training.bag_record import PHASE_STATES, status_message


@pytest.fixture(scope="module")
def ts() -> Any:
    store = get_typestore(Stores.ROS2_HUMBLE)
    for typ, definition in STATUS_TYPES.values():
        store.register(get_types_from_msg(definition, typ))
    return store


def over_the_wire(ts: Any, variant: str, msg: Any) -> Any:
    """Serialize to CDR and back, as a bag or DDS carries the message."""
    typ = STATUS_TYPES[variant][0]
    return ts.deserialize_cdr(bytes(ts.serialize_cdr(msg, typ)), typ)


def make(ts: Any, variant: str, state: GraspState = GraspState.IDLE, width_m: float = 0.04,
         stamp: float | None = None, **bad: Any) -> Any:
    """A status message as the bag writer builds it, with some fields replaced (``bad``)."""
    msg = status_message(ts, variant, state, width_m, stamp)
    for name, value in bad.items():
        setattr(msg, name, value)
    return msg


# ------------------------------------------------------------------------- variants
@pytest.mark.parametrize(
    ("fields", "variant"),
    [
        ({"grasping_state_id", "width", "force", "header"}, "fork"),
        ({"grasping_state_id"}, "fork"),
        ({"status", "width", "speed", "object_grasped"}, "ros2_port"),
        ({"status", "width", "speed", "acc", "force"}, "ros1"),
        ({"status"}, None),
        ({"width"}, None),
        ({"data"}, None),
        (set(), None),
    ],
)
def test_variant_of_fields(fields: set[str], variant: str | None) -> None:
    assert variant_of(fields) == variant


def test_every_built_in_definition_is_its_own_variant(ts: Any) -> None:
    assert tuple(STATUS_TYPES) == VARIANTS == ("ros1", "ros2_port", "fork")
    for variant, (typ, _) in STATUS_TYPES.items():
        assert variant_of({name for name, _ in ts.get_msgdef(typ).fields}) == variant


# ------------------------------------------------------------------------- round trips
@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("phase", sorted(PHASE_STATES))
@pytest.mark.parametrize("width", [0.0, 0.0425, 0.110])
def test_what_the_writer_writes_decodes_back(ts: Any, variant: str, phase: str, width: float) -> None:
    state = PHASE_STATES[phase]
    got = decode_status(variant, over_the_wire(ts, variant, make(ts, variant, state, width)))
    assert got.width_m == pytest.approx(width, abs=1e-6)  # float32 on the wire
    if variant == "ros1":  # system flags: no grasp state, but the MOVING flag
        assert got.state is None and got.moving is (state is GraspState.GRASPING)
    else:
        assert got.state is state and got.moving is None


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("state", list(GraspState))
def test_every_state_round_trips(ts: Any, variant: str, state: GraspState) -> None:
    got = decode_status(variant, over_the_wire(ts, variant, make(ts, variant, state)))
    if variant == "ros1":
        assert got.state is (GraspState.ERROR if state is GraspState.ERROR else None)
        moving = state in (GraspState.GRASPING, GraspState.RELEASING, GraspState.POSITIONING)
        assert got.moving is moving
    else:
        assert got == WsgStatus(state, pytest.approx(0.04, abs=1e-6), None)


def test_encoded_fields_per_variant() -> None:
    ros1 = encode_status("ros1", GraspState.GRASPING, 0.05, 12.0)
    assert ros1 == {"status": "MOVING", "width": 50.0, "speed": 0.0, "acc": 0.0, "force": 0.0,
                    "force_finger0": 0.0, "force_finger1": 0.0}, "no header: the stamp is not written"
    port = encode_status("ros2_port", GraspState.NO_PART_FOUND, 0.0, None)
    assert (port["status"], port["object_grasped"], port["width"]) == ("Grasp completed", False, 0.0)
    fork = encode_status("fork", GraspState.HOLDING, 0.031, 12.25)
    assert fork == {"header": {"stamp": {"sec": 12, "nanosec": 250_000_000}, "frame_id": "wsg50"},
                    "grasping_state_id": 4, "width": 0.031, "force": 0.0}
    assert encode_status("fork", GraspState.IDLE, 0.08, None)["header"]["stamp"] == {"sec": 0, "nanosec": 0}
    assert stamp_fields(2.999999999_9) == {"sec": 3, "nanosec": 0}
    with pytest.raises(ValueError, match="stamp"):
        stamp_fields(math.nan)
    with pytest.raises(ValueError, match="variant"):
        encode_status("wsg_99", GraspState.IDLE, 0.0, None)


def test_fork_stamp_survives_the_wire(ts: Any) -> None:
    msg = over_the_wire(ts, "fork", make(ts, "fork", stamp=1_700_000_000.5))
    stamp = msg.header.stamp
    assert (stamp.sec, stamp.nanosec, msg.header.frame_id) == (1_700_000_000, 500_000_000, "wsg50")


# ------------------------------------------------------------------------- decoding rules
def test_ros1_text_gives_faults_and_moving(ts: Any) -> None:
    def decode(text: str) -> WsgStatus:
        return decode_status("ros1", make(ts, "ros1", status=text))

    assert decode("SF_REFERENCED SF_MOVING") == WsgStatus(None, pytest.approx(0.04), True)
    assert decode("SF_REFERENCED") == WsgStatus(None, pytest.approx(0.04), False)
    assert decode("SF_REFERENCED SF_FAST_STOP").state is GraspState.ERROR
    assert decode("  ").moving is None


@pytest.mark.parametrize(
    ("variant", "raw_width", "width_m"),
    [
        ("fork", 0.05, 0.05),
        ("fork", -0.003, 0.0),  # a driver's zero offset, fingers pressed together
        ("fork", -0.01, None),
        ("fork", 2.0, None),  # over MAX_PLAUSIBLE_WIDTH_M
        ("fork", math.nan, None),
        ("fork", math.inf, None),
        ("ros1", 42.5, 0.0425),
        ("ros1", -3.0, 0.0),
        ("ros1", -30.0, None),
        ("ros1", 1500.0, None),
        ("ros2_port", math.nan, None),
        ("ros2_port", 110.0, 0.110),
    ],
)
def test_widths_through_plausible_width(ts: Any, variant: str, raw_width: float,
                                        width_m: float | None) -> None:
    got = decode_status(variant, make(ts, variant, width=raw_width)).width_m
    assert got == (None if width_m is None else pytest.approx(width_m))


@pytest.mark.parametrize(
    ("variant", "bad", "field"),
    [
        ("fork", {"grasping_state_id": 1.5}, "grasping_state_id"),
        ("fork", {"grasping_state_id": "4"}, "grasping_state_id"),
        ("fork", {"grasping_state_id": True}, "grasping_state_id"),
        ("fork", {"grasping_state_id": None}, "grasping_state_id"),
        ("fork", {"width": "wide"}, "width"),
        ("fork", {"width": None}, "width"),
        ("ros1", {"status": None}, "status"),
        ("ros1", {"status": b"IDLE"}, "status"),
        ("ros1", {"width": [1.0]}, "width"),
        ("ros2_port", {"object_grasped": 2}, "object_grasped"),
        ("ros2_port", {"object_grasped": "yes"}, "object_grasped"),
        ("ros2_port", {"status": 7}, "status"),
    ],
)
def test_malformed_value_is_a_value_error_naming_the_field(ts: Any, variant: str, bad: dict[str, Any],
                                                           field: str) -> None:
    with pytest.raises(ValueError, match=f"^{field}: "):
        decode_status(variant, make(ts, variant, **bad))


def test_missing_field_and_unknown_variant(ts: Any) -> None:
    ros1 = make(ts, "ros1")
    with pytest.raises(ValueError, match=r"^grasping_state_id: the message has no such field"):
        decode_status("fork", ros1)
    with pytest.raises(ValueError, match=r"^object_grasped: "):
        decode_status("ros2_port", ros1)
    with pytest.raises(ValueError, match=r"^variant: 'wsg_99'"):
        decode_status("wsg_99", ros1)
    # a flag stored as an integer 0 / 1 (a uint8 field of a hand-made type) still reads as a bool
    for flag, state in ((1, GraspState.HOLDING), (0, GraspState.NO_PART_FOUND)):
        msg = make(ts, "ros2_port", GraspState.HOLDING, object_grasped=flag)
        assert decode_status("ros2_port", msg).state is state
