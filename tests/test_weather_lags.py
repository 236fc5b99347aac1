"""An archive's forecast of a day combined with the same day's forecasts of its earlier issue dates
(``forecast --weather_lags auto``): closer to the rain where runs err independently, causal, in the forecast's own
climate, left as given where it cannot be fitted, and a reforecast equal to single forecasts."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from tolerance import HALF_4TH_DECIMAL, assert_forecasts_close

from sca2lstm.checkpoint import load_model
from sca2lstm.weather.lagged import MIN_PAIRS, combine_lagged


def _rain(days: pd.DatetimeIndex, seed: int = 0) -> pd.Series:
    """Observed rain: 45 % dry days, gamma amounts on the others."""
    rng = np.random.default_rng(seed)
    wet = rng.random(len(days)) > 0.45
    return pd.Series(np.where(wet, rng.gamma(0.8, 6.0, len(days)), 0.0), index=days)


def _runs(observed: pd.Series, issue_dates, leads: int = 7, members: int = 1, seed: int = 1) -> pd.DataFrame:
    """An archive whose every run errs on its own: the observed rain of the valid day times a mean-one log-normal
    error of sd 0.3 + 0.6 k / leads, a missed or false day with probability 0.05 + 0.15 k / leads (false rain: 4 mm)."""
    rng = np.random.default_rng(seed)
    rows = []
    for t0 in pd.DatetimeIndex(issue_dates):
        for m in range(members):
            for k in range(1, leads + 1):
                v = t0 + pd.Timedelta(days=k)
                o = observed.get(v, np.nan)
                s = 0.3 + 0.6 * k / leads
                p = o * np.exp(s * rng.standard_normal() - s * s / 2)
                if rng.random() < 0.05 + 0.15 * k / leads:
                    p = 0.0 if o > 0 else 4.0
                rows.append({"issue_date": t0, "lead_days": k, "valid_date": v, "member": m,
                             "precipitation": p, "temperature": 10.0})
    return pd.DataFrame(rows).dropna()


def _lead(table: pd.DataFrame, k: int, issue_dates) -> pd.Series:
    on = (table["lead_days"] == k) & table["issue_date"].isin(pd.DatetimeIndex(issue_dates))
    return table.loc[on].set_index("valid_date")["precipitation"]


DAYS = pd.date_range("2000-01-01", "2003-12-31")
OBS = _rain(DAYS)
SCORED = pd.date_range("2003-01-01", "2003-12-20")


@pytest.fixture(scope="module")
def archive() -> pd.DataFrame:
    return _runs(OBS, DAYS[:-8])


def test_a_days_consensus_of_runs_that_err_on_their_own_is_closer_to_the_rain_than_the_issue_dates_run(archive):
    out, record = combine_lagged(archive, OBS, SCORED)
    assert record["issue_dates"] == len(SCORED) and record["first"] == "2003-01-01"
    for k in (1, 2, 3, 4):   # leads with three earlier runs of their days
        given, combined = _lead(archive, k, SCORED), _lead(out, k, SCORED)
        r_given = np.corrcoef(given, OBS[given.index])[0, 1]
        r_combined = np.corrcoef(combined, OBS[combined.index])[0, 1]
        assert r_combined > r_given + 0.03, (k, r_given, r_combined)
    # the last lead has no earlier run of its day in the archive: as given
    pd.testing.assert_series_equal(_lead(out, 7, SCORED), _lead(archive, 7, SCORED))
    # the issue dates not asked for are only read
    other = ~out["issue_date"].isin(SCORED)
    np.testing.assert_array_equal(out.loc[other, "precipitation"], archive.loc[other, "precipitation"])


def test_the_combination_keeps_the_forecasts_share_of_dry_days_and_their_largest_storms(archive):
    out, _ = combine_lagged(archive, OBS, SCORED)
    given, combined = _lead(archive, 3, SCORED), _lead(out, 3, SCORED)
    # a least-squares consensus alone has rain on nearly every day; mapped back by rank it keeps the runs' dry days
    assert abs((combined == 0).mean() - (given == 0).mean()) < 0.08
    assert combined.max() > 0.6 * given.max() and combined.min() >= 0.0


def test_an_issue_dates_combination_reads_no_rain_observed_in_or_after_its_month(archive):
    day = pd.Timestamp("2003-06-17")
    out, _ = combine_lagged(archive, OBS, [day])
    later = OBS.copy()
    later[later.index >= "2003-06-01"] = 50.0              # what fell from the month's first day on
    out_later, _ = combine_lagged(archive, later, [day])
    np.testing.assert_array_equal(_lead(out_later, 2, [day]), _lead(out, 2, [day]))
    earlier = OBS.copy()
    earlier[earlier.index < "2003-06-01"] = OBS[OBS.index < "2003-06-01"].to_numpy()[::-1]
    out_earlier, _ = combine_lagged(archive, earlier, [day])
    # the weights are fitted on the days before: other rain there, another forecast
    assert not np.allclose(_lead(out_earlier, 2, [day]), _lead(out, 2, [day]))


def test_fewer_verified_days_than_the_least_leave_the_archive_as_given():
    days = pd.date_range("2000-01-01", periods=MIN_PAIRS - 20)
    short = _runs(OBS, days)
    out, record = combine_lagged(short, OBS, days[-10:])
    np.testing.assert_array_equal(out["precipitation"], short["precipitation"])
    assert record["issue_dates"] == 0 and f"fewer than {MIN_PAIRS} verified days" in record["why"]


def test_an_ensemble_archive_is_left_as_given():
    ens = _runs(OBS, DAYS[:500], members=2)
    out, record = combine_lagged(ens, OBS, DAYS[450:460])
    np.testing.assert_array_equal(out["precipitation"], ens["precipitation"])
    assert record["issue_dates"] == 0 and "ensemble" in record["why"]


@pytest.fixture(scope="module")
def bundle(pretrained_ckpt):
    return load_model(pretrained_ckpt)


@pytest.fixture(scope="module")
def long_archive(bundle, tiny_data_dir, tmp_path_factory):
    """Basin 32006's runs of every day 1971-01-01..1973-05-10 (its observed rain, erring on their own), as a file."""
    from sca2lstm.evaluation.context import BasinContext

    ctx = BasinContext.resolve(bundle, tiny_data_dir, "32006")
    names = list(ctx.cfg.data.dynamic_inputs)
    obs = pd.Series(ctx.record.x[:, names.index("precipitation")].astype(np.float64),
                    index=pd.DatetimeIndex(ctx.record.dates))
    table = _runs(obs, pd.date_range("1971-01-01", "1973-05-10"))
    path = tmp_path_factory.mktemp("lags") / "archive.csv"
    table.assign(issue_date=table["issue_date"].dt.date, valid_date=table["valid_date"].dt.date).drop(
        columns="member").to_csv(path, index=False)
    return path


def _rows_equal_single_forecasts(table, bundle, ckpt, data_dir, archive, precip_mapping: str) -> list:
    """Each of two issue dates' rows of the reforecast ``table`` against the forecast of that date alone from the same
    archive (``--weather_lags auto``); the single forecasts."""
    from sca2lstm.evaluation.reforecast import warned_forecast
    from sca2lstm.weather.files import read_forecast_file

    wf, ones = read_forecast_file(archive), []
    for day in ("1973-05-01", "1973-05-05"):
        one = warned_forecast(bundle, "32006", data_dir=data_dir, issue_date=day, leads=7, weather_forecast=wf,
                              model_path=ckpt, precip_mapping=precip_mapping, weather_lags="auto")[0]
        got = table[table["issue_date"] == day].sort_values("lead_days").reset_index(drop=True)
        # one window in the reforecast's batch against alone, read back from the CSV's 4 decimals (tests/tolerance.py)
        assert_forecasts_close(got, one.table, bundle, "32006", ("median", "q05", "q95"), spread_from=ckpt,
                               last_obs=got["persistence"], rounding=HALF_4TH_DECIMAL, msg=day)
        ones.append(one)
    return ones


def test_a_lagged_reforecast_equals_the_lagged_single_forecasts_and_records_the_combination(
        bundle, pretrained_ckpt, tiny_data_dir, long_archive, tmp_path, capsys):
    from sca2lstm.cli.forecast import main

    runs = {}
    for lags in ("none", "auto"):
        rc = main(["--model", str(pretrained_ckpt), "--basin", "32006", "--data_dir", str(tiny_data_dir),
                   "--from", "1973-05-01", "--to", "1973-05-05", "--weather_forecast", str(long_archive),
                   "--precip_mapping", "none", "--weather_lags", lags, "--output_dir", str(tmp_path / lags)])
        out = capsys.readouterr()
        assert rc == 0, out.err
        runs[lags] = next((tmp_path / lags).glob("*/reforecast.csv"))
    # the file as the user named it, as a single forecast prints it
    assert f"Precipitation of {long_archive}: each day's forecast combined with the same day's forecasts issued up " \
           "to 3 days earlier" in out.out, out.out
    record = json.loads((runs["auto"].parent / "weather.json").read_text())
    assert record["lagged"]["issue_dates"] == 5 and record["lagged"]["first"] == "1973-05-01"
    assert "lagged" not in json.loads((runs["none"].parent / "weather.json").read_text())
    t = pd.read_csv(runs["auto"], parse_dates=["issue_date"])
    plain = pd.read_csv(runs["none"], parse_dates=["issue_date"])
    assert not np.allclose(t["median"], plain["median"], rtol=1e-4)    # the option changes the forecasts
    for one in _rows_equal_single_forecasts(t, bundle, pretrained_ckpt, tiny_data_dir, long_archive, "none"):
        assert one.data["weather_forecast"]["lagged"]["issue_dates"] == 1
    rc = main(["--model", str(pretrained_ckpt), "--basin", "32006", "--data_dir", str(tiny_data_dir),
               "--issue_date", "1973-05-04", "--weather_forecast", str(long_archive), "--weather_lags", "auto",
               "--format", "json", "--output_dir", str(tmp_path / "single")])
    assert rc == 0 and "forecasts issued up to 3 days earlier" in capsys.readouterr().out
    doc = json.loads(next((tmp_path / "single").rglob("forecast.json")).read_text())
    assert doc["data"]["weather_forecast"]["lagged"]["first"] == "1973-05-04"


def test_an_archive_too_short_to_combine_says_why_in_one_line_and_forecasts_as_with_none(
        bundle, pretrained_ckpt, tiny_data_dir, tmp_path, capsys):
    from sca2lstm.cli.forecast import main
    from sca2lstm.evaluation.context import BasinContext

    ctx = BasinContext.resolve(bundle, tiny_data_dir, "32006")
    names = list(ctx.cfg.data.dynamic_inputs)
    obs = pd.Series(ctx.record.x[:, names.index("precipitation")].astype(np.float64),
                    index=pd.DatetimeIndex(ctx.record.dates))
    table = _runs(obs, pd.date_range("1973-01-01", "1973-06-30"))     # half a year: no lead can be fitted
    path = tmp_path / "short.csv"
    table.assign(issue_date=table["issue_date"].dt.date, valid_date=table["valid_date"].dt.date).drop(
        columns="member").to_csv(path, index=False)
    tables, printed = {}, {}
    for lags in ("none", "auto"):
        rc = main(["--model", str(pretrained_ckpt), "--basin", "32006", "--data_dir", str(tiny_data_dir),
                   "--from", "1973-05-01", "--to", "1973-05-05", "--weather_forecast", str(path),
                   "--precip_mapping", "none", "--weather_lags", lags, "--output_dir", str(tmp_path / lags)])
        out = capsys.readouterr()
        assert rc == 0, out.err
        printed[lags] = [line for line in out.out.splitlines() if "earlier runs" in line]
        tables[lags] = pd.read_csv(next((tmp_path / lags).glob("*/reforecast.csv")))
    assert printed["none"] == []
    assert len(printed["auto"]) == 1 and f"fewer than {MIN_PAIRS} verified days" in printed["auto"][0], printed
    assert "not combined" in printed["auto"][0] and str(path) in printed["auto"][0]
    pd.testing.assert_frame_equal(tables["auto"], tables["none"])
    rc = main(["--model", str(pretrained_ckpt), "--basin", "32006", "--data_dir", str(tiny_data_dir),
               "--issue_date", "1973-05-03", "--weather_forecast", str(path), "--output_dir", str(tmp_path / "one")])
    out = capsys.readouterr().out
    assert rc == 0 and sum("not combined with its earlier runs" in line for line in out.splitlines()) == 1, out


def test_each_issue_dates_combination_is_the_same_asked_alone_as_among_a_reforecasts_dates(archive):
    days = pd.date_range("2003-09-01", "2003-11-30")
    together, _ = combine_lagged(archive, OBS, days)
    for day in days:
        alone, _ = combine_lagged(archive, OBS, [day])
        on = archive["issue_date"] == day
        # bit for bit: the rank mapping jumps at ties of the sample, so one ulp can move a value by a rank's width
        np.testing.assert_array_equal(alone.loc[on, "precipitation"], together.loc[on, "precipitation"],
                                      err_msg=str(day.date()))


def test_an_issue_date_after_a_gap_in_the_archive_is_left_as_given_and_the_gap_named_as_why(archive):
    gap = archive[~archive["issue_date"].isin(pd.date_range("2003-03-07", "2003-03-09"))]
    day = pd.Timestamp("2003-03-10")       # its days' earlier runs were all issued in the gap
    out, record = combine_lagged(gap, OBS, [day])
    np.testing.assert_array_equal(out["precipitation"], gap["precipitation"])
    assert record["issue_dates"] == 0 and "gap" in record["why"] and "fewer than" not in record["why"], record
    # the day after reads the run of 2003-03-10 again: its lead 6 (one earlier run of its days) is combined
    _, record = combine_lagged(gap, OBS, [day + pd.Timedelta(days=1)])
    assert record["issue_dates"] == 1


def test_a_reforecast_leaves_out_an_archives_date_of_two_runs_and_issues_the_others_as_without_it(
        pretrained_ckpt, tiny_data_dir, long_archive, tmp_path, capsys):
    """An archive of one run a day with one date fetched twice: its lagged combination leaves that date as given and
    combines the others as if it were a gap, but a reforecast over it was refused as a mix of one forecast and an
    ensemble, naming the first date of one run. The date of two runs is left out, saying why, and every other row is
    that of the archive without the date, bit for bit."""
    from sca2lstm.cli.forecast import main

    runs = pd.read_csv(long_archive).assign(member=0)
    twice = runs[runs["issue_date"] == "1973-05-03"].assign(member=1, precipitation=lambda t: t["precipitation"] + 1)
    tables = {}
    for name, table in (("twice", pd.concat([runs, twice])), ("without", runs[runs["issue_date"] != "1973-05-03"])):
        table.to_csv(tmp_path / f"{name}.csv", index=False)
        rc = main(["--model", str(pretrained_ckpt), "--basin", "32006", "--data_dir", str(tiny_data_dir),
                   "--from", "1973-05-01", "--to", "1973-05-05", "--weather_forecast", str(tmp_path / f"{name}.csv"),
                   "--precip_mapping", "none", "--output_dir", str(tmp_path / name)])
        out = capsys.readouterr()
        assert rc == 0, out.err
        tables[name] = pd.read_csv(next((tmp_path / name).glob("*/reforecast.csv")))
        if name == "twice":
            assert ("left out: 1 of 5 issue dates asked: 1973-05-03 (2 runs on this date in an archive of one run a "
                    "day: which is the day's run is not known)") in out.out, out.out
    assert sorted(tables["twice"]["issue_date"].unique()) == ["1973-05-01", "1973-05-02", "1973-05-04", "1973-05-05"]
    pd.testing.assert_frame_equal(tables["twice"], tables["without"])


def test_a_reforecast_from_one_forecast_of_a_date_outside_its_span_is_refused_in_one_line(
        pretrained_ckpt, tiny_data_dir, long_archive, tmp_path, capsys):
    """A file of one issue date's forecast given to a reforecast of other dates: the lagged combination took its one
    date from the span's dates and failed with a traceback (ValueError) where there were none; it is refused in the
    one line it gets with --weather_lags none, naming the span."""
    from sca2lstm.cli.forecast import main

    runs = pd.read_csv(long_archive)
    one = tmp_path / "one.csv"
    runs[runs["issue_date"] == "1973-05-03"].to_csv(one, index=False)
    said = {}
    for lags in ("auto", "none"):
        rc = main(["--model", str(pretrained_ckpt), "--basin", "32006", "--data_dir", str(tiny_data_dir),
                   "--from", "1973-05-04", "--to", "1973-05-05", "--weather_forecast", str(one),
                   "--precip_mapping", "none", "--weather_lags", lags, "--output_dir", str(tmp_path / lags)])
        err = capsys.readouterr().err.strip().splitlines()
        assert rc == 1 and len(err) == 1, err
        said[lags] = err[0]
    assert said["auto"] == said["none"] and "holds no forecast for an issue date in 1973-05-04..1973-05-05" in \
        said["auto"], said


def test_a_reforecast_counts_as_combined_only_the_issue_dates_it_issues(pretrained_ckpt, tiny_data_dir, long_archive,
                                                                         tmp_path, capsys):
    from sca2lstm.cli.forecast import main

    # basin 32006 has no observed flow 1972-04-12..1972-05-23: those issue dates are left out of the reforecast
    rc = main(["--model", str(pretrained_ckpt), "--basin", "32006", "--data_dir", str(tiny_data_dir),
               "--from", "1972-04-01", "--to", "1972-04-30", "--weather_forecast", str(long_archive),
               "--precip_mapping", "none", "--output_dir", str(tmp_path)])
    out = capsys.readouterr().out
    assert rc == 0
    table = pd.read_csv(next(tmp_path.glob("*/reforecast.csv")))
    issued = table["issue_date"].nunique()
    assert 0 < issued < 30 and "left out" in out
    record = json.loads(next(tmp_path.glob("*/weather.json")).read_text())["lagged"]
    assert record["issue_dates"] == issued, (record, issued)
    assert f"({issued} issue date(s) from 1972-04-01" in out


def test_a_mapped_lagged_reforecast_ranks_each_date_among_the_runs_as_issued_as_its_single_forecast_does(
        bundle, pretrained_ckpt, tiny_data_dir, long_archive, tmp_path, capsys):
    from sca2lstm.cli.forecast import main

    # a span of months before the date: its earlier dates' combined runs must not become the date's rank sample
    rc = main(["--model", str(pretrained_ckpt), "--basin", "32006", "--data_dir", str(tiny_data_dir),
               "--from", "1972-07-01", "--to", "1973-05-05", "--weather_forecast", str(long_archive),
               "--precip_mapping", "quantile", "--output_dir", str(tmp_path), "--quiet"])
    assert rc == 0, capsys.readouterr().err
    t = pd.read_csv(next(tmp_path.glob("*/reforecast.csv")), parse_dates=["issue_date"])
    _rows_equal_single_forecasts(t, bundle, pretrained_ckpt, tiny_data_dir, long_archive, "quantile")


def test_an_archive_of_one_run_a_day_combines_all_but_its_few_dates_of_several_runs_and_counts_them(archive):
    """A date with two runs (a run fetched twice) is neither combined nor read as another date's earlier run: the
    other dates are combined as if it were a gap in the archive, bit for bit, and the record says how many were left."""
    twice = pd.DatetimeIndex(["2002-05-05", "2003-03-10"])
    extra = archive[archive["issue_date"].isin(twice)].assign(member=1, precipitation=lambda t: t["precipitation"] + 3)
    mixed = pd.concat([archive, extra], ignore_index=True)
    out, record = combine_lagged(mixed, OBS, SCORED)
    # the dates of several runs: as given
    on = mixed["issue_date"].isin(twice).to_numpy()
    np.testing.assert_array_equal(out.loc[on, "precipitation"], mixed.loc[on, "precipitation"])
    # every other date: as combined from the archive without those dates
    gap = archive[~archive["issue_date"].isin(twice)]
    expected, as_gap = combine_lagged(gap, OBS, SCORED)
    got = out.loc[~on].set_index(["issue_date", "lead_days"])["precipitation"].sort_index()
    np.testing.assert_array_equal(got, expected.set_index(["issue_date", "lead_days"])["precipitation"].sort_index())
    # 2003-03-11 too reads no earlier run at any lead: 2003-03-10's were its only ones
    assert record["issue_dates"] == as_gap["issue_dates"] == len(SCORED) - 2, (record, as_gap)
    assert record["several_runs"] == {"issue_dates": 2, "first": "2002-05-05", "runs": 2}, record
    from sca2lstm.evaluation.rain_mapping import lagged_line

    line = lagged_line({"method": "auto", **record}, "a.csv")
    assert "combined" in line and "2 issue date(s) holding several runs (the first 2002-05-05) left as given" in line
    # the date of several runs asked alone: as given, and why
    out, record = combine_lagged(mixed, OBS, twice[1:])
    np.testing.assert_array_equal(out["precipitation"], mixed["precipitation"])
    assert record["issue_dates"] == 0 and "several runs issued on 2003-03-10" in record["why"], record


def test_an_archive_whose_dates_mostly_hold_several_runs_is_an_ensemble_left_as_given(archive):
    days = archive["issue_date"].drop_duplicates()
    most = days[: len(days) // 2 + 1]
    mixed = pd.concat([archive, archive[archive["issue_date"].isin(most)].assign(member=1)], ignore_index=True)
    out, record = combine_lagged(mixed, OBS, SCORED)
    np.testing.assert_array_equal(out["precipitation"], mixed["precipitation"])
    assert record["issue_dates"] == 0 and "an ensemble archive (2 runs on" in record["why"], record


def test_an_archive_of_one_lead_says_it_has_no_earlier_run_rather_than_too_few_days():
    one = _runs(OBS, DAYS[:-2], leads=1)
    out, record = combine_lagged(one, OBS, SCORED)
    np.testing.assert_array_equal(out["precipitation"], one["precipitation"])
    assert record["issue_dates"] == 0 and "reach lead 1 only" in record["why"], record


def test_an_archive_after_the_stations_rain_record_ends_says_the_rain_is_missing_rather_than_too_few_days(archive):
    ended = OBS[OBS.index < "2000-03-01"]           # the station's rain stops two months into a 4-year archive
    out, record = combine_lagged(archive, ended, SCORED)
    np.testing.assert_array_equal(out["precipitation"], archive["precipitation"])
    assert record["issue_dates"] == 0 and "observed precipitation covers 60 of the archive's" in record["why"], record


def test_a_checkpoint_older_than_its_record_of_learned_archives_is_said_to_maybe_have_learned_the_runs_combined(
        pretrained_ckpt, tiny_data_dir, long_archive, tmp_path, capsys):
    """A checkpoint written before ``weather_archives`` existed cannot say whether its weights learned the archive's
    runs as given: ``--weather_lags auto`` combines them, as ``--precip_mapping auto`` maps them, and says in one
    line (and weather.json) that the model may have learned them, naming ``--weather_lags none``; a checkpoint that
    records no learned archive combines them without a word of it."""
    import torch

    from sca2lstm.cli.forecast import main

    ckpt = torch.load(pretrained_ckpt, map_location="cpu", weights_only=False)
    assert ckpt["weather_archives"] == {}
    del ckpt["weather_archives"]
    old = tmp_path / "old.pth"
    torch.save(ckpt, old)
    for model, says in ((old, True), (pretrained_ckpt, False)):
        out_dir = tmp_path / f"o_{says}"
        rc = main(["--model", str(model), "--basin", "32006", "--data_dir", str(tiny_data_dir), "--from", "1973-05-01",
                   "--to", "1973-05-05", "--weather_forecast", str(long_archive), "--precip_mapping", "none",
                   "--output_dir", str(out_dir)])
        out = capsys.readouterr()
        assert rc == 0, out.err
        record = json.loads(next(out_dir.glob("*/weather.json")).read_text())
        assert record["lagged"]["issue_dates"] == 5
        assert ("may_have_learned" in record["lagged"]) is says, record["lagged"]
        assert (out.err + out.out).count("--weather_lags none.") == int(says), out.err
        assert len(record["notes"]) == int(says), record["notes"]
    cautioned = json.loads(next((tmp_path / "o_True").glob("*/weather.json")).read_text())["lagged"]
    assert "trained on basin 32006's days 19" in cautioned["may_have_learned"]
    # a single forecast of the archive says it too, in its notes
    rc = main(["--model", str(old), "--basin", "32006", "--data_dir", str(tiny_data_dir), "--issue_date",
               "1973-05-04", "--weather_forecast", str(long_archive), "--precip_mapping", "none", "--format", "json",
               "--output_dir", str(tmp_path / "single")])
    out = capsys.readouterr()
    assert rc == 0 and (out.err + out.out).count("--weather_lags none.") == 1, out
    doc = json.loads(next((tmp_path / "single").rglob("forecast.json")).read_text())
    assert "may_have_learned" in doc["data"]["weather_forecast"]["lagged"]
    assert any("--weather_lags none" in n for n in doc["data"]["notes"])


@pytest.fixture(scope="module")
def station_with_archive(long_archive, tiny_data_dir, tmp_path_factory):
    """The tiny data with basin 32006's archive of runs issued before 1973-05-04 (DATA_DIR/weather_archive), and the run
    of 1973-05-04 as a forecaster's one fresh forecast: a plain CSV ``date, precipitation, temperature``."""
    import shutil

    d = tmp_path_factory.mktemp("station_lags") / "data"
    shutil.copytree(tiny_data_dir, d)
    runs = pd.read_csv(long_archive)
    (d / "weather_archive").mkdir()
    runs[runs["issue_date"] < "1973-05-04"].to_csv(d / "weather_archive" / "32006.csv", index=False)
    fresh = runs[runs["issue_date"] == "1973-05-04"]
    one = d.parent / "today.csv"
    fresh.rename(columns={"valid_date": "date"})[["date", "precipitation", "temperature"]].to_csv(one, index=False)
    appended = d.parent / "appended.csv"   # the station's archive with the fresh run appended
    runs[runs["issue_date"] <= "1973-05-04"].to_csv(appended, index=False)
    return d, one, appended, fresh


def _forecast(ckpt, data_dir, weather, out, capsys, *extra) -> tuple[str, dict, list]:
    """``sca2lstm forecast`` of basin 32006 issued 1973-05-04 with ``weather``: forecast.csv's text, forecast.json's
    data, the lines printed of earlier runs."""
    from sca2lstm.cli.forecast import main

    rc = main(["--model", str(ckpt), "--basin", "32006", "--data_dir", str(data_dir), "--issue_date", "1973-05-04",
               "--weather_forecast", str(weather), "--format", "json", "--output_dir", str(out), *extra])
    printed = capsys.readouterr()
    assert rc == 0, printed.err
    folder = next(out.rglob("forecast.json")).parent
    lines = [line for line in printed.out.splitlines() if "earlier runs" in line or "issued up to" in line]
    return (folder / "forecast.csv").read_text(), json.loads((folder / "forecast.json").read_text())["data"], lines


def test_one_fresh_forecast_is_combined_with_the_station_archives_earlier_runs_as_the_archive_with_it_appended(
        pretrained_ckpt, station_with_archive, tmp_path, capsys):
    """A forecaster's one deterministic forecast issued today, for a station with an archive of its earlier runs,
    is combined with them exactly as a forecast of today from the archive with today's run appended: bit for bit
    (the precipitation mapping of each as it would be, ``auto``), and says which file's runs it read."""
    d, one, appended, _ = station_with_archive
    got, data, lines = _forecast(pretrained_ckpt, d, one, tmp_path / "one", capsys)
    want, ref, _ = _forecast(pretrained_ckpt, d, appended, tmp_path / "archive", capsys)
    assert got == want
    lagged = data["weather_forecast"]["lagged"]
    archive = str(d / "weather_archive" / "32006.csv")
    assert lagged["issue_dates"] == 1 and lagged["issue_date"] == "1973-05-04" and archive in lagged["runs"], lagged
    assert "replaced" not in lagged
    assert ref["weather_forecast"]["lagged"]["issue_dates"] == 1
    assert len(lines) == 1 and f"Precipitation of {one}, as the run of 1973-05-04" in lines[0] and archive in lines[0], lines
    plain, _, none_lines = _forecast(pretrained_ckpt, d, one, tmp_path / "none", capsys, "--weather_lags", "none")
    assert plain != got and none_lines == []   # the option changed the forecast; none leaves it as given


def test_one_fresh_forecast_takes_the_place_of_the_archives_own_run_of_its_issue_date(
        pretrained_ckpt, station_with_archive, tmp_path, capsys):
    """Where the station's archive holds a run of the fresh forecast's issue date too, the fresh one wins (it is the
    forecast the flow forecast reads): as from the archive with its run of that date replaced, and said so."""
    import shutil

    d0, one, appended, fresh = station_with_archive
    d = tmp_path / "data"
    shutil.copytree(d0, d)
    stale = fresh.assign(precipitation=fresh["precipitation"] * 0.5 + 7.0)   # an older fetch of the same date
    pd.concat([pd.read_csv(d0 / "weather_archive" / "32006.csv"), stale]).to_csv(
        d / "weather_archive" / "32006.csv", index=False)
    got, data, lines = _forecast(pretrained_ckpt, d, one, tmp_path / "one", capsys, "--precip_mapping", "none")
    want, _, _ = _forecast(pretrained_ckpt, d, appended, tmp_path / "archive", capsys, "--precip_mapping", "none")
    assert got == want
    assert data["weather_forecast"]["lagged"]["replaced"] is True
    assert len(lines) == 1 and "takes the place of that archive's own run of 1973-05-04" in lines[0], lines


def test_one_fresh_forecast_of_a_station_without_an_archive_and_with_weather_lags_none_is_read_as_given(
        pretrained_ckpt, station_with_archive, tiny_data_dir, tmp_path, capsys):
    d, one, _, _ = station_with_archive
    bare, data, lines = _forecast(pretrained_ckpt, tiny_data_dir, one, tmp_path / "bare", capsys)
    assert lines == [] and "lagged" not in data.get("weather_forecast", {}), data.get("weather_forecast")
    # the station's archive present, the combination (and its mapping) switched off: the forecast as with none
    none, data, lines = _forecast(pretrained_ckpt, d, one, tmp_path / "none", capsys, "--weather_lags", "none",
                                  "--precip_mapping", "none")
    assert none == bare and lines == [] and "lagged" not in data.get("weather_forecast", {})


def test_one_fresh_ensemble_forecast_is_left_as_given_and_says_why(pretrained_ckpt, station_with_archive, tmp_path,
                                                                   capsys):
    d, _, _, fresh = station_with_archive
    ens = pd.concat([fresh.assign(member=0), fresh.assign(member=1, precipitation=fresh["precipitation"] + 1.0)])
    path = tmp_path / "ensemble.csv"
    ens.to_csv(path, index=False)
    got, data, lines = _forecast(pretrained_ckpt, d, path, tmp_path / "auto", capsys, "--precip_mapping", "none")
    given, _, none_lines = _forecast(pretrained_ckpt, d, path, tmp_path / "none", capsys, "--precip_mapping", "none",
                                     "--weather_lags", "none")
    assert got == given and none_lines == []
    lagged = data["weather_forecast"]["lagged"]
    assert lagged["issue_dates"] == 0 and "an ensemble of 2 members" in lagged["why"], lagged
    assert len(lines) == 1 and "not combined with the earlier runs of" in lines[0] and "ensemble" in lines[0], lines


def _station(table: pd.DataFrame):
    from sca2lstm.evaluation.rain_mapping import ArchiveRain, StationRain
    from sca2lstm.weather.files import WeatherForecast

    archive = ArchiveRain(WeatherForecast(table[["issue_date", "valid_date", "member", "precipitation"]], "a.csv"))
    return StationRain("x", OBS.to_numpy(), "", archive, rainfall=OBS[OBS.index >= table["issue_date"].min()])


def test_one_forecast_beside_a_station_archive_of_an_ensemble_or_issued_before_the_date_is_left_as_given(archive):
    """The service's path (a station's rain of its whole record): the run of 2003-06-17 combined as that date of the
    archive with it is; beside an ensemble archive, of a model trained on the archive, or an older forecast read for a
    later date, as given and why."""
    from dataclasses import replace

    from sca2lstm.evaluation.rain_mapping import lagged_weather
    from sca2lstm.weather.files import WeatherForecast

    day = pd.Timestamp("2003-06-17")
    run = archive[archive["issue_date"] == day]
    fresh = pd.DataFrame({"date": run["valid_date"].dt.strftime("%Y-%m-%d"), "precipitation": run["precipitation"],
                          "temperature": 10.0}).reset_index(drop=True)
    out, record = lagged_weather(_station(archive[archive["issue_date"] != day]), fresh, [day])
    expected, _ = combine_lagged(archive, OBS, [day])
    np.testing.assert_array_equal(out["precipitation"], expected.loc[archive["issue_date"] == day, "precipitation"])
    assert record["issue_dates"] == 1 and record["runs"] == "a.csv" and "replaced" not in record, record
    ens = pd.concat([archive, archive.assign(member=1)], ignore_index=True)
    out, record = lagged_weather(_station(ens), fresh, [day])
    assert out is fresh and record["issue_dates"] == 0 and "an ensemble archive (2 runs" in record["why"], record
    learned = replace(_station(archive), learned={"file": "a.csv"})   # the model's weights trained on the archive
    out, record = lagged_weather(learned, fresh, [day])
    assert out is fresh and record["issue_dates"] == 0 and "weights trained on this station's archive" in record["why"]
    older = WeatherForecast(run.assign(member=0), "older.csv")   # issued 2003-06-17, read for 2003-06-18
    out, record = lagged_weather(_station(archive), older, [day + pd.Timedelta(days=1)])
    assert out is older and record["issue_dates"] == 0 and "issued 2003-06-17, before the issue date" in record["why"]
