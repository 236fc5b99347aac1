"""Reading CAMELS-GB: daily timeseries and the eight attribute files.

Two layouts are accepted:

- NeuralHydrology's: ``data_dir/attributes/CAMELS_GB_*_attributes.csv`` and ``data_dir/timeseries/``;
- the official EIDC download: the attribute CSVs directly in ``data_dir``, beside ``timeseries/``.

The basins of a dataset are the timeseries files that exist (the attribute files list all 671).
Physically impossible values are set to missing with one warning per basin that counts them per column.
"""

from __future__ import annotations

import io
import logging
import re
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import DataError

log = logging.getLogger(__name__)

ATTRIBUTE_GROUPS = ("climatic", "humaninfluence", "hydrogeology", "hydrologic", "hydrometry",
                    "landcover", "soil", "topographic")
TIMESERIES_COLUMNS = ("precipitation", "pet", "temperature", "discharge_spec", "discharge_vol", "peti",
                      "humidity", "shortwave_rad", "longwave_rad", "windspeed")
_TS_PATTERN = re.compile(r"^CAMELS_GB_hydromet_timeseries_(?P<id>[^_]+)_\d{8}-\d{8}\.csv$")

# Physically possible ranges; values outside become missing (NaN) with a counted warning.
QC_RANGES = {
    "precipitation": (0.0, 500.0),
    "pet": (0.0, 50.0),
    "peti": (0.0, 50.0),
    "temperature": (-60.0, 60.0),
    "discharge_spec": (0.0, None),
    "discharge_vol": (0.0, None),
    "humidity": (0.0, 100.0),
    "shortwave_rad": (0.0, 1500.0),
    "longwave_rad": (0.0, 1000.0),
    "windspeed": (0.0, 100.0),
}


def _require_dir(data_dir) -> Path:
    p = Path(data_dir).expanduser()
    if not p.is_dir():
        raise DataError(f"data folder {p} does not exist; expected a CAMELS-GB folder with timeseries/")
    return p


def timeseries_dir(data_dir) -> Path:
    p = _require_dir(data_dir) / "timeseries"
    if not p.is_dir():
        raise DataError(f"{p} does not exist; expected CAMELS-GB timeseries CSVs in data_dir/timeseries/")
    return p


def attribute_file(data_dir, group: str) -> Path:
    """Path of ``CAMELS_GB_<group>_attributes.csv`` in either layout."""
    root = _require_dir(data_dir)
    name = f"CAMELS_GB_{group}_attributes.csv"
    for cand in (root / "attributes" / name, root / name):
        if cand.is_file():
            return cand
    raise DataError(f"attribute file {name} not found in {root}/attributes/ or {root}/")


def list_basins(data_dir) -> list[str]:
    """Gauge ids of the timeseries files present, sorted."""
    ts = timeseries_dir(data_dir)
    ids = sorted({m.group("id") for f in ts.iterdir() if (m := _TS_PATTERN.match(f.name))})
    if not ids:
        raise DataError(f"no CAMELS_GB_hydromet_timeseries_<id>_<start>-<end>.csv files in {ts}")
    return ids


def timeseries_file(data_dir, basin: str) -> Path:
    ts = timeseries_dir(data_dir)
    hits = sorted(ts.glob(f"CAMELS_GB_hydromet_timeseries_{basin}_*.csv"))
    if not hits:
        known = list_basins(data_dir)
        shown = ", ".join(known[:10]) + (" ..." if len(known) > 10 else "")
        raise DataError(f"unknown basin {basin!r}: no timeseries file in {ts}; available: {shown}")
    if len(hits) > 1:  # which one is meant is not ours to guess
        raise DataError(f"basin {basin!r}: several timeseries files in {ts}: {', '.join(h.name for h in hits)}; "
                        "keep exactly one")
    return hits[0]


def _read_csv_text(path: Path) -> pd.DataFrame:
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise DataError(f"cannot read {path}: {e.strerror}") from None
    if not raw.strip():
        raise DataError(f"{path} is empty; expected a CSV with a header row")
    # utf-8-sig drops a byte-order mark; universal newlines handle CRLF.
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise DataError(f"{path} is not UTF-8 text") from None
    try:
        return pd.read_csv(io.StringIO(text), skip_blank_lines=True, na_values=["NaN", "nan", "NA", ""],
                           keep_default_na=True)
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as e:
        raise DataError(f"{path} is not a readable CSV: {str(e).splitlines()[0]}") from None


def read_timeseries(data_dir, basin: str, columns=None) -> pd.DataFrame:
    """Read one basin's daily timeseries, validated and quality-controlled.

    Parameters
    ----------
    data_dir : path
        CAMELS-GB folder (either layout).
    basin : str
        Gauge id, e.g. ``"32006"``.
    columns : sequence of str, optional
        Columns that must be present (default: all CAMELS-GB timeseries columns that are there, with
        ``date`` and ``discharge_vol`` required).

    Returns
    -------
    pandas.DataFrame
        Indexed by a daily, gap-free ``DatetimeIndex`` named ``date`` (missing days are inserted as
        NaN rows), float64 columns.
    """
    path = timeseries_file(data_dir, basin)
    df = _read_csv_text(path)
    df.columns = [str(c).strip() for c in df.columns]
    # An extra unnamed index column (written by pandas' to_csv with index=True) is harmless: drop it.
    df = df.loc[:, [c for c in df.columns if not c.startswith("Unnamed:")]]
    if "date" not in df.columns:
        raise DataError(f"{path}: missing column 'date'; found columns {list(df.columns)}")
    needed = list(columns) if columns is not None else ["discharge_vol"]
    missing = [c for c in needed if c not in df.columns]
    if missing:
        raise DataError(f"{path}: missing column(s) {missing}; found columns {list(df.columns)}")
    if len(df) == 0:
        raise DataError(f"{path} has a header but no data rows; expected one row per day")
    dates = _parse_dates(df["date"], path)
    if dates.duplicated().any():
        dup = dates[dates.duplicated()].iloc[0].date()
        raise DataError(f"{path}: duplicate date {dup}; expected one row per day")
    value_cols = [c for c in df.columns if c in TIMESERIES_COLUMNS or c in needed]
    out = pd.DataFrame(index=pd.DatetimeIndex(dates, name="date"))
    for c in value_cols:
        vals = pd.to_numeric(df[c], errors="coerce")
        bad = vals.isna() & df[c].notna()
        if bad.any():
            raise DataError(f"{path}: column {c!r} has a non-numeric value {df[c][bad].iloc[0]!r} "
                            f"(row {int(bad.to_numpy().argmax()) + 2})")
        out[c] = vals.to_numpy(dtype=np.float64)
    out = out.sort_index()  # unsorted dates are accepted and sorted
    full = pd.date_range(out.index[0], out.index[-1], freq="D", name="date")
    if len(full) != len(out):
        out = out.reindex(full)
    _quality_control(out, basin)
    return out


_YEAR_FIRST = re.compile(r"^\d{4}([-/.])\d{1,2}\1\d{1,2}([ T]\d{1,2}:\d{2}(:\d{2}(\.\d+)?)?)?$")
_YEAR_LAST = re.compile(r"^(\d{1,2})([-/.])(\d{1,2})\2(\d{4})$")


def _parse_dates(values: pd.Series, path: Path) -> pd.Series:
    """Parse the ``date`` column; a day and a month are never guessed.

    Accepted: year first (``YYYY-MM-DD``, ``YYYY/MM/DD``, ``YYYY.MM.DD``, optionally with a time of
    day, which is dropped), or year last (``DD/MM/YYYY`` or ``MM/DD/YYYY``) when the column itself
    shows which field is the day (some value above 12 in it and none in the other). Anything else,
    including a year-last column whose order cannot be told, is a DataError.
    """
    s = values.astype(str).str.strip()
    year_first = s.str.match(_YEAR_FIRST).to_numpy(dtype=bool)
    parts = s.str.extract(_YEAR_LAST)
    year_last = parts[0].notna().to_numpy()
    if year_first.all():
        iso = s.str.replace(r"^(\d{4})[/.](\d{1,2})[/.](\d{1,2})", r"\1-\2-\3", regex=True)
        parsed = pd.to_datetime(iso, format="ISO8601", errors="coerce")
    elif year_last.all():
        a, b = parts[0].astype(int), parts[2].astype(int)
        if (a == b).all():  # 01/01, 02/02, ...: the same date either way
            day, month = a, b
        elif (a > 12).any() and not (b > 12).any():
            day, month = a, b
        elif (b > 12).any() and not (a > 12).any():
            day, month = b, a
        else:
            raise DataError(f"{path}: column 'date' is day/month/year or month/day/year and the values "
                            f"(e.g. {s.iloc[0]!r}) do not show which; expected YYYY-MM-DD")
        parsed = pd.to_datetime(pd.DataFrame({"year": parts[3].astype(int), "month": month, "day": day}),
                                errors="coerce")
    else:
        form = year_first if year_first[0] else year_last
        i = int((~form).argmax())
        raise DataError(f"{path}: column 'date' has a value that is not a date in the form of the first "
                        f"row: {values.iloc[i]!r} (row {i + 2}); expected YYYY-MM-DD")
    if parsed.isna().any():
        i = int(parsed.isna().to_numpy().argmax())
        raise DataError(f"{path}: column 'date' has a value that is not a date: {values.iloc[i]!r} (row {i + 2})")
    return parsed.dt.normalize()


def _quality_control(df: pd.DataFrame, basin: str) -> None:
    counts = {}
    for c, (lo, hi) in QC_RANGES.items():
        if c not in df.columns:
            continue
        v = df[c].to_numpy(dtype=np.float64, copy=True)  # a copy: pandas >= 3 returns read-only views
        bad = np.zeros(len(v), dtype=bool)
        with np.errstate(invalid="ignore"):
            if lo is not None:
                bad |= v < lo
            if hi is not None:
                bad |= v > hi
            bad |= np.isinf(v)
        n = int(bad.sum())
        if n:
            v[bad] = np.nan
            df[c] = v
            counts[c] = n
    if counts:
        detail = ", ".join(f"{c}: {n}" for c, n in counts.items())
        log.warning("basin %s: %d physically impossible values set to missing (%s)", basin,
                    sum(counts.values()), detail)


def read_attributes(data_dir, basins, names) -> pd.DataFrame:
    """Static attributes of ``basins`` (rows) for ``names`` (columns), as float.

    Y/N columns become 1/0 explicitly; any other non-numeric attribute requested is an error. A
    basin absent from the attribute files, or a missing value, stays NaN: the caller flags it.
    """
    names = list(names)
    if not names:
        return pd.DataFrame(index=pd.Index([str(b) for b in basins], name="gauge_id"))
    frames = []
    for group in ATTRIBUTE_GROUPS:
        path = attribute_file(data_dir, group)
        df = _read_csv_text(path)
        df.columns = [str(c).strip() for c in df.columns]
        if "gauge_id" not in df.columns:
            raise DataError(f"{path}: missing column 'gauge_id'; found columns {list(df.columns)[:8]}")
        df["gauge_id"] = df["gauge_id"].astype(str).str.strip()
        frames.append(df.set_index("gauge_id"))
    allattrs = pd.concat(frames, axis=1)
    allattrs = allattrs.loc[:, ~allattrs.columns.duplicated()]
    unknown = [n for n in names if n not in allattrs.columns]
    if unknown:
        raise DataError(f"static attribute(s) {unknown} are not in the CAMELS-GB attribute files of {data_dir}")
    sub = allattrs.reindex([str(b) for b in basins])[names]
    out = pd.DataFrame(index=sub.index)
    for c in names:
        col = sub[c]
        if not pd.api.types.is_numeric_dtype(col):  # object, or pandas >= 3's string dtype
            s = col.astype(str).str.strip().str.upper()
            yn = s.isin(["Y", "N"]) | col.isna()
            if yn.all():
                out[c] = np.where(col.isna(), np.nan, (s == "Y").astype(float))
                continue
            num = pd.to_numeric(col, errors="coerce")
            if (num.isna() & col.notna()).any():
                bad = col[num.isna() & col.notna()].iloc[0]
                raise DataError(f"static attribute {c!r} has a non-numeric value {bad!r}; choose numeric attributes")
            out[c] = num.astype(float)
        else:
            out[c] = col.astype(float)
    out.index.name = "gauge_id"
    return out
