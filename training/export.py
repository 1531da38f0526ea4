"""``tgp export``: a trained encoder + a probe fitted on its frozen features → a model bundle.

    tgp export --run runs/moco --data DIR --out bundles/moco-mlp [--probe mlp] [--onnx]

The training split's labels are divided (stratified, seeded) into a fitting part and a
validation part (``val_fraction``, default 20 %). The probe is fitted on the first; on the
second a calibrator is fitted (``--calibration``, default ``platt``; ``temperature``,
``isotonic`` or ``none``: :mod:`~tactile_grasp_predictor.calibration`), its ECE before and
after printed and drawn (``<out>-reliability.png``), and the decision threshold chosen on
the calibrated p; all are measured on the test split. The threshold rule
(``--threshold-rule``, :mod:`training.thresholds`) is by default ``balanced_accuracy``;
``precision>=P`` and ``cost:drop=D,regrasp=R`` serve a pick gate where a failed lift costs
more than a regrasp. The bundle records the preprocessing, threshold,
metrics, config, a data fingerprint (cache fingerprints + split), the library versions and,
when known (``--trigger``, or the data's own record), the trigger settings under which the
training frames were taken (the node warns when its own differ). Finally the bundle is
loaded back through :class:`~tactile_grasp_predictor.predictor.Predictor` and must
reproduce the offline probabilities on test trials.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from dataclasses import fields
from pathlib import Path
from typing import Any

import numpy as np

from tactile_grasp_predictor.bundle import ONNX_FILE, write_bundle
from tactile_grasp_predictor.errors import ConfigError
from tactile_grasp_predictor.metrics import binary_metrics, json_safe
from tactile_grasp_predictor.predictor import Predictor
from tactile_grasp_predictor.preprocess import preprocess_pair
from tactile_grasp_predictor.sensor_health import SensorReference
from tactile_grasp_predictor.tracker import TriggerConfig
from training.calibration_report import CALIBRATION_CHOICES, apply, calibrate, plot_reliability
from training.cli import add_common_arguments, add_run_arguments, load_data
from training.data.sets import TactileSet
from training.data.splits import split_fit_val
from training.features import extract_features
from training.probe_fit import PROBES, chosen_params, fit_probe, runtime_proba
from training.thresholds import (  # re-exported: callers import the rules from here
    MIN_LIFTS,
    THRESHOLD_GRID,
    choose_threshold,
    describe_threshold_rule,
    parse_threshold_rule,
)
from training.train import TrainResult, load_trained

__all__ = ["MIN_LIFTS", "THRESHOLD_GRID", "add_arguments", "choose_threshold", "describe_threshold_rule",
           "export_bundle", "frames_graph_diff", "parse_threshold_rule", "parse_trigger_settings",
           "reliability_plot_path", "run"]


def reliability_plot_path(out: Path) -> Path:
    """Return where ``tgp export`` draws the reliability plot: ``<out>-reliability.png`` beside the bundle."""
    return Path(out).with_name(Path(out).name + "-reliability.png")

def export_bundle(trained: TrainResult, train_set: TactileSet, test_set: TactileSet, out: Path,
                  probe_kind: str = "mlp", onnx: bool = False, data_info: dict[str, Any] | None = None,
                  overwrite: bool = False, threshold_rule: str = "balanced_accuracy",
                  trigger: Mapping[str, Any] | None = None, calibration: str = "platt",
                  quantize: bool = False, quantize_threads: int = 1,
                  calibration_set: TactileSet | None = None, calibration_source: str = "",
                  ) -> tuple[Path, dict[str, Any]]:
    """Fit the probe, choose the threshold by ``threshold_rule``, write and verify the bundle.

    Returns (bundle path, metrics). ``threshold_rule``: see :func:`choose_threshold`.
    ``trigger``: the manifest's ``trigger`` record, ``{"source": text, "settings": {TriggerConfig
    field: value}}`` (default: ``data_info["trigger"]`` if the data records one, else unknown).
    With ``onnx``, the frames graph ``model.onnx`` must reproduce the Predictor on test frames.
    ``calibration``: the calibrator fitted on the validation part (``none``: the probe's p);
    the threshold is chosen on the calibrated p, and the bundle's models give the calibrated p.
    ``metrics["calibration"]`` holds the ECE before/after; the plot is at :func:`reliability_plot_path`.
    ``quantize`` (needs ``onnx``): add ``network_int8.onnx``, calibrated on up to 128 training
    pairs, judged on the test split and timed on ``quantize_threads`` threads
    (:mod:`training.quantize`); ``metrics["quantization"]`` holds the verdict.
    ``calibration_set`` (e.g. trials harvested with the node's trigger, ``tgp harvest``): the
    calibrator is fitted and the threshold chosen on all of its trials instead of the
    validation part, so p is calibrated on the frames the node will see; ``calibration_source``
    names it in the manifest.
    """
    cfg = trained.config
    rule_text = describe_threshold_rule(threshold_rule)  # a bad rule fails before the slow part
    if quantize and not onnx:
        raise ConfigError("--quantize needs --onnx (it quantises network.onnx)")
    enc = trained.method.encoder
    x_tr = extract_features(enc, train_set, trained.preprocess)
    x_te = extract_features(enc, test_set, trained.preprocess)
    y_tr, y_te = np.asarray(train_set.labels), np.asarray(test_set.labels)
    fit, val = split_fit_val(y_tr, cfg.val_fraction, cfg.seed)
    model, probe = fit_probe(probe_kind, x_tr[fit], y_tr[fit], cfg, cfg.seed)
    p_te_raw = runtime_proba(probe, x_te)
    if calibration_set is None:
        p_val_raw, y_val, fitted_on = runtime_proba(probe, x_tr[val]), y_tr[val], None
    else:
        x_cal = extract_features(enc, calibration_set, trained.preprocess)
        p_val_raw, y_val = runtime_proba(probe, x_cal), np.asarray(calibration_set.labels)
        fitted_on = f"{len(calibration_set)} trials of {calibration_source or 'a calibration set'}"
        rule_text = rule_text.replace("the validation part of the training split", fitted_on)
    calibrator, cal_report = calibrate(calibration, p_val_raw, y_val, p_te_raw, y_te,
                                       *([fitted_on] if fitted_on else []))
    p_val, p_te = apply(calibrator, p_val_raw), apply(calibrator, p_te_raw)
    threshold = choose_threshold(p_val, y_val, threshold_rule)
    metrics = {
        "threshold_rule": rule_text,
        "calibration": cal_report,
        "validation": binary_metrics(p_val, y_val, threshold),
        "test": binary_metrics(p_te, y_te, threshold),
        "test_at_0.5": binary_metrics(p_te, y_te, 0.5),
        "threshold": threshold,
        "n_fit": len(fit),
        "probe_params": chosen_params(model),
        "epochs": trained.epochs_done,
        # the training frames' no-contact (Ta) statistics: the node's sensor health check compares with them
        "sensor_reference": SensorReference.from_frames(train_set.before).to_json(),
    }
    fingerprint = {"kind": "synthetic"} if data_info is None else {
        k: data_info[k] for k in ("kind", "seed", "n_train", "n_test", "fingerprint") if k in data_info
    }
    if trigger is None and data_info is not None:
        trigger = data_info.get("trigger")
    path = write_bundle(out, enc, probe, {
        "preprocessing": trained.preprocess, "threshold": threshold,
        "training_method": cfg.method, "config": cfg.to_dict(),
        "data_fingerprint": fingerprint, "metrics": json_safe(metrics),  # undefined (NaN) → null
        "trigger": None if trigger is None else dict(trigger),
        "calibration": None if calibrator is None else {"fitted_on": cal_report["fitted_on"],
                                                        "n": cal_report["n"]},
    }, export_onnx=onnx, overwrite=overwrite, calibrator=calibrator)
    metrics["reliability_plot"] = str(plot_reliability(
        cal_report, reliability_plot_path(path), f"{path.name}: calibration {cal_report['map']}"))
    # the runtime must reproduce the offline pipeline on raw test frames
    n = min(8, len(test_set))
    for backend in ("torch", "onnx") if onnx else ("torch",):
        pred = Predictor.from_bundle(path, backend=backend)
        got = np.array([pred.predict(test_set.before[i], test_set.during[i]) for i in range(n)])
        diff = float(np.abs(got - p_te[:n]).max())
        if diff > 1e-3:
            raise ConfigError(f"{path}: {backend} Predictor differs from the offline probe by {diff:.2e}")
        metrics[f"runtime_check_{backend}_max_abs_diff"] = diff
    if onnx:  # the frames graph alone, on raw test frames, against the Predictor
        diff = frames_graph_diff(path, test_set.before[:n], test_set.during[:n], got)
        if diff > 1e-4:
            raise ConfigError(f"{path}: model.onnx on raw frames differs from the Predictor by {diff:.2e}")
        metrics["runtime_check_frames_onnx_max_abs_diff"] = diff
    if quantize:
        from training.quantize import quantize_bundle

        rng = np.random.default_rng(cfg.seed)
        pick = rng.permutation(np.asarray(fit))[:128]
        x_cal = np.concatenate([preprocess_pair(train_set.before[i], train_set.during[i], trained.preprocess)
                                .numpy() for i in pick])
        pairs = [(test_set.before[i], test_set.during[i]) for i in range(len(test_set))]
        metrics["quantization"] = quantize_bundle(path, x_cal, pairs, y_te, p_te, quantize_threads)
    return path, metrics


def frames_graph_diff(bundle: Path, tas: Any, tbs: Any, expected: np.ndarray) -> float:
    """Largest ``|p - expected|`` of the bundle's frames graph (``model.onnx``) run one pair at a time."""
    import onnxruntime as ort

    sess = ort.InferenceSession(str(Path(bundle) / ONNX_FILE), providers=["CPUExecutionProvider"])
    got = [float(sess.run(None, {"ta": np.asarray(a)[None], "tb": np.asarray(b)[None]})[0][0])
           for a, b in zip(tas, tbs, strict=True)]
    return float(np.abs(np.asarray(got) - np.asarray(expected, np.float64)).max()) if got else 0.0


def parse_trigger_settings(text: str) -> dict[str, Any]:
    """``"tb_delay_s=0.75,settle_window_s=0.25"`` → the manifest's ``trigger`` record; ConfigError if bad."""
    settings: dict[str, Any] = {}
    names = {f.name for f in fields(TriggerConfig)}
    for item in filter(None, (t.strip() for t in text.split(","))):
        name, sep, value = item.partition("=")
        if not sep or name.strip() not in names:
            raise ConfigError(f"--trigger {item!r}: expected FIELD=VALUE with FIELD one of {sorted(names)}")
        v = value.strip().lower()
        try:
            settings[name.strip()] = (v == "true") if v in ("true", "false") else None if v == "none" \
                else int(v) if name.strip() == "frame_buffer_size" else float(v)
        except ValueError as exc:
            raise ConfigError(f"--trigger {item!r}: {value!r} is not a number") from exc
    return {"source": "tgp export --trigger", "settings": settings}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``tgp export``."""
    add_run_arguments(parser)
    parser.add_argument("--out", type=Path, required=True, help="bundle directory to write")
    parser.add_argument("--probe", default="mlp", choices=PROBES)
    parser.add_argument("--onnx", action="store_true",
                        help="also write model.onnx (uint8 frames in, preprocessing in the graph) and "
                             "network.onnx (the Predictor's onnx backend), each checked within 1e-4")
    parser.add_argument("--trigger", default=None, metavar="FIELD=V,...",
                        help="the trigger settings the training frames were taken with, e.g. "
                             "tb_delay_s=0.75,settle_window_s=0.25 (recorded; the node warns on a mismatch)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing bundle")
    parser.add_argument("--threshold-rule", default="balanced_accuracy", metavar="RULE",
                        help="balanced_accuracy (default) or precision>=P, e.g. precision>=0.85: the "
                             "lowest threshold whose validation LIFT precision reaches P; or "
                             "cost:drop=D,regrasp=R, the least expected cost when a dropped part costs D "
                             "and a regrasp (every ABORT) R, e.g. cost:drop=10,regrasp=1")
    parser.add_argument("--calibration", default="platt", choices=CALIBRATION_CHOICES,
                        help="calibrator fitted on the validation part (default platt; the node publishes "
                             "the calibrated p); ECE before/after printed, reliability plot drawn")
    parser.add_argument("--calibration-data", type=Path, default=None, metavar="DIR",
                        help="shards (e.g. tgp harvest's Ta/Tb picked by the node's trigger) to fit the "
                             "calibrator and choose the threshold on, instead of the validation part")
    parser.add_argument("--quantize", action="store_true",
                        help="with --onnx: also write network_int8.onnx (static INT8, calibrated on training "
                             "frames); backend auto runs it only if >= 1.7x faster with test accuracy and "
                             "AUC within 0.5 points of fp32 (both printed)")
    add_common_arguments(parser)


def run(args: argparse.Namespace) -> int:
    """Entry point of ``tgp export``."""
    parse_threshold_rule(args.threshold_rule)
    trigger = parse_trigger_settings(args.trigger) if args.trigger else None
    trained = load_trained(args.run)
    train_set, test_set, info = load_data(args, trained.config)
    cal_set = None
    if args.calibration_data is not None:
        from training.harvest import load_harvest

        cal_set = load_harvest(args.calibration_data, trained.config, progress=not args.no_progress)
    path, m = export_bundle(trained, train_set, test_set, args.out, args.probe, args.onnx, info,
                            args.overwrite, args.threshold_rule, trigger, args.calibration, args.quantize,
                            calibration_set=cal_set, calibration_source=str(args.calibration_data or ""))
    t = m["test"]
    print(f"bundle {path}: threshold {m['threshold']:.2f} "
          f"(chosen on {m['validation']['n']} {'calibration-data' if cal_set is not None else 'validation'} "
          "trials)")
    print(f"test: accuracy {t['accuracy']:.3f}, balanced {t['balanced_accuracy']:.3f}, "
          f"LIFT precision {t['lift_precision']:.3f}, AUC {t['auc']:.3f} (n={t['n']})")
    c = m["calibration"]

    def ece(split: str, when: str) -> str:
        value = c[split][f"ece_{when}"]
        return "–" if value is None else f"{value:.3f}"

    print(f"calibration {c['map']} (fitted on {c['fitted_on']}, n={c['n']}): "
          f"ECE test {ece('test', 'before')} -> {ece('test', 'after')}, "
          f"validation {ece('validation', 'before')} -> {ece('validation', 'after')}; "
          f"plot {m['reliability_plot']}")
    q = m.get("quantization")
    if q:
        qt = q["test"]
        print(f"int8: predict {q['predict_ms_int8']:.2f} ms vs fp32 {q['predict_ms_fp32']:.2f} ms "
              f"({q['speedup']:.2f}x, {q['threads']} thread(s)); test accuracy {qt['accuracy_int8']:.4f} vs "
              f"{qt['accuracy_fp32']:.4f}, AUC {qt['auc_int8']:.4f} vs {qt['auc_fp32']:.4f}; "
              f"{'chosen by backend auto' if q['accepted'] else 'not chosen'}: {q['why']}")
    return 0
