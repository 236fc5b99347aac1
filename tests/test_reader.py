"""The generic data layout (sca2lstm.data.reader): both file namings, gzip, string ids, missing columns,
attributes from any CSV in attributes/, discharge in m3/s from discharge_spec and the area.

Every fixture is written here with pandas into tmp_path: a few days per basin, values chosen by hand.
"""

from __future__ import annotations

import gzip
import re

import numpy as np
import pandas as pd
import pytest

from sca2lstm.data import reader
from sca2lstm.errors import DataError

DAYS = pd.date_range("2000-01-01", periods=6, freq="D")


def _frame(**cols) -> pd.DataFrame:
    df = pd.DataFrame({"date": DAYS.strftime("%Y-%m-%d")})
    for k, v in cols.items():
        df[k] = v
    return df


def _write(path, df: pd.DataFrame) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = df.to_csv(index=False).encode()
    path.write_bytes(gzip.compress(text) if path.name.endswith(".gz") else text)


@pytest.fixture
def generic(tmp_path):
    """Four basins in every naming and compression, two attribute files (one non-CAMELS name)."""
    d = tmp_path / "data"
    ts = d / "timeseries"
    # CAMELS-GB naming, gzipped, the large sample's columns: no discharge_vol, no PET.
    _write(ts / "CAMELS_GB_hydromet_timeseries_32006_20000101-20000106.csv.gz",
           _frame(precipitation=[0, 1, 2, 3, 4, 5], temperature=[5.0] * 6,
                  discharge_spec=[0.864, 1.728, np.nan, 0.0, 8.64, 0.864]))
    # Generic naming, gzipped, letters and a dash in the id, discharge_vol present, no temperature.
    _write(ts / "my-gauge.csv.gz", _frame(precipitation=[1.0] * 6, discharge_vol=[1, 2, 3, 4, 5, 6]))
    # Generic naming, plain CSV, an underscore in the id.
    _write(ts / "DE_110000.csv", _frame(precipitation=[2.0] * 6, peti=[1.0] * 6, discharge_vol=[2.0] * 6))
    # CAMELS-GB naming, plain, only specific discharge and no area anywhere: m3/s cannot be derived.
    _write(ts / "CAMELS_GB_hydromet_timeseries_77777_20000101-20000106.csv",
           _frame(precipitation=[0.0] * 6, discharge_spec=[1.0] * 6))
    (ts / "README.md").write_text("not a timeseries file\n")
    att = d / "attributes"
    att.mkdir()
    pd.DataFrame({"gauge_id": ["32006", "10002"], "area": [100.0, 50.0], "gauge_lat": [52.0, 57.0]}).to_csv(
        att / "CAMELS_GB_topographic_attributes.csv", index=False)
    # A user's own file: one more basin, one more attribute; its area for 32006 must not override.
    pd.DataFrame({"gauge_id": ["my-gauge", "32006"], "area": [12.5, 999.0], "elev_mean": [300.0, np.nan]}).to_csv(
        att / "stations.csv", index=False)
    return d


def test_both_namings_and_gzip_are_listed_with_string_ids(generic):
    assert reader.list_basins(generic) == ["32006", "77777", "DE_110000", "my-gauge"]
    assert reader.timeseries_file(generic, "my-gauge").name == "my-gauge.csv.gz"
    assert reader.timeseries_file(generic, "32006").name.endswith("_32006_20000101-20000106.csv.gz")


def test_gzipped_file_reads_values_and_missing_columns_are_absent(generic):
    df = reader.read_timeseries(generic, "my-gauge")
    assert list(df.index) == list(DAYS)
    np.testing.assert_array_equal(df["discharge_vol"], [1, 2, 3, 4, 5, 6])
    assert "temperature" not in df.columns and "pet" not in df.columns


def test_discharge_vol_from_specific_discharge_and_area(generic):
    # 0.864 mm/d over 100 km2 = 0.864e-3 m * 100e6 m2 / 86400 s = 1.0 m3/s; 8.64 mm/d -> 10 m3/s.
    # The area is CAMELS_GB_topographic_attributes.csv's 100 (the first file in name order that has
    # one), not stations.csv's 999.
    df = reader.read_timeseries(generic, "32006")
    np.testing.assert_allclose(df["discharge_vol"], [1.0, 2.0, np.nan, 0.0, 10.0, 1.0])
    np.testing.assert_allclose(df["discharge_spec"], [0.864, 1.728, np.nan, 0.0, 8.64, 0.864])


def test_no_discharge_in_m3s_is_an_error_naming_the_basin(generic):
    with pytest.raises(DataError) as e:
        reader.read_timeseries(generic, "77777")
    msg = str(e.value)
    assert "basin 77777" in msg and "discharge_vol" in msg and "area" in msg and "\n" not in msg
    _write(generic / "timeseries" / "nothing.csv", _frame(precipitation=[0.0] * 6))
    with pytest.raises(DataError, match=r"basin nothing: .* no discharge_spec either"):
        reader.read_timeseries(generic, "nothing")


def test_two_files_for_one_id_name_both(generic):
    _write(generic / "timeseries" / "32006.csv", _frame(precipitation=[0.0] * 6, discharge_vol=[1.0] * 6))
    for call in (lambda: reader.timeseries_file(generic, "32006"), lambda: reader.read_timeseries(generic, "32006")):
        with pytest.raises(DataError) as e:
            call()
        msg = str(e.value)
        assert "32006.csv" in msg and "CAMELS_GB_hydromet_timeseries_32006_20000101-20000106.csv.gz" in msg
    # Listed (a run over the folder leaves it out with that message); the other basins stay readable.
    assert "32006" in reader.list_basins(generic)
    assert reader.read_timeseries(generic, "my-gauge")["discharge_vol"].iloc[0] == 1.0


def test_a_damaged_gzip_file_is_named(generic):
    path = generic / "timeseries" / "my-gauge.csv.gz"
    path.write_bytes(path.read_bytes()[:20])
    with pytest.raises(DataError, match="my-gauge.csv.gz is not a readable gzip file"):
        reader.read_timeseries(generic, "my-gauge")


@pytest.mark.parametrize("row, fields", [("2000-01-04,1.0", 2),            # fields lost: read as NaN before
                                          ("2000-01-04,1.0,1.0,2.0,7", 5)])  # a field too many
def test_a_ragged_row_names_the_file_its_line_and_the_count_expected(generic, row, fields):
    """A row with fewer or more fields than the header is refused naming the file, the line and both counts;
    a short row is not read as missing values, and a blank line neither counts nor shifts the line number."""
    path = generic / "timeseries" / "DE_110000.csv"
    lines = path.read_text().splitlines()
    lines[4] = row  # the file's line 5 (header, 3 days), after a blank line that the count skips
    path.write_text("\n".join(lines[:2] + [""] + lines[2:]) + "\n")
    with pytest.raises(DataError) as e:
        reader.read_timeseries(generic, "DE_110000")
    msg = str(e.value)
    assert msg.startswith(f"{path}: line 6 has {fields} fields, expected 4 as in the header "
                          "(date, precipitation, peti, discharge_vol)"), msg
    assert "\n" not in msg


def test_a_header_ending_in_a_separator_reads_rows_without_it(generic):
    """A comma ending only the header line is an empty name that rows need no field for: not ragged."""
    path = generic / "timeseries" / "DE_110000.csv"
    lines = path.read_text().splitlines()
    path.write_text("\n".join([lines[0] + ","] + lines[1:]) + "\n")
    assert reader.read_timeseries(generic, "DE_110000")["discharge_vol"].tolist() == [2.0] * 6


@pytest.mark.parametrize("where", ["timeseries/DE_110000.csv", "attributes/stations.csv"])
def test_a_workbook_or_binary_file_under_a_csv_name_is_named_as_such(generic, where, tmp_path):
    """A sheet saved as .xlsx but named .csv, or other binary data, is named for what it is: not a column of
    noise missing gauge_id, a tokenizing error, nor advice to give an --encoding the commands do not have."""
    path = generic / where
    book = tmp_path / "book.xlsx"
    pd.read_csv(path).to_excel(book, index=False)
    path.write_bytes(book.read_bytes())

    def read():
        reader.read_timeseries(generic, "DE_110000")
        reader.read_attributes(generic, ["DE_110000"], ["area"])

    with pytest.raises(DataError, match=rf"^{re.escape(str(path))} is an Excel workbook \(\.xlsx\) under a CSV name"):
        read()
    path.write_bytes(b"PAR1" + bytes(range(256)) * 4)
    with pytest.raises(DataError, match=rf"^{re.escape(str(path))} is not a text file \(it holds binary data\)"):
        read()


def test_a_fill_value_as_discharge_becomes_missing_and_a_great_flood_stays(generic, caplog):
    """1e30 (a download's fill value) as discharge is not a flow: read as one it made the basin's discharge scaling
    overflow to inf and every forecast of the basin NaN. The largest flows of real rivers stay as they are."""
    _write(generic / "timeseries" / "my-gauge.csv.gz",
           _frame(precipitation=[1.0] * 6, discharge_vol=[1.0, 1e30, 3.0, 2.5e5, 9.99e36, 6.0]))
    _write(generic / "timeseries" / "CAMELS_GB_hydromet_timeseries_32006_20000101-20000106.csv.gz",
           _frame(precipitation=[0.0] * 6, discharge_spec=[0.864, 1e30, 1500.0, 0.0, 8.64, 0.864]))
    with caplog.at_level("WARNING", logger="sca2lstm"):
        q = reader.read_timeseries(generic, "my-gauge")["discharge_vol"]
        spec = reader.read_timeseries(generic, "32006")["discharge_spec"]
    assert q.isna().tolist() == [False, True, False, False, True, False] and q.iloc[3] == 2.5e5
    assert spec.isna().tolist() == [False, True, False, False, False, False] and spec.iloc[2] == 1500.0
    assert "basin my-gauge: 2 physically impossible values set to missing (discharge_vol: 2)" in caplog.text
    assert "basin 32006: 1 physically impossible values set to missing (discharge_spec: 1)" in caplog.text


def test_hourly_stamps_in_a_daily_file_are_named_as_a_sub_daily_record(generic):
    """Rows at 00:00 and 01:00 of one day are not 'a duplicate date': the message shows both stamps and their rows
    and points to the import that makes days of them; a true duplicate names its rows."""
    hours = pd.date_range("2000-01-01", periods=6, freq="h").strftime("%Y-%m-%d %H:%M")
    path = generic / "timeseries" / "DE_110000.csv"
    pd.DataFrame({"date": hours, "precipitation": 1.0, "discharge_vol": 2.0}).to_csv(path, index=False)
    with pytest.raises(DataError) as e:
        reader.read_timeseries(generic, "DE_110000")
    assert str(e.value) == (f"{path}: several rows per day ('2000-01-01 00:00' and '2000-01-01 01:00', rows 2 and 3): "
                            "an hourly or sub-daily record? the layout takes one row per day; `sca2lstm station "
                            "import` makes days of it")
    days = list(DAYS.strftime("%Y-%m-%d"))
    pd.DataFrame({"date": days[:4] + days[3:], "precipitation": 1.0, "discharge_vol": 2.0}).to_csv(path, index=False)
    with pytest.raises(DataError, match=r"DE_110000.csv: duplicate date 2000-01-04 \(rows 5 and 6\); expected one row"):
        reader.read_timeseries(generic, "DE_110000")


@pytest.mark.parametrize("where, decimal", [("timeseries/DE_110000.csv", "."), ("timeseries/DE_110000.csv", ","),
                                            ("attributes/stations.csv", ".")])
def test_a_semicolon_separated_file_is_told_to_be_saved_with_commas(generic, where, decimal):
    """A spreadsheet's export with ';' (and decimal commas) reads as one column: the message says the file's
    separator and the layout's, not only a missing column or a field count against a header of one name."""
    path = generic / where
    path.write_text(pd.read_csv(path).to_csv(index=False, sep=";", decimal=decimal))
    with pytest.raises(DataError) as e:
        reader.read_timeseries(generic, "DE_110000")
        reader.read_attributes(generic, ["DE_110000"], ["area"])
    msg = str(e.value)
    assert msg.startswith(f"{path}: ") and "\n" not in msg, msg
    assert msg.endswith(", one column: its fields are separated by ';', and the data layout's files by ','; save it "
                        "as CSV with commas"), msg


def test_a_json_file_under_a_csv_name_is_named_as_json(generic):
    """Attributes exported as JSON but named .csv were 'missing column gauge_id; found columns ['{"gauge_id": ...']'."""
    path = generic / "attributes" / "stations.csv"
    path.write_text(pd.read_csv(path).to_json(orient="records"))
    with pytest.raises(DataError, match=rf"^{re.escape(str(path))} is JSON, not CSV; expected a CSV with a header row"):
        reader.read_attributes(generic, ["my-gauge"], ["area"])


def test_attributes_merge_every_csv_and_absent_values_are_nan(generic):
    att = reader.read_attributes(generic, ["32006", "my-gauge", "DE_110000"], ["area", "elev_mean", "gauge_lat"])
    assert att.loc["32006", "area"] == 100.0 and att.loc["my-gauge", "area"] == 12.5
    assert att.loc["my-gauge", "elev_mean"] == 300.0
    assert np.isnan(att.loc["32006", "elev_mean"])      # the column exists, this basin has no value
    assert np.isnan(att.loc["my-gauge", "gauge_lat"])   # the basin is not in that file
    assert att.loc["DE_110000"].isna().all()           # a basin in no file at all
    with pytest.raises(DataError, match=r"\['no_such'\] are not in any attribute file"):
        reader.read_attributes(generic, ["32006"], ["area", "no_such"])
    assert reader.basin_attribute(generic, "32006", "gauge_lat") == 52.0
    assert np.isnan(reader.basin_attribute(generic, "my-gauge", "gauge_lat"))


def test_a_folder_without_attributes_reads_all_masked(generic, caplog):
    for f in (generic / "attributes").iterdir():
        f.unlink()
    (generic / "attributes").rmdir()
    with caplog.at_level("WARNING", logger="sca2lstm"):
        att = reader.read_attributes(generic, ["my-gauge"], ["area", "elev_mean"])
    assert att.shape == (1, 2) and att.isna().all().all()
    assert sum("no attribute files" in r.getMessage() for r in caplog.records) == 1
    # discharge_vol given: readable without any attribute.
    assert reader.read_timeseries(generic, "DE_110000")["discharge_vol"].iloc[0] == 2.0


def test_official_top_level_attribute_files_are_read(generic):
    (generic / "attributes" / "CAMELS_GB_topographic_attributes.csv").rename(
        generic / "CAMELS_GB_topographic_attributes.csv")
    att = reader.read_attributes(generic, ["32006", "my-gauge"], ["area", "gauge_lat"])
    # stations.csv (attributes/) comes first now: its 999 for 32006 wins.
    assert att.loc["32006", "area"] == 999.0 and att.loc["32006", "gauge_lat"] == 52.0
    assert att.loc["my-gauge", "area"] == 12.5


def test_an_id_with_other_leading_zeros_in_the_attributes_is_named_not_silently_masked(generic, caplog):
    """The timeseries file 01234.csv and a gauge_id 1234 (a spreadsheet dropped the zero) are two basins: the
    attributes stay masked, and one warning names both spellings."""
    _write(generic / "timeseries" / "01234.csv", _frame(precipitation=[1.0] * 6, discharge_vol=[1.0] * 6))
    pd.DataFrame({"gauge_id": ["1234"], "area": [7.0]}).to_csv(generic / "attributes" / "more.csv", index=False)
    with caplog.at_level("WARNING", logger="sca2lstm"):
        att = reader.read_attributes(generic, ["01234", "my-gauge"], ["area"])
    assert np.isnan(att.loc["01234", "area"]) and att.loc["my-gauge", "area"] == 12.5
    assert ("basin 01234 has no row in the attribute files, which have gauge_id '1234': ids are text and leading "
            "zeros count") in caplog.text
    assert "my-gauge" not in caplog.text


def test_ids_a_spreadsheet_saved_as_numbers_with_decimals_find_their_basins(generic):
    """An attribute file saved from a spreadsheet whose id column was numbers writes 32006.0 for 32006 (and 1234.0
    for a 01234 whose zero it dropped): 32006 had no row, and every attribute of it, its area and gauge position
    too, was masked without a word. A basin id holds no '.', so 32006.0 is that id; the dropped zero still warns."""
    pd.DataFrame({"gauge_id": [32006.0, 10002.0], "area": [100.0, 50.0], "gauge_lat": [52.0, 57.0]}).to_csv(
        generic / "attributes" / "CAMELS_GB_topographic_attributes.csv", index=False)
    (generic / "attributes" / "stations.csv").unlink()
    assert "32006.0," in (generic / "attributes" / "CAMELS_GB_topographic_attributes.csv").read_text()
    att = reader.read_attributes(generic, ["32006", "10002"], ["area", "gauge_lat"])
    assert att.loc["32006"].tolist() == [100.0, 52.0] and att.loc["10002"].tolist() == [50.0, 57.0]
    assert reader.read_timeseries(generic, "32006")["discharge_vol"].iloc[0] == pytest.approx(1.0)  # 0.864 mm/d
    pd.DataFrame({"gauge_id": ["1234.0", "7.50"], "area": [7.0, 3.0]}).to_csv(generic / "attributes" / "more.csv",
                                                                          index=False)
    _write(generic / "timeseries" / "01234.csv", _frame(precipitation=[1.0] * 6, discharge_spec=[1.0] * 6))
    with pytest.raises(DataError, match=r"no row for it, but one for gauge_id '1234'"):
        reader.read_timeseries(generic, "01234")
    assert "7.50" in reader.attribute_table(generic).index  # not a whole number: left as written


def test_discharge_in_mm_without_an_area_names_an_attribute_row_with_other_leading_zeros(generic):
    """The large sample's files have discharge only in mm/d: a file named 032006 whose attribute row is 32006 cannot
    be converted to m3/s, and the message says why (the row's id), not only that no area was found."""
    _write(generic / "timeseries" / "032006.csv", _frame(precipitation=[1.0] * 6, discharge_spec=[1.0] * 6))
    with pytest.raises(DataError, match=r"basin 032006: 032006.csv has no column 'discharge_vol' .* no positive 'area' "
                                        r"attribute \(km2\) \(the attribute files have no row for it, but one for "
                                        r"gauge_id '32006': ids are text and leading zeros count"):
        reader.read_timeseries(generic, "032006")
    with pytest.raises(DataError, match=r"'area' attribute \(km2\) \(the attribute files have no row for it\); found"):
        reader.read_timeseries(generic, "77777")


def test_gzipped_attribute_files_are_read_like_gzipped_timeseries(generic):
    """attributes/*.csv.gz (a folder gzipped whole, as the large sample's timeseries are) was ignored: every
    attribute masked, and discharge in mm/d not convertible for want of an area."""
    for p in (generic / "attributes").glob("*.csv"):
        _write(p.with_name(p.name + ".gz"), pd.read_csv(p, dtype={"gauge_id": str}))
        p.unlink()
    att = reader.read_attributes(generic, ["32006", "my-gauge"], ["area", "elev_mean"])
    assert att.loc["32006", "area"] == 100.0 and att.loc["my-gauge", "elev_mean"] == 300.0
    assert reader.read_timeseries(generic, "32006")["discharge_vol"].iloc[0] == pytest.approx(1.0)


def test_another_datasets_file_naming_points_to_station_import(tmp_path):
    """A folder of another dataset's files (CAMELS-DE naming) asked for by the station's own id."""
    ts = tmp_path / "timeseries"
    ts.mkdir()
    (ts / "CAMELS_DE_hydromet_timeseries_DE110000.csv").write_text("date,precipitation\n2000-01-01,1\n")
    with pytest.raises(DataError, match=r"unknown basin 'DE110000': its file in .* is named "
                                        r"CAMELS_DE_hydromet_timeseries_DE110000.csv, .*`sca2lstm station import`"):
        reader.timeseries_file(tmp_path, "DE110000")
    with pytest.raises(DataError, match=r"unknown basin 'XX1': no timeseries file"):
        reader.timeseries_file(tmp_path, "XX1")


@pytest.mark.parametrize("typed, meant", [("32007", "did you mean 32006 or 32008 or 32003?"),   # a digit off
                                          ("3200", "did you mean 32003 or 32006 or 32008?"),  # one left out
                                          ("320066", "did you mean 32006 or 32008"),  # one doubled
                                          ("99999", None)])
def test_an_unknown_basin_names_the_ids_it_is_close_to(tmp_path, typed, meant):
    """Among many basins, a mistyped id is answered with the ones meant (same start first), not only with the
    first ids of the folder; an id inside another (3200 in 32003) is a typo, not another dataset's naming."""
    ts = tmp_path / "timeseries"
    ts.mkdir()
    for b in ["32003", "32006", "32008", "83007", "53007", *[str(10000 + i) for i in range(20)]]:
        (ts / f"{b}.csv").write_text("date,precipitation\n2000-01-01,1\n")
    with pytest.raises(DataError) as e:
        reader.timeseries_file(tmp_path, typed)
    msg = str(e.value)
    assert msg.startswith(f"unknown basin '{typed}': no timeseries file in {ts}") and "(25 in all)" in msg
    assert (meant in msg) if meant else "did you mean" not in msg
