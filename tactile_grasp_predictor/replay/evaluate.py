"""Offline replay: a bag's messages through the node's own gate, predictor and ``decide``.

Deterministic and DDS-free: every message enters the core in its recorded order, timed by the
node's rule (:class:`~tactile_grasp_predictor.timebase.TimeBase`, ``time_base``): its header
stamp (``header``, the default; an empty stamp falls back to the recorded receive time) or its
recorded receive time (``receive``); frames via :meth:`GraspGate.on_frame`, gripper inputs via
:meth:`GraspGate.on_gripper`, exactly as the node feeds them live. Images stay undecoded until
a frame is picked as Ta or Tb (``lazy=True``); ``lazy=False`` decodes every frame on arrival
(the benchmark baseline, and what a node that decodes in its callback does).

Per grasp the result holds the :class:`~tactile_grasp_predictor.decision.Decision`, the
label (from an outcome topic or a CSV sidecar) and the gripper-only baseline's verdict
(LIFT whenever the gripper settles with the fingers not fully closed / reports HOLDING;
ABORT on no part, fault or opening), from a second tracker fed the same gripper samples.

Example::

    predictor = Predictor.from_bundle("bundle/")
    result = evaluate_bag(Path("grasps_mcap"), predictor)
    for g in result.grasps:
        print(g.grasp_id, g.decision.verdict.name, g.label)
"""

from __future__ import annotations

import csv
import math
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tactile_grasp_predictor.decision import Decision, Verdict, abort_decision, decide
from tactile_grasp_predictor.errors import BagError
from tactile_grasp_predictor.gate import Frame, GraspAborted, GraspGate, PhaseChanged, SnapshotReady
from tactile_grasp_predictor.gripper import GraspState, GripperSample
from tactile_grasp_predictor.replay.bag_source import (
    BagSource,
    FrameItem,
    GripperItem,
    JointWidth,
    LazyImage,
    OutcomeItem,
    ResolvedTopics,
    Skipped,
    TopicSelection,
)
from tactile_grasp_predictor.timebase import TimeBase
from tactile_grasp_predictor.tracker import (
    GraspPhaseTracker,
    GripperFault,
    NoPart,
    Opened,
    Settled,
    TriggerConfig,
)

_PLACEHOLDER = np.zeros((0, 0, 3), np.uint8)  # image of a frame not decoded yet


@dataclass(frozen=True, eq=False)
class LazyFrame(Frame):
    """A :class:`Frame` whose pixels are decoded only if it becomes Ta or Tb."""

    lazy: LazyImage | None = None

    def pixels(self) -> np.ndarray:
        """Return the decoded RGB image (decoding it now if needed)."""
        return self.lazy.decode() if self.lazy is not None else self.image


class _LazyPredictor:
    """Decodes Ta/Tb on demand, then calls the real predictor (FrameError → ``bad_frame`` in decide)."""

    def __init__(self, predictor: Any, snapshot: SnapshotReady) -> None:
        self._predictor = predictor
        self._snapshot = snapshot

    @property
    def model_id(self) -> str:
        return str(getattr(self._predictor, "model_id", "") or "")

    def predict(self, ta: np.ndarray, tb: np.ndarray) -> float:
        s = self._snapshot
        ta_img = s.ta.pixels() if isinstance(s.ta, LazyFrame) else ta
        tb_img = s.tb.pixels() if isinstance(s.tb, LazyFrame) else tb
        return float(self._predictor.predict(ta_img, tb_img))


# ------------------------------------------------------------------------------ labels
@dataclass
class LabelTable:
    """Labels from a CSV sidecar.

    Columns: ``label`` (1/0, true/false, lift/abort; empty = unknown) and either ``t_start``,
    ``t_end`` (log-time window, s, containing the grasp's closing onset; preferred, as it stays
    right when the gate splits or misses a grasp) or ``grasp`` (or ``grasp_id``: the 1-based grasp
    number in the bag). An optional ``bag`` column restricts a row to the bag of that name.
    """

    rows: list[dict[str, str]]
    source: str

    @classmethod
    def read(cls, path: Path) -> LabelTable:
        """Read and check a labels CSV; :class:`BagError` names the file and line."""
        path = Path(path)
        try:
            with path.open(newline="") as f:
                rows = list(csv.DictReader(f))
        except OSError as exc:
            raise BagError(f"{path}: cannot read labels: {exc}") from exc
        if not rows:
            return cls([], str(path))
        cols = set(rows[0])
        if "label" not in cols or not ({"grasp", "grasp_id"} & cols or {"t_start", "t_end"} <= cols):
            raise BagError(
                f"{path}: labels CSV needs 'label' and 'grasp' (or 't_start','t_end'); got {sorted(cols)}"
            )
        for i, row in enumerate(rows, start=2):
            try:
                _parse_label(row.get("label", ""))
            except ValueError as exc:
                raise BagError(f"{path}:{i}: {exc}") from exc
        return cls(rows, str(path))

    def lookup(self, bag: str, grasp_id: int, t_onset: float | None) -> bool | None:
        """Return the label of grasp ``grasp_id`` (onset ``t_onset``) in ``bag``, ``None`` if unknown."""
        for row in self.rows:
            if row.get("bag") and row["bag"] != bag:
                continue
            if row.get("t_start") and row.get("t_end"):  # a time window: robust to split or missed grasps
                if t_onset is not None and float(row["t_start"]) <= t_onset < float(row["t_end"]):
                    return _parse_label(row["label"])
            elif int(row.get("grasp") or row.get("grasp_id") or -1) == grasp_id:
                return _parse_label(row["label"])
        return None


def _parse_label(text: str) -> bool | None:
    t = str(text).strip().lower()
    if t in ("", "none", "nan", "unknown"):
        return None
    if t in ("1", "true", "yes", "lift", "success"):
        return True
    if t in ("0", "false", "no", "abort", "fail", "failure"):
        return False
    raise ValueError(f"label {text!r} is not 1/0, true/false or lift/abort")


# ------------------------------------------------------------------------------ results
@dataclass
class GraspResult:
    """One grasp of one bag: the decision, its label and the gripper-only baseline."""

    bag: str
    grasp_id: int
    t_onset: float | None
    decision: Decision
    label: bool | None
    baseline: Verdict
    label_source: str = ""

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly row of the per-grasp table."""
        d = self.decision
        return {
            "bag": self.bag,
            "grasp_id": self.grasp_id,
            "t_onset": self.t_onset,
            "ta_stamp": d.ta_stamp,
            "tb_stamp": d.tb_stamp,
            "p_success": None if math.isnan(d.p_success) else d.p_success,
            "verdict": d.verdict.name,
            "reason": d.reason,
            "label": self.label,
            "label_source": self.label_source,
            "baseline": self.baseline.name,
            "latency_ms": d.latency_ms,
            "threshold": d.threshold,
            "model_id": d.model_id,
        }


@dataclass
class BagEvaluation:
    """Everything the replay of one bag produced."""

    bag: str
    path: str
    topics: ResolvedTopics | None
    grasps: list[GraspResult] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)
    skipped_first: dict[str, str] = field(default_factory=dict)
    messages: int = 0
    frames: int = 0
    frames_decoded: int = 0
    seconds: float = 0.0
    error: str | None = None
    time_base: str = "header"
    stamp_fallbacks: int = 0
    clock_problem: str = ""


# ------------------------------------------------------------------------------ replay
def _threshold_of(predictor: Any, threshold: float | None) -> float:
    if threshold is not None:
        return float(threshold)
    thr = getattr(predictor, "threshold", None)
    return float(thr) if isinstance(thr, (int, float)) else 0.5


def evaluate_bag(
    path: Path,
    predictor: Any,
    *,
    trigger: TriggerConfig | None = None,
    threshold: float | None = None,
    topics: TopicSelection | None = None,
    joint_width: JointWidth | None = None,
    labels: LabelTable | None = None,
    lazy: bool = True,
    max_warnings: int = 20,
    progress: bool = False,
    time_base: str = "header",
) -> BagEvaluation:
    """Replay one bag offline; raises :class:`BagError` (naming the bag) only if it cannot be read at all.

    ``predictor``: anything with ``predict(ta, tb) -> float`` and ``model_id`` (None: every
    snapshot ends in ABORT ``model_unavailable``, as on the node). ``time_base``: ``header``
    or ``receive``, as the node's parameter of that name.
    """
    cfg = (trigger or TriggerConfig()).validate()
    thr = _threshold_of(predictor, threshold)
    source = BagSource(Path(path), topics or TopicSelection(), joint_width or JointWidth())
    result = BagEvaluation(source.name, str(path), None, time_base=time_base)
    timebase = TimeBase(time_base)
    start = time.perf_counter()
    source.open()
    try:
        result.topics = source.topics
        _replay(source, result, predictor, cfg, thr, labels, lazy, progress, timebase)
    finally:
        source.close()
    result.stamp_fallbacks = timebase.fallbacks
    result.clock_problem = timebase.problem()[1]
    notes = source.warnings
    if timebase.fallbacks:
        notes.append(
            f"{source.name}: {timebase.fallbacks} message(s) with empty header stamps timed by their receive "
            f"time ({', '.join(f'{k}: {n}' for k, n in sorted(timebase.fallbacks_by_stream.items()))})"
        )
    if result.clock_problem:
        notes.append(f"{source.name}: {result.clock_problem}")
    for topic, n in sorted(result.skipped.items()):
        notes.append(
            f"{source.name}: {n} unusable message(s) on {topic} (first: {result.skipped_first[topic]})"
        )
    result.warnings = notes[:max_warnings] + (
        [f"... {len(notes) - max_warnings} more"] if len(notes) > max_warnings else []
    )
    result.seconds = time.perf_counter() - start
    return result


def _replay(
    source: BagSource,
    result: BagEvaluation,
    predictor: Any,
    cfg: TriggerConfig,
    thr: float,
    labels: LabelTable | None,
    lazy: bool,
    progress: bool,
    timebase: TimeBase,
) -> None:
    from tqdm import tqdm

    gate = GraspGate(cfg)
    baseline_tracker = GraspPhaseTracker(cfg)
    baseline: dict[int, Verdict] = {}
    onsets: dict[int, float] = {}
    decisions: dict[int, Decision] = {}
    outcome: dict[int, bool] = {}
    model_id = str(getattr(predictor, "model_id", "") or "") if predictor is not None else ""
    last_t = -math.inf

    onsets_log: dict[int, float] = {}  # the onsets on the bag's log-time clock (labels CSV windows)
    shift = 0.0  # log time - core time of the current message

    def handle(events: list[Any], now: float) -> None:
        for ev in events:
            if isinstance(ev, PhaseChanged):
                if ev.phase == "closing":
                    onsets.setdefault(ev.grasp_id, ev.t)
                    onsets_log.setdefault(ev.grasp_id, ev.t + shift)
            elif isinstance(ev, SnapshotReady):
                t0 = time.perf_counter()
                proxy = _LazyPredictor(predictor, ev) if predictor is not None else None
                undecoded = sum(
                    isinstance(f, LazyFrame) and f.lazy is not None and not f.lazy.decoded
                    for f in {id(ev.ta): ev.ta, id(ev.tb): ev.tb}.values()
                )
                d = decide(ev, proxy, thr, now=ev.t_trigger)
                result.frames_decoded += undecoded if predictor is not None else 0
                elapsed = time.perf_counter() - t0
                # the decision is made when the trigger is known, plus the measured compute time
                decisions[ev.grasp_id] = _with_time(d, ev.t_trigger + elapsed, ev.t_trigger)
                handle(gate.mark_decided(ev.grasp_id, now), now)
            elif isinstance(ev, GraspAborted):
                decisions[ev.grasp_id] = abort_decision(ev, thr, now=max(now, ev.t), model_id=model_id)

    tp = source.topics
    assert tp is not None
    inputs = GripperInputs(has_joint_states=tp.joint_states is not None)
    total = sum(
        source.counts.get(t, 0) for t in {tp.image, tp.joint_states, tp.moving, tp.status, tp.outcome} if t
    )
    bar = tqdm(total=total, desc=f"replay {source.name}", unit="msg", disable=not progress, mininterval=0.5)
    for item in source.items():
        bar.update()
        result.messages += 1
        if isinstance(item, FrameItem):
            t = timebase.resolve(item.stamp, item.t, "image")
        elif isinstance(item, GripperItem) and item.kind != "moving":
            kind = "joint_states" if item.kind == "joint" else item.kind
            t = (timebase.resolve(item.stamp, item.t, kind) if item.has_header
                 else timebase.from_receive(item.t))
        else:
            t = timebase.from_receive(item.t)
        shift = item.t - t
        last_t = max(last_t, t)
        if isinstance(item, FrameItem):
            result.frames += 1
            img = item.image
            if not lazy:
                try:
                    img.decode()
                    result.frames_decoded += 1
                except Exception as exc:
                    _skip(result, source.topics.image if source.topics else "?", str(exc))
                    continue
            handle(gate.on_frame(LazyFrame(t, item.stamp, _PLACEHOLDER, img)), t)
        elif isinstance(item, GripperItem):
            sample = inputs.sample(item, t)
            if sample is None:
                continue
            for pe in baseline_tracker.update(sample):
                if isinstance(pe, Settled):
                    baseline.setdefault(pe.grasp_id, Verdict.LIFT)
                elif isinstance(pe, (NoPart, GripperFault)):
                    baseline.setdefault(pe.grasp_id, Verdict.ABORT)
                elif isinstance(pe, Opened):  # opened before settling
                    baseline.setdefault(baseline_tracker.grasp_id, Verdict.ABORT)
            handle(gate.on_gripper(sample), t)
        elif isinstance(item, OutcomeItem):
            gid = gate.grasp_id
            if gid > 0 and gid not in outcome:
                outcome[gid] = item.success
            elif gid == 0:
                _skip(result, "outcome", f"outcome at t={item.t:.3f} before any grasp")
        elif isinstance(item, Skipped):
            _skip(result, item.topic, item.reason)
    bar.close()
    if result.messages == 0:
        raise BagError(f"{source.name}: no readable messages on the selected topics")
    # the end of the bag: let pending timeouts fire (a live node would tick on)
    horizon = last_t + cfg.tb_timeout_s + cfg.gripper_silence_s + cfg.frame_max_age_s + 1.0
    handle(gate.on_tick(horizon), horizon)
    for gid in sorted(decisions):
        label, how = None, ""
        if labels is not None:
            label = labels.lookup(source.name, gid, onsets_log.get(gid))
            how = "csv" if label is not None else ""
        if label is None and gid in outcome:
            label, how = outcome[gid], "topic"
        result.grasps.append(
            GraspResult(
                source.name,
                gid,
                onsets.get(gid),
                decisions[gid],
                label,
                baseline.get(gid, Verdict.ABORT),
                how,
            )
        )


class GripperInputs:
    """Gripper messages → :class:`GripperSample`, combined exactly as the node combines them.

    A JointState gives a sample with its width, the latest moving flag and the latest grasp
    state; a moving flag only updates the latest flag; a status message updates the latest
    grasp state and gives a width-less sample when it names a state. Without a JointState
    topic (an offline-only extension) the status width is used instead.
    """

    def __init__(self, has_joint_states: bool) -> None:
        self.has_joint_states = has_joint_states
        self.moving: bool | None = None
        self.state: GraspState | None = None

    def sample(self, item: GripperItem, t: float | None = None) -> GripperSample | None:
        """Return the sample this message feeds to the gate at core time ``t`` (``item.t``), or ``None``."""
        t = item.t if t is None else t
        if item.kind == "moving":
            self.moving = item.moving
            return None
        if item.kind == "status":
            self.state = None if item.grasp_state is None else GraspState(item.grasp_state)
            if self.has_joint_states:
                if self.state is None:
                    return None
                return GripperSample(t, None, self.moving, self.state)
            moving = self.moving if item.moving is None else item.moving
            return GripperSample(t, item.width_m, moving, self.state)
        return GripperSample(t, item.width_m, self.moving, self.state)


def _with_time(d: Decision, t_decision: float, t_trigger: float) -> Decision:
    from dataclasses import replace

    return replace(d, t_decision=t_decision, latency_ms=(t_decision - t_trigger) * 1000.0)


def _skip(result: BagEvaluation, topic: str, reason: str) -> None:
    result.skipped[topic] += 1
    result.skipped_first.setdefault(topic, reason)


def evaluate_bags(
    paths: Sequence[Path], predictor: Any, *, progress: bool = True, strict: bool = False, **kwargs: Any
) -> list[BagEvaluation]:
    """Replay several bags (a progress bar each); an unreadable bag gets ``error`` unless ``strict``."""
    out = []
    for p in paths:
        try:
            out.append(evaluate_bag(Path(p), predictor, progress=progress, **kwargs))
        except BagError as exc:
            if strict:
                raise
            out.append(BagEvaluation(Path(p).name, str(p), None, error=str(exc)))
    return out
