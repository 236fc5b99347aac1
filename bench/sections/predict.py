"""Section 5, prediction: the chunked batched forecast of a whole record against one pass and per-day
windows, in time and in agreement."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
from harness import FULL_RECORD, Settings, _pretrain_job, median_time, metric, run_isolated, show

def section_predict(S: Settings) -> dict:
    import torch

    from sca2lstm.data.dataset import SequenceData, chunk_starts, load_basin, load_static
    from sca2lstm.evaluation.forecast import forecast_periods
    from sca2lstm.evaluation.metrics import paired_metrics
    from sca2lstm.evaluation.predict import predict
    from sca2lstm.checkpoint import load_model

    ckpt = S.out / "accuracy" / "sca2lstm.pth"
    source = "the accuracy section's SCA2LSTM"
    if not ckpt.is_file():  # timing does not depend on training quality; a short run is enough
        ckpt = S.out / "predict" / "sca2lstm.pth"
        source = "a 1-epoch SCA2LSTM (no accuracy checkpoint in --out)"
        cfg1 = S.config({"training": {"epochs": 1, "epoch_coverage": 0.1}})
        run_isolated(S, "predict_pretrain", _pretrain_job, cfg1.to_dict(), str(ckpt), str(S.data_dir), None,
                     False, False)
    bundle = load_model(ckpt)
    model, cfg, scalers, _ = bundle
    L, spinup = cfg.training.seq_len, cfg.training.spinup
    basin = "32006" if "32006" in scalers.basins else sorted(scalers.basins)[0]

    # The chunked batched forecast through the public API (reads the basin, scales, forecasts).
    t_api = median_time(lambda: predict(ckpt, basin, *FULL_RECORD, data_dir=S.data_dir, model_bundle=bundle),
                        S.predict_reps, warmup=1)
    # The same scaled arrays predict() builds, to time the model runs alone.
    rec = load_basin(S.data_dir, basin, cfg)
    data = SequenceData([rec], load_static(S.data_dir, [basin], cfg), scalers, pad=L)
    n = len(rec.dates)
    n_chunks = len(chunk_starts(0, n, L, spinup))
    chunked = {}

    def run_chunked():
        chunked["pred"] = forecast_periods(model, data, [(0, n)], L, spinup)[0].pred

    t_chunk = median_time(run_chunked, S.predict_reps)

    def arrays(start, length):
        x, miss, y, st, stm = data.gather(np.array([0]), np.array([start]), length)
        return [torch.from_numpy(a) for a in (x, miss, st, stm, y)]

    one = {}

    @torch.no_grad()
    def run_one_pass():  # batch of 1 over the whole record, one sequential pass
        a = arrays(0, n)
        one["pred"] = model(*a[:4], q_obs=a[4])[0].numpy()

    t_one = median_time(run_one_pass, S.predict_reps)

    days = np.linspace(L - 1, n - 1, S.naive_windows).astype(int)
    naive = []

    @torch.no_grad()
    def run_naive():  # one overlapping window per forecast day, each run on its own
        naive.clear()
        for day in days:
            a = arrays(day - L + 1, L)
            naive.append(float(model(*a[:4], q_obs=a[4])[0, -1]))

    t0 = time.perf_counter()
    run_naive()
    per_window = (time.perf_counter() - t0) / len(days)
    t_naive = per_window * n

    inv = lambda v: scalers.inverse_y(np.asarray(v, dtype=np.float64), basin)  # noqa: E731
    # Agreement on the test period: the API's chunked forecast vs the one-pass run, same observed days.
    test = predict(ckpt, basin, data_dir=S.data_dir, model_bundle=bundle)
    i0, i1 = rec.period(cfg.data.test_start, cfg.data.test_end)
    s = test.series
    one_m = paired_metrics(s["observed"], inv(one["pred"][i0:i1]), s["persistence"])
    diff = np.abs(test.predicted_raw - inv(one["pred"][i0:i1]))  # the model itself: before the persistence blend
    naive_diff = np.abs(inv(naive) - inv(chunked["pred"][days]))
    mean_q = float(np.nanmean(s["observed"]))

    table = pd.DataFrame([
        {"method": "predict() API, chunked batched", "windows": n_chunks,
         "seconds": t_api, "measured": f"median of {S.predict_reps}"},
        {"method": "chunked forecast, model runs only", "windows": n_chunks,
         "seconds": t_chunk, "measured": f"median of {S.predict_reps}"},
        {"method": "one pass, batch of 1 over the record", "windows": 1, "seconds": t_one,
         "measured": f"median of {S.predict_reps}"},
        {"method": "naive per-day windows (extrapolated)", "windows": n, "seconds": t_naive,
         "measured": f"{len(days)} windows x {n} days"},
    ])
    agree = pd.DataFrame([
        {"forecast": "chunked (predict API, before the persistence blend)", "NSE": metric(test.metrics, "model_raw", "nse"),
         "KGE": metric(test.metrics, "model_raw", "kge"), "persistence_NSE": metric(test.metrics, "persistence", "nse"),
         "days": int(test.metrics["n_days"])},
        {"forecast": "one pass", "NSE": metric(one_m, "model", "nse"), "KGE": metric(one_m, "model", "kge"),
         "persistence_NSE": metric(one_m, "persistence", "nse"), "days": int(one_m["n_days"])},
    ])
    show(f"Prediction of basin {basin}, {n} days {FULL_RECORD[0]}..{FULL_RECORD[1]}, model loaded "
         f"({source}); window {L}, spin-up {spinup}", table)
    show(f"Chunked vs one-pass on the test period {cfg.data.test_start}..{cfg.data.test_end}", agree,
         f"max |chunked - one pass| = {np.nanmax(diff):.4f} m3/s (mean flow {mean_q:.3f} m3/s); "
         f"naive windows vs chunked on {len(days)} sampled days: max |diff| = {np.nanmax(naive_diff):.4f} m3/s")
    return {"tables": {"predict_timing": table, "predict_agreement": agree},
            "summary": {"basin": basin, "days": n, "checkpoint": str(ckpt), "source": source,
                        "max_abs_diff_chunked_vs_one_pass": float(np.nanmax(diff)),
                        "max_abs_diff_naive_vs_chunked": float(np.nanmax(naive_diff)), "mean_flow": mean_q}}
