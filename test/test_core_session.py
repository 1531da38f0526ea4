"""The grasp session: the one decision path of the node and the replay (no ROS)."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest

from helpers.streams import FREE, PRESSED
from tactile_grasp_predictor.decision import Decision, Verdict
from tactile_grasp_predictor.gate import PhaseChanged, Reason
from tactile_grasp_predictor.gripper import GraspState
from tactile_grasp_predictor.node_config import NodeConfig
from tactile_grasp_predictor.session import (
    GraspSession,
    InferenceJob,
    ModelStatus,
    SessionConfig,
    SessionOutput,
)
from tactile_grasp_predictor.tracker import TriggerConfig

IMG = np.full((4, 4, 3), 200, np.uint8)
RECEIVE = SessionConfig(time_base="receive")


class Fixed:
    model_id = "fixed"

    def __init__(self, p: float, threshold: float = 0.5) -> None:
        self.p, self.threshold, self.calls = p, threshold, 0

    def predict(self, ta: np.ndarray, tb: np.ndarray) -> float:
        self.calls += 1
        return self.p


def decisions(outs: list[SessionOutput]) -> list[Decision]:
    return [o for o in outs if isinstance(o, Decision)]


def jobs(outs: list[SessionOutput]) -> list[InferenceJob]:
    return [o for o in outs if isinstance(o, InferenceJob)]


def grasp_until_tb(s: GraspSession, t0: float = 0.0, frames: bool = True) -> list[SessionOutput]:
    """A clean grasp: open at 0.08 m, close to 0.04 m on a part, hold; frames every 50 ms (receive = t)."""
    out: list[SessionOutput] = []
    t = t0
    while t < t0 + 0.8:
        if frames:
            out += s.on_frame(None, t, FREE if t < t0 + 0.12 else PRESSED)
        width = 0.08 if t < t0 + 0.1 else 0.04
        out += s.on_gripper_width(None, t + 0.001, width)
        t = round(t + 0.05, 6)
    return out


def test_a_clean_grasp_runs_the_model_once_and_stamps_latency_on_the_receive_clock() -> None:
    s = GraspSession(RECEIVE)
    s.set_model("fixed", 0.5)
    out = grasp_until_tb(s)
    assert [o.phase for o in out if isinstance(o, PhaseChanged)] == ["closing", "settling", "predicting"]
    (job,) = jobs(out)
    assert s.phase == "predicting"
    pred = Fixed(0.7)
    d = s.decide(job, pred)
    assert math.isnan(d.latency_ms)  # not stamped yet
    done = s.complete(job, d, job.receive_t + 0.004)
    (stamped,) = decisions(done)
    assert stamped.verdict == Verdict.LIFT and stamped.reason == Reason.MODEL and stamped.model_id == "fixed"
    assert stamped.latency_ms == pytest.approx(4.0)
    assert stamped.t_decision == pytest.approx(job.receive_t + 0.004)
    assert s.phase == "waiting" and s.counts.lift == 1 and s.counts.last_decision == stamped
    assert pred.calls == 1


@pytest.mark.parametrize(("override", "model", "expected"),
                         [(None, 0.3, 0.3), (0.8, 0.3, 0.8), (None, None, math.nan), (0.6, None, 0.6)])
def test_threshold_is_the_override_else_the_models_else_nan(override: float | None, model: float | None,
                                                             expected: float) -> None:
    s = GraspSession(SessionConfig(time_base="receive", threshold=override))
    if model is not None:
        s.set_model("m", model)
    assert s.threshold == expected or (math.isnan(expected) and math.isnan(s.threshold))


def test_no_model_never_lifts_and_says_model_unavailable() -> None:
    s = GraspSession(RECEIVE)  # no set_model: threshold NaN
    (job,) = jobs(grasp_until_tb(s))
    (d,) = decisions(s.complete(job, s.decide(job, None), job.receive_t))
    assert d.verdict == Verdict.ABORT and d.reason == Reason.MODEL_UNAVAILABLE and math.isnan(d.threshold)


def test_frame_starved_aborts_after_malformed_frames_are_bad_frame() -> None:
    s = GraspSession(RECEIVE)
    s.on_frame(None, 0.0, IMG)  # Ta; then only malformed frames
    out: list[SessionOutput] = []
    for k in range(1, 20):
        t = k * 0.05
        s.on_bad_frame(t, "Image.step: too small")
        out += s.on_gripper_width(None, t + 0.001, 0.08 if t < 0.1 else 0.04)
    (d,) = decisions(out)  # the gate says stale_frame: no frame came when Tb was due
    assert d.reason == Reason.BAD_FRAME and d.ta_stamp == 0.0 and s.counts.bad_frames == 19
    assert s.counts.last_bad_frame == "Image.step: too small"
    # a good frame clears it: a grasp starved of frames afterwards keeps the gate's reason
    s.on_frame(None, 1.0, IMG)
    out = [*s.on_gripper_width(None, 1.5, 0.08), *s.on_gripper_width(None, 3.0, 0.08),
           *s.on_gripper_width(None, 3.05, 0.04), *s.on_gripper_width(None, 3.5, 0.04)]
    (d2,) = decisions(out)
    assert d2.reason == Reason.NO_PRE_CONTACT_FRAME


def test_reject_aborts_overloaded_and_moves_the_phase_on() -> None:
    s = GraspSession(RECEIVE)
    s.set_model("m", 0.5)
    (job,) = jobs(grasp_until_tb(s))
    (d,) = decisions(s.reject(job, Reason.OVERLOADED, job.receive_t + 0.001))
    assert d.verdict == Verdict.ABORT and d.reason == Reason.OVERLOADED and math.isnan(d.p_success)
    assert d.ta_stamp is not None and d.tb_stamp is not None and d.model_id == "m"
    assert s.phase == "waiting" and s.counts.abort == 1


def test_no_decision_is_an_uncounted_abort_for_the_action() -> None:
    s = GraspSession(SessionConfig(time_base="receive", threshold=0.4))
    d = s.no_decision(Reason.TB_TIMEOUT, 3.0)
    assert (d.verdict, d.reason, d.grasp_id, d.threshold) == (Verdict.ABORT, "tb_timeout", 0, 0.4)
    assert math.isnan(d.latency_ms) and d.ta_stamp is None and s.counts.abort == 0


def test_status_only_updates_the_state_with_joint_states_and_is_the_sample_without() -> None:
    seen = []
    s = GraspSession(RECEIVE, on_sample=seen.append)
    s.on_moving(True)
    assert s.on_status(None, 0.1, None, 0.05) == [] and not seen  # names no state: nothing fed
    s.on_status(None, 0.2, GraspState.GRASPING, 0.05)
    last = seen[-1]
    assert last.width_m is None and last.grasp_state == GraspState.GRASPING and last.moving is True
    s.on_gripper_width(None, 0.3, 0.05)
    assert (seen[-1].width_m, seen[-1].grasp_state) == (0.05, GraspState.GRASPING)  # carries the latest state
    offline = GraspSession(SessionConfig(time_base="receive", joint_states=False), on_sample=seen.append)
    offline.on_status(None, 0.4, GraspState.IDLE, 0.07, moving=False)
    assert (seen[-1].width_m, seen[-1].moving) == (0.07, False)
    offline.on_status(None, 0.5, GraspState.IDLE, None)
    assert offline.counts.ignored_gripper == 1


def test_a_headerless_status_is_timed_by_its_receive_time() -> None:
    s = GraspSession(SessionConfig(time_base="header"))
    s.on_gripper_width(100.0, 100.003, 0.08)  # stamps 3 ms behind receive
    s.on_status(None, 100.05, GraspState.IDLE, has_header=False)
    assert s.last_t == pytest.approx(100.047)  # receive - min offset: on the stamp clock
    assert s.timebase.fallbacks == 0  # no stamp expected: not a fallback


def test_ticks_follow_the_watchdog_clock_and_never_go_back() -> None:
    s = GraspSession(SessionConfig(time_base="header", time_watchdog_slack_s=0.1))
    s.on_frame(9.99, 10.01, IMG)
    s.on_gripper_width(10.0, 10.02, 0.08)
    s.on_gripper_width(10.05, 10.07, 0.04)  # closing
    assert s.on_tick(10.1) == []  # watchdog time 10.1 - 0.02 - 0.1 < newest stamp
    out = s.on_tick(11.2)  # 11.08: past the gripper silence deadline 10.05 + 1.0
    (d,) = decisions(out)
    assert d.reason == Reason.GRIPPER_SILENT and d.latency_ms == pytest.approx((11.2 - 0.02 - 11.05) * 1000)


def test_flush_fires_pending_timeouts_at_their_deadlines() -> None:
    s = GraspSession(RECEIVE)
    s.on_frame(None, 0.0, IMG)
    s.on_gripper_width(None, 0.01, 0.08)
    s.on_gripper_width(None, 0.05, 0.04)
    (d,) = decisions(s.flush())
    assert d.reason == Reason.GRIPPER_SILENT and d.latency_ms == 0.0 and d.t_decision == pytest.approx(1.05)
    assert GraspSession().flush() == []


def test_reconfigure_rearms_only_on_a_trigger_change() -> None:
    s = GraspSession(RECEIVE)
    s.on_frame(None, 0.0, IMG)
    s.on_gripper_width(None, 0.01, 0.08)
    s.on_gripper_width(None, 0.05, 0.04)
    assert s.phase == "closing"
    s.reconfigure(SessionConfig(time_base="receive", threshold=0.3))
    assert s.phase == "closing" and s.threshold == 0.3
    s.reconfigure(SessionConfig(trigger=TriggerConfig(tb_delay_s=0.2), time_base="receive"))
    assert s.phase == "waiting"


def test_from_node_config_takes_the_nodes_parameters() -> None:
    cfg = NodeConfig.from_values({"time_base": "receive", "threshold": 0.7, "trigger.tb_delay_s": 0.3,
                                  "time_watchdog_slack_s": 0.2})
    sc = SessionConfig.from_node_config(cfg)
    got = (sc.time_base, sc.threshold, sc.trigger.tb_delay_s, sc.time_watchdog_slack_s)
    assert got == ("receive", 0.7, 0.3, 0.2)
    assert SessionConfig.from_node_config(NodeConfig.from_values({})).threshold is None


def test_health_levels() -> None:
    s = GraspSession(RECEIVE)
    assert s.health(0.0, ModelStatus(loading=True)).level == "warn"
    h = s.health(0.0, ModelStatus(error="BundleError: bundle_path: not set"))
    assert (h.level, h.message) == ("error", "model unavailable: BundleError: bundle_path: not set")
    ok = ModelStatus(available=True, model_id="m")
    assert s.health(0.0, ok).message == "no frames received"
    s.on_frame(None, 0.0, IMG)
    s.on_bad_frame(0.01, "x")
    assert s.health(0.02, ok).message == "malformed frames"
    s.on_frame(None, 0.03, IMG)
    assert s.health(0.04, ok).message == "no gripper state received"
    assert s.health(5.0, ok).message.startswith("frames stale")
    s.on_gripper_width(None, 0.05, 0.08)
    h = s.health(0.06, ok)
    assert h.level == "ok" and h.values["frames_received"] == "2" and h.values["bad_frames"] == "1"


# -- the gripper's veto until the decision (issue #19), live and offline alike -----------------------
def _until_job(s: GraspSession) -> InferenceJob:
    """Play :func:`grasp_until_tb`'s grasp only until the job comes (Tb: nothing received after it)."""
    s.set_model("fixed", 0.5)
    t = 0.0
    while True:
        out = s.on_frame(None, t, FREE if t < 0.12 else PRESSED)
        if jobs(out):
            return jobs(out)[0]
        s.on_gripper_width(None, t + 0.001, 0.08 if t < 0.1 else 0.04)
        t = round(t + 0.05, 6)


def test_a_report_while_the_model_runs_aborts_and_voids_the_answer() -> None:
    """The node's way: the worker hands the answer in when it finishes; inputs came meanwhile."""
    s = GraspSession(RECEIVE)
    job = _until_job(s)
    t = job.receive_t
    (veto,) = decisions(s.on_gripper_width(None, t + 0.01, 0.0))  # fully closed: the part is gone
    assert (veto.verdict, veto.reason, veto.grasp_id) == (Verdict.ABORT, Reason.NO_PART_FOUND, 1)
    assert veto.tb_stamp == job.snapshot.tb.t and math.isnan(veto.p_success)
    assert s.complete(job, s.decide(job, Fixed(1.0)), t + 0.03) == []
    assert s.counts.void_results == 1 and s.counts.lift == 0 and s.counts.abort == 1
    assert s.gripper_only == {1: False}


def test_a_replay_answer_waits_for_the_inputs_received_before_it() -> None:
    """The replay's way: the answer is handed in at once, dated Tb + compute time; the same outcome."""
    cases = ((0.01, (Verdict.ABORT, Reason.NO_PART_FOUND)), (0.05, (Verdict.LIFT, Reason.MODEL)))
    for veto_at, expected in cases:
        s = GraspSession(RECEIVE)
        job = _until_job(s)
        t = job.receive_t
        held = s.complete(job, s.decide(job, Fixed(1.0)), t + 0.03, wait_for_inputs=True)  # 30 ms of compute
        assert held == []
        assert s.phase == "predicting"
        out = s.on_gripper_width(None, t + veto_at, 0.0)
        out += s.on_gripper_width(None, t + 0.07, 0.0)
        (d,) = decisions(out)
        assert (d.verdict, d.reason) == expected
        if d.reason == Reason.MODEL:  # released by the input at t + 50 ms, stamped at its own time
            assert d.latency_ms == pytest.approx(30.0) and d.t_decision == pytest.approx(t + 0.03)
    s = GraspSession(RECEIVE)
    job = _until_job(s)
    s.complete(job, s.decide(job, Fixed(1.0)), job.receive_t + 0.03, wait_for_inputs=True)
    (d,) = decisions(s.flush())  # the end of the bag hands it in
    assert d.verdict == Verdict.LIFT
    s = GraspSession(RECEIVE)  # the node: what came in while the model ran was handled already
    job = _until_job(s)
    (d,) = decisions(s.complete(job, s.decide(job, Fixed(1.0)), job.receive_t + 0.03))
    assert d.verdict == Verdict.LIFT and d.latency_ms == pytest.approx(30.0)


def test_the_node_pattern_with_a_real_worker_thread() -> None:
    """The inference worker thread runs the model while the input thread reports the gripper's ERROR."""
    import threading

    from tactile_grasp_predictor.inference import InferenceWorker

    started, release = threading.Event(), threading.Event()

    class Slow(Fixed):
        def predict(self, ta: np.ndarray, tb: np.ndarray) -> float:
            started.set()
            release.wait(10.0)
            return 1.0

    lock = threading.Lock()
    s = GraspSession(RECEIVE)
    published: list[Decision] = []
    clock = [0.0]

    def run(job: InferenceJob, predictor: object) -> None:
        decision = s.decide(job, predictor)  # type: ignore[arg-type]
        with lock:
            published.extend(decisions(s.complete(job, decision, clock[0])))

    worker = InferenceWorker(lambda: Slow(1.0), run, max_pending=2)  # type: ignore[arg-type]
    try:
        assert worker.loaded.wait(10.0)
        with lock:
            job = _until_job(s)
            assert worker.submit(job)
        assert started.wait(10.0)
        with lock:  # the input thread, while the model runs
            clock[0] = job.receive_t + 0.01
            published.extend(decisions(s.on_status(None, clock[0], GraspState.ERROR)))
            clock[0] = job.receive_t + 0.02
        release.set()
        deadline = time.monotonic() + 10.0
        while s.counts.void_results == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        release.set()
        worker.stop()
    assert [(d.verdict, d.reason) for d in published] == [(Verdict.ABORT, Reason.GRIPPER_ERROR)]
    assert s.counts.void_results == 1
