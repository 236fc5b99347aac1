"""Stations as they come: GBK and Excel files, hourly records with an 08:00 day, water levels with a
rating curve, several rain gauges. Every fixture is generated here, with values checked by hand."""

from __future__ import annotations

import datetime as dt
import json
import shutil

import numpy as np
import pandas as pd
import pytest

from sca2lstm.cli import main as main_cli
from sca2lstm.data import rating as rating_mod
from sca2lstm.data.days import aggregate_to_days
from sca2lstm.data.station_meta import read_station_meta
from sca2lstm.errors import UsageError
from test_station_import import run, snapshot

DAYS = 740  # above the importer's two-year minimum of observed discharge


def daily_frame(days=DAYS, seed=0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"date": pd.date_range("2018-01-01", periods=days, freq="D"),
                         "p": np.round(rng.gamma(0.5, 4.0, days), 1), "t": np.round(rng.normal(15, 5, days), 1),
                         "q": np.round(rng.gamma(2.0, 5.0, days), 2)})


# ------------------------------------------------------------------------------------------ GBK CSV
def test_gbk_csv_with_chinese_headers_imports_and_says_how_it_was_read(tmp_path, capsys):
    src = daily_frame()
    header = "日期,降雨量（mm）,气温(℃),流量 (m3/s)"   # full-width brackets and a stray space, as Excel saved them
    lines = [header, "(年/月/日),(mm),(℃),(m3/s)"]   # a units row under the header, a totals row at the end
    lines += [f"{d:%Y/%m/%d},{p},{t},{q}" for d, p, t, q in src.itertuples(index=False)]
    lines += [f"合计,{src['p'].sum():.1f},,"]
    f = tmp_path / "站点.csv"
    out = tmp_path / "data"

    def imp(rows, sid):
        """Import ``rows`` (the file's lines) as GBK with CRLF, as Excel saves a Chinese CSV."""
        f.write_bytes(("\r\n".join(rows) + "\r\n").encode("gbk"))
        return run(capsys, ["station", "import", str(f), "--id", sid, "--out", str(out), "--map",
                            "date=日期,precipitation=降雨量(mm),temperature=气温(℃),discharge=流量(m3/s)",
                            "--discharge_unit", "m3/s"])

    rc, stdout, err = imp(lines, "zhen-01")
    assert rc == 0, err
    assert "encoding GB18030 (GBK) (detected; --encoding overrides)" in stdout
    assert "skipped 2 row(s) whose date cell is a label, not a date: ['(年/月/日)', '合计']" in stdout
    ts = pd.read_csv(out / "timeseries" / "zhen-01.csv")
    assert ts["date"].iloc[0] == "2018-01-01" and len(ts) == DAYS
    # the units row as Excel usually writes it, with an empty date cell, is a label row too
    lines[1] = ",(mm),(℃),(m3/s)"
    rc, stdout, err = imp(lines, "zhen-03")
    assert rc == 0, err
    assert "skipped 2 row(s) whose date cell is a label, not a date: ['(mm) (℃) (m3/s)', '合计']" in stdout
    assert (out / "timeseries" / "zhen-03.csv").read_bytes() == (out / "timeseries" / "zhen-01.csv").read_bytes()
    # formatted empty rows below the totals, as Excel saves them (",,,"): nothing in them, skipped
    rc, stdout, err = imp(lines + [",,,"] * 3, "zhen-04")
    assert rc == 0, err
    assert "skipped 3 empty row(s) at the end" in stdout
    assert (out / "timeseries" / "zhen-04.csv").read_bytes() == (out / "timeseries" / "zhen-01.csv").read_bytes()
    # an empty row among the days is named, with what to do
    rc, _, err = imp(lines[:10] + [",,,"] + lines[10:], "zhen-05")
    assert rc == 1 and "has an empty date cell (row 11)" in err and "delete an empty row" in err
    np.testing.assert_allclose(ts["precipitation"], src["p"])
    np.testing.assert_allclose(ts["temperature"], src["t"])
    np.testing.assert_allclose(ts["discharge_vol"], src["q"])
    meta = json.loads((out / "meta" / "zhen-01.json").read_text(encoding="utf-8"))
    assert meta["read"]["encoding"] == "gb18030" and meta["day"]["start"] == "00:00"
    # The same bytes read with a wrong encoding given: the headers do not match, in one line.
    rc, _, err = run(capsys, ["station", "import", str(f), "--id", "zhen-02", "--out", str(out), "--map",
                              "date=日期,precipitation=降雨量(mm),discharge=流量(m3/s)", "--discharge_unit", "m3/s",
                              "--encoding", "latin-1"])
    assert rc == 1 and "mapped column(s) date=日期" in err and len(err.strip().splitlines()) == 1


def test_a_note_or_a_summary_row_with_a_year_under_the_table_is_skipped_as_a_label(tmp_path, capsys):
    """A note under the data (注：2018年7月资料为插补值) or a totals row naming its years ("Total 2018-2020") was refused
    as a date not in the form of the first row, though 合计 without a digit is skipped; words in the date cell
    mark a label, unless the cell is a date (05-Jan-2020 under --date_format %d-%b-%Y)."""
    import openpyxl

    src = daily_frame(seed=10)
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["日期", "雨量", "流量"])
    for d, p, q in src[["date", "p", "q"]].itertuples(index=False):
        ws.append([d.to_pydatetime(), p, q])
    ws.append([])
    ws.append(["注：2018年7月资料为插补值"])
    wb.save(tmp_path / "note.xlsx")
    out = tmp_path / "o"
    rc, stdout, err = run(capsys, ["station", "import", str(tmp_path / "note.xlsx"), "--id", "n1", "--out", str(out),
                                   "--map", "date=日期,precipitation=雨量,discharge=流量", "--discharge_unit", "m3/s"])
    assert rc == 0, err
    assert "skipped 1 row(s) whose date cell is a label, not a date: ['注：2018年7月资料为插补值']" in stdout
    np.testing.assert_allclose(pd.read_csv(out / "timeseries" / "n1.csv")["discharge_vol"], src["q"])
    for fmt, flags, last in (("%Y-%m-%d", [], "Total 2018-2020,1234.5,"), ("%d-%b-%Y", ["--date_format", "%d-%b-%Y"],
                                                                          None)):
        lines = ["date,p,q"] + [f"{d.strftime(fmt)},{p},{q}" for d, p, q in src[["date", "p", "q"]].itertuples(index=False)]
        f = tmp_path / "t.csv"
        f.write_text("\n".join(lines + ([last] if last else [])) + "\n", encoding="utf-8")
        sid = "t1" if last else "t2"
        rc, stdout, err = run(capsys, ["station", "import", str(f), "--id", sid, "--out", str(out), "--map",
                                       "date=date,precipitation=p,discharge=q", "--discharge_unit", "m3/s", *flags])
        assert rc == 0, err
        assert ("skipped 1 row(s) whose date cell is a label, not a date: ['Total 2018-2020']" in stdout) == bool(last)
        ts = pd.read_csv(out / "timeseries" / f"{sid}.csv")
        assert len(ts) == DAYS
        np.testing.assert_allclose(ts["discharge_vol"], src["q"])


def test_values_typed_in_full_width_digits_read_as_the_numbers_they_are(tmp_path, capsys):
    """１２．５ (digits typed in a Chinese input method) was refused as a non-numeric value, though dates and headers
    so typed are read; now each such cell reads as its number, a negative temperature and a --na_value code too."""
    src = daily_frame()
    wide = str.maketrans("0123456789.-", "０１２３４５６７８９．－")
    lines = ["日期,降雨量,气温,流量"] + [f"{d:%Y-%m-%d},{p},{t},{q}" for d, p, t, q in src.itertuples(index=False)]
    lines[3] = "2018-01-03,１２．５,－３．２,４５．６"
    lines[5] = lines[5].rsplit(",", 1)[0] + ",－９９"
    lines[8] = lines[8].translate(wide)
    f = tmp_path / "站.csv"
    f.write_bytes(("\r\n".join(lines) + "\r\n").encode("gbk"))
    out = tmp_path / "o"
    rc, _, err = run(capsys, ["station", "import", str(f), "--id", "w1", "--out", str(out), "--map",
                              "date=日期,precipitation=降雨量,temperature=气温,discharge=流量", "--discharge_unit",
                              "m3/s", "--na_value", "-99"])
    assert rc == 0, err
    ts = pd.read_csv(out / "timeseries" / "w1.csv", index_col="date")
    assert ts.loc["2018-01-03"].tolist() == [12.5, -3.2, 45.6]
    assert np.isnan(ts.loc["2018-01-05", "discharge_vol"])
    assert ts.loc["2018-01-08"].tolist() == pytest.approx(src.iloc[7][["p", "t", "q"]].astype(float).tolist())


def test_a_negative_written_with_the_typeset_minus_sign_reads_as_its_number(tmp_path, capsys):
    """−3.2 with the minus sign of typeset text (U+2212: a table copied from Word or a web page), which NFKC leaves
    as it is, was refused as a non-numeric value; it is -3.2, and −99 matches --na_value -99."""
    src = daily_frame(seed=8)
    lines = ["date,p,t,q"] + [f"{d:%Y-%m-%d},{p},{t},{q}" for d, p, t, q in src.itertuples(index=False)]
    lines[3] = "2018-01-03,0.5,\u22123.2,4.5"
    lines[4] = "2018-01-04,0.5,\u221299,4.5"
    f = tmp_path / "web.csv"
    f.write_text("\n".join(lines) + "\n", encoding="utf-8")
    rc, _, err = run(capsys, ["station", "import", str(f), "--id", "m1", "--out", str(tmp_path / "o"), "--map",
                              "date=date,precipitation=p,temperature=t,discharge=q", "--discharge_unit", "m3/s",
                              "--na_value", "-99"])
    assert rc == 0, err
    t = pd.read_csv(tmp_path / "o" / "timeseries" / "m1.csv", index_col="date")["temperature"]
    assert t["2018-01-03"] == -3.2 and np.isnan(t["2018-01-04"])


# ------------------------------------------------------------------------------------------ xlsx
@pytest.mark.parametrize("suffix", [".csv", ".xlsx"])
def test_a_mapped_name_heading_two_columns_is_refused_and_a_repeated_unmapped_one_is_read(suffix, tmp_path, capsys):
    """A two-row heading flattened to 流量, 流量 (mean and maximum): a CSV read the first without a word and a
    workbook ended in a traceback; both are one line naming the name and the columns, nothing written. A repeated
    name nobody maps (备注 twice) is no obstacle."""
    import openpyxl

    src = daily_frame()
    header = ["日期", "降雨量", "流量", "流量", "备注", "备注"]
    rows = [[d.to_pydatetime(), p, q, q * 3, None, None] for d, p, _, q in src.itertuples(index=False)]
    f = tmp_path / f"站{suffix}"
    if suffix == ".csv":
        f.write_bytes("\r\n".join(",".join([f"{r[0]:%Y-%m-%d}", *(str(c) for c in r[1:4]), "", ""])
                                    for r in rows).join([",".join(header) + "\r\n", "\r\n"]).encode("gbk"))
    else:
        wb = openpyxl.Workbook()
        wb.active.append(header)
        for r in rows:
            wb.active.append(r)
        wb.save(f)
    out = tmp_path / "o"
    argv = ["station", "import", str(f), "--id", "two", "--out", str(out), "--discharge_unit", "m3/s"]
    rc, _, err = run(capsys, [*argv, "--map", "date=日期,precipitation=降雨量,discharge=流量"])
    assert rc == 1 and "column '流量' heads 2 columns (numbers 3, 4 from the left)" in err, err
    assert len(err.strip().splitlines()) == 1 and not out.exists()
    f2 = tmp_path / f"unmapped{suffix}"
    if suffix == ".csv":
        f2.write_bytes(f.read_bytes().replace("流量,流量".encode("gbk"), "流量,最大流量".encode("gbk"), 1))
    else:
        wb = openpyxl.load_workbook(f)
        wb.active["D1"] = "最大流量"
        wb.save(f2)
    rc, _, err = run(capsys, ["station", "import", str(f2), "--id", "two", "--out", str(out), "--discharge_unit",
                              "m3/s", "--map", "date=日期,precipitation=降雨量,discharge=流量"])
    assert rc == 0, err
    np.testing.assert_allclose(pd.read_csv(out / "timeseries" / "two.csv")["discharge_vol"], src["q"])


def test_xlsx_formula_cells_without_a_saved_value_are_refused_not_read_as_missing_days(tmp_path, capsys):
    import openpyxl

    src = daily_frame(seed=2)
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["日期", "雨量", "气温", "流量(m3/s)"])
    for i, (d, p, t, q) in enumerate(src.itertuples(index=False), start=2):
        # openpyxl writes formulas without their value, as a script making a workbook does
        ws.append([d.to_pydatetime(), p, t, f"=ROUND({q},3)" if i == 40 else q])
    f = tmp_path / "formula.xlsx"
    wb.save(f)
    out = tmp_path / "data"
    rc, _, err = run(capsys, ["station", "import", str(f), "--id", "xl-f", "--out", str(out), "--map",
                              "date=日期,precipitation=雨量,temperature=气温,discharge=流量(m3/s)",
                              "--discharge_unit", "m3/s"])
    assert rc == 1 and len(err.strip().splitlines()) == 1, err
    assert "cell D40 holds a formula (=ROUND(" in err and "no saved value" in err
    assert not out.exists()


def test_a_book_kept_a_sheet_a_year_is_told_why_one_sheet_is_too_short_and_which_sheets_hold_the_rest(tmp_path,
                                                                                                        capsys):
    """A township workbook keeps a sheet a year (2018年, 2019年, 2020年). One sheet is read, and a year alone is under
    the two-year minimum: the refusal said only that, as if the station had one year. It now names the sheet read,
    the others, and how to import them all; nothing is written."""
    import openpyxl

    src = daily_frame(days=3 * 365, seed=5)
    wb = openpyxl.Workbook()
    wb.remove(wb.active)
    for year in (2018, 2019, 2020):
        ws = wb.create_sheet(f"{year}年")
        ws.append([f"某某水文站 {year} 年逐日水文要素表"])
        ws.append(["日期", "雨量", "流量"])
        for d, p, _, q in src[src["date"].dt.year == year].itertuples(index=False):
            ws.append([d.to_pydatetime(), p, q])
    f = tmp_path / "逐年.xlsx"
    wb.save(f)
    out = tmp_path / "data"
    rc, _, err = run(capsys, ["station", "import", str(f), "--id", "yearly", "--out", str(out), "--map",
                              "date=日期,precipitation=雨量,discharge=流量", "--discharge_unit", "m3/s"])
    assert rc == 1 and len(err.strip().splitlines()) == 1 and not out.exists()
    assert "365 days of observed discharge (2018-01-01..2018-12-31); the minimum is 730 days (2 years); read from " \
           "sheet '2018年' only (its other sheets: 2 '2019年', 3 '2020年'): a record kept a sheet a year is imported " \
           "from one sheet holding every year" in err, err


def test_xlsx_with_a_title_row_and_a_chosen_sheet(tmp_path, capsys):
    import openpyxl

    src = daily_frame(seed=1)
    wb = openpyxl.Workbook()
    wb.active.title = "说明"
    wb.active.append(["本表为某某水文站逐日资料"])
    ws = wb.create_sheet("逐日")
    ws.append(["某某水文站 2018-2020 年逐日水文要素表"])   # a title row, merged over the columns
    ws.merge_cells("A1:D1")
    ws.append(["日期", "雨量", "气温", "流量"])
    for d, p, t, q in src.itertuples(index=False):
        ws.append([d.to_pydatetime(), p, t, q])   # real date cells
    f = tmp_path / "station.xlsx"
    wb.save(f)
    out = tmp_path / "data"
    argv = ["station", "import", str(f), "--id", "xl-1", "--out", str(out), "--map",
            "date=日期,precipitation=雨量,temperature=气温,discharge=流量", "--discharge_unit", "m3/s"]
    rc, stdout, err = run(capsys, [*argv, "--sheet", "逐日"])
    assert rc == 0, err
    assert "sheet '逐日', header on row 2 (1 title row(s) skipped)" in stdout
    ts = pd.read_csv(out / "timeseries" / "xl-1.csv")
    assert ts["date"].iloc[-1] == str((src["date"].iloc[-1]).date()) and len(ts) == DAYS
    np.testing.assert_allclose(ts["discharge_vol"], src["q"])
    np.testing.assert_allclose(ts["precipitation"], src["p"])
    # --sheet by number (2 = the second sheet) and --skiprows give the same record.
    rc, _, err = run(capsys, [*argv[:4], "xl-2", *argv[5:], "--sheet", "2", "--skiprows", "1"])
    assert rc == 0, err
    assert (out / "timeseries" / "xl-2.csv").read_bytes() == (out / "timeseries" / "xl-1.csv").read_bytes()
    # an empty cover sheet first: the error names the other sheets and --sheet
    wb.create_sheet("封面", 0)
    wb.save(f)
    rc, _, err = run(capsys, [*argv[:4], "xl-3", *argv[5:]])
    assert rc == 1 and "sheet '封面' is empty" in err and "choose another with --sheet (its sheets: 2 '说明', 3 '逐日')" in err
    # a cover sheet with a title first: the columns are not found, and the other sheets are named
    wb["封面"].append(["某某站水文资料 2018-2020"])
    wb["封面"].append(["资料见第三张表"])
    wb.save(f)
    rc, _, err = run(capsys, [*argv[:4], "xl-3", *argv[5:]])
    assert rc == 1 and "(read from sheet '封面'; another with --sheet: 2 '说明', 3 '逐日')" in err and "--sep" not in err


def test_a_running_total_of_rain_is_refused_as_such_not_as_rain_in_tenths_of_a_mm(tmp_path, capsys):
    """A logger's running total (累计雨量, reset each year) mapped as precipitation was summed per day and refused as
    rain averaging millions of mm a year, with the advice to read it in 0.1 mm (still a hundred thousand mm). It is
    refused for what it is, naming the column and how to turn it into the rain of each period; nothing is written.
    The same rain given per day imports."""
    src = daily_frame(seed=6)
    total = src.groupby(src["date"].dt.year)["p"].cumsum().round(1)
    f = tmp_path / "累计.csv"
    out = tmp_path / "data"

    def imp(rain):
        lines = ["日期,雨量,流量"] + [f"{d:%Y-%m-%d},{p},{q}" for d, p, q in zip(src["date"], rain, src["q"])]
        f.write_bytes(("\r\n".join(lines) + "\r\n").encode("gbk"))
        return run(capsys, ["station", "import", str(f), "--id", "cum", "--out", str(out), "--map",
                            "date=日期,precipitation=雨量,discharge=流量", "--discharge_unit", "m3/s"])

    rises, falls = int((np.diff(total) > 0).sum()), int((np.diff(total) < 0).sum())
    assert falls == 2   # the two new years
    rc, _, err = imp(total)
    assert rc == 1 and len(err.strip().splitlines()) == 1 and not out.exists()
    assert (f"column '雨量' (precipitation) rises in {rises} steps and falls in only 2: a running total (累计雨量) "
            "rather than the rain of each period? Give the rain of each period (时段雨量") in err, err
    assert "0.1mm" not in err
    rc, _, err = imp(src["p"])
    assert rc == 0, err


def test_temperature_without_latitude_warns_that_pet_is_masked_and_names_the_flag(tmp_path, capsys):
    """A station file with temperature and no PET column gets Oudin PET, which needs the gauge's latitude. The guide's
    imports mostly give no --lat, and the summary said PET 'is derived ... (masked when either is missing)', leaving
    its user to work out that it was. It is now a warning naming --lat; with --lat the summary says PET is derived."""
    f = tmp_path / "t.csv"
    daily_frame(seed=7).to_csv(f, index=False)
    argv = ["station", "import", str(f), "--out", str(tmp_path / "d"), "--map",
            "date=date,precipitation=p,temperature=t,discharge=q", "--discharge_unit", "m3/s"]
    rc, stdout, err = run(capsys, [*argv, "--id", "nolat"])
    assert rc == 0, err
    assert ("warning: station nolat: no PET column and no --lat: PET cannot be derived from the temperature (Oudin "
            "needs the gauge's latitude) and is masked on every day where a model reads it; give --lat (degrees "
            "north) to derive it") in stdout
    rc, stdout, err = run(capsys, [*argv, "--id", "lat", "--lat", "30.2"])
    assert rc == 0, err
    assert "no --lat" not in stdout
    assert "no PET column: PET is derived from temperature and the gauge's latitude (Oudin) where a model reads it" \
        in stdout


# ------------------------------------------------------------------------------------------ hourly, 08:00
def test_hourly_aggregation_across_the_0800_boundary_by_hand():
    """Three days of hourly values; the hydrological day runs 08:00 to 08:00 and is named by its start."""
    idx = pd.date_range("2020-06-01 08:00", periods=72, freq="h")
    rain = pd.Series(0.0, index=idx)
    rain["2020-06-02 07:00"] = 3.0   # 07:00-08:00 on 2 June: the last hour of the day of 1 June
    rain["2020-06-02 08:00"] = 5.0   # 08:00-09:00: the first hour of 2 June
    q = pd.Series(10.0, index=idx)
    q[idx >= "2020-06-01 20:00"] = 22.0   # a step at 20:00: 12 h at 10, 12 h at 22 on the day of 1 June
    q["2020-06-03 03:00"] = np.nan        # one hour missing on 2 June: kept (1/24 < 10 %)
    q[(idx >= "2020-06-03 12:00") & (idx < "2020-06-03 15:00")] = np.nan   # three hours: 3/24 > 10 %, missing
    res = aggregate_to_days(pd.DataFrame({"p": rain, "q": q}), "08:00", how={"p": "sum", "q": ("mean", "max")})
    f = res.frame
    assert list(f.index.strftime("%Y-%m-%d")) == ["2020-06-01", "2020-06-02", "2020-06-03"]
    assert f["p"].tolist() == [3.0, 5.0, 0.0]
    assert f.loc["2020-06-01", "q"] == pytest.approx((12 * 10 + 12 * 22) / 24)
    assert f.loc["2020-06-02", "q"] == pytest.approx(22.0)                  # mean over the 23 h present
    assert np.isnan(f.loc["2020-06-03", "q"]) and f.loc["2020-06-01", "q_max"] == 22.0
    assert res.counts["q"] == {"complete": 1, "partial": 1, "missing": 1}
    # Labelled by the end date, with end-stamped values (时段雨量: the rain of the hour before the stamp).
    end = aggregate_to_days(pd.DataFrame({"p": rain}), "08:00", stamp="end", label="end", how={"p": "sum"})
    # The 08:00 stamp on 2 June holds 07:00-08:00 on 2 June: with the 07:00 value (06:00-07:00) in the day
    # that ends at 08:00 on 2 June.
    assert end.frame.loc["2020-06-02", "p"] == 3.0 + 5.0
    # Irregular stamps are weighted by time: 10 for 6 h, 40 for 18 h.
    irr = pd.DataFrame({"q": [10.0, 40.0, 7.0]}, index=pd.to_datetime(["2020-01-01 00:00", "2020-01-01 06:00",
                                                                       "2020-01-02 00:00"]))
    got = aggregate_to_days(irr, "00:00", how={"q": "mean"}, hold=pd.Timedelta(hours=18))
    assert got.frame.loc["2020-01-01", "q"] == pytest.approx((6 * 10 + 18 * 40) / 24)


def test_rows_repeated_by_overlapping_exports_are_dropped_and_a_time_given_twice_differently_is_refused(tmp_path,
                                                                                                         capsys):
    """Two exports pasted one under the other repeat the days they share: refused as duplicate dates, though their
    values agree; they are dropped, and said so. A date given twice with different values is refused naming both
    rows, and an hour a local clock repeats when summer time ends names --timezone."""
    src = daily_frame(seed=9)
    lines = ["date,p,q"] + [f"{d:%Y-%m-%d},{p},{q}" for d, p, q in src[["date", "p", "q"]].itertuples(index=False)]
    f = tmp_path / "pasted.csv"
    f.write_text("\n".join(lines[:401] + lines[391:]) + "\n", encoding="utf-8")  # days 391..400 twice
    out = tmp_path / "o"
    argv = lambda f, sid, *flags: ["station", "import", str(f), "--id", sid, "--out", str(out), "--map",  # noqa: E731
                                   "date=date,precipitation=p,discharge=q", "--discharge_unit", "m3/s", *flags]
    rc, stdout, err = run(capsys, argv(f, "r1"))
    assert rc == 0, err
    assert "dropped 10 repeated row(s), each the same time and values as an earlier row (first: row 402, as row 392" \
        in stdout
    ts = pd.read_csv(out / "timeseries" / "r1.csv")
    assert len(ts) == DAYS
    np.testing.assert_allclose(ts["discharge_vol"], src["q"])
    pasted = lines[:401] + lines[391:]
    pasted[402] = pasted[402].rsplit(",", 1)[0] + ",99.5"              # the second copy of file row 393 differs
    f.write_text("\n".join(pasted) + "\n", encoding="utf-8")
    rc, _, err = run(capsys, argv(f, "r2"))
    assert rc == 1 and len(err.strip().splitlines()) == 1
    assert "date column 'date' has duplicate dates: 2019-01-27 on rows 393 and 403, with different values" in err, err
    # a logger on Berlin's wall clock: 2018-10-28 02:00 twice, an hour apart
    idx = pd.date_range("2018-01-01", periods=DAYS * 24, freq="h", tz="Europe/Berlin").tz_localize(None)
    q = np.round(3 + np.sin(np.arange(len(idx)) / 100), 3)
    hourly = tmp_path / "berlin.csv"
    hourly.write_text("time,p,q\n" + "".join(f"{t:%Y-%m-%d %H:%M},0,{v}\n" for t, v in zip(idx, q)), encoding="utf-8")
    hourly_argv = lambda sid, *flags: ["station", "import", str(hourly), "--id", sid, "--out", str(out),  # noqa: E731
                                       "--map", "date=time,precipitation=p,discharge=q", "--discharge_unit", "m3/s",
                                       *flags]
    rc, _, err = run(capsys, hourly_argv("r3"))
    assert rc == 1 and "has duplicate times: 2018-10-28 02:00:00 on rows 7203 and 7204" in err, err
    assert "a clock on summer time repeats an hour when it ends: give --timezone" in err
    rc, _, err = run(capsys, hourly_argv("r3", "--timezone", "Europe/Berlin"))
    assert rc == 0, err
    assert sorted(p.name for p in (out / "timeseries").iterdir()) == ["r1.csv", "r3.csv"]


def test_day_boundary_in_standard_time_across_daylight_saving():
    """UK loggers in clock time (BST in summer): the 09:00 GMT boundary is 10:00 on the summer clock."""
    idx = pd.date_range("2021-07-01 00:00", periods=48, freq="h")  # clock time, Europe/London (BST)
    v = pd.Series(np.arange(48, dtype=float), index=idx)
    res = aggregate_to_days(pd.DataFrame({"v": v}), "09:00", timezone="Europe/London", how={"v": "sum"},
                            max_missing=0.5)
    # The day of 1 July (09:00 GMT = 10:00 BST on 1 July to 10:00 BST on 2 July): stamps 10 .. 33.
    assert res.frame.loc["2021-07-01", "v"] == sum(range(10, 34))


def test_a_summer_time_the_logger_never_kept_names_the_zones_standard_offset():
    """China kept summer time 1986-1991; a logger on standard time all year wrote clock times that skip or
    repeat nothing. The refusal names the fixed offset that reads them (UTC+08:00), which then works."""
    from sca2lstm.data.days import to_station_time
    from sca2lstm.errors import DataError

    idx = pd.date_range("1988-09-10 00:00", "1988-09-12 00:00", freq="h")
    with pytest.raises(DataError, match=r"--timezone UTC\+08:00 \(Asia/Shanghai without summer time\)"):
        to_station_time(idx, "Asia/Shanghai")
    assert (to_station_time(idx, "UTC+08:00") == idx).all()


# ------------------------------------------------------------------------------------------ stage + rating
SEGMENTS = "a,b,h0,h_max\n5,2,0.2,1.0\n6.25,1.5,0.36,3.0\n"  # continuous at h=1: 5·0.8² = 6.25·0.64^1.5 = 3.2


def test_two_segment_rating_curve_by_hand(tmp_path):
    f = tmp_path / "rating.csv"
    f.write_text(SEGMENTS)
    c = rating_mod.parse_rating(str(f))
    res = c.discharge([0.1, 0.6, 1.0, 2.0, 3.5])
    assert np.isnan(res.q[0]) and res.below.tolist() == [True, False, False, False, False]
    np.testing.assert_allclose(res.q[1:], [5 * 0.4 ** 2, 3.2, 6.25 * 1.64 ** 1.5, 6.25 * 3.14 ** 1.5], rtol=1e-12)
    assert res.above.tolist() == [False, False, False, False, True]   # above the gauged 3.0 m: top segment
    h = c.stage(res.q[1:])
    np.testing.assert_allclose(h, [0.6, 1.0, 2.0, 3.5], atol=1e-9)
    t = rating_mod.parse_rating({"kind": "table", "h": [0.2, 0.5, 1.0, 2.0], "q": [0.0, 1.0, 4.0, 15.0]})
    np.testing.assert_allclose(t.discharge([0.5, 2.5]).q, [1.0, 15.0 + 0.5 * 11.0])  # pairs exact; linear top
    np.testing.assert_allclose(t.stage(t.discharge([0.3, 0.77, 1.6]).q), [0.3, 0.77, 1.6], atol=1e-9)


def test_a_curves_validity_dates_are_read_by_the_one_date_parser_never_guessing_day_and_month(tmp_path):
    """valid_from 01/02/2019 (a new curve from 1 February, as a European or Chinese hydrologist writes it) was read by
    pandas as 2 January, moving the change of curve a month early without a word; alone it is refused, beside a
    date that shows the order (31/01/2019) it is 1 February, and 2019年2月1日 reads as written."""
    f = tmp_path / "rating.csv"
    f.write_text("a,b,h0,valid_from\n6,1,0,01/02/2019\n")
    with pytest.raises(UsageError, match="valid_from='01/02/2019' is not a date YYYY-MM-DD \\(day and month are not guessed") as e:
        rating_mod.parse_rating(str(f))
    assert "\n" not in str(e.value) and "YYYY-MM-DD" in str(e.value)
    f.write_text("a,b,h0,valid_from,valid_to\n5,1,0,,31/01/2019\n6,1,0,01/02/2019,\n")   # 31: day first
    c = rating_mod.parse_rating(str(f))
    assert [(s.valid_from, s.valid_to) for s in c.segments] == [(None, "2019-01-31"), ("2019-02-01", None)]
    q = c.discharge(np.ones(3), pd.to_datetime(["2019-01-15", "2019-01-31", "2019-02-01"])).q
    assert q.tolist() == [5.0, 5.0, 6.0]
    f.write_text("a,b,h0,valid_from\n6,1,0,2019年2月1日\n", encoding="utf-8")
    assert rating_mod.parse_rating(str(f)).segments[0].valid_from == "2019-02-01"


def _hourly_stage_station(path, encoding="gbk"):
    """Hourly water levels (m) and three rain gauges for DAYS days; returns the frame written."""
    idx = pd.date_range("2018-01-01 08:00", periods=DAYS * 24, freq="h")
    hours = np.arange(len(idx))
    h = 0.6 + 0.3 * np.sin(hours * 2 * np.pi / (24 * 30)) ** 2     # 0.6 .. 0.9 m: the lower segment
    h[(idx >= "2018-07-01 08:00") & (idx < "2018-07-02 08:00")] = 3.5   # a flood day above the gauged range
    h[(idx >= "2018-08-01 08:00") & (idx < "2018-08-01 10:00")] = 0.1   # two hours below the curve: masked
    rng = np.random.default_rng(3)
    p1 = np.round(rng.gamma(0.1, 2.0, len(idx)), 1)
    p2, p3 = np.round(p1 * 0.5, 2), np.round(p1 * 2.0, 2)
    df = pd.DataFrame({"时间": idx.strftime("%Y-%m-%d %H:%M"), "水位(m)": np.round(h, 4), "雨量1": p1, "雨量2": p2,
                       "雨量3": p3})
    df.loc[(idx >= "2018-03-01 08:00") & (idx < "2018-03-02 08:00"), "雨量3"] = np.nan  # gauge 3 out for a day
    path.write_bytes(df.to_csv(index=False).encode(encoding))
    return df, idx


def test_a_rating_curve_beside_a_discharge_column_is_said_and_checked_against_the_records_pairs(tmp_path, capsys):
    """A station writing both its flows and its water levels keeps the flows it wrote; the curve given with them
    (for the forecasts' water levels and levels in stage) was kept without a word. The summary now says what it does
    and how it compares with the record's own pairs, and a curve a factor 2 away (a wrong a, h0 or datum) is
    warned about. Stages are written to 1e-6 m at depths of 2 cm or more, so the ratio is exact to the 2 decimals
    printed."""
    a, b, h0 = 5.0, 1.6, 0.2
    src = daily_frame(seed=4)
    src["q"] = src["q"] + 0.1
    h = np.round(h0 + (src["q"] / a) ** (1 / b), 6)
    lines = ["日期,雨量,流量,水位"] + [f"{d:%Y-%m-%d},{p},{q},{s}" for (d, p, _, q), s in
                                       zip(src.itertuples(index=False), h)]
    f = tmp_path / "both.csv"
    f.write_bytes(("\r\n".join(lines) + "\r\n").encode("gbk"))
    out = tmp_path / "d"

    def imp(sid, curve):
        return run(capsys, ["station", "import", str(f), "--id", sid, "--out", str(out), "--map",
                            "date=日期,precipitation=雨量,discharge=流量,stage=水位", "--discharge_unit", "m3/s",
                            "--rating", curve])

    said = ("rating curve beside the discharge column '流量': the flows are that column's; the curve gives the "
            "forecasts' water levels and turns levels in stage into flows; at the 740 times with both, it gives a "
            "median {} times the column's flow (5-95 %: {})")
    rc, stdout, err = imp("good", f"a={a},b={b},h0={h0}")
    assert rc == 0, err
    assert said.format("1.00", "1.00-1.00") in stdout and "rating curve gives a median" not in stdout
    rc, stdout, err = imp("off", f"a={2 * a},b={b},h0={h0}")
    assert rc == 0, err
    assert said.format("2.00", "2.00-2.00") in stdout
    assert ("warning: the rating curve gives a median 2.00 times the flow of column '流量' at the water levels of "
            "column '水位' written beside it (740 times with both)") in stdout
    # the flows stay the column's, and the curve is stored for the forecasts
    ts = pd.read_csv(out / "timeseries" / "off.csv")
    np.testing.assert_allclose(ts["discharge_vol"], src["q"])
    assert read_station_meta(out, "off").rating_curve is not None


def test_stage_only_station_with_rating_gauges_and_levels_in_stage(tmp_path, capsys):
    f = tmp_path / "水文站.csv"
    df, idx = _hourly_stage_station(f)
    (tmp_path / "rating.csv").write_text(SEGMENTS)
    out = tmp_path / "data"
    rc, stdout, err = run(capsys, [
        "station", "import", str(f), "--id", "zhen-02", "--out", str(out),
        "--map", "date=时间,stage=水位(m),precipitation=雨量1+雨量2+雨量3", "--precipitation_weights", "0.5,0.3,0.2",
        "--rating", str(tmp_path / "rating.csv"), "--day_start", "08:00", "--timezone", "Asia/Shanghai",
        "--warning_levels", "alert=2.5,danger=3.2", "--levels_in", "stage"])
    assert rc == 0, err
    ts = pd.read_csv(out / "timeseries" / "zhen-02.csv", index_col="date")
    assert ts.index[0] == "2018-01-01" and len(ts) == DAYS
    # Discharge is derived hour by hour, then averaged: the daily mean of Q, not Q of the mean stage.
    day = (idx >= "2018-01-05 08:00") & (idx < "2018-01-06 08:00")
    want = np.mean(5 * (df.loc[day, "水位(m)"].to_numpy() - 0.2) ** 2)
    assert ts.loc["2018-01-05", "discharge_vol"] == pytest.approx(want, rel=1e-5)
    assert ts.loc["2018-01-05", "stage"] == pytest.approx(df.loc[day, "水位(m)"].mean(), rel=1e-5)
    assert ts.loc["2018-07-01", "discharge_vol"] == pytest.approx(6.25 * 3.14 ** 1.5, rel=1e-5)
    assert ts.loc["2018-07-01", "discharge_extrapolated"] == 1 and ts.loc["2018-07-02", "discharge_extrapolated"] == 0
    assert ts.loc["2018-07-01", "discharge_max"] == pytest.approx(6.25 * 3.14 ** 1.5, rel=1e-5)
    assert np.isfinite(ts.loc["2018-08-01", "discharge_vol"])   # 2 of 24 hours masked: partial, kept
    # Three gauges: 0.5·P1 + 0.3·P2 + 0.2·P3 = (0.5 + 0.15 + 0.4)·P1; with gauge 3 out, (0.5 + 0.15)/0.8·P1.
    day = (idx >= "2018-01-10 08:00") & (idx < "2018-01-11 08:00")
    p1 = df.loc[day, "雨量1"].sum()
    assert ts.loc["2018-01-10", "precipitation"] == pytest.approx(0.5 * p1 + 0.3 * df.loc[day, "雨量2"].sum()
                                                                  + 0.2 * df.loc[day, "雨量3"].sum(), rel=1e-5)
    day = (idx >= "2018-03-01 08:00") & (idx < "2018-03-02 08:00")
    assert ts.loc["2018-03-01", "precipitation"] == pytest.approx(
        (0.5 * df.loc[day, "雨量1"].sum() + 0.3 * df.loc[day, "雨量2"].sum()) / 0.8, rel=1e-5)
    assert "2 below the curve (masked); 24 above the highest gauged stage" in stdout
    # danger=3.2 m lies above the gauged 3.0 m: its flow is extrapolated, and the user is told so once
    assert (stdout + err).count("a water level of 3.2 m lies above the rating curve's highest gauged stage") == 1
    assert f"{DAYS} days from 1-hour records: {DAYS - 2} complete, 1 partial" in stdout
    assert "1 days with a gauge missing" in stdout
    meta = read_station_meta(out, "zhen-02")
    assert meta.day_start == "08:00" and meta.timezone == "Asia/Shanghai"
    assert meta.warning_levels["alert"].value == 2.5 and meta.warning_levels["alert"].unit == "m"
    curve = rating_mod.as_curve(meta.rating_curve)
    assert curve.discharge([2.0]).q[0] == pytest.approx(6.25 * 1.64 ** 1.5)
    assert meta.provenance["rating_applied"] == {"values": DAYS * 24, "below_masked": 2, "above_extrapolated": 24,
                                                 "outside_validity": 0}
    # Imported again from daily flows without the curve: the stored water levels cannot be read, so refused
    daily = tmp_path / "daily.csv"
    ts.reset_index()[["date", "precipitation", "discharge_vol"]].to_csv(daily, index=False)
    rc, _, err = run(capsys, ["station", "import", str(daily), "--id", "zhen-02", "--out", str(out), "--map",
                              "date=date,precipitation=precipitation,discharge=discharge_vol", "--discharge_unit",
                              "m3/s", "--overwrite"])
    assert rc == 1 and "stored warning level(s) alert, danger are water levels (m)" in err and "--rating" in err
    assert read_station_meta(out, "zhen-02").rating_curve is not None


def test_forecast_table_gets_stage_columns_through_the_inverted_curve():
    c = rating_mod.parse_rating("a=12.5,b=1.6,h0=0.15")
    t = pd.DataFrame({"valid_date": pd.to_datetime(["2020-06-02", "2020-06-03"]), "median": [12.5, 0.0],
                      "q05": [1.0, 0.0], "q95": [100.0, 5.0]})
    out = rating_mod.add_stage_columns(t, c)
    assert out["stage_median"].tolist() == pytest.approx([1.15, 0.15], abs=1e-9)
    assert out["stage_q95"].iloc[0] == pytest.approx(0.15 + (100 / 12.5) ** (1 / 1.6), abs=1e-9)
    assert "stage_q25" not in out and rating_mod.level_discharge(c, 1.15) == pytest.approx(12.5)


# ------------------------------------------------------------------------------------------ bad input
def _bad_case(kind, tmp_path):
    """(file, argv tail) of one bad-input case."""
    f = tmp_path / "s.csv"
    src = daily_frame(days=DAYS)
    src["h"] = 1.0
    src.rename(columns={"date": "日期"}).to_csv(f, index=False)
    base = ["--map", "date=日期,precipitation=p,discharge=q", "--discharge_unit", "m3/s"]
    stage = ["--map", "date=日期,precipitation=p,stage=h"]
    if kind == "encoding":
        return f, [*base, "--encoding", "klingon"]
    if kind == "sheet":
        import openpyxl
        wb = openpyxl.Workbook()
        wb.active.append(["日期", "p", "q"])
        wb.active.append([dt.datetime(2020, 1, 1), 1, 2])
        f = tmp_path / "s.xlsx"
        wb.save(f)
        return f, [*base, "--sheet", "逐时"]
    if kind == "monotonic":
        (tmp_path / "r.csv").write_text("h,q\n0.2,0\n0.5,3\n0.8,2\n")
        return f, [*stage, "--rating", str(tmp_path / "r.csv")]
    if kind == "weights":
        return f, ["--map", "date=日期,precipitation=p+t,discharge=q", "--discharge_unit", "m3/s",
                   "--precipitation_weights", "0.5,0.6"]
    if kind == "below-h0":
        return f, [*stage, "--rating", "a=12.5,b=1.6,h0=1.5"]
    if kind == "day-start":
        return f, [*base, "--day_start", "8am"]
    if kind == "timezone":
        return f, [*base, "--timezone", "Mars/Olympus"]
    if kind == "stage-without-rating":
        return f, stage
    if kind == "stage-in-cm":      # 1 m written as 100 (cm): Q would be 12.5 * 99.85^1.6, about 2000 times too large
        src.assign(h=100.0).rename(columns={"date": "日期"}).to_csv(f, index=False)
        return f, [*stage, "--rating", "a=12.5,b=1.6,h0=0.15"]
    if kind == "small-river-in-cm":  # 0.36 m written as 36: still 35.85 "m" above the zero-flow stage
        src.assign(h=36.0).rename(columns={"date": "日期"}).to_csv(f, index=False)
        return f, [*stage, "--rating", "a=12.5,b=1.6,h0=0.15"]
    if kind == "stage-span":         # a few flood readings in cm among metres
        src.assign(h=np.where(np.arange(len(src)) % 100 == 0, 80.0, 1.0)).rename(columns={"date": "日期"}).to_csv(
            f, index=False)
        return f, [*stage, "--rating", "a=12.5,b=1.6,h0=0.15"]
    if kind == "level-in-cm":
        return f, [*stage, "--rating", "a=12.5,b=1.6,h0=0.15,h_max=3.2", "--warning_levels", "alert=250",
                   "--levels_in", "stage"]
    if kind == "above-gauged":
        return f, [*stage, "--rating", "a=12.5,b=1.6,h0=0.15,h_max=0.5"]
    if kind == "water-balance":    # about 10 m3/s from 1 km2 is 864 mm/d of runoff under about 2 mm/d of rain
        return f, [*base, "--area_km2", "1"]
    if kind == "short-after-masking":
        src.loc[:99, "h"] = 0.1     # 100 of 740 days below the zero-flow stage leave 640 observed days
        src.rename(columns={"date": "日期"}).to_csv(f, index=False)
        return f, [*stage, "--rating", "a=12.5,b=1.6,h0=0.15"]
    if kind == "level-below-curve":
        return f, [*stage, "--rating", "a=12.5,b=1.6,h0=0.15", "--warning_levels", "alert=0.1", "--levels_in", "stage"]
    raise AssertionError(kind)


BAD = [("encoding", 2, "--encoding 'klingon' is not a known encoding"),
       ("sheet", 2, "--sheet '逐时' is not in s.xlsx; its sheets (number and name): 1 'Sheet'"),
       ("monotonic", 2, "the rating curve is not monotonic: Q goes from 3 at h=0.5 m to 2 m3/s at h=0.8 m"),
       ("weights", 2, "--precipitation_weights 0.5,0.6 sum to 1.1"),
       ("below-h0", 1, "every water level in column 'h' lies below the rating curve (lowest stage 1.5 m"),
       ("day-start", 2, "'8am' is not a time of day; expected HH:MM"),
       ("timezone", 2, "--timezone 'Mars/Olympus' is not a time zone"),
       ("stage-without-rating", 2, "--map stage=h needs --rating"),
       ("stage-in-cm", 1, "lie a median 99.85 m above the rating curve's zero-flow stage (0.15 m); no river runs "
                          "that deep: stages in cm?"),
       ("small-river-in-cm", 1, "lie a median 35.85 m above the rating curve's zero-flow stage"),
       ("stage-span", 1, "span 79 m (from 1 to 80); no river's level varies that much: stages in cm"),
       ("level-in-cm", 2, "--warning_levels alert=250 m: a water level of 250 m lies 249.85 m above the rating "
                          "curve's zero-flow stage"),
       ("above-gauged", 1, "740 of 740 water levels in column 'h' lie above the rating curve's highest gauged stage "
                           "(0.5 m): the curve does not describe this record"),
       ("water-balance", 1, "times its mean precipitation"),
       ("short-after-masking", 1, "640 days of observed discharge (2018-04-11..2020-01-10); the minimum is 730 days "
                                  "(2 years); 100 of 740 water levels lay below the rating curve"),
       ("level-below-curve", 2, "--warning_levels alert=0.1 m: a water level of 0.1 m lies below the rating curve")]


@pytest.mark.parametrize("case,code,text", BAD, ids=[b[0] for b in BAD])
def test_bad_options_one_line_and_nothing_written(case, code, text, tmp_path, capsys):
    data = tmp_path / "data"
    keep = daily_frame(days=DAYS).rename(columns={"date": "日期"})
    keep.to_csv(tmp_path / "keep.csv", index=False)
    assert main_cli.main(["station", "import", str(tmp_path / "keep.csv"), "--id", "keep", "--out", str(data),
                          "--map", "date=日期,precipitation=p,discharge=q", "--discharge_unit", "m3/s", "--quiet"]) == 0
    capsys.readouterr()
    before = snapshot(data)
    f, tail = _bad_case(case, tmp_path)
    rc, _, err = run(capsys, ["station", "import", str(f), "--id", "new-1", "--out", str(data), *tail])
    assert rc == code, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and text in lines[0], err
    assert snapshot(data) == before


def test_some_stages_below_the_curve_are_masked_and_counted(tmp_path, capsys):
    src = daily_frame(days=DAYS)
    src["h"] = 1.0
    src.loc[[3, 4, 5], "h"] = 0.1
    src.to_csv(tmp_path / "s.csv", index=False)
    rc, stdout, err = run(capsys, ["station", "import", str(tmp_path / "s.csv"), "--id", "lo", "--out",
                                   str(tmp_path / "d"), "--map", "date=date,precipitation=p,stage=h",
                                   "--rating", "a=12.5,b=1.6,h0=0.15"])
    assert rc == 0, err
    assert "740 values; 3 below the curve (masked); 0 above the highest gauged stage" in stdout
    ts = pd.read_csv(tmp_path / "d" / "timeseries" / "lo.csv")
    assert ts["discharge_vol"].isna().sum() == 3 and ts["stage"].iloc[3] == 0.1
    assert ts["discharge_vol"].iloc[0] == pytest.approx(12.5 * 0.85 ** 1.6, rel=1e-5)


def test_a_rating_table_as_stations_keep_it_reads_and_its_faults_are_one_line(tmp_path, capsys):
    """A rating table as a Chinese station keeps it (GBK, a title row, 水位（m） and 流量(m³/s) with units, rows out of
    order, the stages below the start of flow at Q = 0, a discharge of 1,200) was refused as having no h and Q
    columns, or as not rising; stages below and above it are counted and say the table's range."""
    rows = [(1.0, "12"), (0.1, "0"), (0.3, "0"), (2.0, "50"), (0.5, "3"), (3.0, "1,200")]   # (h m, Q m3/s)
    table = tmp_path / "水位流量关系.csv"
    table.write_bytes(("某站水位流量关系表（2018）\r\n水位（m）,流量(m³/s)\r\n"
                       + "".join(f'{h},"{q}"\r\n' for h, q in rows)).encode("gb18030"))
    src = daily_frame(days=DAYS)
    src["h"] = 1.0
    src.loc[3, "h"] = 0.05    # below the table: masked
    src.loc[4, "h"] = 0.2     # between the Q = 0 rows: no flow
    src.loc[5, "h"] = 0.5     # a pair: exactly its Q
    src.loc[6, "h"] = 3.5     # above the table: the line through (2, 50) and (3, 1200), 1200 + 0.5 * 1150
    src.to_csv(tmp_path / "s.csv", index=False)
    out = tmp_path / "d"
    rc, stdout, err = run(capsys, ["station", "import", str(tmp_path / "s.csv"), "--id", "tb", "--out", str(out),
                                   "--map", "date=date,precipitation=p,stage=h", "--rating", str(table)])
    assert rc == 0, err
    q = pd.read_csv(out / "timeseries" / "tb.csv")["discharge_vol"]
    assert np.isnan(q[3]) and q[4] == 0.0 and q[5] == pytest.approx(3.0) and q[6] == pytest.approx(1775.0)
    assert q[0] == pytest.approx(12.0)
    assert ("740 values; 1 below the curve (masked); 1 above the highest gauged stage (extrapolated along the line "
            "through the table's two highest pairs, flagged in discharge_extrapolated)") in stdout
    assert ("1 of 740 water levels in column 'h' lie below the rating curve (its lowest stage 0.1 m; the lowest of "
            "them 0.05 m)") in stdout + err
    assert ("1 of 740 water levels in column 'h' lie above the highest gauged stage (3 m; the highest of them 3.5 m): "
            "their discharge is extrapolated along the line through the table's two highest pairs") in stdout + err
    assert rating_mod.as_curve(read_station_meta(out, "tb").rating_curve).q.tolist() == [0, 0, 3, 12, 50, 1200]

    def refused(text, name="r.csv"):
        (tmp_path / name).write_text(text, encoding="utf-8")
        with pytest.raises(UsageError) as e:
            rating_mod.parse_rating(str(tmp_path / name))
        assert "\n" not in str(e.value)
        return str(e.value)

    assert "column 'stage (cm)' holds water levels in cm by its header; a rating table is read in m" in refused(
        "stage (cm),Q (m3/s)\n20,0\n50,3\n100,12\n")
    assert "column 'Q (l/s)' holds discharges in l/s by its header; a rating table is read in m3/s" in refused(
        "H (m),Q (l/s)\n0.2,0\n0.5,3000\n1.0,12000\n")
    assert "Q goes from 3 at h=0.5 m to 2 m3/s at h=1 m; Q must rise with h" in refused("h,Q\n0.2,0\n0.5,3\n1.0,2\n")
    assert "Q goes from 3 at h=0.5 m to 3 m3/s at h=1 m" in refused("h,Q\n0.2,0\n0.5,3\n1.0,3\n")
    assert "row 3 has 'h' 0.5 but no 'Q'; every row of a rating table needs both" in refused("h,Q\n0.2,0\n0.5,\n1,9\n")
    # a ';' table with decimal commas, as saved in a German Excel, reads as written
    (tmp_path / "semi.csv").write_text("stage [m];discharge [m3/s]\n0,2;0\n0,5;1,5\n1,0;6,25\n", encoding="utf-8")
    c = rating_mod.parse_rating(str(tmp_path / "semi.csv"))
    assert c.h.tolist() == [0.2, 0.5, 1.0] and c.q.tolist() == [0.0, 1.5, 6.25]


def test_a_water_level_written_as_a_missing_value_code_is_refused_as_a_flows_code_is(tmp_path, capsys):
    """99.9 left in a column of levels on a 50 m datum became, through the curve, an extrapolated flood of
    5·50.4^1.5 = 1789 m3/s (a warning counted it above the gauged range, nothing more); 9999 in a stage column beside
    the discharge was stored as the day's stage. Such a code far from the column's other levels is refused naming
    --na_value, as a flow's is; a level of 99.9 among others of 80-100 m is a level, and is read."""
    src = daily_frame(days=DAYS, seed=6)
    src["h"] = np.round(50.0 + 3.0 * np.random.default_rng(6).random(DAYS), 2)    # 50..53 m above the datum
    out = tmp_path / "d"

    def imp(h, sid, mapping, *flags):
        src.assign(h=h).to_csv(tmp_path / "s.csv", index=False)
        return run(capsys, ["station", "import", str(tmp_path / "s.csv"), "--id", sid, "--out", str(out), "--map",
                            mapping, *flags])

    code = src["h"].copy()
    code[7] = 99.9
    rating = ["--rating", "a=5,b=1.5,h0=49.5,h_max=56"]
    rc, _, err = imp(code, "c1", "date=date,precipitation=p,stage=h", *rating)
    assert rc == 1 and len(err.strip().splitlines()) == 1
    assert ("column 'h' (water level, m) has 1 value(s) like 99.9 (first on 2018-01-08), more than 25 m from its "
            "other levels (50") in err and "name it with --na_value 99.9" in err, err
    rc, _, err = imp(code, "c1", "date=date,precipitation=p,stage=h", *rating, "--na_value", "99.9")
    assert rc == 0, err
    q = pd.read_csv(out / "timeseries" / "c1.csv")["discharge_vol"]
    assert np.isnan(q[7]) and q[0] == pytest.approx(5 * (src["h"][0] - 49.5) ** 1.5, rel=1e-5)
    beside = src["h"].copy()
    beside[7] = -9999
    rc, _, err = imp(beside, "c2", "date=date,precipitation=p,stage=h,discharge=q", "--discharge_unit", "m3/s")
    assert rc == 1 and "has 1 value(s) like -9999 (first on 2018-01-08)" in err and "--na_value -9999" in err, err
    # a big river's levels of 80-100 m: 99.9 is one of them
    high = src["h"] + 30.0 + 16.0 * (np.arange(DAYS) % 2)
    high[7] = 99.9
    rc, _, err = imp(high, "c3", "date=date,precipitation=p,stage=h,discharge=q", "--discharge_unit", "m3/s")
    assert rc == 0, err
    assert pd.read_csv(out / "timeseries" / "c3.csv")["stage"][7] == 99.9
    assert sorted(p.name for p in (out / "timeseries").iterdir()) == ["c1.csv", "c3.csv"]


def test_old_xls_without_xlrd_says_what_to_do(tmp_path, capsys):
    pytest.importorskip("openpyxl")
    try:
        import xlrd  # noqa: F401
        pytest.skip("xlrd is installed: .xls files are read")
    except ImportError:
        pass
    f = tmp_path / "s.xls"
    f.write_bytes(b"\xd0\xcf\x11\xe0" + bytes(100))
    shutil.rmtree(tmp_path / "d", ignore_errors=True)
    rc, _, err = run(capsys, ["station", "import", str(f), "--id", "x", "--out", str(tmp_path / "d"), "--map",
                              "date=d,precipitation=p,discharge=q", "--discharge_unit", "m3/s"])
    assert rc == 1 and "needs xlrd" in err and not (tmp_path / "d").exists()


# ------------------------------------------------------------------------------------------ end to end
def _rainfall_runoff_station(path, curve):
    """An hourly GBK station that measures water level: rain on three gauges drives a linear reservoir
    (hourly), its flow is turned into stage through the inverse of ``curve``; temperature is seasonal."""
    idx = pd.date_range("2018-01-01 08:00", periods=DAYS * 24, freq="h")
    rng = np.random.default_rng(11)
    wet = rng.random(len(idx)) < 0.04
    p = np.where(wet, np.round(rng.gamma(1.5, 2.0, len(idx)), 1), 0.0)
    store, q = 50.0, np.empty(len(idx))
    for i, r in enumerate(p):
        store += r * 2.0
        q[i] = store / 300.0
        store -= q[i]
    h = curve.stage(q + 0.5)
    doy = idx.day_of_year.to_numpy()
    df = pd.DataFrame({"时间": idx.strftime("%Y-%m-%d %H:%M"), "水位(m)": np.round(h, 4),
                       "雨量1": p, "雨量2": np.round(p * 0.8, 2), "雨量3": np.round(p * 1.1, 2),
                       "气温(℃)": np.round(12 + 10 * np.sin(2 * np.pi * (doy - 100) / 365), 1)})
    df.loc[200:230, "雨量3"] = np.nan
    path.write_bytes(df.to_csv(index=False).encode("gbk"))
    return q + 0.5


@pytest.mark.slow
def test_stage_station_end_to_end_import_finetune_predict_forecast(pretrained_ckpt, tmp_path, capsys, monkeypatch):
    """`sca2lstm station import` of an hourly, GBK, stage-only station; fine_train.py; predict.py; forecast:
    the forecast (and the service) shows discharge and water level, and a warning level given as a water level."""
    from sca2lstm.cli import finetune as finetune_cli
    from sca2lstm.cli import forecast as forecast_cli
    from sca2lstm.cli import predict as predict_cli

    curve = rating_mod.parse_rating("a=12.5,b=1.6,h0=0.15,h_max=2.0")
    f = tmp_path / "乡镇站.csv"
    q = _rainfall_runoff_station(f, curve)
    alert_h = round(float(curve.stage([np.quantile(q, 0.9)])[0]), 3)
    data = tmp_path / "data"
    rc, stdout, err = run(capsys, [
        "station", "import", str(f), "--id", "zhen-e2e", "--out", str(data),
        "--map", "date=时间,stage=水位(m),precipitation=雨量1+雨量2+雨量3,temperature=气温(℃)",
        "--precipitation_weights", "0.5,0.3,0.2", "--rating", "a=12.5,b=1.6,h0=0.15,h_max=2.0",
        "--day_start", "08:00", "--timezone", "Asia/Shanghai", "--lat", "30.2",
        "--warning_levels", f"alert={alert_h}", "--levels_in", "stage"])
    assert rc == 0, err
    # Gauge 3 is out for 31 hours over two days: those days are incomplete for it, and the areal rain of
    # both comes from gauges 1 and 2 (weights renormalised).
    assert "GB18030 (GBK)" in stdout and f"{DAYS} days from 1-hour records: {DAYS - 2} complete" in stdout
    assert "2 days with a gauge missing" in stdout
    out = tmp_path / "ft"
    assert finetune_cli.main(["--target_basin", "zhen-e2e", "--pretrained_model", str(pretrained_ckpt), "--epochs",
                              "1", "--data_dir", str(data), "--output_dir", str(out), "--quiet"]) == 0
    model = next(out.glob("basin_zhen-e2e/*/best_model_basin_zhen-e2e.pth"))
    assert predict_cli.main(["--model", str(model), "--basin", "zhen-e2e", "--data_dir", str(data)]) == 0
    capsys.readouterr()
    fc_dir = tmp_path / "fc"
    from sca2lstm.evaluation import plots
    drawn = {}
    fan_chart = plots.plot_fan_chart
    monkeypatch.setattr(plots, "plot_fan_chart", lambda *a, **k: drawn.update(k) or fan_chart(*a, **k))
    rc = forecast_cli.main(["--model", str(model), "--basin", "zhen-e2e", "--data_dir", str(data), "--leads", "3",
                            "--output_dir", str(fc_dir), "--format", "json"])
    stdout, err = capsys.readouterr()
    assert rc == 0, err
    to_stage, to_flow = drawn["stage_axis"]  # the fan chart has a water-level axis by the station's curve
    q = float(pd.read_csv(next(fc_dir.rglob("forecast.csv")))["median"].max())
    assert q > 0 and curve.discharge(np.array([to_stage(q)])).q[0] == pytest.approx(q, rel=1e-3)
    assert "m (water level)" in stdout and f"(water level {alert_h:g} m)" in stdout
    doc = json.loads(next(fc_dir.rglob("forecast.json")).read_text(encoding="utf-8"))
    assert doc["units"] == "m3/s" and doc["stage_units"] == "m" and "stage_median" in doc["forecast"][0]
    table = pd.read_csv(next(fc_dir.rglob("forecast.csv")))
    for col in ("median", "stage_median", "stage_q05", "stage_q95", "p_exceed_alert"):
        assert col in table.columns, col
    # The water levels are the discharges through the station's curve, quantile by quantile.
    # forecast.csv holds 4 decimals: a stage off by 5e-5 m moves Q by dQ/dh·5e-5, the median itself by 5e-5.
    h = table["stage_median"].to_numpy()
    slack = 12.5 * 1.6 * (h - 0.15) ** 0.6 * 5e-5 + 5e-5
    assert (np.abs(curve.discharge(h).q - table["median"].to_numpy()) <= slack * 1.01).all()
    assert (table["stage_q05"] <= table["stage_median"] + 1e-12).all()
    assert (table["stage_median"] <= table["stage_q95"] + 1e-12).all()
    report = next(fc_dir.rglob("report.html")).read_text(encoding="utf-8")
    assert "The <code>stage_*</code> columns are the same quantiles as water levels, in m" in report

    # The service answers with the same water levels beside the flows.
    from fastapi.testclient import TestClient
    from serve_helpers import forecaster

    from sca2lstm.serve.app import create_app

    app = create_app(data, tmp_path / "serve.sqlite", forecaster(model, data), token=None)
    with TestClient(app) as client:
        got = client.get("/stations/zhen-e2e/forecast", params={"leads": 3})
    assert got.status_code == 200, got.text
    rows = got.json()["forecast"]
    assert [r["lead_days"] for r in rows] == [1, 2, 3]
    for r in rows:
        assert r["stage_median"] == pytest.approx(float(curve.stage([r["median"]])[0]), abs=1e-6)
        assert r["stage_q05"] <= r["stage_median"] <= r["stage_q95"]

def test_spec_yaml_takes_the_new_options(tmp_path, capsys):
    """--spec carries the rating curve, levels in stage, the day rule and the encoding like the flags."""
    import yaml

    src = daily_frame(days=DAYS)
    src["水位"] = 1.15
    src.rename(columns={"date": "日期", "p": "雨量"}).to_csv(tmp_path / "s.csv", index=False, encoding="gbk")
    spec = {"file": "s.csv", "id": "yaml-1", "map": {"date": "日期", "precipitation": "雨量", "stage": "水位"},
            "rating": "a=12.5,b=1.6,h0=0.15", "warning_levels": {"alert": 1.5}, "levels_in": "stage",
            "encoding": "gbk", "day_start": "08:00"}
    (tmp_path / "st.yaml").write_text(yaml.safe_dump(spec, allow_unicode=True), encoding="utf-8")
    rc, stdout, err = run(capsys, ["station", "import", "--spec", str(tmp_path / "st.yaml"), "--out",
                                   str(tmp_path / "d")])
    assert rc == 0, err
    ts = pd.read_csv(tmp_path / "d" / "timeseries" / "yaml-1.csv")
    np.testing.assert_allclose(ts["discharge_vol"], 12.5, rtol=1e-6)   # 12.5·(1.15 − 0.15)^1.6
    assert ts["date"].iloc[0] == "2018-01-01"   # a date without a time names its day, whatever the day start
    meta = read_station_meta(tmp_path / "d", "yaml-1")
    assert meta.warning_levels["alert"].unit == "m" and meta.day_start == "08:00"
    assert "encoding GB18030 (GBK) (given" in stdout or "encoding GBK (given" in stdout


def test_warning_sentence_names_a_level_given_as_a_water_level():
    from sca2lstm.evaluation.levels import Level
    from sca2lstm.evaluation.reforecast import Warnings, warning_sentence

    c = rating_mod.parse_rating("a=12.5,b=1.6,h0=0.15")
    alert = Level("alert", rating_mod.level_discharge(c, 2.5), "station metadata (water level)", stage=2.5,
                  warn_probability=0.3)
    table = pd.DataFrame({"valid_date": pd.to_datetime(["2020-06-02", "2020-06-03"]), "p_exceed_alert": [0.1, 0.6]})
    text = warning_sentence("zhen-01", {"alert": 2}, Warnings({"alert": alert}), table)
    assert f"alert ({12.5 * 2.35 ** 1.6:.1f} m3/s, water level 2.5 m) from lead 2 (2020-06-03, P up to 60%)" in text


def test_a_semicolon_file_read_with_the_default_comma_names_the_separator_to_give(tmp_path, capsys):
    """';'-separated with decimal commas, as European and some Chinese spreadsheets save: the default ','
    splits the numbers instead of the fields; the refusal says which --sep and --decimal read it."""
    src = daily_frame()
    lines = ["日期;降雨;流量"] + [f"{d:%Y-%m-%d};{str(p).replace('.', ',')};{str(q).replace('.', ',')}"
                                 for d, p, q in src[["date", "p", "q"]].itertuples(index=False)]
    f = tmp_path / "semi.csv"
    f.write_text("\n".join(lines) + "\n", encoding="utf-8")
    argv = ["station", "import", str(f), "--id", "s1", "--out", str(tmp_path / "o"), "--map",
            "date=日期,precipitation=降雨,discharge=流量", "--discharge_unit", "m3/s"]
    rc, _, err = run(capsys, argv)
    assert rc == 1 and "its lines hold ';': --sep ';', and --decimal ," in err
    rc, _, err = run(capsys, [*argv, "--sep", ";", "--decimal", ","])
    assert rc == 0, err
    np.testing.assert_allclose(pd.read_csv(tmp_path / "o" / "timeseries" / "s1.csv")["discharge_vol"], src["q"])


def _grouped_flows(src: pd.DataFrame, tmp_path, cells: dict, sep=",", decimal=".", name="grouped.csv"):
    """``src`` as a CSV whose flow cells at the rows of ``cells`` (0-based day: text) are written as given."""
    num = lambda v: f"{v:g}".replace(".", decimal)  # noqa: E731
    q = [cells.get(i, num(v)) for i, v in enumerate(src["q"])]
    quote = lambda c: f'"{c}"' if sep in c else c  # noqa: E731
    lines = [sep.join(["date", "p", "q"])] + [sep.join([f"{d:%Y-%m-%d}", num(p), quote(c)])
                                              for d, p, c in zip(src["date"], src["p"], q)]
    f = tmp_path / name
    f.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return f


def test_numbers_with_thousands_grouped_are_read_where_the_cells_show_it_and_refused_where_they_do_not(tmp_path,
                                                                                                       capsys):
    """1,234.5 (or 1.234,5 with --decimal ,) was refused as no number, and a lone 1,234 was refused as a decimal
    comma, advising --decimal , which reads it 1000 times too small. A grouping the cell shows is read; a lone
    1,234 in a column of whole numbers, 1234 or 1.234, is refused naming the column, row, value and both flags, and
    --thousands , reads it."""
    src = daily_frame(seed=4)
    out = tmp_path / "o"
    argv = lambda f, sid, *flags: ["station", "import", str(f), "--id", sid, "--out", str(out), "--map",  # noqa: E731
                                   "date=date,precipitation=p,discharge=q", "--discharge_unit", "m3/s", *flags]

    def flows(sid):
        return pd.read_csv(out / "timeseries" / f"{sid}.csv")["discharge_vol"]

    # a decimal part, or several groups, show the grouping: 1234.5 and 1000000 (days 3 and 4: rows 5 and 6)
    f = _grouped_flows(src, tmp_path, {3: "1,234.5", 4: "1,000,000"})
    rc, _, err = run(capsys, argv(f, "g1"))
    assert rc == 0, err
    q = flows("g1")
    assert q[3] == 1234.5 and q[4] == 1e6
    np.testing.assert_allclose(q.drop([3, 4]), src["q"].drop([3, 4]))
    # a lone group in a column written with decimal points: the ',' is no decimal mark there
    f = _grouped_flows(src, tmp_path, {3: "1,234"})
    rc, _, err = run(capsys, argv(f, "g2"))
    assert rc == 0, err
    assert flows("g2")[3] == 1234.0
    # the same in a column of whole numbers: 1234 or 1.234 cannot be told
    whole = src.assign(q=np.round(src["q"] * 100))
    f = _grouped_flows(whole, tmp_path, {3: "1,234"}, name="whole.csv")
    rc, _, err = run(capsys, argv(f, "g3"))
    assert rc == 1 and len(err.strip().splitlines()) == 1
    assert ("column 'q' (discharge, m3/s) has '1,234' (row 5): 1234 with ',' grouping thousands, or 1.234 with a "
            "decimal comma? the column shows neither: give --thousands , or --decimal ,") in err, err
    rc, _, err = run(capsys, argv(f, "g3", "--thousands", ","))
    assert rc == 0, err
    assert flows("g3")[3] == 1234.0
    # 1.234,5 without --decimal , is a decimal comma, named with its row
    f = _grouped_flows(src, tmp_path, {3: "1.234,5"})
    rc, _, err = run(capsys, argv(f, "g4"))
    assert rc == 1 and "has a decimal comma ('1.234,5', row 5); add --decimal ," in err, err
    # with --decimal , a '.' groups: 1.234,5 and 1 234,5 are 1234.5; 1,234.5 is written with a decimal point
    f = _grouped_flows(src, tmp_path, {3: "1.234,5", 4: "1 234,5"}, sep=";", decimal=",")
    rc, _, err = run(capsys, argv(f, "g5", "--sep", ";", "--decimal", ","))
    assert rc == 0, err
    assert flows("g5")[3] == 1234.5 and flows("g5")[4] == 1234.5
    f = _grouped_flows(src, tmp_path, {3: "1,234.5"}, sep=";", decimal=",")
    rc, _, err = run(capsys, argv(f, "g6", "--sep", ";", "--decimal", ","))
    assert rc == 1 and "has '1,234.5' (row 5): a '.' that does not group thousands, but --decimal , was given" in err
    # a grouping --thousands names but the value does not follow; a mark that is the decimal mark
    f = _grouped_flows(whole, tmp_path, {3: "12,34"}, name="whole.csv")
    rc, _, err = run(capsys, argv(f, "g7", "--thousands", ","))
    assert rc == 1 and "has '12,34' (row 5): --thousands ',' groups thousands in threes" in err, err
    rc, _, err = run(capsys, argv(f, "g7", "--thousands", "."))
    assert rc == 2 and "--thousands '.' equals --decimal" in err
    assert sorted(p.name for p in (out / "timeseries").iterdir()) == ["g1.csv", "g2.csv", "g3.csv", "g5.csv"]
    assert json.loads((out / "meta" / "g3.json").read_text(encoding="utf-8"))["thousands"] == ","


def test_an_infinite_value_is_refused_naming_its_row_not_stored_as_a_flow(tmp_path, capsys):
    """'inf' (as a logger program writes a division by zero) was read as a number and an infinite flow written to
    the station's timeseries; it is refused naming the cell and its row, and --na_value inf reads it as missing."""
    src = daily_frame(seed=7)
    f = _grouped_flows(src, tmp_path, {3: "inf"})
    argv = ["station", "import", str(f), "--id", "i1", "--out", str(tmp_path / "o"), "--map",
            "date=date,precipitation=p,discharge=q", "--discharge_unit", "m3/s"]
    rc, _, err = run(capsys, argv)
    assert rc == 1 and len(err.strip().splitlines()) == 1
    assert "column 'q' (discharge, m3/s) has 'inf' (row 5), not a finite number" in err and "--na_value inf" in err
    assert not (tmp_path / "o").exists()
    rc, _, err = run(capsys, [*argv, "--na_value", "inf"])
    assert rc == 0, err
    q = pd.read_csv(tmp_path / "o" / "timeseries" / "i1.csv")["discharge_vol"]
    assert np.isnan(q[3]) and np.isfinite(q.drop(3)).all()


def test_decimal_comma_with_a_spreadsheet_reads_its_text_cells_and_leaves_its_number_cells_as_they_are(tmp_path,
                                                                                                        capsys):
    """--decimal , with an .xlsx was refused as equal to --sep (which a sheet does not read), and a number cell of
    1.234 would then have read as 1234 (its text has a '.', taken for a thousands mark). Number cells are numbers
    whatever --decimal says; text cells holding 12,5 are read by it; a flag that changes nothing says so."""
    import openpyxl

    src = daily_frame(seed=5)

    def sheet(name, cells):
        wb = openpyxl.Workbook()
        ws = wb.active
        ws.append(["日期", "雨量", "流量"])
        for i, (d, p, q) in enumerate(src[["date", "p", "q"]].itertuples(index=False)):
            ws.append([d.to_pydatetime(), p, cells.get(i, q)])
        wb.save(tmp_path / name)
        return tmp_path / name

    out = tmp_path / "o"
    argv = lambda f, sid, *flags: ["station", "import", str(f), "--id", sid, "--out", str(out), "--map",  # noqa: E731
                                   "date=日期,precipitation=雨量,discharge=流量", "--discharge_unit", "m3/s", *flags]
    f = sheet("mixed.xlsx", {3: 1.234, 4: "12,5", 5: "1.234,5"})   # a number cell, and text typed in German Excel
    rc, _, err = run(capsys, argv(f, "x1"))
    assert rc == 1 and "has a decimal comma ('12,5', row 6); add --decimal ," in err, err
    rc, stdout, err = run(capsys, argv(f, "x1", "--decimal", ","))
    assert rc == 0, err
    q = pd.read_csv(out / "timeseries" / "x1.csv")["discharge_vol"]
    assert q[3] == 1.234 and q[4] == 12.5 and q[5] == 1234.5
    np.testing.assert_allclose(q.drop([3, 4, 5]), src["q"].drop([3, 4, 5]))
    assert "--decimal ,: read in the 2 value cell(s) of sheet 'Sheet' holding text" in stdout
    f = sheet("numbers.xlsx", {3: 1.234})
    rc, stdout, err = run(capsys, argv(f, "x2", "--decimal", ","))
    assert rc == 0, err
    assert "--decimal , changes nothing for numbers.xlsx: every value of sheet 'Sheet' is a number cell" in stdout + err
    q = pd.read_csv(out / "timeseries" / "x2.csv")["discharge_vol"]
    assert q[3] == 1.234
    np.testing.assert_allclose(q.drop([3]), src["q"].drop([3]))
    # a CSV still needs a separator other than its decimal mark
    g = tmp_path / "plain.csv"
    src.to_csv(g, index=False)
    rc, _, err = run(capsys, argv(g, "x3", "--decimal", ","))
    assert rc == 2 and "--decimal ',' equals --sep" in err


def test_a_bad_cell_below_blank_rows_is_named_by_its_row_in_the_file(tmp_path, capsys):
    """Blank rows are dropped as the file is read; the rows under them are still named by the row the user sees
    (they were named one row too early per blank row above), for a bad date and a bad number, CSV and xlsx."""
    import openpyxl

    src = daily_frame(seed=3)
    argv = ["station", "import", "F", "--id", "b1", "--out", str(tmp_path / "o"), "--map",
            "date=日期,precipitation=雨量,discharge=流量", "--discharge_unit", "m3/s"]
    lines = ["日期,雨量,流量"] + [f"{d:%Y-%m-%d},{p},{q}" for d, p, q in src[["date", "p", "q"]].itertuples(index=False)]
    lines.insert(5, "")                                # a blank line 6, and another, line 9
    lines.insert(8, "")
    lines[29] = lines[29].rsplit(",", 1)[0] + ",缺测"   # line 30 of the file
    f = tmp_path / "blank.csv"
    f.write_text("\n".join(lines) + "\n", encoding="utf-8")
    argv[2] = str(f)
    rc, _, err = run(capsys, argv)
    assert rc == 1 and "has a non-numeric value '缺测' (row 30)" in err, err
    lines[29] = "2018-13-40," + lines[29].split(",", 1)[1]
    f.write_text("\n".join(lines) + "\n", encoding="utf-8")
    rc, _, err = run(capsys, argv)
    assert rc == 1 and "'2018-13-40' (row 30)" in err, err
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["日期", "雨量", "流量"])
    for i, (d, p, q) in enumerate(src[["date", "p", "q"]].itertuples(index=False)):
        if i in (4, 6):
            ws.append([])                                # blank sheet rows 6 and 9
        ws.append([d.to_pydatetime(), p, q])
    ws.cell(row=31, column=3).value = "—"
    g = tmp_path / "blank.xlsx"
    wb.save(g)
    argv[2] = str(g)
    rc, _, err = run(capsys, argv)
    assert rc == 1 and "has a non-numeric value '—' (row 31)" in err, err
    assert not (tmp_path / "o").exists()


def test_a_cell_that_is_no_number_is_named_by_its_row_below_title_and_units_rows(tmp_path, capsys):
    """A '—' or '缺测' cell is refused naming the row the user sees in Excel or the editor, counted over the
    title, header and units rows above it (not as if the header were the file's first row)."""
    import openpyxl

    src = daily_frame(seed=2)
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["某某水文站逐日水文要素表"])        # row 1: a title
    ws.append(["日期", "雨量", "流量"])             # row 2: the header
    ws.append([None, "(mm)", "(m3/s)"])           # row 3: a units row
    for d, p, q in src[["date", "p", "q"]].itertuples(index=False):
        ws.append([d.to_pydatetime(), p, q])      # the days from row 4
    ws.cell(row=24, column=3).value = "—"         # the 21st day's flow
    f = tmp_path / "站.xlsx"
    wb.save(f)
    argv = ["station", "import", str(f), "--id", "x1", "--out", str(tmp_path / "o"), "--map",
            "date=日期,precipitation=雨量,discharge=流量", "--discharge_unit", "m3/s"]
    rc, _, err = run(capsys, argv)
    assert rc == 1 and "has a non-numeric value '—' (row 24)" in err, err
    # the same in a GBK CSV with a units row: the file's line
    lines = ["日期,雨量,流量", ",(mm),(m3/s)"] + [f"{d:%Y-%m-%d},{p},{q}" for d, p, q in
                                                  src[["date", "p", "q"]].itertuples(index=False)]
    lines[9] = lines[9].rsplit(",", 1)[0] + ",缺测"   # line 10 of the file
    g = tmp_path / "站.csv"
    g.write_bytes(("\r\n".join(lines) + "\r\n").encode("gbk"))
    rc, _, err = run(capsys, [*argv[:2], str(g), *argv[3:]])
    assert rc == 1 and "has a non-numeric value '缺测' (row 10)" in err, err
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("header,unit_row,flags,text", [
    ("流量(L/s)", None, ["--discharge_unit", "m3/s"],
     "column '流量(L/s)' holds discharge in l/s by its header, but --discharge_unit is m3/s: give --discharge_unit l/s"),
    ("流量（m³/s）", None, ["--discharge_unit", "l/s"], "give --discharge_unit m3/s"),
    ("流量", "(m3/s)", ["--discharge_unit", "l/s"],
     "column '流量' holds discharge in m3/s by its units row, but --discharge_unit is l/s"),
    ("流量(千m3/d)", None, ["--discharge_unit", "m3/s"], "the import reads m3/s, l/s or mm/d (--discharge_unit)"),
], ids=["l/s-header-read-as-m3/s", "m3/s-header-read-as-l/s", "units-row", "thousand-m3-per-day"])
def test_a_unit_the_header_names_against_discharge_unit_is_refused(header, unit_row, flags, text, tmp_path, capsys):
    """A flow column whose header (or units row) names another unit than --discharge_unit was read 1000 times
    off without a word when no --area_km2 let the water balance catch it: it is refused, naming the flag."""
    src = daily_frame(seed=3)
    lines = [f"日期,雨量(mm),{header}"] + ([f",(mm),{unit_row}"] if unit_row else [])
    lines += [f"{d:%Y-%m-%d},{p},{q}" for d, p, q in src[["date", "p", "q"]].itertuples(index=False)]
    f = tmp_path / "站.csv"
    f.write_bytes(("\r\n".join(lines) + "\r\n").encode("gb18030"))
    argv = ["station", "import", str(f), "--id", "u1", "--out", str(tmp_path / "o"), "--map",
            f"date=日期,precipitation=雨量(mm),discharge={header}"]
    rc, _, err = run(capsys, [*argv, *flags])
    assert rc == 1 and len(err.strip().splitlines()) == 1 and text in err, err
    assert not (tmp_path / "o").exists()
    if "give --discharge_unit" in text:  # the flag it names reads the file
        rc, _, err = run(capsys, [*argv, "--discharge_unit", text.rsplit(" ", 1)[1]])
        assert rc == 0, err
        q = pd.read_csv(tmp_path / "o" / "timeseries" / "u1.csv")["discharge_vol"]
        np.testing.assert_allclose(q, src["q"] / (1000.0 if "l/s" in text.rsplit(" ", 1)[1] else 1.0))


def test_rain_in_cm_and_stages_in_cm_by_their_headers_are_refused(tmp_path, capsys):
    """降水量(cm) is a unit the import does not read; 水位(cm) of a shallow stream stays under the depth check. Both
    are refused by their headers, naming the column to convert."""
    src = daily_frame(seed=4)
    f = tmp_path / "站.csv"
    pd.DataFrame({"日期": src["date"].dt.strftime("%Y-%m-%d"), "降水量(cm)": (src["p"] / 10).round(2),
                  "雨量": src["p"], "流量": src["q"], "水位(cm)": (5 + src["q"] / 5).round(1)}).to_csv(
        f, index=False, encoding="gbk")
    out = tmp_path / "o"
    rc, _, err = run(capsys, ["station", "import", str(f), "--id", "r1", "--out", str(out), "--map",
                              "date=日期,precipitation=降水量(cm),discharge=流量", "--discharge_unit", "m3/s"])
    assert rc == 1 and "column '降水量(cm)' holds precipitation in cm by its header; the import reads mm, 0.1 mm " \
                       "or an intensity in mm/h (--precipitation_unit): convert the column" in err, err
    rc, _, err = run(capsys, ["station", "import", str(f), "--id", "r2", "--out", str(out), "--map",
                              "date=日期,precipitation=雨量,stage=水位(cm)", "--rating", "a=5,b=1.6,h0=0.1"])
    assert rc == 1 and "column '水位(cm)' holds water levels in cm by its header" in err, err
    assert not out.exists()


@pytest.mark.parametrize("key, header, unit_row, text", [
    ("pet", "蒸发量(0.1mm)", None, "column '蒸发量(0.1mm)' holds PET in 0.1mm by its header; the import reads PET in mm"),
    ("pet", "蒸发量", "(0.1mm)", "column '蒸发量' holds PET in 0.1mm by its units row; the import reads PET in mm"),
    ("temperature", "气温(0.1℃)", None, "column '气温(0.1℃)' holds temperature in 0.1°c by its header; the import "
                                         "reads temperature in degrees Celsius: convert the column to °C"),
    ("temperature", "Temp (°F)", None, "column 'Temp (°F)' holds temperature in °f by its header"),
])
def test_pet_or_temperature_in_a_unit_the_header_names_is_refused_not_read_as_mm_or_degc(key, header, unit_row, text,
                                                                                         tmp_path, capsys):
    """PET in 0.1 mm (蒸发量(0.1mm), as rain is stored) and temperatures in 0.1 degC or F lie within what the checks
    allow and were read ten times too large without a word; by their header or units row they are refused, naming
    the column to convert, nothing written. The same column headed in mm or ℃ imports."""
    src = daily_frame(seed=6)
    tenths = (src["t"] * 10).round().clip(-550, 550).astype(int) if key == "temperature" else np.resize([25, 32, 41, 18],
                                                                                                       DAYS)
    f = tmp_path / "站.csv"
    out = tmp_path / "o"

    def imp(header, unit_row, values):
        lines = [f"日期,雨量,流量,{header}"] + ([f",,,{unit_row}"] if unit_row else [])
        lines += [f"{d:%Y-%m-%d},{p},{q},{v:g}" for d, p, q, v in zip(src["date"], src["p"], src["q"], values)]
        f.write_bytes(("\r\n".join(lines) + "\r\n").encode("gb18030"))
        return run(capsys, ["station", "import", str(f), "--id", "u1", "--out", str(out), "--discharge_unit", "m3/s",
                            "--map", f"date=日期,precipitation=雨量,discharge=流量,{key}={header}"])

    rc, _, err = imp(header, unit_row, tenths)
    assert rc == 1 and text in err and len(err.strip().splitlines()) == 1, err
    assert not out.exists()
    rc, _, err = imp("蒸发量(mm)" if key == "pet" else "气温(℃)", unit_row and "(mm)", tenths / 10)
    assert rc == 0, err


# ------------------------------------------------------------------------------------------ rain in 0.1 mm
#: Ten days of rain in 0.1 mm, as Chinese hydrological systems store it (integers): 17.0 mm in all, 1.7 mm a day,
#: 621 mm a year; read as mm, 6209 mm a year.
TENTHS = [0, 0, 35, 120, 5, 0, 0, 0, 10, 0]


def _tenths_station(path, header="降水量", unit_row=None, gauges=1):
    """A GB18030 CSV of DAYS days: rain ``TENTHS`` repeated in column ``header`` (and, for ``gauges=2``, the same
    rain in mm in column 雨量1 beside it) and daily flows; returns the rain in 0.1 mm as written."""
    src = daily_frame(seed=5)
    rain = np.resize(TENTHS, DAYS)
    lines = [f"日期,{header},流量" if gauges == 1 else f"日期,雨量1,{header},流量"]
    lines += [f",{unit_row},"] if unit_row else []
    lines += [f"{d:%Y-%m-%d},{r},{q}" if gauges == 1 else f"{d:%Y-%m-%d},{r / 10:g},{r},{q}"
              for d, r, q in zip(src["date"], rain, src["q"])]
    path.write_bytes(("\r\n".join(lines) + "\r\n").encode("gb18030"))
    return rain


def test_rain_in_tenths_of_a_mm_is_read_with_the_flag_and_refused_as_implausible_without(tmp_path, capsys):
    """Integer rain in 0.1 mm read as mm was ten times the rain (false floods): with --precipitation_unit 0.1mm it is
    divided by 10 and the unit is stored; without, its 6209 mm a year is refused in one line, nothing written; a
    station that really is that wet imports as given with --precipitation_unit mm."""
    f = tmp_path / "站.csv"
    rain = _tenths_station(f)
    out = tmp_path / "o"
    argv = ["station", "import", str(f), "--out", str(out), "--map", "date=日期,precipitation=降水量,discharge=流量",
            "--discharge_unit", "m3/s"]
    rc, _, err = run(capsys, [*argv, "--id", "t0"])
    assert rc == 1 and len(err.strip().splitlines()) == 1, err
    assert ("column '降水量' (precipitation): mean annual total 6209 mm over 2.0 years of values, more than almost any "
            "rain gauge records; if the column is in 0.1 mm give --precipitation_unit 0.1mm, if the station really is "
            "that wet give --precipitation_unit mm") in err, err
    assert not out.exists()

    rc, stdout, err = run(capsys, [*argv, "--id", "t1", "--precipitation_unit", "0.1mm"])
    assert rc == 0, err
    p = pd.read_csv(out / "timeseries" / "t1.csv")["precipitation"]
    assert p[:10].tolist() == [0.0, 0.0, 3.5, 12.0, 0.5, 0.0, 0.0, 0.0, 1.0, 0.0]
    np.testing.assert_allclose(p, rain / 10.0)
    assert "precipitation: 0.1 mm -> mm (/ 10)" in stdout
    meta = read_station_meta(out, "t1")  # the key is declared: the file reads back
    assert json.loads((out / "meta" / "t1.json").read_text(encoding="utf-8"))["precipitation_unit"] == "0.1mm"
    assert meta.to_dict()["precipitation_unit"] == "0.1mm"

    rc, _, err = run(capsys, [*argv, "--id", "t2", "--precipitation_unit", "mm"])
    assert rc == 0, err
    np.testing.assert_allclose(pd.read_csv(out / "timeseries" / "t2.csv")["precipitation"], rain)
    assert read_station_meta(out, "t2").to_dict()["precipitation_unit"] == "mm"

    # the check is per gauge: rain in mm beside a gauge in 0.1 mm averages 3415 mm a year, the gauge is named
    g = tmp_path / "两站.csv"
    _tenths_station(g, gauges=2)
    rc, _, err = run(capsys, ["station", "import", str(g), "--id", "t3", "--out", str(tmp_path / "o3"), "--map",
                              "date=日期,precipitation=雨量1+降水量,discharge=流量", "--discharge_unit", "m3/s",
                              "--precipitation_weights", "0.5,0.5"])
    assert rc == 1 and "column '降水量' (precipitation): mean annual total 6209 mm" in err, err
    assert not (tmp_path / "o3").exists()


def test_every_gauge_in_tenths_of_a_mm_is_divided_and_the_checks_speak_mm(tmp_path, capsys):
    """With --precipitation_unit 0.1mm each gauge of P1+P2 is divided by 10 before the gauges are combined, and a
    value no storm gives is named in mm and as the file writes it (a missing-value code as written)."""
    f = tmp_path / "站.csv"
    rain = np.resize(TENTHS, DAYS)
    src = daily_frame(seed=6)
    frame = pd.DataFrame({"日期": src["date"].dt.strftime("%Y-%m-%d"), "P1": rain, "P2": rain[::-1], "流量": src["q"]})
    frame.to_csv(f, index=False)
    argv = ["station", "import", str(f), "--id", "g1", "--out", str(tmp_path / "o"), "--map",
            "date=日期,precipitation=P1+P2,discharge=流量", "--discharge_unit", "m3/s", "--precipitation_weights",
            "0.75,0.25", "--precipitation_unit", "0.1mm"]
    rc, _, err = run(capsys, argv)
    assert rc == 0, err
    p = pd.read_csv(tmp_path / "o" / "timeseries" / "g1.csv")["precipitation"]
    # P1 0, 0, 35, 120 and P2 (reversed: 0, 10, 0, 0) as written, each in 0.1 mm
    np.testing.assert_allclose(p[:4], [0.0, 0.25 * 1.0, 0.75 * 3.5, 0.75 * 12.0])
    np.testing.assert_allclose(p, 0.75 * rain / 10 + 0.25 * rain[::-1] / 10)
    frame.loc[7, "P2"] = 25000    # 2500 mm in a day
    frame.to_csv(f, index=False)
    rc, _, err = run(capsys, [*argv, "--overwrite"])
    assert rc == 1 and "column 'P2' (precipitation, 0.1 mm) has 2500 mm on 2018-01-08 (25000 as written, in 0.1 mm): " \
                       "no rain is that large" in err and "0.1 mm?" not in err, err
    frame.loc[7, "P2"] = 9999     # a missing-value code, named as the file writes it
    frame.to_csv(f, index=False)
    rc, _, err = run(capsys, [*argv, "--overwrite"])
    assert rc == 1 and "value(s) like 9999 (first on 2018-01-08)" in err and "--na_value 9999 " in err, err
    rc, _, err = run(capsys, [*argv, "--overwrite", "--na_value", "9999"])
    assert rc == 0, err
    frame.loc[7, "P2"] = 999      # like a code as written, but 99.9 mm: a wet day, read as one
    frame.to_csv(f, index=False)
    rc, _, err = run(capsys, [*argv, "--overwrite"])
    assert rc == 0, err
    p = pd.read_csv(tmp_path / "o" / "timeseries" / "g1.csv")["precipitation"]
    assert p[7] == pytest.approx(0.75 * 0.0 + 0.25 * 99.9)


@pytest.mark.parametrize("header,unit_row", [("降水量(0.1mm)", None), ("降水量（0.1 mm）", None), ("降水量", "(0.1毫米)")],
                         ids=["header", "full-width-header-with-a-space", "units-row"])
def test_rain_in_tenths_of_a_mm_by_its_header_needs_the_flag_and_then_imports(header, unit_row, tmp_path, capsys):
    """降水量(0.1mm), refused before as a unit the import did not read, is read as 0.1 mm when the flag says so too;
    without the flag (or against it) the refusal names the flag to give, as for discharge."""
    f = tmp_path / "站.csv"
    rain = _tenths_station(f, header, unit_row)
    out = tmp_path / "o"
    argv = ["station", "import", str(f), "--id", "h1", "--out", str(out), "--map",
            f"date=日期,precipitation={header},discharge=流量", "--discharge_unit", "m3/s"]
    where = "units row" if unit_row else "header"
    for flags, said in (([], "not given (mm)"), (["--precipitation_unit", "mm"], "is mm")):
        rc, _, err = run(capsys, [*argv, *flags])
        assert rc == 1 and len(err.strip().splitlines()) == 1, err
        assert f"column '{header}' holds precipitation in 0.1" in err and f"by its {where}, but --precipitation_unit " \
               f"{said}: give --precipitation_unit 0.1mm" in err, err
        assert not out.exists()
    rc, _, err = run(capsys, [*argv, "--precipitation_unit", "0.1mm"])
    assert rc == 0, err
    np.testing.assert_allclose(pd.read_csv(out / "timeseries" / "h1.csv")["precipitation"], rain / 10.0)


@pytest.mark.parametrize("header,unit_row", [("降水量(mm)", None), ("降水量", "(mm)")], ids=["header", "units-row"])
def test_rain_in_tenths_under_a_header_saying_mm_is_refused_as_implausible_with_a_path_that_works(
        header, unit_row, tmp_path, capsys):
    """A template's 降水量(mm) over integers in 0.1 mm was read as mm unchecked: ten times the rain. Its 6209 mm a year
    is now refused as an unlabelled column's is, in one line that says the file says mm and gives the two ways that
    import: the unit corrected in the file with --precipitation_unit 0.1mm (the flag alone is refused against the
    file's mm), or --precipitation_unit mm for a station that really is that wet."""
    f = tmp_path / "站.csv"
    rain = _tenths_station(f, header, unit_row)   # 6209 mm a year read as mm
    out = tmp_path / "o"
    argv = ["station", "import", str(f), "--id", "m1", "--out", str(out), "--map",
            f"date=日期,precipitation={header},discharge=流量", "--discharge_unit", "m3/s"]
    where = "units row" if unit_row else "header"
    rc, _, err = run(capsys, argv)
    assert rc == 1 and len(err.strip().splitlines()) == 1, err
    assert (f"column '{header}' (precipitation): mean annual total 6209 mm over 2.0 years of values, more than almost "
            f"any rain gauge records, though its {where} says mm; if the column is in 0.1 mm correct its {where} to "
            "(0.1mm)" + (" (and the column's name in --map)" if where == "header" else "")
            + " and give --precipitation_unit 0.1mm, if the station really is that wet give --precipitation_unit mm"
            ) in err, err
    assert not out.exists()
    # the flag of tenths alone contradicts the file, as before
    rc, _, err = run(capsys, [*argv, "--precipitation_unit", "0.1mm"])
    assert rc == 1 and f"holds precipitation in mm by its {where}, but --precipitation_unit is 0.1mm" in err, err
    assert not out.exists()
    # the two paths the refusal gives: the station really that wet ...
    rc, _, err = run(capsys, [*argv, "--precipitation_unit", "mm"])
    assert rc == 0, err
    np.testing.assert_allclose(pd.read_csv(out / "timeseries" / "m1.csv")["precipitation"], rain)
    # ... or the file's unit corrected, with the flag of tenths
    fixed = "降水量(0.1mm)" if unit_row is None else header
    _tenths_station(f, fixed, None if unit_row is None else "(0.1mm)")
    rc, _, err = run(capsys, ["station", "import", str(f), "--id", "m2", "--out", str(out), "--map",
                              f"date=日期,precipitation={fixed},discharge=流量", "--discharge_unit", "m3/s",
                              "--precipitation_unit", "0.1mm"])
    assert rc == 0, err
    np.testing.assert_allclose(pd.read_csv(out / "timeseries" / "m2.csv")["precipitation"], rain / 10.0)


def test_precipitation_unit_from_a_spec_and_an_unknown_one(tmp_path, capsys):
    """The spec key precipitation_unit reads as the flag does; a unit it does not know is one line naming it."""
    import yaml

    f = tmp_path / "站.csv"
    rain = _tenths_station(f)
    spec = {"file": "站.csv", "id": "y1", "map": {"date": "日期", "precipitation": "降水量", "discharge": "流量"},
            "discharge_unit": "m3/s", "precipitation_unit": "0.1mm"}
    (tmp_path / "st.yaml").write_text(yaml.safe_dump(spec, allow_unicode=True), encoding="utf-8")
    rc, _, err = run(capsys, ["station", "import", "--spec", str(tmp_path / "st.yaml"), "--out", str(tmp_path / "d")])
    assert rc == 0, err
    np.testing.assert_allclose(pd.read_csv(tmp_path / "d" / "timeseries" / "y1.csv")["precipitation"], rain / 10.0)
    assert read_station_meta(tmp_path / "d", "y1").to_dict()["precipitation_unit"] == "0.1mm"
    rc, _, err = run(capsys, ["station", "import", str(f), "--id", "y2", "--out", str(tmp_path / "e"), "--map",
                              "date=日期,precipitation=降水量,discharge=流量", "--discharge_unit", "m3/s",
                              "--precipitation_unit", "cm"])
    assert rc == 2 and "--precipitation_unit 'cm' unknown; choose from mm, 0.1mm" in err, err
    assert not (tmp_path / "e").exists()


def test_a_spec_with_the_decimal_comma_unquoted_says_to_quote_it(tmp_path, capsys):
    """`decimal: ,` written as the flag is typed is YAML syntax, not a value: the refusal quoted YAML's parser only
    ("expected the node content, but found ','"); it now says to quote the mark, and the quoted spec imports."""
    src = daily_frame(seed=12)
    lines = ["date;p;q"] + [f"{d:%Y-%m-%d};{str(p).replace('.', ',')};{str(q).replace('.', ',')}"
                            for d, p, q in src[["date", "p", "q"]].itertuples(index=False)]
    (tmp_path / "de.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    spec = tmp_path / "spec.yaml"
    text = ("file: de.csv\nid: d1\nmap: date=date,precipitation=p,discharge=q\ndischarge_unit: m3/s\nsep: ;\n"
            "decimal: ,\n")
    spec.write_text(text, encoding="utf-8")
    argv = ["station", "import", "--spec", str(spec), "--out", str(tmp_path / "o")]
    rc, _, err = run(capsys, argv)
    assert rc == 2 and len(err.strip().splitlines()) == 1 and 'quote the decimal mark: decimal: ","' in err, err
    spec.write_text(text.replace("decimal: ,", 'decimal: ","'), encoding="utf-8")
    rc, _, err = run(capsys, argv)
    assert rc == 0, err
    np.testing.assert_allclose(pd.read_csv(tmp_path / "o" / "timeseries" / "d1.csv")["discharge_vol"], src["q"])


def test_an_import_flag_given_with_a_spec_is_refused_not_ignored(tmp_path, capsys):
    """With --spec every station's options come from the YAML: --precipitation_unit 0.1mm given beside it was
    dropped without a word, so the refusal of rain in 0.1 mm asked for the very flag the user had given (and a dry
    station's rain was read ten times too large). A flag given with --spec is one line naming the spec key."""
    import yaml

    f = tmp_path / "站.csv"
    _tenths_station(f)
    spec = {"file": "站.csv", "id": "s1", "map": {"date": "日期", "precipitation": "降水量", "discharge": "流量"},
            "discharge_unit": "m3/s"}
    (tmp_path / "st.yaml").write_text(yaml.safe_dump(spec, allow_unicode=True), encoding="utf-8")
    argv = ["station", "import", "--spec", str(tmp_path / "st.yaml"), "--out", str(tmp_path / "d")]
    rc, _, err = run(capsys, [*argv, "--precipitation_unit", "0.1mm"])
    assert rc == 2 and len(err.strip().splitlines()) == 1, err
    assert ("--precipitation_unit is given with --spec, which reads each station's options from the YAML only: "
            "write precipitation_unit: in the station's entry") in err, err
    rc, _, err = run(capsys, [*argv, "--discharge_unit", "l/s", "--na_value", "-99"])
    assert rc == 2 and "--discharge_unit, --na_value are given with --spec" in err, err
    rc, _, err = run(capsys, [*argv, str(f)])
    assert rc == 2 and "FILE is given with --spec" in err, err
    assert not (tmp_path / "d").exists()
    rc, _, err = run(capsys, [*argv, "--overwrite", "--quiet"])   # what a spec leaves to the command line
    assert rc == 1 and "give --precipitation_unit 0.1mm" in err, err


def test_a_key_beside_the_stations_list_of_a_spec_is_refused_not_ignored(tmp_path, capsys):
    """precipitation_unit: 0.1mm written once above 'stations:', as if for all of them, was not read: the rain of
    a dry station was ten times too large. A key beside the list is one line saying to write it in each entry."""
    import yaml

    f = tmp_path / "站.csv"
    rain = _tenths_station(f)
    station = {"file": "站.csv", "id": "s1", "map": {"date": "日期", "precipitation": "降水量", "discharge": "流量"},
               "discharge_unit": "m3/s"}
    spec = tmp_path / "st.yaml"
    spec.write_text(yaml.safe_dump({"precipitation_unit": "0.1mm", "stations": [station]}, allow_unicode=True),
                    encoding="utf-8")
    argv = ["station", "import", "--spec", str(spec), "--out", str(tmp_path / "d")]
    rc, _, err = run(capsys, argv)
    assert rc == 2 and len(err.strip().splitlines()) == 1, err
    assert f"--spec {spec}: key(s) ['precipitation_unit'] beside 'stations:' are not read; write them in each " \
           "station's entry" in err, err
    assert not (tmp_path / "d").exists()
    spec.write_text(yaml.safe_dump({"stations": [{**station, "precipitation_unit": "0.1mm"}]}, allow_unicode=True),
                    encoding="utf-8")
    rc, _, err = run(capsys, argv)
    assert rc == 0, err
    np.testing.assert_allclose(pd.read_csv(tmp_path / "d" / "timeseries" / "s1.csv")["precipitation"], rain / 10.0)


def test_a_reimport_without_the_unit_of_a_station_stored_in_tenths_of_a_mm_is_refused(tmp_path, capsys):
    """A dry station's rain in 0.1 mm (300 mm a year, 3000 read as mm) passes the plausibility check; re-imported
    with --overwrite but without --precipitation_unit, the same file was read as mm, ten times the rain, and its
    metadata changed to mm without a word. The stored unit is now asked for again; a unit given changes it."""
    from sca2lstm.data.station import import_station
    from sca2lstm.errors import UsageError

    src = daily_frame(seed=7)
    rain = np.resize([0, 0, 30, 40, 2, 0, 0, 0, 10, 0], DAYS)   # 0.1 mm: 8.2 mm in 10 days, 299 mm a year
    f = tmp_path / "旱站.csv"
    f.write_bytes(pd.DataFrame({"日期": src["date"].dt.strftime("%Y-%m-%d"), "降水量": rain, "流量": src["q"]})
                  .to_csv(index=False).encode("gbk"))
    out = tmp_path / "o"
    argv = ["station", "import", str(f), "--id", "dry", "--out", str(out), "--map",
            "date=日期,precipitation=降水量,discharge=流量", "--discharge_unit", "m3/s"]
    rc, _, err = run(capsys, [*argv, "--precipitation_unit", "0.1mm"])
    assert rc == 0, err
    before = snapshot(out)
    rc, _, err = run(capsys, [*argv, "--overwrite"])
    assert rc == 2 and len(err.strip().splitlines()) == 1, err
    assert ("station 'dry' was imported with its rain in 0.1 mm (precipitation_unit in " in err
            and "give --precipitation_unit 0.1mm again, or --precipitation_unit mm if the file's rain is now in mm"
            in err), err
    assert snapshot(out) == before
    rc, _, err = run(capsys, [*argv, "--overwrite", "--precipitation_unit", "0.1mm"])
    assert rc == 0, err
    np.testing.assert_allclose(pd.read_csv(out / "timeseries" / "dry.csv")["precipitation"], rain / 10.0)
    rc, _, err = run(capsys, [*argv, "--overwrite", "--precipitation_unit", "mm"])   # said: the unit changes
    assert rc == 0, err
    np.testing.assert_allclose(pd.read_csv(out / "timeseries" / "dry.csv")["precipitation"], rain)
    assert read_station_meta(out, "dry").to_dict()["precipitation_unit"] == "mm"
    # stored in mm, a re-import without the unit reads mm as before; the Python API asks as the command does
    rc, _, err = run(capsys, [*argv, "--overwrite"])
    assert rc == 0, err
    df = pd.DataFrame({"precipitation": rain, "discharge": src["q"].to_numpy()},
                      index=pd.DatetimeIndex(src["date"]))
    import_station(df, "api", out, precipitation_unit="0.1mm")
    with pytest.raises(UsageError, match="station 'api' was imported with its rain in 0.1 mm"):
        import_station(df, "api", out, overwrite=True)
    np.testing.assert_allclose(pd.read_csv(out / "timeseries" / "api.csv")["precipitation"], rain / 10.0)


# ------------------------------------------------------------------------------------------ excerpt records
def _readings(rows) -> pd.DataFrame:
    """Readings ``[(time, q, p), ...]`` as a frame on their timestamps."""
    return pd.DataFrame([r[1:] for r in rows], columns=["q", "p"],
                        index=pd.DatetimeIndex([pd.Timestamp(r[0]) for r in rows]))


def test_irregular_readings_daily_means_by_the_area_method_by_hand():
    from sca2lstm.data.readings import is_irregular, readings_to_days

    how = {"q": ("mean", "max"), "p": "sum"}
    # 08:00 of consecutive days with Q = 2 and 4: the line from 2 to 4 averages 3 over the day.
    daily, _ = readings_to_days(_readings([("2020-01-01 08:00", 2, 0), ("2020-01-02 08:00", 4, 1.5)]), how, "08:00")
    assert daily.loc["2020-01-01", "q"] == pytest.approx(3.0) and daily.loc["2020-01-01", "q_max"] == 4.0
    # A flood day read at 08:00 (2), 14:00 (20), 20:00 (8) and 08:00 next (4): trapezoids 6 h x 11 + 6 h x 14 +
    # 12 h x 6 = 222 m3/s·h over 24 h = 9.25 (the mean of the four readings would be 8.5); its peak 20.
    # Its rain: the amounts ending at 14:00, 20:00 and 08:00 next (5 + 7 + 3); 08:00's 1.5 closes the day before.
    flood = [("2020-07-01 08:00", 2, 1.5), ("2020-07-01 14:00", 20, 5), ("2020-07-01 20:00", 8, 7),
             ("2020-07-02 08:00", 4, 3), ("2020-07-03 08:00", 2, 0.5)]
    daily, counts = readings_to_days(_readings(flood), how, "08:00")
    assert daily.loc["2020-07-01", "q"] == pytest.approx(222 / 24) and daily.loc["2020-07-01", "q_max"] == 20
    assert daily.loc["2020-07-01", "p"] == pytest.approx(15.0) and daily.loc["2020-07-02", "p"] == pytest.approx(0.5)
    assert daily.loc["2020-07-02", "q"] == pytest.approx(3.0) and len(daily) == 3
    assert np.isnan(daily.loc["2020-07-03", "q"])   # no reading after its end: not drawn
    assert (counts["one_reading"], counts["several_readings"]) == (2, 1)
    # The day's boundaries are interpolated between the readings either side: 20:00 (0) and 20:00 next (24)
    # put 12 at 08:00; 24 at 20:00 and 0 at 20:00 after give 12 at the next 08:00: (12+24)/2 twice = 18.
    daily, _ = readings_to_days(_readings([("2020-01-01 20:00", 0, 0), ("2020-01-02 20:00", 24, 0),
                                           ("2020-01-03 20:00", 0, 0)]), how, "08:00")
    assert daily.loc["2020-01-02", "q"] == pytest.approx(18.0) and daily.loc["2020-01-02", "q_max"] == 24
    # A silence of more than two days between readings leaves the days inside it missing; two days are drawn.
    gap = [(f"2020-01-{d:02d} 08:00", 2.0, 1.0) for d in (1, 2, 6, 7, 9, 10)]
    daily, counts = readings_to_days(_readings(gap), how, "08:00")
    assert daily["q"].isna().to_numpy().tolist() == [False, True, True, True, True, False, False, False, False, True]
    # The rain of 7 and 8 January is the one reading of the 9th (the 8th's is missed): neither day's is known.
    assert daily["p"].isna().to_numpy().tolist() == [False, True, True, True, True, False, True, True, False, True]
    assert counts["missing"] == {"q": 5, "p": 7} and counts["accumulated"] == {"p": 2}
    # What is recognised: several readings on some days and day-long steps on others; not one reading a day
    # at 08:00, nor a regular hourly record.
    stamps = pd.DatetimeIndex([pd.Timestamp(r[0]) for r in flood])
    assert is_irregular(stamps, stamps.normalize())
    daily08 = pd.date_range("2020-01-01 08:00", periods=10, freq="D")
    hourly = pd.date_range("2020-01-01 08:00", periods=100, freq="h")
    assert not is_irregular(daily08, daily08.normalize()) and not is_irregular(hourly, hourly.normalize())


def test_an_excerpt_days_rain_reading_left_blank_is_a_missing_day_not_zero_rain():
    from sca2lstm.data.readings import readings_to_days

    how = {"q": ("mean", "max"), "p": "sum"}
    # The 08:00 reading of 2 July (the rain of 1 July's day) is a missing cell; 3 July is a flood day whose 08:00
    # cell is blank but whose 14:00 reading is not
    rows = [("2020-07-01 08:00", 1, 5.0), ("2020-07-02 08:00", 2, np.nan), ("2020-07-03 08:00", 3, 3.0),
            ("2020-07-03 14:00", 8, 10.0), ("2020-07-04 08:00", 3, np.nan), ("2020-07-05 08:00", 2, 1.0)]
    daily, counts = readings_to_days(_readings(rows), how, "08:00")
    assert np.isnan(daily.loc["2020-07-01", "p"])                        # its only reading is missing
    assert daily.loc["2020-07-02", "p"] == pytest.approx(3.0)
    assert daily.loc["2020-07-03", "p"] == pytest.approx(10.0)           # one reading of two known: kept
    assert daily.loc["2020-07-04", "p"] == pytest.approx(1.0)
    assert daily.loc["2020-07-01", "q"] == pytest.approx(1.5) and counts["missing"]["p"] == 2


def test_an_excerpt_reading_that_holds_several_days_rain_leaves_them_missing_not_zero_then_double():
    """08:00 of 3 July is missed: the 08:00 reading of the 4th is the rain of 2 and 3 July together (时段雨量 since the
    last reading). It was 0 mm on the 2nd and all of it on the 3rd; no rule splits it, so both days are missing.
    Zero read over such a period is 0 mm on each of its days; an ordinary day and a flood day of hourly readings
    are summed as before, and daily 08:00 readings under a 00:00 day (a 24-hour period) are read as before."""
    from sca2lstm.data.readings import readings_to_days

    how = {"q": ("mean", "max"), "p": "sum"}
    rows = [("2020-07-01 08:00", 1, 0.5), ("2020-07-02 08:00", 1, 2.0), ("2020-07-04 08:00", 1, 6.0),
            ("2020-07-05 08:00", 1, 1.0), ("2020-07-05 14:00", 5, 4.0), ("2020-07-05 15:00", 9, 10.0),
            ("2020-07-05 16:00", 6, 3.0), ("2020-07-06 08:00", 2, 1.5), ("2020-07-07 08:00", 1, 0.0),
            ("2020-07-09 08:00", 1, 0.0), ("2020-07-10 08:00", 1, 2.0)]     # 8 July's 08:00 missed too, no rain
    daily, counts = readings_to_days(_readings(rows), how, "08:00")
    expected = {"07-01": 2.0, "07-02": np.nan, "07-03": np.nan, "07-04": 1.0, "07-05": 4.0 + 10.0 + 3.0 + 1.5,
                "07-06": 0.0, "07-07": 0.0, "07-08": 0.0, "07-09": 2.0, "07-10": np.nan}   # 10th: nothing after it
    np.testing.assert_array_equal(daily["p"].to_numpy(), list(expected.values()))
    assert daily.index.strftime("%m-%d").tolist() == list(expected)
    assert daily.loc["2020-07-02":"2020-07-03", "q"].tolist() == [1.0, 1.0]   # the flow is drawn across the miss
    assert counts["accumulated"] == {"p": 2} and counts["missing"] == {"q": 1, "p": 3}
    # Daily 08:00 readings with a 00:00 day: each closes a 24-hour period over two days and is the later day's, as
    # before; with 3 July's missed, the 4th's reading holds the 3rd's whole day: the 3rd and 4th are missing.
    daily08 = [(f"2020-07-{d:02d} 08:00", 1, float(d)) for d in range(1, 7)]
    daily, counts = readings_to_days(_readings(daily08), how, "00:00")
    np.testing.assert_array_equal(daily["p"].to_numpy(), [np.nan, 2.0, 3.0, 4.0, 5.0, np.nan])
    assert counts["accumulated"] == {"p": 0}
    daily, counts = readings_to_days(_readings([r for r in daily08 if not r[0].startswith("2020-07-03")]), how,
                                     "00:00")
    np.testing.assert_array_equal(daily["p"].to_numpy(), [np.nan, 2.0, np.nan, np.nan, 5.0, np.nan])
    assert counts["accumulated"] == {"p": 2}


def test_excerpt_record_of_water_levels_imports_by_the_area_method(tmp_path, capsys):
    """The township record: water levels at 08:00 every day, several on a flood day, one silence of five days, one
    08:00 reading missed; GBK with Chinese headers. Each stage becomes discharge before the day is averaged."""
    a, b, h0 = 5.0, 1.6, 0.2
    stage = lambda q: round(h0 + (q / a) ** (1 / b), 6)  # noqa: E731 - the stage the curve turns into q
    days = pd.date_range("2018-01-01 08:00", periods=745, freq="D")
    rows = {t: (stage(2.0), 1.0) for t in days if not pd.Timestamp("2019-03-02") <= t < pd.Timestamp("2019-03-06")}
    rows.update({pd.Timestamp("2018-07-01 14:00"): (stage(20.0), 5.0), pd.Timestamp("2018-07-01 20:00"): (stage(8.0), 7.0),
                 pd.Timestamp("2018-07-02 08:00"): (stage(4.0), 3.0)})
    del rows[pd.Timestamp("2018-10-10 08:00")]   # the rain of 9 and 10 October is read together on the 11th
    lines = ["时间,水位(m),雨量"] + [f"{t:%Y-%m-%d %H:%M},{h},{p}" for t, (h, p) in sorted(rows.items())]
    f = tmp_path / "摘录.csv"
    f.write_bytes(("\r\n".join(lines) + "\r\n").encode("gbk"))
    out = tmp_path / "data"
    rc, stdout, err = run(capsys, ["station", "import", str(f), "--id", "mixed", "--out", str(out), "--map",
                                   "date=时间,stage=水位(m),precipitation=雨量", "--rating",
                                   f"a={a},b={b},h0={h0},h_max=1.0", "--day_start", "08:00"])
    assert rc == 0, err
    assert "duplicate dates" not in stdout + err
    assert "irregular readings (an excerpt record): 739 days from 1 reading a day interpolated, 1 flood days with " \
           "several, 5 without a reading" in stdout
    assert "(a day without a reading in its period: the amount cannot be split by day) left missing: precipitation 2" \
        in stdout
    ts = pd.read_csv(out / "timeseries" / "mixed.csv", index_col="date")
    assert len(ts) == 745 and ts.loc["2018-01-05", "discharge_vol"] == pytest.approx(2.0, rel=1e-5)
    assert ts.loc["2018-07-01", "discharge_vol"] == pytest.approx(222 / 24, rel=1e-5)
    assert ts.loc["2018-07-01", "discharge_max"] == pytest.approx(20.0, rel=1e-5)
    assert ts.loc["2018-07-02", "discharge_vol"] == pytest.approx(3.0, rel=1e-5)
    assert ts.loc["2018-07-01", "discharge_extrapolated"] == 1   # 20 m3/s lies above h_max = 1 m
    # Converting the day's mean stage (1.586 m) instead would give 8.43 m3/s, 9 % lower (the curve bends upwards).
    hs = [stage(q) for q in (2.0, 20.0, 8.0, 4.0)]
    mean_h = (6 * (hs[0] + hs[1]) / 2 + 6 * (hs[1] + hs[2]) / 2 + 12 * (hs[2] + hs[3]) / 2) / 24
    assert ts.loc["2018-07-01", "stage"] == pytest.approx(mean_h, rel=1e-5)
    assert a * (mean_h - h0) ** b == pytest.approx(8.425, abs=1e-3)
    # Rain: the amounts ending in the day (14:00, 20:00 and the next 08:00); an ordinary day's is the next 08:00's.
    assert ts.loc["2018-07-01", "precipitation"] == pytest.approx(15.0)
    assert ts.loc["2018-06-30", "precipitation"] == pytest.approx(1.0)
    # Five days between readings (08:00 on 1 March to 08:00 on 6 March 2019): the days inside are missing.
    gap = ts.loc["2019-03-01":"2019-03-05"]
    assert gap["discharge_vol"].isna().all() and gap["precipitation"].isna().all()
    assert np.isfinite(ts.loc["2019-02-28", "discharge_vol"]) and np.isfinite(ts.loc["2019-03-06", "discharge_vol"])
    # One 08:00 reading missed: the flow is drawn across it, the two days' rain is not split between them.
    assert ts.loc["2018-10-09":"2018-10-10", "precipitation"].isna().all()
    assert ts.loc["2018-10-09":"2018-10-10", "discharge_vol"].to_numpy() == pytest.approx([2.0, 2.0], rel=1e-5)
    assert ts.loc["2018-10-08", "precipitation"] == ts.loc["2018-10-11", "precipitation"] == pytest.approx(1.0)
    meta = read_station_meta(out, "mixed")
    assert meta.provenance["irregular"] == {"max_gap_hours": 48.0, "one_reading_days": 739,
                                            "several_readings_days": 1, "no_reading_days": 5,
                                            "missing": {"precipitation": 8, "discharge": 6, "stage": 6,
                                                        "discharge_extrapolated": 6},
                                            "accumulated_days": {"precipitation": 2}}
    assert "subdaily" not in meta.provenance and meta.day_start == "08:00"


def _excerpt_with_a_silence(path) -> None:
    """An excerpt record of flows: 08:00 daily for 745 days, a flood day read four times, and a silence of 60 hours
    from 08:00 on 1 March 2019 to 20:00 on the 3rd (no rain in it), then 08:00 on the 4th (1 mm since 20:00)."""
    days = pd.date_range("2018-01-01 08:00", periods=745, freq="D")
    rows = {t: (2.0, 0.5) for t in days if t not in (pd.Timestamp("2019-03-02 08:00"), pd.Timestamp("2019-03-03 08:00"))}
    rows.update({pd.Timestamp("2018-07-01 14:00"): (20.0, 5.0), pd.Timestamp("2018-07-01 20:00"): (8.0, 7.0),
                 pd.Timestamp("2019-03-03 20:00"): (2.0, 0.0), pd.Timestamp("2019-03-04 08:00"): (2.0, 1.0)})
    lines = ["时间,流量,雨量"] + [f"{t:%Y-%m-%d %H:%M},{q},{p}" for t, (q, p) in sorted(rows.items())]
    path.write_bytes(("\r\n".join(lines) + "\r\n").encode("gbk"))


def test_max_reading_gap_sets_the_silence_an_excerpt_record_is_drawn_across(tmp_path, capsys):
    """A 60-hour silence leaves its days missing at the default 48 hours; --max_reading_gap 72 (or the spec key)
    draws the flow across it and, no rain having been read in it, gives its days 0 mm. The value is recorded in the
    metadata and the summary line."""
    import yaml

    f = tmp_path / "摘录.csv"
    _excerpt_with_a_silence(f)
    argv = ["station", "import", str(f), "--map", "date=时间,discharge=流量,precipitation=雨量", "--discharge_unit",
            "m3/s", "--day_start", "08:00"]
    silence = slice("2019-03-01", "2019-03-03")
    rc, stdout, err = run(capsys, [*argv, "--id", "d48", "--out", str(tmp_path / "a")])
    assert rc == 0, err
    ts = pd.read_csv(tmp_path / "a" / "timeseries" / "d48.csv", index_col="date")
    assert ts.loc[silence, "discharge_vol"].isna().all() and ts.loc[silence, "precipitation"].isna().all()
    assert "days inside a gap of more than 48 hours between readings left missing (--max_reading_gap)" in stdout
    assert read_station_meta(tmp_path / "a", "d48").provenance["irregular"]["max_gap_hours"] == 48.0

    rc, stdout, err = run(capsys, [*argv, "--id", "d72", "--out", str(tmp_path / "b"), "--max_reading_gap", "72"])
    assert rc == 0, err
    ts = pd.read_csv(tmp_path / "b" / "timeseries" / "d72.csv", index_col="date")
    assert ts.loc[silence, "discharge_vol"].tolist() == pytest.approx([2.0, 2.0, 2.0])
    assert ts.loc[silence, "precipitation"].tolist() == pytest.approx([0.0, 0.0, 1.0])
    assert ts.loc["2019-02-28", "precipitation"] == pytest.approx(0.5)
    assert "days inside a gap of more than 72 hours between readings left missing (--max_reading_gap)" in stdout
    meta = read_station_meta(tmp_path / "b", "d72")
    assert meta.provenance["irregular"]["max_gap_hours"] == 72.0
    assert meta.provenance["irregular"]["missing"]["discharge"] == 1   # the last day only: no reading after it

    spec = tmp_path / "s.yaml"
    spec.write_text(yaml.safe_dump({"file": f.name, "id": "s72", "map": {"date": "时间", "discharge": "流量",
                                    "precipitation": "雨量"}, "discharge_unit": "m3/s", "day_start": "08:00",
                                    "max_reading_gap": 72}, allow_unicode=True), encoding="utf-8")
    rc, _, err = run(capsys, ["station", "import", "--spec", str(spec), "--out", str(tmp_path / "b")])
    assert rc == 0, err
    assert pd.read_csv(tmp_path / "b" / "timeseries" / "s72.csv", index_col="date").equals(ts)


def test_a_date_column_and_a_time_column_read_as_one_timestamp(tmp_path, capsys):
    """A township book writes the day and the hour of a reading in two columns (日期 2018/1/1, 时间 8:00; in Excel a
    date cell and a time cell): --map ...,time=时间 reads them as the one timestamp a single column would give, so an
    excerpt record's 08:00 readings stay on their day and a flood day's 14:00 and 20:00 readings inside it.
    --date_format then describes the date and the time together (a book's 8时)."""
    import openpyxl

    one = tmp_path / "one.csv"
    _excerpt_with_a_silence(one)
    rows = [line.split(",") for line in one.read_bytes().decode("gbk").split("\r\n")[1:] if line]
    stamps = [pd.Timestamp(r[0]) for r in rows]
    flags = ["--discharge_unit", "m3/s", "--day_start", "08:00"]

    def imp(f, sid, date_map, *more):
        rc, _, err = run(capsys, ["station", "import", str(f), "--id", sid, "--out", str(tmp_path / "d"), "--map",
                                  f"{date_map},discharge=流量,precipitation=雨量", *flags, *more])
        assert rc == 0, err
        return (tmp_path / "d" / "timeseries" / f"{sid}.csv").read_bytes()

    single = imp(one, "one", "date=时间")
    ts = pd.read_csv(tmp_path / "d" / "timeseries" / "one.csv", index_col="date")
    assert ts.loc["2018-07-01", "discharge_max"] == 20.0 and ts.loc["2018-07-01", "precipitation"] == 12.5
    two = tmp_path / "two.csv"
    lines = ["日期,时间,流量,雨量"] + [f"{t.year}/{t.month}/{t.day},{t.hour}:{t.minute:02d},{q},{p}"
                                      for t, (_, q, p) in zip(stamps, rows)]
    two.write_bytes(("\r\n".join(lines) + "\r\n").encode("gbk"))
    assert imp(two, "two", "date=日期,time=时间") == single
    wb = openpyxl.Workbook()
    wb.active.append(["日期", "时间", "流量", "雨量"])
    for t, (_, q, p) in zip(stamps, rows):
        wb.active.append([t.normalize().to_pydatetime(), t.time(), float(q), float(p)])   # a date cell, a time cell
    book = tmp_path / "two.xlsx"
    wb.save(book)
    assert imp(book, "book", "date=日期,time=时间") == single
    hours = tmp_path / "hours.csv"
    lines = ["日期,时间,流量,雨量"] + [f"{t:%Y-%m-%d},{t.hour}时,{q},{p}" for t, (_, q, p) in zip(stamps, rows)]
    hours.write_bytes(("\r\n".join(lines) + "\r\n").encode("gbk"))
    assert imp(hours, "hours", "date=日期,time=时间", "--date_format", "%Y-%m-%d %H时") == single


def test_a_time_column_holding_a_plain_hour_number_reads_it_as_that_hour(tmp_path, capsys):
    """A township book writes the hour of a reading as a plain number (8, 14, 20) in its time column: a whole number
    from 0 to 23 reads as that hour, as 8:00 would, and the summary says so; any other number (24, 8.5) stays
    refused in one line naming both columns, nothing written."""
    one = tmp_path / "one.csv"
    _excerpt_with_a_silence(one)
    rows = [line.split(",") for line in one.read_bytes().decode("gbk").split("\r\n")[1:] if line]
    stamps = [pd.Timestamp(r[0]) for r in rows]
    assert all(t.minute == 0 for t in stamps)

    def imp(sid, hour_of):
        f = tmp_path / f"{sid}.csv"
        lines = ["日期,时间,流量,雨量"] + [f"{t:%Y/%m/%d},{hour_of(t)},{q},{p}" for t, (_, q, p) in zip(stamps, rows)]
        f.write_bytes(("\r\n".join(lines) + "\r\n").encode("gbk"))
        return run(capsys, ["station", "import", str(f), "--id", sid, "--out", str(tmp_path / "d"), "--map",
                            "date=日期,time=时间,discharge=流量,precipitation=雨量", "--discharge_unit", "m3/s",
                            "--day_start", "08:00"])

    assert imp("colon", lambda t: f"{t.hour}:00")[0] == 0
    rc, stdout, err = imp("hours", lambda t: t.hour)
    assert rc == 0, err
    assert (tmp_path / "d" / "timeseries" / "hours.csv").read_bytes() == \
        (tmp_path / "d" / "timeseries" / "colon.csv").read_bytes()
    assert f"time column '时间': {len(stamps)} cell(s) holding a whole number from 0 to 23 read as that hour " \
           "(8 as 08:00)" in stdout, stdout
    for sid, hour_of in (("h24", lambda t: t.hour + 16), ("half", lambda t: f"{t.hour}.5")):
        rc, _, err = imp(sid, hour_of)
        assert rc == 1 and len(err.strip().splitlines()) == 1, (sid, err)
        assert "(the date column '日期' and the time column '时间' are read together, as 'date time')" in err, err
        assert not (tmp_path / "d" / "timeseries" / f"{sid}.csv").exists()


def test_excel_serial_days_and_day_fractions_in_a_date_and_a_time_column_read_as_excel_means_them(tmp_path, capsys):
    """Cells of a workbook not formatted as dates hold Excel's numbers: the day as its serial (43282 is 2018-07-01)
    and the time as its fraction of a day (1/3 is 08:00). Beside a time column they read as the timestamps
    formatted cells give; an hour written as a plain whole number (a cell holding 8 for 8:00, as township books do)
    reads as that hour, said in the summary; another number (800 for 8:00) is refused in one line naming both
    columns."""
    import openpyxl

    one = tmp_path / "one.csv"
    _excerpt_with_a_silence(one)
    rows = [line.split(",") for line in one.read_bytes().decode("gbk").split("\r\n")[1:] if line]
    stamps = [pd.Timestamp(r[0]) for r in rows]
    out = tmp_path / "d"

    def imp(cells, sid):
        wb = openpyxl.Workbook()
        wb.active.append(["日期", "时间", "流量", "雨量"])
        for t, (_, q, p) in zip(stamps, rows):
            wb.active.append([*cells(t), float(q), float(p)])
        book = tmp_path / f"{sid}.xlsx"
        wb.save(book)
        return run(capsys, ["station", "import", str(book), "--id", sid, "--out", str(out), "--map",
                            "date=日期,time=时间,discharge=流量,precipitation=雨量", "--discharge_unit", "m3/s",
                            "--day_start", "08:00"])

    def serial(t):
        return (t.normalize() - pd.Timestamp("1899-12-30")).days

    def fraction(t):
        return (t.hour * 60 + t.minute) / 1440

    rc, _, err = imp(lambda t: (t.normalize().to_pydatetime(), t.time()), "cells")
    assert rc == 0, err
    formatted = (out / "timeseries" / "cells.csv").read_bytes()
    assert serial(pd.Timestamp("2011-10-01")) == 40817
    for sid, cells in (("numbers", lambda t: (serial(t), fraction(t))),
                       ("serial", lambda t: (serial(t), t.time())),
                       ("fraction", lambda t: (t.normalize().to_pydatetime(), fraction(t)))):
        rc, _, err = imp(cells, sid)
        assert rc == 0, (sid, err)
        assert (out / "timeseries" / f"{sid}.csv").read_bytes() == formatted, sid
    rc, stdout, err = imp(lambda t: (serial(t), t.hour), "hours")
    assert rc == 0, err
    assert (out / "timeseries" / "hours.csv").read_bytes() == formatted
    assert f"time column '时间': {len(stamps)} cell(s) holding a whole number from 0 to 23 read as that hour " \
           "(8 as 08:00)" in stdout, stdout
    rc, _, err = imp(lambda t: (serial(t), t.hour * 100), "hhmm")
    assert rc == 1 and len(err.strip().splitlines()) == 1, err
    assert "(the date column '日期' and the time column '时间' are read together, as 'date time'; in Excel, format " \
           "the two columns as a date and a time)" in err, err
    assert not (out / "timeseries" / "hhmm.csv").exists()


@pytest.mark.parametrize("blank", ["time", "date"])
def test_a_row_giving_only_its_date_or_only_its_time_is_refused_naming_it(blank, tmp_path, capsys):
    """A blank time beside a date is no midnight: read as 00:00, the 08:00 reading moved to the day before and made a
    daily book an excerpt record. A blank date beside a time (the day written on its first reading only) is no day to
    guess. Either is one line naming the column, the row and what stands beside it; nothing is written."""
    days = pd.date_range("2018-01-01", periods=760, freq="D")
    lines = ["日期,时间,流量,雨量"]
    for i, t in enumerate(days):
        lines.append(f"{t:%Y/%m/%d},{'' if blank == 'time' and i in (100, 200) else '8:00'},{2.0 + i % 7},{i % 3}")
        if i == 180:   # a flood day read again at 14:00
            lines.append(f"{'' if blank == 'date' else f'{t:%Y/%m/%d}'},14:00,20,5")
    f = tmp_path / "book.csv"
    f.write_bytes(("\r\n".join(lines) + "\r\n").encode("gbk"))
    out = tmp_path / "d"
    rc, stdout, err = run(capsys, ["station", "import", str(f), "--id", "book", "--out", str(out), "--map",
                                   "date=日期,time=时间,discharge=流量,precipitation=雨量", "--discharge_unit", "m3/s",
                                   "--day_start", "08:00"])
    assert rc == 1 and len(err.strip().splitlines()) == 1 and not out.exists(), (stdout, err)
    if blank == "time":
        assert "time column '时间' is empty on row 102 beside '2018/04/11' (2 such row(s)); write each reading's " \
               "time of day (0:00 for midnight), or delete a row that holds no reading" in err
    else:
        assert "date column '日期' is empty on row 183 beside '14:00' (1 such row(s)); write the date on every row" \
               in err


@pytest.mark.parametrize("value", ["0", "-5", "abc", "12", "721", "1e9", "inf", "nan"])
def test_a_bad_max_reading_gap_is_one_line_naming_it_and_the_range_nothing_written(value, tmp_path, capsys):
    f = tmp_path / "摘录.csv"
    _excerpt_with_a_silence(f)
    rc, _, err = run(capsys, ["station", "import", str(f), "--id", "x", "--out", str(tmp_path / "o"), "--map",
                              "date=时间,discharge=流量,precipitation=雨量", "--discharge_unit", "m3/s",
                              "--max_reading_gap", value])
    assert rc == 2 and len(err.strip().splitlines()) == 1, err
    assert f"--max_reading_gap {value!r} must be a number of hours from 24 to 720 (default 48)" in err, err
    assert not (tmp_path / "o").exists()


def test_max_reading_gap_for_a_record_that_is_not_an_excerpt_changes_nothing_and_says_so(tmp_path, capsys):
    f = tmp_path / "daily.csv"
    daily_frame().to_csv(f, index=False)
    argv = ["station", "import", str(f), "--map", "date=date,precipitation=p,discharge=q", "--discharge_unit", "m3/s"]
    rc, _, err = run(capsys, [*argv, "--id", "plain", "--out", str(tmp_path / "a")])
    assert rc == 0, err
    rc, stdout, err = run(capsys, [*argv, "--id", "plain", "--out", str(tmp_path / "b"), "--max_reading_gap", "72"])
    assert rc == 0, err
    assert "warning: --max_reading_gap 72 changes nothing for station plain: it applies to excerpt records " \
           "(irregular readings), and this record is read as daily rows" in stdout
    assert (tmp_path / "a" / "timeseries" / "plain.csv").read_bytes() == \
        (tmp_path / "b" / "timeseries" / "plain.csv").read_bytes()
    assert "irregular" not in read_station_meta(tmp_path / "b", "plain").provenance


def test_a_flood_season_gauge_refused_as_implausible_is_told_its_season_was_scaled_to_a_year(tmp_path, capsys):
    """A gauge read only from May to September (汛期), wet in its season, averages over 5000 mm a year when its
    season's rate is scaled to a year: the refusal says its values cover part of the days, and --precipitation_unit
    mm imports it as given."""
    src = daily_frame(days=1200, seed=5)   # three flood seasons: a year of values at least
    season = src["date"].dt.month.between(5, 9).to_numpy()
    lines = ["日期,降水量,流量"] + [f"{d:%Y-%m-%d},{'14' if s else ''},{q}" for d, s, q in zip(src["date"], season, src["q"])]
    f = tmp_path / "汛期站.csv"
    f.write_bytes(("\r\n".join(lines) + "\r\n").encode("gb18030"))
    argv = ["station", "import", str(f), "--id", "s", "--out", str(tmp_path / "o"), "--map",
            "date=日期,precipitation=降水量,discharge=流量", "--discharge_unit", "m3/s"]
    rc, _, err = run(capsys, argv)
    assert rc == 1 and len(err.strip().splitlines()) == 1, err
    assert "mean annual total 5114 mm" in err and "a gauge read in the flood season only counts at its season's rate" \
        in err, err
    rc, _, err = run(capsys, [*argv, "--precipitation_unit", "mm"])
    assert rc == 0, err


@pytest.mark.parametrize("n_blank", [0, 1, 3, 64, 65, 400, 740])
def test_empty_rows_at_the_end_are_counted_from_the_end_as_over_the_whole_table(n_blank):
    # The trailing empty rows are found from the end in growing blocks (a pass over every cell of a ten-year hourly
    # record cost a tenth of its import): the count is the one a pass over every row gives, across block edges.
    from sca2lstm.data.station import _NoDigit, _trailing_blank_rows

    src = daily_frame(days=740)
    cells = src.astype(str).astype("string")
    cells.iloc[5, 1] = pd.NA   # a gap among the days, and rows of spaces or nothing at the end
    blank_rows = pd.DataFrame([[pd.NA, " ", "", pd.NA]] * n_blank, columns=cells.columns, dtype="string")
    frame = pd.concat([cells.iloc[:740 - n_blank], blank_rows], ignore_index=True)
    if 0 < n_blank < 740:
        frame.iloc[-n_blank - 1, 0] = pd.NA   # the last row kept has its date missing but a value
    whole = frame.apply(lambda c: c.isna() | (c.astype("string").str.strip() == "")).all(axis=1).to_numpy()
    expected = len(frame) - (int(np.flatnonzero(~whole)[-1]) + 1 if (~whole).any() else 0)
    assert _trailing_blank_rows(frame) == expected == n_blank
    col = pd.Series(["(年/月/日)", "2018/01/01", pd.NA, "合计", "Total 2018", "２０１８", " "], dtype="string")
    assert [_NoDigit(col)[i] for i in range(len(col))] == list(~col.fillna("").str.contains(r"\d", regex=True))


def test_a_sub_daily_rain_intensity_in_mm_per_hour_is_named_and_read_as_depth_with_its_flag(tmp_path, capsys):
    """Rain written as an intensity (mm/h) every 10 minutes, summed per day, reads six times its depth: the check of
    the annual total named only 0.1 mm, which would leave it at 0.6 times. It now names --precipitation_unit mm/h,
    which reads each reading as its intensity times the 10-minute step: a day with an hour at 3 mm/h has 3 mm."""
    stamps = pd.date_range("2018-01-01", periods=DAYS * 144, freq="10min")
    rain = np.where((stamps.hour == 12), 3.0, 0.0)           # one hour a day at 3 mm/h: 3 mm a day, 1096 mm a year
    flow = 5.0 + (stamps.day_of_year % 7).to_numpy()
    f = tmp_path / "ten_minutes.csv"
    pd.DataFrame({"时间": stamps.strftime("%Y-%m-%d %H:%M"), "雨强": rain, "流量": flow}).to_csv(f, index=False)
    out = tmp_path / "d"
    argv = ["station", "import", str(f), "--id", "rg", "--out", str(out), "--map",
            "date=时间,precipitation=雨强,discharge=流量", "--discharge_unit", "m3/s"]
    rc, _, err = run(capsys, argv)
    assert rc == 1 and len(err.strip().splitlines()) == 1 and not out.exists(), err
    assert "if the column is a rain intensity in mm/h (readings every 10 minutes: summed per day it reads 6 times " \
           "the rain) give --precipitation_unit mm/h; if the column is in 0.1 mm give --precipitation_unit 0.1mm" in err
    rc, stdout, err = run(capsys, [*argv, "--precipitation_unit", "mm/h"])
    assert rc == 0, err
    assert "precipitation: an intensity in mm/h -> mm (x 0.166667 h, the readings' step)" in stdout
    ts = pd.read_csv(out / "timeseries" / "rg.csv", index_col="date")
    named = tmp_path / "named.csv"
    named.write_text(f.read_text(encoding="utf-8").replace("雨强", "雨强(mm/h)", 1), encoding="utf-8")
    rc, _, err = run(capsys, ["station", "import", str(named), "--id", "named", "--out", str(tmp_path / "n"), "--map",
                              "date=时间,precipitation=雨强(mm/h),discharge=流量", "--discharge_unit", "m3/s"])
    assert rc == 1 and "column '雨强(mm/h)' holds precipitation in mm/h by its header, but --precipitation_unit not " \
                       "given (mm): give --precipitation_unit mm/h" in err, err
    # 6 readings of 3 mm/h times 1/6 h: exact to a few ulps of 3
    np.testing.assert_allclose(ts["precipitation"].to_numpy(), 3.0, rtol=8 * np.finfo(float).eps)
    assert read_station_meta(out, "rg").to_dict()["precipitation_unit"] == "mm/h"
    before = snapshot(out)   # a re-import without the unit would read the intensities as mm: asked for again
    rc, _, err = run(capsys, [*argv, "--overwrite"])
    assert rc == 2 and "station 'rg' was imported with its rain as an intensity in mm/h (precipitation_unit in " in err \
        and "give --precipitation_unit mm/h again, or --precipitation_unit mm if the file's rain is now in mm" in err, err
    assert snapshot(out) == before
    daily = tmp_path / "daily.csv"
    daily_frame().to_csv(daily, index=False)
    rc, _, err = run(capsys, ["station", "import", str(daily), "--id", "dd", "--out", str(tmp_path / "e"), "--map",
                              "date=date,precipitation=p,discharge=q", "--discharge_unit", "m3/s",
                              "--precipitation_unit", "mm/h"])
    assert rc == 1 and len(err.strip().splitlines()) == 1 and not (tmp_path / "e").exists(), err
    assert "--precipitation_unit mm/h (a rain intensity) is read for a record of regular sub-daily readings, times " \
           "their step; this record is read as daily rows: give the rain of each period in mm" in err


def _dry_season_station(tmp_path, dry_days=200):
    """An ephemeral stream: 1.0 m on the curve Q = 12.5·(h − 0.15)^1.6, and a dry season at 0.05 m, below its h0."""
    src = daily_frame(days=DAYS)
    src["h"] = 1.0
    src.loc[100:100 + dry_days - 1, "h"] = 0.05
    src.to_csv(tmp_path / "s.csv", index=False)
    return tmp_path / "s.csv"


STAGE_ONLY = ["--map", "date=date,precipitation=p,stage=h", "--rating", "a=12.5,b=1.6,h0=0.15"]


def test_below_h0_zero_reads_a_dry_season_below_the_zero_flow_stage_as_no_flow_and_says_on_how_many_days(
        tmp_path, capsys):
    f = _dry_season_station(tmp_path)
    # the default (missing) loses the dry season: 540 observed days, under the two-year minimum
    rc, _, err = run(capsys, ["station", "import", str(f), "--id", "dry", "--out", str(tmp_path / "m"), *STAGE_ONLY])
    assert rc == 1 and "540 days of observed discharge" in err and "200 of 740 water levels lay below" in err
    assert err.strip().endswith("a stream that runs dry below it: --below_h0 zero)"), err
    rc, stdout, err = run(capsys, ["station", "import", str(f), "--id", "dry", "--out", str(tmp_path / "d"),
                                   *STAGE_ONLY, "--below_h0", "zero"])
    assert rc == 0, err
    assert ("740 values; 200 below the curve (read as zero flow, --below_h0 zero, on 200 days); 0 above the highest "
            "gauged stage") in stdout
    assert "their discharge is missing" not in stdout + err
    ts = pd.read_csv(tmp_path / "d" / "timeseries" / "dry.csv")
    assert (ts["discharge_vol"].iloc[100:300] == 0.0).all() and ts["discharge_vol"].notna().all()
    assert ts["discharge_vol"].iloc[0] == pytest.approx(12.5 * 0.85 ** 1.6, rel=1e-5)
    assert (ts["stage"].iloc[100:300] == 0.05).all()   # the water level itself is kept as read
    meta = json.loads((tmp_path / "d" / "meta" / "dry.json").read_text(encoding="utf-8"))
    assert meta["below_h0"] == "zero"
    assert meta["rating_applied"]["below_zero"] == 200 and meta["rating_applied"]["below_masked"] == 0
    read_station_meta(tmp_path / "d", "dry")   # the file's keys are declared


def test_below_h0_in_a_station_spec_and_the_default_stored_as_missing(tmp_path, capsys):
    f = _dry_season_station(tmp_path, dry_days=3)
    spec = tmp_path / "st.yaml"
    spec.write_text(f"file: {f.name}\nid: sp\nmap: {{date: date, precipitation: p, stage: h}}\n"
                    "rating: a=12.5,b=1.6,h0=0.15\nbelow_h0: zero\n", encoding="utf-8")
    rc, stdout, err = run(capsys, ["station", "import", "--spec", str(spec), "--out", str(tmp_path / "d")])
    assert rc == 0, err
    assert "3 below the curve (read as zero flow, --below_h0 zero, on 3 days)" in stdout
    assert (pd.read_csv(tmp_path / "d" / "timeseries" / "sp.csv")["discharge_vol"].iloc[100:103] == 0.0).all()
    rc, stdout, err = run(capsys, ["station", "import", str(f), "--id", "df", "--out", str(tmp_path / "d"),
                                   *STAGE_ONLY])
    assert rc == 0 and "3 below the curve (masked)" in stdout
    assert json.loads((tmp_path / "d" / "meta" / "df.json").read_text(encoding="utf-8"))["below_h0"] == "missing"


def test_below_h0_zero_still_refuses_a_record_all_below_the_curve(tmp_path, capsys):
    f = _dry_season_station(tmp_path, dry_days=DAYS - 100)
    src = pd.read_csv(f)
    src["h"] = 0.05
    src.to_csv(f, index=False)
    rc, _, err = run(capsys, ["station", "import", str(f), "--id", "all", "--out", str(tmp_path / "d"),
                              *STAGE_ONLY, "--below_h0", "zero"])
    lines = err.strip().splitlines()
    assert rc == 1 and len(lines) == 1, err
    assert "every water level in column 'h' lies below the rating curve (lowest stage 0.15 m" in lines[0]
    assert not (tmp_path / "d" / "timeseries").exists()


@pytest.mark.parametrize("tail,text", [
    (["--below_h0", "zero", "--map", "date=date,precipitation=p,discharge=q", "--discharge_unit", "m3/s"],
     "--below_h0 zero reads a water level below the rating curve's zero-flow stage as no flow; it needs --map "
     "stage=COL with --rating"),
    (["--below_h0", "zero", "--map", "date=date,precipitation=p,stage=h", "--rating", "TABLE"],
     "--below_h0 zero: the rating table's lowest row (h=0.1 m) has Q = 2 m3/s, not 0"),
    (["--below_h0", "dry", *STAGE_ONLY], "argument --below_h0: invalid choice: 'dry'")],
    ids=["with-discharge", "table-lowest-q-not-zero", "unknown"])
def test_below_h0_zero_where_it_cannot_mean_no_flow_is_one_line(tail, text, tmp_path, capsys):
    f = _dry_season_station(tmp_path, dry_days=3)
    (tmp_path / "t.csv").write_text("h,Q\n0.1,2\n1,12\n2,50\n", encoding="utf-8")
    tail = [str(tmp_path / "t.csv") if t == "TABLE" else t for t in tail]
    rc, _, err = run(capsys, ["station", "import", str(f), "--id", "x", "--out", str(tmp_path / "d"), *tail])
    lines = err.strip().splitlines()
    assert rc == 2 and text in lines[-1], err
    assert not (tmp_path / "d").exists()


def test_below_h0_zero_on_hourly_stages_counts_values_and_days_and_a_partly_dry_day_averages_its_zeros(
        tmp_path, capsys):
    """Hourly water levels at 1.0 m (Q = 12.5·0.85^1.6) with 3 whole days and 5 hours of a fourth below h0: 77 values
    on 4 days read as zero flow; the fourth day's discharge is the mean of 19 hours of flow and 5 of none. With the
    default those 5 hours are missing, over the day's 10 % allowance, and the day is missing."""
    idx = pd.date_range("2018-01-01", periods=DAYS * 24, freq="h")
    h = np.full(len(idx), 1.0)
    h[24 * 100:24 * 103] = 0.05          # days 100-102 dry
    h[24 * 103:24 * 103 + 5] = 0.05      # the first 5 hours of day 103
    f = tmp_path / "hourly.csv"
    f.write_text("time,p,h\n" + "".join(f"{t:%Y-%m-%d %H:%M},0.1,{v}\n" for t, v in zip(idx, h)), encoding="utf-8")
    argv = ["station", "import", str(f), "--map", "date=time,precipitation=p,stage=h", "--rating",
            "a=12.5,b=1.6,h0=0.15"]
    rc, stdout, err = run(capsys, [*argv, "--id", "hz", "--out", str(tmp_path / "d"), "--below_h0", "zero"])
    assert rc == 0, err
    assert f"{DAYS * 24} values; 77 below the curve (read as zero flow, --below_h0 zero, on 4 days)" in stdout
    q = pd.read_csv(tmp_path / "d" / "timeseries" / "hz.csv")["discharge_vol"]
    full, rel = 12.5 * 0.85 ** 1.6, 5e-6   # the file writes 6 significant digits: half a unit of the 6th
    assert (q.iloc[100:103] == 0.0).all()
    assert q.iloc[103] == pytest.approx(full * 19 / 24, rel=rel) and q.iloc[104] == pytest.approx(full, rel=rel)
    rc, stdout, err = run(capsys, [*argv, "--id", "hm", "--out", str(tmp_path / "d")])
    assert rc == 0, err
    q = pd.read_csv(tmp_path / "d" / "timeseries" / "hm.csv")["discharge_vol"]
    assert q.iloc[100:104].isna().all() and q.iloc[104] == pytest.approx(full, rel=rel)


def test_below_h0_zero_with_a_rating_table_reads_stages_below_its_lowest_row_at_q_0_as_no_flow(tmp_path, capsys):
    """A table whose lowest row (0.1 m) holds Q = 0 starts flowing there: three days at 0.05 m are no flow, and a
    day on a row gives the row's Q (1 m: 12 m3/s)."""
    f = _dry_season_station(tmp_path, dry_days=3)
    (tmp_path / "t.csv").write_text("h,Q\n0.1,0\n1,12\n2,50\n", encoding="utf-8")
    rc, stdout, err = run(capsys, ["station", "import", str(f), "--id", "tz", "--out", str(tmp_path / "d"), "--map",
                                   "date=date,precipitation=p,stage=h", "--rating", str(tmp_path / "t.csv"),
                                   "--below_h0", "zero"])
    assert rc == 0, err
    assert "3 below the curve (read as zero flow, --below_h0 zero, on 3 days)" in stdout
    q = pd.read_csv(tmp_path / "d" / "timeseries" / "tz.csv")["discharge_vol"]
    assert (q.iloc[100:103] == 0.0).all() and q.iloc[0] == 12.0 and q.notna().all()
