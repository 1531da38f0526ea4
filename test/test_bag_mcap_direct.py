"""The in-place mcap reader (replay/mcap_direct.py) yields what rosbags yields, or hands the bag back."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import pytest

from tactile_grasp_predictor.replay.mcap_direct import direct_messages


@pytest.fixture(scope="module")
def bag(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from training.bag_record import RecordOptions, synthetic_recordings, write_bag

    path = tmp_path_factory.mktemp("direct") / "bag"
    write_bag(path, synthetic_recordings(3, seed=2, no_part=0.0), RecordOptions(moving=True), progress=False)
    return path


def _messages(path: Path, direct: bool) -> list[tuple[str, int, bytes]] | None:
    from rosbags.rosbag2 import Reader

    with Reader(path) as reader:
        conns = [c for c in reader.connections if c.topic != "/grasp/outcome"]  # a subset, as the replay asks
        it = direct_messages(reader, conns) if direct else reader.messages(connections=conns)
        return None if it is None else [(c.topic, t, bytes(raw)) for c, t, raw in it]


def _chunk_crc_field(path: Path) -> tuple[Path, int, int, int]:
    """The mcap file, the offset of its first chunk's CRC field, and that chunk's records' span."""
    from rosbags.rosbag2.storage_mcap import McapReader

    (mcap,) = path.glob("*.mcap")
    reader = McapReader(mcap)
    reader.open()
    chunk = reader.chunks[0]
    reader.close()
    at = chunk.chunk_start_offset + 9 + 24
    records = chunk.chunk_start_offset + 9 + 28 + 4 + len(chunk.compression) + 8
    return mcap, at, records, records + chunk.uncompressed_size


def test_the_same_messages_in_the_same_order_as_rosbags(bag: Path) -> None:
    direct, rosbags = _messages(bag, True), _messages(bag, False)
    assert direct is not None and len(direct) > 100
    assert {topic for topic, _, _ in direct} == {"/gelsight_left/image_raw", "/wsg50/joint_states",
                                                 "/wsg50/moving"}
    assert direct == rosbags


def test_a_chunk_with_a_right_checksum_is_read_in_place_a_wrong_one_goes_to_rosbags(
        bag: Path, tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "bag"
    shutil.copytree(bag, copy)
    mcap, at, start, end = _chunk_crc_field(copy)
    data = bytearray(mcap.read_bytes())
    data[at : at + 4] = struct.pack("<I", zlib.crc32(data[start:end]))
    mcap.write_bytes(bytes(data))
    assert _messages(copy, True) == _messages(bag, False)  # verified, then read in place
    data[at : at + 4] = struct.pack("<I", zlib.crc32(data[start:end]) ^ 1)
    mcap.write_bytes(bytes(data))
    assert _messages(copy, True) is None  # rosbags then refuses the chunk, as before


def test_a_record_that_overruns_its_chunk_goes_to_rosbags(bag: Path, tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "bag"
    shutil.copytree(bag, copy)
    mcap, _, start, _ = _chunk_crc_field(copy)
    data = bytearray(mcap.read_bytes())
    data[start + 1 : start + 9] = struct.pack("<Q", 1 << 40)  # the first record's length
    mcap.write_bytes(bytes(data))
    assert _messages(copy, True) is None


def test_stream_readers_give_what_a_full_parse_gives_frame_by_frame(bag: Path) -> None:
    from tactile_grasp_predictor.replay.bag_source import (
        ImageMetaReader,
        JointStateReader,
        check_image_meta,
        joint_state_arrays,
        parse_image_meta,
    )

    msgs = _messages(bag, False)
    assert msgs is not None
    frames = [raw for topic, _, raw in msgs if topic == "/gelsight_left/image_raw"]
    joints = [raw for topic, _, raw in msgs if topic == "/wsg50/joint_states"]
    images, accepted = ImageMetaReader(False, ("rgb8",)), ("rgb8",)
    frames.append(frames[0][:4] + bytes(8) + frames[0][12:])  # an empty stamp: None, as parsed
    for raw in frames:
        meta = parse_image_meta(raw, False)
        assert images(memoryview(raw)) == (meta, check_image_meta(meta, raw, accepted))
    assert images(memoryview(frames[-1]))[0].stamp is None
    reader = JointStateReader()
    assert all(reader(raw) == joint_state_arrays(raw) for raw in joints)
