"""Weather forecast files: what ``forecast --weather_forecast`` and the service read.

Three layouts are read (:func:`read_forecast_file`):

* a **saved Open-Meteo response** (``.json``; what ``sca2lstm weather fetch`` saves as ``*.raw.json``):
  one response, or a list of responses (several points, averaged), deterministic or ensemble
  (``_memberNN`` keys), daily, or hourly for a station whose day starts at another hour;
* a **long table** (CSV) ``issue_date, lead_days, valid_date[, member], <inputs>[, latitude, longitude]``
  (what ``weather fetch`` writes, and the layout of an archive of past forecasts); a table holding several
  issue dates is an archive, and a forecast for issue date t0 takes the rows issued on t0. The optional
  ``latitude, longitude`` say where the forecast is for (``weather fetch`` writes them), so that a forecast
  for another place is refused as a saved answer's coordinates are.
  ``member`` holds whole numbers or names (``control``, ``pf01``; :func:`member_ids`), and may be called
  ``number`` (ECMWF's) or ``ensemble_member``;
* a plain CSV ``date, <inputs>`` (one row per lead day) is not read here: the caller passes it on as a
  table, as before.

Input columns carry the model's input names (``precipitation``, ``temperature``, and ``pet`` or
``peti``). :func:`complete_pet` gives a table the PET the model reads, of the kind the station's history read
(:func:`pet_rule`, from where the station's PET came: :func:`sca2lstm.data.dataset.pet_source`): Open-Meteo's
FAO-56 reference evapotranspiration (ET0, the column ``et0`` of a parsed response) only where the station has a PET
column of its own read by a model on ``pet`` (or its ``pet`` read as a model's ``peti``); a station whose PET was
Oudin PET (``pet_from_temperature: always``, or ``missing`` on a file without PET) or a model on CAMELS ``peti``
gets Oudin PET from the forecast temperature and the gauge latitude (:func:`sca2lstm.data.pet.oudin_pet`), never
ET0. A table's own column of the model's PET is read (a model on ``peti`` at a station whose history is its own
``pet`` reads the table's ``pet`` column first: :func:`station_pet`), except where the station's PET is Oudin PET: Oudin PET
whatever the column holds. A model that never derives PET (``never``) gets no Oudin PET: a forecast without its PET
is refused. In an archive each run (an issue date's member) gets its PET as it alone would (:func:`pet_ways`), not
one way for the whole file.
"""

from __future__ import annotations

import difflib
import logging
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..data.pet import PET_COLUMNS, oudin_pet
from ..data.station import MAX_PRECIPITATION_MM
from ..data.tables import parse_csv, parse_dates, parse_json, read_bytes, read_json
from ..errors import DataError
from ..notes import Note, note_value
from ..words import listed, say
from .openmeteo import WEATHER_NAMES, issue_table, parse_response

log = logging.getLogger(__name__)
LONG_KEYS = ("issue_date", "lead_days", "valid_date", "member")
#: Optional columns of a long table: the place (decimal degrees) the forecast is for.
PLACE_COLUMNS = ("latitude", "longitude")


@dataclass
class WeatherForecast:
    """A weather forecast (or an archive of them) as a long table.

    ``table`` columns: ``issue_date`` (NaT where the file does not say), ``valid_date``, ``member`` (int,
    0 for a single run), and the input columns. ``source`` names the file for error messages.
    """

    table: pd.DataFrame
    source: str
    location: tuple | None = None  # (lat, lon) the forecast is for, where the file says (Open-Meteo answers)
    # ``issue_date, member, way``: how each run got the model's PET (:data:`PET_WAYS`), once completed
    # (:func:`sca2lstm.weather.archive.with_model_pet`); None before
    pet_runs: pd.DataFrame | None = None

    @property
    def n_members(self) -> int:
        return int(self.table["member"].nunique())

    @property
    def issue_dates(self) -> pd.DatetimeIndex:
        return pd.DatetimeIndex(self.table["issue_date"].dropna().unique()).sort_values()

    def age_note(self, t0) -> str | None:
        """A note where this single forecast was issued before the flow forecast's issue date ``t0``: its lead
        days are later leads of an older forecast, less skilful than the intervals (fitted on fresh forecasts)
        assume."""
        if len(self.issue_dates) != 1:
            return None
        days = (pd.Timestamp(t0).normalize() - self.issue_dates[0]).days
        if days <= 0:
            return None
        return Note("old_weather_forecast", source=note_value(self.source), issued=str(self.issue_dates[0].date()),
                    days=int(days), day=str(pd.Timestamp(t0).date()), next=int(days + 1))

    def covered_days(self, inputs) -> tuple[pd.Timestamp, pd.Timestamp] | None:
        """``(first, last)``: the longest run of consecutive valid days, from the earliest, on which the same
        members, at least half of them (:meth:`members` leaves the others out), have a value of every one of
        ``inputs`` (None: no such day, or an input column is absent)."""
        t = self.table
        if any(c not in t.columns for c in inputs):
            return None
        ok = t[t[list(inputs)].notna().all(axis=1)]
        by_day = {d: set(g) for d, g in ok.groupby("valid_date")["member"]}
        enough = [d for d in sorted(by_day) if _enough(len(by_day[d]), self.n_members)]
        if not enough:
            return None
        first = last = enough[0]
        kept = by_day[first]
        while last + pd.Timedelta(days=1) in by_day and _enough(len(kept & by_day[last + pd.Timedelta(days=1)]),
                                                                  self.n_members):
            last += pd.Timedelta(days=1)
            kept = kept & by_day[last]
        return first, last

    def members(self, t0, leads: int, inputs, also=None, names=None) -> list[pd.DataFrame]:
        """One table ``date, <values>`` per member, the valid dates t0+1 .. t0+leads (``inputs`` required), in the
        order of the members' numbers; each table's ``attrs["member"]`` is its member's number in the file.
        ``also``: member number -> the columns that member requires besides ``inputs`` (the source of its PET,
        which differs between runs: :func:`pet_ways`). ``names``: column -> the name the file gives it, where the
        table renamed it (:func:`station_pet_names`), for the messages: a user fixes the column they wrote.

        An archive (several issue dates) gives the forecast issued on t0; a single forecast gives its rows
        valid on those days (a forecast fetched on the morning after t0 starts on t0 + 1). A member that
        lacks a day or a value (Open-Meteo answers null for a member without data) is left out, with a
        warning, where at least half of the members are complete: the others still sample the weather. Raises
        a one-line DataError naming the file when an input is missing, or a day or a value of the first
        incomplete member where fewer than half are complete (a single forecast: where it is incomplete).
        """
        t0 = pd.Timestamp(t0).normalize()
        t = self.table
        if len(self.issue_dates) == 1 and self.issue_dates[0] > t0 + pd.Timedelta(days=1):
            raise DataError(f"{self.source}: issued {self.issue_dates[0].date()}, after the morning of "
                            f"{(t0 + pd.Timedelta(days=1)).date()} when a forecast issued on {t0.date()} is made: it "
                            f"knows weather the forecaster did not have; give the weather forecast of {t0.date()} or "
                            f"{(t0 + pd.Timedelta(days=1)).date()}")
        if len(self.issue_dates) > 1:
            t = t[t["issue_date"] == t0]
            if t.empty:
                near = self.issue_dates[self.issue_dates <= t0]
                hint = f"; the latest before it is {near[-1].date()}" if len(near) else ""
                raise DataError(f"{self.source}: no forecast issued on {t0.date()} in this archive "
                                f"({self.issue_dates[0].date()}..{self.issue_dates[-1].date()}){hint}")
        require_inputs(t.columns, inputs, self.source)
        want = pd.date_range(t0 + pd.Timedelta(days=1), periods=leads, freq="D")
        out, gaps = [], []
        for m, g in t.groupby("member", sort=True):
            g = g.drop_duplicates("valid_date", keep="last").set_index("valid_date")
            lacking = [d for d in want if d not in g.index]
            if lacking:
                have = g.index.sort_values()
                span = f"{have[0].date()}..{have[-1].date()}" if len(have) else "no days"
                gaps.append((m, f"member {m} does not cover the lead days {want[0].date()}..{want[-1].date()} of "
                                f"issue date {t0.date()} (first missing {lacking[0].date()}; the file covers {span})"))
                continue
            values = [c for c in g.columns if c not in LONG_KEYS]
            rows = g.loc[want, values].astype(np.float64)
            need = g.loc[want].reindex(columns=list(dict.fromkeys([*inputs, *(also or {}).get(m, [])])))
            if need.isna().to_numpy().any():
                col = need.columns[need.isna().any(axis=0).to_numpy()][0]
                day = need.index[need[col].isna().to_numpy()][0]
                gaps.append((m, f"member {m} has no value of {(names or {}).get(col, col)!r} on {day.date()}"))
                continue
            frame = rows.rename_axis("date").reset_index()
            frame.attrs["member"] = int(m)   # the file's own number: the outputs name each member by it
            out.append(frame)
        if gaps and not _enough(len(out), len(out) + len(gaps)):
            raise DataError(f"{self.source}: {gaps[0][1]}")
        if not out:
            raise DataError(f"{self.source}: no forecast rows")
        if gaps:
            log.warning("%s: %d of %d members left out for issue date %s, incomplete on its lead days (%s%s); the "
                        "other %d are used", self.source, len(gaps), len(out) + len(gaps), t0.date(), gaps[0][1],
                        f"; members {', '.join(str(m) for m, _ in gaps)}" if len(gaps) > 1 else "", len(out))
        return out


def _enough(complete: int, members: int) -> bool:
    """Whether ``complete`` of ``members`` members suffice to stand for the forecast: at least one, and at least
    half (an ensemble with a member Open-Meteo has no data for; a single forecast needs itself)."""
    return complete >= 1 and 2 * complete >= members


def require_inputs(columns, inputs, source: str) -> None:
    """A one-line DataError naming the model inputs ``columns`` lack, and the column that looks like each
    (``precip`` for ``precipitation``): the model reads its inputs by name."""
    missing = [c for c in inputs if c not in columns]
    if not missing:
        return
    others = [str(c) for c in columns if c not in LONG_KEYS and c not in inputs and c != "date"]
    near = {c: difflib.get_close_matches(c, others, n=1, cutoff=0.5) for c in missing}
    hint = "; ".join(f"rename {m[0]!r} to {c!r}?" for c, m in near.items() if m)
    raise DataError(f"{source}: missing input column(s) {missing}; the model reads {list(inputs)}"
                    + (f" ({hint})" if hint else ""))


def is_long_table(columns) -> bool:
    """Whether a CSV's columns are a long table (issue/valid dates, leads or members) rather than ``date,
    <inputs>``."""
    return any(c in columns for c in LONG_KEYS)


def read_forecast_file(path, *, day_start: str = "00:00", day_label: str = "start") -> WeatherForecast | None:
    """Read a saved Open-Meteo JSON or a long-table CSV (module docstring); None for a plain ``date`` CSV.

    ``day_start``/``day_label``: the station's day rule, for a response with hourly values.
    """
    p = Path(path)
    if not p.is_file():
        raise DataError(f"--weather_forecast {p}: no such file")
    if p.suffix.lower() == ".json":
        return from_openmeteo(read_json(p, what="weather forecast JSON"), day_start=day_start, day_label=day_label,
                              source=f"--weather_forecast {p}")
    return parse_forecast(read_bytes(p, "CSV file")[0], "csv", source=f"--weather_forecast {p}")


def parse_forecast(raw: bytes, kind: str, *, source: str, day_start: str = "00:00", day_label: str = "start",
                   plain: bool = False) -> WeatherForecast | None:
    """The content of a weather forecast file in hand (a POSTed body): ``kind`` 'json' (a saved Open-Meteo
    answer) or 'csv' (a long table, or a plain ``date, <inputs>`` table). A plain table gives None, or with
    ``plain`` a one-member forecast without an issue date. Errors are one line naming ``source``."""
    if kind == "json":
        return from_openmeteo(parse_json(raw, source, "weather forecast JSON"), day_start=day_start,
                              day_label=day_label, source=source)
    if kind != "csv":
        raise ValueError(f"kind {kind!r}: expected 'json' or 'csv'")
    df = parse_csv(raw, source, encoding=None, **csv_dialect(raw, source))
    df = df.rename(columns=header_names(df.columns, source))
    if not is_long_table(df.columns) and not plain:
        return None
    return from_long_table(df, source)


def csv_dialect(raw: bytes, source: str) -> dict:
    """``sep``/``decimal`` of a table (a weather forecast, a reforecast to verify) from its header line: commas, or (a spreadsheet's export in
    much of Europe) semicolons or tabs, whose numbers may then carry a decimal comma (``2,5``; ``2.5`` is read
    as well). A one-line DataError for a binary file a table is often saved as instead (Parquet, Excel)."""
    if raw[:4] == b"PAR1":
        raise DataError(f"{source} is a Parquet file; save the table as CSV (pandas: DataFrame.to_csv)")
    if raw[:4] == b"PK\x03\x04":
        raise DataError(f"{source} is a zip file (an Excel workbook?); save the table as CSV")
    head = raw.lstrip(b"\xef\xbb\xbf\xff\xfe").split(b"\n", 1)[0].replace(b"\x00", b"")
    if b"," in head:
        return {}
    for sep in (";", "\t"):
        if sep.encode() in head:
            return {"sep": sep, "decimal": ","}
    return {}


#: The column names a forecast table is read by (besides the model's other inputs, read as they are).
KNOWN_COLUMNS = (*LONG_KEYS, "date", *PLACE_COLUMNS, "et0", "precipitation", "temperature", *PET_COLUMNS)


def header_names(columns, source: str) -> dict:
    """Renames that give a table's headers the names the reader knows: surrounding spaces dropped (a header
    typed ``issue_date, lead_days, valid_date`` as the docs print it), and ``Valid Date`` / ``PRECIPITATION``
    taken for ``valid_date`` / ``precipitation``. A one-line DataError where two columns would take one name."""
    out, taken = {}, {}
    for c in columns:
        name, key = str(c).strip(), header_key(c)
        if key in KNOWN_COLUMNS:
            name = key
        if name in taken:
            raise DataError(f"{source}: columns {taken[name]!r} and {str(c)!r} both read as {name!r}; keep one")
        taken[name] = str(c)
        if name != c:
            out[c] = name
    return out


def header_key(column) -> str:
    """A header as the reader compares it: without surrounding spaces, lower case, spaces and dashes as ``_``."""
    return re.sub(r"[\s-]+", "_", str(column).strip()).lower()


#: Other names of the member column, read as it where a table has no ``member`` (ECMWF's ``number``: 0 is the
#: control).
MEMBER_ALIASES = ("number", "ensemble_member")
#: Member names of the control run (any case), which comes first.
CONTROL_NAMES = ("control", "ctrl", "c", "cf", "hres")
MEMBER_FORMS = "whole numbers (0 for the control), or names such as control, pf01, mem01, ens_03"


def member_column(columns, source: str) -> str | None:
    """The column a long table's members are read from: ``member``, else one named ``number`` or
    ``ensemble_member`` (None: none, a single run). A one-line DataError where two of the others could be it."""
    if "member" in columns:
        return "member"
    found = [str(c) for c in columns if header_key(c) in MEMBER_ALIASES]
    if len(found) > 1:
        raise DataError(f"{source}: columns {found[0]!r} and {found[1]!r} could both be the member column; keep one, "
                        "or name it 'member'")
    return found[0] if found else None


def member_ids(values: pd.Series, column: str, source: str) -> pd.Series:
    """Members as int: whole numbers as they are; names (``control``, ``pf01``, ``ENS-05``), where any value is not
    a number, numbered 0.. in a stable order: the control's name first, then names by their (last) number, then
    the others alphabetically, so that a table of names reads as the same table numbered so. A one-line
    DataError for an empty value or a number that is not whole."""
    text = values.astype("string").str.strip()
    empty = (text.isna() | (text == "")).to_numpy()
    if empty.any():
        i = int(np.flatnonzero(empty)[0])
        raise DataError(f"{source}: column {column!r} is empty on row {i + 1} below the header; give every row its member: "
                        f"{MEMBER_FORMS}")
    number = pd.to_numeric(values, errors="coerce")
    if number.isna().any():
        def order(name):
            digits = re.findall(r"\d+", name)
            return (0, 0, name) if name.lower() in CONTROL_NAMES else (1, int(digits[-1]), name) if digits \
                else (2, 0, name.lower(), name)
        ids = {name: i for i, name in enumerate(sorted(set(text), key=order))}
        return text.map(ids).astype(int)
    part = (number % 1 != 0).to_numpy()
    if part.any():
        raise DataError(f"{source}: column {column!r} holds {text.iloc[int(np.flatnonzero(part)[0])]!r}, not a whole "
                        f"number; members are {MEMBER_FORMS}")
    return number.astype(int)


def from_openmeteo(doc, *, day_start: str = "00:00", day_label: str = "start",
                   source: str = "Open-Meteo response") -> WeatherForecast:
    """A saved (or POSTed) Open-Meteo answer: one response or a list of them (points, averaged)."""
    docs = doc if isinstance(doc, list) else [doc]
    if not docs:
        raise DataError(f"{source}: an empty list, no Open-Meteo answer")
    tables = []
    for d in docs:
        hourly = isinstance(d, dict) and "daily" not in d and "hourly" in d
        try:
            tables.append(parse_response(d, list(WEATHER_NAMES), hourly=hourly,
                                         day_start=day_start, day_label=day_label, source=source))
        except DataError as e:  # a WeatherSourceError of a saved file is a data error of that file
            raise DataError(str(e)) from None
    first = docs[0]
    # As `weather fetch` made its table: the issue day is the first time stamp's date (for a station day
    # from 08:00 the answer's first station day is the incomplete one before it), leads counted from it.
    t = issue_table(tables, first, hourly=isinstance(first, dict) and "daily" not in first and "hourly" in first)
    places = [said_place(d, source) for d in docs]
    location = tuple(np.mean(places, axis=0)) if all(p is not None for p in places) else None
    return WeatherForecast(_tidy(t, source), source, location)


def answer_place(doc) -> tuple | None:
    """``(lat, lon)`` an Open-Meteo answer says it is for (None where it does not say, or not as numbers)."""
    try:
        where = float(doc["latitude"]), float(doc["longitude"])
    except (KeyError, TypeError, ValueError):
        return None
    return where if all(np.isfinite(where)) else None


def said_place(doc, what: str) -> tuple | None:
    """``(lat, lon)`` an Open-Meteo answer says it is for; None where it has neither key (nothing to check). A
    one-line DataError where it says so with something that is not a number in degrees (null, a string, out of
    range): the place it is for cannot be checked, and taking it for "not said" would skip the check that the
    forecast is for the station."""
    if not isinstance(doc, dict) or ("latitude" not in doc and "longitude" not in doc):
        return None
    said = doc.get("latitude"), doc.get("longitude")
    # a number only: answer_place would read the string "51.5" as one, and take null for "not said"
    got = answer_place(doc) if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in said) else None
    if got is None or abs(got[0]) > 90 or abs(got[1]) > 180:
        raise DataError(f"{what} is malformed: its latitude, longitude are {said[0]!r}, {said[1]!r}, not numbers in "
                        "degrees, so the place it is for cannot be checked")
    return got


#: A weather forecast for a point farther than this from the gauge is for another place (a catchment's
#: --points average lies within it for catchments of up to some 10 000 km2).
MAX_FORECAST_DISTANCE_KM = 150.0


def distance_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance between two points (degrees), km."""
    p1, p2, dl = np.radians(lat1), np.radians(lat2), np.radians(lon2 - lon1)
    return float(6371.0 * np.arccos(np.clip(np.sin(p1) * np.sin(p2) + np.cos(p1) * np.cos(p2) * np.cos(dl), -1, 1)))


def gauge_position(data_dir, station_id) -> tuple[float, float] | None:
    """The station's gauge, ``(gauge_lat, gauge_lon)`` of its attributes; None where either is unknown (no data
    folder, no attribute, NaN): a weather forecast's place is then not checked against it."""
    from ..data import reader

    if data_dir is None:
        return None
    try:
        lat, lon = (reader.basin_attribute(data_dir, str(station_id), k) for k in ("gauge_lat", "gauge_lon"))
    except DataError:
        return None
    return (lat, lon) if np.isfinite(lat) and np.isfinite(lon) else None


def check_location(wf: WeatherForecast, data_dir, station_id) -> None:
    """A one-line DataError where ``wf`` says it is for a place :data:`MAX_FORECAST_DISTANCE_KM` or more
    from the station's gauge (:func:`gauge_position`); nothing to check where either is unknown."""
    gauge = gauge_position(data_dir, station_id) if wf.location is not None else None
    if gauge is None:
        return
    lat, lon = gauge
    km = distance_km(lat, lon, *wf.location)
    if km >= MAX_FORECAST_DISTANCE_KM:
        raise DataError(f"{wf.source}: it is a forecast for {wf.location[0]:.2f}, {wf.location[1]:.2f}, {km:.0f} km "
                        f"from station {station_id}'s gauge ({lat:.2f}, {lon:.2f}); fetch one for the station "
                        f"(sca2lstm weather fetch --basin {station_id})")


def from_long_table(df: pd.DataFrame, source: str = "weather forecast") -> WeatherForecast:
    """A long table ``[issue_date, lead_days,] valid_date (or date)[, member], <inputs>`` (checked)."""
    df = df.copy()
    if "valid_date" not in df.columns:
        if "date" not in df.columns:
            # valid_date is not derived from issue_date + lead_days: some count the first forecast day as
            # lead 0, others as lead 1, and a guess would shift every forecast by a day without a word.
            raise DataError(f"{source}: no column 'valid_date' (the day each row's values are for; it is not derived "
                            f"from lead_days, which tools count from 0 or from 1); found {[str(c) for c in df.columns]}")
        df = df.rename(columns={"date": "valid_date"})
    if "issue_date" not in df.columns:
        df["issue_date"] = pd.NaT
    column = member_column(df.columns, source)
    if column is None:
        df["member"] = 0
    else:
        df = df.rename(columns={column: "member"})
        df["member"] = member_ids(df["member"], column, source)
    location = table_place(df, source)
    return WeatherForecast(_tidy(df.drop(columns=[c for c in PLACE_COLUMNS if c in df.columns]), source), source,
                           location)


def table_place(df: pd.DataFrame, source: str) -> tuple | None:
    """``(lat, lon)`` a long table's ``latitude, longitude`` columns say (their mean), None without them; a
    one-line DataError where no row holds a number in both (the place cannot be checked, as :func:`said_place`
    refuses an answer whose coordinates are null), for unreadable values, or for rows for places
    :data:`MAX_FORECAST_DISTANCE_KM` apart (tables for two stations joined)."""
    if not any(c in df.columns for c in PLACE_COLUMNS):
        return None
    if not all(c in df.columns for c in PLACE_COLUMNS):
        raise DataError(f"{source}: a place needs both columns 'latitude' and 'longitude'")
    lat, lon = (pd.to_numeric(df[c], errors="coerce").to_numpy(np.float64) for c in PLACE_COLUMNS)
    ok = np.isfinite(lat) & np.isfinite(lon)
    if not ok.any():  # taking it for "place not said" would skip the check that it is for the station
        raise DataError(f"{source}: its columns 'latitude' and 'longitude' hold no number on any row, so the place "
                        "it is for cannot be checked; fill them in decimal degrees or leave both columns out")
    if (np.abs(lat[ok]) > 90).any() or (np.abs(lon[ok]) > 180).any():
        raise DataError(f"{source}: latitude/longitude must be decimal degrees (|latitude| <= 90, |longitude| <= 180)")
    where = float(lat[ok].mean()), float(lon[ok].mean())
    far = max(distance_km(*where, a, b) for a, b in set(zip(lat[ok], lon[ok])))
    if 2 * far >= MAX_FORECAST_DISTANCE_KM:
        raise DataError(f"{source}: its rows are for places up to {2 * far:.0f} km apart (columns latitude, "
                        "longitude): forecasts for different stations joined?")
    return where


def forecast_dates(values: pd.Series, column: str, source: str) -> pd.DatetimeIndex:
    """A weather table's date column (days), read by the one date parser of every file; a one-line DataError
    naming the column and the first value that is no date otherwise."""
    try:
        return parse_dates(values.astype(str).tolist(), column=column, source=source).normalize()
    except (DataError, ValueError, TypeError):
        text = values.dropna().astype(str).str.strip()
        zoned = text[text.str.contains(r"\d:\d\d(?::\d\d(?:\.\d+)?)?\s*(?:Z|[+-]\d\d:?\d\d|UTC|GMT)$", regex=True)]
        if len(zoned):  # which day a time in another zone falls on is the station's, not the file's, to say
            raise DataError(f"{source}: column {column!r} holds times with a time zone ({zoned.iloc[0]!r}), which are "
                            "not converted: give the station's own days as YYYY-MM-DD") from None
        bad = _first_unreadable(text, column, source)
        if bad is None:  # each value is a date, but not all in one form
            raise DataError(f"{source}: column {column!r} mixes date forms ({text.iloc[0]!r}, ...); give every date "
                            "as YYYY-MM-DD") from None
        raise DataError(f"{source}: column {column!r} must hold dates as YYYY-MM-DD; {bad!r} is not one, or could "
                        "be day/month or month/day") from None


def _first_unreadable(text: pd.Series, column: str, source: str) -> str | None:
    """The first value of ``text`` that is no date on its own (the one to name), None where each is one."""
    for v in text.drop_duplicates():   # the error path only: one parse per distinct value
        try:
            parse_dates([v], column=column, source=source)
        except (DataError, ValueError, TypeError):
            return v
    return None


def _tidy(df: pd.DataFrame, src: str) -> pd.DataFrame:
    """Dates parsed (one line naming the column otherwise), members as int, inputs numeric."""
    out = df.copy()
    for c in ("issue_date", "valid_date"):
        ok = out[c].notna().to_numpy()
        parsed = pd.Series(pd.NaT, index=out.index, dtype="datetime64[ns]")
        if ok.any():
            parsed[ok] = forecast_dates(out[c][ok], c, src)
        out[c] = parsed
    if out["valid_date"].isna().any():
        raise DataError(f"{src}: column 'valid_date' has an empty row")
    empty = out["issue_date"].isna().to_numpy()
    if empty.any() and not empty.all():  # such a row would belong to no forecast and be read by none
        i = int(np.flatnonzero(empty)[0])
        raise DataError(f"{src}: column 'issue_date' is empty on row {i + 1} below the header (valid "
                        f"{out['valid_date'].iloc[i].date()}); give every row its issue date")
    out["member"] = out["member"].astype(int)  # numbered by from_long_table (member_ids) or the Open-Meteo parser
    if "lead_days" in out.columns and out["issue_date"].notna().all():
        lead = (out["valid_date"] - out["issue_date"]).dt.days
        given = pd.to_numeric(out["lead_days"], errors="coerce")
        bad = given.notna() & (given != lead)
        if bad.any():
            r = out[bad].iloc[0]
            raise DataError(f"{src}: lead_days {r['lead_days']} does not match valid_date - issue_date "
                            f"({r['valid_date'].date()} - {r['issue_date'].date()})")
    for c in out.columns:
        if c not in LONG_KEYS:
            out[c] = pd.to_numeric(out[c], errors="coerce")
    check_weather_values(out, src)
    # The same forecast twice (two archives joined) is one; two different ones for the same day are not
    # for the tool to choose between.
    key = ["issue_date", "valid_date", "member"]
    out = out.drop_duplicates()
    clash = out.duplicated(key, keep=False)
    if clash.any():
        r = out[clash].iloc[0]
        if pd.isna(r["issue_date"]):  # an archive whose issue_date column is missing, or empty on these rows
            n = int((out["issue_date"].isna() & (out["valid_date"] == r["valid_date"])
                     & (out["member"] == r["member"])).sum())
            raise DataError(f"{src}: {n} different rows for valid {r['valid_date'].date()}, member "
                            f"{r['member']}, and no issue date to tell them apart; a table of several forecasts (an "
                            "archive) needs column 'issue_date' on every row")
        issued = f"issued {r['issue_date'].date()}, "
        raise DataError(f"{src}: two different rows for the forecast {issued}valid {r['valid_date'].date()}, member "
                        f"{r['member']} ({int(clash.sum())} such rows); keep one (two archives joined?)")
    return out.reset_index(drop=True)


#: Physical bounds of a forecast's daily values: precipitation in mm/d (the world's wettest observed day
#: brought 1825 mm), temperature in degC (as a station import checks), PET in mm/d.
WEATHER_BOUNDS = {"precipitation": (0.0, MAX_PRECIPITATION_MM), "temperature": (-60.0, 60.0), "pet": (0.0, 30.0),
                  "peti": (0.0, 30.0), "et0": (0.0, 30.0)}


def check_weather_values(frame: pd.DataFrame, source: str) -> None:
    """One-line DataError naming the first value of a weather input outside :data:`WEATHER_BOUNDS` (an infinite one
    included)."""
    for col, (lo, hi) in WEATHER_BOUNDS.items():
        if col not in frame.columns:
            continue
        v = pd.to_numeric(frame[col], errors="coerce").to_numpy(np.float64)
        bad = ~np.isnan(v) & ((v < lo) | (v > hi))  # a gap (NaN) is checked elsewhere; an infinity is out of range
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            day = next((frame[c].iloc[i] for c in ("valid_date", "date") if c in frame.columns), None)
            when = f" on {pd.Timestamp(day).date()}" if day is not None and pd.notna(day) else ""
            raise DataError(f"{source}: {col} {v[i]:g}{when} is outside {lo:g}..{hi:g}; expected daily values "
                            f"({'mm/d' if col != 'temperature' else 'degC'})")


def note_oudin_pet(frame: pd.DataFrame, pet_input: str | None, pet_from_temperature: str, source: str,
                   rule: PetRule | None = None) -> None:
    """One log line where ``frame`` gives the model's PET column and :func:`complete_pet` replaces it by Oudin PET
    (a model trained on Oudin PET, or a basin whose PET history is Oudin PET: ``rule``): the file's values are not
    what the model reads."""
    if pet_from_temperature == "always" and pet_input is not None and pet_input in frame.columns \
            and frame[pet_input].notna().any():
        why = ("this station's PET history is Oudin PET (its data has no PET column)"
               if rule is not None and rule.source == "oudin" and rule.config_mode != "always" else
               "this model was trained on Oudin PET (data.pet_from_temperature: always)")
        log.warning("%s: its column %s is replaced by Oudin PET from its temperature: %s and reads no other kind",
                    source, pet_input, why)


@dataclass(frozen=True)
class PetRule:
    """How a basin's weather forecasts get the model's PET: of the kind its history read (:func:`pet_rule`).

    ``mode`` takes the place of ``data.pet_from_temperature`` in :func:`complete_pet` and :func:`pet_ways`
    (``always`` for a basin whose PET history is Oudin PET); ``et0`` whether a forecast's ET0 (FAO-56) is read
    (a basin whose history is a PET column of its own); ``source`` the basin's
    :func:`sca2lstm.data.dataset.pet_source` (None: not known, the config's rule alone); ``config_mode`` the
    config's ``data.pet_from_temperature``; ``column`` the forecast's column read as the model's PET where a run has
    it (:func:`station_pet`): the station's own PET name, ``pet`` for a station whose ``pet`` the model reads as its
    ``peti`` (``other``), else the model's own name (None: ``pet``)."""

    pet: str | None
    mode: str
    et0: bool
    source: str | None
    config_mode: str
    column: str | None = None


def pet_rule(cfg, source: str | None = None) -> PetRule:
    """The :class:`PetRule` of a basin whose PET history comes from ``source``
    (:func:`sca2lstm.data.dataset.pet_source`; None: the config's rule alone, as for a caller without the basin).

    Oudin PET derived for the basin (its data has no PET column, or ``pet_from_temperature: always``): its
    forecasts get Oudin PET from their temperature, never ET0 nor a file's PET column, as its history never read
    another kind. A PET column of its own (``own``): ET0 for a model on ``pet``, the forecast's column of the
    model's PET otherwise, as the config says. The station's ``pet`` read as the model's ``peti`` (``other``): the
    forecast's own column of the station's PET name (``pet``) where a run has it, else ET0, as a model on ``pet``
    reads them on that station: the same history gets the same kind."""
    pet = pet_input(cfg)
    mode = cfg.data.pet_from_temperature
    if source == "oudin":
        return PetRule(pet, "always", False, source, mode, pet)
    et0 = pet is not None and mode != "always" and (pet == "pet" or source == "other")
    column = next((c for c in PET_COLUMNS if c != pet), pet) if source == "other" else pet
    return PetRule(pet, mode, et0, source, mode, column)


def station_pet(frame: pd.DataFrame, rule: PetRule | None) -> pd.DataFrame:
    """``frame`` (a weather forecast's table) with its column of the station's own PET name
    (:attr:`PetRule.column`) as the model's PET, where the two names differ and the frame has that column: a model on
    ``peti`` at a station whose history is its own ``pet`` reads a forecast's ``pet`` (a column under the model's
    name, of a kind the station's history never read, is then not read). Unchanged otherwise."""
    if not isinstance(frame, pd.DataFrame) or not station_pet_names(frame.columns, rule):
        return frame
    return frame.drop(columns=[rule.pet], errors="ignore").rename(columns={rule.column: rule.pet})


def station_pet_names(columns, rule: PetRule | None) -> dict:
    """``{model's PET: the file's column}`` where :func:`station_pet` reads a table with ``columns`` by the station's
    own PET name (a model on ``pet`` reading a forecast's ``peti``), else empty: the messages about that column name it
    as the file does."""
    if rule is None or rule.pet is None or rule.column in (None, rule.pet) or rule.column not in columns:
        return {}
    return {rule.pet: rule.column}


#: How a weather run (one issue date's member) gets the model's PET (:func:`pet_ways`): its own column of the
#: model's PET, Open-Meteo's FAO-56 ET0, Oudin PET from its temperature, masked (an input the station's record never
#: had), or none (a model that never derives PET, ``pet_from_temperature: never``, and a run that gives none); each
#: in words: ``pet_way_<way>`` of :data:`sca2lstm.words.WORDS`.
PET_WAYS = ("given", "et0", "oudin", "masked", "none")


def pet_history_note(rule: PetRule, frame, source) -> Note | None:
    """The note of a weather forecast ``frame`` (its table; ``source`` names it) whose PET the station's history
    decided (:func:`pet_rule`) otherwise than the config alone would: Oudin PET for a station whose PET was
    derived, where the forecast gives ET0 or a PET column (not read); the forecast's own ``pet`` column, else its ET0,
    for a model on ``peti`` whose history read the station's own ``pet``. None where the config's rule and the history's agree, or the forecast has neither."""
    if rule.pet is None or not isinstance(frame, pd.DataFrame):
        return None

    def has(col):
        return col in frame.columns and bool(frame[col].notna().any())

    if rule.source == "oudin" and rule.config_mode != "always":
        given = next((c for c in ("et0", rule.pet) if has(c)), None)
        return Note("pet_oudin_history", source=source, pet=rule.pet, given=given) if given else None
    if rule.source == "other" and rule.column not in (None, rule.pet) and has(rule.column):
        return Note("pet_station_own", source=source, pet=rule.pet, column=rule.column)
    if rule.source == "other" and rule.pet != "pet" and has("et0") and not (
            rule.pet in frame.columns and frame[rule.pet].notna().all()):
        return Note("pet_station_et0", source=source, pet=rule.pet)
    return None


def pet_ways(frame: pd.DataFrame, pet_input: str | None, pet_from_temperature: str, absent=(),
             et0: bool | None = None) -> np.ndarray:
    """How each row of ``frame`` gets the model's PET (one of :data:`PET_WAYS`; None without a PET input), decided
    per weather run (the rows of one ``issue_date`` and ``member``, where the frame has them), as that run alone
    would get it (:func:`complete_pet`): its own column of the model's PET where the run has a value of it (not
    for a model on Oudin PET), else ET0 for a model whose ``pet`` is read from the basin's files where the run
    has ET0, else Oudin PET from its temperature, except for a model that never derives PET (``none``). An
    archive whose runs were fetched (with ET0) and posted (temperature only) so gets each run's PET as that run
    given alone as the forecast would get it, never one kind for all of them. ``et0``: whether ET0 is read
    (:attr:`PetRule.et0`; None: for a model on ``pet`` not derived from temperature)."""
    n = len(frame)
    if pet_input is None:
        return np.full(n, None, dtype=object)
    keys = [k for k in ("issue_date", "member") if k in frame.columns]
    run = (frame.groupby(keys, sort=False, dropna=False).ngroup().to_numpy() if keys and n
           else np.zeros(n, dtype=np.int64))

    def has(col):  # whether each row's run has a value of ``col``
        if col not in frame.columns:
            return np.zeros(n, dtype=bool)
        return pd.Series(frame[col].notna().to_numpy()).groupby(run).transform("any").to_numpy(bool)

    if et0 is None:
        et0 = pet_input == "pet" and pet_from_temperature != "always"
    et0 = has("et0") if et0 else np.zeros(n, dtype=bool)
    if pet_input in absent:
        return np.full(n, "masked", dtype=object)
    if pet_from_temperature == "always":
        way = np.full(n, "oudin", dtype=object)
    else:
        way = np.where(has(pet_input), "given", np.where(
            et0, "et0", "none" if pet_from_temperature == "never" else "oudin")).astype(object)
    if "temperature" in absent:  # a PET derived from a temperature the station never had is masked, as in its history
        way[~et0] = "masked"
    return way


def pet_way_counts(runs: pd.DataFrame | None, issue_dates=None) -> dict:
    """``{way: number of runs}`` of :attr:`WeatherForecast.pet_runs` (only the runs issued on ``issue_dates``, where
    given), in the order of :data:`PET_WAYS`, the ways no run took left out; empty without a PET input."""
    if runs is None or not len(runs):
        return {}
    if issue_dates is not None:
        runs = runs[runs["issue_date"].isin(pd.DatetimeIndex(issue_dates))]
    n = runs["way"].value_counts()
    return {w: int(n[w]) for w in PET_WAYS if n.get(w, 0)}


def pet_ways_text(counts: dict, pet: str, language: str = "en", column: str | None = None) -> str | None:
    """The line that says how many runs of an archive got the model's PET ``pet`` which way (:func:`pet_way_counts`),
    e.g. ``PET (pet) of its 12 runs, each as it alone gets it: 7 its et0 (FAO-56), 5 Oudin from its temperature``,
    in ``language`` (:data:`sca2lstm.words.WORDS`); None without runs. ``column``: the runs' column read as ``pet``
    (:attr:`PetRule.column`; None: ``pet``), which the ``given`` way names."""
    if not counts:
        return None
    ways = listed((say("pet_way_count", language, n=n, way=say(f"pet_way_{w}", language, pet=column or pet))
                   for w, n in counts.items()), language)
    return say("pet_ways", language, pet=pet, n=sum(counts.values()), ways=ways)


def complete_pet(frame: pd.DataFrame, pet_input: str | None, pet_from_temperature: str, lat: float,
                 absent=(), gaps: bool = False, et0: bool | None = None) -> pd.DataFrame:
    """Give ``frame`` (``date`` or ``valid_date`` and inputs) the PET the model reads (module docstring).

    ``pet_input``: the model's PET input name (``pet``, ``peti``) or None. A complete column of that name
    is kept (an archive or table that carries the model's own PET), except for a model trained on Oudin PET
    (``always``): it reads Oudin PET from the forecast temperature, as it reads no station's own PET, whatever
    kind the column holds (:func:`note_oudin_pet` says so). Else ET0 (column ``et0``) becomes
    ``pet`` only for a model input ``pet`` not derived from temperature; otherwise PET is Oudin PET from
    ``temperature`` at latitude ``lat`` (a DataError if the frame has no temperature or the latitude is
    unknown), except for a model that never derives PET from temperature (``never``): a DataError, as
    for a forecast without an input. The ``et0`` column is dropped.

    ``absent``: inputs the station's record never had (masked throughout its history). They stay masked
    (NaN) in the forecast too, and a PET derived from an absent temperature is masked as in the history.

    ``gaps``: ``frame`` holds many forecasts (an archive), some with gaps. Each weather run (an issue date's
    member) then gets its PET the way it would alone (:func:`pet_ways`): from its own column of the model's
    PET or its ET0 where it has a value of it, else from its temperature; a row without a value of its way's
    source keeps no PET (its member is incomplete there and left out), and nothing is refused for a gap.

    ``et0``: whether ET0 is read (:attr:`PetRule.et0` of the basin; None: for a model input ``pet`` not derived
    from temperature). A basin's :class:`PetRule` gives ``pet_from_temperature`` (its ``mode``) and ``et0``.

    Without ``gaps`` the table is one run whose sources are the columns it has on every row: its way is
    :func:`pet_ways`' (one order of the sources for both), a column with a gap not read on any row.
    """
    if et0 is None:
        et0 = pet_input == "pet" and pet_from_temperature != "always"
    out = frame.drop(columns=["et0"], errors="ignore")
    for c in absent:
        out[c] = np.nan
    if pet_input is None:
        return out
    if gaps:
        way = pet_ways(frame, pet_input, pet_from_temperature, absent, et0)
        if len(way) and (way == "none").all():
            raise DataError(never_derived_text(pet_input))
        pet = np.full(len(out), np.nan)
        for w, col in (("given", pet_input), ("et0", "et0")):
            if (way == w).any():
                pet[way == w] = frame.loc[way == w, col].to_numpy(np.float64)
        oudin = way == "oudin"
        if oudin.any() and ("temperature" not in out.columns or not out["temperature"].notna().any()):
            if not np.isin(way, ("given", "et0")).any():  # no run gets any PET: the file lacks an input
                raise DataError(f"the weather forecast has no temperature, from which this model derives its PET "
                                f"({pet_input})")
        elif oudin.any():  # rows without a temperature keep no PET: their member is incomplete there
            pet[oudin] = _with_oudin(out.loc[oudin].copy(), pet_input, lat)[pet_input].to_numpy(np.float64)
        out[pet_input] = pet
        return out
    if pet_input in absent or ("temperature" in absent and not (et0 and "et0" in frame.columns)):
        out[pet_input] = np.nan
        return out
    # One table is one run whose sources are the columns it has whole: the way of pet_ways, in its order (an
    # incomplete column is not read on any day; the next source gives every day)
    whole = pd.DataFrame({c: [0.0 if frame[c].notna().all() else np.nan] for c in (pet_input, "et0")
                          if c in frame.columns}, index=[0])
    way = pet_ways(whole, pet_input, pet_from_temperature, (), et0)[0]
    if way == "given":
        return out
    if way == "et0":
        out[pet_input] = frame["et0"].to_numpy(np.float64)
        return out
    if way == "none":  # Oudin PET would be a kind this model never read
        raise DataError(never_derived_text(pet_input))
    if "temperature" not in out.columns or out["temperature"].isna().any():
        day = ""
        if "temperature" in out.columns:
            col = "date" if "date" in out.columns else "valid_date"
            first = out.loc[out["temperature"].isna(), col].iloc[0] if col in out.columns else None
            day = f" (none on {pd.Timestamp(first).date()})" if first is not None and pd.notna(first) else ""
        raise DataError(f"the weather forecast has no complete temperature{day}, from which this model derives its "
                        f"PET ({pet_input})")
    return _with_oudin(out, pet_input, lat)


def never_derived_text(pet_input: str) -> str:
    """The refusal of a forecast without the PET a model that never derives it reads."""
    given = f"{pet_input} (or et0)" if pet_input == "pet" else pet_input
    return (f"the weather forecast gives no {given}, and this model never derives its PET from temperature "
            f"(data.pet_from_temperature: never): give the forecast's {given} column")


def _with_oudin(out: pd.DataFrame, pet_input: str, lat: float) -> pd.DataFrame:
    """``out`` with Oudin PET from its temperature (NaN where a row has none) as ``pet_input``."""
    if not np.isfinite(lat):
        raise DataError(f"the model derives {pet_input} from temperature and the gauge latitude (gauge_lat), "
                        "which this basin's attributes lack")
    dates = pd.DatetimeIndex(out["date" if "date" in out.columns else "valid_date"])
    out[pet_input] = oudin_pet(out["temperature"].to_numpy(np.float64), lat, dates.day_of_year.to_numpy())
    return out


def masked_inputs(cfg, absent, rule: PetRule | None = None) -> list:
    """The model inputs a forecast of a station leaves masked: those its record never had (``absent``), and
    the PET the model derives from temperature where temperature is one of them (``rule``: the basin's
    :class:`PetRule`; None: the config's)."""
    pet = pet_input(cfg)
    rule = rule or pet_rule(cfg)
    derived = pet is not None and pet not in absent and "temperature" in absent and not rule.et0
    return [*absent, *([pet] if derived else [])]


def pet_input(cfg) -> str | None:
    """The model's PET input name (``pet`` or ``peti``), or None if it reads no PET."""
    return next((c for c in cfg.data.dynamic_inputs if c in PET_COLUMNS), None)


def read_forecast_for_station(path, data_dir, station_id) -> WeatherForecast | None:
    """:func:`read_forecast_file` with the station's day rule from ``DIR/meta/<id>.json`` (hourly responses)."""
    from ..data.station_meta import read_station_meta

    meta = read_station_meta(data_dir, str(station_id)) if data_dir is not None else None
    wf = read_forecast_file(path, day_start=meta.day_start if meta else "00:00",
                            day_label=meta.day_label if meta else "start")
    if wf is not None:
        check_location(wf, data_dir, station_id)
    return wf


def gauge_latitude(data_dir, basin: str) -> float:
    """The gauge latitude (attribute ``gauge_lat``) for Oudin PET; NaN without a data folder or the attribute."""
    from ..data import reader

    if data_dir is None:
        return float("nan")
    try:
        return reader.basin_attribute(data_dir, str(basin), "gauge_lat")
    except DataError:
        return float("nan")
