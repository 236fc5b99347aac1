"""Open-Meteo client and parsing on recorded responses (no network): lead mapping, members, station days,
previous runs, retries, refusals, and the `weather fetch` command."""

from __future__ import annotations

import json

import httpx
import numpy as np
import pandas as pd
import pytest

from openmeteo_fixtures import (daily_response, ensemble_response, hourly_response, loopback_server,
                                previous_runs_response, trickling_server)
from sca2lstm.errors import DataError, WeatherSourceError
from sca2lstm.weather.days import station_days
from sca2lstm.weather.fetch import Location, fetch_forecast, null_note, parse_points
from sca2lstm.weather.openmeteo import OpenMeteoClient, issue_table, parse_previous_runs, parse_response


def _mock(answers, seen=None):
    queue = list(answers)

    def handler(request):
        if seen is not None:
            seen.append(request)
        status, body = queue.pop(0) if len(queue) > 1 else queue[0]
        if isinstance(body, Exception):
            raise body
        return httpx.Response(status, content=body if isinstance(body, str) else json.dumps(body))

    return httpx.MockTransport(handler)


def test_first_day_is_the_issue_day_and_lead_k_is_k_days_after_it():
    doc = daily_response("2024-03-10", [0.0, 1.5, 12.0, 3.0, 0.0, 0.2, 7.0, 0.0, 1.0], [5.0] * 9, et0=[0.5] * 9)
    seen = []
    docs, t = fetch_forecast(Location([(51.5, -1.2)]), 7, client_options={
        "transport": _mock([(200, doc)], seen), "retries": 0})
    assert (t["issue_date"] == pd.Timestamp("2024-03-10")).all()
    assert t["lead_days"].tolist() == list(range(9))
    assert ((t["valid_date"] - t["issue_date"]).dt.days == t["lead_days"]).all()
    assert t.loc[t["lead_days"] == 2, "precipitation"].item() == 12.0       # the third day of the answer
    assert t.loc[t["lead_days"] == 2, "valid_date"].item() == pd.Timestamp("2024-03-12")
    q = dict(seen[0].url.params)
    assert q["daily"] == "precipitation_sum,temperature_2m_mean,et0_fao_evapotranspiration"
    assert q["forecast_days"] == "9" and q["timezone"] == "auto" and q["latitude"] == "51.5000"
    assert seen[0].headers["User-Agent"].startswith("sca2lstm/")
    assert docs == [doc]


def test_ensemble_members_and_control_become_members_0_to_n():
    doc = ensemble_response("2024-03-10", [1.0] * 8, [[2.0] * 8, [3.0] * 8, [4.0] * 8], [6.0] * 8)
    t = parse_response(doc, ["precipitation", "temperature"])
    assert sorted(t["member"].unique()) == [0, 1, 2, 3]
    assert t.groupby("member")["precipitation"].first().tolist() == [1.0, 2.0, 3.0, 4.0]
    assert (t.groupby("member").size() == 8).all()


def test_points_are_averaged():
    a = daily_response("2024-03-10", [2.0] * 8, [4.0] * 8, lat=51.0)
    b = daily_response("2024-03-10", [6.0] * 8, [8.0] * 8, lat=52.0)
    _, t = fetch_forecast(Location([(51.0, -1.0), (52.0, -1.0)]), 6,
                          client_options={"transport": _mock([(200, a), (200, b)]), "retries": 0})
    assert np.allclose(t["precipitation"], 4.0) and np.allclose(t["temperature"], 6.0)
    assert parse_points("51,-1; 52.5,-1.25") == [(51.0, -1.0), (52.5, -1.25)]


def test_a_fetched_table_says_where_it_is_for_and_is_refused_for_a_station_far_away(tiny_data_dir, tmp_path):
    """The CSV `weather fetch` writes carries the place asked (the mean of the points), so a forecast
    fetched for Germany is refused for a British gauge as its raw answer is; two places joined are refused."""
    from sca2lstm.weather.fetch import save_forecast
    from sca2lstm.weather.files import read_forecast_file, read_forecast_for_station

    doc = daily_response("1976-06-15", [1.0] * 9, [14.0] * 9, lat=47.9, lon=8.7)
    docs, t = fetch_forecast(Location([(47.8, 8.6), (48.0, 8.8)]), 7,
                             client_options={"transport": _mock([(200, doc)]), "retries": 0})
    assert (t["latitude"] == 47.9).all() and (t["longitude"] == 8.7).all()
    csv, _ = save_forecast(t, docs, tmp_path / "de.csv")
    wf = read_forecast_file(csv)
    assert wf.location == pytest.approx((47.9, 8.7)) and "latitude" not in wf.table.columns
    with pytest.raises(DataError, match=r"47\.90, 8\.70, \d+ km from station 32006's gauge"):
        read_forecast_for_station(csv, tiny_data_dir, "32006")
    joined = pd.concat([pd.read_csv(csv), pd.read_csv(csv).assign(latitude=52.0, member=1)])
    joined.to_csv(tmp_path / "joined.csv", index=False)
    with pytest.raises(DataError, match=r"places up to 4\d\d km apart"):
        read_forecast_file(tmp_path / "joined.csv")


def test_hourly_values_aggregate_to_a_0800_station_day():
    """Rain 1 mm in each hour ending 08:00..23:00 of 1 May and 0 otherwise; temperature = hour of day.

    A day from 08:00 holds the amounts stamped 09:00 .. 08:00 next day (the hour ending at the stamp):
    1 May 08:00 - 2 May 08:00 gets the 15 hours stamped 09:00..23:00 -> 15 mm; its temperature is the mean
    of the hourly stamps 08:00 .. 07:00 = mean(8..23, 0..7) = 11.5.
    """
    doc = hourly_response("2024-05-01", 3, lambda t: 1.0 if (t.day == 1 and 8 <= t.hour <= 23) else 0.0,
                          lambda t: float(t.hour))
    t = parse_response(doc, ["precipitation", "temperature"], hourly=True, day_start="08:00", day_label="start")
    by = t.set_index("date")
    assert by.loc["2024-05-01", "precipitation"] == 15.0
    assert by.loc["2024-05-01", "temperature"] == 11.5
    assert pd.Timestamp("2024-04-30") not in by.index or np.isnan(by.loc["2024-04-30", "precipitation"])
    # labelled by the end date, the same day is 2 May
    t2 = parse_response(doc, ["precipitation"], hourly=True, day_start="08:00", day_label="end").set_index("date")
    assert t2.loc["2024-05-02", "precipitation"] == 15.0
    # a day at midnight: the amount stamped 00:00 on 2 May belongs to 1 May (hour 23-24)
    d = station_days(["2024-05-01T%02d:00" % h for h in range(1, 24)] + ["2024-05-02T00:00"], {"precipitation": [1.0] * 24})
    assert d["precipitation"].tolist() == [24.0]


def _london_answer(first_day: str, days: int, rain_utc, true_clock: bool) -> dict:
    """Hourly rain for ``days`` London days from local midnight, ``rain_utc(utc hour) -> mm``: written as
    Open-Meteo writes it (one UTC offset, that of the first hour, throughout) or in London's true clock (a
    23-hour day in spring, a 25-hour one in autumn, the repeated hour twice in order)."""
    start = pd.Timestamp(first_day).tz_localize("Europe/London")
    end = (pd.Timestamp(first_day) + pd.Timedelta(days=days)).tz_localize("Europe/London")
    utc = pd.date_range(start.tz_convert("UTC"), end.tz_convert("UTC"), freq="h", inclusive="left")
    offset = int(start.utcoffset().total_seconds())
    local = (utc.tz_convert("Europe/London").tz_localize(None) if true_clock
             else utc.tz_localize(None) + pd.Timedelta(seconds=offset))
    return {"latitude": 51.5, "longitude": -1.2, "timezone": "Europe/London", "utc_offset_seconds": offset,
            "hourly_units": {"time": "iso8601", "precipitation": "mm", "temperature_2m": "°C"},
            "hourly": {"time": [t.strftime("%Y-%m-%dT%H:%M") for t in local],
                       "precipitation": [rain_utc(t) for t in utc.tz_localize(None)],
                       "temperature_2m": [10.0] * len(utc)}}


@pytest.mark.parametrize("first_day,change", [("2024-03-29", "2024-03-31"), ("2024-10-25", "2024-10-27")])
@pytest.mark.parametrize("true_clock", [False, True])
def test_a_daylight_saving_change_keeps_every_0800_station_day_and_its_rain(first_day, change, true_clock):
    """A London station's day runs 08:00 to 08:00 GMT (its standard time, as an imported record's). Across a
    daylight-saving change every day keeps its 24 hours, whether the answer keeps one UTC offset
    (Open-Meteo's) or follows the clock (23- and 25-hour days), and 1 mm in the hour ending 08:00 GMT of the
    day after the change falls on the day of the change."""
    after = pd.Timestamp(change) + pd.Timedelta(days=1, hours=8)
    doc = _london_answer(first_day, 6, lambda t: 1.0 if t == after else 0.0, true_clock)
    t = parse_response(doc, ["precipitation", "temperature"], hourly=True, day_start="08:00")
    by = t.dropna().set_index("date")
    days = pd.date_range(first_day, periods=5)
    assert list(by.index) == list(days)
    assert by["precipitation"].to_dict() == {d: (1.0 if d == pd.Timestamp(change) else 0.0) for d in days}
    table = issue_table([t], doc, hourly=True)
    assert table["lead_days"].tolist() == list(range(5))
    assert (table["valid_date"] == table["issue_date"] + pd.to_timedelta(table["lead_days"], unit="D")).all()
    # a zone this machine's time-zone database lacks: the answer's clock as it is, as before
    if not true_clock:
        unknown = {**doc, "timezone": "Nowhere/Atlantis", "utc_offset_seconds": 0}
        same = parse_response(unknown, ["precipitation"], hourly=True, day_start="08:00").dropna()
        assert list(same["date"]) == list(days)
        # without utc_offset_seconds (or with something else there) the zone's offset at the first hour
        for offset in (None, "n/a"):
            again = parse_response({**doc, "utc_offset_seconds": offset}, ["precipitation", "temperature"],
                                   hourly=True, day_start="08:00")
            assert again.dropna().set_index("date")["precipitation"].to_dict() == by["precipitation"].to_dict()


def test_previous_runs_take_day_n_for_lead_n():
    """Each value encodes its N: lead k of issue date t0 must read only _previous_dayk over day t0 + k."""
    doc = previous_runs_response("2024-01-01", 5, 3, lambda var, n, t: float(n) if var == "precipitation" else 10.0 * n)
    a = parse_previous_runs(doc, ["precipitation", "temperature"], 3)
    assert ((a["valid_date"] - a["issue_date"]).dt.days == a["lead_days"]).all()
    assert (a["precipitation"] == 24.0 * a["lead_days"]).all()      # 24 hours of value N summed
    assert (a["temperature"] == 10.0 * a["lead_days"]).all()
    row = a[(a["issue_date"] == "2024-01-01") & (a["lead_days"] == 2)]
    assert row["valid_date"].item() == pd.Timestamp("2024-01-03")


def test_an_archive_names_the_lead_days_open_meteo_answered_null_for(caplog):
    """Previous-runs days without all 24 hours get no row; a lead answered null throughout (or on some days) is
    named in one line with its count and first day, so an archive whose every issue date lacks lead 3 is not
    written in silence. A complete answer says nothing."""
    import logging

    from sca2lstm.weather.fetch import fetch_archive

    def value(var, n, t):
        if var == "precipitation" and (n == 3 or (n == 2 and t.day == 4 and t.hour > 0)):  # 00:00 ends the 3rd
            return None
        return 0.5 if var == "precipitation" else 8.0

    doc = previous_runs_response("2024-01-01", 7, 3, value)
    with caplog.at_level(logging.WARNING, logger="sca2lstm"):
        _, t = fetch_archive(Location([(51.5, -1.2)]), "2024-01-01", "2024-01-06", 3,
                             client_options={"transport": _mock([(200, doc)]), "retries": 0})
    assert not (t["lead_days"] == 3).any() and len(t[t["lead_days"] == 2]) == 5
    lines = [r.getMessage() for r in caplog.records if "no complete forecast" in r.getMessage()]
    assert len(lines) == 1
    assert "lead 2: 1 of 6 (first 2024-01-04); lead 3: 6 of 6 (first 2024-01-01)" in lines[0], lines
    assert "lead 1" not in lines[0]
    caplog.clear()
    full = previous_runs_response("2024-01-01", 7, 3, lambda var, n, t: 0.5 if var == "precipitation" else 8.0)
    with caplog.at_level(logging.WARNING, logger="sca2lstm"):
        fetch_archive(Location([(51.5, -1.2)]), "2024-01-01", "2024-01-06", 3,
                      client_options={"transport": _mock([(200, full)]), "retries": 0})
    assert not [r for r in caplog.records if "no complete forecast" in r.getMessage()]


@pytest.mark.parametrize("label,first_asked", [("start", "2024-01-01"), ("end", "2023-12-31")])
def test_an_archive_of_a_station_day_named_by_its_end_has_its_first_day(label, first_asked, caplog):
    """A station day from 08:00 named by its end holds the hours of the calendar day before: its archive asks
    from the day before --from (the server answers the span asked, as Open-Meteo does), and every valid day
    --from .. --to is there at every lead, the day before cut off; a day named by its start asks from --from."""
    import logging

    from sca2lstm.weather.fetch import fetch_archive

    seen = []

    def handler(request):
        seen.append(request)
        q = dict(request.url.params)
        n = (pd.Timestamp(q["end_date"]) - pd.Timestamp(q["start_date"])).days + 1
        doc = previous_runs_response(q["start_date"], n, 2, lambda var, k, t: 0.5 if var == "precipitation" else 8.0)
        return httpx.Response(200, content=json.dumps(doc))

    loc = Location([(51.5, -1.2)], day_start="08:00", day_label=label, timezone="GMT")
    with caplog.at_level(logging.WARNING, logger="sca2lstm"):
        _, t = fetch_archive(loc, "2024-01-01", "2024-01-06", 2,
                             client_options={"transport": httpx.MockTransport(handler), "retries": 0})
    assert dict(seen[0].url.params)["start_date"] == first_asked
    days = pd.date_range("2024-01-01", "2024-01-06").tolist()
    for k in (1, 2):
        assert sorted(t.loc[t["lead_days"] == k, "valid_date"]) == days, (label, k)
    assert np.allclose(t["precipitation"], 12.0)                     # 24 hours of 0.5 mm
    assert not [r for r in caplog.records if "no complete forecast" in r.getMessage()]


def test_an_hourly_answer_with_a_time_that_is_not_a_date_is_one_line_naming_the_answer():
    """A previous-runs or hourly forecast answer whose 'time' holds something that is not a date is refused
    naming the answer and its block, as a daily one is, not with the importer's advice to give a --date_format
    (no weather command has that option)."""
    prev = previous_runs_response("2024-01-01", 2, 1, lambda var, n, t: 1.0)
    prev["hourly"]["time"][5] = "soon"
    with pytest.raises(WeatherSourceError, match=r"^answer A: 'hourly.time' holds something that is not a date$"):
        parse_previous_runs(prev, ["precipitation", "temperature"], 1, source="answer A")
    hourly = hourly_response("2024-05-01", 2, lambda t: 0.5, lambda t: 20.0)
    hourly["hourly"]["time"][3] = "2024-13-45T00:00"
    with pytest.raises(WeatherSourceError, match=r"^answer B: 'hourly.time' holds something that is not a date$"):
        parse_response(hourly, ["precipitation", "temperature"], hourly=True, day_start="08:00", source="answer B")


def test_an_archive_request_asks_the_day_after_its_last_day():
    """Hourly amounts are stamped at the end of their hour: the last valid day's last hour is stamped 00:00 the
    next day, so the request runs one day further (and the table is cut back to --to)."""
    from sca2lstm.weather.openmeteo import previous_runs_params

    p = previous_runs_params(51.5, -1.2, ["precipitation"], "2024-03-01", "2024-03-31", 3)
    assert (p["start_date"], p["end_date"]) == ("2024-03-01", "2024-04-01")


def test_two_different_forecasts_for_one_day_are_refused_and_the_same_one_twice_is_one():
    from sca2lstm.weather.files import from_long_table

    one = pd.DataFrame({"issue_date": ["2024-03-05"] * 2, "valid_date": ["2024-03-06", "2024-03-07"],
                        "precipitation": [1.0, 2.0], "temperature": [5.0, 5.0]})
    assert len(from_long_table(pd.concat([one, one]), "joined.csv").table) == 2
    other = one.assign(precipitation=0.0)
    with pytest.raises(DataError, match=r"joined.csv: two different rows for the forecast issued 2024-03-05, valid "
                                        r"2024-03-06, member 0"):
        from_long_table(pd.concat([one, other]), "joined.csv")


def test_retries_with_backoff_then_success_and_refusals_in_one_line():
    seen = []
    ok = daily_response("2024-03-10", [1.0] * 8, [5.0] * 8)
    c = OpenMeteoClient(transport=_mock([(503, "busy"), (429, {"error": True, "reason": "Too many"}), (200, ok)], seen),
                        retries=3, backoff=0.0)
    assert c.get({"latitude": 1})["daily"]["time"][0] == "2024-03-10" and len(seen) == 3
    c = OpenMeteoClient(transport=_mock([(400, {"error": True, "reason": "Cannot initialize WeatherVariable"})]),
                        retries=3, backoff=0.0)
    with pytest.raises(WeatherSourceError, match="refused the request .*Cannot initialize WeatherVariable"):
        c.get({})
    c = OpenMeteoClient(transport=_mock([(503, "down")]), retries=2, backoff=0.0)
    with pytest.raises(WeatherSourceError, match="unreachable after 3 attempts: HTTP 503"):
        c.get({})
    # one attempt is said as one, and the way out names the command that reads a saved forecast (weather fetch and
    # weather archive, which raise this too, have no --weather_forecast)
    c = OpenMeteoClient(transport=_mock([(503, "down")]), retries=0, backoff=0.0)
    with pytest.raises(WeatherSourceError, match=r"unreachable after 1 attempt: HTTP 503.*give sca2lstm forecast a "
                                                 r"saved forecast file with --weather_forecast"):
        c.get({})
    c = OpenMeteoClient(transport=_mock([(200, "<html>not json</html>")]), retries=0)
    with pytest.raises(WeatherSourceError, match="not JSON"):
        c.get({})
    with pytest.raises(WeatherSourceError, match="no 'daily' block"):
        parse_response({"latitude": 1}, ["precipitation"])
    bad = daily_response("2024-03-10", [1.0] * 8, [5.0] * 8)
    bad["daily"]["precipitation_sum"] = [1.0] * 3
    with pytest.raises(WeatherSourceError, match="has 3 values for 8 times"):
        parse_response(bad, ["precipitation"])
    assert OpenMeteoClient("ensemble", base_url="http://h:8080").url == "http://h:8080/v1/ensemble"
    seen = []
    OpenMeteoClient(api_key="K", transport=_mock([(200, ok)], seen)).get({"a": 1})
    assert dict(seen[0].url.params)["apikey"] == "K"


def test_retries_wait_as_retry_after_asks_up_to_a_cap_and_a_refusal_is_asked_once():
    """Against a stub server on 127.0.0.1: a 429's Retry-After sets the wait (seconds or an HTTP date), a wait
    longer than the cap (a daily limit) ends the retries at once, a 400 is never retried and its reason is
    the line, an answer cut short is retried and named as such. The waits are recorded, not slept."""
    import email.utils
    import time

    ok = daily_response("2024-03-10", [1.0] * 8, [5.0] * 8)
    waits = []
    with loopback_server([(429, {"error": True, "reason": "Minutely API request limit exceeded"}, {"Retry-After": "7"}),
                          (503, "busy"), (200, ok)]) as (url, seen):
        doc = OpenMeteoClient(base_url=url, retries=3, backoff=0.5, sleep=waits.append).get({"latitude": 1})
    assert doc == ok and len(seen) == 3 and waits == [7.0, 1.0]     # Retry-After, then the backoff 0.5 * 2

    waits = []
    when = email.utils.formatdate(time.time() + 30, usegmt=True)
    with loopback_server([(429, "{}", {"Retry-After": when}), (200, ok)]) as (url, seen):
        OpenMeteoClient(base_url=url, retries=1, backoff=0.5, sleep=waits.append).get({})
    assert len(waits) == 1 and 27 <= waits[0] <= 30.5

    waits = []
    with loopback_server([(429, {"error": True, "reason": "Daily API request limit exceeded"},
                           {"Retry-After": "3600"})]) as (url, seen):
        with pytest.raises(WeatherSourceError, match=r"HTTP 429: Daily API request limit exceeded and asks to wait "
                                                     r"3600 s before retrying \(more than the 60 s"):
            OpenMeteoClient(base_url=url, retries=3, backoff=0.5, max_wait=60, sleep=waits.append).get({})
    assert len(seen) == 1 and waits == []

    with loopback_server([(400, {"error": True, "reason": "Forecast days is invalid. Allowed range 0 to 16."})]) \
            as (url, seen):
        with pytest.raises(WeatherSourceError, match=r"refused the request .*: Forecast days is invalid"):
            OpenMeteoClient(base_url=url, retries=3, backoff=0.5, sleep=waits.append).get({})
    assert len(seen) == 1 and waits == []

    with loopback_server([(200, b'{"latitude": 51.5, "daily": {"time": ["2024-', {"Content-Length": "500"})]) \
            as (url, seen):
        with pytest.raises(WeatherSourceError, match=r"unreachable after 2 attempts: the answer broke off"):
            OpenMeteoClient(base_url=url, retries=1, backoff=0.5, sleep=waits.append).get({})
    assert len(seen) == 2 and waits == [0.5]


def test_a_paid_key_asks_each_apis_own_customer_host():
    """Open-Meteo's paid plan has a host per API (customer-api, customer-ensemble-api,
    customer-previous-runs-api): a key alone asks the right one, and a customer host given as --base_url
    for another API stands for its tier; a self-hosted base URL is taken as given."""
    want = {"forecast": "https://customer-api.open-meteo.com/v1/forecast",
            "ensemble": "https://customer-ensemble-api.open-meteo.com/v1/ensemble",
            "previous-runs": "https://customer-previous-runs-api.open-meteo.com/v1/forecast"}
    for api, url in want.items():
        assert OpenMeteoClient(api, api_key="K").url == url
        assert OpenMeteoClient(api, base_url="https://customer-api.open-meteo.com/", api_key="K").url == url
    assert OpenMeteoClient("ensemble").url == "https://ensemble-api.open-meteo.com/v1/ensemble"
    assert OpenMeteoClient("ensemble", base_url="https://api.open-meteo.com").url == \
        "https://ensemble-api.open-meteo.com/v1/ensemble"
    assert OpenMeteoClient("previous-runs", base_url="http://h:8080", api_key="K").url == "http://h:8080/v1/forecast"
    seen = []
    ok = daily_response("2024-03-10", [1.0] * 8, [5.0] * 8)
    OpenMeteoClient("ensemble", api_key="K", transport=_mock([(200, ok)], seen)).get({"a": 1})
    assert seen[0].url.host == "customer-ensemble-api.open-meteo.com" and seen[0].url.params["apikey"] == "K"


# ------------------------------------------------------------------ the command
def _fetch_argv(ckpt, data_dir, out, base_url, *extra):
    return ["fetch", "--basin", "32006", "--model", str(ckpt), "--data_dir", str(data_dir), "--out", str(out),
            "--base_url", base_url, "--retries", "0", "--timeout", "2", *extra]


def test_fetch_without_network_is_one_line_exit_1_and_writes_nothing(pretrained_ckpt, tiny_data_dir, tmp_path,
                                                                     capsys):
    from sca2lstm.cli.weather import main

    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there: connection refused, as without network
    out = tmp_path / "wx.csv"
    rc = main(_fetch_argv(pretrained_ckpt, tiny_data_dir, out, f"http://127.0.0.1:{port}"))
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 1 and len(err) == 1 and "unreachable" in err[0]
    assert list(tmp_path.iterdir()) == []


def test_fetch_reads_the_api_key_from_the_environment(pretrained_ckpt, tiny_data_dir, tmp_path, monkeypatch):
    """The key in $SCA2LSTM_OPENMETEO_API_KEY (as the service reads it) keeps it out of the process list."""
    from sca2lstm.cli.weather import main

    monkeypatch.setenv("SCA2LSTM_OPENMETEO_API_KEY", "ENVKEY")
    doc = daily_response("1976-06-16", [0.5] * 9, [14.0] * 9, lat=51.5)
    with loopback_server([(200, doc)]) as (url, seen):
        assert main(_fetch_argv(pretrained_ckpt, tiny_data_dir, tmp_path / "wx.csv", url)) == 0
    assert "apikey=ENVKEY" in seen[0][0]
    with loopback_server([(200, doc)]) as (url, seen):   # a key given on the command line wins
        assert main(_fetch_argv(pretrained_ckpt, tiny_data_dir, tmp_path / "wx2.csv", url, "--api_key", "ARG")) == 0
    assert "apikey=ARG" in seen[0][0] and "ENVKEY" not in seen[0][0]


def test_fetch_saves_the_table_and_the_raw_response_from_a_server(pretrained_ckpt, tiny_data_dir, tmp_path, capsys):
    from sca2lstm.cli.weather import main

    doc = ensemble_response("1976-06-16", [0.5] * 9, [[1.0] * 9, [20.0] * 9], [14.0] * 9, lat=51.5)
    with loopback_server([(200, doc)]) as (url, seen):
        rc = main(_fetch_argv(pretrained_ckpt, tiny_data_dir, tmp_path / "wx.csv", url, "--ensemble"))
    assert rc == 0, capsys.readouterr().err
    assert seen[0][0].startswith("/v1/ensemble?") and "latitude=" in seen[0][0] and seen[0][1].startswith("sca2lstm/")
    t = pd.read_csv(tmp_path / "wx.csv")
    assert sorted(t["member"].unique()) == [0, 1, 2] and t["issue_date"].iloc[0] == "1976-06-16"
    assert json.loads((tmp_path / "wx.raw.json").read_text()) == doc
    # a refusal: one line, and the earlier good output stays as it was
    before = (tmp_path / "wx.csv").read_bytes()
    with loopback_server([(400, {"error": True, "reason": "Latitude must be in range"})]) as (url, _):
        rc = main(_fetch_argv(pretrained_ckpt, tiny_data_dir, tmp_path / "wx.csv", url))
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 1 and len(err) == 1 and "Latitude must be in range" in err[0]
    assert (tmp_path / "wx.csv").read_bytes() == before
    # an answer for another place (a proxy or --base_url gone wrong): refused, the earlier output stays
    far = ensemble_response("1976-06-16", [0.5] * 9, [[1.0] * 9], [14.0] * 9, lat=40.0, lon=10.0)
    with loopback_server([(200, far)]) as (url, _):
        rc = main(_fetch_argv(pretrained_ckpt, tiny_data_dir, tmp_path / "wx.csv", url))
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 1 and len(err) == 1 and "is for 40.00, 10.00" in err[0] and "km from the point asked" in err[0]
    assert (tmp_path / "wx.csv").read_bytes() == before


def _unequal():
    doc = daily_response("1976-06-16", [0.5] * 9, [14.0] * 9)
    doc["daily"]["temperature_2m_mean"] = [14.0] * 8
    return doc


def _same_day_twice():
    doc = daily_response("1976-06-16", [0.5] * 9, [14.0] * 9)
    doc["daily"]["time"][2] = doc["daily"]["time"][1]
    return doc


def _without(key):
    doc = daily_response("1976-06-16", [0.5] * 9, [14.0] * 9)
    del doc["daily"][key]
    return doc


def _units(**units):
    doc = daily_response("1976-06-16", [0.5] * 9, [14.0] * 9)
    doc["daily_units"] = {**doc["daily_units"], **units}
    return doc


@pytest.mark.parametrize("answer,needle", [
    ((200, "<html><body>502 Bad Gateway</body></html>"), "not JSON (an error page or a cut-off answer? it starts "
                                                          "'<html><body>502"),
    ((200, {"latitude": 51.5, "longitude": -1.2, "hourly": {}}), "no 'daily' block with 'time'"),
    ((200, _unequal()), "'daily.temperature_2m_mean' has 8 values for 9 times"),
    ((200, _without("precipitation_sum")), "no 'daily.precipitation_sum' in the answer, which a flow forecast needs"),
    ((200, _without("temperature_2m_mean")), "no 'daily.temperature_2m_mean' in the answer"),
    ((200, _same_day_twice()), "'daily.time' has 1976-06-17 twice"),
    ((200, daily_response("1976-06-16", [None] * 9, [14.0] * 9)), "'daily.precipitation_sum' is null on every day"),
    ((200, ensemble_response("1976-06-16", [0.5] * 9, [[1.0] * 9], [None] * 9)),
     "'daily.temperature_2m_mean' is null on every day"),
    ((200, _units(temperature_2m_mean="K")), "'daily.temperature_2m_mean' is in 'K'"),
    ((200, daily_response("1976-06-16", [0.5] * 9, [287.0] * 9)), "temperature 287 on 1976-06-16 is outside -60..60"),
    ((200, daily_response("1976-06-16", [-3.0] * 9, [14.0] * 9)), "precipitation -3 on 1976-06-16 is outside"),
    ((200, daily_response("1976-06-16", [0.5] * 9, [14.0] * 9, lat=None)),
     "Open-Meteo response is malformed: its latitude, longitude are None, -1.2, not numbers in degrees, so the place "
     "it is for cannot be checked; nothing written"),
    ((200, daily_response("1976-06-16", [0.5] * 9, [14.0] * 9, lon="-1.2")), "its latitude, longitude are 51.5, '-1.2',"),
    ((200, daily_response("1976-06-16", [0.5] * 9, [14.0] * 9, lat="north")), "its latitude, longitude are 'north', "),
    ((200, daily_response("1976-06-16", [0.5] * 9, [14.0] * 9, lat=151.5)), "its latitude, longitude are 151.5, -1.2,"),
    ((200, daily_response("1976-06-16", [0.5] * 5, [14.0] * 5)),
     "has no day of lead 5 (1976-06-21; its days run 1976-06-16..1976-06-20: fewer than asked, or null): the model's "
     "forecast horizon (training.forecast_leads) is 7 lead days, which a flow forecast issued on 1976-06-15 or "
     "1976-06-16 reads; nothing written"),
    ((200, b'{"latitude": 51.5, "longitude": -1.2, "daily": {"time": ["1976-', {"Content-Length": "400"}),
     "the answer broke off"),
    ((429, {"error": True, "reason": "Daily API request limit exceeded"}, {"Retry-After": "86400"}),
     "asks to wait 86400 s"),
])
def test_an_unusable_answer_is_one_line_and_leaves_the_earlier_files_as_they_were(pretrained_ckpt, tiny_data_dir,
                                                                                   tmp_path, capsys, answer, needle):
    from sca2lstm.cli.weather import main

    good = daily_response("1976-06-16", [0.5] * 9, [14.0] * 9)
    with loopback_server([(200, good)]) as (url, _):
        assert main(_fetch_argv(pretrained_ckpt, tiny_data_dir, tmp_path / "wx.csv", url)) == 0
    capsys.readouterr()
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    assert set(before) == {"wx.csv", "wx.raw.json"}
    # one retry allowed where the answer asks for a wait longer than the cap (it stops without waiting)
    retries = "1" if answer[0] == 429 else "0"
    with loopback_server([answer]) as (url, _):
        rc = main(_fetch_argv(pretrained_ckpt, tiny_data_dir, tmp_path / "wx.csv", url, "--retries", retries))
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 1 and len(err) == 1 and needle in err[0], err
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


def test_an_archive_answer_without_rain_is_one_line_and_leaves_the_earlier_archive_as_it_was(pretrained_ckpt,
                                                                                                tiny_data_dir, tmp_path,
                                                                                                capsys):
    """A previous-runs answer lacking a variable every flow forecast reads (a self-hosted instance without it),
    or with nulls only (no run for those days), is one line naming it, exit 1, and an earlier archive at --out
    stays (it was written over, exit 0, with a table every reforecast refuses)."""
    from sca2lstm.cli.weather import main

    good = previous_runs_response("2024-01-01", 6, 7, lambda var, n, t: 0.1 if var == "precipitation" else 5.0)
    argv = ["archive", "--basin", "32006", "--model", str(pretrained_ckpt), "--data_dir", str(tiny_data_dir),
            "--from", "2024-01-01", "--to", "2024-01-05", "--out", str(tmp_path / "a.csv"), "--retries", "0"]
    with loopback_server([(200, good)]) as (url, _):
        assert main([*argv, "--base_url", url]) == 0
    capsys.readouterr()
    before = {q.name: q.read_bytes() for q in tmp_path.iterdir()}
    dry = {**good, "hourly": {k: v for k, v in good["hourly"].items() if not k.startswith("precipitation")}}
    with loopback_server([(200, dry)]) as (url, _):
        assert main([*argv, "--base_url", url]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no 'hourly.precipitation_previous_dayN' in the answer, which a flow forecast needs; " \
                             "nothing written" in err[0], err
    assert {q.name: q.read_bytes() for q in tmp_path.iterdir()} == before
    # every value null (the weather model has no run for those days): no day at all, refused the same way
    null = {**good, "hourly": {k: v if k == "time" or k.startswith("precipitation") else [None] * len(v)
                               for k, v in good["hourly"].items()}}
    with loopback_server([(200, null)]) as (url, _):
        assert main([*argv, "--base_url", url]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no valid day from 2024-01-01 to 2024-01-05 has all 24 hours of rain and temperature" \
                             in err[0] and "nothing written" in err[0], err
    assert {q.name: q.read_bytes() for q in tmp_path.iterdir()} == before


def test_southern_and_western_coordinates_are_values_of_their_flags():
    """``--points -33.8,151.2`` (a southern gauge, the form docs/weather.md gives) is the flag's value, as
    ``--points=-33.8,151.2`` was (it was "expected one argument"); ``station import --lat -33.8 --lon -70.6``
    too; an unknown option is still one."""
    from sca2lstm.cli.station import build_parser as station_parser
    from sca2lstm.cli.weather import build_parser

    for action in ("fetch", "archive"):
        dates = ["--from", "2024-01-01", "--to", "2024-01-05"] if action == "archive" else []
        for given in ("-33.8,151.2", "-33.8,151.2;-34,150.9", "-.5,-70.6", "-33.8, 151.2; -34, 150.9"):
            a = build_parser().parse_args([action, "--basin", "32006", "--model", "m.pth", "--points", given, *dates])
            assert a.points == given
    assert parse_points("-33.8,151.2;-34,150.9") == [(-33.8, 151.2), (-34.0, 150.9)]
    a = station_parser().parse_args(["import", "f.csv", "--lat", "-33.8", "--lon", "-70.6", "--na_value", "-99.9"])
    assert (a.lat, a.lon, a.na_value) == (-33.8, -70.6, ["-99.9"])
    with pytest.raises(SystemExit):
        build_parser().parse_args(["fetch", "--basin", "32006", "--model", "m.pth", "--points", "--out", "x.csv"])


def test_an_out_folder_is_refused_before_any_request(pretrained_ckpt, tiny_data_dir, tmp_path, capsys):
    from sca2lstm.cli.weather import main

    with loopback_server([(200, daily_response("1976-06-16", [0.5] * 9, [14.0] * 9))]) as (url, seen):
        rc = main(_fetch_argv(pretrained_ckpt, tiny_data_dir, tmp_path, url))
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "is a folder; expected a file, e.g." in err[0] and seen == []
    assert list(tmp_path.iterdir()) == []


def test_a_folder_where_the_raw_answer_goes_is_one_line_and_nothing_is_written(pretrained_ckpt, tiny_data_dir,
                                                                                 tmp_path, capsys, monkeypatch):
    """A folder named as the raw answer beside --out (``wx.raw.json`` for ``wx.csv``) is refused before any
    request, as a folder at --out is (it was an IsADirectoryError traceback after the download); without
    --out, the default name's raw answer is checked before either file is written."""
    from sca2lstm.cli.weather import main

    (tmp_path / "wx.raw.json").mkdir()
    doc = daily_response("1976-06-16", [0.5] * 9, [14.0] * 9)
    archive = ["archive", "--basin", "32006", "--model", str(pretrained_ckpt), "--data_dir", str(tiny_data_dir),
               "--from", "2024-01-01", "--to", "2024-01-05", "--retries", "0"]
    for argv in (_fetch_argv(pretrained_ckpt, tiny_data_dir, tmp_path / "wx.csv", "URL"),
                 [*archive, "--out", str(tmp_path / "wx.csv"), "--base_url", "URL"]):
        with loopback_server([(200, doc)]) as (url, seen):
            rc = main([url if a == "URL" else a for a in argv])
        err = capsys.readouterr().err.strip().splitlines()
        assert rc == 2 and len(err) == 1 and seen == [], err
        assert f"--out {tmp_path / 'wx.csv'}: the raw answer is saved beside it as {tmp_path / 'wx.raw.json'}, " \
               "which is a folder" in err[0], err
        assert [p.name for p in tmp_path.iterdir()] == ["wx.raw.json"]
    monkeypatch.chdir(tmp_path)
    (tmp_path / "weather_32006_1976-06-16.raw.json").mkdir()
    argv = ["fetch", "--basin", "32006", "--model", str(pretrained_ckpt), "--data_dir", str(tiny_data_dir),
            "--retries", "0"]
    with loopback_server([(200, doc)]) as (url, _):
        rc = main([*argv, "--base_url", url])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "weather_32006_1976-06-16.raw.json, which is a folder" in err[0], err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["weather_32006_1976-06-16.raw.json", "wx.raw.json"]
    (tmp_path / "weather_archive_32006.raw.json").mkdir()
    with loopback_server([(200, doc)]) as (url, seen):
        rc = main([*archive, "--base_url", url])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and seen == [] and "weather_archive_32006.raw.json, which is a folder" in err[0]


@pytest.mark.parametrize("points,needle", [
    ("0,0", "--points 0,0 is 5828 km"),
    ("-1.85,52.39", "--points -1.85,52.39 is 7859 km"),   # the gauge's latitude and longitude swapped
    ("52.39,-1.85;0,0", "--points 52.39,-1.85;0,0 (their mean 26.20,-0.93) is 2914 km"),
])
def test_points_far_from_the_gauge_are_refused_before_any_request(pretrained_ckpt, tiny_data_dir, tmp_path, capsys,
                                                                  points, needle):
    """Points whose mean lies 150 km or more from the gauge (52.39, -1.85) are refused before any request in one
    line naming them, the distance and the gauge's position, exit 1, nothing written (the table was saved, exit
    0, and every flow forecast refused it); points near the gauge are fetched."""
    from sca2lstm.cli.weather import main

    doc = daily_response("1976-06-16", [0.5] * 9, [14.0] * 9, lat=52.4, lon=-1.9)
    with loopback_server([(200, doc)]) as (url, seen):
        rc = main(_fetch_argv(pretrained_ckpt, tiny_data_dir, tmp_path / "wx.csv", url, "--points", points))
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 1 and len(err) == 1 and seen == [], err
    assert needle in err[0] and "km from basin 32006's gauge (52.39,-1.85)" in err[0], err
    assert "km or more from the gauge" in err[0] and "nothing fetched" in err[0]
    assert ("swapped" in err[0]) == points.startswith("-1.85")
    assert list(tmp_path.iterdir()) == []
    with loopback_server([(200, doc)]) as (url, seen):
        assert main(_fetch_argv(pretrained_ckpt, tiny_data_dir, tmp_path / "wx.csv", url, "--points",
                                "52.39,-1.85;52.5,-1.6")) == 0
    assert len(seen) == 2


def test_weather_points_of_the_station_file_far_from_the_gauge_are_refused_and_a_gauge_without_a_place_is_not_checked(
        tiny_data_dir, tmp_path):
    """The station metadata's weather points go by the same rule as --points; a gauge of unknown position
    leaves the points as they are given."""
    import shutil

    from sca2lstm.data.station_meta import StationMeta, write_station_meta
    from sca2lstm.weather.fetch import station_location

    data = tmp_path / "camels"
    shutil.copytree(tiny_data_dir, data)
    write_station_meta(data, StationMeta("32006", weather={"source": "open-meteo", "points": [[-33.8, 151.2]]}))
    with pytest.raises(DataError, match=r"the weather points of .*32006\.json -33\.8,151\.2 is \d+ km from basin "
                                        r"32006's gauge \(52\.39,-1\.85\)"):
        station_location(data, "32006")
    with pytest.raises(DataError, match=r"^--points -33\.8,151\.2 is \d+ km from basin 10002's gauge"):
        station_location(data, "10002", [(-33.8, 151.2)])
    for f in (data / "attributes").glob("*.csv"):
        t = pd.read_csv(f, dtype=str)
        t.drop(columns=[c for c in ("gauge_lat", "gauge_lon") if c in t.columns]).to_csv(f, index=False)
    assert station_location(data, "32006").points == [(-33.8, 151.2)]
    assert station_location(data, "10002", [(0.0, 0.0)]).points == [(0.0, 0.0)]


def test_a_station_day_from_0800_asks_hourly_values_in_its_timezone(tmp_path):
    from sca2lstm.data.station_meta import StationMeta, write_station_meta
    from sca2lstm.weather.fetch import station_location

    write_station_meta(tmp_path, StationMeta("ZJ01", day_start="08:00", timezone="Asia/Shanghai",
                                             weather={"points": [[30.1, 120.2]]}))
    loc = station_location(tmp_path, "ZJ01")
    assert loc.hourly and loc.points == [(30.1, 120.2)] and loc.timezone == "Asia/Shanghai"
    doc = hourly_response("2024-05-01", 10, lambda t: 0.5, lambda t: 20.0)
    seen = []
    _, t = fetch_forecast(loc, 7, client_options={"transport": _mock([(200, doc)], seen), "retries": 0})
    q = dict(seen[0].url.params)
    assert q["hourly"] == "precipitation,temperature_2m,et0_fao_evapotranspiration"
    assert q["timezone"] == "Asia/Shanghai" and "daily" not in q
    # complete 08:00 days only, 24 x 0.5 mm each; the issue day is the response's first calendar day
    assert (t["precipitation"] == 12.0).all() and (t["issue_date"] == pd.Timestamp("2024-05-01")).all()
    assert t["valid_date"].iloc[0] == pd.Timestamp("2024-05-01") and t["lead_days"].iloc[0] == 0


def test_the_raw_file_is_the_answer_byte_for_byte_and_reads_as_the_table(tmp_path):
    """What a stub server on 127.0.0.1 sent (compact JSON, a non-ASCII unit, numbers as it wrote them) is
    what `<name>.raw.json` holds; two points' answers are a JSON list of both bodies as sent. Either file
    read back gives the same forecast."""
    from sca2lstm.weather.fetch import save_forecast
    from sca2lstm.weather.files import read_forecast_file

    bodies = []
    for lat, rain in ((51.50, 1.25), (51.60, 3.75)):
        doc = daily_response("2024-03-10", [rain, 0.10, 2.00] * 3, [5.0] * 9, et0=[0.4] * 9, lat=lat)
        bodies.append(json.dumps(doc, ensure_ascii=False, separators=(",", ":")).replace("2.0,", "2.00,").encode())
    assert "°C".encode() in bodies[0] and b"2.00," in bodies[0]
    with loopback_server([(200, bodies[0])]) as (url, _):
        docs, t = fetch_forecast(Location([(51.5, -1.2)]), 7, base_url=url, client_options={"retries": 0})
    csv, raw = save_forecast(t, docs, tmp_path / "one.csv")
    assert raw.read_bytes() == bodies[0]
    with loopback_server([(200, bodies[0]), (200, bodies[1])]) as (url, _):
        docs, t = fetch_forecast(Location([(51.5, -1.2), (51.6, -1.2)]), 7, base_url=url,
                                 client_options={"retries": 0})
    csv, raw = save_forecast(t, docs, tmp_path / "two.csv")
    assert raw.read_bytes() == b"[" + bodies[0] + b",\n" + bodies[1] + b"]\n"
    cols = ["issue_date", "lead_days", "valid_date", "member", "precipitation", "temperature", "et0"]
    from_csv, from_raw = read_forecast_file(csv).table[cols], read_forecast_file(raw).table[cols]
    pd.testing.assert_frame_equal(from_csv, from_raw, check_dtype=False)
    assert from_raw["precipitation"].iloc[0] == 2.5   # the mean of the two points' 1.25 and 3.75


@pytest.mark.parametrize("label", ["start", "end"])
def test_a_saved_hourly_answer_reads_as_the_table_fetched_from_it(tmp_path, label):
    """For a station day from 08:00 the answer's first station day (from 08:00 the day before) is incomplete:
    the raw answer read back must still be issued on the answer's first calendar day, as the CSV says, and
    give the same rows, so that `forecast --weather_forecast` reads the same forecast from either file."""
    from sca2lstm.weather.fetch import save_forecast
    from sca2lstm.weather.files import read_forecast_file

    doc = hourly_response("2024-05-01", 10, lambda t: 0.1 * t.hour, lambda t: 15.0 + t.day)
    loc = Location([(30.1, 120.2)], "08:00", label, "Asia/Shanghai")
    docs, t = fetch_forecast(loc, 7, client_options={"transport": _mock([(200, doc)]), "retries": 0})
    csv, raw = save_forecast(t, docs, tmp_path / "wx.csv")
    from_csv = read_forecast_file(csv)
    from_raw = read_forecast_file(raw, day_start="08:00", day_label=label)
    assert list(from_csv.issue_dates) == list(from_raw.issue_dates) == [pd.Timestamp("2024-05-01")]
    cols = ["issue_date", "lead_days", "valid_date", "member", "precipitation", "temperature"]
    pd.testing.assert_frame_equal(from_csv.table[cols], from_raw.table[cols], check_dtype=False)
    # the forecast of issue date 2024-04-29 cannot take it (issued after the morning it is made), from either
    for wf in (from_csv, from_raw):
        with pytest.raises(DataError, match="issued 2024-05-01, after the morning of 2024-04-30"):
            wf.members("2024-04-29", 7, ["precipitation", "temperature"])
        assert wf.age_note("2024-04-30") is None


def test_stated_units_are_converted_or_refused():
    """A response in inches and degrees Fahrenheit (``daily_units``; a previous-runs answer's ``hourly_units``)
    is read in mm and degC; a unit the model cannot take is one line naming it, never read as if it were mm
    or degC."""
    from openmeteo_fixtures import daily_response

    from sca2lstm.errors import WeatherSourceError
    from sca2lstm.weather.openmeteo import parse_response

    doc = daily_response("2024-06-01", [1.0, 0.5], [50.0, 68.0])
    doc["daily_units"] = {**doc["daily_units"], "precipitation_sum": "inch", "temperature_2m_mean": "°F"}
    t = parse_response(doc, ["precipitation", "temperature"])
    assert t["precipitation"].tolist() == pytest.approx([25.4, 12.7])
    assert t["temperature"].tolist() == pytest.approx([10.0, 20.0])
    doc["daily_units"]["temperature_2m_mean"] = "K"
    with pytest.raises(WeatherSourceError, match=r"'daily.temperature_2m_mean' is in 'K'; expected '°C' or '°F'"):
        parse_response(doc, ["precipitation", "temperature"])

    # the previous-runs API states its units the same way (``hourly_units``, one per ``_previous_dayN``)
    prev = previous_runs_response("2024-01-01", 3, 1, lambda var, n, t: 0.1 if var == "precipitation" else 50.0)
    prev["hourly_units"] = {"time": "iso8601", "precipitation_previous_day1": "inch",
                            "temperature_2m_previous_day1": "°F"}
    a = parse_previous_runs(prev, ["precipitation", "temperature"], 1)
    assert a["precipitation"].tolist() == pytest.approx([24 * 2.54] * len(a))
    assert a["temperature"].tolist() == pytest.approx([10.0] * len(a))
    prev["hourly_units"]["temperature_2m_previous_day1"] = "K"
    with pytest.raises(WeatherSourceError, match=r"'hourly.temperature_2m_previous_day1' is in 'K'; expected"):
        parse_previous_runs(prev, ["precipitation", "temperature"], 1)


@pytest.mark.parametrize("dates,needle", [(["notadate", "2024-02-01"], "--from: invalid value 'notadate': expected a "
                                                                       "date YYYY-MM-DD"),
                                          (["2024-02-01", "2024-01-01"], "--from 2024-02-01 is after --to 2024-01-01"),
                                          (["2020-01-01", "2020-02-01"], "archive starts on 2024-01-01")])
def test_archive_dates_are_checked_before_any_request(pretrained_ckpt, tiny_data_dir, tmp_path, capsys, dates,
                                                      needle):
    from sca2lstm.cli.weather import main

    rc = main(["archive", "--basin", "32006", "--model", str(pretrained_ckpt), "--data_dir", str(tiny_data_dir),
               "--from", dates[0], "--to", dates[1], "--out", str(tmp_path / "a.csv"), "--base_url",
               "http://127.0.0.1:9"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and needle in err[0], err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("flag,value", [("--timeout", "nan"), ("--timeout", "inf"), ("--timeout", "0"),
                                        ("--retries", "-1"), ("--retries", "two")])
def test_fetch_timeout_and_retries_are_checked_in_one_line(pretrained_ckpt, tiny_data_dir, tmp_path, capsys, flag,
                                                            value):
    from sca2lstm.cli.weather import main

    argv = _fetch_argv(pretrained_ckpt, tiny_data_dir, tmp_path / "wx.csv", "http://127.0.0.1:9")
    i = argv.index(flag)
    rc = main([*argv[:i], flag, value, *argv[i + 2:]])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and f"argument {flag}: invalid value '{value}'" in err[0], err
    assert list(tmp_path.iterdir()) == []


def test_fetch_names_an_unknown_basin_and_a_base_url_that_is_not_http(pretrained_ckpt, tiny_data_dir, tmp_path,
                                                                      capsys):
    from sca2lstm.cli.weather import main

    out = tmp_path / "wx.csv"
    argv = _fetch_argv(pretrained_ckpt, tiny_data_dir, out, "http://127.0.0.1:9")
    rc = main([*argv[:2], "99999", *argv[3:]])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 1 and len(err) == 1 and "unknown basin '99999'" in err[0] and "available: " in err[0]
    rc = main(_fetch_argv(pretrained_ckpt, tiny_data_dir, out, "ftp://example.org"))
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "--base_url 'ftp://example.org': expected an http:// or https://" in err[0]
    assert list(tmp_path.iterdir()) == []


def test_a_day_null_in_every_variable_is_named_like_any_other_gap():
    """A day Open-Meteo answered null for in every variable (a model whose range ends early) has no row in the
    table; the fetch names it as it names a single null (it said nothing, and wrote a table without the day)."""
    first, n = "1976-06-16", 9
    hole = [0.5] * 7 + [None] * 2
    det = daily_response(first, hole, [14.0 if v is not None else None for v in hole],
                         et0=[0.3 if v is not None else None for v in hole])
    ens = ensemble_response(first, [0.5] * n, [[1.0] * n, hole], [14.0] * n)
    ens["daily"]["temperature_2m_mean_member02"] = [14.0 if v is not None else None for v in hole]
    for doc, needle in ((det, "Open-Meteo's answer gives nothing for 1976-06-23 (lead 7) (it ends before that day, "
                              "or has it null in every variable)"),
                        (ens, "Open-Meteo answered null for 1 of 3 members (member 2: every variable null on "
                              "1976-06-23 (lead 7); members 2)")):
        with loopback_server([(200, doc)]) as (url, _):
            _, table = fetch_forecast(Location([(51.5, -1.2)]), 7, base_url=url, client_options={"retries": 0})
        assert 7 not in table[table["member"] == table["member"].max()]["lead_days"].tolist()
        assert null_note(table, 7).startswith(needle)
    complete = daily_response(first, [0.5] * n, [14.0] * n)
    with loopback_server([(200, complete)]) as (url, _):
        _, table = fetch_forecast(Location([(51.5, -1.2)]), 7, base_url=url, client_options={"retries": 0})
    assert null_note(table, 7) is None


def test_the_fetch_note_says_a_null_value_and_a_day_the_answer_lacks_each_in_its_own_words():
    """A value answered null is named as a null of that variable; a lead day the answer stops short of is no null
    Open-Meteo gave, and is named as a day it gives nothing for."""
    first = "1976-06-16"
    holed = daily_response(first, [0.5] * 9, [14.0] * 9)
    holed["daily"]["precipitation_sum"][3] = None
    short = daily_response(first, [0.5] * 7, [14.0] * 7)   # leads 0..6: a forecast issued the day before reads it
    notes = []
    for doc in (holed, short):
        with loopback_server([(200, doc)]) as (url, _):
            _, table = fetch_forecast(Location([(51.5, -1.2)]), 7, base_url=url, client_options={"retries": 0})
        notes.append(null_note(table, 7))
    assert notes == [
        "Open-Meteo answered null for precipitation on 1976-06-19 (lead 3): a flow forecast needing that value "
        "cannot use this forecast",
        "Open-Meteo's answer gives nothing for 1976-06-23 (lead 7) (it ends before that day, or has it null in every "
        "variable): a flow forecast needing that day cannot use this forecast"]


def test_an_answer_is_kept_where_it_gives_a_flow_forecast_its_lead_days_and_refused_where_it_does_not():
    """Seven lead days need the answer's leads 0..6 (a flow forecast issued the day before the answer's issue
    day) or 1..7 (issued on it): an answer of 7 days (0..6), or one without its issue day, is kept; one of 6
    days, or one with a day that is null throughout in the middle, is refused (every forecast would refuse it)."""
    def fetch(doc):
        return fetch_forecast(Location([(51.5, -1.2)]), 7, client_options={"transport": _mock([(200, doc)]),
                                                                           "retries": 0})[1]

    assert fetch(daily_response("1976-06-16", [0.5] * 7, [14.0] * 7))["lead_days"].tolist() == list(range(7))
    no_issue_day = daily_response("1976-06-16", [None] + [0.5] * 8, [None] + [14.0] * 8)
    assert fetch(no_issue_day)["lead_days"].tolist() == list(range(1, 9))
    with pytest.raises(WeatherSourceError, match=r"^Open-Meteo response has no day of lead 6 \(1976-06-22; its days "
                                                 r"run 1976-06-16\.\.1976-06-21: fewer than asked, or null\): 7 lead "
                                                 r"days asked, .*; nothing written$"):
        fetch(daily_response("1976-06-16", [0.5] * 6, [14.0] * 6))
    hole = [0.5, 0.5, 0.5, None, 0.5, 0.5, 0.5, 0.5, 0.5]
    with pytest.raises(WeatherSourceError, match=r"no day of lead 3 \(1976-06-19; its days run 1976-06-16\.\."
                                                 r"1976-06-24"):
        fetch(daily_response("1976-06-16", hole, [14.0 if v else None for v in hole]))


def test_a_member_open_meteo_answered_null_for_is_left_out_with_a_note(pretrained_ckpt, tiny_data_dir, tmp_path,
                                                                       capsys):
    """Open-Meteo answers null for a member without data. The fetch says so and writes the gap as a gap; a
    flow forecast (from the CSV or the raw answer alike) leaves that member out with a note and is the
    forecast of the other members, never reading the gap as 0 mm. A single forecast with a gap on a lead day
    is refused naming the day, and a point's null is not averaged away by the other points."""
    from sca2lstm.checkpoint import load_model
    from sca2lstm.cli.weather import main
    from sca2lstm.evaluation.operational import issue_forecast
    from sca2lstm.weather.files import read_forecast_file
    from sca2lstm.weather.openmeteo import average_points

    wet, dry = [40.0] * 9, [0.0] * 9
    holed = [40.0, 40.0, 40.0, None, 40.0, 40.0, 40.0, 40.0, 40.0]
    doc = ensemble_response("1976-06-16", dry, [wet, holed, dry], [14.0] * 9)
    with loopback_server([(200, doc)]) as (url, _):
        rc = main(_fetch_argv(pretrained_ckpt, tiny_data_dir, tmp_path / "wx.csv", url, "--ensemble"))
    out = capsys.readouterr().out
    assert rc == 0 and "Open-Meteo answered null for 1 of 4 members (member 2: precipitation null on 1976-06-19 " \
                       "(lead 3); members 2)" in out
    assert pd.read_csv(tmp_path / "wx.csv").set_index(["member", "lead_days"]).loc[(2, 3), "precipitation"] != 0.0
    bundle = load_model(pretrained_ckpt)
    kept = read_forecast_file(_save_json(tmp_path / "kept.json", ensemble_response("1976-06-16", dry, [wet, dry],
                                                                                    [14.0] * 9)))
    expect = issue_forecast(bundle, "32006", data_dir=tiny_data_dir, issue_date="1976-06-15", leads=7,
                            weather_forecast=kept).table
    cols = ["median", "q05", "q95"]
    for name in ("wx.csv", "wx.raw.json"):
        wf = read_forecast_file(tmp_path / name)
        assert wf.covered_days(["precipitation", "temperature"]) == (pd.Timestamp("1976-06-16"),
                                                                    pd.Timestamp("1976-06-24"))
        fc = issue_forecast(bundle, "32006", data_dir=tiny_data_dir, issue_date="1976-06-15", leads=7,
                            weather_forecast=wf)
        assert (fc.table["weather_members"] == 3).all() and fc.data["weather_forecast"]["members"] == 3
        assert any("1 of its 4 members left out" in n for n in fc.data["notes"])
        assert np.allclose(fc.table[cols], expect[cols])
    # half the members incomplete still stands; more than half does not
    half = read_forecast_file(_save_json(tmp_path / "half.json", ensemble_response("1976-06-16", dry,
                                                                                   [holed, holed, wet], [14.0] * 9)))
    assert len(half.members("1976-06-15", 7, ["precipitation"])) == 2
    most = read_forecast_file(_save_json(tmp_path / "most.json", ensemble_response("1976-06-16", holed,
                                                                                   [holed, holed, wet], [14.0] * 9)))
    with pytest.raises(DataError, match=r"member 0 has no value of 'precipitation' on 1976-06-19"):
        most.members("1976-06-15", 7, ["precipitation"])
    one = read_forecast_file(_save_json(tmp_path / "one.json", daily_response("1976-06-16", holed, [14.0] * 9)))
    with pytest.raises(DataError, match=r"member 0 has no value of 'precipitation' on 1976-06-19"):
        issue_forecast(bundle, "32006", data_dir=tiny_data_dir, issue_date="1976-06-15", leads=7, weather_forecast=one)
    # two points: where one has no value, the average has none either
    a = parse_response(daily_response("1976-06-16", wet, [14.0] * 9), ["precipitation", "temperature"])
    b = parse_response(daily_response("1976-06-16", holed, [16.0] * 9), ["precipitation", "temperature"])
    avg = average_points([a, b]).set_index("date")
    assert np.isnan(avg.loc["1976-06-19", "precipitation"]) and avg.loc["1976-06-19", "temperature"] == 15.0
    assert avg.loc["1976-06-18", "precipitation"] == 40.0


def _save_json(path, doc):
    path.write_text(json.dumps(doc), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def fifteen_lead_ckpt(tiny_data_dir, tmp_path_factory):
    """A tiny model trained for 15 lead days: more than the forecast API's 14, fewer than the ensemble's 33."""
    from conftest import make_tiny_config

    from sca2lstm.training.pretrain import pretrain

    out = tmp_path_factory.mktemp("leads15") / "sca2lstm.pth"
    pretrain(make_tiny_config(tiny_data_dir, training={"epochs": 1, "forecast_leads": 15}), out,
             data_dir=tiny_data_dir, progress=False)
    return out


def test_more_lead_days_than_the_api_gives_are_refused_before_any_request(fifteen_lead_ckpt, tiny_data_dir, tmp_path,
                                                                          capsys):
    """Open-Meteo answers forecast_days up to 16 (the forecast API; leads + 2 are asked), 35 (ensemble) and
    _previous_day up to 7: a model's horizon beyond that is one line naming both numbers, exit 1, no request
    and nothing written, where Open-Meteo would answer HTTP 400; within it the request goes out."""
    from sca2lstm.cli.weather import main

    doc = ensemble_response("1976-06-16", [0.5] * 17, [[1.0] * 17], [14.0] * 17, lat=51.5)
    with loopback_server([(200, doc)]) as (url, seen):
        rc = main(_fetch_argv(fifteen_lead_ckpt, tiny_data_dir, tmp_path / "wx.csv", url))
        err = capsys.readouterr().err.strip().splitlines()
        assert rc == 1 and len(err) == 1, err
        assert ("the model's forecast horizon (training.forecast_leads) is 15 lead days, but Open-Meteo's forecast "
                "API gives at most 14 (forecast_days 17" in err[0]), err
        rc = main(["archive", "--basin", "32006", "--model", str(fifteen_lead_ckpt), "--data_dir", str(tiny_data_dir),
                   "--from", "2024-01-01", "--to", "2024-01-31", "--out", str(tmp_path / "a.csv"), "--base_url", url])
        err = capsys.readouterr().err.strip().splitlines()
        assert rc == 1 and len(err) == 1, err
        assert ("the model's forecast horizon (training.forecast_leads) is 15 lead days, but Open-Meteo's "
                "previous-runs API gives at most 7 (_previous_day1 .. _previous_day15 where it has up to "
                "_previous_day7)" in err[0]), err
        assert seen == [] and list(tmp_path.iterdir()) == []
        # the ensemble API gives 33 lead days: the same model's 15 are asked (17 days) and saved
        assert main(_fetch_argv(fifteen_lead_ckpt, tiny_data_dir, tmp_path / "wx.csv", url, "--ensemble")) == 0
    assert len(seen) == 1 and "forecast_days=17" in seen[0][0]
    assert pd.read_csv(tmp_path / "wx.csv")["lead_days"].max() == 16
    # in code, the limits are exact and the line names the leads asked
    ok = daily_response("2024-03-10", [1.0] * 16, [5.0] * 16)
    seen = []
    fetch_forecast(Location([(51.5, -1.2)]), 14, client_options={"transport": _mock([(200, ok)], seen), "retries": 0})
    assert dict(seen[0].url.params)["forecast_days"] == "16"
    with pytest.raises(WeatherSourceError, match=r"^34 lead days asked, but Open-Meteo's ensemble API gives at most "
                                                 r"33 \(forecast_days 36 .* up to 35\); nothing fetched$"):
        fetch_forecast(Location([(51.5, -1.2)]), 34, ensemble=True, client_options={"transport": _mock([(200, ok)])})
    from sca2lstm.weather.fetch import fetch_archive
    with pytest.raises(WeatherSourceError, match=r"^8 lead days asked, but Open-Meteo's previous-runs API gives at "
                                                 r"most 7"):
        fetch_archive(Location([(51.5, -1.2)]), "2024-01-01", "2024-01-31", 8,
                      client_options={"transport": _mock([(200, ok)])})


def test_timeout_bounds_each_whole_attempt_against_a_server_that_trickles(pretrained_ckpt, tiny_data_dir, tmp_path,
                                                                          capsys):
    """A stub server on 127.0.0.1 sends a byte every 0.3 s for 10 s before its answer: every read gets a byte
    in time, so a timeout per read never fires. --timeout 1 bounds each whole attempt: two attempts end
    after about 1 s each (the backoff between them recorded, not slept), and the command gives up in one
    line, exit 1, nothing written, long before the 10 s the answer would take."""
    import time

    from sca2lstm.cli.weather import main

    doc = daily_response("1976-06-16", [0.5] * 9, [14.0] * 9)
    waits = []
    with trickling_server(doc, interval=0.3, seconds=10) as (url, seen):
        t0 = time.monotonic()
        with pytest.raises(WeatherSourceError, match=r"unreachable after 2 attempts: no complete answer within 1 s"):
            OpenMeteoClient(base_url=url, timeout=1, retries=1, backoff=0.5, sleep=waits.append).get({})
        took = time.monotonic() - t0
    assert len(seen) == 2 and waits == [0.5]
    assert 1.9 <= took < 3.5, took
    with trickling_server(doc, interval=0.3, seconds=10) as (url, seen):
        t0 = time.monotonic()
        rc = main([*_fetch_argv(pretrained_ckpt, tiny_data_dir, tmp_path / "wx.csv", url)[:-4],
                   "--retries", "0", "--timeout", "1"])
        took = time.monotonic() - t0
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 1 and len(err) == 1 and "unreachable" in err[0] and "no complete answer within 1 s" in err[0], err
    assert len(seen) == 1 and took < 5, took      # loading the model, and the 1 s attempt
    assert list(tmp_path.iterdir()) == []


def test_the_client_works_where_an_event_loop_already_runs():
    # A notebook (or the service) calls it from inside a running asyncio loop: it must not start a loop itself.
    import asyncio

    async def inside_a_loop():
        return OpenMeteoClient(transport=_mock([(200, {"ok": 1})]), retries=0).get({"a": 1})

    assert asyncio.run(inside_a_loop()) == {"ok": 1}


def test_a_fetch_whose_table_fails_to_write_leaves_the_earlier_answer_and_table_together(tmp_path):
    """The table and the raw answer beside it are one forecast (either is read as it): where the second file's
    write fails (a full disk; here a file size limit, which fails a write half-way as one does), neither earlier
    file is replaced, rather than this answer left beside the earlier table."""
    import resource

    from sca2lstm.weather.fetch import save_forecast

    out, raw = tmp_path / "wx.csv", tmp_path / "wx.raw.json"
    before = {out: b"issue_date,lead_days\n2024-03-10,1\n", raw: b'{"earlier": true}\n'}
    for p, data in before.items():
        p.write_bytes(data)
    table = pd.DataFrame({"issue_date": "2024-03-11", "lead_days": np.arange(1, 500)})   # some 9 kB of CSV
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (1024, hard))  # the answer fits, the table not (Python ignores SIGXFSZ)
    try:
        with pytest.raises(OSError):
            save_forecast(table, [{"later": True}], out)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    assert {p: p.read_bytes() for p in tmp_path.iterdir()} == before    # and no temporary file left
    save_forecast(table, [{"later": True}], out)                         # with room, both are replaced
    assert pd.read_csv(out)["lead_days"].iloc[-1] == 499 and json.loads(raw.read_text()) == {"later": True}


def test_a_station_outside_the_models_data_folder_is_refused_saying_to_name_its_folder(pretrained_ckpt, tmp_path,
                                                                                       capsys):
    """The guide's `weather archive` is for a station of one's own, imported into a folder other than the
    model's: without --data_dir the one line says to add it, as `forecast` does, before any request."""
    from sca2lstm.cli.weather import main

    for action in (["fetch"], ["archive", "--from", "2024-01-01", "--to", "2024-01-31"]):
        rc = main([*action, "--basin", "99999", "--model", str(pretrained_ckpt), "--out", str(tmp_path / "a.csv"),
                   "--base_url", "http://127.0.0.1:9", "--retries", "0"])
        err = capsys.readouterr().err.strip().splitlines()
        assert rc == 1 and len(err) == 1 and "unknown basin '99999'" in err[0]
        assert "add --data_dir with the folder it was imported into" in err[0]
    assert list(tmp_path.iterdir()) == []


def test_the_archive_command_says_how_many_issue_dates_have_every_lead(pretrained_ckpt, tiny_data_dir, tmp_path,
                                                                        capsys):
    """Valid days 2024-01-01..10 at leads 1..7 come from issue dates 2023-12-25..2024-01-09 (16), of which only
    2023-12-31..2024-01-03 (4) have all seven: the summary says so, as the table written holds them."""
    from sca2lstm.cli.weather import main

    doc = previous_runs_response("2024-01-01", 11, 7, lambda var, n, t: 0.1 if var == "precipitation" else 5.0)
    out = tmp_path / "a.csv"
    with loopback_server([(200, doc)]) as (url, _):
        assert main(["archive", "--basin", "32006", "--model", str(pretrained_ckpt), "--data_dir", str(tiny_data_dir),
                     "--from", "2024-01-01", "--to", "2024-01-10", "--out", str(out), "--retries", "0",
                     "--base_url", url]) == 0
    said = capsys.readouterr().out
    t = pd.read_csv(out)
    full = t.groupby("issue_date")["lead_days"].nunique()
    assert t["issue_date"].nunique() == 16 and (full == 7).sum() == 4
    assert "16 issue dates, 4 of them with every lead 1..7 (from 2023-12-31 to 2024-01-03)" in said, said
    assert "(hourly, station day from 00:00)" in said, said   # the archive is read hourly, never as 'daily'


def test_weather_archive_shows_a_bar_over_its_requests_on_a_terminal_only(pretrained_ckpt, tiny_data_dir, tmp_path,
                                                                         capsys, monkeypatch):
    """Each point's request is years of hourly values (seconds to a minute, minutes of retries where the network
    fails), with nothing else said until the end: a bar on a terminal, none in a pipe or with --quiet."""
    import io
    import sys

    from sca2lstm.cli.weather import main

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    good = previous_runs_response("2024-01-01", 6, 7, lambda var, n, t: 0.1 if var == "precipitation" else 5.0)
    argv = ["archive", "--basin", "32006", "--model", str(pretrained_ckpt), "--data_dir", str(tiny_data_dir),
            "--from", "2024-01-01", "--to", "2024-01-05", "--out", str(tmp_path / "a.csv"), "--retries", "0"]
    written = {}
    for case, stream, quiet in (("terminal", Terminal(), []), ("quiet", Terminal(), ["--quiet"]),
                                ("pipe", io.StringIO(), [])):
        monkeypatch.setattr(sys, "stderr", stream)
        with loopback_server([(200, good)]) as (url, _):
            assert main([*argv, *quiet, "--base_url", url]) == 0
        monkeypatch.undo()
        written[case] = stream.getvalue()
    assert "Open-Meteo previous-runs" in written["terminal"] and "/1 " in written["terminal"], written
    assert written["quiet"] == "" and written["pipe"] == "", written
