"""What is known on an issue date: the one masking rule of issue-time forecasts.

An issue-time forecast is made on the morning after day ``t0`` (the issue date) for days
``t0 + 1 ... t0 + leads``. Training (a share of the windows, :mod:`sca2lstm.training.trainer`) and
inference (:mod:`sca2lstm.evaluation.operational`) apply this same function to scaled window arrays,
so the model sees at prediction time exactly the kind of gaps it was trained on. Unknown inputs go
through the model's missing-value path (value 0, flag set), not a second network:

* observed discharge after ``t0`` is unknown: ``q_obs`` becomes NaN there, which switches the
  residual feedback off;
* discharge-derived inputs (``discharge_lag{L}``, ``ssi``) at day t use flows up to t - L, so they are
  known up to day ``t0 + L`` and missing after it;
* unless the weather of the lead days is known (a weather forecast, or the observed weather as a
  perfect one), every meteorological input and every precipitation-derived feature is missing
  after ``t0``;
* the calendar features (``doy_sin``, ``doy_cos``) stay;
* with ``data.forecast_flag``, the flag feature is 1 on the lead days whose weather is a forecast
  (emulated, archived or fetched) and 0 elsewhere, including lead days with the observed weather as a
  perfect forecast: a forecast errs more with every lead, and the flag lets the model learn how far to
  trust it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..config import KNOWN_DYNAMIC
from .features import BASIN_Q, BASIN_SSI, CALENDAR, FORECAST_FLAG, PRECIP_DERIVED


@dataclass(frozen=True)
class IssueTimeColumns:
    """Feature indices by what hides them after the issue date."""

    weather: np.ndarray    # meteorological inputs and precipitation-derived features
    discharge: np.ndarray  # features computed from observed discharge
    forecast_flag: int | None = None  # the weather_is_forecast feature, if the model has it


def issue_time_columns(names, kinds) -> IssueTimeColumns:
    """Group the features of :func:`sca2lstm.data.features.feature_spec` (names and scaling kinds).

    Raises ValueError for a feature this module does not know, so that a new feature cannot be
    silently treated as known after the issue date.
    """
    weather, discharge, flag = [], [], None
    for i, (n, k) in enumerate(zip(names, kinds)):
        if n == FORECAST_FLAG:
            flag = i
        elif k in (BASIN_Q, BASIN_SSI):
            discharge.append(i)
        elif n in KNOWN_DYNAMIC or n in PRECIP_DERIVED:
            weather.append(i)
        elif n not in CALENDAR:
            raise ValueError(f"feature {n!r}: unknown whether it is known after an issue date")
    return IssueTimeColumns(np.array(weather, dtype=np.int64), np.array(discharge, dtype=np.int64), flag)


def mask_issue_time(x: np.ndarray, x_missing: np.ndarray, q_obs: np.ndarray, t0, cols: IssueTimeColumns,
                    lead_days: int, weather_known=False, weather_forecast=False):
    """Hide from a window what is not known at its issue position ``t0``.

    Parameters
    ----------
    x : numpy.ndarray [B, L, N] (or [L, N])
        Scaled features, 0 where missing.
    x_missing : numpy.ndarray [B, L, N] bool (or [L, N])
    q_obs : numpy.ndarray [B, L] (or [L])
        Scaled observed discharge as the model reads it (residual feedback), NaN where unknown.
    t0 : int or numpy.ndarray [B]
        Position of the issue date in each window; ``t0 >= L - 1`` leaves a window unchanged.
    cols : IssueTimeColumns
    lead_days : int
        ``data.lead_days``: the discharge-derived inputs of day t use flows up to t - lead_days.
    weather_known : bool or numpy.ndarray [B] bool
        Whether the lead days keep their weather inputs (a weather forecast is given).
    weather_forecast : bool or numpy.ndarray [B] bool
        Whether that weather is a forecast rather than the observed weather (sets the forecast flag
        feature on the lead days, where the model has one; ignored where the weather is not known).

    Returns
    -------
    x, x_missing, q_obs
        New arrays; the arguments are not modified.
    """
    single = x.ndim == 2
    if single:
        x, x_missing, q_obs = x[None], x_missing[None], q_obs[None]
    B, L, _ = x.shape
    t0 = np.broadcast_to(np.asarray(t0, dtype=np.int64), (B,))[:, None]
    wk = np.broadcast_to(np.asarray(weather_known, dtype=bool), (B,))[:, None]
    step = np.arange(L)[None, :]
    after = step > t0                                   # [B, L]: days after the issue date
    q_late = step > t0 + lead_days                      # discharge inputs that read flows after t0
    hide = np.zeros(x.shape, dtype=bool)
    hide[:, :, cols.discharge] = q_late[:, :, None]
    hide[:, :, cols.weather] = (after & ~wk)[:, :, None]
    x = np.where(hide, np.zeros((), dtype=x.dtype), x)
    x_missing = x_missing | hide
    if cols.forecast_flag is not None:
        wf = np.broadcast_to(np.asarray(weather_forecast, dtype=bool), (B,))[:, None]
        x[:, :, cols.forecast_flag] = (after & wk & wf).astype(x.dtype)
        x_missing[:, :, cols.forecast_flag] = False
    q_obs = np.where(after, np.array(np.nan, dtype=q_obs.dtype), q_obs)
    if single:
        return x[0], x_missing[0], q_obs[0]
    return x, x_missing, q_obs
