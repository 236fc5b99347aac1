"""Operational forecasts (evaluation/operational.py): causality, consistency with the batched path,
ordering, and one-line errors for bad input."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from sca2lstm.data import camels_gb
from sca2lstm.data.dataset import SequenceData, load_basin, load_static
from sca2lstm.data.features import required_columns
from sca2lstm.errors import DataError, UsageError
from sca2lstm.evaluation.operational import issue_forecast, issue_time_hindcasts
from sca2lstm.checkpoint import load_model
from tolerance import assert_forecasts_close

ISSUE = "1976-06-15"


@pytest.fixture(scope="module")
def bundle(pretrained_ckpt):
    return load_model(pretrained_ckpt)


@pytest.fixture(scope="module")
def series(bundle, tiny_data_dir):
    return camels_gb.read_timeseries(tiny_data_dir, "32006", columns=required_columns(bundle[1]))


def _weather(series, cfg, start, n):
    cols = [c for c in required_columns(cfg) if c != cfg.data.target]
    w = series.loc[pd.Timestamp(start) + pd.Timedelta(days=1):, cols].iloc[:n]
    return w.reset_index()


def test_table_layout_ordered_and_non_negative(bundle, tiny_data_dir):
    fc = issue_forecast(bundle, "32006", data_dir=tiny_data_dir, issue_date=ISSUE, leads=7)
    t = fc.table
    assert list(t.columns) == ["issue_date", "valid_date", "lead_days", "median", "q05", "q25", "q75", "q95",
                               "setting"]
    assert t["lead_days"].tolist() == list(range(1, 8)) and (t["setting"] == "issue-time").all()
    assert (t["valid_date"] - t["issue_date"]).dt.days.tolist() == list(range(1, 8))
    q = t[["q05", "q25", "median", "q75", "q95"]].to_numpy()
    assert (q >= 0).all() and (np.diff(q, axis=1) >= 0).all()
    assert abs(fc.weights.sum() - 1) < 1e-5 and len(fc.history) == 60
    assert fc.history["date"].iloc[-1] == pd.Timestamp(ISSUE)
    assert fc.model_path is not None and fc.seconds > 0


def test_default_issue_date_is_the_last_observed_day(bundle, tiny_data_dir, series):
    fc = issue_forecast(bundle, "32006", data_dir=tiny_data_dir, leads=2)
    assert fc.issue_date == series["discharge_vol"].last_valid_index()


@pytest.mark.parametrize("with_weather", [False, True])
def test_nothing_after_the_issue_date_changes_the_forecast(bundle, tiny_data_dir, series, with_weather):
    """Causality on the data: every input and discharge after the issue date perturbed (and some
    erased); on the model path: the same call twice gives the same forecast."""
    cfg = bundle[1]
    wf = _weather(series, cfg, ISSUE, 7) if with_weather else None
    base = issue_forecast(bundle, "32006", data_dir=tiny_data_dir, issue_date=ISSUE, weather_forecast=wf,
                          timeseries=series)
    again = issue_forecast(bundle, "32006", data_dir=tiny_data_dir, issue_date=ISSUE, weather_forecast=wf,
                           timeseries=series)
    pd.testing.assert_frame_equal(base.table, again.table)
    changed = series.copy()
    after = changed.index > pd.Timestamp(ISSUE)
    rng = np.random.default_rng(0)
    changed.loc[after] = changed.loc[after].to_numpy() * rng.uniform(0, 5, size=(after.sum(), changed.shape[1]))
    changed.loc[changed.index[after][::3], "discharge_vol"] = np.nan
    fc = issue_forecast(bundle, "32006", data_dir=tiny_data_dir, issue_date=ISSUE, weather_forecast=wf,
                        timeseries=changed)
    pd.testing.assert_frame_equal(base.table, fc.table)
    pd.testing.assert_series_equal(base.weights, fc.weights)
    # ... while the issue day's own discharge does change it (the test can fail)
    before = series.copy()
    before.loc[pd.Timestamp(ISSUE), "discharge_vol"] *= 3
    moved = issue_forecast(bundle, "32006", data_dir=tiny_data_dir, issue_date=ISSUE, weather_forecast=wf,
                           timeseries=before)
    assert not np.allclose(moved.table["median"], base.table["median"])


def test_fewer_leads_are_the_first_rows_and_weather_changes_the_setting(bundle, tiny_data_dir, series):
    full = issue_forecast(bundle, "32006", data_dir=tiny_data_dir, issue_date=ISSUE, leads=7)
    three = issue_forecast(bundle, "32006", data_dir=tiny_data_dir, issue_date=ISSUE, leads=3)
    pd.testing.assert_frame_equal(three.table, full.table.iloc[:3])
    wf = issue_forecast(bundle, "32006", data_dir=tiny_data_dir, issue_date=ISSUE, leads=3,
                        weather_forecast=_weather(series, bundle[1], ISSUE, 3))
    assert (wf.table["setting"] == "issue-time+weather-forecast").all()
    assert not np.allclose(wf.table["median"], three.table["median"])


@pytest.mark.parametrize("weather", ["none", "perfect"])
def test_batched_hindcasts_match_the_api(bundle, tiny_data_dir, series, weather):
    model, cfg, scalers, _ = bundle
    rec = load_basin(tiny_data_dir, "32006", cfg)
    data = SequenceData([rec], load_static(tiny_data_dir, ["32006"], cfg), scalers, pad=cfg.training.seq_len)
    i = rec.index_of(ISSUE)
    leads = cfg.training.forecast_leads
    (h,) = issue_time_hindcasts(model, data, [(i - 1, i + 2)], leads, weather, seq_len=cfg.training.seq_len)
    wf = _weather(series, cfg, ISSUE, leads) if weather == "perfect" else None
    fc = issue_forecast(bundle, "32006", data_dir=tiny_data_dir, issue_date=ISSUE, leads=leads, weather_forecast=wf)
    # the issue day's window in a batch of three against alone: equal up to float32 rounding in another
    # order (tests/tolerance.py, flow_tol)
    assert_forecasts_close({"median": h.median[1], "q05": h.quantiles[1, :, 0]}, fc.table, bundle, "32006",
                           ("median", "q05"))
    obs = series["discharge_vol"]
    np.testing.assert_allclose(h.observed[1], obs.loc[fc.table["valid_date"]].to_numpy(), rtol=1e-5)
    assert h.last_obs[1] == pytest.approx(obs.loc[:ISSUE].dropna().iloc[-1], rel=1e-5)


def test_bad_input_one_line_each(bundle, tiny_data_dir, series):
    cfg = bundle[1]

    def run(**kw):
        args = {"data_dir": tiny_data_dir, "issue_date": ISSUE, **kw}
        return issue_forecast(bundle, "32006", **args)

    with pytest.raises(UsageError, match=r"--leads 8: expected an integer from 1 to 7"):
        run(leads=8)
    with pytest.raises(UsageError, match=r"--leads 0"):
        run(leads=0)
    with pytest.raises(DataError, match=r"--issue_date 1990-01-01 is outside the data of basin 32006"):
        run(issue_date="1990-01-01")
    with pytest.raises(UsageError, match=r"--issue_date 'soon' is not a date"):
        run(issue_date="soon")
    gap = series.copy()
    gap.loc["1976-05-01":ISSUE, "discharge_vol"] = np.nan
    with pytest.raises(DataError, match=r"no observed discharge in the 30 days up to it"):
        run(timeseries=gap)
    wf = _weather(series, cfg, ISSUE, 7)
    with pytest.raises(DataError, match=r"weather forecast: wrong columns \(missing \['temperature'\]"):
        run(weather_forecast=wf.drop(columns="temperature"))
    with pytest.raises(DataError, match=r"weather forecast: covers 5 of the 7 lead days"):
        run(weather_forecast=wf.iloc[:5])
    early = wf.copy()
    early.loc[0, "date"] = pd.Timestamp(ISSUE)
    with pytest.raises(DataError, match=r"weather forecast: date 1976-06-15 is not after the issue date"):
        run(weather_forecast=early)
    hind = (bundle[0], cfg.replace(training={"forecast_leads": 0}), bundle[2], bundle[3])
    with pytest.raises(UsageError, match=r"hindcast-only"):
        issue_forecast(hind, "32006", data_dir=tiny_data_dir)


def test_cli_prints_table_and_writes_outputs(pretrained_ckpt, tiny_data_dir, tmp_path, capsys):
    from sca2lstm.cli.main import main

    out = tmp_path / "fc"
    rc = main(["forecast", "--model", str(pretrained_ckpt), "--basin", "32006", "--data_dir", str(tiny_data_dir),
               "--issue_date", ISSUE, "--leads", "7", "--format", "json", "--output_dir", str(out), "--quiet"])
    assert rc == 0
    text = capsys.readouterr().out
    assert "forecast issued 1976-06-15 (issue-time;" in text and "1976-06-22" in text
    folder = out / "basin_32006_issued_1976-06-15"
    for name in ("forecast.csv", "forecast.json", "forecast_fan_chart.png", "forecast_attention_weights.csv",
                 "forecast_attention_weights.png", "report.html"):
        assert (folder / name).is_file(), name
    t = pd.read_csv(folder / "forecast.csv")
    assert len(t) == 7 and list(t.columns)[:5] == ["issue_date", "valid_date", "lead_days", "median", "q05"]
    assert "Operational forecast" in (folder / "report.html").read_text()
    # the report names the folder it lives in, not the temporary one it was built in
    assert f"Run folder <code>{folder.name}</code>" in (folder / "report.html").read_text()
    # a bad request: one line, exit 2 (usage), and the earlier output is untouched
    before = (folder / "forecast.csv").read_bytes()
    rc = main(["forecast", "--model", str(pretrained_ckpt), "--basin", "32006", "--data_dir", str(tiny_data_dir),
               "--issue_date", ISSUE, "--leads", "9", "--output_dir", str(out), "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "--leads 9" in err[0]
    assert (folder / "forecast.csv").read_bytes() == before


def test_a_forecast_says_what_each_lead_day_read(bundle, tiny_data_dir, tmp_path, series):
    """The weights of the issue day and of each lead day: the issue day's are the ``weights`` the forecast gives; a
    lead day's weather, missing without a weather forecast, has weight 0 there and a share with one; each day's
    weights sum to 1; the folder holds them as a table and a chart."""
    from sca2lstm.evaluation.operational import write_forecast

    blind = issue_forecast(bundle, "32006", data_dir=tiny_data_dir, issue_date=ISSUE, leads=3)
    dw = blind.day_weights
    assert list(dw.index) == list(pd.date_range(ISSUE, periods=4))
    np.testing.assert_allclose(dw.iloc[0].to_numpy(), blind.weights.to_numpy(), rtol=1e-6)
    np.testing.assert_allclose(dw.sum(axis=1).to_numpy(), 1.0, atol=1e-5)
    assert (dw.iloc[1:]["precipitation"] == 0).all() and dw.iloc[0]["precipitation"] > 0
    seen = issue_forecast(bundle, "32006", data_dir=tiny_data_dir, issue_date=ISSUE, leads=3,
                          weather_forecast=_weather(series, bundle[1], ISSUE, 3))
    assert (seen.day_weights.iloc[1:]["precipitation"] > 0).all()
    folder = write_forecast(blind, tmp_path)
    table = pd.read_csv(folder / "forecast_attention_by_day.csv", index_col="date", parse_dates=True)
    np.testing.assert_allclose(table.to_numpy(), dw.to_numpy(), atol=1e-5)
    assert (folder / "forecast_attention_by_day.png").stat().st_size > 0
    folder = write_forecast(blind, tmp_path / "json", fmt="json")
    doc = json.loads((folder / "forecast.json").read_text())["attention_weights_by_day"]
    assert list(doc) == [str(d.date()) for d in dw.index] and doc[ISSUE] == pytest.approx(blind.weights.to_dict())


def test_the_forecast_figures_name_the_basin_and_issue_date(bundle, tiny_data_dir, tmp_path, monkeypatch):
    from sca2lstm.evaluation import plots
    from sca2lstm.evaluation.operational import write_forecast

    titles = {}
    monkeypatch.setattr(plots, "_save", lambda fig, path: titles.update({path.name: fig.axes[0].get_title()}) or path)
    write_forecast(issue_forecast(bundle, "32006", data_dir=tiny_data_dir, issue_date=ISSUE, leads=3), tmp_path)
    assert set(titles) == {"forecast_fan_chart.png", "forecast_attention_weights.png", "forecast_attention_by_day.png"}
    assert all("Basin 32006" in t and ISSUE in t for t in titles.values()), titles


def test_cli_weather_forecast_file_errors_name_the_file(pretrained_ckpt, tiny_data_dir, tmp_path, capsys, series):
    from sca2lstm.cli.main import main

    f = tmp_path / "wx.csv"
    _weather(series, load_model(pretrained_ckpt)[1], ISSUE, 3).to_csv(f, index=False)
    rc = main(["forecast", "--model", str(pretrained_ckpt), "--basin", "32006", "--data_dir", str(tiny_data_dir),
               "--issue_date", ISSUE, "--leads", "5", "--weather_forecast", str(f), "--output_dir",
               str(tmp_path / "o"), "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 1 and len(err) == 1 and str(f) in err[0] and "covers 3 of the 5 lead days" in err[0]

    # another table given by mistake (a prediction's series.csv: dates, but no weather); and a folder
    base = ["forecast", "--model", str(pretrained_ckpt), "--basin", "32006", "--data_dir", str(tiny_data_dir),
            "--issue_date", ISSUE, "--leads", "3", "--output_dir", str(tmp_path / "o"), "--quiet"]
    wx = _weather(series, load_model(pretrained_ckpt)[1], ISSUE, 3)
    pd.DataFrame({"date": wx["date"], "observed": 1.0, "predicted": 1.0}).to_csv(f, index=False)
    for given, text in ((f, f"--weather_forecast {f}: the weather forecast has no complete temperature"),
                        (tmp_path, f"--weather_forecast {tmp_path} is a folder; expected a weather forecast file")):
        assert main([*base, "--weather_forecast", str(given)]) == 1
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and text in err[0], err
    assert not (tmp_path / "o").exists()


def _bench():
    import importlib.util
    import sys

    from conftest import REPO

    spec = importlib.util.spec_from_file_location("bench_operational", REPO / "bench" / "operational.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


def test_quantile_score_of_a_point_forecast_is_its_mae():
    """The CRPS of a point forecast is its mean absolute error; the approximation keeps that."""
    bench = _bench()
    obs = np.array([1.0, 3.0, np.nan, 0.5])
    x = np.array([2.0, 2.0, 1.0, 0.0])
    assert bench.quantile_score(obs, np.repeat(x[:, None], 5, axis=1)) == pytest.approx(np.mean([1.0, 1.0, 0.5]))


@pytest.mark.slow
def test_operational_benchmark_runs_on_tiny_data(pretrained_ckpt, tiny_data_dir, tmp_path, capsys):
    bench = _bench()
    out = tmp_path / "op"
    assert bench.main(["--data_dir", str(tiny_data_dir), "--model", str(pretrained_ckpt), "--out", str(out),
                       "--timing_reps", "2"]) == 0
    s = pd.read_csv(out / "summary.csv")
    assert set(s["setting"]) == {"issue-time", "issue-time+perfect-weather", "hindcast"}
    assert len(s) == 2 * 7 + 1 and (s["basins"] == 3).all()
    assert s.loc[s["setting"] != "hindcast", ["coverage90_mean", "crpss_clim_median"]].notna().all().all()
    assert (out / "reliability_issue-time.png").is_file() and (out / "results.json").is_file()
    assert "one basin, one issue date" in capsys.readouterr().out


def test_a_station_without_pet_is_forecast_with_the_inputs_training_gives_it(bundle, tiny_data_dir, tmp_path):
    """An imported station has no `peti` column (the default PET input): the forecast derives it from
    temperature (Oudin) as training and prediction do, rather than refusing the basin; and the same station
    passed in memory (as the service does) gives the same forecast."""
    df = camels_gb.read_timeseries(tiny_data_dir, "32006")[["precipitation", "temperature", "discharge_vol"]]
    d = tmp_path / "stations"
    (d / "timeseries").mkdir(parents=True)
    (d / "attributes").mkdir()
    df.reset_index().to_csv(d / "timeseries" / "no-pet.csv", index=False, date_format="%Y-%m-%d")
    pd.DataFrame({"gauge_id": ["no-pet"], "gauge_lat": [52.0], "area": [100.0]}).to_csv(
        d / "attributes" / "stations.csv", index=False)
    fc = issue_forecast(bundle, "no-pet", data_dir=d, leads=3)
    assert len(fc.table) == 3 and fc.table["median"].notna().all()
    assert fc.weights["peti"] > 0  # derived, not masked
    mem = issue_forecast(bundle, "no-pet", data_dir=d, leads=3, timeseries=df)
    pd.testing.assert_frame_equal(fc.table, mem.table)


def test_a_forecast_from_the_first_days_of_a_record_says_its_window_reaches_before_it(bundle, tiny_data_dir, series):
    """Issued 10 days into a record, the model's window of history is mostly empty: the forecast says so."""
    first = pd.Timestamp(series.index[0])
    early = issue_forecast(bundle, "32006", data_dir=tiny_data_dir, issue_date=first + pd.Timedelta(days=9), leads=3)
    assert any("only 10 day(s) of record up to the issue date" in n for n in early.data["notes"])
    later = issue_forecast(bundle, "32006", data_dir=tiny_data_dir, issue_date="1976-06-15", leads=3)
    assert not any("day(s) of record up to the issue date" in n for n in later.data["notes"])



def test_a_forecast_issued_after_the_last_observed_flow_says_which_flow_it_starts_from(bundle, pretrained_ckpt,
                                                                                        tiny_data_dir, series,
                                                                                        tmp_path, capsys):
    """An issue date whose own flow is missing (the gauge stopped reporting some days before) is forecast
    from the last observed flow: the forecast names that flow and its day, in forecast.json and in what
    ``sca2lstm forecast`` prints; an issue date with its flow observed has no such note."""
    import json

    from sca2lstm.cli.main import main as cli

    q = series["discharge_vol"]
    assert q.loc["1976-06-10":ISSUE].notna().all()  # observed in the tiny record: erased below
    cut = series.copy()
    cut.loc["1976-06-11":ISSUE, "discharge_vol"] = np.nan
    fc = issue_forecast(bundle, "32006", data_dir=tiny_data_dir, issue_date=ISSUE, leads=3, timeseries=cut)
    expected = (f"no flow observed on the issue date {ISSUE}; the forecast starts from the last observed flow, "
                f"{q.loc['1976-06-10']:.3g} m3/s on 1976-06-10, 5 day(s) before it")
    assert any(expected in n for n in fc.data["notes"]), fc.data["notes"]
    full = issue_forecast(bundle, "32006", data_dir=tiny_data_dir, issue_date=ISSUE, leads=3)
    assert not any("no flow observed on the issue date" in n for n in full.data["notes"])

    # the command, on a day the record itself misses, a few days after an observed one
    day = next(d for d in q.index[q.isna()] if q.loc[d - pd.Timedelta(days=3):d].notna().any())
    last = q.loc[:day].last_valid_index()
    assert cli(["forecast", "--model", str(pretrained_ckpt), "--basin", "32006", "--data_dir", str(tiny_data_dir),
                "--issue_date", str(day.date()), "--leads", "3", "--format", "json", "--output_dir",
                str(tmp_path)]) == 0
    said = f"the forecast starts from the last observed flow, {q.loc[last]:.3g} m3/s on {last.date()}"
    assert said in capsys.readouterr().out
    doc = json.loads((tmp_path / f"basin_32006_issued_{day.date()}" / "forecast.json").read_text())
    assert any(said in n for n in doc["data"]["notes"])



def _fan_lines(monkeypatch):
    """The fan chart's lines by their legend label, each as (x dates, y values), filled when a forecast is written."""
    from sca2lstm.evaluation import plots

    lines = {}

    def keep(fig, path):
        if path.name == "forecast_fan_chart.png":
            lines.update({ln.get_label(): (pd.to_datetime(ln.get_xdata()), np.asarray(ln.get_ydata(), float))
                          for ln in fig.axes[0].get_lines()})
        return path

    monkeypatch.setattr(plots, "_save", keep)
    return lines


def test_a_past_issue_date_shows_and_writes_the_flows_observed_after_it(pretrained_ckpt, tiny_data_dir, tmp_path,
                                                                        monkeypatch, series):
    """A forecast of the past is judged against what came: forecast.csv's ``observed`` is the file's flow on each
    valid day, and the fan chart draws those flows (after the issue day's), named in its legend."""
    from sca2lstm.cli.main import main

    lines = _fan_lines(monkeypatch)
    rc = main(["forecast", "--model", str(pretrained_ckpt), "--basin", "32006", "--data_dir", str(tiny_data_dir),
               "--issue_date", ISSUE, "--leads", "5", "--output_dir", str(tmp_path), "--quiet"])
    assert rc == 0
    t = pd.read_csv(tmp_path / f"basin_32006_issued_{ISSUE}" / "forecast.csv", parse_dates=["valid_date"])
    assert list(t.columns)[:9] == ["issue_date", "valid_date", "lead_days", "median", "q05", "q25", "q75", "q95",
                                   "observed"]
    flow = series["discharge_vol"]
    came = flow.reindex(t["valid_date"]).to_numpy(np.float64)
    assert np.isfinite(came).all()
    # written with four decimals: off by at most half the last one
    np.testing.assert_allclose(t["observed"].to_numpy(), came, rtol=1e-12, atol=0.5e-4)
    x, y = lines["observed after the issue day"]
    assert list(x) == [pd.Timestamp(ISSUE), *t["valid_date"]]      # on from the issue day's flow
    np.testing.assert_array_equal(y, flow.reindex(x).to_numpy(np.float64))


def test_a_forecast_of_today_has_no_observed_after_line_and_an_empty_observed_column(pretrained_ckpt, tiny_data_dir,
                                                                                      tmp_path, monkeypatch):
    from sca2lstm.cli.main import main

    lines = _fan_lines(monkeypatch)
    rc = main(["forecast", "--model", str(pretrained_ckpt), "--basin", "32006", "--data_dir", str(tiny_data_dir),
               "--leads", "3", "--output_dir", str(tmp_path), "--quiet"])
    assert rc == 0
    (folder,) = tmp_path.iterdir()
    t = pd.read_csv(folder / "forecast.csv")
    assert "observed" in t.columns and t["observed"].isna().all()
    assert "observed" in lines and "observed after the issue day" not in lines
