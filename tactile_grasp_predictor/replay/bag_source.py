"""Read a rosbag2 recording (mcap or sqlite3) into time-ordered inputs of the runtime core.

A bag is read with ``rosbags`` (pure Python, no ROS install). Every item carries the message's
*recorded receive time* (the bag's log time) as ``t`` and its header stamp as ``stamp``
(``None`` when empty or when the type has no header); the replay turns the two into the core's
time with the node's own rule (:class:`~tactile_grasp_predictor.timebase.TimeBase`).

Images are not decoded while reading: :class:`LazyImage` keeps the raw CDR bytes and parses
only the few header fields needed to validate a frame (encoding, size, step, data length);
pixels are decoded when a frame is actually used as Ta or Tb (:meth:`LazyImage.decode`).

Example::

    with BagSource("grasps_mcap") as source:
        print(source.topics)
        for item in source.items():
            ...  # FrameItem | GripperItem | OutcomeItem | Skipped
"""

from __future__ import annotations

import math
import struct
from collections.abc import Collection, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np

from tactile_grasp_predictor.errors import BagError, FrameError
from tactile_grasp_predictor.gripper import JointWidthConfig, joint_state_effort, joint_state_width
from tactile_grasp_predictor.node_config import NodeConfig, default_joints
from tactile_grasp_predictor.replay.mcap_direct import direct_messages
from tactile_grasp_predictor.wsg import STATUS_TYPES, decode_status, variant_of

IMAGE_TYPE = "sensor_msgs/msg/Image"
COMPRESSED_TYPE = "sensor_msgs/msg/CompressedImage"
JOINT_STATE_TYPE = "sensor_msgs/msg/JointState"
BOOL_TYPE = "std_msgs/msg/Bool"

_LEFT_TOKENS = ("left", "gelsight_l", "gelsighta", "gelsight_a", "/l/", "_l/", "gsmini", "finger0", "/a/")
_RIGHT_TOKENS = ("right", "gelsight_r", "gelsightb", "gelsight_b", "/r/", "_r/", "finger1", "/b/")
_OUTCOME_TOKENS = ("outcome", "success", "label", "lift_result", "grasp_result")


# ------------------------------------------------------------------------- topic selection
@dataclass(frozen=True)
class TopicSelection:
    """Which topics to read; ``None`` = detect automatically, ``""`` = do not use."""

    image: str | None = None
    joint_states: str | None = None
    moving: str | None = None
    status: str | None = None
    outcome: str | None = None


@dataclass(frozen=True)
class ResolvedTopics:
    """The topics actually read from one bag, with their types."""

    image: str
    image_type: str
    joint_states: str | None
    moving: str | None
    status: str | None
    status_variant: str | None
    outcome: str | None
    ignored: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form (for the report)."""
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.__dict__.items()}


def _pick(candidates: list[str], prefer: tuple[str, ...], avoid: tuple[str, ...] = ()) -> list[str]:
    low = {c: c.lower() for c in candidates}
    preferred = [c for c in candidates if any(t in low[c] for t in prefer)]
    preferred = [c for c in preferred if not any(t in low[c] for t in avoid)] or preferred
    if preferred:
        return preferred
    return [c for c in candidates if not any(t in low[c] for t in avoid)]


def resolve_topics(
    bag: str, types: dict[str, str], fields: dict[str, set[str]], wanted: TopicSelection
) -> ResolvedTopics:
    """Choose the topics to read from ``types`` (topic → type) following ``wanted``.

    Raises :class:`BagError` naming the bag when a required topic is missing or ambiguous.
    """

    def explicit(name: str | None, what: str, allowed: tuple[str, ...]) -> str | None:
        if not name:
            return None
        if name not in types:
            raise BagError(f"{bag}: {what} topic {name!r} is not in the bag (topics: {sorted(types)})")
        if allowed and types[name] not in allowed:
            raise BagError(f"{bag}: topic {name!r} has type {types[name]}, expected one of {allowed}")
        return name

    images = [t for t, ty in types.items() if ty in (IMAGE_TYPE, COMPRESSED_TYPE)]
    image = explicit(wanted.image, "image", (IMAGE_TYPE, COMPRESSED_TYPE))
    if image is None:
        picked = _pick(images, _LEFT_TOKENS, _RIGHT_TOKENS)
        if not picked:
            raise BagError(f"{bag}: no sensor_msgs/Image or CompressedImage topic (topics: {sorted(types)})")
        if len(picked) > 1:
            raise BagError(
                f"{bag}: several image topics could be the left GelSight {sorted(picked)}; "
                "choose one with --image-topic"
            )
        image = picked[0]

    joints = [t for t, ty in types.items() if ty == JOINT_STATE_TYPE]
    joint = explicit(wanted.joint_states, "joint state", (JOINT_STATE_TYPE,))
    if joint is None and wanted.joint_states is None and joints:
        picked = _pick(joints, ("wsg", "gripper", "joint_states"))
        if len(picked) > 1:
            raise BagError(
                f"{bag}: several JointState topics {sorted(picked)}; choose one with --joint-topic"
            )
        joint = picked[0]

    bools = [t for t, ty in types.items() if ty == BOOL_TYPE]
    moving = explicit(wanted.moving, "moving", (BOOL_TYPE,))
    if moving is None and wanted.moving is None:
        moving = next((t for t in bools if "moving" in t.lower()), None)
    outcome = explicit(wanted.outcome, "outcome", (BOOL_TYPE,))
    if outcome is None and wanted.outcome is None:
        outcome = next((t for t in bools if any(k in t.lower() for k in _OUTCOME_TOKENS)), None)

    status = explicit(wanted.status, "status", ())
    if status is None and wanted.status is None:
        status = next((t for t in sorted(types) if variant_of(fields.get(t, set()))), None)
    variant = None
    if status is not None:
        variant = variant_of(fields.get(status, set()))
        if variant is None:
            raise BagError(
                f"{bag}: topic {status!r} ({types[status]}) is not a WSG-50 status variant "
                f"(fields {sorted(fields.get(status, set()))})"
            )
    if joint is None and status is None:
        raise BagError(
            f"{bag}: no gripper input: neither a sensor_msgs/JointState nor a WSG status topic "
            f"(topics: {sorted(types)})"
        )
    used = {image, joint, moving, status, outcome}
    ignored = tuple(sorted(t for t in types if t not in used))
    return ResolvedTopics(image, types[image], joint, moving, status, variant, outcome, ignored)


# ------------------------------------------------------------------------------ items
@dataclass(frozen=True)
class ImageMeta:
    """Header fields of an image message, parsed without touching the pixels."""

    stamp: float | None
    encoding: str  # raw encoding, or the compressed format ("jpeg", "png", "rgb8; jpeg compressed bgr8")
    height: int
    width: int
    step: int
    is_bigendian: int
    data_offset: int
    data_len: int
    compressed: bool


class LazyImage:
    """One image message kept as raw CDR bytes; pixels are decoded on first :meth:`decode`.

    ``raw`` may be a view of the memory-mapped bag (:mod:`.mcap_direct`): the pixels of a frame
    never decoded are never read.
    """

    __slots__ = ("_image", "meta", "raw", "source")

    def __init__(self, raw: bytes | memoryview, meta: ImageMeta, source: str) -> None:
        self.raw = raw
        self.meta = meta
        self.source = source  # "<bag>:<topic>#<index>" for error messages
        self._image: np.ndarray | None = None

    @property
    def decoded(self) -> bool:
        """Whether the pixels have been decoded already."""
        return self._image is not None

    def decode(self) -> np.ndarray:
        """RGB uint8 ``H x W x 3``; raises :class:`FrameError` naming the message."""
        if self._image is None:
            from tactile_grasp_predictor import image_codec

            m = self.meta
            data = memoryview(self.raw)[m.data_offset : m.data_offset + m.data_len]
            try:
                if m.compressed:
                    self._image = image_codec.decode_compressed(m.encoding, data)
                else:  # rgb8 of a mapped bag: a read-only view of the map, no copy
                    image = image_codec.decode_image(m.encoding, m.height, m.width, m.step, data,
                                                     m.is_bigendian, copy=isinstance(self.raw, bytes))
                    self._image = image if image.flags.c_contiguous else np.ascontiguousarray(image)
            except FrameError as exc:
                raise FrameError(f"{self.source}: {exc}") from exc
        return self._image


@dataclass(frozen=True)
class FrameItem:
    """A tactile frame received at ``t`` (bag log time, s)."""

    t: float
    stamp: float | None
    image: LazyImage


@dataclass(frozen=True)
class GripperItem:
    """A gripper input received at ``t``: width (m) from JointState / status, moving flag, grasp state.

    ``stamp``: the header stamp (``None`` if empty); ``has_header``: whether the type has a header
    (a ROS 1 style status or a Bool has none: its time is always the receive time).
    """

    t: float
    topic: str
    kind: str  # "joint" | "moving" | "status"
    width_m: float | None = None
    moving: bool | None = None
    grasp_state: int | None = None  # GraspState value
    status_text: str | None = None
    stamp: float | None = None
    has_header: bool = True
    effort: float | None = None  # the fingers' JointState effort (joint_state_effort), if recorded


@dataclass(frozen=True)
class OutcomeItem:
    """The recorded outcome of the last grasp (True = lifted successfully)."""

    t: float
    success: bool


@dataclass(frozen=True)
class Skipped:
    """A message that cannot be used, with the reason (named bag/topic/index)."""

    t: float
    topic: str
    reason: str


BagItem = FrameItem | GripperItem | OutcomeItem | Skipped


# ---------------------------------------------------------------------- CDR header parsing
class _Cdr:
    """Minimal CDR cursor over a message's bytes (alignment relative to the payload start)."""

    def __init__(self, raw: bytes | memoryview) -> None:
        if len(raw) < 4:
            raise ValueError("message shorter than the CDR encapsulation header")
        self.raw = raw
        self.le = raw[1] in (1, 3)
        self.pos = 4

    def _align(self, n: int) -> None:
        self.pos += (-(self.pos - 4)) % n

    def u32(self) -> int:
        self._align(4)
        (v,) = struct.unpack_from("<I" if self.le else ">I", self.raw, self.pos)
        self.pos += 4
        return int(v)

    def i32(self) -> int:
        self._align(4)
        (v,) = struct.unpack_from("<i" if self.le else ">i", self.raw, self.pos)
        self.pos += 4
        return int(v)

    def u8(self) -> int:
        v = self.raw[self.pos]
        self.pos += 1
        return int(v)

    def string(self) -> str:
        n = self.u32()
        if n > len(self.raw) - self.pos:
            raise ValueError("string runs past the end of the message")
        s = bytes(self.raw[self.pos : self.pos + n]).rstrip(b"\x00").decode("utf-8", "replace")
        self.pos += n
        return s

    def stamp(self) -> float | None:
        sec, nsec = self.i32(), self.u32()
        return None if sec == 0 and nsec == 0 else sec + nsec * 1e-9

    def blob(self) -> tuple[int, int]:
        n = self.u32()
        if n > len(self.raw) - self.pos:
            raise ValueError(
                f"data claims {n} bytes, only {len(self.raw) - self.pos} present (truncated message)"
            )
        return self.pos, n


def parse_image_meta(raw: bytes | memoryview, compressed: bool) -> ImageMeta:
    """Parse header, size, encoding and the data location of an Image / CompressedImage."""
    c = _Cdr(raw)
    stamp = c.stamp()
    c.string()  # frame_id
    if compressed:
        fmt = c.string()
        off, n = c.blob()
        return ImageMeta(stamp, fmt, 0, 0, 0, 0, off, n, True)
    height, width = c.u32(), c.u32()
    encoding = c.string()
    big = c.u8()
    step = c.u32()
    off, n = c.blob()
    return ImageMeta(stamp, encoding, height, width, step, big, off, n, False)


_STAMP = {True: struct.Struct("<iI"), False: struct.Struct(">iI")}  # a Header's sec, nanosec by endianness


def parse_header_stamp(raw: bytes) -> float | None:
    """Return the header stamp of a CDR message that starts with a ``std_msgs/Header`` (``None`` if empty)."""
    if len(raw) < 4:
        raise ValueError("message shorter than the CDR encapsulation header")
    sec, nsec = _STAMP[raw[1] in (1, 3)].unpack_from(raw, 4)  # as _Cdr(raw).stamp(), without the cursor
    return None if sec == 0 and nsec == 0 else sec + nsec * 1e-9


def parse_joint_state(raw: bytes) -> tuple[list[str], list[float]]:
    """Names and positions of a ``sensor_msgs/JointState`` without a full deserialisation."""
    names, positions, _ = joint_state_arrays(raw)
    return names, positions


def joint_state_arrays(raw: bytes) -> tuple[list[str], list[float], list[float]]:
    """Names, positions and efforts of a ``sensor_msgs/JointState`` without a full deserialisation."""
    names, arrays, _ = _joint_state_layout(raw)
    return names, arrays[0], arrays[2]


@dataclass(frozen=True)
class _JointLayout:
    """Where a JointState's fields lie, for the next message with the same size, frame and names."""

    size: int
    head: bytes  # the CDR encapsulation header
    names_end: int
    prefix: bytes  # frame_id and names (after the stamp)
    names: tuple[str, ...]
    counts: tuple[tuple[int, bytes], ...]  # each sequence's length field: offset, bytes
    arrays: tuple[tuple[int, struct.Struct], ...]  # each sequence's data: offset, struct


def _joint_state_layout(raw: bytes) -> tuple[list[str], list[list[float]], _JointLayout]:
    c = _Cdr(raw)
    c.stamp()
    c.string()  # frame_id
    names = [c.string() for _ in range(c.u32())]
    names_end = c.pos
    arrays: list[list[float]] = []
    counts, places = [], []
    for name in ("position", "velocity", "effort"):
        c._align(4)
        counts.append((c.pos, bytes(raw[c.pos : c.pos + 4])))
        n = c.u32()
        if n == 0:  # no padding follows an empty sequence at the end of a message
            arrays.append([])
            places.append((c.pos, struct.Struct("<0d")))
            continue
        c._align(8)
        if c.pos + 8 * n > len(raw):
            raise ValueError(f"{name} runs past the end of the message")
        layout = struct.Struct(("<" if c.le else ">") + f"{n}d")
        arrays.append(list(layout.unpack_from(raw, c.pos)))
        places.append((c.pos, layout))
        c.pos += 8 * n
    return names, arrays, _JointLayout(len(raw), bytes(raw[:4]), names_end, bytes(raw[12:names_end]),
                                       tuple(names), tuple(counts), tuple(places))


class JointStateReader:
    """:func:`joint_state_arrays` for a stream: a message laid out as the last one is read by offsets.

    A driver's JointStates differ only in their stamp and numbers, so after the first the
    names are not parsed again: same size, encapsulation, frame id, names and sequence
    lengths (compared as bytes) mean the same offsets; anything else is parsed in full.
    """

    def __init__(self) -> None:
        self._layout: _JointLayout | None = None

    def __call__(self, raw: bytes) -> tuple[list[str], list[float], list[float]]:
        """Return the names, positions and efforts of a serialized ``sensor_msgs/JointState``."""
        k = self._layout
        if (k is not None and len(raw) == k.size and raw[:4] == k.head and raw[12 : k.names_end] == k.prefix
                and all(raw[o : o + 4] == b for o, b in k.counts)):
            (p_at, p), _, (e_at, e) = k.arrays
            return list(k.names), list(p.unpack_from(raw, p_at)), list(e.unpack_from(raw, e_at))
        names, arrays, self._layout = _joint_state_layout(raw)
        return names, arrays[0], arrays[2]


def check_image_meta(meta: ImageMeta, raw: bytes | memoryview | None = None,
                     accepted: Collection[str] | None = None) -> str | None:
    """Cheap validity check of an image without decoding pixels: the reason if unusable, else ``None``.

    The node's own checks (:func:`~tactile_grasp_predictor.image_codec.check_image`, the table of
    encodings narrowed to ``accepted``, the node's ``image_encodings``), so the replay drops exactly
    the frames the node drops. A compressed frame's header (``raw``: the message's CDR bytes) has
    its declared size bounded (:func:`~tactile_grasp_predictor.image_codec.check_compressed`);
    its body is only decoded when the frame is used.
    """
    from tactile_grasp_predictor import image_codec

    try:
        if meta.compressed:
            end = meta.data_offset + meta.data_len
            data = b"" if raw is None else memoryview(raw)[meta.data_offset : end]
            image_codec.check_compressed(meta.encoding, data)
        else:
            image_codec.check_image(meta.encoding, meta.height, meta.width, meta.step, meta.is_bigendian,
                                    meta.data_len, accepted)
    except FrameError as exc:
        return str(exc)
    return None


class ImageMetaReader:
    """:func:`parse_image_meta` + :func:`check_image_meta` for one raw image stream, by the last layout.

    A camera's frames differ only in stamp and pixels: one of the same size, encapsulation
    and header fields after the stamp (frame id, size, encoding, step, data length; compared
    as bytes) as the last has the last one's meta and verdict with its own stamp. Compressed
    frames are always parsed and checked in full.
    """

    def __init__(self, compressed: bool, accepted: Collection[str] | None) -> None:
        self.compressed, self.accepted = compressed, accepted
        self._last: tuple[int, bytes, int, bytes, str, ImageMeta, str | None] | None = None

    def __call__(self, raw: bytes | memoryview) -> tuple[ImageMeta, str | None]:
        """Return the frame's meta and why it is unusable (``None``: usable)."""
        k = self._last
        if k is not None and len(raw) == k[0] and raw[:4] == k[1] and raw[12 : k[2]] == k[3]:
            sec, nsec = struct.unpack_from(k[4], raw, 4)
            m = k[5]
            stamp = None if sec == 0 and nsec == 0 else sec + nsec * 1e-9
            return ImageMeta(stamp, m.encoding, m.height, m.width, m.step, m.is_bigendian, m.data_offset,
                             m.data_len, m.compressed), k[6]
        meta = parse_image_meta(raw, self.compressed)
        bad = check_image_meta(meta, raw, self.accepted)
        if not self.compressed:
            order = "<iI" if raw[1] in (1, 3) else ">iI"
            at = meta.data_offset
            self._last = (len(raw), bytes(raw[:4]), at, bytes(raw[12:at]), order, meta, bad)
        return meta, bad


# ------------------------------------------------------------------------------ damaged mcap
@dataclass
class _Def:
    data: str


@dataclass
class _Conn:
    id: int
    topic: str
    msgtype: str
    msgdef: _Def
    msgcount: int


class _SalvagedMcap:
    """The readable start of an mcap file whose end is missing (recording interrupted, file cut).

    Reads records front to back with ``mcap``'s non-seeking reader and stops at the damage; offers
    the part of the ``rosbags`` reader interface :class:`BagSource` uses.
    """

    def __init__(self, path: Path, connections: list[_Conn]) -> None:
        self.path = path
        self.connections = connections

    @classmethod
    def open(cls, path: Path) -> _SalvagedMcap | None:
        """Scan the file; ``None`` if not a single message can be read."""
        conns: dict[int, _Conn] = {}
        try:
            for schema, channel, _msg in cls._iter(path):
                c = conns.get(channel.id)
                if c is None:
                    msgdef = schema.data.decode("utf-8", "replace") if schema is not None else ""
                    name = schema.name if schema is not None else ""
                    c = conns[channel.id] = _Conn(channel.id, channel.topic, name, _Def(msgdef), 0)
                c.msgcount += 1
        except Exception:
            pass  # the damage: keep what came before it
        return cls(path, list(conns.values())) if conns else None

    @staticmethod
    def _iter(path: Path) -> Iterator[Any]:
        """Yield ``(schema, channel, message)`` in file order; raises at the damage."""
        from mcap.records import Channel, Message, Schema
        from mcap.stream_reader import StreamReader

        schemas: dict[int, Any] = {}
        channels: dict[int, Any] = {}
        with path.open("rb") as f:
            for rec in StreamReader(f, skip_magic=False).records:
                if isinstance(rec, Schema):
                    schemas[rec.id] = rec
                elif isinstance(rec, Channel):
                    channels[rec.id] = rec
                elif isinstance(rec, Message) and rec.channel_id in channels:
                    ch = channels[rec.channel_id]
                    yield schemas.get(ch.schema_id), ch, rec

    def messages(self, connections: list[Any]) -> Iterator[tuple[Any, int, bytes]]:
        """Yield ``(connection, log_time_ns, raw)`` up to the damage, which raises."""
        wanted = {c.id: c for c in connections}
        for _schema, channel, msg in self._iter(self.path):
            conn = wanted.get(channel.id)
            if conn is not None:
                yield conn, int(msg.log_time), msg.data

    def close(self) -> None:
        """Nothing to close (files are opened per pass)."""


# ------------------------------------------------------------------------------ the source
def _check_connections(connections: Any) -> None:
    """Check what ``metadata.yaml`` (or a salvaged mcap) says of each topic: names, types, counts.

    ``rosbags`` takes these fields as the YAML gives them; a garbled file can make a count a
    string or a topic a list.
    """
    if not isinstance(connections, list):
        raise BagError(f"metadata.yaml: topics are {type(connections).__name__}, not a list")
    for c in connections:
        topic, msgtype = getattr(c, "topic", None), getattr(c, "msgtype", None)
        count = getattr(c, "msgcount", None)
        if not isinstance(topic, str) or not topic:
            raise BagError(f"metadata.yaml: topic name {topic!r} is not a name")
        if not isinstance(msgtype, str) or not msgtype:
            raise BagError(f"metadata.yaml: topic {topic!r}: type {msgtype!r} is not a type name")
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise BagError(f"metadata.yaml: topic {topic!r}: message_count {count!r} is not a count")


def default_encodings() -> tuple[str, ...]:
    """Return the image encodings the node accepts by default (its ``image_encodings``)."""
    return tuple(NodeConfig.from_values({})["image_encodings"])


def _stamp_of(msg: Any) -> float | None:
    st = getattr(getattr(msg, "header", None), "stamp", None)
    if st is None or (st.sec == 0 and st.nanosec == 0):
        return None
    return float(st.sec + st.nanosec * 1e-9)


@dataclass
class BagSource:
    """A rosbag2 recording opened for replay (context manager).

    ``path`` is the bag directory (or its single ``.mcap`` / ``.db3`` file's directory);
    ``encodings``: the raw image encodings accepted, as the node's ``image_encodings`` (default:
    its default), so frames the node would refuse are refused here too; ``in_place``: read an
    uncompressed mcap file in place (:mod:`.mcap_direct`; ``False``: with rosbags, the baseline).
    """

    path: Path
    wanted: TopicSelection = field(default_factory=TopicSelection)
    joint_width: JointWidthConfig = field(default_factory=default_joints)
    warnings: list[str] = field(default_factory=list)
    encodings: tuple[str, ...] = field(default_factory=default_encodings)  # the node's image_encodings
    in_place: bool = True  # an uncompressed mcap file read in place (mcap_direct); False: always rosbags

    def __post_init__(self) -> None:
        self.path = Path(self.path)
        self.name = self.path.name
        self._reader: Any = None
        self._typestore: Any = None
        self.topics: ResolvedTopics | None = None
        self.types: dict[str, str] = {}
        self.counts: dict[str, int] = {}
        self._joint_state = JointStateReader()
        self._image_meta: ImageMetaReader | None = None

    # -- opening
    def __enter__(self) -> BagSource:
        self.open()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def open(self) -> None:
        """Open the bag, register the types it embeds and resolve the topics."""
        from rosbags.rosbag2 import Reader
        from rosbags.typesys import Stores, get_typestore

        path = self.path
        if path.is_file() and path.suffix in (".mcap", ".db3"):
            path = path.parent
        if not path.exists():
            raise BagError(f"{self.path}: no such bag")
        if not (path / "metadata.yaml").exists():
            raise BagError(f"{self.path}: not a rosbag2 directory (no metadata.yaml)")
        reader: Any
        try:
            reader = Reader(path)
            reader.open()
        except Exception as exc:
            mcaps = sorted(path.glob("*.mcap"))
            salvaged = _SalvagedMcap.open(mcaps[0]) if len(mcaps) == 1 else None
            if salvaged is None:
                raise BagError(f"{self.path}: cannot open bag: {type(exc).__name__}: {exc}") from exc
            reader = salvaged
            self.warnings.append(
                f"{self.name}: {mcaps[0].name} has no valid end ({exc}); reading the "
                f"{sum(c.msgcount for c in reader.connections)} messages before the damage "
                "(an interrupted recording?)"
            )
        try:
            _check_connections(reader.connections)
        except BagError as exc:
            reader.close()
            raise BagError(f"{self.path}: {exc}") from exc
        self._reader = reader
        self._typestore = get_typestore(Stores.ROS2_HUMBLE)
        self.types = {c.topic: c.msgtype for c in reader.connections}
        self.counts = {}
        for c in reader.connections:
            self.counts[c.topic] = self.counts.get(c.topic, 0) + c.msgcount
        fields = {c.topic: self._register(c) for c in reader.connections}
        self.topics = resolve_topics(self.name, self.types, fields, self.wanted)
        for topic in self.topics.ignored:
            self.warnings.append(f"{self.name}: ignoring topic {topic} ({self.types[topic]})")

    def _register(self, conn: Any) -> set[str]:
        """Make ``conn.msgtype`` known to the typestore; return its field names (empty if unknown)."""
        from rosbags.typesys import get_types_from_idl, get_types_from_msg

        ts = self._typestore
        typ = conn.msgtype
        if typ not in ts.types:
            typs: dict[str, Any] = {}
            data = getattr(conn.msgdef, "data", "") or ""
            try:
                if data.startswith("=" * 80 + "\nIDL: ") or data.lstrip().startswith("module "):
                    for part in data.split("=" * 80 + "\n")[1:] if data.startswith("=") else [data]:
                        typs.update(
                            get_types_from_idl(part.split("\n", 1)[1] if part.startswith("IDL:") else part)
                        )
                elif data:
                    typs.update(get_types_from_msg(data, typ))
                else:  # no embedded definition: a WSG variant we know by name?
                    for vtype, vdef in STATUS_TYPES.values():
                        if vtype == typ:
                            typs.update(get_types_from_msg(vdef, typ))
                ts.register({k: v for k, v in typs.items() if k not in ts.types})
            except Exception as exc:
                self.warnings.append(f"{self.name}: cannot register type {typ} of {conn.topic}: {exc}")
                return set()
        if typ not in ts.types:
            return set()
        try:  # the parsed definition: no serializer compiled for a type that may never be read
            return {str(name) for name, _ in ts.fielddefs[typ][1]}
        except Exception:
            return set()

    def close(self) -> None:
        """Close the underlying reader."""
        if self._reader is not None:
            try:
                self._reader.close()
            finally:
                self._reader = None

    # -- reading
    def items(self) -> Iterator[BagItem]:
        """Yield the messages of the resolved topics in log-time order as core items.

        A storage file that ends early (truncated, corrupt) ends the stream with a warning;
        unusable messages are yielded as :class:`Skipped` with the reason.
        """
        if self._reader is None or self.topics is None:
            raise BagError(f"{self.path}: bag is not open")
        tp = self.topics
        wanted = {t for t in (tp.image, tp.joint_states, tp.moving, tp.status, tp.outcome) if t}
        conns = [c for c in self._reader.connections if c.topic in wanted]
        index: dict[str, int] = {}
        last_t = -math.inf
        self._image_meta = None  # self.encodings may have changed since the last pass
        # An uncompressed mcap file is read in place (frames skipped are never copied); else rosbags.
        direct = direct_messages(self._reader, conns) if self.in_place else None
        it = direct or self._reader.messages(connections=conns)
        while True:
            try:
                conn, ts_ns, raw = next(it)
            except StopIteration:
                return
            except Exception as exc:
                n = sum(index.values())
                self.warnings.append(
                    f"{self.name}: storage ends early after {n} messages "
                    f"(truncated or corrupt): {type(exc).__name__}: {exc}"
                )
                return
            topic = conn.topic
            k = index[topic] = index.get(topic, 0) + 1
            if type(ts_ns) is not int or not isinstance(raw, (bytes, bytearray, memoryview)):
                # sqlite3 columns hold any type: a garbled row gives text or a float for either
                yield Skipped(max(last_t, 0.0), topic, f"{self.name}:{topic}#{k}: corrupt record "
                              f"(log time {type(ts_ns).__name__}, data {type(raw).__name__})")
                continue
            t = ts_ns * 1e-9
            if t < last_t:
                yield Skipped(t, topic, f"{self.name}:{topic}#{k}: log time goes backwards")
                continue
            last_t = t
            # A frame stays a view of the bag (decoded, if ever, by LazyImage); the rest is small: copied.
            yield self._convert(conn, t, raw if topic == tp.image else bytes(raw), k)

    def _convert(self, conn: Any, t: float, raw: Any, k: int) -> BagItem:
        tp = self.topics
        assert tp is not None
        topic = conn.topic
        where = f"{self.name}:{topic}#{k}"
        try:
            if topic == tp.image:
                compressed = conn.msgtype == COMPRESSED_TYPE
                if self._image_meta is None or self._image_meta.compressed != compressed:
                    self._image_meta = ImageMetaReader(compressed, self.encodings)
                meta, bad = self._image_meta(raw)
                if bad:
                    return Skipped(t, topic, f"{where}: {bad}")
                return FrameItem(t, meta.stamp, LazyImage(raw, meta, where))
            if topic == tp.joint_states:
                try:
                    names, positions, efforts = self._joint_state(raw)
                except (ValueError, IndexError, struct.error):  # odd layout: the full deserializer
                    msg = self._typestore.deserialize_cdr(raw, conn.msgtype)
                    names, positions = list(msg.name), [float(p) for p in msg.position]
                    efforts = [float(e) for e in msg.effort]
                width, why = joint_state_width(names, positions, self.joint_width)
                if width is None:
                    return Skipped(t, topic, f"{where}: {why}")
                return GripperItem(t, topic, "joint", width_m=width, stamp=parse_header_stamp(raw),
                                   effort=joint_state_effort(names, efforts, self.joint_width))
            msg = self._typestore.deserialize_cdr(raw, conn.msgtype)
            if topic == tp.moving:
                return GripperItem(t, topic, "moving", moving=bool(msg.data), has_header=False)
            if topic == tp.outcome:
                return OutcomeItem(t, bool(msg.data))
            if topic == tp.status:
                return self._status(t, topic, msg, where)
        except Exception as exc:
            return Skipped(t, topic, f"{where}: cannot decode {conn.msgtype}: {type(exc).__name__}: {exc}")
        return Skipped(t, topic, f"{where}: unexpected topic")

    def _status(self, t: float, topic: str, msg: Any, where: str) -> BagItem:
        """Turn a status message into a gripper item (:func:`~tactile_grasp_predictor.wsg.decode_status`)."""
        tp = self.topics
        assert tp is not None and tp.status_variant is not None
        status = decode_status(tp.status_variant, msg)  # ValueError naming the field: Skipped
        if status.width_m is None and not tp.joint_states:
            return Skipped(t, topic, f"{where}: width {msg.width!r} is not a plausible opening")
        return GripperItem(
            t,
            topic,
            "status",
            width_m=None if tp.joint_states else status.width_m,
            moving=status.moving,
            grasp_state=None if status.state is None else int(status.state),
            status_text=getattr(msg, "status", None),
            stamp=_stamp_of(msg),
            has_header=hasattr(msg, "header"),
        )
