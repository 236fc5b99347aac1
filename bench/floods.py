"""Flood-warning benchmark: event skill per lead on the large sample's held-out basins, test years.

Run from the repository root (hours on a loaded 2-core machine for all 60 held-out basins; results are
saved basin by basin, and ``--summarise_only`` rebuilds the tables from what is done)::

    PYTHONPATH=. nice python bench/floods.py --model /path/to/large/sca2lstm.pth \
        [--data_dir ../shared/data/camels_gb_large] [--holdout holdout.json] [--max_basins N] \
        [--out bench_output/floods] [--threads 1]
    PYTHONPATH=. python bench/floods.py --quick --out /tmp/floods_quick    # smoke test on tiny synthetic data

Held-out basins: ``holdout.json`` beside the model's folder (bench/large_sample.py: seed 0, 10 %), else
the same seeded split. Periods are the model's: choices on validation (2000-10..2005-09), scores on test
(2005-10..2015-09). Every test day is an issue date; every lead 1..7 is scored on valid days inside the
test years.

Information settings (always labelled): ``no weather`` (issue-time: weather up to the issue date only)
and ``perfect weather`` (the observed weather of the lead days as a perfect forecast: an upper bound).

Forecasters, on the same days:

* ``issued`` - this version: the model's quantiles, blended with persistence per lead (weights fitted on
  the basin's validation years), their spread rescaled per lead by the calibration stored beside the model
  (fitted on validation years of pretraining basins, :mod:`sca2lstm.evaluation.spread`; without weather, for a
  basin the model never saw, rescaled again to its training years, :func:`station_spread`), raised to the
  recession bound; a warning when P(Q > level)
  (:mod:`sca2lstm.evaluation.exceedance`) reaches the level's warning probability, chosen on the
  validation years pooled over the held-out basins (maximum F1 by day), per lead;
* ``today`` - the same model as it issues today: raw quantiles, a warning when the median is above the level;
* ``persistence`` - the last observed flow up to the issue date; a warning when it is above the level.

Levels: the **2-year flood is the median of the training years' annual maxima** of daily mean flow
(water years from October; the issue's event definition), the 5-year flood the GLO fit
(:mod:`sca2lstm.evaluation.levels`). An event is a run of days above the level.

Measures per setting, lead and forecaster: F1, POD and FAR for both levels, by day and by event (+-1 day;
:mod:`sca2lstm.evaluation.verify`), counts pooled over basins (the 2-year F1 by day with its 90 % basin-bootstrap
interval, and that of its margin over persistence: ``q2y_f1_day_lo90`` .. ``_hi90``,
``q2y_f1_day_margin_lo90`` .. ``_hi90``); Brier skill of P(Q > level) against each
basin's training-years base rate (pooled); NSE of the median (median over basins); 90 % coverage overall
and on days above the 2-year level, the share below q05, the PIT histogram (pooled); peak timing (days)
and relative peak magnitude errors of the lead-k forecast within +-3 days of each observed 2-year event
peak (medians over events). Nothing is asserted; the script prints and saves what it measured.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from sca2lstm.checkpoint import load_model  # noqa: E402
from sca2lstm.errors import DataError  # noqa: E402
from sca2lstm.evaluation.calibration import adjust, fit_lead_blend, read_calibration, station_spread  # noqa: E402
from sca2lstm.evaluation.spread import SpreadCalibration  # noqa: E402
from sca2lstm.evaluation.context import BasinContext  # noqa: E402
from sca2lstm.evaluation.exceedance import (choose_warn_probability, exceedance_probability,  # noqa: E402
                                             nest_warnings, pit)
from sca2lstm.evaluation.levels import annual_maxima, record_levels  # noqa: E402
from sca2lstm.evaluation.metrics import bootstrap_interval, paired_metrics  # noqa: E402
from sca2lstm.evaluation.operational import issue_time_hindcasts  # noqa: E402
from sca2lstm.evaluation.recession import fit_recession  # noqa: E402
from sca2lstm.evaluation.reforecast import last_observation  # noqa: E402
from sca2lstm.evaluation.verify import _runs, _scores, event_counts, pooled_f1  # noqa: E402

SETTINGS = {"no weather": "none", "perfect weather": "perfect"}
FORECASTERS = ("issued", "today", "persistence")
LEVELS = ("q2y", "q5y")
PEAK_WINDOW = 3


def basin_levels(dates, q, train) -> dict:
    """{'q2y': median of the training annual maxima, 'q5y': GLO 5-year flow} (NaN where not fitted)."""
    i0, i1 = train
    am = annual_maxima(dates[i0:i1], q[i0:i1])
    fit = record_levels(dates[i0:i1], q[i0:i1], dates[i0], dates[i1 - 1], n_boot=0)
    return {"q2y": float(am.median()) if len(am) else np.nan,
            "q5y": fit["q5y"].value if "q5y" in fit else np.nan}


def runs_for(ctx, period, weather):
    cfg = ctx.cfg
    return issue_time_hindcasts(ctx.model, ctx.sequence_data(), [period], cfg.training.forecast_leads, weather,
                                seq_len=cfg.training.seq_len, lead_days=cfg.data.lead_days, batch_size=256)[0]


def process_basin(bundle, data_dir, basin, leads, spread=None):
    """Validation and test arrays of one basin for both settings (or None if it cannot be scored).
    ``spread``: the model's stored spread calibration per weather setting (None: the head's own spread)."""
    ctx = BasinContext.resolve(bundle, data_dir, basin, allow_missing_inputs=True)
    scale = float(ctx.scalers.basins[basin].q_mean)
    cfg, rec = ctx.cfg, ctx.record
    y = rec.y.astype(np.float64)
    train = rec.period(cfg.data.train_start, cfg.data.train_end)
    val = rec.period(cfg.data.val_start, cfg.data.val_end)
    test = rec.period(cfg.data.test_start, cfg.data.test_end)
    if test[1] - test[0] < 30 or val[1] - val[0] < 30 or not np.isfinite(y[train[0]:train[1]]).any():
        return None
    lv = basin_levels(rec.dates, y, train)
    rb = fit_recession(y[train[0]:train[1]])
    base = {n: float(np.nanmean(y[train[0]:train[1]] > v)) if np.isfinite(v) else np.nan for n, v in lv.items()}
    out = {"basin": basin, "levels": lv, "base_rate": base, "settings": {}}
    for name, w in SETTINGS.items():
        per = {}
        for part, (i0, i1) in (("val", val), ("test", (test[0] - 1, test[1] - 1))):
            r = runs_for(ctx, (i0, i1), w)
            issue = np.arange(i0, i1)
            bound = rb.bound(r.last_obs, r.median.shape[1], last_observation(y, issue)[1]) if rb is not None else None
            per[part] = {"r": r, "bound": bound, "issue": issue}
        rv = per["val"]["r"]
        alpha = fit_lead_blend(rv.median, rv.observed, rv.last_obs)
        res = {"alpha": alpha.tolist(), "levels_tau": list(rv.levels)}
        sp = (spread or {}).get(w)
        if w == "none":  # a station the model never saw: rescaled to its training years, as forecasts issue it
            sp, res["spread_source"] = station_spread(ctx, sp, alpha)
        for part in ("val", "test"):
            r, bound = per[part]["r"], per[part]["bound"]
            med, qs = adjust(r.median, r.quantiles, r.last_obs, alpha, bound, sp, r.levels, scale)
            raw_med, raw_q = adjust(r.median, r.quantiles, r.last_obs)  # clamped at 0, sorted only
            valid = per[part]["issue"][:, None] + np.arange(1, leads + 1)[None, :]
            lo, hi = (val if part == "val" else test)
            inside = (valid >= lo) & (valid < hi)
            res[part] = {"med": med[:, :leads], "q": qs[:, :leads], "raw_med": raw_med[:, :leads],
                         "raw_q": raw_q[:, :leads], "obs": np.where(inside, r.observed[:, :leads], np.nan),
                         "pers": r.last_obs}
        out["settings"][name] = res
    return out


def _peaks(obs_series, fc_series, event):
    """(timing error days, relative magnitude error) of the forecast peak near each observed event peak."""
    out = []
    for a, b in _runs(event):
        tp = a + int(np.nanargmax(obs_series[a:b + 1]))
        lo, hi = max(tp - PEAK_WINDOW, 0), min(tp + PEAK_WINDOW + 1, len(fc_series))
        f = fc_series[lo:hi]
        if not np.isfinite(f).any():
            continue
        j = int(np.nanargmax(f))
        out.append((lo + j - tp, (f[j] - obs_series[tp]) / obs_series[tp]))
    return out


def choose_warn(results, setting):
    """Warning probability per level and lead: maximum F1 by day on the validation years, pooled over basins
    (as :func:`sca2lstm.evaluation.calibration.calibrate` chooses them for a model)."""
    out = {}
    for n in LEVELS:
        ps, es = [], []
        for b in results:
            v = b["levels"][n]
            s = b["settings"][setting]
            if not np.isfinite(v):
                continue
            ps.append(exceedance_probability(s["val"]["q"], s["levels_tau"], v))
            o = s["val"]["obs"]
            es.append(np.where(np.isfinite(o), o > v, np.nan))
        if not ps:
            out[n] = {"by_lead": [0.5] * 7}
            continue
        p_all, e_all = np.concatenate(ps), np.concatenate(es)
        out[n] = {"by_lead": [choose_warn_probability(p_all[:, k], e_all[:, k])[0] for k in range(p_all.shape[1])]}
    return out


def f1_interval(counts, level: float = 0.9, n_resamples: int = 2000, seed: int = 0) -> tuple[float, float]:
    """Percentile basin-bootstrap interval of a pooled F1 (``counts`` [B, 3]: hits, misses, false alarms per
    basin), or of the difference of two pooled F1s on the same basins (``counts`` [B, 2, 3]: the first
    forecaster's minus the second's). The pooled F1 of a few basins with many flood days dominates the rest,
    so it moves with the basin sample more than a median does; the checks on other basins see that."""
    c = np.asarray(counts, dtype=np.float64)
    if c.ndim == 2:
        return bootstrap_interval((c[:, 0], c[:, 1], c[:, 2]), pooled_f1, level, n_resamples, seed)
    data = tuple(c[:, i, j] for i in range(2) for j in range(3))
    diff = lambda h1, m1, f1, h2, m2, f2, axis=-1: pooled_f1(h1, m1, f1, axis) - pooled_f1(h2, m2, f2, axis)  # noqa: E731
    return bootstrap_interval(data, diff, level, n_resamples, seed)


def score(results, leads):
    rows, pit_rows = [], []
    for setting in SETTINGS:
        warn_p = choose_warn(results, setting)
        for k in range(leads):
            acc = {(f, n, c): np.zeros(5) for f in FORECASTERS for n in LEVELS for c in ("day", "event")}
            brier = {n: [0.0, 0.0] for n in LEVELS}
            cov, cov_hi, below, pits, nse, peaks = [], [], [], [], {f: [] for f in FORECASTERS}, \
                {f: [] for f in FORECASTERS}
            q2y_day = {f: [] for f in FORECASTERS}   # per basin: hits, misses, false alarms by day
            for b in results:
                s = b["settings"][setting]
                t, taus = s["test"], s["levels_tau"]
                obs = t["obs"][:, k]
                ok = np.isfinite(obs)
                fc = {"issued": t["med"][:, k], "today": t["raw_med"][:, k], "persistence": t["pers"]}
                q = t["q"][:, k]
                for f in FORECASTERS:
                    m = paired_metrics(obs, fc[f], t["pers"])
                    nse[f].append(m["model"]["nse"])
                j05, j95 = taus.index(0.05), taus.index(0.95)
                cov.append(((obs >= q[:, j05]) & (obs <= q[:, j95]))[ok])
                below.append((obs < q[:, j05])[ok])
                pits.append(pit(q[ok], taus, obs[ok]))
                v2 = b["levels"]["q2y"]
                if np.isfinite(v2):
                    hi = ok & (obs > v2)
                    cov_hi.append(((obs >= q[:, j05]) & (obs <= q[:, j95]))[hi])
                probs = {n: exceedance_probability(q, taus, b["levels"][n]) for n in LEVELS
                         if np.isfinite(b["levels"][n])}
                issued = nest_warnings({n: probs[n] >= warn_p[n]["by_lead"][k] for n in probs},  # as issued
                                       b["levels"])
                for n in LEVELS:
                    v = b["levels"][n]
                    if not np.isfinite(v):
                        continue
                    ev = ok & (obs > v)
                    p = probs[n]
                    warn = {"issued": issued[n], "today": t["raw_med"][:, k] > v, "persistence": t["pers"] > v}
                    for f in FORECASTERS:
                        w = warn[f] & ok
                        h, mi, fa = int((w & ev).sum()), int((~w & ev & ok).sum()), int((w & ~ev).sum())
                        acc[(f, n, "day")] += [h, mi, fa, h + mi, h + fa]
                        acc[(f, n, "event")] += event_counts(w, ev)
                        if n == "q2y":
                            q2y_day[f].append([h, mi, fa])
                            peaks[f] += _peaks(np.where(ok, obs, np.nan), np.where(ok, fc[f], np.nan), ev)
                    sel = ok & np.isfinite(p)
                    brier[n][0] += float(((p[sel] - ev[sel]) ** 2).sum())
                    br = b["base_rate"][n]
                    brier[n][1] += float(((br - ev[sel]) ** 2).sum())
            cov_all = np.concatenate(cov) if cov else np.array([])
            cov_h = np.concatenate(cov_hi) if cov_hi else np.array([])
            u = np.concatenate(pits) if pits else np.array([])
            pit_rows.append({"setting": setting, "lead": k + 1,
                             **{f"pit_{i / 10:.1f}": float(h) for i, h in
                                enumerate(np.histogram(u, bins=10, range=(0, 1))[0] / max(len(u), 1))}})
            for f in FORECASTERS:
                row = {"setting": setting, "lead": k + 1, "forecaster": f,
                       "nse_median_over_basins": float(np.nanmedian(nse[f])),
                       "peak_timing_abs_days_median": float(np.median(np.abs([x[0] for x in peaks[f]])))
                       if peaks[f] else np.nan,
                       "peak_magnitude_rel_median": float(np.median([x[1] for x in peaks[f]])) if peaks[f] else np.nan,
                       "n_peaks": len(peaks[f])}
                for n in LEVELS:
                    for c in ("day", "event"):
                        h, mi, fa, ne, nw = acc[(f, n, c)]
                        sc = _scores(int(h), int(mi), int(fa), int(ne), int(nw))
                        for key in ("f1", "pod", "far"):
                            row[f"{n}_{key}_{c}"] = sc[key]
                        row[f"{n}_events_{c}"] = int(ne)
                counts = np.asarray(q2y_day[f], dtype=np.float64).reshape(-1, 3)
                row["q2y_f1_day_lo90"], row["q2y_f1_day_hi90"] = f1_interval(counts)
                if f != "persistence":  # the margin over persistence on the same basins
                    pers = np.asarray(q2y_day["persistence"], dtype=np.float64).reshape(-1, 3)
                    row["q2y_f1_day_margin_lo90"], row["q2y_f1_day_margin_hi90"] = f1_interval(
                        np.stack([counts, pers], axis=1))
                if f == "issued":
                    row["coverage90"] = float(cov_all.mean()) if len(cov_all) else np.nan
                    row["coverage90_above_q2y"] = float(cov_h.mean()) if len(cov_h) else np.nan
                    row["below_q05"] = float(np.concatenate(below).mean()) if below else np.nan
                    for n in LEVELS:
                        row[f"{n}_brier_skill"] = 1 - brier[n][0] / brier[n][1] if brier[n][1] > 0 else np.nan
                        row[f"{n}_warn_probability"] = warn_p[n]["by_lead"][k]
                rows.append(row)
    return pd.DataFrame(rows), pd.DataFrame(pit_rows)


def today_coverage(results, leads):
    """90 % coverage and the share below q05 of today's raw quantiles (beside the issued ones)."""
    rows = []
    for setting in SETTINGS:
        for k in range(leads):
            c, bl, ch = [], [], []
            for b in results:
                s = b["settings"][setting]
                t, taus = s["test"], s["levels_tau"]
                obs, q = t["obs"][:, k], t["raw_q"][:, k]
                ok = np.isfinite(obs)
                inside = (obs >= q[:, taus.index(0.05)]) & (obs <= q[:, taus.index(0.95)])
                c.append(inside[ok])
                bl.append((obs < q[:, taus.index(0.05)])[ok])
                v2 = b["levels"]["q2y"]
                if np.isfinite(v2):
                    ch.append(inside[ok & (obs > v2)])
            rows.append({"setting": setting, "lead": k + 1, "today_coverage90": float(np.concatenate(c).mean()),
                         "today_coverage90_above_q2y": float(np.concatenate(ch).mean()) if ch else np.nan,
                         "today_below_q05": float(np.concatenate(bl).mean())})
    return pd.DataFrame(rows)


def _quick_model(out: Path):
    """A tiny model on tiny synthetic data (smoke test; its numbers mean nothing)."""
    from sca2lstm.config import load_config
    from sca2lstm.data.synthetic import generate_synthetic
    from sca2lstm.training.pretrain import pretrain

    d = out / "data"
    if not (d / "timeseries").is_dir():
        generate_synthetic(d, n_basins=4, seed=3, start="1990-10-01", end="2003-09-30")
    cfg = load_config(overrides={
        "data": {"data_dir": str(d), "train_start": "1990-10-01", "train_end": "1997-09-30",
                 "val_start": "1997-10-01", "val_end": "2000-09-30", "test_start": "2000-10-01",
                 "test_end": "2003-09-30"},
        "training": {"seq_len": 60, "spinup": 20, "epochs": 1, "batch_size": 8, "epoch_coverage": 0.2},
        "model": {"hidden_size": 16, "attention_hidden_size": 8, "embedding_size": 4}})
    ckpt = out / "model" / "sca2lstm.pth"
    if not ckpt.is_file():
        pretrain(cfg, ckpt, data_dir=d, progress=False)
    return ckpt, d


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default=None, help="the large-sample checkpoint (today's model)")
    ap.add_argument("--data_dir", default=str(REPO.parent / "shared" / "data" / "camels_gb_large"))
    ap.add_argument("--holdout", default=None, help="holdout.json (default: beside the model's folder)")
    ap.add_argument("--max_basins", type=int, default=None, help="score only the first N held-out basins")
    ap.add_argument("--out", default=str(REPO / "bench_output" / "floods"))
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--quick", action="store_true", help="smoke test: tiny model on tiny synthetic data")
    ap.add_argument("--summarise_only", action="store_true", help="rebuild the tables from the basins done")
    ap.add_argument("--via_reforecast", action="store_true",
                    help="instead: the product's path, `forecast --from --to` (reforecast with the calibration stored "
                         "beside the model, no weather) on the test years, warning for a user level at the 2-year "
                         "flood; pooled F1 by day per lead beside persistence, and 90 %% coverage")
    args = ap.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    out = Path(args.out)
    (out / "basins").mkdir(parents=True, exist_ok=True)
    if args.quick:
        model_path, data_dir = _quick_model(out)
        from sca2lstm.data import reader

        held = reader.list_basins(data_dir)
    else:
        if not args.model:
            ap.error("--model is required (or --quick)")
        model_path, data_dir = Path(args.model), Path(args.data_dir)
        hp = Path(args.holdout) if args.holdout else model_path.parent.parent / "holdout.json"
        if hp.is_file():
            held = json.loads(hp.read_text())["held_out"]
        else:
            from bench.large_sample import holdout_split
            from sca2lstm.data import reader

            held = holdout_split(reader.list_basins(data_dir), 0.1, 0)[1]
    held = [str(b) for b in held][:args.max_basins]
    bundle = load_model(model_path)
    leads = min(7, bundle[1].training.forecast_leads)
    if args.via_reforecast:
        return via_reforecast(bundle, model_path, data_dir, held, leads, out)
    stored = read_calibration(model_path).get("spread") or {}
    spread = {w: SpreadCalibration.from_dict(d) for w, d in stored.items()}
    print(f"spread calibration beside the model: {', '.join(spread) or 'none (the head spread as it is)'}")
    results = []
    t0 = time.time()
    for i, b in enumerate(held):
        f = out / "basins" / f"{b}.npz"
        if f.is_file():
            results.append(_load(f))
            continue
        if args.summarise_only:
            continue
        try:
            r = process_basin(bundle, data_dir, b, leads, spread)
        except DataError as e:
            print(f"basin {b}: skipped ({e})", flush=True)
            continue
        if r is None:
            print(f"basin {b}: skipped (too few days in a period)", flush=True)
            continue
        _save(f, r)
        results.append(r)
        print(f"basin {b} ({i + 1}/{len(held)}) done, {time.time() - t0:.0f} s", flush=True)
    if not results:
        print("no basin scored")
        return 1
    table, pits = score(results, leads)
    table = table.merge(today_coverage(results, leads), on=["setting", "lead"], how="left")
    table.to_csv(out / "floods_summary.csv", index=False, float_format="%.4f")
    pits.to_csv(out / "floods_pit.csv", index=False, float_format="%.4f")
    alphas = pd.DataFrame([{"basin": r["basin"], "setting": s, **{f"alpha_lead{k + 1}": a for k, a in
                                                                   enumerate(r["settings"][s]["alpha"])}}
                           for r in results for s in SETTINGS])
    alphas.to_csv(out / "blend_per_lead.csv", index=False, float_format="%.4f")
    pd.set_option("display.width", 250)
    pd.set_option("display.max_columns", 60)
    label = "tiny smoke model (numbers mean nothing)" if args.quick else f"model {model_path}"
    print(f"\n{label}; {len(results)} held-out basins; test years; 2-year level = median of the training "
          "annual maxima; 5-year = GLO")
    cols = ["setting", "lead", "forecaster", "q2y_f1_day", "q2y_f1_day_lo90", "q2y_f1_day_hi90", "q2y_pod_day",
            "q2y_far_day", "q2y_f1_event",
            "q2y_pod_event", "q2y_far_event", "q5y_f1_day", "q5y_f1_event", "nse_median_over_basins",
            "peak_timing_abs_days_median", "peak_magnitude_rel_median"]
    print(table[cols].to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    iss = table[table["forecaster"] == "issued"]
    print(iss[["setting", "lead", "coverage90", "coverage90_above_q2y", "below_q05", "today_coverage90",
               "today_coverage90_above_q2y", "today_below_q05", "q2y_f1_day_margin_lo90", "q2y_f1_day_margin_hi90",
               "q2y_brier_skill", "q5y_brier_skill",
               "q2y_warn_probability", "q5y_warn_probability"]].to_string(index=False,
                                                                          float_format=lambda v: f"{v:.3f}"))
    (out / "floods_meta.json").write_text(json.dumps({"model": str(model_path), "basins": [r["basin"] for r in results],
                                                      "quick": args.quick}, indent=2))
    print(f"Saved to {out}")
    return 0


def via_reforecast(bundle, model_path, data_dir, held, leads, out: Path) -> int:
    """The check through the product's own path (module docstring's measures, by day, no weather): every held-out
    basin's reforecast of the test years with the calibration stored beside the model (its blend fitted on the
    basin's validation days, the stored spread and warning probabilities), a user level ``flood`` at the 2-year
    flood (the level's warning probability is the nearest return-period level's)."""
    from sca2lstm.evaluation.reforecast import reforecast

    cfg = bundle[1]
    cnt = np.zeros((leads, 2, 3))                   # lead, (issued, persistence), (hits, false alarms, misses)
    inside = [[] for _ in range(leads)]
    skipped = []
    for b in held:
        try:
            ctx = BasinContext.resolve(bundle, data_dir, b, allow_missing_inputs=True)
            y = ctx.record.y.astype(np.float64)
            lv = basin_levels(ctx.record.dates, y, ctx.record.period(cfg.data.train_start, cfg.data.train_end))["q2y"]
            if not np.isfinite(lv):
                raise DataError("no 2-year level")
            day = pd.Timedelta(days=1)
            tab, _ = reforecast(bundle, b, pd.Timestamp(cfg.data.test_start) - day, pd.Timestamp(cfg.data.test_end) - day,
                                leads=leads, model_path=model_path, user_levels={"flood": lv}, context=ctx)
        except DataError as e:
            skipped.append(b)
            print(f"basin {b}: skipped ({e})", flush=True)
            continue
        tab = tab[(tab["valid_date"] >= cfg.data.test_start) & (tab["valid_date"] <= cfg.data.test_end)]
        for k in range(1, leads + 1):
            t = tab[(tab["lead_days"] == k) & tab["observed"].notna()]
            o = (t["observed"] > lv).to_numpy()
            for j, f in enumerate((t["warn_flood"].to_numpy(bool), (t["persistence"] > lv).to_numpy())):
                cnt[k - 1, j] += [(o & f).sum(), (~o & f).sum(), (o & ~f).sum()]
            inside[k - 1].append(((t["observed"] >= t["q05"]) & (t["observed"] <= t["q95"])).to_numpy())
    f1 = lambda c: _scores(c[0], c[2], c[1], c[0] + c[2], c[0] + c[1])["f1"]  # noqa: E731  (hits, fa, misses)
    rows = [{"lead": k + 1, "f1_issued": f1(cnt[k, 0]), "f1_persistence": f1(cnt[k, 1]),
             "event_days": int(cnt[k, 0, 0] + cnt[k, 0, 2]),
             "coverage90": float(np.concatenate(inside[k]).mean()) if inside[k] else float("nan")} for k in range(leads)]
    df = pd.DataFrame(rows)
    df.to_csv(out / "via_reforecast.csv", index=False, float_format="%.4f")
    print(f"\nthe product's path (reforecast, calibration beside {model_path}); {len(held) - len(skipped)} held-out "
          f"basins; test years; no weather; level = median of the training annual maxima")
    print(df.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    return 0


def _save(path: Path, r: dict) -> None:
    flat = {"meta": json.dumps({"basin": r["basin"], "levels": r["levels"], "base_rate": r["base_rate"],
                                "settings": {s: {"alpha": v["alpha"], "levels_tau": v["levels_tau"]}
                                             for s, v in r["settings"].items()}})}
    for s, v in r["settings"].items():
        for part in ("val", "test"):
            for k, a in v[part].items():
                flat[f"{s}|{part}|{k}"] = a
    tmp = path.with_suffix(".tmp.npz")
    np.savez_compressed(tmp, **flat)
    tmp.replace(path)


def _load(path: Path) -> dict:
    z = np.load(path)
    meta = json.loads(str(z["meta"]))
    r = {"basin": meta["basin"], "levels": meta["levels"], "base_rate": meta["base_rate"], "settings": {}}
    for s, v in meta["settings"].items():
        r["settings"][s] = {**v, "val": {}, "test": {}}
    for key in z.files:
        if key == "meta":
            continue
        s, part, k = key.split("|")
        r["settings"][s][part][k] = z[key]
    return r


if __name__ == "__main__":
    raise SystemExit(main())
