"""``make bench``: run every ``benchmarks/bench_*.py`` in turn and print its figures.

Each benchmark module has ``main() -> None`` that prints its figures and the ratios to
the baselines it measures in the same run. ``python -m benchmarks NAME...`` runs only
the named ones (e.g. ``reader``).
"""

from __future__ import annotations

import importlib
import sys
import time
from pathlib import Path


def main(argv: list[str]) -> int:
    names = sorted(p.stem.removeprefix("bench_") for p in Path(__file__).parent.glob("bench_*.py"))
    wanted = argv or names
    unknown = [n for n in wanted if n not in names]
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; known: {', '.join(names)}")
        return 2
    failed = []
    for name in wanted:
        print(f"\n=== {name} ===", flush=True)
        start = time.perf_counter()
        try:
            importlib.import_module(f"benchmarks.bench_{name}").main()
        except Exception as exc:  # report and go on with the other benchmarks
            print(f"benchmark {name} FAILED: {type(exc).__name__}: {exc}")
            failed.append(name)
        print(f"--- {name}: {time.perf_counter() - start:.1f} s", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
