"""Cost of hiding discharge in a training batch (``training.discharge_dropout``), with and without
taking the hidden days out of the SSI state as well.

Run from the repository root: ``PYTHONPATH=. OMP_NUM_THREADS=1 python bench/bench_hide_discharge.py``.
One batch of the default shape (32 windows x 270 days, 13 features, 10 % of days hidden); the best
of ``--repeat`` timings of ``--number`` calls each.
"""

from __future__ import annotations

import argparse
import timeit

import numpy as np

from sca2lstm.training.augment import hide_discharge


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--seq_len", type=int, default=270)
    ap.add_argument("--number", type=int, default=200)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    b, t, n = args.batch, args.seq_len, 13
    rng = np.random.default_rng(0)
    x = rng.normal(size=(b, t, n)).astype(np.float32)
    miss = np.zeros((b, t, n), dtype=bool)
    q = rng.normal(size=(b, t)).astype(np.float32)
    scales = np.tile([5.0, 3.0, 1.0, 0.5], (b, 1))
    runs = {
        "lagged discharge + residual only": lambda: hide_discharge(x, miss, q, 0.1, 1, 11, np.random.default_rng(1)),
        "also the SSI state": lambda: hide_discharge(x, miss, q, 0.1, 1, 11, np.random.default_rng(1),
                                                     ssi_column=12, ssi_window=30, scales=scales),
    }
    print(f"hide_discharge on one batch of {b} x {t} days, {n} features (best of {args.repeat} x {args.number})")
    for name, f in runs.items():
        sec = min(timeit.repeat(f, number=args.number, repeat=args.repeat)) / args.number
        print(f"  {name:<34} {sec * 1e3:7.3f} ms per batch")


if __name__ == "__main__":
    main()
