"""Fuzzing the replay: truncated and garbled rosbag2 recordings through ``evaluate_bag`` (#19).

Each case copies a real recording (``tgp bag record``'s writer: two grasps, 8 x 8 frames, mcap
or sqlite3, raw or JPEG frames, with a WSG status topic or without, and its labels CSV) and
spoils it: the storage file cut at any byte (an interrupted recording), bytes flipped or
garbled, ``metadata.yaml`` cut, garbled or pointing elsewhere, files deleted, the labels CSV
garbled. Then the offline replay with a model that always says 1.0 (every grasp it decides
would LIFT) and the labels read as ``tgp bag eval`` reads them.

A refusal is a :class:`BagError` (naming the bag, or the labels file and line); anything
else raised is a crash; a LIFT whose reason is not ``model`` or whose p is not a probability
at or above the threshold is a LIFT on an error.
"""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from helpers.fuzz import ACCEPTED, LIFT_ON_ERROR, REFUSED, SEEDS, Tally, fuzz_settings, pick, rng_text
from tactile_grasp_predictor.decision import Verdict
from tactile_grasp_predictor.errors import BagError
from tactile_grasp_predictor.replay.evaluate import LabelTable, evaluate_bag
from training.bag_record import RecordOptions, synthetic_recordings, write_bag


class AlwaysLift:
    """A model that says 1.0 for every grasp (so any grasp decided by the model is a LIFT)."""

    model_id = "always"
    threshold = 0.5

    def predict(self, ta: Any, tb: Any) -> float:
        """Answer 1.0."""
        return 1.0


BAG_KINDS = ["cut"] * 4 + ["bytes"] * 3 + ["metadata", "delete", "labels", "labels"]
YAML_TOKENS = [
    "\x00",
    "{",
    "[",
    "- ",
    ": :",
    "\t",
    "!!python/object:os.system",
    "relative_file_paths: [/etc/passwd]",
    "message_count: -1",
    "offered_qos_profiles: 5",
    "version: 99",
    "&a [*a]",
    "'",
]


@st.composite
def mutations(draw: st.DrawFn) -> tuple[int, str, tuple[Any, ...]]:
    """Return the base bag and mutation kind (drawn) and its parameters (from a drawn seed)."""
    base, kind = draw(st.integers(0, 3)), draw(st.sampled_from(BAG_KINDS))
    rng = np.random.default_rng(draw(SEEDS))
    if kind == "cut":
        return base, kind, (int(rng.integers(0, 10**6)),)
    if kind == "bytes":
        spots = [
            (int(rng.integers(0, 10**6)), rng.bytes(int(rng.integers(1, 17))))
            for _ in range(rng.integers(1, 9))
        ]
        return base, kind, (spots,)
    if kind == "metadata":
        return (
            base,
            kind,
            (pick(rng, ["cut", "insert", "replace"]), int(rng.integers(0, 10**4)), pick(rng, YAML_TOKENS)),
        )
    if kind == "delete":
        return base, kind, (pick(rng, ["storage", "metadata", "labels"]),)
    return (
        base,
        kind,
        ([(int(rng.integers(0, 10**4)), rng_text(rng, 12)) for _ in range(rng.integers(1, 5))],),
    )


def _apply(bag: Path, labels: Path, kind: str, args: tuple[Any, ...]) -> None:
    storage = next(p for p in bag.iterdir() if p.suffix in (".mcap", ".db3"))
    if kind == "cut":
        whole = storage.read_bytes()
        storage.write_bytes(whole[: args[0] % (len(whole) + 1)])
    elif kind == "bytes":
        data = bytearray(storage.read_bytes())
        for where, chunk in args[0]:
            i = where % len(data)
            data[i : i + len(chunk)] = chunk
        storage.write_bytes(bytes(data))
    elif kind == "metadata":
        how, where, token = args
        text = (bag / "metadata.yaml").read_text()
        i = where % (len(text) + 1)
        text = {
            "cut": text[:i],
            "insert": text[:i] + token + text[i:],
            "replace": text[:i] + token + text[i + len(token) :],
        }[how]
        (bag / "metadata.yaml").write_text(text)
    elif kind == "delete":
        {"storage": storage, "metadata": bag / "metadata.yaml", "labels": labels}[args[0]].unlink()
    else:
        text = labels.read_text()
        for where, token in args[0]:
            i = where % (len(text) + 1)
            text = text[:i] + token + text[i:]
        labels.write_text(text)


def _replay(bag: Path, labels: Path) -> str:
    table = LabelTable.read(labels) if labels.exists() else None
    result = evaluate_bag(bag, AlwaysLift(), labels=table)
    for g in result.grasps:
        d = g.decision
        if d.verdict == Verdict.LIFT and not (
            d.reason == "model" and 0.0 <= d.threshold <= d.p_success <= 1.0
        ):
            return LIFT_ON_ERROR
    return ACCEPTED if result.grasps else REFUSED


@pytest.fixture(scope="module")
def bases(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    root = tmp_path_factory.mktemp("bags")
    recs = synthetic_recordings(2, seed=1, size_hw=(8, 8), no_part=0.0)
    slow = RecordOptions(joint_rate_hz=10.0, gap_s=0.2)  # few messages: a case costs the bag's opening
    options = [
        replace(slow, storage="mcap"),
        replace(slow, storage="sqlite3", encoding="compressed"),
        replace(slow, storage="mcap", status="fork", moving=True),
        replace(slow, storage="sqlite3", status="ros1", joints=False),
    ]
    out = []
    for i, opts in enumerate(options):
        write_bag(root / f"b{i}", recs, opts, progress=False)
        out.append(root / f"b{i}")
    return out


def test_fuzz_truncated_and_garbled_bags_are_refused_by_name(bases: list[Path], tmp_path: Path) -> None:
    tally = Tally("bag", expected=(BagError,))

    @fuzz_settings(default_cases=40)
    @given(mutations())
    def case(mutation: tuple[int, str, tuple[Any, ...]]) -> None:
        base, kind, args = mutation
        bag, labels = tmp_path / "b", tmp_path / "b.labels.csv"
        shutil.rmtree(bag, ignore_errors=True)
        shutil.copytree(bases[base], bag)
        shutil.copyfile(bases[base].with_name(bases[base].name + ".labels.csv"), labels)
        _apply(bag, labels, kind, args)
        tally.run(lambda: _replay(bag, labels), lambda: f"{bases[base].name} {kind} {args!r}"[:600], kind)

    case()
    tally.finish(min_cases=30)
