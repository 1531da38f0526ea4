"""Fuzzing bundle loading: mutated bundles through ``load_bundle``, the ``Predictor`` and ``decide`` (#19).

Each case copies a real bundle (random weights; KNN, SVM or MLP probe; one with ``model.onnx``)
and spoils it one way: a manifest field set to a random JSON value or deleted, the manifest's
text cut or garbled (``NaN``, ``1e999``, deep nesting), a listed file replaced by a symlink
(to ``/dev/zero``, a directory, nowhere), a pipe, a directory or nothing, file bytes flipped,
cut or appended, or a tensor changed (NaN, inf, huge values, other shapes and dtypes, missing,
extra) with the manifest's hash updated so the deeper checks are reached.

A refusal is a :class:`BundleError` (or a :class:`ModelError` from a model whose finite weights
give no probability); anything else is a crash; a LIFT from a model that raised or answered
no probability is a LIFT on an error.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
import torch
from hypothesis import example, given
from hypothesis import strategies as st
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from helpers.bundles import make_random_bundle
from helpers.fuzz import ACCEPTED, CASES, LIFT_ON_ERROR, SEEDS, Tally, fuzz_settings, pick, rng_json
from tactile_grasp_predictor.bundle import ENCODER_FILE, MANIFEST_FILE, ONNX_FILE, PROBE_FILE, load_bundle
from tactile_grasp_predictor.decision import Verdict, decide
from tactile_grasp_predictor.errors import BundleError, ModelError
from tactile_grasp_predictor.gate import Frame, SnapshotReady
from tactile_grasp_predictor.predictor import Predictor

FIELDS = [
    "format_version",
    "model_id",
    "created",
    "architecture",
    "architecture.arch",
    "architecture.feat_dim",
    "input",
    "input.size",
    "preprocessing",
    "preprocessing.resize_hw",
    "preprocessing.crop",
    "preprocessing.scale",
    "preprocessing.mean",
    "preprocessing.std",
    "probe",
    "probe.kind",
    "probe.params",
    "probe.params.k",
    "probe.params.metric",
    "probe.params.gamma",
    "probe.params.platt_a",
    "probe.params.intercept",
    "probe.params.n_layers",
    "probe.params.activation",
    "probe.params.in_dim",
    "probe.params.l2_normalize",
    "threshold",
    "onnx",
    "onnx.opset",
    "files",
    "files.probe.safetensors",
    "extra_field",
]
REQUIRED = [
    "format_version",
    "model_id",
    "architecture",
    "architecture.arch",
    "preprocessing",
    "preprocessing.crop",
    "probe",
    "probe.kind",
    "probe.params",
    "threshold",
    "files",
    "files.encoder.safetensors",
    "files.probe.safetensors",
]
#: Mutation kinds, weighted so that about one case in twelve still loads (a full load costs ~0.2 s).
KINDS = (
    ["field"] * 30
    + ["delete"] * 4
    + ["text"] * 10
    + ["file_kind"] * 10
    + ["bytes"] * 12
    + ["tensor"] * 15
    + ["params"]
    + ["none"]
)


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _set_manifest(case: Path, change: Any) -> None:
    m = json.loads((case / MANIFEST_FILE).read_text())
    change(m)
    (case / MANIFEST_FILE).write_text(json.dumps(m))


def _rehash(case: Path, name: str) -> None:
    if (case / name).is_file() and not (case / name).is_symlink():
        _set_manifest(case, lambda m: m["files"].__setitem__(name, _sha(case / name)))


def _field(m: dict[str, Any], path: str, value: Any, delete: bool) -> None:
    """Set (or delete) the field at a dotted path; where the path cannot be followed, its first key."""
    parents, last = (
        (["files"], path[len("files.") :])
        if path.startswith("files.")
        else (path.split(".")[:-1], path.split(".")[-1])
    )
    node: Any = m
    for key in parents:
        node = node.get(key) if isinstance(node, dict) else None
    if not isinstance(node, dict):
        node, last = m, (parents or [last])[0]
    if delete:
        node.pop(last, None)
    else:
        node[last] = value


PARAMS = [
    "probe.params.k",
    "probe.params.gamma",
    "probe.params.platt_a",
    "probe.params.platt_b",
    "probe.params.intercept",
    "threshold",
    "preprocessing.crop",
    "preprocessing.scale",
    "probe.params.n_layers",
]
TOKENS = ["NaN", "Infinity", "-Infinity", "1e999", "9" * 5000, '"', "{", "\\u0000", "[" * 100]
LINKS = ["zero", "null", "dir_link", "dangling", "self", "fifo", "dir", "empty", "missing"]
TENSOR_CHANGES = ["nan", "inf", "shape", "drop", "extra"] * 4 + ["huge", "dtype"]


@st.composite
def mutations(draw: st.DrawFn) -> tuple[str, Any]:
    """Return the mutation kind (drawn) and its parameters (from a drawn seed), for :func:`_apply`."""
    kind = draw(st.sampled_from(KINDS))
    rng = np.random.default_rng(draw(SEEDS))
    where = int(rng.integers(0, 10**9))
    if kind == "field":
        return kind, (pick(rng, FIELDS), rng_json(rng))
    if kind == "delete":  # required fields (deleting an optional one is no fault)
        return kind, (pick(rng, REQUIRED), None)
    if kind == "text":
        return kind, (pick(rng, ["cut", "flip", "insert", "nan", "deep"]), where, pick(rng, TOKENS))
    if kind == "file_kind":
        return kind, (pick(rng, [ENCODER_FILE, PROBE_FILE, ONNX_FILE, MANIFEST_FILE]), pick(rng, LINKS))
    if kind == "bytes":  # (with the hash updated one time in eight: the deeper checks)
        files = [PROBE_FILE] * 4 + [ONNX_FILE, ENCODER_FILE]
        return kind, (
            pick(rng, files),
            pick(rng, ["flip", "cut", "append", "header"]),
            where,
            rng.random() < 0.125,
        )
    if kind == "tensor":
        return kind, (pick(rng, [PROBE_FILE] * 9 + [ENCODER_FILE]), pick(rng, TENSOR_CHANGES), where)
    if kind == "params":
        value = (
            int(rng.integers(0, 41)) if rng.integers(2) else pick(rng, [1e-300, 5e-324, rng.normal() * 1e30])
        )
        return kind, (pick(rng, PARAMS), value)
    return kind, ()


def _apply(case: Path, kind: str, args: tuple[Any, ...]) -> None:
    if kind in ("field", "delete", "params"):
        path, value = args
        _set_manifest(case, lambda m: _field(m, path, value, kind == "delete"))
    elif kind == "text":
        how, where, token = args
        text = (case / MANIFEST_FILE).read_text()
        i = where % (len(text) + 1)
        text = {
            "cut": text[:i],
            "flip": text[:i] + chr((ord(text[i]) ^ 1) if i < len(text) else 65) + text[i + 1 :],
            "insert": text[:i] + token + text[i:],
            "nan": text.replace('"threshold": ', f'"threshold": {token} ,"x": ', 1),
            "deep": text[:-2] + ', "notes": ' + "[" * 5000 + "]" * 5000 + "}",
        }[how]
        (case / MANIFEST_FILE).write_text(text)
    elif kind == "file_kind":
        name, how = args
        path = case / name
        if not path.exists():  # a base without model.onnx: spoil the probe instead
            path = case / PROBE_FILE
        if path.exists() or path.is_symlink():
            path.unlink()
        if how in ("zero", "null", "dir_link", "dangling", "self"):
            path.symlink_to(
                {
                    "zero": "/dev/zero",
                    "null": "/dev/null",
                    "dir_link": str(case),
                    "dangling": "/nowhere",
                    "self": str(case / MANIFEST_FILE),
                }[how]
            )
        elif how == "fifo":
            os.mkfifo(path)
        elif how == "dir":
            path.mkdir()
        elif how == "empty":
            path.write_bytes(b"")
    elif kind == "bytes":
        name, how, where, rehash = args
        path = case / name
        if not path.is_file():
            return
        data = bytearray(path.read_bytes())
        i = where % max(1, len(data))
        if how == "flip":
            data[i] ^= 0x10
        elif how == "cut":
            data = data[:i]
        elif how == "append":
            data += b"\0" * (where % 4096 + 1)
        else:
            data[:8] = (where % 2**63).to_bytes(8, "little")
        path.unlink()  # the encoder is a hard link to the base: never write through it
        path.write_bytes(bytes(data))
        if rehash and name != ONNX_FILE:  # (a rehashed model.onnx loads: only its hash is checked)
            _rehash(case, name)
    elif kind == "tensor":
        name, how, where = args
        path = case / name
        if not path.is_file():
            return
        tensors = dict(st_load(path.read_bytes()))
        keys = sorted(tensors)
        key = keys[where % len(keys)]
        t = tensors[key]
        if how in ("nan", "inf", "huge", "zero", "negative") and t.is_floating_point() and t.numel():
            t = t.clone()
            t.view(-1)[where % t.numel()] = {
                "nan": float("nan"),
                "inf": float("inf"),
                "huge": 3e38,
                "zero": 0.0,
                "negative": -1.0,
            }[how]
        elif how == "shape" and t.ndim:
            t = t.reshape(-1)[: max(0, t.numel() - 1 - where % 3)].clone()
        elif how == "dtype":
            t = t.to([torch.float16, torch.float64, torch.int64, torch.bool, torch.uint8][where % 5])
        elif how == "drop":
            del tensors[key]
        elif how == "extra":
            tensors["extra"] = torch.zeros(3)
        if how != "drop":
            tensors[key] = t.contiguous()
        path.unlink()
        path.write_bytes(st_save(tensors))
        _rehash(case, name)


def _frames(seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    h, w = int(rng.integers(24, 80)), int(rng.integers(24, 80))
    return (rng.integers(0, 256, (h, w, 3), dtype=np.uint8), rng.integers(0, 256, (h, w, 3), dtype=np.uint8))


def _run(case: Path, seed: int) -> str:
    bundle = load_bundle(case)
    predictor = Predictor(bundle, num_threads=1)
    ta, tb = _frames(seed)
    snap = SnapshotReady(1, Frame(0.0, None, ta), Frame(1.0, None, tb), 1.0)
    decision = decide(snap, predictor, threshold=0.0)  # threshold 0: any probability is a LIFT
    try:
        p = predictor.predict(ta, tb)
    except ModelError:
        return LIFT_ON_ERROR if decision.verdict == Verdict.LIFT else ACCEPTED
    assert 0.0 <= p <= 1.0, p
    return ACCEPTED


@pytest.fixture(scope="module")
def bases(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[Path]]:
    """Three real bundles; torch's and OpenCV's thread counts (cases use ``num_threads=1``) restored."""
    threads = torch.get_num_threads(), cv2.getNumThreads()
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("bases")
    yield [
        make_random_bundle(root / "knn", size=32, probe="knn"),
        make_random_bundle(root / "svm", size=32, probe="svm"),
        make_random_bundle(root / "mlp", size=32, probe="mlp", onnx=bool(CASES)),
    ]
    torch.set_num_threads(threads[0])
    cv2.setNumThreads(threads[1])


def test_fuzz_mutated_bundles_are_refused_by_name(bases: list[Path], tmp_path: Path) -> None:
    tally = Tally("bundle", expected=(BundleError, ModelError))

    @fuzz_settings(default_cases=30)
    @given(st.integers(0, len(bases) - 1), mutations())
    @example(0, ("none", ()))  # an unspoiled KNN and MLP bundle: load, predict and decide run every time
    @example(2, ("none", ()))
    def case(base: int, mutation: tuple[str, Any]) -> None:
        seed = zlib.crc32(repr(mutation).encode()) % 2**16  # the frames: fixed per case
        kind, args = mutation
        work = tmp_path / "case"
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir()
        for f in bases[base].iterdir():
            if f.name in (ENCODER_FILE, ONNX_FILE):
                os.link(f, work / f.name)  # big and read-only here: a hard link, a regular file
            else:
                shutil.copy(f, work / f.name)
        _apply(work, kind, args)
        tally.run(lambda: _run(work, seed), lambda: f"{bases[base].name}: {kind} {args!r}"[:600], kind)

    case()
    tally.finish(min_cases=25)
