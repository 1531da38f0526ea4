"""``tgp bag record | eval | play``: rosbag2 grasp recordings.

- ``tgp bag record [SHARDS...] --out BAG``: simulated trials → a bag (see :mod:`training.bag_record`).
- ``tgp bag eval BAG... --bundle B [--labels CSV] [--out DIR]``: offline, deterministic replay through
  the node's gate and predictor (:mod:`tactile_grasp_predictor.replay`), then the report
  (Markdown + PNG + JSON) in ``DIR``; exit code 2 if no bag could be evaluated (or on ``--strict``'s
  first refusal, or a bad option), else 0.
- ``tgp bag play BAG [--rate R] [--start-offset S] [--clock]``: publish live with rclpy
  (:mod:`tactile_grasp_predictor.ros.bag_player`); ``ros2 bag play`` does the same on a full install.
- ``tgp bag compare BAG --bundle B [--rate R]``: the acceptance check: the offline replay, then
  the same bag played live to a ``predictor_node`` over DDS, grasp by grasp
  (:mod:`tactile_grasp_predictor.replay.compare`); exit code 1 if any grasp differs.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from tactile_grasp_predictor.errors import TgpError
from tactile_grasp_predictor.replay.play_options import add_play_arguments


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the three subcommands and their options."""
    sub = parser.add_subparsers(dest="bag_command", metavar="{record,eval,play,compare}", required=True)
    from training import bag_record

    bag_record.add_arguments(sub.add_parser("record", help="write simulated trials as a rosbag2 bag"))
    ev = sub.add_parser("eval", help="replay bags offline through the gate and the model; write the report")
    ev.add_argument("bags", nargs="+", type=Path, help="rosbag2 directories (mcap or sqlite3)")
    ev.add_argument(
        "--bundle",
        type=Path,
        default=None,
        help="model bundle directory (none: every snapshot ABORTs model_unavailable, as on the node)",
    )
    ev.add_argument("--backend", choices=["auto", "torch", "onnx"], default="auto")
    ev.add_argument("--num-threads", type=int, default=1, help="CPU threads for inference (as the node's)")
    ev.add_argument("--threshold", type=float, default=None, help="override the bundle's threshold")
    ev.add_argument(
        "--labels",
        type=Path,
        default=None,
        help="labels CSV (grasp,label or t_start,t_end,label [,bag]); default: BAG.labels.csv if "
        "present, else the outcome topic",
    )
    ev.add_argument("--out", type=Path, default=Path("replay_report"), help="report directory")
    ev.add_argument("--image-topic", default=None)
    ev.add_argument("--joint-topic", default=None)
    ev.add_argument("--moving-topic", default=None, help="'' to ignore a moving topic")
    ev.add_argument("--status-topic", default=None, help="'' to ignore a WSG status topic")
    ev.add_argument("--outcome-topic", default=None, help="'' to ignore an outcome topic")
    ev.add_argument(
        "--joint-names", nargs="+", default=None, help="finger joints (default: WSG-50 left/right)"
    )
    ev.add_argument("--width-mode", choices=["sum_abs", "single"], default=None, help="default sum_abs")
    ev.add_argument("--width-scale", type=float, default=None, help="to metres (0.001 for mm); default 1")
    ev.add_argument(
        "--params",
        "--trigger",
        dest="params",
        type=Path,
        default=None,
        help="the node's parameter file (config/predictor.yaml layout): trigger, topics, joints and "
        "threshold as on the robot; a plain mapping of TriggerConfig fields works too",
    )
    ev.add_argument(
        "--time-base",
        choices=["header", "receive"],
        default=None,
        help="time of frames and gripper samples, as the node's time_base parameter: header (default: "
        "the header stamp, the recorded receive time where a stamp is empty) or receive (the log time)",
    )
    ev.add_argument(
        "--eager", action="store_true", help="decode every frame (slower; the benchmark baseline)"
    )
    ev.add_argument("--strict", action="store_true", help="fail on the first unreadable bag")
    play = sub.add_parser("play", help="publish a bag live with rclpy at its recorded timing")
    # the options of tactile_grasp_predictor.ros.bag_player (ROS-free, so `tgp bag` imports no rclpy)
    add_play_arguments(play)
    cmp = sub.add_parser(
        "compare", help="replay a bag offline and live (player + predictor_node over DDS); compare grasps"
    )
    cmp.add_argument("bag", type=Path, help="rosbag2 directory")
    cmp.add_argument("--bundle", type=Path, default=None, help="model bundle (none: model_unavailable)")
    cmp.add_argument("--rate", type=float, default=1.0, help="live playback rate factor")
    cmp.add_argument("--clock", action="store_true", help="publish /clock; the node runs on use_sim_time")
    cmp.add_argument("--time-base", choices=["header", "receive"], default=None,
                     help="the node's time_base and the offline replay's (default: --params, else header)")
    cmp.add_argument("--params", type=Path, default=None,
                     help="the node's parameter file: trigger and threshold as on the robot")
    cmp.add_argument("--qos", choices=["reliable", "sensor_data"], default="reliable",
                     help="the node's image_qos and gripper_qos (reliable: nothing lost to best effort)")
    cmp.add_argument("--out", type=Path, default=Path("compare_report"), help="compare.md and .json here")


def node_config(args: argparse.Namespace) -> tuple[Any, dict[str, Any]]:
    """Build the node's configuration for a replay: ``--params`` as the node reads it, then CLI options.

    Returns the :class:`~tactile_grasp_predictor.node_config.NodeConfig` and the parameters
    the file named (topics there override auto-detection; the defaults do not).
    """
    from tactile_grasp_predictor.node_config import NodeConfig, config_from_file, read_param_file

    given = read_param_file(args.params) if args.params else {}
    cfg = config_from_file(args.params) if args.params else NodeConfig.from_values({})
    cli = {"time_base": getattr(args, "time_base", None), "threshold": getattr(args, "threshold", None),
           "width_scale": getattr(args, "width_scale", None), "width_mode": getattr(args, "width_mode", None),
           "joint_names": getattr(args, "joint_names", None)}
    overrides = {k: v for k, v in cli.items() if v is not None}
    if overrides:
        cfg = NodeConfig.from_values({**cfg.values, **overrides})
    return cfg, given


def topic_selection(args: argparse.Namespace | None, given: dict[str, Any]) -> Any:
    """Return the topics a replay reads: the CLI's (``args``), the node's parameter file, else detected."""
    from tactile_grasp_predictor.replay.bag_source import TopicSelection

    def pick(option: str, key: str | None) -> Any:
        cli = getattr(args, option, None)
        return cli if cli is not None or key is None else given.get(key)

    return TopicSelection(pick("image_topic", "image_topic"), pick("joint_topic", "joint_states_topic"),
                          pick("moving_topic", "moving_topic"), pick("status_topic", "grasp_state_topic"),
                          pick("outcome_topic", None))


def _eval(args: argparse.Namespace) -> int:
    from tactile_grasp_predictor.replay.evaluate import LabelTable, evaluate_bags
    from tactile_grasp_predictor.replay.report import write_report
    from tactile_grasp_predictor.session import SessionConfig

    cfg, given = node_config(args)
    predictor = None
    if args.bundle is not None:
        from tactile_grasp_predictor.predictor import Predictor

        predictor = Predictor.from_bundle(args.bundle, backend=args.backend, num_threads=args.num_threads)
        predictor.warm_up()  # latencies then show steady-state decode + model time, as on a warm node
    labels = LabelTable.read(args.labels) if args.labels else None
    topics = topic_selection(args, given)
    results = []
    for bag in args.bags:
        table = labels
        sidecar = bag.with_name(bag.name + ".labels.csv")
        if table is None and sidecar.exists():
            table = LabelTable.read(sidecar)
        results += evaluate_bags(
            [bag],
            predictor,
            progress=True,
            strict=args.strict,
            session=SessionConfig.from_node_config(cfg),
            topics=topics,
            joint_width=cfg.joints,
            encodings=cfg["image_encodings"],
            labels=table,
            lazy=not args.eager,
        )
    extra = {
        "bundle": str(args.bundle) if args.bundle else None,
        "model_id": str(getattr(predictor, "model_id", "")) if predictor else None,
        "command": " ".join(
            ["tgp bag eval", *map(str, args.bags)]
            + [
                f"--{k.replace('_', '-')} {v}"
                for k, v in vars(args).items()
                if k in ("bundle", "labels", "params", "threshold", "time_base", "out") and v is not None
            ]
            + (["--eager"] if args.eager else [])
        ),
    }
    metrics = write_report(results, args.out, extra=extra)
    m = metrics["model"]
    b = metrics["gripper_baseline"]
    for r in results:
        if r.error:
            print(f"REFUSED {r.bag}: {r.error}", file=sys.stderr)
        for w in r.warnings:
            print(f"warning: {w}", file=sys.stderr)
    print(
        json.dumps(
            {
                "grasps": metrics["grasps"],
                "labelled": metrics["labelled"],
                "accuracy": m["accuracy"],
                "lift_precision": m["lift_precision"],
                "lift_recall": m["lift_recall"],
                "auc": metrics["roc"]["auc"],
                "baseline_accuracy": b["accuracy"],
                "baseline_lift_precision": b["lift_precision"],
            }
        )
    )
    print(f"report: {args.out / 'report.md'}")
    return 2 if all(r.error for r in results) else 0  # docs/replay.md: 2 only if nothing was evaluated


def _count(bag: Path, topic: str) -> int:
    from tactile_grasp_predictor.replay.bag_source import BagSource

    with BagSource(bag) as src:
        return src.counts.get(topic, 0)


def _compare(args: argparse.Namespace) -> int:
    import time

    from tactile_grasp_predictor.replay.bag_source import TopicSelection
    from tactile_grasp_predictor.replay.compare import compare_decisions, write_comparison
    from tactile_grasp_predictor.replay.evaluate import evaluate_bag
    from tactile_grasp_predictor.ros.bag_player import live_replay
    from tactile_grasp_predictor.session import SessionConfig

    cfg, given = node_config(args)
    predictor = None
    if args.bundle is not None:
        from tactile_grasp_predictor.predictor import Predictor

        predictor = Predictor.from_bundle(args.bundle, num_threads=1)
        predictor.warm_up()
    # the node cannot read a driver's custom status type without its package: both sides without it
    t0 = time.perf_counter()
    offline = evaluate_bag(args.bag, predictor, session=SessionConfig.from_node_config(cfg),
                           topics=TopicSelection(status=""), joint_width=cfg.joints, progress=True,
                           encodings=cfg["image_encodings"])
    t_offline = time.perf_counter() - t0
    tp = offline.topics
    assert tp is not None
    if tp.joint_states is None:
        raise TgpError(f"{args.bag}: the node needs a JointState topic; this bag has none")
    node = {
        **{k: v for k, v in given.items() if k.startswith("trigger.") or k in (
            "threshold", "width_scale", "width_mode", "joint_names", "image_encodings")},
        "image_topic": tp.image,
        "joint_states_topic": tp.joint_states,
        "moving_topic": tp.moving or "",
        "image_qos": args.qos,
        "gripper_qos": args.qos,
        "time_base": cfg["time_base"],
    }
    print(f"offline: {len(offline.grasps)} grasps in {t_offline:.1f} s; playing live at rate {args.rate} ...")
    t0 = time.perf_counter()
    live = live_replay(args.bag, predictor, node, rate=args.rate, clock=args.clock,
                       expected=len(offline.grasps), progress=True)
    result = compare_decisions(offline, live.decisions)
    result.notes = {
        "command": "tgp bag compare " + " ".join(
            [str(args.bag)]
            + [f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items()
               if k in ("bundle", "rate", "time_base", "params", "qos") and v is not None]
            + (["--clock"] if args.clock else [])),
        "model_id": str(getattr(predictor, "model_id", "")) if predictor else "(none)",
        "time_base": cfg["time_base"],
        "rate": args.rate,
        "frames offline / accepted live": f"{offline.frames} / {live.frames_accepted}",
        "JointStates in the bag / accepted live": (
            f"{_count(args.bag, tp.joint_states)} / {live.gripper_accepted}"
        ),
        "playback wall time s": round(live.stats.duration_s, 1),
        "playback latest message late by ms": round(live.stats.late_s_max * 1000, 1),
        "live stamp fallbacks": live.diagnostics.get("stamp_fallbacks", ""),
        "live clock note": live.diagnostics.get("clock_problem", "") or "none",
        "reasons offline": dict(sorted(Counter(g.decision.reason for g in offline.grasps).items())),
        "wall time s": round(time.perf_counter() - t0 + t_offline, 1),
    }
    md = write_comparison(result, args.out)
    print(result.summary())
    for m in result.mismatches[:20]:
        print(f"  {m}", file=sys.stderr)
    print(f"comparison: {md}")
    return 0 if result.all_identical else 1


def run(args: argparse.Namespace) -> int:
    """Dispatch to record / eval / play / compare (``tgp`` turns a TgpError into a message and exit 2)."""
    if args.bag_command == "record":
        from training import bag_record

        return bag_record.run(args)
    if args.bag_command == "eval":
        return _eval(args)
    if args.bag_command == "compare":
        return _compare(args)
    from tactile_grasp_predictor.ros import bag_player

    return bag_player.run(args)
