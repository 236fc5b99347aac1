"""Writing imported stations into the generic data layout, all or nothing.

Each station's ``timeseries/<id>.csv`` and ``meta/<id>.json`` and the shared ``attributes/stations.csv`` are
written to temporary names and renamed into place together (:func:`_commit`); if anything fails, what was
there before is restored. A station id already in the folder is refused unless ``overwrite`` is set, and a
re-import keeps what other commands have set in its metadata since.
"""

from __future__ import annotations

import json
import os
import uuid
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ..errors import DataError, UsageError
from . import reader, tables
from .station_meta import StationMeta, check_meta, meta_path

STATIONS_FILE = "stations.csv"


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


def existing_station_files(out_dir, station_id: str) -> list[Path]:
    """Files in ``out_dir/timeseries`` that already hold ``station_id`` (any naming, plain or gzip)."""
    ts = Path(out_dir) / "timeseries"
    if not ts.is_dir():
        return []
    return sorted(p for p in ts.iterdir() if reader.basin_id_of(p.name) == str(station_id))


def _stations_table(out_dir) -> pd.DataFrame:
    path = Path(out_dir) / "attributes" / STATIONS_FILE
    if not path.is_file():
        return pd.DataFrame(columns=["gauge_id"])
    try:
        # UTF-8 by the layout's contract; one opened and saved in Excel or WPS comes back in the system's encoding
        # (GBK), which is read as it is and written back in UTF-8 with the station (the other commands read UTF-8)
        df = tables.read_csv(path, encoding=None, dtype=str, keep_default_na=False)
    except DataError as e:
        raise DataError(f"{e}; fix or remove it") from None
    if "gauge_id" not in df.columns:
        raise DataError(f"{path} has no gauge_id column; fix or remove it")
    return df


def check_clash(out_dir, station_id: str, overwrite: bool) -> None:
    """UsageError when ``station_id`` is already in ``out_dir`` and ``overwrite`` is off, or is a downloaded
    CAMELS-GB basin there (whose attribute files would go on describing it, whatever the import writes)."""
    hits = existing_station_files(out_dir, station_id)
    if any(reader.is_camels_gb_name(p.name) for p in hits):
        raise UsageError(f"station id {station_id!r} is a CAMELS-GB basin of {out_dir}, whose attribute files would go "
                         "on describing it; import your station into a folder of your own (e.g. ./my_stations) or "
                         "under another --id")
    # Windows and macOS file names ignore case: gauge1.csv would replace Gauge1.csv, while stations.csv went on
    # listing both (also with --overwrite, which replaces a station of the same id, not another one)
    ts = Path(out_dir) / "timeseries"
    ids = set(_stations_table(out_dir)["gauge_id"].astype(str).str.strip())
    ids |= {reader.basin_id_of(p.name) for p in ts.iterdir()} - {None} if ts.is_dir() else set()
    other = sorted(i for i in ids if i != station_id and i.casefold() == station_id.casefold())
    if other:
        raise UsageError(f"station id {station_id!r} differs only in case from station {other[0]!r} in {out_dir}, and "
                         "Windows and macOS take their files for one: give the id as stored, or another id")
    if overwrite:
        return
    in_table = station_id in ids
    if hits or in_table:
        where = hits[0] if hits else Path(out_dir) / "attributes" / STATIONS_FILE
        raise UsageError(f"station id {station_id!r} already exists in {out_dir} ({where}); choose another "
                         "--id or pass --overwrite to replace it")


def check_stored_precipitation_unit(out_dir, station_id: str, unit, overwrite: bool) -> None:
    """UsageError where a re-import (``overwrite``) gives no precipitation unit (``unit`` None) for a station an
    earlier import read in 0.1 mm or as an intensity in mm/h: read as mm, a dry station's rain is ten times too large
    (or, at readings more often than hourly, several times) and may pass every check, and its metadata would say mm.
    The unit is asked for, not kept, as the file may have been converted since."""
    path = meta_path(out_dir, station_id)
    if not overwrite or unit is not None or not path.is_file():
        return
    try:
        old = tables.read_json(path, "station metadata file")
    except DataError:  # a damaged earlier file is replaced whole, as on any re-import
        return
    stored = old.get("precipitation_unit") if isinstance(old, dict) else None
    if stored in ("0.1mm", "mm/h"):
        said = "in 0.1 mm" if stored == "0.1mm" else "as an intensity in mm/h"
        raise UsageError(f"station {station_id!r} was imported with its rain {said} (precipitation_unit in {path}), "
                         f"and this re-import gives no unit: give --precipitation_unit {stored} again, or "
                         "--precipitation_unit mm if the file's rain is now in mm")


def check_out_dir(out_dir, ids: list) -> None:
    """DataError where ``out_dir`` cannot be a folder of stations (it, or a folder above it, is a file), UsageError
    where ``ids`` (the stations to write into it) name one twice. Run for every folder of an import before any is
    written, so that a spec whose second folder is bad leaves the first as it was."""
    out_dir = Path(out_dir).expanduser()
    if out_dir.exists() and not out_dir.is_dir():
        raise DataError(f"--out {out_dir} is a file; expected a folder (new or holding stations)")
    blocker = next((a for a in out_dir.parents if a.exists()), None)
    if blocker is not None and not blocker.is_dir():  # no folder can be made under a file
        raise DataError(f"--out {out_dir}: {blocker} is a file, not a folder")
    for sub in ("timeseries", "meta", "attributes"):  # the layout's folders, where the files go
        if (out_dir / sub).exists() and not (out_dir / sub).is_dir():
            raise DataError(f"--out {out_dir}: {out_dir / sub} is a file; the layout keeps the stations' files in a "
                            "folder of that name (move the file away)")
    folded = [i.casefold() for i in ids]  # one file on Windows and macOS
    dup = sorted({i for i in ids if folded.count(i.casefold()) > 1})
    if dup:
        raise UsageError(f"station id(s) {dup} given more than once; ids must be unique (ids differing only in case "
                         "count as one: Windows and macOS take their files for one)")


def write_stations(out_dir, stations: list[PreparedStation], overwrite: bool = False) -> list[Path]:
    """Write validated stations into ``out_dir``, all or nothing. Returns their timeseries files."""
    out_dir = Path(out_dir).expanduser()
    ids = [s.station_id for s in stations]
    check_out_dir(out_dir, ids)
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
        files[out_dir / "meta" / f"{s.station_id}.json"] = (json.dumps(_keep_later_keys(out_dir, s), indent=2,
                                                                       ensure_ascii=False) + "\n").encode()
    files[out_dir / "attributes" / STATIONS_FILE] = table.to_csv(index=False).encode()
    _commit(out_dir, files, removed)
    return [out_dir / "timeseries" / f"{s.station_id}.csv" for s in stations]


def _keep_later_keys(out_dir: Path, s: PreparedStation) -> dict:
    """The metadata to write: a re-import keeps what other commands set since (the weather source) and the
    warning levels when it gives none."""
    meta = dict(s.meta)
    old_path = meta_path(out_dir, s.station_id)
    if not old_path.is_file():
        return meta
    try:
        old = tables.read_json(old_path, "station metadata file")
    except DataError:  # a damaged earlier file is replaced whole
        return meta
    if isinstance(old, dict):
        # what is carried on is checked as every reader checks it: a hand-edited section is refused here
        kept = check_meta({k: old[k] for k in ("weather", "warning_levels", "flood_frequency") if k in old},
                          str(old_path))
        if old.get("weather") and not meta.get("weather"):
            meta["weather"] = kept.weather.model_dump(mode="json", exclude_unset=True)
        if old.get("warning_levels") and not meta.get("warning_levels"):
            lines = _check_kept_levels(s, old, meta.get("rating_curve"))
            meta["warning_levels"] = old["warning_levels"]
            s.summary.append("kept from the earlier import: " + "; ".join(lines))
        default = StationMeta(s.station_id).to_dict()["flood_frequency"]  # the import said nothing of it
        if old.get("flood_frequency") and old["flood_frequency"] != default and meta.get("flood_frequency") == default:
            meta["flood_frequency"] = old["flood_frequency"]
            ff = old["flood_frequency"]
            s.summary.append(f"kept from the earlier import: flood frequency {ff.get('distribution') or 'default'}, "
                             f"water years from month {ff.get('water_year_start', 10)}")
    return meta


def _check_kept_levels(s: PreparedStation, old: dict, rating_curve) -> list:
    """The warning levels an earlier import stored, checked against this import's record and rating curve as
    given levels are (lines naming each as a flow); a one-line DataError where they no longer fit it."""
    from .station_meta import check_level_flows

    levels = StationMeta.from_dict({"warning_levels": old["warning_levels"]}, s.station_id,
                                   f"station {s.station_id}'s stored metadata").warning_levels
    stage = [n for n, lv in levels.items() if lv.unit == "m"]
    redo = "give --warning_levels anew (with --levels_in stage for water levels)"
    if stage and not rating_curve:
        raise DataError(f"station {s.station_id}: its stored warning level(s) {', '.join(stage)} are water levels (m), "
                        f"and this import has no rating curve to turn them into flows: give --rating, or {redo}")
    try:
        return check_level_flows(s.timeseries["discharge_vol"], levels, rating_curve,
                                 flag="the stored warning level")
    except (DataError, UsageError) as e:
        raise DataError(f"station {s.station_id}: {e}; {redo}") from None


def _fmt(v) -> str:
    return f"{float(v):.6g}"


def _commit(out_dir: Path, files: dict, removed: list) -> None:
    """Write every file to a temp name, then rename all into place; on failure restore what was there (a file the
    system refuses, as a full disk, no permission, or a file where a folder goes, is a one-line DataError)."""
    created_dirs = [d for d in [out_dir, *{p.parent for p in files}] if not d.exists()]
    tag = f"{os.getpid()}.{uuid.uuid4().hex[:8]}"
    temps, backups, done = {}, {}, []
    p = out_dir
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
    except BaseException as e:
        for q in done:
            _unlink(q)
        for q, bak in backups.items():
            os.replace(bak, q)
        for tmp in temps.values():
            _unlink(tmp)
        for d in sorted(created_dirs, key=lambda d: len(d.parts), reverse=True):
            try:
                d.rmdir()
            except OSError:
                pass
        if isinstance(e, OSError):
            raise DataError(f"cannot write {p}: {e.strerror or e}; {out_dir} is left as it was") from None
        raise
    for bak in backups.values():
        _unlink(bak)


def _unlink(p: Path) -> None:
    try:
        p.unlink()
    except OSError:
        pass
