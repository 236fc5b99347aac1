"""Property tests of the CAMELS-GB timeseries reader.

Whatever the column order, extra columns, blank lines, BOM, line endings, date format, row order or
missing values, ``read_timeseries`` returns exactly the values written, or raises ``DataError``; it
never raises anything else, and it never swaps day and month.
"""

from __future__ import annotations

import datetime as dt
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sca2lstm.data.camels_gb import QC_RANGES, TIMESERIES_COLUMNS, read_timeseries
from sca2lstm.errors import DataError

BASIN = "32006"
FUZZ = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
NA_TOKENS = ["NaN", "nan", "", "NA"]
# (strftime format, year first?, day before month?)
DATE_FORMATS = [("%Y-%m-%d", True, False), ("%Y/%m/%d", True, False), ("%Y-%m-%d 00:00:00", True, False),
                ("%d/%m/%Y", False, True), ("%m/%d/%Y", False, False), ("%d.%m.%Y", False, True)]


def _read(text: bytes):
    with tempfile.TemporaryDirectory() as d:
        ts = Path(d) / "timeseries"
        ts.mkdir()
        (ts / f"CAMELS_GB_hydromet_timeseries_{BASIN}_19700101-19700101.csv").write_bytes(text)
        return read_timeseries(d, BASIN)


@st.composite
def timeseries_files(draw):
    start = draw(st.dates(dt.date(1900, 1, 1), dt.date(2050, 12, 31)))
    offsets = sorted(draw(st.sets(st.integers(0, 70), min_size=1, max_size=40)))
    dates = [start + dt.timedelta(days=o) for o in offsets]
    others = draw(st.lists(st.sampled_from([c for c in TIMESERIES_COLUMNS if c != "discharge_vol"]),
                           unique=True, max_size=4))
    value_cols = ["discharge_vol", *others]
    extras = draw(st.lists(st.sampled_from(["notes", "station", "qc_flag", "Unnamed: 0"]), unique=True, max_size=2))
    columns = draw(st.permutations(["date", *value_cols, *extras]))

    values, cells = {}, {}
    for c in value_cols:
        lo, hi = QC_RANGES[c]
        hi = 1000.0 if hi is None else hi
        col_v, col_t = [], []
        for _ in dates:
            if draw(st.integers(0, 9)) == 0:  # about 10 % missing
                col_v.append(np.nan)
                col_t.append(draw(st.sampled_from(NA_TOKENS)))
            else:
                v = round(draw(st.floats(lo, hi, allow_nan=False)), draw(st.integers(0, 4)))
                text = draw(st.sampled_from([repr(v), f"{v:.4f}", f"{v:g}"]))
                col_v.append(float(text))
                col_t.append(text)
        values[c], cells[c] = col_v, col_t
    for c in extras:
        cells[c] = [draw(st.sampled_from(["a", "x1", "7", "ok"])) for _ in dates]

    fmt, year_first, day_first = draw(st.sampled_from(DATE_FORMATS))
    cells["date"] = [d.strftime(fmt) for d in dates]
    order = draw(st.permutations(range(len(dates))))
    lines = [",".join(columns)]
    for i in order:
        lines.append(",".join(cells[c][i] for c in columns))
        if draw(st.integers(0, 7)) == 0:
            lines.append("")  # a blank line
    eol = draw(st.sampled_from(["\n", "\r\n"]))
    text = (eol.join(lines) + eol).encode("utf-8")
    if draw(st.booleans()):
        text = b"\xef\xbb\xbf" + text

    # A year-last column is readable only where it shows which field is the day.
    days_above_12 = any(d.day > 12 for d in dates)
    readable = year_first or days_above_12 or all(d.day == d.month for d in dates)
    index = pd.DatetimeIndex(pd.to_datetime(dates))
    expected = pd.DataFrame({c: values[c] for c in value_cols}, index=index)
    return text, expected, readable


@FUZZ
@given(timeseries_files())
def test_reader_returns_what_was_written_or_a_data_error(case):
    text, expected, readable = case
    try:
        got = _read(text)
    except DataError as e:
        assert not readable, f"a readable file was refused: {e}"
        assert "do not show which" in str(e)
        return
    assert readable, "a day/month order that the values cannot show was guessed"
    full = pd.date_range(expected.index.min(), expected.index.max(), freq="D")
    assert list(got.index) == list(full)  # sorted, daily, gaps inserted as missing
    assert set(got.columns) == set(expected.columns)
    want = expected.reindex(full)
    for c in expected.columns:
        np.testing.assert_array_equal(got[c].to_numpy(), want[c].to_numpy(), err_msg=c)


@st.composite
def mutated_files(draw):
    """A valid small file with random bytes inserted, deleted or replaced."""
    rows = ["date,precipitation,discharge_vol"] + [f"1971-01-{d:02d},{d * 0.5:.1f},{d * 1.25:.2f}" for d in range(1, 21)]
    data = bytearray("\n".join(rows).encode())
    for _ in range(draw(st.integers(1, 6))):
        pos = draw(st.integers(0, len(data)))
        op = draw(st.sampled_from(["insert", "delete", "replace"]))
        chunk = draw(st.binary(min_size=1, max_size=4) | st.sampled_from([b",", b"\n", b"\"", b"-", b"/", b"\xef\xbb\xbf"]))
        if op == "insert":
            data[pos:pos] = chunk
        elif op == "delete":
            del data[pos:pos + len(chunk)]
        else:
            data[pos:pos + len(chunk)] = chunk
    return bytes(data)


@FUZZ
@given(mutated_files())
def test_damaged_file_never_raises_anything_but_data_error(text):
    try:
        got = _read(text)
    except DataError as e:
        assert "\n" not in str(e)
        return
    assert isinstance(got.index, pd.DatetimeIndex) and got.index.is_monotonic_increasing
    assert got.index.is_unique and (got.index.normalize() == got.index).all()
    assert "discharge_vol" in got.columns
