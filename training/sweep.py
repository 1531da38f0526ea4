"""``tgp train --sweep KEY=V1,V2 [--sweep ...]``: a grid of runs in sibling folders, tabulated.

    tgp train --data DIR --config cpu --out runs/lr --set knn_every=2 \
        --sweep lr=0.01,0.03,0.1 --sweep moco_m=0.99,0.999

trains every combination (here 6) as an ordinary run in ``runs/lr/<key=value,...>/`` (its
own ``config.yaml``, checkpoint, logs: each can be resumed, reproduced or exported alone),
one after the other, then writes ``sweep.md``, ``sweep.csv`` and ``sweep.png`` (loss and, with
the kNN monitor, kNN accuracy per epoch of every run) in ``runs/lr``. Values are YAML, as for
``--set``; a list value keeps its brackets (``--sweep resize_hw=[64,80],[96,128]``). Every
combination's config is checked before the first run starts. Running the command again
resumes the unfinished runs and rebuilds the table.
"""

from __future__ import annotations

import argparse
import csv
import itertools
import math
import re
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from tactile_grasp_predictor.errors import ConfigError
from training import distributed as D
from training.config import TrainConfig, load_config, parse_override
from training.run_config import command_line

SWEEP_FILES = ("sweep.md", "sweep.csv", "sweep.png")


def split_values(raw: str) -> list[str]:
    """Split ``"a,b,[1,2]"`` at the commas outside brackets: ``["a", "b", "[1,2]"]``."""
    out, depth, cur = [], 0, ""
    for ch in raw:
        if ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
        if ch == "," and depth == 0:
            out.append(cur.strip())
            cur = ""
        else:
            cur += ch
    out.append(cur.strip())
    return out


def parse_sweep(items: list[str]) -> list[tuple[str, list[str]]]:
    """``["lr=0.01,0.1", ...]`` → ``[("lr", ["0.01", "0.1"]), ...]``; ConfigError naming a bad item."""
    known = {f.name for f in fields(TrainConfig)}
    axes: list[tuple[str, list[str]]] = []
    for item in items:
        key, _value = parse_override(item)
        values = split_values(item.split("=", 1)[1])
        if key not in known:
            raise ConfigError(f"--sweep {item!r}: {key!r} is not a config field")
        if key in (k for k, _ in axes):
            raise ConfigError(f"--sweep {item!r}: {key} is swept twice")
        if not values or any(v == "" for v in values):
            raise ConfigError(f"--sweep {item!r}: expected KEY=V1,V2,... with no empty value")
        axes.append((key, values))
    return axes


def member_name(combo: dict[str, str]) -> str:
    """Folder name of one combination: ``lr=0.01,moco_m=0.9`` (brackets and odd characters dropped)."""
    parts = [f"{k}={re.sub(r'[^A-Za-z0-9.+-]+', '-', v).strip('-')}" for k, v in combo.items()]
    return ",".join(parts)


@dataclass(frozen=True)
class SweepRow:
    """One finished run of a sweep, as the table shows it."""

    name: str
    values: dict[str, str]
    epochs: int
    loss: float
    knn_accuracy: float  # the last kNN monitor figure (NaN without the monitor)
    best_knn_accuracy: float
    images_per_s: float
    minutes: float
    history: list[dict[str, float]]


def run_sweep(args: argparse.Namespace, source: dict[str, Any]) -> list[SweepRow]:
    """Train every combination of ``args.sweep`` into ``args.out/<name>``; write the table (rank 0)."""
    from training.train import train_from_args

    axes = parse_sweep(args.sweep)
    combos = [dict(zip([k for k, _ in axes], vals, strict=True))
              for vals in itertools.product(*[v for _, v in axes])]
    configs = [load_config(args.config, [*args.overrides, *(f"{k}={v}" for k, v in c.items())])
               for c in combos]  # every config checked before the first run
    ctx = D.init_from_env(args.device)
    rows = []
    for i, (combo, cfg) in enumerate(zip(combos, configs, strict=True)):
        name = member_name(combo)
        if ctx.is_main:
            print(f"[sweep {i + 1}/{len(combos)}] {name}", flush=True)
        res = train_from_args(args, cfg, Path(args.out) / name, source)
        h = res.history
        knn = [e["knn_accuracy"] for e in h if "knn_accuracy" in e]
        rows.append(SweepRow(
            name, combo, res.epochs_done, h[-1]["loss"] if h else math.nan,
            knn[-1] if knn else math.nan, max(knn) if knn else math.nan,
            sum(e["images_per_s"] for e in h) / len(h) if h else math.nan,
            sum(e["seconds"] for e in h) / 60.0, h,
        ))
    if ctx.is_main:
        table = write_sweep_report(Path(args.out), [k for k, _ in axes], rows,
                                   command_line(getattr(args, "command_line", None)))
        print(table)
    return rows


def _pct(v: float) -> str:
    return "–" if math.isnan(v) else f"{100 * v:.1f}"


def write_sweep_report(out: Path, keys: list[str], rows: list[SweepRow], command: str) -> str:
    """Write ``sweep.md``, ``sweep.csv`` and ``sweep.png`` into ``out``; return the Markdown table."""
    out.mkdir(parents=True, exist_ok=True)
    head = ["run", *keys, "epochs", "final loss", "kNN acc. %", "best kNN %", "img/s", "minutes"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [r.name, *(r.values[k] for k in keys), str(r.epochs), f"{r.loss:.4f}", _pct(r.knn_accuracy),
                 _pct(r.best_knn_accuracy), f"{r.images_per_s:.0f}", f"{r.minutes:.2f}"]
        lines.append("| " + " | ".join(cells) + " |")
    table = "\n".join(lines)
    (out / "sweep.md").write_text(
        f"# Sweep over {', '.join(keys)} ({len(rows)} runs)\n\n`{command}`\n\n{table}\n\n"
        "Final loss: the last epoch's mean over processes. kNN: the monitor's accuracy on the held-out "
        "labels at the last evaluation and the best one (`knn_every`; – when off).\n\n![sweep](sweep.png)\n"
    )
    with (out / "sweep.csv").open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["run", *keys, "epochs", "final_loss", "knn_accuracy", "best_knn_accuracy",
                    "images_per_s", "minutes"])
        for r in rows:
            w.writerow([r.name, *(r.values[k] for k in keys), r.epochs, f"{r.loss:.6g}",
                        "" if math.isnan(r.knn_accuracy) else f"{r.knn_accuracy:.6g}",
                        "" if math.isnan(r.best_knn_accuracy) else f"{r.best_knn_accuracy:.6g}",
                        f"{r.images_per_s:.4g}", f"{r.minutes:.4g}"])
    _plot(out / "sweep.png", rows)
    return table


def _plot(path: Path, rows: list[SweepRow]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with_knn = any(not math.isnan(r.knn_accuracy) for r in rows)
    fig, axes = plt.subplots(1, 2 if with_knn else 1, figsize=(10 if with_knn else 6, 3.6), squeeze=False)
    for r in rows:
        epochs = [e["epoch"] for e in r.history]
        axes[0][0].plot(epochs, [e["loss"] for e in r.history], marker=".", label=r.name)
        if with_knn:
            knn = [e for e in r.history if "knn_accuracy" in e]
            axes[0][1].plot([e["epoch"] for e in knn], [100 * e["knn_accuracy"] for e in knn], marker="o",
                            label=r.name)
    axes[0][0].set(xlabel="epoch", ylabel="training loss", title="loss")
    axes[0][0].legend(fontsize=7)
    if with_knn:
        axes[0][1].set(xlabel="epoch", ylabel="kNN accuracy (%)", title="kNN monitor, held-out labels")
        axes[0][1].grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
