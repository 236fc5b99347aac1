"""Prediction: API, outputs, denormalisation, gaps, glob resolution, batching equivalence."""

import json
import os
import re
import shutil
import time

import numpy as np
import pandas as pd
import pytest
import torch

from sca2lstm.evaluation.predict import predict, resolve_model_path, write_prediction
from sca2lstm.errors import DataError

from conftest import TINY_PERIODS
from tolerance import forecast_tol


def test_predict_api_returns_series_in_m3s(pretrained_ckpt, tiny_data_dir):
    p = predict(pretrained_ckpt, 32006, data_dir=tiny_data_dir)
    s = p.series
    assert list(s.columns) == ["date", "observed", "predicted", "persistence", "input_gap"]
    assert str(s["date"].iloc[0].date()) == TINY_PERIODS["test_start"]
    assert str(s["date"].iloc[-1].date()) == TINY_PERIODS["test_end"]
    raw = pd.read_csv(next((tiny_data_dir / "timeseries").glob("*_32006_*.csv")), parse_dates=["date"])
    raw = raw.set_index("date")["discharge_vol"]
    np.testing.assert_allclose(s["observed"].to_numpy(), raw.loc[s["date"]].to_numpy(), rtol=1e-6)
    # persistence is yesterday's observation
    np.testing.assert_allclose(s["persistence"].to_numpy(), raw.shift(1).loc[s["date"]].to_numpy(), rtol=1e-6)
    # predictions are on the observed scale (m3/s), not standardised units
    obs_mean = np.nanmean(s["observed"])
    assert 0.2 * obs_mean < np.nanmean(s["predicted"]) < 5 * obs_mean
    assert (s["predicted"].dropna() >= 0).all()   # clamped at 0 m3/s, as the issue-time forecasts are
    assert p.metrics["n_days"] > 300
    assert set(p.metrics["model"]) >= {"nse", "kge", "kge_r", "kge_alpha", "kge_beta", "rmse", "mae", "pbias", "r2"}


def test_forecasts_run_through_gaps(pretrained_ckpt, tiny_data_dir, tmp_path):
    gappy = tmp_path / "gappy"
    shutil.copytree(tiny_data_dir, gappy)
    f = next((gappy / "timeseries").glob("*_32006_*.csv"))
    df = pd.read_csv(f)
    hole = (df["date"] >= "1976-03-01") & (df["date"] <= "1976-03-20")
    df.loc[hole, "discharge_vol"] = np.nan
    df.loc[hole & (df["date"] <= "1976-03-05"), "precipitation"] = np.nan
    df.to_csv(f, index=False)
    p = predict(pretrained_ckpt, "32006", data_dir=gappy)
    s = p.series.set_index("date")
    assert p.n_unpredicted == 0
    assert s.loc["1976-03-02":"1976-03-21", "input_gap"].all()  # lagged discharge missing there
    assert np.isfinite(s.loc["1976-03-01":"1976-03-20", "predicted"]).all()
    assert s.loc["1976-03-01":"1976-03-20", "observed"].isna().all()
    # scored days exclude the gap, for the model and persistence alike
    assert p.metrics["n_days"] == int((s["observed"].notna() & s["persistence"].notna()).sum())


@pytest.mark.slow
def test_write_prediction_outputs(pretrained_ckpt, tiny_data_dir, tmp_path):
    p = predict(pretrained_ckpt, "10002", data_dir=tiny_data_dir)
    folder = write_prediction(p, tmp_path)
    for name in ("series.csv", "metrics.json", "hydrograph.png", "attention_heatmap.png",
                 "attention_weights.csv", "report.html"):
        assert (folder / name).is_file(), name
    m = json.loads((folder / "metrics.json").read_text())
    assert m["n_days"] == p.metrics["n_days"] and "persistence" in m and "model" in m
    # what the scores were computed on: the folder and the bytes of the basin's data
    assert m["data"]["data_dir"] == str(tiny_data_dir) and m["data"]["builtin_synthetic"] is False
    assert len(m["data"]["basin_data_sha256"]) == 64
    w = pd.read_csv(folder / "attention_weights.csv")
    assert w.shape[1] == 1 + len(p.weights.columns)
    np.testing.assert_allclose(w.iloc[:, 1:].sum(axis=1), 1.0, atol=1e-3)
    assert not list(tmp_path.glob(".basin_*"))  # no temporary folders left


@pytest.mark.slow
def test_netcdf_output(pretrained_ckpt, tiny_data_dir, tmp_path):
    import xarray as xr

    p = predict(pretrained_ckpt, "10002", data_dir=tiny_data_dir)
    folder = write_prediction(p, tmp_path, fmt="netcdf")
    ds = xr.open_dataset(folder / "series.nc")
    assert ds["predicted"].attrs["units"] == "m3 s-1"
    np.testing.assert_allclose(ds["predicted"].values, p.series["predicted"].to_numpy(), rtol=1e-6)
    ds.close()


def test_the_prediction_figures_name_the_basin_and_period_in_their_titles(pretrained_ckpt, tiny_data_dir, tmp_path,
                                                                          monkeypatch):
    """A hydrograph or heatmap mailed on its own still says which basin and which days it shows."""
    from sca2lstm.evaluation import plots

    titles = {}
    monkeypatch.setattr(plots, "_save", lambda fig, path: titles.update({path.name: fig.get_suptitle()}) or path)
    write_prediction(predict(pretrained_ckpt, "10002", data_dir=tiny_data_dir), tmp_path)
    period = f"{TINY_PERIODS['test_start']}..{TINY_PERIODS['test_end']}"
    assert set(titles) == {"hydrograph.png", "attention_heatmap.png"}
    assert all("Basin 10002" in t and period in t for t in titles.values()), titles


def test_the_prediction_figures_name_the_model_they_show(pretrained_ckpt, tiny_data_dir, tmp_path, monkeypatch):
    """A pretrained and a fine-tuned model's hydrographs of one basin and period had the same title."""
    from sca2lstm.evaluation import plots

    titles = {}
    monkeypatch.setattr(plots, "_save", lambda fig, path: titles.update({path.name: fig.get_suptitle()}) or path)
    write_prediction(predict(pretrained_ckpt, "10002", data_dir=tiny_data_dir), tmp_path)
    assert set(titles) == {"hydrograph.png", "attention_heatmap.png"}
    assert all(t.startswith(f"Basin 10002 (model {pretrained_ckpt.name})") for t in titles.values()), titles


def test_glob_uses_newest_and_accepts_expanded_lists(pretrained_ckpt, tmp_path):
    a, b = tmp_path / "r1" / "best_model_basin_1.pth", tmp_path / "r2" / "best_model_basin_1.pth"
    for f in (a, b):
        f.parent.mkdir()
        shutil.copyfile(pretrained_ckpt, f)
    now = time.time()
    os.utime(a, (now - 100, now - 100))
    assert resolve_model_path(str(tmp_path / "*" / "best_model_basin_1.pth")) == b.resolve()
    assert resolve_model_path([str(a), str(b)]) == b.resolve()  # what the shell hands over
    with pytest.raises(DataError, match="no checkpoint matches"):
        resolve_model_path(str(tmp_path / "*" / "nothing.pth"))
    # a broader glob over several basins' runs: the newest of the basin's own, not another basin's newer model
    other = tmp_path / "r3" / "best_model_basin_2.pth"
    other.parent.mkdir()
    shutil.copyfile(pretrained_ckpt, other)
    assert resolve_model_path(str(tmp_path / "*" / "best_model_basin_*.pth")) == other.resolve()
    assert resolve_model_path(str(tmp_path / "*" / "best_model_basin_*.pth"), "1") == b.resolve()
    assert resolve_model_path(str(tmp_path / "*" / "best_model_basin_*.pth"), "9") == other.resolve()


def test_a_named_checkpoint_that_is_missing_or_a_folder_is_refused_beside_others(pretrained_ckpt, tmp_path, capsys):
    """`--model old.pth new.pth` with new.pth mistyped ran old.pth without a word; a path without a wildcard is the
    model meant, so one that is not a file is refused, beside others too (a glob matching nothing adds nothing)."""
    from sca2lstm.cli import predict as predict_cli

    missing = tmp_path / "sca2lstm_v2.pth"
    with pytest.raises(DataError, match=re.escape(f"checkpoint {missing} does not exist")):
        resolve_model_path([str(pretrained_ckpt), str(missing)])
    with pytest.raises(DataError, match=re.escape(f"checkpoint {tmp_path} is a folder, not a checkpoint")):
        resolve_model_path([str(tmp_path), str(pretrained_ckpt)])
    assert resolve_model_path([str(pretrained_ckpt), str(tmp_path / "*" / "none.pth")]) == pretrained_ckpt.resolve()
    rc = predict_cli.main(["--model", str(pretrained_ckpt), str(missing), "--basin", "32006",
                           "--output_dir", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 1 and err == [f"predict.py: error: checkpoint {missing} does not exist"]
    assert not (tmp_path / "out").exists()


def test_cli_guide_line(pretrained_ckpt, tiny_data_dir, tmp_path, capsys):
    from sca2lstm.cli.predict import main

    run = tmp_path / "fine_tune" / "basin_32006" / "20240101_000000"
    run.mkdir(parents=True)
    shutil.copyfile(pretrained_ckpt, run / "best_model_basin_32006.pth")
    rc = main(["--model", str(tmp_path / "fine_tune" / "basin_32006" / "*" / "best_model_basin_32006.pth"),
               "--basin", "32006", "--data_dir", str(tiny_data_dir), "--quiet"])
    assert rc == 0
    out = capsys.readouterr().out
    assert "32006" in out and "NSE" in out
    assert (run / "predictions" / "basin_32006" / "series.csv").is_file()


def test_chunked_forecast_matches_single_windows(pretrained_ckpt, tiny_data_dir):
    """Each day's forecast equals running the model on the window that forecasts it, in whatever batch."""
    from sca2lstm.data.dataset import SequenceData, chunk_starts, load_basin, load_static
    from sca2lstm.evaluation.forecast import forecast_periods
    from sca2lstm.checkpoint import load_model

    model, cfg, scalers, _ = load_model(pretrained_ckpt)
    rec = load_basin(tiny_data_dir, "32006", cfg)
    data = SequenceData([rec], load_static(tiny_data_dir, ["32006"], cfg), scalers, pad=cfg.training.seq_len)
    i0, i1 = rec.period(cfg.data.test_start, cfg.data.test_end)
    L, spin = cfg.training.seq_len, cfg.training.spinup
    a = forecast_periods(model, data, [(i0, i1)], L, spin, batch_size=512)[0].pred
    b = forecast_periods(model, data, [(i0, i1)], L, spin, batch_size=2)[0].pred
    # Not bit-equal: BLAS may sum a batch's products in another order for another number of rows, so a
    # window's scaled forecast is within the bound of an L-step recurrence, relative to max(1, |forecast|)
    # (tests/tolerance.py: 2e-4 here; a window misplaced by a day is off by 1e-2 or more).
    tol = forecast_tol(model, L) * max(1.0, float(np.nanmax(np.abs(a))))
    np.testing.assert_allclose(a, b, rtol=0, atol=tol)
    starts = chunk_starts(i0, i1, L, spin)
    x, miss, y, st, stm = (torch.from_numpy(v) for v in data.gather(np.array([0]), starts[1:2], L))
    with torch.no_grad():
        single = model(x, miss, st, stm, q_obs=y)[0, spin:].numpy()
    first = starts[1] + spin - i0
    np.testing.assert_allclose(a[first:first + L - spin], single[:len(a[first:first + L - spin])], rtol=0, atol=tol)


def test_checkpoint_from_before_the_cell_readout_still_loads(pretrained_ckpt, tiny_data_dir, tmp_path):
    """A checkpoint whose stored config has no model.cell_readout (written before the key existed) has
    no cell head: it loads as a model without one and forecasts as before. With the readout's weight
    at 0, a current checkpoint forecasts exactly the same."""
    from sca2lstm.checkpoint import load_model

    ckpt = torch.load(pretrained_ckpt, weights_only=True)
    assert ckpt["config"]["model"]["cell_readout"] is True
    ckpt["model_state_dict"]["cell_head.weight"].zero_()
    torch.save(ckpt, tmp_path / "new.pth")
    old = dict(ckpt, config={**ckpt["config"], "model": dict(ckpt["config"]["model"])},
               model_state_dict=dict(ckpt["model_state_dict"]))
    del old["config"]["model"]["cell_readout"], old["model_state_dict"]["cell_head.weight"]
    torch.save(old, tmp_path / "old.pth")
    model, cfg, _, _ = load_model(tmp_path / "old.pth")
    assert model.cell_head is None and cfg.model.cell_readout is False
    a = predict(tmp_path / "old.pth", 32006, data_dir=tiny_data_dir).series["predicted"].to_numpy()
    b = predict(tmp_path / "new.pth", 32006, data_dir=tiny_data_dir).series["predicted"].to_numpy()
    np.testing.assert_allclose(a, b, rtol=1e-6)


def test_cli_several_basins_writes_each_and_a_bad_one_costs_no_other(pretrained_ckpt, tiny_data_dir, tmp_path,
                                                                     capsys):
    """A basin whose file fails to read fails alone: the basins before and after it are written, the
    summary names it, the exit code is 1."""
    from sca2lstm.cli.predict import main

    data = tmp_path / "data"
    shutil.copytree(tiny_data_dir, data)
    next((data / "timeseries").glob("*_10002_*.csv")).write_text("date,precipitation\n1971-01-01,abc\n")
    out = tmp_path / "out"
    rc = main(["--model", str(pretrained_ckpt), "--basin", "32006", "10002", "10003", "--data_dir", str(data),
               "--output_dir", str(out), "--quiet"])
    cap = capsys.readouterr()
    assert rc == 1
    assert (out / "basin_32006" / "series.csv").is_file() and (out / "basin_10003" / "series.csv").is_file()
    assert not (out / "basin_10002").exists()
    assert "1 of 3 basins failed: 10002" in cap.err
    assert any(ln.split()[:2] == ["10002", "failed:"] for ln in cap.out.splitlines())


def test_the_attention_heatmap_names_each_input_in_words_with_its_unit_and_shows_the_names_whole(
        pretrained_ckpt, tiny_data_dir, tmp_path, monkeypatch):
    """A hydrologist reads "day of year, cosine" and "observed discharge 1 day earlier, m³/s", not "doy_cos" or
    "discharge_lag1"; the identifier stays beside the words (the CSV's column), and no name is cut off at the left."""
    from sca2lstm.evaluation import plots

    figs = {}
    monkeypatch.setattr(plots, "_save", lambda fig, path: figs.update({path.name: fig}) or path)
    p = predict(pretrained_ckpt, "10002", data_dir=tiny_data_dir)
    write_prediction(p, tmp_path)
    fig = figs["attention_heatmap.png"]
    fig.draw_without_rendering()
    ticks = fig.axes[0].get_yticklabels()
    shown = [t.get_text() for t in ticks]
    assert len(shown) == len(p.weights.columns)
    by_name = dict(zip(p.weights.columns, shown))
    assert by_name["precipitation"] == "precipitation, mm/d"
    assert by_name["doy_cos"] == "day of year, cosine [doy_cos]"
    assert by_name["discharge_lag1"] == "observed discharge 1 day earlier, m³/s [discharge_lag1]"
    assert not set(shown) & set(p.weights.columns)            # no bare identifier left
    assert min(t.get_window_extent().x0 for t in ticks) >= 0   # every name inside the picture


def _unrecorded_from_1976(tiny_data_dir, tmp_path):
    """A copy of the tiny data whose gauge 32006 recorded no flow from 1976 on (an outage, or days before it opened)."""
    unrecorded = tmp_path / "unrecorded"
    shutil.copytree(tiny_data_dir, unrecorded)
    f = next((unrecorded / "timeseries").glob("*_32006_*.csv"))
    df = pd.read_csv(f)
    df.loc[df["date"] >= "1976-01-01", "discharge_vol"] = np.nan
    df.to_csv(f, index=False)
    return unrecorded


def test_a_period_without_observed_flow_is_a_forecast_said_unscored_not_nse_nan(pretrained_ckpt, tiny_data_dir,
                                                                                tmp_path, capsys, monkeypatch):
    """Predicting days the gauge did not record (before it opened, a long outage) gives the forecast; the hydrograph's
    title and the printed table say there is nothing to score, rather than "NSE nan (persistence nan)", and the
    heatmap's empty flow panel has no flow scale."""
    from sca2lstm.cli.predict import main
    from sca2lstm.evaluation import plots

    unrecorded = _unrecorded_from_1976(tiny_data_dir, tmp_path)
    titles, figs = {}, {}
    monkeypatch.setattr(plots, "_save", lambda fig, path: titles.update({path.name: fig.get_suptitle()})
                        or figs.update({path.name: fig}) or path)
    rc = main(["--model", str(pretrained_ckpt), "--basin", "32006", "--data_dir", str(unrecorded),
               "--start", "1976-02-01", "--end", "1976-06-30", "--output_dir", str(tmp_path / "out"), "--quiet"])
    assert rc == 0
    series = pd.read_csv(tmp_path / "out" / "basin_32006" / "series.csv")
    assert series["observed"].isna().all() and series["predicted"].notna().all()   # the forecast is there
    assert "no observed discharge to score" in titles["hydrograph.png"] and "nan" not in titles["hydrograph.png"]
    flow_panel = next(ax for ax in figs["attention_heatmap.png"].axes if ax.get_ylabel().startswith("discharge"))
    assert not flow_panel.lines and not len(flow_panel.get_yticks())   # no made-up 0..1 flow scale
    out = capsys.readouterr().out
    assert "basin 32006 (1976-02-01..1976-06-30): no observed discharge on these days, so nothing to score" in out


def test_the_metrics_of_a_period_without_observed_flow_are_strict_json_with_null_scores(pretrained_ckpt,
                                                                                       tiny_data_dir, tmp_path):
    """NaN is not JSON: jq, R's jsonlite and a browser refuse a file with it. A score that cannot be computed is null."""
    unrecorded = _unrecorded_from_1976(tiny_data_dir, tmp_path)
    folder = write_prediction(predict(pretrained_ckpt, "32006", "1976-02-01", "1976-03-31", data_dir=unrecorded),
                              tmp_path / "out")

    def refuse(name):
        raise ValueError(f"{name} is not JSON")

    m = json.loads((folder / "metrics.json").read_text(), parse_constant=refuse)
    assert m["model"]["nse"] is None and m["persistence"]["kge"] is None and m["n_days"] == 0


def test_a_prediction_of_another_period_says_it_replaced_the_earlier_one(pretrained_ckpt, tiny_data_dir, tmp_path,
                                                                         caplog):
    """predictions/basin_<id>/ is named by the basin alone: a second run for other days replaces the first's
    outputs, and says so (which days were replaced, and how to keep both), rather than silently."""
    import logging

    write_prediction(predict(pretrained_ckpt, "10002", "1976-01-01", "1976-06-30", data_dir=tiny_data_dir), tmp_path)
    with caplog.at_level(logging.INFO, logger="sca2lstm.evaluation.predict"):
        write_prediction(predict(pretrained_ckpt, "10002", "1976-01-01", "1976-06-30", data_dir=tiny_data_dir),
                         tmp_path)
        assert "replaced" not in caplog.text                      # the same days again: nothing lost
        folder = write_prediction(predict(pretrained_ckpt, "10002", "1976-07-01", "1976-12-31",
                                          data_dir=tiny_data_dir), tmp_path)
    said = [r for r in caplog.records if "replaced" in r.getMessage()]
    assert len(said) == 1 and said[0].levelno == logging.WARNING
    assert "1976-01-01..1976-06-30" in said[0].getMessage() and "--output_dir" in said[0].getMessage()
    assert json.loads((folder / "metrics.json").read_text())["start"] == "1976-07-01"


def test_a_prediction_too_short_for_an_nse_says_so_in_its_hydrographs_title(pretrained_ckpt, tiny_data_dir, tmp_path,
                                                                           capsys):
    """One observed day has no variance to score against: the title and the printed table say too few days, not
    only "NSE nan"."""
    from sca2lstm.evaluation.predict import score_text

    one_day = predict(pretrained_ckpt, "10002", "1976-03-01", "1976-03-01", data_dir=tiny_data_dir)
    assert score_text(one_day) == "too few observed days to score (1)"
    from sca2lstm.cli.predict import main

    capsys.readouterr()
    assert main(["--model", str(pretrained_ckpt), "--basin", "10002", "--data_dir", str(tiny_data_dir), "--start",
                 "1976-03-01", "--end", "1976-03-01", "--output_dir", str(tmp_path), "--quiet"]) == 0
    assert ("basin 10002 (1976-03-01..1976-03-01, 1 observed): too few observed days, or a flow that never changed, "
            "for an NSE (nan)") in capsys.readouterr().out
    year = predict(pretrained_ckpt, "10002", data_dir=tiny_data_dir)
    assert score_text(year) == (f"NSE {year.metrics['model']['nse']:.3f} "
                                f"(persistence {year.metrics['persistence']['nse']:.3f})")


def test_the_blend_line_names_the_model_it_is_about(pretrained_ckpt, tiny_data_dir, caplog):
    """A run that predicts with two models (the demo: pretrained, then fine-tuned) logs a blend line for each; each
    names its model, so two alike lines do not leave the reader guessing which is which."""
    import logging

    with caplog.at_level(logging.INFO, logger="sca2lstm"):
        predict(pretrained_ckpt, "32006", "1976-01-01", "1976-03-31", data_dir=tiny_data_dir)
    lines = [r.getMessage() for r in caplog.records if "persistence blend" in r.getMessage()]
    assert len(lines) == 1 and f"model {pretrained_ckpt.name})" in lines[0], lines


def test_a_test_part_without_observed_flow_is_refused_naming_it_and_the_earlier_scores_are_kept(
        pretrained_ckpt, tiny_data_dir, tmp_path, capsys):
    """The test part a fine-tuned checkpoint stored, run by default, has nothing to score once the gauge's flows of
    those days are gone (a re-import without them): one line naming the part and the flags that help, a non-zero
    exit, and the basin's earlier scored prediction left as it was, not replaced by an unscored one."""
    from sca2lstm.cli.predict import main
    from sca2lstm.training.finetune import finetune

    ft = finetune(pretrained_ckpt, "32006", {"epochs": 0}, data_dir=tiny_data_dir, out_root=tmp_path / "ft",
                  progress=False)["checkpoint"]
    out = tmp_path / "out"
    assert main(["--model", str(ft), "--basin", "32006", "--data_dir", str(tiny_data_dir), "--output_dir", str(out),
                 "--quiet"]) == 0
    scored = (out / "basin_32006" / "metrics.json").read_bytes()
    capsys.readouterr()
    unrecorded = _unrecorded_from_1976(tiny_data_dir, tmp_path)
    rc = main(["--model", str(ft), "--basin", "32006", "--data_dir", str(unrecorded), "--output_dir", str(out),
               "--quiet"])
    assert rc != 0
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert f"no observed discharge in its test part {TINY_PERIODS['test_start']}..{TINY_PERIODS['test_end']}" in err
    assert "--test_start" in err and "--start and --end" in err
    assert (out / "basin_32006" / "metrics.json").read_bytes() == scored
    with pytest.raises(DataError, match="nothing to score"):
        predict(ft, "32006", data_dir=unrecorded)
    # days named by the user are a forecast of its own, scored or not
    assert predict(ft, "32006", "1976-02-01", "1976-03-31", data_dir=unrecorded).metrics["model_all_days"]["n_days"] == 0


def test_the_inputs_missing_on_the_forecast_days_are_counted_in_one_line(pretrained_ckpt, tiny_data_dir, tmp_path,
                                                                         caplog):
    """A rain gauge that stopped for the test year: predict scores a model that read no rain, and says so in one line,
    the input named with its count and that it was missing every day, as fine-tuning counts its training part's."""
    blind = tmp_path / "no_rain_1976"
    shutil.copytree(tiny_data_dir, blind)
    f = next((blind / "timeseries").glob("*_32006_*.csv"))
    df = pd.read_csv(f)
    df.loc[df["date"] >= "1976-01-01", "precipitation"] = np.nan
    df.loc[df["date"].between("1976-03-01", "1976-03-10"), "temperature"] = np.nan
    df.to_csv(f, index=False)
    with caplog.at_level("WARNING", logger="sca2lstm"):
        p = predict(pretrained_ckpt, "32006", data_dir=blind)
    assert p.metrics["n_days"] > 300
    lines = [r.getMessage() for r in caplog.records if "missing input values" in r.getMessage()]
    assert lines == [f"basin 32006: 376 missing input values in the forecast period {TINY_PERIODS['test_start']}.."
                     f"{TINY_PERIODS['test_end']} (precipitation: 366 (every day), temperature: 10); they are masked"]


@pytest.mark.slow
def test_the_outputs_say_whether_the_model_trained_on_the_basin_or_never_saw_it(pretrained_ckpt, tiny_data_dir,
                                                                                tmp_path):
    """A pretrained model runs on a station it never trained on (allowed: its discharge scale is fitted on the
    station's training days), but only the terminal said so: metrics.json (and the report and forecast.json, which
    carry its data record) read alike for a basin the model learned and one it never saw."""
    from sca2lstm.checkpoint import atomic_torch_save
    from sca2lstm.evaluation.context import BasinContext

    data = tmp_path / "data"
    shutil.copytree(tiny_data_dir, data)
    (src,) = (data / "timeseries").glob("*_10002_*.csv")
    shutil.copy(src, data / "timeseries" / "99001.csv")
    p = predict(pretrained_ckpt, "99001", data_dir=data)
    m = json.loads((write_prediction(p, tmp_path / "out") / "metrics.json").read_text())
    assert m["data"]["basin_in_model"] == "unseen"
    assert m["data"]["discharge_scale"] == "fitted on its training days 1971-01-01..1974-12-31"
    known = BasinContext.resolve(pretrained_ckpt, data, "10002").data_record()
    assert (known["basin_in_model"], known["discharge_scale"]) == ("pretrained", "checkpoint")
    ck = torch.load(pretrained_ckpt, weights_only=True)
    tuned = atomic_torch_save({**ck, "finetuned_basin": "10002"}, tmp_path / "best_model_basin_10002.pth")
    assert BasinContext.resolve(tuned, data, "10002").data_record()["basin_in_model"] == "fine-tuned"
    assert BasinContext.resolve(tuned, data, "10003").data_record()["basin_in_model"] == "pretrained"
