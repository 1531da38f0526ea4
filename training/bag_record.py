"""``tgp bag record``: write grasp trials as rosbag2 bags, as a real robot's ``ros2 bag record`` would.

Topics and types (defaults; every name can be changed):

==============================  ===========================================  ==========================
topic                           type                                         content
==============================  ===========================================  ==========================
/gelsight_left/image_raw        sensor_msgs/Image (rgb8 | bgr8)              GelSight A (left) frames
/gelsight_left/image_raw/       sensor_msgs/CompressedImage (jpeg)           with ``--encoding compressed``
compressed
/gelsight_right/image_raw       same                                         GelSight B, ``--right``
/wsg50/joint_states             sensor_msgs/JointState                       finger joints ∓width/2 (m)
/wsg50/moving                   std_msgs/Bool                                ``--moving``
/wsg50/status                   WSG status variant (ros1 | ros2_port | fork)  ``--status VARIANT``
/grasp/outcome                  std_msgs/Bool                                true outcome after the lift
==============================  ===========================================  ==========================

Timing is real: header stamps are capture times, log (= receive) time is the stamp plus a
transport latency (+ optional jitter); with ``--empty-stamps`` headers are zero as many
GelSight wrappers publish them. Faults for robustness tests: dropped frames, jitter, empty
stamps, frames with a wrong encoding. A ``<bag>.labels.csv`` sidecar (``t_start,t_end,label``
in log time) is written beside every bag.

``--preshape`` records what pick pipelines do between grasps: before each grasp the open
gripper moves to a random pre-grasp width (at least ``PRESHAPE_CLEARANCE_M`` above the part,
at 20–100 mm/s, WSG state POSITIONING), rests there, and the grasp closes from it
(:func:`preshape_trial`). Those moves touch nothing and must get no decision.

Trials are :class:`~tactile_grasp_predictor.data.trial_streams.TrialStreams`: from simulated shards
(``tgp simulate --streams``: ``sim_gripper_*`` and ``sim_gelsightA_stream*`` extras, read by
``load_trial_streams``) or, with ``--synthetic N``, from a small built-in generator of gripper
trajectories and frames (:func:`synthetic_recordings`, for tests and quick checks).
"""

from __future__ import annotations

import argparse
import csv
import math
import shutil
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tactile_grasp_predictor.data.trial_streams import TrialStreams, load_trial_streams
from tactile_grasp_predictor.errors import BagError
from tactile_grasp_predictor.gripper import GraspState
from tactile_grasp_predictor.wsg import STATUS_TYPES, VARIANTS, encode_status, stamp_fields

EPOCH_S = 1_700_000_000.0  # log time of the first message: a fixed epoch keeps bags deterministic
LEFT_JOINT = "wsg50_finger_left_joint"
RIGHT_JOINT = "wsg50_finger_right_joint"


@dataclass
class RecordOptions:
    """How to write the bag (topics, encodings, rates, faults)."""

    storage: str = "mcap"  # mcap | sqlite3
    encoding: str = "rgb8"  # rgb8 | bgr8 | compressed
    right: bool = False
    moving: bool = False
    status: str | None = None  # None | ros1 | ros2_port | fork
    outcome: bool = True
    joints: bool = True  # False: the gripper only through its status topic (a ROS 1 style driver)
    joint_rate_hz: float = 50.0
    latency_s: float = 0.002
    jitter_s: float = 0.0
    drop_frames: float = 0.0
    empty_stamps: bool = False
    bad_encoding: float = 0.0
    gap_s: float = 0.5  # pause between trials (gripper open)
    reopen_s: float = 0.4  # time the fingers take to reopen after a trial
    preshape: bool = False  # move the open gripper to a random pre-grasp width before each grasp
    seed: int = 0
    image_topic: str = "/gelsight_left/image_raw"
    right_topic: str = "/gelsight_right/image_raw"
    joint_topic: str = "/wsg50/joint_states"
    moving_topic: str = "/wsg50/moving"
    status_topic: str = "/wsg50/status"
    outcome_topic: str = "/grasp/outcome"
    jpeg_quality: int = 90
    extra_topics: dict[str, float] = field(default_factory=dict)  # unknown topics: name -> rate (Hz)

    def validate(self) -> RecordOptions:
        """Raise :class:`BagError` naming the bad option."""
        if self.storage not in ("mcap", "sqlite3"):
            raise BagError(f"storage: {self.storage!r} is not mcap or sqlite3")
        if self.encoding not in ("rgb8", "bgr8", "compressed"):
            raise BagError(f"encoding: {self.encoding!r} is not rgb8, bgr8 or compressed")
        if self.status is not None and self.status not in VARIANTS:
            raise BagError(f"status: {self.status!r} is not one of {sorted(VARIANTS)}")
        for name in ("drop_frames", "bad_encoding"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise BagError(f"{name}: must be in [0, 1), got {getattr(self, name)}")
        if not self.joints and self.status is None:
            raise BagError("joints: a bag without JointState needs a status topic (status=...)")
        if self.joint_rate_hz <= 0 or self.jitter_s < 0 or self.latency_s < 0:
            raise BagError("joint_rate_hz must be > 0, jitter_s and latency_s >= 0")
        return self


# ------------------------------------------------------------------------------ trials
def synthetic_recordings(
    n: int,
    seed: int = 0,
    size_hw: tuple[int, int] = (48, 64),
    fps: float = 10.0,
    no_part: float = 0.15,
    frame_phase_s: float | None = None,
) -> list[TrialStreams]:
    """``n`` grasps with plausible WSG-50 trajectories and frames (not physics; for tests and demos).

    Fingers open at 80 mm, close at 100 mm/s onto an object (20–60 mm) or onto nothing
    (``no_part`` share: fully closed), hold 0.6–0.8 s, lift, hold 0.5 s. The contact image shows a
    blob growing with the grip; success is drawn from a logistic in a hidden "grip quality" that
    also sets the blob size. Frames come at ``fps`` from ``frame_phase_s`` (default: random) after
    the trial start.
    """
    rng = np.random.default_rng(seed)
    h, w = size_hw
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    out = []
    for k in range(n):
        w0 = 0.080
        empty = bool(rng.random() < no_part)
        obj = 0.0 if empty else float(rng.uniform(0.02, 0.06))
        t_close = float(rng.uniform(0.5, 0.6))
        t_contact = t_close + (w0 - obj) / 0.1
        t_lift = t_contact + float(rng.uniform(0.6, 0.8))
        t_end = t_lift + 0.5
        gt = np.arange(0.0, t_end, 0.005)
        gw = np.where(gt < t_close, w0, np.maximum(obj, w0 - 0.1 * (gt - t_close)))
        quality = float(rng.normal())
        success = (not empty) and bool(rng.random() < 1.0 / (1.0 + math.exp(-2.0 * quality)))
        phase = float(rng.uniform(0.0, 1.0 / fps)) if frame_phase_s is None else frame_phase_s
        ft = np.arange(phase, t_end, 1.0 / fps)
        base = np.stack([np.full((h, w), c, np.float32) for c in (120.0, 110.0, 140.0)], axis=-1)
        cy, cx = h / 2 + rng.normal(0, h / 10), w / 2 + rng.normal(0, w / 10)
        frames = np.empty((len(ft), h, w, 3), np.uint8)
        noise = np.random.default_rng([seed, k])  # pixel noise apart: sizes and rates leave the trials alone
        for i, t in enumerate(ft):
            grip = 0.0 if empty else float(np.clip((t - t_contact) / 0.2, 0.0, 1.0))
            radius = max(0.2 + 0.07 * quality, 0.1) * min(h, w) * grip
            blob = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * max(radius, 1e-3) ** 2)) * (grip > 0)
            img = base + 60.0 * blob[..., None] * np.array([1.0, -0.5, 0.3], np.float32)
            img += noise.normal(0, 2.0, img.shape).astype(np.float32)
            frames[i] = np.clip(img, 0, 255).astype(np.uint8)
        out.append(TrialStreams(f"synthetic:{k}", success, gt, gw, ft, frames, t_lift))
    return out


# ------------------------------------------------------------------------------ writing
@dataclass(order=True)
class _Msg:
    log_ns: int
    seq: int
    topic: str = field(compare=False)
    data: Any = field(compare=False)


def _time(ts: Any, t: float | None) -> Any:
    return ts.types["builtin_interfaces/msg/Time"](**stamp_fields(t))


#: A pre-grasp width stays at least this far above the part (and the pre-shape moves at least 3 mm).
PRESHAPE_CLEARANCE_M = 0.006
#: The open gripper rests this long (frames of the gel at rest) before a pre-shaping move.
PRESHAPE_LEAD_S = 0.3
#: Trials that start at another open width than the last one reopened to: the fingers move there
#: at this speed and rest this long before the trial (a driver never reports a jump).
BRIDGE_SPEED_MPS = 0.05
BRIDGE_REST_S = 0.3


@dataclass(frozen=True)
class Preshape:
    """The move of the open gripper before one grasp: from ``open_m`` to ``width_m`` at ``speed_mps``.

    It starts at ``t0`` (trial time; the fingers rest open, the gel seen at rest, for a moment
    before), ends at :attr:`t_moved`, and the fingers rest at the pre-grasp width until the
    grasp closes from it, ``rest_s`` or more later.
    """

    t0: float
    width_m: float
    speed_mps: float
    rest_s: float
    open_m: float

    @property
    def t_moved(self) -> float:
        """When the fingers reach the pre-grasp width."""
        return self.t0 + abs(self.open_m - self.width_m) / self.speed_mps

    @property
    def duration(self) -> float:
        """The time the rest, the move and the rest add before the trial's own timeline."""
        return PRESHAPE_LEAD_S + self.t_moved - self.t0 + self.rest_s


def preshape_trial(rec: TrialStreams, rng: np.random.Generator,
                   start_m: float | None = None) -> tuple[TrialStreams, Preshape]:
    """Prepend a pre-shaping move to a trial: a random pre-grasp width reached at a finite speed.

    From ``start_m`` (where the last trial left the fingers; default: the trial's open width)
    to a width between ``PRESHAPE_CLEARANCE_M`` above the part and 3 mm below the trial's open
    width, at 20–100 mm/s, then a rest of 0.4–1.0 s (long enough to be seen as a stop). See
    :func:`lead_in`. Labels are unchanged.
    """
    gw = rec.reported_width
    w_open, w_part = float(gw[0]), float(np.min(gw))
    low = max(w_part + PRESHAPE_CLEARANCE_M, 0.02)
    width = float(rng.uniform(low, w_open - 0.003)) if w_open - 0.003 > low else w_open
    speed, rest = float(rng.uniform(0.02, 0.1)), float(rng.uniform(0.4, 1.0))
    return lead_in(rec, w_open if start_m is None else start_m, width, speed, rest)


def lead_in(rec: TrialStreams, start_m: float, target_m: float, speed_mps: float,
            rest_s: float) -> tuple[TrialStreams, Preshape]:
    """Prepend a move of the open gripper to a trial: from ``start_m`` to ``target_m``, then the trial.

    The fingers rest at ``start_m`` for ``PRESHAPE_LEAD_S``, move at ``speed_mps``, rest
    ``rest_s``; the trial's timeline shifts by that much, and during it the frames are the
    trial's own pre-contact frames, cycled (the gel at rest, with its noise). The trial's widths
    are capped at ``target_m``, so its closing starts from there and touches the part exactly
    when it did.
    """
    gw = rec.reported_width
    w_open = float(gw[0])
    start = float(rec.gripper_t[0])
    shape = Preshape(start + PRESHAPE_LEAD_S, target_m, speed_mps, rest_s, start_m)
    shift = shape.duration
    t_move = np.arange(start, start + shift, 0.005)
    travel = np.clip((t_move - shape.t0) * speed_mps, 0.0, abs(target_m - start_m))
    w_move = start_m + np.sign(target_m - start_m) * travel
    gripper_t = np.concatenate([t_move, rec.gripper_t + shift])
    gripper_w = np.concatenate([w_move, np.minimum(rec.gripper_w, target_m)])
    closing = np.flatnonzero(gw < w_open - 0.002)
    t_close = float(rec.gripper_t[closing[0]]) if len(closing) else float(rec.gripper_t[-1])
    at_rest = np.flatnonzero(rec.frame_t < t_close)  # the gel before any contact
    at_rest = at_rest if len(at_rest) else np.array([0])
    period = float(np.median(np.diff(rec.frame_t))) if len(rec.frame_t) > 1 else 0.1
    extra_t = np.arange(float(rec.frame_t[0]), float(rec.frame_t[0]) + shift - 1e-9, period)
    pick = at_rest[np.arange(len(extra_t)) % len(at_rest)]
    frame_t = np.concatenate([extra_t, rec.frame_t + shift])
    left = np.concatenate([rec.frames_left[pick], rec.frames_left])
    right = None if rec.frames_right is None else np.concatenate([rec.frames_right[pick], rec.frames_right])
    out = TrialStreams(rec.source, rec.label, gripper_t, gripper_w, frame_t, left, rec.t_lift + shift, right,
                       rec.synthetic_stream)
    return out, shape


#: The writer's gripper phases as the firmware grasp states a driver reports for them.
PHASE_STATES: dict[str, GraspState] = {
    "open": GraspState.IDLE,
    "closing": GraspState.GRASPING,
    "holding": GraspState.HOLDING,
    "no_part": GraspState.NO_PART_FOUND,
}


def status_message(ts: Any, variant: str, state: GraspState, width: float, stamp: float | None) -> Any:
    """Build a ``rosbags`` status message of ``variant`` (registered in ``ts``) by :func:`encode_status`."""
    fields = encode_status(variant, state, width, stamp)
    header = fields.get("header")
    if header is not None:
        fields["header"] = ts.types["std_msgs/msg/Header"](
            stamp=ts.types["builtin_interfaces/msg/Time"](**header["stamp"]), frame_id=header["frame_id"]
        )
    return ts.types[STATUS_TYPES[variant][0]](**fields)


def write_bag(
    path: Path, recordings: Iterable[TrialStreams], opts: RecordOptions | None = None, progress: bool = True
) -> list[dict[str, Any]]:
    """Write ``recordings`` one after another into a new bag at ``path``; return per-grasp rows.

    Each row: ``trial`` (1-based), ``source``, ``t_start``/``t_end`` (log time window, s),
    ``t_close`` (when the fingers start closing), ``label`` (1/0/'' unknown). The same rows go
    to ``<path>.labels.csv``.
    """
    import cv2
    from rosbags.rosbag2 import StoragePlugin, Writer
    from rosbags.typesys import Stores, get_types_from_msg, get_typestore
    from tqdm import tqdm

    opts = (opts or RecordOptions()).validate()
    path = Path(path)
    if path.exists():
        raise BagError(f"{path}: exists already; rosbag2 never overwrites a bag")
    rng = np.random.default_rng(opts.seed)
    ts = get_typestore(Stores.ROS2_HUMBLE)
    if opts.status:
        typ, text = STATUS_TYPES[opts.status]
        ts.register(get_types_from_msg(text, typ))
    types_ = ts.types
    header_t, image_t, comp_t = (
        types_["std_msgs/msg/Header"],
        types_["sensor_msgs/msg/Image"],
        types_["sensor_msgs/msg/CompressedImage"],
    )
    joint_t, bool_t = types_["sensor_msgs/msg/JointState"], types_["std_msgs/msg/Bool"]
    compressed = opts.encoding == "compressed"
    img_type = "sensor_msgs/msg/CompressedImage" if compressed else "sensor_msgs/msg/Image"
    suffix = "/compressed" if compressed else ""

    def recv(t: float) -> int:  # capture time -> log (receive) time in ns
        jitter = abs(float(rng.normal(0.0, opts.jitter_s))) if opts.jitter_s > 0 else 0.0
        return round((EPOCH_S + t + opts.latency_s + jitter) * 1e9)

    def stamp(t: float) -> float | None:
        return None if opts.empty_stamps else EPOCH_S + t

    def image_msg(frame: np.ndarray, t: float, frame_id: str) -> Any:
        header = header_t(stamp=_time(ts, stamp(t)), frame_id=frame_id)
        if compressed:
            ok, buf = cv2.imencode(
                ".jpg", np.ascontiguousarray(frame[..., ::-1]), [cv2.IMWRITE_JPEG_QUALITY, opts.jpeg_quality]
            )
            assert ok
            return comp_t(header=header, format="rgb8; jpeg compressed bgr8", data=buf.reshape(-1))
        enc = opts.encoding
        if opts.bad_encoding > 0 and rng.random() < opts.bad_encoding:
            enc = "yuv422"  # a wrong encoding the decoder refuses
        pix = frame[..., ::-1] if opts.encoding == "bgr8" else frame
        h, w = frame.shape[:2]
        return image_t(
            header=header,
            height=h,
            width=w,
            encoding=enc,
            is_bigendian=0,
            step=w * 3,
            data=np.ascontiguousarray(pix).reshape(-1),
        )

    types = {
        opts.joint_topic: "sensor_msgs/msg/JointState",
        opts.image_topic + suffix: img_type,
        opts.right_topic + suffix: img_type,
        opts.moving_topic: "std_msgs/msg/Bool",
        opts.outcome_topic: "std_msgs/msg/Bool",
    }
    types.update({t: "std_msgs/msg/Bool" for t in opts.extra_topics})
    if opts.status:
        types[opts.status_topic] = STATUS_TYPES[opts.status][0]
    plugin = StoragePlugin.MCAP if opts.storage == "mcap" else StoragePlugin.SQLITE3
    writer = Writer(path, version=9, storage_plugin=plugin)
    writer.open()
    conns: dict[str, Any] = {}
    last_ns = 0
    msgs: list[_Msg] = []
    seq = 0

    def flush() -> None:  # one trial at a time, in log-time order: memory stays one trial
        nonlocal last_ns
        msgs.sort()
        for m in msgs:
            conn = conns.get(m.topic)
            if conn is None:
                conn = conns[m.topic] = writer.add_connection(m.topic, types[m.topic], typestore=ts)
            last_ns = max(last_ns, m.log_ns)
            writer.write(conn, last_ns, ts.serialize_cdr(m.data, types[m.topic]))
        msgs.clear()

    def put(topic: str, log_ns: int, msg: Any) -> None:
        nonlocal seq
        msgs.append(_Msg(log_ns, seq, topic, msg))
        seq += 1

    rows: list[dict[str, Any]] = []
    t0 = 0.0
    home: float | None = None  # where the last trial left the fingers (its reopen width)
    try:
        for k, rec in enumerate(
            tqdm(recordings, desc=f"record {path.name}", unit="grasp", disable=not progress)
        ):
            shape, own_open = None, rec.open_width
            if opts.preshape:
                rec, shape = preshape_trial(rec, rng, home)
            elif home is not None and abs(rec.open_width - home) > 1e-4:
                # the fingers move from where the last trial left them to this trial's open width
                rec, shape = lead_in(rec, home, rec.open_width, BRIDGE_SPEED_MPS, BRIDGE_REST_S)
            # gripper: resample to the joint rate, then reopen to the initial width
            dt = 1.0 / opts.joint_rate_hz
            t_end = float(rec.gripper_t[-1])
            gt = np.arange(float(rec.gripper_t[0]), t_end + 1e-9, dt)
            # a driver reports 0 when the fingers are fully closed, never a negative opening
            gw = np.clip(np.interp(gt, rec.gripper_t, rec.gripper_w), 0.0, None)
            w_open, w_last = own_open, float(gw[-1])
            home = w_open  # the fingers reopen to this trial's own open width
            rt = np.arange(t_end + dt, t_end + opts.reopen_s + opts.gap_s, dt)
            rw = np.interp(rt, [t_end, t_end + opts.reopen_s], [w_last, w_open])
            gt, gw = np.concatenate([gt, rt]), np.concatenate([gw, rw])
            w_ref, t_ready = (w_open, -math.inf) if shape is None else (shape.width_m, shape.t_moved)
            closing = np.flatnonzero((gw < w_ref - 0.002) & (gt > t_ready))  # the grasp's own closing
            t_close = float(gt[closing[0]]) if len(closing) else math.nan
            w_min = float(np.min(gw))
            for t, wv in zip(gt, gw, strict=True):
                tt = t0 + float(t)
                js = joint_t(
                    header=header_t(stamp=_time(ts, EPOCH_S + tt), frame_id=""),
                    name=[LEFT_JOINT, RIGHT_JOINT],
                    position=np.array([-wv / 2, wv / 2]),
                    velocity=np.zeros(0),
                    effort=np.zeros(0),
                )
                if opts.joints:
                    put(opts.joint_topic, recv(tt), js)
                positioning = shape is not None and shape.t0 < t <= shape.t_moved
                moving = (
                    bool(np.isfinite(t_close) and t_close <= t <= t_end and wv > w_min + 1e-4) or t > t_end
                    or positioning
                )
                if opts.moving:
                    put(opts.moving_topic, recv(tt), bool_t(data=moving))
                if opts.status:
                    if positioning:
                        state = GraspState.POSITIONING
                    elif t > t_end or t < t_close or not np.isfinite(t_close):
                        state = PHASE_STATES["open"]
                    elif moving:
                        state = PHASE_STATES["closing"]
                    else:
                        state = PHASE_STATES["no_part" if wv < 0.0015 else "holding"]
                    status = status_message(ts, opts.status, state, float(wv), None)
                    put(opts.status_topic, recv(tt), status)
            for i, t in enumerate(rec.frame_t):
                if opts.drop_frames > 0 and rng.random() < opts.drop_frames:
                    continue
                tt = t0 + float(t)
                put(opts.image_topic + suffix, recv(tt), image_msg(rec.frames_left[i], tt, "gelsight_left"))
                if opts.right and rec.frames_right is not None:
                    right = image_msg(rec.frames_right[i], tt, "gelsight_right")
                    put(opts.right_topic + suffix, recv(tt), right)
            if opts.outcome and rec.label is not None:
                put(opts.outcome_topic, recv(t0 + t_end), bool_t(data=bool(rec.label)))
            for topic, rate in opts.extra_topics.items():
                for t in np.arange(0.0, float(gt[-1]), 1.0 / rate):
                    put(topic, recv(t0 + float(t)), bool_t(data=False))
            t_stop = t0 + float(gt[-1])
            rows.append(
                {
                    "trial": k + 1,
                    "source": rec.source,
                    "t_start": round(EPOCH_S + t0, 6),
                    "t_end": round(EPOCH_S + t_stop + dt, 6),  # = the next trial's start
                    "t_close": round(EPOCH_S + t0 + t_close, 6) if np.isfinite(t_close) else "",
                    "label": "" if rec.label is None else int(rec.label),
                }
            )
            t0 = t_stop + dt
            flush()
    except BaseException:
        writer.abort()
        shutil.rmtree(path, ignore_errors=True)  # never leave half a bag behind
        raise
    if not rows:
        writer.abort()
        shutil.rmtree(path, ignore_errors=True)
        raise BagError(f"{path}: no trials to record")
    writer.close()
    write_labels_csv(path.with_name(path.name + ".labels.csv"), rows)
    return rows


def write_labels_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    """Write the labels sidecar: one row per grasp with its log-time window and label."""
    with Path(path).open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["trial", "source", "t_start", "t_end", "t_close", "label"])
        writer.writeheader()
        writer.writerows(rows)


# ------------------------------------------------------------------------------ CLI part
def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``tgp bag record``."""
    parser.add_argument(
        "shards", nargs="*", type=Path, help="simulated shards or directories (tgp simulate --streams)"
    )
    parser.add_argument("--out", type=Path, required=True, help="bag directory to create (must not exist)")
    parser.add_argument(
        "--synthetic",
        type=int,
        default=0,
        metavar="N",
        help="record N built-in synthetic grasps instead of shards",
    )
    parser.add_argument("--limit", type=int, default=None, help="record at most this many trials")
    parser.add_argument(
        "--storage",
        choices=["mcap", "sqlite3", "both"],
        default="mcap",
        help="storage plugin; 'both' writes OUT_mcap and OUT_sqlite3",
    )
    parser.add_argument("--encoding", choices=["rgb8", "bgr8", "compressed"], default="rgb8")
    parser.add_argument("--right", action="store_true", help="also record GelSight B (right)")
    parser.add_argument("--moving", action="store_true", help="record a std_msgs/Bool moving flag")
    parser.add_argument(
        "--status",
        choices=sorted(VARIANTS),
        default=None,
        help="record a WSG-50 status variant (custom type embedded in the bag)",
    )
    parser.add_argument("--no-outcome", action="store_true", help="leave out the outcome topic")
    parser.add_argument("--no-joints", action="store_true", help="leave out JointState (needs --status)")
    parser.add_argument("--joint-rate", type=float, default=50.0, help="JointState rate (Hz)")
    parser.add_argument("--drop-frames", type=float, default=0.0, help="fault: share of frames dropped")
    parser.add_argument("--jitter", type=float, default=0.0, help="fault: receive-time jitter std (s)")
    parser.add_argument("--empty-stamps", action="store_true", help="fault: zero header stamps")
    parser.add_argument(
        "--bad-encoding", type=float, default=0.0, help="fault: share of frames with a wrong encoding"
    )
    parser.add_argument(
        "--preshape", action="store_true",
        help="before each grasp, move the open gripper to a random pre-grasp width at 20-100 mm/s",
    )
    parser.add_argument("--seed", type=int, default=0)


def run(args: argparse.Namespace) -> int:
    """Record the bag(s); print where they went."""
    storages = ["mcap", "sqlite3"] if args.storage == "both" else [args.storage]
    for storage in storages:
        out = args.out if len(storages) == 1 else args.out.with_name(f"{args.out.name}_{storage}")
        opts = RecordOptions(
            storage=storage,
            encoding=args.encoding,
            right=args.right,
            moving=args.moving,
            status=args.status,
            outcome=not args.no_outcome,
            joints=not args.no_joints,
            joint_rate_hz=args.joint_rate,
            drop_frames=args.drop_frames,
            jitter_s=args.jitter,
            empty_stamps=args.empty_stamps,
            bad_encoding=args.bad_encoding,
            seed=args.seed,
            preshape=args.preshape,
        )
        if args.synthetic:
            recs: Iterable[TrialStreams] = synthetic_recordings(args.synthetic, seed=args.seed)
        elif args.shards:
            recs = load_trial_streams(args.shards, args.limit, right=args.right, require_streams=True)
        else:
            raise BagError("tgp bag record: give simulated shards or --synthetic N")
        rows = write_bag(out, recs, opts)
        print(f"wrote {out} ({storage}, {len(rows)} grasps) and {out.name}.labels.csv")
    return 0
