"""The file entry (sca2lstm.data.tables): encodings, spreadsheets, title rows, header matching, dates."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from sca2lstm.data import tables
from sca2lstm.errors import DataError, UsageError

HEADER = "日期,降雨量(mm),气温(℃),流量(m3/s)"
ROWS = ["2020-01-01,0.5,3.2,12.1", "2020-01-02,0,4.1,11.0"]


@pytest.mark.parametrize("codec,label", [("gbk", "GB18030 (GBK)"), ("gb18030", "GB18030 (GBK)"),
                                         ("utf-8", "UTF-8"), ("utf-8-sig", "UTF-8 with BOM"),
                                         ("utf-16", "UTF-16"), ("utf-16-le", "UTF-16 LE")])
def test_chinese_headers_decode_in_every_encoding_excel_saves(codec, label, tmp_path):
    f = tmp_path / "s.csv"
    f.write_bytes("\n".join([HEADER, *ROWS]).encode(codec) + b"")
    t = tables.read_table(f)
    assert list(t.frame.columns) == HEADER.split(",")
    assert t.frame.iloc[1].tolist() == ROWS[1].split(",")
    assert tables.encoding_label(t.encoding) == label and t.encoding_detected
    assert label in t.describe() and "detected" in t.describe()


@pytest.mark.parametrize("codec", ["utf-16-le", "utf-16-be"])
def test_ascii_utf16_without_a_mark_is_not_read_as_utf8(codec, tmp_path):
    f = tmp_path / "s.csv"
    f.write_bytes("date,q\n2020-01-01,1.5\n".encode(codec))
    t = tables.read_table(f)
    assert list(t.frame.columns) == ["date", "q"] and t.frame["q"].tolist() == ["1.5"]


def test_latin1_headers_and_a_given_encoding(tmp_path):
    f = tmp_path / "s.csv"
    f.write_bytes("Datum;Abfluss m³/s;Temperatur °C\n01.02.2020;1,5;3\n".encode("latin-1"))
    t = tables.read_table(f, sep=";")
    assert list(t.frame.columns) == ["Datum", "Abfluss m³/s", "Temperatur °C"]
    t = tables.read_table(f, sep=";", encoding="latin-1")
    assert not t.encoding_detected and "given" in t.describe()


def test_gbk_text_behind_a_utf8_mark_reads_as_gbk_detected_or_given(tmp_path):
    """A UTF-8 byte-order mark in front of GBK text (a tool that writes the mark whatever it saves) was read as
    Windows-1252, every Chinese header garbled; given --encoding gbk, the mark read as 锘 in the first name."""
    f = tmp_path / "s.csv"
    f.write_bytes(b"\xef\xbb\xbf" + "\n".join([HEADER, *ROWS]).encode("gbk"))
    for given in (None, "gbk"):
        t = tables.read_table(f, encoding=given)
        assert list(t.frame.columns) == HEADER.split(","), given
        assert t.frame.iloc[1].tolist() == ROWS[1].split(",")
    assert tables.encoding_label(tables.read_table(f).encoding) == "GB18030 (GBK)"


@pytest.mark.parametrize("text,codec,read_as", [
    ("date,水位\n2020-01-01,1.5\n", "gbk", "gb18030"),          # 水位 is CB AE CE BB: valid UTF-8, ˮλ
    ("file: 站.csv\nid: s1\n", "gbk", "gb18030"),               # 站 is D5 BE: valid UTF-8, the Armenian վ
    ("水位,Q\n0.1,0\n", "gbk", "gb18030"),
    ("Дата,Расход\n2020-01-01,1.5\n", "utf-8", "utf-8"),        # the languages two-byte UTF-8 is written in
    ("Уровень воды в реке,Q м3/с\n", "utf-8", "utf-8"),
    ("Ημερομηνία,μS/cm\n", "utf-8", "utf-8"),
    ("תאריך,ספיקה\n", "utf-8", "utf-8"),
    ("Datum,Abfluss m³/s,Łódź,°C\n", "utf-8", "utf-8"),
])
def test_gbk_that_happens_to_be_valid_utf8_is_read_as_gbk(text, codec, read_as, tmp_path):
    """A short GBK text whose every character forms a valid two-byte UTF-8 sequence (a spec naming 站.csv, a rating
    table headed 水位) was read as UTF-8, giving letters of no language (վ.csv, ˮλ); it is read as GBK, while a
    word of Cyrillic, Greek or Hebrew, or accented Latin, stays UTF-8."""
    text_read, used, detected = tables.decode(text.encode(codec))
    assert (text_read, used, detected) == (text, read_as, True)


def test_unknown_or_wrong_encoding_is_one_line(tmp_path):
    f = tmp_path / "s.csv"
    f.write_bytes("\n".join([HEADER, *ROWS]).encode("gbk"))
    with pytest.raises(UsageError, match="--encoding 'klingon' is not a known encoding"):
        tables.read_table(f, encoding="klingon")
    with pytest.raises(UsageError, match="not a text encoding"):
        tables.read_table(f, encoding="base64")
    with pytest.raises(DataError, match=r"is not UTF-8 text \(byte 0xc8 at offset 0"):
        tables.read_table(f, encoding="utf-8")


def test_headers_match_as_the_user_wrote_them():
    cols = ["日期 ", "流量（m³/s）", " 水位  (m)", "Rain"]
    got = tables.match_columns(cols, {"date": "日期", "q": "流量(m3/s)", "h": "水位 (m)", "p": "rain"})
    assert got == {"date": "日期 ", "q": "流量（m³/s）", "h": " 水位  (m)", "p": "Rain"}
    with pytest.raises(DataError, match=r"mapped column\(s\) t=气温 not in the file; its columns are"):
        tables.match_columns(cols, {"t": "气温"})


def test_title_rows_are_found_or_skipped(tmp_path):
    f = tmp_path / "s.csv"
    f.write_bytes(("某某站逐日水文资料\n单位：mm\n" + "\n".join([HEADER, *ROWS])).encode("gbk"))
    t = tables.read_table(f, header_names=["日期", "流量(m3/s)"])
    assert t.header_row == 2 and t.first_data_row == 4 and list(t.frame.columns)[0] == "日期"
    assert tables.read_table(f).header_row == 2  # a title row holds one cell
    assert tables.read_table(f, skiprows=2).frame.shape == (2, 4)


def _book(path, rows_by_sheet):
    import openpyxl

    wb = openpyxl.Workbook()
    wb.remove(wb.active)
    for name, rows in rows_by_sheet.items():
        ws = wb.create_sheet(name)
        for r in rows:
            ws.append(r)
    wb.save(path)
    return path


def test_xlsx_sheets_date_cells_serials_and_a_merged_title(tmp_path):
    import openpyxl

    rows = [["某站 2020 年逐日资料", None, None], ["日期", "雨量", "流量"],
            [dt.datetime(2020, 1, 1), 0.5, 12], [dt.datetime(2020, 1, 2, 0, 0, 0, 999), 0, 11.25]]
    f = _book(tmp_path / "b.xlsx", {"说明": [["readme"]], "逐日": rows, "serial": [["date", "q"], [43831, 1], [43832.5, 2]]})
    wb = openpyxl.load_workbook(f)
    wb["逐日"].merge_cells("A1:C1")
    wb.save(f)
    t = tables.read_table(f, sheet="逐日", header_names=["日期", "流量"])
    assert t.kind == "xlsx" and t.sheet == "逐日" and t.header_row == 1
    assert t.frame["日期"].tolist() == ["2020-01-01 00:00:00", "2020-01-02 00:00:00"]
    assert t.frame["流量"].tolist() == ["12", "11.25"]
    d = tables.parse_dates(t.frame["日期"])
    assert list(d) == [pd.Timestamp("2020-01-01"), pd.Timestamp("2020-01-02")]
    s = tables.read_table(f, sheet="3")
    assert s.sheet == "serial"
    got = tables.parse_dates(s.frame["date"], excel_serial=True, epoch=s.excel_epoch)
    assert list(got) == [pd.Timestamp("2020-01-01"), pd.Timestamp("2020-01-02 12:00")]
    # date cells with some days typed in as serial numbers (43833 is 2020-01-03), as sheets grow by hand
    mixed = _book(tmp_path / "m.xlsx", {"d": [["date", "q"], [dt.datetime(2020, 1, 1), 1], [dt.datetime(2020, 1, 2), 2],
                                              [43833, 3], [dt.datetime(2020, 1, 4), 4]]})
    m = tables.read_table(mixed)
    got = tables.parse_dates(m.frame["date"], excel_serial=True, epoch=m.excel_epoch)
    assert list(got) == list(pd.date_range("2020-01-01", periods=4, freq="D"))
    with pytest.raises(UsageError, match=r"--sheet 'Sheet9' is not in b.xlsx; its sheets \(number and name\): "
                                         r"1 '说明', 2 '逐日', 3 'serial'"):
        tables.read_table(f, sheet="Sheet9")
    with pytest.raises(UsageError, match="--sheet '4'"):
        tables.read_table(f, sheet=4)


@pytest.mark.parametrize("values,kw,expected", [
    (["2020-06-01 08:00", "2020-06-01 9:00"], {}, ["2020-06-01 08:00", "2020-06-01 09:00"]),
    (["2020/6/1", "2020/6/2"], {}, ["2020-06-01", "2020-06-02"]),
    (["2020年6月1日 8:00", "２０２０年6月1日 9:30"], {}, ["2020-06-01 08:00", "2020-06-01 09:30"]),
    (["13/01/2020", "01/02/2020"], {}, ["2020-01-13", "2020-02-01"]),        # day shown first by the 13
    (["01/13/2020 08:00", "02/01/2020 09:30"], {}, ["2020-01-13 08:00", "2020-02-01 09:30"]),
    (["20200601"], {}, ["2020-06-01"]),
    (["20200601 08:00", "20200601 9:00"], {}, ["2020-06-01 08:00", "2020-06-01 09:00"]),   # date and time columns
    (["2020-06-01 23:00", "2020-06-01 24:00"], {}, ["2020-06-01 23:00", "2020-06-02 00:00"]),
    (["01.02.2020"], {"fmt": "%d.%m.%Y"}, ["2020-02-01"]),
    (["43831", "43831.25"], {"excel_serial": True}, ["2020-01-01", "2020-01-01 06:00"]),
])
def test_dates_are_read_as_written(values, kw, expected):
    assert list(tables.parse_dates(values, **kw)) == [pd.Timestamp(e) for e in expected]


@pytest.mark.parametrize("values,kw,message", [
    (["01/02/2020", "03/04/2020"], {}, "do not show which; give --date_format"),
    (["43831"], {}, "holds numbers ('43831', row 2), not dates"),
    # Excel's day numbers in a CSV: --date_format %Y%m%d, which the message gave, reads none of them
    (["43831", "43832"], {}, "Excel's day numbers (43831 is 2020-01-01)? format the column as dates in Excel"),
    (["2020-02-30"], {}, "'2020-02-30' (row 2), not a date"),
    (["2020-01-01", "1.1.2020"], {}, "not a date in the form of the first row: '1.1.2020' (row 3)"),
    (["junk"], {}, "the form of 'junk' (row 2) is not recognised"),
    (["2020-01-01", ""], {}, "empty date cell (row 3)"),
    (["2020-01-01"], {"fmt": "%d/%m/%Y"}, "not a date of the form %d/%m/%Y"),
])
def test_dates_that_cannot_be_read_without_a_guess_are_one_line(values, kw, message):
    with pytest.raises(DataError) as e:
        tables.parse_dates(values, source="f.csv", **kw)
    assert message in str(e.value) and "\n" not in str(e.value) and str(e.value).startswith("f.csv: ")


def test_a_file_whose_name_says_another_kind_is_named_for_what_it_is(tmp_path):
    """An .xlsx saved under a .csv name was "not a text file (it holds binary data)", a CSV renamed .xlsx "not a
    readable .xlsx workbook (BadZipFile)", and a web portal's HTML table named .xls asked for xlrd; each says what
    the file is and which name or export reads it."""
    import openpyxl

    wb = openpyxl.Workbook()
    wb.active.append(["date", "q"])
    wb.save(tmp_path / "book.csv")
    with pytest.raises(DataError, match=r"book.csv is an Excel workbook \(.xlsx\) under a .csv name: rename it book.xlsx"):
        tables.read_table(tmp_path / "book.csv")
    (tmp_path / "text.xlsx").write_text("date,q\n2020-01-01,1\n", encoding="utf-8")
    with pytest.raises(DataError, match="text.xlsx is a text file \\(CSV\\) under a .xlsx name, not a workbook: rename it"):
        tables.read_table(tmp_path / "text.xlsx")
    (tmp_path / "web.xls").write_text("<html><table><tr><td>date</td></tr></table></html>", encoding="utf-8")
    with pytest.raises(DataError, match="web.xls is a web page or XML table under an .xls name"):
        tables.read_table(tmp_path / "web.xls")


def test_json_and_damaged_files(tmp_path):
    f = tmp_path / "a.json"
    f.write_text('{"a": [1, 2]}', encoding="utf-8")
    assert tables.read_json(f) == {"a": [1, 2]}
    f.write_text('{"a": [1, 2}', encoding="utf-8")
    with pytest.raises(DataError, match=r"a.json is not valid JSON: .* \(line 1, column 12\)"):
        tables.read_json(f)
    g = tmp_path / "b.xlsx"
    g.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(DataError, match="b.xlsx is not a readable .xlsx workbook"):
        tables.read_table(g)
    with pytest.raises(DataError, match="no such"):
        tables.read_table(tmp_path / "none.csv")
