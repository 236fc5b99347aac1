"""Helpers of the service tests: a fake forecaster, and an app factory for a server subprocess.

The fake forecaster's median is the issue day's discharge in the timeseries it is handed, so a test can
see that posted observations reach the model's input and that the cache follows the data version.
``app_from_env`` lets a test run the real server (uvicorn) on the fake forecaster:
``python -m uvicorn serve_helpers:app_from_env --factory`` with SERVE_DATA_DIR, SERVE_DB and
SCA2LSTM_TOKEN set.
"""

from __future__ import annotations

import os
from types import SimpleNamespace

import pandas as pd

from sca2lstm.errors import DataError


class FakeForecaster:
    """Median = issue-day discharge x (1 + lead/100); quantiles at fixed ratios; counts its calls."""

    def __init__(self):
        self.calls = 0

    def __call__(self, station, timeseries, issue_date, leads):
        self.calls += 1
        issue = pd.Timestamp(issue_date)
        q = float(timeseries.loc[issue, "discharge_vol"])
        if station == "10003" and issue.year == 1970:
            raise DataError(f"basin {station}: not enough days before {issue.date()} to forecast")
        rows = []
        for k in range(1, leads + 1):
            m = q * (1 + k / 100)
            rows.append({"issue_date": issue, "valid_date": issue + pd.Timedelta(days=k), "lead_days": k,
                         "median": m, "q05": 0.5 * m, "q25": 0.8 * m, "q75": 1.2 * m, "q95": 1.6 * m,
                         "setting": "hindcast"})
        weights = pd.Series({"precipitation": 0.5, "temperature": 0.2, "pet": 0.3})
        return SimpleNamespace(table=pd.DataFrame(rows), weights=weights)


def app_from_env():
    from sca2lstm.serve.app import create_app

    return create_app(os.environ["SERVE_DATA_DIR"], os.environ["SERVE_DB"], FakeForecaster(),
                      token=os.environ.get("SCA2LSTM_TOKEN") or None, model_sha256="fake")
