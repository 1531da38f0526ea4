"""tgp demo: the model step (the real train → export pipeline, reused on a second run), scoring, report.

The live run itself (two processes over DDS, 100 grasps) is ``make demo``; the node and the
simulated robot have their own live tests.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from helpers.shards import write_stream_shards
from tactile_grasp_predictor.bundle import read_manifest
from tactile_grasp_predictor.data.calandra import CalandraShard
from tactile_grasp_predictor.errors import ConfigError
from tactile_grasp_predictor.predictor import Predictor
from training.bag_record import synthetic_recordings
from training.config import check_queue, load_config
from training.demo import (
    Grasp,
    demo_trigger,
    describe_model,
    fit_queue,
    link_latest,
    prepare_bundle,
    run_key,
    simulate,
    summarize,
    write_report,
)

TINY = ["epochs=1", "num_threads=1"]


@pytest.fixture(scope="module")
def sim_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """60 trials of the real simulator, key frames only, small frames (the tiny config resizes to 40 x 48)."""
    torch.set_num_threads(1)
    return simulate(tmp_path_factory.mktemp("sim") / "train", 60, 3, False, (64, 48), progress=False)


def grasp(i: int, label: bool, verdict: str, reason: str = "model", p: float = 0.5) -> Grasp:
    return Grasp(i, f"s.h5:i{i}", label, verdict, p if reason == "model" else math.nan, reason, i + 1,
                 10.0 + i, 20.0 + i)


def test_fit_queue_follows_the_queue_rules() -> None:
    cfg = load_config("cpu")  # batch 64, K 1024
    assert fit_queue(cfg, 5000).moco_k == 1024  # large sets keep the config's queue
    small = fit_queue(cfg, 800)
    assert small.moco_k == 704 and small.moco_k % 64 == 0 and small.moco_k <= 800 - 64
    check_queue(small.moco_k, small.batch_size, 800)  # accepted by the training's own check
    assert fit_queue(cfg, 128).moco_k == 64
    with pytest.raises(ConfigError, match="too few"):
        fit_queue(cfg, 100)


def test_run_key_ignores_checkpoint_cadence_but_not_threads_or_training_fields() -> None:
    info = {"kind": "paper", "fingerprint": {"train": "abc", "test": "def"}}
    cfg = load_config("cpu")
    key = run_key(cfg, info)
    assert run_key(load_config("cpu", ["checkpoint_every=5", "knn_every=1"]), info) == key
    assert run_key(load_config("cpu", ["num_threads=1"]), info) != key  # 1 and 2 threads: other weights
    assert run_key(load_config("cpu", ["epochs=3"]), info) != key
    assert run_key(cfg, {**info, "fingerprint": {"train": "xyz", "test": "def"}}) != key


def test_prepare_bundle_trains_moco_exports_then_reuses(sim_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "demo"
    bundle, reused = prepare_bundle(sim_dir, out, "tiny", TINY, "mlp", "precision>=0.8", False, False, False)
    assert not reused and bundle.parent.parent == out / "runs"
    man = read_manifest(bundle)
    assert man["training_method"] == "moco" and man["probe"]["kind"] == "mlp"
    assert man["config"]["epochs"] == 1 and man["config"]["name"] == "tiny"
    assert man["config"]["moco_k"] == 16, "queue fitted to 40 training trials, batch 16"
    assert man["data_fingerprint"]["n_train"] == 40 and man["data_fingerprint"]["n_test"] == 20
    assert "precision >= 0.8" in man["metrics"]["threshold_rule"]
    assert json.loads((bundle.parent / "history.json").read_text())[-1]["epoch"] == 1
    p = Predictor.from_bundle(bundle).predict(*_frames(sim_dir))
    assert 0.0 <= p <= 1.0

    # the same command again: nothing trained, the same bundle
    again, reused = prepare_bundle(sim_dir, out, "tiny", TINY, "mlp", "precision>=0.8", False, False, False)
    assert reused and again == bundle and read_manifest(again)["created"] == man["created"]
    # another threshold rule: same run (resumed, finished), another bundle
    bal, reused = prepare_bundle(sim_dir, out, "tiny", TINY, "mlp", "balanced_accuracy", False, False, False)
    assert not reused and bal.parent == bundle.parent and bal != bundle
    assert read_manifest(bal)["model_id"] != "" and read_manifest(bal)["config"] == man["config"]
    # another config: a new run directory, trained from scratch
    two, reused = prepare_bundle(sim_dir, out, "tiny", ["epochs=2", "num_threads=1"], "mlp", "precision>=0.8",
                                 False, False, False)
    assert not reused and two.parent != bundle.parent
    assert [h["epoch"] for h in json.loads((two.parent / "history.json").read_text())] == [1, 2]
    with pytest.raises(ConfigError, match="threshold rule"):
        prepare_bundle(sim_dir, out, "tiny", TINY, "mlp", "precision>=2", False, False, False)
    # demo_out/bundle follows the latest bundle (a link); a real directory there is not touched
    link_latest(out / "bundle", bundle)
    link_latest(out / "bundle", two)
    assert (out / "bundle").resolve() == two.resolve()
    assert read_manifest(out / "bundle")["config"]["epochs"] == 2
    (tmp_path / "mine").mkdir()
    link_latest(tmp_path / "mine", two)
    assert not (tmp_path / "mine").is_symlink()


def test_prepare_bundle_fits_the_probe_on_the_frames_the_trigger_picks(sim_dir: Path, tmp_path: Path) -> None:
    # grasp streams in the simulator's layout: the probe, calibrator and threshold see the harvested Ta/Tb
    recs = synthetic_recordings(40, seed=6, size_hw=(48, 64), fps=30.0, no_part=0.1)
    write_stream_shards(tmp_path / "probe", recs)
    out = tmp_path / "demo"
    args = (sim_dir, out, "tiny", TINY, "mlp", "balanced_accuracy", False, False, False)
    bundle, reused = prepare_bundle(*args, probe_dir=tmp_path / "probe", rate=2.0)
    assert not reused and bundle.name == "bundle-mlp-balanced_accuracy-harvest1"  # one shard, no manifest
    harvested = sorted((out / "harvest_probe").glob("harvest_*.h5"))
    n = sum(len(list(CalandraShard(f).trial_indices())) for f in harvested)
    assert 30 <= n < 40  # the grasps that closed on nothing give no trial
    man = read_manifest(bundle)
    assert man["metrics"]["validation"]["n"] + man["metrics"]["n_fit"] == n
    assert man["trigger"]["settings"] == demo_trigger(2.0)  # what the live node runs with
    again, reused = prepare_bundle(*args, probe_dir=tmp_path / "probe", rate=2.0)
    assert reused and again == bundle


def _frames(sim_dir: Path) -> tuple[object, object]:
    from tactile_grasp_predictor.data.calandra import CalandraShard, index_shards

    ref = index_shards(sim_dir).refs[0]
    with CalandraShard(ref.path) as shard:
        t = shard.read(ref.index, keys=("gelsightA_before", "gelsightA_during"))
    return t.images["gelsightA_before"], t.images["gelsightA_during"]


def test_describe_model_names_method_epochs_probe_trials_and_threshold() -> None:
    conf = {"arch": "resnet18", "epochs": 10, "name": "cpu", "moco_k": 704}
    man = {"training_method": "moco", "config": conf,
           "probe": {"kind": "mlp"}, "threshold": 0.62,
           "data_fingerprint": {"n_train": 800, "n_test": 400},
           "metrics": {"epochs": 10, "probe_params": "alpha=10",
                       "threshold_rule": "lowest threshold with LIFT precision >= 0.85",
                       "validation": {"n": 160, "lift_precision": 0.87, "lift_recall": 0.6},
                       "test": {"accuracy": 0.8, "lift_precision": 0.86, "auc": 0.88}}}
    text = describe_model(man)
    for part in ("moco (resnet18, 10 epochs, config cpu, K=704)", "mlp probe (alpha=10) on frozen features",
                 "800 training / 400 test",
                 "threshold 0.62 (lowest threshold with LIFT precision >= 0.85)", "LIFT precision 87.0%",
                 "accuracy 80.0%"):
        assert part in text, (part, text)
    assert "threshold 0.50 (rule not recorded)" in describe_model({"threshold": 0.5})  # a foreign bundle


def test_summary_counts_accuracy_precision_and_baselines() -> None:
    grasps = [grasp(0, True, "LIFT", p=0.9), grasp(1, False, "LIFT", p=0.7), grasp(2, False, "ABORT", p=0.1),
              grasp(3, True, "ABORT", p=0.3), grasp(4, False, "ABORT", "no_part_found")]
    s = summarize(grasps, threshold=0.5)
    assert s["grasps"] == 5 and s["decided_by_model"] == 4
    assert s["accuracy"] == pytest.approx(3 / 5)
    assert s["lift_precision"] == pytest.approx(1 / 2) and s["lift_recall"] == pytest.approx(1 / 2)
    assert s["baseline_always_lift_accuracy"] == pytest.approx(2 / 5)
    # gripper-only: lift the 4 grasps that closed on something → right on 0, 3 and 4
    assert s["baseline_gripper_only_accuracy"] == pytest.approx(3 / 5)
    assert s["reasons"] == {"model": 4, "no_part_found": 1}
    assert s["node_latency_ms_p50"] == pytest.approx(11.5)  # model-decided grasps only: 10, 11, 12, 13


def test_report_files(tmp_path: Path) -> None:
    grasps = [grasp(i, i % 3 != 0, "LIFT" if i % 2 else "ABORT", p=(i % 10) / 10) for i in range(30)]
    s = summarize(grasps, threshold=0.5)
    report = write_report(tmp_path, grasps, s, {"model_id": "m", "training_method": "moco", "threshold": 0.5,
                                                "probe": {"kind": "mlp"}, "config": {"epochs": 3}})
    text = report.read_text()
    assert "accuracy" in text and "LIFT precision" in text and "report.png" in text
    assert "moco (?, 3 epochs" in text and "mlp probe" in text
    assert (tmp_path / "report.png").stat().st_size > 10_000
    assert len((tmp_path / "grasps.csv").read_text().splitlines()) == 31
    assert json.loads((tmp_path / "summary.json").read_text())["summary"]["grasps"] == 30


def test_undefined_figures_are_nan_in_the_summary_and_null_in_its_json(tmp_path: Path) -> None:
    grasps = [grasp(0, True, "ABORT", p=0.2), grasp(1, False, "ABORT", p=0.1)]  # no LIFT at all
    s = summarize(grasps, threshold=0.5)
    assert math.isnan(s["lift_precision"]) and s["lift_recall"] == 0.0 and s["lifts"] == 0
    write_report(tmp_path, grasps, s, {"model_id": "m", "threshold": 0.5})
    doc = json.loads((tmp_path / "summary.json").read_text())
    assert doc["summary"]["lift_precision"] is None and doc["summary"]["accuracy"] == 0.5
    # a bundle whose validation part had no lift at its threshold records null there
    man = {"threshold": 0.9, "metrics": {"validation": {"n": 4, "lift_precision": None, "lift_recall": 0.0}}}
    assert "validation (4 trials): LIFT precision –, recall 0.0%" in describe_model(man)
