"""Bring your own station: turn a gauge's own daily CSV into the generic data layout.

What is written into ``DIR`` (the layout every command reads through ``--data_dir``):

- ``DIR/timeseries/<id>.csv``: ``date`` (YYYY-MM-DD, one row per day from the first to the last day of
  the record; missing days are empty cells), ``precipitation`` (mm/d), ``temperature`` (degC, if
  mapped), ``pet`` (mm/d, if mapped), ``discharge_vol`` (m3/s) and ``discharge_spec`` (mm/d, when the
  area is known);
- ``DIR/attributes/stations.csv``: one row per station keyed by ``gauge_id``: ``area`` (km2),
  ``gauge_lat``, ``gauge_lon``, the ``--attr`` values and the climate attributes computed from the
  station's own meteorology (CAMELS-GB names and definitions); an attribute that is absent is masked
  for the model;
- ``DIR/meta/<id>.json``: the station's metadata (:mod:`.station_meta`): rating curve, warning levels, day
  rule, and the import's provenance: source file and its sha256, encoding, column mapping, units, record
  period, what the rating curve masked and extrapolated.

What it reads (through :mod:`.tables`): CSV in any separator and encoding (detected and printed), gzip,
``.xlsx`` sheets (``sheet``), with title rows above the header skipped. Records may be daily or
sub-daily (hourly, 5/15/30-minute): these are aggregated to days by the station's day rule
(:mod:`.days`: day start, label, stamp, time zone; the daily maximum discharge is kept as
``discharge_max``). An excerpt record (摘录: one reading on ordinary days, several on flood days) is read
as instantaneous readings by the area method (:mod:`.readings`). A water level (``stage``) becomes discharge through a rating curve (:mod:`.rating`)
at the record's own time step, before aggregation (the curve is not linear). Several rain gauges
(``precipitation=P1+P2+P3``) are combined day by day with Thiessen weights (or equally), renormalised over
the gauges present that day.

Every check runs before anything is written (the options' own in :mod:`.station_options`); the files are then
written to temporary names and renamed into place (:mod:`.station_write`), so a failed import leaves ``DIR`` as it was, and importing a second station adds it without
changing the first (its row of ``stations.csv`` is kept as it was).
"""

from __future__ import annotations

import datetime as _dt
import difflib
import logging
import os
import re
import unicodedata
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import DataError
from . import reader, readings, tables
from .rating import MAX_DEPTH_M
from .station_meta import StationMeta, check_level_flows
# The options and the writer live in their own modules; their public names are re-exported here, the
# import's one entry point.
from .station_options import (DISCHARGE_UNITS, LEVELS_IN, MAP_KEYS, ImportOptions, check_options,  # noqa: F401
                              check_separators, parse_attr, parse_levels, parse_mapping, parse_weights)
from .station_write import (STATIONS_FILE, PreparedStation, check_clash,  # noqa: F401
                            check_out_dir, check_stored_precipitation_unit, existing_station_files, write_stations)

#: The largest rain a record may hold in one row, in mm (the world's wettest observed day brought 1825 mm).
MAX_PRECIPITATION_MM = 2000.0
#: The largest PET or evaporation a record may hold in one row, in mm: the hottest deserts' pans evaporate some 20-30 mm
#: on their worst days; a missing-value code (99.9, 999, 9999) lies above it, as do most days of PET in 0.1 mm.
MAX_PET_MM = 50.0
#: Values loggers and spreadsheets write for "missing"; in a rain column they are refused, not read as rain.
CODE_LIKE = (999.0, 9999.0, 99999.0, 999.9, 9999.9)
#: The largest mean annual rain a record whose unit nobody declared is read with, in mm. The wettest long-record
#: gauges on Earth (Mawsynram, Cherrapunji) average about 11 000-12 000 mm, and in China only a few mountain
#: gauges in Taiwan exceed 5000 mm; a station of 500 mm a year or more written in 0.1 mm (降水量(0.1mm), integers)
#: reads as 5000 mm or more, ten times the rain, which the model turns into false floods.
MAX_UNDECLARED_ANNUAL_PRECIPITATION_MM = 5000.0
#: Codes a water level may be written as for "missing": the flow codes, their negatives and the shorter ones a
#: logger of levels in m writes (99.9, 99.99, -99); as a stage each is told from a real level by its distance from
#: the column's other levels (:func:`check_stage_codes`).
STAGE_CODE_LIKE = (*CODE_LIKE, *(-c for c in CODE_LIKE), 99.9, 99.99, -9.0, -99.0, -99.9, -99.99)
#: A flow written as such a code (9999) and this many times above the column's highest other flow is taken for the
#: code: a flood of exactly that value standing so far above every other flow of the record is far less likely than
#: a code left in, while a big river's real 9999 m3/s lies within this ratio of its other floods.
CODE_FLOW_RATIO = 10.0
#: Days of rain values the annual total above needs: under a year, a wet season alone would read as a wet climate.
MIN_DAYS_FOR_ANNUAL_PRECIPITATION = 365

log = logging.getLogger(__name__)

# Observed discharge a station needs at least: two years (fine-tuning splits it into train, validation
# and test parts, each with windows of up to a season of warm-up).
MIN_OBSERVED_DAYS = 730
# Below five years of observed discharge the import (and fine-tuning) warns: the test part is then
# one year or less, and its scores are uncertain.
WARN_OBSERVED_DAYS = 5 * 365
# More than half of the record above the highest gauged stage: the curve does not describe the record.
MAX_ABOVE_GAUGED_SHARE = 0.5
# Over a record, a catchment cannot give off several times the rain that falls on it: a mean runoff above
# this multiple of the mean precipitation is a unit error (l/s as m3/s, stages in cm, area in ha).
MAX_RUNOFF_RATIO = 3.0
# A discharge held at exactly one non-zero value for this many days in a row is warned about: measured flows
# change from day to day, while a stuck logger, or a gap filled with the last reading, repeats it exactly. Only
# warned, since a regulated river's release can stay flat for weeks; a month keeps short steady spells (a few
# days of compensation flow, a rounded low flow) quiet. Zero flows are not counted: ephemeral streams run dry
# for months.
FLAT_DISCHARGE_DAYS = 30
# CAMELS-GB climate attributes this importer computes from the station's own meteorology.
CLIMATE_ATTRIBUTES = ("p_mean", "pet_mean", "aridity", "high_prec_freq", "low_prec_freq", "frac_snow")


# ------------------------------------------------------------------------------------------ reading
def read_station_file(path, sep: str = ",", na_values=(), encoding=None, sheet=None, skiprows=None,
                      header_names=()) -> tables.Table:
    """Read a station's table (CSV plain or ``.gz`` in any encoding, or a spreadsheet) as text cells,
    through :func:`.tables.read_table` (which documents the encoding detection and title-row search)."""
    return tables.read_table(path, sep=sep, encoding=encoding, sheet=sheet, skiprows=skiprows,
                             header_names=header_names, na_values=na_values)


def _numeric(col: pd.Series, name: str, what: str, decimal: str, rows=2, thousands=None,
             typed: pd.Series | None = None) -> pd.Series:
    """``col``'s cells as floats (full-width digits, signs and points read as ASCII, as in dates and headers; thousands
    grouped as :func:`.tables.ungroup_numbers` reads them); a cell that is no number is a DataError naming it and its row in the
    file (``rows``: the file row of each cell, or of the first, below any title, header and units rows).

    ``typed`` (a spreadsheet's): True where the cell held a number, read as the number it is (``decimal`` and
    ``thousands`` say how text is written: a number cell of 1.234 is not 1234 under ``--decimal ,``)."""
    s = col.astype("string")
    if not s.dropna().str.isascii().all():  # full-width digits typed in a Chinese input method (１２．５) are 12.5
        # and the minus sign of typeset text (−3.2, U+2212, as Word or a web table writes it), which NFKC keeps
        s = s.map(lambda v: unicodedata.normalize("NFKC", v).replace("\u2212", "-").strip(),
                  na_action="ignore").astype("string")
    typed = pd.Series(False, index=s.index) if typed is None else pd.Series(typed.to_numpy(dtype=bool), index=s.index)
    s = tables.ungroup_numbers(s.where(~typed), name, what, decimal, thousands, rows).where(~typed, s)
    vals = pd.to_numeric(s, errors="coerce")
    bad = vals.isna() & col.notna()
    if bad.any():
        first = col[bad].iloc[0]
        row = tables.file_row(rows, int(np.flatnonzero(bad.to_numpy())[0]))
        raise DataError(f"column {name!r} ({what}) has a non-numeric value {first!r} (row {row}); "
                        "expected numbers (missing values as empty cells, or name them with --na_value)")
    endless = vals.notna() & ~np.isfinite(vals.astype(np.float64))
    if endless.any():  # inf, -Infinity: pandas reads them as numbers, which no gauge measures
        first = col[endless].iloc[0]
        row = tables.file_row(rows, int(np.flatnonzero(endless.to_numpy())[0]))
        raise DataError(f"column {name!r} ({what}) has {first!r} (row {row}), not a finite number; if it marks a "
                        f"missing value, name it with --na_value {first}")
    return vals.astype(np.float64)


def _float_or_none(v):
    try:
        return float(str(v).replace(",", "."))
    except ValueError:
        return None


def _check_timestep(dates: pd.DatetimeIndex, name: str) -> None:
    dup = dates[dates.duplicated()]
    if len(dup):
        raise DataError(f"date column {name!r} has duplicate dates (e.g. {dup[0].date()}, {len(dup)} in all); "
                        "expected one row per day")
    if len(dates) < 2:
        raise DataError(f"date column {name!r} has a single day; expected a daily record of years")
    steps = np.diff(np.sort(dates.to_numpy().astype("datetime64[D]")).astype(np.int64))
    med = float(np.median(steps))
    if med != 1.0:
        raise DataError(f"date column {name!r}: the timestep is not daily (median step {med:g} days, "
                        f"steps from {int(steps.min())} to {int(steps.max())} days); expected one row per day")
    irregular = steps[steps != 1]
    if len(irregular) > 0.2 * len(steps):
        raise DataError(f"date column {name!r}: the timestep is irregular ({len(irregular)} of {len(steps)} steps "
                        "are not one day); expected one row per day")


# ------------------------------------------------------------------------------------------ attributes
def climate_attributes(ts: pd.DataFrame, lat: float | None = None) -> dict:
    """CAMELS-GB climate indices from the station's own daily meteorology (NaN-aware).

    p_mean, pet_mean: mean daily precipitation / PET (mm/d; without a PET column, Oudin PET from the
    temperature and ``lat``, as the loader derives it); aridity = pet_mean / p_mean;
    high_prec_freq: days per year with precipitation >= 5 x p_mean; low_prec_freq: days per year
    with precipitation < 1 mm; frac_snow: share of the precipitation on days colder than 0 degC.
    Only meteorology is used, never discharge, so nothing of the test part's target leaks in.
    """
    out = {}
    p = ts["precipitation"].to_numpy(np.float64)
    ok = np.isfinite(p)
    if ok.sum() >= 365:
        p_mean = float(p[ok].mean())
        out["p_mean"] = p_mean
        out["high_prec_freq"] = float((p[ok] >= 5 * p_mean).mean() * 365.25)
        out["low_prec_freq"] = float((p[ok] < 1.0).mean() * 365.25)
        if "temperature" in ts:
            t = ts["temperature"].to_numpy(np.float64)
            both = ok & np.isfinite(t)
            if both.sum() >= 365 and p[both].sum() > 0:
                out["frac_snow"] = float(p[both & (t < 0)].sum() / p[both].sum())
        e = None
        if "pet" in ts:
            e = ts["pet"].to_numpy(np.float64)
        elif "temperature" in ts and lat is not None:
            from .pet import oudin_pet
            e = oudin_pet(ts["temperature"].to_numpy(np.float64), lat, ts.index.day_of_year.to_numpy())
        if e is not None and np.isfinite(e).sum() >= 365:
            out["pet_mean"] = float(np.nanmean(e))
            if p_mean > 0:
                out["aridity"] = out["pet_mean"] / p_mean
    return out


def check_water_balance(ts: pd.DataFrame, o) -> None:
    """DataError when the mean runoff (mm/d over the catchment) exceeds :data:`MAX_RUNOFF_RATIO` times the mean
    precipitation on the days both are observed: a unit error, which would otherwise train a model on flows
    hundreds of times too large. Needs the area; without it nothing is checked."""
    if "discharge_spec" not in ts:
        return
    both = ts["discharge_spec"].notna() & ts["precipitation"].notna()
    if both.sum() < 365:
        return
    runoff, rain = float(ts["discharge_spec"][both].mean()), float(ts["precipitation"][both].mean())
    if rain > 0 and runoff > MAX_RUNOFF_RATIO * rain:
        raise DataError(f"station {o.station_id}: the discharge averages {runoff:.3g} mm/d over the {o.area_km2:g} "
                        f"km2 catchment, {runoff / rain:.0f} times its mean precipitation ({rain:.3g} mm/d); check "
                        f"--discharge_unit (now {o.discharge_unit}), --area_km2 and, for water levels, that they are "
                        "in metres")


# ------------------------------------------------------------------------------------------ converting
def _stage_to_discharge(raw: pd.DataFrame, o: ImportOptions, col: str, summary: list, warnings: list,
                        derive: bool) -> dict | None:
    """Discharge from the water level at the record's own time step (the curve is not linear, so the
    daily mean of Q is not Q of the daily mean stage). Below the curve: masked and counted; above the
    highest gauged stage: extrapolated, flagged (``discharge_extrapolated``) and counted."""
    if not derive:  # the stages are written beside the flows: as wide a span is as impossible there
        _check_stage_span(raw["stage"].to_numpy(np.float64), col)
        return None
    curve = o.rating
    res = curve.discharge(raw["stage"].to_numpy(np.float64), raw.index)
    h = raw["stage"].to_numpy(np.float64)
    n = int(np.isfinite(h).sum())
    nb, na, nn = int(res.below.sum()), int(res.above.sum()), int(res.no_curve.sum())
    if nb == n:
        lowest = min(curve.lowest_stage(p[2]) for p in curve.periods())
        raise DataError(f"every water level in column {col!r} lies below the rating curve (lowest stage {lowest:g} m, "
                        f"the record's highest is {np.nanmax(h):g} m): a wrong curve, or stages in cm?")
    if nn == n:
        raise DataError(f"no rating-curve period covers the record of column {col!r} "
                        f"({raw.index[0].date()}..{raw.index[-1].date()}); check valid_from / valid_to")
    periods = curve.periods()
    h0 = min(curve.lowest_stage(p[2]) for p in periods)
    top = max(curve.highest_gauged(p[2]) for p in periods)
    depth = float(np.nanmedian(h)) - h0
    if depth > MAX_DEPTH_M:
        raise DataError(f"the water levels in column {col!r} lie a median {depth:g} m above the rating curve's "
                        f"zero-flow stage ({h0:g} m); no river runs that deep: stages in cm? (the curve and the "
                        "record must use metres and the same datum)")
    _check_stage_span(h, col)
    if na > MAX_ABOVE_GAUGED_SHARE * n:
        raise DataError(f"{na} of {n} water levels in column {col!r} lie above the rating curve's highest gauged "
                        f"stage ({top:g} m): the curve does not describe this record (stages in cm, another datum, "
                        "or the wrong curve?)")
    zero = o.below_h0 == "zero" and nb > 0
    q = res.q.copy()
    if zero:  # h0 is the stage of zero flow by the curve's definition: a stream below it has run dry
        q[res.below] = 0.0
    raw["discharge"] = q
    raw["discharge_extrapolated"] = np.where(np.isfinite(q), res.above.astype(np.float64), np.nan)
    below_days = len(np.unique(raw.index[res.below].normalize())) if zero else 0
    below = (f"{nb} below the curve (read as zero flow, --below_h0 zero, on {below_days} days)" if zero
             else f"{nb} below the curve (masked)")
    summary.append(f"water level -> discharge by the rating curve ({curve.describe()}): {n} values; {below}; {na} above the highest gauged stage (extrapolated "
                   + ("along the line through the table's two highest pairs" if curve.kind == "table" else
                      "with the top segment") + ", "
                   "flagged in discharge_extrapolated)" + (f"; {nn} outside every validity period (masked)" if nn else ""))
    if nb and not zero:
        warnings.append(f"{nb} of {n} water levels in column {col!r} lie below the rating curve ("
                        + (f"its lowest stage {h0:g} m; " if len(periods) == 1 else "")
                        + f"the lowest of them {np.nanmin(h[res.below]):g} m): their discharge is missing")
    if na:
        warnings.append(f"{na} of {n} water levels in column {col!r} lie above the highest gauged stage ("
                        + (f"{top:g} m; " if len(periods) == 1 else "")
                        + f"the highest of them {np.nanmax(h[res.above]):g} m): their discharge is extrapolated "
                        + ("along the line through the table's two highest pairs" if curve.kind == "table" else
                           "with the top segment") + " (days flagged in discharge_extrapolated)")
    return {"values": n, "below_masked": 0 if zero else nb, "above_extrapolated": na, "outside_validity": nn,
            **({"below_zero": nb} if zero else {})}


def discharge_factor(o: ImportOptions) -> float:
    """The factor from the discharge column's unit (``--discharge_unit``: m3/s, l/s, or mm/d with the area) to m3/s."""
    if o.discharge_unit == "mm/d":
        return o.area_km2 / 86.4
    return {"m3/s": 1.0, "l/s": 1e-3}[o.discharge_unit]


# A rating curve that gives a median of this factor or more above (or below) the flows written beside its water
# levels does not describe them: gaugings scatter some 10-20 % about a good curve, and a curve shifted by a bed's
# scour or a change of datum drifts by tens of per cent, while a wrong datum, h0 or unit is off by a factor of 2 or
# more.
CURVE_FLOW_FACTOR = 1.5


def _compare_curve(raw: pd.DataFrame, o: ImportOptions, q_col: str, h_col: str, summary: list,
                   warnings: list) -> None:
    """Say what a rating curve given beside a discharge column does, and how far it lies from the record's pairs.

    The flows are the column's; the curve gives the forecasts' water levels and turns warning levels in stage into
    flows. It is compared with the column at every time that has both values (the curve at the time's water level
    over the flow written there): the summary gives the median and the 5-95 % range of that ratio, and a median
    :data:`CURVE_FLOW_FACTOR` or more away from 1 is warned about, since levels in stage and forecast water levels
    would then follow another river than the flows the model learns.
    """
    q = raw["discharge"].to_numpy(np.float64) * discharge_factor(o)
    curve = o.rating.discharge(raw["stage"].to_numpy(np.float64), raw.index).q
    both = np.isfinite(q) & np.isfinite(curve) & (q > 0) & (curve > 0)
    what = (f"rating curve beside the discharge column {q_col!r}: the flows are that column's; the curve gives the "
            "forecasts' water levels and turns levels in stage into flows")
    if not both.any():
        summary.append(f"{what}; no time has a flow and a water level above the curve's zero-flow stage to compare it "
                       "with")
        return
    ratio = curve[both] / q[both]
    med, lo, hi = (float(np.quantile(ratio, x)) for x in (0.5, 0.05, 0.95))
    summary.append(f"{what}; at the {int(both.sum())} times with both, it gives a median {med:.2f} times the column's "
                   f"flow (5-95 %: {lo:.2f}-{hi:.2f})")
    if not 1 / CURVE_FLOW_FACTOR < med < CURVE_FLOW_FACTOR:
        warnings.append(f"the rating curve gives a median {med:.2f} times the flow of column {q_col!r} at the water "
                        f"levels of column {h_col!r} written beside it ({int(both.sum())} times with both): warning "
                        "levels in stage and forecast water levels would not match the flows the model learns; check "
                        "the curve (a newer one, its datum, h0) and --discharge_unit")


def _check_stage_span(h: np.ndarray, col: str) -> None:
    """DataError where the water levels ``h`` (m) of column ``col`` span more than twice :data:`MAX_DEPTH_M`."""
    span = float(np.nanmax(h) - np.nanmin(h))
    if span > 2 * MAX_DEPTH_M:
        raise DataError(f"the water levels in column {col!r} span {span:g} m (from {np.nanmin(h):g} to {np.nanmax(h):g}); "
                        "no river's level varies that much: stages in cm (the record must be in metres), or a "
                        "missing-value code (name it with --na_value)?")


def check_stage_codes(h: pd.Series, col: str, what: str, stamps) -> None:
    """DataError where the water levels ``h`` (m, as the file writes them) hold a missing-value code
    (:data:`STAGE_CODE_LIKE`) more than :data:`MAX_DEPTH_M` beyond the range of the column's other levels: a level
    of exactly 99.9 in a river whose other levels stay within 50-53 m is a logger's code, which the rating curve would
    turn into a flood (extrapolated above the gauged range, with a warning only) and which, beside a discharge
    column, would be stored as the day's stage. A code within that distance may be a real level and is read."""
    code = h.isin(STAGE_CODE_LIKE)
    rest = h[~code].dropna()
    if not code.any() or rest.empty:
        return
    far = code & ((h > rest.max() + MAX_DEPTH_M) | (h < rest.min() - MAX_DEPTH_M))
    if not far.any():
        return
    raise _code_refusal(col, what, h, far, stamps, f"more than {MAX_DEPTH_M:g} m from its other levels "
                        f"({rest.min():g} to {rest.max():g} m)", "a water level")


def _code_refusal(col: str, what: str, values: pd.Series, code: pd.Series, stamps, how_far: str, kind: str):
    """The DataError of a column whose ``values`` hold a missing-value code where ``code`` is True, ``how_far`` from
    the column's other values: it names the column, the count, the first such value and its row, and the flag."""
    w = values[code].iloc[0]
    return DataError(f"column {col!r} ({what}) has {int(code.sum())} value(s) like {w:g} (first on "
                     f"{first_flagged(stamps, code)}), {how_far}: it looks like a missing-value code, not {kind}; "
                     f"name it with --na_value {w:g} (repeat the flag for several codes)")


def first_flagged(stamps, mask: pd.Series):
    """The first row of ``mask`` (True where a value is refused), as a one-line error names it: its day, or its time
    where the row is stamped within a day (a sub-daily record)."""
    first = stamps[np.flatnonzero(mask.to_numpy())[0]]
    return first.date() if first == first.normalize() else first


def flat_discharge_runs(q: pd.Series, min_days: int = FLAT_DISCHARGE_DAYS) -> list:
    """The runs of ``min_days`` or more consecutive days on which the daily flows ``q`` hold exactly one non-zero
    value, in order: ``[(first day, days, value), ...]``. A missing day ends a run, and so does a change of value."""
    v = q.to_numpy(dtype=float)
    if len(v) == 0:
        return []
    # a new run starts wherever the value differs from the day before (NaN differs from everything)
    starts = np.flatnonzero(np.concatenate([[True], v[1:] != v[:-1]]))
    lengths = np.diff(np.append(starts, len(v)))
    return [(q.index[i].date(), int(n), float(v[i])) for i, n in zip(starts, lengths)
            if n >= min_days and np.isfinite(v[i]) and v[i] != 0]


def check_discharge_codes(q: pd.Series, col: str, what: str, stamps) -> None:
    """DataError where the flows ``q`` (as the file writes them) hold a missing-value code (:data:`CODE_LIKE`) more
    than :data:`CODE_FLOW_RATIO` times the column's highest other value: a flood of exactly 9999 in a stream whose
    other flows stay below 1000 is a logger's code. A code within that ratio may be a big river's real flow and
    is read as written."""
    code = q.isin(CODE_LIKE)
    rest = q[~code].dropna()
    if not code.any() or rest.empty or q[code].min() <= CODE_FLOW_RATIO * rest.max():
        return
    raise _code_refusal(col, what, q, code, stamps, f"more than {CODE_FLOW_RATIO:g} times its other values' highest "
                        f"({rest.max():g})", "a flow")


# Units a column's header or the units row under it may name (as tables.normalise_name writes them), by the
# unit the import reads them as; None: a unit it does not read, which needs converting. Only a unit written in
# brackets, or alone in a units-row cell, is looked at: a header names its unit so, and a name is not a unit.
_NAMED_UNITS = {
    "discharge": {"m3/s": "m3/s", "m^3/s": "m3/s", "立方米/秒": "m3/s", "立方米每秒": "m3/s",
                  "l/s": "l/s", "升/秒": "l/s", "升每秒": "l/s", "mm/d": "mm/d", "mm/day": "mm/d", "毫米/日": "mm/d",
                  "m3/d": None, "m3/h": None, "千m3/d": None, "10^3m3/d": None, "1000m3/d": None, "万m3/d": None,
                  "千立方米/日": None, "千立方米/天": None, "万立方米/日": None, "万立方米/天": None,
                  "ft3/s": None, "cfs": None},
    "stage": {"m": "m", "米": "m", "cm": None, "厘米": None, "mm": None, "毫米": None},
    "precipitation": {"mm": "mm", "毫米": "mm", "0.1mm": "0.1mm", "0.1毫米": "0.1mm", "mm/h": "mm/h", "mm/hr": "mm/h",
                      "毫米/小时": "mm/h", "毫米/时": "mm/h", "cm": None, "厘米": None, "in": None},
    # --precipitation_unit divides the rain only: PET (蒸发量) and temperature are read in mm and degC
    "pet": {"mm": "mm", "毫米": "mm", "mm/d": "mm", "mm/day": "mm", "毫米/日": "mm", "0.1mm": None, "0.1毫米": None,
            "cm": None, "厘米": None, "in": None},
    "temperature": {"°c": "degC", "c": "degC", "degc": "degC", "摄氏度": "degC", "0.1°c": None, "0.1摄氏度": None,
                    "°f": None, "f": None, "degf": None, "k": None},
}


def _named_unit(text, units: dict):
    """The unit ``text`` (a header, or a units-row cell) names among ``units``, as written: ``(unit, read)``, or
    None where it names none of them."""
    t = tables.normalise_name(text)
    for cand in [*(a or b for a, b in re.findall(r"\(([^()]*)\)|\[([^\[\]]*)\]", t)), t]:
        if cand in units:
            return cand, units[cand]
    return None


def check_named_units(cols: dict, units_rows: pd.DataFrame, o: ImportOptions) -> dict:
    """DataError where a column's header, or the units row under it, names a unit the import would not read the
    column in: ``流量(L/s)`` with ``--discharge_unit m3/s`` (flows 1000 times too large, which only the water
    balance, given the area, would catch), ``降水量(0.1mm)`` without ``--precipitation_unit 0.1mm``, ``水位(cm)``,
    ``蒸发量(0.1mm)`` or ``气温(0.1℃)`` (ten times too large, within any range a check could hold them to).
    Returns the keys of the columns whose unit the file names (and the options agree with), each with where it
    is named: ``"header"`` or ``"units row"`` (the last that names it)."""
    named_keys = {}
    for key, col in cols.items():
        kind = "precipitation" if key.startswith("precipitation") else key
        if kind not in _NAMED_UNITS:
            continue
        named = [(col, "header")] + [(v, "units row") for v in units_rows.get(col, pd.Series(dtype="string")).dropna()]
        for text, where in named:
            hit = _named_unit(text, _NAMED_UNITS[kind])
            if hit is None:
                continue
            unit, read = hit
            named_keys[key] = where
            if kind == "discharge" and read is None:
                raise DataError(f"column {col!r} holds discharge in {unit} by its {where}; the import reads m3/s, l/s "
                                "or mm/d (--discharge_unit): convert the column to one of them")
            if kind == "discharge" and read != o.discharge_unit:
                raise DataError(f"column {col!r} holds discharge in {unit} by its {where}, but --discharge_unit is "
                                f"{o.discharge_unit}: give --discharge_unit {read} (or correct the column's unit)")
            if kind == "stage" and read is None:
                raise DataError(f"column {col!r} holds water levels in {unit} by its {where}; the rating curve and the "
                                "import read metres: convert the column to m")
            if kind in ("pet", "temperature") and read is None:
                reads = "PET in mm" if kind == "pet" else "temperature in degrees Celsius"
                raise DataError(f"column {col!r} holds {kind if kind == 'temperature' else 'PET'} in {unit} by its "
                                f"{where}; the import reads {reads}: convert the column to "
                                + ("mm (--precipitation_unit converts the rain only)" if kind == "pet" else "°C"))
            if kind == "precipitation" and read is None:
                raise DataError(f"column {col!r} holds precipitation in {unit} by its {where}; the import reads mm, "
                                "0.1 mm or an intensity in mm/h (--precipitation_unit): convert the column to one of them")
            # rain in mm is the default; rain in 0.1 mm is read so only when the flag says so too, as discharge
            if kind == "precipitation" and read != (o.precipitation_unit or "mm"):
                given = f"is {o.precipitation_unit}" if o.precipitation_unit else "not given (mm)"
                raise DataError(f"column {col!r} holds precipitation in {unit} by its {where}, but --precipitation_unit "
                                f"{given}: give --precipitation_unit {read} (or correct the column's unit)")
    return named_keys


# A running total of rain (累计雨量, as a tipping-bucket logger counts it) rises at every wet step and falls only where
# it is reset; the rain of each period falls back about as often as it rises (the 9 CAMELS-GB and 3 CAMELS-DE sample
# gauges: 1.05-1.10 falls a rise). A column falling at most this share as often as it rises is taken for a running
# total: rain of each period would need storms rising ten steps in a row, on average, to look like one.
RUNNING_TOTAL_FALL_SHARE = 0.1
# Rises a column needs before it is judged so: a few wet steps of a short or dry record say nothing.
RUNNING_TOTAL_MIN_RISES = 20


def check_running_total(p: pd.Series, col: str) -> None:
    """DataError where the rain ``p`` of column ``col`` (in time order) is a running total, not the rain of each
    period: summed per day it would be read as millions of mm, and refused as rain in 0.1 mm, which it is not."""
    d = np.diff(p.dropna().to_numpy(np.float64))
    rises, falls = int((d > 0).sum()), int((d < 0).sum())
    if rises >= RUNNING_TOTAL_MIN_RISES and falls <= RUNNING_TOTAL_FALL_SHARE * rises:
        raise DataError(f"column {col!r} (precipitation) rises in {rises} steps and falls in only {falls}: a running "
                        "total (累计雨量) rather than the rain of each period? Give the rain of each period (时段雨量: "
                        "each value minus the one before it, from each reset of the total)")


def check_annual_precipitation(daily: pd.Series, col: str, named_in: str | None = None,
                               step_minutes: float | None = None) -> None:
    """DataError where the daily rain ``daily`` (mm, of column ``col``, whose unit no option declared) averages more
    than :data:`MAX_UNDECLARED_ANNUAL_PRECIPITATION_MM` a year over at least a year of values: most likely rain
    in 0.1 mm read as mm.

    ``named_in`` (``"header"`` or ``"units row"``): where the file itself says mm. A template's ``降水量(mm)`` over
    integers in 0.1 mm is as likely as an unlabelled column, so the file's word is checked too; the message then
    asks to correct it, since ``--precipitation_unit 0.1mm`` alone is refused against a file that says mm.

    ``step_minutes``: the step of a regular sub-daily record. Below an hour, a rain intensity in mm/h summed per day
    reads 60 / step times its depth (six times at 10-minute readings), which 0.1 mm would turn into 0.6 times: the
    message names ``--precipitation_unit mm/h`` first."""
    v = daily.dropna()
    if len(v) < MIN_DAYS_FOR_ANNUAL_PRECIPITATION:
        return
    annual = float(v.mean()) * 365.25
    if annual > MAX_UNDECLARED_ANNUAL_PRECIPITATION_MM:
        # A gauge read in the flood season only (汛期) has its season's rate scaled to a year: say so, so that its
        # user knows why a wet-season total reads as an annual one (the remedy is the same flag).
        span = (v.index[-1] - v.index[0]).days + 1
        seasonal = (f" (its values cover {len(v) / span:.0%} of the days from first to last: a gauge read in the "
                    "flood season only counts at its season's rate)" if len(v) < 0.8 * span else "")
        if named_in is None:
            tenths = "give --precipitation_unit 0.1mm"
        else:  # the header's name is what --map names the column by: a corrected header is a new name there too
            tenths = (f"correct its {named_in} to (0.1mm)" + (" (and the column's name in --map)"
                                                              if named_in == "header" else "")
                      + " and give --precipitation_unit 0.1mm")
        intensity = (f"if the column is a rain intensity in mm/h (readings every {step_minutes:g} minutes: summed per "
                     f"day it reads {60 / step_minutes:g} times the rain) give --precipitation_unit mm/h; "
                     if step_minutes is not None and step_minutes < 60 else "")
        raise DataError(f"column {col!r} (precipitation): mean annual total {annual:.0f} mm over "
                        f"{len(v) / 365.25:.1f} years of values{seasonal}, more than almost any rain gauge records"
                        + (f", though its {named_in} says mm" if named_in else "") + f"; {intensity}if the column is "
                        f"in 0.1 mm {tenths}, if the station really is that wet give --precipitation_unit mm")


# Rows under the header or at the end of a table whose date cell holds no digit at all: a units row
# ("(mm)", "(m3/s)") or a summary row ("合计", "平均", "Total"). A date always holds digits.
MAX_LABEL_ROWS = 3


class _NoDigit:
    """``no_digit[i]``: True where cell ``i`` of ``col`` holds no digit (an empty cell none), read cell by cell."""

    def __init__(self, col: pd.Series):
        self.col = col

    def __getitem__(self, i: int) -> bool:
        v = self.col.iloc[i]
        return v is pd.NA or v is None or (isinstance(v, float) and np.isnan(v)) or re.search(r"\d", str(v)) is None


def _trailing_blank_rows(frame: pd.DataFrame) -> int:
    """How many rows at the end of ``frame`` have nothing in any cell (missing, or only spaces), looked for from the
    end in growing blocks rather than in every cell of the table."""
    n, end, block = len(frame), len(frame), 64
    while end > 0:
        start = max(0, end - block)
        part = frame.iloc[start:end]
        blank = part.apply(lambda c: c.isna() | (c.astype("string").str.strip() == "")).all(axis=1).to_numpy()
        if not blank.all():
            return n - (start + int(np.flatnonzero(~blank)[-1]) + 1)
        end, block = start, block * 4
    return n


def _check_date_beside_time(dates: pd.Series, times: pd.Series, date_col: str, time_col: str, rows) -> None:
    """Refuse a row of a date column and a time column that gives only one of the two.

    A blank time beside a date is no midnight (a reading at midnight is written 0:00): read as one, it would move
    the reading to the day before an 08:00 day start. A blank date beside a time (a book that writes the day on a
    day's first reading only) is no day to guess. Rows blank in both are left to the date reader.

    Raises
    ------
    DataError
        Naming the column, the first such row (its file row), what stands beside it and how many there are.
    """
    def blank(s: pd.Series) -> np.ndarray:
        return (s.isna() | (s.astype("string").str.strip() == "")).to_numpy(dtype=bool)

    for missing, given, col, other, fix in (
            (blank(times), blank(dates), time_col, dates, "write each reading's time of day (0:00 for midnight), "
             "or delete a row that holds no reading"),
            (blank(dates), blank(times), date_col, times, "write the date on every row, a day's later readings too")):
        only = np.flatnonzero(missing & ~given)
        if len(only):
            i = int(only[0])
            raise DataError(f"{'time' if col == time_col else 'date'} column {col!r} is empty on row {rows[i]} beside "
                            f"{str(other.iloc[i]).strip()!r} ({len(only)} such row(s)); {fix}")


def _drop_label_rows(frame: pd.DataFrame, date_col: str, rows, summary: list, date_format: str | None = None):
    """``(frame, rows, head)``: ``frame`` without up to :data:`MAX_LABEL_ROWS` leading and trailing rows whose date
    cell has no digit (trailing: or holds words, a note or a summary row with a year in it), and leading
    rows whose date cell is empty while another cell holds text that is not a number (a units row under the header,
    ``,(mm),(℃),(m3/s)``); the file rows ``rows`` [len(frame)] of the rows kept; and how many were dropped at the
    head."""
    rows = np.asarray(rows)
    # Rows with nothing in any cell at the end (a spreadsheet's formatted empty rows, a trailing ",,,") carry
    # nothing: dropped, however many, before anything else is looked at.
    n_blank = _trailing_blank_rows(frame)
    if n_blank:
        frame, rows = frame.iloc[:len(frame) - n_blank].reset_index(drop=True), rows[:len(frame) - n_blank]
        summary.append(f"skipped {n_blank} empty row(s) at the end")
    # Only the first and last few date cells are ever looked at: a pass over every cell of a ten-year hourly
    # record was a tenth of its import.
    no_digit = _NoDigit(frame[date_col])
    others = frame.drop(columns=[date_col])

    def units_row(i: int) -> bool:
        cells = others.iloc[i].dropna().astype(str).str.strip()
        cells = cells[cells != ""]
        return len(cells) > 0 and pd.to_numeric(cells.str.replace(",", ".", regex=False), errors="coerce").isna().any()

    head = 0
    while head < min(MAX_LABEL_ROWS, len(frame)) and no_digit[head] and (
            frame[date_col].iloc[head] is not pd.NA or units_row(head)):
        head += 1
    def note(i: int) -> bool:
        """A note or a summary row under the table (注：2018年7月资料为插补值, "Total 2018-2020"): words in the date
        cell, with a year among them perhaps (no date form holds two letters but 年月日)."""
        text = str(frame[date_col].iloc[i])
        if sum(c.isalpha() for c in re.sub(r"[年月日时分秒T]", "", text)) < 2:
            return False
        try:  # 05-Jan-2020 under --date_format %d-%b-%Y is a date
            tables.parse_dates([text], date_format)
        except DataError:
            return True
        return False

    tail = 0
    while (tail < MAX_LABEL_ROWS and len(frame) - tail - 1 >= head and frame[date_col].iloc[len(frame) - tail - 1]
           is not pd.NA and (no_digit[len(frame) - tail - 1] or note(len(frame) - tail - 1))):
        tail += 1
    if not head and not tail:
        return frame, rows, 0
    shown = lambda i: (str(frame[date_col].iloc[i]) if frame[date_col].iloc[i] is not pd.NA  # noqa: E731
                       else " ".join(others.iloc[i].dropna().astype(str)))
    dropped = [shown(i) for i in range(head)] + [shown(i) for i in range(len(frame) - tail, len(frame))]
    summary.append(f"skipped {head + tail} row(s) whose date cell is a label, not a date: {dropped}")
    out = frame.iloc[head:len(frame) - tail].reset_index(drop=True)
    if len(out) == 0:
        raise DataError(f"no data rows: every row's date cell is a label ({dropped[:3]})")
    return out, rows[head:len(frame) - tail], head


def _drop_repeated_rows(stamps: pd.DatetimeIndex, vals: dict, rows, name: str, o: ImportOptions, summary: list):
    """``(stamps, vals, rows)`` without the rows that repeat an earlier row's time and values (two exports that
    overlap, pasted one under the other), said in ``summary``; a DataError naming both rows where a time appears
    twice with different values, which cannot be told apart (a clock on summer time repeats an hour when it ends:
    the message says so where such an hour is repeated, on a Sunday night, and no --timezone was given)."""
    idx = pd.DatetimeIndex(stamps)
    later = idx.duplicated(keep="first")
    zone = o.timezone or o.station_timezone
    if later.any() and zone is not None:  # the hour a zone's clock repeats: told apart by it (days.to_station_time)
        from .days import parse_zone

        local = idx.tz_localize(parse_zone(zone), ambiguous="NaT", nonexistent="shift_forward")
        later &= ~np.asarray(local.isna())
    if not later.any():
        return stamps, vals, rows
    values = pd.DataFrame({k: v.to_numpy(np.float64) for k, v in vals.items()}, index=idx)
    first = values[~later].reindex(idx[later]).to_numpy()
    again = values[later].to_numpy()
    same = ((again == first) | (np.isnan(again) & np.isnan(first))).all(axis=1)
    where = np.flatnonzero(later)
    row = lambda i: tables.file_row(rows, int(i))  # noqa: E731
    if not same.all():
        i = where[~same][0]
        j = int(np.flatnonzero(idx == idx[i])[0])
        daily = bool((idx == idx.normalize()).all())
        when = idx[i].date() if daily else idx[i]
        clock = not daily and zone is None and idx[i].day_of_week == 6 and idx[i].hour < 4
        raise DataError(f"date column {name!r} has duplicate {'dates' if daily else 'times'}: {when} on rows {row(j)} "
                        f"and {row(i)}, with different values; expected one row per {'day' if daily else 'time'}"
                        + ("; a clock on summer time repeats an hour when it ends: give --timezone, the zone whose "
                           "clock wrote them (e.g. Europe/Berlin)" if clock else ""))
    keep = ~later
    summary.append(f"dropped {int(later.sum())} repeated row(s), each the same time and values as an earlier row "
                   f"(first: row {row(where[0])}, as row {row(np.flatnonzero(idx == idx[where[0]])[0])}; exports "
                   "that overlap?)")
    rows = np.asarray(rows)[keep] if np.ndim(rows) else np.arange(len(idx))[keep] + rows
    return (pd.DatetimeIndex(idx[keep]), {k: v[keep].reset_index(drop=True) for k, v in vals.items()}, rows)


def _to_days(raw: pd.DataFrame, o: ImportOptions, name: str, gauge_keys: list, summary: list):
    """Daily rows from the record: a daily one placed by the day rule, a sub-daily one aggregated.

    Returns (daily frame on a gap-free DatetimeIndex, days without a row, sub-daily provenance or None).
    """
    from .days import aggregate_to_days, days_of

    idx = raw.index
    steps = np.diff(idx.as_unit("s").asi8)
    zone = o.station_timezone or o.timezone
    rule = (f"day rule: {o.day_start} to {o.day_start} "
            + (f"standard time of {zone}" if zone else "in the timestamps' own clock")
            + f", labelled by its {o.day_label} date")
    if not (idx == idx.normalize()).all() and readings.is_irregular(idx, days_of(idx, o.day_start, o.stamp, o.day_label, o.timezone, o.station_timezone)):
        _no_intensity(o, "irregular readings (an excerpt record), whose periods differ from reading to reading")
        return _irregular_to_days(raw, o, name, gauge_keys, summary, rule)
    if len(idx) >= 2 and float(np.median(steps)) < 86400 and not idx.duplicated().all():
        how = {k: "sum" for k in gauge_keys}
        how.update({k: r for k, r in (("temperature", "mean"), ("pet", "sum"), ("discharge", ("mean", "max")),
                                      ("stage", ("mean", "max")), ("discharge_extrapolated", "max")) if k in raw})
        res = aggregate_to_days(raw[list(how)], o.day_start, o.timezone, o.stamp, o.day_label, how, o.max_missing,
                                o.station_timezone)
        daily = res.frame.rename(columns={"discharge_extrapolated_max": "discharge_extrapolated"})
        if o.precipitation_unit == "mm/h":  # each reading's depth is its intensity times its step: the sums likewise
            hours = res.step / pd.Timedelta(hours=1)
            daily[gauge_keys] = daily[gauge_keys] * hours
            summary.append(f"precipitation: an intensity in mm/h -> mm (x {hours:g} h, the readings' step)")
        summary.append(f"{rule}; a timestamp marks the {o.stamp} of its interval")
        summary.append(res.summary(o.max_missing))
        sub = {"step_minutes": res.step / pd.Timedelta(minutes=1), "hold_minutes": res.hold / pd.Timedelta(minutes=1),
               "max_missing": o.max_missing, "days": res.counts}
        return daily, 0, {"subdaily": sub}
    _no_intensity(o, "daily rows")
    if (idx == idx.normalize()).all():  # dates without a time of day already name their days
        days = pd.DatetimeIndex(idx, name="date")
    else:  # one timestamp a day (e.g. a reading at 08:00): the day, by the rule, its interval starts in
        days = days_of(idx, o.day_start, o.stamp, o.day_label, o.timezone, o.station_timezone)
    if (days != days.normalize()).any():  # pragma: no cover - days_of returns dates
        raise DataError(f"date column {name!r}: could not place the values on days")
    _check_timestep(days, name)
    daily = raw.set_axis(days)
    full = pd.date_range(daily.index[0], daily.index[-1], freq="D", name="date")
    return daily.reindex(full), len(full) - len(daily), None


def _no_intensity(o: ImportOptions, record: str) -> None:
    """UsageError where ``--precipitation_unit mm/h`` is given for a record that is not regular sub-daily
    (``record`` says what it is): an intensity becomes a depth only over a known, fixed step."""
    if o.precipitation_unit == "mm/h":
        raise DataError(f"--precipitation_unit mm/h (a rain intensity) is read for a record of regular sub-daily "
                         f"readings, times their step; this record is read as {record}: give the rain of each period "
                         "in mm")


def _irregular_to_days(raw: pd.DataFrame, o: ImportOptions, name: str, gauge_keys: list, summary: list, rule: str):
    """Daily rows from an excerpt record (one reading on ordinary days, several on flood days) by the area method
    of :mod:`.readings`; returns what :func:`_to_days` returns, the provenance under ``irregular``."""
    dup = raw.index.duplicated()
    if dup.any():
        raise DataError(f"date column {name!r}: timestamp {raw.index[dup][0]} appears twice; expected one row per "
                        "reading")
    how = {k: "sum" for k in (*gauge_keys, "pet") if k in raw}
    how.update({k: r for k, r in (("temperature", "mean"), ("discharge", ("mean", "max")), ("stage", ("mean", "max")),
                                  ("discharge_extrapolated", "any")) if k in raw})
    gap = readings.MAX_READING_GAP if o.max_reading_gap is None else pd.Timedelta(hours=o.max_reading_gap)
    daily, counts = readings.readings_to_days(raw[list(how)], how, o.day_start, o.day_label, o.timezone,
                                              o.station_timezone, max_gap=gap)
    gap_h = gap / pd.Timedelta(hours=1)
    means = ", ".join(k for k in ("discharge", "stage", "temperature") if k in how).replace("stage", "water level")
    summary.append(rule)
    summary.append(f"irregular readings (an excerpt record): {counts['one_reading']} days from 1 reading a day "
                   f"interpolated, {counts['several_readings']} flood days with several, {counts['no_reading']} "
                   f"without a reading; {means}: each day's time-weighted mean of the line between readings (area "
                   f"method, the values at {o.day_start} interpolated"
                   + ("; each water level converted to discharge before averaging" if "stage" in raw else "")
                   + f"); precipitation{' and PET' if 'pet' in how else ''}: the sum of the readings in the day, each "
                   f"the amount of the period ending at its time (a reading at {o.day_start} closes the day before); "
                   f"days inside a gap of more than {gap_h:g} hours between readings left missing (--max_reading_gap); "
                   "days whose amount a reading holds together with another day's (a day without a reading in its "
                   "period: the amount cannot be split by day) left missing: "
                   + ", ".join(f"{k} {n}" for k, n in counts["accumulated"].items()))
    sub = {"max_gap_hours": gap_h, "one_reading_days": counts["one_reading"],
           "several_readings_days": counts["several_readings"], "no_reading_days": counts["no_reading"],
           "missing": counts["missing"], "accumulated_days": counts["accumulated"]}
    return daily, 0, {"irregular": sub}


def _combine_gauges(daily: pd.DataFrame, keys: list, o: ImportOptions, summary: list) -> pd.Series:
    """Areal precipitation: the weighted mean of the gauges present each day (weights renormalised)."""
    p = daily[keys].to_numpy(np.float64)
    if len(keys) == 1:
        return pd.Series(p[:, 0], index=daily.index)
    w = np.asarray(o.precipitation_weights or [1.0 / len(keys)] * len(keys), np.float64)
    present = np.isfinite(p)
    wsum = (present * w).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        val = np.where(wsum > 0, np.nansum(np.where(present, p, 0.0) * w, axis=1) / wsum, np.nan)
    partial = int((present.any(axis=1) & ~present.all(axis=1)).sum())
    how = ("Thiessen weights " + ", ".join(f"{g} {x:g}" for g, x in zip(o.gauges, w))
           if o.precipitation_weights else "their mean")
    summary.append(f"precipitation: {len(keys)} gauges by {how}; {partial} days with a gauge missing (weights "
                   "renormalised over the gauges present that day)")
    return pd.Series(val, index=daily.index)


# ------------------------------------------------------------------------------------------ preparing
def prepare_station(frame: pd.DataFrame, o: ImportOptions, source: str = "DataFrame", sha256: str = "",
                    static_attributes=(), table: tables.Table | None = None) -> PreparedStation:
    """Validate and convert one station's table (cells as read) into the layout's columns.

    ``table`` (from :func:`read_station_file`) tells how the file was read: encoding, sheet, title rows,
    and whether plain numbers in the date column are Excel serial days. Raises DataError / UsageError
    naming the culprit; writes nothing.
    """
    o = check_options(o)
    m = o.mapping
    summary, warnings = [], []
    if table is not None:
        summary.append(f"read {Path(source).name}: {table.describe()}")
    wanted = {k: v for k, v in m.items() if k != "precipitation"}
    gauge_keys = ["precipitation"] if len(o.gauges) == 1 else [f"precipitation {i + 1}" for i in range(len(o.gauges))]
    wanted.update(zip(gauge_keys, o.gauges))
    hint = None
    if table is not None and table.kind != "csv":
        others = tables.sheet_listing(table.sheets, leaving=table.sheet)
        hint = f" (read from sheet {table.sheet!r}" + (f"; another with --sheet: {others})" if others else ")")
    cols = tables.match_columns(frame.columns, wanted, source, hint=hint)
    # the file row of each row, for messages (blank rows the reader dropped count in the numbers after them)
    rows = table.rows if table is not None and len(table.frame) == len(frame) else np.arange(len(frame)) + 2
    labelled = frame
    frame, rows, head = _drop_label_rows(frame, cols["date"], rows, summary, o.date_format)
    named_keys = check_named_units(cols, labelled.iloc[:head], o)  # the header's units and the units row's
    cells = frame[cols["date"]]
    excel = table is not None and table.kind in ("xlsx", "xls")
    epoch = table.excel_epoch if table is not None else None
    if "time" in cols:  # a date column and a time column; a spreadsheet's date cell carries a midnight time
        _check_date_beside_time(frame[cols["date"]], frame[cols["time"]], cols["date"], cols["time"], rows)
        times, hours = tables.whole_hours(frame[cols["time"]], excel)
        if hours:
            summary.append(f"time column {cols['time']!r}: {hours} cell(s) holding a whole number from 0 to 23 read "
                           "as that hour (8 as 08:00)")
        if excel:  # cells not formatted as dates: Excel's serial day and fraction of a day, as Excel means them
            cells, times = tables.excel_date_and_time(cells, times, epoch)
        cells = (cells.fillna("").str.replace(r"[ T]00:00(:00)?$", "", regex=True) + " " + times.fillna(""))
    try:
        stamps = tables.parse_dates(cells, o.date_format, column=m["date"], first_row=rows, excel_serial=excel,
                                    epoch=epoch)
    except DataError as e:
        if "time" not in cols:
            raise
        fix = "; in Excel, format the two columns as a date and a time" if excel else ""
        raise DataError(f"{e} (the date column {cols['date']!r} and the time column {cols['time']!r} are read "
                        f"together, as 'date time'{fix})") from None
    what = {"discharge": f"discharge, {o.discharge_unit}", "stage": "water level, m", "temperature": "temperature, degC",
            "pet": "PET, mm/d"}
    tenths = o.precipitation_unit == "0.1mm"
    what.update({k: "precipitation, 0.1 mm" if tenths else "precipitation, mm" for k in gauge_keys})
    typed = {}
    if table is not None and table.number_cells is not None and len(table.frame) == len(labelled):
        at = np.searchsorted(table.rows, rows)  # the sheet's rows kept past the label rows
        typed = {k: table.number_cells[cols[k]].iloc[at] for k in what if k in cols}
        texts = sum(int((frame[cols[k]].notna().to_numpy() & ~typed[k].to_numpy()).sum()) for k in typed)
        marks = " and ".join(f for f, v in (("--decimal ,", o.decimal == ","), (f"--thousands {o.thousands!r}",
                                                                                 o.thousands is not None)) if v)
        if marks and texts:
            summary.append(f"{marks}: read in the {texts} value cell(s) of sheet {table.sheet!r} holding text; its "
                           "number cells are numbers already")
        elif marks:  # a spreadsheet's numbers carry no decimal mark: the flag was meant for a CSV, or is not needed
            warnings.append(f"{marks} changes nothing for {Path(source).name}: every value of sheet {table.sheet!r} is "
                            "a number cell, which has no decimal mark or grouping to read")
    vals = {k: _numeric(frame[cols[k]], cols[k], what[k], o.decimal, rows, o.thousands, typed.get(k))
            for k in what if k in cols}
    codes = [c for c in (_float_or_none(v) for v in o.na_values) if c is not None]
    if codes:  # numeric missing-value codes match however they are written (-999, -999.0, -999,00)
        vals = {k: v.mask(v.isin(codes)) for k, v in vals.items()}
    stamps, vals, rows = _drop_repeated_rows(stamps, vals, rows, m["date"], o, summary)
    # Rain in 0.1 mm is mm from here on; a value to find in the file or to give --na_value is quoted as written.
    written = {k: vals[k] for k in gauge_keys}
    if tenths:
        vals.update({k: vals[k] / 10.0 for k in gauge_keys})
        summary.append("precipitation: 0.1 mm -> mm (/ 10)")
    for k in ("discharge", *gauge_keys, "pet"):
        if k in vals and (vals[k] < 0).any():
            neg = vals[k] < 0
            unit = "precipitation, mm/d" if k.startswith("precipitation") and not tenths else what[k]
            v = written.get(k, vals[k])[neg].iloc[0]
            raise DataError(f"column {cols[k]!r} ({unit}) has {int(neg.sum())} negative values (first on "
                            f"{first_flagged(stamps, neg)}: {v:g}); it "
                            "must be >= 0 (if they mark missing values, name them with --na_value)")
    for k in gauge_keys:  # a missing-value code left in the rain column would become a deluge
        # a code is compared as the file writes it (9999 in 0.1 mm), unless in mm it is ordinary rain (999 in 0.1 mm
        # is 99.9 mm)
        bad = (vals[k] > MAX_PRECIPITATION_MM) | (written[k].isin(CODE_LIKE) & (vals[k] >= min(CODE_LIKE)))
        if bad.any():
            v, w = vals[k][bad].iloc[0], written[k][bad].iloc[0]
            when = first_flagged(stamps, bad)
            if w in CODE_LIKE:
                raise DataError(f"column {cols[k]!r} ({what[k]}) has {int(bad.sum())} value(s) like {w:g} "
                                f"(first on {when}): it looks like a missing-value code, not rain; name it with "
                                f"--na_value {w:g} (repeat the flag for several codes)")
            raise DataError(f"column {cols[k]!r} ({what[k]}) has {v:g} mm on {when}"
                            + (f" ({w:g} as written, in 0.1 mm)" if tenths else "")
                            + f": no rain is that large (more than {MAX_PRECIPITATION_MM:g} mm in one row); a "
                            "missing-value code (name it with --na_value)"
                            + ("" if tenths else " or another unit (0.1 mm? give --precipitation_unit 0.1mm)"))
    if "pet" in vals and (vals["pet"] > MAX_PET_MM).any():  # a code (9999) left in would be read as evaporation
        big = vals["pet"] > MAX_PET_MM
        raise DataError(f"column {cols['pet']!r} (PET, mm/d) has {int(big.sum())} value(s) above {MAX_PET_MM:g} mm "
                        f"(first on {first_flagged(stamps, big)}: {vals['pet'][big].iloc[0]:g}); no evaporation is "
                        "that large in one row: a missing-value code (name it with --na_value), or PET in 0.1 mm "
                        "(convert the column to mm)?")
    if "discharge" in vals:  # 9999 left in a small stream's flows would be read as a flood nobody saw
        check_discharge_codes(vals["discharge"], cols["discharge"], what["discharge"], stamps)
    if "stage" in vals:  # and 99.9 in a water level as a flood through the curve, or stored as the day's stage
        check_stage_codes(vals["stage"], cols["stage"], what["stage"], stamps)
    if "temperature" in vals and ((vals["temperature"] < -60) | (vals["temperature"] > 60)).any():
        out = (vals["temperature"] < -60) | (vals["temperature"] > 60)
        raise DataError(f"column {cols['temperature']!r} (temperature, degC) has {int(out.sum())} value(s) outside "
                        f"-60..60 degC (first on {first_flagged(stamps, out)}: "
                        f"{vals['temperature'][out].iloc[0]:g}); is it in degrees Celsius (not 0.1 degC or F), or "
                        "a missing-value code (name it with --na_value)?")
    for k in ("discharge", "stage"):
        if k in vals and not vals[k].notna().any():
            raise DataError(f"column {cols[k]!r} ({k}) has no values: every cell is missing")
    if not any(vals[k].notna().any() for k in gauge_keys):
        raise DataError(f"column {cols[gauge_keys[0]]!r} (precipitation) has no values: every cell is missing")

    raw = pd.DataFrame({k: v.to_numpy() for k, v in vals.items()}, index=pd.DatetimeIndex(stamps))
    raw = raw.sort_index()
    for k in gauge_keys:  # before the days are summed: a running total summed is no rain to read in any unit
        check_running_total(raw[k], cols[k])
    rating_meta = None
    if "stage" in raw:
        rating_meta = _stage_to_discharge(raw, o, cols["stage"], summary, warnings, "discharge" not in cols)
        if "discharge" in cols and o.rating is not None:
            _compare_curve(raw, o, cols["discharge"], cols["stage"], summary, warnings)
    daily, n_rows_missing, sub = _to_days(raw, o, m["date"], gauge_keys, summary)
    if o.max_reading_gap is not None and "irregular" not in (sub or {}):
        # given for every station of a spec, say: not refused, but its user learns it did nothing here
        warnings.append(f"--max_reading_gap {o.max_reading_gap:g} changes nothing for station {o.station_id}: it "
                        "applies to excerpt records (irregular readings), and this record is read as "
                        + ("regular sub-daily rows (how much of a day may lack values is --max_missing)" if sub
                           else "daily rows"))
    for k in gauge_keys:
        # No option said the unit: read as mm if it can be. A header or units row saying mm is checked as well
        # (templates carry 降水量(mm) over values in 0.1 mm); 0.1 mm named there has the flag to match already.
        if o.precipitation_unit is None:
            check_annual_precipitation(daily[k], cols[k], named_keys.get(k),
                                       (sub or {}).get("subdaily", {}).get("step_minutes"))
    ts = pd.DataFrame(index=daily.index)
    ts["precipitation"] = _combine_gauges(daily, gauge_keys, o, summary)
    for k in ("temperature", "pet"):
        if k in daily:
            ts[k] = daily[k]
    q = daily["discharge"]
    runs = flat_discharge_runs(q)
    if runs:  # a stuck logger or a filled gap (or a regulated release): said, kept as written
        day, n, v = runs[0]
        n_days = sum(r[1] for r in runs)
        src = (f"column {cols['discharge']!r} ({what['discharge']})" if "discharge" in cols
               else f"discharge from column {cols['stage']!r} (water level)")
        more = f" ({len(runs)} such runs, {n_days} days in all)" if len(runs) > 1 else ""
        warnings.append(f"{src} stays at exactly {v:g} for {n} days from {day}{more}: a stuck logger or a filled "
                        "gap? They are kept as written (a regulated river can run flat); if they were not measured, "
                        "empty those cells and import again")
        summary.append(f"discharge: {n_days} days in runs of {FLAT_DISCHARGE_DAYS} days or more at one same "
                       f"non-zero value ({len(runs)} run{'s' if len(runs) > 1 else ''})")
    if o.discharge_unit == "l/s":
        summary.append("discharge: l/s -> m3/s (/ 1000)")
    if o.discharge_unit == "mm/d":
        summary.append(f"discharge: mm/d -> m3/s (x area {o.area_km2:g} km2 / 86.4); kept as discharge_spec (mm/d)")
    factor = discharge_factor(o)
    ts["discharge_vol"] = q * factor
    if o.area_km2 is not None:
        ts["discharge_spec"] = q if o.discharge_unit == "mm/d" else ts["discharge_vol"] * 86.4 / o.area_km2
        if o.discharge_unit != "mm/d":
            summary.append("discharge_spec (mm/d) = discharge_vol x 86.4 / area")
    for k in ("discharge_max", "stage", "stage_max", "discharge_extrapolated"):
        if k in daily:
            ts[k] = daily[k] * (factor if k == "discharge_max" else 1.0)

    n_obs = int(ts["discharge_vol"].notna().sum())
    obs_days = ts.index[ts["discharge_vol"].notna()]
    if n_obs < MIN_OBSERVED_DAYS:
        masked = (f"; {rating_meta['below_masked']} of {rating_meta['values']} water levels lay below the rating "
                  "curve and have no discharge (check its zero-flow stage h0; a stream that runs dry below it: --below_h0 zero)"
                  if rating_meta and rating_meta["below_masked"] else "")
        span = f" ({obs_days[0].date()}..{obs_days[-1].date()})" if n_obs else ""
        # A book kept a sheet a year: one sheet is read, and its year alone is too short; the others are named.
        others = tables.sheet_listing(table.sheets, leaving=table.sheet) \
            if table is not None and table.kind != "csv" and len(table.sheets) > 1 else ""
        sheets = (f"; read from sheet {table.sheet!r} only (its other sheets: {others}): a record kept a sheet a year "
                  "is imported from one sheet holding every year, copied one under the other below one header (or "
                  "a CSV of it)") if others else ""
        raise DataError(f"station {o.station_id}: {n_obs} days of observed discharge{span}; the minimum is "
                        f"{MIN_OBSERVED_DAYS} days (2 years){masked}{sheets}")
    check_water_balance(ts, o)
    summary.extend(check_level_flows(ts["discharge_vol"], o.warning_levels, o.rating))
    if n_obs < WARN_OBSERVED_DAYS:
        warnings.append(f"station {o.station_id}: only {n_obs} days ({n_obs / 365.25:.1f} years) of observed "
                        f"discharge; fine-tuning works, but its test part is short and its scores uncertain")
    period = f"{ts.index[0].date()}..{ts.index[-1].date()}"
    at = 1 if table is not None else 0
    summary.insert(at, f"read {len(frame)} rows: {len(ts)} days {period}"
                       + (f" ({n_rows_missing} days without a row, left missing)" if n_rows_missing else ""))
    gaps = {c: int(ts[c].isna().sum()) for c in ts.columns}
    summary.insert(at + 1, "missing days per column: " + ", ".join(f"{c} {n}" for c, n in gaps.items()))

    computed = climate_attributes(ts, o.lat)
    attrs = {k: v for k, v in computed.items() if k not in o.attributes}
    attrs.update(o.attributes)
    for name, v in (("area", o.area_km2), ("gauge_lat", o.lat), ("gauge_lon", o.lon)):
        if v is not None:
            attrs[name] = float(v)
    computed = [k for k in computed if k not in o.attributes]
    wanted = list(static_attributes)
    if wanted:
        for name in o.attributes:
            if name not in wanted:
                near = difflib.get_close_matches(name, wanted, n=1)
                warnings.append(f"--attr {name}: not an attribute the model reads"
                                + (f" (did you mean {near[0]}?)" if near else "")
                                + "; it is stored, but no model will use it")
        have = [a for a in wanted if a in attrs]
        summary.append(f"static attributes the model reads: {len(have)} of {len(wanted)} known "
                       f"({', '.join(have) or 'none'})")
        summary.append("unknown, masked for the model: " + (", ".join(a for a in wanted if a not in attrs) or "none"))
    if computed:
        summary.append("computed from the station's meteorology (CAMELS-GB definitions): " + ", ".join(computed))
    if "pet" not in ts and "temperature" not in ts:
        summary.append("no PET column and no temperature: the PET input is masked where a model reads it")
    elif "pet" not in ts and attrs.get("gauge_lat") is None:
        # Oudin PET needs the latitude (the day's extraterrestrial radiation): without it a model reading PET gets
        # none on any day, though the user knows the number
        warnings.append(f"station {o.station_id}: no PET column and no --lat: PET cannot be derived from the "
                        "temperature (Oudin needs the gauge's latitude) and is masked on every day where a model reads "
                        "it; give --lat (degrees north) to derive it")
    elif "pet" not in ts:
        summary.append("no PET column: PET is derived from temperature and the gauge's latitude (Oudin) where a model "
                       "reads it")
    if "temperature" not in ts:
        summary.append("no temperature column: the temperature input is masked")
    provenance = {"source": source, "source_sha256": sha256,
                  "mapping": m, "discharge_unit": o.discharge_unit, "precipitation_unit": o.precipitation_unit or "mm",
                  "sep": o.sep, "decimal": o.decimal, "thousands": o.thousands,
                  "date_format": o.date_format, "na_values": list(o.na_values),
                  "units_written": {"precipitation": "mm/d", "temperature": "degC", "pet": "mm/d",
                                    "discharge_vol": "m3/s", "discharge_spec": "mm/d", "discharge_max": "m3/s",
                                    "stage": "m", "stage_max": "m"},
                  "record": {"start": str(ts.index[0].date()), "end": str(ts.index[-1].date()), "days": len(ts),
                             "observed_discharge_days": n_obs, "missing_per_column": gaps},
                  "attributes": attrs, "computed_attributes": computed,
                  "imported_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}
    if table is not None:
        provenance["read"] = {"kind": table.kind, "encoding": table.encoding, "sheet": table.sheet,
                              "header_row": table.header_row + 1}
    if sub is not None:
        provenance.update(sub)
    if rating_meta is not None:
        provenance["rating_applied"] = rating_meta
        provenance["below_h0"] = o.below_h0
    if len(o.gauges) > 1:
        provenance["precipitation_gauges"] = {"columns": o.gauges, "weights": o.precipitation_weights
                                              or [1.0 / len(o.gauges)] * len(o.gauges)}
    meta = StationMeta(o.station_id, warning_levels=dict(o.warning_levels),
                       rating_curve=o.rating.to_dict() if o.rating is not None else None,
                       day_start=o.day_start, day_label=o.day_label, stamp=o.stamp,
                       timezone=o.station_timezone or o.timezone, provenance=provenance,
                       distribution=o.distribution, water_year_start=o.water_year_start).to_dict()
    return PreparedStation(o.station_id, ts, attrs, computed, meta, summary, warnings)




def import_files(jobs) -> list:
    """Import stations from files: ``jobs`` is a list of ``(file, out_dir, ImportOptions)``.

    Every station is read and checked, and every output folder (not a file, no id twice), before any is
    written; then each output folder is written all or nothing. Returns ``[(out_dir, PreparedStation), ...]`` (summary lines and warnings to show).
    """
    static = default_static_attributes()
    prepared = []
    for file, out_dir, o in jobs:
        o = check_options(o)
        check_separators(o, file)
        out_dir = Path(out_dir).expanduser()
        check_clash(out_dir, o.station_id, o.overwrite)
        check_stored_precipitation_unit(out_dir, o.station_id, o.precipitation_unit, o.overwrite)
        table = read_station_file(file, o.sep, o.na_values, o.encoding, o.sheet, o.skiprows, o.header_names())
        st = prepare_station(table.frame, o, source=str(file), sha256=table.sha256, static_attributes=static,
                             table=table)
        st.meta["source"] = str(Path(file).expanduser().resolve())
        prepared.append((out_dir, o.overwrite, st))
    for out in dict.fromkeys(p[0] for p in prepared):  # every folder checked before the first is written
        check_out_dir(out, [st.station_id for o, _, st in prepared if o == out])
    for out in dict.fromkeys(p[0] for p in prepared):
        ts = out / "timeseries"
        if ts.is_dir() and any(reader.is_camels_gb_name(n) for n in os.listdir(ts)):
            log.warning("--out %s is a CAMELS-GB dataset folder: the station is added to it; a folder of your own "
                        "stations (e.g. ./my_stations) keeps the dataset as it was downloaded", out)
        write_stations(out, [st for o, _, st in prepared if o == out],
                       overwrite=any(ov for o, ov, _ in prepared if o == out))  # each was checked above
    return [(o, st) for o, _, st in prepared]


# ------------------------------------------------------------------------------------------ Python API
def default_static_attributes() -> list:
    """The static attributes the default model reads (the packaged default config's)."""
    from ..config import Config
    return list(Config.from_dict({}).data.static_attributes)


def import_station(df: pd.DataFrame, station_id, out_dir, attributes: dict | None = None,
                   discharge_unit: str = "m3/s", mapping: dict | None = None, area_km2: float | None = None,
                   lat: float | None = None, lon: float | None = None, overwrite: bool = False,
                   precipitation_unit: str | None = None) -> Path:
    """Import one station from a DataFrame (for notebooks); returns ``out_dir``, ready for ``--data_dir``.

    Parameters
    ----------
    df : pandas.DataFrame
        Daily rows: a date column (or a DatetimeIndex) and the columns named by ``mapping``
        (default: ``date``, ``precipitation``, ``discharge`` and, if present, ``temperature``, ``pet``).
    station_id : str
        Letters, digits, ``-``, ``_``.
    attributes : dict, optional
        Static attributes, CAMELS-GB names (``area``, ``gauge_lat``, ``gauge_lon``, ``elev_mean``, ...).
        ``area``/``gauge_lat``/``gauge_lon`` may also be given as ``area_km2``/``lat``/``lon``.
    discharge_unit : {"m3/s", "l/s", "mm/d"}
    precipitation_unit : {"mm", "0.1mm"}, optional
        The precipitation column's unit; 0.1mm is divided by 10. Not given: mm, and a record averaging more than
        :data:`MAX_UNDECLARED_ANNUAL_PRECIPITATION_MM` a year is refused as a likely 0.1 mm.
    """
    attrs = dict(attributes or {})
    area_km2 = area_km2 if area_km2 is not None else attrs.pop("area", None)
    lat = lat if lat is not None else attrs.pop("gauge_lat", None)
    lon = lon if lon is not None else attrs.pop("gauge_lon", None)
    frame = df.copy()
    if isinstance(frame.index, pd.DatetimeIndex):
        frame = frame.rename_axis("date").reset_index()
        frame["date"] = frame["date"].dt.strftime("%Y-%m-%d")
    if mapping is None:
        mapping = {k: k for k in MAP_KEYS if k in frame.columns}
    frame = frame.astype(object).where(frame.notna(), None).astype("string")
    o = ImportOptions(str(station_id), dict(mapping), discharge_unit, _opt_float(area_km2), _opt_float(lat),
                      _opt_float(lon), attrs, overwrite=overwrite, precipitation_unit=precipitation_unit)
    o = check_options(o)
    check_stored_precipitation_unit(out_dir, o.station_id, o.precipitation_unit, overwrite)
    st = prepare_station(frame, o, source="DataFrame", static_attributes=default_static_attributes())
    for w in st.warnings:
        log.warning(w)
    for line in st.summary:
        log.info("%s: %s", st.station_id, line)
    write_stations(out_dir, [st], overwrite=overwrite)
    return Path(out_dir).expanduser()


def _opt_float(v):
    return None if v is None else float(v)
