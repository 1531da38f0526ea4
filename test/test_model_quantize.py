"""INT8 quantisation: the graph is added with its verdict and loads, near fp32; auto runs it if accepted."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from helpers.bundles import make_random_bundle
from tactile_grasp_predictor.bundle import MANIFEST_FILE, NETWORK_INT8_FILE, add_to_bundle, load_bundle
from tactile_grasp_predictor.errors import BundleError, ConfigError
from tactile_grasp_predictor.predictor import Predictor
from tactile_grasp_predictor.preprocess import preprocess_pair
from training.quantize import MIN_SPEEDUP, quantize_bundle

SIZE = 32


def _pairs(n: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        a = rng.integers(0, 200, (SIZE, SIZE * 4 // 3, 3), dtype=np.uint8)
        out.append((a, np.clip(a.astype(int) + rng.integers(-50, 50, 3), 0, 255).astype(np.uint8)))
    return out


@pytest.fixture(scope="module")
def quantized(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    torch.set_num_threads(1)
    path = make_random_bundle(tmp_path_factory.mktemp("q") / "b", size=SIZE, probe="mlp", seed=2, onnx=True)
    pre = load_bundle(path).preprocess
    x_cal = np.concatenate([preprocess_pair(a, b, pre).numpy() for a, b in _pairs(16, seed=0)])
    test = _pairs(24, seed=1)
    p32 = Predictor.from_bundle(path, backend="onnx", num_threads=1).predict_batch(*zip(*test, strict=True))
    labels = (p32 >= np.median(p32)).astype(int)  # both classes; fp32 ranks them perfectly
    record = quantize_bundle(path, x_cal, test, labels, p32, threads=1, n_timed=10)
    return path, record


def test_int8_graph_is_recorded_with_its_verdict(quantized: tuple[Path, dict]) -> None:
    path, record = quantized
    m = json.loads((path / MANIFEST_FILE).read_text())
    assert NETWORK_INT8_FILE in m["files"] and m["quantization"] == json.loads(json.dumps(record))
    assert record["calibration_frames"] == 16 and record["predict_ms_int8"] > 0 and record["threads"] == 1
    t = record["test"]
    assert t["auc_fp32"] == 1.0 and t["n"] == 24
    fast_enough = record["speedup"] >= MIN_SPEEDUP
    close = t["accuracy_fp32"] - t["accuracy_int8"] <= 0.005 and t["auc_fp32"] - t["auc_int8"] <= 0.005
    assert record["accepted"] == (fast_enough and close), record["why"]
    b = load_bundle(path)
    assert b.int8_onnx_path == path / NETWORK_INT8_FILE
    ta, tb = zip(*_pairs(6, seed=3), strict=True)
    p8 = Predictor(b, backend="onnx_int8", num_threads=1).predict_batch(ta, tb)
    p32 = Predictor(b, backend="onnx", num_threads=1).predict_batch(ta, tb)
    assert not np.array_equal(p8, p32)  # quantised ...
    assert np.abs(p8 - p32).max() < 0.1 and np.corrcoef(p8, p32)[0, 1] > 0.8, (p8, p32)  # ... and close


def test_auto_runs_int8_only_when_accepted(quantized: tuple[Path, dict], tmp_path: Path) -> None:
    path, record = quantized
    for accepted in (True, False):
        copy = tmp_path / f"b{accepted}"
        shutil.copytree(path, copy)
        add_to_bundle(copy, {}, {"quantization": {**record, "accepted": accepted}})
        assert Predictor.from_bundle(copy, backend="auto").backend == ("onnx_int8" if accepted else "onnx")
    m = json.loads((copy / MANIFEST_FILE).read_text())
    (copy / MANIFEST_FILE).write_text(json.dumps({**m, "quantization": None}))
    with pytest.raises(BundleError, match="'quantization' and files"):
        load_bundle(copy)
    with pytest.raises(ConfigError, match=r"only network_int8\.onnx"):
        add_to_bundle(path, {"other.bin": b""}, {})
    with pytest.raises(ConfigError, match=r"quantization\.accepted"):
        add_to_bundle(path, {}, {"quantization": {**record, "accepted": "yes"}})
