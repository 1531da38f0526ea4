"""Convolutional autoencoder: ResNet encoder → pooled bottleneck → conv decoder → image.

The pooled backbone features (``N x D``) are the bottleneck and the representation the
probes see. The decoder maps them back to the crop with a linear layer to a ``S/16``
grid followed by four (upsample ×2, conv, BN, ReLU) stages; the loss is the mean squared
reconstruction error of the normalised view.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from tactile_grasp_predictor.models import Encoder
from tactile_grasp_predictor.preprocess import PreprocessConfig
from training import distributed as D
from training.config import TrainConfig
from training.methods.common import Method, chunked


def reconstruction_loss(x_hat: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Mean squared error over every pixel and channel."""
    assert x_hat.shape == x.shape, (x_hat.shape, x.shape)
    return F.mse_loss(x_hat.float(), x.float())


class Decoder(nn.Module):
    """``N x D`` bottleneck → ``N x 3 x S x S`` image."""

    def __init__(self, in_dim: int, out_size: int, width: int = 128) -> None:
        super().__init__()
        self.out_size = out_size
        self.grid = max(1, out_size // 16)
        self.width = width
        self.fc = nn.Linear(in_dim, width * self.grid * self.grid)
        stages: list[nn.Module] = []
        c = width
        for _ in range(4):
            c_out = max(16, c // 2)
            stages += [
                nn.Upsample(scale_factor=2, mode="nearest"),
                nn.Conv2d(c, c_out, 3, padding=1, bias=False),
                nn.BatchNorm2d(c_out),
                nn.ReLU(inplace=True),
            ]
            c = c_out
        self.up = nn.Sequential(*stages)
        self.out = nn.Conv2d(c, 3, 3, padding=1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """Decode ``N x D`` to ``N x 3 x S x S``."""
        h = self.fc(z).view(z.shape[0], self.width, self.grid, self.grid)  # N x W x g x g
        y = self.out(self.up(h))  # N x 3 x 16g x 16g
        if y.shape[-1] != self.out_size:
            y = F.interpolate(y, size=(self.out_size, self.out_size), mode="bilinear", align_corners=False)
        return y


class AutoEncoder(Method):
    """Reconstruct an augmented view from the encoder's pooled features."""

    def __init__(self, cfg: TrainConfig, preprocess: PreprocessConfig) -> None:
        super().__init__(cfg, preprocess)
        self.encoder = Encoder(cfg.arch).to(memory_format=self.memory_format)
        self.decoder = Decoder(self.encoder.feat_dim, cfg.crop)

    def _reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder.features(x))

    def forward(self, diff: torch.Tensor, idx: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Reconstruction loss of one augmented view per sample."""
        x = self.view(diff)  # N x 3 x S x S
        chunks = self.cfg.split_bn if D.world_size() == 1 else 1
        x_hat = chunked(_Recon(self), x, chunks)
        return reconstruction_loss(x_hat, x)


class _Recon(nn.Module):
    """Adapter so :func:`chunked` can call the encoder–decoder pair."""

    def __init__(self, ae: AutoEncoder) -> None:
        super().__init__()
        self.__dict__["ae"] = ae  # not a registered submodule: no parameter duplication

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.__dict__["ae"]._reconstruct(x)
