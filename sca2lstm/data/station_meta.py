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
                  "base_url": null}
    }

``weather``: where ``sca2lstm weather fetch`` and the service's daily issue get the station's weather
forecast (``source``; without it the daily issue fetches nothing), at ``points`` (averaged; default the
gauge), from ``models``, every member of the ensemble API with ``ensemble``, from a self-hosted or paid
host ``base_url`` (default: the service's ``--weather_base_url``, else Open-Meteo's free API). The section
is checked when the file is read (:class:`WeatherSection`): a hand-edited value of the wrong kind, or an
unknown key, is a one-line DataError naming the file, the key, the value and what is allowed.

A basin without such a file (the CAMELS basins, the synthetic ones) has no user levels, no rating curve
and calendar days (00:00, labelled by their start). Unknown keys are kept as they are (provenance).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Literal, Optional

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..errors import DataError, UsageError
from ..fileio import atomic_write_text

META_DIR = "meta"
LEVEL_UNITS = ("m3/s", "m")  # a flow level, or a water level (stage) that needs the rating curve
DAY_LABELS = ("start", "end")  # a day is named by the date on which it starts (hydrological) or ends
STAMPS = ("start", "end")  # a sub-daily timestamp marks the start or the end of the interval it stands for
_TIME = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
_LEVEL_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]{0,31}$")
# Keys this module owns; every other key of the JSON object is provenance and is written back unchanged.
OWN_KEYS = ("warning_levels", "rating_curve", "day", "weather", "flood_frequency")
#: Distributions of the return-period levels (sca2lstm.evaluation.levels): GLO (the UK's Flood Estimation
#: Handbook), GEV, PE3 (China's SL 44).
FLOOD_DISTRIBUTIONS = ("glo", "gev", "pe3")
#: Weather sources a station's ``weather.source`` may name (what the service's daily issue can fetch from).
WEATHER_SOURCES = ("open-meteo",)
_WEATHER_EXAMPLE = '{"source": "open-meteo", "points": [[51.5, -1.2]], "models": [], "ensemble": false}'

Latitude = Annotated[float, Field(ge=-90, le=90)]
Longitude = Annotated[float, Field(ge=-180, le=180)]


class WeatherSection(BaseModel):
    """The ``weather`` section of a station's metadata file, as a hand-edited file must hold it.

    Declared (pydantic, strict as :mod:`sca2lstm.config`) so that the kind and range of every key is checked
    when the file is read, not deep inside a fetch: a number written as text, a bare point, a model name not
    in a list. Each field's ``description`` is what the error line says is allowed. ``null`` is a key's
    default, as if it were not given.
    """

    # strict: "51.5" or true is not a latitude; a list (JSON's only array) is read as a [lat, lon] pair below
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True, allow_inf_nan=False)

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


def _json(value) -> str:
    """``value`` as the JSON file writes it (``true``, ``["a"]``), for an error line about that file."""
    try:
        return json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        return repr(value)


def check_weather(section, source: str = "station metadata") -> dict:
    """The ``weather`` section ``section`` of a station's metadata checked against :class:`WeatherSection`:
    the keys it gives, their values normalised to JSON types ({} for null); a one-line DataError naming
    ``source`` (the file), the key, the bad value and what is allowed."""
    if section is None:
        return {}
    if not isinstance(section, dict):
        raise DataError(f"{source}: weather={_json(section)} must be an object, e.g. {_WEATHER_EXAMPLE}")
    try:
        return WeatherSection.model_validate(section).model_dump(mode="json", exclude_unset=True)
    except ValidationError as e:
        err = e.errors(include_url=False)[0]
    key = str(err["loc"][0])
    if err["type"] == "extra_forbidden":
        raise DataError(f"{source}: weather.{key} is not a key of the weather section; its keys are "
                        f"{', '.join(WeatherSection.model_fields)}")
    # the key, or the item of a list key (a point, a model name), as it stands in the file
    name, value = f"weather.{key}", section[key]
    if len(err["loc"]) > 1 and isinstance(value, list):
        name, value = f"{name}[{err['loc'][1]}]", value[err["loc"][1]]
    raise DataError(f"{source}: {name}={_json(value)} is not allowed; expected "
                    f"{WeatherSection.model_fields[key].description}")


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
        if not isinstance(d, dict):
            raise DataError(f"{source}: expected a JSON object, got {type(d).__name__}")
        day = d.get("day") or {}
        levels = {}
        for name, lv in (d.get("warning_levels") or {}).items():
            if not isinstance(lv, dict) or "value" not in lv:
                raise DataError(f"{source}: warning level {name!r} must be an object with 'value' and 'unit'")
            levels[name] = check_level(name, lv["value"], lv.get("unit", "m3/s"), lv.get("warn_probability"),
                                       source)
        ff = d.get("flood_frequency") or {}
        dist, start = check_flood_frequency(ff.get("distribution"), ff.get("water_year_start", 10), source)
        meta = cls(station_id=str(d.get("station_id", station_id)), warning_levels=levels,
                   rating_curve=d.get("rating_curve"), day_start=day.get("start") or "00:00",
                   day_label=day.get("label") or "start", stamp=day.get("stamp") or "start",
                   timezone=day.get("timezone"), weather=check_weather(d.get("weather"), source),
                   provenance={k: v for k, v in d.items() if k not in OWN_KEYS and k != "station_id"},
                   distribution=dist, water_year_start=start)
        check_day_rule(meta.day_start, meta.day_label, meta.stamp, source)
        return meta


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
    ASCII. A part without ``=`` (``what`` names the expected form) or a name given twice is a one-line
    UsageError naming ``flag`` and showing ``example``.
    """
    if isinstance(text, dict):
        pairs = [(str(k).strip(), v) for k, v in text.items()]
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
    return pairs


def check_level(name, value, unit="m3/s", warn_probability=None, source: str = "--warning_levels") -> WarningLevel:
    """A validated :class:`WarningLevel`, or a one-line UsageError naming the bad part."""
    if not isinstance(name, str) or not _LEVEL_NAME.match(name):
        raise UsageError(f"{source}: level name {name!r} must start with an ASCII letter and hold only ASCII letters, digits, "
                         "'_' or '-' (e.g. alert, warning, danger)")
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
    return atomic_write_text(meta_path(data_dir, meta.station_id), json.dumps(meta.to_dict(), indent=2) + "\n")


#: A flow warning level this many times the record's highest daily flow is taken for a unit error.
MAX_LEVEL_RATIO = 10.0


def check_level_flows(flows, levels: dict, rating=None, flag: str = "--warning_levels") -> list:
    """Lines naming each warning level (name -> :class:`WarningLevel`) as a flow; a one-line DataError for a
    level the record's daily ``flows`` (m3/s) could never warn on, naming ``flag``.

    A flow level more than :data:`MAX_LEVEL_RATIO` times the record's highest daily flow would never warn
    (a level in l/s, say); one below the record's lowest daily flow would warn every day. A water level
    (unit m) is converted by ``rating`` (its extrapolation above the gauged range is logged once).
    """
    if not levels:
        return []
    q = pd.Series(flows, dtype="float64").dropna()
    lines = []
    for name, lv in levels.items():
        if lv.unit == "m":
            from .rating import level_discharge
            flow, shown = level_discharge(rating, lv.value), f"{lv.value:g} m (water level) = "
        else:
            flow, shown = float(lv.value), ""
        lines.append(f"warning level {name}: {shown}{flow:.3g} m3/s")
        if not len(q):
            continue
        if flow > MAX_LEVEL_RATIO * q.max():
            raise DataError(f"{flag} {name}={lv.value:g} {lv.unit} is {flow / q.max():.0f} times the record's "
                            f"highest daily flow ({q.max():.3g} m3/s): it would never warn; levels are in m3/s (a "
                            "level in l/s?), or water levels in m with --levels_in stage")
        if flow < q.min():
            raise DataError(f"{flag} {name}={lv.value:g} {lv.unit} lies below every daily flow of the record "
                            f"(lowest {q.min():.3g} m3/s): it would warn every day; levels are in m3/s, or water "
                            "levels in m with --levels_in stage")
    return lines
