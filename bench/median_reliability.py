"""How often the flow falls below the issued median, per lead: is the ``median`` column a median?

For each basin, the issue-time forecasts without weather on every validation day (the days the calibration is
fitted on; nothing here is fitted or chosen), three ways: the quantile head's raw q50, after the persistence
blend, and as issued (blend, recession bound, spread). Prints the median over basins, per lead, of the share of
days whose observed flow fell below each; 0.5 is a calibrated median. Writes ``per_basin.csv`` to ``--out``.

    PYTHONPATH=. python bench/median_reliability.py --model LARGE/model/sca2lstm.pth \\
        --data_dir ../shared/data/camels_gb_large --basins LARGE/holdout.json --max_basins 40
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
from weather import add_basin_args, resolve_basins  # noqa: E402  (bench/weather.py)


def shares(ctx, calib) -> dict:
    """Per lead, the share of validation days below the raw, the blended and the issued median."""
    leads = ctx.cfg.training.forecast_leads
    setup = cal.issue_setup(ctx, leads, calib, "none")
    v0, v1 = ctx.validation_days()
    runs = cal.validation_runs(ctx, v0, v1)
    if runs is None or runs.quantiles is None:
        return {}
    scale = float(ctx.scalers.basins[ctx.basin].q_mean)
    ways = {"raw_q50": (None, None, None), "blended": (setup.alpha, None, None),
            "issued": (setup.alpha, setup.recession, setup.spread)}
    return {w: cal.validation_tails(runs, a, r, s, scale, "")["below_median"] for w, (a, r, s) in ways.items()}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_basin_args(ap)
    ap.add_argument("--out", default="bench_output/median_reliability")
    args = ap.parse_args(argv)
    bundle = load_model(Path(args.model))
    calib = cal.read_calibration(args.model)
    data_dir = Path(args.data_dir)
    rows = []
    for b in resolve_basins(args.basins, data_dir, {})[:args.max_basins]:
        for way, per_lead in shares(BasinContext.resolve(bundle, data_dir, b), calib).items():
            rows += [{"basin": b, "way": way, "lead": k + 1, "below_median": v} for k, v in enumerate(per_lead)]
    per = pd.DataFrame(rows)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    per.to_csv(out / "per_basin.csv", index=False, float_format="%.4f")
    table = per.pivot_table(index="way", columns="lead", values="below_median", aggfunc="median")
    print(f"\nModel {args.model}; {per['basin'].nunique()} basins; validation days, issue-time forecasts without "
          "weather. Share of days with the flow below the median (median over basins; 0.5 is calibrated):")
    print(table.loc[["raw_q50", "blended", "issued"]].to_string(float_format=lambda v: f"{v:.3f}"))
    print(f"Saved to {out}")
    return 0 if np.isfinite(table.to_numpy()).any() else 1


if __name__ == "__main__":
    raise SystemExit(main())
