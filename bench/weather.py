"""Benchmark: how much a weather forecast is worth, and how much weather skill the flow forecast needs.

Run from the repository root (CPU, one thread is enough)::

    PYTHONPATH=. python bench/weather.py --model M.pth --data_dir ../shared/data/camels_gb_large \
        --basins holdout.json [--period test] [--stride 3] [--out bench_output/weather]
    PYTHONPATH=. python bench/weather.py --quick        # smoke test: tiny model, numbers mean nothing

Every ``--stride``-th day of each basin's period is an issue date; each lead 1..7 is scored on the valid
days inside the period. Settings (all issue-time: nothing after the issue date is known except the
weather forecast of the lead days):

* ``no-weather``: no weather after the issue date;
* ``emulated``: an **emulated** deterministic forecast (observed weather degraded by the NWP-like error
  model of sca2lstm/weather/emulator.py, precipitation correlation 0.88 / 0.71 / 0.51 at leads 1 / 3 / 7);
* ``emulated-ens20``: an **emulated** 20-member ensemble of the same skill per member, run through the
  model in one batch, the flow quantiles from the mixture over members (sca2lstm/weather/mixture.py);
  ``crps_control_member`` is the CRPS of its first member alone on the same days (its deterministic
  control); ``--ensemble_stride`` thins its issue dates (it costs ``--members`` times a forecast);
* ``perfect``: the observed weather of the lead days (an upper bound);
* ``emulated-smoothed``: an **emulated** forecast from another kind of error model (:class:`SmoothedForecast`:
  smoothing, a low bias of heavy rain, drizzle, a warm bias), to see how the calibration fitted on the
  emulator's kind holds for forecasts that err otherwise; ``precip_corr`` is the skill it reached;
* the error curve: ``emulated`` at error levels 0 (perfect), 0.5, 1 (NWP-like), 1.5 and 2 (the
  precipitation correlation at lead k is 1 - level (1 - rho_k)).

Forecasts are scored as issued: the model's quantiles with the blend and spread calibration stored beside
the model for the setting (``sca2lstm calibrate``; fitted on validation days of the pretraining basins,
the ``forecast`` and ``ensemble`` spreads on emulated forecasts) and the recession bound. CRPS is scored
on the raw members (an ensemble's mixture).

Measures per setting and lead: NSE of the median (median over basins, with the 90 % interval of that
median when the basins are resampled: ``nse_median_lo90`` .. ``nse_median_hi90``) beside persistence (the last
observed flow carried forward) on the same days; CRPS (mean over basins, m3/s, of the quantile-form
integral over the flow distribution, sca2lstm/weather/mixture.crps; the same rule for every setting);
coverage of the 90 % interval (mean over basins); and the F1 of the 2-year event (observed flow above
the median of the training years' annual maxima; forecast: the median above it), pooled over basins.
Every figure with ``emulated`` in its setting uses emulated forecasts, not real ones. Nothing is
asserted: the script prints and saves what it measured.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

import numpy as np
import pandas as pd

from sca2lstm.checkpoint import load_model
from sca2lstm.config import load_config
from sca2lstm.data import camels_gb
from sca2lstm.data.dataset import SequenceData, load_basin, load_static
from sca2lstm.evaluation.context import BasinContext
from sca2lstm.evaluation.metrics import median_interval, paired_metrics
from sca2lstm.evaluation.calibration import adjust, read_calibration
from sca2lstm.evaluation.operational import issue_time_hindcasts
from sca2lstm.evaluation.recession import fit_recession
from sca2lstm.evaluation.reforecast import last_observation
from sca2lstm.evaluation.spread import SpreadCalibration
from sca2lstm.evaluation.verify import pooled_f1
from sca2lstm.weather.mixture import crps
from sca2lstm.weather.windows import EmulatedForecast, LeadWeather

REPO = Path(__file__).resolve().parents[1]
CURVE_LEVELS = (0.0, 0.5, 1.0, 1.5, 2.0)


def two_year_flow(y: np.ndarray, dates: np.ndarray, train: tuple[int, int]) -> float:
    """The 2-year flood: the median of the annual maxima (water years from October) of the training years
    with at least 300 observed days; NaN if there are none."""
    i0, i1 = train
    s = pd.Series(y[i0:i1], index=pd.DatetimeIndex(dates[i0:i1]))
    wy = s.index.year + (s.index.month >= 10)
    g = s.groupby(wy)
    am = g.max()[g.count() >= 300]
    return float(am.median()) if len(am) else float("nan")


def event_counts(obs, fc, thr) -> tuple[int, int, int]:
    """(hits, false alarms, misses) of ``fc > thr`` against ``obs > thr`` on days where both are known."""
    ok = np.isfinite(obs) & np.isfinite(fc)
    o, f = obs[ok] > thr, fc[ok] > thr
    return int((o & f).sum()), int((~o & f).sum()), int((o & ~f).sum())


def _coverage(obs, lo, hi):
    ok = np.isfinite(obs) & np.isfinite(lo) & np.isfinite(hi)
    return float(((obs[ok] >= lo[ok]) & (obs[ok] <= hi[ok])).mean()) if ok.any() else float("nan")


def score(res, records, periods, thresholds, setting, leads, control=None) -> list[dict]:
    """Per basin and lead: NSE, persistence NSE, CRPS, 90 % coverage and the event counts; with ``control``
    (an ensemble's first member issued alone, on the same days) its CRPS too."""
    rows = []
    for b, h in enumerate(res):
        i0, i1 = periods[b]
        lv = list(h.levels)
        for k in range(1, leads + 1):
            valid = h.issue_days + k
            sel = (valid >= i0) & (valid < i1)
            obs, med, pers = h.observed[sel, k - 1], h.median[sel, k - 1], h.last_obs[sel]
            m = paired_metrics(obs, med, pers)
            if h.member_quantiles is not None:
                mq = h.member_quantiles[sel, k - 1]
            elif h.quantiles is not None:
                mq = h.quantiles[sel, k - 1][:, None, :]
            else:
                mq = None
            ok = np.isfinite(obs)
            c = float(np.nanmean(crps(mq[ok], lv, obs[ok]))) if mq is not None and ok.any() else float("nan")
            # an ensemble's control: its first member issued alone, as a deterministic forecast is (the same
            # draws, the same days; flagged as a forecast where the model has the flag, the members are not)
            c_ctrl = float("nan")
            if control is not None and control[b].quantiles is not None and ok.any():
                cq = control[b].quantiles[sel, k - 1][:, None, :]
                c_ctrl = float(np.nanmean(crps(cq[ok], lv, obs[ok])))
            q = h.quantiles[sel, k - 1] if h.quantiles is not None else None
            cov = _coverage(obs, q[:, lv.index(0.05)], q[:, lv.index(0.95)]) if q is not None else float("nan")
            hit, fa, miss = event_counts(obs, med, thresholds[b])
            rows.append({"basin": records[b].basin, "setting": setting, "lead": k, "n_days": int(m["n_days"]),
                         "nse": m["model"]["nse"], "persistence_nse": m["persistence"]["nse"], "crps": c,
                         "crps_control_member": c_ctrl,
                         "coverage90": cov, "hits": hit, "false_alarms": fa, "misses": miss})
    return rows


def summarise(per: pd.DataFrame) -> pd.DataFrame:
    g = per.groupby(["setting", "lead"], sort=False)
    s = pd.DataFrame({"basins": g.size(), "nse_median": g["nse"].median(),
                      "persistence_nse_median": g["persistence_nse"].median(), "crps_mean": g["crps"].mean(),
                      "crps_control_member_mean": g["crps_control_member"].mean(),
                      "coverage90_mean": g["coverage90"].mean(), "hits": g["hits"].sum(),
                      "false_alarms": g["false_alarms"].sum(), "misses": g["misses"].sum()}).reset_index()
    s["event_f1"] = pooled_f1(*(s[c].to_numpy(np.float64)[:, None] for c in ("hits", "misses", "false_alarms")))
    return s.merge(nse_interval(per, ["setting", "lead"]), on=["setting", "lead"], how="left")


def nse_interval(per: pd.DataFrame, keys: list) -> pd.DataFrame:
    """Per group of ``keys``: the 90 % basin-bootstrap interval of the median NSE over basins
    (:func:`sca2lstm.evaluation.metrics.median_interval`), as ``nse_median_lo90`` and ``nse_median_hi90``."""
    rows = [(*(k if isinstance(k, tuple) else (k,)), *median_interval(g["nse"]))
            for k, g in per.groupby(keys, sort=False)]
    return pd.DataFrame(rows, columns=[*keys, "nse_median_lo90", "nse_median_hi90"])


class SmoothedForecast:
    """An **emulated** forecast from another kind of error model than sca2lstm/weather/emulator.py's, to see
    how the model and its calibration (fitted on the emulator's kind) do with forecasts that err otherwise.

    NWP-like smoothing and biases instead of timing shifts and random replacement: lead day k's rain is a
    centred 3-day smoothing of the observed with weight ``min(0.16 k, 0.64)`` on the neighbours, times a
    log-normal factor of standard deviation ``0.17 k`` and mean 0.9 (heavy rain underestimated), plus 0.4 mm
    on a third of the dry days (drizzle); temperature gets ``N(0.3, (0.25 k)^2)`` degC (a warm bias), and PET
    follows it as Oudin PET does. ``corr`` collects the precipitation correlation per lead it reached.
    """

    members = None

    def __init__(self, lead_weather: LeadWeather, leads: int, seed: int = 0):
        self.lw, self.leads, self.seed = lead_weather, int(leads), seed
        self.corr = {k: [] for k in range(1, self.leads + 1)}

    def __call__(self, x, miss, b, t, pos):
        from sca2lstm.weather.emulator import follow_pet

        F, k = self.leads, np.arange(1, self.leads + 1)
        rng = np.random.default_rng([self.seed, 7, int(b), int(np.asarray(t).ravel()[0]) if np.size(t) else 0])
        obs = self.lw.observed(x, miss)
        rows = np.arange(x.shape[0])[:, None]
        day = np.asarray(pos)[..., None] + k[None, :]
        p = obs["precipitation"]
        pc = p[rows, day]
        w = np.minimum(0.16 * k, 0.64)[None, :]
        near = np.nan_to_num(p[rows, day - 1]) + np.nan_to_num(p[rows, np.minimum(day + 1, p.shape[1] - 1)])
        sd = 0.17 * k
        pf = ((1 - w) * pc + w / 2 * near) * np.exp(rng.normal(np.log(0.9) - sd ** 2 / 2, sd, size=pc.shape))
        pf = np.where((pf < 0.1) & (rng.random(pc.shape) < 1 / 3), 0.4, pf)
        for j in range(F):
            ok = np.isfinite(pc[:, j]) & np.isfinite(pf[:, j])
            if ok.sum() > 2 and np.std(pc[ok, j]) > 0 and np.std(pf[ok, j]) > 0:
                self.corr[j + 1].append(float(np.corrcoef(pc[ok, j], pf[ok, j])[0, 1]))
        fc = {"precipitation": pf}
        if "temperature" in obs:
            t_obs = obs["temperature"][rows, day]
            fc["temperature"] = t_obs + rng.normal(0.3, 0.25 * k, size=pc.shape)
            for pet in ("pet", "peti"):
                if pet in obs:
                    fc[pet] = follow_pet(obs[pet][rows, day], t_obs, fc["temperature"])
        return [self.lw.put(x, miss, pos, fc)]


class FirstMember:
    """An ensemble's first member alone, as one deterministic forecast (its control)."""

    members = None

    def __init__(self, ensemble):
        self.ensemble = ensemble

    def __call__(self, x, miss, b, t, pos):
        return self.ensemble(x, miss, b, t, pos)[:1]


def calibration_setting(name: str) -> str:
    """The calibration's weather setting of a benchmark setting."""
    if name == "no-weather":
        return "none"
    if name == "perfect":
        return "perfect"
    return "ensemble" if name.startswith("emulated-ens") else "forecast"


def issued(h, calib: dict, mode: str, scale: float, recession, y) -> None:
    """Turn one basin's raw hindcasts ``h`` into issued forecasts in place, as the forecasts do: the stored
    blend of the setting (pooled over the calibration basins), its spread, the recession bound. The raw
    member quantiles stay (CRPS over members is scored on them)."""
    if not calib or h.quantiles is None:
        return
    sp = (calib.get("spread") or {}).get(mode)
    alpha = (calib.get("weather_blend") or {}).get(mode)
    gap = last_observation(y, h.issue_days)[1]
    bound = recession.bound(h.last_obs, h.median.shape[1], gap) if recession is not None else None
    h.median, h.quantiles = adjust(h.median, h.quantiles, h.last_obs, alpha, bound,
                                   SpreadCalibration.from_dict(sp) if sp else None, list(h.levels), scale)


def add_basin_args(ap, model_help: str = "checkpoint, with its calibration beside it") -> None:
    """The arguments every large-sample scoring script takes: --model, --data_dir, --basins, --max_basins."""
    ap.add_argument("--model", required=True, help=model_help)
    ap.add_argument("--data_dir", required=True)
    ap.add_argument("--basins", nargs="+", required=True,
                    help="ids, or a file (JSON list, {'holdout': [...]}, or one id a line)")
    ap.add_argument("--max_basins", type=int, default=None)


def resolve_basins(arg, data_dir, ck) -> list[str]:
    """The basins of ``--basins`` (ids, or a file: JSON list, {'holdout': [...]}, or one id a line) that
    ``data_dir`` holds; without it, the checkpoint's (``ck``), else every basin there."""
    avail = camels_gb.list_basins(data_dir)
    if arg is None:
        return [b for b in ck.get("basins", []) if b in avail] or avail
    if len(arg) == 1 and Path(arg[0]).is_file():
        text = Path(arg[0]).read_text(encoding="utf-8")
        try:
            doc = json.loads(text)
            ids = (doc.get("held_out") or doc.get("holdout") or doc.get("basins")) if isinstance(doc, dict) else doc
        except ValueError:
            ids = text.split()
        return [str(b) for b in ids if str(b) in avail]
    return [b for b in arg if b in avail]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default=None, help="checkpoint (required unless --quick)")
    ap.add_argument("--data_dir", default=str(REPO.parent / "shared" / "data" / "camels_gb"))
    ap.add_argument("--basins", nargs="+", default=None,
                    help="ids, or a file (JSON list, {'holdout': [...]}, or one id a line); default: the model's")
    ap.add_argument("--period", choices=["test", "val"], default="test")
    ap.add_argument("--stride", type=int, default=3, help="every n-th day is an issue date (default 3)")
    ap.add_argument("--members", type=int, default=20)
    ap.add_argument("--ensemble_stride", type=int, default=None,
                    help="issue-date stride of the ensemble setting (default: --stride; it costs --members times more)")
    ap.add_argument("--max_basins", type=int, default=None)
    ap.add_argument("--settings", nargs="+",
                    default=["no-weather", "perfect", "emulated", "ensemble", "curve", "smoothed"],
                    choices=["no-weather", "perfect", "emulated", "ensemble", "curve", "smoothed"],
                    help="which settings to run (default: all; the ensemble costs --members times a forecast)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="bench_output/weather")
    ap.add_argument("--quick", action="store_true", help="smoke test: a tiny model trained for 1 epoch")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    data_dir = Path(args.data_dir)
    if args.quick and not args.model:
        from sca2lstm.training.pretrain import pretrain

        basins = camels_gb.list_basins(data_dir)[:2]
        cfg = load_config(overrides={"data": {"data_dir": str(data_dir), "basins": basins,
                                              "test_start": "2005-10-01", "test_end": "2006-03-31"},
                                     "model": {"hidden_size": 8, "attention_hidden_size": 4, "embedding_size": 4},
                                     "training": {"epochs": 1, "epoch_coverage": 0.05, "seq_len": 120,
                                                  "spinup": 30}})
        args.model = str(out / "quick.pth")
        pretrain(cfg, args.model, data_dir=data_dir, basins=basins, progress=False)
        args.members, args.stride = min(args.members, 4), max(args.stride, 10)
    if not args.model:
        raise SystemExit("--model is required (or --quick)")
    model, mcfg, scalers, ck = bundle = load_model(Path(args.model))
    F = mcfg.training.forecast_leads
    if F <= 0:
        raise SystemExit(f"{args.model} is hindcast-only (training.forecast_leads 0)")
    L, lead_days = mcfg.training.seq_len, mcfg.data.lead_days
    basins = resolve_basins(args.basins, data_dir, ck)[:args.max_basins]
    records = [load_basin(data_dir, b, mcfg) for b in basins]
    for r in records:
        if r.basin not in scalers.basins:  # a held-out basin: its discharge scale by the rule every command uses
            scalers.basins[r.basin] = BasinContext.resolve(bundle, data_dir, r.basin).scalers.basins[r.basin]
    data = SequenceData(records, load_static(data_dir, basins, mcfg, allow_absent=True), scalers, pad=L)
    d = mcfg.data
    start, end = (d.test_start, d.test_end) if args.period == "test" else (d.val_start, d.val_end)
    periods = [r.period(start, end) for r in records]
    train = [r.period(d.train_start, d.train_end) for r in records]
    thresholds = [two_year_flow(r.y.astype(np.float64), r.dates, t) for r, t in zip(records, train)]
    lw = LeadWeather.from_model(scalers, mcfg)
    issue = [(i0 - 1, i1 - 1) for i0, i1 in periods]
    settings = {}
    if "no-weather" in args.settings:
        settings["no-weather"] = ("none", None)
    if "perfect" in args.settings or "curve" in args.settings:
        settings["perfect"] = ("perfect", None)
    if "emulated" in args.settings or "curve" in args.settings:
        settings["emulated"] = ("perfect", EmulatedForecast(lw, F, None, 1.0, args.seed))
    if "ensemble" in args.settings:
        settings[f"emulated-ens{args.members}"] = ("perfect", EmulatedForecast(lw, F, args.members, 1.0, args.seed))
    if "smoothed" in args.settings:
        settings["emulated-smoothed"] = ("perfect", SmoothedForecast(lw, F, args.seed))
    if "curve" in args.settings:
        for lev in CURVE_LEVELS:
            if lev not in (0.0, 1.0):
                settings[f"emulated-level{lev:g}"] = ("perfect", EmulatedForecast(lw, F, None, lev, args.seed))
    calib = read_calibration(args.model)
    if not calib.get("spread"):
        logging.info("no spread calibration beside the model: run 'sca2lstm calibrate --model %s' first; scoring "
                     "the raw model", args.model)
    bounds = [fit_recession(r.y[t0:t1].astype(np.float64)) for r, (t0, t1) in zip(records, train)]
    rows, seconds = [], {}
    for name, (weather, fn) in settings.items():
        t0 = time.time()
        res = issue_time_hindcasts(model, data, issue, F, weather, seq_len=L, lead_days=lead_days,
                                   lead_weather=fn, batch_size=64 if fn is not None and fn.members else 256,
                                   stride=(args.ensemble_stride or args.stride) if fn is not None and fn.members
                                   else args.stride)
        mode = calibration_setting(name)
        for b, h in enumerate(res):
            issued(h, calib, mode, scalers.basins[records[b].basin].q_mean, bounds[b], records[b].y)
        control = None
        if fn is not None and fn.members:
            control = issue_time_hindcasts(model, data, issue, F, weather, seq_len=L, lead_days=lead_days,
                                           lead_weather=FirstMember(fn), batch_size=64,  # the same draws
                                           stride=args.ensemble_stride or args.stride)
            for b, h in enumerate(control):
                issued(h, calib, "forecast", scalers.basins[records[b].basin].q_mean, bounds[b], records[b].y)
        rows += score(res, records, periods, thresholds, name, F, control)
        seconds[name] = time.time() - t0
        logging.info("%s: %.0f s", name, seconds[name])
    per = pd.DataFrame(rows)
    per.to_csv(out / "per_basin.csv", index=False, float_format="%.4f")
    summary = summarise(per)
    for name, (_, fn) in settings.items():
        if isinstance(fn, SmoothedForecast):  # the skill the other error model reached, per lead
            rho = {k: float(np.mean(v)) if v else float("nan") for k, v in fn.corr.items()}
            summary.loc[summary["setting"] == name, "precip_corr"] = summary.loc[summary["setting"] == name,
                                                                                 "lead"].map(rho)
    summary.to_csv(out / "summary.csv", index=False, float_format="%.4f")
    curve = summary[summary["lead"] == 3].copy()
    level_of = {"perfect": 0.0, "emulated": 1.0, **{f"emulated-level{v:g}": v for v in CURVE_LEVELS}}
    curve = curve[curve["setting"].isin(level_of)].assign(level=lambda c: c["setting"].map(level_of))
    curve = curve.sort_values("level")[["level", "setting", "nse_median", "event_f1", "crps_mean", "coverage90_mean"]]
    if len(curve):  # the settings of the curve were run
        curve.to_csv(out / "error_curve_lead3.csv", index=False, float_format="%.4f")
        _plot_curve(curve, out / "error_curve_lead3.png")
    pd.set_option("display.width", 200)
    pd.set_option("display.max_columns", 30)
    print(f"\nModel {args.model}; {len(records)} basins; {args.period} period {start}..{end}; every "
          f"{args.stride}th day an issue date. Settings named 'emulated' use EMULATED weather forecasts.")
    print(summary.drop(columns=["hits", "false_alarms", "misses"]).to_string(index=False,
                                                                             float_format=lambda v: f"{v:.3f}"))
    if len(curve):
        print("\nLead 3 against the forecast error level (0 perfect, 1 NWP-like):")
        print(curve.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    res = {"model": str(args.model), "basins": basins, "period": [args.period, start, end], "stride": args.stride,
           "members": args.members, "quick": args.quick, "seconds": seconds,
           "summary": summary.to_dict(orient="records"), "curve": curve.to_dict(orient="records")}
    (out / "results.json").write_text(json.dumps(res, indent=2, default=float), encoding="utf-8")
    print(f"Saved to {out}")
    return 0


def _plot_curve(curve: pd.DataFrame, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 3.5))
    ax.plot(curve["level"], curve["nse_median"], "o-", label="lead-3 NSE (median over basins)")
    ax.plot(curve["level"], curve["event_f1"], "s--", label="lead-3 2-year-event F1")
    ax.set_xlabel("weather forecast error level (0 perfect, 1 NWP-like; emulated)")
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    raise SystemExit(main())
