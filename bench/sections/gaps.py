"""Section 2, patchy records: a test period with a share of its discharge observations removed in
blocks, scored on every day and on the days right after a removed observation."""

from __future__ import annotations

import numpy as np
import pandas as pd
from harness import HINDCAST_SETTING, Settings, _pretrain_job, metric, run_isolated, show, with_median_row

def gap_mask(n_days: int, i0: int, i1: int, fraction: float, seed: int) -> np.ndarray:
    """[n_days] bool: observed discharge removed in blocks of 1-30 days until ``fraction`` of the
    days [i0, i1) are removed (blocks may start up to 30 days before i0)."""
    rng = np.random.default_rng(seed)
    gap = np.zeros(n_days, dtype=bool)
    while i1 > i0 and gap[i0:i1].mean() < fraction:
        start = int(rng.integers(max(0, i0 - 30), i1))
        gap[start:start + int(rng.integers(1, 31))] = True
    return gap


def gap_forecast(model, cfg, scalers, data_dir, basin: str, fraction: float) -> dict:
    """Test-period forecast of ``basin`` when the gauge lost ``fraction`` of its discharge record.

    The removed days are gone from every input (lagged discharge, SSI state, residual feedback: the
    features are rebuilt from the gappy record, as a user's file would give them), never from the
    observations the forecast is scored against.

    Returns
    -------
    dict of numpy.ndarray [test days]
        ``obs`` (true flow), ``pred``, ``last`` (persistence of the last observed flow) in m3/s, and
        ``after_gap`` (bool: the observation the forecast would normally start from was removed).
    """
    from sca2lstm.data import camels_gb
    from sca2lstm.data.dataset import BasinRecord, SequenceData, load_static
    from sca2lstm.data.features import raw_features, required_columns
    from sca2lstm.evaluation.forecast import forecast_periods

    d, t = cfg.data, cfg.training
    df = camels_gb.read_timeseries(data_dir, basin, columns=required_columns(cfg))
    dates = df.index.to_numpy().astype("datetime64[D]")
    obs = df[d.target].to_numpy(np.float64)
    i0, i1 = BasinRecord(basin, dates, np.empty((len(dates), 0)), obs).period(d.test_start, d.test_end)
    gap = gap_mask(len(df), i0, i1, fraction, seed=int(basin) if basin.isdigit() else 0)
    gappy = df.copy()
    gappy.loc[gap, d.target] = np.nan
    x, y = raw_features(gappy, cfg)
    data = SequenceData([BasinRecord(basin, dates, x, y)], load_static(data_dir, [basin], cfg), scalers,
                        pad=t.seq_len)
    fc = forecast_periods(model, data, [(i0, i1)], t.seq_len, t.spinup)[0]
    last = gappy[d.target].ffill().shift(d.lead_days).to_numpy(np.float64)
    return {"obs": obs[i0:i1], "pred": np.maximum(scalers.inverse_y(fc.pred.astype(np.float64), basin), 0.0),
            "last": last[i0:i1], "after_gap": gap[i0 - d.lead_days:i1 - d.lead_days]}


def _gap_scores(model, cfg, scalers, data_dir, basins, fraction: float) -> dict:
    """Per basin: NSE of the gappy-record forecast on every test day and on the days after a removed
    observation, beside persistence of the last observed flow on the same days
    (:func:`sca2lstm.evaluation.metrics.after_gap_scores`)."""
    from sca2lstm.evaluation.metrics import after_gap_scores

    out = {}
    for basin in basins:
        f = gap_forecast(model, cfg, scalers, data_dir, basin, fraction)
        s = after_gap_scores(f["obs"], f["pred"], f["last"], f["after_gap"])
        out[basin] = {"all_NSE": s["nse"], "all_persistence_NSE": s["persistence_nse"],
                      "after_gap_NSE": s["after_gap_nse"],  # NaN with < 2 such days
                      "after_gap_persistence_NSE": s["after_gap_persistence_nse"],
                      "after_gap_days": s["n_after_gap"]}
    return out


def section_gaps(S: Settings) -> dict:
    cfg = S.config()
    default_p = cfg.training.discharge_dropout
    variants = sorted({0.0, default_p})
    res = {p: run_isolated(S, f"gaps_dropout{p}", _pretrain_job, cfg.replace(training={"discharge_dropout": p}).to_dict(),
                           str(S.out / "gaps" / f"sca2lstm_dropout{p}.pth"), str(S.data_dir), None, False,
                           gap_fraction=S.gap_fraction)[0]
           for p in variants}
    rows = []
    for b in sorted(res[variants[0]]["test"]):
        g0 = res[variants[0]]["gappy"][b]
        row = {"basin": b, "after_gap_days": g0["after_gap_days"],
               "persistence_gappy_NSE": g0["all_persistence_NSE"],
               "persistence_after_gap_NSE": g0["after_gap_persistence_NSE"]}
        for p in variants:
            row[f"dropout{p}_full_NSE"] = metric(res[p]["test"][b], "model", "nse")
            row[f"dropout{p}_gappy_NSE"] = res[p]["gappy"][b]["all_NSE"]
            row[f"dropout{p}_after_gap_NSE"] = res[p]["gappy"][b]["after_gap_NSE"]
        rows.append(row)
    table = with_median_row(pd.DataFrame(rows), counts=("after_gap_days",))
    show(f"Patchy records: SCA2LSTM pretrained with training.discharge_dropout {' and '.join(map(str, variants))} "
         f"(default {default_p}); test NSE ({HINDCAST_SETTING}) with the full record (full), with {S.gap_fraction:.0%} of the test days' "
         "discharge removed in blocks of 1-30 days (gappy: every day; after_gap: the days whose previous "
         "observation was removed); persistence = the last observed flow, on the same days", table.round(3))
    return {"tables": {"gaps": table}, "summary": {"gap_fraction": S.gap_fraction, "default_dropout": default_p}}
