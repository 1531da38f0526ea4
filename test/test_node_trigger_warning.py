"""The node warns once, at load, when its trigger settings differ from the bundle's training frames'."""

from __future__ import annotations

from types import SimpleNamespace

from rcl_interfaces.msg import Log

from helpers.rig import BrightnessPredictor, Rig, RosoutLog, overrides
from helpers.waiting import wait_for
from tactile_grasp_predictor.ros.predictor_node import PredictorNode

TRAINED = {"source": "simulator protocol", "settings": {"tb_delay_s": 0.75, "settle_window_s": 0.25}}


def _model() -> BrightnessPredictor:
    model = BrightnessPredictor()
    model.bundle = SimpleNamespace(manifest={"trigger": TRAINED})  # type: ignore[attr-defined]
    return model


def test_a_trigger_unlike_the_training_frames_is_warned_about_once(ros_context) -> None:
    rig = Rig(ros_context)
    try:
        log = rig.add(RosoutLog(ros_context))
        default = rig.add(PredictorNode("default_trigger", context=ros_context, loader=lambda _c: _model()))
        same = overrides(trigger__tb_delay_s=0.75, trigger__settle_window_s=0.25)
        matching = rig.add(PredictorNode("matching_trigger", context=ros_context, loader=lambda _c: _model(),
                                         parameter_overrides=same))
        rig.start()
        assert default.model_ready.wait(60) and matching.model_ready.wait(60)
        said = "trigger settings differ from those the bundle's training frames were taken with"
        assert wait_for(lambda: log.find(Log.WARN, said))
        # the warning would come before the node's "model … loaded" line (one publisher: in order)
        assert wait_for(lambda: [n for lv, n, m in list(log.lines)
                                 if lv == Log.INFO and "matching" in n and "loaded" in m])
        warned = [(n, m) for lv, n, m in list(log.lines) if lv == Log.WARN and said in m]
        assert [n for n, _ in warned] == ["default_trigger"], warned  # once, and not for the matching node
        text = warned[0][1]
        assert "trigger.tb_delay_s is 0.1, the bundle's 0.75" in text
        assert "trigger.settle_window_s is 0.2, the bundle's 0.25" in text
    finally:
        rig.close()
