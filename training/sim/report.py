"""The simulator's difficulty report (``tgp simulate --report``): what each kind of model reads from the data.

Each change to the simulator is judged by what it does to these numbers, on the left
GelSight frames resized as the ``cpu`` config sees them (96 x 128, the training cache):

- **majority**: the test split's majority class (the rate a constant answer reaches, as
  ``tgp table1`` reports it);
- **Ta only**: gradient boosting on statistics of the pre-contact frame (per-channel mean
  and spread, a 4 x 4 thumbnail) and the small CNN on Ta alone: a leakage check, both
  must stay at the majority rate;
- **hand features**: :mod:`training.hand_features` (statistics of Tb − Ta) with logistic
  regression and gradient boosting;
- **CNN**: a small supervised CNN (4 strided convolutions, AdamW, flips) on Tb − Ta with
  every training label;
- **oracle**: gradient boosting on the hidden physics (mass, friction, centre of mass,
  grip force, grasp pose): what is knowable at all before the lift.

on two splits: ``paper`` (random 2 : 1, trials of one object on both sides) and ``sensor``
(held-out robots: sensors the training never saw), with the test accuracy per object
family and per robot. Writes ``report.md``, ``report.json`` and ``report.png`` into
``DIR/report``.

Example:
    tgp simulate --trials 1000 --seed 11 --out /tmp/sim1k --report

"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

HIDDEN = (
    "sim_mass",
    "sim_friction",
    "sim_friction_A_tb",
    "sim_com_x",
    "sim_com_y",
    "sim_com_z",
    "sim_grip_force",
    "sim_grasp_height",
    "sim_grasp_offset",
    "sim_width_tb",
    "sim_depth_A_tb",
    "sim_contact_px_A_tb",
)
METHODS = ("majority", "ta_gboost", "ta_cnn", "hand_logreg", "hand_gboost", "cnn", "oracle")
LABELS = {
    "majority": "majority class",
    "ta_gboost": "Ta only: gradient boosting",
    "ta_cnn": "Ta only: CNN",
    "hand_logreg": "hand features: logistic regression",
    "hand_gboost": "hand features: gradient boosting",
    "cnn": "CNN on Tb − Ta (supervised)",
    "oracle": "oracle: hidden physics",
}
SIZE_HW = (96, 128)


@dataclass
class SimData:
    """Left-finger frames, labels and per-trial attributes of a directory of simulated shards."""

    before: np.ndarray  # N x H x W x 3 uint8
    during: np.ndarray
    labels: np.ndarray  # N
    kind: np.ndarray  # N str: object family
    robot: np.ndarray  # N int
    hidden: np.ndarray  # N x len(HIDDEN)
    refs: list[Any]


def load(data: Path, cache: Path | None = None, progress: bool = True) -> SimData:
    """Index, cache (96 x 128, the training cache) and read the attributes of the shards in ``data``."""
    from tactile_grasp_predictor.data.calandra import CalandraShard, index_shards
    from tactile_grasp_predictor.errors import DatasetError
    from training.data.cache import build_cache

    index = index_shards(data)
    if len(index) < 10:
        raise DatasetError(f"{data}: {len(index)} trials; the report needs at least 10")
    refs = list(index)
    arr = build_cache(refs, cache or data / ".cache", size_hw=SIZE_HW, finger="A", progress=progress)
    kinds, robots, hidden = [], [], []
    by_file: dict[Path, list[int]] = {}
    for i, r in enumerate(refs):
        by_file.setdefault(r.path, []).append(i)
    attrs: list[dict[str, Any]] = [{} for _ in refs]
    for path, ids in by_file.items():
        with CalandraShard(path) as shard:
            for i in ids:
                attrs[i] = shard.read_attrs(refs[i].index)
    for a in attrs:
        k = a.get("sim_object_kind", "?")
        kinds.append(k.decode() if isinstance(k, bytes) else str(k))
        robots.append(int(a.get("sim_robot", 0)))
        hidden.append([float(a.get(h, 0.0)) for h in HIDDEN])
    return SimData(
        np.asarray(arr.before),
        np.asarray(arr.during),
        np.asarray(arr.labels, np.int64),
        np.asarray(kinds),
        np.asarray(robots),
        np.asarray(hidden, np.float64),
        refs,
    )


def ta_features(before: np.ndarray) -> np.ndarray:
    """Statistics of the pre-contact frames: per-channel mean and std and a 4 x 4 thumbnail (N x 54)."""
    import cv2

    x = before.astype(np.float32)
    stats = np.concatenate([x.mean(axis=(1, 2)), x.std(axis=(1, 2))], axis=1)
    thumbs = np.stack([cv2.resize(f, (4, 4), interpolation=cv2.INTER_AREA).reshape(-1) for f in x])
    return np.concatenate([stats, thumbs], axis=1)


def train_cnn(
    x: np.ndarray, y: np.ndarray, train: np.ndarray, test: np.ndarray, epochs: int = 12, seed: int = 0
) -> np.ndarray:
    """Train a small CNN on ``x`` (N x C x H x W float32); return its predictions (0/1) on ``test``."""
    import torch
    from torch import nn

    torch.manual_seed(seed)
    layers: list[nn.Module] = []
    c_in = x.shape[1]
    for c_out in (16, 32, 64, 64):
        layers += [nn.Conv2d(c_in, c_out, 3, 2, 1), nn.BatchNorm2d(c_out), nn.ReLU()]
        c_in = c_out
    net = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.3), nn.Linear(64, 2))
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    opt = torch.optim.AdamW(net.parameters(), lr=2e-3, weight_decay=1e-3)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, epochs)
    gen = torch.Generator().manual_seed(seed)
    tr = torch.from_numpy(train)
    for _ in range(epochs):
        net.train()
        perm = tr[torch.randperm(len(tr), generator=gen)]
        for b in range(0, len(perm) - 1, 64):
            idx = perm[b : b + 64]
            xb = xt[idx]
            if torch.rand(1, generator=gen).item() < 0.5:  # a mirrored grasp is as plausible
                xb = xb.flip(-1)
            loss = nn.functional.cross_entropy(net(xb), yt[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        sched.step()
    net.eval()
    with torch.no_grad():
        te = torch.from_numpy(test)
        pred = torch.cat([net(xt[te[b : b + 256]]).argmax(1) for b in range(0, len(te), 256)])
    return pred.numpy()


def _splits(d: SimData, seed: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Train / test indices of the paper split and of the sensor (held-out robots) split."""
    from training.data.splits import paper_split, sensor_split

    pos = {r.source: i for i, r in enumerate(d.refs)}
    out = {}
    for name, split in (
        ("paper", paper_split(d.refs, seed=seed)),
        ("sensor", sensor_split(d.refs, seed=seed)),
    ):
        out[name] = (
            np.array([pos[s] for s in split.train_sources]),
            np.array([pos[s] for s in split.test_sources]),
        )
    return out


def evaluate(d: SimData, seed: int = 0, epochs: int = 12, progress: bool = True) -> dict[str, Any]:
    """Every method on both splits: accuracies overall, per object family and per robot."""
    from tqdm import tqdm

    from training.hand_features import fit_classifier, hand_features

    t0 = time.perf_counter()
    hand = hand_features(d.before, d.during)
    ta = ta_features(d.before)
    diff = (d.during.astype(np.float32) - d.before.astype(np.float32)).transpose(0, 3, 1, 2) / 32.0
    ta_img = d.before.astype(np.float32).transpose(0, 3, 1, 2)
    ta_img = (ta_img - ta_img.mean(axis=(0, 2, 3), keepdims=True)) / 32.0
    y = d.labels
    result: dict[str, Any] = {"n": len(y), "success_rate": float(y.mean()), "splits": {}}
    splits = _splits(d, seed)
    bar = tqdm(total=len(splits) * len(METHODS), desc="report", disable=not progress)
    for name, (tr, te) in splits.items():
        preds: dict[str, np.ndarray] = {}
        preds["majority"] = np.full(len(te), int(y[te].mean() >= 0.5))  # the test split's majority class
        bar.update()
        preds["ta_gboost"] = fit_classifier("gboost", ta[tr], y[tr], seed).predict(ta[te])
        bar.update()
        preds["ta_cnn"] = train_cnn(ta_img, y, tr, te, epochs, seed)
        bar.update()
        for kind in ("logreg", "gboost"):
            preds[f"hand_{kind}"] = fit_classifier(kind, hand[tr], y[tr], seed).predict(hand[te])
            bar.update()
        preds["cnn"] = train_cnn(diff, y, tr, te, epochs, seed)
        bar.update()
        preds["oracle"] = fit_classifier("gboost", d.hidden[tr], y[tr], seed).predict(d.hidden[te])
        bar.update()
        ok = {m: (p == y[te]) for m, p in preds.items()}
        res: dict[str, Any] = {
            "n_train": len(tr),
            "n_test": len(te),
            "accuracy": {m: float(v.mean()) for m, v in ok.items()},
        }
        for group, values in (("family", d.kind[te]), ("robot", d.robot[te])):
            table = {}
            for g in sorted(set(values.tolist())):
                sel = values == g
                table[str(g)] = {
                    "n": int(sel.sum()),
                    "success_rate": float(y[te][sel].mean()),
                    **{m: float(v[sel].mean()) for m, v in ok.items()},
                }
            res[group] = table
        result["splits"][name] = res
    bar.close()
    result["seconds"] = time.perf_counter() - t0
    return result


def write_report(result: dict[str, Any], out: Path, command: str = "") -> Path:
    """``report.md``, ``report.json`` and ``report.png`` in ``out``; returns the markdown path."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_text(json.dumps(result, indent=1) + "\n")
    lines = ["# Difficulty report (left GelSight, 96 x 128)", ""]
    if command:
        lines += [f"Command: `{command}`  "]
    lines += [
        f"{result['n']} trials, {100 * result['success_rate']:.1f} % successes; "
        f"{result['seconds'] / 60:.1f} min",
        "",
        "| method | "
        + " | ".join(f"{s} split ({r['n_train']} / {r['n_test']})" for s, r in result["splits"].items())
        + " |",
        "|---|" + "---|" * len(result["splits"]),
    ]
    for m in METHODS:
        lines.append(
            f"| {LABELS[m]} | "
            + " | ".join(f"{100 * r['accuracy'][m]:.1f}" for r in result["splits"].values())
            + " |"
        )
    paper = result["splits"].get("paper", {})
    acc = paper.get("accuracy", {})
    if acc:
        best_hand = max(acc["hand_logreg"], acc["hand_gboost"])
        ta_best = max(acc["ta_gboost"], acc["ta_cnn"])
        lines += [
            "",
            f"Paper split: CNN − best hand features = {100 * (acc['cnn'] - best_hand):+.1f} points; "
            f"Ta only (best) − majority = {100 * (ta_best - acc['majority']):+.1f} points.",
        ]
    for group in ("family", "robot"):
        for split_name, r in result["splits"].items():
            table = r[group]
            lines += [
                "",
                f"## {split_name} split, test accuracy per {group} (%)",
                "",
                f"| {group} | n | success | majority | hand (GB) | CNN | oracle |",
                "|---|---|---|---|---|---|---|",
            ]
            for g, v in table.items():
                lines.append(
                    f"| {g} | {v['n']} | {100 * v['success_rate']:.0f} | {100 * v['majority']:.0f} | "
                    f"{100 * v['hand_gboost']:.0f} | {100 * v['cnn']:.0f} | {100 * v['oracle']:.0f} |"
                )
    lines += ["", "![report](report.png)", ""]
    path = out / "report.md"
    path.write_text("\n".join(lines))
    _plot(result, out / "report.png")
    return path


def _plot(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    splits = list(result["splits"])
    fig, axes = plt.subplots(1, 1 + len(splits), figsize=(6 + 6 * len(splits), 4.2))
    ax = axes[0]
    xs = np.arange(len(METHODS))
    for j, s in enumerate(splits):
        ax.bar(
            xs + (j - 0.5) * 0.4, [100 * result["splits"][s]["accuracy"][m] for m in METHODS], 0.4, label=s
        )
    ax.set_xticks(xs, [LABELS[m].replace(": ", ":\n") for m in METHODS], fontsize=6, rotation=30, ha="right")
    ax.set_ylim(40, 100)
    ax.set_ylabel("test accuracy (%)")
    ax.legend(fontsize=7)
    ax.set_title("all test trials")
    for ax, s in zip(axes[1:], splits, strict=True):
        fam = result["splits"][s]["family"]
        names = list(fam)
        xs = np.arange(len(names))
        for j, m in enumerate(("majority", "hand_gboost", "cnn", "oracle")):
            ax.bar(xs + (j - 1.5) * 0.2, [100 * fam[g][m] for g in names], 0.2, label=LABELS[m])
        ax.set_xticks(xs, names, fontsize=7, rotation=45, ha="right")
        ax.set_ylim(0, 100)
        ax.set_title(f"{s} split: per object family")
        ax.legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def run(data: Path, seed: int = 0, epochs: int = 12, progress: bool = True, command: str = "") -> Path:
    """Evaluate the shards in ``data`` and write the report into ``data/report``; returns ``report.md``."""
    d = load(data, progress=progress)
    return write_report(evaluate(d, seed, epochs, progress), data / "report", command)
