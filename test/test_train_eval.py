"""Probes, threshold, export and Table I, end to end through real HDF5 shards and a real bundle."""

from __future__ import annotations

import csv
import json
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from helpers.shards import write_synthetic_shards
from tactile_grasp_predictor.bundle import load_bundle
from tactile_grasp_predictor.errors import ConfigError
from tactile_grasp_predictor.metrics import binary_metrics
from tactile_grasp_predictor.predictor import Predictor
from tactile_grasp_predictor.sensor_health import SensorReference
from training.cli import main as tgp
from training.config import load_config
from training.data.sets import synthetic_set
from training.export import (
    MIN_LIFTS,
    choose_threshold,
    describe_threshold_rule,
    parse_threshold_rule,
    split_fit_val,
)
from training.probe_fit import chosen_params, fit_probe, knn_k, label_subset, probe_suite, runtime_proba
from training.table1 import PAPER, Row, label_draw_seed, paired_gain, run_table, write_report

pytestmark = pytest.mark.usefixtures("one_thread")  # torch on one thread (conftest.py)


def test_probe_suite_runtime_matches_sklearn_and_learns() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 300)
    x = rng.normal(size=(300, 8)).astype(np.float32)
    x[:, 0] += 2.0 * y  # one informative dimension
    cfg = load_config("tiny")
    rows = probe_suite(x[:200], y[:200], x[200:], y[200:], cfg, fractions=(0.1, 1.0))
    expected = {(p, f) for p in ("knn", "svm", "mlp") for f in (0.1, 1.0)}
    assert {(r.probe, r.fraction) for r in rows} == expected
    majority = max(y[200:].mean(), 1 - y[200:].mean())
    for r in rows:
        assert r.max_abs_diff_runtime < 1e-4, r  # the tensor probe is the sklearn model
        if r.fraction == 1.0:
            assert r.accuracy > majority + 0.1, r
    assert [r.n_labels for r in rows if r.probe == "knn"] == [20, 200]


def test_mlp_alpha_is_chosen_by_cross_validation_on_the_labels_only() -> None:
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 240)
    x = rng.normal(size=(240, 8)).astype(np.float32)
    x[:, 0] += 2.0 * y
    base = load_config("tiny")
    # alpha = 1e4 crushes the weights to a constant answer; CV must pick the usable value in any order
    for grid in ((1e4, 1e-3), (1e-3, 1e4)):
        model, probe = fit_probe("mlp", x[:160], y[:160], replace(base, mlp_alpha=grid))
        assert chosen_params(model) == "alpha=0.001", grid
        assert np.abs(runtime_proba(probe, x[160:]) - model.predict_proba(x[160:])[:, 1]).max() < 1e-4
    # one value is used as given, without CV
    model, _ = fit_probe("mlp", x[:160], y[:160], replace(base, mlp_alpha=(1e4,)))
    assert chosen_params(model) == "alpha=10000"
    assert model.predict(x[160:]).std() == 0  # the crushed probe: constant, as the CV judged
    with pytest.raises(ConfigError, match="mlp_alpha"):
        replace(base, mlp_alpha=()).validate()


def test_label_subset_threshold_and_metrics_by_hand() -> None:
    y = np.array([0] * 90 + [1] * 10)
    sub = label_subset(y, 0.1, seed=0)
    assert (y[sub] == 0).sum() == 9 and (y[sub] == 1).sum() == 2  # stratified, >= 2 per class
    assert knn_k(6000) == 77 and knn_k(3) == 2 and knn_k(10, cfg_k=50) == 10
    p = np.array([0.1, 0.2, 0.35, 0.4, 0.8, 0.9])
    yy = np.array([0, 0, 1, 1, 1, 1])
    t = choose_threshold(p, yy)
    assert 0.2 < t <= 0.35  # separates perfectly; the grid point nearest 0.5 in the gap
    m = binary_metrics(p, yy, 0.5)
    assert m["accuracy"] == pytest.approx(4 / 6) and m["lift_precision"] == 1.0
    assert m["lift_recall"] == pytest.approx(0.5) and m["auc"] == 1.0
    fit, val = split_fit_val(np.array([0] * 10 + [1] * 10), 0.2, seed=0)
    assert len(val) == 4 and not set(fit) & set(val) and len(fit) + len(val) == 20


def test_precision_threshold_rule_by_hand() -> None:
    # 20 validation trials, p rising by 0.05; successes where a pick gate would want them
    p = np.round(np.arange(0.0, 1.0, 0.05), 2)
    y = np.array([0, 0, 0, 0, 0, 1, 0, 0, 1, 0, 1, 1, 0, 1, 1, 1, 1, 1, 1, 1], dtype=bool)
    bal = choose_threshold(p, y)  # the default rule is unchanged
    assert bal == choose_threshold(p, y, "balanced_accuracy")
    assert bal == 0.5  # 0.46 .. 0.5 tie; nearest 0.5
    # p >= 0.46 lifts indices 10..19: 9 of 10 succeed; one grid step lower adds a failure (9/11)
    assert choose_threshold(p, y, "precision>=0.9") == pytest.approx(0.46)
    # 95 %: only p >= 0.61 (indices 13..19, 7/7); 0.56 .. 0.60 still lifts the failure at 0.60
    t = choose_threshold(p, y, "precision >= 0.95")  # spaces allowed
    assert t == pytest.approx(0.61) and binary_metrics(p, y, t)["lift_precision"] == 1.0
    assert t > bal, "asking for precision lifts less often than balanced accuracy"
    # unreachable target: the highest precision with at least MIN_LIFTS lifts
    noisy = np.array([1, 0] * 10, dtype=bool)
    t_none = choose_threshold(p, noisy, "precision>=0.99")
    assert (p >= t_none).sum() >= MIN_LIFTS
    assert parse_threshold_rule("balanced_accuracy") is None
    assert parse_threshold_rule("precision>=0.85") == 0.85
    assert "0.85" in describe_threshold_rule("precision>=0.85")
    for bad in ("precision>=1.5", "precision>=x", "recall>=0.5", ""):
        with pytest.raises(ConfigError, match="threshold rule"):
            choose_threshold(p, y, bad)


def test_train_probe_export_from_shards_and_predict_new_trials(tmp_path: Path) -> None:
    data = tmp_path / "shards"
    # raw frames larger than the tiny resize (40 x 48)
    write_synthetic_shards(data, 96, (60, 80), seed=5, compression_level=1)
    run = tmp_path / "run"
    common = ["--config", "tiny", "--cache", str(tmp_path / "cache"), "--no-progress"]
    assert tgp(["train", "--data", str(data), "--out", str(run), *common, "--set", "epochs=2"]) == 0
    split = json.loads((run / "history.json").read_text())
    assert len(split) == 2
    assert tgp(["probe", "--run", str(run), "--data", str(data), *common, "--fractions", "1"]) == 0
    probes = list(csv.DictReader((run / "probes.csv").open()))
    assert {r["probe"] for r in probes} == {"knn", "svm", "mlp"}
    bundle = tmp_path / "bundle"
    export = ["export", "--run", str(run), "--data", str(data), "--out", str(bundle), *common]
    assert tgp([*export, "--onnx", "--threshold-rule", "precision>=2"]) == 2  # refused before any work
    assert not bundle.exists()
    assert tgp([*export, "--onnx"]) == 0
    b = load_bundle(bundle)
    man = json.loads((bundle / "manifest.json").read_text())
    assert man["metrics"]["threshold_rule"].startswith("max balanced accuracy")
    reference, why = SensorReference.from_manifest(man)  # what the node's sensor health check reads
    assert reference is not None and reference.n_frames > 8, why
    strict = tmp_path / "bundle_strict"
    assert tgp(["export", "--run", str(run), "--data", str(data), "--out", str(strict), *common,
                "--threshold-rule", "precision>=0.9", "--calibration-data", str(data)]) == 0
    sman = json.loads((strict / "manifest.json").read_text())
    assert sman["calibration"]["n"] == 96 and str(data) in sman["calibration"]["fitted_on"]  # every trial
    assert "precision >= 0.9" in sman["metrics"]["threshold_rule"]
    val = sman["metrics"]["validation"]
    assert val["lift_precision"] >= 0.9 or sman["threshold"] >= man["threshold"]
    assert man["training_method"] == "moco" and man["probe"]["kind"] == "mlp"
    assert man["metrics"]["probe_params"] == "alpha=0.001"  # tiny: one fixed value, no CV
    assert man["data_fingerprint"]["kind"] == "paper"
    assert len(man["data_fingerprint"]["fingerprint"]["train"]) > 8
    assert 0.05 <= man["threshold"] <= 0.95 and "test" in man["metrics"]
    assert b.preprocess.resize_hw == (40, 48) and b.preprocess.std != (1.0, 1.0, 1.0)  # stats from data
    # new trials, raw size, never seen: both backends agree and give probabilities
    fresh = synthetic_set(4, (60, 80), seed=99)
    p_torch = [Predictor.from_bundle(bundle).predict(fresh.before[i], fresh.during[i]) for i in range(4)]
    onnx = Predictor.from_bundle(bundle, backend="onnx")
    p_onnx = [onnx.predict(fresh.before[i], fresh.during[i]) for i in range(4)]
    assert all(0.0 <= p <= 1.0 and math.isfinite(p) for p in p_torch)
    assert np.allclose(p_torch, p_onnx, atol=1e-4)
    # exporting again over an existing bundle is refused without --overwrite
    assert tgp(export) == 2


def test_table1_rows_report_and_plot(tmp_path: Path) -> None:
    cfg = load_config("tiny", ["epochs=1", "label_fractions=[0.1, 1.0]"])
    full = synthetic_set(96, cfg.resize_hw, seed=4)
    train_set, test_set = full.subset(range(64)), full.subset(range(64, 96))
    rows = run_table(cfg, train_set, test_set, tmp_path, ("moco", "supervised", "random_init"), (0,),
                     progress=False)
    got = {(r.method, r.probe, r.fraction) for r in rows}
    assert {("moco", p, f) for p in ("knn", "svm", "mlp") for f in (0.1, 1.0)} <= got
    assert {("supervised", "head", 0.1), ("supervised", "head", 1.0), ("supervised", "mlp", 1.0)} <= got
    assert ("majority", "majority", 1.0) in got and ("random_init", "mlp", 0.1) in got
    sup10 = next(r for r in rows if (r.method, r.probe, r.fraction) == ("supervised", "head", 0.1))
    assert sup10.n_labels == 6  # 10 % of 64 stratified, at least 2 per class
    info = {"kind": "synthetic", "seed": 0, "n_train": 64, "n_test": 32}
    write_report(rows, tmp_path, cfg, info, "tgp t", 1.0)
    md = (tmp_path / "results.md").read_text()
    assert f"{PAPER['moco'][2]:.2f}" in md and "Label efficiency" in md and "MoCo v2" in md
    assert len(list(csv.DictReader((tmp_path / "results.csv").open()))) == len(rows)
    assert (tmp_path / "results.png").stat().st_size > 10_000
    assert (tmp_path / "runs" / "moco-s0" / "train.log").exists()
    # a second call reuses the finished runs (resume): same accuracies
    again = run_table(cfg, train_set, test_set, tmp_path, ("moco",), (0,), progress=False)
    first = {(r.probe, r.fraction): r.accuracy for r in rows if r.method == "moco"}
    assert {(r.probe, r.fraction): r.accuracy for r in again if r.method == "moco"} == first


def test_label_draws_pair_every_method_with_supervised_on_the_same_subsets(tmp_path: Path) -> None:
    cfg = load_config("tiny", ["epochs=1", "label_fractions=[0.1, 1.0]"])
    full = synthetic_set(96, cfg.resize_hw, seed=4)
    train_set, test_set = full.subset(range(64)), full.subset(range(64, 96))
    rows = run_table(cfg, train_set, test_set, tmp_path, ("moco", "supervised"), (0,), progress=False,
                     label_draws=2)
    draws = {(r.method, r.probe, r.fraction, r.draw) for r in rows}
    assert {("supervised", "head", 0.1, 1), ("moco", "mlp", 0.1, 1), ("moco", "knn", 0.1, 0)} <= draws
    assert not any(r.draw and r.fraction == 1.0 for r in rows), "all labels: one draw only"
    assert (tmp_path / "runs" / "supervised-f0.1-s0-d1" / "checkpoint.pt").exists()
    assert not np.array_equal(label_subset(train_set.labels, 0.1, label_draw_seed(0, 0)),
                              label_subset(train_set.labels, 0.1, label_draw_seed(0, 1)))
    write_report(rows, tmp_path, cfg, {"kind": "synthetic"}, "tgp t", 1.0)
    md = (tmp_path / "results.md").read_text()
    assert "2 label draws below 100 %" in md and "2 paired label draw(s)" in md, md


def test_paired_gain_compares_only_the_same_subsets() -> None:
    def row(method: str, probe: str, draw: int, acc: float, seed: int = 0) -> Row:
        return Row(seed, method, probe, 0.1, 20, acc, 0.0, draw=draw)

    rows = [row("supervised", "head", 0, 0.80), row("supervised", "head", 1, 0.70),
            row("supervised", "head", 2, 0.75),
            row("moco", "mlp", 0, 0.82), row("moco", "mlp", 1, 0.71), row("moco", "mlp", 2, 0.74),
            row("moco", "mlp", 3, 0.99)]  # draw 3 has no supervised partner: left out
    mean, se, wins, n = paired_gain(rows, "moco", "mlp", 0.1)
    diffs = np.array([0.02, 0.01, -0.01])
    assert n == 3 and wins == 2
    assert mean == pytest.approx(diffs.mean()) and se == pytest.approx(diffs.std(ddof=1) / np.sqrt(3))
    assert paired_gain(rows, "moco", "svm", 0.1)[3] == 0
