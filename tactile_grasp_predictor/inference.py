"""The inference worker: one thread that loads the model, then runs queued jobs one at a time.

The node's input callbacks must never wait for the model, so a
:class:`~tactile_grasp_predictor.session.InferenceJob` goes into a bounded queue
(:meth:`InferenceWorker.submit` says ``False`` when it is full: the node ABORTs the grasp
``overloaded``) and this thread runs it. Before loading, the thread can pin itself to CPUs of
its own (``inference_cpus``) and take a real-time priority (``inference_priority``); the
model's thread pools inherit both (docs/node.md, "CPU for the model"). No ROS here.

Example::

    worker = InferenceWorker(lambda: load_predictor("bundle/"), run=handle_job, max_pending=4)
    if not worker.submit(job):
        ...  # overloaded
    worker.stop()
"""

from __future__ import annotations

import contextlib
import gc
import queue
import threading
from collections.abc import Callable
from typing import Any, Protocol

import numpy as np

from tactile_grasp_predictor.cpu_affinity import isolate_current_thread, set_realtime_priority
from tactile_grasp_predictor.errors import BundleError, ConfigError
from tactile_grasp_predictor.session import InferenceJob, ModelStatus


class PredictorLike(Protocol):
    """What the worker needs of :class:`~tactile_grasp_predictor.predictor.Predictor`."""

    model_id: str
    threshold: float

    def predict(self, ta: np.ndarray, tb: np.ndarray) -> float:
        """p(success) of the pair."""
        ...


def load_predictor(bundle_path: str, backend: str = "auto", device: str = "cpu",
                   num_threads: int = 1) -> PredictorLike:
    """Load and warm up a bundle (imports torch / onnxruntime only here); :class:`BundleError` if unset."""
    from tactile_grasp_predictor.predictor import Predictor

    if not bundle_path:
        raise BundleError("bundle_path: not set")
    predictor = Predictor.from_bundle(bundle_path, backend=backend, device=device, num_threads=num_threads)
    predictor.warm_up()
    return predictor


def freeze_long_lived_objects() -> None:
    """Collect once, then exempt every object alive now (imports, model) from later collections.

    With torch and rclpy loaded a process holds ~0.5 M objects, and a full (generation-2)
    collection walks them all: 200–300 ms with every thread stopped, measured in a full test
    run, where two in a row starved a live test's gripper stream past its silence limit.
    After ``gc.freeze()`` full collections walk only objects made since, so the input and
    inference threads are not stopped for long. Called once, when the model has loaded.
    """
    gc.collect()
    gc.freeze()


def _cpu_text(cpus: frozenset[int]) -> str:
    return "CPU " + ",".join(str(c) for c in sorted(cpus))


class InferenceWorker:
    """A thread that loads the model once, then hands each queued job to ``run(job, predictor)``.

    ``on_loaded(predictor, error)`` is called on that thread when loading ended.
    ``run`` gets ``None`` as the predictor when loading failed (``error`` says why): the
    session then ABORTs ``model_unavailable``. An exception in ``run`` is counted and the
    worker goes on with the next job.
    """

    def __init__(
        self,
        load: Callable[[], PredictorLike],
        run: Callable[[InferenceJob, PredictorLike | None], None],
        max_pending: int,
        cpus: frozenset[int] = frozenset(),
        priority: int = 0,
        warn: Callable[[str], object] = print,
        on_loaded: Callable[[PredictorLike | None, str], None] | None = None,
    ) -> None:
        self._load = load
        self._run = run
        self._cpus = cpus
        self._priority = priority
        self._warn = warn
        self._on_loaded = on_loaded
        self.pinning = "off"  # "off", the CPU split, or why the kernel refused it
        self.scheduling = "normal"  # "normal", "SCHED_FIFO N", or why it was refused
        self.queue: queue.Queue[InferenceJob | None] = queue.Queue(maxsize=max_pending)
        self.predictor: PredictorLike | None = None
        self.error = ""
        self.failures = 0
        self.loaded = threading.Event()  # set once loading ended (success or not)
        self._thread = threading.Thread(target=self._main, name="tgp-inference", daemon=True)
        self._thread.start()

    @property
    def native_id(self) -> int | None:
        """The OS thread id of the inference thread (for tests of its scheduling)."""
        return self._thread.native_id

    def status(self) -> ModelStatus:
        """Report the model's state for diagnostics."""
        p: Any = self.predictor
        return ModelStatus(loading=not self.loaded.is_set(), available=p is not None,
                           model_id=str(getattr(p, "model_id", "") or ""),
                           backend=str(getattr(p, "backend", "") or ""), error=self.error,
                           pending=self.queue.qsize(), pinning=self.pinning, scheduling=self.scheduling)

    def _main(self) -> None:
        # Before loading: the model's thread pools inherit this thread's CPUs and policy.
        if self._cpus:
            self.pinning = self._place(self._pin, "unpinned")
        if self._priority:
            self.scheduling = self._place(self._raise_priority, "at normal priority")
        try:
            self.predictor = self._load()
        except Exception as exc:  # any failure: the node runs on and ABORTs model_unavailable
            self.error = f"{type(exc).__name__}: {exc}"
        if self._on_loaded is not None:
            self._on_loaded(self.predictor, self.error)
        freeze_long_lived_objects()
        self.loaded.set()
        while True:
            job = self.queue.get()
            if job is None:
                return
            try:
                self._run(job, self.predictor)
            except Exception as exc:  # keep serving later grasps whatever happened to this one
                self.failures += 1
                self.error = self.error or f"worker: {type(exc).__name__}: {exc}"

    def _place(self, apply: Callable[[], str], otherwise: str) -> str:
        """Run a placement step; on refusal warn and report it (slower tail, same decisions)."""
        try:
            return apply()
        except ConfigError as exc:
            self._warn(f"{exc}; inference runs {otherwise}")
            return f"refused: {exc}"

    def _pin(self) -> str:
        rest = isolate_current_thread(self._cpus)
        return f"inference on {_cpu_text(self._cpus)}, other threads on {_cpu_text(rest) if rest else 'all'}"

    def _raise_priority(self) -> str:
        set_realtime_priority(self._priority)
        return f"SCHED_FIFO {self._priority}"

    def submit(self, job: InferenceJob) -> bool:
        """Queue a job; ``False`` when the queue is full (the caller ABORTs it ``overloaded``)."""
        try:
            self.queue.put_nowait(job)
            return True
        except queue.Full:
            return False

    def stop(self, timeout_s: float = 5.0) -> None:
        """Ask the thread to end after the current job and wait for it."""
        while True:
            try:
                self.queue.put(None, timeout=0.1)
                break
            except queue.Full:
                with contextlib.suppress(queue.Empty):  # drop a pending job so the stop token fits
                    self.queue.get_nowait()
        self._thread.join(timeout_s)
