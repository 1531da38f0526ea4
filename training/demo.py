"""``tgp demo`` (``make demo``): simulate, train, then gate live grasps of a simulated robot.

1. Simulate a training set (key frames) and a live set (camera streams) with ``tgp simulate``.
2. Get a model bundle: reuse the one an earlier ``tgp demo`` made with the same options, or
   train one. The demo's model is a small supervised ResNet-18 on Tb − Ta (the shared
   preprocessing) with an MLP probe on its frozen features, exported through
   ``bundle.write_bundle`` — a quick stand-in labelled as such in the report, not the
   MoCo v2 pipeline (``tgp train`` / ``tgp probe`` / ``tgp export``; pass ``--bundle`` to use
   a bundle from there).
3. Start ``predictor_node`` as its own process and ``sim_robot_node`` (closed loop) in this
   one, over real DDS on a private domain; replay every live trial: the robot closes, waits
   for the decision, lifts on LIFT and releases on ABORT, then reports the true outcome.
4. Print per-grasp decisions against outcomes, accuracy, LIFT precision, latency p50/p99,
   and write ``report.md``, ``report.png``, ``grasps.csv`` and ``summary.json``.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import math
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tactile_grasp_predictor.errors import ConfigError, TgpError

STAND_IN = "supervised ResNet-18 + MLP probe (demo stand-in, not MoCo v2)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``tgp demo`` options."""
    parser.add_argument("--out", type=Path, default=Path("demo_out"), help="working and report directory")
    parser.add_argument("--train-trials", type=int, default=600, help="simulated trials to train on")
    parser.add_argument("--live-trials", type=int, default=100, help="grasps run live (>= 100 for the demo)")
    parser.add_argument("--size", default="128x96", help="simulated GelSight image size WxH")
    parser.add_argument("--epochs", type=int, default=5, help="training epochs of the demo model")
    parser.add_argument("--rate", type=float, default=2.0, help="robot speed factor (1 = real time)")
    parser.add_argument("--seed", type=int, default=0, help="simulation / training seed")
    parser.add_argument("--bundle", type=Path, default=None, help="use this bundle instead of training one")
    parser.add_argument("--backend", default="torch", choices=("torch", "onnx"),
                        help="node inference backend")
    parser.add_argument("--retrain", action="store_true", help="train again even if a bundle exists")
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
def load_pairs(sim_dir: Path, pre: Any, progress: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Resized Ta/Tb frames ``N x h x w x 3`` and labels ``N`` of every trial in ``sim_dir``."""
    from tqdm import tqdm

    from tactile_grasp_predictor.data.calandra import CalandraShard, index_shards
    from tactile_grasp_predictor.preprocess import resize_frame

    index = index_shards(sim_dir)
    ta, tb, y = [], [], []
    by_file: dict[str, list[int]] = {}
    for ref in index.refs:
        by_file.setdefault(str(ref.path), []).append(ref.index)
    bar = tqdm(total=sum(map(len, by_file.values())), desc="load", unit="trial", disable=not progress)
    for path, indices in by_file.items():
        with CalandraShard(path) as shard:
            for i in indices:
                t = shard.read(i, keys=("gelsightA_before", "gelsightA_during"))
                ta.append(resize_frame(t.images["gelsightA_before"], pre))
                tb.append(resize_frame(t.images["gelsightA_during"], pre))
                y.append(bool(t.is_gripping))
                bar.update()
    bar.close()
    return np.stack(ta), np.stack(tb), np.asarray(y, dtype=bool)


def train_stand_in(sim_dir: Path, out: Path, epochs: int, seed: int, progress: bool,
                   backend: str) -> Path:
    """Train the demo's supervised model and write it as a bundle at ``out``."""
    import torch
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from tqdm import tqdm

    from tactile_grasp_predictor.bundle import write_bundle
    from tactile_grasp_predictor.models import Encoder
    from tactile_grasp_predictor.preprocess import (
        PreprocessConfig,
        difference_stats,
        preprocess_batch,
    )
    from tactile_grasp_predictor.probes import probe_from_sklearn

    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    pre = PreprocessConfig(resize_hw=(72, 96), crop=72)
    ta, tb, y = load_pairs(sim_dir, pre, progress)
    if len(y) < 20 or y.all() or not y.any():
        raise ConfigError(f"{sim_dir}: need >= 20 trials with both outcomes to train, got {len(y)}")
    pre = pre.with_stats(*difference_stats(ta, tb, pre))
    order = rng.permutation(len(y))
    n_val = max(10, len(y) // 5)
    val, tr = order[:n_val], order[n_val:]
    x_all = preprocess_batch(ta, tb, pre, crop=False)  # N x 3 x h x w (cropped per step)
    encoder = Encoder("resnet18").to(memory_format=torch.channels_last)
    head = torch.nn.Linear(encoder.feat_dim, 1)
    opt = torch.optim.AdamW([*encoder.parameters(), *head.parameters()], lr=1e-3, weight_decay=1e-4)
    yt = torch.as_tensor(y, dtype=torch.float32)
    pos_weight = torch.tensor([(1 - y[tr].mean()) / max(y[tr].mean(), 1e-3)])
    loss_fn = torch.nn.BCEWithLogitsLoss(pos_weight=pos_weight)
    batch, s = 32, pre.crop
    h, w = pre.resize_hw
    steps = epochs * max(1, len(tr) // batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=1e-3, total_steps=steps)
    bar = tqdm(total=steps, desc="train demo model", unit="step", disable=not progress)
    encoder.train()
    for _ in range(epochs):
        perm = rng.permutation(tr)
        for k in range(0, len(perm) - batch + 1, batch):
            idx = perm[k:k + batch]
            i0, j0 = rng.integers(0, h - s + 1), rng.integers(0, w - s + 1)  # random crop (augmentation)
            xb = x_all[idx, :, i0:i0 + s, j0:j0 + s]
            if rng.random() < 0.5:
                xb = xb.flip(3)
            logits = head(encoder.features(xb.contiguous(memory_format=torch.channels_last))).squeeze(1)
            loss = loss_fn(logits, yt[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            bar.update()
            bar.set_postfix(loss=f"{loss.item():.3f}")
    bar.close()
    encoder.eval()
    c0, c1 = (h - s) // 2, (w - s) // 2  # centre crop, as preprocess_pair does at run time
    with torch.inference_mode():
        feats = torch.cat([encoder.features(x_all[k:k + 64, :, c0:c0 + s, c1:c1 + s].contiguous())
                           for k in range(0, len(y), 64)]).numpy()
    mlp = make_pipeline(StandardScaler(), MLPClassifier((64,), alpha=1e-2, max_iter=500, random_state=seed))
    mlp.fit(feats[tr], y[tr])
    p_val = mlp.predict_proba(feats[val])[:, 1]
    grid = np.linspace(0.05, 0.95, 91)
    accs = [float(((p_val >= t) == y[val]).mean()) for t in grid]
    threshold = float(grid[int(np.argmax(accs))])
    metrics = {"val_accuracy": max(accs), "val_n": len(val), "train_n": len(tr),
               "val_majority": float(max(y[val].mean(), 1 - y[val].mean()))}
    probe = probe_from_sklearn(mlp)
    fingerprint = hashlib.sha256(np.ascontiguousarray(ta[:16]).tobytes() + y.tobytes()).hexdigest()[:16]
    return write_bundle(out, encoder, probe, {
        "preprocessing": pre, "threshold": threshold, "model_id": f"demo-supervised-r18-{fingerprint}",
        "training_method": STAND_IN, "config": {"epochs": epochs, "seed": seed, "batch": batch},
        "data_fingerprint": fingerprint, "metrics": metrics,
    }, export_onnx=backend == "onnx", overwrite=True)


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
    from rclpy.executors import MultiThreadedExecutor
    from rclpy.node import Node
    from rclpy.parameter import Parameter
    from tactile_grasp_msgs.msg import GraspDecision
    from tqdm import tqdm

    from tactile_grasp_predictor.ros.conversions import stamp_to_float
    from tactile_grasp_predictor.ros.sim_robot_node import SimRobotNode, TrialResult, load_trials

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
    robot = SimRobotNode(context=context, trials=load_trials([sim_dir], n), on_result=on_result,
                         autostart=False,
                         parameter_overrides=[Parameter("closed_loop", value=True),
                                              Parameter("rate", value=float(rate)),
                                              Parameter("start_delay_s", value=0.0),
                                              Parameter("gap_s", value=0.5),
                                              Parameter("after_lift_s", value=0.3),
                                              Parameter("decision_timeout_s", value=10.0)])
    executor = MultiThreadedExecutor(num_threads=3, context=context)
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
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
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


# ------------------------------------------------------------------------------ the report
def summarize(grasps: list[Grasp], threshold: float) -> dict[str, Any]:
    """Accuracy, LIFT precision/recall, baselines and latency percentiles of a run."""
    y = np.array([g.label for g in grasps], dtype=bool)
    lift = np.array([g.verdict == "LIFT" for g in grasps], dtype=bool)
    model = np.array([g.reason == "model" for g in grasps], dtype=bool)
    n = len(grasps)

    def pct(values: list[float], q: float) -> float:
        v = [x for x in values if math.isfinite(x)]
        return float(np.percentile(v, q)) if v else math.nan

    node_lat = [g.node_latency_ms for g in grasps if g.reason == "model"]
    e2e = [g.e2e_latency_ms for g in grasps]
    gripper_only = model.copy()  # LIFT whenever the gripper closed on something (the gripper's own check)
    return {
        "grasps": n,
        "decided_by_model": int(model.sum()),
        "reasons": {r: int(sum(g.reason == r for g in grasps)) for r in sorted({g.reason for g in grasps})},
        "success_rate": float(y.mean()) if n else math.nan,
        "accuracy": float((lift == y).mean()) if n else math.nan,
        "lift_precision": float(y[lift].mean()) if lift.any() else math.nan,
        "lift_recall": float(lift[y].mean()) if y.any() else math.nan,
        "lifts": int(lift.sum()),
        "baseline_always_lift_accuracy": float(y.mean()) if n else math.nan,
        "baseline_gripper_only_accuracy": float((gripper_only == y).mean()) if n else math.nan,
        "baseline_gripper_only_precision": float(y[gripper_only].mean()) if gripper_only.any() else math.nan,
        "threshold": threshold,
        "node_latency_ms_p50": pct(node_lat, 50),
        "node_latency_ms_p99": pct(node_lat, 99),
        "e2e_latency_ms_p50": pct(e2e, 50),
        "e2e_latency_ms_p99": pct(e2e, 99),
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
    (out / "summary.json").write_text(json.dumps({"summary": summary, "model": manifest}, indent=2,
                                                 default=str) + "\n")
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
    val_acc = float(manifest.get("metrics", {}).get("val_accuracy", math.nan))
    lines = [
        "# tgp demo: live grasp gating on a simulated robot", "",
        f"Model: `{manifest.get('model_id', '?')}` — {manifest.get('training_method', '?')}; "
        f"threshold {s['threshold']:.2f}; validation accuracy {val_acc:.1%}.",
        "", "Closed loop over real DDS: `sim_robot_node` closes the gripper, waits for `predictor_node`'s "
        "decision, lifts on LIFT and releases on ABORT; the simulator then tells the true outcome.", "",
        "| metric | value |", "|---|---|",
        f"| grasps | {s['grasps']} (decided by the model: {s['decided_by_model']}) |",
        f"| reasons | {', '.join(f'{k}: {v}' for k, v in s['reasons'].items())} |",
        f"| success rate (lifts that would hold) | {s['success_rate']:.1%} |",
        f"| **accuracy** | **{s['accuracy']:.1%}** |",
        f"| **LIFT precision** | **{s['lift_precision']:.1%}** ({s['lifts']} lifts) |",
        f"| LIFT recall | {s['lift_recall']:.1%} |",
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
    t0 = time.perf_counter()
    try:
        w, h = (int(v) for v in str(args.size).lower().split("x"))
    except ValueError as exc:
        raise ConfigError(f"--size {args.size!r}: expected WxH, e.g. 160x120") from exc
    if args.live_trials < 1 or args.train_trials < 20:
        raise ConfigError("--live-trials must be >= 1 and --train-trials >= 20")
    progress = not args.no_progress
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    print(f"[1/4] simulating {args.train_trials} training and {args.live_trials} live trials ({w}x{h})")
    train_dir = simulate(out / "sim_train", args.train_trials, args.seed, False, (w, h), progress)
    live_dir = simulate(out / "sim_live", args.live_trials, args.seed + 1000, True, (w, h), progress)

    from tactile_grasp_predictor.bundle import read_manifest

    bundle = args.bundle
    if bundle is None:
        bundle = out / "bundle"
        stamp = out / "bundle.options.json"
        options = {"train_trials": args.train_trials, "size": [w, h], "epochs": args.epochs,
                   "seed": args.seed, "backend": args.backend}
        reuse = (not args.retrain and (bundle / "manifest.json").is_file() and stamp.is_file()
                 and json.loads(stamp.read_text()) == options)
        if reuse:
            print(f"[2/4] reusing the model trained earlier: {bundle}")
        else:
            print(f"[2/4] training the demo model: {STAND_IN}")
            train_stand_in(train_dir, bundle, args.epochs, args.seed, progress, args.backend)
            stamp.write_text(json.dumps(options) + "\n")
    manifest = read_manifest(bundle)
    print(f"      model {manifest.get('model_id')} threshold {manifest.get('threshold')} "
          f"val accuracy {manifest.get('metrics', {}).get('val_accuracy', float('nan')):.3f}")
    print(f"[3/4] running {args.live_trials} grasps live (rate x{args.rate}) over DDS")
    grasps, extra = live(live_dir, bundle, args.live_trials, args.rate, args.backend, progress,
                         out / "predictor_node.log")
    summary = summarize(grasps, float(manifest.get("threshold", math.nan)))
    summary["extra_decisions"] = extra
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
    report = write_report(out, grasps, summary, manifest)
    print(f"report: {report} (+ report.png, grasps.csv, summary.json)")
    return 0
