"""``tgp demo`` (``make demo``): simulate, train, then gate live grasps of a simulated robot.

1. Simulate a training set (key frames) and a live set (camera streams) with ``tgp simulate``.
2. Get a model bundle through the real offline pipeline, the functions ``tgp train`` and
   ``tgp export`` call: MoCo v2 with the ``cpu`` config (fewer epochs, the queue fitted to
   the small set) → frozen features → MLP probe → bundle, its threshold chosen for a pick
   gate (``precision>=P`` on validation trials: a failed lift costs more than a regrasp).
   The run directory is resumable and keyed by config + data, so a second ``tgp demo``
   reuses the trained run and bundle, and a different config trains anew (``--bundle DIR``
   runs any exported bundle instead).
3. Start ``predictor_node`` as its own process and ``sim_robot_node`` (closed loop) in this
   one, over real DDS on a private domain; replay every live trial: the robot closes, waits
   for the decision, lifts on LIFT and releases on ABORT, then reports the true outcome.
4. Print per-grasp decisions against outcomes, accuracy, LIFT precision, latency p50/p99,
   and write ``report.md``, ``report.png``, ``grasps.csv`` and ``summary.json``.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import hashlib
import json
import math
import os
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tactile_grasp_predictor.errors import ConfigError, TgpError
from tactile_grasp_predictor.metrics import VerdictMetrics, format_metric, json_safe, percentiles
from training.config import OPERATIONAL_FIELDS, TrainConfig, load_config

DEMO_THRESHOLD_RULE = "precision>=0.85"
#: Torch threads the demo trains with. Fixed, not chosen from the machine's load: torch's CPU
#: kernels sum in an order that depends on the thread count, so 1 and 2 threads train different
#: weights (threshold 0.57 vs 0.56, offline accuracy 84.0 vs 83.8 %), and the demo's figures would
#: depend on what else the machine was doing. One thread is also the faster choice on a shared machine.
DEMO_THREADS = 1
#: Simulated grasps (with streams) whose trigger-picked frames fit the probe, its calibrator and threshold.
DEMO_PROBE_TRIALS = 400


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``tgp demo`` options."""
    parser.add_argument("--out", type=Path, default=Path("demo_out"), help="working and report directory")
    parser.add_argument("--train-trials", type=int, default=1200,
                        help="simulated trials for training (paper split: 2/3 train, 1/3 test)")
    parser.add_argument("--live-trials", type=int, default=100, help="grasps run live (>= 100 for the demo)")
    parser.add_argument("--probe-trials", type=int, default=DEMO_PROBE_TRIALS,
                        help="simulated trials with streams whose trigger-picked Ta/Tb (tgp harvest) fit the "
                             "probe and choose its calibrator and threshold (0: the training split's "
                             "protocol frames)")
    parser.add_argument("--size", default="128x96", help="simulated GelSight image size WxH")
    parser.add_argument("--config", default="cpu", help="training config (named or a YAML path)")
    parser.add_argument("--epochs", type=int, default=10,
                        help="MoCo epochs (the cpu config's 15 take longer)")
    parser.add_argument("--threads", type=int, default=DEMO_THREADS,
                        help="torch threads for training, part of the run's config: another count trains "
                             "other weights, in another run folder (default 1, whatever the machine's load)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config field, as in tgp train (repeatable)")
    parser.add_argument("--probe", default="mlp", choices=("knn", "svm", "mlp"), help="probe on the features")
    parser.add_argument("--threshold-rule", default=DEMO_THRESHOLD_RULE,
                        help="how tgp export picks the threshold: precision>=P or balanced_accuracy")
    parser.add_argument("--rate", type=float, default=2.0, help="robot speed factor (1 = real time)")
    parser.add_argument("--seed", type=int, default=0, help="simulation / training seed")
    parser.add_argument("--bundle", type=Path, default=None, help="use this bundle instead of training one")
    parser.add_argument("--backend", default="auto", choices=("auto", "torch", "onnx"),
                        help="node inference backend (auto and onnx export model.onnx; auto runs it)")
    parser.add_argument("--retrain", action="store_true", help="train and export again even if they exist")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


# ------------------------------------------------------------------------------ simulation
def simulate(out: Path, trials: int, seed: int, streams: bool, size: tuple[int, int], progress: bool) -> Path:
    """``tgp simulate`` into ``out`` (resumes; an existing complete set is reused)."""
    from training.sim import cli as sim_cli

    parser = argparse.ArgumentParser()
    sim_cli.add_arguments(parser)
    argv = ["--trials", str(trials), "--seed", str(seed), "--out", str(out), "--width", str(size[0]),
            "--height", str(size[1])]
    argv += ["--streams"] if streams else []
    argv += [] if progress else ["--no-progress"]
    if sim_cli.run(parser.parse_args(argv)) != 0:
        raise TgpError(f"tgp simulate failed for {out}")
    return out


# ------------------------------------------------------------------------------ the demo model
def fit_queue(cfg: TrainConfig, n_train: int) -> TrainConfig:
    """``cfg`` with ``moco_k`` lowered, if needed, to the largest whole-batch queue a small set allows.

    The queue rules (:func:`training.config.check_queue`): ``K % B == 0`` and ``K <= N - B``.
    """
    if cfg.method != "moco":
        return cfg
    b = cfg.batch_size
    k_max = ((n_train - b) // b) * b
    if k_max < b:
        raise ConfigError(f"moco: {n_train} training trials are too few for batch_size {b} (need >= {2 * b})")
    return cfg if cfg.moco_k <= k_max else dataclasses.replace(cfg, moco_k=k_max)


def run_key(cfg: TrainConfig, data_info: dict[str, Any]) -> str:
    """Key of a run directory: the config and the data's fingerprints.

    The config less the fields that leave the weights alone (``OPERATIONAL_FIELDS``); the thread
    count is in, since 1 and 2 threads train different weights.
    """
    conf = {k: v for k, v in cfg.to_dict().items() if k not in OPERATIONAL_FIELDS}
    blob = json.dumps({"config": conf, "data": data_info.get("fingerprint"), "split": data_info.get("kind")},
                      sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() or c in ".-" else "_" for c in text.replace(">=", "-ge-"))


def prepare_bundle(data_dir: Path, out: Path, config: str, overrides: list[str], probe: str,
                   threshold_rule: str, onnx: bool, retrain: bool, progress: bool,
                   probe_dir: Path | None = None, rate: float = 1.0) -> tuple[Path, bool]:
    """Train (or resume) ``config`` on ``data_dir`` and export a bundle; reuse both when they exist.

    The same steps as ``tgp train`` + ``tgp export``: ``load_config`` → ``load_splits`` →
    ``train`` (resumable run directory ``out/runs/<method>-<key>``, keyed by the config and
    the data's fingerprints, so a different config or data set trains a new run) →
    ``export_bundle`` into ``<run>/bundle-<probe>-<rule>``. The MoCo queue is fitted to the
    training split unless ``moco_k`` is among the overrides. With ``probe_dir`` (simulated
    trials with streams) the probe, its calibrator and its threshold are fitted on the Ta/Tb the
    node's trigger picks from those streams (:func:`harvest_set`), not on the training split's
    protocol frames: ``<run>/bundle-<probe>-<rule>-harvest<N>``. Returns (bundle, reused).
    """
    from training.data.sets import load_splits
    from training.export import export_bundle, parse_threshold_rule
    from training.train import train

    parse_threshold_rule(threshold_rule)
    cfg = load_config(config, overrides)
    train_set, test_set, info = load_splits(data_dir, cfg, progress=progress)
    if not any(o.split("=", 1)[0].strip() == "moco_k" for o in overrides):
        cfg = fit_queue(cfg, len(train_set))
    run_dir = out / "runs" / f"{cfg.method}-{run_key(cfg, info)}"
    harvested = f"-harvest{_count_trials(probe_dir)}" if probe_dir is not None else ""
    bundle = run_dir / f"bundle-{probe}-{_slug(threshold_rule)}{harvested}{'-onnx' if onnx else ''}"
    if not retrain and (bundle / "manifest.json").is_file():
        return bundle, True
    print(f"      {cfg.method} ({cfg.arch}, {cfg.epochs} epochs, K={cfg.moco_k}, "
          f"{cfg.num_threads} thread(s)) on {len(train_set)} trials -> {run_dir}")
    result = train(cfg, train_set, run_dir, resume=not retrain, progress=progress,
                   source={"data": str(Path(data_dir).resolve())})
    fit_set, trigger = train_set, None
    if probe_dir is not None:
        fit_set = harvest_set(probe_dir, out / "harvest_probe", cfg, progress)
        # the node's live settings: the frames were harvested in trial time with these timings x rate
        trigger = {"source": f"tgp demo (robot at x{rate:g})", "settings": demo_trigger(rate)}
    frames = "trigger-picked" if probe_dir is not None else "protocol"
    print(f"      exporting: {probe} probe on frozen features of {len(fit_set)} {frames} trials, "
          f"threshold rule {threshold_rule}")
    export_bundle(result, fit_set, test_set, bundle, probe, onnx, info, overwrite=True,
                  threshold_rule=threshold_rule, trigger=trigger)
    return bundle, False


def _count_trials(directory: Path) -> int:
    """Return the trials in the simulator's manifest of ``directory`` (its file names otherwise)."""
    try:
        return int(json.loads((directory / "sim_manifest.json").read_text())["trials"])
    except (OSError, ValueError, KeyError, TypeError):
        return len(list(directory.glob("*.h5")))


def demo_node_config(rate: float) -> Any:
    """Return the node's configuration with the demo's trigger (:func:`demo_trigger` at ``rate``)."""
    from tactile_grasp_predictor.node_config import NodeConfig

    return NodeConfig.from_values({f"trigger.{k}": v for k, v in demo_trigger(rate).items()})


def harvest_set(sim_dir: Path, out: Path, cfg: TrainConfig, progress: bool) -> Any:
    """Harvest ``sim_dir`` with the demo's trigger in trial time into ``out``; return it as a ``TactileSet``.

    A finished harvest of the same streams with the same trigger is reused.
    """
    from training.harvest import harvest, load_harvest

    marker = out / "harvest.json"
    stamp = {"source": str(sim_dir.resolve()), "trigger": demo_trigger(1.0)}
    if not (marker.is_file() and json.loads(marker.read_text()) == stamp):
        print(f"      tgp harvest {sim_dir}: the Ta/Tb the node's trigger picks from each stream")
        summary = harvest([sim_dir], out, (demo_node_config(1.0), {}), progress=progress)
        print(f"      harvested {summary.line()}")
        marker.write_text(json.dumps(stamp))
    return load_harvest(out, cfg, progress)


def describe_model(manifest: dict[str, Any]) -> str:
    """One line naming the model: method, epochs, probe, trials, threshold and its rule, test figures."""
    conf = manifest.get("config") or {}
    metrics = manifest.get("metrics") or {}
    data = manifest.get("data_fingerprint") or {}
    probe = (manifest.get("probe") or {}).get("kind", "?") + " probe"
    if metrics.get("probe_params"):
        probe += f" ({metrics['probe_params']})"
    parts = [f"{manifest.get('training_method', '?')} ({conf.get('arch', '?')}, "
             f"{metrics.get('epochs', conf.get('epochs', '?'))} epochs, config {conf.get('name', '?')}"
             f"{', K=' + str(conf['moco_k']) if 'moco_k' in conf else ''})",
             f"{probe} on frozen features"]
    if "n_train" in data:
        parts.append(f"{data['n_train']} training / {data.get('n_test', '?')} test trials")
    threshold = manifest.get("threshold", math.nan)
    parts.append(f"threshold {float(threshold):.2f} ({metrics.get('threshold_rule', 'rule not recorded')})")
    val = metrics.get("validation")
    if isinstance(val, dict) and "lift_precision" in val:  # an undefined figure is null there: "–"
        parts.append(f"validation ({val.get('n', '?')} trials): LIFT precision "
                     f"{format_metric(val['lift_precision'], '.1%')}, "
                     f"recall {format_metric(val.get('lift_recall'), '.1%')}")
    test = metrics.get("test")
    if isinstance(test, dict) and "accuracy" in test:
        parts.append(f"offline test: accuracy {format_metric(test['accuracy'], '.1%')}, LIFT precision "
                     f"{format_metric(test.get('lift_precision'), '.1%')}, "
                     f"AUC {format_metric(test.get('auc'), '.3f')}")
    return "; ".join(parts)


def link_latest(link: Path, bundle: Path) -> None:
    """Point ``link`` (``demo_out/bundle``, what the launch examples use) at ``bundle``.

    Only a symlink (or nothing) is replaced; a real directory there is left alone.
    """
    if link.is_symlink():
        link.unlink()
    elif link.exists():
        print(f"      note: {link} is not a link made by tgp demo; left as it is")
        return
    link.symlink_to(os.path.relpath(bundle, link.parent), target_is_directory=True)


# ------------------------------------------------------------------------------ the live run
#: Trigger timings in trial seconds. ``tb_delay_s`` matches the simulator's protocol, whose Tb
#: ("during") is taken about 0.75 s after the fingers settle (measured on its trajectories);
#: simulated objects may push the fingers back a little while closing, so re-arm only on a
#: real opening (1 cm).
DEMO_TRIGGER_S = {"settle_window_s": 0.25, "tb_delay_s": 0.75, "ta_max_age_s": 1.0, "tb_timeout_s": 3.0,
                  "frame_max_age_s": 0.5, "gripper_silence_s": 1.0}


def demo_trigger(rate: float) -> dict[str, float]:
    """Trigger parameters for a robot replayed ``rate`` times faster than real time."""
    scaled = {k: round(v / rate, 6) for k, v in DEMO_TRIGGER_S.items()}
    return {**scaled, "reopen_threshold_m": 0.01}


@dataclass
class Grasp:
    """One live grasp as the demo scores it."""

    index: int
    source: str
    label: bool
    verdict: str  # LIFT | ABORT | NONE (no decision came)
    p_success: float
    reason: str
    grasp_id: int
    node_latency_ms: float  # Tb trigger → decision, measured by the node
    e2e_latency_ms: float  # Tb frame stamp → decision received here (includes both DDS hops)


def live(sim_dir: Path, bundle: Path, n: int, rate: float, backend: str, progress: bool,
         log_path: Path) -> tuple[list[Grasp], int]:
    """Run predictor_node (subprocess) + sim_robot_node (here) closed loop over ``n`` live trials."""
    import rclpy
    from diagnostic_msgs.msg import DiagnosticArray
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.node import Node
    from rclpy.parameter import Parameter
    from tactile_grasp_msgs.msg import GraspDecision
    from tqdm import tqdm

    from tactile_grasp_predictor.data.trial_streams import load_trial_streams
    from tactile_grasp_predictor.ros.conversions import stamp_to_float
    from tactile_grasp_predictor.ros.sim_robot_node import SimRobotNode, TrialResult
    from tactile_grasp_predictor.ros.spin import stop_node_process

    domain = str(100 + os.getpid() % 100)  # a private DDS domain: other ROS users are not disturbed
    env = dict(os.environ, ROS_DOMAIN_ID=domain, ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST",
               ROS_LOCALHOST_ONLY="1")
    os.environ.update({k: env[k] for k in ("ROS_DOMAIN_ID", "ROS_AUTOMATIC_DISCOVERY_RANGE",
                                          "ROS_LOCALHOST_ONLY")})
    cmd = [sys.executable, "-m", "tactile_grasp_predictor.ros.predictor_node", "--ros-args",
           "-p", f"bundle_path:={bundle}", "-p", f"backend:={backend}", "-p", "num_threads:=1"]
    for name, value in demo_trigger(rate).items():
        cmd += ["-p", f"trigger.{name}:={value}"]
    with log_path.open("w") as log:
        proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
    context = rclpy.context.Context()
    rclpy.init(context=context)
    received: dict[int, float] = {}  # grasp_id → receive time (system clock, as the stamps)
    extra = 0
    ready = threading.Event()

    def on_decision(msg: GraspDecision) -> None:
        received[int(msg.grasp_id)] = time.time()

    def on_diag(msg: DiagnosticArray) -> None:
        for st in msg.status:
            if any(kv.key == "model_loaded" and kv.value == "True" for kv in st.values):
                ready.set()

    bar = tqdm(total=n, desc="live grasps", unit="grasp", disable=not progress)
    results: list[TrialResult] = []

    def on_result(r: TrialResult) -> None:
        results.append(r)
        ok = r.decision is not None and (r.decision.verdict == GraspDecision.LIFT) == bool(r.label)
        bar.update()
        n_ok = sum(_correct(x) for x in results)
        bar.set_postfix(correct=f"{n_ok}/{len(results)}", last="ok" if ok else "x")

    listener = Node("demo_listener", context=context)
    listener.create_subscription(GraspDecision, "/predictor_node/decision", on_decision, 50)
    listener.create_subscription(DiagnosticArray, "/diagnostics", on_diag, 10)
    trials = load_trial_streams([sim_dir], n or None)
    robot = SimRobotNode(context=context, trials=trials, on_result=on_result,
                         autostart=False,
                         parameter_overrides=[Parameter("closed_loop", value=True),
                                              Parameter("rate", value=float(rate)),
                                              Parameter("start_delay_s", value=0.0),
                                              Parameter("gap_s", value=0.5),
                                              Parameter("after_lift_s", value=0.3),
                                              Parameter("decision_timeout_s", value=10.0)])
    # one thread: no callback here blocks (the robot replays on its own thread), and rclpy's
    # multi-threaded executor costs ~5x the CPU per message (docs/node.md)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(listener)
    executor.add_node(robot)
    spin = threading.Thread(target=executor.spin, daemon=True)
    spin.start()
    try:
        deadline = time.monotonic() + 180
        while not ready.is_set():
            if proc.poll() is not None:
                raise TgpError(f"predictor_node exited with {proc.returncode}; see {log_path}")
            if time.monotonic() > deadline:
                raise TgpError(f"predictor_node did not report a loaded model in 180 s; see {log_path}")
            time.sleep(0.1)
        while robot._img_pub.get_subscription_count() == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        robot.start()
        while not robot.done.wait(0.5):
            if proc.poll() is not None:
                raise TgpError(f"predictor_node died during the run; see {log_path}")
        time.sleep(0.5)  # the last decision's DDS hop
    finally:
        bar.close()
        executor.shutdown(timeout_sec=5)
        spin.join(10)
        robot.destroy_node()
        listener.destroy_node()
        rclpy.shutdown(context=context)
        stop_node_process(proc)
    grasps = []
    decided = {int(r.decision.grasp_id) for r in results if r.decision is not None}
    extra = len(set(received) - decided)
    for r in results:
        d = r.decision
        if d is None:
            grasps.append(Grasp(r.index, r.source, bool(r.label), "NONE", math.nan, "no_decision", 0,
                                math.nan, math.nan))
            continue
        tb = stamp_to_float(d.tb_stamp)
        recv = received.get(int(d.grasp_id))
        timed = recv is not None and tb is not None and d.reason == "model"
        e2e = (recv - tb) * 1000.0 if timed else math.nan  # type: ignore[operator]  # timed: not None
        grasps.append(Grasp(r.index, r.source, bool(r.label),
                            "LIFT" if d.verdict == GraspDecision.LIFT else "ABORT", float(d.p_success),
                            d.reason, int(d.grasp_id), float(d.latency_ms), e2e))
    return grasps, extra


def _correct(r: Any) -> bool:
    from tactile_grasp_msgs.msg import GraspDecision

    return r.decision is not None and (r.decision.verdict == GraspDecision.LIFT) == bool(r.label)


def score_offline(live_dir: Path, bundle: Path, grasps: list[Grasp], out: Path,
                  progress: bool) -> dict[str, dict[str, Any]]:
    """Score the live trials offline with the same bundle: protocol frames, and trigger-picked frames.

    ``protocol frames``: the simulator's ``gelsightA_before/during`` of each trial
    (:func:`training.score.score_shards`); ``trigger-picked frames``: ``tgp harvest`` of the
    trials' streams with the demo's trigger in trial time and the bundle, so every grasp gets the
    decision the node's session makes offline (no part found included). Each against the same
    live grasps' outcomes; ``same_as_live`` counts the grasps with the live node's verdict.
    """
    from tactile_grasp_predictor.predictor import Predictor
    from training.harvest import harvest
    from training.score import score_shards

    predictor = Predictor.from_bundle(bundle, backend="torch", num_threads=1)
    protocol, _ = score_shards(predictor, live_dir, progress=progress)
    trig = harvest([live_dir], out / "harvest_live", (demo_node_config(1.0), {}), predictor=predictor,
                   progress=progress).rows
    live = {g.source: g for g in grasps}
    result: dict[str, dict[str, Any]] = {}
    kinds = (("protocol frames", protocol, "trial"), ("trigger-picked frames", trig, "source"))
    for kind, rows, key in kinds:
        scored = [(r, live[str(r[key])]) for r in rows if str(r[key]) in live]
        lift = np.array([r["verdict"] == "LIFT" for r, _ in scored], dtype=bool)
        y = np.array([g.label for _, g in scored], dtype=bool)
        m = VerdictMetrics.of(lift, y)
        result[kind] = {"n": len(scored), "accuracy": m.accuracy, "lift_precision": m.precision,
                        "lift_recall": m.recall, "lifts": m.lifts,
                        "same_as_live": sum(r["verdict"] == g.verdict for r, g in scored)}
    return result


# ------------------------------------------------------------------------------ the report
def summarize(grasps: list[Grasp], threshold: float) -> dict[str, Any]:
    """Accuracy, LIFT precision/recall, baselines and latency percentiles of a run (NaN where undefined)."""
    y = np.array([g.label for g in grasps], dtype=bool)
    lift = np.array([g.verdict == "LIFT" for g in grasps], dtype=bool)
    model = np.array([g.reason == "model" for g in grasps], dtype=bool)
    verdicts = VerdictMetrics.of(lift, y)
    always_lift = VerdictMetrics.of(np.ones_like(y), y)
    gripper_only = VerdictMetrics.of(model, y)  # LIFT whenever the gripper closed on something
    node_lat = percentiles([g.node_latency_ms for g in grasps if g.reason == "model"], (50, 99))
    e2e = percentiles([g.e2e_latency_ms for g in grasps], (50, 99))
    return {
        "grasps": len(grasps),
        "decided_by_model": int(model.sum()),
        "reasons": {r: int(sum(g.reason == r for g in grasps)) for r in sorted({g.reason for g in grasps})},
        "success_rate": always_lift.precision,
        "accuracy": verdicts.accuracy,
        "lift_precision": verdicts.precision,
        "lift_recall": verdicts.recall,
        "lifts": verdicts.lifts,
        "baseline_always_lift_accuracy": always_lift.accuracy,
        "baseline_gripper_only_accuracy": gripper_only.accuracy,
        "baseline_gripper_only_precision": gripper_only.precision,
        "threshold": threshold,
        "node_latency_ms_p50": node_lat["p50"],
        "node_latency_ms_p99": node_lat["p99"],
        "e2e_latency_ms_p50": e2e["p50"],
        "e2e_latency_ms_p99": e2e["p99"],
    }


def write_report(out: Path, grasps: list[Grasp], summary: dict[str, Any], manifest: dict[str, Any]) -> Path:
    """``report.md`` + ``report.png`` + ``grasps.csv`` + ``summary.json`` in ``out``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with (out / "grasps.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(asdict(grasps[0]).keys()) if grasps else ["index"])
        writer.writeheader()
        for g in grasps:
            writer.writerow(asdict(g))
    doc = json_safe({"summary": summary, "model": manifest})  # undefined (NaN) → null
    (out / "summary.json").write_text(json.dumps(doc, indent=2, default=str, allow_nan=False) + "\n")
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    ps = [(g.p_success, g.label) for g in grasps if math.isfinite(g.p_success)]
    bins = np.linspace(0, 1, 21)
    axes[0].hist([p for p, lab in ps if lab], bins=bins, alpha=0.6, label="lift succeeded")
    axes[0].hist([p for p, lab in ps if not lab], bins=bins, alpha=0.6, label="lift failed")
    axes[0].axvline(summary["threshold"], color="k", ls="--", label=f"threshold {summary['threshold']:.2f}")
    axes[0].set_xlabel("p(success) at Tb")
    axes[0].set_ylabel("grasps")
    axes[0].set_title(f"accuracy {summary['accuracy']:.1%}, LIFT precision {summary['lift_precision']:.1%}")
    axes[0].legend()
    lat = [g.node_latency_ms for g in grasps if math.isfinite(g.node_latency_ms) and g.reason == "model"]
    e2e = [g.e2e_latency_ms for g in grasps if math.isfinite(g.e2e_latency_ms)]
    axes[1].hist([lat, e2e], bins=30,
                 label=["in node (Tb trigger → decision)", "Tb stamp → decision received"])
    axes[1].set_xlabel("latency (ms)")
    axes[1].set_title(f"in node: p50 {summary['node_latency_ms_p50']:.1f} ms, "
                      f"p99 {summary['node_latency_ms_p99']:.1f} ms")
    axes[1].legend()
    fig.tight_layout()
    fig.savefig(out / "report.png", dpi=110)
    plt.close(fig)
    s = summary
    lines = [
        "# tgp demo: live grasp gating on a simulated robot", "",
        f"Model: `{manifest.get('model_id', '?')}` — {describe_model(manifest)}.",
        "", "Closed loop over real DDS: `sim_robot_node` closes the gripper, waits for `predictor_node`'s "
        "decision, lifts on LIFT and releases on ABORT; the simulator then tells the true outcome.", "",
        "| metric | value |", "|---|---|",
        f"| grasps | {s['grasps']} (decided by the model: {s['decided_by_model']}) |",
        f"| reasons | {', '.join(f'{k}: {v}' for k, v in s['reasons'].items())} |",
        f"| success rate (lifts that would hold) | {s['success_rate']:.1%} |",
        f"| **accuracy** | **{s['accuracy']:.1%}** |",
        f"| **LIFT precision** | **{s['lift_precision']:.1%}** ({s['lifts']} lifts) |",
        f"| LIFT recall | {s['lift_recall']:.1%} |",
        *[f"| offline, same bundle and trials, {kind} | accuracy {format_metric(m['accuracy'], '.1%')}, "
          f"LIFT precision {format_metric(m['lift_precision'], '.1%')}, recall "
          f"{format_metric(m['lift_recall'], '.1%')} (same verdict as live: {m['same_as_live']}/{m['n']}) |"
          for kind, m in s.get("offline", {}).items()],
        f"| baseline: always lift (accuracy = precision) | {s['baseline_always_lift_accuracy']:.1%} |",
        f"| baseline: gripper only (lift unless no part) | "
        f"accuracy {s['baseline_gripper_only_accuracy']:.1%}, "
        f"precision {s['baseline_gripper_only_precision']:.1%} |",
        f"| latency in the node, Tb trigger → decision | p50 {s['node_latency_ms_p50']:.1f} ms, "
        f"p99 {s['node_latency_ms_p99']:.1f} ms |",
        f"| Tb frame stamp → decision received (both DDS hops) | p50 {s['e2e_latency_ms_p50']:.1f} ms, "
        f"p99 {s['e2e_latency_ms_p99']:.1f} ms |",
        "", "![report](report.png)", "", "Per-grasp decisions: `grasps.csv`.", "",
    ]
    (out / "report.md").write_text("\n".join(lines))
    return out / "report.md"


# ------------------------------------------------------------------------------ the command
def run(args: argparse.Namespace) -> int:
    """Run the demo; 0 on success."""
    import warnings

    # the training cache is memory-mapped read-only; torch warns once per process, harmlessly
    warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
    t0 = time.perf_counter()
    try:
        w, h = (int(v) for v in str(args.size).lower().split("x"))
    except ValueError as exc:
        raise ConfigError(f"--size {args.size!r}: expected WxH, e.g. 160x120") from exc
    if args.live_trials < 1 or args.train_trials < 20 or args.epochs < 1 or args.threads < 1:
        raise ConfigError("--live-trials, --epochs and --threads must be >= 1 and --train-trials >= 20")
    progress = not args.no_progress
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    print(f"[1/4] simulating {args.train_trials} training, {args.probe_trials} probe and {args.live_trials} "
          f"live trials ({w}x{h}; probe and live with camera streams)")
    train_dir = simulate(out / "sim_train", args.train_trials, args.seed, False, (w, h), progress)
    probe_dir = (simulate(out / "sim_probe", args.probe_trials, args.seed + 2000, True, (w, h), progress)
                 if args.probe_trials > 0 else None)
    live_dir = simulate(out / "sim_live", args.live_trials, args.seed + 1000, True, (w, h), progress)

    from tactile_grasp_predictor.bundle import read_manifest

    bundle = args.bundle
    if bundle is None:
        overrides = [f"epochs={args.epochs}", f"seed={args.seed}", f"num_threads={args.threads}",
                     *args.overrides]
        print(f"[2/4] model: tgp train ({args.config} config: MoCo v2) -> frozen features -> {args.probe} "
              "probe -> tgp export bundle")
        bundle, reused = prepare_bundle(train_dir, out, args.config, overrides, args.probe,
                                        args.threshold_rule, args.backend != "torch", args.retrain, progress,
                                        probe_dir, args.rate)
        if reused:
            print(f"      reusing the run and bundle trained earlier with the same config and data: {bundle}")
        link_latest(out / "bundle", bundle)
    manifest = read_manifest(bundle)
    print(f"      {manifest.get('model_id')}: {describe_model(manifest)}")
    print(f"[3/4] running {args.live_trials} grasps live (rate x{args.rate}) over DDS")
    grasps, extra = live(live_dir, bundle, args.live_trials, args.rate, args.backend, progress,
                         out / "predictor_node.log")
    summary = summarize(grasps, float(manifest.get("threshold", math.nan)))
    summary["extra_decisions"] = extra
    print("      the live trials offline with the same bundle: protocol frames, then the trigger's frames")
    summary["offline"] = score_offline(live_dir, bundle, grasps, out, progress)
    summary["wall_s"] = time.perf_counter() - t0
    print("[4/4] results")
    print(f"{'#':>4} {'trial':<28} {'outcome':<8} {'decision':<6} {'p':>6} {'reason':<20} {'ms':>7}")
    for g in grasps:
        print(f"{g.index:>4} {g.source[-28:]:<28} {'success' if g.label else 'failure':<8} {g.verdict:<6} "
              f"{g.p_success:>6.3f} {g.reason:<20} {g.node_latency_ms:>7.1f}")
    s = summary
    print(f"grasps {s['grasps']}  accuracy {s['accuracy']:.1%}  LIFT precision {s['lift_precision']:.1%} "
          f"(always-lift {s['baseline_always_lift_accuracy']:.1%})  "
          f"latency p50 {s['node_latency_ms_p50']:.1f} ms "
          f"p99 {s['node_latency_ms_p99']:.1f} ms (end to end p50 {s['e2e_latency_ms_p50']:.1f} / "
          f"p99 {s['e2e_latency_ms_p99']:.1f} ms)  total {s['wall_s'] / 60:.1f} min")
    for kind, m in summary["offline"].items():
        print(f"offline, {kind}: accuracy {format_metric(m['accuracy'], '.1%')}  LIFT precision "
              f"{format_metric(m['lift_precision'], '.1%')}  recall {format_metric(m['lift_recall'], '.1%')}"
              f"  ({m['n']} trials, same verdict as live: {m['same_as_live']})")
    print(f"model: {describe_model(manifest)}")
    report = write_report(out, grasps, summary, manifest)
    print(f"report: {report} (+ report.png, grasps.csv, summary.json)")
    return 0
