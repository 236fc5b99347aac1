"""The weather forecasts the service issues with: posted for a station (``POST /stations/{id}/weather``) or
fetched by the daily issue from the station's configured source.

A posted forecast is the content ``sca2lstm forecast --weather_forecast`` reads (a saved Open-Meteo answer,
deterministic or ensemble; a long table ``[issue_date, lead_days,] valid_date[, member], <inputs>``; a plain
``date, <inputs>`` table), parsed by :mod:`sca2lstm.weather.files` with the station's day rule. It is kept
in the database with the issue date it is for (the file's: an Open-Meteo answer's first day, a table's
``issue_date``; else the day before its first valid day) and the valid days on which every member has
every input the model reads (:func:`sca2lstm.evaluation.live.weather_days`).

Which one a forecast reads: a station's forecast for issue date t0 is made on the morning after t0, so it
reads the newest weather forecast (by issue date, then by arrival) issued no later than t0 + 1 whose
complete days cover every lead day t0 + 1 .. t0 + L of the model. None covers them: the forecast is
issued without a weather forecast (setting ``issue-time``).
"""

from __future__ import annotations

import io
import logging
import threading
from collections import OrderedDict
from dataclasses import dataclass

import pandas as pd

from ..data.station_meta import read_station_meta
from ..errors import DataError, Sca2lstmError
from ..evaluation.live import LiveForecaster, weather_days
from ..notes import Note
from ..weather.fetch import fetch_forecast, station_location
from ..weather.files import WeatherForecast, check_location, from_long_table, parse_forecast
from .schemas import utc_today
from .store import Store

log = logging.getLogger(__name__)


@dataclass
class FetchSettings:
    """How the daily issue asks a station's weather source: a self-hosted or paid host (``base_url``; a
    station's own ``weather.base_url`` wins), a paid plan's key, and the HTTP client's limits."""

    base_url: str | None = None
    api_key: str | None = None
    timeout: float = 20.0
    retries: int = 3
    backoff: float = 1.0


#: The Content-Types a posted weather forecast is read as besides JSON's (application/json, ...+json: an
#: Open-Meteo answer): CSV (a table), and those that name no layout, read by the body's first character
#: (text/plain: a browser's fetch() of a string; curl's default for --data-binary without -H; a client's bytes).
CSV_TYPES = ("text/csv", "application/csv")
ANY_LAYOUT_TYPES = ("text/plain", "application/octet-stream", "application/x-www-form-urlencoded")


def unread_type(content_type: str | None) -> str | None:
    """The media type of ``content_type`` where a posted weather forecast of it is not read (XML, a form's
    multipart upload, a spreadsheet's binary, ...), else None: read as CSV it would be refused for a column
    ``valid_date`` it never had, which names the wrong fault."""
    ct = (content_type or "").split(";")[0].strip().lower()
    if not ct or ct.endswith("json") or ct in CSV_TYPES + ANY_LAYOUT_TYPES:
        return None
    return ct


def body_kind(content_type: str | None, raw: bytes) -> str:
    """'json' or 'csv' for a posted body: by its Content-Type where it names one (a JSON body sent as CSV is
    refused), else (none, text/plain, another that names no layout) by its first character; a type the service
    does not read is for :func:`unread_type` to refuse first."""
    ct = (content_type or "").split(";")[0].strip().lower()
    if ct.endswith("json"):
        return "json"
    looks_json = raw.lstrip()[:1] in (b"{", b"[")
    if ct in ("text/csv", "application/csv"):
        if looks_json:
            raise DataError(f"the body is JSON but its Content-Type is {ct}; send it as application/json")
        return "csv"
    # text/plain names no layout (a browser's fetch() sends a string body so): read as CSV, JSON would be cut at
    # its commas into a header of nonsense
    return "json" if looks_json else "csv"


class WeatherForecasts:
    """The stations' stored weather forecasts: kept in the database, indexed in memory (this process is
    the database's only writer), their tables parsed once."""

    def __init__(self, store: Store, data_dir, forecaster: LiveForecaster):
        self.store, self.data_dir, self.forecaster = store, data_dir, forecaster
        self._lock = threading.Lock()
        self._index: dict[str, list[dict]] = {}
        for s in store.weather_summaries():
            self._index.setdefault(s["station"], []).append(s)
        self._tables: OrderedDict = OrderedDict()

    def summaries(self, station: str) -> list[dict]:
        """The station's weather forecasts, newest first (no tables)."""
        with self._lock:
            return list(self._index.get(station, []))

    def accept(self, station: str, raw: bytes, kind: str, issue_date=None, origin: str = "post") -> dict:
        """Parse, check and store a posted weather forecast for ``station``; its summary. A one-line
        DataError where it cannot be used (nothing stored)."""
        meta = read_station_meta(self.data_dir, station)
        wf = parse_forecast(raw, kind, source=f"weather forecast for station {station}", day_start=meta.day_start,
                            day_label=meta.day_label, plain=True)
        check_location(wf, self.data_dir, station)
        return self.add(station, wf, raw.decode("utf-8", errors="replace"), origin, issue_date)

    def add(self, station: str, wf: WeatherForecast, raw: str, origin: str, issue_date=None) -> dict:
        """Check ``wf`` against the station's model and store it (``issue_date``: the day it is for, where
        the forecast does not say); its summary, with the first and last issue date it serves."""
        if len(wf.issue_dates) > 1:
            raise DataError(f"{wf.source}: holds forecasts of {len(wf.issue_dates)} issue dates "
                            f"({wf.issue_dates[0].date()}..{wf.issue_dates[-1].date()}), an archive; post one "
                            "forecast (an archive is read from DIR/weather_archive/<id>.csv)")
        cfg = self.forecaster.config(self.forecaster.model(station))
        first, last, members = weather_days(cfg, wf, self.forecaster.max_leads(), self.data_dir, station)
        own = wf.issue_dates[0] if len(wf.issue_dates) else None
        given = pd.Timestamp(issue_date).normalize() if issue_date is not None else None
        if given is not None and own is not None and given != own:
            raise DataError(f"issue_date: {given.date()} differs from the forecast's own issue date {own.date()}")
        if given is not None and own is None and first > given + pd.Timedelta(days=1):
            raise DataError(f"issue_date: a forecast issued on {given.date()} starts on {(given + pd.Timedelta(days=1)).date()}"
                            f", but this one's first complete day is {first.date()}; give the date it was issued")
        issue = own if own is not None else given if given is not None else first - pd.Timedelta(days=1)
        latest = pd.Timestamp(utc_today()) + pd.Timedelta(days=1)  # a day ahead of UTC: stations east of Greenwich
        if issue > latest:
            raise DataError(f"{wf.source}: issued {issue.date()}, which is in the future (today is {utc_today()}, "
                            "UTC); a weather forecast is stored once it has been issued")
        t0 = max(issue, first) - pd.Timedelta(days=1)   # the first issue date it can serve
        if t0 + pd.Timedelta(days=self.forecaster.max_leads()) > last:
            raise DataError(f"{wf.source}: issued {issue.date()}, it covers {max(0, (last - t0).days)} lead day(s) "
                            f"after {t0.date()}; the model forecasts {self.forecaster.max_leads()} lead days")
        table = wf.table.to_csv(index=False, date_format="%Y-%m-%d")
        # the members its forecasts read: one Open-Meteo answered null for on a lead day is left out
        row = self.store.add_weather(station, str(issue.date()), str(first.date()), str(last.date()), members,
                                     origin, wf.source, table, raw)
        with self._lock:
            self._index.setdefault(station, []).insert(0, row)
        log.info("station %s: weather forecast %d stored (%s, issued %s, %d member(s), valid %s..%s)", station,
                 row["id"], origin, row["issue_date"], row["members"], row["first_valid"], row["last_valid"])
        # the issue dates whose lead days it covers: a forecast for other days is stored but not read
        serves = [str(t0.date()), str((last - pd.Timedelta(days=self.forecaster.max_leads())).date())]
        return {**row, "serves_issue_dates": serves}

    def for_issue(self, station: str, issue: pd.Timestamp, leads: int) -> tuple[dict, WeatherForecast] | None:
        """The weather forecast a forecast of ``station`` for issue date ``issue`` reads over ``leads`` lead
        days (module docstring): ``(summary, forecast)``, or None."""
        first = str((issue + pd.Timedelta(days=1)).date())
        last = str((issue + pd.Timedelta(days=leads)).date())
        with self._lock:
            fits = [s for s in self._index.get(station, [])
                    if s["issue_date"] <= first and s["first_valid"] <= first and s["last_valid"] >= last]
            if not fits:
                return None
            best = max(fits, key=lambda s: (s["issue_date"], s["id"]))
            wf = self._tables.get(best["id"])
        if wf is None:
            text = self.store.weather_table(best["id"])
            # named by a note: the notes of the forecasts that read it say it in the reader's language
            wf = from_long_table(pd.read_csv(io.StringIO(text)), Note("stored_weather_forecast", id=int(best["id"]),
                                                                      station=station, issued=best["issue_date"]))
            with self._lock:
                self._tables[best["id"]] = wf
                while len(self._tables) > 64:
                    self._tables.popitem(last=False)
        return best, wf

    def fetch(self, station: str, settings: FetchSettings) -> str | None:
        """Fetch and store the station's weather forecast where its metadata names a source; one line saying
        how it went, or None where no source is configured. Never raises for a source or data problem."""
        try:
            meta = read_station_meta(self.data_dir, station)
        except Sca2lstmError as e:
            return f"failed: {' '.join(str(e).split())}"
        conf = meta.weather  # checked as the file was read (data.station_meta.WeatherSection)
        if not conf.get("source"):
            return None
        cfg = self.forecaster.config(self.forecaster.model(station))
        try:
            loc = station_location(self.data_dir, station)
            docs, table = fetch_forecast(loc, max(1, int(cfg.training.forecast_leads)), ensemble=bool(conf.get("ensemble")),
                                         models=conf.get("models") or None,
                                         base_url=conf.get("base_url") or settings.base_url, api_key=settings.api_key,
                                         client_options={"timeout": settings.timeout, "retries": settings.retries,
                                                         "backoff": settings.backoff})
            wf = from_long_table(table, f"Open-Meteo forecast for station {station}")
            raw = docs.raw.decode("utf-8", errors="replace")  # the answer as received
            row = self.add(station, wf, raw, "fetch")
        except (Sca2lstmError, OSError) as e:
            return f"failed: {' '.join(str(e).split())}"
        return f"fetched: weather forecast {row['id']}, issued {row['issue_date']}, {row['members']} member(s)"
