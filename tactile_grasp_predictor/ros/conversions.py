"""ROS messages ⇄ the core's plain types (stamps, images, joint states, decisions).

The core never sees a message: times are float seconds, images RGB uint8 ``H x W x 3``
arrays, gripper input :class:`~tactile_grasp_predictor.gripper.GripperSample`.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence

import numpy as np
from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from sensor_msgs.msg import CompressedImage, Image, JointState
from tactile_grasp_msgs.msg import GraspDecision

from tactile_grasp_predictor.decision import Decision, Verdict
from tactile_grasp_predictor.errors import FrameError
from tactile_grasp_predictor.image_codec import decode_compressed, decode_image, encode_image
from tactile_grasp_predictor.session import Health


def stamp_to_float(stamp: Time) -> float | None:
    """Seconds of a header stamp; ``None`` for the empty (zero) stamp many drivers send."""
    if stamp.sec == 0 and stamp.nanosec == 0:
        return None
    return float(stamp.sec) + 1e-9 * float(stamp.nanosec)


def float_to_stamp(t: float | None) -> Time:
    """Return a ``builtin_interfaces/Time`` from seconds (zero for ``None`` or non-finite values)."""
    if t is None or not math.isfinite(t) or t <= 0.0:
        return Time()
    ns = round(t * 1e9)
    return Time(sec=ns // 1_000_000_000, nanosec=ns % 1_000_000_000)


def image_to_rgb(msg: Image, accepted: Collection[str], topic: str = "image") -> np.ndarray:
    """Decode a ``sensor_msgs/Image`` to RGB uint8 ``H x W x 3`` (a view where possible).

    The one decoder of the node and the replay (:func:`~tactile_grasp_predictor.image_codec.decode_image`,
    its table of encodings narrowed to ``accepted``): unpadded ``rgb8``/``bgr8``/``8UC3`` frames
    come back as views of the message buffer, without a copy (most frames are never Ta/Tb; the
    preprocessing copies the two that are).

    Raises:
        FrameError: naming the topic and the field, for an encoding not in the table or not in
            ``accepted``, or a message whose size, step, endianness flag or data length do not agree.

    """
    try:
        return decode_image(msg.encoding, msg.height, msg.width, msg.step, msg.data, msg.is_bigendian,
                            accepted=accepted, copy=False)
    except FrameError as exc:
        raise FrameError(f"{topic}: {exc}") from exc


def compressed_to_rgb(msg: CompressedImage, topic: str = "image/compressed") -> np.ndarray:
    """Decode a ``sensor_msgs/CompressedImage`` (jpeg, png) to RGB uint8 ``H x W x 3``.

    Raises:
        FrameError: naming the topic and the field (an unknown format, data that does not decode).

    """
    try:
        return decode_compressed(msg.format, msg.data)
    except FrameError as exc:
        raise FrameError(f"{topic}: {exc}") from exc


def rgb_to_image(rgb: np.ndarray, encoding: str, stamp: Time, frame_id: str) -> Image:
    """Encode an RGB uint8 array as a ``sensor_msgs/Image`` in ``encoding``, as a camera driver does."""
    assert rgb.dtype == np.uint8 and rgb.ndim == 3 and rgb.shape[2] == 3, rgb.shape
    step, data = encode_image(rgb, encoding)
    msg = Image()
    msg.header.stamp = stamp
    msg.header.frame_id = frame_id
    msg.height, msg.width = int(rgb.shape[0]), int(rgb.shape[1])
    msg.encoding = encoding
    msg.is_bigendian = 0
    msg.step = int(step)
    msg.data = bytes(data)
    return msg


def rgb_to_compressed(rgb: np.ndarray, kind: str, stamp: Time, frame_id: str) -> CompressedImage:
    """Encode an RGB uint8 array as a ``sensor_msgs/CompressedImage`` (``kind``: png or jpeg).

    As image_transport's compressed publisher does: format ``"rgb8; <kind> compressed bgr8"``.
    """
    import cv2

    assert rgb.dtype == np.uint8 and rgb.ndim == 3 and rgb.shape[2] == 3, rgb.shape
    ok, buf = cv2.imencode(".png" if kind == "png" else ".jpg", np.ascontiguousarray(rgb[:, :, ::-1]))
    assert ok, f"OpenCV could not encode a {rgb.shape} frame as {kind}"
    msg = CompressedImage(format=f"rgb8; {kind} compressed bgr8", data=buf.tobytes())
    msg.header.stamp = stamp
    msg.header.frame_id = frame_id
    return msg


def finger_joint_state(width_m: float, stamp: Time, names: tuple[str, str]) -> JointState:
    """Build a JointState the WSG-50 way: two finger joints at ∓width/2 metres."""
    msg = JointState()
    msg.header.stamp = stamp
    msg.name = list(names)
    msg.position = [-0.5 * width_m, 0.5 * width_m]
    return msg


def reason_code(reason: str) -> int:
    """Return the stable ``GraspDecision.REASON_*`` number of a reason (``REASON_OTHER`` if it has none)."""
    return int(getattr(GraspDecision, f"REASON_{reason.upper()}", GraspDecision.REASON_OTHER))


def decision_to_msg(decision: Decision, frame_id: str, stamp: Time) -> GraspDecision:
    """Convert a core :class:`Decision` to a ``GraspDecision`` (LIFT only if the core said so)."""
    msg = GraspDecision()
    msg.header.stamp = stamp
    msg.header.frame_id = frame_id
    msg.grasp_id = int(decision.grasp_id) & 0xFFFFFFFF
    msg.verdict = GraspDecision.LIFT if decision.verdict == Verdict.LIFT else GraspDecision.ABORT
    msg.p_success = float(decision.p_success) if decision.p_success is not None else math.nan
    msg.threshold = float(decision.threshold) if decision.threshold is not None else math.nan
    msg.ta_stamp = float_to_stamp(decision.ta_stamp)
    msg.tb_stamp = float_to_stamp(decision.tb_stamp)
    msg.latency_ms = float(decision.latency_ms) if decision.latency_ms is not None else math.nan
    msg.reason = str(decision.reason)
    msg.reason_code = reason_code(msg.reason)
    msg.model_id = str(decision.model_id or "")
    return msg


_LEVELS = {"ok": DiagnosticStatus.OK, "warn": DiagnosticStatus.WARN, "error": DiagnosticStatus.ERROR}


def health_to_msg(statuses: Sequence[tuple[str, Health]], hardware_id: str, stamp: Time) -> DiagnosticArray:
    """Convert ``(name, Health)`` pairs (the grasp gate's, the sensor's) to a ``DiagnosticArray``."""
    array = DiagnosticArray()
    for name, health in statuses:
        status = DiagnosticStatus(level=_LEVELS[health.level], name=name, message=health.message,
                                  hardware_id=hardware_id)
        status.values = [KeyValue(key=k, value=v) for k, v in health.values.items()]
        array.status.append(status)
    array.header.stamp = stamp
    return array
