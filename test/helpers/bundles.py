"""Tiny random-weight bundles for tests, built through the real write path.

Tests and benchmarks import this (``from helpers.bundles import make_random_bundle``, with
``test/`` on ``sys.path``)::

    path = make_random_bundle(tmp_path / "b", probe="knn", onnx=True)
    predictor = Predictor.from_bundle(path)

The probe is fitted to the encoder's own features of a few random inputs, so p varies
with the input instead of sitting at 0 or 1.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from tactile_grasp_predictor.bundle import write_bundle
from tactile_grasp_predictor.models import Encoder
from tactile_grasp_predictor.preprocess import PreprocessConfig
from tactile_grasp_predictor.probes import KNNProbe, MLPProbe, Probe, SVMProbe

__all__ = ["make_random_bundle", "random_model"]


def random_model(arch: str = "resnet18", size: int = 64, probe: str = "mlp", seed: int = 0,
                 n_fit: int = 16) -> tuple[Encoder, Probe]:
    """An eval-mode random encoder and a probe of ``probe`` kind on its features."""
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    encoder = Encoder(arch).eval()
    # inputs like normalised differences of many kinds: noise and flat offsets, small to large
    amp = torch.logspace(-2, 0, n_fit).view(n_fit, 1, 1, 1)
    offset = torch.rand(n_fit, 3, 1, 1, generator=gen) * 2 - 1
    noise = torch.randn(n_fit, 3, size, size, generator=gen) * torch.rand(n_fit, 1, 1, 1, generator=gen)
    with torch.inference_mode():
        feats = encoder.features(amp * (offset + noise)).clone()  # n x D
    mean, std = feats.mean(dim=0), feats.std(dim=0).clamp_min(1e-3)
    labels = (torch.arange(n_fit) % 2).float()
    d = feats.shape[1]
    p: Probe
    if probe == "knn":
        p = KNNProbe(feats, labels, k=5, metric="cosine")
    elif probe == "svm":
        z = (feats - mean) / std
        coef = torch.randn(n_fit, generator=gen) * 0.5
        gamma = 1.0 / float(torch.cdist(z, z).square().median().clamp_min(1e-6))
        p = SVMProbe(z, coef, 0.1, kernel="rbf", gamma=gamma, platt_a=-2.0, platt_b=0.0,
                     input_mean=mean, input_scale=std)
    elif probe == "mlp":
        w0 = torch.randn(d, 16, generator=gen) / d**0.5
        w1 = torch.randn(16, 1, generator=gen) / 4.0
        p = MLPProbe([w0, w1], [torch.zeros(16), torch.zeros(1)], activation="relu",
                     input_mean=mean, input_scale=std)
    else:
        raise ValueError(f"probe {probe!r}: expected knn, svm or mlp")
    return encoder, p.eval()


def make_random_bundle(
    out_dir: str | Path,
    arch: str = "resnet18",
    size: int = 64,
    probe: str = "mlp",
    seed: int = 0,
    onnx: bool = False,
    threshold: float = 0.5,
    **manifest_extra: Any,
) -> Path:
    """Write a random-weight bundle (crop ``size``, frames resized to ``size x 4/3·size``)."""
    encoder, p = random_model(arch, size, probe, seed)
    pre = PreprocessConfig(resize_hw=(size, size * 4 // 3), crop=size)
    fields = {
        "preprocessing": pre,
        "threshold": threshold,
        "training_method": "random (test fixture)",
        "config": {"arch": arch, "size": size, "probe": probe, "seed": seed},
        "data_fingerprint": None,
        "metrics": {},
        **manifest_extra,
    }
    return write_bundle(out_dir, encoder, p, fields, export_onnx=onnx, overwrite=True)
