"""Offline replay: a bag's messages through the node's own decision path, the :class:`GraspSession`.

Deterministic and DDS-free: every message enters the same
:class:`~tactile_grasp_predictor.session.GraspSession` the node drives, in its recorded order,
with its recorded receive time (the bag's log time) as the receive clock: the session times it
by the node's rule (``time_base``), combines gripper inputs, picks Ta/Tb, runs the model and
applies every reason rule exactly as live. Images stay undecoded until a frame is used
(``lazy=True``: Ta, Tb and the frame before Ta, for the contact check and the model);
``lazy=False`` decodes every frame on arrival (the benchmark baseline, and what a node that
decodes in its callback does).

Per grasp the result holds the :class:`~tactile_grasp_predictor.decision.Decision`, the
label (from an outcome topic or a CSV sidecar) and the gripper-only baseline's verdict
(LIFT whenever the gripper settles with the fingers not fully closed / reports HOLDING;
ABORT on no part, fault or opening), from the session's own record of the grasp
(:attr:`~tactile_grasp_predictor.session.GraspSession.gripper_only`).

Example::

    predictor = Predictor.from_bundle("bundle/")
    result = evaluate_bag(Path("grasps_mcap"), predictor)
    for g in result.grasps:
        print(g.grasp_id, g.decision.verdict.name, g.label)
"""

from __future__ import annotations

import csv
import dataclasses
import math
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tactile_grasp_predictor.decision import Decision, Verdict
from tactile_grasp_predictor.errors import BagError, FrameError
from tactile_grasp_predictor.gate import PhaseChanged
from tactile_grasp_predictor.gripper import GraspState, JointWidthConfig
from tactile_grasp_predictor.node_config import default_joints
from tactile_grasp_predictor.replay.bag_source import (
    BagSource,
    FrameItem,
    GripperItem,
    LazyImage,
    OutcomeItem,
    ResolvedTopics,
    Skipped,
    TopicSelection,
)
from tactile_grasp_predictor.session import GraspSession, InferenceJob, SessionConfig, SessionOutput
from tactile_grasp_predictor.timebase import TimeBase

_PLACEHOLDER = np.zeros((0, 0, 3), np.uint8)  # image of a frame not decoded yet


# ------------------------------------------------------------------------------ labels
@dataclass(frozen=True)
class LabelRow:
    """One checked row of a labels CSV: a log-time window or a grasp number, and the label."""

    line: int
    label: bool | None
    bag: str = ""
    t_start: float | None = None
    t_end: float | None = None
    grasp: int | None = None


@dataclass
class LabelTable:
    """Labels from a CSV sidecar.

    Columns: ``label`` (1/0, true/false, lift/abort; empty = unknown) and either ``t_start``,
    ``t_end`` (log-time window, s, containing the grasp's closing onset; preferred, as it stays
    right when the gate splits or misses a grasp) or ``grasp`` (or ``grasp_id``: the 1-based grasp
    number in the bag). An optional ``bag`` column restricts a row to the bag of that name.
    Every value is checked when the file is read (:meth:`read`); ``rows`` keeps the raw text.
    """

    rows: list[dict[str, str]]
    source: str
    entries: list[LabelRow] = field(default_factory=list)

    @classmethod
    def read(cls, path: Path) -> LabelTable:
        """Read and check a labels CSV; :class:`BagError` names the file, line and column."""
        path = Path(path)
        try:
            with path.open(newline="", encoding="utf-8") as f:
                reader = csv.DictReader(f)
                rows = list(reader)
        except (OSError, UnicodeDecodeError) as exc:
            raise BagError(f"{path}: cannot read labels: {exc}") from exc
        except csv.Error as exc:
            raise BagError(f"{path}:{reader.line_num}: not a CSV file: {exc}") from exc
        if not rows:
            return cls([], str(path))
        cols = set(rows[0])
        if "label" not in cols or not ({"grasp", "grasp_id"} & cols or {"t_start", "t_end"} <= cols):
            raise BagError(
                f"{path}: labels CSV needs 'label' and 'grasp' (or 't_start','t_end'); got "
                f"{sorted(str(c) for c in cols)}"
            )
        entries = [_label_row(row, i, f"{path}:{i}") for i, row in enumerate(rows, start=2)]
        return cls(rows, str(path), entries)

    def lookup(self, bag: str, grasp_id: int, t_onset: float | None) -> bool | None:
        """Return the label of grasp ``grasp_id`` (onset ``t_onset``) in ``bag``, ``None`` if unknown."""
        for row in self.entries:
            if row.bag and row.bag != bag:
                continue
            if row.t_start is not None and row.t_end is not None:  # a window: robust to split/missed grasps
                if t_onset is not None and row.t_start <= t_onset < row.t_end:
                    return row.label
            elif row.grasp == grasp_id:
                return row.label
        return None


def _label_row(row: dict[Any, Any], line: int, where: str) -> LabelRow:
    """Check one CSV row (``where``: ``file:line``); :class:`BagError` names the column and value."""
    if None in row:
        raise BagError(f"{where}: more fields than the header names ({row[None]!r})")

    def text(col: str) -> str:
        v = row.get(col)
        return "" if v is None else str(v).strip()

    try:
        label = _parse_label(text("label"))
    except ValueError as exc:
        raise BagError(f"{where}: {exc}") from exc
    window: list[float | None] = []
    for col in ("t_start", "t_end"):
        v = text(col)
        try:
            t = float(v) if v else None
        except ValueError:
            raise BagError(f"{where}: column {col!r}: {v[:40]!r} is not a number (seconds)") from None
        if t is not None and not math.isfinite(t):
            raise BagError(f"{where}: column {col!r}: {v!r} is not a finite time")
        window.append(t)
    t_start, t_end = window
    if (t_start is None) != (t_end is None):
        raise BagError(f"{where}: a window needs both 't_start' and 't_end'")
    if t_start is not None and t_end is not None and not t_start < t_end:
        raise BagError(f"{where}: window t_start {t_start} is not before t_end {t_end}")
    grasp = None
    col = "grasp" if text("grasp") else "grasp_id"
    if text(col):
        v = text(col)
        if not (v.isascii() and v.isdigit() and len(v) <= 9) or int(v) < 1:
            raise BagError(f"{where}: column {col!r}: {v[:40]!r} is not a grasp number (1, 2, ...)")
        grasp = int(v)
    if t_start is None and grasp is None:
        raise BagError(f"{where}: neither a grasp number nor a 't_start','t_end' window")
    return LabelRow(line, label, text("bag"), t_start, t_end, grasp)


def _parse_label(text: str) -> bool | None:
    t = str(text).strip().lower()
    if t in ("", "none", "nan", "unknown"):
        return None
    if t in ("1", "true", "yes", "lift", "success"):
        return True
    if t in ("0", "false", "no", "abort", "fail", "failure"):
        return False
    raise ValueError(f"label {text[:40]!r} is not 1/0, true/false or lift/abort")


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
def evaluate_bag(
    path: Path,
    predictor: Any,
    *,
    session: SessionConfig | None = None,
    topics: TopicSelection | None = None,
    joint_width: JointWidthConfig | None = None,
    labels: LabelTable | None = None,
    lazy: bool = True,
    max_warnings: int = 20,
    progress: bool = False,
    encodings: Sequence[str] | None = None,
    on_job: Callable[[InferenceJob], None] | None = None,
    in_place: bool = True,
) -> BagEvaluation:
    """Replay one bag offline; raises :class:`BagError` (naming the bag) only if it cannot be read at all.

    ``predictor``: anything with ``predict(ta, tb) -> float``, ``model_id`` and ``threshold``
    (None: every snapshot ends in ABORT ``model_unavailable``, as on the node). ``session``:
    the node's trigger, time base and threshold (``SessionConfig.from_node_config`` of its
    parameters; default: the node's defaults). ``encodings``: the node's ``image_encodings``
    (default: its default); frames in other encodings are refused as the node refuses them.
    ``on_job``: sees each grasp's :class:`InferenceJob` (the Ta/Tb the node picks) before the
    model runs (``tgp harvest``). ``in_place``: :attr:`.bag_source.BagSource.in_place` (``False``:
    the rosbags reader, the benchmark's baseline; the same decisions).
    """
    source = BagSource(Path(path), topics or TopicSelection(), joint_width or default_joints(),
                       in_place=in_place)
    if encodings is not None:
        source.encodings = tuple(encodings)
    config = session or SessionConfig()
    result = BagEvaluation(source.name, str(path), None, time_base=config.time_base)
    start = time.perf_counter()
    source.open()
    try:
        result.topics = source.topics
        assert source.topics is not None
        config = dataclasses.replace(config, joint_states=source.topics.joint_states is not None)
        timebase = _replay(source, result, predictor, config, labels, lazy, progress, on_job)
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
    config: SessionConfig,
    labels: LabelTable | None,
    lazy: bool,
    progress: bool,
    on_job: Callable[[InferenceJob], None] | None = None,
) -> TimeBase:
    from tqdm import tqdm

    session = GraspSession(config)
    if predictor is not None:
        session.set_model(str(getattr(predictor, "model_id", "") or ""),
                          getattr(predictor, "threshold", None))
    onsets: dict[int, float] = {}
    onsets_log: dict[int, float] = {}  # the onsets on the bag's log-time clock (labels CSV windows)
    decisions: dict[int, Decision] = {}
    outcome: dict[int, bool] = {}

    def handle(outputs: list[SessionOutput], log_t: float) -> None:
        for out in outputs:
            if isinstance(out, PhaseChanged):
                if out.phase == "closing":  # a dismissed closing's id goes to the next: the last onset
                    onsets[out.grasp_id] = out.t
                    onsets_log[out.grasp_id] = out.t + (log_t - session.last_t)
            elif isinstance(out, InferenceJob):
                if on_job is not None:
                    on_job(out)
                t0 = time.perf_counter()
                decision = session.decide(out, predictor)
                elapsed = time.perf_counter() - t0  # the decision is made the compute time after the trigger
                handle(session.complete(out, decision, out.receive_t + elapsed, wait_for_inputs=True), log_t)
            else:
                decisions[out.grasp_id] = out

    tp = source.topics
    assert tp is not None
    total = sum(
        source.counts.get(t, 0) for t in {tp.image, tp.joint_states, tp.moving, tp.status, tp.outcome} if t
    )
    bar = tqdm(total=total, desc=f"replay {source.name}", unit="msg", disable=not progress, mininterval=0.5)
    for item in source.items():
        bar.update()
        result.messages += 1
        if isinstance(item, FrameItem):
            result.frames += 1
            if not lazy:
                try:
                    item.image.decode()
                    result.frames_decoded += 1
                except FrameError as exc:
                    _skip(result, tp.image, str(exc))
                    session.on_bad_frame(item.t, str(exc))
                    continue
            pixels = item.image if not lazy else _Counted(item.image, result)
            handle(session.on_frame(item.stamp, item.t, _PLACEHOLDER, pixels), item.t)
        elif isinstance(item, GripperItem):
            if item.kind == "moving":
                session.on_moving(bool(item.moving))
            elif item.kind == "status":
                state = None if item.grasp_state is None else GraspState(item.grasp_state)
                handle(session.on_status(item.stamp, item.t, state, item.width_m, item.moving,
                                         has_header=item.has_header), item.t)
            elif item.width_m is not None:
                handle(session.on_gripper_width(item.stamp, item.t, item.width_m, item.effort), item.t)
        elif isinstance(item, OutcomeItem):
            gid = session.grasp_id
            if gid > 0 and gid not in outcome:
                outcome[gid] = item.success
            elif gid == 0:
                _skip(result, "outcome", f"outcome at t={item.t:.3f} before any grasp")
        elif isinstance(item, Skipped):
            _skip(result, item.topic, item.reason)
            if item.topic == tp.image:  # a frame the node could not decode either
                session.on_bad_frame(item.t, item.reason)
    bar.close()
    if result.messages == 0:
        raise BagError(f"{source.name}: no readable messages on the selected topics")
    handle(session.flush(), math.inf)  # the end of the bag: pending timeouts fire as on a node ticking on
    for gid in sorted(decisions):
        label, how = None, ""
        if labels is not None:
            label = labels.lookup(source.name, gid, onsets_log.get(gid))
            how = "csv" if label is not None else ""
        if label is None and gid in outcome:
            label, how = outcome[gid], "topic"
        result.grasps.append(
            GraspResult(source.name, gid, onsets.get(gid), decisions[gid], label,
                        Verdict.LIFT if session.gripper_only.get(gid, False) else Verdict.ABORT, how)
        )
    return session.timebase


class _Counted:
    """A frame's lazy pixels that count their decoding in ``frames_decoded``."""

    __slots__ = ("image", "result")

    def __init__(self, image: LazyImage, result: BagEvaluation) -> None:
        self.image, self.result = image, result

    @property
    def decoded(self) -> bool:
        """Whether the pixels have been decoded already."""
        return self.image.decoded

    def decode(self) -> np.ndarray:
        """RGB uint8 ``H x W x 3`` (:class:`FrameError` naming the message), counted once."""
        first = not self.image.decoded
        pixels = self.image.decode()
        self.result.frames_decoded += first
        return pixels


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
