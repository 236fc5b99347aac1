"""Warnings of the service with the tiny trained model: levels from the station metadata file, P(Q > level)
per lead, GET /warnings, and the daily issue with its alerts reaching local stub receivers (127.0.0.1)."""

from __future__ import annotations

import datetime as dt
import io
import json
import shutil
import sqlite3
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from fastapi.testclient import TestClient
from serve_helpers import forecaster
from stub_receivers import SMTPStub, WebhookStub

from sca2lstm.checkpoint import load_model
from sca2lstm.data.station_meta import StationMeta, WarningLevel, write_station_meta
from sca2lstm.evaluation.exceedance import exceedance_probability
from sca2lstm.evaluation.reforecast import warned_forecast
from sca2lstm.serve.app import create_app
from sca2lstm.serve.daily import Daily, next_issue, parse_issue_at
from sca2lstm.serve.notify import Notifier

TOKEN = "warn-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
ISSUE = "1977-12-31"  # the stations' last day with observed flow
TAUS = [0.05, 0.25, 0.5, 0.75, 0.95]
# Q = 10 h^2 (h in m): a water level of h m is 10 h^2 m3/s
CURVE = {"kind": "power", "segments": [{"a": 10.0, "b": 2.0, "h0": 0.0, "h_max": None, "valid_from": None,
                                        "valid_to": None}]}


@pytest.fixture(scope="module")
def data(tiny_data_dir, tmp_path_factory):
    d = tmp_path_factory.mktemp("warn") / "data"
    shutil.copytree(tiny_data_dir, d)
    return d


@pytest.fixture(scope="module")
def issued(pretrained_ckpt, data):
    """The forecast of 32006 issued on its last observed day (all lead days), from the file."""
    bundle = load_model(pretrained_ckpt)
    return warned_forecast(bundle, "32006", data_dir=data, issue_date=ISSUE, leads=bundle[1].training.forecast_leads,
                           model_path=pretrained_ckpt)[0].table


def _levels(data, **levels):
    write_station_meta(data, StationMeta("32006", warning_levels={
        name: WarningLevel(value, "m3/s", p) for name, (value, p) in levels.items()}))


def _quantiles(table):
    return table[["q05", "q25", "median", "q75", "q95"]].to_numpy(np.float64)



def _replace_model(ckpt: dict, path, version) -> str:
    """New bytes of the model ``ckpt`` (marked ``version``) renamed onto ``path``, as a deploy replaces it, and
    dated a minute back (settled: the service takes it at once); returns its sha256."""
    import os
    import time

    import torch

    from sca2lstm.fileio import file_sha256

    staged = path.with_name(f".{path.stem}.staged{version}.pth")
    torch.save({**ckpt, "qa_version": version}, staged)
    os.replace(staged, path)
    t = time.time() - 60
    os.utime(path, (t, t))
    return file_sha256(path)

def test_forecasts_carry_each_levels_exceedance_and_the_highest_warning(pretrained_ckpt, data, issued, tmp_path):
    low = 0.5 * float(issued["q05"].min())      # below every quantile: P close to 1, warns every lead
    high = 3.0 * float(issued["q95"].max())     # far above: never warns
    _levels(data, alert=(low, None), danger=(high, 0.3))
    with forecaster(pretrained_ckpt, data) as live, \
            TestClient(create_app(data, tmp_path / "db.sqlite", live, token=TOKEN)) as c:
        fc = c.get("/stations/32006/forecast", params={"issue_date": ISSUE, "leads": 7}).json()
        assert fc["levels"]["alert"]["value"] == low and fc["levels"]["alert"]["warn_probability"] == 0.5
        assert fc["levels"]["danger"]["warn_probability"] == 0.3 and fc["levels"]["danger"]["source"]
        # where each warning probability came from, as the CLI prints it
        assert fc["levels"]["danger"]["warn_probability_source"] == "station metadata"
        assert fc["levels"]["alert"]["warn_probability_source"].startswith("default")
        q = _quantiles(issued)
        for name, value in (("alert", low), ("danger", high)):
            want = np.round(exceedance_probability(q, TAUS, value), 4)   # to the 4 decimals warnings are decided on
            assert [r["p_exceed"][name] for r in fc["forecast"]] == pytest.approx(want, rel=1e-12, abs=1e-15)
        # P(Q > level) agrees with the quantiles: at each lead's q25 it is 0.75, at its q95 it is 0.05.
        assert exceedance_probability(q, TAUS, q[:, 1]) == pytest.approx(0.75)
        assert exceedance_probability(q, TAUS, q[:, 4]) == pytest.approx(0.05)
        assert [r["warning"] for r in fc["forecast"]] == ["alert"] * 7
        w = c.get("/warnings").json()
        assert w["errors"] == [] and [s["station"] for s in w["stations"]] == ["10002", "10003", "32006"]
        mine = w["stations"][2]
        assert (mine["warning"], mine["first_lead"], mine["issue_date"]) == ("alert", 1, ISSUE)
        assert [x["warning"] for x in mine["leads"]] == ["alert"] * 7
        assert mine["leads"][0]["probability"] == pytest.approx(fc["forecast"][0]["p_exceed"]["alert"])
        # Stations without levels (too few years to fit return periods, no metadata file) warn on nothing.
        assert all(s["warning"] is None and s["levels"] == {} for s in w["stations"][:2])
        # The page draws the levels and colours the stations from these answers.
        page = c.get("/static/app.js").text
        assert "/warnings" in page and "levels" in page


def test_the_daily_issue_stores_forecasts_and_warnings_and_alerts_on_each_change(pretrained_ckpt, data, issued,
                                                                                 tmp_path):
    q05 = float(issued["q05"].min())
    clock = [dt.datetime(2026, 12, 7, 8, 0, tzinfo=dt.timezone.utc)]
    db = tmp_path / "db.sqlite"
    with WebhookStub() as hook, SMTPStub() as smtp, forecaster(pretrained_ckpt, data) as live:
        notifier = Notifier(webhook=hook.url, email_to=["duty@example.org"], smtp_host="127.0.0.1",
                            smtp_port=smtp.port, retries=0)
        daily = Daily(at=None, notifier=notifier, now=lambda: clock[0])
        with TestClient(create_app(data, db, live, token=TOKEN, daily=daily)) as c:
            def issue(**levels):
                _levels(data, **levels)
                r = c.post("/daily_issue", headers=AUTH)
                assert r.status_code == 200, r.text
                clock[0] += dt.timedelta(days=1)
                return r.json()

            first = issue(alert=(0.5 * q05, None), danger=(1e6, None))
            assert first["alerts"] == 1 and first["failed"] == [] and first["stations"] == 3
            assert first["delivery"] == {"webhook": "sent", "email": "sent"}
            sent = hook.received[0]["alerts"]
            assert [(a["station"], a["change"], a["from_level"], a["to_level"]) for a in sent] == [
                ("32006", "start", None, "alert")]
            assert sent[0]["first_lead"] == 1 and sent[0]["level_value"] == 0.5 * q05
            # an id a receiver can drop repeated deliveries by, and what the data checks found (nothing here)
            assert sent[0]["id"] == f"{first['day']}:32006:start:None:alert" and sent[0]["notes"] == []
            # monitoring: /health says which day was issued last, and how it went
            last = c.get("/health").json()["last_daily_issue"]
            assert last["day"] == first["day"] and last["failed"] == [] and last["alerts"] == 1
            # the forecast rests on the file's last flow, 1977-12-31: the alert says how old that is
            assert sent[0]["data_age_days"] == (dt.date(2026, 12, 7) - dt.date(1977, 12, 31)).days
            sender, rcpts, text = smtp.received[0]
            assert "duty@example.org" in rcpts[0] and "32006" in text and "alert" in text and "starts" in text
            assert "the last observed flow is of 1977-12-31" in text  # (after "ON OLD DATA:", wrapped by the mail)
            clock[0] -= dt.timedelta(days=1)  # the same day again: issued once
            assert c.post("/daily_issue", headers=AUTH).json() == {"day": "2026-12-07", "skipped": "already issued"}
            clock[0] += dt.timedelta(days=1)
            assert issue(alert=(0.5 * q05, None), danger=(0.8 * q05, None))["alerts"] == 1
            assert [(a["change"], a["from_level"], a["to_level"]) for a in hook.received[1]["alerts"]] == [
                ("rise", "alert", "danger")]
            assert issue(alert=(0.5 * q05, None), danger=(0.8 * q05, None))["alerts"] == 0  # unchanged: silent
            assert issue(alert=(1e6, None), danger=(2e6, None))["alerts"] == 1
            assert [(a["change"], a["to_level"]) for a in hook.received[2]["alerts"]] == [("end", None)]
            assert len(hook.received) == len(smtp.received) == 3
            listed = c.get("/alerts").json()["alerts"]
            assert [a["change"] for a in listed] == ["end", "rise", "start"]
            assert listed[0]["delivery"] == {"webhook": "sent", "email": "sent"}
    con = sqlite3.connect(db)
    days = [r[0] for r in con.execute("SELECT day FROM daily_issues ORDER BY id")]
    assert days == ["2026-12-07", "2026-12-08", "2026-12-09", "2026-12-10"]
    warned = con.execute("SELECT level FROM issued_warnings WHERE station = '32006' ORDER BY issue_id").fetchall()
    assert [w[0] for w in warned] == ["alert", "danger", "danger", None]
    # Every issued forecast is in the record, each referenced by the issue that made it.
    linked = con.execute("SELECT COUNT(*) FROM issued_warnings w JOIN forecasts f ON f.id = w.forecast_id").fetchone()
    assert linked[0] == 4 * 3
    assert con.execute("SELECT COUNT(*) FROM forecasts WHERE origin = 'daily'").fetchone()[0] >= 4
    con.close()


def test_warnings_and_levels_read_the_daily_issues_forecast_of_a_model_of_more_than_seven_lead_days(
        tiny_data_dir, data, tmp_path):
    """A model trained for 10 lead days: the daily issue warns (and alerts) over all 10, but /warnings read a
    forecast of 7 (another one, not stored without the token: its forecast_id null), blind to a warning starting
    on day 8, and GET .../levels named no stored forecast though the daily issue had stored it. Both now read the
    daily issue's forecast, every lead day of it."""
    from conftest import make_tiny_config

    from sca2lstm.training.pretrain import pretrain

    ckpt = tmp_path / "ten" / "sca2lstm.pth"
    pretrain(make_tiny_config(tiny_data_dir, training={"epochs": 1, "forecast_leads": 10}), ckpt,
             data_dir=tiny_data_dir, progress=False)
    _levels(data)
    daily = Daily(now=lambda: dt.datetime(2026, 12, 7, 8, 0, tzinfo=dt.timezone.utc))
    with forecaster(ckpt, data) as live, \
            TestClient(create_app(data, tmp_path / "db.sqlite", live, token=TOKEN, daily=daily)) as c:
        assert c.post("/daily_issue", headers=AUTH).json()["failed"] == []
        warned = {s["station"]: s for s in c.get("/warnings").json()["stations"]}
        levels = c.get("/stations/32006/levels").json()
    con = sqlite3.connect(tmp_path / "db.sqlite")
    issued = dict(con.execute("SELECT w.station, w.forecast_id FROM issued_warnings w").fetchall())
    con.close()
    assert {s: (w["forecast_id"], len(w["leads"])) for s, w in warned.items()} == {s: (i, 10) for s, i in issued.items()}
    assert levels["forecast_id"] == issued["32006"]


def test_the_daily_issue_looks_for_newly_fine_tuned_models_first(pretrained_ckpt, data, tmp_path):
    """Between two looks (rate-limited on requests) a station's new fine-tuned model is not yet used; the
    daily issue looks first, so the issue's forecast of the station is its own model's."""
    import os
    import time

    from sca2lstm.evaluation.calibration import calibration_path
    from sca2lstm.fileio import file_sha256
    from sca2lstm.training.finetune import finetune

    folder = tmp_path / "model_output"
    folder.mkdir()
    pretrained = folder / "sca2lstm.pth"
    for src, dst in ((pretrained_ckpt, pretrained), (calibration_path(pretrained_ckpt), calibration_path(pretrained))):
        shutil.copyfile(src, dst)
    db = tmp_path / "db.sqlite"
    daily = Daily(at=None, notifier=Notifier(), now=lambda: dt.datetime(2026, 12, 7, 8, 0, tzinfo=dt.timezone.utc))
    with forecaster(folder, data, rescan_every=3600) as live, \
            TestClient(create_app(data, db, live, token=TOKEN, daily=daily)) as c:
        ckpt = finetune(pretrained, "10002", {"epochs": 1}, data_dir=data, out_root=folder / "fine_tune",
                        progress=False)["checkpoint"]
        t = time.time() - 60
        for written in (ckpt, calibration_path(ckpt)):
            os.utime(written, (t, t))
        assert c.get("/stations/10002/forecast").json()["model_sha256"] == file_sha256(pretrained)  # not looked yet
        assert c.post("/daily_issue", headers=AUTH).json()["failed"] == []
        assert c.get("/health").json()["fine_tuned_stations"] == 1
    con = sqlite3.connect(db)
    used = dict(con.execute("SELECT station, model_sha256 FROM forecasts WHERE origin = 'daily'").fetchall())
    con.close()
    assert used == {"10002": file_sha256(ckpt), "10003": file_sha256(pretrained), "32006": file_sha256(pretrained)}


def test_a_checkpoint_replaced_during_the_daily_issue_reaches_the_next_issue_not_its_later_stations(
        pretrained_ckpt, data, tmp_path, monkeypatch):
    """A duty forecaster reads one morning's issue as one model's: the pretrained checkpoint and a station's own
    one, replaced on disk and settled after the issue's first station (with requests looking for replacements
    on every forecast), do not reach that issue's later stations; every forecast of the issue records the
    versions the issue started with, and the next issue takes the replacements for every station."""

    import torch


    ckpt = torch.load(pretrained_ckpt, weights_only=True)

    def write(path, version) -> str:
        return _replace_model(ckpt, path, version)

    folder = tmp_path / "model_output"
    own = folder / "fine_tune" / "basin_32006" / "run" / "best_model_basin_32006.pth"
    own.parent.mkdir(parents=True)
    old = {"default": write(folder / "sca2lstm.pth", 1), "own": write(own, 1)}
    new = {}
    clock = [dt.datetime(2026, 12, 7, 8, 0, tzinfo=dt.timezone.utc)]
    db = tmp_path / "db.sqlite"
    with forecaster(folder, data, rescan_every=0) as live, \
            TestClient(create_app(data, db, live, token=TOKEN, daily=Daily(now=lambda: clock[0]))) as c:
        weather = c.app.state.service.weather
        real, seen = weather.fetch, []

        def fetch(station, settings):  # called just before each station is issued
            seen.append(station)
            if len(seen) == 2:  # the first station is issued: both checkpoints are replaced and settle now
                new.update(default=write(folder / "sca2lstm.pth", 2), own=write(own, 2))
            return real(station, settings)

        monkeypatch.setattr(weather, "fetch", fetch)
        first = c.post("/daily_issue", headers=AUTH).json()
        clock[0] += dt.timedelta(days=1)
        second = c.post("/daily_issue", headers=AUTH).json()
    assert first["failed"] == second["failed"] == [] and seen[:3] == ["10002", "10003", "32006"]
    assert new and new["default"] != old["default"] and new["own"] != old["own"]
    con = sqlite3.connect(db)
    used = con.execute("SELECT d.day, w.station, f.model_sha256 FROM issued_warnings w JOIN daily_issues d "
                       "ON d.id = w.issue_id JOIN forecasts f ON f.id = w.forecast_id ORDER BY d.day, w.station").fetchall()
    con.close()
    want = [(day, station, v["own" if station == "32006" else "default"])
            for day, v in (("2026-12-07", old), ("2026-12-08", new)) for station in ("10002", "10003", "32006")]
    assert used == want


def test_a_checkpoint_replaced_twice_during_the_daily_issue_leaves_the_issue_its_model_for_every_station(
        pretrained_ckpt, data, tmp_path, monkeypatch):
    """The served checkpoint replaced on disk twice while the daily issue runs, each replacement settled and taken
    by requests (which load it): a process keeps two versions of a checkpoint loaded, so the second replacement
    used to push out the version the issue started with, and the issue's later stations failed ("replaced on disk
    before this process loaded it"). The issue now keeps its versions loaded while it runs: every station is issued
    by the model it started with, and once it is over the process again keeps only two versions loaded."""

    import torch

    from sca2lstm.evaluation import live as live_module

    ckpt = torch.load(pretrained_ckpt, weights_only=True)
    served = tmp_path / "model_output" / "sca2lstm.pth"
    served.parent.mkdir()

    def write(version) -> str:
        return _replace_model(ckpt, served, version)

    first = write(1)
    clock = [dt.datetime(2026, 12, 7, 8, 0, tzinfo=dt.timezone.utc)]
    with forecaster(served.parent, data, rescan_every=0) as live, \
            TestClient(create_app(data, tmp_path / "db.sqlite", live, token=TOKEN,
                                  daily=Daily(now=lambda: clock[0]))) as c:
        weather = c.app.state.service.weather
        real, seen, taken = weather.fetch, [], []

        def fetch(station, settings):  # called just before each station is issued
            seen.append(station)
            if len(seen) == 2:  # the first station is issued: two replacements, each asked for once settled
                for version, day in ((2, "1977-12-20"), (3, "1977-12-21")):
                    sha = write(version)
                    r = c.get("/stations/10003/forecast", params={"issue_date": day})
                    assert r.status_code == 200, r.text
                    taken.append((sha, r.json()["model_sha256"]))
            return real(station, settings)

        monkeypatch.setattr(weather, "fetch", fetch)
        out = c.post("/daily_issue", headers=AUTH).json()
        last = write(4)  # after the issue: the versions it held are let go
        assert c.get("/stations/10003/forecast", params={"issue_date": "1977-12-22"}).json()["model_sha256"] == last
        held = [sha for path, sha in live_module._BUNDLES if path == str(served)]
    assert len(taken) == 2 and all(sha == used for sha, used in taken)  # each replacement was taken and loaded
    assert out["failed"] == [] and out["stations"] == 3 and seen[:3] == ["10002", "10003", "32006"]
    con = sqlite3.connect(tmp_path / "db.sqlite")
    used = con.execute("SELECT station, model_sha256 FROM forecasts WHERE origin = 'daily' ORDER BY station").fetchall()
    con.close()
    assert used == [(s, first) for s in ("10002", "10003", "32006")]
    assert len(held) == 2 and last in held  # let go: two versions of the file loaded again, the one in use among them


@pytest.mark.slow
def test_a_checkpoint_taken_at_the_daily_issue_start_and_replaced_at_once_is_issued_by_every_worker(
        pretrained_ckpt, data, tmp_path, monkeypatch):
    """`--workers 2`: the served checkpoint is replaced (settled) before the daily issue, which takes it at its
    start, and replaced again the moment the issue begins. No worker had loaded the version the issue took, and
    the file no longer held it: every station failed ("replaced on disk before this process loaded it"). The issue
    now loads its versions in every worker when it starts, and issues every station with the one it took."""
    import os
    import time

    import torch

    from sca2lstm.fileio import file_sha256

    ckpt = torch.load(pretrained_ckpt, weights_only=True)
    served = tmp_path / "model_output" / "sca2lstm.pth"
    served.parent.mkdir()

    def write(version, settled=True) -> str:  # new bytes of the model renamed onto its name; its sha256
        staged = served.with_name(f".staged{version}.pth")
        torch.save({**ckpt, "qa_version": version}, staged)
        os.replace(staged, served)
        if settled:
            t = time.time() - 60
            os.utime(served, (t, t))
        return file_sha256(served)

    write(1)
    db = tmp_path / "db.sqlite"
    daily = Daily(now=lambda: dt.datetime(2026, 12, 7, 8, 0, tzinfo=dt.timezone.utc))
    with forecaster(served.parent, data, workers=2, rescan_every=3600) as live, \
            TestClient(create_app(data, db, live, token=TOKEN, daily=daily)) as c:
        live.warm_up()  # as `sca2lstm serve` starts: every worker holds version 1
        taken = write(2)
        weather = c.app.state.service.weather
        real, replaced = weather.fetch, []

        def fetch(station, settings):  # called just before each station is issued: the issue has taken version 2
            if not replaced:
                replaced.append(write(3, settled=False))
            return real(station, settings)

        monkeypatch.setattr(weather, "fetch", fetch)
        out = c.post("/daily_issue", headers=AUTH).json()
    assert out["failed"] == [] and out["stations"] == 3 and replaced and replaced[0] != taken
    con = sqlite3.connect(db)
    used = con.execute("SELECT model_sha256 FROM forecasts WHERE origin = 'daily'").fetchall()
    con.close()
    assert used == [(taken,)] * 3


def test_a_station_that_fails_in_the_daily_issue_is_recorded_in_one_line_and_the_others_are_issued(
        pretrained_ckpt, tiny_data_dir, tmp_path, caplog):
    """Hand-edited station metadata: 10002's weather points are not numbers, 10003's weather section is a bare
    name. Their metadata cannot be read (the reader checks the section), so neither is issued; the issue goes
    on: the other station is issued and stored, and each failure is one line naming the file and the key, in
    the record and in the log (before, the whole issue failed: a 500, nothing recorded, no alert sent)."""
    data = tmp_path / "data"
    shutil.copytree(tiny_data_dir, data)
    (data / "meta").mkdir()
    (data / "meta" / "10002.json").write_text(json.dumps({"weather": {"source": "open-meteo", "points": "abc"}}))
    (data / "meta" / "10003.json").write_text(json.dumps({"weather": "open-meteo"}))
    db = tmp_path / "db.sqlite"
    daily = Daily(now=lambda: dt.datetime(2026, 12, 7, 8, 0, tzinfo=dt.timezone.utc))
    with forecaster(pretrained_ckpt, data) as live, \
            TestClient(create_app(data, db, live, token=TOKEN, daily=daily)) as c, \
            caplog.at_level("INFO", logger="sca2lstm"):
        r = c.post("/daily_issue", headers=AUTH)
        assert r.status_code == 200, r.text
        out = r.json()
        assert c.get("/health").json()["last_daily_issue"]["failed"] == ["10002", "10003"]
    assert out["stations"] == 1 and out["failed"] == ["10002", "10003"]
    said = {"10002": f'{data / "meta" / "10002.json"}: weather.points="abc" is not allowed; expected a list of',
            "10003": f'{data / "meta" / "10003.json"}: weather="open-meteo" must be an object'}
    con = sqlite3.connect(db)
    record = dict((s, (f, e)) for s, f, e in con.execute("SELECT station, forecast_id, error FROM issued_warnings"))
    stored = {s for (s,) in con.execute("SELECT station FROM forecasts WHERE origin = 'daily'")}
    con.close()
    assert stored == {"32006"} and record["32006"][0]
    for station, text in said.items():
        assert record[station][0] is None and "\n" not in record[station][1]
        # the record (its summary is anyone's: GET /health) names the file without the server's folders
        shown = text.replace(f"{data / 'meta'}/", "")
        assert record[station][1].startswith(f"station {station}: its data cannot be read ({shown}")
        assert str(tmp_path) not in out["weather"][station] and out["weather"][station].startswith(f"failed: {shown}")
    lines = [rec.getMessage() for rec in caplog.records if rec.levelname == "WARNING" and "daily issue" in rec.getMessage()]
    assert len(lines) == 2 and all("\n" not in m for m in lines), lines
    for line, (station, text) in zip(lines, said.items()):  # the log has the whole line, the path with it
        assert f"station {station} failed: station {station}: its data cannot be read ({text}" in line


def test_error_answers_name_the_station_and_the_problem_in_one_line_without_server_paths(
        pretrained_ckpt, tiny_data_dir, tmp_path, caplog, monkeypatch):
    """A station whose file is corrupt, one whose metadata is not JSON and one whose reading fails unforeseen: every
    answer about them (/warnings, the forecast, the levels, the observations) is one line naming the station and
    the problem, the file by its name alone; the log has the whole line with the path, or the traceback."""
    from sca2lstm.data import reader

    data = tmp_path / "data"
    shutil.copytree(tiny_data_dir, data)
    ts_file = reader.timeseries_file(data, "10002")
    ts_file.write_text(ts_file.read_text()[:2000] + "\nnot,a,date\n")
    (data / "meta").mkdir()
    (data / "meta" / "10003.json").write_text("{not json")
    (data / "meta" / "32006.json").write_text("{}")
    real = reader.read_timeseries

    def failing(data_dir, station, *a, **kw):  # a reader's bug, as a duty forecaster would meet it
        if station == "32006":
            raise ValueError(f"cannot convert {data_dir}/timeseries: unexpected")
        return real(data_dir, station, *a, **kw)

    monkeypatch.setattr(reader, "read_timeseries", failing)
    # the file is cut in a row and ends in a row of 3 fields: the reader names the first line whose fields do not fit
    said = {"10002": f"station 10002: its data cannot be read ({ts_file.name}: line ",
            "10003": "station 10003: its data cannot be read (cannot read the station metadata: 10003.json is not "
                     "valid JSON",
            "32006": "station 32006: internal error (ValueError); the server's log has the details"}
    with forecaster(pretrained_ckpt, data) as live, \
            TestClient(create_app(data, tmp_path / "db.sqlite", live), raise_server_exceptions=False) as c, \
            caplog.at_level("INFO", logger="sca2lstm"):
        w = c.get("/warnings")
        answers = {s: [c.get(f"/stations/{s}/{what}") for what in ("forecast", "levels", "observations")]
                   for s in said}
    assert w.status_code == 200 and w.json()["stations"] == [], w.text
    assert sorted(e["station"] for e in w.json()["errors"]) == sorted(said)
    for e in w.json()["errors"]:
        assert e["detail"].startswith(said[e["station"]]), e
    for station, rs in answers.items():
        for r in rs:
            assert r.status_code == (500 if station == "32006" else 503), r.text
            assert r.json()["detail"].startswith(said[station]) and "\n" not in r.json()["detail"], r.text
    for r in (w, *(r for rs in answers.values() for r in rs)):
        assert str(tmp_path) not in r.text and "/timeseries" not in r.text and "/meta" not in r.text, r.text
    logged = caplog.text
    assert f"{ts_file}: line " in logged and f"{data / 'meta' / '10003.json'} is not valid JSON" in logged
    assert "Traceback" in logged and f"cannot convert {data}/timeseries: unexpected" in logged


def test_an_unreachable_receiver_is_recorded_and_the_issue_still_stored(pretrained_ckpt, data, issued, tmp_path):
    _levels(data, alert=(0.5 * float(issued["q05"].min()), None))
    with WebhookStub(status=500) as hook, forecaster(pretrained_ckpt, data) as live:
        notifier = _notifier_with_mail_down(hook, retries=1)
        daily = Daily(notifier=notifier, now=lambda: dt.datetime(2026, 12, 7, 8, 0, tzinfo=dt.timezone.utc))
        with TestClient(create_app(data, tmp_path / "db.sqlite", live, token=TOKEN, daily=daily)) as c:
            out = c.post("/daily_issue", headers=AUTH).json()
            assert out["alerts"] == 1 and len(hook.received) == 2  # tried twice
            assert out["delivery"]["webhook"].startswith("failed: ") and "500" in out["delivery"]["webhook"]
            assert out["delivery"]["email"].startswith("failed: ")
            assert c.get("/alerts").json()["alerts"][0]["delivery"] == out["delivery"]
            assert c.post("/daily_issue").status_code == 401  # issuing needs the token


def test_a_mail_server_refusing_the_login_is_tried_once_and_said_in_one_line_without_the_password(
        pretrained_ckpt, data, issued, tmp_path, caplog):
    """Wrong SMTP credentials: the login is not tried again (the same password is refused again, and a mail server
    may lock the account after a few refusals); the issue's delivery says the login was refused and where the
    credentials come from, the log which server refused which user, neither the password; the webhook is sent all
    the same."""
    _levels(data, alert=(0.5 * float(issued["q05"].min()), None))
    with WebhookStub() as hook, SMTPStub(refuse_login=True) as smtp, forecaster(pretrained_ckpt, data) as live:
        notifier = Notifier(webhook=hook.url, email_to=["duty@example.org"], smtp_host="127.0.0.1",
                            smtp_port=smtp.port, smtp_user="duty", smtp_password="pa55-w0rd", retries=2, pause=0.0)
        daily = Daily(notifier=notifier, now=lambda: dt.datetime(2026, 12, 7, 8, 0, tzinfo=dt.timezone.utc))
        with TestClient(create_app(data, tmp_path / "db.sqlite", live, token=TOKEN, daily=daily)) as c, \
                caplog.at_level("INFO", logger="sca2lstm"):
            out = c.post("/daily_issue", headers=AUTH).json()
            health = c.get("/health").text
    assert out["alerts"] == 1 and out["delivery"]["webhook"] == "sent" and len(hook.received) == 1
    assert smtp.logins == 1 and smtp.received == []
    assert out["delivery"]["email"] == ("failed: the SMTP server refused the login (535 5.7.8 Authentication "
                                        "credentials invalid); check $SCA2LSTM_SMTP_USER and $SCA2LSTM_SMTP_PASSWORD")
    # which server and user: in the log, not in what anyone reads (/health, /alerts); the password nowhere
    assert f"127.0.0.1:{smtp.port} refused the login of 'duty'" in caplog.text and "'duty'" not in health
    assert "pa55-w0rd" not in health and "pa55-w0rd" not in caplog.text


def test_an_address_the_mail_server_refuses_is_said_in_the_log_and_the_others_get_the_alert_once(
        pretrained_ckpt, data, issued, tmp_path, caplog):
    """One address of the alert list with a typo the mail server refuses (550): the other address gets the alert,
    once (no resend to it), and the log names the refused address with the server's reply (before, nothing said
    that one duty forecaster never got the alerts)."""
    _levels(data, alert=(0.5 * float(issued["q05"].min()), None))
    with SMTPStub(refuse_to=("duyt@example.org",)) as smtp, forecaster(pretrained_ckpt, data) as live:
        notifier = Notifier(email_to=["duty@example.org", "duyt@example.org"], smtp_host="127.0.0.1",
                            smtp_port=smtp.port, retries=2, pause=0.0)
        daily = Daily(notifier=notifier, now=lambda: dt.datetime(2026, 12, 7, 8, 0, tzinfo=dt.timezone.utc))
        with TestClient(create_app(data, tmp_path / "db.sqlite", live, token=TOKEN, daily=daily)) as c, \
                caplog.at_level("INFO", logger="sca2lstm"):
            out = c.post("/daily_issue", headers=AUTH).json()
    assert out["alerts"] == 1 and out["delivery"]["email"] == "sent"
    assert [r[1] for r in smtp.received] == [["<duty@example.org>"]]
    said = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
    assert said == ["alert by e-mail: the SMTP server refused duyt@example.org (550 5.1.1 no such mailbox); the other "
                    "addresses have it"], said


def test_a_change_no_receiver_heard_is_sent_again_and_concurrent_issues_alert_once(pretrained_ckpt, data, issued,
                                                                                   tmp_path):
    """A receiver down at the issue does not lose the warning: the next issue sends it again (marked), then
    nothing while it stays; two issues of one day at the same moment run one after the other (one alert)."""
    from concurrent.futures import ThreadPoolExecutor

    _levels(data, alert=(0.5 * float(issued["q05"].min()), None))
    clock = [dt.datetime(2026, 12, 7, 8, 0, tzinfo=dt.timezone.utc)]
    with WebhookStub(status=503) as hook, forecaster(pretrained_ckpt, data) as live:
        daily = Daily(notifier=Notifier(webhook=hook.url, retries=0, timeout=2.0), now=lambda: clock[0])
        with TestClient(create_app(data, tmp_path / "db.sqlite", live, token=TOKEN, daily=daily)) as c:
            with ThreadPoolExecutor(2) as pool:
                answers = list(pool.map(lambda _: c.post("/daily_issue", headers=AUTH), range(2)))
            assert sorted(r.status_code for r in answers) == [200, 200]
            assert sorted("skipped" in r.json() for r in answers) == [False, True]
            assert len(hook.received) == 1 and answers[0].json().get("alerts", 1) == 1
            first = hook.received[0]["alerts"][0]
            assert first["change"] == "start" and "resent_after_failed_delivery" not in first
            assert first["level_unit"] == "m3/s"
            hook.status = 200
            clock[0] += dt.timedelta(days=1)
            again = c.post("/daily_issue", headers=AUTH).json()
            assert again["alerts"] == 1 and again["delivery"]["webhook"] == "sent"
            resent = hook.received[1]["alerts"][0]
            assert (resent["change"], resent["to_level"], resent["resent_after_failed_delivery"]) == ("start", "alert", True)
            clock[0] += dt.timedelta(days=1)
            assert c.post("/daily_issue", headers=AUTH).json()["alerts"] == 0 and len(hook.received) == 2


def test_a_change_a_slow_receiver_got_is_sent_again_under_the_id_it_first_had_across_a_restart(
        pretrained_ckpt, data, issued, tmp_path):
    """A webhook that takes the alert but answers after the timeout: the service counts it undelivered and sends it
    again at the next issue (after a restart), under the same id, so the receiver, dropping repeats by id as the
    docs say, shows the duty forecaster the warning once; nothing more while the warning stays."""
    _levels(data, alert=(0.5 * float(issued["q05"].min()), None))
    clock = [dt.datetime(2026, 12, 7, 8, 0, tzinfo=dt.timezone.utc)]
    db = tmp_path / "db.sqlite"
    with WebhookStub(delay=1.5) as hook, forecaster(pretrained_ckpt, data) as live:
        daily = Daily(notifier=Notifier(webhook=hook.url, retries=0, timeout=0.5), now=lambda: clock[0])
        with TestClient(create_app(data, db, live, token=TOKEN, daily=daily)) as c:
            first = c.post("/daily_issue", headers=AUTH).json()
        assert first["alerts"] == 1 and first["delivery"]["webhook"].startswith("failed: ReadTimeout")
        hook.delay = 0.0
        for _ in range(2):  # the next two mornings, each after a restart
            clock[0] += dt.timedelta(days=1)
            with TestClient(create_app(data, db, live, token=TOKEN, daily=daily)) as c:
                c.post("/daily_issue", headers=AUTH).raise_for_status()
    sent = [a for body in hook.received for a in body["alerts"]]
    assert len(sent) == 2 and sent[1]["resent_after_failed_delivery"] is True
    assert sent[1]["id"] == sent[0]["id"] == f"{first['day']}:32006:start:None:alert"
    assert len({a["id"] for a in sent}) == 1


def test_the_issue_time_is_local():
    shanghai = Daily(at=parse_issue_at("08:00"), tz=ZoneInfo("Asia/Shanghai"))
    utc = dt.timezone.utc
    # 23:59 UTC is 07:59 the next morning in Shanghai: the issue is a minute later.
    assert next_issue(dt.datetime(2026, 12, 6, 23, 59, tzinfo=utc), shanghai) == dt.datetime(
        2026, 12, 7, 8, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
    assert next_issue(dt.datetime(2026, 12, 7, 0, 0, 1, tzinfo=utc), shanghai) == dt.datetime(
        2026, 12, 8, 8, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
    london = Daily(at=parse_issue_at("08:00"), tz=ZoneInfo("Europe/London"))
    # Across the change to summer time the issue stays at 08:00 on the wall clock.
    assert next_issue(dt.datetime(2026, 3, 28, 9, 0, tzinfo=utc), london).utcoffset() == dt.timedelta(hours=1)


@pytest.mark.parametrize("argv,flag", [
    (["--issue_at", "25:00"], "--issue_at"), (["--issue_at", "8am"], "--issue_at"),
    (["--timezone", "Mars/Olympus"], "--timezone"), (["--alert_webhook", "ftp://x"], "--alert_webhook"),
    (["--alert_email", "nobody"], "--alert_email"), (["--smtp", "mail:notaport"], "--smtp"),
    (["--weather_base_url", "ftp://x"], "--weather_base_url"), (["--weather_retries", "-1"], "--weather_retries"),
    (["--weather_timeout", "nan"], "--weather_timeout: invalid value 'nan'"),
    (["--weather_timeout", "0"], "--weather_timeout: invalid value '0'"),
    (["--alert_language", "fr"], "--alert_language: invalid choice: 'fr'"),
])
def test_daily_issue_flags_are_checked_in_one_line(argv, flag, tmp_path, capsys):
    from sca2lstm.cli.main import main

    assert main(["serve", "--model", str(tmp_path / "m.pth"), *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert flag in err and len(err.splitlines()) == 1


def test_an_alert_in_chinese_says_each_change_and_the_usual_levels_in_words():
    from sca2lstm.serve.notify import alert_line

    a = {"station": "32006", "change": "rise", "from_level": "alert", "to_level": "q20y", "level_value": 80.0,
         "level_stage_m": 2.5, "valid_date": "2026-12-08", "first_lead": 2, "probability": 0.62, "data_age_days": 1,
         "resent_after_failed_delivery": True}
    assert alert_line(a, "zh") == ("测站 32006：20年一遇级（80.0 m3/s，水位 2.5 m）预警由警戒级升级，自 2026-12-08 起（预见期第 2 天），"
                                   "超过概率 62%；重发：首次发送时未送达所有接收方")
    assert alert_line({**a, "change": "fall", "from_level": "danger", "to_level": "low"}, "zh").startswith(
        "测站 32006：low级（80.0 m3/s，水位 2.5 m）预警由保证级降级，")
    assert alert_line({**a, "change": "end", "to_level": None, "resent_after_failed_delivery": False},
                      "zh") == "测站 32006：警戒级预警解除"
    assert alert_line(a) == ("station 32006: q20y (80.0 m3/s, water level 2.5 m) rises from alert, from 2026-12-08 "
                             "(day 2 of the forecast), probability 62%; SENT AGAIN: it had not reached every receiver "
                             "when first sent")


def test_the_alert_language_flag_reaches_the_alerts_and_is_english_by_default():
    from sca2lstm.cli.serve import build_parser, daily_settings
    from sca2lstm.serve.notify import ALERT_LANGUAGES

    parser = build_parser()
    assert daily_settings(parser.parse_args(["--model", "m.pth"])).notifier.language == "en"
    assert daily_settings(parser.parse_args(["--model", "m.pth", "--alert_language", "zh"])).notifier.language == "zh"
    # the choices the flag offers, written out in the CLI, are the languages the alerts have
    assert tuple(next(a for a in parser._actions if a.dest == "alert_language").choices) == ALERT_LANGUAGES


def test_the_api_shows_the_per_lead_warning_probabilities_the_warnings_apply():
    """A user level judged like its nearest return-period level warns at that level's probability per lead:
    the API's level (and the stored record, which holds the same documents) says so, not only the scalar."""
    from sca2lstm.evaluation.calibration import warn_probabilities
    from sca2lstm.evaluation.levels import Level
    from sca2lstm.evaluation.reforecast import Warnings, add_exceedance
    from sca2lstm.serve.app import level_docs

    by_lead = [0.2, 0.1, 0.1, 0.1, 0.1, 0.1, 0.05]
    calibration = {"warn_probability": {"q2y": {"warn_probability": 0.1, "by_lead": by_lead}}}
    levels = {"q2y": Level("q2y", 40.0, "glo"), "alert": Level("alert", 25.0, "station metadata")}
    probs = warn_probabilities(calibration, levels)
    for n, (p, source, lead_p) in probs.items():
        levels[n].warn_probability = p
        levels[n].extra.update(warn_probability_source=source, warn_probability_by_lead=lead_p)
    doc = level_docs(levels)["alert"]
    assert doc["warn_probability_by_lead"] == by_lead and doc["warn_probability_source"].startswith("as q2y")
    # the table's warnings follow the per-lead probabilities: P = 0.15 warns at lead 2, not at lead 1
    import pandas as pd
    table = pd.DataFrame({"lead_days": [1, 2], "q05": [1.0, 1.0], "q25": [5.0, 5.0], "median": [10.0, 10.0],
                          "q75": [20.0, 20.0], "q95": [30.0, 30.0]})
    out = add_exceedance(table, Warnings({"alert": levels["alert"]}))
    p = out["p_exceed_alert"].to_numpy()
    assert 0.1 < p[0] == p[1] < 0.2 and list(out["warn_alert"]) == [False, True]


def test_what_the_daily_issue_issued_is_exported_for_verify(pretrained_ckpt, data, issued, tmp_path, capsys):
    """Ten mornings, each with the day before's observations posted: the issued record comes back as a
    reforecast table (one row per issue date and lead, the flow observed since, persistence) that
    `sca2lstm verify` scores, with the levels it warned on. Both name their station (column and key ``basin``):
    verify refuses the table with another station's levels in one line."""
    import pandas as pd

    from sca2lstm.cli.main import main

    _levels(data, alert=(float(issued["median"].median()), None))
    clock = [dt.datetime(1978, 1, 2, 8, 0, tzinfo=dt.timezone.utc)]
    with forecaster(pretrained_ckpt, data) as live:
        daily = Daily(at=None, now=lambda: clock[0])
        with TestClient(create_app(data, tmp_path / "db.sqlite", live, token=TOKEN, daily=daily)) as c:
            for k in range(10):
                day = (dt.date(1978, 1, 1) + dt.timedelta(days=k)).isoformat()
                r = c.post("/stations/32006/observations", headers=AUTH, json={"observations": [
                    {"date": day, "precipitation": 2.0 + k, "temperature": 5.0, "discharge": 3.0 + 0.5 * k}]})
                assert r.status_code == 200
                assert c.post("/daily_issue", headers=AUTH).json()["stations"] == 3
                clock[0] += dt.timedelta(days=1)
            assert c.get("/stations/32006/issued.csv", params={"origin": "bogus"}).status_code == 422
            csv = c.get("/stations/32006/issued.csv")
            levels = c.get("/stations/32006/issued_levels.json").json()
    assert csv.headers["content-type"].startswith("text/csv")
    f = tmp_path / "issued" / "reforecast.csv"
    f.parent.mkdir()
    f.write_text(csv.text)
    (f.parent / "levels.json").write_text(json.dumps(levels))
    t = pd.read_csv(f)
    assert t["issue_date"].nunique() == 10 and (t.groupby("issue_date").size() == 7).all()
    first = t[t["issue_date"] == "1978-01-01"]
    assert first["persistence"].eq(3.0).all()                     # the flow posted for the issue date
    assert first.set_index("valid_date").loc["1978-01-02", "observed"] == 3.5
    assert t.loc[t["valid_date"] > "1978-01-10", "observed"].isna().all()
    assert set(levels) == {"alert"} and (t["warn_alert"] == (t["p_exceed_alert"] >= 0.5)).all()
    capsys.readouterr()
    assert main(["verify", str(f), "--quiet"]) == 0
    per_lead = pd.read_csv(f.parent / "verify_per_lead.csv")
    assert per_lead["lead"].tolist() == list(range(1, 8)) and per_lead["n_days"].iloc[0] == 9
    assert list(pd.read_csv(f, dtype={"basin": str})["basin"].unique()) == ["32006"] and t.columns[-1] == "basin"
    assert levels["alert"]["basin"] == "32006"
    other = tmp_path / "levels_10002.json"
    other.write_text(json.dumps({n: {**lv, "basin": "10002"} for n, lv in levels.items()}))
    capsys.readouterr()
    assert main(["verify", str(f), "--levels", str(other), "--output_dir", str(tmp_path / "other")]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "the levels of basin 10002, but the table forecasts basin 32006" in err
    assert not (tmp_path / "other" / "verify_per_lead.csv").exists()


def test_the_issued_record_keeps_the_level_values_each_forecast_was_issued_with(pretrained_ckpt, data, issued,
                                                                              tmp_path, capsys):
    """Six mornings: two before the station had levels, two with alert (below every quantile: warned) and danger,
    two after alert was moved far up and danger removed. Each row of issued.csv carries the value its forecast was
    issued with; rows of a forecast without a level have its cells empty (not "no warning"); danger, warned on
    once, stays in the record; verify scores each row against its own value and leaves the others out."""
    import io

    import pandas as pd

    from sca2lstm.cli.main import main

    low, high = 0.5 * float(issued["q05"].min()), 3.0 * float(issued["q95"].max())
    danger = 2.0 * low
    clock = [dt.datetime(1978, 1, 2, 8, 0, tzinfo=dt.timezone.utc)]
    write_station_meta(data, StationMeta("32006"))
    try:
        with forecaster(pretrained_ckpt, data) as live:
            daily = Daily(at=None, now=lambda: clock[0])
            with TestClient(create_app(data, tmp_path / "db.sqlite", live, token=TOKEN, daily=daily)) as c:
                for k in range(6):
                    if k == 2:
                        _levels(data, alert=(low, None), danger=(danger, None))
                    elif k == 4:
                        _levels(data, alert=(high, None))
                    day = (dt.date(1978, 1, 1) + dt.timedelta(days=k)).isoformat()
                    assert c.post("/stations/32006/observations", headers=AUTH, json={"observations": [
                        {"date": day, "precipitation": 2.0, "temperature": 5.0, "discharge": 3.0 + k}]}).status_code == 200
                    assert c.post("/daily_issue", headers=AUTH).json()["stations"] == 3
                    clock[0] += dt.timedelta(days=1)
                csv = c.get("/stations/32006/issued.csv").text
                levels = c.get("/stations/32006/issued_levels.json").json()
                stored = {r["issue_date"]: r for r in c.app.state.service.store.forecasts("32006", 100)
                          if r["origin"] == "daily"}
    finally:
        write_station_meta(data, StationMeta("32006"))
    # levels.json: every level warned on, each with its latest value
    assert {n: lv["value"] for n, lv in levels.items()} == {"alert": pytest.approx(high), "danger": pytest.approx(danger)}
    t = pd.read_csv(io.StringIO(csv))
    days = sorted(t["issue_date"].unique())
    before, with_low, moved = (t["issue_date"].isin(days[i:i + 2]) for i in (0, 2, 4))
    assert t.loc[before, ["level_alert", "p_exceed_alert", "warn_alert", "level_danger", "warn_danger"]].isna().all().all()
    assert t.loc[with_low, "level_alert"].eq(round(low, 4)).all() and t.loc[with_low, "warn_alert"].eq(True).all()
    assert t.loc[with_low, "level_danger"].eq(round(danger, 4)).all()
    assert t.loc[moved, "level_alert"].eq(round(high, 4)).all() and t.loc[moved, "warn_alert"].eq(False).all()
    assert t.loc[moved, ["level_danger", "warn_danger"]].isna().all().all()
    # each row's p_exceed is the one its forecast stored, for the value it was issued with
    for _, r in t[with_low | moved].iterrows():
        lead = next(x for x in stored[r["issue_date"]]["table"] if x["lead_days"] == r["lead_days"])
        assert r["p_exceed_alert"] == pytest.approx(lead["p_exceed"]["alert"], abs=5e-5)  # written to 4 decimals
    # verify: by day at each lead, the events of the rows issued with alert, each against its own value
    f = tmp_path / "issued" / "reforecast.csv"
    f.parent.mkdir()
    f.write_text(csv)
    (f.parent / "levels.json").write_text(json.dumps(levels))
    capsys.readouterr()
    assert main(["verify", str(f)]) == 0
    out = capsys.readouterr().out
    assert "alert: 14 of 42 rows (2 issue date(s), 1978-01-01 .. 1978-01-02) left out of its scores" in out
    s = pd.read_csv(f.parent / "verify_per_level.csv")
    model = s[(s["forecast"] == "model") & (s["count"] == "day") & (s["level"] == "alert")].set_index("lead")
    scored = t[~before & t["observed"].notna()]
    for lead, g in scored.groupby("lead_days"):
        event, warn = g["observed"] > g["level_alert"], g["warn_alert"].astype(bool)
        assert (model.loc[lead, "hits"], model.loc[lead, "misses"], model.loc[lead, "false_alarms"]) == (
            (event & warn).sum(), (event & ~warn).sum(), (~event & warn).sum())
        assert model.loc[lead, "n_left_out"] == 2


def test_alerts_no_receiver_heard_are_sent_again_within_the_day_under_their_ids(pretrained_ckpt, data, issued,
                                                                                tmp_path):
    """A webhook down at the morning's issue: the scheduled loop sends the day's undelivered alerts again
    RESEND_AFTER later (same id, marked), records that they were heard, and then sends nothing more, neither
    later that day nor at the next issue while the warning stays."""
    import asyncio

    from sca2lstm.serve import daily as daily_mod

    _levels(data, alert=(0.5 * float(issued["q05"].min()), None))
    clock = [dt.datetime(2026, 12, 7, 8, 0, tzinfo=dt.timezone.utc)]
    with WebhookStub(status=503) as hook, forecaster(pretrained_ckpt, data) as live:
        daily = Daily(notifier=Notifier(webhook=hook.url, retries=0, timeout=2.0), now=lambda: clock[0])
        with TestClient(create_app(data, tmp_path / "db.sqlite", live, token=TOKEN, daily=daily)) as c:
            first = c.post("/daily_issue", headers=AUTH).json()
            assert first["alerts"] == 1 and first["delivery"]["webhook"].startswith("failed")
            svc = c.app.state.service
            hook.status = 200
            # the loop's own steps, on the test's clock: the issue is done, so each pass only resends when due
            clock[0] += daily_mod.RESEND_AFTER
            assert asyncio.run(daily_mod.resend_undelivered(svc, daily)) == {
                "webhook": "sent", "email": None}
            assert len(hook.received) == 2
            again = hook.received[1]["alerts"][0]
            assert again["id"] == hook.received[0]["alerts"][0]["id"] and again["resent_after_failed_delivery"]
            assert c.get("/alerts").json()["alerts"][0]["delivery"]["webhook"] == "sent"
            clock[0] += daily_mod.RESEND_AFTER
            assert asyncio.run(daily_mod.resend_undelivered(svc, daily)) is None  # heard: nothing more
            clock[0] += dt.timedelta(days=1)
            assert c.post("/daily_issue", headers=AUTH).json()["alerts"] == 0 and len(hook.received) == 2


def test_an_alert_the_webhook_refused_for_good_is_not_sent_again_and_stays_failed_in_health(pretrained_ckpt, data,
                                                                                           issued, tmp_path):
    """A webhook answering 404 refuses the same POST every time: the 15-minute resends leave that alert alone
    on it (it was sent once every 15 minutes all day), while /health still counts it as not taken."""
    import asyncio

    from sca2lstm.serve import daily as daily_mod

    _levels(data, alert=(0.5 * float(issued["q05"].min()), None))
    clock = [dt.datetime(2026, 12, 7, 8, 0, tzinfo=dt.timezone.utc)]
    with WebhookStub(status=404) as hook, forecaster(pretrained_ckpt, data) as live:
        daily = Daily(notifier=Notifier(webhook=hook.url, retries=0, timeout=2.0), now=lambda: clock[0])
        with TestClient(create_app(data, tmp_path / "db.sqlite", live, token=TOKEN, daily=daily)) as c:
            first = c.post("/daily_issue", headers=AUTH).json()
            assert first["alerts"] == 1 and first["delivery"]["webhook"].startswith("failed (final): ")
            for _ in range(3):
                clock[0] += daily_mod.RESEND_AFTER
                assert asyncio.run(daily_mod.resend_undelivered(c.app.state.service, daily)) is None
            assert len(hook.received) == 1
            last = c.get("/health").json()["last_daily_issue"]
            assert last["undelivered_alerts"] == 1 and last["delivery"]["webhook"].startswith("failed")
            assert c.get("/alerts").json()["alerts"][0]["delivery"]["webhook"].startswith("failed (final): ")


def test_a_webhook_refusing_the_alert_is_tried_once_and_said_in_one_line(pretrained_ckpt, data, issued, tmp_path):
    """A webhook answering 404 (a wrong path) or 403 gets the same answer on every try: the alert is posted once,
    the delivery says the refusal in one line, and the e-mail is sent all the same (before, three tries with
    pauses and a bare 'HTTP 404')."""
    _levels(data, alert=(0.5 * float(issued["q05"].min()), None))
    with WebhookStub(status=404) as hook, SMTPStub() as smtp, forecaster(pretrained_ckpt, data) as live:
        notifier = Notifier(webhook=hook.url, email_to=["duty@example.org"], smtp_host="127.0.0.1",
                            smtp_port=smtp.port, retries=2, pause=0.0)
        daily = Daily(notifier=notifier, now=lambda: dt.datetime(2026, 12, 7, 8, 0, tzinfo=dt.timezone.utc))
        with TestClient(create_app(data, tmp_path / "db.sqlite", live, token=TOKEN, daily=daily)) as c:
            out = c.post("/daily_issue", headers=AUTH).json()
    assert out["alerts"] == 1 and len(hook.received) == 1 and len(smtp.received) == 1
    assert out["delivery"] == {
        "webhook": "failed (final): the webhook answered HTTP 404 Not Found, a refusal the same request gets again; check "
                   "--alert_webhook and the receiver", "email": "sent"}


def test_a_webhook_asking_to_retry_later_is_waited_for_up_to_a_cap():
    """429 with Retry-After: the next try waits the seconds asked (not the short pause), but no longer than the
    cap, so a receiver asking for an hour does not hold the e-mail; 503 and 408 are tried again too."""
    with WebhookStub(status=429, headers={"Retry-After": "1"}) as hook:
        out = Notifier(webhook=hook.url, retries=1, pause=0.0).send({"day": "2026-12-07", "alerts": []})
        assert out["webhook"] == "failed: the webhook answered HTTP 429 Too Many Requests" and len(hook.received) == 2
        assert hook.times[1] - hook.times[0] >= 0.9
        hook.headers = {"Retry-After": "3600"}
        Notifier(webhook=hook.url, retries=1, pause=0.0, retry_after_cap=0.2).send({"day": "2026-12-07", "alerts": []})
        assert len(hook.received) == 4 and 0.15 <= hook.times[3] - hook.times[2] < 2.0
        for status in (408, 503):
            hook.status, hook.headers = status, {}
            n = len(hook.received)
            Notifier(webhook=hook.url, retries=2, pause=0.0).send({"day": "2026-12-07", "alerts": []})
            assert len(hook.received) == n + 3, status


def test_a_webhook_moved_on_its_host_gets_the_alert_and_one_moved_elsewhere_is_named(pretrained_ckpt, data, issued,
                                                                                     tmp_path, caplog):
    """A receiver whose URL moved (301/302/307/308 to a new path): the alert is posted there, whole, and the log
    says to set the new URL (before: 'failed: HTTP 308'); a move to another host is not followed, and the delivery
    names where it points."""
    _levels(data, alert=(0.5 * float(issued["q05"].min()), None))
    with forecaster(pretrained_ckpt, data) as live:
        for status in (301, 302, 307, 308):
            with WebhookStub(routes={"/alerts": (status, {"Location": "/v2/alerts"})}) as hook, \
                    caplog.at_level("INFO", logger="sca2lstm"):
                daily = Daily(notifier=Notifier(webhook=hook.url, retries=0),
                              now=lambda: dt.datetime(2026, 12, 7, 8, 0, tzinfo=dt.timezone.utc))
                with TestClient(create_app(data, tmp_path / f"db{status}.sqlite", live, token=TOKEN, daily=daily)) as c:
                    out = c.post("/daily_issue", headers=AUTH).json()
            assert out["delivery"]["webhook"] == "sent", (status, out)
            assert hook.paths == ["/alerts", "/v2/alerts"] and hook.received[1] == hook.received[0]
            assert hook.received[1]["alerts"][0]["station"] == "32006"
            assert f"moved (HTTP {status}) to http://127.0.0.1:{hook.port}/v2/alerts; sent there" in caplog.text
        with WebhookStub(routes={"/alerts": (301, {"Location": "https://hooks.example.org/alerts"})}) as hook:
            out = Notifier(webhook=hook.url, retries=2, pause=0.0).send({"day": "2026-12-07", "alerts": []})
        assert len(hook.received) == 1 and out["webhook"] == (
            "failed (final): the webhook URL moved (HTTP 301) to https://hooks.example.org/alerts; not followed to "
            "another host: set --alert_webhook to it")


def test_an_alert_one_channel_took_is_sent_again_only_on_the_other_under_its_id(pretrained_ckpt, data, issued,
                                                                                tmp_path):
    """The webhook takes the morning's alert but the mail server is down: the duty officer who reads only e-mail
    still gets it, in the 15-minute resends and at the next issue, by e-mail only, under the alert's first id;
    the webhook is not sent it again (before, one channel's 'sent' counted as heard: the e-mail never came)."""
    import asyncio

    from sca2lstm.serve import daily as daily_mod

    _levels(data, alert=(0.5 * float(issued["q05"].min()), None))
    clock = [dt.datetime(2026, 12, 7, 8, 0, tzinfo=dt.timezone.utc)]
    with WebhookStub() as hook, SMTPStub() as smtp, forecaster(pretrained_ckpt, data) as live:
        notifier = _notifier_with_mail_down(hook)
        daily = Daily(notifier=notifier, now=lambda: clock[0])
        with TestClient(create_app(data, tmp_path / "db.sqlite", live, token=TOKEN, daily=daily)) as c:
            first = c.post("/daily_issue", headers=AUTH).json()
            assert first["alerts"] == 1 and first["delivery"]["webhook"] == "sent"
            assert first["delivery"]["email"].startswith("failed: ")
            alert_id = hook.received[0]["alerts"][0]["id"]
            svc = c.app.state.service
            clock[0] += daily_mod.RESEND_AFTER  # the mail server still down: e-mail tried again, the webhook not
            again = asyncio.run(daily_mod.resend_undelivered(svc, daily))
            assert again["webhook"] is None and again["email"].startswith("failed: ") and len(hook.received) == 1
            clock[0] += dt.timedelta(days=1)  # the next morning the mail server is back; the warning stays
            notifier.smtp_port = smtp.port
            second = c.post("/daily_issue", headers=AUTH).json()
            assert second["alerts"] == 1 and second["delivery"] == {"webhook": None, "email": "sent"}
            assert len(hook.received) == 1 and len(smtp.received) == 1
            assert "station 32006: alert" in smtp.received[0][2] and "starts" in smtp.received[0][2]
            newest = c.get("/alerts").json()["alerts"][0]
            assert newest["detail"]["id"] == alert_id and newest["detail"]["resent_after_failed_delivery"] is True
            assert newest["delivery"] == {"webhook": None, "email": "sent"}
            assert asyncio.run(daily_mod.resend_undelivered(svc, daily)) is None
            clock[0] += dt.timedelta(days=1)  # heard on both: nothing more
            assert c.post("/daily_issue", headers=AUTH).json()["alerts"] == 0
            assert len(hook.received) == 1 and len(smtp.received) == 1


def test_a_database_from_before_per_channel_delivery_mails_no_alert_of_past_days(pretrained_ckpt, data, issued,
                                                                                tmp_path):
    """An alert stored when one channel's 'sent' counted for every channel (its webhook post went through, its
    mail failed) was handled then: the service upgraded to per-channel delivery does not mail it at its next
    issue weeks later, while the warning stays."""
    _levels(data, alert=(0.5 * float(issued["q05"].min()), None))
    clock = [dt.datetime(2026, 11, 20, 8, 0, tzinfo=dt.timezone.utc)]
    db = tmp_path / "db.sqlite"
    with WebhookStub() as hook, SMTPStub() as smtp, forecaster(pretrained_ckpt, data) as live:
        notifier = _notifier_with_mail_down(hook)
        daily = Daily(notifier=notifier, now=lambda: clock[0])
        with TestClient(create_app(data, db, live, token=TOKEN, daily=daily)) as c:
            first = c.post("/daily_issue", headers=AUTH).json()
        assert first["alerts"] == 1 and first["delivery"]["webhook"] == "sent"
        assert first["delivery"]["email"].startswith("failed: ")
        # the alerts table as the service wrote it before it tracked delivery per channel
        con = sqlite3.connect(db)
        con.execute("ALTER TABLE alerts DROP COLUMN per_channel")
        con.commit()
        con.close()
        clock[0] += dt.timedelta(days=17)
        notifier.smtp_port = smtp.port
        with TestClient(create_app(data, db, live, token=TOKEN, daily=daily)) as c:
            second = c.post("/daily_issue", headers=AUTH).json()
            assert second["stations"] == 3 and second["alerts"] == 0, second
            assert smtp.received == [] and len(hook.received) == 1
            assert c.get("/alerts").json()["alerts"][0]["delivery"] == first["delivery"]  # its record is kept


def _notifier_with_mail_down(hook, retries: int = 0) -> Notifier:
    """Alerts to ``hook`` and by mail through a port where no server listens (a mail server down), ``retries`` more
    tries each; a test sets ``smtp_port`` to a live stub's to bring the mail back."""
    dead = SMTPStub()
    port = dead.port
    dead.server.server_close()  # nothing listens there now
    return Notifier(webhook=hook.url, email_to=["duty@example.org"], smtp_host="127.0.0.1", smtp_port=port,
                    retries=retries, pause=0.0, timeout=2.0)


def test_an_alert_the_mail_server_missed_at_the_issue_is_mailed_within_the_day(pretrained_ckpt, data, issued,
                                                                              tmp_path):
    """The mail server down for a few minutes at the issue, the webhook up: the 15-minute resend mails the alert
    (marked, same id) and records both channels as sent; the webhook gets it once; /health counts the alerts a
    channel has not taken yet, so monitoring sees the resend got through."""
    import asyncio

    from sca2lstm.serve import daily as daily_mod

    _levels(data, alert=(0.5 * float(issued["q05"].min()), None))
    clock = [dt.datetime(2026, 12, 7, 8, 0, tzinfo=dt.timezone.utc)]
    with WebhookStub() as hook, SMTPStub() as smtp, forecaster(pretrained_ckpt, data) as live:
        notifier = _notifier_with_mail_down(hook)
        daily = Daily(notifier=notifier, now=lambda: clock[0])
        with TestClient(create_app(data, tmp_path / "db.sqlite", live, token=TOKEN, daily=daily)) as c:
            assert c.post("/daily_issue", headers=AUTH).json()["delivery"]["email"].startswith("failed: ")
            assert c.get("/health").json()["last_daily_issue"]["undelivered_alerts"] == 1
            notifier.smtp_port = smtp.port
            clock[0] += daily_mod.RESEND_AFTER
            assert asyncio.run(daily_mod.resend_undelivered(c.app.state.service, daily)) == {
                "webhook": None, "email": "sent"}
            stored = c.get("/alerts").json()["alerts"][0]
            # monitoring sees the resend got through (the issue's own delivery stays as it was at 08:00)
            last = c.get("/health").json()["last_daily_issue"]
            assert last["undelivered_alerts"] == 0 and last["delivery"]["email"].startswith("failed: ")
    assert len(hook.received) == 1 and len(smtp.received) == 1 and "station 32006" in smtp.received[0][2]
    assert stored["delivery"]["webhook"] == stored["delivery"]["email"] == "sent" and stored["delivery"]["resent_at"]
    assert stored["detail"]["id"] == hook.received[0]["alerts"][0]["id"]


def test_a_warning_that_rises_while_the_mail_missed_its_start_is_mailed_from_what_the_mail_said_last(
        pretrained_ckpt, data, issued, tmp_path):
    """The start of an alert reached the webhook only; the next morning it rises to danger: the webhook gets the
    rise from alert, the e-mail, which never said alert, the start of danger (each channel from what its readers
    last heard)."""
    q05 = float(issued["q05"].min())
    clock = [dt.datetime(2026, 12, 7, 8, 0, tzinfo=dt.timezone.utc)]
    with WebhookStub() as hook, SMTPStub() as smtp, forecaster(pretrained_ckpt, data) as live:
        notifier = _notifier_with_mail_down(hook)
        daily = Daily(notifier=notifier, now=lambda: clock[0])
        with TestClient(create_app(data, tmp_path / "db.sqlite", live, token=TOKEN, daily=daily)) as c:
            _levels(data, alert=(0.5 * q05, None), danger=(1e6, None))
            assert c.post("/daily_issue", headers=AUTH).json()["delivery"]["email"].startswith("failed: ")
            clock[0] += dt.timedelta(days=1)
            notifier.smtp_port = smtp.port
            _levels(data, alert=(0.5 * q05, None), danger=(0.8 * q05, None))
            out = c.post("/daily_issue", headers=AUTH).json()
            listed = c.get("/alerts").json()["alerts"][:2]
    assert out["alerts"] == 2 and out["delivery"] == {"webhook": "sent", "email": "sent"}
    assert [(a["change"], a["from_level"], a["to_level"]) for a in hook.received[1]["alerts"]] == [
        ("rise", "alert", "danger")]
    assert len(smtp.received) == 1 and "station 32006: danger" in smtp.received[0][2]
    assert "starts" in smtp.received[0][2] and "rises" not in smtp.received[0][2]
    assert {(a["change"], a["delivery"]["webhook"], a["delivery"]["email"]) for a in listed} == {
        ("rise", "sent", None), ("start", None, "sent")}


def test_the_alert_mail_says_day_and_probability_in_words_and_that_it_is_sent_again(pretrained_ckpt, data, issued,
                                                                                    tmp_path):
    """The duty forecaster reads the mail: the first day by its date and as the forecast's day, the probability
    in words; a mail sent again after the mail server missed the issue says so, in its subject too (before, the
    08:15 mail looked like a new change, with 'lead 1' and 'P 100%')."""
    import asyncio
    from email import message_from_string, policy

    from sca2lstm.serve import daily as daily_mod

    _levels(data, alert=(0.5 * float(issued["q05"].min()), None))
    clock = [dt.datetime(2026, 12, 7, 8, 0, tzinfo=dt.timezone.utc)]
    with SMTPStub() as smtp, forecaster(pretrained_ckpt, data) as live:
        notifier = Notifier(email_to=["duty@example.org"], smtp_host="127.0.0.1", smtp_port=smtp.port, retries=0)
        daily = Daily(notifier=notifier, now=lambda: clock[0])
        with TestClient(create_app(data, tmp_path / "db.sqlite", live, token=TOKEN, daily=daily)) as c:
            assert c.post("/daily_issue", headers=AUTH).json()["delivery"] == {"webhook": None, "email": "sent"}
            # the stored alert as if the mail server had refused it: the 15-minute resend mails it again
            svc = c.app.state.service
            alert = svc.store.alerts()[0]
            svc.store.set_delivery({alert["id"]: {"webhook": None, "email": "failed: ConnectionRefusedError"}})
            clock[0] += daily_mod.RESEND_AFTER
            asyncio.run(daily_mod.resend_undelivered(svc, daily))
    mails = [message_from_string(m[2], policy=policy.default) for m in smtp.received]
    assert [m["Subject"] for m in mails] == ["sca2lstm: 1 warning change(s) on 2026-12-07: 32006 start",
                                             "sca2lstm: 1 warning change(s) on 2026-12-07: 32006 start (sent again)"]
    first, again = (m.get_content() for m in mails)
    d = alert["detail"]
    said = (f"station 32006: alert ({d['level_value']:.1f} m3/s) starts, from {d['valid_date']} (day "
            f"{d['first_lead']} of the forecast), probability {d['probability']:.0%}")
    assert said in first and "SENT AGAIN" not in first
    assert f"{said}; ON OLD DATA" in again and again.rstrip().endswith(
        "; SENT AGAIN: it had not reached every receiver when first sent")


def _alert_through_curve(pretrained_ckpt, data, tmp_path, level, language: str = "en") -> tuple[dict, str]:
    """The daily issue of station 32006 given the rating curve Q = 10 h^2 and the alert ``level``
    (:class:`WarningLevel`): the alert the webhook received and the text of the mail, in ``language``."""
    from email import message_from_string, policy

    write_station_meta(data, StationMeta("32006", warning_levels={"alert": level}, rating_curve=CURVE))
    try:
        with WebhookStub() as hook, SMTPStub() as smtp, forecaster(pretrained_ckpt, data) as live:
            notifier = Notifier(webhook=hook.url, email_to=["duty@example.org"], smtp_host="127.0.0.1",
                                smtp_port=smtp.port, retries=0, language=language)
            daily = Daily(notifier=notifier, now=lambda: dt.datetime(2026, 12, 7, 8, 0, tzinfo=dt.timezone.utc))
            with TestClient(create_app(data, tmp_path / "db.sqlite", live, token=TOKEN, daily=daily)) as c:
                assert c.post("/daily_issue", headers=AUTH).json()["alerts"] == 1
    finally:
        _levels(data)  # the other tests' 32006 has no rating curve
    return (hook.received[0]["alerts"][0],
            message_from_string(smtp.received[0][2], policy=policy.default).get_content())


def test_the_alert_mail_gives_a_level_set_as_a_water_level_as_one(pretrained_ckpt, data, issued, tmp_path):
    """A station whose alert level was set as a water level (m, through its rating curve): the mail and the webhook
    give it as that water level beside the flow, which is what the gauge reader knows the level by (before, only
    the flow the service converted it to)."""
    stage = round((0.5 * float(issued["q05"].min()) / 10.0) ** 0.5, 3)  # Q = 10 h^2
    sent, text = _alert_through_curve(pretrained_ckpt, data, tmp_path, WarningLevel(stage, "m", None))
    assert sent["level_stage_m"] == stage
    assert f"station 32006: alert ({10.0 * stage ** 2:.1f} m3/s, water level {stage:g} m) starts" in text, text


@pytest.mark.parametrize("lang,said", [
    ("en", "station 32006: alert ({flow:.1f} m3/s, water level {stage:g} m) starts"),
    ("zh", "测站 32006：警戒级（{flow:.1f} m3/s，水位 {stage:g} m）预警开始"),
])
def test_the_alert_mail_gives_a_level_set_as_a_flow_as_a_water_level_through_the_curve(
        lang, said, pretrained_ckpt, data, issued, tmp_path):
    """A station with a rating curve whose alert level was set as a flow (m3/s): the mail and the webhook give its
    water level too, through the curve (Q = 10 h^2: h = sqrt(Q / 10), to the centimetre), as the page does (before,
    only a level set as a water level was given as one)."""
    flow = round(0.5 * float(issued["q05"].min()), 2)
    stage = round((flow / 10.0) ** 0.5, 2)
    sent, text = _alert_through_curve(pretrained_ckpt, data, tmp_path, WarningLevel(flow, "m3/s", None), lang)
    assert sent["level_value"] == flow and sent["level_stage_m"] == stage
    assert said.format(flow=flow, stage=stage) in text, text


def _as_stored_before_water_levels(db, forecast_id: int) -> None:
    """The stored forecast ``forecast_id`` rewritten as a service stored one before its levels carried their water
    level (``stage``) and its leads their ``quantiles`` and ``stage_quantiles``: what an upgraded service finds."""
    con = sqlite3.connect(db)
    table, levels = con.execute("SELECT table_json, levels_json FROM forecasts WHERE id = ?", (forecast_id,)).fetchone()
    table = [{k: v for k, v in lead.items() if k not in ("quantiles", "stage_quantiles")} for lead in json.loads(table)]
    levels = {n: {k: v for k, v in lv.items() if k != "stage"} for n, lv in json.loads(levels).items()}
    con.execute("UPDATE forecasts SET table_json = ?, levels_json = ? WHERE id = ?",
                (json.dumps(table), json.dumps(levels), forecast_id))
    con.commit()
    con.close()


@pytest.mark.parametrize("curve", [CURVE, None], ids=["rating_curve", "no_curve"])
def test_a_forecast_stored_before_levels_carried_water_levels_is_mailed_and_shown_with_them(
        curve, pretrained_ckpt, data, issued, tmp_path):
    """A forecast stored by a service from before levels carried ``stage`` (and leads ``quantiles``), found again by
    the upgraded service's daily issue (same data, model and calibration): its alert mail gave the flow alone, and the
    page and /warnings no water level. Now each level's water level is its flow through the station's curve (Q = 10
    h^2: h = sqrt(Q / 10), to the centimetre in the mail), as for a forecast issued today; without a curve, none."""
    from email import message_from_string, policy

    flow = round(0.5 * float(issued["q05"].min()), 2)  # below every lead's q05: warns from day 1
    write_station_meta(data, StationMeta("32006", warning_levels={"alert": WarningLevel(flow, "m3/s", None)},
                                         rating_curve=curve))
    db = tmp_path / "db.sqlite"
    try:
        with forecaster(pretrained_ckpt, data) as live:
            with TestClient(create_app(data, db, live, token=TOKEN)) as c:  # the service before its upgrade
                old = c.get("/stations/32006/forecast", params={"leads": live.max_leads()}, headers=AUTH).json()
            _as_stored_before_water_levels(db, old["id"])
            with WebhookStub() as hook, SMTPStub() as smtp:
                notifier = Notifier(webhook=hook.url, email_to=["duty@example.org"], smtp_host="127.0.0.1",
                                    smtp_port=smtp.port, retries=0)
                daily = Daily(notifier=notifier, now=lambda: dt.datetime(2026, 12, 7, 8, 0, tzinfo=dt.timezone.utc))
                with TestClient(create_app(data, db, live, token=TOKEN, daily=daily)) as c:
                    assert c.post("/daily_issue", headers=AUTH).json()["alerts"] == 1
                    fc = c.get("/stations/32006/forecast", params={"leads": live.max_leads()}).json()
                    warned = next(w for w in c.get("/warnings").json()["stations"] if w["station"] == "32006")
                    [listed] = c.get("/stations/32006/forecasts").json()["forecasts"]
    finally:
        _levels(data)  # the other tests' 32006 has no rating curve
    sent = hook.received[0]["alerts"][0]
    text = message_from_string(smtp.received[0][2], policy=policy.default).get_content()
    assert sent["forecast_id"] == fc["id"] == warned["forecast_id"] == old["id"]  # the stored one, not issued again
    stage = round((flow / 10.0) ** 0.5, 2) if curve else None
    assert sent["level_value"] == flow and sent["level_stage_m"] == stage
    if curve:
        assert f"station 32006: alert ({flow:.1f} m3/s, water level {stage:g} m) starts" in text, text
        assert fc["levels"]["alert"]["stage"] == pytest.approx((flow / 10.0) ** 0.5, rel=1e-9)
    else:
        assert f"station 32006: alert ({flow:.1f} m3/s) starts" in text and "water level" not in text, text
        assert fc["levels"]["alert"]["stage"] is None
    assert warned["levels"] == fc["levels"] and fc["levels"]["alert"]["value"] == flow
    assert listed["id"] == old["id"]  # the issued forecasts' list too (the page's table of them)
    for lead in fc["forecast"] + listed["forecast"]:  # the leads' levels as today's answer gives them
        assert lead["quantiles"] == {q: lead[q] for q in ("q05", "q25", "q75", "q95")}
        assert lead.get("stage_quantiles") == ({q: lead[f"stage_{q}"] for q in ("q05", "q25", "q75", "q95")}
                                               if curve else None)


def _mailed(text: str):
    """A message as the stub SMTP server received it, parsed as a mail reader parses it."""
    import email
    import email.policy

    return email.message_from_string(text, policy=email.policy.default)


def test_alerts_are_written_in_chinese_with_alert_language_zh_and_in_english_by_default(pretrained_ckpt,
                                                                                        tiny_data_dir, tmp_path):
    """The same first issue (a warning that starts, on old data, for a station that shares only its id with a
    pretraining basin: a note) mailed and posted by a service whose alerts are in Chinese and by one left at the
    default: the Chinese mail is 7-bit ASCII on the wire (its subject RFC 2047 words, its body base64 UTF-8) and reads
    in Chinese, its webhook's notes are Chinese; the default's are English, as before."""
    data = tmp_path / "ops"
    shutil.copytree(tiny_data_dir, data)
    (data / "meta").mkdir(exist_ok=True)
    (data / "meta" / "32006.json").write_text(json.dumps({
        "station_id": "32006", "source": "/srv/incoming/river_32006.csv", "source_sha256": "ab" * 32,
        "warning_levels": {"alert": {"value": 1e-6, "unit": "m3/s"}}}))  # below every quantile: warns from day 1
    clock = dt.datetime(2026, 12, 7, 8, 0, tzinfo=dt.timezone.utc)
    sent = {}
    with forecaster(pretrained_ckpt, data) as live:
        for lang in ("zh", None):
            with WebhookStub() as hook, SMTPStub() as smtp:
                notifier = Notifier(webhook=hook.url, email_to=["duty@example.org"], smtp_host="127.0.0.1",
                                    smtp_port=smtp.port, retries=0, **({"language": lang} if lang else {}))
                daily = Daily(at=None, notifier=notifier, now=lambda: clock)
                with TestClient(create_app(data, tmp_path / f"{lang}.sqlite", live, token=TOKEN, daily=daily)) as c:
                    out = c.post("/daily_issue", headers=AUTH).json()
                assert out["alerts"] == 1 and out["delivery"] == {"webhook": "sent", "email": "sent"}, out
                sent[lang] = (smtp.received[0][2], hook.received[0]["alerts"][0])
    age = (dt.date(2026, 12, 7) - dt.date(1977, 12, 31)).days
    raw, alert = sent["zh"]
    assert raw.isascii()  # what every mail server carries unchanged
    mail = _mailed(raw)
    assert mail["Subject"] == "sca2lstm：2026-12-07 预警变化 1 项：32006 开始"
    assert mail.get_content_charset() == "utf-8" and mail["Content-Transfer-Encoding"] == "base64"
    body = mail.get_content().replace("\r\n", "\n")  # the wire's line ends
    assert body.startswith("2026-12-07 每日预报发布（2026-12-07T08:00:00+00:00）：\n\n测站 32006：警戒级（0.0 m3/s）预警开始，"
                           f"自 {alert['valid_date']} 起（预见期第 1 天），超过概率 "), body
    assert body.rstrip().endswith(f"；注意：依据的是旧数据，最近一次实测流量为 1977-12-31，已过 {age} 天"), body
    assert alert["change"] == "start" and len(alert["notes"]) == 1
    assert alert["notes"][0].startswith("ops 中的测站 32006 导入自 river_32006.csv；模型预训练时用的是另一个同为 32006 的流域"), alert
    raw, alert = sent[None]
    mail = _mailed(raw)
    assert mail["Subject"] == "sca2lstm: 1 warning change(s) on 2026-12-07: 32006 start"
    body = mail.get_content().replace("\r\n", "\n")  # the wire's line ends
    assert body.startswith("Daily issue of 2026-12-07 (2026-12-07T08:00:00+00:00):\n\nstation 32006: alert (0.0 m3/s) "
                           f"starts, from {alert['valid_date']} (day 1 of the forecast), probability "), body
    assert body.rstrip().endswith(f"; ON OLD DATA: the last observed flow is of 1977-12-31, {age} days ago"), body
    assert alert["notes"][0].startswith("basin 32006 in ops is a station imported from river_32006.csv"), alert


def test_a_station_is_issued_from_its_data_when_its_turn_comes_and_one_posted_to_after_its_issue_is_named(
        pretrained_ckpt, data, tmp_path):
    """A catch-up issue runs while the morning's posts still arrive. Each station's data are taken when its turn
    comes, not when the issue began: a day posted for the last station while the first is issued is read. The
    first station, posted to after its forecast was made, keeps the forecast of the data it was issued from (the
    day's record and its alerts), and /health names it (its data changed since its issue) for monitoring."""
    from sca2lstm.serve import weather as weather_mod

    clock = [dt.datetime(1978, 1, 2, 8, 0, tzinfo=dt.timezone.utc)]
    with forecaster(pretrained_ckpt, data) as live:
        daily = Daily(at=None, now=lambda: clock[0])
        with TestClient(create_app(data, tmp_path / "db.sqlite", live, token=TOKEN, daily=daily)) as c:
            svc = c.app.state.service
            ids = list(svc.stations.ids)
            first, last = ids[0], ids[-1]
            fetch = weather_mod.WeatherForecasts.fetch

            def arriving(self, station, settings):  # the posts of the morning, as the issue reaches each station
                if station == ids[1]:
                    for s in (first, last):
                        r = c.post(f"/stations/{s}/observations", headers=AUTH, json={"observations": [
                            {"date": "1978-01-01", "precipitation": 1.0, "temperature": 5.0, "discharge": 3.0}]})
                        assert r.status_code == 200, r.text
                return fetch(self, station, settings)

            svc.weather.fetch = arriving.__get__(svc.weather)
            assert c.post("/daily_issue", headers=AUTH).json()["stations"] == len(ids)
            issued = {r["station"]: r for s in (first, last) for r in svc.store.forecasts(s, 10)
                      if r["origin"] == "daily"}
            health = c.get("/health").json()["last_daily_issue"]
    assert issued[last]["issue_date"] == "1978-01-01"       # posted before its turn: read
    assert issued[first]["issue_date"] == ISSUE             # issued before the post
    assert health["posted_since_issue"] == [first]


def test_a_station_posted_to_after_the_daily_issue_is_issued_again_that_morning_and_its_rise_alerted_once(
        pretrained_ckpt, data, issued, tmp_path):
    """An observer posts at 09:10, after the 08:00 issue (and corrects the day at 09:12): once the posts have stopped
    for REISSUE_QUIET the station's forecast of the day is issued again, its recorded warning raised and the rise
    alerted that morning, once; the start alert the webhook missed at 08:00 is replaced by it (not sent again after
    it), /health no longer names the station, and issued.csv has the latest forecast of the issue date. A later post
    that leaves the warning as it is issues again without a second alert. The levels are set after the issue so
    that the re-issue's warning rises whatever the tiny model makes of one posted day."""
    import asyncio

    import pandas as pd

    from sca2lstm.serve import daily as daily_mod

    low = 0.5 * float(issued["q05"].min())
    _levels(data, alert=(low, None), danger=(1e6, None))
    clock = [dt.datetime(1978, 1, 2, 8, 0, tzinfo=dt.timezone.utc)]
    at = lambda h, m: clock.__setitem__(0, dt.datetime(1978, 1, 2, h, m, tzinfo=dt.timezone.utc))  # noqa: E731
    with WebhookStub(status=503) as hook, forecaster(pretrained_ckpt, data) as live:
        daily = Daily(notifier=Notifier(webhook=hook.url, retries=0, timeout=2.0), now=lambda: clock[0])
        with TestClient(create_app(data, tmp_path / "db.sqlite", live, token=TOKEN, daily=daily)) as c:
            svc = c.app.state.service
            reissue = lambda: asyncio.run(daily_mod.reissue_posted(svc, daily))  # noqa: E731

            def post(flow):
                r = c.post("/stations/32006/observations", headers=AUTH, json={"observations": [
                    {"date": "1978-01-01", "precipitation": 1.0, "temperature": 5.0, "discharge": flow}]})
                assert r.status_code == 200, r.text

            first = c.post("/daily_issue", headers=AUTH).json()
            assert first["alerts"] == 1 and first["delivery"]["webhook"].startswith("failed")
            hook.status = 200
            assert reissue() == []                                   # nothing posted since the issue
            at(9, 10)
            post(3.0)
            assert c.get("/health").json()["last_daily_issue"]["posted_since_issue"] == ["32006"]
            assert reissue() == []                                   # posted just now: more may follow
            at(9, 12)
            post(3.5)                                                # the observer corrects the day
            at(9, 14)
            assert reissue() == []                                   # the data changed since the last look
            # the forecast the re-issue will make (anonymous: not stored), to set a danger level it exceeds
            now_q05 = min(r["q05"] for r in c.get("/stations/32006/forecast",
                                                  params={"leads": svc.forecaster.max_leads()}).json()["forecast"])
            _levels(data, alert=(0.25 * min(low, 2 * now_q05), None), danger=(0.5 * now_q05, None))
            at(9, 19)
            assert reissue() == ["32006"]
            assert len(hook.received) == 2                           # the 08:00 try and the re-issue's alert
            sent = hook.received[1]["alerts"]
            # the webhook never took the 08:00 start: from what it last heard (nothing), the danger starts
            assert [(a["station"], a["change"], a["from_level"], a["to_level"]) for a in sent] == [
                ("32006", "start", None, "danger")]
            assert sent[0]["issue_date"] == "1978-01-01" and sent[0]["resent_after_failed_delivery"]
            listed = c.get("/alerts").json()["alerts"]
            assert [a["to_level"] for a in listed] == ["danger", "alert"]
            assert listed[0]["delivery"]["webhook"] == "sent" and listed[1]["delivery"]["replaced_by"] == sent[0]["id"]
            at(9, 40)
            assert asyncio.run(daily_mod.resend_undelivered(svc, daily)) is None   # the replaced alert stays unsent
            health = c.get("/health").json()["last_daily_issue"]
            assert health["posted_since_issue"] == [] and health["undelivered_alerts"] == 0
            assert [(r["station"], r["level"], r["alerts"]) for r in health["reissued"]] == [("32006", "danger", 1)]
            w = svc.store.issued_warning("1978-01-02", "32006")
            latest = next(r for r in svc.store.forecasts("32006", 10) if r["origin"] == "daily")
            assert (w["level"], w["forecast_id"]) == ("danger", latest["id"]) and latest["issue_date"] == "1978-01-01"
            at(9, 50)
            assert reissue() == []                                   # nothing posted since the re-issue
            post(3.6)                                                # another correction: the warning stays danger
            assert reissue() == []
            at(9, 56)
            assert reissue() == ["32006"] and len(hook.received) == 2    # issued again, not alerted again
            table = pd.read_csv(io.StringIO(c.get("/stations/32006/issued.csv").text))
            newest = next(r for r in svc.store.forecasts("32006", 10) if r["origin"] == "daily")
            assert newest["id"] != latest["id"] and svc.store.issued_warning("1978-01-02", "32006")["forecast_id"] == (
                newest["id"])
    # issued.csv: the morning's forecast of 1977-12-31 and, for 1978-01-01, the latest of its forecasts
    assert sorted(set(table["issue_date"])) == [ISSUE, "1978-01-01"]
    mine = table[table["issue_date"] == "1978-01-01"].sort_values("lead_days")
    # written with %.4f: half the last digit off, and a hair for the float the text is read back into
    assert mine["median"].tolist() == pytest.approx([r["median"] for r in newest["table"]], abs=0.5e-4 + 1e-9)


def test_warning_levels_set_after_the_daily_issue_are_issued_again_that_morning_and_alerted_once(
        pretrained_ckpt, data, issued, tmp_path):
    """The duty forecaster lowers the station's warning level (PUT, with the token) at 09:10, after the 08:00 issue
    that warned on nothing: once the levels have stayed as they are for REISSUE_QUIET the station is issued again,
    as after a post, so the warning on the new level is alerted that morning, once; /health names the station
    until then. A second change that leaves the warning as it is issues again without a second alert."""
    import asyncio

    import pandas as pd

    from sca2lstm.serve import daily as daily_mod

    _levels(data, alert=(1e6, None))                           # the issue's level: never reached
    clock = [dt.datetime(1978, 1, 2, 8, 0, tzinfo=dt.timezone.utc)]
    at = lambda h, m: clock.__setitem__(0, dt.datetime(1978, 1, 2, h, m, tzinfo=dt.timezone.utc))  # noqa: E731
    with WebhookStub() as hook, forecaster(pretrained_ckpt, data) as live:
        daily = Daily(notifier=Notifier(webhook=hook.url, retries=0, timeout=2.0), now=lambda: clock[0])
        with TestClient(create_app(data, tmp_path / "db.sqlite", live, token=TOKEN, daily=daily)) as c:
            svc = c.app.state.service
            reissue = lambda: asyncio.run(daily_mod.reissue_posted(svc, daily))  # noqa: E731

            def put(value):
                r = c.put("/stations/32006/levels", headers=AUTH,
                          json={"levels": {"alert": value}, "warn_probability": {"alert": 0.5}})
                assert r.status_code == 200, r.text

            first = c.post("/daily_issue", headers=AUTH).json()
            assert first["alerts"] == 0 and hook.received == []
            # a level the forecast exceeds at every lead (below its lowest q05) that the record allows (not below
            # its lowest daily flow)
            record_min = float(svc.stations.state("32006").timeseries["discharge_vol"].min())
            q05 = float(issued["q05"].min())
            assert record_min < q05
            at(9, 10)
            put(max(record_min, 0.5 * q05))
            assert c.get("/health").json()["last_daily_issue"]["posted_since_issue"] == ["32006"]
            assert reissue() == []                                   # set just now: a correction may follow
            at(9, 16)
            assert reissue() == ["32006"]
            sent = [a for payload in hook.received for a in payload["alerts"]]
            assert [(a["station"], a["change"], a["from_level"], a["to_level"]) for a in sent] == [
                ("32006", "start", None, "alert")]
            assert sent[0]["issue_date"] == ISSUE and sent[0]["level_value"] == max(record_min, 0.5 * q05)
            health = c.get("/health").json()["last_daily_issue"]
            assert health["posted_since_issue"] == []
            assert [(r["station"], r["level"], r["alerts"]) for r in health["reissued"]] == [("32006", "alert", 1)]
            w = svc.store.issued_warning("1978-01-02", "32006")
            latest = next(r for r in svc.store.forecasts("32006", 10) if r["origin"] == "daily")
            assert (w["level"], w["forecast_id"]) == ("alert", latest["id"])
            assert latest["levels"]["alert"]["value"] == max(record_min, 0.5 * q05)
            table = pd.read_csv(io.StringIO(c.get("/stations/32006/issued.csv").text))
            at(9, 30)
            put(max(record_min, 0.4 * q05))                          # moved again: still warned
            assert reissue() == []
            at(9, 36)
            assert reissue() == ["32006"] and len(sent) == len([a for p in hook.received for a in p["alerts"]])
    # issued.csv: the issue date's latest forecast, warned on the level set at 09:10
    assert table["issue_date"].tolist() == [ISSUE] * len(table) and table["warn_alert"].all()


def test_the_daily_loop_looks_for_stations_posted_to_since_the_issue_at_each_pass(monkeypatch):
    """The server's loop (run_daily), after the morning's issue, looks at every pass (each ``poll``) for stations to
    issue again, beside the resends: a post at 09:10 is re-issued within minutes, not at the next morning's issue."""
    import asyncio
    from types import SimpleNamespace

    from sca2lstm.serve import daily as daily_mod

    clock = [dt.datetime(2026, 12, 7, 7, 59, tzinfo=dt.timezone.utc)]
    calls = []

    async def record(name, *_args):
        calls.append((name, clock[0].strftime("%H:%M")))

    async def sleep(seconds):  # the loop's wait: the clock moves on a minute; three passes are enough
        clock[0] += dt.timedelta(minutes=1)
        if clock[0].minute == 3:
            raise asyncio.CancelledError

    monkeypatch.setattr(daily_mod, "issue_daily", lambda *a: record("issue", *a))
    monkeypatch.setattr(daily_mod, "resend_undelivered", lambda *a: record("resend", *a))
    monkeypatch.setattr(daily_mod, "reissue_posted", lambda *a: record("reissue", *a))
    monkeypatch.setattr(daily_mod, "asyncio", SimpleNamespace(sleep=sleep))
    daily = Daily(at=dt.time(8, 0), tz=ZoneInfo("UTC"), now=lambda: clock[0])
    with pytest.raises(asyncio.CancelledError):
        asyncio.run(daily_mod.run_daily(None, daily, poll=60))
    assert calls == [("issue", "08:00"), ("reissue", "08:00"), ("issue", "08:01"), ("reissue", "08:01"),
                     ("issue", "08:02"), ("reissue", "08:02")]


def test_a_forecast_a_token_holder_asked_for_after_a_post_and_the_re_issue_then_issued_is_in_the_issued_record(
        pretrained_ckpt, data, tmp_path):
    """The duty forecaster posts the late reading and looks at the station's forecast with the token (stored, origin
    'request'); the re-issue after the post makes the same forecast (the same key) and warns on it: it is the daily
    issue's, so issued.csv (the daily issue's record) has it, and the day's warning points at it."""
    import asyncio

    from sca2lstm.serve import daily as daily_mod

    _levels(data, alert=(1e6, None))
    clock = [dt.datetime(1978, 1, 2, 8, 0, tzinfo=dt.timezone.utc)]
    with forecaster(pretrained_ckpt, data) as live:
        daily = Daily(now=lambda: clock[0])
        with TestClient(create_app(data, tmp_path / "db.sqlite", live, token=TOKEN, daily=daily)) as c:
            svc = c.app.state.service
            assert c.post("/daily_issue", headers=AUTH).json()["stations"] == 3
            clock[0] += dt.timedelta(minutes=70)
            r = c.post("/stations/32006/observations", headers=AUTH, json={"observations": [
                {"date": "1978-01-01", "precipitation": 1.0, "temperature": 5.0, "discharge": 3.0}]})
            assert r.status_code == 200, r.text
            asked = c.get("/stations/32006/forecast", headers=AUTH, params={"leads": svc.forecaster.max_leads()})
            assert asked.json()["issue_date"] == "1978-01-01"
            assert asyncio.run(daily_mod.reissue_posted(svc, daily)) == []
            clock[0] += daily_mod.REISSUE_QUIET
            assert asyncio.run(daily_mod.reissue_posted(svc, daily)) == ["32006"]
            assert svc.store.issued_warning("1978-01-02", "32006")["forecast_id"] == asked.json()["id"]
            issued = c.get("/stations/32006/issued.csv").text.splitlines()
    assert sorted({line.split(",")[0] for line in issued[1:]}) == [ISSUE, "1978-01-01"]


def test_a_re_issue_that_fails_is_tried_again_after_the_next_post_not_at_every_pass(pretrained_ckpt, data, tmp_path,
                                                                                   caplog):
    """A station whose re-issue after a post fails keeps the day's forecast (and stays in posted_since_issue); the
    loop does not try it again at every pass (a warning in the log every minute all day), only after its next post."""
    import asyncio

    from sca2lstm.serve import daily as daily_mod

    _levels(data, alert=(1e6, None))
    clock = [dt.datetime(1978, 1, 2, 8, 0, tzinfo=dt.timezone.utc)]
    with forecaster(pretrained_ckpt, data) as live:
        daily = Daily(now=lambda: clock[0])
        with TestClient(create_app(data, tmp_path / "db.sqlite", live, token=TOKEN, daily=daily)) as c:
            svc = c.app.state.service
            assert c.post("/daily_issue", headers=AUTH).json()["stations"] == 3
            tries = []

            async def failing(station, *args, **kw):
                tries.append(clock[0].strftime("%H:%M"))
                raise RuntimeError("worker gone")

            svc.forecast = failing

            def post(flow):
                r = c.post("/stations/32006/observations", headers=AUTH, json={"observations": [
                    {"date": "1978-01-01", "precipitation": 1.0, "temperature": 5.0, "discharge": flow}]})
                assert r.status_code == 200, r.text

            post(3.0)
            for minute in range(0, 30, 1):  # the loop's passes, a minute apart
                clock[0] = dt.datetime(1978, 1, 2, 9, minute, tzinfo=dt.timezone.utc)
                if minute == 20:
                    post(3.5)
                assert asyncio.run(daily_mod.reissue_posted(svc, daily)) == []
            assert tries == ["09:05", "09:25"]
            assert c.get("/health").json()["last_daily_issue"]["posted_since_issue"] == ["32006"]
    said = [r.getMessage() for r in caplog.records if "could not be issued again" in r.getMessage()]
    assert len(said) == 2 and "RuntimeError: worker gone" in said[0] and "tried again after its next post" in said[0]


def test_a_station_that_failed_in_the_daily_issue_and_is_posted_to_is_issued_and_alerted_that_morning(
        pretrained_ckpt, data, tmp_path):
    """A station that failed at 08:00 (here its forecast is made to fail once) gets its observer's post at 09:10: it
    is issued that morning, its warning alerted from what its receivers last heard (nothing: a start), and the day's
    record no longer lists it as failed. The alert level is set from the forecast the re-issue will make, so that it
    warns whatever the tiny model makes of the posted day."""
    import asyncio

    from sca2lstm.serve import daily as daily_mod

    _levels(data, alert=(1e6, None))
    clock = [dt.datetime(1978, 1, 2, 8, 0, tzinfo=dt.timezone.utc)]
    with WebhookStub() as hook, forecaster(pretrained_ckpt, data) as live:
        daily = Daily(notifier=Notifier(webhook=hook.url, retries=0, timeout=2.0), now=lambda: clock[0])
        with TestClient(create_app(data, tmp_path / "db.sqlite", live, token=TOKEN, daily=daily)) as c:
            svc = c.app.state.service
            forecast = svc.forecast

            async def failing_32006(station, *args, **kw):
                if station == "32006":
                    raise RuntimeError("worker gone")
                return await forecast(station, *args, **kw)

            svc.forecast = failing_32006
            assert c.post("/daily_issue", headers=AUTH).json()["failed"] == ["32006"]
            svc.forecast = forecast
            assert asyncio.run(daily_mod.reissue_posted(svc, daily)) == []     # failed, but nothing posted since
            clock[0] = dt.datetime(1978, 1, 2, 9, 10, tzinfo=dt.timezone.utc)
            r = c.post("/stations/32006/observations", headers=AUTH, json={"observations": [
                {"date": "1978-01-01", "precipitation": 1.0, "temperature": 5.0, "discharge": 3.0}]})
            assert r.status_code == 200, r.text
            assert c.get("/health").json()["last_daily_issue"]["posted_since_issue"] == ["32006"]
            now_q05 = min(r["q05"] for r in c.get("/stations/32006/forecast",
                                                  params={"leads": svc.forecaster.max_leads()}).json()["forecast"])
            _levels(data, alert=(0.5 * now_q05, None))
            assert asyncio.run(daily_mod.reissue_posted(svc, daily)) == []
            clock[0] += daily_mod.REISSUE_QUIET
            assert asyncio.run(daily_mod.reissue_posted(svc, daily)) == ["32006"]
            assert [(a["change"], a["from_level"], a["to_level"]) for a in hook.received[0]["alerts"]] == [
                ("start", None, "alert")]
            health = c.get("/health").json()["last_daily_issue"]
            assert (health["failed"], health["stations"], health["posted_since_issue"]) == ([], 3, [])
            w = svc.store.issued_warning("1978-01-02", "32006")
            assert (w["error"], w["level"]) == (None, "alert") and w["forecast_id"]
