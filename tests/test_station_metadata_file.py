"""Every key of a station's metadata file (``DIR/meta/<id>.json``) is declared and checked when the file is read:
a hand-edited value of the wrong kind, a rating curve that does not rise or an unknown key is one line naming
the file, the key, the value and what is allowed, through the reader, a command (exit 1) and the service (503
for the station, as for its other unreadable files); every file the product writes reads back."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from serve_helpers import forecaster
from test_station_formats import _hourly_stage_station

from sca2lstm.cli import main as main_cli
from sca2lstm.data.rating import parse_rating
from sca2lstm.data.station import import_station
from sca2lstm.data.station_meta import WarningLevel, meta_path, read_station_meta, write_station_meta
from sca2lstm.errors import DataError
from sca2lstm.serve.app import create_app

LEVEL_VALUE = 'expected a positive number: a flow in m3/s, or a water level in m with "unit": "m"'
POWER = {"kind": "power", "segments": [{"a": 12.5, "b": 1.6, "h0": 0.15}]}
#: (the file's object, what the line says after the file's name)
BAD = {
    "a day rule that is a bare time": (
        {"day": "08:00"}, 'day="08:00" must be an object, e.g. {"start": "08:00", "label": "start", "stamp": "start", '
                          '"timezone": "Asia/Shanghai"}'),
    "warning levels given as text": (
        {"warning_levels": "45"}, 'warning_levels="45" must be an object, e.g. {"alert": {"value": 45.0, '
                                  '"unit": "m3/s"}}'),
    "a level that is a bare number": (
        {"warning_levels": {"alert": 45}}, 'warning_levels.alert=45 must be an object, e.g. {"value": 45.0'),
    "a level value written as text": (
        {"warning_levels": {"alert": {"value": "45"}}}, f'warning_levels.alert.value="45" is not allowed; {LEVEL_VALUE}'),
    "a negative level": (
        {"warning_levels": {"alert": {"value": -1.0}}}, f"warning_levels.alert.value=-1.0 is not allowed; {LEVEL_VALUE}"),
    "a level without a value": (
        {"warning_levels": {"alert": {"unit": "m"}}}, f"warning_levels.alert.value is missing; {LEVEL_VALUE}"),
    "a level in feet": (
        {"warning_levels": {"alert": {"value": 3.0, "unit": "ft"}}},
        'warning_levels.alert.unit="ft" is not allowed; expected one of m3/s, m'),
    "a warning probability of 1.5": (
        {"warning_levels": {"alert": {"value": 3.0, "warn_probability": 1.5}}},
        "warning_levels.alert.warn_probability=1.5 is not allowed; expected a number strictly between 0 and 1"),
    "a level name with a space": (
        {"warning_levels": {"red alert": {"value": 3.0}}},
        'warning_levels has the name "red alert", which is not allowed; expected a name that starts with an ASCII '
        "letter"),
    "two levels whose names differ only in case": (
        {"warning_levels": {"alert": {"value": 3.0}, "Alert": {"value": 5.0}}},
        "warning_levels: 'alert' and 'Alert' differ only in case; give the name once"),
    "an unknown key of a level": (
        {"warning_levels": {"alert": {"value": 3.0, "colour": "red"}}},
        "warning_levels.alert.colour is not a key of a warning level; its keys are value, unit, warn_probability"),
    "a day start of 8am": (
        {"day": {"start": "8am"}}, 'day.start="8am" is not allowed; expected a time of day HH:MM from 00:00 to 23:59'),
    "a day label of noon": (
        {"day": {"label": "noon"}}, 'day.label="noon" is not allowed; expected one of start, end'),
    "a stamp that is a number": ({"day": {"stamp": 1}}, "day.stamp=1 is not allowed; expected one of start, end"),
    "an unknown time zone": (
        {"day": {"timezone": "Mars/Olympus"}}, 'day.timezone="Mars/Olympus" is not allowed; expected a time zone'),
    "an unknown key of the day": (
        {"day": {"begin": "08:00"}}, "day.begin is not a key of the day section; its keys are start, label, stamp, "
                                     "timezone"),
    "an unknown distribution": (
        {"flood_frequency": {"distribution": "weibull"}},
        'flood_frequency.distribution="weibull" is not allowed; expected one of glo, gev, pe3'),
    "a water year from month 13": (
        {"flood_frequency": {"water_year_start": 13}},
        "flood_frequency.water_year_start=13 is not allowed; expected a month 1..12"),
    "a water year month written as text": (
        {"flood_frequency": {"water_year_start": "10"}},
        'flood_frequency.water_year_start="10" is not allowed; expected a month 1..12'),
    "a flood frequency given as a name": (
        {"flood_frequency": "pe3"}, 'flood_frequency="pe3" must be an object, e.g. {"distribution": "pe3"'),
    "a rating curve given as flags": (
        {"rating_curve": "a=12.5,b=1.6,h0=0.15"},
        'rating_curve="a=12.5,b=1.6,h0=0.15" must be an object, e.g. {"kind": "power", "segments": '),
    "a rating curve of an unknown kind": (
        {"rating_curve": {"kind": "spline"}}, 'rating_curve.kind="spline" is not allowed; expected one of power, table'),
    "a rating curve without a kind": (
        {"rating_curve": {"segments": POWER["segments"]}}, "rating_curve.kind is missing; expected one of power, table"),
    "a segment coefficient written as text": (
        {"rating_curve": {"kind": "power", "segments": [{"a": "12.5", "b": 1.6, "h0": 0.15}]}},
        'rating_curve.segments[0].a="12.5" is not allowed; expected a positive number'),
    "a segment without h0": (
        {"rating_curve": {"kind": "power", "segments": [{"a": 12.5, "b": 1.6}]}},
        "rating_curve.segments[0].h0 is missing; expected a number: the water level (m) of zero flow"),
    "a power curve without segments": (
        {"rating_curve": {"kind": "power", "segments": []}},
        "rating_curve.segments=[] is not allowed; expected a list of at least one segment"),
    "a rating table that falls": (
        {"rating_curve": {"kind": "table", "h": [0.5, 1.0], "q": [3.0, 1.0]}},
        "rating_curve: the rating curve is not monotonic: Q goes from 3 at h=0.5 m to 1 m3/s at h=1 m; Q must rise"),
    "a validity date that is no date": (
        {"rating_curve": {"kind": "power", "segments": [{**POWER["segments"][0], "valid_from": "2020-13-01"}]}},
        "rating_curve: valid_from='2020-13-01' is not a date YYYY-MM-DD"),
    "a key the file does not hold": (
        {"station_id": "s1", "notes": "gauge moved in 2019"},
        "notes is not a key of a station's metadata file; its keys are station_id, warning_levels, rating_curve, day, "
        "weather, flood_frequency, source"),
    "the station id of another station": (
        {"station_id": "s2", "rating_curve": POWER},
        "station_id='s2' is not allowed; expected 's1', the station the file is named for (a file copied from another "
        "station? correct station_id, or remove it, after checking its levels and rating curve)"),
    "a station id that is a number": (
        {"station_id": 5}, "station_id=5 is not allowed; expected the station's id (text)"),
    "a record end that is no date": (
        {"record": {"start": "2018-01-01", "end": 2020, "days": 740, "observed_discharge_days": 740,
                    "missing_per_column": {}}},
        "record.end=2020 is not allowed; expected a date YYYY-MM-DD"),
    "an attribute written as text": (
        {"attributes": {"area": "12.5"}}, 'attributes.area="12.5" is not allowed; expected an object of names (text) '
                                          "-> finite numbers"),
    "a precipitation unit of cm": (
        {"precipitation_unit": "cm"}, 'precipitation_unit="cm" is not allowed; expected one of mm, 0.1mm'),
    "a list instead of an object": ([{"day": {"start": "08:00"}}], 'expected a JSON object, got [{"day": '),
}


def _write_meta(data_dir, station: str, doc) -> str:
    path = meta_path(data_dir, station)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc), encoding="utf-8")
    return str(path)


@pytest.mark.parametrize("doc,said", list(BAD.values()), ids=list(BAD))
def test_the_reader_refuses_a_bad_key_in_one_line_naming_file_key_value_and_what_is_allowed(tmp_path, doc, said):
    path = _write_meta(tmp_path, "s1", doc)
    with pytest.raises(DataError) as e:
        read_station_meta(tmp_path, "s1")
    assert str(e.value).startswith(f"{path}: {said}"), str(e.value)
    assert "\n" not in str(e.value)


def test_nulls_stand_for_the_defaults_and_a_good_file_reads_as_written(tmp_path):
    _write_meta(tmp_path, "s1", {"station_id": "s1", "warning_levels": None, "rating_curve": None, "day": None,
                                 "weather": None, "flood_frequency": {"distribution": None, "water_year_start": None}})
    meta = read_station_meta(tmp_path, "s1")
    assert (meta.warning_levels, meta.rating_curve, meta.day_start, meta.day_label, meta.weather) == (
        {}, None, "00:00", "start", {})
    assert (meta.distribution, meta.water_year_start) == (None, 10)
    _write_meta(tmp_path, "s1", {"warning_levels": {"alert": {"value": 45, "warn_probability": 0.3}},
                                 "day": {"start": "08:00", "timezone": "Asia/Shanghai"}, "rating_curve": POWER,
                                 "flood_frequency": {"distribution": "pe3", "water_year_start": 1}})
    meta = read_station_meta(tmp_path, "s1")
    assert meta.warning_levels == {"alert": WarningLevel(45.0, "m3/s", 0.3)}
    assert (meta.day_start, meta.timezone, meta.distribution, meta.water_year_start) == ("08:00", "Asia/Shanghai",
                                                                                         "pe3", 1)
    assert parse_rating(meta.rating_curve).discharge([1.15]).q[0] == pytest.approx(12.5)


def test_a_file_written_before_the_precipitation_unit_was_recorded_still_reads(tmp_path):
    """Imports recorded the precipitation column's unit only once 0.1 mm could be read; a metadata file of an older
    import, which has no such key (its rain was read in mm), reads as it was written."""
    days = pd.date_range("2018-01-01", periods=800, freq="D")
    df = pd.DataFrame({"precipitation": 20.0 + (days.day_of_year % 7), "discharge": 5.0 + (days.day_of_year % 11)},
                      index=days)
    import_station(df, "nb-1", tmp_path, precipitation_unit="0.1mm")   # 2.0-2.6 mm a day
    path = meta_path(tmp_path, "nb-1")
    written = json.loads(path.read_text(encoding="utf-8"))
    assert written["precipitation_unit"] == "0.1mm" and read_station_meta(tmp_path, "nb-1").to_dict() == written
    older = {k: v for k, v in written.items() if k != "precipitation_unit"}
    path.write_text(json.dumps(older), encoding="utf-8")
    meta = read_station_meta(tmp_path, "nb-1")
    assert meta.to_dict() == older and "precipitation_unit" not in meta.to_dict()


@pytest.fixture()
def data(tiny_data_dir, tmp_path):
    d = tmp_path / "data"
    shutil.copytree(tiny_data_dir, d)
    return d


@pytest.mark.parametrize("case", ["a day rule that is a bare time", "a negative level",
                                  "two levels whose names differ only in case"])
def test_forecast_exits_1_with_the_line(case, pretrained_ckpt, data, tmp_path, capsys):
    """A day rule of the wrong kind was an AttributeError inside, a bad level a usage error (exit 2)."""
    doc, said = BAD[case]
    path = _write_meta(data, "10002", doc)
    rc = main_cli.main(["forecast", "--model", str(pretrained_ckpt), "--data_dir", str(data), "--basin", "10002",
                        "--output_dir", str(tmp_path / "f")])
    err = capsys.readouterr().err
    assert rc == 1, err
    assert len(err.strip().splitlines()) == 1 and f"{path}: {said}" in err
    assert not (tmp_path / "f").exists()


def test_the_service_answers_a_station_with_a_bad_metadata_file_503_with_the_line(pretrained_ckpt, data, tmp_path):
    """As for a station whose other files cannot be read: 503 naming the station and the reader's line, the file by
    its name alone (a day rule of the wrong kind was a 500, a bad level a 422); the other stations are forecast."""
    with forecaster(pretrained_ckpt, data) as live, TestClient(create_app(data, tmp_path / "db.sqlite", live)) as c:
        for case in ("a day rule that is a bare time", "a negative level", "a rating table that falls"):
            doc, said = BAD[case]
            path = _write_meta(data, "10002", doc)
            r = c.get("/stations/10002/forecast")
            assert r.status_code == 503, (case, r.text)
            assert r.json()["detail"].startswith(f"station 10002: its data cannot be read ({Path(path).name}: {said}"), r.text
        ok = c.get("/stations/32006/forecast")
    assert ok.status_code == 200, ok.text


def _import(capsys, argv) -> None:
    rc = main_cli.main(argv)
    err = capsys.readouterr().err
    assert rc == 0, err


def test_every_metadata_file_the_product_writes_reads_back(tmp_path, capsys):
    """A fully populated file: an hourly record of water levels through a rating curve with two validity periods,
    three rain gauges with weights, levels in m, an 08:00 day in a zone, the flood-frequency settings, attributes
    and missing-value codes (station import); a weather section and a warning probability set through the Python
    API (write_station_meta); a re-import that keeps them; a rating table; a DataFrame import. Each reads back as
    it was written."""
    src = tmp_path / "水文站.csv"
    _hourly_stage_station(src)
    (tmp_path / "rating.csv").write_text("a,b,h0,h_max,valid_from,valid_to\n5,2,0.2,1.0,,2018-12-31\n"
                                         "6.25,1.5,0.36,3.0,,2018-12-31\n5,2,0.2,1.0,2019-01-01,\n"
                                         "6.25,1.5,0.36,3.0,2019-01-01,\n")
    out = tmp_path / "data"
    argv = ["station", "import", str(src), "--id", "zhen-02", "--out", str(out), "--map",
            "date=时间,stage=水位(m),precipitation=雨量1+雨量2+雨量3", "--precipitation_weights", "0.5,0.3,0.2",
            "--rating", str(tmp_path / "rating.csv"), "--day_start", "08:00", "--timezone", "Asia/Shanghai",
            "--station_timezone", "UTC+08:00", "--lat", "30.1", "--lon", "120.2", "--attr", "elev_mean=120",
            "--na_value", "-999", "--date_format", "%Y-%m-%d %H:%M", "--quiet"]
    _import(capsys, [*argv, "--warning_levels", "alert=2.5,danger=3.2", "--levels_in", "stage", "--distribution",
                     "pe3", "--water_year_start", "1"])
    written = json.loads(meta_path(out, "zhen-02").read_text(encoding="utf-8"))
    for key in ("read", "subdaily", "rating_applied", "precipitation_gauges", "record", "units_written"):
        assert written.get(key), key  # the file is fully populated
    meta = read_station_meta(out, "zhen-02")
    assert meta.to_dict() == written
    assert (meta.timezone, meta.distribution, meta.water_year_start) == ("UTC+08:00", "pe3", 1)

    weather = {"source": "open-meteo", "points": [[30.1, 120.2], [30.2, 120.1]], "models": ["icon_seamless"],
               "ensemble": True, "base_url": "https://customer-api.open-meteo.com"}
    meta.weather = weather
    meta.warning_levels["alert"] = WarningLevel(2.5, "m", 0.3)
    write_station_meta(out, meta)
    again = read_station_meta(out, "zhen-02")
    assert again.to_dict() == json.loads(meta_path(out, "zhen-02").read_text(encoding="utf-8")) == meta.to_dict()

    _import(capsys, [*argv, "--overwrite"])  # without levels or flood frequency: the earlier ones are kept
    kept = read_station_meta(out, "zhen-02")
    assert kept.weather == weather and kept.warning_levels == again.warning_levels
    assert (kept.distribution, kept.water_year_start) == ("pe3", 1)

    table = parse_rating({"kind": "table", "h": [0.2, 0.5, 1.0, 3.0], "q": [0.0, 1.3, 3.2, 16.0]})
    kept.rating_curve = table.to_dict()
    write_station_meta(out, kept)
    assert read_station_meta(out, "zhen-02").rating_curve == table.to_dict()

    days = pd.date_range("2018-01-01", periods=800, freq="D")
    df = pd.DataFrame({"precipitation": 2.0 + (days.day_of_year % 7), "discharge": 5.0 + (days.day_of_year % 11)},
                      index=days)
    import_station(df, "nb-1", out, lat=52.0)
    nb = json.loads(meta_path(out, "nb-1").read_text(encoding="utf-8"))
    assert read_station_meta(out, "nb-1").to_dict() == nb
