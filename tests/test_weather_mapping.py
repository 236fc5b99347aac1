"""Quantile mapping of an archive's forecast precipitation (``forecast --precip_mapping quantile``): the rule on a
hand case, causal forecast samples, short leads left unmapped, drizzle mapped to dry days, and a reforecast
that maps each issue date as its single forecast does."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from archive_fixtures import drizzly_archive
from tolerance import HALF_4TH_DECIMAL, assert_forecasts_close

from sca2lstm.checkpoint import load_model
from sca2lstm.weather.files import from_long_table
from sca2lstm.weather.mapping import (DAMPED_P99_RATIO, DRIZZLY_WET_RATIO, MIN_ISSUE_DATES, drizzly,
                                      map_precipitation, quantile_map, rain_statistics, unmapped_text)


def _archive(issue_dates, leads=7, members=1, seed=0, rain=None):
    """A long table with gamma-distributed rain (40 % dry) or ``rain(issue, lead, member)``."""
    rng = np.random.default_rng(seed)
    rows = []
    for t0 in pd.DatetimeIndex(issue_dates):
        for m in range(members):
            for k in range(1, leads + 1):
                p = rain(t0, k, m) if rain else (0.0 if rng.random() < 0.4 else float(rng.gamma(0.8, 5.0)))
                rows.append({"issue_date": t0.date(), "lead_days": k, "valid_date": (t0 + pd.Timedelta(days=k)).date(),
                             "member": m, "precipitation": round(p, 3), "temperature": 12.0 + k})
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def bundle(pretrained_ckpt):
    return load_model(pretrained_ckpt)


def test_quantile_map_takes_the_observed_value_at_the_forecasts_mid_rank():
    forecast = [3.0, 0.0, 2.0, 1.0]     # sorted 0 1 2 3: unsorted on purpose
    observed = [10.0, 0.0, 5.0, 0.0]    # sorted 0 0 5 10 at positions 0.125 0.375 0.625 0.875
    x = np.array([0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 6.0, np.nan])
    got = quantile_map(x, forecast, observed)
    # 0 stays 0; 0.5: rank 1/4 -> between 0 and 0; 1: mid-rank (1 + 2) / 2 / 4 = 0.375 -> 0; 1.5: 0.5 -> half way
    # from 0 to 5; 2: (2 + 3) / 8 = 0.625 -> 5; 3: 0.875 -> 10; 6 > the largest forecast 3: 10 * 6 / 3
    np.testing.assert_allclose(got, [0.0, 0.0, 0.0, 2.5, 5.0, 10.0, 20.0, np.nan])
    assert got.shape == x.shape


def test_an_issue_dates_mapping_reads_nothing_issued_on_or_after_it():
    dates = pd.date_range("1972-01-01", periods=400)
    a = _archive(dates, leads=3, members=2, seed=1)
    table = from_long_table(a, "archive.csv").table
    t = dates[300]
    observed = np.random.default_rng(2).gamma(0.5, 6.0, 2000)
    mapped, short = map_precipitation(table, observed, [t])
    assert short == {}
    mine = (table["issue_date"] == t) & (table["member"] == 0)
    # the rule itself: ranked among the lead's forecasts issued before t, both members pooled
    for k in (1, 2, 3):
        lead = (table["valid_date"] - table["issue_date"]).dt.days == k
        before = table.loc[lead & (table["issue_date"] < t), "precipitation"]
        assert len(before) == 600
        np.testing.assert_allclose(mapped.loc[mine & lead, "precipitation"],
                                   quantile_map(table.loc[mine & lead, "precipitation"], before, observed))
    assert not np.allclose(mapped.loc[mine, "precipitation"], table.loc[mine, "precipitation"])
    # forecasts issued after t, and t's other member, changed: t's member 0 maps as before
    changed = table.copy()
    later = (changed["issue_date"] > t) | ((changed["issue_date"] == t) & (changed["member"] == 1))
    changed.loc[later, "precipitation"] = changed.loc[later, "precipitation"] * 7.0 + 3.0
    again, _ = map_precipitation(changed, observed, [t])
    np.testing.assert_array_equal(again.loc[mine, "precipitation"], mapped.loc[mine, "precipitation"])
    # only the issue date asked is mapped
    others = table["issue_date"] != t
    np.testing.assert_array_equal(mapped.loc[others, "precipitation"], table.loc[others, "precipitation"])


def test_a_lead_with_fewer_than_min_forecasts_before_it_is_left_as_the_archive_gives_it():
    dates = pd.date_range("1972-01-01", periods=MIN_ISSUE_DATES + 20)
    a = _archive(dates, leads=3, seed=3)
    a = a[~((a["lead_days"] == 3) & (pd.to_datetime(a["issue_date"]) < dates[40]))]   # lead 3 from the 41st day
    table = from_long_table(a, "archive.csv").table
    t = dates[-1]
    observed = np.random.default_rng(4).gamma(0.5, 6.0, 2000)
    mapped, short = map_precipitation(table, observed, [t])
    assert short == {t: [(3, MIN_ISSUE_DATES + 19 - 40)]}
    lead = (table["valid_date"] - table["issue_date"]).dt.days
    on_t = table["issue_date"] == t
    assert mapped.loc[on_t & (lead == 3), "precipitation"].item() == table.loc[on_t & (lead == 3), "precipitation"].item()
    assert not np.allclose(mapped.loc[on_t & (lead < 3), "precipitation"], table.loc[on_t & (lead < 3), "precipitation"])
    text = unmapped_text(short)
    assert f"lead(s) 3 of issue date {t.date()}" in text and f"fewer than {MIN_ISSUE_DATES}" in text


def test_an_ensembles_first_days_are_few_issue_dates_not_many_forecasts_and_left_as_given():
    # 50 members of four dry days are 200 values but one weather situation: the fifth day's 0.4 mm is not ranked
    # among them (it was mapped to 10^10 mm when the values were counted and the largest, 0, divided)
    dates = pd.date_range("1972-06-01", periods=5)
    a = _archive(dates, leads=2, members=50, rain=lambda t0, k, m: 0.4 if t0 == dates[-1] else 0.0)
    table = from_long_table(a, "archive.csv").table
    observed = np.r_[np.zeros(50), np.linspace(0.1, 60.0, 50)]
    mapped, short = map_precipitation(table, observed, [dates[-1]])
    assert short == {dates[-1]: [(1, 4), (2, 4)]}
    got = mapped.loc[table["issue_date"] == dates[-1], "precipitation"].to_numpy()
    np.testing.assert_allclose(got, 0.4)
    # a sample of zeros, or of drizzle only, ranks no storm: left as given, not scaled by its largest value
    assert np.all(quantile_map([0.0, 0.4, 5.0, np.nan], np.zeros(200), observed)[:3] == [0.0, 0.4, 5.0])
    np.testing.assert_array_equal(quantile_map([5.0, 20.0], np.r_[np.zeros(199), 0.1], observed), [5.0, 20.0])
    # where the largest is a wet day's rain the ratio holds: 60 mm observed / 2 mm forecast
    np.testing.assert_allclose(quantile_map([4.0], np.r_[np.zeros(199), 2.0], observed), [120.0])


def test_mapping_every_date_equals_ranking_each_among_the_forecasts_issued_before_it():
    """The one pass over issue dates gives what the definition gives date by date: each date's amounts mapped
    among the lead's amounts (every member) issued strictly before it, unmapped below the least issue dates."""
    dates = pd.date_range("1972-01-01", periods=40)
    a = _archive(dates, leads=3, members=4, seed=9)
    a = a.drop(index=a.sample(frac=0.1, random_state=1).index)     # gaps: leads and members missing here and there
    table = from_long_table(a, "archive.csv").table
    observed = np.random.default_rng(2).gamma(0.5, 6.0, 500)
    want = dates[10:]
    mapped, short = map_precipitation(table, observed, want, min_issue_dates=15)
    issue = table["issue_date"].to_numpy("datetime64[D]")
    lead = (table["valid_date"] - table["issue_date"]).dt.days.to_numpy()
    p = table["precipitation"].to_numpy(float)
    expect = p.copy()
    for t in want.to_numpy("datetime64[D]"):
        for k in np.unique(lead):
            at = (issue == t) & (lead == k)
            before = (issue < t) & (lead == k)
            if at.any() and len(np.unique(issue[before])) >= 15:
                expect[at] = quantile_map(p[at], p[before], observed)
    np.testing.assert_allclose(mapped["precipitation"].to_numpy(float), expect)
    assert min(short) == pd.Timestamp(dates[10]) and all(n < 15 for v in short.values() for _, n in v)


@pytest.mark.parametrize("method", ["quantile", "auto"])
def test_one_forecast_ranked_among_a_kept_archive_is_mapped_as_the_archive_with_it_is(method):
    """One forecast ranked among a station's archive: the archive's forecast samples are worked out once per issue
    date and kept (ArchiveRain; every date after the archive's end shares them), not sorted again with the forecast
    put beside the archive. Mapped so, before, inside and after the archive's span, and asked again (the kept
    samples), its rain is the rain the mapping gives the archive with the forecast added to it."""
    from sca2lstm.evaluation.rain_mapping import ArchiveRain, _map_one
    from sca2lstm.weather.files import WeatherForecast

    dates = pd.date_range("1972-01-01", periods=400)
    a = _archive(dates, leads=3, members=3, seed=11, rain=lambda t0, k, m: float(
        np.random.default_rng(t0.day_of_year * 31 + k * 7 + m).uniform(1.0, 2.0)))   # drizzly: auto maps it
    a = a.drop(index=a.sample(frac=0.05, random_state=2).index)   # gaps: a lead or member missing here and there
    table = from_long_table(a, "archive.csv").table
    kept = ArchiveRain(WeatherForecast(table[["issue_date", "valid_date", "member", "precipitation"]], "archive.csv"))
    observed = np.random.default_rng(3).gamma(0.5, 6.0, 1500)
    for t0 in (dates[150], dates[250], dates[-1], dates[-1] + pd.Timedelta(days=1), dates[-1] + pd.Timedelta(days=90)):
        days = pd.date_range(t0 + pd.Timedelta(days=1), periods=3)
        one = pd.DataFrame({"date": days.strftime("%Y-%m-%d"), "precipitation": [0.0, 1.3, 14.0]})
        with_it = pd.concat([table[table["issue_date"] < t0][["issue_date", "valid_date", "member", "precipitation"]],
                             pd.DataFrame({"issue_date": t0, "valid_date": days, "member": 0,
                                           "precipitation": one["precipitation"]})], ignore_index=True)
        want, short = map_precipitation(with_it, observed, [t0], method=method)
        for _ in range(2):  # worked out, then kept
            got, got_short, changed = _map_one(one, kept, t0, observed, method)
            np.testing.assert_array_equal(got["precipitation"].to_numpy(), want["precipitation"].to_numpy()[-3:])
            assert got_short == short and changed == (not short)  # too few dates before the first: left as given
    assert len(kept._samples) == 4  # the dates after the archive's last issue date share one sample


def test_a_drizzly_archives_light_rain_on_the_stations_dry_days_maps_to_zero(bundle, tiny_data_dir):
    """Light rain forecast on every day the station stayed dry, its storms damped: the drizzle maps to 0 (the
    station's training years are some 40 % dry days) and the storms grow back."""
    from sca2lstm.evaluation.context import BasinContext
    from sca2lstm.evaluation.rain_mapping import mapped_weather

    ctx = BasinContext.resolve(bundle, tiny_data_dir, "32006")
    rec = ctx.record
    p = rec.x[:, list(ctx.cfg.data.dynamic_inputs).index("precipitation")].astype(np.float64)
    obs = pd.Series(p, index=pd.DatetimeIndex(rec.dates))
    rng = np.random.default_rng(5)

    def rain(t0, k, m):
        v = obs.get(t0 + pd.Timedelta(days=k), np.nan)
        return float(rng.uniform(0.1, 0.6)) if v == 0 else 0.6 * v + 0.6

    a = _archive(pd.date_range("1973-01-01", "1975-12-31"), leads=2, rain=rain).dropna()
    wf = from_long_table(a, "drizzly.csv")
    days = pd.date_range("1975-01-01", "1975-12-31")
    got = mapped_weather(ctx, wf, days, "quantile")
    mapped = got.weather
    assert got.note is None and got.record["mapped"]
    late = wf.table["issue_date"] >= days[0]
    dry = late & (wf.table["valid_date"].map(obs) == 0).to_numpy()
    assert dry.sum() > 100 and (wf.table.loc[dry, "precipitation"] > 0).all()
    assert (mapped.table.loc[dry, "precipitation"] == 0).mean() > 0.9
    assert mapped.table.loc[late, "precipitation"].max() > wf.table.loc[late, "precipitation"].max()


@pytest.fixture()
def data_with_archive(tiny_data_dir, tmp_path):
    import shutil

    d = tmp_path / "data"
    shutil.copytree(tiny_data_dir, d)
    a = _archive(pd.date_range("1972-06-01", "1973-05-10"), seed=6)
    # lead 7 only from 1973-01-01: too few earlier forecasts of it to map by May
    a = a[~((a["lead_days"] == 7) & (pd.to_datetime(a["issue_date"]) < pd.Timestamp("1973-01-01")))]
    (d / "weather_archive").mkdir()
    a.to_csv(d / "weather_archive" / "32006.csv", index=False)
    return d


def test_a_mapped_reforecast_equals_the_mapped_single_forecasts_and_records_the_mapping(
        bundle, pretrained_ckpt, data_with_archive, tmp_path, capsys):
    from sca2lstm.cli.forecast import main
    from sca2lstm.evaluation.reforecast import warned_forecast
    from sca2lstm.weather.files import read_forecast_file

    p = data_with_archive / "weather_archive" / "32006.csv"
    runs = {}
    for mapping in ("none", "quantile"):
        rc = main(["--model", str(pretrained_ckpt), "--basin", "32006", "--data_dir", str(data_with_archive),
                   "--from", "1973-05-01", "--to", "1973-05-05", "--weather_forecast", str(p),
                   "--precip_mapping", mapping, "--output_dir", str(tmp_path / mapping)])
        out = capsys.readouterr()
        assert rc == 0, out.err
        runs[mapping] = next((tmp_path / mapping).glob("*/reforecast.csv"))
    assert "quantile-mapped per lead" in out.out
    plain_record = json.loads((runs["none"].parent / "weather.json").read_text())
    assert plain_record["precip_mapping"] is None and plain_record["source"].endswith("32006.csv")
    assert plain_record["archive_rain"]["leads"] == {}     # five issue dates: too few to compare the rain on
    record = json.loads((runs["quantile"].parent / "weather.json").read_text())
    assert record["precip_mapping"]["method"] == "quantile"
    assert "lead(s) 7 of issue date 1973-05-01" in record["notes"][0]
    t = pd.read_csv(runs["quantile"], parse_dates=["issue_date"])
    plain = pd.read_csv(runs["none"], parse_dates=["issue_date"])
    assert not np.allclose(t["median"], plain["median"], rtol=1e-3)    # the option changes the forecasts
    wf = read_forecast_file(p)
    for day in ("1973-05-01", "1973-05-04"):
        one = warned_forecast(bundle, "32006", data_dir=data_with_archive, issue_date=day, leads=7,
                              weather_forecast=wf, model_path=pretrained_ckpt, precip_mapping="quantile")[0]
        got = t[t["issue_date"] == day].sort_values("lead_days").reset_index(drop=True)
        # one window in the reforecast's batch against alone, read back from the CSV's 4 decimals
        # (tests/tolerance.py)
        assert_forecasts_close(got, one.table, bundle, "32006", ("median", "q05", "q95"), spread_from=pretrained_ckpt,
                               last_obs=got["persistence"], rounding=HALF_4TH_DECIMAL, msg=day)
        assert one.data["weather_forecast"]["precip_mapping"]["method"] == "quantile"
        assert any(f"lead(s) 7 of issue date {day}" in n for n in one.data["notes"])
    rc = main(["--model", str(pretrained_ckpt), "--basin", "32006", "--data_dir", str(data_with_archive),
               "--issue_date", "1973-05-04", "--weather_forecast", str(p), "--precip_mapping", "quantile",
               "--format", "json", "--output_dir", str(tmp_path / "single")])
    assert rc == 0 and "quantile-mapped per lead to the observed rain" in capsys.readouterr().out
    doc = json.loads(next((tmp_path / "single").rglob("forecast.json")).read_text())
    assert doc["data"]["weather_forecast"]["precip_mapping"]["method"] == "quantile"
    assert any("lead(s) 7 of issue date 1973-05-04" in n for n in doc["data"]["notes"])


def test_precip_mapping_without_an_archive_is_refused_in_one_line(pretrained_ckpt, tiny_data_dir, tmp_path, capsys):
    from sca2lstm.cli.forecast import main

    plain = tmp_path / "plain.csv"
    pd.DataFrame({"date": pd.date_range("1973-05-02", periods=7).strftime("%Y-%m-%d"), "precipitation": 1.0,
                  "temperature": 10.0}).to_csv(plain, index=False)
    one = tmp_path / "one.csv"
    _archive(["1973-05-01"]).to_csv(one, index=False)
    for extra, says in (([], "give one with --weather_forecast ARCHIVE"),
                        (["--weather_forecast", str(plain)], f"--weather_forecast {plain} holds a table of one"),
                        (["--weather_forecast", str(one)], f"--weather_forecast {one} holds one forecast")):
        rc = main(["--model", str(pretrained_ckpt), "--basin", "32006", "--data_dir", str(tiny_data_dir),
                   "--issue_date", "1973-05-01", "--precip_mapping", "quantile", "--output_dir", str(tmp_path / "o"),
                   *extra])
        err = capsys.readouterr().err.strip()
        assert rc == 1 and says in err and len(err.splitlines()) == 1, err


def test_auto_maps_only_an_archive_drizzly_with_damped_storms():
    observed = np.r_[np.zeros(60), np.full(30, 2.0), np.full(10, 30.0)]            # 40 % of days >= 1 mm, p99 30
    assert drizzly(np.r_[np.zeros(40), np.full(50, 2.0), np.full(10, 12.0)], observed)     # 60 % wet, p99 12
    assert not drizzly(np.r_[np.zeros(40), np.full(50, 2.0), np.full(10, 40.0)], observed)  # storms not damped
    assert not drizzly(np.r_[np.zeros(60), np.full(30, 2.0), np.full(10, 12.0)], observed)  # no more wet days
    assert not drizzly(observed, observed)
    dates = pd.date_range("1972-01-01", periods=MIN_ISSUE_DATES + 10)
    rng = np.random.default_rng(7)
    wet = rng.random((len(dates), 2)) < 0.4
    storms = np.where(wet, rng.gamma(0.8, 8.0, (len(dates), 2)), 0.0)
    like_obs = _archive(dates, leads=2, rain=lambda t0, k, m: storms[dates.get_loc(t0), k - 1])
    damped = _archive(dates, leads=2, rain=lambda t0, k, m: 0.4 * storms[dates.get_loc(t0), k - 1] + 1.2)
    observed = storms.ravel()
    t = dates[-5:]
    for a, mapped_expected in ((like_obs, False), (damped, True)):
        table = from_long_table(a, "archive.csv").table
        auto, _ = map_precipitation(table, observed, t, method="auto")
        quantile, _ = map_precipitation(table, observed, t)
        assert np.allclose(auto["precipitation"], quantile["precipitation"]) == mapped_expected
        assert np.allclose(auto["precipitation"], table["precipitation"]) != mapped_expected


def test_rain_statistics_pool_members_and_leave_out_pairs_with_a_nan_on_a_hand_case():
    # lead 1: one member (the second NaN); its last two days are a NaN forecast and a NaN observation, left out
    # lead 2: two members, pooled: 7 pairs on the same 4 days (the second member lacks day 2)
    f1 = [[1.0, np.nan], [1.0, np.nan], [2.0, np.nan], [4.0, np.nan], [np.nan, np.nan], [50.0, np.nan]]
    f2 = [[1.0, 1.0], [1.0, np.nan], [2.0, 2.0], [4.0, 4.0], [np.nan, np.nan], [50.0, 50.0]]
    o = [[0.0, 0.0, 2.0, 10.0, 3.0, np.nan]] * 2
    st = rain_statistics([f1, f2], o)
    assert all(v.shape == (2,) for v in st.values())
    np.testing.assert_array_equal(st["days"], [4, 4])
    np.testing.assert_allclose(st["wet_forecast"], [1.0, 1.0])          # 1, 1, 2, 4 mm: all >= 1 mm
    np.testing.assert_allclose(st["wet_observed"], [2 / 4, 4 / 7])      # 0, 0, 2, 10; pooled 0, 0, 0, 2, 2, 10, 10
    # numpy's linear 99th percentile: of 4 values at 0.99 * 3 = 2.97 between the 3rd and the 4th; of the 7
    # pooled at 5.94, between the 6th and the 7th (equal)
    np.testing.assert_allclose(st["p99_forecast"], [2 + 0.97 * 2, 4.0])
    np.testing.assert_allclose(st["p99_observed"], [2 + 0.97 * 8, 10.0])
    np.testing.assert_allclose(st["total_ratio"], [8 / 12, 15 / 24])
    # lead 1: means 2 and 3, deviations (-1, -1, 0, 2) and (-3, -3, -1, 7): 20 / sqrt(6 * 68)
    np.testing.assert_allclose(st["correlation"][0], 20 / np.sqrt(6 * 68))
    none = rain_statistics([[np.nan]], [np.nan])
    assert none["days"] == 0 and np.isnan(none["wet_forecast"]) and np.isnan(none["p99_forecast"])


def _station_rain(bundle, data_dir):
    from sca2lstm.evaluation.context import BasinContext

    ctx = BasinContext.resolve(bundle, data_dir, "32006")
    p = ctx.record.x[:, list(ctx.cfg.data.dynamic_inputs).index("precipitation")].astype(np.float64)
    return pd.Series(p, index=pd.DatetimeIndex(ctx.record.dates))


@pytest.mark.parametrize("kind", ["drizzly", "observed"])
def test_a_reforecast_compares_the_archives_rain_with_the_observed_and_hints_at_mapping_a_drizzly_one(
        kind, bundle, pretrained_ckpt, tiny_data_dir, tmp_path, capsys):
    from sca2lstm.cli.forecast import main

    obs = _station_rain(bundle, tiny_data_dir)
    rng = np.random.default_rng(8)

    def rain(t0, k, m):
        v = obs.get(t0 + pd.Timedelta(days=k), np.nan)
        if kind == "observed":
            return v
        return float(rng.uniform(0.5, 2.0)) if v == 0 else 0.6 * v + 0.6   # rain on dry days, storms damped

    path = tmp_path / f"{kind}.csv"    # 9 months before the span: enough earlier forecasts to map it
    _archive(pd.date_range("1973-06-01", "1974-06-30"), leads=2, rain=rain).dropna().to_csv(path, index=False)
    runs = {}
    for mapping in ("none", "quantile", "auto") if kind == "drizzly" else ("none", "auto"):
        rc = main(["--model", str(pretrained_ckpt), "--basin", "32006", "--data_dir", str(tiny_data_dir),
                   "--from", "1974-03-01", "--to", "1974-06-25", "--leads", "2", "--weather_forecast", str(path),
                   "--precip_mapping", mapping, "--output_dir", str(tmp_path / mapping)])
        out = capsys.readouterr()
        assert rc == 0, out.err
        runs[mapping] = (out.out, json.loads(next((tmp_path / mapping).glob("*/weather.json")).read_text()))
    text, record = runs["none"]
    rain_lines = [line for line in text.splitlines() if "archive rain against the observed, lead 1" in line]
    assert len(rain_lines) == 1, text
    figures = record["archive_rain"]["leads"]
    assert set(figures) == {"1", "2"} and figures["1"]["days"] >= 100
    one = figures["1"]
    if kind == "observed":
        assert one["wet_days_forecast"] == one["wet_days_observed"] and one["p99_forecast"] == one["p99_observed"]
        assert one["total_ratio"] == 1.0 and one["correlation"] == 1.0
        assert not one["drizzly_with_damped_storms"] and "drizzly" not in text
        # auto, the default, leaves an archive as skilful in its climate as this one as given, and says nothing
        text, auto = runs["auto"]
        assert auto["precip_mapping"]["method"] == "auto" and auto["precip_mapping"]["mapped"] is False
        assert "-mapped per lead" not in text
        return
    assert one["wet_days_forecast"] > DRIZZLY_WET_RATIO * one["wet_days_observed"]
    assert one["p99_forecast"] < DAMPED_P99_RATIO * one["p99_observed"] and one["drizzly_with_damped_storms"]
    assert f"{100 * one['wet_days_forecast']:.0f} % vs {100 * one['wet_days_observed']:.0f} %" in rain_lines[0]
    assert "drizzly with damped storms: --precip_mapping auto (the default) maps such forecasts" in rain_lines[0]
    # mapped, the figures are still the archive's as given, and the mapped share of wet days is added
    text, mapped = runs["quantile"]
    assert {k: v for k, v in mapped["archive_rain"]["leads"]["1"].items() if k != "wet_days_mapped"} == one
    assert mapped["precip_mapping"]["method"] == "quantile"
    assert mapped["archive_rain"]["leads"]["1"]["wet_days_mapped"] < one["wet_days_forecast"]
    assert "mapped) vs" in text and "the case --precip_mapping quantile is for" in text
    # auto maps this archive, whose earlier forecasts are drizzly with damped storms, as quantile does
    text, auto = runs["auto"]
    assert auto["precip_mapping"]["mapped"] is True and "auto-mapped per lead" in text
    assert auto["archive_rain"]["leads"]["1"]["wet_days_mapped"] == mapped["archive_rain"]["leads"]["1"]["wet_days_mapped"]


def _lead_days(archive: pd.DataFrame, day: str) -> pd.DataFrame:
    """The forecast an archive holds for issue date ``day``, as the table of one forecast's days a user fetches."""
    one = archive[archive["issue_date"] == day]
    return one.rename(columns={"valid_date": "date"})[["date", "precipitation", "temperature"]].reset_index(drop=True)


def test_one_forecast_of_a_station_with_an_archive_is_mapped_as_a_reforecast_maps_that_date(
        bundle, data_with_archive, tiny_data_dir, tmp_path, capsys):
    """Today's forecast, given alone (a table of its lead days, or a long table of one issue date), is ranked among
    the station's own archive's forecasts issued before today: the same amounts, and so the same forecast, as the
    archive's forecast of that date in a reforecast. A station without an archive is not mapped."""
    from sca2lstm.cli.forecast import main
    from sca2lstm.evaluation.operational import issue_forecast
    from sca2lstm.weather.files import read_forecast_file

    p = data_with_archive / "weather_archive" / "32006.csv"
    archive = pd.read_csv(p)
    day = "1973-05-04"
    plain = _lead_days(archive, day)
    long = tmp_path / "today.csv"
    archive[archive["issue_date"] == day].to_csv(long, index=False)
    run = lambda wf, mapping="quantile", d=data_with_archive: issue_forecast(  # noqa: E731
        bundle, "32006", data_dir=d, issue_date=day, leads=7, weather_forecast=wf, precip_mapping=mapping)
    ref = run(read_forecast_file(p))
    for given in (plain, read_forecast_file(long)):
        fc = run(given)
        np.testing.assert_allclose(fc.table["median"], ref.table["median"], rtol=1e-6)
        np.testing.assert_allclose(fc.table["q95"], ref.table["q95"], rtol=1e-6)
        rec = fc.data["weather_forecast"]["precip_mapping"]
        assert rec["method"] == "quantile" and rec["mapped"] and "issued before 1973-05-04" in rec["ranked_among"]
        assert any("lead(s) 7 of issue date 1973-05-04" in n for n in fc.data["notes"])   # too few earlier lead-7
    as_given = run(plain, "none")
    assert "precip_mapping" not in as_given.data.get("weather_forecast", {})
    assert not np.allclose(as_given.table["median"], ref.table["median"], rtol=1e-3)
    alone = run(plain, "auto", tiny_data_dir)              # no archive of its own: nothing to rank among
    assert "precip_mapping" not in alone.data.get("weather_forecast", {})
    plain.to_csv(tmp_path / "plain.csv", index=False)
    rc = main(["--model", bundle[3]["source_path"], "--basin", "32006", "--data_dir", str(data_with_archive),
               "--issue_date", day, "--weather_forecast", str(tmp_path / "plain.csv"), "--precip_mapping", "quantile",
               "--output_dir", str(tmp_path / "o")])
    out = capsys.readouterr().out
    assert rc == 0 and "quantile-mapped per lead" in out and "32006.csv: its forecasts issued before 1973-05-04" in out


def _pretrained_beside_an_archive(bundle, cfg, tiny_data_dir, tmp_path, first: str, last: str):
    """A copy of the tiny data with a drizzly archive of basin 32006 (issue dates ``first``..``last``) and a model
    pretrained on that folder: (data folder, archive table, checkpoint path)."""
    import shutil

    from sca2lstm.training.pretrain import pretrain

    d = tmp_path / "data"
    shutil.copytree(tiny_data_dir, d)
    (d / "weather_archive").mkdir()
    archive = drizzly_archive(bundle, d, "32006", pd.date_range(first, last))
    archive.to_csv(d / "weather_archive" / "32006.csv", index=False)
    out = tmp_path / "pretrained_beside_archive.pth"
    pretrain(cfg, out, data_dir=d, progress=False)
    return d, archive, out


@pytest.mark.slow
def test_a_model_trained_on_the_stations_archive_reads_its_forecasts_as_given_under_auto(
        bundle, tiny_cfg, tiny_data_dir, tmp_path, capsys):
    """Training that read a station's archive records it in the checkpoint; ``auto`` then leaves that station's
    forecasts as the archive gives them (the model learned that rain: mapping would correct it twice), while a
    model that never saw the archive maps the same drizzly forecast. ``quantile``, asked for, still maps."""

    from sca2lstm.cli.forecast import main
    from sca2lstm.evaluation.operational import issue_forecast

    d, archive, out = _pretrained_beside_an_archive(bundle, tiny_cfg, tiny_data_dir, tmp_path, "1971-01-01",
                                                    "1974-12-31")
    learned = load_model(out)
    rec = learned[3]["weather_archives"]
    assert set(rec) == {"32006"} and rec["32006"]["file"].endswith("32006.csv") and rec["32006"]["issue_dates"] > 1400
    assert bundle[3].get("weather_archives", {}) == {}     # the tiny data have no archive
    day = "1974-06-01"
    today = _lead_days(archive.assign(issue_date=archive["issue_date"].astype(str)), day)
    fc = issue_forecast(learned, "32006", data_dir=d, issue_date=day, leads=7, weather_forecast=today)
    got = fc.data["weather_forecast"]["precip_mapping"]
    assert got["mapped"] is False and "trained on this station's archive" in got["not_mapped_because"]
    other = issue_forecast(bundle, "32006", data_dir=d, issue_date=day, leads=7, weather_forecast=today)
    assert other.data["weather_forecast"]["precip_mapping"]["mapped"] is True
    asked = issue_forecast(learned, "32006", data_dir=d, issue_date=day, leads=7, weather_forecast=today,
                           precip_mapping="quantile")
    assert asked.data["weather_forecast"]["precip_mapping"]["mapped"] is True
    today.to_csv(tmp_path / "today.csv", index=False)
    rc = main(["--model", str(out), "--basin", "32006", "--data_dir", str(d), "--issue_date", day,
               "--weather_forecast", str(tmp_path / "today.csv"), "--output_dir", str(tmp_path / "o")])
    printed = capsys.readouterr().out
    assert rc == 0 and "not mapped (auto): the model's weights trained on this station's archive" in printed


def test_fine_tuning_records_the_stations_archive_only_where_its_weights_are_kept():
    """The checkpoint of a fine-tuning that kept the pretrained weights has not learned the station's archive; one
    that kept the fine-tuned weights has; either keeps what the pretrained model learned."""
    from types import SimpleNamespace

    from sca2lstm.training.finetune import _learned_archives

    ctx = SimpleNamespace(basin="32006", ckpt={"weather_archives": {"10002": {"file": "a/10002.csv"}}})
    trained = {"32006": {"file": "b/32006.csv"}}
    assert _learned_archives(ctx, None) == {"10002": {"file": "a/10002.csv"}}
    assert _learned_archives(ctx, trained) == {"10002": {"file": "a/10002.csv"}, "32006": {"file": "b/32006.csv"}}


def test_an_unreadable_station_archive_refuses_only_the_forecasts_that_would_rank_among_it(
        bundle, pretrained_ckpt, tiny_data_dir, tmp_path, capsys):
    """A station archive that is not an archive (no issue_date column) is refused in one line, naming it, by a
    forecast with weather that would be ranked among it; a forecast without weather, or with --precip_mapping none,
    never reads it, and the service still sets the station up."""
    import shutil

    from sca2lstm.cli.forecast import main
    from sca2lstm.data import reader
    from sca2lstm.evaluation.live import station_setup

    d = tmp_path / "data"
    shutil.copytree(tiny_data_dir, d)
    (d / "weather_archive").mkdir()
    (d / "weather_archive" / "32006.csv").write_text("date,precipitation\n1973-05-02,1.0\n")
    plain = tmp_path / "today.csv"
    pd.DataFrame({"date": pd.date_range("1973-05-02", periods=7).strftime("%Y-%m-%d"), "precipitation": 2.0,
                  "temperature": 10.0}).to_csv(plain, index=False)
    base = ["--model", str(pretrained_ckpt), "--basin", "32006", "--data_dir", str(d), "--issue_date", "1973-05-01"]
    for extra, rc_want in (([], 0), (["--weather_forecast", str(plain), "--precip_mapping", "none"], 0),
                           (["--weather_forecast", str(plain)], 1)):
        rc = main([*base, *extra, "--output_dir", str(tmp_path / f"o{len(extra)}")])
        err = capsys.readouterr().err.strip()
        assert rc == rc_want, err
    assert "weather_archive/32006.csv" in err and len(err.splitlines()) == 1
    setup = station_setup(bundle, "32006", reader.read_timeseries(d, "32006"), d)
    assert setup.rain.archive is None and "32006.csv" in setup.rain.archive_error


def test_one_forecast_in_whole_millimetres_is_mapped_as_the_same_amounts_in_decimals(bundle, data_with_archive,
                                                                                      tmp_path):
    """Rain written as whole numbers (``2``, not ``2.0``) reads as an integer column: the mapped amounts, which are
    not whole, still replace it, in a table of the lead days and a one-issue-date long table alike."""
    from sca2lstm.evaluation.operational import issue_forecast
    from sca2lstm.weather.files import read_forecast_file

    day = "1973-05-04"
    days = pd.date_range("1973-05-05", periods=7).strftime("%Y-%m-%d")
    rain = [0, 3, 12, 1, 0, 25, 2]
    plain = pd.DataFrame({"date": days, "precipitation": rain, "temperature": 10})
    long = plain.rename(columns={"date": "valid_date"}).assign(issue_date=day, lead_days=range(1, 8))
    run = lambda wf: issue_forecast(bundle, "32006", data_dir=data_with_archive, issue_date=day, leads=7,  # noqa: E731
                                    weather_forecast=wf, precip_mapping="quantile")
    ref = run(plain.assign(precipitation=plain["precipitation"].astype(float)))
    assert ref.data["weather_forecast"]["precip_mapping"]["mapped"] is True
    long.to_csv(tmp_path / "long.csv", index=False)
    for given in (plain, read_forecast_file(tmp_path / "long.csv")):
        fc = run(given)
        assert fc.data["weather_forecast"]["precip_mapping"]["mapped"] is True
        np.testing.assert_allclose(fc.table["median"], ref.table["median"], rtol=1e-6)


def test_a_bad_date_in_one_forecast_of_a_station_with_an_archive_is_refused_in_one_line(
        pretrained_ckpt, data_with_archive, tmp_path, capsys):
    """The lead days are dated by the one date parser of every weather file before they are ranked among the
    station's archive: a day that is no date is named in one line, as for a station without an archive."""
    from sca2lstm.cli.forecast import main

    days = ["1973-05-32", *pd.date_range("1973-05-06", periods=6).strftime("%Y-%m-%d")]
    p = tmp_path / "today.csv"
    pd.DataFrame({"date": days, "precipitation": 2.0, "temperature": 10.0}).to_csv(p, index=False)
    rc = main(["--model", str(pretrained_ckpt), "--basin", "32006", "--data_dir", str(data_with_archive),
               "--issue_date", "1973-05-04", "--weather_forecast", str(p), "--output_dir", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip()
    assert rc == 1 and len(err.splitlines()) == 1, err
    assert "'1973-05-32' is not one" in err and str(p) in err


def test_one_forecast_longer_than_the_leads_read_is_mapped_and_noted_on_those_leads_only(bundle, data_with_archive):
    """``weather fetch`` asks two days more than the leads (the issue day and one more): the days after the leads
    the forecast reads are neither mapped nor named as left unmapped (the archive has no forecast of lead 8)."""
    from sca2lstm.evaluation.operational import issue_forecast

    day = "1973-05-04"
    rng = np.random.default_rng(4)
    fetched = pd.DataFrame({"date": pd.date_range("1973-05-05", periods=9).strftime("%Y-%m-%d"),
                            "precipitation": rng.gamma(0.8, 5.0, 9).round(1), "temperature": 10.0})
    run = lambda wf, leads: issue_forecast(bundle, "32006", data_dir=data_with_archive, issue_date=day,  # noqa: E731
                                           leads=leads, weather_forecast=wf, precip_mapping="quantile")
    for leads in (6, 7):
        fc = run(fetched, leads)
        short = [n for n in fc.data["notes"] if "not quantile-mapped" in n]
        # lead 7 has too few earlier forecasts in this archive (123 issue dates); 8 and 9 are not read
        expected = [] if leads == 6 else ["lead(s) 7 of issue date 1973-05-04"]
        assert len(short) == len(expected) and all(e in n for e, n in zip(expected, short)), short
        assert fc.data["weather_forecast"]["precip_mapping"]["mapped"] is True
        np.testing.assert_allclose(fc.table["median"], run(fetched.head(leads), leads).table["median"], rtol=1e-6)


@pytest.mark.parametrize("method", ["quantile", "auto"])
def test_a_lead_without_amounts_on_its_first_issue_dates_counts_only_the_dates_with_one(method):
    """An archive whose lead 2 has no amounts (NaN: an answer with nulls) on its first 200 issue dates: those dates
    are no forecast sample, so the dates just after them are left as given with a note, not ranked among nothing
    (which failed) or among a few; lead 1, with amounts on every date, is mapped."""
    dates = pd.date_range("1972-01-01", periods=260)
    a = _archive(dates, leads=2, seed=5)
    a.loc[(a["lead_days"] == 2) & (pd.to_datetime(a["issue_date"]) < dates[200]), "precipitation"] = np.nan
    table = from_long_table(a, "archive.csv").table
    rng = np.random.default_rng(6)   # a dry climate with big storms: the archive is drizzly with damped storms
    observed = np.where(rng.random(2000) < 0.7, 0.0, rng.gamma(0.8, 12.0, 2000))
    t = [dates[200], dates[250]]
    mapped, short = map_precipitation(table, observed, t, method=method)
    assert short == {t[0]: [(2, 0)], t[1]: [(2, 50)]}
    on = table["issue_date"].isin(t)
    lead = (table["valid_date"] - table["issue_date"]).dt.days
    assert (mapped.loc[on & (lead == 2), "precipitation"] == table.loc[on & (lead == 2), "precipitation"]).all()
    assert not np.allclose(mapped.loc[on & (lead == 1), "precipitation"], table.loc[on & (lead == 1), "precipitation"])
    assert "at most 0)" in unmapped_text(short)


@pytest.mark.slow
def test_a_station_archive_of_years_no_training_window_reads_is_not_recorded_as_learned(
        bundle, tiny_cfg, tiny_data_dir, tmp_path):
    """An archive of the test years only (1976-1977; training ends 1974) feeds no training window: the checkpoint
    does not record it, so ``auto`` still maps the station's drizzly forecasts instead of saying the weights
    learned them."""

    from sca2lstm.evaluation.operational import issue_forecast

    d, archive, out = _pretrained_beside_an_archive(bundle, tiny_cfg, tiny_data_dir, tmp_path, "1976-01-01",
                                                    "1977-12-31")
    model = load_model(out)
    assert model[3]["weather_archives"] == {}
    day = "1977-08-01"
    today = _lead_days(archive.assign(issue_date=archive["issue_date"].astype(str)), day)
    fc = issue_forecast(model, "32006", data_dir=d, issue_date=day, leads=7, weather_forecast=today)
    got = fc.data["weather_forecast"]["precip_mapping"]
    assert got["mapped"] is True and "not_mapped_because" not in got


def _copy_with_drizzly_archive(bundle, tiny_data_dir, tmp_path):
    """A copy of the tiny data whose basin 32006 has a drizzly archive of 1971-1975 (its training years and after)
    at weather_archive/32006.csv: ``(folder, archive file)``."""
    import shutil

    d = tmp_path / "data"
    shutil.copytree(tiny_data_dir, d)
    (d / "weather_archive").mkdir()
    p = d / "weather_archive" / "32006.csv"
    drizzly_archive(bundle, d, "32006", pd.date_range("1971-01-01", "1975-12-31")).to_csv(p, index=False)
    return d, p


def test_a_reforecast_by_a_model_that_learned_the_archive_says_its_drizzly_rain_was_not_mapped(
        bundle, pretrained_ckpt, tiny_data_dir, tmp_path, capsys):
    """``auto`` leaves the archive a model trained on as given: the reforecast's rain line then says so, and
    neither it nor weather.json gives a mapped share of wet days, or says such forecasts are mapped."""

    import torch

    from sca2lstm.cli.forecast import main

    d, p = _copy_with_drizzly_archive(bundle, tiny_data_dir, tmp_path)
    # the session's model with the record pretraining on this folder writes (a test above trains such a model)
    ckpt = torch.load(pretrained_ckpt, map_location="cpu", weights_only=False)
    ckpt["weather_archives"] = {"32006": {"file": str(p), "issue_dates": 1826, "first": "1971-01-01",
                                          "last": "1975-12-31", "precipitation": "as given"}}
    learned = tmp_path / "learned.pth"
    torch.save(ckpt, learned)
    rc = main(["--model", str(learned), "--basin", "32006", "--data_dir", str(d), "--from", "1975-03-01", "--to",
               "1975-06-30", "--weather_forecast", str(p), "--output_dir", str(tmp_path / "o")])
    out = capsys.readouterr()
    assert rc == 0, out.err
    record = json.loads(next((tmp_path / "o").glob("*/weather.json")).read_text())
    assert record["precip_mapping"]["mapped"] is False and record["precip_mapping"]["not_mapped_because"]
    lead1 = record["archive_rain"]["leads"]["1"]
    assert lead1["drizzly_with_damped_storms"] and "wet_days_mapped" not in lead1
    (line,) = [x for x in out.out.splitlines() if "archive rain against the observed" in x]
    assert "mapped)" not in line and "mapped where" not in line and "not mapped" in line, line


def test_a_checkpoint_older_than_its_record_of_learned_archives_is_said_to_maybe_have_learned_the_archive(
        bundle, pretrained_ckpt, tiny_data_dir, tmp_path, capsys):
    """A checkpoint written before ``weather_archives`` existed cannot say whether its weights learned the station's
    archive: where ``auto`` maps an archive whose forecasts were issued in the days the model trained the station on,
    the reforecast says the model may have learned that rain and names ``--precip_mapping none``; a checkpoint that
    records no learned archive maps it without a word of it."""

    import torch

    from sca2lstm.cli.forecast import main

    d, p = _copy_with_drizzly_archive(bundle, tiny_data_dir, tmp_path)
    ckpt = torch.load(pretrained_ckpt, map_location="cpu", weights_only=False)
    assert ckpt["weather_archives"] == {}
    del ckpt["weather_archives"]
    old = tmp_path / "old.pth"
    torch.save(ckpt, old)
    records = {}
    for model, says in ((old, True), (pretrained_ckpt, False)):
        out_dir = tmp_path / f"o_{says}"
        rc = main(["--model", str(model), "--basin", "32006", "--data_dir", str(d), "--from", "1975-03-01", "--to",
                   "1975-04-30", "--weather_forecast", str(p), "--output_dir", str(out_dir)])
        out = capsys.readouterr()
        assert rc == 0, out.err
        record = json.loads(next(out_dir.glob("*/weather.json")).read_text())["precip_mapping"]
        assert record["mapped"] is True
        assert ("may_have_learned" in record) is says
        assert ("--precip_mapping none" in out.err + out.out) is says
        records[says] = record
    assert "trained on basin 32006's days 19" in records[True]["may_have_learned"]


def test_a_reforecast_of_one_forecasts_issue_date_maps_it_among_the_stations_archive_as_forecast_does(
        pretrained_ckpt, data_with_archive, tmp_path, capsys):
    """``--from D --to D`` with the long table of one forecast issued on D: its rain is ranked among the station's
    archive as ``--issue_date D`` ranks it (``quantile`` maps always), not left as given without a word."""
    from sca2lstm.cli.forecast import main

    day = "1973-05-04"
    archive = pd.read_csv(data_with_archive / "weather_archive" / "32006.csv")
    one = tmp_path / "today.csv"
    archive[archive["issue_date"] == day].to_csv(one, index=False)
    base = ["--model", str(pretrained_ckpt), "--basin", "32006", "--data_dir", str(data_with_archive),
            "--weather_forecast", str(one), "--precip_mapping", "quantile", "--leads", "6"]
    assert main([*base, "--issue_date", day, "--output_dir", str(tmp_path / "single")]) == 0
    assert main([*base, "--from", day, "--to", day, "--output_dir", str(tmp_path / "span")]) == 0
    out = capsys.readouterr().out
    single = pd.read_csv(next((tmp_path / "single").rglob("forecast.csv")))
    span = pd.read_csv(next((tmp_path / "span").rglob("reforecast.csv")))
    np.testing.assert_allclose(span["median"], single["median"], rtol=1e-4)
    record = json.loads(next((tmp_path / "span").glob("*/weather.json")).read_text())["precip_mapping"]
    assert record["mapped"] is True and "issued before 1973-05-04" in record["ranked_among"]
    assert out.count("quantile-mapped per lead") == 2
    # the reforecast names the file as the user gave it, as the single forecast does, not behind the flag's name
    lines = [line for line in out.splitlines() if "quantile-mapped per lead" in line]
    assert all(line.startswith(f"Precipitation of {one} quantile-mapped") for line in lines), lines


def test_an_unreadable_archive_of_a_station_whose_archive_the_model_learned_refuses_only_quantile(
        pretrained_ckpt, tiny_data_dir, tmp_path, capsys):
    """``auto`` ranks nothing for a station whose archive the model trained on: its forecast is issued with the rain
    as given, and says why, even where the archive can no longer be read; ``quantile``, which would rank among it,
    is refused in one line naming the file."""
    import shutil

    import torch

    from sca2lstm.cli.forecast import main

    d = tmp_path / "data"
    shutil.copytree(tiny_data_dir, d)
    (d / "weather_archive").mkdir()
    p = d / "weather_archive" / "32006.csv"
    p.write_text("date,precipitation\n1973-05-02,1.0\n")
    # the session's model with the record pretraining on this station's archive writes
    ckpt = torch.load(pretrained_ckpt, map_location="cpu", weights_only=False)
    ckpt["weather_archives"] = {"32006": {"file": str(p), "issue_dates": 1461, "first": "1971-01-01",
                                          "last": "1974-12-31", "precipitation": "as given"}}
    learned = tmp_path / "learned.pth"
    torch.save(ckpt, learned)
    today = tmp_path / "today.csv"
    pd.DataFrame({"date": pd.date_range("1973-05-02", periods=7).strftime("%Y-%m-%d"), "precipitation": 2.0,
                  "temperature": 10.0}).to_csv(today, index=False)
    base = ["--model", str(learned), "--basin", "32006", "--data_dir", str(d), "--issue_date", "1973-05-01",
            "--weather_forecast", str(today)]
    assert main([*base, "--output_dir", str(tmp_path / "auto")]) == 0
    out = capsys.readouterr().out
    assert "not mapped (auto): the model's weights trained on this station's archive" in out
    assert main([*base, "--precip_mapping", "quantile", "--output_dir", str(tmp_path / "q")]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "weather_archive/32006.csv" in err


def test_without_observed_rain_to_map_to_auto_uses_the_forecast_as_given_and_quantile_refuses(data_with_archive):
    """A station (or model) with no observed precipitation in its training part has nothing to map forecast rain
    to: the default reads the forecast as given and says why; ``quantile``, asked for, is refused in one line."""
    from sca2lstm.errors import DataError
    from sca2lstm.evaluation.rain_mapping import StationRain, mapped_weather
    from sca2lstm.weather.files import read_forecast_file

    archive = read_forecast_file(data_with_archive / "weather_archive" / "32006.csv")
    why = "basin 32006: no observed precipitation in its training part"
    rain = StationRain("32006", None, "none", archive=archive, missing=why)
    today = _lead_days(pd.read_csv(data_with_archive / "weather_archive" / "32006.csv"), "1973-05-04")
    for wf, days in ((today, ["1973-05-04"]), (archive, archive.issue_dates[-3:])):
        got = mapped_weather(rain, wf, days, "auto")
        assert got.weather is wf and got.record["mapped"] is False and got.record["not_mapped_because"] == why
        with pytest.raises(DataError, match=why):
            mapped_weather(rain, wf, days, "quantile")


def test_one_forecasts_leads_without_enough_earlier_forecasts_are_said_to_keep_the_forecasts_rain(
        bundle, data_with_archive):
    """A lead of one forecast whose station archive holds too few earlier forecasts of it keeps the forecast's own rain,
    and the note says so (not "as the archive gives it", which would read as the archive's rain replacing it)."""
    from sca2lstm.evaluation.operational import issue_forecast

    today = _lead_days(pd.read_csv(data_with_archive / "weather_archive" / "32006.csv"), "1973-05-04")
    fc = issue_forecast(bundle, "32006", data_dir=data_with_archive, issue_date="1973-05-04", leads=7,
                        weather_forecast=today, precip_mapping="quantile")
    note = fc.data["weather_forecast"]["precip_mapping"]["unmapped"]
    assert "lead(s) 7 of issue date 1973-05-04" in note and note.endswith("left as the forecast gives it")


def test_the_rain_mapping_line_is_said_in_chinese_with_its_values_and_in_english_as_before(data_with_archive):
    """The line of a mapping (the service's notes carry it) is said in Chinese: for a model whose weights learned the
    station's archive (not mapped, and why), and for an archive ranked among its own earlier forecasts; its English
    text is the one the command has always printed."""
    from sca2lstm.evaluation.rain_mapping import StationRain, mapped_weather, mapping_line
    from sca2lstm.weather.files import read_forecast_file

    archive = read_forecast_file(data_with_archive / "weather_archive" / "32006.csv")
    observed = np.random.default_rng(5).gamma(0.5, 6.0, 2000)
    today = _lead_days(pd.read_csv(data_with_archive / "weather_archive" / "32006.csv"), "1973-05-04")
    learned = StationRain("32006", observed, "1971-01-01..1974-12-31", archive=archive, learned={"file": "32006.csv"})
    line = mapping_line(mapped_weather(learned, today, ["1973-05-04"], "auto").record, "the weather forecast")
    assert line == ("Precipitation of the weather forecast not mapped (auto): the model's weights trained on this "
                    "station's archive of forecasts, its rain as given")
    assert line.said_in("zh") == "天气预报的降水未作映射（auto）：模型权重训练时用的就是该测站天气预报存档中的原始降水"
    rain = StationRain("32006", observed, "1971-01-01..1974-12-31")
    record = mapped_weather(rain, archive, archive.issue_dates[-3:], "quantile").record
    assert record["mapped"] is True
    line = mapping_line(record, "archive.csv")
    assert line == ("Precipitation of archive.csv quantile-mapped per lead to the observed rain of "
                    "1971-01-01..1974-12-31, ranked among the archive's forecasts issued before each issue date")
    assert line.said_in("zh") == ("archive.csv的降水已按 1971-01-01..1974-12-31 的实测降水分布逐个预见期作分位数映射（quantile），"
                                  "排位样本为该存档中各发布日之前发布的预报")


def test_the_note_of_leads_left_unmapped_is_said_in_chinese_with_its_leads_and_days(bundle, data_with_archive):
    """The note of a forecast's lead left as the forecast gives it (its station's archive holds 123 earlier forecasts
    of lead 7, fewer than the 180 a mapping ranks among) is said in Chinese with the same lead, days and counts; its
    English text is the one the command has always printed."""
    from sca2lstm.evaluation.operational import issue_forecast

    today = _lead_days(pd.read_csv(data_with_archive / "weather_archive" / "32006.csv"), "1973-05-04")
    fc = issue_forecast(bundle, "32006", data_dir=data_with_archive, issue_date="1973-05-04", leads=7,
                        weather_forecast=today, precip_mapping="quantile")
    [note] = [n for n in fc.data["notes"] if "not quantile-mapped" in n]
    assert note == (f"the weather forecast: precipitation of lead(s) 7 of issue date 1973-05-04 not quantile-mapped: "
                    f"fewer than {MIN_ISSUE_DATES} earlier issue dates with a forecast of the lead (at most 123); left "
                    "as the forecast gives it")
    assert note.said_in("zh") == (f"天气预报：发布日 1973-05-04 预见期第 7 天的降水未作分位数映射：此前有该预见期预报的发布日不足 "
                                  f"{MIN_ISSUE_DATES} 个（最多 123 个）；按该预报给出的原值使用")


def test_leads_left_unmapped_and_a_model_that_may_have_learned_the_rain_are_one_note_in_either_language():
    """A drizzly forecast mapped (``auto``) among a station archive that holds 123 earlier forecasts of its leads 6 and
    7, by a checkpoint older than its record of learned archives that trained on the days they were issued, carries
    one note of both: in English as before (the leads,
    then the caution naming --precip_mapping none), in Chinese with the same leads, days and counts."""
    from sca2lstm.evaluation.rain_mapping import StationRain, mapped_weather
    from sca2lstm.weather.files import from_long_table

    drizzle = np.random.default_rng(1)
    a = _archive(pd.date_range("1972-06-01", "1973-05-10"), rain=lambda t0, k, m: float(drizzle.uniform(1.0, 2.0)))
    a = a[~((a["lead_days"] >= 6) & (pd.to_datetime(a["issue_date"]) < pd.Timestamp("1973-01-01")))]
    today = _lead_days(a.assign(issue_date=a["issue_date"].astype(str)), "1973-05-04")
    rain = StationRain("32006", np.random.default_rng(4).gamma(0.5, 6.0, 2000), "1971-01-01..1974-12-31",
                       archive=from_long_table(a, "archive.csv"), unrecorded_spans=(("1971-01-01", "1974-12-31"),))
    got = mapped_weather(rain, today, ["1973-05-04"], "auto")
    assert got.record["mapped"] is True
    assert got.note == (
        f"the weather forecast: precipitation of lead(s) 6, 7 of issue date 1973-05-04 not quantile-mapped: fewer than "
        f"{MIN_ISSUE_DATES} earlier issue dates with a forecast of the lead (at most 123); left as the forecast gives "
        "it The model was trained before checkpoints recorded the archives of forecasts their weights learned, and it "
        "trained on basin 32006's days 1971-01-01..1974-12-31, when 337 of the forecasts its rain was ranked among "
        "were issued: if its training data folder held that archive, the model learned its rain as given and mapping "
        "corrects it twice; then forecast with --precip_mapping none.")
    assert got.note.said_in("zh") == (
        f"天气预报：发布日 1973-05-04 预见期第 6、7 天的降水未作分位数映射：此前有该预见期预报的发布日不足 {MIN_ISSUE_DATES} 个"
        "（最多 123 个）；按该预报给出的原值使用。该模型训练时检查点尚不记录其权重学过的天气预报存档，且它用测站 32006 的 "
        "1971-01-01..1974-12-31 时段训练过，而本次降水排位所用的预报中有 337 个发布于该时段：若当时训练数据目录中有该存档，"
        "模型已按原值学过其降水，再作映射即重复订正；此时请用 --precip_mapping none 预报。")
    # the mapping's record keeps the caution as before: one clause, without its capital and full stop
    assert got.record["may_have_learned"] == "the model" + got.note.split(" The model", 1)[1].removesuffix(".")


def test_a_station_without_observed_rain_to_map_to_is_said_so_in_chinese_on_the_rain_mapping_line(
        bundle, data_with_archive):
    """A station whose record holds no precipitation in its training part has no climate to map a forecast's rain
    to: ``auto`` reads the forecast as given, and the line saying why is said in Chinese with the same station and
    days; in English as before."""
    from sca2lstm.data import reader
    from sca2lstm.evaluation.context import BasinContext
    from sca2lstm.evaluation.rain_mapping import StationRain, mapped_weather, mapping_line

    ts = reader.read_timeseries(data_with_archive, "32006")
    ts.loc[:"1975-12-31", "precipitation"] = np.nan   # its training years (1971-1974) without rain
    ctx = BasinContext.resolve(bundle, data_with_archive, "32006", timeseries=ts)
    i0, i1 = ctx.training_days()
    today = _lead_days(pd.read_csv(data_with_archive / "weather_archive" / "32006.csv"), "1973-05-04")
    got = mapped_weather(StationRain.of(ctx), today, ["1973-05-04"], "auto")
    line = mapping_line(got.record, "the weather forecast")
    assert got.record["mapped"] is False and i1 > i0
    assert line == (f"Precipitation of the weather forecast not mapped (auto): basin 32006: no observed precipitation "
                    f"in its training part (days {i0}..{i1} of its record) to map the forecast precipitation to")
    assert line.said_in("zh") == (f"天气预报的降水未作映射（auto）：测站 32006：训练时段（记录的第 {i0}..{i1} 天）没有实测降水，"
                                  "无法将预报降水映射到实测降水分布")
