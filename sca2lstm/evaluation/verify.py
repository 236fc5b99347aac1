"""Scores of a reforecast table (``sca2lstm verify reforecast.csv``), per lead, beside persistence.

Everything is vectorised over the rows of one lead. Definitions:

* **NSE** of the median and of persistence (the last observed flow up to the issue date) on the same
  days (:func:`sca2lstm.evaluation.metrics.paired_metrics`).
* **CRPS** of the distribution the forecast's quantiles define (piecewise linear between them, the tails
  extended linearly; the exceedance probabilities use the same CDF between q05 and q95, exponential tails
  beyond), by the quantile form of
  the CRPS integral on 50 levels (:func:`sca2lstm.weather.mixture.crps`); for persistence (a point
  forecast) it is the mean absolute error. Both on the same days (observed, quantiles and persistence
  known). The plain mean pinball loss over five levels would be no CRPS to set beside persistence's: for
  a calibrated Gaussian forecast it reads 12 % low, this one 0.2 % high.
* **Coverage** of the 50 % and 90 % intervals, overall and on the days whose observed flow is above
  each level; the share of days below q05 and above q95. A forecast of other quantile levels is scored on the
  central intervals they give (q10/q90: ``coverage80``, and on the days above each level), its reliability on
  its own levels (``below_q10`` .. ``above_q90``).
* **Reliability**: the share of days whose observed flow lies below each quantile (``below_q05``,
  ``below_q25``, ``below_median``, ``below_q75``; ``above_q95``), exact at the levels the forecast gives;
  and the PIT, ``F(observed)`` under the forecast CDF of :mod:`sca2lstm.evaluation.exceedance`, as the share
  of days in each tenth. Between the five levels that CDF is interpolated, so the deciles are approximate:
  a perfectly calibrated Gaussian forecast puts about 0.08, not 0.10, in each outer tenth.
* Per level, from ``warn_<level>`` (persistence warns where its flow is above the level):
  **POD, FAR, CSI, F1 by day** (each valid day a yes/no event) and **by event**: an event is a run of
  consecutive valid days above the level, a warning a run of consecutive warned valid days (at this
  lead); an event is detected when a warning touches it within +-1 day, and a warning is a false alarm
  when no event lies within +-1 day of it. The +-1 day counts a warning a day late as a hit (persistence
  at lead 1 is always a day late, and often scores F1 near 1 by event): by day is the stricter score. POD = detected / events, FAR = false warnings / warnings,
  CSI = 1 / (1 / POD + 1 / (1 - FAR) - 1), F1 = 2 POD (1 - FAR) / (POD + 1 - FAR). Without an event (a level
  the verified days never reached) POD, CSI and F1 are NaN, never 0; FAR still counts the false alarms.
* **The level's value**: a row with ``level_<level>`` (the service's record of what it issued,
  ``issued.csv``) is scored against the value its forecast was issued with (a level set or moved since changes no
  earlier row's event); a row whose ``level_<level>`` is empty was issued without the level: it neither warned nor
  stayed silent on it, so it is left out of that level's scores (``n_left_out`` per level and lead). A table
  without the column (a reforecast: one set of levels) is scored against ``levels.json``.
* **The station**: the table's column ``basin`` and each level's ``basin`` in ``levels.json`` name the station
  (a reforecast and the service's exports write them); another station's levels, levels of several stations or a
  table of several stations are refused in one line. Files without them (written before) are read as before.
* **Brier skill** of ``p_exceed_<level>`` against climatology, the share of the verified days above
  the level (the sample climatology, which knows the verified period's base rate: a strict reference).
* **In-sample**: where the table has the column ``in_sample`` (a reforecast writes it: the valid day is one
  the model trained or was validated on, or its blend, spread, recession bound or levels were fitted on),
  ``in_sample_share`` per lead is the share of scored days that are; above 0 the scores are not a test.
* **How sure**: one station's past years hold few floods, so an F1 from six events, or an NSE carried by
  one wet winter, could have come out quite differently. ``nse_lo90`` .. ``nse_hi90`` (per lead) and
  ``f1_lo90`` .. ``f1_hi90`` (per level and lead, by day) are 90 % bootstrap intervals that resample whole
  years of valid days (blocks of 365 days from the first; a flood and its recession stay together);
  resamples without any event or warning, where F1 is undefined, are left out. NaN with fewer than 3 years.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..data.tables import parse_csv, parse_dates, read_bytes
from ..errors import DataError
from .exceedance import pit, quantile_levels
from ..weather.files import csv_dialect
from ..weather.mixture import crps as distribution_crps
from .metrics import bootstrap_interval, paired_metrics, true_runs, valid_mask

REQUIRED = ("issue_date", "valid_date", "lead_days", "median", "observed")


def contingency(warn, event) -> dict:
    """POD, FAR, CSI and F1 of yes/no warnings against yes/no events (day by day).

    Parameters
    ----------
    warn, event : array_like of bool, shape [N]

    Returns
    -------
    dict: hits, misses, false_alarms, pod, far, csi, f1 (NaN where undefined).
    """
    w, e = np.asarray(warn, bool), np.asarray(event, bool)
    h, m, f = int((w & e).sum()), int((~w & e).sum()), int((w & ~e).sum())
    return _scores(h, m, f, h + m, h + f)


def _scores(hits, misses, false_alarms, n_events, n_warnings) -> dict:
    """POD, FAR, CSI, F1 from counts (NaN where undefined)."""
    nan = float("nan")
    pod = hits / n_events if n_events else nan
    far = false_alarms / n_warnings if n_warnings else nan
    if n_events == 0:
        # no event to detect: POD is undefined, and so are CSI and F1; a 0 would read as floods the forecast
        # missed (its warnings' FAR still says whether it cried wolf)
        csi = f1 = nan
    elif hits == 0:
        csi = f1 = 0.0
    else:
        prec = 1 - far
        csi = 1.0 / (1.0 / pod + 1.0 / prec - 1.0)
        f1 = 2 * pod * prec / (pod + prec)
    return {"hits": hits, "misses": misses, "false_alarms": false_alarms, "pod": pod, "far": far, "csi": csi,
            "f1": f1}


def _runs(flag: np.ndarray) -> list[tuple[int, int]]:
    """[start, end] index pairs (inclusive) of the runs of True in a 1-D bool array."""
    return [(a, b - 1) for a, b in true_runs(flag)]


def event_counts(warn, event, tolerance: int = 1) -> tuple[int, int, int, int, int]:
    """(hits, misses, false alarms, events, warnings) of events (runs of days above the level) and warnings
    (runs of warned days), matched within ``tolerance`` days; see :func:`event_contingency`."""
    w, e = np.asarray(warn, bool), np.asarray(event, bool)
    ev, wr = _runs(e), _runs(w)
    # dilate each series by the tolerance: an event is hit when a warned day lies within it +- tol
    k = 2 * tolerance + 1
    w_near = np.convolve(w.astype(int), np.ones(k, int), mode="same") > 0
    e_near = np.convolve(e.astype(int), np.ones(k, int), mode="same") > 0
    hits = sum(bool(w_near[a:b + 1].any()) for a, b in ev)
    false = sum(not bool(e_near[a:b + 1].any()) for a, b in wr)
    return hits, len(ev) - hits, false, len(ev), len(wr)


def event_contingency(warn, event, tolerance: int = 1) -> dict:
    """POD, FAR, CSI and F1 counted on events (runs of days above the level) and warnings (runs of warned
    days), matched within ``tolerance`` days.

    Parameters
    ----------
    warn, event : array_like of bool, shape [T]
        On consecutive days (one series, e.g. one basin at one lead; unknown days False).
    """
    return _scores(*event_counts(warn, event, tolerance))


#: Days in one resampled block of :func:`_year_sums` (a year: a flood and its recession stay together).
BLOCK_DAYS = 365


def _year_sums(dates, values: np.ndarray) -> np.ndarray:
    """Per-day quantities ``values`` [N, k] summed within blocks of ``BLOCK_DAYS`` valid days: [k, blocks]."""
    d = pd.DatetimeIndex(dates)
    block = ((d - d.min()).days // BLOCK_DAYS).to_numpy() if len(d) else np.zeros(0, dtype=int)
    out = np.zeros((values.shape[1], int(block.max()) + 1 if len(block) else 0))
    for j in range(values.shape[1]):
        out[j] = np.bincount(block, weights=values[:, j], minlength=out.shape[1])
    return out


def _nse_of_sums(n, so, so2, se, axis=-1):
    """NSE from summed day counts, observations, their squares and squared errors."""
    n_, so_ = n.sum(axis), so.sum(axis)
    ss = so2.sum(axis) - so_ * so_ / np.where(n_ > 0, n_, 1)
    return np.where(ss > 0, 1 - se.sum(axis) / np.where(ss > 0, ss, 1), np.nan)


def pooled_f1(hits, misses, false_alarms, axis=-1):
    """F1 of hits, misses and false alarms summed along ``axis`` (years of one station, or basins), NaN with
    neither an event nor a warning; vectorised for :func:`~sca2lstm.evaluation.metrics.bootstrap_interval`."""
    d = 2 * hits.sum(axis) + misses.sum(axis) + false_alarms.sum(axis)
    return np.where(d > 0, 2 * hits.sum(axis) / np.where(d > 0, d, 1), np.nan)


def nse_interval_over_years(dates, obs, sim, also_finite=()) -> tuple[float, float]:
    """90 % interval of the NSE of ``sim`` against ``obs`` on the days where both (and ``also_finite``) are
    known, resampling years of days (:data:`BLOCK_DAYS`)."""
    ok = valid_mask(obs, sim, *also_finite)
    o, e = obs[ok], sim[ok] - obs[ok]
    sums = _year_sums(np.asarray(dates)[ok], np.stack([np.ones_like(o), o, o * o, e * e], axis=1))
    return bootstrap_interval(tuple(sums), _nse_of_sums)


def f1_interval_over_years(dates, warn, event) -> tuple[float, float]:
    """90 % interval of the F1 by day of yes/no ``warn`` against ``event``, resampling years of days."""
    w, e = np.asarray(warn, bool), np.asarray(event, bool)
    if not e.any():  # no flood day at all: F1 is undefined, not the 0 that resampled false alarms would give
        return float("nan"), float("nan")
    sums = _year_sums(dates, np.stack([w & e, ~w & e, w & ~e], axis=1).astype(np.float64))
    return bootstrap_interval(tuple(sums), pooled_f1)


def _central_intervals(levels: dict) -> list[tuple[str, str, str]]:
    """The central intervals the quantile columns ``levels`` (:func:`~sca2lstm.evaluation.exceedance.quantile_levels`) give, widest first:
    ``(width in percent as a name, lower column, upper column)``, e.g. ``("90", "q05", "q95")``."""
    by_level = {round(t, 6): c for c, t in levels.items()}
    return [(f"{round((1 - 2 * t) * 100, 1):g}", c, by_level[round(1 - t, 6)])
            for t, c in sorted(by_level.items()) if t < 0.5 and round(1 - t, 6) in by_level]


def _quantiles(df: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    levels = quantile_levels(df.columns)
    cols, taus = list(levels), np.array([*levels.values(), 0.5])
    q = np.concatenate([df[cols].to_numpy(np.float64), df[["median"]].to_numpy(np.float64)], axis=1)
    order = np.argsort(taus, kind="stable")
    return q[:, order], taus[order]


def quantile_score(obs, q, taus) -> float:
    """CRPS approximation: 2 x mean pinball loss over the levels and the days (NaN days left out)."""
    obs = np.asarray(obs, dtype=np.float64)
    ok = np.isfinite(obs) & np.isfinite(q).all(axis=1)
    if not ok.any():
        return float("nan")
    d = obs[ok, None] - q[ok]
    t = np.asarray(taus)[None, :]
    return float(2 * np.maximum(t * d, (t - 1) * d).mean())


def _coverage(obs, lo, hi, sel=None) -> float:
    ok = np.isfinite(obs) & np.isfinite(lo) & np.isfinite(hi)
    if sel is not None:
        ok &= sel
    return float(((obs[ok] >= lo[ok]) & (obs[ok] <= hi[ok])).mean()) if ok.any() else float("nan")


def read_reforecast(path, encoding: str | None = None, date_format: str | None = None) -> pd.DataFrame:
    """A reforecast table (one-line error naming what is missing). ``encoding``: None detects it (a table
    saved again from a spreadsheet may be GBK or UTF-16). ``date_format``: the strftime form of its dates
    (``--date_format``), where they do not show day against month."""
    from pathlib import Path

    p = Path(path)
    if p.is_dir():  # the reforecast's folder, as forecast --from/--to printed it
        inner = p / "reforecast.csv"
        hint = f"give the table in it, {inner}" if inner.is_file() else "it holds no reforecast.csv"
        raise DataError(f"{p} is a folder, not a reforecast table; {hint}")
    if not p.is_file():
        raise DataError(f"{p}: no such file")
    raw, _ = read_bytes(p, "CSV file")
    # a table saved again from a spreadsheet in much of Europe: semicolons and decimal commas, read as the
    # forecast side reads its weather tables
    dialect = csv_dialect(raw, str(p))
    # a station id is text: 032006 keeps its zero (pandas would read the column as the number 32006)
    df = parse_csv(raw, str(p), encoding, dtype={"basin": str}, **dialect)
    for c in ("issue_date", "valid_date"):
        if c in df:
            df[c] = parse_dates(df[c].astype(str).tolist(), date_format, column=c, source=str(p))
    missing = [c for c in REQUIRED if c not in df.columns]
    if missing:
        found = [str(c) for c in df.columns]
        shown = ", ".join(repr(c) for c in found[:12]) + (f" and {len(found) - 12} more" if len(found) > 12 else "")
        sep = {";": "semicolons", "\t": "tabs"}.get(dialect.get("sep"), "commas")
        raise DataError(f"{p}: missing column(s) {', '.join(missing)}; a reforecast table has "
                        f"{', '.join(REQUIRED)}, the quantiles and p_exceed_/warn_ per level; read with {sep} "
                        f"between columns, it has {len(found)} column(s): {shown}")
    stations = table_basins(df)
    if len(stations) > 1:  # one station's scores, against one station's levels: not a mix nobody can tell apart
        raise DataError(f"{p}: rows of {len(stations)} stations (column 'basin': {', '.join(stations[:5])}"
                        f"{' ...' if len(stations) > 5 else ''}); verify scores one station's forecasts: keep the rows "
                        "of one station")
    quantiles = quantile_levels(df.columns)
    if not quantiles:  # the CRPS, coverage and PIT score the distribution
        raise DataError(f"{p}: no quantile column (q05, q25, q75, q95 beside the median); verify scores a forecast's "
                        f"distribution; the table has {', '.join(map(str, df.columns))}")
    if not len(df):
        raise DataError(f"{p}: the table has no rows; nothing to verify")
    for c in df.columns:
        if c in ("median", "observed", "persistence", "lead_days") or c in quantiles or c.startswith("p_exceed_"):
            df[c] = _numbers(df[c], c, p)
        elif c.startswith("level_"):
            df[c] = _level_values(df[c], c, p)
        elif c.startswith("warn_") or c == "in_sample":
            df[c] = _flags(df[c], c, p)
    lead = df["lead_days"].to_numpy(np.float64)
    bad = ~(np.isfinite(lead) & (lead >= 1) & (lead == np.round(lead)))
    if bad.any():  # a row without its lead would be dropped from every score without a word
        i = int(np.flatnonzero(bad)[0])
        shown = "an empty cell" if np.isnan(lead[i]) else f"{lead[i]:g}"
        raise DataError(f"{p}: column 'lead_days' holds {shown} on row {i + 2}; every row needs its lead, a whole "
                        "number of days from 1")
    df["lead_days"] = lead.astype(np.int64)
    # lead k is the forecast for k days after its issue date; a row that says otherwise (issue_date written as
    # the valid day, a lead counted from 0) would score persistence and the lead on the wrong days
    ahead = (df["valid_date"].dt.normalize() - df["issue_date"].dt.normalize()).dt.days.to_numpy()
    off = ahead != df["lead_days"].to_numpy()
    if off.any():
        i = int(np.flatnonzero(off)[0])
        r = df.iloc[i]
        raise DataError(f"{p}: row {i + 2} is issued {r['issue_date'].date()}, valid {r['valid_date'].date()} "
                        f"({ahead[i]} day(s) later) with lead_days {r['lead_days']}; a row's valid_date is its "
                        f"issue_date + lead_days, leads from 1 ({int(off.sum())} such rows)")
    # The same row twice (a table pasted below itself) counts once; two different forecasts of one day at one
    # lead (two runs or stations joined) are not for verify to choose between.
    df = df.drop_duplicates().reset_index(drop=True)
    clash = df.duplicated(["lead_days", "valid_date"], keep=False)
    if clash.any():
        r = df[clash].iloc[0]
        issued = sorted({str(d.date()) for d in df.loc[clash & (df["lead_days"] == r["lead_days"])
                                                        & (df["valid_date"] == r["valid_date"]), "issue_date"]})
        raise DataError(f"{p}: two different rows for lead {r['lead_days']}, valid {r['valid_date'].date()} (issued "
                        f"{' and '.join(issued)}; {int(clash.sum())} such rows); keep one forecast per issue date and "
                        "lead (two tables joined?)")
    observed = df["observed"]
    if not observed.notna().any():
        raise DataError(f"{p}: no row has an observed flow (valid dates {df['valid_date'].min().date()}.."
                        f"{df['valid_date'].max().date()}); verify scores forecasts of days whose flow is known: score "
                        "it again once they are observed (a reforecast: end its span a week before the record does)")
    return df


def table_basins(df: pd.DataFrame) -> list[str]:
    """The stations a reforecast table's rows are of (its column ``basin``, blanks left out), in order of first
    appearance; [] for a table without the column (one written before tables named their station)."""
    if "basin" not in df.columns:
        return []
    ids = df["basin"].dropna().astype(str).str.strip()
    return list(dict.fromkeys(ids[ids != ""]))


def read_levels(path, basin: str | None = None) -> dict:
    """:func:`read_station_levels`'s levels alone."""
    return read_station_levels(path, basin)[0]


def read_station_levels(path, basin: str | None = None) -> tuple[dict, str | None]:
    """``levels.json`` (``{name: {"value": flow, "unit": "m3/s", "basin": station, ...}}``, as a reforecast writes
    it) as ``name -> flow`` (m3/s).

    A one-line DataError for a file that is no such mapping, a level without its value, a value that is not a
    finite number above 0 (NaN, -5, "high", true: each would score the warnings against a level no flow has,
    or every flow has) or a unit other than m3/s (the levels are compared with the table's flows); and for levels
    of another station than ``basin`` (the table's, where it names one), or of several. A file written before levels
    named their station (no ``basin``) is read as it is.

    Returns
    -------
    (levels, station) : (dict, str or None)
        ``name -> flow``, and the station the file names (None: a file written before levels named theirs).
    """
    from ..data.tables import read_json

    doc = read_json(path, what="levels.json")
    if not isinstance(doc, dict):
        raise DataError(f"{path}: not a levels.json; expected {{name: {{\"value\": flow in m3/s, ...}}}}, found a "
                        f"JSON {type(doc).__name__}")
    out = {}
    for name, d in doc.items():
        if not isinstance(d, dict) or "value" not in d:
            raise DataError(f"{path}: level {name!r} is {json_text(d)}; expected {{\"value\": flow in m3/s, ...}}")
        v = d["value"]
        try:
            flow = float(v) if not isinstance(v, bool) else float("nan")
        except (TypeError, ValueError):
            flow = float("nan")
        if not (np.isfinite(flow) and flow > 0):
            raise DataError(f"{path}: level {name!r} has value {json_text(v)}; a level is a flow in m3/s, a finite "
                            "number above 0")
        if d.get("unit", "m3/s") != "m3/s":
            raise DataError(f"{path}: level {name!r} is in {json_text(d['unit'])}; verify compares levels with the "
                            "table's flows, in m3/s")
        out[str(name)] = flow
    named = list(dict.fromkeys(str(d["basin"]).strip() for d in doc.values() if d.get("basin") is not None))
    if len(named) > 1:
        raise DataError(f"{path}: levels of {len(named)} stations (basin {', '.join(named)}); a levels file holds one "
                        "station's levels")
    if basin is not None and named and named[0] != str(basin):
        raise DataError(f"{path}: the levels of basin {named[0]}, but the table forecasts basin {basin}; give basin "
                        f"{basin}'s levels with --levels (the levels.json beside its reforecast.csv)")
    return out, (named[0] if named else None)


def json_text(v) -> str:
    """``v`` as JSON writes it, cut to 60 characters (``NaN``, ``true``, ``"high"``)."""
    import json

    text = json.dumps(v, ensure_ascii=False)
    return text if len(text) <= 60 else text[:57] + "..."


def _numbers(column: pd.Series, name: str, path) -> pd.Series:
    """``column`` as numbers (an empty cell is NaN); a one-line DataError naming the first cell that is text
    (a note typed into a spreadsheet cell), its row and the column."""
    values = pd.to_numeric(column, errors="coerce")
    text = values.isna() & column.notna() & (column.astype(str).str.strip() != "")
    if text.any():
        i = int(np.flatnonzero(text.to_numpy())[0])
        raise DataError(f"{path}: column {name!r} holds {str(column.iloc[i])!r} on row {i + 2}, not a number; "
                        "leave the cell empty where there is no value")
    return values.astype(np.float64)


def _level_values(column: pd.Series, name: str, path) -> pd.Series:
    """``level_<level>``: the value (m3/s) each row's forecast was issued with, empty where it was issued without
    the level; a one-line DataError naming the first cell that is no flow above 0."""
    values = _numbers(column, name, path)
    bad = values.notna() & ~(np.isfinite(values) & (values > 0))
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise DataError(f"{path}: column {name!r} holds {values.iloc[i]:g} on row {i + 2}; a level is a flow in m3/s, "
                        "a finite number above 0 (an empty cell: the forecast was issued without this level)")
    return values


def level_thresholds(df: pd.DataFrame, name: str, levels: dict) -> np.ndarray | None:
    """The value of level ``name`` (m3/s) each row of ``df`` is verified against: the one its forecast was issued
    with (column ``level_<name>``, as the service's ``issued.csv`` has it; NaN where issued without the level),
    else ``levels``' (one value for every row, as a reforecast issues them); None where neither gives one."""
    if f"level_{name}" in df.columns:
        return df[f"level_{name}"].to_numpy(np.float64)
    if name in levels:
        return np.full(len(df), float(levels[name]))
    return None


def verified_levels(df: pd.DataFrame, levels: dict) -> list[str]:
    """The levels ``df`` is verified on: those of ``levels`` and those whose values the table carries
    (``level_<name>``)."""
    own = [c[len("level_"):] for c in df.columns if c.startswith("level_")]
    return list(dict.fromkeys([*levels, *own]))


def level_value_lines(df: pd.DataFrame, levels: dict) -> list[str]:
    """Per level whose values the table carries (``level_<name>``, the service's record of what it issued): how many
    rows were left out of its scores because their forecast was issued without it, and which value(s) the others
    were scored against (each row the one its forecast was issued with), where that is not simply the levels file's."""
    lines = []
    for name in [c[len("level_"):] for c in df.columns if c.startswith("level_")]:
        v = df[f"level_{name}"]
        out = df[v.isna()]
        if len(out):
            days = sorted(out["issue_date"].dt.date.unique())
            span = str(days[0]) if len(days) == 1 else f"{days[0]} .. {days[-1]}"
            lines.append(f"{name}: {len(out)} of {len(df)} rows ({len(days)} issue date(s), {span}) left out of its "
                         "scores: their forecasts were issued without this level (empty level_"
                         f"{name}), so they neither warned nor stayed silent on it")
        given = v.dropna()
        values = sorted(given.unique())
        if not values or (len(values) == 1 and levels.get(name) == values[0]):
            continue
        parts = []
        for x in values:
            d = sorted(df.loc[v == x, "issue_date"].dt.date.unique())
            parts.append(f"{x:g} m3/s (issue dates {d[0]}" + (f" .. {d[-1]})" if len(d) > 1 else ")"))
        also = f"; the levels file gives {levels[name]:g}" if name in levels and levels[name] not in values else ""
        lines.append(f"{name}: each forecast scored against the value it was issued with (level_{name}): "
                     f"{', '.join(parts)}{also}")
    return lines


def unobserved_leads(df: pd.DataFrame) -> list[int]:
    """The leads of a reforecast table none of whose rows has an observed flow (their valid days not observed
    yet, or a gap): every score of such a lead is NaN."""
    seen = df["observed"].notna().groupby(df["lead_days"]).any()
    return [int(k) for k, v in seen.items() if not v]


def no_event_lines(per_level: pd.DataFrame, levels: dict, unobserved=()) -> list[str]:
    """One line per level with leads where no observed day was above it: its POD, CSI, F1 and Brier skill
    are NaN there (undefined, not 0), and how many warned days were false alarms.

    Parameters
    ----------
    per_level : pandas.DataFrame
        :func:`verify`'s per-level table.
    levels : dict
        ``name -> flow`` (m3/s).
    unobserved : sequence of int
        Leads without any observed day (:func:`unobserved_leads`), said apart and left out here.
    """
    if not len(per_level):
        return []
    lines = []
    rows = per_level[(per_level["forecast"] == "model") & (per_level["count"] == "day")
                     & ~per_level["lead"].isin(list(unobserved))]
    for name, g in rows.groupby("level", sort=False):
        none = g[(g["hits"] + g["misses"]) == 0]
        if not len(none):
            continue
        leads = ", ".join(str(int(k)) for k in none["lead"])
        false = int(none["false_alarms"].sum())
        value = g["values"].iloc[0] if "values" in g.columns else f"{levels[name]:g}"
        lines.append(f"{name} ({value} m3/s): no observed day above it at lead(s) {leads}, so no event to "
                     "detect: POD, CSI, F1 and Brier skill are undefined there (NaN), not 0; "
                     + (f"{false} warned day(s) there, all false alarms (FAR 1)" if false else "no warning there"))
    return lines


#: How a yes/no cell may be written: as a reforecast writes it, or as 1/0 (a spreadsheet's or another tool's
#: export); an empty cell is no warning.
_YES, _NO = frozenset({"true", "1", "1.0"}), frozenset({"false", "0", "0.0", ""})


def _flags(column: pd.Series, name: str, path) -> pd.Series:
    """``column`` (``warn_<level>``, ``in_sample``) as bools; a one-line DataError naming the first cell that is
    neither true/false nor 1/0 (``WAHR`` from a German spreadsheet, say), which would otherwise read as never
    warned."""
    text = column.astype(str).str.strip().str.lower().where(column.notna(), "")
    bad = ~text.isin(_YES | _NO)
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise DataError(f"{path}: column {name!r} holds {str(column.iloc[i])!r} on row {i + 2}; a yes/no cell is true "
                        "or false (or 1 or 0)")
    return text.isin(_YES)


def level_names(df: pd.DataFrame) -> list[str]:
    """The levels a table warns on (its ``warn_<level>`` columns); their ``p_exceed_<level>`` may be absent (a
    table of another tool's yes/no warnings): the warnings are scored, the Brier skill is NaN."""
    return [c[len("warn_"):] for c in df.columns if c.startswith("warn_")]


def verify(df: pd.DataFrame, levels: dict | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Score a reforecast table per lead.

    Parameters
    ----------
    df : pandas.DataFrame
        :func:`read_reforecast`'s table (one basin).
    levels : dict, optional
        ``name -> flow`` (m3/s) of the levels (from ``levels.json``); needed for the coverage above a
        level and the persistence warnings. Without it those are NaN.

    Returns
    -------
    (per_lead, per_level) : pandas.DataFrame
        ``per_lead``: one row per lead (NSE, CRPS, coverage, PIT shares, beside persistence);
        ``per_level``: one row per (level, lead, forecast in {model, persistence}, count in {day, event}).
    """
    levels = levels or {}
    if "persistence" not in df.columns:
        # the flow observed on the issue date (lead-1 rows of the day before hold it)
        obs_on = df.drop_duplicates("valid_date").set_index("valid_date")["observed"]
        df = df.assign(persistence=df["issue_date"].map(obs_on))
    rows, lrows = [], []
    names = level_names(df)
    for lead, g in df.sort_values(["lead_days", "valid_date"]).groupby("lead_days"):
        obs = g["observed"].to_numpy(np.float64)
        med = g["median"].to_numpy(np.float64)
        pers = g["persistence"].to_numpy(np.float64)
        q, taus = _quantiles(g)
        m = paired_metrics(obs, med, pers)
        ok = np.isfinite(obs) & np.isfinite(q).all(axis=1)
        u = pit(q[ok], taus, obs[ok])
        hist = np.histogram(u, bins=10, range=(0, 1))[0] / max(len(u), 1)
        lo, hi = nse_interval_over_years(g["valid_date"], obs, med, also_finite=(pers,))
        both = ok & np.isfinite(pers)   # the model and persistence scored on the same days
        row = {"lead": int(lead), "n_days": int(m["n_days"]), "nse": m["model"]["nse"], "nse_lo90": lo,
               "nse_hi90": hi, "persistence_nse": m["persistence"]["nse"],
               "crps": float(distribution_crps(q[both][:, None, :], taus, obs[both]).mean()) if both.any() else np.nan,
               "persistence_crps": float(np.abs(obs[both] - pers[both]).mean()) if both.any() else np.nan}
        # the intervals and reliability of the levels the forecast gives: q05..q95 by default (coverage90,
        # coverage50, below_q05 .. above_q95), those of a model trained with others too (q10/q90: coverage80)
        have = quantile_levels(g.columns)
        cols = sorted(have, key=have.get)
        pairs = _central_intervals(have)
        for i, (width, lo_c, hi_c) in enumerate(pairs):
            lo_v, hi_v = g[lo_c].to_numpy(np.float64), g[hi_c].to_numpy(np.float64)
            row[f"coverage{width}"] = _coverage(obs, lo_v, hi_v)
            if i == 0:  # the widest: also on the days above each level (the value each row was issued with)
                for n in verified_levels(g, levels):
                    thr = level_thresholds(g, n, levels)
                    row[f"coverage{width}_above_{n}"] = _coverage(obs, lo_v, hi_v, obs > thr)
        if pairs:
            below = [(f"below_{c}", c) for c in cols[:-1] if have[c] < 0.5] + [("below_median", "median")] + \
                    [(f"below_{c}", c) for c in cols[:-1] if have[c] > 0.5]
            for name, c in below:
                v = g[c].to_numpy(np.float64)
                row[name] = float((obs[ok] < v[ok]).mean()) if ok.any() else np.nan
            top = g[cols[-1]].to_numpy(np.float64)
            row[f"above_{cols[-1]}"] = float((obs[ok] > top[ok]).mean()) if ok.any() else np.nan
        row["pit_deciles"] = " ".join(f"{h:.3f}" for h in hist)
        if "in_sample" in g.columns:  # the share of scored days the model or its blend learned from
            seen = (g["in_sample"].astype(str).str.lower() == "true").to_numpy()
            row["in_sample_share"] = float(seen[np.isfinite(obs)].mean()) if np.isfinite(obs).any() else np.nan
        rows.append(row)
        # warnings per level, on the continuous daily series of valid dates at this lead
        day = pd.date_range(g["valid_date"].min(), g["valid_date"].max(), freq="D")
        gi = g.set_index("valid_date").reindex(day)
        o = gi["observed"].to_numpy(np.float64)
        known = np.isfinite(o)
        for n in names:
            v = level_thresholds(gi, n, levels)
            if v is None:
                continue
            # a row whose forecast was issued without the level (NaN) neither warned nor stayed silent on it: out of
            # its counts, as a day not observed is
            issued = np.isfinite(v)
            seen = known & issued
            p = gi[f"p_exceed_{n}"].to_numpy(np.float64) if f"p_exceed_{n}" in gi.columns else np.full(len(gi), np.nan)
            wv = gi[f"warn_{n}"]
            w = (wv.astype(str).str.lower() == "true").to_numpy()
            with np.errstate(invalid="ignore"):
                ev = np.where(seen, o > v, False)
                pw = np.where(seen, gi["persistence"].to_numpy(np.float64) > v, False)
            # Brier skill against the sample climatology of the verified days
            sel = seen & np.isfinite(p)
            bs = float(np.mean((p[sel] - ev[sel]) ** 2)) if sel.any() else np.nan
            base = float(ev[sel].mean()) if sel.any() else np.nan
            bs_ref = base * (1 - base)
            values = ", ".join(f"{x:g}" for x in sorted(set(v[seen].tolist()) or set(v[issued].tolist())))
            left_out = int((~np.isfinite(level_thresholds(g, n, levels))).sum())
            for who, warn in (("model", w & seen), ("persistence", pw)):
                f_lo, f_hi = f1_interval_over_years(day[seen], warn[seen], ev[seen])
                for count, res in (("day", contingency(warn[seen], ev[seen])),
                                   ("event", event_contingency(warn, ev))):
                    by_day = count == "day"
                    lrows.append({"level": n, "lead": int(lead), "forecast": who, "count": count, "values": values,
                                  "n_left_out": left_out, **res,
                                  "f1_lo90": f_lo if by_day else np.nan, "f1_hi90": f_hi if by_day else np.nan,
                                  "brier": bs if who == "model" else np.nan,
                                  "brier_skill": (1 - bs / bs_ref) if who == "model" and bs_ref > 0 else np.nan})
    return pd.DataFrame(rows), pd.DataFrame(lrows)
