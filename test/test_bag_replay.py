"""Record → evaluate round trips on real rosbag2 files (mcap and sqlite3), faults, labels, report, CLI."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from helpers.bundles import make_random_bundle
from tactile_grasp_predictor.decision import Verdict
from tactile_grasp_predictor.errors import BagError
from tactile_grasp_predictor.metrics import VerdictMetrics, roc_curve
from tactile_grasp_predictor.predictor import Predictor
from tactile_grasp_predictor.replay.bag_source import BagSource, FrameItem, TopicSelection
from tactile_grasp_predictor.replay.evaluate import LabelTable, evaluate_bag, evaluate_bags
from tactile_grasp_predictor.replay.report import compute_metrics, write_report
from tactile_grasp_predictor.session import SessionConfig
from training.bag_record import RecordOptions, synthetic_recordings, write_bag

torch.set_num_threads(1)
N = 8
SEED = 1  # this seed gives both no-part grasps and successful/failed ones (asserted below)


@pytest.fixture(scope="module")
def recs():
    r = synthetic_recordings(N, seed=SEED, no_part=0.25)
    empties = [float(x.gripper_w.min()) == 0.0 for x in r]
    assert any(empties) and not all(empties), "test data needs grasps with and without a part"
    assert any(x.label for x in r) and not all(x.label for x in r)
    return r


@pytest.fixture(scope="module")
def predictor(tmp_path_factory):
    path = make_random_bundle(tmp_path_factory.mktemp("bundle") / "b", size=32, probe="mlp")
    return Predictor.from_bundle(path)


@pytest.fixture(scope="module")
def bags(recs, tmp_path_factory):
    root = tmp_path_factory.mktemp("bags")
    out = {}
    for name, opts in {
        "mcap": RecordOptions(storage="mcap"),
        "sqlite3": RecordOptions(storage="sqlite3"),
        "bgr8": RecordOptions(storage="mcap", encoding="bgr8"),
        "fork": RecordOptions(storage="mcap", moving=True, status="fork"),
        "compressed": RecordOptions(storage="sqlite3", encoding="compressed"),
    }.items():
        write_bag(root / name, recs, opts, progress=False)
        out[name] = root / name
    return out


def decisions(result):
    return [
        (
            g.grasp_id,
            g.decision.verdict,
            g.decision.reason,
            g.decision.ta_stamp,
            g.decision.tb_stamp,
            None if math.isnan(g.decision.p_success) else round(g.decision.p_success, 6),
        )
        for g in result.grasps
    ]


def test_round_trip_one_decision_per_grasp_with_labels_and_stamps(bags, recs, predictor) -> None:
    res = evaluate_bag(bags["mcap"], predictor)
    assert res.error is None and [g.grasp_id for g in res.grasps] == list(range(1, N + 1))
    rows = list(LabelTable.read(bags["mcap"].with_name("mcap.labels.csv")).rows)
    for g, rec, row in zip(res.grasps, recs, rows, strict=True):
        assert g.label is rec.label and g.label_source == "topic"
        t_close = float(row["t_close"])
        if float(rec.gripper_w.min()) == 0.0:
            assert g.decision.verdict == Verdict.ABORT and g.decision.reason == "no_part_found"
            assert math.isnan(g.decision.p_success) and g.baseline == Verdict.ABORT
        else:
            assert g.decision.reason == "model" and 0.0 <= g.decision.p_success <= 1.0
            assert g.baseline == Verdict.LIFT
            assert g.decision.ta_stamp < t_close < g.decision.tb_stamp, "Ta before closing, Tb after"
            assert g.decision.tb_stamp - t_close > 0.25, "Tb after the settle window"
    assert res.frames_decoded <= 3 * N < res.frames, "only Ta, Tb and the frame before Ta are decoded"


def test_mcap_and_sqlite3_and_encodings_agree(bags, predictor) -> None:
    ref = decisions(evaluate_bag(bags["mcap"], predictor))
    assert decisions(evaluate_bag(bags["sqlite3"], predictor)) == ref
    assert decisions(evaluate_bag(bags["bgr8"], predictor)) == ref
    comp = decisions(evaluate_bag(bags["compressed"], predictor))  # JPEG: lossy pixels, same trigger
    assert [(c[0], *c[2:5]) for c in comp] == [(r[0], *r[2:5]) for r in ref]
    for c, r in zip(comp, ref, strict=True):
        assert (c[5] is None) == (r[5] is None)
        if c[5] is not None:
            assert abs(c[5] - r[5]) < 0.05


def test_deterministic_and_lazy_equals_eager(bags, predictor) -> None:
    a = evaluate_bag(bags["mcap"], predictor)
    b = evaluate_bag(bags["mcap"], predictor)
    eager = evaluate_bag(bags["mcap"], predictor, lazy=False)
    assert decisions(a) == decisions(b) == decisions(eager)
    assert eager.frames_decoded == eager.frames > a.frames_decoded


def test_moving_flag_and_holding_state_sharpen_the_trigger(bags, predictor) -> None:
    ref = evaluate_bag(bags["mcap"], predictor).grasps
    fork = evaluate_bag(bags["fork"], predictor).grasps
    assert [(g.grasp_id, g.decision.reason, g.decision.ta_stamp) for g in fork] == [
        (g.grasp_id, g.decision.reason, g.decision.ta_stamp) for g in ref
    ]
    model = [(f, r) for f, r in zip(fork, ref, strict=True) if r.decision.reason == "model"]
    assert model and all(f.decision.tb_stamp <= r.decision.tb_stamp for f, r in model)
    assert any(f.decision.tb_stamp < r.decision.tb_stamp for f, r in model), "HOLDING settles earlier"


def test_status_type_decoded_from_the_definition_embedded_in_the_bag(bags) -> None:
    with BagSource(bags["fork"]) as src:
        assert src.topics.status == "/wsg50/status" and src.topics.status_variant == "fork"
        assert src.topics.moving == "/wsg50/moving"
        states = {i.grasp_state for i in src.items() if getattr(i, "kind", "") == "status"}
    assert {1, 4} <= states  # GRASPING and HOLDING came through


def test_report_has_every_part(bags, predictor, tmp_path) -> None:
    results = evaluate_bags([bags["mcap"], bags["sqlite3"]], predictor, progress=False)
    m = write_report(results, tmp_path)
    for f in ("report.md", "report.json", "roc.png", "reliability.png", "latency.png", "confusion.png"):
        assert (tmp_path / f).stat().st_size > 100, f
    doc = json.loads((tmp_path / "report.json").read_text())
    assert len(doc["per_grasp"]) == 2 * N and doc["metrics"]["labelled"] == 2 * N
    assert set(doc["per_grasp"][0]) >= {
        "grasp_id",
        "ta_stamp",
        "tb_stamp",
        "p_success",
        "verdict",
        "label",
        "reason",
    }
    md = (tmp_path / "report.md").read_text()
    for part in (
        "accuracy",
        "LIFT precision",
        "LIFT recall",
        "ROC AUC",
        "ECE",
        "gripper-only baseline",
        "Decision latency",
        "Per grasp",
    ):
        assert part in md, part
    assert m["model"]["n"] == 2 * N and sum(map(sum, m["model"]["confusion"]["matrix"])) == 2 * N
    assert m["gripper_baseline"]["lift_recall"] == 1.0  # the baseline lifts every grasp with a part


def test_metrics_match_definitions() -> None:
    rng = np.random.default_rng(0)
    y = rng.random(200) < 0.4
    s = np.clip(y * 0.3 + rng.random(200) * 0.7, 0, 1)
    s[:20] = 0.5  # ties
    _, _, auc = roc_curve(s, y)
    pos, neg = s[y], s[~y]
    mw = (np.sum(pos[:, None] > neg[None, :]) + 0.5 * np.sum(pos[:, None] == neg[None, :])) / (
        len(pos) * len(neg)
    )
    assert auc == pytest.approx(mw, abs=1e-9)
    vm = VerdictMetrics.of([True, True, False, False, True], [True, False, False, True, True])
    assert (vm.tp, vm.fp, vm.tn, vm.fn) == (2, 1, 1, 1)
    assert (vm.accuracy, vm.precision, vm.recall) == (0.6, 2 / 3, 2 / 3)
    assert math.isnan(roc_curve([0.1, 0.2], [True, True])[2])


def test_unlabelled_bag_still_yields_decisions(recs, predictor, tmp_path) -> None:
    write_bag(tmp_path / "b", recs[:3], RecordOptions(outcome=False), progress=False)
    (tmp_path / "b.labels.csv").unlink()
    res = evaluate_bag(tmp_path / "b", predictor)
    assert len(res.grasps) == 3 and all(g.label is None for g in res.grasps)
    m = compute_metrics(res.grasps)
    assert m["labelled"] == 0 and m["model"]["accuracy"] is None


def test_labels_from_csv_override_and_bad_csv_is_refused(bags, predictor, tmp_path) -> None:
    csv = tmp_path / "l.csv"
    csv.write_text("grasp,label\n" + "".join(f"{k},{k % 2}\n" for k in range(1, N + 1)))
    res = evaluate_bag(bags["mcap"], predictor, labels=LabelTable.read(csv))
    assert [g.label for g in res.grasps] == [bool(k % 2) for k in range(1, N + 1)]
    assert {g.label_source for g in res.grasps} == {"csv"}
    bad = tmp_path / "bad.csv"
    bad.write_text("grasp,label\n1,maybe\n")
    with pytest.raises(BagError, match=r"bad.csv:2: label 'maybe'"):
        LabelTable.read(bad)


# ---------------------------------------------------------------------------- faults
def test_faults_dropped_frames_jitter_empty_stamps_bad_encodings(recs, predictor, tmp_path) -> None:
    opts = RecordOptions(
        drop_frames=0.3,
        jitter_s=0.003,
        empty_stamps=True,
        bad_encoding=0.2,
        seed=1,
        extra_topics={"/camera/unrelated": 5.0},
    )
    write_bag(tmp_path / "f", recs, opts, progress=False)
    res = evaluate_bag(tmp_path / "f", predictor)
    assert [g.grasp_id for g in res.grasps] == list(range(1, N + 1)), "one decision per grasp despite faults"
    assert res.skipped["/gelsight_left/image_raw"] > 0
    text = "\n".join(res.warnings)
    assert "ignoring topic /camera/unrelated" in text
    assert "f:/gelsight_left/image_raw#" in text and "'yuv422' is not supported" in text
    with BagSource(tmp_path / "f") as src:
        frames = [i for i in src.items() if isinstance(i, FrameItem)]
    assert frames and all(f.stamp is None for f in frames)
    assert res.time_base == "header" and res.stamp_fallbacks == len(frames)  # each frame fell back
    assert f"{len(frames)} message(s) with empty header stamps timed by their receive time" in text
    for g in res.grasps:  # empty stamps: the report carries the receive time instead
        if g.decision.reason == "model":
            assert g.decision.ta_stamp > 1.7e9 and g.decision.tb_stamp > g.decision.ta_stamp
    assert all(
        g.decision.reason in {"model", "no_part_found", "no_pre_contact_frame", "stale_frame", "tb_timeout"}
        for g in res.grasps
    )


def test_header_time_base_makes_decisions_independent_of_receive_jitter(recs, predictor, tmp_path) -> None:
    """The same grasps recorded with 0 and 4 ms receive jitter: identical decisions by header stamps."""
    write_bag(tmp_path / "calm", recs, RecordOptions(seed=3), progress=False)
    write_bag(tmp_path / "jit", recs, RecordOptions(seed=3, jitter_s=0.004, latency_s=0.02), progress=False)
    calm = evaluate_bag(tmp_path / "calm", predictor)
    jit = evaluate_bag(tmp_path / "jit", predictor)
    assert calm.stamp_fallbacks == jit.stamp_fallbacks == 0 and not jit.clock_problem
    assert decisions(jit) == decisions(calm)
    assert {g.decision.reason for g in calm.grasps} >= {"model", "no_part_found"}
    # receive times: the Ta/Tb choice follows the jittered log times (what `--time-base receive` gives)
    by_receive = evaluate_bag(tmp_path / "jit", predictor, session=SessionConfig(time_base="receive"))
    assert by_receive.time_base == "receive" and by_receive.stamp_fallbacks == 0
    assert [g.decision.reason for g in by_receive.grasps] == [g.decision.reason for g in calm.grasps]


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_truncated_bag_is_evaluated_up_to_the_cut_or_refused_clearly(
    recs, predictor, tmp_path, storage
) -> None:
    write_bag(tmp_path / "cut", recs, RecordOptions(storage=storage), progress=False)
    data = next(p for p in (tmp_path / "cut").iterdir() if p.suffix in (".mcap", ".db3"))
    with data.open("r+b") as f:  # a recording interrupted at 3/4 (mcap: no summary, no end magic)
        f.truncate(data.stat().st_size * 3 // 4)
    if storage == "mcap":  # the complete chunks before the cut are evaluated
        res = evaluate_bag(tmp_path / "cut", predictor)
        assert 0 < len(res.grasps) < N
        assert any("cut.mcap has no valid end" in w for w in res.warnings), res.warnings
        full = evaluate_bag(bags_dir(recs, tmp_path), predictor)
        assert decisions(res)[:-1] == decisions(full)[: len(res.grasps) - 1], "same decisions before the cut"
    else:  # sqlite3 cannot be read past a damaged page: refused, naming the bag
        with pytest.raises(BagError, match=r"cut: cannot open bag: .*malformed"):
            evaluate_bag(tmp_path / "cut", predictor)
    data.write_bytes(b"")
    with pytest.raises(BagError, match="cut: cannot open bag"):
        evaluate_bag(tmp_path / "cut", predictor)
    assert "cut: cannot open bag" in (
        evaluate_bags([tmp_path / "cut"], predictor, progress=False)[0].error or ""
    )


def bags_dir(recs, tmp_path: Path) -> Path:
    write_bag(tmp_path / "whole", recs, RecordOptions(), progress=False)
    return tmp_path / "whole"


def test_unreadable_inputs_are_refused_naming_the_bag(recs, tmp_path) -> None:
    with pytest.raises(BagError, match="no such bag"):
        evaluate_bag(tmp_path / "missing", None)
    (tmp_path / "notabag").mkdir()
    with pytest.raises(BagError, match="notabag: not a rosbag2 directory"):
        evaluate_bag(tmp_path / "notabag", None)
    write_bag(tmp_path / "b", recs[:2], RecordOptions(), progress=False)
    with pytest.raises(BagError, match=r"b: image topic '/nope' is not in the bag"):
        evaluate_bag(tmp_path / "b", None, topics=TopicSelection(image="/nope"))
    with pytest.raises(BagError, match="has type std_msgs/msg/Bool"):
        evaluate_bag(tmp_path / "b", None, topics=TopicSelection(image="/grasp/outcome"))
    res = evaluate_bag(tmp_path / "b", None)  # no model: never LIFT
    assert {g.decision.verdict for g in res.grasps} == {Verdict.ABORT}
    assert {g.decision.reason for g in res.grasps} <= {"model_unavailable", "no_part_found"}


def test_cli_record_then_eval(tmp_path, capsys) -> None:
    from training.cli import main

    assert (
        main(
            [
                "bag",
                "record",
                "--synthetic",
                "3",
                "--out",
                str(tmp_path / "c"),
                "--storage",
                "both",
                "--seed",
                str(SEED),
            ]
        )
        == 0
    )
    assert (tmp_path / "c_mcap" / "metadata.yaml").exists() and (tmp_path / "c_sqlite3.labels.csv").exists()
    assert (
        main(
            [
                "bag",
                "eval",
                str(tmp_path / "c_mcap"),
                str(tmp_path / "c_sqlite3"),
                str(tmp_path / "nope"),
                "--out",
                str(tmp_path / "rep"),
            ]
        )
        == 0
    )
    out = capsys.readouterr()
    assert "REFUSED nope" in out.err and '"grasps": 6' in out.out
    assert (tmp_path / "rep" / "report.md").exists()
    report = json.loads((tmp_path / "rep" / "report.json").read_text())
    assert report["bags"][0]["time_base"] == "header"
    rr = tmp_path / "rr"
    assert main(["bag", "eval", str(tmp_path / "c_mcap"), "--time-base", "receive", "--out", str(rr)]) == 0
    assert "| receive (0) |" in (tmp_path / "rr" / "report.md").read_text()
    capsys.readouterr()
    assert main(["bag", "record", "--synthetic", "1", "--out", str(tmp_path / "c_mcap")]) == 2  # exists
    assert "exists already" in capsys.readouterr().err


def _shard_trials(recs, streams: bool = True) -> list[dict]:
    out = []
    for r in recs:
        img = r.frames_left[0]
        t = {"object_name": b"cup", "is_gripping": int(bool(r.label))}
        t.update({f"gelsight{f}_{p}": img for f in "AB" for p in ("before", "during", "after")})
        t.update({"sim_t_lift": r.t_lift, "sim_gripper_time": r.gripper_t, "sim_gripper_width": r.gripper_w})
        if streams:
            t.update({"sim_gelsightA_stream": r.frames_left, "sim_gelsightA_stream_time": r.frame_t})
        out.append(t)
    return out


def test_simulated_shards_become_bags(recs, tmp_path) -> None:
    from tactile_grasp_predictor.data.trial_streams import load_trial_streams
    from tactile_grasp_predictor.errors import DatasetError
    from training.data.shard_writer import write_shard

    (tmp_path / "sims").mkdir()
    (tmp_path / "plain").mkdir()
    write_shard(tmp_path / "sims" / "s0.h5", _shard_trials(recs[:3]), compression_level=1)
    got = list(load_trial_streams([tmp_path / "sims"], require_streams=True))
    assert [g.label for g in got] == [bool(r.label) for r in recs[:3]]
    assert np.array_equal(got[1].frames_left, recs[1].frames_left) and got[1].t_lift == recs[1].t_lift
    write_bag(tmp_path / "b", got, RecordOptions(), progress=False)
    res = evaluate_bag(tmp_path / "b", None, labels=LabelTable.read(tmp_path / "b.labels.csv"))
    assert [g.label for g in res.grasps] == [bool(r.label) for r in recs[:3]]
    assert {g.label_source for g in res.grasps} == {"csv"}  # time windows of the sidecar
    write_shard(tmp_path / "plain" / "s0.h5", _shard_trials(recs[:1], streams=False), compression_level=1)
    with pytest.raises(DatasetError, match="--streams"):
        list(load_trial_streams([tmp_path / "plain"], require_streams=True))
    assert not (tmp_path / "x").exists()
    with pytest.raises(DatasetError):
        write_bag(
            tmp_path / "x", load_trial_streams([tmp_path / "plain"], require_streams=True), RecordOptions(),
            progress=False,
        )
    assert not (tmp_path / "x").exists(), "a failed recording leaves no half bag behind"


def test_eval_uses_the_node_parameter_file(bags, tmp_path, capsys) -> None:
    from tactile_grasp_predictor.node_config import config_from_file, read_param_file
    from training.cli import main

    cfg = tmp_path / "robot.yaml"
    cfg.write_text(
        "/predictor_node:\n  ros__parameters:\n    image_topic: /gelsight_left/image_raw\n"
        "    joint_states_topic: /wsg50/joint_states\n    threshold: 0.0\n"
        "    trigger:\n      settle_window_s: 0.4\n      max_stamp_lag_s: -1.0\n"
    )
    params = read_param_file(cfg)
    assert params["trigger.settle_window_s"] == 0.4 and params["image_topic"] == "/gelsight_left/image_raw"
    trig = config_from_file(cfg).trigger
    assert trig.settle_window_s == 0.4 and trig.max_stamp_lag_s is None
    assert main(["bag", "eval", str(bags["mcap"]), "--params", str(cfg), "--out", str(tmp_path / "r")]) == 0
    doc = json.loads((tmp_path / "r" / "report.json").read_text())
    assert {g["threshold"] for g in doc["per_grasp"]} == {0.0}
    assert doc["bags"][0]["topics"]["joint_states"] == "/wsg50/joint_states"
    cfg.write_text("/predictor_node:\n  ros__parameters:\n    image_topic: /gelsight/image_raw\n")
    assert main(["bag", "eval", str(bags["mcap"]), "--params", str(cfg), "--out", str(tmp_path / "r2")]) == 2
    assert "image topic '/gelsight/image_raw' is not in the bag" in capsys.readouterr().err
    cfg.write_text("/predictor_node:\n  ros__parameters:\n    image_topc: /gelsight_left/image_raw\n")
    assert main(["bag", "eval", str(bags["mcap"]), "--params", str(cfg), "--out", str(tmp_path / "r3")]) == 2
    assert "image_topc: not a parameter" in capsys.readouterr().err  # a typo is refused by name


@pytest.mark.parametrize("variant", ["ros1", "ros2_port", "fork"])
def test_status_only_bags_of_each_wsg_variant(recs, tmp_path, variant) -> None:
    write_bag(tmp_path / variant, recs, RecordOptions(status=variant, joints=False), progress=False)
    res = evaluate_bag(tmp_path / variant, None)
    assert res.topics.joint_states is None and res.topics.status_variant == variant
    assert [g.grasp_id for g in res.grasps] == list(range(1, N + 1)), (
        "every grasp found from the status alone"
    )
    for g, rec in zip(res.grasps, recs, strict=True):
        empty = float(rec.gripper_w.min()) == 0.0
        assert (g.decision.reason == "no_part_found") == empty, (g.grasp_id, g.decision.reason)
        assert (g.baseline == Verdict.LIFT) == (not empty)
    with pytest.raises(BagError, match="needs a status topic"):
        RecordOptions(joints=False).validate()


def test_fast_joint_state_parser_matches_the_deserializer() -> None:
    from rclpy.serialization import serialize_message
    from sensor_msgs.msg import JointState

    from tactile_grasp_predictor.replay.bag_source import parse_joint_state

    for names, pos in (
        (["a", "bcd"], [0.1, -0.25]),
        (["x" * 5], [3.5]),
        ([], []),
        (["l", "r", "w"], [1e-3, 2.0, -7.0]),
    ):
        for frame_id in ("", "f", "frame12"):
            msg = JointState(name=names, position=pos, velocity=[0.0] * len(pos))
            msg.header.frame_id = frame_id
            msg.header.stamp.sec = 17
            assert parse_joint_state(serialize_message(msg)) == (names, pos)
    with pytest.raises(ValueError):
        parse_joint_state(serialize_message(JointState(name=["a"], position=[1.0]))[:40])  # cut in position


def test_compare_decisions_names_every_difference(bags, predictor) -> None:
    from tactile_grasp_predictor.replay.compare import LiveDecision, compare_decisions, write_comparison

    off = evaluate_bag(bags["mcap"], predictor)
    rows = [
        LiveDecision(g.grasp_id, int(g.decision.verdict), g.decision.reason, g.decision.ta_stamp,
                     g.decision.tb_stamp, g.decision.p_success)
        for g in off.grasps
    ]
    same = compare_decisions(off, rows)
    assert same.all_identical and same.identical == N
    model = next(i for i, g in enumerate(off.grasps) if g.decision.reason == "model")
    r = rows[model]
    tb = (r.tb_stamp or 0.0) + 1 / 15  # one frame later
    later_tb = LiveDecision(r.grasp_id, r.verdict, r.reason, r.ta_stamp, tb, r.p_success)
    extra = LiveDecision(N + 1, 0, "tb_timeout", None, None, math.nan)
    cmp = compare_decisions(off, [*rows[:model], later_tb, *rows[model + 1 : -1], extra])
    assert not cmp.all_identical and cmp.identical == N - 2 and cmp.extra_live == [N + 1]
    assert any(m.startswith(f"grasp {r.grasp_id}: live") for m in cmp.mismatches)
    assert f"grasp {N}: no live decision" in cmp.mismatches
    md = write_comparison(cmp, bags["mcap"].parent / "cmp").read_text()
    assert f"{N - 2}/{N} grasps identical" in md and "## Differences" in md
    assert json.loads((bags["mcap"].parent / "cmp" / "compare.json").read_text())["all_identical"] is False
