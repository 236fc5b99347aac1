"""What belongs to one station beyond its record: warning levels, rating curve, day rule, weather source.

One file per station, ``DIR/meta/<id>.json``, read by every command through :func:`read_station_meta`
(the basin context). ``sca2lstm station import`` writes it together with the record's provenance
(source file, sha256, column mapping); the keys below are added to the same JSON object::

    {
      "warning_levels": {"alert": {"value": 45.0, "unit": "m3/s"},
                         "danger": {"value": 3.2, "unit": "m", "warn_probability": 0.3}},
      "rating_curve": {"kind": "power", "segments": [{"a": 12.5, "b": 1.6, "h0": 0.15,
                                                       "h_max": null, "valid_from": null, "valid_to": null}]},
                  or {"kind": "table", "h": [0.2, 0.5, ...], "q": [0.0, 1.3, ...]},
      "day": {"start": "08:00", "label": "start", "stamp": "start", "timezone": "Asia/Shanghai"},
      "weather": {"source": "open-meteo", "points": [[30.1, 120.2]], "models": [], "ensemble": false,
                  "base_url": null},
      "flood_frequency": {"distribution": "pe3", "water_year_start": 10}
    }

``weather``: where ``sca2lstm weather fetch`` and the service's daily issue get the station's weather
forecast (``source``; without it the daily issue fetches nothing), at ``points`` (averaged; default the
gauge), from ``models``, every member of the ensemble API with ``ensemble``, from a self-hosted or paid
host ``base_url`` (default: the service's ``--weather_base_url``, else Open-Meteo's free API).

Every key the file may hold is declared (:class:`StationMetaFile`: these sections and the provenance the
import writes) and checked when the file is read: a hand-edited value of the wrong kind (``"day": "08:00"``,
a level written as text), a rating curve that does not rise, or an unknown key is a one-line DataError naming
the file, the key, the value and what is allowed (commands exit 1; the service answers the station 503, as
for its other unreadable files). A basin without such a file (the CAMELS basins, the synthetic ones) has no
user levels, no rating curve and calendar days (00:00, labelled by their start).
"""

from __future__ import annotations

import json
import re
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, ClassVar, Literal, Optional, Union, get_args, get_origin

import pandas as pd
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from ..errors import DataError, UsageError
from ..fileio import atomic_write_text

META_DIR = "meta"
LEVEL_UNITS = ("m3/s", "m")  # a flow level, or a water level (stage) that needs the rating curve
DAY_LABELS = ("start", "end")  # a day is named by the date on which it starts (hydrological) or ends
STAMPS = ("start", "end")  # a sub-daily timestamp marks the start or the end of the interval it stands for
_TIME = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
_LEVEL_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]{0,31}$")
# The names of the return-period levels fitted on the record (q2y .. q20y, evaluation.levels.return_period_name):
# a user's level of such a name would take the fitted level's place, and its warning probability chosen for it.
# any case: Q2Y beside the fitted q2y would be two levels that differ only in case (refused for every other name)
_RETURN_PERIOD_NAME = re.compile(r"^q[0-9]+y$", re.IGNORECASE)
# Keys this module owns; every other key of the JSON object is provenance and is written back unchanged.
OWN_KEYS = ("warning_levels", "rating_curve", "day", "weather", "flood_frequency")
#: Distributions of the return-period levels (sca2lstm.evaluation.levels): GLO (the UK's Flood Estimation
#: Handbook), GEV, PE3 (China's SL 44).
FLOOD_DISTRIBUTIONS = ("glo", "gev", "pe3")
#: Weather sources a station's ``weather.source`` may name (what the service's daily issue can fetch from).
WEATHER_SOURCES = ("open-meteo",)
#: Units a station's discharge column may be given in (``sca2lstm station import --discharge_unit``).
DISCHARGE_UNITS = ("m3/s", "l/s", "mm/d")
#: Units a station's precipitation column may be given in (``sca2lstm station import --precipitation_unit``).
PRECIPITATION_UNITS = ("mm", "0.1mm", "mm/h")

Latitude = Annotated[float, Field(ge=-90, le=90)]
Longitude = Annotated[float, Field(ge=-180, le=180)]
Count = Annotated[int, Field(ge=0, description="a whole number >= 0")]  # the description: what an error says
Day = Annotated[str, Field(pattern=r"^\d{4}-\d{2}-\d{2}$")]  # the date itself is checked where it is read
LevelName = Annotated[str, Field(pattern=_LEVEL_NAME.pattern,
                                 description="a name that starts with an ASCII letter and holds only ASCII letters, "
                                             "digits, '_' or '-' (at most 32), e.g. alert, danger")]


def _zone(name: str) -> str:
    """A time zone the day rule can use (an IANA name or an offset, :func:`~sca2lstm.data.days.parse_zone`)."""
    from .days import parse_zone  # days reads this module's day rule

    try:
        parse_zone(name)
    except UsageError:
        raise ValueError("not a time zone") from None
    return name


class _Section(BaseModel):
    """A part of a station's metadata file, declared (pydantic, strict as :mod:`sca2lstm.config`) so that the
    kind and range of every key is checked when the file is read, not deep inside a command: a number written
    as text, a bare name where an object belongs, an unknown key. Each field's ``description`` is what the
    error line says is allowed; ``null`` is a key's default, as if it were not given. ``what`` names an object
    of the kind in an error line; ``example`` shows one."""

    # strict: "51.5" or true is not a number; a list (JSON's only array) is read as a [lat, lon] pair below
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True, allow_inf_nan=False)
    what: ClassVar[str] = "the section"
    example: ClassVar[str] = "{}"


class WeatherSection(_Section):
    """The ``weather`` section: where the station's weather forecast is fetched from."""

    what: ClassVar[str] = "the weather section"
    example: ClassVar[str] = '{"source": "open-meteo", "points": [[51.5, -1.2]], "models": [], "ensemble": false}'

    source: Optional[Literal[WEATHER_SOURCES]] = Field(
        None, description=f"one of {', '.join(WEATHER_SOURCES)}, or null (nothing is fetched)")
    points: Optional[list[Annotated[tuple[Latitude, Longitude], Field(strict=False)]]] = Field(
        None, description="a list of [lat, lon] pairs of numbers in decimal degrees (latitude -90..90, longitude "
                          "-180..180), e.g. [[51.5, -1.2], [51.6, -1.0]], or null (the gauge)")
    models: Optional[list[Annotated[str, Field(min_length=1)]]] = Field(
        None, description='a list of Open-Meteo weather model names, e.g. ["icon_seamless"], or [] (the API\'s '
                          'default)')
    ensemble: Optional[bool] = Field(None, description="true (every member of the ensemble API) or false")
    base_url: Optional[Annotated[str, Field(pattern=r"^https?://\S+$")]] = Field(
        None, description="an http:// or https:// address, or null (the service's --weather_base_url)")


class LevelSection(_Section):
    """One named warning level of ``warning_levels``."""

    what: ClassVar[str] = "a warning level"
    example: ClassVar[str] = '{"value": 45.0, "unit": "m3/s", "warn_probability": 0.3}'

    value: Annotated[float, Field(gt=0)] = Field(
        description="a positive number: a flow in m3/s, or a water level in m with \"unit\": \"m\"")
    unit: Literal[LEVEL_UNITS] = Field("m3/s", description=f"one of {', '.join(LEVEL_UNITS)} (a water level, "
                                                           "through the rating curve)")
    warn_probability: Optional[Annotated[float, Field(gt=0, lt=1)]] = Field(
        None, description="a number strictly between 0 and 1, or null (chosen on validation)")


class DaySection(_Section):
    """The ``day`` section: the station's day rule (when its day starts, which date names it)."""

    what: ClassVar[str] = "the day section"
    example: ClassVar[str] = '{"start": "08:00", "label": "start", "stamp": "start", "timezone": "Asia/Shanghai"}'

    start: Optional[Annotated[str, Field(pattern=_TIME.pattern)]] = Field(
        None, description='a time of day HH:MM from 00:00 to 23:59, e.g. "08:00", or null (00:00)')
    label: Optional[Literal[DAY_LABELS]] = Field(
        None, description=f"one of {', '.join(DAY_LABELS)} (the date a day is named by), or null (start)")
    stamp: Optional[Literal[STAMPS]] = Field(
        None, description=f"one of {', '.join(STAMPS)} (what a sub-daily timestamp marks), or null (start)")
    timezone: Optional[Annotated[str, AfterValidator(_zone)]] = Field(
        None, description='a time zone: an IANA name (e.g. "Asia/Shanghai") or an offset (e.g. "UTC+08:00"), or '
                          'null (the timestamps\' own clock)')


class FloodFrequencySection(_Section):
    """The ``flood_frequency`` section: how the return-period levels are fitted."""

    what: ClassVar[str] = "the flood_frequency section"
    example: ClassVar[str] = '{"distribution": "pe3", "water_year_start": 10}'

    distribution: Optional[Literal[FLOOD_DISTRIBUTIONS]] = Field(
        None, description=f"one of {', '.join(FLOOD_DISTRIBUTIONS)}, or null (the product's default)")
    water_year_start: Optional[Annotated[int, Field(ge=1, le=12)]] = Field(
        None, description="a month 1..12 (10: October, the UK water year; 1: calendar years), or null (10)")


class SegmentSection(_Section):
    """One power-law segment ``Q = a·(h − h0)^b`` of a rating curve (:mod:`sca2lstm.data.rating`)."""

    what: ClassVar[str] = "a rating-curve segment"
    example: ClassVar[str] = '{"a": 12.5, "b": 1.6, "h0": 0.15, "h_max": null, "valid_from": null, "valid_to": null}'

    a: Annotated[float, Field(gt=0)] = Field(description="a positive number (Q = a·(h − h0)^b)")
    b: Annotated[float, Field(gt=0)] = Field(description="a positive number (Q = a·(h − h0)^b)")
    h0: float = Field(description="a number: the water level (m) of zero flow")
    h_max: Optional[float] = Field(None, description="a number: the water level (m) where the segment ends, or "
                                                     "null (open)")
    valid_from: Optional[Day] = Field(None, description="a date YYYY-MM-DD, or null (always)")
    valid_to: Optional[Day] = Field(None, description="a date YYYY-MM-DD, or null (always)")


class PowerCurveSection(_Section):
    """A rating curve of power-law segments."""

    what: ClassVar[str] = "a power-law rating curve"
    example: ClassVar[str] = '{"kind": "power", "segments": [{"a": 12.5, "b": 1.6, "h0": 0.15}]}'

    kind: Literal["power"]
    segments: list[SegmentSection] = Field(min_length=1, description=f"a list of at least one segment, e.g. "
                                                                     f"[{SegmentSection.example}]")


class TableCurveSection(_Section):
    """A rating curve of (h, Q) pairs."""

    what: ClassVar[str] = "a rating table"
    example: ClassVar[str] = '{"kind": "table", "h": [0.2, 0.5, 1.0], "q": [0.0, 1.3, 6.1]}'

    kind: Literal["table"]
    h: list[float] = Field(min_length=2, description="a list of at least two water levels (m)")
    q: list[float] = Field(min_length=2, description="a list of discharges (m3/s), one per water level")


class RecordSection(_Section):
    """``record``: the days ``station import`` wrote."""

    what: ClassVar[str] = "the record section"
    example: ClassVar[str] = ('{"start": "2018-01-01", "end": "2020-12-31", "days": 1096, "observed_discharge_days": '
                              '1090, "missing_per_column": {"precipitation": 0}}')

    start: Day = Field(description="a date YYYY-MM-DD: the record's first day")
    end: Day = Field(description="a date YYYY-MM-DD: the record's last day at import")
    days: Count
    observed_discharge_days: Count
    missing_per_column: dict[str, Count] = Field(description="an object of column -> missing days (whole numbers)")


class ReadSection(_Section):
    """``read``: how ``station import`` read the file."""

    what: ClassVar[str] = "the read section"
    example: ClassVar[str] = '{"kind": "csv", "encoding": "utf-8", "sheet": null, "header_row": 1}'

    kind: str = Field(description="the kind of file read (text), e.g. csv, xlsx")
    encoding: Optional[str] = Field(None, description="an encoding name (text), or null")
    sheet: Optional[Union[str, int]] = Field(None, description="a sheet name or number, or null")
    header_row: Annotated[int, Field(ge=1)] = Field(description="a whole number >= 1")


class DayCountsSection(_Section):
    """Per input column of a sub-daily record: days complete, partial and missing."""

    what: ClassVar[str] = "a column's day counts"
    example: ClassVar[str] = '{"complete": 730, "partial": 1, "missing": 0}'

    complete: Count
    partial: Count
    missing: Count


class SubdailySection(_Section):
    """``subdaily``: how a sub-daily record was aggregated to days."""

    what: ClassVar[str] = "the subdaily section"
    example: ClassVar[str] = ('{"step_minutes": 60.0, "hold_minutes": 60.0, "max_missing": 0.1, "days": '
                              '{"precipitation": {"complete": 730, "partial": 1, "missing": 0}}}')

    step_minutes: Annotated[float, Field(gt=0)] = Field(description="a positive number (minutes)")
    hold_minutes: Annotated[float, Field(ge=0)] = Field(description="a number >= 0 (minutes)")
    max_missing: Annotated[float, Field(ge=0, lt=1)] = Field(description="a number in [0, 1)")
    days: dict[str, DayCountsSection] = Field(description=f"an object of column -> {DayCountsSection.example}")


class IrregularSection(_Section):
    """``irregular``: how an excerpt record (irregular readings) was read to days by the area method."""

    what: ClassVar[str] = "the irregular section"
    example: ClassVar[str] = ('{"max_gap_hours": 48.0, "one_reading_days": 700, "several_readings_days": 30, '
                              '"no_reading_days": 0, "missing": {"discharge": 0}, "accumulated_days": '
                              '{"precipitation": 0}}')

    max_gap_hours: Annotated[float, Field(gt=0)] = Field(description="a positive number (hours)")
    one_reading_days: Count
    several_readings_days: Count
    no_reading_days: Count
    missing: dict[str, Count] = Field(description="an object of column -> missing days (whole numbers)")
    # written since a reading holding several days' rain leaves them missing; an older import's file has none
    accumulated_days: Optional[dict[str, Count]] = Field(
        None, description="an object of column -> days left missing because one reading holds the amount of "
                          "several (whole numbers), or null")


class RatingAppliedSection(_Section):
    """``rating_applied``: what the rating curve made of the imported water levels."""

    what: ClassVar[str] = "the rating_applied section"
    example: ClassVar[str] = '{"values": 17760, "below_masked": 2, "above_extrapolated": 24, "outside_validity": 0}'

    values: Count
    below_masked: Count
    above_extrapolated: Count
    outside_validity: Count
    # written since --below_h0 zero: water levels below the zero-flow stage read as no flow (absent: none was)
    below_zero: Optional[Count] = None


class GaugesSection(_Section):
    """``precipitation_gauges``: the rain gauges averaged into the precipitation column."""

    what: ClassVar[str] = "the precipitation_gauges section"
    example: ClassVar[str] = '{"columns": ["P1", "P2"], "weights": [0.6, 0.4]}'

    columns: list[str] = Field(min_length=1, description="a list of column names (text)")
    weights: list[Annotated[float, Field(ge=0)]] = Field(description="a list of numbers >= 0, one per column")


_NAMES = "an object of names (text) -> "


class StationMetaFile(_Section):
    """A station's metadata file ``DIR/meta/<id>.json``, every key it may hold: the sections a user (or another
    command) sets, and the provenance ``sca2lstm station import`` writes. A key not declared here is refused."""

    what: ClassVar[str] = "a station's metadata file"
    example: ClassVar[str] = '{"station_id": "my-gauge", "warning_levels": {"alert": {"value": 45.0, "unit": "m3/s"}}}'

    station_id: Optional[Annotated[str, Field(min_length=1)]] = Field(
        None, description="the station's id (text), or null (the file's name)")
    warning_levels: Optional[dict[LevelName, LevelSection]] = Field(
        None, description=f'an object of named levels, e.g. {{"alert": {LevelSection.example}}}, or null (none)',
        examples=[{"alert": {"value": 45.0, "unit": "m3/s"}}])
    rating_curve: Optional[Annotated[Union[PowerCurveSection, TableCurveSection], Field(discriminator="kind")]] = Field(
        None, description=f"{PowerCurveSection.example} or {TableCurveSection.example}, or null (no curve)",
        examples=[{"kind": "power", "segments": [{"a": 12.5, "b": 1.6, "h0": 0.15}]}])
    day: Optional[DaySection] = Field(None, description=f"{DaySection.example}, or null (calendar days)")
    weather: Optional[WeatherSection] = Field(None, description=f"{WeatherSection.example}, or null (nothing is "
                                                                "fetched)")
    flood_frequency: Optional[FloodFrequencySection] = Field(
        None, description=f"{FloodFrequencySection.example}, or null (the defaults)")
    # The provenance station import writes: kept as written, checked so that a damaged one is named
    source: Optional[str] = Field(None, description="the file imported (text)")
    source_sha256: Optional[Annotated[str, Field(pattern=r"^([0-9a-f]{64})?$")]] = Field(
        None, description="the sha256 of the file imported: 64 hexadecimal digits")
    mapping: Optional[dict[str, str]] = Field(None, description=_NAMES + "column names (text)")
    discharge_unit: Optional[Literal[DISCHARGE_UNITS]] = Field(
        None, description=f"one of {', '.join(DISCHARGE_UNITS)}")
    # absent from the files imports wrote before the unit could be given: their rain was read in mm
    precipitation_unit: Optional[Literal[PRECIPITATION_UNITS]] = Field(
        None, description=f"one of {', '.join(PRECIPITATION_UNITS)}")
    sep: Optional[str] = Field(None, description="the column separator (text)")
    decimal: Optional[Literal[".", ","]] = Field(None, description='one of ".", ","')
    thousands: Optional[Literal[",", ".", " ", "'"]] = Field(None, description="""one of ",", ".", " ", "'", or null""")
    date_format: Optional[str] = Field(None, description="a date format (text), or null")
    na_values: Optional[list[Union[str, float]]] = Field(None, description="a list of missing-value codes (text or "
                                                                           "numbers)")
    units_written: Optional[dict[str, str]] = Field(None, description=_NAMES + "units (text)")
    record: Optional[RecordSection] = Field(None, description=RecordSection.example)
    attributes: Optional[dict[str, float]] = Field(None, description=_NAMES + "finite numbers")
    computed_attributes: Optional[list[str]] = Field(None, description="a list of attribute names (text)")
    imported_at: Optional[str] = Field(None, description="the time of the import (ISO 8601 text)")
    read: Optional[ReadSection] = Field(None, description=ReadSection.example)
    subdaily: Optional[SubdailySection] = Field(None, description=SubdailySection.example)
    irregular: Optional[IrregularSection] = Field(None, description=IrregularSection.example)
    rating_applied: Optional[RatingAppliedSection] = Field(None, description=RatingAppliedSection.example)
    # absent from the files imports wrote before the option: their levels below h0 were missing
    below_h0: Optional[Literal["missing", "zero"]] = Field(
        None, description='one of "missing", "zero": how a water level below the rating curve was read')
    precipitation_gauges: Optional[GaugesSection] = Field(None, description=GaugesSection.example)


def _json(value) -> str:
    """``value`` as the JSON file writes it (``true``, ``["a"]``), for an error line about that file; a long
    one shortened."""
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 120 else text[:117] + "..."


def _unwrap(ann):
    """``ann`` without Optional and Annotated: a model, ``list[...]``, ``dict[...]``, a union or a plain type."""
    while True:
        origin = get_origin(ann)
        if origin is Annotated:
            ann = get_args(ann)[0]
        elif origin in (Union, types.UnionType) and len([a for a in get_args(ann) if a is not type(None)]) == 1:
            ann = next(a for a in get_args(ann) if a is not type(None))
        else:
            return ann


def _is_model(ann) -> bool:
    return isinstance(ann, type) and issubclass(ann, BaseModel)


def _object_expected(ann) -> bool:
    """Whether ``ann`` (unwrapped) is read from a JSON object: a section, a union of sections, a dict."""
    if _is_model(ann) or get_origin(ann) is dict:
        return True
    return get_origin(ann) in (Union, types.UnionType) and all(_is_model(a) for a in get_args(ann))


def _schema_error(err: dict, data: dict, source: str) -> str:
    """The first pydantic error ``err`` of :class:`StationMetaFile` on ``data`` as one line naming ``source`` (the
    file), the key as the file holds it (``warning_levels.alert.value``, ``weather.points[0]``), its value and
    what is allowed.

    The error's location is followed through the file's values and the declared sections side by side: a key
    of a section, an item of a list (kept whole where it is not an object: a [lat, lon] pair), a name of an
    object of sections (a warning level), the ``kind`` of a rating curve."""
    ann, value, name, field = StationMetaFile, data, "", None
    loc = list(err["loc"])
    at_key = False  # whether the location ends at a key of a section (not inside a value shown whole)
    for i, item in enumerate(loc):
        ann, at_key = _unwrap(ann), False
        if _is_model(ann):
            if not isinstance(value, dict):
                break
            if item not in ann.model_fields:  # extra_forbidden: a key the section does not declare
                return (f"{source}: {name + '.' if name else ''}{item} is not a key of {ann.what}; its keys are "
                        f"{', '.join(ann.model_fields)}")
            field, name = ann.model_fields[item], f"{name}.{item}" if name else str(item)
            value, ann, at_key = value.get(item), ann.model_fields[item].annotation, True
        elif get_origin(ann) in (Union, types.UnionType):  # a discriminated union: the item is the tag
            ann = next((a for a in get_args(ann) if _is_model(a) and item in get_args(a.model_fields["kind"].annotation)),
                       ann)
        elif get_origin(ann) is list and isinstance(item, int) and isinstance(value, list) and item < len(value):
            name, value, ann = f"{name}[{item}]", value[item], get_args(ann)[0]
            if not isinstance(value, dict):  # a pair, a number, a name: shown whole
                break
        elif get_origin(ann) is dict and isinstance(value, dict):
            key_ann, ann = get_args(ann)
            if i + 1 < len(loc) and loc[i + 1] == "[key]":  # the name itself is not allowed
                what = next((m.description for m in getattr(key_ann, "__metadata__", ()) if getattr(m, "description",
                                                                                                    None)), "text")
                return f"{source}: {name} has the name {_json(item)}, which is not allowed; expected {what}"
            name, value = f"{name}.{item}", value.get(item)
        else:
            break
    kind = err["type"]
    desc = field.description if field is not None else "an object"
    if kind in ("union_tag_invalid", "union_tag_not_found"):  # a rating curve of no known kind
        kinds = ", ".join(get_args(a.model_fields["kind"].annotation)[0] for a in get_args(_unwrap(ann)))
        shown = _json(value.get("kind")) if isinstance(value, dict) and "kind" in value else None
        return (f"{source}: {name}.kind{'=' + shown if shown else ' is missing;'} "
                f"{'is not allowed; ' if shown else ''}expected one of {kinds}")
    if kind == "missing" and at_key:
        return f"{source}: {name} is missing; expected {desc}"
    ann = _unwrap(ann)
    if _object_expected(ann) and not isinstance(value, dict):
        example = ann.example if _is_model(ann) else (_json(field.examples[0]) if field and field.examples else desc)
        return f"{source}: {name}={_json(value)} must be an object, e.g. {example}"
    return f"{source}: {name}={_json(value)} is not allowed; expected {desc}"


def check_meta(d, source: str = "station metadata") -> StationMetaFile:
    """The JSON object ``d`` of a station's metadata file checked against :class:`StationMetaFile`; a one-line
    DataError naming ``source`` (the file), the key, its value and what is allowed. A rating curve is checked
    whole too (:func:`~sca2lstm.data.rating.check_curve`: it rises, its segments and periods are in order), and
    its warning levels' names as every way of giving levels is (:func:`parse_pairs`: none twice in another case)."""
    if not isinstance(d, dict):
        raise DataError(f"{source}: expected a JSON object, got {_json(d)}; e.g. {StationMetaFile.example}")
    try:
        meta = StationMetaFile.model_validate(d)
    except ValidationError as e:
        raise DataError(_schema_error(e.errors(include_url=False)[0], d, source)) from None
    if meta.warning_levels:
        # alert and Alert would be two levels, each warned on: refused as every other way of giving levels does
        try:
            parse_pairs(meta.warning_levels, f"{source}: warning_levels", StationMetaFile.example)
        except UsageError as e:
            raise DataError(str(e)) from None
    if meta.rating_curve is not None:
        from .rating import RatingCurve

        try:
            RatingCurve.from_dict(meta.rating_curve.model_dump(mode="json"), f"{source}: rating_curve")
        except UsageError as e:
            raise DataError(str(e)) from None
    return meta


@dataclass
class WarningLevel:
    """One named level. ``unit`` 'm3/s' (flow, daily mean) or 'm' (water level, needs a rating curve)."""

    value: float
    unit: str = "m3/s"
    warn_probability: float | None = None

    def to_dict(self) -> dict:
        d = {"value": float(self.value), "unit": self.unit}
        if self.warn_probability is not None:
            d["warn_probability"] = float(self.warn_probability)
        return d


@dataclass
class StationMeta:
    """A station's metadata. ``provenance`` holds the import's record of where the data came from."""

    station_id: str
    warning_levels: dict = field(default_factory=dict)  # name -> WarningLevel
    rating_curve: dict | None = None
    day_start: str = "00:00"
    day_label: str = "start"
    stamp: str = "start"
    timezone: str | None = None
    weather: dict = field(default_factory=dict)
    provenance: dict = field(default_factory=dict)
    distribution: str | None = None  # of the return-period levels; None: the product's default
    water_year_start: int = 10        # month the year of the annual maxima starts (1: calendar years, as SL 44)

    @property
    def imported(self) -> bool:
        """Whether ``sca2lstm station import`` wrote this station's data (its provenance names a source file)."""
        return "source_sha256" in self.provenance

    def to_dict(self) -> dict:
        d = dict(self.provenance)
        d["station_id"] = self.station_id
        d["warning_levels"] = {k: v.to_dict() for k, v in self.warning_levels.items()}
        d["rating_curve"] = self.rating_curve
        d["day"] = {"start": self.day_start, "label": self.day_label, "stamp": self.stamp,
                    "timezone": self.timezone}
        d["weather"] = dict(self.weather)
        d["flood_frequency"] = {"distribution": self.distribution, "water_year_start": self.water_year_start}
        return d

    @classmethod
    def from_dict(cls, d: dict, station_id: str, source: str = "station metadata") -> StationMeta:
        """The metadata of the JSON object ``d``, checked against :class:`StationMetaFile` (a one-line DataError
        naming ``source``, the key, its value and what is allowed). A ``station_id`` other than ``station_id`` (the
        file's name) is refused: a file copied from another station carries that station's levels and rating curve,
        which would be read as this one's, and a rewrite of its levels would go to the other station's file."""
        m = check_meta(d, source)
        if m.station_id is not None and m.station_id != str(station_id):
            raise DataError(f"{source}: station_id={m.station_id!r} is not allowed; expected {str(station_id)!r}, the "
                            "station the file is named for (a file copied from another station? correct station_id, "
                            "or remove it, after checking its levels and rating curve)")
        day = m.day or DaySection()
        ff = m.flood_frequency or FloodFrequencySection()
        return cls(station_id=m.station_id or str(station_id),
                   warning_levels={n: WarningLevel(lv.value, lv.unit, lv.warn_probability)
                                   for n, lv in (m.warning_levels or {}).items()},
                   rating_curve=m.rating_curve.model_dump(mode="json") if m.rating_curve is not None else None,
                   day_start=day.start or "00:00", day_label=day.label or "start", stamp=day.stamp or "start",
                   timezone=day.timezone,
                   weather={} if m.weather is None else m.weather.model_dump(mode="json", exclude_unset=True),
                   provenance={k: v for k, v in d.items() if k not in OWN_KEYS and k != "station_id"},
                   distribution=ff.distribution,
                   water_year_start=10 if ff.water_year_start is None else ff.water_year_start)


def check_flood_frequency(distribution, water_year_start, source: str = "station import") -> tuple:
    """``(distribution or None, month)`` checked: a name of :data:`FLOOD_DISTRIBUTIONS`, a month 1..12; a
    one-line UsageError naming the bad value and the allowed ones."""
    if distribution is not None and distribution not in FLOOD_DISTRIBUTIONS:
        raise UsageError(f"{source}: distribution {distribution!r} unknown; choose from {', '.join(FLOOD_DISTRIBUTIONS)}")
    try:
        month = int(water_year_start)
    except (TypeError, ValueError):
        month = 0
    if not 1 <= month <= 12 or str(water_year_start).strip() not in (str(month), f"{month:02d}"):
        raise UsageError(f"{source}: water_year_start {water_year_start!r} must be a month 1..12 (10: October, the "
                         "UK water year; 1: calendar years)")
    return distribution, month


def check_day_time(text, flag: str = "--day_start") -> str:
    """'HH:MM' (24 h) or a one-line UsageError naming the value."""
    if not isinstance(text, str) or not _TIME.match(text.strip()):
        raise UsageError(f"{flag} {text!r} is not a time of day; expected HH:MM from 00:00 to 23:59, e.g. 08:00")
    return text.strip()


def check_day_rule(start, label, stamp, source: str = "station metadata") -> None:
    check_day_time(start, f"{source}: day start")
    if label not in DAY_LABELS:
        raise UsageError(f"{source}: day label {label!r} is not one of {', '.join(DAY_LABELS)}")
    if stamp not in STAMPS:
        raise UsageError(f"{source}: stamp {stamp!r} is not one of {', '.join(STAMPS)}")


#: Punctuation a Chinese input method types in place of ASCII: read as the ASCII it stands for.
_HALF_WIDTH = str.maketrans({"，": ",", "、": ",", "＝": "=", "＋": "+", "：": ":", "．": "."})


def half_width(text: str) -> str:
    """``text`` with full-width ``，、＝＋：．`` read as ``, , = + : .`` (flags typed with a Chinese input method)."""
    return str(text).translate(_HALF_WIDTH)


def parse_pairs(text, flag: str, example: str, what: str = "NAME=VALUE") -> list:
    """``'alert=45.0,danger=80.0'`` (or a dict) -> ``[('alert', '45.0'), ('danger', '80.0')]``, values unchecked.

    The syntax of every ``NAME=VALUE,...`` flag of a station (``--warning_levels``, ``--warn_probability``,
    ``--map``). Full-width punctuation typed in a Chinese input method (:func:`half_width`) counts as its
    ASCII. A part without ``=`` (``what`` names the expected form) or a name given twice (also in another case:
    ``alert`` and ``Alert``) is a one-line UsageError naming ``flag`` and showing ``example``.
    """
    if isinstance(text, dict):
        pairs = [(str(k).strip(), v) for k, v in text.items()]
    elif isinstance(text, (list, tuple)):  # a spec's `warning_levels: [45, 80]`: values without their names
        raise UsageError(f"{flag} {list(text)!r} is a list, not {what} pairs; e.g. {example}")
    else:
        pairs = []
        for part in half_width(text).split(","):
            if not part.strip():
                continue
            name, sep, value = part.partition("=")
            if not sep:
                raise UsageError(f"{flag} entry {part.strip()!r} is not {what}; e.g. {example}")
            pairs.append((name.strip(), value.strip()))
    names = [n for n, _ in pairs]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise UsageError(f"{flag}: {twice[0]!r} given twice")
    first = {}
    for n in names:
        seen = first.setdefault(str(n).casefold(), n)
        if seen != n:  # alert and Alert would be two levels, each warned on: one level typed twice, surely
            raise UsageError(f"{flag}: {seen!r} and {n!r} differ only in case; give the name once")
    return pairs


def check_level(name, value, unit="m3/s", warn_probability=None, source: str = "--warning_levels") -> WarningLevel:
    """A validated :class:`WarningLevel`, or a one-line UsageError naming the bad part."""
    if not isinstance(name, str) or not _LEVEL_NAME.match(name):
        raise UsageError(f"{source}: level name {name!r} must start with an ASCII letter and hold only ASCII letters, digits, "
                         "'_' or '-' (e.g. alert, warning, danger)")
    if _RETURN_PERIOD_NAME.match(name):
        raise UsageError(f"{source}: level name {name!r} is the name of a return-period level fitted on the record "
                         "(q2y, q5y, q10y, q20y), which cannot be set; give your level another name (e.g. alert, "
                         "warning, danger)")
    if isinstance(value, bool):  # YAML reads `alert: yes` as True, which float() would take for a level of 1
        raise UsageError(f"{source}: level {name}={value!r} is not a number")
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise UsageError(f"{source}: level {name}={value!r} is not a number") from None
    if not v > 0 or v != v or v == float("inf"):
        raise UsageError(f"{source}: level {name}={value!r} must be a positive finite number")
    if unit not in LEVEL_UNITS:
        raise UsageError(f"{source}: level {name} has unit {unit!r}; allowed: {', '.join(LEVEL_UNITS)}")
    p = None
    if warn_probability is not None:
        p = float(warn_probability)
        if not 0.0 < p < 1.0:
            raise UsageError(f"{source}: warning probability of {name} is {warn_probability!r}; it must lie "
                             "strictly between 0 and 1")
    return WarningLevel(v, unit, p)


def meta_path(data_dir, station_id: str) -> Path:
    return Path(data_dir).expanduser() / META_DIR / f"{station_id}.json"


def read_station_meta(data_dir, station_id: str) -> StationMeta:
    """The station's metadata; defaults (no levels, no curve, calendar days) where it has no file."""
    path = meta_path(data_dir, station_id) if data_dir is not None else None
    if path is None or not path.is_file():
        return StationMeta(station_id=str(station_id))
    from .tables import read_json

    try:
        d = read_json(path, "station metadata file")
    except DataError as e:
        raise DataError(f"cannot read the station metadata: {e}") from None
    return StationMeta.from_dict(d, str(station_id), source=str(path))


def write_station_meta(data_dir, meta: StationMeta) -> Path:
    """Write ``meta`` atomically (an earlier good file stays until the new one is complete)."""
    # as the import writes it: a gauge's column names (时间, 水位) stay readable
    return atomic_write_text(meta_path(data_dir, meta.station_id),
                             json.dumps(meta.to_dict(), indent=2, ensure_ascii=False) + "\n")


#: A flow warning level this many times the record's highest daily flow is taken for a unit error.
MAX_LEVEL_RATIO = 10.0


def times_text(ratio: float) -> str:
    """How many times larger, as a one-line error says it: whole up to a million (``115``), beyond in powers of ten
    (``1e+306``, not the 300 digits of a 1e308 typed for 50)."""
    return f"{ratio:.0f}" if ratio < 1e6 else f"{ratio:.0e}"


def check_level_flows(flows, levels: dict, rating=None, flag: str = "--warning_levels",
                      stage_flag: str = "--levels_in stage", warn: bool = True) -> list:
    """Lines naming each warning level (name -> :class:`WarningLevel`) as a flow; a one-line DataError for a
    level the record's daily ``flows`` (m3/s) could never warn on, naming ``flag`` (and ``stage_flag``, how
    water levels are given).

    A flow level more than :data:`MAX_LEVEL_RATIO` times the record's highest daily flow would never warn
    (a level in l/s, say); one below the record's lowest daily flow would warn every day. A water level
    (unit m) is converted by ``rating`` (its extrapolation above the gauged range is logged once; ``warn``
    False: not here, where the caller converts the level again and logs it then).
    """
    if not levels:
        return []
    q = pd.Series(flows, dtype="float64").dropna()
    lines = []
    for name, lv in levels.items():
        if lv.unit == "m":
            from .rating import level_discharge
            try:
                flow, shown = level_discharge(rating, lv.value, warn=warn), f"{lv.value:g} m (water level) = "
            except UsageError as e:  # the curve's message names the stage only: name the level too
                raise UsageError(f"{flag} {name}={lv.value:g} m: {e}") from None
        else:
            flow, shown = float(lv.value), ""
        lines.append(f"warning level {name}: {shown}{flow:.3g} m3/s")
        if not len(q):
            continue
        # a water level is compared as its flow: say so, and point at the curve's datum, not at the unit flag
        stage = lv.unit == "m"
        through = f" through the rating curve ({lv.value:g} m = {flow:.3g} m3/s)" if stage else ""
        if flow > MAX_LEVEL_RATIO * q.max():
            hint = ("is the level in m, on the curve's datum?" if stage else
                    f"levels are in m3/s (a level in l/s?), or water levels in m with {stage_flag}")
            raise DataError(f"{flag} {name}={lv.value:g} {lv.unit} is {times_text(flow / q.max())} times the record's "
                            f"highest daily flow ({q.max():.3g} m3/s){through}: it would never warn; {hint}")
        if flow < q.min():
            hint = ("is the level in m, on the curve's datum?" if stage else
                    f"levels are in m3/s, or water levels in m with {stage_flag}")
            raise DataError(f"{flag} {name}={lv.value:g} {lv.unit} lies below every daily flow of the record "
                            f"(lowest {q.min():.3g} m3/s){through}: it would warn every day; {hint}")
    return lines
