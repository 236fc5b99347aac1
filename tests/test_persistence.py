"""Never worse than persistence: the per-basin blend, its fit, and its place in train/predict."""

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import make_tiny_config
from tolerance import forecast_tol
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from sca2lstm.evaluation.metrics import paired_metrics
from sca2lstm.evaluation.persistence import apply_blend, fit_blend, skill_vs_persistence


def _sse(o, f):
    ok = np.isfinite(o) & np.isfinite(f)
    return float(np.square(f[ok] - o[ok]).sum())


def _random_case(seed, n=200):
    rng = np.random.default_rng(seed)
    obs = np.cumsum(rng.normal(size=n)) + 10
    pers = np.r_[np.nan, obs[:-1]]
    model = obs + rng.normal(scale=rng.uniform(0.2, 3.0), size=n) + rng.normal()
    return obs, model, pers


@pytest.mark.parametrize("seed", range(6))
def test_closed_form_alpha_is_the_grid_minimum(seed):
    obs, model, pers = _random_case(seed)
    fit = fit_blend(obs, model, pers)
    grid = np.linspace(0, 1, 20001)
    ok = np.isfinite(obs) & np.isfinite(model) & np.isfinite(pers)
    errs = [_sse(obs[ok], a * model[ok] + (1 - a) * pers[ok]) for a in grid]
    best = grid[int(np.argmin(errs))]
    assert abs(fit.alpha - best) <= 1e-4
    assert _sse(obs[ok], apply_blend(model, pers, fit.alpha)[ok]) <= min(errs) + 1e-9 * max(1.0, min(errs))


def test_alpha_clipped_and_degenerate_cases():
    obs = np.arange(10.0)
    pers = np.r_[np.nan, obs[:-1]]
    assert fit_blend(obs, obs, pers).alpha == 1.0                      # the perfect model: all model
    assert fit_blend(obs, pers, pers).alpha == 1.0                     # model == persistence: nothing to fit
    assert fit_blend(obs, 2 * pers - obs, pers).alpha == 0.0           # a model pointing the wrong way: clipped
    assert fit_blend(obs, obs + 100, pers).alpha < 0.05
    empty = fit_blend(obs, np.full(10, np.nan), pers)
    assert empty.alpha == 1.0 and empty.n_days == 0 and np.isnan(empty.skill_model)


def test_vectorised_over_basins_equals_one_by_one():
    cases = [_random_case(s) for s in range(4)]
    obs, model, pers = (np.stack(x) for x in zip(*cases))
    fit = fit_blend(obs, model, pers)
    assert fit.alpha.shape == (4,)
    for j, c in enumerate(cases):
        one = fit_blend(*c)
        assert fit.alpha[j] == pytest.approx(one.alpha, rel=1e-12)
        assert fit.skill_blend[j] == pytest.approx(one.skill_blend, rel=1e-12)
    blended = apply_blend(model, pers, fit.alpha)
    np.testing.assert_allclose(blended[2], apply_blend(model[2], pers[2], fit.alpha[2]))


def test_same_alpha_in_scaled_and_physical_units():
    obs, model, pers = _random_case(3)
    a = fit_blend(obs, model, pers).alpha
    b = fit_blend(obs * 7.5 + 3, model * 7.5 + 3, pers * 7.5 + 3).alpha
    assert a == pytest.approx(b, rel=1e-10)


def test_skill_vs_persistence_values_and_in_paired_metrics():
    obs, model, pers = _random_case(1)
    assert skill_vs_persistence(obs, pers, pers) == 0.0
    assert skill_vs_persistence(obs, obs, pers) == 1.0
    assert np.isnan(skill_vs_persistence(obs, model, obs))  # persistence without error: undefined
    m = paired_metrics(obs, model, pers)
    def mse(f):
        return np.nanmean((f[1:] - obs[1:]) ** 2)

    assert m["model"]["skill_vs_persistence"] == pytest.approx(1 - mse(model) / mse(pers))
    assert paired_metrics(np.stack([obs, obs]), np.stack([model, pers]), pers)["model"]["skill_vs_persistence"].shape == (2,)


finite = st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False)
maybe_nan = st.one_of(finite, st.just(np.nan))


@settings(max_examples=200, deadline=None)
@given(arrays(np.float64, (3, 30), elements=maybe_nan))
def test_blend_never_worse_than_either_on_the_fitting_days(x):
    obs, model, pers = x
    fit = fit_blend(obs, model, pers)
    assert 0.0 <= fit.alpha <= 1.0
    ok = np.isfinite(obs) & np.isfinite(model) & np.isfinite(pers)
    blend = apply_blend(model, pers, fit.alpha)
    e_b, e_m, e_p = (_sse(obs[ok], f[ok]) for f in (blend, model, pers))
    tol = 1e-9 * (1.0 + e_m + e_p)
    assert e_b <= e_m + tol and e_b <= e_p + tol
    if np.isfinite(fit.skill_blend):
        assert fit.skill_blend >= -1e-9 and fit.skill_blend >= fit.skill_model - 1e-9
    # where persistence is unknown the blend is the model itself
    np.testing.assert_array_equal(blend[~np.isfinite(pers)], model[~np.isfinite(pers)])


# --------------------------------------------------------------------------------------------------
# in training and prediction
# --------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def recession_dir(tmp_path_factory):
    """Two synthetic basins whose discharge is a slow exponential recession with small rain pulses.

    q(t) = 0.999 q(t-1) + 0.001 P(t) + 0.3 (1 - 0.999): persistence explains nearly everything.
    """
    from sca2lstm.data.synthetic import generate_synthetic

    d = tmp_path_factory.mktemp("recession") / "camels"
    generate_synthetic(d, n_basins=2, seed=11, end="1977-12-31")
    for f in sorted((d / "timeseries").glob("*.csv")):
        df = pd.read_csv(f)
        p = df["precipitation"].fillna(0).to_numpy()
        q = np.empty(len(df))
        q[0] = 1.0
        for t in range(1, len(df)):
            q[t] = 0.999 * q[t - 1] + 0.001 * p[t] + 0.3 * 0.001
        ratio = df["discharge_spec"].mean() / df["discharge_vol"].mean()
        df["discharge_vol"] = np.round(q, 4)
        df["discharge_spec"] = np.round(q * ratio, 4)
        df.to_csv(f, index=False)
    return d


@pytest.mark.slow
def test_recession_basin_not_worse_than_persistence_on_validation(recession_dir, tmp_path, caplog):
    """A basin where yesterday's flow explains nearly all: pretrained and fine-tuned for a few epochs,
    the forecast (what predict returns) is not worse than persistence on the validation days."""
    from sca2lstm.evaluation.predict import predict
    from sca2lstm.training.finetune import finetune
    from sca2lstm.training.pretrain import pretrain

    cfg = make_tiny_config(recession_dir, training={"epochs": 3})
    out = pretrain(cfg, tmp_path / "pre.pth", data_dir=recession_dir, progress=False)
    basin = out["prepared"].basins[0]
    val = predict(out["checkpoint"], basin, cfg.data.val_start, cfg.data.val_end, data_dir=recession_dir)
    assert val.metrics["persistence"]["nse"] > 0.99
    assert val.metrics["persistence_blend"]["source"] == "stored in the checkpoint"
    assert val.metrics["model"]["skill_vs_persistence"] >= 0.0
    assert val.metrics["model"]["skill_vs_persistence"] >= val.metrics["model_raw"]["skill_vs_persistence"] - 1e-9
    assert val.metrics["model"]["nse"] >= val.metrics["persistence"]["nse"] - 1e-9

    ft = finetune(out["checkpoint"], basin, {"epochs": 2, "batch_size": 8, "epoch_coverage": 0.5},
                  data_dir=recession_dir, out_root=tmp_path / "ft", progress=False)
    blend = ft["persistence_blend"]
    assert 0.0 <= blend["alpha"] <= 1.0 and blend["skill_blend"] >= 0.0
    if blend["skill_model"] < 0:  # the fine-tune says so, and how the blend resolved it
        assert f"the persistence blend (alpha={blend['alpha']:.3f}) resolves it" in caplog.text
    ck = torch.load(ft["checkpoint"], weights_only=True)
    assert ck["persistence_blend"] == {basin: blend["alpha"]}
    html = (ft["run_dir"] / "report.html").read_text()  # before/after side by side, the blend below
    assert "<h4>after</h4>" in html and "alpha" in html
    # predict over the fine-tune's validation part gives the same windows, so the same scores
    lo, hi = _ft_val_dates(ft["run_dir"])
    p = predict(ft["checkpoint"], basin, lo, hi, data_dir=recession_dir)
    assert p.metrics["model"]["skill_vs_persistence"] == pytest.approx(blend["skill_blend"], abs=1e-4)
    assert p.metrics["model"]["skill_vs_persistence"] >= 0.0


def _ft_val_dates(run_dir):
    import json

    return json.loads((run_dir / "config.json").read_text())["split"]["validation"]


@pytest.mark.slow
def test_zero_shot_fit_reproduces_the_pretraining_fit(pretrained_ckpt, tiny_data_dir, tmp_path):
    """A basin the checkpoint has no weight for gets it fitted on its validation period at predict time:
    the same forecasts as pretraining's, so the same weight. Its test days are never used."""
    from sca2lstm.checkpoint import load_model
    from sca2lstm.data.dataset import SequenceData, load_basin, load_static
    from sca2lstm.evaluation.forecast import forecast_periods
    from sca2lstm.evaluation.persistence import scaled_triplet
    from sca2lstm.evaluation.predict import predict

    ck = torch.load(pretrained_ckpt, weights_only=True)
    stored = ck["persistence_blend"]
    assert set(stored) == {"32006", "10002", "10003"} and all(0 <= a <= 1 for a in stored.values())
    assert all(type(a) is float for a in stored.values())
    torch.save(dict(ck, persistence_blend={}), tmp_path / "none_stored.pth")
    p = predict(tmp_path / "none_stored.pth", "10002", data_dir=tiny_data_dir)
    assert p.metrics["persistence_blend"]["source"].startswith("fitted on the validation period")
    # Pretraining forecast the validation days of the three basins in one batch, predict() 10002's alone: the
    # same windows, up to float32 rounding in another order, delta = forecast_tol (tests/tolerance.py). The
    # weight a = sum(d r) / sum(d^2), d = model - persistence, r = obs - persistence (scaled), then moves by at
    # most (delta sum|r| + a (2 delta sum|d| + n delta^2)) / (sum(d^2) - 2 delta sum|d| - n delta^2).
    model, cfg, scalers, _ = load_model(pretrained_ckpt)
    rec = load_basin(tiny_data_dir, "10002", cfg)
    data = SequenceData([rec], load_static(tiny_data_dir, ["10002"], cfg), scalers, pad=cfg.training.seq_len)
    fc = forecast_periods(model, data, [rec.period(cfg.data.val_start, cfg.data.val_end)], cfg.training.seq_len,
                          cfg.training.spinup)[0]
    o, m, pers = scaled_triplet(data, fc, cfg.data.lead_days)
    ok = np.isfinite(o) & np.isfinite(m) & np.isfinite(pers)
    d, r, n, a = (m - pers)[ok], (o - pers)[ok], int(ok.sum()), stored["10002"]
    delta = forecast_tol(model, cfg.training.seq_len) * max(1.0, float(np.abs(m[ok]).max()))
    moved = 2 * delta * np.abs(d).sum() + n * delta ** 2          # the most sum(d^2) moves
    d_alpha = (delta * np.abs(r).sum() + a * moved) / (np.square(d).sum() - moved)
    assert p.metrics["persistence_blend"]["alpha"] == pytest.approx(a, abs=d_alpha)
    q = predict(pretrained_ckpt, "10002", data_dir=tiny_data_dir)
    # the same raw forecasts blended with the two weights: a * model + (1 - a) * persistence
    gap = np.nanmax(np.abs(q.predicted_raw - q.series["persistence"].to_numpy()))
    np.testing.assert_allclose(p.series["predicted"], q.series["predicted"], rtol=0, atol=d_alpha * gap)
    # the series is the blend of the raw model with persistence, the raw model scored beside it
    s = q.series
    np.testing.assert_allclose(s["predicted"], apply_blend(q.predicted_raw, s["persistence"], stored["10002"]))
    assert q.metrics["model_raw"]["nse"] == pytest.approx(
        paired_metrics(s["observed"], q.predicted_raw, s["persistence"])["model"]["nse"])


@pytest.mark.slow
def test_checkpoint_without_blend_predicts_as_before(pretrained_ckpt, tiny_data_dir, tmp_path):
    """A checkpoint written before the blend (no key in its config nor at the top) loads with the blend
    off and forecasts the raw model, exactly what a current checkpoint's model forecasts before blending."""
    from sca2lstm.evaluation.predict import predict, write_prediction
    from sca2lstm.checkpoint import load_model

    ck = torch.load(pretrained_ckpt, weights_only=True)
    old = dict(ck, config={**ck["config"], "model": dict(ck["config"]["model"])})
    del old["config"]["model"]["persistence_blend"], old["persistence_blend"]
    torch.save(old, tmp_path / "old.pth")
    assert load_model(tmp_path / "old.pth")[1].model.persistence_blend is False
    a = predict(tmp_path / "old.pth", "32006", data_dir=tiny_data_dir)
    b = predict(pretrained_ckpt, "32006", data_dir=tiny_data_dir)
    assert a.metrics["persistence_blend"]["alpha"] is None
    np.testing.assert_array_equal(a.series["predicted"], a.predicted_raw)
    np.testing.assert_allclose(a.series["predicted"], b.predicted_raw, rtol=1e-6)
    folder = write_prediction(a, tmp_path / "out")
    import json

    m = json.loads((folder / "metrics.json").read_text())
    assert m["persistence_blend"]["alpha"] is None
    assert set(m["below_persistence"]) == {"model", "model_raw"}
    assert m["model_raw"]["nse"] == pytest.approx(m["model"]["nse"])


def test_below_persistence_flagged_in_table_and_report(pretrained_ckpt, tiny_data_dir, tmp_path, capsys):
    """predict.py prints the skill, and a basin below persistence is flagged in the table, metrics.json
    and the report (a zero-weight blend is persistence itself; a forced bad weight is flagged)."""
    import json

    from sca2lstm.cli.predict import main

    ck = torch.load(pretrained_ckpt, weights_only=True)
    ck["model_state_dict"]["predict_head.bias"] += 3.0  # a model far off: worse than persistence
    ck["persistence_blend"] = {b: 1.0 for b in ck["persistence_blend"]}  # and no blend to save it
    torch.save(ck, tmp_path / "bad.pth")
    assert main(["--model", str(tmp_path / "bad.pth"), "--basin", "32006", "--data_dir", str(tiny_data_dir),
                 "--output_dir", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    assert "BELOW PERSISTENCE" in out and "WARNING: the model is below persistence" in out
    m = json.loads((tmp_path / "out" / "basin_32006" / "metrics.json").read_text())
    assert m["below_persistence"] == {"model": True, "model_raw": True}
    assert "Below persistence" in (tmp_path / "out" / "basin_32006" / "report.html").read_text()


@pytest.mark.slow
def test_bench_persistence_quick(pretrained_ckpt, tiny_data_dir, tmp_path, capsys):
    """bench/persistence.py --quick runs, writes its files, and its counts agree with its table."""
    import json

    from test_bench_smoke import _load_bench

    bench = _load_bench("persistence")
    assert bench.main(["--model", str(pretrained_ckpt), "--data_dir", str(tiny_data_dir), "--quick",
                       "--out", str(tmp_path / "b")]) == 0
    df = pd.read_csv(tmp_path / "b" / "per_basin.csv", dtype={"basin": str})
    sm = json.loads((tmp_path / "b" / "summary.json").read_text())
    assert len(df) == 3 and df["alpha"].between(0, 1).all() and df["baseflow_index"].notna().all()
    assert sm["below_persistence"]["raw"]["n"] == int((df["skill_raw"] < 0).sum())
    assert sm["below_persistence"]["blend"]["n"] == int((df["skill_blend"] < 0).sum())
    assert sm["nse"]["blend"]["median"] == pytest.approx(df["nse_blend"].median(), abs=1e-4)
    assert (tmp_path / "b" / "persistence_skill.png").stat().st_size > 1000
    assert "below persistence (skill < 0): raw" in capsys.readouterr().out


@pytest.mark.slow
def test_finetune_of_an_old_checkpoint_uses_the_blend(pretrained_ckpt, tiny_data_dir, tmp_path):
    """The old checkpoint keeps forecasting raw; the checkpoint its fine-tune writes has the blend."""
    from sca2lstm.training.finetune import finetune

    ck = torch.load(pretrained_ckpt, weights_only=True)
    old = dict(ck, config={**ck["config"], "model": dict(ck["config"]["model"])})
    del old["config"]["model"]["persistence_blend"], old["persistence_blend"]
    torch.save(old, tmp_path / "old.pth")
    r = finetune(tmp_path / "old.pth", "32006", {"epochs": 1, "batch_size": 8, "epoch_coverage": 0.5},
                 data_dir=tiny_data_dir, out_root=tmp_path / "ft", progress=False)
    ft = torch.load(r["checkpoint"], weights_only=True)
    assert ft["config"]["model"]["persistence_blend"] is True
    assert ft["persistence_blend"] == {"32006": r["persistence_blend"]["alpha"]}
