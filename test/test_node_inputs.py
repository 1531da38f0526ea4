"""predictor_node's inputs and views over real DDS: compressed frames decide as raw ones, every input's QoS
is selectable, the debug image is drawn only for a subscriber, the sensor check compares no-contact frames
with the bundle's statistics."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import Image
from std_msgs.msg import Bool
from tactile_grasp_msgs.msg import GraspDecision

from helpers.bundles import make_random_bundle
from helpers.rig import (
    BrightnessPredictor,
    Driver,
    GraspScript,
    Rig,
    connected,
    overrides,
    run_grasp,
    start_predictor,
)
from helpers.streams import OPEN
from helpers.waiting import wait_for
from tactile_grasp_predictor.debug_view import PANEL_H, TEXT_H
from tactile_grasp_predictor.ros.debug_image import QOS as DEBUG_QOS
from tactile_grasp_predictor.ros.predictor_node import PredictorNode
from tactile_grasp_predictor.sensor_health import SensorReference

SCRIPTED = {"time_base": "receive", "trigger__frame_max_age_s": 5.0, "trigger__tb_timeout_s": 6.0}


def _fields(d: GraspDecision) -> tuple[object, ...]:
    return (d.grasp_id, d.verdict, round(d.p_success, 6), d.ta_stamp, d.tb_stamp, d.reason, d.reason_code)


def test_compressed_frames_decide_the_grasps_raw_frames_decide_and_moving_qos_is_selectable(
        ros_context) -> None:
    rig = Rig(ros_context)
    try:
        raw = rig.add(PredictorNode("raw_node", context=ros_context, loader=lambda _c: BrightnessPredictor(),
                                    parameter_overrides=overrides(**SCRIPTED, moving_topic="wsg50/moving")))
        packed = rig.add(PredictorNode("compressed_node", context=ros_context,
                                       loader=lambda _c: BrightnessPredictor(),
                                       parameter_overrides=overrides(**SCRIPTED, image_transport="compressed",
                                                                     moving_topic="wsg50/moving",
                                                                     moving_qos="sensor_data")))
        driver = rig.add(Driver(ros_context, "/raw_node/decision", compressed=True))
        from_packed: list[GraspDecision] = []
        driver.create_subscription(GraspDecision, "/compressed_node/decision", from_packed.append, 10)
        moving = driver.create_publisher(Bool, "/wsg50/moving", qos_profile_sensor_data)  # best effort
        rig.start()
        assert packed.input_topics["image"] == "/gelsight_left/image_raw/compressed"
        assert wait_for(lambda: driver.images.get_subscription_count() > 0
                        and driver.compressed is not None and driver.compressed.get_subscription_count() > 0)
        connected(driver)
        assert raw.model_ready.wait(30) and packed.model_ready.wait(30)
        run_grasp(driver, GraspScript(k0=0, tb_value=204))
        run_grasp(driver, GraspScript(k0=100, tb_value=51))
        assert wait_for(lambda: len(driver.decisions) == 2 and len(from_packed) == 2)
        assert [_fields(d) for d in from_packed] == [_fields(d) for d in driver.decisions]
        assert [d.verdict for d in from_packed] == [GraspDecision.LIFT, GraspDecision.ABORT]
        # A best-effort moving flag reaches the node that chose sensor_data, not the reliable one.
        assert wait_for(lambda: (moving.publish(Bool(data=False)), packed.received["/wsg50/moving"] > 0)[1])
        assert raw.received["/wsg50/moving"] == 0, "a reliable subscription matched a best-effort publisher"
    finally:
        rig.close()


def test_joint_state_effort_is_contact_evidence_live_as_offline(ros_context) -> None:
    """Ta and Tb alike (no gel deformation): only the fingers' effort says the grasp touched something."""
    rig, _node, driver = start_predictor(ros_context, BrightnessPredictor(), **SCRIPTED,
                                         trigger__contact_effort=5.0)
    try:
        run_grasp(driver, GraspScript(k0=0, tb_value=100))  # no effort: a closing on nothing, dismissed
        driver.effort = 12.0  # the WSG-50's grip force on the part
        run_grasp(driver, GraspScript(k0=100, tb_value=100))
        assert wait_for(lambda: len(driver.decisions) == 1)
        time.sleep(0.3)
        assert len(driver.decisions) == 1, "the effortless closing was decided"
        assert driver.decisions[0].reason == "model" and driver.decisions[0].grasp_id >= 1
    finally:
        rig.close()


def test_the_debug_image_is_drawn_only_for_a_subscriber(ros_context) -> None:
    rig = Rig(ros_context)
    try:
        node = rig.add(PredictorNode(context=ros_context, loader=lambda _c: BrightnessPredictor(),
                                     parameter_overrides=overrides(**SCRIPTED, debug_image=True,
                                                                   right_image_topic="gelsight_right/image_raw")))
        driver = rig.add(Driver(ros_context, right=True))
        viewer = rig.add(Node("viewer", context=ros_context))
        rig.start()
        connected(driver)
        assert node.model_ready.wait(30)
        debug = node.debug_image
        assert debug is not None
        run_grasp(driver, GraspScript(k0=0, tb_value=204))
        assert wait_for(lambda: len(driver.decisions) == 1)
        assert debug.rendered == 0, "drawn without a subscriber"

        images: list[Image] = []
        viewer.create_subscription(Image, "/predictor_node/debug_image", images.append, DEBUG_QOS)
        assert wait_for(debug.wanted)
        run_grasp(driver, GraspScript(k0=100, tb_value=204))
        assert wait_for(lambda: len(images) == 1)
        assert debug.rendered == 1
        msg = images[0]
        width = 3 * PANEL_H * 64 // 48  # Ta | Tb | difference, each 4:3 at PANEL_H
        assert (msg.encoding, msg.height, msg.width) == ("rgb8", 2 * PANEL_H + TEXT_H, width)
        img = np.frombuffer(bytes(msg.data), np.uint8).reshape(msg.height, msg.width, 3)
        mid, col = PANEL_H // 2, width // 6
        assert img[mid, col].tolist() == [100] * 3 and img[mid, 3 * col].tolist() == [204] * 3  # Ta, Tb
        assert img[mid, 5 * col].tolist() == [255] * 3  # |204 - 100| x 4, clipped
        assert img[PANEL_H + mid, col].tolist() == [155] * 3, "the right finger's Ta (its frames: 255 - left)"
        assert img[PANEL_H + mid, 3 * col].tolist() == [51] * 3
        caption = img[2 * PANEL_H + 2, 2]
        assert caption[1] > caption[0], "a LIFT caption is green"
    finally:
        rig.close()


def test_sensor_health_compares_no_contact_frames_with_the_bundles_statistics(
        ros_context, tmp_path: Path, one_thread: None) -> None:
    reference = SensorReference.from_frames([np.full((48, 64, 3), 100, np.uint8)] * 4)
    bundle = make_random_bundle(tmp_path / "b", size=32, metrics={"sensor_reference": reference.to_json()})
    rig = Rig(ros_context)
    try:
        node = rig.add(PredictorNode(context=ros_context,
                                     parameter_overrides=overrides(bundle_path=str(bundle), **SCRIPTED)))
        driver = rig.add(Driver(ros_context))
        rig.start()
        connected(driver)
        assert node.model_ready.wait(60)
        for value, level in ((100, "0"), (180, "1")):  # the training sensor, then a brighter one: WARN
            t_end = time.monotonic() + 3.5  # gripper open: one no-contact frame a second is checked
            k = 0
            while time.monotonic() < t_end:
                driver.frame(k, value=value)
                driver.joint(OPEN)
                k += 1
                time.sleep(1 / 30)
            assert wait_for(lambda lv=level: driver.last_diag("sensor").get("level") == lv), \
                driver.last_diag("sensor")
        sensor = driver.last_diag("sensor")
        assert sensor["message"].startswith("sensor drift: mean_"), sensor
        assert sensor["sensor_reference"] == "4 training frames"
        assert float(sensor["sensor_drift"]) > 4.0
    finally:
        rig.close()


def test_without_statistics_in_the_bundle_the_sensor_check_says_so(ros_context) -> None:
    rig, _node, driver = start_predictor(ros_context, BrightnessPredictor(), **SCRIPTED)
    try:
        assert wait_for(lambda: driver.last_diag("sensor").get("message", "").startswith("sensor check skip"))
        assert driver.last_diag("sensor")["level"] == "0"  # skipped is not a fault
    finally:
        rig.close()
