"""The forecast service: HTTP over the stations' data, the database and a :class:`~sca2lstm.evaluation.live.LiveForecaster`.

This module only maps HTTP to the library: the forecasts come from :mod:`sca2lstm.evaluation.live` (the
model runs in worker processes, outside this process's interpreter lock), the data from
:mod:`sca2lstm.serve.stations`, the records from :mod:`sca2lstm.serve.store`.

Who gets what:
- anyone reads stations, observations and forecasts. An anonymous forecast comes from the memory cache
  or the database, or is computed and not stored; anonymous requests are limited per client
  (``anonymous_per_minute``, never below 60);
- a token holder posts observations and sets a station's named warning levels (its metadata file), and the
  forecasts it asks for are stored (with the daily issue's, the record of what was issued).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hmac
import json
import logging
import math
import time
from collections import OrderedDict
from concurrent.futures.process import BrokenProcessPool
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace
from typing import Annotated, Literal, get_args

import pandas as pd
from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..data.rating import (STAGE_COLUMNS, discharge_to_stage, highest_gauged_stage, level_discharge, stage_columns,
                           stage_table, zero_flow_stage)
from ..data.station_meta import times_text
from ..errors import CheckpointError, Sca2lstmError, StationFileError, UsageError
from ..evaluation.live import LiveForecaster, ModelRef
from ..evaluation.operational import HISTORY_DAYS, history_days
from ..evaluation.reforecast import level_stages
from ..evaluation.warn import station_warning
from ..notes import Note
from . import schemas
from .daily import Daily, issue_daily, run_daily
from .page import TEXT, choose_language, render_page
from .export import issued_levels, issued_table, weather_archive
from .limits import MAX_BODY_BYTES, BodyLimitMiddleware, RateLimit
from .messages import (PART_SEPARATOR, Message, in_data_folder, one_line, public_detail, said_in,
                       validation_words)
from .stations import FILE_COLUMN, StationData, StationState, pet_column
from .store import OBS_COLUMNS, Store
from .weather import WeatherForecasts, body_kind, unread_type

#: A posted discharge this many times the largest of the station's file is refused as a likely typo.
UNUSUAL_FLOW_RATIO = 10.0

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).resolve().parent / "static"
MIN_ANONYMOUS_PER_MINUTE = 60
STATION_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$"  # the ids the importer accepts (data/ids.py)
# Module level: FastAPI resolves the (postponed) annotations of the routes in this module's namespace.
StationId = Annotated[str, PathParam(pattern=STATION_PATTERN, description="gauge id, e.g. 32006")]
BearerCredentials = Annotated[HTTPAuthorizationCredentials | None,
                              Depends(HTTPBearer(auto_error=False, description="the write token given to the server"))]
#: Which stored forecasts an export reads: the daily issue's, those asked for with the token, or all.
Origin = Literal["daily", "request", "all"]


def _num(v) -> float | None:
    v = float(v)
    return v if math.isfinite(v) else None


def _flow(ts: pd.DataFrame) -> pd.Series:
    return ts["discharge_vol"] if "discharge_vol" in ts.columns else pd.Series(float("nan"), index=ts.index)


def _history(ts: pd.DataFrame, issue: pd.Timestamp) -> list[dict]:
    part = _flow(ts).loc[issue - pd.Timedelta(days=HISTORY_DAYS - 1):issue]
    return [{"date": d.strftime("%Y-%m-%d"), "observed": _num(v)} for d, v in part.items()]


def default_issue(ts: pd.DataFrame) -> pd.Timestamp:
    """The last day with observed discharge (the operational forecast's default), else the last day."""
    last = _flow(ts).last_valid_index()
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


def table_rows(table: pd.DataFrame, p_exceed: dict | None = None, warnings: list | None = None) -> list[dict]:
    """The rows of a forecast table as the API and the database hold them, with each lead's P(Q > level)
    and warned level (:class:`~sca2lstm.evaluation.live.LiveForecast`)."""
    rows = []
    flows = stage_columns(table.columns)          # median and every quantile column -> its water level's name
    quantiles = [c for c in flows if c != "median"]
    stages = [s for s in flows.values() if s in table.columns]
    for i, r in enumerate(table.to_dict("records")):  # a model without some quantile level gives None for it
        rows.append({"valid_date": pd.Timestamp(r["valid_date"]).date().isoformat(), "lead_days": int(r["lead_days"]),
                     **{k: _num(r.get(k, float("nan"))) for k in ("median", "q05", "q25", "q75", "q95")},
                     # every level the model gives, those of a model trained with other levels (q10, q90) too
                     "quantiles": {k: _num(r[k]) for k in quantiles},
                     # water levels (m) of a station with a rating curve, through its inverse
                     **{k: _num(r[k]) for k in STAGE_COLUMNS.values() if k in r},
                     **({"stage_quantiles": {k[len("stage_"):]: _num(r[k]) for k in stages if k != "stage_median"}}
                        if stages else {}),
                     "p_exceed": {n: _num(p[i]) for n, p in (p_exceed or {}).items()},
                     "warning": (warnings or [None] * len(table))[i]})
    return rows


def level_docs(levels: dict, curve=None, issue: pd.Timestamp | None = None) -> dict:
    """name -> the level as the API and the database hold it: m3/s, its source, and the warning probability the
    warnings apply (one per lead where the calibration chose one per lead) with where it came from; with the
    station's rating ``curve``, ``stage``: the level as a water level (m), as given or through the curve valid on
    ``issue`` (the page shows it beside the flow)."""
    out = {}
    stages = level_stages(levels, curve, issue)   # what `sca2lstm forecast` says of them, unrounded
    for name, lv in levels.items():
        d = lv.to_dict()
        out[name] = {"value": _num(d["value"]), "unit": "m3/s", "warn_probability": d.get("warn_probability"),
                     "warn_probability_by_lead": d.get("warn_probability_by_lead"),
                     "warn_probability_source": d.get("warn_probability_source"),
                     "source": d.get("source", ""), "ci90": d.get("ci90"), "stage_m": d.get("stage_m"),
                     "stage": stages.get(name)}
    return out


#: The quantile levels every lead of a forecast stored before its ``quantiles`` were kept gives (the default ones).
STORED_QUANTILES = ("q05", "q25", "q75", "q95")


def in_todays_form(row: dict, curve) -> dict:
    """A stored forecast ``row`` in the form the service stores one today, for its readers (the page, ``/warnings``,
    the daily issue's alerts, the list of issued forecasts). A forecast stored by an earlier version lacks each lead's ``quantiles`` (it gave the
    four default levels alone) and ``stage_quantiles``, filled from its ``q05`` .. ``q95`` and ``stage_q05`` ..
    ``stage_q95``, and each level's water level ``stage``, worked out as :func:`level_docs` does: as given
    (``stage_m``), else its flow through the station's rating ``curve`` valid on the issue date. A row is read under
    the fingerprint of the station's files, its metadata file included, so ``curve`` is the one it was issued with; a
    station without a curve gets null (no water level, as a forecast issued today)."""
    table = []
    for lead in row.get("table") or []:
        lead = dict(lead)
        if "quantiles" not in lead:
            lead["quantiles"] = {q: lead[q] for q in STORED_QUANTILES if lead.get(q) is not None}
        staged = {q: lead[f"stage_{q}"] for q in STORED_QUANTILES if f"stage_{q}" in lead}
        if "stage_quantiles" not in lead and staged:
            lead["stage_quantiles"] = staged
        table.append(lead)
    levels = row.get("levels") or {}
    older = {n: SimpleNamespace(value=lv.get("value"), stage=lv.get("stage_m")) for n, lv in levels.items()
             if "stage" not in lv and (lv.get("value") is not None or lv.get("stage_m") is not None)}
    stages = level_stages(older, curve, pd.Timestamp(row["issue_date"])) if older else {}
    levels = {n: lv if "stage" in lv else {**lv, "stage": stages.get(n)} for n, lv in levels.items()}
    return {**row, "table": table, "levels": levels}


def _setting(table: pd.DataFrame) -> str:
    return str(table["setting"].iloc[0]) if "setting" in table.columns and len(table) else ""


class Service:
    """What the routes share: the data, the database, the forecaster, the memory cache."""

    def __init__(self, data_dir, db_path, forecaster: LiveForecaster, cache_size: int):
        self.store = Store(db_path)
        self.data_dir = data_dir
        self.stations = StationData(data_dir, self.store)
        self.forecaster = forecaster
        self.weather = WeatherForecasts(self.store, data_dir, forecaster)
        # key -> (answer bytes, the row: stored in the database when its id is not None)
        self.cache: OrderedDict = OrderedDict()
        self.cache_size = cache_size
        self.in_flight: dict[tuple, asyncio.Future] = {}
        # The model forecasts all its lead days at once: one run per (station, issue day, data, model)
        # serves every number of leads asked for (the first rows of the table; tested).
        self.runs: OrderedDict = OrderedDict()
        self.max_leads = forecaster.max_leads()

    def key(self, state: StationState, station: str, issue: pd.Timestamp, leads: int, model: ModelRef,
            weather_id: int = 0) -> tuple:
        """What a forecast is cached and stored by: a new post, file, model, calibration of the model or weather
        forecast is a new key."""
        return (station, issue.date().isoformat(), leads, state.version, state.fingerprint, model.sha256, weather_id,
                model.calibration_sha256)

    def remember(self, key: tuple, answer: dict, row: dict) -> None:
        self.cache[key] = (_encode({**answer, "cached": True}), row)
        self.cache.move_to_end(key)
        while len(self.cache) > self.cache_size:
            self.cache.popitem(last=False)

    async def current_model(self, station: str) -> ModelRef:
        """The model that forecasts ``station`` now: one fine-tuned into the --model folder, or a checkpoint in use
        replaced on disk, is looked for first (rate-limited, :meth:`LiveForecaster.rescan`)."""
        if self.forecaster.rescan_due():
            await run_in_threadpool(self.forecaster.rescan)
        return self.forecaster.model(station)

    async def levels(self, station: str, leads: int) -> tuple[StationState, str, dict, int | None]:
        """The levels the forecast of ``station`` on its last day with observed flow (the one ``/warnings`` reads)
        warns on, without issuing it: ``(data state, its issue day, name -> level as the API holds it, the id of
        that forecast where it is stored, else None)``. The levels come from the station's record, its metadata
        file and the model's calibration (:meth:`LiveForecaster.warnings`), as the forecast's own do."""
        model, state, issue, _, key = await self._resolve(station, None, leads, None)
        warnings = await run_in_threadpool(self.forecaster.warnings, station, state.timeseries,
                                           (state.version, state.fingerprint), model)
        hit = self.cache.get(key)
        row = hit[1] if hit is not None and hit[1]["id"] is not None else await run_in_threadpool(
            self.store.find_forecast, *key)
        return (state, issue.date().isoformat(), level_docs(warnings.levels, state.meta.rating_curve, issue),
                row["id"] if row else None)

    async def run_model(self, key: tuple, state: StationState, issue: pd.Timestamp, leads: int, model: ModelRef,
                        weather=None):
        """The forecast of ``key`` by ``model`` (its first ``leads`` days; ``weather``: the weather forecast it
        reads, or None); concurrent requests share one run."""
        run_key = key[:2] + key[3:]  # every number of leads
        live = self.runs.get(run_key)
        if live is None:
            fut = self.in_flight.get(run_key)
            if fut is None:
                data_key = (state.version, state.fingerprint)
                fut = asyncio.wrap_future(self.forecaster.submit(key[0], state.timeseries, data_key, issue,
                                                                 self.max_leads, weather, model=model))
                self.in_flight[run_key] = fut
                fut.add_done_callback(lambda _: self.in_flight.pop(run_key, None))
            try:
                live = await asyncio.shield(fut)
            except BrokenProcessPool:
                raise HTTPException(503, Message("worker_stopped")) from None
            # its notes name the station's files (its weather archive) by their path in the data folder, stored so
            live = replace(live, notes=[in_data_folder(n, self.data_dir) for n in live.notes])
            self.runs[run_key] = live
            while len(self.runs) > 256:
                self.runs.popitem(last=False)
        self.runs.move_to_end(run_key)
        return live.first(leads)

    async def _resolve(self, station: str, issue_date, leads: int, model: ModelRef | None):
        """What a forecast of ``station`` is and is named by: ``(model, data state, issue day, weather forecast or
        None, cache and database key)``. ``issue_date`` None: the last day with observed flow; ``model`` None: the
        station's model now."""
        self.stations.check(station)
        if model is None:
            model = await self.current_model(station)  # the one this forecast is named after and run with
        state = self.stations.peek(station) or await run_in_threadpool(self.stations.state, station)
        ts = state.timeseries
        issue = pd.Timestamp(issue_date) if issue_date else default_issue(ts)
        if not ts.index[0] <= issue <= ts.index[-1]:
            raise HTTPException(422, Message("issue_outside", day=issue.date(), first=ts.index[0].date(),
                                             last=ts.index[-1].date()))
        # The weather forecast it reads (covering the model's lead days: one run serves every ``leads``).
        weather = self.weather.for_issue(station, issue, self.max_leads)
        return model, state, issue, weather, self.key(state, station, issue, leads, model,
                                                      weather[0]["id"] if weather else 0)

    async def forecast(self, station: str, issue_date, leads: int, store: bool, origin: str = "request",
                       model: ModelRef | None = None):
        """``(answer bytes, row)`` of the forecast of ``station`` (issue day: ``issue_date``, else the last
        day with observed flow): from the memory cache, else the database, else the model; stored in the
        database when ``store`` (a token holder, the daily issue). ``model``: the version to issue it with
        (the daily issue's, fixed at its start); default the station's model now."""
        model, state, issue, weather, key = await self._resolve(station, issue_date, leads, model)
        ts = state.timeseries
        hit = self.cache.get(key)
        if hit is not None and (hit[1]["id"] is not None or not store):
            self.cache.move_to_end(key)
            if store and origin == "daily" and hit[1].get("origin") != "daily":
                await self._mark_daily(hit[1])
            return hit
        row = await run_in_threadpool(self.store.find_forecast, *key)
        if row is not None and store and origin == "daily" and row.get("origin") != "daily":
            await self._mark_daily(row)
        if row is not None:  # perhaps stored by an earlier version of the service
            row = in_todays_form(row, state.meta.rating_curve)
        cached = row is not None or hit is not None
        if row is None and hit is not None:  # computed for an anonymous client: now it is stored
            row = await run_in_threadpool(self.store.add_forecast, *key[:6], hit[1]["setting"], hit[1]["table"],
                                          hit[1]["weights"], hit[1]["levels"], origin, key[6], hit[1].get("notes"),
                                          key[7])
        if row is None:
            t0 = time.perf_counter()
            live = await self.run_model(key, state, issue, leads, model, weather[1] if weather else None)
            fc = live.forecast
            rows = table_rows(fc.table, live.p_exceed, live.warnings)
            weights = {str(k): float(v) for k, v in fc.weights.items()}
            levels = level_docs(live.levels, state.meta.rating_curve, issue)
            if store:
                row = await run_in_threadpool(self.store.add_forecast, *key[:6], _setting(fc.table), rows, weights,
                                              levels, origin, key[6], live.notes, key[7])
            else:
                row = {"id": None, "station": station, "issue_date": key[1], "leads": leads, "data_version": key[3],
                       "model_sha256": key[5], "setting": _setting(fc.table), "table": rows, "weights": weights,
                       "levels": levels, "weather_id": key[6], "notes": list(live.notes), "calibration_sha256": key[7],
                       "created_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds")}
            log.info("station %s: forecast for %s (%d leads%s) in %.3f s%s", station, key[1], leads,
                     f", weather forecast {key[6]}" if key[6] else "", time.perf_counter() - t0,
                     "" if store else " (anonymous: not stored)")
        answer = answer_of(row, ts, cached=cached, weather=weather[0] if weather else None,
                           curve=state.meta.rating_curve)
        self.remember(key, answer, row)
        return _encode(answer), row


    async def _mark_daily(self, row: dict) -> None:
        """The stored forecast ``row``, first asked for by a token holder, is issued by the daily issue (the same
        key: e.g. asked for after a post, then issued again by the day's re-issue): the record of what the daily
        issue issued (``issued.csv``) holds it from now on."""
        await run_in_threadpool(self.store.mark_daily, row["id"])
        row["origin"] = "daily"


def weather_doc(summary: dict | None) -> dict | None:
    """The weather forecast a forecast read, as the API gives it (None: none)."""
    if summary is None:
        return None
    return {k: summary[k] for k in ("id", "issue_date", "first_valid", "last_valid", "members", "origin", "source",
                                    "created_at")}


#: How far above the highest flow of a forecast's answer its water-level table reaches: the page's chart draws levels
#: up to 3 times the highest flow and ends its axis on a round tick above them (at most 1.5 times as high).
STAGE_SCALE_REACH = 5.0
#: Rows of the water-level table (enough for the chart's ticks to lie within a pixel of where the curve puts them).
STAGE_SCALE_POINTS = 500


def stage_scale_doc(curve, issue: pd.Timestamp, answer: dict) -> dict | None:
    """The station's rating curve valid on ``issue`` as the page's water-level axis reads it: ``{"flow": [...],
    "stage": [...]}`` (m3/s, m), flows from 0 to :data:`STAGE_SCALE_REACH` times the highest flow of ``answer``
    (history, forecast quantiles, days observed since), as the CLI's fan chart tabulates it
    (:func:`~sca2lstm.data.rating.stage_table`); None without a curve."""
    if curve is None:
        return None
    flows = [d["observed"] for d in answer["history"] + answer["observed_after"]]
    flows += [v for f in answer["forecast"] for v in (f.get("median"), *(f.get("quantiles") or {}).values())]
    top = max([0.01] + [v for v in flows if v is not None])  # a dry river still gets a scale, as the chart an axis
    table = stage_table(curve, issue, q_top=STAGE_SCALE_REACH * top, points=STAGE_SCALE_POINTS)
    if table is None:
        return None
    q, h = table
    return {"flow": [float(f"{v:.6g}") for v in q], "stage": [round(float(v), 4) for v in h]}


def answer_of(row: dict, ts: pd.DataFrame, cached: bool, weather: dict | None = None, curve=None) -> dict:
    """A forecast as ``GET .../forecast`` answers it; with the station's rating ``curve``, ``stage_scale``: the
    table the page's water-level axis is drawn from (:func:`stage_scale_doc`)."""
    issue = pd.Timestamp(row["issue_date"])
    answer = {"id": row["id"], "station": row["station"], "issue_date": row["issue_date"], "leads": row["leads"],
              "setting": row["setting"], "weather": weather_doc(weather), "data_version": row["data_version"],
              "model_sha256": row["model_sha256"], "calibration_sha256": row.get("calibration_sha256", ""),
              "created_at": row["created_at"], "cached": cached,
              "forecast": row["table"], "weights": row["weights"], "levels": row.get("levels") or {},
              # what the data checks found, without the server's folders (the stored row keeps them whole); in English
              # here: the answer is cached once for every reader (get_forecast says them in the reader's language)
              "notes": notes_in(row),
              "history": _history(ts, issue), "observed_after": _observed_after(ts, issue, row["leads"])}
    scale = stage_scale_doc(curve, issue, answer)
    return {**answer, "stage_scale": scale} if scale is not None else answer  # (without a curve: as before)


def notes_in(row: dict, lang: str = "en") -> list[str]:
    """The notes of a forecast row as a client reads them: in ``lang`` where a note can be said in it
    (:class:`~sca2lstm.notes.Note`; else in English, as stored), without the server's file paths."""
    return [said_in(n, lang) for n in row.get("notes") or []]


def station_warnings(row: dict, today: dt.date | None = None, lang: str = "en") -> dict:
    """A station's warnings from its forecast row: the highest level per lead, and over all leads; with
    ``today``, how many days old the data it was issued from are (``data_age_days``: 1 for yesterday's); its notes
    in ``lang`` (:func:`notes_in`)."""
    levels = row.get("levels") or {}
    leads = [{"lead_days": r["lead_days"], "valid_date": r["valid_date"], "warning": r.get("warning"),
              "probability": (r.get("p_exceed") or {}).get(r.get("warning")) if r.get("warning") else None}
             for r in row["table"]]
    top, first = station_warning([x["warning"] for x in leads], level_values(levels))
    age = (today - dt.date.fromisoformat(str(row["issue_date"])[:10])).days if today is not None else None
    return {"station": row["station"], "issue_date": row["issue_date"], "forecast_id": row["id"],
            "warning": top, "first_lead": first, "levels": levels, "leads": leads, "data_age_days": age,
            "notes": notes_in(row, lang)}


def _model_in(annotation):
    """The pydantic model an annotation holds (``Model``, ``list[Model]``, ``Model | None``), or None."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return next((m for m in map(_model_in, get_args(annotation)) if m is not None), None)


def _body_fields(request: Request, path) -> list[str]:
    """The fields of the body model at ``path`` (its place in the body, e.g. ``("observations", 0)``) of the
    request's route; [] where it cannot be told."""
    body = getattr(request.scope.get("route"), "body_field", None)
    model = _model_in(getattr(getattr(body, "field_info", None), "annotation", None))
    for key in path:
        if model is None:
            return []
        if isinstance(key, str):  # an int is an item of a list: the same model
            field = model.model_fields.get(key)
            model = _model_in(field.annotation) if field is not None else None
    return list(model.model_fields) if model is not None else []


def _shown(value) -> str | None:
    """A refused value as the one-line error names it: as JSON, text cut after 37 characters (None: a list or an
    object, named by its place)."""
    if isinstance(value, (dict, list)):
        return None
    if isinstance(value, str) and len(value) > 37:
        value = value[:37] + "..."
    try:
        return json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        return repr(value)


def _query_names(dependant) -> list[str]:
    """The query parameters a route (its :class:`fastapi.dependencies.models.Dependant`) and its dependencies read."""
    names = [p.alias for p in dependant.query_params]
    for sub in dependant.dependencies:
        names += [n for n in _query_names(sub) if n not in names]
    return names


def known_query(request: Request) -> None:
    """Refuse (422) a query parameter the route does not read, naming the ones it does: FastAPI drops it without a
    word, and a misspelt ``issue_date`` would give the forecast of another day. The page (not in the API
    description) reads its own ``?station=`` in the browser."""
    route = request.scope.get("route")
    if not getattr(route, "include_in_schema", False) or getattr(route, "dependant", None) is None:
        return
    allowed = _query_names(route.dependant)
    unknown = [k for k in request.query_params if k not in allowed]
    if unknown:
        raise HTTPException(422, Message("unknown_query", name=unknown[0], allowed=", ".join(allowed)) if allowed
                            else Message("unknown_query_none", name=unknown[0]))


def unforeseen(exc: Exception) -> Message:
    """What a client is told of an error the service did not foresee (a bug; the log has its traceback)."""
    return Message("unforeseen", error=type(exc).__name__)


def language(request: Request) -> str:
    """The language of the page the request's ``Accept-Language`` prefers (``en`` without one)."""
    return choose_language(request.headers.get("accept-language"))


def level_values(levels: dict) -> dict:
    """name -> flow (m3/s) of the levels as the API holds them."""
    return {n: lv["value"] for n, lv in levels.items() if lv.get("value") is not None}


def create_app(data_dir, db_path, forecaster: LiveForecaster, *, token: str | None = None,
               max_body: int = MAX_BODY_BYTES, cache_size: int = 2048, anonymous_per_minute: int = 120,
               daily: Daily | None = None, clock=time.monotonic, on_shutdown=None) -> FastAPI:
    """Build the service.

    Parameters
    ----------
    data_dir : path
        Data folder (``timeseries/``, ``meta/``); its basins are the stations; only read, but for a station's
        metadata file, where ``PUT /stations/{station}/levels`` writes its warning levels.
    db_path : path
        SQLite file (created if absent).
    forecaster : LiveForecaster
        The stations' models (:mod:`sca2lstm.evaluation.live`); its lead days bound the requests.
    token : str, optional
        The write token; without one, posts are refused (403).
    anonymous_per_minute : int
        Requests a minute one client may make without the token (at least 60).
    daily : Daily, optional
        The daily issue (:mod:`sca2lstm.serve.daily`): run at ``daily.at`` each day while the app runs,
        and on demand (``POST /daily_issue``, with the token).
    on_shutdown : callable, optional
        Called when the server stops (``sca2lstm serve``: the forecaster's worker processes are stopped
        there, since uvicorn ends the process on SIGTERM right after the app's shutdown).
    """
    if anonymous_per_minute < MIN_ANONYMOUS_PER_MINUTE:
        raise ValueError(f"anonymous_per_minute {anonymous_per_minute}: at least {MIN_ANONYMOUS_PER_MINUTE}")
    svc = Service(data_dir, db_path, forecaster, cache_size)
    store, stations = svc.store, svc.stations
    max_leads = forecaster.max_leads()
    token_bytes = token.encode("utf-8") if token else None
    limiter = RateLimit(anonymous_per_minute, clock=clock)

    daily = daily or Daily()

    @contextlib.asynccontextmanager
    async def lifespan(_app):
        task = asyncio.create_task(run_daily(svc, daily)) if daily.at is not None else None
        try:
            yield
        finally:
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            if on_shutdown is not None:
                await run_in_threadpool(on_shutdown)

    app = FastAPI(title="sca2lstm forecast service",
                  description="Daily river-discharge forecasts (SCA2LSTM) per station, with posted observations, "
                              "warnings and a daily issue.",
                  version="1", lifespan=lifespan, dependencies=[Depends(known_query)])
    app.add_middleware(BodyLimitMiddleware, limit=max_body)
    app.state.service = svc
    app.state.store = store
    app.state.stations = stations

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError):
        # in the reader's language: a frame around each field's name, what is wrong and the value sent (the English
        # answer as it always was)
        lang = language(request)
        ct = (request.headers.get("content-type") or "").split(";")[0].strip().lower()
        if not ct.endswith("json") and any(tuple(e.get("loc", ())) == ("body",) and isinstance(e.get("input"), bytes)
                                           for e in exc.errors()):
            # a JSON body sent without its type (curl -d without -H sends a form's) is handed over unread, and
            # pydantic's "valid dictionary" names neither the header nor the fix
            return refusal(request, 415, Message("json_content_type", ctype=ct or "none"))
        parts = []
        for e in exc.errors():
            if e.get("type") == "json_invalid":  # loc is ("body", character offset)
                at = e.get("loc", ("body", "?"))[-1]
                parts.append(Message("malformed_json", at=at, error=e.get("ctx", {}).get("error", "invalid")))
                continue
            loc = [str(x) for x in e.get("loc", ()) if x not in ("body", "query", "path", "header")]
            msg = validation_words(e, lang)
            if e.get("type") == "extra_forbidden":
                allowed = _body_fields(request, e.get("loc", ())[1:-1])
                msg = Message("unknown_field", allowed=", ".join(allowed)).said_in(lang) if allowed else msg
            # pydantic's own words do not name the value; the service's checks (value_error) do
            shown = _shown(e["input"]) if "input" in e and e.get("type") not in ("value_error", "missing") else None
            got = Message("invalid_got", shown=shown).said_in(lang) if shown else ""
            parts.append(Message("invalid_field", where=".".join(loc), msg=msg, got=got) if loc else
                         Message("invalid_body", msg=msg, got=got))
        return JSONResponse({"detail": PART_SEPARATOR[lang].join(p.said_in(lang) for p in parts)}, status_code=422,
                            headers={"Vary": "Accept-Language"})

    def refusal(request: Request, status: int, text, headers=None) -> Response:
        """The error answer: one line without the server's file paths (:func:`~.messages.public_detail`), in the
        language the request prefers where the service has the message in it (:class:`~.messages.Message`); the
        log keeps the whole English text of a failure of the service (5xx) or of one whose text was cut."""
        if status >= 500 or public_detail(text) != one_line(text):
            log.warning("%s %s: %d %s", request.method, request.url.path, status, one_line(text))
        if status in (204, 304):
            return Response(status_code=status, headers=headers)
        return JSONResponse({"detail": said_in(text, language(request))}, status_code=status,
                            headers={**(headers or {}), "Vary": "Accept-Language"})

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException):
        return refusal(request, exc.status_code, exc.detail, getattr(exc, "headers", None))

    @app.exception_handler(Sca2lstmError)
    async def _domain(request: Request, exc: Sca2lstmError):
        # a checkpoint replaced under the running service, or a station file it cannot read, is the service's
        # state, not the request's fault
        status = 503 if isinstance(exc, (CheckpointError, StationFileError)) else 422
        return refusal(request, status, exc)

    @app.exception_handler(Exception)
    async def _unforeseen(request: Request, exc: Exception):
        # a bug: the client gets one line, the log the traceback
        log.error("%s %s: unforeseen error", request.method, request.url.path, exc_info=exc)
        station = request.path_params.get("station")
        text = Message("of_station", station=station, text=unforeseen(exc)) if station else unforeseen(exc)
        return JSONResponse({"detail": said_in(text, language(request))}, status_code=500,
                            headers={"Vary": "Accept-Language"})

    def holds_token(cred: BearerCredentials) -> bool:
        """True for the token's holder, False without credentials; 401 for a wrong token."""
        if cred is None or not cred.credentials:
            return False
        if token_bytes is None or not hmac.compare_digest(cred.credentials.encode("utf-8"), token_bytes):
            raise HTTPException(401, Message("wrong_token"), headers={"WWW-Authenticate": "Bearer"})
        return True

    def reader(request: Request, cred: BearerCredentials) -> bool:
        """A read: the token's holder goes on; an anonymous client within its rate; else 429."""
        if holds_token(cred):
            return True
        client = request.client.host if request.client else "unknown"
        wait = limiter.take(client)
        if wait > 0:
            raise HTTPException(429, Message("rate", limit=anonymous_per_minute, wait=RateLimit.retry_after(wait)),
                                headers={"Retry-After": RateLimit.retry_after(wait)})
        return False

    def require_token(cred: BearerCredentials) -> None:
        if token_bytes is None:
            raise HTTPException(403, Message("writes_off"))
        if cred is None or not cred.credentials:
            raise HTTPException(401, Message("missing_token"),
                                headers={"WWW-Authenticate": "Bearer"})
        holds_token(cred)

    @app.get("/", include_in_schema=False)
    def index(request: Request):
        lang = choose_language(request.headers.get("accept-language"))
        return HTMLResponse(render_page(lang, svc.max_leads), headers={"Content-Language": TEXT[lang]["lang"],
                                                        "Vary": "Accept-Language"})

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    @app.get("/health", response_model=schemas.Health)
    def health():
        return {"status": "ok", "model_sha256": forecaster.default.sha256, "fine_tuned_stations": len(forecaster.own),
                "stations": len(stations.ids), "writes_enabled": token_bytes is not None,
                "last_daily_issue": store.last_daily_issue()}

    @app.get("/stations", response_model=list[schemas.Station], dependencies=[Depends(reader)])
    def list_stations():
        counts = store.posted_counts()
        return [{"id": s, "posted_days": counts.get(s, 0), "data_version": store.data_version(s)}
                for s in stations.ids]

    @app.get("/stations/{station}/observations", response_model=schemas.ObservationsOut,
             dependencies=[Depends(reader)])
    def get_observations(station: StationId, start: dt.date | None = None, end: dt.date | None = None):
        stations.check(station)
        state = stations.state(station)
        ts = state.timeseries
        end_t = pd.Timestamp(end) if end else ts.index[-1]
        start_t = pd.Timestamp(start) if start else end_t - pd.Timedelta(days=HISTORY_DAYS - 1)
        if start_t > end_t:
            raise HTTPException(422, f"start: {start_t.date()} is after end {end_t.date()}")
        if (end_t - start_t).days >= 3660:
            raise HTTPException(422, "end: at most 3660 days per request")
        part = ts.loc[start_t:end_t]
        columns = {**FILE_COLUMN, "pet": pet_column(ts)}
        rows = []
        for d, r in zip(part.index, part.itertuples(index=False)):
            rec = r._asdict()
            rows.append({"date": d.date(), "posted": d in state.posted_dates,
                         **{name: _num(rec[col]) if col in rec else None for name, col in columns.items()}})
        return {"station": station, "data_version": state.version, "observations": rows}

    @app.post("/stations/{station}/observations", response_model=schemas.PostResult, response_model_exclude_none=True,
              dependencies=[Depends(require_token)])
    def post_observations(request: Request, body: schemas.ObservationsIn, station: StationId, unusual: bool = False):
        """Store observed days (a value given replaces the stored one). A discharge more than
        ``UNUSUAL_FLOW_RATIO`` times the largest of the station's file is refused as a likely typo unless
        ``?unusual=true`` confirms it; ``DELETE .../observations/{date}`` takes a posted day back."""
        stations.check(station)
        days = [{"date": d.date.isoformat(), **{c: getattr(d, c) for c in OBS_COLUMNS}} for d in body.observations]
        pet_day = next((d["date"] for d in days if d["pet"] is not None), None)
        if pet_day is not None and not stations.pet_columns(station):
            # its history's PET is Oudin PET: a posted one would switch the kind its models read (stations.py)
            raise HTTPException(422, Message("pet_without_column", station=station, day=pet_day))
        staged = [(day, d.stage) for day, d in zip(days, body.observations) if d.stage is not None]
        noted = []   # stored, but said: a flow extrapolated above the gauged range, or a dry day
        if staged:  # a stage-only station reads its water level: the discharge its curve gives, as the import does
            meta = stations.meta(station)
            curve = meta.rating_curve
            if curve is None:
                raise HTTPException(422, Message("no_rating_curve", station=station, day=staged[0][0]["date"]))
            # imported with --below_h0 zero (an ephemeral stream): a level below h0 is a dry day, as in its record
            dry = meta.provenance.get("below_h0") == "zero"
            for day, stage in staged:
                h0 = zero_flow_stage(curve, pd.Timestamp(day["date"]))
                if dry and stage < h0:
                    day["discharge"] = 0.0
                    noted.append(Message("stage_below_zero_flow", stage=stage, day=day["date"], h0=h0))
                    continue
                try:
                    day["discharge"] = level_discharge(curve, stage, pd.Timestamp(day["date"]), warn=False)
                except UsageError as e:
                    raise HTTPException(422, Message("stage_off_curve", day=day["date"], reason=str(e))) from None
                top = highest_gauged_stage(curve, pd.Timestamp(day["date"]))
                if stage > top:  # stored, but said: the flow of a flood above the gauged range is the curve's guess
                    noted.append(Message("stage_extrapolated", stage=stage, day=day["date"], top=top,
                                                flow=float(f"{day['discharge']:.4g}")))
        top = stations.record_max(station, "discharge_vol")
        big = [d for d in days if d.get("discharge") is not None and top and d["discharge"] > UNUSUAL_FLOW_RATIO * top]
        if big and not unusual:
            stage = dict((day["date"], h) for day, h in staged).get(big[0]["date"])
            if stage is not None:  # the observer typed a water level (in cm?): name it, not the flow worked from it
                # the record's highest flow as a water level gives the scale, whichever unit was typed (cm, dm)
                top_stage = float(discharge_to_stage(curve, [top], pd.Timestamp(big[0]["date"]))[0])
                raise HTTPException(422, Message("unusual_stage", stage=stage, flow=big[0]["discharge"],
                                                 day=big[0]["date"], times=times_text(big[0]["discharge"] / top),
                                                 top=top, top_stage=round(top_stage, 2)))
            raise HTTPException(422, Message("unusual_flow", flow=big[0]["discharge"], day=big[0]["date"],
                                             times=times_text(big[0]["discharge"] / top), top=top))
        # a day far after the record's end that no forecast could be issued on (none of the days it reads is known)
        gap = stations.gap_refusal(station, [d["date"] for d in days],
                                   history_days(forecaster.config(forecaster.model(station))))
        if gap is not None:
            raise HTTPException(422, gap)
        version = store.upsert_observations(station, days)
        log.info("station %s: %d day(s) posted, data version %d%s", station, len(days), version,
                 "".join(f"; {m}" for m in noted))
        lang = language(request)
        return {"station": station, "stored": len(days), "data_version": version,
                "notes": [m.said_in(lang) for m in noted] or None}

    @app.delete("/stations/{station}/observations/{date}", response_model=schemas.PostResult,
                dependencies=[Depends(require_token)])
    def delete_observation(station: StationId, date: dt.date):
        """Take back a posted day: the station's data for that day is its file's again (or missing)."""
        stations.check(station)
        version = store.delete_observation(station, date.isoformat())
        if version is None:
            raise HTTPException(404, f"observations: nothing was posted for station {station} on {date}")
        log.info("station %s: the posted day %s taken back, data version %d", station, date, version)
        return {"station": station, "stored": 0, "data_version": version}

    @app.put("/stations/{station}/levels", response_model=schemas.LevelsSetOut, dependencies=[Depends(require_token)])
    def put_levels(body: schemas.LevelsIn, station: StationId):
        """Replace the station's named warning levels in its metadata file (checked as ``sca2lstm station import
        --warning_levels`` checks them; ``{"levels": {}}`` removes them); its next forecasts and daily issue warn on them.
        Forecasts issued before keep the levels they were issued with."""
        stations.check(station)
        meta = stations.set_levels(station, body.levels, body.levels_in, body.warn_probability)
        # a new data version: the day's issue warned on the levels before, and the daily loop issues the station
        # again that morning (as after a post), so a warning on the new levels is alerted the same day
        store.count_levels_change(station)
        out = {}
        for name, lv in meta.warning_levels.items():
            flow = level_discharge(meta.rating_curve, lv.value, warn=False) if lv.unit == "m" else lv.value
            out[name] = {**lv.to_dict(), "warn_probability": lv.warn_probability, "flow": flow}
        log.info("station %s: warning levels set: %s", station,
                 ", ".join(f"{n}={d['value']:g} {d['unit']}" for n, d in out.items()) or "none")
        return {"station": station, "levels": out}

    @app.get("/stations/{station}/levels", response_model=schemas.StationLevelsOut, dependencies=[Depends(reader)])
    async def get_levels(station: StationId):
        """The station's levels as its forecasts warn on them: those of its forecast issued on its last day with
        observed flow (the one ``/warnings`` reads), with each as a water level where it has a rating curve. Read
        from the levels alone (its record, its metadata file, the model's calibration): no forecast is issued."""
        _, issue, levels, forecast_id = await svc.levels(station, forecaster.max_leads())  # the daily issue's
        return {"station": station, "issue_date": issue, "forecast_id": forecast_id, "levels": levels}

    @app.post("/stations/{station}/weather", response_model=schemas.WeatherForecastOut,
              dependencies=[Depends(require_token)],
              openapi_extra={"requestBody": {"required": True, "content": {
                  "application/json": {"schema": {"type": "object", "description": "a saved Open-Meteo answer "
                                                  "(deterministic or ensemble; or a list of them: points averaged)"}},
                  "text/csv": {"schema": {"type": "string", "description": "[issue_date, lead_days,] valid_date"
                                          "[, member], <inputs>; or date, <inputs>"}}}}})
    async def post_weather(request: Request, station: StationId, issue_date: dt.date | None = None):
        """Store a weather forecast for the station: what ``sca2lstm forecast --weather_forecast`` reads. The
        station's forecasts read it while it covers their lead days (``weather`` in the answer says so)."""
        stations.check(station)
        unread = unread_type(request.headers.get("content-type"))
        if unread:  # read as CSV it would be refused for a missing valid_date column, which names the wrong fault
            raise HTTPException(415, Message("weather_content_type", ctype=unread))
        raw = await request.body()
        kind = body_kind(request.headers.get("content-type"), raw)
        row = await run_in_threadpool(svc.weather.accept, station, raw, kind, issue_date)
        return weather_doc(row) | {"station": station, "serves_issue_dates": row["serves_issue_dates"]}

    @app.get("/stations/{station}/weather", response_model=schemas.WeatherListOut, dependencies=[Depends(reader)])
    def get_weather(station: StationId, limit: Annotated[int, Query(ge=1, le=1000)] = 50):
        """The station's stored weather forecasts (posted or fetched), newest first."""
        stations.check(station)
        return {"station": station, "weather_forecasts": [weather_doc(s) for s in svc.weather.summaries(station)[:limit]]}

    @app.get("/stations/{station}/forecast", response_model=schemas.ForecastOut)
    async def get_forecast(request: Request, station: StationId, issue_date: dt.date | None = None,
                           leads: Annotated[int | None, Query(ge=1, le=366,
                                                              description="lead days (default 7, or fewer if the "
                                                                          "model forecasts fewer)")] = None,
                           writer: bool = Depends(reader)):
        # Async: a cached answer is sent from the event loop without a thread hand-off; the database and
        # the files are read in the thread pool, the model runs in the forecaster's worker processes.
        leads = min(7, max_leads) if leads is None else leads
        if leads > max_leads:
            raise HTTPException(422, Message("too_many_leads", leads=leads, most=max_leads))
        body, row = await svc.forecast(station, issue_date, leads, store=writer)
        lang = language(request)
        if lang != "en" and any(isinstance(n, Note) for n in row.get("notes") or []):
            # the cache holds the English answer, one per forecast for every reader: its notes are said again
            body = _encode({**json.loads(body), "notes": notes_in(row, lang)})
        return Response(body, media_type="application/json", headers={"Vary": "Accept-Language"})

    @app.get("/warnings", response_model=schemas.WarningsOut)
    async def get_warnings(request: Request, response: Response, writer: bool = Depends(reader)):
        """Every station's highest warning per lead, from its forecast issued on its last day with observed
        flow (the latest data) over every lead day the models forecast (the daily issue's forecast); a station that cannot be forecast is listed in ``errors``, its ``detail`` in the
        language the request prefers where the service has it in it, as are the stations' notes."""
        # every lead day the models forecast, as the daily issue does: the forecast its alerts came from (its
        # stored row), not another of 7 days, blind to a warning that starts later
        leads = forecaster.max_leads()
        lang = language(request)
        response.headers["Vary"] = "Accept-Language"  # a cache between must not give one reader's language to another

        async def one(station):
            # One station's failure, whatever it is, costs the others nothing: it is listed in one line naming the
            # station, without the server's file paths; the log keeps the whole text (or the traceback).
            try:
                return station, (await svc.forecast(station, None, leads, store=writer))[1], None
            except (HTTPException, Sca2lstmError) as e:
                text = e.detail if isinstance(e, HTTPException) else one_line(e)
                log.warning("/warnings: station %s: %s", station, one_line(text))
            except Exception as e:  # noqa: BLE001 - see above
                log.error("/warnings: station %s: unforeseen error", station, exc_info=e)
                text = unforeseen(e)
            if not str(text).startswith(f"station {station}"):
                text = Message("of_station", station=station, text=text)
            return station, None, said_in(text, lang)

        out, errors = [], []
        for station, row, err in await asyncio.gather(*(one(s) for s in stations.ids)):
            if row is None:
                errors.append({"station": station, "detail": err})
                continue
            out.append(station_warnings(row, daily.local(daily.now()).date(), lang))
        return {"stations": out, "errors": errors}

    @app.post("/daily_issue", dependencies=[Depends(require_token)])
    async def post_daily_issue():
        """Run today's daily issue now (once per local date; a second call says it is done)."""
        return await issue_daily(svc, daily)

    @app.get("/alerts", dependencies=[Depends(reader)])
    def get_alerts(limit: Annotated[int, Query(ge=1, le=1000)] = 50):
        """The latest alerts of the daily issues (a warning that started, rose, fell or ended), newest first."""
        return {"alerts": store.alerts(limit)}

    def issued_rows(station: str, origin: str, limit: int) -> list[dict]:
        stations.check(station)
        return [r for r in store.forecasts(station, limit) if origin == "all" or r.get("origin") == origin]

    @app.get("/stations/{station}/issued.csv", dependencies=[Depends(reader)],
             response_class=Response, responses={200: {"content": {"text/csv": {}}}})
    def get_issued(station: StationId, origin: Origin = "daily", limit: Annotated[int, Query(ge=1, le=100000)] = 10000):
        """What was issued (``origin`` daily, request or all), as a table ``sca2lstm verify`` scores, with the
        flow observed since; ``/stations/{station}/issued_levels.json`` is its ``levels.json``."""
        rows = issued_rows(station, origin, limit)
        table = issued_table(rows, _flow(stations.state(station).timeseries), station)
        return Response(table.to_csv(index=False, float_format="%.4f"), media_type="text/csv")

    @app.get("/stations/{station}/issued_levels.json", dependencies=[Depends(reader)])
    def get_issued_levels(station: StationId, origin: Origin = "daily",
                          limit: Annotated[int, Query(ge=1, le=100000)] = 10000):
        return issued_levels(issued_rows(station, origin, limit), station)

    @app.get("/stations/{station}/weather_archive.csv", dependencies=[Depends(reader)],
             response_class=Response, responses={200: {"content": {"text/csv": {}}}})
    def get_weather_archive(station: StationId):
        """Every weather forecast stored for the station (posted or fetched) as its archive of past forecasts,
        ``issue_date, lead_days, valid_date, member, <inputs>``: saved as ``DIR/weather_archive/<id>.csv`` it is read
        by reforecasts, the rain mapping and training (:func:`~sca2lstm.serve.export.weather_archive`)."""
        stations.check(station)
        rows = store.weather_tables(station)
        if not rows:
            raise HTTPException(404, Message("no_weather_stored", station=station))
        return Response(weather_archive(rows).to_csv(index=False), media_type="text/csv")

    @app.get("/stations/{station}/forecasts", response_model=schemas.ForecastHistoryOut,
             dependencies=[Depends(reader)])
    def get_forecasts(station: StationId, limit: Annotated[int, Query(ge=1, le=1000)] = 50):
        stations.check(station)
        state = stations.state(station)
        flow = _flow(state.timeseries)
        out = []
        for row in store.forecasts(station, limit):
            row = in_todays_form(row, state.meta.rating_curve)  # one stored by an earlier version: its quantiles
            leads = []
            for lead in row["table"]:
                obs = _num(flow.get(pd.Timestamp(lead["valid_date"]), float("nan")))
                leads.append({**lead, "observed": obs})
            out.append({k: row[k] for k in ("id", "issue_date", "leads", "setting", "data_version",
                                            "model_sha256", "calibration_sha256", "created_at", "weather_id")}
                       | {"forecast": leads})
        return {"station": station, "forecasts": out}

    return app
