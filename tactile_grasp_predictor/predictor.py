"""The predictor: a verified bundle → p(success) from raw (Ta, Tb) frames.

Frames of any size go through the shared preprocessing
(:func:`~tactile_grasp_predictor.preprocess.preprocess_pair`) with the bundle's recorded
parameters, then through the network with the chosen backend:

- ``torch`` (default): the bundle's safetensors weights, eval mode, ``torch.inference_mode``,
  channels-last memory format (10–40 % faster on CPU), CPU or CUDA.
- ``onnx``: the bundle's network graph (``network.onnx``; format 1: ``model.onnx``) in
  onnxruntime (CPU, or CUDA where the CUDA execution provider is installed).
- ``onnx_int8``: the bundle's ``network_int8.onnx`` (``tgp export --quantize``), CPU.
- ``auto``: on the CPU, ``onnx_int8`` when the bundle's ``quantization.accepted`` says it met
  the speed and accuracy bar at export, else ``onnx`` when the bundle has the network graph and
  onnxruntime is installed (its ResNet-18 forward is ~1.5x faster than torch's on this CPU,
  ``python -m benchmarks model``), otherwise ``torch``. :attr:`Predictor.backend` names the one chosen.

Bad frames raise :class:`~tactile_grasp_predictor.errors.FrameError`; a bad bundle raises
:class:`~tactile_grasp_predictor.errors.BundleError`; an impossible backend/device choice
raises :class:`~tactile_grasp_predictor.errors.ConfigError`; a model output that is not a
probability (NaN, inf, outside [0, 1]) raises :class:`~tactile_grasp_predictor.errors.ModelError`,
which :func:`~tactile_grasp_predictor.decision.decide` turns into ABORT ``model_error``.

Example:
    >>> # predictor = Predictor.from_bundle("bundles/cpu")
    >>> # p = predictor.predict(ta, tb)  # ta, tb: RGB uint8 H x W x 3
    >>> # lift = p >= predictor.threshold

"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np
import torch

from tactile_grasp_predictor.bundle import ONNX_INPUT, ONNX_OUTPUT, Bundle, load_bundle
from tactile_grasp_predictor.errors import BundleError, ConfigError, FrameError, ModelError
from tactile_grasp_predictor.preprocess import PreprocessConfig, preprocess_pair

__all__ = ["BACKENDS", "BACKEND_CHOICES", "Predictor", "choose_backend", "resolve_device"]

BACKENDS = ("torch", "onnx", "onnx_int8")  # the concrete backends
BACKEND_CHOICES = ("auto", *BACKENDS)  # what callers may ask for


def choose_backend(backend: str, bundle: Bundle, device: torch.device) -> str:
    """Return the concrete backend for ``backend`` (``auto``: int8 or onnx on CPU where the bundle allows)."""
    if backend not in BACKEND_CHOICES:
        raise ConfigError(f"backend {backend!r}: expected one of {BACKEND_CHOICES}")
    if backend != "auto":
        return backend
    if device.type != "cpu" or bundle.onnx_path is None:
        return "torch"
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return "torch"
    accepted = (bundle.manifest.get("quantization") or {}).get("accepted") is True
    return "onnx_int8" if accepted and bundle.int8_onnx_path is not None else "onnx"


def resolve_device(device: str) -> torch.device:
    """Map ``"cpu" | "cuda" | "cuda:N" | "auto"`` to a device; CUDA only if asked and present."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cpu":
        return torch.device("cpu")
    if device == "cuda" or device.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise ConfigError(f"device {device!r}: CUDA is not available here; use 'cpu' or 'auto'")
        try:
            dev = torch.device(device)
        except RuntimeError as exc:
            raise ConfigError(f"device {device!r}: {exc}") from exc
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ConfigError(f"device {device!r}: only {torch.cuda.device_count()} CUDA device(s)")
        return dev
    raise ConfigError(f"device {device!r}: expected 'cpu', 'cuda', 'cuda:N' or 'auto'")


def limit_cpu_threads(n: int) -> None:
    """Cap the thread pools of torch and OpenCV, the libraries preprocessing runs on, at ``n``.

    Both settings are process-wide. A process that predicts one pair at a time (the node)
    wants ``n = 1``: a 96 x 128 difference is too small to gain from a second thread, and on
    a small computer a pool's helper threads wait for a core (the calling thread spinning
    meanwhile) whenever other threads are busy. Measured on this 2-core machine with 60 Hz
    640 x 480 frames streaming into the node: preprocessing p50 3.2 / p99 30 ms with the
    libraries' default pools, 1.2 / 1.9 ms capped at one thread (docs/node.md).
    """
    torch.set_num_threads(n)
    cv2.setNumThreads(n)


class Predictor:
    """p(success) of a grasp from its Ta/Tb frames, with a bundle's model and preprocessing.

    Attributes:
        model_id: the bundle's model id (recorded in every decision).
        threshold: the bundle's decision threshold (LIFT iff ``p >= threshold``).
        preprocess: the bundle's :class:`PreprocessConfig`.
        backend: the backend in use, ``"torch"``, ``"onnx"`` or ``"onnx_int8"`` (``"auto"`` resolved).
        device: the device the network runs on (``"cpu"``, ``"cuda"``, ``"cuda:0"``, …).
        bundle: the loaded :class:`~tactile_grasp_predictor.bundle.Bundle` (manifest, paths).

    """

    def __init__(
        self,
        bundle: Bundle,
        backend: str = "torch",
        device: str = "cpu",
        num_threads: int | None = None,
        channels_last: bool = True,
    ) -> None:
        if num_threads is not None and num_threads < 1:
            raise ConfigError(f"num_threads {num_threads}: must be >= 1")
        self.bundle = bundle
        self.model_id: str = bundle.model_id
        self.threshold: float = bundle.threshold
        self.preprocess: PreprocessConfig = bundle.preprocess
        self._channels_last = channels_last
        self._session: Any = None
        self._dev = resolve_device(device)
        self.device: str = str(self._dev)
        backend = choose_backend(backend, bundle, self._dev)
        self.backend: str = backend
        if num_threads is not None:
            limit_cpu_threads(num_threads)
        if backend == "torch":
            model = bundle.model.to(self._dev).eval()
            if channels_last:
                model = model.to(memory_format=torch.channels_last)
            self._model = model
        else:
            self._session = self._onnx_session(num_threads)

    def _onnx_session(self, num_threads: int | None) -> Any:
        path = self.bundle.int8_onnx_path if self.backend == "onnx_int8" else self.bundle.onnx_path
        if path is None:
            what = "network_int8.onnx (export with --quantize)" if self.backend == "onnx_int8" else \
                "model.onnx (export it with ONNX)"
            raise BundleError(f"{self.bundle.path}: no {what} in this bundle")
        try:
            import onnxruntime as ort
        except ImportError as exc:
            raise ConfigError("backend 'onnx': onnxruntime is not installed") from exc
        if self._dev.type == "cuda" and self.backend == "onnx_int8":
            raise ConfigError("backend 'onnx_int8': CPU only")
        if self._dev.type == "cuda":
            if "CUDAExecutionProvider" not in ort.get_available_providers():
                raise ConfigError("backend 'onnx' on CUDA: onnxruntime has no CUDAExecutionProvider here")
            providers: list[Any] = [("CUDAExecutionProvider", {"device_id": self._dev.index or 0})]
        else:
            providers = ["CPUExecutionProvider"]
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = num_threads or min(4, os.cpu_count() or 1)
        opts.inter_op_num_threads = 1
        try:
            return ort.InferenceSession(str(path), opts, providers=providers)
        except Exception as exc:  # onnxruntime raises its own exception types on bad models
            raise BundleError(f"{path}: onnxruntime cannot load it ({exc})") from exc

    @classmethod
    def from_bundle(
        cls,
        path: str | os.PathLike[str],
        backend: str = "torch",
        device: str = "cpu",
        num_threads: int | None = None,
        channels_last: bool = True,
    ) -> Predictor:
        """Load and verify the bundle at ``path`` and build a predictor on it.

        Args:
            path: bundle directory.
            backend: ``"torch"``, ``"onnx"`` (needs the bundle's ONNX graphs), ``"onnx_int8"``
                (needs ``network_int8.onnx``) or ``"auto"`` (int8 where the bundle accepted it, else
                onnx on CPU where possible, else torch).
            device: ``"cpu"`` (default), ``"cuda"``/``"cuda:N"`` (error if absent) or
                ``"auto"`` (CUDA if present).
            num_threads: CPU threads: caps torch's and OpenCV's pools, process-wide (see
                :func:`limit_cpu_threads`), and sets the onnx session's intra-op threads.
                ``None`` leaves the libraries' settings.
            channels_last: run convolutions in channels-last memory format (torch backend).

        """
        if backend not in BACKEND_CHOICES:  # fail before the (slower) bundle load
            raise ConfigError(f"backend {backend!r}: expected one of {BACKEND_CHOICES}")
        return cls(load_bundle(path), backend, device, num_threads, channels_last)

    def predict_tensor(self, x: torch.Tensor) -> np.ndarray:
        """p(success) ``N`` (float64) of already preprocessed ``N x 3 x S x S`` inputs.

        Raises:
            FrameError: the input is not ``N x 3 x S x S``.
            ModelError: an output is not a probability (NaN, inf, outside [0, 1]).

        """
        s = self.preprocess.crop
        if x.ndim != 4 or tuple(x.shape[1:]) != (3, s, s):
            raise FrameError(f"input tensor: expected N x 3 x {s} x {s}, got {tuple(x.shape)}")
        if self._session is not None:
            out = self._session.run([ONNX_OUTPUT], {ONNX_INPUT: x.detach().cpu().float().numpy()})[0]
            p = np.asarray(out, dtype=np.float64).reshape(-1)
        else:
            with torch.inference_mode():
                xin = x.to(self._dev, torch.float32)
                if self._channels_last:
                    xin = xin.contiguous(memory_format=torch.channels_last)
                p = self._model(xin).detach().to("cpu", torch.float64).numpy().reshape(-1)  # N
        return self._checked(p, int(x.shape[0]))

    def _checked(self, p: np.ndarray, n: int) -> np.ndarray:
        """Return ``p`` if it holds ``n`` probabilities, else raise :class:`ModelError` naming the first."""
        if p.shape != (n,):
            raise ModelError(f"model {self.model_id}: {p.shape[0]} outputs for {n} inputs")
        bad = np.flatnonzero(~((p >= 0.0) & (p <= 1.0)))  # NaN fails both comparisons
        if bad.size:
            i = int(bad[0])
            raise ModelError(f"model {self.model_id}: p[{i}] = {float(p[i])!r} is not a probability "
                             f"in [0, 1] ({bad.size} of {n} outputs)")
        return p

    def predict(self, ta: np.ndarray, tb: np.ndarray) -> float:
        """p(success) from the RGB uint8 ``H x W x 3`` frames at Ta and Tb (any size, same shape)."""
        return float(self.predict_tensor(preprocess_pair(ta, tb, self.preprocess))[0])

    def predict_batch(self, tas: Sequence[np.ndarray] | np.ndarray,
                      tbs: Sequence[np.ndarray] | np.ndarray) -> np.ndarray:
        """p(success) ``N`` for N pairs (lists of frames, or ``N x H x W x 3`` arrays)."""
        if len(tas) != len(tbs):
            raise FrameError(f"ta/tb: {len(tas)} Ta frames but {len(tbs)} Tb frames")
        if len(tas) == 0:
            return np.zeros(0, dtype=np.float64)
        x = torch.cat([preprocess_pair(a, b, self.preprocess) for a, b in zip(tas, tbs, strict=True)])
        return self.predict_tensor(x)

    def warm_up(self, iterations: int = 3, frame_hw: tuple[int, int] = (480, 640)) -> float:
        """Run a few predictions on random frames (allocations, kernels); return the last one's ms."""
        rng = np.random.default_rng(0)
        ta = rng.integers(0, 256, (*frame_hw, 3), dtype=np.uint8)
        tb = rng.integers(0, 256, (*frame_hw, 3), dtype=np.uint8)
        ms = 0.0
        for _ in range(max(1, iterations)):
            t0 = time.perf_counter()
            self.predict(ta, tb)
            ms = (time.perf_counter() - t0) * 1e3
        return ms

    def __repr__(self) -> str:
        return f"Predictor(model_id={self.model_id!r}, backend={self.backend!r}, device={self.device!r})"
