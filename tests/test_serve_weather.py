"""Weather forecasts in the service, with the tiny trained model: a posted forecast (Open-Meteo JSON,
deterministic or ensemble, or a long table with members) is stored, read by the station's next forecasts
while it covers their lead days, named in the answer, and refused in one line when unusable; the daily
issue fetches a station's forecast from a local loopback Open-Meteo stub and issues without one when the
fetch fails."""

from __future__ import annotations

import datetime as dt
import io
import json
import logging
import shutil
import sqlite3

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from archive_fixtures import drizzly_archive
from openmeteo_fixtures import daily_response, ensemble_response, hourly_response, loopback_server
from serve_helpers import forecaster, older_database

from sca2lstm.checkpoint import load_model
from sca2lstm.data import reader
from sca2lstm.data.station_meta import StationMeta, write_station_meta
from sca2lstm.evaluation.reforecast import warned_forecast
from sca2lstm.evaluation.warn import lead_warnings
from sca2lstm.serve.app import create_app, table_rows
from sca2lstm.serve.daily import Daily
from sca2lstm.serve.weather import FetchSettings
from sca2lstm.weather.files import from_long_table, parse_forecast

TOKEN = "wx-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
LAST = "1977-12-31"          # the stations' last day with observed flow: the default issue date
FIRST = "1978-01-01"         # a forecast fetched the morning after it starts (lead 0) on this day
WET, DRY, TEMP = [40.0] * 9, [0.0] * 9, [6.0] * 9


@pytest.fixture(scope="module")
def data(tiny_data_dir, tmp_path_factory):
    d = tmp_path_factory.mktemp("wx") / "data"
    shutil.copytree(tiny_data_dir, d)
    return d


@pytest.fixture(scope="module")
def live(pretrained_ckpt, data):
    with forecaster(pretrained_ckpt, data) as f:
        yield f


@pytest.fixture(scope="module")
def bundle(pretrained_ckpt):
    return load_model(pretrained_ckpt)


def _json(doc) -> bytes:
    return json.dumps(doc).encode()


def _expected(bundle, pretrained_ckpt, data, body: bytes, kind: str, leads: int) -> list[dict]:
    """The rows ``sca2lstm forecast --weather_forecast`` issues for the stations' last observed day."""
    wf = parse_forecast(body, kind, source="expected", plain=True)
    fc, warnings, _ = warned_forecast(bundle, "32006", data_dir=data, issue_date=LAST, leads=leads,
                                      timeseries=reader.read_timeseries(data, "32006"), weather_forecast=wf,
                                      model_path=pretrained_ckpt)
    return table_rows(fc.table, *lead_warnings(fc.table, warnings.levels))


def _stored(db) -> int:
    con = sqlite3.connect(db)
    try:
        return con.execute("SELECT COUNT(*) FROM weather_forecasts").fetchone()[0]
    finally:
        con.close()


def test_a_posted_forecast_is_issued_with_and_replaces_the_cached_forecast(live, bundle, pretrained_ckpt, data,
                                                                           tmp_path):
    db = tmp_path / "db.sqlite"
    with TestClient(create_app(data, db, live, token=TOKEN)) as c:
        get = lambda **p: c.get("/stations/32006/forecast", params={"leads": 7, **p}, headers=AUTH).json()  # noqa: E731
        before = get()
        assert before["issue_date"] == LAST and before["setting"] == "issue-time" and before["weather"] is None
        wet = _json(daily_response(FIRST, WET, TEMP))
        r = c.post("/stations/32006/weather", content=wet, headers={**AUTH, "Content-Type": "application/json"})
        assert r.status_code == 200, r.text
        posted = r.json()
        assert (posted["issue_date"], posted["first_valid"], posted["last_valid"]) == (FIRST, FIRST, "1978-01-09")
        assert (posted["members"], posted["origin"], posted["station"]) == (1, "post", "32006")
        a = get()
        assert a["cached"] is False and a["id"] != before["id"]
        assert a["setting"] == "issue-time+weather-forecast" and a["weather"]["id"] == posted["id"]
        assert a["weather"]["members"] == 1
        assert a["forecast"] == _expected(bundle, pretrained_ckpt, data, wet, "json", 7)
        assert get()["cached"] is True
        # A newer forecast for the same days (dry) is read next: the cached wet answer is not served again.
        dry = _json(daily_response(FIRST, DRY, TEMP))
        r = c.post("/stations/32006/weather", content=dry, headers={**AUTH, "Content-Type": "application/json"})
        b = get()
        assert b["cached"] is False and b["weather"]["id"] == r.json()["id"]
        assert b["forecast"] == _expected(bundle, pretrained_ckpt, data, dry, "json", 7)
        wet_med = [x["median"] for x in a["forecast"]]
        dry_med = [x["median"] for x in b["forecast"]]
        assert sum(wet_med) > sum(dry_med) and all(w > d for w, d in zip(wet_med[2:], dry_med[2:]))
        # An ensemble as a long table with a member column: every member runs, the flow is their mixture.
        rows = [{"valid_date": str(d.date()), "member": m, "precipitation": p, "temperature": 6.0}
                for m, p in ((0, 0.0), (1, 40.0), (2, 10.0)) for d in pd.date_range(FIRST, periods=9)]
        table = pd.DataFrame(rows).to_csv(index=False).encode()
        r = c.post("/stations/32006/weather", content=table, params={"issue_date": FIRST},
                   headers={**AUTH, "Content-Type": "text/csv"})
        assert r.status_code == 200, r.text
        assert r.json()["members"] == 3 and r.json()["issue_date"] == FIRST
        e = get()
        assert e["weather"]["members"] == 3 and e["setting"] == "issue-time+weather-forecast"
        assert e["forecast"] == _expected(bundle, pretrained_ckpt, data, table, "csv", 7)
        assert e["forecast"][6]["q95"] - e["forecast"][6]["q05"] > b["forecast"][6]["q95"] - b["forecast"][6]["q05"]
        # An Open-Meteo ensemble answer: the control and each _memberNN are members.
        ens = _json(ensemble_response(FIRST, DRY, [WET, DRY, WET], TEMP))
        r = c.post("/stations/32006/weather", content=ens, headers={**AUTH, "Content-Type": "application/json"})
        assert r.status_code == 200, r.text
        e = get()
        assert e["weather"]["members"] == 4 and e["weather"]["id"] == r.json()["id"]
        assert e["forecast"] == _expected(bundle, pretrained_ckpt, data, ens, "json", 7)
        listed = c.get("/stations/32006/weather").json()["weather_forecasts"]
        assert [w["members"] for w in listed] == [4, 3, 1, 1]
        history = c.get("/stations/32006/forecasts").json()["forecasts"]
        assert {h["weather_id"] for h in history} == {0} | {w["id"] for w in listed}
        # An issue date whose lead days the stored forecasts do not cover is issued without one.
        old = get(issue_date="1977-06-30")
        assert old["weather"] is None and old["setting"] == "issue-time"
        # Fewer leads asked for: the same run, with the same weather forecast.
        assert get(leads=3)["forecast"] == e["forecast"][:3]
    # After a restart the stored forecast is still read, and the stored answer found.
    with TestClient(create_app(data, db, live, token=TOKEN)) as c:
        again = c.get("/stations/32006/forecast", params={"leads": 7}, headers=AUTH).json()
        assert again["id"] == e["id"] and again["weather"]["id"] == listed[0]["id"]


def test_an_ensemble_is_stored_with_the_members_a_forecast_reads(live, bundle, pretrained_ckpt, data, tmp_path):
    """An Open-Meteo ensemble with a member it answered null for on a lead day: the forecast leaves that member
    out (the others are complete), and the stored weather forecast, its listing and the forecast's answer count
    the 3 members it reads, not the 4 of the file; the forecast's notes say one was left out, in the words
    of ``sca2lstm forecast``'s note."""
    holed = [40.0, 40.0, 40.0, None, 40.0, 40.0, 40.0, 40.0, 40.0]
    ens = _json(ensemble_response(FIRST, DRY, [WET, holed, WET], TEMP))
    db = tmp_path / "db.sqlite"
    with TestClient(create_app(data, db, live, token=TOKEN)) as c:
        r = c.post("/stations/32006/weather", content=ens, headers={**AUTH, "Content-Type": "application/json"})
        assert r.status_code == 200, r.text
        assert r.json()["members"] == 3
        assert [w["members"] for w in c.get("/stations/32006/weather").json()["weather_forecasts"]] == [3]
        fc = c.get("/stations/32006/forecast", params={"leads": 7}, headers=AUTH).json()
    assert fc["weather"]["id"] == r.json()["id"] and fc["weather"]["members"] == 3
    assert fc["forecast"] == _expected(bundle, pretrained_ckpt, data, ens, "json", 7)
    cli, _, _ = warned_forecast(bundle, "32006", data_dir=data, issue_date=LAST, leads=7,
                                timeseries=reader.read_timeseries(data, "32006"),
                                weather_forecast=parse_forecast(ens, "json", source="the file", plain=True),
                                model_path=pretrained_ckpt)
    said = [n.removeprefix("the file: ") for n in cli.data["notes"] if "members left out" in n]
    assert said == ["1 of its 4 members left out, incomplete on the lead days; the forecast is the mixture of the "
                    "other 3"]
    source = f"weather forecast {r.json()['id']} of station 32006 (issued {FIRST})"
    assert [n for n in fc["notes"] if "members left out" in n] == [f"{source}: {said[0]}"]
    con = sqlite3.connect(db)
    try:
        assert con.execute("SELECT members FROM weather_forecasts").fetchall() == [(3,)]
    finally:
        con.close()


def test_a_forecast_reading_an_older_weather_forecast_says_so_as_sca2lstm_forecast_does(live, bundle, pretrained_ckpt,
                                                                                         data, tmp_path):
    """The newest stored weather forecast that covers the lead days may have been issued days before the issue date:
    its lead days are later, less skilful leads of it. `sca2lstm forecast` says so; the service's answer says it too,
    and no note twice."""
    body = _json(daily_response("1977-12-28", [2.0] * 12, [6.0] * 12))
    with TestClient(create_app(data, tmp_path / "db.sqlite", live, token=TOKEN)) as c:
        r = c.post("/stations/32006/weather", content=body, headers={**AUTH, "Content-Type": "application/json"})
        assert r.status_code == 200, r.text
        fc = c.get("/stations/32006/forecast", params={"leads": 7}, headers=AUTH).json()
    assert fc["weather"]["id"] == r.json()["id"] and fc["issue_date"] == LAST
    source = f"weather forecast {r.json()['id']} of station 32006 (issued 1977-12-28)"
    assert [n for n in fc["notes"] if "before the issue date" in n] == [
        f"{source} was issued 1977-12-28, 3 day(s) before the issue date {LAST}: its lead days are days 4.. of that "
        "forecast, less skilful than the intervals assume; use the forecast of the issue date where there is one"]
    assert len(set(fc["notes"])) == len(fc["notes"])
    assert fc["forecast"] == _expected(bundle, pretrained_ckpt, data, body, "json", 7)


def test_a_reader_who_prefers_chinese_reads_the_weather_forecast_a_note_names_in_chinese(live, data, tmp_path):
    """The note of a forecast that reads an older stored weather forecast names that forecast: a reader whose browser
    prefers zh reads the whole note in Chinese, the forecast's number, station and issue day with it, from the
    forecast computed and the one cached; a reader without a preference reads it in English, as before."""
    body = _json(daily_response("1977-12-28", [2.0] * 12, [6.0] * 12))
    zh = {"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.5"}
    with TestClient(create_app(data, tmp_path / "db.sqlite", live, token=TOKEN)) as c:
        r = c.post("/stations/32006/weather", content=body, headers={**AUTH, "Content-Type": "application/json"})
        assert r.status_code == 200, r.text
        first = c.get("/stations/32006/forecast", params={"leads": 7}, headers={**AUTH, **zh}).json()
        cached = c.get("/stations/32006/forecast", params={"leads": 7}, headers=zh).json()
        plain = c.get("/stations/32006/forecast", params={"leads": 7}).json()
    n = r.json()["id"]
    assert [first["cached"], cached["cached"]] == [False, True]
    chinese = (f"测站 32006 第 {n} 号天气预报（1977-12-28 发布） 发布于 1977-12-28，比发布日 {LAST} 早 3 天：本次预见期用的是该"
               "天气预报第 4 天及以后的数据，精度低于预报区间的假定；如有发布日当天的天气预报，请改用")
    for got in (first, cached):
        assert [x for x in got["notes"] if "发布于" in x] == [chinese], got["notes"]
    assert [x for x in plain["notes"] if "before the issue date" in x] == [
        f"weather forecast {n} of station 32006 (issued 1977-12-28) was issued 1977-12-28, 3 day(s) before the issue "
        f"date {LAST}: its lead days are days 4.. of that forecast, less skilful than the intervals assume; use the "
        "forecast of the issue date where there is one"]


def test_an_hourly_answer_is_read_by_the_stations_day_rule(live, bundle, pretrained_ckpt, data, tmp_path):
    """A station whose day runs from 08:00: the hours of a posted hourly answer are summed (rain) and
    averaged (temperature) over its days, as ``forecast --weather_forecast`` reads them."""
    write_station_meta(data, StationMeta("10003", day_start="08:00", timezone="Asia/Shanghai"))
    try:
        # 1 mm an hour from 08:00 on the first day only: that station day gets 24 mm, no other day any.
        doc = hourly_response(FIRST, 10, lambda t: 1.0 if pd.Timestamp(FIRST) + pd.Timedelta(hours=8) < t <=
                              pd.Timestamp(FIRST) + pd.Timedelta(hours=32) else 0.0, lambda t: 5.0)
        from sca2lstm.data import reader
        doc["latitude"], doc["longitude"] = (reader.basin_attribute(data, "10003", k) for k in ("gauge_lat", "gauge_lon"))
        body = _json(doc)
        with TestClient(create_app(data, tmp_path / "db.sqlite", live, token=TOKEN)) as c:
            r = c.post("/stations/10003/weather", content=body, headers=AUTH)
            assert r.status_code == 200, r.text
            assert (r.json()["first_valid"], r.json()["last_valid"]) == (FIRST, "1978-01-09")
            # issued 1978-01-01, valid to 01-09: the issue dates 1977-12-31 .. 1978-01-02 have their 7 lead days in it
            assert r.json()["serves_issue_dates"] == [LAST, "1978-01-02"]
            fc = c.get("/stations/10003/forecast", params={"leads": 7}, headers=AUTH).json()
        wf = parse_forecast(body, "json", source="expected", day_start="08:00")
        assert wf.table.set_index("valid_date")["precipitation"].loc[FIRST:"1978-01-02"].tolist() == [24.0, 0.0]
        exp, warnings, _ = warned_forecast(bundle, "10003", data_dir=data, issue_date=LAST, leads=7,
                                           timeseries=reader.read_timeseries(data, "10003"), weather_forecast=wf,
                                           model_path=pretrained_ckpt)
        assert fc["weather"]["members"] == 1
        assert fc["forecast"] == table_rows(exp.table, *lead_warnings(exp.table, warnings.levels))
    finally:
        write_station_meta(data, StationMeta("10003"))


@pytest.mark.parametrize("body,ctype,params,needle", [
    (b'{"daily": {"time": ["1978-01-01"', "application/json", {}, "not valid JSON"),
    (_json({"latitude": 51.5, "hourly_units": {}}), "application/json", {}, "'daily'"),
    (_json(daily_response(FIRST, WET[:3], TEMP[:3])), "application/json", {}, "lead days"),
    (b"valid_date,member,temperature\n1978-01-01,0,5\n", "text/csv", {}, "precipitation"),
    (b"date,precipitation,temperature\n1978-01-01,1,x\n", "text/csv", {}, "temperature"),
    (pd.DataFrame({"issue_date": ["1978-01-01"] * 9 + ["1978-01-02"] * 9,
                   "valid_date": [str(d.date()) for d in pd.date_range(FIRST, periods=9)] * 2,
                   "precipitation": 1.0, "temperature": 5.0}).to_csv(index=False).encode(), "text/csv", {}, "archive"),
    (_json(daily_response(FIRST, WET, TEMP)), "application/json", {"issue_date": "1977-12-20"}, "issue_date"),
    (_json(daily_response("2099-10-02", WET, TEMP)), "application/json", {}, "issued 2099-10-02, which is in the future"),
    (_json(daily_response(FIRST, WET, TEMP)), "text/csv", {}, "the body is JSON but its Content-Type is text/csv"),
    (_json(daily_response(FIRST, WET, TEMP, lat=47.9, lon=8.7)), "application/json", {}, "km from station 32006's gauge"),
    (b"date,precipitation,temperature\n" + b"".join(f"{d.date()},1,5\n".encode() for d in
                                                      pd.date_range("1978-01-02", periods=8)),
     "text/csv", {"issue_date": "1977-06-30"}, "a forecast issued on 1977-06-30 starts on 1977-07-01"),
    (b"date,precipitation,temperature\n" + b"".join(f"{d.date()},{'' if i == 2 else 1},5\n".encode() for i, d in
                                                      enumerate(pd.date_range("1978-01-01", periods=8))),
     "text/csv", {}, "1978-01-03 lacks precipitation"),
    # an infinite value is no weather: refused, not fed to the model (it made lead 3 on an empty forecast)
    (b"date,precipitation,temperature\n" + b"".join(f"{d.date()},{'inf' if i == 2 else 1},5\n".encode() for i, d in
                                                      enumerate(pd.date_range("1978-01-01", periods=9))),
     "text/csv", {}, "precipitation inf on 1978-01-03 is outside 0..2000"),
    (_json(daily_response(FIRST, WET, TEMP[:2] + [float("-inf")] + TEMP[3:])), "application/json", {},
     "temperature -inf on 1978-01-03 is outside -60..60"),
])
def test_an_unusable_weather_forecast_is_refused_in_one_line_and_nothing_stored(live, data, tmp_path, body, ctype,
                                                                                params, needle):
    db = tmp_path / "db.sqlite"
    with TestClient(create_app(data, db, live, token=TOKEN)) as c:
        r = c.post("/stations/32006/weather", content=body, params=params, headers={**AUTH, "Content-Type": ctype})
        assert r.status_code == 422, r.text
        detail = r.json()["detail"]
        assert isinstance(detail, str) and needle in detail and "\n" not in detail
        assert c.get("/stations/32006/weather").json()["weather_forecasts"] == []
    assert _stored(db) == 0


def test_an_open_meteo_answer_sent_as_text_plain_is_read_as_json(live, data, tmp_path):
    """text/plain says nothing of the layout (a browser's fetch() sends a string body so): a body that is JSON is
    read as the Open-Meteo answer it is, not as a CSV whose header is the JSON cut at its commas."""
    body = _json(daily_response(FIRST, WET, TEMP))
    with TestClient(create_app(data, tmp_path / "db.sqlite", live, token=TOKEN)) as c:
        r = c.post("/stations/32006/weather", content=body, headers={**AUTH, "Content-Type": "text/plain; charset=utf-8"})
        assert r.status_code == 200, r.text
        assert (r.json()["issue_date"], r.json()["first_valid"], r.json()["members"]) == (FIRST, FIRST, 1)
        # a CSV sent as text/plain is still a CSV
        table = b"date,precipitation,temperature\n" + b"".join(f"{d.date()},1,5\n".encode() for d in
                                                                pd.date_range(FIRST, periods=9))
        r = c.post("/stations/32006/weather", content=table, headers={**AUTH, "Content-Type": "text/plain"})
        assert r.status_code == 200 and r.json()["issue_date"] == LAST, r.text
    assert _stored(tmp_path / "db.sqlite") == 2


def test_posting_a_weather_forecast_needs_the_token_and_a_known_station(live, data, tmp_path):
    body = _json(daily_response(FIRST, WET, TEMP))
    with TestClient(create_app(data, tmp_path / "db.sqlite", live, token=TOKEN)) as c:
        assert c.post("/stations/32006/weather", content=body).status_code == 401
        assert c.post("/stations/32006/weather", content=body,
                      headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert c.post("/stations/99999/weather", content=body, headers=AUTH).status_code == 404
        post = c.get("/openapi.json").json()["paths"]["/stations/{station}/weather"]["post"]
        assert set(post["requestBody"]["content"]) == {"application/json", "text/csv"}  # documented for clients
    assert _stored(tmp_path / "db.sqlite") == 0


def test_the_daily_issue_fetches_a_configured_station_and_issues_without_it_when_the_fetch_fails(
        live, data, tmp_path, caplog):
    write_station_meta(data, StationMeta("32006", weather={"source": "open-meteo", "points": [[51.5, -1.2]]}))
    clock = [dt.datetime(2026, 12, 7, 8, 0, tzinfo=dt.timezone.utc)]
    db = tmp_path / "db.sqlite"
    try:
        with loopback_server([(503, {"error": True, "reason": "down"})]) as (down, seen_down):
            daily = Daily(weather=FetchSettings(base_url=down, retries=0, timeout=5.0), now=lambda: clock[0])
            with TestClient(create_app(data, db, live, token=TOKEN, daily=daily)) as c, \
                    caplog.at_level(logging.WARNING, logger="sca2lstm"):
                out = c.post("/daily_issue", headers=AUTH).json()
        assert out["failed"] == [] and out["stations"] == 3 and len(seen_down) == 1
        line = out["weather"]["32006"]
        assert line.startswith("failed: ") and "503" in line and line.endswith("issued without a weather forecast")
        assert set(out["weather"]) == {"32006"}  # the other stations name no source: nothing fetched
        warned = [r.getMessage() for r in caplog.records if "32006" in r.getMessage() and "weather" in r.getMessage()]
        assert len(warned) == 1 and "could not be fetched" in warned[0]
        doc = daily_response(FIRST, WET, TEMP)
        with loopback_server([(200, doc)]) as (url, seen):
            clock[0] += dt.timedelta(days=1)
            daily = Daily(weather=FetchSettings(base_url=url, retries=0, timeout=5.0), now=lambda: clock[0])
            with TestClient(create_app(data, db, live, token=TOKEN, daily=daily)) as c:
                out = c.post("/daily_issue", headers=AUTH).json()
                stored = c.get("/stations/32006/weather").json()["weather_forecasts"]
                fc = c.get("/stations/32006/forecast", params={"leads": 7}).json()
        assert len(seen) == 1 and seen[0][0].startswith("/v1/forecast?") and "forecast_days=9" in seen[0][0]
        assert seen[0][1].startswith("sca2lstm/")
        assert [(w["origin"], w["issue_date"], w["members"]) for w in stored] == [("fetch", FIRST, 1)]
        assert out["weather"]["32006"] == (f"fetched: weather forecast {stored[0]['id']}, issued {FIRST}, 1 member(s); "
                                           f"issued with weather forecast {stored[0]['id']}")
        assert fc["weather"]["id"] == stored[0]["id"] and fc["setting"] == "issue-time+weather-forecast"
        con = sqlite3.connect(db)
        used = con.execute("SELECT w.day, f.weather_id, f.setting FROM issued_warnings i JOIN daily_issues w ON "
                           "w.id = i.issue_id JOIN forecasts f ON f.id = i.forecast_id WHERE i.station = '32006' "
                           "ORDER BY w.id").fetchall()
        raw = con.execute("SELECT raw FROM weather_forecasts").fetchone()[0]
        con.close()
        assert used == [("2026-12-07", 0, "issue-time"), ("2026-12-08", stored[0]["id"], "issue-time+weather-forecast")]
        assert json.loads(raw) == doc  # the answer as it came, for the record
    finally:
        write_station_meta(data, StationMeta("32006"))


def test_a_database_without_weather_keys_keeps_its_forecasts(tmp_path):
    db = tmp_path / "old.sqlite"
    store = older_database(db, (
        "CREATE TABLE forecasts (id INTEGER PRIMARY KEY AUTOINCREMENT, station TEXT NOT NULL, issue_date TEXT NOT "
        "NULL, leads INTEGER NOT NULL, data_version INTEGER NOT NULL, data_fingerprint TEXT NOT NULL, model_sha256 "
        "TEXT NOT NULL, setting TEXT NOT NULL, table_json TEXT NOT NULL, weights_json TEXT NOT NULL, created_at TEXT "
        "NOT NULL, origin TEXT NOT NULL DEFAULT 'request', levels_json TEXT NOT NULL DEFAULT '{}', UNIQUE (station, "
        "issue_date, leads, data_version, data_fingerprint, model_sha256));"
        "INSERT INTO forecasts VALUES (3, '32006', '1977-01-01', 3, 0, 'fp', 'm', 'issue-time', '[]', '{}', 'then', "
        "'daily', '{\"alert\": {}}');"))
    [row] = store.forecasts("32006")
    assert (row["id"], row["origin"], row["levels"], row["weather_id"]) == (3, "daily", {"alert": {}}, 0)
    assert store.find_forecast("32006", "1977-01-01", 3, 0, "fp", "m")["id"] == 3
    assert store.find_forecast("32006", "1977-01-01", 3, 0, "fp", "m", 5) is None  # with a weather forecast: new
    assert store.add_forecast("32006", "1977-01-01", 3, 0, "fp", "m", "w", [], {}, weather_id=5)["id"] == 4


@pytest.fixture(scope="module")
def data_with_archive(bundle, tiny_data_dir, tmp_path_factory):
    """The tiny data with an archive of drizzly forecasts for station 32006 (every day of 1971-1977)."""
    d = tmp_path_factory.mktemp("wx_archive") / "data"
    shutil.copytree(tiny_data_dir, d)
    (d / "weather_archive").mkdir()
    drizzly_archive(bundle, d, "32006", pd.date_range("1971-01-01", LAST)).to_csv(
        d / "weather_archive" / "32006.csv", index=False)
    return d


def test_a_posted_forecast_of_a_station_with_an_archive_is_mapped_as_sca2lstm_forecast_maps_it(
        bundle, pretrained_ckpt, data_with_archive, tmp_path):
    """The service forecasts from the recent part of a station's record, which holds none of its training years: its
    weather forecast's rain is still mapped by the station's whole record and archive, so the answer is the one
    ``sca2lstm forecast`` gives (``auto``: the archive is drizzly), not the forecast of the rain as posted."""
    body = _json(daily_response(FIRST, [1.5, 0.0, 8.0, 20.0, 1.2, 0.0, 3.0, 0.0, 0.0], TEMP))
    wf = parse_forecast(body, "json", source="expected", plain=True)
    ts = reader.read_timeseries(data_with_archive, "32006")
    run = lambda mapping: warned_forecast(  # noqa: E731
        bundle, "32006", data_dir=data_with_archive, issue_date=LAST, leads=7, timeseries=ts, weather_forecast=wf,
        model_path=pretrained_ckpt, precip_mapping=mapping)
    mapped, warnings, _ = run("auto")
    assert mapped.data["weather_forecast"]["precip_mapping"]["mapped"] is True
    as_posted = run("none")[0]
    with forecaster(pretrained_ckpt, data_with_archive) as f, \
            TestClient(create_app(data_with_archive, tmp_path / "db.sqlite", f, token=TOKEN)) as c:
        r = c.post("/stations/32006/weather", content=body, headers={**AUTH, "Content-Type": "application/json"})
        assert r.status_code == 200, r.text
        got = c.get("/stations/32006/forecast", params={"leads": 7}, headers=AUTH).json()
    assert got["setting"] == "issue-time+weather-forecast"
    assert got["forecast"] == table_rows(mapped.table, *lead_warnings(mapped.table, warnings.levels))
    # the answer says so, as `sca2lstm forecast` prints it
    assert any("auto-mapped per lead" in n and "32006.csv: its forecasts issued before 1977-12-31" in n
               for n in got["notes"]), got["notes"]
    assert [x["median"] for x in got["forecast"]] != pytest.approx(list(as_posted.table["median"]), rel=1e-3)


def test_a_reader_who_prefers_chinese_reads_the_rain_mapping_note_in_chinese_and_others_in_english(
        pretrained_ckpt, data_with_archive, tmp_path):
    """The note that a posted forecast's rain was mapped to the station's observed climate (of its training days
    1971-1974) is said in Chinese, with the same days and archive, to a reader whose browser prefers zh, from the
    forecast stored (read back from the database) and the one cached; a reader without a preference reads it in
    English, as before."""
    body = _json(daily_response(FIRST, [1.5, 0.0, 8.0, 20.0, 1.2, 0.0, 3.0, 0.0, 0.0], TEMP))
    zh = {"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.5"}
    english = ("Precipitation of the weather forecast auto-mapped per lead to the observed rain of "
               f"1971-01-01..1974-12-31, ranked among weather archive weather_archive/32006.csv: its forecasts issued "
               f"before {LAST}")
    chinese = ("天气预报的降水已按 1971-01-01..1974-12-31 的实测降水分布逐个预见期作分位数映射（auto），排位样本为天气预报存档 "
               f"weather_archive/32006.csv 中 {LAST} 之前发布的预报")
    with forecaster(pretrained_ckpt, data_with_archive) as f, \
            TestClient(create_app(data_with_archive, tmp_path / "db.sqlite", f, token=TOKEN)) as c:
        r = c.post("/stations/32006/weather", content=body, headers={**AUTH, "Content-Type": "application/json"})
        assert r.status_code == 200, r.text
        stored = c.get("/stations/32006/forecast", params={"leads": 7}, headers={**AUTH, **zh}).json()
        cached = c.get("/stations/32006/forecast", params={"leads": 7}, headers=zh).json()
        plain = c.get("/stations/32006/forecast", params={"leads": 7}).json()
    assert (stored["cached"], cached["cached"], plain["cached"]) == (False, True, True)
    for got in (stored, cached):
        assert chinese in got["notes"] and english not in got["notes"], got["notes"]
    assert english in plain["notes"], plain["notes"]


def test_a_station_archive_the_service_cannot_read_answers_503_naming_it_and_forecasts_without_weather(
        pretrained_ckpt, tiny_data_dir, tmp_path):
    """A station's own archive that is not an archive is the station's state, not the request's fault: a forecast
    that would rank its posted weather among it gets 503 naming the file; without weather it is issued."""
    d = tmp_path / "data"
    shutil.copytree(tiny_data_dir, d)
    (d / "weather_archive").mkdir()
    (d / "weather_archive" / "32006.csv").write_text("date,precipitation\n1977-05-02,1.0\n")
    with forecaster(pretrained_ckpt, d) as f, TestClient(create_app(d, tmp_path / "db.sqlite", f, token=TOKEN)) as c:
        get = lambda: c.get("/stations/32006/forecast", params={"leads": 7}, headers=AUTH)  # noqa: E731
        assert get().status_code == 200
        body = _json(daily_response(FIRST, WET, TEMP))
        assert c.post("/stations/32006/weather", content=body,
                      headers={**AUTH, "Content-Type": "application/json"}).status_code == 200
        r = get()
        # named by its file's name; the server's folders stay in its log
        assert r.status_code == 503 and "weather archive 32006.csv: " in r.json()["detail"], r.text
        assert str(tmp_path) not in r.text


def test_a_station_archive_is_kept_by_the_worker_under_its_file_and_an_edited_one_is_read_again(
        bundle, pretrained_ckpt, data_with_archive, tmp_path):
    """A station's archive of forecasts (ten years of an ensemble are some 16 MB) was sent to the model worker with
    every forecast, and its forecast samples sorted again each time. The worker now keeps it under its file (path,
    modification time, size) with the samples of each issue date: after the station's setup a forecast is sent the
    file's name only. Its forecasts equal those of `sca2lstm forecast`, which reads and ranks the archive afresh; a
    worker that no longer keeps the archive is sent it again; an edited archive file is read again."""
    import os
    import pickle

    from sca2lstm.evaluation import rain_mapping

    d = tmp_path / "data"
    shutil.copytree(data_with_archive, d)
    path = d / "weather_archive" / "32006.csv"
    days = ["1977-12-28", "1977-12-29", "1977-12-30", LAST]
    bodies = {t0: _json(daily_response(str((pd.Timestamp(t0) + pd.Timedelta(days=1)).date()),
                                       [1.5 + i, 0.0, 8.0, 20.0 - i, 1.2, 0.0, 3.0, 0.0, 0.0], TEMP))
              for i, t0 in enumerate(days)}

    def expected(t0):  # as `sca2lstm forecast --weather_forecast` issues it, the archive read and ranked afresh
        rain_mapping._ARCHIVES.clear()
        fc, warnings, _ = warned_forecast(bundle, "32006", data_dir=d, issue_date=t0, leads=7,
                                          timeseries=reader.read_timeseries(d, "32006"),
                                          weather_forecast=parse_forecast(bodies[t0], "json", source="expected", plain=True),
                                          model_path=pretrained_ckpt)
        assert fc.data["weather_forecast"]["precip_mapping"]["mapped"] is True
        return table_rows(fc.table, *lead_warnings(fc.table, warnings.levels))

    want = {t0: expected(t0) for t0 in days}
    rain_mapping._ARCHIVES.clear()
    with forecaster(pretrained_ckpt, d) as f, TestClient(create_app(d, tmp_path / "db.sqlite", f, token=TOKEN)) as c:
        sent, submit = [], f._pool.submit

        def recording(fn, *args):  # what each forecast sends to the worker: (its setup, whether it is worked out)
            sent.append((args[7], args[8]))
            return submit(fn, *args)

        f._pool.submit = recording
        for t0 in days:
            r = c.post("/stations/32006/weather", content=bodies[t0], headers={**AUTH, "Content-Type": "application/json"})
            assert r.status_code == 200, r.text

        def forecast(t0):
            r = c.get("/stations/32006/forecast", params={"issue_date": t0, "leads": 7}, headers=AUTH)
            assert r.status_code == 200 and r.json()["cached"] is False, r.text
            return r.json()["forecast"]

        for t0 in days[:3]:
            assert forecast(t0) == want[t0], t0
        assert [fit for _, fit in sent] == [True, False, False]
        full = len(pickle.dumps(f._setups[next(iter(f._setups))]))
        for setup, _ in sent[1:]:  # the setup without the archive: its file's name
            assert setup.rain.archive is None and setup.rain.archive_file[0] == str(path)
            assert len(pickle.dumps(setup)) < full / 5
        rain_mapping._ARCHIVES.clear()  # a worker that does not keep it (another read it, or it was pushed out)
        assert forecast(LAST) == want[LAST]
        assert [(s.rain.archive is None, fit) for s, fit in sent[3:]] == [(True, False), (False, False)]

        table = pd.read_csv(path)
        table["precipitation"] = table["precipitation"] * 3.0  # no longer drizzly: not mapped
        table.to_csv(path, index=False)
        os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))
        fc, warnings, _ = warned_forecast(bundle, "32006", data_dir=d, issue_date=LAST, leads=7,
                                          timeseries=reader.read_timeseries(d, "32006"),
                                          weather_forecast=parse_forecast(bodies[LAST], "json", source="e", plain=True),
                                          model_path=pretrained_ckpt)
        edited = table_rows(fc.table, *lead_warnings(fc.table, warnings.levels))
        assert edited != want[LAST]
        assert forecast(LAST) == edited
    assert sent[-1][1] is True  # the edited file changes the station's data: its setup is worked out again
    assert (str(path), path.stat().st_mtime_ns, path.stat().st_size) in rain_mapping._ARCHIVES


def _saved_as_archive(text: str, folder, bundle, data):
    """``text`` saved as the station's archive ``folder/weather_archive/32006.csv`` and read back by the project's
    archive reader, as reforecasts and training read it (the model's PET added at the gauge's latitude)."""
    from sca2lstm.weather.archive import ARCHIVE_DIR, archive_path, read_archive
    from sca2lstm.weather.files import gauge_latitude

    (folder / ARCHIVE_DIR).mkdir()
    (folder / ARCHIVE_DIR / "32006.csv").write_text(text)
    return read_archive(archive_path(folder, "32006"), bundle[1], gauge_latitude(data, "32006"))


def _runs(wf, t0, leads=7, inputs=("precipitation", "temperature")) -> list:
    """The members a forecast of issue date ``t0`` reads from ``wf``: (member number, its table)."""
    return [(m.attrs["member"], m[["date", *inputs]]) for m in wf.members(t0, leads, list(inputs))]


def test_the_stored_weather_forecasts_are_the_stations_archive_read_back_with_the_same_values(
        live, bundle, pretrained_ckpt, data, tmp_path):
    """Two forecasts posted for issue date 1977-12-30 (a long table with its own issue date, then a plain table given
    it) and one the daily issue fetched from an Open-Meteo stub on the morning after 1977-12-31 (its first day, lead
    0 of the answer, is 1978-01-01): the archive holds one run per issue date, each as stored, its day t0 + k lead k,
    and the later posted forecast counts for 1977-12-30. Saved as DIR/weather_archive/<id>.csv and read by the
    archive reader, each issue date gives the members and values the service's forecast of that date read, and a
    reforecast of it through the archive the service's forecast."""
    days = [str(d.date()) for d in pd.date_range("1977-12-31", periods=9)]
    first = pd.DataFrame({"issue_date": "1977-12-30", "lead_days": range(1, 10), "valid_date": days,
                          "precipitation": [0.5 * k for k in range(9)], "temperature": 4.25})
    later = pd.DataFrame({"date": days, "precipitation": [12.0, 3.5, 0.0, 0.0, 7.75, 1.0, 0.0, 2.0, 0.0],
                          "temperature": [5.0 + 0.5 * k for k in range(9)]})
    fetched = daily_response(FIRST, [0.0, 2.5, 31.0, 9.0, 0.0, 0.0, 1.25, 0.0, 4.0], TEMP)
    write_station_meta(data, StationMeta("32006", weather={"source": "open-meteo", "points": [[51.5, -1.2]]}))
    clock = [dt.datetime(2026, 12, 8, 8, 0, tzinfo=dt.timezone.utc)]
    try:
        with loopback_server([(200, fetched)]) as (url, seen), \
                TestClient(create_app(data, tmp_path / "db.sqlite", live, token=TOKEN, daily=Daily(
                    weather=FetchSettings(base_url=url, retries=0, timeout=5.0), now=lambda: clock[0]))) as c:
            ids = []
            for table, params in ((first, {}), (later, {"issue_date": "1977-12-30"})):
                r = c.post("/stations/32006/weather", content=table.to_csv(index=False).encode(), params=params,
                           headers={**AUTH, "Content-Type": "text/csv"})
                assert r.status_code == 200 and r.json()["serves_issue_dates"][0] == "1977-12-30", r.text
                ids.append(r.json()["id"])
            assert c.post("/daily_issue", headers=AUTH).status_code == 200 and len(seen) == 1
            stored = c.get("/stations/32006/weather").json()["weather_forecasts"]
            assert [(w["origin"], w["issue_date"]) for w in stored] == [("fetch", FIRST), ("post", "1977-12-30"),
                                                                      ("post", "1977-12-30")]
            ids.append(stored[0]["id"])
            r = c.get("/stations/32006/weather_archive.csv")  # no token: read as issued.csv is
            issued = {t0: c.get("/stations/32006/forecast", params={"issue_date": t0, "leads": 7}).json()
                      for t0 in ("1977-12-30", LAST)}
            svc = c.app.state.service
            read = {t0: svc.weather.for_issue("32006", pd.Timestamp(t0), 7) for t0 in ("1977-12-30", LAST)}
            tables = {i: svc.store.weather_table(i) for i in ids}
    finally:
        write_station_meta(data, StationMeta("32006"))
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv"), r.text
    assert r.text.splitlines()[0] == "issue_date,lead_days,valid_date,member,precipitation,temperature"
    archive = _saved_as_archive(r.text, tmp_path, bundle, data)
    assert list(archive.issue_dates.strftime("%Y-%m-%d")) == ["1977-12-30", LAST]
    # the later of the two posted for 1977-12-30 counts, as the service's forecast of that date read it
    assert [read[t0][0]["id"] for t0 in ("1977-12-30", LAST)] == [ids[1], ids[2]]
    for t0, wid in (("1977-12-30", ids[1]), (LAST, ids[2])):
        as_stored = from_long_table(pd.read_csv(io.StringIO(tables[wid])), "stored").table  # as the service reads it
        as_stored = as_stored[as_stored["valid_date"] > pd.Timestamp(t0)]   # Open-Meteo's lead 0 is t0 + 1: none left
        assert len(as_stored) == 9
        got = archive.table[archive.table["issue_date"] == pd.Timestamp(t0)]
        assert list((got["valid_date"] - got["issue_date"]).dt.days) == list(range(1, 10))
        cols = ["valid_date", "member", "precipitation", "temperature"]
        pd.testing.assert_frame_equal(got[cols].reset_index(drop=True), as_stored[cols].reset_index(drop=True))
        runs, served = _runs(archive, t0), _runs(read[t0][1], t0)
        assert [m for m, _ in runs] == [m for m, _ in served] == [0]
        pd.testing.assert_frame_equal(runs[0][1], served[0][1])
    # a reforecast of each date through the archive, as `forecast --weather_forecast ARCHIVE` issues it, is the
    # service's forecast of that date (a day's shift of the leads would give it other rain)
    for t0 in ("1977-12-30", LAST):
        fc, warnings, _ = warned_forecast(bundle, "32006", data_dir=data, issue_date=t0, leads=7,
                                          timeseries=reader.read_timeseries(data, "32006"), weather_forecast=archive,
                                          model_path=pretrained_ckpt)
        assert issued[t0]["setting"] == "issue-time+weather-forecast"
        assert issued[t0]["forecast"] == table_rows(fc.table, *lead_warnings(fc.table, warnings.levels)), t0
    assert list(archive.table.loc[archive.table["issue_date"] == pd.Timestamp(LAST), "precipitation"]) == \
        fetched["daily"]["precipitation_sum"]
    assert list(archive.table.loc[archive.table["issue_date"] == "1977-12-30", "temperature"]) == \
        list(later["temperature"])


def test_an_ensembles_archive_keeps_its_members_and_leaves_out_the_one_the_service_left_out(
        live, bundle, data, tmp_path):
    """An Open-Meteo ensemble (control and 3 members) with a member answered null on a lead day: the archive holds
    all 4 members, numbered as stored, the incomplete one with its gap; read back, the forecast of the issue date
    reads the same 3 complete members with the same values as the service's forecast read."""
    holed = [40.0, 40.0, 40.0, None, 40.0, 40.0, 40.0, 40.0, 40.0]
    doc = ensemble_response(FIRST, [0.5] * 9, [WET, holed, [2.0 + k for k in range(9)]], TEMP)
    with TestClient(create_app(data, tmp_path / "db.sqlite", live, token=TOKEN)) as c:
        r = c.post("/stations/32006/weather", content=_json(doc), headers={**AUTH, "Content-Type": "application/json"})
        assert r.status_code == 200 and r.json()["members"] == 3, r.text
        got = c.get("/stations/32006/weather_archive.csv", headers=AUTH)
        served = c.app.state.service.weather.for_issue("32006", pd.Timestamp(LAST), 7)[1]
    assert got.status_code == 200, got.text
    archive = _saved_as_archive(got.text, tmp_path, bundle, data)
    t = archive.table
    assert list(archive.issue_dates.strftime("%Y-%m-%d")) == [LAST]
    assert t.groupby("member").size().to_dict() == {0: 9, 1: 9, 2: 9, 3: 9}
    assert t.loc[t["member"] == 2, "precipitation"].isna().tolist() == [v is None for v in holed]
    assert list(t.loc[t["member"] == 3, "precipitation"]) == [2.0 + k for k in range(9)]
    runs, read = _runs(archive, LAST), _runs(served, LAST)
    assert [m for m, _ in runs] == [m for m, _ in read] == [0, 1, 3]
    for (_, a), (_, b) in zip(runs, read):
        pd.testing.assert_frame_equal(a, b)


def test_a_forecast_whose_first_day_is_incomplete_is_archived_as_the_run_of_that_day_without_its_lead_0(
        live, bundle, data, tmp_path):
    """An Open-Meteo answer whose first day (1978-01-01) has no temperature first serves the issue date 1978-01-01
    (its lead days start on 01-02): the archive holds it as that date's run, leads 1..8, and no row of lead 0, which
    no forecast of the date reads."""
    temp = [None] + TEMP[1:]
    doc = daily_response(FIRST, [float(k) for k in range(9)], temp)
    with TestClient(create_app(data, tmp_path / "db.sqlite", live, token=TOKEN)) as c:
        r = c.post("/stations/32006/weather", content=_json(doc), headers={**AUTH, "Content-Type": "application/json"})
        assert r.status_code == 200 and r.json()["serves_issue_dates"][0] == FIRST, r.text
        got = c.get("/stations/32006/weather_archive.csv", headers=AUTH)
    assert got.status_code == 200, got.text
    t = _saved_as_archive(got.text, tmp_path, bundle, data).table
    assert set(t["issue_date"]) == {pd.Timestamp(FIRST)}
    assert list((t["valid_date"] - t["issue_date"]).dt.days) == list(range(1, 9))
    assert list(t["precipitation"]) == [float(k) for k in range(1, 9)]


def test_the_weather_archive_of_an_unknown_station_or_one_without_stored_forecasts_is_404_in_one_line(
        live, data, tmp_path):
    zh = {"Accept-Language": "zh-CN,zh;q=0.9"}
    with TestClient(create_app(data, tmp_path / "db.sqlite", live, token=TOKEN)) as c:
        unknown = c.get("/stations/99999/weather_archive.csv")
        r = c.post("/stations/32006/weather", content=_json(daily_response(FIRST, WET, TEMP)),
                   headers={**AUTH, "Content-Type": "application/json"})
        assert r.status_code == 200, r.text
        none = c.get("/stations/10002/weather_archive.csv")   # another station's forecast is not its own
        none_zh = c.get("/stations/10002/weather_archive.csv", headers=zh)
        assert c.get("/stations/32006/weather_archive.csv", headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert c.get("/stations/32006/weather_archive.csv").status_code == 200
    assert unknown.status_code == 404 and "unknown station '99999'" in unknown.json()["detail"]
    assert none.status_code == 404 and none.json()["detail"] == (
        "weather_archive: no weather forecast is stored for station 10002; post one (POST /stations/10002/weather) "
        "or name a weather source in its metadata file for the daily issue to fetch")
    assert none_zh.status_code == 404 and none_zh.json()["detail"].startswith("天气预报存档：测站 10002 没有已存储的天气预报")


def test_a_posted_forecast_is_combined_with_the_station_archives_earlier_runs_as_sca2lstm_forecast_combines_it(
        bundle, pretrained_ckpt, tiny_data_dir, tmp_path):
    """The service forecasts from the recent part of a station's record: the posted forecast (issued the morning after
    the issue date) is still combined with the runs of the station's archive issued on the days before it, weighted
    by the station's whole record, so the answer is the one ``sca2lstm forecast`` gives; its notes say so, in Chinese
    to a reader who prefers it."""
    from archive_fixtures import erring_runs

    d = tmp_path / "data"
    shutil.copytree(tiny_data_dir, d)
    (d / "weather_archive").mkdir()
    erring_runs(bundle, d, "32006", pd.date_range("1975-01-01", LAST)).to_csv(d / "weather_archive" / "32006.csv",
                                                                              index=False)
    body = _json(daily_response(FIRST, [1.5, 0.0, 8.0, 20.0, 1.2, 0.0, 3.0, 0.0, 0.0], TEMP))
    wf = parse_forecast(body, "json", source="expected", plain=True)
    ts = reader.read_timeseries(d, "32006")
    run = lambda lags: warned_forecast(  # noqa: E731
        bundle, "32006", data_dir=d, issue_date=LAST, leads=7, timeseries=ts, weather_forecast=wf,
        model_path=pretrained_ckpt, weather_lags=lags)
    combined, warnings, _ = run("auto")
    assert combined.data["weather_forecast"]["lagged"]["issue_dates"] == 1
    as_given = run("none")[0]
    zh = {"Accept-Language": "zh-CN,zh;q=0.9"}
    with forecaster(pretrained_ckpt, d) as f, TestClient(create_app(d, tmp_path / "db.sqlite", f, token=TOKEN)) as c:
        r = c.post("/stations/32006/weather", content=body, headers={**AUTH, "Content-Type": "application/json"})
        assert r.status_code == 200, r.text
        got = c.get("/stations/32006/forecast", params={"leads": 7}, headers=AUTH).json()
        chinese = c.get("/stations/32006/forecast", params={"leads": 7}, headers=zh).json()
    assert got["forecast"] == table_rows(combined.table, *lead_warnings(combined.table, warnings.levels))
    assert [x["median"] for x in got["forecast"]] != pytest.approx(list(as_given.table["median"]), rel=1e-3)
    said = [n for n in got["notes"] if "combined with the same day's forecasts of weather archive" in n]
    assert len(said) == 1 and "Precipitation of the weather forecast, as the run of 1977-12-31" in said[0], got["notes"]
    assert any("天气预报作为 1977-12-31 的那次预报，其降水已与天气预报存档" in n for n in chinese["notes"]), chinese["notes"]


def test_the_service_gives_a_station_the_pet_of_the_kind_its_history_read_and_says_so(pretrained_ckpt, bundle,
                                                                                      tiny_data_dir, tmp_path):
    """The service reads a station's PET as `sca2lstm forecast` does, by the station's history: the default model (on
    ``peti``) at a station whose file holds only its own ``pet`` reads the posted forecast's ET0 (as a model on ``pet``
    there would), with the note saying so, and issues what the command issues; the same answer without ET0 (Oudin
    PET) is another forecast."""
    d = tmp_path / "data"
    shutil.copytree(tiny_data_dir, d)
    f = next((d / "timeseries").glob("*_32006_*.csv"))
    pd.read_csv(f).drop(columns=["peti"]).to_csv(f, index=False)
    with_et0 = _json(daily_response(FIRST, WET, TEMP, et0=[0.5] * 9))
    with forecaster(pretrained_ckpt, d) as live, TestClient(create_app(d, tmp_path / "db.sqlite", live,
                                                                       token=TOKEN)) as c:
        r = c.post("/stations/32006/weather", content=with_et0, headers={**AUTH, "Content-Type": "application/json"})
        assert r.status_code == 200, r.text
        fc = c.get("/stations/32006/forecast", params={"leads": 7}, headers=AUTH).json()
    source = f"weather forecast {r.json()['id']} of station 32006 (issued {FIRST})"
    assert f"{source}: PET (peti) is its et0 (FAO-56), as this station's own pet column gives the model's peti in its " \
           "history" in fc["notes"]
    assert fc["forecast"] == _expected(bundle, pretrained_ckpt, d, with_et0, "json", 7)
    assert fc["forecast"] != _expected(bundle, pretrained_ckpt, d, _json(daily_response(FIRST, WET, TEMP)), "json", 7)


def test_a_forecast_of_a_station_with_an_archive_names_it_by_the_data_folders_relative_path_not_the_servers(
        pretrained_ckpt, data_with_archive, tmp_path, capsys):
    """The notes that name the station's archive (its rain mapping, its runs combined) say
    ``weather_archive/32006.csv``, in the answer and in the database, as errors name files: a reader of the page
    (even anonymous) does not learn the server's folders."""
    from sca2lstm.cli.main import main as cli
    from sca2lstm.notes import Note
    from sca2lstm.serve.store import Store

    body = _json(daily_response(FIRST, [1.5, 0.0, 8.0, 20.0, 1.2, 0.0, 3.0, 0.0, 0.0], TEMP))
    with forecaster(pretrained_ckpt, data_with_archive) as f, \
            TestClient(create_app(data_with_archive, tmp_path / "db.sqlite", f, token=TOKEN)) as c:
        r = c.post("/stations/32006/weather", content=body, headers={**AUTH, "Content-Type": "application/json"})
        assert r.status_code == 200, r.text
        got = c.get("/stations/32006/forecast", params={"leads": 7}, headers=AUTH)
        zh = c.get("/stations/32006/forecast", params={"leads": 7}, headers={"Accept-Language": "zh"})
    folder = str(data_with_archive.resolve())
    for answer in (got, zh):
        assert answer.status_code == 200 and folder not in answer.text
    named = [n for n in got.json()["notes"] if "weather archive" in n]
    assert named and all("weather archive weather_archive/32006.csv" in n for n in named), got.json()["notes"]
    assert any("天气预报存档 weather_archive/32006.csv" in n for n in zh.json()["notes"]), zh.json()["notes"]

    def said(value):   # every word a stored note says, its values' notes too
        return [said(v) for v in value.values.values()] + [str(value)] if isinstance(value, Note) else [str(value)]

    [row] = Store(tmp_path / "db.sqlite").forecasts("32006")
    assert row["notes"] and not any(folder in str(said(n)) for n in row["notes"]), row["notes"]
    # the command's own line keeps the path its user gave
    (tmp_path / "wx.json").write_bytes(body)
    assert cli(["forecast", "--model", str(pretrained_ckpt), "--basin", "32006", "--data_dir", str(data_with_archive),
                "--issue_date", LAST, "--leads", "7", "--weather_forecast", str(tmp_path / "wx.json"),
                "--output_dir", str(tmp_path / "cli")]) == 0
    assert f"weather archive {data_with_archive / 'weather_archive' / '32006.csv'}" in capsys.readouterr().out


def test_the_service_reads_a_posted_forecasts_pet_at_a_station_whose_history_is_its_own_pet(pretrained_ckpt, bundle,
                                                                                             tiny_data_dir, tmp_path):
    """The default model (on ``peti``) at a station whose file holds only its own ``pet``: a posted table with its own
    ``pet`` column (and ET0) is read by its ``pet``, as `sca2lstm forecast` reads it, with the note saying so; the
    same table without ``pet`` (its ET0 read) is another forecast."""
    d = tmp_path / "data"
    shutil.copytree(tiny_data_dir, d)
    f = next((d / "timeseries").glob("*_32006_*.csv"))
    pd.read_csv(f).drop(columns=["peti"]).to_csv(f, index=False)
    k = np.arange(1, 10)
    table = pd.DataFrame({"issue_date": LAST, "lead_days": k,
                          "valid_date": (pd.Timestamp(LAST) + pd.to_timedelta(k, unit="D")).strftime("%Y-%m-%d"),
                          "precipitation": WET, "temperature": TEMP, "pet": 0.25 * k, "et0": 3.0})
    with_pet = table.to_csv(index=False).encode()
    with forecaster(pretrained_ckpt, d) as live, TestClient(create_app(d, tmp_path / "db.sqlite", live,
                                                                       token=TOKEN)) as c:
        r = c.post("/stations/32006/weather", content=with_pet, headers={**AUTH, "Content-Type": "text/csv"})
        assert r.status_code == 200, r.text
        fc = c.get("/stations/32006/forecast", params={"leads": 7}, headers=AUTH).json()
    source = f"weather forecast {r.json()['id']} of station 32006 (issued {LAST})"
    assert f"{source}: PET (peti) is its pet column, as this station's own pet column gives the model's peti in its " \
           "history" in fc["notes"], fc["notes"]
    assert fc["forecast"] == _expected(bundle, pretrained_ckpt, d, with_pet, "csv", 7)
    without = table.drop(columns="pet").to_csv(index=False).encode()
    assert fc["forecast"] != _expected(bundle, pretrained_ckpt, d, without, "csv", 7)


def _without_pet(tiny_data_dir, tmp_path):
    """A copy of the tiny stations whose 32006 file has no PET column: its history's PET is Oudin PET."""
    d = tmp_path / "data"
    shutil.copytree(tiny_data_dir, d)
    f = next((d / "timeseries").glob("*_32006_*.csv"))
    pd.read_csv(f).drop(columns=["pet", "peti"]).to_csv(f, index=False)
    return d


def test_a_posted_pet_at_a_station_whose_file_has_no_pet_is_refused_in_one_line_and_its_pet_stays_oudin(
        pretrained_ckpt, bundle, tiny_data_dir, tmp_path):
    """A station whose history's PET is Oudin PET (its file has no PET column): a posted ``pet`` would give its file
    a PET column of another kind on a few days (the model's PET masked on every other day, and its weather forecasts'
    ET0 read instead of Oudin PET), so the post is refused (422, one line naming the column), nothing stored; its
    forecasts read Oudin PET as `sca2lstm forecast` does on its file, and a post without ``pet`` is stored."""
    d = _without_pet(tiny_data_dir, tmp_path)
    with_et0 = _json(daily_response(FIRST, WET, TEMP, et0=[0.5] * 9))
    with forecaster(pretrained_ckpt, d) as live, TestClient(create_app(d, tmp_path / "db.sqlite", live,
                                                                       token=TOKEN)) as c:
        r = c.post("/stations/32006/observations", headers=AUTH,
                   json={"observations": [{"date": "1977-12-30", "temperature": 4.0},
                                          {"date": LAST, "temperature": 3.0, "pet": 0.4}]})
        detail = r.json()["detail"]
        assert r.status_code == 422 and "\n" not in detail, r.text
        assert detail.startswith(f"observations: pet on {LAST}: station 32006's file has no PET column (pet or peti)")
        assert c.get("/stations/32006/observations").json()["data_version"] == 0   # nothing stored
        zh = c.post("/stations/32006/observations", headers={**AUTH, "Accept-Language": "zh-CN"},
                    json={"observations": [{"date": LAST, "pet": 0.4}]}).json()["detail"]
        assert zh.startswith(f"观测：{LAST} 的 pet：测站 32006 的数据文件没有潜在蒸散发列（pet 或 peti）"), zh
        assert c.post("/stations/10002/observations", headers=AUTH,   # a station with its own PET takes one
                      json={"observations": [{"date": LAST, "pet": 0.4}]}).status_code == 200
        r = c.post("/stations/32006/weather", content=with_et0, headers={**AUTH, "Content-Type": "application/json"})
        assert r.status_code == 200, r.text
        fc = c.get("/stations/32006/forecast", params={"leads": 7}, headers=AUTH).json()
    assert fc["forecast"] == _expected(bundle, pretrained_ckpt, d, with_et0, "json", 7)
    source = f"weather forecast {r.json()['id']} of station 32006 (issued {FIRST})"
    assert f"{source}: PET (peti) is Oudin PET from its temperature, the kind this station's history read (its data " \
           "has no PET column): its et0 is not read" in fc["notes"], fc["notes"]


def test_a_pet_stored_before_at_a_station_whose_file_has_no_pet_is_not_read_as_the_models_pet(
        pretrained_ckpt, bundle, tiny_data_dir, tmp_path):
    """A ``pet`` an earlier version stored for a station whose file has no PET column stays in the database, apart:
    the station's data has no PET column (its observations show none) and its forecast reads Oudin PET over its whole
    record, as `sca2lstm forecast` does on its file; laid over, it would have been another forecast."""
    from sca2lstm.serve.store import Store

    d = _without_pet(tiny_data_dir, tmp_path)
    Store(tmp_path / "db.sqlite").upsert_observations("32006", [{"date": "1977-12-30", "pet": 0.4},
                                                                {"date": LAST, "temperature": 3.0, "pet": 0.4}])
    plain = _json(daily_response(FIRST, WET, TEMP, et0=[0.5] * 9))
    with forecaster(pretrained_ckpt, d) as live, TestClient(create_app(d, tmp_path / "db.sqlite", live,
                                                                       token=TOKEN)) as c:
        obs = c.get("/stations/32006/observations", params={"start": "1977-12-30", "end": LAST}).json()
        assert [(o["posted"], o["pet"]) for o in obs["observations"]] == [(True, None), (True, None)]
        assert obs["observations"][1]["temperature"] == 3.0
        assert c.post("/stations/32006/weather", content=plain,
                      headers={**AUTH, "Content-Type": "application/json"}).status_code == 200
        fc = c.get("/stations/32006/forecast", params={"leads": 7}, headers=AUTH).json()
    ts = reader.read_timeseries(d, "32006")
    ts.loc[LAST, "temperature"] = 3.0
    wf = parse_forecast(plain, "json", source="expected", plain=True)

    def issued(table):
        out, warnings, _ = warned_forecast(bundle, "32006", data_dir=d, issue_date=LAST, leads=7, timeseries=table,
                                           weather_forecast=wf, model_path=pretrained_ckpt)
        return table_rows(out.table, *lead_warnings(out.table, warnings.levels))

    assert fc["forecast"] == issued(ts)
    laid = ts.assign(pet=np.nan)
    laid.loc[["1977-12-30", LAST], "pet"] = 0.4
    assert fc["forecast"] != issued(laid)


@pytest.mark.parametrize("ctype", ["application/xml", "text/xml; charset=utf-8", "multipart/form-data; boundary=x",
                                   "application/vnd.ms-excel"])
def test_a_weather_forecast_of_a_content_type_the_service_does_not_read_is_415_naming_it(live, data, tmp_path, ctype):
    """An XML body (or a form upload, a spreadsheet) was read as CSV and refused for 'no valid_date column': the
    answer names the type and the ones the service reads instead, in one line, in Chinese too; nothing stored."""
    body = b"<forecast><day date='1978-01-01' precipitation='1'/></forecast>"
    with TestClient(create_app(data, tmp_path / "db.sqlite", live, token=TOKEN)) as c:
        r = c.post("/stations/32006/weather", content=body, headers={**AUTH, "Content-Type": ctype})
        assert r.status_code == 415, r.text
        detail = r.json()["detail"]
        media = ctype.split(";")[0]
        assert detail == (f"Content-Type: {media} is not read; post a weather forecast as application/json (a saved "
                          "Open-Meteo answer) or text/csv (a table)")
        zh = c.post("/stations/32006/weather", content=body, headers={**AUTH, "Content-Type": ctype,
                                                                       "Accept-Language": "zh-CN"}).json()["detail"]
        assert zh.startswith(f"Content-Type：无法读取 {media}；") and "text/csv" in zh
        assert c.get("/stations/32006/weather").json()["weather_forecasts"] == []
    assert _stored(tmp_path / "db.sqlite") == 0


def test_a_csv_posted_as_curl_sends_it_without_a_content_type_header_is_still_read(live, data, tmp_path):
    """curl --data-binary @file without -H sends application/x-www-form-urlencoded: that names no layout, so the
    table is read by its first character as before, not refused as a type the service does not read."""
    table = b"date,precipitation,temperature\n" + b"".join(f"{d.date()},1,5\n".encode() for d in
                                                            pd.date_range(FIRST, periods=9))
    with TestClient(create_app(data, tmp_path / "db.sqlite", live, token=TOKEN)) as c:
        r = c.post("/stations/32006/weather", content=table,
                   headers={**AUTH, "Content-Type": "application/x-www-form-urlencoded"})
        assert r.status_code == 200 and r.json()["issue_date"] == LAST, r.text
