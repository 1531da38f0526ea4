"""``tgp harvest``: trials of the frames the node picks, from recorded streams, as Calandra-layout shards.

    tgp harvest BAG... --out DIR [--params config/predictor.yaml] [--labels CSV] [--bundle B]
    tgp harvest SIM_SHARDS_OR_DIRS... --out DIR [--params ...]     (tgp simulate --streams)

The node decides on the Ta/Tb its own trigger picks from the stream, not on a protocol's
snapshots. This command runs the node's decision path over recorded streams, exactly as
``tgp bag eval`` does (:func:`~tactile_grasp_predictor.replay.evaluate.evaluate_bag`, one
:class:`~tactile_grasp_predictor.session.GraspSession` per bag, the node's parameters from
``--params``), and writes every grasp that reaches the model as one trial: ``gelsightA_before``
= the Ta and ``gelsightA_during`` = the Tb the node would use (as decoded, full resolution),
``is_gripping`` = the label, ``object_name``, plus ``node_*`` attributes (no clash with the
Calandra or ``sim_*`` keys): ``node_ta_stamp``, ``node_tb_stamp`` (the decision's stamps),
``node_t_trigger``, ``node_grasp_id``, ``node_reason``, ``node_verdict``, ``node_p_success``
(NaN without ``--bundle``), ``node_threshold``, ``node_model_id``, ``node_latency_ms``,
``node_contact`` (the contact evidence the trigger saw), ``node_source`` (the bag or simulated
trial) and ``node_label_source``: the keys the node's own recorder writes
(:func:`~tactile_grasp_predictor.recorder.grasp_trial`). ``tgp train / probe / export / score
--data DIR`` read them unchanged.

Simulated shards with streams are first written as a rosbag2 bag (``tgp bag record``'s
:func:`~training.bag_record.write_bag`, into a temporary folder under ``--out``), so they
enter the session exactly as a robot's recording would; their object names and labels come
from the shards. Real recordings need an outcome topic or a labels CSV (``BAG.labels.csv``
beside the bag is used when present). Grasps the node ABORTs before Tb (no part found,
timeouts) have no Tb and give no trial; unlabelled grasps neither: both are counted.
"""

from __future__ import annotations

import argparse
import shutil
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tactile_grasp_predictor.data.calandra import CalandraShard
from tactile_grasp_predictor.data.shard_writer import write_shard
from tactile_grasp_predictor.errors import BagError, DatasetError, TgpError
from tactile_grasp_predictor.gate import Reason
from tactile_grasp_predictor.recorder import grasp_trial
from tactile_grasp_predictor.session import InferenceJob

#: Seconds a simulated trial is held at its lift, as the closed-loop robot waits for the decision.
HOLD_S = 3.0
#: Decisions whose Ta/Tb the model judged (or would have: no model loaded).
MODEL_REASONS = (Reason.MODEL, Reason.MODEL_UNAVAILABLE)


@dataclass
class HarvestSummary:
    """What a harvest wrote and why the other grasps gave no trial."""

    files: list[Path] = field(default_factory=list)
    trials: int = 0
    grasps: int = 0
    successes: int = 0
    skipped: Counter[str] = field(default_factory=Counter)  # reason → grasps without a trial
    #: every grasp decided: source, label, verdict, p, reason (with a bundle: the node's offline decisions)
    rows: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def line(self) -> str:
        """Describe the harvest in one line."""
        skipped = ", ".join(f"{k}: {v}" for k, v in sorted(self.skipped.items())) or "none"
        return (f"{self.trials} trials ({self.successes} successes) from {self.grasps} grasps in "
                f"{len(self.files)} shard(s); without a trial: {skipped}")


class _ShardSink:
    """Trials into ``out/<prefix>_NNN.h5``, ``shard_size`` per file (each written atomically)."""

    def __init__(self, out: Path, prefix: str, shard_size: int, summary: HarvestSummary) -> None:
        self.out, self.prefix, self.shard_size, self.summary = out, prefix, shard_size, summary
        self.pending: list[dict[str, Any]] = []

    def add(self, trial: dict[str, Any]) -> None:
        self.pending.append(trial)
        self.summary.trials += 1
        self.summary.successes += int(trial["is_gripping"])
        if len(self.pending) >= self.shard_size:
            self.flush()

    def flush(self) -> None:
        if self.pending:
            path = self.out / f"{self.prefix}_{len(self.summary.files):03d}.h5"
            self.summary.files.append(write_shard(path, self.pending))
            self.pending = []


def harvest_bag(bag: Path, sink: _ShardSink, predictor: Any, node: tuple[Any, dict[str, Any]],
                labels: Any = None, names: Callable[[Any], tuple[str, str] | None] | None = None,
                progress: bool = True) -> None:
    """Replay ``bag`` through the node's session (``node``: config and given parameters) into ``sink``.

    ``names``: a grasp's ``GraspResult`` → (object name, source), for recordings made from
    simulated shards (:func:`harvest_streams`); otherwise the bag's name is the object's.
    """
    from tactile_grasp_predictor.replay.evaluate import evaluate_bag
    from tactile_grasp_predictor.session import SessionConfig
    from training.bag_cli import topic_selection

    cfg, given = node
    jobs: dict[int, InferenceJob] = {}
    result = evaluate_bag(bag, predictor, session=SessionConfig.from_node_config(cfg),
                          topics=topic_selection(None, given), joint_width=cfg.joints,
                          encodings=cfg["image_encodings"], labels=labels, progress=progress,
                          on_job=lambda job: jobs.__setitem__(job.snapshot.grasp_id, job))
    if result.messages == 0:
        raise BagError(f"{bag}: no readable messages")
    sink.summary.warnings += result.warnings
    for g in result.grasps:
        sink.summary.grasps += 1
        named = names(g) if names is not None else None
        name, source = named or (result.bag, f"{result.bag}:grasp{g.grasp_id}")
        d = g.decision
        sink.summary.rows.append({"source": source, "label": g.label, "verdict": d.verdict.name,
                                  "p": d.p_success, "reason": d.reason})
        job = jobs.get(g.grasp_id)
        if d.reason not in MODEL_REASONS or job is None:
            sink.summary.skipped[d.reason] += 1
            continue
        if g.label is None:
            sink.summary.skipped["unlabelled"] += 1
            continue
        sink.add(grasp_trial(d, job.snapshot, g.label, name, source, g.label_source))


def _object_names(paths: Sequence[Path]) -> dict[str, str]:
    """Trial source (``file:i<n>``) → object name, for the simulated shards in ``paths``."""
    files = [f for p in paths for f in (sorted(p.glob("*.h5")) if p.is_dir() else [p])]
    names: dict[str, str] = {}
    for f in files:
        with CalandraShard(f) as shard:
            for i in shard.trial_indices():
                names[shard.source(i)] = str(shard.read_attrs(i).get("object_name", f.stem))
    return names


def harvest_streams(paths: Sequence[Path], sink: _ShardSink, predictor: Any,
                    node: tuple[Any, dict[str, Any]], limit: int | None = None,
                    progress: bool = True, hold_s: float = HOLD_S) -> None:
    """Harvest simulated trials with streams (``tgp simulate --streams``): a bag, then :func:`harvest_bag`.

    Labels come from the recording's labels CSV (the shards' outcomes), object names from the
    shards: a grasp belongs to the trial whose log-time window holds its closing onset. With
    ``hold_s`` > 0 each trial is cut at its lift and held for ``hold_s`` (the last frame and
    width), as ``sim_robot_node`` holds while it waits for the decision
    (:meth:`~tactile_grasp_predictor.data.trial_streams.TrialStreams.held_for_decision`): a Tb
    due after the lift is a held frame, as live, never a frame of the lift itself.
    """
    from tactile_grasp_predictor.data.trial_streams import load_trial_streams
    from tactile_grasp_predictor.replay.evaluate import LabelTable
    from training.bag_record import RecordOptions, write_bag

    work = sink.out / f".{sink.prefix}_bag"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    try:
        bag = work / "streams"
        streams = load_trial_streams(paths, limit, require_streams=True)
        if hold_s > 0:  # as the closed-loop robot shows them: held at the lift until the decision
            streams = (tr.held_for_decision(hold_s) for tr in streams)
        rows = write_bag(bag, streams, RecordOptions(), progress=progress)
        objects = _object_names(paths)
        windows = [(float(r["t_start"]), float(r["t_end"]), str(r["source"])) for r in rows]

        def names(g: Any) -> tuple[str, str] | None:
            # the onset is on the header clock (capture time), the windows on the log clock: the
            # recorder's transport latency (2 ms) apart, far inside a trial's window
            for t0, t1, src in windows:
                if g.t_onset is not None and t0 <= g.t_onset < t1:
                    return objects.get(src, src), src
            return None

        labels = LabelTable.read(bag.with_name(bag.name + ".labels.csv"))
        harvest_bag(bag, sink, predictor, node, labels, names, progress)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def is_bag(path: Path) -> bool:
    """Tell whether ``path`` is a rosbag2 directory (it has ``metadata.yaml``)."""
    return path.is_dir() and (path / "metadata.yaml").is_file()


def harvest(inputs: Sequence[Path], out: Path, node: tuple[Any, dict[str, Any]], *, predictor: Any = None,
            labels: Path | None = None, limit: int | None = None, shard_size: int = 50,
            prefix: str = "harvest", progress: bool = True) -> HarvestSummary:
    """Harvest bags and simulated shards (files or directories) into shards under ``out``.

    Bags are read one by one (a ``BAG.labels.csv`` sidecar or ``labels`` labels them, else the
    outcome topic); every other input is simulated shards with streams. ``out``'s earlier
    ``<prefix>_*.h5`` are replaced. Raises :class:`TgpError` naming the input that fails.
    """
    from tactile_grasp_predictor.replay.evaluate import LabelTable

    if shard_size < 1:
        raise TgpError(f"shard size {shard_size}: must be >= 1")
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob(f"{prefix}_*.h5"):
        old.unlink()
    summary = HarvestSummary()
    sink = _ShardSink(out, prefix, shard_size, summary)
    table = LabelTable.read(labels) if labels is not None else None
    bags = [p for p in inputs if is_bag(p)]
    shards = [p for p in inputs if not is_bag(p)]
    for p in shards:
        if not p.exists():
            raise DatasetError(f"{p}: no such bag or shard")
    for bag in bags:
        sidecar = bag.with_name(bag.name + ".labels.csv")
        bag_labels = table if table is not None else LabelTable.read(sidecar) if sidecar.is_file() else None
        harvest_bag(bag, sink, predictor, node, bag_labels, progress=progress)
    if shards:
        harvest_streams(shards, sink, predictor, node, limit, progress)
    sink.flush()
    return summary


def load_harvest(directory: Path, cfg: Any, progress: bool = True) -> Any:
    """Load every trial of harvested shards as one ``TactileSet`` (cached as a split is): a probe's set."""
    import numpy as np

    from tactile_grasp_predictor.data.calandra import gelsight_key, index_shards
    from training.data.cache import build_cache
    from training.data.sets import TactileSet

    index = index_shards(directory, keys=tuple(gelsight_key(cfg.finger, w) for w in ("before", "during")))
    if len(index) == 0:
        raise DatasetError(f"{directory}: no harvested trials")
    arr = build_cache(index.refs, Path(directory) / ".cache", size_hw=cfg.resize_hw, finger=cfg.finger,
                      progress=progress)
    return TactileSet(arr.before, arr.during, np.asarray(arr.labels), list(arr.objects), list(arr.sources))


# ------------------------------------------------------------------------------ CLI
def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``tgp harvest``."""
    parser.add_argument("inputs", nargs="+", type=Path,
                        help="rosbag2 directories and/or simulated shards or directories (--streams)")
    parser.add_argument("--out", type=Path, required=True, help="directory for the harvested shards")
    parser.add_argument("--params", type=Path, default=None,
                        help="the node's parameter file (config/predictor.yaml layout): its trigger, "
                             "time base and topics, as on the robot")
    parser.add_argument("--time-base", choices=["header", "receive"], default=None,
                        help="the node's time_base (default: --params, else header)")
    parser.add_argument("--labels", type=Path, default=None,
                        help="labels CSV for the bags (default: BAG.labels.csv, else the outcome topic)")
    parser.add_argument("--bundle", type=Path, default=None,
                        help="also record the node's p(success) and verdict with this bundle")
    parser.add_argument("--limit", type=int, default=None, help="simulated trials to read at most")
    parser.add_argument("--shard-size", type=int, default=50, help="trials per shard file")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def run(args: argparse.Namespace) -> int:
    """Entry point of ``tgp harvest``."""
    from training.bag_cli import node_config

    predictor = None
    if args.bundle is not None:
        from tactile_grasp_predictor.predictor import Predictor

        predictor = Predictor.from_bundle(args.bundle, num_threads=1)
    summary = harvest(args.inputs, args.out, node_config(args), predictor=predictor, labels=args.labels,
                      limit=args.limit, shard_size=args.shard_size, progress=not args.no_progress)
    for w in summary.warnings[:20]:
        print(f"warning: {w}")
    print(f"harvested {summary.line()} -> {args.out}")
    if summary.trials == 0:
        raise TgpError(f"no trial harvested from {', '.join(map(str, args.inputs))}: {summary.line()}")
    return 0
