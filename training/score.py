"""``tgp score``: run an exported bundle on the trials of a directory of shards.

    tgp score --bundle bundles/moco-mlp --data DIR [--backend onnx] [--out scores/]

Every readable trial goes through what the node runs: the runtime
:class:`~tactile_grasp_predictor.predictor.Predictor` on the raw left GelSight frames before
contact (Ta) and closed before lift (Tb), LIFT iff ``p >= threshold`` (the bundle's). No
training code, no cache: this is how a bundle is checked on new trials (a fresh simulation,
or a real Calandra shard). Writes ``scores.csv`` (one row per trial), ``metrics.json`` and
``scores.png`` (p by outcome, the threshold) and prints the metrics.
"""

from __future__ import annotations

import argparse
import csv
import itertools
import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from tactile_grasp_predictor.data.calandra import gelsight_key, index_shards, read_trials
from tactile_grasp_predictor.errors import DatasetError
from tactile_grasp_predictor.metrics import binary_metrics, json_safe
from tactile_grasp_predictor.predictor import BACKEND_CHOICES, Predictor

log = logging.getLogger("tgp.score")


def score_shards(predictor: Predictor, data: Path, finger: str = "A", batch: int = 32,
                 limit: int = 0, progress: bool = True) -> tuple[list[dict[str, Any]], list[tuple[str, str]]]:
    """p(success) of every readable trial of ``data``: (rows, skipped (source, reason))."""
    before, during = gelsight_key(finger, "before"), gelsight_key(finger, "during")
    index = index_shards(data, keys=(before, during))
    if len(index) == 0:
        raise DatasetError(f"{data}: no readable trials ({len(index.skipped)} skipped)")
    refs = index.refs[:limit] if limit > 0 else index.refs
    rows: list[dict[str, Any]] = []
    bar = tqdm(total=len(refs), desc="scoring trials", unit="trial", disable=not progress)
    trials = read_trials(refs, keys=(before, during))
    try:
        for start in range(0, len(refs), batch):
            chunk = refs[start : start + batch]
            read = list(itertools.islice(trials, len(chunk)))
            p = predictor.predict_batch([t.images[before] for t in read], [t.images[during] for t in read])
            for ref, pi in zip(chunk, p, strict=True):
                rows.append({"trial": ref.source, "object": ref.object_name, "p": float(pi),
                             "verdict": "LIFT" if pi >= predictor.threshold else "ABORT", "label": ref.label})
            bar.update(len(chunk))
    finally:
        trials.close()
        bar.close()
    return rows, list(index.skipped)


def plot_scores(rows: list[dict[str, Any]], threshold: float, path: Path, title: str) -> None:
    """Histogram of p(success) for successful and failed lifts, with the decision threshold."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    p = np.array([r["p"] for r in rows])
    y = np.array([r["label"] for r in rows], dtype=bool)
    fig, ax = plt.subplots(figsize=(6, 3.5))
    bins = np.linspace(0, 1, 26).tolist()  # 25 equal bins over [0, 1]
    ax.hist(p[y], bins=bins, alpha=0.6, label=f"lift succeeded ({int(y.sum())})", color="tab:green")
    ax.hist(p[~y], bins=bins, alpha=0.6, label=f"lift failed ({int((~y).sum())})", color="tab:red")
    ax.axvline(threshold, color="k", ls="--", label=f"threshold {threshold:.2f}")
    ax.set_xlabel("p(success)")
    ax.set_ylabel("trials")
    ax.set_title(title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``tgp score``."""
    parser.add_argument("--bundle", type=Path, required=True, help="bundle directory (tgp export)")
    parser.add_argument("--data", type=Path, required=True, help="directory of .h5 shards (Calandra layout)")
    parser.add_argument("--backend", default="auto", choices=BACKEND_CHOICES)
    parser.add_argument("--out", type=Path, default=None,
                        help="write scores.csv, metrics.json, scores.png here")
    parser.add_argument("--limit", type=int, default=0, help="score only the first N trials")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    """Score the shards, print the metrics at the bundle's threshold, write the files."""
    predictor = Predictor.from_bundle(args.bundle, backend=args.backend)
    finger = str(predictor.bundle.manifest.get("config", {}).get("finger", "A"))
    rows, skipped = score_shards(predictor, args.data, finger, limit=args.limit,
                                 progress=not args.no_progress)
    p = np.array([r["p"] for r in rows])
    y = np.array([r["label"] for r in rows])
    metrics = {"bundle": str(args.bundle), "model_id": predictor.model_id, "backend": predictor.backend,
               "data": str(args.data), "threshold": predictor.threshold, "skipped": len(skipped),
               **binary_metrics(p, y, predictor.threshold)}
    print(f"{args.data}: {len(rows)} trials ({len(skipped)} skipped), model {predictor.model_id}, "
          f"threshold {predictor.threshold:.2f}")
    print(f"  accuracy {metrics['accuracy']:.4f}  balanced {metrics['balanced_accuracy']:.4f}  "
          f"LIFT precision {metrics['lift_precision']:.4f}  recall {metrics['lift_recall']:.4f}  "
          f"AUC {metrics['auc']:.4f}  (successes {metrics['positives']:.3f})")
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        with (args.out / "scores.csv").open("w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
        (args.out / "metrics.json").write_text(json.dumps(json_safe(metrics), indent=1, allow_nan=False))
        plot_scores(rows, predictor.threshold, args.out / "scores.png",
                    f"{predictor.model_id} on {args.data.name}")
        print(f"  wrote {args.out}/scores.csv, metrics.json, scores.png")
    return 0
