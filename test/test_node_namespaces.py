"""predictor_node in a robot's namespaces over real DDS: `/**` parameter files, two arms on one domain,
and what the log says about misspelt parameters and bundles that are unset or do not load."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from rcl_interfaces.msg import Log
from tactile_grasp_msgs.msg import GraspDecision

from helpers.rig import (
    BrightnessPredictor,
    Driver,
    GraspScript,
    Rig,
    RosoutLog,
    connected,
    overrides,
    run_grasp,
)
from helpers.waiting import wait_for
from tactile_grasp_predictor.ros.predictor_node import PredictorNode

SCRIPTED = {"time_base": "receive", "trigger__frame_max_age_s": 5.0, "trigger__tb_timeout_s": 6.0}


def test_a_namespaced_node_takes_its_topics_from_a_wildcard_parameter_file_and_names_a_typo(
        ros_context, tmp_path: Path) -> None:
    params = tmp_path / "my_robot.yaml"
    params.write_text(
        "/**:\n  ros__parameters:\n    image_topic: tactile/left/image_raw\n"
        "    joint_states_topic: gripper/joint_states\n    time_base: receive\n"
        "    image_topc: tactile/left/image_raw\n"  # misspelt: ignored by rclpy, warned by the node
        "    trigger:\n      frame_max_age_s: 5.0\n      tb_timeout_s: 6.0\n")
    rig = Rig(ros_context)
    try:
        log = rig.add(RosoutLog(ros_context))
        node = rig.add(PredictorNode(context=ros_context, namespace="left_arm",
                                     loader=lambda _cfg: BrightnessPredictor(),
                                     cli_args=["--ros-args", "--params-file", str(params)]))
        driver = rig.add(Driver(ros_context, namespace="/left_arm", image_topic="/tactile/left/image_raw",
                                joint_topic="/gripper/joint_states"))
        rig.start()
        assert node.input_topics == {"image": "/left_arm/tactile/left/image_raw",
                                     "joint_states": "/left_arm/gripper/joint_states"}
        assert node.cfg.trigger.tb_timeout_s == 6.0
        connected(driver)
        assert node.model_ready.wait(30)
        run_grasp(driver, GraspScript(k0=0, tb_value=204))
        assert wait_for(lambda: len(driver.decisions) == 1)  # on /left_arm/predictor_node/decision
        assert driver.decisions[0].verdict == GraspDecision.LIFT
        assert wait_for(lambda: log.find(Log.WARN, "image_topc", "did you mean 'image_topic'"))
    finally:
        rig.close()


def test_two_namespaced_nodes_on_one_domain_decide_their_own_grasps(ros_context) -> None:
    rig = Rig(ros_context)
    try:
        arms = {}
        for arm in ("left_arm", "right_arm"):
            node = rig.add(PredictorNode(context=ros_context, namespace=arm,
                                         loader=lambda _cfg: BrightnessPredictor(),
                                         parameter_overrides=overrides(**SCRIPTED)))
            arms[arm] = (node, rig.add(Driver(ros_context, namespace=f"/{arm}", name=f"driver_{arm}")))
        rig.start()
        for node, driver in arms.values():
            connected(driver)
            assert node.model_ready.wait(30)
        grasps = {"left_arm": GraspScript(k0=0, tb_value=230), "right_arm": GraspScript(k0=500, tb_value=30)}
        threads = [threading.Thread(target=run_grasp, args=(arms[a][1], g)) for a, g in grasps.items()]
        for t in threads:  # both arms grasp at the same time
            t.start()
        for t in threads:
            t.join()
        for _node, driver in arms.values():
            assert wait_for(lambda d=driver: len(d.decisions) >= 1)
        left, right = arms["left_arm"][1].decisions, arms["right_arm"][1].decisions
        assert len(left) == 1 and len(right) == 1, "each node decided exactly its own arm's grasp"
        assert left[0].verdict == GraspDecision.LIFT and right[0].verdict == GraspDecision.ABORT
        assert left[0].p_success == pytest.approx(230 / 255, abs=1e-3)
        assert right[0].p_success == pytest.approx(30 / 255, abs=1e-3)
    finally:
        rig.close()


def test_the_log_says_why_every_grasp_will_abort(ros_context, tmp_path: Path) -> None:
    """A bundle that does not load: ERROR with the cause. No bundle_path: a WARN saying what follows."""
    rig = Rig(ros_context)
    try:
        log = rig.add(RosoutLog(ros_context))
        missing = tmp_path / "nonexistent"
        broken = rig.add(PredictorNode("broken", context=ros_context,
                                       parameter_overrides=overrides(bundle_path=str(missing))))
        unset = rig.add(PredictorNode("unset", context=ros_context))
        rig.start()
        assert broken.model_ready.wait(60) and unset.model_ready.wait(60)
        said = "model unavailable, every grasp will ABORT"
        assert wait_for(lambda: log.find(Log.ERROR, said, str(missing)))
        error = log.find(Log.ERROR, str(missing))[0]
        assert "BundleError" in error and "not a bundle directory" in error, error  # the cause
        assert wait_for(lambda: log.find(Log.WARN, "bundle_path is not set: every grasp will ABORT"))
        assert not log.find(Log.ERROR, "bundle_path: not set")  # unset is a warning, not an error
    finally:
        rig.close()
