"""Benchmark of issue-time (operational) forecasts on the test period, every day as an issue date.

Run from the repository root (CPU; about an hour with pretraining, minutes with ``--model``)::

    PYTHONPATH=. python bench/operational.py [--data_dir ../shared/data/camels_gb] [--model M.pth]
                                             [--out bench_output/operational] [--quick]

Without ``--model`` it pretrains SCA2LSTM with the default config (``training.forecast_leads`` 7)
on the basins of ``--data_dir``. Then, for each basin's test period, every day is an issue date:

* settings: ``issue-time`` (weather up to the issue date only), ``issue-time+perfect-weather`` (the
  observed weather of the lead days as a perfect weather forecast: an upper bound), and the
  ``hindcast`` (predict.py's lead-1 forecast with the target day's observed weather);
* per lead 1..7 and setting: NSE and KGE of the median beside persistence (the last observed flow
  carried forward) on the same days;
* CRPS approximated from the 5 quantiles as twice the mean pinball loss over the levels (the quantile
  score; it is a coarse discretisation of the CRPS integral), against two baselines with the same five
  levels: the day-of-year climatology of the training years (empirical quantiles of the flows within
  +-7 days of the day of year) and persistence with the empirical spread of its additive errors per
  lead in the training years; reported as per-basin skill 1 - CRPS / CRPS_baseline;
* coverage of the 50 % and 90 % intervals, mean width of the 90 % interval, and a reliability plot
  (observed frequency of obs <= q_tau against tau, per lead);
* time to forecast one basin at one issue date once the model is loaded: the first call (which
  parses the basin's CSV and attribute files), then the median of 50 later calls (the API keeps
  parsed files, keyed by modification time and size) and of 50 calls given the series in memory.

``--quick`` without ``--model`` is a smoke test (a tiny model trained for 1 epoch on 2 basins, one
test year): its numbers mean nothing. With ``--model``, the model's own basins (those of
``--data_dir`` it was trained on) and periods are used. Nothing here is asserted: the script prints
and saves what it measured.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import time
from pathlib import Path

import numpy as np
import pandas as pd

from sca2lstm.config import load_config
from sca2lstm.data import camels_gb
from sca2lstm.data.dataset import SequenceData, load_basin, load_static
from sca2lstm.evaluation.context import BasinContext
from sca2lstm.data.features import required_columns
from sca2lstm.evaluation.forecast import forecast_periods
from sca2lstm.evaluation.metrics import paired_metrics
from sca2lstm.evaluation.operational import issue_forecast, issue_time_hindcasts
from sca2lstm.evaluation.plots import plot_reliability
from sca2lstm.evaluation.verify import quantile_score as verify_quantile_score
from sca2lstm.training.pretrain import pretrain
from sca2lstm.checkpoint import load_model

REPO = Path(__file__).resolve().parents[1]
LEVELS = (0.05, 0.25, 0.5, 0.75, 0.95)
CLIM_HALF_WINDOW = 7


def quantile_score(obs: np.ndarray, q: np.ndarray, levels=LEVELS) -> float:
    """CRPS approximation: 2 x mean pinball loss over the levels and the valid days
    (:func:`sca2lstm.evaluation.verify.quantile_score`). obs [n], q [n, Q]; NaN days left out."""
    return verify_quantile_score(obs, q, levels)


def climatology_quantiles(dates: np.ndarray, y: np.ndarray, train: tuple[int, int], levels=LEVELS) -> np.ndarray:
    """[366, Q]: empirical quantiles of the training flows within +-7 days of each day of year."""
    i0, i1 = train
    doy = pd.DatetimeIndex(dates[i0:i1]).day_of_year.to_numpy()
    yt = y[i0:i1]
    out = np.full((367, len(levels)), np.nan)
    for d in range(1, 367):
        dist = np.abs(doy - d)
        near = np.minimum(dist, 366 - dist) <= CLIM_HALF_WINDOW
        v = yt[near & np.isfinite(yt)]
        if v.size:
            out[d] = np.quantile(v, levels)
    return out


def persistence_error_quantiles(y: np.ndarray, train: tuple[int, int], leads: int, levels=LEVELS) -> np.ndarray:
    """[leads, Q]: empirical quantiles of Q(t + k) - Q_last(t) over the training days (Q_last: the
    last observed flow up to t)."""
    i0, i1 = train
    last = pd.Series(y[i0:i1]).ffill().to_numpy()
    out = np.full((leads, len(levels)), np.nan)
    for k in range(1, leads + 1):
        e = y[i0 + k:i1] - last[:len(last) - k]
        e = e[np.isfinite(e)]
        if e.size:
            out[k - 1] = np.quantile(e, levels)
    return out


def _coverage(obs, lo, hi):
    ok = np.isfinite(obs) & np.isfinite(lo) & np.isfinite(hi)
    return float(((obs[ok] >= lo[ok]) & (obs[ok] <= hi[ok])).mean()) if ok.any() else float("nan")


def _say(message: str, t0: float) -> None:
    """One progress line with the seconds since ``t0``, flushed: it reaches a log file as it happens."""
    print(f"[{time.time() - t0:.0f} s] {message}", flush=True)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data_dir", default=str(REPO.parent / "shared" / "data" / "camels_gb"))
    ap.add_argument("--model", default=None, help="a checkpoint (skips pretraining)")
    ap.add_argument("--out", default="bench_output/operational")
    ap.add_argument("--quick", action="store_true", help="smoke test: tiny model, 1 epoch, 2 basins, 1 test year")
    ap.add_argument("--timing_reps", type=int, default=50)
    ap.add_argument("--period", choices=["test", "val"], default="test",
                    help="score the test period (default) or the validation period (for design choices)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    data_dir = Path(args.data_dir)

    cfg = load_config(overrides={"data": {"data_dir": str(data_dir)}})
    basins = camels_gb.list_basins(data_dir)
    if args.quick and not args.model:
        basins = basins[:2]
        cfg = cfg.replace(data={"basins": basins, "test_start": "2005-10-01", "test_end": "2006-09-30"},
                          model={"hidden_size": 16, "attention_hidden_size": 8, "embedding_size": 4},
                          training={"epochs": 1, "epoch_coverage": 0.1})
    t0 = time.time()
    if args.model:
        ckpt = Path(args.model)
    else:
        ckpt = out / "sca2lstm.pth"
        pretrain(cfg, ckpt, data_dir=data_dir, basins=basins, progress=False)
    train_s = time.time() - t0
    model, mcfg, scalers, ck = bundle = load_model(ckpt)
    F = mcfg.training.forecast_leads
    if F <= 0:
        raise SystemExit(f"{ckpt} is a hindcast-only model (training.forecast_leads 0): no issue-time forecasts")
    L, lead_days = mcfg.training.seq_len, mcfg.data.lead_days
    if args.model:
        basins = [b for b in ck.get("basins", []) if b in basins] or basins
    _say(f"reading {len(basins)} basins of {data_dir}", t0)
    records = [load_basin(data_dir, b, mcfg) for b in basins]
    for r in records:
        if r.basin not in scalers.basins:  # its discharge scale by the rule every command uses
            scalers.basins[r.basin] = BasinContext.resolve(bundle, data_dir, r.basin).scalers.basins[r.basin]
    data = SequenceData(records, load_static(data_dir, basins, mcfg), scalers, pad=L)
    d = mcfg.data
    start, end = (d.test_start, d.test_end) if args.period == "test" else (d.val_start, d.val_end)
    test = [r.period(start, end) for r in records]  # the scored period
    train = [r.period(d.train_start, d.train_end) for r in records]
    # Issue days: every day from the day before the test period to the day before its end, so that
    # every lead's valid days cover the test period (each lead scored on valid days inside it).
    issue = [(i0 - 1, i1 - 1) for i0, i1 in test]
    t1 = time.time()
    # Basin by basin, one line each (a full-size model takes minutes over many basins; without these lines
    # the script said nothing until the end), and a bar over the issue dates on a terminal.
    settings = (("issue-time", "none"), ("issue-time+perfect-weather", "perfect"))
    runs = {s: [] for s, _ in settings}
    for b, rec in enumerate(records):
        for s, w in settings:
            runs[s] += issue_time_hindcasts(model, data, [issue[b]], F, w, seq_len=L, lead_days=lead_days,
                                            basin_indices=[b], progress=True)
        _say(f"basin {rec.basin} ({b + 1}/{len(records)}) forecast, every day of its {args.period} period an "
             f"issue date", t0)
    hind = forecast_periods(model, data, test, L, mcfg.training.spinup)
    fc_s = time.time() - t1
    _say("hindcasts done; scoring", t0)

    rows, rel = [], {}
    for b, rec in enumerate(records):
        i0, i1 = test[b]
        clim = climatology_quantiles(rec.dates, rec.y.astype(np.float64), train[b])
        perr = persistence_error_quantiles(rec.y.astype(np.float64), train[b], F)
        for setting, res in runs.items():
            h = res[b]
            for k in range(1, F + 1):
                valid = np.arange(h.i0, h.i1) + k          # valid day of each issue day at lead k
                sel = (valid >= i0) & (valid < i1)
                obs = h.observed[sel, k - 1]
                med = h.median[sel, k - 1]
                pers = h.last_obs[sel]
                m = paired_metrics(obs, med, pers)
                q = h.quantiles[sel, k - 1] if h.quantiles is not None else np.full((sel.sum(), 5), np.nan)
                doy = pd.DatetimeIndex(rec.dates[valid[sel]]).day_of_year.to_numpy()
                q_clim = clim[doy]
                q_pers = np.maximum(pers[:, None] + perr[k - 1][None, :], 0.0)
                crps = quantile_score(obs, q)
                row = {"basin": rec.basin, "setting": setting, "lead": k, "n_days": int(m["n_days"]),
                       "nse": m["model"]["nse"], "kge": m["model"]["kge"],
                       "persistence_nse": m["persistence"]["nse"], "persistence_kge": m["persistence"]["kge"],
                       "crps": crps, "crps_climatology": quantile_score(obs, q_clim),
                       "crps_persistence_spread": quantile_score(obs, q_pers),
                       "coverage50": _coverage(obs, q[:, 1], q[:, 3]), "coverage90": _coverage(obs, q[:, 0], q[:, 4]),
                       "width90": float(np.nanmean(q[:, 4] - q[:, 0]))}
                rows.append(row)
                ok = np.isfinite(obs) & np.isfinite(q).all(axis=1)
                rel.setdefault((setting, k), []).append((obs[ok, None] <= q[ok]).astype(float))
        # the hindcast (lead 1, observed weather of the target day), beside persistence of Q(t-1)
        obs = rec.y[i0:i1].astype(np.float64)
        pred = scalers.inverse_y(hind[b].pred.astype(np.float64), rec.basin)
        pers = np.concatenate([[rec.y[i0 - 1]], rec.y[i0:i1 - 1]]).astype(np.float64)
        m = paired_metrics(obs, pred, pers)
        rows.append({"basin": rec.basin, "setting": "hindcast", "lead": 1, "n_days": int(m["n_days"]),
                     "nse": m["model"]["nse"], "kge": m["model"]["kge"], "persistence_nse": m["persistence"]["nse"],
                     "persistence_kge": m["persistence"]["kge"]})
    per = pd.DataFrame(rows)
    per["crpss_climatology"] = 1 - per["crps"] / per["crps_climatology"]
    per["crpss_persistence_spread"] = 1 - per["crps"] / per["crps_persistence_spread"]
    per.to_csv(out / "per_basin.csv", index=False, float_format="%.4f")

    g = per.groupby(["setting", "lead"], sort=False)
    summary = pd.DataFrame({
        "basins": g.size(),
        "nse_median": g["nse"].median(), "persistence_nse_median": g["persistence_nse"].median(),
        "basins_nse_above_persistence": g.apply(lambda x: int((x["nse"] > x["persistence_nse"]).sum())),
        "kge_median": g["kge"].median(), "persistence_kge_median": g["persistence_kge"].median(),
        "crpss_clim_median": g["crpss_climatology"].median(),
        "basins_crps_below_clim": g.apply(lambda x: int((x["crps"] < x["crps_climatology"]).sum())),
        "crpss_pers_median": g["crpss_persistence_spread"].median(),
        "basins_crps_below_pers": g.apply(lambda x: int((x["crps"] < x["crps_persistence_spread"]).sum())),
        "coverage50_mean": g["coverage50"].mean(), "coverage90_mean": g["coverage90"].mean(),
        "width90_mean_m3s": g["width90"].mean(),
    }).reset_index()
    summary.to_csv(out / "summary.csv", index=False, float_format="%.4f")

    # reliability: observed frequency of obs <= q_tau per lead (pooled over basins and days)
    for setting in runs:
        curves = {f"lead {k}": np.concatenate(rel[(setting, k)]).mean(axis=0) for k in range(1, F + 1)
                  if rel.get((setting, k)) and sum(len(a) for a in rel[(setting, k)])}
        plot_reliability(LEVELS, curves, out / f"reliability_{setting.replace('+', '_')}.png",
                         title=f"Quantile reliability, {setting}", xlabel="quantile level tau",
                         ylabel="observed frequency of obs <= q_tau")

    # time to forecast one basin at one issue date, the model loaded
    _say(f"timing one issue-date forecast ({1 + 2 * args.timing_reps} calls)", t0)
    b0 = records[0].basin
    issue_date = str(records[0].dates[test[0][0] + 30])
    series = camels_gb.read_timeseries(data_dir, b0, columns=required_columns(mcfg))
    from sca2lstm.evaluation.context import clear_caches

    clear_caches()
    s = time.perf_counter()
    issue_forecast(bundle, b0, data_dir=data_dir, issue_date=issue_date, leads=F)
    timing = {"first call, reading the basin's files (one call)": (time.perf_counter() - s) * 1000}
    for label, kw in (("later calls, files cached by the API", {}), ("series passed in memory", {"timeseries": series})):
        ts = []
        for _ in range(args.timing_reps):
            s = time.perf_counter()
            issue_forecast(bundle, b0, data_dir=data_dir, issue_date=issue_date, leads=F, **kw)
            ts.append(time.perf_counter() - s)
        timing[f"{label} (median of {args.timing_reps})"] = statistics.median(ts) * 1000

    pd.set_option("display.width", 200)
    pd.set_option("display.max_columns", 30)
    print(f"\nModel {ckpt} (training.forecast_leads {F}); {len(records)} basins; {args.period} period "
          f"{start}..{end}; pretraining {train_s:.0f} s, all forecasts {fc_s:.0f} s")
    print("Per lead and setting (medians over basins; persistence = last observed flow carried forward, same days;\n"
          "CRPS = 2 x mean pinball loss over the 5 quantiles; CRPSS = 1 - CRPS / CRPS of the baseline):")
    print(summary.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    for label, ms in timing.items():
        print(f"one basin, one issue date, {F} leads, {label}: {ms:.1f} ms")
    res = {"model": str(ckpt), "basins": [r.basin for r in records], "period": [args.period, start, end],
           "forecast_leads": F, "quick": args.quick, "pretrain_seconds": train_s, "forecast_seconds": fc_s,
           "timing_ms_median": timing, "summary": summary.to_dict(orient="records"),
           "crps_note": "2 x mean pinball loss over the quantiles 0.05, 0.25, 0.5, 0.75, 0.95"}
    (out / "results.json").write_text(json.dumps(res, indent=2, default=float), encoding="utf-8")
    print(f"Saved to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
