"""The predictor node's input subscriptions: topics, message types and QoS from its parameters.

One place says what the node listens to: the left (and optional right) GelSight stream as
``sensor_msgs/Image`` or, with ``image_transport: compressed``, ``sensor_msgs/CompressedImage``
on ``<image_topic>/compressed`` (image_transport's naming); the gripper's JointState; the
optional moving flag and WSG status. Every input's QoS is a parameter (``image_qos``,
``gripper_qos``, ``moving_qos``): ``sensor_data`` (best effort) matches every driver,
``reliable`` loses nothing to a stalled callback but needs a reliable driver.
:func:`subscribe` creates the subscriptions (at activate) and :func:`destroy` removes them
(at deactivate); :func:`decode` turns an image message of either transport into RGB.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from rclpy.callback_groups import CallbackGroup
from rclpy.node import Node
from rclpy.qos import QoSHistoryPolicy, QoSProfile, QoSReliabilityPolicy, qos_profile_sensor_data
from sensor_msgs.msg import CompressedImage, Image, JointState
from std_msgs.msg import Bool

from tactile_grasp_predictor.errors import ConfigError
from tactile_grasp_predictor.node_config import NodeConfig
from tactile_grasp_predictor.ros.conversions import compressed_to_rgb, image_to_rgb

#: The kinds of input, in the order they are subscribed (``received`` counts by resolved topic).
KINDS = ("image", "right_image", "joint_states", "moving", "grasp_state")


def qos(choice: str, reliable_depth: int) -> QoSProfile:
    """``sensor_data`` (best effort, depth 5) or ``reliable`` with ``reliable_depth`` (keep last)."""
    if choice == "sensor_data":
        return qos_profile_sensor_data
    return QoSProfile(depth=reliable_depth, reliability=QoSReliabilityPolicy.RELIABLE,
                      history=QoSHistoryPolicy.KEEP_LAST)


def status_type(type_name: str) -> Any:
    """Import the WSG status message class ``pkg/msg/Type``; :class:`ConfigError` naming the parameter."""
    pkg, _, name = type_name.split("/")
    try:
        return getattr(importlib.import_module(f"{pkg}.msg"), name)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"grasp_state_type: cannot import {type_name!r}: {exc}") from exc


def topics(cfg: NodeConfig) -> dict[str, str]:
    """Return the topic of each configured input kind, as given (relative names unresolved)."""
    suffix = "/compressed" if cfg["image_transport"] == "compressed" else ""
    out = {}
    for kind in KINDS:
        name = str(cfg[f"{kind}_topic"])
        if name:
            out[kind] = name + suffix if kind in ("image", "right_image") else name
    return out


def decode(cfg: NodeConfig, msg: Any, topic: str) -> np.ndarray:
    """Return the RGB frame of an image message of the configured transport (``image_encodings`` apply).

    Raises:
        FrameError: naming ``topic`` and the field.

    """
    if cfg["image_transport"] == "compressed":
        return compressed_to_rgb(msg, topic)
    return image_to_rgb(msg, cfg["image_encodings"], topic)


@dataclass(frozen=True)
class Handlers:
    """The node's callback per input kind (used for the kinds whose topic is set)."""

    image: Callable[[Any], None]
    right_image: Callable[[Any], None]
    joint_states: Callable[[JointState], None]
    moving: Callable[[Bool], None]
    grasp_state: Callable[[Any], None]


def subscribe(node: Node, cfg: NodeConfig, handlers: Handlers, group: CallbackGroup,
              status_msg: Any = None) -> list[Any]:
    """Create the configured inputs' subscriptions on ``node``; return them (for :func:`destroy`)."""
    image_type = CompressedImage if cfg["image_transport"] == "compressed" else Image
    # reliable images: depth 10 (a third of a second at 30 Hz) rides out a stalled callback without
    # losing frames; with time_base header a late frame keeps its capture time.
    types_qos = {
        "image": (image_type, qos(cfg["image_qos"], 10)),
        "right_image": (image_type, qos(cfg["image_qos"], 10)),
        "joint_states": (JointState, qos(cfg["gripper_qos"], 50)),
        "moving": (Bool, qos(cfg["moving_qos"], 10)),
        "grasp_state": (status_msg, qos(cfg["gripper_qos"], 50)),
    }
    subs = []
    for kind, topic in topics(cfg).items():
        msg_type, profile = types_qos[kind]
        assert msg_type is not None, f"{kind}: no message type"
        subs.append(node.create_subscription(msg_type, topic, getattr(handlers, kind), profile,
                                             callback_group=group))
    return subs


def destroy(node: Node, subscriptions: list[Any]) -> None:
    """Destroy ``subscriptions`` (and empty the list)."""
    for sub in subscriptions:
        node.destroy_subscription(sub)
    subscriptions.clear()
