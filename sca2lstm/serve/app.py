"""The forecast service: a FastAPI app over the data folder, the database and a forecaster.

:func:`create_app` takes the forecaster as a callable, so tests can run the whole API on a fake one;
:func:`model_forecaster` wraps a loaded checkpoint (:func:`sca2lstm.evaluation.operational.issue_forecast`).

Data: the CSV data folder is only read; days posted to the API are kept in the database and laid over
the file's days (a posted value replaces the file's value for that day and column; columns not posted
keep the file's value; days after the file's end are appended).
"""

from __future__ import annotations

import datetime as dt
import hmac
import json
import logging
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import numpy as np
import pandas as pd
from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool

from ..data import camels_gb
from ..errors import Sca2lstmError
from . import schemas
from .store import OBS_COLUMNS, Store

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).resolve().parent / "static"
MAX_BODY_BYTES = 1_000_000
MAX_LEADS = 30
HISTORY_DAYS = 90
STATION_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$"  # the ids the importer accepts (data/ids.py)
# Posted name -> column of the data files.
# Module level: FastAPI resolves the (postponed) annotations of the routes in this module's namespace.
StationId = Annotated[str, PathParam(pattern=STATION_PATTERN, description="gauge id, e.g. 32006")]
BearerCredentials = Annotated[HTTPAuthorizationCredentials | None,
                              Depends(HTTPBearer(auto_error=False, description="the write token given to the server"))]
FILE_COLUMN = {"precipitation": "precipitation", "temperature": "temperature", "pet": "pet",
               "discharge": "discharge_vol"}

Forecaster = Callable[[str, pd.DataFrame, dt.date | None, int], object]


# ----------------------------------------------------------------------------- body size limit
class BodyLimitMiddleware:
    """Refuses (413) a request body over ``limit`` bytes, by its Content-Length and by counting the
    stream (a chunked body has no length), before any route sees it."""

    def __init__(self, app, limit: int = MAX_BODY_BYTES):
        self.app = app
        self.limit = limit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            return await self.app(scope, receive, send)
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length")
        if length is not None:
            try:
                too_big = int(length) > self.limit
            except ValueError:
                return await _send_error(send, 400, "content-length: not an integer")
            if too_big:
                return await _send_error(send, 413, f"body: over the limit of {self.limit} bytes")
        chunks, total = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            body = message.get("body", b"")
            total += len(body)
            if total > self.limit:
                return await _send_error(send, 413, f"body: over the limit of {self.limit} bytes")
            chunks.append(body)
            if not message.get("more_body", False):
                break
        replay = {"type": "http.request", "body": b"".join(chunks), "more_body": False}
        sent = False

        async def replay_receive():
            nonlocal sent
            if not sent:
                sent = True
                return replay
            return await receive()

        return await self.app(scope, replay_receive, send)


async def _send_error(send, status: int, detail: str) -> None:
    body = JSONResponse({"detail": detail}, status_code=status).body
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


# ----------------------------------------------------------------------------- station data
class StationData:
    """Each station's file timeseries (read once) overlaid with its posted days (per data version)."""

    def __init__(self, data_dir, store: Store):
        self.data_dir = Path(data_dir)
        self.store = store
        self.ids = camels_gb.list_basins(self.data_dir)
        self._known = set(self.ids)
        self._files: dict[str, pd.DataFrame] = {}
        self._overlays: dict[str, tuple[int, pd.DataFrame]] = {}
        self._lock = threading.Lock()

    def check(self, station: str) -> None:
        if station not in self._known:
            shown = ", ".join(self.ids[:10]) + (" ..." if len(self.ids) > 10 else "")
            raise HTTPException(404, f"station: unknown station {station!r}; available: {shown}")

    def _file(self, station: str) -> pd.DataFrame:
        df = self._files.get(station)
        if df is None:
            df = camels_gb.read_timeseries(self.data_dir, station)
            self._files[station] = df
        return df

    def peek(self, station: str) -> tuple[int, pd.DataFrame] | None:
        """``(version, timeseries)`` if the station's current version is built (never blocks)."""
        hit = self._overlays.get(station)
        return hit if hit is not None and hit[0] == self.store.data_version(station) else None

    def timeseries(self, station: str) -> tuple[int, pd.DataFrame]:
        """``(data version, daily DataFrame)``: the file's days (date index, the file's columns) with the
        days posted up to that version laid over."""
        with self._lock:
            hit = self.peek(station)
            if hit is not None:
                return hit
            df = self._file(station)
            # The version and the rows in one read: a post landing meanwhile gets the next version.
            version, rows = self.store.observations_at_version(station)
            if rows:
                posted = pd.DataFrame(rows)
                posted.index = pd.DatetimeIndex(pd.to_datetime(posted.pop("date")), name="date")
                start = min(df.index[0], posted.index[0])
                end = max(df.index[-1], posted.index[-1])
                df = df.reindex(pd.date_range(start, end, freq="D", name="date"))
                for name, col in FILE_COLUMN.items():
                    vals = posted[name].dropna()
                    if len(vals):
                        if col not in df.columns:
                            df[col] = float("nan")
                        df.loc[vals.index, col] = vals.to_numpy(dtype=float)
                df.attrs["posted_dates"] = set(posted.index)
            self._overlays[station] = (version, df)
            return version, df


def _num(v) -> float | None:
    v = float(v)
    return v if math.isfinite(v) else None


def _history(ts: pd.DataFrame, issue: pd.Timestamp, days: int = HISTORY_DAYS) -> list[dict]:
    part = ts.loc[issue - pd.Timedelta(days=days - 1):issue]
    flow = part["discharge_vol"] if "discharge_vol" in part.columns else pd.Series(float("nan"), index=part.index)
    return [{"date": d.strftime("%Y-%m-%d"), "observed": _num(v)} for d, v in flow.items()]


def _default_issue(ts: pd.DataFrame) -> pd.Timestamp:
    """The last day with observed discharge (the operational forecast's default), else the last day."""
    last = ts["discharge_vol"].last_valid_index() if "discharge_vol" in ts.columns else None
    return last if last is not None else ts.index[-1]


def _observed_after(ts: pd.DataFrame, issue: pd.Timestamp, leads: int) -> list[dict]:
    """Observed discharge of the forecast's valid days that are in the data (a forecast of the past)."""
    if "discharge_vol" not in ts.columns:
        return []
    part = ts["discharge_vol"].loc[issue + pd.Timedelta(days=1):issue + pd.Timedelta(days=leads)]
    return [{"date": d.strftime("%Y-%m-%d"), "observed": _num(v)} for d, v in part.items()]


def _encode(answer: dict) -> bytes:
    """JSON of an answer made of plain types (NaN is already None)."""
    return json.dumps(answer, allow_nan=False, separators=(",", ":")).encode("utf-8")


def _table_rows(table: pd.DataFrame) -> list[dict]:
    rows = []
    for r in table.to_dict("records"):  # a model without some quantile level gives None for it
        rows.append({"valid_date": pd.Timestamp(r["valid_date"]).date().isoformat(), "lead_days": int(r["lead_days"]),
                     **{k: _num(r.get(k, float("nan"))) for k in ("median", "q05", "q25", "q75", "q95")}})
    return rows


# ----------------------------------------------------------------------------- the app
def create_app(data_dir, db_path, forecaster: Forecaster, *, token: str | None = None, model_path: str = "",
               model_sha256: str = "", max_leads: int = MAX_LEADS, max_body: int = MAX_BODY_BYTES,
               cache_size: int = 2048) -> FastAPI:
    """Build the service.

    Parameters
    ----------
    data_dir : path
        CAMELS-GB-style folder (``timeseries/``); its basins are the stations; only read.
    db_path : path
        SQLite file (created if absent).
    forecaster : callable
        ``forecaster(station, timeseries, issue_date, leads)`` -> an object with ``.table`` (DataFrame:
        valid_date, lead_days, median, q05, q25, q75, q95, setting) and ``.weights`` (Series: input ->
        attention weight on the issue day). ``timeseries`` is the station's overlaid daily data.
    token : str, optional
        The write token; without one, posts are refused (403).
    max_leads : int
        The most lead days a forecast may ask for (the model's ``training.forecast_leads``).
    """
    store = Store(db_path)
    stations = StationData(data_dir, store)
    cache: OrderedDict = OrderedDict()
    cache_lock = threading.Lock()
    issue_lock = threading.Lock()  # one model run at a time; also makes "find, else issue" atomic
    token_bytes = token.encode("utf-8") if token else None

    app = FastAPI(title="sca2lstm forecast service",
                  description="Daily river-discharge forecasts (SCA2LSTM) per station, with posted observations.",
                  version="1")
    app.add_middleware(BodyLimitMiddleware, limit=max_body)
    app.state.store = store
    app.state.stations = stations

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError):
        parts = []
        for e in exc.errors():
            if e.get("type") == "json_invalid":  # loc is ("body", character offset)
                at = e.get("loc", ("body", "?"))[-1]
                parts.append(f"body: malformed JSON at character {at} ({e.get('ctx', {}).get('error', 'invalid')})")
                continue
            loc = [str(x) for x in e.get("loc", ()) if x not in ("body", "query", "path", "header")]
            where = ".".join(loc) or "body"
            parts.append(f"{where}: {e.get('msg', 'invalid')}")
        return JSONResponse({"detail": "; ".join(parts)}, status_code=422)

    @app.exception_handler(Sca2lstmError)
    async def _domain(request: Request, exc: Sca2lstmError):
        return JSONResponse({"detail": " ".join(str(exc).split())}, status_code=422)

    def require_token(cred: BearerCredentials) -> None:
        if token_bytes is None:
            raise HTTPException(403, "authorization: writes are off (the server was started without a token)")
        if cred is None or not cred.credentials:
            raise HTTPException(401, "authorization: missing token; send 'Authorization: Bearer <token>'",
                                headers={"WWW-Authenticate": "Bearer"})
        if not hmac.compare_digest(cred.credentials.encode("utf-8"), token_bytes):
            raise HTTPException(401, "authorization: wrong token", headers={"WWW-Authenticate": "Bearer"})

    @app.get("/", include_in_schema=False)
    def index():
        return FileResponse(STATIC_DIR / "index.html", media_type="text/html")

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    @app.get("/health", response_model=schemas.Health)
    def health():
        return {"status": "ok", "model": str(model_path), "model_sha256": model_sha256,
                "stations": len(stations.ids), "writes_enabled": token_bytes is not None}

    @app.get("/stations", response_model=list[schemas.Station])
    def list_stations():
        counts = store.posted_counts()
        return [{"id": s, "posted_days": counts.get(s, 0), "data_version": store.data_version(s)}
                for s in stations.ids]

    @app.get("/stations/{station}/observations", response_model=schemas.ObservationsOut)
    def get_observations(station: StationId, start: dt.date | None = None, end: dt.date | None = None):
        stations.check(station)
        version, ts = stations.timeseries(station)
        last = ts.index[-1]
        end_t = pd.Timestamp(end) if end else last
        start_t = pd.Timestamp(start) if start else end_t - pd.Timedelta(days=HISTORY_DAYS - 1)
        if start_t > end_t:
            raise HTTPException(422, f"start: {start_t.date()} is after end {end_t.date()}")
        if (end_t - start_t).days >= 3660:
            raise HTTPException(422, "end: at most 3660 days per request")
        part = ts.loc[start_t:end_t]
        posted = ts.attrs.get("posted_dates", set())
        rows = []
        for d, r in zip(part.index, part.itertuples(index=False)):
            rec = r._asdict()
            rows.append({"date": d.date(), "posted": d in posted,
                         **{name: _num(rec[col]) if col in rec else None for name, col in FILE_COLUMN.items()}})
        return {"station": station, "data_version": version, "observations": rows}

    @app.post("/stations/{station}/observations", response_model=schemas.PostResult,
              dependencies=[Depends(require_token)])
    def post_observations(body: schemas.ObservationsIn, station: StationId):
        stations.check(station)
        days = [{"date": d.date.isoformat(), **{c: getattr(d, c) for c in OBS_COLUMNS}} for d in body.observations]
        version = store.upsert_observations(station, days)
        log.info("station %s: %d day(s) posted, data version %d", station, len(days), version)
        return {"station": station, "stored": len(days), "data_version": version}

    def _answer(row: dict, ts: pd.DataFrame, cached: bool) -> dict:
        issue = pd.Timestamp(row["issue_date"])
        return {"id": row["id"], "station": row["station"], "issue_date": row["issue_date"], "leads": row["leads"],
                "setting": row["setting"], "data_version": row["data_version"],
                "model_sha256": row["model_sha256"], "created_at": row["created_at"], "cached": cached,
                "forecast": row["table"], "weights": row["weights"], "history": _history(ts, issue),
                "observed_after": _observed_after(ts, issue, row["leads"])}

    def _issue(key: tuple, ts: pd.DataFrame, issue: pd.Timestamp) -> bytes:
        """Find the forecast of ``key`` in the database, else run the model and record it; cache it."""
        station, _, leads, _ = key
        with issue_lock:
            row = store.find_forecast(*key, model_sha256)
            cached = row is not None
            if row is None:
                t0 = time.perf_counter()
                res = forecaster(station, ts.copy(), issue.date(), leads)
                table = res.table
                setting = str(table["setting"].iloc[0]) if "setting" in table.columns and len(table) else ""
                weights = {str(k): float(v) for k, v in res.weights.items()}
                row = store.add_forecast(*key, model_sha256, setting, _table_rows(table), weights)
                log.info("station %s: forecast issued for %s (%d leads) in %.3f s", station, key[1], leads,
                         time.perf_counter() - t0)
        answer = _answer(row, ts, cached=cached)
        with cache_lock:
            cache[key] = _encode({**answer, "cached": True})
            while len(cache) > cache_size:
                cache.popitem(last=False)
        return _encode(answer)

    @app.get("/stations/{station}/forecast", response_model=schemas.ForecastOut)
    async def get_forecast(station: StationId, issue_date: dt.date | None = None,
                           leads: Annotated[int | None, Query(ge=1, le=MAX_LEADS,
                                                              description="lead days (default 7, or fewer if the "
                                                                          "model forecasts fewer)")] = None):
        # Async: a cached answer is sent from the event loop without a thread hand-off; anything that
        # reads a file, the database or runs the model goes to the thread pool.
        leads = min(7, max_leads) if leads is None else leads
        if leads > max_leads:
            raise HTTPException(422, f"leads: {leads} is more than the {max_leads} lead days this model forecasts")
        stations.check(station)
        hit = stations.peek(station)
        version, ts = hit if hit is not None else await run_in_threadpool(stations.timeseries, station)
        issue = pd.Timestamp(issue_date) if issue_date else _default_issue(ts)
        if not ts.index[0] <= issue <= ts.index[-1]:
            raise HTTPException(422, f"issue_date: {issue.date()} is outside the station's data "
                                     f"({ts.index[0].date()} .. {ts.index[-1].date()})")
        key = (station, issue.date().isoformat(), leads, version)
        with cache_lock:
            body = cache.get(key)
            if body is not None:
                cache.move_to_end(key)
        if body is None:
            body = await run_in_threadpool(_issue, key, ts, issue)
        return Response(body, media_type="application/json")

    @app.get("/stations/{station}/forecasts", response_model=schemas.ForecastHistoryOut)
    def get_forecasts(station: StationId, limit: Annotated[int, Query(ge=1, le=1000)] = 50):
        stations.check(station)
        _, ts = stations.timeseries(station)
        flow = ts["discharge_vol"] if "discharge_vol" in ts.columns else None
        out = []
        for row in store.forecasts(station, limit):
            leads = []
            for lead in row["table"]:
                d = pd.Timestamp(lead["valid_date"])
                obs = _num(flow.get(d, float("nan"))) if flow is not None else None
                leads.append({**lead, "observed": obs})
            out.append({k: row[k] for k in ("id", "issue_date", "leads", "setting", "data_version",
                                            "model_sha256", "created_at")} | {"forecast": leads})
        return {"station": station, "forecasts": out}

    return app


def recent_part(ts: pd.DataFrame, issue: pd.Timestamp, cfg) -> pd.DataFrame:
    """The part of ``ts`` from which an issue-time forecast for ``issue`` comes out the same as from all of it.

    Days after the issue day are not known at issue time, so they go. The model reads ``seq_len`` days; its inputs look back at most 30 days (trailing sums, the SSI
    state) plus the lead days, except the runs of high- and low-precipitation days, which count back to
    their start. So the cut is at least ``seq_len + 400`` days before the issue day, on a day that ends
    both runs (neither high nor low rain, or missing): every feature of the kept days is then computed
    from the same values as with the whole record. Nothing is cut where no such day exists.
    """
    target = issue - pd.Timedelta(days=cfg.training.seq_len + 400)
    if target <= ts.index[0]:
        return ts.loc[:issue]
    head = ts.loc[:target]
    if cfg.data.derived_features:
        p = head["precipitation"].to_numpy(np.float64)
        with np.errstate(invalid="ignore"):
            ends_both = ~np.isfinite(p) | ((p >= cfg.data.low_precip_mm) & (p < cfg.data.high_precip_mm))
        if not ends_both.any():
            return ts.loc[:issue]
        target = head.index[np.flatnonzero(ends_both)[-1]]
    return ts.loc[target:issue]


def model_forecaster(bundle, data_dir) -> Forecaster:
    """The forecaster of a loaded checkpoint ``bundle`` (``load_model``'s tuple)."""
    from ..evaluation.operational import issue_forecast

    cfg, known = bundle[1], set(bundle[2].basins)

    def forecast(station: str, timeseries: pd.DataFrame, issue_date, leads: int):
        # Only the recent part: the forecast reads a window, and the features of the whole record cost
        # ~10x the model. A basin the scalers do not know is fitted on its record, so it gets all of it.
        if station in known:
            timeseries = recent_part(timeseries, pd.Timestamp(issue_date), cfg)
        return issue_forecast(bundle, station, data_dir=data_dir, issue_date=issue_date, leads=leads,
                              timeseries=timeseries)

    return forecast
