"""Archives of past weather forecasts made from a basin's observed rain, for tests of the precipitation mapping."""

from __future__ import annotations

import numpy as np
import pandas as pd

from sca2lstm.evaluation.context import BasinContext


def _observed_rain(bundle, data_dir, basin: str) -> pd.Series:
    """The basin's observed daily precipitation (mm/d) by date, as the model's record holds it."""
    ctx = BasinContext.resolve(bundle, data_dir, basin)
    p = ctx.record.x[:, list(ctx.cfg.data.dynamic_inputs).index("precipitation")].astype(np.float64)
    return pd.Series(p, index=pd.DatetimeIndex(ctx.record.dates))


def drizzly_archive(bundle, data_dir, basin: str, issue_dates, leads: int = 7, seed: int = 3) -> pd.DataFrame:
    """A long table (issue_date, lead_days, valid_date, member, precipitation, temperature) that forecasts 1-2 mm
    on the days the basin stayed dry and damps its storms (0.6 v + 0.6 mm): drizzly with damped storms, the case
    ``--precip_mapping auto`` maps. Valid days without an observed value are left out."""
    obs = _observed_rain(bundle, data_dir, basin)
    rng = np.random.default_rng(seed)
    rows = []
    for t0 in pd.DatetimeIndex(issue_dates):
        for k in range(1, leads + 1):
            v = obs.get(t0 + pd.Timedelta(days=k), np.nan)
            rain = float(rng.uniform(1.0, 2.0)) if v == 0 else 0.6 * v + 0.6
            rows.append({"issue_date": t0.date(), "lead_days": k, "valid_date": (t0 + pd.Timedelta(days=k)).date(),
                         "member": 0, "precipitation": rain, "temperature": 12.0})
    return pd.DataFrame(rows).dropna()


def erring_runs(bundle, data_dir, basin: str, issue_dates, leads: int = 7, seed: int = 5,
                beyond: float = 2.0) -> pd.DataFrame:
    """A long table (issue_date, lead_days, valid_date, member, precipitation, temperature) of runs that each err on
    their own: the basin's observed rain of the valid day times a mean-one log-normal error of sd 0.3 + 0.6 k / leads;
    ``beyond`` mm on the valid days after its record (a run issued on its last days forecasts the days after them),
    the case the lagged combination (``--weather_lags auto``) gains on."""
    obs = _observed_rain(bundle, data_dir, basin)
    rng = np.random.default_rng(seed)
    rows = []
    for t0 in pd.DatetimeIndex(issue_dates):
        for k in range(1, leads + 1):
            v = t0 + pd.Timedelta(days=k)
            s = 0.3 + 0.6 * k / leads
            o = obs.get(v, beyond)
            rain = (beyond if not np.isfinite(o) else o) * float(np.exp(s * rng.standard_normal() - s * s / 2))
            rows.append({"issue_date": t0.date(), "lead_days": k, "valid_date": v.date(), "member": 0,
                         "precipitation": round(rain, 3), "temperature": 6.0})
    return pd.DataFrame(rows)
