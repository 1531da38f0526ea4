"""``tgp harvest``: the Ta/Tb the node's session picks from a bag or simulated streams, as shards."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from helpers.shards import read_shard_dir, write_stream_shards
from tactile_grasp_predictor.node_config import NodeConfig
from tactile_grasp_predictor.replay.bag_source import BagSource, FrameItem
from tactile_grasp_predictor.replay.evaluate import LabelTable, evaluate_bag
from training.bag_record import RecordOptions, synthetic_recordings, write_bag
from training.cli import main as tgp
from training.harvest import HOLD_S, harvest

NODE = (NodeConfig.from_values({}), {})


def _read(directory: Path) -> list[tuple[object, ...]]:
    return [(t.object_name, t.is_gripping, t.images["gelsightA_before"], t.images["gelsightA_during"],
             t.extras) for t in read_shard_dir(directory)]


def test_harvest_picks_the_frames_of_the_replay(tmp_path: Path) -> None:
    recs = synthetic_recordings(8, seed=4, fps=30.0, no_part=0.4)
    bag = tmp_path / "grasps"
    # as the closed-loop robot plays them: held at the lift until the decision (what harvest does)
    held = [tr.held_for_decision(HOLD_S) for tr in recs]
    assert all(np.array_equal(h.frames_left[-1], tr.frames_left[tr.frame_t < tr.t_lift][-1])
               and h.frame_t[-1] < tr.t_lift + HOLD_S <= h.t_lift for h, tr in zip(held, recs, strict=True))
    write_bag(bag, held, RecordOptions(), progress=False)
    # the node's decision path over the bag, as tgp bag eval runs it (no model: model_unavailable)
    ev = evaluate_bag(bag, None, labels=LabelTable.read(tmp_path / "grasps.labels.csv"))
    judged = [g for g in ev.grasps if g.decision.reason == "model_unavailable"]
    assert 4 <= len(judged) < len(ev.grasps)  # some grasps close on nothing: no Tb, no trial

    summary = harvest([bag], tmp_path / "from_bag", NODE, shard_size=3, progress=False)
    assert summary.trials == len(judged) and len(summary.files) == -(-len(judged) // 3)
    assert summary.skipped["no_part_found"] == len(ev.grasps) - len(judged)
    rows = _read(tmp_path / "from_bag")
    with BagSource(bag) as src:
        frames = {it.stamp: it.image.decode() for it in src.items() if isinstance(it, FrameItem)}
    for g, (name, label, ta, tb, extras) in zip(judged, rows, strict=True):
        assert label == g.label and name == "grasps"
        d = g.decision
        assert extras["node_ta_stamp"] == d.ta_stamp and extras["node_tb_stamp"] == d.tb_stamp
        assert np.array_equal(ta, frames[d.ta_stamp]) and np.array_equal(tb, frames[d.tb_stamp])
        assert extras["node_reason"] == "model_unavailable" and extras["node_grasp_id"] == g.grasp_id

    # the same trials as simulated shards: recorded into a bag on the way, the same frames come out,
    # with the shards' object names and labels
    sim = tmp_path / "sim"
    write_stream_shards(sim, recs)
    assert tgp(["harvest", str(sim), "--out", str(tmp_path / "from_sim"), "--no-progress"]) == 0
    sim_rows = _read(tmp_path / "from_sim")
    assert len(sim_rows) == len(rows)
    for (_, label, ta, tb, extras), (name, label2, ta2, tb2, extras2) in zip(rows, sim_rows, strict=True):
        k = int(str(extras2["node_source"]).rsplit(":i", 1)[1])
        assert name == f"thing_{k}" and label2 == label == bool(recs[k].label)
        assert np.array_equal(ta, ta2) and np.array_equal(tb, tb2)
        assert extras2["node_tb_stamp"] == extras["node_tb_stamp"]
