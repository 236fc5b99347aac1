"""The forecast service (sca2lstm serve) through FastAPI's test client, with the tiny trained model.

Every forecast the API gives is checked against issue_forecast on the same data (the file, with the
posted days laid over by hand): equal to the last bit. Exact equality is right here, whatever the CPU: the
service runs issue_forecast itself (through live.forecast_station, in the calling thread) on the same windows in
one batch, as the command does, so the same operations run in the same order on the same numbers.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
import sqlite3
import time
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from serve_helpers import forecaster, older_database

from sca2lstm.checkpoint import load_model
from sca2lstm.data import reader
from sca2lstm.evaluation.operational import HISTORY_DAYS, history_days
from sca2lstm.evaluation.reforecast import warned_forecast
from sca2lstm.evaluation.warn import lead_warnings
from sca2lstm.serve.app import create_app, table_rows

TOKEN = "s3cret-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def live(pretrained_ckpt, tiny_data_dir):
    with forecaster(pretrained_ckpt, tiny_data_dir) as f:
        yield f


@pytest.fixture(scope="module")
def bundle(pretrained_ckpt):
    bundle = load_model(pretrained_ckpt)
    bundle[3]["source_path"] = str(pretrained_ckpt)  # where _expected finds the calibration beside it
    return bundle


def _counting(live, monkeypatch) -> list:
    """Record each model run of ``live`` (station, issue day) and let it run."""
    runs = []
    real = live.submit

    def submit(station, ts, data_key, issue_date, leads, weather_forecast=None, model=None):
        runs.append((station, str(issue_date)[:10]))
        return real(station, ts, data_key, issue_date, leads, weather_forecast, model)

    monkeypatch.setattr(live, "submit", submit)
    return runs


@pytest.fixture()
def service(live, tiny_data_dir, tmp_path, monkeypatch):
    db = tmp_path / "serve.sqlite"
    runs = _counting(live, monkeypatch)
    app = create_app(tiny_data_dir, db, live, token=TOKEN)
    with TestClient(app) as client:
        yield SimpleNamespace(client=client, runs=runs, db=db, data_dir=tiny_data_dir)


def _rows(db) -> tuple[int, int, int]:
    """(observation rows, data-version rows, forecast rows) straight from the database file."""
    con = sqlite3.connect(db)
    try:
        return tuple(con.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]
                     for t in ("observations", "data_versions", "forecasts"))
    finally:
        con.close()


def _expected(bundle, data_dir, station, issue, leads, ts=None) -> list[dict]:
    """The rows of the forecast ``sca2lstm forecast`` issues (warned_forecast: blended per lead, bounded by
    the recession, with the station's warnings), as the API gives them (``ts``: the station's data,
    default its file)."""
    ts = reader.read_timeseries(data_dir, station) if ts is None else ts
    fc, warnings, _ = warned_forecast(bundle, station, data_dir=data_dir, issue_date=issue, leads=leads,
                                      timeseries=ts, model_path=bundle[3]["source_path"])
    return table_rows(fc.table, *lead_warnings(fc.table, warnings.levels))


def test_health_shows_no_path_or_file_name(service, pretrained_ckpt):
    r = service.client.get("/health")
    h = r.json()
    assert h["status"] == "ok" and h["writes_enabled"] is True and h["stations"] == 3
    assert h["fine_tuned_stations"] == 0 and len(h["model_sha256"]) == 64
    for leak in (str(pretrained_ckpt.parent), pretrained_ckpt.name, pretrained_ckpt.stem, ".pth", "/"):
        assert leak not in r.text, leak
    ids = [s["id"] for s in service.client.get("/stations").json()]
    assert ids == reader.list_basins(service.data_dir)


def test_posted_day_overlays_the_file_and_last_post_wins(service):
    c = service.client
    file = reader.read_timeseries(service.data_dir, "32006")
    day = "1977-06-15"
    r = c.post("/stations/32006/observations", headers=AUTH,
               json={"observations": [{"date": day, "discharge": 12.5}]})
    assert r.status_code == 200, r.text
    assert r.json() == {"station": "32006", "stored": 1, "data_version": 1}
    got = c.get("/stations/32006/observations", params={"start": day, "end": day}).json()
    row = got["observations"][0]
    assert row["posted"] is True and row["discharge"] == 12.5
    assert row["precipitation"] == pytest.approx(file.loc[day, "precipitation"])  # not posted: the file's
    c.post("/stations/32006/observations", headers=AUTH, json={"observations": [{"date": day, "discharge": 7.0}]})
    c.post("/stations/32006/observations", headers=AUTH, json={"observations": [{"date": day, "precipitation": 3.0}]})
    row = c.get("/stations/32006/observations", params={"start": day, "end": day}).json()["observations"][0]
    assert (row["discharge"], row["precipitation"]) == (7.0, 3.0)
    assert got["data_version"] == 1 and c.get("/stations/32006/observations").json()["data_version"] == 3
    prev = c.get("/stations/32006/observations", params={"start": "1977-06-14", "end": "1977-06-14"}).json()
    assert prev["observations"][0]["posted"] is False
    assert prev["observations"][0]["discharge"] == pytest.approx(file.loc["1977-06-14", "discharge_vol"])
    assert _rows(service.db)[:2] == (1, 1)


def test_an_unusual_posted_flow_needs_confirming_and_a_posted_day_can_be_taken_back(service):
    """5000 typed for 50: a flow 10 times the record's largest is refused (422, nothing stored) unless
    ?unusual=true; DELETE takes a posted day back to the file's value, with a new data version."""
    c = service.client
    file = reader.read_timeseries(service.data_dir, "32006")
    day, top = "1977-06-20", float(file["discharge_vol"].max())
    before = c.get("/stations/32006/observations").json()["data_version"]
    body = {"observations": [{"date": day, "discharge": 20 * top}]}
    r = c.post("/stations/32006/observations", headers=AUTH, json=body)
    assert r.status_code == 422 and "times the largest flow" in r.json()["detail"] and "?unusual=true" in r.json()["detail"]
    assert c.get("/stations/32006/observations").json()["data_version"] == before
    # 1e308 typed for 50: beyond any river's flow (the reader's range), refused in one short line, not its 300 digits
    huge = {"observations": [{"date": day, "discharge": 1e308}]}
    detail = c.post("/stations/32006/observations", headers=AUTH, json=huge).json()["detail"]
    assert "1e+308 is outside the allowed range 0..1e+06 m3/s" in detail and len(detail) < 300, detail
    r = c.post("/stations/32006/observations", headers=AUTH, json=body, params={"unusual": "true"})
    assert r.status_code == 200
    row = c.get("/stations/32006/observations", params={"start": day, "end": day}).json()["observations"][0]
    assert row["discharge"] == 20 * top and row["posted"] is True
    assert c.delete(f"/stations/32006/observations/{day}").status_code == 401   # taking back needs the token
    r = c.delete(f"/stations/32006/observations/{day}", headers=AUTH)
    assert r.status_code == 200 and r.json()["data_version"] == before + 2
    row = c.get("/stations/32006/observations", params={"start": day, "end": day}).json()["observations"][0]
    assert row["posted"] is False and row["discharge"] == pytest.approx(file.loc[day, "discharge_vol"])
    assert c.delete(f"/stations/32006/observations/{day}", headers=AUTH).status_code == 404


def test_forecast_is_the_models_and_is_cached_per_issue_day_leads_and_data(service, bundle):
    c, runs = service.client, service.runs
    file = reader.read_timeseries(service.data_dir, "32006")
    p = {"issue_date": "1977-12-01", "leads": 3}
    a = c.get("/stations/32006/forecast", params=p, headers=AUTH).json()
    assert a["cached"] is False and len(runs) == 1
    assert a["forecast"] == _expected(bundle, service.data_dir, "32006", "1977-12-01", 3)
    assert list(a["weights"]) == list(bundle[2].feature_names) and a["setting"] == "issue-time"
    assert a["history"][-1]["date"] == "1977-12-01" and len(a["history"]) == HISTORY_DAYS
    assert [o["date"] for o in a["observed_after"]] == ["1977-12-02", "1977-12-03", "1977-12-04"]
    assert a["observed_after"][0]["observed"] == pytest.approx(file.loc["1977-12-02", "discharge_vol"])
    b = c.get("/stations/32006/forecast", params=p, headers=AUTH).json()
    assert b["cached"] is True and b["id"] == a["id"] and b["forecast"] == a["forecast"] and len(runs) == 1
    # Other leads: another forecast in the record, from the same model run (its lead days do not depend
    # on how many follow them).
    e = c.get("/stations/32006/forecast", params={**p, "leads": 4}, headers=AUTH).json()
    assert e["id"] != a["id"] and e["cached"] is False and len(runs) == 1
    assert e["forecast"] == _expected(bundle, service.data_dir, "32006", "1977-12-01", 4)
    assert e["forecast"][:3] == a["forecast"]
    # A post to this station changes its data version: the next answer is issued afresh on the new data.
    c.post("/stations/32006/observations", headers=AUTH,
           json={"observations": [{"date": "1977-12-01", "discharge": 50.0}]})
    d = c.get("/stations/32006/forecast", params=p, headers=AUTH).json()
    assert d["cached"] is False and d["data_version"] == 1 and len(runs) == 2
    posted = file.copy()
    posted.loc["1977-12-01", "discharge_vol"] = 50.0
    assert d["forecast"] == _expected(bundle, service.data_dir, "32006", "1977-12-01", 3, posted)
    assert d["forecast"] != a["forecast"]
    # A post to another station does not throw this one's cache away.
    c.post("/stations/10002/observations", headers=AUTH,
           json={"observations": [{"date": "1977-12-01", "discharge": 1.0}]})
    assert c.get("/stations/32006/forecast", params=p).json()["cached"] is True and len(runs) == 2
    assert _rows(service.db)[2] == 3


def test_posted_pet_reaches_the_model(service, bundle):
    """The model reads peti; a posted PET must replace it (and pet) on the posted days."""
    assert "peti" in bundle[1].data.dynamic_inputs
    c = service.client
    file = reader.read_timeseries(service.data_dir, "32006")
    assert {"pet", "peti"} <= set(file.columns)
    issue, days = "1977-10-31", [d.date().isoformat() for d in file.loc["1977-09-01":"1977-10-31"].index]
    before = c.get("/stations/32006/forecast", params={"issue_date": issue, "leads": 5}).json()
    r = c.post("/stations/32006/observations", headers=AUTH,
               json={"observations": [{"date": d, "pet": 6.5} for d in days]})
    assert r.status_code == 200, r.text
    after = c.get("/stations/32006/forecast", params={"issue_date": issue, "leads": 5}).json()
    posted = file.copy()
    posted.loc[days, ["pet", "peti"]] = 6.5
    assert after["forecast"] == _expected(bundle, service.data_dir, "32006", issue, 5, posted)
    assert after["forecast"] != before["forecast"]
    obs = c.get("/stations/32006/observations", params={"start": days[0], "end": days[0]}).json()
    assert obs["observations"][0]["pet"] == 6.5


def test_a_changed_file_is_read_again_and_never_gives_the_old_forecast(live, bundle, tiny_data_dir, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(tiny_data_dir, data)
    path = reader.timeseries_file(data, "32006")
    p = {"issue_date": "1977-06-30", "leads": 3}
    with TestClient(create_app(data, tmp_path / "db.sqlite", live, token=TOKEN)) as c:
        first = c.get("/stations/32006/forecast", params=p, headers=AUTH).json()
        text = path.read_text()
        raw = pd.read_csv(path)
        raw.loc[raw["date"] == "1977-06-30", "discharge_vol"] = 80.0  # a corrected flow, same file name
        raw.to_csv(path, index=False)
        st = path.stat()
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
        second = c.get("/stations/32006/forecast", params=p, headers=AUTH).json()
        assert second["cached"] is False and second["id"] != first["id"]
        assert second["forecast"] == _expected(bundle, data, "32006", "1977-06-30", 3)
        assert second["forecast"] != first["forecast"]
        assert second["history"][-1]["observed"] == 80.0
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))  # touched, not changed
        assert c.get("/stations/32006/forecast", params=p, headers=AUTH).json()["id"] == second["id"]
    # After a restart too: the database's forecast of the old file is not the answer.
    path.write_text(text)
    with TestClient(create_app(data, tmp_path / "db.sqlite", live, token=TOKEN)) as c:
        again = c.get("/stations/32006/forecast", params=p, headers=AUTH).json()
        assert again["id"] == first["id"] and again["forecast"] == first["forecast"]


def test_a_checkpoint_replaced_under_the_running_service_is_used_once_settled_and_never_mixed(
        pretrained_ckpt, tiny_data_dir, tmp_path, caplog):
    """A checkpoint in use and its calibration copied over in place (`cp new.pth served.pth`), or renamed onto
    their names: the model they replace keeps forecasting, with the weights and the calibration the service read
    (a forecast worked out afresh meanwhile is that model's, never the new calibration on the old weights), until
    the new files have been left alone a moment and load; then the new model forecasts, with one log line. A
    replacement that does not load is not used: one line, and the model in use keeps forecasting. (Each was
    refused with 503 until a restart before.)"""
    from sca2lstm.errors import CheckpointError
    from sca2lstm.evaluation import live
    from sca2lstm.evaluation.calibration import calibration_path
    from sca2lstm.fileio import file_sha256
    from sca2lstm.training.finetune import finetune

    def copy(src, dst):  # a checkpoint with its calibration, copied over in place (the same file, new bytes)
        for a, b in ((src, dst), (calibration_path(src), calibration_path(dst))):
            shutil.copyfile(a, b)

    def settled(path):   # as if left alone since a minute ago
        t = time.time() - 60
        for written in (path, calibration_path(path)):
            os.utime(written, (t, t))

    folder = tmp_path / "model_output"
    served = folder / "fine_tune" / "basin_32006" / "run" / "best_model_basin_32006.pth"
    served.parent.mkdir(parents=True)
    copy(pretrained_ckpt, folder / "sca2lstm.pth")
    copy(pretrained_ckpt, served)  # the station's own model starts as the pretrained one's bytes
    tuned = Path(finetune(pretrained_ckpt, "32006", {"epochs": 1}, data_dir=tiny_data_dir, out_root=tmp_path / "tuned",
                          progress=False)["checkpoint"])
    old, new = load_model(pretrained_ckpt), load_model(tuned)
    old[3]["source_path"], new[3]["source_path"] = str(pretrained_ckpt), str(tuned)  # their calibrations
    assert file_sha256(tuned) != file_sha256(pretrained_ckpt)
    posted = reader.read_timeseries(tiny_data_dir, "32006")
    posted.loc["1977-06-30", "discharge_vol"] = 80.0
    with forecaster(folder, tiny_data_dir, rescan_every=0) as f, \
            TestClient(create_app(tiny_data_dir, tmp_path / "db.sqlite", f, token=TOKEN)) as c:
        def get(station, day):
            r = c.get(f"/stations/{station}/forecast", params={"issue_date": day, "leads": 3}, headers=AUTH)
            assert r.status_code == 200, r.text
            return r.json()

        assert get("32006", "1977-07-01")["model_sha256"] == file_sha256(pretrained_ckpt)
        inode = served.stat().st_ino
        copy(tuned, served)  # just written: not taken yet
        assert served.stat().st_ino == inode
        c.post("/stations/32006/observations", headers=AUTH,
               json={"observations": [{"date": "1977-06-30", "discharge": 80.0}]})  # the setup is worked out again
        during = get("32006", "1977-07-01")
        assert during["model_sha256"] == file_sha256(pretrained_ckpt) and during["cached"] is False
        assert during["forecast"] == _expected(old, tiny_data_dir, "32006", "1977-07-01", 3, posted)
        settled(served)
        with caplog.at_level("INFO", logger="sca2lstm"):
            after = get("32006", "1977-07-01")
        assert after["model_sha256"] == file_sha256(tuned) and after["cached"] is False
        assert after["forecast"] == _expected(new, tiny_data_dir, "32006", "1977-07-01", 3, posted) != during["forecast"]
        switched = [r.getMessage() for r in caplog.records if "now forecast by" in r.getMessage()]
        assert len(switched) == 1 and "station 32006" in switched[0] and str(served) in switched[0], switched
        # A half-written file renamed onto the name (a new inode), left alone: not used, one line.
        half = served.with_name(".half.tmp")
        half.write_bytes(tuned.read_bytes()[:2000])
        os.replace(half, served)
        settled(served)
        caplog.clear()
        with caplog.at_level("INFO", logger="sca2lstm"):
            kept = [get("32006", day)["model_sha256"] for day in ("1977-07-02", "1977-07-03")]
        assert kept == [file_sha256(tuned)] * 2
        lines = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
        assert len(lines) == 1 and "station 32006: the fine-tuned model" in lines[0] and "is not used" in lines[0], lines
        # The pretrained model renamed over: every station without its own model switches to it.
        staged = folder / ".sca2lstm.staged.pth"
        shutil.copyfile(tuned, staged)
        shutil.copyfile(calibration_path(tuned), calibration_path(folder / "sca2lstm.pth"))
        os.replace(staged, folder / "sca2lstm.pth")
        settled(folder / "sca2lstm.pth")
        other = get("10002", "1977-07-01")
        assert other["model_sha256"] == file_sha256(tuned) == c.get("/health").json()["model_sha256"]
        assert other["forecast"] == _expected(new, tiny_data_dir, "10002", "1977-07-01", 3)
    # A worker that had not loaded a model before its file was replaced refuses the new bytes under its name.
    late = tmp_path / "late.pth"
    shutil.copyfile(pretrained_ckpt, late)
    sha = file_sha256(late)
    shutil.copyfile(tuned, late)
    with pytest.raises(CheckpointError, match="late.pth was replaced on disk before this process loaded it"):
        live._bundle(str(late), sha)


def test_a_recalibrated_model_gives_the_new_calibrations_forecast_not_the_one_cached_or_stored_before(
        pretrained_ckpt, tiny_data_dir, tmp_path):
    """`sca2lstm calibrate --model M.pth` re-run while the service runs replaces only the calibration beside the
    checkpoint: once it has settled, a forecast asked for again (same station, issue date and data) is the new
    calibration's, as `sca2lstm forecast` now gives it, not the one cached in memory or stored with the old
    calibration; still named after the checkpoint (``model_sha256``), with the calibration beside it. After a
    restart the stored forecast of the old calibration is not the answer either."""
    from sca2lstm.evaluation.calibration import calibration_path, read_calibration
    from sca2lstm.fileio import file_sha256

    served = tmp_path / "model.pth"
    shutil.copyfile(pretrained_ckpt, served)
    shutil.copyfile(calibration_path(pretrained_ckpt), calibration_path(served))
    t = time.time() - 120  # a model served for a while
    for written in (served, calibration_path(served)):
        os.utime(written, (t, t))
    model = load_model(served)
    model[3]["source_path"] = str(served)  # _expected reads the calibration beside it as it is then
    p = {"issue_date": "1977-06-30", "leads": 3}
    db = tmp_path / "db.sqlite"
    with forecaster(served, tiny_data_dir, rescan_every=0) as f, \
            TestClient(create_app(tiny_data_dir, db, f, token=TOKEN)) as c:
        first = c.get("/stations/32006/forecast", params=p, headers=AUTH).json()
        assert c.get("/stations/32006/forecast", params=p, headers=AUTH).json()["cached"] is True
        doc = read_calibration(served)
        doc["spread"] = {w: {**s, "factors": [[[2 * x for x in q] for q in b] for b in s["factors"]]}
                         for w, s in doc["spread"].items()}  # intervals twice as wide: another calibration
        calibration_path(served).write_text(json.dumps(doc))
        t = time.time() - 60  # recalibrated, then left alone a minute: settled
        os.utime(calibration_path(served), (t, t))
        after = c.get("/stations/32006/forecast", params=p, headers=AUTH).json()
        anonymous = c.get("/stations/32006/forecast", params=p).json()
    expected = _expected(model, tiny_data_dir, "32006", "1977-06-30", 3)
    assert after["cached"] is False and after["id"] != first["id"]
    assert after["forecast"] == expected != first["forecast"]
    assert anonymous["id"] == after["id"] and anonymous["forecast"] == expected
    assert after["model_sha256"] == first["model_sha256"] == file_sha256(served)
    assert len(after["calibration_sha256"]) == 64 and after["calibration_sha256"] != first["calibration_sha256"]
    with forecaster(served, tiny_data_dir) as f, TestClient(create_app(tiny_data_dir, db, f, token=TOKEN)) as c:
        again = c.get("/stations/32006/forecast", params=p).json()
        assert again["id"] == after["id"] and again["forecast"] == expected and again["cached"] is True
        stored = c.get("/stations/32006/forecasts").json()["forecasts"]
    assert {(r["id"], r["calibration_sha256"]) for r in stored} == {(first["id"], first["calibration_sha256"]),
                                                                    (after["id"], after["calibration_sha256"])}


def test_a_model_fine_tuned_into_the_served_folder_is_used_without_a_restart(pretrained_ckpt, tiny_data_dir, tmp_path,
                                                                            caplog):
    """`python fine_train.py` for a station while the service runs writes
    <folder>/fine_tune/basin_<id>/<time>/best_model_basin_<id>.pth: the station's forecasts come from it from
    then on (named by its sha256, and its numbers), once it has been left alone a moment, with one log line;
    the other stations keep the pretrained model."""
    from sca2lstm.evaluation.calibration import calibration_path
    from sca2lstm.fileio import file_sha256
    from sca2lstm.training.finetune import finetune

    folder = tmp_path / "model_output"
    folder.mkdir()
    pretrained = folder / "sca2lstm.pth"
    for src, dst in ((pretrained_ckpt, pretrained), (calibration_path(pretrained_ckpt), calibration_path(pretrained))):
        shutil.copyfile(src, dst)
    p = {"issue_date": "1977-06-30", "leads": 3}
    with forecaster(folder, tiny_data_dir, rescan_every=0) as f, \
            TestClient(create_app(tiny_data_dir, tmp_path / "db.sqlite", f, token=TOKEN)) as c:
        before = c.get("/stations/32006/forecast", params=p, headers=AUTH).json()
        assert before["model_sha256"] == file_sha256(pretrained)
        r = finetune(pretrained, "32006", {"epochs": 1}, data_dir=tiny_data_dir, out_root=folder / "fine_tune",
                     progress=False)
        ckpt = Path(r["checkpoint"])
        assert ckpt.parent.parent == folder / "fine_tune" / "basin_32006" and r["kept"] == "fine-tuned"
        os.utime(ckpt)  # as if it had just been written: not taken yet
        assert c.get("/stations/32006/forecast", params=p, headers=AUTH).json()["model_sha256"] == file_sha256(pretrained)
        t = time.time() - 60
        for written in (ckpt, calibration_path(ckpt)):
            os.utime(written, (t, t))
        with caplog.at_level("INFO", logger="sca2lstm"):
            after = c.get("/stations/32006/forecast", params=p, headers=AUTH).json()
            other = c.get("/stations/10002/forecast", params=p, headers=AUTH).json()
        assert after["model_sha256"] == file_sha256(ckpt) and after["cached"] is False
        tuned = load_model(ckpt)
        tuned[3]["source_path"] = str(ckpt)
        assert after["forecast"] == _expected(tuned, tiny_data_dir, "32006", "1977-06-30", 3) != before["forecast"]
        switched = [r.getMessage() for r in caplog.records if "now forecast by" in r.getMessage()]
        assert len(switched) == 1 and "station 32006" in switched[0] and str(ckpt) in switched[0], switched
        assert other["model_sha256"] == file_sha256(pretrained)
        assert c.get("/health").json()["fine_tuned_stations"] == 1


@pytest.mark.parametrize("damage", ["checkpoint cut short", "calibration not JSON"])
def test_a_damaged_fine_tuned_checkpoint_in_the_served_folder_costs_only_its_station_its_own_model(
        pretrained_ckpt, tiny_data_dir, tmp_path, caplog, damage):
    """A folder whose fine-tuned checkpoint of 10002 was cut short (a copy that failed), or whose calibration beside
    it is not JSON: the service starts, says so in one line naming the station and the file, forecasts 10002 with
    the pretrained model and 10003 with its own, and does not say it again at each look at the folder (before, the
    whole service refused to start)."""
    import torch

    from sca2lstm.evaluation.calibration import calibration_path
    from sca2lstm.fileio import file_sha256

    folder = tmp_path / "model_output"
    pretrained = folder / "sca2lstm.pth"
    damaged = folder / "fine_tune" / "basin_10002" / "best_model_basin_10002.pth"
    tuned = folder / "fine_tune" / "basin_10003" / "best_model_basin_10003.pth"
    for f in (damaged, tuned):
        f.parent.mkdir(parents=True)
    shutil.copyfile(pretrained_ckpt, pretrained)
    for version, f in enumerate((tuned, damaged), start=2):  # other bytes: their own sha256
        torch.save({**torch.load(pretrained_ckpt, weights_only=True), "qa_version": version}, f)
    if damage == "checkpoint cut short":
        whole = damaged.read_bytes()
        damaged.write_bytes(whole[:len(whole) // 2])
        why = f"checkpoint {damaged} is truncated"
    else:
        calibration_path(damaged).write_text("{ not json")
        why = f"{calibration_path(damaged)} is not valid JSON"
    t = time.time() - 60
    for f in folder.rglob("*"):
        os.utime(f, (t, t))
    p = {"issue_date": "1977-06-30", "leads": 3}
    with caplog.at_level("INFO", logger="sca2lstm"), forecaster(folder, tiny_data_dir, rescan_every=0) as f, \
            TestClient(create_app(tiny_data_dir, tmp_path / "db.sqlite", f, token=TOKEN)) as c:
        answers = {s: c.get(f"/stations/{s}/forecast", params=p) for s in ("10002", "10003", "32006")}
        f.rescan(True)
        health = c.get("/health").json()
    assert {s: r.status_code for s, r in answers.items()} == {"10002": 200, "10003": 200, "32006": 200}
    assert answers["10002"].json()["model_sha256"] == file_sha256(pretrained) == answers["32006"].json()["model_sha256"]
    assert answers["10003"].json()["model_sha256"] == file_sha256(tuned) != file_sha256(pretrained)
    assert health["fine_tuned_stations"] == 1
    said = [r.getMessage() for r in caplog.records if r.levelname == "WARNING" and "not used" in r.getMessage()]
    assert len(said) == 1 and "\n" not in said[0], said
    assert said[0].startswith(f"station 10002: the fine-tuned model {damaged} is not used: {why}"), said[0]
    assert said[0].endswith("the station is forecast by the pretrained model")


def test_the_notes_a_client_reads_name_files_and_folders_without_the_servers_paths(pretrained_ckpt, tiny_data_dir,
                                                                                   tmp_path):
    """A station imported from /srv/incoming/river_32006.csv that only shares its id with a basin the model was
    pretrained on: its note (the forecast's, /warnings', an alert's) names the file and the folders by their names
    alone; the stored forecast keeps the note whole, paths and all, for whoever runs the service."""
    data = tmp_path / "ops_data"
    shutil.copytree(tiny_data_dir, data)
    (data / "meta").mkdir()
    (data / "meta" / "32006.json").write_text(json.dumps({"station_id": "32006", "source": "/srv/incoming/river_32006.csv",
                                                          "source_sha256": "ab" * 32}))
    with forecaster(pretrained_ckpt, data) as live, \
            TestClient(create_app(data, tmp_path / "db.sqlite", live, token=TOKEN)) as c:
        answers = [c.get("/stations/32006/forecast", headers=AUTH), c.get("/stations/32006/forecast"),
                   c.get("/warnings")]
    notes = answers[0].json()["notes"]
    assert len(notes) == 1 and notes[0].startswith("basin 32006 in ops_data is a station imported from "
                                                   "river_32006.csv; the model was pretrained on another basin 32006 "
                                                   f"(from {tiny_data_dir.name})"), notes
    assert answers[1].json()["notes"] == notes and answers[2].json()["stations"][-1]["notes"] == notes
    for r in answers:
        assert str(tmp_path) not in r.text and "/srv/incoming" not in r.text and str(tiny_data_dir) not in r.text
    con = sqlite3.connect(tmp_path / "db.sqlite")
    stored = json.loads(con.execute("SELECT notes_json FROM forecasts WHERE station = '32006'").fetchone()[0])
    con.close()
    assert stored[0]["text"].startswith(f"basin 32006 in {data} is a station imported from "
                                        "/srv/incoming/river_32006.csv")
    assert stored[0]["kind"] == "foreign_id" and stored[0]["values"]["source"] == "/srv/incoming/river_32006.csv"


def test_a_reader_who_prefers_chinese_reads_a_forecasts_notes_in_chinese(service):
    """The page's reader whose browser prefers zh reads the note of a forecast that starts from an older flow in
    Chinese, from the forecast computed, the one stored and the one cached; a reader without a preference reads
    the English note, as before."""
    c = service.client
    zh = {"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.5"}
    c.post("/stations/32006/observations", headers=AUTH,
           json={"observations": [{"date": "1978-01-03", "precipitation": 5.0}]})
    flow = reader.read_timeseries(service.data_dir, "32006")["discharge_vol"].loc["1977-12-31"]
    p = {"issue_date": "1978-01-03", "leads": 3}
    chinese = (f"测站 32006：发布日 1978-01-03 没有实测流量；预报从最近一次实测流量起算，即 1977-12-31 的 {flow:.3g} m3/s"
               "（发布日前 3 天）")
    english = (f"basin 32006: no flow observed on the issue date 1978-01-03; the forecast starts from the last "
               f"observed flow, {flow:.3g} m3/s on 1977-12-31, 3 day(s) before it")
    first = c.get("/stations/32006/forecast", params=p, headers=zh)  # computed, not stored (anonymous)
    stored = c.get("/stations/32006/forecast", params=p, headers={**zh, **AUTH})
    cached = c.get("/stations/32006/forecast", params=p, headers={**zh, **AUTH})
    assert [r.json()["cached"] for r in (first, stored, cached)] == [False, True, True]
    for r in (first, stored, cached):
        assert chinese in r.json()["notes"] and english not in r.json()["notes"], r.json()["notes"]
        assert r.headers["vary"] == "Accept-Language"
    # the same forecast, cached, for a reader without a preference: English, as stored
    assert english in c.get("/stations/32006/forecast", params=p).json()["notes"]
    assert english in c.get("/stations/32006/forecast", params=p, headers={"Accept-Language": "en"}).json()["notes"]
    con = sqlite3.connect(service.db)
    notes = json.loads(con.execute("SELECT notes_json FROM forecasts WHERE issue_date = '1978-01-03'").fetchone()[0])
    con.close()
    assert {"text": english, "kind": "stale_flow"}.items() <= next(n for n in notes if n["kind"] == "stale_flow").items()


def test_a_note_stored_as_plain_text_is_read_in_english_whatever_the_language(tmp_path):
    """A forecast stored before notes had kinds (its notes plain text) still shows them, in English, to a reader who
    prefers Chinese; a note stored with its kind beside it is said in Chinese."""
    from sca2lstm.notes import Note
    from sca2lstm.serve.app import notes_in
    from sca2lstm.serve.store import Store

    store = Store(tmp_path / "s.sqlite")
    old = store.add_forecast("32006", "1977-01-01", 3, 0, "fp", "m", "issue-time", [], {}, notes=["an old note"])
    stale = Note("stale_flow", basin="32006", day="1977-01-02", flow=12.5, last="1977-01-01", days=1)
    new = store.add_forecast("32006", "1977-01-02", 3, 0, "fp", "m", "issue-time", [], {}, notes=["plain", stale])
    store.close()
    rows = {r["id"]: r for r in Store(tmp_path / "s.sqlite").forecasts("32006")}
    assert notes_in(rows[old["id"]], "zh") == ["an old note"]
    assert notes_in(rows[new["id"]], "zh") == ["plain", "测站 32006：发布日 1977-01-02 没有实测流量；预报从最近一次实测流量起算，"
                                                        "即 1977-01-01 的 12.5 m3/s（发布日前 1 天）"]
    assert notes_in(rows[new["id"]]) == ["plain", str(stale)] and rows[new["id"]]["notes"][1] == stale


def test_a_note_naming_a_station_archive_is_read_back_from_the_database_in_chinese_archive_and_all(tmp_path):
    """A note whose value is itself a note (the station's archive, "weather archive <file>") is stored with that value's
    kind too: read back, a reader who prefers Chinese reads the whole sentence in Chinese, an English reader the
    sentence as issued."""
    from sca2lstm.notes import Note
    from sca2lstm.serve.app import notes_in
    from sca2lstm.serve.store import Store

    archive = Note("weather_archive", path="/srv/data/weather_archive/32006.csv")
    mapped = Note("precip_mapped", source="the weather forecast", method="auto", observed="1971-01-01..1974-12-31",
                  archive=archive, day="1977-12-31")
    store = Store(tmp_path / "s.sqlite")
    row = store.add_forecast("32006", "1977-12-31", 3, 0, "fp", "m", "issue-time", [], {}, notes=[mapped])
    store.close()
    [back] = Store(tmp_path / "s.sqlite").forecasts("32006")
    assert back["id"] == row["id"] and back["notes"] == [mapped]
    assert notes_in(back, "zh") == ["天气预报的降水已按 1971-01-01..1974-12-31 的实测降水分布逐个预见期作分位数映射（auto），"
                                    "排位样本为天气预报存档 32006.csv 中 1977-12-31 之前发布的预报"]
    assert notes_in(back) == ["Precipitation of the weather forecast auto-mapped per lead to the observed rain of "
                              "1971-01-01..1974-12-31, ranked among weather archive 32006.csv: its forecasts issued "
                              "before 1977-12-31"]


def test_a_note_of_leads_left_unmapped_is_read_back_from_the_database_with_its_leads_listed_in_chinese(tmp_path):
    """The note of a forecast's leads left unmapped keeps its leads as a list: read back from the database, a reader
    who prefers Chinese reads them as Chinese lists them, an English reader the sentence as issued."""
    from sca2lstm.notes import Note
    from sca2lstm.serve.app import notes_in
    from sca2lstm.serve.store import Store

    note = Note("unmapped_leads", source="the weather forecast", leads=[6, 7], day="1977-12-31", min_issue_dates=180,
                most=123, given="the forecast")
    store = Store(tmp_path / "s.sqlite")
    store.add_forecast("32006", "1977-12-31", 3, 0, "fp", "m", "issue-time", [], {}, notes=[note])
    store.close()
    [back] = Store(tmp_path / "s.sqlite").forecasts("32006")
    assert notes_in(back, "zh") == ["天气预报：发布日 1977-12-31 预见期第 6、7 天的降水未作分位数映射：此前有该预见期预报的发布日"
                                    "不足 180 个（最多 123 个）；按该预报给出的原值使用"]
    assert notes_in(back) == ["the weather forecast: precipitation of lead(s) 6, 7 of issue date 1977-12-31 not "
                              "quantile-mapped: fewer than 180 earlier issue dates with a forecast of the lead (at most "
                              "123); left as the forecast gives it"]


def test_anonymous_forecasts_are_not_stored_and_token_holders_are(service):
    c, runs = service.client, service.runs
    p = {"issue_date": "1977-11-15", "leads": 3}
    anon = c.get("/stations/10002/forecast", params=p).json()
    assert anon["id"] is None and anon["cached"] is False and _rows(service.db)[2] == 0
    assert c.get("/stations/10002/forecast", params=p).json()["cached"] is True and len(runs) == 1
    mine = c.get("/stations/10002/forecast", params=p, headers=AUTH).json()
    assert isinstance(mine["id"], int) and _rows(service.db)[2] == 1 and len(runs) == 1  # stored, not rerun
    assert mine["forecast"] == anon["forecast"]
    assert c.get("/stations/10002/forecast", params=p).json()["id"] == mine["id"]
    hist = c.get("/stations/10002/forecasts").json()["forecasts"]
    assert [h["id"] for h in hist] == [mine["id"]]


def test_anonymous_clients_are_rate_limited_and_token_holders_are_not(live, tiny_data_dir, tmp_path):
    now = [1000.0]
    app = create_app(tiny_data_dir, tmp_path / "db.sqlite", live, token=TOKEN, anonymous_per_minute=60,
                     clock=lambda: now[0])
    with TestClient(app) as c:
        assert all(c.get("/stations").status_code == 200 for _ in range(60))  # 60 a minute: never refused
        r = c.get("/stations/32006/observations")
        assert r.status_code == 429 and "rate" in r.json()["detail"] and r.headers["Retry-After"] == "1"
        assert c.get("/stations", headers=AUTH).status_code == 200
        assert c.get("/health").status_code == 200
        now[0] += 1.0  # one more a second
        assert c.get("/stations").status_code == 200 and c.get("/stations").status_code == 429
        assert c.get("/stations", headers={"Authorization": "Bearer nope"}).status_code == 401
    with pytest.raises(ValueError, match="at least 60"):
        create_app(tiny_data_dir, tmp_path / "db2.sqlite", live, anonymous_per_minute=59)


def test_forecast_history_is_joined_with_later_observations(service):
    c = service.client
    file = reader.read_timeseries(service.data_dir, "32006")
    c.get("/stations/32006/forecast", params={"issue_date": "1977-12-20", "leads": 3}, headers=AUTH)
    c.get("/stations/32006/forecast", params={"issue_date": "1977-12-29", "leads": 5}, headers=AUTH)
    hist = c.get("/stations/32006/forecasts").json()["forecasts"]
    assert [h["issue_date"] for h in hist] == ["1977-12-29", "1977-12-20"]
    assert [f["observed"] for f in hist[1]["forecast"]] == pytest.approx(
        list(file.loc["1977-12-21":"1977-12-23", "discharge_vol"]))
    assert [f["observed"] for f in hist[0]["forecast"]][2:] == [None, None, None]  # not observed yet


def test_a_restart_keeps_posts_and_issued_forecasts(service, live, monkeypatch):
    c = service.client
    c.post("/stations/32006/observations", headers=AUTH,
           json={"observations": [{"date": "1977-05-01", "discharge": 9.25}, {"date": "1977-05-02", "temperature": 11.0}]})
    first = c.get("/stations/32006/forecast", params={"issue_date": "1977-05-01"}, headers=AUTH).json()
    runs = len(service.runs)
    with TestClient(create_app(service.data_dir, service.db, live, token=TOKEN)) as c2:
        obs = c2.get("/stations/32006/observations", params={"start": "1977-05-01", "end": "1977-05-02"}).json()
        assert obs["observations"][0]["discharge"] == 9.25 and obs["observations"][1]["temperature"] == 11.0
        again = c2.get("/stations/32006/forecast", params={"issue_date": "1977-05-01"}).json()
        assert again["id"] == first["id"] and again["forecast"] == first["forecast"] and again["cached"] is True
        assert len(service.runs) == runs


def _day(**kw):
    return {"observations": [{"date": "1977-03-01", "discharge": 2.0, **kw}]}


BAD_POSTS = [
    # (name, kwargs for client.post, status, texts the message must contain)
    ("malformed json", {"content": b'{"observations": [', "headers": {**AUTH, "Content-Type": "application/json"}},
     422, ["body: malformed JSON"]),
    ("wrong type", {"json": _day(discharge="high"), "headers": AUTH}, 422, ["observations.0.discharge"]),
    ("bool as number", {"json": _day(precipitation=True), "headers": AUTH}, 422, ["observations.0.precipitation"]),
    ("future date", {"json": {"observations": [{"date": (dt.date.today() + dt.timedelta(days=2)).isoformat(),
                                                "discharge": 1.0}]}, "headers": AUTH}, 422, ["observations.0.date"]),
    ("date before any record", {"json": {"observations": [{"date": "1500-01-01", "discharge": 1.0}]},
                                "headers": AUTH}, 422, ["observations.0.date", "1800-01-01"]),
    ("negative flow", {"json": _day(discharge=-1.0), "headers": AUTH}, 422,
     ["observations.0.discharge", "0..1e+06 m3/s"]),
    ("a fill value as flow", {"json": _day(discharge=1e30), "headers": AUTH}, 422,
     ["observations.0.discharge", "1e+30", "0..1e+06 m3/s"]),
    ("rain over the reader's range", {"json": _day(precipitation=2000.0), "headers": AUTH}, 422,
     ["observations.0.precipitation", "2000", "0..500 mm/day"]),
    ("temperature over the reader's range", {"json": _day(temperature=61.0), "headers": AUTH}, 422,
     ["observations.0.temperature", "-60..60 degC"]),
    ("pet over the reader's range", {"json": _day(pet=51.0), "headers": AUTH}, 422,
     ["observations.0.pet", "0..50 mm/day"]),
    ("unknown field", {"json": _day(flow=3.0), "headers": AUTH}, 422,
     ["observations.0.flow: unknown field; allowed: date, precipitation, temperature, pet, discharge, stage (got 3.0)"]),
    ("unknown top-level field", {"json": {**_day(), "station": "32006"}, "headers": AUTH}, 422,
     ['station: unknown field; allowed: observations (got "32006")']),
    ("no values", {"json": {"observations": [{"date": "1977-03-01"}]}, "headers": AUTH}, 422, ["observations.0"]),
    ("no days", {"json": {"observations": []}, "headers": AUTH}, 422, ["observations"]),
    ("day twice", {"json": {"observations": [{"date": "1977-03-01", "discharge": 1.0},
                                             {"date": "1977-03-01", "discharge": 2.0}]}, "headers": AUTH},
     422, ["observations"]),
    ("over size", {"content": b'{"observations": [' + b" " * 1_100_000 + b"]}",
                   "headers": {**AUTH, "Content-Type": "application/json"}}, 413, ["body"]),
    ("missing token", {"json": _day()}, 401, ["authorization"]),
    ("wrong token", {"json": _day(), "headers": {"Authorization": "Bearer s3cret-tokem"}}, 401, ["authorization"]),
    ("token not bearer", {"json": _day(), "headers": {"Authorization": f"Basic {TOKEN}"}}, 401, ["authorization"]),
]


@pytest.mark.parametrize("name,kwargs,status,texts", BAD_POSTS, ids=[b[0] for b in BAD_POSTS])
def test_bad_posts_are_refused_naming_the_field_and_store_nothing(service, name, kwargs, status, texts):
    r = service.client.post("/stations/32006/observations", **kwargs)
    assert r.status_code == status, r.text
    for text in texts:
        assert text in r.json()["detail"], (text, r.json()["detail"])
    assert _rows(service.db) == (0, 0, 0)
    assert service.client.get("/stations/32006/observations").json()["data_version"] == 0


def test_values_at_the_edges_of_the_readers_ranges_are_accepted(service):
    r = service.client.post("/stations/32006/observations", headers=AUTH, json={"observations": [
        {"date": "1800-01-01", "precipitation": 500.0, "temperature": -60.0, "pet": 0.0, "discharge": 0.0}]})
    assert r.status_code == 200, r.text
    obs = service.client.get("/stations/32006/observations", params={"start": "1800-01-01", "end": "1800-01-01"})
    assert obs.json()["observations"][0]["precipitation"] == 500.0


def test_a_chunked_body_over_the_limit_is_refused(live, tiny_data_dir, tmp_path):
    app = create_app(tiny_data_dir, tmp_path / "db.sqlite", live, token=TOKEN, max_body=1000)

    def chunks():  # no Content-Length: the limit must count the stream
        yield b'{"observations": ['
        for _ in range(100):
            yield b" " * 50

    with TestClient(app) as c:
        r = c.post("/stations/32006/observations", content=chunks(), headers={**AUTH, "Content-Type": "application/json"})
        assert r.status_code == 413 and "body" in r.json()["detail"]
        assert c.post("/stations/32006/observations", json=_day(), headers=AUTH).status_code == 200
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


def test_writes_are_off_without_a_token(live, tiny_data_dir, tmp_path):
    with TestClient(create_app(tiny_data_dir, tmp_path / "db.sqlite", live, token=None)) as c:
        assert c.get("/health").json()["writes_enabled"] is False
        r = c.post("/stations/32006/observations", json=_day(), headers=AUTH)
        assert r.status_code == 403 and "writes are off" in r.json()["detail"]
    assert _rows(tmp_path / "db.sqlite") == (0, 0, 0)


@pytest.mark.parametrize("method,path,kwargs,said", [
    ("post", "/stations/32006/observations", {"json": {"observations": [{"date": "1977-03-01"}, {
        "date": "2015-02-30", "discharge": 1.0}]}}, 'observations.1.date: Input should be a valid date or datetime, '
     'day value is outside expected range (got "2015-02-30")'),
    ("post", "/stations/32006/observations", {"json": _day(discharge="high")},
     'observations.0.discharge: Input should be a valid number (got "high")'),
    ("post", "/stations/32006/observations", {"content": b'{"observations": [{"date": "1977-03-01", "pet": NaN}]}',
                                              "headers": {"Content-Type": "application/json"}},
     "observations.0.pet: Input should be a finite number (got NaN)"),
    ("get", "/stations/32006/forecast", {"params": {"leads": "7,8"}},
     'leads: Input should be a valid integer, unable to parse string as an integer (got "7,8")'),
    ("get", "/stations/32006/forecast", {"params": {"issue_date": "31/12/1977"}}, '(got "31/12/1977")'),
    ("get", "/stations/32006.csv/forecast", {}, '(got "32006.csv")'),
    ("put", "/stations/32006/levels", {"json": {"levels": {"alert": 5.0}, "levels_in": "cm"}},
     "levels_in: Input should be 'flow' or 'stage' (got \"cm\")"),
    ("get", "/stations/32006/weather", {"params": {"limit": "9" * 60}}, '(got "' + "9" * 37 + '...")'),
])
def test_a_refused_value_is_named_in_the_one_line(service, method, path, kwargs, said):
    """What pydantic says of a value of the wrong form (a date that is none, text for a number) comes with the value
    sent, so the one line names it among many days or parameters (and no more than 40 characters of it)."""
    headers = {**AUTH, **kwargs.pop("headers", {})}
    r = getattr(service.client, method)(path, headers=headers, **kwargs)
    assert r.status_code == 422, r.text
    detail = r.json()["detail"]
    assert said in detail and "\n" not in detail, detail
    assert _rows(service.db) == (0, 0, 0)


def test_bad_forecast_requests_name_the_parameter(service):
    c = service.client
    for params, text in [({"leads": 0}, "leads"), ({"leads": 8}, "leads"), ({"leads": "x"}, "leads"),
                         ({"issue_date": "1977-13-01"}, "issue_date"), ({"issue_date": "1990-01-01"}, "issue_date")]:
        r = c.get("/stations/32006/forecast", params=params)
        assert r.status_code == 422 and text in r.json()["detail"], (params, r.text)
    # The library's one-line error is a 422 with its message, and nothing is recorded.
    r = c.get("/stations/10003/forecast", params={"issue_date": "1970-10-05"}, headers=AUTH)
    assert r.status_code == 422 and "no observed discharge" in r.json()["detail"], r.text
    r = c.get("/stations/32006/observations", params={"start": "1977-02-01", "end": "1977-01-01"})
    assert r.status_code == 422 and "start" in r.json()["detail"]
    assert _rows(service.db) == (0, 0, 0)


ZH = {"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.5"}


@pytest.mark.parametrize("method,path,kwargs,english,chinese", [
    ("post", "/stations/32006/observations", {"json": _day(discharge="high")},
     'observations.0.discharge: Input should be a valid number (got "high")',
     '字段 observations.0.discharge：应为数值（收到的值："high"）'),
    ("post", "/stations/32006/observations", {"json": {"observations": [{"date": "1977-03-01"}, {
        "date": "2015-02-30", "discharge": 1.0}]}},
     # the service's own check (a day without values) keeps its English words in the Chinese frame
     'observations.0: a day needs at least one of precipitation, temperature, pet, discharge, stage; observations.1.date: '
     'Input should be a valid date or datetime, day value is outside expected range (got "2015-02-30")',
     '字段 observations.0：a day needs at least one of precipitation, temperature, pet, discharge, stage；字段 observations.1.date：'
     '应为有效日期（YYYY-MM-DD）：day value is outside expected range（收到的值："2015-02-30"）'),
    ("get", "/stations/32006/forecast", {"params": {"leads": "7,8"}},
     'leads: Input should be a valid integer, unable to parse string as an integer (got "7,8")',
     '字段 leads：应为整数，无法将该字符串解析为整数（收到的值："7,8"）'),
    ("put", "/stations/32006/levels", {"json": {"levels": {"alert": 5.0}, "levels_in": "cm"}},
     "levels_in: Input should be 'flow' or 'stage' (got \"cm\")",
     "字段 levels_in：应为 'flow' 或 'stage'（收到的值：\"cm\"）"),
    ("post", "/stations/32006/observations", {"json": _day(flow=3.0)},
     "observations.0.flow: unknown field; allowed: date, precipitation, temperature, pet, discharge, stage (got 3.0)",
     "字段 observations.0.flow：未知字段；可用字段：date, precipitation, temperature, pet, discharge, stage（收到的值：3.0）"),
    ("post", "/stations/32006/observations", {"content": b'{"observations": [',
                                              "headers": {"Content-Type": "application/json"}},
     "body: malformed JSON at character 18 (Expecting value)",
     "请求体：JSON 格式错误，位于第 18 个字符（Expecting value）"),
    ("post", "/stations/32006/observations", {"json": {}},
     "observations: Field required", "字段 observations：缺少必填字段"),
    ("get", "/stations/32006/forecast", {"params": {"issue-date": "1977-06-01", "leads": 3}},
     "issue-date: unknown query parameter; allowed: issue_date, leads",
     "issue-date：未知的查询参数；可用参数：issue_date, leads"),
    ("get", "/warnings", {"params": {"leads": 3}}, "leads: unknown query parameter; allowed: none",
     "leads：未知的查询参数；该地址不接受查询参数"),
])
def test_a_refused_request_is_framed_in_chinese_for_a_chinese_reader(service, method, path, kwargs, english, chinese):
    """A request FastAPI cannot read is answered in the reader's language: a Chinese frame around the field's name,
    what is wrong and the value sent (the same field and value as the English answer, which is unchanged)."""
    said = {}
    for lang, extra in (("en", {}), ("zh", ZH)):
        headers = {**AUTH, **kwargs.get("headers", {}), **extra}
        r = getattr(service.client, method)(path, headers=headers, **{k: v for k, v in kwargs.items() if k != "headers"})
        assert r.status_code == 422 and r.headers["vary"] == "Accept-Language", r.text
        said[lang] = r.json()["detail"]
    assert said == {"en": english, "zh": chinese}
    assert _rows(service.db) == (0, 0, 0)


def test_an_unknown_query_parameter_is_refused_naming_the_allowed_ones_not_ignored(service):
    """A misspelt parameter is not dropped: ``?issue-date=`` would give the forecast of another issue date, and
    ``?unusal=true`` a refusal that asks for what was sent. The page's own ``?station=`` still opens it."""
    c = service.client
    r = c.get("/stations/32006/forecast", params={"issue-date": "1977-06-01", "leads": 3})
    assert r.status_code == 422, r.text
    assert r.json()["detail"] == "issue-date: unknown query parameter; allowed: issue_date, leads"
    huge = {"observations": [{"date": "1977-03-01", "discharge": 1e6}]}
    r = c.post("/stations/32006/observations", params={"unusal": "true"}, json=huge, headers=AUTH)
    assert r.status_code == 422 and r.json()["detail"] == "unusal: unknown query parameter; allowed: unusual", r.text
    r = c.get("/warnings", params={"leads": 3})
    assert r.status_code == 422 and r.json()["detail"] == "leads: unknown query parameter; allowed: none", r.text
    assert _rows(service.db) == (0, 0, 0)
    assert c.get("/", params={"station": "32006"}).status_code == 200
    assert c.get("/stations/32006/forecast", params={"issue_date": "1977-06-01", "leads": 3}).status_code == 200


def test_the_page_and_its_assets_are_served_offline(service):
    c = service.client
    page = c.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    for hook in ('id="station"', 'id="chart"', 'id="forecast-table"', 'id="weights"', 'id="post-form"',
                 'id="obs-token"', 'id="verification"', 'id="warnings-list"', 'id="i18n"',
                 # where the script says why a forecast could not be loaded, in place of the chart
                 'id="load-error"'):
        assert hook in page.text
    assert "{{" not in page.text and 'lang="en"' in page.text
    # the lead days offered are those the model forecasts (the tiny model: 7), never more
    assert '<select id="leads"><option>1</option><option>3</option><option selected>7</option></select>' in page.text
    for asset in ("/static/app.js", "/static/style.css"):
        r = c.get(asset)
        assert r.status_code == 200 and len(r.text) > 100
        page.text.index(asset)
    for text in (page.text, c.get("/static/app.js").text, c.get("/static/style.css").text):
        assert "http://" not in text.replace("http://www.w3.org/2000/svg", "") and "https://" not in text
    assert "/stations/{station}/forecast" in json.dumps(c.get("/openapi.json").json()["paths"])


def test_the_page_speaks_chinese_when_the_browser_asks_for_it(service):
    from sca2lstm.serve.page import choose_language

    c = service.client
    zh = c.get("/", headers={"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.8"})
    assert zh.headers["content-language"] == "zh-CN" and 'lang="zh-CN"' in zh.text
    for label in ("河道流量预报", "测站", "预警", "预见期", "上报观测"):
        assert label in zh.text
    strings = json.loads(zh.text.split('<script id="i18n" type="application/json">')[1].split("</script>")[0])
    assert strings["no_warning"] == "无预警"
    en = c.get("/", headers={"Accept-Language": "en-GB,en;q=0.9,zh;q=0.5"})
    assert 'lang="en"' in en.text and "River-flow forecast" in en.text and "河道" not in en.text
    assert "River-flow forecast" in c.get("/").text  # no header: English
    assert choose_language("fr-FR, zh-TW;q=0.5") == "zh" and choose_language("zh;q=0, en") == "en"
    assert choose_language("de, fr") == "en" and choose_language("garbage;;q=x") == "en"


ZH = {"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.8"}


def test_the_services_refusals_are_in_chinese_when_the_browser_asks_for_it_and_english_otherwise(live, tiny_data_dir,
                                                                                                 tmp_path):
    """What the page shows of an answer it could not get (an unknown station, a day outside the data, a wrong token,
    a flow posted by mistake, a station whose file is corrupt) is in the page's language; the status, the headers
    and the other fields stay as they are, and English stays the default."""
    data = tmp_path / "data"
    shutil.copytree(tiny_data_dir, data)
    ts_file = reader.timeseries_file(data, "10002")
    ts_file.write_text(ts_file.read_text()[:2000] + "\nnot,a,date\n")
    with TestClient(create_app(data, tmp_path / "db.sqlite", live, token=TOKEN)) as c:
        cases = [("get", "/stations/99999/forecast", {}, 404, "station: unknown station '99999'; available: ",
                  "测站：未知测站 '99999'；可用的测站："),
                 ("get", "/stations/32006/forecast", {"params": {"issue_date": "1960-01-01"}}, 422,
                  "issue_date: 1960-01-01 is outside the station's data (", "发布日：1960-01-01 不在该测站的数据范围内（"),
                 ("get", "/stations/10002/forecast", {}, 503, f"station 10002: its data cannot be read ({ts_file.name}: ",
                  f"测站 10002：数据无法读取（{ts_file.name}: "),
                 ("post", "/stations/32006/observations", {"json": {"observations": [{"date": "1977-12-30",
                                                                                        "discharge": 1.0}]},
                                                           "headers": {"Authorization": "Bearer nope"}}, 401,
                  "authorization: wrong token", "授权：令牌错误"),
                 ("post", "/stations/32006/observations", {"json": {"observations": [{"date": "1977-12-30",
                                                                                        "discharge": 1e5}]},
                                                           "headers": AUTH}, 422,
                  "observations: discharge 100000 m3/s on 1977-12-30 is ", "观测：1977-12-30 的流量 100000 m3/s 是")]
        for method, url, kw, status, en, zh in cases:
            headers = kw.pop("headers", {})
            answers = [getattr(c, method)(url, headers={**headers, **lang}, **kw)
                       for lang in ({}, {"Accept-Language": "en"}, ZH)]
            assert [r.status_code for r in answers] == [status] * 3, [r.text for r in answers]
            for r in answers[:2]:
                assert r.json()["detail"].startswith(en) and not re.search("[\u4e00-\u9fff]", r.text), r.text
            assert answers[2].json()["detail"].startswith(zh), answers[2].text
            assert answers[2].headers["vary"] == "Accept-Language"
            if status == 401:
                assert answers[2].headers["www-authenticate"] == "Bearer"
        r = c.get("/warnings", headers=ZH)
        w = r.json()
        assert r.headers["vary"] == "Accept-Language"
        assert [e["station"] for e in w["errors"]] == ["10002"]  # the machine-readable fields as in English
        assert w["errors"][0]["detail"].startswith(f"测站 10002：数据无法读取（{ts_file.name}: ")
        assert c.get("/warnings").json()["errors"][0]["detail"].startswith("station 10002: its data cannot be read")
    assert _rows(tmp_path / "db.sqlite")[0] == 0


def test_every_message_of_the_service_has_the_same_values_in_every_language():
    import string

    from sca2lstm.serve.messages import MESSAGES, Message
    from sca2lstm.serve.page import LANGUAGES

    for kind, said in MESSAGES.items():
        assert set(said) == set(LANGUAGES), kind
        names = {lang: sorted(f.split(":")[0].split("!")[0] for _, f, _, _ in string.Formatter().parse(t) if f)
                 for lang, t in said.items()}
        assert names["zh"] == names["en"], kind
        assert re.search("[\u4e00-\u9fff]", said["zh"]) and not re.search("[\u4e00-\u9fff]", said["en"]), kind
        # said with values: the English text is the message itself, the Chinese one has the same values
        m = Message(kind, **{name: 7 for name in names["en"]})
        assert m == said["en"].format(**{name: 7 for name in names["en"]})
        assert m.said_in("zh") == said["zh"].format(**{name: 7 for name in names["en"]}) != m


def test_every_note_a_forecast_carries_has_the_same_values_in_every_language():
    import string

    from sca2lstm.notes import NOTES, Note
    from sca2lstm.serve.page import LANGUAGES

    for kind, said in NOTES.items():
        assert set(said) == set(LANGUAGES), kind
        names = {lang: sorted(f.split(":")[0].split("!")[0] for _, f, _, _ in string.Formatter().parse(t) if f)
                 for lang, t in said.items()}
        assert names["zh"] == names["en"], kind
        assert re.search("[\u4e00-\u9fff]", said["zh"]) and not re.search("[\u4e00-\u9fff]", said["en"]), kind
        n = Note(kind, **{name: 7 for name in names["en"]})
        assert n == said["en"].format(**{name: 7 for name in names["en"]})
        assert n.said_in("zh") == said["zh"].format(**{name: 7 for name in names["en"]}) != n


def _script_text(page: str) -> dict:
    """The strings the page's script writes, as the page embeds them (<script id="i18n">)."""
    return json.loads(page.split('<script id="i18n" type="application/json">')[1].split("</script>")[0])


def test_the_script_has_every_string_in_both_languages():
    """The script names a station /warnings could not forecast (its ``errors``) in the reader's language,
    and every string it writes exists in both languages (a missing one shows as "undefined")."""
    from sca2lstm.serve.page import LANGUAGES, render_page

    texts = {lang: _script_text(render_page(lang)) for lang in LANGUAGES}
    assert texts["en"].keys() == texts["zh"].keys()
    def filled(v):  # a string, a number, or a table of strings (the inputs' and settings' names)
        return v != "" and (isinstance(v, (str, int)) or isinstance(v, dict) and all(filled(x) for x in v.values()))

    assert all(filled(v) for t in texts.values() for v in t.values())
    assert (texts["en"]["not_forecast"], texts["zh"]["not_forecast"]) == ("could not be forecast", "无法预报")
    assert (texts["en"]["none_other"], texts["zh"]["none_other"]) == ("No other station is warned.", "其他测站没有预警。")
    # a request that gets no answer at all (the browser's own words are "Failed to fetch" in every language)
    assert (texts["en"]["unreachable"], texts["zh"]["unreachable"]) == ("The forecast service cannot be reached",
                                                                        "无法连接预报服务")


def test_the_chinese_page_names_every_input_and_setting_in_chinese():
    """The attention bars and the forecast's setting were written as identifiers (``precip_sum_7d``, ``issue-time``)
    on the Chinese page, and the inputs as identifiers on the English one."""
    import re

    from sca2lstm.config import load_config
    from sca2lstm.data.features import feature_names
    from sca2lstm.data.reader import TIMESERIES_COLUMNS
    from sca2lstm.evaluation.settings import SETTING_ISSUE, SETTING_WEATHER
    from sca2lstm.serve.page import render_page

    zh, en = _script_text(render_page("zh")), _script_text(render_page("en"))
    cfg = load_config(overrides={"data": {"derived_features": True, "forecast_flag": True, "use_discharge_input": True,
                                          "lead_days": 3}})
    weather = [c for c in TIMESERIES_COLUMNS if not c.startswith("discharge")]
    for name in feature_names(cfg) + weather:
        lag = re.fullmatch(r"discharge_lag(\d+)", name)
        label = zh["features"].get(name) or (zh["lag_flow"].replace("{n}", lag.group(1)) if lag else None)
        assert label and not re.search(r"[a-z]{2}", label.replace("SSI", "")), (name, label)
    assert "discharge_lag3" in feature_names(cfg) and zh["lag_flow"].replace("{n}", "3") == "3 天前的实测流量"
    for setting in (SETTING_ISSUE, SETTING_WEATHER):
        assert not re.search(r"[A-Za-z]", zh["settings"][setting]), setting
    for name in feature_names(cfg) + weather:  # English in words too, as the CLI's attention charts name them
        lag = re.fullmatch(r"discharge_lag(\d+)", name)
        label = en["features"].get(name) or (en["lag_flow"].replace("{n}", lag.group(1)) if lag else None)
        assert label and (label != name or name == "humidity"), (name, label)  # "humidity" is its own word
    assert en["lag_flow"].replace("{n}", "3") == "observed discharge 3 day(s) earlier, m³/s"
    assert (zh["comma"], zh["stop"]) == ("，", "。")


def test_the_page_says_an_input_missing_on_the_issue_day_is_missing_not_a_weight_of_0():
    """An input missing on the issue day has weight exactly 0 (the answer's ``weights``); its bar said "0.000", the
    look of an input the model chose to ignore. The page writes "missing" in the reader's language there."""
    from sca2lstm.serve.page import render_page

    en, zh = _script_text(render_page("en")), _script_text(render_page("zh"))
    assert (en["input_missing"], zh["input_missing"]) == ("missing", "缺测")
    js = (Path(__file__).resolve().parents[1] / "sca2lstm" / "serve" / "static" / "app.js").read_text(encoding="utf-8")
    assert "val.textContent = w === 0 ? T.input_missing : w.toFixed(3);" in js


def test_the_page_says_the_weather_forecast_flag_is_0_on_the_issue_day():
    """The page's attention bars are the issue day's, whose weather is observed: the flag input is 0 there and its
    weight multiplies nothing, which the bar must say in both languages, as the CLI's charts do."""
    from sca2lstm.data.features import FORECAST_FLAG, OBSERVED_FLAG_LABEL
    from sca2lstm.serve.page import render_page

    en, zh = _script_text(render_page("en")), _script_text(render_page("zh"))
    assert en["features"][FORECAST_FLAG] == OBSERVED_FLAG_LABEL == "weather_is_forecast (= 0: observed weather)"
    assert zh["features"][FORECAST_FLAG] == "天气预报标记（= 0：实测天气）"


def test_serve_cli_refuses_bad_flags_in_one_line(tmp_path, capsys, monkeypatch):
    from sca2lstm.cli.main import main

    empty = tmp_path / "token"
    empty.write_text("\n")
    assert main(["serve", "--model", str(tmp_path / "none.pth"), "--token_file", str(empty)]) == 2
    err = capsys.readouterr().err.strip()
    assert "--token_file" in err and len(err.splitlines()) == 1
    # a token no HTTP header can carry as written (non-ASCII, a space) would answer every write 'wrong token'
    accented = tmp_path / "token2"
    accented.write_text("tök-geheim-1234567890\n", encoding="utf-8")
    assert main(["serve", "--model", str(tmp_path / "none.pth"), "--token_file", str(accented)]) == 2
    err = capsys.readouterr().err.strip()
    assert "'ö'" in err and "--token_file" in err and len(err.splitlines()) == 1
    monkeypatch.setenv("SCA2LSTM_TOKEN", "two words")
    assert main(["serve", "--model", str(tmp_path / "none.pth")]) == 2
    err = capsys.readouterr().err.strip()
    assert "$SCA2LSTM_TOKEN" in err and "' '" in err and len(err.splitlines()) == 1
    monkeypatch.delenv("SCA2LSTM_TOKEN")
    assert main(["serve", "--model", str(tmp_path / "none.pth")]) == 2
    err = capsys.readouterr().err.strip()
    assert "none.pth" in err and len(err.splitlines()) == 1
    assert main(["serve", "--model", str(tmp_path), "--anonymous_per_minute", "30"]) == 2
    assert "--anonymous_per_minute" in capsys.readouterr().err


def _free_port() -> str:
    """A TCP port free on this machine now (the system's pick), as a --port value."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return str(s.getsockname()[1])


def test_a_db_folder_without_write_access_and_a_foreign_host_are_one_line_naming_the_flag(pretrained_ckpt, tmp_path,
                                                                                            capsys):
    """The lock beside --db cannot be made (here: a folder holds its name, as a read-only folder would refuse
    it), and --host is an address this machine does not have: one line each naming the flag that is wrong,
    exit 2, before the models load (a PermissionError traceback, and a message that blamed --port, before)."""
    from sca2lstm.cli.main import main

    db = tmp_path / "serve.sqlite"
    (tmp_path / "serve.sqlite.lock").mkdir()
    port = _free_port()  # a port nothing else on the machine uses: only the flag under test is wrong
    assert main(["serve", "--model", str(pretrained_ckpt), "--port", port, "--db", str(db)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"--db {db}: cannot write its lock file {db}.lock" in err, err
    # 192.0.2.1 is TEST-NET-1 (RFC 5737): never an address of this machine
    assert main(["serve", "--model", str(pretrained_ckpt), "--host", "192.0.2.1", "--port", port, "--db",
                 str(tmp_path / "other.sqlite")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--host '192.0.2.1' is not an address of this machine" in err, err
    assert not (tmp_path / "other.sqlite").exists() and not db.exists()


def test_what_is_wrong_with_the_database_or_port_is_said_before_any_model_loads(pretrained_ckpt, tmp_path, capsys):
    """A folder or a non-database as --db, a database another server holds, and a port in use: one line each,
    exit 2, before the models load (which takes seconds to minutes), and nothing made."""
    import socket

    from sca2lstm.cli.main import main
    from sca2lstm.cli.serve import lock_db

    base = ["serve", "--model", str(pretrained_ckpt), "--port", _free_port()]

    def refused(*extra) -> str:
        assert main([*base, *extra]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1, err
        return err

    (tmp_path / "dbdir").mkdir()
    assert "is a folder; expected a database file" in refused("--db", str(tmp_path / "dbdir"))
    junk = tmp_path / "我的 数据#1" / "junk.sqlite"          # a path as a user's folder may be named
    junk.parent.mkdir()
    junk.write_bytes(b"this is no database, just some bytes" * 40)
    assert "is not a database this service can read" in refused("--db", str(junk))
    held = lock_db(tmp_path / "serve.sqlite")   # as a running server holds it
    try:
        assert "is in use by another sca2lstm serve" in refused("--db", str(tmp_path / "serve.sqlite"))
    finally:
        held.close()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["serve", "--model", str(pretrained_ckpt), "--port", str(port), "--db",
                     str(tmp_path / "other.sqlite")]) == 2
        assert f"--port {port}" in capsys.readouterr().err
    assert not (tmp_path / "other.sqlite").exists()


def test_a_start_that_fails_after_taking_the_database_lock_leaves_no_lock_behind(pretrained_ckpt, tiny_data_dir,
                                                                                tmp_path, capsys, monkeypatch):
    """A bad --data_dir (found once the model is read) and a port taken between the check and uvicorn's bind: the
    start fails, and the lock it took beside --db is gone, so the next server on the database is not refused as
    if one were running. A lock another server holds is left where it is."""
    import socket

    from sca2lstm.cli import serve as serve_cli
    from sca2lstm.cli.main import main
    from sca2lstm.cli.serve import lock_db

    db, lock = tmp_path / "serve.sqlite", tmp_path / "serve.sqlite.lock"
    base = ["serve", "--model", str(pretrained_ckpt), "--db", str(db), "--workers", "0"]
    assert main([*base, "--port", "8767", "--data_dir", str(tmp_path / "absent")]) == 1
    assert "does not exist" in capsys.readouterr().err
    assert not lock.exists()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        # another program takes the port while the models load: the check before passed, uvicorn's bind fails
        monkeypatch.setattr(serve_cli, "check_port", lambda host, port: None)
        with pytest.raises(SystemExit):
            main([*base, "--port", str(port), "--data_dir", str(tiny_data_dir)])
    assert not lock.exists()
    held = lock_db(db)  # the next server: not refused
    try:
        assert main([*base, "--port", "8767"]) == 2 and "is in use by another" in capsys.readouterr().err
        assert lock.exists()
    finally:
        serve_cli.unlock_db(held)
    assert not lock.exists()


def test_the_store_is_wal_with_full_sync_for_posts(tmp_path):
    from sca2lstm.serve.store import Store

    store = Store(tmp_path / "s.sqlite")
    store.add_forecast("32006", "1977-01-01", 7, 0, "f", "m", "issue-time", [], {})  # NORMAL for this one only

    def pragma(name):
        return store._db.execute(f"PRAGMA {name}").fetchone()[0]

    assert pragma("journal_mode") == "wal" and pragma("synchronous") == 2  # 2 = FULL
    assert store.upsert_observations("32006", [{"date": "1977-01-01", "discharge": 1.0}]) == 1
    store.close()
    assert Store(tmp_path / "s.sqlite").data_version("32006") == 1  # versions survive a reopen


def test_a_database_without_fingerprints_keeps_its_forecasts(tmp_path):
    db = tmp_path / "old.sqlite"
    store = older_database(db, (
        "CREATE TABLE forecasts (id INTEGER PRIMARY KEY AUTOINCREMENT, station TEXT NOT NULL, issue_date TEXT NOT "
        "NULL, leads INTEGER NOT NULL, data_version INTEGER NOT NULL, model_sha256 TEXT NOT NULL, setting TEXT NOT "
        "NULL, table_json TEXT NOT NULL, weights_json TEXT NOT NULL, created_at TEXT NOT NULL, UNIQUE (station, "
        "issue_date, leads, data_version, model_sha256));"
        "INSERT INTO forecasts VALUES (7, '32006', '1977-01-01', 3, 0, 'm', 'issue-time', '[]', '{}', 'then');"))
    assert [r["id"] for r in store.forecasts("32006")] == [7]
    assert store.find_forecast("32006", "1977-01-01", 3, 0, "fp", "m") is None  # a current file: issued again
    assert store.add_forecast("32006", "1977-01-01", 3, 0, "fp", "m", "issue-time", [], {})["id"] == 8
    assert [r["notes"] for r in store.forecasts("32006")] == [[], []]


def test_a_database_from_before_calibrations_were_recorded_keeps_its_forecasts(tmp_path):
    """A database whose forecasts were stored without their calibration opens, keeps them (calibration empty: no
    served calibration matches, so they are issued again, as a new row) and records the calibration from then on."""
    from sca2lstm.serve.store import Store

    db = tmp_path / "old.sqlite"
    store = older_database(db, (
        "CREATE TABLE forecasts (id INTEGER PRIMARY KEY AUTOINCREMENT, station TEXT NOT NULL, issue_date TEXT NOT "
        "NULL, leads INTEGER NOT NULL, data_version INTEGER NOT NULL, data_fingerprint TEXT NOT NULL DEFAULT '', "
        "model_sha256 TEXT NOT NULL, setting TEXT NOT NULL, table_json TEXT NOT NULL, weights_json TEXT NOT NULL, "
        "created_at TEXT NOT NULL, origin TEXT NOT NULL DEFAULT 'request', levels_json TEXT NOT NULL DEFAULT '{}', "
        "weather_id INTEGER NOT NULL DEFAULT 0, notes_json TEXT NOT NULL DEFAULT '[]', UNIQUE (station, issue_date, "
        "leads, data_version, data_fingerprint, model_sha256, weather_id));"
        "INSERT INTO forecasts VALUES (7, '32006', '1977-01-01', 3, 0, 'fp', 'm', 'issue-time', '[]', '{}', 'then', "
        "'daily', '{}', 0, '[\"a note\"]');"))
    [old] = store.forecasts("32006")
    assert (old["id"], old["origin"], old["notes"], old["calibration_sha256"]) == (7, "daily", ["a note"], "")
    assert store.find_forecast("32006", "1977-01-01", 3, 0, "fp", "m", 0, "c") is None  # a calibration: issued again
    new = store.add_forecast("32006", "1977-01-01", 3, 0, "fp", "m", "issue-time", [], {}, calibration_sha256="c")
    assert new["id"] == 8 and new["calibration_sha256"] == "c"
    assert store.find_forecast("32006", "1977-01-01", 3, 0, "fp", "m", 0, "c")["id"] == 8
    store.close()
    assert [r["id"] for r in Store(db).forecasts("32006")] == [8, 7]  # opened again: nothing rebuilt or lost


def test_leads_are_bounded_by_the_model_and_the_default_issue_day_has_observed_flow(service, bundle):
    c = service.client
    trained = bundle[1].training.forecast_leads
    r = c.get("/stations/32006/forecast", params={"leads": trained + 1})
    assert r.status_code == 422 and "leads" in r.json()["detail"] and str(trained) in r.json()["detail"]
    # Rain posted after the file's end, without flow: the default issue day stays the last observed flow.
    c.post("/stations/32006/observations", headers=AUTH,
           json={"observations": [{"date": "1978-01-03", "precipitation": 5.0}]})
    fc = c.get("/stations/32006/forecast").json()
    assert fc["issue_date"] == "1977-12-31" and len(fc["forecast"]) == min(7, trained)
    assert not any("no flow observed on the issue date" in n for n in fc["notes"])
    # asked for that rainy day, the forecast starts from the flow of 1977-12-31 and says so, as the CLI does
    q = reader.read_timeseries(service.data_dir, "32006")["discharge_vol"]
    fc = c.get("/stations/32006/forecast", params={"issue_date": "1978-01-03"}).json()
    assert fc["issue_date"] == "1978-01-03"
    assert (f"no flow observed on the issue date 1978-01-03; the forecast starts from the last observed flow, "
            f"{q.loc['1977-12-31']:.3g} m3/s on 1977-12-31, 3 day(s) before it") in " ".join(fc["notes"])


def test_a_forecast_early_in_the_record_says_so_as_sca2lstm_forecast_does(service, bundle):
    """A forecast issued where the record holds fewer days than the model reads starts from a partly empty window:
    `sca2lstm forecast` says so, and the service's answer (and its stored row) say it too, once."""
    c = service.client
    cli = warned_forecast(bundle, "32006", data_dir=service.data_dir, issue_date="1970-10-05", leads=3,
                          timeseries=reader.read_timeseries(service.data_dir, "32006"),
                          model_path=bundle[3]["source_path"])[0]
    said = [n for n in cli.data["notes"] if "partly empty window" in n]
    assert len(said) == 1 and "only 5 day(s) of record up to the issue date 1970-10-05" in said[0]
    fc = c.get("/stations/32006/forecast", params={"issue_date": "1970-10-05", "leads": 3}, headers=AUTH).json()
    assert [n for n in fc["notes"] if "partly empty window" in n] == said, fc["notes"]
    assert len(set(fc["notes"])) == len(fc["notes"])
    stored = c.get("/stations/32006/forecast", params={"issue_date": "1970-10-05", "leads": 3}, headers=AUTH).json()
    assert stored["cached"] is True and stored["notes"] == fc["notes"]


def test_days_posted_after_the_file_are_appended_and_forecast_from(service, bundle):
    c = service.client
    r = c.post("/stations/10002/observations", headers=AUTH, json={"observations": [
        {"date": "1978-01-02", "discharge": 4.0, "precipitation": 1.0, "temperature": 5.0}]})
    assert r.status_code == 200, r.text
    obs = c.get("/stations/10002/observations", params={"start": "1977-12-31", "end": "1978-01-02"}).json()
    assert [o["date"] for o in obs["observations"]] == ["1977-12-31", "1978-01-01", "1978-01-02"]
    assert obs["observations"][1]["discharge"] is None  # a gap day stays missing, not invented
    fc = c.get("/stations/10002/forecast", params={"leads": 2}).json()
    assert fc["issue_date"] == "1978-01-02"
    file = reader.read_timeseries(service.data_dir, "10002")
    ts = file.reindex(pd.date_range(file.index[0], "1978-01-02", freq="D", name="date"))
    ts.loc["1978-01-02", ["discharge_vol", "precipitation", "temperature"]] = [4.0, 1.0, 5.0]
    assert fc["forecast"] == _expected(bundle, service.data_dir, "10002", "1978-01-02", 2, ts)


def test_a_day_posted_so_far_after_the_record_that_its_forecast_would_read_nothing_is_refused(service, bundle):
    """A reading of today posted for a file that ends in 1977: the default forecast was then issued on it, with
    none of the days it reads known, and failed (422) until the post was taken back. Such a post is refused in one
    line naming the gap and the file's last day, and nothing is stored; a day whose forecast reads a known day is
    taken, and so is today posted with the days before it that a forecast reads."""
    c = service.client
    back = history_days(bundle[1])
    end, today = dt.date(1977, 12, 31), dt.date.today()

    def day(d, k=0):
        return {"date": d.isoformat(), "discharge": 3.0 + k % 5, "precipitation": float(k % 3), "temperature": 8.0}

    before = c.get("/stations/10003/forecast", params={"leads": 2}).json()
    rows = _rows(service.db)
    r = c.post("/stations/10003/observations", headers=AUTH, json={"observations": [day(today)]})
    assert r.status_code == 422, r.text
    assert r.json()["detail"] == (
        f"observations: {today} is {(today - end).days} days after the last day of station 10003's record, {end} "
        f"(the end of its file); a forecast issued on it reads the {back} days before it "
        f"({today - dt.timedelta(days=back)}..{today - dt.timedelta(days=1)}), which would hold no data. Post those "
        "days with it, or add the days up to it to the station's file")
    assert _rows(service.db) == rows
    again = c.get("/stations/10003/forecast", params={"leads": 2}).json()
    assert (again["issue_date"], again["forecast"]) == (str(end), before["forecast"])

    edge = end + dt.timedelta(days=back)  # the last day whose forecast still reads the file's last day
    assert c.post("/stations/10003/observations", headers=AUTH, json={"observations": [
        day(edge + dt.timedelta(days=back + 1))]}).status_code == 422
    assert c.post("/stations/10003/observations", headers=AUTH, json={"observations": [day(edge)]}).status_code == 200
    assert c.get("/stations/10003/forecast", params={"leads": 2}).json()["issue_date"] == str(edge)
    r = c.post("/stations/10003/observations", headers=AUTH, json={"observations": [day(today)]})
    assert r.status_code == 422 and r.json()["detail"].startswith(
        f"observations: {today} is {(today - edge).days} days after the last day of station 10003's record, {edge} "
        f"(a day posted before; its file ends {end}); ")

    window = [day(today - dt.timedelta(days=k), k) for k in range(back, -1, -1)]
    r = c.post("/stations/10003/observations", headers=AUTH, json={"observations": window})
    assert r.status_code == 200, r.text
    fc = c.get("/stations/10003/forecast", params={"leads": 2})
    assert fc.status_code == 200 and fc.json()["issue_date"] == str(today), fc.text


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
    for flag in ("--model", "--data_dir", "--db", "--host", "--port", "--token_file", "--workers"):
        assert flag in out
    assert "127.0.0.1" in out
    assert main(["serve", "--model", "m.pth", "--port", "70000"]) == 2
    assert "--port" in capsys.readouterr().err


def test_a_checkpoint_replaced_again_and_again_keeps_only_the_versions_in_use_loaded(pretrained_ckpt, tiny_data_dir,
                                                                                     tmp_path):
    """A served checkpoint replaced on disk day after day (a nightly fine-tune copied over it): each version is
    taken once settled, and the process keeps loaded only the one in use and the one it replaced (requests in
    flight may still run it), not every version it ever served: memory stays bounded."""
    import torch

    from sca2lstm.evaluation import live
    from sca2lstm.fileio import file_sha256

    model = tmp_path / "m" / "sca2lstm.pth"
    model.parent.mkdir()
    shutil.copyfile(pretrained_ckpt, model)
    ckpt = torch.load(pretrained_ckpt, weights_only=True)
    with forecaster(model, tiny_data_dir, rescan_every=0) as f:
        shas = []
        for night in range(5):
            staged = model.with_name(f".night{night}.pth")
            torch.save({**ckpt, "qa_night": night}, staged)  # new bytes, the same model
            os.replace(staged, model)
            t = time.time() - 60
            os.utime(model, (t, t))
            f.rescan(force=True)
            shas.append(file_sha256(model))
            assert f.default.sha256 == shas[-1]
            f.forecast("32006", reader.read_timeseries(tiny_data_dir, "32006"), night, "1977-07-01", 3)
        held = [sha for path, sha in live._BUNDLES if path == str(model)]
        assert sorted(held) == sorted(shas[-2:])


def test_the_page_says_its_flows_and_levels_are_daily_means_in_both_languages():
    """A fitted q20y shown as a bare "m³/s" reads as the agency's (instantaneous, higher) 20-year peak."""
    from sca2lstm.serve.page import render_page

    assert "Flows in m³/s, daily means, and so are the warning levels" in render_page("en")
    assert "均为日平均流量，预警流量亦然" in render_page("zh")


def test_the_page_shades_names_and_tabulates_the_quantile_levels_the_answer_gives():
    """A model trained with other quantile levels (0.1/0.9) answers them in each lead's ``quantiles`` and null in
    q05 .. q95: the script reads the levels from there (the fan's intervals as the CLI's fan chart picks them, the
    table's columns), and the page marks the legend's interval names and the tables' quantile headings it rewrites;
    the page as served still reads as the default levels' page did (25-75 %, 5-95 %, 5/25/75/95 %)."""
    from sca2lstm.serve.page import TEXT, render_page

    js = (Path(__file__).resolve().parents[1] / "sca2lstm" / "serve" / "static" / "app.js").read_text("utf-8")
    # the levels come from each lead's quantiles, never from the fixed fields a model of deciles leaves null
    assert "f.quantiles" in js and "function intervalBands(forecast)" in js
    for fixed in ("f.q05", "f.q25", "f.q75", "f.q95", 'band("q05"', '["q05", fmt('):
        assert fixed not in js, fixed
    for hook in ('$(".legend .key." + cls)', '"th.quantile"', '"th.warning-col"', '"#verification th.interval"'):
        assert hook in js, hook
    for lang in ("en", "zh"):
        page = render_page(lang)
        for key, label in (("band50", "25–75 %"), ("band90", "5–95 %")):   # the key, then the interval's name
            assert f'<span class="key {key}"></span> {label}\n' in page, key
        assert "".join(f'<th class="quantile">{q} %</th>' for q in (5, 25, 75, 95)) + '<th class="warning-col">' in page
        assert '<th class="interval">5–95 %</th>' in page
        legend = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", page.split('<p class="legend">')[1].split("</p>")[0]))
        assert f"{TEXT[lang]['median']} 25–75 % 5–95 % {TEXT[lang]['levels']}" in legend, legend


def test_the_chart_legend_names_the_levels_it_leaves_out():
    """Levels more than three times the data's range are not drawn (they would flatten the hydrograph); the
    legend must then name them, or a reader looks for warning lines that are not there."""
    from sca2lstm.serve.page import render_page

    js = (Path(__file__).resolve().parents[1] / "sca2lstm" / "serve" / "static" / "app.js").read_text("utf-8")
    assert '$("#levels-off").textContent' in js and "T.levels_off" in js
    for lang in ("en", "zh"):
        page = render_page(lang)
        assert '<span id="levels-off"></span>' in page
        assert "{l}" in _script_text(page)["levels_off"]


def test_the_chart_legend_shows_the_levels_and_observed_after_keys_only_where_they_are_drawn():
    """The legend always named "warning levels" and "observed after the issue day", even for a forecast without
    levels or of days not yet observed, whose chart draws neither line. drawChart shows each key (and its name) only
    where the line is drawn: the level key where a level line is drawn, its name also where levels are left out (the
    note listing them follows it), the observed-after key where a day after the issue day has an observed flow. The
    key's name comes back on a later chart that draws it. The helper is run in node on stand-in legend nodes."""
    import subprocess

    js = (Path(__file__).resolve().parents[1] / "sca2lstm" / "serve" / "static" / "app.js").read_text("utf-8")
    chart = js.split("function drawChart(fc)")[1].split("\nfunction ")[0]
    assert 'showKey("level", shown.length > 0, off.length > 0 || shown.length > 0);' in chart
    assert 'showKey("after", after.some((d) => d.observed !== null));' in chart
    helper = "function showKey(" + js.split("function showKey(")[1].split("\nfunction ")[0]
    if shutil.which("node") is None:
        pytest.skip("node is not installed: the helper's behaviour is not run")
    script = helper + """
const keys = {};
const $ = (sel) => keys[sel.split(".").pop()];
for (const cls of ["level", "after"]) keys[cls] = { dataset: {}, style: { display: "" },
                                                   nextSibling: { textContent: " " + cls + " name " } };
const seen = [];
const look = (cls) => seen.push([cls, keys[cls].style.display, keys[cls].nextSibling.textContent]);
showKey("level", false, false); look("level");
showKey("level", false, true); look("level");
showKey("level", true, true); look("level");
showKey("after", false); look("after");
showKey("after", true); look("after");
console.log(JSON.stringify(seen));
"""
    out = subprocess.run(["node", "-e", script], capture_output=True, text=True, timeout=60, check=True).stdout
    assert json.loads(out) == [["level", "none", " "], ["level", "none", " level name "], ["level", "", " level name "],
                               ["after", "none", " "], ["after", "", " after name "]], out


def test_the_page_tables_scroll_inside_their_cards():
    """A model of six or more quantile levels (0.05/0.1/0.25/0.75/0.9/0.95) gives the forecast table more nowrap
    columns than a half-width card holds at 1280 px (and the default table in a phone's window): each table sits in
    a wrapper that scrolls sideways, so its Warning column no longer sticks out past the card's edge."""
    from sca2lstm.serve.page import render_page

    css = (Path(__file__).resolve().parents[1] / "sca2lstm" / "serve" / "static" / "style.css").read_text("utf-8")
    rule = re.search(r"^\.table-scroll\s*\{([^}]*)\}", css, re.M)
    assert rule and re.search(r"(^|;)\s*overflow-x:\s*auto\s*(;|$)", rule.group(1).strip()), css
    for lang in ("en", "zh"):
        page = render_page(lang)
        for table in ("forecast-table", "verification"):
            assert re.search(rf'<div class="table-scroll">\s*<table id="{table}">.*?</table>\s*</div>', page, re.S), \
                (lang, table)


def test_the_chart_leaves_out_a_month_label_over_the_issue_day_label():
    """An issue day at a month's end (1977-12-31) put the next month's tick label ("1978-01") right above the
    issue-day label under the axis, the two read as one smudge: the month loop skips a label whose centre is within
    the two labels' half-widths (7 and 10 characters of about 6.4 px) of the issue-day label's centre."""
    js = (Path(__file__).resolve().parents[1] / "sca2lstm" / "serve" / "static" / "app.js").read_text("utf-8")
    chart = js.split("function drawChart(fc)")[1].split("\nfunction ")[0]
    loop = re.search(r"for \(let d = Math\.ceil\(x0\); d <= x1; d\+\+\) \{(.*?)\n  \}", chart, re.S)
    assert loop, "the month-label loop of drawChart"
    # the issue label's centre is known before the month labels are placed, and it is where the label is drawn
    assert chart.index("const issueX = inside(sx(issue), 10);") < loop.start()
    assert "haloText(axes, { x: issueX," in chart
    body = loop.group(1)
    skip = re.search(r"if \(Math\.abs\(x - issueX\) < \(7 \+ 10\) \* 3\.2( \+ \d+)?\) continue;", body)
    assert skip, body
    # the skip comes before the label is drawn, and the label drawn is at the x the skip tested
    assert skip.start() < body.index('svgEl("text", { x, y: H - B + 16')


def test_a_forecast_of_days_the_model_learned_from_says_so_on_the_page_as_the_command_does(service, bundle):
    """An issue date picked by hand inside the model's training years: `sca2lstm forecast` says the forecast is
    in-sample, not a test; the service said nothing, beside the observed flows it draws after the issue date. It
    carries the command's very note, in Chinese for a reader who prefers it; a forecast of unseen days has none."""
    c = service.client
    p = {"issue_date": "1973-06-15", "leads": 3}
    fc, _, _ = warned_forecast(bundle, "32006", data_dir=service.data_dir, issue_date="1973-06-15", leads=3)
    english = next(n for n in fc.data["notes"] if "in-sample" in n)
    assert english in c.get("/stations/32006/forecast", params=p).json()["notes"]
    chinese = c.get("/stations/32006/forecast", params=p, headers={"Accept-Language": "zh-CN,zh;q=0.9"}).json()["notes"]
    assert "测站 32006：预报日期 1973-06-16..1973-06-18 是模型" in " ".join(chinese) and english not in chinese, chinese
    unseen = c.get("/stations/32006/forecast", params={"issue_date": "1976-06-15", "leads": 3}).json()["notes"]
    assert not any("in-sample" in n for n in unseen), unseen


@pytest.mark.parametrize("ctype", ["application/x-www-form-urlencoded", "text/plain", None])
def test_a_json_body_sent_without_its_content_type_is_415_saying_which_header_to_send(service, ctype):
    """curl -d '{...}' without -H sends a form's type: the body reached the endpoint unread and the answer was
    pydantic's 'Input should be a valid dictionary', naming neither the header nor the fix. One line names the
    type sent and the one to send, in Chinese too; nothing is stored."""
    c = service.client
    body = b'{"observations": [{"date": "1978-01-01", "discharge": 3.0}]}'
    headers = {**AUTH, **({"Content-Type": ctype} if ctype else {})}
    r = c.post("/stations/32006/observations", content=body, headers=headers)
    assert r.status_code == 415, r.text
    assert r.json()["detail"] == (f"Content-Type: {ctype or 'none'} is not read here; send the body as JSON with "
                                  'Content-Type: application/json (curl: -H "Content-Type: application/json")')
    r = c.put("/stations/32006/levels", content=b'{"levels": {"alert": 5.0}}',
              headers={**headers, "Accept-Language": "zh"})
    assert r.status_code == 415 and r.json()["detail"].startswith("Content-Type：此处无法读取 ")
    assert _rows(service.db)[0] == 0
    # sent as JSON, the same body is read
    assert c.post("/stations/32006/observations", content=body,
                  headers={**AUTH, "Content-Type": "application/json"}).status_code == 200
