"""The fuzzing harness of the ``test_fuzz_*`` modules: a tally per input class, budgets, time limits.

Each fuzz module generates hostile inputs of one class with hypothesis and runs every case
through :meth:`Tally.run`, which sorts the outcome: ``accepted``, ``refused`` (the package's
own error, naming what is wrong: the expected answer to bad input), a **crash** (any other
exception), a **hang** (the case ran past :data:`HANG_S`) or a **LIFT on an error** (the
case's own check says a grasp was lifted although something was wrong). A module ends with
:meth:`Tally.finish`, which fails the test unless crashes, hangs and LIFTs on errors are all 0,
and prints the first few bad cases.

Budgets: ``make test`` runs each class with its small default (derandomized, seconds);
``make fuzz`` (:mod:`helpers.fuzz_run`) sets ``TGP_FUZZ_CASES`` (cases per class, random
seeds) and ``TGP_FUZZ_REPORT`` (a folder where each tally is written as JSON).
"""

from __future__ import annotations

import json
import math
import os
import signal
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st

#: Cases per class (``make fuzz``); unset: each module's small default.
CASES = int(os.environ.get("TGP_FUZZ_CASES", "0") or 0)
#: Where ``make fuzz`` collects the tallies.
REPORT_DIR = os.environ.get("TGP_FUZZ_REPORT", "")
#: A case running longer than this is a hang (seconds).
HANG_S = float(os.environ.get("TGP_FUZZ_HANG_S", "20"))

ACCEPTED, REFUSED, LIFT_ON_ERROR = "accepted", "refused", "lift_on_error"


#: The one draw most generators make: a seed for the numbers of a case (few hypothesis draws
#: per case keep generation cheap at 10,000 cases; hypothesis still chooses the structure).
SEEDS = st.integers(0, 2**32 - 1)
_ALPHABET = "abcXYZ019 _-./:;\\\"'{}[]\x00\t\n\u00e9\u20ac\U0001f600"


def pick(rng: np.random.Generator, options: Sequence[Any]) -> Any:
    """Return one of ``options``, uniformly."""
    return options[int(rng.integers(len(options)))]


def rng_text(rng: np.random.Generator, max_len: int = 12) -> str:
    """Return a short string of letters, digits, punctuation, control and non-ASCII characters."""
    return "".join(pick(rng, _ALPHABET) for _ in range(int(rng.integers(0, max_len + 1))))


def rng_number(rng: np.random.Generator) -> Any:
    """Return an awkward number: huge or tiny ints and floats, NaN, inf, -0.0, bools."""
    return pick(
        rng,
        [
            0,
            1,
            -1,
            2**31,
            -(2**63),
            2**70,
            0.5,
            -0.0,
            1e-300,
            1e308,
            math.inf,
            -math.inf,
            math.nan,
            True,
            False,
            float(rng.normal() * 10.0 ** int(rng.integers(-5, 40))),
            int(rng.integers(-1000, 1000)),
        ],
    )


def rng_json(rng: np.random.Generator, depth: int = 2) -> Any:
    """Return a random JSON-like value (finite numbers only where JSON allows), up to ``depth`` deep."""
    kind = int(rng.integers(7 if depth > 0 else 5))
    if kind == 0:
        return None
    if kind == 1:
        return bool(rng.integers(2))
    if kind == 2:
        v = rng_number(rng)
        return v if not isinstance(v, float) or math.isfinite(v) else 1e300
    if kind == 3:
        return int(rng.integers(-5, 600))
    if kind == 4:
        return rng_text(rng, 8)
    if kind == 5:
        return [rng_json(rng, depth - 1) for _ in range(int(rng.integers(0, 4)))]
    return {rng_text(rng, 6): rng_json(rng, depth - 1) for _ in range(int(rng.integers(0, 3)))}


class HangError(Exception):
    """A case ran past its time limit."""


def fuzz_settings(default_cases: int) -> settings:
    """Hypothesis settings for one class: the budget, no deadline, no shrinking, no database.

    Failures are not raised inside hypothesis (the tally counts them), so shrinking and the
    example database would only cost time. Derandomized unless ``make fuzz`` sets a budget.
    """
    return settings(
        max_examples=CASES or default_cases,
        deadline=None,
        derandomize=not CASES,
        database=None,
        phases=(Phase.explicit, Phase.generate),
        suppress_health_check=list(HealthCheck),
    )


@contextmanager
def _time_limit(seconds: float) -> Iterator[None]:
    """Raise :class:`HangError` in the main thread after ``seconds`` (POSIX interval timer)."""

    def expire(signum: int, frame: Any) -> None:
        raise HangError(f"ran past {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@dataclass
class Tally:
    """What one class of inputs did: counts per outcome, the first bad cases, the time taken."""

    name: str
    expected: tuple[type[BaseException], ...]  # the package's errors: a refusal, not a crash
    cases: int = 0
    accepted: int = 0
    refused: int = 0
    crashes: int = 0
    hangs: int = 0
    lift_on_error: int = 0
    seconds: float = 0.0
    slowest_s: float = 0.0
    kinds: dict[str, list[int]] = field(default_factory=dict)  # kind → [cases, accepted] (coverage)
    first: list[str] = field(default_factory=list)

    def run(self, case: Callable[[], str], describe: Callable[[], str], kind: str = "") -> None:
        """Run one case; ``case`` returns ``ACCEPTED`` or ``LIFT_ON_ERROR`` or raises."""
        self.cases += 1
        counts = self.kinds.setdefault(kind or "-", [0, 0])
        counts[0] += 1
        t0 = time.perf_counter()
        outcome, detail = REFUSED, ""
        try:
            with _time_limit(HANG_S):
                outcome = case()
        except HangError as exc:
            outcome, detail = "hang", str(exc)
        except self.expected:
            outcome = REFUSED
        except Exception as exc:  # a crash: anything but the package's own refusals
            outcome = "crash"
            detail = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__, limit=-4))
        dt = time.perf_counter() - t0
        self.seconds += dt
        self.slowest_s = max(self.slowest_s, dt)
        if outcome == ACCEPTED:
            self.accepted += 1
            counts[1] += 1
        elif outcome == REFUSED:
            self.refused += 1
        elif outcome == LIFT_ON_ERROR:
            self.lift_on_error += 1
        elif outcome == "hang":
            self.hangs += 1
        else:
            self.crashes += 1
        if outcome not in (ACCEPTED, REFUSED) and len(self.first) < 5:
            self.first.append(f"[{outcome}] {kind} {describe()[:600]}\n{detail[-1500:]}")

    @property
    def clean(self) -> bool:
        """No crash, no hang, no LIFT on an error."""
        return self.crashes == self.hangs == self.lift_on_error == 0

    def summary(self) -> str:
        """Return one line of counts."""
        rate = self.cases / self.seconds if self.seconds > 0 else math.inf
        kinds = ", ".join(f"{k} {n}/{a}" for k, (n, a) in sorted(self.kinds.items()))
        return (
            f"fuzz {self.name}: {self.cases} cases ({self.accepted} accepted, {self.refused} refused), "
            f"{self.crashes} crashes, {self.hangs} hangs, {self.lift_on_error} LIFT on error; "
            f"{self.seconds:.1f} s ({rate:.0f}/s, slowest {self.slowest_s * 1e3:.0f} ms)\n"
            f"  kinds (cases/accepted): {kinds}"
        )

    def finish(self, min_cases: int = 1) -> None:
        """Print the summary, write the JSON report (``make fuzz``), and fail unless clean."""
        print(self.summary())
        if REPORT_DIR:
            Path(REPORT_DIR).mkdir(parents=True, exist_ok=True)
            record = {k: v for k, v in asdict(self).items() if k != "expected"}
            record["expected"] = [e.__name__ for e in self.expected]
            (Path(REPORT_DIR) / f"{self.name}.json").write_text(json.dumps(record, indent=1))
        assert self.cases >= min_cases, f"only {self.cases} cases ran"
        assert self.clean, self.summary() + "\n\n" + "\n\n".join(self.first)
