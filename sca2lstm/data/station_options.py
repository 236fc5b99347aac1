"""The options of a station import (``sca2lstm station import`` and :func:`.station.import_station`).

:class:`ImportOptions` says how to read one station's file: the column mapping, units, dialect, day rule,
rating curve, warning levels and rain-gauge weights. :func:`check_options` validates everything that does not
depend on the file, before the file is read, and raises a one-line UsageError naming the bad value and the
allowed ones. Full-width punctuation typed in a Chinese input method (``，``, ``＝``) reads as ``,`` and ``=``.
"""

from __future__ import annotations

import math
import re
import unicodedata
from dataclasses import dataclass, field

from ..errors import UsageError
from .ids import check_basin_id
from .station_meta import DISCHARGE_UNITS, PRECIPITATION_UNITS, half_width, parse_pairs

MAP_KEYS = ("date", "time", "precipitation", "discharge", "stage", "temperature", "pet")
REQUIRED_MAP_KEYS = ("date", "precipitation")
BELOW_H0 = ("missing", "zero")  # a water level below the rating curve's zero-flow stage: no discharge, or Q = 0
LEVELS_IN = ("flow", "stage")  # the unit of --warning_levels: m3/s, or water level in m
THOUSANDS = (",", ".", " ", "'")  # marks that group thousands: 1,234.5 / 1.234,5 / 1 234,5 / 1'234.5
# Thiessen weights are shares of the catchment: they must sum to 1 to within rounding of the last digit.
WEIGHT_SUM_TOLERANCE = 1e-3


@dataclass
class ImportOptions:
    """How to read one station's file. ``mapping`` maps MAP_KEYS to the file's column names."""

    station_id: str
    mapping: dict
    discharge_unit: str | None = None
    area_km2: float | None = None
    lat: float | None = None
    lon: float | None = None
    attributes: dict = field(default_factory=dict)
    sep: str = ","
    decimal: str = "."
    thousands: str | None = None          # the mark grouping thousands (1,234.5); None: read where the cells show it
    date_format: str | None = None
    na_values: tuple = ()
    overwrite: bool = False
    encoding: str | None = None
    sheet: str | int | None = None
    skiprows: int | None = None
    day_start: str = "00:00"
    day_label: str = "start"
    stamp: str = "start"
    timezone: str | None = None
    station_timezone: str | None = None
    max_missing: float = 0.1
    rating: object = None                 # "a=..,b=..,h0=..", a file, a dict, or a RatingCurve
    warning_levels: object = None         # "alert=45,danger=80" or {name: value}
    levels_in: str = "flow"
    precipitation_weights: object = None  # "0.5,0.3,0.2" or a list
    distribution: str | None = None       # of the return-period levels (stored in the metadata)
    water_year_start: object = 10         # month the year of the annual maxima starts
    precipitation_unit: str | None = None  # "mm", "0.1mm" or "mm/h" (an intensity); None: not declared (read as mm, checked for plausibility)
    max_reading_gap: object = None        # hours an excerpt record is drawn across; None: readings.MAX_READING_GAP
    below_h0: str = "missing"             # a water level below the curve's zero-flow stage: "missing" or "zero" flow

    @property
    def gauges(self) -> list:
        """The precipitation column(s): ``P1+P2+P3`` -> ``["P1", "P2", "P3"]``."""
        return [g.strip() for g in str(self.mapping["precipitation"]).split("+")]

    def header_names(self) -> list:
        """Every column name the mapping asks the file for."""
        return [v for k, v in self.mapping.items() if k != "precipitation"] + self.gauges



def parse_mapping(text) -> dict:
    """``date=Datum,precipitation=N,discharge=Q`` (or a dict) -> ``{key: column}``, keys checked.

    Full-width punctuation typed in a Chinese input method (``，`` and ``＝``) counts as ``,`` and ``=``; a key
    given twice is refused, as for every ``NAME=VALUE`` flag (:func:`~sca2lstm.data.station_meta.parse_pairs`).
    """
    pairs = {k: str(v).strip() for k, v in parse_pairs(text, "--map", "date=Datum,precipitation=N,discharge=Q",
                                                         what="KEY=COLUMN")}
    unknown = [k for k in pairs if k not in MAP_KEYS]
    if unknown:
        raise UsageError(f"--map key(s) {unknown} unknown; allowed keys: {', '.join(MAP_KEYS)}")
    missing = [k for k in REQUIRED_MAP_KEYS if not pairs.get(k)]
    if not (pairs.get("discharge") or pairs.get("stage")):
        missing.append("discharge")
    if missing:
        raise UsageError(f"--map lacks {missing}; it needs at least date=COL,precipitation=COL,discharge=COL "
                         "(or stage=COL with --rating)")
    if any(not g.strip() for g in pairs["precipitation"].split("+")):
        raise UsageError(f"--map precipitation={pairs['precipitation']!r}: gauges are joined by '+', e.g. P1+P2+P3")
    return pairs


def parse_weights(text, n: int) -> list | None:
    """``"0.5,0.3,0.2"`` (or a list) -> floats, one per gauge, each >= 0, summing to 1. None: equal weights."""
    if text is None or (isinstance(text, str) and not text.strip()):
        return None
    items = [x for x in half_width(text).split(",")] if isinstance(text, str) else list(text)
    try:
        w = [float(x) for x in items]
    except (TypeError, ValueError):
        raise UsageError(f"--precipitation_weights {text!r}: expected numbers, e.g. 0.5,0.3,0.2") from None
    if len(w) != n:
        raise UsageError(f"--precipitation_weights gives {len(w)} weights for {n} rain gauge(s); give one per gauge "
                         "in the order of --map precipitation=P1+P2+...")
    if any(not math.isfinite(x) or x < 0 for x in w):
        raise UsageError(f"--precipitation_weights {text!r}: each weight must be a number >= 0")
    if abs(sum(w) - 1.0) > WEIGHT_SUM_TOLERANCE:
        raise UsageError(f"--precipitation_weights {','.join(f'{x:g}' for x in w)} sum to {sum(w):g}; Thiessen "
                         "weights are shares of the catchment and must sum to 1")
    return w


def parse_levels(text, unit: str, flag: str = "--warning_levels", probabilities: dict | None = None,
                 probability_flag: str = "--warn_probability") -> dict:
    """``alert=45.0,danger=80.0`` (or a dict) -> ``{name: WarningLevel}`` in ``unit`` ('m3/s' or 'm'), each checked
    (:func:`~sca2lstm.data.station_meta.check_level`) with its warning probability from ``probabilities`` (name ->
    P); a one-line UsageError naming ``flag`` (``probability_flag`` for a probability of no level given)."""
    from .station_meta import check_level, parse_pairs

    pairs = [] if text is None or text == "" or text == {} else parse_pairs(text, flag, "alert=45.0,danger=80.0")
    probs = dict(probabilities or {})
    levels = {k: check_level(k, v, unit, probs.get(k), source=flag) for k, v in pairs}
    unknown = [n for n in probs if n not in levels]
    if unknown:
        raise UsageError(f"{probability_flag}: no level named {unknown[0]!r}; the levels given are "
                         f"{', '.join(levels) or 'none'}")
    return levels


def check_stage_levels(levels: dict, rating, flag: str = "--warning_levels") -> None:
    """Each water level (unit m) of ``levels`` (name -> WarningLevel) converted through ``rating`` (a
    :class:`~sca2lstm.data.rating.RatingCurve` or its stored dict) as the forecasts convert it; a one-line
    UsageError naming ``flag`` and the first level it cannot convert (below the curve, deeper than any river)."""
    from .rating import level_discharge

    for name, v in levels.items():
        if v.unit != "m":
            continue
        try:
            level_discharge(rating, v.value, warn=False)  # converted (and warned about) where it is used
        except UsageError as e:
            raise UsageError(f"{flag} {name}={v.value:g} m: {e}") from None


def parse_attr(items) -> dict:
    """``["elev_mean=120", ...]`` (or a dict, or one ``"elev_mean=120"``) -> ``{name: float}``."""
    if isinstance(items, str):  # a spec's `attr: elev_mean=120`, written as the flag is: one item, not its letters
        items = [items]
    pairs = items.items() if isinstance(items, dict) else [
        (s.split("=", 1) if "=" in s else (s, None)) for s in (items or [])]
    out = {}
    for name, value in pairs:
        name = str(name).strip()
        if value is None or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name) or name == "gauge_id":
            raise UsageError(f"--attr {name!r} is not NAME=VALUE with a name of letters, digits and '_' "
                             "(e.g. elev_mean=120)")
        try:
            v = float(str(value).strip())
        except ValueError:
            raise UsageError(f"--attr {name}={value!r}: the value must be a number") from None
        if not math.isfinite(v):
            raise UsageError(f"--attr {name}={value!r}: the value must be a finite number")
        out[name] = v
    return out


def check_below_h0_zero(o: ImportOptions) -> None:
    """UsageError where ``--below_h0 zero`` cannot mean zero flow: without a stage record turned into discharge by
    the curve (it would change nothing), or with a rating table whose lowest row has a discharge above 0 (its lowest
    stage is not where the river stops flowing, and below it the flow is unknown, not zero)."""
    if "stage" not in o.mapping or "discharge" in o.mapping or o.rating is None:
        raise UsageError("--below_h0 zero reads a water level below the rating curve's zero-flow stage as no flow; it "
                         "needs --map stage=COL with --rating and no discharge= column")
    if o.rating.kind == "table" and o.rating.q[0] > 0:
        raise UsageError(f"--below_h0 zero: the rating table's lowest row (h={o.rating.h[0]:g} m) has Q = "
                         f"{o.rating.q[0]:g} m3/s, not 0: below it the flow is unknown, not zero; add a row with Q = 0 "
                         "at the stage the river stops flowing, or leave --below_h0 out")


def check_reading_gap(value) -> float | None:
    """``--max_reading_gap`` (hours, a number or its text; None: not given) as a float, from
    :data:`~sca2lstm.data.readings.MIN_READING_GAP` to :data:`~sca2lstm.data.readings.MAX_SETTABLE_READING_GAP`; a
    one-line UsageError naming the value and the range."""
    from .readings import MAX_READING_GAP, MAX_SETTABLE_READING_GAP, MIN_READING_GAP

    if value is None:
        return None
    low, high, default = (g.total_seconds() / 3600 for g in (MIN_READING_GAP, MAX_SETTABLE_READING_GAP,
                                                             MAX_READING_GAP))
    try:
        h = float(half_width(value).strip()) if isinstance(value, str) else float(value)
    except (TypeError, ValueError):
        h = math.nan
    if isinstance(value, bool) or not (math.isfinite(h) and low <= h <= high):
        raise UsageError(f"--max_reading_gap {value!r} must be a number of hours from {low:g} to {high:g} (default "
                         f"{default:g}): an excerpt record reads its ordinary days once a day, and a line drawn across "
                         "a month would stand for floods nobody read")
    return h


def check_separators(o: ImportOptions, path) -> None:
    """UsageError where ``--decimal`` equals ``--sep`` for the delimited text file ``path`` (a spreadsheet's cells are
    split already, and its separator is not read, so a decimal comma beside the default ``,`` is fine there)."""
    from pathlib import Path

    from .tables import SPREADSHEET_SUFFIXES

    if o.decimal == o.sep and Path(str(path)).suffix.lower() not in SPREADSHEET_SUFFIXES:
        raise UsageError(f"--decimal {o.decimal!r} equals --sep; a decimal comma needs another separator "
                         "(e.g. --sep ';')")


def check_options(o: ImportOptions) -> ImportOptions:
    """Validate the options that do not depend on the file (UsageError naming the culprit)."""
    from .days import parse_zone
    from .rating import RatingCurve, parse_rating
    from .station_meta import check_day_rule, check_flood_frequency

    o.station_id = check_basin_id(o.station_id)
    o.mapping = parse_mapping(o.mapping)
    o.distribution, o.water_year_start = check_flood_frequency(o.distribution, o.water_year_start,
                                                               "--distribution / --water_year_start")
    if isinstance(o.discharge_unit, str):  # L/s (the SI symbol), m³/s, M3/S: the units as written
        o.discharge_unit = unicodedata.normalize("NFKC", o.discharge_unit).strip().lower()
    if "discharge" not in o.mapping:
        o.discharge_unit = o.discharge_unit or "m3/s"  # discharge from the rating curve is in m3/s
        if o.discharge_unit != "m3/s":
            raise UsageError(f"--discharge_unit {o.discharge_unit!r} with a stage record: the rating curve gives m3/s")
        if o.rating is None:
            raise UsageError(f"--map stage={o.mapping['stage']} needs --rating: a=..,b=..,h0=.. (Q = a·(h − h0)^b) "
                             "or a file of (h, Q) pairs or power-law segments")
    if o.discharge_unit is None:
        raise UsageError("--discharge_unit is required (m3/s, l/s or mm/d)")
    if o.discharge_unit not in DISCHARGE_UNITS:
        raise UsageError(f"--discharge_unit {o.discharge_unit!r} unknown; choose from {', '.join(DISCHARGE_UNITS)}")
    if isinstance(o.precipitation_unit, str):  # 0.1 mm, 0.1MM: the unit as written
        o.precipitation_unit = re.sub(r"\s+", "", unicodedata.normalize("NFKC", o.precipitation_unit)).lower() or None
    if o.precipitation_unit is not None and o.precipitation_unit not in PRECIPITATION_UNITS:
        raise UsageError(f"--precipitation_unit {o.precipitation_unit!r} unknown; choose from "
                         f"{', '.join(PRECIPITATION_UNITS)}")
    if o.area_km2 is not None and not (math.isfinite(o.area_km2) and o.area_km2 > 0):
        raise UsageError(f"--area_km2 {o.area_km2} must be a number > 0 (km2)")
    if o.discharge_unit == "mm/d" and o.area_km2 is None:
        raise UsageError("--discharge_unit mm/d needs --area_km2: the model forecasts m3/s (q * area / 86.4)")
    if o.lat is not None and not (math.isfinite(o.lat) and -90 <= o.lat <= 90):
        raise UsageError(f"--lat {o.lat} is out of range; expected degrees north in [-90, 90]")
    if o.lon is not None and not (math.isfinite(o.lon) and -180 <= o.lon <= 180):
        raise UsageError(f"--lon {o.lon} is out of range; expected degrees east in [-180, 180]")
    if o.sep in ("\\t", "tab"):
        o.sep = "\t"
    if o.decimal not in (".", ","):
        raise UsageError(f"--decimal {o.decimal!r} unknown; choose '.' or ','")
    if o.thousands is not None:
        o.thousands = str(o.thousands) if str(o.thousands).strip() else " "  # --thousands ' ' keeps its space
        if o.thousands not in THOUSANDS:
            raise UsageError(f"--thousands {o.thousands!r} unknown; choose ',', '.', ' ' (space) or \"'\"")
        if o.thousands == o.decimal:
            raise UsageError(f"--thousands {o.thousands!r} equals --decimal; the mark that groups thousands is the "
                             f"other one (--thousands {'.' if o.decimal == ',' else ','} with --decimal {o.decimal})")
    o.attributes = parse_attr(o.attributes)
    o.day_start = half_width(o.day_start).strip() if isinstance(o.day_start, str) else o.day_start
    check_day_rule(o.day_start, o.day_label, o.stamp, "--day_start/--day_label/--stamp")
    for flag, zone in (("--timezone", o.timezone), ("--station_timezone", o.station_timezone)):
        if zone is not None:
            parse_zone(zone, flag)
    try:
        o.max_missing = float(o.max_missing)
    except (TypeError, ValueError):
        raise UsageError(f"--max_missing {o.max_missing!r} is not a number") from None
    if not 0.0 <= o.max_missing < 1.0:
        raise UsageError(f"--max_missing {o.max_missing!r} must lie in [0, 1): the share of a day that may lack values")
    o.max_reading_gap = check_reading_gap(o.max_reading_gap)
    if o.rating is not None and not isinstance(o.rating, RatingCurve):
        if isinstance(o.rating, str) and "＝" in o.rating:
            o.rating = half_width(o.rating)   # a=..,b=.. typed with a Chinese input method (not a file name)
        o.rating = parse_rating(o.rating)
    o.below_h0 = "missing" if o.below_h0 is None else str(o.below_h0).strip().lower()
    if o.below_h0 not in BELOW_H0:
        raise UsageError(f"--below_h0 {o.below_h0!r} unknown; choose from {', '.join(BELOW_H0)}")
    if o.below_h0 == "zero":
        check_below_h0_zero(o)
    if o.levels_in not in LEVELS_IN:
        raise UsageError(f"--levels_in {o.levels_in!r} unknown; choose from {', '.join(LEVELS_IN)}")
    if not isinstance(o.warning_levels, dict) or o.warning_levels and not all(
            hasattr(v, "unit") for v in o.warning_levels.values()):
        o.warning_levels = parse_levels(o.warning_levels, "m" if o.levels_in == "stage" else "m3/s")
    if o.levels_in == "stage" and not o.warning_levels:
        # the flag is only the unit of --warning_levels: alone it would be dropped without a word
        raise UsageError("--levels_in stage is the unit of --warning_levels, and none is given; add e.g. "
                         "--warning_levels alert=2.5,danger=3.2, or leave --levels_in out (levels stored by an "
                         "earlier import keep their own unit)")
    if any(v.unit == "m" for v in o.warning_levels.values()):
        if o.rating is None:
            raise UsageError("--levels_in stage: water levels need the station's rating curve (--rating) to be "
                             "compared with forecast discharge")
        check_stage_levels(o.warning_levels, o.rating)
    w = parse_weights(o.precipitation_weights, len(o.gauges))
    if w is not None and len(o.gauges) == 1:
        raise UsageError("--precipitation_weights needs several rain gauges: --map precipitation=P1+P2+...")
    o.precipitation_weights = w
    return o
