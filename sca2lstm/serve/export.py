"""The record of what the service issued, in the layout ``sca2lstm verify`` scores (a reforecast table).

Every stored forecast of a station (by default the daily issue's) becomes one row per lead: ``issue_date,
valid_date, lead_days, median, q05, q25, q75, q95 (the model's own quantile levels), observed, persistence`` and,
for each level of the latest forecast, ``p_exceed_<level>`` and ``warn_<level>``. Warnings nest (a warning for a level is one for every
lower level), so ``warn_<level>`` follows from the highest level each lead warned. ``observed`` is the flow
known now (file and posted days); ``persistence`` the last observed flow up to the issue date. Where an issue
date was issued more than once, its latest forecast with the most leads counts.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

QUANTILES = ("median", "q05", "q25", "q75", "q95")


def _counted(rows: list[dict]) -> dict:
    """issue date -> the forecast that counts for it: the most leads, then the latest."""
    best: dict = {}
    for r in rows:
        key = r["issue_date"]
        if key not in best or (r["leads"], r["id"]) > (best[key]["leads"], best[key]["id"]):
            best[key] = r
    return best


def _levels_of(best: dict) -> dict:
    latest = best[max(best)] if best else {}
    return {n: lv for n, lv in (latest.get("levels") or {}).items() if lv.get("value") is not None}


def issued_levels(rows: list[dict]) -> dict:
    """The levels (``levels.json`` form) of the latest counted forecast of ``rows`` ({} where none)."""
    return _levels_of(_counted(rows))


def issued_table(rows: list[dict], flow: pd.Series) -> pd.DataFrame:
    """The reforecast-layout table of the stored forecast ``rows``, with the columns of
    :func:`issued_levels`' levels.

    Parameters
    ----------
    rows : list of dict
        Stored forecasts (:meth:`sca2lstm.serve.store.Store.forecasts`), any order.
    flow : pandas.Series
        The station's daily observed flow now (m3/s, date index).
    """
    best = _counted(rows)
    if not best:
        return pd.DataFrame(columns=["issue_date", "valid_date", "lead_days", *QUANTILES, "observed", "persistence"])
    levels = _levels_of(best)
    known = flow.dropna()
    out = []
    for issue in sorted(best):
        r, t0 = best[issue], pd.Timestamp(issue)
        before = known.loc[:t0]
        pers = float(before.iloc[-1]) if len(before) else np.nan
        for lead in r["table"]:
            valid = pd.Timestamp(lead["valid_date"])
            # the levels the model gave (a forecast stored before they were kept: the five default ones)
            given = lead.get("quantiles") or {q: lead.get(q) for q in QUANTILES[1:]}
            row = {"issue_date": issue, "valid_date": lead["valid_date"], "lead_days": int(lead["lead_days"]),
                   "median": lead.get("median"), **given, "observed": float(flow.get(valid, np.nan)),
                   "persistence": pers}
            top = lead.get("warning")
            top_value = levels[top]["value"] if top in levels else None
            for name, lv in levels.items():
                p = (lead.get("p_exceed") or {}).get(name)
                row[f"p_exceed_{name}"] = np.nan if p is None else p
                row[f"warn_{name}"] = bool(top_value is not None and lv["value"] <= top_value)
            out.append(row)
    return pd.DataFrame(out)
