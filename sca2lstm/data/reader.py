"""Reading basin data in one documented layout ("GenericDataset"), CAMELS-GB's included.

Layout of a data folder ``DIR``::

    DIR/timeseries/<id>.csv                                           generic naming
    DIR/timeseries/<id>.csv.gz                                        (gzip, read transparently)
    DIR/timeseries/CAMELS_GB_hydromet_timeseries_<id>_<YYYYMMDD>-<YYYYMMDD>.csv[.gz]   CAMELS-GB naming
    DIR/attributes/*.csv[.gz]                                         static attributes, any file names
    DIR/CAMELS_GB_*_attributes.csv[.gz]                               (the official EIDC download)

- **Basin ids** are strings of letters, digits, ``-`` and ``_`` (``32006``, ``DE110000``,
  ``my-gauge``). The basins of a folder are its timeseries files; other files there are ignored. Two
  files for one id (any naming or compression) are an error that names both.
- **Timeseries** files are UTF-8 CSV (read through :mod:`.tables`) with a ``date`` column (``YYYY-MM-DD``; see :func:`_parse_dates` for
  the other accepted forms) and any of the columns in :data:`TIMESERIES_COLUMNS`: ``precipitation``
  (mm/d), ``temperature`` (degC), ``pet`` / ``peti`` (mm/d), ``discharge_vol`` (m3/s),
  ``discharge_spec`` (mm/d), ``humidity`` (%), ``shortwave_rad`` / ``longwave_rad`` (W/m2),
  ``windspeed`` (m/s). Missing columns are normal: a column the model needs and a basin lacks is
  masked by the loader. ``discharge_vol`` is derived as ``discharge_spec * area / 86.4`` (``area`` in
  km2 from the attributes) when a file has only ``discharge_spec``. Missing days become NaN rows;
  physically impossible values become NaN with one warning per basin.
- **Attributes**: every ``*.csv`` (or ``*.csv.gz``) in ``DIR/attributes/`` plus any top-level
  ``CAMELS_GB_*_attributes.csv``, each with a ``gauge_id`` column, merged on ``gauge_id`` (a string;
  where two files hold the same attribute, the first file in name order that has a value wins). A basin
  absent from the files, or without a value, gets NaN, which the model sees as a flagged missing value.
  A requested attribute that no file has is an error naming it; a folder with no attribute file at
  all is accepted (every attribute masked, with one warning). ``area`` (km2) and ``gauge_lat``
  (degrees north) are used by the loader when present.
"""

from __future__ import annotations

import logging
import os
import re
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import DataError
from . import tables

log = logging.getLogger(__name__)

ATTRIBUTE_GROUPS = ("climatic", "humaninfluence", "hydrogeology", "hydrologic", "hydrometry",
                    "landcover", "soil", "topographic")
TIMESERIES_COLUMNS = ("precipitation", "pet", "temperature", "discharge_spec", "discharge_vol", "peti",
                      "humidity", "shortwave_rad", "longwave_rad", "windspeed")
BASIN_ID = re.compile(r"^[A-Za-z0-9_-]+$")
_CAMELS_NAME = re.compile(r"^CAMELS_GB_hydromet_timeseries_(?P<id>[A-Za-z0-9_-]+?)_\d{8}-\d{8}\.csv(\.gz)?$")
_GENERIC_NAME = re.compile(r"^(?P<id>[A-Za-z0-9_-]+)\.csv(\.gz)?$")
# What to do with a layout file that is not UTF-8: the commands that read the layout have no --encoding.
SAVE_AS_UTF8 = ("save it as UTF-8 (in Excel: CSV UTF-8), the encoding of the data layout, or import a station's own "
                "file in another encoding with sca2lstm station import --encoding")
SECONDS_PER_DAY_OVER_1000 = 86.4  # mm/d * km2 -> m3/s: 1e-3 m * 1e6 m2 / 86400 s

# Physically possible ranges; values outside become missing (NaN) with a counted warning.
QC_RANGES = {
    "precipitation": (0.0, 500.0),
    "pet": (0.0, 50.0),
    "peti": (0.0, 50.0),
    "temperature": (-60.0, 60.0),
    # Above 2000 mm/d (the world's one-day rainfall record is 1825 mm) and 1e6 m3/s (three times the Amazon's
    # greatest flow) no river flows: a fill value (1e30, 9.99e36) that would make a basin's scaling overflow.
    "discharge_spec": (0.0, 2000.0),
    "discharge_vol": (0.0, 1e6),
    "humidity": (0.0, 100.0),
    "shortwave_rad": (0.0, 1500.0),
    "longwave_rad": (0.0, 1000.0),
    "windspeed": (0.0, 100.0),
}


def _require_dir(data_dir) -> Path:
    p = Path(data_dir).expanduser()
    if p.exists() and not p.is_dir():
        raise DataError(f"data folder {p} is a file, not a folder; expected a data folder with timeseries/")
    if not p.is_dir():
        raise DataError(f"data folder {p} does not exist; expected a data folder with timeseries/")
    return p


def nested_data_folders(folder: Path) -> list[Path]:
    """Folders one or two levels below ``folder`` that hold ``timeseries/``: the data folder meant, where the
    folder given is the one above it (e.g. the download's folder around the unzipped dataset)."""
    found = []
    for pattern in ("*/timeseries", "*/*/timeseries"):
        found += sorted(t.parent for t in folder.glob(pattern) if t.is_dir())
        if found:
            break
    return found


def timeseries_dir(data_dir) -> Path:
    p = _require_dir(data_dir) / "timeseries"
    if not p.is_dir():
        inner = nested_data_folders(p.parent)
        hint = f"; did you mean {inner[0]}, which holds timeseries/?" if len(inner) == 1 else (
            f"; the folders below it that hold timeseries/ are {', '.join(map(str, inner[:5]))}" if inner else "")
        raise DataError(f"{p} does not exist; expected timeseries CSVs in data_dir/timeseries/{hint}")
    return p


def is_camels_gb_name(name: str) -> bool:
    """Whether a timeseries file name follows the CAMELS-GB naming (a downloaded dataset's file)."""
    return _CAMELS_NAME.match(name) is not None


def basin_id_of(name: str) -> str | None:
    """The basin id a timeseries file name stands for, or None when the name is not a timeseries file."""
    m = _CAMELS_NAME.match(name) or _GENERIC_NAME.match(name)
    return m.group("id") if m else None


@lru_cache(maxsize=16)
def _index_cached(names: tuple) -> dict:
    files: dict[str, list[str]] = {}
    for name in names:
        bid = basin_id_of(name)
        if bid is not None:
            files.setdefault(bid, []).append(name)
    return {k: sorted(v) for k, v in files.items()}


def _index(data_dir) -> tuple[Path, dict]:
    """(timeseries folder, {id: [file names]}); parsed once per distinct listing of the folder."""
    ts = timeseries_dir(data_dir)
    try:
        names = tuple(sorted(os.listdir(ts)))
    except OSError as e:
        raise DataError(f"cannot list {ts}: {e.strerror}") from None
    return ts, _index_cached(names)


def _one_file(ts: Path, basin: str, names: list) -> Path:
    if len(names) > 1:
        raise DataError(f"basin {basin!r} has {len(names)} timeseries files in {ts}: "
                        f"{' and '.join(names)}; keep one")
    return ts / names[0]


def list_basins(data_dir) -> list[str]:
    """Basin ids of the timeseries files present, sorted. An id with two files is listed; reading it
    (:func:`timeseries_file`) is the error that names both, so a run over many basins can leave it out."""
    ts, idx = _index(data_dir)
    if not idx:
        raise DataError(f"no timeseries files in {ts}; expected <id>.csv[.gz] or "
                        f"CAMELS_GB_hydromet_timeseries_<id>_<start>-<end>.csv[.gz]")
    return sorted(idx)


def _nearest_ids(typed: str, known: list, n: int = 3) -> list:
    """Up to ``n`` ids like ``typed`` (a digit off, one left out or doubled): most alike first, then the longest
    common start (32006 before 83006 for 32007), then the nearest number."""
    import difflib

    def prefix(k):
        return len(os.path.commonprefix([typed, k]))

    def gap(k):
        return abs(int(k) - int(typed)) if k.isdigit() and typed.isdigit() else 0

    scored = [(difflib.SequenceMatcher(None, typed, k).ratio(), k) for k in known]
    close = [(r, k) for r, k in scored if r >= 0.6]
    return [k for _, k in sorted(close, key=lambda rk: (-round(rk[0], 6), -prefix(rk[1]), gap(rk[1]), rk[1]))[:n]]


def timeseries_file(data_dir, basin: str) -> Path:
    """The one timeseries file of ``basin``; DataError when there is none or more than one."""
    ts, idx = _index(data_dir)
    names = idx.get(str(basin))
    if not names:
        known = sorted(idx)
        # the id as a whole word of a longer name: another dataset's naming, read as <id>.csv (e.g.
        # CAMELS_DE_hydromet_timeseries_DE110000.csv.gz); not an id that merely contains it (3200 in 32003)
        word = re.compile(rf"(^|[_.-]){re.escape(str(basin))}($|[_.-])")
        named = [k for k in known if k != str(basin) and word.search(k)]
        if named:
            raise DataError(f"unknown basin {basin!r}: its file in {ts} is named {idx[named[0]][0]}, which is not "
                            "the layout's <id>.csv or CAMELS-GB naming; bring a station in its own format in with "
                            "`sca2lstm station import` (docs/stations.md)")
        near = _nearest_ids(str(basin), known)  # a mistyped id: the ones meant
        hint = f"; did you mean {' or '.join(near)}?" if near else ""
        shown = ", ".join(known[:10]) + (f" ... ({len(known)} in all)" if len(known) > 10 else "")
        raise DataError(f"unknown basin {basin!r}: no timeseries file in {ts}{hint}; available: {shown or 'none'}")
    return _one_file(ts, str(basin), names)


def _read_csv_text(path: Path, encoding: str | None = "utf-8", **kwargs) -> pd.DataFrame:
    """A layout CSV (UTF-8, BOM and CRLF allowed, plain or gzip), typed by pandas, through :mod:`.tables`;
    ``encoding`` None: detected (UTF-8 where the bytes are UTF-8)."""
    return tables.read_csv(path, encoding=encoding, advice=SAVE_AS_UTF8, skip_blank_lines=True,
                           na_values=["NaN", "nan", "NA", ""],
                           keep_default_na=True, **kwargs)


def timeseries_columns(data_dir, basin: str) -> list[str]:
    """The column names of ``basin``'s timeseries file (its header; stripped, as :func:`read_timeseries` reads them)."""
    path = timeseries_file(data_dir, basin)
    return [str(c).strip() for c in _read_csv_text(path, nrows=0).columns]


def _shown_columns(columns, n: int | None = None) -> str:
    """A file's columns for a message (the first ``n``), with :func:`.tables.separator_hint`."""
    cols = [str(c) for c in columns]
    text = str(cols[:n] if n is not None else cols)
    hint = tables.separator_hint(cols)
    return f"{text[:120]}{'...' if len(text) > 120 else ''}{hint}" if hint else text


def read_timeseries(data_dir, basin: str, columns=None) -> pd.DataFrame:
    """Read one basin's daily timeseries, validated and quality-controlled.

    Parameters
    ----------
    data_dir : path
        Data folder (layout in the module docstring).
    basin : str
        Basin id, e.g. ``"32006"``.
    columns : sequence of str, optional
        Columns that must be present (default: ``discharge_vol``). ``discharge_vol`` counts as
        present when it can be derived from ``discharge_spec`` and the basin's ``area`` attribute.
        Every other known timeseries column in the file is returned too; absent ones are not.

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
        raise DataError(f"{path}: missing column 'date'; found columns {_shown_columns(df.columns)}")
    needed = list(columns) if columns is not None else ["discharge_vol"]
    derive_q = "discharge_vol" in needed and "discharge_vol" not in df.columns
    area = np.nan
    if derive_q and "discharge_spec" in df.columns:
        area = basin_attribute(data_dir, basin, "area")
    if derive_q and not (area > 0):
        why = ("no discharge_spec either" if "discharge_spec" not in df.columns
               else "its discharge_spec cannot be converted: no positive 'area' attribute (km2)"
               + _absent_row(str(basin), attribute_table(data_dir).index))
        raise DataError(f"basin {basin}: {path.name} has no column 'discharge_vol' (m3/s) and {why}; "
                        f"found columns {list(df.columns)}")
    missing = [c for c in needed if c not in df.columns and not (c == "discharge_vol" and derive_q)]
    if missing:
        raise DataError(f"{path}: missing column(s) {missing}; found columns {list(df.columns)}")
    if len(df) == 0:
        raise DataError(f"{path} has a header but no data rows; expected one row per day")
    dates = _parse_dates(df["date"], path)
    if dates.duplicated().any():
        second = int(np.flatnonzero(dates.duplicated().to_numpy())[0])
        first = int(np.flatnonzero((dates == dates.iloc[second]).to_numpy())[0])
        a, b = (str(df["date"].iloc[i]).strip() for i in (first, second))
        rows = f"rows {first + 2} and {second + 2}"
        if a != b:  # the same day at two times of day: a sub-daily record, which the layout does not take
            raise DataError(f"{path}: several rows per day ({a!r} and {b!r}, {rows}): an hourly or sub-daily "
                            "record? the layout takes one row per day; `sca2lstm station import` makes days of it")
        raise DataError(f"{path}: duplicate date {dates.iloc[second].date()} ({rows}); expected one row per day")
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
    if derive_q:
        out["discharge_vol"] = out["discharge_spec"] * area / SECONDS_PER_DAY_OVER_1000
    return out


def _parse_dates(values: pd.Series, path: Path) -> pd.Series:
    """The ``date`` column as days (:func:`.tables.parse_dates`, which never guesses day against month; a
    time of day is dropped)."""
    dates = tables.parse_dates(values.astype(str), column="date", source=str(path))
    return pd.Series(dates.normalize(), index=values.index)


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


# ---------------------------------------------------------------------------------------- attributes
def attribute_files(data_dir) -> list[Path]:
    """Every ``attributes/*.csv`` and top-level ``CAMELS_GB_*_attributes.csv``, plain or gzipped as the timeseries
    may be (a gzipped one was ignored: every attribute masked), in name order."""
    root = _require_dir(data_dir)
    sub = root / "attributes"
    files = sorted([*sub.glob("*.csv"), *sub.glob("*.csv.gz")]) if sub.is_dir() else []
    return files + sorted([*root.glob("CAMELS_GB_*_attributes.csv"), *root.glob("CAMELS_GB_*_attributes.csv.gz")])


def attribute_file(data_dir, group: str) -> Path:
    """Path of ``CAMELS_GB_<group>_attributes.csv`` in either CAMELS-GB layout."""
    root = _require_dir(data_dir)
    name = f"CAMELS_GB_{group}_attributes.csv"
    for cand in (root / "attributes" / name, root / name):
        if cand.is_file():
            return cand
    raise DataError(f"attribute file {name} not found in {root}/attributes/ or {root}/")


def _number_ids_as_text(ids: pd.Series) -> pd.Series:
    """``ids`` with each id a spreadsheet wrote as a whole number with decimals (32006.0, for 32006) as the number's
    digits. A basin id holds no '.' (:mod:`sca2lstm.data.ids`), so such a cell is the id stored as a number, never
    another id; read as written, its basin had no row and every attribute of it was masked without a word."""
    return ids.str.replace(r"^(\d+)\.0+$", r"\1", regex=True)


@lru_cache(maxsize=8)
def _attribute_table_cached(key: tuple) -> pd.DataFrame:
    frames = []
    for name, _, _ in key:
        path = Path(name)
        # ids are text: a station code 01010500 read as a number would lose its zero and its attributes. The
        # encoding is detected: an attribute table opened and saved again in Excel or WPS on a Chinese system is
        # GBK (station names), and the reading commands have no --encoding to give; UTF-8 is read as UTF-8.
        df = _read_csv_text(path, encoding=None, dtype={"gauge_id": str})
        df.columns = [str(c).strip() for c in df.columns]
        if "gauge_id" not in df.columns:
            raise DataError(f"{path}: missing column 'gauge_id'; found columns {_shown_columns(df.columns, 8)}")
        df["gauge_id"] = _number_ids_as_text(df["gauge_id"].astype(str).str.strip())
        dup = df["gauge_id"].duplicated()
        if dup.any():
            raise DataError(f"{path}: gauge_id {df['gauge_id'][dup].iloc[0]!r} appears twice; one row per basin")
        frames.append(df.set_index("gauge_id"))
    if not frames:
        return pd.DataFrame(index=pd.Index([], name="gauge_id"))
    table = frames[0]
    for f in frames[1:]:
        # Shared columns: the earlier file's value wins where it has one; new basins and columns join.
        table = table.combine_first(f) if set(f.columns) & set(table.columns) else table.join(f, how="outer")
    table.index.name = "gauge_id"
    return table


def attribute_table(data_dir) -> pd.DataFrame:
    """All attribute files merged on ``gauge_id`` (rows: basins as strings; columns: attributes, raw).

    Cached per set of files (name, size, modification time), so many basins read them once.
    """
    key = []
    for p in attribute_files(data_dir):
        try:
            st = p.stat()
        except OSError as e:
            raise DataError(f"cannot read {p}: {e.strerror}") from None
        key.append((str(p.resolve()), st.st_size, st.st_mtime_ns))
    return _attribute_table_cached(tuple(key))


def basin_attribute(data_dir, basin: str, name: str) -> float:
    """One numeric attribute of one basin, NaN when no file holds it (or it is not a number)."""
    table = attribute_table(data_dir)
    if name not in table.columns or str(basin) not in table.index:
        return float("nan")
    v = pd.to_numeric(pd.Series([table.at[str(basin), name]]), errors="coerce").iloc[0]
    return float(v)


def _zero_padded_twin(basin: str, ids) -> str | None:
    """The gauge_id of ``ids`` that is ``basin`` with more or fewer leading zeros (1234 for 01234), or None."""
    key = basin.lstrip("0")
    return next((str(i) for i in ids if str(i).lstrip("0") == key and str(i) != basin), None)


def _absent_row(basin: str, ids) -> str:
    """Words for a message where ``basin`` has no attribute row: '' where it has one."""
    if basin in ids:
        return ""
    twin = _zero_padded_twin(basin, ids)
    return (f" (the attribute files have no row for it, but one for gauge_id {twin!r}: ids are text and leading zeros "
            "count; write the id alike in both)" if twin else " (the attribute files have no row for it)")


def _warn_zero_padded(basins: pd.Index, ids: pd.Index) -> None:
    """One warning for each basin without an attribute row whose id the attribute files write with more or fewer
    leading zeros (01234 and 1234): ids are text, so its attributes are masked, and the files tell why."""
    for b in basins.difference(ids):
        other = _zero_padded_twin(b, ids)
        if other is not None:
            log.warning("basin %s has no row in the attribute files, which have gauge_id %r: ids are text and leading "
                        "zeros count, so its attributes are masked; write the id alike in both", b, other)


def read_attributes(data_dir, basins, names, allow_absent: bool = False) -> pd.DataFrame:
    """Static attributes of ``basins`` (rows) for ``names`` (columns), as float.

    Y/N columns become 1/0 explicitly; any other non-numeric attribute requested is an error. A
    basin absent from the attribute files, or a missing value, stays NaN: the caller flags it. An
    attribute that no file has is a DataError, unless the folder has no attribute file at all (then
    every value is NaN, with one warning), or ``allow_absent`` (fine-tuning and prediction: the model's
    attributes are fixed and a station's unknown ones are masked).
    """
    names = list(names)
    index = pd.Index([str(b) for b in basins], name="gauge_id")
    if not names:
        return pd.DataFrame(index=index)
    allattrs = attribute_table(data_dir)
    if len(allattrs.columns) == 0:
        log.warning("no attribute files in %s (attributes/*.csv[.gz]): all %d static attributes are masked as "
                    "missing", data_dir, len(names))
        return pd.DataFrame(np.nan, index=index, columns=names)
    unknown = [n for n in names if n not in allattrs.columns]
    if unknown and allow_absent:
        allattrs = allattrs.reindex(columns=[*allattrs.columns, *unknown])
    elif unknown:
        raise DataError(f"static attribute(s) {unknown} are not in any attribute file of {data_dir}; "
                        f"remove them from data.static_attributes")
    _warn_zero_padded(index, allattrs.index)
    sub = allattrs.reindex(index)[names]
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
