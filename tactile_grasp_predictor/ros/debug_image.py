"""``~/debug_image``: each decision drawn as an image, only while someone is looking.

With ``debug_image: true`` the node publishes a ``sensor_msgs/Image`` (``rgb8``) per decision:
Ta, Tb and their amplified difference with grasp id, verdict, p and reason
(:func:`~tactile_grasp_predictor.debug_view.render_decision`), plus the right finger's frames
nearest Ta and Tb where the node has a right stream. It is lazy: without a subscriber
:meth:`DebugImagePublisher.offer` returns after one subscription-count query and nothing is
drawn or kept (``benchmarks/bench_node.py`` prints the cost of both). Reliable, depth 1,
volatile: rqt_image_view and Foxglove's image panel subscribe with compatible QoS.
"""

from __future__ import annotations

import math
import time

import numpy as np
from rclpy.node import Node
from rclpy.qos import QoSHistoryPolicy, QoSProfile, QoSReliabilityPolicy
from sensor_msgs.msg import Image

from tactile_grasp_predictor.debug_view import RecentFrames, render_decision
from tactile_grasp_predictor.decision import Decision, Verdict
from tactile_grasp_predictor.gate import Frame
from tactile_grasp_predictor.ros.conversions import rgb_to_image
from tactile_grasp_predictor.session import InferenceJob

QOS = QoSProfile(depth=1, reliability=QoSReliabilityPolicy.RELIABLE, history=QoSHistoryPolicy.KEEP_LAST)


def _key(frame: Frame) -> float:
    """Return the time a right frame is matched against: the header stamp, else the frame's time."""
    return frame.stamp if frame.stamp is not None else frame.t


class DebugImagePublisher:
    """Renders and publishes decisions on ``~/debug_image`` while it has subscribers."""

    def __init__(self, node: Node, right: bool) -> None:
        self._node = node
        self._pub = node.create_publisher(Image, "~/debug_image", QOS)
        self._right = RecentFrames() if right else None
        self.rendered = 0  # images drawn and published
        self.render_s = 0.0  # time spent drawing them

    @property
    def topic(self) -> str:
        """The resolved topic name."""
        return str(self._pub.topic_name)

    def wanted(self) -> bool:
        """Tell whether anyone subscribes (one rmw query; the only cost without a subscriber)."""
        return self._pub.get_subscription_count() > 0

    def add_right(self, t: float, image: np.ndarray) -> None:
        """Keep a right-finger frame (stamp, else receive time ``t``) while someone watches."""
        if self._right is not None and self.wanted():
            self._right.add(t, image)

    def offer(self, decision: Decision, job: InferenceJob | None, frame_id: str) -> bool:
        """Publish ``decision`` drawn with the job's Ta/Tb if anyone subscribes; return whether it did."""
        if not self.wanted():
            return False
        t0 = time.perf_counter()
        ta = tb = None
        right = None
        if job is not None:
            ta, tb = job.snapshot.ta.pixels(), job.snapshot.tb.pixels()
            if self._right is not None:
                right = (self._right.nearest(_key(job.snapshot.ta)),
                         self._right.nearest(_key(job.snapshot.tb)))
        elif self._right is not None:
            right = (None, None)
        p = math.nan if decision.p_success is None else float(decision.p_success)
        th = math.nan if decision.threshold is None else float(decision.threshold)
        rgb = render_decision(ta, tb, grasp_id=decision.grasp_id, lift=decision.verdict == Verdict.LIFT,
                              p=p, threshold=th, reason=str(decision.reason), right=right)
        self._pub.publish(rgb_to_image(rgb, "rgb8", self._node.get_clock().now().to_msg(), frame_id))
        self.rendered += 1
        self.render_s += time.perf_counter() - t0
        return True

    def destroy(self) -> None:
        """Destroy the publisher."""
        self._node.destroy_publisher(self._pub)
