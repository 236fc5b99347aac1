"""The benchmark harness imports and its speed section runs (tiny sizes; no timing assertions)."""

import importlib.util
import os
import sys

from conftest import REPO, make_tiny_config


def _load_harness():
    spec = importlib.util.spec_from_file_location("run_benchmarks", REPO / "bench" / "run_benchmarks.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up there
    spec.loader.exec_module(mod)
    return mod


def test_speed_section_gives_positive_rates(tiny_data_dir):
    bench = _load_harness()
    assert set(bench.SECTIONS) == {"accuracy", "loo", "speed", "predict", "ddp", "memory"}
    df = bench.bench_speed(make_tiny_config(tiny_data_dir), reps=1, warmup=0, batch=2, seq_len=12)
    assert {"SCA2LSTM", "SCA2LSTM, Python loops", "LSTMBaseline"} <= set(df["model"])
    assert "SCA2LSTM_NATIVE" not in os.environ               # the Python-loops row restored the setting
    assert set(df["precision"]) == {"fp32", "bf16 autocast"}
    ran = df[df["note"] == ""]  # bf16 rows may be marked unsupported (oneDNN bf16 LSTM needs AVX-512)
    assert set(ran.loc[ran["precision"] == "fp32", "model"]) >= {"SCA2LSTM", "LSTMBaseline"}
    for col in ("train_samples_s", "infer_samples_s", "train_vs_SCA2LSTM", "infer_vs_SCA2LSTM"):
        assert (ran[col] > 0).all(), df


def test_flood_stats_properties(tiny_cfg, tiny_data_dir):
    """A forecast equal to the observations has no flood bias and reaches the largest flood; one at
    half the observations is 50 % low on the largest floods too."""
    from sca2lstm.evaluation.forecast import Forecast
    from sca2lstm.training.pretrain import prepare_pretraining_data

    bench = _load_harness()
    prep = prepare_pretraining_data(tiny_cfg, tiny_data_dir)
    data = prep.data

    def forecasts(factor):
        fcs = []
        for b, (r, (v0, v1)) in enumerate(zip(data.records, prep.val_periods)):
            obs = data.scalers.inverse_y(data.y[data.offsets[b] + v0:data.offsets[b] + v1].astype(float), r.basin)
            fcs.append(Forecast(r.basin, v0, v1, data.scalers.transform_y(obs * factor, r.basin), None))
        return fcs

    exact = bench._flood_stats(prep, forecasts(1))
    half = bench._flood_stats(prep, forecasts(0.5))
    assert set(exact) == {r.basin for r in data.records}
    for b, f in exact.items():
        assert abs(f["top1pct_bias"]) < 1e-5 and abs(f["test_max_forecast"] - f["test_max_obs"]) < 1e-3 * f["test_max_obs"]
        assert f["train_max_obs"] > 0
        assert abs(half[b]["top1pct_bias"] + 0.5) < 1e-4
        assert 0.01 <= half[b]["top1pct_sq_error_share"] <= 1    # the largest flows carry the largest errors
