"""Fetch a station's weather forecast (or an archive of past ones) and save it: the functions behind
``sca2lstm weather fetch`` / ``weather archive``, also for the service's daily issue.

:func:`fetch_forecast` asks Open-Meteo for each point (the gauge by default, or several points averaged)
and returns the responses (:class:`~sca2lstm.weather.openmeteo.Answers`, with their bodies as received)
and the long table ``issue_date, lead_days, valid_date, member, precipitation, temperature, et0`` (issue
date: the response's first day; lead k: the day k days after). :func:`save_forecast` writes the table and,
beside it, the raw responses (``<name>.raw.json``, byte for byte as received), both atomically and only
after every request has succeeded. :func:`fetch_archive` does the same with the previous-runs API
(``issue_date, lead_days, valid_date, <inputs>``).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ..data import reader
from ..data.station_meta import meta_path, read_station_meta
from ..errors import DataError, UsageError, WeatherSourceError
from ..fileio import atomic_write_files
from ..logs import progress_bar
from .openmeteo import (
    DAILY,
    DECIMALS,
    HOURLY,
    WEATHER_NAMES,
    Answers,
    OpenMeteoClient,
    check_leads,
    issue_table,
    parse_previous_runs,
    parse_response,
    previous_runs_params,
    request_params,
)
from .files import MAX_FORECAST_DISTANCE_KM, check_weather_values, distance_km, gauge_position, said_place

log = logging.getLogger(__name__)


@dataclass
class Location:
    """Where and how to ask: points (lat, lon), the station's day rule and timezone."""

    points: list
    day_start: str = "00:00"
    day_label: str = "start"
    timezone: str = "auto"

    @property
    def hourly(self) -> bool:
        return self.day_start != "00:00" or self.day_label != "start"


def parse_points(text: str) -> list[tuple[float, float]]:
    """``"lat,lon;lat,lon"`` -> [(lat, lon), ...] (a UsageError naming the bad pair)."""
    out = []
    for part in str(text).split(";"):
        part = part.strip()
        if not part:
            continue
        try:
            lat, lon = (float(v) for v in part.split(","))
        except ValueError:
            raise UsageError(f"--points {part!r}: expected lat,lon in decimal degrees (pairs separated by ';'), "
                             "e.g. 51.5,-1.2;51.6,-1.0") from None
        if not (-90 <= lat <= 90 and -180 <= lon <= 180):
            raise UsageError(f"--points {part!r}: latitude must lie in [-90, 90] and longitude in [-180, 180]")
        out.append((lat, lon))
    if not out:
        raise UsageError(f"--points {text!r}: no lat,lon pair")
    return out


def station_location(data_dir, basin: str, points=None) -> Location:
    """The points to fetch for ``basin`` and its day rule: ``points`` if given, else the station metadata's
    weather points, else the gauge (attributes ``gauge_lat``, ``gauge_lon``). Points whose mean lies too far
    from a known gauge are refused (:func:`check_points_near_gauge`)."""
    meta = read_station_meta(data_dir, basin) if data_dir is not None else None
    pts = list(points) if points else None
    if pts is None and meta is not None and meta.weather.get("points"):
        pts = [tuple(map(float, p)) for p in meta.weather["points"]]
    if pts is None:
        try:
            pts = [(reader.basin_attribute(data_dir, basin, "gauge_lat"),
                    reader.basin_attribute(data_dir, basin, "gauge_lon"))]
        except DataError:
            pts = []
        if not pts or any(v != v for v in pts[0]):
            raise DataError(f"basin {basin}: no gauge_lat/gauge_lon in its attributes and no weather points in its "
                            "station metadata; give --points lat,lon")
    elif data_dir is not None:
        what = "--points" if points else f"the weather points of {meta_path(data_dir, basin)}"
        check_points_near_gauge(pts, data_dir, basin, what)
    tz = (meta.timezone if meta is not None and meta.timezone else "auto")
    return Location(pts, meta.day_start if meta else "00:00", meta.day_label if meta else "start", tz)


def check_points_near_gauge(points, data_dir, basin: str, what: str = "--points") -> None:
    """A one-line DataError, before any request, where the mean of ``points`` (the place a fetched table says
    it is for) lies :data:`~sca2lstm.weather.files.MAX_FORECAST_DISTANCE_KM` or more from the basin's gauge
    (``gauge_lat``, ``gauge_lon``): every forecast would refuse the table
    (:func:`~sca2lstm.weather.files.check_location`). Nothing to check where the gauge's position is unknown."""
    gauge = gauge_position(data_dir, basin)
    if gauge is None:
        return
    glat, glon = gauge
    lat, lon = (sum(p[i] for p in points) / len(points) for i in (0, 1))
    km = distance_km(glat, glon, lat, lon)
    if km < MAX_FORECAST_DISTANCE_KM:
        return
    given = ";".join(f"{a:g},{b:g}" for a, b in points)
    place = f"{given}" if len(points) == 1 else f"{given} (their mean {lat:.2f},{lon:.2f})"
    swapped = len(points) == 1 and distance_km(glat, glon, lon, lat) < MAX_FORECAST_DISTANCE_KM
    hint = "latitude and longitude swapped? " if swapped else ""
    raise DataError(f"{what} {place} is {km:.0f} km from basin {basin}'s gauge ({glat:.2f},{glon:.2f}); a weather "
                    f"forecast for a place {MAX_FORECAST_DISTANCE_KM:.0f} km or more from the gauge is another "
                    f"station's and every flow forecast refuses it: {hint}give points lat,lon within "
                    f"{MAX_FORECAST_DISTANCE_KM:.0f} km of the gauge; nothing fetched")


def fetch_forecast(loc: Location, leads: int, *, ensemble: bool = False, models=None, base_url=None, api_key=None,
                   client_options=None, leads_from: str | None = None) -> tuple[list, pd.DataFrame]:
    """Ask Open-Meteo for every point of ``loc``; return (the answers, :class:`Answers`, long table).

    More ``leads`` than the API gives (:func:`~sca2lstm.weather.openmeteo.check_leads`; ``leads_from`` says
    where they come from) are refused before any request.

    The table (:func:`~sca2lstm.weather.openmeteo.issue_table`): ``issue_date, lead_days, valid_date,
    member, precipitation, temperature, et0`` (the variables the response has), averaged over the points,
    then ``latitude, longitude`` (their mean), the issue date being the response's first day (lead 0 is the
    issue day itself). A day without any value is left out; a value Open-Meteo answered null for stays a
    gap (NaN), named in a warning (:func:`null_note`). An answer whose days cannot give a flow forecast its
    ``leads`` lead days is refused (:func:`check_answer_leads`).
    """
    api = "ensemble" if ensemble else "forecast"
    check_leads(api, leads, leads_from)
    client = OpenMeteoClient(api, base_url, api_key, **(client_options or {}))
    docs, tables = Answers(), []
    for lat, lon in loc.points:
        doc, body = client.get_raw(request_params(lat, lon, WEATHER_NAMES, leads, loc.hourly, loc.timezone, models))
        if isinstance(doc, list):  # one location asked: a list answer holds it alone
            doc = doc[0] if len(doc) == 1 else doc
        check_answer_place(doc, lat, lon, "Open-Meteo response")
        docs.append(doc)
        docs.bodies.append(body)
        source = f"Open-Meteo response for {lat},{lon}"
        t = parse_response(doc, WEATHER_NAMES, loc.hourly, loc.day_start, loc.day_label, source=source)
        check_answer_variables(t, "hourly" if loc.hourly else "daily", source)
        tables.append(t)
    table = issue_table(tables, docs[0], loc.hourly)
    check_answer_values(table, "Open-Meteo response")
    check_answer_leads(table, leads, "Open-Meteo response", leads_from)
    note = null_note(table, leads)
    if note:
        log.warning("%s", note)
    return docs, with_place(table, loc)


#: What every flow forecast reads from a fetched forecast: the rain, and the temperature the model reads or derives
#: its PET from. ET0 may be missing (PET is then derived from the temperature).
REQUIRED_WEATHER = ("precipitation", "temperature")


def check_answer_variables(table: pd.DataFrame, block: str, what: str, suffix: str = "") -> None:
    """A WeatherSourceError naming a variable of :data:`REQUIRED_WEATHER` that the answer lacks altogether (a
    self-hosted instance without it, say), or has only nulls of (a weather model without it): a table without
    it would be refused by every forecast that reads it, so it is not written over an earlier one."""
    names = HOURLY if block == "hourly" else DAILY
    for n in REQUIRED_WEATHER:
        if n not in table.columns:
            raise WeatherSourceError(f"{what}: no '{block}.{names[n]}{suffix}' in the answer, which a flow forecast "
                                     "needs; nothing written")
        if len(table) and table[n].isna().all():
            raise WeatherSourceError(f"{what}: '{block}.{names[n]}{suffix}' is null on every day of the answer (a "
                                     "weather model without it? choose another with --models); a flow forecast "
                                     "needs it; nothing written")


def check_answer_values(table: pd.DataFrame, what: str) -> None:
    """A WeatherSourceError naming the first value outside the physical bounds of a daily value
    (:data:`~sca2lstm.weather.files.WEATHER_BOUNDS`; a temperature in kelvin stated as nothing): the file
    would be refused when read, so it is not written."""
    try:
        check_weather_values(table, what)
    except DataError as e:
        raise WeatherSourceError(f"{e}; nothing written") from None


def check_answer_leads(table: pd.DataFrame, leads: int, what: str, leads_from: str | None = None) -> None:
    """A WeatherSourceError where the answer's days cannot give any flow forecast its ``leads`` lead days (fewer
    days than asked, or a weather model whose range ends early answering null): one issued the day before the
    answer's issue day (fetched the morning after it) reads the answer's leads 0 .. ``leads`` - 1, one issued on
    the issue day its leads 1 .. ``leads`` (:meth:`~sca2lstm.weather.files.WeatherForecast.members`). A table
    with neither would be written, and refused by every forecast that reads it."""
    have = set(table["lead_days"])
    if set(range(leads)) <= have or set(range(1, leads + 1)) <= have:
        return
    # not empty: an answer without a value of rain or temperature was refused before (check_answer_variables)
    issue = table["issue_date"].iloc[0]
    lead = next(k for k in range(1, leads + 1) if k not in have)
    first, last = (issue + pd.Timedelta(days=k) for k in (min(have), max(have)))
    asked = f"{leads_from} is {leads} lead days" if leads_from else f"{leads} lead days asked"
    raise WeatherSourceError(f"{what} has no day of lead {lead} ({(issue + pd.Timedelta(days=lead)).date()}; its "
                             f"days run {first.date()}..{last.date()}: fewer than asked, or null): {asked}, which a "
                             f"flow forecast issued on {(issue - pd.Timedelta(days=1)).date()} or {issue.date()} "
                             "reads; nothing written")


def null_note(table: pd.DataFrame, leads: int) -> str | None:
    """A line naming the values Open-Meteo answered null for (a member or a day without data) on lead days
    0..``leads`` of a fetched forecast, or the first lead day it gives nothing for (an answer ending early, or a
    day null in every variable: the table has no row of either), and what a flow forecast then does; None where
    there are none. A variable the answer has no value of at all is not named (the model
    does without it or derives it)."""
    if table.empty:
        return None
    names = [c for c in WEATHER_NAMES if c in table.columns and table[c].notna().any()]
    # A day null in every variable has no row in the table (issue_table leaves such days out): a member's
    # lead day 1..leads without a row is a gap too (not lead 0: a station day named by its end date lacks it).
    full = pd.MultiIndex.from_product([sorted(table["member"].unique()), range(1, leads + 1)],
                                      names=["member", "lead_days"])
    keyed = table.set_index(["member", "lead_days"])
    absent = full.difference(keyed.index)
    t = pd.concat([keyed, pd.DataFrame(index=absent, columns=names, dtype=float)]).reset_index()
    t["valid_date"] = table["issue_date"].iloc[0] + pd.to_timedelta(t["lead_days"], unit="D")
    t = t[t["lead_days"] <= leads]
    bad = t[t[names].isna().any(axis=1)]
    if bad.empty:
        return None
    r = bad.sort_values(["valid_date", "member"]).iloc[0]
    col = next(c for c in names if pd.isna(r[c]))
    day = f"{r['valid_date'].date()} (lead {r['lead_days']})"
    n = table["member"].nunique()
    members = sorted(bad[bad[col].isna() & (bad["valid_date"] == r["valid_date"])]["member"].unique())
    # a day without a row is not a null the answer gave: the answer may end before it (a short answer)
    missing = (r["member"], r["lead_days"]) in absent
    if len(members) == n:
        said = (f"Open-Meteo's answer gives nothing for {day}{' for any member' if n > 1 else ''} (it ends before "
                "that day, or has it null in every variable)" if missing else
                f"Open-Meteo answered null for {col} on {day}{' for every member' if n > 1 else ''}")
        return f"{said}: a flow forecast needing that {'day' if missing else 'value'} cannot use this forecast"
    # other members have the day, so the answer holds it: this member's values on it are null
    what = "every variable" if missing else col
    members = sorted(bad["member"].unique())
    return (f"Open-Meteo answered null for {len(members)} of {n} members (member {r['member']}: {what} null on "
            f"{day}; members {', '.join(map(str, members))}): a flow forecast leaves a member out where it lacks a "
            "lead day, as long as at least half of them are complete")


def with_place(table: pd.DataFrame, loc: Location) -> pd.DataFrame:
    """``table`` with the columns ``latitude, longitude`` (the mean of the points asked, whose answers were
    checked to be for them), so that a saved table says where it is for, as its raw answer does."""
    lat, lon = (float(sum(p[i] for p in loc.points) / len(loc.points)) for i in (0, 1))
    return table.assign(latitude=round(lat, 4), longitude=round(lon, 4))


def check_answer_place(doc, lat: float, lon: float, what: str) -> None:
    """A WeatherSourceError where the answer says it is for a place :data:`MAX_FORECAST_DISTANCE_KM` or more
    from the point asked (a misconfigured --base_url or proxy): not this station's weather; a malformed answer
    where it says so with something that is not a number in degrees (null, a string): it could not be checked."""
    try:
        got = said_place(doc, what)  # the rule a saved answer is read by (forecast --weather_forecast)
    except DataError as e:
        raise WeatherSourceError(f"{e}; nothing written") from None
    if got is None:
        return  # an answer without coordinates (or not an object, refused as it is parsed): nothing to compare
    km = distance_km(lat, lon, *got)
    if km >= MAX_FORECAST_DISTANCE_KM:
        raise WeatherSourceError(f"{what} is for {got[0]:.2f}, {got[1]:.2f}, {km:.0f} km from the point asked "
                                 f"({lat:.2f}, {lon:.2f}): not this station's weather; nothing written")


def output_paths(out, what: str = "output") -> tuple[Path, Path]:
    """``out`` and the raw answer's path beside it (``<out stem>.raw.json``), where :func:`save_forecast`
    writes; a one-line UsageError (``what``: ``--out`` where the flag gave it) where either is a folder, which
    nothing can be written over. Checked before any request, and again before either file is written."""
    out = Path(out).expanduser()
    raw = out.with_name(out.stem + ".raw.json")
    if out.is_dir():
        raise UsageError(f"{what} {out} is a folder; give --out a file, e.g. {out / 'weather.csv'}")
    if raw.is_dir():
        raise UsageError(f"{what} {out}: the raw answer is saved beside it as {raw}, which is a folder; move that "
                         "folder or give another --out")
    return out, raw


def save_forecast(table: pd.DataFrame, docs: list, out) -> tuple[Path, Path]:
    """Write ``out`` (CSV) and ``<out stem>.raw.json`` beside it, atomically and together; returns both paths.

    The raw file is the answer as received, byte for byte, where ``docs`` are :class:`Answers` (what the
    fetch functions return); other answers in hand are written as JSON. Neither is written where the other's
    path is a folder (:func:`output_paths`)."""
    out, raw = output_paths(out)
    if isinstance(docs, Answers) and len(docs.bodies) == len(docs):
        body = docs.raw
    else:
        body = (json.dumps(docs[0] if len(docs) == 1 else docs, indent=1) + "\n").encode("utf-8")
    text = table.to_csv(index=False, float_format=f"%.{DECIMALS}f", date_format="%Y-%m-%d")
    # both written before either replaces its earlier file: a failed write (a full disk) leaves the earlier pair,
    # never this answer beside the earlier table (either file is read as the forecast)
    atomic_write_files({raw: body, out: text})
    return out, raw


def fetch_archive(loc: Location, start, end, leads: int, *, models=None, base_url=None, api_key=None,
                  client_options=None, leads_from: str | None = None,
                  progress: bool = False) -> tuple[list, pd.DataFrame]:
    """Past forecasts from the previous-runs API, averaged over the points: (raw responses, archive table
    ``issue_date, lead_days, valid_date, precipitation, temperature, et0, latitude, longitude``). More
    ``leads`` than its ``_previous_dayN`` offsets are refused before any request, as in :func:`fetch_forecast`.
    ``progress``: a bar over the points' requests on a terminal (nothing when redirected): each is years of hourly
    values, answered in seconds to a minute, or retried for minutes where the network fails."""
    check_leads("previous-runs", leads, leads_from)
    client = OpenMeteoClient("previous-runs", base_url, api_key, **(client_options or {}))
    docs, tables = Answers(), []
    # A station day named by its end (day.label end) holds hours of the calendar day before: the first valid
    # day asked needs the day before it, which a request from `start` lacked (its first day was always a gap).
    first = pd.Timestamp(start) - pd.Timedelta(days=1 if loc.day_label == "end" else 0)
    points = progress_bar(loc.points, progress, desc="Open-Meteo previous-runs", unit="point", leave=False)
    for lat, lon in points:
        doc, body = client.get_raw(previous_runs_params(lat, lon, WEATHER_NAMES, first, end, leads, loc.timezone,
                                                        models))
        check_answer_place(doc, lat, lon, "Open-Meteo previous-runs response")
        docs.append(doc)
        docs.bodies.append(body)
        t = parse_previous_runs(doc, WEATHER_NAMES, leads, loc.day_start, loc.day_label,
                                source=f"Open-Meteo previous-runs response for {lat},{lon}")
        check_answer_variables(t, "hourly", f"Open-Meteo previous-runs response for {lat},{lon}", "_previous_dayN")
        t = t[t["valid_date"].between(pd.Timestamp(start), pd.Timestamp(end))]
        if t.empty:  # an archive without a day would be written over an earlier one, and read as no forecast
            raise WeatherSourceError(f"Open-Meteo previous-runs response for {lat},{lon}: no valid day from "
                                     f"{pd.Timestamp(start).date()} to {pd.Timestamp(end).date()} has all 24 hours of "
                                     "rain and temperature (Open-Meteo answers null where it has no run: before the "
                                     "weather model's archive starts?); nothing written")
        check_answer_values(t, f"Open-Meteo previous-runs response for {lat},{lon}")
        tables.append(t)
    if len(tables) == 1:
        out = tables[0]
    else:
        cat = pd.concat(tables, ignore_index=True)
        groups = cat.groupby(["issue_date", "lead_days", "valid_date"])
        # a day some point lacks is left out: the mean of the other points would be another catchment's
        out = groups.mean(numeric_only=True)[groups.size() == len(tables)].reset_index()
    last = out["valid_date"].max() if len(out) else None
    if last is None or last < pd.Timestamp(end):
        log.warning("the answer covers valid days up to %s, not to %s as asked: the archive ends there",
                    last.date() if last is not None else "none", pd.Timestamp(end).date())
    note = archive_gap_note(out, start, min(last, pd.Timestamp(end)) if last is not None else end, leads)
    if note:
        log.warning(note)
    return docs, with_place(out, loc)


def archive_gap_note(table: pd.DataFrame, start, end, leads: int) -> str | None:
    """A line naming the leads of an archive that lack valid days of ``start`` .. ``end`` (Open-Meteo answered
    null, or not all 24 hours, there), with the count and the first such day; None where every lead has every
    day. Such a day has no row (:func:`~sca2lstm.weather.openmeteo.parse_previous_runs`), so without the line a
    lead answered null throughout left an archive whose every issue date is incomplete, written with exit 0."""
    days = pd.date_range(pd.Timestamp(start), pd.Timestamp(end), freq="D")
    if days.empty:
        return None
    parts, total = [], 0
    for k in range(1, leads + 1):
        have = pd.DatetimeIndex(table.loc[table["lead_days"] == k, "valid_date"])
        missing = days.difference(have)
        if len(missing):
            total += len(missing)
            parts.append(f"lead {k}: {len(missing)} of {len(days)} (first {missing[0].date()})")
    if not parts:
        return None
    return (f"the answer has no complete forecast (null, or not all 24 hours) for valid days of {'; '.join(parts)}: "
            "they are gaps in the archive, and an issue date lacking one of its lead days is left out of training "
            "windows and reforecasts")
