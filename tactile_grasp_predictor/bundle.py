"""Model bundles: a directory the node loads, with nothing to unpickle.

Layout (format version 2)::

    bundle/
      manifest.json         format_version, model_id, created, architecture, input,
                            preprocessing, probe {kind, params}, threshold, training_method,
                            config, data_fingerprint, metrics, onnx, provenance, trigger,
                            files {name: sha256}
      encoder.safetensors   backbone state dict (keys ``backbone.*``)
      probe.safetensors     probe tensors (see :func:`~tactile_grasp_predictor.probes.probe_to_tensors`)
      model.onnx            optional: uint8 frames ``ta``, ``tb`` (``N x H x W x 3``, any size) →
                            p(success) ``N``, preprocessing in the graph (:mod:`.onnx_graph`)
      network.onnx          with model.onnx: normalised difference ``N x 3 x S x S`` → p(success)
                            ``N`` (what the Predictor's ``onnx`` backend runs)
      network_int8.onnx     optional (``tgp export --quantize``): network.onnx statically quantised
                            to INT8 (manifest ``quantization``: speed, accuracy, accepted)
      calibration.safetensors  optional: the calibrator's tensors (manifest ``calibration``;
                            :mod:`~tactile_grasp_predictor.calibration`), part of every graph

Format 1 (still read): no ``provenance``/``trigger``; its ``model.onnx`` is the network graph.

:func:`write_bundle` writes into a temporary sibling directory and renames it into place,
so a reader never sees a half-written bundle. :func:`load_bundle` treats a bundle as
untrusted input: the manifest is checked against its schema
(:mod:`~tactile_grasp_predictor.bundle_manifest`: types, finite ranges, sizes); only regular
files are read (no symlinks, devices or pipes), each after its size is checked against what
the architecture's weights need; every sha256 is verified before anything is built; every
tensor must be finite. Any failure is a :class:`~tactile_grasp_predictor.errors.BundleError`
naming the file (and field) at fault.

Example:
    >>> from tactile_grasp_predictor.models import ARCHS, Encoder
    >>> from tactile_grasp_predictor.preprocess import PreprocessConfig
    >>> # path = write_bundle("out/b", Encoder("resnet18"), probe,
    >>> #                     {"preprocessing": PreprocessConfig.cpu(), "threshold": 0.5})
    >>> # bundle = load_bundle(path); bundle.model(x)  # N x 3 x 96 x 96 → N

"""

from __future__ import annotations

import datetime as _dt
import functools
import hashlib
import importlib.metadata
import json
import os
import platform
import shutil
import stat
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save
from torch import nn

from tactile_grasp_predictor.bundle_manifest import FORMAT_VERSION, check_manifest, parse_manifest
from tactile_grasp_predictor.calibration import Calibrator
from tactile_grasp_predictor.errors import BundleError, ConfigError
from tactile_grasp_predictor.models import ARCHS, Encoder
from tactile_grasp_predictor.onnx_graph import (
    NETWORK_INPUT,
    ONNX_OPSET,
    ONNX_OUTPUT,
    write_frames_onnx,
    write_network_onnx,
)
from tactile_grasp_predictor.preprocess import PreprocessConfig
from tactile_grasp_predictor.probes import Probe, probe_from_tensors, probe_to_tensors

__all__ = [
    "CALIBRATION_FILE",
    "ENCODER_FILE",
    "FORMAT_VERSION",
    "MANIFEST_FILE",
    "NETWORK_FILE",
    "NETWORK_INT8_FILE",
    "ONNX_FILE",
    "ONNX_INPUT",
    "ONNX_OUTPUT",
    "PROBE_FILE",
    "Bundle",
    "GraspModel",
    "add_to_bundle",
    "load_bundle",
    "provenance",
    "read_manifest",
    "read_regular_file",
    "write_bundle",
    "write_onnx",
]

MANIFEST_FILE = "manifest.json"
ENCODER_FILE = "encoder.safetensors"
PROBE_FILE = "probe.safetensors"
ONNX_FILE = "model.onnx"
NETWORK_FILE = "network.onnx"
NETWORK_INT8_FILE = "network_int8.onnx"
CALIBRATION_FILE = "calibration.safetensors"
ONNX_INPUT = NETWORK_INPUT  # the network graph's input (format 1: model.onnx's)
#: Size limits checked before a file is read (the encoder's follow from its architecture).
MAX_MANIFEST_BYTES = 1 << 20
MAX_PROBE_BYTES = 256 << 20  # a KNN bank of 9,296 x 2048 float32 features is 76 MB
MAX_OTHER_FILE_BYTES = 64 << 20
SAFETENSORS_HEADER_MAX = 1 << 20

_CALLER_FIELDS = {"model_id", "preprocessing", "threshold", "training_method", "config", "data_fingerprint",
                  "metrics", "notes", "trigger", "calibration"}


class GraspModel(nn.Module):
    """The network part of the pipeline: normalised difference → encoder features → probe → p.

    ``forward``: ``N x 3 x S x S`` float32 → ``N`` probabilities of success (calibrated when
    the bundle has a calibrator).
    """

    def __init__(self, encoder: Encoder, probe: Probe, calibrator: Calibrator | None = None) -> None:
        super().__init__()
        if probe.in_dim != encoder.feat_dim:
            raise BundleError(f"probe input dim {probe.in_dim} != encoder feature dim {encoder.feat_dim}")
        self.encoder = encoder
        self.probe = probe
        self.calibrator = calibrator

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Normalised ``N x 3 x S x S`` → p(success) ``N``."""
        p = self.probe(self.encoder.features(x))
        return p if self.calibrator is None else self.calibrator(p)


@dataclass(frozen=True)
class Bundle:
    """A loaded, verified bundle; ``model`` is on the CPU in eval mode.

    ``onnx_path`` is the network graph the Predictor's ``onnx`` backend runs (normalised
    tensor in); ``frames_onnx_path`` the frames graph (uint8 frames in; format 2 only).
    """

    path: Path
    manifest: dict[str, Any]
    model: GraspModel
    preprocess: PreprocessConfig
    threshold: float
    model_id: str
    onnx_path: Path | None
    frames_onnx_path: Path | None = None
    int8_onnx_path: Path | None = None

    @property
    def encoder(self) -> Encoder:
        """The encoder (backbone only: a bundle stores no projection head)."""
        return self.model.encoder

    @property
    def probe(self) -> Probe:
        """The probe on pooled features."""
        return self.model.probe


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _encoder_tensors(encoder: Encoder) -> dict[str, torch.Tensor]:
    state = encoder.backbone.state_dict()
    return {f"backbone.{k}": v.detach().cpu().contiguous().clone() for k, v in state.items()}


def _json_ready(value: Any, field: str) -> Any:
    try:
        return json.loads(json.dumps(value, allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"manifest field {field!r}: not JSON-serialisable ({exc})") from exc


def write_onnx(model: GraspModel, path: Path, crop: int, opset: int = ONNX_OPSET) -> float:
    """Export the network graph (normalised ``N x 3 x S x S`` → ``N``) and check it against PyTorch.

    Returns the largest absolute difference (:func:`~.onnx_graph.write_network_onnx`; ``opset`` is fixed).
    """
    if opset != ONNX_OPSET:
        raise ConfigError(f"opset {opset}: this package exports opset {ONNX_OPSET}")
    return write_network_onnx(model, path, crop)


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def provenance() -> dict[str, str | None]:
    """Return the versions of this package and the libraries a bundle is written with."""
    import cv2
    import numpy as np

    from tactile_grasp_predictor import __version__

    return {"package": __version__, "python": platform.python_version(), "torch": torch.__version__,
            "onnx": _version("onnx"), "onnxruntime": _version("onnxruntime"), "numpy": np.__version__,
            "opencv": cv2.__version__}


def write_bundle(
    out_dir: str | os.PathLike[str],
    encoder: Encoder,
    probe: Probe,
    manifest_fields: Mapping[str, Any],
    export_onnx: bool = False,
    overwrite: bool = False,
    calibrator: Calibrator | None = None,
) -> Path:
    """Write a bundle directory atomically and return its path.

    Args:
        out_dir: the bundle directory to create.
        encoder: the trained encoder (its backbone is stored; a projection head is not).
        probe: the fitted probe on the encoder's pooled features.
        manifest_fields: ``preprocessing`` (:class:`PreprocessConfig` or its dict) and
            ``threshold`` (in [0, 1]) are required; optional ``model_id``,
            ``training_method``, ``config``, ``data_fingerprint``, ``metrics``, ``notes``
            (JSON-serialisable), ``trigger`` (``{"source": text, "settings": {TriggerConfig
            field: value}}``: how the training frames were taken; checked by the schema).
        export_onnx: also write ``network.onnx`` (checked against PyTorch within 1e-4) and
            ``model.onnx``, the frames graph (checked against the Predictor's pipeline within 1e-4).
        overwrite: replace an existing bundle at ``out_dir`` (else it is an error).
        calibrator: a fitted :class:`~tactile_grasp_predictor.calibration.Calibrator` applied
            to the probe's p (stored in ``calibration.safetensors``; the threshold applies to
            the calibrated p). Manifest ``calibration`` records its kind; pass how it was
            fitted as ``manifest_fields["calibration"]`` (``fitted_on``, ``n``).

    Raises:
        ConfigError: missing/unknown manifest fields, bad threshold, ``out_dir`` exists.

    """
    out = Path(out_dir)
    unknown = sorted(set(manifest_fields) - _CALLER_FIELDS)
    if unknown:
        raise ConfigError(f"manifest fields {unknown}: unknown; allowed: {sorted(_CALLER_FIELDS)}")
    for name in ("preprocessing", "threshold"):
        if name not in manifest_fields:
            raise ConfigError(f"manifest field {name!r}: required")
    pre = manifest_fields["preprocessing"]
    pre_cfg = pre if isinstance(pre, PreprocessConfig) else PreprocessConfig.from_dict(pre)
    threshold = manifest_fields["threshold"]
    if not isinstance(threshold, (int, float)) or not (0.0 <= float(threshold) <= 1.0):
        raise ConfigError(f"manifest field 'threshold': {threshold!r} must be a number in [0, 1]")
    if probe.in_dim != encoder.feat_dim:
        raise ConfigError(f"probe input dim {probe.in_dim} != encoder feature dim {encoder.feat_dim}")
    if out.exists() and not overwrite:
        raise ConfigError(f"{out}: already exists (pass overwrite=True to replace it)")

    enc_bytes = st_save(_encoder_tensors(encoder), metadata={"format": "pt"})  # one key: byte-stable
    probe_tensors, probe_params = probe_to_tensors(probe)
    probe_bytes = st_save(probe_tensors, metadata={"format": "pt"})
    files = {ENCODER_FILE: _sha256(enc_bytes), PROBE_FILE: _sha256(probe_bytes)}
    cal_bytes = b""
    calibration = None
    if calibrator is not None:
        cal_bytes = st_save(calibrator.to_tensors(), metadata={"format": "pt"})
        files[CALIBRATION_FILE] = _sha256(cal_bytes)
        calibration = {**(manifest_fields.get("calibration") or {}), "kind": calibrator.kind}
    elif manifest_fields.get("calibration") is not None:
        raise ConfigError("manifest field 'calibration': given without a calibrator")
    model_id = str(manifest_fields.get("model_id") or "")
    if not model_id:
        digest = _sha256((files[ENCODER_FILE] + files[PROBE_FILE]).encode())[:12]
        model_id = f"{encoder.arch}-{probe.kind}-{digest}"

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        blobs = ((ENCODER_FILE, enc_bytes), (PROBE_FILE, probe_bytes), (CALIBRATION_FILE, cal_bytes))
        for name, data in blobs:
            if name in files:
                _write_synced(tmp / name, data)
        onnx_info = None
        if export_onnx:
            model = GraspModel(encoder, probe, calibrator).to("cpu").eval()
            onnx_info = {"opset": ONNX_OPSET,
                         "max_abs_diff_vs_torch": write_network_onnx(model, tmp / NETWORK_FILE, pre_cfg.crop),
                         "frames_max_abs_diff": write_frames_onnx(model, pre_cfg, tmp / ONNX_FILE)}
            for name in (NETWORK_FILE, ONNX_FILE):
                files[name] = _sha256((tmp / name).read_bytes())
        manifest: dict[str, Any] = {
            "format_version": FORMAT_VERSION,
            "model_id": model_id,
            "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "architecture": encoder.architecture(),
            "input": {
                "frames": "RGB uint8 H x W x 3 (any size): Ta before contact, Tb closed before lift",
                "tensor": f"N x 3 x {pre_cfg.crop} x {pre_cfg.crop} float32, normalised Tb - Ta",
                "size": pre_cfg.crop,
            },
            "preprocessing": pre_cfg.to_dict(),
            "probe": {"kind": probe.kind, "params": _json_ready(probe_params, "probe.params")},
            "threshold": float(threshold),
            "training_method": _json_ready(manifest_fields.get("training_method"), "training_method"),
            "config": _json_ready(manifest_fields.get("config"), "config"),
            "data_fingerprint": _json_ready(manifest_fields.get("data_fingerprint"), "data_fingerprint"),
            "metrics": _json_ready(manifest_fields.get("metrics"), "metrics"),
            "notes": _json_ready(manifest_fields.get("notes"), "notes"),
            "onnx": onnx_info,
            "provenance": provenance(),
            "trigger": _json_ready(manifest_fields.get("trigger"), "trigger"),
            "calibration": _json_ready(calibration, "calibration"),
            "files": files,
        }
        try:
            check_manifest(manifest)  # what the reader will refuse is refused here, naming the field
        except BundleError as exc:
            raise ConfigError(f"manifest: {exc}") from exc
        _write_synced(tmp / MANIFEST_FILE, (json.dumps(manifest, indent=2, sort_keys=False) + "\n").encode())
        if out.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
            old.rmdir()
            out.rename(old)
            tmp.rename(out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def add_to_bundle(path: str | os.PathLike[str], files: Mapping[str, bytes],
                  fields: Mapping[str, Any]) -> None:
    """Add files and manifest fields to a written bundle (e.g. ``network_int8.onnx`` and ``quantization``).

    Each file is written (synced) before the manifest that lists it; the new manifest, checked
    against the schema, replaces the old one atomically, so a reader sees the bundle before
    or after, never between. Only :data:`NETWORK_INT8_FILE` and the ``quantization`` and
    ``notes`` fields may be added.

    Raises:
        ConfigError: another file or field, or a manifest the schema refuses.
        BundleError: the bundle's manifest cannot be read.

    """
    root = Path(path)
    manifest = read_manifest(root)
    if set(files) - {NETWORK_INT8_FILE} or set(fields) - {"quantization", "notes"}:
        raise ConfigError(f"add_to_bundle: files {sorted(files)}, fields {sorted(fields)}: only "
                          f"{NETWORK_INT8_FILE} and quantization/notes can be added")
    for name, data in files.items():
        _write_synced(root / name, data)
        manifest["files"][name] = _sha256(data)
    manifest.update({k: _json_ready(v, k) for k, v in fields.items()})
    try:
        check_manifest(manifest)
    except BundleError as exc:
        raise ConfigError(f"manifest: {exc}") from exc
    tmp = root / f".{MANIFEST_FILE}.tmp"
    _write_synced(tmp, (json.dumps(manifest, indent=2) + "\n").encode())
    tmp.replace(root / MANIFEST_FILE)


def _write_synced(path: Path, data: bytes) -> None:
    with path.open("wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def read_regular_file(path: Path, limit: int, at_least: int = 0) -> bytes:
    """Read a file that must be a regular file (no symlink, device, FIFO) of ``at_least..limit`` bytes.

    The size is checked from the file's metadata before a byte is read, and again on the
    open descriptor (``O_NOFOLLOW``: a symlink swapped in meanwhile is refused too).

    Raises:
        BundleError: naming the file: missing, not a regular file, too small or too large.

    """
    try:
        st = os.lstat(path)
    except FileNotFoundError as exc:
        raise BundleError(f"{path}: missing") from exc
    except OSError as exc:
        raise BundleError(f"{path}: unreadable ({exc})") from exc

    def judge(mode: int, size: int) -> None:
        if stat.S_ISLNK(mode):
            raise BundleError(f"{path}: is a symbolic link; a bundle holds regular files only")
        if not stat.S_ISREG(mode):
            raise BundleError(f"{path}: not a regular file (a directory, device or pipe)")
        if not at_least <= size <= limit:
            raise BundleError(f"{path}: {size} bytes, expected {at_least}..{limit} (refused before reading)")

    judge(st.st_mode, st.st_size)
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)  # a FIFO must not block
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        raise BundleError(f"{path}: cannot open ({exc})") from exc
    with os.fdopen(fd, "rb") as fh:
        fst = os.fstat(fh.fileno())
        judge(fst.st_mode, fst.st_size)
        data = fh.read(fst.st_size)
        grown = fh.read(1)
    if len(data) != fst.st_size or grown:
        raise BundleError(f"{path}: changed while being read ({fst.st_size} bytes, read {len(data)})")
    return data


def read_manifest(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read ``manifest.json`` of a bundle directory and check it against the schema (no hashing).

    The schema is :data:`~tactile_grasp_predictor.bundle_manifest.MANIFEST_FIELDS`.

    Raises:
        BundleError: naming the manifest and the field at fault.

    """
    root = Path(path)
    if not root.is_dir():
        raise BundleError(f"{root}: not a bundle directory (missing or not a directory)")
    mpath = root / MANIFEST_FILE
    data = read_regular_file(mpath, MAX_MANIFEST_BYTES)
    try:
        manifest = parse_manifest(data.decode("utf-8"))
        check_manifest(manifest)
    except UnicodeDecodeError as exc:
        raise BundleError(f"{mpath}: unreadable or not JSON (not UTF-8: {exc})") from exc
    except BundleError as exc:
        msg = str(exc).removeprefix("manifest: ")
        raise BundleError(f"{mpath}: {msg}") from exc
    return manifest


def _size_limits(name: str, encoder_bytes: int, probe_bytes: int) -> tuple[int, int]:
    """``(at_least, limit)`` bytes of a listed file, relative to the weights the architecture needs."""
    if name == ENCODER_FILE:  # the tensors' bytes, plus the safetensors header
        return encoder_bytes, encoder_bytes + SAFETENSORS_HEADER_MAX
    if name == PROBE_FILE:
        return 0, MAX_PROBE_BYTES
    if name in (ONNX_FILE, NETWORK_FILE, NETWORK_INT8_FILE):  # the weights in another container
        return 0, encoder_bytes + probe_bytes + SAFETENSORS_HEADER_MAX * 16
    return 0, MAX_OTHER_FILE_BYTES


@functools.cache
def _encoder_bytes(arch: str) -> int:
    """Bytes of ``arch``'s backbone tensors (what its ``encoder.safetensors`` must hold)."""
    _, meta = _encoder(arch)
    return sum(t.numel() * t.element_size() for t in meta.values())


def _read_verified(root: Path, name: str, expected: str, limits: tuple[int, int]) -> bytes:
    fpath = root / name
    data = read_regular_file(fpath, limits[1], limits[0])
    actual = _sha256(data)
    if actual != expected.lower():
        raise BundleError(f"{fpath}: sha256 mismatch (manifest {expected[:16]}…, file {actual[:16]}…)")
    return data


def _safetensors(data: bytes, fpath: Path) -> dict[str, torch.Tensor]:
    """Parse safetensors bytes; every floating tensor must be finite, no complex tensors."""
    try:
        tensors = st_load(data)
    except Exception as exc:  # safetensors raises its own error types on corrupt headers
        raise BundleError(f"{fpath}: not a valid safetensors file ({str(exc)[:200]})") from exc
    for name, t in tensors.items():
        if t.is_complex():
            raise BundleError(f"{fpath}: tensor {name!r} is complex ({t.dtype})")
        if t.is_floating_point() and not _all_finite(t):
            raise BundleError(f"{fpath}: tensor {name!r} contains NaN or inf")
    return tensors


def _all_finite(t: torch.Tensor) -> bool:
    """Tell whether every element is finite: a float64 sum is (fast), unless it overflowed (then look)."""
    if t.numel() == 0 or bool(torch.isfinite(t.sum(dtype=torch.float64))):
        return True
    return bool(torch.isfinite(t).all())


def _encoder(arch: str) -> tuple[Encoder, dict[str, torch.Tensor]]:
    """Build an encoder skeleton on the meta device (no memory, no random init); return it and its state."""
    with torch.device("meta"):
        encoder = Encoder(arch)
    return encoder, encoder.backbone.state_dict()


def _load_encoder(arch: str, skeleton: Encoder, meta: Mapping[str, torch.Tensor],
                  tensors: Mapping[str, torch.Tensor], fpath: Path) -> Encoder:
    """Fill the skeleton with the file's tensors (strict names and shapes; the skeleton's dtypes)."""
    prefix = "backbone."
    if not all(k.startswith(prefix) for k in tensors):
        raise BundleError(f"{fpath}: tensor names must start with {prefix!r}")
    state = {k[len(prefix):]: v for k, v in tensors.items()}
    missing = sorted(set(meta) - set(state))
    unexpected = sorted(set(state) - set(meta))
    wrong = sorted(k for k in set(meta) & set(state) if tuple(state[k].shape) != tuple(meta[k].shape))
    if missing or unexpected or wrong:
        first = (f"missing {missing[:3]}" if missing else f"unexpected {unexpected[:3]}" if unexpected
                 else f"{wrong[0]}: shape {tuple(state[wrong[0]].shape)}, "
                      f"expected {tuple(meta[wrong[0]].shape)}")
        raise BundleError(f"{fpath}: does not fit {arch}: {first}")
    state = {k: v.to(meta[k].dtype) for k, v in state.items()}
    skeleton.backbone.load_state_dict(state, strict=True, assign=True)
    if any(t.is_meta for t in (*skeleton.parameters(), *skeleton.buffers())):
        raise BundleError(f"{fpath}: does not fill every tensor of {arch}")
    return skeleton


def _calibrator(root: Path, manifest: dict[str, Any], verified: Callable[[str], bytes]) -> Calibrator | None:
    """Return the bundle's calibrator, or ``None`` (manifest ``calibration`` and its file go together)."""
    cal, listed = manifest.get("calibration"), CALIBRATION_FILE in manifest["files"]
    if cal is None and not listed:
        return None
    if cal is None or not listed:
        raise BundleError(f"{root / MANIFEST_FILE}: field 'calibration' and files[{CALIBRATION_FILE!r}] "
                          "must come together")
    fpath = root / CALIBRATION_FILE
    try:
        return Calibrator.from_tensors(str(cal["kind"]), _safetensors(verified(CALIBRATION_FILE), fpath))
    except BundleError as exc:
        raise BundleError(f"{fpath}: {exc}") from exc


def load_bundle(path: str | os.PathLike[str]) -> Bundle:
    """Load and verify a bundle: schema, file kinds and sizes, every sha256, tensor names, shapes, values.

    Order, cheapest first: the manifest against its schema; the probe file (kind: regular files
    only; size, checked before reading; sha256; finite tensors) and the probe built from it;
    then the encoder file the same way (its size relative to what the architecture's weights
    need) and its tensors (the architecture's names and shapes); then ``model.onnx``'s size and hash.

    Raises:
        BundleError: naming the file (and field) at fault.

    """
    root = Path(path)
    manifest = read_manifest(root)
    mpath, files = root / MANIFEST_FILE, manifest["files"]
    for required in (ENCODER_FILE, PROBE_FILE):
        if required not in files:
            raise BundleError(f"{mpath}: field 'files' lacks {required}")
    arch = str(manifest["architecture"]["arch"])
    encoder_bytes = _encoder_bytes(arch)
    # the cheap checks first: the small files, and the probe built, before the weights are read
    ppath = root / PROBE_FILE
    probe_blob = _read_verified(root, PROBE_FILE, files[PROBE_FILE], (0, MAX_PROBE_BYTES))
    probe_tensors = _safetensors(probe_blob, ppath)
    try:
        probe = probe_from_tensors(str(manifest["probe"]["kind"]), probe_tensors, manifest["probe"]["params"])
    except BundleError as exc:
        raise BundleError(f"{ppath}: {exc}") from exc
    if probe.in_dim != ARCHS[arch]:
        raise BundleError(f"{ppath}: probe input dim {probe.in_dim} != {arch} features {ARCHS[arch]}")
    graphs = (ONNX_FILE, NETWORK_FILE, NETWORK_INT8_FILE)
    others = sorted(files, key=lambda n: (n in graphs, n))  # the ONNX graphs (big) after the encoder
    def verified(name: str) -> bytes:
        return _read_verified(root, name, files[name], _size_limits(name, encoder_bytes, len(probe_blob)))

    for name in [n for n in others if n not in (PROBE_FILE, ENCODER_FILE, CALIBRATION_FILE, *graphs)]:
        verified(name)
    enc_blob = verified(ENCODER_FILE)
    enc_tensors = _safetensors(enc_blob, root / ENCODER_FILE)
    del enc_blob
    skeleton, meta = _encoder(arch)
    encoder = _load_encoder(arch, skeleton, meta, enc_tensors, root / ENCODER_FILE)
    for name in graphs:  # verified here; onnxruntime reads them when asked to
        if name in files:
            verified(name)
    frames_onnx_path = None
    if manifest["format_version"] == 1:  # its model.onnx is the network graph
        onnx_path = root / ONNX_FILE if ONNX_FILE in files else None
    else:
        onnx_path = root / NETWORK_FILE if NETWORK_FILE in files else None
        frames_onnx_path = root / ONNX_FILE if ONNX_FILE in files else None
    int8_onnx_path = root / NETWORK_INT8_FILE if NETWORK_INT8_FILE in files else None
    if (int8_onnx_path is None) != (manifest.get("quantization") is None):
        raise BundleError(f"{root / MANIFEST_FILE}: field 'quantization' and files[{NETWORK_INT8_FILE!r}] "
                          "must come together")
    model = GraspModel(encoder, probe, _calibrator(root, manifest, verified)).eval()
    pre = PreprocessConfig.from_dict(manifest["preprocessing"])  # checked by the schema
    threshold, model_id = float(manifest["threshold"]), str(manifest["model_id"])
    return Bundle(root, manifest, model, pre, threshold, model_id, onnx_path, frames_onnx_path,
                  int8_onnx_path)


def main(argv: list[str] | None = None) -> int:
    """``python -m tactile_grasp_predictor.bundle DIR...``: verify bundles and print a summary.

    Exit status 0 if every bundle loads (versions, hashes, tensors), 1 otherwise.
    """
    import argparse

    parser = argparse.ArgumentParser(prog="python -m tactile_grasp_predictor.bundle",
                                     description="Verify model bundles and print what they contain.")
    parser.add_argument("bundles", nargs="+", type=Path, help="bundle directories")
    args = parser.parse_args(argv)
    status = 0
    for path in args.bundles:
        try:
            b = load_bundle(path)
        except BundleError as exc:
            print(f"FAIL {path}: {exc}")
            status = 1
            continue
        m = b.manifest
        print(f"OK   {path}: model_id={b.model_id} arch={m['architecture'].get('arch')} "
              f"probe={m['probe'].get('kind')} threshold={b.threshold:g} input={b.preprocess.to_dict()} "
              f"onnx={'yes' if b.onnx_path else 'no'} method={m.get('training_method')} "
              f"metrics={json.dumps(m.get('metrics'))}")
    return status


if __name__ == "__main__":
    raise SystemExit(main())
