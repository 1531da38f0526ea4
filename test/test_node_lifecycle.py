"""predictor_node as a managed (lifecycle) node over real DDS: configure loads, activate decides,
deactivate stops deciding, cleanup unloads, and a bundle is swapped without a restart."""

from __future__ import annotations

import time

import pytest
from rcl_interfaces.msg import Log
from rclpy.node import Node
from rclpy.parameter import Parameter
from tactile_grasp_msgs.action import EvaluateGrasp
from tactile_grasp_msgs.msg import GraspDecision

from helpers.rig import (
    BrightnessPredictor,
    Driver,
    GraspScript,
    LifecycleClient,
    Rig,
    RosoutLog,
    connected,
    overrides,
    run_grasp,
)
from helpers.waiting import wait_for
from tactile_grasp_predictor.errors import BundleError
from tactile_grasp_predictor.node_config import NodeConfig
from tactile_grasp_predictor.ros.pick_gate import PickGate
from tactile_grasp_predictor.ros.predictor_node import PredictorNode


class DarkIsGood(BrightnessPredictor):
    """A second model: p = 1 - mean(Tb) / 255 (the same grasp, the other verdict)."""

    model_id = "dark-is-good"

    def predict(self, ta, tb) -> float:  # type: ignore[no-untyped-def]
        return 1.0 - super().predict(ta, tb)


MODELS = {"/models/bright": BrightnessPredictor(), "/models/dark": DarkIsGood()}


def load(cfg: NodeConfig) -> BrightnessPredictor:
    """The node's loader for the test models by ``bundle_path`` (an unknown path fails as a bundle does)."""
    path = str(cfg["bundle_path"])
    if path not in MODELS:
        raise BundleError(f"{path}: manifest.json not found")
    return MODELS[path]


def no_decision_after(driver: Driver, g: GraspScript, settle_s: float = 0.5) -> bool:
    """Run a grasp; tell whether no decision came (the node was not deciding)."""
    before = len(driver.decisions)
    run_grasp(driver, g)
    time.sleep(settle_s)
    return len(driver.decisions) == before


def test_lifecycle_loads_swaps_and_unloads_and_decides_only_when_active(ros_context) -> None:
    rig = Rig(ros_context)
    try:
        log = rig.add(RosoutLog(ros_context))
        node = rig.add(PredictorNode(context=ros_context, loader=load, parameter_overrides=overrides(
            managed=True, bundle_path="/models/bright", time_base="receive", trigger__frame_max_age_s=5.0,
            trigger__tb_timeout_s=6.0)))
        driver = rig.add(Driver(ros_context))
        states = rig.add(LifecycleClient(ros_context, "/predictor_node"))
        pipeline = Node("pipeline", context=ros_context)
        rig.start()
        gate = PickGate(pipeline)
        assert states.state() == "unconfigured" and node.worker is None  # nothing loaded yet

        # configure loads (and checks) the bundle before the transition succeeds; inactive: no decision.
        assert states.change("configure") and states.state() == "inactive"
        assert node.worker is not None and node.worker.predictor is MODELS["/models/bright"]
        assert node.session is not None and node.session.model_id == "brightness-test"
        assert gate.wait_for_server(30.0)
        inactive = gate.evaluate(timeout_s=5.0)  # answered at once, not after the timeout
        assert (inactive.error_code, inactive.code) == (EvaluateGrasp.Result.INACTIVE,
                                                        GraspDecision.REASON_INACTIVE)
        assert not gate.arm()  # the service answers; the node says it is not active
        assert no_decision_after(driver, GraspScript(k0=0, tb_value=204)), "an inactive node decided"

        # activate: subscribed, deciding.
        assert states.change("activate") and states.state() == "active"
        connected(driver)
        run_grasp(driver, GraspScript(k0=100, tb_value=204))
        assert wait_for(lambda: len(driver.decisions) == 1)
        first = driver.decisions[0]
        assert (first.model_id, first.verdict, first.grasp_id) == ("brightness-test", GraspDecision.LIFT, 1)

        # deactivate: no decisions; the configuration (and model) stays.
        assert states.change("deactivate") and states.state() == "inactive"
        assert no_decision_after(driver, GraspScript(k0=200, tb_value=204)), "a deactivated node decided"

        # swap: cleanup unloads, the bundle path can be set only now, configure loads the other model.
        refused = node.set_parameters([Parameter("bundle_path", value="/models/dark")])[0]
        assert not refused.successful and "the node is inactive" in refused.reason
        assert states.change("cleanup") and states.state() == "unconfigured" and node.worker is None
        assert node.set_parameters([Parameter("bundle_path", value="/models/dark")])[0].successful
        assert states.change("configure") and states.change("activate")
        connected(driver)
        run_grasp(driver, GraspScript(k0=300, tb_value=204))
        assert wait_for(lambda: len(driver.decisions) == 2)
        second = driver.decisions[1]
        assert (second.model_id, second.verdict) == ("dark-is-good", GraspDecision.ABORT)
        assert second.p_success == pytest.approx(1 - 204 / 255, abs=1e-3)
        assert second.grasp_id > first.grasp_id  # ids continue across configurations

        # A bundle that does not load fails configure with the cause at ERROR; the node stays unconfigured.
        assert states.change("deactivate") and states.change("cleanup")
        assert node.set_parameters([Parameter("bundle_path", value="/models/missing")])[0].successful
        assert not states.change("configure") and states.state() == "unconfigured"
        assert wait_for(lambda: log.find(Log.ERROR, "/models/missing", "manifest.json not found"))
        gate.destroy()
    finally:
        rig.close()


def test_plain_mode_configures_and_activates_itself(ros_context) -> None:
    rig = Rig(ros_context)
    try:
        node = rig.add(PredictorNode(context=ros_context, loader=load,
                                     parameter_overrides=overrides(bundle_path="/models/bright")))
        states = rig.add(LifecycleClient(ros_context, "/predictor_node"))
        rig.start()
        assert node.lifecycle_state == "active" and states.state() == "active"
        assert node.model_ready.wait(30) and node.worker is not None
    finally:
        rig.close()
