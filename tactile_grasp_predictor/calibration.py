"""Post-hoc calibration of p(success): a monotone map from the probe's p to a probability one can trust.

A probe's p is ranked well (AUC) but often not calibrated: of the grasps it scores 0.8, far
fewer or more than 80 % succeed. :func:`fit_calibrator` fits a map on validation trials
(trials the probe was not fitted on), and :class:`Calibrator` applies it inside the model, so
the torch and ONNX backends and the exported graphs all give the calibrated p.

Kinds (``CALIBRATION_KINDS``):

- ``temperature``: ``p' = σ(logit(p) / T)``, one parameter; keeps the ranking and the 0.5 point.
- ``platt``: ``p' = σ(a · logit(p) + b)``, ``a > 0``; also moves the 0.5 point.
- ``isotonic``: a non-decreasing piecewise-linear map through the pool-adjacent-violators
  fit's block means (knots ``x``, values ``y``), constant outside the knots; the most
  flexible, wants a few hundred validation trials.

Stored as tensors (``calibration.safetensors``: ``a``, ``b`` or ``x``, ``y``), never pickled;
:meth:`Calibrator.from_tensors` checks them (finite, ``a > 0``, knots increasing in [0, 1],
values non-decreasing in [0, 1]) and raises :class:`~tactile_grasp_predictor.errors.BundleError`.

Example:
    >>> import numpy as np, torch
    >>> p = np.array([0.6, 0.7, 0.8, 0.9] * 25); y = np.array([0, 1, 0, 1] * 25)
    >>> cal = fit_calibrator("temperature", p, y)
    >>> float(cal(torch.tensor([0.9])).item()) < 0.9   # over-confident scores shrink
    True

"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import nn

from tactile_grasp_predictor.errors import BundleError, ConfigError

__all__ = ["CALIBRATION_KINDS", "MAX_KNOTS", "Calibrator", "fit_calibrator"]

CALIBRATION_KINDS = ("temperature", "platt", "isotonic")
#: Most knots an isotonic calibrator may hold (a validation set's size bounds it).
MAX_KNOTS = 100_000
_EPS = 1e-6


def _logit(p: torch.Tensor) -> torch.Tensor:
    q = p.clamp(_EPS, 1.0 - _EPS)
    return torch.log(q) - torch.log(1.0 - q)


class Calibrator(nn.Module):
    """A fitted monotone map p → calibrated p (``forward``: ``N`` → ``N``, traceable for ONNX)."""

    a: torch.Tensor  # temperature / platt: p' = σ(a · logit(p) + b)
    b: torch.Tensor
    x: torch.Tensor  # isotonic: knots and values
    y: torch.Tensor

    def __init__(self, kind: str, tensors: dict[str, torch.Tensor]) -> None:
        super().__init__()
        if kind not in CALIBRATION_KINDS:
            raise ConfigError(f"calibration {kind!r}: expected one of {', '.join(CALIBRATION_KINDS)}")
        self.kind = kind
        names = ("x", "y") if kind == "isotonic" else ("a", "b")
        for name in names:
            self.register_buffer(name, tensors[name].detach().to(torch.float32).reshape(-1).clone())

    def forward(self, p: torch.Tensor) -> torch.Tensor:
        """Calibrate ``N`` probabilities."""
        if self.kind != "isotonic":
            return torch.sigmoid(self.a * _logit(p) + self.b)
        x, y = self.x, self.y
        q = torch.minimum(torch.maximum(p, x[0]), x[-1])
        seg = (q.unsqueeze(1) >= x[1:-1].unsqueeze(0)).to(torch.int64).sum(dim=1)  # 0 .. K-2
        x0, x1, y0, y1 = x[seg], x[seg + 1], y[seg], y[seg + 1]
        t = (q - x0) / (x1 - x0)
        return y0 + t * (y1 - y0)

    def to_tensors(self) -> dict[str, torch.Tensor]:
        """Return the tensors to store (``a``, ``b`` or ``x``, ``y``; float32, contiguous)."""
        return {name: buf.detach().cpu().contiguous().clone() for name, buf in self.named_buffers()}

    def describe(self) -> str:
        """Describe the map in words (for logs and the manifest)."""
        if self.kind == "isotonic":
            return f"isotonic, {self.x.numel()} knots"
        if self.kind == "temperature":
            return f"temperature T = {1.0 / float(self.a):.4g}"
        return f"platt a = {float(self.a):.4g}, b = {float(self.b):.4g}"

    @classmethod
    def from_tensors(cls, kind: str, tensors: dict[str, torch.Tensor]) -> Calibrator:
        """Build a calibrator from stored tensors, checking every value.

        Raises:
            BundleError: unknown kind, missing or extra tensors, wrong shapes, values out of range.

        """
        if kind not in CALIBRATION_KINDS:
            raise BundleError(f"calibration kind {kind!r}: expected one of {', '.join(CALIBRATION_KINDS)}")
        names = {"x", "y"} if kind == "isotonic" else {"a", "b"}
        if set(tensors) != names:
            raise BundleError(f"{kind} calibration: tensors {sorted(tensors)}, expected {sorted(names)}")
        t = {k: v.to(torch.float64).reshape(-1) for k, v in tensors.items()}
        if not all(bool(torch.isfinite(v).all()) for v in t.values()):
            raise BundleError(f"{kind} calibration: a tensor holds NaN or inf")
        if kind == "isotonic":
            x, y = t["x"], t["y"]
            if not 2 <= x.numel() <= MAX_KNOTS or y.shape != x.shape:
                raise BundleError(f"isotonic calibration: x {tuple(x.shape)}, y {tuple(y.shape)}: expected "
                                  f"2..{MAX_KNOTS} knots each")
            if bool((x < 0).any() or (x > 1).any() or (torch.diff(x) <= 0).any()):
                raise BundleError("isotonic calibration: knots x must increase strictly within [0, 1]")
            if bool((y < 0).any() or (y > 1).any() or (torch.diff(y) < 0).any()):
                raise BundleError("isotonic calibration: values y must be non-decreasing within [0, 1]")
        else:
            a, b = t["a"], t["b"]
            if a.numel() != 1 or b.numel() != 1:
                raise BundleError(f"{kind} calibration: a and b must hold one value each")
            if not 1e-3 <= float(a) <= 1e3 or abs(float(b)) > 1e3:
                raise BundleError(f"{kind} calibration: a = {float(a):.4g} must be in [1e-3, 1e3] "
                                  f"(increasing) and |b| = {abs(float(b)):.4g} at most 1e3")
            if kind == "temperature" and float(b) != 0.0:
                raise BundleError("temperature calibration: b must be 0")
        return cls(kind, tensors)


def _fit_sigmoid(p: np.ndarray, y: np.ndarray, with_bias: bool) -> tuple[float, float]:
    """Minimise the validation log loss of ``σ(a · logit(p) + b)`` over ``a`` (and ``b``)."""
    z = _logit(torch.from_numpy(p).to(torch.float64))
    target = torch.from_numpy(y.astype(np.float64))
    log_a = torch.zeros((), dtype=torch.float64, requires_grad=True)
    b = torch.zeros((), dtype=torch.float64, requires_grad=with_bias)
    params = [log_a, b] if with_bias else [log_a]
    opt = torch.optim.LBFGS(params, lr=0.5, max_iter=200, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = nn.functional.binary_cross_entropy_with_logits(log_a.exp().clamp(1e-3, 1e3) * z + b, target)
        loss.backward()
        return loss

    opt.step(closure)
    a = float(log_a.detach().exp().clamp(1e-3, 1e3))
    return a, float(b.detach()) if with_bias else 0.0


def _pav(p: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pool adjacent violators: the non-decreasing least-squares fit of ``y`` on sorted ``p``.

    Returns knots (the blocks' mean p, strictly increasing) and values (the blocks' success rate).
    """
    order = np.argsort(p, kind="stable")
    ps, ys = p[order].astype(np.float64), y[order].astype(np.float64)
    # equal scores form one block first (a knot per distinct score)
    uniq, start = np.unique(ps, return_index=True)
    counts = np.diff(np.append(start, len(ps)))
    sums = np.add.reduceat(ys, start)
    blocks: list[list[float]] = []  # [sum_y, n, sum_p]
    for u, c, s in zip(uniq, counts, sums, strict=True):
        blocks.append([float(s), float(c), float(u) * float(c)])
        while len(blocks) > 1 and blocks[-2][0] / blocks[-2][1] >= blocks[-1][0] / blocks[-1][1]:
            s2, n2, p2 = blocks.pop()
            blocks[-1][0] += s2
            blocks[-1][1] += n2
            blocks[-1][2] += p2
    x = np.array([b[2] / b[1] for b in blocks])
    v = np.array([b[0] / b[1] for b in blocks])
    return x, v


def fit_calibrator(kind: str, p: Any, y: Any) -> Calibrator:
    """Fit a calibrator of ``kind`` on validation probabilities ``p`` and labels ``y`` (1 = success).

    ``temperature``/``platt``: least validation log loss (L-BFGS, in float64). ``isotonic``:
    pool-adjacent-violators (knots at the blocks' mean p, at least two: a single block
    becomes a flat map over [0, 1]).

    Raises:
        ConfigError: unknown kind, fewer than 2 trials, labels not 0/1, or p outside [0, 1].

    """
    if kind not in CALIBRATION_KINDS:
        raise ConfigError(f"calibration {kind!r}: expected one of {', '.join(CALIBRATION_KINDS)}")
    p_arr = np.asarray(p, dtype=np.float64).reshape(-1)
    y_arr = np.asarray(y).reshape(-1)
    if p_arr.shape != y_arr.shape or len(p_arr) < 2:
        raise ConfigError(f"calibration: {len(p_arr)} probabilities and {len(y_arr)} labels; "
                          "need >= 2 of each")
    if not np.isin(y_arr, (0, 1)).all() or not ((p_arr >= 0) & (p_arr <= 1)).all():
        raise ConfigError("calibration: labels must be 0/1 and probabilities within [0, 1]")
    if kind == "isotonic":
        x, v = _pav(p_arr, y_arr)
        if len(x) < 2:
            x, v = np.array([0.0, 1.0]), np.array([v[0], v[0]])
        x32 = x.astype(np.float32)
        keep = np.append(True, np.diff(x32) > 0)  # distinct in float32 too
        tensors = {"x": torch.from_numpy(x32[keep].copy()), "y": torch.from_numpy(v[keep].astype(np.float32))}
        return Calibrator.from_tensors(kind, tensors)
    a, b = _fit_sigmoid(p_arr, y_arr, with_bias=kind == "platt")
    if not (math.isfinite(a) and math.isfinite(b)):
        raise ConfigError(f"calibration {kind}: the fit diverged (a={a}, b={b})")
    return Calibrator.from_tensors(kind, {"a": torch.tensor([a]), "b": torch.tensor([b])})
