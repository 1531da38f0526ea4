"""A small reader of TensorBoard event files (TFRecord framing + the Event protobuf), no TensorBoard needed.

It applies TensorBoard's purge rule: a ``SessionLog.START`` event at step ``s`` (what a writer
opened with ``purge_step=s`` writes first) drops the events of earlier files at steps >= ``s``.
"""

from __future__ import annotations

import struct
from pathlib import Path

from tensorboardX.proto.event_pb2 import Event, SessionLog


def _records(path: Path) -> list[bytes]:
    data, out, pos = path.read_bytes(), [], 0
    while pos + 12 <= len(data):
        (n,) = struct.unpack("<Q", data[pos : pos + 8])
        out.append(data[pos + 12 : pos + 12 + n])
        pos += 12 + n + 4  # length, its crc, the record, its crc
    assert pos == len(data), f"{path}: truncated record at byte {pos}"
    return out


def read_scalars(run_dir: Path) -> dict[str, dict[int, float]]:
    """Read the scalars of the event files in ``run_dir`` as ``{tag: {step: value}}``, purged."""
    files = []
    for path in run_dir.glob("events.out.tfevents.*"):
        events = [Event.FromString(r) for r in _records(path)]
        files.append((min((e.wall_time for e in events), default=0.0), events))
    scalars: dict[str, dict[int, float]] = {}
    for _t, events in sorted(files, key=lambda f: f[0]):
        for e in events:
            if e.HasField("session_log") and e.session_log.status == SessionLog.START:
                for series in scalars.values():
                    for step in [s for s in series if s >= e.step]:
                        del series[step]
            for v in e.summary.value:
                value = v.simple_value if v.HasField("simple_value") else float(v.tensor.float_val[0])
                scalars.setdefault(v.tag, {})[int(e.step)] = value
    return scalars
