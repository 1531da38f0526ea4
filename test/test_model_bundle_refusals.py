"""Hostile bundles refused by name, and a model that answers no probability never lifts (#19).

Regression tests for what 180 generated bundle mutations found: a weights file that is a symlink
to ``/dev/zero`` (MemoryError), probe parameters ``inf`` / ``"abc"`` (OverflowError, ValueError),
``resize_hw`` of 10¹² (an OpenCV error at predict time) and a NaN calibration parameter (p = NaN)
all escaped :class:`BundleError`; plus the schema's other rules (unknown fields, sizes checked
before reading, nesting, NaN tensors) and :class:`ModelError` for an output that is not in [0, 1].
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from helpers.bundles import make_random_bundle, random_model
from tactile_grasp_predictor.bundle import ENCODER_FILE, MANIFEST_FILE, PROBE_FILE, load_bundle, write_bundle
from tactile_grasp_predictor.bundle_manifest import MANIFEST_FIELDS, PROBE_PARAMS
from tactile_grasp_predictor.decision import Verdict, decide
from tactile_grasp_predictor.errors import BundleError, ModelError
from tactile_grasp_predictor.gate import Frame, SnapshotReady
from tactile_grasp_predictor.predictor import Predictor
from tactile_grasp_predictor.preprocess import PreprocessConfig
from tactile_grasp_predictor.probes import SVMProbe, probe_from_tensors, probe_to_tensors


@pytest.fixture(scope="module")
def svm_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.set_num_threads(1)
    return make_random_bundle(tmp_path_factory.mktemp("b") / "svm", size=32, probe="svm")


@pytest.fixture
def bundle(svm_bundle: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "copy"
    shutil.copytree(svm_bundle, dst)
    return dst


def _edit(bundle: Path, change: Callable[[dict[str, Any]], None]) -> None:
    m = json.loads((bundle / MANIFEST_FILE).read_text())
    change(m)
    (bundle / MANIFEST_FILE).write_text(json.dumps(m))


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(m: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node = m
        for key in parents:
            node = node[key]
        node[last] = value

    return change


def test_weights_that_are_a_symlink_to_dev_zero_are_refused_unread(bundle: Path) -> None:
    """Regression (#19): MemoryError reading /dev/zero through a symlinked weights file."""
    (bundle / ENCODER_FILE).unlink()
    (bundle / ENCODER_FILE).symlink_to("/dev/zero")
    with pytest.raises(BundleError, match=f"{ENCODER_FILE}: is a symbolic link"):
        load_bundle(bundle)


def test_pipes_and_directories_are_not_weights(bundle: Path) -> None:
    (bundle / PROBE_FILE).unlink()
    os.mkfifo(bundle / PROBE_FILE)  # reading it would block forever
    with pytest.raises(BundleError, match=f"{PROBE_FILE}: not a regular file"):
        load_bundle(bundle)
    (bundle / PROBE_FILE).unlink()
    (bundle / PROBE_FILE).mkdir()
    with pytest.raises(BundleError, match=f"{PROBE_FILE}: not a regular file"):
        load_bundle(bundle)


@pytest.mark.parametrize(("field", "value", "says"), [
    ("probe.params.gamma", "inf", r"probe\.params\.gamma': 'inf' is not a number"),
    ("probe.params.platt_a", "abc", r"probe\.params\.platt_a': 'abc' is not a number"),
    ("probe.params.intercept", 1e300, r"probe\.params\.intercept': 1e\+300 is not in"),
    ("probe.params.kernel", "poly", r"probe\.params\.kernel': 'poly' is not one of rbf, linear"),
    ("probe.params.in_dim", 513, r"probe\.params\.in_dim': 513 but resnet18 gives 512"),
    ("probe.params.bogus", 1, r"probe\.params\.bogus': unknown"),
    ("preprocessing.resize_hw", [10**12, 10**12],
     r"preprocessing\.resize_hw\[0\]': 1000000000000 is not in 1\.\.4096"),
    ("preprocessing.crop", 33.0, r"preprocessing\.crop': 33\.0 is not an integer"),
    ("preprocessing.std", [1.0, 0.0, 1.0], r"preprocessing\.std\[1\]': 0\.0 is not in \(0"),
    ("threshold", True, r"threshold': True is not a number"),
    ("model_id", "", r"model_id': '' must be a non-empty string"),
    ("architecture.arch", "resnet9", r"architecture\.arch': 'resnet9' is not one of"),
    ("files.encoder.safetensors", "00", "sha256 of"),
    ("origin", {"by": "someone"}, r"field 'origin': unknown \(known:"),
    ("provenance.by", "someone", r"provenance\.by': unknown"),
    ("provenance.torch", 2.1, r"provenance\.torch': 2\.1 is not a string"),
    ("trigger", {"settings": {"tb_delay_s": -1}}, r"trigger\.settings\.tb_delay_s': -1 is not in"),
    ("trigger", {"settings": {"contact_required": 1}}, r"contact_required': 1 is not true or false"),
    ("onnx", {"opset": 17, "frames_max_abs_diff": "0"}, r"onnx\.frames_max_abs_diff': '0' is not a number"),
])
def test_manifest_values_are_checked_against_the_schema(bundle: Path, field: str, value: Any,
                                                        says: str) -> None:
    """Regression (#19): ``inf``/``"abc"`` probe parameters and a 10¹² resize escaped BundleError."""
    if field.startswith("files."):
        _edit(bundle, lambda m: m["files"].__setitem__(field[len("files."):], value))
    else:
        _edit(bundle, _set(field, value))
    with pytest.raises(BundleError, match=f"{MANIFEST_FILE}: .*{says}"):
        load_bundle(bundle)


def test_nan_calibration_is_refused_in_json_and_in_the_probe(bundle: Path) -> None:
    """Regression (#19): a NaN Platt parameter was accepted and every p was NaN."""
    text = (bundle / MANIFEST_FILE).read_text()
    m = json.loads(text)
    old = json.dumps(m["probe"]["params"]["platt_a"])
    (bundle / MANIFEST_FILE).write_text(text.replace(f'"platt_a": {old}', '"platt_a": NaN'))
    with pytest.raises(BundleError, match=f"{MANIFEST_FILE}: NaN is not a number JSON allows"):
        load_bundle(bundle)
    (bundle / MANIFEST_FILE).write_text(text.replace(f'"platt_a": {old}', '"platt_a": 1e999'))
    with pytest.raises(BundleError, match="number 1e999 is not finite"):
        load_bundle(bundle)
    _, probe = random_model("resnet18", 32, "svm")
    tensors, params = probe_to_tensors(probe)
    with pytest.raises(BundleError, match="'platt_a': nan is not finite"):
        probe_from_tensors("svm", tensors, {**params, "platt_a": float("nan")})
    with pytest.raises(BundleError, match="bad parameters"):  # int(inf) is an OverflowError
        probe_from_tensors("svm", tensors, {**params, "in_dim": float("inf")})
    assert isinstance(probe, SVMProbe)


def test_sizes_and_nesting_are_bounded_before_reading(bundle: Path) -> None:
    (bundle / MANIFEST_FILE).write_text(" " * (1 << 20) + "{}")
    with pytest.raises(BundleError, match=f"{MANIFEST_FILE}: 1048578 bytes, expected 0..1048576"):
        load_bundle(bundle)
    (bundle / MANIFEST_FILE).write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(BundleError, match=r"nested too deeply|unreadable"):
        load_bundle(bundle)
    (bundle / MANIFEST_FILE).write_text('{"format_version": 1, "notes": ' + "[" * 70 + "]" * 70 + "}")
    with pytest.raises(BundleError, match="more than 64 levels"):
        load_bundle(bundle)


def test_nan_in_any_tensor_is_refused(svm_bundle: Path, tmp_path: Path) -> None:
    import hashlib

    for name, key in ((PROBE_FILE, "dual_coef"), (ENCODER_FILE, "backbone.bn1.running_var")):
        bundle = Path(shutil.copytree(svm_bundle, tmp_path / name))
        tensors = load_file(bundle / name)
        tensors[key] = tensors[key].clone()
        tensors[key].view(-1)[0] = float("nan")
        save_file(tensors, bundle / name)
        sha = hashlib.sha256((bundle / name).read_bytes()).hexdigest()
        _edit(bundle, lambda m, n=name, h=sha: m["files"].__setitem__(n, h))
        with pytest.raises(BundleError, match=f"{name}: tensor '{key}' contains NaN or inf"):
            load_bundle(bundle)


def test_every_probe_parameter_has_a_schema_row() -> None:
    for kind in PROBE_PARAMS:
        _, probe = random_model("resnet18", 32, kind)
        assert set(probe.params()) <= set(PROBE_PARAMS[kind]), kind
    assert [f.name for f in MANIFEST_FIELDS if f.required] == [
        "format_version", "model_id", "architecture", "preprocessing", "probe", "threshold", "files"]


def test_an_output_outside_0_1_is_a_model_error_and_an_abort(tmp_path: Path) -> None:
    """Finite weights whose activations overflow: p = NaN must be ABORT ``model_error``, never LIFT."""
    encoder, probe = random_model("resnet18", 32, "mlp")
    with torch.no_grad():
        w = encoder.backbone.conv1.weight
        w.mul_(1e37 / w.abs().max())
    path = write_bundle(tmp_path / "b", encoder, probe,
                        {"preprocessing": PreprocessConfig(resize_hw=(32, 40), crop=32), "threshold": 0.0})
    predictor = Predictor.from_bundle(path, num_threads=1)
    img = np.random.default_rng(0).integers(0, 256, (40, 50, 3), dtype=np.uint8)
    with pytest.raises(ModelError, match=r"p\[0\] = nan is not a probability"):
        predictor.predict(img, img[::-1].copy())
    with pytest.raises(ModelError, match=r"p\[1\] = nan"):
        predictor.predict_batch([img, img], [img, img[::-1].copy()])
    snap = SnapshotReady(1, Frame(0.0, None, img), Frame(1.0, None, img[::-1].copy()), 1.0)
    d = decide(snap, predictor, threshold=0.0)  # threshold 0: any probability would LIFT
    assert d.verdict == Verdict.ABORT and d.reason == "model_error"
