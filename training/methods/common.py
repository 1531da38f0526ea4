"""What every method shares: two-view generation, normalisation, split-BN forward passes."""

from __future__ import annotations

from abc import abstractmethod

import torch
from torch import nn

from tactile_grasp_predictor.models import Encoder, ProjectionHead
from tactile_grasp_predictor.preprocess import PreprocessConfig, normalize
from training.augment import DiffAugment
from training.config import TrainConfig


class Method(nn.Module):
    """A representation-learning method: ``forward(diff, idx, labels) -> loss``.

    ``diff`` is a batch of differences ``N x 3 x h x w`` in [-1, 1] (frames resized, not
    cropped); the method draws its own augmented views. ``encoder.features`` is the frozen
    representation the probes see (pooled backbone features).
    """

    encoder: Encoder
    uses_labels: bool = False

    def __init__(self, cfg: TrainConfig, preprocess: PreprocessConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.preprocess = preprocess
        self.augment = DiffAugment.from_config(cfg)
        self.memory_format = torch.channels_last if cfg.channels_last else torch.contiguous_format
        self.last_stats: dict[str, torch.Tensor] = {}

    @torch.no_grad()
    def record(self, **stats: torch.Tensor) -> None:
        """Keep scalar statistics of the current step for the run log (detached; no effect on training)."""
        self.last_stats = {k: v.detach().float().mean() for k, v in stats.items()}

    def step_stats(self) -> dict[str, float]:
        """Return the statistics :meth:`record` kept at the last step, as floats (empty by default)."""
        return {k: float(v) for k, v in self.last_stats.items()}

    def view(self, diff: torch.Tensor) -> torch.Tensor:
        """One augmented, normalised view per sample: ``N x 3 x S x S``.

        The augmentations see the difference times the preprocessing gain (so colour ops act
        on a signal that fills [-1, 1]); the gain is divided out again before ``normalize``.
        """
        s = self.preprocess.scale
        x = normalize(self.augment(diff * s) / s, self.preprocess)
        return x.contiguous(memory_format=self.memory_format)

    @abstractmethod
    def forward(self, diff: torch.Tensor, idx: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Compute the training loss of one batch (a scalar)."""

    def after_step(self) -> None:
        """Run after each optimiser step (e.g. momentum updates); nothing by default."""

    def on_world_change(self, global_batch: int) -> list[str]:
        """Adapt state that depends on the global batch after a resume on another process count.

        Returns notes on what changed (nothing by default).
        """
        return []


def spread(z: torch.Tensor) -> torch.Tensor:
    """Mean per-dimension standard deviation of ``N x C`` unit-norm features over the batch.

    About ``1/√C`` when the features spread over the sphere; towards 0 when they collapse.
    """
    return z.detach().float().std(dim=0).mean()


def chunked(fn: nn.Module, x: torch.Tensor, chunks: int) -> torch.Tensor:
    """``fn`` over ``chunks`` equal slices of the batch, concatenated (per-chunk BN statistics)."""
    if chunks <= 1:
        return fn(x)
    assert x.shape[0] % chunks == 0, f"batch {x.shape[0]} not divisible into {chunks} BN chunks"
    return torch.cat([fn(part) for part in x.chunk(chunks)], dim=0)


def encoder_with_head(cfg: TrainConfig) -> Encoder:
    """Build the backbone with the configured projection head (``proj_layers`` hidden layers)."""
    enc = Encoder(cfg.arch)
    enc.head = ProjectionHead(enc.feat_dim, cfg.proj_hidden, cfg.proj_dim, cfg.proj_layers)
    fmt = torch.channels_last if cfg.channels_last else torch.contiguous_format
    return enc.to(memory_format=fmt)
