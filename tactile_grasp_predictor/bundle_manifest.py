"""The schema of a bundle's ``manifest.json``: one table of fields, each with its check.

:data:`MANIFEST_FIELDS` lists every top-level field a manifest may hold (format 2; a format-1
manifest is read by the same table: the fields format 2 added are optional), whether it
is required, and the check its value must pass (types, finite numbers in range, bounded
sizes and lengths). :data:`PROBE_PARAMS` does the same for ``probe.params`` per probe kind.
A field not in the table is refused, so a writer that adds one (ONNX preprocessing,
calibrators, provenance, …) adds a row here and the reader knows how to judge it.

:func:`parse_manifest` reads the JSON strictly (no ``NaN``/``Infinity``, no overflowing
numbers, bounded nesting); :func:`check_manifest` applies the table, then the checks that
relate fields to each other (the probe's input to the architecture's features, the input
size to the crop). Every refusal is a :class:`~tactile_grasp_predictor.errors.BundleError`
naming the field path, e.g. ``manifest.json: field 'probe.params.gamma': inf is not finite``.

Example:
    >>> m = parse_manifest('{"threshold": 1e999}')
    Traceback (most recent call last):
    ...
    tactile_grasp_predictor.errors.BundleError: manifest: number 1e999 is not finite

"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from typing import Any

from tactile_grasp_predictor.calibration import CALIBRATION_KINDS
from tactile_grasp_predictor.errors import BundleError
from tactile_grasp_predictor.models import ARCHS
from tactile_grasp_predictor.probes import PROBE_KINDS
from tactile_grasp_predictor.tracker import TriggerConfig

__all__ = [
    "FORMAT_VERSION",
    "MANIFEST_FIELDS",
    "MAX_FILES",
    "MAX_INPUT_SIDE",
    "PROBE_PARAMS",
    "READABLE_VERSIONS",
    "ManifestField",
    "check_manifest",
    "parse_manifest",
]

#: The format :func:`~tactile_grasp_predictor.bundle.write_bundle` writes. 2 added the frames
#: graph (``model.onnx`` takes uint8 frames; the network graph moved to ``network.onnx``),
#: ``provenance`` and ``trigger``.
FORMAT_VERSION = 2
#: The formats this reader loads (format 1: ``model.onnx`` is the network graph).
READABLE_VERSIONS = (1, 2)
#: Largest frame side a bundle may resize to (the network input is a crop of it).
MAX_INPUT_SIDE = 4096
#: Most files a manifest may list.
MAX_FILES = 16
_MAX_TEXT = 4096
_MAX_DEPTH = 64
_SHA256 = re.compile(r"^[0-9a-fA-F]{64}$")


class InvalidError(ValueError):
    """A value fails its check (the message says why; the caller adds the field path)."""


#: A check: raises :class:`InvalidError` for a bad value at field path ``where``.
Check = Callable[[Any, str], None]


# ------------------------------------------------------------------------------ checks
def _describe(v: Any) -> str:
    text = repr(v)
    return text if len(text) <= 60 else text[:57] + "..."


def text(max_len: int = _MAX_TEXT, empty: bool = True) -> Check:
    """Accept a string of at most ``max_len`` characters (non-empty unless ``empty``)."""

    def check(v: Any, where: str) -> None:
        if not isinstance(v, str):
            raise InvalidError(f"{_describe(v)} is not a string")
        if len(v) > max_len or (not empty and not v.strip()):
            raise InvalidError(f"{_describe(v)} must be {'a non-empty' if not empty else 'a'} string "
                          f"of at most {max_len} characters")

    return check


def integer(lo: int, hi: int) -> Check:
    """Accept an integer (not a bool, not a float) in ``[lo, hi]``."""

    def check(v: Any, where: str) -> None:
        if isinstance(v, bool) or not isinstance(v, int):
            raise InvalidError(f"{_describe(v)} is not an integer")
        if not lo <= v <= hi:
            raise InvalidError(f"{v} is not in {lo}..{hi}")

    return check


def number(lo: float = -1e30, hi: float = 1e30, positive: bool = False) -> Check:
    """Accept a finite number (int or float, not a bool) in ``[lo, hi]`` (``> 0`` with ``positive``)."""

    def check(v: Any, where: str) -> None:
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise InvalidError(f"{_describe(v)} is not a number")
        if isinstance(v, float) and not math.isfinite(v):  # (an int is finite however large)
            raise InvalidError(f"{v} is not finite")
        if not lo <= v <= hi or (positive and v <= 0):
            raise InvalidError(f"{v} is not in {'(0' if positive else f'[{lo}'}, {hi}]")

    return check


def choice(*choices: str) -> Check:
    """Accept one of ``choices``."""

    def check(v: Any, where: str) -> None:
        if v not in choices or not isinstance(v, str):
            raise InvalidError(f"{_describe(v)} is not one of {', '.join(choices)}")

    return check


def boolean(v: Any, where: str) -> None:
    """Accept ``true`` or ``false``."""
    if not isinstance(v, bool):
        raise InvalidError(f"{_describe(v)} is not true or false")


def any_json(v: Any, where: str) -> None:
    """Accept any JSON value (free-form records: config, metrics, notes)."""


def optional(inner: Check) -> Check:
    """Accept ``null`` or what ``inner`` accepts."""

    def check(v: Any, where: str) -> None:
        if v is not None:
            inner(v, where)

    return check


def list_of(inner: Check, n: int) -> Check:
    """Accept a list of exactly ``n`` values, each passing ``inner``."""

    def check(v: Any, where: str) -> None:
        if not isinstance(v, list) or len(v) != n:
            raise InvalidError(f"{_describe(v)} is not a list of {n}")
        for i, item in enumerate(v):
            _run(inner, item, f"{where}[{i}]")

    return check


def mapping(fields: Mapping[str, tuple[Check, bool]]) -> Check:
    """Accept an object whose keys are in ``fields`` (name → (check, required)), each checked."""

    def check(v: Any, where: str) -> None:
        _check_object(v, where, fields)

    return check


def _run(check: Check, v: Any, where: str) -> None:
    try:
        check(v, where)
    except InvalidError as exc:
        if str(exc).startswith("field "):  # already names its (deeper) field
            raise
        raise InvalidError(f"field {where!r}: {exc}") from None


def _check_object(v: Any, where: str, fields: Mapping[str, tuple[Check, bool]]) -> None:
    if not isinstance(v, dict):
        raise InvalidError(f"field {where!r}: {_describe(v)} is not an object")
    unknown = sorted(k for k in v if k not in fields)
    if unknown:
        path = f"{where}.{unknown[0]}" if where else unknown[0]
        raise InvalidError(f"field {path!r}: unknown (known: {', '.join(sorted(fields))})")
    for name, (check, required) in fields.items():
        path = f"{where}.{name}" if where else name
        if name not in v:
            if required:
                raise InvalidError(f"field {path!r}: missing")
            continue
        _run(check, v[name], path)


def _format_version(v: Any, where: str) -> None:
    if isinstance(v, bool) or v not in READABLE_VERSIONS:
        raise InvalidError(f"format_version {_describe(v)} unknown (this reader knows "
                           f"{', '.join(map(str, READABLE_VERSIONS))})")


def _files(v: Any, where: str) -> None:
    if not isinstance(v, dict) or not 1 <= len(v) <= MAX_FILES:
        raise InvalidError(f"must map 1..{MAX_FILES} file names to sha256 strings")
    for name, sha in v.items():
        if (not name or len(name) > 255 or name in (".", "..") or "/" in name or "\\" in name
                or "\0" in name):
            raise InvalidError(f"file name {_describe(name)} must be a plain name inside the bundle")
        if not isinstance(sha, str) or not _SHA256.match(sha):
            raise InvalidError(f"sha256 of {name!r}: {_describe(sha)} is not 64 hex digits")


def _probe(v: Any, where: str) -> None:
    _check_object(v, where, {"kind": (choice(*PROBE_KINDS), True), "params": (any_json, True)})
    _check_object(v["params"], f"{where}.params", PROBE_PARAMS[v["kind"]])


_COMMON_PROBE: dict[str, tuple[Check, bool]] = {
    "in_dim": (integer(1, 65536), False),
    "l2_normalize": (boolean, False),
}

#: ``probe.params`` per probe kind: name → (check, required); the keys of each probe's ``params()``.
PROBE_PARAMS: dict[str, dict[str, tuple[Check, bool]]] = {
    "knn": {**_COMMON_PROBE, "k": (integer(1, 1_000_000), True),
            "metric": (choice("cosine", "euclidean"), False),
            "weights": (choice("uniform", "distance"), False)},
    "svm": {**_COMMON_PROBE, "kernel": (choice("rbf", "linear"), True),
            "gamma": (number(hi=1e12, positive=True), True),
            "intercept": (number(), True), "platt_a": (number(), True), "platt_b": (number(), True)},
    "mlp": {**_COMMON_PROBE, "n_layers": (integer(1, 64), True),
            "activation": (choice("relu", "tanh", "logistic", "identity"), False)},
}


_TRIGGER_NUMBERS = {f.name for f in fields(TriggerConfig)} - {"contact_required", "frame_buffer_size"}


def _trigger_settings(v: Any, where: str) -> None:
    """Accept some of :class:`~tactile_grasp_predictor.tracker.TriggerConfig`'s fields, plausible values."""
    checks: dict[str, tuple[Check, bool]] = {
        name: (optional(number(0.0, 1e6)), False) for name in _TRIGGER_NUMBERS}
    checks["contact_required"] = (boolean, False)
    checks["frame_buffer_size"] = (integer(1, 1_000_000), False)
    _check_object(v, where, checks)


_VERSION = text(64)
PROVENANCE: dict[str, tuple[Check, bool]] = {
    "package": (_VERSION, True), "python": (_VERSION, False), "torch": (_VERSION, False),
    "onnx": (optional(_VERSION), False), "onnxruntime": (optional(_VERSION), False),
    "numpy": (_VERSION, False), "opencv": (_VERSION, False)}
TRIGGER: dict[str, tuple[Check, bool]] = {
    "source": (text(512), False), "settings": (_trigger_settings, True)}


@dataclass(frozen=True)
class ManifestField:
    """One top-level field of ``manifest.json``: its name, check, whether required, and what it holds."""

    name: str
    check: Check
    required: bool
    doc: str


#: Every field of a manifest (the writer: :func:`~tactile_grasp_predictor.bundle.write_bundle`).
MANIFEST_FIELDS: tuple[ManifestField, ...] = (
    ManifestField("format_version", _format_version, True, "the format, 2 (1 is read too)"),
    ManifestField("model_id", text(256, empty=False), True, "the id every decision carries"),
    ManifestField("created", text(64), False, "ISO 8601 time of writing"),
    ManifestField("architecture", mapping({"arch": (choice(*ARCHS), True),
                                           "feat_dim": (integer(1, 65536), False)}), True,
                  "the backbone and its pooled feature size"),
    ManifestField("input", mapping({"frames": (text(), False), "tensor": (text(), False),
                                    "size": (integer(1, MAX_INPUT_SIDE), False)}), False,
                  "what the model takes (descriptions; size = the crop)"),
    ManifestField("preprocessing", mapping({
        "resize_hw": (list_of(integer(1, MAX_INPUT_SIDE), 2), True),
        "crop": (integer(1, MAX_INPUT_SIDE), True),
        "scale": (number(hi=1e6, positive=True), True),
        "mean": (list_of(number(-1e6, 1e6), 3), True),
        "std": (list_of(number(hi=1e6, positive=True), 3), True)}), True,
        "PreprocessConfig (resize, crop, normalisation)"),
    ManifestField("probe", _probe, True, "kind and JSON parameters (PROBE_PARAMS)"),
    ManifestField("threshold", number(0.0, 1.0), True, "LIFT iff p >= threshold"),
    ManifestField("training_method", any_json, False, "free-form"),
    ManifestField("config", any_json, False, "free-form"),
    ManifestField("data_fingerprint", any_json, False, "free-form"),
    ManifestField("metrics", any_json, False, "free-form"),
    ManifestField("notes", any_json, False, "free-form"),
    ManifestField("onnx", optional(mapping({"opset": (integer(7, 64), True),
                                            "max_abs_diff_vs_torch": (optional(number(0.0, 1.0)), False),
                                            "frames_max_abs_diff": (optional(number(0.0, 1.0)), False)})),
                  False, "how the ONNX graphs were exported and checked (network vs torch, frames vs "
                         "the Predictor's pipeline)"),
    ManifestField("provenance", mapping(PROVENANCE), False,
                  "versions of the package and the libraries that wrote the bundle"),
    ManifestField("trigger", optional(mapping(TRIGGER)), False,
                  "the trigger settings under which the training frames were taken (null: unknown)"),
    ManifestField("calibration", optional(mapping({
        "kind": (choice(*CALIBRATION_KINDS), True), "fitted_on": (text(512), False),
        "n": (integer(0, 100_000_000), False)})), False,
        "the calibrator in calibration.safetensors: kind, what it was fitted on, how many trials"),
    ManifestField("quantization", optional(mapping({
        "method": (text(512), True), "calibration_frames": (integer(0, 100_000_000), False),
        "threads": (integer(1, 1024), False),
        "predict_ms_fp32": (optional(number(0.0, 1e6)), False),
        "predict_ms_int8": (optional(number(0.0, 1e6)), False),
        "speedup": (optional(number(0.0, 1e6)), False), "test": (any_json, False),
        "accepted": (boolean, True), "why": (text(1024), False)})), False,
        "network_int8.onnx: how it was quantised, its speed-up and test accuracy/AUC against fp32, "
        "and whether backend auto runs it"),
    ManifestField("files", _files, True, "file name → sha256 of every file"),
)
_FIELDS: dict[str, tuple[Check, bool]] = {f.name: (f.check, f.required) for f in MANIFEST_FIELDS}


# ------------------------------------------------------------------------------ reading
def _refuse_constant(name: str) -> Any:
    raise BundleError(f"manifest: {name} is not a number JSON allows")


def _finite_float(text: str) -> float:
    v = float(text)
    if not math.isfinite(v):
        raise BundleError(f"manifest: number {text[:40]} is not finite")
    return v


def _depth(v: Any, limit: int) -> int:
    stack = [(v, 1)]
    deepest = 0
    while stack:
        node, d = stack.pop()
        deepest = max(deepest, d)
        if deepest > limit:
            break
        if isinstance(node, dict):
            stack.extend((x, d + 1) for x in node.values())
        elif isinstance(node, list):
            stack.extend((x, d + 1) for x in node)
    return deepest


def parse_manifest(text: str) -> dict[str, Any]:
    """Parse a manifest's JSON strictly: an object, finite numbers, at most 64 levels deep.

    Raises:
        BundleError: not JSON, ``NaN``/``Infinity``, a number too large, too deep, not an object.

    """
    try:
        value = json.loads(text, parse_constant=_refuse_constant, parse_float=_finite_float)
    except BundleError:
        raise
    except RecursionError as exc:
        raise BundleError("manifest: nested too deeply") from exc
    except ValueError as exc:  # JSONDecodeError, and int() of a number with too many digits
        raise BundleError(f"manifest: unreadable or not JSON ({str(exc)[:200]})") from exc
    if not isinstance(value, dict):
        raise BundleError(f"manifest: expected a JSON object, got {type(value).__name__}")
    if _depth(value, _MAX_DEPTH) > _MAX_DEPTH:
        raise BundleError(f"manifest: nested more than {_MAX_DEPTH} levels deep")
    return value


def check_manifest(manifest: dict[str, Any]) -> None:
    """Check a parsed manifest against :data:`MANIFEST_FIELDS` and its cross-field rules.

    Raises:
        BundleError: naming the field path and the reason (the caller adds the file).

    """
    version = manifest.get("format_version")
    try:
        _format_version(version, "format_version")  # first: another version has other fields
        _check_object(manifest, "", _FIELDS)
    except InvalidError as exc:
        raise BundleError(str(exc)) from None
    arch = manifest["architecture"]["arch"]
    feat = manifest["architecture"].get("feat_dim", ARCHS[arch])
    if feat != ARCHS[arch]:
        raise BundleError(f"field 'architecture.feat_dim': {feat} but {arch} has {ARCHS[arch]} features")
    in_dim = manifest["probe"]["params"].get("in_dim", ARCHS[arch])
    if in_dim != ARCHS[arch]:
        raise BundleError(f"field 'probe.params.in_dim': {in_dim} but {arch} gives {ARCHS[arch]} features")
    pre = manifest["preprocessing"]
    if pre["crop"] > min(pre["resize_hw"]):
        raise BundleError(f"field 'preprocessing.crop': {pre['crop']} is larger than "
                          f"resize_hw {pre['resize_hw']}")
    size = (manifest.get("input") or {}).get("size", pre["crop"])
    if size != pre["crop"]:
        raise BundleError(f"field 'input.size': {size} but preprocessing.crop is {pre['crop']}")

