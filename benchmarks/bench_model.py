"""Model forward latency, batch 1: torch (NCHW vs channels-last) vs onnxruntime, and the probes.

Everything is measured in this run on random-weight bundles written here with the real
``write_bundle`` (the ``cpu`` input size: 480 x 640 frames → 96 x 128 → 96 crop; ResNet-18):

- ``forward``: p50/p99 ms of the network on one preprocessed ``1 x 3 x 96 x 96`` input,
  for torch NCHW, torch channels-last and onnxruntime (1 thread; ``TGP_BENCH_THREADS=1,2``
  adds 2 threads);
- ``preprocess``: one 480 x 640 pair → tensor (resize, Tb − Ta, crop, normalise);
- ``predict``: the whole ``Predictor.predict(ta, tb)`` (what the node calls);
- ``int8``: ``network_int8.onnx`` (``tgp export --quantize``: static INT8, calibrated here on 32
  random pairs) against the fp32 ``network.onnx``, forward and whole ``predict``, calls
  interleaved so both see the same load, with the ratio (the export's bar: >= 1.7x);
- ``probe``: the probes alone on one feature vector: KNN over a 6,000-sample bank (the
  paper's training-set size), SVM with 3,000 support vectors, MLP 512-256-1;
- ``paper size``: ResNet-18 at 224 px, channels-last, for reference.

Ratios are to the baseline measured in the same run. Run: ``.venv/bin/python -m benchmarks model``.
"""

from __future__ import annotations

import itertools
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from tactile_grasp_predictor.bundle import write_bundle
from tactile_grasp_predictor.metrics import percentiles
from tactile_grasp_predictor.models import Encoder
from tactile_grasp_predictor.predictor import Predictor
from tactile_grasp_predictor.preprocess import PreprocessConfig, preprocess_pair
from tactile_grasp_predictor.probes import KNNProbe, MLPProbe, Probe, SVMProbe

N_ITER = 60
N_WARM = 10
# Threads to measure at; "1,2" measures both (slow and noisy on a shared, loaded 2-core box).
THREADS = tuple(int(t) for t in os.environ.get("TGP_BENCH_THREADS", "1").split(","))


def _times(fn: Callable[[], object], n: int = N_ITER, warm: int = N_WARM) -> tuple[float, float]:
    for _ in range(warm):
        fn()
    ms = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        ms.append((time.perf_counter() - t0) * 1e3)
    q = percentiles(ms, (50, 99))
    return q["p50"], q["p99"]


def _probes(gen: torch.Generator) -> dict[str, Probe]:
    d = 512
    return {
        "knn (bank 6000, k 77)": KNNProbe(torch.randn(6000, d, generator=gen),
                                          (torch.rand(6000, generator=gen) > 0.5).float(), k=77),
        "svm (3000 SVs, rbf)": SVMProbe(torch.randn(3000, d, generator=gen), torch.randn(3000, generator=gen),
                                        0.0, kernel="rbf", gamma=1.0 / d),
        "mlp (512-256-1)": MLPProbe(
            [torch.randn(d, 256, generator=gen) / d**0.5, torch.randn(256, 1, generator=gen)],
            [torch.zeros(256), torch.zeros(1)],
        ),
    }


def _interleaved(fns: dict[str, Callable[[], object]], n: int = N_ITER) -> dict[str, tuple[float, float]]:
    """p50/p99 ms of each function, called in turn (both see the same load)."""
    for fn in fns.values():
        for _ in range(N_WARM):
            fn()
    ms: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(n):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            ms[name].append((time.perf_counter() - t0) * 1e3)
    return {k: (percentiles(v, (50, 99))["p50"], percentiles(v, (50, 99))["p99"]) for k, v in ms.items()}


def _int8(path: Path, pre: PreprocessConfig, rng: np.random.Generator, ta: np.ndarray, tb: np.ndarray,
          x: torch.Tensor) -> None:
    """Quantise the bundle's network graph and compare int8 with fp32 onnxruntime in this run."""
    from tactile_grasp_predictor.bundle import NETWORK_FILE, NETWORK_INT8_FILE, add_to_bundle
    from training.quantize import quantize_network

    frames = [rng.integers(0, 256, (480, 640, 3), dtype=np.uint8) for _ in range(33)]
    cal = np.concatenate([preprocess_pair(a, b, pre).numpy() for a, b in itertools.pairwise(frames)])
    quantize_network(path / NETWORK_FILE, path.parent / NETWORK_INT8_FILE, cal)
    add_to_bundle(path, {NETWORK_INT8_FILE: (path.parent / NETWORK_INT8_FILE).read_bytes()},
                  {"quantization": {"method": "benchmark", "accepted": False}})
    print(f"\nINT8 (network_int8.onnx, static, calibrated on {len(cal)} pairs) vs fp32 onnxruntime, "
          f"interleaved, ms")
    for threads in THREADS:
        fp32 = Predictor.from_bundle(path, backend="onnx", num_threads=threads)
        int8 = Predictor.from_bundle(path, backend="onnx_int8", num_threads=threads)
        fwd = _interleaved({"fp32": lambda f=fp32: f.predict_tensor(x),  # type: ignore[misc]
                            "int8": lambda f=int8: f.predict_tensor(x)})  # type: ignore[misc]
        full = _interleaved({"fp32": lambda f=fp32: f.predict(ta, tb),  # type: ignore[misc]
                             "int8": lambda f=int8: f.predict(ta, tb)})  # type: ignore[misc]
        for what, r in (("forward", fwd), ("predict (incl. preprocess)", full)):
            print(f"  {what:27s} {threads} thr: fp32 p50 {r['fp32'][0]:6.2f} p99 {r['fp32'][1]:6.2f} | "
                  f"int8 p50 {r['int8'][0]:6.2f} p99 {r['int8'][1]:6.2f} | "
                  f"int8 {r['fp32'][0] / r['int8'][0]:.2f}x faster at p50")
    torch.set_num_threads(THREADS[-1])


def main() -> None:
    gen = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    pre = PreprocessConfig.cpu()
    probes = _probes(gen)
    encoder = Encoder("resnet18").eval()
    rng = np.random.default_rng(0)
    ta = rng.integers(0, 256, (480, 640, 3), dtype=np.uint8)
    tb = rng.integers(0, 256, (480, 640, 3), dtype=np.uint8)
    x = preprocess_pair(ta, tb, pre)
    with tempfile.TemporaryDirectory() as tmp:
        path = write_bundle(Path(tmp) / "cpu", encoder, probes["mlp (512-256-1)"],
                            {"preprocessing": pre, "threshold": 0.5}, export_onnx=True)
        print(f"ResNet-18 + MLP bundle, input 1 x 3 x {pre.crop} x {pre.crop}, {N_ITER} calls each (ms)")
        print(f"{'forward':28s} {'threads':>7s} {'p50':>7s} {'p99':>7s}  ratio p50 to torch NCHW")
        results: dict[tuple[str, int], float] = {}
        for threads in THREADS:
            torch.set_num_threads(threads)
            for name, kwargs in (("torch NCHW", {"channels_last": False}), ("torch channels-last", {}),
                                 ("onnxruntime", {"backend": "onnx", "num_threads": threads})):
                pred = Predictor.from_bundle(path, **kwargs)  # type: ignore[arg-type]
                p50, p99 = _times(lambda pred=pred: pred.predict_tensor(x))  # type: ignore[misc]
                results[(name, threads)] = p50
                base = results[("torch NCHW", threads)]
                print(f"{name:28s} {threads:7d} {p50:7.2f} {p99:7.2f}  {base / p50:5.2f}x")
        t_run = THREADS[-1]
        torch.set_num_threads(t_run)
        for threads in THREADS:
            print(f"channels-last speed-up over NCHW ({threads} thr): "
                  f"{results[('torch NCHW', threads)] / results[('torch channels-last', threads)]:.2f}x; "
                  f"onnxruntime over channels-last: "
                  f"{results[('torch channels-last', threads)] / results[('onnxruntime', threads)]:.2f}x")

        pred = Predictor.from_bundle(path)
        p50, p99 = _times(lambda: preprocess_pair(ta, tb, pre))
        print(f"\npreprocess 480x640 pair → 1x3x96x96: p50 {p50:.2f} ms, p99 {p99:.2f} ms")
        p50, p99 = _times(lambda: pred.predict(ta, tb))
        print(f"Predictor.predict, torch channels-last, {t_run} thr, incl. preprocess: "
              f"p50 {p50:.2f} ms, p99 {p99:.2f} ms")
        onnx = Predictor.from_bundle(path, backend="onnx", num_threads=t_run)
        p50, p99 = _times(lambda: onnx.predict(ta, tb))
        print(f"Predictor.predict, onnxruntime, {t_run} thr, incl. preprocess:         "
              f"p50 {p50:.2f} ms, p99 {p99:.2f} ms")
        _int8(path, pre, rng, ta, tb, x)

    feats = torch.randn(1, 512, generator=gen)
    print(f"\nprobe alone on 1 x 512 features (torch, {t_run} thr):")
    mlp_p50 = None
    for name, probe in reversed(list(probes.items())):
        with torch.inference_mode():
            p50, p99 = _times(lambda probe=probe: probe(feats))  # type: ignore[misc]
        mlp_p50 = mlp_p50 or p50
        print(f"  {name:24s} p50 {p50:6.3f} ms  p99 {p99:6.3f} ms  ({p50 / mlp_p50:5.1f}x the MLP)")

    big = Encoder("resnet18").eval().to(memory_format=torch.channels_last)
    xb = torch.randn(1, 3, 224, 224).contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        p50, p99 = _times(lambda: big.features(xb), n=20, warm=3)
    print(f"\npaper size: ResNet-18 at 224 px, channels-last, {t_run} thr: "
          f"p50 {p50:.2f} ms, p99 {p99:.2f} ms "
          f"({p50 / results[('torch channels-last', t_run)]:.1f}x the 96 px forward)")


if __name__ == "__main__":
    main()
