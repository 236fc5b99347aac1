"""A station's named warning levels set through the service (PUT /stations/{id}/levels, with the token) and read
back (GET /stations/{id}/levels), with the tiny trained model: checked as the import checks them, written to the
station's metadata file, and warned on by the next forecast, /warnings and the daily issue."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
import sqlite3

import numpy as np
import pytest
from fastapi.testclient import TestClient
from serve_helpers import forecaster

from sca2lstm.data import reader
from sca2lstm.data.station_meta import StationMeta, WarningLevel, meta_path
from sca2lstm.evaluation.exceedance import exceedance_probability
from sca2lstm.serve.app import create_app
from sca2lstm.serve.daily import Daily

TOKEN = "levels-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
TAUS = [0.05, 0.25, 0.5, 0.75, 0.95]
# Q = 10 h^2 (h in m): a water level of 0.5 m is 2.5 m3/s, one of 2 m is 40 m3/s
CURVE = {"kind": "power", "segments": [{"a": 10.0, "b": 2.0, "h0": 0.0, "h_max": None, "valid_from": None,
                                        "valid_to": None}]}


@pytest.fixture(scope="module")
def data(tiny_data_dir, tmp_path_factory):
    d = tmp_path_factory.mktemp("levels") / "data"
    shutil.copytree(tiny_data_dir, d)
    return d


@pytest.fixture(scope="module")
def live(pretrained_ckpt, data):
    with forecaster(pretrained_ckpt, data) as f:
        yield f


@pytest.fixture(scope="module")
def record(data):
    q = reader.read_timeseries(data, "32006")["discharge_vol"].dropna()
    return float(q.min()), float(q.max())


def _imported(data, levels=None, rating_curve=None, **provenance):
    """32006's metadata file as `sca2lstm station import` writes it (its provenance, a gauge's column names)."""
    meta = StationMeta("32006", warning_levels=levels or {}, rating_curve=rating_curve,
                       provenance={"source": "/gauges/水文站.csv", "mapping": {"date": "时间", "discharge": "流量"},
                                   "discharge_unit": "m3/s", **provenance})
    path = meta_path(data, "32006")
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps(meta.to_dict(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def _quantiles(fc):
    return np.array([[r[k] for k in ("q05", "q25", "median", "q75", "q95")] for r in fc["forecast"]], np.float64)


def _p_exceed(fc, value):
    """P(Q > value) per lead from the answer's own quantiles, to the 4 decimals warnings are decided on."""
    return list(np.round(exceedance_probability(_quantiles(fc), TAUS, value), 4))


def test_setting_levels_needs_the_token_and_a_refused_one_leaves_the_file_as_it_was(live, data, tmp_path):
    path = _imported(data, {"alert": WarningLevel(5.0)})
    before = path.read_bytes()
    body = {"levels": {"alert": 6.0}}
    with TestClient(create_app(data, tmp_path / "db.sqlite", live, token=TOKEN)) as c:
        for headers in ({}, {"Authorization": "Bearer levels-tokem"}, {"Authorization": f"Basic {TOKEN}"}):
            r = c.put("/stations/32006/levels", json=body, headers=headers)
            assert r.status_code == 401 and "authorization" in r.json()["detail"], r.text
        assert c.put("/stations/99999/levels", json=body, headers=AUTH).status_code == 404
    with TestClient(create_app(data, tmp_path / "db.sqlite", live, token=None)) as c:
        r = c.put("/stations/32006/levels", json=body, headers=AUTH)
        assert r.status_code == 403 and "writes are off" in r.json()["detail"]
    assert path.read_bytes() == before


def test_levels_set_through_the_service_are_warned_on_by_the_next_forecast_warnings_and_daily_issue(
        live, data, record, tmp_path):
    meta = meta_path(data, "32006")
    meta.unlink(missing_ok=True)  # a station without a metadata file: return-period levels only
    db = tmp_path / "db.sqlite"
    clock = [dt.datetime(2026, 12, 7, 8, 0, tzinfo=dt.timezone.utc)]
    with TestClient(create_app(data, db, live, token=TOKEN, daily=Daily(now=lambda: clock[0]))) as c:
        first = c.get("/stations/32006/forecast", headers=AUTH).json()
        fitted = first["levels"]
        assert not {"alert", "danger"} & set(fitted)
        assert c.get("/stations/32006/levels").json()["levels"] == {n: {**lv, "stage": None} for n, lv in fitted.items()}
        q = _quantiles(first)
        low = 0.5 * float(q[:, 0].min())            # below every lead's q05: P(Q > low) > 0.95
        high = min(3.0 * float(q[:, 4].max()), 9.0 * record[1])  # far above every q95: P(Q > high) < 0.05
        assert record[0] <= low and high > 2.0 * q[:, 4].max()  # levels the import takes for this record

        r = c.put("/stations/32006/levels", headers=AUTH,
                  json={"levels": {"alert": low, "danger": high}, "warn_probability": {"danger": 0.3}})
        assert r.status_code == 200, r.text
        assert r.json() == {"station": "32006", "levels": {
            "alert": {"value": low, "unit": "m3/s", "warn_probability": None, "flow": low},
            "danger": {"value": high, "unit": "m3/s", "warn_probability": 0.3, "flow": high}}}
        assert json.loads(meta.read_text())["warning_levels"] == {
            "alert": {"value": low, "unit": "m3/s"}, "danger": {"value": high, "unit": "m3/s", "warn_probability": 0.3}}

        fc = c.get("/stations/32006/forecast", headers=AUTH).json()
        assert fc["cached"] is False and fc["id"] != first["id"] and fc["forecast"][0]["median"] == q[0, 2]
        assert set(fc["levels"]) == set(fitted) | {"alert", "danger"}
        assert (fc["levels"]["alert"]["value"], fc["levels"]["alert"]["source"]) == (low, "station metadata")
        assert fc["levels"]["danger"]["warn_probability"] == 0.3
        assert fc["levels"]["danger"]["warn_probability_source"] == "station metadata"
        for name, value in (("alert", low), ("danger", high)):
            assert [r["p_exceed"][name] for r in fc["forecast"]] == pytest.approx(_p_exceed(fc, value), abs=1e-12)
        assert all(r["p_exceed"]["alert"] > 0.95 and r["p_exceed"]["danger"] < 0.05 for r in fc["forecast"])
        assert [r["warning"] for r in fc["forecast"]] == ["alert"] * 7
        # GET .../levels: the levels the forecasts warn on, as they give them
        got = c.get("/stations/32006/levels").json()
        assert (got["issue_date"], got["forecast_id"]) == (fc["issue_date"], fc["id"])
        assert got["levels"] == {n: {**lv, "stage": None} for n, lv in fc["levels"].items()}
        mine = next(s for s in c.get("/warnings").json()["stations"] if s["station"] == "32006")
        assert (mine["warning"], mine["first_lead"]) == ("alert", 1) and set(mine["levels"]) == set(fc["levels"])

        # Swapped: the file keeps its size, and its time is put back as a coarse file clock would leave it
        st = meta.stat()
        r = c.put("/stations/32006/levels", headers=AUTH,
                  json={"levels": {"alert": high, "danger": low}, "warn_probability": {"danger": 0.3}})
        assert r.status_code == 200, r.text
        os.utime(meta, ns=(st.st_atime_ns, st.st_mtime_ns))
        assert (meta.stat().st_size, meta.stat().st_mtime_ns) == (st.st_size, st.st_mtime_ns)
        swapped = c.get("/stations/32006/forecast", headers=AUTH).json()
        assert (swapped["levels"]["alert"]["value"], swapped["levels"]["danger"]["value"]) == (high, low)
        assert [r["warning"] for r in swapped["forecast"]] == ["danger"] * 7
        mine = next(s for s in c.get("/warnings").json()["stations"] if s["station"] == "32006")
        assert (mine["warning"], mine["levels"]["danger"]["value"]) == ("danger", low)
        issued = c.post("/daily_issue", headers=AUTH).json()
        assert issued["failed"] == [] and issued["alerts"] == 1

        # {} removes them: the forecasts warn on the fitted levels alone again
        r = c.put("/stations/32006/levels", headers=AUTH, json={"levels": {}})
        assert r.status_code == 200 and r.json()["levels"] == {}
        assert json.loads(meta.read_text())["warning_levels"] == {}
        clock[0] += dt.timedelta(days=1)
        assert c.post("/daily_issue", headers=AUTH).json()["alerts"] == 1  # the danger warning ends
        gone = c.get("/stations/32006/forecast", headers=AUTH).json()
        assert gone["levels"] == fitted and all(r["warning"] is None for r in gone["forecast"])
        assert c.get("/stations/32006/levels").json()["levels"] == {n: {**lv, "stage": None} for n, lv in fitted.items()}

    # What was issued stays as it was issued: each stored forecast with the levels of its time
    con = sqlite3.connect(db)
    rows = con.execute("SELECT id, levels_json FROM forecasts WHERE station = '32006' ORDER BY id").fetchall()
    warned = con.execute("SELECT w.level, f.levels_json FROM issued_warnings w JOIN forecasts f ON f.id = "
                         "w.forecast_id WHERE w.station = '32006' ORDER BY w.issue_id").fetchall()
    con.close()
    stored = {i: json.loads(lv) for i, lv in rows}
    assert stored[first["id"]] == fitted and stored[fc["id"]] == fc["levels"]
    assert [(w, json.loads(lv)["danger"]["value"] if "danger" in json.loads(lv) else None) for w, lv in warned] == [
        ("danger", low), (None, None)]


def test_levels_given_as_water_levels_are_converted_through_the_rating_curve(live, data, record, tmp_path):
    path = _imported(data, rating_curve=CURVE)
    before = json.loads(path.read_text(encoding="utf-8"))
    with TestClient(create_app(data, tmp_path / "db.sqlite", live, token=TOKEN)) as c:
        r = c.put("/stations/32006/levels", headers=AUTH,
                  json={"levels": {"alert": 0.5, "danger": 2.0}, "levels_in": "stage"})
        assert r.status_code == 200, r.text
        assert r.json()["levels"] == {"alert": {"value": 0.5, "unit": "m", "warn_probability": None, "flow": 2.5},
                                      "danger": {"value": 2.0, "unit": "m", "warn_probability": None, "flow": 40.0}}
        fc = c.get("/stations/32006/forecast", headers=AUTH).json()
        got = c.get("/stations/32006/levels").json()
        # a level given as a flow (as the fitted ones are) is shown as a water level too: h = sqrt(Q / 10)
        assert c.put("/stations/32006/levels", headers=AUTH, json={"levels": {"alert": 2.5}}).status_code == 200
        as_flow = c.get("/stations/32006/levels").json()["levels"]
    assert (as_flow["alert"]["value"], as_flow["alert"]["stage_m"]) == (2.5, None)
    assert as_flow["alert"]["stage"] == pytest.approx(0.5, rel=1e-9) and set(as_flow) == {"alert"}
    # every other key of the file as the import wrote it (a gauge's column names unescaped too)
    text = path.read_text(encoding="utf-8")
    after = json.loads(text)
    assert after.pop("warning_levels") == {"alert": {"value": 2.5, "unit": "m3/s"}}
    assert list(after) == [k for k in before if k != "warning_levels"] and after == {
        k: v for k, v in before.items() if k != "warning_levels"}
    assert '"date": "时间"' in text
    for name, h, flow in (("alert", 0.5, 2.5), ("danger", 2.0, 40.0)):
        lv = fc["levels"][name]
        assert lv["value"] == pytest.approx(flow, rel=1e-12) and lv["stage_m"] == h
        assert lv["source"] == "station metadata (water level)"
        assert [r["p_exceed"][name] for r in fc["forecast"]] == pytest.approx(_p_exceed(fc, lv["value"]), abs=1e-12)
        assert got["levels"][name] == {**lv, "stage": h}
    assert set(got["levels"]) == set(fc["levels"])
    assert fc["forecast"][0]["stage_median"] == pytest.approx((fc["forecast"][0]["median"] / 10.0) ** 0.5, rel=1e-6)


def test_a_station_with_a_rating_curve_gives_each_level_as_a_water_level_for_the_page(live, data, tmp_path):
    """The page showed a stage-only station's levels in m3/s only ("alert 22.65 m3/s", not its 1.6 m): a forecast's
    levels, and /warnings', carry ``stage``, the water level as given or through the station's curve (Q = 10 h^2:
    2.5 m3/s is 0.5 m), beside the forecast's ``stage_median`` and ``stage_quantiles``; null without a curve."""
    _imported(data, {"alert": WarningLevel(2.5), "danger": WarningLevel(2.0, "m")}, rating_curve=CURVE)
    with TestClient(create_app(data, tmp_path / "db.sqlite", live, token=TOKEN)) as c:
        fc = c.get("/stations/32006/forecast", headers=AUTH).json()
        warned = next(w for w in c.get("/warnings").json()["stations"] if w["station"] == "32006")
    assert fc["levels"]["alert"]["stage"] == pytest.approx(0.5, rel=1e-9) and fc["levels"]["alert"]["stage_m"] is None
    assert fc["levels"]["danger"]["stage"] == fc["levels"]["danger"]["stage_m"] == 2.0
    assert warned["levels"] == fc["levels"]
    for row in fc["forecast"]:   # the table's water levels: h = sqrt(Q / 10)
        assert row["stage_median"] == pytest.approx((row["median"] / 10.0) ** 0.5, rel=1e-6)
        for q, h in row["stage_quantiles"].items():
            assert h == pytest.approx((row["quantiles"][q] / 10.0) ** 0.5, rel=1e-6), q
    _imported(data, {"alert": WarningLevel(2.5)})
    with TestClient(create_app(data, tmp_path / "db2.sqlite", live, token=TOKEN)) as c:
        fc = c.get("/stations/32006/forecast", headers=AUTH).json()
    assert fc["levels"]["alert"]["stage"] is None and "stage_median" not in fc["forecast"][0]
    _imported(data)


def test_a_station_with_a_rating_curve_gives_the_page_its_curve_for_a_water_level_axis(live, data, tmp_path):
    """The page's chart had a flow axis only: a forecast of a station with a rating curve carries ``stage_scale``,
    the curve valid on the issue date as a table of flows from 0 to 5 times the answer's highest flow and their
    water levels (Q = 10 h^2: h = sqrt(Q / 10), to the 0.1 mm it is rounded to), from which the page draws a
    water-level axis as the CLI's fan chart does; a station without a curve has no such key."""
    from sca2lstm.serve.app import STAGE_SCALE_POINTS, STAGE_SCALE_REACH

    _imported(data, {"alert": WarningLevel(2.5)}, rating_curve=CURVE)
    try:
        with TestClient(create_app(data, tmp_path / "db.sqlite", live, token=TOKEN)) as c:
            fc = c.get("/stations/32006/forecast").json()
    finally:
        _imported(data)
    flows = [d["observed"] for d in fc["history"] + fc["observed_after"] if d["observed"] is not None]
    flows += [v for f in fc["forecast"] for v in (f["median"], *f["quantiles"].values()) if v is not None]
    q, h = np.array(fc["stage_scale"]["flow"]), np.array(fc["stage_scale"]["stage"])
    assert len(q) == len(h) == STAGE_SCALE_POINTS and q[0] == 0.0
    # the flows as sent to 6 significant digits: the top within half a unit of the 6th
    assert q[-1] == pytest.approx(STAGE_SCALE_REACH * max(flows), rel=5e-6)
    # the stages as sent to 0.1 mm (5e-5 m), worked from flows before their rounding to 6 digits (at most 5e-6 of
    # the flow, half that of its square root)
    np.testing.assert_allclose(h, np.sqrt(q / 10.0), rtol=2.5e-6, atol=5e-5 + 1e-12)
    with TestClient(create_app(data, tmp_path / "db2.sqlite", live, token=TOKEN)) as c:
        assert "stage_scale" not in c.get("/stations/32006/forecast").json()


def test_the_page_says_water_levels_and_the_alert_mails_level_names():
    """The page's script has the words for a level's water level and a column for the forecast's, and names the
    levels as the Chinese alert mails do (alert 警戒, danger 保证, q20y 20年一遇; English: as named); the script
    writes every level name it shows through them."""

    from sca2lstm.serve import page
    from sca2lstm.serve.messages import level_word

    for lang in page.LANGUAGES:
        html = page.render_page(lang)
        said = json.loads(html.split('<script id="i18n" type="application/json">')[1].split("</script>")[0])
        for name in ("alert", "danger", "q2y", "q20y", "zhen_low"):
            m = re.fullmatch(r"q(\d+)y", name)
            shown = said["level_words"].get(name) or (said["return_period"].replace("{n}", m.group(1)) if m else name)
            assert shown == level_word(name, lang), (lang, name)
        assert said["water_level"].replace("{h}", "1.60") == {"en": "water level 1.60 m", "zh": "水位 1.60 m"}[lang]
        # the chart's water-level axis named as the CLI's fan chart names it
        assert said["stage_axis"] == {"en": "water level (m), by the rating curve", "zh": "水位 (m)，按水位流量关系"}[lang]
        stage_col = {"en": "Water level (m)", "zh": "水位（m）"}[lang]
        assert f'<th class="stage-col" hidden>{stage_col}</th>' in html
    script = (page.STATIC_DIR / "app.js").read_text(encoding="utf-8")
    # no level name written bare: the chips, the menu, the table, the legend and the chart's labels
    assert not re.search(r"s\.warning \+|f\.warning \+|\(n\) => n \+|\bname \+ \" \"", script)
    assert script.count("levelName(") >= 6 and script.count("levelStage(") >= 4
    assert "stageAxis(axes, scale" in script and "T.stage_axis" in script


BAD_BODIES = [
    # (name, body, what the one line says)
    ("negative value", {"levels": {"alert": -5.0}}, "levels: level alert=-5.0 must be a positive finite number"),
    ("zero", {"levels": {"alert": 0}}, "levels: level alert=0 must be a positive finite number"),
    ("name of no level form", {"levels": {"al ert": 5.0}},
     "levels: level name 'al ert' must start with an ASCII letter and hold only ASCII letters, digits, '_' or '-'"),
    ("name starting with a digit", {"levels": {"2alert": 5.0}}, "level name '2alert' must start with an ASCII letter"),
    ("a return-period level", {"levels": {"q2y": 5.0}},
     "levels: level name 'q2y' is the name of a return-period level fitted on the record (q2y, q5y, q10y, q20y), "
     "which cannot be set"),
    ("stage without a rating curve", {"levels": {"alert": 1.0}, "levels_in": "stage"},
     "levels_in: \"stage\" (water levels in m) needs the station's rating curve, and station 32006 has none"),
    ("names differing only in case", {"levels": {"alert": 5.0, "Alert": 10.0}},
     "levels: 'alert' and 'Alert' differ only in case; give the name once"),
    ("number as text", {"levels": {"alert": "45"}}, 'levels: alert="45" is not a number'),
    ("boolean", {"levels": {"alert": True}}, "levels: alert=true is not a number"),
    ("null", {"levels": {"alert": None}}, "levels: alert=null is not a number"),
    ("probability of 1", {"levels": {"alert": 5.0}, "warn_probability": {"alert": 1.0}},
     "warning probability of alert is 1.0; it must lie strictly between 0 and 1"),
    ("probability of no level", {"levels": {"alert": 5.0}, "warn_probability": {"danger": 0.3}},
     "warn_probability: no level named 'danger'; the levels given are alert"),
    ("never warns", {"levels": {"alert": 5000.0}}, "levels alert=5000 m3/s is 115 times the record's highest daily"),
    ("warns every day", {"levels": {"alert": 0.01}}, "levels alert=0.01 m3/s lies below every daily flow of the record"),
    ("unknown unit", {"levels": {"alert": 5.0}, "levels_in": "cm"}, "levels_in: Input should be 'flow' or 'stage'"),
    ("unknown key", {"levels": {"alert": 5.0}, "level_in": "stage"}, "level_in: unknown field; allowed: levels, levels_in, warn_probability"),
    ("no levels key", {"warn_probability": {}}, "levels: Field required"),
]


@pytest.mark.parametrize("name,body,said", BAD_BODIES, ids=[b[0] for b in BAD_BODIES])
def test_a_bad_body_is_one_line_naming_the_value_and_leaves_the_file_byte_identical(live, data, tmp_path, name,
                                                                                     body, said):
    path = _imported(data, {"alert": WarningLevel(5.0), "danger": WarningLevel(10.0, "m3/s", 0.3)})
    before = path.read_bytes()
    with TestClient(create_app(data, tmp_path / "db.sqlite", live, token=TOKEN)) as c:
        r = c.put("/stations/32006/levels", headers=AUTH, json=body)
    assert r.status_code == 422, r.text
    detail = r.json()["detail"]
    assert said in detail and "\n" not in detail, detail
    assert path.read_bytes() == before


def test_water_levels_the_curve_cannot_convert_are_refused_as_at_import(live, data, tmp_path):
    path = _imported(data, {"alert": WarningLevel(0.5, "m")}, rating_curve=CURVE)
    before = path.read_bytes()
    with TestClient(create_app(data, tmp_path / "db.sqlite", live, token=TOKEN)) as c:
        for levels, said in (({"alert": 30.0}, "levels alert=30 m: a water level of 30 m lies 30 m above the rating "
                                               "curve's zero-flow stage"),
                             ({"alert": 0.01}, "levels alert=0.01 m lies below every daily flow of the record"),
                             ({"alert": 10.0}, "levels alert=10 m is 23 times the record's highest daily flow")):
            r = c.put("/stations/32006/levels", headers=AUTH, json={"levels": levels, "levels_in": "stage"})
            assert r.status_code == 422 and said in r.json()["detail"], r.text
    assert path.read_bytes() == before


def test_a_write_that_fails_leaves_the_earlier_file_and_its_levels(live, data, tmp_path, monkeypatch):
    import sca2lstm.fileio as fileio

    path = _imported(data, {"alert": WarningLevel(5.0)})
    before = path.read_bytes()

    def full(src, dst):  # the disk is full when the new file would take the old one's place
        raise OSError(28, "No space left on device")

    with TestClient(create_app(data, tmp_path / "db.sqlite", live, token=TOKEN)) as c:
        fc = c.get("/stations/32006/forecast").json()
        monkeypatch.setattr(fileio.os, "replace", full)
        r = c.put("/stations/32006/levels", headers=AUTH, json={"levels": {"alert": 6.0}})
        monkeypatch.undo()
        assert r.status_code == 503 and "\n" not in r.json()["detail"]
        assert r.json()["detail"].startswith("station 32006: its metadata file cannot be written (")
        assert c.get("/stations/32006/forecast").json()["levels"]["alert"] == fc["levels"]["alert"]
    assert path.read_bytes() == before and not [p for p in path.parent.iterdir() if p.name.endswith(".tmp")]


def test_reading_the_levels_issues_no_forecast_and_gives_those_the_forecast_warns_on(pretrained_ckpt, data, tmp_path,
                                                                                     monkeypatch):
    """GET .../levels answers from the levels alone (the record's return-period levels, the metadata file's named
    ones, the model's calibration): with the model's forecasts made to fail it still answers, anonymously or with
    the token, and its levels are those the station's forecast then warns on (before, it issued that forecast)."""
    _imported(data, {"alert": WarningLevel(2.0), "danger": WarningLevel(0.5, "m", 0.3)}, rating_curve=CURVE)

    def no_forecast(*args, **kwargs):
        raise AssertionError("a forecast was run to read the levels")

    with forecaster(pretrained_ckpt, data) as fresh, \
            TestClient(create_app(data, tmp_path / "db.sqlite", fresh, token=TOKEN)) as c:
        submit = fresh.submit
        monkeypatch.setattr(fresh, "submit", no_forecast)
        before = c.get("/stations/32006/levels")
        assert before.status_code == 200, before.text
        before = before.json()
        assert c.get("/stations/32006/levels", headers=AUTH).json() == before
        monkeypatch.setattr(fresh, "submit", submit)
        fc = c.get("/stations/32006/forecast", headers=AUTH).json()
        monkeypatch.setattr(fresh, "submit", no_forecast)
        after = c.get("/stations/32006/levels").json()
    assert before["issue_date"] == fc["issue_date"] == "1977-12-31" and before["forecast_id"] is None
    assert after["forecast_id"] == fc["id"] is not None and after["issue_date"] == fc["issue_date"]
    # the tiny record's 4 training years fit no return-period level: the metadata file's two, one with its own probability
    assert set(fc["levels"]) == {"alert", "danger"} and fc["levels"]["danger"]["warn_probability"] == 0.3
    for got in (before, after):
        assert got["levels"] == fc["levels"]
        for name, lv in got["levels"].items():  # every flow as a water level too: h = sqrt(Q / 10)
            assert lv["stage"] == pytest.approx((lv["value"] / 10.0) ** 0.5, rel=1e-9), name


def test_a_stage_only_station_posts_its_water_level_and_the_curve_gives_the_discharge(live, data, tmp_path):
    """A township gauge reads only its water level (imported with stage= and --rating): the post took discharge
    alone, so its observer had to work the curve by hand. A posted ``stage`` is stored as the discharge the
    station's curve gives it (Q = 10 h^2: 1.5 m is 22.5 m3/s); discharge and stage together, a stage below the
    curve and a stage at a station without a curve are refused in one line."""
    zh = {**AUTH, "Accept-Language": "zh-CN,zh;q=0.9"}
    _imported(data)                                                   # no curve
    with TestClient(create_app(data, tmp_path / "db.sqlite", live, token=TOKEN)) as c:
        r = c.post("/stations/32006/observations", headers=zh,
                   json={"observations": [{"date": "1978-01-01", "stage": 1.5}]})
        assert r.status_code == 422 and r.json()["detail"] == (
            "观测：测站 32006 没有水位流量关系曲线（元数据文件中），无法换算 1978-01-01 的水位；请上报流量（m3/s）"), r.text
    _imported(data, rating_curve=CURVE)
    with TestClient(create_app(data, tmp_path / "db2.sqlite", live, token=TOKEN)) as c:
        r = c.post("/stations/32006/observations", headers=AUTH,
                   json={"observations": [{"date": "1978-01-01", "stage": 1.5, "precipitation": 3.0}]})
        assert r.status_code == 200, r.text
        got = c.get("/stations/32006/observations", params={"start": "1978-01-01", "end": "1978-01-01"}).json()
        assert got["observations"][0]["discharge"] == 22.5 and got["observations"][0]["precipitation"] == 3.0
        both = c.post("/stations/32006/observations", headers=AUTH,
                      json={"observations": [{"date": "1978-01-02", "stage": 1.5, "discharge": 22.5}]})
        assert both.status_code == 422 and "gives both discharge and stage" in both.json()["detail"], both.text
        below = c.post("/stations/32006/observations", headers=AUTH,
                       json={"observations": [{"date": "1978-01-02", "stage": -0.2}]})
        assert below.status_code == 422 and below.json()["detail"].startswith(
            "observations: stage on 1978-01-02: a water level of -0.2 m lies below the rating curve"), below.text
        assert "\n" not in below.json()["detail"]
    _imported(data)


def test_a_water_level_below_h0_at_a_station_imported_with_below_h0_zero_is_stored_as_zero_flow_and_said(
        live, data, tmp_path):
    """A station imported with --below_h0 zero (an ephemeral stream whose dry season its record holds as Q = 0): its
    observer's water level below the curve's h0 (0.2 m; Q = 10 (h − 0.2)^2) was refused as off the curve, so the dry
    days the record holds as zero could not be posted. It is stored as zero flow, and the answer says so; a level
    above h0 gives the curve's flow (0.7 m: 2.5 m3/s)."""
    curve = {"kind": "power", "segments": [{**CURVE["segments"][0], "h0": 0.2}]}
    _imported(data, rating_curve=curve, below_h0="zero")
    try:
        with TestClient(create_app(data, tmp_path / "db.sqlite", live, token=TOKEN)) as c:
            r = c.post("/stations/32006/observations", headers=AUTH,
                       json={"observations": [{"date": "1978-01-01", "stage": 0.1},
                                              {"date": "1978-01-02", "stage": 0.7}]})
            got = c.get("/stations/32006/observations", params={"start": "1978-01-01", "end": "1978-01-02"}).json()
    finally:
        _imported(data)
    assert r.status_code == 200, r.text
    assert r.json()["notes"] == ["observations: water level 0.1 m on 1978-01-01 lies below the rating curve's "
                                 "zero-flow stage (0.2 m): stored as zero flow (the station was imported with "
                                 "--below_h0 zero)"]
    assert [d["discharge"] for d in got["observations"]] == [0.0, pytest.approx(2.5, rel=1e-12)]


def test_a_water_level_above_the_highest_gauged_stage_is_stored_and_the_answer_says_its_flow_is_extrapolated(
        live, data, tmp_path):
    """A flood's water level above the curve's highest gauged stage (h_max 1.2 m) was stored as the flow the curve
    extrapolates with no word, where the import flags such a day (discharge_extrapolated): the answer now names
    each such day, its flow (Q = 10 h^2: 1.5 m is 22.5 m3/s) and the gauged top, in the request's language; a post
    within the gauged range answers as before."""
    curve = {"kind": "power", "segments": [{**CURVE["segments"][0], "h_max": 1.2}]}
    _imported(data, rating_curve=curve)
    try:
        with TestClient(create_app(data, tmp_path / "db.sqlite", live, token=TOKEN)) as c:
            within = c.post("/stations/32006/observations", headers=AUTH,
                            json={"observations": [{"date": "1978-01-01", "stage": 1.2}]})
            above = c.post("/stations/32006/observations", headers=AUTH,
                           json={"observations": [{"date": "1978-01-02", "stage": 1.5},
                                                  {"date": "1978-01-03", "stage": 1.1}]})
            zh = c.post("/stations/32006/observations", headers={**AUTH, "Accept-Language": "zh"},
                        json={"observations": [{"date": "1978-01-02", "stage": 1.5}]})
            got = c.get("/stations/32006/observations", params={"start": "1978-01-02", "end": "1978-01-02"}).json()
    finally:
        _imported(data)
    assert within.json() == {"station": "32006", "stored": 1, "data_version": 1}
    assert above.status_code == 200 and above.json()["stored"] == 2
    assert above.json()["notes"] == ["observations: water level 1.5 m on 1978-01-02 lies above the rating curve's "
                                     "highest gauged stage (1.2 m): its discharge, 22.5 m3/s, is extrapolated"]
    assert zh.json()["notes"] == ["观测：1978-01-02 的水位 1.5 m 高于水位流量关系曲线的最高实测水位（1.2 m）：其流量 22.5 m3/s "
                                  "为外延所得"]
    assert got["observations"][0]["discharge"] == pytest.approx(22.5, rel=1e-12)
    # the page's form, which posts a water level too, shows them after "stored"
    from sca2lstm.serve import page

    script = (page.STATIC_DIR / "app.js").read_text(encoding="utf-8")
    assert re.search(r'out\.textContent = T\.stored\.replace\([^;]*r\.notes\.join\(" "\)', script)


def test_a_water_level_typed_in_another_unit_is_refused_naming_the_stage_and_asking_for_metres(live, data, record,
                                                                                                tmp_path):
    """A stage typed in dm or cm (16.7 for 1.67 m) gives a flow far above the record's through the curve: the refusal
    named only that flow, a figure the observer never typed. It names the stage, the flow the curve gives it and
    the record's highest flow as a water level, and asks for metres; in Chinese for a reader who prefers it.
    ``?unusual=true`` still stores it; a discharge too large is still named as the discharge."""
    top = record[1]
    top_stage = float(np.sqrt(top / 10.0))                 # Q = 10 h^2
    typed = round(top_stage * 0.8, 2) * 10                 # a water level below the record's highest, in dm
    flow = 10.0 * typed ** 2
    _imported(data, rating_curve=CURVE)
    day = {"observations": [{"date": "1978-01-01", "stage": typed}]}
    with TestClient(create_app(data, tmp_path / "db.sqlite", live, token=TOKEN)) as c:
        en = c.post("/stations/32006/observations", headers=AUTH, json=day)
        zh = c.post("/stations/32006/observations", headers={**AUTH, "Accept-Language": "zh-CN,zh;q=0.9"}, json=day)
        times = f"{flow / top:.0f}"
        assert en.status_code == 422 and en.json()["detail"] == (
            f"observations: water level {typed:g} m on 1978-01-01 gives {flow:g} m3/s by the station's rating curve, "
            f"{times} times the largest flow of its record ({top:g} m3/s, a water level of {round(top_stage, 2):g} m); "
            "a water level in cm or dm? Post it in metres. If the river really stood so high, post it again with "
            "?unusual=true"), en.text
        assert zh.status_code == 422 and zh.json()["detail"] == (
            f"观测：1978-01-01 的水位 {typed:g} m 按该测站水位流量关系换算为 {flow:g} m3/s，是记录最大流量（{top:g} m3/s，"
            f"水位 {round(top_stage, 2):g} m）的 {times} 倍；是否按厘米或分米填写了？水位请以米为单位上报。如果水位确实这么高，"
            "请加上 ?unusual=true 再次上报"), zh.text
        big = c.post("/stations/32006/observations", headers=AUTH,
                     json={"observations": [{"date": "1978-01-01", "discharge": flow}]})
        assert big.status_code == 422 and big.json()["detail"].startswith(f"observations: discharge {flow:g} m3/s")
        sure = c.post("/stations/32006/observations", params={"unusual": "true"}, headers=AUTH, json=day)
        assert sure.status_code == 200, sure.text
    _imported(data)


def test_the_pages_form_posts_a_water_level_too(live, data, tmp_path):
    """The page's form had rain, temperature and flow: its stage-only observer can post the water level, labelled
    in the reader's language, and the script sends it as ``stage``."""
    from sca2lstm.serve import app as app_module

    with TestClient(create_app(data, tmp_path / "db.sqlite", live, token=TOKEN)) as c:
        zh = c.get("/", headers={"Accept-Language": "zh-CN,zh;q=0.9"}).text
    assert '或水位（m，有水位流量关系曲线的测站） <input type="number" id="obs-stage"' in zh
    script = (os.path.dirname(app_module.__file__) + "/static/app.js")
    with open(script, encoding="utf-8") as f:
        posted = next(line for line in f if "for (const name of" in line and '"discharge"' in line)
    assert '"stage"' in posted, posted


@pytest.mark.parametrize("language, said", [("en", "(water level {h:g} m)"), ("zh", "（水位 {h:g} m）")])
def test_sca2lstm_forecast_gives_each_level_a_water_level_through_the_curve_as_the_service_does(
        pretrained_ckpt, data, tmp_path, capsys, language, said):
    """A stage-only station's levels: the service's page and answers give each level's water level through the rating
    curve, `sca2lstm forecast` gave one only for a level typed as a water level ("alert: 3.000 m3/s daily mean").
    Its level line and warnings.txt say it too (Q = 10 h^2: 3 m3/s is 0.55 m, to the centimetre), in both
    languages; a station without a curve says none."""
    from sca2lstm.cli.main import main

    h = round((3.0 / 10.0) ** 0.5, 2)
    for curve in (CURVE, None):
        _imported(data, rating_curve=curve)
        out_dir = tmp_path / str(curve is not None)
        assert main(["forecast", "--model", str(pretrained_ckpt), "--basin", "32006", "--data_dir", str(data),
                     "--output_dir", str(out_dir), "--issue_date", "1976-06-15", "--warning_levels", "alert=3.0,low=0.2",
                     "--language", language]) == 0
        out = capsys.readouterr().out
        line = next(x for x in out.splitlines() if x.lstrip().startswith("alert:"))
        sentence = next(out_dir.glob("*/warnings.txt")).read_text()
        if curve is None:
            assert "m)" not in line and " m，" not in sentence and " m)" not in sentence, (line, sentence)
            continue
        assert said.format(h=h) in line, line
        low = next(x for x in out.splitlines() if x.lstrip().startswith("low:"))
        assert said.format(h=round((0.2 / 10.0) ** 0.5, 2)) in low, low
        assert f"{round((0.2 / 10.0) ** 0.5, 2):g} m" in sentence, sentence     # low is crossed: its water level
    _imported(data)
