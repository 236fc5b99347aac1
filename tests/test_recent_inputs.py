"""A station whose precipitation stopped (the last 400 days empty, years before not): every forecast reads only
its recent days, so the model would run blind to it. ``sca2lstm forecast`` (one issue date, or a ``--from/--to``
span) refuses it as the service does, through one check, in one line naming the days read and the last value;
``--allow_missing_inputs`` forecasts anyway with a warning line. With the tiny trained model."""

from __future__ import annotations

import json
import re
import shutil

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from serve_helpers import forecaster

from sca2lstm.checkpoint import load_model
from sca2lstm.cli import main as main_cli
from sca2lstm.data import reader
from sca2lstm.evaluation.context import clear_caches
from sca2lstm.evaluation.operational import recent_part
from sca2lstm.serve.app import create_app

GAP_DAYS = 400


def _blank_last_days(data, station: str, column: str, days: int = GAP_DAYS) -> str:
    """Empty ``column`` on the last ``days`` of ``station``'s file; returns the day of its last value."""
    path = reader.timeseries_file(data, station)
    raw = pd.read_csv(path)
    raw.loc[raw.index[-days:], column] = float("nan")
    raw.to_csv(path, index=False)
    return raw["date"].iloc[-days - 1]


@pytest.fixture()
def stopped(tiny_data_dir, tmp_path):
    """The tiny basins with 10002's precipitation stopped: (folder, the day of its last value)."""
    data = tmp_path / "data"
    shutil.copytree(tiny_data_dir, data)
    clear_caches()
    return data, _blank_last_days(data, "10002", "precipitation")


def _run(capsys, argv) -> tuple[int, str, str]:
    rc = main_cli.main(argv)
    cap = capsys.readouterr()
    return rc, cap.out, cap.err


def _days_read(data, cfg, issue) -> str:
    ts = reader.read_timeseries(data, "10002")
    part = recent_part(ts, pd.Timestamp(issue), cfg)
    return (f"the {len(part)} days read for the forecast issued {pd.Timestamp(issue).date()} "
            f"({part.index[0].date()}..{part.index[-1].date()})")


def test_forecast_refuses_as_the_service_does_in_one_line_naming_the_days_read(pretrained_ckpt, stopped, tmp_path,
                                                                               capsys):
    """It forecast quietly with precipitation masked through its whole window; the service answered 422."""
    data, last = stopped
    cfg = load_model(pretrained_ckpt)[1]
    issue = reader.read_timeseries(data, "10002")["discharge_vol"].last_valid_index()
    said = f"no precipitation in {_days_read(data, cfg, issue)}; its last value is on {last}."
    rc, out, err = _run(capsys, ["forecast", "--model", str(pretrained_ckpt), "--data_dir", str(data), "--basin",
                                 "10002", "--output_dir", str(tmp_path / "f")])
    assert rc == 1, out + err
    assert err.strip().splitlines() == [
        f"sca2lstm forecast: error: basin 10002: {said} The model would run blind to it: add the missing days to its file, or pass "
        "--allow_missing_inputs to forecast anyway (the outputs then name the missing input)"], err
    assert not (tmp_path / "f").exists()
    # the service's answer, unchanged: the same rule (one check) with its own remedy
    with forecaster(pretrained_ckpt, data) as f, TestClient(create_app(data, tmp_path / "db.sqlite", f)) as c:
        r = c.get("/stations/10002/forecast")
    assert r.status_code == 422, r.text
    assert r.json()["detail"] == (f"station 10002: {said} The model would run blind to it: post the missing days, "
                                  "or add them to the station's file")


def test_allow_missing_inputs_forecasts_anyway_with_a_warning_line_kept_in_the_outputs(pretrained_ckpt, stopped,
                                                                                      tmp_path, capsys):
    data, last = stopped
    rc, out, err = _run(capsys, ["forecast", "--model", str(pretrained_ckpt), "--data_dir", str(data), "--basin",
                                 "10002", "--output_dir", str(tmp_path / "f"), "--format", "json",
                                 "--allow_missing_inputs"])
    assert rc == 0, out + err
    lines = [ln for ln in (out + err).splitlines() if "forecast anyway (--allow_missing_inputs)" in ln]
    assert len(lines) == 1 and lines[0].startswith("basin 10002: no precipitation in the "), out + err
    assert f"its last value is on {last}" in lines[0] and "the model runs blind to it" in lines[0]
    doc = json.loads(next((tmp_path / "f").rglob("forecast.json")).read_text())
    assert any("forecast anyway (--allow_missing_inputs)" in n for n in doc["data"]["notes"])


def test_the_line_of_an_input_forecast_without_is_said_in_chinese_with_the_same_days(pretrained_ckpt, stopped,
                                                                                      tmp_path, capsys):
    """``--language zh``: the line a forecast (one issue date, or a span of them) prints of an input its days read
    lack holds the English line's days and counts; the forecast.json keeps the English note."""
    data, last = stopped
    span = [str((pd.Timestamp(last) + pd.Timedelta(days=d)).date()) for d in (300, 305)]
    said = {}
    for lang in ("en", "zh"):
        for what in (["--format", "json"], ["--from", span[0], "--to", span[1]]):
            rc, out, err = _run(capsys, ["forecast", "--model", str(pretrained_ckpt), "--data_dir", str(data),
                                         "--basin", "10002", "--output_dir", str(tmp_path / lang), "--language", lang,
                                         "--allow_missing_inputs", *what])
            assert rc == 0, out + err
            words = "forecast anyway (--allow_missing_inputs)" if lang == "en" else "仍照常预报（--allow_missing_inputs）"
            (line,) = [ln for ln in (out + err).splitlines() if words in ln]
            said.setdefault(lang, []).append(line)
    assert said["zh"][0].startswith("测站 10002：") and "的 6 个发布日中有 6 个" in said["zh"][1], said["zh"]
    for en, zh in zip(said["en"], said["zh"]):
        days = re.compile(r"\d{4}-\d{2}-\d{2}|\d+")
        assert sorted(days.findall(zh)) == sorted(days.findall(en)), (en, zh)
        assert "precipitation" in zh and "days read" not in zh and "its last value" not in zh, zh
    for lang in ("en", "zh"):
        doc = json.loads(next((tmp_path / lang).rglob("forecast.json")).read_text(encoding="utf-8"))
        assert said["en"][0] in doc["data"]["notes"]


def test_a_reforecast_span_whose_windows_lack_it_is_refused_unless_allowed(pretrained_ckpt, stopped, tmp_path,
                                                                          capsys):
    """From a month before the gap into it: the issue dates whose days read hold no precipitation are counted
    (each found by the days its single forecast reads) and the first is named."""
    data, last = stopped
    cfg = load_model(pretrained_ckpt)[1]
    ts = reader.read_timeseries(data, "10002")
    span = pd.date_range(pd.Timestamp(last) - pd.Timedelta(days=30), pd.Timestamp(last) + pd.Timedelta(days=90))
    blind = [d for d in span if not recent_part(ts, d, cfg)["precipitation"].notna().any()]
    assert 0 < len(blind) < len(span)
    argv = ["forecast", "--model", str(pretrained_ckpt), "--data_dir", str(data), "--basin", "10002", "--from",
            str(span[0].date()), "--to", str(span[-1].date()), "--output_dir", str(tmp_path / "r")]
    rc, out, err = _run(capsys, argv)
    assert rc == 1, out + err
    assert err.strip().splitlines() == [
        f"sca2lstm forecast: error: basin 10002: no precipitation in the days read for {len(blind)} of the {len(span)} issue dates "
        f"{span[0].date()}..{span[-1].date()} (the first: {_days_read(data, cfg, blind[0])}); its last value is on "
        f"{last}. The model would run blind to it: add the missing days to its file, or pass --allow_missing_inputs "
        "to forecast anyway (the outputs then name the missing input)"], err
    assert not (tmp_path / "r").exists()
    rc, out, err = _run(capsys, [*argv, "--allow_missing_inputs"])
    assert rc == 0, out + err
    assert len([ln for ln in (out + err).splitlines() if "forecast anyway (--allow_missing_inputs)" in ln]) == 1, out
    table = pd.read_csv(next((tmp_path / "r").rglob("reforecast.csv")))
    assert table["issue_date"].nunique() == len(span)


def test_an_input_empty_only_in_the_days_given_is_named_by_those_days(pretrained_ckpt, tiny_data_dir, tmp_path,
                                                                      caplog):
    """The service forecasts from the recent days of a station whose temperature stopped: the line names the days
    it was given, not 'no value anywhere in its data', which is false."""
    data = tmp_path / "data"
    shutil.copytree(tiny_data_dir, data)
    clear_caches()
    _blank_last_days(data, "10002", "temperature")
    with caplog.at_level("WARNING", logger="sca2lstm"), forecaster(pretrained_ckpt, data) as f, \
            TestClient(create_app(data, tmp_path / "db.sqlite", f)) as c:
        r = c.get("/stations/10002/forecast")
    assert r.status_code == 200, r.text
    said = [rec.getMessage() for rec in caplog.records if "no value of temperature" in rec.getMessage()]
    assert len(said) == 1, said
    assert said[0].startswith("basin 10002: no value of temperature in the ") and " days given (" in said[0]
    assert "anywhere" not in said[0]


def test_an_issue_date_before_its_precipitation_begins_is_refused_naming_its_first_value(pretrained_ckpt,
                                                                                         tiny_data_dir, tmp_path,
                                                                                         capsys):
    data = tmp_path / "data"
    shutil.copytree(tiny_data_dir, data)
    clear_caches()
    path = reader.timeseries_file(data, "10002")
    raw = pd.read_csv(path)
    raw.loc[raw.index[:600], "precipitation"] = float("nan")
    raw.to_csv(path, index=False)
    first = raw["date"].iloc[600]
    issue = str((pd.Timestamp(first) - pd.Timedelta(days=30)).date())
    rc, out, err = _run(capsys, ["forecast", "--model", str(pretrained_ckpt), "--data_dir", str(data), "--basin",
                                 "10002", "--issue_date", issue, "--output_dir", str(tmp_path / "f")])
    assert rc == 1, out + err
    cfg = load_model(pretrained_ckpt)[1]
    assert err.strip().splitlines() == [
        f"sca2lstm forecast: error: basin 10002: no precipitation in {_days_read(data, cfg, issue)}; its first value "
        f"is on {first}. The model would run blind to it: add the missing days to its file, or pass "
        "--allow_missing_inputs to forecast anyway (the outputs then name the missing input)"], err


def test_an_input_the_model_goes_without_that_the_days_read_lack_is_named_in_the_forecasts_notes(
        pretrained_ckpt, tiny_data_dir, tmp_path, capsys):
    """A station whose temperature stopped is forecast (temperature is not refused, as precipitation is) with it
    masked through the window: the service said so in its log alone, its answer's notes nothing, and `sca2lstm
    forecast` nothing either. Both now carry the note, in the reader's language where asked."""
    data = tmp_path / "data"
    shutil.copytree(tiny_data_dir, data)
    clear_caches()
    last = _blank_last_days(data, "10002", "temperature")
    cfg = load_model(pretrained_ckpt)[1]
    issue = reader.read_timeseries(data, "10002")["discharge_vol"].last_valid_index()
    said = (f"no temperature in {_days_read(data, cfg, issue)}; its last value is on {last}; the model runs without "
            "it (temperature masked through its whole window), which can cost much accuracy")
    rc, out, err = _run(capsys, ["forecast", "--model", str(pretrained_ckpt), "--data_dir", str(data), "--basin",
                                 "10002", "--output_dir", str(tmp_path / "f"), "--format", "json"])
    assert rc == 0, out + err
    doc = json.loads(next((tmp_path / "f").rglob("forecast.json")).read_text())
    assert f"basin 10002: {said}" in doc["data"]["notes"], doc["data"]["notes"]
    with forecaster(pretrained_ckpt, data) as f, TestClient(create_app(data, tmp_path / "db.sqlite", f)) as c:
        en = c.get("/stations/10002/forecast").json()["notes"]
        zh = c.get("/stations/10002/forecast", headers={"Accept-Language": "zh"}).json()["notes"]
    assert en.count(f"station 10002: {said}") == 1, en
    assert [n for n in zh if n.startswith("测站 10002：") and "模型在没有该输入的情况下运行（temperature" in n], zh


def test_days_posted_without_pet_say_the_forecast_runs_without_it_until_pet_is_posted(pretrained_ckpt, tiny_data_dir,
                                                                                      tmp_path):
    """The duty forecaster posts each day's rain, temperature and flow as docs/serve.md's example does, without
    ``pet``: once the days a forecast reads are all posted ones, the model reads no PET, and the answer said
    nothing of it. Its notes now name the PET input; posted with the days, it is read and the note goes."""
    from sca2lstm.weather.files import pet_input

    data = tmp_path / "data"
    shutil.copytree(tiny_data_dir, data)
    clear_caches()
    pet = pet_input(load_model(pretrained_ckpt)[1])
    days = pd.date_range("1978-01-01", periods=120)
    posted = [{"date": str(d.date()), "precipitation": 2.0, "temperature": 5.0, "discharge": 3.0} for d in days]
    with forecaster(pretrained_ckpt, data) as f, \
            TestClient(create_app(data, tmp_path / "db.sqlite", f, token="t")) as c:
        auth = {"Authorization": "Bearer t"}
        assert c.post("/stations/32006/observations", headers=auth, json={"observations": posted}).status_code == 200
        without = c.get("/stations/32006/forecast").json()
        for day in posted:
            day["pet"] = 0.5
        assert c.post("/stations/32006/observations", headers=auth, json={"observations": posted}).status_code == 200
        with_pet = c.get("/stations/32006/forecast").json()
    assert without["issue_date"] == with_pet["issue_date"] == "1978-04-30"
    named = [n for n in without["notes"] if n.startswith(f"station 32006: no {pet} in the ")]
    assert len(named) == 1 and "the model runs without it" in named[0], without["notes"]
    assert not [n for n in with_pet["notes"] if "the model runs without it" in n], with_pet["notes"]
