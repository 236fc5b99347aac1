"""Benchmark loading the CAMELS-GB sample: cold (empty feature cache) vs cached, serial vs parallel.

Run from the repository root: ``PYTHONPATH=. python bench/bench_data_load.py [--reps 3]``.
Each repetition uses a fresh, empty temporary cache folder (never the data folder, never
~/.cache): the first ``load_basins`` call reads and featurises every CSV and writes the cache, the
second one is served from it. Modes run interleaved, so a busy shared machine affects both alike.
Medians over ``--reps`` repetitions.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from sca2lstm.config import load_config
from sca2lstm.data import camels_gb
from sca2lstm.data.dataset import load_basins

REPO = Path(__file__).resolve().parents[1]


def one_rep(data_dir: Path, basins: list, cfg, parallel: bool) -> tuple[float, float]:
    with tempfile.TemporaryDirectory(prefix="sca2lstm-bench-cache-") as cache:
        c = cfg.replace(data={"cache_dir": cache})
        t0 = time.perf_counter()
        cold = load_basins(data_dir, basins, c, parallel=parallel)
        t1 = time.perf_counter()
        warm = load_basins(data_dir, basins, c, parallel=parallel)
        t2 = time.perf_counter()
        assert len(list((Path(cache) / "features").glob("*.npz"))) == len(basins)
        for a, b in zip(cold, warm):  # the cache returns exactly what was computed
            assert np.array_equal(a.x, b.x, equal_nan=True) and np.array_equal(a.y, b.y, equal_nan=True)
    return t1 - t0, t2 - t1


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data_dir", default=str(REPO.parent / "shared" / "data" / "camels_gb"),
                   help="CAMELS-GB folder (default ../shared/data/camels_gb from the repository root)")
    p.add_argument("--reps", type=int, default=3, help="repetitions per mode (default 3)")
    args = p.parse_args(argv)
    data_dir = Path(args.data_dir)
    cfg = load_config()  # the project defaults (the default feature set)
    basins = camels_gb.list_basins(data_dir)
    print(f"{len(basins)} basins ({', '.join(basins)}), {os.cpu_count()} CPUs, "
          f"{args.reps} reps, data {data_dir}")
    times = {False: ([], []), True: ([], [])}
    for _ in range(args.reps):
        for parallel in (False, True):
            cold, warm = one_rep(data_dir, basins, cfg, parallel)
            times[parallel][0].append(cold)
            times[parallel][1].append(warm)
    med = {k: (statistics.median(v[0]), statistics.median(v[1])) for k, v in times.items()}
    print(f"{'mode':<10}{'cold [s]':>10}{'cached [s]':>12}{'cold/cached':>13}")
    for parallel, name in ((False, "serial"), (True, "parallel")):
        cold, warm = med[parallel]
        print(f"{name:<10}{cold:>10.3f}{warm:>12.3f}{cold / warm:>12.1f}x")
    print(f"parallel speed-up: cold {med[False][0] / med[True][0]:.2f}x, cached {med[False][1] / med[True][1]:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
