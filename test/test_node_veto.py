"""predictor_node over real DDS: the gripper's word while the model runs (issue #19, the gate).

The model takes its time on the inference thread; meanwhile the driver reports the fingers fully
closed (the part slipped out). The node must publish ABORT ``no_part_found`` and never the
model's LIFT, which comes after the gripper ended the grasp. The same grasp without the report
is LIFTed (the test is not vacuous).
"""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
import rclpy

from helpers.rig import HELD, Driver, start_predictor
from helpers.streams import OPEN
from helpers.waiting import wait_for


class Held:
    """A model that says LIFT (p = 0.9) once released; ``started`` is set when it begins."""

    model_id, threshold = "held", 0.5

    def __init__(self) -> None:
        self.started, self.release = threading.Event(), threading.Event()

    def predict(self, ta: np.ndarray, tb: np.ndarray) -> float:
        self.started.set()
        self.release.wait(20.0)
        return 0.9


def grasp_until_the_model_runs(d: Driver, model: Held) -> None:
    """Open with frames at rest, close onto a part, hold; frames show the gel pressed: Tb, the model runs."""
    for k in range(6):
        d.frame(k, value=100)
        d.joint(OPEN)
        time.sleep(1 / 30)
    for w in np.linspace(OPEN, HELD, 10)[1:]:
        d.joint(float(w))
        time.sleep(0.02)
    deadline = time.monotonic() + 10.0
    k = 100
    while not model.started.is_set() and time.monotonic() < deadline:
        d.joint(HELD)
        d.frame(k, value=200)  # pressed
        k += 1
        time.sleep(1 / 30)
    assert model.started.is_set(), "the model never started"


@pytest.mark.parametrize("veto", [True, False], ids=["fully-closed-meanwhile", "undisturbed"])
def test_fully_closed_while_the_model_runs_is_no_part_found(ros_context: rclpy.context.Context,
                                                              veto: bool) -> None:
    model = Held()
    rig, node, d = start_predictor(ros_context, model)
    try:
        grasp_until_the_model_runs(d, model)
        if veto:
            for _ in range(5):  # the part slipped out: the fingers close fully
                d.joint(0.0)
                time.sleep(0.02)
            assert wait_for(lambda: len(d.decisions) >= 1, 10.0), "no ABORT while the model ran"
        model.release.set()
        assert wait_for(lambda: len(d.decisions) >= 1, 20.0)
        session = node.session
        assert session is not None
        if veto:  # the model's late answer is void, never published
            assert wait_for(lambda: session.counts.void_results == 1, 5.0)
        time.sleep(0.3)
        reasons = [(m.verdict, m.reason) for m in d.decisions]
        assert reasons == ([(0, "no_part_found")] if veto else [(1, "model")])
    finally:
        model.release.set()
        rig.close()
