"""Prediction as an importable API: ``predict(model_path, basin, start, end)`` returns a DataFrame.

The forecast is the lead-``L`` forecast the model was trained for: Q(t) from meteorology up to day t
and observed discharge up to day t - L. Inputs with gaps are masked, not dropped; days that cannot be
forecast stay NaN and are counted. Everything users see is in m3/s.
"""

from __future__ import annotations

import glob
import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..data.features import FORECAST_FLAG, OBSERVED_FLAG_LABEL, feature_labels
from ..data.dataset import check_period_inputs
from ..data.periods import parse_day64
from ..fileio import folder_built_aside, json_text
from ..checkpoint import load_model
from ..errors import DataError, UsageError
from .context import BasinContext
from .forecast import forecast_periods
from .metrics import all_metrics, paired_metrics
from .persistence import apply_blend

log = logging.getLogger(__name__)

#: The information setting of :func:`predict`, named in its outputs (issue-time forecasts are
#: :mod:`sca2lstm.evaluation.operational`).
HINDCAST_SETTING = "hindcast: observed weather of the target day"


@dataclass
class Prediction:
    """``series``: date, observed, predicted, persistence (m3/s), input_gap; ``weights``: date x feature."""

    basin: str
    series: pd.DataFrame
    weights: pd.DataFrame
    metrics: dict
    n_unpredicted: int
    model_path: Path
    seconds: float
    lead_days: int = 1
    periods: dict | None = None  # the basin's periods rule when the defaults were used (data.periods)
    predicted_raw: np.ndarray | None = None  # the model before the persistence blend (m3/s)


def resolve_model_path(patterns, basin=None) -> Path:
    """A path or glob (quoted, or already expanded by the shell into several paths): the newest match; with
    ``basin``, the newest of the matches fine-tuned for it (``best_model_basin_<basin>.pth``) where any is."""
    if isinstance(patterns, (str, os.PathLike)):
        patterns = [patterns]
    matches = []
    for p in patterns:
        p = os.path.expanduser(str(p))  # a '~' the shell left (--model=~/x.pth) is the home folder, glob or not
        hits = glob.glob(p) if glob.has_magic(p) else ([p] if Path(p).exists() else [])
        matches += [Path(h) for h in hits]
    matches = sorted({m.resolve() for m in matches if m.is_file()}, key=lambda m: (m.stat().st_mtime, str(m)))
    # A path named without a wildcard is the model meant: beside others, one missing (a typo) or a folder is
    # refused, never skipped for the newest of the others.
    named = [p for p in map(str, patterns) if not glob.has_magic(p) and not Path(p).expanduser().is_file()]
    if matches and named:
        from ..checkpoint import folder_given_as_checkpoint
        given = Path(named[0]).expanduser()
        raise DataError(folder_given_as_checkpoint(given) if given.is_dir() else f"checkpoint {given} does not exist")
    if not matches:
        folders = [p for p in map(str, patterns) if not glob.has_magic(p) and Path(p).expanduser().is_dir()]
        if folders:
            from ..checkpoint import folder_given_as_checkpoint
            raise DataError(folder_given_as_checkpoint(Path(folders[0]).expanduser()))
        raise DataError(f"no checkpoint matches {' '.join(map(str, patterns))}")
    own = [m for m in matches if basin is not None and m.name == f"best_model_basin_{basin}.pth"]
    if own and len(own) < len(matches):
        log.info("%d checkpoints match; %d fine-tuned for basin %s", len(matches), len(own), basin)
        matches = own
    if len(matches) > 1:
        log.info("%d checkpoints match; using the newest: %s", len(matches), matches[-1])
    return matches[-1]


def predict(model_path, basin, start=None, end=None, data_dir=None, device="cpu", model_bundle=None,
            test_start=None, allow_missing_inputs: bool = False, context: BasinContext | None = None) -> Prediction:
    """Forecast ``basin`` from ``start`` to ``end`` (default: the basin's test part).

    The default test part is the one a fine-tuned checkpoint of this basin stored; else the configured
    test period, or, for a basin whose record does not cover the configured periods, the last ``data.station_test_fraction`` (20 %) of
    its observed record (:mod:`sca2lstm.data.periods`; ``test_start`` sets its first day).

    Parameters
    ----------
    model_path : path or glob
        Any sca2lstm checkpoint, pretrained or fine-tuned.
    basin : str or int
    start, end : str or date, optional
    model_bundle : tuple, optional
        ``load_model(...)`` output, to reuse a loaded model across basins.
    test_start : str, optional
        First day of the basin's test part (:mod:`sca2lstm.data.periods`).
    allow_missing_inputs : bool
        Run even when precipitation, or every meteorological input, is absent from the basin's file.
    context : BasinContext, optional
        The basin already resolved for this model (:mod:`sca2lstm.evaluation.context`).

    Scores on days the checkpoint was trained or validated on for this basin are labelled in-sample
    (``metrics["in_sample"]``), with a warning.

    Returns
    -------
    Prediction
    """

    t_start = time.time()
    path = resolve_model_path(model_path, basin)
    bundle = model_bundle or load_model(path, device)
    ctx = context or BasinContext.resolve(bundle, data_dir, basin, test_start=test_start, device=device,
                                          allow_missing_inputs=allow_missing_inputs)
    model, cfg, basin, rec, scalers = ctx.model, ctx.cfg, ctx.basin, ctx.record, ctx.scalers
    # The periods are named in the outputs when they chose the days (and for a basin new to the model,
    # whose discharge scale they chose).
    periods = ctx.periods if test_start is not None or start is None or end is None or not ctx.in_checkpoint \
        else None
    s = parse_day64(start or (periods.test_start if periods else cfg.data.test_start), "--start")
    e = parse_day64(end or (periods.test_end if periods else cfg.data.test_end), "--end")
    if s > e:
        # a day not given is the test period's: name it so, not as a flag the user did not type
        first = f"--start {s}" if start else f"the test period's start {s}"
        last = f"--end {e}" if end else f"the test period's end {e}"
        hint = "" if start and end else f"; give {'--end' if start else '--start'} too"
        raise UsageError(f"{first} is after {last}{hint}")
    if s > rec.dates[-1] or e < rec.dates[0]:
        raise DataError(f"basin {basin}: the period {s}..{e} is outside its data ({rec.dates[0]}..{rec.dates[-1]})")
    if e > rec.dates[-1]:
        log.warning("basin %s: %s %s is beyond its data; forecasting up to its last day with data, %s",
                    basin, "--end" if end else "the test period's end", e, rec.dates[-1])
    in_sample = ctx.in_sample(s, e)
    if in_sample["in_sample"]:
        log.warning("basin %s: %d of the scored days %s..%s are days the model was trained on (and %d it was "
                    "validated on): these scores are in-sample, not a test", basin, in_sample["train_days"], s, e,
                    in_sample["validation_days"])
    i0, i1 = rec.period(s, e)
    if start is None and end is None and not np.isfinite(rec.y[i0:i1]).any():
        _refuse_unscorable_test_part(ctx, s, e)
    # The inputs missing on the forecast days, counted in one line as fine-tuning counts its training part's: a rain
    # gauge that stopped for the test year left the scores those of a model blind to rain, and nothing said so.
    check_period_inputs(rec, cfg, rec.dates[i0], rec.dates[i1 - 1], "forecast")
    data = ctx.sequence_data()
    fc = forecast_periods(model, data, [(i0, i1)], cfg.training.seq_len, cfg.training.spinup, device,
                          return_weights=True)[0]
    o, lead = data.offsets[0], cfg.data.lead_days
    # no river flows backwards: the model's output, unbounded in its scaled space, is clamped at 0 m3/s
    pred = np.maximum(scalers.inverse_y(fc.pred.astype(np.float64), basin), 0.0)
    obs = rec.y[i0:i1].astype(np.float64)
    pers_idx = np.arange(i0, i1) - lead
    pers = np.where(pers_idx >= 0, rec.y[np.clip(pers_idx, 0, None)], np.nan).astype(np.float64)
    alpha, source = ctx.blend.alpha, ctx.blend.source
    # the model named: a run that predicts with two models (the demo: pretrained, then fine-tuned) said it twice alike
    log.info("basin %s: persistence blend %s(%s; model %s)", basin, "" if alpha is None else f"alpha={alpha:.3f} ",
             source, Path(path).name if path is not None else "given in memory")
    pred_raw = pred
    if alpha is not None:
        pred = apply_blend(pred_raw, pers, alpha)
    gap = np.isnan(data.x[o + i0:o + i1]).any(axis=1)
    dates = pd.DatetimeIndex(rec.dates[i0:i1].astype("datetime64[ns]"), name="date")
    series = pd.DataFrame({"observed": obs, "predicted": pred, "persistence": pers, "input_gap": gap},
                          index=dates).reset_index()
    weights = pd.DataFrame(fc.weights, index=dates, columns=scalers.feature_names)
    metrics = _blend_metrics(basin, obs, pred, pred_raw, pers, alpha, source, s, e)
    # The paired score skips the days right after a gap (no persistence there); this one keeps them.
    metrics["model_all_days"] = model_all_days(obs, pred)
    metrics["in_sample"] = in_sample
    metrics["missing_inputs"] = list(ctx.missing_inputs)
    metrics["data"] = ctx.data_record()
    n_unpred = int(np.isnan(pred).sum())
    if n_unpred:
        log.warning("basin %s: %d of %d days could not be forecast", basin, n_unpred, len(pred))
    return Prediction(basin, series, weights, metrics, n_unpred, path, time.time() - t_start, lead,
                      periods.to_dict() if periods else None, predicted_raw=pred_raw)


def _refuse_unscorable_test_part(ctx: BasinContext, s, e) -> None:
    """A DataError in one line: the test part ``s..e`` that :func:`predict` scores by default holds no observed
    discharge (the checkpoint stored it, and the record has since lost those flows), naming what to give instead.

    Raised before anything is written: an earlier scored prediction of the basin is not replaced by an unscored one.
    """
    rec = ctx.record
    stored = ctx.ckpt.get("finetuned_basin") == ctx.basin and ctx.ckpt.get("periods")
    obs = np.flatnonzero(np.isfinite(rec.y))
    where = f" (observed {rec.dates[obs[0]]}..{rec.dates[obs[-1]]})" if len(obs) else ""
    raise DataError(f"basin {ctx.basin}: no observed discharge in its test part {s}..{e}"
                    f"{' (stored in the fine-tuned checkpoint)' if stored else ''}, so nothing to score; give "
                    f"--test_start a day of its record with observed flows after it{where}, or --start and --end "
                    "to forecast those days without a score")


def _blend_metrics(basin, obs, pred, pred_raw, pers, alpha, source, s, e) -> dict:
    """paired_metrics of the forecast, plus the raw model's scores, the blend weight and the flags."""
    metrics = paired_metrics(obs, pred, pers)
    metrics["model_raw"] = paired_metrics(obs, pred_raw, pers)["model"]
    metrics["persistence_blend"] = {"alpha": alpha, "source": source}
    below = {k: bool(metrics[k]["skill_vs_persistence"] < 0) for k in ("model", "model_raw")}
    metrics["below_persistence"] = below
    if below["model"]:
        log.warning("basin %s, %s..%s: the model is below persistence (skill %.3f; NSE %.3f against %.3f)",
                    basin, s, e, metrics["model"]["skill_vs_persistence"], metrics["model"]["nse"],
                    metrics["persistence"]["nse"])
    elif below["model_raw"]:
        log.info("basin %s, %s..%s: the raw model is below persistence (skill %.3f); the blend (alpha=%.3f) "
                 "is not (skill %.3f)", basin, s, e, metrics["model_raw"]["skill_vs_persistence"], alpha,
                 metrics["model"]["skill_vs_persistence"])
    return metrics


def model_all_days(obs, pred) -> dict:
    """The model's metrics on every day with an observation and a forecast, and ``n_days``.

    Parameters
    ----------
    obs, pred : numpy.ndarray [T]
        Observed and forecast discharge (m3/s), NaN where missing.
    """
    return all_metrics(obs, pred)  # pairs with a NaN on either side are left out, n_days counts the rest


def write_prediction(pred: Prediction, out_dir, fmt: str = "csv", title_extra: str | None = None) -> Path:
    """Write series, metrics, hydrograph, attention heatmap and weights to ``out_dir/basin_{id}/``.

    ``title_extra`` follows the basin in both figures' titles and says which model they show (the demo's
    `` (fine-tuned)``); default: the checkpoint's file name, `` (model best_model_basin_32006.pth)``.

    Everything is written into a temporary folder first, then swapped in: a failure midway leaves an
    earlier good output untouched.
    """
    from .plots import plot_attention_heatmap, plot_hydrograph
    from .report import build_report

    out_dir = Path(out_dir)
    final = out_dir / f"basin_{pred.basin}"
    earlier = _earlier_prediction(final)
    with folder_built_aside(final) as tmp:
        s = pred.series
        if fmt == "netcdf":
            _write_netcdf(pred, tmp / "series.nc")
        else:
            s.to_csv(tmp / "series.csv", index=False, float_format="%.4f", date_format="%Y-%m-%d")
        m = {"basin": pred.basin, "model_checkpoint": str(pred.model_path), "setting": HINDCAST_SETTING,
             "start": str(s["date"].iloc[0].date()), "end": str(s["date"].iloc[-1].date()),
             "n_days": int(pred.metrics["n_days"]), "n_unpredicted": pred.n_unpredicted,
             "n_input_gap_days": int(s["input_gap"].sum()),
             "model": pred.metrics["model"], "persistence": pred.metrics["persistence"],
             "model_all_days": pred.metrics.get("model_all_days"),
             **{k: pred.metrics[k] for k in ("model_raw", "persistence_blend", "below_persistence", "in_sample",
                                             "missing_inputs", "data") if k in pred.metrics}}
        if "in_sample" in pred.metrics:
            m["scores_are"] = "in-sample (days the model was trained or validated on)" \
                if pred.metrics["in_sample"]["in_sample"] else "out-of-sample"
        if pred.periods:
            m["periods"] = pred.periods
        # a score that cannot be computed (no observed day) is null: NaN is not JSON, and jq, R's jsonlite or a browser
        # refused the whole file
        (tmp / "metrics.json").write_text(json_text(m, default=_jsonable),
                                          encoding="utf-8")
        if title_extra is None:   # a figure mailed on its own says whose forecasts it shows: a pretrained model's
            title_extra = f" (model {Path(pred.model_path).name})"   # or the fine-tuned one's read the same
        if (pred.metrics.get("in_sample") or {}).get("in_sample"):
            title_extra += " (in-sample days)"
        period = f"{m['start']}..{m['end']}"  # in both titles: a figure mailed on its own still says when
        title = f"Basin {pred.basin}{title_extra}, {period}: {score_text(pred)}"
        plot_hydrograph(s["date"], s["observed"], s["predicted"], tmp / "hydrograph.png", title=title,
                        persistence=s["persistence"])
        plot_attention_heatmap(s["date"], pred.weights.to_numpy(), list(pred.weights.columns),
                               tmp / "attention_heatmap.png", obs=s["observed"].to_numpy(),
                               title=f"Basin {pred.basin}{title_extra}: attention weights, {period}",
                               labels={**feature_labels(pred.weights.columns),
                                       FORECAST_FLAG: OBSERVED_FLAG_LABEL})  # a hindcast: observed weather
        pred.weights.reset_index().to_csv(tmp / "attention_weights.csv", index=False, float_format="%.5f",
                                          date_format="%Y-%m-%d")
        build_report(tmp, title=f"SCA2LSTM prediction, basin {pred.basin}", folder_name=final.name)
    if earlier and earlier != (m["start"], m["end"], m["model_checkpoint"]):
        # the folder is named by the basin alone: another period's or model's outputs are gone, which is said
        log.warning("basin %s: replaced the earlier prediction in %s (%s..%s, model %s) by this one (%s..%s); give "
                    "--output_dir to keep both", pred.basin, final, *earlier, m["start"], m["end"])
    return final


def _earlier_prediction(folder: Path) -> tuple | None:
    """The (start, end, checkpoint) of the prediction already in ``folder``, or None where it holds none readable."""
    try:
        m = json.loads((folder / "metrics.json").read_text(encoding="utf-8"))
        return m["start"], m["end"], m["model_checkpoint"]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def score_text(pred: Prediction) -> str:
    """The scores a hydrograph's title gives: the NSE beside persistence's, or, for a period without an observed flow
    to score (a forecast only) or too short for an NSE, that it has none (not "NSE nan")."""
    n = (pred.metrics.get("model_all_days") or pred.metrics)["n_days"]
    if not n:
        return "no observed discharge to score (forecast only)"
    if not np.isfinite(pred.metrics["model"]["nse"]):  # one day, or a flow that never changed: NSE is undefined
        return f"too few observed days to score ({n})"
    return f"NSE {pred.metrics['model']['nse']:.3f} (persistence {pred.metrics['persistence']['nse']:.3f})"


def _jsonable(v):
    if isinstance(v, (np.floating, np.integer)):
        return v.item()
    raise TypeError(type(v).__name__)


def require_netcdf():
    """The ``xarray`` module that ``--format netcdf`` writes with (an optional dependency: the ``netcdf``
    extra); a UsageError in one line saying how to install it when it is missing."""
    try:
        import xarray
    except ImportError:
        raise UsageError("--format netcdf needs xarray, which is not installed; install it with "
                         "pip install 'sca2lstm[netcdf]' (or use --format csv)") from None
    return xarray


def _write_netcdf(pred: Prediction, path: Path) -> None:
    xr = require_netcdf()

    s = pred.series.set_index("date")
    lead = int(pred.lead_days)
    when = "of the previous day" if lead == 1 else f"{lead} days earlier"
    ds = xr.Dataset(
        {
            "observed": ("time", s["observed"].to_numpy(), {"long_name": "observed discharge", "units": "m3 s-1",
                                                             "standard_name": "water_volume_transport_in_river_channel"}),
            "predicted": ("time", s["predicted"].to_numpy(), {"long_name": f"SCA2LSTM lead-{lead} forecast of discharge",
                                                               "units": "m3 s-1"}),
            "persistence": ("time", s["persistence"].to_numpy(), {"long_name": f"persistence forecast (observed discharge {when})",
                                                                   "units": "m3 s-1"}),
            "input_gap": ("time", s["input_gap"].to_numpy().astype("int8"), {"long_name": "1 where any input of the day was missing",
                                                                              "flag_values": [0, 1]}),
            "attention": (("time", "feature"), pred.weights.to_numpy(), {"long_name": "attention weight", "units": "1"}),
        },
        coords={"time": s.index.to_numpy(), "feature": list(pred.weights.columns)},
        attrs={"Conventions": "CF-1.8", "title": f"SCA2LSTM forecast for basin {pred.basin}",
               "source": str(pred.model_path), "gauge_id": pred.basin},
    )
    ds["time"].attrs.update({"standard_name": "time", "long_name": "time"})
    ds.to_netcdf(path)
