"""Forecast an imported station from a notebook: a thin layer over :func:`.predict.predict`."""

from __future__ import annotations

import pandas as pd

from .predict import predict


def forecast_station(model_path, data_dir, station_id, start=None, end=None, test_start=None,
                     device="cpu", allow_missing_inputs: bool = False) -> pd.DataFrame:
    """Forecast ``station_id`` of ``data_dir`` (a folder written by ``import_station``) with a checkpoint.

    Parameters
    ----------
    model_path : path or glob
        A pretrained (zero-shot) or fine-tuned checkpoint.
    start, end : str, optional
        Days to forecast (default: the station's test part, see :mod:`sca2lstm.data.periods`).
    test_start : str, optional
        First day of the test part (default: stored in a fine-tuned checkpoint, else the last 20 % of
        the station's observed record).
    allow_missing_inputs : bool
        Forecast even when precipitation, or every meteorological input, is absent from the whole file.

    Returns
    -------
    pandas.DataFrame
        ``date``, ``observed``, ``predicted``, ``persistence`` (m3/s), ``input_gap``; ``df.attrs`` holds
        ``metrics`` (NSE, KGE, ... of the model and of persistence on the same days) and ``periods``.
    """
    pred = predict(model_path, str(station_id), start, end, data_dir=data_dir, device=device, test_start=test_start,
                   allow_missing_inputs=allow_missing_inputs)
    df = pred.series.copy()
    df.attrs["metrics"] = pred.metrics
    df.attrs["periods"] = pred.periods
    return df
