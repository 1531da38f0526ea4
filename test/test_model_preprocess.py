"""Preprocessing and model definition: shapes, units, validation, the JSON round trip."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from tactile_grasp_predictor.errors import ConfigError, FrameError
from tactile_grasp_predictor.models import ARCHS, Encoder, ProjectionHead, build_backbone
from tactile_grasp_predictor.preprocess import (
    PreprocessConfig,
    center_crop,
    difference,
    difference_stats,
    normalize,
    preprocess_batch,
    preprocess_pair,
    resize_frame,
)

CFG = PreprocessConfig(resize_hw=(48, 64), crop=40, scale=2.0, mean=(0.1, -0.2, 0.0), std=(0.5, 1.0, 2.0))


def _frames(h: int, w: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return (rng.integers(0, 256, (h, w, 3), dtype=np.uint8), rng.integers(0, 256, (h, w, 3), dtype=np.uint8))


def test_config_json_round_trip() -> None:
    d = CFG.to_dict()
    again = PreprocessConfig.from_dict(json.loads(json.dumps(d)))
    assert again == CFG
    assert PreprocessConfig.paper().resize_hw == (256, 256) and PreprocessConfig.paper().crop == 224


@pytest.mark.parametrize(
    "kwargs",
    [
        {"crop": 100},  # larger than the resized frame
        {"resize_hw": (0, 10), "crop": 1},
        {"std": (1.0, 0.0, 1.0)},
        {"mean": (1.0, 2.0)},
        {"scale": -1.0},
    ],
)
def test_config_rejects_bad_values(kwargs: dict) -> None:
    base = {"resize_hw": (48, 64), "crop": 40}
    with pytest.raises(ConfigError, match="preprocessing"):
        PreprocessConfig(**{**base, **kwargs})


def test_config_from_dict_names_unknown_and_missing_fields() -> None:
    with pytest.raises(ConfigError, match="bogus"):
        PreprocessConfig.from_dict({**CFG.to_dict(), "bogus": 1})
    d = CFG.to_dict()
    del d["crop"]
    with pytest.raises(ConfigError, match="crop"):
        PreprocessConfig.from_dict(d)


@pytest.mark.parametrize("hw", [(240, 320), (480, 640), (960, 1280), (48, 64), (30, 40), (100, 100)])
def test_any_input_size_gives_the_network_shape(hw: tuple[int, int]) -> None:
    ta, tb = _frames(*hw)
    x = preprocess_pair(ta, tb, CFG)
    assert x.shape == (1, 3, 40, 40) and x.dtype == torch.float32 and x.is_contiguous()


def test_pair_equals_pieces_and_units() -> None:
    ta, tb = _frames(96, 128, seed=1)
    x = preprocess_pair(ta, tb, CFG)
    ra, rb = resize_frame(ta, CFG), resize_frame(tb, CFG)
    assert ra.shape == (48, 64, 3) and ra.dtype == np.uint8
    # by hand in numpy: (tb - ta)/255, centre crop, scale, mean, std
    d = (rb.astype(np.float64) - ra.astype(np.float64)) / 255.0  # h x w x 3
    top, left = (48 - 40) // 2, (64 - 40) // 2
    d = d[top : top + 40, left : left + 40]
    expect = (d * 2.0 - np.array(CFG.mean)) / np.array(CFG.std)
    np.testing.assert_allclose(x[0].permute(1, 2, 0).numpy(), expect, atol=1e-5)
    # the batched path over already resized frames gives the same tensor
    xb = preprocess_batch(np.stack([ra, ra]), np.stack([rb, rb]), CFG)
    assert xb.shape == (2, 3, 40, 40)
    torch.testing.assert_close(xb[1:], x, atol=1e-6, rtol=0)
    assert preprocess_batch(ra[None], rb[None], CFG, crop=False).shape == (1, 3, 48, 64)


def test_difference_is_tb_minus_ta_channel_first() -> None:
    ta = np.zeros((4, 5, 3), np.uint8)
    tb = ta.copy()
    tb[1, 2] = (255, 51, 0)
    d = difference(ta, tb)
    assert d.shape == (3, 4, 5)
    assert d[:, 1, 2].tolist() == pytest.approx([1.0, 0.2, 0.0])
    assert difference(tb, ta)[0, 1, 2].item() == pytest.approx(-1.0)
    assert difference(torch.from_numpy(ta), torch.from_numpy(tb)).shape == (3, 4, 5)


def test_center_crop_and_normalize() -> None:
    x = torch.arange(2 * 3 * 6 * 8, dtype=torch.float32).reshape(2, 3, 6, 8)
    c = center_crop(x, 4)
    assert c.shape == (2, 3, 4, 4) and c[0, 0, 0, 0].item() == x[0, 0, 1, 2].item()
    n = normalize(torch.ones(3, 2, 2), CFG)
    assert n[:, 0, 0].tolist() == pytest.approx([(2 - 0.1) / 0.5, (2 + 0.2) / 1.0, 2 / 2.0])


def test_difference_stats_fill_the_config() -> None:
    rng = np.random.default_rng(3)
    ta = rng.integers(0, 128, (8, 48, 64, 3), dtype=np.uint8)
    tb = rng.integers(64, 256, (8, 48, 64, 3), dtype=np.uint8)
    cfg = CFG.with_stats(*difference_stats(ta, tb, CFG))
    x = preprocess_batch(ta, tb, cfg)
    flat = x.transpose(0, 1).reshape(3, -1)
    assert flat.mean(dim=1).abs().max().item() < 1e-4
    assert (flat.std(dim=1) - 1).abs().max().item() < 1e-3


@pytest.mark.parametrize(
    ("ta", "tb", "field"),
    [
        (np.zeros((10, 10, 3), np.float32), np.zeros((10, 10, 3), np.uint8), "ta"),
        (np.zeros((10, 10, 3), np.uint8), np.zeros((10, 10), np.uint8), "tb"),
        (np.zeros((10, 10, 4), np.uint8), np.zeros((10, 10, 4), np.uint8), "ta"),
        (np.zeros((0, 10, 3), np.uint8), np.zeros((0, 10, 3), np.uint8), "ta"),
        (np.zeros((10, 10, 3), np.uint8), np.zeros((12, 10, 3), np.uint8), "ta/tb"),
        ([[0]], np.zeros((10, 10, 3), np.uint8), "ta"),
    ],
)
def test_bad_frames_raise_frame_error_naming_the_field(ta: object, tb: object, field: str) -> None:
    with pytest.raises(FrameError, match=field):
        preprocess_pair(ta, tb, CFG)  # type: ignore[arg-type]


def test_batch_rejects_unresized_frames() -> None:
    ta, tb = _frames(96, 128)
    with pytest.raises(FrameError, match="resized"):
        preprocess_batch(ta[None], tb[None], CFG)


@pytest.mark.parametrize("arch", sorted(ARCHS))
def test_backbone_features_and_head(arch: str) -> None:
    torch.manual_seed(0)
    _net, dim = build_backbone(arch)
    assert dim == ARCHS[arch]
    enc = Encoder.with_head(arch, hidden_dim=64, out_dim=16, hidden_layers=2).eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.inference_mode():
        f = enc.features(x)
        z = enc(x)
        assert f.shape == (2, dim) and z.shape == (2, 16)
        # channels_last gives the same features
        cl = enc.to(memory_format=torch.channels_last)
        f_cl = cl.features(x.to(memory_format=torch.channels_last))
        torch.testing.assert_close(f_cl, f, atol=1e-4, rtol=1e-4)
    linears = [m for m in enc.head.modules() if isinstance(m, torch.nn.Linear)]  # type: ignore[union-attr]
    assert len(linears) == 3
    assert enc.architecture() == {"arch": arch, "feat_dim": dim}


def test_head_depth_and_errors() -> None:
    for layers in (0, 1, 3):
        head = ProjectionHead(8, 4, 2, hidden_layers=layers)
        assert len([m for m in head.modules() if isinstance(m, torch.nn.Linear)]) == layers + 1
        assert head(torch.randn(5, 8)).shape == (5, 2)
    with pytest.raises(ConfigError, match="resnet"):
        build_backbone("vgg16")
    with pytest.raises(ConfigError, match="in_dim"):
        Encoder("resnet18", head=ProjectionHead(100, 10))


def test_runtime_imports_no_ros_training_mujoco_or_sklearn() -> None:
    import subprocess
    import sys

    code = (
        "import sys, tactile_grasp_predictor.predictor, tactile_grasp_predictor.bundle\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in "
        "('rclpy', 'training', 'mujoco', 'sklearn', 'kornia'))\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         check=True)
    assert out.stdout.strip() == ""
