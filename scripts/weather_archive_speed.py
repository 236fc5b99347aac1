#!/usr/bin/env python
"""Speed of ``GET /stations/{id}/weather_archive.csv``: a station's stored weather forecasts written as its archive.

A service whose daily issue fetches an ensemble each morning stores a year of such forecasts in its database. This
script stores that many (by default 365 daily forecasts of 51 members and 9 valid days, random values) in a fresh
database with :class:`sca2lstm.serve.store.Store` and times what the route does with them: read them
(``Store.weather_tables``), make the archive (:func:`sca2lstm.serve.export.weather_archive`) and write it as CSV.
It prints the archive's rows and size and the best of ``--repeat`` times.

Usage:
    python scripts/weather_archive_speed.py                      # a year of 51-member forecasts
    python scripts/weather_archive_speed.py --days 730 --members 1
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from sca2lstm.serve.export import weather_archive
from sca2lstm.serve.store import Store


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--days", type=int, default=365, help="stored forecasts, one per day (default 365)")
    ap.add_argument("--members", type=int, default=51, help="members of each (default 51)")
    ap.add_argument("--valid_days", type=int, default=9, help="valid days of each (default 9)")
    ap.add_argument("--repeat", type=int, default=3, help="times timed; the best is printed (default 3)")
    args = ap.parse_args(argv)
    rng = np.random.default_rng(0)
    n = args.members * args.valid_days
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(Path(tmp) / "db.sqlite")
        for day in pd.date_range("2025-01-01", periods=args.days):
            valid = pd.date_range(day, periods=args.valid_days)
            table = pd.DataFrame({"issue_date": day, "lead_days": np.tile(np.arange(args.valid_days), args.members),
                                  "valid_date": np.tile(valid, args.members),
                                  "member": np.repeat(np.arange(args.members), args.valid_days),
                                  "precipitation": rng.gamma(0.5, 4.0, n), "temperature": rng.normal(10.0, 5.0, n)})
            store.add_weather("X", str(day.date()), str(day.date()), str(valid[-1].date()), args.members, "fetch",
                              "speed", table.to_csv(index=False, date_format="%Y-%m-%d"), "{}")
        times = []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            text = weather_archive(store.weather_tables("X")).to_csv(index=False)
            times.append(time.perf_counter() - t0)
        store.close()
    print(f"{args.days} stored forecasts of {args.members} member(s): archive of {text.count(chr(10)) - 1} rows, "
          f"{len(text) / 1e6:.1f} MB, in {min(times):.2f} s (best of {args.repeat}: "
          f"{', '.join(f'{t:.2f}' for t in times)})")


if __name__ == "__main__":
    main()
