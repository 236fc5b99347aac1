#!/usr/bin/env python
"""SCA2LSTM benchmark harness: accuracy, patchy records, leave-one-out, more basins, speed, prediction, DDP and memory.

Run from the repository root (one command; ``--quick`` is a ~3-minute smoke run of the harness)::

    python bench/run_benchmarks.py [--data_dir ../shared/data/camels_gb] [--out bench_output] [--quick]
                                   [--only accuracy,gaps,loo,scaling,speed,predict,ddp,memory]

Every section prints its tables and writes them as CSV into ``--out``; ``results.json`` there holds
all tables, the summaries and the environment. Every number is measured by this script, except the
NeuralHydrology rows: an external run of NeuralHydrology 1.13 under the same protocol, labelled as such.
Training runs each happen in a fresh spawned process, so their peak RSS (VmHWM) is per run.
This file is the driver; the sections live in bench/sections/ (one module each), what they share in
bench/harness.py, and the scoring they add to the package's (floods, after-gap days) in
sca2lstm/evaluation/metrics.py.
Everything runs on the CPU. Timings on a shared machine are noisy: compare numbers measured side by
side in one run (the speed section interleaves its variants for that reason).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import subprocess
import sys
import time
import traceback
from pathlib import Path

if str(Path(__file__).resolve().parent) not in sys.path:  # harness and sections sit beside this file
    sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from harness import DEFAULT_DATA_DIR, REPO, SECTIONS, Settings, set_threads  # noqa: E402
from sections.accuracy import section_accuracy  # noqa: E402
from sections.ddp import section_ddp  # noqa: E402
from sections.gaps import section_gaps  # noqa: E402
from sections.loo import section_loo  # noqa: E402
from sections.memory import section_memory  # noqa: E402
from sections.predict import section_predict  # noqa: E402
from sections.scaling import section_scaling  # noqa: E402
from sections.speed import section_speed  # noqa: E402


RUNNERS = {"accuracy": section_accuracy, "gaps": section_gaps, "loo": section_loo, "scaling": section_scaling,
           "speed": section_speed, "predict": section_predict, "ddp": section_ddp, "memory": section_memory}


def environment(S: Settings) -> dict:
    import torch

    def git(*args):
        try:
            return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, timeout=10).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""

    return {"time": time.strftime("%Y-%m-%d %H:%M:%S"), "quick": S.quick, "data_dir": str(S.data_dir),
            "python": platform.python_version(), "torch": torch.__version__, "platform": platform.platform(),
            "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "git_commit": git("rev-parse", "HEAD"), "git_dirty": bool(git("status", "--porcelain"))}


def _clean(v):
    """NaN and infinities as null, so results.json is strict JSON."""
    if isinstance(v, dict):
        return {str(k): _clean(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_clean(x) for x in v]
    if isinstance(v, (float, np.floating)) and not math.isfinite(v):
        return None
    if v is pd.NA:
        return None
    return v


def _jsonable(v):
    if isinstance(v, (np.floating, np.integer)):
        return v.item()
    if isinstance(v, np.ndarray):
        return v.tolist()
    if isinstance(v, Path):
        return str(v)
    raise TypeError(type(v).__name__)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data_dir", default=str(DEFAULT_DATA_DIR), help=f"CAMELS-GB folder (default {DEFAULT_DATA_DIR})")
    p.add_argument("--out", default="bench_output", help="output folder (default ./bench_output)")
    p.add_argument("--quick", action="store_true", help="shrink everything: a few-minute smoke run of the harness")
    p.add_argument("--only", default=",".join(SECTIONS), help=f"comma-separated sections (default all: {','.join(SECTIONS)})")
    p.add_argument("--verbose", action="store_true", help="stream the training logs to the console too")
    p.add_argument("--threads", type=int, default=0,
                   help="torch threads in every process except the DDP runs (default: torch's default); "
                        "1 is steadier on a shared machine")
    p.add_argument("--extra_seeds", default="",
                   help="accuracy section: also pretrain both models with these seeds (comma-separated, e.g. "
                        "1,2) and print the seed-to-seed spread; each seed adds ~4 minutes")
    a = p.parse_args(argv)
    try:
        a.extra_seeds = [int(x) for x in a.extra_seeds.split(",") if x.strip()]
    except ValueError:
        p.error(f"--extra_seeds {a.extra_seeds!r}: expected comma-separated integers, e.g. 1,2")
    a.only = [s.strip() for s in a.only.split(",") if s.strip()]
    bad = [s for s in a.only if s not in SECTIONS]
    if bad:
        p.error(f"--only: unknown section(s) {bad}; choose from {', '.join(SECTIONS)}")
    if not (Path(a.data_dir) / "timeseries").is_dir():
        p.error(f"--data_dir {a.data_dir} has no timeseries/ folder")
    return a


def main(argv=None) -> int:
    a = parse_args(argv)
    S = Settings.make(a.data_dir, a.out, a.quick, a.verbose, a.threads, a.extra_seeds)
    S.out.mkdir(parents=True, exist_ok=True)
    set_threads(S.threads)
    from sca2lstm.logs import logging_for_run

    with logging_for_run(quiet=not S.verbose):  # its handlers off again when it ends (a test calls main in-process)
        return _run(a, S)


def _run(a, S) -> int:
    results = {"environment": environment(S), "sections": {}}
    print(f"sca2lstm benchmarks{' (QUICK smoke run: numbers are not meaningful)' if S.quick else ''}: "
          f"{', '.join(a.only)}; output in {S.out}")
    failed = []
    for name in [s for s in SECTIONS if s in a.only]:
        print(f"\n=== {name} ===", flush=True)
        t0 = time.perf_counter()
        try:
            res = RUNNERS[name](S)
        except Exception as e:  # keep going: one broken section should not hide the others
            traceback.print_exc()
            failed.append(name)
            results["sections"][name] = {"error": f"{type(e).__name__}: {e}"}
            continue
        for tname, df in res["tables"].items():
            df.to_csv(S.out / f"{tname}.csv", index=False)
        results["sections"][name] = {"seconds": time.perf_counter() - t0, "summary": res["summary"],
                                     "tables": {k: v.to_dict(orient="records") for k, v in res["tables"].items()}}
        print(f"({name}: {time.perf_counter() - t0:.0f} s)")
        (S.out / "results.json").write_text(json.dumps(_clean(results), indent=2, default=_jsonable), encoding="utf-8")
    (S.out / "results.json").write_text(json.dumps(_clean(results), indent=2, default=_jsonable), encoding="utf-8")
    print(f"\nWrote {S.out / 'results.json'} and one CSV per table."
          + (f" FAILED sections: {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
