"""Open-Meteo weather forecasts for a station: the request, the HTTP client, and the response parsed.

Three Open-Meteo APIs are used (https://open-meteo.com/en/docs):

* the forecast API (``/v1/forecast``): one deterministic forecast, ``daily`` aggregates from local
  midnight (``precipitation_sum``, ``temperature_2m_mean``, ``et0_fao_evapotranspiration``) or ``hourly``
  values (``precipitation``, ``temperature_2m``, ``et0_fao_evapotranspiration``) for a station whose day
  starts at another hour (aggregated by :mod:`sca2lstm.weather.days`);
* the ensemble API (``/v1/ensemble``): every member of an ensemble model; the control run's keys are the
  plain variable names, the members' end in ``_member01``, ``_member02``, ...;
* the previous-runs API (``/v1/forecast`` on ``previous-runs-api``): hourly ``<variable>_previous_dayN``,
  each hour as predicted by the run N days (24 N hours) before it (from 2024 for most models).

The response's first day is the day the forecast is made (its issue day): lead k is the day k days after
it. A response for several weather models (``models=a,b``) has keys ending ``_<model>``; each model is then
one member.

**Terms.** The free API at api.open-meteo.com needs no key and is for non-commercial use only; its data are
licensed CC BY 4.0 (attribute Open-Meteo). Commercial users take a paid plan (``api_key``, sent as the
``apikey`` parameter to each API's ``customer-`` host: ``customer-api``, ``customer-ensemble-api``,
``customer-previous-runs-api.open-meteo.com``) or run their own instance (``base_url``). See docs/weather.md.

The client (:class:`OpenMeteoClient`) uses httpx with a timeout on each whole attempt (connecting and
reading the entire answer), a User-Agent, and a bounded number of retries with exponential backoff on
connection errors, timeouts, 429 and 5xx answers (waiting as long as a ``Retry-After`` header asks, up to a
cap). Everything that goes wrong ends in one
:class:`~sca2lstm.errors.WeatherSourceError` line naming the URL and the cause.
"""

from __future__ import annotations

import re
import time
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ..data.tables import parse_dates
from ..errors import DataError, WeatherSourceError
from .days import station_days

if TYPE_CHECKING:  # for the annotations; imported where a request is made (get_raw, _attempt)
    import httpx

FORECAST_URL = "https://api.open-meteo.com/v1/forecast"
ENSEMBLE_URL = "https://ensemble-api.open-meteo.com/v1/ensemble"
PREVIOUS_RUNS_URL = "https://previous-runs-api.open-meteo.com/v1/forecast"
PATHS = {"forecast": "/v1/forecast", "ensemble": "/v1/ensemble", "previous-runs": "/v1/forecast"}
DEFAULT_URLS = {"forecast": FORECAST_URL, "ensemble": ENSEMBLE_URL, "previous-runs": PREVIOUS_RUNS_URL}
#: A paid plan's hosts: each API has its own, the free one's name prefixed ``customer-``.
CUSTOMER_URLS = {api: url.replace("https://", "https://customer-", 1) for api, url in DEFAULT_URLS.items()}
#: An Open-Meteo host given as ``base_url`` (free or paid, of any of the three APIs, without a path).
_OPEN_METEO_HOST = re.compile(r"^https://(?P<customer>customer-)?(api|ensemble-api|previous-runs-api)\.open-meteo\.com/?$")
#: The model's input names and Open-Meteo's variables: daily aggregates and hourly values.
#: ``et0`` is FAO-56 reference evapotranspiration, kept apart from the model's own PET inputs (``pet``,
#: ``peti``) until :func:`sca2lstm.weather.files.complete_pet` decides whether the model may read it.
DAILY = {"precipitation": "precipitation_sum", "temperature": "temperature_2m_mean",
         "et0": "et0_fao_evapotranspiration"}
HOURLY = {"precipitation": "precipitation", "temperature": "temperature_2m", "et0": "et0_fao_evapotranspiration"}
WEATHER_NAMES = ("precipitation", "temperature", "et0")
#: Decimals of the weather values a fetched forecast keeps (its CSV's, and a saved answer's when read).
DECIMALS = 3
USER_AGENT = "sca2lstm/0.1 (river-flow forecasting; python-httpx)"
#: The most days a request may ask (``forecast_days``), as Open-Meteo documents it: the forecast API
#: "Integer (0-16) ... Up to 16 days of forecast are possible" (https://open-meteo.com/en/docs), the
#: ensemble API "Integer (0-35) ... Up to 35 days of forecast are possible"
#: (https://open-meteo.com/en/docs/ensemble-api). A longer request is refused with HTTP 400.
MAX_FORECAST_DAYS = {"forecast": 16, "ensemble": 35}
#: The previous-runs API's offsets: ``_previous_day1`` (24 h before) "... and so on up to day 7"
#: (https://open-meteo.com/en/docs/previous-runs-api); a ``_previous_day8`` is refused with HTTP 400.
MAX_PREVIOUS_DAY = 7
_API_NAMES = {"forecast": "forecast API", "ensemble": "ensemble API", "previous-runs": "previous-runs API"}
_MEMBER = re.compile(r"^(?P<var>.+?)_member(?P<n>\d+)$")


#: What to do without an answer: the forecast reads a weather forecast saved earlier (weather fetch and archive have
#: no --weather_forecast of their own; the hint names the command that has).
SAVED_FORECAST_HINT = "sca2lstm forecast a saved forecast file with --weather_forecast"


class OpenMeteoClient:
    """GET JSON from Open-Meteo with timeouts, retries with backoff, and one-line errors.

    Parameters
    ----------
    api : {"forecast", "ensemble", "previous-runs"}
    base_url : str, optional
        A self-hosted instance (``http://host:8080``; the API's path is appended unless the URL has a path
        already). Open-Meteo's own hosts stand for their tier: ``https://customer-api.open-meteo.com``
        given for the ensemble asks ``customer-ensemble-api.open-meteo.com``, as each API has its host.
        Default: Open-Meteo's free servers, or with ``api_key`` the paid plan's (:data:`CUSTOMER_URLS`).
    api_key : str, optional
        Sent as ``apikey`` (paid plans).
    timeout : float
        Seconds one attempt may take in all: connecting, sending, and reading the whole answer. (httpx's
        own timeouts bound each step alone, so a server sending a byte now and then could hold an attempt
        for as long as it likes; one that stops sending halfway is ended when a read has waited ``timeout``,
        so such an attempt can last up to twice as long: :meth:`_attempt`.) With retries, a request takes
        about ``(retries + 1) * timeout`` plus the waits between attempts.
    retries : int
        Further attempts after the first, on connection errors, timeouts, 429 and 5xx.
    backoff : float
        Seconds before the first retry, doubled each time; longer where the answer's ``Retry-After`` asks.
    max_wait : float
        The longest wait before a retry: an answer whose ``Retry-After`` asks for more (a daily request
        limit) ends the retries at once, saying so.
    transport : httpx.BaseTransport, optional
        For tests (``httpx.MockTransport``); default: the network.
    sleep : callable, optional
        ``sleep(seconds)`` between attempts (tests record the waits instead of waiting); default
        :func:`time.sleep`.
    """

    def __init__(self, api: str = "forecast", base_url: str | None = None, api_key: str | None = None,
                 timeout: float = 20.0, retries: int = 3, backoff: float = 1.0, max_wait: float = 60.0,
                 transport=None, sleep=None):
        if api not in DEFAULT_URLS:
            raise ValueError(f"api {api!r}: expected one of {', '.join(DEFAULT_URLS)}")
        self.url = _endpoint(base_url, api) if base_url else (CUSTOMER_URLS if api_key else DEFAULT_URLS)[api]
        self.api_key, self.timeout, self.retries, self.backoff = api_key, float(timeout), int(retries), float(backoff)
        self.max_wait = float(max_wait)
        self.transport = transport
        self.sleep = sleep or time.sleep

    def get(self, params: dict) -> dict:
        """The JSON object answered for ``params`` (lists are sent comma-separated)."""
        return self.get_raw(params)[0]

    def get_raw(self, params: dict) -> tuple:
        """``(JSON answered, its body as received, bytes)`` for ``params``: :meth:`get` with the body kept."""
        # httpx is imported where a request is made: this module is on every forecast's path (it reads saved
        # answers) and httpx took a few hundredths of a second to import there, for nothing.
        import httpx

        q = {k: ",".join(map(str, v)) if isinstance(v, (list, tuple)) else v for k, v in params.items()
             if v is not None}
        if self.api_key:
            q["apikey"] = self.api_key
        last = ""
        for attempt in range(self.retries + 1):
            wait = self.backoff * 2 ** attempt  # before the next attempt, if there is one
            try:
                r = self._attempt(q)
            except httpx.TimeoutException:
                last = f"no complete answer within {self.timeout:g} s"
                self._pause(attempt, wait)
                continue
            except httpx.ConnectError as e:
                last = f"cannot connect ({_short(e)})"
                self._pause(attempt, wait)
                continue
            except httpx.TransportError as e:  # connected, but the answer broke off (cut short, reset)
                last = f"the answer broke off ({_short(e)})"
                self._pause(attempt, wait)
                continue
            if r.status_code == 429 or r.status_code >= 500:
                last = f"HTTP {r.status_code}{_reason(r)}"
                asked = retry_after_seconds(r.headers.get("Retry-After"))
                if asked is not None and asked > self.max_wait and attempt < self.retries:
                    raise WeatherSourceError(f"Open-Meteo ({self.url}) answered {last} and asks to wait "
                                             f"{asked:.0f} s before retrying (more than the {self.max_wait:g} s "
                                             f"this waits); try again later, or give {SAVED_FORECAST_HINT}")
                self._pause(attempt, max(wait, asked or 0.0))
                continue
            if r.status_code != 200:
                raise WeatherSourceError(f"Open-Meteo refused the request ({self.url}): HTTP "
                                         f"{r.status_code}{_reason(r)}")
            try:
                doc = r.json()
            except ValueError:
                start = " ".join(r.text[:40].split())
                raise WeatherSourceError(f"Open-Meteo ({self.url}) answered something that is not JSON (an "
                                         f"error page or a cut-off answer? it starts {start!r})") from None
            if isinstance(doc, dict) and doc.get("error"):
                raise WeatherSourceError(f"Open-Meteo refused the request ({self.url}): "
                                         f"{doc.get('reason', 'error')}")
            return doc, r.content
        tries = f"{self.retries + 1} attempt{'' if self.retries == 0 else 's'}"
        raise WeatherSourceError(f"Open-Meteo ({self.url}) is unreachable after {tries}: {last}; check the "
                                 f"network, or give {SAVED_FORECAST_HINT}")

    def _attempt(self, q: dict) -> httpx.Response:
        """One GET of ``q``, its answer read to the end, within about :attr:`timeout` seconds in all.

        httpx's timeouts bound each connect and each read alone: a server that sends a byte before every
        read timeout would hold the attempt for as long as it sends. The answer is therefore streamed and
        the attempt given up once its deadline has passed between two chunks (a server that stops sending
        altogether is ended by the read timeout). Synchronous on purpose: a caller inside a running event
        loop (a notebook, the service) can use it as it is.
        """
        import httpx

        deadline = time.monotonic() + self.timeout
        with httpx.Client(timeout=self.timeout, transport=self.transport, headers={"User-Agent": USER_AGENT},
                          follow_redirects=True) as client:
            with client.stream("GET", self.url, params=q) as r:
                if r.is_stream_consumed:        # a transport that hands over a whole answer (tests' mocks)
                    r.read()
                    return r
                body = bytearray()
                for chunk in r.iter_raw():      # as sent (still compressed): the Response below decodes it
                    body += chunk
                    if time.monotonic() > deadline:
                        raise httpx.ReadTimeout("the answer took longer than the timeout", request=r.request)
                return httpx.Response(r.status_code, headers=r.headers, content=bytes(body), request=r.request)

    def _pause(self, attempt: int, wait: float) -> None:
        """Wait ``wait`` seconds (at most ``max_wait``) where another attempt follows."""
        if attempt < self.retries:
            self.sleep(min(wait, self.max_wait))


class Answers(list):
    """The JSON answers of one fetch, one per point in order, with :attr:`raw`: the bodies as received, byte
    for byte (one body; for several points a JSON list of them), which is what is saved beside the table."""

    def __init__(self, docs=(), bodies=()):
        super().__init__(docs)
        self.bodies = list(bodies)

    @property
    def raw(self) -> bytes:
        if len(self.bodies) == 1:
            return self.bodies[0]
        return b"[" + b",\n".join(b.strip() for b in self.bodies) + b"]\n"


def retry_after_seconds(header: str | None) -> float | None:
    """Seconds a ``Retry-After`` header's value asks to wait (a number or an HTTP date); None without one or for
    one that is neither (the weather fetch and the alerts' webhook both honour it)."""
    value = (header or "").strip()
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None or when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - time.time())


def _endpoint(base_url: str, api: str) -> str:
    own = _OPEN_METEO_HOST.match(base_url.strip())
    if own:  # each Open-Meteo API has its own host: the one of this API, on the tier given
        return (CUSTOMER_URLS if own.group("customer") else DEFAULT_URLS)[api]
    b = base_url.rstrip("/")
    return b if re.match(r"^https?://[^/]+/.+", b) else b + PATHS[api]


def _short(e: Exception) -> str:
    return " ".join(str(e).split())[:160] or type(e).__name__


def _reason(r: httpx.Response) -> str:
    try:
        doc = r.json()
        return f": {doc.get('reason')}" if isinstance(doc, dict) and doc.get("reason") else ""
    except ValueError:
        return ""


def max_leads(api: str) -> int:
    """The most lead days one request of ``api`` can give: ``forecast_days`` - 2 for the forecast and
    ensemble APIs (:func:`request_params` asks leads + 2 days), :data:`MAX_PREVIOUS_DAY` for previous runs
    (lead k reads ``_previous_dayk``, :func:`parse_previous_runs`)."""
    return MAX_PREVIOUS_DAY if api == "previous-runs" else MAX_FORECAST_DAYS[api] - 2


def check_leads(api: str, leads: int, leads_from: str | None = None) -> None:
    """A WeatherSourceError, before any request, where ``leads`` is more than ``api`` gives (:func:`max_leads`):
    Open-Meteo would refuse it with HTTP 400. ``leads_from`` says where the leads come from (e.g. the
    model's forecast horizon), named in the line."""
    limit = max_leads(api)
    if leads <= limit:
        return
    how = (f"forecast_days {leads + 2} (the issue day, {leads} lead days and one more) where it allows up to "
           f"{MAX_FORECAST_DAYS[api]}" if api in MAX_FORECAST_DAYS
           else f"_previous_day1 .. _previous_day{leads} where it has up to _previous_day{MAX_PREVIOUS_DAY}")
    asked = f"{leads_from} is {leads} lead days" if leads_from else f"{leads} lead days asked"
    raise WeatherSourceError(f"{asked}, but Open-Meteo's {_API_NAMES[api]} gives at most {limit} ({how}); "
                             "nothing fetched")


def request_params(lat: float, lon: float, inputs, leads: int, hourly: bool = False, timezone: str = "auto",
                   models=None) -> dict:
    """Query parameters of a forecast or ensemble request for the model's weather ``inputs``.

    ``forecast_days`` is ``leads + 2``: the issue day itself, the lead days, and one more so that a station
    day that ends after midnight is complete.
    """
    table = HOURLY if hourly else DAILY
    names = [table[n] for n in inputs if n in table]
    p = {"latitude": f"{lat:.4f}", "longitude": f"{lon:.4f}", "timezone": timezone, "forecast_days": leads + 2,
         ("hourly" if hourly else "daily"): names}
    if models:
        p["models"] = list(models)
    return p


def parse_response(doc, inputs, hourly: bool = False, day_start: str = "00:00", day_label: str = "start",
                   source: str = "Open-Meteo response") -> pd.DataFrame:
    """A forecast or ensemble response as a long table: ``member, date, <inputs>``.

    Parameters
    ----------
    doc : dict
        The JSON answer (one location).
    inputs : sequence of str
        The weather wanted (``precipitation``, ``temperature``, ``et0``); a variable the
        response lacks is left out (the caller decides whether it can be derived).
    hourly : bool
        Read ``hourly`` and aggregate to station days (``day_start``, ``day_label``); else ``daily``.

    Returns
    -------
    pandas.DataFrame
        Columns ``member`` (0: the control or the only run; 1..: ensemble members, or the models of a
        multi-model request in order), ``date`` (the day), and one column per input found. Sorted.

    Raises
    ------
    WeatherSourceError
        A response without the expected layout (one line naming what is missing).
    """
    block = "hourly" if hourly else "daily"
    table = HOURLY if hourly else DAILY
    if not isinstance(doc, dict):
        raise WeatherSourceError(f"{source}: expected a JSON object with '{block}', got {type(doc).__name__}")
    data = doc.get(block)
    if not isinstance(data, dict) or "time" not in data:
        raise WeatherSourceError(f"{source}: no '{block}' block with 'time' (keys: {sorted(doc)[:8]})")
    times = data["time"]
    if not isinstance(times, list) or not times:
        raise WeatherSourceError(f"{source}: '{block}.time' is empty")
    if hourly:
        _check_hourly_times(times, source)
    by_member: dict = {}
    units = doc.get(f"{block}_units") or {}
    reverse = {v: k for k, v in table.items() if k in inputs}
    for key, vals in data.items():
        if key == "time":
            continue
        var, member = key, 0
        m = _MEMBER.match(key)
        if m and m.group("var") in reverse:
            var, member = m.group("var"), int(m.group("n"))
        elif key not in reverse:
            base = next((v for v in reverse if key.startswith(v + "_")), None)   # multi-model: var_<model>
            if base is None:
                continue
            var, member = base, ("model", key[len(base) + 1:])
        if not isinstance(vals, list) or len(vals) != len(times):
            raise WeatherSourceError(f"{source}: '{block}.{key}' has {len(vals) if isinstance(vals, list) else 'no'} "
                                     f"values for {len(times)} times")
        unit = units.get(key, units.get(var)) if isinstance(units, dict) else None
        by_member.setdefault(member, {})[reverse[var]] = _to_metric(vals, unit, reverse[var], f"{source}: '{block}.{key}'")
    if not by_member:
        raise WeatherSourceError(f"{source}: none of {', '.join(table[n] for n in inputs if n in table)} in "
                                 f"'{block}'")
    models = sorted({m[1] for m in by_member if isinstance(m, tuple)})
    frames = []
    for member, vals in by_member.items():
        mid = models.index(member[1]) + 1 if isinstance(member, tuple) else member
        if hourly:
            df = station_days(times, vals, day_start, day_label, doc.get("timezone"), doc.get("utc_offset_seconds"))
        else:
            try:
                idx = parse_dates([str(t) for t in times], column=f"{block}.time", source=source).normalize()
            except (DataError, ValueError, TypeError):
                raise WeatherSourceError(f"{source}: '{block}.time' holds something that is not a date") from None
            if idx.duplicated().any():  # two values for one day: which is the forecast's is unknown
                raise WeatherSourceError(f"{source}: '{block}.time' has {idx[idx.duplicated()][0].date()} twice; "
                                         "expected one value per day")
            df = pd.DataFrame({n: pd.to_numeric(pd.Series(v, dtype=object), errors="coerce").to_numpy(np.float64)
                               for n, v in vals.items()}, index=idx)
        df = df.rename_axis("date").reset_index()
        df.insert(0, "member", mid)
        frames.append(df)
    out = pd.concat(frames, ignore_index=True)
    cols = ["member", "date"] + [n for n in inputs if n in out.columns]
    return out[cols].sort_values(["member", "date"]).reset_index(drop=True)


#: Units a response may state (``daily_units``/``hourly_units``; the API's defaults are the first) and the
#: conversion to the model's: mm and degC.
_UNITS = {"precipitation": {"mm": lambda v: v, "inch": lambda v: v * 25.4},
          "et0": {"mm": lambda v: v, "inch": lambda v: v * 25.4},
          "temperature": {"°C": lambda v: v, "°F": lambda v: (v - 32.0) * 5.0 / 9.0}}


def _to_metric(values, unit, name: str, where: str) -> list:
    """``values`` in the model's unit of ``name`` (mm, degC); no stated unit means the API's default."""
    if unit is None:
        return values
    conv = _UNITS[name].get(str(unit).strip())
    if conv is None:
        raise WeatherSourceError(f"{where} is in {unit!r}; expected {' or '.join(repr(u) for u in _UNITS[name])}")
    arr = pd.to_numeric(pd.Series(values, dtype=object), errors="coerce").to_numpy(np.float64)
    return list(conv(arr))


def average_points(tables: list[pd.DataFrame]) -> pd.DataFrame:
    """The mean over points of long tables (``member, date, <inputs>``) of the same layout; NaN where a point
    lacks the value (Open-Meteo's null): a mean of the other points would be another catchment average."""
    if len(tables) == 1:
        return tables[0]
    cat = pd.concat(tables, ignore_index=True)
    groups = cat.groupby(["member", "date"])
    mean = groups.mean(numeric_only=True)
    return mean.where(groups.count()[list(mean.columns)] == len(tables)).reset_index()


def issue_day(doc, hourly: bool = False) -> pd.Timestamp:
    """A response's issue day: the calendar date of its first time stamp (local time; the API answers from
    00:00 of the day it is asked). For a station whose day starts at 08:00 this is not the first station day
    of the answer, which begins the day before and is incomplete."""
    block = doc.get("hourly" if hourly else "daily") if isinstance(doc, dict) else None
    times = block.get("time") if isinstance(block, dict) else None
    if not isinstance(times, list) or not times:
        raise WeatherSourceError(f"no '{'hourly' if hourly else 'daily'}.time' in the answer to take its issue day from")
    return pd.Timestamp(str(times[0])).normalize()


def issue_table(tables: list[pd.DataFrame], first_doc, hourly: bool = False) -> pd.DataFrame:
    """The parsed answers of the points (:func:`parse_response`) as one forecast: ``issue_date, lead_days,
    valid_date, member, <inputs>``, averaged over the points, from the issue day (:func:`issue_day` of the
    first answer; lead 0) on, without days that have no value at all. What ``weather fetch`` writes and what
    a saved answer is read as, so that the two give the same forecast: values are rounded to the 3 decimals
    the CSV keeps (0.001 mm, 0.001 degC; the API answers to 0.1)."""
    t = average_points(tables).rename(columns={"date": "valid_date"})
    first = issue_day(first_doc, hourly)
    inputs = [c for c in t.columns if c not in ("member", "valid_date")]
    t = t[t["valid_date"] >= first].dropna(subset=inputs, how="all")
    t[inputs] = t[inputs].round(DECIMALS)
    t.insert(0, "lead_days", (t["valid_date"] - first).dt.days)
    t.insert(0, "issue_date", first)
    cols = ["issue_date", "lead_days", "valid_date", "member", *inputs]
    return t[cols].sort_values(["member", "valid_date"]).reset_index(drop=True)


def previous_runs_params(lat: float, lon: float, inputs, start, end, leads: int, timezone: str = "auto",
                         models=None) -> dict:
    """Query parameters of a previous-runs request: hourly ``<var>_previous_day1 .. _previous_day<leads>``, to
    the day after ``end``: an hourly amount is stamped at the end of its hour, so ``end``'s last hour comes
    stamped 00:00 the next day."""
    names = [f"{HOURLY[n]}_previous_day{k}" for n in inputs if n in HOURLY for k in range(1, leads + 1)]
    p = {"latitude": f"{lat:.4f}", "longitude": f"{lon:.4f}", "timezone": timezone, "hourly": names,
         "start_date": str(pd.Timestamp(start).date()),
         "end_date": str((pd.Timestamp(end) + pd.Timedelta(days=1)).date())}
    if models:
        p["models"] = list(models)
    return p


def _check_hourly_times(times, source: str) -> None:
    """A WeatherSourceError naming the answer where its ``hourly.time`` holds something that is not a date, as
    for a daily block (:func:`~sca2lstm.weather.days.station_days` would ask for a --date_format, which no
    weather command has)."""
    try:
        parse_dates([str(t) for t in times], column="hourly.time", source=source)
    except (DataError, ValueError, TypeError):
        raise WeatherSourceError(f"{source}: 'hourly.time' holds something that is not a date") from None


def parse_previous_runs(doc, inputs, leads: int, day_start: str = "00:00", day_label: str = "start",
                        source: str = "Open-Meteo previous-runs response") -> pd.DataFrame:
    """A previous-runs response as an archive: ``issue_date, lead_days, valid_date, <inputs>``.

    Every hour of ``<var>_previous_dayN`` was predicted by the run 24 N hours before it. Lead k of issue
    date t0 (valid day t0 + k) takes ``_previous_dayk`` over the valid day's hours: every hour of it comes
    from a run made at least k days before, so no hour uses a run that was not yet made when a forecast
    issued the morning after t0 would be (a conservative lead). Hours are aggregated to the station's days
    (:func:`sca2lstm.weather.days.station_days`); a valid day without all 24 hours is left out.
    """
    if not isinstance(doc, dict) or not isinstance(doc.get("hourly"), dict) or "time" not in doc["hourly"]:
        raise WeatherSourceError(f"{source}: no 'hourly' block with 'time'")
    data = doc["hourly"]
    times = data["time"]
    _check_hourly_times(times if isinstance(times, list) else [times], source)
    units = doc.get("hourly_units") if isinstance(doc.get("hourly_units"), dict) else {}
    rows = []
    for k in range(1, leads + 1):
        vals = {}
        for n in inputs:
            key = f"{HOURLY[n]}_previous_day{k}" if n in HOURLY else None
            if key in data:
                if not isinstance(data[key], list) or len(data[key]) != len(times):
                    raise WeatherSourceError(f"{source}: 'hourly.{key}' does not have one value per time")
                vals[n] = _to_metric(data[key], units.get(key, units.get(HOURLY[n])), n, f"{source}: 'hourly.{key}'")
        if not vals:
            continue
        days = station_days(times, vals, day_start, day_label, doc.get("timezone"),
                            doc.get("utc_offset_seconds")).dropna(how="any")
        days = days.rename_axis("valid_date").reset_index()
        days.insert(0, "lead_days", k)
        days.insert(0, "issue_date", days["valid_date"] - pd.Timedelta(days=k))
        rows.append(days)
    if not rows:
        raise WeatherSourceError(f"{source}: no '<variable>_previous_dayN' values for "
                                 f"{', '.join(HOURLY[n] for n in inputs if n in HOURLY)}")
    out = pd.concat(rows, ignore_index=True)
    return out.sort_values(["issue_date", "lead_days"]).reset_index(drop=True)
