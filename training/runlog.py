"""What a training run leaves to watch it by: per-step scalars, epoch lines, the kNN curve, plots.

In the run folder (rank 0 writes):

```
events.out.tfevents.*   TensorBoard: train/<scalar> per step, epoch/<scalar> and knn/<scalar>
metrics.csv             one row per optimiser step: step, epoch, loss, lr, images_per_s, method stats
knn.csv                 one row per kNN monitor evaluation: epoch, step, accuracy, auc, k, sizes
train.log               the epoch summary lines (also on the console) and resume notes
loss.png                training loss per epoch (and the kNN accuracy beside it when monitored)
```

``step`` counts optimiser steps from 1 over the whole run. ``loss`` per step is rank 0's
(the epoch line and ``history.json`` hold the mean over processes). A resumed run first drops
the rows logged after its checkpoint (they are trained again) and starts a TensorBoard file
with ``purge_step`` so TensorBoard drops those events too: each step appears once. A run that
starts over in a used folder (``--no-resume``) drops all of them the same way.

    tensorboard --logdir runs/            # every run folder below is one run
"""

from __future__ import annotations

import csv
import logging
import math
import os
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import IO, Any

from training.tempfiles import temp_sibling

log = logging.getLogger("tgp.train")

METRICS_NAME = "metrics.csv"
KNN_NAME = "knn.csv"
BASE_COLUMNS = ("step", "epoch", "loss", "lr", "images_per_s")
KNN_COLUMNS = ("epoch", "step", "accuracy", "auc", "k", "n_bank", "n_held_out")


def _keep_rows(path: Path, column: str, last: int) -> list[str] | None:
    """Rewrite the CSV at ``path`` keeping rows whose ``column`` is <= ``last``; return its header."""
    if not path.is_file():
        return None
    with path.open(newline="") as fh:
        reader = csv.DictReader(fh)
        header = list(reader.fieldnames or [])
        rows = [r for r in reader if r.get(column) and int(float(r[column])) <= last]
    if not header:
        return None
    tmp = temp_sibling(path)
    with tmp.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, header)
        writer.writeheader()
        writer.writerows(rows)
    tmp.replace(path)
    return header


class _Csv:
    """An append-only CSV whose header is fixed by its first row (or by the file it continues)."""

    def __init__(self, path: Path, header: list[str] | None) -> None:
        self.path = path
        self.fh: IO[str] | None = None
        self.writer: csv.DictWriter[str] | None = None
        if header:  # continue the file of a resumed run with its columns
            self.fh = path.open("a", newline="")
            self.writer = csv.DictWriter(self.fh, header, extrasaction="ignore", restval="")

    def write(self, row: Mapping[str, Any], columns: Iterable[str]) -> None:
        if self.writer is None:
            header = list(columns)
            self.fh = self.path.open("w", newline="")
            self.writer = csv.DictWriter(self.fh, header, extrasaction="ignore", restval="")
            self.writer.writeheader()
        self.writer.writerow({k: _fmt(v) for k, v in row.items()})

    def flush(self) -> None:
        if self.fh is not None:
            self.fh.flush()

    def close(self) -> None:
        if self.fh is not None:
            self.fh.close()
            self.fh = None


def _fmt(v: Any) -> Any:
    return f"{v:.7g}" if isinstance(v, float) else v


class RunLog:
    """Per-step and per-epoch scalars of one run into TensorBoard and CSV files (rank 0 only).

    Args:
        out_dir: the run folder.
        done_steps: optimiser steps already done (a resumed run's checkpoint; 0 for a new run).
        done_epochs: whole epochs already done (kNN rows of later epochs are dropped).

    """

    def __init__(self, out_dir: Path, done_steps: int = 0, done_epochs: int = 0) -> None:
        # tensorboardX's synchronous writer: its SummaryWriter queues events for a thread, and a
        # process killed after a flush would lose what was still queued
        from tensorboardX.event_file_writer import EventsWriter
        from tensorboardX.proto.event_pb2 import Event, SessionLog
        from tensorboardX.proto.summary_pb2 import Summary

        self._event, self._summary = Event, Summary  # imported here: protobuf costs ~1 s to load

        out_dir.mkdir(parents=True, exist_ok=True)
        self.out_dir = out_dir
        header = _keep_rows(out_dir / METRICS_NAME, "step", done_steps)
        knn_header = _keep_rows(out_dir / KNN_NAME, "epoch", done_epochs)
        self.metrics = _Csv(out_dir / METRICS_NAME, header)
        self.knn = _Csv(out_dir / KNN_NAME, knn_header)
        self.tb = EventsWriter(str(out_dir / "events"), f".{os.getpid()}")  # events.out.tfevents.T.HOST.PID
        # a session start at done_steps + 1: TensorBoard drops earlier files' events from that step on
        # (a resumed run's rows after its checkpoint; all of them when a run starts over with --no-resume)
        self.tb.write_event(Event(wall_time=time.time(), step=done_steps + 1,
                                  session_log=SessionLog(status=SessionLog.START)))

    def _scalars(self, step: int, values: Mapping[str, float]) -> None:
        value = self._summary.Value
        summary = self._summary(value=[value(tag=k, simple_value=float(v)) for k, v in values.items()])
        self.tb.write_event(self._event(wall_time=time.time(), step=step, summary=summary))

    def step(self, step: int, epoch: int, scalars: Mapping[str, float]) -> None:
        """Log one optimiser step (``epoch`` counted from 1)."""
        self.metrics.write({"step": step, "epoch": epoch, **scalars},
                           [*BASE_COLUMNS, *sorted(k for k in scalars if k not in BASE_COLUMNS)])
        self._scalars(step, {f"train/{k}": v for k, v in scalars.items()})

    def epoch(self, step: int, entry: Mapping[str, float]) -> None:
        """Log an epoch's summary (the ``history.json`` entry) at the step that ended it."""
        self._scalars(step, {f"epoch/{k}": v for k, v in entry.items()  # knn_*: knn_result
                             if k not in ("epoch", "step") and not k.startswith("knn_") and math.isfinite(v)})

    def knn_result(self, step: int, epoch: int, result: Mapping[str, float]) -> None:
        """Log one kNN monitor evaluation."""
        self.knn.write({"epoch": epoch, "step": step, **result}, KNN_COLUMNS)
        self._scalars(step, {f"knn/{k}": result[k] for k in ("accuracy", "auc") if math.isfinite(result[k])})

    def flush(self) -> None:
        """Hand everything logged so far to the OS (before each checkpoint: the logs never lag it)."""
        self.metrics.flush()
        self.knn.flush()
        self.tb.flush()

    def close(self) -> None:
        """Flush and close the files."""
        self.flush()
        self.metrics.close()
        self.knn.close()
        self.tb.close()


def epoch_line(method: str, entry: Mapping[str, float], epochs: int) -> str:
    """One line summing up an epoch, as the console and ``train.log`` show it."""
    text = (f"{method} epoch {int(entry['epoch'])}/{epochs}: loss {entry['loss']:.4f}  lr {entry['lr']:.2e}  "
            f"{entry['images_per_s']:.0f} img/s  {entry['seconds']:.1f} s")
    if "knn_accuracy" in entry:
        text += f"  kNN {100 * entry['knn_accuracy']:.1f} % (AUC {entry['knn_auc']:.3f})"
    return text


def attach_log(path: Path) -> None:
    """Send the ``tgp.train`` log to ``path`` (replacing the file handler of an earlier run)."""
    for h in list(log.handlers):
        if isinstance(h, logging.FileHandler):
            log.removeHandler(h)
            h.close()
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)


def plot_history(history: list[dict[str, float]], path: Path, title: str) -> None:
    """Draw the loss per epoch, and the kNN monitor's accuracy beside it when there is one."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    knn = [h for h in history if "knn_accuracy" in h]
    fig, axes = plt.subplots(1, 2 if knn else 1, figsize=(9 if knn else 5, 3), squeeze=False)
    ax = axes[0][0]
    ax.plot([h["epoch"] for h in history], [h["loss"] for h in history], marker=".")
    ax.set_xlabel("epoch")
    ax.set_ylabel("training loss")
    ax.set_title(title)
    if knn:
        ax = axes[0][1]
        ax.plot([h["epoch"] for h in knn], [100 * h["knn_accuracy"] for h in knn], marker="o", color="C2")
        ax.set_xlabel("epoch")
        ax.set_ylabel("kNN accuracy, held-out labels (%)")
        ax.set_title(f"kNN monitor (k = {int(knn[-1].get('knn_k', 0))})")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
