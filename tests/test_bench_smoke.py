"""The benchmark harness imports and its speed section runs (tiny sizes; no timing assertions)."""

import importlib
import os
import sys

import numpy as np
import pandas as pd
import pytest

from conftest import REPO, make_tiny_config


def _load_bench(name: str):
    """A bench/ module by its import name, e.g. ``sections.gaps`` (bench/ is scripts, not a package: its
    modules import each other from that folder, as when the harness runs)."""
    if str(REPO / "bench") not in sys.path:
        sys.path.insert(0, str(REPO / "bench"))
    return importlib.import_module(name)


def test_driver_runs_every_section_with_the_same_command_line(tmp_path):
    bench = _load_bench("run_benchmarks")
    assert set(bench.SECTIONS) == {"accuracy", "gaps", "loo", "scaling", "speed", "predict", "ddp", "memory"}
    assert list(bench.RUNNERS) == list(bench.SECTIONS) and all(map(callable, bench.RUNNERS.values()))
    (tmp_path / "timeseries").mkdir()
    a = bench.parse_args(["--data_dir", str(tmp_path), "--only", "speed,gaps", "--quick", "--extra_seeds", "1,2"])
    assert a.only == ["speed", "gaps"] and a.quick and a.extra_seeds == [1, 2]


def test_speed_section_gives_positive_rates(tiny_data_dir):
    bench = _load_bench("sections.speed")
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

    bench = _load_bench("harness")
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


def test_scaling_groups_cover_every_basin_equally():
    """Each basin is pretrained on alone once, in one third, in two of the two-thirds sets and in all."""
    bench = _load_bench("sections.scaling")
    for n in (3, 7, 9):
        basins = [f"{10000 + 7 * i}" for i in range(n)][::-1]
        g = bench.scaling_groups(basins)
        assert list(g) == ["alone", "third", "two_thirds", "all"]
        for b in basins:
            for label, times in (("alone", 1), ("third", 1), ("two_thirds", 2), ("all", 1)):
                assert sum(b in m for m in g[label]) == times, (n, label)
        sizes = [len(g[label][0]) for label in g]
        assert sizes == sorted(sizes) and sizes[0] == 1 and sizes[-1] == n
        assert all(len(m) == len(set(m)) for sets in g.values() for m in sets)


def test_gap_mask_properties():
    bench = _load_bench("sections.gaps")
    n, i0, i1 = 4000, 1000, 3000
    for seed in range(5):
        gap = bench.gap_mask(n, i0, i1, 0.2, seed)
        assert 0.2 <= gap[i0:i1].mean() < 0.2 + 31 / (i1 - i0)    # reached, overshot by at most one block
        assert not gap[:i0 - 30].any() and not gap[i1 + 30:].any()
        edges = np.flatnonzero(np.diff(np.r_[0, gap.astype(int), 0]))
        assert len(edges) >= 2 and np.array_equal(gap, bench.gap_mask(n, i0, i1, 0.2, seed))
    assert not bench.gap_mask(n, i0, i1, 0.0, 0).any()


def test_gap_forecast_is_causal_and_matches_predict(pretrained_ckpt, tiny_data_dir):
    """Without gaps the harness forecasts exactly what predict() does; with gaps, every day before the
    first removed observation can be used is forecast exactly as without them."""
    from sca2lstm.evaluation.predict import predict
    from sca2lstm.checkpoint import load_model

    bench = _load_bench("sections.gaps")
    model, cfg, scalers, _ = load_model(pretrained_ckpt)
    full = bench.gap_forecast(model, cfg, scalers, tiny_data_dir, "32006", 0.0)
    ref = predict(pretrained_ckpt, "32006", data_dir=tiny_data_dir)
    assert np.allclose(full["pred"], ref.predicted_raw, equal_nan=True)  # the model, before the persistence blend
    assert not full["after_gap"].any()
    gappy = bench.gap_forecast(model, cfg, scalers, tiny_data_dir, "32006", 0.3)
    first = int(np.argmax(gappy["after_gap"]))
    assert 0.25 < gappy["after_gap"].mean() and first > 0
    assert np.array_equal(gappy["pred"][:first], full["pred"][:first], equal_nan=True)
    assert not np.allclose(gappy["pred"][first:], full["pred"][first:], equal_nan=True)
    assert np.array_equal(gappy["obs"], full["obs"], equal_nan=True)     # scored against the true flows


def test_gbm_features_are_causal():
    """Changing anything after day k leaves every feature of days <= k as it was; discharge enters only
    from t - lead on."""
    gbm = _load_bench("gbm_reference")
    rng = np.random.default_rng(0)
    idx = pd.date_range("2000-01-01", periods=400, freq="D")
    df = pd.DataFrame({"precipitation": rng.gamma(0.7, 3.0, 400), "peti": rng.uniform(0, 3, 400),
                       "temperature": rng.normal(10, 5, 400)}, index=idx)
    z = pd.Series(rng.normal(size=400), index=idx)
    lead, k = 2, 250
    X = gbm.lag_features(df, z, ["precipitation", "peti", "temperature"], lead)
    df2, z2 = df.copy(), z.copy()
    df2.iloc[k + 1:] += 100.0
    z2.iloc[k - lead + 1:] += 100.0        # discharge up to k - lead is all day k may use
    X2 = gbm.lag_features(df2, z2, ["precipitation", "peti", "temperature"], lead)
    pd.testing.assert_frame_equal(X.iloc[:k + 1], X2.iloc[:k + 1])
    assert not np.allclose(X.iloc[k + 1:].to_numpy(), X2.iloc[k + 1:].to_numpy(), equal_nan=True)


@pytest.mark.slow
def test_gbm_reference_forecasts_the_test_period_better_than_persistence(tiny_cfg, tiny_data_dir):
    """Sanity on synthetic basins: one row per test day, the observed and persistence columns are the
    data themselves, and the trees beat persistence in median NSE."""
    from sca2lstm.data.camels_gb import read_timeseries
    from sca2lstm.evaluation.metrics import paired_metrics

    gbm = _load_bench("gbm_reference")
    basins = ["10002", "10003", "32006"]
    fc, n_trees = gbm.gbm_forecasts(tiny_cfg, tiny_data_dir, basins, threads=1)
    assert set(fc) == set(basins) and n_trees >= 1
    d = tiny_cfg.data
    gain = []
    for b in basins:
        q = read_timeseries(tiny_data_dir, b)[d.target]
        f = fc[b].set_index("date")
        assert f.index[0] == pd.Timestamp(d.test_start) and f.index[-1] == pd.Timestamp(d.test_end)
        np.testing.assert_allclose(f["observed"], q.loc[d.test_start:d.test_end], rtol=1e-9)
        np.testing.assert_allclose(f["persistence"], q.shift(d.lead_days).loc[d.test_start:d.test_end], rtol=1e-9)
        m = paired_metrics(f["observed"], f["predicted"], f["persistence"])
        gain.append(m["model"]["nse"] - m["persistence"]["nse"])
    assert np.median(gain) > 0, gain


def test_median_reliability_counts_the_days_below_each_median_per_lead(pretrained_ckpt, tiny_data_dir, tmp_path,
                                                                          capsys):
    bench = _load_bench("median_reliability")
    assert bench.main(["--model", str(pretrained_ckpt), "--data_dir", str(tiny_data_dir), "--basins", "32006", "10002",
                       "--out", str(tmp_path)]) == 0
    per = pd.read_csv(tmp_path / "per_basin.csv")
    assert set(per["way"]) == {"raw_q50", "blended", "issued"} and per["below_median"].between(0, 1).all()
    assert set(per["lead"]) == set(range(1, 8)) and "0.5 is calibrated" in capsys.readouterr().out


def test_a_fitted_median_level_puts_half_the_flows_below_it_on_the_basins_it_was_fitted_on():
    """On one basin fitted and scored on itself, the level is the median PIT, so about half the days fall below
    the median it issues (up to ties and the interpolation), whatever the issued median's bias."""
    bench = _load_bench("median_reliability")
    rng = np.random.default_rng(0)
    n, leads, levels = 4000, 2, [0.05, 0.25, 0.75, 0.95]
    obs = rng.lognormal(0.0, 0.5, size=(n, leads))
    # a forecast whose every day has the same distribution, its centre too high: 70 % of the flows fall below it
    z = np.array([-1.645, -0.674, 0.674, 1.645])
    med = np.full((n, leads), np.exp(0.5 * 0.524))
    qs = np.broadcast_to(np.exp(0.5 * (0.524 + z)), (n, leads, 4)).copy()
    issued = {"a": (med, qs, levels, obs), "b": (med, qs, levels, obs.copy())}
    fl = bench.fitted_level(issued)
    assert (fl["below_issued"] > 0.67).all()
    assert np.allclose(fl["below_fitted"], 0.5, atol=0.02), fl
    assert (fl["level"] < 0.5).all()


def test_patchy_rain_copy_blanks_only_rain_nested_by_rate_and_the_candidate_keeps_whole_windows(tiny_data_dir,
                                                                                              tmp_path):
    """bench/patchy_rain.py: a gapped copy differs from its source only in blanked rain cells, the days blanked at
    10 % are among those at 20 % (one draw per day), and the candidate sum is the plain sum on whole windows bit for
    bit and the days-present sum rescaled to the window where 6 of 7 days are present."""
    bench = _load_bench("patchy_rain")
    blanked = {r: bench.gapped_copy(tiny_data_dir, tmp_path / f"g{r}", r, seed=0) for r in (0.1, 0.2)}
    src = sorted((tiny_data_dir / "timeseries").glob("*.csv"))[0]
    a = pd.read_csv(src)
    g1, g2 = (pd.read_csv(tmp_path / f"g{r}" / "timeseries" / src.name) for r in (0.1, 0.2))
    for g in (g1, g2):
        pd.testing.assert_frame_equal(g.drop(columns="precipitation"), a.drop(columns="precipitation"))
        kept = g["precipitation"].notna()
        assert (g.loc[kept, "precipitation"] == a.loc[kept, "precipitation"]).all()
    gone1, gone2 = g1["precipitation"].isna(), g2["precipitation"].isna()
    assert (gone1 <= gone2).all() and 0.05 < gone1.mean() < 0.15 and 0.15 < gone2.mean() < 0.25
    assert blanked[0.1][src.name.split("_")[-2]] == int(gone1.sum())
    p = a["precipitation"]
    assert np.array_equal(bench.rescaled_sum(p, 30, 0.8), p.rolling(30, min_periods=30).sum().to_numpy(),
                          equal_nan=True)
    q = pd.Series([1.0, 2.0, np.nan, 4.0, 5.0, 6.0, 7.0, np.nan, 9.0])
    s = bench.rescaled_sum(q, 7, 0.8)
    assert np.isnan(s[:6]).all() and s[6] == (1 + 2 + 4 + 5 + 6 + 7) * 7 / 6 and np.isnan(s[7]) and np.isnan(s[8])
