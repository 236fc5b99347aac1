"""Archives of past forecasts: training windows take the archived forecast of their issue date, reforecasts
read the forecast of each issue date, and an archive without PET gets the model's kind of PET."""

from __future__ import annotations

import logging
import re
import shutil

import numpy as np
import pandas as pd
import pytest

from sca2lstm.checkpoint import load_model
from sca2lstm.data.pet import oudin_pet
from sca2lstm.errors import DataError
from sca2lstm.evaluation.operational import issue_forecast
from sca2lstm.weather.archive import read_archive, weather_for_issue
from tolerance import HALF_4TH_DECIMAL, assert_forecasts_close


def _archive(issue_dates, leads=7, members=1, rain=lambda issue, k, m: 100.0 + k + 10 * m):
    rows = []
    for t0 in pd.DatetimeIndex(issue_dates):
        for m in range(members):
            for k in range(1, leads + 1):
                rows.append({"issue_date": t0.date(), "lead_days": k, "valid_date": (t0 + pd.Timedelta(days=k)).date(),
                             "member": m, "precipitation": rain(t0, k, m), "temperature": 12.0 + k})
    return pd.DataFrame(rows)


@pytest.fixture()
def data_with_archive(tiny_data_dir, tmp_path):
    d = tmp_path / "data"
    shutil.copytree(tiny_data_dir, d)
    (d / "weather_archive").mkdir()
    _archive(pd.date_range("1971-01-01", "1974-12-31")).to_csv(d / "weather_archive" / "32006.csv", index=False)
    return d


@pytest.mark.slow
def test_training_windows_take_the_archived_forecast_of_their_issue_date(tiny_cfg, data_with_archive, tmp_path):
    from sca2lstm.training.pretrain import prepare_pretraining_data, train_settings, weather_archives
    from sca2lstm.training.trainer import Trainer
    from sca2lstm.models.sca2lstm import SCA2LSTM

    cfg = tiny_cfg.replace(training={"forecast_fraction": 1.0, "forecast_weather_known": 1.0})
    prep = prepare_pretraining_data(cfg, data_with_archive, None)
    arch = weather_archives(cfg, data_with_archive, prep.data)
    b = prep.basins.index("32006")
    other = next(i for i, x in enumerate(prep.basins) if x != "32006")
    assert arch is not None and arch.by_basin[b] and not arch.by_basin[other]
    tr = Trainer(SCA2LSTM(cfg), prep.data, prep.train_periods, prep.data, prep.val_periods, train_settings(cfg),
                 "cpu", tmp_path / "s.pth", {}, progress=False, weather_archive=arch)
    L, F = cfg.training.seq_len, cfg.training.forecast_leads
    rec = prep.data.records[b]
    starts = np.array([rec.index_of("1972-03-01"), rec.index_of("1973-07-10"), rec.index_of("1972-03-01")])
    bb = np.array([b, b, other])
    x, miss, y, _, _ = prep.data.gather(bb, starts, L)
    rng = np.random.default_rng(0)
    x2, m2, _, _ = tr._issue_time_windows(x, miss, y.copy(), rng, bb, starts)
    lw = tr.lead_weather
    p = lw.raw(x2, m2, "precipitation")
    pos = L - 1 - F
    assert np.allclose(p[0, pos + 1:pos + 1 + F], 100.0 + np.arange(1, F + 1), atol=1e-3)   # archived values
    assert np.allclose(p[1, pos + 1:pos + 1 + F], 100.0 + np.arange(1, F + 1), atol=1e-3)
    obs = lw.raw(x, miss, "precipitation")
    assert np.allclose(p[2], obs[2], equal_nan=True)           # a basin without archive keeps the observed
    assert np.allclose(p[0, :pos + 1], obs[0, :pos + 1], equal_nan=True)   # days up to the issue date unchanged
    # the 7-day sum on lead 7 is the archived week
    s7 = lw.raw(x2, m2, "precip_sum_7d")[0, pos + F]
    assert np.isclose(s7, sum(100.0 + k for k in range(1, F + 1)), rtol=1e-4)


def test_archive_without_pet_gets_the_models_pet_and_reforecasts_read_each_issue_date(
        pretrained_ckpt, data_with_archive):
    bundle = load_model(pretrained_ckpt)
    cfg = bundle[1]
    from sca2lstm.data import reader

    lat = reader.basin_attribute(data_with_archive, "32006", "gauge_lat")
    arch = read_archive(data_with_archive / "weather_archive" / "32006.csv", cfg, lat)
    t = arch.table.iloc[:7]
    assert np.allclose(t["peti"], oudin_pet(t["temperature"].to_numpy(), lat, t["valid_date"].dt.day_of_year.to_numpy()))
    w = weather_for_issue(arch, "1973-05-02", 7, ["precipitation", "temperature"])
    assert w["date"].iloc[0] == pd.Timestamp("1973-05-03") and w["precipitation"].iloc[0] == 101.0
    with pytest.raises(DataError, match="no forecast issued on 1975-06-01 in this archive"):
        weather_for_issue(arch, "1975-06-01", 7, ["precipitation"])
    # a reforecast from the archive equals the same weather given as a table
    fa = issue_forecast(bundle, "32006", data_dir=data_with_archive, issue_date="1973-05-02", leads=7,
                        weather_forecast=arch)
    wt = w.assign(peti=oudin_pet(w["temperature"].to_numpy(), lat, w["date"].dt.day_of_year.to_numpy()))
    ft = issue_forecast(bundle, "32006", data_dir=data_with_archive, issue_date="1973-05-02", leads=7,
                        weather_forecast=wt[["date", "precipitation", "peti", "temperature"]])
    assert np.allclose(fa.table["median"], ft.table["median"], rtol=1e-6)


def test_an_archive_fetched_for_another_place_is_refused_by_training(tiny_data_dir, tiny_cfg, tmp_path):
    """An archive whose latitude/longitude (written by `weather archive`) lie far from the gauge is another
    station's weather: training refuses it, naming the distance, rather than learning from it."""
    from sca2lstm.data import reader
    from sca2lstm.data.dataset import load_basin
    from sca2lstm.weather.archive import load_archives

    d = tmp_path / "data"
    shutil.copytree(tiny_data_dir, d)
    (d / "weather_archive").mkdir()
    recs = [load_basin(d, "32006", tiny_cfg)]
    gauge = {c: reader.basin_attribute(d, "32006", f"gauge_{c[:3]}") for c in ("latitude", "longitude")}
    _archive(["1972-01-01"]).assign(**gauge).to_csv(d / "weather_archive" / "32006.csv", index=False)
    assert load_archives(d, recs, tiny_cfg, ["precipitation", "temperature"]) is not None
    _archive(["1972-01-01"]).assign(latitude=47.9, longitude=8.7).to_csv(d / "weather_archive" / "32006.csv",
                                                                        index=False)
    with pytest.raises(DataError, match=r"weather archive .*32006.csv: it is a forecast for 47.90, 8.70, \d+ km"):
        load_archives(d, recs, tiny_cfg, ["precipitation", "temperature"])


def test_training_leaves_out_a_member_without_the_temperature_of_its_pet_not_the_archive(tiny_data_dir, tiny_cfg,
                                                                                         tmp_path, caplog):
    """A member-day without the temperature the model derives its PET from leaves that member out of its
    issue date's windows (another member is drawn), a date with no complete member has no archived forecast,
    and the rest of the archive feeds training; a log line counts what was left out."""
    from sca2lstm.data.dataset import load_basin
    from sca2lstm.weather.archive import load_archives
    from sca2lstm.weather.files import pet_input

    d = tmp_path / "data"
    shutil.copytree(tiny_data_dir, d)
    (d / "weather_archive").mkdir()
    a = _archive(["1972-01-01", "1972-01-02", "1972-01-03"], members=2)
    a.loc[(a["issue_date"] == pd.Timestamp("1972-01-01").date()) & (a["member"] == 1) & (a["lead_days"] == 3),
          "temperature"] = np.nan                                 # member 1 of the first date: no PET on lead 3
    a.loc[(a["issue_date"] == pd.Timestamp("1972-01-02").date()) & (a["lead_days"] == 5), "temperature"] = np.nan
    a.to_csv(d / "weather_archive" / "32006.csv", index=False)
    rec = load_basin(d, "32006", tiny_cfg)
    pet = pet_input(tiny_cfg)
    assert pet is not None and tiny_cfg.data.pet_from_temperature != "never"
    with caplog.at_level(logging.INFO, logger="sca2lstm.weather.archive"):
        arch = load_archives(d, [rec], tiny_cfg, ["precipitation", pet])
    assert ("Basin 32006: 3 archived member forecast(s) on 2 issue date(s) incomplete on their lead days (a gap, or "
            "no temperature for the PET) left out of its windows; 1 issue date(s) with no complete member have no "
            "archived forecast") in caplog.text
    first = int((pd.Timestamp("1972-01-01") - pd.Timestamp(rec.dates[0])).days)
    days = np.array([first, first + 1, first + 2] * 20)
    fc, found = arch.lookup(np.zeros(len(days), dtype=int), days, 7, np.random.default_rng(0))
    assert found.tolist() == [True, False, True] * 20
    rain = fc["precipitation"]
    assert np.allclose(rain[days == first], 100.0 + np.arange(1, 8))   # member 0 only: member 1 is left out
    assert set(np.round(rain[days == first + 2, 0], 3)) == {101.0, 111.0}   # both members of a complete date


@pytest.mark.slow
def test_archive_lacking_an_input_is_refused(tiny_cfg, tmp_path):
    a = _archive(["1972-01-01"]).drop(columns=["temperature"])
    a.to_csv(tmp_path / "a.csv", index=False)
    with pytest.raises(DataError, match="no temperature, from which this model derives its PET"):
        read_archive(tmp_path / "a.csv", tiny_cfg, 52.0)
    a = _archive(["1972-01-01"])
    a.loc[0, "lead_days"] = 3
    a.to_csv(tmp_path / "b.csv", index=False)
    with pytest.raises(DataError, match="lead_days 3 does not match"):
        read_archive(tmp_path / "b.csv", tiny_cfg, 52.0)


def test_reforecast_from_an_archive_gives_each_issue_date_its_forecast(pretrained_ckpt, data_with_archive, tmp_path,
                                                                         capsys):
    """The batched reforecast with the archive equals one forecast per issue date with the same archive; the
    issue dates the archive lacks, or holds incomplete, or without an observed flow in the 30 days up to them
    are left out, and the command says which for which dates."""
    from sca2lstm.cli.forecast import main
    from sca2lstm.weather.files import read_forecast_file

    bundle = load_model(pretrained_ckpt)
    p = data_with_archive / "weather_archive" / "32006.csv"
    a = pd.read_csv(p)
    a = a[pd.to_datetime(a["issue_date"]) != pd.Timestamp("1973-05-03")]     # a gap in the archive
    a.loc[(a["issue_date"] == "1973-05-04") & (a["lead_days"] == 2), "precipitation"] = np.nan  # its one member
    a.to_csv(p, index=False)
    ts = next(data_with_archive.glob("timeseries/*32006*.csv"))
    flow = pd.read_csv(ts)
    gauge_down = flow["date"].between("1973-04-07", "1973-05-07")   # the last flow on 1973-04-06
    flow.loc[gauge_down, ["discharge_vol", "discharge_spec"]] = np.nan
    flow.to_csv(ts, index=False)
    rc = main(["--model", str(pretrained_ckpt), "--basin", "32006", "--data_dir", str(data_with_archive),
               "--from", "1973-05-01", "--to", "1973-05-07", "--weather_forecast", str(p),
               "--output_dir", str(tmp_path / "out")])
    out = capsys.readouterr()
    assert rc == 0, out.err
    assert ("left out: 4 of 7 issue dates asked: 1973-05-03 (no forecast in the archive), 1973-05-04 (no complete "
            "forecast in the archive), 1973-05-06..1973-05-07 (no observed flow in the 30 days up to it)\n") in out.out
    t = pd.read_csv(next((tmp_path / "out").glob("*/reforecast.csv")), parse_dates=["issue_date"])
    assert sorted(t["issue_date"].dt.strftime("%Y-%m-%d").unique()) == ["1973-05-01", "1973-05-02", "1973-05-05"]
    assert (t["setting"] == "issue-time+archived-weather-forecast").all()
    wf = read_forecast_file(p)
    from sca2lstm.evaluation.reforecast import warned_forecast

    # the single issued forecast with the same adjustments (blend per lead, recession bound) as the reforecast
    one = warned_forecast(bundle, "32006", data_dir=data_with_archive, issue_date="1973-05-02", leads=7,
                          weather_forecast=wf, model_path=pretrained_ckpt)[0]
    got = t[t["issue_date"] == "1973-05-02"].sort_values("lead_days").reset_index(drop=True)
    # one window in the reforecast's batch against alone, read back from the CSV's 4 decimals (tests/tolerance.py)
    assert_forecasts_close(got, one.table, bundle, "32006", last_obs=got["persistence"], rounding=HALF_4TH_DECIMAL)


def test_archive_headers_with_spaces_or_capitals_read_as_the_canonical_names(tmp_path):
    """A header typed as the docs print it (``issue_date, lead_days, ...``) or in capitals reads the same
    archive; two columns taking one name are refused."""
    from sca2lstm.weather.files import read_forecast_file

    a = _archive(["1972-01-01", "1972-01-02"], members=2)
    a.to_csv(tmp_path / "canon.csv", index=False)
    (tmp_path / "spaced.csv").write_text(a.to_csv(index=False).replace(",", ", "))
    a.rename(columns=lambda c: c.replace("_", " ").upper()).to_csv(tmp_path / "caps.csv", index=False)
    ref = read_forecast_file(tmp_path / "canon.csv").table
    for name in ("spaced.csv", "caps.csv"):
        got = read_forecast_file(tmp_path / name).table
        pd.testing.assert_frame_equal(got[ref.columns], ref)
    a.assign(Precipitation=1.0).to_csv(tmp_path / "twice.csv", index=False)
    with pytest.raises(DataError, match="columns 'precipitation' and 'Precipitation' both read as 'precipitation'"):
        read_forecast_file(tmp_path / "twice.csv")


def test_an_archive_with_named_members_reads_as_the_same_archive_numbered(tmp_path):
    """Members named as other tools name them (control first, then by their number, then the other names
    alphabetically), or numbered in ECMWF's ``number`` column, read as the same archive with members 0..3; an
    empty member, a fraction, or two columns that could be the members are refused in one line."""
    from sca2lstm.weather.files import read_forecast_file

    a = _archive(["1972-01-01", "1972-01-02"], members=4, rain=lambda issue, k, m: k + 10.0 * m + issue.day)
    a.to_csv(tmp_path / "numbered.csv", index=False)
    ref = read_forecast_file(tmp_path / "numbered.csv").table
    assert ref["member"].tolist() == a["member"].tolist()
    names = {"control.csv": ("control", "pf01", "pf02", "pf03"),
             "ecmwf_style.csv": ("CF", "ens_02", "ENS-10", "member11"),   # by number, not ENS-10 before ens_02
             "short.csv": ("c", "p1", "p2", "p3"),
             "others.csv": ("hres", "mem01", "alpha", "beta")}
    for name, labels in names.items():
        a.assign(member=a["member"].map(dict(enumerate(labels)))).to_csv(tmp_path / name, index=False)
    a.rename(columns={"member": "number"}).to_csv(tmp_path / "number.csv", index=False)
    a.assign(member=a["member"].map(dict(enumerate(names["control.csv"])))).rename(
        columns={"member": "Ensemble Member"}).to_csv(tmp_path / "ensemble_member.csv", index=False)
    for name in [*names, "number.csv", "ensemble_member.csv"]:
        pd.testing.assert_frame_equal(read_forecast_file(tmp_path / name).table, ref, obj=name)
    # a `number` beside `member` is not the members
    a.assign(number=7).to_csv(tmp_path / "both.csv", index=False)
    assert read_forecast_file(tmp_path / "both.csv").table["member"].tolist() == a["member"].tolist()
    a.rename(columns={"member": "number"}).assign(ensemble_member="pf01").to_csv(tmp_path / "two.csv", index=False)
    with pytest.raises(DataError, match="columns 'number' and 'ensemble_member' could both be the member column"):
        read_forecast_file(tmp_path / "two.csv")
    blank = a.assign(member=a["member"].map(dict(enumerate(names["control.csv"]))).astype(object))
    blank.loc[5, "member"] = None
    blank.to_csv(tmp_path / "blank.csv", index=False)
    with pytest.raises(DataError, match=r"blank.csv: column 'member' is empty on row 6 below the header; .* pf01"):
        read_forecast_file(tmp_path / "blank.csv")
    a.rename(columns={"member": "number"}).assign(number=0.5).to_csv(tmp_path / "half.csv", index=False)
    with pytest.raises(DataError, match="column 'number' holds '0.5', not a whole number; members are whole numbers"):
        read_forecast_file(tmp_path / "half.csv")


def test_archive_without_valid_date_is_refused_in_one_line_not_guessed_from_lead_days(pretrained_ckpt,
                                                                                    data_with_archive, tmp_path,
                                                                                    capsys):
    """lead_days alone does not say which day a row is for (tools count from 0 or from 1): a reforecast from an
    archive without valid_date, with or without members, is refused with exit 1, naming the column."""
    from sca2lstm.cli.forecast import main

    a = _archive(pd.date_range("1973-05-01", "1973-05-04"))
    for name, table in (("ens.csv", a.drop(columns=["valid_date"])),
                        ("one.csv", a.drop(columns=["valid_date", "member"]))):
        table.to_csv(tmp_path / name, index=False)
        rc = main(["--model", str(pretrained_ckpt), "--basin", "32006", "--data_dir", str(data_with_archive),
                   "--from", "1973-05-01", "--to", "1973-05-04", "--weather_forecast", str(tmp_path / name),
                   "--output_dir", str(tmp_path / "out")])
        err = capsys.readouterr().err.strip().splitlines()
        assert rc == 1 and len(err) == 1 and f"{name}: no column 'valid_date'" in err[0], err
        assert not (tmp_path / "out").exists()


def test_an_archive_without_issue_dates_is_refused_naming_the_missing_column(tmp_path):
    """Several forecasts of one day without the issue_date column are refused in one line naming that column
    (the line was 'two different rows ... keep one (two archives joined?)', counting every clashing row of the
    file); an issue_date left empty on some rows is refused naming the first (such a row was read by no
    forecast, without a word); the same table with its issue dates reads, and a single forecast needs none."""
    from sca2lstm.weather.files import read_forecast_file

    a = _archive(pd.date_range("1973-05-01", "1973-05-04"))
    a.drop(columns=["issue_date"]).to_csv(tmp_path / "no_column.csv", index=False)
    with pytest.raises(DataError) as e:
        read_forecast_file(tmp_path / "no_column.csv")
    assert ("no_column.csv: 2 different rows for valid 1973-05-03, member 0, and no issue date to tell them apart; a "
            "table of several forecasts (an archive) needs column 'issue_date' on every row") in str(e.value)
    a.assign(issue_date=a["issue_date"].where(a["lead_days"] != 3)).to_csv(tmp_path / "empty.csv", index=False)
    with pytest.raises(DataError, match=r"empty.csv: column 'issue_date' is empty on row 3 below the header \(valid "
                                        r"1973-05-04\); give every row its issue date"):
        read_forecast_file(tmp_path / "empty.csv")
    a.to_csv(tmp_path / "archive.csv", index=False)
    assert len(read_forecast_file(tmp_path / "archive.csv").issue_dates) == 4
    one = a[a["issue_date"] == a["issue_date"].iloc[0]].drop(columns=["issue_date"])
    one.to_csv(tmp_path / "one.csv", index=False)
    assert len(read_forecast_file(tmp_path / "one.csv").table) == 7


def test_archive_separated_by_semicolons_or_tabs_with_decimal_commas_reads_the_same(tmp_path):
    """A spreadsheet's export (semicolons and decimal commas, or tabs) reads the same archive, and a plain
    table so written the same days; a Parquet file is refused in one line saying what it is."""
    from sca2lstm.cli.forecast import _read_weather
    from sca2lstm.weather.files import read_forecast_file

    a = _archive(["1972-01-01", "1972-01-02"], members=2, rain=lambda issue, k, m: 0.25 * k + m)
    a.to_csv(tmp_path / "canon.csv", index=False)
    a.to_csv(tmp_path / "semi.csv", index=False, sep=";", decimal=",")
    a.to_csv(tmp_path / "tabs.tsv", index=False, sep="\t")
    assert "0,25" in (tmp_path / "semi.csv").read_text()
    ref = read_forecast_file(tmp_path / "canon.csv").table
    for name in ("semi.csv", "tabs.tsv"):
        pd.testing.assert_frame_equal(read_forecast_file(tmp_path / name).table, ref)
    plain = a[a["issue_date"] == a["issue_date"].iloc[0]].query("member == 0")[["valid_date", "precipitation",
                                                                                "temperature"]]
    plain = plain.rename(columns={"valid_date": "date"})
    plain.to_csv(tmp_path / "plain.csv", index=False, sep=";", decimal=",")
    got = _read_weather(tmp_path / "plain.csv", None, "32006")
    assert list(got.columns) == ["date", "precipitation", "temperature"]
    assert np.allclose(got["precipitation"], plain["precipitation"])
    (tmp_path / "a.parquet").write_bytes(b"PAR1" + bytes(64) + b"PAR1")
    with pytest.raises(DataError, match="a.parquet is a Parquet file; save the table as CSV"):
        read_forecast_file(tmp_path / "a.parquet")


def test_a_long_ensemble_archive_is_indexed_in_one_pass():
    """Three years of 10-member forecasts (11 000 runs) are put into arrays in one pass (0.02 s), each issue
    day's members in the order of their numbers; a loop over the runs took 3.5 s here (half a minute of a
    one-minute reforecast from ten years of 20 members)."""
    import time

    from sca2lstm.weather.archive import ArchivedForecast
    from sca2lstm.weather.files import WeatherForecast
    from sca2lstm.weather.windows import LeadWeather

    issue = pd.date_range("1972-01-01", "1974-12-31")
    M, L = 10, 7
    i = np.repeat(issue.to_numpy(), M * L)
    m = np.tile(np.repeat(np.arange(M)[::-1], L), len(issue))        # members listed from the highest number
    k = np.tile(np.arange(1, L + 1), len(issue) * M)
    table = pd.DataFrame({"issue_date": i, "valid_date": i + k.astype("timedelta64[D]"), "member": m,
                          "precipitation": 10.0 * m + k, "temperature": 5.0})
    lw = LeadWeather(["precipitation", "temperature"], [0.0, 0.0], [1.0, 1.0])
    t = time.perf_counter()
    af = ArchivedForecast(lw, WeatherForecast(table, "a"), "1971-12-01", L)
    assert time.perf_counter() - t < 0.5
    day = (pd.Timestamp("1973-06-01") - pd.Timestamp("1971-12-01")).days
    assert af.members == M and af.available([day, day + 2000]).tolist() == [True, False]
    x, miss = np.zeros((1, 20, 2), np.float32), np.zeros((1, 20, 2), bool)
    out = af(x, miss, 0, np.array([day]), 5)
    assert [float(o[0][0, 6, 0]) for o in out] == [10.0 * j + 1 for j in range(M)]   # lead 1 of member j


def test_reforecast_of_one_forecast_a_day_takes_the_forecast_spread_whatever_its_member_numbers(
        pretrained_ckpt, data_with_archive):
    """An archive of one forecast per issue date whose member column varies (a run number, or a name) is issued
    as one forecast a day, with the calibration's forecast spread, exactly as with member 0 throughout: not as an
    ensemble because two member numbers occur in the file."""
    from sca2lstm.evaluation.reforecast import reforecast
    from sca2lstm.weather.files import from_long_table

    bundle = load_model(pretrained_ckpt)
    a = _archive(pd.date_range("1973-05-01", "1973-05-06"), rain=lambda issue, k, m: 3.0 * k)
    runs = a.assign(member=[int(d.day) % 2 for d in pd.to_datetime(a["issue_date"])])
    named = a.assign(member=["control" if d.day % 2 else "pf07" for d in pd.to_datetime(a["issue_date"])])
    tabs = [reforecast(bundle, "32006", "1973-05-01", "1973-05-06", data_dir=data_with_archive,
                       model_path=pretrained_ckpt, weather_archive=from_long_table(t, "a"))[0]
            for t in (a, runs, named)]
    assert len(tabs[0]) == 6 * 7
    for c in ("median", "q05", "q95"):
        assert np.allclose(tabs[0][c], tabs[1][c]) and np.allclose(tabs[0][c], tabs[2][c]), c


def test_reforecast_leaves_out_an_archives_incomplete_members_as_a_single_forecast_does(pretrained_ckpt,
                                                                                      data_with_archive):
    """A gap in one member's rain, a day without temperature (from which the model's PET is derived) and an
    issue date holding a member fewer: each issue date is reforecast from its complete members, equal to the
    single forecast of that date, instead of the date, or the whole archive, being left out. A date with
    fewer than half of its members complete is left out."""
    from sca2lstm.evaluation.reforecast import reforecast, warned_forecast
    from sca2lstm.weather.files import from_long_table

    bundle = load_model(pretrained_ckpt)
    a = _archive(pd.date_range("1973-05-01", "1973-05-06"), members=3, rain=lambda issue, k, m: 2.0 * k + 9.0 * m)
    on = lambda d, m, k: (a["issue_date"] == pd.Timestamp(d).date()) & (a["member"] == m) & (a["lead_days"] == k)  # noqa: E731
    a.loc[on("1973-05-02", 1, 3), "precipitation"] = np.nan
    a.loc[on("1973-05-03", 0, 2), "temperature"] = np.nan
    a.loc[on("1973-05-05", 0, 1) | on("1973-05-05", 2, 6), "precipitation"] = np.nan    # 1 of 3 complete
    a = a[~((a["issue_date"] == pd.Timestamp("1973-05-04").date()) & (a["member"] == 2))]
    wf = from_long_table(a, "archive.csv")
    tab = reforecast(bundle, "32006", "1973-05-01", "1973-05-06", data_dir=data_with_archive,
                     model_path=pretrained_ckpt, weather_archive=wf)[0]
    assert sorted(tab["issue_date"].dt.day.unique()) == [1, 2, 3, 4, 6]
    for d in ("1973-05-02", "1973-05-03", "1973-05-04"):
        one = warned_forecast(bundle, "32006", data_dir=data_with_archive, issue_date=d, leads=7, weather_forecast=wf,
                              model_path=pretrained_ckpt)[0].table
        got = tab[tab["issue_date"] == d].sort_values("lead_days").reset_index(drop=True)
        # the date's members in the reforecast's batch against alone (tests/tolerance.py)
        assert_forecasts_close(got, one, bundle, "32006", ("median", "q05", "q95"), spread_from=pretrained_ckpt,
                               last_obs=got["persistence"], msg=d)
    with pytest.raises(DataError, match="member 0 has no value of 'precipitation' on 1973-05-06"):
        warned_forecast(bundle, "32006", data_dir=data_with_archive, issue_date="1973-05-05", leads=7,
                        weather_forecast=wf, model_path=pretrained_ckpt)


def test_reforecast_of_fewer_leads_reads_an_archive_of_that_many(pretrained_ckpt, data_with_archive):
    """An archive of 4 lead days reforecasts leads=4 of a 7-lead model, equal to the single forecasts of 4 leads
    from it; asked for 7 leads it is refused in one line saying how far it reaches."""
    from sca2lstm.evaluation.reforecast import reforecast, warned_forecast
    from sca2lstm.weather.files import from_long_table

    bundle = load_model(pretrained_ckpt)
    wf = from_long_table(_archive(pd.date_range("1973-05-01", "1973-05-03"), leads=4, members=2), "short.csv")
    args = dict(data_dir=data_with_archive, model_path=pretrained_ckpt, weather_archive=wf)
    tab = reforecast(bundle, "32006", "1973-05-01", "1973-05-03", leads=4, **args)[0]
    assert len(tab) == 3 * 4
    one = warned_forecast(bundle, "32006", data_dir=data_with_archive, issue_date="1973-05-02", leads=4,
                          weather_forecast=wf, model_path=pretrained_ckpt)[0].table
    got = tab[tab["issue_date"] == "1973-05-02"].sort_values("lead_days").reset_index(drop=True)
    assert_forecasts_close(got, one, bundle, "32006", ("median", "q05", "q95"), spread_from=pretrained_ckpt,
                           last_obs=got["persistence"])     # another batch (tests/tolerance.py)
    with pytest.raises(DataError, match="with every lead 1..7; its forecasts reach lead 4: give --leads 4"):
        reforecast(bundle, "32006", "1973-05-01", "1973-05-03", **args)


def test_reforecast_of_an_ensemble_runs_batches_of_bounded_windows_whatever_the_members(
        pretrained_ckpt, data_with_archive, monkeypatch):
    """An ensemble's issue dates are taken ENSEMBLE_WINDOWS // members at a time, so a model run holds at most
    that many windows (256 dates of 50 members, 12 800 windows at once, took 6 GB with the default model), with
    the same table."""
    import sca2lstm.evaluation.operational as op
    import sca2lstm.evaluation.reforecast as rf
    from sca2lstm.evaluation.reforecast import reforecast
    from sca2lstm.weather.files import from_long_table

    bundle = load_model(pretrained_ckpt)
    wf = from_long_table(_archive(pd.date_range("1973-05-01", "1973-05-10"), members=4), "ens.csv")
    args = dict(data_dir=data_with_archive, model_path=pretrained_ckpt, weather_archive=wf)
    ref = reforecast(bundle, "32006", "1973-05-01", "1973-05-10", **args)[0]
    sizes, run = [], op._run
    monkeypatch.setattr(op, "_run", lambda model, x, *a, **k: sizes.append(len(x)) or run(model, x, *a, **k))
    monkeypatch.setattr(rf, "ENSEMBLE_WINDOWS", 8)
    got = reforecast(bundle, "32006", "1973-05-01", "1973-05-10", **args)[0]
    assert sizes == [8] * 5
    # each window in a batch of 8 against one of all 40 (tests/tolerance.py)
    assert_forecasts_close(got, ref, bundle, "32006", ("median", "q05", "q95"), spread_from=pretrained_ckpt,
                           last_obs=ref["persistence"])


def test_archive_dates_with_a_time_zone_are_refused_naming_the_zone(tmp_path):
    """2009-12-25T00:00:00+01:00 is 24 December in UTC: the day is not the file's to convert, so a zoned time is
    refused in one line saying so (not as an unreadable date); a plain time of day is read as its day."""
    from sca2lstm.weather.files import read_forecast_file

    a = _archive(["1972-01-01"])
    a.assign(issue_date="1972-01-01 00:00").to_csv(tmp_path / "time.csv", index=False)
    assert read_forecast_file(tmp_path / "time.csv").issue_dates[0] == pd.Timestamp("1972-01-01")
    for zone in ("Z", "+01:00"):
        a.assign(issue_date=f"1972-01-01T00:00:00{zone}").to_csv(tmp_path / "zoned.csv", index=False)
        with pytest.raises(DataError, match="column 'issue_date' holds times with a time zone "
                                            + re.escape(f"('1972-01-01T00:00:00{zone}'), which are not converted")):
            read_forecast_file(tmp_path / "zoned.csv")


def test_training_reads_an_archives_own_pet_as_a_reforecast_does_where_one_row_lacks_it(tiny_cfg, tmp_path):
    """An archive that carries the model's own PET column with one row left blank: training (read_archive) reads
    the file's PET on every other row, as a reforecast of the same archive does (with_model_pet), instead of
    silently replacing the whole column by Oudin PET from the temperature."""
    from sca2lstm.weather.archive import with_model_pet
    from sca2lstm.weather.files import from_long_table, pet_input

    pet = pet_input(tiny_cfg)
    assert pet is not None and tiny_cfg.data.pet_from_temperature != "always"
    a = _archive(pd.date_range("1973-05-01", "1973-05-03")).assign(**{pet: 0.5})
    a.loc[3, pet] = np.nan
    a.to_csv(tmp_path / "a.csv", index=False)
    trained = read_archive(tmp_path / "a.csv", tiny_cfg, 52.0).table
    reforecast = with_model_pet(from_long_table(a, "a.csv"), tiny_cfg, 52.0).table
    given = trained.index != 3
    assert np.allclose(trained.loc[given, pet], 0.5)
    assert np.allclose(trained[pet], reforecast[pet], equal_nan=True)


def test_an_archive_of_one_forecast_a_day_then_an_ensemble_reforecasts_each_span_apart(pretrained_ckpt,
                                                                                     data_with_archive):
    """An archive holding one forecast a day on some issue dates and an ensemble on later ones is refused for a
    span that mixes them, saying to reforecast the spans apart; each span alone is then reforecast, as if the
    archive held only its dates (not refused for dates outside it)."""
    from sca2lstm.evaluation.reforecast import reforecast
    from sca2lstm.weather.files import from_long_table

    bundle = load_model(pretrained_ckpt)
    single = _archive(pd.date_range("1973-05-01", "1973-05-03"))
    ensemble = _archive(pd.date_range("1973-05-10", "1973-05-12"), members=3)
    wf = from_long_table(pd.concat([single, ensemble], ignore_index=True), "mixed.csv")
    args = dict(data_dir=data_with_archive, model_path=pretrained_ckpt, weather_archive=wf)
    with pytest.raises(DataError, match="reforecast the spans apart"):
        reforecast(bundle, "32006", "1973-05-01", "1973-05-12", **args)
    for (s, e), alone in ((("1973-05-01", "1973-05-03"), single), (("1973-05-10", "1973-05-12"), ensemble)):
        got = reforecast(bundle, "32006", s, e, **args)[0]
        want = reforecast(bundle, "32006", s, e, data_dir=data_with_archive, model_path=pretrained_ckpt,
                          weather_archive=from_long_table(alone, "alone.csv"))[0]
        assert len(got) == 3 * 7
        for c in ("median", "q05", "q95"):
            assert np.allclose(got[c], want[c]), (s, c)


@pytest.mark.slow
def test_the_training_log_says_an_archive_outside_the_training_days_is_read_by_no_window(pretrained_ckpt,
                                                                                          tiny_data_dir, tmp_path,
                                                                                          caplog):
    """An archive of the test years only (1976-1977), beside fine-tuning days that end in 1974, feeds no training
    window: the log says so, naming the training days, instead of saying it feeds them; an archive of the training
    years is said to feed them, with how many of its issue dates lie in the training days (an archive reaching
    half a year into them feeds 184 of its 731, not all)."""
    from sca2lstm.training.finetune import finetune

    d = tmp_path / "data"
    shutil.copytree(tiny_data_dir, d)
    (d / "weather_archive").mkdir()
    for first, last, says in (("1976-01-01", "1977-06-30", "holds no complete forecast issued in its training days "
                                                           "(1971-01-01..1974-12-31): training reads none of it"),
                              ("1972-01-01", "1973-12-31", "(731 issue dates, 731 of them complete and issued in "
                                                           "its training days 1971-01-01..1974-12-31) feeds its "
                                                           "issue-time windows"),
                              ("1974-07-01", "1976-06-30", "(731 issue dates, 184 of them complete and issued in "
                                                           "its training days 1971-01-01..1974-12-31) feeds its "
                                                           "issue-time windows")):
        _archive(pd.date_range(first, last)).to_csv(d / "weather_archive" / "32006.csv", index=False)
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="sca2lstm.weather.archive"):
            finetune(pretrained_ckpt, "32006", {"epochs": 1, "min_records": 0}, data_dir=d, out_root=tmp_path / first,
                     progress=False)
        [line] = [r.getMessage() for r in caplog.records if "weather forecast archive" in r.getMessage()]
        assert says in line, line


def test_a_two_member_ensemble_with_one_member_complete_reforecasts_as_its_single_forecast(pretrained_ckpt,
                                                                                          data_with_archive):
    """A date of a two-member archive on which one member has a gap: ``forecast --weather_forecast`` issues it
    from the complete member, as one weather forecast, with a note; the reforecast of that date (alone, or in a
    span of whole ensemble dates) issues the same forecast from the same member."""
    from sca2lstm.evaluation.reforecast import reforecast, warned_forecast
    from sca2lstm.weather.files import from_long_table

    bundle = load_model(pretrained_ckpt)
    a = _archive(pd.date_range("1973-05-01", "1973-05-03"), members=2, rain=lambda issue, k, m: 2.0 * k + 9.0 * m)
    gap = (a["issue_date"] == pd.Timestamp("1973-05-02").date()) & (a["member"] == 0) & (a["lead_days"] == 4)
    a.loc[gap, "precipitation"] = np.nan
    wf = from_long_table(a, "two.csv")
    one = warned_forecast(bundle, "32006", data_dir=data_with_archive, issue_date="1973-05-02", leads=7,
                          weather_forecast=wf, model_path=pretrained_ckpt)[0]
    assert any("1 of its 2 members left out" in n and "the other one alone" in n for n in one.data["notes"])
    args = dict(data_dir=data_with_archive, model_path=pretrained_ckpt, weather_archive=wf)
    for start, end in (("1973-05-02", "1973-05-02"), ("1973-05-01", "1973-05-03")):
        tab = reforecast(bundle, "32006", start, end, **args)[0]
        got = tab[tab["issue_date"] == "1973-05-02"].sort_values("lead_days").reset_index(drop=True)
        assert len(got) == 7, (start, end)
        assert (got["weather_members"] == 1).all()     # reforecast.csv says it was issued from one member
        assert_forecasts_close(got, one.table, bundle, "32006", ("median", "q05", "q95"), spread_from=pretrained_ckpt,
                               last_obs=got["persistence"], msg=f"{start}..{end}")
    assert (tab.loc[tab["issue_date"] != "1973-05-02", "weather_members"] == 2).all()


def test_scattered_dates_left_with_one_member_run_alone_and_reforecast_as_their_single_forecasts(
        pretrained_ckpt, data_with_archive, monkeypatch):
    """A month of a two-member archive with dates left with one complete member at its start (two in a row) and
    near its end: the one weather run is run on those three dates only, not on every date between them, and
    each of them reforecasts as its single forecast from the same member."""
    import sca2lstm.evaluation.operational as operational
    from sca2lstm.evaluation.reforecast import reforecast, warned_forecast
    from sca2lstm.weather.files import from_long_table

    bundle = load_model(pretrained_ckpt)
    a = _archive(pd.date_range("1973-05-01", "1973-05-31"), members=2, rain=lambda issue, k, m: 2.0 * k + 9.0 * m)
    days = ["1973-05-02", "1973-05-03", "1973-05-29"]
    gap = a["issue_date"].isin(pd.DatetimeIndex(days).date) & (a["member"] == 1) & (a["lead_days"] == 4)
    a.loc[gap, "precipitation"] = np.nan
    wf = from_long_table(a, "two.csv")
    one_run = []
    real = operational.issue_time_hindcasts

    def counted(*args, lead_weather=None, **kw):   # the real runs; the issue dates of the one-member ones counted
        if lead_weather is not None and lead_weather.members == 1:
            one_run.append(sum(i1 - i0 for i0, i1 in args[2]))
        return real(*args, lead_weather=lead_weather, **kw)

    monkeypatch.setattr(operational, "issue_time_hindcasts", counted)
    tab = reforecast(bundle, "32006", "1973-05-01", "1973-05-31", data_dir=data_with_archive, model_path=pretrained_ckpt,
                     weather_archive=wf)[0]
    assert one_run == [len(days)], one_run
    assert sorted(tab.loc[tab["weather_members"] == 1, "issue_date"].dt.strftime("%Y-%m-%d").unique()) == days
    for day in days:
        single = from_long_table(a[a["issue_date"] == pd.Timestamp(day).date()], "one date.csv")
        want = warned_forecast(bundle, "32006", data_dir=data_with_archive, issue_date=day, leads=7,
                               weather_forecast=single, model_path=pretrained_ckpt)[0]
        got = tab[tab["issue_date"] == day].sort_values("lead_days").reset_index(drop=True)
        assert_forecasts_close(got, want.table, bundle, "32006", ("median", "q05", "q95"), spread_from=pretrained_ckpt,
                               last_obs=got["persistence"], msg=day)


@pytest.fixture(scope="module")
def et0_model(tiny_data_dir, tmp_path_factory):
    """A tiny model whose PET input is ``pet`` read from the basin's files (the kind Open-Meteo's FAO-56 ET0 stands
    for), trained one epoch on basin 32006."""
    from conftest import make_tiny_config
    from sca2lstm.training.pretrain import pretrain

    cfg = make_tiny_config(tiny_data_dir, data={"dynamic_inputs": ["precipitation", "pet", "temperature"],
                                                "basins": ["32006"]}, training={"epochs": 1})
    out = tmp_path_factory.mktemp("et0_model") / "sca2lstm.pth"
    pretrain(cfg, out, data_dir=tiny_data_dir, progress=False)
    return out


def _fetched_and_posted(dates):
    """An archive as the service exports it for a station with fetched forecasts (with ``et0``) and posted ones
    (temperature only) on alternate issue dates."""
    a = _archive(dates, rain=lambda issue, k, m: 2.0 * k + issue.day)
    fetched = pd.to_datetime(a["issue_date"]).dt.day % 2 == 1
    a["et0"] = np.where(fetched, 1.5 + 0.25 * a["lead_days"], np.nan)
    return a


def test_an_archive_of_runs_with_and_without_et0_gives_each_run_the_pet_it_gets_alone(et0_model, tiny_data_dir,
                                                                                        tmp_path, capsys):
    """An archive mixing fetched runs (with ET0) and posted ones (temperature only), for a model whose PET is read
    from the basin's files: each run's PET is the one that run given alone as the forecast gets (ET0, or Oudin PET
    from its temperature), bit for bit, so every date is reforecast (the posted ones were left out for a PET
    gap) as its single forecast, from the run alone or from the archive; the line and weather.json count the
    runs of each way."""
    import json

    from sca2lstm.cli.forecast import main
    from sca2lstm.evaluation.operational import weather_members
    from sca2lstm.evaluation.reforecast import warned_forecast
    from sca2lstm.weather.archive import with_model_pet
    from sca2lstm.weather.files import gauge_latitude, read_forecast_file

    bundle = load_model(et0_model)
    cfg, inputs = bundle[1], ["precipitation", "pet", "temperature"]
    lat = gauge_latitude(tiny_data_dir, "32006")
    dates = pd.date_range("1973-05-01", "1973-05-04")
    p = tmp_path / "archive.csv"
    _fetched_and_posted(dates).to_csv(p, index=False)
    off = ["--precip_mapping", "none", "--weather_lags", "none"]   # each date's own run, as alone
    rc = main(["--model", str(et0_model), "--basin", "32006", "--data_dir", str(tiny_data_dir), "--from", "1973-05-01",
               "--to", "1973-05-04", "--weather_forecast", str(p), "--output_dir", str(tmp_path / "out"), *off])
    out = capsys.readouterr()
    assert rc == 0, out.err
    assert (f"{p}: PET (pet) of its 4 runs, each as it alone gets it: 2 its et0 (FAO-56), 2 Oudin from its "
            "temperature (weather.json)") in out.out
    folder = next((tmp_path / "out").glob("*reforecast*"))
    assert json.loads((folder / "weather.json").read_text())["pet"] == {"et0": 2, "oudin": 2}
    tab = pd.read_csv(folder / "reforecast.csv", parse_dates=["issue_date"])
    assert len(tab) == 4 * 7 and "left out" not in out.out
    archive = read_forecast_file(p)
    read = with_model_pet(archive, cfg, lat)
    runs = _fetched_and_posted(dates)
    for d in dates:
        alone = tmp_path / f"{d.date()}.csv"
        runs[pd.to_datetime(runs["issue_date"]) == d].to_csv(alone, index=False)    # the run of d, given alone
        run = read_forecast_file(alone)
        want = weather_members(run, d, 7, inputs, cfg, lat)[0]
        np.testing.assert_array_equal(weather_for_issue(read, d, 7, inputs)[inputs].to_numpy(),
                                      want[inputs].to_numpy(), err_msg=str(d.date()))   # what the model reads
        np.testing.assert_array_equal(weather_members(archive, d, 7, inputs, cfg, lat)[0][inputs].to_numpy(),
                                      want[inputs].to_numpy(), err_msg=str(d.date()))
        kind = 1.5 + 0.25 * np.arange(1, 8) if d.day % 2 else oudin_pet(12.0 + np.arange(1, 8), lat, (
            d + pd.to_timedelta(np.arange(1, 8), unit="D")).day_of_year.to_numpy())
        np.testing.assert_array_equal(want["pet"].to_numpy(), kind)
        one = warned_forecast(bundle, "32006", data_dir=tiny_data_dir, issue_date=d, leads=7, weather_forecast=run,
                              model_path=et0_model, precip_mapping="none", weather_lags="none")[0].table
        got = tab[tab["issue_date"] == d].sort_values("lead_days").reset_index(drop=True)
        # one window in the reforecast's batch against alone, read back from the CSV's 4 decimals (tests/tolerance.py)
        assert_forecasts_close(got, one, bundle, "32006", last_obs=got["persistence"], rounding=HALF_4TH_DECIMAL,
                               msg=str(d.date()))


def test_training_reads_each_run_of_an_archive_with_the_pet_it_gets_alone(tiny_data_dir, tmp_path, caplog):
    """Training reads an archive of fetched runs (with ET0) and posted ones (temperature only) as a reforecast does:
    every date's run feeds its windows with the PET that run alone gets (the posted ones were left out of training
    for a PET gap), the log counts the runs of each way and the checkpoint's record keeps the counts."""
    from conftest import make_tiny_config
    from sca2lstm.data.dataset import load_basin
    from sca2lstm.evaluation.operational import weather_members
    from sca2lstm.weather.archive import load_archives
    from sca2lstm.weather.files import from_long_table, gauge_latitude

    cfg = make_tiny_config(tiny_data_dir, data={"dynamic_inputs": ["precipitation", "pet", "temperature"]})
    d = tmp_path / "data"
    shutil.copytree(tiny_data_dir, d)
    (d / "weather_archive").mkdir()
    dates = pd.date_range("1972-05-01", "1972-05-04")
    runs = _fetched_and_posted(dates)
    runs.to_csv(d / "weather_archive" / "32006.csv", index=False)
    rec = load_basin(d, "32006", cfg)
    with caplog.at_level(logging.INFO, logger="sca2lstm.weather.archive"):
        arch = load_archives(d, [rec], cfg, ["precipitation", "pet"])
    assert "PET (pet) of its 4 runs, each as it alone gets it: 2 its et0 (FAO-56), 2 Oudin from its temperature" \
        in caplog.text
    assert arch.sources["32006"]["pet"] == {"et0": 2, "oudin": 2}
    days = ((dates - pd.Timestamp(rec.dates[0])).days).to_numpy()
    fc, found = arch.lookup(np.zeros(len(days), dtype=int), days, 7, np.random.default_rng(0))
    assert found.all()
    lat = gauge_latitude(d, "32006")
    for j, t0 in enumerate(dates):
        alone = from_long_table(runs[pd.to_datetime(runs["issue_date"]) == t0], "alone.csv")
        want = weather_members(alone, t0, 7, ["precipitation", "pet", "temperature"], cfg, lat)[0]
        np.testing.assert_array_equal(fc["pet"][j], want["pet"].to_numpy(), err_msg=str(t0.date()))


def _without_pet_columns(tiny_data_dir, tmp_path, drop=("pet", "peti")):
    """A copy of the tiny data whose basin 32006 has none of ``drop`` (a station that imported no PET)."""
    d = tmp_path / "data"
    shutil.copytree(tiny_data_dir, d)
    f = next((d / "timeseries").glob("*_32006_*.csv"))
    pd.read_csv(f).drop(columns=list(drop)).to_csv(f, index=False)
    return d


def test_a_station_whose_pet_was_derived_gets_oudin_pet_from_a_forecast_with_et0_and_says_so(
        et0_model, tiny_data_dir, tmp_path, capsys):
    """A model on ``pet`` (``pet_from_temperature: missing``) at a station whose file has no PET column read Oudin PET
    there: a forecast carrying ET0 gives it Oudin PET from the forecast temperature (by hand), never the ET0, and a
    note says which way and why; the forecast equals that of the same run without ET0. The same forecast at the
    station with its own PET column reads the ET0, as before."""
    import json

    from sca2lstm.cli.forecast import main
    from sca2lstm.evaluation.context import BasinContext
    from sca2lstm.evaluation.operational import weather_members
    from sca2lstm.weather.files import gauge_latitude, read_forecast_file

    inputs = ["precipitation", "pet", "temperature"]
    t0 = pd.Timestamp("1976-06-15")
    run = _archive([t0]).assign(et0=lambda a: 1.5 + 0.25 * a["lead_days"])
    p = tmp_path / "with_et0.csv"
    run.to_csv(p, index=False)
    run.drop(columns="et0").to_csv(tmp_path / "no_et0.csv", index=False)
    oudin_days = _without_pet_columns(tiny_data_dir, tmp_path)
    bundle = load_model(et0_model)
    lat = gauge_latitude(oudin_days, "32006")
    days = t0 + pd.to_timedelta(np.arange(1, 8), unit="D")
    by_hand = oudin_pet(12.0 + np.arange(1, 8), lat, days.day_of_year.to_numpy())
    for folder, want in ((oudin_days, by_hand), (tiny_data_dir, 1.5 + 0.25 * np.arange(1, 8))):
        ctx = BasinContext.resolve(bundle, folder, "32006")
        got = weather_members(read_forecast_file(p), t0, 7, inputs, bundle[1], lat, rule=ctx.pet_rule)[0]
        np.testing.assert_array_equal(got["pet"].to_numpy(), want, err_msg=str(folder))
    assert BasinContext.resolve(bundle, oudin_days, "32006").pet_source == "oudin"
    docs, printed = {}, {}
    for name in ("with_et0.csv", "no_et0.csv"):
        rc = main(["--model", str(et0_model), "--basin", "32006", "--data_dir", str(oudin_days), "--issue_date",
                   str(t0.date()), "--weather_forecast", str(tmp_path / name),
                   "--output_dir", str(tmp_path / f"out_{name}"),
                   "--format", "json", "--precip_mapping", "none", "--weather_lags", "none"])
        out = capsys.readouterr()
        assert rc == 0, out.err
        docs[name] = json.loads(next((tmp_path / f"out_{name}").rglob("forecast.json")).read_text())
        printed[name] = out.out
    said = ("PET (pet) is Oudin PET from its temperature, the kind this station's history read (its data has no PET "
            "column): its et0 is not read")
    assert said in printed["with_et0.csv"] and any(said in n for n in docs["with_et0.csv"]["data"]["notes"])
    assert "the kind this station's history read" not in printed["no_et0.csv"]   # nothing left unread to say
    assert docs["with_et0.csv"]["data"]["pet_source"] == "oudin"
    assert docs["with_et0.csv"]["forecast"] == docs["no_et0.csv"]["forecast"]


def test_an_archive_of_a_station_whose_pet_was_derived_gives_every_run_oudin_pet_in_reforecasts_and_training(
        et0_model, tiny_data_dir, tmp_path, capsys):
    """The archive paths follow the station's history as the single forecast does: at a station without a PET column,
    a reforecast's and training's read of an archive with ET0 give every run Oudin PET (counted so, the reforecast's
    weather.json and log saying why)."""
    import json

    from sca2lstm.cli.forecast import main
    from sca2lstm.data.dataset import load_basin
    from sca2lstm.evaluation.context import BasinContext
    from sca2lstm.weather.archive import load_archives, with_model_pet
    from sca2lstm.weather.files import from_long_table, gauge_latitude, pet_way_counts

    d = _without_pet_columns(tiny_data_dir, tmp_path)
    dates = pd.date_range("1973-05-01", "1973-05-04")
    runs = _archive(dates).assign(et0=2.5)
    bundle = load_model(et0_model)
    cfg, lat = bundle[1], gauge_latitude(d, "32006")
    ctx = BasinContext.resolve(bundle, d, "32006")
    read = with_model_pet(from_long_table(runs, "archive.csv"), cfg, lat, ctx.pet_rule)
    assert pet_way_counts(read.pet_runs) == {"oudin": 4}
    valid = pd.to_datetime(read.table["valid_date"])
    np.testing.assert_array_equal(read.table["pet"].to_numpy(), oudin_pet(read.table["temperature"].to_numpy(), lat,
                                                                           valid.dt.day_of_year.to_numpy()))
    (d / "weather_archive").mkdir()
    runs.to_csv(d / "weather_archive" / "32006.csv", index=False)
    arch = load_archives(d, [load_basin(d, "32006", cfg)], cfg, ["precipitation", "pet"])
    assert arch.sources["32006"]["pet"] == {"oudin": 4}
    rc = main(["--model", str(et0_model), "--basin", "32006", "--data_dir", str(d), "--from", "1973-05-01",
               "--to", "1973-05-04", "--weather_forecast", str(d / "weather_archive" / "32006.csv"),
               "--output_dir", str(tmp_path / "out"), "--precip_mapping", "none", "--weather_lags", "none"])
    out = capsys.readouterr()
    assert rc == 0, out.err
    doc = json.loads(next((tmp_path / "out").rglob("weather.json")).read_text())
    assert doc["pet"] == {"oudin": 4}
    said = ("PET (pet) is Oudin PET from its temperature, the kind this station's history read (its data has no PET "
            "column): its et0 is not read")
    assert any(said in n for n in doc["notes"]) and said in out.out


def test_a_peti_model_on_a_station_that_imported_its_own_pet_reads_et0_as_a_pet_model_there(
        pretrained_ckpt, tiny_data_dir, tmp_path):
    """The default model (``peti``) at a station whose file has only its own ``pet`` read that PET in its history:
    a forecast's ET0 then gives its PET, as it does a model on ``pet`` there, with a note; a station with its own
    ``peti`` (CAMELS) keeps Oudin PET from the forecast temperature, as documented."""
    from sca2lstm.evaluation.context import BasinContext
    from sca2lstm.evaluation.operational import issue_forecast, weather_members
    from sca2lstm.weather.files import gauge_latitude, read_forecast_file

    t0 = pd.Timestamp("1976-06-15")
    p = tmp_path / "with_et0.csv"
    _archive([t0]).assign(et0=lambda a: 1.5 + 0.25 * a["lead_days"]).to_csv(p, index=False)
    own_pet = _without_pet_columns(tiny_data_dir, tmp_path, drop=("peti",))
    bundle = load_model(pretrained_ckpt)
    inputs = [c for c in bundle[1].data.dynamic_inputs]
    assert "peti" in inputs
    lat = gauge_latitude(tiny_data_dir, "32006")
    days = t0 + pd.to_timedelta(np.arange(1, 8), unit="D")
    for folder, want in ((own_pet, 1.5 + 0.25 * np.arange(1, 8)),
                         (tiny_data_dir, oudin_pet(12.0 + np.arange(1, 8), lat, days.day_of_year.to_numpy()))):
        ctx = BasinContext.resolve(bundle, folder, "32006")
        got = weather_members(read_forecast_file(p), t0, 7, inputs, bundle[1], lat, rule=ctx.pet_rule)[0]
        np.testing.assert_array_equal(got["peti"].to_numpy(), want, err_msg=str(folder))
    fc = issue_forecast(bundle, "32006", data_dir=own_pet, issue_date=t0, leads=7,
                        weather_forecast=read_forecast_file(p), precip_mapping="none", weather_lags="none")
    assert any("PET (peti) is its et0 (FAO-56), as this station's own pet column gives the model's peti" in n
               for n in fc.data["notes"])


def test_a_peti_model_on_a_station_that_imported_its_own_pet_reads_a_forecasts_pet_then_et0_then_oudin(
        pretrained_ckpt, tiny_data_dir, tmp_path, caplog, capsys):
    """The default model (``peti``) at a station whose file has only its own ``pet``: a forecast's own ``pet`` column
    (the station's kind) gives its PET first, else the forecast's ET0, else Oudin PET from its temperature (each by
    hand), alone and per run of one archive, with a note naming the column; a station with its own ``peti`` (CAMELS)
    keeps Oudin PET whatever ``pet`` or ET0 the forecast gives, as before."""
    from sca2lstm.evaluation.context import BasinContext
    import json

    from sca2lstm.cli.forecast import main
    from sca2lstm.data.dataset import load_basin
    from sca2lstm.evaluation.operational import _plain_with_pet, issue_forecast, weather_members
    from sca2lstm.weather.archive import load_archives, with_model_pet
    from sca2lstm.weather.files import from_long_table, gauge_latitude, pet_way_counts, read_forecast_file

    t0 = pd.Timestamp("1976-06-15")
    k = np.arange(1, 8)
    run = _archive([t0])
    runs = {"pet": run.assign(pet=0.5 + 0.125 * run["lead_days"], et0=1.5 + 0.25 * run["lead_days"]),
            "et0": run.assign(et0=1.5 + 0.25 * run["lead_days"]), "oudin": run}
    own_pet = _without_pet_columns(tiny_data_dir, tmp_path, drop=("peti",))
    bundle = load_model(pretrained_ckpt)
    inputs = list(bundle[1].data.dynamic_inputs)
    lat = gauge_latitude(tiny_data_dir, "32006")
    oudin = oudin_pet(12.0 + k, lat, (t0 + pd.to_timedelta(k, unit="D")).day_of_year.to_numpy())
    want = {"pet": 0.5 + 0.125 * k, "et0": 1.5 + 0.25 * k, "oudin": oudin}
    station, camels = (BasinContext.resolve(bundle, d, "32006") for d in (own_pet, tiny_data_dir))
    assert (station.pet_source, camels.pet_source) == ("other", "own")
    for way, table in runs.items():
        p = tmp_path / f"{way}.csv"
        table.to_csv(p, index=False)
        got = weather_members(read_forecast_file(p), t0, 7, inputs, bundle[1], lat, rule=station.pet_rule)[0]
        np.testing.assert_array_equal(got["peti"].to_numpy(), want[way], err_msg=way)
        got = weather_members(read_forecast_file(p), t0, 7, inputs, bundle[1], lat, rule=camels.pet_rule)[0]
        np.testing.assert_array_equal(got["peti"].to_numpy(), oudin, err_msg=f"CAMELS peti, {way}")
    # one archive whose three runs take the three ways, each as it alone does
    days = pd.date_range(t0, periods=3)
    arch = pd.concat([t.assign(issue_date=d.date(), valid_date=(d + pd.to_timedelta(t["lead_days"], unit="D")).dt.date)
                      for t, d in zip(runs.values(), days)], ignore_index=True)
    read = with_model_pet(from_long_table(arch, "archive.csv"), bundle[1], lat, station.pet_rule)
    assert pet_way_counts(read.pet_runs) == {"given": 1, "et0": 1, "oudin": 1}
    tab = read.table
    np.testing.assert_array_equal(tab.loc[tab["issue_date"] == days[0], "peti"].to_numpy(), want["pet"])
    np.testing.assert_array_equal(tab.loc[tab["issue_date"] == days[1], "peti"].to_numpy(), want["et0"])
    # training reads the station's archive the same way
    (own_pet / "weather_archive").mkdir()
    arch.to_csv(own_pet / "weather_archive" / "32006.csv", index=False)
    with caplog.at_level(logging.INFO, logger="sca2lstm.weather.archive"):
        found = load_archives(own_pet, [load_basin(own_pet, "32006", bundle[1])], bundle[1], ["precipitation", "peti"])
    assert found.sources["32006"]["pet"] == {"given": 1, "et0": 1, "oudin": 1}
    said = "1 its own pet column, 1 its et0 (FAO-56), 1 Oudin from its temperature"
    assert said in caplog.text
    # a reforecast of the three dates: each run's PET as it alone gets it, the line naming the column read
    rc = main(["--model", str(pretrained_ckpt), "--basin", "32006", "--data_dir", str(own_pet), "--from",
               str(days[0].date()), "--to", str(days[-1].date()), "--weather_forecast",
               str(own_pet / "weather_archive" / "32006.csv"), "--output_dir", str(tmp_path / "out"),
               "--precip_mapping", "none", "--weather_lags", "none"])
    out = capsys.readouterr()
    assert rc == 0, out.err
    assert said in out.out
    doc = json.loads(next((tmp_path / "out").rglob("weather.json")).read_text())
    assert doc["pet"] == {"given": 1, "et0": 1, "oudin": 1} and doc["pet_column"] == "pet"
    # a plain table of the lead days (date, <inputs>) with the station's pet
    plain = runs["pet"].rename(columns={"valid_date": "date"})[["date", "precipitation", "temperature", "pet"]]
    got = _plain_with_pet(plain, bundle[1], lat, rule=station.pet_rule)
    np.testing.assert_array_equal(got["peti"].to_numpy(), want["pet"])
    np.testing.assert_array_equal(_plain_with_pet(plain, bundle[1], lat, rule=camels.pet_rule)["peti"].to_numpy(),
                                  oudin)
    fc = issue_forecast(bundle, "32006", data_dir=own_pet, issue_date=t0, leads=7,
                        weather_forecast=read_forecast_file(tmp_path / "pet.csv"), precip_mapping="none",
                        weather_lags="none")
    assert any("PET (peti) is its pet column, as this station's own pet column gives the model's peti" in n
               for n in fc.data["notes"])


def test_a_pet_model_on_a_station_with_only_peti_reads_a_forecasts_peti_then_et0_then_oudin_in_sca2lstm_forecast(
        et0_model, tiny_data_dir, tmp_path, capsys):
    """The mirror of the ``peti`` model at a ``pet`` station: a model on ``pet`` at a station whose file has only
    ``peti`` (read as its ``pet`` in its history) gets, through `sca2lstm forecast --weather_forecast`, a forecast's own
    ``peti`` column first (its ``pet`` column, of a kind the station's history never read, not read), else the
    forecast's ET0, else Oudin PET from its temperature: each forecast equals that of a run whose ET0 holds those values
    by hand (the model reads the same PET), a note names the ``peti`` column; a plain ``date, <inputs>`` table's
    ``peti`` likewise; a reforecast of an archive whose three runs take the three ways counts them, naming ``peti``."""
    import json

    from sca2lstm.cli.forecast import main
    from sca2lstm.evaluation.context import BasinContext
    from sca2lstm.weather.files import gauge_latitude

    d = _without_pet_columns(tiny_data_dir, tmp_path, drop=("pet",))
    assert BasinContext.resolve(load_model(et0_model), d, "32006").pet_source == "other"
    t0 = pd.Timestamp("1976-06-15")
    k = np.arange(1, 8)
    run = _archive([t0])
    lat = gauge_latitude(d, "32006")
    oudin = oudin_pet(12.0 + k, lat, (t0 + pd.to_timedelta(k, unit="D")).day_of_year.to_numpy())
    peti, et0 = 0.5 + 0.125 * k, 1.5 + 0.25 * k
    files = {"peti": run.assign(peti=peti, pet=4.0, et0=et0), "et0": run.assign(et0=et0), "oudin": run,
             # the same PET as ET0 by hand: what each of the above must equal
             "peti_as_et0": run.assign(et0=peti), "oudin_as_et0": run.assign(et0=oudin),
             "plain": run.rename(columns={"valid_date": "date"})[["date", "precipitation", "temperature"]]
             .assign(peti=peti, pet=4.0)}

    def forecast(name, *span):
        p = tmp_path / f"{name}.csv"
        if not p.exists():
            files[name].to_csv(p, index=False)
        when = ["--from", *span] if span else ["--issue_date", str(t0.date()), "--format", "json"]
        rc = main(["--model", str(et0_model), "--basin", "32006", "--data_dir", str(d), *when[:2],
                   *(["--to", span[1]] if span else when[2:]), "--weather_forecast", str(p),
                   "--output_dir", str(tmp_path / f"out_{name}"), "--precip_mapping", "none", "--weather_lags", "none"])
        out = capsys.readouterr()
        assert rc == 0, out.err
        return out.out, next((tmp_path / f"out_{name}").rglob("weather.json" if span else "forecast.json"))

    docs, printed = {}, {}
    for name in ("peti", "et0", "oudin", "peti_as_et0", "oudin_as_et0", "plain"):
        printed[name], doc = forecast(name)
        docs[name] = json.loads(doc.read_text())
    assert docs["peti"]["forecast"] == docs["peti_as_et0"]["forecast"]
    assert docs["plain"]["forecast"] == docs["peti_as_et0"]["forecast"]
    assert docs["oudin"]["forecast"] == docs["oudin_as_et0"]["forecast"]
    assert docs["et0"]["forecast"] != docs["peti"]["forecast"] != docs["oudin"]["forecast"]
    said = "PET (pet) is its peti column, as this station's own peti column gives the model's pet in its history"
    for name in ("peti", "plain"):
        assert said in printed[name] and any(said in n for n in docs[name]["data"]["notes"]), name
    assert not any("this station's own" in n for n in docs["et0"]["data"]["notes"])
    # one archive whose three runs take the three ways, each as it alone does
    days = pd.date_range(t0, periods=3)
    files["archive"] = pd.concat([files[w].assign(issue_date=day.date(), valid_date=(
        day + pd.to_timedelta(files[w]["lead_days"], unit="D")).dt.date) for w, day in zip(("peti", "et0", "oudin"),
                                                                                         days)], ignore_index=True)
    out, doc = forecast("archive", str(days[0].date()), str(days[-1].date()))
    weather = json.loads(doc.read_text())
    assert weather["pet"] == {"given": 1, "et0": 1, "oudin": 1} and weather["pet_column"] == "peti"
    assert "1 its own peti column, 1 its et0 (FAO-56), 1 Oudin from its temperature" in out


@pytest.mark.parametrize("model, station, column", [("et0_model", "peti", "peti"), ("pretrained_ckpt", "pet", "pet")])
def test_a_gap_in_the_forecasts_column_of_the_stations_own_pet_is_refused_naming_that_column(
        model, station, column, tiny_data_dir, tmp_path, capsys, request):
    """A model whose PET input is read from a station's own PET under the other name (``pet`` from ``peti``, ``peti``
    from ``pet``) reads a forecast's column of that name: a lead day without a value is refused in one line naming the
    column as the file writes it (not the model's name, which the file may not have), a forecast file's run and a
    plain ``date, <inputs>`` table alike; the plain table's other days are never given Oudin PET instead, with a
    note claiming the column was read."""
    from sca2lstm.cli.forecast import main

    ckpt = request.getfixturevalue(model)
    d = _without_pet_columns(tiny_data_dir, tmp_path, drop=[c for c in ("pet", "peti") if c != station])
    t0 = pd.Timestamp("1976-06-15")
    run = _archive([t0]).assign(**{column: 0.5})
    run.loc[3, column] = np.nan
    files = {"long": run, "plain": run.rename(columns={"valid_date": "date"})[["date", "precipitation", "temperature",
                                                                              column]]}
    gap = (t0 + pd.Timedelta(days=4)).date()
    said = {"long": f"member 0 has no value of {column!r} on {gap}",
            "plain": f"weather forecast: column {column!r} has no numeric value on {gap}"}
    for name, table in files.items():
        p = tmp_path / f"{name}.csv"
        table.to_csv(p, index=False)
        rc = main(["--model", str(ckpt), "--basin", "32006", "--data_dir", str(d), "--issue_date", str(t0.date()),
                   "--weather_forecast", str(p), "--output_dir", str(tmp_path / f"out_{name}"), "--precip_mapping",
                   "none", "--weather_lags", "none"])
        err = capsys.readouterr().err
        assert rc == 1 and "sca2lstm forecast: error: " in err and said[name] in err, (name, err)
        assert not (tmp_path / f"out_{name}").exists() or not any((tmp_path / f"out_{name}").rglob("forecast*")), name


def test_a_reforecast_of_a_span_its_archive_does_not_reach_is_one_line_naming_the_archives_dates(
        pretrained_ckpt, data_with_archive, tmp_path, capsys):
    """An archive of 1971-1974 given to a reforecast of 1976 with the default rain mapping: it ranked the span's
    (no) runs and failed with a traceback (ValueError); it is refused in one line that says which issue dates the
    archive holds, nothing written."""
    from sca2lstm.cli.forecast import main

    p = data_with_archive / "weather_archive" / "32006.csv"
    rc = main(["--model", str(pretrained_ckpt), "--basin", "32006", "--data_dir", str(data_with_archive),
               "--from", "1976-03-01", "--to", "1976-03-05", "--weather_forecast", str(p),
               "--output_dir", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 1 and len(err) == 1, err
    assert err[0].endswith(f"--weather_forecast {p}: holds no forecast for an issue date in 1976-03-01..1976-03-05 "
                           "(its forecasts are issued 1971-01-01..1974-12-31)"), err
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_a_reforecast_names_how_many_members_a_date_left_out_for_too_few_complete_members_had(
        pretrained_ckpt, data_with_archive, tmp_path, capsys):
    """An ensemble date with one of its three members complete is left out (fewer than half are complete, as a
    single forecast refuses it); the reason said "no complete forecast in the archive", and the forecaster looked
    for a gap in every member. It says how many were complete."""
    from sca2lstm.cli.forecast import main

    a = _archive(pd.date_range("1973-05-01", "1973-05-03"), members=3)
    a.loc[(a["issue_date"] == pd.Timestamp("1973-05-02").date()) & (a["member"] > 0) & (a["lead_days"] == 3),
          "precipitation"] = np.nan
    p = tmp_path / "three.csv"
    a.to_csv(p, index=False)
    rc = main(["--model", str(pretrained_ckpt), "--basin", "32006", "--data_dir", str(data_with_archive),
               "--from", "1973-05-01", "--to", "1973-05-03", "--weather_forecast", str(p), "--precip_mapping", "none",
               "--output_dir", str(tmp_path / "out")])
    out = capsys.readouterr()
    assert rc == 0, out.err
    assert ("left out: 1 of 3 issue dates asked: 1973-05-02 (1 of its 3 members complete in the archive, fewer than "
            "half)\n") in out.out, out.out
