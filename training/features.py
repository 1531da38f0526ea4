"""Frozen features: the backbone in eval mode, pooled features of centre-cropped differences."""

from __future__ import annotations

import numpy as np
import torch

from tactile_grasp_predictor.models import Encoder
from tactile_grasp_predictor.preprocess import PreprocessConfig, preprocess_batch
from training.data.sets import TactileSet


@torch.no_grad()
def extract_features(
    encoder: Encoder,
    data: TactileSet,
    preprocess: PreprocessConfig,
    batch_size: int = 256,
    device: str | torch.device = "cpu",
    projection: bool = False,
) -> np.ndarray:
    """Features ``N x D`` (float32) of every trial, exactly as the runtime computes them.

    The encoder is put in eval mode (BN running statistics) for the pass and restored
    afterwards. ``projection=True`` returns the projection head's output instead of the
    pooled backbone features.
    """
    was_training = encoder.training
    encoder.eval()
    fmt = torch.channels_last
    out: list[np.ndarray] = []
    try:
        for i in range(0, len(data), batch_size):
            x = preprocess_batch(data.before[i : i + batch_size], data.during[i : i + batch_size], preprocess)
            x = x.to(device).contiguous(memory_format=fmt)  # B x 3 x S x S
            f = encoder(x) if projection else encoder.features(x)  # B x D
            out.append(f.float().cpu().numpy())
    finally:
        encoder.train(was_training)
    feats = np.concatenate(out, axis=0) if out else np.zeros((0, 0), np.float32)
    assert feats.shape[0] == len(data)
    if not np.isfinite(feats).all():
        raise FloatingPointError("features contain NaN/inf: the encoder diverged")
    return feats
