"""Probes on frozen features → p(success), as torch modules holding plain tensors.

Training fits scikit-learn models and converts them here (:func:`probe_from_sklearn`);
inference needs neither scikit-learn nor unpickling: a probe is saved as a dict of
tensors plus JSON parameters (:func:`probe_to_tensors` / :func:`probe_from_tensors`).

Every probe maps features ``N x D`` to ``N`` probabilities of the positive class
(``classes_[1]`` of the scikit-learn model: success = 1). Each first applies an optional
L2 normalisation of the features and an optional standardisation
``(x − input_mean) / input_scale`` (a fitted ``StandardScaler``), then:

- :class:`KNNProbe` — ``k`` nearest neighbours of a bank (cosine or euclidean), vote
  fraction of positives, uniform or inverse-distance weights (``KNeighborsClassifier``).
- :class:`SVMProbe` — kernel decision value ``f = Σ α_i K(s_i, x) + b`` (``SVC``) then
  Platt sigmoid ``p = 1 / (1 + exp(A f + B))`` (the calibrator of
  ``CalibratedClassifierCV(SVC(), ensemble=False, method="sigmoid")``).
- :class:`MLPProbe` — ``MLPClassifier`` layers (``coefs_`` ``in x out``), logistic output.

Example:
    >>> import torch
    >>> probe = KNNProbe(torch.randn(10, 4), torch.tensor([0., 1.] * 5), k=3)
    >>> tuple(probe(torch.randn(2, 4)).shape)
    (2,)

"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from tactile_grasp_predictor.errors import BundleError

__all__ = [
    "PROBE_KINDS",
    "KNNProbe",
    "MLPProbe",
    "Probe",
    "SVMProbe",
    "probe_from_sklearn",
    "probe_from_tensors",
    "probe_to_tensors",
]

_ACTIVATIONS = ("relu", "tanh", "logistic", "identity")


def _f32(t: Any, name: str) -> torch.Tensor:
    x = torch.as_tensor(t).detach().to(torch.float32).clone()
    if not torch.isfinite(x).all():
        raise BundleError(f"probe tensor {name!r}: contains NaN or inf")
    return x


class Probe(nn.Module):
    """Base of the probes: optional L2 normalisation and standardisation of features.

    Subclasses implement :meth:`score` on prepared features and :meth:`params`.
    """

    kind: ClassVar[str] = ""
    input_mean: torch.Tensor
    input_scale: torch.Tensor

    def __init__(
        self,
        in_dim: int,
        input_mean: torch.Tensor | None = None,
        input_scale: torch.Tensor | None = None,
        l2_normalize: bool = False,
    ) -> None:
        super().__init__()
        self.in_dim = int(in_dim)
        self.l2_normalize = bool(l2_normalize)
        mean = torch.zeros(self.in_dim) if input_mean is None else _f32(input_mean, "input_mean")
        scale = torch.ones(self.in_dim) if input_scale is None else _f32(input_scale, "input_scale")
        if tuple(mean.shape) != (self.in_dim,) or tuple(scale.shape) != (self.in_dim,):
            raise BundleError(
                f"probe tensors 'input_mean'/'input_scale': expected shape ({self.in_dim},), "
                f"got {tuple(mean.shape)} / {tuple(scale.shape)}"
            )
        if (scale == 0).any():
            raise BundleError("probe tensor 'input_scale': contains zeros")
        self.register_buffer("input_mean", mean)
        self.register_buffer("input_scale", scale)

    def prepare(self, x: torch.Tensor) -> torch.Tensor:
        """L2-normalise (if set) and standardise features ``N x D``."""
        assert x.ndim == 2 and x.shape[1] == self.in_dim, f"expected N x {self.in_dim}, got {tuple(x.shape)}"
        if self.l2_normalize:
            x = F.normalize(x, dim=1)
        return (x - self.input_mean) / self.input_scale

    def score(self, x: torch.Tensor) -> torch.Tensor:
        """p(success) ``N`` from prepared features ``N x D``."""
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Features ``N x D`` → p(success) ``N`` in ``[0, 1]``."""
        return self.score(self.prepare(x.to(torch.float32)))

    def params(self) -> dict[str, Any]:
        """JSON-serialisable parameters (everything that is not a tensor)."""
        return {"in_dim": self.in_dim, "l2_normalize": self.l2_normalize}


class KNNProbe(Probe):
    """k-nearest-neighbour vote over a bank of labelled features.

    Args:
        bank: ``M x D`` training features (L2-normalised here when ``metric="cosine"``).
        labels: ``M`` labels in {0, 1} (1 = success).
        k: neighbours (the paper's protocol: ``√n_train``).
        metric: ``"cosine"`` (distance ``1 − cos``) or ``"euclidean"``.
        weights: ``"uniform"`` (vote fraction) or ``"distance"`` (``1/d`` weights).

    """

    kind = "knn"
    bank: torch.Tensor
    labels: torch.Tensor
    bank_sq: torch.Tensor

    def __init__(
        self,
        bank: torch.Tensor,
        labels: torch.Tensor,
        k: int,
        metric: str = "cosine",
        weights: str = "uniform",
        **kwargs: Any,
    ) -> None:
        bank = _f32(bank, "bank")
        labels = _f32(labels, "labels")
        if bank.ndim != 2 or labels.shape != (bank.shape[0],):
            raise BundleError(
                f"probe tensors 'bank'/'labels': expected M x D and M, "
                f"got {tuple(bank.shape)} / {tuple(labels.shape)}"
            )
        if not ((labels == 0) | (labels == 1)).all():
            raise BundleError("probe tensor 'labels': values must be 0 or 1")
        if not 1 <= int(k) <= bank.shape[0]:
            raise BundleError(f"probe parameter 'k': {k} must be in 1..{bank.shape[0]} (bank size)")
        if metric not in ("cosine", "euclidean"):
            raise BundleError(f"probe parameter 'metric': {metric!r} not in ('cosine', 'euclidean')")
        if weights not in ("uniform", "distance"):
            raise BundleError(f"probe parameter 'weights': {weights!r} not in ('uniform', 'distance')")
        super().__init__(bank.shape[1], **kwargs)
        self.k, self.metric, self.weights = int(k), metric, weights
        if metric == "cosine" and not torch.allclose(bank.norm(dim=1), torch.ones(1), atol=1e-6, rtol=0):
            bank = F.normalize(bank, dim=1)  # once: a stored bank is already unit-norm (bit-exact reload)
        self.register_buffer("bank", bank)  # M x D
        self.register_buffer("labels", labels)  # M
        self.register_buffer("bank_sq", (bank * bank).sum(dim=1))  # M, for euclidean distances

    def score(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        if self.metric == "cosine":
            dist = 1.0 - F.normalize(x, dim=1) @ self.bank.T  # N x M
        else:
            sq = (x * x).sum(dim=1, keepdim=True) + self.bank_sq - 2.0 * (x @ self.bank.T)  # N x M
            dist = sq.clamp_min(0.0).sqrt()
        neg_d, idx = torch.topk(-dist, self.k, dim=1)  # N x k, nearest first
        votes = self.labels[idx]  # N x k
        if self.weights == "uniform":
            return votes.mean(dim=1)
        w = 1.0 / (-neg_d).clamp_min(1e-12)  # N x k; an exact match dominates, as in sklearn
        return (w * votes).sum(dim=1) / w.sum(dim=1)

    def params(self) -> dict[str, Any]:  # noqa: D102
        return {**super().params(), "k": self.k, "metric": self.metric, "weights": self.weights}


class SVMProbe(Probe):
    """Kernel SVM decision value with Platt scaling.

    ``f(x) = Σ_i dual_coef_i · K(sv_i, x) + intercept`` (positive → success, as
    scikit-learn's ``decision_function``), ``p = 1 / (1 + exp(A f + B))``.

    Args:
        support_vectors: ``S x D``.
        dual_coef: ``S`` (``SVC.dual_coef_[0]``).
        intercept: scalar (``SVC.intercept_[0]``).
        kernel: ``"rbf"`` (``exp(−γ‖x − s‖²)``) or ``"linear"`` (``x · s``).
        gamma: the RBF ``γ`` (``SVC._gamma``, i.e. ``"scale"`` resolved).
        platt_a, platt_b: ``A``, ``B`` of the sigmoid.

    """

    kind = "svm"
    support_vectors: torch.Tensor
    dual_coef: torch.Tensor
    sv_sq: torch.Tensor

    def __init__(
        self,
        support_vectors: torch.Tensor,
        dual_coef: torch.Tensor,
        intercept: float,
        kernel: str = "rbf",
        gamma: float = 1.0,
        platt_a: float = -1.0,
        platt_b: float = 0.0,
        **kwargs: Any,
    ) -> None:
        sv = _f32(support_vectors, "support_vectors")
        coef = _f32(dual_coef, "dual_coef").reshape(-1)
        if sv.ndim != 2 or coef.shape != (sv.shape[0],):
            raise BundleError(
                f"probe tensors 'support_vectors'/'dual_coef': expected S x D and S, "
                f"got {tuple(sv.shape)} / {tuple(coef.shape)}"
            )
        if kernel not in ("rbf", "linear"):
            raise BundleError(f"probe parameter 'kernel': {kernel!r} not in ('rbf', 'linear')")
        scalars = {"gamma": gamma, "intercept": intercept, "platt_a": platt_a, "platt_b": platt_b}
        for name, v in scalars.items():
            if not math.isfinite(float(v)):  # a NaN calibration would give p = NaN for every grasp
                raise BundleError(f"probe parameter {name!r}: {v} is not finite")
        if kernel == "rbf" and not float(gamma) > 0:
            raise BundleError(f"probe parameter 'gamma': {gamma} must be > 0")
        super().__init__(sv.shape[1], **kwargs)
        self.kernel = kernel
        self.gamma, self.intercept = float(gamma), float(intercept)
        self.platt_a, self.platt_b = float(platt_a), float(platt_b)
        self.register_buffer("support_vectors", sv)  # S x D
        self.register_buffer("dual_coef", coef)  # S
        self.register_buffer("sv_sq", (sv * sv).sum(dim=1))  # S

    def decision(self, x: torch.Tensor) -> torch.Tensor:
        """Decision value ``N`` of prepared features ``N x D``."""
        dot = x @ self.support_vectors.T  # N x S
        if self.kernel == "linear":
            k = dot
        else:
            sq = ((x * x).sum(dim=1, keepdim=True) + self.sv_sq - 2.0 * dot).clamp_min(0.0)  # N x S
            k = torch.exp(-self.gamma * sq)
        return k @ self.dual_coef + self.intercept  # N

    def score(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        return torch.sigmoid(-(self.platt_a * self.decision(x) + self.platt_b))

    def params(self) -> dict[str, Any]:  # noqa: D102
        return {
            **super().params(),
            "kernel": self.kernel,
            "gamma": self.gamma,
            "intercept": self.intercept,
            "platt_a": self.platt_a,
            "platt_b": self.platt_b,
        }


class MLPProbe(Probe):
    """Multi-layer perceptron in scikit-learn's ``MLPClassifier`` layout.

    Args:
        weights: per layer ``in x out`` (``coefs_``); the last layer has ``out = 1``.
        biases: per layer ``out`` (``intercepts_``).
        activation: hidden activation, one of relu, tanh, logistic, identity.

    """

    kind = "mlp"

    def __init__(
        self,
        weights: list[torch.Tensor],
        biases: list[torch.Tensor],
        activation: str = "relu",
        **kwargs: Any,
    ) -> None:
        ws = [_f32(w, f"weight_{i}") for i, w in enumerate(weights)]
        bs = [_f32(b, f"bias_{i}").reshape(-1) for i, b in enumerate(biases)]
        if not ws or len(ws) != len(bs):
            raise BundleError(f"probe tensors: need matching weights/biases (>= 1), got {len(ws)}/{len(bs)}")
        for i, (w, b) in enumerate(zip(ws, bs, strict=True)):
            if w.ndim != 2 or b.shape != (w.shape[1],):
                raise BundleError(
                    f"probe tensors 'weight_{i}'/'bias_{i}': shapes {tuple(w.shape)} / {tuple(b.shape)}"
                )
            if i > 0 and w.shape[0] != ws[i - 1].shape[1]:
                raise BundleError(
                    f"probe tensor 'weight_{i}': input {w.shape[0]} != previous output {ws[i - 1].shape[1]}"
                )
        if ws[-1].shape[1] != 1:
            raise BundleError(
                f"probe tensor 'weight_{len(ws) - 1}': binary output needs 1 column, got {ws[-1].shape[1]}"
            )
        if activation not in _ACTIVATIONS:
            raise BundleError(f"probe parameter 'activation': {activation!r} not in {_ACTIVATIONS}")
        super().__init__(ws[0].shape[0], **kwargs)
        self.activation = activation
        self.n_layers = len(ws)
        for i, (w, b) in enumerate(zip(ws, bs, strict=True)):
            self.register_buffer(f"weight_{i}", w)
            self.register_buffer(f"bias_{i}", b)

    def _act(self, x: torch.Tensor) -> torch.Tensor:
        if self.activation == "relu":
            return torch.relu(x)
        if self.activation == "tanh":
            return torch.tanh(x)
        if self.activation == "logistic":
            return torch.sigmoid(x)
        return x

    def score(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        for i in range(self.n_layers):
            x = x @ getattr(self, f"weight_{i}") + getattr(self, f"bias_{i}")
            if i < self.n_layers - 1:
                x = self._act(x)
        return torch.sigmoid(x[:, 0])

    def params(self) -> dict[str, Any]:  # noqa: D102
        return {**super().params(), "activation": self.activation, "n_layers": self.n_layers}


PROBE_KINDS: dict[str, type[Probe]] = {"knn": KNNProbe, "svm": SVMProbe, "mlp": MLPProbe}

_DERIVED = {"bank_sq", "sv_sq"}  # recomputed on load, never stored


def probe_to_tensors(probe: Probe) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Split a probe into stored tensors and JSON parameters (``kind`` is ``probe.kind``)."""
    tensors = {
        name: buf.detach().cpu().contiguous()
        for name, buf in probe.named_buffers()
        if name not in _DERIVED
    }
    return tensors, probe.params()


def _need(tensors: Mapping[str, torch.Tensor], name: str) -> torch.Tensor:
    if name not in tensors:
        raise BundleError(f"probe tensor {name!r}: missing (have {sorted(tensors)})")
    return tensors[name]


def probe_from_tensors(kind: str, tensors: Mapping[str, torch.Tensor], params: Mapping[str, Any]) -> Probe:
    """Rebuild a probe from :func:`probe_to_tensors` output; bad shapes raise :class:`BundleError`."""
    if kind not in PROBE_KINDS:
        raise BundleError(f"probe kind {kind!r}: unknown; known: {sorted(PROBE_KINDS)}")
    p = dict(params)
    try:
        common = {
            "input_mean": _need(tensors, "input_mean"),
            "input_scale": _need(tensors, "input_scale"),
            "l2_normalize": bool(p.get("l2_normalize", False)),
        }
        probe: Probe
        if kind == "knn":
            probe = KNNProbe(
                _need(tensors, "bank"), _need(tensors, "labels"), int(p["k"]),
                metric=str(p.get("metric", "cosine")), weights=str(p.get("weights", "uniform")), **common,
            )
        elif kind == "svm":
            probe = SVMProbe(
                _need(tensors, "support_vectors"), _need(tensors, "dual_coef"), float(p["intercept"]),
                kernel=str(p["kernel"]), gamma=float(p["gamma"]),
                platt_a=float(p["platt_a"]), platt_b=float(p["platt_b"]), **common,
            )
        else:
            n = int(p["n_layers"])
            probe = MLPProbe(
                [_need(tensors, f"weight_{i}") for i in range(n)],
                [_need(tensors, f"bias_{i}") for i in range(n)],
                activation=str(p.get("activation", "relu")), **common,
            )
        if "in_dim" in p and int(p["in_dim"]) != probe.in_dim:
            raise BundleError(f"probe parameter 'in_dim': {p['in_dim']} but tensors have {probe.in_dim}")
    except KeyError as exc:
        raise BundleError(f"probe parameter {exc.args[0]!r}: missing for kind {kind!r}") from exc
    except BundleError:
        raise
    except (TypeError, ValueError, OverflowError) as exc:  # e.g. int("abc"), int(inf)
        raise BundleError(f"probe of kind {kind!r}: bad parameters: {exc}") from exc
    extra = set(tensors) - set(probe_to_tensors(probe)[0])
    if extra:
        raise BundleError(f"probe tensors {sorted(extra)}: unexpected for kind {kind!r}")
    return probe


def _positive_class_check(model: Any) -> None:
    classes = list(getattr(model, "classes_", []))
    if len(classes) != 2:
        raise ValueError(f"probe_from_sklearn: need a binary classifier, got classes {classes}")


def probe_from_sklearn(model: Any, l2_normalize: bool = False) -> Probe:
    """Convert a fitted scikit-learn model into a probe (duck-typed; scikit-learn not imported).

    Accepts ``KNeighborsClassifier``, ``MLPClassifier``,
    ``CalibratedClassifierCV(SVC(kernel="rbf"|"linear"), method="sigmoid", ensemble=False)``
    (exact), a legacy ``SVC(probability=True)`` (its Platt A/B; scikit-learn's libsvm
    couples the two classes iteratively, so it agrees to about 1e-3 only), or a ``Pipeline``
    of a ``StandardScaler`` then one of those. The probe returns ``predict_proba(X)[:, 1]``.
    ``l2_normalize`` says the features were L2-normalised before fitting.
    """
    mean = scale = None
    if hasattr(model, "steps"):  # Pipeline
        steps = [s for _, s in model.steps]
        if len(steps) == 2 and type(steps[0]).__name__ == "StandardScaler":
            sc = steps[0]
            mean = None if getattr(sc, "mean_", None) is None else torch.as_tensor(sc.mean_)
            scale = None if getattr(sc, "scale_", None) is None else torch.as_tensor(sc.scale_)
            model = steps[1]
        elif len(steps) == 1:
            model = steps[0]
        else:
            raise ValueError("probe_from_sklearn: pipeline must be [StandardScaler, classifier]")
    common: dict[str, Any] = {"input_mean": mean, "input_scale": scale, "l2_normalize": l2_normalize}
    _positive_class_check(model)
    name = type(model).__name__
    if name == "KNeighborsClassifier":
        metric = model.effective_metric_
        if metric not in ("cosine", "euclidean"):
            raise ValueError(f"probe_from_sklearn: KNN metric {metric!r} unsupported (cosine, euclidean)")
        if model.weights not in ("uniform", "distance"):
            raise ValueError(f"probe_from_sklearn: KNN weights {model.weights!r} unsupported")
        labels = torch.as_tensor(model._y == 1, dtype=torch.float32)  # indices into classes_
        return KNNProbe(torch.as_tensor(model._fit_X), labels, model.n_neighbors,
                        metric=metric, weights=model.weights, **common)
    if name == "MLPClassifier":
        if model.out_activation_ != "logistic":
            raise ValueError(f"probe_from_sklearn: MLP output {model.out_activation_!r} is not logistic")
        weights = [torch.as_tensor(w) for w in model.coefs_]
        biases = [torch.as_tensor(b) for b in model.intercepts_]
        return MLPProbe(weights, biases, activation=model.activation, **common)
    if name == "CalibratedClassifierCV":
        if len(model.calibrated_classifiers_) != 1:
            raise ValueError("probe_from_sklearn: CalibratedClassifierCV needs ensemble=False")
        cc = model.calibrated_classifiers_[0]
        cal = cc.calibrators[0]
        if not hasattr(cal, "a_"):
            raise ValueError("probe_from_sklearn: CalibratedClassifierCV needs method='sigmoid'")
        return _svm(cc.estimator, float(cal.a_), float(cal.b_), common)
    if name == "SVC":
        if len(getattr(model, "probA_", [])) != 1:
            raise ValueError("probe_from_sklearn: SVC without probability; wrap it in CalibratedClassifierCV")
        # libsvm: P(classes_[0]) = 1/(1+exp(A·dec + B)) with dec = −decision_function
        return _svm(model, float(model.probA_[0]), -float(model.probB_[0]), common)
    raise ValueError(f"probe_from_sklearn: unsupported model {name}")


def _svm(svc: Any, a: float, b: float, common: dict[str, Any]) -> SVMProbe:
    _positive_class_check(svc)
    if svc.kernel not in ("rbf", "linear"):
        raise ValueError(f"probe_from_sklearn: SVC kernel {svc.kernel!r} unsupported (rbf, linear)")
    return SVMProbe(
        torch.as_tensor(svc.support_vectors_), torch.as_tensor(svc.dual_coef_[0]), float(svc.intercept_[0]),
        kernel=svc.kernel, gamma=float(svc._gamma), platt_a=a, platt_b=b, **common,
    )
