"""Benchmark of the forecast-distribution heads (``model.head``, ``model.quantiles``) and the peak
weighting of the loss (``training.peak_weight``), scored on the VALIDATION years for choosing.

Run from the repository root (CPU, one thread; a few minutes per variant on the 9 sample basins)::

    OMP_NUM_THREADS=1 nice -n 5 python bench/heads.py [--variants baseline dense cmal ...] [--epochs 12]
        [--data_dir ../shared/data/camels_gb] [--out bench_output/heads] [--period val]

Each variant is the default config with a few keys changed (:data:`VARIANTS`), pretrained on the basins
of ``--data_dir`` with ``training.epochs`` set to ``--epochs`` (early stopping on the validation loss as
usual) and the same seed. The head reads LSTM2's state and the point forecast detached, so variants that
change only the head share the same point forecast bit for bit: their differences are the head's alone.
A checkpoint already in ``--out/<variant>/sca2lstm.pth`` is reused (delete it to retrain).

Scored per lead 1..7 on issue-time forecasts with every validation day as an issue date, without weather
after the issue date (``none``) and with the observed weather as a perfect forecast (``perfect``):

* ``crps``: the CRPS of the predictive distribution the forecast's quantile columns define (the one
  :mod:`sca2lstm.evaluation.exceedance` uses for P(Q > level): linear between the quantiles, exponential
  tails through the outer two), as 2 x the mean pinball loss of its quantile function at 199 levels
  0.005..0.995, flows clipped at 0; in m3/s, mean over basins of the per-basin mean (so a 5-quantile and a
  13-quantile forecast are scored on the same footing);
* ``brier``: Brier score of "flow above the 2-year level" (the median of the training years' annual
  maxima of daily flow, water years from October), P(Q > level) from the same distribution; pooled days;
* ``pit_dev``: PIT reliability, the mean over u in (0, 1) of |share of days with PIT <= u - u| (0 is
  perfectly reliable), pooled days; ``pit_dev_flood`` the same on the days above the 2-year level (where
  even a perfect forecast has PIT skewed high: the days are chosen by their outcome), ``pit_mean_flood``
  their mean PIT and ``above_q95_flood`` the share of them above q95;
* ``cov90``, ``below_q05``: 90 % coverage and share below q05, pooled days;
* flood-day peaks: ``median_ratio_flood`` the median over flood days of forecast median / observed flow,
  ``recall_median``, ``recall_p`` the share of flood days whose median (or P(Q > level) >= 0.5) is above
  the level.

Beside them: the hindcast median NSE (lead-1 forecast, observed weather of the target day; median over
basins) at the best epoch, as training reports it, and for the hindcast the median ratio of the point
forecast to the observed flow on flood days (``hind_ratio_flood``: the point forecast's own peak bias).
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from sca2lstm.checkpoint import load_model
from sca2lstm.config import load_config
from sca2lstm.data import camels_gb
from sca2lstm.data.dataset import SequenceData, load_basin, load_static
from sca2lstm.evaluation.exceedance import exceedance_probability, pit
from sca2lstm.evaluation.forecast import forecast_periods
from sca2lstm.evaluation.levels import annual_maxima
from sca2lstm.evaluation.operational import issue_time_hindcasts
from sca2lstm.training.pretrain import pretrain

REPO = Path(__file__).resolve().parents[1]
DENSE = [0.02, 0.05, 0.1, 0.15, 0.25, 0.35, 0.5, 0.65, 0.75, 0.85, 0.9, 0.95, 0.98]
#: name -> config overrides on top of the defaults
VARIANTS = {
    "baseline": {},
    "dense": {"model": {"quantiles": DENSE}},
    "cmal": {"model": {"quantiles": DENSE, "head": "cmal", "cmal_components": 3}},
    "cmal_peak1": {"model": {"quantiles": DENSE, "head": "cmal", "cmal_components": 3},
                   "training": {"peak_weight": 1.0}},
    "dense_peak1": {"model": {"quantiles": DENSE}, "training": {"peak_weight": 1.0}},
    "cmal_k1": {"model": {"quantiles": DENSE, "head": "cmal", "cmal_components": 1}},
    "peak1": {"training": {"peak_weight": 1.0}},
    "peak3": {"training": {"peak_weight": 3.0}},
}
FINE = np.linspace(0.005, 0.995, 199)
U = np.linspace(0.01, 0.99, 99)


def quantile_function(q: np.ndarray, taus: np.ndarray, levels: np.ndarray = FINE) -> np.ndarray:
    """[n, len(levels)]: the quantile function of the distribution :func:`exceedance_probability` defines
    from quantiles ``q`` [n, Q] at ``taus``: linear interpolation inside, exponential tails outside, >= 0."""
    q = np.sort(q, axis=1)
    out = np.empty((len(q), len(levels)))
    inner = (levels >= taus[0]) & (levels <= taus[-1])
    j = np.clip(np.searchsorted(taus, levels[inner], side="right") - 1, 0, len(taus) - 2)
    w = (levels[inner] - taus[j]) / (taus[j + 1] - taus[j])
    out[:, inner] = q[:, j] * (1 - w) + q[:, j + 1] * w
    s_hi = (q[:, -1] - q[:, -2]) / np.log((1 - taus[-2]) / (1 - taus[-1]))
    s_lo = (q[:, 1] - q[:, 0]) / np.log(taus[1] / taus[0])
    up, lo = levels > taus[-1], levels < taus[0]
    out[:, up] = q[:, -1:] - s_hi[:, None] * np.log((1 - levels[up]) / (1 - taus[-1]))[None, :]
    out[:, lo] = q[:, :1] + s_lo[:, None] * np.log(levels[lo] / taus[0])[None, :]
    return np.maximum(out, 0.0)


def crps(obs: np.ndarray, q: np.ndarray, taus: np.ndarray) -> np.ndarray:
    """[n]: 2 x mean pinball loss of the quantile function at :data:`FINE` (a midpoint rule for the CRPS)."""
    qf = quantile_function(q, taus)
    d = obs[:, None] - qf
    return 2 * np.maximum(FINE * d, (FINE - 1) * d).mean(axis=1)


def pit_deviation(p: np.ndarray) -> float:
    p = p[np.isfinite(p)]
    if not len(p):
        return float("nan")
    return float(np.abs((p[:, None] <= U[None, :]).mean(axis=0) - U).mean())


def two_year_level(rec, train) -> float:
    i0, i1 = train
    am = annual_maxima(rec.dates[i0:i1], rec.y[i0:i1].astype(np.float64))
    return float(np.median(am.to_numpy()))


def score(ckpt: Path, data_dir: Path, period: str) -> tuple[pd.DataFrame, dict]:
    model, cfg, scalers, ck = load_model(ckpt)
    F, L = cfg.training.forecast_leads, cfg.training.seq_len
    basins = list(ck["basins"])
    records = [load_basin(data_dir, b, cfg) for b in basins]
    data = SequenceData(records, load_static(data_dir, basins, cfg), scalers, pad=L)
    d = cfg.data
    start, end = (d.val_start, d.val_end) if period == "val" else (d.test_start, d.test_end)
    scored = [r.period(start, end) for r in records]
    train = [r.period(d.train_start, d.train_end) for r in records]
    levels2 = [two_year_level(r, t) for r, t in zip(records, train)]
    issue = [(i0 - 1, i1 - 1) for i0, i1 in scored]
    rows = []
    for setting in ("none", "perfect"):
        res = issue_time_hindcasts(model, data, issue, F, setting, seq_len=L, lead_days=d.lead_days)
        for k in range(1, F + 1):
            pooled = {n: [] for n in ("obs", "q", "lvl", "crps", "basin")}
            for b, h in enumerate(res):
                i0, i1 = scored[b]
                valid = np.arange(h.i0, h.i1) + k
                sel = (valid >= i0) & (valid < i1) & np.isfinite(h.observed[:, k - 1])
                # the head's quantiles with the median in its place ([n, Q] at the model's levels)
                q = h.quantiles[sel, k - 1]
                obs = h.observed[sel, k - 1]
                pooled["obs"].append(obs)
                pooled["q"].append(q)
                pooled["lvl"].append(np.full(len(obs), levels2[b]))
                pooled["crps"].append(float(crps(obs, q, np.asarray(h.levels)).mean()))
            taus = np.asarray(res[0].levels)
            obs, q, lvl = (np.concatenate(pooled[n]) for n in ("obs", "q", "lvl"))
            p_exc = exceedance_probability(q, taus, lvl)
            event = obs > lvl
            u = pit(q, taus, obs)
            med = q[:, list(taus).index(0.5)]
            rows.append({
                "setting": setting, "lead": k, "n_days": len(obs), "n_flood_days": int(event.sum()),
                "crps": float(np.mean(pooled["crps"])),
                "brier": float(np.mean((p_exc - event) ** 2)),
                "pit_dev": pit_deviation(u), "pit_dev_flood": pit_deviation(u[event]),
                "pit_mean_flood": float(u[event].mean()) if event.any() else float("nan"),
                "above_q95_flood": float((obs[event] > q[event, list(taus).index(0.95)]).mean()) if event.any() else float("nan"),
                "cov90": float(((obs >= q[:, list(taus).index(0.05)]) & (obs <= q[:, list(taus).index(0.95)])).mean()),
                "below_q05": float((obs < q[:, list(taus).index(0.05)]).mean()),
                "median_ratio_flood": float(np.median(med[event] / obs[event])) if event.any() else float("nan"),
                "recall_median": float((med[event] > lvl[event]).mean()) if event.any() else float("nan"),
                "recall_p": float((p_exc[event] >= 0.5).mean()) if event.any() else float("nan"),
            })
    # hindcast: the point forecast's own peak bias on flood days
    hind = forecast_periods(model, data, scored, L, cfg.training.spinup)
    ratios = []
    for b, (rec, fc) in enumerate(zip(records, hind)):
        i0, i1 = scored[b]
        obs = rec.y[i0:i1].astype(np.float64)
        pred = scalers.inverse_y(fc.pred.astype(np.float64), rec.basin)
        ev = obs > levels2[b]
        ratios.append(pred[ev] / obs[ev])
    extra = {"hind_ratio_flood": float(np.nanmedian(np.concatenate(ratios))), "levels_2y": dict(zip(basins, levels2))}
    return pd.DataFrame(rows), extra


def peak_bias(ckpt: Path, data_dir: Path) -> pd.DataFrame:
    """The point forecast's peak bias in the hindcast (lead 1, observed weather of the day), in the
    training and in the validation years: per basin, the median over days above the 2-year level of
    forecast / observed, and the NSE. Equal ratios in both periods say the model does not fit its
    floods even on the days it trained on (the loss or the model, not generalisation)."""
    model, cfg, scalers, ck = load_model(ckpt)
    L, d = cfg.training.seq_len, cfg.data
    basins = list(ck["basins"])
    records = [load_basin(data_dir, b, cfg) for b in basins]
    data = SequenceData(records, load_static(data_dir, basins, cfg), scalers, pad=L)
    train = [r.period(d.train_start, d.train_end) for r in records]
    rows = []
    for name, (start, end) in (("train", (d.train_start, d.train_end)), ("val", (d.val_start, d.val_end))):
        periods = [r.period(start, end) for r in records]
        fcs = forecast_periods(model, data, periods, L, cfg.training.spinup)
        for rec, (i0, i1), tr, fc in zip(records, periods, train, fcs):
            obs = rec.y[i0:i1].astype(np.float64)
            pred = scalers.inverse_y(fc.pred.astype(np.float64), rec.basin)
            ev = (obs > two_year_level(rec, tr)) & np.isfinite(pred)
            ok = np.isfinite(obs) & np.isfinite(pred)
            nse = 1 - np.sum((pred[ok] - obs[ok]) ** 2) / np.sum((obs[ok] - obs[ok].mean()) ** 2)
            rows.append({"period": name, "basin": rec.basin, "flood_days": int(ev.sum()),
                         "point_over_obs_flood": float(np.median(pred[ev] / obs[ev])) if ev.any() else np.nan,
                         "nse": float(nse)})
    return pd.DataFrame(rows)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data_dir", default=str(REPO.parent / "shared" / "data" / "camels_gb"))
    ap.add_argument("--out", default="bench_output/heads")
    ap.add_argument("--variants", nargs="+", default=["baseline", "dense", "cmal"], choices=list(VARIANTS))
    ap.add_argument("--epochs", type=int, default=40)
    ap.add_argument("--period", choices=["val", "test"], default="val")
    ap.add_argument("--summary", action="store_true", help="only print the summary of the variants already scored")
    ap.add_argument("--peaks", action="store_true",
                    help="only the point forecast's peak bias, training against validation years, of --variants")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    torch.set_num_threads(1)
    data_dir, out = Path(args.data_dir), Path(args.out)
    if args.summary:
        summary(out, args.period)
        return 0
    if args.peaks:
        for name in args.variants:
            t = peak_bias(out / name / "sca2lstm.pth", data_dir)
            t.to_csv(out / name / "peak_bias.csv", index=False, float_format="%.4f")
            g = t.groupby("period").agg(flood_days=("flood_days", "sum"),
                                        point_over_obs_flood_median=("point_over_obs_flood", "median"),
                                        nse_median=("nse", "median"))
            print(f"\n== {name}: hindcast point forecast on days above the 2-year level (medians over basins)\n"
                  f"{t.to_string(index=False, float_format=lambda v: f'{v:.3f}')}\n{g.to_string(float_format=lambda v: f'{v:.3f}')}")
        return 0
    basins = camels_gb.list_basins(data_dir)
    for name in args.variants:
        vdir = out / name
        ckpt = vdir / "sca2lstm.pth"
        t0 = time.time()
        if not ckpt.is_file():
            over = {k: dict(v) for k, v in VARIANTS[name].items()}
            over.setdefault("data", {})["data_dir"] = str(data_dir)
            over.setdefault("training", {})["epochs"] = args.epochs
            cfg = load_config(overrides=over)
            res = pretrain(cfg, ckpt, data_dir=data_dir, basins=basins, progress=False)
            best = min((h for h in res["history"] if h["epoch"] > 0), key=lambda h: h["val_loss"])
            (vdir / "train.json").write_text(json.dumps({"best_epoch": best["epoch"], "epochs_run": len(res["history"]) - 1,
                                                          "val_nse_median": res["val"].median("model", "nse"),
                                                          "seconds": time.time() - t0}, default=float))
        train_s = time.time() - t0
        t1 = time.time()
        table, extra = score(ckpt, data_dir, args.period)
        info = json.loads((vdir / "train.json").read_text()) if (vdir / "train.json").is_file() else {}
        extra.update(val_nse_median=info.get("val_nse_median", float("nan")), best_epoch=info.get("best_epoch"),
                     epochs_run=info.get("epochs_run"))
        table.insert(0, "variant", name)
        table.to_csv(vdir / f"scores_{args.period}.csv", index=False, float_format="%.4f")
        (vdir / f"extra_{args.period}.json").write_text(json.dumps(extra, indent=1, default=float))
        pd.set_option("display.width", 220)
        pd.set_option("display.max_columns", 30)
        print(f"\n== {name} ({args.period}; training {train_s:.0f} s, scoring {time.time() - t1:.0f} s; best epoch "
              f"{extra['best_epoch']}; hindcast median NSE {extra['val_nse_median']:.3f}; hindcast point/obs on "
              f"flood days {extra['hind_ratio_flood']:.3f})")
        print(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    summary(out, args.period)
    return 0


def summary(out: Path, period: str) -> pd.DataFrame:
    """Every variant scored in ``out``: means over leads 1..7 per setting, and per lead the CRPS and Brier
    score relative to the baseline (printed, and written to ``out/summary_<period>.csv``)."""
    tables, extras = [], {}
    for f in sorted(out.glob(f"*/scores_{period}.csv")):
        tables.append(pd.read_csv(f, dtype={"variant": str}))
        extras[f.parent.name] = json.loads((f.parent / f"extra_{period}.json").read_text())
    if not tables:
        return pd.DataFrame()
    t = pd.concat(tables)
    cols = ["crps", "brier", "pit_dev", "pit_dev_flood", "above_q95_flood", "cov90", "below_q05",
            "median_ratio_flood", "recall_median"]
    s = t.groupby(["variant", "setting"])[cols].mean().reset_index()
    s["val_nse_median"] = s["variant"].map(lambda v: extras[v].get("val_nse_median"))
    s["hind_ratio_flood"] = s["variant"].map(lambda v: extras[v].get("hind_ratio_flood"))
    both = t.groupby("variant")[["crps", "brier", "pit_dev"]].mean()
    if "baseline" in both.index:
        both["crps_vs_baseline"] = both["crps"] / both.loc["baseline", "crps"] - 1
        both["brier_vs_baseline"] = both["brier"] / both.loc["baseline", "brier"] - 1
    both["val_nse_median"] = [extras[v].get("val_nse_median") for v in both.index]
    per_lead = t.pivot_table(index=["setting", "lead"], columns="variant", values="crps")
    s.to_csv(out / f"summary_{period}.csv", index=False, float_format="%.4f")
    fmt = {"float_format": lambda v: f"{v:.3f}"}
    print(f"\nMeans over leads 1..7 ({period}):\n{s.to_string(index=False, **fmt)}")
    print(f"\nBoth settings, all leads:\n{both.to_string(**fmt)}")
    print(f"\nCRPS per lead (m3/s, mean over basins):\n{per_lead.to_string(**fmt)}")
    return s


if __name__ == "__main__":
    raise SystemExit(main())
