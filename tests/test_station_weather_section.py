"""A hand-edited ``weather`` section of a station's metadata file (``DIR/meta/<id>.json``) is checked when the
file is read: a value of the wrong kind is one line naming the file, the key, the value and what is allowed,
through the reader, the commands that read the file (forecast, weather fetch, station import: exit 1) and the
service (503 for the station, as for its other unreadable files), with the tiny trained model."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from serve_helpers import forecaster

from sca2lstm.cli import main as main_cli
from sca2lstm.data.station_meta import meta_path, read_station_meta
from sca2lstm.errors import DataError
from sca2lstm.serve.app import create_app

POINTS_HELP = "expected a list of [lat, lon] pairs of numbers in decimal degrees"
#: (a bad weather section, what the line says of it)
BAD = {
    "points that are not numbers": ({"source": "open-meteo", "points": [["51.5", "x"]]},
                                    f'weather.points[0]=["51.5", "x"] is not allowed; {POINTS_HELP}'),
    "points given as text": ({"source": "open-meteo", "points": "abc"},
                             f'weather.points="abc" is not allowed; {POINTS_HELP}'),
    "a bare source name": ("open-meteo", 'weather="open-meteo" must be an object, e.g. {"source": "open-meteo"'),
    "models a number": ({"source": "open-meteo", "models": 5},
                        'weather.models=5 is not allowed; expected a list of Open-Meteo weather model names'),
    "a point with one number": ({"source": "open-meteo", "points": [[51.5]]},
                                f"weather.points[0]=[51.5] is not allowed; {POINTS_HELP}"),
}


def _write_meta(data_dir, station: str, weather) -> str:
    path = meta_path(data_dir, station)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"station_id": station, "weather": weather}))
    return str(path)


@pytest.fixture()
def data(tiny_data_dir, tmp_path):
    d = tmp_path / "data"
    shutil.copytree(tiny_data_dir, d)
    return d


@pytest.mark.parametrize("weather,said", list(BAD.values()), ids=list(BAD))
def test_the_reader_refuses_a_bad_weather_section_in_one_line_naming_file_key_value_and_what_is_allowed(
        tmp_path, weather, said):
    path = _write_meta(tmp_path, "s1", weather)
    with pytest.raises(DataError) as e:
        read_station_meta(tmp_path, "s1")
    assert str(e.value).startswith(f"{path}: {said}")
    assert "\n" not in str(e.value)


def test_the_reader_names_an_unknown_key_and_range_errors_and_keeps_a_good_section(tmp_path):
    _write_meta(tmp_path, "s1", {"source": "open-meteo", "point": [[51.5, -1.2]]})
    with pytest.raises(DataError, match="weather.point is not a key of the weather section; its keys are source, "
                                        "points, models, ensemble, base_url"):
        read_station_meta(tmp_path, "s1")
    _write_meta(tmp_path, "s1", {"points": [[95.0, -1.2]]})
    with pytest.raises(DataError, match=r"weather.points\[0\]=\[95.0, -1.2\] is not allowed; .*latitude -90..90"):
        read_station_meta(tmp_path, "s1")
    _write_meta(tmp_path, "s1", {"source": "open-meteo", "ensemble": "yes"})
    with pytest.raises(DataError, match='weather.ensemble="yes" is not allowed; expected true'):
        read_station_meta(tmp_path, "s1")
    good = {"source": "open-meteo", "points": [[51.5, -1.2], [52, 0]], "models": ["icon_seamless"],
            "ensemble": True, "base_url": "http://127.0.0.1:8080"}
    _write_meta(tmp_path, "s1", good)
    assert read_station_meta(tmp_path, "s1").weather == {**good, "points": [[51.5, -1.2], [52.0, 0.0]]}
    for empty in (None, {}):
        _write_meta(tmp_path, "s1", empty)
        assert read_station_meta(tmp_path, "s1").weather == {}


def _run(capsys, argv) -> tuple[int, str]:
    rc = main_cli.main(argv)
    return rc, capsys.readouterr().err


@pytest.mark.parametrize("command", ["forecast", "weather fetch"])
def test_a_command_reading_the_station_metadata_exits_1_with_the_line(command, pretrained_ckpt, data, capsys):
    weather, said = BAD["points that are not numbers"]
    path = _write_meta(data, "10002", weather)
    argv = {"forecast": ["forecast", "--model", str(pretrained_ckpt), "--data_dir", str(data), "--basin", "10002"],
            # refused before any request: the address is never asked
            "weather fetch": ["weather", "fetch", "--basin", "10002", "--model", str(pretrained_ckpt), "--data_dir",
                              str(data), "--base_url", "http://127.0.0.1:9", "--retries", "0"]}[command]
    rc, err = _run(capsys, argv)
    assert rc == 1, err
    assert len(err.strip().splitlines()) == 1 and f"{path}: {said}" in err


def test_a_reimport_refuses_to_keep_a_bad_weather_section_and_writes_nothing(tiny_data_dir, tmp_path, capsys):
    ts = pd.read_csv(next((tiny_data_dir / "timeseries").glob("*_32006_*.csv")))
    src = tmp_path / "s.csv"
    ts[["date", "precipitation", "temperature", "discharge_vol"]].to_csv(src, index=False)
    data = tmp_path / "data"
    argv = ["station", "import", str(src), "--id", "k1", "--out", str(data), "--map",
            "date=date,precipitation=precipitation,temperature=temperature,discharge=discharge_vol",
            "--discharge_unit", "m3/s", "--lat", "52.0", "--quiet"]
    assert _run(capsys, argv)[0] == 0
    weather, said = BAD["models a number"]
    meta = json.loads(meta_path(data, "k1").read_text())
    meta["weather"] = weather
    meta_path(data, "k1").write_text(json.dumps(meta))
    before = {p: p.read_bytes() for p in data.rglob("*") if p.is_file()}
    rc, err = _run(capsys, [*argv, "--overwrite"])
    assert rc == 1, err
    assert len(err.strip().splitlines()) == 1 and f"{meta_path(data, 'k1')}: {said}" in err
    assert {p: p.read_bytes() for p in data.rglob("*") if p.is_file()} == before


def test_the_service_answers_a_station_with_a_bad_weather_section_503_with_the_line(pretrained_ckpt, data,
                                                                                    tmp_path):
    """As for a station whose other files cannot be read: 503 naming the station and the reader's line; the
    other stations are forecast."""
    weather, said = BAD["a bare source name"]
    path = _write_meta(data, "10002", weather)
    with forecaster(pretrained_ckpt, data) as live, TestClient(create_app(data, tmp_path / "db.sqlite", live)) as c:
        r = c.get("/stations/10002/forecast")
        ok = c.get("/stations/32006/forecast")
    assert r.status_code == 503, r.text
    assert r.json()["detail"].startswith(f"station 10002: its data cannot be read ({Path(path).name}: {said}")
    assert ok.status_code == 200, ok.text
