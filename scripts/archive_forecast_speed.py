#!/usr/bin/env python
"""Speed of ``sca2lstm serve``'s forecasts of a station with its own weather archive, beside one without.

A station with ``DATA_DIR/weather_archive/<id>.csv`` has each posted weather forecast's rain ranked among that
archive's earlier forecasts (``--precip_mapping auto``, docs/weather.md). This script times what that costs a
forecast: two copies of the same data, one with a ten-year archive of 20-member forecasts for one station, one
without; in each, weather forecasts are posted for several issue dates after the archive's end, and each issue
date's forecast is asked for once (uncached: the model runs in a worker process). It prints the median time of
those forecasts with and without the archive, and their ratio.

Usage:
    python scripts/archive_forecast_speed.py                 # tiny synthetic basins + a tiny model trained here
    python scripts/archive_forecast_speed.py --forecasts 15  # more issue dates per side
"""

from __future__ import annotations

import argparse
import logging
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "scripts"))

from load_test import tiny_model  # noqa: E402  (scripts/load_test.py: the same tiny model)

STATION = "32006"
ARCHIVE_ISSUES = ("1966-01-01", "1975-12-31")  # ten years, before the forecasts' issue dates
MEMBERS, LEADS = 20, 7
TOKEN = "speed-token"


def _archive(rain: pd.Series, rng) -> pd.DataFrame:
    """Ten years of 20-member forecasts, drizzly with damped storms (so ``auto`` maps them)."""
    issue = pd.date_range(*ARCHIVE_ISSUES, freq="D")
    i, k, m = np.meshgrid(np.arange(len(issue)), np.arange(1, LEADS + 1), np.arange(MEMBERS), indexing="ij")
    t0 = issue.values[i.ravel()]
    valid = t0 + k.ravel().astype("timedelta64[D]")
    obs = rain.reindex(pd.DatetimeIndex(valid)).to_numpy(np.float64)
    p = np.where(obs == 0, rng.uniform(1.0, 2.0, obs.size), 0.6 * obs + 0.6) * rng.uniform(0.8, 1.2, obs.size)
    return pd.DataFrame({"issue_date": pd.DatetimeIndex(t0).strftime("%Y-%m-%d"), "lead_days": k.ravel(),
                         "valid_date": pd.DatetimeIndex(valid).strftime("%Y-%m-%d"), "member": m.ravel(),
                         "precipitation": np.round(p, 2), "temperature": 9.0}).dropna()


def _weather(t0: pd.Timestamp, rng, members: int) -> bytes:
    """A weather forecast issued on ``t0`` for its lead days (``members`` runs), as a posted CSV table."""
    rows = [{"issue_date": t0.date(), "lead_days": k, "valid_date": (t0 + pd.Timedelta(days=k)).date(), "member": m,
             "precipitation": round(float(rng.gamma(0.6, 3.0)), 2), "temperature": 9.0}
            for m in range(members) for k in range(1, LEADS + 1)]
    return pd.DataFrame(rows).to_csv(index=False).encode()


def _times(model: Path, data: Path, issues, workers: int, seed: int, members: int) -> tuple[list[float], list[str]]:
    """Seconds of each uncached forecast of ``issues`` (a weather forecast posted for each first), and the
    first answer's notes."""
    from fastapi.testclient import TestClient

    from sca2lstm.data.reader import list_basins
    from sca2lstm.evaluation.live import LiveForecaster, station_models
    from sca2lstm.serve.app import create_app

    rng = np.random.default_rng(seed)
    auth = {"Authorization": f"Bearer {TOKEN}"}
    default, own = station_models(model, list_basins(data))
    out, notes = [], []
    with tempfile.TemporaryDirectory() as tmp, LiveForecaster(default, own, data, workers=workers) as live, \
            TestClient(create_app(data, Path(tmp) / "db.sqlite", live, token=TOKEN)) as c:
        live.warm_up()
        # the station's setup (its whole record, the archive read) is worked out once: not timed
        assert c.get(f"/stations/{STATION}/forecast", params={"issue_date": "1977-05-01"}).status_code == 200
        for t0 in issues:
            r = c.post(f"/stations/{STATION}/weather", params={"issue_date": str(t0.date())}, content=_weather(t0, rng, members),
                       headers={**auth, "Content-Type": "text/csv"})
            assert r.status_code == 200, r.text
            start = time.perf_counter()
            r = c.get(f"/stations/{STATION}/forecast", params={"issue_date": str(t0.date())})
            out.append(time.perf_counter() - start)
            body = r.json()
            assert r.status_code == 200 and body["cached"] is False and body["weather"] is not None, r.text
            notes = notes or body["notes"]
    return out, notes


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--forecasts", type=int, default=9, help="issue dates timed per side (default 9)")
    ap.add_argument("--workers", type=int, default=1, help="model worker processes (default 1)")
    ap.add_argument("--members", type=int, default=1, help="runs of each posted weather forecast (default 1)")
    ap.add_argument("--seed", type=int, default=5)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    from sca2lstm.data import reader

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        model, plain = tiny_model(root, start="1964-10-01")  # ten years of archive before 1976
        with_archive = root / "with_archive"
        shutil.copytree(plain, with_archive)
        (with_archive / "weather_archive").mkdir()
        rain = reader.read_timeseries(plain, STATION)["precipitation"]
        path = with_archive / "weather_archive" / f"{STATION}.csv"
        _archive(rain, np.random.default_rng(args.seed)).to_csv(path, index=False)
        issues = pd.date_range("1977-06-01", periods=args.forecasts, freq="3D")
        print(f"archive: {path.stat().st_size / 1e6:.1f} MB ({MEMBERS} members, {LEADS} leads, "
              f"{ARCHIVE_ISSUES[0]}..{ARCHIVE_ISSUES[1]}); {len(issues)} posted forecasts of {args.members} member(s) "
              f"per side, {args.workers} worker(s)")
        without, _ = _times(model, plain, issues, args.workers, args.seed, args.members)
        with_, notes = _times(model, with_archive, issues, args.workers, args.seed, args.members)
    mapped = any("auto-mapped per lead" in n for n in notes)
    a, b = statistics.median(with_), statistics.median(without)
    print(f"median uncached forecast: {a:.3f} s with the archive, {b:.3f} s without; ratio {a / b:.2f}"
          f" (rain mapped: {'yes' if mapped else 'no'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
