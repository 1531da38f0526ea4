"""``make fuzz``: every fuzz class with a large budget, each in its own process, and a report.

Runs the ``test_fuzz_*`` tests with ``TGP_FUZZ_CASES`` cases per class (random seeds), two
processes at a time by default, and measures each process's peak resident memory
(``wait4``). Prints, per class: cases, accepted/refused, crashes, hangs, LIFTs on an error,
peak RSS, wall and CPU seconds (and the load average: other jobs inflate the wall time);
writes ``fuzz.json`` and ``fuzz.png`` (cases per second and peak RSS per class) and each
class's pytest log into ``--out``. Exit status 0 only if every class ran its cases with no
crash, no hang, no LIFT on an error and a peak RSS under ``--max-rss-mb``.

Usage (from the repository root)::

    PYTHONPATH=test .venv/bin/python -m helpers.fuzz_run --cases 10000 --jobs 2 --out fuzz-report
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

#: Class name → the pytest node that fuzzes it.
CLASSES = {  # the slowest first: two at a time, the short ones fill in at the end
    "bundle": "test/test_fuzz_bundles.py",
    "bag": "test/test_fuzz_bags.py",
    "shard": "test/test_fuzz_shards.py",
    "session": "test/test_fuzz_session.py",
    "image": "test/test_fuzz_images.py::test_fuzz_raw_images_both_paths_agree_and_refuse_by_name",
    "compressed": "test/test_fuzz_images.py::test_fuzz_compressed_images_are_bounded_and_refused_by_name",
}
ROOT = Path(__file__).resolve().parents[2]


def _start(name: str, cases: int, out: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "TGP_FUZZ_CASES": str(cases), "TGP_FUZZ_REPORT": str(out / "tallies"),
           "OMP_NUM_THREADS": "1", "OPENCV_LOG_LEVEL": "ERROR"}
    log = (out / f"{name}.log").open("wb")
    cmd = [sys.executable, "-m", "pytest", CLASSES[name], "-q", "-p", "no:randomly", "-p", "no:cacheprovider",
           "-o", "addopts=", "--timeout=3600"]
    return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)


def run(names: list[str], cases: int, jobs: int, out: Path) -> dict[str, dict[str, Any]]:
    """Run the classes ``jobs`` at a time; return each one's tally, exit status, peak RSS and seconds."""
    from tqdm import tqdm

    out.mkdir(parents=True, exist_ok=True)
    (out / "tallies").mkdir(exist_ok=True)
    todo = list(names)
    running: dict[int, tuple[str, float]] = {}
    results: dict[str, dict[str, Any]] = {}
    bar = tqdm(total=len(names), desc=f"fuzz ({cases} cases per class)", unit="class")
    while todo or running:
        while todo and len(running) < jobs:
            name = todo.pop(0)
            running[_start(name, cases, out).pid] = (name, time.perf_counter())
        pid, status, usage = os.wait4(-1, 0)
        if pid not in running:
            continue
        name, t0 = running.pop(pid)
        tally_file = out / "tallies" / f"{name}.json"
        tally = json.loads(tally_file.read_text()) if tally_file.exists() else {}
        results[name] = {**tally, "exit_status": os.waitstatus_to_exitcode(status),
                         "peak_rss_mb": usage.ru_maxrss / 1024.0, "wall_s": time.perf_counter() - t0,
                         "cpu_s": usage.ru_utime + usage.ru_stime, "load_1min": os.getloadavg()[0]}
        bar.set_postfix_str(f"{name}: {tally.get('cases', 0)} cases, {tally.get('crashes', '?')} crashes")
        bar.update()
    bar.close()
    return results


def _plot(results: dict[str, dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(results)
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.6))
    rates = [r.get("cases", 0) / max(r.get("seconds", 0.0), 1e-9) for r in results.values()]
    a.bar(names, rates, color="tab:blue")
    a.set_yscale("log")
    a.set_ylabel("cases per second (log)")
    a.set_title("throughput per class")
    b.bar(names, [r["peak_rss_mb"] for r in results.values()], color="tab:orange")
    b.axhline(2048, color="red", linestyle="--", label="2 GB limit")
    b.set_ylabel("peak RSS (MB)")
    b.set_title("peak memory per class process")
    b.legend()
    for ax in (a, b):
        ax.tick_params(axis="x", rotation=30)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    """Run ``make fuzz``; return 0 if every class is clean."""
    parser = argparse.ArgumentParser(prog="python -m helpers.fuzz_run", description=__doc__.split("\n")[0])
    parser.add_argument("--cases", type=int, default=10_000, help="cases per class (default 10000)")
    parser.add_argument("--jobs", type=int, default=2, help="classes run at once (default 2: the CPUs here)")
    parser.add_argument("--out", type=Path, default=ROOT / "fuzz-report", help="report folder")
    parser.add_argument("--only", default="", help=f"comma-separated classes (default: {', '.join(CLASSES)})")
    parser.add_argument("--max-rss-mb", type=float, default=2048.0, help="fail above this peak RSS per class")
    args = parser.parse_args(argv)
    names = [n for n in args.only.split(",") if n] or list(CLASSES)
    unknown = sorted(set(names) - set(CLASSES))
    if unknown:
        parser.error(f"unknown classes {unknown}; known: {', '.join(CLASSES)}")
    t0 = time.perf_counter()
    results = run(names, args.cases, args.jobs, args.out)
    wall = time.perf_counter() - t0
    header = f"{'class':<11}{'cases':>8}{'accepted':>10}{'refused':>9}{'crashes':>9}{'hangs':>7}" \
             f"{'LIFT-on-err':>13}{'peak RSS':>11}{'wall s':>8}{'CPU s':>7}"
    print(header)
    ok = True
    for name, r in results.items():
        clean = (r.get("cases", 0) >= args.cases and r["exit_status"] == 0 and r.get("crashes") == 0
                 and r.get("hangs") == 0 and r.get("lift_on_error") == 0
                 and r["peak_rss_mb"] < args.max_rss_mb)
        ok &= clean
        print(f"{name:<11}{r.get('cases', 0):>8}{r.get('accepted', 0):>10}{r.get('refused', 0):>9}"
              f"{r.get('crashes', '?'):>9}{r.get('hangs', '?'):>7}{r.get('lift_on_error', '?'):>13}"
              f"{r['peak_rss_mb']:>8.0f} MB{r['wall_s']:>8.0f}{r['cpu_s']:>7.0f}"
              + ("" if clean else "   <-- FAIL"))
        for bad in r.get("first", [])[:2]:
            print("    " + bad.replace("\n", "\n    ")[:1500])
    load = sum(r["load_1min"] for r in results.values()) / max(1, len(results))
    print(f"total {wall:.0f} s ({wall / 60:.1f} min), {args.jobs} at a time, "
          f"{sum(r['cpu_s'] for r in results.values()):.0f} CPU s; mean 1-min load average {load:.1f} "
          f"on {os.cpu_count()} CPUs (others' jobs inflate the wall time); report: {args.out}")
    summary = {"cases_per_class": args.cases, "jobs": args.jobs, "wall_s": wall, "mean_load_1min": load,
               "cpus": os.cpu_count(), "ok": ok, "classes": results}
    (args.out / "fuzz.json").write_text(json.dumps(summary, indent=1))
    _plot(results, args.out / "fuzz.png")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
