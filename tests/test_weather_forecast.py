"""Weather forecasts into `forecast`: saved Open-Meteo responses (deterministic, ensemble), long tables with
members, the mixture over members, PET as the model derives it, and one-line refusals."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest

from openmeteo_fixtures import daily_response, ensemble_response
from tolerance import assert_forecasts_close
from sca2lstm.checkpoint import load_model
from sca2lstm.errors import DataError
from sca2lstm.evaluation.operational import issue_forecast
from sca2lstm.weather.files import complete_pet, read_forecast_file
from sca2lstm.weather.mixture import crps, exceedance_probability, mixture_quantiles

ISSUE = "1976-06-15"
LEVELS = [0.05, 0.25, 0.5, 0.75, 0.95]
WET, DRY = [40.0] * 9, [0.0] * 9


@pytest.fixture(scope="module")
def bundle(pretrained_ckpt):
    return load_model(pretrained_ckpt)


def _save(tmp_path, name, doc):
    p = tmp_path / name
    p.write_text(json.dumps(doc), encoding="utf-8")
    return p


def test_mixture_of_one_member_is_that_member_and_disagreement_widens_it():
    q = np.array([1.0, 2.0, 3.0, 4.0, 6.0])
    assert np.allclose(mixture_quantiles(q[None, None], LEVELS)[0], q)
    lo, hi = q, q + 20.0                                   # two members far apart
    mix = mixture_quantiles(np.stack([lo, hi])[None], LEVELS)[0]
    assert mix[0] < lo[2] and mix[-1] > hi[2]              # the 90 % interval spans both medians
    assert mix[-1] - mix[0] > 4 * (q[-1] - q[0])
    # the mixture median lies between the members' (the CDF is 0.5 there)
    assert lo[-1] <= mix[2] <= hi[0]
    # exceedance: P(> q95 of a lone member) = 0.05; with the far member added, 0.5 + 0.05 / 2
    assert np.isclose(exceedance_probability(q[None], LEVELS, 6.0), 0.05)
    assert np.isclose(exceedance_probability(np.stack([lo, hi]), LEVELS, 6.0), 0.5 + 0.025)
    # with the warnings' own per-member rule (exponential tails) the mixture is the mean of the members'
    from sca2lstm.evaluation.exceedance import exceedance_probability as member_p

    both = np.stack([lo, hi])
    assert np.isclose(exceedance_probability(both, LEVELS, 30.0, member_p),
                      (member_p(lo, LEVELS, 30.0) + member_p(hi, LEVELS, 30.0)) / 2)
    # CRPS of a sharp, right forecast is smaller than of a wide one, and 0-centred errors grow it
    sharp = np.array([2.9, 2.95, 3.0, 3.05, 3.1])
    assert crps(sharp[None], LEVELS, np.array(3.0)) < crps(q[None], LEVELS, np.array(3.0)) < \
        crps(q[None], LEVELS, np.array(15.0))


def test_wet_forecast_gives_more_flow_than_a_dry_one(bundle, tiny_data_dir, tmp_path):
    """The same issue date, a saved deterministic Open-Meteo answer fetched the morning after it: 40 mm a
    day against none, through the tiny trained model."""
    wet = read_forecast_file(_save(tmp_path, "wet.json", daily_response("1976-06-16", WET, [14.0] * 9)))
    dry = read_forecast_file(_save(tmp_path, "dry.json", daily_response("1976-06-16", DRY, [14.0] * 9)))
    fw = issue_forecast(bundle, "32006", data_dir=tiny_data_dir, issue_date=ISSUE, leads=7, weather_forecast=wet)
    fd = issue_forecast(bundle, "32006", data_dir=tiny_data_dir, issue_date=ISSUE, leads=7, weather_forecast=dry)
    assert fw.setting == "issue-time+weather-forecast" and fw.members is None
    assert fw.table["median"].sum() > fd.table["median"].sum()
    assert (fw.table["median"].to_numpy()[2:] > fd.table["median"].to_numpy()[2:]).all()
    # an ensemble of the two: the mixture lies between them and is at least as wide as either
    ens = read_forecast_file(_save(tmp_path, "ens.json", ensemble_response("1976-06-16", DRY, [WET, DRY, WET],
                                                                           [14.0] * 9)))
    assert ens.n_members == 4
    fe = issue_forecast(bundle, "32006", data_dir=tiny_data_dir, issue_date=ISSUE, leads=7, weather_forecast=ens)
    t, tw, td = fe.table, fw.table, fd.table
    assert (t["weather_members"] == 4).all() and fe.members.shape == (4, 7)
    # a member in the ensemble's batch against the same weather alone (tests/tolerance.py)
    assert_forecasts_close({"median": fe.members.iloc[1]}, tw, bundle, "32006", msg="wet member")
    assert_forecasts_close({"median": fe.members.iloc[0]}, td, bundle, "32006", msg="dry member")
    assert (t["q95"] >= np.minimum(tw["q95"], td["q95"]) - 1e-9).all()
    assert (t["q95"] - t["q05"] >= np.minimum(tw["q95"] - tw["q05"], td["q95"] - td["q05"]) - 1e-9).all()
    assert ((t["median"] >= td["median"] - 1e-9) & (t["median"] <= tw["median"] + 1e-9)).all()


def test_long_table_with_members_equals_the_json_ensemble(bundle, tiny_data_dir, tmp_path):
    doc = ensemble_response("1976-06-16", DRY, [WET], [14.0] * 9)
    from_json = issue_forecast(bundle, "32006", data_dir=tiny_data_dir, issue_date=ISSUE, leads=7,
                               weather_forecast=read_forecast_file(_save(tmp_path, "e.json", doc)))
    days = pd.date_range("1976-06-16", periods=9)
    rows = [{"issue_date": "1976-06-16", "lead_days": k, "valid_date": d.date(), "member": m,
             "precipitation": (DRY if m == 0 else WET)[k], "temperature": 14.0}
            for m in (0, 1) for k, d in enumerate(days)]
    p = tmp_path / "long.csv"
    pd.DataFrame(rows).to_csv(p, index=False)
    from_csv = issue_forecast(bundle, "32006", data_dir=tiny_data_dir, issue_date=ISSUE, leads=7,
                              weather_forecast=read_forecast_file(p))
    cols = ["median", "q05", "q25", "q75", "q95"]
    assert np.allclose(from_json.table[cols], from_csv.table[cols])


def test_plain_table_without_pet_gets_the_models_pet_like_a_forecast_file(bundle, tiny_data_dir, tmp_path):
    """A plain ``date, precipitation, temperature`` table (no PET column) is completed as a saved forecast is:
    the same forecast as the one-member long table of the same values."""
    days = pd.date_range("1976-06-16", periods=9)
    plain = pd.DataFrame({"date": days, "precipitation": WET, "temperature": [14.0] * 9})
    long = pd.DataFrame({"issue_date": "1976-06-16", "lead_days": range(9), "valid_date": days.date, "member": 0,
                         "precipitation": WET, "temperature": 14.0})
    p = tmp_path / "long.csv"
    long.to_csv(p, index=False)
    a = issue_forecast(bundle, "32006", data_dir=tiny_data_dir, issue_date=ISSUE, leads=7, weather_forecast=plain)
    b = issue_forecast(bundle, "32006", data_dir=tiny_data_dir, issue_date=ISSUE, leads=7,
                       weather_forecast=read_forecast_file(p))
    cols = ["median", "q05", "q25", "q75", "q95"]
    assert a.setting == "issue-time+weather-forecast" and np.allclose(a.table[cols], b.table[cols])


def test_pet_is_derived_as_the_model_reads_it():
    f = pd.DataFrame({"date": pd.date_range("2024-06-01", periods=3), "temperature": [10.0, 15.0, 20.0],
                      "et0": [3.0, 4.0, 5.0]})
    from sca2lstm.data.pet import oudin_pet

    oudin = oudin_pet(f["temperature"].to_numpy(), 52.0, f["date"].dt.day_of_year.to_numpy())
    assert np.allclose(complete_pet(f, "peti", "missing", 52.0)["peti"], oudin)      # CAMELS peti: Oudin
    assert np.allclose(complete_pet(f, "pet", "always", 52.0)["pet"], oudin)         # Oudin-trained: Oudin
    assert np.allclose(complete_pet(f, "pet", "missing", 52.0)["pet"], [3.0, 4.0, 5.0])  # pet read from files: ET0
    assert "et0" not in complete_pet(f, "pet", "missing", 52.0).columns
    with pytest.raises(DataError, match="gauge_lat"):
        complete_pet(f, "peti", "missing", float("nan"))


def test_unusable_forecast_files_are_refused_in_one_line(pretrained_ckpt, tiny_data_dir, tmp_path, capsys):
    from sca2lstm.cli.forecast import main

    def run(path):
        rc = main(["--model", str(pretrained_ckpt), "--basin", "32006", "--issue_date", ISSUE,
                   "--weather_forecast", str(path), "--output_dir", str(tmp_path / "out")])
        return rc, capsys.readouterr().err.strip().splitlines()

    (tmp_path / "broken.json").write_text("{not json", encoding="utf-8")
    rc, err = run(tmp_path / "broken.json")
    assert rc == 1 and len(err) == 1 and "broken.json" in err[0] and "not valid JSON" in err[0]
    # issued days after the flow forecast's issue date: it knows weather the forecaster did not have
    late = _save(tmp_path, "late.json", daily_response("1976-06-20", WET, [14.0] * 9))
    rc, err = run(late)
    assert rc == 1 and len(err) == 1 and "late.json" in err[0] and "issued 1976-06-20, after the morning of " \
        "1976-06-16" in err[0]
    nokeys = _save(tmp_path, "nokeys.json", {"latitude": 1.0, "daily": {"time": ["1976-06-16"], "wind": [1]}})
    rc, err = run(nokeys)
    assert rc == 1 and len(err) == 1 and "none of precipitation_sum" in err[0]
    pd.DataFrame({"valid_date": ["1976-06-16"], "member": [1.5], "precipitation": [1.0]}).to_csv(
        tmp_path / "m.csv", index=False)
    rc, err = run(tmp_path / "m.csv")
    assert rc == 1 and len(err) == 1 and "column 'member' holds '1.5', not a whole number" in err[0]
    # an input under another name is named, with the column that looks like it
    pd.DataFrame({"valid_date": pd.date_range("1976-06-16", periods=9).strftime("%Y-%m-%d"), "member": 0,
                  "precip": 1.0, "temperature": 14.0}).to_csv(tmp_path / "renamed.csv", index=False)
    rc, err = run(tmp_path / "renamed.csv")
    assert rc == 1 and len(err) == 1 and "missing input column(s) ['precipitation']" in err[0]
    assert "rename 'precip' to 'precipitation'?" in err[0]
    # a forecast fetched for another place (Germany for a British gauge) is not this station's weather
    far = _save(tmp_path, "far.json", daily_response(ISSUE, WET, [14.0] * len(WET), lat=47.9, lon=8.7))
    rc, err = run(far)
    assert rc == 1 and len(err) == 1 and "km from station 32006's gauge" in err[0] and "47.90, 8.70" in err[0]
    # a day without rain in the middle: the message names that day and that input
    holed = daily_response(ISSUE, WET, [14.0] * len(WET))
    holed["daily"]["precipitation_sum"][3] = None
    rc, err = run(_save(tmp_path, "holed.json", holed))
    day = str((pd.Timestamp(ISSUE) + pd.Timedelta(days=3)).date())
    assert rc == 1 and len(err) == 1 and f"no value of 'precipitation' on {day}" in err[0]
    assert not (tmp_path / "out").exists()


def test_an_older_weather_forecast_is_used_with_a_note_and_the_forecast_records_which_it_read(
        pretrained_ckpt, tiny_data_dir, tmp_path, capsys):
    """A forecast issued five days before the issue date covers the lead days with its days 6..: accepted (it may
    be all there is), said in the output and recorded in forecast.json with the file and its issue date."""
    from sca2lstm.cli.forecast import main

    old = _save(tmp_path, "old.json", daily_response("1976-06-10", [2.0] * 16, [14.0] * 16))
    rc = main(["--model", str(pretrained_ckpt), "--basin", "32006", "--issue_date", ISSUE, "--weather_forecast",
               str(old), "--output_dir", str(tmp_path / "out"), "--format", "json"])
    assert rc == 0, capsys.readouterr().err
    doc = json.loads(next((tmp_path / "out").rglob("forecast.json")).read_text())
    assert doc["data"]["weather_forecast"]["issue_date"] == "1976-06-10"
    assert "old.json" in doc["data"]["weather_forecast"]["source"]
    assert any("issued 1976-06-10, 5 day(s) before the issue date 1976-06-15" in n for n in doc["data"]["notes"])


def test_cli_ensemble_forecast_writes_table_members_and_fan_chart(pretrained_ckpt, tiny_data_dir, tmp_path, capsys):
    from sca2lstm.cli.forecast import main

    p = _save(tmp_path, "ens.json", ensemble_response("1976-06-16", DRY, [WET, DRY], [14.0] * 9))
    rc = main(["--model", str(pretrained_ckpt), "--basin", "32006", "--issue_date", ISSUE, "--weather_forecast",
               str(p), "--output_dir", str(tmp_path / "out")])
    out = capsys.readouterr().out
    assert rc == 0 and "3 weather members" in out
    folder = tmp_path / "out" / f"basin_32006_issued_{ISSUE}_with_weather_ensemble"
    t = pd.read_csv(folder / "forecast.csv")
    assert len(t) == 7 and (t["weather_members"] == 3).all()
    m = pd.read_csv(folder / "forecast_members.csv", index_col="member")
    assert m.shape == (3, 7) and list(m.columns)[0] == "1976-06-16"
    # the members are drawn as issued (blended, bounded): the issued median of their mixture lies between them
    # (to the 4 decimals of the files)
    med = t["median"].to_numpy()
    assert (m.min(axis=0).to_numpy() - 1e-3 <= med).all() and (med <= m.max(axis=0).to_numpy() + 1e-3).all()
    assert (folder / "forecast_fan_chart.png").stat().st_size > 5000
    # the forecast of the same issue date without weather goes beside it, not over it
    assert main(["--model", str(pretrained_ckpt), "--basin", "32006", "--issue_date", ISSUE, "--output_dir",
                 str(tmp_path / "out"), "--quiet"]) == 0
    assert (tmp_path / "out" / f"basin_32006_issued_{ISSUE}" / "forecast.csv").is_file()
    assert (folder / "forecast_members.csv").is_file()
    # and one deterministic weather forecast of that date too (its control member), in a folder of its own
    one = _save(tmp_path, "one.json", daily_response("1976-06-16", DRY, [14.0] * 9))
    assert main(["--model", str(pretrained_ckpt), "--basin", "32006", "--issue_date", ISSUE, "--weather_forecast",
                 str(one), "--output_dir", str(tmp_path / "out"), "--quiet"]) == 0
    assert (tmp_path / "out" / f"basin_32006_issued_{ISSUE}_with_weather_forecast" / "forecast.csv").is_file()
    assert pd.read_csv(folder / "forecast.csv")["weather_members"].eq(3).all()


@pytest.mark.slow
def test_one_forecast_is_flagged_and_an_ensembles_members_are_not(tiny_data_dir, tmp_path, monkeypatch):
    """With ``data.forecast_flag`` the lead days of one weather forecast carry the flag (the model hedges it)
    and those of an ensemble's members do not (each runs as the weather that will come), in the forecast a
    user issues and in the batched hindcasts of the benchmarks and the calibration."""
    from conftest import make_tiny_config

    from sca2lstm.data.dataset import SequenceData, load_basin, load_static
    from sca2lstm.evaluation import operational
    from sca2lstm.evaluation.operational import issue_time_hindcasts
    from sca2lstm.training.pretrain import pretrain
    from sca2lstm.weather.windows import EmulatedForecast, LeadWeather

    cfg = make_tiny_config(tiny_data_dir, data={"forecast_flag": True}, training={"epochs": 1})
    b = load_model(pretrain(cfg, tmp_path / "flag.pth", data_dir=tiny_data_dir, progress=False)["checkpoint"])
    model, mcfg, scalers, _ = b
    flag = scalers.feature_names.index("weather_is_forecast")
    seen = []
    real = operational.mask_issue_time

    def spy(x, miss, q, pos, *a, **kw):
        out = real(x, miss, q, pos, *a, **kw)
        seen.append(np.unique(out[0][:, pos + 1:, flag]) if out[0].ndim == 3 else np.unique(out[0][pos + 1:, flag]))
        return out

    monkeypatch.setattr(operational, "mask_issue_time", spy)
    days = pd.date_range("1976-06-16", periods=9)
    one = pd.DataFrame({"date": days, "precipitation": WET, "temperature": [14.0] * 9})
    fc = issue_forecast(b, "32006", data_dir=tiny_data_dir, issue_date=ISSUE, leads=7, weather_forecast=one)
    assert [s.tolist() for s in seen] == [[1.0]]
    assert fc.day_flag.tolist() == [0.0] + [1.0] * 7     # what the chart of the days' weights writes under the flag
    seen.clear()
    rows = [{"issue_date": "1976-06-16", "lead_days": k, "valid_date": d.date(), "member": m,
             "precipitation": (DRY if m == 0 else WET)[k], "temperature": 14.0} for m in (0, 1) for k, d in enumerate(days)]
    pd.DataFrame(rows).to_csv(tmp_path / "ens.csv", index=False)
    fc = issue_forecast(b, "32006", data_dir=tiny_data_dir, issue_date=ISSUE, leads=7,
                        weather_forecast=read_forecast_file(tmp_path / "ens.csv"))
    assert [s.tolist() for s in seen] == [[0.0], [0.0]]
    assert fc.day_flag.tolist() == [0.0] * 8
    seen.clear()
    F, L = mcfg.training.forecast_leads, mcfg.training.seq_len
    data = SequenceData([load_basin(tiny_data_dir, "32006", mcfg)], load_static(tiny_data_dir, ["32006"], mcfg,
                                                                               allow_absent=True), scalers, pad=L)
    lw = LeadWeather.from_model(scalers, mcfg)
    i0 = data.records[0].period(mcfg.data.test_start, mcfg.data.test_end)[0]
    for members, expected in ((None, 1.0), (3, 0.0)):
        issue_time_hindcasts(model, data, [(i0, i0 + 5)], F, "perfect", seq_len=L, lead_days=mcfg.data.lead_days,
                             lead_weather=EmulatedForecast(lw, F, members, 1.0))
        assert [s.tolist() for s in seen] == [[expected]]
        seen.clear()


def test_plain_table_pet_of_another_kind_is_derived_and_impossible_values_are_refused(bundle, tiny_data_dir,
                                                                                     tmp_path):
    """A ``pet`` column for a model that reads ``peti`` is not swapped in: the model's PET is derived as for a
    table without one. Values no weather has (negative or 5000 mm of rain a day, 80 degC) and dates that are
    not dates are refused in one line, in plain and long tables alike."""
    assert "peti" in bundle[1].data.dynamic_inputs
    days = pd.date_range("1976-06-16", periods=9)
    plain = pd.DataFrame({"date": days, "precipitation": WET, "temperature": [14.0] * 9})

    def run(wf):
        return issue_forecast(bundle, "32006", data_dir=tiny_data_dir, issue_date=ISSUE, leads=7, weather_forecast=wf)

    cols = ["median", "q05", "q25", "q75", "q95"]
    assert np.allclose(run(plain.assign(pet=0.5)).table[cols], run(plain).table[cols])
    for col, value, shown in (("precipitation", -5.0, "precipitation -5 on 1976-06-17 is outside 0..2000"),
                              ("precipitation", 5000.0, "precipitation 5000 on 1976-06-17 is outside 0..2000"),
                              ("temperature", 80.0, "temperature 80 on 1976-06-17 is outside -60..60")):
        bad = plain.copy()
        bad.loc[1, col] = value
        with pytest.raises(DataError) as e:
            run(bad)
        assert shown in str(e.value) and "\n" not in str(e.value)
        long = bad.rename(columns={"date": "valid_date"}).assign(issue_date="1976-06-15")
        long.to_csv(tmp_path / "long.csv", index=False)
        with pytest.raises(DataError, match=shown):
            read_forecast_file(tmp_path / "long.csv")
    # dates are read by the station import's parser: day/month/year where the days show it, else refused
    assert np.allclose(run(plain.assign(date=days.strftime("%d/%m/%Y"))).table[cols], run(plain).table[cols])
    with pytest.raises(DataError, match=r"must hold dates as YYYY-MM-DD; 'tomorrow' is not one"):
        run(plain.assign(date=["tomorrow"] * 9))
    # a day without temperature, for a model that derives its PET from it: that day is named
    gap = plain.copy()
    gap.loc[3, "temperature"] = np.nan
    with pytest.raises(DataError, match=r"no complete temperature \(none on 1976-06-19\)"):
        run(gap)


def test_a_date_that_is_no_date_is_named_not_the_first_date_of_the_column(tmp_path):
    """One mistyped valid date in a weather table is the one the line names (it named the column's first value,
    a good date, as the bad one); a column whose dates are each readable but in two forms says so."""
    days = pd.date_range("1976-06-16", periods=7)
    long = pd.DataFrame({"issue_date": "1976-06-15", "valid_date": days.strftime("%Y-%m-%d"),
                         "precipitation": WET[:7], "temperature": 14.0})
    long.loc[4, "valid_date"] = "1976-06-31"
    long.to_csv(tmp_path / "typo.csv", index=False)
    with pytest.raises(DataError) as e:
        read_forecast_file(tmp_path / "typo.csv")
    assert "column 'valid_date' must hold dates as YYYY-MM-DD; '1976-06-31' is not one" in str(e.value)
    assert "'1976-06-16'" not in str(e.value)
    long.loc[4, "valid_date"] = "20/06/1976"   # a date alone, but not in the form of the column's others
    long.to_csv(tmp_path / "mixed.csv", index=False)
    with pytest.raises(DataError, match=r"column 'valid_date' mixes date forms \('1976-06-16', ...\); give every "
                                        r"date as YYYY-MM-DD"):
        read_forecast_file(tmp_path / "mixed.csv")


def test_a_station_without_temperature_takes_a_rain_only_forecast_and_its_temperature_stays_masked(
        bundle, tiny_data_dir, tmp_path):
    """A station that records rain but never temperature has temperature (and the PET derived from it) masked
    throughout its history: a rain-only forecast is enough, and a forecast temperature changes nothing (the
    model never sees one for this station)."""
    import shutil

    from sca2lstm.data import reader

    data = tmp_path / "data"
    shutil.copytree(tiny_data_dir, data)
    f = reader.timeseries_file(data, "32006")
    pd.read_csv(f).drop(columns=["temperature"]).to_csv(f, index=False)
    days = pd.date_range("1976-06-16", periods=9).strftime("%Y-%m-%d")
    rain = pd.DataFrame({"date": days, "precipitation": 5.0})
    a = issue_forecast(bundle, "32006", data_dir=data, issue_date=ISSUE, leads=7, weather_forecast=rain,
                       allow_missing_inputs=True)
    b = issue_forecast(bundle, "32006", data_dir=data, issue_date=ISSUE, leads=7, allow_missing_inputs=True,
                       weather_forecast=rain.assign(temperature=30.0))
    np.testing.assert_array_equal(a.table["median"], b.table["median"])
    wet = issue_forecast(bundle, "32006", data_dir=data, issue_date=ISSUE, leads=7, allow_missing_inputs=True,
                         weather_forecast=rain.assign(precipitation=40.0))
    assert wet.table["median"].sum() > a.table["median"].sum()


def test_a_model_trained_on_oudin_pet_reads_oudin_pet_whatever_pet_a_forecast_gives(tiny_cfg, caplog):
    """A forecast's own ``pet`` column (another model's PET, Penman's in CAMELS) is read by a model whose PET is
    read from the basin's files, but a model trained on Oudin PET (pet_from_temperature: always) gets Oudin PET
    from the forecast temperature, as it gets for its own basins, in a plain table, a single forecast's members
    and an archive alike, and the log says so."""
    from sca2lstm.data.pet import oudin_pet
    from sca2lstm.evaluation.operational import _plain_with_pet, weather_members
    from sca2lstm.weather.archive import with_model_pet
    from sca2lstm.weather.files import from_long_table

    days = pd.date_range("1976-06-16", periods=7)
    plain = pd.DataFrame({"date": days, "precipitation": 1.0, "temperature": [10.0, 12, 14, 16, 18, 20, 22],
                          "pet": 9.0})
    long = from_long_table(plain.assign(issue_date=pd.Timestamp(ISSUE), member=0), "wx.csv")
    oudin = oudin_pet(plain["temperature"].to_numpy(), 52.0, days.day_of_year.to_numpy())
    for mode, want in (("always", oudin), ("never", np.full(7, 9.0))):
        cfg = tiny_cfg.replace(data={"dynamic_inputs": ["precipitation", "pet", "temperature"],
                                     "pet_from_temperature": mode})
        caplog.clear()
        assert np.allclose(_plain_with_pet(plain, cfg, 52.0)["pet"], want), mode
        member = weather_members(long, ISSUE, 7, ["precipitation", "pet", "temperature"], cfg, 52.0)[0]
        assert np.allclose(member["pet"], want), mode
        assert np.allclose(with_model_pet(long, cfg, 52.0).table["pet"], want), mode
        assert ("replaced by Oudin PET" in caplog.text) == (mode == "always")


def test_a_model_that_never_derives_pet_reads_no_oudin_pet_from_a_forecast_without_its_pet(tiny_cfg):
    """A model whose PET is never derived from temperature (``pet_from_temperature: never``) reads the PET a forecast
    gives (its ``pet``, or ET0 for ``pet`` read from the basin's files), never Oudin PET, a kind it never saw: a
    forecast without it is refused in one line as one without an input, and an archive's run without it is left
    out (counted), while the archive's other runs keep theirs."""
    from sca2lstm.evaluation.operational import _plain_with_pet, weather_members
    from sca2lstm.weather.archive import with_model_pet
    from sca2lstm.weather.files import from_long_table, pet_way_counts

    cfg = tiny_cfg.replace(data={"dynamic_inputs": ["precipitation", "pet", "temperature"],
                                 "pet_from_temperature": "never"})
    inputs = ["precipitation", "pet", "temperature"]
    days = pd.date_range("1976-06-16", periods=7)
    plain = pd.DataFrame({"date": days, "precipitation": 1.0, "temperature": 14.0})
    long = from_long_table(plain.assign(issue_date=pd.Timestamp(ISSUE), member=0), "wx.csv")
    said = ("the weather forecast gives no pet (or et0), and this model never derives its PET from temperature "
            "(data.pet_from_temperature: never)")
    with pytest.raises(DataError, match=re.escape(said)):
        _plain_with_pet(plain, cfg, 52.0)
    with pytest.raises(DataError, match=re.escape(f"wx.csv: {said}")):
        weather_members(long, ISSUE, 7, inputs, cfg, 52.0)
    with_et0 = from_long_table(plain.assign(issue_date=pd.Timestamp(ISSUE), member=0, et0=3.0), "wx.csv")
    assert np.array_equal(weather_members(with_et0, ISSUE, 7, inputs, cfg, 52.0)[0]["pet"], np.full(7, 3.0))
    two = pd.concat([plain.assign(issue_date=pd.Timestamp(ISSUE), pet=2.0),
                     plain.assign(issue_date=pd.Timestamp("1976-06-16"), date=days + pd.Timedelta(days=1))])
    read = with_model_pet(from_long_table(two.assign(member=0), "archive.csv"), cfg, 52.0)
    first = read.table["issue_date"] == pd.Timestamp(ISSUE)
    assert np.array_equal(read.table.loc[first, "pet"], np.full(7, 2.0)) and read.table.loc[~first, "pet"].isna().all()
    assert pet_way_counts(read.pet_runs) == {"given": 1, "none": 1}


def test_mixture_of_a_50_member_ensemble_stays_within_a_bounded_memory():
    """The mixture's CDF grows with the square of the members: 300 rows of 50 members are taken in chunks small
    enough to stay within some 100 MB (in one chunk they took 0.7 GB; 5.6 GB in a reforecast of a year of 50
    members), with the same quantiles."""
    import tracemalloc

    rng = np.random.default_rng(0)
    q = np.sort(rng.gamma(2.0, 3.0, size=(300, 50, 5)), axis=-1)
    tracemalloc.start()
    got = mixture_quantiles(q, LEVELS)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 200 * 2**20, peak / 2**20
    assert np.allclose(got[:5], mixture_quantiles(q[:5], LEVELS, chunk=1))


def test_forecast_members_csv_names_each_member_by_its_number_in_the_file(pretrained_ckpt, tiny_data_dir, tmp_path):
    """Members numbered with gaps (5, 17, 300), one of them incomplete and left out: each row of
    forecast_members.csv carries the member's own number, not its position among those used."""
    from sca2lstm.cli.forecast import main

    days = pd.date_range("1976-06-16", periods=9)
    rain = {5: WET[:4] + [np.nan] + WET[5:], 17: DRY, 300: WET, 0: DRY}
    rows = [{"issue_date": "1976-06-16", "lead_days": k, "valid_date": d.date(), "member": m,
             "precipitation": r[k], "temperature": 14.0} for m, r in rain.items() for k, d in enumerate(days)]
    p = tmp_path / "numbered.csv"
    pd.DataFrame(rows).to_csv(p, index=False)
    assert main(["--model", str(pretrained_ckpt), "--basin", "32006", "--issue_date", ISSUE, "--weather_forecast",
                 str(p), "--output_dir", str(tmp_path / "out"), "--quiet"]) == 0
    folder = tmp_path / "out" / f"basin_32006_issued_{ISSUE}_with_weather_ensemble"
    m = pd.read_csv(folder / "forecast_members.csv", index_col="member")
    assert list(m.index) == [0, 17, 300]                   # member 5 left out (no rain on its lead 4)
    assert (m.loc[300].to_numpy()[2:] > m.loc[17].to_numpy()[2:]).all()  # 300 is the wet one, 0 and 17 dry
    assert np.allclose(m.loc[0], m.loc[17])


def test_an_ensemble_through_a_model_without_quantiles_is_said_to_be_the_members_mean_not_a_mixture(
        pretrained_ckpt, tiny_data_dir, tmp_path, capsys):
    """``forecast --weather_forecast`` of an ensemble through a checkpoint without a quantile head prints and
    stores what its flow is, the mean of the members' point forecasts, not a mixture of distributions it does
    not have; a member left out is said so in the same words."""
    import torch

    from sca2lstm.cli.forecast import main

    ck = torch.load(pretrained_ckpt, weights_only=True)
    ck["config"]["model"]["quantiles"] = []
    ck["model_state_dict"] = {k: v for k, v in ck["model_state_dict"].items() if not k.startswith("quantile_head.")}
    torch.save(ck, tmp_path / "point.pth")
    assert load_model(tmp_path / "point.pth")[0].quantile_head is None
    doc = ensemble_response("1976-06-16", DRY, [WET, DRY, DRY], [14.0] * 9)
    doc["daily"]["precipitation_sum_member03"][3] = None          # one of 4 members left out
    p = _save(tmp_path, "ens.json", doc)
    rc = main(["--model", str(tmp_path / "point.pth"), "--basin", "32006", "--issue_date", ISSUE, "--weather_forecast",
               str(p), "--output_dir", str(tmp_path / "out"), "--format", "json"])
    out = capsys.readouterr().out
    assert rc == 0
    assert "the mean of 3 weather members' point forecasts (a model without quantiles: no interval)" in out, out
    assert "mixture" not in out
    fj = json.loads(next((tmp_path / "out").rglob("forecast.json")).read_text())
    assert fj["data"]["weather_forecast"]["combined"] == "mean"
    assert any("the forecast is the mean of the other 3 members' point forecasts" in n for n in fj["data"]["notes"])


def test_an_ensemble_through_a_model_without_quantiles_is_issued_as_an_ensemble(bundle, pretrained_ckpt, tiny_data_dir,
                                                                                tmp_path):
    """A model without a quantile head (``model.quantiles: []``) forecasts an ensemble's mean flow; it is still an
    ensemble: the members are kept (forecast_members.csv, the fan chart) and it takes the ensemble's blend, as a
    reforecast of the same forecasts does, not that of one forecast."""
    from sca2lstm.evaluation.reforecast import warned_forecast, weather_setting
    from sca2lstm.models.sca2lstm import SCA2LSTM

    model, cfg, scalers, ckpt = bundle
    cfg = cfg.replace(model={"quantiles": []})
    headless = SCA2LSTM(cfg)
    # the trained network without its quantile head
    headless.load_state_dict({k: v for k, v in model.state_dict().items() if not k.startswith("quantile_head")})
    assert headless.quantile_head is None
    b = (headless.eval(), cfg, scalers, ckpt)
    ens = read_forecast_file(_save(tmp_path, "ens.json", ensemble_response("1976-06-16", DRY, [WET, DRY], [14.0] * 9)))
    fc = issue_forecast(b, "32006", data_dir=tiny_data_dir, issue_date=ISSUE, leads=7, weather_forecast=ens)
    assert fc.members is not None and fc.members.shape == (3, 7) and list(fc.members.index) == [0, 1, 2]
    assert np.allclose(fc.table["median"], fc.members.mean(axis=0))
    assert (fc.members.loc[1].to_numpy()[2:] > fc.members.loc[0].to_numpy()[2:]).all()   # member 1 is the wet one
    assert weather_setting(fc) == "ensemble"
    issued, _, _ = warned_forecast(b, "32006", data_dir=tiny_data_dir, issue_date=ISSUE, leads=7, weather_forecast=ens,
                                   model_path=pretrained_ckpt)   # the calibration beside it: a blend per setting
    assert issued.members is not None and "ensemble" in issued.calibration["blend"]


@pytest.mark.parametrize("place", [{"lat": None}, {"lon": "north"}])
def test_a_saved_answer_whose_place_is_not_numbers_is_refused_and_one_without_a_place_is_read(
        pretrained_ckpt, tiny_data_dir, tmp_path, capsys, place):
    """A saved answer saying its latitude or longitude with null or a string cannot be checked against the gauge:
    refused in one line as `weather fetch` refuses it, not read as a forecast for an unknown place; an answer
    without the keys at all is read unchecked, as before."""
    from sca2lstm.cli.forecast import main

    def run(path, out):
        return main(["--model", str(pretrained_ckpt), "--basin", "32006", "--issue_date", ISSUE, "--data_dir",
                     str(tiny_data_dir), "--weather_forecast", str(path), "--output_dir", str(tmp_path / out)])

    bad = _save(tmp_path, "saved.json", daily_response(ISSUE, WET, [14.0] * len(WET), **place))
    rc = run(bad, "bad")
    err = capsys.readouterr().err.strip().splitlines()
    said = "None, -1.2" if "lat" in place else "51.5, 'north'"
    assert rc == 1 and err == [f"sca2lstm forecast: error: --weather_forecast {bad} is malformed: its latitude, longitude are {said}, "
                               "not numbers in degrees, so the place it is for cannot be checked"], err
    assert not (tmp_path / "bad").exists()
    unplaced = daily_response(ISSUE, WET, [14.0] * len(WET))
    del unplaced["latitude"], unplaced["longitude"]
    assert run(_save(tmp_path, "unplaced.json", unplaced), "ok") == 0


@pytest.mark.parametrize("fill", ["", "n/a"])
def test_a_table_whose_place_columns_hold_no_number_is_refused_and_one_without_them_is_read(
        pretrained_ckpt, tiny_data_dir, tmp_path, capsys, fill):
    """A long table with columns latitude, longitude empty or unreadable on every row cannot be checked against
    the gauge: refused in one line naming the file and the columns, as a saved answer with null coordinates is,
    not read as a forecast for an unknown place; a table without the columns is read unchecked, as before."""
    from sca2lstm.cli.forecast import main

    def run(path, out):
        return main(["--model", str(pretrained_ckpt), "--basin", "32006", "--issue_date", ISSUE, "--data_dir",
                     str(tiny_data_dir), "--weather_forecast", str(path), "--output_dir", str(tmp_path / out)])

    unplaced = daily_response(ISSUE, WET, [14.0] * len(WET))
    del unplaced["latitude"], unplaced["longitude"]
    table = read_forecast_file(_save(tmp_path, "unplaced.json", unplaced)).table
    bad = tmp_path / "blank.csv"
    table.assign(latitude=fill, longitude=fill).to_csv(bad, index=False, date_format="%Y-%m-%d")
    rc = run(bad, "bad")
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 1 and err == [f"sca2lstm forecast: error: --weather_forecast {bad}: its columns 'latitude' and "
                               "'longitude' hold no number on any row, so the place it is for cannot be checked; fill "
                               "them in decimal degrees or leave both columns out"], err
    assert not (tmp_path / "bad").exists()
    plain = tmp_path / "plain.csv"
    table.to_csv(plain, index=False, date_format="%Y-%m-%d")
    assert run(plain, "ok") == 0
