"""An archive's forecast of a day combined with the forecasts of the same day issued on the days before.

A forecaster with an archive of daily weather forecasts holds, on issue date ``t``, not one forecast of the
valid day ``t + k`` but several: the one issued on ``t`` (lead ``k``) and those issued on ``t - 1``, ``t - 2``
... (leads ``k + 1``, ``k + 2`` ...). Where consecutive runs err independently, their consensus is closer to the
rain that falls than any one run (a lagged ensemble); where they share their error, the older runs add little.
How much they add is learned per station and lead from the archive itself, by least squares of the observed rain
on the runs' forecasts, on the valid days already observed:

* per lead ``k``, the combination ``c = w_0 F(t, k) + w_1 F(t - 1, k + 1) + ... + w_J F(t - J, k + J) + b``
  (``J`` = :data:`MAX_LAG`, or fewer where the archive's leads end), fitted on every valid day before the first
  day of the issue date's month (weights change once a month, and only with what was verified by then: causal,
  and a forecast of a date equals that date's row of a reforecast);
* the least-squares weights shrunk towards the forecast of the issue date alone (``w_0 = 1``, the rest 0) by
  ``n / (n + PRIOR_PAIRS)``, ``n`` the verified days; below :data:`MIN_PAIRS` verified days the forecast stays as
  given;
* the combination then mapped by rank onto the amounts of the issue date's own forecasts of those verified days
  (:func:`~sca2lstm.weather.mapping.quantile_map`): a least-squares consensus is drizzle with damped storms, which
  a model trained on forecasts with a forecast's own climate misreads; the rank keeps the consensus' order of
  the days and the forecast keeps its own climate (its share of dry days, the size of its storms).

Only precipitation is combined; an ensemble archive (several runs on most of its issue dates) is left as given: its
members' disagreement already says how uncertain the rain is. In an archive of one run a day, the few dates that hold
several runs (a run fetched twice) are left as given and read as no earlier run of another date (as a gap), since
which of them is the day's run is not known; the other dates are combined. Pure arrays and tables: no model, no
files.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..notes import Note
from .mapping import quantile_map

#: The most earlier issue dates whose forecasts of a day join the issue date's own.
MAX_LAG = 3
#: Verified days (valid days with observed rain and every run's forecast) a lead needs before it is combined.
MIN_PAIRS = 365
#: The weights' shrinkage towards the issue date's own forecast: ``n / (n + PRIOR_PAIRS)``.
PRIOR_PAIRS = 365
#: The ways of reading an archive's earlier runs (``forecast --weather_lags``).
WEATHER_LAGS = ("auto", "none")


def _grid(table: pd.DataFrame) -> tuple[pd.Timestamp, int, np.ndarray, np.ndarray]:
    """The table's day grid: first issue date, number of days to its last valid date, issue and valid positions."""
    first = table["issue_date"].min()
    issue = (table["issue_date"] - first).dt.days.to_numpy(np.int64)
    valid = (table["valid_date"] - first).dt.days.to_numpy(np.int64)
    return first, int(valid.max()) + 1, issue, valid


def _design(F: np.ndarray, k: int, lags: int) -> np.ndarray:
    """[days, lags + 2] per valid day ``v``: the forecasts of ``v`` issued ``k``, ``k + 1`` ... ``k + lags`` days
    before it (``F[v - k - j, k + j]``), then 1; NaN where a run is missing."""
    n = F.shape[0]
    X = np.full((n, lags + 2), np.nan)
    X[:, -1] = 1.0
    for j in range(lags + 1):
        lead = k + j
        X[lead:, j] = F[:n - lead, lead]
    return X


def runs_per_date(table: pd.DataFrame) -> pd.Series:
    """How many runs (members) an archive holds on each of its issue dates."""
    return table.groupby("issue_date")["member"].nunique()


def ensemble_why(runs: pd.Series) -> str | None:
    """Why an archive whose issue dates hold ``runs`` runs each (:func:`runs_per_date`) is an ensemble left as given:
    most of its dates hold several (None: it is an archive of one run a day, perhaps with a few dates of several)."""
    several = runs[runs > 1]
    if 2 * len(several) <= len(runs):
        return None
    return Note("lags_ensemble_archive", runs=int(several.max()), n=len(several), dates=len(runs),
                first=str(several.index[0].date()))


def combine_lagged(table: pd.DataFrame, observed: pd.Series, issue_dates, max_lag: int = MAX_LAG,
                   min_pairs: int = MIN_PAIRS, prior_pairs: int = PRIOR_PAIRS) -> tuple[pd.DataFrame, dict]:
    """An archive's precipitation of the forecasts issued on ``issue_dates``, each lead combined with the same valid
    day's forecasts issued up to ``max_lag`` days earlier (module docstring).

    Parameters
    ----------
    table : pandas.DataFrame
        An archive: ``issue_date``, ``valid_date`` (Timestamps), ``member``, ``precipitation`` (mm/d) and any other
        columns, which are kept as they are.
    observed : pandas.Series
        The station's observed daily precipitation (mm/d) by date (NaN or absent: not observed).
    issue_dates : sequence of dates
        The issue dates whose forecasts are combined; the rest of the table is only read.
    max_lag, min_pairs, prior_pairs : int
        :data:`MAX_LAG`, :data:`MIN_PAIRS`, :data:`PRIOR_PAIRS`.

    Returns
    -------
    table : pandas.DataFrame
        A copy with the combined precipitation (as given where a lead had too few verified days, or an issue date
        lacks an earlier run).
    record : dict
        ``max_lag``, ``issue_dates`` (how many were combined at any lead), ``first`` (the first such date, ISO),
        where none was, ``why``, and where some issue dates of an archive of one run a day hold several runs,
        ``several_runs``: how many such dates (``issue_dates``), the first (ISO) and the most runs on one (``runs``),
        each left as given.
    """
    out = table.copy()
    record = {"max_lag": int(max_lag), "issue_dates": 0}
    if len(table) == 0 or "precipitation" not in table.columns:
        return out, {**record, "why": Note("lags_no_precipitation")}
    runs = runs_per_date(table)
    several = runs[runs > 1]
    why = ensemble_why(runs)
    if why:
        return out, {**record, "why": why}
    if len(several):
        # an archive of one run a day with a few dates of several (a run fetched twice, one day of an ensemble):
        # which of a date's runs is "the" run is not known, so those dates are neither combined nor read as an
        # earlier run of another date; the rest of the archive is combined as if they were a gap
        record["several_runs"] = {"issue_dates": int(len(several)), "first": str(several.index[0].date()),
                                  "runs": int(several.max())}
    single = ~table["issue_date"].isin(several.index).to_numpy()
    first, n, issue, valid = _grid(table)
    lead = valid - issue
    leads = int(lead.max())
    if leads < 2:  # a day's only forecast is the one of the day before: there is no earlier run to combine
        return out, {**record, "why": Note("lags_short_leads", leads=leads)}
    p = table["precipitation"].to_numpy(np.float64)
    F = np.full((n, leads + 1), np.nan)
    ok = (lead >= 1) & single
    F[issue[ok], lead[ok]] = p[ok]
    days = first + pd.to_timedelta(np.arange(n), unit="D")
    y = pd.Series(observed, dtype=np.float64).reindex(days).to_numpy(np.float64)
    wanted = pd.DatetimeIndex(list(issue_dates)).normalize()
    wanted = wanted[(wanted >= first) & (wanted < first + pd.Timedelta(days=n))]
    t_pos = np.asarray((wanted - first).days, dtype=np.int64)
    months = wanted.to_period("M").to_timestamp()
    # the table's row of each run's lead (-1: none): looked up per issue date asked (a dict of a ten-year archive's
    # rows took a third of a service forecast's combination)
    row_of = np.full((n, leads + 1), -1, dtype=np.int64)
    row_of[issue[ok], lead[ok]] = np.flatnonzero(ok)
    new_p = p.copy()
    combined = np.zeros(len(wanted), dtype=bool)
    fitted = False  # whether any lead of an asked month had its verified days: else the archive is too short
    for k in range(1, leads):
        J = min(int(max_lag), leads - k)
        X = _design(F, k, J)
        usable = np.isfinite(X).all(axis=1) & np.isfinite(y)
        for m in np.unique(months):
            m_pos = int((m - first).days)
            fit = usable.copy()
            fit[max(m_pos, 0):] = False                  # only the days observed before the month began
            n_fit = int(fit.sum())
            if n_fit < min_pairs:
                continue
            fitted = True
            Xf, yf = X[fit], y[fit]
            w_ls, *_ = np.linalg.lstsq(Xf, yf, rcond=None)
            w0 = np.zeros(J + 2)
            w0[0] = 1.0
            w = w0 + n_fit / (n_fit + prior_pairs) * (w_ls - w0)
            # every day's combination in one product: a day's value then does not depend on which issue dates were
            # asked (a row of a reforecast equals a forecast of that date alone, bit for bit; a value off by one
            # ulp from a tie in the sample took another rank)
            c = X @ w
            sample_c, sample_own = c[fit], Xf[:, 0]
            these = np.flatnonzero(months == m)
            v = t_pos[these] + k
            inside = v < n
            these, v = these[inside], v[inside]
            have = np.isfinite(X[v]).all(axis=1)
            these, v = these[have], v[have]
            if len(these) == 0:
                continue
            mapped = quantile_map(c[v], sample_c, sample_own)
            for i, value in zip(these, mapped):
                r = row_of[t_pos[i], k]
                if r >= 0:
                    new_p[r] = value
                    combined[i] = True
    out["precipitation"] = new_p
    record["issue_dates"] = int(combined.sum())
    if combined.any():
        record["first"] = str(wanted[combined][0].date())
    elif len(wanted) and wanted.isin(several.index).all():  # the dates asked are those of several runs
        record["why"] = (Note("lags_several_runs_more", day=str(wanted[0].date()), more=len(wanted) - 1)
                         if len(wanted) > 1 else Note("lags_several_runs", day=str(wanted[0].date())))
    elif fitted:  # the weights were there: the asked dates' own earlier runs are not
        record["why"] = Note("lags_gap", max_lag=int(max_lag))
    elif np.isfinite(y).sum() < min(min_pairs, n):  # the station's rain record ends before the archive's (or lacks it)
        record["why"] = Note("lags_short_rain", n=int(np.isfinite(y).sum()), days=int(n), min_pairs=int(min_pairs))
    else:
        record["why"] = Note("lags_few_pairs", min_pairs=int(min_pairs), runs=int(max_lag) + 1)
    return out, record
