"""How often the flow falls below the issued median, per lead: is the ``median`` column a median?

For each basin, the issue-time forecasts without weather on every validation day (the days the calibration is
fitted on; nothing here is fitted or chosen), three ways: the quantile head's raw q50, after the persistence
blend, and as issued (blend, recession bound, spread). Prints the median over basins, per lead, of the share of
days whose observed flow fell below each; 0.5 is a calibrated median. Writes ``per_basin.csv`` to ``--out``.

``--fit_level`` measures the alternative: a ``median`` issued at the level, fitted per lead, below which half
the flows fall (the PIT's median, pooled over basins), read off the issued distribution. Two-fold over basins:
fitted on every other basin, scored (share below, NSE) on the others, and the reverse. Prints the median over
basins per lead beside the issued median's, and writes ``fitted_level.csv``.

    PYTHONPATH=. python bench/median_reliability.py --model LARGE/model/sca2lstm.pth \\
        --data_dir ../shared/data/camels_gb_large --basins LARGE/holdout.json --max_basins 40 [--fit_level]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from sca2lstm.checkpoint import load_model  # noqa: E402
from sca2lstm.evaluation import calibration as cal  # noqa: E402
from sca2lstm.evaluation.context import BasinContext  # noqa: E402
from sca2lstm.evaluation.exceedance import pit  # noqa: E402
from sca2lstm.evaluation.metrics import nse  # noqa: E402
from sca2lstm.weather.mixture import mixture_quantiles  # noqa: E402
from weather import add_basin_args, resolve_basins  # noqa: E402  (bench/weather.py)


def shares(ctx, calib) -> tuple[dict, tuple | None]:
    """Per lead, the share of validation days below the raw, the blended and the issued median; and the issued
    forecasts ``(median [n, L], quantiles [n, L, Q], levels, observed [n, L])`` (None where there are none)."""
    leads = ctx.cfg.training.forecast_leads
    setup = cal.issue_setup(ctx, leads, calib, "none")
    v0, v1 = ctx.validation_days()
    runs = cal.validation_runs(ctx, v0, v1)
    if runs is None or runs.quantiles is None:
        return {}, None
    scale = float(ctx.scalers.basins[ctx.basin].q_mean)
    ways = {"raw_q50": (None, None, None), "blended": (setup.alpha, None, None),
            "issued": (setup.alpha, setup.recession, setup.spread)}
    out = {w: cal.validation_tails(runs, a, r, s, scale, "")["below_median"] for w, (a, r, s) in ways.items()}
    bound = setup.recession.bound(runs.last_obs, leads) if setup.recession is not None else None
    med, qs = setup.adjust(runs.median, runs.quantiles, list(runs.levels), runs.last_obs, bound)
    return out, (med, qs, list(runs.levels), np.asarray(runs.observed, dtype=np.float64))


def _with_median(med, qs, levels):
    """Quantiles [n, L, Q'] and levels including the median at 0.5."""
    if 0.5 in levels:
        return qs, list(levels)
    j = int(np.searchsorted(levels, 0.5))
    return np.concatenate([qs[..., :j], med[..., None], qs[..., j:]], axis=-1), [*levels[:j], 0.5, *levels[j:]]


def fitted_level(issued: dict) -> pd.DataFrame:
    """Two-fold over basins: the level per lead below which half the fitting basins' flows fell (median PIT of
    the issued distribution), scored on the other basins: share below and NSE, beside the issued median's."""
    basins = sorted(issued)
    rows = []
    for fold in (0, 1):
        fit = [issued[b] for i, b in enumerate(basins) if i % 2 == fold]
        u = np.concatenate([pit(*_with_median(m, q, lv), o) for m, q, lv, o in fit])   # [n, L]
        tau = np.nanmedian(u, axis=0)
        for b in (b for i, b in enumerate(basins) if i % 2 != fold):
            med, qs, lv, obs = issued[b]
            full, flv = _with_median(med, qs, lv)
            for k, t in enumerate(tau):
                new = mixture_quantiles(full[:, k, None, :], flv, [t])[:, 0]
                ok = np.isfinite(obs[:, k])
                rows.append({"basin": b, "fold": fold, "lead": k + 1, "level": float(t),
                             "below_issued": float((obs[ok, k] < med[ok, k]).mean()),
                             "below_fitted": float((obs[ok, k] < new[ok]).mean()),
                             "nse_issued": float(nse(obs[ok, k], med[ok, k])),
                             "nse_fitted": float(nse(obs[ok, k], new[ok]))})
    return pd.DataFrame(rows)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_basin_args(ap)
    ap.add_argument("--out", default="bench_output/median_reliability")
    ap.add_argument("--fit_level", action="store_true",
                    help="also the median level fitted per lead, two-fold over the basins (share below, NSE)")
    args = ap.parse_args(argv)
    bundle = load_model(Path(args.model))
    calib = cal.read_calibration(args.model)
    data_dir = Path(args.data_dir)
    rows, issued = [], {}
    for b in resolve_basins(args.basins, data_dir, {})[:args.max_basins]:
        per_way, forecasts = shares(BasinContext.resolve(bundle, data_dir, b), calib)
        if forecasts is not None:
            issued[b] = forecasts
        for way, per_lead in per_way.items():
            rows += [{"basin": b, "way": way, "lead": k + 1, "below_median": v} for k, v in enumerate(per_lead)]
    per = pd.DataFrame(rows)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    per.to_csv(out / "per_basin.csv", index=False, float_format="%.4f")
    table = per.pivot_table(index="way", columns="lead", values="below_median", aggfunc="median")
    print(f"\nModel {args.model}; {per['basin'].nunique()} basins; validation days, issue-time forecasts without "
          "weather. Share of days with the flow below the median (median over basins; 0.5 is calibrated):")
    print(table.loc[["raw_q50", "blended", "issued"]].to_string(float_format=lambda v: f"{v:.3f}"))
    if args.fit_level and len(issued) >= 2:
        fl = fitted_level(issued)
        fl.to_csv(out / "fitted_level.csv", index=False, float_format="%.4f")
        cols = ["level", "below_issued", "below_fitted", "nse_issued", "nse_fitted"]
        print("\nA median level fitted per lead on every other basin, scored on the others (both ways; median over "
              "the scored basins; 'level' is the mean of the two folds' levels):")
        agg = fl.groupby("lead")[cols[1:]].median().join(fl.groupby("lead")["level"].mean())[cols]
        print(agg.T.to_string(float_format=lambda v: f"{v:.3f}"))
    print(f"Saved to {out}")
    return 0 if np.isfinite(table.to_numpy()).any() else 1


if __name__ == "__main__":
    raise SystemExit(main())
