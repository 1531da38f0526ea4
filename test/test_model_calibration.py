"""Calibration: fitted maps lower the ECE, travel in bundles as checked tensors, every backend uses them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch
from safetensors.torch import save_file

from helpers.bundles import random_model
from tactile_grasp_predictor.bundle import (
    CALIBRATION_FILE,
    MANIFEST_FILE,
    ONNX_FILE,
    GraspModel,
    load_bundle,
    write_bundle,
)
from tactile_grasp_predictor.calibration import CALIBRATION_KINDS, Calibrator, fit_calibrator
from tactile_grasp_predictor.errors import BundleError, ConfigError
from tactile_grasp_predictor.metrics import reliability
from tactile_grasp_predictor.predictor import Predictor
from tactile_grasp_predictor.preprocess import PreprocessConfig, preprocess_pair
from training.thresholds import choose_threshold, describe_threshold_rule, threshold_rule

SIZE = 32
PRE = PreprocessConfig(resize_hw=(SIZE, SIZE * 4 // 3), crop=SIZE)


def _overconfident(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Scores sharper than the truth (logit x 3, shifted): a probe's typical miscalibration."""
    rng = np.random.default_rng(seed)
    true = rng.uniform(0.02, 0.98, n)
    y = (rng.uniform(0, 1, n) < true).astype(int)
    return 1 / (1 + np.exp(-3 * np.log(true / (1 - true)) - 0.5)), y


@pytest.mark.parametrize("kind", CALIBRATION_KINDS)
def test_each_kind_calibrates_held_out_scores(kind: str) -> None:
    p_fit, y_fit = _overconfident(1500, seed=0)
    p_new, y_new = _overconfident(3000, seed=1)
    cal = fit_calibrator(kind, p_fit, y_fit)
    with torch.inference_mode():
        q = cal(torch.tensor(p_new, dtype=torch.float32)).double().numpy()
    assert reliability(p_new, y_new)["ece"] > 0.1
    assert reliability(q, y_new)["ece"] < 0.04, cal.describe()
    order = np.argsort(p_new)
    assert (np.diff(q[order]) >= -1e-6).all(), "a calibrator never reverses the ranking"
    again = Calibrator.from_tensors(kind, cal.to_tensors())
    with torch.inference_mode():
        assert torch.equal(again(torch.tensor(p_new, dtype=torch.float32)), torch.from_numpy(q).float())


def test_bad_calibrator_input_and_tensors_are_refused() -> None:
    with pytest.raises(ConfigError, match="expected one of"):
        fit_calibrator("beta", [0.2, 0.8], [0, 1])
    with pytest.raises(ConfigError, match="labels must be 0/1"):
        fit_calibrator("platt", [0.2, 0.8], [0, 2])
    bad = [("platt", {"a": torch.tensor([-1.0]), "b": torch.tensor([0.0])}, "must be in"),
           ("temperature", {"a": torch.tensor([1.0]), "b": torch.tensor([0.5])}, "b must be 0"),
           ("isotonic", {"x": torch.tensor([0.5, 0.2]), "y": torch.tensor([0.1, 0.2])}, "increase strictly"),
           ("isotonic", {"x": torch.tensor([0.2, 0.5]), "y": torch.tensor([0.3, 0.2])}, "non-decreasing"),
           ("isotonic", {"x": torch.tensor([0.2, float("nan")]), "y": torch.tensor([0.1, 0.2])}, "NaN"),
           ("platt", {"a": torch.tensor([1.0])}, "expected")]
    for kind, tensors, says in bad:
        with pytest.raises(BundleError, match=says):
            Calibrator.from_tensors(kind, tensors)


@pytest.fixture(scope="module")
def calibrated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, GraspModel, Calibrator]:
    torch.set_num_threads(1)
    encoder, probe = random_model("resnet18", SIZE, "mlp", seed=4)
    cal = Calibrator.from_tensors("platt", {"a": torch.tensor([2.5]), "b": torch.tensor([-0.4])})
    path = write_bundle(tmp_path_factory.mktemp("cal") / "b", encoder, probe,
                        {"preprocessing": PRE, "threshold": 0.5,
                         "calibration": {"fitted_on": "test", "n": 10}},
                        export_onnx=True, calibrator=cal)
    return path, GraspModel(encoder, probe).eval(), cal


def test_every_backend_and_the_frames_graph_publish_the_calibrated_p(
        calibrated: tuple[Path, GraspModel, Calibrator]) -> None:
    path, raw_model, cal = calibrated
    rng = np.random.default_rng(0)
    ta = [rng.integers(0, 256, (5 * SIZE, 5 * (SIZE * 4 // 3), 3), dtype=np.uint8) for _ in range(4)]
    tb = [np.clip(a.astype(int) + rng.integers(-40, 40, 3), 0, 255).astype(np.uint8) for a in ta]
    with torch.inference_mode():
        raw = raw_model(torch.cat([preprocess_pair(a, b, PRE) for a, b in zip(ta, tb, strict=True)]))
        expect = cal(raw).double().numpy()
    assert np.abs(expect - raw.double().numpy()).max() > 0.01, "the map must change p"
    m = json.loads((path / MANIFEST_FILE).read_text())
    assert m["calibration"] == {"fitted_on": "test", "n": 10, "kind": "platt"}
    assert CALIBRATION_FILE in m["files"]
    for backend in ("torch", "onnx"):
        got = Predictor.from_bundle(path, backend=backend, num_threads=1).predict_batch(ta, tb)
        np.testing.assert_allclose(got, expect, atol=1e-5)
    sess = ort.InferenceSession(str(path / ONNX_FILE), providers=["CPUExecutionProvider"])
    frames = sess.run(None, {"ta": np.stack(ta), "tb": np.stack(tb)})[0]
    np.testing.assert_allclose(frames, expect, atol=1e-5)


def test_calibration_field_and_file_go_together(calibrated: tuple[Path, GraspModel, Calibrator],
                                                tmp_path: Path) -> None:
    import hashlib
    import shutil

    path = tmp_path / "b"
    shutil.copytree(calibrated[0], path)
    m = json.loads((path / MANIFEST_FILE).read_text())
    (path / MANIFEST_FILE).write_text(json.dumps({**m, "calibration": None}))
    with pytest.raises(BundleError, match="'calibration' and files"):
        load_bundle(path)
    save_file({"a": torch.tensor([0.0]), "b": torch.tensor([0.0])}, str(path / CALIBRATION_FILE))
    sha = hashlib.sha256((path / CALIBRATION_FILE).read_bytes()).hexdigest()
    files = {**m["files"], CALIBRATION_FILE: sha}
    (path / MANIFEST_FILE).write_text(json.dumps({**m, "files": files}))
    with pytest.raises(BundleError, match=f"{CALIBRATION_FILE}: platt calibration: a = 0 must be in"):
        load_bundle(path)


def test_cost_rule_minimises_expected_cost() -> None:
    rng = np.random.default_rng(3)
    p = rng.uniform(0, 1, 400)
    y = rng.uniform(0, 1, 400) < p  # calibrated scores
    rule = threshold_rule("cost: drop=10, regrasp=1")
    assert (rule.kind, rule.drop, rule.regrasp) == ("cost", 10.0, 1.0)
    t = choose_threshold(p, y, "cost:drop=10,regrasp=1")
    assert 0.8 <= t <= 0.95  # near the ideal 1 - 1/10 for calibrated p

    def cost(th: float) -> float:
        return float(10 * ((p >= th) & ~y).sum() + (p < th).sum())

    assert all(cost(t) <= cost(other) for other in np.arange(0.05, 0.951, 0.01))
    assert choose_threshold(p, y, "cost:drop=1,regrasp=1") < 0.2  # a drop no worse than a regrasp: lift
    assert "dropped part" in describe_threshold_rule("cost:drop=10,regrasp=1")
    for bad in ("cost:drop=0,regrasp=1", "cost:drop=10", "cost:regrasp=1,drop=10", "cost:drop=x,regrasp=1"):
        with pytest.raises(ConfigError, match="cost:drop=D,regrasp=R"):
            choose_threshold(p, y, bad)
