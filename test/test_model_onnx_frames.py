"""The frames graph (``model.onnx``: uint8 frames → p) in ONNX Runtime alone; format 1 read; trigger."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from helpers.bundles import make_random_bundle
from tactile_grasp_predictor.bundle import MANIFEST_FILE, NETWORK_FILE, ONNX_FILE, load_bundle, write_bundle
from tactile_grasp_predictor.bundle_trigger import trigger_differences
from tactile_grasp_predictor.errors import ConfigError
from tactile_grasp_predictor.predictor import Predictor
from tactile_grasp_predictor.tracker import TriggerConfig

SIZE = 48  # resize 48 x 64: 480 x 640 frames shrink by 10, a whole-number factor

#: What a user runs: onnxruntime and numpy, nothing of this package (checked in the child).
ALONE = """
import json, sys
import numpy as np, onnxruntime as ort
frames = np.load(sys.argv[2])
sess = ort.InferenceSession(sys.argv[1], providers=["CPUExecutionProvider"])
p = [float(sess.run(["p_success"], {"ta": a[None], "tb": b[None]})[0][0])
     for a, b in zip(frames["ta"], frames["tb"])]
batch = sess.run(["p_success"], {"ta": frames["ta"], "tb": frames["tb"]})[0].tolist()
assert not [m for m in sys.modules if m.startswith("tactile_grasp_predictor") or m == "torch"]
print(json.dumps({"p": p, "batch": batch}))
"""


def _frames(n: int, hw: tuple[int, int], seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Gel-like pairs: a smooth background, and Tb pressed by a blob (some pairs: no contact)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:hw[0], 0:hw[1]].astype(np.float32)
    ta, tb = [], []
    for i in range(n):
        base = 90 + 40 * np.sin(xx / (30 + 5 * i)) [..., None] + rng.normal(0, 3, (*hw, 3))
        cy, cx, r = rng.uniform(0.3, 0.7) * hw[0], rng.uniform(0.3, 0.7) * hw[1], rng.uniform(20, 90)
        blob = 60 * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / r**2)[..., None] * (i % 3 != 0)
        ta.append(np.clip(base, 0, 255).astype(np.uint8))
        tb.append(np.clip(base + blob + rng.normal(0, 3, (*hw, 3)), 0, 255).astype(np.uint8))
    return np.stack(ta), np.stack(tb)


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.set_num_threads(1)
    return make_random_bundle(tmp_path_factory.mktemp("frames") / "b", size=SIZE, probe="mlp", seed=5,
                              onnx=True)


def test_onnxruntime_alone_reproduces_the_predictor(bundle: Path, tmp_path: Path) -> None:
    ta, tb = _frames(4, (480, 640), seed=0)
    np.savez(tmp_path / "frames.npz", ta=ta, tb=tb)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    cmd = [sys.executable, "-I", "-c", ALONE, str(bundle / ONNX_FILE), str(tmp_path / "frames.npz")]
    out = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert out.returncode == 0, out.stderr[-2000:]
    got = json.loads(out.stdout)
    for backend in ("torch", "onnx"):
        pred = Predictor.from_bundle(bundle, backend=backend, num_threads=1)
        expect = pred.predict_batch(list(ta), list(tb))
        assert np.ptp(expect) > 1e-3, "the fixture model must give frame-dependent p"
        np.testing.assert_allclose(got["p"], expect, atol=1e-4, rtol=0)
        np.testing.assert_allclose(got["batch"], expect, atol=1e-4, rtol=0)


def test_format_1_bundle_still_loads(bundle: Path, tmp_path: Path) -> None:
    """A format-1 bundle: ``model.onnx`` is the network graph, no provenance or trigger."""
    old = tmp_path / "v1"
    old.mkdir()
    m = json.loads((bundle / MANIFEST_FILE).read_text())
    for name in m["files"]:
        if name != ONNX_FILE:
            (old / (ONNX_FILE if name == NETWORK_FILE else name)).write_bytes((bundle / name).read_bytes())
    files = {n: h for n, h in m["files"].items() if n != ONNX_FILE}
    files[ONNX_FILE] = files.pop(NETWORK_FILE)
    v1 = {k: v for k, v in m.items() if k not in ("provenance", "trigger")}
    v1.update(format_version=1, files=files, onnx={"opset": 17, "max_abs_diff_vs_torch": 1e-6})
    (old / MANIFEST_FILE).write_text(json.dumps(v1))
    b = load_bundle(old)
    assert b.onnx_path == old / ONNX_FILE and b.frames_onnx_path is None
    ta, tb = _frames(2, (240, 320), seed=1)
    p_old = Predictor(b, backend="onnx", num_threads=1).predict_batch(ta, tb)
    np.testing.assert_allclose(p_old, Predictor.from_bundle(bundle).predict_batch(ta, tb), atol=1e-4)


def test_trigger_settings_recorded_checked_and_compared(bundle: Path, tmp_path: Path) -> None:
    b = load_bundle(bundle)
    trigger = {"source": "simulator protocol", "settings": {"tb_delay_s": 0.75, "settle_window_s": 0.2}}
    path = write_bundle(tmp_path / "t", b.encoder, b.probe, {"preprocessing": b.preprocess, "threshold": 0.4,
                                                              "trigger": trigger})
    m = load_bundle(path).manifest
    assert m["trigger"] == trigger
    assert trigger_differences(m, TriggerConfig()) == {"tb_delay_s": (0.75, 0.1)}
    assert trigger_differences(m, TriggerConfig(tb_delay_s=0.75)) == {}
    assert trigger_differences(b.manifest, TriggerConfig()) == {}  # not recorded: nothing to compare
    with pytest.raises(ConfigError, match=r"trigger\.settings\.tb_delay"):
        write_bundle(tmp_path / "bad", b.encoder, b.probe, {
            "preprocessing": b.preprocess, "threshold": 0.4, "trigger": {"settings": {"tb_delay": 1.0}}})
