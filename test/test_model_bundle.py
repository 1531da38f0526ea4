"""Bundles and the predictor: round trip, verification errors, ONNX parity, backends, frames."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from helpers.bundles import make_random_bundle, random_model
from tactile_grasp_predictor.bundle import (
    ENCODER_FILE,
    MANIFEST_FILE,
    NETWORK_FILE,
    ONNX_FILE,
    PROBE_FILE,
    GraspModel,
    load_bundle,
    write_bundle,
)
from tactile_grasp_predictor.errors import BundleError, ConfigError, FrameError
from tactile_grasp_predictor.predictor import Predictor
from tactile_grasp_predictor.preprocess import PreprocessConfig, preprocess_pair

SIZE = 48
PRE = PreprocessConfig(resize_hw=(SIZE, SIZE * 4 // 3), crop=SIZE)


def _pairs(n: int = 5, hw: tuple[int, int] = (240, 320), seed: int = 0) -> tuple[list, list]:
    rng = np.random.default_rng(seed)
    ta, tb = [], []
    for i in range(n):
        a = rng.integers(0, 256, (*hw, 3), dtype=np.uint8)
        b = rng.integers(0, 256, (*hw, 3), dtype=np.uint8) if i % 2 else np.clip(
            a.astype(int) + rng.integers(-60, 60, 3), 0, 255).astype(np.uint8)
        ta.append(a)
        tb.append(b)
    return ta, tb


@pytest.fixture(scope="module")
def bundles(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("bundles")
    return {kind: make_random_bundle(root / kind, size=SIZE, probe=kind, seed=3, onnx=True)
            for kind in ("mlp", "knn", "svm")}


def _copy(src: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "copy"
    shutil.copytree(src, dst)
    return dst


def _rehash(bundle: Path, name: str) -> None:
    """Make the manifest agree with a deliberately broken file (so later checks are reached)."""
    import hashlib

    m = json.loads((bundle / MANIFEST_FILE).read_text())
    m["files"][name] = hashlib.sha256((bundle / name).read_bytes()).hexdigest()
    (bundle / MANIFEST_FILE).write_text(json.dumps(m))


@pytest.mark.parametrize("kind", ["mlp", "knn", "svm"])
def test_round_trip_equals_in_memory_model(kind: str, bundles: dict[str, Path]) -> None:
    encoder, probe = random_model("resnet18", SIZE, kind, seed=3)
    model = GraspModel(encoder, probe).eval()
    ta, tb = _pairs()
    x = torch.cat([preprocess_pair(a, b, PRE) for a, b in zip(ta, tb, strict=True)])
    with torch.inference_mode():
        expect = model(x).double().numpy()
    assert expect.std() > 1e-3, "fixture model must give input-dependent p"
    exact = Predictor.from_bundle(bundles[kind], channels_last=False)
    np.testing.assert_array_equal(exact.predict_batch(ta, tb), expect)
    fast = Predictor.from_bundle(bundles[kind])  # channels_last: same maths, other summation order
    np.testing.assert_allclose(fast.predict_batch(ta, tb), expect, atol=1e-5)
    assert fast.predict(ta[1], tb[1]) == pytest.approx(expect[1], abs=1e-5)
    assert fast.preprocess == PRE and fast.threshold == 0.5 and fast.backend == "torch"
    assert fast.model_id.startswith(f"resnet18-{kind}-") and fast.device == "cpu"


@pytest.mark.parametrize("kind", ["mlp", "knn", "svm"])
def test_onnx_matches_torch(kind: str, bundles: dict[str, Path]) -> None:
    ta, tb = _pairs(6, seed=1)
    pt = Predictor.from_bundle(bundles[kind], channels_last=False).predict_batch(ta, tb)
    onnx = Predictor.from_bundle(bundles[kind], backend="onnx", num_threads=1)
    po = onnx.predict_batch(ta, tb)
    assert po.shape == (6,) and onnx.backend == "onnx"
    np.testing.assert_allclose(po, pt, atol=1e-4, rtol=0)
    assert onnx.predict(ta[0], tb[0]) == pytest.approx(pt[0], abs=1e-4)


def test_manifest_contents(bundles: dict[str, Path]) -> None:
    path = bundles["mlp"]
    m = json.loads((path / MANIFEST_FILE).read_text())
    assert m["format_version"] == 2
    assert set(m["files"]) == {ENCODER_FILE, PROBE_FILE, ONNX_FILE, NETWORK_FILE}
    assert {p.name for p in path.iterdir()} == {MANIFEST_FILE, *m["files"]}
    assert PreprocessConfig.from_dict(m["preprocessing"]) == PRE
    assert m["architecture"] == {"arch": "resnet18", "feat_dim": 512}
    assert m["probe"]["kind"] == "mlp" and m["probe"]["params"]["n_layers"] == 2
    assert m["onnx"]["max_abs_diff_vs_torch"] <= 1e-4 and m["onnx"]["frames_max_abs_diff"] <= 1e-4
    assert m["training_method"] == "random (test fixture)"
    assert m["provenance"]["package"] and m["provenance"]["torch"] == torch.__version__
    assert m["provenance"]["onnx"] and m["trigger"] is None  # the fixture does not say
    b = load_bundle(path)
    assert b.onnx_path == path / NETWORK_FILE and b.frames_onnx_path == path / ONNX_FILE
    assert b.model_id == m["model_id"]


@pytest.mark.parametrize("name", [ENCODER_FILE, PROBE_FILE, ONNX_FILE, NETWORK_FILE])
def test_one_changed_byte_is_caught(name: str, bundles: dict[str, Path], tmp_path: Path) -> None:
    path = _copy(bundles["knn"], tmp_path)
    data = bytearray((path / name).read_bytes())
    data[len(data) // 2] ^= 0x01
    (path / name).write_bytes(bytes(data))
    with pytest.raises(BundleError, match=f"{name}: sha256 mismatch"):
        load_bundle(path)


def test_missing_file_bad_json_wrong_version(bundles: dict[str, Path], tmp_path: Path) -> None:
    path = _copy(bundles["mlp"], tmp_path)
    (path / PROBE_FILE).unlink()
    with pytest.raises(BundleError, match=f"{PROBE_FILE}: missing"):
        load_bundle(path)
    path = _copy(bundles["mlp"], tmp_path / "v")
    m = json.loads((path / MANIFEST_FILE).read_text())
    (path / MANIFEST_FILE).write_text(json.dumps({**m, "format_version": 3}))
    with pytest.raises(BundleError, match="format_version 3 unknown"):
        load_bundle(path)
    (path / MANIFEST_FILE).write_text(json.dumps(m)[:-10])
    with pytest.raises(BundleError, match=r"manifest\.json: unreadable or not JSON"):
        load_bundle(path)
    (path / MANIFEST_FILE).unlink()
    with pytest.raises(BundleError, match=r"manifest\.json: missing"):
        load_bundle(path)
    with pytest.raises(BundleError, match="not a bundle directory"):
        load_bundle(tmp_path / "nowhere")
    with pytest.raises(BundleError, match="not a bundle directory"):
        Predictor.from_bundle(tmp_path / "nowhere")


def test_truncated_safetensors(bundles: dict[str, Path], tmp_path: Path) -> None:
    path = _copy(bundles["mlp"], tmp_path)
    data = (path / ENCODER_FILE).read_bytes()
    (path / ENCODER_FILE).write_bytes(data[: len(data) // 3])
    _rehash(path, ENCODER_FILE)  # the hash agrees: too small for resnet18's weights, refused unread
    with pytest.raises(BundleError, match=rf"{ENCODER_FILE}: \d+ bytes, expected .*refused before reading"):
        load_bundle(path)
    (path / ENCODER_FILE).write_bytes(b"\xff" * 8 + data[8:])  # the right size, a corrupt header
    _rehash(path, ENCODER_FILE)  # the hash agrees: the safetensors parser must catch it
    with pytest.raises(BundleError, match=f"{ENCODER_FILE}: not a valid safetensors file"):
        load_bundle(path)


def test_tensor_shape_mismatch(bundles: dict[str, Path], tmp_path: Path) -> None:
    path = _copy(bundles["mlp"], tmp_path)
    tensors = load_file(path / PROBE_FILE)
    tensors["weight_1"] = torch.zeros(17, 1)
    save_file(tensors, path / PROBE_FILE)
    _rehash(path, PROBE_FILE)
    with pytest.raises(BundleError, match=rf"{PROBE_FILE}: .*weight_1"):
        load_bundle(path)
    path = _copy(bundles["svm"], tmp_path / "e")
    tensors = load_file(path / ENCODER_FILE)
    tensors["backbone.conv1.weight"] = torch.zeros(3, 64, 7, 7)  # the same bytes, the wrong shape
    save_file(tensors, path / ENCODER_FILE)
    _rehash(path, ENCODER_FILE)
    with pytest.raises(BundleError, match=f"{ENCODER_FILE}: does not fit resnet18.*conv1"):
        load_bundle(path)


def test_write_is_atomic_and_validated(tmp_path: Path) -> None:
    encoder, probe = random_model("resnet18", 32, "knn")
    good = {"preprocessing": PreprocessConfig(resize_hw=(32, 40), crop=32), "threshold": 0.4}
    out = write_bundle(tmp_path / "b", encoder, probe, good)
    assert load_bundle(out).threshold == 0.4
    with pytest.raises(ConfigError, match="already exists"):
        write_bundle(out, encoder, probe, good)
    with pytest.raises(ConfigError, match="metrics"):  # fails mid-write: nothing left behind
        write_bundle(tmp_path / "c", encoder, probe, {**good, "metrics": {"x": object()}})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b"]
    with pytest.raises(ConfigError, match="threshold"):
        write_bundle(tmp_path / "d", encoder, probe, {**good, "threshold": 1.5})
    with pytest.raises(ConfigError, match="bogus"):
        write_bundle(tmp_path / "d", encoder, probe, {**good, "bogus": 1})
    with pytest.raises(ConfigError, match="preprocessing"):
        write_bundle(tmp_path / "d", encoder, probe, {"threshold": 0.5})
    write_bundle(out, encoder, probe, {**good, "threshold": 0.7, "model_id": "mine"}, overwrite=True)
    b = load_bundle(out)
    assert (b.threshold, b.model_id) == (0.7, "mine")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b"]


def test_backend_and_device_errors(bundles: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="backend"):
        Predictor.from_bundle(bundles["mlp"], backend="tensorrt")
    with pytest.raises(ConfigError, match="device"):
        Predictor.from_bundle(bundles["mlp"], device="tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="CUDA is not available"):
            Predictor.from_bundle(bundles["mlp"], device="cuda")
        assert Predictor.from_bundle(bundles["mlp"], device="auto").device == "cpu"
    no_onnx = make_random_bundle(tmp_path / "plain", size=32, probe="knn")
    with pytest.raises(BundleError, match=r"no model\.onnx"):
        Predictor.from_bundle(no_onnx, backend="onnx")


def test_auto_backend_runs_onnx_where_the_bundle_has_it(bundles: dict[str, Path], tmp_path: Path) -> None:
    auto = Predictor.from_bundle(bundles["mlp"], backend="auto", num_threads=1)
    assert auto.backend == "onnx"  # the bundle has model.onnx and onnxruntime is installed
    torch_pred = Predictor.from_bundle(bundles["mlp"], backend="torch", num_threads=1)
    ta, tb = _pairs(3, (60, 80))
    assert np.allclose(auto.predict_batch(ta, tb), torch_pred.predict_batch(ta, tb), atol=1e-4)
    plain = make_random_bundle(tmp_path / "plain", size=32, probe="mlp")
    assert Predictor.from_bundle(plain, backend="auto").backend == "torch"  # no model.onnx: torch


def test_num_threads_caps_the_preprocessing_pools_for_every_backend(bundles: dict[str, Path]) -> None:
    # The node predicts one pair at a time with num_threads=1; torch's and OpenCV's default
    # pools made its preprocessing p99 ~15x slower under load (limit_cpu_threads).
    before = torch.get_num_threads(), cv2.getNumThreads()
    try:
        for backend in ("onnx", "torch"):
            torch.set_num_threads(2)
            cv2.setNumThreads(2)
            Predictor.from_bundle(bundles["mlp"], backend=backend, num_threads=1)
            assert (torch.get_num_threads(), cv2.getNumThreads()) == (1, 1), backend
        Predictor.from_bundle(bundles["mlp"], backend="onnx")  # None: the libraries' settings stay
        assert (torch.get_num_threads(), cv2.getNumThreads()) == (1, 1)
    finally:
        torch.set_num_threads(before[0])
        cv2.setNumThreads(before[1])


@pytest.mark.parametrize("hw", [(240, 320), (480, 640), (960, 1280), (20, 30)])
def test_predict_any_frame_size_and_bad_frames(hw: tuple[int, int], bundles: dict[str, Path]) -> None:
    pred = Predictor.from_bundle(bundles["mlp"])
    ta, tb = _pairs(1, hw)
    p = pred.predict(ta[0], tb[0])
    assert 0.0 <= p <= 1.0
    with pytest.raises(FrameError, match="tb"):
        pred.predict(ta[0], tb[0][..., 0])
    with pytest.raises(FrameError, match="ta"):
        pred.predict(ta[0].astype(np.float32), tb[0])
    with pytest.raises(FrameError, match="ta/tb"):
        pred.predict(ta[0], tb[0][:-2])


def test_warm_up_and_batch_edges(bundles: dict[str, Path]) -> None:
    pred = Predictor.from_bundle(bundles["svm"], num_threads=1)
    assert pred.warm_up(iterations=2) > 0.0
    assert pred.predict_batch([], []).shape == (0,)
    ta, tb = _pairs(2)
    with pytest.raises(FrameError, match="2 Ta frames but 1 Tb"):
        pred.predict_batch(ta, tb[:1])
    with pytest.raises(FrameError, match="input tensor"):
        pred.predict_tensor(torch.zeros(1, 3, 10, 10))


def test_loading_unpickles_nothing_and_ids_are_stable(bundles: dict[str, Path], tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    import pickle

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("something tried to unpickle")

    monkeypatch.setattr(pickle, "loads", refuse)
    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(torch, "load", refuse)
    pred = Predictor.from_bundle(bundles["knn"])
    ta, tb = _pairs(1)
    assert 0.0 <= pred.predict(ta[0], tb[0]) <= 1.0
    monkeypatch.undo()
    # the same weights give the same files and the same default model_id
    a = make_random_bundle(tmp_path / "a", size=32, probe="svm", seed=5)
    b = make_random_bundle(tmp_path / "b", size=32, probe="svm", seed=5)
    ma, mb = (json.loads((p / MANIFEST_FILE).read_text()) for p in (a, b))
    assert ma["files"] == mb["files"] and ma["model_id"] == mb["model_id"]
    c = make_random_bundle(tmp_path / "c", size=32, probe="svm", seed=6)
    assert json.loads((c / MANIFEST_FILE).read_text())["model_id"] != ma["model_id"]


def test_verify_command(bundles: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from tactile_grasp_predictor.bundle import main

    assert main([str(bundles["mlp"])]) == 0
    assert "OK" in capsys.readouterr().out
    path = _copy(bundles["mlp"], tmp_path)
    (path / PROBE_FILE).write_bytes(b"garbage")
    assert main([str(bundles["mlp"]), str(path)]) == 1
    out = capsys.readouterr().out
    assert "FAIL" in out and "probe.safetensors: sha256 mismatch" in out
