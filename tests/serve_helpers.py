"""Helpers of the service tests: the forecaster of a real checkpoint, and an app factory for a server
subprocess (``python -m uvicorn serve_helpers:app_from_env --factory`` with SERVE_MODEL, SERVE_DATA_DIR,
SERVE_DB and SCA2LSTM_TOKEN set)."""

from __future__ import annotations

import os
import sqlite3

from sca2lstm.evaluation.live import LiveForecaster, station_models


def forecaster(model, data_dir, workers: int = 0, **kw) -> LiveForecaster:
    """The forecaster of checkpoint ``model`` (a file or a run folder, watched as `sca2lstm serve` watches it)
    for the stations of ``data_dir``; ``kw``: LiveForecaster's (e.g. ``rescan_every``)."""
    from pathlib import Path

    from sca2lstm.data.reader import list_basins

    stations = list_basins(data_dir)
    default, own = station_models(model, stations)
    return LiveForecaster(default, own, data_dir, workers=workers, folder=model if Path(model).is_dir() else None,
                          stations=stations, **kw)


def app_from_env():
    from sca2lstm.serve.app import create_app

    data_dir = os.environ["SERVE_DATA_DIR"]
    return create_app(data_dir, os.environ["SERVE_DB"], forecaster(os.environ["SERVE_MODEL"], data_dir),
                      token=os.environ.get("SCA2LSTM_TOKEN") or None)


def older_database(path, script: str):
    """A database at ``path`` made by ``script`` (the SQL of an earlier version's schema and rows), opened by
    today's :class:`~sca2lstm.serve.store.Store`, which migrates it."""
    from sca2lstm.serve.store import Store

    con = sqlite3.connect(path)
    con.executescript(script)
    con.close()
    return Store(path)
