"""Atomic checkpoints and exact resume, nothing pickled beyond ``weights_only`` tensors.

A checkpoint holds everything a run needs to continue bit for bit: the method's state
(model, key encoder, queue + pointer, memory bank), optimiser, LR schedule, torch RNG
state, the data-order generator, the epoch, the config and the preprocessing. It is
written to a temporary file in the same directory, flushed, then renamed over the old
one, so a kill at any moment leaves either the old or the new checkpoint, never half
of one. Loading uses ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from tactile_grasp_predictor.errors import ConfigError

CHECKPOINT_NAME = "checkpoint.pt"
FORMAT_VERSION = 1


def save_checkpoint(path: Path, state: dict[str, Any]) -> Path:
    """Write ``state`` atomically to ``path`` (temp file + fsync + rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    with tmp.open("wb") as fh:
        torch.save({"format_version": FORMAT_VERSION, **state}, fh)
        fh.flush()
        os.fsync(fh.fileno())
    tmp.replace(path)
    return path


def load_checkpoint(path: Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint` (no unpickling of arbitrary objects)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no checkpoint there")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # truncated / foreign file
        raise ConfigError(f"{path}: unreadable checkpoint ({type(exc).__name__}: {exc})") from exc
    if not isinstance(state, dict) or state.get("format_version") != FORMAT_VERSION:
        raise ConfigError(f"{path}: not a checkpoint of format version {FORMAT_VERSION}")
    return state
