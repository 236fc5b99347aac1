"""The forecast service (sca2lstm serve) through FastAPI's test client, on a fake forecaster
(serve_helpers.FakeForecaster: its median is the issue day's discharge in the data it is handed)."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from types import SimpleNamespace

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from serve_helpers import FakeForecaster

from sca2lstm.data import camels_gb
from sca2lstm.serve.app import create_app

TOKEN = "s3cret-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture()
def service(tiny_data_dir, tmp_path):
    fake = FakeForecaster()
    db = tmp_path / "serve.sqlite"
    app = create_app(tiny_data_dir, db, fake, token=TOKEN, model_path="fake.pth", model_sha256="abc123")
    with TestClient(app) as client:
        yield SimpleNamespace(client=client, fake=fake, db=db, data_dir=tiny_data_dir)


def _rows(db) -> tuple[int, int, int]:
    """(observation rows, data-version rows, forecast rows) straight from the database file."""
    con = sqlite3.connect(db)
    try:
        return tuple(con.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]
                     for t in ("observations", "data_versions", "forecasts"))
    finally:
        con.close()


def test_health_and_stations(service):
    h = service.client.get("/health").json()
    assert h["status"] == "ok" and h["writes_enabled"] is True and h["model_sha256"] == "abc123"
    ids = [s["id"] for s in service.client.get("/stations").json()]
    assert ids == camels_gb.list_basins(service.data_dir)
    assert "32006" in ids


def test_posted_day_overlays_the_file_and_last_post_wins(service):
    c = service.client
    file = camels_gb.read_timeseries(service.data_dir, "32006")
    day = "1977-06-15"
    r = c.post("/stations/32006/observations", headers=AUTH,
               json={"observations": [{"date": day, "discharge": 12.5}]})
    assert r.status_code == 200, r.text
    assert r.json() == {"station": "32006", "stored": 1, "data_version": 1}
    got = c.get("/stations/32006/observations", params={"start": day, "end": day}).json()
    row = got["observations"][0]
    assert row["posted"] is True and row["discharge"] == 12.5
    # Columns not posted keep the file's value.
    assert row["precipitation"] == pytest.approx(file.loc[day, "precipitation"])
    # Same day again: the discharge posted last wins; a post of rain alone keeps that discharge.
    c.post("/stations/32006/observations", headers=AUTH, json={"observations": [{"date": day, "discharge": 7.0}]})
    c.post("/stations/32006/observations", headers=AUTH, json={"observations": [{"date": day, "precipitation": 3.0}]})
    row = c.get("/stations/32006/observations", params={"start": day, "end": day}).json()["observations"][0]
    assert (row["discharge"], row["precipitation"]) == (7.0, 3.0)
    assert got["data_version"] == 1 and c.get("/stations/32006/observations").json()["data_version"] == 3
    # Other days and stations are untouched; one row per (station, day).
    prev = c.get("/stations/32006/observations", params={"start": "1977-06-14", "end": "1977-06-14"}).json()
    assert prev["observations"][0]["posted"] is False
    assert prev["observations"][0]["discharge"] == pytest.approx(file.loc["1977-06-14", "discharge_vol"])
    assert _rows(service.db)[:2] == (1, 1)


def test_days_after_the_file_are_appended(service):
    c = service.client
    r = c.post("/stations/10002/observations", headers=AUTH, json={"observations": [
        {"date": "1978-01-02", "discharge": 4.0, "precipitation": 1.0, "temperature": 5.0}]})
    assert r.status_code == 200, r.text
    obs = c.get("/stations/10002/observations", params={"start": "1977-12-31", "end": "1978-01-02"}).json()
    days = [o["date"] for o in obs["observations"]]
    assert days == ["1977-12-31", "1978-01-01", "1978-01-02"]
    assert obs["observations"][1]["discharge"] is None  # a gap day stays missing, not invented
    # The default issue day is now the posted last day, and the model sees the posted flow.
    fc = c.get("/stations/10002/forecast", params={"leads": 2}).json()
    assert fc["issue_date"] == "1978-01-02"
    assert fc["forecast"][0]["median"] == pytest.approx(4.0 * 1.01)


def test_forecast_is_cached_per_issue_day_leads_and_data_version(service):
    c, fake = service.client, service.fake
    file = camels_gb.read_timeseries(service.data_dir, "32006")
    p = {"issue_date": "1977-12-01", "leads": 3}
    a = c.get("/stations/32006/forecast", params=p).json()
    assert a["cached"] is False and fake.calls == 1
    assert [f["lead_days"] for f in a["forecast"]] == [1, 2, 3]
    assert a["forecast"][0]["valid_date"] == "1977-12-02"
    assert a["forecast"][0]["median"] == pytest.approx(file.loc["1977-12-01", "discharge_vol"] * 1.01)
    assert a["weights"] == {"precipitation": 0.5, "temperature": 0.2, "pet": 0.3}
    assert a["setting"] == "hindcast" and a["model_sha256"] == "abc123"
    assert a["history"][-1]["date"] == "1977-12-01" and len(a["history"]) == 90
    assert [o["date"] for o in a["observed_after"]] == ["1977-12-02", "1977-12-03", "1977-12-04"]
    assert a["observed_after"][0]["observed"] == pytest.approx(file.loc["1977-12-02", "discharge_vol"])
    b = c.get("/stations/32006/forecast", params=p).json()
    assert b["cached"] is True and b["id"] == a["id"] and fake.calls == 1
    assert b["forecast"] == a["forecast"]
    c.get("/stations/32006/forecast", params={**p, "leads": 4})  # other leads: a new forecast
    assert fake.calls == 2
    # A post to this station changes its data version: the next answer is issued afresh on the new data.
    c.post("/stations/32006/observations", headers=AUTH,
           json={"observations": [{"date": "1977-12-01", "discharge": 50.0}]})
    d = c.get("/stations/32006/forecast", params=p).json()
    assert d["cached"] is False and d["data_version"] == 1 and fake.calls == 3
    assert d["forecast"][0]["median"] == pytest.approx(50.0 * 1.01)
    # A post to another station does not throw this one's cache away.
    c.post("/stations/10002/observations", headers=AUTH,
           json={"observations": [{"date": "1977-12-01", "discharge": 1.0}]})
    assert c.get("/stations/32006/forecast", params=p).json()["cached"] is True and fake.calls == 3
    assert _rows(service.db)[2] == 3


def test_forecast_history_is_joined_with_later_observations(service):
    c = service.client
    file = camels_gb.read_timeseries(service.data_dir, "32006")
    c.get("/stations/32006/forecast", params={"issue_date": "1977-12-20", "leads": 3})
    c.get("/stations/32006/forecast", params={"issue_date": "1977-12-29", "leads": 5})  # runs past the data
    hist = c.get("/stations/32006/forecasts").json()["forecasts"]
    assert [h["issue_date"] for h in hist] == ["1977-12-29", "1977-12-20"]
    old = hist[1]["forecast"]
    assert [f["observed"] for f in old] == pytest.approx(
        list(file.loc["1977-12-21":"1977-12-23", "discharge_vol"]))
    assert [f["observed"] for f in hist[0]["forecast"]][2:] == [None, None, None]  # not observed yet


def test_a_restart_keeps_posts_and_issued_forecasts(service, tmp_path):
    c = service.client
    c.post("/stations/32006/observations", headers=AUTH,
           json={"observations": [{"date": "1977-05-01", "discharge": 9.25}, {"date": "1977-05-02", "temperature": 11.0}]})
    first = c.get("/stations/32006/forecast", params={"issue_date": "1977-05-01"}).json()
    fake2 = FakeForecaster()
    app2 = create_app(service.data_dir, service.db, fake2, token=TOKEN, model_sha256="abc123")
    with TestClient(app2) as c2:
        obs = c2.get("/stations/32006/observations", params={"start": "1977-05-01", "end": "1977-05-02"}).json()
        assert obs["observations"][0]["discharge"] == 9.25 and obs["observations"][1]["temperature"] == 11.0
        again = c2.get("/stations/32006/forecast", params={"issue_date": "1977-05-01"}).json()
        assert again["id"] == first["id"] and again["forecast"] == first["forecast"] and fake2.calls == 0
        # Another model (another sha256) does not reuse the first model's forecasts.
    app3 = create_app(service.data_dir, service.db, fake2, token=TOKEN, model_sha256="other")
    with TestClient(app3) as c3:
        assert c3.get("/stations/32006/forecast", params={"issue_date": "1977-05-01"}).json()["id"] != first["id"]
        assert fake2.calls == 1


def _day(**kw):
    return {"observations": [{"date": "1977-03-01", "discharge": 2.0, **kw}]}


BAD_POSTS = [
    # (name, kwargs for client.post, status, text the message must contain)
    ("malformed json", {"content": b'{"observations": [', "headers": {**AUTH, "Content-Type": "application/json"}},
     422, "body: malformed JSON"),
    ("wrong type", {"json": _day(discharge="high"), "headers": AUTH}, 422, "observations.0.discharge"),
    ("bool as number", {"json": _day(precipitation=True), "headers": AUTH}, 422, "observations.0.precipitation"),
    ("future date", {"json": {"observations": [{"date": (dt.date.today() + dt.timedelta(days=2)).isoformat(),
                                                "discharge": 1.0}]}, "headers": AUTH}, 422, "observations.0.date"),
    ("negative flow", {"json": _day(discharge=-1.0), "headers": AUTH}, 422, "observations.0.discharge"),
    ("unknown field", {"json": _day(flow=3.0), "headers": AUTH}, 422, "observations.0.flow"),
    ("no values", {"json": {"observations": [{"date": "1977-03-01"}]}, "headers": AUTH}, 422, "observations.0"),
    ("no days", {"json": {"observations": []}, "headers": AUTH}, 422, "observations"),
    ("day twice", {"json": {"observations": [{"date": "1977-03-01", "discharge": 1.0},
                                             {"date": "1977-03-01", "discharge": 2.0}]}, "headers": AUTH},
     422, "observations"),
    ("over size", {"content": b'{"observations": [' + b" " * 1_100_000 + b"]}",
                   "headers": {**AUTH, "Content-Type": "application/json"}}, 413, "body"),
    ("missing token", {"json": _day()}, 401, "authorization"),
    ("wrong token", {"json": _day(), "headers": {"Authorization": "Bearer s3cret-tokem"}}, 401, "authorization"),
    ("token not bearer", {"json": _day(), "headers": {"Authorization": f"Basic {TOKEN}"}}, 401, "authorization"),
]


@pytest.mark.parametrize("name,kwargs,status,text", BAD_POSTS, ids=[b[0] for b in BAD_POSTS])
def test_bad_posts_are_refused_naming_the_field_and_store_nothing(service, name, kwargs, status, text):
    r = service.client.post("/stations/32006/observations", **kwargs)
    assert r.status_code == status, r.text
    assert text in r.json()["detail"]
    assert _rows(service.db) == (0, 0, 0)
    assert service.client.get("/stations/32006/observations").json()["data_version"] == 0


def test_a_chunked_body_over_the_limit_is_refused(tiny_data_dir, tmp_path):
    app = create_app(tiny_data_dir, tmp_path / "db.sqlite", FakeForecaster(), token=TOKEN, max_body=1000)

    def chunks():  # no Content-Length: the limit must count the stream
        yield b'{"observations": ['
        for _ in range(100):
            yield b" " * 50

    with TestClient(app) as c:
        r = c.post("/stations/32006/observations", content=chunks(), headers={**AUTH, "Content-Type": "application/json"})
        assert r.status_code == 413 and "body" in r.json()["detail"]
        ok = c.post("/stations/32006/observations", json=_day(), headers=AUTH)
        assert ok.status_code == 200
    assert _rows(tmp_path / "db.sqlite")[0] == 1


@pytest.mark.parametrize("path,status", [
    ("/stations/99999/observations", 404),            # unknown station
    ("/stations/..%2F..%2Fetc%2Fpasswd/observations", 404),  # decoded slashes: no such route
    ("/stations/..%5C..%5Cwindows/observations", 422),  # backslashes: not a station id
    ("/stations/32006%00/observations", 422),
    ("/stations/%2E%2E/observations", 422),
])
def test_unknown_and_path_traversal_station_ids(service, path, status):
    for r in (service.client.get(path), service.client.post(path, json=_day(), headers=AUTH)):
        assert r.status_code == status, (path, r.text)
        if status == 422:
            assert "station" in r.json()["detail"]
    assert _rows(service.db) == (0, 0, 0)
    r = service.client.get("/stations/99999/forecast")
    assert r.status_code == 404 and "station" in r.json()["detail"] and "32006" in r.json()["detail"]


def test_writes_are_off_without_a_token(tiny_data_dir, tmp_path):
    app = create_app(tiny_data_dir, tmp_path / "db.sqlite", FakeForecaster(), token=None)
    with TestClient(app) as c:
        assert c.get("/health").json()["writes_enabled"] is False
        r = c.post("/stations/32006/observations", json=_day(), headers=AUTH)
        assert r.status_code == 403 and "writes are off" in r.json()["detail"]
    assert _rows(tmp_path / "db.sqlite") == (0, 0, 0)


def test_bad_forecast_requests_name_the_parameter(service):
    c = service.client
    for params, text in [({"leads": 0}, "leads"), ({"leads": 31}, "leads"), ({"leads": "x"}, "leads"),
                         ({"issue_date": "1977-13-01"}, "issue_date"), ({"issue_date": "1990-01-01"}, "issue_date")]:
        r = c.get("/stations/32006/forecast", params=params)
        assert r.status_code == 422 and text in r.json()["detail"], (params, r.text)
    # A domain error of the forecaster is a 422 with its one-line message, and nothing is recorded.
    r = c.get("/stations/10003/forecast", params={"issue_date": "1970-10-05"})
    assert r.status_code == 422 and "not enough days" in r.json()["detail"]
    r = c.get("/stations/32006/observations", params={"start": "1977-02-01", "end": "1977-01-01"})
    assert r.status_code == 422 and "start" in r.json()["detail"]
    assert _rows(service.db) == (0, 0, 0)


def test_the_page_and_its_assets_are_served_offline(service):
    c = service.client
    page = c.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    for hook in ('id="station"', 'id="chart"', 'id="forecast-table"', 'id="weights"', 'id="post-form"',
                 'id="obs-token"', 'id="verification"'):
        assert hook in page.text
    for asset in ("/static/app.js", "/static/style.css"):
        r = c.get(asset)
        assert r.status_code == 200 and len(r.text) > 100
        page.text.index(asset)
    # Offline: nothing is fetched from another host.
    for text in (page.text, c.get("/static/app.js").text, c.get("/static/style.css").text):
        assert "http://" not in text.replace("http://www.w3.org/2000/svg", "") and "https://" not in text
    assert "/stations/{station}/forecast" in json.dumps(c.get("/openapi.json").json()["paths"])


def test_serve_cli_refuses_bad_flags_in_one_line(tmp_path, capsys):
    from sca2lstm.cli.main import main

    empty = tmp_path / "token"
    empty.write_text("\n")
    assert main(["serve", "--model", str(tmp_path / "none.pth"), "--token_file", str(empty)]) == 2
    err = capsys.readouterr().err.strip()
    assert "--token_file" in err and len(err.splitlines()) == 1
    assert main(["serve", "--model", str(tmp_path / "none.pth")]) == 1
    err = capsys.readouterr().err.strip()
    assert "none.pth" in err and len(err.splitlines()) == 1


def test_the_store_is_wal_with_full_sync_for_posts(tmp_path):
    from sca2lstm.serve.store import Store

    store = Store(tmp_path / "s.sqlite")
    store.add_forecast("32006", "1977-01-01", 7, 0, "m", "hindcast", [], {})  # NORMAL for this one only

    def pragma(name):
        return store._db.execute(f"PRAGMA {name}").fetchone()[0]

    assert pragma("journal_mode") == "wal" and pragma("synchronous") == 2  # 2 = FULL
    assert store.upsert_observations("32006", [{"date": "1977-01-01", "discharge": 1.0}]) == 1
    store.close()
    assert Store(tmp_path / "s.sqlite").data_version("32006") == 1  # versions survive a reopen


def test_leads_are_bounded_by_the_model_and_the_default_issue_day_has_observed_flow(tiny_data_dir, tmp_path):
    fake = FakeForecaster()
    app = create_app(tiny_data_dir, tmp_path / "db.sqlite", fake, token=TOKEN, max_leads=3)
    with TestClient(app) as c:
        assert len(c.get("/stations/32006/forecast").json()["forecast"]) == 3  # default 7, cut to the model's 3
        r = c.get("/stations/32006/forecast", params={"leads": 4})
        assert r.status_code == 422 and "leads" in r.json()["detail"] and "3" in r.json()["detail"]
        # Rain posted after the file's end, without flow: the default issue day stays the last observed flow.
        c.post("/stations/32006/observations", headers=AUTH,
               json={"observations": [{"date": "1978-01-03", "precipitation": 5.0}]})
        fc = c.get("/stations/32006/forecast").json()
        assert fc["issue_date"] == "1977-12-31"


@pytest.mark.slow
def test_end_to_end_with_a_trained_model(pretrained_ckpt, tiny_data_dir, tmp_path):
    """The real forecaster: the API gives issue_forecast's numbers, and a posted flow changes them."""
    from sca2lstm.evaluation.operational import issue_forecast
    from sca2lstm.serve.app import model_forecaster
    from sca2lstm.checkpoint import load_model

    bundle = load_model(pretrained_ckpt)
    app = create_app(tiny_data_dir, tmp_path / "db.sqlite", model_forecaster(bundle, tiny_data_dir), token=TOKEN,
                     max_leads=bundle[1].training.forecast_leads)
    direct = issue_forecast(bundle, "32006", data_dir=tiny_data_dir, issue_date="1977-06-30", leads=5)
    with TestClient(app) as c:
        fc = c.get("/stations/32006/forecast", params={"issue_date": "1977-06-30", "leads": 5}).json()
        assert fc["setting"] == direct.setting
        for got, want in zip(fc["forecast"], direct.table.to_dict("records")):
            assert got["valid_date"] == want["valid_date"].date().isoformat()
            for k in ("median", "q05", "q25", "q75", "q95"):
                assert got[k] == pytest.approx(want[k], rel=1e-6, abs=1e-9)
        assert fc["weights"] == pytest.approx(direct.weights.to_dict())
        assert list(fc["weights"]) == list(bundle[2].feature_names)
        # Ten times the flow of the issue week, posted: the model sees it, the median moves.
        file = camels_gb.read_timeseries(tiny_data_dir, "32006")
        week = file.loc["1977-06-24":"1977-06-30", "discharge_vol"]
        c.post("/stations/32006/observations", headers=AUTH, json={"observations": [
            {"date": d.date().isoformat(), "discharge": float(v) * 10} for d, v in week.items()]})
        again = c.get("/stations/32006/forecast", params={"issue_date": "1977-06-30", "leads": 5}).json()
        assert again["cached"] is False and again["data_version"] == 1
        assert again["forecast"][0]["median"] != pytest.approx(fc["forecast"][0]["median"], rel=1e-3)


def test_the_page_ships_in_the_package():
    """pyproject lists the serve package and its static files, so an installed wheel has the page."""
    from pathlib import Path

    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11
    root = Path(__file__).resolve().parents[1]
    meta = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))
    assert "sca2lstm.serve" in meta["tool"]["setuptools"]["packages"]
    globs = meta["tool"]["setuptools"]["package-data"]["sca2lstm"]
    shipped = {p for g in globs for p in (root / "sca2lstm").glob(g)}
    for name in ("index.html", "app.js", "style.css"):
        assert root / "sca2lstm" / "serve" / "static" / name in shipped
    extras, core = meta["project"]["optional-dependencies"], meta["project"]["dependencies"]
    for dep in ("fastapi", "uvicorn", "pydantic", "httpx"):  # pydantic is a core dependency (the config)
        for need in (core + extras["serve"], core + extras["test"]):
            assert any(d.startswith(dep) for d in need), dep


def test_serve_is_a_subcommand_with_its_flags(capsys):
    from sca2lstm.cli.main import main

    assert main(["--help"]) == 0
    assert "serve" in capsys.readouterr().out
    assert main(["serve", "--help"]) == 0
    out = capsys.readouterr().out
    for flag in ("--model", "--data_dir", "--db", "--host", "--port", "--token_file"):
        assert flag in out
    assert "127.0.0.1" in out
    assert main(["serve", "--model", "m.pth", "--port", "70000"]) == 2
    assert "--port" in capsys.readouterr().err


def test_recent_part_cuts_only_where_no_feature_can_reach_back(tiny_cfg):
    from sca2lstm.serve.app import recent_part

    days = pd.date_range("2000-01-01", "2004-12-31", freq="D", name="date")
    issue = pd.Timestamp("2004-06-30")
    target = issue - pd.Timedelta(days=tiny_cfg.training.seq_len + 400)
    rain = pd.Series(0.0, index=days)  # dry throughout: one run of low-rain days, never ended
    ts = pd.DataFrame({"precipitation": rain, "discharge_vol": 1.0})
    assert recent_part(ts, issue, tiny_cfg).index[0] == days[0]  # the run reaches back to the start
    assert recent_part(ts, issue, tiny_cfg).index[-1] == issue    # days after the issue day are not known
    ts.loc["2001-03-05", "precipitation"] = 5.0                   # neither low nor high: ends both runs
    ts.loc[target - pd.Timedelta(days=3), "precipitation"] = 20.0  # high: ends only the dry run
    assert recent_part(ts, issue, tiny_cfg).index[0] == pd.Timestamp("2001-03-05")
    ts.loc[target, "precipitation"] = float("nan")                 # a missing day ends both too
    assert recent_part(ts, issue, tiny_cfg).index[0] == target



@pytest.mark.slow
def test_the_recent_part_gives_the_same_forecast_as_the_whole_record(pretrained_ckpt, tiny_data_dir):
    from sca2lstm.evaluation.operational import issue_forecast
    from sca2lstm.serve.app import model_forecaster
    from sca2lstm.checkpoint import load_model

    bundle = load_model(pretrained_ckpt)
    fc = model_forecaster(bundle, tiny_data_dir)
    for basin in ("32006", "10002"):
        ts = camels_gb.read_timeseries(tiny_data_dir, basin)
        for day in ("1973-02-10", "1975-08-01", "1977-12-20"):
            full = issue_forecast(bundle, basin, data_dir=tiny_data_dir, issue_date=day, leads=7)
            cut = fc(basin, ts, dt.date.fromisoformat(day), 7)
            # check_dtype off: the date columns may differ in their unit (s or us), not in their values.
            pd.testing.assert_frame_equal(cut.table, full.table, check_exact=True, check_dtype=False)
            pd.testing.assert_series_equal(cut.weights, full.weights, check_exact=True)
