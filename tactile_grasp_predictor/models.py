"""The model definition: ResNet backbones from scratch, the projection head, the encoder.

Nothing here downloads weights: torchvision ResNets are built with ``weights=None``.
The probes (:mod:`tactile_grasp_predictor.probes`) see the pooled backbone features
(``Encoder.features``); the projection head only serves self-supervised training.

Example:
    >>> import torch
    >>> enc = Encoder("resnet18", head=ProjectionHead(512, 512, 128))
    >>> tuple(enc.features(torch.zeros(2, 3, 96, 96)).shape), tuple(enc(torch.zeros(2, 3, 96, 96)).shape)
    ((2, 512), (2, 128))

"""

from __future__ import annotations

from typing import Any

import torch
import torchvision
from torch import nn

from tactile_grasp_predictor.errors import ConfigError

__all__ = ["ARCHS", "Encoder", "ProjectionHead", "build_backbone"]

ARCHS: dict[str, int] = {"resnet18": 512, "resnet50": 2048}
"""Supported backbones and their pooled feature dimension."""


def build_backbone(arch: str) -> tuple[nn.Module, int]:
    """Build a torchvision ResNet with random weights and ``fc`` replaced by identity.

    Returns:
        ``(module, feat_dim)``; ``module(x)`` maps ``N x 3 x H x W`` to pooled ``N x feat_dim``.

    """
    if arch not in ARCHS:
        raise ConfigError(f"architecture: unknown backbone {arch!r}; known: {sorted(ARCHS)}")
    net = getattr(torchvision.models, arch)(weights=None)
    feat_dim = net.fc.in_features
    assert feat_dim == ARCHS[arch]
    net.fc = nn.Identity()
    return net, feat_dim


class ProjectionHead(nn.Module):
    """MLP projection head: ``hidden_layers`` x (Linear–ReLU), then Linear to ``out_dim``.

    The paper uses two hidden layers (the default); the MoCo v2 reference uses one.
    ``hidden_layers=0`` is a single linear map.
    """

    def __init__(self, in_dim: int, hidden_dim: int, out_dim: int = 128, hidden_layers: int = 2) -> None:
        super().__init__()
        if min(in_dim, hidden_dim, out_dim) < 1 or hidden_layers < 0:
            raise ConfigError(
                f"projection head: dims must be positive and hidden_layers >= 0, got "
                f"in={in_dim} hidden={hidden_dim} out={out_dim} layers={hidden_layers}"
            )
        self.in_dim, self.hidden_dim = in_dim, hidden_dim
        self.out_dim, self.hidden_layers = out_dim, hidden_layers
        layers: list[nn.Module] = []
        dim = in_dim
        for _ in range(hidden_layers):
            layers += [nn.Linear(dim, hidden_dim), nn.ReLU(inplace=True)]
            dim = hidden_dim
        layers.append(nn.Linear(dim, out_dim))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``N x in_dim`` → ``N x out_dim`` (not normalised)."""
        return self.net(x)

    def config(self) -> dict[str, int]:
        """Return the constructor arguments, JSON-serialisable."""
        return {
            "in_dim": self.in_dim,
            "hidden_dim": self.hidden_dim,
            "out_dim": self.out_dim,
            "hidden_layers": self.hidden_layers,
        }


class Encoder(nn.Module):
    """Backbone plus optional projection head.

    ``features(x)`` gives the pooled backbone features ``N x feat_dim`` (what probes and
    bundles use); ``forward(x)`` gives the projection ``N x out_dim`` when a head is set,
    else the features.
    """

    def __init__(self, arch: str = "resnet18", head: ProjectionHead | None = None) -> None:
        super().__init__()
        self.arch = arch
        self.backbone, self.feat_dim = build_backbone(arch)
        if head is not None and head.in_dim != self.feat_dim:
            raise ConfigError(f"projection head: in_dim {head.in_dim} != {arch} feature dim {self.feat_dim}")
        self.head = head

    @classmethod
    def with_head(cls, arch: str, hidden_dim: int | None = None, out_dim: int = 128,
                  hidden_layers: int = 2) -> Encoder:
        """Build an encoder with a projection head (``hidden_dim`` defaults to the feature dim)."""
        feat_dim = ARCHS.get(arch)
        if feat_dim is None:
            raise ConfigError(f"architecture: unknown backbone {arch!r}; known: {sorted(ARCHS)}")
        return cls(arch, ProjectionHead(feat_dim, hidden_dim or feat_dim, out_dim, hidden_layers))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled backbone features: ``N x 3 x H x W`` → ``N x feat_dim``."""
        assert x.ndim == 4 and x.shape[1] == 3, f"expected N x 3 x H x W, got {tuple(x.shape)}"
        return self.backbone(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Projection ``N x out_dim`` if a head is set, else the features ``N x feat_dim``."""
        f = self.features(x)  # N x D
        return self.head(f) if self.head is not None else f

    def architecture(self) -> dict[str, Any]:
        """JSON description stored in bundle manifests (``arch``, ``feat_dim``)."""
        return {"arch": self.arch, "feat_dim": self.feat_dim}
