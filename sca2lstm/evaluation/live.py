"""Issue-time forecasts for a long-running process (the service): models loaded once, run in worker
processes, on the recent part of each station's current data.

A service holds each station's daily data in memory (its file with the days posted to it laid over) and
asks for forecasts of it many times. Three things make that cheap without changing a single number:

- :func:`recent_part` cuts the record to the days a forecast can read (derived from the config), so the
  features of 45 years are not computed again for every request;
- a station the model was not trained on gets its discharge scale fitted once per version of its data
  (:func:`fit_station_scaler`), not on every request over its whole record;
- :class:`LiveForecaster` runs the model in worker processes (``workers >= 1``), so a forecast never
  holds the serving process's interpreter lock; ``workers=0`` runs in the calling thread (tests, scripts).

A forecast from the cut record with the fitted scale equals :func:`~sca2lstm.evaluation.operational.issue_forecast`
on the whole record (tested).
"""

from __future__ import annotations

import concurrent.futures as cf
import copy
import logging
import multiprocessing
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..checkpoint import load_model
from ..data.features import feature_lookback
from ..data.scaling import BasinScaler
from ..errors import UsageError
from ..fileio import file_sha256
from .context import BasinContext
from .operational import RECENT_OBS_DAYS, OperationalForecast, issue_forecast

log = logging.getLogger(__name__)


def history_days(cfg) -> int:
    """Days before the issue day that an issue-time forecast of a model with config ``cfg`` reads: its
    window (``seq_len`` days, the last ``forecast_leads`` of them after the issue day), what the
    features of the window's first day look back (:func:`~sca2lstm.data.features.feature_lookback`),
    and at least the days searched for a recent observed flow."""
    window = cfg.training.seq_len - 1 - cfg.training.forecast_leads
    return max(window + feature_lookback(cfg), RECENT_OBS_DAYS)


def recent_part(ts: pd.DataFrame, issue: pd.Timestamp, cfg) -> pd.DataFrame:
    """The part of ``ts`` from which an issue-time forecast for ``issue`` comes out the same as from all of it.

    Days after the issue day are not known at issue time, so they go. Before it, :func:`history_days`
    are kept; the runs of high- and low-precipitation days count back to their start, so the cut moves
    back to the last day at or before the window's first day that ends both runs (rain neither high nor
    low, or missing): every feature of the window is then computed from the same values as with the whole
    record. Nothing is cut where no such day exists. The discharge scale of a station the model does not
    know must come from the whole record (:func:`fit_station_scaler`).

    Parameters
    ----------
    ts : pandas.DataFrame
        Daily data [T, columns] on a gap-free date index.
    issue : pandas.Timestamp
    cfg : Config
        The model's config.
    """
    back = history_days(cfg)
    cut = issue - pd.Timedelta(days=back)
    if cut <= ts.index[0]:
        return ts.loc[:issue]
    if cfg.data.derived_features and "precipitation" in ts.columns:
        first = issue - pd.Timedelta(days=cfg.training.seq_len - 1 - cfg.training.forecast_leads)
        p = ts["precipitation"].loc[:first].to_numpy(np.float64)
        with np.errstate(invalid="ignore"):
            ends_both = ~np.isfinite(p) | ((p >= cfg.data.low_precip_mm) & (p < cfg.data.high_precip_mm))
        if not ends_both.any():
            return ts.loc[:issue]
        cut = min(cut, ts.index[int(np.flatnonzero(ends_both)[-1])])
    return ts.loc[cut:issue]


def fit_station_scaler(bundle, station: str, ts: pd.DataFrame, data_dir) -> BasinScaler:
    """The discharge scale of a station the model was not trained on, from its whole record ``ts``, by
    the rule every command uses (:func:`~sca2lstm.evaluation.context.new_basin_scale_days`)."""
    return BasinContext.resolve(bundle, data_dir, station, timeseries=ts).scalers.basins[station]


def forecast_station(bundle, station: str, ts: pd.DataFrame, issue_date, leads: int, data_dir,
                     scaler: BasinScaler | None = None, weather_forecast=None) -> OperationalForecast:
    """:func:`~sca2lstm.evaluation.operational.issue_forecast` of ``station`` from ``ts`` (its record, or its
    :func:`recent_part`) with the station's discharge scale ``scaler`` when the model does not know it."""
    if scaler is not None and station not in bundle[2].basins:
        scalers = copy.copy(bundle[2])                      # never mutate the loaded bundle
        scalers.basins = {**bundle[2].basins, station: scaler}
        bundle = (bundle[0], bundle[1], scalers, bundle[3])
    return issue_forecast(bundle, station, data_dir=data_dir, issue_date=issue_date, leads=leads,
                          timeseries=ts, weather_forecast=weather_forecast)


# ----------------------------------------------------------------------------- the models
@dataclass(frozen=True)
class ModelRef:
    """A checkpoint the service forecasts with: its file (never shown to clients), its sha256, and
    what it is (``pretrained`` or ``fine-tuned``)."""

    path: str
    sha256: str
    kind: str


_PRETRAINED_NAMES = ("sca2lstm.pth",)
_FINE_TUNED = "best_model_basin_*.pth"


def station_models(model, stations) -> tuple[ModelRef, dict[str, ModelRef]]:
    """Which checkpoint forecasts each station.

    Parameters
    ----------
    model : path
        A checkpoint file: every station uses it. Or a folder (a training run's output): each station's
        own fine-tuned model where there is one (``**/best_model_basin_<id>.pth``, the newest by
        modification time), else the pretrained model of the folder (``sca2lstm.pth`` at its top, or
        the only ``*.pth`` there).
    stations : list of str

    Returns
    -------
    (ModelRef, dict)
        The pretrained (default) model, and the fine-tuned model of each station that has one.
    """
    path = Path(model).expanduser()
    if path.is_file():
        return ModelRef(str(path), file_sha256(path), "pretrained"), {}
    if not path.is_dir():
        raise UsageError(f"--model {path}: no such checkpoint file or folder")
    top = sorted(p for p in path.glob("*.pth") if p.is_file())
    named = [p for p in top if p.name in _PRETRAINED_NAMES]
    if named:
        default = named[0]
    elif len(top) == 1:
        default = top[0]
    else:
        shown = ", ".join(p.name for p in top) or "none"
        raise UsageError(f"--model {path}: expected the pretrained model as sca2lstm.pth (or the only .pth) at "
                         f"the folder's top; found {shown}")
    wanted = set(map(str, stations))
    newest: dict[str, Path] = {}
    for f in path.rglob(_FINE_TUNED):
        sid = f.name[len("best_model_basin_"):-len(".pth")]
        if sid in wanted and f.is_file():
            old = newest.get(sid)
            if old is None or (f.stat().st_mtime_ns, str(f)) > (old.stat().st_mtime_ns, str(old)):
                newest[sid] = f
    own = {s: ModelRef(str(f), file_sha256(f), "fine-tuned") for s, f in sorted(newest.items())}
    return ModelRef(str(default), file_sha256(default), "pretrained"), own


# ----------------------------------------------------------------------------- worker processes
_BUNDLES: dict[str, tuple] = {}


def _bundle(path: str):
    """The loaded checkpoint ``path``, once per process."""
    hit = _BUNDLES.get(path)
    if hit is None:
        hit = _BUNDLES[path] = load_model(path, "cpu")
    return hit


def _worker_start(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)


def _task(path: str, station: str, ts: pd.DataFrame, issue_date, leads: int, data_dir, scaler, fit: bool,
          weather_forecast=None):
    """One forecast (in a worker, or in the caller's thread): ``(forecast, station scaler or None)``.
    With ``fit``, ``ts`` is the whole record: the station's scale is fitted on it, then it is cut."""
    bundle = _bundle(path)
    if fit:
        scaler = fit_station_scaler(bundle, station, ts, data_dir)
        ts = recent_part(ts, pd.Timestamp(issue_date), bundle[1])
    fc = forecast_station(bundle, station, ts, issue_date, leads, data_dir, scaler, weather_forecast)
    return fc, scaler


def _ping(paths: list[str]) -> int:
    for p in paths:
        _bundle(p)
    return os.getpid()


class LiveForecaster:
    """Forecasts of stations from their current data, by their models, in ``workers`` processes.

    Parameters
    ----------
    default : ModelRef
        The model of every station without its own.
    own : dict of str -> ModelRef
        Stations' own (fine-tuned) models.
    data_dir : path
        The stations' data folder (static attributes).
    workers : int
        Worker processes (each loads the models it is asked for once, one torch thread each); 0 runs each
        forecast in the calling thread.
    """

    def __init__(self, default: ModelRef, own: dict | None = None, data_dir=None, workers: int = 0):
        self.default = default
        self.own = dict(own or {})
        self.data_dir = data_dir
        self._scalers: dict[tuple, BasinScaler] = {}
        self.workers = workers
        if workers > 0:
            ctx = multiprocessing.get_context("spawn")  # no fork of a process holding threads and torch
            self._pool = cf.ProcessPoolExecutor(workers, mp_context=ctx, initializer=_worker_start, initargs=(1,))
        else:
            self._pool = cf.ThreadPoolExecutor(1, thread_name_prefix="forecast")
        for ref in self.refs():  # refuse a checkpoint that cannot forecast now, not at the first request
            cfg = self.config(ref)
            if cfg.training.forecast_leads < 1:
                raise UsageError(f"the {ref.kind} model {Path(ref.path).name} is hindcast-only "
                                 "(training.forecast_leads 0); the service needs one trained to forecast from "
                                 "an issue date (training.forecast_leads >= 1)")

    def refs(self) -> list[ModelRef]:
        return [self.default, *self.own.values()]

    def model(self, station: str) -> ModelRef:
        return self.own.get(station, self.default)

    def config(self, ref: ModelRef):
        return _bundle(ref.path)[1]

    def max_leads(self) -> int:
        """The fewest lead days any of the models forecasts."""
        return min(self.config(r).training.forecast_leads for r in self.refs())

    def warm_up(self, timeout: float = 300.0) -> None:
        """Start every worker and load the models in it, so the first requests do not pay for it."""
        paths = [r.path for r in self.refs()]
        for f in [self._pool.submit(_ping, paths) for _ in range(2 * max(1, self.workers))]:
            f.result(timeout=timeout)

    def submit(self, station: str, ts: pd.DataFrame, data_key, issue_date, leads: int,
               weather_forecast=None) -> cf.Future:
        """Start the forecast of ``station`` from its record ``ts`` (all of it) for ``issue_date``.

        ``data_key`` names the version of ``ts`` (e.g. a fingerprint of the file and the posts): the
        scale fitted for a station the model does not know is kept per key. Returns a future of an
        :class:`~sca2lstm.evaluation.operational.OperationalForecast`.
        """
        ref = self.model(station)
        bundle = _bundle(ref.path)
        issue = pd.Timestamp(issue_date)
        known = station in bundle[2].basins
        key = (ref.path, station, data_key)
        scaler = None if known else self._scalers.get(key)
        fit = not known and scaler is None
        part = ts.loc[:issue] if fit else recent_part(ts, issue, bundle[1])
        args = (ref.path, station, part, issue.date(), leads, self.data_dir, scaler, fit, weather_forecast)
        inner = self._pool.submit(_task, *args)
        result: cf.Future = cf.Future()

        def done(f: cf.Future):
            err = f.exception()
            if err is not None:
                result.set_exception(err)
                return
            fc, fitted = f.result()
            if fit and fitted is not None:
                if len(self._scalers) > 4096:
                    self._scalers.clear()
                self._scalers[key] = fitted
            result.set_result(fc)

        inner.add_done_callback(done)
        return result

    def forecast(self, station: str, ts: pd.DataFrame, data_key, issue_date, leads: int,
                 weather_forecast=None) -> OperationalForecast:
        """:meth:`submit`, waited for."""
        return self.submit(station, ts, data_key, issue_date, leads, weather_forecast).result()

    def close(self) -> None:
        """Stop the workers (a forecast running in one is finished first)."""
        self._pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
