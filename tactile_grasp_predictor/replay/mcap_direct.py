"""Read an uncompressed mcap bag's messages in place (memory-mapped): no copy of the frames skipped.

``rosbags`` reads every chunk of a bag into memory and copies each message out of it, so a
replay of 640 x 480 rgb8 frames at 30 Hz moves ~115 MB per grasp through Python while the
gate uses three frames of it. For an mcap file whose chunks are stored uncompressed (what
``tgp bag record`` and rosbags write, and rosbag2's default ``mcap`` profile) this module
walks the chunks' record headers in a memory map and yields each message as a
``memoryview`` of the map: a frame's pixels are only read from disk when the frame is
decoded. The order is rosbags' (log time, then position in the file), and so is the set
of messages (per chunk, the chunk's declared time range; the same connection matching).

Anything unusual — several storage files, compressed chunks or messages, a record that
does not fit, a chunk checksum that does not match, an unexpected record — makes
:func:`direct_messages` return ``None``: the caller then reads the bag with ``rosbags``,
whose refusals (and the replay's warnings about them) stay exactly as they were.
A chunk with a checksum is verified before use (its bytes are then read once).

Example::

    messages = direct_messages(reader, connections)  # None: use reader.messages(...)
    for conn, log_time_ns, raw in messages or reader.messages(connections=connections):
        ...
"""

from __future__ import annotations

import mmap
import struct
import zlib
from collections.abc import Collection, Iterator
from typing import Any

_MESSAGE, _CHUNK = 0x05, 0x06
_U64 = struct.Struct("<Q")
_CHUNK_HEAD = struct.Struct("<QQQI")  # start time, end time, uncompressed size, uncompressed crc
_MESSAGE_HEAD = struct.Struct("<HIQQ")  # channel id, sequence, log time, publish time


class _MalformedError(Exception):
    """The file is not the plain well-formed mcap this reader handles (use rosbags)."""


def _storage(reader: Any) -> Any | None:
    """Return the single mcap storage reader of a rosbags ``Reader``, or ``None``."""
    storage = getattr(reader, "storage", None)
    storages = getattr(storage, "storages", None)
    if storages is None or len(storages) != 1:
        return None
    mcap = storages[0]
    if getattr(getattr(storage, "metadata", None), "compression_mode", None):  # per-message / file zstd
        return None
    if type(mcap).__name__ != "McapReader" or not getattr(mcap, "chunks", None):
        return None
    return mcap


def _channel_map(storage_conns: Collection[Any], wanted: Collection[Any]) -> dict[int, Any]:
    """Map the file's channel ids to the requested connections, matched as rosbags matches them."""
    out = {}
    for x in storage_conns:
        for y in wanted:
            if (y.topic == x.topic and y.msgtype == x.msgtype and y.ext == x.ext
                    and (not x.digest or not y.digest or y.digest == x.digest)):
                out[x.id] = y
                break
    return out


def _chunk_messages(mm: mmap.mmap, view: memoryview, chunk: Any, channels: dict[int, Any],
                    out: list[tuple[int, int, int, int, int]]) -> None:
    """Append ``(log time, offset, channel, data start, data end)`` of a chunk's wanted messages."""
    pos = chunk.chunk_start_offset
    size = len(mm)
    if pos + 9 + _CHUNK_HEAD.size + 4 > size or mm[pos] != _CHUNK:
        raise _MalformedError("no chunk record at the indexed offset")
    (length,) = _U64.unpack_from(mm, pos + 1)
    end = pos + 9 + length
    if end > size:
        raise _MalformedError("chunk runs past the end of the file")
    _t0, _t1, uncompressed, crc = _CHUNK_HEAD.unpack_from(mm, pos + 9)
    p = pos + 9 + _CHUNK_HEAD.size
    (n,) = struct.unpack_from("<I", mm, p)
    compression = bytes(view[p + 4 : p + 4 + n])
    p += 4 + n
    if compression or p + 8 > end:
        raise _MalformedError("compressed chunk")
    (records,) = _U64.unpack_from(mm, p)
    p += 8
    stop = p + records
    if stop > end or records != uncompressed:
        raise _MalformedError("chunk records do not fit")
    if crc and zlib.crc32(view[p:stop]) != crc:
        raise _MalformedError("chunk checksum mismatch")
    lo, hi = chunk.message_start_time, chunk.message_end_time
    while p < stop:
        if p + 9 > stop:
            raise _MalformedError("record header past the chunk's end")
        op = mm[p]
        (length,) = _U64.unpack_from(mm, p + 1)
        body = p + 9
        nxt = body + length
        if nxt > stop:
            raise _MalformedError("record runs past the chunk's end")
        if op == _MESSAGE:
            if length < _MESSAGE_HEAD.size:
                raise _MalformedError("message record too short")
            channel, _seq, log_time, _pub = _MESSAGE_HEAD.unpack_from(mm, body)
            if channel in channels and lo <= log_time <= hi:
                out.append((log_time, p, channel, body + _MESSAGE_HEAD.size, nxt))
        p = nxt


def direct_messages(reader: Any,
                    connections: Collection[Any]) -> Iterator[tuple[Any, int, memoryview]] | None:
    """Return the messages of ``connections`` as rosbags' ``reader.messages`` would, without copies.

    Each item is ``(connection, log time ns, memoryview of the serialized message)``; the views
    keep the memory map alive. ``None`` when the bag is not a plain uncompressed single-file
    mcap or anything in it does not parse (see the module docstring): read it with rosbags.
    """
    mcap = _storage(reader)
    if mcap is None:
        return None
    channels = _channel_map(mcap.connections, connections)
    bio = getattr(mcap, "bio", None)
    if not channels or bio is None:
        return None
    try:
        mm = mmap.mmap(bio.fileno(), 0, access=mmap.ACCESS_READ)
    except (OSError, ValueError):
        return None
    if hasattr(mm, "madvise"):  # header walking touches a page per message: no read-ahead of pixels
        mm.madvise(mmap.MADV_RANDOM)
    view = memoryview(mm)
    entries: list[tuple[int, int, int, int, int]] = []
    try:
        for chunk in mcap.chunks:
            if any(chunk.channel_count.get(cid, 0) for cid in channels):
                _chunk_messages(mm, view, chunk, channels, entries)
    except (_MalformedError, struct.error, IndexError):
        view.release()
        mm.close()
        return None
    entries.sort()  # log time, then file offset: rosbags' merge of chunks sorted by time
    return ((channels[c], t, view[a:b]) for t, _off, c, a, b in entries)
