"""The replay report: metrics over grasps, written as Markdown + PNG + JSON.

Metrics (over the grasps that have a label; "positive" = the lift succeeded = LIFT is right):

- accuracy, LIFT precision (of the LIFT verdicts, the share that succeeded), LIFT recall
  (of the successful grasps, the share let through), confusion matrix (rows: label);
- ROC and AUC of the score ``p_success`` (0 where the gate aborted without the model),
  and AUC over only the grasps the model ran on;
- reliability (calibration) of ``p_success`` in 10 equal-width bins, with the expected
  calibration error (ECE);
- decision latency (Tb trigger → decision) histogram and percentiles;
- the same verdict metrics for the gripper-only baseline (LIFT whenever the gripper settles
  not fully closed / reports HOLDING);
- a per-grasp table (bag, grasp id, Ta/Tb stamps, p, verdict, label, reason).

The figures come from :mod:`tactile_grasp_predictor.metrics` (NaN where undefined, written as
``null``); matplotlib is imported only to draw the PNGs.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tactile_grasp_predictor.decision import Verdict
from tactile_grasp_predictor.metrics import (
    VerdictMetrics,
    format_metric,
    json_safe,
    percentiles,
    reliability,
    roc_curve,
)
from tactile_grasp_predictor.replay.evaluate import BagEvaluation, GraspResult


def compute_metrics(grasps: Sequence[GraspResult]) -> dict[str, Any]:
    """Every number of the report (JSON-friendly)."""
    labelled = [g for g in grasps if g.label is not None]
    y = [bool(g.label) for g in labelled]
    lift = [g.decision.verdict == Verdict.LIFT for g in labelled]
    base = [g.baseline == Verdict.LIFT for g in labelled]
    model = VerdictMetrics.of(lift, y)
    gripper = VerdictMetrics.of(base, y)
    scores = [0.0 if math.isnan(g.decision.p_success) else g.decision.p_success for g in labelled]
    fpr, tpr, auc = roc_curve(scores, y)
    ran = [g for g in labelled if not math.isnan(g.decision.p_success)]
    _, _, auc_ran = roc_curve([g.decision.p_success for g in ran], [bool(g.label) for g in ran])
    rel = reliability([g.decision.p_success for g in ran], [bool(g.label) for g in ran])
    lat = [g.decision.latency_ms for g in grasps if g.decision.reason == "model"]
    lat_summary = percentiles(lat, (50, 90, 99)) | {"max": max(lat, default=math.nan)}
    return {
        "grasps": len(grasps),
        "labelled": len(labelled),
        "model_ran": sum(not math.isnan(g.decision.p_success) for g in grasps),
        "verdicts": dict(Counter(g.decision.verdict.name for g in grasps)),
        "reasons": dict(Counter(g.decision.reason for g in grasps)),
        "model": model.to_dict(),
        "gripper_baseline": gripper.to_dict(),
        "roc": json_safe({"fpr": fpr, "tpr": tpr, "auc": auc, "auc_model_ran": auc_ran}),
        "reliability": rel,
        "latency_ms": json_safe(lat_summary) | {"n": len(lat), "values": [round(v, 3) for v in lat]},
        "success_rate": float(np.mean(y)) if y else None,
    }


# ------------------------------------------------------------------------------ writing
def _fmt(x: Any, digits: int = 3) -> str:
    return format_metric(x, f".{digits}f")


def _save(fig: Any, path: Path) -> str:
    """Lay out, write and close ``fig``; return the file name."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path.name


def _plots(metrics: dict[str, Any], out: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    files = []
    fig, ax = plt.subplots(figsize=(4.5, 4))
    roc = metrics["roc"]
    ax.plot(roc["fpr"], roc["tpr"], lw=2, label=f"model (AUC {_fmt(roc['auc'])})")
    base = metrics["gripper_baseline"]["confusion"]["matrix"]
    neg, pos = base[0][0] + base[0][1], base[1][0] + base[1][1]
    if neg and pos:
        ax.plot([base[0][1] / neg], [base[1][1] / pos], "s", color="C3", label="gripper-only baseline")
    ax.plot([0, 1], [0, 1], "--", color="grey", lw=1)
    ax.set(xlabel="false LIFT rate", ylabel="true LIFT rate", title="ROC", xlim=(0, 1), ylim=(0, 1.02))
    ax.legend(loc="lower right", fontsize=8)
    files.append(_save(fig, out / "roc.png"))

    fig, ax = plt.subplots(figsize=(4.5, 4))
    bins = [b for b in metrics["reliability"]["bins"] if b["n"]]
    ax.plot([0, 1], [0, 1], "--", color="grey", lw=1, label="perfect calibration")
    if bins:
        ax.plot([b["mean_p"] for b in bins], [b["success_rate"] for b in bins], "o-", label="model")
        for b in bins:
            ax.annotate(
                str(b["n"]),
                (b["mean_p"], b["success_rate"]),
                fontsize=7,
                xytext=(3, -8),
                textcoords="offset points",
            )
    ax.set(
        xlabel="predicted p(success)",
        ylabel="observed success rate",
        title=f"Reliability (ECE {_fmt(metrics['reliability']['ece'])})",
        xlim=(0, 1),
        ylim=(0, 1.02),
    )
    ax.legend(loc="upper left", fontsize=8)
    files.append(_save(fig, out / "reliability.png"))

    fig, ax = plt.subplots(figsize=(5, 3.5))
    values = metrics["latency_ms"]["values"]
    if values:
        ax.hist(values, bins=min(40, max(5, len(values) // 5)), color="C0")
        for k, c in (("p50", "C1"), ("p99", "C3")):
            ax.axvline(
                metrics["latency_ms"][k], color=c, ls="--", label=f"{k} {metrics['latency_ms'][k]:.1f} ms"
            )
        ax.legend(fontsize=8)
    ax.set(xlabel="decision latency, Tb trigger → decision (ms)", ylabel="grasps", title="Decision latency")
    files.append(_save(fig, out / "latency.png"))

    fig, axes = plt.subplots(1, 2, figsize=(7, 3.3))
    for ax, key, title in (
        (axes[0], "model", "tactile model"),
        (axes[1], "gripper_baseline", "gripper only"),
    ):
        m = np.array(metrics[key]["confusion"]["matrix"])
        ax.imshow(m, cmap="Blues")
        for (i, j), v in np.ndenumerate(m):
            ax.text(j, i, str(v), ha="center", va="center", color="black")
        ax.set(
            xticks=[0, 1],
            yticks=[0, 1],
            xticklabels=["ABORT", "LIFT"],
            yticklabels=["fail", "success"],
            xlabel="verdict",
            ylabel="label",
            title=title,
        )
    files.append(_save(fig, out / "confusion.png"))
    return files


def write_report(
    evaluations: Sequence[BagEvaluation],
    out_dir: Path,
    *,
    title: str = "Grasp replay report",
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Write ``report.md``, ``report.json`` and the PNGs into ``out_dir``; return the metrics."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    grasps = [g for e in evaluations for g in e.grasps]
    metrics = compute_metrics(grasps)
    files = _plots(metrics, out)
    bags = [
        {
            "bag": e.bag,
            "path": e.path,
            "grasps": len(e.grasps),
            "messages": e.messages,
            "frames": e.frames,
            "frames_decoded": e.frames_decoded,
            "seconds": round(e.seconds, 3),
            "time_base": e.time_base,
            "stamp_fallbacks": e.stamp_fallbacks,
            "error": e.error,
            "warnings": e.warnings,
            "topics": e.topics.to_dict() if e.topics else None,
        }
        for e in evaluations
    ]
    doc = {
        "title": title,
        "metrics": metrics,
        "bags": bags,
        "per_grasp": [g.to_dict() for g in grasps],
        "plots": files,
    } | (extra or {})
    (out / "report.json").write_text(json.dumps(json_safe(doc), indent=1, allow_nan=False))
    (out / "report.md").write_text(_markdown(doc))
    return metrics


def _markdown(doc: dict[str, Any]) -> str:
    m = doc["metrics"]
    mod, base = m["model"], m["gripper_baseline"]
    lines = [f"# {doc['title']}", ""]
    for key in ("model_id", "bundle", "threshold", "command"):
        if key in doc:
            lines.append(f"- {key}: `{doc[key]}`")
    lines += [
        f"- grasps: {m['grasps']} ({m['labelled']} labelled, model ran on {m['model_ran']}); "
        f"success rate {_fmt(m['success_rate'])}",
        f"- verdicts: {m['verdicts']}; reasons: {m['reasons']}",
        "",
        "## Verdicts against labels",
        "",
        "| | tactile model | gripper-only baseline |",
        "|---|---|---|",
    ]
    for name, key in (
        ("accuracy", "accuracy"),
        ("LIFT precision", "lift_precision"),
        ("LIFT recall", "lift_recall"),
    ):
        lines.append(f"| {name} | {_fmt(mod[key])} | {_fmt(base[key])} |")
    cm, cb = mod["confusion"]["matrix"], base["confusion"]["matrix"]
    lines += [
        f"| confusion [[TN, FP], [FN, TP]] | {cm} | {cb} |",
        f"| ROC AUC (all labelled; p = 0 where no model ran) | {_fmt(m['roc']['auc'])} | – |",
        f"| ROC AUC (grasps the model ran on) | {_fmt(m['roc']['auc_model_ran'])} | – |",
        f"| calibration ECE | {_fmt(m['reliability']['ece'])} | – |",
        "",
        "The baseline lifts whenever the gripper settles with the fingers not fully closed "
        "(or reports HOLDING).",
        "",
        "![ROC](roc.png) ![reliability](reliability.png)",
        "",
        "![confusion](confusion.png)",
        "",
        "## Decision latency",
        "",
        f"Tb trigger → decision over {m['latency_ms']['n']} model decisions: "
        f"p50 {_fmt(m['latency_ms']['p50'], 2)} ms, p90 {_fmt(m['latency_ms']['p90'], 2)} ms, "
        f"p99 {_fmt(m['latency_ms']['p99'], 2)} ms, max {_fmt(m['latency_ms']['max'], 2)} ms "
        "(offline: the measured decode + model time).",
        "",
        "![latency](latency.png)",
        "",
        "## Bags",
        "",
        "| bag | grasps | messages | frames | decoded | s | time base (stamp fallbacks) | problems |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for b in doc["bags"]:
        problems = "; ".join(([b["error"]] if b["error"] else []) + b["warnings"]).replace("|", "/") or "–"
        lines.append(
            f"| {b['bag']} | {b['grasps']} | {b['messages']} | {b['frames']} | {b['frames_decoded']} "
            f"| {b['seconds']} | {b.get('time_base', '')} ({b.get('stamp_fallbacks', 0)}) | {problems} |"
        )
    lines += [
        "",
        "## Per grasp",
        "",
        "| bag | grasp | Ta stamp | Tb stamp | p | verdict | label | reason | baseline | latency ms |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for g in doc["per_grasp"]:
        label = {True: "success", False: "fail", None: "–"}[g["label"]]
        lines.append(
            f"| {g['bag']} | {g['grasp_id']} | {_fmt(g['ta_stamp'], 3)} | {_fmt(g['tb_stamp'], 3)} | "
            f"{_fmt(g['p_success'])} | {g['verdict']} | {label} | {g['reason']} | {g['baseline']} | "
            f"{_fmt(g['latency_ms'], 2)} |"
        )
    return "\n".join(lines) + "\n"
