"""Run configurations: one flat, typed dataclass, loaded from YAML, overridable with ``--set``.

A config is a YAML mapping of the fields of :class:`TrainConfig`. Named configs live in
``training/configs/<name>.yaml`` (``paper``, ``cpu``, ``tiny``); a path to any YAML file works
too. Every field can be overridden on the command line with ``--set key=value`` (the value
is parsed as YAML, so ``--set resize_hw=[64,80]`` and ``--set bf16=true`` work). A run's
``config.yaml`` (:mod:`training.run_config`) is such a file, with a ``run`` section the loader skips.

Example:
    >>> cfg = load_config("tiny", ["epochs=3", "moco_m=0.9"])
    >>> cfg.epochs, cfg.moco_m
    (3, 0.9)

"""

from __future__ import annotations

import dataclasses
import math
import typing
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from tactile_grasp_predictor.errors import ConfigError

CONFIG_DIR = Path(__file__).parent / "configs"

METHODS = ("moco", "memory_bank", "triplet", "triplet_label", "autoencoder", "supervised")
ARCHS = ("resnet18", "resnet50")
#: Fields that do not change the trained weights: a checkpoint resumes across them, and the
#: demo's run directory key leaves them out.
OPERATIONAL_FIELDS = ("name", "checkpoint_every", "checkpoint_minutes", "knn_every")
#: Fields a checkpoint resumes across although they change the weights: ``num_threads``, because
#: torch's CPU kernels (oneDNN) sum in an order that depends on the thread count (1 and 2 threads
#: train weights that differ in the last bits), and a run moved to another machine may need
#: another count. The resumed run says so; it is then no longer bit-identical to one without the move.
RESUMABLE_FIELDS = (*OPERATIONAL_FIELDS, "num_threads")
#: The key of ``config.yaml`` that records how a run was started; a config file may carry it.
RUN_SECTION = "run"


@dataclass
class TrainConfig:
    """Every knob of a training run (method, model, input, optimisation, probes)."""

    name: str = "custom"
    method: str = "moco"
    # model
    arch: str = "resnet18"
    proj_dim: int = 128  # output of the projection head (the paper: 128)
    proj_hidden: int = 512  # width of the head's hidden layers
    proj_layers: int = 2  # hidden layers in the head (the paper: 2; MoCo v2 reference: 1)
    channels_last: bool = True
    # input: frames resized to resize_hw (H, W) before Tb - Ta, network sees crop x crop
    resize_hw: tuple[int, int] = (96, 128)
    crop: int = 96
    diff_scale: float = 0.0  # gain on Tb - Ta; 0 = auto: the 99.9th percentile of |Tb - Ta| maps to 1
    finger: str = "A"  # GelSight A = left
    # augmentation (the paper's list, MoCo v2 strengths)
    aug_crop_scale: tuple[float, float] = (0.2, 1.0)
    aug_jitter: tuple[float, float, float, float] = (0.4, 0.4, 0.4, 0.1)
    aug_jitter_p: float = 0.8
    aug_gray_p: float = 0.2
    aug_blur_p: float = 0.5
    aug_blur_sigma: tuple[float, float] = (0.1, 2.0)
    aug_flip_p: float = 0.5
    # optimisation
    epochs: int = 200
    batch_size: int = 64
    lr: float = 0.01
    lr_min: float = 1e-6  # cosine decay target (the paper: 1e-6)
    warmup_epochs: int = 0
    sgd_momentum: float = 0.9
    weight_decay: float = 1e-4
    bf16: bool = False
    seed: int = 0
    num_threads: int = 0  # torch intra-op threads; 0 = torch's default (made explicit in config.yaml)
    checkpoint_every: int = 1  # epochs between checkpoints (always at the end)
    checkpoint_minutes: float = 0.0  # also checkpoint inside an epoch after this many minutes (0 = off)
    knn_every: int = 0  # kNN monitor on a held-out slice of the labels every N epochs (0 = off)
    # MoCo v2
    moco_k: int = 4096
    moco_m: float = 0.99
    temperature: float = 0.07
    split_bn: int = 2  # chunks emulating per-GPU BN on one device (1 = off)
    # memory bank (Wu et al.)
    bank_momentum: float = 0.5
    bank_temperature: float = 0.07
    # triplet
    triplet_margin: float = 0.3
    # autoencoder
    ae_weight_decay: float = 0.0
    # probes
    knn_k: int = 0  # 0 = sqrt(n_train)
    svm_c: float = 1.0
    mlp_hidden: int = 256
    mlp_alpha: tuple[float, ...] = (1e-3,)  # L2 penalty; several = chosen by k-fold CV on the labels
    label_fractions: tuple[float, ...] = (0.01, 0.1, 1.0)
    # data split
    split: str = "paper"  # paper | object | sensor (simulated shards: held-out robots)
    val_fraction: float = 0.2  # of the train labels, for the export threshold
    extra: dict[str, Any] = field(default_factory=dict)

    def validate(self, n_train: int | None = None) -> TrainConfig:
        """Check the fields (and the MoCo queue against ``n_train``); raise ConfigError naming the field."""
        if self.method not in METHODS:
            raise ConfigError(f"method: {self.method!r} is not one of {', '.join(METHODS)}")
        if self.arch not in ARCHS:
            raise ConfigError(f"arch: {self.arch!r} is not one of {', '.join(ARCHS)}")
        for name in ("epochs", "batch_size", "crop", "proj_dim", "proj_hidden", "moco_k", "split_bn"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name}: must be >= 1, got {getattr(self, name)}")
        for name in ("num_threads", "knn_every"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name}: must be >= 0, got {getattr(self, name)}")
        if self.proj_layers < 0:
            raise ConfigError(f"proj_layers: must be >= 0, got {self.proj_layers}")
        if len(self.resize_hw) != 2 or min(self.resize_hw) < self.crop:
            raise ConfigError(f"resize_hw: {self.resize_hw} must be two sizes >= crop {self.crop}")
        if not 0.0 <= self.moco_m < 1.0:
            raise ConfigError(f"moco_m: must be in [0, 1), got {self.moco_m}")
        if not 0.0 <= self.bank_momentum < 1.0:
            raise ConfigError(f"bank_momentum: must be in [0, 1), got {self.bank_momentum}")
        if self.diff_scale < 0:
            raise ConfigError(f"diff_scale: must be >= 0 (0 = automatic), got {self.diff_scale}")
        for name in ("temperature", "bank_temperature", "lr"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"{name}: must be > 0, got {getattr(self, name)}")
        if self.batch_size % self.split_bn:
            raise ConfigError(f"split_bn: batch_size {self.batch_size} is not divisible by {self.split_bn}")
        if self.split not in ("paper", "object", "sensor"):
            raise ConfigError(f"split: {self.split!r} is not 'paper', 'object' or 'sensor'")
        if self.finger not in ("A", "B"):
            raise ConfigError(f"finger: {self.finger!r} is not 'A' (left) or 'B' (right)")
        if not self.mlp_alpha or not all(a > 0 for a in self.mlp_alpha):
            raise ConfigError(f"mlp_alpha: give one or more values > 0, got {self.mlp_alpha}")
        if not all(0 < f <= 1 for f in self.label_fractions):
            raise ConfigError(f"label_fractions: each must be in (0, 1], got {self.label_fractions}")
        if self.method == "moco":
            check_queue(self.moco_k, self.batch_size, n_train)
        return self

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON/YAML-serialisable mapping (tuples as lists)."""
        out = dataclasses.asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in out.items()}


def check_queue(k: int, batch: int, n_train: int | None, world_size: int = 1) -> None:
    """MoCo queue rules: ``K % (B * world) == 0`` (whole batches enqueue) and ``K <= N - B``."""
    global_batch = batch * world_size
    if k % global_batch:
        raise ConfigError(
            f"moco_k: queue size K={k} must be a multiple of the global batch size {global_batch} "
            f"(batch_size {batch} x {world_size} process(es)); e.g. K={(k // global_batch) * global_batch}"
        )
    if n_train is not None and k > n_train - global_batch:
        raise ConfigError(
            f"moco_k: queue size K={k} exceeds N - B = {n_train} - {global_batch} = "
            f"{n_train - global_batch}; "
            "a larger queue holds stale keys of the query's own image as negatives. "
            f"Use K <= {((n_train - global_batch) // global_batch) * global_batch}"
        )


def _coerce(name: str, value: Any, hint: Any) -> Any:
    """Convert a YAML value to the field's declared type, raising ConfigError naming the field."""
    origin = typing.get_origin(hint)
    try:
        if hint is bool:
            if not isinstance(value, bool):
                raise TypeError("expected true/false")
            return value
        if hint is int:
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise TypeError("expected an integer")
            return int(value)
        if hint is float:
            if isinstance(value, bool):
                raise TypeError("expected a number")
            out = float(value)
            if math.isnan(out):
                raise TypeError("NaN")
            return out
        if hint is str:
            if not isinstance(value, str):
                raise TypeError("expected a string")
            return value
        if origin is tuple:
            args = typing.get_args(hint)
            if not isinstance(value, (list, tuple)):
                raise TypeError("expected a list")
            if len(args) == 2 and args[1] is Ellipsis:
                return tuple(_coerce(name, v, args[0]) for v in value)
            if len(value) != len(args):
                raise TypeError(f"expected {len(args)} values")
            return tuple(_coerce(name, v, a) for v, a in zip(value, args, strict=True))
        if origin is dict:
            if not isinstance(value, dict):
                raise TypeError("expected a mapping")
            return dict(value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{name}: invalid value {value!r} ({exc})") from exc
    raise ConfigError(f"{name}: unsupported field type {hint}")


def config_from_dict(data: dict[str, Any], source: str = "<dict>") -> TrainConfig:
    """Build a config from a mapping; unknown keys are errors naming ``source``."""
    hints = typing.get_type_hints(TrainConfig)
    known = {f.name for f in fields(TrainConfig)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(f"{source}: unknown config field(s) {', '.join(unknown)}")
    kwargs = {k: _coerce(f"{source}: {k}", v, hints[k]) for k, v in data.items()}
    return TrainConfig(**kwargs)


def parse_override(item: str) -> tuple[str, Any]:
    """``"key=value"`` → ``(key, yaml-parsed value)``."""
    if "=" not in item:
        raise ConfigError(f"--set {item!r}: expected key=value")
    key, raw = item.split("=", 1)
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError as exc:
        raise ConfigError(f"--set {key}: cannot parse {raw!r}: {exc}") from exc
    return key.strip(), value


def resolve_config_path(name_or_path: str) -> Path:
    """Find a named config (``training/configs/<name>.yaml``) or a YAML file path."""
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") and path.exists():
        return path
    named = CONFIG_DIR / f"{name_or_path}.yaml"
    if named.exists():
        return named
    known = sorted(p.stem for p in CONFIG_DIR.glob("*.yaml"))
    raise ConfigError(f"config {name_or_path!r}: no such file and not one of {', '.join(known)}")


def load_config(name_or_path: str, overrides: Sequence[str] = ()) -> TrainConfig:
    """Load a named or file config, apply ``key=value`` overrides, validate the fields."""
    path = resolve_config_path(name_or_path)
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of config fields")
    data.pop(RUN_SECTION, None)  # how a run's config.yaml was started: training.run_config reads it
    data.setdefault("name", path.stem)
    for item in overrides:
        key, value = parse_override(item)
        data[key] = value
    return config_from_dict(data, source=str(path)).validate()
