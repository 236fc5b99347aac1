"""Bring your own station: import in several dialects, string ids, station periods, and bad input.

The stations are the tiny synthetic basin 32006 moved to 2010 (outside the tiny configured periods of
1971-1976), written in the dialects users have: ';' with decimal commas and DD.MM.YYYY dates, l/s,
m3/s, mm/d.
"""

from __future__ import annotations

import json
import logging
import shutil

import numpy as np
import pandas as pd
import pytest
import torch

from sca2lstm.cli import finetune as finetune_cli
from sca2lstm.cli import main as main_cli
from sca2lstm.cli import predict as predict_cli
from sca2lstm.data.station import MIN_OBSERVED_DAYS, climate_attributes, import_station

MAP = "date=Datum,precipitation=N,discharge=Q,temperature=T"


@pytest.fixture(scope="module")
def source(tiny_data_dir) -> pd.DataFrame:
    """Basin 32006's daily P, T and Q (m3/s), dated from 2010-01-01."""
    f = next((tiny_data_dir / "timeseries").glob("*_32006_*.csv"))
    df = pd.read_csv(f)
    return pd.DataFrame({"date": pd.date_range("2010-01-01", periods=len(df), freq="D"),
                         "N": df["precipitation"], "T": df["temperature"], "Q": df["discharge_vol"]})


def write_csv(src: pd.DataFrame, path, days=None, sep=",", decimal=".", date_fmt="%Y-%m-%d", q_factor=1.0):
    df = src.iloc[:days].copy() if days else src.copy()
    df["Datum"] = df.pop("date").dt.strftime(date_fmt)
    if q_factor != 1.0:
        df["Q"] = df["Q"] * q_factor
    df[["Datum", "N", "T", "Q"]].to_csv(path, sep=sep, decimal=decimal, index=False)
    return path


def run(capsys, argv):
    rc = main_cli.main(argv)
    out = capsys.readouterr()
    return rc, out.out, out.err


def snapshot(root) -> dict:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()} \
        if root.exists() else {}


# ------------------------------------------------------------------------------------------ dialects
DIALECTS = {
    # name: (csv writer options, import flags, factor from m3/s to the file's unit)
    "semicolon-decimal-comma-ddmmyyyy-l/s": ({"sep": ";", "decimal": ",", "date_fmt": "%d.%m.%Y"},
                                             ["--sep", ";", "--decimal", ",", "--discharge_unit", "l/s"], 1000.0),
    "comma-iso-m3/s": ({}, ["--discharge_unit", "m3/s"], 1.0),
    "comma-iso-mm/d": ({}, ["--discharge_unit", "mm/d"], 86.4 / 120.0),
}


@pytest.mark.parametrize("dialect", list(DIALECTS))
def test_import_dialects_convert_to_the_layout(dialect, source, tmp_path, capsys):
    opts, flags, factor = DIALECTS[dialect]
    f = write_csv(source, tmp_path / "pegel.csv", **opts, q_factor=factor)
    out = tmp_path / "my stations"   # a space: the commands printed must still paste as one word
    rc, stdout, err = run(capsys, ["station", "import", str(f), "--id", "my-gauge", "--out", str(out), "--map", MAP,
                                   "--area_km2", "120", "--lat", "52.1", "--lon", "-1.5", *flags])
    assert rc == 0, err
    ts = pd.read_csv(out / "timeseries" / "my-gauge.csv")
    assert list(ts.columns) == ["date", "precipitation", "temperature", "discharge_vol", "discharge_spec"]
    assert ts["date"].iloc[0] == "2010-01-01" and len(ts) == len(source)
    np.testing.assert_allclose(ts["discharge_vol"], source["Q"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(ts["discharge_spec"], source["Q"] * 86.4 / 120, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(ts["precipitation"], source["N"], rtol=1e-6)
    attrs = pd.read_csv(out / "attributes" / "stations.csv", dtype={"gauge_id": str}).set_index("gauge_id")
    assert attrs.loc["my-gauge", "area"] == 120 and attrs.loc["my-gauge", "gauge_lat"] == 52.1
    assert attrs.loc["my-gauge", "p_mean"] == pytest.approx(source["N"].mean(), rel=1e-5)
    meta = json.loads((out / "meta" / "my-gauge.json").read_text())
    assert meta["discharge_unit"] == flags[flags.index("--discharge_unit") + 1] and len(meta["source_sha256"]) == 64
    # What it read, what it converted, what the model will miss, and the next command.
    assert f"{len(source)} days 2010-01-01.." in stdout and "missing days per column" in stdout
    assert "unknown, masked for the model:" in stdout and "dpsbar" in stdout
    assert f"fine_train.py --data_dir '{out}' --target_basin my-gauge" in stdout
    if factor != 1.0:
        assert ("l/s -> m3/s" if factor == 1000.0 else "mm/d -> m3/s") in stdout


def test_climate_attributes_follow_the_camels_gb_definitions():
    days = pd.date_range("2000-01-01", periods=740, freq="D")
    p = np.where(np.arange(740) % 10 == 0, 20.0, 0.5)          # 1 day in 10 wet (20 mm), the rest 0.5 mm
    t = np.where(np.arange(740) % 20 == 0, -3.0, 8.0)         # every second wet day is below freezing
    a = climate_attributes(pd.DataFrame({"precipitation": p, "temperature": t, "pet": 1.0}, index=days))
    p_mean = 0.1 * 20 + 0.9 * 0.5
    assert a["p_mean"] == pytest.approx(p_mean)
    assert a["high_prec_freq"] == pytest.approx(0.1 * 365.25)    # 20 >= 5 x 2.45; 0.5 is not
    assert a["low_prec_freq"] == pytest.approx(0.9 * 365.25)     # days < 1 mm
    assert a["frac_snow"] == pytest.approx(0.05 * 20 / p_mean)   # half the wet days are cold
    assert a["aridity"] == pytest.approx(1.0 / p_mean)


def test_second_station_adds_and_changes_nothing_else(source, tmp_path, capsys):
    out = tmp_path / "stations"
    f = write_csv(source, tmp_path / "a.csv")
    base = ["--map", MAP, "--discharge_unit", "m3/s", "--out", str(out)]
    assert run(capsys, ["station", "import", str(f), "--id", "A1", "--lat", "50", *base])[0] == 0
    before = snapshot(out)
    assert run(capsys, ["station", "import", str(f), "--id", "32006", "--attr", "elev_mean=300", *base])[0] == 0
    after = snapshot(out)
    assert {k: v for k, v in after.items() if k in before and k != "attributes/stations.csv"} == \
        {k: v for k, v in before.items() if k != "attributes/stations.csv"}
    table = pd.read_csv(out / "attributes" / "stations.csv", dtype={"gauge_id": str}).set_index("gauge_id")
    old = pd.read_csv(pd.io.common.BytesIO(before["attributes/stations.csv"]), dtype={"gauge_id": str})
    assert table.loc["A1", "gauge_lat"] == 50 and np.isnan(table.loc["A1", "elev_mean"])
    assert table.loc["32006", "elev_mean"] == 300
    assert table.loc[["A1"], old.columns[1:]].to_numpy().tolist() == old.set_index("gauge_id").to_numpy().tolist()
    # --overwrite replaces a station in place.
    assert run(capsys, ["station", "import", str(f), "--id", "A1", "--lat", "51", "--overwrite", *base])[0] == 0
    table = pd.read_csv(out / "attributes" / "stations.csv", dtype={"gauge_id": str}).set_index("gauge_id")
    assert table.loc["A1", "gauge_lat"] == 51 and len(table) == 2


def test_a_write_the_system_refuses_is_one_line_and_leaves_the_folder_as_it_was(source, tmp_path, capsys,
                                                                                 monkeypatch):
    """A full disk while a re-import wrote its files, or a file named meta where the layout's folder goes, ended in
    a traceback (the folder was restored, but the user was shown an OSError); each is one line, the folder as it
    was, the existing station untouched."""
    from sca2lstm.data import station_write

    out = tmp_path / "stations"
    f = write_csv(source, tmp_path / "a.csv")
    base = ["station", "import", str(f), "--map", MAP, "--discharge_unit", "m3/s", "--out", str(out)]
    assert run(capsys, [*base, "--id", "A1"])[0] == 0
    before = snapshot(out)
    written = []

    def full_disk(path, mode="r", *args, **kwargs):
        if "x" in mode and written:   # the second file of the import finds the disk full
            raise OSError(28, "No space left on device", str(path))
        written.append(path)
        return open(path, mode, *args, **kwargs)

    monkeypatch.setattr(station_write, "open", full_disk, raising=False)
    rc, _, err = run(capsys, [*base, "--id", "A1", "--lat", "51", "--overwrite"])
    monkeypatch.undo()
    assert rc == 1 and len(err.strip().splitlines()) == 1, err
    assert "cannot write" in err and "No space left on device" in err and "is left as it was" in err
    assert snapshot(out) == before
    other = tmp_path / "other"
    (other / "meta").parent.mkdir()
    (other / "meta").write_text("notes")
    rc, _, err = run(capsys, [*base[:-1], str(other), "--id", "B1"])
    assert rc == 1 and f"{other / 'meta'} is a file" in err, err
    assert sorted(p.name for p in other.iterdir()) == ["meta"]


def test_an_id_differing_only_in_case_from_a_stored_one_is_refused(source, tmp_path, capsys):
    """gauge1 beside a stored Gauge1 was written as a second station: on Windows and macOS its file replaced
    Gauge1.csv, while stations.csv listed both. It is refused, with or without --overwrite, as are two such ids in
    one spec; the stored station is untouched."""
    import yaml

    out = tmp_path / "stations"
    f = write_csv(source, tmp_path / "a.csv")
    base = ["station", "import", str(f), "--map", MAP, "--discharge_unit", "m3/s", "--out", str(out)]
    assert run(capsys, [*base, "--id", "Gauge1"])[0] == 0
    before = snapshot(out)
    for flags in ([], ["--overwrite"]):
        rc, _, err = run(capsys, [*base, "--id", "gauge1", *flags])
        assert rc == 2 and "station id 'gauge1' differs only in case from station 'Gauge1'" in err, err
    assert snapshot(out) == before
    station = {"file": "a.csv", "map": MAP, "discharge_unit": "m3/s"}
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump({"stations": [{**station, "id": "DE1"}, {**station, "id": "de1"}]}))
    rc, _, err = run(capsys, ["station", "import", "--spec", str(spec), "--out", str(tmp_path / "two")])
    assert rc == 2 and "given more than once" in err and not (tmp_path / "two").exists()


def test_a_stations_table_saved_back_from_excel_in_gbk_is_read_and_written_in_utf8(source, tmp_path, capsys):
    """stations.csv opened in Excel or WPS on a Chinese system, a note column added, and saved comes back in GBK:
    the next import was refused with "give the right --encoding", a flag for the station's file that cannot help.
    It is read as it is and written back in UTF-8, the note kept, and every command reads it again."""
    from sca2lstm.data import reader

    out = tmp_path / "stations"
    f = write_csv(source, tmp_path / "a.csv")
    base = ["station", "import", str(f), "--map", MAP, "--discharge_unit", "m3/s", "--out", str(out)]
    assert run(capsys, [*base, "--id", "A1", "--lat", "50"])[0] == 0
    table = out / "attributes" / "stations.csv"
    edited = pd.read_csv(table, dtype=str).assign(备注="上游有水库")
    table.write_bytes(edited.to_csv(index=False).encode("gbk"))
    rc, _, err = run(capsys, [*base, "--id", "B1"])
    assert rc == 0, err
    back = pd.read_csv(table, dtype=str, encoding="utf-8").set_index("gauge_id")
    assert back.loc["A1", "备注"] == "上游有水库" and back.loc["A1", "gauge_lat"] == "50"
    assert sorted(back.index) == ["A1", "B1"]
    assert reader.attribute_table(out).loc["A1", "gauge_lat"] == 50
    # saved in GBK again after the import, the table is read by the other commands too (they have no --encoding)
    table.write_bytes(back.reset_index().to_csv(index=False).encode("gbk"))
    again = reader.attribute_table(out)
    assert again.loc["A1", "备注"] == "上游有水库" and again.loc["A1", "gauge_lat"] == 50


def test_spec_yaml_imports_a_list_all_or_nothing(source, tmp_path, capsys):
    write_csv(source, tmp_path / "a.csv")
    write_csv(source, tmp_path / "b.csv", sep=";", decimal=",", date_fmt="%d.%m.%Y", q_factor=1000.0)
    out = tmp_path / "stations"
    spec = tmp_path / "stations.yaml"
    good = {"file": "a.csv", "id": "DE1", "map": {"date": "Datum", "precipitation": "N", "discharge": "Q"},
            "discharge_unit": "m3/s", "attr": {"elev_mean": 50}}
    second = {"file": "b.csv", "id": "DE2", "map": MAP, "discharge_unit": "l/s", "sep": ";", "decimal": ",",
              "lat": 48.0}
    import yaml
    spec.write_text(yaml.safe_dump({"stations": [good, {**second, "lat": 123}]}))
    rc, _, err = run(capsys, ["station", "import", "--spec", str(spec), "--out", str(out)])
    assert rc == 2 and "--lat 123" in err and not out.exists()  # the bad second station: nothing written
    spec.write_text(yaml.safe_dump({"stations": [good, second]}))
    rc, _, err = run(capsys, ["station", "import", "--spec", str(spec), "--out", str(out)])
    assert rc == 0, err
    assert sorted(p.name for p in (out / "timeseries").iterdir()) == ["DE1.csv", "DE2.csv"]
    a = pd.read_csv(out / "timeseries" / "DE1.csv")
    b = pd.read_csv(out / "timeseries" / "DE2.csv")
    np.testing.assert_allclose(a["discharge_vol"], b["discharge_vol"], rtol=1e-5)


def test_a_key_or_warning_level_written_twice_in_a_spec_is_refused_naming_it(source, tmp_path, capsys):
    """YAML keeps the last of a key written twice: two `alert:` levels (or two `lat:`) would import the
    station with one of them dropped without a word. It is one line naming the key and both lines, exit 2,
    nothing written; the same entry with the key once imports."""
    write_csv(source, tmp_path / "a.csv")
    out = tmp_path / "stations"
    spec = tmp_path / "stations.yaml"
    head = ["stations:", "  - file: a.csv", "    id: DE1", f"    map: {MAP}", "    discharge_unit: m3/s",
            "    lat: 52.1"]
    for extra, key, line, first in ((["    warning_levels:", "      alert: 10", "      alert: 20"], "alert", 9, 8),
                                    (["    warning_levels: {alert: 10, alert: 20}"], "alert", 7, 7),
                                    (["    lat: 50"], "lat", 7, 6)):
        spec.write_text("\n".join(head + extra) + "\n")
        rc, _, err = run(capsys, ["station", "import", "--spec", str(spec), "--out", str(out)])
        assert rc == 2 and not out.exists()
        assert f"line {line}: {key!r} is given twice in one entry (first on line {first})" in err
        assert len(err.strip().splitlines()) == 1
    spec.write_text("\n".join(head + ["    warning_levels:", "      alert: 10", "      danger: 20"]) + "\n")
    rc, _, err = run(capsys, ["station", "import", "--spec", str(spec), "--out", str(out), "--quiet"])
    assert rc == 0, err
    levels = json.loads((out / "meta" / "DE1.json").read_text())["warning_levels"]
    assert {k: v["value"] for k, v in levels.items()} == {"alert": 10.0, "danger": 20.0}


def test_warning_levels_of_a_spec_differing_only_in_case_are_refused_naming_both(source, tmp_path, capsys):
    """`alert:` and `Alert:` in a spec's warning_levels would import two levels, each warned on: one line naming
    both, exit 2, nothing written."""
    write_csv(source, tmp_path / "a.csv")
    out = tmp_path / "stations"
    spec = tmp_path / "stations.yaml"
    spec.write_text("\n".join(["stations:", "  - file: a.csv", "    id: DE1", f"    map: {MAP}",
                               "    discharge_unit: m3/s", "    warning_levels:", "      alert: 10",
                               "      Alert: 20"]) + "\n")
    rc, _, err = run(capsys, ["station", "import", "--spec", str(spec), "--out", str(out)])
    assert rc == 2 and not out.exists()
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "'alert' and 'Alert' differ only in case; give the name once" in lines[0], err


def test_a_spec_attr_written_as_the_flag_is_reads_as_the_mapping(source, tmp_path, capsys):
    """`attr: elev_mean=50` in a spec (the --attr flag's form) is the attribute elev_mean, as `attr: {elev_mean: 50}`
    is, not a refusal naming its first letter."""
    import yaml

    from sca2lstm.data import reader

    write_csv(source, tmp_path / "a.csv")
    station = {"file": "a.csv", "map": {"date": "Datum", "precipitation": "N", "discharge": "Q"},
               "discharge_unit": "m3/s"}
    spec = tmp_path / "stations.yaml"
    spec.write_text(yaml.safe_dump({"stations": [{**station, "id": "A1", "attr": "elev_mean=50"},
                                                 {**station, "id": "B1", "attr": ["elev_mean=60", "dpsbar=7"]}]}))
    rc, _, err = run(capsys, ["station", "import", "--spec", str(spec), "--out", str(tmp_path / "o")])
    assert rc == 0, err
    table = reader.attribute_table(tmp_path / "o")
    assert table.loc["A1", "elev_mean"] == 50 and table.loc["B1", "elev_mean"] == 60 and table.loc["B1", "dpsbar"] == 7


def test_a_spec_whose_later_folder_is_bad_writes_no_folder(source, tmp_path, capsys):
    """Every station's folder is checked before the first is written: a spec whose second station goes under a
    file, or names one id twice in its folder, leaves the first station's folder unwritten."""
    import yaml

    write_csv(source, tmp_path / "a.csv")
    (tmp_path / "notes.txt").write_text("a file, not a folder")
    station = {"file": "a.csv", "map": {"date": "Datum", "precipitation": "N", "discharge": "Q"},
               "discharge_unit": "m3/s"}
    spec = tmp_path / "stations.yaml"
    for later, text in (([{**station, "id": "B1", "out": str(tmp_path / "notes.txt" / "b")}],
                         f"{tmp_path / 'notes.txt'} is a file, not a folder"),
                        ([{**station, "id": "B1", "out": str(tmp_path / "b")}] * 2, "['B1'] given more than once")):
        spec.write_text(yaml.safe_dump({"stations": [{**station, "id": "A1", "out": str(tmp_path / "a")}, *later]}))
        rc, stdout, err = run(capsys, ["station", "import", "--spec", str(spec)])
        assert rc != 0 and text in err and len(err.strip().splitlines()) == 1, err
        assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists() and "Station A1" not in stdout


def test_a_spec_written_as_a_chinese_hydrologist_would_reads_as_meant(source, tmp_path, capsys):
    """Saved in GBK, a rating curve named beside the spec (as the station file is), and `day_start: 8:00`
    unquoted (YAML 1.1 reads it as the base-60 number 480): the same station as the careful spelling."""
    f = tmp_path / "站点 A.csv"
    src = source.iloc[:900]
    pd.DataFrame({"Datum": src["date"].dt.strftime("%Y-%m-%d"), "N": src["N"], "H": 0.5 + src["Q"] / 50.0}).to_csv(
        f, index=False)
    (tmp_path / "曲线 2020.csv").write_text("a,b,h0\n12.0,1.6,0.1\n")
    text = ("file: 站点 A.csv\nid: z1\nmap: {date: Datum, precipitation: N, stage: H}\nrating: 曲线 2020.csv\n"
            "day_start: 8:00\nlat: 30.0\n")
    (tmp_path / "spec.yaml").write_bytes(text.encode("gbk"))
    rc, _, err = run(capsys, ["station", "import", "--spec", str(tmp_path / "spec.yaml"), "--out", str(tmp_path / "o")])
    assert rc == 0, err
    meta = json.loads((tmp_path / "o" / "meta" / "z1.json").read_text(encoding="utf-8"))
    assert meta["day"]["start"] == "08:00" and meta["rating_curve"] is not None


def test_paths_in_a_spec_are_taken_from_its_folder_whatever_the_working_directory(source, tmp_path, capsys,
                                                                                   monkeypatch):
    """A rating table and an out: folder written in a spec are found beside the spec, as its file: is. A rating table
    missing there was read from the working directory when one of that name stood there (another station's curve,
    without a word), and out: was written under the working directory."""
    specs, cwd = tmp_path / "specs", tmp_path / "cwd"
    (specs / "curves").mkdir(parents=True)
    (cwd / "curves").mkdir(parents=True)
    src = source.iloc[:900]
    pd.DataFrame({"Datum": src["date"].dt.strftime("%Y-%m-%d"), "N": src["N"], "H": 1.1}).to_csv(specs / "a.csv",
                                                                                              index=False)
    (specs / "curves" / "a.csv").write_text("h,Q\n0.1,0\n1.1,12\n2.1,40\n")
    (cwd / "curves" / "a.csv").write_text("h,Q\n0.1,0\n1.1,1200\n2.1,4000\n")   # another station's, 100 times
    monkeypatch.chdir(cwd)
    spec = specs / "spec.yaml"
    spec.write_text("file: a.csv\nid: s1\nout: data\nmap: {date: Datum, precipitation: N, stage: H}\n"
                    "rating: curves/a.csv\n", encoding="utf-8")
    rc, stdout, err = run(capsys, ["station", "import", "--spec", str(spec)])
    assert rc == 0, err
    assert not (cwd / "data").exists()
    assert (pd.read_csv(specs / "data" / "timeseries" / "s1.csv")["discharge_vol"] == 12.0).all()
    assert str(specs / "data") in stdout
    # the spec's curve missing: named where it was looked for, not read from the working directory
    (specs / "curves" / "a.csv").unlink()
    spec.write_text(spec.read_text(encoding="utf-8").replace("id: s1", "id: s2"), encoding="utf-8")
    rc, _, err = run(capsys, ["station", "import", "--spec", str(spec)])
    assert rc == 2 and f"--rating {str(specs / 'curves' / 'a.csv')!r} is neither" in err, err
    assert not (specs / "data" / "timeseries" / "s2.csv").exists() and not (cwd / "data").exists()
    # --out beside --spec is a flag: from the working directory
    spec.write_text("file: a.csv\nid: s3\nmap: {date: Datum, precipitation: N, stage: H}\nrating: a=12,b=1,h0=0.1\n",
                    encoding="utf-8")
    rc, _, err = run(capsys, ["station", "import", "--spec", str(spec), "--out", "flagged"])
    assert rc == 0, err
    assert (cwd / "flagged" / "timeseries" / "s3.csv").is_file()


def test_a_gbk_spec_naming_a_short_chinese_file_finds_it(source, tmp_path, capsys):
    """`file: 站.csv` in a spec saved in GBK: its bytes D5 BE are valid UTF-8, and the file was looked for as վ.csv."""
    write_csv(source, tmp_path / "站.csv")
    (tmp_path / "spec.yaml").write_bytes(f"file: 站.csv\nid: z2\nmap: {MAP}\ndischarge_unit: m3/s\n".encode("gbk"))
    rc, _, err = run(capsys, ["station", "import", "--spec", str(tmp_path / "spec.yaml"), "--out", str(tmp_path / "o")])
    assert rc == 0, err
    meta = json.loads((tmp_path / "o" / "meta" / "z2.json").read_text(encoding="utf-8"))
    assert meta["source"] == str(tmp_path / "站.csv")


def test_a_spec_station_code_with_a_leading_zero_keeps_its_id(source, tmp_path, capsys):
    """`id: 01010500` unquoted, as a station code is written: YAML 1.1 would read it as the octal number 266560
    and import the station under that id; it is the id as written."""
    write_csv(source, tmp_path / "a.csv")
    (tmp_path / "spec.yaml").write_text("file: a.csv\nid: 01010500\nmap: {date: Datum, precipitation: N, "
                                        "discharge: Q}\ndischarge_unit: m3/s\nskiprows: 00\n", encoding="utf-8")
    rc, _, err = run(capsys, ["station", "import", "--spec", str(tmp_path / "spec.yaml"), "--out", str(tmp_path / "o")])
    assert rc == 0, err
    assert [p.name for p in (tmp_path / "o" / "timeseries").iterdir()] == ["01010500.csv"]
    ids = pd.read_csv(tmp_path / "o" / "attributes" / "stations.csv", dtype=str)["gauge_id"].tolist()
    assert ids == ["01010500"]


def test_discharge_unit_written_as_the_si_symbol_reads_as_documented(source, tmp_path, capsys):
    """--discharge_unit L/s (the SI symbol) and m³/s are l/s and m3/s, not an unknown unit."""
    f = write_csv(source, tmp_path / "a.csv", q_factor=1000.0)
    g = write_csv(source, tmp_path / "b.csv")
    base = ["--out", str(tmp_path / "o"), "--map", MAP]
    assert run(capsys, ["station", "import", str(f), "--id", "ls", *base, "--discharge_unit", "L/s"])[0] == 0
    assert run(capsys, ["station", "import", str(g), "--id", "m3", *base, "--discharge_unit", "m³/s"])[0] == 0
    a, b = (pd.read_csv(tmp_path / "o" / "timeseries" / f"{i}.csv") for i in ("ls", "m3"))
    np.testing.assert_allclose(a["discharge_vol"], b["discharge_vol"], rtol=1e-5)
    np.testing.assert_allclose(b["discharge_vol"], source["Q"], rtol=1e-5)


def test_a_station_code_with_a_leading_zero_keeps_its_attributes(source, tmp_path, capsys):
    """--id 01010500: the id is text in the attributes as in the file name, so the station's area, latitude
    and climate attributes reach the model (read as a number, 1010500 matched no station: all were masked)."""
    from sca2lstm.data.reader import attribute_table, read_attributes

    f = write_csv(source, tmp_path / "a.csv")
    out = tmp_path / "o"
    rc, _, err = run(capsys, ["station", "import", str(f), "--id", "01010500", "--out", str(out), "--map", MAP,
                              "--discharge_unit", "m3/s", "--area_km2", "120", "--lat", "30.5"])
    assert rc == 0, err
    table = attribute_table(out)
    assert table.index.tolist() == ["01010500"]
    assert table.loc["01010500", "area"] == 120 and table.loc["01010500", "gauge_lat"] == 30.5
    static = read_attributes(out, ["01010500"], ["area", "gauge_lat"])
    assert static.loc["01010500"].tolist() == [120.0, 30.5]


def test_short_record_warns_and_python_api(source, tmp_path, caplog, monkeypatch):
    """The notebook API: a DataFrame with a DatetimeIndex in, a folder out; three years warn."""
    monkeypatch.setattr(logging.getLogger("sca2lstm"), "propagate", True)  # a CLI run may have turned it off
    df = source.iloc[:3 * 365].rename(columns={"N": "precipitation", "Q": "discharge", "T": "temperature"})
    with caplog.at_level(logging.WARNING):
        out = import_station(df.set_index("date"), "nb-1", tmp_path / "st", {"gauge_lat": 51.0, "elev_mean": 80},
                            discharge_unit="m3/s")
    assert (out / "timeseries" / "nb-1.csv").is_file()
    n_obs = int(df["discharge"].notna().sum())
    assert any(f"only {n_obs} days ({n_obs / 365.25:.1f} years)" in r.getMessage() for r in caplog.records)


# ------------------------------------------------------------------------------------------ bad input
def _base_frame(src, days=900):
    return src.iloc[:days].copy()


def _case_file(kind, src, path):
    """Write the file of one bad-input case; returns extra flags (or None for the defaults)."""
    df = _base_frame(src)
    if kind == "binary":
        path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)))
        return
    if kind == "empty":
        path.write_bytes(b"")
        return
    if kind == "comma-sep-decimal-comma":
        rows = [f"{d:%Y-%m-%d},{str(n).replace('.', ',')},{t},{str(q).replace('.', ',')}"
                for d, n, t, q in zip(df["date"], df["N"].round(1) + 0.5, df["T"].round(0).astype(int), df["Q"].fillna(1.0) + 0.25)]
        path.write_text("Datum,N,T,Q\n" + "\n".join(rows) + "\n")
        return
    if kind == "header-only":
        path.write_text("Datum,N,T,Q\n")
        return
    if kind == "hourly":
        df["date"] = pd.date_range("2010-01-01", periods=len(df), freq="h")
        df["Datum"] = df.pop("date").dt.strftime("%Y-%m-%d %H:%M:%S")
        df[["Datum", "N", "T", "Q"]].to_csv(path, index=False)
        return
    if kind == "monthly":
        df["date"] = pd.date_range("2010-01-01", periods=len(df), freq="MS")
    if kind == "duplicate":
        df.loc[df.index[5], "date"] = df.loc[df.index[4], "date"]
    if kind == "q-all-missing":
        df["Q"] = np.nan
    if kind == "q-negative":
        df.loc[df.index[10], "Q"] = -2.0
    if kind == "p-negative":
        df.loc[df.index[3], "N"] = -1.0
    if kind == "t-tenths":  # one day in 0.1 degC, as some weather services store it: 25.3 degC written 253
        df.loc[df.index[30], "T"] = 253.0
    if kind == "short":
        df = df.iloc[:400]
    if kind == "text-in-number":
        df["Q"] = df["Q"].astype(object)
        df.loc[df.index[7], "Q"] = "n/a?"
    sep, dec, fmt = (";", ",", "%Y-%m-%d") if kind == "decimal-comma" else (",", ".", "%Y-%m-%d")
    if kind == "ambiguous-date":  # no day above 12 anywhere: 01/02/2010 may be 1 February or 2 January
        fmt = "%d/%m/%Y"
        df = df[df["date"].dt.day <= 12]
    write_csv(df, path, sep=sep, decimal=dec, date_fmt=fmt)


# (case, extra or replaced flags, expected exit code, text the one line must contain)
BAD = [
    ("absent-column", {"--map": "date=Datum,precipitation=N,discharge=Abfluss"}, 1, "discharge=Abfluss"),
    ("unknown-unit", {"--discharge_unit": "m3/h"}, 2, "--discharge_unit 'm3/h'"),
    ("mm/d-without-area", {"--discharge_unit": "mm/d"}, 2, "--area_km2"),
    ("hourly", {}, 1, "32 days of observed discharge"),  # 900 hourly rows are aggregated to 38 days
    ("monthly", {}, 1, "not daily"),
    ("duplicate", {}, 1, "duplicate dates"),
    ("q-all-missing", {}, 1, "column 'Q' (discharge) has no values"),
    ("q-negative", {}, 1, "column 'Q' (discharge, m3/s) has 1 negative"),
    ("p-negative", {}, 1, "column 'N' (precipitation, mm/d) has 1 negative"),
    ("t-tenths", {}, 1, "column 'T' (temperature, degC) has 1 value(s) outside -60..60 degC (first on 2010-01-31: 253)"),
    ("decimal-comma", {"--sep": ";"}, 1, "add --decimal ,"),
    ("comma-sep-decimal-comma", {}, 1, "more fields than the header"),
    ("short", {}, 1, "the minimum is 730 days"),
    ("clash", {"--id": "keep"}, 2, "station id 'keep' already exists"),
    ("unsafe-dotdot", {"--id": "../x"}, 2, "invalid station id '../x'"),
    ("unsafe-slash", {"--id": "a/b"}, 2, "invalid station id 'a/b'"),
    ("unsafe-space", {"--id": "my gauge"}, 2, "invalid station id 'my gauge'"),
    ("latitude", {"--lat": "95"}, 2, "--lat 95.0 is out of range"),
    ("binary", {}, 1, "not a text file"),
    ("empty", {}, 1, "is empty"),
    ("header-only", {}, 1, "no data rows"),
    ("text-in-number", {}, 1, "non-numeric value 'n/a?'"),
    ("ambiguous-date", {}, 1, "--date_format"),
    ("negative-area", {"--area_km2": "-5"}, 2, "--area_km2 -5.0"),
    ("map-lacks-discharge", {"--map": "date=Datum,precipitation=N"}, 2, "--map lacks ['discharge']"),
    ("map-names-absent-rain", {"--map": "date=Datum,precipitation=Rain,discharge=Q"}, 1,
     "mapped column(s) precipitation=Rain not in the file"),   # named as the user wrote it
    ("missing-file", {"FILE": "nope.csv"}, 1, "nope.csv"),
    # the unit of --warning_levels alone: the water levels meant are nowhere, said rather than dropped
    ("level-names-in-two-cases", {"--warning_levels": "alert=10,Alert=20"}, 2,
     "--warning_levels: 'alert' and 'Alert' differ only in case; give the name once"),
    ("levels-in-stage-alone", {"--levels_in": "stage"}, 2,
     "--levels_in stage is the unit of --warning_levels, and none is given"),
]


@pytest.fixture(scope="module")
def populated(source, tmp_path_factory) -> object:
    """A data folder that already holds station 'keep'."""
    root = tmp_path_factory.mktemp("populated")
    f = write_csv(source, root / "keep.csv", days=900)
    assert main_cli.main(["station", "import", str(f), "--id", "keep", "--out", str(root / "data"), "--map", MAP,
                          "--discharge_unit", "m3/s", "--quiet"]) == 0
    return root / "data"


@pytest.mark.parametrize("case,flags,code,text", BAD, ids=[b[0] for b in BAD])
def test_bad_input_one_line_nonzero_nothing_written(case, flags, code, text, source, populated, tmp_path, capsys):
    data = tmp_path / "data"
    shutil.copytree(populated, data)
    before = snapshot(data)
    f = tmp_path / "station.csv"
    _case_file(case, source, f)
    opts = {"FILE": str(f), "--id": "new-1", "--out": str(data), "--map": MAP, "--discharge_unit": "m3/s", **flags}
    if opts["FILE"] == "nope.csv":
        opts["FILE"] = str(tmp_path / "nope.csv")
    argv = ["station", "import", opts.pop("FILE")] + [x for k, v in opts.items() for x in (k, v)]
    rc, _, err = run(capsys, argv)
    assert rc == code, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and text in lines[0], err
    assert snapshot(data) == before  # nothing half-written, no temp files left


def test_minimum_is_documented_where_it_is_enforced():
    assert MIN_OBSERVED_DAYS == 730


# ------------------------------------------------------------------------------------------ the guide's commands
@pytest.fixture(scope="module")
def imported(source, tmp_path_factory):
    """Three dialects of the same station imported under string ids into one folder, and a 3-year one."""
    root = tmp_path_factory.mktemp("guide")
    data = root / "data"
    for sid, (name, (opts, flags, factor)) in zip(("de-semicolon", "iso-m3s", "iso-mmd"), DIALECTS.items()):
        f = write_csv(source, root / f"{sid}.csv", **opts, q_factor=factor)
        assert main_cli.main(["station", "import", str(f), "--id", sid, "--out", str(data), "--map", MAP,
                              "--area_km2", "120", "--lat", "52.1", "--lon", "-1.5", "--quiet", *flags]) == 0, name
    f = write_csv(source, root / "short3y.csv", days=3 * 365 + 10)  # three years: works, with a warning
    assert main_cli.main(["station", "import", str(f), "--id", "short3y", "--out", str(data), "--map", MAP,
                          "--lat", "52.1", "--discharge_unit", "m3/s", "--quiet"]) == 0
    return data


@pytest.mark.slow
@pytest.mark.parametrize("sid", ["de-semicolon", "iso-m3s", "iso-mmd", "short3y"])
def test_guide_commands_on_an_imported_station(sid, imported, pretrained_ckpt, tmp_path):
    """fine_train.py then predict.py, as the guide writes them, on a string id: the fine-tune never
    reads the test part (the last 20 % of observed days), stores it, and predict.py scores exactly it."""
    out = tmp_path / "ft"
    rc = finetune_cli.main(["--target_basin", sid, "--pretrained_model", str(pretrained_ckpt), "--epochs", "1",
                            "--data_dir", str(imported), "--output_dir", str(out), "--quiet"])
    assert rc == 0
    ckpt_path = next(out.glob(f"basin_{sid}/*/best_model_basin_{sid}.pth"))
    ckpt = torch.load(ckpt_path, weights_only=True)
    periods = ckpt["periods"]
    assert periods["rule"] == "station" and ckpt["finetuned_basin"] == sid
    ts = pd.read_csv(imported / "timeseries" / f"{sid}.csv")
    observed = ts.loc[ts["discharge_vol"].notna(), "date"]
    assert (observed >= periods["test"][0]).sum() == pytest.approx(0.2 * len(observed), abs=1)
    assert periods["fine_tune"][1] < periods["test"][0]
    config = json.loads((ckpt_path.parent / "config.json").read_text())
    assert config["split"]["validation"][1] < periods["test"][0]
    rc = predict_cli.main(["--model", str(out / f"basin_{sid}" / "*" / f"best_model_basin_{sid}.pth"),
                           "--basin", sid, "--data_dir", str(imported)])
    assert rc == 0
    series = pd.read_csv(ckpt_path.parent / "predictions" / f"basin_{sid}" / "series.csv")
    assert series["date"].iloc[0] == periods["test"][0] and series["date"].iloc[-1] == periods["test"][1]
    metrics = json.loads((ckpt_path.parent / "predictions" / f"basin_{sid}" / "metrics.json").read_text())
    assert np.isfinite(metrics["model"]["nse"]) and np.isfinite(metrics["persistence"]["nse"])


@pytest.mark.slow
def test_test_start_flag_and_errors(imported, pretrained_ckpt, tmp_path, capsys):
    """--test_start sets the test part; one after the record's end is refused with one line, no run left."""
    from sca2lstm.evaluation.station import forecast_station

    df = forecast_station(pretrained_ckpt, imported, "iso-m3s", test_start="2016-01-01")
    assert str(df["date"].iloc[0].date()) == "2016-01-01" and df.attrs["periods"]["rule"] == "station"
    assert np.isfinite(df.attrs["metrics"]["model"]["nse"])
    out = tmp_path / "ft"
    rc = finetune_cli.main(["--target_basin", "iso-m3s", "--pretrained_model", str(pretrained_ckpt),
                            "--data_dir", str(imported), "--output_dir", str(out), "--test_start", "2030-01-01"])
    err = capsys.readouterr().err
    assert rc == 2 and "--test_start 2030-01-01 is after the end" in err and len(err.strip().splitlines()) == 1
    assert not any(out.rglob("*.pth"))
    rc = predict_cli.main(["--model", str(pretrained_ckpt), "--basin", "../etc", "--data_dir", str(imported)])
    err = capsys.readouterr().err
    assert rc == 2 and "invalid basin id '../etc'" in err
    rc = predict_cli.main(["--model", str(pretrained_ckpt), "--basin", "32006.0", "--data_dir", str(imported)])
    err = capsys.readouterr().err  # an id pasted from a spreadsheet that held it as a number
    assert rc == 2 and err.strip().endswith("; 32006.0 is the id 32006 written as a number with decimals (a "
                                            "spreadsheet's): give 32006, with its leading zeros if it has any"), err


@pytest.mark.slow
def test_camels_de_bench_quick(pretrained_ckpt, tmp_path, capsys):
    """bench/camels_de.py --quick imports the three German stations from their own files and scores four
    forecasts per station on the same test days."""
    import importlib.util

    from conftest import REPO
    de = REPO.parent / "shared" / "data" / "camels_de_sample"
    if not (de / "timeseries").is_dir():
        pytest.skip(f"the CAMELS-DE sample is not at {de}")
    spec = importlib.util.spec_from_file_location("camels_de_bench", REPO / "bench" / "camels_de.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    handlers = list(logging.getLogger("sca2lstm").handlers)
    assert bench.main(["--quick", "--model", str(pretrained_ckpt), "--out", str(tmp_path)]) == 0
    # called in-process, it takes its console handlers off again: left on a stream closed after this test, they
    # doubled or broke the log lines of every later test
    assert logging.getLogger("sca2lstm").handlers == handlers
    res = pd.read_csv(tmp_path / "results.csv")
    assert sorted(res["station"].unique()) == ["DE110000", "DE110010", "DE110020"]
    assert set(res["model"]) == {"zero-shot", "fine-tuned", "from scratch", "persistence"} and len(res) == 12
    assert res.groupby("station")["test_start"].nunique().eq(1).all() and res["nse"].notna().all()
    assert "fine-tuned beats persistence" in capsys.readouterr().out


def test_missing_value_code_needs_na_value(source, tmp_path, capsys):
    """-999 for a missing flow is refused as a negative flow, and read as missing with --na_value -999."""
    df = source.iloc[:900].copy()
    df["Q"] = df["Q"].fillna(-999.0)
    df.loc[df.index[20:25], "Q"] = -999.0
    f = write_csv(df, tmp_path / "codes.csv")
    argv = ["station", "import", str(f), "--id", "coded", "--out", str(tmp_path / "d"), "--map", MAP,
            "--discharge_unit", "m3/s"]
    rc, _, err = run(capsys, argv)
    assert rc == 1 and "--na_value" in err and not (tmp_path / "d").exists()
    rc, _, err = run(capsys, [*argv, "--na_value", "-999"])
    assert rc == 0, err
    ts = pd.read_csv(tmp_path / "d" / "timeseries" / "coded.csv")
    assert ts["discharge_vol"].isna().sum() == (df["Q"] == -999.0).sum() and (ts["discharge_vol"].dropna() >= 0).all()


@pytest.mark.parametrize("code", [9999.0, 2500.0])
def test_a_rain_value_no_storm_gives_is_refused_as_a_missing_value_code(code, source, tmp_path, capsys):
    """9999 (a logger's code) or 2500 mm in one row is refused, naming the value and --na_value; with the
    code named, the day is missing and the climate attributes come from the real rain."""
    df = source.iloc[:900].copy()
    df.loc[df.index[40], "N"] = code
    f = write_csv(df, tmp_path / "rain.csv")
    argv = ["station", "import", str(f), "--id", "rain", "--out", str(tmp_path / "d"), "--map", MAP,
            "--discharge_unit", "m3/s"]
    rc, _, err = run(capsys, argv)
    assert rc == 1 and f"{code:g}" in err and "--na_value" in err and not (tmp_path / "d").exists()
    assert ("looks like a missing-value code" in err) == (code == 9999.0)
    rc, _, err = run(capsys, [*argv, "--na_value", f"{code:g}"])
    assert rc == 0, err
    ts = pd.read_csv(tmp_path / "d" / "timeseries" / "rain.csv")
    assert np.isnan(ts["precipitation"].iloc[40]) and ts["precipitation"].max() < 1000


def test_a_flow_code_far_above_the_other_flows_is_refused_and_a_big_rivers_is_read(source, tmp_path, capsys):
    """9999 in the flows of a stream whose other flows stay below 1000 is a code: refused naming it and --na_value,
    nothing written; named, its day is missing. The same 9999 among floods of several thousand is a flow."""
    df = source.iloc[:900].copy()
    df.loc[df.index[[40, 70]], "Q"] = 9999.0
    f = write_csv(df, tmp_path / "flow.csv")
    argv = ["station", "import", str(f), "--id", "flow", "--out", str(tmp_path / "d"), "--map", MAP,
            "--discharge_unit", "m3/s"]
    rc, _, err = run(capsys, argv)
    assert rc == 1 and "2 value(s) like 9999 (first on 2010-02-10)" in err and "--na_value 9999 " in err, err
    assert not (tmp_path / "d").exists()
    rc, _, err = run(capsys, [*argv, "--na_value", "9999"])
    assert rc == 0, err
    ts = pd.read_csv(tmp_path / "d" / "timeseries" / "flow.csv")
    assert ts["discharge_vol"].iloc[[40, 70]].isna().all() and ts["discharge_vol"].max() < 1000
    big = df.copy()
    big["Q"] = big["Q"] * 1000.0 / big["Q"].max()   # a big river: floods up to 1000 m3/s, one of 9999
    big.loc[big.index[40], "Q"] = 9999.0
    rc, _, err = run(capsys, ["station", "import", str(write_csv(big, tmp_path / "big.csv")), "--id", "big", "--out",
                              str(tmp_path / "d"), "--map", MAP, "--discharge_unit", "m3/s"])
    assert rc == 0, err
    assert pd.read_csv(tmp_path / "d" / "timeseries" / "big.csv")["discharge_vol"].iloc[40] == 9999.0


def test_warning_levels_no_record_could_warn_on_are_refused_and_the_stored_ones_are_listed(source, tmp_path, capsys):
    """A flow level 10 times above the record's highest flow (levels in l/s) or below its lowest is refused,
    nothing written; levels the record can reach are listed in m3/s."""
    df = source.iloc[:900]
    f = write_csv(df, tmp_path / "levels.csv")
    q = df["Q"].dropna()
    argv = ["station", "import", str(f), "--id", "lv", "--out", str(tmp_path / "d"), "--map", MAP,
            "--discharge_unit", "m3/s", "--warning_levels"]
    rc, _, err = run(capsys, [*argv, f"alert={q.median():g},danger={1000 * q.max():g}"])
    assert rc == 1 and "danger=" in err and "1000 times the record's highest" in err and not (tmp_path / "d").exists()
    rc, _, err = run(capsys, [*argv, f"alert={0.5 * q.min():g}"])
    assert rc == 1 and "below every daily flow" in err and not (tmp_path / "d").exists()
    rc, out, err = run(capsys, [*argv, f"alert={q.quantile(0.9):g},danger={2 * q.max():g}"])
    assert rc == 0, err
    assert f"warning level alert: {q.quantile(0.9):.3g} m3/s" in out + err and "warning level danger" in out + err


def test_a_mapped_pet_column_feeds_the_models_pet_input(source, tmp_path, tiny_cfg):
    """A station's own PET (written as ``pet``) is the model's ``peti`` input, not a temperature formula."""
    from sca2lstm.data.dataset import load_basin

    df = source.iloc[:900].rename(columns={"N": "precipitation", "Q": "discharge", "T": "temperature"})
    df["pet"] = 2.5
    import_station(df, "with-pet", tmp_path / "st", {"gauge_lat": 51.0})
    rec = load_basin(tmp_path / "st", "with-pet", tiny_cfg, use_cache=False)
    col = tiny_cfg.data.dynamic_inputs.index("peti")
    assert np.allclose(rec.x[:, col], 2.5)


@pytest.mark.parametrize("code", [9999.0, 99.9])
def test_a_pet_value_no_evaporation_gives_is_refused_naming_na_value(code, source, tmp_path, capsys):
    """A code left in a PET column (9999, 99.9) was read as that many mm of evaporation; it is refused naming the
    value, its day and --na_value, nothing written, and with the code named the day is missing."""
    df = source.iloc[:900].copy()
    df["E"] = 2.5
    df.loc[df.index[40], "E"] = code
    f = tmp_path / "pet.csv"
    df.assign(Datum=df["date"].dt.strftime("%Y-%m-%d"))[["Datum", "N", "Q", "E"]].to_csv(f, index=False)
    argv = ["station", "import", str(f), "--id", "pet", "--out", str(tmp_path / "d"), "--map",
            "date=Datum,precipitation=N,discharge=Q,pet=E", "--discharge_unit", "m3/s"]
    rc, _, err = run(capsys, argv)
    assert rc == 1 and f"1 value(s) above 50 mm (first on 2010-02-10: {code:g})" in err and "--na_value" in err, err
    assert not (tmp_path / "d").exists()
    rc, _, err = run(capsys, [*argv, "--na_value", f"{code:g}"])
    assert rc == 0, err
    ts = pd.read_csv(tmp_path / "d" / "timeseries" / "pet.csv")
    assert np.isnan(ts["pet"].iloc[40]) and ts["pet"].max() == 2.5


def test_attribute_name_the_model_does_not_read_is_named(source, tmp_path, capsys):
    """A typo in --attr is stored as given (a user's own model may read it) but said, with the nearest name."""
    f = write_csv(source, tmp_path / "a.csv")
    rc, out, err = run(capsys, ["station", "import", str(f), "--id", "A1", "--map", MAP, "--discharge_unit", "m3/s",
                                "--out", str(tmp_path / "s"), "--attr", "elev_maen=300", "--attr", "elev_mean=310"])
    assert rc == 0
    said = out + err
    assert "--attr elev_maen: not an attribute the model reads (did you mean elev_mean?)" in said
    assert "--attr elev_mean:" not in said


def test_a_reimport_keeps_the_stored_warning_levels_only_where_they_still_fit_and_says_so(source, tmp_path, capsys):
    """Warning levels an import without --warning_levels keeps are named and checked as given ones are: levels
    far above the new record's flows (or water levels with no curve left to read them) are refused in one line,
    and the station's files stay as they were."""
    f = write_csv(source, tmp_path / "s.csv")
    data = tmp_path / "data"
    base = ["station", "import", "--id", "k1", "--out", str(data), "--map", MAP, "--discharge_unit", "m3/s",
            "--lat", "52.0"]
    top = float(source["Q"].max())
    assert run(capsys, [*base[:2], str(f), *base[2:], "--warning_levels", f"alert={0.8 * top:.4g}", "--quiet"])[0] == 0
    rc, out, err = run(capsys, [*base[:2], str(f), *base[2:], "--overwrite"])
    assert rc == 0, err
    assert f"kept from the earlier import: warning level alert: {0.8 * top:.3g} m3/s" in out
    before = {p.name: p.read_bytes() for p in data.rglob("*") if p.is_file()}
    small = write_csv(source, tmp_path / "small.csv", q_factor=0.01)      # the same river in another unit
    rc, _, err = run(capsys, [*base[:2], str(small), *base[2:], "--overwrite"])
    assert rc == 1 and len(err.strip().splitlines()) == 1
    assert "station k1: the stored warning level alert=" in err and "times the record's highest daily flow" in err
    assert "give --warning_levels anew" in err
    assert {p.name: p.read_bytes() for p in data.rglob("*") if p.is_file()} == before


def test_import_into_a_camels_gb_folder_says_so(source, tmp_path, capsys):
    out = tmp_path / "CAMELS_GB"
    (out / "timeseries").mkdir(parents=True)
    (out / "timeseries" / "CAMELS_GB_hydromet_timeseries_1001_19701001-20150930.csv").write_text("date\n")
    f = write_csv(source, tmp_path / "a.csv")
    rc, out_text, err = run(capsys, ["station", "import", str(f), "--id", "A1", "--map", MAP, "--discharge_unit",
                                     "m3/s", "--out", str(out)])
    assert rc == 0 and "is a CAMELS-GB dataset folder: the station is added to it" in out_text + err
    assert (out / "timeseries" / "A1.csv").is_file()


def test_overwriting_a_camels_gb_basin_of_the_folder_is_refused(source, tmp_path, capsys):
    out = tmp_path / "CAMELS_GB"
    (out / "timeseries").mkdir(parents=True)
    camels = out / "timeseries" / "CAMELS_GB_hydromet_timeseries_1001_19701001-20150930.csv"
    camels.write_text("date\n")
    f = write_csv(source, tmp_path / "a.csv")
    rc, _, err = run(capsys, ["station", "import", str(f), "--id", "1001", "--map", MAP, "--discharge_unit", "m3/s",
                              "--out", str(out), "--overwrite"])
    assert rc == 2 and "is a CAMELS-GB basin of" in err and camels.read_text() == "date\n"


def test_flags_typed_with_a_chinese_input_method_read_as_ascii(source, tmp_path, capsys):
    """Full-width ＝ ＋ ， 、 ： in --map, --precipitation_weights and --day_start give the same station as ASCII."""
    two = source.assign(N2=source["N"] * 2)
    f = tmp_path / "a.csv"
    two.rename(columns={"date": "Datum"}).to_csv(f, index=False)
    common = ["--discharge_unit", "m3/s", "--out", str(tmp_path / "s")]
    rc, _, err = run(capsys, ["station", "import", str(f), "--id", "ascii", "--map",
                              "date=Datum,precipitation=N+N2,discharge=Q", "--precipitation_weights", "0.75,0.25",
                              "--day_start", "08:00", *common])
    assert rc == 0, err
    rc, _, err = run(capsys, ["station", "import", str(f), "--id", "wide", "--map",
                              "date＝Datum、precipitation＝N＋N2，discharge＝Q", "--precipitation_weights", "0.75，0.25",
                              "--day_start", "08：00", *common])
    assert rc == 0, err
    ts = tmp_path / "s" / "timeseries"
    assert (ts / "wide.csv").read_bytes() == (ts / "ascii.csv").read_bytes()


def test_a_map_key_given_twice_is_refused_before_the_file_is_read(tmp_path, capsys):
    """`--map` follows the one NAME=VALUE syntax: a key given twice would silently pick one column."""
    rc, _, err = run(capsys, ["station", "import", str(tmp_path / "absent.csv"), "--id", "s1", "--map",
                              "date=Datum,precipitation=N,discharge=Q,discharge=Q2", "--discharge_unit", "m3/s",
                              "--out", str(tmp_path / "s")])
    assert rc == 2 and "--map: 'discharge' given twice" in err and not (tmp_path / "s").exists()
    rc, _, err = run(capsys, ["station", "import", str(tmp_path / "absent.csv"), "--id", "s1", "--map",
                              "date=Datum,precipitation", "--out", str(tmp_path / "s")])
    assert rc == 2 and "--map entry 'precipitation' is not KEY=COLUMN" in err


@pytest.mark.slow
def test_an_imported_station_follows_its_own_years_and_is_calibrated_on_its_fine_tuning_validation(
        source, pretrained_ckpt, tmp_path, capsys, caplog, monkeypatch):
    """A station whose record happens to cover the configured (CAMELS-GB) periods still gets its own test part
    (the last 20 % of its days), and the fine-tuned model's blend and calibration read the validation part of
    its fine-tuning, never a day it was fine-tuned on."""
    from sca2lstm.evaluation.context import BasinContext

    covering = source.assign(date=pd.date_range("1970-10-01", periods=len(source), freq="D"))
    f = write_csv(covering, tmp_path / "covering.csv")
    data = tmp_path / "data"
    rc, _, err = run(capsys, ["station", "import", str(f), "--id", "covering", "--out", str(data), "--map", MAP,
                              "--discharge_unit", "m3/s", "--lat", "52.1", "--quiet"])
    assert rc == 0, err
    ctx = BasinContext.resolve(pretrained_ckpt, data, "covering")
    observed = covering["date"][covering["Q"].notna()]
    assert ctx.periods.rule == "station"
    assert (observed >= pd.Timestamp(str(ctx.periods.test_start))).sum() == pytest.approx(0.2 * len(observed), abs=1)
    # A year observed after the import (the service appends days) joins the test part: the days the station is
    # fine-tuned, scaled and blended on stay those of the import, so a past forecast does not change.
    from sca2lstm.evaluation.context import clear_caches

    kept = (data / "timeseries" / "covering.csv").read_bytes()
    ts = pd.read_csv(data / "timeseries" / "covering.csv")
    year = ts.tail(365).assign(date=[str(d.date()) for d in pd.date_range(pd.Timestamp(ts["date"].iloc[-1])
                                                                          + pd.Timedelta(days=1), periods=365)])
    pd.concat([ts, year]).to_csv(data / "timeseries" / "covering.csv", index=False)
    clear_caches()
    grown = BasinContext.resolve(pretrained_ckpt, data, "covering")
    assert (grown.periods.fit_start, grown.periods.fit_end, grown.periods.test_start) == (
        ctx.periods.fit_start, ctx.periods.fit_end, ctx.periods.test_start)
    assert grown.periods.test_end == np.datetime64(year["date"].iloc[-1], "D") > ctx.periods.test_end
    assert grown.validation_days() == ctx.validation_days()
    (data / "timeseries" / "covering.csv").write_bytes(kept)
    clear_caches()
    out = tmp_path / "ft"
    rc = finetune_cli.main(["--target_basin", "covering", "--pretrained_model", str(pretrained_ckpt), "--epochs", "1",
                            "--data_dir", str(data), "--output_dir", str(out), "--quiet"])
    assert rc == 0
    ckpt_path = next(out.glob("basin_covering/*/best_model_basin_covering.pth"))
    split = json.loads((ckpt_path.parent / "config.json").read_text())["split"]
    tuned = BasinContext.resolve(ckpt_path, data, "covering")
    v0, v1 = tuned.validation_days()
    assert [str(tuned.record.dates[v0]), str(tuned.record.dates[v1 - 1])] == split["validation"]
    assert split["train"][1] < split["validation"][0]
    # A file of the layout written by hand (no station metadata) that starts late in the configured training
    # period keeps the configured periods; its fine-tuning validation starts after the configured val_start,
    # and the calibration must not reach back into the fine-tuning's training days.
    ts = pd.read_csv(data / "timeseries" / "covering.csv")
    ts[ts["date"] >= "1973-01-01"].to_csv(data / "timeseries" / "late.csv", index=False)
    assert BasinContext.resolve(pretrained_ckpt, data, "late").periods.rule == "configured"
    rc = finetune_cli.main(["--target_basin", "late", "--pretrained_model", str(pretrained_ckpt), "--epochs", "1",
                            "--data_dir", str(data), "--output_dir", str(out), "--quiet"])
    assert rc == 0
    ckpt_path = next(out.glob("basin_late/*/best_model_basin_late.pth"))
    split = json.loads((ckpt_path.parent / "config.json").read_text())["split"]
    assert split["validation"][0] > "1975-01-01"   # the configured val_start: the ratio split is later
    tuned = BasinContext.resolve(ckpt_path, data, "late")
    v0, v1 = tuned.validation_days()
    assert [str(tuned.record.dates[v0]), str(tuned.record.dates[v1 - 1])] == split["validation"]
    # New days appended (the record goes on) leave the fine-tuned flows as they were: no warning. The same
    # days with other flows (imported again with another unit or curve) are named.
    from sca2lstm.evaluation.context import clear_caches

    late = pd.read_csv(data / "timeseries" / "late.csv")
    more = late.tail(30).assign(date=[str(d.date()) for d in pd.date_range(pd.Timestamp(late["date"].iloc[-1])
                                                                          + pd.Timedelta(days=1), periods=30)])
    pd.concat([late, more]).to_csv(data / "timeseries" / "late.csv", index=False)
    clear_caches()
    monkeypatch.setattr(logging.getLogger("sca2lstm"), "propagate", True)  # the CLI runs above turned it off
    caplog.clear()
    BasinContext.resolve(ckpt_path, data, "late")
    assert "differ from those the model was fine-tuned on" not in caplog.text
    late.assign(discharge_vol=2 * late["discharge_vol"]).to_csv(data / "timeseries" / "late.csv", index=False)
    clear_caches()
    BasinContext.resolve(ckpt_path, data, "late")
    assert "basin late: the flows of" in caplog.text and "differ from those the model was fine-tuned on" in caplog.text


def test_a_station_imported_under_a_pretraining_basins_id_is_treated_as_the_new_river_it_is(
        source, pretrained_ckpt, tmp_path, capsys, caplog, monkeypatch):
    """The guide's examples say 32006; a user's own river imported as 32006 is not the 32006 the model was
    pretrained on (another folder): it gets its own discharge scale and blend, exactly as under an id of its
    own, and a warning once. Without the rule it ran on the other river's scale, silently."""
    from sca2lstm.checkpoint import load_model
    from sca2lstm.evaluation.context import BasinContext, clear_caches
    from sca2lstm.evaluation.operational import issue_forecast

    f = write_csv(source.assign(date=pd.date_range("1970-10-01", periods=len(source), freq="D")),
                  tmp_path / "river.csv", q_factor=5.0)
    data = tmp_path / "data"
    for sid in ("32006", "zhen-05"):
        rc, _, err = run(capsys, ["station", "import", str(f), "--id", sid, "--out", str(data), "--map", MAP,
                                  "--discharge_unit", "m3/s", "--lat", "52.1", "--lon", "-1.2", "--quiet"])
        assert rc == 0, err
    bundle = load_model(pretrained_ckpt)
    clear_caches()
    monkeypatch.setattr(logging.getLogger("sca2lstm"), "propagate", True)
    caplog.clear()
    same, own = (BasinContext.resolve(bundle, data, sid) for sid in ("32006", "zhen-05"))
    BasinContext.resolve(bundle, data, "32006")
    assert same.foreign_id and not same.in_checkpoint and not own.foreign_id
    assert same.scalers.basins["32006"] == own.scalers.basins["zhen-05"] != bundle[2].basins["32006"]
    assert not any("32006" in sp["basins"] for sp in same.trained_on)
    assert caplog.text.count("the model was pretrained on another basin 32006") == 1
    a, b = (issue_forecast(bundle, sid, data_dir=data, issue_date="1975-06-01", leads=3).table for sid in
            ("32006", "zhen-05"))
    np.testing.assert_allclose(a["median"], b["median"], rtol=1e-6)
    # the basin the model was pretrained on, in its own folder, is still that basin
    assert BasinContext.resolve(bundle, None, "32006").in_checkpoint


def test_a_stations_flood_frequency_rule_is_stored_at_import_and_used_by_its_forecasts(source, pretrained_ckpt,
                                                                                     tmp_path, capsys, monkeypatch):
    """China's SL 44: PE3 on calendar-year maxima. Given at import, it is stored with the station and every
    forecast of it fits its return-period levels so, unless --distribution says otherwise; bad values are
    one line."""
    import sca2lstm.evaluation.reforecast as reforecast_mod
    from sca2lstm.evaluation.context import BasinContext

    f = write_csv(source, tmp_path / "s.csv")
    data = tmp_path / "data"
    argv = ["station", "import", str(f), "--id", "sl44", "--out", str(data), "--map", MAP, "--discharge_unit", "m3/s",
            "--lat", "30.2", "--quiet"]
    rc, _, err = run(capsys, [*argv, "--water_year_start", "13"])
    assert rc == 2 and "water_year_start '13' must be a month 1..12" in err and not data.exists()
    assert run(capsys, [*argv, "--distribution", "pe3", "--water_year_start", "1"])[0] == 0
    meta = json.loads((data / "meta" / "sl44.json").read_text())
    assert meta["flood_frequency"] == {"distribution": "pe3", "water_year_start": 1}
    seen = []
    real = reforecast_mod.station_levels
    monkeypatch.setattr(reforecast_mod, "station_levels",
                        lambda *a, **k: seen.append((k.get("dist"), k.get("water_year_start"))) or real(*a, **k))
    ctx = BasinContext.resolve(pretrained_ckpt, data, "sl44")
    reforecast_mod.resolve_warnings(ctx, {})
    reforecast_mod.resolve_warnings(ctx, {}, dist="gev")
    assert seen == [("pe3", 1), ("gev", 1)]
    # a re-import that does not say keeps the station's rule
    assert run(capsys, [*argv, "--overwrite"])[0] == 0
    assert json.loads((data / "meta" / "sl44.json").read_text())["flood_frequency"]["distribution"] == "pe3"


def test_a_flow_stuck_at_one_value_for_a_month_is_warned_about_and_kept_but_zero_flow_is_not(source, tmp_path,
                                                                                              capsys):
    """45 days at exactly 12.5 m3/s (a stuck logger, a filled gap) warn, naming the column, first day, length and
    value, and are counted in the summary; the flows are kept. 29 days at one value and 60 dry days do not warn."""
    df = source.iloc[:900].copy()
    df.loc[df.index[100:145], "Q"] = 12.5      # 2010-04-11, 45 days
    df.loc[df.index[400:429], "Q"] = 7.25      # 29 days: below the threshold
    df.loc[df.index[600:660], "Q"] = 0.0       # an ephemeral stream's dry spell
    f = write_csv(df, tmp_path / "flat.csv")
    rc, out, err = run(capsys, ["station", "import", str(f), "--id", "flat", "--out", str(tmp_path / "d"),
                                "--map", MAP, "--discharge_unit", "m3/s"])
    assert rc == 0, err
    said = [ln for ln in (out + err).splitlines() if "stays at exactly" in ln]
    assert len(said) == 1, out + err
    assert "column 'Q' (discharge, m3/s) stays at exactly 12.5 for 45 days from 2010-04-11:" in said[0]
    assert "45 days in runs of 30 days or more at one same non-zero value (1 run)" in out + err
    ts = pd.read_csv(tmp_path / "d" / "timeseries" / "flat.csv")
    assert (ts["discharge_vol"].iloc[100:145] == 12.5).all()   # kept as written


def test_flat_discharge_runs_are_broken_by_a_missing_day_or_a_change_of_value():
    from sca2lstm.data.station import flat_discharge_runs

    days = pd.date_range("2001-01-01", periods=100, freq="D")
    v = np.arange(100, dtype=float)
    v[10:50] = 3.0
    v[60:100] = 3.0
    v[80] = np.nan                 # splits 60..99 into 20 + 19 days
    assert flat_discharge_runs(pd.Series(v, index=days)) == [(days[10].date(), 40, 3.0)]
    assert flat_discharge_runs(pd.Series(v, index=days), min_days=20) == [(days[10].date(), 40, 3.0),
                                                                          (days[60].date(), 20, 3.0)]
    assert flat_discharge_runs(pd.Series(np.zeros(100), index=days)) == []
