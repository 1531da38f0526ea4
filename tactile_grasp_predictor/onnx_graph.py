"""ONNX exports of a bundle's model: the network graph the Predictor runs, and the frames graph users run.

Two graphs, the same weights:

- ``network.onnx`` (:func:`write_network_onnx`): normalised difference ``x``, ``N x 3 x S x S``
  float32 → ``p_success`` ``N``. The :class:`~tactile_grasp_predictor.predictor.Predictor`'s
  ``onnx`` backend runs it after the shared preprocessing (format-1 bundles call it ``model.onnx``).
- ``model.onnx`` (:func:`write_frames_onnx`): two RGB uint8 frames ``ta`` and ``tb``,
  ``N x H x W x 3`` of any size (the same for both) → ``p_success`` ``N``. The whole pipeline is
  in the graph (:class:`FramesModel`), so ONNX Runtime alone runs it, without this package::

      import numpy as np, onnxruntime as ort
      sess = ort.InferenceSession("bundle/model.onnx", providers=["CPUExecutionProvider"])
      p = sess.run(["p_success"], {"ta": ta[None], "tb": tb[None]})[0][0]   # ta, tb: H x W x 3 uint8

The graph's resize is an area average (:func:`area_weights`): each output pixel is the mean of
the input pixels it covers, weighted by the covered length, rounded to an integer grey level.
For a shrink by whole-number factors (640 x 480 → 128 x 96, or → 64 x 48) it is bit for bit
OpenCV's ``INTER_AREA``, which the package's preprocessing uses
(:func:`~tactile_grasp_predictor.preprocess.resize_frame`): the sum of each block times
``1/area`` in float32, rounded half to even (half up on OpenCV's 2 x 2 path). On fractional
factors OpenCV's float weights differ in the last bits, so a grey level sitting on .5 may
round the other way (one level, in about one pixel in a thousand). Frames smaller than the
bundle's ``resize_hw`` (an enlargement) are not what OpenCV's ``INTER_AREA`` does (it
interpolates linearly there): resize them yourself. Only the centre crop is computed.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from tactile_grasp_predictor.errors import BundleError
from tactile_grasp_predictor.preprocess import PreprocessConfig

__all__ = [
    "FRAMES_INPUTS",
    "NETWORK_INPUT",
    "ONNX_OPSET",
    "ONNX_OUTPUT",
    "ONNX_TOLERANCE",
    "FramesModel",
    "area_weights",
    "write_frames_onnx",
    "write_network_onnx",
]

NETWORK_INPUT = "x"
FRAMES_INPUTS = ("ta", "tb")
ONNX_OUTPUT = "p_success"
ONNX_OPSET = 17
ONNX_TOLERANCE = 1e-4


def area_weights(n_in: Any, n_out: int, first: int, count: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows ``first .. first + count`` of the ``n_out x n_in`` area-resize overlaps, and the scale.

    Row ``i`` weights input pixel ``j`` by the length of ``[j, j + 1)`` inside the output
    pixel's span ``[i·s, (i + 1)·s)``, ``s = n_in / n_out`` (a row sums to ``s``; on a
    whole-number factor the weights are 0 or 1). Returns ``(count x n_in weights, s)``.
    ``n_in`` may be a traced size (a graph input's dimension).
    """
    j = torch.arange(n_in).to(torch.float32)  # n_in
    size = torch.tensor(n_in) if isinstance(n_in, int) else n_in
    scale = size.to(torch.float32) / float(n_out)
    i = torch.arange(first, first + count, dtype=torch.float32).unsqueeze(1)  # count x 1
    lo, hi = i * scale, (i + 1.0) * scale
    overlap = (torch.minimum(j.unsqueeze(0) + 1.0, hi) - torch.maximum(j.unsqueeze(0), lo)).clamp_min(0.0)
    return overlap, scale


class FramesModel(nn.Module):
    """Raw frames → p(success): area resize, ``Tb − Ta``, centre crop, normalise, then ``network``.

    ``forward(ta, tb)``: two uint8 ``N x H x W x 3`` RGB tensors of the same size → ``N`` p.
    """

    def __init__(self, network: nn.Module, pre: PreprocessConfig) -> None:
        super().__init__()
        self.network = network
        self.pre = pre
        h, w = pre.resize_hw
        self.top, self.left = (h - pre.crop) // 2, (w - pre.crop) // 2
        self.mean: torch.Tensor
        self.std: torch.Tensor
        self.register_buffer("mean", torch.tensor(pre.mean, dtype=torch.float32).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(pre.std, dtype=torch.float32).view(1, 3, 1, 1))

    @staticmethod
    def _resized(frames: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor, inv_area: torch.Tensor,
                 half_up: torch.Tensor) -> torch.Tensor:
        """Area sums x ``1/area`` in float32, rounded like OpenCV (half up on its 2x2 path, else to even)."""
        x = frames.to(torch.float32).permute(0, 3, 1, 2)  # N x 3 x H x W
        v = torch.matmul(torch.matmul(rows, x), cols.t()) * inv_area  # N x 3 x S x S
        return torch.where(half_up, torch.floor(v + 0.5), torch.round(v))

    def forward(self, ta: torch.Tensor, tb: torch.Tensor) -> torch.Tensor:
        """Two uint8 ``N x H x W x 3`` frames → p(success) ``N``."""
        h, w = self.pre.resize_hw
        crop = self.pre.crop
        rows, sy = area_weights(ta.shape[1], h, self.top, crop)  # S x H
        cols, sx = area_weights(ta.shape[2], w, self.left, crop)  # S x W
        inv_area = 1.0 / (sy * sx)
        half_up = (sy == 2.0) & (sx == 2.0)
        d = (self._resized(tb, rows, cols, inv_area, half_up)
             - self._resized(ta, rows, cols, inv_area, half_up)) * (1.0 / 255.0)
        x = (d * self.pre.scale - self.mean) / self.std
        return self.network(x)


def _export(module: nn.Module, args: tuple[torch.Tensor, ...], path: Path, inputs: list[str],
            dynamic: dict[str, dict[int, str]]) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # legacy-exporter deprecation and tracer notes
        torch.onnx.export(module.eval(), args, str(path), dynamo=False, opset_version=ONNX_OPSET,
                          input_names=inputs, output_names=[ONNX_OUTPUT],
                          dynamic_axes={**dynamic, ONNX_OUTPUT: {0: "n"}})


def _session(path: Path) -> Any:
    import onnxruntime as ort  # only needed for exporting / the onnx backend

    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def write_network_onnx(model: nn.Module, path: Path, crop: int) -> float:
    """Export ``model`` (normalised ``N x 3 x S x S`` → ``N``, dynamic batch) and check it against PyTorch.

    Returns:
        The largest absolute difference between onnxruntime and PyTorch on a random batch.

    Raises:
        BundleError: the outputs differ by more than 1e-4.

    """
    example = torch.randn(2, 3, crop, crop, generator=torch.Generator().manual_seed(0))
    _export(model, (example,), path, [NETWORK_INPUT], {NETWORK_INPUT: {0: "n"}})
    check = torch.randn(3, 3, crop, crop, generator=torch.Generator().manual_seed(1))
    got = torch.from_numpy(_session(path).run([ONNX_OUTPUT], {NETWORK_INPUT: check.numpy()})[0])
    with torch.inference_mode():
        ref = model.eval()(check)
    diff = float((got - ref).abs().max())
    if not diff <= ONNX_TOLERANCE:
        raise BundleError(f"{path.name}: onnxruntime differs from PyTorch by {diff:.2e} > {ONNX_TOLERANCE}")
    return diff


def _check_frames(pre: PreprocessConfig) -> list[tuple[np.ndarray, np.ndarray]]:
    """Frame pairs the frames graph is checked on: at 5x the resize and at the resize itself.

    (Whole-number factors, where the graph's resize equals OpenCV's; see the module docstring.)
    """
    h, w = pre.resize_hw
    rng = np.random.default_rng(2)
    pairs = []
    for hh, ww in ((5 * h, 5 * w), (h, w)):
        base = rng.integers(0, 200, (hh, ww, 3), dtype=np.uint8)
        pressed = np.clip(base.astype(np.int16) + rng.integers(0, 56, (hh, ww, 3)), 0, 255).astype(np.uint8)
        pairs.append((base, pressed))
    return pairs


def write_frames_onnx(model: nn.Module, pre: PreprocessConfig, path: Path) -> float:
    """Export :class:`FramesModel` of ``model`` (dynamic batch, height, width) and check it.

    The check: onnxruntime on raw frame pairs (at 5x the resize and at the resize) against
    the package's own pipeline (OpenCV resize, then ``model`` in PyTorch).

    Returns:
        The largest absolute difference in p.

    Raises:
        BundleError: the outputs differ by more than 1e-4.

    """
    from tactile_grasp_predictor.preprocess import preprocess_pair

    frames = FramesModel(model, pre).eval()
    h, w = pre.resize_hw
    example = torch.zeros(1, 2 * h, 2 * w, 3, dtype=torch.uint8)
    dims = {0: "n", 1: "height", 2: "width"}
    _export(frames, (example, example), path, list(FRAMES_INPUTS), dict.fromkeys(FRAMES_INPUTS, dims))
    sess = _session(path)
    diff = 0.0
    for ta, tb in _check_frames(pre):
        got = sess.run([ONNX_OUTPUT], {"ta": ta[None], "tb": tb[None]})[0]
        with torch.inference_mode():
            ref = model.eval()(preprocess_pair(ta, tb, pre)).numpy()
        diff = max(diff, float(np.abs(got - ref).max()))
    if not diff <= ONNX_TOLERANCE:
        raise BundleError(f"{path.name}: the frames graph differs from the Predictor's pipeline by "
                          f"{diff:.2e} > {ONNX_TOLERANCE}")
    return diff
