"""``tgp table1``: train every method, fit every probe, write the Table I report.

    tgp table1 --data DIR --config cpu [--seeds 0,1] [--label-draws 5] [--methods moco,...] --out DIR

For each seed: each self-supervised method (MoCo v2, memory bank, triplet label-free,
triplet with labels as in the paper, autoencoder) is trained on the training split
without labels (except ``triplet_label``), its frozen pooled features are probed with
KNN / SVM / MLP at every label fraction (default 1 %, 10 %, 100 %), and supervised from
scratch is trained on the same label subsets as the reference line. With ``--label-draws
N`` every fraction below 100 % is drawn N times (the same N subsets for every method), so
that the label-efficiency comparison is paired and has an error bar: with 20 or 200 labels
which trials are labelled moves accuracy by a point or more. Runs are resumable: a finished
run directory is reused. Writes ``results.csv`` (every row), ``results.md`` (mean ± std over
seeds and draws beside the paper's numbers), ``results.png`` and one log per run.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import math
import textwrap
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from tactile_grasp_predictor.errors import ConfigError
from tactile_grasp_predictor.preprocess import preprocess_batch
from training.cli import add_common_arguments, add_data_arguments, load_data
from training.config import TrainConfig, load_config
from training.data.sets import TactileSet
from training.features import extract_features
from training.hand_features import HAND_PROBES
from training.probe_fit import PROBES, label_subset, probe_suite
from training.train import preprocess_for, train

log = logging.getLogger("tgp.table1")

SSL_METHODS = ("moco", "memory_bank", "triplet", "triplet_label", "autoencoder")
CONTROLS = ("random_init",)  # an untrained encoder: what the probes get from the architecture alone
BASELINES = ("hand_features",)  # statistics of Tb − Ta + logistic regression / gradient boosting
LABELS = {
    "moco": "MoCo v2", "memory_bank": "Memory bank", "triplet": "Triplet (label-free)",
    "triplet_label": "Triplet (labels, paper)", "autoencoder": "Autoencoder",
    "supervised": "Supervised from scratch", "random_init": "Random init (control)",
    "hand_features": "Hand features (Tb − Ta statistics)",
}
# Table I of the seed paper (Calandra dataset, left GelSight, ResNet-50): accuracy % for KNN / SVM / MLP
PAPER = {
    "autoencoder": (74.23, 73.90, 75.20),
    "triplet_label": (75.33, 75.10, 75.88),
    "memory_bank": (78.30, 78.43, 78.67),
    "moco": (80.37, 80.83, 81.83),
}


@dataclass
class Row:
    """One accuracy measurement."""

    seed: int
    method: str
    probe: str  # knn | svm | mlp | head (the supervised classifier itself) | majority
    fraction: float
    n_labels: int
    accuracy: float
    train_seconds: float
    job_seconds: float = 0.0  # training + features + probes of the whole (method, seed) job
    draw: int = 0  # which label subset (fractions < 1 with --label-draws); 0 for all labels


def label_draw_seed(seed: int, draw: int) -> int:
    """Return the subset (and probe) seed of label draw ``draw`` of training seed ``seed`` (0: ``seed``)."""
    return seed + 1000 * draw


@torch.no_grad()
def head_accuracy(trained: Any, data: TactileSet) -> float:
    """Test accuracy of the supervised model's own classifier (eval mode, centre crop)."""
    method = trained.method
    method.eval()
    device = next(method.parameters()).device  # where train() left it (CUDA when it trained there)
    correct = 0
    for i in range(0, len(data), 256):
        x = preprocess_batch(data.before[i : i + 256], data.during[i : i + 256], trained.preprocess)
        p = method.predict_proba(x.to(device).contiguous(memory_format=torch.channels_last)).cpu()
        correct += int(((p >= 0.5).long().numpy() == np.asarray(data.labels[i : i + 256])).sum())
    return correct / len(data)


def supervised_config(cfg: TrainConfig, n_full: int, n_sub: int) -> TrainConfig:
    """Supervised on ``n_sub`` labels: batch fits the subset; as many optimiser steps as on all labels."""
    b = min(cfg.batch_size, (n_sub // cfg.split_bn) * cfg.split_bn)
    if b < cfg.split_bn:
        raise ConfigError(f"label subset of {n_sub} trials is too small for split_bn={cfg.split_bn}")
    steps_full = cfg.epochs * (n_full // cfg.batch_size)
    epochs = max(cfg.epochs, math.ceil(steps_full / max(1, n_sub // b)))
    warm = min(cfg.warmup_epochs * (n_full // cfg.batch_size) // max(1, n_sub // b), epochs - 1)
    every = max(cfg.checkpoint_every, epochs // 10)  # tiny subsets: many short epochs, few checkpoints
    return replace(cfg, method="supervised", batch_size=b, epochs=epochs, warmup_epochs=max(0, warm),
                   checkpoint_every=every)


def run_table(cfg: TrainConfig, train_set: TactileSet, test_set: TactileSet, out: Path,
              methods: tuple[str, ...], seeds: tuple[int, ...], probes: tuple[str, ...] = PROBES,
              progress: bool = True, label_draws: int = 1) -> list[Row]:
    """Train and probe every method for every seed; return all rows (also appended to ``rows.jsonl``).

    ``label_draws`` subsets are drawn for each label fraction below 1 (draw ``d`` with seed
    :func:`label_draw_seed`), the same for every method, and supervised from scratch is trained
    on each of them.
    """
    if label_draws < 1:
        raise ConfigError(f"--label-draws must be at least 1, got {label_draws}")
    out.mkdir(parents=True, exist_ok=True)
    rows: list[Row] = []
    majority = float(max(np.mean(test_set.labels), 1 - np.mean(test_set.labels)))
    jobs = [(s, m) for s in seeds for m in methods]
    bar = tqdm(jobs, desc="table1", disable=not progress)
    for seed, method in bar:
        bar.set_postfix(method=method, seed=seed)
        if not any(r.seed == seed and r.method == "majority" for r in rows):
            rows.append(Row(seed, "majority", "majority", 1.0, 0, majority, 0.0))
        start = len(rows)
        done_file = out / "runs" / f"{method}-s{seed}.rows.json"
        key = {"config": cfg.to_dict(), "probes": list(probes), "n_train": len(train_set),
               "n_test": len(test_set)}
        if label_draws > 1:  # one draw: the key of earlier results, which stay reusable
            key["label_draws"] = label_draws
        if done_file.exists():
            saved = json.loads(done_file.read_text())
            if saved.get("key") == json.loads(json.dumps(key)):
                rows += [Row(**r) for r in saved["rows"]]
                log.info("%s seed %d: reusing the finished job (%s)", method, seed, done_file)
                continue
        t_job = time.perf_counter()
        if method == "random_init":
            res = _untrained(cfg, train_set, seed)
            rows += _probe_rows(res, train_set, test_set, cfg, probes, seed, method, 0.0, label_draws)
        elif method == "hand_features":
            rows += _hand_rows(train_set, test_set, cfg, seed, label_draws)
        elif method == "supervised":
            for frac in cfg.label_fractions:
                for draw in range(label_draws if frac < 1.0 else 1):
                    sub = label_subset(train_set.labels, frac, label_draw_seed(seed, draw))
                    scfg = replace(supervised_config(cfg, len(train_set), len(sub)),
                                   seed=label_draw_seed(seed, draw))
                    run_dir = out / "runs" / (f"supervised-f{frac:g}-s{seed}" + (f"-d{draw}" if draw else ""))
                    t0 = time.perf_counter()
                    res = train(scfg, train_set.subset(sub), run_dir, progress=progress)
                    dt = time.perf_counter() - t0
                    acc = head_accuracy(res, test_set)
                    rows.append(Row(seed, "supervised", "head", frac, len(sub), acc, dt, draw=draw))
                    log.info("supervised %.0f%% labels (%d, draw %d): head accuracy %.4f",
                             100 * frac, len(sub), draw, acc)
                    if frac == 1.0:  # its features, probed like the others
                        rows += _probe_rows(res, train_set, test_set, replace(cfg, label_fractions=(1.0,)),
                                            probes, seed, "supervised", dt)
        else:
            mcfg = replace(cfg, method=method, seed=seed)
            t0 = time.perf_counter()
            res = train(mcfg, train_set, out / "runs" / f"{method}-s{seed}", progress=progress)
            dt = time.perf_counter() - t0
            rows += _probe_rows(res, train_set, test_set, cfg, probes, seed, method, dt, label_draws)
        job_s = time.perf_counter() - t_job
        for r in rows[start:]:
            r.job_seconds = job_s
        with (out / "rows.jsonl").open("a") as fh:
            for r in rows[start:]:
                fh.write(json.dumps(r.__dict__) + "\n")
        done_file.parent.mkdir(parents=True, exist_ok=True)
        done_file.write_text(json.dumps({"key": key, "rows": [r.__dict__ for r in rows[start:]]}))
    return rows


def _untrained(cfg: TrainConfig, train_set: TactileSet, seed: int) -> Any:
    """Build a randomly initialised encoder (BN statistics from the data), shaped like a TrainResult."""
    from types import SimpleNamespace

    from training.methods import build_method

    torch.manual_seed(seed)
    pp = preprocess_for(cfg, train_set)
    method = build_method(replace(cfg, method="triplet"), pp, len(train_set))
    bns = [m for m in method.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    for bn in bns:
        bn.reset_running_stats()
        bn.momentum = None  # cumulative average over the passes below
    method.train()
    with torch.no_grad():
        for i in range(0, min(len(train_set), 8 * cfg.batch_size), cfg.batch_size):
            x = preprocess_batch(train_set.before[i : i + cfg.batch_size],
                                 train_set.during[i : i + cfg.batch_size], pp)
            method.encoder.features(x.contiguous(memory_format=torch.channels_last))
    return SimpleNamespace(method=method, preprocess=pp)


def _probe_rows(res: Any, train_set: TactileSet, test_set: TactileSet, cfg: TrainConfig,
                probes: tuple[str, ...], seed: int, method: str, dt: float,
                label_draws: int = 1) -> list[Row]:
    """Probe the frozen features at ``cfg.label_fractions``; fractions below 1 once per label draw."""
    enc = res.method.encoder
    device = next(enc.parameters()).device
    x_tr = extract_features(enc, train_set, res.preprocess, device=device)
    x_te = extract_features(enc, test_set, res.preprocess, device=device)
    out = []
    for draw in range(label_draws):
        fractions = cfg.label_fractions if draw == 0 else tuple(f for f in cfg.label_fractions if f < 1.0)
        for r in probe_suite(x_tr, train_set.labels, x_te, test_set.labels, cfg, probes, fractions,
                             label_draw_seed(seed, draw)):
            out.append(Row(seed, method, r.probe, r.fraction, r.n_labels, r.accuracy, dt, draw=draw))
            log.info("%s %s %.0f%% labels (draw %d): %.4f (runtime vs sklearn %.1e) %s", method, r.probe,
                     100 * r.fraction, draw, r.accuracy, r.max_abs_diff_runtime, r.params)
    return out


def _hand_rows(train_set: TactileSet, test_set: TactileSet, cfg: TrainConfig, seed: int,
               label_draws: int = 1) -> list[Row]:
    """Score the hand-feature baseline on the same frames and label subsets as the probes (a row per fit)."""
    from training.hand_features import fit_and_score, hand_features

    t0 = time.perf_counter()
    x_tr = hand_features(train_set.before, train_set.during)
    x_te = hand_features(test_set.before, test_set.during)
    dt = time.perf_counter() - t0
    out = []
    for draw in range(label_draws):
        fractions = cfg.label_fractions if draw == 0 else tuple(f for f in cfg.label_fractions if f < 1.0)
        for r in fit_and_score(x_tr, train_set.labels, x_te, test_set.labels, fractions,
                               label_draw_seed(seed, draw)):
            out.append(Row(seed, "hand_features", r.probe, r.fraction, r.n_labels, r.accuracy, dt, draw=draw))
            log.info("hand features %s %.0f%% labels (draw %d): %.4f",
                     r.probe, 100 * r.fraction, draw, r.accuracy)
    return out


def paired_gain(rows: list[Row], method: str, probe: str, frac: float) -> tuple[float, float, int, int]:
    """Return ``method``/``probe`` minus supervised (head) on the same label subsets: (mean, SE, wins, n)."""
    sup = {(r.seed, r.draw): r.accuracy for r in rows
           if (r.method, r.probe, r.fraction) == ("supervised", "head", frac)}
    diffs = [r.accuracy - sup[(r.seed, r.draw)] for r in rows
             if (r.method, r.probe, r.fraction) == (method, probe, frac) and (r.seed, r.draw) in sup]
    if not diffs:
        return float("nan"), float("nan"), 0, 0
    se = float(np.std(diffs, ddof=1) / math.sqrt(len(diffs))) if len(diffs) > 1 else float("nan")
    return float(np.mean(diffs)), se, sum(d > 0 for d in diffs), len(diffs)


# ------------------------------------------------------------------ report
def _agg(rows: list[Row], method: str, probe: str, frac: float) -> tuple[float, float, int]:
    acc = [r.accuracy for r in rows if (r.method, r.probe, r.fraction) == (method, probe, frac)]
    if not acc:
        return float("nan"), float("nan"), 0
    return float(np.mean(acc)), float(np.std(acc)), len(acc)


def _job_minutes(rows: list[Row]) -> float:
    jobs = {(r.seed, r.method): r.job_seconds for r in rows}
    return sum(jobs.values()) / 60


def _fmt(m: float, s: float, n: int) -> str:
    if n == 0 or math.isnan(m):
        return "–"
    return f"{100 * m:.1f} ± {100 * s:.1f}" if n > 1 else f"{100 * m:.1f}"


def write_report(rows: list[Row], out: Path, cfg: TrainConfig, info: dict[str, Any], command: str,
                 seconds: float) -> None:
    """``results.csv``, ``results.md`` and ``results.png`` in ``out``."""
    with (out / "results.csv").open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(Row.__dataclass_fields__))
        w.writeheader()
        w.writerows(r.__dict__ for r in rows)
    methods = [m for m in (*SSL_METHODS, "supervised", *CONTROLS) if any(r.method == m for r in rows)]
    seeds = sorted({r.seed for r in rows})
    draws = len({r.draw for r in rows})
    spread = "seeds" + (f" and {draws} label draws below 100 %" if draws > 1 else "")
    lines = [
        "# Table I: grasp-outcome accuracy (%) from frozen features, left GelSight Tb − Ta", "",
        f"Command: `{command}`  ",
        f"Compute time of all jobs: {_job_minutes(rows):.1f} min (this invocation: {seconds / 60:.1f} min "
        f"wall; finished jobs are reused, and a job that reused a finished training counts only its "
        f"features and probes); seeds {seeds} (mean ± std over {spread})  ",
        f"Split: {info.get('kind')} (seed {info.get('seed')}), {info.get('n_train')} train / "
        f"{info.get('n_test')} test trials  ",
        f"Config: {cfg.name} — {cfg.arch}, {cfg.crop}px crops of {cfg.resize_hw[0]}x{cfg.resize_hw[1]}, "
        f"batch {cfg.batch_size}, {cfg.epochs} epochs, K={cfg.moco_k}, m={cfg.moco_m}, τ={cfg.temperature}, "
        f"bf16={cfg.bf16}", "",
        "## All labels (100 %)", "",
        "| method | KNN | SVM | MLP | paper KNN | paper SVM | paper MLP |", "|---|---|---|---|---|---|---|",
    ]
    for m in methods:
        ours = [_fmt(*_agg(rows, m, p, 1.0)) for p in PROBES]
        paper = [f"{v:.2f}" for v in PAPER[m]] if m in PAPER else ["–"] * 3
        name = LABELS[m] + (" (features)" if m == "supervised" else "")
        lines.append(f"| {name} | " + " | ".join(ours + paper) + " |")
    head = _fmt(*_agg(rows, "supervised", "head", 1.0))
    lines += ["", f"Supervised from scratch, its own classifier: {head}  "]
    if any(r.method == "hand_features" for r in rows):
        hand = [f"{p} {_fmt(*_agg(rows, 'hand_features', p, 1.0))}" for p in HAND_PROBES]
        lines += [f"Hand features (statistics of Tb − Ta, training/hand_features.py): {', '.join(hand)}  "]
    lines += [f"Majority class of the test split: {_fmt(*_agg(rows, 'majority', 'majority', 1.0))}", "",
              "## Label efficiency (accuracy % with a fraction of the training labels)", "",
              "| method / probe | " + " | ".join(f"{100 * f:g} %" for f in cfg.label_fractions) + " |",
              "|---|" + "---|" * len(cfg.label_fractions)]
    for m in [*methods, *(b for b in BASELINES if any(r.method == b for r in rows))]:
        for p in _probes_of(m):
            cells = [_fmt(*_agg(rows, m, p, f)) for f in cfg.label_fractions]
            if all(c == "–" for c in cells):
                continue
            lines.append(f"| {LABELS[m]} / {p} | " + " | ".join(cells) + " |")
    lines += ["", "## Checks against the issue's acceptance (facts, not targets)", ""]
    sup = _agg(rows, "supervised", "head", 1.0)[0]
    moco_mlp = _agg(rows, "moco", "mlp", 1.0)[0]
    if not math.isnan(sup) and not math.isnan(moco_mlp):
        lines.append(f"- MoCo + MLP {100 * moco_mlp:.1f} vs supervised {100 * sup:.1f}: "
                     f"{'within' if moco_mlp >= sup - 0.03 else 'NOT within'} 3 points")
    if 0.1 in cfg.label_fractions:
        lines += _label_check(rows, 0.1)
    lines += _hand_check(rows, methods, info.get("kind"))
    lines += ["", "Paper: Calandra et al. data (6,000 train / 3,000 test, ResNet-50, 200 epochs); "
              "ours: the data and config above. The paper's ordering is a claim to test, not a target.",
              "", "![results](results.png)", ""]
    (out / "results.md").write_text("\n".join(lines))
    _plot(rows, methods, cfg, out / "results.png")


def _probes_of(method: str) -> tuple[str, ...]:
    """Return the probes of a method's rows: the supervised model's head, the hand baseline's classifiers."""
    if method == "supervised":
        return ("head",)
    return HAND_PROBES if method in BASELINES else PROBES


def _hand_check(rows: list[Row], methods: list[str], split: Any) -> list[str]:
    """Compare the hand-feature baseline with the best learned method and with MoCo + MLP, all labels."""
    hand = [(_agg(rows, "hand_features", p, 1.0)[0], p) for p in HAND_PROBES]
    hand = [h for h in hand if not math.isnan(h[0])]
    learned = [(_agg(rows, m, p, 1.0)[0], m, p) for m in methods if m not in CONTROLS for p in _probes_of(m)]
    learned = [x for x in learned if not math.isnan(x[0])]
    if not hand or not learned:
        return []
    h, hp = max(hand)
    best, bm, bp = max(learned)
    out = [f"- Hand features ({hp}) {100 * h:.1f} vs the best learned method ({LABELS[bm]} / {bp}) "
           f"{100 * best:.1f}: {100 * (best - h):+.1f} points ({split} split)"]
    moco = _agg(rows, "moco", "mlp", 1.0)[0]
    if not math.isnan(moco):
        ahead = "ahead" if moco > h else "NOT ahead"
        out.append(f"- MoCo + MLP {100 * moco:.1f} vs hand features {100 * h:.1f}: MoCo "
                   f"{ahead} by {100 * (moco - h):+.1f} points ({split} split)")
    return out


def _label_check(rows: list[Row], frac: float) -> list[str]:
    """Compare each MoCo probe with supervised on the same label subsets (paired): the report's lines."""
    s_mean, s_std, _ = _agg(rows, "supervised", "head", frac)
    gains = {p: paired_gain(rows, "moco", p, frac) for p in PROBES}
    gains = {p: g for p, g in gains.items() if g[3] > 0}
    if math.isnan(s_mean) or not gains:
        return []
    n = max(g[3] for g in gains.values())
    parts = []
    for p, (mean, se, wins, k) in gains.items():
        err = f" ± {100 * se:.1f}" if not math.isnan(se) else ""
        acc = 100 * _agg(rows, "moco", p, frac)[0]
        parts.append(f"{p} {acc:.1f} ({100 * mean:+.1f}{err}, better on {wins}/{k})")
    best, (mean, se, _, _) = max(gains.items(), key=lambda kv: kv[1][0])
    if math.isnan(se):
        noise = "one label draw: no error bar"
    elif abs(mean) > 2 * se:
        noise = "beyond 2 standard errors"
    else:
        noise = "within 2 standard errors: not distinguishable with these draws"
    return [f"- {100 * frac:g} % labels, {n} paired label draw(s): supervised {100 * s_mean:.1f}"
            + (f" ± {100 * s_std:.1f}" if n > 1 else "") + "; MoCo " + ", ".join(parts)
            + f": MoCo's best probe ({best}) {'beats' if mean > 0 else 'does NOT beat'} supervised ({noise})"]


def _plot(rows: list[Row], methods: list[str], cfg: TrainConfig, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(12, 4.2))
    width = 0.25
    for j, p in enumerate(PROBES):
        means = [100 * _agg(rows, m, p, 1.0)[0] for m in methods]
        stds = [100 * _agg(rows, m, p, 1.0)[1] for m in methods]
        xs = np.arange(len(methods)) + (j - 1) * width
        ax.bar(xs, means, width, yerr=stds, label=f"ours {p.upper()}")
        paper = [PAPER[m][j] if m in PAPER else np.nan for m in methods]
        ax.scatter(xs, paper, marker="_", s=200, color="k", label="paper" if j == 0 else None, zorder=3)
    sup = 100 * _agg(rows, "supervised", "head", 1.0)[0]
    if not math.isnan(sup):
        ax.axhline(sup, ls="--", color="gray", label="supervised (head)")
    hand = max((100 * _agg(rows, "hand_features", p, 1.0)[0] for p in HAND_PROBES), default=math.nan)
    if not math.isnan(hand):
        ax.axhline(hand, ls=":", color="k", label="hand features (best)")
    ax.set_xticks(np.arange(len(methods)), [textwrap.fill(LABELS[m], 13) for m in methods], fontsize=7)
    ax.set_ylabel("test accuracy (%)")
    ax.set_ylim(40, 100)
    ax.set_title("All labels: probes on frozen features")
    ax.legend(fontsize=7)
    fr = list(cfg.label_fractions)
    for m in [*methods, *(b for b in BASELINES if any(r.method == b for r in rows))]:
        p = "head" if m == "supervised" else "logreg" if m in BASELINES else "mlp"
        ys = [100 * _agg(rows, m, p, f)[0] for f in fr]
        es = [100 * _agg(rows, m, p, f)[1] for f in fr]
        ax2.errorbar([100 * f for f in fr], ys, yerr=es, marker="o", capsize=3, label=f"{LABELS[m]} ({p})")
    ax2.set_xscale("log")
    ax2.set_xlabel("labelled training trials (%)")
    ax2.set_ylabel("test accuracy (%)")
    ax2.set_title("Label efficiency")
    ax2.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ------------------------------------------------------------------ CLI
def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``tgp table1``."""
    add_data_arguments(parser)
    parser.add_argument("--out", type=Path, default=Path("results/table1"), help="report directory")
    parser.add_argument("--seeds", default="0", help="comma-separated seeds, e.g. 0,1,2")
    parser.add_argument("--label-draws", type=int, default=1, metavar="N",
                        help="label subsets drawn per fraction below 100 %% (paired across methods)")
    every = ",".join((*SSL_METHODS, "supervised", *CONTROLS, *BASELINES))
    parser.add_argument("--methods", default=every, help="comma-separated subset of " + every)
    parser.add_argument("--probes", default=",".join(PROBES))
    add_common_arguments(parser)


def run(args: argparse.Namespace) -> int:
    """Entry point of ``tgp table1``."""
    import sys

    t0 = time.perf_counter()
    cfg = load_config(args.config, args.overrides)
    methods = tuple(m.strip() for m in args.methods.split(",") if m.strip())
    unknown = [m for m in methods if m not in LABELS]
    if unknown:
        raise ConfigError(f"--methods: unknown {unknown}; known: {list(LABELS)}")
    seeds = tuple(int(s) for s in args.seeds.split(","))
    probes = tuple(p.strip() for p in args.probes.split(",") if p.strip())
    train_set, test_set, info = load_data(args, cfg)
    args.out.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(args.out / "table1.log")
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
    logging.getLogger("tgp").addHandler(handler)
    logging.getLogger("tgp").setLevel(logging.INFO)
    (args.out / "split.json").write_text(json.dumps(info, indent=1))
    rows = run_table(cfg, train_set, test_set, args.out, methods, seeds, probes, not args.no_progress,
                     args.label_draws)
    command = "tgp " + " ".join(sys.argv[1:]) if sys.argv[0].endswith("tgp") else "tgp table1 ..."
    write_report(rows, args.out, cfg, info, command, time.perf_counter() - t0)
    print((args.out / "results.md").read_text())
    return 0
