"""The calibrator ``tgp export`` fits, and what it changed: ECE before/after and a reliability plot.

:func:`calibrate` fits :func:`~tactile_grasp_predictor.calibration.fit_calibrator` on the
validation part of the training split and measures the expected calibration error
(:func:`~tactile_grasp_predictor.metrics.reliability`, 10 equal-width bins) before and after,
on validation (where it was fitted) and on the test split (held out). :func:`plot_reliability`
draws the reliability diagrams (success rate per bin against the mean p, before and after).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from tactile_grasp_predictor.calibration import CALIBRATION_KINDS, Calibrator, fit_calibrator
from tactile_grasp_predictor.errors import ConfigError
from tactile_grasp_predictor.metrics import reliability

__all__ = ["CALIBRATION_CHOICES", "apply", "calibrate", "plot_reliability"]

#: ``tgp export --calibration``: a calibrator kind, or ``none``.
CALIBRATION_CHOICES = ("none", *CALIBRATION_KINDS)


def apply(calibrator: Calibrator | None, p: np.ndarray) -> np.ndarray:
    """Return ``p`` through ``calibrator`` (float32 maths, as the runtime does), or ``p`` unchanged."""
    if calibrator is None:
        return np.asarray(p, dtype=np.float64)
    with torch.inference_mode():
        return calibrator(torch.as_tensor(np.asarray(p), dtype=torch.float32)).double().numpy()


def calibrate(kind: str, p_val: np.ndarray, y_val: np.ndarray, p_test: np.ndarray, y_test: np.ndarray,
              fitted_on: str = "validation part of the training split",
              ) -> tuple[Calibrator | None, dict[str, Any]]:
    """Fit ``kind`` on validation; return it and the report (ECE before/after, reliability bins).

    ``kind == "none"``: no calibrator; the report still gives the probe's own ECE.
    """
    if kind not in CALIBRATION_CHOICES:
        raise ConfigError(f"calibration {kind!r}: expected one of {', '.join(CALIBRATION_CHOICES)}")
    cal = None if kind == "none" else fit_calibrator(kind, p_val, y_val)
    report: dict[str, Any] = {"kind": kind, "map": cal.describe() if cal else "identity",
                              "fitted_on": fitted_on, "n": len(p_val)}
    for split, p, y in (("validation", p_val, y_val), ("test", p_test, y_test)):
        before, after = reliability(p, y), reliability(apply(cal, p), y)
        report[split] = {"ece_before": before["ece"], "ece_after": after["ece"],
                         "bins_before": before["bins"], "bins_after": after["bins"], "n": len(p)}
    return cal, report


def plot_reliability(report: dict[str, Any], path: Path, title: str = "",
                     names: tuple[str, str] = ("validation", "test")) -> Path:
    """Draw the reliability diagrams of ``report`` (validation and test, before and after) into ``path``.

    ``names``: the panels' titles (the report's keys stay ``validation`` and ``test``).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4.6), sharey=True)
    for ax, split, name in zip(axes, ("validation", "test"), names, strict=True):
        r = report[split]
        ax.plot([0, 1], [0, 1], color="grey", lw=1, ls="--", label="calibrated")
        for when, colour in (("before", "tab:red"), ("after", "tab:blue")):
            bins = [b for b in r[f"bins_{when}"] if b["n"]]
            ece = r[f"ece_{when}"]
            ax.plot([b["mean_p"] for b in bins], [b["success_rate"] for b in bins], "o-", color=colour,
                    label=f"{when} ({report['map'] if when == 'after' else 'probe'}): ECE "
                          f"{'–' if ece is None else f'{ece:.3f}'}")
            for b in bins:
                ax.annotate(str(b["n"]), (b["mean_p"], b["success_rate"]), fontsize=6, color=colour,
                            xytext=(2, 3), textcoords="offset points")
        ax.set(xlim=(0, 1), ylim=(0, 1), xlabel="mean p(success) in the bin",
               title=f"{name} ({r['n']} trials)")
        ax.legend(loc="upper left", fontsize=7)
    axes[0].set_ylabel("success rate in the bin")
    fig.suptitle(title or "reliability before / after calibration (numbers: trials per bin)", fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
