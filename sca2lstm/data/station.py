"""Bring your own station: turn a gauge's own daily CSV into the generic data layout.

What is written into ``DIR`` (the layout every command reads through ``--data_dir``):

- ``DIR/timeseries/<id>.csv``: ``date`` (YYYY-MM-DD, one row per day from the first to the last day of
  the record; missing days are empty cells), ``precipitation`` (mm/d), ``temperature`` (degC, if
  mapped), ``pet`` (mm/d, if mapped), ``discharge_vol`` (m3/s) and ``discharge_spec`` (mm/d, when the
  area is known);
- ``DIR/attributes/stations.csv``: one row per station keyed by ``gauge_id``: ``area`` (km2),
  ``gauge_lat``, ``gauge_lon``, the ``--attr`` values and the climate attributes computed from the
  station's own meteorology (CAMELS-GB names and definitions); an attribute that is absent is masked
  for the model;
- ``DIR/meta/<id>.json``: provenance: source file and its sha256, column mapping, units, record period.

Every check runs before anything is written; the files are then written to temporary names and renamed
into place, so a failed import leaves ``DIR`` as it was, and importing a second station adds it without
changing the first (its row of ``stations.csv`` is kept as it was).
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import math
import os
import re
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import DataError, UsageError
from . import tables
from .ids import check_basin_id

log = logging.getLogger(__name__)

# Observed discharge a station needs at least: two years (fine-tuning splits it into train, validation
# and test parts, each with windows of up to a season of warm-up).
MIN_OBSERVED_DAYS = 730
# Below five years of observed discharge the import (and fine-tuning) warns: the test part is then
# one year or less, and its scores are uncertain.
WARN_OBSERVED_DAYS = 5 * 365
DISCHARGE_UNITS = ("m3/s", "l/s", "mm/d")
MAP_KEYS = ("date", "precipitation", "discharge", "temperature", "pet")
REQUIRED_MAP_KEYS = ("date", "precipitation", "discharge")
STATIONS_FILE = "stations.csv"
# CAMELS-GB climate attributes this importer computes from the station's own meteorology.
CLIMATE_ATTRIBUTES = ("p_mean", "pet_mean", "aridity", "high_prec_freq", "low_prec_freq", "frac_snow")
_NUMBER_COMMA = re.compile(r"^[+-]?\d+,\d+$")


@dataclass
class ImportOptions:
    """How to read one station's file. ``mapping`` maps MAP_KEYS to the file's column names."""

    station_id: str
    mapping: dict
    discharge_unit: str
    area_km2: float | None = None
    lat: float | None = None
    lon: float | None = None
    attributes: dict = field(default_factory=dict)
    sep: str = ","
    decimal: str = "."
    date_format: str | None = None
    na_values: tuple = ()
    overwrite: bool = False


@dataclass
class PreparedStation:
    """A validated station, ready to be written: nothing of it is on disk yet."""

    station_id: str
    timeseries: pd.DataFrame          # date index (daily, gap-free), output columns
    attributes: dict                  # name -> float (NaN never stored)
    computed: list                    # names of the attributes computed from the meteorology
    meta: dict
    summary: list                     # lines for the user: what was read and converted
    warnings: list


# ------------------------------------------------------------------------------------------ options
def parse_mapping(text) -> dict:
    """``date=Datum,precipitation=N,discharge=Q`` (or a dict) -> ``{key: column}``, keys checked."""
    if isinstance(text, dict):
        pairs = {str(k).strip(): str(v).strip() for k, v in text.items()}
    else:
        pairs = {}
        for part in str(text).split(","):
            if not part.strip():
                continue
            if "=" not in part:
                raise UsageError(f"--map entry {part.strip()!r} is not KEY=COLUMN; expected e.g. "
                                 "date=Datum,precipitation=N,discharge=Q")
            k, v = part.split("=", 1)
            pairs[k.strip()] = v.strip()
    unknown = [k for k in pairs if k not in MAP_KEYS]
    if unknown:
        raise UsageError(f"--map key(s) {unknown} unknown; allowed keys: {', '.join(MAP_KEYS)}")
    missing = [k for k in REQUIRED_MAP_KEYS if not pairs.get(k)]
    if missing:
        raise UsageError(f"--map lacks {missing}; it needs at least date=COL,precipitation=COL,discharge=COL")
    return pairs


def parse_attr(items) -> dict:
    """``["elev_mean=120", ...]`` (or a dict) -> ``{name: float}``."""
    pairs = items.items() if isinstance(items, dict) else [
        (s.split("=", 1) if "=" in s else (s, None)) for s in (items or [])]
    out = {}
    for name, value in pairs:
        name = str(name).strip()
        if value is None or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name) or name == "gauge_id":
            raise UsageError(f"--attr {name!r} is not NAME=VALUE with a name of letters, digits and '_' "
                             "(e.g. elev_mean=120)")
        try:
            v = float(str(value).strip())
        except ValueError:
            raise UsageError(f"--attr {name}={value!r}: the value must be a number") from None
        if not math.isfinite(v):
            raise UsageError(f"--attr {name}={value!r}: the value must be a finite number")
        out[name] = v
    return out


def check_options(o: ImportOptions) -> ImportOptions:
    """Validate the options that do not depend on the file (UsageError naming the culprit)."""
    o.station_id = check_basin_id(o.station_id)
    o.mapping = parse_mapping(o.mapping)
    if o.discharge_unit not in DISCHARGE_UNITS:
        raise UsageError(f"--discharge_unit {o.discharge_unit!r} unknown; choose from {', '.join(DISCHARGE_UNITS)}")
    if o.area_km2 is not None and not (math.isfinite(o.area_km2) and o.area_km2 > 0):
        raise UsageError(f"--area_km2 {o.area_km2} must be a number > 0 (km2)")
    if o.discharge_unit == "mm/d" and o.area_km2 is None:
        raise UsageError("--discharge_unit mm/d needs --area_km2: the model forecasts m3/s (q * area / 86.4)")
    if o.lat is not None and not (math.isfinite(o.lat) and -90 <= o.lat <= 90):
        raise UsageError(f"--lat {o.lat} is out of range; expected degrees north in [-90, 90]")
    if o.lon is not None and not (math.isfinite(o.lon) and -180 <= o.lon <= 180):
        raise UsageError(f"--lon {o.lon} is out of range; expected degrees east in [-180, 180]")
    if o.sep in ("\\t", "tab"):
        o.sep = "\t"
    if o.decimal not in (".", ","):
        raise UsageError(f"--decimal {o.decimal!r} unknown; choose '.' or ','")
    if o.decimal == o.sep:
        raise UsageError(f"--decimal {o.decimal!r} equals --sep; a decimal comma needs another separator "
                         "(e.g. --sep ';')")
    o.attributes = parse_attr(o.attributes)
    return o


# ------------------------------------------------------------------------------------------ reading
def read_station_file(path, sep: str = ",", na_values=(), encoding=None, sheet=None, skiprows=None,
                      header_names=()) -> tables.Table:
    """Read a station's table (CSV plain or ``.gz`` in any encoding, or a spreadsheet) as text cells,
    through :func:`.tables.read_table` (which documents the encoding detection and title-row search)."""
    return tables.read_table(path, sep=sep, encoding=encoding, sheet=sheet, skiprows=skiprows,
                             header_names=header_names, na_values=na_values)


def _numeric(col: pd.Series, name: str, what: str, decimal: str) -> pd.Series:
    s = col.astype("string")
    if decimal == ",":
        # With a decimal comma a '.' can only group thousands (1.234,5); any other '.' is refused rather
        # than read as a decimal point or dropped, which would scale the value by 1000 either way.
        v = s.dropna()
        odd = v.str.contains(".", regex=False) & ~v.str.fullmatch(r"-?\d{1,3}(\.\d{3})+(,\d*)?")
        if odd.any():
            raise DataError(f"column {name!r} ({what}) has {v[odd].iloc[0]!r}: a '.' that does not group "
                            "thousands, but --decimal , was given")
        s = s.str.replace(".", "", regex=False).str.replace(",", ".", regex=False)
    vals = pd.to_numeric(s, errors="coerce")
    bad = vals.isna() & col.notna()
    if bad.any():
        first = col[bad].iloc[0]
        row = int(np.flatnonzero(bad.to_numpy())[0]) + 2
        if decimal == "." and _NUMBER_COMMA.match(str(first)):
            raise DataError(f"column {name!r} ({what}) has a decimal comma ({first!r}, row {row}); "
                            "add --decimal ,")
        raise DataError(f"column {name!r} ({what}) has a non-numeric value {first!r} (row {row}); "
                        "expected numbers (missing values as empty cells, or name them with --na_value)")
    return vals.astype(np.float64)


def _float_or_none(v):
    try:
        return float(str(v).replace(",", "."))
    except ValueError:
        return None


def _dates(col: pd.Series, name: str, fmt: str | None, source: str = "") -> pd.DatetimeIndex:
    parsed = tables.parse_dates(col, fmt, column=name, source=source)
    if (parsed != parsed.normalize()).any():
        i = int(np.flatnonzero(parsed != parsed.normalize())[0])
        raise DataError(f"date column {name!r} has a time of day ({col.iloc[i]!r}, row {i + 2}): the timestep is "
                        "not daily; expected one row per day (aggregate sub-daily data to daily values first)")
    return parsed


def _check_timestep(dates: pd.DatetimeIndex, name: str) -> None:
    dup = dates[dates.duplicated()]
    if len(dup):
        raise DataError(f"date column {name!r} has duplicate dates (e.g. {dup[0].date()}, {len(dup)} in all); "
                        "expected one row per day")
    if len(dates) < 2:
        raise DataError(f"date column {name!r} has a single day; expected a daily record of years")
    steps = np.diff(np.sort(dates.to_numpy().astype("datetime64[D]")).astype(np.int64))
    med = float(np.median(steps))
    if med != 1.0:
        raise DataError(f"date column {name!r}: the timestep is not daily (median step {med:g} days, "
                        f"steps from {int(steps.min())} to {int(steps.max())} days); expected one row per day")
    irregular = steps[steps != 1]
    if len(irregular) > 0.2 * len(steps):
        raise DataError(f"date column {name!r}: the timestep is irregular ({len(irregular)} of {len(steps)} steps "
                        "are not one day); expected one row per day")


# ------------------------------------------------------------------------------------------ attributes
def climate_attributes(ts: pd.DataFrame, lat: float | None = None) -> dict:
    """CAMELS-GB climate indices from the station's own daily meteorology (NaN-aware).

    p_mean, pet_mean: mean daily precipitation / PET (mm/d; without a PET column, Oudin PET from the
    temperature and ``lat``, as the loader derives it); aridity = pet_mean / p_mean;
    high_prec_freq: days per year with precipitation >= 5 x p_mean; low_prec_freq: days per year
    with precipitation < 1 mm; frac_snow: share of the precipitation on days colder than 0 degC.
    Only meteorology is used, never discharge, so nothing of the test part's target leaks in.
    """
    out = {}
    p = ts["precipitation"].to_numpy(np.float64)
    ok = np.isfinite(p)
    if ok.sum() >= 365:
        p_mean = float(p[ok].mean())
        out["p_mean"] = p_mean
        out["high_prec_freq"] = float((p[ok] >= 5 * p_mean).mean() * 365.25)
        out["low_prec_freq"] = float((p[ok] < 1.0).mean() * 365.25)
        if "temperature" in ts:
            t = ts["temperature"].to_numpy(np.float64)
            both = ok & np.isfinite(t)
            if both.sum() >= 365 and p[both].sum() > 0:
                out["frac_snow"] = float(p[both & (t < 0)].sum() / p[both].sum())
        e = None
        if "pet" in ts:
            e = ts["pet"].to_numpy(np.float64)
        elif "temperature" in ts and lat is not None:
            from .pet import oudin_pet
            e = oudin_pet(ts["temperature"].to_numpy(np.float64), lat, ts.index.day_of_year.to_numpy())
        if e is not None and np.isfinite(e).sum() >= 365:
            out["pet_mean"] = float(np.nanmean(e))
            if p_mean > 0:
                out["aridity"] = out["pet_mean"] / p_mean
    return out


# ------------------------------------------------------------------------------------------ preparing
def prepare_station(frame: pd.DataFrame, o: ImportOptions, source: str = "DataFrame", sha256: str = "",
                    static_attributes=()) -> PreparedStation:
    """Validate and convert one station's table (cells as read) into the layout's columns.

    Raises DataError / UsageError naming the culprit; writes nothing.
    """
    o = check_options(o)
    m = o.mapping
    absent = [f"{k}={c}" for k, c in m.items() if c not in frame.columns]
    if absent:
        raise DataError(f"{source}: mapped column(s) {', '.join(absent)} not in the file; its columns are "
                        f"{list(frame.columns)}" + (" (is --sep right?)" if len(frame.columns) == 1 else ""))
    dates = _dates(frame[m["date"]], m["date"], o.date_format)
    _check_timestep(dates, m["date"])
    what = {"precipitation": "precipitation, mm/d", "discharge": f"discharge, {o.discharge_unit}",
            "temperature": "temperature, degC", "pet": "PET, mm/d"}
    vals = {k: _numeric(frame[m[k]], m[k], what[k], o.decimal) for k in MAP_KEYS[1:] if k in m}
    codes = [c for c in (_float_or_none(v) for v in o.na_values) if c is not None]
    if codes:  # numeric missing-value codes match however they are written (-999, -999.0, -999,00)
        vals = {k: v.mask(v.isin(codes)) for k, v in vals.items()}
    for k in ("discharge", "precipitation", "pet"):
        if k in vals and (vals[k] < 0).any():
            neg = vals[k] < 0
            first = dates[np.flatnonzero(neg.to_numpy())[0]].date()
            raise DataError(f"column {m[k]!r} ({what[k]}) has {int(neg.sum())} negative values (first on {first}: "
                            f"{vals[k][neg].iloc[0]:g}); it must be >= 0 (if they mark missing values, name "
                            "them with --na_value)")
    if "temperature" in vals and ((vals["temperature"] < -60) | (vals["temperature"] > 60)).any():
        raise DataError(f"column {m['temperature']!r} (temperature, degC) has values outside -60..60 degC; "
                        "is it in degrees Celsius?")
    if not vals["discharge"].notna().any():
        raise DataError(f"column {m['discharge']!r} (discharge) has no values: every cell is missing")
    if not vals["precipitation"].notna().any():
        raise DataError(f"column {m['precipitation']!r} (precipitation) has no values: every cell is missing")

    ts = pd.DataFrame({k: v.to_numpy() for k, v in vals.items()}, index=pd.DatetimeIndex(dates, name="date"))
    ts = ts.sort_index()
    full = pd.date_range(ts.index[0], ts.index[-1], freq="D", name="date")
    n_rows_missing = len(full) - len(ts)
    ts = ts.reindex(full)
    summary, warnings = [], []
    q = ts.pop("discharge")
    if o.discharge_unit == "m3/s":
        ts["discharge_vol"] = q
    elif o.discharge_unit == "l/s":
        ts["discharge_vol"] = q / 1000.0
        summary.append("discharge: l/s -> m3/s (/ 1000)")
    else:
        ts["discharge_vol"] = q * o.area_km2 / 86.4
        summary.append(f"discharge: mm/d -> m3/s (x area {o.area_km2:g} km2 / 86.4); kept as discharge_spec (mm/d)")
    if o.area_km2 is not None:
        ts["discharge_spec"] = q if o.discharge_unit == "mm/d" else ts["discharge_vol"] * 86.4 / o.area_km2
        if o.discharge_unit != "mm/d":
            summary.append("discharge_spec (mm/d) = discharge_vol x 86.4 / area")

    n_obs = int(ts["discharge_vol"].notna().sum())
    obs_days = ts.index[ts["discharge_vol"].notna()]
    if n_obs < MIN_OBSERVED_DAYS:
        raise DataError(f"station {o.station_id}: {n_obs} days of observed discharge "
                        f"({obs_days[0].date()}..{obs_days[-1].date()}); the minimum is {MIN_OBSERVED_DAYS} "
                        f"days (2 years)")
    if n_obs < WARN_OBSERVED_DAYS:
        warnings.append(f"station {o.station_id}: only {n_obs} days ({n_obs / 365.25:.1f} years) of observed "
                        f"discharge; fine-tuning works, but its test part is short and its scores uncertain")
    period = f"{ts.index[0].date()}..{ts.index[-1].date()}"
    summary.insert(0, f"read {len(frame)} rows: {len(ts)} days {period}"
                      + (f" ({n_rows_missing} days without a row, left missing)" if n_rows_missing else ""))
    gaps = {c: int(ts[c].isna().sum()) for c in ts.columns}
    summary.insert(1, "missing days per column: " + ", ".join(f"{c} {n}" for c, n in gaps.items()))

    computed = climate_attributes(ts, o.lat)
    attrs = {k: v for k, v in computed.items() if k not in o.attributes}
    attrs.update(o.attributes)
    for name, v in (("area", o.area_km2), ("gauge_lat", o.lat), ("gauge_lon", o.lon)):
        if v is not None:
            attrs[name] = float(v)
    computed = [k for k in computed if k not in o.attributes]
    wanted = list(static_attributes)
    if wanted:
        have = [a for a in wanted if a in attrs]
        summary.append(f"static attributes the model reads: {len(have)} of {len(wanted)} known "
                       f"({', '.join(have) or 'none'})")
        summary.append("unknown, masked for the model: " + (", ".join(a for a in wanted if a not in attrs) or "none"))
    if computed:
        summary.append("computed from the station's meteorology (CAMELS-GB definitions): " + ", ".join(computed))
    if "pet" not in ts:
        summary.append("no PET column: PET is derived from temperature and gauge_lat where the model needs it "
                       "(masked when either is missing)")
    if "temperature" not in ts:
        summary.append("no temperature column: the temperature input is masked")
    meta = {"station_id": o.station_id, "source": source, "source_sha256": sha256,
            "mapping": m, "discharge_unit": o.discharge_unit, "sep": o.sep, "decimal": o.decimal,
            "date_format": o.date_format, "na_values": list(o.na_values),
            "units_written": {"precipitation": "mm/d", "temperature": "degC", "pet": "mm/d",
                              "discharge_vol": "m3/s", "discharge_spec": "mm/d"},
            "record": {"start": str(ts.index[0].date()), "end": str(ts.index[-1].date()), "days": len(ts),
                       "observed_discharge_days": n_obs, "missing_per_column": gaps},
            "attributes": attrs, "computed_attributes": computed,
            "imported_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}
    return PreparedStation(o.station_id, ts, attrs, computed, meta, summary, warnings)


# ------------------------------------------------------------------------------------------ writing
def existing_station_files(out_dir, station_id: str) -> list[Path]:
    """Files in ``out_dir/timeseries`` that already hold ``station_id`` (any naming, plain or gzip)."""
    ts = Path(out_dir) / "timeseries"
    if not ts.is_dir():
        return []
    names = {f"{station_id}.csv", f"{station_id}.csv.gz"}
    rx = re.compile(rf"^CAMELS_GB_hydromet_timeseries_{re.escape(station_id)}_\d{{8}}-\d{{8}}\.csv(\.gz)?$")
    return sorted(p for p in ts.iterdir() if p.name in names or rx.match(p.name))


def _stations_table(out_dir) -> pd.DataFrame:
    path = Path(out_dir) / "attributes" / STATIONS_FILE
    if not path.is_file():
        return pd.DataFrame(columns=["gauge_id"])
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
        raise DataError(f"{path} is not a readable CSV ({str(e).splitlines()[0]}); fix or remove it") from None
    if "gauge_id" not in df.columns:
        raise DataError(f"{path} has no gauge_id column; fix or remove it")
    return df


def check_clash(out_dir, station_id: str, overwrite: bool) -> None:
    """UsageError when ``station_id`` is already in ``out_dir`` and ``overwrite`` is off."""
    if overwrite:
        return
    hits = existing_station_files(out_dir, station_id)
    in_table = station_id in set(_stations_table(out_dir)["gauge_id"].astype(str).str.strip())
    if hits or in_table:
        where = hits[0] if hits else Path(out_dir) / "attributes" / STATIONS_FILE
        raise UsageError(f"station id {station_id!r} already exists in {out_dir} ({where}); choose another "
                         "--id or pass --overwrite to replace it")


def write_stations(out_dir, stations: list[PreparedStation], overwrite: bool = False) -> list[Path]:
    """Write validated stations into ``out_dir``, all or nothing. Returns their timeseries files."""
    out_dir = Path(out_dir).expanduser()
    if out_dir.exists() and not out_dir.is_dir():
        raise DataError(f"--out {out_dir} is a file; expected a folder (new or holding stations)")
    ids = [s.station_id for s in stations]
    dup = sorted({i for i in ids if ids.count(i) > 1})
    if dup:
        raise UsageError(f"station id(s) {dup} given more than once; ids must be unique")
    for s in stations:
        check_clash(out_dir, s.station_id, overwrite)
    table = _stations_table(out_dir)
    table = table[~table["gauge_id"].astype(str).str.strip().isin(ids)]
    rows = [{"gauge_id": s.station_id, **{k: _fmt(v) for k, v in s.attributes.items()}} for s in stations]
    table = pd.concat([table, pd.DataFrame(rows, dtype=str)], ignore_index=True).fillna("")
    front = [c for c in ("gauge_id", "area", "gauge_lat", "gauge_lon") if c in table.columns]
    table = table[front + [c for c in table.columns if c not in front]]

    files: dict[Path, bytes] = {}
    removed: list[Path] = []
    for s in stations:
        if overwrite:
            removed += [p for p in existing_station_files(out_dir, s.station_id)
                        if p.name != f"{s.station_id}.csv"]
        files[out_dir / "timeseries" / f"{s.station_id}.csv"] = s.timeseries.to_csv(
            float_format="%.6g", date_format="%Y-%m-%d").encode()
        files[out_dir / "meta" / f"{s.station_id}.json"] = (json.dumps(s.meta, indent=2) + "\n").encode()
    files[out_dir / "attributes" / STATIONS_FILE] = table.to_csv(index=False).encode()
    _commit(out_dir, files, removed)
    return [out_dir / "timeseries" / f"{s.station_id}.csv" for s in stations]


def _fmt(v) -> str:
    return f"{float(v):.6g}"


def _commit(out_dir: Path, files: dict, removed: list) -> None:
    """Write every file to a temp name, then rename all into place; on failure restore what was there."""
    created_dirs = [d for d in [out_dir, *{p.parent for p in files}] if not d.exists()]
    tag = f"{os.getpid()}.{uuid.uuid4().hex[:8]}"
    temps, backups, done = {}, {}, []
    try:
        for p, data in files.items():
            p.parent.mkdir(parents=True, exist_ok=True)
            tmp = p.parent / f".{p.name}.{tag}.tmp"
            with open(tmp, "xb") as fh:
                fh.write(data)
            temps[p] = tmp
        for p in list(files) + removed:
            if p.exists():
                bak = p.parent / f".{p.name}.{tag}.bak"
                os.replace(p, bak)
                backups[p] = bak
        for p, tmp in temps.items():
            os.replace(tmp, p)
            done.append(p)
    except BaseException:
        for p in done:
            _unlink(p)
        for p, bak in backups.items():
            os.replace(bak, p)
        for tmp in temps.values():
            _unlink(tmp)
        for d in sorted(created_dirs, key=lambda d: len(d.parts), reverse=True):
            try:
                d.rmdir()
            except OSError:
                pass
        raise
    for bak in backups.values():
        _unlink(bak)


def _unlink(p: Path) -> None:
    try:
        p.unlink()
    except OSError:
        pass


def import_files(jobs) -> list:
    """Import stations from files: ``jobs`` is a list of ``(file, out_dir, ImportOptions)``.

    Every station is read and checked before any is written; then each output folder is written all
    or nothing. Returns ``[(out_dir, PreparedStation), ...]`` (summary lines and warnings to show).
    """
    static = default_static_attributes()
    prepared = []
    for file, out_dir, o in jobs:
        o = check_options(o)
        out_dir = Path(out_dir).expanduser()
        check_clash(out_dir, o.station_id, o.overwrite)
        table = read_station_file(file, o.sep, o.na_values)
        st = prepare_station(table.frame, o, source=str(file), sha256=table.sha256, static_attributes=static)
        st.meta["source"] = str(Path(file).expanduser().resolve())
        prepared.append((out_dir, o.overwrite, st))
    for out in dict.fromkeys(p[0] for p in prepared):
        write_stations(out, [st for o, _, st in prepared if o == out],
                       overwrite=any(ov for o, ov, _ in prepared if o == out))  # each was checked above
    return [(o, st) for o, _, st in prepared]


# ------------------------------------------------------------------------------------------ Python API
def default_static_attributes() -> list:
    """The static attributes the default model reads (the packaged default config's)."""
    from ..config import Config
    return list(Config.from_dict({}).data.static_attributes)


def import_station(df: pd.DataFrame, station_id, out_dir, attributes: dict | None = None,
                   discharge_unit: str = "m3/s", mapping: dict | None = None, area_km2: float | None = None,
                   lat: float | None = None, lon: float | None = None, overwrite: bool = False) -> Path:
    """Import one station from a DataFrame (for notebooks); returns ``out_dir``, ready for ``--data_dir``.

    Parameters
    ----------
    df : pandas.DataFrame
        Daily rows: a date column (or a DatetimeIndex) and the columns named by ``mapping``
        (default: ``date``, ``precipitation``, ``discharge`` and, if present, ``temperature``, ``pet``).
    station_id : str
        Letters, digits, ``-``, ``_``.
    attributes : dict, optional
        Static attributes, CAMELS-GB names (``area``, ``gauge_lat``, ``gauge_lon``, ``elev_mean``, ...).
        ``area``/``gauge_lat``/``gauge_lon`` may also be given as ``area_km2``/``lat``/``lon``.
    discharge_unit : {"m3/s", "l/s", "mm/d"}
    """
    attrs = dict(attributes or {})
    area_km2 = area_km2 if area_km2 is not None else attrs.pop("area", None)
    lat = lat if lat is not None else attrs.pop("gauge_lat", None)
    lon = lon if lon is not None else attrs.pop("gauge_lon", None)
    frame = df.copy()
    if isinstance(frame.index, pd.DatetimeIndex):
        frame = frame.rename_axis("date").reset_index()
        frame["date"] = frame["date"].dt.strftime("%Y-%m-%d")
    if mapping is None:
        mapping = {k: k for k in MAP_KEYS if k in frame.columns}
    frame = frame.astype(object).where(frame.notna(), None).astype("string")
    o = ImportOptions(str(station_id), dict(mapping), discharge_unit, _opt_float(area_km2), _opt_float(lat),
                      _opt_float(lon), attrs, overwrite=overwrite)
    st = prepare_station(frame, o, source="DataFrame", static_attributes=default_static_attributes())
    for w in st.warnings:
        log.warning(w)
    for line in st.summary:
        log.info("%s: %s", st.station_id, line)
    write_stations(out_dir, [st], overwrite=overwrite)
    return Path(out_dir).expanduser()


def _opt_float(v):
    return None if v is None else float(v)
